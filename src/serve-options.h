/*
 * relay-serve's options: those it shares with relay-fetch (options.h),
 * the shared tier's, the server's, the rate limits' and its own.
 */
#ifndef RELAY_SERVE_OPTIONS_H
#define RELAY_SERVE_OPTIONS_H

#include <stddef.h>

#include "base/jqprog.h"
#include "net/server.h"
#include "serve/limit_reply.h"
#include "through/options.h"
#include "tier/shared.h"

struct serve_config {
	struct options		 relay;		/* shared with relay-fetch */
	struct shared_options	 shared;	/* --shared… */
	struct server_options	 server;	/* timeouts, --max-body */
	struct limits		 limits;	/* --rate-limit… */
	struct jq_bounds	 program_bounds;	/* --program-… */
	const char		*listen;	/* --listen */
	const char		*routes;	/* --routes */
	long long		 workers;	/* --workers; 0: one per core */
	int			 read_only;	/* --read-only */
	const char		*rate;		/* --rate-limit */
	long long		 burst;		/* --burst */
	int			 spare_hits;	/* --rate-limit-spare-hits */
	char			*admin_token;	/* --admin-token-file */
	char			**queue_globs;	/* --queue */
	size_t			 n_queue_globs;
	long long		 queue_attempts;	/* --queue-attempts */
	int			 public_sync;	/* --public-sync */
	long long		 sync_max_size;	/* --sync-max-size */
};

#define SERVE_CONFIG_INIT {						\
	.relay = OPTIONS_INIT, .shared = SHARED_DEFAULTS,		\
	.server = {							\
		.idle_timeout_ms = 15000,	/* --idle-timeout */	\
		.request_timeout_ms = 10000,	/* --request-timeout */	\
		.send_timeout_ms = 60000,				\
		.max_body = 1048576,		/* --max-body */	\
		.drain_timeout_ms = 10000,	/* --drain-timeout */	\
	},								\
	.limits = { .policy = { .name = "default" } },			\
	.program_bounds = JQ_BOUNDS_DEFAULT, .burst = 1,		\
	.queue_attempts = 8, .sync_max_size = 256LL << 20,		\
}

void	serve_config_parse(struct serve_config *, int, char **);

#endif
