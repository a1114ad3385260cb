/*
 * /_relay/metrics, /_relay/stats (?hosts=all: every host's, gathered
 * through the shared tier) and /_relay/queue/TOKEN answered over a
 * reply (admin.h has what they say); 404 to a client not allowed, as
 * to one asking for a name not ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "serve/admin.h"
#include "serve/admin_reply.h"

#define ADMIN_CS	"relay; detail=admin"

struct gathering {
	struct reply		*r;
	struct shared_ask	*ask;	/* until every host has said */
};

static void
send_stats(struct reply *r, const struct buf *body)
{
	reply_send(r, 200, "Content-Type: application/json\r\n"
	    "Cache-Control: no-store\r\n", ADMIN_CS, body->data, body->len);
}

static void
on_gathered(void *ctx, const char *const *rows, const size_t *lens,
    long long n)
{
	struct gathering *g = ctx;
	struct buf body = BUF_INIT;

	g->ask = NULL;
	if (n < 0) {
		reply_fail(g->r, 503, "the shared tier cannot be reached",
		    NULL);
		return;
	}
	admin_hosts_stats(&body, rows, lens, (size_t)n);
	send_stats(g->r, &body);
	buf_free(&body);
}

static void
gathering_writable(void *ctx)
{
	(void)ctx;	/* the answer is written whole, once gathered */
}

static void
gathering_free(void *ctx)
{
	struct gathering *g = ctx;

	shared_cancel(g->ask);
	free(g);
}

static const struct reply_feature gathering = { gathering_writable,
	gathering_free };

/* Every host's counters summed; without a tier, this host's alone. */
static void
answer_hosts(struct admin *ad, struct reply *r, struct shared *sh)
{
	struct buf rows = BUF_INIT, body = BUF_INIT;
	struct gathering *g;
	const char *one;

	if (sh != NULL) {
		g = xcalloc(1, sizeof *g);
		g->r = r;
		reply_give(r, &gathering, g);
		if ((g->ask = shared_gather(sh, on_gathered, g)) == NULL)
			reply_fail(r, 503, "the shared tier cannot be reached",
			    NULL);
		return;
	}
	if (admin_host_rows(ad, &rows) < 0) {
		reply_fail(r, 503, "the cache file cannot be read", NULL);
		return;
	}
	one = buf_cstr(&rows);
	admin_hosts_stats(&body, &one, &rows.len, 1);
	send_stats(r, &body);
	buf_free(&rows);
	buf_free(&body);
}

/* Answers r, a request for target under /_relay/ (admin_target). */
void
admin_reply(struct admin *ad, struct reply *r, const char *target,
    struct shared *sh)
{
	const char *fields = buf_str(&r->req->fields), *type;
	struct buf body = BUF_INIT;
	char head[128];
	int status;

	r->admin = 1;
	r->cache_status = "admin";
	if (!admin_capability(target) &&
	    !admin_allowed(ad, conn_peer(r->c), fields)) {
		reply_fail(r, 404, "not found", NULL);
		return;
	}
	if (!r->head_only && strcmp(r->req->method, "GET") != 0) {
		reply_fail(r, 405, "only GET and HEAD", "Allow: GET, HEAD\r\n");
		return;
	}
	if (strncmp(target, "/_relay/stats?", 14) == 0 &&
	    strstr(target, "hosts=all") != NULL) {
		answer_hosts(ad, r, sh);
		return;
	}
	if ((status = admin_answer(ad, target, &body, &type)) != 200) {
		reply_fail(r, status, status == 404 ? "not found" :
		    "the cache file cannot be read", NULL);
		return;
	}
	snprintf(head, sizeof head, "Content-Type: %s\r\n"
	    "Cache-Control: no-store\r\n", type);
	reply_send(r, 200, head, ADMIN_CS, body.data, body.len);
	buf_free(&body);
}

/* Another host gathers every host's stats: this one's, under its name. */
void
admin_report(struct admin *ad, struct shared *sh, const char *id,
    const char *host)
{
	struct buf rows = BUF_INIT;

	if (admin_host_rows(ad, &rows) == 0)
		shared_report(sh, id, host, &rows);
	buf_free(&rows);
}
