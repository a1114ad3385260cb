/*
 * Streaming base64 (RFC 4648 section 4, padded) in both directions,
 * so binary bodies of any size pass through records.
 */
#include "base/base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
base64_encode(struct base64 *b, struct writer *w, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		b->bits = (b->bits << 8 | *s++) & 0xFFFFFF;
		b->nbits += 8;
		while (b->nbits >= 6) {
			b->nbits -= 6;
			writer_putc(w, alphabet[b->bits >> b->nbits & 63]);
		}
	}
}

void
base64_encode_end(struct base64 *b, struct writer *w)
{
	if (b->nbits == 2) {
		writer_putc(w, alphabet[(b->bits & 3) << 4]);
		writer_put(w, "==", 2);
	} else if (b->nbits == 4) {
		writer_putc(w, alphabet[(b->bits & 15) << 2]);
		writer_putc(w, '=');
	}
	b->bits = 0;
	b->nbits = 0;
}

static int
value_of(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Feeds one character; returns -1 if it cannot appear here. */
int
base64_decode(struct base64 *b, struct writer *w, int c)
{
	int v;

	if (c == '=') {
		/* Two leftover bits mean one '=' ends the quantum, four mean two. */
		if (b->pad == 0 && (b->nbits == 2 || b->nbits == 4)) {
			b->pad = b->nbits == 2 ? 1 : 2;
			b->nbits = 0;
		}
		if (b->pad == 0 || b->pad == 3)
			return -1;
		b->pad = b->pad == 1 ? 3 : 1;	/* 3: padding complete */
		return 0;
	}
	if (b->pad || (v = value_of(c)) < 0)
		return -1;
	b->bits = (b->bits << 6 | (unsigned)v) & 0xFFFFFF;
	b->nbits += 6;
	if (b->nbits >= 8) {
		b->nbits -= 8;
		writer_putc(w, (int)(b->bits >> b->nbits & 0xFF));
	}
	return 0;
}

/* The input ended on a quantum boundary. */
int
base64_decode_end(const struct base64 *b)
{
	return b->nbits == 0 && (b->pad == 0 || b->pad == 3) ? 0 : -1;
}
