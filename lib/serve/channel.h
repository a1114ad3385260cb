/*
 * GET /_relay/ws: a WebSocket channel (ws.h) on which the client sends
 * items (item.h) as text messages whenever it likes and gets each
 * answer's line back as a text message as soon as it is ready, tagged
 * with its id. At most CHANNEL_AT_ONCE items at a time: further
 * messages are not read until one ends, so that a client sending
 * faster than it is answered is held back by TCP, not by memory.
 */
#ifndef RELAY_CHANNEL_H
#define RELAY_CHANNEL_H

#include <stddef.h>

#include "net/server.h"

#define CHANNEL_AT_ONCE	32

/* The channel's connection, as the program answers on it. */
struct channel_out {
	void	(*write)(void *, const void *, size_t);
	void	(*end)(void *);		/* close it, once written */
	size_t	(*queued)(void *);
};

struct channel;

struct channel	*channel_open(struct server *, struct conn *, const char *,
		    size_t, long long, const struct channel_out *, void *);
void		 channel_start(struct channel *);
void		 channel_writable(struct channel *);
void		 channel_free(struct channel *);

#endif
