/*
 * The cache file: one SQLite database in WAL mode shared by every
 * program. All SQL lives here. Bodies are stored in chunks so that any
 * size is written and read in bounded memory; see relay-cache(5).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/prog.h"
#include "base/text.h"
#include "http/http.h"
#include "http/url.h"
#include "policy/gcra.h"
#include "store/store.h"

#define CHUNK_SIZE	(256 * 1024)
#define BUSY_TIMEOUT_MS	30000
#define ABANDONED_SECS	600	/* a body unwritten for this long lost its writer */
#define COLLECT_BATCH	16	/* chunks deleted per transaction */
#define UNDO_ROOM	(64 * 1024)	/* kept free for a failed write's undoing */
#define APPLICATION_ID	1919249529	/* 0x72656c79, "rely" */
#define STRINGIFY(x)	STRINGIFY_(x)
#define STRINGIFY_(x)	#x

/*
 * The oldest SQLite with all that relay asks of it: the name
 * sqlite_schema (3.33), PRAGMA trusted_schema (3.31),
 * SQLITE_DBCONFIG_DEFENSIVE (3.26), upserts (3.24), sqlite3_prepare_v3
 * (3.20). INSTALL and debian/control name it too.
 */
#define SQLITE_OLDEST		3033000
#define SQLITE_OLDEST_NAME	"3.33.0"
#if SQLITE_VERSION_NUMBER < SQLITE_OLDEST
#error "relay needs SQLite 3.33.0 or later"
#endif

enum body_state { BODY_WRITING, BODY_COMPLETE, BODY_GARBAGE };

/*
 * Schema migrations: migrations[i] takes user_version i to i + 1.
 * Only ever append; relay-cache(5) documents the result.
 */
static const char *const migrations[] = {
	"CREATE TABLE bodies ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  state INTEGER NOT NULL,"
	"  touched INTEGER NOT NULL);"
	"CREATE INDEX bodies_state ON bodies(state, touched);"
	"CREATE TABLE chunks ("
	"  body INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  PRIMARY KEY (body, seq));"
	"CREATE TABLE entries ("
	"  id INTEGER PRIMARY KEY,"
	"  method TEXT NOT NULL,"
	"  url TEXT NOT NULL,"
	"  variant TEXT NOT NULL DEFAULT '',"
	"  status INTEGER NOT NULL,"
	"  headers TEXT NOT NULL,"
	"  request_time INTEGER NOT NULL,"
	"  response_time INTEGER NOT NULL,"
	"  date INTEGER,"
	"  age INTEGER NOT NULL DEFAULT 0,"
	"  lifetime INTEGER NOT NULL,"
	"  stale_at INTEGER NOT NULL,"
	"  etag TEXT,"
	"  last_modified TEXT,"
	"  body INTEGER NOT NULL REFERENCES bodies(id),"
	"  size INTEGER NOT NULL,"
	"  hits INTEGER NOT NULL DEFAULT 0,"
	"  last_hit INTEGER,"
	"  UNIQUE (method, url, variant));"
	"CREATE INDEX entries_stale_at ON entries(stale_at);",
	/* 2: URLs whose last response could not be stored (hit-for-miss). */
	"CREATE TABLE uncacheable ("
	"  url TEXT PRIMARY KEY,"
	"  until INTEGER NOT NULL) WITHOUT ROWID;",
	/* 3: relay-serve's counters, every process's summed (metrics.h). */
	"CREATE TABLE counters ("
	"  series TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL) WITHOUT ROWID;",
	/* 4: the size budget's eviction (SIEVE): a bit an entry, a hand. */
	"ALTER TABLE entries ADD COLUMN visited INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE eviction (hand INTEGER NOT NULL);"
	"INSERT INTO eviction (hand) VALUES (0);",
	/*
	 * 5: change numbers for /_relay/sync: an entry's is its last new
	 * status or body; horizon is the newest of a gone tombstone (an
	 * entry of 404 or 410 removed), under which deltas are not whole.
	 */
	"ALTER TABLE entries ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;"
	"UPDATE entries SET changed = id;"
	"CREATE INDEX entries_changed ON entries(changed);"
	"CREATE TABLE sync (seq INTEGER NOT NULL, horizon INTEGER NOT NULL);"
	"INSERT INTO sync SELECT coalesce(max(changed), 0), 0 FROM entries;"
	"CREATE TRIGGER entries_added AFTER INSERT ON entries BEGIN"
	"  UPDATE sync SET seq = seq + 1;"
	"  UPDATE entries SET changed = (SELECT seq FROM sync)"
	"   WHERE id = NEW.id;"
	"END;"
	"CREATE TRIGGER entries_changed AFTER UPDATE OF status, body ON entries"
	" BEGIN"
	"  UPDATE sync SET seq = seq + 1;"
	"  UPDATE entries SET changed = (SELECT seq FROM sync)"
	"   WHERE id = NEW.id;"
	"END;"
	"CREATE TRIGGER entries_gone AFTER DELETE ON entries"
	" WHEN OLD.status IN (404, 410) BEGIN"
	"  UPDATE sync SET horizon = max(horizon, OLD.changed);"
	"END;",
	/*
	 * 6: a URL's newest variant found at once, without sorting them
	 * all (store_get with no variant: every lookup's first step).
	 */
	"CREATE INDEX entries_newest ON entries(method, url, response_time);",
};
#define LATEST_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
_Static_assert(LATEST_VERSION == STORE_SCHEMA_VERSION,
    "store.h names the version the migrations reach");

#define ENTRY_COLUMNS \
	"id, method, url, variant, status, headers, request_time," \
	" response_time, date, age, lifetime, stale_at, etag, last_modified," \
	" body, size, hits"

/* Entries chosen by purge: ?1 a GLOB or NULL, ?2 a time or NULL. */
#define PURGE_WHERE \
	"(?1 IS NULL OR url GLOB ?1) AND (?2 IS NULL OR stale_at <= ?2)"

/*
 * A URL's variants past the cap (?3), but the one just stored (?4):
 * those used least recently, by their last hit or else their storing.
 */
#define VARIANTS_PAST_CAP \
	"method = ?1 AND url = ?2 ORDER BY variant = ?4 DESC," \
	" coalesce(last_hit, response_time) DESC, id DESC LIMIT -1 OFFSET ?3"

enum stmt {
	ST_GET, ST_GET_ANY, ST_BODY_NEW, ST_BODY_TOUCH, ST_BODY_DONE,
	ST_CHUNK_PUT, ST_OLD_BODY, ST_UPSERT, ST_BODY_DROP, ST_HIT,
	ST_ABANDON, ST_ORPHANS, ST_COLLECT_CHUNKS, ST_COLLECT_BODIES,
	ST_DROP_URL_BODIES, ST_DROP_URL, ST_PURGE_BODIES, ST_PURGE,
	ST_STATS_ENTRIES, ST_STATS_BODIES, ST_REFRESH, ST_SAVEPOINT,
	ST_RELEASE, ST_ROLLBACK_TO, ST_MARK, ST_MARKED, ST_UNMARK,
	ST_UNMARK_EXPIRED, ST_DATA_VERSION, ST_COUNTER_ADD, ST_COUNTERS, ST_Q_ADD, ST_Q_DUE,
	ST_Q_START, ST_Q_SETTLE, ST_Q_GET, ST_Q_LIST, ST_Q_RETRY, ST_Q_REMOVE,
	ST_Q_DEPTH, ST_Q_FORGET, ST_Q_ADD_BODY, ST_Q_BODY_SIZE, ST_Q_BODY,
	ST_Q_DROP_BODY,
	ST_Q_FIND, ST_Q_FORGET_BODIES, ST_PAGES_USED, ST_EXPIRED_ONE, ST_HAND_GET,
	ST_HAND_PUT, ST_SIEVE_NEXT, ST_UNVISIT, ST_EVICT_BODY, ST_EVICT,
	ST_SYNC_MARK, ST_SCHEMA_VERSION, ST_ENTRY_URL, ST_BODY_HELD,
	ST_BODY_CHECK, ST_VARIANTS_BODIES, ST_VARIANTS, ST_HAS_GARBAGE,
	ST_FREE_BYTES,
	ST_COUNT
};

#define Q_COLUMNS \
	"id, method, url, path, fields, token, state, attempts, next_ms," \
	" created_ms, updated_ms, status, response_type, response, error"
