/*
 * The event loop: a poll(2) a round over what is watched. A watch is
 * one descriptor or one deadline of a module (the shared tier, the
 * cache-through, a jq run); a source adds many descriptors of its own
 * each round and handles them after the poll (the server's
 * connections). The program gives the poll function (upstream_poll
 * lets libcurl's descriptors in) and an idle hook run after each round.
 */
#ifndef RELAY_LOOP_H
#define RELAY_LOOP_H

#include <poll.h>

struct loop;
struct watch;

/*
 * A watch's call: with the descriptor's revents, or with 0 once its
 * deadline (a prog_now_ms time; 0: none) has passed. fd -1 makes a
 * timer.
 */
typedef void watch_fn(struct watch *, short, void *);

/* Waits as poll(2) does, for the loop's descriptors and the program's. */
typedef int loop_poll_fn(struct pollfd *, unsigned, int, void *);

/*
 * A source's round: gather adds its descriptors (loop_add_fd) and its
 * deadline (loop_due); dispatch reads their revents (loop_revents)
 * after the poll; flush runs last, after every watch and the program's
 * idle hook; alive says whether the loop must go on for it.
 */
struct loop_source {
	void	(*gather)(struct loop *, void *);
	void	(*dispatch)(struct loop *, void *);
	void	(*flush)(void *);
	int	(*alive)(void *);
	void	*ctx;
};

struct loop	*loop_new(loop_poll_fn *, void (*)(void *), void *);
void		 loop_free(struct loop *);
void		 loop_add_source(struct loop *, const struct loop_source *);
int		 loop_run(struct loop *);

unsigned	 loop_add_fd(struct loop *, int, short);
short		 loop_revents(const struct loop *, unsigned);
void		 loop_due(struct loop *, long long);

struct watch	*loop_watch(struct loop *, int, short, watch_fn *, void *);
void		 watch_deadline(struct watch *, long long);
void		 watch_events(struct watch *, short);
void		 loop_unwatch(struct watch *);

#endif
