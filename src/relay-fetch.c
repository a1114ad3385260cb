/*
 * relay-fetch: fetch URLs through the shared cache, many at once.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/config.h"
#include "base/io.h"
#include "base/num.h"
#include "base/prog.h"
#include "base/text.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/httpdate.h"
#include "http/record.h"
#include "http/url.h"
#include "net/loop.h"
#include "through/gate.h"
#include "through/limiter.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/spool.h"
#include "store/store.h"
#include "through/options.h"
#include "through/through.h"
#include "tier/shared.h"
#include "upstream/upstream.h"

#define EXIT_ALL_FAILED EX_UNAVAILABLE	/* every URL failed */
#define SPOOL_MEMORY 65536	/* per waiting body; the rest goes to a file */
#define LOOKUPS_MAX 4		/* starts over of a URL whose entry changed */

static struct options opts = OPTIONS_INIT;	/* shared with relay-serve */
static const char *upstream_base;	/* --upstream, or its default */
static int concurrency = 8;		/* -j */
static int unordered;			/* --unordered */
static int records;			/* --records */
static const char *output_template;	/* -o */
static int create_dirs;			/* --create-dirs */
static long max_redirects;		/* -L: --max-redirs; else 0 */
static long redirect_limit = 20;	/* --max-redirs */
static int include_head;		/* -i */
static int no_cache;			/* --no-cache: always revalidate */
static int no_store;			/* --no-store */
static int offline;			/* --offline */
static long long max_retries = 2;	/* --retry */
static struct buf request_headers = BUF_INIT;	/* -H */

/* WAITING to start (again), RUNNING while the cache-through has it. */
enum job_state { JOB_WAITING, JOB_RUNNING, JOB_DONE };

/*
 * One URL, from its input line to its output. The cache-through
 * (through.h) answers it, from the cache file or the upstream, as it
 * answers relay-serve's requests; the job keeps what the output needs.
 */
struct job {
	struct job		*next;
	long long		 seq;		/* 1, 2, … in input order */
	long long		 line;		/* input line, for messages */
	char			*url;		/* the key: no credentials */
	char			*final_url;	/* -L: the URL that gave the
						   response, if not url */
	char			*authorization;	/* the URL's, as a field */
	enum job_state		 state;
	long long		 retry_at;	/* WAITING: monotonic ms */
	struct through_call	*call;		/* RUNNING */
	struct store_entry	 cached;	/* valid when cached.url */
	struct buf		 memory_body;	/* cached's, if from memory */
	int			 from_memory;
	const char		*source;	/* hit, miss, revalidated, stale,
						   shared */
	int			 status;
	struct buf		 head;
	time_t			 request_time;
	time_t			 response_time;
	int			 stored;	/* the response went to the cache */
	struct spool		*spool;		/* the body, until its turn */
	FILE			*file;		/* -o: the body, in… */
	char			*part;		/* …this NAME.part */
	int			 in_place;	/* …or NAME itself: not a file */
	long long		 name_taken_by;	/* -o: the earlier URL's seq */
	int			 direct;	/* the body goes straight out */
	long long		 size;
	int			 lookups;	/* its entry changed: looked up again */
	int			 damaged;	/* offline: its entry is */
	char			*error;
};

static char method_get[] = "GET";	/* the only method fetched */

static struct loop *loop;
static struct limiter *limiter;	/* with --upstream-rate… */
static struct gate *gate;	/* …its turns */
static struct upstream *upstream;	/* NULL: --offline */
static struct through *through;	/* the cache-through */
static struct store *reader;	/* …whose reader the output reads */
static struct shared_options shared_opts = SHARED_DEFAULTS;	/* --shared… */
static struct job *queue, **queue_tail = &queue;
static int queued, running;
static long long started;		/* jobs created so far */
static int succeeded, failed;
static int failed_damaged;		/* of failed: on a damaged entry */
static long long bytes_in;		/* received, for the progress line */

static const char help_text[] =
    "\nFetches each URL (each line of standard input when none is given)"
    " through\nthe relay cache, many at once, bodies to standard output in"
    " input order.\n\n"
    "  -i, --include                 the status line and fields first\n"
    "  -j, --jobs N                  transfers at once (1-1000, 8)\n"
    "  -o, --output TEMPLATE         bodies to files: %n number, %f file"
    " name, %% %\n"
    "      --create-dirs             create the directories -o names need\n"
    "  -L, --location                follow redirects, up to --max-redirs\n"
    "      --max-redirs N            redirects -L follows (1-100, 20)\n"
    "  -H, --header 'NAME: VALUE'    add a request header field\n"
    "      --records                 one NDJSON record per URL (relay(7))\n"
    "      --unordered               each URL's output as soon as it is"
    " done\n"
    "      --no-cache                revalidate stored responses first\n"
    "      --no-store                store nothing fetched\n"
    "      --offline                 answer from the cache only\n"
    OPTIONS_HELP
    "      --retry N                 retry a failed transfer (0-20, 2)\n"
    "      --upstream-rate RATE      requests every relay-fetch and"
    " relay-serve on\n"
    "                                the cache file send upstream, as 5/s\n"
    "      --upstream-burst N        of them at once (1)\n"
    "      --upstream-wait TIME      for a turn at a time (5s)\n"
    "      --shared redis://HOST[:PORT][/DB]\n"
    "                                look in relay-serve's shared tier"
    " before the\n"
    "                                upstream, and keep what is fetched"
    " there (RELAY_SHARED)\n"
    "      --shared-password-file FILE\n"
    "                                its password, on the first line\n"
    "      --shared-prefix PREFIX    of its keys (relay:)\n"
    "      --shared-timeout MS       for a connect or a command, then"
    " alone (250)\n"
    "      --shared-max-object-size SIZE\n"
    "                                larger bodies are not shared (1M)\n"
    "  -h, --help                    this text\n"
    "      --version                 the version\n"
    "\nTIME is seconds, or a number with s, m, h or d. See relay-fetch(1).\n";

