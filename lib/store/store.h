/*
 * The cache file: one SQLite database in WAL mode shared by every
 * program. All SQL lives here. Bodies are stored in chunks so that any
 * size is written and read in bounded memory; see relay-cache(5).
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <time.h>

#include "base/io.h"

#define STORE_SCHEMA_VERSION 6
#define STORE_MAX_VARIANTS 64	/* responses kept per method and URL (Vary) */
#define STORE_UNCACHEABLE_SECS 10	/* how long a hit-for-miss mark lasts */
/*
 * Every time and duration of an entry is within this many seconds of 0
 * (about 139,000 years): what relay writes always is, and arithmetic on
 * a few of them never overflows. Past it, an entry is damaged.
 */
#define STORE_TIME_MAX	(1LL << 42)
#define STORE_GLOB_MAX	16384	/* bytes of a GLOB pattern (--match) */

enum store_mode {
	STORE_READ,	/* never creates the file: a missing cache is empty */
	STORE_WRITE,
};

struct store_entry {
	long long	 id;
	char		*method;
	char		*url;
	char		*variant;	/* "" unless the response has Vary */
	int		 status;
	char		*headers;	/* "Name: value\r\n" lines */
	time_t		 request_time;
	time_t		 response_time;
	time_t		 date;		/* Date as received, or -1 */
	long long	 age;		/* Age as received */
	long long	 lifetime;
	time_t		 stale_at;
	char		*etag;		/* NULL if none */
	char		*last_modified;
	long long	 body;
	long long	 size;
	long long	 hits;
};

struct store_stats {
	long long	entries, fresh, stale, bytes, hits;
	long long	pending, garbage;	/* bodies being written / to delete */
	long long	file_bytes;		/* database and WAL on disk */
};

/*
 * An entry relay never wrote (store_entry_invalid), or whose body is
 * not whole: store_get returns it, store_iter_next goes on past it,
 * store_body_check and cache_write_record write nothing of it;
 * store_error names it.
 */
#define STORE_DAMAGED	(-2)

struct store;
struct store_writer;
struct store_body;
struct store_iter;

/* A body to read more than once, one pass per open. */
struct store_body_ref {
	struct store			*s;
	const struct store_entry	*e;
	struct store_body		*body;
};

/* A request accepted for later delivery (the queue file). */
struct store_queued {
	long long	 id;
	char		*method;
	char		*url;		/* the upstream URL, normalised */
	char		*path;		/* its path: one at a time each */
	char		*fields;	/* to send */
	char		*token;		/* its name to the client who sent it */
	char		*body;		/* its content, or NULL: it had none */
	size_t		 body_len;
	char		*state;		/* queued, delivering, delivered, failed */
	long long	 attempts;
	long long	 next_ms;	/* queued: not before (Unix ms) */
	long long	 created_ms, updated_ms;
	int		 status;	/* the upstream's last, or 0 */
	char		*response_type;	/* its Content-Type, or NULL */
	char		*response;	/* its body (the start of it) */
	size_t		 response_len;
	char		*error;		/* why the last attempt failed */
	char		*damaged;	/* relay never wrote it: store_error's
					   message naming it; else NULL */
};

struct sqlite3;
int		 store_harden(struct sqlite3 *, int);
struct store	*store_open(const char *, enum store_mode);
struct store	*store_open_or_exit(const char *, enum store_mode);
void		 store_close(struct store *);
void		 store_busy_timeout(struct store *, int);
int		 store_status(const struct store *);
const char	*store_error(const struct store *);
const char	*store_path(const struct store *);

void		 store_batch_begin(struct store *);
int		 store_batch_lost(struct store *);
int		 store_batch_full(struct store *);
int		 store_batch_end(struct store *);
int		 store_read_begin(struct store *);
void		 store_read_end(struct store *);
long long	 store_data_version(struct store *);
int		 store_get(struct store *, const char *, const char *,
		    const char *, struct store_entry *);
const char	*store_entry_invalid(const struct store_entry *, char *, size_t);
const char	*store_fields_invalid(const char *, char *, size_t);
void		 store_entry_free(struct store_entry *);
void		 store_entry_copy(struct store_entry *, const struct store_entry *);

struct store_writer *store_writer_new(struct store *);
struct sink	 store_writer_sink(struct store_writer *);
int		 store_writer_commit(struct store_writer *,
		    const struct store_entry *);
void		 store_writer_abort(struct store_writer *);

struct store_body *store_body_open(struct store *, const struct store_entry *);
struct source	 store_body_source(struct store_body *);
void		 store_body_close(struct store_body *);
int		 store_body_check(struct store *, const struct store_entry *);
int		 store_body_read(struct store *, const struct store_entry *,
		    struct buf *);
int		 store_body_ref_open(void *, struct source *);
void		 store_body_ref_close(void *);

struct store_iter *store_iter_new(struct store *, const char *);
int		 store_iter_next(struct store_iter *, struct store_entry *);
void		 store_iter_free(struct store_iter *);
struct store_iter *store_changes_new(struct store *, const char *, long long,
		    long long, int);
int		 store_changes_next(struct store_iter *, struct store_entry *,
		    long long *);
int		 store_sync_mark(struct store *, long long *, long long *);

long long	 store_remove(struct store *, const char *);
long long	 store_purge(struct store *, const char *, time_t);
int		 store_refresh(struct store *, const struct store_entry *);
int		 store_hit(struct store *, long long, long long, time_t);
int		 store_mark_uncacheable(struct store *, const char *, time_t);
int		 store_uncacheable(struct store *, const char *, time_t);
int		 store_stats(struct store *, time_t, struct store_stats *);
int		 store_count(struct store *, const char *);
int		 store_counters(struct store *, void (*)(void *, const char *,
		    size_t, long long), void *);
int		 store_vacuum(struct store *);
void		 store_set_max_size(struct store *, long long);
void		 store_trim_wal(struct store *);
long long	 store_shrink(struct store *, long long, long long *);

struct store	*store_open_queue(const char *, int);
void		 store_queued_free(struct store_queued *);
int		 store_queue_add(struct store *, struct store_queued *,
		    long long);
int		 store_queue_due(struct store *, long long, int,
		    void (*)(void *, struct store_queued *), void *);
long long	 store_queue_start(struct store *, long long, long long);
long long	 store_queue_settle(struct store *, const struct store_queued *,
		    int, long long);
int		 store_queue_get(struct store *, long long,
		    struct store_queued *);
int		 store_queue_find(struct store *, const char *,
		    struct store_queued *);
int		 store_queue_body(struct store *, struct store_queued *);
int		 store_queue_list(struct store *, const char *,
		    void (*)(void *, struct store_queued *), void *);
long long	 store_queue_retry(struct store *, long long, long long);
long long	 store_queue_remove(struct store *, long long);
long long	 store_queue_forget(struct store *, long long);
int		 store_queue_depth(struct store *, long long[3]);

void		 store_queued_json(struct buf *, const struct store_queued *);

#endif