#define Q_OPEN	"state IN ('queued', 'delivering')"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_GET] = "SELECT " ENTRY_COLUMNS " FROM entries"
	    " WHERE method = ?1 AND url = ?2 AND variant = ?3",
	[ST_GET_ANY] = "SELECT " ENTRY_COLUMNS " FROM entries"
	    " WHERE method = ?1 AND url = ?2 ORDER BY response_time DESC"
	    " LIMIT 1",
	[ST_BODY_NEW] = "INSERT INTO bodies (state, touched) VALUES (?1, ?2)",
	[ST_BODY_TOUCH] = "UPDATE bodies SET touched = ?2 WHERE id = ?1",
	[ST_BODY_DONE] = "UPDATE bodies SET state = 1, touched = ?2"
	    " WHERE id = ?1 AND state = 0",
	[ST_CHUNK_PUT] = "INSERT INTO chunks (body, seq, data)"
	    " VALUES (?1, ?2, ?3)",
	[ST_OLD_BODY] = "SELECT body FROM entries"
	    " WHERE method = ?1 AND url = ?2 AND variant = ?3",
	[ST_UPSERT] = "INSERT INTO entries (method, url, variant, status,"
	    " headers, request_time, response_time, date, age, lifetime,"
	    " stale_at, etag, last_modified, body, size)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
	    " ?14, ?15)"
	    " ON CONFLICT (method, url, variant) DO UPDATE SET"
	    " status = excluded.status, headers = excluded.headers,"
	    " request_time = excluded.request_time,"
	    " response_time = excluded.response_time, date = excluded.date,"
	    " age = excluded.age, lifetime = excluded.lifetime,"
	    " stale_at = excluded.stale_at, etag = excluded.etag,"
	    " last_modified = excluded.last_modified, body = excluded.body,"
	    " size = excluded.size",
	[ST_BODY_DROP] = "UPDATE bodies SET state = 2 WHERE id = ?1",
	[ST_HIT] = "UPDATE entries SET hits = hits + ?3, last_hit = ?2,"
	    " visited = 1 WHERE id = ?1",
	[ST_ABANDON] = "UPDATE bodies SET state = 2"
	    " WHERE state = 0 AND touched < ?1",
	[ST_ORPHANS] = "UPDATE bodies SET state = 2 WHERE state = 1"
	    " AND NOT EXISTS (SELECT 1 FROM entries WHERE body = bodies.id)",
	[ST_COLLECT_CHUNKS] = "DELETE FROM chunks WHERE rowid IN"
	    " (SELECT c.rowid FROM bodies b JOIN chunks c ON c.body = b.id"
	    " WHERE b.state = 2 LIMIT 16)",
	[ST_COLLECT_BODIES] = "DELETE FROM bodies WHERE state = 2"
	    " AND NOT EXISTS (SELECT 1 FROM chunks WHERE body = bodies.id)",
	[ST_DROP_URL_BODIES] = "UPDATE bodies SET state = 2 WHERE id IN"
	    " (SELECT body FROM entries WHERE url = ?1)",
	[ST_DROP_URL] = "DELETE FROM entries WHERE url = ?1",
	[ST_PURGE_BODIES] = "UPDATE bodies SET state = 2 WHERE id IN"
	    " (SELECT body FROM entries WHERE " PURGE_WHERE ")",
	[ST_PURGE] = "DELETE FROM entries WHERE " PURGE_WHERE,
	[ST_VARIANTS_BODIES] = "UPDATE bodies SET state = 2 WHERE id IN"
	    " (SELECT body FROM entries WHERE " VARIANTS_PAST_CAP ")",
	[ST_VARIANTS] = "DELETE FROM entries WHERE id IN"
	    " (SELECT id FROM entries WHERE " VARIANTS_PAST_CAP ")",
	[ST_STATS_ENTRIES] = "SELECT count(*), total(stale_at > ?1),"
	    " total(size), total(hits) FROM entries",
	[ST_STATS_BODIES] = "SELECT total(state = 0), total(state = 2)"
	    " FROM bodies",
	[ST_HAS_GARBAGE] = "SELECT 1 FROM bodies WHERE state = 2 LIMIT 1",
	[ST_FREE_BYTES] = "SELECT freelist_count * page_size"
	    " FROM pragma_freelist_count, pragma_page_size",
	[ST_REFRESH] = "UPDATE entries SET headers = ?2, request_time = ?3,"
	    " response_time = ?4, date = ?5, age = ?6, lifetime = ?7,"
	    " stale_at = ?8, etag = ?9, last_modified = ?10 WHERE id = ?1",
	[ST_SAVEPOINT] = "SAVEPOINT batch_write",
	[ST_RELEASE] = "RELEASE batch_write",
	[ST_ROLLBACK_TO] = "ROLLBACK TO batch_write",
	[ST_MARK] = "INSERT INTO uncacheable (url, until) VALUES (?1, ?2)"
	    " ON CONFLICT (url) DO UPDATE SET until = excluded.until",
	[ST_MARKED] = "SELECT 1 FROM uncacheable WHERE url = ?1 AND until > ?2",
	[ST_UNMARK] = "DELETE FROM uncacheable WHERE url = ?1",
	[ST_UNMARK_EXPIRED] = "DELETE FROM uncacheable WHERE until <= ?1",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_SCHEMA_VERSION] = "PRAGMA schema_version",
	/* damage (store_body_check) */
	[ST_ENTRY_URL] = "SELECT url FROM entries WHERE id = ?1",
	[ST_BODY_HELD] = "SELECT 1 FROM entries WHERE id = ?1 AND body = ?2",
	/*
	 * A body's rows as store_body_check judges them: whether it is
	 * there, complete; its chunks, bytes, first and last seq; how many
	 * are not a blob of at most a chunk at an integer seq. length()
	 * and typeof() read a row's header, not its bytes.
	 */
	[ST_BODY_CHECK] = "SELECT count(b.id), count(c.body),"
	    " coalesce(sum(length(c.data)), 0), min(c.seq), max(c.seq),"
	    " total(c.body IS NOT NULL AND (typeof(c.data) <> 'blob'"
	    " OR typeof(c.seq) <> 'integer'"
	    " OR length(c.data) > " STRINGIFY(CHUNK_SIZE) "))"
	    " FROM bodies b LEFT JOIN chunks c ON c.body = b.id"
	    " WHERE b.id = ?1 AND b.state = 1",
	/* the size budget (make_room) */
	[ST_PAGES_USED] = "SELECT (page_count - freelist_count) * page_size"
	    " FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
	[ST_EXPIRED_ONE] = "SELECT id FROM entries WHERE stale_at <= ?1"
	    " ORDER BY stale_at LIMIT 1",
	[ST_HAND_GET] = "SELECT hand FROM eviction",
	[ST_SYNC_MARK] = "SELECT seq, horizon FROM sync",
	[ST_HAND_PUT] = "UPDATE eviction SET hand = ?1",
	[ST_SIEVE_NEXT] = "SELECT id, visited FROM entries WHERE id >= ?1"
	    " ORDER BY id LIMIT 1",
	[ST_UNVISIT] = "UPDATE entries SET visited = 0 WHERE id = ?1",
	[ST_EVICT_BODY] = "UPDATE bodies SET state = 2"
	    " WHERE id = (SELECT body FROM entries WHERE id = ?1)",
	[ST_EVICT] = "DELETE FROM entries WHERE id = ?1",
	[ST_COUNTER_ADD] = "INSERT INTO counters (series, value) VALUES (?1, ?2)"
	    " ON CONFLICT (series) DO UPDATE SET value = value + excluded.value",
	[ST_COUNTERS] = "SELECT series, value FROM counters",
	/* the queue file (store_open_queue) */
	[ST_Q_ADD] = "INSERT INTO queue (method, url, path, fields, body,"
	    " token, state, attempts, next_ms, created_ms, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, x'', ?5, 'queued', 0, ?6, ?6, ?6)",
	/*
	 * A body apart, written once, so that a change of state never
	 * copies it, and in chunks, which SQLite copies one at a time.
	 */
	[ST_Q_ADD_BODY] = "INSERT INTO queue_body (id, seq, data)"
	    " VALUES (?1, ?2, ?3)",
	[ST_Q_BODY_SIZE] = "SELECT count(*), total(length(data))"
	    " FROM queue_body WHERE id = ?1",
	[ST_Q_BODY] = "SELECT data FROM queue_body WHERE id = ?1 ORDER BY seq",
	[ST_Q_DROP_BODY] = "DELETE FROM queue_body WHERE id = ?1",
	[ST_Q_FIND] = "SELECT " Q_COLUMNS " FROM queue WHERE token = ?1",
	[ST_Q_FORGET_BODIES] = "DELETE FROM queue_body WHERE id IN"
	    " (SELECT id FROM queue WHERE state = 'delivered'"
	    " AND updated_ms < ?1)",
	/*
	 * What may go now: each path's first open one, if it is queued and
	 * due (one being delivered is its deliverer's, or an orphan's).
	 */
	[ST_Q_DUE] = "SELECT " Q_COLUMNS " FROM queue q WHERE state = 'queued'"
	    " AND next_ms <= ?1 AND NOT EXISTS (SELECT 1 FROM queue p"
	    " WHERE p.path = q.path AND p.id < q.id AND p." Q_OPEN ")"
	    " ORDER BY id LIMIT ?2",
	[ST_Q_START] = "UPDATE queue SET state = 'delivering',"
	    " attempts = attempts + 1, updated_ms = ?2"
	    " WHERE id = ?1 AND " Q_OPEN,
	[ST_Q_SETTLE] = "UPDATE queue SET state = ?2, next_ms = ?3,"
	    " status = ?4, response_type = ?5, response = ?6, error = ?7,"
	    " updated_ms = ?8, attempts = attempts - ?9"
	    " WHERE id = ?1 AND state = 'delivering'",
	[ST_Q_GET] = "SELECT " Q_COLUMNS " FROM queue WHERE id = ?1",
	[ST_Q_LIST] = "SELECT " Q_COLUMNS " FROM queue"
	    " WHERE ?1 IS NULL OR state = ?1 ORDER BY id",
	[ST_Q_RETRY] = "UPDATE queue SET state = 'queued', attempts = 0,"
	    " next_ms = ?2, updated_ms = ?2, error = NULL"
	    " WHERE (?1 IS NULL OR id = ?1) AND state = 'failed'",
	[ST_Q_REMOVE] = "DELETE FROM queue WHERE id = ?1",
	[ST_Q_DEPTH] = "SELECT total(state = 'queued'),"
	    " total(state = 'delivering'), total(state = 'failed') FROM queue",
	[ST_Q_FORGET] = "DELETE FROM queue WHERE state = 'delivered'"
	    " AND updated_ms < ?1",
};

struct store {
	sqlite3		*db;
	char		*path;
	int		 status;	/* sysexits code of the last failure */
	int		 garbage;	/* this handle made garbage to collect */
	int		 batch;		/* inside store_batch_begin/end */
	int		 batch_open;	/* the batch began its transaction */
	int		 batch_lost;	/* and SQLite undid it since */
	long long	 batch_bytes;	/* body bytes written in it */
	long long	 max_size;	/* the size budget; 0: none */
	int		 busy_ms;	/* store_busy_timeout's, if set */
	int		 create;	/* an empty file gets the schema */
	int		 empty;		/* the file has no schema yet */
	int		 cookie;	/* schema_version when last checked */
	int		 no_room;	/* the last failure was a full disk */
	int		 rc;		/* SQLite's code for the last failure */
	int		 exclusive;	/* opened so, for a full disk */
	int		 (*check)(struct store *);	/* the schema's */
	char		 err[512];
	sqlite3_stmt	*stmt[ST_COUNT];
	sqlite3_stmt	*spare_body;	/* a body statement to reuse */
};

struct store_writer {
	struct store	*s;
	long long	 body;		/* 0 until the first chunk is written */
	long long	 seq;
	long long	 size;
	unsigned char	*chunk;
	size_t		 len;
	size_t		 cap;		/* grows to CHUNK_SIZE as needed */
	int		 failed;
};

struct store_body {
	struct store	*s;
	sqlite3_stmt	*st;
	long long	 entry, body;	/* the ids */
	const unsigned char *data;
	size_t		 left;
	long long	 expect;
	long long	 got;
	int		 rows;
};

struct store_iter {
	struct store	*s;
	sqlite3_stmt	*st;
};

/* Maps an SQLite result code to the toolkit's exit status (relay.7). */
static int
status_of(int rc)
{
	switch (rc & 0xFF) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EX_TEMPFAIL;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return EX_NOPERM;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		return EX_IOERR;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_FORMAT:
		return EX_DATAERR;
	case SQLITE_CANTOPEN:
		return EX_CANTCREAT;
	case SQLITE_NOMEM:
		return EX_OSERR;
	default:
		return EX_SOFTWARE;
	}
}

