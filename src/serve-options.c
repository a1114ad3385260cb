/* relay-serve's options (serve-options.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "base/config.h"
#include "base/num.h"
#include "base/prog.h"
#include "net/log.h"
#include "policy/throttle.h"
#include "serve/admin.h"

#include "serve-options.h"

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

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
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

/* The rate limits' options (--rate-limit…); returns whether opt is one. */
static int
parse_limit_option(struct serve_config *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_BURST:
		c->burst = prog_range("--burst", arg, 1, 1000000);
		return 1;
	case OPT_LIMIT_KEY:
		if (throttle_key_parse(arg, &c->limits.policy) < 0)
			prog_errx(EXIT_USAGE, "bad --limit-key '%s': "
			    "expected peer, route or header:NAME", arg);
		return 1;
	case OPT_RATE_LIMIT:
		c->rate = arg;
		return 1;
	case OPT_RATE_LIMIT_DRY_RUN:
		c->limits.dry_run = 1;
		return 1;
	case OPT_RATE_LIMIT_SPARE_HITS:
		c->spare_hits = 1;
		return 1;
	case OPT_RATE_LIMIT_FAIL:
		if (strcmp(arg, "open") != 0 && strcmp(arg, "closed") != 0)
			prog_errx(EXIT_USAGE, "bad --rate-limit-fail '%s': "
			    "expected open or closed", arg);
		c->limits.fail_closed = strcmp(arg, "closed") == 0;
		return 1;
	default:
		return 0;
	}
}

static void
parse_option(struct serve_config *c, int opt, const char *arg)
{
	const char *why;

	if (options_parse(&c->relay, opt, arg) ||
	    shared_option(&c->shared, opt, arg) ||
	    parse_limit_option(c, opt, arg))
		return;
	switch (opt) {
	case OPT_ACCESS_LOG:
		if (log_to_file(arg) < 0)
			prog_err(EX_CANTCREAT, "cannot open --access-log "
			    "'%s'", arg);
		break;
	case OPT_ADMIN_TOKEN_FILE:
		free(c->admin_token);
		if ((c->admin_token = admin_read_token(arg, &why)) == NULL)
			prog_errx(EX_CONFIG, "bad --admin-token-file '%s': "
			    "%s", arg, why);
		break;
	case OPT_DRAIN_TIMEOUT:
		c->server.drain_timeout_ms =
		    prog_duration("--drain-timeout", arg) * 1000;
		break;
	case OPT_IDLE_TIMEOUT:
		c->server.idle_timeout_ms =
		    prog_duration("--idle-timeout", arg) * 1000;
		break;
	case OPT_LISTEN:
		c->listen = arg;
		break;
	case OPT_MAX_BODY:
		if (num_parse(arg, 0, 1LL << 30, &c->server.max_body) < 0)
			prog_errx(EXIT_USAGE, "bad --max-body '%s': "
			    "expected 0 to %lld bytes", arg, 1LL << 30);
		break;
	case OPT_READ_ONLY:
		c->read_only = 1;
		break;
	case OPT_SYNC_MAX_SIZE:
		c->sync_max_size = prog_size("--sync-max-size", arg);
		break;
	case OPT_REQUEST_TIMEOUT:
		c->server.request_timeout_ms =
		    prog_duration("--request-timeout", arg) * 1000;
		break;
	case OPT_PROGRAM_MAX_MEMORY:
		jq_bounds_memory(&c->program_bounds, arg);
		break;
	case OPT_PROGRAM_TIMEOUT:
		jq_bounds_timeout(&c->program_bounds, arg);
		break;
	case OPT_ROUTES:
		c->routes = arg;
		break;
	case OPT_QUEUE:
		c->queue_globs = xrealloc(c->queue_globs,
		    (c->n_queue_globs + 1) * sizeof *c->queue_globs);
		c->queue_globs[c->n_queue_globs++] = xstrdup(arg);
		break;
	case OPT_PUBLIC_SYNC:
		c->public_sync = 1;
		break;
	case OPT_QUEUE_ATTEMPTS:
		c->queue_attempts = prog_range("--queue-attempts", arg, 1, 1000);
		break;
	case OPT_WORKERS:
		c->workers = prog_range("--workers", arg, 1, 256);
		break;
	default:
		usage();
	}
}

/* Reads the options into c; usage() when they are not relay-serve's. */
void
serve_config_parse(struct serve_config *c, int argc, char **argv)
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
		parse_option(c, opt, optarg);
	}
	if (optind < argc)
		usage();
	if (c->rate != NULL && gcra_parse(c->rate, c->burst,
	    &c->limits.policy.limit) < 0)
		prog_errx(EXIT_USAGE, "bad --rate-limit '%s': expected a "
		    "count per s, m, h or d, as 100/m", c->rate);
	options_finish(&c->relay);
}
