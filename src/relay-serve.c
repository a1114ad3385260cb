/*
 * relay-serve: the HTTP/1.1 relay. GET and HEAD are answered from the
 * shared cache when the rules allow, else fetched from the upstream
 * through it; other methods are relayed uncached, or refused. Started
 * by inetd, by systemd socket activation, or with --listen.
 */
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/jqprog.h"
#include "base/num.h"
#include "base/prog.h"
#include "http/gzip.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/httpdate.h"
#include "http/target.h"
#include "http/url.h"
#include "http/ws.h"
#include "net/listen.h"
#include "net/log.h"
#include "net/metrics.h"
#include "net/server.h"
#include "policy/policy.h"
#include "policy/throttle.h"
#include "serve/admin_reply.h"
#include "serve/items_reply.h"
#include "serve/limit_reply.h"
#include "serve/deliver.h"
#include "serve/merge_reply.h"
#include "serve/queue_reply.h"
#include "serve/forward.h"
#include "serve/reply.h"
#include "serve/route_set.h"
#include "serve/sync_reply.h"
#include "store/cache.h"
#include "store/snapshot.h"
#include "store/store.h"
#include "through/gate.h"
#include "through/limiter.h"
#include "through/options.h"
#include "through/through.h"
#include "upstream/upstream.h"

static struct options opts = OPTIONS_INIT;	/* shared with relay-fetch */
static const char *listen_option;	/* --listen */
static const char *routes_option;	/* --routes */
static long long workers;		/* --workers; 0: one per core */
static int read_only;			/* --read-only */
static const char *rate_option;		/* --rate-limit */
static long long burst = 1;		/* --burst */
static int throttle_spare_hits;		/* --rate-limit-spare-hits */
static struct limiter *limiter;		/* NULL: no limit yet */
static struct gate *gate;		/* NULL: no --upstream-rate */
static char *admin_token;		/* --admin-token-file */
static struct admin *admin;		/* the /_relay/ endpoints */
static char **queue_globs;		/* --queue */
static size_t n_queue_globs;
static long long queue_attempts = 8;	/* --queue-attempts */
static struct deliver *deliver;		/* NULL: no --queue */
static int public_sync;			/* --public-sync */
static long long sync_max_size = 256LL << 20;	/* --sync-max-size */
static struct shared_options shared_opts = SHARED_DEFAULTS;	/* --shared… */
static struct redis_target shared_at;	/* host: NULL if none */
static char *host_name;			/* in the shared tier's stats */
static struct server_options serve_options = {
	.idle_timeout_ms = 15000,	/* --idle-timeout */
	.request_timeout_ms = 10000,	/* --request-timeout */
	.send_timeout_ms = 60000,
	.max_body = 1048576,		/* --max-body */
	.drain_timeout_ms = 10000,	/* --drain-timeout */
};

static char *base;		/* the upstream, maybe a {path} template */
static char *base_key;		/* its part before the path, normalised */
static char *cache_path;
static struct through *through;	/* the cache file, its writer, leases */
static struct upstream *upstream;
static struct loop *loop;
static struct server *server;
static struct route_set routes;		/* merge routes, from --routes */
static struct merge_env merge_env = {	/* --program-… */
	.bounds = JQ_BOUNDS_DEFAULT,
};
static struct limiter *need_limiter(void);
static struct limits limits = {	/* --rate-limit… */
	.policy = { .name = "default" }, .limiter = need_limiter,
};

static const char usage_text[] =
    "usage: relay-serve [--listen addr:port] [--workers N] [--upstream url]\n"
    "           [--cache file] [--default-ttl duration]"
    " [--force-ttl duration]\n"
    "           [--stale-if-error duration] [--store-set-cookie]\n"
    "           [--max-size size] [--max-object-size size]\n"
    "           [--targeted-cache-control fields] [--collapse-timeout duration]\n"
    "           [--read-only] [--max-body bytes]\n"
    "           [--idle-timeout duration] [--request-timeout duration]\n"
    "           [--drain-timeout duration]\n"
    "           [--connect-timeout duration] [--max-time duration]"
    " [--cacert file]\n"
    "           [--routes file] [--program-timeout duration]\n"
    "           [--program-max-memory size] [--access-log off | file]\n"
    "           [--rate-limit rate] [--burst N]"
    " [--limit-key peer | route | header:name]\n"
    "           [--rate-limit-dry-run] [--rate-limit-fail open | closed]\n"
    "           [--rate-limit-spare-hits] [--upstream-rate rate]\n"
    "           [--upstream-burst N] [--upstream-wait duration]\n"
    "           [--admin-token-file file] [--queue glob]"
    " [--queue-attempts N]\n"
    "           [--public-sync] [--sync-max-size size]\n"
    "           [--shared redis://host:port/db]\n"
    "           [--shared-password-file file] [--shared-prefix prefix]\n"
    "           [--shared-timeout ms] [--shared-max-object-size size]\n";

