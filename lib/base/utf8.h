/*
 * Streaming UTF-8 validation (RFC 3629): rejects overlong forms,
 * surrogates and code points above U+10FFFF, across buffer boundaries.
 */
#ifndef RELAY_UTF8_H
#define RELAY_UTF8_H

#include <stddef.h>

struct utf8 {
	unsigned	need;	/* continuation bytes still expected */
	unsigned	cp;	/* code point so far */
	unsigned	min;	/* smallest code point the lead byte allows */
};

#define UTF8_INIT { 0, 0, 0 }

int	utf8_feed(struct utf8 *, const void *, size_t);
int	utf8_byte(struct utf8 *, unsigned char);
int	utf8_done(const struct utf8 *);
size_t	utf8_sequence(const void *, size_t);
size_t	utf8_unfinished(const void *, size_t);

#endif
