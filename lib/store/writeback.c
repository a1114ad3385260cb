/*
 * Cache writes on a thread of their own. The caller's operations join
 * a queue that the thread applies in order, a group at a time in one
 * transaction; the bytes queued are bounded, and a caller that gets
 * that far ahead waits for the thread. See writeback.h.
 */
#include <sys/eventfd.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/prog.h"
#include "store/writeback.h"

#define QUEUE_MAX_BYTES	(4 * 1024 * 1024)	/* then the caller waits */
#define GROUP_MS	20	/* how long operations wait to share a commit */
#define CLOSING_HITS_WAIT_MS 100	/* for the write lock, for the last hits */

enum op_kind {
	OP_WRITE, OP_COMMIT, OP_ABORT, OP_REFRESH, OP_HITS, OP_REMOVE,
	OP_MARK, OP_COUNT, OP_GIVE_UP, OP_PURGE,
};

struct op {
	struct op		*next;
	enum op_kind		 kind;
	long long		 seq;		/* its place in the queue */
	struct writeback_body	*body;		/* WRITE, COMMIT, ABORT */
	struct cache_response	 response;	/* COMMIT: strings in data */
	struct cache_rules	 rules;		/* COMMIT */
	struct store_entry	 entry;		/* REFRESH: a copy */
	time_t			 when;		/* HITS; MARK: until then */
	int			 failed;	/* and was reported */
	size_t			 len;
	char			 data[];	/* WRITE: the bytes; COUNT: lines;
						   else a URL */
};

/*
 * A body being received: the thread's once queued, but for what the
 * caller counts of it.
 */
struct writeback_body {
	struct store_writer	*w;	/* made by the first operation */
	int			 failed;
	long long		 queued;	/* the caller's: bytes so far */
	char			 url[];
};

struct writeback {
	struct store		*s;	/* the thread's until finish */
	struct cache_rules	 rules;
	pthread_t		 thread;
	pthread_mutex_t		 lock;	/* guards what follows */
	pthread_cond_t		 work;	/* for the thread: operations came */
	pthread_cond_t		 room;	/* for the caller: bytes were freed */
	struct op		*head, **tail;
	size_t			 bytes;	/* queued or being applied */
	long long		 first_ms;	/* when head was queued */
	long long		 queued;	/* the last operation's seq */
	long long		 applied;	/* every seq up to this is applied */
	int			 urgent;	/* apply without waiting to group */
	int			 closing;
	int			 wake_fd;	/* an eventfd: a group was applied */
	struct buf		 warnings;
};

/* Keeps a failure for the caller to report: "URL: what: reason". */
static void
warn_later(struct writeback *wb, const char *url, const char *what)
{
	pthread_mutex_lock(&wb->lock);
	if (url != NULL)
		buf_printf(&wb->warnings, "%s: ", url);
	buf_printf(&wb->warnings, "%s: %s\n", what, store_error(wb->s));
	pthread_mutex_unlock(&wb->lock);
}

/* The body's writer, made on first use; NULL once a write failed. */
static struct store_writer *
body_writer(struct writeback *wb, struct writeback_body *b)
{
	if (b->w == NULL && !b->failed)
		b->w = store_writer_new(wb->s);
	return b->w;
}

static int
compare_ids(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Hit counts: one update per entry, however many hits it had. */
static int
apply_hits(struct writeback *wb, struct op *op)
{
	size_t i, j, n = op->len / sizeof(long long);
	long long *ids = xmalloc(op->len + 1);	/* data[] is not aligned */
	int failed = 0;

	memcpy(ids, op->data, op->len);
	qsort(ids, n, sizeof *ids, compare_ids);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && ids[j] == ids[i]; j++)
			;
		failed |= store_hit(wb->s, ids[i], (long long)(j - i),
		    op->when) < 0;
	}
	free(ids);
	return failed;
}