static const char usage_text[] =
    "usage: relay-fetch [-i] [-j N] [-o template] [--create-dirs] [-L]\n"
    "           [--max-redirs N] [-H header]... [--records]\n"
    "           [--unordered] [--no-cache] [--no-store] [--offline]\n"
    "           [--cache file] [--upstream url] [--default-ttl duration]\n"
    "           [--force-ttl duration] [--stale-if-error duration]\n"
    "           [--max-size size] [--max-object-size size]\n"
    "           [--store-set-cookie] [--targeted-cache-control fields]\n"
    "           [--collapse-timeout duration] [--retry N]\n"
    "           [--upstream-rate rate] [--upstream-burst N]\n"
    "           [--upstream-wait duration]\n"
    "           [--connect-timeout duration] [--max-time duration]\n"
    "           [--cacert file] [--shared redis://host:port/db]\n"
    "           [--shared-password-file file] [--shared-prefix prefix]\n"
    "           [--shared-timeout ms] [--shared-max-object-size size]"
    " [url ...]\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

static int progress_shown;	/* a progress line is on the terminal */

/* Erases the progress line so that a message starts on a clean line. */
static void
clear_progress(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = 0;
}

static void
job_fail(struct job *j, const char *fmt, const char *arg)
{
	struct buf msg = BUF_INIT;

	buf_printf(&msg, fmt, arg);
	free(j->error);
	j->error = buf_take(&msg);
	j->state = JOB_DONE;
}

/*
 * An absolute URL, or a path resolved against the upstream, as a key;
 * the credentials it carries go to the job as a request field.
 */
static char *
resolve(struct job *j, const char *text, const char **why)
{
	char *full = text[0] == '/' ? url_join(upstream_base, text) :
	    xstrdup(text), *url = url_normalize(full, why);

	if (url != NULL)
		j->authorization = url_authorization(full);
	free(full);
	return url;
}

static long long claim_output_name(const struct job *);

static struct job *
job_new(const char *text, long long line)
{
	struct job *j = xcalloc(1, sizeof *j);
	const char *why;

	j->seq = ++started;
	j->line = line;
	j->url = resolve(j, text, &why);
	if (j->url == NULL) {
		clear_progress();
		j->url = url_redacted(text);
		if (line > 0)
			prog_warnx("line %lld: invalid URL '%s': %s", line,
			    j->url, why);
		else
			prog_warnx("invalid URL '%s': %s", j->url, why);
		j->error = xstrdup("invalid URL");
		j->state = JOB_DONE;
	} else if (output_template != NULL)
		j->name_taken_by = claim_output_name(j);
	*queue_tail = j;
	queue_tail = &j->next;
	queued++;
	return j;
}

static void
job_free(struct job *j)
{
	if (j->call != NULL)
		through_cancel(j->call);
	store_entry_free(&j->cached);
	buf_free(&j->memory_body);
	spool_free(j->spool);
	if (j->file != NULL)
		fclose(j->file);
	if (j->part != NULL && !j->in_place)
		unlink(j->part);	/* not renamed: the URL failed */
	free(j->part);
	buf_free(&j->head);
	free(j->url);
	free(j->final_url);
	free(j->authorization);
	free(j->error);
	free(j);
}

static const struct through_sink fetch_sink;

/*
 * Hands the job to the cache-through: -H's fields choose the variant
 * and go upstream, with the URL's own credentials unless -H has some.
 */
static void
start(struct job *j)
{
	const char *fields = buf_cstr(&request_headers);
	struct buf forward = BUF_INIT;
	struct header h;
	struct through_request req = {
		.key = j->url, .method = "GET", .fields = fields,
		.retries = (int)max_retries, .max_redirects = max_redirects,
		.unstored_5xx = 1,
	};

	buf_adds(&forward, fields);
	if (j->authorization != NULL && !headers_get(fields, "authorization",
	    &h))
		buf_adds(&forward, j->authorization);
	req.forward = buf_cstr(&forward);
	policy_request_parse(fields, &req.directives);
	req.directives.no_cache |= no_cache;
	req.directives.no_store |= no_store;
	j->state = JOB_RUNNING;
	running++;
	through_start(through, &req, &fetch_sink, j, &j->call);
	buf_free(&forward);
}

/* The cache-through's last word on the job. */
static void
job_over(struct job *j, enum job_state state)
{
	j->call = NULL;
	j->state = state;
	running--;
}

/*
 * Forgets what a transfer that failed received: the body held for the
 * output (its spool, or its -o part file), and the head and the URL it
 * came from, which are not the stored response's. Used before a retry
 * and before the stored response stands in.
 */
static void
drop_received(struct job *j)
{
	spool_free(j->spool);
	j->spool = NULL;
	if (j->file != NULL)
		fclose(j->file);
	j->file = NULL;
	if (j->part != NULL && !j->in_place)
		unlink(j->part);
	free(j->part);
	j->part = NULL;
	buf_reset(&j->head);
	free(j->final_url);
	j->final_url = NULL;
	j->size = 0;
}

