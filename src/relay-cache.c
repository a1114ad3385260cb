/*
 * relay-cache: inspect and manage the relay cache file.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/io.h"
#include "base/num.h"
#include "base/prog.h"
#include "base/text.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/json.h"
#include "http/url.h"
#include "net/metrics.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/store.h"
#include "tier/shared.h"

#include "cache-load.h"

static const char *cache_option;	/* -c, --cache */
static int json_output;			/* --json */
static int store_set_cookie;		/* load --store-set-cookie */
static const char *match;		/* --match GLOB */
static long long purge_to = -1;		/* --to SIZE */
static struct shared_options shared_opts = SHARED_DEFAULTS;	/* --shared… */
static time_t now;

static const char usage_text[] =
    "usage: relay-cache [-c file] command [args]\n"
    "       relay-cache path [--json]\n"
    "       relay-cache ls [--json] [--match glob]\n"
    "       relay-cache get [-i] [-X method] url\n"
    "       relay-cache put [-H header]... [--ttl duration] [--status code]"
    " [-X method] url\n"
    "       relay-cache rm [-f] [--shared redis://host:port/db] url...\n"
    "       relay-cache purge [--expired] [--all] [--match glob] [--to size]"
    " [-v]\n"
    "                   [--shared redis://host:port/db]\n"
    "       relay-cache stats [--json]\n"
    "       relay-cache dump [--match glob]\n"
    "       relay-cache load [--store-set-cookie]\n"
    "       relay-cache vacuum\n"
    "       relay-cache queue [--json] [ls | retry id... | retry failed |"
    " rm id...]\n";

static const char help_text[] =
    "\nInspects and manages the relay cache file.\n\n"
    "  path       where the cache file is, and how it was chosen\n"
    "  ls         one line per entry: status, size, age, state, URL\n"
    "  get        an entry's body (-i: with its status line and fields)\n"
    "  put        standard input as an entry's body\n"
    "  rm         remove entries (-f: missing ones are no error)\n"
    "  purge      remove --expired entries, --all, those that --match,\n"
    "             or evict --to a size\n"
    "  stats      entries, bytes, hits and the file's size\n"
    "  dump       every entry as an NDJSON record (relay(7))\n"
    "  load       records from standard input into the cache\n"
    "  vacuum     give the file's free pages back\n"
    "  queue      relay-serve's queued requests: list, retry, remove\n\n"
    "  -c, --cache FILE        the cache file (see relay(7))\n"
    "      --json              JSON output (path, ls, stats, queue)\n"
    "      --match GLOB        only the URLs that match (ls, purge, dump)\n"
    "  -i, --include           get: the status line and fields first\n"
    "  -H, --header LINE       put: a field, 'Name: value'\n"
    "      --ttl TIME          put: the freshness lifetime\n"
    "      --status CODE       put: the status (200-599, 200)\n"
    "  -X, --request METHOD    get, put: another method than GET\n"
    "  -f, --force             rm: a URL not in the cache is no error\n"
    "      --store-set-cookie  load: responses that set a cookie too\n"
    "      --expired, --all    purge: what to remove\n"
    "      --to SIZE           purge: evict until within SIZE (K, M, G)\n"
    "  -v, --verbose           purge: name each entry removed\n"
    "      --shared URL        rm, purge --all or --match: in the shared"
    " tier too,\n"
    "                          and in every relay-serve sharing it\n"
    "      --shared-password-file FILE, --shared-prefix PREFIX,\n"
    "      --shared-timeout MS as relay-serve(8) has them\n"
    "  -h, --help              this text\n"
    "      --version           the version\n"
    "\nSee relay-cache(1) and, for the file, relay-cache(5).\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

static void
usage_error(const char *fmt, const char *arg)
{
	prog_warnx(fmt, arg);
	usage();
}

