/*
 * relay-serve: the HTTP/1.1 relay. GET and HEAD are answered from the
 * shared cache when the rules allow, else fetched from the upstream
 * through it; other methods are relayed uncached, or refused. Started
 * by inetd, by systemd socket activation, or with --listen.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/target.h"
#include "http/url.h"
#include "net/listen.h"
#include "net/log.h"
#include "net/metrics.h"
#include "net/server.h"
#include "policy/policy.h"
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
#include "store/store.h"
#include "through/gate.h"
#include "through/limiter.h"
#include "through/through.h"
#include "upstream/upstream.h"

#include "serve-options.h"

static char *base;		/* the upstream, maybe a {path} template */
static char *base_key;		/* its part before the path, normalised */
static char *cache_path;
static struct through *through;	/* the cache file, its writer, leases */
static struct upstream *upstream;
static struct loop *loop;
static struct server *server;
static struct route_set routes;		/* merge routes, from --routes */
static struct merge_env merge_env;	/* for --routes */
static struct serve_config cfg = SERVE_CONFIG_INIT;	/* the options */
static struct limiter *limiter;		/* NULL: no limit yet */
static struct gate *gate;		/* NULL: no --upstream-rate */
static struct admin *admin;		/* the /_relay/ endpoints */
static struct deliver *deliver;		/* NULL: no --queue */
static struct redis_target shared_at;	/* host: NULL if none */
static char *host_name;			/* in the shared tier's stats */

/* One request being answered. */
struct answer {
	struct reply		 r;		/* how it goes out */
	char			*key;		/* the upstream URL, normalised */
	char			*target;	/* normalised */
};

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
	    cfg.queue_globs, cfg.n_queue_globs)) {
		queue_reply(&a->r, deliver, a->key, a->target);
	} else if (!a->r.head_only && strcmp(a->r.req->method, "GET") != 0 &&
	    cfg.read_only) {
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
	if (!cfg.public_sync && !admin_allowed(admin, conn_peer(a->r.c),
	    buf_str(&a->r.req->fields))) {
		reply_fail(&a->r, 404, "not found", NULL);
		return;
	}
	sync_reply(&a->r, loop, through_reader(through), base_key, target,
	    cfg.sync_max_size);
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
			    (size_t)cfg.server.max_body,
			    cfg.server.idle_timeout_ms);
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
	if ((cfg.rate != NULL || (r != NULL && r->limited)) &&
	    !(cfg.spare_hits && cacheable && r == NULL &&
	    through_would_hit(through, a->key,
	    buf_str(&req->fields))))
		limit_reply(&cfg.limits, &a->r, r, &params, target, answer_then, a);
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

	upstream = upstream_new(&cfg.relay.limits);
	loop = loop_new(on_poll, on_idle, NULL);
	server = server_new(loop, &cfg.server, &handler);
	through = through_new(cache_path, loop, upstream, &cfg.relay);
	if (shared_at.host != NULL) {
		through_share(through, &shared_at, &cfg.shared);
		admin_share(admin, through_shared(through));
		shared_on_report(through_shared(through), on_report, NULL);
	}
	if (cfg.rate != NULL || cfg.relay.upstream_rate != NULL)
		need_limiter();
	if (cfg.relay.upstream_rate != NULL) {
		gate = gate_new(loop, limiter, &cfg.relay.upstream_limit,
		    cfg.relay.upstream_wait_ms, cfg.limits.fail_closed);
		through_gate(through, gate);
	}
	if (cfg.n_queue_globs > 0)
		deliver = deliver_start(cache_path, loop, through,
		    cfg.queue_attempts);
	merge_env.through = through;
	merge_env.server = server;
	merge_env.base = base;
	merge_env.rules = &cfg.relay.rules;
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

	base = xstrdup(config_upstream(cfg.relay.upstream));
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

	if (config_cache_location(cfg.relay.cache, &loc, &why) < 0)
		prog_errx(EX_CONFIG, "cannot place the cache: %s", why);
	if (loc.is_default)
		config_make_parent(loc.path);
	cache_path = loc.path;
	/* Fail now, not once per worker. */
	store_close(store_open_or_exit(cache_path, STORE_WRITE));
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
	cfg.relay.limits.low_speed_secs = 30;	/* a client waits on it */
	serve_config_parse(&cfg, argc, argv);
	cfg.limits.limiter = need_limiter;
	merge_env.bounds = cfg.program_bounds;
	set_upstream();
	set_cache_path();
	if (shared_target(&cfg.shared, &shared_at, err, sizeof err) < 0)
		prog_errx(EX_CONFIG, "bad --shared: %s", err);
	host_name = name_host();
	admin = admin_new(cache_path, cfg.admin_token);
	if (route_set_load(&routes, cfg.routes, err, sizeof err) < 0)
		prog_errx(EX_CONFIG, "%s", err);
	listen_catch_signals();
	if (cfg.listen != NULL) {
		fd = listen_open(cfg.listen);
		listening = 1;
	} else if ((fd = listen_activated(&listening)) < 0) {
		listen_quiet_stderr();
		return serve(-1, STDIN_FILENO, STDOUT_FILENO);	/* inetd */
	}
	if (!listening)
		return serve(-1, fd, fd);	/* systemd Accept=yes */
	if (cfg.workers == 0)
		cfg.workers = (cores = sysconf(_SC_NPROCESSORS_ONLN)) > 0 ?
		    cores : 1;
	if (cfg.workers == 1)
		return serve_listener(fd);
	return listen_workers(fd, (int)cfg.workers, serve_listener);
}
