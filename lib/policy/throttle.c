/*
 * Throttling clients: which bucket a request counts against, and what
 * the answer says of it, in the fields of the IETF httpapi RateLimit
 * draft and, when refused, a 429 with Retry-After and an RFC 9457
 * problem. Pure: limiter.c and the store make the decisions.
 */
#include <string.h>

#include "http/headers.h"
#include "policy/throttle.h"

/* --limit-key: "peer", "route" or "header:NAME". Returns -1 if none of them. */
int
throttle_key_parse(const char *spec, struct throttle_policy *p)
{
	const char *name;

	if (strcmp(spec, "peer") == 0) {
		p->key = THROTTLE_PEER;
	} else if (strcmp(spec, "route") == 0) {
		p->key = THROTTLE_ROUTE;
	} else if (strncmp(spec, "header:", 7) == 0 && spec[7] != '\0') {
		for (name = spec + 7; *name != '\0'; name++)
			if (*name <= ' ' || *name == ':' || *name >= 0x7f)
				return -1;
		p->key = THROTTLE_HEADER;
		p->header = spec + 7;
	} else {
		return -1;
	}
	return 0;
}

/* A peer's address without its port: "[::1]:5210" is "[::1]". */
static void
add_address(struct buf *out, const char *peer)
{
	const char *end = peer[0] == '[' ? strchr(peer, ']') :
	    strrchr(peer, ':');

	if (peer[0] == '[' && end != NULL)
		end++;
	buf_add(out, peer, end != NULL ? (size_t)(end - peer) : strlen(peer));
}

/*
 * The bucket a request counts against: the policy's name, then the
 * client's address, the value of a request field (an API key; none is
 * one bucket of its own) or the route (else the path).
 */
void
throttle_key(struct buf *out, const struct throttle_policy *p,
    const char *peer, const char *fields, const char *route)
{
	struct header h;

	buf_adds(out, p->name);
	buf_addc(out, '\n');
	switch (p->key) {
	case THROTTLE_PEER:
		add_address(out, peer != NULL ? peer : "-");
		break;
	case THROTTLE_HEADER:
		if (headers_get(fields, p->header, &h))
			buf_add(out, h.value, h.value_len);
		break;
	case THROTTLE_ROUTE:
		buf_adds(out, route);
		break;
	}
}

static long long
seconds_up(long long us)
{
	return (us + 999999) / 1000000;
}

/*
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers,
 * structured fields): the quota per window, then what remains of it and
 * when it is all back.
 */
void
throttle_fields(struct buf *out, const struct throttle_policy *p,
    const struct gcra_decision *d)
{
	buf_adds(out, "RateLimit-Policy: \"");
	buf_adds(out, p->name);
	buf_adds(out, "\";q=");
	buf_addll(out, p->limit.count);
	buf_adds(out, ";w=");
	buf_addll(out, p->limit.period_us / 1000000);
	buf_adds(out, "\r\nRateLimit: \"");
	buf_adds(out, p->name);
	buf_adds(out, "\";r=");
	buf_addll(out, d->remaining);
	buf_adds(out, ";t=");
	buf_addll(out, seconds_up(d->reset_us));
	buf_adds(out, "\r\n");
}

/* A refusal's fields and RFC 9457 body; Retry-After is at least 1 s. */
void
throttle_refusal(struct buf *fields, struct buf *body,
    const struct throttle_policy *p, const struct gcra_decision *d)
{
	long long after = seconds_up(d->retry_us);

	if (after < 1)
		after = 1;
	buf_printf(fields, "Content-Type: application/problem+json\r\n"
	    "Retry-After: %lld\r\n", after);
	throttle_fields(fields, p, d);
	buf_printf(body, "{\"type\":\"about:blank\",\"title\":\"Too Many "
	    "Requests\",\"status\":429,\"detail\":\"over the limit of %lld "
	    "requests a %s; try again in %lld s\"}\n", p->limit.count,
	    p->limit.period_us == 1000000 ? "second" :
	    p->limit.period_us == 60000000 ? "minute" :
	    p->limit.period_us == 3600000000LL ? "hour" : "day", after);
}
