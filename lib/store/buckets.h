/*
 * The rate limits' buckets, shared by every process on a cache file: a
 * table of GCRA arrival times in a file that each maps (CACHE-buckets),
 * under a robust process-shared mutex held for one decision, a fraction
 * of a microsecond. Exact across processes, and it outlives them.
 */
#ifndef RELAY_BUCKETS_H
#define RELAY_BUCKETS_H

#include <stddef.h>

#include "policy/gcra.h"

enum buckets_result {
	BUCKETS_DECIDED,
	BUCKETS_BUSY,		/* the lock was not free in time */
	BUCKETS_FULL,		/* no room for another key near its place */
};

struct buckets;

struct buckets	*buckets_open(const char *, char *, size_t);
void		 buckets_close(struct buckets *);
enum buckets_result buckets_take(struct buckets *, const char *,
		    const struct gcra_limit *, long long, long long, int,
		    struct gcra_decision *);
enum buckets_result buckets_pause(struct buckets *, const char *,
		    const struct gcra_limit *, long long, long long, int);

#endif
