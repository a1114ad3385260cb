/*
 * Tests the NDJSON record (lib/http/record.h): how bodies are classified,
 * the exact line written, round trips of every body kind, and the
 * decoder's rules for blank, unknown and bad lines.
 */
#include <stdlib.h>
#include <string.h>

#include "http/record.h"
#include "unit.h"

#define CHECK_AT(i, cond) do {						\
	if (!(cond))							\
		printf("# row %zu\n", (size_t)(i));			\
	CHECK(cond);							\
} while (0)

struct mem {
	const char	*p;
	size_t		 left;
};

/* Collects a decoded body; opened counts the calls to open_body. */
struct collect {
	struct sink	 sink;
	struct buf	 body;
	int		 opened;
	int		 fail;
};

static ssize_t
mem_read(void *ctx, void *p, size_t n)
{
	struct mem *m = ctx;

	if (m->left == (size_t)-1)	/* a source that fails */
		return -1;
	if (n > m->left)
		n = m->left;
	memcpy(p, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

static int
buf_write(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
	return 0;
}

static int
collect_write(void *ctx, const void *p, size_t n)
{
	struct collect *c = ctx;

	if (c->fail)
		return -1;
	buf_add(&c->body, p, n);
	return 0;
}

static struct sink *
open_body(void *ctx, const struct record *rec)
{
	struct collect *c = ctx;

	(void)rec;
	c->opened++;
	c->sink = (struct sink){ collect_write, c };
	return &c->sink;
}

/* A record with every field set and a repeated header. */
static void
sample(struct record *rec, const char *type, long long size)
{
	memset(rec, 0, sizeof *rec);
	rec->url = (char *)"http://example.com/a?b=\"1\"";
	rec->method = (char *)"GET";
	strcpy(rec->source, "miss");
	rec->status = 200;
	buf_printf(&rec->headers, "Content-Type: %s\r\nSet-Cookie: a=1\r\n"
	    "ETag: \"x\"\r\nset-cookie: b=2\r\n", type);
	rec->request_time = 1000;
	rec->response_time = 1002;
	rec->age = 3;
	rec->ttl = 60;
	rec->size = size;
	rec->has = HAS_TTL;
}

/* The whole line for rec and a body of the given kind, in out. */
static int
encode(struct buf *out, const struct record *rec, enum record_body kind,
    const char *body, size_t n)
{
	struct writer *w = malloc(sizeof *w);
	struct mem m = { body, n };
	int rc;

	buf_reset(out);
	writer_init(w, (struct sink){ buf_write, out });
	record_write_head(w, rec);
	rc = record_write_body(w, kind, (struct source){ mem_read, &m });
	writer_flush(w);
	free(w);
	buf_cstr(out);
	return rc;
}

static enum record_body
classify(const char *type, const char *body, size_t n)
{
	struct mem m = { body, n };

	return record_classify(type, (struct source){ mem_read, &m });
}

static void
classifies(void)
{
	static const struct {
		const char	*type, *body;
		enum record_body kind;
	} rows[] = {
		{ "application/json", "{\"a\": 1}", RECORD_JSON },
		{ "application/json; charset=utf-8", " [1] \n", RECORD_JSON },
		{ "Application/JSON", "1", RECORD_JSON },
		{ "application/problem+json", "{\"type\":\"x\"}", RECORD_JSON },
		{ "application/json", "{\"a\":", RECORD_TEXT },
		{ "application/json", "1 2", RECORD_TEXT },
		{ "application/json", "", RECORD_TEXT },
		{ "application/+json", "{}", RECORD_TEXT },
		{ "text/json", "{}", RECORD_TEXT },
		{ "text/plain", "h\xC3\xA9llo\n", RECORD_TEXT },
		{ NULL, "abc", RECORD_TEXT },
		{ "text/plain", "\xFF", RECORD_BASE64 },
		{ "text/plain", "\xE2\x82", RECORD_BASE64 },
		{ "application/json", "\"\xC0\x80\"", RECORD_BASE64 },
		{ "image/png", "\x89PNG\r\n\x1A\n", RECORD_BASE64 },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, classify(rows[i].type, rows[i].body,
		    strlen(rows[i].body)) == rows[i].kind);
	CHECK(classify("text/plain", "a\0b", 3) == RECORD_TEXT);
	CHECK(classify("application/json", "{}", (size_t)-1) == RECORD_BASE64);
}

static void
writes_exact_line(void)
{
	static const char head[] =
	    "{\"url\":\"http://example.com/a?b=\\\"1\\\"\",\"method\":\"GET\","
	    "\"status\":200,\"source\":\"miss\",\"headers\":"
	    "{\"content-type\":\"application/json\",\"set-cookie\":[\"a=1\","
	    "\"b=2\"],\"etag\":\"\\\"x\\\"\"},\"request_time\":1000,"
	    "\"response_time\":1002,\"age\":3,\"ttl\":60,\"size\":";
	static const struct {
		enum record_body kind;
		const char	*body;
		size_t		 len;
		const char	*tail;
	} rows[] = {
		{ RECORD_JSON, " {\"a\" : [1, 2]} ", 16,
		    "16,\"json\":{\"a\":[1,2]}}\n" },
		{ RECORD_TEXT, "l1\nl2\t\"q\"\\\x7F", 11,
		    "11,\"text\":\"l1\\nl2\\t\\\"q\\\"\\\\\\u007f\"}\n" },
		{ RECORD_BASE64, "\0\xFF\x10", 3, "3,\"base64\":\"AP8Q\"}\n" },
		{ RECORD_BASE64, "", 0, "0,\"base64\":\"\"}\n" },
	};
	struct record rec;
	struct buf out = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		sample(&rec, "application/json", (long long)rows[i].len);
		rc = encode(&out, &rec, rows[i].kind, rows[i].body,
		    rows[i].len);
		buf_free(&rec.headers);
		CHECK_AT(i, rc == 0);
		CHECK_AT(i, strncmp(out.data, head, strlen(head)) == 0);
		CHECK_AT(i, strcmp(out.data + strlen(head), rows[i].tail) == 0);
	}
	sample(&rec, "text/plain", 0);
	rec.error = (char *)"timed out";
	rc = encode(&out, &rec, RECORD_NO_BODY, "", 0);
	buf_free(&rec.headers);
	CHECK(rc == 0);
	CHECK(strstr(out.data, ",\"size\":0,\"error\":\"timed out\"}\n") !=
	    NULL);
	/* a response not stored: no freshness, no ttl member */
	sample(&rec, "text/plain", 2);
	rec.has = 0;
	rc = encode(&out, &rec, RECORD_TEXT, "ok", 2);
	buf_free(&rec.headers);
	CHECK(rc == 0);
	CHECK(strstr(out.data, ",\"age\":3,\"size\":2,\"text\":\"ok\"}\n") !=
	    NULL);
	CHECK(strstr(out.data, "ttl") == NULL);
	sample(&rec, "text/plain", 0);
	rc = encode(&out, &rec, RECORD_TEXT, "", (size_t)-1);	/* fails */
	buf_free(&rec.headers);
	CHECK(rc < 0);
	CHECK(out.data[out.len - 1] != '\n');
	buf_free(&out);
}

/* Encodes a body as kind, decodes the line and compares everything. */
static int
round_trip(enum record_body kind, const char *body, size_t n,
    const char *want, size_t want_len)
{
	struct record rec, got;
	struct buf line = BUF_INIT;
	struct collect c = { .opened = 0 };
	struct mem m;
	struct record_reader *rr;
	enum record_result res;
	int ok;

	sample(&rec, "x/y", (long long)n);
	encode(&line, &rec, kind, body, n);
	m = (struct mem){ line.data, line.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	res = record_read(rr, &got, open_body, &c);
	ok = res == RECORD_OK && got.body == kind && c.opened == 1 &&
	    c.body.len == want_len && memcmp(c.body.data ? c.body.data : "",
	    want, want_len) == 0 && strcmp(got.url, rec.url) == 0 &&
	    strcmp(got.method, "GET") == 0 &&
	    strcmp(got.source, "miss") == 0 && got.error == NULL &&
	    got.status == 200 && got.request_time == 1000 &&
	    got.response_time == 1002 && got.age == 3 && got.ttl == 60 &&
	    got.size == (long long)n && got.has == 0x3F &&
	    strcmp(buf_cstr(&got.headers), "content-type: x/y\r\n"
	    "set-cookie: a=1\r\nset-cookie: b=2\r\netag: \"x\"\r\n") == 0;
	record_free(&got);
	ok = ok && record_read(rr, &got, open_body, &c) == RECORD_END;
	record_reader_free(rr);
	buf_free(&rec.headers);
	buf_free(&line);
	buf_free(&c.body);
	return ok;
}

static void
round_trips(void)
{
	static const char text[] = "a\0b\x01\x1F\x7F\"\\/\n\r\t "
	    "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
	static const char json[] = " [1, {\"a\": \"\\u00e9\"}] ";
	static const char compact[] = "[1,{\"a\":\"\\u00e9\"}]";
	const size_t big = 200000;
	unsigned char *bytes = malloc(big);
	size_t i;
	int ok[5];

	for (i = 0; i < big; i++)
		bytes[i] = (unsigned char)(i * 7919 >> 3);
	ok[0] = round_trip(RECORD_JSON, json, strlen(json), compact,
	    strlen(compact));
	ok[1] = round_trip(RECORD_TEXT, text, sizeof text - 1, text,
	    sizeof text - 1);
	ok[2] = round_trip(RECORD_BASE64, (char *)bytes, 256, (char *)bytes,
	    256);
	ok[3] = round_trip(RECORD_BASE64, (char *)bytes, big, (char *)bytes,
	    big);
	memset(bytes, 'x', big);
	ok[4] = round_trip(RECORD_TEXT, (char *)bytes, big, (char *)bytes, big);
	free(bytes);
	for (i = 0; i < 5; i++)
		CHECK_AT(i, ok[i]);
}

/* Record lines are written with ' for " to keep the tables readable. */
static void
unquote(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++)
		buf_addc(b, *s == '\'' ? '"' : *s);
}

/* Reads every line of the table as one input: results and line numbers. */
static void
decodes_lines(void)
{
	static const struct {
		const char		*line;
		enum record_result	 want;
	} rows[] = {
		{ "", RECORD_END },
		{ " \t\r", RECORD_END },
		{ "{'text':'hi','size':2,'url':'http://x/1','x':{'a':"
		    "[1,{'b':null}],'c':'}'},'status':200}", RECORD_OK },
		{ "{'url':1}", RECORD_BAD },
		{ "{'url':'http://x/2','text':''}\r", RECORD_OK },
		{ "not json", RECORD_BAD },
		{ "{'url':'http://x/','text':'a'} trailing", RECORD_BAD },
		{ "{'url':'http://x/'}", RECORD_BAD },
		{ "{'url':'http://x/','text':'a','text':'b'}", RECORD_BAD },
		{ "{'url':'http://x/','base64':'Zg='}", RECORD_BAD },
		{ "{'url':'http://x/3','base64':'Zg=='}", RECORD_OK },
		{ "{'url':'http://x/',", RECORD_BAD },	/* split in two */
		{ "'text':'a'}", RECORD_BAD },
		{ "{'url':'http://x/','text':'a", RECORD_BAD },
		{ "b'}", RECORD_BAD },
		{ "{'url':'u','headers':{'x':'a\\r\\nb'},'text':''}",
		    RECORD_BAD },
		{ "{'url':'u','headers':{'a b':'v'},'text':''}", RECORD_BAD },
		{ "{'url':'u','status':1000,'text':''}", RECORD_BAD },
		{ "{'url':'u','age':-1,'text':''}", RECORD_BAD },
		{ "{'url':'http://x/4','ttl':-5,'text':''}", RECORD_OK },
		{ "{'text':'a'}", RECORD_BAD },
		{ "{'url':'u','json':{'a':1,}}", RECORD_BAD },
		{ "{'url':'u','source':'much-too-long-name','text':''}",
		    RECORD_BAD },
		{ "[1]", RECORD_BAD },
		{ "{'url':'http://x/5','error':'timed out'}", RECORD_OK },
		{ "", RECORD_END },
	};
	struct buf in = BUF_INIT;
	struct collect c = { .opened = 0 };
	struct record rec;
	struct record_reader *rr;
	struct mem m;
	enum record_result res;
	size_t i;
	int good = 0;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		unquote(&in, rows[i].line);
		buf_addc(&in, '\n');
	}
	m = (struct mem){ in.data, in.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (rows[i].want == RECORD_END)
			continue;
		res = record_read(rr, &rec, open_body, &c);
		if (res != rows[i].want || rr->line != (long long)i + 1)
			printf("# line %lld: %s\n", rr->line, rr->why);
		CHECK_AT(i, res == rows[i].want);
		CHECK_AT(i, rr->line == (long long)i + 1);
		CHECK_AT(i, (res == RECORD_BAD) == (rr->why[0] != '\0'));
		if (res == RECORD_OK) {
			good++;
			CHECK_AT(i, strncmp(rec.url, "http://x/", 9) == 0);
			CHECK_AT(i, rec.url[9] == '0' + good);
		}
		record_free(&rec);
	}
	CHECK(record_read(rr, &rec, open_body, &c) == RECORD_END);
	CHECK(record_read(rr, &rec, open_body, &c) == RECORD_END);
	record_reader_free(rr);
	buf_free(&in);
	buf_free(&c.body);
}

