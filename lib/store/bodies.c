/*
 * Bodies in chunks: written as they come (store_writer) and committed
 * with their entry, read and checked in bounded memory, and the garbage
 * of replaced ones collected a few chunks at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/prog.h"
#include "http/http.h"
#include "store/db.h"

/*
 * After a write of a new row failed: when a row of the same key was
 * there (a constraint), another program put it where relay's next one
 * goes, in table, for what of id. Returns -1 either way.
 */
int
db_planted_at(struct store *s, const char *table, const char *what,
    long long id)
{
	if ((s->rc & 0xFF) != SQLITE_CONSTRAINT)
		return -1;
	return db_fail_msg(s, EX_DATAERR, "cannot write to cache '%s': its "
	    "table '%s' is damaged: it has rows of %s %lld, which relay had "
	    "not made", s->path, table, what, id);
}

/* Writes one full chunk in its own short transaction. */
static int
insert_chunk(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st = db_stmt(s, ST_CHUNK_PUT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, w->body);
	sqlite3_bind_int64(st, 2, w->seq);
	sqlite3_bind_blob(st, 3, w->chunk, (int)w->len, SQLITE_STATIC);
	if (db_run(s, st, "write to") < 0)
		return db_planted_at(s, "chunks", "body", w->body);
	s->batch_bytes += (long long)w->len;
	w->seq++;
	w->len = 0;
	return 0;
}

static int
new_body(struct store_writer *w, enum body_state state)
{
	sqlite3_stmt *st = db_stmt(w->s, ST_BODY_NEW);

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (db_run(w->s, st, "write to") < 0)
		return -1;
	w->body = sqlite3_last_insert_rowid(w->s->db);
	return 0;
}

/*
 * Whether a write of len body bytes has room on its file system: they
 * go to the WAL, then into the file (whose free pages count), and
 * UNDO_ROOM is kept for a write that fails to give its body up and
 * delete it (store_writer_abort). Else it fails now, as on a full disk,
 * rather than half-way through in SQLite, with no room left to undo.
 */