static int
fail_msg(struct store *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_msg(struct store *s, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	s->status = status;
	return -1;
}

/*
 * Rows relay keeps a certain way, which another program may have
 * changed: a write that fails on one fails for that reason, not the
 * one SQLite gives (a sequence at its end is "database or disk is
 * full"; no row in sync, "NOT NULL constraint failed"). Each query
 * finds the damage, if any; one whose table the file lacks (the queue
 * file) is passed over. Rows planted where a new row goes are found
 * where it goes (planted_at).
 */
static const struct {
	const char *sql, *what;
} singletons[] = {
	{ "SELECT name FROM sqlite_sequence WHERE typeof(seq) <> 'integer'"
	    " OR seq >= 4611686018427387904",
	    "its table 'sqlite_sequence' is damaged: the sequence of '%s' is "
	    "past 2^62, which relay never reaches" },
	{ "SELECT CASE count(*) WHEN 1 THEN 'its row is not two integers"
	    " under 2^62' ELSE count(*) || ' rows, not one' END FROM sync"
	    " HAVING count(*) <> 1 OR total(typeof(seq) <> 'integer'"
	    " OR typeof(horizon) <> 'integer' OR seq >= 4611686018427387904)",
	    "its table 'sync' is damaged: %s" },
	{ "SELECT CASE count(*) WHEN 1 THEN 'its row is not an integer'"
	    " ELSE count(*) || ' rows, not one' END FROM eviction"
	    " HAVING count(*) <> 1 OR total(typeof(hand) <> 'integer')",
	    "its table 'eviction' is damaged: %s" },
};

/* Which of relay's singleton rows is damaged (singletons), or NULL. */
static const char *
singleton_damage(struct store *s, char *why, size_t len)
{
	sqlite3_stmt *st;
	const char *value;
	char *shown;
	size_t i;
	int found;

	for (i = 0; i < sizeof singletons / sizeof singletons[0]; i++) {
		if (sqlite3_prepare_v2(s->db, singletons[i].sql, -1, &st,
		    NULL) != SQLITE_OK)
			continue;
		if ((found = sqlite3_step(st) == SQLITE_ROW)) {
			value = (const char *)sqlite3_column_text(st, 0);
			shown = text_printable(value != NULL ? value : "", 0);
			snprintf(why, len, singletons[i].what, shown);
			free(shown);
		}
		sqlite3_finalize(st);
		if (found)
			return why;
	}
	return NULL;
}

/*
 * Records an SQLite failure as "cannot ACTION cache 'PATH': reason".
 * I/O errors carry the system's reason ("File too large"), which says
 * more than SQLite's "disk I/O error". A write that fails on a damaged
 * singleton row says so (singleton_damage).
 */
static int
fail(struct store *s, int rc, const char *action)
{
	int saved = errno, sys = sqlite3_system_errno(s->db);
	const char *why = sqlite3_errmsg(s->db);
	char damage[200];

	s->rc = rc;
	if (((rc & 0xFF) == SQLITE_FULL || (rc & 0xFF) == SQLITE_CONSTRAINT) &&
	    singleton_damage(s, damage, sizeof damage) != NULL)
		return fail_msg(s, EX_DATAERR, "cannot %s cache '%s': %s",
		    action, s->path, damage);

	/* relay sets no max_page_count: full is a full disk */
	if ((rc & 0xFF) == SQLITE_FULL)
		why = strerror(ENOSPC);
	/* SQLite loses the errno of a failed write in some paths. */
	if (sys == 0)
		sys = saved;

	if ((rc & 0xFF) == SQLITE_IOERR && sys != 0)
		why = strerror(sys);
	if ((rc & 0xFF) == SQLITE_BUSY)
		why = "locked by another process for longer than 30 s";
	s->no_room = (rc & 0xFF) == SQLITE_FULL ||
	    ((rc & 0xFF) == SQLITE_IOERR && sys == ENOSPC);
	return fail_msg(s, status_of(rc), "cannot %s cache '%s': %s",
	    action, s->path, why);
}

static sqlite3_stmt *
stmt(struct store *s, enum stmt which)
{
	sqlite3_stmt *st = s->stmt[which];

	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(s->db, stmt_sql[which], -1,
	    SQLITE_PREPARE_PERSISTENT, &s->stmt[which], NULL) != SQLITE_OK) {
		fail(s, sqlite3_errcode(s->db), "read");
		return NULL;
	}
	return s->stmt[which];
}

/* Runs a statement that returns no rows; returns 0 or -1. */
static int
run(struct store *s, sqlite3_stmt *st, const char *action)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fail(s, rc, action);
	return 0;
}

static int
exec(struct store *s, const char *sql, const char *action)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : fail(s, rc, action);
}

/*
 * Every write is a short BEGIN IMMEDIATE transaction: taking the write
 * lock up front lets the busy timeout queue writers instead of failing
 * a read transaction that tries to upgrade (SQLITE_BUSY, no retry).
 * In a batch, the transaction is begun by the first write and each
 * write is a savepoint in it, so that one that fails undoes only its
 * own changes.
 */
/* Notes that the transaction the batch began is gone. */
static void
note_loss(struct store *s)
{
	if (s->batch_open && sqlite3_get_autocommit(s->db)) {
		s->batch_open = 0;
		s->batch_lost = 1;
	}
}

static int recheck_schema(struct store *);

/* Begins a transaction (sql) on a file whose schema is still relay's. */
static int
begin(struct store *s, const char *sql, const char *action)
{
	if (exec(s, sql, action) < 0)
		return -1;
	if (recheck_schema(s) == 0)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
begin_write(struct store *s)
{
	if (!s->batch)
		return begin(s, "BEGIN IMMEDIATE", "write to");
	note_loss(s);
	if (sqlite3_get_autocommit(s->db)) {
		if (begin(s, "BEGIN IMMEDIATE", "write to") < 0)
			return -1;
		s->batch_open = 1;
		s->batch_bytes = 0;
	}
	return run(s, stmt(s, ST_SAVEPOINT), "write to");
}

static void size_wal(struct store *);
static long long wal_limit(const struct store *);

/* Commits the write; then keeps the WAL within its limit (store_trim_wal). */
static int
commit(struct store *s)
{
	if (s->batch)	/* store_batch_end commits */
		return run(s, stmt(s, ST_RELEASE), "write to");
	if (exec(s, "COMMIT", "write to") == 0) {
		store_trim_wal(s);
		return 0;
	}
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * Undoes the current write. Some failures (a full disk, an I/O error)
 * make SQLite undo the whole transaction itself: store_batch_lost
 * tells when a batch's writes went that way.
 */
static void
rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	if (!s->batch) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return;
	}
	run(s, stmt(s, ST_ROLLBACK_TO), "write to");
	run(s, stmt(s, ST_RELEASE), "write to");
}

/*
 * Groups the writes that follow, until store_batch_end, into one
 * transaction, begun at the first write: many small entries cost one
 * commit. Callers keep batches short, since they hold the write lock.
 */
void
store_batch_begin(struct store *s)
{
	s->batch = 1;
	s->batch_open = 0;
	s->batch_lost = 0;
}

/*
 * Whether the batch's transaction was lost since the last call: the
 * writes made in it until then are undone; the next write begins anew.
 */
int
store_batch_lost(struct store *s)
{
	int lost;

	note_loss(s);
	lost = s->batch_lost;
	s->batch_lost = 0;
	return lost;
}

/*
 * Whether the batch's transaction holds a chunk's worth of body bytes,
 * or as many as the WAL may: its caller ends it there (and begins
 * another), so that no transaction adds more than two chunks to the
 * WAL before it is trimmed (store_trim_wal).
 */
int
store_batch_full(struct store *s)
{
	return s->batch_open && (s->batch_bytes >= CHUNK_SIZE ||
	    s->batch_bytes >= wal_limit(s));
}

/* Commits the batch; returns -1 if some of its writes were lost. */
int
store_batch_end(struct store *s)
{
	int lost = store_batch_lost(s);

	s->batch = 0;
	s->batch_open = 0;
	if (!sqlite3_get_autocommit(s->db) && commit(s) < 0)
		return -1;
	return lost ? -1 : 0;
}

static int
pragma_int(struct store *s, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : fail(s, rc, "open");
}

/*
 * Settings against a hostile file (SQLite's "defense against the dark
 * arts"): no writable schema or other low-level changes (DEFENSIVE),
 * no function from the schema that is not innocuous, no views, and no
 * triggers unless the file's own (relay's) need them.
 */
int
store_harden(sqlite3 *db, int triggers)
{
	static const int off[] = { SQLITE_DBCONFIG_TRUSTED_SCHEMA,
		SQLITE_DBCONFIG_ENABLE_VIEW };
	size_t i;
	int rc;

	rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	for (i = 0; rc == SQLITE_OK && i < sizeof off / sizeof off[0]; i++)
		rc = sqlite3_db_config(db, off[i], 0, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER,
		    triggers, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA cell_size_check = ON", NULL,
		    NULL, NULL);
	return rc == SQLITE_OK ? 0 : -1;
}

/* sqlite_schema's rows in one order, to compare two schemas by. */
static const char schema_rows[] = "SELECT type, name, tbl_name, sql"
    " FROM sqlite_schema ORDER BY type, name";

static int
same_column(sqlite3_stmt *a, sqlite3_stmt *b, int col)
{
	const char *x = (const char *)sqlite3_column_text(a, col);
	const char *y = (const char *)sqlite3_column_text(b, col);

	return x == NULL || y == NULL ? x == y : strcmp(x, y) == 0;
}

/* Which of two rows of schema_rows comes first: <0, 0 (one object), >0. */
static int
object_order(sqlite3_stmt *a, sqlite3_stmt *b)
{
	int c = strcmp((const char *)sqlite3_column_text(a, 0),
	    (const char *)sqlite3_column_text(b, 0));

	return c != 0 ? c : strcmp((const char *)sqlite3_column_text(a, 1),
	    (const char *)sqlite3_column_text(b, 1));
}

/*
 * Refuses the file for a schema object, named: one it has that relay
 * did not create, one it lacks (why NULL), or one that was altered.
 */
static int
refuse_object(struct store *s, sqlite3_stmt *row, const char *why)
{
	const char *type = (const char *)sqlite3_column_text(row, 0);
	char *name = text_printable((const char *)sqlite3_column_text(row, 1),
	    0);

	if (why == NULL)
		fail_msg(s, EX_DATAERR, "cannot open cache '%s': it lacks "
		    "relay's %s '%.100s'", s->path, type, name);
	else if (why[0] == ' ')
		fail_msg(s, EX_DATAERR, "cannot open cache '%s': its %s "
		    "'%.100s'%s", s->path, type, name, why);
	else
		fail_msg(s, EX_DATAERR, "cannot open cache '%s': it has %s "
		    "'%.100s' %s", s->path, type, name, why);
	free(name);
	return -1;
}

/*
 * Compares the file's schema with what the statements in sql make of
 * an empty database: every table, index, trigger and view, their SQL
 * included, so that nothing another program planted or altered (a
 * trigger, a column's default, an index on an expression) ever runs
 * in relay's statements.
 */
/*
 * What the first n statements of sql make of an empty database, made
 * once a process for each (a process opens its files several times,
 * and one a connection under inetd): an in-memory database, kept.
 */
