/*
 * The event loop: watches, sources and one poll a round (see loop.h).
 */
#include <assert.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/prog.h"
#include "net/loop.h"

#define LOOP_MAX_SOURCES 4
#define POLL_MAX_MS	500	/* how late a signal's flag may be seen */

struct watch {
	struct watch		*next;
	int			 fd;
	short			 events;
	long long		 deadline_ms;
	watch_fn		*fn;		/* NULL: unwatched, to be freed */
	void			*ctx;
	int			 slot;		/* its pollfd this round, or -1 */
};

struct loop {
	loop_poll_fn		*poll;
	void			(*idle)(void *);
	void			*ctx;
	struct loop_source	 sources[LOOP_MAX_SOURCES];
	unsigned		 nsources;
	struct watch		*watches;
	struct pollfd		*fds;
	unsigned		 nfds, fds_cap;
	long long		 due_ms;	/* this round's poll ends by then */
};

struct loop *
loop_new(loop_poll_fn *poll, void (*idle)(void *), void *ctx)
{
	struct loop *l = xcalloc(1, sizeof *l);

	assert(poll != NULL);
	l->poll = poll;
	l->idle = idle;
	l->ctx = ctx;
	return l;
}

void
loop_free(struct loop *l)
{
	struct watch *w;

	if (l == NULL)
		return;
	while ((w = l->watches) != NULL) {
		l->watches = w->next;
		free(w);
	}
	free(l->fds);
	free(l);
}

void
loop_add_source(struct loop *l, const struct loop_source *s)
{
	assert(l->nsources < LOOP_MAX_SOURCES);
	l->sources[l->nsources++] = *s;
}

/* A descriptor to poll this round; returns its slot for loop_revents. */
unsigned
loop_add_fd(struct loop *l, int fd, short events)
{
	if (l->nfds == l->fds_cap) {
		l->fds_cap = l->fds_cap ? l->fds_cap * 2 : 64;
		l->fds = xrealloc(l->fds, l->fds_cap * sizeof *l->fds);
	}
	l->fds[l->nfds] = (struct pollfd){ fd, events, 0 };
	return l->nfds++;
}

short
loop_revents(const struct loop *l, unsigned slot)
{
	assert(slot < l->nfds);
	return l->fds[slot].revents;
}

/* This round's poll returns by ms (a prog_now_ms time) at the latest. */
void
loop_due(struct loop *l, long long ms)
{
	if (ms < l->due_ms)
		l->due_ms = ms;
}

struct watch *
loop_watch(struct loop *l, int fd, short events, watch_fn *fn, void *ctx)
{
	struct watch *w = xcalloc(1, sizeof *w);

	assert(fn != NULL);
	w->fd = fd;
	w->events = events;
	w->fn = fn;
	w->ctx = ctx;
	w->slot = -1;
	w->next = l->watches;
	l->watches = w;
	return w;
}

void
watch_deadline(struct watch *w, long long ms)
{
	w->deadline_ms = ms;
}

/* The descriptor's events to wait for from the next round on. */
void
watch_events(struct watch *w, short events)
{
	w->events = events;
}

/* Ends a watch (NULL: none); safe inside a watch's own fn. */
void
loop_unwatch(struct watch *w)
{
	if (w != NULL)
		w->fn = NULL;
}

/* The watches' descriptors and deadlines, then the sources'. */
static void
gather(struct loop *l, long long now)
{
	struct watch *w;
	unsigned i;

	l->nfds = 0;
	l->due_ms = now + POLL_MAX_MS;
	for (w = l->watches; w != NULL; w = w->next) {
		w->slot = -1;
		if (w->fn == NULL)
			continue;
		if (w->fd >= 0)
			w->slot = (int)loop_add_fd(l, w->fd, w->events);
		if (w->deadline_ms > 0)
			loop_due(l, w->deadline_ms);
	}
	for (i = 0; i < l->nsources; i++)
		l->sources[i].gather(l, l->sources[i].ctx);
}

/* Calls the watches whose descriptor had events or whose time came. */
static void
run_watches(struct loop *l)
{
	struct watch **p, *w;
	long long now = prog_now_ms();
	short ev;

	for (w = l->watches; w != NULL; w = w->next) {
		ev = w->slot >= 0 ? l->fds[w->slot].revents : 0;
		w->slot = -1;
		if (w->fn != NULL && ev != 0)
			w->fn(w, ev, w->ctx);
		else if (w->fn != NULL && w->deadline_ms > 0 &&
		    now >= w->deadline_ms)
			w->fn(w, 0, w->ctx);
	}
	for (p = &l->watches; (w = *p) != NULL;) {
		if (w->fn == NULL) {
			*p = w->next;
			free(w);
		} else {
			p = &w->next;
		}
	}
}

static int
alive(const struct loop *l)
{
	unsigned i;

	for (i = 0; i < l->nsources; i++)
		if (l->sources[i].alive(l->sources[i].ctx))
			return 1;
	return 0;
}

/*
 * Rounds until no source is alive: gather, poll, the sources' events,
 * the watches', the program's idle hook, then the sources' flushes.
 */
int
loop_run(struct loop *l)
{
	long long now, wait;
	unsigned i;

	while (alive(l)) {
		now = prog_now_ms();
		gather(l, now);
		wait = l->due_ms > now ? l->due_ms - now : 0;
		l->poll(l->fds, l->nfds, (int)wait, l->ctx);
		for (i = 0; i < l->nsources; i++)
			l->sources[i].dispatch(l, l->sources[i].ctx);
		run_watches(l);
		if (l->idle != NULL)
			l->idle(l->ctx);
		for (i = 0; i < l->nsources; i++)
			if (l->sources[i].flush != NULL)
				l->sources[i].flush(l->sources[i].ctx);
	}
	return 0;
}
