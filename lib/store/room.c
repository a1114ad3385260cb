/*
 * Room: the size budget (--max-size) kept by eviction (SIEVE), the
 * write-ahead log kept within its share, vacuum and busy waits.
 */
#include <stdio.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <unistd.h>

#include "store/db.h"

/*
 * Reclaims space: collects every kind of garbage, rebuilds the file,
 * and truncates the WAL. A checkpoint held back by a reader is not a
 * failure; the next one finishes the job.
 */
int
store_vacuum(struct store *s)
{
	int rc;

	if (db_collect(s, 1) < 0 || db_exec(s, "VACUUM", "vacuum") < 0)
		return -1;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);
	if (rc != SQLITE_OK && (rc & 0xFF) != SQLITE_BUSY)
		return db_fail(s, rc, "vacuum");
	return 0;
}

#define WAL_LIMIT	(64LL << 20)	/* without --max-size */
#define WAL_WAIT_MS	1000	/* for readers and writers, to start it over */

/* The longest the WAL may grow: a quarter of the budget, else WAL_LIMIT. */
long long
db_wal_limit(const struct store *s)
{
	return s->max_size > 0 ? s->max_size / 4 : WAL_LIMIT;
}

/*
 * Whether a WAL of wal bytes is past its limit, or past a quarter of
 * the room its file system has for it (what it takes and what is
 * free): a checkpoint needs room to move it into the file, and a write
 * that fails on a full disk room to undo itself.
 */
static int
wal_too_long(const struct store *s, long long wal)
{
	struct statvfs fs;
	long long room;

	if (wal > db_wal_limit(s))
		return 1;
	if (wal == 0 || statvfs(s->path, &fs) < 0)
		return 0;
	room = (long long)fs.f_bavail * (long long)fs.f_frsize + wal;
	return wal > room / 4;
}

/*
 * Sizes SQLite's own upkeep of the WAL from wal_limit: its checkpoints
 * start once the WAL passes the limit (or SQLite's 1000 pages, if
 * fewer), and a WAL started over is truncated to it.
 */
void
db_size_wal(struct store *s)
{
	char sql[64];
	long long pages = db_wal_limit(s) / 4096;

	sqlite3_wal_autocheckpoint(s->db, pages < 1000 ? (int)pages : 1000);
	snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld",
	    db_wal_limit(s));
	sqlite3_exec(s->db, sql, NULL, NULL, NULL);	/* a hint */
}

/* A busy handler that looks every millisecond, for WAL_WAIT_MS at most. */
static int
poll_busy(void *ctx, int tries)
{
	(void)ctx;
	if (tries >= WAL_WAIT_MS)
		return 0;
	usleep(1000);
	return 1;
}

/*
 * Keeps the write-ahead log short. Readers that overlap without a
 * pause (each process's rounds, bodies being sent) keep SQLite's own
 * checkpoints from starting it over, and it grows without bound; once
 * it is too long (wal_too_long), after each write, a checkpoint moves
 * it into the file and starts it over, waiting up to WAL_WAIT_MS for
 * the readers, another writer, or another process's checkpoint (which
 * SQLite does not wait for), looking every millisecond, since each
 * holds its lock for a moment only. One that cannot is tried again
 * after the next write. The file keeps its length, up to wal_limit
 * (journal_size_limit), so that a write that fails on a full disk
 * still has room in it to undo itself; vacuum truncates it.
 */
void
store_trim_wal(struct store *s)
{
	int tries, frames, rc;

	if (!wal_too_long(s, db_file_size(s->path, "-wal")))
		return;
	sqlite3_busy_handler(s->db, poll_busy, NULL);
	for (tries = 0; tries < WAL_WAIT_MS && (tries == 0 ||
	    wal_too_long(s, db_file_size(s->path, "-wal"))); tries++) {
		rc = sqlite3_wal_checkpoint_v2(s->db, NULL,
		    SQLITE_CHECKPOINT_RESTART, &frames, NULL);
		if (rc != SQLITE_BUSY || frames != -1)
			break;	/* done, or the readers held on too long */
		usleep(1000);	/* another process's checkpoint */
	}
	sqlite3_busy_timeout(s->db, s->busy_ms > 0 ? s->busy_ms :
	    BUSY_TIMEOUT_MS);
}

/* How long a write waits for another process's lock from now on. */
void
store_busy_timeout(struct store *s, int ms)
{
	s->busy_ms = ms;
	sqlite3_busy_timeout(s->db, ms);
}

/*
 * The size budget: the file's pages in use, those of its free list
 * left out, since SQLite fills them before it grows the file.
 */
static long long
pages_used(struct store *s)
{
	sqlite3_stmt *st = db_stmt(s, ST_PAGES_USED);
	long long used = -1;
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		used = sqlite3_column_int64(st, 0);
	else
		db_fail(s, rc, "read");
	sqlite3_reset(st);
	return used;
}

