/*
 * Flights (call.h): one URL's requests while its answer is not in the
 * file, within this process, and the leases that extend that to others.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/prog.h"
#include "through/call.h"

/* Queues a woken call; the ready timer takes it up. */
static void
call_ready(struct through *th, struct through_call *c, int go_upstream)
{
	c->flight = NULL;
	c->go_upstream = go_upstream;
	c->next = NULL;
	*th->ready_tail = c;
	th->ready_tail = &c->next;
	watch_deadline(th->ready_timer, 1);	/* at once */
}

struct flight *
flight_find(struct through *th, const char *key)
{
	struct flight *f;

	for (f = th->flights; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* When the flight next needs a look: a waiter's bound, a recheck. */
void
flight_schedule(struct flight *f)
{
	struct through_call *c;
	long long at = f->state == FLIGHT_REMOTE || (f->state ==
	    FLIGHT_SHARED && f->asking == NULL) ? f->recheck_ms : 0;

	for (c = f->waiters; c != NULL; c = c->next)
		if (at == 0 || c->wait_until < at)
			at = c->wait_until;
	watch_deadline(f->watch, at);
}

void
flight_release_waiters(struct flight *f, int go_upstream)
{
	struct through_call *c;

	while ((c = f->waiters) != NULL) {
		f->waiters = c->next;
		call_ready(f->th, c, go_upstream);
	}
}

/*
 * Ends the flight: the lease is given up, so other processes' waiters
 * wake, and the waiters here look the URL up again, or go upstream.
 */
void
flight_end(struct flight *f)
{
	struct flight **p;

	for (p = &f->th->flights; *p != f; p = &(*p)->next)
		;
	*p = f->next;
	if (f->holder != NULL)
		f->holder->flight = NULL;
	flight_release_waiters(f, f->uncacheable);
	shared_cancel(f->asking);
	if (f->token[0] != '\0')	/* given up: other hosts may go on */
		shared_put(f->th->shared, f->key, f->token, NULL, NULL, 0, 0);
	lease_end(f->lease);
	loop_unwatch(f->watch);
	free(f->key);
	free(f);
}

/* A waiter that has waited its bound asks the upstream itself. */
static void
expire_waiters(struct flight *f, long long now)
{
	struct through_call **p, *c;

	for (p = &f->waiters; (c = *p) != NULL;) {
		if (c->wait_until > now) {
			p = &c->next;
			continue;
		}
		*p = c->next;
		call_ready(f->th, c, 1);
	}
}

static void
flight_tick(struct watch *w, short revents, void *ctx)
{
	struct flight *f = ctx;
	long long now = prog_now_ms();

	(void)w;
	if (f->state == FLIGHT_SHARED && f->asking == NULL &&
	    now >= f->recheck_ms) {
		share_ask(f, 0);	/* the other host's lease may be over */
		return;
	}
	if (f->state == FLIGHT_REMOTE && (revents != 0 ||
	    now >= f->recheck_ms)) {
		if (revents != 0 || !lease_busy(f->lease)) {
			flight_end(f);	/* its holder is done, or dead */
			return;
		}
		f->recheck_ms = now + LEASE_RECHECK_MS;
	}
	expire_waiters(f, now);
	if (f->state == FLIGHT_REMOTE && f->waiters == NULL)
		flight_end(f);	/* no one is left to wait */
	else
		flight_schedule(f);
}

struct flight *
flight_new(struct through *th, const char *key, enum flight_state state,
    int fd)
{
	struct flight *f = xcalloc(1, sizeof *f);

	f->th = th;
	f->key = xstrdup(key);
	f->state = state;
	f->watch = loop_watch(th->loop, fd, POLLIN, flight_tick, f);
	f->next = th->flights;
	th->flights = f;
	return f;
}

/*
 * c waits for the flight; collapsed if for another's request, not only
 * for a write that a finished one queued (read-your-writes).
 */
void
flight_wait(struct flight *f, struct through_call *c, int collapsed)
{
	c->flight = f;
	c->result.collapsed |= collapsed;
	c->wait_until = prog_now_ms() + f->th->opt.collapse_ms;
	c->next = f->waiters;
	f->waiters = c;
	flight_schedule(f);
}

/* The flight c holds, if it holds one. */
struct flight *
flight_held(const struct through_call *c)
{
	return c->flight != NULL && c->flight->holder == c ? c->flight : NULL;
}

/* Gives the flight up: its waiters ask the upstream on their own. */
void
flight_abandon(struct through_call *c)
{
	struct flight *f = flight_held(c);

	if (f != NULL) {
		f->uncacheable = 1;
		flight_end(f);
	}
}

/*
 * The lease for a write made here, not fetched (a merged answer), so
 * that other processes wait for it too; NULL if another holds it.
 */
static struct lease *
store_lease(struct through *th, const char *key)
{
	struct lease *l = NULL;

	if (th->leases != NULL && !lease_held(l = lease_take(th->leases,
	    key))) {
		lease_end(l);
		l = NULL;
	}
	return l;
}

/*
 * A write for key is queued as seq: the key's flight lasts until the
 * writer has applied it, so that whoever looks next sees it. c, if not
 * NULL, is the flight's holder, whose request is over.
 */
void
flight_storing(struct through *th, struct through_call *c, const char *key,
    long long seq)
{
	struct flight *f = c != NULL ? flight_held(c) : flight_find(th, key);

	if (f == NULL) {
		f = flight_new(th, key, FLIGHT_STORING, -1);
		f->lease = store_lease(th, key);
	} else if (f->state == FLIGHT_FETCHING && f->holder != c)
		return;		/* its own write will come later */
	else if (f->state == FLIGHT_REMOTE)
		return;		/* its end makes everyone look again */
	if (c != NULL)
		c->flight = NULL;
	f->holder = NULL;
	f->state = FLIGHT_STORING;
	f->seq = seq;
	/*
	 * No waiting to group it with others: whoever asks next, here or
	 * in another process, should find it. Writes that come while the
	 * writer is busy still share a transaction.
	 */
	writeback_flush(th->wb);
}

/*
 * Waits for another process's request for the URL (collapsed), or for
 * its write of a response it made (not).
 */
void
flight_wait_remote(struct through_call *c, struct lease *l, int collapsed)
{
	struct flight *f = flight_new(c->th, c->key, FLIGHT_REMOTE,
	    lease_fd(l));

	f->lease = l;
	f->recheck_ms = prog_now_ms() + LEASE_RECHECK_MS;
	flight_wait(f, c, collapsed);
}
