/*
 * A merge route answered over a reply: the merged answer it keeps, if
 * fresh; else its calls at once through the cache, then its program
 * (merge.h), the result kept when the route says so and it is whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prog.h"
#include "serve/forward.h"
#include "serve/merge_reply.h"

#define MERGE_CS	"relay; detail=merge"

struct merged {
	struct reply		*r;
	struct merge_env	*env;
	struct merge		*merge;
	struct route		*route;		/* kept by a reload until done */
	struct route_params	 params;
	char			*key;
};

/* Sends the result, keeping a complete one if the route asks to. */
static void
send_merged(struct merged *m)
{
	const struct merge_result *res = merge_result(m->merge);
	struct cache_rules keep = *m->env->rules;
	struct reply *r = m->r;
	char fields[160];

	keep.force_ttl = m->route->cache;
	r->error = res->error;
	r->upstream_ms = prog_now_ms() - r->start_ms;
	snprintf(fields, sizeof fields, "Content-Type: application/json\r\n"
	    "Relay-Complete: %s\r\n", res->complete ? "yes" : "no");
	if (m->route->cache > 0 && res->status == 200 && res->complete)
		through_store(m->env->through, m->key, fields, &res->body,
		    &keep);
	reply_head(r, res->status, fields, MERGE_CS, -1,
	    (long long)res->body.len);
	reply_body(r, res->body.data, res->body.len);
	reply_done(r, 0);
}

static void
on_merged(struct merge *unused, void *ctx)
{
	(void)unused;
	send_merged(ctx);
}

static void
start_merge(void *ctx)
{
	struct merged *m = ctx;

	m->r->cache_status = "merge";
	m->merge = merge_start(m->env, m->route, &m->params, on_merged, m);
	if (merge_ready(m->merge))
		send_merged(m);
}

static void
merged_writable(void *ctx)
{
	(void)ctx;	/* the result is written whole, once ready */
}

static void
merged_free(void *ctx)
{
	struct merged *m = ctx;

	merge_free(m->merge);
	route_params_free(&m->params);
	m->route->holders--;	/* a reload may free it now */
	free(m->key);
	free(m);
}

static const struct reply_feature feature = { merged_writable, merged_free };

/*
 * Answers r, a request for key that route matched with the parameters
 * ps (taken: ps is left empty).
 */
void
merge_reply(struct reply *r, struct merge_env *env, const char *key,
    struct route *route, struct route_params *ps)
{
	struct merged *m = xcalloc(1, sizeof *m);

	m->r = r;
	m->env = env;
	m->route = route;
	m->key = xstrdup(key);
	m->params = *ps;
	memset(ps, 0, sizeof *ps);
	route->holders++;	/* kept by a reload until the answer ends */
	if (route->cache <= 0) {
		reply_give(r, &feature, m);
		start_merge(m);
		return;
	}
	forward_stored_or(r, env->through, key, &feature, m, start_merge);
}