/* The last segment of the URL's path, safe as a file name. */
static void
add_url_file(struct buf *name, const char *url)
{
	const char *path = strstr(url, "://"), *end, *p;

	path = path != NULL ? strchr(path + 3, '/') : NULL;
	if (path == NULL || (end = path + strcspn(path, "?#")) == path + 1) {
		buf_adds(name, "index");
		return;
	}
	for (p = end; p > path && p[-1] != '/'; p--)
		;
	if (p == end || (end - p == 2 && p[0] == '.' && p[1] == '.'))
		buf_adds(name, "index");
	else
		buf_add(name, p, (size_t)(end - p));
}

/* -o's template: a name, its escapes known ones; else a usage error. */
static void
check_template(const char *t)
{
	const char *p;

	if (*t == '\0')
		prog_errx(EXIT_USAGE, "-o needs a file name");
	for (p = t; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] == '\0' || strchr("nf%", p[1]) == NULL)
			prog_errx(EXIT_USAGE,
			    "bad -o '%s': %% is followed by %s%.1s, "
			    "not n, f or %%", t, p[1] ? "" : "nothing", p + 1);
}

/* -o: %n is the URL's number in the input, %f its file name, %% a %. */
static char *
output_name(const struct job *j)
{
	struct buf name = BUF_INIT;
	const char *p;

	for (p = output_template; *p != '\0'; p++) {
		if (*p != '%' || p[1] == '\0') {
			buf_addc(&name, *p);
			continue;
		}
		switch (*++p) {
		case 'n':
			buf_printf(&name, "%lld", j->seq);
			break;
		case 'f':
			add_url_file(&name, j->url);
			break;
		default:
			buf_addc(&name, *p);
		}
	}
	return buf_take(&name);
}

static int open_part(struct job *);

/* -i: the status line and fields the job received, to out. */
static void
write_head(struct job *j, FILE *out)
{
	if (include_head)
		fprintf(out, "HTTP/1.1 %d %s\r\n%s\r\n", j->status,
		    http_reason(j->status), buf_cstr(&j->head));
}

/*
 * The body goes to the output straight away when it is next there,
 * else to a file of -o or a spool. A body the stored response may yet
 * stand in for, should its transfer fail (may_stand_in), is spooled
 * until the transfer is over: the output is then one or the other,
 * never bytes of both.
 */
static void
begin_body(struct job *j, int may_stand_in)
{
	int ok = j->status >= 200 && j->status < 300;

	if (!ok || records || may_stand_in) {
		j->spool = spool_new(SPOOL_MEMORY);
	} else if (output_template != NULL) {
		/* a failure stops the transfer in on_body */
		if (open_part(j) == 0)
			write_head(j, j->file);
	} else if (!unordered && queue == j) {
		/* The first job in the queue is the one whose output is due. */
		j->direct = 1;
		write_head(j, stdout);
	} else {
		j->spool = spool_new(SPOOL_MEMORY);
	}
}

/* The head of the response the upstream sent, from the cache-through. */
static int
on_head(void *ctx, int status, const char *headers)
{
	struct job *j = ctx;
	const struct through_result *r = through_result(j->call);

	j->status = status;
	j->request_time = r->request_time;
	j->response_time = r->response_time;
	buf_reset(&j->head);
	buf_adds(&j->head, headers);
	free(j->final_url);
	j->final_url = r->final_url != NULL ? xstrdup(r->final_url) : NULL;
	begin_body(j, r->may_stand_in);
	return 0;
}

/* The URL fails on our side, for this reason (taken); returns -1. */
static int
failed_here(struct job *j, struct buf *why)
{
	free(j->error);
	j->error = buf_take(why);
	return -1;
}

/* A write of the body failed: the transfer stops. */
static int
write_failed(struct job *j, const char *what)
{
	struct buf why = BUF_INIT;

	buf_printf(&why, "cannot write '%s': %s", what, strerror(errno));
	return failed_here(j, &why);
}

static int
on_body(void *ctx, const void *p, size_t n)
{
	struct job *j = ctx;

	if (j->error != NULL)
		return -1;	/* open_part failed */
	j->size += (long long)n;
	bytes_in += (long long)n;
	if (j->direct)
		return fwrite(p, 1, n, stdout) == n ? 0 :
		    write_failed(j, "standard output");
	if (j->file != NULL)
		return fwrite(p, 1, n, j->file) == n ? 0 :
		    write_failed(j, j->part);
	if (spool_write(j->spool, p, n) < 0)
		prog_err(EX_IOERR, "%s: cannot spool the body", j->url);
	return 0;
}

/*
 * The transfer failed, or is tried again: what it received is
 * forgotten, unless some of it is out already, or it failed here.
 */
static int
on_reset(void *ctx)
{
	struct job *j = ctx;

	if (j->direct || j->error != NULL)
		return -1;
	drop_received(j);
	return 0;
}

static void
on_done(void *ctx, const char *error)
{
	struct job *j = ctx;

	j->stored = through_result(j->call)->stored;
	job_over(j, JOB_DONE);
	if (j->error == NULL && error != NULL)
		j->error = xstrdup(error);	/* else ours says more */
	j->source = "miss";	/* a 5xx response too, relayed as it is */
}

/* The response received, as the cache sees it. */
static struct cache_response
response_of(const struct job *j)
{
	return (struct cache_response){
		.url = j->final_url != NULL ? j->final_url : j->url,
		.status = j->status, .headers = buf_str(&j->head),
		.request_headers = buf_cstr(&request_headers),
		.request_time = j->request_time,
		.response_time = j->response_time,
	};
}

