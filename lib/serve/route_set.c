/*
 * A routes file's merge routes as relay-serve holds them (route_set.h).
 */
#include <stdlib.h>

#include "base/buf.h"
#include "base/jqprog.h"
#include "base/prog.h"
#include "serve/route_set.h"

/* A set of routes a reload replaced, kept while an answer holds one. */
struct retired_routes {
	struct route		*list;
	struct retired_routes	*next;
};

static void
free_routes(struct route *list)
{
	struct route *r;

	for (r = list; r != NULL; r = r->next)
		merge_uncompile(r);
	routes_free(list);
}

/* Reads and compiles a routes file; NULL with the reason if bad. */
static struct route *
load_routes(const char *path, char *err, size_t errlen, int *ok)
{
	struct route *list = routes_load(path, err, errlen), *r;

	*ok = err[0] == '\0';
	for (r = list; *ok && r != NULL; r = r->next)
		*ok = merge_compile(r, err, errlen) == 0;
	if (!*ok) {
		free_routes(list);
		list = NULL;
	}
	return list;
}

/* The routes of path (NULL: none); -1 with why in err if it is bad. */
int
route_set_load(struct route_set *set, const char *path, char *err,
    size_t errlen)
{
	int ok = 1;

	set->path = path;
	set->current = path != NULL ? load_routes(path, err, errlen, &ok) :
	    NULL;
	set->retired = NULL;
	return ok ? 0 : -1;
}

/*
 * SIGHUP: the routes file again. A bad one keeps the old routes and
 * says why; the old ones are kept until no answer holds one.
 */
void
route_set_reload(struct route_set *set)
{
	struct retired_routes *old;
	char err[512];
	struct route *fresh;
	int ok;

	if (set->path == NULL)
		return;
	fresh = load_routes(set->path, err, sizeof err, &ok);
	if (!ok) {
		prog_warnx("routes not reloaded, the old ones stay: %s", err);
		return;
	}
	if (set->current != NULL) {
		old = xcalloc(1, sizeof *old);
		old->list = set->current;
		old->next = set->retired;
		set->retired = old;
	}
	set->current = fresh;
	prog_warnx("routes reloaded from '%s'", set->path);
}

static int
held(const struct route *list)
{
	for (; list != NULL; list = list->next)
		if (list->holders > 0)
			return 1;
	return 0;
}

/* After each round: old sets no answer holds go; killed runs reaped. */
void
route_set_idle(struct route_set *set)
{
	struct retired_routes **p, *old;

	for (p = &set->retired; (old = *p) != NULL;) {
		if (held(old->list)) {
			p = &old->next;
			continue;
		}
		*p = old->next;
		free_routes(old->list);
		free(old);
	}
	if (set->current != NULL || set->retired != NULL)
		jqrun_reap();	/* a merge's program killed */
}

void
route_set_free(struct route_set *set)
{
	struct retired_routes *old;

	while ((old = set->retired) != NULL) {
		set->retired = old->next;
		free_routes(old->list);
		free(old);
	}
	free_routes(set->current);
	set->current = NULL;
}
