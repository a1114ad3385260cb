/*
 * Cache writes on a thread of their own, so that transfers never wait
 * for SQLite: the caller hands over bodies as they arrive, then the
 * response to store, the 304 to apply or the hit to count, and goes on.
 */
#ifndef RELAY_WRITEBACK_H
#define RELAY_WRITEBACK_H

#include <stddef.h>
#include <time.h>

#include "cache.h"
#include "store.h"

struct writeback;
struct writeback_body;

struct writeback *writeback_start(struct store *, const struct cache_rules *);
char		*writeback_finish(struct writeback *);
char		*writeback_warnings(struct writeback *);

struct writeback_body *writeback_body_new(const char *);
void		 writeback_write(struct writeback *, struct writeback_body *,
		    const void *, size_t);
void		 writeback_commit(struct writeback *, struct writeback_body *,
		    const struct cache_response *);
void		 writeback_abort(struct writeback *, struct writeback_body *);
void		 writeback_refresh(struct writeback *,
		    const struct store_entry *);
void		 writeback_hit(struct writeback *, long long, time_t);

#endif
