/*
 * GET /_relay/sync: every stored answer under a path prefix as records
 * with their change numbers (relay(7)), the newest number its ETag; or,
 * with since=N, only what changed after N: records, and tombstones for
 * the URLs the upstream said are gone (404 or 410). An eviction is not
 * a deletion. A since older than the history kept answers a full dump
 * marked as a reset. Written a page at a time, in bounded memory.
 */
#ifndef RELAY_SYNC_H
#define RELAY_SYNC_H

#include "base/buf.h"
#include "store/store.h"

#define SYNC_PAGE	64		/* entries read at a time, at most */
#define SYNC_PAGE_BYTES	262144		/* …or bodies past this many bytes */
#define SYNC_MAX_BODY	1048576		/* a larger body is left out */

enum sync_kind { SYNC_FULL, SYNC_DELTA, SYNC_RESET };

struct sync;

struct sync	*sync_start(struct store *, const char *, const char *,
		    long long, int *, const char **);
const char	*sync_kind(const struct sync *);
long long	 sync_seq(const struct sync *);
int		 sync_next(struct sync *, struct buf *);
struct snapshot	*sync_snapshot(const struct sync *);
void		 sync_free(struct sync *);

#endif
