/*
 * Tests the server side's request parser and chunked decoder, the
 * heads a relay builds (lib/http/http.h), the request-target normaliser
 * and the path-segment encoder (lib/http/target.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/gzip.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/target.h"
#include "unit.h"

#define CHECK_AT(i, cond) do {						\
	if (!(cond))							\
		printf("# row %zu\n", (size_t)(i));			\
	CHECK(cond);							\
} while (0)

static ssize_t
parse(const char *s, struct http_request *r)
{
	const char *why;

	return http_parse_request(s, strlen(s), r, &why);
}

static void
parses_a_request(void)
{
	static const char req[] = "GET /a?b=c HTTP/1.1\r\nHost: x\r\n"
	    "Accept:  text/plain  \r\n\r\nGET /next";
	struct http_request r = { 0 };
	struct header h;

	CHECK(parse(req, &r) == (ssize_t)strlen(req) - 9);
	CHECK(strcmp(r.method, "GET") == 0);
	CHECK(strcmp(r.target, "/a?b=c") == 0);
	CHECK(r.minor == 1 && r.keep_alive && r.body == HTTP_BODY_NONE);
	CHECK(headers_get(buf_cstr(&r.fields), "accept", &h));
	CHECK(h.value_len == 10 && memcmp(h.value, "text/plain", 10) == 0);
	http_request_free(&r);
}

/* RFC 9110 section 5.3: a field on several lines is read as one. */
static void
combines_repeated_fields(void)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n"
	    "Accept-Language: en\r\nCookie: a=1\r\nX-Key: k\r\n"
	    "accept-language: evil\r\nCookie: b=2\r\n\r\n";
	struct http_request r = { 0 };

	CHECK(parse(req, &r) == (ssize_t)strlen(req));
	CHECK(strcmp(buf_cstr(&r.fields), "Host: x\r\n"
	    "Accept-Language: en, evil\r\nCookie: a=1; b=2\r\n"
	    "X-Key: k\r\n") == 0);
	http_request_free(&r);
}

static void
waits_for_the_whole_head(void)
{
	static const char *const rows[] = {
		"", "GET", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: x\r\n",
		"\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r",
	};
	struct http_request r = { 0 };
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, parse(rows[i], &r) == 0);
	http_request_free(&r);
}

static void
connection_and_framing(void)
{
	static const struct {
		const char	*req;
		int		 keep_alive;
		enum http_body	 body;
		long long	 length;
	} rows[] = {
		{ "GET / HTTP/1.0\r\n\r\n", 0, HTTP_BODY_NONE, 0 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1,
		    HTTP_BODY_NONE, 0 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0,
		    HTTP_BODY_NONE, 0 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n",
		    0, HTTP_BODY_NONE, 0 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 1,
		    HTTP_BODY_LENGTH, 12 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 1,
		    HTTP_BODY_NONE, 0 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		    "\r\n", 1, HTTP_BODY_CHUNKED, 0 },
		{ "\r\n\nGET / HTTP/1.1\nHost: x\n\n", 1, HTTP_BODY_NONE, 0 },
	};
	struct http_request r = { 0 };
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		CHECK_AT(i, parse(rows[i].req, &r) > 0);
		CHECK_AT(i, r.keep_alive == rows[i].keep_alive);
		CHECK_AT(i, r.body == rows[i].body);
		CHECK_AT(i, r.body != HTTP_BODY_LENGTH ||
		    r.content_length == rows[i].length);
	}
	http_request_free(&r);
}

static void
refuses_bad_requests(void)
{
	static const struct {
		const char	*req;
		int		 status;
	} rows[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 400 },		/* no Host */
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400 },
		{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400 },
		{ "GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
		{ "GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\rHost: x\r\n\r\n", 400 },	/* bare CR */
		{ "GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nA: \x7f\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
		    "Content-Length: 3\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n",
		    400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		    400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
		    "99999999999999999999\r\n\r\n", 400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
		    "\r\n", 501 },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417 },
		{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505 },
		{ "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400 },
		{ "GET / FTP/1.1\r\nHost: x\r\n\r\n", 400 },
		{ "GETTINGLONGERTHANANYMETHOD / HTTP/1.1\r\nHost: x\r\n\r\n",
		    501 },
		{ "G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
	};
	struct http_request r = { 0 };
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, parse(rows[i].req, &r) == -rows[i].status);
	http_request_free(&r);
}

