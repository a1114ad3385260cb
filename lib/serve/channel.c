/*
 * Channels: the frames a client sends read into messages, each text
 * message made as an item, each answer sent back as a text frame;
 * pings answered, the close handshake kept, protocol errors closed with
 * their code, and a channel silent for the idle timeout closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prog.h"
#include "http/ws.h"
#include "serve/channel.h"
#include "serve/item.h"

struct channel_item {
	struct channel_item	*next;
	struct channel		*ch;
	struct item		 item;
	struct item_run		*run;
};

struct channel {
	struct server		*srv;
	struct conn		*c;
	char			*peer, *fields;
	struct ws_reader	 reader;
	struct channel_item	*items;		/* being answered */
	size_t			 running;
	struct watch		*idle;
	long long		 idle_ms;
	const struct channel_out *out;
	void			*ctx;
	struct item_waiter	 waiter;	/* for the process's room */
	struct item_lines	 lines;		/* answered, for the client */
};

static void
send_frame(struct channel *ch, enum ws_op op, const void *p, size_t n)
{
	struct buf frame = BUF_INIT;

	ws_frame(&frame, op, p, n);
	ch->out->write(ch->ctx, frame.data, frame.len);
	buf_free(&frame);
}

/* An item's line, without its newline: one text message. */
static void
send_line(struct channel *ch, const struct buf *line)
{
	send_frame(ch, WS_TEXT, line->data, line->len - 1);
	watch_deadline(ch->idle, prog_now_ms() + ch->idle_ms);
}

/* Ends the connection once written; channel_free drops the items. */
static void
end(struct channel *ch)
{
	ch->out->end(ch->ctx);	/* ch is gone now */
}

static void
close_with(struct channel *ch, int code, const char *why)
{
	struct buf frame = BUF_INIT;

	ws_close_frame(&frame, code, why);
	ch->out->write(ch->ctx, frame.data, frame.len);
	buf_free(&frame);
	end(ch);
}

/* The lines' sink: the client, while it takes what it is sent. */
static int
client_room(void *ctx)
{
	struct channel *ch = ctx;

	return ch->out->queued(ch->ctx) < SERVER_OUT_MAX;
}

static void
client_write(void *ctx, const struct buf *line)
{
	send_line(ctx, line);
}

/* Sends the lines the client has room for, in the order they came. */
static void
flush_lines(struct channel *ch)
{
	const struct item_sink client = { client_room, client_write, ch };

	item_lines_flush(&ch->lines, &client);
}

static void
on_item(void *ctx, const struct buf *line)
{
	struct channel_item *ci = ctx, **p;
	struct channel *ch = ci->ch;

	for (p = &ch->items; *p != ci; p = &(*p)->next)
		;
	*p = ci->next;
	ch->running--;
	item_lines_add(&ch->lines, line);	/* out when the client takes it */
	flush_lines(ch);
	item_free(&ci->item);
	free(ci);
	conn_raw_feed(ch->c);	/* room for a message waiting */
}

static void
start_item(struct channel *ch, const char *text, size_t len)
{
	struct channel_item *ci = xcalloc(1, sizeof *ci);
	struct buf line = BUF_INIT;

	if (item_parse(&ci->item, text, len) < 0) {
		item_error_line(&line, ci->item.id, 400, ci->item.why);
		send_line(ch, &line);
		buf_free(&line);
		item_free(&ci->item);
		free(ci);
		return;
	}
	ci->ch = ch;
	ci->next = ch->items;
	ch->items = ci;
	ch->running++;
	ci->run = item_start(ch->srv, ch->peer, ch->fields, &ci->item,
	    on_item, ci);
}

/* Returns 0 once the channel has ended (and ch is gone). */
static int
on_message(struct channel *ch, const struct ws_message *m)
{
	char why[64];

	watch_deadline(ch->idle, prog_now_ms() + ch->idle_ms);
	switch (m->op) {
	case WS_TEXT:
		start_item(ch, m->data, m->len);
		return 1;
	case WS_BINARY:
		close_with(ch, WS_UNSUPPORTED, "items are text messages");
		return 0;
	case WS_PING:
		send_frame(ch, WS_PONG, m->data, m->len);
		return 1;
	case WS_CLOSE:	/* the answer echoes the code (section 5.5.1) */
		snprintf(why, sizeof why, "%s", m->code == WS_NO_STATUS ?
		    "" : "closed");
		close_with(ch, m->code == WS_NO_STATUS ? WS_NORMAL : m->code,
		    why);
		return 0;
	default:	/* a pong: nothing to do */
		return 1;
	}
}

