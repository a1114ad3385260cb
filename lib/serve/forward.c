/*
 * A request answered through the cache (GET, HEAD) or past it (other
 * methods): a stored response as stored.c sends it, else the
 * upstream's as it comes, its head held until the first body bytes so
 * that a response that turns out broken before then is a clean 502.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/http.h"
#include "serve/forward.h"
#include "serve/stored.h"

struct forward {
	struct reply		*r;
	struct through		*th;
	struct through_call	*call;		/* until it has answered */
	char			*key;		/* the upstream URL, normalised */
	struct buf		 head;		/* the upstream's fields */
	int			 paused;	/* the upstream waits for room */
	char			 fwd[64];	/* Cache-Status once relayed */
	int			 collapsed;	/* waited for another request */
	int			 had_stored;	/* a stale response was there */
	long long		 retry_after_s;	/* over --upstream-rate */
	const struct reply_feature *then;	/* stored only: none, then */
	void			*then_ctx;
	void			(*start)(void *);
};

/* What the call said of the upstream, for the log. */
static void
note_call(struct forward *a)
{
	const struct through_result *r = through_result(a->call);

	a->r->upstream_ms = r->upstream_ms;
	a->collapsed = r->collapsed;
	a->r->shared = r->shared;
	a->had_stored = r->had_stored;
	a->retry_after_s = r->retry_after_s;
	if (a->r->error == NULL)
		a->r->error = r->error;
}

static void
on_stored(void *ctx, const struct store_entry *e, enum through_how how)
{
	struct forward *a = ctx;
	const char *memory = through_memory_body(a->call);
	struct reply *r = a->r;
	struct store *reader = through_reader(a->th);
	struct stored_how h;
	char *key = a->key;

	note_call(a);
	a->call = NULL;
	a->key = NULL;
	h = (struct stored_how){ r->shared, a->collapsed, a->had_stored };
	reply_release(r);	/* a is gone: the stored answer takes r */
	stored_reply(r, reader, key, e, memory, how, &h);
	free(key);
}

static int
on_head(void *ctx, int status, const char *fields)
{
	struct forward *a = ctx;
	const struct through_result *r = through_result(a->call);
	int cacheable = strcmp(a->r->req->method, "GET") == 0 || a->r->head_only;

	a->r->status = status;
	buf_reset(&a->head);
	buf_adds(&a->head, fields);
	a->r->cache_status = !cacheable ? "bypass" : r->had_stored ? "expired" :
	    "miss";
	/*
	 * No "stored" (RFC 9211 2.6): the head goes out before the body
	 * has come and been written, and either may yet fail.
	 */
	snprintf(a->fwd, sizeof a->fwd, "relay; fwd=%s", !cacheable ?
	    "bypass" : r->had_stored ? "stale" : "miss");
	return 0;
}

/*
 * The relayed head goes out with the first body bytes, or at the end:
 * a response that turns out broken before then is a clean 502.
 */
static void
relay_head(struct forward *a)
{
	const char *fields = buf_cstr(&a->head);

	if (!a->r->head_sent)
		reply_head(a->r, a->r->status, fields, a->fwd, -1,
		    http_content_length(fields));
}

static int
on_body(void *ctx, const void *p, size_t n)
{
	struct forward *a = ctx;

	if (conn_queued(a->r->c) >= SERVER_OUT_MAX) {
		a->paused = 1;	/* on_writable resumes it */
		return UPSTREAM_PAUSE;
	}
	relay_head(a);
	reply_body(a->r, p, n);
	return 0;
}

/* 503 until the upstream's rate (or its Retry-After) allows one. */
static void
fail_limited(struct forward *a)
{
	char fields[48];

	snprintf(fields, sizeof fields, "Retry-After: %lld\r\n",
	    a->retry_after_s > 0 ? a->retry_after_s : 1);
	reply_fail(a->r, 503, "over the upstream's rate", fields);
}

static void
on_fail(void *ctx, enum through_failure why, const char *error)
{
	struct forward *a = ctx;

	note_call(a);
	a->call = NULL;
	if (a->then != NULL) {	/* stored only, and none: the next's */
		const struct reply_feature *then = a->then;
		void *next = a->then_ctx;
		void (*start)(void *) = a->start;
		struct reply *r = a->r;

		a->then = NULL;
		reply_release(r);
		reply_give(r, then, next);
		start(next);
		return;
	}
	a->r->error = error;
	if (a->r->cache_status == NULL)
		a->r->cache_status = "miss";
	if (why == THROUGH_NOT_CACHED)
		reply_fail(a->r, 504, "not in the cache", NULL);	/* only-if-cached */
	else if (why == THROUGH_TIMED_OUT)
		reply_fail(a->r, 504, "upstream timed out", NULL);
	else if (why == THROUGH_UPSTREAM_LIMITED)
		fail_limited(a);
	else
		reply_fail(a->r, 502, "upstream failed", NULL);
}

