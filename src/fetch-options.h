/*
 * relay-fetch's options: those it shares with relay-serve (options.h),
 * the shared tier's, and its own.
 */
#ifndef RELAY_FETCH_OPTIONS_H
#define RELAY_FETCH_OPTIONS_H

#include "base/buf.h"
#include "through/options.h"
#include "tier/shared.h"

struct fetch_options {
	struct options		 relay;		/* shared with relay-serve */
	struct shared_options	 shared;	/* --shared… */
	int			 jobs;		/* -j */
	int			 unordered;	/* --unordered */
	int			 records;	/* --records */
	const char		*output_template;	/* -o */
	int			 create_dirs;	/* --create-dirs */
	long			 max_redirects;	/* -L: --max-redirs; else 0 */
	int			 include_head;	/* -i */
	int			 no_cache;	/* --no-cache: always revalidate */
	int			 no_store;	/* --no-store */
	int			 offline;	/* --offline */
	long long		 retries;	/* --retry */
	struct buf		 headers;	/* -H */
};

#define FETCH_OPTIONS_INIT { .relay = OPTIONS_INIT, .shared = SHARED_DEFAULTS, \
	.jobs = 8, .retries = 2, .headers = BUF_INIT }

void	fetch_options_parse(struct fetch_options *, int, char **);

#endif
