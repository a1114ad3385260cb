/*
 * GET /_relay/sync answered over a reply (sync_reply.c).
 */
#ifndef RELAY_SYNC_REPLY_H
#define RELAY_SYNC_REPLY_H

#include "net/loop.h"
#include "serve/reply.h"
#include "store/store.h"

void	sync_reply(struct reply *, struct loop *, struct store *,
	    const char *, const char *, long long);

#endif
