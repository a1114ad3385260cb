/*
 * A merge route answered over a reply (merge_reply.c).
 */
#ifndef RELAY_MERGE_REPLY_H
#define RELAY_MERGE_REPLY_H

#include "serve/merge.h"
#include "serve/reply.h"

void	merge_reply(struct reply *, struct merge_env *, const char *,
	    struct route *, struct route_params *);

#endif