static struct cache_location
locate(void)
{
	struct cache_location loc;
	const char *why;

	if (config_cache_location(cache_option, &loc, &why) < 0)
		prog_errx(EX_CONFIG, "cannot place the cache: %s", why);
	return loc;
}

/* Opens the cache or exits with the store's message and status. */
static struct store *
open_cache(enum store_mode mode)
{
	struct cache_location loc = locate();
	struct store *s;

	if (mode == STORE_WRITE && loc.is_default)
		config_make_parent(loc.path);	/* open reports the failure */
	s = store_open(loc.path, mode);
	free(loc.path);
	if (store_status(s) != 0)
		prog_errx(store_status(s), "%s", store_error(s));
	return s;
}

static void
die_store(struct store *s)
{
	prog_errx(store_status(s), "%s", store_error(s));
}

static char *
normalize(const char *url)
{
	const char *why;
	char *n = url_normalize(url, &why), *shown;

	if (n == NULL) {
		shown = url_redacted(url);
		prog_warnx("invalid URL '%s': %s", shown, why);
		free(shown);
	}
	return n;
}

static int
cmd_path(void)
{
	struct cache_location loc = locate();
	struct writer *w;
	char *shown;

	if (json_output) {
		w = xmalloc(sizeof *w);
		writer_init(w, sink_file(stdout));
		writer_puts(w, "{\"path\":");
		json_write_string(w, loc.path, strlen(loc.path));
		writer_printf(w, ",\"source\":\"%s\",\"exists\":%s}\n",
		    loc.source, access(loc.path, F_OK) == 0 ? "true" : "false");
		writer_flush(w);
		free(w);
	} else {
		shown = text_printable(loc.path, !isatty(STDOUT_FILENO));
		puts(shown);
		free(shown);
		if (isatty(STDOUT_FILENO))
			printf("(from %s%s)\n", strcmp(loc.source, "option") ?
			    "$" : "", strcmp(loc.source, "option") ?
			    loc.source : "--cache");
	}
	free(loc.path);
	return 0;
}

/* An entry's age, freshness left and state, as relay-cache(5) has them. */
static void
ls_json(struct writer *w, const struct store_entry *e)
{
	long long ttl = cache_ttl(e, now);

	writer_puts(w, "{\"url\":");
	json_write_string(w, e->url, strlen(e->url));
	writer_puts(w, ",\"method\":");
	json_write_string(w, e->method, strlen(e->method));
	writer_printf(w, ",\"status\":%d,\"size\":%lld,\"age\":%lld"
	    ",\"ttl\":%lld,\"state\":\"%s\",\"hits\":%lld"
	    ",\"response_time\":%lld}\n", e->status, e->size,
	    cache_age(e, now), ttl, ttl > 0 ? "fresh" : "stale", e->hits,
	    (long long)e->response_time);
	writer_flush(w);
}

static void
ls_line(const struct store_entry *e, int tty)
{
	const char *state = cache_ttl(e, now) > 0 ? "fresh" : "stale";
	long long age = cache_age(e, now);
	char size[24], agebuf[24];
	char *url = text_printable(e->url, !tty);	/* the file may lie */

	if (tty)
		printf("%-6d %7s %6s %-5s %s\n", e->status,
		    text_size(e->size, size, sizeof size),
		    text_age(age, AGE_SHORT, agebuf, sizeof agebuf), state, url);
	else
		printf("%d\t%lld\t%lld\t%s\t%s\n", e->status, e->size, age,
		    state, url);
	free(url);
}

/*
 * The next entry to list or dump: 1, or 0 at the end. A damaged one is
 * reported and skipped, and *status says so; other failures exit.
 */
static int
next_entry(struct store *s, struct store_iter *it, struct store_entry *e,
    int *status)
{
	int rc;

	while ((rc = store_iter_next(it, e)) == STORE_DAMAGED) {
		prog_warnx("%s", store_error(s));
		*status = EX_DATAERR;
	}
	if (rc < 0)
		die_store(s);
	return rc;
}

