/*
 * The delivery queue (relay-serve --queue): unsafe requests kept in the
 * queue file before they are answered 202, then delivered to the
 * upstream by every relay-serve process that runs, in arrival order per
 * path, with retries and backoff, through the cache (so --upstream-rate
 * holds and what they change is invalidated). The file's work is done
 * on a thread of its own; an entry being delivered is locked (an open
 * file description lock on its byte of CACHE-queue.lock), so that one
 * process delivers it at a time and a killed one's are taken up at once.
 */
#ifndef RELAY_DELIVER_H
#define RELAY_DELIVER_H

#include "net/loop.h"
#include "store/store.h"
#include "through/through.h"

#define DELIVER_RESPONSE_MAX	65536	/* of the upstream's body, kept */

struct deliver;
struct deliver_add;

/*
 * The entry kept: its id and the token its client knows it by; or 0,
 * NULL and why it could not be kept.
 */
typedef void deliver_added_fn(void *, long long, const char *, const char *);

#define DELIVER_TOKEN_LEN	32	/* hex digits: 128 random bits */

struct deliver	*deliver_start(const char *, struct loop *, struct through *,
		    long long);
struct deliver_add *deliver_add(struct deliver *, struct store_queued *,
		    deliver_added_fn *, void *);
int		 deliver_token_valid(const char *);
void		 deliver_forget(struct deliver_add *);
void		 deliver_flush(struct deliver *);
void		 deliver_stop(struct deliver *);

void		 deliver_outcome(struct store_queued *, long long, long long,
		    long long);

#endif
