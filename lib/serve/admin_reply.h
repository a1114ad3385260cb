/*
 * relay-serve's own endpoints answered over a reply (admin_reply.c).
 */
#ifndef RELAY_ADMIN_REPLY_H
#define RELAY_ADMIN_REPLY_H

#include "serve/admin.h"
#include "serve/reply.h"
#include "tier/shared.h"

void	admin_reply(struct admin *, struct reply *, const char *,
	    struct shared *);
void	admin_report(struct admin *, struct shared *, const char *,
	    const char *);

#endif