static void
enforces_limits(void)
{
	struct http_request r = { 0 };
	struct buf b = BUF_INIT;
	int i;

	buf_adds(&b, "GET /");
	for (i = 0; i < HTTP_MAX_TARGET + 100; i++)
		buf_addc(&b, 'a');
	CHECK(parse(buf_cstr(&b), &r) == -414);	/* before the line ends */
	buf_adds(&b, " HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(parse(buf_cstr(&b), &r) == -414);
	buf_reset(&b);
	buf_adds(&b, "GET / HTTP/1.1\r\nHost: x\r\n");
	for (i = 0; i < HTTP_MAX_FIELDS; i++)
		buf_printf(&b, "X-%d: y\r\n", i);
	CHECK(parse(buf_cstr(&b), &r) == -431);
	buf_reset(&b);
	for (i = 0; i < HTTP_MAX_HEAD + 1; i++)
		buf_addc(&b, '\n');
	CHECK(parse(buf_cstr(&b), &r) == -400);
	buf_reset(&b);
	buf_adds(&b, "GET / HTTP/1.1\r\nHost: x\r\nBig: ");
	for (i = 0; i < HTTP_MAX_HEAD; i++)
		buf_addc(&b, 'b');
	CHECK(parse(buf_cstr(&b), &r) == -431);	/* before it ends */
	buf_adds(&b, "\r\n\r\n");
	CHECK(parse(buf_cstr(&b), &r) == -431);
	buf_free(&b);
	http_request_free(&r);
}

/*
 * Feeds a chunked body one byte at a time, then all at once; expect is
 * the decoded body, or NULL when the input is malformed or incomplete.
 */
static int
dechunk(const char *in, const char *expect, size_t expect_consumed)
{
	struct http_chunked c;
	struct buf out = BUF_INIT;
	size_t i, n = strlen(in);
	ssize_t k = 0;
	int ok;

	memset(&c, 0, sizeof c);
	for (i = 0; i < n && !c.done && k >= 0; i++)
		k = http_dechunk(&c, in + i, 1, &out);
	if (expect == NULL)
		ok = k < 0 || !c.done;
	else
		ok = k == 1 && c.done && i == expect_consumed &&
		    out.len == strlen(expect) &&
		    (out.len == 0 || memcmp(out.data, expect, out.len) == 0);
	memset(&c, 0, sizeof c);
	buf_reset(&out);
	k = http_dechunk(&c, in, n, &out);
	if (expect == NULL)
		ok &= k < 0 || !c.done;
	else
		ok &= k == (ssize_t)expect_consumed && c.done;
	buf_free(&out);
	return ok;
}

static void
dechunks(void)
{
	static const char ok1[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nNEXT";
	static const char ok2[] = "A\nabcdefghij\n0\nTrailer: x\n\n";

	CHECK(dechunk(ok1, "hello world", sizeof ok1 - 5));
	CHECK(dechunk(ok2, "abcdefghij", sizeof ok2 - 1));
	CHECK(dechunk("0\r\n\r\n", "", 5));
	CHECK(dechunk("x\r\n", NULL, 0));
	CHECK(dechunk("\r\n", NULL, 0));
	CHECK(dechunk("5\r\nhelloXX", NULL, 0));
	CHECK(dechunk("1000000000000000\r\n", NULL, 0));
}

static void
normalises_targets(void)
{
	static const char *const rows[][2] = {
		{ "/", "/" },
		{ "/restaurant", "/restaurant" },
		{ "/a/b?x=1&y=%2F", "/a/b?x=1&y=%2F" },
		{ "/a/./b", "/a/b" },
		{ "/a/../b", "/b" },
		{ "/a/b/..", "/a/" },
		{ "/a/%2e%2E/b", "/b" },
		{ "/a/%2e/b", "/a/b" },
		{ "/%7euser", "/~user" },	/* unreserved: decoded */
		{ "/%5Frelay/%41%2d%30", "/_relay/A-0" },
		{ "/a%20b?q=%3f%26", "/a%20b?q=%3F%26" },	/* others kept */
		{ "/@evil.example/x", "/@evil.example/x" },
		{ "/a//b", "/a//b" },
		{ "/.", "/" },
	};
	const char *why;
	char *out;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		out = target_normalize(rows[i][0], &why);
		CHECK_AT(i, out != NULL);
		CHECK_AT(i, strcmp(out, rows[i][1]) == 0);
		free(out);
	}
}

static void
refuses_targets(void)
{
	static const char *const rows[] = {
		"http://evil.example/", "*", "", "//evil.example/x",
		"/..", "/../x", "/a/../../x", "/%2e%2e/x", "/.%2E/x",
		"/a%2fb", "/a%2Fb", "/a%5cb", "/a\\b", "/a%00", "/a%0d%0a",
		"/a?x=%0a", "/a%", "/a%4", "/a%zz", "/a#frag",
		"/.//b", "/a/..//b", "/a/%2e%2e//evil.example/x",
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		why = NULL;
		CHECK_AT(i, target_normalize(rows[i], &why) == NULL);
		CHECK_AT(i, why != NULL);
	}
}

/* Text from elsewhere as one path segment, or refused. */
static void
encodes_segments(void)
{
	static const char *const rows[][2] = {
		{ "bikupan", "bikupan" },
		{ "A-z_0.9~", "A-z_0.9~" },
		{ "caf\xc3\xa9 x", "caf%C3%A9%20x" },
		{ "a?b=c#d", "a%3Fb%3Dc%23d" },
		{ "%2e%2e", "%252e%252e" },	/* the text, not a dot segment */
		{ "...", "..." },
		{ "$(x)`y`*", "%24%28x%29%60y%60%2A" },
	};
	static const char *const refused[] = {
		"", ".", "..", "a/b", "../../admin/x", "/", "a\\b", "a\nb",
		"\x7f",
	};
	struct buf out = BUF_INIT;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&out);
		why = target_add_segment(&out, rows[i][0], strlen(rows[i][0]));
		CHECK_AT(i, why == NULL);
		CHECK_AT(i, strcmp(buf_cstr(&out), rows[i][1]) == 0);
	}
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		buf_reset(&out);
		why = target_add_segment(&out, refused[i], strlen(refused[i]));
		CHECK_AT(i, why != NULL);
		CHECK_AT(i, out.len == 0);
	}
	/* a NUL would end the text where C reads it: "plain" */
	why = target_add_segment(&out, "plain\0evil", 10);
	CHECK(why != NULL && strcmp(why, "a control character in a path "
	    "segment") == 0 && out.len == 0);
	CHECK(strcmp(target_add_segment(&out, "a\\b", 3), "a backslash in a "
	    "path segment") == 0);
	buf_free(&out);
}

