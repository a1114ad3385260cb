/*
 * A request --queue keeps, answered over a reply (queue_reply.c).
 */
#ifndef RELAY_QUEUE_REPLY_H
#define RELAY_QUEUE_REPLY_H

#include <stddef.h>

#include "serve/deliver.h"
#include "serve/reply.h"

int	queue_wants(const struct reply *, const char *, char *const *,
	    size_t);
void	queue_reply(struct reply *, struct deliver *, const char *,
	    const char *);

#endif