static const char help_text[] =
    "\nAnswers HTTP/1.1 requests by relaying them to the upstream through"
    " the relay\ncache (RFC 9111), from inetd, systemd socket activation,"
    " a pipe or --listen.\n\n"
    "      --listen ADDR:PORT        a socket of its own (port 0: any)\n"
    "      --workers N               processes that accept (1-256, one a"
    " core)\n"
    OPTIONS_HELP
    "      --read-only               refuse methods other than GET and"
    " HEAD\n"
    "      --max-body BYTES          the largest request body (1048576)\n"
    "      --idle-timeout TIME       close a silent connection (15s)\n"
    "      --drain-timeout TIME      on SIGTERM, for answers in progress"
    " (10s)\n"
    "      --request-timeout TIME    408 for a request slower to come"
    " (10s)\n"
    "      --routes FILE             merge routes (relay-routes(5))\n"
    "      --program-timeout TIME    stop a route's jq program after TIME"
    " (2s)\n"
    "      --program-max-memory SIZE stop it if it needs more (256M)\n"
    "      --access-log off|FILE     where the JSON access log goes"
    " (stderr)\n"
    "      --rate-limit RATE         requests a client may make, as 100/m"
    " (s, m, h, d)\n"
    "      --burst N                 of them at once (1)\n"
    "      --limit-key peer|route|header:NAME\n"
    "                                what a client is (peer: its"
    " address)\n"
    "      --rate-limit-dry-run      count and log, refuse nothing\n"
    "      --rate-limit-spare-hits   fresh hits do not count\n"
    "      --rate-limit-fail open|closed\n"
    "                                when the limits cannot be checked"
    " (open)\n"
    "      --upstream-rate RATE      requests all processes send upstream,"
    " as 5/s\n"
    "      --upstream-burst N        of them at once (1)\n"
    "      --upstream-wait TIME      for a turn, then stale or 503 (5s)\n"
    "      --admin-token-file FILE   /_relay/ answers others with this"
    " Bearer token\n"
    "      --queue GLOB              keep POST, PUT, PATCH and DELETE of"
    " these paths,\n"
    "                                answer 202, deliver later\n"
    "      --queue-attempts N        before a queued request fails (8)\n"
    "      --public-sync             /_relay/sync answers anyone\n"
    "      --sync-max-size SIZE      its ?format=sqlite files, at most"
    " (256M)\n"
    "      --shared redis://HOST[:PORT][/DB]\n"
    "                                share the cache, leases and limits"
    " with other\n"
    "                                hosts through Redis (RELAY_SHARED)\n"
    "      --shared-password-file FILE\n"
    "                                its password, on the first line\n"
    "      --shared-prefix PREFIX    of every key and the channel"
    " (relay:)\n"
    "      --shared-timeout MS       for a connect or a command, then"
    " alone (250)\n"
    "      --shared-max-object-size SIZE\n"
    "                                larger bodies are not shared (1M)\n"
    "  -h, --help                    this text\n"
    "      --version                 the version\n"
    "\nTIME is seconds, or a number with s, m, h or d. See"
    " relay-serve(8).\n";

/* One request being answered. */
struct answer {
	struct reply		 r;		/* how it goes out */
	char			*key;		/* the upstream URL, normalised */
	char			*target;	/* normalised */
};

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

static void
answer_free(struct answer *a)
{
	free(a->target);
	reply_free(&a->r);
	free(a->key);
	free(a);
}

/* The answer has ended: what it held goes. */
static void
answer_ended(void *ctx)
{
	answer_free(ctx);
}

/* Through the cache (GET, HEAD) or past it (other methods). */
static void
answer_through(struct answer *a)
{
	forward_reply(&a->r, through, a->key);
}

