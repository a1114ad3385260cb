/*
 * A request counted against its rate limit before it is answered
 * (limit_reply.c): under its route's own limit if it has one, else
 * the default (--rate-limit); over it, 429 with the RateLimit fields
 * and a problem (RFC 9457); within it, the fields go with the answer.
 */
#ifndef RELAY_LIMIT_REPLY_H
#define RELAY_LIMIT_REPLY_H

#include "policy/throttle.h"
#include "serve/reply.h"
#include "serve/routes.h"
#include "through/limiter.h"

struct limits {
	struct throttle_policy	 policy;	/* the default */
	int			 dry_run;	/* count, refuse nothing */
	int			 fail_closed;	/* undecided: 503 */
	struct limiter		*(*limiter)(void);	/* started if not yet */
};

/* Answers once allowed: route (or NULL) with its parameters, as asked. */
typedef void limit_then_fn(void *, struct route *, struct route_params *);

void	limit_reply(struct limits *, struct reply *, struct route *,
	    struct route_params *, const char *, limit_then_fn *, void *);

#endif
