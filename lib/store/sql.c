/*
 * The cache file's and the queue file's prepared statements, by name
 * (enum stmt, db.h): every statement relay runs on them but the schema's.
 */
#include "store/db.h"

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

const char *const stmt_sql[ST_COUNT] = {
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
	[ST_VARIANT_COUNT] = "SELECT count(*) FROM entries"
	    " WHERE method = ?1 AND url = ?2",
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
	/* transactions: prepared once, not parsed again at each */
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
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

