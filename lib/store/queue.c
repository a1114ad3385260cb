/*
 * The queue file, CACHE-queue: requests accepted for later delivery
 * (relay-serve --queue), their bodies in chunks, their states.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/text.h"
#include "http/http.h"
#include "http/url.h"
#include "store/db.h"

/*
 * The queue file, CACHE-queue: requests accepted for later delivery
 * (relay-serve --queue), synced at every commit, since a client was
 * told they are kept.
 */
static const char *const queue_schema[] = {
	"CREATE TABLE IF NOT EXISTS queue ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  method TEXT NOT NULL, url TEXT NOT NULL, path TEXT NOT NULL,"
	"  fields TEXT NOT NULL, body BLOB NOT NULL,"
	"  state TEXT NOT NULL, attempts INTEGER NOT NULL,"
	"  next_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL, status INTEGER,"
	"  response_type TEXT, response BLOB, error TEXT);"
	"CREATE INDEX IF NOT EXISTS queue_open ON queue (path, id)"
	"  WHERE " Q_OPEN ";"
	"CREATE INDEX IF NOT EXISTS queue_due ON queue (next_ms)"
	"  WHERE " Q_OPEN ";",
	/*
	 * 2: bodies apart, written once (an UPDATE of a row rewrites it
	 * whole), their absence a request without content; an entry named
	 * to its client by an unguessable token, not its row's number.
	 */
	"ALTER TABLE queue ADD COLUMN token TEXT;"
	"CREATE UNIQUE INDEX queue_token ON queue (token);"
	"CREATE TABLE queue_body (id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	"  data BLOB NOT NULL, PRIMARY KEY (id, seq));"
	"INSERT INTO queue_body SELECT id, 0, body FROM queue;"
	"UPDATE queue SET body = x'';",
};
#define QUEUE_VERSION ((int)(sizeof queue_schema / sizeof queue_schema[0]))

/*
 * The queue file's version: its user_version, but for the first
 * version's files, which set none and have objects.
 */
static int
queue_version(struct store *s, int *version)
{
	int objects;

	if (db_pragma_int(s, "PRAGMA user_version", version) < 0 ||
	    db_pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects) < 0)
		return -1;
	s->empty = objects == 0;
	if (*version == 0 && !s->empty)
		*version = 1;
	return 0;
}

/* The queue file's check: empty, or its version's objects exactly. */
static int
check_queue(struct store *s)
{
	int version;

	if (queue_version(s, &version) < 0)
		return -1;
	if (version < 0)
		return db_unknown_version(s, version);
	if (version > QUEUE_VERSION)
		return db_fail_msg(s, EX_DATAERR, "cannot open queue '%s': "
		    "written by a newer relay (schema version %d, this one "
		    "knows %d)", s->path, version, QUEUE_VERSION);
	return s->empty ? 0 : db_check_schema(s, queue_schema, version);
}

static const struct schema queue_file = {
	queue_schema, QUEUE_VERSION, queue_version, "",
};

static int
setup_queue(struct store *s)
{
	int cookie;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	s->check = check_queue;
	if (store_harden(s->db, 0) < 0)
		return db_fail(s, sqlite3_errcode(s->db), "open");
	/* The first read tells a file that is not a database. */
	if (db_pragma_int(s, "PRAGMA schema_version", &cookie) < 0 ||
	    db_check_at_open(s) < 0)
		return -1;
	if (s->empty && !s->create)
		return 0;
	/* The log's room goes back once a large body is checkpointed. */
	if (db_exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	    " PRAGMA journal_size_limit = 4194304", "open") < 0 ||
	    db_migrate(s, &queue_file) < 0)
		return -1;
	return db_check_at_open(s);
}

/*
 * Opens the queue file beside cache_path; with create, makes it, else
 * reads one that is empty as empty.
 */
struct store *
store_open_queue(const char *cache_path, int create)
{
	struct buf path = BUF_INIT;
	struct store *s;

	buf_printf(&path, "%s-queue", cache_path);
	s = db_open_file(buf_cstr(&path), buf_cstr(&path), SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0), create,
	    setup_queue);
	buf_free(&path);
	return s;
}

