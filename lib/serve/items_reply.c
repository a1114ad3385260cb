/*
 * POST /_relay/batch and GET /_relay/ws answered over a reply: their
 * items are this client's own requests, each counted, cached and
 * limited as one (batch.h, channel.h); the batch or channel itself is
 * not counted. A batch is one streamed answer; a channel's log line
 * comes when it closes.
 */
#include <string.h>

#include "base/buf.h"
#include "http/headers.h"
#include "http/ws.h"
#include "serve/batch.h"
#include "serve/channel.h"
#include "serve/items_reply.h"

static void
item_write(void *ctx, const void *p, size_t n)
{
	reply_body(ctx, p, n);
}

static void
batch_end(void *ctx)
{
	reply_end(ctx);
	reply_done(ctx, 0);
}

static size_t
client_queued(void *ctx)
{
	return reply_queued(ctx);
}

static const struct batch_out batch_out = {
	item_write, batch_end, client_queued,
};

static void
batch_room(void *ctx)
{
	batch_writable(ctx);
}

static void
batch_gone(void *ctx)
{
	batch_free(ctx);
}

static const struct reply_feature batch_feature = { batch_room, batch_gone };

/* Whether the client asks for a batch's parts as multipart/mixed. */
static int
wants_multipart(const char *fields)
{
	struct header accept;

	return headers_get(fields, "accept", &accept) &&
	    memmem(accept.value, accept.value_len, "multipart/mixed", 15) !=
	    NULL;
}

/* POST /_relay/batch, its items sent as requests to srv. */
void
batch_reply(struct reply *r, struct server *srv)
{
	const struct buf *body = conn_body(r->c);
	const char *fields = buf_str(&r->req->fields);
	struct batch *b;
	char why[256];
	int status, multipart = wants_multipart(fields);

	r->admin = 1;
	r->cache_status = "batch";
	if (strcmp(r->req->method, "POST") != 0) {
		reply_fail(r, 405, "a batch is POSTed", "Allow: POST\r\n");
		return;
	}
	if ((b = batch_parse(body->data != NULL ? body->data : "",
	    body->len, &status, why, sizeof why)) == NULL) {
		reply_fail(r, status, why, NULL);
		return;
	}
	reply_give(r, &batch_feature, b);
	reply_head(r, 200, multipart ? "Content-Type: multipart/mixed; "
	    "boundary=" BATCH_BOUNDARY "\r\nCache-Control: no-store\r\n" :
	    "Content-Type: application/x-ndjson\r\n"
	    "Cache-Control: no-store\r\n", "relay; detail=batch", -1, -1);
	batch_start(b, srv, conn_peer(r->c), fields, multipart, &batch_out,
	    r);	/* r may be gone now */
}

/* Frames go out as they are, outside any HTTP framing. */
static void
frame_write(void *ctx, const void *p, size_t n)
{
	struct reply *r = ctx;

	conn_write(r->c, p, n);
	r->bytes += (long long)n;
}

/* A channel ends with its connection. */
static void
channel_end(void *ctx)
{
	reply_done(ctx, 1);
}

static const struct channel_out channel_out = {
	frame_write, channel_end, client_queued,
};

static void
channel_room(void *ctx)
{
	channel_writable(ctx);
}

static void
channel_gone(void *ctx)
{
	channel_free(ctx);
}

static const struct reply_feature channel_feature = { channel_room,
	channel_gone };

/*
 * GET /_relay/ws, its messages sent as requests to srv; a message holds
 * at most max_message bytes, and the channel closes after idle_ms.
 */
void
channel_reply(struct reply *r, struct server *srv, size_t max_message,
    long long idle_ms)
{
	const char *fields = buf_str(&r->req->fields), *why;
	struct buf head = BUF_INIT;
	struct channel *ch;
	int status;

	r->admin = 1;
	r->cache_status = "channel";
	if (ws_handshake(r->req->method, r->req->minor, fields, &head, &status,
	    &why) < 0) {
		buf_free(&head);
		reply_fail(r, status, why, status == 426 ? "Upgrade: websocket"
		    "\r\nSec-WebSocket-Version: 13\r\n" : status == 405 ?
		    "Allow: GET\r\n" : NULL);
		return;
	}
	conn_write(r->c, head.data, head.len);
	buf_free(&head);
	r->status = 101;
	r->head_sent = 1;
	ch = channel_open(srv, r->c, fields, max_message, idle_ms,
	    &channel_out, r);
	reply_give(r, &channel_feature, ch);
	channel_start(ch);	/* r may be gone now */
}
