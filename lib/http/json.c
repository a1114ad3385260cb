/*
 * A streaming JSON (RFC 8259) pull parser over a reader: validates and
 * copies values compactly, decodes strings into a writer, and escapes
 * strings for output. Memory use does not depend on the input size.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "http/json.h"

void
json_init(struct json *j, struct reader *in, int one_line)
{
	j->in = in;
	j->one_line = one_line;
	j->why[0] = '\0';
}

static int
fail(struct json *j, const char *fmt, ...)
{
	va_list ap;

	if (j->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(j->why, sizeof j->why, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
unexpected(struct json *j, int c, const char *wanted)
{
	if (c < 0)
		return fail(j, j->in->err ? "read error" :
		    "unexpected end of input, expected %s", wanted);
	if (c == '\n' && j->one_line)
		return fail(j, "unexpected end of line, expected %s", wanted);
	if (c >= 0x20 && c < 0x7F)
		return fail(j, "unexpected '%c', expected %s", c, wanted);
	return fail(j, "unexpected byte 0x%02X, expected %s", c, wanted);
}

/*
 * Skips whitespace and returns the next byte without consuming it,
 * or -1 at the end. In one-line mode a newline is left unconsumed and
 * returned, so a broken record never swallows the next one.
 */
int
json_peek(struct json *j)
{
	int c;

	for (;;) {
		c = reader_peek(j->in);
		if (c == '\n' && j->one_line)
			return c;
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return c;
		reader_getc(j->in);
	}
}

int
json_expect(struct json *j, int want)
{
	char what[4] = { '\'', (char)want, '\'', '\0' };
	int c = json_peek(j);

	if (c != want)
		return unexpected(j, c, what);
	reader_getc(j->in);
	return 0;
}

static void
put(struct writer *w, int c)
{
	if (w != NULL)
		writer_putc(w, c);
}

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Reads the four hex digits after \u. */
static int
read_hex4(struct json *j, unsigned *out)
{
	int i, c, v;

	*out = 0;
	for (i = 0; i < 4; i++) {
		c = reader_getc(j->in);
		if ((v = hex_value(c)) < 0)
			return unexpected(j, c, "a hex digit");
		*out = *out << 4 | (unsigned)v;
	}
	return 0;
}

static void
put_utf8(struct writer *w, unsigned cp)
{
	if (cp < 0x80) {
		put(w, (int)cp);
	} else if (cp < 0x800) {
		put(w, (int)(0xC0 | cp >> 6));
		put(w, (int)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		put(w, (int)(0xE0 | cp >> 12));
		put(w, (int)(0x80 | (cp >> 6 & 0x3F)));
		put(w, (int)(0x80 | (cp & 0x3F)));
	} else {
		put(w, (int)(0xF0 | cp >> 18));
		put(w, (int)(0x80 | (cp >> 12 & 0x3F)));
		put(w, (int)(0x80 | (cp >> 6 & 0x3F)));
		put(w, (int)(0x80 | (cp & 0x3F)));
	}
}

/*
 * Reads a \u escape after its "\u": the code unit, and when it is a
 * high surrogate the low one whose \u escape must follow (*lo, else 0).
 * A surrogate on its own is no character (RFC 8259 sections 7 and 8.2;
 * jq refuses it): the value is invalid, whether it is decoded or copied,
 * so that no program writes on what another cannot read.
 */
static int
read_unicode(struct json *j, unsigned *hi, unsigned *lo)
{
	*lo = 0;
	if (read_hex4(j, hi) < 0)
		return -1;
	if (*hi >= 0xDC00 && *hi <= 0xDFFF)
		return fail(j, "lone low surrogate \\u%04X", *hi);
	if (*hi >= 0xD800 && *hi <= 0xDBFF &&
	    (reader_getc(j->in) != '\\' || reader_getc(j->in) != 'u' ||
	    read_hex4(j, lo) < 0 || *lo < 0xDC00 || *lo > 0xDFFF))
		return fail(j, "lone high surrogate \\u%04X", *hi);
	return 0;
}

/* Decodes \uXXXX, joining a surrogate pair into one code point. */
static int
decode_unicode(struct json *j, struct writer *w)
{
	unsigned hi, lo;

	if (read_unicode(j, &hi, &lo) < 0)
		return -1;
	put_utf8(w, lo == 0 ? hi : 0x10000 + ((hi - 0xD800) << 10) +
	    (lo - 0xDC00));
	return 0;
}

/* Copies \uXXXX (its "\" written), a surrogate pair as a pair. */
static int
copy_unicode(struct json *j, struct writer *w)
{
	unsigned hi, lo;

	if (read_unicode(j, &hi, &lo) < 0)
		return -1;
	if (w != NULL && lo == 0)
		writer_printf(w, "u%04x", hi);
	else if (w != NULL)
		writer_printf(w, "u%04x\\u%04x", hi, lo);
	return 0;
}

static int
decode_escape(struct json *j, struct writer *w)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	int c = reader_getc(j->in);
	const char *p;

	if (c == 'u')
		return decode_unicode(j, w);
	if (c <= 0 || (p = strchr(from, c)) == NULL)
		return unexpected(j, c, "an escape character");
	put(w, to[p - from]);
	return 0;
}

