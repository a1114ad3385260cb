/*
 * A request counted against its rate limit first (see limit_reply.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prog.h"
#include "serve/limit_reply.h"

struct limited {
	struct limits		*l;
	struct reply		*r;
	struct throttle_policy	 policy;	/* the one it is counted under */
	struct limiter_ask	*asking;	/* until decided */
	struct route		*route;		/* kept by a reload until then */
	struct route_params	 params;
	limit_then_fn		*then;
	void			*ctx;
};

/* Over the limit: 429, the RateLimit fields and a problem (RFC 9457). */
static void
refuse(struct reply *r, const struct throttle_policy *p,
    const struct gcra_decision *d)
{
	struct buf fields = BUF_INIT, body = BUF_INIT;

	throttle_refusal(&fields, &body, p, d);
	free(r->limit_fields);
	r->limit_fields = NULL;
	r->cache_status = "throttled";
	r->error = "over the rate limit";
	reply_send(r, 429, buf_cstr(&fields), "relay; detail=throttled",
	    body.data, body.len);
	buf_free(&fields);
	buf_free(&body);
}

static void
limited_writable(void *ctx)
{
	(void)ctx;	/* nothing is written before the decision */
}

static void
limited_free(void *ctx)
{
	struct limited *q = ctx;

	if (q->asking != NULL)
		limiter_cancel(q->asking);
	if (q->route != NULL)
		q->route->holders--;
	route_params_free(&q->params);
	free(q);
}

static const struct reply_feature feature = { limited_writable,
	limited_free };

static void
on_decided(void *ctx, const struct gcra_decision *d, int failed)
{
	struct limited *q = ctx;
	struct reply *r = q->r;
	struct route_params params = q->params;
	struct route *route = q->route;
	limit_then_fn *then = q->then;
	void *then_ctx = q->ctx;
	struct buf fields = BUF_INIT;
	static int warned;

	q->asking = NULL;
	memset(&q->params, 0, sizeof q->params);
	if (failed && q->l->fail_closed) {
		route_params_free(&params);
		r->cache_status = "-";
		reply_fail(r, 503, "the rate limit could not be checked",
		    "Retry-After: 1\r\n");
		return;
	}
	if (failed && !warned++)
		prog_warnx("the rate limits could not be checked in time: "
		    "requests pass (--rate-limit-fail open)");
	if (!failed) {
		throttle_fields(&fields, &q->policy, d);
		r->limit_fields = buf_take(&fields);
		if (!d->allowed && !q->l->dry_run) {
			route_params_free(&params);
			refuse(r, &q->policy, d);
			return;
		}
		if (!d->allowed)
			r->error = "over the rate limit (dry run: answered)";
	}
	reply_release(r);	/* q is gone; the route is the answer's now */
	then(then_ctx, route, &params);
	route_params_free(&params);
}

/*
 * Counts r, a request for target, against its bucket; once allowed,
 * then(ctx, route, params) answers it. params are taken.
 */
void
limit_reply(struct limits *l, struct reply *r, struct route *route,
    struct route_params *params, const char *target, limit_then_fn *then,
    void *ctx)
{
	struct limited *q = xcalloc(1, sizeof *q);
	struct buf key = BUF_INIT;
	char *path = NULL;

	q->l = l;
	q->r = r;
	q->policy = l->policy;
	q->then = then;
	q->ctx = ctx;
	if (route != NULL && route->limited) {
		q->policy.name = route->pattern;
		q->policy.limit = route->limit;
	}
	if (q->policy.key == THROTTLE_ROUTE && route == NULL)
		path = xstrndup(target, strcspn(target, "?"));
	throttle_key(&key, &q->policy, conn_peer(r->c),
	    buf_str(&r->req->fields), route != NULL ? route->pattern : path);
	q->route = route;
	if (route != NULL)
		route->holders++;	/* a reload keeps the route until then */
	q->params = *params;
	memset(params, 0, sizeof *params);
	reply_give(r, &feature, q);
	limiter_ask(l->limiter(), buf_cstr(&key), &q->policy.limit, 0,
	    on_decided, q, &q->asking);	/* r may be gone now */
	buf_free(&key);
	free(path);
}