static struct { const char *const *sql; int n; sqlite3 *mem; }
    made[16];	/* a file kind and version each: a few at most */
static size_t nmade;

/* At exit: closed, so that a leak check sees no memory of theirs. */
static void
schemas_close(void)
{
	while (nmade > 0)
		sqlite3_close(made[--nmade].mem);
}

static sqlite3 *
schema_made(const char *const *sql, int n)
{
	sqlite3 *mem = NULL;
	size_t k;
	int i, rc = SQLITE_OK;

	for (k = 0; k < nmade; k++)
		if (made[k].sql == sql && made[k].n == n)
			return made[k].mem;
	if (nmade == 0)
		atexit(schemas_close);
	if (sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		out_of_memory();
	for (i = 0; i < n && rc == SQLITE_OK; i++)
		rc = sqlite3_exec(mem, sql[i], NULL, NULL, NULL);
	assert(rc == SQLITE_OK);	/* relay's own SQL, on a new database */
	assert(nmade < sizeof made / sizeof made[0]);
	made[nmade].sql = sql;
	made[nmade].n = n;
	made[nmade++].mem = mem;
	return mem;
}

static int
check_schema(struct store *s, const char *const *sql, int n)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	sqlite3_stmt *have = NULL, *want = NULL;
	int rh, rw, order, rc;

	pthread_mutex_lock(&lock);	/* the writer thread opens files too */
	rc = sqlite3_prepare_v2(schema_made(sql, n), schema_rows, -1, &want,
	    NULL);
	assert(rc == SQLITE_OK);
	if ((rh = sqlite3_prepare_v2(s->db, schema_rows, -1, &have, NULL)) !=
	    SQLITE_OK)
		rc = fail(s, rh, "open");
	rh = sqlite3_step(have);
	rw = sqlite3_step(want);
	while (rc == 0 && (rh == SQLITE_ROW || rw == SQLITE_ROW)) {
		order = rh != SQLITE_ROW ? 1 : rw != SQLITE_ROW ? -1 :
		    object_order(have, want);
		if (order < 0)
			rc = refuse_object(s, have, "that relay did not create");
		else if (order > 0)
			rc = refuse_object(s, want, NULL);
		else if (!same_column(have, want, 2) ||
		    !same_column(have, want, 3))
			rc = refuse_object(s, have, " is not as relay made it");
		rh = order <= 0 ? sqlite3_step(have) : rh;
		rw = order >= 0 ? sqlite3_step(want) : rw;
	}
	if (rc == 0 && rh != SQLITE_DONE)
		rc = fail(s, rh, "open");
	sqlite3_finalize(have);
	sqlite3_finalize(want);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* A user_version no relay sets: not a version at all. */
static int
unknown_version(struct store *s, int version)
{
	return fail_msg(s, EX_DATAERR, "cannot open cache '%s': unknown "
	    "schema version %d", s->path, version);
}

/* Refuses files not ours, from a newer relay, or altered (check_schema). */
static int
check_identity(struct store *s, int version)
{
	int tables, app;

	if (version < 0)
		return unknown_version(s, version);
	if (version > LATEST_VERSION)
		return fail_msg(s, EX_DATAERR, "cannot open cache '%s': "
		    "written by a newer relay (schema version %d, this one "
		    "knows %d)", s->path, version, LATEST_VERSION);
	if (pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables) < 0 ||
	    pragma_int(s, "PRAGMA application_id", &app) < 0)
		return -1;
	if (tables > 0 && app != APPLICATION_ID)
		return fail_msg(s, EX_DATAERR, "cannot open cache '%s': "
		    "not a relay cache (it has tables relay did not create)",
		    s->path);
	s->empty = tables == 0;
	return check_schema(s, migrations, version);
}

/* The cache file's check: its objects are those of its version. */
static int
check_cache(struct store *s)
{
	int version;

	if (pragma_int(s, "PRAGMA user_version", &version) < 0)
		return -1;
	return check_identity(s, version);
}

/* The first check, in a transaction: one snapshot of a file being migrated. */
static int
check_at_open(struct store *s)
{
	if (begin(s, "BEGIN", "open") < 0)
		return -1;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return 0;
}

/*
 * Checks the schema again if it changed since it was last checked:
 * another process may have changed it while this one had the file
 * open. In a transaction, so that what is checked is what is used.
 */
static int
recheck_schema(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_SCHEMA_VERSION);
	int rc, cookie = 0;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cookie = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return fail(s, rc, "read");
	if (cookie == s->cookie)
		return 0;
	if (s->check(s) < 0)
		return -1;
	s->cookie = cookie;
	return 0;
}

/* A file's migrations (each takes its version one up), and its version. */
struct schema {
	const char *const	*migrations;
	int			 latest;
	int			(*version)(struct store *, int *);
	const char		*stamp;		/* SQL once migrated, or "" */
};

/*
 * Applies the missing migrations in one transaction: begin_write checks
 * the file again under the lock, another process may have been first.
 */
static int
migrate(struct store *s, const struct schema *sc)
{
	char sql[64];
	int version;

	if (begin_write(s) < 0)
		return -1;
	if (sc->version(s, &version) < 0)
		goto fail;
	for (; version < sc->latest; version++)
		if (exec(s, sc->migrations[version], "upgrade") < 0)
			goto fail;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", sc->latest);
	if (exec(s, sql, "upgrade") < 0 || exec(s, sc->stamp, "upgrade") < 0)
		goto fail;
	return commit(s);
fail:
	rollback(s);
	return -1;
}

static int
cache_version(struct store *s, int *version)
{
	return pragma_int(s, "PRAGMA user_version", version);
}

static const struct schema cache_schema = {
	migrations, LATEST_VERSION, cache_version,
	"PRAGMA application_id = " STRINGIFY(APPLICATION_ID),
};

/*
 * Garbage another process left (a write that failed on a full disk and
 * could not delete its own): this one's next write collects it.
 */
static int
note_garbage(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_HAS_GARBAGE);
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		s->garbage = 1;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(s, rc, "open");
}

/*
 * Makes a connection to the cache file ready: hardened, its schema
 * checked, in WAL mode, migrated. An empty file that may not be
 * created in is left as it is (store_open reads it as empty).
 */
static int
setup(struct store *s)
{
	int version;

	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	s->check = check_cache;
	if (store_harden(s->db, 1) < 0)
		return fail(s, sqlite3_errcode(s->db), "open");
	/* The first read tells a file that is not a database. */
	if (pragma_int(s, "PRAGMA user_version", &version) < 0 ||
	    check_at_open(s) < 0)
		return -1;
	if (s->empty && !s->create)
		return 0;
	/*
	 * secure_delete FAST: a body removed is not written over with
	 * zeros (some builds' default), which would take its size again
	 * in the WAL, and the room a failed write needs to undo itself.
	 */
	if (!sqlite3_db_readonly(s->db, "main") &&
	    exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	    " PRAGMA secure_delete = FAST", "open") < 0)
		return -1;
	size_wal(s);
	if (version < LATEST_VERSION && migrate(s, &cache_schema) < 0)
		return -1;
	return s->create ? note_garbage(s) : 0;
}

/*
 * Why a file cannot be created: SQLite retries a failed open read-only
 * and reports that attempt's errno, so ask the directory instead.
 */
static int
create_errno(const char *file, int sys)
{
	char *dir = xstrdup(file), *slash = strrchr(dir, '/');
	int rc;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	rc = access(slash != NULL ? dir : ".", W_OK | X_OK) < 0 ? errno : sys;
	free(dir);
	return rc;
}

static int
open_db(struct store *s, const char *file, int flags)
{
	int rc, sys;

	/* An older library than the headers, as a copied binary may find. */
	if (sqlite3_libversion_number() < SQLITE_OLDEST)
		return fail_msg(s, EX_SOFTWARE, "cannot open cache '%s': SQLite "
		    "%s is older than " SQLITE_OLDEST_NAME ", the oldest relay "
		    "works with", s->path, sqlite3_libversion());
	rc = sqlite3_open_v2(file, &s->db, flags, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_limit(s->db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
		    STORE_GLOB_MAX);
		/* before the first read: the WAL index then lives in memory */
		return s->exclusive ? exec(s, "PRAGMA locking_mode = EXCLUSIVE",
		    "open") : 0;
	}
	if (s->db == NULL)
		out_of_memory();
	if ((rc & 0xFF) != SQLITE_CANTOPEN)
		return fail(s, rc, "open");
	sys = sqlite3_system_errno(s->db);
	if (access(file, F_OK) == 0)
		return fail_msg(s, sys == EACCES ? EX_NOPERM : EX_CANTCREAT,
		    "cannot open cache '%s': %s", s->path,
		    sys ? strerror(sys) : sqlite3_errmsg(s->db));
	sys = create_errno(file, sys);
	return fail_msg(s, EX_CANTCREAT, "cannot create cache '%s': %s",
	    s->path, sys ? strerror(sys) : sqlite3_errmsg(s->db));
}

static void
close_db(struct store *s)
{
	int i;

	for (i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->stmt[i]);
		s->stmt[i] = NULL;
	}
	sqlite3_finalize(s->spare_body);
	s->spare_body = NULL;
	sqlite3_close(s->db);
	s->db = NULL;
}

/*
 * Processes that open a new file at once race to create it and to
 * turn on WAL; SQLite answers the loser SQLITE_BUSY at once, with no
 * busy handler (it would deadlock), so the loser tries again.
 */
static void
open_racing(struct store *s, const char *path, int flags,
    int (*setup_fn)(struct store *))
{
	long long waited_ms = 0, pause_ms = 1;

	s->cookie = -1;		/* nothing checked yet */
	while (open_db(s, path, flags) < 0 || setup_fn(s) < 0) {
		close_db(s);
		if (s->status != EX_TEMPFAIL || waited_ms >= BUSY_TIMEOUT_MS)
			break;
		usleep((useconds_t)pause_ms * 1000);
		waited_ms += pause_ms;
		pause_ms = pause_ms < 100 ? pause_ms * 2 : 100;
		s->status = 0;		/* the lost race is not this one's */
		s->err[0] = '\0';
		s->cookie = -1;
	}
}

/*
 * Opens a file, or with create false, reads an empty one (no schema
 * yet: new, or of size 0) as an empty database in memory, so that
 * reading never writes to it.
 */
static struct store *
open_file(const char *name, const char *path, int flags, int create,
    int (*setup_fn)(struct store *))
{
	struct store *s = xcalloc(1, sizeof *s);

	s->path = xstrdup(name);
	s->create = create;
	open_racing(s, path, flags, setup_fn);
	if (s->db == NULL && s->no_room && !create) {
		/*
		 * A file system with no room left has none for the WAL's
		 * shared-memory index (-shm) that every connection needs,
		 * readers too: a reader then takes the file for itself
		 * (exclusive locking mode) and keeps that index in memory.
		 */
		s->status = 0;
		s->err[0] = '\0';
		s->exclusive = 1;
		open_racing(s, path, flags, setup_fn);
	}
	if (s->db != NULL && s->empty && !create) {
		close_db(s);
		s->create = 1;
		open_racing(s, ":memory:", flags, setup_fn);
	}
	return s;
}

