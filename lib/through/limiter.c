/*
 * Rate-limit decisions in the buckets every process shares (buckets.h):
 * made at once when their lock is free, which is nearly always; else
 * handed to a thread of their own that waits for it, up to the fail
 * bound, and wakes the loop through an eventfd with the answers. The
 * event loop never waits for the lock.
 *
 * With a shared tier (shared.h), decisions are made in Redis for every
 * host instead, and here only when it is down or too slow to answer.
 */
#include <sys/eventfd.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/prog.h"
#include "store/buckets.h"
#include "through/limiter.h"
#include "tier/shared.h"

struct limiter_ask {
	struct limiter_ask	*next;
	const char		*key;		/* borrowed, or key_copy */
	struct gcra_limit	 limit;
	long long		 wait_us, pause_until_us;
	struct gcra_decision	 decision;
	int			 failed;
	limiter_done_fn		*done;
	void			*ctx;		/* NULL once cancelled */
	struct limiter		*l;
	struct shared_ask	*shared;	/* being decided there */
	char			 key_copy[];	/* a deferred ask's own */
};

struct limiter {
	struct buckets		*b;		/* NULL: they cannot be used */
	int			 wait_ms;	/* the thread's, for the lock */
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;
	struct limiter_ask	*asked, **asked_tail;
	struct limiter_ask	*round, **round_tail;	/* the loop's, unlocked */
	struct limiter_ask	*done, **done_tail;
	int			 closing;
	int			 wake_fd;
	struct shared		*shared;	/* NULL: this host's alone */
};

static struct limiter_ask *
take_asked(struct limiter *l)
{
	struct limiter_ask *asks;

	pthread_mutex_lock(&l->lock);
	while (l->asked == NULL && !l->closing)
		pthread_cond_wait(&l->work, &l->lock);
	asks = l->asked;
	l->asked = NULL;
	l->asked_tail = &l->asked;
	pthread_mutex_unlock(&l->lock);
	return asks;
}

/* One ask, waiting up to wait_ms for the lock; failed if it cannot. */
static int
decide(struct limiter *l, struct limiter_ask *a, int wait_ms)
{
	enum buckets_result r;

	if (l->b == NULL) {
		a->failed = 1;
		return 1;
	}
	if (a->pause_until_us > 0)
		r = buckets_pause(l->b, a->key, &a->limit, a->pause_until_us,
		    prog_clock_us(), wait_ms);
	else
		r = buckets_take(l->b, a->key, &a->limit, a->wait_us,
		    prog_clock_us(), wait_ms, &a->decision);
	a->failed = r != BUCKETS_DECIDED;
	return r != BUCKETS_BUSY || wait_ms > 0;
}

static void *
limiter_thread(void *arg)
{
	struct limiter *l = arg;
	struct limiter_ask *asks, *last;
	uint64_t one = 1;

	while ((asks = take_asked(l)) != NULL) {
		for (last = asks; ; last = last->next) {
			decide(l, last, l->wait_ms);
			if (last->next == NULL)
				break;
		}
		pthread_mutex_lock(&l->lock);
		*l->done_tail = asks;
		l->done_tail = &last->next;
		pthread_mutex_unlock(&l->lock);
		(void)!write(l->wake_fd, &one, sizeof one);
	}
	return NULL;
}

/*
 * Maps the buckets beside cache_path and starts the thread, which
 * waits at most wait_ms for their lock. The thread takes no signals.
 */