static int
cmd_ls(void)
{
	struct store *s = open_cache(STORE_READ);
	struct store_iter *it = store_iter_new(s, match);
	struct store_entry e;
	struct writer *w = xmalloc(sizeof *w);
	int tty = isatty(STDOUT_FILENO), status = 0;

	if (it == NULL)
		die_store(s);
	writer_init(w, sink_file(stdout));
	if (tty && !json_output)
		printf("%-6s %7s %6s %-5s %s\n", "STATUS", "SIZE", "AGE",
		    "STATE", "URL");
	while (next_entry(s, it, &e, &status) > 0) {
		if (json_output)
			ls_json(w, &e);
		else
			ls_line(&e, tty);
		store_entry_free(&e);
	}
	free(w);
	store_iter_free(it);
	store_close(s);
	return status;
}

static void
print_head(const struct store_entry *e)
{
	printf("HTTP/1.1 %d %s\r\n%sContent-Length: %lld\r\n\r\n", e->status,
	    http_reason(e->status), e->headers, e->size);
}

/* Copies a body opened (and so checked whole) to stdout; exits on failure. */
static void
copy_body(struct store *s, struct store_body *b)
{
	int rc = io_copy(store_body_source(b), sink_file(stdout));

	store_body_close(b);
	if (rc == -1)
		die_store(s);
	if (rc == -2)
		prog_err(EX_IOERR, "write error on standard output");
}

static int
cmd_get(int argc, char **argv, int head, const char *method)
{
	struct store *s;
	struct store_entry e;
	struct store_body *b;
	char *url;
	int found;

	if (argc != 1)
		usage();
	if ((url = normalize(argv[0])) == NULL)
		return EX_DATAERR;
	s = open_cache(STORE_READ);
	if (store_read_begin(s) < 0 ||
	    (found = store_get(s, method, url, NULL, &e)) < 0)
		die_store(s);
	if (!found) {
		prog_warnx("'%s' is not in the cache", url);
		free(url);
		store_close(s);
		return EXIT_PARTIAL;
	}
	/* Nothing is written for an entry whose body would cut it short. */
	if ((b = store_body_open(s, &e)) == NULL)
		die_store(s);
	if (head)
		print_head(&e);
	copy_body(s, b);
	store_read_end(s);
	store_entry_free(&e);
	store_close(s);
	free(url);
	return 0;
}

static int
cmd_put(int argc, char **argv, struct buf *headers, long long ttl,
    int status, const char *method)
{
	struct store_entry e;
	struct policy_times t;
	struct store_writer *w;
	struct store *s;
	char *url;
	int in = STDIN_FILENO, rc;

	if (argc != 1)
		usage();
	if ((url = normalize(argv[0])) == NULL)
		return EX_DATAERR;
	s = open_cache(STORE_WRITE);
	w = store_writer_new(s);
	rc = io_copy(source_fd(&in), store_writer_sink(w));
	if (rc == -1) {
		prog_warn("cannot read standard input");
		store_writer_abort(w);
		return EX_IOERR;
	}
	new_entry(&e, url, method, status, buf_cstr(headers), now);
	policy_times_from(e.headers, now, now, &t);
	derive_entry(&e, &t, ttl);
	if (rc == -2 || store_writer_commit(w, &e) < 0) {
		if (rc == -2)
			store_writer_abort(w);
		die_store(s);
	}
	store_entry_free(&e);
	store_close(s);
	return 0;
}

/*
 * The tier --shared names, connected before anything is changed; its
 * failures are this command's.
 */
static struct shared_sync *
shared_connect(void)
{
	struct shared_sync *shared;
	struct redis_target t;
	char why[512];

	if (shared_target(&shared_opts, &t, why, sizeof why) < 0)
		prog_errx(EX_CONFIG, "bad --shared: %s", why);
	shared = shared_sync_open(&t, &shared_opts);
	if (!shared_sync_ready(shared))
		prog_errx(EX_UNAVAILABLE, "%s", shared_sync_error(shared));
	return shared;
}

