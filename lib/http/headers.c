/*
 * Header blocks: "Name: value\r\n" lines kept as one string, the way
 * they are stored in the cache and written on the wire.
 */
#include <string.h>
#include <strings.h>

#include "http/headers.h"

/* Steps through a block; returns 1 with the next header, 0 at the end. */
int
headers_next(const char **cursor, struct header *h)
{
	const char *p = *cursor, *colon, *eol;

	if (p == NULL || *p == '\0')
		return 0;
	eol = strstr(p, "\r\n");
	if (eol == NULL)
		eol = p + strlen(p);
	colon = memchr(p, ':', (size_t)(eol - p));
	if (colon == NULL)
		colon = eol;
	h->name = p;
	h->name_len = (size_t)(colon - p);
	h->value = colon < eol ? colon + 1 : eol;
	while (h->value < eol && (*h->value == ' ' || *h->value == '\t'))
		h->value++;
	h->value_len = (size_t)(eol - h->value);
	*cursor = *eol ? eol + 2 : eol;
	return 1;
}

int
header_is(const struct header *h, const char *name)
{
	return strlen(name) == h->name_len &&
	    strncasecmp(h->name, name, h->name_len) == 0;
}

/* The first header with this name (case-insensitive). */
int
headers_get(const char *block, const char *name, struct header *h)
{
	while (headers_next(&block, h))
		if (header_is(h, name))
			return 1;
	return 0;
}

char *
headers_get_dup(const char *block, const char *name)
{
	struct header h;

	if (!headers_get(block, name, &h))
		return NULL;
	return xstrndup(h.value, h.value_len);
}

/* RFC 9110 section 5.6.2: token characters. */
static int
is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' &&
	    (c | 0x20) <= 'z') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Appends one field after checking it (RFC 9110 section 5.5): a token
 * name, a value of visible characters, spaces, tabs and obs-text, no
 * other control character. Surrounding whitespace is trimmed.
 */
int
headers_add(struct buf *b, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
	size_t i;

	if (nlen == 0)
		return -1;
	for (i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)name[i]))
			return -1;
	while (vlen > 0 && (*value == ' ' || *value == '\t'))
		value++, vlen--;
	while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
		vlen--;
	for (i = 0; i < vlen; i++)	/* field-value: no CTL but HTAB */
		if (((unsigned char)value[i] < ' ' && value[i] != '\t') ||
		    value[i] == 0x7f)
			return -1;
	buf_add(b, name, nlen);
	buf_add(b, ": ", 2);
	buf_add(b, value, vlen);
	buf_add(b, "\r\n", 2);
	return 0;
}

/* Parses "Name: value" as given to -H. */
int
headers_add_line(struct buf *b, const char *line, const char **why)
{
	const char *colon = strchr(line, ':');

	if (colon == NULL) {
		*why = "expected 'Name: value'";
		return -1;
	}
	if (headers_add(b, line, (size_t)(colon - line), colon + 1,
	    strlen(colon + 1)) < 0) {
		*why = "invalid header name or value";
		return -1;
	}
	return 0;
}

/*
 * Fields that describe one connection or one transfer, not the
 * response: never stored or relayed (RFC 9110 section 7.6.1, RFC 9112
 * section 6). Content-Length is recomputed from the stored body.
 */
int
headers_is_hop_by_hop(const char *name, size_t len)
{
	static const char *const hop[] = {
		"connection", "content-length", "keep-alive",
		"proxy-authenticate", "proxy-authorization", "proxy-connection",
		"te", "trailer", "transfer-encoding", "upgrade",
	};
	size_t i;

	for (i = 0; i < sizeof hop / sizeof hop[0]; i++)
		if (strlen(hop[i]) == len && strncasecmp(name, hop[i], len) == 0)
			return 1;
	return 0;
}

/* Whether a Connection field of the block lists this name (RFC 9110 section 7.6.1). */
static int
named_by_connection(const char *block, const struct header *field)
{
	struct header h;
	const char *p, *end;
	size_t n;

	while (headers_next(&block, &h)) {
		if (!header_is(&h, "connection"))
			continue;
		for (p = h.value, end = h.value + h.value_len; p < end; p += n) {
			p += strspn(p, " \t,");
			n = strcspn(p, " \t,\r");
			if (p + n > end)
				n = (size_t)(end - p);
			if (n == field->name_len &&
			    strncasecmp(p, field->name, n) == 0)
				return 1;
		}
	}
	return 0;
}

