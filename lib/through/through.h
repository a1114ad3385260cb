/*
 * Cache-through: a request answered from the cache file when the rules
 * allow, else from the upstream through it, with one upstream request
 * per URL at a time across every process (leases) and the store's
 * writes on a thread of their own. relay-serve's plain requests, its
 * background revalidations and its merge calls all come this way.
 */
#ifndef RELAY_THROUGH_H
#define RELAY_THROUGH_H

#include <stddef.h>
#include <time.h>

#include "net/loop.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/store.h"
#include "through/gate.h"
#include "through/options.h"
#include "tier/shared.h"
#include "upstream/upstream.h"

/* How a stored response came to answer. */
enum through_how {
	THROUGH_HIT,		/* fresh */
	THROUGH_STALE,		/* within stale-while-revalidate */
	THROUGH_STALE_ERROR,	/* stale-if-error: the upstream failed */
	THROUGH_REVALIDATED,	/* the upstream said 304 */
	THROUGH_STALE_LIMITED,	/* the upstream's rate allows none now */
};

/* Why a request got no response. */
enum through_failure {
	THROUGH_UPSTREAM_FAILED = 1,
	THROUGH_TIMED_OUT,
	THROUGH_NOT_CACHED,	/* only-if-cached, and nothing stored */
	THROUGH_UPSTREAM_LIMITED,	/* over --upstream-rate: retry_after_s */
	THROUGH_DAMAGED,	/* offline, and the stored entry is damaged */
};

/* What a request knows about how it was answered, for its caller. */
struct through_result {
	int		 status;	/* of the response relayed */
	int		 stored;	/* it is being stored */
	int		 had_stored;	/* a stale one was there */
	int		 collapsed;	/* it waited for another's request */
	int		 shared;	/* the shared tier's entry, stored here */
	long long	 upstream_ms;	/* -1: the upstream was not asked */
	long long	 retry_after_s;	/* THROUGH_UPSTREAM_LIMITED */
	int		 may_stand_in;	/* at head: a stored response would
					   stand in if the transfer failed */
	const char	*final_url;	/* redirects led here, or NULL */
	time_t		 request_time;	/* of the response relayed */
	time_t		 response_time;
	const char	*error;		/* why it failed, or NULL */
};

/*
 * The caller's side of one request. stored answers from e (the
 * request's own copy, valid until the next call); head, body and done
 * relay the upstream's response as it arrives, as upstream.h's
 * callbacks do (body may return UPSTREAM_PAUSE: see through_resume).
 * fail ends a request that got nothing. Exactly one of stored, done
 * and fail ends each request, unless it is cancelled first. interim,
 * if not NULL, sees each interim (1xx) response the upstream sends the
 * request before its final one (upstream.h); never stored, and never
 * passed on to a request that waited for another's.
 *
 * reset, if not NULL, is asked to forget what head and body passed,
 * and returns 0 if it could (none of it went anywhere yet), else -1:
 * then a transfer that fails after its head may still be retried or
 * answered by the stored response (stale-if-error, result.may_stand_in);
 * a sink that streams as it receives has none.
 */
struct through_sink {
	void	(*stored)(void *, const struct store_entry *,
		    enum through_how);
	int	(*head)(void *, int, const char *);
	int	(*body)(void *, const void *, size_t);
	void	(*done)(void *, const char *);
	void	(*fail)(void *, enum through_failure, const char *);
	void	(*interim)(void *, int, const char *);
	int	(*reset)(void *);
};

struct through_request {
	const char		*key;		/* the upstream URL, normalised */
	const struct cache_rules *rules;	/* NULL: the options' */
	const char		*method;	/* the client's */
	const char		*fields;	/* the client's, for Vary */
	const char		*scope;		/* fields relay adds, kept apart
						   in the cache: cache_variant */
	const char		*forward;	/* fields to send upstream; NULL:
						   the client's (fields) that
						   may go on (http.h) */
	const char		*body;		/* to send upstream, or NULL; the
						   caller's until the call ends
						   or is cancelled */
	size_t			 body_len;
	struct policy_request	 directives;	/* the client's */
	int			 stored_only;	/* a fresh stored one, or fail */
	int			 retries;	/* after a transport error or a
						   429, 502, 503, 504; backoff,
						   or as Retry-After says, up
						   to a minute (longer: the
						   response answers) */
	long			 max_redirects;	/* followed; the response is
						   stored under the last URL */
	int			 unstored_5xx;	/* a 5xx is relayed, never
						   stored: a failure to report
						   (relay-fetch(1)) */
};

struct through;
struct through_call;

/*
 * through_new with no upstream is offline: any stored response answers,
 * however old, and nothing is asked or written, not even a hit count.
 */
struct through	*through_new(const char *, struct loop *, struct upstream *,
		    const struct options *);
void		 through_free(struct through *);
int			 through_would_hit(struct through *, const char *,
			    const char *);
void		 through_gate(struct through *, struct gate *);
void		 through_share(struct through *, const struct redis_target *,
		    const struct shared_options *);
struct shared	*through_shared(const struct through *);
struct store	*through_reader(struct through *);
void		 through_idle(struct through *, int);
int		 through_busy(const struct through *);

void		 through_start(struct through *,
		    const struct through_request *, const struct through_sink *,
		    void *, struct through_call **);
const char	*through_memory_body(const struct through_call *);
const struct through_result *through_result(const struct through_call *);
void		 through_resume(struct through_call *);
void		 through_cancel(struct through_call *);
void		 through_store(struct through *, const char *, const char *,
		    const struct buf *, const struct cache_rules *);

#endif
