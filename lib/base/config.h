/*
 * Where the cache file and the upstream are: the one rule every
 * program follows (flag, then environment, then the default).
 */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

struct cache_location {
	char		*path;
	const char	*source;	/* "option", "RELAY_CACHE", … */
	int		 is_default;	/* its directory may be created */
};

int	config_cache_location(const char *, struct cache_location *,
	    const char **);
int	config_make_parent(const char *);
const char *config_upstream(const char *);

#endif