/* Applies one operation; a failure is reported and marks it. */
static void
apply(struct writeback *wb, struct op *op)
{
	struct writeback_body *b = op->body;

	switch (op->kind) {
	case OP_WRITE:
		if (body_writer(wb, b) != NULL &&
		    cache_write(&b->w, op->data, op->len) < 0) {
			b->failed = op->failed = 1;
			warn_later(wb, b->url, "not cached");
		}
		break;
	case OP_COMMIT:
		if (body_writer(wb, b) == NULL) {
			op->failed = 1;		/* reported with the write */
		} else if (cache_commit(b->w, &op->response,
		    &op->rules) < 0) {
			op->failed = 1;
			warn_later(wb, b->url, "not cached");
		}
		free(b);
		break;
	case OP_ABORT:
		store_writer_abort(b->w);
		free(b);
		break;
	case OP_GIVE_UP:	/* too large to keep: not a failure to report */
		store_writer_abort(b->w);
		b->w = NULL;
		b->failed = 1;
		break;
	case OP_REFRESH:
		if ((op->failed = store_refresh(wb->s, &op->entry) < 0))
			warn_later(wb, op->entry.url, "not updated in the cache");
		break;
	case OP_HITS:
		op->failed = apply_hits(wb, op);
		break;
	case OP_REMOVE:
		if ((op->failed = store_remove(wb->s, op->data) < 0))
			warn_later(wb, op->data, "not invalidated");
		break;
	case OP_PURGE:
		if ((op->failed = store_purge(wb->s, op->data, -1) < 0))
			warn_later(wb, op->data, "not purged");
		break;
	case OP_MARK:
		if ((op->failed = store_mark_uncacheable(wb->s, op->data,
		    op->when) < 0))
			warn_later(wb, op->data, "not marked uncacheable");
		break;
	case OP_COUNT:	/* reported once for the group */
		op->failed = store_count(wb->s, op->data) < 0;
		break;
	}
}

/* Reports the operations from first up to end as undone. */
static void
report_lost(struct writeback *wb, struct op *first, const struct op *end)
{
	for (; first != end; first = first->next) {
		if (first->failed)
			continue;	/* reported already */
		if (first->kind == OP_COMMIT)
			warn_later(wb, first->response.url, "not cached");
		else if (first->kind == OP_REFRESH)
			warn_later(wb, first->entry.url,
			    "not updated in the cache");
		first->failed = 1;
	}
}

/* Reports lost hits once for the group, then frees it. */
static void
free_group(struct writeback *wb, struct op *ops)
{
	struct op *next;
	int hits_lost = 0, counts_lost = 0;

	for (; ops != NULL; ops = next) {
		next = ops->next;
		hits_lost |= ops->kind == OP_HITS &&
		    ops->failed;
		counts_lost |= ops->kind == OP_COUNT && ops->failed;
		store_entry_free(&ops->entry);
		free(ops);
	}
	if (hits_lost)
		warn_later(wb, NULL, "hits not counted");
	if (counts_lost)
		warn_later(wb, NULL, "metrics not counted");
}

/* Counts only: worth a short wait for the lock at exit, no more. */
static int
only_counts(const struct op *ops)
{
	for (; ops != NULL; ops = ops->next)
		if (ops->kind != OP_HITS &&
		    ops->kind != OP_COUNT)
			return 0;
	return 1;
}

/*
 * Applies a group of operations: the body bytes first, a chunk at a
 * time in transactions of their own, as a body that grows must not be
 * undone with others; then the rest in one transaction, one commit for
 * all. A write that fails undoes its own changes only, unless SQLite
 * undoes the whole transaction (a full disk): then every operation
 * applied in it is reported.
 */