/* RFC 9110 section 13.2.2, with weak comparison for If-None-Match. */
static void
conditional_requests(void)
{
	static const char lm[] = "Tue, 01 Dec 2026 10:00:00 GMT";

	CHECK(!http_not_modified("", "\"a\"", lm));
	CHECK(http_not_modified("if-none-match: \"a\"\r\n", "\"a\"", NULL));
	CHECK(http_not_modified("if-none-match: \"x\", W/\"a\"\r\n",
	    "\"a\"", NULL));
	CHECK(http_not_modified("if-none-match: \"a\"\r\n", "W/\"a\"",
	    NULL));
	CHECK(http_not_modified("if-none-match: *\r\n", "\"b\"", NULL));
	/* "*": any current response, one without validators too */
	CHECK(http_not_modified("if-none-match: *\r\n", NULL, NULL));
	CHECK(!http_not_modified("if-none-match: \"b\"\r\n", NULL, NULL));
	CHECK(!http_not_modified("if-none-match: \"ab\"\r\n", "\"a\"",
	    NULL));
	CHECK(!http_not_modified("if-none-match: \"a\"\r\n", NULL, lm));
	/* If-None-Match decides alone when present. */
	CHECK(!http_not_modified("if-none-match: \"x\"\r\n"
	    "if-modified-since: Tue, 01 Dec 2026 11:00:00 GMT\r\n", "\"a\"",
	    lm));
	CHECK(http_not_modified("if-modified-since: "
	    "Tue, 01 Dec 2026 10:00:00 GMT\r\n", NULL, lm));
	CHECK(!http_not_modified("if-modified-since: "
	    "Tue, 01 Dec 2026 09:59:59 GMT\r\n", NULL, lm));
	CHECK(!http_not_modified("if-modified-since: yesterday\r\n", NULL,
	    lm));
	CHECK(!http_not_modified("if-modified-since: "
	    "Tue, 01 Dec 2026 10:00:00 GMT\r\n", NULL, NULL));
}

/* One head built for h: its text, and its framing in *framing. */
static char *
head(struct http_head h, enum http_framing *framing)
{
	struct buf out = BUF_INIT;

	h.now = 1796130000;	/* Tue, 01 Dec 2026 13:00:00 GMT */
	*framing = http_response_head(&out, &h);
	return (char *)buf_cstr(&out);
}