static int
check_room(struct store *s, long long len)
{
	sqlite3_stmt *st;
	struct statvfs fs;
	long long have, need = 2 * len + UNDO_ROOM, now = prog_now_ms();

	/*
	 * With ROOM_PLENTY to spare a moment ago, the file system is not
	 * asked again for every small write (a statvfs each was a tenth
	 * of a stored response's time); near full, it always is.
	 */
	s->room -= need;
	if (s->room_ms != 0 && now - s->room_ms < ROOM_CHECK_MS &&
	    s->room > ROOM_PLENTY)
		return 0;
	if (statvfs(s->path, &fs) < 0)
		return 0;	/* SQLite will tell */
	have = (long long)fs.f_bavail * (long long)fs.f_frsize;
	s->room = have;
	s->room_ms = now;
	if (have < need && (st = db_stmt(s, ST_FREE_BYTES)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			have += sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (have >= need)
		return 0;
	return db_fail_msg(s, EX_IOERR, "cannot write to cache '%s': %s",
	    s->path, strerror(ENOSPC));
}

/* A body that can never fit in the budget makes no room for itself. */
static int
fits(struct store_writer *w)
{
	struct store *s = w->s;

	if (s->max_size <= 0 || w->size < s->max_size)
		return 0;
	return db_fail_msg(s, EX_CANTCREAT, "cannot write to cache '%s': the "
	    "body is larger than --max-size %lld", s->path, s->max_size);
}

static int
flush_chunk(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st;

	if (fits(w) < 0 || db_begin_write(s) < 0)
		return -1;
	if (w->body == 0) {
		if (new_body(w, BODY_WRITING) < 0)
			goto fail;
	} else {
		/* Tells collectors this body still has a live writer. */
		if ((st = db_stmt(s, ST_BODY_TOUCH)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, w->body);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
		if (db_run(s, st, "write to") < 0)
			goto fail;
	}
	if (check_room(s, (long long)w->len) < 0 ||
	    db_make_room(s, (long long)w->len) < 0 || insert_chunk(w) < 0)
		goto fail;
	if (db_commit(s) < 0)
		return -1;
	return 0;
fail:
	db_rollback(s);
	return -1;
}

static int
writer_write(void *ctx, const void *p, size_t n)
{
	struct store_writer *w = ctx;
	const unsigned char *src = p;
	size_t room;

	while (n > 0 && !w->failed) {
		room = CHUNK_SIZE - w->len;
		if (room > n)
			room = n;
		if (w->len + room > w->cap) {
			/* Small bodies never pay for a whole chunk. */
			while (w->cap < w->len + room)
				w->cap = w->cap ? w->cap * 4 : 4096;
			if (w->cap > CHUNK_SIZE)
				w->cap = CHUNK_SIZE;
			w->chunk = xrealloc(w->chunk, w->cap);
		}
		memcpy(w->chunk + w->len, src, room);
		w->len += room;
		w->size += (long long)room;
		src += room;
		n -= room;
		if (w->len == CHUNK_SIZE && flush_chunk(w) < 0)
			w->failed = 1;
	}
	return w->failed ? -1 : 0;
}

/*
 * Starts a new body. Nothing is visible to readers until commit; a
 * writer that dies leaves only a body in state 0, collected later.
 */
struct store_writer *
store_writer_new(struct store *s)
{
	struct store_writer *w = xcalloc(1, sizeof *w);

	w->s = s;
	return w;
}

struct sink
store_writer_sink(struct store_writer *w)
{
	return (struct sink){ writer_write, w };
}

void
db_bind_text(sqlite3_stmt *st, int col, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, col, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

/*
 * Binds the nine columns a response's head sets, from headers to
 * last_modified, to the parameters numbered from first on.
 */
void
db_bind_head(sqlite3_stmt *st, int first, const struct store_entry *e)
{
	sqlite3_bind_text(st, first, e->headers, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, first + 1, (sqlite3_int64)e->request_time);
	sqlite3_bind_int64(st, first + 2, (sqlite3_int64)e->response_time);
	if (e->date != -1)
		sqlite3_bind_int64(st, first + 3, (sqlite3_int64)e->date);
	sqlite3_bind_int64(st, first + 4, e->age);
	sqlite3_bind_int64(st, first + 5, e->lifetime);
	sqlite3_bind_int64(st, first + 6, (sqlite3_int64)e->stale_at);
	db_bind_text(st, first + 7, e->etag);
	db_bind_text(st, first + 8, e->last_modified);
}

static int
upsert_entry(struct store_writer *w, const struct store_entry *e)
{
	sqlite3_stmt *st = db_stmt(w->s, ST_UPSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, e->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->variant ? e->variant : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 4, e->status);
	db_bind_head(st, 5, e);
	sqlite3_bind_int64(st, 14, w->body);
	sqlite3_bind_int64(st, 15, w->size);
	return db_run(w->s, st, "write to");
}

/* How many responses e's method and URL have, or -1. */
static long long
variants_of(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st = db_stmt(s, ST_VARIANT_COUNT);
	long long n;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, e->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->url, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	return n >= 0 ? n : db_fail(s, rc, "write to");
}

/*
 * Keeps e's URL within STORE_MAX_VARIANTS responses (Vary): past it,
 * those used least recently are evicted, in the write that stores e.
 * Only a new variant can take it past: one that replaced its own
 * (replaced) leaves the count as it was, and is not counted again.
 */
static int
cap_variants(struct store *s, const struct store_entry *e, int replaced)
{
	sqlite3_stmt *st[2] = { db_stmt(s, ST_VARIANTS_BODIES), NULL };
	long long n;
	int i;

	if (replaced)
		return 0;
	if ((n = variants_of(s, e)) <= STORE_MAX_VARIANTS)
		return n < 0 ? -1 : 0;
	for (i = 0; i < 2; i++) {
		if (i == 1)
			st[1] = db_stmt(s, ST_VARIANTS);
		if (st[i] == NULL)
			return -1;
		sqlite3_bind_text(st[i], 1, e->method, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[i], 2, e->url, -1, SQLITE_STATIC);
		sqlite3_bind_int(st[i], 3, STORE_MAX_VARIANTS);
		sqlite3_bind_text(st[i], 4, e->variant ? e->variant : "", -1,
		    SQLITE_STATIC);
		if (db_run(s, st[i], "write to") < 0)
			return -1;
	}
	if (sqlite3_changes(s->db) > 0)
		s->garbage = 1;
	return db_count_evictions(s, sqlite3_changes(s->db));
}

/*
 * Marks the body the entry pointed to as garbage, if there was one;
 * *replaced says whether the entry was there.
 */
static int
drop_old_body(struct store_writer *w, const struct store_entry *e,
    int *replaced)
{
	struct store *s = w->s;
	sqlite3_stmt *st = db_stmt(s, ST_OLD_BODY);
	long long old;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, e->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->variant ? e->variant : "", -1,
	    SQLITE_STATIC);
	rc = sqlite3_step(st);
	old = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(s, rc, "write to");
	*replaced = rc == SQLITE_ROW;
	if (old == 0)
		return 0;
	if ((st = db_stmt(s, ST_BODY_DROP)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, old);
	s->garbage = 1;
	return db_run(s, st, "write to");
}

/* Flips the body to complete; fails if a collector took it meanwhile. */
static int
complete_body(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st;

	if (w->body == 0)
		return new_body(w, BODY_COMPLETE);
	if ((st = db_stmt(s, ST_BODY_DONE)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, w->body);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (db_run(s, st, "write to") < 0)
		return -1;
	if (sqlite3_changes(s->db) != 1)
		return db_fail_msg(s, EX_TEMPFAIL, "cannot write to cache '%s': "
		    "body abandoned after %d s without progress", s->path,
		    ABANDONED_SECS);
	return 0;
}

/*
 * Makes the body and its entry visible in one transaction: readers see
 * the old entry or the new one, never a mix. Frees the writer.
 */
int
store_writer_commit(struct store_writer *w, const struct store_entry *e)
{
	struct store *s = w->s;
	char why[160];
	int rc = -1, replaced = 0;

	if (store_entry_invalid(e, why, sizeof why) != NULL) {
		db_fail_msg(s, EX_DATAERR, "cannot write to cache '%s': %s",
		    s->path, why);
		goto out;
	}
	if (w->failed || fits(w) < 0)
		goto out;
	if (db_begin_write(s) < 0)
		goto out;
	if (check_room(s, (long long)w->len) < 0 ||
	    db_make_room(s, (long long)(w->len + strlen(e->headers) +
	    strlen(e->url))) < 0 || complete_body(w) < 0 ||
	    (w->len > 0 && insert_chunk(w) < 0) ||
	    drop_old_body(w, e, &replaced) < 0 || upsert_entry(w, e) < 0 ||
	    cap_variants(s, e, replaced) < 0) {
		db_rollback(s);
		goto out;
	}
	if ((rc = db_commit(s)) == 0)
		db_collect(s, 0);
out:
	if (rc == 0)
		w->body = 0;	/* the entry owns it now */
	store_writer_abort(w);
	return rc;
}

/*
 * Gives up a body: what was written of it becomes garbage and is
 * deleted at once, so that a write that failed (a full disk: SQLite
 * gives the room of its own undone transaction to these) leaves
 * nothing behind. What is left if even they fail, the next write or
 * relay-cache purge and vacuum collect. The failure's status and
 * message stay the store's. Frees the writer.
 */
void
store_writer_abort(struct store_writer *w)
{
	struct store *s;
	char err[sizeof s->err];
	int status;

	if (w == NULL)
		return;
	s = w->s;
	if (w->body != 0) {
		status = s->status;
		memcpy(err, s->err, sizeof err);
		s->garbage = 1;
		db_step_in_txn(s, ST_BODY_DROP, w->body);
		db_collect(s, 0);
		s->status = status;
		memcpy(s->err, err, sizeof err);
	}
	free(w->chunk);
	free(w);
}

/*
 * Runs a bound statement in a write transaction of its own; returns
 * the rows it changed.
 */
long long
db_write_one(struct store *s, sqlite3_stmt *st)
{
	long long changed;

	if (st == NULL || db_begin_write(s) < 0)
		return -1;
	if (db_run(s, st, "write to") < 0) {
		db_rollback(s);
		return -1;
	}
	changed = sqlite3_changes(s->db);
	return db_commit(s) < 0 ? -1 : changed;
}

/* The same for a statement of one parameter (none if arg is 0). */
long long
db_step_in_txn(struct store *s, enum stmt which, long long arg)
{
	sqlite3_stmt *st = db_stmt(s, which);

	if (st != NULL && arg != 0)
		sqlite3_bind_int64(st, 1, arg);
	return db_write_one(s, st);
}

/*
 * Deletes garbage bodies a few chunks per transaction so that other
 * writers never wait long. With sweep, also reclaims bodies left by
 * dead writers and bodies no entry refers to, and forgets expired
 * uncacheable marks.
 */
int
db_collect(struct store *s, int sweep)
{
	int n;

	if (!sweep && !s->garbage)
		return 0;	/* the common case: nothing was replaced */
	s->garbage = 0;
	if (sweep && (db_step_in_txn(s, ST_ABANDON,
	    (long long)time(NULL) - ABANDONED_SECS) < 0 ||
	    db_step_in_txn(s, ST_ORPHANS, 0) < 0 ||
	    db_step_in_txn(s, ST_UNMARK_EXPIRED, (long long)time(NULL)) < 0))
		return -1;
	while ((n = db_step_in_txn(s, ST_COLLECT_CHUNKS, 0)) > 0)
		;
	if (n < 0 || db_step_in_txn(s, ST_COLLECT_BODIES, 0) < 0)
		return -1;
	return 0;
}

/*
 * A body with no complete row: damage if its entry still refers to it
 * (a reader in one transaction always sees both), else the entry was
 * replaced between the two reads, and a new look may find it whole.
 */
static int
body_missing(struct store *s, long long entry, long long body)
{
	sqlite3_stmt *st = db_stmt(s, ST_BODY_HELD);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, entry);
	sqlite3_bind_int64(st, 2, body);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		db_damaged(s, entry, NULL, "its body is missing");
		return -1;
	}
	if (rc != SQLITE_DONE)
		return db_fail(s, rc, "read");
	return db_fail_msg(s, EX_TEMPFAIL, "cannot read cache '%s': entry "
	    "changed while reading", s->path);
}

static ssize_t
body_read(void *ctx, void *p, size_t n)
{
	struct store_body *b = ctx;
	struct store *s = b->s;
	int rc;

	while (b->left == 0) {
		rc = sqlite3_step(b->st);
		if (rc == SQLITE_DONE && b->rows == 0)
			return body_missing(s, b->entry, b->body);
		if (rc == SQLITE_DONE && b->got != b->expect) {
			db_damaged(s, b->entry, NULL, "its body has %lld of %lld "
			    "bytes", b->got, b->expect);
			return -1;
		}
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return db_fail(s, rc, "read");
		b->rows++;
		b->data = sqlite3_column_blob(b->st, 0);
		b->left = (size_t)sqlite3_column_bytes(b->st, 0);
		if ((b->got += (long long)b->left) > b->expect) {
			db_damaged(s, b->entry, NULL, "its body has more than its "
			    "%lld bytes", b->expect);
			return -1;
		}
	}
	if (n > b->left)
		n = b->left;
	memcpy(p, b->data, n);
	b->data += n;
	b->left -= n;
	return (ssize_t)n;
}

/*
 * Streams an entry's body. One statement reads every chunk, so the
 * whole body comes from one snapshot even while writers replace it.
 */
struct store_body *
store_body_open(struct store *s, const struct store_entry *e)
{
	static const char sql[] = "SELECT c.data FROM bodies b"
	    " LEFT JOIN chunks c ON c.body = b.id"
	    " WHERE b.id = ?1 AND b.state = 1 ORDER BY c.seq";
	struct store_body *b;
	int rc;

	if (store_body_check(s, e) < 0)
		return NULL;
	b = xcalloc(1, sizeof *b);
	b->s = s;
	b->expect = e->size;
	/* Several bodies may be open at once; one statement is kept. */
	if ((b->st = s->spare_body) != NULL)
		s->spare_body = NULL;
	else if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &b->st, NULL)) !=
	    SQLITE_OK) {
		db_fail(s, rc, "read");
		free(b);
		return NULL;
	}
	sqlite3_bind_int64(b->st, 1, e->body);
	b->entry = e->id;
	b->body = e->body;
	return b;
}

