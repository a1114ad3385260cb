/*
 * The cache file: one SQLite database in WAL mode shared by every
 * program: opening it, checking and migrating its schema, transactions
 * and how a failure is told. The rest of the store is in entries.c,
 * bodies.c, queue.c and room.c; see relay-cache(5).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/prog.h"
#include "base/text.h"
#include "http/http.h"
#include "store/db.h"

#define APPLICATION_ID	1919249529	/* 0x72656c79, "rely" */

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

int
db_fail_msg(struct store *s, int status, const char *fmt, ...)
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
int
db_fail(struct store *s, int rc, const char *action)
{
	int saved = errno, sys = sqlite3_system_errno(s->db);
	const char *why = sqlite3_errmsg(s->db);
	char damage[200];

	s->rc = rc;
	if (((rc & 0xFF) == SQLITE_FULL || (rc & 0xFF) == SQLITE_CONSTRAINT) &&
	    singleton_damage(s, damage, sizeof damage) != NULL)
		return db_fail_msg(s, EX_DATAERR, "cannot %s cache '%s': %s",
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
	return db_fail_msg(s, status_of(rc), "cannot %s cache '%s': %s",
	    action, s->path, why);
}

sqlite3_stmt *
db_stmt(struct store *s, enum stmt which)
{
	sqlite3_stmt *st = s->stmt[which];

	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	if (sqlite3_prepare_v3(s->db, stmt_sql[which], -1,
	    SQLITE_PREPARE_PERSISTENT, &s->stmt[which], NULL) != SQLITE_OK) {
		db_fail(s, sqlite3_errcode(s->db), "read");
		return NULL;
	}
	return s->stmt[which];
}

/* Runs a statement that returns no rows; returns 0 or -1. */
int
db_run(struct store *s, sqlite3_stmt *st, const char *action)
{
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_fail(s, rc, action);
	return 0;
}

int
db_exec(struct store *s, const char *sql, const char *action)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(s, rc, action);
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

/* Ends the transaction undone, keeping the failure that ended it. */
static void
abandon(struct store *s)
{
	sqlite3_stmt *st = db_stmt(s, ST_ROLLBACK);

	if (st != NULL) {
		(void)sqlite3_step(st);
		sqlite3_reset(st);
	}
}

/* Begins a transaction (which) on a file whose schema is still relay's. */
static int
begin(struct store *s, enum stmt which, const char *action)
{
	if (db_run(s, db_stmt(s, which), action) < 0)
		return -1;
	if (recheck_schema(s) == 0)
		return 0;
	abandon(s);
	return -1;
}

int
db_begin_write(struct store *s)
{
	if (!s->batch)
		return begin(s, ST_BEGIN_WRITE, "write to");
	note_loss(s);
	if (sqlite3_get_autocommit(s->db)) {
		if (begin(s, ST_BEGIN_WRITE, "write to") < 0)
			return -1;
		s->batch_open = 1;
		s->batch_bytes = 0;
	}
	return db_run(s, db_stmt(s, ST_SAVEPOINT), "write to");
}

/* Commits the write; then keeps the WAL within its limit (store_trim_wal). */
int
db_commit(struct store *s)
{
	if (s->batch)	/* store_batch_end commits */
		return db_run(s, db_stmt(s, ST_RELEASE), "write to");
	if (db_run(s, db_stmt(s, ST_COMMIT), "write to") == 0) {
		store_trim_wal(s);
		return 0;
	}
	abandon(s);
	return -1;
}

/*
 * Undoes the current write. Some failures (a full disk, an I/O error)
 * make SQLite undo the whole transaction itself: store_batch_lost
 * tells when a batch's writes went that way.
 */
void
db_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return;
	if (!s->batch) {
		abandon(s);
		return;
	}
	db_run(s, db_stmt(s, ST_ROLLBACK_TO), "write to");
	db_run(s, db_stmt(s, ST_RELEASE), "write to");
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
	    s->batch_bytes >= db_wal_limit(s));
}

/* Commits the batch; returns -1 if some of its writes were lost. */
int
store_batch_end(struct store *s)
{
	int lost = store_batch_lost(s);

	s->batch = 0;
	s->batch_open = 0;
	if (!sqlite3_get_autocommit(s->db) && db_commit(s) < 0)
		return -1;
	return lost ? -1 : 0;
}

int
db_pragma_int(struct store *s, const char *sql, int *out)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : db_fail(s, rc, "open");
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
		db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': it lacks "
		    "relay's %s '%.100s'", s->path, type, name);
	else if (why[0] == ' ')
		db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': its %s "
		    "'%.100s'%s", s->path, type, name, why);
	else
		db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': it has %s "
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

int
db_check_schema(struct store *s, const char *const *sql, int n)
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
		rc = db_fail(s, rh, "open");
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
		rc = db_fail(s, rh, "open");
	sqlite3_finalize(have);
	sqlite3_finalize(want);
	pthread_mutex_unlock(&lock);
	return rc;
}

/* A user_version no relay sets: not a version at all. */
int
db_unknown_version(struct store *s, int version)
{
	return db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': unknown "
	    "schema version %d", s->path, version);
}