/* Appends the end-to-end fields of a block, the ones a cache keeps. */
void
headers_add_end_to_end(struct buf *out, const char *block)
{
	const char *p = block;
	struct header h;

	while (headers_next(&p, &h))
		if (!headers_is_hop_by_hop(h.name, h.name_len) &&
		    !named_by_connection(block, &h))
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
}

static int
has_field(const char *block, const struct header *field)
{
	struct header h;

	while (headers_next(&block, &h))
		if (h.name_len == field->name_len &&
		    strncasecmp(h.name, field->name, h.name_len) == 0)
			return 1;
	return 0;
}

/*
 * Fields that describe the stored body's bytes: a 304 cannot change
 * them, as the body it validates stays (RFC 9111 section 3.2, the
 * fields "the cache's stored response depends upon").
 */
static int
describes_body(const struct header *h)
{
	static const char *const kept[] = {
		"content-encoding", "content-length", "content-md5",
		"content-range", "etag",
	};
	size_t i;

	for (i = 0; i < sizeof kept / sizeof kept[0]; i++)
		if (header_is(h, kept[i]))
			return 1;
	return 0;
}

/*
 * The stored fields updated by a 304 response (RFC 9111 section
 * 4.3.4): each field the 304 carries replaces the stored ones of that
 * name, except those that describe the body; the others stay.
 * Hop-by-hop fields of the 304 are left out.
 */
void
headers_merge_304(struct buf *out, const char *stored, const char *update)
{
	struct buf fresh = BUF_INIT;
	const char *p;
	struct header h;

	headers_add_end_to_end(&fresh, update);
	while (headers_next(&stored, &h))
		if (describes_body(&h) || !has_field(buf_cstr(&fresh), &h))
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
	for (p = buf_cstr(&fresh); headers_next(&p, &h);)
		if (!describes_body(&h))
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
	buf_free(&fresh);
}

/* Whether a line before the one at `at` has the same name as h. */
static int
named_before(const char *block, const char *at, const struct header *h)
{
	struct header o;

	while (block < at && headers_next(&block, &o))
		if (o.name_len == h->name_len &&
		    strncasecmp(o.name, h->name, h->name_len) == 0)
			return 1;
	return 0;
}

/* Set-Cookie is the one field whose lines must not be combined. */
static int
combinable(const struct header *h)
{
	return !header_is(h, "set-cookie");
}

/*
 * Appends the value of every line of a field, name[0..n), as one
 * (RFC 9110 section 5.3): joined by ", ", or "; " for Cookie (RFC 6265
 * section 5.4). Returns how many lines it has.
 */
int
headers_get_all(const char *block, const char *name, size_t n,
    struct buf *out)
{
	struct header h;
	int lines = 0;

	while (headers_next(&block, &h)) {
		if (h.name_len != n || strncasecmp(h.name, name, n) != 0)
			continue;
		if (lines++ > 0)
			buf_adds(out, header_is(&h, "cookie") ? "; " : ", ");
		buf_add(out, h.value, h.value_len);
	}
	return lines;
}

/*
 * The block with each field's repeated lines combined into its first,
 * so that whatever reads a field sees what the upstream sees, every
 * line of it. Returns 0, leaving out untouched, when no field repeats;
 * else 1 with the combined block appended to out.
 */
int
headers_combine(const char *block, struct buf *out)
{
	const char *p = block, *at;
	struct header h;
	int repeats = 0;

	for (at = p; !repeats && headers_next(&p, &h); at = p)
		repeats = combinable(&h) && named_before(block, at, &h);
	if (!repeats)
		return 0;
	for (p = block, at = p; headers_next(&p, &h); at = p) {
		if (!combinable(&h)) {
			headers_add(out, h.name, h.name_len, h.value,
			    h.value_len);
			continue;
		}
		if (named_before(block, at, &h))
			continue;
		buf_add(out, h.name, h.name_len);
		buf_add(out, ": ", 2);
		headers_get_all(block, h.name, h.name_len, out);
		buf_add(out, "\r\n", 2);
	}
	return 1;
}
