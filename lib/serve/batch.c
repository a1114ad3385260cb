/*
 * Batches: the body read into items, each item made inside relay-serve
 * under a bound of so many at a time and no more while the client is
 * behind, and their lines written as they come. An item that cannot be
 * made gets an error line; only a body that is not a batch fails all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "http/json.h"
#include "serve/batch.h"
#include "serve/item.h"

struct slot {
	struct batch	*b;
	struct item	 item;
	struct item_run	*run;		/* while being answered */
};

struct batch {
	struct slot		*slots;
	size_t			 n, next, running;
	struct server		*srv;
	char			*peer, *fields;
	int			 multipart;
	const struct batch_out	*out;
	void			*ctx;
	int			 ended;
	struct item_waiter	 waiter;	/* for the process's room */
	struct item_lines	 lines;		/* answered, for the client */
};

/* Copies one value compactly into b: an item's text, read on its own. */
static int
copy_value(struct json *j, struct buf *b)
{
	struct writer *w = xmalloc(sizeof *w);
	int rc;

	buf_reset(b);
	writer_init(w, sink_buf(b));
	rc = json_value(j, w);
	writer_flush(w);
	free(w);
	return rc;
}

static int
unique_id(const struct batch *b, size_t i)
{
	size_t k;

	for (k = 0; k < i; k++)
		if (b->slots[k].item.id != NULL &&
		    strcmp(b->slots[k].item.id, b->slots[i].item.id) == 0)
			return 0;
	return 1;
}

static int
read_items(struct batch *b, struct json *j, char *why, size_t len)
{
	struct buf text = BUF_INIT;
	int count = 0, rc;

	if (json_expect(j, '[') < 0)
		return snprintf(why, len, "\"requests\": %s", j->why), -1;
	while ((rc = json_next(j, ']', &count)) == 1) {
		if (b->n == BATCH_MAX_ITEMS) {
			snprintf(why, len, "more than %d requests",
			    BATCH_MAX_ITEMS);
			rc = -2;
			break;
		}
		if (copy_value(j, &text) < 0) {
			rc = -1;
			break;
		}
		b->slots = xrealloc(b->slots, (b->n + 1) * sizeof *b->slots);
		memset(&b->slots[b->n], 0, sizeof b->slots[b->n]);
		b->slots[b->n].b = b;
		if (item_parse(&b->slots[b->n].item, text.data, text.len) ==
		    0 && !unique_id(b, b->n))
			snprintf(b->slots[b->n].item.why,
			    sizeof b->slots[b->n].item.why,
			    "the id is not unique in the batch");
		b->n++;
	}
	buf_free(&text);
	if (rc == -1)
		snprintf(why, len, "\"requests\": %s", j->why);
	return rc;
}

/*
 * Reads a batch's body. Returns NULL if it is not one, with the reason
 * and the status to answer: 400, or 413 for too many requests.
 */
struct batch *
batch_parse(const char *body, size_t len, int *status, char *why,
    size_t why_len)
{
	struct batch *b = xcalloc(1, sizeof *b);
	struct reader *r = xmalloc(sizeof *r);
	struct mem_source m;
	struct buf key = BUF_INIT;
	struct json j;
	int members = 0, rc, seen = 0;
	char reason[200] = "";

	item_lines_init(&b->lines);
	reader_init(r, source_mem(&m, body, len));
	json_init(&j, r, 0);
	if (json_expect(&j, '{') < 0)
		rc = -1;
	while (reason[0] == '\0' && (rc = json_next(&j, '}', &members)) == 1) {
		if (json_string_buf(&j, &key, 64) < 0 ||
		    json_expect(&j, ':') < 0) {
			rc = -1;
			break;
		}
		if (strcmp(key.data, "requests") != 0) {
			snprintf(reason, sizeof reason, "a member other "
			    "than \"requests\": a batch is "
			    "{\"requests\":[…]}");
			rc = -1;
		} else if ((rc = read_items(b, &j, reason,
		    sizeof reason)) < 0) {
			break;
		}
		seen = 1;
	}
	if (rc == 0 && (json_peek(&j) >= 0 || !seen)) {
		rc = -1;
		snprintf(reason, sizeof reason, seen ? "more after the batch" :
		    "no \"requests\"");
	}
	if (rc < 0 && reason[0] == '\0')
		snprintf(reason, sizeof reason, "%s", j.why);
	buf_free(&key);
	free(r);
	if (rc == 0)
		return b;
	*status = rc == -2 ? 413 : 400;
	snprintf(why, why_len, "%s", reason);
	batch_free(b);
	return NULL;
}