static void
apply_group(struct writeback *wb, struct op *ops)
{
	struct op *op, *since = ops;

	for (op = ops; op != NULL; op = op->next)
		if (op->kind == OP_WRITE)
			apply(wb, op);
	store_batch_begin(wb->s);
	for (op = ops; op != NULL; op = op->next) {
		if (op->kind == OP_WRITE)
			continue;
		apply(wb, op);
		if (store_batch_lost(wb->s)) {
			report_lost(wb, since, op->next);
			since = op->next;
		} else if (store_batch_full(wb->s)) {
			/* no larger than the WAL may grow: commit, go on */
			if (store_batch_end(wb->s) < 0)
				report_lost(wb, since, op->next);
			since = op->next;
			store_batch_begin(wb->s);
		}
	}
	if (store_batch_end(wb->s) < 0)
		report_lost(wb, since, NULL);
	free_group(wb, ops);
}

/*
 * Whether the queue is due: its oldest operation has waited GROUP_MS,
 * or half the room is taken, or the caller is done.
 */
static int
due(const struct writeback *wb)
{
	if (wb->head == NULL)
		return wb->closing;
	return wb->closing || wb->urgent || wb->bytes >= QUEUE_MAX_BYTES / 2 ||
	    prog_now_ms() - wb->first_ms >= GROUP_MS;
}

static void
wait_for_work(struct writeback *wb)
{
	long long at = wb->first_ms + GROUP_MS;
	struct timespec ts = { at / 1000, at % 1000 * 1000000 };

	if (wb->head == NULL)
		pthread_cond_wait(&wb->work, &wb->lock);
	else
		pthread_cond_timedwait(&wb->work, &wb->lock, &ts);
}

/*
 * Takes the queue once due; NULL when it is empty and the caller done.
 * last is the seq of the last operation taken.
 */
static struct op *
take(struct writeback *wb, size_t *bytes, long long *last, int *closing)
{
	struct op *ops;

	pthread_mutex_lock(&wb->lock);
	while (!due(wb))
		wait_for_work(wb);
	ops = wb->head;
	*bytes = wb->bytes;
	*last = wb->queued;
	*closing = wb->closing;
	wb->head = NULL;
	wb->tail = &wb->head;
	wb->urgent = 0;
	pthread_mutex_unlock(&wb->lock);
	return ops;
}

static void *
writer_thread(void *arg)
{
	struct writeback *wb = arg;
	struct op *ops;
	size_t bytes;
	long long last;
	uint64_t one = 1;
	int closing;

	while ((ops = take(wb, &bytes, &last, &closing)) != NULL) {
		/*
		 * Counts left at the end are not worth a wait for
		 * another process's write lock: one process per
		 * connection (inetd) would linger for it.
		 */
		if (closing && only_counts(ops))
			store_busy_timeout(wb->s, CLOSING_HITS_WAIT_MS);
		apply_group(wb, ops);
		store_trim_wal(wb->s);
		pthread_mutex_lock(&wb->lock);
		wb->bytes -= bytes;
		wb->applied = last;
		pthread_cond_signal(&wb->room);
		pthread_mutex_unlock(&wb->lock);
		/* EAGAIN: the counter is full, so a wake is due anyway. */
		(void)!write(wb->wake_fd, &one, sizeof one);
	}
	return NULL;
}

/*
 * Hands the store to a new thread until writeback_finish. The thread
 * takes no signals: they stay the main thread's to handle.
 */