/* n, a count from the tier, or an exit saying why there is none. */
static long long
shared_done(struct shared_sync *shared, long long n)
{
	if (n < 0)
		prog_errx(EX_UNAVAILABLE, "%s", shared_sync_error(shared));
	return n;
}

static int
cmd_rm(int argc, char **argv, int force)
{
	struct shared_sync *shared;
	struct store *s;
	long long n;
	char *url;
	int i, status = 0;

	if (argc == 0)
		usage();
	s = open_cache(STORE_WRITE);
	shared = shared_opts.url != NULL ? shared_connect() : NULL;
	for (i = 0; i < argc; i++) {
		if ((url = normalize(argv[i])) == NULL) {
			status = EX_DATAERR;
			continue;
		}
		if ((n = store_remove(s, url)) < 0)
			die_store(s);
		if (shared != NULL)
			n += shared_done(shared,
			    shared_sync_remove(shared, url));
		if (n == 0 && !force) {
			prog_warnx("'%s' is not in the cache", url);
			if (status == 0)
				status = EXIT_PARTIAL;
		}
		free(url);
	}
	store_close(s);
	shared_sync_close(shared);
	return status;
}

/*
 * Removes what --expired, --all and --match say; then, with --to, as
 * many more as the size budget would to fit in it (store_shrink).
 */
static int
cmd_purge(int expired, int all, int verbose)
{
	struct shared_sync *shared;
	struct store *s;
	long long n = 0, used;

	if (!expired && !all && match == NULL && purge_to < 0)
		usage_error("%s", "purge needs --expired, --all, --match or "
		    "--to");
	if (shared_opts.url != NULL && (expired || purge_to >= 0))
		usage_error("%s", "purge --shared takes --all or --match: "
		    "Redis expires what is stale itself, and each host keeps "
		    "its own size");
	s = open_cache(STORE_WRITE);
	if ((expired || all || match != NULL) &&
	    (n = store_purge(s, match, expired ? now : -1)) < 0)
		die_store(s);
	if (verbose && (expired || all || match != NULL))
		prog_warnx("purged %lld %s", n, n == 1 ? "entry" : "entries");
	if (shared_opts.url != NULL) {
		shared = shared_connect();
		n = shared_done(shared,
		    shared_sync_purge(shared, all ? NULL : match));
		shared_sync_close(shared);
		if (verbose)
			prog_warnx("purged %lld shared %s", n,
			    n == 1 ? "entry" : "entries");
	}
	if (purge_to >= 0) {
		if ((used = store_shrink(s, purge_to, &n)) < 0)
			die_store(s);
		if (verbose)
			prog_warnx("evicted %lld %s; %lld bytes in use, %s %lld%s", n,
			    n == 1 ? "entry" : "entries", used, used <= purge_to ?
			    "within" : "over", purge_to, used <= purge_to ? "" :
			    ": the rest is the file's own pages and bodies being "
			    "written");
	}
	store_close(s);
	return 0;
}

