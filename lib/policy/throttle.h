/*
 * Throttling clients: which bucket a request counts against, and what
 * the answer says of it, in the fields of the IETF httpapi RateLimit
 * draft and, when refused, a 429 with Retry-After and an RFC 9457
 * problem. Pure: limiter.c and the store make the decisions.
 */
#ifndef RELAY_THROTTLE_H
#define RELAY_THROTTLE_H

#include "base/buf.h"
#include "policy/gcra.h"

enum throttle_key { THROTTLE_PEER, THROTTLE_HEADER, THROTTLE_ROUTE };

struct throttle_policy {
	const char		*name;		/* in the fields: "default" */
	struct gcra_limit	 limit;
	enum throttle_key	 key;
	const char		*header;	/* THROTTLE_HEADER's field */
};

int	throttle_key_parse(const char *, struct throttle_policy *);
void	throttle_key(struct buf *, const struct throttle_policy *,
	    const char *, const char *, const char *);
void	throttle_fields(struct buf *, const struct throttle_policy *,
	    const struct gcra_decision *);
void	throttle_refusal(struct buf *, struct buf *,
	    const struct throttle_policy *, const struct gcra_decision *);

#endif
