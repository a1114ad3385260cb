/*
 * A response as the shared tier keeps it: see shared_entry.h.
 *
 *	relay-shared 1\n
 *	<status> <request time> <response time>\n
 *	<URL length> <fields length> <request fields length> <body length>\n
 *	URL, fields, request fields, body
 *
 * Numbers in decimal, times in seconds since the epoch, fields as
 * "Name: value\r\n" lines.
 */
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "http/headers.h"
#include "tier/shared_entry.h"

#define MAGIC		"relay-shared 1\n"
#define TIME_MAX	(1LL << 40)	/* far beyond any real date */

void
shared_entry_encode(struct buf *out, const struct cache_response *r,
    const void *body, size_t body_len)
{
	buf_adds(out, MAGIC);
	buf_printf(out, "%d %lld %lld\n%zu %zu %zu %zu\n", r->status,
	    (long long)r->request_time, (long long)r->response_time,
	    strlen(r->url), strlen(r->headers), strlen(r->request_headers),
	    body_len);
	buf_adds(out, r->url);
	buf_adds(out, r->headers);
	buf_adds(out, r->request_headers);
	buf_add(out, body, body_len);
}

/* The next number, ending in end; -1 if there is none in range. */
static int
next_number(const char **p, const char *limit, char end, long long min,
    long long max, long long *v)
{
	const char *stop = memchr(*p, end, (size_t)(limit - *p));
	char digits[24];
	size_t n;

	if (stop == NULL || (n = (size_t)(stop - *p)) == 0 ||
	    n >= sizeof digits)
		return -1;
	memcpy(digits, *p, n);
	digits[n] = '\0';
	if (num_parse(digits, min, max, v) < 0)
		return -1;
	*p = stop + 1;
	return 0;
}

/* Copies n bytes of fields into out, each field checked; -1 if bad. */
static int
fields_copy(struct buf *out, const char *p, size_t n)
{
	const char *end = p + n, *colon, *eol;

	while (p < end) {
		if ((eol = memchr(p, '\r', (size_t)(end - p))) == NULL ||
		    eol + 1 >= end || eol[1] != '\n' ||
		    (colon = memchr(p, ':', (size_t)(eol - p))) == NULL ||
		    headers_add(out, p, (size_t)(colon - p), colon + 1,
		    (size_t)(eol - colon - 1)) < 0)
			return -1;
		p = eol + 2;
	}
	buf_cstr(out);
	return 0;
}

/*
 * Decodes what Redis holds for url (NULL: any) into e. Returns -1 with
 * the reason if it is not such an entry, or another URL's.
 */
int
shared_entry_decode(const char *p, size_t n, const char *url,
    struct shared_entry *e, const char **why)
{
	const char *end = p + n;
	long long status, req_t, resp_t, len[4];
	size_t i, left;

	memset(e, 0, sizeof *e);
	*why = "not an entry of this relay";
	if (n < strlen(MAGIC) || memcmp(p, MAGIC, strlen(MAGIC)) != 0)
		return -1;
	p += strlen(MAGIC);
	*why = "a bad head";
	/* three digits (RFC 9110 15); which are kept is the store's rule */
	if (next_number(&p, end, ' ', 0, 999, &status) < 0 ||
	    next_number(&p, end, ' ', 0, TIME_MAX, &req_t) < 0 ||
	    next_number(&p, end, '\n', req_t, TIME_MAX, &resp_t) < 0)
		return -1;
	for (i = 0; i < 4; i++)
		if (next_number(&p, end, i < 3 ? ' ' : '\n', 0,
		    (long long)n, &len[i]) < 0)
			return -1;
	left = (size_t)(end - p);
	*why = "lengths that are not its size";
	if ((size_t)len[0] > left || (size_t)len[1] > left - (size_t)len[0] ||
	    (size_t)len[2] > left - (size_t)len[0] - (size_t)len[1] ||
	    (size_t)len[3] != left - (size_t)len[0] - (size_t)len[1] -
	    (size_t)len[2])
		return -1;
	*why = "another URL's entry";
	if (url != NULL && ((size_t)len[0] != strlen(url) ||
	    memcmp(p, url, strlen(url)) != 0))
		return -1;
	buf_add(&e->url, p, (size_t)len[0]);
	p += len[0];
	*why = "bad fields";
	if (fields_copy(&e->headers, p, (size_t)len[1]) < 0 ||
	    fields_copy(&e->request_headers, p + len[1], (size_t)len[2]) < 0) {
		shared_entry_free(e);
		return -1;
	}
	p += len[1] + len[2];
	e->r.url = buf_cstr(&e->url);
	e->r.status = (int)status;
	e->r.headers = buf_cstr(&e->headers);
	e->r.request_headers = buf_cstr(&e->request_headers);
	e->r.request_time = (time_t)req_t;
	e->r.response_time = (time_t)resp_t;
	e->body = p;
	e->body_len = (size_t)len[3];
	*why = NULL;
	return 0;
}

void
shared_entry_free(struct shared_entry *e)
{
	buf_free(&e->url);
	buf_free(&e->headers);
	buf_free(&e->request_headers);
	memset(e, 0, sizeof *e);
}
