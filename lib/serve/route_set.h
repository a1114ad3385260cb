/*
 * A routes file's merge routes as relay-serve holds them (route_set.c):
 * read and compiled at start, again on SIGHUP (a bad file keeps the
 * old routes and says why), the old ones freed once no answer holds
 * one (merge_env's merging count).
 */
#ifndef RELAY_ROUTE_SET_H
#define RELAY_ROUTE_SET_H

#include <stddef.h>

#include "serve/merge.h"
#include "serve/routes.h"

struct route_set {
	const char	*path;		/* --routes; NULL: none */
	struct route	*current;
	struct route	*retired;	/* replaced by a reload */
};

int	route_set_load(struct route_set *, const char *, char *, size_t);
void	route_set_reload(struct route_set *);
void	route_set_idle(struct route_set *, const struct merge_env *);
void	route_set_free(struct route_set *);

#endif