static void
on_done(void *ctx, const char *error)
{
	struct forward *a = ctx;

	if (error != NULL && !a->r->head_sent) {	/* nothing went out yet */
		on_fail(a, THROUGH_UPSTREAM_FAILED, error);
		return;
	}
	note_call(a);
	a->call = NULL;
	if (error != NULL) {		/* cut short: never stored */
		reply_cut(a->r, error);
		return;
	}
	relay_head(a);
	reply_end(a->r);
	reply_done(a->r, 0);
}

/*
 * An interim response of the upstream's, passed on before the final
 * head (RFC 9110 section 15.2) to a client that can take one: over
 * HTTP/1.1, never HTTP/1.0, never to an item, which has no interim
 * answers; and only while the client reads what it is sent.
 */
static void
on_interim(void *ctx, int status, const char *fields)
{
	struct forward *a = ctx;
	struct buf out = BUF_INIT;

	if (a->r->head_sent || a->r->req->minor < 1 || conn_inner(a->r->c) ||
	    conn_queued(a->r->c) >= SERVER_OUT_MAX)
		return;
	http_interim_head(&out, status, fields);
	conn_write(a->r->c, out.data, out.len);
	buf_free(&out);
}

static const struct through_sink sink = {
	.stored = on_stored, .head = on_head, .body = on_body,
	.done = on_done, .fail = on_fail, .interim = on_interim,
};

/*
 * The request's content to send on, or NULL if it has none: a request
 * without framing fields gets none upstream either, never an empty
 * one with a Content-Length of 0 (RFC 9110 section 8.6).
 */
static const char *
content_of(const struct forward *a)
{
	const struct buf *body = conn_body(a->r->c);

	if (!a->r->req->has_content)
		return NULL;
	return body->data != NULL ? body->data : "";
}

/* Room again: the upstream's body comes on. */
static void
forward_writable(void *ctx)
{
	struct forward *a = ctx;

	if (a->paused && a->call != NULL) {
		a->paused = 0;
		through_resume(a->call);
	}
}

static void
forward_free(void *ctx)
{
	struct forward *a = ctx;

	if (a->call != NULL)
		through_cancel(a->call);
	if (a->then != NULL)	/* never started */
		a->then->free(a->then_ctx);
	buf_free(&a->head);
	free(a->key);
	free(a);
}

static const struct reply_feature feature = { forward_writable, forward_free };

static struct forward *
forward_new(struct reply *r, struct through *th, const char *key)
{
	struct forward *a = xcalloc(1, sizeof *a);

	a->r = r;
	a->th = th;
	a->key = xstrdup(key);
	reply_give(r, &feature, a);
	return a;
}

/* Answers r through th, key the upstream URL it asks for. */
void
forward_reply(struct reply *r, struct through *th, const char *key)
{
	const char *fields = buf_str(&r->req->fields);
	struct forward *a = forward_new(r, th, key);
	struct through_request req = {
		.key = key, .method = r->req->method, .fields = fields,
		.body = content_of(a), .body_len = conn_body(r->c)->len,
	};

	policy_request_parse(fields, &req.directives);
	through_start(th, &req, &sink, a, &a->call);
}

/*
 * Answers r with the response stored for key if the rules let it
 * answer; else the feature then (its state ctx) takes r and start(ctx)
 * is called. Either way ctx is then's: freed by then->free when the
 * stored response answered or the client left first.
 */
void
forward_stored_or(struct reply *r, struct through *th, const char *key,
    const struct reply_feature *then, void *ctx, void (*start)(void *))
{
	struct forward *a = forward_new(r, th, key);
	struct through_request req = {
		.key = key, .method = "GET", .fields = "", .stored_only = 1,
	};

	a->then = then;
	a->then_ctx = ctx;
	a->start = start;
	policy_request_parse(buf_str(&r->req->fields), &req.directives);
	through_start(th, &req, &sink, a, &a->call);
}
