/*
 * Cache-through: a request answered from the cache file when the rules
 * allow, else from the upstream through it, with one upstream request
 * per URL at a time across every process (leases) and the store's
 * writes on a thread of their own. See through.h.
 *
 * A flight is what one URL's requests share while its answer is not in
 * the file: the upstream request of the one that holds the lease
 * (FETCHING), the write of its answer until the writer thread has
 * applied it (STORING), or another process's request (REMOTE). Other
 * requests for the URL wait on the flight and, once it ends, look the
 * URL up again: they see what it stored (RFC 9211's "collapsed"). A
 * flight whose answer cannot be stored, or that failed, lets them go to
 * the upstream at once, each on its own; so does a wait that lasts
 * longer than collapse_ms.
 *
 * Woken requests are taken up by a timer, never inside a libcurl
 * callback, where no transfer may be added or removed.
 *
 * With a shared tier (shared.h), the holder of a URL's lease here asks
 * it before the upstream (SHARED): its entry, if another host stored
 * one, is stored here and answers as if fetched; else its lease, so
 * that one host of all asks the upstream, and puts what it stores
 * there too; else the holder waits for that host's news on the
 * channel, or its lease's end. When the tier is down or slow, each
 * host goes on as if there were none.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/url.h"
#include "net/metrics.h"
#include "store/hot.h"
#include "store/lease.h"
#include "store/writeback.h"
#include "through/gate.h"
#include "through/through.h"
#include "tier/shared.h"

#define HIT_FLUSH_MS	1000	/* hit counts and metrics are written this often */
#define HIT_FLUSH_MAX	16384	/* …or when this many are waiting */

#define SHARED_WAITS	3	/* for other hosts' requests, then our own */

enum flight_state {
	FLIGHT_FETCHING, FLIGHT_STORING, FLIGHT_REMOTE,
	FLIGHT_SHARED,		/* asking the shared tier, or waiting for it */
};

struct flight {
	struct flight		*next;
	struct through		*th;
	char			*key;
	enum flight_state	 state;
	struct through_call	*holder;	/* FETCHING: whose request */
	struct lease		*lease;		/* held, or waited on */
	struct watch		*watch;		/* its FIFO, its deadlines */
	long long		 seq;		/* STORING: the write */
	long long		 recheck_ms;	/* REMOTE: next lease_busy;
						   SHARED: next ask */
	int			 uncacheable;	/* waiters ask on their own */
	struct shared_ask	*asking;	/* SHARED: the tier */
	char			 token[SHARED_TOKEN_LEN];	/* its lease's */
	int			 shared_waits;
	int			 shared_news;	/* came while asking */
	struct through_call	*waiters;
};

struct through_call {
	struct through		*th;
	struct through_call	*prev_all, *next_all;	/* th->calls */
	const struct through_sink *sink;	/* NULL once answered */
	void			*ctx;
	char			*key, *method, *fields, *forward;
	char			*scope;		/* NULL: none */
	const char		*body;		/* the caller's */
	size_t			 body_len;
	struct cache_rules	 rules;
	struct policy_request	 directives;
	int			 cacheable;	/* GET or HEAD */
	int			 stored_only;
	int			 retries;	/* left */
	int			 unstored_5xx;
	int			 attempts;	/* sent so far */
	long long		 retry_after_ms;	/* -1: backoff */
	long			 max_redirects;
	struct watch		*retry_timer;	/* NULL: none yet */
	int			 retrying;	/* when the transfer is over */
	char			*final_url;	/* redirects led here */
	char			*error;		/* a message of its own */
	int			 lookup_warned;
	int			 waited_remote;	/* stored_only: once */
	int			 shared_asked;	/* the tier: once */
	struct store_entry	 cached;
	int			 have_cached;
	struct hot_entry	*hot;		/* cached is this one's */
	struct flight		*flight;	/* held or waited on */
	struct through_call	*next;		/* among waiters, or ready */
	long long		 wait_until;
	int			 go_upstream;	/* when woken */
	struct gate_turn	*turn;		/* waited for to send */
	struct transfer		*t;
	struct writeback_body	*wbody;		/* being stored */
	struct buf		 shared_body;	/* …and for the shared tier */
	int			 sharing;	/* shared_body is whole so far */
	struct buf		 head;
	int			 head_passed;	/* to the sink */
	int			 body_passed;	/* a byte of it */
	int			 settled;	/* the transfer is moot */
	int			 paused_for_room;
	time_t			 request_time, response_time;
	long long		 upstream_start_ms;
	struct through_result	 result;
};

struct through {
	struct store		*reader, *writer;
	struct writeback	*wb;
	struct upstream		*upstream;
	struct loop		*loop;
	struct leases		*leases;	/* NULL: this process only */
	struct gate		*gate;		/* NULL: no --upstream-rate */
	struct shared		*shared;	/* NULL: no --shared */
	struct options		 opt;	/* rules, stale-if-error, collapse */
	char			*authorization;	/* the upstream URL's credentials */
	char			*origin;	/* …which go to its origin alone */
	int			 reading;	/* this round's read transaction */
	struct hot		*hot;		/* fresh entries in memory */
	long long		 data_version;	/* the file's, that hot holds */
	struct flight		*flights;
	struct through_call	*calls;		/* every one alive */
	struct through_call	*ready, **ready_tail;	/* woken */
	struct watch		*ready_timer;
	struct watch		*applied;	/* the writer's eventfd */
	struct buf		 paused;	/* calls waiting for queue room */
	struct {
		long long	*ids;
		size_t		 len, cap;
		long long	 flushed_ms;
	} hits;
};

static void lookup(struct through_call *);
static void fetch(struct through_call *);
static void share_ask(struct flight *, int);
static void share_refreshed(struct through_call *);
static void share_put(struct through_call *, const struct cache_response *);

/*
 * A round's lookups share one read transaction: one lock and snapshot
 * a round rather than one a hit. It ends with the round, and before
 * woken requests look again, so that they see the writes they waited
 * for. Bodies still being sent keep their own snapshot past its end.
 */
static void
read_begin(struct through *th)
{
	long long v;

	if (th->reading || store_read_begin(th->reader) < 0)
		return;
	th->reading = 1;
	/* Anything committed since: what memory holds may be gone. */
	if ((v = store_data_version(th->reader)) != th->data_version ||
	    v < 0)
		hot_clear(th->hot);
	th->data_version = v;
}

/* Lets c->cached go, from the store or from memory. */
static void
forget_cached(struct through_call *c)
{
	if (c->hot != NULL) {
		hot_release(c->hot);
		c->hot = NULL;
		memset(&c->cached, 0, sizeof c->cached);
	} else if (c->have_cached || c->cached.url != NULL)
		store_entry_free(&c->cached);
	c->have_cached = 0;
}

