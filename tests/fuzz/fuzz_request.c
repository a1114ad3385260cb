/*
 * libFuzzer harness for the server side's request head parser and
 * chunked-body decoder (lib/http/http.h): no over-reads, sane results.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond))							\
		failed(__LINE__, #cond);				\
} while (0)

static _Noreturn void
failed(int line, const char *cond)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, line, cond);
	abort();
}

static int
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' &&
	    (c | 0x20) <= 'z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* The statuses http_parse_request documents. */
static void
check_refusal(ssize_t rc, const char *why)
{
	CHECK(rc == -400 || rc == -414 || rc == -417 || rc == -431 ||
	    rc == -501 || rc == -505);
	CHECK(why != NULL && why[0] != '\0');
}

static void
check_head(const char *p, size_t n, ssize_t rc, struct http_request *r)
{
	const char *fields;
	size_t i;

	CHECK((size_t)rc <= n && rc <= HTTP_MAX_HEAD && p[rc - 1] == '\n');
	CHECK(r->method[0] != '\0');
	for (i = 0; r->method[i] != '\0'; i++)
		CHECK(i < sizeof r->method - 1 &&
		    is_tchar((unsigned char)r->method[i]));
	CHECK(r->target != NULL && r->target[0] != '\0' &&
	    r->target[0] != ' ');
	CHECK(strlen(r->target) <= HTTP_MAX_TARGET);
	/* HTTP/1.2 and up are taken as 1.1 would be (RFC 9110 2.5). */
	CHECK(r->minor >= 0 && r->minor <= 9);
	fields = buf_cstr(&r->fields);
	CHECK(strlen(fields) == r->fields.len);
	CHECK(r->fields.len == 0 || (r->fields.len >= 2 &&
	    memcmp(fields + r->fields.len - 2, "\r\n", 2) == 0));
	CHECK(r->content_length >= 0);
	CHECK(r->body == HTTP_BODY_NONE || r->body == HTTP_BODY_CHUNKED ||
	    (r->body == HTTP_BODY_LENGTH && r->content_length > 0));
	CHECK(r->body != HTTP_BODY_CHUNKED || r->minor >= 1);
}

/*
 * Decodes in[0..n) in one call and again in two pieces split at k;
 * the decoder must consume within bounds and agree with itself.
 */
static void
check_dechunk(const char *in, size_t n, size_t k)
{
	struct http_chunked whole = { 0 }, split = { 0 };
	struct buf a = BUF_INIT, b = BUF_INIT;
	ssize_t w, s1, s2 = 0;

	w = http_dechunk(&whole, in, n, &a);
	CHECK(w == -1 || (w >= 0 && (size_t)w <= n));
	CHECK(w == -1 || (size_t)w == n || whole.done);
	CHECK(w == -1 || a.len <= (size_t)w);

	s1 = http_dechunk(&split, in, k, &b);
	CHECK(s1 == -1 || (s1 >= 0 && (size_t)s1 <= k));
	CHECK(s1 == -1 || (size_t)s1 == k || split.done);
	if (s1 >= 0) {
		s2 = http_dechunk(&split, in + k, n - k, &b);
		CHECK(s2 == -1 || (s2 >= 0 && (size_t)s2 <= n - k));
		CHECK(s1 < (ssize_t)k || s2 == -1 ||
		    (size_t)s2 == n - k || split.done);
	}
	/* Where the whole decode succeeded, the split one must match. */
	if (w >= 0) {
		CHECK(s1 >= 0 && s2 >= 0);
		CHECK((size_t)(s1 + s2) == (size_t)w);
		CHECK(split.done == whole.done);
		CHECK(a.len == b.len && (a.len == 0 ||
		    memcmp(a.data, b.data, a.len) == 0));
	} else {
		CHECK(s1 == -1 || s2 == -1);
	}
	buf_free(&a);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r = { 0 };
	const char *why = NULL;
	char *p;
	size_t rest;
	ssize_t rc;

	/* Exactly size bytes and no NUL after them, for ASan to watch. */
	p = malloc(size);
	if (p == NULL && size > 0)
		return 0;
	if (size > 0)
		memcpy(p, data, size);
	rc = http_parse_request(p, size, &r, &why);
	if (rc < 0)
		check_refusal(rc, why);
	if (rc > 0) {
		check_head(p, size, rc, &r);
		rest = size - (size_t)rc;
		check_dechunk(p + rc, rest,
		    rest > 0 ? (unsigned char)p[size - 1] % (rest + 1) : 0);
	}
	http_request_free(&r);
	free(p);
	return 0;
}
