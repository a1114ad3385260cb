/*
 * A request answered through the cache-through (forward.c).
 */
#ifndef RELAY_FORWARD_H
#define RELAY_FORWARD_H

#include "serve/reply.h"
#include "through/through.h"

void	forward_reply(struct reply *, struct through *, const char *);
void	forward_stored_or(struct reply *, struct through *, const char *,
	    const struct reply_feature *, void *, void (*)(void *));

#endif
