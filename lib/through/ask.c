/*
 * The upstream's side of the cache-through (call.h): a request sent
 * once the rate allows, its response relayed, stored, retried, or
 * given up for the stored one.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/url.h"
#include "net/metrics.h"
#include "through/call.h"

#define RETRY_AFTER_MAX_S	60	/* a retry waits no longer */

/* Whether the stored response may answer now that the upstream failed. */
static int
call_stale_allowed(const struct through_call *c)
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
call_stale_limited(const struct through_call *c)
{
	return c->have_cached && policy_may_go_stale(c->cached.headers);
}

static struct cache_response
call_response(const struct through_call *c)
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
	struct cache_response r = call_response(c);
	struct through *th = c->th;
	char *key;

	/* RFC 9111 5.2.1.5: no part of a no-store request's response */
	if (c->directives.no_store) {
		flight_abandon(c);
		call_answer_stored(c, THROUGH_REVALIDATED);
		return;
	}
	/*
	 * This client has what the 304 said; the next one may not: the
	 * stored response goes, once this answer has its body open (its
	 * snapshot keeps it).
	 */
	if (cache_revalidate(&c->cached, &r, &c->rules) != NULL) {
		key = xstrdup(c->key);
		call_answer_stored(c, THROUGH_REVALIDATED);
		flight_storing(th, NULL, key, writeback_remove(th->wb, key));
		free(key);
		return;
	}
	share_refreshed(c);	/* while c holds the flight */
	flight_storing(th, c, c->key, writeback_refresh(th->wb, &c->cached));
	call_answer_stored(c, THROUGH_REVALIDATED);
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
	struct flight *f = flight_held(c);
	struct cache_response r = call_response(c);
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
	flight_release_waiters(f, 1);
	if (!storable && !kept_out)
		flight_storing(th, c, c->key, writeback_mark_uncacheable(th->wb,
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

	flight_storing(th, NULL, key, writeback_remove(th->wb, key));
	for (i = 0; i < sizeof named / sizeof named[0]; i++) {
		if (!headers_get(fields, named[i], &h))
			continue;
		value = xstrndup(h.value, h.value_len);
		if ((url = url_resolve(key, value)) != NULL &&
		    strcmp(url, key) != 0)
			flight_storing(th, NULL, url, writeback_remove(th->wb, url));
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
	call_fetch(ctx);
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
	long long after_ms;

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
		call_forget_cached(c);
		return retry(c, 0);
	}
	if (status == 304 && c->have_cached) {
		revalidated(c);
		return -1;
	}
	if (th->gate != NULL && gate_answered(th->gate, c->key, status,
	    fields) && c->sink != NULL && call_stale_limited(c)) {
		flight_abandon(c);
		call_answer_stored(c, THROUGH_STALE_LIMITED);
		return -1;
	}
	if (retryable(status) && c->retries > 0 && (after_ms =
	    http_retry_after_ms(fields, RETRY_AFTER_MAX_S + 1)) <=
	    RETRY_AFTER_MAX_S * 1000) {
		c->retries--;
		return retry(c, after_ms);	/* a longer wait: the answer */
	}
	if (status >= 500 && (c->sink == NULL || call_stale_allowed(c))) {
		flight_abandon(c);	/* the stored response stays */
		if (c->sink != NULL)
			call_answer_stored(c, THROUGH_STALE_ERROR);
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
	c->result.may_stand_in = c->sink->reset != NULL && call_stale_allowed(c);
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
 * if retries are left, the failure may pass (lasts: it cannot) and
 * the sink gave back what it had; else the
 * stored response stands in, if the rules and the sink allow.
 */
static void
failed(struct through_call *c, const char *error, int lasts)
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
	if (!ours && !lasts && c->retries > 0 && taken_back(c)) {
		c->retries--;
		(void)retry(c, -1);
		retry_now(c);
		return;
	}
	flight_abandon(c);
	if (call_stale_allowed(c) && taken_back(c))
		call_answer_stored(c, THROUGH_STALE_ERROR);
	else if (c->head_passed) {
		if (c->sink != NULL)
			c->sink->done(c->ctx, error);
		call_settle(c);
	} else
		call_answer_failed(c, failure_of(error), error);
}

static void
on_done(void *ctx, const char *error)
{
	struct through_call *c = ctx;
	struct cache_response r;
	int lasts = error != NULL && c->t != NULL &&
	    upstream_failure_lasts(c->t);

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
		failed(c, error, lasts);
		return;
	}
	if (c->wbody != NULL) {
		r = call_response(c);
		share_put(c, &r);
		flight_storing(c->th, c, c->key, writeback_commit_with(c->th->wb,
		    c->wbody, &r, &c->rules));
		c->wbody = NULL;
	} else {
		flight_abandon(c);
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
	flight_abandon(c);
	if (c->sink != NULL && call_stale_limited(c))
		call_answer_stored(c, THROUGH_STALE_LIMITED);
	else
		call_answer_failed(c, THROUGH_UPSTREAM_LIMITED, c->result.error);
}

/* Asks the upstream once its rate allows (gate.h). */
void
call_fetch(struct through_call *c)
{
	if (c->stored_only) {	/* a waiter woken to ask on its own */
		call_answer_failed(c, THROUGH_NOT_CACHED, "not in the cache");
		return;
	}
	if (c->th->gate != NULL)
		gate_ask(c->th->gate, c->key, on_turn, c, &c->turn);
	else
		send_upstream(c);
}