static void *
column_blob(sqlite3_stmt *st, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(st, col);
	char *copy;

	*len = (size_t)sqlite3_column_bytes(st, col);
	copy = xmalloc(*len + 1);
	if (*len > 0)
		memcpy(copy, p, *len);
	copy[*len] = '\0';
	return copy;
}

static void
read_queued(sqlite3_stmt *st, struct store_queued *q)
{
	q->id = sqlite3_column_int64(st, 0);
	q->method = db_column_text(st, 1);
	q->url = db_column_text(st, 2);
	q->path = db_column_text(st, 3);
	q->fields = db_column_text(st, 4);
	q->token = db_column_text(st, 5);
	q->body = NULL;		/* store_queue_body's */
	q->body_len = 0;
	q->state = db_column_text(st, 6);
	q->attempts = sqlite3_column_int64(st, 7);
	q->next_ms = sqlite3_column_int64(st, 8);
	q->created_ms = sqlite3_column_int64(st, 9);
	q->updated_ms = sqlite3_column_int64(st, 10);
	q->status = sqlite3_column_int(st, 11);
	q->response_type = db_column_text(st, 12);
	q->response = column_blob(st, 13, &q->response_len);
	q->error = db_column_text(st, 14);
	q->damaged = NULL;
}

/* The types of Q_COLUMNS (columns_invalid). */
static const char queued_types[] = "ittttTtiiiiITBT";

/*
 * Why a queued request is not one relay writes, or NULL: a method that
 * is not a method name, a URL that is not normalised (relay queues the
 * upstream's URL, url_normalize), a state relay does not give, fields
 * that are not as stored (store_fields_invalid), a column of another
 * type. relay-serve never delivers it; relay-cache names it.
 */
static const char *
queued_invalid(const struct store_queued *q, char *why, size_t len)
{
	static const char *const states[] = { "queued", "delivering",
		"delivered", "failed" };
	const char *bad;
	char *normal, *shown;
	size_t i;
	int normalised;

	for (i = 0; i < sizeof states / sizeof states[0]; i++)
		if (strcmp(q->state, states[i]) == 0)
			break;
	if (i == sizeof states / sizeof states[0]) {
		shown = text_printable(q->state, 0);
		snprintf(why, len, "its state '%.40s' is not queued, "
		    "delivering, delivered or failed", shown);
		free(shown);
		return why;
	}
	if (!http_method_valid(q->method)) {
		shown = text_printable(q->method, 0);
		snprintf(why, len, "its method '%.40s' is not a method name",
		    shown);
		free(shown);
		return why;
	}
	normal = url_normalize(q->url, &bad);
	normalised = normal != NULL && strcmp(normal, q->url) == 0;
	free(normal);
	if (!normalised) {
		snprintf(why, len, "its URL is not a normalised URL");
		return why;
	}
	return store_fields_invalid(q->fields, why, len);
}

/*
 * Reads a queued request as read_queued does; one relay never wrote
 * has its fields read as they are, and q->damaged is store_error's
 * message naming it. Returns 0, or STORE_DAMAGED.
 */
static int
read_queued_row(struct store *s, sqlite3_stmt *st, struct store_queued *q)
{
	char why[200], *url;
	int typed = db_columns_invalid(st, queued_types, why, sizeof why) == NULL;

	read_queued(st, q);
	if (typed && queued_invalid(q, why, sizeof why) == NULL)
		return 0;
	url = text_printable(q->url, 0);
	db_fail_msg(s, EX_DATAERR, "cannot read queue '%s': entry %lld '%.200s' "
	    "is damaged: %s", s->path, q->id, url, why);
	q->damaged = xstrdup(s->err);
	free(url);
	return STORE_DAMAGED;
}

void
store_queued_free(struct store_queued *q)
{
	free(q->method);
	free(q->url);
	free(q->path);
	free(q->fields);
	free(q->token);
	free(q->body);
	free(q->state);
	free(q->response_type);
	free(q->response);
	free(q->error);
	free(q->damaged);
	memset(q, 0, sizeof *q);
}