/* The file's own numbers, then relay-serve's counters (metrics.h). */
static int
cmd_stats(void)
{
	struct store *s = open_cache(STORE_READ);
	long long *counters = xcalloc(metrics_count(), sizeof *counters);
	struct buf more = BUF_INIT;
	struct store_stats st;
	int tty = isatty(STDOUT_FILENO);
	char human[24];
	size_t i;

	if (store_stats(s, now, &st) < 0 ||
	    store_counters(s, metrics_add_row, counters) < 0)
		die_store(s);
	const struct { const char *name; long long value; int bytes; } rows[] = {
		{ "entries", st.entries, 0 }, { "fresh", st.fresh, 0 },
		{ "stale", st.stale, 0 }, { "bytes", st.bytes, 1 },
		{ "hits", st.hits, 0 }, { "pending", st.pending, 0 },
		{ "garbage", st.garbage, 0 }, { "file", st.file_bytes, 1 },
	};
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (json_output)
			printf("%s\"%s\":%lld", i ? "," : "{", rows[i].name,
			    rows[i].value);
		else if (tty && rows[i].bytes)
			printf("%-8s %s\n", rows[i].name,
			    text_size(rows[i].value, human, sizeof human));
		else
			printf(tty ? "%-8s %lld\n" : "%s\t%lld\n",
			    rows[i].name, rows[i].value);
	}
	if (json_output) {
		buf_addc(&more, ',');
		metrics_json(&more, counters);
		buf_adds(&more, "}\n");
	} else {
		metrics_text(&more, counters, tty);
	}
	fputs(buf_cstr(&more), stdout);
	buf_free(&more);
	free(counters);
	store_close(s);
	return 0;
}

/*
 * Writes an entry as a whole record; one whose body is damaged is
 * reported and left out. Other failures exit.
 */
static void
dump_entry(struct store *s, struct writer *w, const struct store_entry *e,
    int *status)
{
	int rc = cache_write_record(w, s, e, now, 0, LLONG_MAX);

	if (rc == STORE_DAMAGED) {
		prog_warnx("%s", store_error(s));
		*status = EX_DATAERR;
	} else if (rc < 0) {
		writer_flush(w);
		die_store(s);
	}
	if (writer_flush(w) < 0)
		prog_err(EX_IOERR, "write error on standard output");
}

static int
cmd_dump(void)
{
	struct store *s = open_cache(STORE_READ);
	struct writer *w = xmalloc(sizeof *w);
	struct store_iter *it;
	struct store_entry e;
	int status = 0;

	writer_init(w, sink_file(stdout));
	/* One snapshot: the dump is the cache as it was at one moment. */
	if (store_read_begin(s) < 0 || (it = store_iter_new(s, match)) == NULL)
		die_store(s);
	while (next_entry(s, it, &e, &status) > 0) {
		dump_entry(s, w, &e, &status);
		store_entry_free(&e);
	}
	store_iter_free(it);
	store_read_end(s);
	store_close(s);
	free(w);
	return status;
}

static int
cmd_load(void)
{
	struct store *s = open_cache(STORE_WRITE);
	int rc = cache_load(s, now, store_set_cookie);

	store_close(s);
	return rc;
}

static int
cmd_vacuum(void)
{
	struct store *s = open_cache(STORE_WRITE);

	if (store_vacuum(s) < 0)
		die_store(s);
	store_close(s);
	return 0;
}

/* The queue file beside the cache, or NULL if there is none. */
static struct store *
open_queue(void)
{
	struct cache_location loc = locate();
	struct buf path = BUF_INIT;
	struct store *s = NULL;

	buf_printf(&path, "%s-queue", loc.path);
	if (access(buf_cstr(&path), F_OK) == 0 || errno != ENOENT) {
		s = store_open_queue(loc.path, 0);
		if (store_status(s) != 0)
			die_store(s);
	}
	buf_free(&path);
	free(loc.path);
	return s;
}

/*
 * One entry a line: id, state, attempts, status, method, URL, error,
 * each text escaped as ls escapes a URL (the file may lie). A damaged
 * one is named on standard error instead, and *ctx becomes 65.
 */
static void
list_queued(void *ctx, struct store_queued *q)
{
	struct buf line = BUF_INIT;
	char *text[4];
	int *status = ctx;
	size_t i;

	if (q->damaged != NULL) {
		prog_warnx("%s", q->damaged);
		*status = EX_DATAERR;
		store_queued_free(q);
		return;
	}
	text[0] = text_printable(q->state, 1);
	text[1] = text_printable(q->method, 1);
	text[2] = text_printable(q->url, 1);
	text[3] = text_printable(q->error != NULL ? q->error : "-", 1);
	if (json_output)
		store_queued_json(&line, q);
	else
		buf_printf(&line, "%lld\t%s\t%lld\t%d\t%s\t%s\t%s", q->id,
		    text[0], q->attempts, q->status, text[1], text[2], text[3]);
	puts(buf_cstr(&line));
	buf_free(&line);
	for (i = 0; i < sizeof text / sizeof text[0]; i++)
		free(text[i]);
	store_queued_free(q);
}