/*
 * Opens the cache file. Failures still return a handle whose status
 * and error say why; only running out of memory ends the program.
 */
struct store *
store_open(const char *path, enum store_mode mode)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	if (mode == STORE_READ && access(path, F_OK) < 0 && errno == ENOENT)
		return open_file(path, ":memory:", flags, 1, setup);
	if (mode == STORE_WRITE)
		flags |= SQLITE_OPEN_CREATE;
	return open_file(path, path, flags, mode == STORE_WRITE, setup);
}

/* Opens the cache file, or exits with the store's status and reason. */
struct store *
store_open_or_exit(const char *path, enum store_mode mode)
{
	struct store *s = store_open(path, mode);

	if (store_status(s) != 0)
		prog_errx(store_status(s), "%s", store_error(s));
	return s;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->db != NULL)
		close_db(s);
	free(s->path);
	free(s);
}

int
store_status(const struct store *s)
{
	return s->status;
}

const char *
store_error(const struct store *s)
{
	return s->err;
}

const char *
store_path(const struct store *s)
{
	return s->path;
}

/* Reads between begin and end see one consistent snapshot of the file. */
int
store_read_begin(struct store *s)
{
	return begin(s, "BEGIN DEFERRED", "read");
}

void
store_read_end(struct store *s)
{
	rollback(s);
}

/*
 * A number that changes whenever another connection, in this process
 * or another, commits a change to the file; -1 if the store failed.
 * In a read transaction, it is its snapshot's.
 */
long long
store_data_version(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_DATA_VERSION);
	long long v = -1;
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		fail(s, rc, "read");
	sqlite3_reset(st);
	return v;
}

static char *
column_text(sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_text(st, col);

	return p != NULL ? xstrdup((const char *)p) : NULL;
}

static const char *
type_name(int type)
{
	switch (type) {
	case SQLITE_INTEGER: return "an integer";
	case SQLITE_FLOAT: return "a real number";
	case SQLITE_TEXT: return "text";
	case SQLITE_BLOB: return "a blob";
	default: return "NULL";
	}
}

/*
 * Why a row's columns are not of the types relay writes them in, or
 * NULL: types has a letter a column, i for INTEGER, t for TEXT (with
 * no NUL in it), b for BLOB, in upper case if NULL may stand in. A
 * value SQLite could not make an integer ('200abc', 200.5, a blob)
 * would otherwise be read as some other number. Called before any
 * other sqlite3_column_ call, which may convert the value.
 */
static const char *
columns_invalid(sqlite3_stmt *st, const char *types, char *why, size_t len)
{
	const unsigned char *text;
	int i, have, want, lower;

	for (i = 0; types[i] != '\0'; i++) {
		lower = types[i] | 0x20;
		assert(lower == 'i' || lower == 't' || lower == 'b');
		want = lower == 'i' ? SQLITE_INTEGER : lower == 't' ?
		    SQLITE_TEXT : SQLITE_BLOB;
		have = sqlite3_column_type(st, i);
		if (have == SQLITE_NULL && types[i] != lower)
			continue;
		if (have != want) {
			snprintf(why, len, "its %s is %s, not %s",
			    sqlite3_column_name(st, i), type_name(have),
			    type_name(want));
			return why;
		}
		if (have == SQLITE_TEXT && (text = sqlite3_column_text(st, i)) !=
		    NULL && strlen((const char *)text) !=
		    (size_t)sqlite3_column_bytes(st, i)) {
			snprintf(why, len, "its %s has a NUL byte",
			    sqlite3_column_name(st, i));
			return why;
		}
	}
	return NULL;
}

/* The types of ENTRY_COLUMNS (columns_invalid). */
static const char entry_types[] = "itttitiiIiiiTTiii";

static void
read_entry(sqlite3_stmt *st, struct store_entry *e)
{
	e->id = sqlite3_column_int64(st, 0);
	e->method = column_text(st, 1);
	e->url = column_text(st, 2);
	e->variant = column_text(st, 3);
	e->status = sqlite3_column_int(st, 4);
	e->headers = column_text(st, 5);
	e->request_time = (time_t)sqlite3_column_int64(st, 6);
	e->response_time = (time_t)sqlite3_column_int64(st, 7);
	e->date = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 :
	    (time_t)sqlite3_column_int64(st, 8);
	e->age = sqlite3_column_int64(st, 9);
	e->lifetime = sqlite3_column_int64(st, 10);
	e->stale_at = (time_t)sqlite3_column_int64(st, 11);
	e->etag = column_text(st, 12);
	e->last_modified = column_text(st, 13);
	e->body = sqlite3_column_int64(st, 14);
	e->size = sqlite3_column_int64(st, 15);
	e->hits = sqlite3_column_int64(st, 16);
	if (e->headers == NULL)
		e->headers = xstrdup("");
}

/* Whether a validator (NULL: none) can go into a request field as it is. */
static int
field_value(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;	/* RFC 9110 5.5 */
}

/*
 * Why a block of header fields is not one relay stores, or NULL: it is
 * lines that each end in CRLF, with no other control character than
 * HTAB (RFC 9110 section 5.5: a field value is visible characters,
 * obs-text, SP and HTAB), so that a field read back can neither split
 * into two nor drive a terminal (relay-cache get -i).
 */
const char *
store_fields_invalid(const char *headers, char *why, size_t len)
{
	const unsigned char *p = (const unsigned char *)headers, *line = p;
	char *name, *shown;

	for (; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n')
			line = ++p + 1;
		else if (*p < 0x20 && *p != '\t')
			break;
		else if (*p == 0x7F)
			break;
	}
	if (*p == '\0' && line == p)
		return NULL;
	name = xstrndup((const char *)line, strcspn((const char *)line,
	    ":\r\n"));
	shown = text_printable(name, 0);
	if (*p == '\0')
		snprintf(why, len, "field '%.40s' does not end in CRLF", shown);
	else
		snprintf(why, len, "field '%.40s' has the control character "
		    "\\x%02X: a value may have HTAB only (RFC 9110 section "
		    "5.5)", shown, *p);
	free(name);
	free(shown);
	return why;
}

/* Whether t is a time or duration of an entry (STORE_TIME_MAX). */
static int
time_valid(long long t, long long min)
{
	return t >= min && t <= STORE_TIME_MAX;
}

/*
 * Why an entry is one relay never stores, or NULL: a status that is
 * not final (RFC 9110 section 15: a stored response is a final one, and
 * codes past 599 are not defined), a method that is not a method name,
 * a negative size, a time or duration out of bounds (STORE_TIME_MAX),
 * fields with control characters (store_fields_invalid), a validator
 * that is no field value (sent back in If-None-Match, it would add
 * fields of its own). Writes refuse it; reads take it for damage.
 */
const char *
store_entry_invalid(const struct store_entry *e, char *why, size_t len)
{
	const struct { const char *name; long long value, min; } times[] = {
		{ "request_time", e->request_time, -STORE_TIME_MAX },
		{ "response_time", e->response_time, -STORE_TIME_MAX },
		{ "date", e->date, -STORE_TIME_MAX },
		{ "age", e->age, 0 },
		{ "lifetime", e->lifetime, 0 },
		{ "stale_at", e->stale_at, -STORE_TIME_MAX },
	};
	char *shown;
	size_t i;

	if (e->status < 200 || e->status > 599) {
		snprintf(why, len, "status %d is not a final status (200 to "
		    "599)", e->status);
		return why;
	}
	if (e->method == NULL || !http_method_valid(e->method)) {
		shown = text_printable(e->method != NULL ? e->method : "", 0);
		snprintf(why, len, "method '%.40s' is not a method name, a "
		    "token of at most %d characters", shown, HTTP_MAX_METHOD);
		free(shown);
		return why;
	}
	if (e->size < 0) {
		snprintf(why, len, "size %lld is negative", e->size);
		return why;
	}
	if (!field_value(e->etag) || !field_value(e->last_modified)) {
		snprintf(why, len, "its %s holds a CR or LF: it is no field "
		    "value", field_value(e->etag) ? "Last-Modified" : "ETag");
		return why;
	}
	for (i = 0; i < sizeof times / sizeof times[0]; i++)
		if (!time_valid(times[i].value, times[i].min)) {
			snprintf(why, len, "%s %lld is out of bounds (%s to "
			    "2^42 seconds)", times[i].name, times[i].value,
			    times[i].min < 0 ? "-2^42" : "0");
			return why;
		}
	return store_fields_invalid(e->headers != NULL ? e->headers : "", why,
	    len);
}

static int damaged(struct store *, long long, const char *, const char *,
    ...) __attribute__((format(printf, 4, 5)));

/*
 * Records that entry id (whose URL is url, or NULL to look it up) is
 * not as relay writes entries: "entry 'URL' is damaged: why".
 */
static int
damaged(struct store *s, long long id, const char *url, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	char why[200], *shown;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (url == NULL && (st = stmt(s, ST_ENTRY_URL)) != NULL) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			url = (const char *)sqlite3_column_text(st, 0);
	}
	shown = text_printable(url != NULL ? url : "?", 0);
	fail_msg(s, EX_DATAERR, "cannot read cache '%s': entry '%.200s' is "
	    "damaged: %s", s->path, shown, why);
	free(shown);
	if (st != NULL)
		sqlite3_reset(st);
	return STORE_DAMAGED;
}

/*
 * Reads a row as read_entry does, and refuses one relay never wrote:
 * the entry is then freed and store_error names it.
 */
static int
read_row(struct store *s, sqlite3_stmt *st, struct store_entry *e)
{
	char why[160];

	if (columns_invalid(st, entry_types, why, sizeof why) != NULL) {
		memset(e, 0, sizeof *e);
		return damaged(s, sqlite3_column_int64(st, 0), NULL, "%s", why);
	}
	read_entry(st, e);
	if (store_entry_invalid(e, why, sizeof why) == NULL)
		return 0;
	damaged(s, e->id, e->url, "%s", why);
	store_entry_free(e);
	return STORE_DAMAGED;
}

