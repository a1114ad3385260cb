/*
 * SHA-1 (RFC 3174), for the places that still ask for it: the
 * WebSocket handshake (RFC 6455 section 4.2.2), Redis's names of
 * scripts (EVALSHA), and the name of a route's scope in the cache's
 * keys (cache_variant), where it only tells scopes apart. Not for
 * security.
 */
#ifndef RELAY_SHA1_H
#define RELAY_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN	20

struct sha1 {
	uint32_t	h[5];
	uint64_t	bytes;		/* hashed so far */
	unsigned char	block[64];
	size_t		used;		/* of block */
};

void	sha1_init(struct sha1 *);
void	sha1_update(struct sha1 *, const void *, size_t);
void	sha1_final(struct sha1 *, unsigned char[SHA1_LEN]);
void	sha1_hex(const void *, size_t, char[2 * SHA1_LEN + 1]);

#endif