static long long
queue_id(const char *arg)
{
	long long id;

	if (num_parse(arg, 1, 1LL << 62, &id) < 0)
		usage_error("bad queue entry '%s': expected its number", arg);
	return id;
}

/*
 * relay-cache queue: the entries of relay-serve --queue, oldest first;
 * "retry" queues failed ones again, "rm" removes entries.
 */
static int
cmd_queue(int argc, char **argv)
{
	struct store *s = open_queue();
	const char *verb = argc > 0 ? argv[0] : "ls";
	long long n;
	int i, rc = 0;

	if (strcmp(verb, "ls") == 0 && argc <= 1) {
		if (s != NULL && store_queue_list(s, NULL, list_queued,
		    &rc) < 0)
			die_store(s);
	} else if ((strcmp(verb, "retry") == 0 || strcmp(verb, "rm") == 0) &&
	    argc > 1) {
		if (s == NULL)
			prog_errx(EX_NOINPUT, "no queue beside the cache");
		for (i = 1; i < argc; i++) {
			if (strcmp(verb, "retry") == 0)
				n = store_queue_retry(s, strcmp(argv[i],
				    "failed") == 0 ? -1 : queue_id(argv[i]),
				    (long long)time(NULL) * 1000);
			else
				n = store_queue_remove(s, queue_id(argv[i]));
			if (n < 0)
				die_store(s);
			if (n == 0 && strcmp(argv[i], "failed") != 0) {
				prog_warnx("queue entry %s: %s", argv[i],
				    strcmp(verb, "rm") == 0 ? "no such entry" :
				    "not failed");
				rc = EX_NOINPUT;
			}
		}
	} else {
		usage_error("queue: expected ls, retry ID... or rm ID..., "
		    "not '%s'", verb);
	}
	store_close(s);
	return rc;
}

/* Flags from the command line. */
enum { INCLUDE = 1, FORCE = 2, VERBOSE = 4, EXPIRED = 8, ALL = 16 };

enum {
	OPT_ALL = 256, OPT_EXPIRED, OPT_JSON, OPT_MATCH, OPT_STATUS, OPT_TO,
	OPT_TTL, OPT_STORE_SET_COOKIE,
	OPT_VERSION,
};

static const struct option long_options[] = {
	{ "all", no_argument, NULL, OPT_ALL },
	{ "cache", required_argument, NULL, 'c' },
	{ "expired", no_argument, NULL, OPT_EXPIRED },
	{ "force", no_argument, NULL, 'f' },
	{ "header", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ "include", no_argument, NULL, 'i' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "match", required_argument, NULL, OPT_MATCH },
	{ "request", required_argument, NULL, 'X' },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "store-set-cookie", no_argument, NULL, OPT_STORE_SET_COOKIE },
	{ "to", required_argument, NULL, OPT_TO },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, OPT_VERSION },
	SHARED_LONG,
	{ NULL, 0, NULL, 0 },
};

/* The options each command takes, besides -c and -h. */
static const struct command {
	const char	*name;
	const char	*options;
} commands[] = {
	{ "dump", "m" }, { "get", "iX" }, { "load", "k" }, { "ls", "jm" },
	{ "path", "j" }, { "purge", "aemovSWRU" }, { "put", "HXst" },
	{ "queue", "j" }, { "rm", "fSWRU" }, { "stats", "j" },
	{ "vacuum", "" },
};

