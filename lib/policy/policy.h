/*
 * RFC 9111 shared-cache rules as pure functions of header blocks and
 * times: storability, freshness lifetime, age, and what to do with a
 * stored response for a request. No I/O.
 */
#ifndef RELAY_POLICY_H
#define RELAY_POLICY_H

#include <time.h>

#include "base/buf.h"

#define POLICY_DEFAULT_TTL 300
#define POLICY_DELTA_MAX 2147483648LL	/* RFC 9111 section 1.2.2 */
#define POLICY_MAX_TARGETS 4		/* targeted fields obeyed */
#define POLICY_MAX_TARGET_NAME 63

/* What a cache must remember of a response to compute its age. */
struct policy_times {
	time_t		request_time;	/* when the request was sent */
	time_t		response_time;	/* when the response arrived */
	time_t		date;		/* its Date, or -1 */
	long long	age;		/* its Age, or 0 */
};

/* Request directives, RFC 9111 section 5.2.1. */
struct policy_request {
	int		no_cache;	/* also Pragma: no-cache */
	int		no_store;
	int		only_if_cached;
	long long	max_age;	/* -1 if absent */
	long long	max_stale;	/* -1 if absent; no value: any */
	long long	min_fresh;
};

enum policy_use {
	POLICY_FRESH,			/* serve the stored response */
	POLICY_STALE_REVALIDATE,	/* serve it, revalidate meanwhile */
	POLICY_REVALIDATE,		/* ask the upstream first */
};

int		policy_directive(const char *, const char *, long long *);
int		policy_set_targets(const char *);
int		policy_is_target(const char *);
void		policy_add_capability(struct buf *);
const char	*policy_unstorable(const char *, int, const char *,
		    const char *);
void		policy_request_parse(const char *, struct policy_request *);
enum policy_use	policy_use(const struct policy_request *, const char *,
		    long long, long long);
int		policy_may_go_stale(const char *);
int		policy_stale_if_error(const char *, long long, long long,
		    long long);
char		*policy_variant(const char *, const char *);
long long	policy_lifetime(const char *, time_t, long long);
long long	policy_age_value(const char *);
void		policy_times_from(const char *, time_t, time_t,
		    struct policy_times *);
long long	policy_initial_age(const struct policy_times *);
long long	policy_current_age(const struct policy_times *, time_t);
time_t		policy_stale_at(const struct policy_times *, long long);

#endif