static enum record_result
read_one(const char *input, struct record *rec, struct collect *c,
    long long *line)
{
	struct buf in = BUF_INIT;
	struct record_reader *rr;
	struct mem m;
	enum record_result res;

	unquote(&in, input);
	m = (struct mem){ buf_cstr(&in), in.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	buf_reset(&c->body);
	res = record_read(rr, rec, open_body, c);
	*line = rr->line;
	record_reader_free(rr);
	buf_free(&in);
	return res;
}

static void
decoded_fields(void)
{
	struct collect c = { .opened = 0 };
	struct record rec;
	long long line;

	CHECK(read_one("{'url':'u','error':'boom'}", &rec, &c, &line) ==
	    RECORD_OK);
	CHECK(strcmp(rec.error, "boom") == 0 && rec.body == RECORD_NO_BODY);
	CHECK(c.opened == 0 && rec.has == 0 && line == 1);
	record_free(&rec);
	CHECK(read_one("\n\n{'ttl':-5,'url':'u','text':'t'}", &rec, &c,
	    &line) == RECORD_OK);
	CHECK(rec.ttl == -5 && rec.has == HAS_TTL && line == 3);
	CHECK(strcmp(buf_cstr(&c.body), "t") == 0);
	record_free(&rec);
	CHECK(read_one("{'url':'u','headers':{'A':['1','2'],'b':' 3 ','c':[]},"
	    "'text':''}", &rec, &c, &line) == RECORD_OK);
	CHECK(strcmp(buf_cstr(&rec.headers), "A: 1\r\nA: 2\r\nb: 3\r\n") == 0);
	record_free(&rec);
	CHECK(read_one("", &rec, &c, &line) == RECORD_END && line == 0);
	CHECK(read_one("\n \n", &rec, &c, &line) == RECORD_END);
	c.fail = 1;
	CHECK(read_one("{'url':'u','text':'t'}", &rec, &c, &line) ==
	    RECORD_SINK);
	record_free(&rec);
	buf_free(&c.body);
}

/*
 * RFC 9110 section 5.5 allows obs-text (bytes 0x80 to 0xFF) in field
 * values: whatever record_write_head writes, record_read must accept.
 */
static void
header_obs_text_round_trips(void)
{
	struct record rec, got;
	struct buf line = BUF_INIT;
	struct record_reader *rr;
	struct mem m;
	enum record_result res;

	sample(&rec, "text/plain", 2);
	buf_adds(&rec.headers, "Content-Disposition: attachment; "
	    "filename=\"caf\xE9\"\r\n");
	encode(&line, &rec, RECORD_TEXT, "hi", 2);
	m = (struct mem){ line.data, line.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	res = record_read(rr, &got, NULL, NULL);
	if (res != RECORD_OK)
		printf("# %s\n", rr->why);
	record_free(&got);
	record_reader_free(rr);
	buf_free(&rec.headers);
	buf_free(&line);
	CHECK(res == RECORD_OK);
}

/*
 * A response a redirect led to names the URL that gave it, after url,
 * and reads back; a record without one has none.
 */
static void
effective_url_round_trips(void)
{
	static const char head[] =
	    "{\"url\":\"http://example.com/a?b=\\\"1\\\"\","
	    "\"effective_url\":\"http://other.example/b\",\"method\":";
	struct collect c = { .opened = 0 };
	struct record rec, got;
	struct buf line = BUF_INIT, long_url = BUF_INIT;
	struct record_reader *rr;
	struct mem m;
	long long n;

	sample(&rec, "text/plain", 2);
	rec.effective_url = (char *)"http://other.example/b";
	encode(&line, &rec, RECORD_TEXT, "hi", 2);
	CHECK(strncmp(line.data, head, strlen(head)) == 0);
	m = (struct mem){ line.data, line.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	CHECK(record_read(rr, &got, open_body, &c) == RECORD_OK);
	CHECK(got.effective_url != NULL &&
	    strcmp(got.effective_url, "http://other.example/b") == 0);
	record_free(&got);
	record_reader_free(rr);
	buf_free(&rec.headers);
	CHECK(read_one("{'url':'u','text':''}", &got, &c, &n) == RECORD_OK);
	CHECK(got.effective_url == NULL);
	record_free(&got);
	CHECK(read_one("{'url':'u','effective_url':1,'text':''}", &got, &c,
	    &n) == RECORD_BAD);
	record_free(&got);
	buf_adds(&long_url, "{'url':'u','effective_url':'http://x/");
	for (n = 0; n < RECORD_MAX_URL; n++)
		buf_addc(&long_url, 'a');
	buf_adds(&long_url, "','text':''}");
	CHECK(read_one(buf_cstr(&long_url), &got, &c, &n) == RECORD_BAD);
	record_free(&got);
	buf_free(&long_url);
	buf_free(&line);
	buf_free(&c.body);
}

/*
 * JSON is UTF-8: a URL's bytes that are not are percent-encoded, as a
 * key's are; other text that is not (an error quoting a header) is
 * taken as ISO-8859-1. The line reads back.
 */
static void
writes_only_utf8(void)
{
	static const char head[] = "{\"url\":\"http://x/a%FF\xC3\xA9\","
	    "\"effective_url\":\"http://y/%C3\",\"method\":";
	struct collect c = { .opened = 0 };
	struct record rec, got;
	struct buf line = BUF_INIT;
	struct record_reader *rr;
	struct mem m;

	sample(&rec, "text/plain", 0);
	rec.url = (char *)"http://x/a\xFF\xC3\xA9";
	rec.effective_url = (char *)"http://y/\xC3";
	rec.error = (char *)"bad \xE9\xFF";
	encode(&line, &rec, RECORD_NO_BODY, "", 0);
	CHECK(strncmp(line.data, head, strlen(head)) == 0);
	CHECK(strstr(line.data, "\"error\":\"bad \xC3\xA9\xC3\xBF\"}") != NULL);
	m = (struct mem){ line.data, line.len };
	rr = record_reader_new((struct source){ mem_read, &m });
	CHECK(record_read(rr, &got, open_body, &c) == RECORD_OK);
	CHECK(got.url != NULL && strcmp(got.url, "http://x/a%FF\xC3\xA9") == 0);
	record_free(&got);
	record_reader_free(rr);
	buf_free(&rec.headers);
	buf_free(&line);
	buf_free(&c.body);
}

/* A text body read in pieces: a character cut by a piece's end stays whole. */
static void
text_split_across_reads(void)
{
	struct record rec;
	struct buf line = BUF_INIT;
	size_t n = IO_BUFSIZE + 1;
	char *body = malloc(n);

	memset(body, 'a', n - 2);
	memcpy(body + n - 2, "\xC3\xA9", 2);	/* é across the first read */
	sample(&rec, "text/plain", (long long)n);
	CHECK(encode(&line, &rec, RECORD_TEXT, body, n) == 0);
	CHECK(strstr(line.data, "aa\xC3\xA9\"}\n") != NULL);
	CHECK(strstr(line.data, "\xC3\x83") == NULL);	/* no Ã: not twice */
	buf_free(&rec.headers);
	buf_free(&line);
	free(body);
}

/*
 * A lone surrogate is not JSON (json.c): a body holding one is taken as
 * text, never as a JSON value a reader would refuse; a record carrying
 * one, in its json body or any string member, is refused, saying so.
 */
static void
lone_surrogates(void)
{
	static const char body[] = "{\"restaurants\":[{\"name\":\"n\\ud800\"}]}";
	static const struct { const char *line, *why; } rows[] = {
		{ "{'url':'u','json':{'restaurants':[{'name':'n\\ud800'}]}}",
		    "body: lone high surrogate \\uD800" },
		{ "{'url':'u','json':{'\\udc00':1}}",
		    "body: lone low surrogate \\uDC00" },
		{ "{'url':'u','json':['\\ud83d\\ude00','\\ud83d']}",
		    "body: lone high surrogate \\uD83D" },
		{ "{'url':'u','text':'\\ud800'}",
		    "body: lone high surrogate \\uD800" },
	};
	struct collect c = { .opened = 0 };
	struct record_reader *rr;
	struct record rec;
	struct buf in = BUF_INIT;
	struct mem m;
	enum record_result res;
	size_t i;

	CHECK(classify("application/json", body, strlen(body)) ==
	    RECORD_TEXT);
	CHECK(classify(NULL, body, strlen(body)) == RECORD_TEXT);
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&in);
		unquote(&in, rows[i].line);
		m = (struct mem){ in.data, in.len };
		rr = record_reader_new((struct source){ mem_read, &m });
		res = record_read(rr, &rec, open_body, &c);
		if (strcmp(rr->why, rows[i].why) != 0)
			printf("# why \"%s\"\n", rr->why);
		CHECK_AT(i, res == RECORD_BAD);
		CHECK_AT(i, strcmp(rr->why, rows[i].why) == 0);
		record_free(&rec);
		record_reader_free(rr);
	}
	buf_free(&in);
	buf_free(&c.body);
}

static const struct unit_test tests[] = {
	TEST(classifies),
	TEST(writes_exact_line),
	TEST(round_trips),
	TEST(decodes_lines),
	TEST(decoded_fields),
	TEST(header_obs_text_round_trips),
	TEST(effective_url_round_trips),
	TEST(writes_only_utf8),
	TEST(text_split_across_reads),
	TEST(lone_surrogates),
};

UNIT_MAIN(tests)
