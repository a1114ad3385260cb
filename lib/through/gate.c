/*
 * The upstream's own quota (--upstream-rate): every request to an
 * upstream origin waits for its turn in one bucket that every process
 * shares through the limiter, up to a bound; and an upstream that says
 * 429 or 503 with Retry-After pauses that bucket until then.
 *
 * A turn is kept in the bucket when it is given (gcra_decide with a
 * wait), so that the requests of every process are spaced as the rate
 * says however many wait: each sleeps on a timer of its own until its
 * time comes.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prog.h"
#include "http/http.h"
#include "through/gate.h"

#define PAUSE_MAX_S	3600	/* the longest Retry-After obeyed */

struct gate {
	struct loop		*loop;
	struct limiter		*limiter;
	struct gcra_limit	 limit;
	long long		 wait_us;	/* --upstream-wait */
	int			 fail_closed;	/* --rate-limit-fail closed */
	int			 warned;
};

struct gate_turn {
	struct gate		*g;
	struct limiter_ask	*asking;
	struct watch		*timer;		/* until the turn comes */
	gate_fn			*fn;
	void			*ctx;
};

/* The bucket of url's origin: "upstream https://host:port". */
static void
bucket_key(struct buf *key, const char *url)
{
	const char *host = strstr(url, "://");

	host = host != NULL ? host + 3 : url;
	buf_adds(key, "upstream ");
	buf_add(key, url, (size_t)(host - url) + strcspn(host, "/?#"));
}

/*
 * wait_ms: how long a request may wait for its turn. fail_closed: when
 * the buckets cannot decide in time, requests are refused (as
 * if over the rate) rather than sent.
 */
struct gate *
gate_new(struct loop *loop, struct limiter *l, const struct gcra_limit *limit,
    long long wait_ms, int fail_closed)
{
	struct gate *g = xcalloc(1, sizeof *g);

	g->loop = loop;
	g->limiter = l;
	g->limit = *limit;
	g->wait_us = wait_ms * 1000;
	g->fail_closed = fail_closed;
	return g;
}

void
gate_free(struct gate *g)
{
	free(g);
}

/* Ends a turn with its answer; the turn is gone once fn is called. */
static void
turn_end(struct gate_turn *t, int go, long long retry_after_s)
{
	gate_fn *fn = t->fn;
	void *ctx = t->ctx;

	t->asking = NULL;
	gate_cancel(t);
	fn(ctx, go, retry_after_s);
}

static void
on_time(struct watch *w, short revents, void *ctx)
{
	(void)w, (void)revents;
	turn_end(ctx, 1, 0);
}

static void
on_decided(void *ctx, const struct gcra_decision *d, int failed)
{
	struct gate_turn *t = ctx;

	if (failed) {
		if (!t->g->warned++)
			prog_warnx("the upstream's rate could not be checked in "
			    "time: requests %s (--rate-limit-fail %s)",
			    t->g->fail_closed ? "wait" : "go",
			    t->g->fail_closed ? "closed" : "open");
		turn_end(t, !t->g->fail_closed, 1);
	} else if (!d->allowed) {
		turn_end(t, 0, (d->retry_us + 999999) / 1000000);
	} else if (d->wait_us == 0) {
		turn_end(t, 1, 0);
	} else {
		t->asking = NULL;
		t->timer = loop_watch(t->g->loop, -1, 0, on_time, t);
		watch_deadline(t->timer, prog_now_ms() +
		    (d->wait_us + 999) / 1000);
	}
}

/*
 * Asks for a turn to send a request for url, setting *turn to it
 * first: fn is called once, when it comes or is refused (maybe before
 * this returns, *turn then untouched after), unless the turn is
 * cancelled first.
 */
void
gate_ask(struct gate *g, const char *url, gate_fn *fn, void *ctx,
    struct gate_turn **turn)
{
	struct gate_turn *t = xcalloc(1, sizeof *t);
	struct buf key = BUF_INIT;

	t->g = g;
	t->fn = fn;
	t->ctx = ctx;
	*turn = t;
	bucket_key(&key, url);
	limiter_ask(g->limiter, buf_cstr(&key), &g->limit, g->wait_us,
	    on_decided, t, &t->asking);	/* t may be gone now */
	buf_free(&key);
}

void
gate_cancel(struct gate_turn *t)
{
	if (t == NULL)
		return;
	if (t->asking != NULL)
		limiter_cancel(t->asking);
	if (t->timer != NULL)
		loop_unwatch(t->timer);
	free(t);
}

/*
 * The upstream answered a request for url: a 429 or 503 with
 * Retry-After pauses every process's requests to its origin until
 * then. Returns whether it did.
 */
int
gate_answered(struct gate *g, const char *url, int status, const char *fields)
{
	struct buf key = BUF_INIT;
	long long ms;

	if ((status != 429 && status != 503) ||
	    (ms = http_retry_after_ms(fields, PAUSE_MAX_S)) <= 0)
		return 0;
	bucket_key(&key, url);
	limiter_pause(g->limiter, buf_cstr(&key), &g->limit,
	    prog_clock_us() + ms * 1000);
	buf_free(&key);
	return 1;
}