/* One letter per long-only option, to check it against the command. */
static int
option_letter(int opt)
{
	switch (opt) {
	case OPT_ALL: return 'a';
	case OPT_EXPIRED: return 'e';
	case OPT_JSON: return 'j';
	case OPT_MATCH: return 'm';
	case OPT_STATUS: return 's';
	case OPT_TO: return 'o';
	case OPT_TTL: return 't';
	case OPT_STORE_SET_COOKIE: return 'k';
	case SHARED_OPT_URL: return 'S';
	case SHARED_OPT_PASSWORD_FILE: return 'W';
	case SHARED_OPT_PREFIX: return 'R';
	case SHARED_OPT_TIMEOUT: return 'U';
	default: return opt;
	}
}

/*
 * Adds -H's field, or exits: a field is 'Name: value', its value
 * without control characters but HTAB, as the store takes it.
 */
static void
add_header(struct buf *headers, const char *line)
{
	const char *why = NULL;
	struct buf one = BUF_INIT;
	char buf[160], *shown;

	if (headers_add_line(&one, line, &why) < 0) {
		/* a control character: the store's words for it, else why */
		buf_reset(&one);
		buf_adds(&one, line);
		buf_adds(&one, "\r\n");
		if (store_fields_invalid(buf_cstr(&one), buf, sizeof buf) !=
		    NULL)
			why = buf;
	} else {
		why = store_fields_invalid(buf_cstr(&one), buf, sizeof buf);
	}
	if (why != NULL) {
		shown = text_printable(line, 0);
		prog_errx(EXIT_USAGE, "bad header '%s': %s", shown, why);
	}
	buf_add(headers, one.data, one.len);
	buf_free(&one);
}

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Every option given must be one the command takes. */
static void
check_options(const struct command *cmd, const int *given,
    char *const *text, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strchr(cmd->options, given[i]) == NULL) {
			prog_warnx("%s: option '%s' is not valid here",
			    cmd->name, text[i]);
			usage();
		}
}

static int
run_command(const struct command *cmd, int argc, char **argv,
    struct buf *headers, long long ttl, int status, const char *method,
    unsigned flags)
{
	if (strcmp(cmd->name, "get") == 0)
		return cmd_get(argc, argv, flags & INCLUDE, method);
	if (strcmp(cmd->name, "put") == 0)
		return cmd_put(argc, argv, headers, ttl, status, method);
	if (strcmp(cmd->name, "rm") == 0)
		return cmd_rm(argc, argv, flags & FORCE);
	if (strcmp(cmd->name, "queue") == 0)
		return cmd_queue(argc, argv);
	if (argc != 0)
		usage_error("unexpected argument '%s'", argv[0]);
	if (strcmp(cmd->name, "path") == 0)
		return cmd_path();
	if (strcmp(cmd->name, "ls") == 0)
		return cmd_ls();
	if (strcmp(cmd->name, "purge") == 0)
		return cmd_purge(flags & EXPIRED, flags & ALL, flags & VERBOSE);
	if (strcmp(cmd->name, "stats") == 0)
		return cmd_stats();
	if (strcmp(cmd->name, "dump") == 0)
		return cmd_dump();
	if (strcmp(cmd->name, "load") == 0)
		return cmd_load();
	return cmd_vacuum();
}

/* What the command line says, once its options are read. */
struct cmdline {
	char		**operands;	/* the command and its arguments */
	int		  n;
	char		**given_text;	/* each option as given… */
	int		 *given;	/* …and its letter, for check_options */
	int		  ngiven;
	struct buf	  headers;	/* -H */
	const char	 *method;	/* -X */
	long long	  ttl, status;
	unsigned	  flags;
	int		  help, version;
};