/* A stored response answered: fresh, stale, or revalidated. */
static void
on_stored(void *ctx, const struct store_entry *e, enum through_how how)
{
	struct job *j = ctx;
	const struct through_result *r = through_result(j->call);
	const char *body = through_memory_body(j->call);
	long long age = cache_age(e, time(NULL));

	store_entry_copy(&j->cached, e);
	buf_reset(&j->memory_body);
	if ((j->from_memory = body != NULL))
		buf_add(&j->memory_body, body, (size_t)e->size);
	j->status = e->status;
	j->source = how == THROUGH_REVALIDATED ? "revalidated" :
	    how == THROUGH_HIT && r->shared ? "shared" :
	    how == THROUGH_HIT && age < e->lifetime ? "hit" : "stale";
	if (how == THROUGH_STALE_ERROR) {
		clear_progress();
		if (r->error != NULL)
			prog_warnx("%s: %s; serving the cached response, "
			    "%lld s old", j->url, r->error, age);
		else
			prog_warnx("%s: HTTP %d %s; serving the cached "
			    "response, %lld s old", j->url, r->status,
			    http_reason(r->status), age);
	}
	job_over(j, JOB_DONE);
}

/*
 * No response: over the upstream's rate (the job waits its turn again,
 * when the rate says, not counted as an attempt), or a failure.
 */
static void
on_fail(void *ctx, enum through_failure why, const char *error)
{
	struct job *j = ctx;
	long long after_s = through_result(j->call)->retry_after_s;

	job_over(j, JOB_WAITING);
	switch (why) {
	case THROUGH_UPSTREAM_LIMITED:
		j->retry_at = prog_now_ms() + (after_s > 0 ? after_s : 1) * 1000;
		return;
	case THROUGH_NOT_CACHED:
		job_fail(j, "'%s' is not in the cache", j->url);
		return;
	case THROUGH_DAMAGED:
		j->damaged = 1;
		break;
	case THROUGH_UPSTREAM_FAILED:
	case THROUGH_TIMED_OUT:
		break;
	}
	job_fail(j, "%s", error);
}

static const struct through_sink fetch_sink = {
	.stored = on_stored, .head = on_head, .body = on_body,
	.done = on_done, .fail = on_fail, .reset = on_reset,
};

static int
spool_open(void *ctx, struct source *out)
{
	*out = spool_source(ctx);
	return 0;
}

/* A body answered from memory, for its record. */
struct memory_ref {
	struct mem_source	 m;
	const struct buf	*body;
};

static int
memory_open(void *ctx, struct source *out)
{
	struct memory_ref *ref = ctx;

	*out = source_mem(&ref->m, ref->body->data, ref->body->len);
	return 0;
}

static void
nothing_to_close(void *ctx)
{
	(void)ctx;
}

static void
write_record(struct job *j, struct writer *w)
{
	const struct store_entry *c = &j->cached;
	struct store_body_ref ref = { reader, c, NULL };
	struct memory_ref in_memory = { { NULL, 0 }, &j->memory_body };
	struct record_source body = { store_body_ref_open,
		store_body_ref_close, &ref };
	struct record rec = {
		.url = j->url, .effective_url = j->final_url,
		.method = method_get, .status = j->status,
		.error = j->error, .request_time = j->request_time,
		.response_time = j->response_time, .size = j->size,
	};
	struct cache_response r;
	struct store_entry e;
	long long age;

	snprintf(rec.source, sizeof rec.source, "%s", j->source ?
	    j->source : "miss");
	if (j->error == NULL && j->spool != NULL) {
		r = response_of(j);
		cache_entry(&r, &opts.rules, buf_cstr(&j->head), &e);
		body = (struct record_source){ spool_open, nothing_to_close,
			j->spool };
		headers_add_end_to_end(&rec.headers, buf_cstr(&j->head));
		rec.age = policy_current_age(&(struct policy_times){
		    e.request_time, e.response_time, e.date, e.age },
		    time(NULL));
		rec.ttl = e.lifetime - rec.age;
		rec.has = j->stored ? HAS_TTL : 0;	/* else no freshness */
	} else if (j->error == NULL) {
		if (j->from_memory)
			body = (struct record_source){ memory_open,
				nothing_to_close, &in_memory };
		buf_adds(&rec.headers, c->headers);
		rec.request_time = c->request_time;
		rec.response_time = c->response_time;
		rec.size = c->size;
		age = cache_age(c, time(NULL));
		rec.age = age;
		rec.ttl = c->lifetime - age;
		rec.has = HAS_TTL;
	}
	if (record_write(w, &rec, &body) < 0)
		prog_errx(EX_IOERR, "%s: cannot read the body again", j->url);
	buf_free(&rec.headers);
	writer_flush(w);
}

/* Copies a received body from its spool to out. */
static int
write_spooled(struct job *j, FILE *out)
{
	write_head(j, out);
	return io_copy(spool_source(j->spool), sink_file(out));
}

