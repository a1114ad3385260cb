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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/prog.h"
#include "http/url.h"
#include "net/metrics.h"
#include "through/call.h"

#define HIT_FLUSH_MS	1000	/* hit counts and metrics are written this often */
#define HIT_FLUSH_MAX	16384	/* …or when this many are waiting */

static void call_lookup(struct through_call *);

/*
 * A round's lookups share one read transaction: one lock and snapshot
 * a round rather than one a hit. It ends with the round, and before
 * woken requests look again, so that they see the writes they waited
 * for. Bodies still being sent keep their own snapshot past its end.
 */
void
round_read_begin(struct through *th)
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
void
call_forget_cached(struct through_call *c)
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
round_read_end(struct through *th)
{
	if (th->reading)
		store_read_end(th->reader);
	th->reading = 0;
}

/* The writer thread's failures (taken), as warnings. */
static void
through_warn_lines(char *text)
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
	call_forget_cached(c);
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
void
call_settle(struct through_call *c)
{
	c->sink = NULL;
	c->settled = 1;
	if (c->t == NULL)
		call_free(c);
}

static void
on_ready(struct watch *w, short revents, void *ctx)
{
	struct through *th = ctx;
	struct through_call *c;

	(void)revents;
	watch_deadline(w, 0);
	round_read_end(th);
	while ((c = th->ready) != NULL) {
		if ((th->ready = c->next) == NULL)
			th->ready_tail = &th->ready;
		c->next = NULL;
		if (c->go_upstream)
			call_fetch(c);
		else
			call_lookup(c);
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

void
call_answer_stored(struct through_call *c, enum through_how how)
{
	count_hit(c->th, c->cached.id);
	if (c->sink != NULL)
		c->sink->stored(c->ctx, &c->cached, how);
	call_settle(c);
}

void
call_answer_failed(struct through_call *c, enum through_failure why,
    const char *error)
{
	c->result.error = error;
	if (c->sink != NULL)
		c->sink->fail(c->ctx, why, error);
	call_settle(c);
}

/* How e may answer c (RFC 9111 section 4). */
enum policy_use
call_usable(const struct through_call *c, const struct store_entry *e)
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

	call_forget_cached(c);
	round_read_begin(th);
	/* Memory keeps the URL's one form without a scope (hot_fits). */
	if (c->scope == NULL && (c->hot = hot_get(th->hot, c->key)) != NULL) {
		/* Memory answers fresh hits only; the rest is the file's. */
		if (call_usable(c, &c->hot->e) == POLICY_FRESH) {
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
	if ((use = call_usable(c, &c->cached)) == POLICY_FRESH)
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
	call_answer_stored(c, THROUGH_HIT);
	return 1;
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
		flight_wait(f, c, 1);
		return;
	}
	if (f != NULL || store_uncacheable(th->reader, c->key,
	    time(NULL)) == 1) {
		call_fetch(c);	/* no use waiting: it will not be stored */
		return;
	}
	if (th->leases != NULL && !lease_held(l = lease_take(th->leases,
	    c->key))) {
		flight_wait_remote(c, l, 1);
		return;
	}
	/*
	 * The lease's last holder may have stored the URL after this
	 * round's snapshot was taken: look again in a new one.
	 */
	if (l != NULL) {
		round_read_end(th);
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
		call_fetch(c);
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
			flight_wait_remote(c, l, 0);
			return;
		}
		lease_end(l);
		round_read_end(th);
		if (answer_fresh(c))
			return;
	}
	call_answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
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
	call_fetch(c);
}

/* Offline: whatever is stored answers, however old. */
static void
answer_offline(struct through_call *c, enum policy_use use)
{
	if (c->have_cached)
		call_answer_stored(c, use == POLICY_FRESH ? THROUGH_HIT :
		    THROUGH_STALE);
	else if (c->error != NULL)
		call_answer_failed(c, THROUGH_DAMAGED, c->error);
	else
		call_answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
}

/* Answers from the file when the rules allow (RFC 9111 section 4). */
static void
call_lookup(struct through_call *c)
{
	struct through *th = c->th;
	struct flight *f = flight_find(th, c->key);
	enum policy_use use;

	if (f != NULL && f->state == FLIGHT_STORING && !f->uncacheable) {
		flight_wait(f, c, 0);	/* read-your-writes: not in yet */
		return;
	}
	use = look_up(c);
	if (th->upstream == NULL)
		answer_offline(c, use);
	else if (use == POLICY_STALE_REVALIDATE) {
		if (!c->directives.no_store)	/* it would store (5.2.1.5) */
			revalidate_in_background(c);
		call_answer_stored(c, THROUGH_STALE);
	} else if (use == POLICY_FRESH)
		call_answer_stored(c, THROUGH_HIT);
	else if (c->stored_only)
		stored_miss(c);
	/* RFC 9111 5.2.1.7: a stored response it may have, or 504 */
	else if (c->directives.only_if_cached)
		call_answer_failed(c, THROUGH_NOT_CACHED, c->have_cached ?
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
		call_lookup(c);
		return;
	}
	c->body = req->body;	/* borrowed: see through_request */
	c->body_len = req->body_len;
	call_fetch(c);
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
	struct flight *f = flight_held(c);

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
	flight_abandon(c);
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
	round_read_end(th);	/* a lookup later this round must see those writes */
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
	through_warn_lines(writeback_warnings(th->wb));
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
	flight_storing(th, NULL, key, writeback_commit_with(th->wb, b, &r, rules));
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
	round_read_begin(th);
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
		.done = share_on_done, .purge = share_on_purge,
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

	round_read_end(th);
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
		through_warn_lines(writeback_finish(th->wb));
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
