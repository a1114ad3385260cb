/*
 * HTTP/1.1 protocol tables and message helpers shared by the programs
 * (RFC 9110, RFC 9112): reason phrases, and the server side's request
 * head parser and chunked-body decoder, pure and bounded for fuzzing.
 */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/num.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/httpdate.h"
#include "http/json.h"

struct reason {
	int		 status;
	const char	*text;
};

/* RFC 9110 section 15 (and RFC 8297's 103), sorted by status for bsearch. */
static const struct reason reasons[] = {
	{ 100, "Continue" }, { 101, "Switching Protocols" },
	{ 102, "Processing" }, { 103, "Early Hints" },
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
	{ 205, "Reset Content" }, { 206, "Partial Content" },
	{ 300, "Multiple Choices" }, { 301, "Moved Permanently" },
	{ 302, "Found" }, { 303, "See Other" }, { 304, "Not Modified" },
	{ 305, "Use Proxy" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" }, { 400, "Bad Request" },
	{ 401, "Unauthorized" }, { 402, "Payment Required" },
	{ 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 406, "Not Acceptable" },
	{ 407, "Proxy Authentication Required" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
	{ 412, "Precondition Failed" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 416, "Range Not Satisfiable" }, { 417, "Expectation Failed" },
	{ 421, "Misdirected Request" }, { 422, "Unprocessable Content" },
	{ 426, "Upgrade Required" }, { 428, "Precondition Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	{ 507, "Insufficient Storage" },	/* RFC 4918 section 11.5 */
};

static int
compare_status(const void *key, const void *elem)
{
	return *(const int *)key - ((const struct reason *)elem)->status;
}

/* The reason phrase for a status; an empty string for unknown ones. */
const char *
http_reason(int status)
{
	const struct reason *r = bsearch(&status, reasons,
	    sizeof reasons / sizeof reasons[0], sizeof reasons[0],
	    compare_status);

	return r != NULL ? r->text : "";
}

/*
 * The JSON body of an error answer (an RFC 9457 problem's members).
 * Its detail is relay's own text, but it may quote what a request
 * sent (a member's name, say): it is escaped, as every string is.
 */
void
http_error_body(struct buf *out, int status, const char *detail)
{
	buf_printf(out, "{\"status\":%d,\"error\":\"%s\"", status,
	    http_reason(status));
	if (detail != NULL) {
		buf_adds(out, ",\"detail\":");
		json_buf_string(out, detail, strlen(detail));
	}
	buf_adds(out, "}\n");
}

/*
 * The one error responder: a complete response that closes the
 * connection, with the JSON body above and any extra fields (such as
 * the Allow of a 405), or NULL. To a HEAD (head_only) the same head
 * without the body (RFC 9110 section 9.3.2). Returns the body bytes
 * written.
 */
size_t
http_error_response(struct buf *out, int status, const char *detail,
    const char *fields, int head_only)
{
	struct buf body = BUF_INIT;
	char date[HTTPDATE_LEN];
	size_t n;

	http_error_body(&body, status, detail);
	httpdate_format(time(NULL), date);
	buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nVia: 1.1 relay\r\n"
	    "%sContent-Type: application/json\r\n"
	    "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", status, http_reason(status), date,
	    fields != NULL ? fields : "", body.len);
	n = head_only ? 0 : body.len;
	buf_add(out, body.data, n);
	buf_free(&body);
	return n;
}

/* RFC 9110 section 5.6.2: tchar, the characters of a token. */
static int
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* Whether a method name is a token (RFC 9110 section 9.1) of at most 23 bytes. */
int
http_method_valid(const char *m)
{
	size_t n = strlen(m), i;

	if (n == 0 || n > HTTP_MAX_METHOD)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)m[i]))
			return 0;
	return 1;
}

/* A field value's bytes: visible, obs-text, space and tab; no CTL. */
static int
is_field_char(unsigned char c)
{
	return c == '\t' || (c >= ' ' && c != 0x7f);
}

static ssize_t
bad(const char **why, int status, const char *reason)
{
	*why = reason;
	return -status;
}

/* The end of the line at p (its LF), or NULL; a bare CR is an error. */
static const char *
line_end(const char *p, const char *end)
{
	return memchr(p, '\n', (size_t)(end - p));
}

