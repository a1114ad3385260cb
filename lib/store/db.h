/*
 * The store's inside, for its own files only (store.c, entries.c,
 * bodies.c, queue.c, room.c, sql.c): the handle, its prepared
 * statements, and the helpers each part uses. Nothing outside
 * lib/store/ includes it.
 */
#ifndef RELAY_STORE_DB_H
#define RELAY_STORE_DB_H

#include <sqlite3.h>

#include "store/store.h"

#define CHUNK_SIZE	(256 * 1024)
#define BUSY_TIMEOUT_MS	30000
#define STRINGIFY(x)	STRINGIFY_(x)
#define STRINGIFY_(x)	#x
#define ABANDONED_SECS	600	/* a body unwritten for this long lost its writer */
#define COLLECT_BATCH	16	/* chunks deleted per transaction */
#define UNDO_ROOM	(64 * 1024)	/* kept free for a failed write's undoing */
#define ROOM_PLENTY	(64LL << 20)	/* free bytes that need no new look… */
#define ROOM_CHECK_MS	1000		/* …for this long */

enum body_state { BODY_WRITING, BODY_COMPLETE, BODY_GARBAGE };

#define ENTRY_COLUMNS \
	"id, method, url, variant, status, headers, request_time," \
	" response_time, date, age, lifetime, stale_at, etag, last_modified," \
	" body, size, hits"

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
	ST_FREE_BYTES, ST_BEGIN_READ, ST_BEGIN_WRITE, ST_COMMIT, ST_ROLLBACK,
	ST_VARIANT_COUNT,
	ST_COUNT
};

#define Q_COLUMNS \
	"id, method, url, path, fields, token, state, attempts, next_ms," \
	" created_ms, updated_ms, status, response_type, response, error"
#define Q_OPEN	"state IN ('queued', 'delivering')"

extern const char *const stmt_sql[ST_COUNT];

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
	long long	 room;		/* free bytes statvfs said, less
					   what was written since */
	long long	 room_ms;	/* when it said so; 0: never */
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

/* A file's migrations (each takes its version one up), and its version. */
struct schema {
	const char *const	*migrations;
	int			 latest;
	int			(*version)(struct store *, int *);
	const char		*stamp;		/* SQL once migrated, or "" */
};

int		 db_begin_write(struct store *);
void		 db_bind_head(sqlite3_stmt *, int, const struct store_entry *);
void		 db_bind_text(sqlite3_stmt *, int, const char *);
int		 db_check_at_open(struct store *);
int		 db_check_schema(struct store *, const char *const *, int);
int		 db_collect(struct store *, int);
char		*db_column_text(sqlite3_stmt *, int);
const char	*db_columns_invalid(sqlite3_stmt *, const char *, char *,
		    size_t);
int		 db_commit(struct store *);
int		 db_count_evictions(struct store *, long long);
int		 db_damaged(struct store *, long long, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
int		 db_exec(struct store *, const char *, const char *);
int		 db_fail(struct store *, int, const char *);
int		 db_fail_msg(struct store *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
long long	 db_file_size(const char *, const char *);
int		 db_make_room(struct store *, long long);
int		 db_migrate(struct store *, const struct schema *);
struct store	*db_open_file(const char *, const char *, int, int,
		    int (*)(struct store *));
int		 db_planted_at(struct store *, const char *, const char *,
		    long long);
int		 db_pragma_int(struct store *, const char *, int *);
int		 db_read_row(struct store *, sqlite3_stmt *,
		    struct store_entry *);
void		 db_rollback(struct store *);
int		 db_run(struct store *, sqlite3_stmt *, const char *);
void		 db_size_wal(struct store *);
long long	 db_step_in_txn(struct store *, enum stmt, long long);
sqlite3_stmt	*db_stmt(struct store *, enum stmt);
int		 db_unknown_version(struct store *, int);
long long	 db_wal_limit(const struct store *);
long long	 db_write_one(struct store *, sqlite3_stmt *);

#endif
