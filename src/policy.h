/*
 * RFC 9111 shared-cache rules as pure functions of header blocks and
 * times: freshness lifetime and age. No I/O.
 */
#ifndef RELAY_POLICY_H
#define RELAY_POLICY_H

#include <time.h>

#define POLICY_DEFAULT_TTL 300
#define POLICY_DELTA_MAX 2147483648LL	/* RFC 9111 section 1.2.2 */

/* What a cache must remember of a response to compute its age. */
struct policy_times {
	time_t		request_time;	/* when the request was sent */
	time_t		response_time;	/* when the response arrived */
	time_t		date;		/* its Date, or -1 */
	long long	age;		/* its Age, or 0 */
};

int		policy_directive(const char *, const char *, long long *);
long long	policy_lifetime(const char *, time_t, long long);
void		policy_times_from(const char *, time_t, time_t,
		    struct policy_times *);
long long	policy_initial_age(const struct policy_times *);
long long	policy_current_age(const struct policy_times *, time_t);
time_t		policy_stale_at(const struct policy_times *, long long);

#endif