/* The line's length without its terminator, LF or CRLF (RFC 9112 2.2). */
static size_t
line_len(const char *p, const char *lf)
{
	return (size_t)(lf - p) - (lf > p && lf[-1] == '\r');
}

/* RFC 9112 section 3: method SP request-target SP HTTP-version. */
static ssize_t
parse_request_line(const char *p, size_t n, struct http_request *r,
    const char **why)
{
	const char *end = p + n, *sp1, *sp2, *q;

	for (q = p; q < end && is_tchar((unsigned char)*q); q++)
		;
	if (q == p || q == end || *q != ' ')
		return bad(why, 400, "malformed request line");
	if ((size_t)(q - p) >= sizeof r->method)
		return bad(why, 501, "method not implemented");
	memcpy(r->method, p, (size_t)(q - p));
	r->method[q - p] = '\0';
	sp1 = q;
	for (q = sp1 + 1; q < end && *q != ' '; q++)
		if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f)
			return bad(why, 400, "invalid byte in request target");
	sp2 = q;
	if (sp2 == sp1 + 1 || sp2 == end)
		return bad(why, 400, "malformed request line");
	if ((size_t)(sp2 - sp1 - 1) > HTTP_MAX_TARGET)
		return bad(why, 414, "request target too long");
	if (end - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 ||
	    !isdigit((unsigned char)sp2[6]) || sp2[7] != '.' ||
	    !isdigit((unsigned char)sp2[8]))
		return bad(why, 400, "malformed HTTP version");
	if (sp2[6] != '1')
		return bad(why, 505, "only HTTP/1.x is served");
	r->minor = sp2[8] - '0';
	r->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	return 0;
}

/* Whether a comma-separated list value holds a token (RFC 9110 5.6.1). */
static int
list_has(const char *v, size_t n, const char *token)
{
	size_t len = strlen(token), i = 0, start;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == len && strncasecmp(v + start, token, len) == 0)
			return 1;
		while (i < n && v[i] != ',')
			i++;
	}
	return 0;
}

/*
 * RFC 9112 section 3.2 with RFC 3986 section 3.2.2: a Host value is
 * uri-host [ ":" port ], so none of its bytes is a space, a comma-list
 * of hosts, a path's or a user's (or empty: no authority).
 */
static int
host_valid(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(isalnum((unsigned char)v[i]) ||
		    strchr("-._~%!$&'()*+;=:[]", v[i]) != NULL) || v[i] == '\0')
			return 0;
	return 1;
}

struct seen {
	int	host, length, chunked, close, keep_alive;
	int	repeats;		/* a name came on two lines */
	size_t	names;
	struct { const char *p; size_t n; } name[HTTP_MAX_FIELDS];
};

/* Notes the field's name, and whether a line before had it too. */
static void
note_name(struct seen *s, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < s->names && !s->repeats; i++)
		s->repeats = s->name[i].n == n &&
		    strncasecmp(s->name[i].p, p, n) == 0;
	if (s->names < HTTP_MAX_FIELDS) {
		s->name[s->names].p = p;
		s->name[s->names++].n = n;
	}
}

/* What the framing and connection fields say (RFC 9112 sections 6, 9). */
static ssize_t
note_field(const struct header *h, struct http_request *r, struct seen *s,
    const char **why)
{
	long long v;
	size_t i;

	if (header_is(h, "host") && s->host++)
		return bad(why, 400, "more than one Host field");
	if (header_is(h, "host") && !host_valid(h->value, h->value_len))
		return bad(why, 400, "invalid Host field");
	if (header_is(h, "content-length")) {
		if (s->length++)
			return bad(why, 400, "more than one Content-Length");
		if (h->value_len == 0 || h->value_len > 15)
			return bad(why, 400, "invalid Content-Length");
		for (i = 0, v = 0; i < h->value_len; i++) {
			if (!isdigit((unsigned char)h->value[i]))
				return bad(why, 400, "invalid Content-Length");
			v = v * 10 + (h->value[i] - '0');
		}
		r->content_length = v;
	}
	if (header_is(h, "transfer-encoding")) {
		if (s->chunked++)
			return bad(why, 400, "more than one Transfer-Encoding");
		if (h->value_len != 7 || strncasecmp(h->value, "chunked", 7))
			return bad(why, 501, "transfer coding not implemented");
	}
	if (header_is(h, "connection")) {
		s->close |= list_has(h->value, h->value_len, "close");
		s->keep_alive |= list_has(h->value, h->value_len, "keep-alive");
	}
	if (header_is(h, "expect")) {
		if (h->value_len != 12 || strncasecmp(h->value, "100-continue",
		    12) != 0)
			return bad(why, 417, "unsupported expectation");
		r->expect_continue = 1;
	}
	return 0;
}