static void
feed_again(void *ch)
{
	conn_raw_feed(((struct channel *)ch)->c);
}

/*
 * What the client sent: taken a message at a time while there is room
 * for another item and the client takes what it is sent.
 */
static size_t
on_input(void *ctx, const char *p, size_t n)
{
	struct channel *ch = ctx;
	struct ws_message m;
	ssize_t used;

	if (ch->running >= CHANNEL_AT_ONCE || !item_lines_empty(&ch->lines) ||
	    ch->out->queued(ch->ctx) >= SERVER_OUT_MAX)
		return 0;	/* on_item or channel_writable feeds it again */
	if (!item_room()) {	/* other clients' items hold the process's */
		item_wait(&ch->waiter, feed_again, ch);
		return 0;
	}
	if ((used = ws_read(&ch->reader, p, n, &m)) < 0) {
		close_with(ch, ch->reader.code, ch->reader.why);
		return n;
	}
	if (m.op != 0 && !on_message(ch, &m))
		return n;	/* the rest is never read */
	return (size_t)used;
}

/* The client closed without a close frame (1006): nothing is sent. */
static void
on_eof(void *ctx)
{
	end(ctx);
}

static void
on_stop(void *ctx)
{
	close_with(ctx, WS_GOING_AWAY, "relay-serve is stopping");
}

static const struct raw_ops channel_ops = { on_input, on_eof, on_stop };

static void
on_idle(struct watch *w, short events, void *ctx)
{
	struct channel *ch = ctx;
	char why[64];

	(void)events;
	if (ch->running > 0 || !item_lines_empty(&ch->lines)) {
		/* answers still to come: not silent */
		watch_deadline(w, prog_now_ms() + ch->idle_ms);
		return;
	}
	snprintf(why, sizeof why, "idle for %lld ms", ch->idle_ms);
	close_with(ch, WS_GOING_AWAY, why);
}

/*
 * A channel on c, whose 101 answer has been written: its items are
 * requests from peer with the upgrade request's fields; messages are
 * at most max bytes; it closes after idle_ms without a message.
 * channel_start starts reading.
 */
struct channel *
channel_open(struct server *srv, struct conn *c, const char *fields,
    size_t max, long long idle_ms, const struct channel_out *out, void *ctx)
{
	struct channel *ch = xcalloc(1, sizeof *ch);

	item_lines_init(&ch->lines);
	ch->srv = srv;
	ch->c = c;
	ch->peer = xstrdup(conn_peer(c));
	ch->fields = xstrdup(fields);
	ws_reader_init(&ch->reader, max);
	ch->idle_ms = idle_ms;
	ch->idle = loop_watch(server_loop(srv), -1, 0, on_idle, ch);
	ch->out = out;
	ch->ctx = ctx;
	return ch;
}

/* Reads what the client sent already; the channel may end at once. */
void
channel_start(struct channel *ch)
{
	watch_deadline(ch->idle, prog_now_ms() + ch->idle_ms);
	conn_upgrade(ch->c, &channel_ops, ch);
}

/* The client has room again: messages waiting may be read. */
void
channel_writable(struct channel *ch)
{
	flush_lines(ch);
	conn_raw_feed(ch->c);
}

void
channel_free(struct channel *ch)
{
	struct channel_item *ci;

	if (ch == NULL)
		return;
	item_unwait(&ch->waiter);
	item_lines_free(&ch->lines);
	while ((ci = ch->items) != NULL) {
		ch->items = ci->next;
		item_cancel(ci->run);
		item_free(&ci->item);
		free(ci);
	}
	loop_unwatch(ch->idle);
	ws_reader_free(&ch->reader);
	free(ch->peer);
	free(ch->fields);
	free(ch);
}
