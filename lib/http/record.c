/*
 * The record: one response as one line of JSON (NDJSON), the format the
 * programs exchange on pipes. Written and read in bounded memory, body
 * included; the format is documented in relay(7).
 */
#include <ctype.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/utf8.h"
#include "http/headers.h"
#include "http/record.h"

/* application/json and application/anything+json (RFC 6839). */
static int
is_json_type(const char *type)
{
	size_t n;

	if (type == NULL)
		return 0;
	n = strcspn(type, "; \t");
	if (n == 16 && strncasecmp(type, "application/json", n) == 0)
		return 1;
	return n > 17 && strncasecmp(type, "application/", 12) == 0 &&
	    strncasecmp(type + n - 5, "+json", 5) == 0;
}

/* A source that passes bytes through while checking they are UTF-8. */
struct utf8_tap {
	struct source	 inner;
	struct utf8	 state;
	int		 invalid;
};

static ssize_t
tap_read(void *ctx, void *p, size_t n)
{
	struct utf8_tap *t = ctx;
	ssize_t got = t->inner.read(t->inner.ctx, p, n);

	if (got > 0 && !t->invalid &&
	    utf8_feed(&t->state, p, (size_t)got) < 0)
		t->invalid = 1;
	return got;
}

/*
 * Decides how a body is written, in one pass over it: as JSON when its
 * type says JSON, or it has no type (a file: URL's), and it parses as
 * one value; else as text when it is UTF-8, else as base64. A read
 * error gives base64, which never fails.
 */
enum record_body
record_classify(const char *content_type, struct source body)
{
	struct utf8_tap tap = { body, UTF8_INIT, 0 };
	struct reader *r = xmalloc(sizeof *r);
	struct json j;
	enum record_body kind = RECORD_BASE64;
	int json_ok = 0;

	reader_init(r, (struct source){ tap_read, &tap });
	if (content_type == NULL || *content_type == '\0' ||
	    is_json_type(content_type)) {
		json_init(&j, r, 0);
		json_ok = json_value(&j, NULL) == 0 && json_peek(&j) < 0;
	}
	while (reader_fill(r) > 0)
		r->pos = r->len;	/* drain the rest through the tap */
	if (!r->err) {
		if (json_ok)
			kind = RECORD_JSON;
		else if (!tap.invalid && utf8_done(&tap.state) == 0)
			kind = RECORD_TEXT;
	}
	free(r);
	return kind;
}

static void
write_key(struct writer *w, const char *key)
{
	writer_putc(w, ',');
	json_write_string(w, key, strlen(key));
	writer_putc(w, ':');
}

/* Text that is not UTF-8 is taken as ISO-8859-1 (json_write_string). */
static void
write_string_member(struct writer *w, const char *key, const char *value)
{
	write_key(w, key);
	json_write_string(w, value, strlen(value));
}

/*
 * A URL as a JSON string: bytes that are not UTF-8 (a cache file's key
 * from before url_normalize encoded them) percent-encoded, as a key is
 * now; the record then loads under the key a fetch of it would use.
 */
static void
write_url(struct writer *w, const char *url)
{
	char *text = url_encode_invalid(url);

	json_write_string(w, text, strlen(text));
	free(text);
}

static int
same_name(const struct header *a, const struct header *b)
{
	return a->name_len == b->name_len &&
	    strncasecmp(a->name, b->name, a->name_len) == 0;
}

static void
write_lower(struct writer *w, const struct header *h)
{
	size_t i;

	writer_putc(w, '"');
	for (i = 0; i < h->name_len; i++)
		writer_putc(w, tolower((unsigned char)h->name[i]));
	writer_putc(w, '"');
}

/*
 * Headers as an object with lower-case names; a field that occurs
 * several times becomes an array of its values, in order.
 */
