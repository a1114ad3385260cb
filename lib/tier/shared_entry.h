/*
 * A response as the shared tier keeps it in Redis: what RFC 9111
 * needs to compute its freshness and Age on any host exactly as for
 * one stored here (its fields as received, its request's fields for
 * Vary, the request and response times), and its body. Pure. Redis's
 * bytes are checked as hostile on the way back.
 */
#ifndef RELAY_SHARED_ENTRY_H
#define RELAY_SHARED_ENTRY_H

#include <stddef.h>

#include "base/buf.h"
#include "store/cache.h"

void	shared_entry_encode(struct buf *, const struct cache_response *,
	    const void *, size_t);

/* A decoded entry: r's strings and body point into these bufs. */
struct shared_entry {
	struct cache_response	 r;
	struct buf		 url, headers, request_headers;
	const char		*body;
	size_t			 body_len;
};

int	shared_entry_decode(const char *, size_t, const char *,
	    struct shared_entry *, const char **);
void	shared_entry_free(struct shared_entry *);

#endif