/* Refuses files not ours, from a newer relay, or altered (check_schema). */
static int
check_identity(struct store *s, int version)
{
	int tables, app;

	if (version < 0)
		return db_unknown_version(s, version);
	if (version > LATEST_VERSION)
		return db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': "
		    "written by a newer relay (schema version %d, this one "
		    "knows %d)", s->path, version, LATEST_VERSION);
	if (db_pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables) < 0 ||
	    db_pragma_int(s, "PRAGMA application_id", &app) < 0)
		return -1;
	if (tables > 0 && app != APPLICATION_ID)
		return db_fail_msg(s, EX_DATAERR, "cannot open cache '%s': "
		    "not a relay cache (it has tables relay did not create)",
		    s->path);
	s->empty = tables == 0;
	return db_check_schema(s, migrations, version);
}

/* The cache file's check: its objects are those of its version. */
static int
check_cache(struct store *s)
{
	int version;

	if (db_pragma_int(s, "PRAGMA user_version", &version) < 0)
		return -1;
	return check_identity(s, version);
}

/* The first check, in a transaction: one snapshot of a file being migrated. */
int
db_check_at_open(struct store *s)
{
	if (begin(s, ST_BEGIN_READ, "open") < 0)
		return -1;
	abandon(s);
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
	sqlite3_stmt *st = db_stmt(s, ST_SCHEMA_VERSION);
	int rc, cookie = 0;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cookie = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_fail(s, rc, "read");
	if (cookie == s->cookie)
		return 0;
	if (s->check(s) < 0)
		return -1;
	s->cookie = cookie;
	return 0;
}

/*
 * Applies the missing migrations in one transaction: begin_write checks
 * the file again under the lock, another process may have been first.
 */
int
db_migrate(struct store *s, const struct schema *sc)
{
	char sql[64];
	int version;

	if (db_begin_write(s) < 0)
		return -1;
	if (sc->version(s, &version) < 0)
		goto fail;
	for (; version < sc->latest; version++)
		if (db_exec(s, sc->migrations[version], "upgrade") < 0)
			goto fail;
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", sc->latest);
	if (db_exec(s, sql, "upgrade") < 0 || db_exec(s, sc->stamp, "upgrade") < 0)
		goto fail;
	return db_commit(s);
fail:
	db_rollback(s);
	return -1;
}

static int
cache_version(struct store *s, int *version)
{
	return db_pragma_int(s, "PRAGMA user_version", version);
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
	sqlite3_stmt *st = db_stmt(s, ST_HAS_GARBAGE);
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		s->garbage = 1;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(s, rc, "open");
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
		return db_fail(s, sqlite3_errcode(s->db), "open");
	/* The first read tells a file that is not a database. */
	if (db_pragma_int(s, "PRAGMA user_version", &version) < 0 ||
	    db_check_at_open(s) < 0)
		return -1;
	if (s->empty && !s->create)
		return 0;
	/*
	 * secure_delete FAST: a body removed is not written over with
	 * zeros (some builds' default), which would take its size again
	 * in the WAL, and the room a failed write needs to undo itself.
	 * temp_store MEMORY: the statement journal of each write in a
	 * batch (a SAVEPOINT) is kept in memory, not written to a temporary
	 * file page by page (22 writes a stored response, 30% of
	 * relay-fetch's time); a batch is bounded (store_batch_full), and
	 * so is it.
	 */
	if (!sqlite3_db_readonly(s->db, "main") &&
	    db_exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	    " PRAGMA secure_delete = FAST; PRAGMA temp_store = MEMORY",
	    "open") < 0)
		return -1;
	db_size_wal(s);
	if (version < LATEST_VERSION && db_migrate(s, &cache_schema) < 0)
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
		return db_fail_msg(s, EX_SOFTWARE, "cannot open cache '%s': SQLite "
		    "%s is older than " SQLITE_OLDEST_NAME ", the oldest relay "
		    "works with", s->path, sqlite3_libversion());
	rc = sqlite3_open_v2(file, &s->db, flags, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_limit(s->db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH,
		    STORE_GLOB_MAX);
		/* before the first read: the WAL index then lives in memory */
		return s->exclusive ? db_exec(s, "PRAGMA locking_mode = EXCLUSIVE",
		    "open") : 0;
	}
	if (s->db == NULL)
		out_of_memory();
	if ((rc & 0xFF) != SQLITE_CANTOPEN)
		return db_fail(s, rc, "open");
	sys = sqlite3_system_errno(s->db);
	if (access(file, F_OK) == 0)
		return db_fail_msg(s, sys == EACCES ? EX_NOPERM : EX_CANTCREAT,
		    "cannot open cache '%s': %s", s->path,
		    sys ? strerror(sys) : sqlite3_errmsg(s->db));
	sys = create_errno(file, sys);
	return db_fail_msg(s, EX_CANTCREAT, "cannot create cache '%s': %s",
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
struct store *
db_open_file(const char *name, const char *path, int flags, int create,
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
		return db_open_file(path, ":memory:", flags, 1, setup);
	if (mode == STORE_WRITE)
		flags |= SQLITE_OPEN_CREATE;
	return db_open_file(path, path, flags, mode == STORE_WRITE, setup);
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
	return begin(s, ST_BEGIN_READ, "read");
}

void
store_read_end(struct store *s)
{
	db_rollback(s);
}

/*
 * A number that changes whenever another connection, in this process
 * or another, commits a change to the file; -1 if the store failed.
 * In a read transaction, it is its snapshot's.
 */
long long
store_data_version(struct store *s)
{
	sqlite3_stmt *st = db_stmt(s, ST_DATA_VERSION);
	long long v = -1;
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		db_fail(s, rc, "read");
	sqlite3_reset(st);
	return v;
}
