/*
 * A merge route answered: its upstream calls made at once, each
 * through the shared cache with its own freshness and revalidation,
 * and their answers merged by the route's jq program (libjq).
 */
#ifndef RELAY_MERGE_H
#define RELAY_MERGE_H

#include "base/buf.h"
#include "base/jqprog.h"
#include "net/server.h"
#include "serve/routes.h"
#include "store/cache.h"
#include "store/store.h"
#include "through/through.h"

#define MERGE_MAX_BODY (8 << 20)	/* bytes of one call's answer */

struct merge_run;

struct merge_env {
	struct through		*through;
	struct server		*server;	/* watches the programs' runs */
	const char		*base;		/* the upstream URL or template */
	const struct cache_rules *rules;
	struct jq_bounds	 bounds;	/* of every run */
	long long		 stop_by;	/* runs end by then; 0: not stopping */
	struct merge_run	*runs;		/* running or waiting, newest first */
	int			 nrunning;
};

/* What the merge answers. */
struct merge_result {
	int		 status;
	struct buf	 body;		/* JSON */
	int		 complete;	/* every call answered */
	const char	*error;		/* for the log, or NULL */
};

struct merge;

int		 merge_compile(struct route *, char *, size_t);
void		 merge_uncompile(struct route *);
struct merge	*merge_start(struct merge_env *, struct route *,
		    struct route_params *, void (*)(struct merge *, void *),
		    void *);
int		 merge_ready(const struct merge *);
void		 merge_stop(struct merge_env *);
const struct merge_result *merge_result(const struct merge *);
void		 merge_free(struct merge *);

#endif