static void
read_end(struct through *th)
{
	if (th->reading)
		store_read_end(th->reader);
	th->reading = 0;
}

/* The writer thread's failures (taken), as warnings. */
static void
warn_lines(char *text)
{
	char *line, *next;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		prog_warnx("%s", line);
	}
	free(text);
}

static void
call_free(struct through_call *c)
{
	if (c->prev_all != NULL)
		c->prev_all->next_all = c->next_all;
	else
		c->th->calls = c->next_all;
	if (c->next_all != NULL)
		c->next_all->prev_all = c->prev_all;
	forget_cached(c);
	/* what the call never made, it has nothing to end */
	if (c->turn != NULL)
		gate_cancel(c->turn);
	if (c->wbody != NULL)
		writeback_abort(c->th->wb, c->wbody);
	loop_unwatch(c->retry_timer);
	buf_free(&c->shared_body);
	buf_free(&c->head);
	free(c->final_url);
	free(c->error);
	free(c->key);
	free(c->method);
	free(c->fields);
	free(c->scope);
	free(c->forward);
	free(c);
}

/* After the sink's last callback: freed once its transfer is over. */
static void
call_settle(struct through_call *c)
{
	c->sink = NULL;
	c->settled = 1;
	if (c->t == NULL)
		call_free(c);
}

/* Queues a woken call; the ready timer takes it up. */
static void
make_ready(struct through *th, struct through_call *c, int go_upstream)
{
	c->flight = NULL;
	c->go_upstream = go_upstream;
	c->next = NULL;
	*th->ready_tail = c;
	th->ready_tail = &c->next;
	watch_deadline(th->ready_timer, 1);	/* at once */
}

static void
on_ready(struct watch *w, short revents, void *ctx)
{
	struct through *th = ctx;
	struct through_call *c;

	(void)revents;
	watch_deadline(w, 0);
	read_end(th);
	while ((c = th->ready) != NULL) {
		if ((th->ready = c->next) == NULL)
			th->ready_tail = &th->ready;
		c->next = NULL;
		if (c->go_upstream)
			fetch(c);
		else
			lookup(c);
	}
}

/* Unlinks c from a list, if it is there; returns whether it was. */
static int
unlink_call(struct through_call **p, struct through_call *c)
{
	for (; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			c->next = NULL;
			return 1;
		}
	return 0;
}