/* Reads one option into c; usage() if it is none of relay-cache's. */
static void
read_option(struct cmdline *c, int opt)
{
	switch (opt) {
	case 1:
		c->operands[c->n++] = optarg;
		break;
	case 'c':
		cache_option = optarg;
		break;
	case 'f':
		c->flags |= FORCE;
		break;
	case 'H':
		add_header(&c->headers, optarg);
		break;
	case 'h':
		c->help = 1;
		break;
	case 'i':
		c->flags |= INCLUDE;
		break;
	case 'v':
		c->flags |= VERBOSE;
		break;
	case 'X':
		if (!http_method_valid(optarg))
			prog_errx(EXIT_USAGE, "bad --request '%s': expected "
			    "a method name, a token of at most %d characters",
			    optarg, HTTP_MAX_METHOD);
		c->method = optarg;
		break;
	case OPT_ALL:
		c->flags |= ALL;
		break;
	case OPT_EXPIRED:
		c->flags |= EXPIRED;
		break;
	case OPT_JSON:
		json_output = 1;
		break;
	case OPT_MATCH:
		if (strlen(optarg) > STORE_GLOB_MAX)
			prog_errx(EXIT_USAGE, "bad --match: a pattern of %zu "
			    "bytes, over %d", strlen(optarg), STORE_GLOB_MAX);
		match = optarg;
		break;
	case OPT_STORE_SET_COOKIE:
		store_set_cookie = 1;
		break;
	case OPT_STATUS:
		/* a stored response is a final one (store.h) */
		if (num_parse(optarg, 200, 599, &c->status) < 0)
			prog_errx(EXIT_USAGE, "bad status '%s': expected "
			    "200 to 599, a final status", optarg);
		break;
	case OPT_TO:
		if (num_size(optarg, &purge_to) < 0)
			prog_errx(EXIT_USAGE, "bad size '%s': expected bytes, "
			    "or a number with K, M or G", optarg);
		break;
	case OPT_TTL:
		if (num_duration(optarg, &c->ttl) < 0)
			prog_errx(EXIT_USAGE, "bad duration '%s': expected "
			    "seconds or a number with s, m, h or d", optarg);
		break;
	case OPT_VERSION:
		c->version = 1;
		break;
	default:
		if (!shared_option(&shared_opts, opt, optarg))
			usage();
	}
}

static void
read_command_line(struct cmdline *c, int argc, char **argv)
{
	int opt;

	c->operands = xcalloc((size_t)argc + 1, sizeof *c->operands);
	c->given_text = xcalloc((size_t)argc + 1, sizeof *c->given_text);
	c->given = xcalloc((size_t)argc + 1, sizeof *c->given);
	/* "-": operands arrive in order as 1, so options may follow the command. */
	while ((opt = prog_getopt(argc, argv, "-:c:fH:hivX:",
	    long_options)) != -1) {
		if (opt != 1 && opt != 'c' && opt != '?') {
			c->given_text[c->ngiven] = argv[optind - 1];
			c->given[c->ngiven++] = option_letter(opt);
		}
		read_option(c, opt);
	}
	while (optind < argc)	/* after "--" */
		c->operands[c->n++] = argv[optind++];
}

int
main(int argc, char *argv[])
{
	struct cmdline c = {
		.headers = BUF_INIT, .method = "GET", .ttl = -1, .status = 200,
	};
	const struct command *cmd;
	int rc = 0;

	prog_init(argv);
	now = time(NULL);
	read_command_line(&c, argc, argv);
	if (c.help) {
		fputs(usage_text, stdout);
		fputs(help_text, stdout);
	} else if (c.version) {
		printf("relay-cache %s\n", VERSION);
	} else {
		if (c.n == 0)
			usage();
		if ((cmd = find_command(c.operands[0])) == NULL)
			usage_error("unknown command '%s'", c.operands[0]);
		check_options(cmd, c.given, c.given_text, c.ngiven);
		rc = run_command(cmd, c.n - 1, c.operands + 1, &c.headers,
		    c.ttl, (int)c.status, c.method, c.flags);
	}
	free(c.operands);
	free(c.given_text);
	free(c.given);
	buf_free(&c.headers);
	return prog_finish_stdout(rc);
}