/* What the request gets, once it may be answered. */
static void
answer(struct answer *a, struct route *r, struct route_params *params)
{
	if (r != NULL) {
		merge_reply(&a->r, &merge_env, a->key, r, params);
	} else if (deliver != NULL && queue_wants(&a->r, a->target,
	    queue_globs, n_queue_globs)) {
		queue_reply(&a->r, deliver, a->key, a->target);
	} else if (!a->r.head_only && strcmp(a->r.req->method, "GET") != 0 &&
	    read_only) {
		a->r.cache_status = "-";
		reply_fail(&a->r, 405, "only GET and HEAD are served",
		    "Allow: GET, HEAD\r\n");
	} else {
		answer_through(a);
	}
}

static void
answer_then(void *ctx, struct route *r, struct route_params *params)
{
	answer(ctx, r, params);
}

static void
on_limiter(struct watch *w, short events, void *ctx)
{
	(void)w, (void)events, (void)ctx;
	limiter_collect(limiter);
}

/* At the first request a limit applies to (routes may come later). */
static struct limiter *
need_limiter(void)
{
	if (limiter == NULL) {
		limiter = limiter_start(cache_path, LIMITER_WAIT_MS);
		limiter_share(limiter, through_shared(through));
		loop_watch(loop, limiter_wake_fd(limiter), POLLIN, on_limiter,
		    NULL);
	}
	return limiter;
}

/*
 * GET /_relay/sync (sync_reply.h): under the rules of the admin
 * endpoints, or to anyone with --public-sync.
 */
static void
answer_sync(struct answer *a, const char *target)
{
	a->r.admin = 1;
	a->r.cache_status = "sync";
	if (!public_sync && !admin_allowed(admin, conn_peer(a->r.c),
	    buf_str(&a->r.req->fields))) {
		reply_fail(&a->r, 404, "not found", NULL);
		return;
	}
	sync_reply(&a->r, loop, through_reader(through), base_key, target,
	    sync_max_size);
}

/* Another host gathers every host's stats: this one's, under its name. */
static void
on_report(void *ctx, const char *id)
{
	(void)ctx;
	admin_report(admin, through_shared(through), id, host_name);
}

static void
on_request(struct conn *c, void *ctx)
{
	const struct http_request *req = conn_request(c);
	struct answer *a = xcalloc(1, sizeof *a);
	struct route_params params;
	struct route *r;
	const char *why;
	char *target, *url;
	size_t n = strlen(base_key);
	int cacheable;

	(void)ctx;
	reply_init(&a->r, c, answer_ended, a);
	cacheable = a->r.head_only || strcmp(req->method, "GET") == 0;
	conn_set_data(c, a);
	if ((a->target = target = target_normalize(req->target, &why)) ==
	    NULL) {
		reply_fail(&a->r, 400, why, NULL);
		return;
	}
	if (strcmp(target, "/_relay/batch") == 0 ||
	    strcmp(target, "/_relay/ws") == 0) {
		/* decided on the normalised target: "/%5Frelay/./ws" too */
		if (conn_inner(c))
			reply_fail(&a->r, 400, "an item cannot open a batch or a "
			    "channel", NULL);
		else if (target[8] == 'b')
			batch_reply(&a->r, server);
		else
			channel_reply(&a->r, server,
			    (size_t)serve_options.max_body,
			    serve_options.idle_timeout_ms);
		return;
	}
	if (strncmp(target, "/_relay/sync", 12) == 0 &&
	    (target[12] == '\0' || target[12] == '?')) {
		answer_sync(a, target);
		return;
	}
	if (admin_target(target)) {
		admin_reply(admin, &a->r, target, through_shared(through));
		return;
	}
	url = url_join(base, target);
	a->key = url_normalize(url, &why);
	free(url);
	if (a->key == NULL && why == url_too_long) {
		reply_fail(&a->r, 414, "request target too long for the upstream URL", NULL);
		return;
	}
	/* Defence in depth: the key must name a resource under the base. */
	if (a->key == NULL || strncmp(a->key, base_key, n) != 0 ||
	    a->key[n] != '/') {
		reply_fail(&a->r, 400, "target leaves the upstream", NULL);
		return;
	}
	memset(&params, 0, sizeof params);
	r = cacheable && routes.current != NULL ?
	    routes_match(routes.current, target, &params) : NULL;
	if ((rate_option != NULL || (r != NULL && r->limited)) &&
	    !(throttle_spare_hits && cacheable && r == NULL &&
	    through_would_hit(through, a->key,
	    buf_str(&req->fields))))
		limit_reply(&limits, &a->r, r, &params, target, answer_then, a);
	else
		answer(a, r, &params);
}

