/*
 * relay-cache: inspect and manage the relay cache file.
 */
#include <assert.h>
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
#include "http/record.h"
#include "http/url.h"
#include "net/metrics.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/store.h"
#include "tier/shared.h"

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

/* An entry received now, owning its strings; the headers are filtered. */
static void
new_entry(struct store_entry *e, char *url, const char *method, int status,
    const char *headers)
{
	struct buf kept = BUF_INIT;

	memset(e, 0, sizeof *e);
	headers_add_end_to_end(&kept, headers);
	e->url = url;
	e->method = xstrdup(method);
	e->variant = xstrdup("");
	e->status = status;
	e->headers = buf_take(&kept);
	e->request_time = e->response_time = now;
}

/*
 * Fills in what the cache derives from a response: Date and Age as
 * received, validators, the freshness lifetime (given, or from the
 * headers when lifetime is -1) and the moment it goes stale.
 */
static void
derive_entry(struct store_entry *e, const struct policy_times *t,
    long long lifetime)
{
	e->date = t->date;
	e->age = t->age;
	e->etag = headers_get_dup(e->headers, "etag");
	e->last_modified = headers_get_dup(e->headers, "last-modified");
	e->lifetime = lifetime >= 0 ? lifetime :
	    policy_lifetime(e->headers, e->response_time, POLICY_DEFAULT_TTL);
	e->stale_at = policy_stale_at(t, e->lifetime);
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
	new_entry(&e, url, method, status, buf_cstr(headers));
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

struct load {
	struct store		*s;
	struct store_writer	*w;
	struct sink		 sink;		/* into w */
	struct sink		 absorb;	/* what the record's body goes to */
	int			 failed;	/* the sink did: the rest is dropped */
	char			 why[600];	/* a record that is no entry */
};

/*
 * A body's bytes into the store, until a write fails (a full disk):
 * the rest of the line is still read, so that the record ends where
 * its line does and the next one can go in (a smaller one may fit);
 * the commit then fails, saying why.
 */
static int
load_write(void *ctx, const void *p, size_t n)
{
	struct load *l = ctx;

	if (!l->failed && l->sink.write(l->sink.ctx, p, n) < 0)
		l->failed = 1;
	return 0;
}

static struct sink *
load_body_open(void *ctx, const struct record *rec)
{
	struct load *l = ctx;

	(void)rec;
	l->w = store_writer_new(l->s);
	l->sink = store_writer_sink(l->w);
	l->absorb = (struct sink){ load_write, l };
	l->failed = 0;
	return &l->absorb;
}

/* Whether a normalised URL's scheme is one of a list, "http:https:". */
static int
scheme_in(const char *url, const char *list)
{
	size_t n = strcspn(url, ":");
	const char *p;

	for (p = list; *p != '\0'; p += strcspn(p, ":") + 1)
		if (strncmp(p, url, n) == 0 && p[n] == ':')
			return 1;
	return 0;
}

/* A record's URL normalised, or NULL with l->why saying why it is none. */
static char *
load_url(struct load *l, const char *given)
{
	const char *why;
	char *url = url_normalize(given, &why), *shown;

	if (url == NULL) {
		shown = url_redacted(given);
		snprintf(l->why, sizeof l->why, "invalid URL '%.300s': %s",
		    shown, why);
		free(shown);
	}
	return url;
}

/*
 * The URL a record's response is stored under, normalised, or NULL
 * with l->why saying why there is none: the URL that gave the
 * response, which a redirect followed (relay-fetch -L) makes its
 * effective_url (RFC 9111 section 2). Only what relay-fetch could have
 * fetched: an http, https or file URL, and a redirect from and to
 * http or https, the only ones its libcurl follows.
 */
static char *
load_key(struct load *l, const struct record *rec)
{
	char *url = load_url(l, rec->url), *to = NULL;

	if (url == NULL || (rec->effective_url != NULL &&
	    (to = load_url(l, rec->effective_url)) == NULL)) {
		free(url);
		return NULL;
	}
	if (to != NULL && strcmp(to, url) == 0) {
		free(to);
		to = NULL;
	}
	if (!scheme_in(url, "http:https:file:")) {
		snprintf(l->why, sizeof l->why, "'%.300s' is not an http, "
		    "https or file URL, which relay-fetch fetches", url);
	} else if (to != NULL && (!scheme_in(url, "http:https:") ||
	    !scheme_in(to, "http:https:"))) {
		snprintf(l->why, sizeof l->why, "effective_url '%.300s': "
		    "relay-fetch follows redirects from and to http and https "
		    "only", to);
	} else if (to != NULL) {
		free(url);
		return to;
	} else {
		return url;
	}
	free(url);
	free(to);
	return NULL;
}

/*
 * Why a record's response is not stored, as relay-fetch and
 * relay-serve would not store it (RFC 9111 section 3: no-store,
 * private, Vary: *, a status that is not cacheable without explicit
 * freshness...), or NULL. The record has no request: none of its
 * fields count. A cookie is kept with --store-set-cookie only.
 */
static const char *
load_unstorable(struct load *l, const struct record *rec, int status)
{
	const struct cache_rules rules = { .store_set_cookie =
	    store_set_cookie };
	const char *headers = buf_str(&rec->headers);
	const char *why = cache_unstorable(&rules, status, "", headers);
	struct header h;

	if (why == NULL)
		return NULL;
	snprintf(l->why, sizeof l->why, "not stored, as relay-fetch would "
	    "not store it: %s%s", why, !store_set_cookie &&
	    headers_get(headers, "set-cookie", &h) ? " (load "
	    "--store-set-cookie stores it)" : "");
	return l->why;
}

/*
 * Stores a record as if received now, keeping its age and the
 * freshness it had left, so a dump and load moves a cache in time
 * order without making stale entries fresh. Returns 0, -1 if the store
 * failed (store_error), or 1 for a record that is not stored, l->why
 * saying why: its URL (load_key), an entry put would refuse
 * (store_entry_invalid), a response the fetch rules would not store.
 */
static int
load_commit(struct load *l, struct record *rec)
{
	struct store_entry e;
	struct policy_times t;
	long long lifetime = -1;
	int status = rec->has & HAS_STATUS ? rec->status : 200, rc;
	char *url;

	if ((url = load_key(l, rec)) == NULL)
		return 1;
	new_entry(&e, url, rec->method ? rec->method : "GET", status,
	    buf_cstr(&rec->headers));
	if (store_entry_invalid(&e, l->why, sizeof l->why) != NULL ||
	    load_unstorable(l, rec, status) != NULL) {
		store_entry_free(&e);
		return 1;
	}
	policy_times_from(e.headers, now, now, &t);
	if (rec->has & HAS_AGE)
		t.age = rec->age;
	if (rec->has & HAS_TTL)
		lifetime = policy_current_age(&t, now) + rec->ttl;
	derive_entry(&e, &t, lifetime < 0 && (rec->has & HAS_TTL) ? 0 :
	    lifetime);
	rc = store_writer_commit(l->w, &e);
	l->w = NULL;
	store_entry_free(&e);
	return rc < 0 ? -1 : 0;
}

/*
 * relay-cache load: each record stored, or named by its line and left
 * out (1); one that does not fit (a full disk: 74) too, since a
 * smaller one may; any other failure of the file ends it there.
 */
static int
cmd_load(void)
{
	struct load l = { .s = open_cache(STORE_WRITE) };
	int in = STDIN_FILENO, status = 0, unstored = 0, done = 0, rc;
	struct record_reader *rr = record_reader_new(source_fd(&in));
	struct record rec;

	while (!done) {
		switch (record_read(rr, &rec, load_body_open, &l)) {
		case RECORD_OK:
			if (rec.error != NULL)
				break;	/* a failed fetch has nothing to cache */
			if ((rc = load_commit(&l, &rec)) > 0) {
				prog_warnx("line %lld: %s", rr->line, l.why);
				status = EXIT_PARTIAL;
			} else if (rc < 0 && store_status(l.s) == EX_IOERR) {
				prog_warnx("line %lld: %s", rr->line,
				    store_error(l.s));
				unstored = 1;
			} else if (rc < 0) {
				prog_errx(store_status(l.s), "line %lld: %s",
				    rr->line, store_error(l.s));
			}
			break;
		case RECORD_BAD:
			prog_warnx("line %lld: %s", rr->line, rr->why);
			status = EXIT_PARTIAL;
			break;
		case RECORD_SINK:	/* load_write never fails */
			assert(0);
			break;
		case RECORD_READ:
			prog_err(EX_IOERR, "cannot read standard input");
		case RECORD_END:
			done = 1;
			break;
		}
		if (l.w != NULL) {	/* the record's body was not committed */
			store_writer_abort(l.w);
			l.w = NULL;
		}
		record_free(&rec);
	}
	record_reader_free(rr);
	store_close(l.s);
	return unstored ? EX_IOERR : status;
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

int
main(int argc, char *argv[])
{
	const struct command *cmd = NULL;
	struct buf headers = BUF_INIT;
	const char *method = "GET";
	char **operands = xcalloc((size_t)argc + 1, sizeof *operands);
	char **given_text = xcalloc((size_t)argc + 1, sizeof *given_text);
	int *given = xcalloc((size_t)argc + 1, sizeof *given);
	long long ttl = -1, status = 200;
	unsigned flags = 0;
	int opt, n = 0, ngiven = 0, help = 0, version = 0, rc;

	prog_init(argv);
	now = time(NULL);
	/* "-": operands arrive in order as 1, so options may follow the command. */
	while ((opt = prog_getopt(argc, argv, "-:c:fH:hivX:",
	    long_options)) != -1) {
		if (opt != 1 && opt != 'c' && opt != '?') {
			given_text[ngiven] = argv[optind - 1];
			given[ngiven++] = option_letter(opt);
		}
		switch (opt) {
		case 1:
			operands[n++] = optarg;
			break;
		case 'c':
			cache_option = optarg;
			break;
		case 'f':
			flags |= FORCE;
			break;
		case 'H':
			add_header(&headers, optarg);
			break;
		case 'h':
			help = 1;
			break;
		case 'i':
			flags |= INCLUDE;
			break;
		case 'v':
			flags |= VERBOSE;
			break;
		case 'X':
			if (!http_method_valid(optarg))
				prog_errx(EXIT_USAGE,
				    "bad --request '%s': expected "
				    "a method name, a token of at most %d "
				    "characters", optarg, HTTP_MAX_METHOD);
			method = optarg;
			break;
		case OPT_ALL:
			flags |= ALL;
			break;
		case OPT_EXPIRED:
			flags |= EXPIRED;
			break;
		case OPT_JSON:
			json_output = 1;
			break;
		case OPT_MATCH:
			if (strlen(optarg) > STORE_GLOB_MAX)
				prog_errx(EXIT_USAGE, "bad --match: a pattern "
				    "of %zu bytes, over %d", strlen(optarg),
				    STORE_GLOB_MAX);
			match = optarg;
			break;
		case OPT_STORE_SET_COOKIE:
			store_set_cookie = 1;
			break;
		case OPT_STATUS:
			/* a stored response is a final one (store.h) */
			if (num_parse(optarg, 200, 599, &status) < 0)
				prog_errx(EXIT_USAGE, "bad status '%s': expected "
				    "200 to 599, a final status", optarg);
			break;
		case OPT_TO:
			if (num_size(optarg, &purge_to) < 0)
				prog_errx(EXIT_USAGE, "bad size '%s': expected "
				    "bytes, or a number with K, M or G", optarg);
			break;
		case OPT_TTL:
			if (num_duration(optarg, &ttl) < 0)
				prog_errx(EXIT_USAGE,
				    "bad duration '%s': expected "
				    "seconds or a number with s, m, h or d",
				    optarg);
			break;
		case OPT_VERSION:
			version = 1;
			break;
		default:
			if (!shared_option(&shared_opts, opt, optarg))
				usage();
		}
	}
	while (optind < argc)	/* after "--" */
		operands[n++] = argv[optind++];
	if (help || version) {
		if (help) {
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
		} else
			printf("relay-cache %s\n", VERSION);
		rc = 0;
		goto out;
	}
	if (n == 0)
		usage();
	if ((cmd = find_command(operands[0])) == NULL)
		usage_error("unknown command '%s'", operands[0]);
	check_options(cmd, given, given_text, ngiven);
	rc = run_command(cmd, n - 1, operands + 1, &headers, ttl, (int)status,
	    method, flags);
out:
	free(operands);
	free(given_text);
	free(given);
	buf_free(&headers);
	return prog_finish_stdout(rc);
}
