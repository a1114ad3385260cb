/*
 * Streaming base64 (RFC 4648 section 4, padded) in both directions,
 * so binary bodies of any size pass through records.
 */
#ifndef RELAY_BASE64_H
#define RELAY_BASE64_H

#include <stddef.h>

#include "base/io.h"

struct base64 {
	unsigned	bits;	/* pending bits, most recent lowest */
	int		nbits;
	int		pad;	/* '=' still expected; 3 once padding is complete */
};

#define BASE64_INIT { 0, 0, 0 }

void	base64_encode(struct base64 *, struct writer *, const void *, size_t);
void	base64_encode_end(struct base64 *, struct writer *);
int	base64_decode(struct base64 *, struct writer *, int c);
int	base64_decode_end(const struct base64 *);

#endif