/* RFC 9112 section 5: field-name ":" OWS field-value OWS, one a line. */
static ssize_t
parse_field(const char *p, size_t n, struct http_request *r,
    struct seen *s, const char **why)
{
	const char *end = p + n, *colon, *v;
	struct header h;

	for (colon = p; colon < end && is_tchar((unsigned char)*colon); colon++)
		;
	if (colon == p || colon == end || *colon != ':')
		return bad(why, 400, "malformed header field");
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (h.value = v; v < end; v++)
		if (!is_field_char((unsigned char)*v))
			return bad(why, 400, "invalid byte in header field");
	h.name = p;
	h.name_len = (size_t)(colon - p);
	h.value_len = (size_t)(end - h.value);
	note_name(s, h.name, h.name_len);
	headers_add(&r->fields, h.name, h.name_len, h.value, h.value_len);
	return note_field(&h, r, s, why);
}

/*
 * A field sent on several lines is read as one (RFC 9110 section 5.3):
 * every decision on the request sees what the upstream sees.
 */
static void
combine_fields(struct http_request *r)
{
	struct buf combined = BUF_INIT;

	if (headers_combine(buf_cstr(&r->fields), &combined)) {
		buf_free(&r->fields);
		r->fields = combined;
	}
}

static ssize_t
framing(struct http_request *r, const struct seen *s, const char **why)
{
	if (r->minor >= 1 && !s->host)
		return bad(why, 400, "no Host field");
	if (s->chunked && s->length)
		return bad(why, 400, "both Content-Length and Transfer-Encoding");
	if (s->chunked && r->minor == 0)
		return bad(why, 400, "Transfer-Encoding in HTTP/1.0");
	r->body = s->chunked ? HTTP_BODY_CHUNKED : s->length &&
	    r->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	/* Content-Length: 0 is content, though empty; no framing is none */
	r->has_content = s->chunked || s->length;
	r->keep_alive = r->minor >= 1 ? !s->close : s->keep_alive && !s->close;
	if (s->repeats)
		combine_fields(r);
	return 0;
}

/*
 * Parses the request head at the start of p[0..n). Returns its length
 * once complete, 0 while more bytes are needed, or the negated status
 * to answer with (400, 414, 417, 431, 501, 505), with a reason in
 * *why. Empty lines before the request line are skipped (RFC 9112
 * section 2.2). r is reset first; free it with http_request_free.
 */
ssize_t
http_parse_request(const char *p, size_t n, struct http_request *r,
    const char **why)
{
	const char *start = p, *end = p + n, *lf;
	struct seen seen;
	ssize_t rc;
	int fields = 0;

	http_request_free(r);
	memset(&seen, 0, offsetof(struct seen, name));	/* names: as noted */
	while (p < end && (*p == '\n' || (*p == '\r' && p + 1 < end &&
	    p[1] == '\n')))
		p += *p == '\r' ? 2 : 1;
	if (p - start > HTTP_MAX_HEAD)
		return bad(why, 400, "too many empty lines");
	if ((lf = line_end(p, end)) == NULL)
		return n - (size_t)(p - start) > HTTP_MAX_TARGET + 64 ?
		    bad(why, 414, "request line too long") : 0;
	if (memchr(p, '\r', line_len(p, lf)) != NULL)
		return bad(why, 400, "bare CR in request line");
	if ((rc = parse_request_line(p, line_len(p, lf), r, why)) < 0)
		return rc;
	for (p = lf + 1; (lf = line_end(p, end)) != NULL; p = lf + 1) {
		if (lf - start >= HTTP_MAX_HEAD)
			return bad(why, 431, "request head too large");
		if (line_len(p, lf) == 0)
			return (rc = framing(r, &seen, why)) < 0 ? rc :
			    lf + 1 - start;
		if (*p == ' ' || *p == '\t')
			return bad(why, 400, "obsolete line folding");
		if (++fields > HTTP_MAX_FIELDS)
			return bad(why, 431, "too many header fields");
		if (memchr(p, '\r', line_len(p, lf)) != NULL)
			return bad(why, 400, "bare CR in header field");
		if ((rc = parse_field(p, line_len(p, lf), r, &seen, why)) < 0)
			return rc;
	}
	return end - start >= HTTP_MAX_HEAD ?
	    bad(why, 431, "request head too large") : 0;
}