/*
 * Keeps q (method, url, path, fields, token, body) as queued; sets
 * q->id. Inside a batch, so that the entry and its body go together.
 */
int
store_queue_add(struct store *s, struct store_queued *q, long long now_ms)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_ADD);
	size_t at, n;
	long long seq;

	assert(s->batch);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, q->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, q->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, q->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, q->fields, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, q->token, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	if (db_write_one(s, st) < 0)
		return -1;
	q->id = sqlite3_last_insert_rowid(s->db);
	if (q->body == NULL)
		return 0;	/* no content: no chunk, not even an empty one */
	for (at = 0, seq = 0; at == 0 || at < q->body_len; at += n, seq++) {
		n = q->body_len - at < CHUNK_SIZE ? q->body_len - at :
		    CHUNK_SIZE;
		if ((st = db_stmt(s, ST_Q_ADD_BODY)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, q->id);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_blob(st, 3, q->body + at, (int)n, SQLITE_STATIC);
		if (db_write_one(s, st) < 0)
			return db_planted_at(s, "queue_body", "entry", q->id);
		if (n == 0)
			break;
	}
	return 0;
}

/*
 * Reads q's body, when it is delivered: into q->body, or NULL if it
 * had none. Its chunks go into one buffer of its size, so that it is
 * held once. Returns 0, or -1 if the file cannot be read.
 */
int
store_queue_body(struct store *s, struct store_queued *q)
{
	sqlite3_stmt *st;
	long long chunks = 0, size = 0;
	size_t n;
	int rc;

	free(q->body);
	q->body = NULL;
	q->body_len = 0;
	if (store_read_begin(s) < 0 || (st = db_stmt(s, ST_Q_BODY_SIZE)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, q->id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		chunks = sqlite3_column_int64(st, 0);
		size = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW || (st = db_stmt(s, ST_Q_BODY)) == NULL)
		goto fail;
	if (chunks > 0)		/* content, maybe empty; else none */
		q->body = xmalloc((size_t)size + 1);
	sqlite3_bind_int64(st, 1, q->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    (n = (size_t)sqlite3_column_bytes(st, 0)) <=
	    (size_t)size - q->body_len) {
		if (n > 0)
			memcpy(q->body + q->body_len,
			    sqlite3_column_blob(st, 0), n);
		q->body_len += n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || q->body_len != (size_t)size)
		goto fail;
	if (q->body != NULL)
		q->body[q->body_len] = '\0';
	store_read_end(s);
	return 0;
fail:
	store_read_end(s);
	free(q->body);
	q->body = NULL;
	q->body_len = 0;
	return db_fail_msg(s, EX_IOERR, "cannot read queue entry %lld's body",
	    q->id);
}

/*
 * Calls fn with each entry st yields, all from one snapshot; with
 * all, those relay never wrote too (q->damaged says why), else they
 * are skipped.
 */
static int
each_queued(struct store *s, sqlite3_stmt *st,
    void (*fn)(void *, struct store_queued *), void *ctx, int all)
{
	struct store_queued q;
	int rc;

	if (st == NULL)
		return -1;
	if (store_read_begin(s) < 0) {
		sqlite3_reset(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_queued_row(s, st, &q) < 0 && !all)
			store_queued_free(&q);
		else
			fn(ctx, &q);	/* q is fn's */
	}
	if (rc != SQLITE_DONE)
		db_fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Calls fn with each of up to max entries that may be delivered now. */
int
store_queue_due(struct store *s, long long now_ms, int max,
    void (*fn)(void *, struct store_queued *), void *ctx)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_DUE);

	if (st != NULL) {
		sqlite3_bind_int64(st, 1, now_ms);
		sqlite3_bind_int(st, 2, max);
	}
	return each_queued(s, st, fn, ctx, 0);
}

/* Marks an entry as being delivered, one attempt more; 0 if it is not open. */
long long
store_queue_start(struct store *s, long long id, long long now_ms)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_START);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return db_write_one(s, st);
}

/*
 * The end of an attempt, as r says: its state (delivered, failed, or
 * queued again at next_ms), the upstream's status and response, the
 * error; uncounted: the attempt did not count (it was never sent).
 */