/* Removes entry id; its body's pages are freed by the next steps. */
static int
evict(struct store *s, long long id)
{
	sqlite3_stmt *body = db_stmt(s, ST_EVICT_BODY), *entry;

	if (body == NULL)
		return -1;
	sqlite3_bind_int64(body, 1, id);
	if (db_run(s, body, "write to") < 0 || (entry = db_stmt(s, ST_EVICT)) == NULL)
		return -1;
	sqlite3_bind_int64(entry, 1, id);
	s->garbage = 1;
	return db_run(s, entry, "write to");
}

/* One row's first column, or 0 when there is no row. */
static long long
first_id(struct store *s, sqlite3_stmt *st, int *visited)
{
	long long id = 0;
	int rc;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (visited != NULL)
			*visited = sqlite3_column_int(st, 1);
	} else if (rc != SQLITE_DONE) {
		id = db_fail(s, rc, "read");
	}
	sqlite3_reset(st);
	return id;
}

/*
 * SIEVE (Zhang et al., NSDI 2024): entries in the order they came
 * (their ids), a bit each that a hit sets, and a hand that walks from
 * the oldest to the newest, clearing bits, to the first entry whose
 * bit is clear. Returns the entry to evict, 0 if there is none.
 */
static long long
sieve(struct store *s)
{
	sqlite3_stmt *st = db_stmt(s, ST_HAND_GET);
	long long hand, id;
	int visited = 0;

	if (st == NULL || (hand = first_id(s, st, NULL)) < 0)
		return -1;
	for (;;) {
		if ((st = db_stmt(s, ST_SIEVE_NEXT)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, hand);
		if ((id = first_id(s, st, &visited)) < 0)
			return -1;
		if (id == 0) {		/* past the newest: from the oldest */
			if (hand == 0)
				return 0;	/* no entry at all */
			hand = 0;
			continue;
		}
		hand = id + 1;
		if (!visited)
			break;
		if ((st = db_stmt(s, ST_UNVISIT)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		if (db_run(s, st, "write to") < 0)
			return -1;
	}
	if ((st = db_stmt(s, ST_HAND_PUT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, hand);
	return db_run(s, st, "write to") < 0 ? -1 : id;
}

/* Entry to make room with: an expired one first, else SIEVE's choice. */
static long long
victim(struct store *s)
{
	sqlite3_stmt *st = db_stmt(s, ST_EXPIRED_ONE);
	long long id;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	if ((id = first_id(s, st, NULL)) != 0)
		return id;
	return sieve(s);
}

/* Adds n to relay_cache_evictions_total, in the write under way. */
int
db_count_evictions(struct store *s, long long n)
{
	sqlite3_stmt *st;

	if (n == 0)
		return 0;
	if ((st = db_stmt(s, ST_COUNTER_ADD)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, "relay_cache_evictions_total", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n);
	return db_run(s, st, "write to");
}

/*
 * Within the write under way, frees pages until need more bytes fit
 * in budget: garbage bodies' chunks first, then entries (victim).
 * Evictions are counted in relay_cache_evictions_total, and in
 * *evicted. Fails when nothing is left to free: only the file's own
 * pages and bodies being written take the room.
 */
static int
free_pages(struct store *s, long long budget, long long need,
    long long *evicted)
{
	sqlite3_stmt *st;
	long long used, id, n = 0;
	int rc = 0;

	while (rc == 0 && (used = pages_used(s)) + need > budget) {
		if (used < 0 || (st = db_stmt(s, ST_COLLECT_CHUNKS)) == NULL ||
		    db_run(s, st, "write to") < 0)
			rc = -1;
		else if (sqlite3_changes(s->db) > 0)
			continue;
		else if ((id = victim(s)) < 0)
			rc = -1;
		else if (id == 0)
			rc = db_fail_msg(s, EX_CANTCREAT, "cannot write to cache "
			    "'%s': no room within --max-size %lld", s->path,
			    budget);
		else if ((rc = evict(s, id)) == 0)
			n++;
	}
	if (db_count_evictions(s, n) < 0)
		rc = -1;
	*evicted = n;
	return rc;
}

/* Makes room for a write of need bytes within --max-size, if set. */
int
db_make_room(struct store *s, long long need)
{
	long long evicted;

	if (s->max_size <= 0)
		return 0;
	/* and the pages that hold a chunk's row */
	return free_pages(s, s->max_size, need + 2 * 4096, &evicted);
}

/*
 * Keeps the file within max bytes from now on (0: no bound), and its
 * WAL within wal_limit, a quarter of it.
 */
void
store_set_max_size(struct store *s, long long max)
{
	s->max_size = max;
	db_size_wal(s);
}

/*
 * relay-cache purge --to: evicts as a write would need, until the
 * pages in use fit in max, or nothing is left to evict; the free pages
 * are reused, and given back by vacuum. Returns the pages' bytes in
 * use after, and how many entries were evicted.
 */
long long
store_shrink(struct store *s, long long max, long long *evicted)
{
	long long used;

	if (db_begin_write(s) < 0)
		return -1;
	if (free_pages(s, max, 0, evicted) < 0 && s->status != EX_CANTCREAT) {
		db_rollback(s);
		return -1;
	}
	s->status = 0;	/* what could not be freed is no failure here */
	used = pages_used(s);
	if (db_commit(s) < 0 || db_collect(s, 0) < 0)
		return -1;
	return used;
}
