/* relay-cache's entries made here: put's, and load's (cache-load.c). */
#ifndef RELAY_CACHE_LOAD_H
#define RELAY_CACHE_LOAD_H

#include <time.h>

#include "policy/policy.h"
#include "store/store.h"

void	new_entry(struct store_entry *, char *, const char *, int,
	    const char *, time_t);
void	derive_entry(struct store_entry *, const struct policy_times *,
	    long long);
int	cache_load(struct store *, time_t, int);

#endif
