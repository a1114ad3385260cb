/*
 * The upstream's own quota (--upstream-rate): every request to an
 * upstream origin waits for its turn in one bucket that every process
 * shares through the limiter, up to a bound; and an upstream that says
 * 429 or 503 with Retry-After pauses that bucket until then.
 */
#ifndef RELAY_GATE_H
#define RELAY_GATE_H

#include "net/loop.h"
#include "policy/gcra.h"
#include "through/limiter.h"

struct gate;
struct gate_turn;

/* go: the request may be sent now; else retry_after_s says when. */
typedef void gate_fn(void *, int go, long long retry_after_s);

struct gate	*gate_new(struct loop *, struct limiter *,
		    const struct gcra_limit *, long long, int);
void		 gate_free(struct gate *);
void		 gate_ask(struct gate *, const char *, gate_fn *, void *,
		    struct gate_turn **);
void		 gate_cancel(struct gate_turn *);
int		 gate_answered(struct gate *, const char *, int, const char *);

#endif