long long
store_queue_settle(struct store *s, const struct store_queued *r,
    int uncounted, long long now_ms)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_SETTLE);
	long long changed;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, r->id);
	sqlite3_bind_text(st, 2, r->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->next_ms);
	if (r->status > 0)
		sqlite3_bind_int(st, 4, r->status);
	sqlite3_bind_text(st, 5, r->response_type, -1, SQLITE_STATIC);
	if (r->response != NULL)
		sqlite3_bind_blob(st, 6, r->response, (int)r->response_len,
		    SQLITE_STATIC);
	sqlite3_bind_text(st, 7, r->error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 8, now_ms);
	sqlite3_bind_int(st, 9, uncounted != 0);
	if ((changed = db_write_one(s, st)) <= 0 || r->state == NULL ||
	    strcmp(r->state, "delivered") != 0)
		return changed;
	/* delivered: its body is needed no more */
	return db_step_in_txn(s, ST_Q_DROP_BODY, r->id) < 0 ? -1 : changed;
}

/*
 * Reads into q the entry st, bound, finds: 1, or 0 if there is none;
 * -1 if it is damaged (store_error names it) or the file failed.
 */
static int
queued_one(struct store *s, sqlite3_stmt *st, struct store_queued *q)
{
	int rc;

	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    read_queued_row(s, st, q) < 0) {
		store_queued_free(q);
		rc = STORE_DAMAGED;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(s, rc, "read");
	}
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Reads entry id into q: 1, or 0 if there is none. */
int
store_queue_get(struct store *s, long long id, struct store_queued *q)
{
	sqlite3_stmt *st;

	if (store_read_begin(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_Q_GET)) == NULL) {
		store_read_end(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	return queued_one(s, st, q);
}

/* Reads the entry its client calls token into q: 1, or 0 if none. */
int
store_queue_find(struct store *s, const char *token, struct store_queued *q)
{
	sqlite3_stmt *st;

	if (store_read_begin(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_Q_FIND)) == NULL) {
		store_read_end(s);
		return -1;
	}
	sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
	return queued_one(s, st, q);
}

/*
 * Calls fn with every entry in state (NULL: any), oldest first, those
 * relay never wrote included: q->damaged says why, for naming them.
 */
int
store_queue_list(struct store *s, const char *state,
    void (*fn)(void *, struct store_queued *), void *ctx)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_LIST);

	if (st != NULL)
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	return each_queued(s, st, fn, ctx, 1);
}

/* Queues failed entries again, id or (-1) every one; returns how many. */
long long
store_queue_retry(struct store *s, long long id, long long now_ms)
{
	sqlite3_stmt *st = db_stmt(s, ST_Q_RETRY);

	if (st == NULL)
		return -1;
	if (id >= 0)
		sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return db_write_one(s, st);
}

/* Two statements of one parameter, in one transaction: the second's count. */
static long long
two_in_txn(struct store *s, enum stmt first, enum stmt second, long long arg)
{
	long long n;

	store_batch_begin(s);
	if (db_step_in_txn(s, first, arg) < 0 ||
	    (n = db_step_in_txn(s, second, arg)) < 0)
		n = -1;
	return store_batch_end(s) < 0 ? -1 : n;
}

/* Removes an entry and its body, whatever its state; returns 1, or 0 if none. */
long long
store_queue_remove(struct store *s, long long id)
{
	return two_in_txn(s, ST_Q_DROP_BODY, ST_Q_REMOVE, id);
}

/* Removes entries delivered before before_ms; returns how many. */
long long
store_queue_forget(struct store *s, long long before_ms)
{
	return two_in_txn(s, ST_Q_FORGET_BODIES, ST_Q_FORGET, before_ms);
}

/* How many entries are queued, being delivered and failed. */
int
store_queue_depth(struct store *s, long long out[3])
{
	sqlite3_stmt *st;
	int rc, i;

	if (store_read_begin(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_Q_DEPTH)) == NULL) {
		store_read_end(s);
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (i = 0; i < 3; i++)
			out[i] = sqlite3_column_int64(st, i);
	else
		db_fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_ROW ? 0 : -1;
}