struct source
store_body_source(struct store_body *b)
{
	return (struct source){ body_read, b };
}

void
store_body_close(struct store_body *b)
{
	if (b == NULL)
		return;
	if (b->s->spare_body == NULL) {
		sqlite3_reset(b->st);
		sqlite3_clear_bindings(b->st);
		b->s->spare_body = b->st;
	} else {
		sqlite3_finalize(b->st);
	}
	free(b);
}

/*
 * Whether e's body is whole, as relay writes bodies (relay-cache(5),
 * Bodies): a complete row, chunks of blobs of at most CHUNK_SIZE at
 * seq 0, 1, 2... whose bytes add up to e's size. Every reader has it
 * checked (store_body_open), without reading the bytes. Returns 0, or
 * STORE_DAMAGED, -1 on another failure (store_error says which).
 */
int
store_body_check(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st = db_stmt(s, ST_BODY_CHECK);
	long long rows = 0, chunks = 0, bytes = 0, first = 0, last = -1;
	long long odd = 0;
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, e->body);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows = sqlite3_column_int64(st, 0);
		chunks = sqlite3_column_int64(st, 1);
		bytes = sqlite3_column_int64(st, 2);
		first = sqlite3_column_int64(st, 3);
		last = chunks > 0 ? sqlite3_column_int64(st, 4) : -1;
		odd = sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(s, rc, "read");
	if (rows == 0) {
		body_missing(s, e->id, e->body);	/* always a failure */
		return s->status == EX_DATAERR ? STORE_DAMAGED : -1;
	}
	if (odd > 0)
		return db_damaged(s, e->id, e->url, "its body has a chunk that is "
		    "not a blob of at most %d bytes at an integer seq",
		    CHUNK_SIZE);
	if (chunks > 0 && (first != 0 || last != chunks - 1))
		return db_damaged(s, e->id, e->url, "its body's chunks are at "
		    "seq %lld to %lld, not 0 to %lld", first, last, chunks - 1);
	if (bytes > e->size)
		return db_damaged(s, e->id, e->url, "its body has more than its "
		    "%lld bytes", e->size);
	if (bytes < e->size)
		return db_damaged(s, e->id, e->url, "its body has %lld of %lld "
		    "bytes", bytes, e->size);
	return 0;
}

/* e's body, whole, added to out; -1 if it cannot be read (store_error). */
int
store_body_read(struct store *s, const struct store_entry *e, struct buf *out)
{
	struct store_body *b = store_body_open(s, e);
	int rc;

	if (b == NULL)
		return -1;
	rc = io_copy(store_body_source(b), sink_buf(out));
	store_body_close(b);
	return rc;
}

/*
 * An entry's body as something that can be read several times:
 * each open starts a new pass (see record_write).
 */
int
store_body_ref_open(void *ctx, struct source *out)
{
	struct store_body_ref *ref = ctx;

	if ((ref->body = store_body_open(ref->s, ref->e)) == NULL)
		return -1;
	*out = store_body_source(ref->body);
	return 0;
}

void
store_body_ref_close(void *ctx)
{
	struct store_body_ref *ref = ctx;

	store_body_close(ref->body);
	ref->body = NULL;
}