void
record_write_headers(struct writer *w, const char *block)
{
	const char *p = block, *q, *r;
	struct header h, other;
	int first = 1, count;

	writer_putc(w, '{');
	while (q = p, headers_next(&p, &h)) {
		for (r = block, count = 0; r != q && headers_next(&r, &other);)
			if (same_name(&h, &other))
				count++;
		if (count > 0)
			continue;	/* written with its first occurrence */
		for (r = p; headers_next(&r, &other);)
			if (same_name(&h, &other))
				count++;
		if (!first)
			writer_putc(w, ',');
		first = 0;
		write_lower(w, &h);
		writer_putc(w, ':');
		if (count == 0) {
			json_write_string(w, h.value, h.value_len);
			continue;
		}
		writer_putc(w, '[');
		json_write_string(w, h.value, h.value_len);
		for (r = p; headers_next(&r, &other);)
			if (same_name(&h, &other)) {
				writer_putc(w, ',');
				json_write_string(w, other.value,
				    other.value_len);
			}
		writer_putc(w, ']');
	}
	writer_putc(w, '}');
}

/* Everything up to the body, which record_write_body then adds. */
void
record_write_head(struct writer *w, const struct record *rec)
{
	writer_puts(w, "{\"url\":");
	write_url(w, rec->url);
	if (rec->seq > 0)
		writer_printf(w, ",\"seq\":%lld", rec->seq);
	if (rec->effective_url != NULL) {
		write_key(w, "effective_url");
		write_url(w, rec->effective_url);
	}
	write_string_member(w, "method", rec->method);
	write_key(w, "status");
	writer_printf(w, "%d", rec->status);
	write_string_member(w, "source", rec->source);
	write_key(w, "headers");
	record_write_headers(w, buf_str(&rec->headers));
	writer_printf(w, ",\"request_time\":%lld,\"response_time\":%lld"
	    ",\"age\":%lld", rec->request_time, rec->response_time, rec->age);
	/* A response not stored has no freshness to tell (relay(7)). */
	if (rec->has & HAS_TTL)
		writer_printf(w, ",\"ttl\":%lld", rec->ttl);
	writer_printf(w, ",\"size\":%lld", rec->size);
	if (rec->error != NULL)
		write_string_member(w, "error", rec->error);
}

/*
 * A text body as one JSON string, read in pieces of buf's size: a
 * UTF-8 sequence cut by a piece's end is held for the next one, so it
 * is written whole. Returns the last read's result (0, or -1).
 */
static ssize_t
write_text(struct writer *w, struct source body, char *buf, size_t size)
{
	size_t held = 0, n, tail;
	ssize_t got;

	writer_putc(w, '"');
	while ((got = body.read(body.ctx, buf + held, size - held)) > 0) {
		n = held + (size_t)got;
		tail = utf8_unfinished(buf, n);
		json_write_escaped(w, buf, n - tail);
		memmove(buf, buf + n - tail, tail);
		held = tail;
	}
	json_write_escaped(w, buf, held);	/* unfinished: not UTF-8 */
	writer_putc(w, '"');
	return got;
}

/*
 * Writes the body member and ends the record. Returns 0, or -1 if the
 * body could not be read; the line is then unfinished and the caller
 * must not let it pass as a record.
 */
int
record_write_body(struct writer *w, enum record_body kind, struct source body)
{
	static const char *const keys[] = {
		[RECORD_JSON] = "json", [RECORD_TEXT] = "text",
		[RECORD_BASE64] = "base64",
	};
	struct base64 b64 = BASE64_INIT;
	struct reader *r = NULL;
	struct json j;
	char buf[IO_BUFSIZE];
	ssize_t got = 0;
	int rc = 0;

	if (kind != RECORD_NO_BODY) {
		write_key(w, keys[kind]);
		if (kind == RECORD_JSON) {
			r = xmalloc(sizeof *r);
			reader_init(r, body);
			json_init(&j, r, 0);
			rc = json_value(&j, w);
			free(r);
		} else if (kind == RECORD_TEXT) {
			got = write_text(w, body, buf, sizeof buf);
		} else {
			writer_putc(w, '"');
			while ((got = body.read(body.ctx, buf, sizeof buf)) > 0)
				base64_encode(&b64, w, buf, (size_t)got);
			base64_encode_end(&b64, w);
			writer_putc(w, '"');
		}
	}
	if (rc < 0 || got < 0)
		return -1;
	writer_puts(w, "}\n");
	return 0;
}

