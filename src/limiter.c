/*
 * Rate-limit decisions off the event loop: a thread of their own takes
 * every request asked for meanwhile, decides them in one transaction
 * on the limits file (store_buckets_take), and wakes the loop through
 * an eventfd to hand the answers back.
 */
#include <sys/eventfd.h>

#include <err.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "limiter.h"
#include "prog.h"
#include "store.h"

#define EXPIRE_EVERY_US	10000000LL	/* full buckets are forgotten */

struct limiter_ask {
	struct limiter_ask	*next;
	char			*key;
	struct gcra_limit	 limit;
	long long		 wait_us, pause_until_us;
	struct gcra_decision	 decision;
	int			 failed;
	limiter_done_fn		*done;
	void			*ctx;		/* NULL once cancelled */
};

struct limiter {
	struct store		*s;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;
	struct limiter_ask	*asked, **asked_tail;
	struct limiter_ask	*round, **round_tail;	/* the loop's, unlocked */
	struct limiter_ask	*done, **done_tail;
	int			 closing;
	int			 wake_fd;
	long long		 expired_us;
};

/* The clock every process shares: buckets (and pauses) are kept in it. */
long long
limiter_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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

/* Decides a batch in one transaction; all of it fails together. */
static void
decide(struct limiter *l, struct limiter_ask *asks)
{
	struct store_bucket *b;
	struct limiter_ask *a;
	size_t n = 0, i;
	long long now = limiter_now_us();
	int expire = now - l->expired_us >= EXPIRE_EVERY_US, failed;

	for (a = asks; a != NULL; a = a->next)
		n++;
	b = xcalloc(n, sizeof *b);
	for (a = asks, i = 0; a != NULL; a = a->next, i++) {
		b[i].key = a->key;
		b[i].limit = &a->limit;
		b[i].wait_us = a->wait_us;
		b[i].pause_until_us = a->pause_until_us;
	}
	failed = store_buckets_take(l->s, b, n, now, expire) < 0;
	if (!failed && expire)
		l->expired_us = now;
	for (a = asks, i = 0; a != NULL; a = a->next, i++) {
		a->decision = b[i].decision;
		a->failed = failed;
	}
	free(b);
}

static void *
limiter_thread(void *arg)
{
	struct limiter *l = arg;
	struct limiter_ask *asks, *last;
	uint64_t one = 1;

	while ((asks = take_asked(l)) != NULL) {
		decide(l, asks);
		for (last = asks; last->next != NULL; last = last->next)
			;
		pthread_mutex_lock(&l->lock);
		*l->done_tail = asks;
		l->done_tail = &last->next;
		pthread_mutex_unlock(&l->lock);
		(void)!write(l->wake_fd, &one, sizeof one);
	}
	return NULL;
}

/*
 * Opens the limits file beside cache_path and starts the thread; a
 * write waits at most wait_ms for another process's lock. The thread
 * takes no signals.
 */
struct limiter *
limiter_start(const char *cache_path, int wait_ms)
{
	struct limiter *l = xcalloc(1, sizeof *l);

	l->s = store_open_limits(cache_path, wait_ms);
	if (store_status(l->s) != 0)
		warnx("%s; rate limits take their --rate-limit-fail choice",
		    store_error(l->s));
	l->asked_tail = &l->asked;
	l->round_tail = &l->round;
	l->done_tail = &l->done;
	if ((l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		err(EX_OSERR, "cannot start the rate limiter");
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->work, NULL);
	prog_start_thread(&l->thread, limiter_thread, l, "rate limiter");
	return l;
}

static struct limiter_ask *
add_ask(struct limiter *l, const char *key, const struct gcra_limit *limit)
{
	struct limiter_ask *a = xcalloc(1, sizeof *a);

	a->key = xstrdup(key);
	a->limit = *limit;
	*l->round_tail = a;
	l->round_tail = &a->next;
	return a;
}

/*
 * Asks for one request under a limit, which may wait up to wait_us
 * for its turn (gcra_decide); done is called from limiter_collect,
 * unless the ask is cancelled first. The asks of a round of events go
 * to the thread together, at limiter_flush: one transaction for all.
 */
struct limiter_ask *
limiter_ask(struct limiter *l, const char *key, const struct gcra_limit *limit,
    long long wait_us, limiter_done_fn *done, void *ctx)
{
	struct limiter_ask *a = add_ask(l, key, limit);

	a->wait_us = wait_us;
	a->done = done;
	a->ctx = ctx;
	return a;
}

/* Lets no request under the key through until until_us (gcra_pause). */
void
limiter_pause(struct limiter *l, const char *key,
    const struct gcra_limit *limit, long long until_us)
{
	add_ask(l, key, limit)->pause_until_us = until_us;
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
		free(a->key);
		free(a);
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
		free(a->key);
		free(a);
	}
	close(l->wake_fd);
	pthread_cond_destroy(&l->work);
	pthread_mutex_destroy(&l->lock);
	store_close(l->s);
	free(l);
}
