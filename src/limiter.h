/*
 * Rate-limit decisions off the event loop: a thread of their own takes
 * every request asked for meanwhile, decides them in one transaction
 * on the limits file (store_buckets_take), and wakes the loop through
 * an eventfd to hand the answers back.
 */
#ifndef RELAY_LIMITER_H
#define RELAY_LIMITER_H

#include "gcra.h"

struct limiter;
struct limiter_ask;

/* failed: the limits file could not be written in time. */
typedef void limiter_done_fn(void *, const struct gcra_decision *, int);

struct limiter		*limiter_start(const char *, int);
struct limiter_ask	*limiter_ask(struct limiter *, const char *,
			    const struct gcra_limit *, long long,
			    limiter_done_fn *, void *);
void			 limiter_pause(struct limiter *, const char *,
			    const struct gcra_limit *, long long);
long long		 limiter_now_us(void);
void			 limiter_cancel(struct limiter_ask *);
void			 limiter_flush(struct limiter *);
int			 limiter_wake_fd(const struct limiter *);
void			 limiter_collect(struct limiter *);
void			 limiter_stop(struct limiter *);

#endif
