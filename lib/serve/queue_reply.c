/*
 * A request --queue keeps for later delivery, answered over a reply:
 * into the queue file first (deliver.h), then 202 and where to ask
 * what became of it, its token's path; 503 if it could not be kept.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/http.h"
#include "serve/queue_reply.h"

struct queued {
	struct reply		*r;
	struct deliver_add	*adding;	/* until it is in the file */
};

/* Whether a request for target is one of globs keeps (unsafe methods). */
int
queue_wants(const struct reply *r, const char *target,
    char *const *globs, size_t n)
{
	static const char *const unsafe[] = { "POST", "PUT", "PATCH",
		"DELETE" };
	char *path;
	size_t i;
	int match = 0;

	for (i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
		if (strcmp(r->req->method, unsafe[i]) == 0)
			break;
	if (i == sizeof unsafe / sizeof unsafe[0])
		return 0;
	path = xstrndup(target, strcspn(target, "?"));
	for (i = 0; i < n && !match; i++)
		match = fnmatch(globs[i], path, 0) == 0;
	free(path);
	return match;
}

/* Kept: 202, and where to ask what became of it: its token's path. */
static void
on_queued(void *ctx, long long id, const char *token, const char *error)
{
	struct queued *q = ctx;
	struct reply *r = q->r;
	struct buf body = BUF_INIT;
	char fields[160];

	q->adding = NULL;
	if (id == 0) {
		r->cache_status = "-";
		reply_fail(r, 503, error, "Retry-After: 1\r\n");
		return;
	}
	snprintf(fields, sizeof fields, "Location: /_relay/queue/%s\r\n"
	    "Content-Type: application/json\r\nCache-Control: no-store\r\n",
	    token);
	buf_printf(&body, "{\"id\":%lld,\"state\":\"queued\","
	    "\"location\":\"/_relay/queue/%s\"}\n", id, token);
	reply_send(r, 202, fields, "relay; detail=queued", body.data,
	    body.len);
	buf_free(&body);
}

static void
queued_writable(void *ctx)
{
	(void)ctx;	/* answered whole, once kept */
}

static void
queued_free(void *ctx)
{
	struct queued *q = ctx;

	if (q->adding != NULL)
		deliver_forget(q->adding);
	free(q);
}

static const struct reply_feature feature = { queued_writable, queued_free };

/*
 * Into the queue file for key, answered once it is there. The body
 * goes to the queue as it is, without a copy: a request without
 * content keeps none, so that it is delivered without.
 */
void
queue_reply(struct reply *r, struct deliver *d, const char *key,
    const char *target)
{
	struct buf forward = BUF_INIT;
	struct queued *q = xcalloc(1, sizeof *q);
	struct store_queued item = { 0 };

	q->r = r;
	reply_give(r, &feature, q);
	if (r->req->has_content)
		item.body = conn_take_body(r->c, &item.body_len);
	http_forward_fields(&forward, buf_str(&r->req->fields));
	item.fields = buf_take(&forward);
	item.method = xstrdup(r->req->method);
	item.url = xstrdup(key);
	item.path = xstrndup(target, strcspn(target, "?"));
	r->cache_status = "queued";
	q->adding = deliver_add(d, &item, on_queued, q);	/* copied */
	store_queued_free(&item);
}