/* Copies a body answered from the cache to out. */
static int
write_cached(struct job *j, FILE *out)
{
	const struct store_entry *c = &j->cached;
	struct store_body *b;
	int rc;

	if (include_head)
		fprintf(out, "HTTP/1.1 %d %s\r\n%sContent-Length: %lld\r\n"
		    "\r\n", c->status, http_reason(c->status), c->headers,
		    c->size);
	if (j->from_memory)
		return fwrite(j->memory_body.data, 1, j->memory_body.len,
		    out) == j->memory_body.len ? 0 : -1;
	if ((b = store_body_open(reader, c)) == NULL)
		prog_errx(store_status(reader), "%s", store_error(reader));
	rc = io_copy(store_body_source(b), sink_file(out));
	store_body_close(b);
	if (rc == -1)
		prog_errx(store_status(reader), "%s", store_error(reader));
	return rc;
}

/* The names -o has given out, so that no URL overwrites another's file. */
struct claim {
	struct claim	*next;
	long long	 seq;
	char		 name[];
};
static struct claim *claims[4096];

/* Claims a file name for URL seq; returns the seq that has it already, or 0. */
static long long
claim_name(const char *name, long long seq)
{
	unsigned long h = 5381;
	const char *p;
	struct claim *c, **slot;
	size_t len = strlen(name);

	for (p = name; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	slot = &claims[h % (sizeof claims / sizeof claims[0])];
	for (c = *slot; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c->seq;
	c = xmalloc(sizeof *c + len + 1);
	memcpy(c->name, name, len + 1);
	c->seq = seq;
	c->next = *slot;
	*slot = c;
	return 0;
}

/*
 * Names are claimed as URLs are read, so that the earlier URL in the
 * input keeps a name whichever answer comes first.
 */
static long long
claim_output_name(const struct job *j)
{
	char *name = output_name(j);
	long long other = claim_name(name, j->seq);

	free(name);
	return other;
}

/* --create-dirs: the directories a file name needs. */
static void
make_parents(const char *name)
{
	char *path = xstrdup(name), *p;

	for (p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		mkdir(path, 0777);	/* one that fails shows at fopen */
		*p = '/';
	}
	free(path);
}

/*
 * -o: a body is written to NAME.part and renamed into place once the
 * URL succeeded, so a file under its final name is always whole; but
 * a NAME that is a device or a FIFO (/dev/null, a terminal) is written
 * in place, as curl does, never replaced. A name
 * another URL has is refused. Returns -1 with the reason in j->error.
 */
static int
open_part(struct job *j)
{
	char *name = output_name(j);
	struct buf part = BUF_INIT, why = BUF_INIT;
	struct stat st;

	if (j->name_taken_by != 0) {
		buf_printf(&why, "-o names '%s' for URL %lld already", name,
		    j->name_taken_by);
	} else {
		if (create_dirs)
			make_parents(name);
		j->in_place = stat(name, &st) == 0 &&
		    (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode));
		buf_printf(&part, j->in_place ? "%s" : "%s.part", name);
		j->part = buf_take(&part);
		if ((j->file = fopen(j->part, "w")) == NULL)
			buf_printf(&why, "cannot create '%s': %s", j->part,
			    strerror(errno));
	}
	free(name);
	return why.len > 0 ? failed_here(j, &why) : 0;
}

/* Puts the body in its file; -1 if it failed (the part is removed). */
static int
write_file(struct job *j)
{
	char *name = output_name(j);
	struct buf why = BUF_INIT;
	int rc = 0;

	if (j->part == NULL && (rc = open_part(j)) == 0 &&	/* held back */
	    (j->spool != NULL ? write_spooled(j, j->file) :
	    write_cached(j, j->file)) < 0)
		rc = write_failed(j, j->part);
	if (j->file != NULL && fclose(j->file) != 0 && rc == 0)
		rc = write_failed(j, j->part);
	j->file = NULL;
	if (rc == 0 && !j->in_place && rename(j->part, name) < 0) {
		buf_printf(&why, "cannot rename '%s' to '%s': %s", j->part,
		    name, strerror(errno));
		rc = failed_here(j, &why);
	}
	if (rc == 0) {
		free(j->part);
		j->part = NULL;
	} else if (j->part != NULL && !j->in_place) {
		unlink(j->part);
	}
	free(name);
	return rc;
}

/* Writes a finished job's output and counts it. */
static void
output(struct job *j, struct writer *w)
{
	int ok = j->error == NULL && j->status >= 200 && j->status < 300;

	if (ok && output_template != NULL && !records && write_file(j) < 0)
		ok = 0;
	clear_progress();
	if (j->error != NULL && offline && j->damaged)
		prog_warnx("%s", j->error);	/* the store's: it names it */
	else if (j->error != NULL && strcmp(j->error, "invalid URL") != 0)
		prog_warnx("%s: %s", j->url, j->error);
	else if (j->error == NULL && !ok)
		prog_warnx("%s: HTTP %d %s", j->url, j->status,
		    http_reason(j->status));
	if (records)
		write_record(j, w);
	else if (ok && output_template != NULL)
		;	/* written above */
	else if (ok && !j->direct && (j->spool != NULL ?
	    write_spooled(j, stdout) : write_cached(j, stdout)) < 0)
		prog_err(EX_IOERR, "%s: cannot copy the body", j->url);
	if (ok)
		succeeded++;
	else
		failed++;
	if (!ok && offline && j->damaged)
		failed_damaged++;	/* online, the upstream was asked */
	if (ferror(stdout))
		prog_errx(EX_IOERR, "write error on standard output");
}

/* Whether the job's output reads its body from the cache file. */
static int
reads_cached(const struct job *j)
{
	return j->error == NULL && j->cached.url != NULL && !j->from_memory &&
	    j->spool == NULL && !j->direct && j->part == NULL;
}

/*
 * Whether the entry the job looked up is still the URL's, body and
 * all, and still whole (store_body_check): nothing of a damaged entry
 * is written, not its first byte.
 */
static int
still_stored(const struct job *j)
{
	struct store_entry now;
	int found = store_get(reader, "GET", j->url, j->cached.variant, &now),
	    check = 1;	/* not made: the entry was replaced or removed */

	if (found == -1)
		prog_errx(store_status(reader), "%s", store_error(reader));
	if (found > 0 && now.body == j->cached.body &&
	    (check = store_body_check(reader, &now)) == -1)
		prog_errx(store_status(reader), "%s", store_error(reader));
	if (found > 0)
		store_entry_free(&now);
	return check == 0;
}

/*
 * The job's entry was replaced or removed before its output: by this
 * run's own writes (--max-size evicts), or another process's (relay-cache
 * rm, put, purge); or it was damaged. The URL starts over, from the
 * lookup, on its own; after LOOKUPS_MAX such starts it fails.
 */
static void
look_again(struct job *j)
{
	if (++j->lookups > LOOKUPS_MAX) {
		job_fail(j, "%s", "its cache entry kept changing before it "
		    "could be written");
		return;
	}
	store_entry_free(&j->cached);
	buf_reset(&j->memory_body);
	j->from_memory = 0;
	buf_reset(&j->head);
	free(j->final_url);
	j->final_url = NULL;
	j->state = JOB_WAITING;
	j->retry_at = 0;
	j->source = NULL;
	j->status = 0;
	j->size = 0;
	j->stored = 0;
}

/*
 * Writes a finished job's output; returns 0 if it started over instead.
 * A body in the cache file is read in one read transaction that first
 * makes sure the entry is still the one looked up, so that the output
 * is that entry's, whole, or the URL starts over (look_again).
 */
static int
output_job(struct job *j, struct writer *w)
{
	int kept;

	if (!reads_cached(j)) {
		output(j, w);
		return 1;
	}
	store_read_begin(reader);
	if ((kept = still_stored(j)))
		output(j, w);
	store_read_end(reader);
	if (!kept)
		look_again(j);
	return kept;
}

/* Outputs finished jobs: in input order, or as they finish. */
static void
flush_done(struct writer *w)
{
	struct job **p = &queue, *j;

	through_idle(through, 0);	/* its read ends: ours begin */
	while ((j = *p) != NULL) {
		if (j->state == JOB_DONE && !output_job(j, w))
			continue;	/* started over, or failed: see again */
		if (j->state != JOB_DONE) {
			if (!unordered)
				break;
			p = &j->next;
			continue;
		}
		*p = j->next;
		if (queue_tail == &j->next)
			queue_tail = p;
		queued--;
		job_free(j);
	}
	fflush(stdout);
}

/* Starts waiting jobs while there is room, in input order. */
static void
start_waiting(void)
{
	long long now = prog_now_ms();
	struct job *j;

	for (j = queue; j != NULL && running < concurrency; j = j->next)
		if (j->state == JOB_WAITING && j->retry_at <= now)
			start(j);
}

/*
 * On a terminal, one line on stderr: URLs done of those read so far
 * ("+" while more may come), failures, bytes and rate. At most ten
 * updates a second; nothing when stderr is not a terminal.
 */
static int
progress_on(void)
{
	static int tty = -1;

	if (tty == -1)	/* not over bodies written to the same terminal */
		tty = isatty(STDERR_FILENO) && !isatty(STDOUT_FILENO);
	return tty;
}

static void
show_progress(int more, long long start_ms)
{
	static long long last_ms;
	long long now = prog_now_ms();
	char total[16], rate[16];

	if (!progress_on() || now - last_ms < 100)
		return;
	last_ms = now;
	fprintf(stderr, "\r\033[Krelay-fetch: %d/%lld%s done, %d failed, %s,"
	    " %s/s", succeeded + failed, started, more ? "+" : "", failed,
	    text_size(bytes_in, total, sizeof total),
	    text_size(bytes_in * 1000 / (now - start_ms + 1), rate,
	    sizeof rate));
	progress_shown = 1;
}

/*
 * URL lines from standard input, read as they arrive without ever
 * blocking the transfers in progress: a slow producer upstream in the
 * pipeline does not stall the fetches already running.
 */
struct input {
	char		buf[2 * URL_MAX];
	size_t		len;
	int		eof;
	int		skipping;	/* the rest of an over-long line */
	long long	lineno;
};

/* Reads what standard input holds now; returns 0 if nothing was ready. */
static int
input_fill(struct input *in)
{
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	ssize_t n;

	if (in->eof || poll(&pfd, 1, 0) <= 0)
		return 0;
	n = read(STDIN_FILENO, in->buf + in->len, sizeof in->buf - in->len);
	if (n < 0 && errno != EINTR && errno != EAGAIN)
		prog_err(EX_IOERR, "cannot read standard input");
	if (n == 0)
		in->eof = 1;
	if (n > 0)
		in->len += (size_t)n;
	return 1;
}

/*
 * Takes one line out of the buffer, trimmed; returns 0 if none is
 * complete. A line longer than URL_MAX is reported, consumed as it
 * arrives, and given back as an empty line; so is a line with a NUL
 * byte, which would otherwise cut the URL short without a word.
 */
static int
input_take(struct input *in, char *line)
{
	char *nl = memchr(in->buf, '\n', in->len);
	size_t n = nl != NULL ? (size_t)(nl - in->buf) : in->len;
	int nul = 0;

	if (nl == NULL && (in->len == 0 || (!in->eof && in->len <= URL_MAX)))
		return 0;	/* wait for the rest of the line */
	if (n > URL_MAX && !in->skipping) {
		prog_warnx("line %lld: URL longer than %d bytes",
		    in->lineno + 1, URL_MAX);
		failed++;
		in->skipping = 1;
	}
	if (!in->skipping) {
		memcpy(line, in->buf, n);
		line[n] = '\0';
		nul = memchr(line, '\0', n) != NULL;
	}
	n += nl != NULL;
	in->len -= n;
	memmove(in->buf, in->buf + n, in->len);
	if (nl == NULL && !in->eof)
		return 0;	/* more of the over-long line to come */
	in->lineno++;
	if (nul) {
		prog_warnx("line %lld: a NUL byte in the URL", in->lineno);
		failed++;
	}
	if (in->skipping || nul) {
		in->skipping = 0;
		line[0] = '\0';
	}
	for (n = strlen(line); n > 0 && strchr(" \t\r", line[n - 1]); n--)
		line[n - 1] = '\0';
	return 1;
}

/* The next URL line: 1 with it, 0 if none is ready yet, -1 at the end. */
static int
next_url(struct input *in, char *line)
{
	for (;;) {
		while (input_take(in, line))
			if (line[0] != '\0' && line[0] != '#')
				return 1;
		if (in->eof && in->len == 0)
			return -1;
		if (!input_fill(in))
			return 0;
	}
}

/* The run: URLs read, jobs done and written, on the event loop. */
static struct {
	struct writer	*w;
	struct input	*in;
	char		*line;
	int		 argc;
	char		**argv;
	int		 next;		/* the next of argv */
	int		 more;		/* URLs may come */
	int		 window;	/* jobs held for ordering */
	long long	 start_ms;
} run;

/* Reads URLs while there is room, starts what may start, writes. */
static void
on_idle(void *ctx)
{
	int got;

	(void)ctx;
	while (run.more && queued < run.window) {
		if (run.argc > 0 && (run.more = run.next < run.argc))
			job_new(run.argv[run.next++], 0);
		else if (run.argc == 0 &&
		    (got = next_url(run.in, run.line)) > 0)
			job_new(run.line, run.in->lineno);
		else if (run.argc == 0 && got < 0)
			run.more = 0;
		else
			break;	/* wait for input */
	}
	start_waiting();
	flush_done(run.w);
}

/*
 * This round's descriptors: standard input's while URLs may come and
 * there is room for them (the cache-through watches its own); and how
 * long to wait: until the next job waiting for its turn may start, a
 * tenth of a second for the progress line.
 */
static void
jobs_gather(struct loop *l, void *ctx)
{
	int wake = run.argc == 0 && run.more && queued < run.window;
	long long now = prog_now_ms();
	struct job *j;

	(void)ctx;
	if (wake)
		(void)loop_add_fd(l, STDIN_FILENO, POLLIN);
	if (progress_on())
		loop_due(l, now + 100);
	for (j = queue; j != NULL; j = j->next)
		if (j->state == JOB_WAITING && j->retry_at > now)
			loop_due(l, j->retry_at);
}

/* Writes what is done; the progress line. */
static void
jobs_dispatch(struct loop *l, void *ctx)
{
	(void)l;
	(void)ctx;
	flush_done(run.w);
	/* Over: a last line would only race the next program's. */
	if (run.more || queue != NULL)
		show_progress(run.more, run.start_ms);
}

static int
jobs_left(void *ctx)
{
	(void)ctx;
	return run.more || queue != NULL || through_busy(through);
}

static int
on_poll(struct pollfd *fds, unsigned n, int timeout_ms, void *ctx)
{
	(void)ctx;
	if (upstream == NULL)
		return poll(fds, n, timeout_ms);	/* --offline */
	return upstream_poll(upstream, fds, n, timeout_ms);
}

static void
on_limiter(struct watch *w, short events, void *ctx)
{
	(void)w, (void)events, (void)ctx;
	limiter_collect(limiter);
}

/*
 * --upstream-rate: the upstream's bucket in the cache file's, shared
 * with every relay-serve and relay-fetch on it (gate.h).
 */
static void
start_gate(const char *cache_path)
{
	limiter = limiter_start(cache_path, LIMITER_WAIT_MS);
	(void)loop_watch(loop, limiter_wake_fd(limiter), POLLIN, on_limiter,
	    NULL);
	gate = gate_new(loop, limiter, &opts.upstream_limit,
	    opts.upstream_wait_ms, 0);
}

static void
fetch_all(int argc, char **argv)
{
	static const struct loop_source jobs = { jobs_gather, jobs_dispatch,
	    NULL, jobs_left, NULL };

	run.start_ms = prog_now_ms();
	run.w = xmalloc(sizeof *run.w);
	run.in = xcalloc(1, sizeof *run.in);
	run.line = xmalloc(URL_MAX + 1);
	run.argc = argc;
	run.argv = argv;
	run.more = 1;
	run.window = 4 * concurrency + 16;
	writer_init(run.w, sink_file(stdout));
	loop_add_source(loop, &jobs);
	on_idle(NULL);
	loop_run(loop);
	clear_progress();
	free(run.line);
	free(run.in);
	free(run.w);
}

enum {
	OPT_CREATE_DIRS = OPTIONS_OWN, OPT_MAX_REDIRS, OPT_NO_CACHE, OPT_NO_STORE,
	OPT_OFFLINE, OPT_RECORDS, OPT_RETRY, OPT_UNORDERED, OPT_VERSION,
};

static const struct option long_options[] = {
	OPTIONS_LONG,
	{ "header", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ "include", no_argument, NULL, 'i' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "create-dirs", no_argument, NULL, OPT_CREATE_DIRS },
	{ "location", no_argument, NULL, 'L' },
	{ "max-redirs", required_argument, NULL, OPT_MAX_REDIRS },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "no-store", no_argument, NULL, OPT_NO_STORE },
	{ "offline", no_argument, NULL, OPT_OFFLINE },
	{ "output", required_argument, NULL, 'o' },
	{ "records", no_argument, NULL, OPT_RECORDS },
	{ "retry", required_argument, NULL, OPT_RETRY },
	{ "unordered", no_argument, NULL, OPT_UNORDERED },
	{ "version", no_argument, NULL, OPT_VERSION },
	SHARED_LONG,
	{ "shared-max-object-size", required_argument, NULL,
	    SHARED_OPT_MAX_OBJECT },
	{ NULL, 0, NULL, 0 },
};