static struct flight *
flight_find(struct through *th, const char *key)
{
	struct flight *f;

	for (f = th->flights; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* When the flight next needs a look: a waiter's bound, a recheck. */
static void
flight_schedule(struct flight *f)
{
	struct through_call *c;
	long long at = f->state == FLIGHT_REMOTE || (f->state ==
	    FLIGHT_SHARED && f->asking == NULL) ? f->recheck_ms : 0;

	for (c = f->waiters; c != NULL; c = c->next)
		if (at == 0 || c->wait_until < at)
			at = c->wait_until;
	watch_deadline(f->watch, at);
}

static void
release_waiters(struct flight *f, int go_upstream)
{
	struct through_call *c;

	while ((c = f->waiters) != NULL) {
		f->waiters = c->next;
		make_ready(f->th, c, go_upstream);
	}
}

/*
 * Ends the flight: the lease is given up, so other processes' waiters
 * wake, and the waiters here look the URL up again, or go upstream.
 */
static void
flight_end(struct flight *f)
{
	struct flight **p;

	for (p = &f->th->flights; *p != f; p = &(*p)->next)
		;
	*p = f->next;
	if (f->holder != NULL)
		f->holder->flight = NULL;
	release_waiters(f, f->uncacheable);
	shared_cancel(f->asking);
	if (f->token[0] != '\0')	/* given up: other hosts may go on */
		shared_put(f->th->shared, f->key, f->token, NULL, NULL, 0, 0);
	lease_end(f->lease);
	loop_unwatch(f->watch);
	free(f->key);
	free(f);
}

/* A waiter that has waited its bound asks the upstream itself. */
static void
expire_waiters(struct flight *f, long long now)
{
	struct through_call **p, *c;

	for (p = &f->waiters; (c = *p) != NULL;) {
		if (c->wait_until > now) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		make_ready(f->th, c, 1);
	}
}

static void
flight_tick(struct watch *w, short revents, void *ctx)
{
	struct flight *f = ctx;
	long long now = prog_now_ms();

	(void)w;
	if (f->state == FLIGHT_SHARED && f->asking == NULL &&
	    now >= f->recheck_ms) {
		share_ask(f, 0);	/* the other host's lease may be over */
		return;
	}
	if (f->state == FLIGHT_REMOTE && (revents != 0 ||
	    now >= f->recheck_ms)) {
		if (revents != 0 || !lease_busy(f->lease)) {
			flight_end(f);	/* its holder is done, or dead */
			return;
		}
		f->recheck_ms = now + LEASE_RECHECK_MS;
	}
	expire_waiters(f, now);
	if (f->state == FLIGHT_REMOTE && f->waiters == NULL)
		flight_end(f);	/* no one is left to wait */
	else
		flight_schedule(f);
}

static struct flight *
flight_new(struct through *th, const char *key, enum flight_state state,
    int fd)
{
	struct flight *f = xcalloc(1, sizeof *f);

	f->th = th;
	f->key = xstrdup(key);
	f->state = state;
	f->watch = loop_watch(th->loop, fd, POLLIN, flight_tick, f);
	f->next = th->flights;
	th->flights = f;
	return f;
}

/*
 * c waits for the flight; collapsed if for another's request, not only
 * for a write that a finished one queued (read-your-writes).
 */
static void
wait_on(struct flight *f, struct through_call *c, int collapsed)
{
	c->flight = f;
	c->result.collapsed |= collapsed;
	c->wait_until = prog_now_ms() + f->th->opt.collapse_ms;
	c->next = f->waiters;
	f->waiters = c;
	flight_schedule(f);
}

/* The flight c holds, if it holds one. */
static struct flight *
holding(const struct through_call *c)
{
	return c->flight != NULL && c->flight->holder == c ? c->flight : NULL;
}

/* Gives the flight up: its waiters ask the upstream on their own. */
static void
abandon(struct through_call *c)
{
	struct flight *f = holding(c);

	if (f != NULL) {
		f->uncacheable = 1;
		flight_end(f);
	}
}

/*
 * The lease for a write made here, not fetched (a merged answer), so
 * that other processes wait for it too; NULL if another holds it.
 */
static struct lease *
store_lease(struct through *th, const char *key)
{
	struct lease *l = NULL;

	if (th->leases != NULL && !lease_held(l = lease_take(th->leases,
	    key))) {
		lease_end(l);
		l = NULL;
	}
	return l;
}

/*
 * A write for key is queued as seq: the key's flight lasts until the
 * writer has applied it, so that whoever looks next sees it. c, if not
 * NULL, is the flight's holder, whose request is over.
 */
static void
storing(struct through *th, struct through_call *c, const char *key,
    long long seq)
{
	struct flight *f = c != NULL ? holding(c) : flight_find(th, key);

	if (f == NULL) {
		f = flight_new(th, key, FLIGHT_STORING, -1);
		f->lease = store_lease(th, key);
	} else if (f->state == FLIGHT_FETCHING && f->holder != c)
		return;		/* its own write will come later */
	else if (f->state == FLIGHT_REMOTE)
		return;		/* its end makes everyone look again */
	if (c != NULL)
		c->flight = NULL;
	f->holder = NULL;
	f->state = FLIGHT_STORING;
	f->seq = seq;
	/*
	 * No waiting to group it with others: whoever asks next, here or
	 * in another process, should find it. Writes that come while the
	 * writer is busy still share a transaction.
	 */
	writeback_flush(th->wb);
}

static void
count_hit(struct through *th, long long id)
{
	if (th->wb == NULL)
		return;		/* offline */
	if (th->hits.len == th->hits.cap) {
		th->hits.cap = th->hits.cap ? th->hits.cap * 2 : 64;
		th->hits.ids = xrealloc(th->hits.ids,
		    th->hits.cap * sizeof *th->hits.ids);
	}
	th->hits.ids[th->hits.len++] = id;
}

static void
answer_stored(struct through_call *c, enum through_how how)
{
	count_hit(c->th, c->cached.id);
	if (c->sink != NULL)
		c->sink->stored(c->ctx, &c->cached, how);
	call_settle(c);
}

static void
answer_failed(struct through_call *c, enum through_failure why,
    const char *error)
{
	c->result.error = error;
	if (c->sink != NULL)
		c->sink->fail(c->ctx, why, error);
	call_settle(c);
}

/* Whether the stored response may answer now that the upstream failed. */
static int
stale_allowed(const struct through_call *c)
{
	return c->have_cached && policy_stale_if_error(c->cached.headers,
	    cache_age(&c->cached, time(NULL)), c->cached.lifetime,
	    c->th->opt.stale_if_error);
}

/*
 * Whether the stored response may answer while the upstream's rate
 * allows no request: as when disconnected (RFC 9111 section 4.2.4).
 */
static int
stale_allowed_limited(const struct through_call *c)
{
	return c->have_cached && policy_may_go_stale(c->cached.headers);
}

static struct cache_response
response_of(const struct through_call *c)
{
	return (struct cache_response){
		.url = c->final_url != NULL ? c->final_url : c->key,
		.status = c->result.status,
		.headers = buf_str(&c->head),
		.request_headers = c->fields, .scope = c->scope,
		.request_time = c->request_time,
		.response_time = c->response_time,
	};
}

/* A 304 to our conditional request: the stored response, refreshed. */
static void
revalidated(struct through_call *c)
{
	struct cache_response r = response_of(c);
	struct through *th = c->th;
	char *key;

	/*
	 * This client has what the 304 said; the next one may not: the
	 * stored response goes, once this answer has its body open (its
	 * snapshot keeps it).
	 */
	if (cache_revalidate(&c->cached, &r, &c->rules) != NULL) {
		key = xstrdup(c->key);
		answer_stored(c, THROUGH_REVALIDATED);
		storing(th, NULL, key, writeback_remove(th->wb, key));
		free(key);
		return;
	}
	share_refreshed(c);	/* while c holds the flight */
	storing(th, c, c->key, writeback_refresh(th->wb, &c->cached));
	answer_stored(c, THROUGH_REVALIDATED);
}

/*
 * Whether to store the response: the request's and the response's
 * rules allow it; a redirected one under the URL that gave it (RFC 9111
 * section 2), and not in the shared tier, whose lease is the first
 * URL's. One that may not be stored marks the URL for a while
 * (hit-for-miss): waiters here go upstream at once; other processes'
 * once the mark is in the file, when the flight ends. A request's own
 * no-store marks nothing, nor does a 5xx it keeps out (unstored_5xx):
 * the next request may store what it gets.
 */
static void
decide_storing(struct through_call *c, int status, const char *fields)
{
	struct through *th = c->th;
	struct flight *f = holding(c);
	struct cache_response r = response_of(c);
	int storable = cache_unstorable(&c->rules, status, c->fields,
	    fields) == NULL;
	int kept_out = c->directives.no_store ||
	    (c->unstored_5xx && status >= 500);

	if (!kept_out && storable) {
		c->wbody = writeback_body_new(r.url);
		c->result.stored = 1;
		c->sharing = f != NULL && f->token[0] != '\0' &&
		    c->final_url == NULL;
		return;
	}
	if (f == NULL)
		return;
	f->uncacheable = 1;
	release_waiters(f, 1);
	if (!storable && !kept_out)
		storing(th, c, c->key, writeback_mark_uncacheable(th->wb,
		    c->key, time(NULL) + STORE_UNCACHEABLE_SECS));
}

/*
 * An unsafe request that succeeded makes what is stored for its URL,
 * and for the same origin's URLs in Location and Content-Location,
 * out of date (RFC 9111 section 4.4).
 */
static void
invalidate(struct through *th, const char *key, const char *fields)
{
	static const char *const named[] = { "location", "content-location" };
	struct header h;
	char *value, *url;
	size_t i;

	storing(th, NULL, key, writeback_remove(th->wb, key));
	for (i = 0; i < sizeof named / sizeof named[0]; i++) {
		if (!headers_get(fields, named[i], &h))
			continue;
		value = xstrndup(h.value, h.value_len);
		if ((url = url_resolve(key, value)) != NULL &&
		    strcmp(url, key) != 0)
			storing(th, NULL, url, writeback_remove(th->wb, url));
		free(url);
		free(value);
	}
}

/* An interim response, for a caller still waiting for the final head. */
static void
on_interim(void *ctx, int status, const char *fields)
{
	struct through_call *c = ctx;

	if (c->sink != NULL && c->sink->interim != NULL && !c->head_passed)
		c->sink->interim(c->ctx, status, fields);
}

/*
 * Asks again once this transfer is over: after_ms later, or -1 for an
 * exponential backoff, half of it random so that clients that failed
 * together do not retry together. Returns -1, to end the transfer.
 */
static int
retry(struct through_call *c, long long after_ms)
{
	c->retrying = 1;
	c->retry_after_ms = after_ms;
	return -1;
}

static void
on_retry(struct watch *w, short revents, void *ctx)
{
	(void)revents;
	watch_deadline(w, 0);
	fetch(ctx);
}

/* The transfer is over: the next attempt, when retry said. */
static void
retry_now(struct through_call *c)
{
	long long base = 250LL << (c->attempts < 8 ? c->attempts : 8),
	    after = c->retry_after_ms;

	assert(c->t == NULL && !c->head_passed);
	if (after < 0)
		after = base / 2 + random() % (base / 2 + 1);
	c->retrying = 0;
	c->result.status = 0;
	c->result.error = NULL;
	buf_reset(&c->head);
	free(c->final_url);
	c->final_url = NULL;
	if (c->retry_timer == NULL)
		c->retry_timer = loop_watch(c->th->loop, -1, 0, on_retry, c);
	watch_deadline(c->retry_timer, prog_now_ms() + after + 1);
}

static int
retryable(int status)
{
	return status == 429 || status == 502 || status == 503 ||
	    status == 504;
}

/*
 * What the sink was given is taken back, if it can be: before its head
 * there is nothing to take back; after it, only a sink with reset can.
 */
static int
taken_back(struct through_call *c)
{
	if (!c->head_passed)
		return 1;
	if (c->sink == NULL || c->sink->reset == NULL ||
	    c->sink->reset(c->ctx) < 0)
		return 0;
	c->head_passed = 0;
	c->body_passed = 0;
	return 1;
}

/*
 * Redirects followed (max_redirects) led to the URL the response is
 * stored under, if it is another; -1 if it can be no key.
 */
static int
redirected(struct through_call *c)
{
	struct buf why = BUF_INIT;
	const char *reason;

	if (c->t == NULL || upstream_redirects(c->t) == 0)
		return 0;
	c->final_url = url_normalize(upstream_url(c->t), &reason);
	if (c->final_url == NULL) {
		buf_printf(&why, "redirected to an invalid URL: %s", reason);
		free(c->error);
		c->error = buf_take(&why);
		return -1;
	}
	if (strcmp(c->final_url, c->key) == 0) {
		free(c->final_url);	/* back where it started */
		c->final_url = NULL;
	}
	return 0;
}

static int
on_head(void *ctx, int status, const char *fields)
{
	struct through_call *c = ctx;
	struct through *th = c->th;

	c->response_time = time(NULL);
	c->result.upstream_ms = prog_now_ms() - c->upstream_start_ms;
	metrics_upstream_head(c->result.upstream_ms);
	c->result.status = status;
	buf_reset(&c->head);
	buf_adds(&c->head, fields);
	if (redirected(c) < 0)
		return -1;	/* failed, with c->error */
	if (status == 304 && c->have_cached && c->final_url != NULL) {
		/* another URL's 304: the stored body is not confirmed */
		forget_cached(c);
		return retry(c, 0);
	}
	if (status == 304 && c->have_cached) {
		revalidated(c);
		return -1;
	}
	if (th->gate != NULL && gate_answered(th->gate, c->key, status,
	    fields) && c->sink != NULL && stale_allowed_limited(c)) {
		abandon(c);
		answer_stored(c, THROUGH_STALE_LIMITED);
		return -1;
	}
	if (retryable(status) && c->retries > 0) {
		c->retries--;
		return retry(c, http_retry_after_ms(fields, 3600));
	}
	if (status >= 500 && (c->sink == NULL || stale_allowed(c))) {
		abandon(c);	/* the stored response stays */
		if (c->sink != NULL)
			answer_stored(c, THROUGH_STALE_ERROR);
		else
			call_settle(c);
		return -1;
	}
	if (!c->cacheable && status < 400)
		invalidate(th, c->key, fields);
	else if (c->cacheable)
		decide_storing(c, status, fields);
	if (c->sink == NULL && c->wbody == NULL) {
		call_settle(c);		/* a revalidation with nothing to keep */
		return -1;
	}
	if (c->sink == NULL)
		return 0;
	c->result.may_stand_in = c->sink->reset != NULL && stale_allowed(c);
	c->result.final_url = c->final_url;
	c->result.request_time = c->request_time;
	c->result.response_time = c->response_time;
	c->head_passed = 1;
	return c->sink->head(c->ctx, status, fields);
}

static int
on_body(void *ctx, const void *p, size_t n)
{
	struct through_call *c = ctx;
	int rc;

	if (c->wbody != NULL && !writeback_room(c->th->wb, n)) {
		if (!c->paused_for_room)
			buf_add(&c->th->paused, &c, sizeof c);
		c->paused_for_room = 1;
		return UPSTREAM_PAUSE;	/* on_applied resumes it */
	}
	if (c->sink != NULL && (rc = c->sink->body(c->ctx, p, n)) != 0)
		return rc;
	c->body_passed |= n > 0;
	if (c->wbody != NULL)
		writeback_write(c->th->wb, c->wbody, p, n);
	if (c->sharing && c->shared_body.len + n > (size_t)shared_max_object(
	    c->th->shared)) {
		c->sharing = 0;		/* too large to share: kept here only */
		buf_free(&c->shared_body);
	} else if (c->sharing)
		buf_add(&c->shared_body, p, n);
	return 0;
}

static enum through_failure
failure_of(const char *error)
{
	/* curl's words for CURLE_OPERATION_TIMEDOUT: too long, too slow */
	return strstr(error, "timed out") != NULL ||
	    strstr(error, "too slow") != NULL ? THROUGH_TIMED_OUT :
	    THROUGH_UPSTREAM_FAILED;
}

/*
 * A transfer that failed: nothing of it is stored. It is tried again
 * if retries are left and the sink has no body byte yet; else the
 * stored response stands in, if the rules and the sink allow.
 */
static void
failed(struct through_call *c, const char *error)
{
	int ours = c->error != NULL;	/* redirected, or the sink's */

	if (ours)
		error = c->error;
	if (c->result.upstream_ms < 0)
		c->result.upstream_ms = prog_now_ms() - c->upstream_start_ms;
	writeback_abort(c->th->wb, c->wbody);
	c->wbody = NULL;
	c->result.stored = 0;
	c->result.error = error;
	if (!ours && c->retries > 0 && !c->body_passed && taken_back(c)) {
		c->retries--;
		(void)retry(c, -1);
		retry_now(c);
		return;
	}
	abandon(c);
	if (stale_allowed(c) && taken_back(c))
		answer_stored(c, THROUGH_STALE_ERROR);
	else if (c->head_passed) {
		if (c->sink != NULL)
			c->sink->done(c->ctx, error);
		call_settle(c);
	} else
		answer_failed(c, failure_of(error), error);
}

static void
on_done(void *ctx, const char *error)
{
	struct through_call *c = ctx;
	struct cache_response r;

	c->t = NULL;
	if (c->settled) {
		call_settle(c);		/* answered already: free it */
		return;
	}
	if (c->retrying) {
		retry_now(c);
		return;
	}
	if (error != NULL) {
		metrics_upstream_failed();
		failed(c, error);
		return;
	}
	if (c->wbody != NULL) {
		r = response_of(c);
		share_put(c, &r);
		storing(c->th, c, c->key, writeback_commit_with(c->th->wb,
		    c->wbody, &r, &c->rules));
		c->wbody = NULL;
	} else {
		abandon(c);
	}
	if (c->sink != NULL)
		c->sink->done(c->ctx, NULL);
	call_settle(c);
}

/* Asks the upstream, conditionally when a stored response may be current. */
static void
send_upstream(struct through_call *c)
{
	struct buf fields = BUF_INIT;
	struct header h;
	struct upstream_request req = {
		.url = c->key, .ctx = c, .on_interim = on_interim,
		.on_head = on_head, .on_body = on_body, .on_done = on_done,
	};

	/* the client's end-to-end fields, made only now that they go */
	if (c->forward != NULL)
		buf_adds(&fields, c->forward);
	else
		http_forward_fields(&fields, c->fields);
	/* the upstream's credentials go to it alone, as curl's do */
	if (c->th->authorization != NULL &&
	    !headers_get(buf_cstr(&fields), "authorization", &h) &&
	    url_same_origin(c->key, c->th->origin))
		buf_adds(&fields, c->th->authorization);
	policy_add_capability(&fields);
	if (c->have_cached && c->cached.etag != NULL)
		buf_printf(&fields, "If-None-Match: %s\r\n", c->cached.etag);
	else if (c->have_cached && c->cached.last_modified != NULL)
		buf_printf(&fields, "If-Modified-Since: %s\r\n",
		    c->cached.last_modified);
	req.headers = buf_cstr(&fields);
	req.method = c->cacheable ? "GET" : c->method;
	req.body = c->body;
	req.body_len = c->body_len;
	req.max_redirects = c->max_redirects;
	c->attempts++;
	c->request_time = time(NULL);
	c->upstream_start_ms = prog_now_ms();
	c->result.collapsed = 0;	/* asking on its own after all */
	c->t = upstream_add(c->th->upstream, &req);
	metrics_upstream_sent();
	buf_free(&fields);
}

/* The upstream's rate said: send now, or answer without it. */
static void
on_turn(void *ctx, int go, long long retry_after_s)
{
	struct through_call *c = ctx;

	c->turn = NULL;
	if (go) {
		send_upstream(c);
		return;
	}
	c->result.retry_after_s = retry_after_s;
	c->result.error = "over the upstream's rate";
	abandon(c);
	if (c->sink != NULL && stale_allowed_limited(c))
		answer_stored(c, THROUGH_STALE_LIMITED);
	else
		answer_failed(c, THROUGH_UPSTREAM_LIMITED, c->result.error);
}

/* Asks the upstream once its rate allows (gate.h). */
static void
fetch(struct through_call *c)
{
	if (c->stored_only) {	/* a waiter woken to ask on its own */
		answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
		return;
	}
	if (c->th->gate != NULL)
		gate_ask(c->th->gate, c->key, on_turn, c, &c->turn);
	else
		send_upstream(c);
}

/* How e may answer c (RFC 9111 section 4). */
static enum policy_use
usable(const struct through_call *c, const struct store_entry *e)
{
	return policy_use(&c->directives, e->headers,
	    cache_age(e, time(NULL)), e->lifetime);
}

/* A fresh entry read from the file is kept in memory, if it fits. */
static void
keep_in_memory(struct through *th, const struct store_entry *e)
{
	struct buf body = BUF_INIT;

	if (hot_fits(e) && store_body_read(th->reader, e, &body) == 0)
		hot_put(th->hot, e, body.data);
	buf_free(&body);
}

/*
 * A damaged entry (relay-cache(5)) is never used: the URL is asked for
 * as if it were not stored, and its answer replaces it; offline, the
 * request fails with the store's words (c->error).
 */
static void
lookup_failed(struct through_call *c, int found)
{
	const char *why = store_error(c->th->reader);

	free(c->error);
	c->error = NULL;
	if (c->th->upstream == NULL && found == STORE_DAMAGED)
		c->error = xstrdup(why);
	else if (c->lookup_warned++ > 0)
		;	/* said once a request: it looks again after a lease */
	else if (found == STORE_DAMAGED)
		prog_warnx("%s; asking the upstream instead", why);
	else
		prog_warnx("%s: cache lookup failed: %s", c->key, why);
}

/*
 * Reads the stored response into c->cached, from memory or the file,
 * and says how it may be used; POLICY_REVALIDATE when there is none.
 */
static enum policy_use
look_up(struct through_call *c)
{
	struct through *th = c->th;
	enum policy_use use;
	int found, rc;

	forget_cached(c);
	read_begin(th);
	/* Memory keeps the URL's one form without a scope (hot_fits). */
	if (c->scope == NULL && (c->hot = hot_get(th->hot, c->key)) != NULL) {
		/* Memory answers fresh hits only; the rest is the file's. */
		if (usable(c, &c->hot->e) == POLICY_FRESH) {
			c->cached = c->hot->e;
			c->have_cached = 1;
			return POLICY_FRESH;
		}
		hot_release(c->hot);
		c->hot = NULL;
	}
	found = cache_lookup(th->reader, c->key, c->scope, c->fields,
	    &c->cached);
	if (found > 0 && (rc = store_body_check(th->reader, &c->cached)) < 0) {
		store_entry_free(&c->cached);
		found = rc;
	}
	if (found < 0)
		lookup_failed(c, found);
	if (!(c->have_cached = found > 0))
		return POLICY_REVALIDATE;
	if ((use = usable(c, &c->cached)) == POLICY_FRESH)
		keep_in_memory(th, &c->cached);
	if (use == POLICY_REVALIDATE)
		c->result.had_stored = 1;
	return use;
}

/* Answers from the file if it is fresh there; says whether it did. */
static int
answer_fresh(struct through_call *c)
{
	if (look_up(c) != POLICY_FRESH)
		return 0;
	answer_stored(c, THROUGH_HIT);
	return 1;
}

/*
 * The holder answers from an entry of the shared tier at once, from
 * memory, while it is being written: if it is fresh for the request
 * and small, and does not vary. Returns whether it did.
 */
static int
answer_imported(struct through_call *c, const struct shared_entry *se)
{
	struct through *th = c->th;
	struct buf kept = BUF_INIT;
	struct store_entry e;

	cache_stored_entry(&se->r, &c->rules, &kept, &e);
	e.size = (long long)se->body_len;
	if (hot_fits(&e) && usable(c, &e) == POLICY_FRESH) {
		hot_put(th->hot, &e, se->body);
		c->hot = hot_get(th->hot, c->key);
	}
	cache_stored_free(&e, &kept);
	if (c->hot == NULL)
		return 0;
	c->cached = c->hot->e;
	c->have_cached = 1;
	answer_stored(c, THROUGH_HIT);
	return 1;
}

/*
 * An entry from the shared tier, stored here as if fetched. The holder
 * answers from memory if it can, else waits with the others for the
 * write, then answers from the file. Returns -1 if it may not be
 * stored here (by these rules), or the writer has no room for it now.
 */
static int
share_import(struct flight *f, const struct shared_entry *e)
{
	struct through *th = f->th;
	struct through_call *c = f->holder;
	struct writeback_body *b;

	if (cache_unstorable(&c->rules, e->r.status, c->fields,
	    e->r.headers) != NULL || !writeback_room(th->wb, e->body_len))
		return -1;
	b = writeback_body_new(f->key);
	writeback_write(th->wb, b, e->body, e->body_len);
	c->result.shared = 1;
	forget_cached(c);	/* the stale one is not the answer now */
	storing(th, c, f->key, writeback_commit_with(th->wb, b, &e->r,
	    &c->rules));
	if (!answer_imported(c, e))
		wait_on(f, c, 0);
	return 0;
}

/* The tier answered the flight's holder. */
static void
on_shared_found(void *ctx, struct shared_found *found)
{
	struct flight *f = ctx;
	struct through_call *c = f->holder;
	long long wait;

	f->asking = NULL;
	if (found->kind != SHARED_LEASED)
		f->token[0] = '\0';	/* not ours to give up */
	switch (found->kind) {
	case SHARED_ENTRY:
		/* One no newer than ours is no use: the lease, then. */
		if (c->have_cached && found->entry.r.response_time <=
		    c->cached.response_time)
			share_ask(f, 1);
		else if (share_import(f, &found->entry) < 0)
			share_ask(f, 1);
		return;
	case SHARED_BUSY:
		if (f->shared_news) {	/* its holder is done already */
			f->shared_news = 0;
			share_ask(f, 0);
			return;
		}
		if (++f->shared_waits <= SHARED_WAITS) {
			wait = found->busy_ms;
			if (wait < 10 || wait > f->th->opt.collapse_ms)
				wait = f->th->opt.collapse_ms;
			f->recheck_ms = prog_now_ms() + wait;
			flight_schedule(f);
			return;
		}
		break;
	case SHARED_FAILED:
		if (found->why != NULL)
			prog_warnx("%s: shared tier: %s", f->key, found->why);
		break;
	case SHARED_LEASED:	/* one host of all asks: this one */
		break;
	}
	f->state = FLIGHT_FETCHING;
	fetch(c);
}

/*
 * The flight's holder asks the shared tier for the URL's entry (or,
 * lease_only, for its lease alone) before the upstream; it goes to the
 * upstream at once if the tier is not up.
 */
static void
share_ask(struct flight *f, int lease_only)
{
	struct through_call *c = f->holder;

	c->shared_asked = 1;
	f->asking = shared_find(f->th->shared, f->key, lease_only,
	    2 * f->th->opt.collapse_ms, f->token, on_shared_found, f);
	if (f->asking != NULL) {
		f->state = FLIGHT_SHARED;
		watch_deadline(f->watch, 0);
		flight_schedule(f);
		return;
	}
	f->token[0] = '\0';
	f->state = FLIGHT_FETCHING;
	fetch(c);
}

/* Another host's request for url has ended: stored there, or not. */
static void
on_shared_done(void *ctx, const char *url, int stored)
{
	struct flight *f = flight_find(ctx, url);

	if (f == NULL || f->state != FLIGHT_SHARED)
		return;
	if (f->asking != NULL) {	/* its answer may say busy still */
		f->shared_news = 1;
		return;
	}
	if (stored) {
		share_ask(f, 0);
		return;
	}
	f->state = FLIGHT_FETCHING;	/* on its own, as that host did */
	fetch(f->holder);
}

/* A host purged url (or, glob, the URLs that match) for every host. */
static void
on_shared_purge(void *ctx, const char *what, int glob)
{
	struct through *th = ctx;

	if (glob)
		writeback_purge(th->wb, what);
	else
		writeback_remove(th->wb, what);
	writeback_flush(th->wb);
}

/* What the holder stores goes to the tier too, and its lease ends. */
static void
share_put(struct through_call *c, const struct cache_response *r)
{
	struct flight *f = holding(c);

	if (f == NULL || f->token[0] == '\0')
		return;
	shared_put(c->th->shared, c->key, f->token, r, c->shared_body.data,
	    c->shared_body.len, c->sharing ? shared_ttl(r, &c->rules) : 0);
	f->token[0] = '\0';
	buf_free(&c->shared_body);
	c->sharing = 0;
}

/*
 * A 304 refreshes the tier's copy as well, so that the hosts waiting
 * on this one's lease take it rather than each asking the upstream.
 */
static void
share_refreshed(struct through_call *c)
{
	struct flight *f = holding(c);
	struct cache_response r = cache_response_of(&c->cached, c->fields);

	if (f == NULL || f->token[0] == '\0')
		return;
	/* Memory holds fresh entries only: this one is the file's. */
	read_begin(c->th);
	c->sharing = c->cached.size <= shared_max_object(c->th->shared) &&
	    store_body_read(c->th->reader, &c->cached, &c->shared_body) == 0;
	share_put(c, &r);
}

/*
 * Waits for another process's request for the URL (collapsed), or for
 * its write of a response it made (not).
 */
static void
wait_remote(struct through_call *c, struct lease *l, int collapsed)
{
	struct flight *f = flight_new(c->th, c->key, FLIGHT_REMOTE,
	    lease_fd(l));

	f->lease = l;
	f->recheck_ms = prog_now_ms() + LEASE_RECHECK_MS;
	wait_on(f, c, collapsed);
}

/*
 * The stored response cannot answer: ask the upstream, unless a
 * request for the URL is under way here or in another process, which
 * this one then waits for.
 */
static void
ask(struct through_call *c)
{
	struct through *th = c->th;
	struct flight *f = flight_find(th, c->key);
	struct lease *l = NULL;

	if (f != NULL && !f->uncacheable) {
		wait_on(f, c, 1);
		return;
	}
	if (f != NULL || store_uncacheable(th->reader, c->key,
	    time(NULL)) == 1) {
		fetch(c);	/* no use waiting: it will not be stored */
		return;
	}
	if (th->leases != NULL && !lease_held(l = lease_take(th->leases,
	    c->key))) {
		wait_remote(c, l, 1);
		return;
	}
	/*
	 * The lease's last holder may have stored the URL after this
	 * round's snapshot was taken: look again in a new one.
	 */
	if (l != NULL) {
		read_end(th);
		if (answer_fresh(c)) {
			lease_end(l);
			return;
		}
	}
	f = flight_new(th, c->key, FLIGHT_FETCHING, -1);
	f->lease = l;
	f->holder = c;
	c->flight = f;
	/* The tier keeps a URL's one form: a scope's is not shared. */
	if (th->shared != NULL && !c->shared_asked && c->scope == NULL)
		share_ask(f, 0);
	else
		fetch(c);
}

/*
 * A kept answer (a merged one) is not in the file: another process
 * holds its lease while its write is queued, so wait for that once,
 * then look again in a snapshot of now before giving up.
 */
static void
stored_miss(struct through_call *c)
{
	struct through *th = c->th;
	struct lease *l;

	if (th->leases != NULL && !c->waited_remote) {
		if (!lease_held(l = lease_take(th->leases, c->key))) {
			c->waited_remote = 1;
			wait_remote(c, l, 0);
			return;
		}
		lease_end(l);
		read_end(th);
		if (answer_fresh(c))
			return;
	}
	answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
}

static struct through_call *
call_new(struct through *th, const struct through_request *req)
{
	struct through_call *c = xcalloc(1, sizeof *c);

	c->th = th;
	if ((c->next_all = th->calls) != NULL)
		c->next_all->prev_all = c;
	th->calls = c;
	c->key = xstrdup(req->key);
	c->method = xstrdup(req->method);
	c->fields = xstrdup(req->fields != NULL ? req->fields : "");
	c->scope = req->scope != NULL && *req->scope != '\0' ?
	    xstrdup(req->scope) : NULL;
	c->forward = req->forward != NULL ? xstrdup(req->forward) : NULL;
	c->rules = req->rules != NULL ? *req->rules : th->opt.rules;
	c->directives = req->directives;
	c->stored_only = req->stored_only;
	c->retries = req->retries;
	c->unstored_5xx = req->unstored_5xx;
	c->max_redirects = req->max_redirects;
	c->cacheable = strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;
	c->result.upstream_ms = -1;
	return c;
}

/*
 * A revalidation in the background: a stale response within its
 * stale-while-revalidate window (RFC 5861 section 3) is answered at
 * once while this brings the stored one up to date. One per URL
 * across every process: none if a request for it is under way.
 */
static void
revalidate_in_background(const struct through_call *fg)
{
	struct through *th = fg->th;
	struct through_request req = {
		.key = fg->key, .method = "GET", .fields = fg->fields,
		.scope = fg->scope, .forward = fg->forward, .rules = &fg->rules,
	};
	struct through_call *c;
	struct lease *l = NULL;

	if (flight_find(th, fg->key) != NULL)
		return;
	if (th->leases != NULL && !lease_held(l = lease_take(th->leases,
	    fg->key))) {
		lease_end(l);
		return;
	}
	c = call_new(th, &req);
	if (store_get(th->reader, "GET", c->key, fg->cached.variant,
	    &c->cached) <= 0) {
		lease_end(l);
		call_free(c);
		return;
	}
	c->have_cached = 1;
	c->flight = flight_new(th, c->key, FLIGHT_FETCHING, -1);
	c->flight->lease = l;
	c->flight->holder = c;
	fetch(c);
}

/* Offline: whatever is stored answers, however old. */
static void
answer_offline(struct through_call *c, enum policy_use use)
{
	if (c->have_cached)
		answer_stored(c, use == POLICY_FRESH ? THROUGH_HIT :
		    THROUGH_STALE);
	else if (c->error != NULL)
		answer_failed(c, THROUGH_DAMAGED, c->error);
	else
		answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
}

/* Answers from the file when the rules allow (RFC 9111 section 4). */
static void
lookup(struct through_call *c)
{
	struct through *th = c->th;
	struct flight *f = flight_find(th, c->key);
	enum policy_use use;

	if (f != NULL && f->state == FLIGHT_STORING && !f->uncacheable) {
		wait_on(f, c, 0);	/* read-your-writes: not in yet */
		return;
	}
	use = look_up(c);
	if (th->upstream == NULL)
		answer_offline(c, use);
	else if (use == POLICY_STALE_REVALIDATE) {
		revalidate_in_background(c);
		answer_stored(c, THROUGH_STALE);
	} else if (use == POLICY_FRESH)
		answer_stored(c, THROUGH_HIT);
	else if (c->stored_only)
		stored_miss(c);
	/* RFC 9111 5.2.1.7: a stored response it may have, or 504 */
	else if (c->directives.only_if_cached)
		answer_failed(c, THROUGH_NOT_CACHED, c->have_cached ?
		    "not fresh in the cache" : "not in the cache");
	else
		ask(c);
}

/*
 * Starts a request, setting *call to it first: the sink may be called
 * before this returns (a hit), and *call is not touched after that.
 * After its last callback a call is through's alone.
 */
void
through_start(struct through *th, const struct through_request *req,
    const struct through_sink *sink, void *ctx, struct through_call **call)
{
	struct through_call *c = call_new(th, req);

	c->sink = sink;
	c->ctx = ctx;
	*call = c;
	if (c->cacheable) {
		lookup(c);
		return;
	}
	c->body = req->body;	/* borrowed: see through_request */
	c->body_len = req->body_len;
	fetch(c);
}

const struct through_result *
through_result(const struct through_call *c)
{
	return &c->result;
}

/*
 * The body of the stored response a call's sink is given, when it is
 * in memory (e->size bytes, valid until the sink returns); else NULL.
 */
const char *
through_memory_body(const struct through_call *c)
{
	return c->hot != NULL ? c->hot->body : NULL;
}

/* The sink is ready for more body bytes. */
void
through_resume(struct through_call *c)
{
	if (c->t != NULL)
		upstream_resume(c->th->upstream, c->t);
}

/* Forgets a call that waits for room in the writer's queue. */
static void
unpause(struct through *th, struct through_call *c)
{
	struct through_call **calls = (struct through_call **)th->paused.data;
	size_t i, n = th->paused.len / sizeof c;

	for (i = 0; i < n; i++)
		if (calls[i] == c)
			calls[i] = NULL;
}

/*
 * The caller leaves before its answer ends. A holder whose answer
 * others wait for goes on storing it; anything else ends here.
 */
void
through_cancel(struct through_call *c)
{
	struct through *th = c->th;
	struct flight *f = holding(c);

	c->sink = NULL;
	if (f != NULL && c->wbody != NULL && f->waiters != NULL)
		return;		/* a background request from now on */
	if (unlink_call(&th->ready, c))
		for (th->ready_tail = &th->ready; *th->ready_tail != NULL;
		    th->ready_tail = &(*th->ready_tail)->next)
			;
	if (f == NULL && c->flight != NULL)
		unlink_call(&c->flight->waiters, c);
	c->flight = f;
	abandon(c);
	if (c->t != NULL)
		upstream_cancel(th->upstream, c->t);
	c->t = NULL;
	unpause(th, c);
	call_free(c);
}

/* The writer applied some operations: flights that waited for them end. */
static void
on_applied(struct watch *w, short revents, void *ctx)
{
	struct through *th = ctx;
	struct through_call **calls;
	struct flight *f, *next;
	long long applied = writeback_applied(th->wb);
	size_t i, n;

	(void)w;
	(void)revents;
	read_end(th);	/* a lookup later this round must see those writes */
	for (f = th->flights; f != NULL; f = next) {
		next = f->next;
		if (f->state == FLIGHT_STORING && f->seq <= applied)
			flight_end(f);
	}
	calls = (struct through_call **)th->paused.data;
	n = th->paused.len / sizeof *calls;
	th->paused.len = 0;
	for (i = 0; i < n; i++)
		if (calls[i] != NULL) {
			calls[i]->paused_for_room = 0;
			through_resume(calls[i]);
		}
	warn_lines(writeback_warnings(th->wb));
}

/* Keeps a response made here (a merged answer) as the one for key. */
void
through_store(struct through *th, const char *key, const char *fields,
    const struct buf *body, const struct cache_rules *rules)
{
	struct writeback_body *b = writeback_body_new(key);
	struct cache_response r = {
		.url = key, .status = 200, .headers = fields,
		.request_headers = "", .request_time = time(NULL),
		.response_time = time(NULL),
	};

	writeback_write(th->wb, b, body->data, body->len);
	storing(th, NULL, key, writeback_commit_with(th->wb, b, &r, rules));
}

/*
 * Opens the cache file for this process: a reader for lookups, a
 * writer on a thread of its own, and the leases beside it.
 */
struct through *
through_new(const char *cache_path, struct loop *loop, struct upstream *up,
    const struct options *opt)
{
	struct through *th = xcalloc(1, sizeof *th);
	char err[512];

	th->opt = *opt;
	th->authorization = url_authorization(config_upstream(opt->upstream));
	th->origin = xstrndup(config_upstream(opt->upstream),
	    strcspn(config_upstream(opt->upstream), "{"));
	th->loop = loop;
	th->upstream = up;
	th->ready_tail = &th->ready;
	th->hot = hot_new();
	th->data_version = -1;
	th->ready_timer = loop_watch(loop, -1, 0, on_ready, th);
	th->hits.flushed_ms = prog_now_ms();
	if (up == NULL) {	/* offline: a reader, nothing written */
		th->reader = store_open_or_exit(cache_path, STORE_READ);
		return th;
	}
	th->writer = store_open_or_exit(cache_path, STORE_WRITE);
	store_set_max_size(th->writer, opt->max_size);
	th->reader = store_open_or_exit(cache_path, STORE_READ);
	th->wb = writeback_start(th->writer, &opt->rules);
	th->applied = loop_watch(loop, writeback_wake_fd(th->wb), POLLIN,
	    on_applied, th);
	if ((th->leases = leases_open(cache_path, err, sizeof err)) == NULL)
		prog_warnx("requests for one URL wait for one another in this "
		    "process only: %s", err);
	return th;
}

/*
 * Whether a GET of key with these fields would be answered fresh from
 * the cache now, without asking anyone: for limits that spare hits.
 * It reads in the round's transaction, as a hit does.
 */
int
through_would_hit(struct through *th, const char *key, const char *fields)
{
	struct policy_request directives;
	struct hot_entry *h;
	struct store_entry e;
	enum policy_use use;

	policy_request_parse(fields, &directives);
	read_begin(th);
	if ((h = hot_get(th->hot, key)) != NULL) {
		use = policy_use(&directives, h->e.headers,
		    cache_age(&h->e, time(NULL)), h->e.lifetime);
		hot_release(h);
		if (use == POLICY_FRESH)
			return 1;
	}
	if (cache_lookup(th->reader, key, NULL, fields, &e) <= 0)
		return 0;
	use = policy_use(&directives, e.headers, cache_age(&e, time(NULL)),
	    e.lifetime);
	store_entry_free(&e);
	return use == POLICY_FRESH;
}

/*
 * Whether requests are under way: once every caller is answered, the
 * background ones (a stale-while-revalidate refresh, a holder's write
 * whose caller left), and what goes to the shared tier.
 */
int
through_busy(const struct through *th)
{
	return th->calls != NULL || shared_busy(th->shared);
}

/* Every request upstream waits for its turn under gate from now on. */
void
through_gate(struct through *th, struct gate *gate)
{
	th->gate = gate;
}

/* Shares the cache, and one request per URL, with other hosts (shared.h). */
void
through_share(struct through *th, const struct redis_target *t,
    const struct shared_options *o)
{
	static const struct shared_events events = {
		.done = on_shared_done, .purge = on_shared_purge,
	};

	th->shared = shared_open(th->loop, t, o, &events, th);
}

/* The shared tier, for the limits to use too; NULL if none. */
struct shared *
through_shared(const struct through *th)
{
	return th->shared;
}

struct store *
through_reader(struct through *th)
{
	return th->reader;
}

/*
 * After each round of events: the round's read transaction ends, and
 * hit counts and metrics go to the writer now and then.
 */
void
through_idle(struct through *th, int now)
{
	struct buf counts = BUF_INIT;

	read_end(th);
	if (th->wb == NULL)
		return;		/* offline */
	if (!now && th->hits.len < HIT_FLUSH_MAX &&
	    prog_now_ms() - th->hits.flushed_ms < HIT_FLUSH_MS)
		return;
	if (th->hits.len > 0)
		writeback_hits(th->wb, th->hits.ids, th->hits.len, time(NULL));
	if (metrics_take(&counts) > 0)
		writeback_count(th->wb, buf_cstr(&counts));
	buf_free(&counts);
	th->hits.len = 0;
	th->hits.flushed_ms = prog_now_ms();
}

/*
 * At exit, once no client waits: requests still under way (background
 * ones) are given up, and every write queued is applied.
 */
void
through_free(struct through *th)
{
	struct through_call *c;
	struct flight *f;

	for (f = th->flights; f != NULL; f = f->next) {
		f->holder = NULL;
		f->waiters = NULL;
	}
	th->ready = NULL;
	while ((c = th->calls) != NULL) {
		if (c->t != NULL)
			upstream_cancel(th->upstream, c->t);
		call_free(c);
	}
	through_idle(th, 1);
	/* Writes land before their leases go: a waiter then finds them. */
	if (th->wb != NULL)
		warn_lines(writeback_finish(th->wb));
	while (th->flights != NULL)
		flight_end(th->flights);
	shared_close(th->shared);
	hot_free(th->hot);
	store_close(th->reader);
	store_close(th->writer);
	leases_close(th->leases);
	buf_free(&th->paused);
	free(th->hits.ids);
	free(th->authorization);
	free(th->origin);
	free(th);
}
