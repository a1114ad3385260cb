/*
 * A routes file's merge routes as relay-serve holds them (route_set.h).
 */
#include <stdlib.h>

#include "base/jqprog.h"
#include "base/prog.h"
#include "serve/route_set.h"

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
	free_routes(set->retired);
	set->retired = set->current;
	set->current = fresh;
	prog_warnx("routes reloaded from '%s'", set->path);
}

/* After each round: old routes no answer holds go; killed runs reaped. */
void
route_set_idle(struct route_set *set, const struct merge_env *env)
{
	if (set->retired != NULL && env->merging == 0) {
		free_routes(set->retired);
		set->retired = NULL;
	}
	if (set->current != NULL || set->retired != NULL)
		jqrun_reap();	/* a merge's program killed */
}

void
route_set_free(struct route_set *set)
{
	free_routes(set->retired);
	free_routes(set->current);
	set->current = set->retired = NULL;
}