struct writeback *
writeback_start(struct store *s, const struct cache_rules *rules)
{
	struct writeback *wb = xcalloc(1, sizeof *wb);
	pthread_condattr_t attr;

	wb->s = s;
	wb->rules = *rules;
	wb->tail = &wb->head;
	if ((wb->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		prog_err(EX_OSERR, "cannot start the cache writer");
	pthread_mutex_init(&wb->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr,
	    CLOCK_MONOTONIC);	/* prog_now_ms */
	pthread_cond_init(&wb->work, &attr);
	pthread_cond_init(&wb->room, NULL);
	pthread_condattr_destroy(&attr);
	prog_start_thread(&wb->thread, writer_thread, wb, "cache writer");
	return wb;
}

/*
 * Applies everything queued, stops the thread and frees the rest; the
 * store is the caller's again. Returns the warnings not yet taken.
 */
char *
writeback_finish(struct writeback *wb)
{
	char *warnings;

	pthread_mutex_lock(&wb->lock);
	wb->closing = 1;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	pthread_join(wb->thread, NULL);
	warnings = writeback_warnings(wb);
	pthread_cond_destroy(&wb->work);
	pthread_cond_destroy(&wb->room);
	pthread_mutex_destroy(&wb->lock);
	close(wb->wake_fd);
	free(wb);
	return warnings;
}

/* The failures reported so far, one per line, or NULL; the caller frees. */
char *
writeback_warnings(struct writeback *wb)
{
	char *text = NULL;

	pthread_mutex_lock(&wb->lock);
	if (wb->warnings.len > 0) {
		text = buf_take(&wb->warnings);
	}
	pthread_mutex_unlock(&wb->lock);
	return text;
}

static struct op *
op_new(enum op_kind kind, struct writeback_body *b, size_t len)
{
	struct op *op = xcalloc(1, sizeof *op + len);

	op->kind = kind;
	op->body = b;
	op->len = len;
	return op;
}

static int
full(const struct writeback *wb, size_t size)
{
	return wb->bytes > 0 && wb->bytes + size > QUEUE_MAX_BYTES;
}

/*
 * Queues an operation and returns its seq. Body bytes first wait for
 * room if the queue is full (see writeback_room); the other operations
 * are small, one per response, and never wait.
 */
static long long
enqueue(struct writeback *wb, struct op *op)
{
	size_t size = sizeof *op + op->len;
	long long seq;

	pthread_mutex_lock(&wb->lock);
	while (op->kind == OP_WRITE && full(wb, size))
		pthread_cond_wait(&wb->room, &wb->lock);
	if (wb->head == NULL) {
		wb->first_ms = prog_now_ms();
		pthread_cond_signal(&wb->work);
	}
	*wb->tail = op;
	wb->tail = &op->next;
	wb->bytes += size;
	seq = op->seq = ++wb->queued;
	if (wb->bytes >= QUEUE_MAX_BYTES / 2)
		pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->lock);
	return seq;
}

/* Whether n body bytes would be queued now without waiting. */
int
writeback_room(struct writeback *wb, size_t n)
{
	int room;

	pthread_mutex_lock(&wb->lock);
	room = !full(wb, sizeof(struct op) + n);
	pthread_mutex_unlock(&wb->lock);
	return room;
}

/*
 * An eventfd that becomes readable when a group of operations has
 * been applied; writeback_applied reads it.
 */
int
writeback_wake_fd(const struct writeback *wb)
{
	return wb->wake_fd;
}

/* The seq up to which every operation is applied. */
long long
writeback_applied(struct writeback *wb)
{
	uint64_t n;
	long long seq;

	if (read(wb->wake_fd, &n, sizeof n) < 0)
		n = 0;		/* nothing new: EAGAIN */
	pthread_mutex_lock(&wb->lock);
	seq = wb->applied;
	pthread_mutex_unlock(&wb->lock);
	return seq;
}

/* Applies what is queued now, without waiting for more to group with it. */
void
writeback_flush(struct writeback *wb)
{
	pthread_mutex_lock(&wb->lock);
	wb->urgent = 1;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->lock);
}

/* A new body for the response to url; nothing is stored before commit. */
struct writeback_body *
writeback_body_new(const char *url)
{
	size_t n = strlen(url) + 1;
	struct writeback_body *b = xcalloc(1, sizeof *b + n);

	memcpy(b->url, url, n);
	return b;
}

/*
 * Queues n more bytes of the body. One that grows past the rules'
 * max_object is given up at once: its commit stores nothing.
 */
