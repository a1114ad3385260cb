/*
 * Cache writes on a thread of their own, so that transfers never wait
 * for SQLite: the caller hands over bodies as they arrive, then the
 * response to store, the 304 to apply or the hit to count, and goes on.
 * Each operation has a seq; an event loop learns from the wake fd and
 * writeback_applied when the ones it waits for are in the file.
 */
#ifndef RELAY_WRITEBACK_H
#define RELAY_WRITEBACK_H

#include <stddef.h>
#include <time.h>

#include "store/cache.h"
#include "store/store.h"

struct writeback;
struct writeback_body;

struct writeback *writeback_start(struct store *, const struct cache_rules *);
char		*writeback_finish(struct writeback *);
char		*writeback_warnings(struct writeback *);

int		 writeback_wake_fd(const struct writeback *);
long long	 writeback_applied(struct writeback *);
void		 writeback_flush(struct writeback *);
int		 writeback_room(struct writeback *, size_t);

struct writeback_body *writeback_body_new(const char *);
void		 writeback_write(struct writeback *, struct writeback_body *,
		    const void *, size_t);
long long	 writeback_commit(struct writeback *, struct writeback_body *,
		    const struct cache_response *);
long long	 writeback_commit_with(struct writeback *,
		    struct writeback_body *, const struct cache_response *,
		    const struct cache_rules *);
void		 writeback_abort(struct writeback *, struct writeback_body *);
long long	 writeback_refresh(struct writeback *,
		    const struct store_entry *);
void		 writeback_hits(struct writeback *, const long long *, size_t,
		    time_t);
void		 writeback_count(struct writeback *, const char *);
long long	 writeback_remove(struct writeback *, const char *);
long long	 writeback_purge(struct writeback *, const char *);
long long	 writeback_mark_uncacheable(struct writeback *, const char *,
		    time_t);

#endif
