/*
 * The shared tier's side of the cache-through (call.h): a flight's
 * holder asks it before the upstream, stores what another host put
 * there, and puts there what it stores.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/prog.h"
#include "through/call.h"

#define SHARED_WAITS	3	/* for other hosts' requests, then our own */

/*
 * The holder answers from an entry of the shared tier at once, from
 * memory, while it is being written: if it is fresh for the request
 * and small, and does not vary. Returns whether it did.
 */
static int
answer_imported(struct through_call *c, const struct shared_entry *se)
{
	struct through *th = c->th;
	struct buf kept = BUF_INIT;
	struct store_entry e;

	cache_stored_entry(&se->r, &c->rules, &kept, &e);
	e.size = (long long)se->body_len;
	if (hot_fits(&e) && call_usable(c, &e) == POLICY_FRESH) {
		hot_put(th->hot, &e, se->body);
		c->hot = hot_get(th->hot, c->key);
	}
	cache_stored_free(&e, &kept);
	if (c->hot == NULL)
		return 0;
	c->cached = c->hot->e;
	c->have_cached = 1;
	call_answer_stored(c, THROUGH_HIT);
	return 1;
}

/*
 * An entry from the shared tier, stored here as if fetched. The holder
 * answers from memory if it can, else waits with the others for the
 * write, then answers from the file. Returns -1 if it may not be
 * stored here (by these rules), or the writer has no room for it now.
 */
static int
share_import(struct flight *f, const struct shared_entry *e)
{
	struct through *th = f->th;
	struct through_call *c = f->holder;
	struct writeback_body *b;

	if (cache_unstorable(&c->rules, e->r.status, c->fields,
	    e->r.headers) != NULL || !writeback_room(th->wb, e->body_len))
		return -1;
	b = writeback_body_new(f->key);
	writeback_write(th->wb, b, e->body, e->body_len);
	c->result.shared = 1;
	call_forget_cached(c);	/* the stale one is not the answer now */
	flight_storing(th, c, f->key, writeback_commit_with(th->wb, b, &e->r,
	    &c->rules));
	if (!answer_imported(c, e))
		flight_wait(f, c, 0);
	return 0;
}

/* The tier answered the flight's holder. */
static void
on_shared_found(void *ctx, struct shared_found *found)
{
	struct flight *f = ctx;
	struct through_call *c = f->holder;
	long long wait;

	f->asking = NULL;
	if (found->kind != SHARED_LEASED)
		f->token[0] = '\0';	/* not ours to give up */
	switch (found->kind) {
	case SHARED_ENTRY:
		/* One no newer than ours is no use: the lease, then. */
		if (c->have_cached && found->entry.r.response_time <=
		    c->cached.response_time)
			share_ask(f, 1);
		else if (share_import(f, &found->entry) < 0)
			share_ask(f, 1);
		return;
	case SHARED_BUSY:
		if (f->shared_news) {	/* its holder is done already */
			f->shared_news = 0;
			share_ask(f, 0);
			return;
		}
		if (++f->shared_waits <= SHARED_WAITS) {
			wait = found->busy_ms;
			if (wait < 10 || wait > f->th->opt.collapse_ms)
				wait = f->th->opt.collapse_ms;
			f->recheck_ms = prog_now_ms() + wait;
			flight_schedule(f);
			return;
		}
		break;
	case SHARED_FAILED:
		if (found->why != NULL)
			prog_warnx("%s: shared tier: %s", f->key, found->why);
		break;
	case SHARED_LEASED:	/* one host of all asks: this one */
		break;
	}
	f->state = FLIGHT_FETCHING;
	call_fetch(c);
}

/*
 * The flight's holder asks the shared tier for the URL's entry (or,
 * lease_only, for its lease alone) before the upstream; it goes to the
 * upstream at once if the tier is not up.
 */
void
share_ask(struct flight *f, int lease_only)
{
	struct through_call *c = f->holder;

	c->shared_asked = 1;
	f->asking = shared_find(f->th->shared, f->key, lease_only,
	    2 * f->th->opt.collapse_ms, f->token, on_shared_found, f);
	if (f->asking != NULL) {
		f->state = FLIGHT_SHARED;
		watch_deadline(f->watch, 0);
		flight_schedule(f);
		return;
	}
	f->token[0] = '\0';
	f->state = FLIGHT_FETCHING;
	call_fetch(c);
}

/* Another host's request for url has ended: stored there, or not. */
void
share_on_done(void *ctx, const char *url, int stored)
{
	struct flight *f = flight_find(ctx, url);

	if (f == NULL || f->state != FLIGHT_SHARED)
		return;
	if (f->asking != NULL) {	/* its answer may say busy still */
		f->shared_news = 1;
		return;
	}
	if (stored) {
		share_ask(f, 0);
		return;
	}
	f->state = FLIGHT_FETCHING;	/* on its own, as that host did */
	call_fetch(f->holder);
}

/* A host purged url (or, glob, the URLs that match) for every host. */
void
share_on_purge(void *ctx, const char *what, int glob)
{
	struct through *th = ctx;

	if (glob)
		writeback_purge(th->wb, what);
	else
		writeback_remove(th->wb, what);
	writeback_flush(th->wb);
}

/* What the holder stores goes to the tier too, and its lease ends. */
void
share_put(struct through_call *c, const struct cache_response *r)
{
	struct flight *f = flight_held(c);

	if (f == NULL || f->token[0] == '\0')
		return;
	shared_put(c->th->shared, c->key, f->token, r, c->shared_body.data,
	    c->shared_body.len, c->sharing ? shared_ttl(r, &c->rules) : 0);
	f->token[0] = '\0';
	buf_free(&c->shared_body);
	c->sharing = 0;
}

/*
 * A 304 refreshes the tier's copy as well, so that the hosts waiting
 * on this one's lease take it rather than each asking the upstream.
 */
void
share_refreshed(struct through_call *c)
{
	struct flight *f = flight_held(c);
	struct cache_response r = cache_response_of(&c->cached, c->fields);

	if (f == NULL || f->token[0] == '\0')
		return;
	/* Memory holds fresh entries only: this one is the file's. */
	round_read_begin(c->th);
	c->sharing = c->cached.size <= shared_max_object(c->th->shared) &&
	    store_body_read(c->th->reader, &c->cached, &c->shared_body) == 0;
	share_put(c, &r);
}