static void
parse_options(int argc, char **argv)
{
	const char *why;
	long long v;
	int opt;

	while ((opt = prog_getopt(argc, argv, ":H:hij:Lo:",
	    long_options)) != -1) {
		if (options_parse(&opts, opt, optarg) ||
		    shared_option(&shared_opts, opt, optarg))
			continue;
		switch (opt) {
		case 'H':
			if (headers_add_line(&request_headers, optarg, &why) < 0)
				prog_errx(EXIT_USAGE, "bad header '%s': %s",
				    optarg, why);
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(prog_finish_stdout(0));
		case 'i':
			include_head = 1;
			break;
		case 'o':
			check_template(optarg);
			output_template = optarg;
			break;
		case OPT_CREATE_DIRS:
			create_dirs = 1;
			break;
		case 'L':
			max_redirects = -1;	/* set below */
			break;
		case OPT_MAX_REDIRS:
			if (num_parse(optarg, 1, 100, &v) < 0)
				prog_errx(EXIT_USAGE, "bad --max-redirs '%s': "
				    "expected 1 to 100", optarg);
			redirect_limit = (long)v;
			break;
		case 'j':
			if (num_parse(optarg, 1, 1000, &v) < 0)
				prog_errx(EXIT_USAGE, "bad -j '%s': expected "
				    "1 to 1000", optarg);
			concurrency = (int)v;
			break;
		case OPT_NO_CACHE:
			no_cache = 1;
			break;
		case OPT_NO_STORE:
			no_store = 1;
			break;
		case OPT_OFFLINE:
			offline = 1;
			break;
		case OPT_RECORDS:
			records = 1;
			break;
		case OPT_RETRY:
			if (num_parse(optarg, 0, 20, &max_retries) < 0)
				prog_errx(EXIT_USAGE, "bad --retry '%s': "
				    "expected 0 to 20", optarg);
			break;
		case OPT_UNORDERED:
			unordered = 1;
			break;
		case OPT_VERSION:
			printf("relay-fetch %s\n", VERSION);
			exit(prog_finish_stdout(0));
		default:
			usage();
		}
	}
	if (max_redirects != 0)
		max_redirects = redirect_limit;
	if (records && output_template != NULL)	/* bodies go in records */
		prog_errx(EXIT_USAGE, "--records and -o cannot be used "
		    "together");
}

