/*
 * Where the cache file and the upstream are: the one rule every
 * program follows (flag, then environment, then the default).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/config.h"

/* An empty variable counts as unset, as in the XDG base directory spec. */
static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static char *
join(const char *dir, size_t len, const char *file)
{
	struct buf b = BUF_INIT;

	buf_add(&b, dir, len);
	buf_addc(&b, '/');
	buf_adds(&b, file);
	return buf_take(&b);
}

/* Returns 0, or -1 with a reason when no rule gives a path. */
int
config_cache_location(const char *option, struct cache_location *loc,
    const char **why)
{
	const char *v;

	loc->is_default = 0;
	if (option != NULL) {
		loc->path = xstrdup(option);
		loc->source = "option";
	} else if ((v = env("RELAY_CACHE")) != NULL) {
		loc->path = xstrdup(v);
		loc->source = "RELAY_CACHE";
	} else if ((v = env("CACHE_DIRECTORY")) != NULL) {
		/* systemd lists several directories separated by ':' */
		loc->path = join(v, strcspn(v, ":"), "cache.db");
		loc->source = "CACHE_DIRECTORY";
	} else if ((v = env("XDG_CACHE_HOME")) != NULL) {
		loc->path = join(v, strlen(v), "relay/cache.db");
		loc->source = "XDG_CACHE_HOME";
		loc->is_default = 1;
	} else if ((v = env("HOME")) != NULL) {
		loc->path = join(v, strlen(v), ".cache/relay/cache.db");
		loc->source = "HOME";
		loc->is_default = 1;
	} else {
		*why = "no --cache, RELAY_CACHE, CACHE_DIRECTORY, "
		    "XDG_CACHE_HOME or HOME to place it";
		return -1;
	}
	return 0;
}

/* mkdir -p of the file's directory, private to the user. */
int
config_make_parent(const char *path)
{
	char *dir = xstrdup(path), *p;
	int rc = 0;

	for (p = dir + 1; rc == 0 && (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	free(dir);
	return rc;
}

/* The upstream: --upstream, else RELAY_UPSTREAM, else the menu API. */
const char *
config_upstream(const char *option)
{
	const char *v = env("RELAY_UPSTREAM");

	if (option != NULL)
		return option;
	return v != NULL ? v : "https://menu.dckube.scilifelab.se/api";
}