/*
 * Scans a string after its opening quote. With decode, escapes are
 * resolved and the raw characters go to w; otherwise the string is
 * copied as written, quotes included.
 */
static int
scan_string(struct json *j, struct writer *w, int decode)
{
	struct utf8 u = UTF8_INIT;
	int c;

	if (!decode)
		put(w, '"');
	for (;;) {
		c = reader_getc(j->in);
		if (c == '"')
			break;
		if (c < 0x20)
			return unexpected(j, c, "a string character");
		if (c == '\\' && decode) {
			if (utf8_done(&u) < 0)	/* an escape inside a character */
				return fail(j, "invalid UTF-8 in string");
			if (decode_escape(j, w) < 0)
				return -1;
			continue;
		}
		if (utf8_byte(&u, (unsigned char)c) < 0)
			return fail(j, "invalid UTF-8 in string");
		put(w, c);
		if (c == '\\') {
			c = reader_getc(j->in);
			if (c == 'u') {
				if (copy_unicode(j, w) < 0)
					return -1;
			} else if (c > 0 && strchr("\"\\/bfnrt", c)) {
				put(w, c);
			} else {
				return unexpected(j, c, "an escape character");
			}
		}
	}
	if (utf8_done(&u) < 0)
		return fail(j, "invalid UTF-8 in string");
	if (!decode)
		put(w, '"');
	return 0;
}

static int
digits(struct json *j, struct writer *w)
{
	int c, n = 0;

	while ((c = reader_peek(j->in)) >= '0' && c <= '9') {
		put(w, reader_getc(j->in));
		n++;
	}
	return n > 0 ? 0 : unexpected(j, c, "a digit");
}

/* RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
scan_number(struct json *j, struct writer *w)
{
	int c = reader_peek(j->in);

	if (c == '-') {
		put(w, reader_getc(j->in));
		c = reader_peek(j->in);
	}
	if (c == '0')
		put(w, reader_getc(j->in));
	else if (digits(j, w) < 0)
		return -1;
	if (reader_peek(j->in) == '.') {
		put(w, reader_getc(j->in));
		if (digits(j, w) < 0)
			return -1;
	}
	c = reader_peek(j->in);
	if (c == 'e' || c == 'E') {
		put(w, reader_getc(j->in));
		c = reader_peek(j->in);
		if (c == '+' || c == '-')
			put(w, reader_getc(j->in));
		if (digits(j, w) < 0)
			return -1;
	}
	return 0;
}

static int
scan_literal(struct json *j, struct writer *w, const char *word)
{
	const char *p;
	int c;

	for (p = word; *p != '\0'; p++) {
		c = reader_getc(j->in);
		if (c != *p)
			return unexpected(j, c, word);
		put(w, c);
	}
	return 0;
}

static int scan_value(struct json *, struct writer *, int);

/*
 * Steps through an array or object after its opening bracket: returns
 * 1 when an element follows (its comma consumed), 0 after the closing
 * bracket, -1 on error. A trailing comma fails in the element parser.
 */
