/*
 * Rate-limit decisions in the buckets every process shares (buckets.h):
 * made at once when their lock is free, which is nearly always; else
 * handed to a thread of their own that waits for it, up to the fail
 * bound, and wakes the loop through an eventfd with the answers.
 */
#ifndef RELAY_LIMITER_H
#define RELAY_LIMITER_H

#include "policy/gcra.h"

struct limiter;
/* How long a decision waits for the buckets' lock, then fails (ms). */
#define LIMITER_WAIT_MS	100

struct limiter_ask;

/* failed: the buckets could not be used in time (or at all). */
typedef void limiter_done_fn(void *, const struct gcra_decision *, int);

struct shared;

struct limiter		*limiter_start(const char *, int);
void			 limiter_share(struct limiter *, struct shared *);
void			 limiter_ask(struct limiter *, const char *,
			    const struct gcra_limit *, long long,
			    limiter_done_fn *, void *, struct limiter_ask **);
void			 limiter_pause(struct limiter *, const char *,
			    const struct gcra_limit *, long long);
void			 limiter_cancel(struct limiter_ask *);
void			 limiter_flush(struct limiter *);
int			 limiter_wake_fd(const struct limiter *);
void			 limiter_collect(struct limiter *);
void			 limiter_stop(struct limiter *);

#endif
