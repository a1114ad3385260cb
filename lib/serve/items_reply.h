/*
 * Batches and WebSocket channels answered over a reply (items_reply.c).
 */
#ifndef RELAY_ITEMS_REPLY_H
#define RELAY_ITEMS_REPLY_H

#include <stddef.h>

#include "net/server.h"
#include "serve/reply.h"

void	batch_reply(struct reply *, struct server *);
void	channel_reply(struct reply *, struct server *, size_t, long long);

#endif