static void
on_writable(struct conn *c, void *ctx)
{
	struct answer *a = conn_data(c);

	(void)ctx;
	if (a == NULL)
		return;
	reply_writable(&a->r);
}

/* The client left before its answer was complete. */
static void
on_gone(struct conn *c, void *ctx)
{
	struct answer *a = conn_data(c);

	(void)ctx;
	if (a != NULL) {
		reply_log(&a->r);	/* as cut short, with what went out */
		answer_free(a);
	}
}

static int
on_poll(struct pollfd *fds, unsigned n, int timeout_ms, void *ctx)
{
	(void)ctx;
	return upstream_poll(upstream, fds, n, timeout_ms);
}

static void
on_idle(void *ctx)
{
	(void)ctx;
	if (listen_reload) {
		listen_reload = 0;
		route_set_reload(&routes);
	}
	route_set_idle(&routes);
	through_idle(through, listen_stop);
	if (limiter != NULL)
		limiter_flush(limiter);
	if (deliver != NULL)
		deliver_flush(deliver);
	log_flush();
	if (listen_stop) {
		merge_stop(&merge_env);
		server_stop(server);
	}
}

/* One process's service: the connections of a listener, or just one. */
static int
serve(int listen_fd, int in, int out)
{
	static const struct server_handler handler = {
		on_request, on_writable, on_gone, NULL,
	};

	upstream = upstream_new(&opts.limits);
	loop = loop_new(on_poll, on_idle, NULL);
	server = server_new(loop, &serve_options, &handler);
	through = through_new(cache_path, loop, upstream, &opts);
	if (shared_at.host != NULL) {
		through_share(through, &shared_at, &shared_opts);
		admin_share(admin, through_shared(through));
		shared_on_report(through_shared(through), on_report, NULL);
	}
	if (rate_option != NULL || opts.upstream_rate != NULL)
		need_limiter();
	if (opts.upstream_rate != NULL) {
		gate = gate_new(loop, limiter, &opts.upstream_limit,
		    opts.upstream_wait_ms, limits.fail_closed);
		through_gate(through, gate);
	}
	if (n_queue_globs > 0)
		deliver = deliver_start(cache_path, loop, through,
		    queue_attempts);
	merge_env.through = through;
	merge_env.server = server;
	merge_env.base = base;
	merge_env.rules = &opts.rules;
	if (listen_fd >= 0)
		server_listen(server, listen_fd);
	else
		server_connection(server, in, out);
	if (listen_reload) {	/* a worker started after a SIGHUP */
		listen_reload = 0;
		route_set_reload(&routes);
	}
	loop_run(loop);
	deliver_stop(deliver);
	through_free(through);
	admin_free(admin);
	gate_free(gate);
	limiter_stop(limiter);
	log_flush();
	server_free(server);
	loop_free(loop);
	upstream_free(upstream);
	route_set_free(&routes);
	return 0;
}

static int
serve_listener(int listen_fd)
{
	return serve(listen_fd, -1, -1);
}

static void
set_upstream(void)
{
	const char *why;
	char *prefix;
	size_t n;

	base = xstrdup(config_upstream(opts.upstream));
	prefix = xstrndup(base, strstr(base, "{path}") != NULL ?
	    (size_t)(strstr(base, "{path}") - base) : strlen(base));
	if (strpbrk(prefix, "?#") != NULL)
		why = "it has a query or fragment";
	else if ((base_key = url_normalize(prefix, &why)) != NULL)
		why = NULL;
	free(prefix);
	if (why != NULL)
		prog_errx(EX_CONFIG, "bad upstream '%s': %s",
		    url_redacted(base), why);
	for (n = strlen(base_key); n > 0 && base_key[n - 1] == '/'; n--)
		base_key[n - 1] = '\0';
}

static void
set_cache_path(void)
{
	struct cache_location loc;
	const char *why;

	if (config_cache_location(opts.cache, &loc, &why) < 0)
		prog_errx(EX_CONFIG, "cannot place the cache: %s", why);
	if (loc.is_default)
		config_make_parent(loc.path);
	cache_path = loc.path;
	/* Fail now, not once per worker. */
	store_close(store_open_or_exit(cache_path, STORE_WRITE));
}

