/*
 * A stored response as an answer over a reply (stored.c), and the
 * rules it follows that tests reach alone.
 */
#ifndef RELAY_STORED_H
#define RELAY_STORED_H

#include <stddef.h>

#include "serve/reply.h"
#include "store/store.h"
#include "through/through.h"

/* How the cache-through came by it, for its Cache-Status. */
struct stored_how {
	int	shared;		/* another host's, through the shared tier */
	int	collapsed;	/* waited for another request's */
	int	had_stored;	/* a stale one was there */
};

void		 stored_reply(struct reply *, struct store *, const char *,
		    const struct store_entry *, const char *,
		    enum through_how, const struct stored_how *);
void		 stored_cache_status(const struct stored_how *,
		    enum through_how, long long, char *, size_t);
const char	*stored_log_word(const struct stored_how *, enum through_how);

#endif