int
main(int argc, char *argv[])
{
	struct cache_location loc;
	struct redis_target shared_at;
	const char *why;
	char lease_why[512];
	int rc;

	prog_init(argv);
	srandom((unsigned)(prog_now_ms() ^ getpid()));
	parse_options(argc, argv);
	options_finish(&opts);
	argc -= optind;
	argv += optind;
	upstream_base = config_upstream(opts.upstream);
	if ((rc = shared_target(&shared_opts, &shared_at, lease_why,
	    sizeof lease_why)) < 0)
		prog_errx(EX_CONFIG, "bad --shared: %s", lease_why);
	if (config_cache_location(opts.cache, &loc, &why) < 0)
		prog_errx(EX_CONFIG, "cannot place the cache: %s", why);
	/*
	 * --offline only reads, as relay-cache's reading commands do: a
	 * missing or empty file is an empty cache, and nothing is written
	 * to it, not a schema, not the hits it answers.
	 */
	if (!offline) {
		if (loc.is_default)
			config_make_parent(loc.path);
		upstream = upstream_new(&opts.limits);
	}
	loop = loop_new(on_poll, on_idle, NULL);
	through = through_new(loc.path, loop, upstream, &opts);
	reader = through_reader(through);
	if (rc == 0 && !offline)
		through_share(through, &shared_at, &shared_opts);
	if (rc == 0)
		redis_target_free(&shared_at);
	if (opts.upstream_rate != NULL && !offline) {
		start_gate(loc.path);
		through_gate(through, gate);
	}
	free(loc.path);
	fetch_all(argc, argv);
	through_free(through);
	gate_free(gate);
	limiter_stop(limiter);
	loop_free(loop);
	upstream_free(upstream);
	buf_free(&request_headers);
	if (failed == 0)
		return prog_finish_stdout(0);
	if (succeeded > 0)
		return prog_finish_stdout(EXIT_PARTIAL);
	/* 65 says what a retry cannot mend: each URL's entry is damaged */
	return prog_finish_stdout(failed == failed_damaged ? EX_DATAERR :
	    EXIT_ALL_FAILED);
}