void
store_entry_free(struct store_entry *e)
{
	free(e->method);
	free(e->url);
	free(e->variant);
	free(e->headers);
	free(e->etag);
	free(e->last_modified);
	memset(e, 0, sizeof *e);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Makes dst a copy of src with strings of its own (store_entry_free). */
void
store_entry_copy(struct store_entry *dst, const struct store_entry *src)
{
	*dst = *src;
	dst->method = dup_or_null(src->method);
	dst->url = dup_or_null(src->url);
	dst->variant = dup_or_null(src->variant);
	dst->headers = dup_or_null(src->headers);
	dst->etag = dup_or_null(src->etag);
	dst->last_modified = dup_or_null(src->last_modified);
}

/*
 * Looks up an entry; variant NULL means the most recent of any
 * variant. Returns 1 if found, 0 if not, STORE_DAMAGED if the entry
 * is damaged (store_entry_invalid), -1 on another error: store_error
 * says which.
 */
int
store_get(struct store *s, const char *method, const char *url,
    const char *variant, struct store_entry *e)
{
	sqlite3_stmt *st = stmt(s, variant ? ST_GET : ST_GET_ANY);
	int rc, found;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	if (variant != NULL)
		sqlite3_bind_text(st, 3, variant, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		found = read_row(s, st, e) == 0 ? 1 : STORE_DAMAGED;
	else
		found = rc == SQLITE_DONE ? 0 : fail(s, rc, "read");
	sqlite3_reset(st);
	return found;
}

/*
 * After a write of a new row failed: when a row of the same key was
 * there (a constraint), another program put it where relay's next one
 * goes, in table, for what of id. Returns -1 either way.
 */
static int
planted_at(struct store *s, const char *table, const char *what,
    long long id)
{
	if ((s->rc & 0xFF) != SQLITE_CONSTRAINT)
		return -1;
	return fail_msg(s, EX_DATAERR, "cannot write to cache '%s': its "
	    "table '%s' is damaged: it has rows of %s %lld, which relay had "
	    "not made", s->path, table, what, id);
}

/* Writes one full chunk in its own short transaction. */
static int
insert_chunk(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st = stmt(s, ST_CHUNK_PUT);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, w->body);
	sqlite3_bind_int64(st, 2, w->seq);
	sqlite3_bind_blob(st, 3, w->chunk, (int)w->len, SQLITE_STATIC);
	if (run(s, st, "write to") < 0)
		return planted_at(s, "chunks", "body", w->body);
	s->batch_bytes += (long long)w->len;
	w->seq++;
	w->len = 0;
	return 0;
}

static int
new_body(struct store_writer *w, enum body_state state)
{
	sqlite3_stmt *st = stmt(w->s, ST_BODY_NEW);

	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, state);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (run(w->s, st, "write to") < 0)
		return -1;
	w->body = sqlite3_last_insert_rowid(w->s->db);
	return 0;
}

static int make_room(struct store *, long long);
static long long file_size(const char *, const char *);
static int count_evictions(struct store *, long long);

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
	long long have, need = 2 * len + UNDO_ROOM;

	if (statvfs(s->path, &fs) < 0)
		return 0;	/* SQLite will tell */
	have = (long long)fs.f_bavail * (long long)fs.f_frsize;
	if (have < need && (st = stmt(s, ST_FREE_BYTES)) != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			have += sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (have >= need)
		return 0;
	return fail_msg(s, EX_IOERR, "cannot write to cache '%s': %s",
	    s->path, strerror(ENOSPC));
}

/* A body that can never fit in the budget makes no room for itself. */
static int
fits(struct store_writer *w)
{
	struct store *s = w->s;

	if (s->max_size <= 0 || w->size < s->max_size)
		return 0;
	return fail_msg(s, EX_CANTCREAT, "cannot write to cache '%s': the "
	    "body is larger than --max-size %lld", s->path, s->max_size);
}

