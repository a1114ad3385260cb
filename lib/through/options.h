/*
 * The options that relay-fetch and relay-serve share: where the cache
 * and the upstream are, how long to wait for it, and the caching rules
 * an operator may set. Parsed once here for both.
 */
#ifndef RELAY_OPTIONS_H
#define RELAY_OPTIONS_H

#include <getopt.h>

#include "policy/gcra.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "upstream/upstream.h"

enum {
	OPTIONS_CACHE = 256, OPTIONS_CACERT, OPTIONS_COLLAPSE_TIMEOUT,
	OPTIONS_CONNECT_TIMEOUT, OPTIONS_DEFAULT_TTL, OPTIONS_FORCE_TTL,
	OPTIONS_MAX_OBJECT_SIZE, OPTIONS_MAX_SIZE, OPTIONS_MAX_TIME,
	OPTIONS_STALE_IF_ERROR, OPTIONS_STORE_SET_COOKIE,
	OPTIONS_TARGETED_CACHE_CONTROL, OPTIONS_UPSTREAM,
	OPTIONS_UPSTREAM_BURST, OPTIONS_UPSTREAM_RATE, OPTIONS_UPSTREAM_WAIT,
	OPTIONS_OWN		/* a program's own options number from here */
};

/* Their getopt_long entries, for a program's table. */
#define OPTIONS_LONG \
	{ "cache", required_argument, NULL, OPTIONS_CACHE }, \
	{ "cacert", required_argument, NULL, OPTIONS_CACERT }, \
	{ "collapse-timeout", required_argument, NULL, \
	    OPTIONS_COLLAPSE_TIMEOUT }, \
	{ "connect-timeout", required_argument, NULL, \
	    OPTIONS_CONNECT_TIMEOUT }, \
	{ "default-ttl", required_argument, NULL, OPTIONS_DEFAULT_TTL }, \
	{ "force-ttl", required_argument, NULL, OPTIONS_FORCE_TTL }, \
	{ "max-object-size", required_argument, NULL, \
	    OPTIONS_MAX_OBJECT_SIZE }, \
	{ "max-size", required_argument, NULL, OPTIONS_MAX_SIZE }, \
	{ "max-time", required_argument, NULL, OPTIONS_MAX_TIME }, \
	{ "stale-if-error", required_argument, NULL, OPTIONS_STALE_IF_ERROR }, \
	{ "store-set-cookie", no_argument, NULL, OPTIONS_STORE_SET_COOKIE }, \
	{ "targeted-cache-control", required_argument, NULL, \
	    OPTIONS_TARGETED_CACHE_CONTROL }, \
	{ "upstream", required_argument, NULL, OPTIONS_UPSTREAM }, \
	{ "upstream-burst", required_argument, NULL, OPTIONS_UPSTREAM_BURST }, \
	{ "upstream-rate", required_argument, NULL, OPTIONS_UPSTREAM_RATE }, \
	{ "upstream-wait", required_argument, NULL, OPTIONS_UPSTREAM_WAIT }

/* Their lines of --help, for relay-fetch's and relay-serve's. */
#define OPTIONS_HELP \
    "      --cache FILE              the cache file (see relay(7))\n" \
    "      --upstream URL            the upstream, or a {path} template\n" \
    "      --default-ttl TIME        lifetime of responses that give none" \
    " (300s)\n" \
    "      --force-ttl TIME          lifetime of every response stored\n" \
    "      --stale-if-error TIME     serve stale this long when the upstream" \
    " fails\n" \
    "      --store-set-cookie        store responses that set cookies\n" \
    "      --max-size SIZE           keep the cache file within SIZE" \
    " (K, M, G)\n" \
    "      --max-object-size SIZE    relay larger bodies without storing" \
    " them\n" \
    "                                (a quarter of --max-size)\n" \
    "      --targeted-cache-control FIELDS\n" \
    "                                obeyed before Cache-Control" \
    " (CDN-Cache-Control)\n" \
    "      --collapse-timeout TIME   wait for another request for a URL" \
    " (5s)\n" \
    "      --connect-timeout TIME    give up connecting upstream (10s)\n" \
    "      --max-time TIME           give up an upstream transfer (none)\n" \
    "      --cacert FILE             trust the CAs in FILE\n"

struct options {
	const char		*cache;		/* --cache */
	const char		*upstream;	/* --upstream */
	struct upstream_options	 limits;	/* --cacert, --*-timeout, --max-time */
	struct cache_rules	 rules;		/* --default-ttl, --force-ttl,
						   --store-set-cookie */
	long long		 stale_if_error;	/* --stale-if-error, s */
	long long		 collapse_ms;	/* --collapse-timeout */
	long long		 max_size;	/* --max-size; 0: none */
	int			 max_object_given;	/* --max-object-size */
	const char		*upstream_rate;	/* --upstream-rate, or NULL */
	long long		 upstream_burst;	/* --upstream-burst */
	long long		 upstream_wait_ms;	/* --upstream-wait */
	struct gcra_limit	 upstream_limit;	/* …as options_finish
							   read them */
};

/* The defaults both programs start from. */
#define OPTIONS_INIT { \
	.limits = { \
		.connect_timeout_ms = 10000, \
		.timeout_ms = 0,	/* none: bodies may be large… */ \
		.low_speed_bytes = 1,	/* …but one below 1 byte/s… */ \
		.low_speed_secs = 60,	/* …for a minute is given up */ \
	}, \
	.rules = { POLICY_DEFAULT_TTL, -1, 0, 0 }, \
	.stale_if_error = 0, \
	.collapse_ms = 5000, \
	.upstream_burst = 1, \
	.upstream_wait_ms = 5000, \
}

int	options_parse(struct options *, int, const char *);
void	options_finish(struct options *);

#endif