struct record_reader *
record_reader_new(struct source src)
{
	struct record_reader *rr = xcalloc(1, sizeof *rr);

	reader_init(&rr->in, src);
	json_init(&rr->json, &rr->in, 1);
	return rr;
}

void
record_reader_free(struct record_reader *rr)
{
	free(rr);
}

void
record_free(struct record *rec)
{
	free(rec->url);
	free(rec->effective_url);
	free(rec->method);
	free(rec->error);
	buf_free(&rec->headers);
	memset(rec, 0, sizeof *rec);
}

static int
bad(struct record_reader *rr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
bad(struct record_reader *rr, const char *fmt, ...)
{
	va_list ap;

	if (rr->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(rr->why, sizeof rr->why, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
read_string(struct record_reader *rr, const char *key, char **out, size_t max)
{
	struct buf b = BUF_INIT;

	if (json_string_buf(&rr->json, &b, max) < 0) {
		buf_free(&b);
		return bad(rr, "\"%s\": %s", key, rr->json.why);
	}
	free(*out);
	*out = buf_take(&b);
	return 0;
}

static int
read_int(struct record_reader *rr, const char *key, long long *out,
    long long min, long long max)
{
	if (json_integer(&rr->json, out) < 0)
		return bad(rr, "\"%s\": %s", key, rr->json.why);
	if (*out < min || *out > max)
		return bad(rr, "\"%s\": %lld is out of range", key, *out);
	return 0;
}

/* One header value: appended to the block after validation. */
static int
read_header_value(struct json *j, struct buf *headers, const char *name,
    int *fields, char *why, size_t len)
{
	struct buf value = BUF_INIT;
	int rc = -1;

	if (++*fields > RECORD_MAX_FIELDS)
		snprintf(why, len, "more than %d header fields",
		    RECORD_MAX_FIELDS);
	else if (json_string_buf(j, &value, RECORD_MAX_HEADERS) < 0)
		snprintf(why, len, "header \"%s\": %s", name, j->why);
	else if (headers_add(headers, name, strlen(name), buf_cstr(&value),
	    value.len) < 0)
		snprintf(why, len, "header \"%s\": invalid name or value",
		    name);
	else if (headers->len > RECORD_MAX_HEADERS)
		snprintf(why, len, "headers longer than %d bytes",
		    RECORD_MAX_HEADERS);
	else
		rc = 0;
	buf_free(&value);
	return rc;
}

/*
 * A headers object, as records and batch items carry them: each value
 * a string, or an array of strings for repeated fields, validated into
 * a "Name: value\r\n" block. Returns -1 with the reason in why.
 */
int
record_read_headers(struct json *j, struct buf *headers, char *why,
    size_t len)
{
	struct buf name = BUF_INIT;
	int fields = 0, members = 0, values, rc;

	buf_reset(headers);
	if (json_expect(j, '{') < 0)
		goto json_error;
	while ((rc = json_next(j, '}', &members)) == 1) {
		if (json_string_buf(j, &name, 256) < 0 ||
		    json_expect(j, ':') < 0)
			goto json_error;
		if (json_peek(j) != '[') {
			rc = read_header_value(j, headers, name.data, &fields,
			    why, len);
			if (rc < 0)
				goto out;
			continue;
		}
		reader_getc(j->in);
		values = 0;
		while ((rc = json_next(j, ']', &values)) == 1)
			if ((rc = read_header_value(j, headers, name.data,
			    &fields, why, len)) < 0)
				goto out;
		if (rc < 0)
			goto json_error;
	}
	if (rc == 0)
		goto out;
json_error:
	rc = -1;
	snprintf(why, len, "\"headers\": %s", j->why);
out:
	buf_free(&name);
	return rc;
}

static int
read_headers(struct record_reader *rr, struct record *rec)
{
	char why[sizeof rr->why];

	if (record_read_headers(&rr->json, &rec->headers, why, sizeof why) < 0)
		return bad(rr, "%s", why);
	return 0;
}

static int
base64_sink_write(void *ctx, const void *p, size_t n)
{
	void **pair = ctx;
	struct base64 *b64 = pair[0];
	struct writer *out = pair[1];
	const unsigned char *s = p;

	while (n-- > 0)
		if (base64_decode(b64, out, *s++) < 0)
			return -1;
	return 0;
}

/*
 * Streams the body member into the sink through a fixed buffer:
 * a JSON value is copied compactly, text decoded, base64 decoded.
 */
static int
read_body(struct record_reader *rr, enum record_body kind, struct sink *sink)
{
	struct writer *out = xmalloc(sizeof *out);
	struct writer *text = xmalloc(sizeof *text);
	struct base64 b64 = BASE64_INIT;
	void *pair[2] = { &b64, out };
	int rc;

	writer_init(out, sink ? *sink : sink_null());
	if (kind == RECORD_JSON) {
		rc = json_value(&rr->json, out);
	} else if (kind == RECORD_TEXT) {
		rc = json_string(&rr->json, out);
	} else {
		writer_init(text, (struct sink){ base64_sink_write, pair });
		rc = json_string(&rr->json, text);
		if (writer_flush(text) < 0 || base64_decode_end(&b64) < 0)
			rc = bad(rr, "\"base64\": not valid base64");
	}
	if (rc < 0)
		bad(rr, "body: %s", rr->json.why);
	else if (writer_flush(out) < 0)
		rc = -2;
	free(text);
	free(out);
	return rc;
}

static enum record_body
body_kind(const char *key)
{
	if (strcmp(key, "json") == 0)
		return RECORD_JSON;
	if (strcmp(key, "text") == 0)
		return RECORD_TEXT;
	if (strcmp(key, "base64") == 0)
		return RECORD_BASE64;
	return RECORD_NO_BODY;
}

/* Reads the value of one member; returns 0, -1 (bad line), -2 (sink). */
static int
read_member(struct record_reader *rr, struct record *rec, const char *key,
    record_body_open open, void *ctx)
{
	static const struct {
		const char *key;
		unsigned has;
		size_t offset;
		long long min, max;
	} ints[] = {
		{ "request_time", HAS_REQUEST_TIME,
		    offsetof(struct record, request_time), 0, 1LL << 40 },
		{ "response_time", HAS_RESPONSE_TIME,
		    offsetof(struct record, response_time), 0, 1LL << 40 },
		{ "age", HAS_AGE, offsetof(struct record, age), 0, 1LL << 40 },
		{ "ttl", HAS_TTL, offsetof(struct record, ttl),
		    -(1LL << 40), 1LL << 40 },
		{ "size", HAS_SIZE, offsetof(struct record, size), 0, 1LL << 50 },
	};
	enum record_body kind = body_kind(key);
	long long v;
	size_t i;

	if (strcmp(key, "url") == 0)
		return read_string(rr, key, &rec->url, RECORD_MAX_URL);
	if (strcmp(key, "effective_url") == 0)
		return read_string(rr, key, &rec->effective_url,
		    RECORD_MAX_URL);
	if (strcmp(key, "method") == 0)
		return read_string(rr, key, &rec->method, 32);
	if (strcmp(key, "source") == 0) {
		char *source = NULL;

		if (read_string(rr, key, &source, sizeof rec->source - 1) < 0)
			return -1;
		memcpy(rec->source, source, strlen(source) + 1);
		free(source);
		return 0;
	}
	if (strcmp(key, "error") == 0)
		return read_string(rr, key, &rec->error, 1024);
	if (strcmp(key, "headers") == 0)
		return read_headers(rr, rec);
	if (strcmp(key, "status") == 0) {
		if (read_int(rr, key, &v, 0, 999) < 0)
			return -1;
		rec->status = (int)v;
		rec->has |= HAS_STATUS;
		return 0;
	}
	for (i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if (strcmp(key, ints[i].key) == 0) {
			rec->has |= ints[i].has;
			return read_int(rr, key, (long long *)((char *)rec +
			    ints[i].offset), ints[i].min, ints[i].max);
		}
	if (kind != RECORD_NO_BODY) {
		if (rec->body != RECORD_NO_BODY)
			return bad(rr, "more than one body member");
		rec->body = kind;
		return read_body(rr, kind, open ? open(ctx, rec) : NULL);
	}
	if (json_value(&rr->json, NULL) < 0)	/* unknown: skipped */
		return bad(rr, "\"%s\": %s", key, rr->json.why);
	return 0;
}

static int
read_object(struct record_reader *rr, struct record *rec,
    record_body_open open, void *ctx)
{
	struct json *j = &rr->json;
	struct buf key = BUF_INIT;
	int members = 0, rc = 0, c;

	if (json_expect(j, '{') < 0)
		rc = bad(rr, "%s", j->why);
	while (rc == 0 && (rc = json_next(j, '}', &members)) == 1) {
		if (json_string_buf(j, &key, 64) < 0 || json_expect(j, ':') < 0)
			rc = bad(rr, "%s", j->why);
		else
			rc = read_member(rr, rec, key.data, open, ctx);
	}
	buf_free(&key);
	if (rc == -2)
		return rc;
	if (rc < 0)
		return bad(rr, "%s", j->why);
	c = json_peek(j);
	if (c != '\n' && c != -1)
		return bad(rr, "unexpected data after the record");
	if (rec->url == NULL)
		return bad(rr, "no \"url\"");
	if (rec->error == NULL && rec->body == RECORD_NO_BODY)
		return bad(rr, "no body (\"json\", \"text\" or \"base64\")");
	return 0;
}

/* After a bad record, moves to the start of the next line. */
static void
skip_line(struct reader *in)
{
	int c;

	if (in->last == '\n')
		return;
	while ((c = reader_getc(in)) != -1 && c != '\n')
		;
}

/*
 * Reads the next record, skipping blank lines. The body goes to the
 * sink that open returns as it is parsed; on RECORD_BAD the caller
 * discards whatever reached it, and the next call starts at the next
 * line.
 */
enum record_result
record_read(struct record_reader *rr, struct record *rec,
    record_body_open open, void *ctx)
{
	struct reader *in = &rr->in;
	int c, rc;

	memset(rec, 0, sizeof *rec);
	rr->why[0] = '\0';
	rr->json.why[0] = '\0';
	do {
		if (reader_peek(in) == -1)
			return in->err ? RECORD_READ : RECORD_END;
		rr->line++;
		while ((c = reader_getc(in)) == ' ' || c == '\t' || c == '\r')
			;
	} while (c == '\n' || c == -1);
	in->pos--;	/* give back the first byte of the record */
	in->last = -1;
	rc = read_object(rr, rec, open, ctx);
	if (in->err)
		return RECORD_READ;
	if (rc == -2)
		return RECORD_SINK;
	if (rc < 0) {
		skip_line(in);
		return RECORD_BAD;
	}
	reader_getc(in);	/* the newline, if any */
	return RECORD_OK;
}

/*
 * Writes a whole record whose body can be read twice: once to choose
 * its encoding, once to write it. body->open starts a fresh pass.
 */
int
record_write(struct writer *w, const struct record *rec,
    const struct record_source *body)
{
	struct header type;
	char *ctype = NULL;
	enum record_body kind;
	struct source src;
	int rc;

	if (rec->error != NULL) {
		record_write_head(w, rec);
		return record_write_body(w, RECORD_NO_BODY,
		    (struct source){ NULL, NULL });
	}
	if (headers_get(buf_str(&rec->headers), "content-type",
	    &type))
		ctype = xstrndup(type.value, type.value_len);
	if (body->open(body->ctx, &src) < 0) {
		free(ctype);
		return -1;
	}
	kind = record_classify(ctype, src);
	body->close(body->ctx);
	free(ctype);
	if (body->open(body->ctx, &src) < 0)
		return -1;
	record_write_head(w, rec);
	rc = record_write_body(w, kind, src);
	body->close(body->ctx);
	return rc;
}