struct limiter *
limiter_start(const char *cache_path, int wait_ms)
{
	struct limiter *l = xcalloc(1, sizeof *l);
	char why[512] = "";

	if ((l->b = buckets_open(cache_path, why, sizeof why)) == NULL)
		prog_warnx("%s; rate limits take their --rate-limit-fail choice",
		    why);
	l->wait_ms = wait_ms;
	l->asked_tail = &l->asked;
	l->round_tail = &l->round;
	l->done_tail = &l->done;
	if ((l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		prog_err(EX_OSERR, "cannot start the rate limiter");
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->work, NULL);
	prog_start_thread(&l->thread, limiter_thread, l, "rate limiter");
	return l;
}

static struct limiter_ask *
new_ask(const char *key, const struct gcra_limit *limit)
{
	size_t len = strlen(key);
	struct limiter_ask *a = xcalloc(1, sizeof *a + len + 1);

	memcpy(a->key_copy, key, len + 1);
	a->key = a->key_copy;
	a->limit = *limit;
	return a;
}

static void
free_ask(struct limiter_ask *a)
{
	free(a);
}

/* For the thread, at the round's end (limiter_flush). */
static struct limiter_ask *
defer(struct limiter *l, struct limiter_ask *a)
{
	*l->round_tail = a;
	l->round_tail = &a->next;
	return a;
}

/* Decisions from now on are made for every host, when it can (shared.h). */
void
limiter_share(struct limiter *l, struct shared *sh)
{
	l->shared = sh;
}

/* Here, at once or on the thread: the shared tier did not decide. */
static void
decide_here(struct limiter *l, struct limiter_ask *a)
{
	if (!decide(l, a, 0)) {
		defer(l, a);
		return;
	}
	if (a->ctx != NULL)
		a->done(a->ctx, &a->decision, a->failed);
	free_ask(a);
}

static void
on_shared_decided(void *ctx, const struct gcra_decision *d)
{
	struct limiter_ask *a = ctx;

	a->shared = NULL;
	if (d == NULL) {
		decide_here(a->l, a);
		return;
	}
	if (a->ctx != NULL)
		a->done(a->ctx, d, 0);
	free_ask(a);
}

/*
 * Decides one request under a limit, which may wait up to wait_us for
 * its turn (gcra_decide). Decided at once, *asking is set to NULL and
 * done is called before this returns; else *asking is the ask, whose
 * answer comes from limiter_collect unless it is cancelled first.
 * After done, neither *asking nor ctx is touched.
 */
void
limiter_ask(struct limiter *l, const char *key, const struct gcra_limit *limit,
    long long wait_us, limiter_done_fn *done, void *ctx,
    struct limiter_ask **asking)
{
	struct limiter_ask now = { .key = key, .limit = *limit,
		.wait_us = wait_us }, *a;

	if (l->shared != NULL) {
		a = new_ask(key, limit);
		a->wait_us = wait_us;
		a->done = done;
		a->ctx = ctx;
		a->l = l;
		if ((a->shared = shared_take(l->shared, key, limit, wait_us,
		    on_shared_decided, a)) != NULL) {
			*asking = a;
			return;
		}
		free_ask(a);
	}
	if (decide(l, &now, 0)) {	/* nothing to keep: on the stack */
		*asking = NULL;
		done(ctx, &now.decision, now.failed);
		return;
	}
	a = new_ask(key, limit);
	a->wait_us = wait_us;
	a->done = done;
	a->ctx = ctx;
	*asking = defer(l, a);
}

/* Lets no request under the key through until until_us (gcra_pause). */
void
limiter_pause(struct limiter *l, const char *key,
    const struct gcra_limit *limit, long long until_us)
{
	struct limiter_ask now = { .key = key, .limit = *limit,
		.pause_until_us = until_us };

	if (l->shared != NULL)	/* here too: for when the tier is down */
		(void)shared_pause(l->shared, key, limit,
		    (until_us - prog_clock_us() + 999) / 1000);
	if (!decide(l, &now, 0))
		defer(l, new_ask(key, limit))->pause_until_us = until_us;
}

/* After each round of events: its asks go to the thread. */
void
limiter_flush(struct limiter *l)
{
	if (l == NULL || l->round == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	*l->asked_tail = l->round;
	l->asked_tail = l->round_tail;
	pthread_cond_signal(&l->work);
	pthread_mutex_unlock(&l->lock);
	l->round = NULL;
	l->round_tail = &l->round;
}

/* Its caller has gone: the decision is made, and dropped. */
void
limiter_cancel(struct limiter_ask *a)
{
	if (a->shared != NULL) {	/* not to come back at all */
		shared_cancel(a->shared);
		free_ask(a);
		return;
	}
	a->ctx = NULL;
}

int
limiter_wake_fd(const struct limiter *l)
{
	return l->wake_fd;
}

/* Hands the decisions made so far to their callers. */
void
limiter_collect(struct limiter *l)
{
	struct limiter_ask *a, *next;
	uint64_t n;

	(void)!read(l->wake_fd, &n, sizeof n);
	pthread_mutex_lock(&l->lock);
	a = l->done;
	l->done = NULL;
	l->done_tail = &l->done;
	pthread_mutex_unlock(&l->lock);
	for (; a != NULL; a = next) {
		next = a->next;
		if (a->ctx != NULL)
			a->done(a->ctx, &a->decision, a->failed);
		free_ask(a);
	}
}

/* Decides what is asked still, then stops; the callbacks are not called. */
void
limiter_stop(struct limiter *l)
{
	struct limiter_ask *a, *next;

	if (l == NULL)
		return;
	limiter_flush(l);
	pthread_mutex_lock(&l->lock);
	l->closing = 1;
	pthread_cond_signal(&l->work);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	for (a = l->done; a != NULL; a = next) {
		next = a->next;
		free_ask(a);
	}
	close(l->wake_fd);
	pthread_cond_destroy(&l->work);
	pthread_mutex_destroy(&l->lock);
	buckets_close(l->b);
	free(l);
}