size_t
batch_size(const struct batch *b)
{
	return b->n;
}

/*
 * One line as the client gets it, appended to out: as it is, or as a
 * part of a multipart body, named by its id (JSON text: a string's
 * without its quotes).
 */
static void
client_line(const struct batch *b, const struct buf *line, const char *id,
    struct buf *out)
{
	size_t i, len = id != NULL ? strlen(id) : 0;
	int plain;

	if (!b->multipart) {
		buf_add(out, line->data, line->len);
		return;
	}
	if (len >= 2 && id[0] == '"')
		id++, len -= 2;
	plain = len > 0 && len < 200;
	for (i = 0; plain && i < len; i++)
		plain = id[i] > ' ' && id[i] < 0x7f && id[i] != '<' &&
		    id[i] != '>' && id[i] != '"' && id[i] != '\\';
	buf_adds(out, "--" BATCH_BOUNDARY "\r\n"
	    "Content-Type: application/json\r\n");
	if (plain) {
		buf_adds(out, "Content-ID: <");
		buf_add(out, id, len);
		buf_adds(out, ">\r\n");
	}
	buf_adds(out, "\r\n");
	buf_add(out, line->data, line->len - 1);	/* its \n */
	buf_adds(out, "\r\n");
}

/* The lines' sink: the client, while it takes what it is sent. */
static int
client_room(void *ctx)
{
	struct batch *b = ctx;

	return b->out->queued(b->ctx) < SERVER_OUT_MAX;
}

static void
client_write(void *ctx, const struct buf *text)
{
	struct batch *b = ctx;

	b->out->write(b->ctx, text->data, text->len);
}

static void pump(struct batch *);

static void
pump_again(void *b)
{
	pump(b);
}

static void
on_item(void *ctx, const struct buf *line)
{
	struct slot *s = ctx;
	struct batch *b = s->b;
	struct buf text = BUF_INIT;

	s->run = NULL;
	b->running--;
	client_line(b, line, s->item.id, &text);
	item_lines_add(&b->lines, &text);	/* out when the client takes it */
	buf_free(&text);
	pump(b);
}

/*
 * Starts what the bound and the client's backlog allow, lines the bad
 * items at once, and ends the body after the last line.
 */
static void
pump(struct batch *b)
{
	static const char last[] = "--" BATCH_BOUNDARY "--\r\n";
	const struct item_sink client = { client_room, client_write, b };
	struct slot *s;
	struct buf line = BUF_INIT, text = BUF_INIT;

	item_lines_flush(&b->lines, &client);
	while (b->next < b->n && b->running < BATCH_AT_ONCE &&
	    item_lines_empty(&b->lines) && client_room(b)) {
		s = &b->slots[b->next++];
		if (s->item.why[0] != '\0') {
			buf_reset(&line);
			buf_reset(&text);
			item_error_line(&line, s->item.id, 400, s->item.why);
			client_line(b, &line, s->item.id, &text);
			client_write(b, &text);
			continue;
		}
		if (!item_room()) {	/* other clients' items hold it */
			b->next--;
			item_wait(&b->waiter, pump_again, b);
			break;
		}
		b->running++;
		s->run = item_start(b->srv, b->peer, b->fields, &s->item,
		    on_item, s);
	}
	buf_free(&line);
	buf_free(&text);
	if (b->next == b->n && b->running == 0 && !b->ended &&
	    item_lines_empty(&b->lines)) {
		b->ended = 1;
		if (b->multipart)
			b->out->write(b->ctx, last, sizeof last - 1);
		b->out->end(b->ctx);	/* b may be gone now */
	}
}

/*
 * Answers the batch's items as requests from peer with the client's
 * fields, writing to out; out->end may come before this returns.
 */
void
batch_start(struct batch *b, struct server *srv, const char *peer,
    const char *fields, int multipart, const struct batch_out *out,
    void *ctx)
{
	b->srv = srv;
	b->peer = xstrdup(peer);
	b->fields = xstrdup(fields);
	b->multipart = multipart;
	b->out = out;
	b->ctx = ctx;
	pump(b);
}

/* The client has room again: more items may start. */
void
batch_writable(struct batch *b)
{
	if (!b->ended)
		pump(b);
}

/* Ends the batch; items still being answered are dropped. */
void
batch_free(struct batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	item_unwait(&b->waiter);
	item_lines_free(&b->lines);
	for (i = 0; i < b->n; i++) {
		if (b->slots[i].run != NULL)
			item_cancel(b->slots[i].run);
		item_free(&b->slots[i].item);
	}
	free(b->slots);
	free(b->peer);
	free(b->fields);
	free(b);
}