static int
flush_chunk(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st;

	if (fits(w) < 0 || begin_write(s) < 0)
		return -1;
	if (w->body == 0) {
		if (new_body(w, BODY_WRITING) < 0)
			goto fail;
	} else {
		/* Tells collectors this body still has a live writer. */
		if ((st = stmt(s, ST_BODY_TOUCH)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, w->body);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
		if (run(s, st, "write to") < 0)
			goto fail;
	}
	if (check_room(s, (long long)w->len) < 0 ||
	    make_room(s, (long long)w->len) < 0 || insert_chunk(w) < 0)
		goto fail;
	if (commit(s) < 0)
		return -1;
	return 0;
fail:
	rollback(s);
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

static void
bind_text_or_null(sqlite3_stmt *st, int col, const char *v)
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
static void
bind_head(sqlite3_stmt *st, int first, const struct store_entry *e)
{
	sqlite3_bind_text(st, first, e->headers, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, first + 1, (sqlite3_int64)e->request_time);
	sqlite3_bind_int64(st, first + 2, (sqlite3_int64)e->response_time);
	if (e->date != -1)
		sqlite3_bind_int64(st, first + 3, (sqlite3_int64)e->date);
	sqlite3_bind_int64(st, first + 4, e->age);
	sqlite3_bind_int64(st, first + 5, e->lifetime);
	sqlite3_bind_int64(st, first + 6, (sqlite3_int64)e->stale_at);
	bind_text_or_null(st, first + 7, e->etag);
	bind_text_or_null(st, first + 8, e->last_modified);
}

static int
upsert_entry(struct store_writer *w, const struct store_entry *e)
{
	sqlite3_stmt *st = stmt(w->s, ST_UPSERT);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, e->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->variant ? e->variant : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int(st, 4, e->status);
	bind_head(st, 5, e);
	sqlite3_bind_int64(st, 14, w->body);
	sqlite3_bind_int64(st, 15, w->size);
	return run(w->s, st, "write to");
}

/*
 * Keeps e's URL within STORE_MAX_VARIANTS responses (Vary): past it,
 * those used least recently are evicted, in the write that stores e.
 */
static int
cap_variants(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st[2] = { stmt(s, ST_VARIANTS_BODIES), NULL };
	int i;

	for (i = 0; i < 2; i++) {
		if (i == 1)
			st[1] = stmt(s, ST_VARIANTS);
		if (st[i] == NULL)
			return -1;
		sqlite3_bind_text(st[i], 1, e->method, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[i], 2, e->url, -1, SQLITE_STATIC);
		sqlite3_bind_int(st[i], 3, STORE_MAX_VARIANTS);
		sqlite3_bind_text(st[i], 4, e->variant ? e->variant : "", -1,
		    SQLITE_STATIC);
		if (run(s, st[i], "write to") < 0)
			return -1;
	}
	if (sqlite3_changes(s->db) > 0)
		s->garbage = 1;
	return count_evictions(s, sqlite3_changes(s->db));
}

/* Marks the body the entry pointed to as garbage, if there was one. */
static int
drop_old_body(struct store_writer *w, const struct store_entry *e)
{
	struct store *s = w->s;
	sqlite3_stmt *st = stmt(s, ST_OLD_BODY);
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
		return fail(s, rc, "write to");
	if (old == 0)
		return 0;
	if ((st = stmt(s, ST_BODY_DROP)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, old);
	s->garbage = 1;
	return run(s, st, "write to");
}

/* Flips the body to complete; fails if a collector took it meanwhile. */
static int
complete_body(struct store_writer *w)
{
	struct store *s = w->s;
	sqlite3_stmt *st;

	if (w->body == 0)
		return new_body(w, BODY_COMPLETE);
	if ((st = stmt(s, ST_BODY_DONE)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, w->body);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (run(s, st, "write to") < 0)
		return -1;
	if (sqlite3_changes(s->db) != 1)
		return fail_msg(s, EX_TEMPFAIL, "cannot write to cache '%s': "
		    "body abandoned after %d s without progress", s->path,
		    ABANDONED_SECS);
	return 0;
}

static int collect(struct store *, int);
static long long step_in_txn(struct store *, enum stmt, long long);

/*
 * Makes the body and its entry visible in one transaction: readers see
 * the old entry or the new one, never a mix. Frees the writer.
 */
int
store_writer_commit(struct store_writer *w, const struct store_entry *e)
{
	struct store *s = w->s;
	char why[160];
	int rc = -1;

	if (store_entry_invalid(e, why, sizeof why) != NULL) {
		fail_msg(s, EX_DATAERR, "cannot write to cache '%s': %s",
		    s->path, why);
		goto out;
	}
	if (w->failed || fits(w) < 0)
		goto out;
	if (begin_write(s) < 0)
		goto out;
	if (check_room(s, (long long)w->len) < 0 ||
	    make_room(s, (long long)(w->len + strlen(e->headers) +
	    strlen(e->url))) < 0 || complete_body(w) < 0 ||
	    (w->len > 0 && insert_chunk(w) < 0) ||
	    drop_old_body(w, e) < 0 || upsert_entry(w, e) < 0 ||
	    cap_variants(s, e) < 0) {
		rollback(s);
		goto out;
	}
	if ((rc = commit(s)) == 0)
		collect(s, 0);
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
		step_in_txn(s, ST_BODY_DROP, w->body);
		collect(s, 0);
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
static long long
write_one(struct store *s, sqlite3_stmt *st)
{
	long long changed;

	if (st == NULL || begin_write(s) < 0)
		return -1;
	if (run(s, st, "write to") < 0) {
		rollback(s);
		return -1;
	}
	changed = sqlite3_changes(s->db);
	return commit(s) < 0 ? -1 : changed;
}

/* The same for a statement of one parameter (none if arg is 0). */
static long long
step_in_txn(struct store *s, enum stmt which, long long arg)
{
	sqlite3_stmt *st = stmt(s, which);

	if (st != NULL && arg != 0)
		sqlite3_bind_int64(st, 1, arg);
	return write_one(s, st);
}

/*
 * Deletes garbage bodies a few chunks per transaction so that other
 * writers never wait long. With sweep, also reclaims bodies left by
 * dead writers and bodies no entry refers to, and forgets expired
 * uncacheable marks.
 */
static int
collect(struct store *s, int sweep)
{
	int n;

	if (!sweep && !s->garbage)
		return 0;	/* the common case: nothing was replaced */
	s->garbage = 0;
	if (sweep && (step_in_txn(s, ST_ABANDON,
	    (long long)time(NULL) - ABANDONED_SECS) < 0 ||
	    step_in_txn(s, ST_ORPHANS, 0) < 0 ||
	    step_in_txn(s, ST_UNMARK_EXPIRED, (long long)time(NULL)) < 0))
		return -1;
	while ((n = step_in_txn(s, ST_COLLECT_CHUNKS, 0)) > 0)
		;
	if (n < 0 || step_in_txn(s, ST_COLLECT_BODIES, 0) < 0)
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
	sqlite3_stmt *st = stmt(s, ST_BODY_HELD);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, entry);
	sqlite3_bind_int64(st, 2, body);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		damaged(s, entry, NULL, "its body is missing");
		return -1;
	}
	if (rc != SQLITE_DONE)
		return fail(s, rc, "read");
	return fail_msg(s, EX_TEMPFAIL, "cannot read cache '%s': entry "
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
			damaged(s, b->entry, NULL, "its body has %lld of %lld "
			    "bytes", b->got, b->expect);
			return -1;
		}
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return fail(s, rc, "read");
		b->rows++;
		b->data = sqlite3_column_blob(b->st, 0);
		b->left = (size_t)sqlite3_column_bytes(b->st, 0);
		if ((b->got += (long long)b->left) > b->expect) {
			damaged(s, b->entry, NULL, "its body has more than its "
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
		fail(s, rc, "read");
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
	sqlite3_stmt *st = stmt(s, ST_BODY_CHECK);
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
		return fail(s, rc, "read");
	if (rows == 0) {
		body_missing(s, e->id, e->body);	/* always a failure */
		return s->status == EX_DATAERR ? STORE_DAMAGED : -1;
	}
	if (odd > 0)
		return damaged(s, e->id, e->url, "its body has a chunk that is "
		    "not a blob of at most %d bytes at an integer seq",
		    CHUNK_SIZE);
	if (chunks > 0 && (first != 0 || last != chunks - 1))
		return damaged(s, e->id, e->url, "its body's chunks are at "
		    "seq %lld to %lld, not 0 to %lld", first, last, chunks - 1);
	if (bytes > e->size)
		return damaged(s, e->id, e->url, "its body has more than its "
		    "%lld bytes", e->size);
	if (bytes < e->size)
		return damaged(s, e->id, e->url, "its body has %lld of %lld "
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

/* Entries whose URL matches a GLOB (NULL: all), in URL order. */
struct store_iter *
store_iter_new(struct store *s, const char *glob)
{
	static const char sql[] = "SELECT " ENTRY_COLUMNS " FROM entries"
	    " WHERE ?1 IS NULL OR url GLOB ?1 ORDER BY url, method, variant";
	struct store_iter *it = xcalloc(1, sizeof *it);
	int rc;

	it->s = s;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &it->st, NULL);
	if (rc != SQLITE_OK) {
		fail(s, rc, "read");
		free(it);
		return NULL;
	}
	bind_text_or_null(it->st, 1, glob);
	return it;
}

/*
 * Returns 1 with the next entry, 0 at the end, -1 on error, or
 * STORE_DAMAGED for an entry relay never wrote (store_error names it),
 * after which the next call goes on.
 */
int
store_iter_next(struct store_iter *it, struct store_entry *e)
{
	int rc = sqlite3_step(it->st);

	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : fail(it->s, rc, "read");
	if (read_row(it->s, it->st, e) < 0)
		return STORE_DAMAGED;
	if ((rc = store_body_check(it->s, e)) < 0)
		store_entry_free(e);
	return rc < 0 ? rc : 1;
}

void
store_iter_free(struct store_iter *it)
{
	if (it == NULL)
		return;
	sqlite3_finalize(it->st);
	free(it);
}

/*
 * The GET entries under a URL prefix whose change number is in
 * (after, upto], in its order, at most limit (migration 5).
 */
struct store_iter *
store_changes_new(struct store *s, const char *prefix, long long after,
    long long upto, int limit)
{
	static const char sql[] = "SELECT " ENTRY_COLUMNS ", changed"
	    " FROM entries WHERE changed > ?1 AND changed <= ?2"
	    " AND method = 'GET' AND substr(url, 1, length(?3)) = ?3"
	    " ORDER BY changed LIMIT ?4";
	struct store_iter *it = xcalloc(1, sizeof *it);
	int rc;

	it->s = s;
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &it->st, NULL)) !=
	    SQLITE_OK) {
		fail(s, rc, "read");
		free(it);
		return NULL;
	}
	sqlite3_bind_int64(it->st, 1, after);
	sqlite3_bind_int64(it->st, 2, upto);
	sqlite3_bind_text(it->st, 3, prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(it->st, 4, limit);
	return it;
}

/*
 * store_iter_next for store_changes_new: the entry and its number; for
 * STORE_DAMAGED, its number alone, so that a page goes on past it.
 */
int
store_changes_next(struct store_iter *it, struct store_entry *e,
    long long *changed)
{
	int rc;

	/*
	 * A change number of another type (planted) is damage that cannot
	 * be passed by number (a text one sorts after every number): such
	 * a row is skipped here, and never sent.
	 */
	while (((rc = store_iter_next(it, e)) > 0 || rc == STORE_DAMAGED) &&
	    sqlite3_column_type(it->st, 17) != SQLITE_INTEGER)
		if (rc > 0)
			store_entry_free(e);
	if (rc > 0 || rc == STORE_DAMAGED)
		*changed = sqlite3_column_int64(it->st, 17);
	return rc;
}

/* The newest change number, and the horizon of whole deltas. */
int
store_sync_mark(struct store *s, long long *seq, long long *horizon)
{
	sqlite3_stmt *st = stmt(s, ST_SYNC_MARK);
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		*horizon = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);	/* no read transaction is left open */
	return rc == SQLITE_ROW ? 0 : fail(s, rc, "read");
}

/* Runs a body-dropping and an entry-deleting statement as one change. */
static long long
delete_entries(struct store *s, sqlite3_stmt *bodies, sqlite3_stmt *entries)
{
	long long n;

	if (run(s, bodies, "write to") < 0 || run(s, entries, "write to") < 0) {
		rollback(s);
		return -1;
	}
	n = sqlite3_changes(s->db);
	s->garbage = 1;
	if (commit(s) < 0 || collect(s, 0) < 0)
		return -1;
	return n;
}

/* Removes every method and variant of a URL; returns how many entries. */
long long
store_remove(struct store *s, const char *url)
{
	sqlite3_stmt *bodies, *entries;

	if (begin_write(s) < 0)
		return -1;
	bodies = stmt(s, ST_DROP_URL_BODIES);
	entries = stmt(s, ST_DROP_URL);
	if (bodies == NULL || entries == NULL) {
		rollback(s);
		return -1;
	}
	sqlite3_bind_text(bodies, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_text(entries, 1, url, -1, SQLITE_STATIC);
	return delete_entries(s, bodies, entries);
}

/*
 * Removes entries whose URL matches glob (NULL: any) and, unless
 * stale_by is -1, that are stale at that time.
 */
long long
store_purge(struct store *s, const char *glob, time_t stale_by)
{
	sqlite3_stmt *st[2];
	int i;

	if (begin_write(s) < 0)
		return -1;
	st[0] = stmt(s, ST_PURGE_BODIES);
	st[1] = stmt(s, ST_PURGE);
	for (i = 0; i < 2; i++) {
		if (st[i] == NULL) {
			rollback(s);
			return -1;
		}
		bind_text_or_null(st[i], 1, glob);
		if (stale_by != -1)
			sqlite3_bind_int64(st[i], 2, (sqlite3_int64)stale_by);
	}
	return delete_entries(s, st[0], st[1]);
}

/*
 * Updates an entry's head and freshness after a 304 (RFC 9111 section
 * 4.3.4) without touching its body. Returns 1, or 0 if the entry was
 * replaced or removed meanwhile, or -1.
 */
int
store_refresh(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st;
	int n;

	if (begin_write(s) < 0)
		return -1;
	if ((st = stmt(s, ST_REFRESH)) == NULL) {
		rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, e->id);
	bind_head(st, 2, e);
	if (run(s, st, "write to") < 0) {
		rollback(s);
		return -1;
	}
	n = sqlite3_changes(s->db);
	return commit(s) < 0 ? -1 : n;
}

/*
 * Marks a URL whose response could not be stored, until a time: while
 * marked, requests for it need not wait for one another (coalescing
 * would only queue them). A time of 0 clears the mark.
 */
int
store_mark_uncacheable(struct store *s, const char *url, time_t until)
{
	sqlite3_stmt *st;

	if (begin_write(s) < 0)
		return -1;
	if ((st = stmt(s, until > 0 ? ST_MARK : ST_UNMARK)) == NULL) {
		rollback(s);
		return -1;
	}
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	if (until > 0)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)until);
	if (run(s, st, "write to") < 0) {
		rollback(s);
		return -1;
	}
	return commit(s);
}

/* Whether url is marked uncacheable at now: 1, 0, or -1 on error. */
int
store_uncacheable(struct store *s, const char *url, time_t now)
{
	sqlite3_stmt *st = stmt(s, ST_MARKED);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	return fail(s, rc, "read");
}

int
store_hit(struct store *s, long long id, long long n, time_t now)
{
	sqlite3_stmt *st;

	if (begin_write(s) < 0)
		return -1;
	if ((st = stmt(s, ST_HIT)) == NULL) {
		rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 3, n);
	if (run(s, st, "write to") < 0) {
		rollback(s);
		return -1;
	}
	return commit(s);
}

/* Adds to counters, given as lines of "DELTA SERIES" (metrics_take). */
int
store_count(struct store *s, const char *lines)
{
	sqlite3_stmt *st;
	const char *end;
	char *name;
	long long delta;

	if (begin_write(s) < 0)
		return -1;
	for (; *lines != '\0'; lines = end + 1) {
		delta = strtoll(lines, &name, 10);
		if (*name++ != ' ' || (end = strchr(name, '\n')) == NULL ||
		    (st = stmt(s, ST_COUNTER_ADD)) == NULL)
			break;
		sqlite3_bind_text(st, 1, name, (int)(end - name), SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, delta);
		if (run(s, st, "write to") < 0)
			break;
	}
	if (*lines != '\0') {
		rollback(s);
		return -1;
	}
	return commit(s);
}

/*
 * Calls fn with each counter's series and value, in one snapshot; a
 * row of other types than relay writes fails it (store_error).
 */
int
store_counters(struct store *s, void (*fn)(void *, const char *, size_t,
    long long), void *ctx)
{
	sqlite3_stmt *st;
	char why[160], *series;
	int rc;

	if (store_read_begin(s) < 0)
		return -1;
	if ((st = stmt(s, ST_COUNTERS)) == NULL) {
		store_read_end(s);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    columns_invalid(st, "ti", why, sizeof why) == NULL)
		fn(ctx, (const char *)sqlite3_column_text(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0),
		    sqlite3_column_int64(st, 1));
	if (rc == SQLITE_ROW) {
		series = text_printable((const char *)sqlite3_column_text(st,
		    0), 0);
		fail_msg(s, EX_DATAERR, "cannot read cache '%s': its table "
		    "'counters' is damaged: series '%.100s': %s", s->path,
		    series, why);
		free(series);
	} else if (rc != SQLITE_DONE)
		fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static long long
file_size(const char *path, const char *suffix)
{
	struct buf name = BUF_INIT;
	struct stat sb;
	long long n;

	buf_adds(&name, path);
	buf_adds(&name, suffix);
	n = stat(buf_cstr(&name), &sb) == 0 ? (long long)sb.st_size : 0;
	buf_free(&name);
	return n;
}

int
store_stats(struct store *s, time_t now, struct store_stats *out)
{
	sqlite3_stmt *st;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (store_read_begin(s) < 0)
		return -1;
	if ((st = stmt(s, ST_STATS_ENTRIES)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		goto fail;
	out->entries = sqlite3_column_int64(st, 0);
	out->fresh = sqlite3_column_int64(st, 1);
	out->stale = out->entries - out->fresh;
	out->bytes = sqlite3_column_int64(st, 2);
	out->hits = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	if ((st = stmt(s, ST_STATS_BODIES)) == NULL)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		goto fail;
	out->pending = sqlite3_column_int64(st, 0);
	out->garbage = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	out->file_bytes = file_size(s->path, "") + file_size(s->path, "-wal");
	rc = 0;
	goto out;
fail:
	fail(s, rc, "read");
	sqlite3_reset(st);
	rc = -1;
out:
	store_read_end(s);
	return rc;
}

/*
 * Reclaims space: collects every kind of garbage, rebuilds the file,
 * and truncates the WAL. A checkpoint held back by a reader is not a
 * failure; the next one finishes the job.
 */
int
store_vacuum(struct store *s)
{
	int rc;

	if (collect(s, 1) < 0 || exec(s, "VACUUM", "vacuum") < 0)
		return -1;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);
	if (rc != SQLITE_OK && (rc & 0xFF) != SQLITE_BUSY)
		return fail(s, rc, "vacuum");
	return 0;
}

#define WAL_LIMIT	(64LL << 20)	/* without --max-size */
#define WAL_WAIT_MS	1000	/* for readers and writers, to start it over */

/* The longest the WAL may grow: a quarter of the budget, else WAL_LIMIT. */
static long long
wal_limit(const struct store *s)
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

	if (wal > wal_limit(s))
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
static void
size_wal(struct store *s)
{
	char sql[64];
	long long pages = wal_limit(s) / 4096;

	sqlite3_wal_autocheckpoint(s->db, pages < 1000 ? (int)pages : 1000);
	snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld",
	    wal_limit(s));
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

	if (!wal_too_long(s, file_size(s->path, "-wal")))
		return;
	sqlite3_busy_handler(s->db, poll_busy, NULL);
	for (tries = 0; tries < WAL_WAIT_MS && (tries == 0 ||
	    wal_too_long(s, file_size(s->path, "-wal"))); tries++) {
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

	if (pragma_int(s, "PRAGMA user_version", version) < 0 ||
	    pragma_int(s, "SELECT count(*) FROM sqlite_schema", &objects) < 0)
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
		return unknown_version(s, version);
	if (version > QUEUE_VERSION)
		return fail_msg(s, EX_DATAERR, "cannot open queue '%s': "
		    "written by a newer relay (schema version %d, this one "
		    "knows %d)", s->path, version, QUEUE_VERSION);
	return s->empty ? 0 : check_schema(s, queue_schema, version);
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
		return fail(s, sqlite3_errcode(s->db), "open");
	/* The first read tells a file that is not a database. */
	if (pragma_int(s, "PRAGMA schema_version", &cookie) < 0 ||
	    check_at_open(s) < 0)
		return -1;
	if (s->empty && !s->create)
		return 0;
	/* The log's room goes back once a large body is checkpointed. */
	if (exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	    " PRAGMA journal_size_limit = 4194304", "open") < 0 ||
	    migrate(s, &queue_file) < 0)
		return -1;
	return check_at_open(s);
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
	s = open_file(buf_cstr(&path), buf_cstr(&path), SQLITE_OPEN_READWRITE |
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
	q->method = column_text(st, 1);
	q->url = column_text(st, 2);
	q->path = column_text(st, 3);
	q->fields = column_text(st, 4);
	q->token = column_text(st, 5);
	q->body = NULL;		/* store_queue_body's */
	q->body_len = 0;
	q->state = column_text(st, 6);
	q->attempts = sqlite3_column_int64(st, 7);
	q->next_ms = sqlite3_column_int64(st, 8);
	q->created_ms = sqlite3_column_int64(st, 9);
	q->updated_ms = sqlite3_column_int64(st, 10);
	q->status = sqlite3_column_int(st, 11);
	q->response_type = column_text(st, 12);
	q->response = column_blob(st, 13, &q->response_len);
	q->error = column_text(st, 14);
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
	int typed = columns_invalid(st, queued_types, why, sizeof why) == NULL;

	read_queued(st, q);
	if (typed && queued_invalid(q, why, sizeof why) == NULL)
		return 0;
	url = text_printable(q->url, 0);
	fail_msg(s, EX_DATAERR, "cannot read queue '%s': entry %lld '%.200s' "
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
	sqlite3_stmt *st = stmt(s, ST_Q_ADD);
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
	if (write_one(s, st) < 0)
		return -1;
	q->id = sqlite3_last_insert_rowid(s->db);
	if (q->body == NULL)
		return 0;	/* no content: no chunk, not even an empty one */
	for (at = 0, seq = 0; at == 0 || at < q->body_len; at += n, seq++) {
		n = q->body_len - at < CHUNK_SIZE ? q->body_len - at :
		    CHUNK_SIZE;
		if ((st = stmt(s, ST_Q_ADD_BODY)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, q->id);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_blob(st, 3, q->body + at, (int)n, SQLITE_STATIC);
		if (write_one(s, st) < 0)
			return planted_at(s, "queue_body", "entry", q->id);
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
	if (store_read_begin(s) < 0 || (st = stmt(s, ST_Q_BODY_SIZE)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, q->id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		chunks = sqlite3_column_int64(st, 0);
		size = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW || (st = stmt(s, ST_Q_BODY)) == NULL)
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
	return fail_msg(s, EX_IOERR, "cannot read queue entry %lld's body",
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
		fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Calls fn with each of up to max entries that may be delivered now. */
int
store_queue_due(struct store *s, long long now_ms, int max,
    void (*fn)(void *, struct store_queued *), void *ctx)
{
	sqlite3_stmt *st = stmt(s, ST_Q_DUE);

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
	sqlite3_stmt *st = stmt(s, ST_Q_START);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return write_one(s, st);
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
	sqlite3_stmt *st = stmt(s, ST_Q_SETTLE);
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
	if ((changed = write_one(s, st)) <= 0 || r->state == NULL ||
	    strcmp(r->state, "delivered") != 0)
		return changed;
	/* delivered: its body is needed no more */
	return step_in_txn(s, ST_Q_DROP_BODY, r->id) < 0 ? -1 : changed;
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
		fail(s, rc, "read");
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
	if ((st = stmt(s, ST_Q_GET)) == NULL) {
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
	if ((st = stmt(s, ST_Q_FIND)) == NULL) {
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
	sqlite3_stmt *st = stmt(s, ST_Q_LIST);

	if (st != NULL)
		sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	return each_queued(s, st, fn, ctx, 1);
}

/* Queues failed entries again, id or (-1) every one; returns how many. */
long long
store_queue_retry(struct store *s, long long id, long long now_ms)
{
	sqlite3_stmt *st = stmt(s, ST_Q_RETRY);

	if (st == NULL)
		return -1;
	if (id >= 0)
		sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	return write_one(s, st);
}

/* Two statements of one parameter, in one transaction: the second's count. */
static long long
two_in_txn(struct store *s, enum stmt first, enum stmt second, long long arg)
{
	long long n;

	store_batch_begin(s);
	if (step_in_txn(s, first, arg) < 0 ||
	    (n = step_in_txn(s, second, arg)) < 0)
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
	if ((st = stmt(s, ST_Q_DEPTH)) == NULL) {
		store_read_end(s);
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		for (i = 0; i < 3; i++)
			out[i] = sqlite3_column_int64(st, i);
	else
		fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * The size budget: the file's pages in use, those of its free list
 * left out, since SQLite fills them before it grows the file.
 */
static long long
pages_used(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_PAGES_USED);
	long long used = -1;
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		used = sqlite3_column_int64(st, 0);
	else
		fail(s, rc, "read");
	sqlite3_reset(st);
	return used;
}

/* Removes entry id; its body's pages are freed by the next steps. */
static int
evict(struct store *s, long long id)
{
	sqlite3_stmt *body = stmt(s, ST_EVICT_BODY), *entry;

	if (body == NULL)
		return -1;
	sqlite3_bind_int64(body, 1, id);
	if (run(s, body, "write to") < 0 || (entry = stmt(s, ST_EVICT)) == NULL)
		return -1;
	sqlite3_bind_int64(entry, 1, id);
	s->garbage = 1;
	return run(s, entry, "write to");
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
		id = fail(s, rc, "read");
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
	sqlite3_stmt *st = stmt(s, ST_HAND_GET);
	long long hand, id;
	int visited = 0;

	if (st == NULL || (hand = first_id(s, st, NULL)) < 0)
		return -1;
	for (;;) {
		if ((st = stmt(s, ST_SIEVE_NEXT)) == NULL)
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
		if ((st = stmt(s, ST_UNVISIT)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		if (run(s, st, "write to") < 0)
			return -1;
	}
	if ((st = stmt(s, ST_HAND_PUT)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, hand);
	return run(s, st, "write to") < 0 ? -1 : id;
}

/* Entry to make room with: an expired one first, else SIEVE's choice. */
static long long
victim(struct store *s)
{
	sqlite3_stmt *st = stmt(s, ST_EXPIRED_ONE);
	long long id;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	if ((id = first_id(s, st, NULL)) != 0)
		return id;
	return sieve(s);
}

/* Adds n to relay_cache_evictions_total, in the write under way. */
static int
count_evictions(struct store *s, long long n)
{
	sqlite3_stmt *st;

	if (n == 0)
		return 0;
	if ((st = stmt(s, ST_COUNTER_ADD)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, "relay_cache_evictions_total", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n);
	return run(s, st, "write to");
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
		if (used < 0 || (st = stmt(s, ST_COLLECT_CHUNKS)) == NULL ||
		    run(s, st, "write to") < 0)
			rc = -1;
		else if (sqlite3_changes(s->db) > 0)
			continue;
		else if ((id = victim(s)) < 0)
			rc = -1;
		else if (id == 0)
			rc = fail_msg(s, EX_CANTCREAT, "cannot write to cache "
			    "'%s': no room within --max-size %lld", s->path,
			    budget);
		else if ((rc = evict(s, id)) == 0)
			n++;
	}
	if (count_evictions(s, n) < 0)
		rc = -1;
	*evicted = n;
	return rc;
}

/* Makes room for a write of need bytes within --max-size, if set. */
static int
make_room(struct store *s, long long need)
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
	size_wal(s);
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

	if (begin_write(s) < 0)
		return -1;
	if (free_pages(s, max, 0, evicted) < 0 && s->status != EX_CANTCREAT) {
		rollback(s);
		return -1;
	}
	s->status = 0;	/* what could not be freed is no failure here */
	used = pages_used(s);
	if (commit(s) < 0 || collect(s, 0) < 0)
		return -1;
	return used;
}