void
writeback_write(struct writeback *wb, struct writeback_body *b,
    const void *p, size_t n)
{
	struct op *op;
	long long max = wb->rules.max_object;

	if (max > 0 && b->queued > max)
		return;		/* given up already */
	b->queued += (long long)n;
	if (max > 0 && b->queued > max) {
		enqueue(wb, op_new(OP_GIVE_UP, b, 0));
		return;
	}
	op = op_new(OP_WRITE, b, n);
	memcpy(op->data, p, n);
	enqueue(wb, op);
}

/* An operation on a URL, kept in its data. */
static struct op *
url_op(enum op_kind kind, const char *url)
{
	size_t n = strlen(url) + 1;
	struct op *op = op_new(kind, NULL, n);

	memcpy(op->data, url, n);
	return op;
}

/* Removes every stored response for url (RFC 9111 section 4.4). */
long long
writeback_remove(struct writeback *wb, const char *url)
{
	return enqueue(wb, url_op(OP_REMOVE, url));
}

/* Removes every stored response whose URL matches glob. */
long long
writeback_purge(struct writeback *wb, const char *glob)
{
	return enqueue(wb, url_op(OP_PURGE, glob));
}

/* Marks url's responses as not storable until then (see store.h). */
long long
writeback_mark_uncacheable(struct writeback *wb, const char *url,
    time_t until)
{
	struct op *op = url_op(OP_MARK, url);

	op->when = until;
	return enqueue(wb, op);
}

/* Copies s into the operation's data at *at; returns the copy. */
static const char *
keep(struct op *op, size_t *at, const char *s)
{
	size_t n = strlen(s) + 1;
	char *copy = op->data + *at;

	memcpy(copy, s, n);
	*at += n;
	return copy;
}

/* Stores the response whose body b holds; b is the thread's from now. */
long long
writeback_commit(struct writeback *wb, struct writeback_body *b,
    const struct cache_response *r)
{
	return writeback_commit_with(wb, b, r, &wb->rules);
}

/* writeback_commit, with rules of its own for this response. */
long long
writeback_commit_with(struct writeback *wb, struct writeback_body *b,
    const struct cache_response *r, const struct cache_rules *rules)
{
	const char *request_headers = r->request_headers ?
	    r->request_headers : "";
	const char *scope = r->scope != NULL ? r->scope : "";
	size_t at = 0;
	struct op *op = op_new(OP_COMMIT, b, strlen(r->url) +
	    strlen(r->headers) + strlen(request_headers) + strlen(scope) + 4);

	op->response = *r;
	op->rules = *rules;
	op->response.url = keep(op, &at, r->url);
	op->response.headers = keep(op, &at, r->headers);
	op->response.request_headers = keep(op, &at, request_headers);
	op->response.scope = keep(op, &at, scope);	/* "": none */
	return enqueue(wb, op);
}

/* Gives the body up: nothing of it is stored. */
void
writeback_abort(struct writeback *wb, struct writeback_body *b)
{
	if (b != NULL)
		enqueue(wb, op_new(OP_ABORT, b, 0));
}

/* Writes an entry's new head and freshness (cache_revalidate made them). */
long long
writeback_refresh(struct writeback *wb, const struct store_entry *e)
{
	struct op *op = op_new(OP_REFRESH, NULL, 0);

	store_entry_copy(&op->entry, e);
	return enqueue(wb, op);
}

/* Counts n answers from stored entries, ids[i] for the i-th. */
void
writeback_hits(struct writeback *wb, const long long *ids, size_t n,
    time_t when)
{
	struct op *op = op_new(OP_HITS, NULL, n * sizeof *ids);

	memcpy(op->data, ids, n * sizeof *ids);
	op->when = when;
	enqueue(wb, op);
}

/* Adds to the file's counters: lines of "DELTA SERIES" (metrics_take). */
void
writeback_count(struct writeback *wb, const char *lines)
{
	size_t n = strlen(lines);
	struct op *op = op_new(OP_COUNT, NULL, n + 1);

	memcpy(op->data, lines, n + 1);
	enqueue(wb, op);
}