enum {
	OPT_ACCESS_LOG = OPTIONS_OWN, OPT_ADMIN_TOKEN_FILE, OPT_BURST,
	OPT_DRAIN_TIMEOUT, OPT_IDLE_TIMEOUT,
	OPT_LIMIT_KEY, OPT_LISTEN, OPT_RATE_LIMIT, OPT_RATE_LIMIT_DRY_RUN,
	OPT_RATE_LIMIT_FAIL, OPT_RATE_LIMIT_SPARE_HITS,
	OPT_MAX_BODY, OPT_PROGRAM_MAX_MEMORY, OPT_PROGRAM_TIMEOUT,
	OPT_PUBLIC_SYNC, OPT_READ_ONLY, OPT_REQUEST_TIMEOUT, OPT_ROUTES,
	OPT_SYNC_MAX_SIZE,
	OPT_QUEUE, OPT_QUEUE_ATTEMPTS, OPT_VERSION, OPT_WORKERS,
};

static const struct option long_options[] = {
	OPTIONS_LONG,
	{ "access-log", required_argument, NULL, OPT_ACCESS_LOG },
	{ "admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN_FILE },
	{ "burst", required_argument, NULL, OPT_BURST },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
	{ "limit-key", required_argument, NULL, OPT_LIMIT_KEY },
	{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
	{ "rate-limit-dry-run", no_argument, NULL, OPT_RATE_LIMIT_DRY_RUN },
	{ "rate-limit-fail", required_argument, NULL, OPT_RATE_LIMIT_FAIL },
	{ "rate-limit-spare-hits", no_argument, NULL,
	    OPT_RATE_LIMIT_SPARE_HITS },
	{ "help", no_argument, NULL, 'h' },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "program-max-memory", required_argument, NULL,
	    OPT_PROGRAM_MAX_MEMORY },
	{ "program-timeout", required_argument, NULL, OPT_PROGRAM_TIMEOUT },
	{ "public-sync", no_argument, NULL, OPT_PUBLIC_SYNC },
	{ "read-only", no_argument, NULL, OPT_READ_ONLY },
	{ "request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "queue-attempts", required_argument, NULL, OPT_QUEUE_ATTEMPTS },
	{ "routes", required_argument, NULL, OPT_ROUTES },
	{ "sync-max-size", required_argument, NULL, OPT_SYNC_MAX_SIZE },
	SHARED_LONG,
	{ "shared-max-object-size", required_argument, NULL,
	    SHARED_OPT_MAX_OBJECT },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ NULL, 0, NULL, 0 },
};

static void
parse_option(int opt, const char *arg)
{
	const char *why;

	if (options_parse(&opts, opt, arg) ||
	    shared_option(&shared_opts, opt, arg))
		return;
	switch (opt) {
	case OPT_ACCESS_LOG:
		if (log_to_file(arg) < 0)
			prog_err(EX_CANTCREAT, "cannot open --access-log "
			    "'%s'", arg);
		break;
	case OPT_ADMIN_TOKEN_FILE:
		free(admin_token);
		if ((admin_token = admin_read_token(arg, &why)) == NULL)
			prog_errx(EX_CONFIG, "bad --admin-token-file '%s': "
			    "%s", arg, why);
		break;
	case OPT_BURST:
		if (num_parse(arg, 1, 1000000, &burst) < 0)
			prog_errx(EXIT_USAGE, "bad --burst '%s': expected 1 to "
			    "1000000", arg);
		break;
	case OPT_LIMIT_KEY:
		if (throttle_key_parse(arg, &limits.policy) < 0)
			prog_errx(EXIT_USAGE, "bad --limit-key '%s': "
			    "expected peer, route or header:NAME", arg);
		break;
	case OPT_RATE_LIMIT:
		rate_option = arg;
		break;
	case OPT_RATE_LIMIT_DRY_RUN:
		limits.dry_run = 1;
		break;
	case OPT_RATE_LIMIT_SPARE_HITS:
		throttle_spare_hits = 1;
		break;
	case OPT_RATE_LIMIT_FAIL:
		if (strcmp(arg, "open") != 0 && strcmp(arg, "closed") != 0)
			prog_errx(EXIT_USAGE, "bad --rate-limit-fail '%s': "
			    "expected open or closed", arg);
		limits.fail_closed = strcmp(arg, "closed") == 0;
		break;
	case OPT_DRAIN_TIMEOUT:
		serve_options.drain_timeout_ms =
		    prog_duration("--drain-timeout", arg) * 1000;
		break;
	case OPT_IDLE_TIMEOUT:
		serve_options.idle_timeout_ms =
		    prog_duration("--idle-timeout", arg) * 1000;
		break;
	case OPT_LISTEN:
		listen_option = arg;
		break;
	case OPT_MAX_BODY:
		if (num_parse(arg, 0, 1LL << 30, &serve_options.max_body) < 0)
			prog_errx(EXIT_USAGE, "bad --max-body '%s': "
			    "expected 0 to %lld bytes", arg, 1LL << 30);
		break;
	case OPT_READ_ONLY:
		read_only = 1;
		break;
	case OPT_SYNC_MAX_SIZE:
		sync_max_size = prog_size("--sync-max-size", arg);
		break;
	case OPT_REQUEST_TIMEOUT:
		serve_options.request_timeout_ms =
		    prog_duration("--request-timeout", arg) * 1000;
		break;
	case OPT_PROGRAM_MAX_MEMORY:
		jq_bounds_memory(&merge_env.bounds, arg);
		break;
	case OPT_PROGRAM_TIMEOUT:
		jq_bounds_timeout(&merge_env.bounds, arg);
		break;
	case OPT_ROUTES:
		routes_option = arg;
		break;
	case OPT_QUEUE:
		queue_globs = xrealloc(queue_globs, (n_queue_globs + 1) *
		    sizeof *queue_globs);
		queue_globs[n_queue_globs++] = xstrdup(arg);
		break;
	case OPT_PUBLIC_SYNC:
		public_sync = 1;
		break;
	case OPT_QUEUE_ATTEMPTS:
		if (num_parse(arg, 1, 1000, &queue_attempts) < 0)
			prog_errx(EXIT_USAGE, "bad --queue-attempts '%s': "
			    "expected 1 to 1000", arg);
		break;
	case OPT_WORKERS:
		if (num_parse(arg, 1, 256, &workers) < 0)
			prog_errx(EXIT_USAGE, "bad --workers '%s': "
			    "expected 1 to 256", arg);
		break;
	default:
		usage();
	}
}

static void
parse_options(int argc, char **argv)
{
	int opt;

	while ((opt = prog_getopt(argc, argv, ":h", long_options)) != -1) {
		if (opt == 'h') {
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(prog_finish_stdout(0));
		}
		if (opt == OPT_VERSION) {
			printf("relay-serve %s\n", VERSION);
			exit(prog_finish_stdout(0));
		}
		parse_option(opt, optarg);
	}
	if (optind < argc)
		usage();
	if (rate_option != NULL && gcra_parse(rate_option, burst,
	    &limits.policy.limit) < 0)
		prog_errx(EXIT_USAGE, "bad --rate-limit '%s': expected a "
		    "count per s, m, h or d, as 100/m", rate_option);
	options_finish(&opts);
}

/* This host among the shared tier's: its name and its cache file's. */
static char *
name_host(void)
{
	struct buf name = BUF_INIT;
	char host[256] = "", *path = realpath(cache_path, NULL);

	(void)gethostname(host, sizeof host - 1);
	buf_printf(&name, "%s:%s", host, path != NULL ? path : cache_path);
	free(path);
	return buf_take(&name);
}

int
main(int argc, char *argv[])
{
	char err[512];
	int fd, listening = 0;
	long cores;

	prog_init(argv);
	signal(SIGPIPE, SIG_IGN);	/* a client that left is an EPIPE */
	opts.limits.low_speed_secs = 30;	/* a client waits on it */
	parse_options(argc, argv);
	set_upstream();
	set_cache_path();
	if (shared_target(&shared_opts, &shared_at, err, sizeof err) < 0)
		prog_errx(EX_CONFIG, "bad --shared: %s", err);
	host_name = name_host();
	admin = admin_new(cache_path, admin_token);
	if (route_set_load(&routes, routes_option, err, sizeof err) < 0)
		prog_errx(EX_CONFIG, "%s", err);
	listen_catch_signals();
	if (listen_option != NULL) {
		fd = listen_open(listen_option);
		listening = 1;
	} else if ((fd = listen_activated(&listening)) < 0) {
		listen_quiet_stderr();
		return serve(-1, STDIN_FILENO, STDOUT_FILENO);	/* inetd */
	}
	if (!listening)
		return serve(-1, fd, fd);	/* systemd Accept=yes */
	if (workers == 0)
		workers = (cores = sysconf(_SC_NPROCESSORS_ONLN)) > 0 ? cores : 1;
	if (workers == 1)
		return serve_listener(fd);
	return listen_workers(fd, (int)workers, serve_listener);
}
