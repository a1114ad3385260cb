/*
 * Items: a request given as JSON, made inside relay-serve, answered as
 * one line of JSON. The answer comes as a client would get it over
 * HTTP/1.0 (server_inner), so its body comes unframed: the head is
 * parsed back into fields, the body held up to ITEM_MAX_BODY, then
 * both are written as the item's line.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/io.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/json.h"
#include "http/record.h"
#include "serve/item.h"

#define ITEM_MAX_HEAD	262144	/* of an answer's head, before it is bad */

static int
bad(struct item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(struct item *it, const char *fmt, ...)
{
	va_list ap;

	if (it->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(it->why, sizeof it->why, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A writer onto out, for one line. */
static struct writer *
line_writer(struct buf *out)
{
	struct writer *w = xmalloc(sizeof *w);

	writer_init(w, sink_buf(out));
	return w;
}

/*
 * The id as its JSON text, a string quoted and an integer not, so that
 * 1 and "1" are two ids and each line gives its id back as it came.
 */
static int
read_id(struct item *it, struct json *j)
{
	struct buf b = BUF_INIT, text = BUF_INIT;
	struct writer *w;
	long long n;

	if (json_peek(j) == '"') {
		if (json_string_buf(j, &b, ITEM_MAX_ID) < 0) {
			buf_free(&b);
			return bad(it, "\"id\": %s", j->why);
		}
		w = line_writer(&text);
		json_write_string(w, b.data, b.len);
		writer_flush(w);
		free(w);
		buf_free(&b);
	} else if (json_integer(j, &n) == 0) {
		buf_addll(&text, n);
	} else {
		return bad(it, "\"id\" is a string or an integer");
	}
	it->id = buf_take(&text);
	return 0;
}

static int
read_string(struct item *it, struct json *j, const char *key, struct buf *b,
    size_t max)
{
	if (json_peek(j) != '"')
		return bad(it, "\"%s\" is a string", key);
	if (json_string_buf(j, b, max) < 0)
		return bad(it, "\"%s\": %s", key, j->why);
	return 0;
}

static int
read_method(struct item *it, struct json *j)
{
	struct buf b = BUF_INIT;
	int rc = read_string(it, j, "method", &b, HTTP_MAX_METHOD);

	if (rc == 0 && !http_method_valid(buf_cstr(&b)))
		rc = bad(it, "\"method\": not a method: '%.40s'", b.data);
	if (rc == 0)
		snprintf(it->method, sizeof it->method, "%s", b.data);
	buf_free(&b);
	return rc;
}

/* A path and query as a request line would carry it: no space, no control. */
static int
read_path(struct item *it, struct json *j)
{
	struct buf b = BUF_INIT;
	size_t i;

	if (read_string(it, j, "path", &b, HTTP_MAX_TARGET) < 0)
		goto fail;
	if (b.len == 0 || b.data[0] != '/') {
		bad(it, "\"path\" must start with '/'");
		goto fail;
	}
	for (i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] <= ' ' ||
		    (unsigned char)b.data[i] >= 0x7f) {
			bad(it, "\"path\": byte %zu is not allowed in a "
			    "request target", i);
			goto fail;
		}
	it->path = buf_take(&b);
	return 0;
fail:
	buf_free(&b);
	return -1;
}

/* A string is sent as it is; any other value as JSON. */
static int
read_body(struct item *it, struct json *j)
{
	struct writer *w;
	int rc;

	it->has_body = 1;
	if (json_peek(j) == '"')
		return read_string(it, j, "body", &it->body, ITEM_MAX_BODY);
	it->json_body = 1;
	w = xmalloc(sizeof *w);
	writer_init(w, sink_buf(&it->body));
	rc = json_value(j, w);
	writer_flush(w);
	free(w);
	return rc < 0 ? bad(it, "\"body\": %s", j->why) : 0;
}

static int
read_member(struct item *it, struct json *j, const char *key)
{
	char why[sizeof it->why];

	if (strcmp(key, "id") == 0)
		return json_value(j, NULL);	/* read first, by item_parse */
	if (strcmp(key, "method") == 0)
		return read_method(it, j);
	if (strcmp(key, "path") == 0)
		return read_path(it, j);
	if (strcmp(key, "body") == 0)
		return read_body(it, j);
	if (strcmp(key, "headers") == 0) {
		if (record_read_headers(j, &it->fields, why, sizeof why) < 0)
			return bad(it, "%s", why);
		return 0;
	}
	return bad(it, "unknown member \"%.40s\"", key);
}

/*
 * Steps through the members of one object, calling fn for each with
 * the stream at its value; the id first, on a pass of its own, so that
 * an item that is bad in another member still has it for its error.
 */
static int
each_member(struct item *it, const char *text, size_t len, int id_only)
{
	struct reader *r = xmalloc(sizeof *r);
	struct mem_source m;
	struct buf key = BUF_INIT;
	struct json j;
	int members = 0, rc;

	reader_init(r, source_mem(&m, text, len));
	json_init(&j, r, 0);
	if (json_peek(&j) != '{') {
		rc = bad(it, "an item is an object");
		goto out;
	}
	json_expect(&j, '{');
	while ((rc = json_next(&j, '}', &members)) == 1) {
		if (json_string_buf(&j, &key, 64) < 0 ||
		    json_expect(&j, ':') < 0) {
			rc = bad(it, "%s", j.why);
			break;
		}
		if (id_only)
			rc = strcmp(key.data, "id") == 0 && it->id == NULL ?
			    read_id(it, &j) : json_value(&j, NULL);
		else
			rc = read_member(it, &j, key.data);
		if (rc < 0)
			break;
	}
	if (rc < 0)
		bad(it, "%s", j.why);
out:
	buf_free(&key);
	free(r);
	return rc < 0 ? -1 : 0;
}

/*
 * Reads one item from one JSON value. Returns 0, or -1 with the reason
 * in why; the id is kept if it could be read.
 */
int
item_parse(struct item *it, const char *text, size_t len)
{
	memset(it, 0, sizeof *it);
	snprintf(it->method, sizeof it->method, "GET");
	if (each_member(it, text, len, 1) < 0 ||
	    each_member(it, text, len, 0) < 0)
		return -1;
	if (it->id == NULL)
		return bad(it, "no \"id\"");
	if (it->path == NULL)
		return bad(it, "no \"path\"");
	return 0;
}

void
item_free(struct item *it)
{
	free(it->id);
	free(it->path);
	buf_free(&it->fields);
	buf_free(&it->body);
	memset(it, 0, sizeof *it);
}

static void
write_id(struct writer *w, const char *id)
{
	writer_puts(w, "{\"id\":");
	writer_puts(w, id != NULL ? id : "null");	/* its JSON text */
}

/* {"id":…,"status":…,"error":…}: an item that could not be made. */
void
item_error_line(struct buf *out, const char *id, int status, const char *why)
{
	struct writer *w = line_writer(out);

	write_id(w, id);
	writer_printf(w, ",\"status\":%d,\"error\":", status);
	json_write_string(w, why, strlen(why));
	writer_puts(w, "}\n");
	writer_flush(w);
	free(w);
}

/*
 * The status and end-to-end fields of an answer's head, as relay-serve
 * wrote it ("HTTP/1.1 200 OK\r\n" and valid fields); -1 if it is not.
 */
static int
parse_head(const char *head, size_t len, struct buf *fields)
{
	struct buf all = BUF_INIT;
	const char *p, *end = head + len, *eol, *why;
	char line[HTTP_MAX_HEAD];
	int status = 0, i;

	if (len < 13 || memcmp(head, "HTTP/1.1 ", 9) != 0 ||
	    (p = memmem(head, len, "\r\n", 2)) == NULL)
		return -1;
	for (i = 9; i < 12 && head[i] >= '0' && head[i] <= '9'; i++)
		status = status * 10 + head[i] - '0';
	if (i < 12 || status < 100)
		return -1;
	for (p += 2; p < end &&
	    (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL &&
	    eol > p; p = eol + 2) {
		if ((size_t)(eol - p) >= sizeof line)
			continue;
		memcpy(line, p, (size_t)(eol - p));
		line[eol - p] = '\0';
		(void)headers_add_line(&all, line, &why);
	}
	headers_add_end_to_end(fields, buf_cstr(&all));
	buf_free(&all);
	return status;
}

/*
 * {"id":…,"status":…,"headers":{…}, then the body as a record has it
 * (json, text or base64: relay(7)), or, when the body was not kept
 * whole, why.
 */
void
item_answer_line(struct buf *out, const char *id, const char *head,
    size_t head_len, const struct buf *body, const char *error)
{
	struct buf fields = BUF_INIT;
	struct writer *w;
	struct mem_source m;
	struct header type;
	enum record_body kind = RECORD_NO_BODY;
	char *ctype = NULL;
	int status = parse_head(head, head_len, &fields);

	if (status < 0) {
		item_error_line(out, id, 502, "relay-serve's answer could "
		    "not be read back");
		buf_free(&fields);
		return;
	}
	w = line_writer(out);
	write_id(w, id);
	writer_printf(w, ",\"status\":%d,\"headers\":", status);
	record_write_headers(w, buf_cstr(&fields));
	if (error != NULL) {
		writer_puts(w, ",\"error\":");
		json_write_string(w, error, strlen(error));
		writer_puts(w, "}\n");
	} else {
		if (body->len > 0) {
			if (headers_get(buf_cstr(&fields), "content-type",
			    &type))
				ctype = xstrndup(type.value, type.value_len);
			kind = record_classify(ctype != NULL ? ctype :
			    "application/octet-stream",
			    source_mem(&m, body->data, body->len));
		}
		record_write_body(w, kind, source_mem(&m, body->data,
		    body->len));
	}
	writer_flush(w);
	free(w);
	free(ctype);
	buf_free(&fields);
}

/* One item being answered by relay-serve. */
struct item_run {
	struct server	*srv;
	struct conn	*conn;		/* NULL once answered */
	struct watch	*kick;		/* to act outside the answer's calls */
	char		*id;
	struct buf	 head, body;
	int		 head_done;	/* body bytes come now */
	int		 too_big;	/* the body is over ITEM_MAX_BODY */
	char		 cut[256];	/* why the answer is not whole, or "" */
	size_t		 credited;	/* body bytes the answer may go past */
	item_done_fn	*done;
	void		*ctx;
};

static void
arm(struct item_run *run)
{
	watch_deadline(run->kick, prog_now_ms());
}

/* An answer's bytes: the head until its blank line, then the body. */
static void
run_write(void *ctx, const void *p, size_t n)
{
	struct item_run *run = ctx;
	const char *end;
	size_t was = run->head.len, at;

	if (run->too_big)
		return;
	if (!run->head_done) {
		buf_add(&run->head, p, n);
		end = memmem(run->head.data + (was > 3 ? was - 3 : 0),
		    run->head.len - (was > 3 ? was - 3 : 0), "\r\n\r\n", 4);
		if (end == NULL) {
			if (run->head.len > ITEM_MAX_HEAD)
				run->too_big = 1, arm(run);
			return;
		}
		at = (size_t)(end + 4 - run->head.data);
		buf_add(&run->body, run->head.data + at, run->head.len - at);
		run->head.len = at;
		run->head_done = 1;
	} else {
		buf_add(&run->body, p, n);
	}
	if (run->body.len > ITEM_MAX_BODY) {
		run->too_big = 1;
		buf_free(&run->body);
		arm(run);
	} else if (run->body.len - run->credited >= SERVER_OUT_MAX) {
		arm(run);	/* the answer waits: see run_queued */
	}
}

static void
run_done(void *ctx, const char *cut)
{
	struct item_run *run = ctx;

	run->conn = NULL;
	if (cut != NULL)
		snprintf(run->cut, sizeof run->cut, "the answer was cut "
		    "short: %s", cut);
	arm(run);
}

/*
 * What the answer sees as queued: the body it wrote since the last
 * kick, so that a long one yields to the loop every SERVER_OUT_MAX
 * bytes, and stops once too big.
 */
static size_t
run_queued(void *ctx)
{
	struct item_run *run = ctx;

	return run->too_big ? SERVER_OUT_MAX : run->body.len - run->credited;
}

static const struct inner_ops run_ops = { run_write, run_done, run_queued };

/*
 * Items running in this process, whatever batch or channel they are
 * of: each may hold ITEM_MAX_BODY, so that many clients' batches
 * together hold ITEM_MAX_RUNNING of them at most; the others wait
 * their turn, in order, woken on a later round of the loop.
 */
static size_t running;
static struct item_waiter *waiters, **waiters_tail = &waiters;
static struct watch *wake;

int
item_room(void)
{
	return running < ITEM_MAX_RUNNING;
}

/* w waits for room; fn(ctx) is called once there may be some. */
void
item_wait(struct item_waiter *w, void (*fn)(void *), void *ctx)
{
	if (w->waiting)
		return;
	w->fn = fn;
	w->ctx = ctx;
	w->waiting = 1;
	w->next = NULL;
	*waiters_tail = w;
	waiters_tail = &w->next;
}

void
item_unwait(struct item_waiter *w)
{
	struct item_waiter **p;

	if (!w->waiting)
		return;
	for (p = &waiters; *p != w; p = &(*p)->next)
		;
	if ((*p = w->next) == NULL)
		waiters_tail = p;
	w->waiting = 0;
}

/* Room came: the first waiters start, as many as there is room for. */
static void
on_room(struct watch *w, short events, void *ctx)
{
	struct item_waiter *first;

	(void)events, (void)ctx;
	watch_deadline(w, 0);
	while (item_room() && (first = waiters) != NULL) {
		item_unwait(first);
		first->fn(first->ctx);	/* may wait again, at the end */
		if (waiters == first)
			break;		/* still no room for it */
	}
}

/* An item's place is free: its line went out, or it was dropped. */
static void
release(void)
{
	assert(running > 0);
	if (--running < ITEM_MAX_RUNNING && waiters != NULL)
		watch_deadline(wake, prog_now_ms());
}

struct item_line {
	struct item_line	*next;
	struct buf		 text;
};

void
item_lines_init(struct item_lines *l)
{
	l->first = NULL;
	l->last = &l->first;
}

/* Keeps a copy of line, and its item's place, until it is flushed. */
void
item_lines_add(struct item_lines *l, const struct buf *line)
{
	struct item_line *one = xcalloc(1, sizeof *one);

	buf_add(&one->text, line->data, line->len);
	*l->last = one;
	l->last = &one->next;
}

/* Writes the lines the sink has room for, in order; returns how many. */
size_t
item_lines_flush(struct item_lines *l, const struct item_sink *to)
{
	struct item_line *one;
	size_t n = 0;

	while ((one = l->first) != NULL && to->room(to->ctx)) {
		if ((l->first = one->next) == NULL)
			l->last = &l->first;
		to->write(to->ctx, &one->text);
		buf_free(&one->text);
		free(one);
		release();
		n++;
	}
	return n;
}

int
item_lines_empty(const struct item_lines *l)
{
	return l->first == NULL;
}

/* The client has gone: the lines are dropped, their places freed. */
void
item_lines_free(struct item_lines *l)
{
	struct item_line *one;

	while ((one = l->first) != NULL) {
		l->first = one->next;
		buf_free(&one->text);
		free(one);
		release();
	}
	l->last = &l->first;
}

static void
run_free(struct item_run *run)
{
	loop_unwatch(run->kick);
	free(run->id);
	buf_free(&run->head);
	buf_free(&run->body);
	free(run);
}

/*
 * On the loop, after the answer's own calls: its line once it is
 * whole (or too big), else room for more of its body.
 */
static void
on_kick(struct watch *w, short events, void *ctx)
{
	struct item_run *run = ctx;
	struct buf line = BUF_INIT;

	(void)events;
	watch_deadline(w, 0);
	if (run->conn != NULL && !run->too_big) {
		run->credited = run->body.len;
		inner_writable(run->conn);
		return;
	}
	if (run->conn != NULL)
		inner_cancel(run->conn);
	if (run->too_big)
		snprintf(run->cut, sizeof run->cut, run->head_done ?
		    "the body is over %d bytes: ask for it alone" :
		    "the answer's head is too big", ITEM_MAX_BODY);
	if (!run->head_done)
		item_error_line(&line, run->id, 502, run->cut[0] != '\0' ?
		    run->cut : "the answer ended before its head");
	else
		item_answer_line(&line, run->id, run->head.data,
		    run->head.len, &run->body, run->cut[0] != '\0' ?
		    run->cut : NULL);
	run->done(run->ctx, &line);
	buf_free(&line);
	run_free(run);
}

static int
is_dropped(const struct header *h, const char *item_fields)
{
	static const char *const dropped[] = {
		"content-type", "content-encoding", "expect", "accept",
		"accept-encoding", "range", "if-range", "if-match",
		"if-none-match", "if-modified-since", "if-unmodified-since",
	};
	char name[256];
	struct header mine;
	size_t i;

	if (h->name_len >= sizeof name || (h->name_len >= 14 &&
	    strncasecmp(h->name, "sec-websocket-", 14) == 0))
		return 1;
	for (i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
		if (header_is(h, dropped[i]))
			return 1;
	memcpy(name, h->name, h->name_len);
	name[h->name_len] = '\0';
	return headers_get(item_fields, name, &mine);
}

/*
 * The request an item makes: the client's own fields (its API key, its
 * credentials) but those about the batch's body, its conditions and
 * framing, and any the item sets itself; then the item's, without the
 * ones that frame a message or name a connection, which are relay's to
 * set. A field on several lines is one, as in a parsed request.
 * HTTP/1.0, so that the answer's body comes unframed.
 */
static void
make_request(const struct item *it, const char *outer, struct http_request *req,
    struct buf *body)
{
	struct buf kept = BUF_INIT, all = BUF_INIT;
	const char *p, *mine = buf_str(&it->fields);
	struct header h, type;

	memset(req, 0, sizeof *req);
	snprintf(req->method, sizeof req->method, "%s", it->method);
	req->target = xstrdup(it->path);
	headers_add_end_to_end(&kept, outer);
	for (p = buf_cstr(&kept); headers_next(&p, &h);)
		if (!is_dropped(&h, mine))
			headers_add(&all, h.name, h.name_len, h.value,
			    h.value_len);
	headers_add_end_to_end(&all, mine);
	buf_add(body, it->body.data, it->body.len);
	if (it->has_body) {
		req->body = HTTP_BODY_LENGTH;
		req->has_content = 1;
		req->content_length = (long long)it->body.len;
		buf_printf(&all, "Content-Length: %zu\r\n", it->body.len);
		if (it->json_body && !headers_get(mine, "content-type", &type))
			buf_adds(&all, "Content-Type: application/json\r\n");
	}
	if (headers_combine(buf_cstr(&all), &req->fields))
		buf_free(&all);
	else
		req->fields = all;
	buf_free(&kept);
}

/*
 * Starts answering the item as a request from peer with the client's
 * fields outer. done is called with its line on a later round of the
 * loop, unless item_cancel comes first.
 */
struct item_run *
item_start(struct server *srv, const char *peer, const char *outer,
    struct item *it, item_done_fn *done, void *ctx)
{
	struct item_run *run = xcalloc(1, sizeof *run);
	struct http_request req;
	struct buf body = BUF_INIT;

	assert(item_room());	/* the caller waited for it */
	if (wake == NULL)
		wake = loop_watch(server_loop(srv), -1, 0, on_room, NULL);
	running++;
	run->srv = srv;
	run->id = xstrdup(it->id);
	run->done = done;
	run->ctx = ctx;
	run->kick = loop_watch(server_loop(srv), -1, 0, on_kick, run);
	make_request(it, outer, &req, &body);
	server_inner(srv, peer, &req, &body, &run_ops, run, &run->conn);
	return run;
}

/* Its consumer has gone: the answer is dropped, done is not called. */
void
item_cancel(struct item_run *run)
{
	release();
	if (run->conn != NULL)
		inner_cancel(run->conn);
	run_free(run);
}