int
json_next(struct json *j, int close, int *count)
{
	int c = json_peek(j);

	if (c == close) {
		reader_getc(j->in);
		return 0;
	}
	if (*count > 0) {
		if (c != ',')
			return unexpected(j, c, close == ']' ?
			    "',' or ']'" : "',' or '}'");
		reader_getc(j->in);
	}
	++*count;
	return 1;
}

static int
scan_container(struct json *j, struct writer *w, int depth, int close)
{
	int count = 0, rc, c;

	if (depth >= JSON_MAX_DEPTH)
		return fail(j, "nesting deeper than %d", JSON_MAX_DEPTH);
	put(w, reader_getc(j->in));
	while ((rc = json_next(j, close, &count)) == 1) {
		if (count > 1)
			put(w, ',');
		if (close == '}') {
			if ((c = json_peek(j)) != '"')
				return unexpected(j, c, "a member name");
			reader_getc(j->in);
			if (scan_string(j, w, 0) < 0 || json_expect(j, ':') < 0)
				return -1;
			put(w, ':');
		}
		if (scan_value(j, w, depth + 1) < 0)
			return -1;
	}
	if (rc == 0)
		put(w, close);
	return rc;
}

static int
scan_value(struct json *j, struct writer *w, int depth)
{
	int c = json_peek(j);

	switch (c) {
	case '{':
		return scan_container(j, w, depth, '}');
	case '[':
		return scan_container(j, w, depth, ']');
	case '"':
		reader_getc(j->in);
		return scan_string(j, w, 0);
	case 't':
		return scan_literal(j, w, "true");
	case 'f':
		return scan_literal(j, w, "false");
	case 'n':
		return scan_literal(j, w, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return scan_number(j, w);
		return unexpected(j, c, "a JSON value");
	}
}

/* Validates one value and copies it, without insignificant whitespace, to w (may be NULL). */
int
json_value(struct json *j, struct writer *w)
{
	return scan_value(j, w, 0);
}

/* Decodes one string value into w (may be NULL). */
int
json_string(struct json *j, struct writer *w)
{
	int c = json_peek(j);

	if (c != '"')
		return unexpected(j, c, "a string");
	reader_getc(j->in);
	return scan_string(j, w, 1);
}

/* Appends to a buf until it holds more than max bytes, then fails. */
struct bounded_buf {
	struct buf	*b;
	size_t		 max;
};

static int
bounded_write(void *ctx, const void *p, size_t n)
{
	struct bounded_buf *bb = ctx;

	if (n > bb->max - bb->b->len)
		return -1;
	buf_add(bb->b, p, n);
	return 0;
}

/*
 * Decodes one string of at most max bytes into b (NUL-terminated).
 * Memory stays within max and one writer buffer, however long the
 * input string is.
 */
int
json_string_buf(struct json *j, struct buf *b, size_t max)
{
	struct writer *w = xmalloc(sizeof *w);
	struct bounded_buf bb = { b, max };
	int rc;

	buf_reset(b);
	writer_init(w, (struct sink){ bounded_write, &bb });
	rc = json_string(j, w);
	if (writer_flush(w) < 0 && rc == 0)
		rc = fail(j, "string longer than %zu bytes", max);
	free(w);
	if (rc == 0 && memchr(b->data ? b->data : "", '\0', b->len) != NULL)
		rc = fail(j, "string contains NUL");
	buf_cstr(b);
	return rc;
}

/* An integer that fits in long long, without fraction or exponent. */
int
json_integer(struct json *j, long long *out)
{
	int c = json_peek(j), neg = 0;
	unsigned long long v = 0, limit;

	if (c == '-') {
		neg = 1;
		reader_getc(j->in);
		c = reader_peek(j->in);
	}
	if (c < '0' || c > '9')
		return unexpected(j, c, "an integer");
	if (c == '0') {	/* RFC 8259 section 6: no leading zeros */
		reader_getc(j->in);
		c = reader_peek(j->in);
		if (c >= '0' && c <= '9')
			return fail(j, "leading zero in a number");
		if (c == '.' || c == 'e' || c == 'E')
			return fail(j, "expected an integer, not a fraction");
		*out = 0;
		return 0;
	}
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	while ((c = reader_peek(j->in)) >= '0' && c <= '9') {
		reader_getc(j->in);
		if (v > (limit - (unsigned)(c - '0')) / 10)
			return fail(j, "integer out of range");
		v = v * 10 + (unsigned)(c - '0');
	}
	if (c == '.' || c == 'e' || c == 'E')
		return fail(j, "expected an integer, not a fraction");
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

/* Bytes that go into a JSON string as they are: printable ASCII. */
static int
plain_byte(unsigned char c)
{
	return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

/* Where escaped bytes go: a writer or a buffer. */
typedef void put_fn(void *, const void *, size_t);

static void
put_writer(void *w, const void *p, size_t n)
{
	writer_put(w, p, n);
}

static void
put_buf(void *b, const void *p, size_t n)
{
	buf_add(b, p, n);
}

/* A control character as JSON's \u escape: C0, DEL and C1 alike. */
static void
put_control(put_fn *out, void *to, unsigned cp)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = { '\\', 'u', '0', '0', hex[cp >> 4 & 15], hex[cp & 15] };

	out(to, esc, sizeof esc);
}

/* A byte as the ISO-8859-1 character it is, U+00A0 to U+00FF, in UTF-8. */
static void
put_latin1(put_fn *out, void *to, unsigned char c)
{
	char two[2] = { (char)(0xC0 | c >> 6), (char)(0x80 | (c & 0x3F)) };

	out(to, two, sizeof two);
}

/*
 * Bytes escaped for the inside of a JSON string, which is UTF-8 (RFC
 * 8259 section 8.1). UTF-8 goes as it is, never encoded again, but for
 * control characters (C1 too, which some terminals obey). A byte that
 * is not part of valid UTF-8, such as a header value's obs-text (RFC
 * 9110 section 5.5), is read as ISO-8859-1, the historical charset of
 * header fields: one character a byte, so the output is valid JSON
 * whatever the input, and no two bytes read alike.
 */
static void
escape(put_fn *out, void *to, const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n, *run;
	size_t len;

	while (p < end) {
		for (run = p; p < end && plain_byte(*p); p++)
			;
		out(to, run, (size_t)(p - run));
		if (p == end)
			break;
		if (*p >= 0x80 && (len = utf8_sequence(p,
		    (size_t)(end - p))) > 0) {
			if (len == 2 && p[0] == 0xC2 && p[1] < 0xA0)
				put_control(out, to, p[1]);
			else
				out(to, p, len);
			p += len;
			continue;
		}
		switch (*p) {
		case '"':  out(to, "\\\"", 2); break;
		case '\\': out(to, "\\\\", 2); break;
		case '\n': out(to, "\\n", 2); break;
		case '\r': out(to, "\\r", 2); break;
		case '\t': out(to, "\\t", 2); break;
		default:
			if (*p < 0xA0)
				put_control(out, to, *p);
			else
				put_latin1(out, to, *p);
		}
		p++;
	}
}

/*
 * Writes bytes escaped for the inside of a JSON string (escape); the
 * caller writes the quotes, so long strings can be written in pieces.
 */
void
json_write_escaped(struct writer *w, const void *s, size_t n)
{
	escape(put_writer, w, s, n);
}

/* A JSON string, quoted and escaped, appended to a buffer. */
void
json_buf_string(struct buf *b, const char *s, size_t n)
{
	buf_addc(b, '"');
	escape(put_buf, b, (const unsigned char *)s, n);
	buf_addc(b, '"');
}

/* A whole string, quotes included: any bytes make valid JSON (escape). */
void
json_write_string(struct writer *w, const char *s, size_t n)
{
	writer_putc(w, '"');
	json_write_escaped(w, s, n);
	writer_putc(w, '"');
}
