/*
 * Merge routes: a request path pattern, the upstream calls it makes,
 * the extra request fields they carry, and the jq program that merges
 * their answers. Read from a routes file; see relay-serve(8).
 */
#ifndef RELAY_ROUTES_H
#define RELAY_ROUTES_H

#include <stddef.h>

#include "base/buf.h"
#include "policy/gcra.h"

#define ROUTES_MAX_CALLS 16
#define ROUTES_MAX_PARAMS 8
#define ROUTES_MAX_ITEMS 1000	/* max-items' bound */
#define ROUTES_MAX_AT_ONCE 64	/* at-once's */
#define ROUTES_MAX_FILE 1048576	/* bytes of a routes file */
#define ROUTES_MAX_HEADER_FILE 65536	/* of a header-file's file */

struct route_call {
	char		*name;		/* $name in the program */
	char		*path;		/* with {param} slots */
};

/* each: a call for every item of another call's answer. */
struct route_each {
	char		*name;		/* $name: the answers, in item order */
	char		*path;		/* with {.} for the item, {param} */
	int		 from;		/* the call whose answer has the items */
	char		*items;		/* jq: the items, from that answer */
	int		 line;
	void		*compiled;	/* items', for the caller */
};

struct route {
	struct route	*next;
	char		*pattern;	/* "/events/{id}" */
	char		*file;		/* where it was defined */
	int		 line;
	struct route_call calls[ROUTES_MAX_CALLS];
	int		 ncalls;
	struct route_each *each;	/* NULL: none */
	int		 max_items;	/* of each's (100) */
	int		 fan_at_once;	/* each's calls at a time (8) */
	struct buf	 fields;	/* extra request fields, secrets */
	long long	 ttl;		/* for the calls' responses; -1 */
	long long	 cache;		/* for the merged answer; 0: none */
	int		 partial;	/* on-error partial */
	struct gcra_limit limit;	/* its clients' own, if limited */
	int		 limited;
	char		*program;	/* jq */
	int		 program_line;	/* where its first line is */
	void		*compiled;	/* the program's, for the caller */
	int		 holders;	/* answers under way on it: a reload
					   frees it only once there are none */
};

struct route_params {
	char		*names[ROUTES_MAX_PARAMS];
	char		*values[ROUTES_MAX_PARAMS];
	int		 n;
};

struct route	*routes_load(const char *, char *, size_t);
void		 routes_free(struct route *);
struct route	*routes_match(struct route *, const char *,
		    struct route_params *);
int		 route_param_names(const struct route *, struct route_params *);
void		 route_params_free(struct route_params *);
char		*route_call_path(const struct route_call *,
		    const struct route_params *);
char		*route_each_path(const struct route_each *,
		    const struct route_params *, const char *, size_t);

#endif