void
http_request_free(struct http_request *r)
{
	free(r->target);
	buf_free(&r->fields);
	memset(r, 0, sizeof *r);
}

enum { CHUNK_SIZE_LINE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

#define CHUNK_LINE_MAX	4096	/* a size line with extensions; a trailer */

/* One byte of a size line, "1a;ext=v": hex digits, then ignored text. */
static int
size_line_byte(struct http_chunked *c, char ch)
{
	int h = num_hex_digit(ch);

	if (ch == '\n') {
		if (c->line == 0)
			return -1;	/* no digits */
		c->state = c->left > 0 ? CHUNK_DATA : CHUNK_TRAILER;
		c->line = 0;
		c->ext = 0;
		return 0;
	}
	if (c->line == 0 && h < 0)
		return -1;
	if (++c->line > CHUNK_LINE_MAX)
		return -1;
	if (c->ext)
		return 0;	/* extensions are ignored (RFC 9112 7.1.1) */
	if (h >= 0 && c->line <= 15) {
		c->left = c->left * 16 + h;
		return 0;
	}
	if (ch != ';' && ch != ' ' && ch != '\t' && ch != '\r')
		return -1;
	c->ext = 1;
	return 0;
}

/* One byte of the trailer section, which ends with an empty line. */
static int
trailer_byte(struct http_chunked *c, char ch)
{
	if (ch == '\n') {
		c->done = c->line == 0;
		c->line = 0;
	} else if (ch != '\r' && ++c->line > CHUNK_LINE_MAX) {
		return -1;
	}
	return 0;
}

/*
 * Decodes a chunked body (RFC 9112 section 7.1) from in[0..n) into out,
 * as bytes arrive. Returns the bytes consumed, or -1 if malformed;
 * c->done is set after the last chunk and the trailer, which is
 * discarded. Start with a zeroed struct.
 */
ssize_t
http_dechunk(struct http_chunked *c, const char *in, size_t n, struct buf *out)
{
	size_t i = 0, take;

	while (i < n && !c->done) {
		switch (c->state) {
		case CHUNK_SIZE_LINE:
			if (size_line_byte(c, in[i++]) < 0)
				return -1;
			break;
		case CHUNK_DATA:
			take = n - i < (size_t)c->left ? n - i : (size_t)c->left;
			buf_add(out, in + i, take);
			i += take;
			if ((c->left -= (long long)take) == 0)
				c->state = CHUNK_DATA_END;
			break;
		case CHUNK_DATA_END:	/* the CRLF after the data */
			if (in[i] == '\r' && !c->ext) {
				c->ext = 1;
				i++;
				break;
			}
			if (in[i++] != '\n')
				return -1;
			c->ext = 0;
			c->state = CHUNK_SIZE_LINE;
			break;
		case CHUNK_TRAILER:
			if (trailer_byte(c, in[i++]) < 0)
				return -1;
			break;
		}
	}
	return (ssize_t)i;
}

/*
 * Whether an entity tag is in an If-None-Match list (weak comparison);
 * "*" matches any current response, one without an ETag (NULL) too
 * (RFC 9110 section 13.1.2).
 */
static int
etag_listed(const char *list, size_t n, const char *etag)
{
	size_t i = 0, start, len;

	if (etag != NULL && strncmp(etag, "W/", 2) == 0)
		etag += 2;
	len = etag != NULL ? strlen(etag) : 0;
	while (i < n) {
		while (i < n && (list[i] == ' ' || list[i] == ','))
			i++;
		if (i < n && list[i] == '*')
			return 1;
		if (i + 2 <= n && strncmp(list + i, "W/", 2) == 0)
			i += 2;
		start = i;
		while (i < n && list[i] != ',')
			i++;
		while (i > start && list[i - 1] == ' ')
			i--;
		if (etag != NULL && i - start == len &&
		    memcmp(list + start, etag, len) == 0)
			return 1;
		while (i < n && list[i] != ',')
			i++;
	}
	return 0;
}

/*
 * RFC 9110 section 13.2.2: whether a request with these fields already
 * has the selected response, whose validators are etag and
 * last_modified (NULL if none): If-None-Match decides when present,
 * else If-Modified-Since.
 */
int
http_not_modified(const char *fields, const char *etag,
    const char *last_modified)
{
	struct header inm, ims;
	time_t since, modified;

	if (headers_get(fields, "if-none-match", &inm))
		return etag_listed(inm.value, inm.value_len, etag);
	return headers_get(fields, "if-modified-since", &ims) &&
	    last_modified != NULL &&
	    httpdate_parse(ims.value, ims.value_len, &since) == 0 &&
	    httpdate_parse(last_modified, strlen(last_modified),
	    &modified) == 0 && modified <= since;
}

/* Digits only, as a non-negative number; -1 if not, or too large. */
static long long
range_number(const char *p, size_t n)
{
	long long v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/*
 * If-Range (RFC 9110 section 13.1.5): the range applies only to the
 * representation the client has, named by a strong entity tag or the
 * exact Last-Modified date.
 */
static int
if_range_holds(const char *fields, const char *etag, const char *last_modified)
{
	struct header h;

	if (!headers_get(fields, "if-range", &h))
		return 1;
	if (h.value_len > 0 && (h.value[0] == '"' || h.value[0] == 'W'))
		return etag != NULL && etag[0] == '"' &&
		    strlen(etag) == h.value_len &&
		    memcmp(etag, h.value, h.value_len) == 0;
	return last_modified != NULL && strlen(last_modified) == h.value_len &&
	    memcmp(last_modified, h.value, h.value_len) == 0;
}

/*
 * The one byte range a GET asks of a stored body of size bytes
 * (RFC 9110 section 14.1.2): 1 with its first and last byte, -1 when
 * it cannot be satisfied (416), 0 to send the whole body instead: no
 * Range, one that does not parse, several ranges, or an If-Range that
 * no longer holds.
 */
int
http_byte_range(const char *fields, const char *etag,
    const char *last_modified, long long size, long long *first,
    long long *last)
{
	struct header h;
	const char *v, *dash;
	size_t n;
	long long a, b;

	if (!headers_get(fields, "range", &h) || h.value_len < 7 ||
	    strncasecmp(h.value, "bytes=", 6) != 0)
		return 0;
	v = h.value + 6, n = h.value_len - 6;
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (memchr(v, ',', n) != NULL ||
	    (dash = memchr(v, '-', n)) == NULL ||
	    !if_range_holds(fields, etag, last_modified))
		return 0;
	a = dash == v ? -2 : range_number(v, (size_t)(dash - v));
	b = dash + 1 == v + n ? -2 :
	    range_number(dash + 1, (size_t)(v + n - dash - 1));
	if (a == -1 || b == -1 || (a == -2 && b == -2) || (a >= 0 && b >= 0 &&
	    b < a))
		return 0;
	if (a == -2) {		/* the last b bytes */
		if (b == 0 || size == 0)
			return -1;
		*first = b < size ? size - b : 0;
		*last = size - 1;
		return 1;
	}
	if (a >= size)
		return -1;
	*first = a;
	*last = b == -2 || b >= size ? size - 1 : b;
	return 1;
}

/* Whether a response with this status has a body (RFC 9110 6.4.1). */
int
http_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

/* The end-to-end fields, without Age when one of ours replaces it. */
void
http_end_to_end(struct buf *out, const char *fields, int new_age)
{
	struct buf kept = BUF_INIT;
	const char *p;
	struct header h;

	headers_add_end_to_end(&kept, fields);
	for (p = buf_cstr(&kept); headers_next(&p, &h);)
		if (!new_age || !header_is(&h, "age"))
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
	buf_free(&kept);
}

/*
 * The status line and fields: the end-to-end ones given, then Date if
 * they have none, Age, Via (RFC 9110 7.6.3), Cache-Status, and the
 * framing (RFC 9112 6): Content-Length when the length is known, else
 * chunked for HTTP/1.1 and the end of the connection for HTTP/1.0.
 * Connection says close, or keep-alive to HTTP/1.0, when that is not
 * the version's default.
 */
enum http_framing
http_response_head(struct buf *out, const struct http_head *h)
{
	enum http_framing framing = HTTP_FRAME_LENGTH;
	struct header date;
	char now[HTTPDATE_LEN];
	int body = http_has_body(h->status) && !h->head_only;

	assert(h->cache_status != NULL);
	buf_printf(out, "HTTP/1.1 %d %s\r\n", h->status,
	    http_reason(h->status));
	if (h->fields_ready)
		buf_adds(out, h->fields);
	else
		http_end_to_end(out, h->fields, h->age >= 0);
	if (!headers_get(h->fields, "date", &date)) {
		httpdate_format(h->now, now);
		buf_printf(out, "Date: %s\r\n", now);
	}
	if (h->age >= 0)
		buf_printf(out, "Age: %lld\r\n", h->age);
	buf_printf(out, "Via: 1.1 relay\r\nCache-Status: %s\r\n",
	    h->cache_status);
	if (h->extra != NULL)
		buf_adds(out, h->extra);
	if (h->length >= 0 && http_has_body(h->status))
		buf_printf(out, "Content-Length: %lld\r\n", h->length);
	else if (body)
		framing = h->minor >= 1 ? HTTP_FRAME_CHUNKED : HTTP_FRAME_CLOSE;
	if (framing == HTTP_FRAME_CHUNKED)
		buf_adds(out, "Transfer-Encoding: chunked\r\n");
	if (h->close || framing == HTTP_FRAME_CLOSE)
		buf_adds(out, "Connection: close\r\n");
	else if (h->minor == 0)
		buf_adds(out, "Connection: keep-alive\r\n");
	buf_adds(out, "\r\n");
	return framing;
}

/*
 * The head of an upstream's interim response as relayed (RFC 9110
 * section 15.2): its end-to-end fields and Via (7.6.3), no framing, as
 * it has no content.
 */
void
http_interim_head(struct buf *out, int status, const char *fields)
{
	assert(status >= 100 && status < 200 && status != 101);
	buf_printf(out, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	http_end_to_end(out, fields, 0);
	buf_adds(out, "Via: 1.1 relay\r\n\r\n");
}

/*
 * A request's fields as sent upstream: end-to-end ones, without Host
 * (curl sets it), the client's own validators and ranges (the cache
 * needs whole responses; client conditionals are answered here), and
 * Expect; then Via (RFC 9110 section 7.6.3).
 */
void
http_forward_fields(struct buf *out, const char *fields)
{
	static const char *const dropped[] = {
		"host", "if-none-match", "if-modified-since", "if-match",
		"if-unmodified-since", "if-range", "range", "expect", "via",
	};
	struct buf kept = BUF_INIT;
	const char *p;
	struct header h;
	size_t i;

	headers_add_end_to_end(&kept, fields);
	p = buf_cstr(&kept);
	while (headers_next(&p, &h)) {
		for (i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
			if (header_is(&h, dropped[i]))
				break;
		if (i == sizeof dropped / sizeof dropped[0])
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
	}
	buf_adds(out, "Via: 1.1 relay\r\n");
	buf_free(&kept);
}

/* The Content-Length of fields whose framing was checked, or -1. */
long long
http_content_length(const char *fields)
{
	struct header h;
	char tmp[24];
	long long n;

	if (!headers_get(fields, "content-length", &h) ||
	    h.value_len >= sizeof tmp)
		return -1;
	memcpy(tmp, h.value, h.value_len);
	tmp[h.value_len] = '\0';
	return num_parse(tmp, 0, 1LL << 62, &n) == 0 ? n : -1;
}

/*
 * Retry-After (RFC 9110 section 10.2.3), seconds or a date, as
 * milliseconds from now at most max_s seconds; -1 if absent or not
 * one of those.
 */
long long
http_retry_after_ms(const char *fields, long long max_s)
{
	struct header h;
	long long secs;
	time_t when, now = time(NULL);
	char tmp[32];

	if (!headers_get(fields, "retry-after", &h) ||
	    h.value_len >= sizeof tmp)
		return -1;
	memcpy(tmp, h.value, h.value_len);
	tmp[h.value_len] = '\0';
	if (num_parse(tmp, 0, 1000000000, &secs) < 0) {
		if (tmp[0] != '\0' && tmp[strspn(tmp, "0123456789")] == '\0')
			secs = max_s;	/* more digits than any wait */
		else if (httpdate_parse(h.value, h.value_len, &when) < 0)
			return -1;
		else
			secs = when > now ? (long long)(when - now) : 0;
	}
	return (secs < max_s ? secs : max_s) * 1000;
}
