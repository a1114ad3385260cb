/*
 * Streaming UTF-8 validation (RFC 3629): rejects overlong forms,
 * surrogates and code points above U+10FFFF, across buffer boundaries.
 */
#include "base/utf8.h"

/* Returns 0 while the input is still valid, -1 at the first invalid byte. */
int
utf8_byte(struct utf8 *u, unsigned char c)
{
	if (u->need > 0) {
		if ((c & 0xC0) != 0x80)
			return -1;
		u->cp = u->cp << 6 | (c & 0x3F);
		if (--u->need == 0 && (u->cp < u->min || u->cp > 0x10FFFF ||
		    (u->cp >= 0xD800 && u->cp <= 0xDFFF)))
			return -1;
		return 0;
	}
	if (c < 0x80)
		return 0;
	if ((c & 0xE0) == 0xC0)
		u->need = 1, u->cp = c & 0x1F, u->min = 0x80;
	else if ((c & 0xF0) == 0xE0)
		u->need = 2, u->cp = c & 0x0F, u->min = 0x800;
	else if ((c & 0xF8) == 0xF0)
		u->need = 3, u->cp = c & 0x07, u->min = 0x10000;
	else
		return -1;
	return 0;
}

int
utf8_feed(struct utf8 *u, const void *p, size_t n)
{
	const unsigned char *s = p, *end = s + n;

	while (s < end) {
		/* Fast path: runs of ASCII between sequences. */
		if (u->need == 0 && *s < 0x80) {
			s++;
			continue;
		}
		if (utf8_byte(u, *s++) < 0)
			return -1;
	}
	return 0;
}

/* The input ended on a character boundary. */
int
utf8_done(const struct utf8 *u)
{
	return u->need == 0 ? 0 : -1;
}

/*
 * The length of the valid UTF-8 sequence that starts at s, of at most
 * n bytes, or 0 if none does. A NUL ends a string: it is no
 * continuation byte, so a sequence never reads past it.
 */
size_t
utf8_sequence(const void *s, size_t n)
{
	const unsigned char *p = s;
	struct utf8 u = UTF8_INIT;
	size_t i = 0;

	do {
		if (i == n || utf8_byte(&u, p[i]) < 0)
			return 0;
		i++;
	} while (u.need > 0);
	return i;
}

/*
 * How many bytes at the end of s[0..n) start a UTF-8 sequence that
 * goes on past it: what to hold back when text comes in pieces.
 */
size_t
utf8_unfinished(const void *s, size_t n)
{
	const unsigned char *p = s;
	size_t i, need;

	for (i = 1; i <= 3 && i <= n; i++) {
		if ((p[n - i] & 0xC0) == 0x80)
			continue;	/* a continuation byte */
		if (p[n - i] < 0xC0)
			return 0;
		need = p[n - i] >= 0xF0 ? 4 : p[n - i] >= 0xE0 ? 3 : 2;
		return need > i ? i : 0;
	}
	return 0;
}