static void
builds_response_heads(void)
{
	enum http_framing f;
	char *s;

	s = head((struct http_head){ .status = 200, .fields =
	    "Content-Type: text/plain\r\nConnection: x-hop\r\nX-Hop: 1\r\n"
	    "Age: 7\r\nKeep-Alive: 5\r\n", .cache_status = "relay; hit",
	    .age = 30, .length = 5, .minor = 1 }, &f);
	CHECK(f == HTTP_FRAME_LENGTH);
	CHECK(strcmp(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Date: Tue, 01 Dec 2026 13:00:00 GMT\r\nAge: 30\r\n"
	    "Via: 1.1 relay\r\nCache-Status: relay; hit\r\n"
	    "Content-Length: 5\r\n\r\n") == 0);
	free(s);
	/* Their Age and Date pass when we have no age of our own. */
	s = head((struct http_head){ .status = 200, .fields =
	    "Date: Mon, 30 Nov 2026 00:00:00 GMT\r\nAge: 7\r\n",
	    .cache_status = "relay; fwd=miss", .age = -1, .length = -1,
	    .minor = 1 }, &f);
	CHECK(f == HTTP_FRAME_CHUNKED);
	CHECK(strstr(s, "Age: 7\r\n") != NULL);
	CHECK(strstr(s, "Date: Mon, 30 Nov 2026") != NULL);
	CHECK(strstr(s, "Date: Tue") == NULL);
	CHECK(strstr(s, "Transfer-Encoding: chunked\r\n\r\n") != NULL);
	free(s);
	/* HTTP/1.0: no chunks; the end of the connection ends the body. */
	s = head((struct http_head){ .status = 200, .fields = "",
	    .cache_status = "x", .age = -1, .length = -1 }, &f);
	CHECK(f == HTTP_FRAME_CLOSE);
	CHECK(strstr(s, "Connection: close\r\n\r\n") != NULL);
	CHECK(strstr(s, "chunked") == NULL);
	free(s);
	s = head((struct http_head){ .status = 200, .fields = "",
	    .cache_status = "x", .age = -1, .length = 3 }, &f);
	CHECK(f == HTTP_FRAME_LENGTH);
	CHECK(strstr(s, "Connection: keep-alive\r\n\r\n") != NULL);
	free(s);
	/* No body: 304, 204 and HEAD of unknown length are not framed. */
	s = head((struct http_head){ .status = 304, .fields = "",
	    .cache_status = "x", .age = -1, .length = 9, .minor = 1 }, &f);
	CHECK(f == HTTP_FRAME_LENGTH && strstr(s, "Content-Length") == NULL);
	free(s);
	s = head((struct http_head){ .status = 200, .fields = "",
	    .cache_status = "x", .age = -1, .length = -1, .minor = 1,
	    .head_only = 1, .close = 1 }, &f);
	CHECK(f == HTTP_FRAME_LENGTH && strstr(s, "chunked") == NULL);
	CHECK(strstr(s, "Connection: close\r\n") != NULL);
	free(s);
	s = head((struct http_head){ .status = 200, .fields = "",
	    .cache_status = "x", .age = -1, .length = 4, .minor = 1,
	    .head_only = 1 }, &f);
	CHECK(strstr(s, "Content-Length: 4\r\n") != NULL);
	free(s);
}

static void
builds_forwarded_fields(void)
{
	struct buf out = BUF_INIT;

	http_forward_fields(&out, "Host: a\r\nAccept: */*\r\n"
	    "If-None-Match: \"x\"\r\nRange: bytes=0-1\r\nExpect: 100-continue\r\n"
	    "Connection: close, x-private\r\nX-Private: 1\r\nVia: 1.0 other\r\n"
	    "Authorization: Token t\r\n");
	CHECK(strcmp(buf_cstr(&out), "Accept: */*\r\nAuthorization: Token t\r\n"
	    "Via: 1.1 relay\r\n") == 0);
	buf_free(&out);
	CHECK(http_content_length("Content-Length: 42\r\n") == 42);
	CHECK(http_content_length("content-type: x\r\n") == -1);
	CHECK(http_content_length("Content-Length: -1\r\n") == -1);
	CHECK(http_content_length("Content-Length: 99999999999999999999999\r\n")
	    == -1);
}

/* RFC 9110 section 12.5.3: gzip named or "*", its q-value not 0. */
static void
accept_encoding(void)
{
	CHECK(gzip_accepted("Accept-Encoding: gzip\r\n"));
	CHECK(gzip_accepted("Accept-Encoding: br, GZIP;q=0.5\r\n"));
	CHECK(gzip_accepted("Accept-Encoding: *\r\n"));
	CHECK(gzip_accepted("Accept-Encoding: deflate, gzip ; q=1\r\n"));
	CHECK(!gzip_accepted(""));
	CHECK(!gzip_accepted("Accept-Encoding: br, deflate\r\n"));
	CHECK(!gzip_accepted("Accept-Encoding: gzip;q=0\r\n"));
	CHECK(!gzip_accepted("Accept-Encoding: gzip; q=0.000, br\r\n"));
	CHECK(!gzip_accepted("Accept-Encoding: x-gzip2\r\n"));
}

static const struct unit_test tests[] = {
	TEST(accept_encoding),
	TEST(parses_a_request),
	TEST(combines_repeated_fields),
	TEST(conditional_requests),
	TEST(builds_response_heads),
	TEST(builds_forwarded_fields),
	TEST(waits_for_the_whole_head),
	TEST(connection_and_framing),
	TEST(refuses_bad_requests),
	TEST(enforces_limits),
	TEST(dechunks),
	TEST(normalises_targets),
	TEST(refuses_targets),
	TEST(encodes_segments),
};

UNIT_MAIN(tests)
