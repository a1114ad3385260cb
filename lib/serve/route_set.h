/*
 * A routes file's merge routes as relay-serve holds them (route_set.c):
 * read and compiled at start, again on SIGHUP (a bad file keeps the
 * old routes and says why), each old set freed once no answer holds
 * one of its routes (struct route's holders), however many reloads
 * came since.
 */
#ifndef RELAY_ROUTE_SET_H
#define RELAY_ROUTE_SET_H

#include <stddef.h>

#include "serve/merge.h"
#include "serve/routes.h"

struct retired_routes;

struct route_set {
	const char		*path;		/* --routes; NULL: none */
	struct route		*current;
	struct retired_routes	*retired;	/* replaced by reloads */
};

int	route_set_load(struct route_set *, const char *, char *, size_t);
void	route_set_reload(struct route_set *);
void	route_set_idle(struct route_set *);
void	route_set_free(struct route_set *);

#endif
