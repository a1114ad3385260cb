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
#include "store/lease.h"
#include "store/spool.h"
#include "store/store.h"
#include "store/writeback.h"
#include "through/options.h"
#include "tier/shared.h"
#include "upstream/upstream.h"

#define EXIT_ALL_FAILED EX_UNAVAILABLE	/* every URL failed */
#define CURL_WHY 256
#define SPOOL_MEMORY 65536	/* per waiting body; the rest goes to a file */
#define SHARED_POLL_MS 50	/* another host has the URL: look this often */
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

/* WAITING to start, PARKED while another request asks for its URL. */
enum job_state { JOB_WAITING, JOB_PARKED, JOB_RUNNING, JOB_DONE };

/*
 * A URL this run asks the upstream for, or whose answer is not in the
 * file yet: one request per URL at a time, here and, with the lease,
 * in every process that uses the cache (relay-serve(8), COALESCING).
 */
struct hold {
	struct hold	*next;
	char		*url;
	struct lease	*lease;		/* NULL: no lease file */
	long long	 seq;		/* 0 while asking; then the write's */
	char		 shared_token[SHARED_TOKEN_LEN];	/* "": none */
};

/* One URL, from its input line to its output. */
struct job {
	struct job		*next;
	long long		 seq;		/* 1, 2, … in input order */
	long long		 line;		/* input line, for messages */
	char			*url;		/* the key: no credentials */
	char			*final_url;	/* -L: the URL that gave the
						   response, if not url */
	char			*authorization;	/* the URL's, as a field */
	enum job_state		 state;
	int			 attempts;
	long long		 retry_at;	/* monotonic ms */
	int			 retry;		/* the attempt asked for another */
	struct store_entry	 cached;	/* valid when cached.url */
	const char		*source;	/* hit, miss, revalidated, stale,
						   shared */
	int			 status;
	struct buf		 head;
	time_t			 request_time;
	time_t			 response_time;
	struct writeback_body	*body;		/* being stored */
	struct buf		 shared_body;	/* …and for the shared tier */
	int			 sharing;	/* shared_body is whole so far */
	struct transfer		*t;		/* while it runs */
	struct hold		*hold;		/* while it asks for its URL */
	struct lease		*waiting;	/* another process's, if parked */
	int			 slot;		/* its lease's pollfd this round */
	struct gate_turn	*turn;		/* waited for, to send */
	long long		 wait_until;	/* parked: monotonic ms */
	long long		 other_host_until;	/* …for another host's */
	int			 on_its_own;	/* waited enough: no more */
	int			 uncacheable;	/* the response may not be stored */
	int			 stored;	/* the response went to the cache */
	struct spool		*spool;		/* the body, until its turn */
	FILE			*file;		/* -o: the body, in… */
	char			*part;		/* …this NAME.part */
	int			 in_place;	/* …or NAME itself: not a file */
	long long		 name_taken_by;	/* -o: the earlier URL's seq */
	int			 direct;	/* the body goes straight out */
	long long		 size;
	int			 lookups;	/* its entry changed: looked up again */
	int			 damaged;	/* its entry is: said once */
	char			*error;
};

static char method_get[] = "GET";	/* the only method fetched */

static struct loop *loop;
static struct limiter *limiter;	/* with --upstream-rate… */
static struct gate *gate;	/* …its turns */
static struct store *reader;	/* lookups and cached bodies */
static struct store *writer;	/* new entries; a second connection… */
static struct writeback *writeback;	/* …written on a thread of its own */
static struct upstream *upstream;
static struct leases *leases;	/* NULL: coalescing in this run only */
static struct shared_options shared_opts = SHARED_DEFAULTS;	/* --shared… */
static struct shared_sync *shared;	/* NULL: no --shared */
static struct hold *holds;
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

static struct hold *
hold_find(const char *url)
{
	struct hold *h;

	for (h = holds; h != NULL; h = h->next)
		if (strcmp(h->url, url) == 0)
			return h;
	return NULL;
}

/* The URL's answer is in the file, or will not be: others may ask. */
static void
hold_release(struct hold *h)
{
	struct hold **p;

	if (h == NULL)
		return;
	for (p = &holds; *p != h; p = &(*p)->next)
		;
	*p = h->next;
	lease_end(h->lease);
	if (h->shared_token[0] != '\0')	/* nothing came of it */
		shared_sync_put(shared, h->url, h->shared_token, NULL, NULL, 0,
		    0);
	free(h->url);
	free(h);
}

/*
 * The job's request is over; its answer went to the writer as seq (0:
 * nothing to wait for). Jobs of this run that wait for it are served
 * as soon as the writer has it.
 */
static void
hold_until(struct job *j, long long seq)
{
	struct job *k;

	if (j->hold == NULL)
		return;
	if (seq == 0) {
		hold_release(j->hold);
	} else {
		j->hold->seq = seq;
		for (k = queue; k != NULL; k = k->next)
			if (k->state == JOB_PARKED && k->waiting == NULL &&
			    strcmp(k->url, j->url) == 0) {
				writeback_flush(writeback);
				break;
			}
	}
	j->hold = NULL;
}

/* Ends the holds whose writes the writer has applied. */
static void
release_applied(void)
{
	long long applied = writeback_applied(writeback);
	struct hold *h, *next;

	for (h = holds; h != NULL; h = next) {
		next = h->next;
		if (h->seq > 0 && h->seq <= applied)
			hold_release(h);
	}
}

static void
job_free(struct job *j)
{
	if (j->turn != NULL)
		gate_cancel(j->turn);
	hold_release(j->hold);
	lease_end(j->waiting);
	store_entry_free(&j->cached);
	writeback_abort(writeback, j->body);
	spool_free(j->spool);
	if (j->file != NULL)
		fclose(j->file);
	if (j->part != NULL && !j->in_place)
		unlink(j->part);	/* not renamed: the URL failed */
	free(j->part);
	buf_free(&j->shared_body);
	buf_free(&j->head);
	free(j->url);
	free(j->final_url);
	free(j->authorization);
	free(j->error);
	free(j);
}

/*
 * A damaged entry (relay-cache(5)): one relay never wrote, or whose
 * body is not whole. It is never used: the URL is asked for as if it
 * were not stored, and its answer replaces the entry; with --offline
 * the URL fails, saying why.
 */
static void
damaged_entry(struct job *j)
{
	store_entry_free(&j->cached);
	if (offline) {
		j->damaged = 1;
		job_fail(j, "%s", store_error(reader));
	} else if (!j->damaged) {
		j->damaged = 1;
		clear_progress();
		prog_warnx("%s; asking the upstream instead",
		    store_error(reader));
	}
}

/*
 * Finds the stored response for the job's URL, its body whole; returns
 * 1 if found. A damaged one is not (damaged_entry).
 */
static int
lookup(struct job *j)
{
	int found = cache_lookup(reader, j->url, NULL,
	    buf_cstr(&request_headers), &j->cached);

	if (found > 0 && (found = store_body_check(reader, &j->cached)) == 0)
		return 1;
	if (found == STORE_DAMAGED)
		damaged_entry(j);
	else if (found < 0)
		prog_errx(store_status(reader), "%s", store_error(reader));
	return 0;
}

/*
 * The job's stored response answered it: counted, unless --offline,
 * with the round's other hits in one write (flush_hits).
 */
static struct {
	long long	*ids;
	size_t		 len, cap;
} hits;

static void
count_hit(const struct job *j)
{
	if (writer == NULL)
		return;
	if (hits.len == hits.cap) {
		hits.cap = hits.cap ? hits.cap * 2 : 64;
		hits.ids = xrealloc(hits.ids, hits.cap * sizeof *hits.ids);
	}
	hits.ids[hits.len++] = j->cached.id;
}

/* The round's hits to the writer, as one operation. */
static void
flush_hits(void)
{
	if (hits.len == 0)
		return;
	writeback_hits(writeback, hits.ids, hits.len, time(NULL));
	hits.len = 0;
}

/* Answers from the cache if the entry may be used; returns 1 if so. */
static int
answer_from_cache(struct job *j)
{
	struct policy_request req;
	long long age;
	int found;

	if ((found = lookup(j)) == 0)
		return 0;
	policy_request_parse(buf_cstr(&request_headers), &req);
	req.no_cache |= no_cache;
	age = cache_age(&j->cached, time(NULL));
	if (offline || policy_use(&req, j->cached.headers, age,
	    j->cached.lifetime) == POLICY_FRESH) {
		j->source = age < j->cached.lifetime ? "hit" : "stale";
		j->status = j->cached.status;
		j->state = JOB_DONE;
		count_hit(j);
		return 1;
	}
	return 0;
}

static int on_head(void *, int, const char *);
static int on_body(void *, const void *, size_t);
static void on_done(void *, const char *);
static int ask_shared(struct job *);

static void send_now(struct job *);

/*
 * The upstream's rate said: send now, or not within --upstream-wait;
 * then the job waits its turn again, when the rate says, without
 * counting it as an attempt.
 */
static void
on_turn(void *ctx, int go, long long retry_after_s)
{
	struct job *j = ctx;

	j->turn = NULL;
	running--;
	if (go) {
		send_now(j);
		return;
	}
	j->state = JOB_WAITING;
	j->retry_at = prog_now_ms() + (retry_after_s > 0 ?
	    retry_after_s : 1) * 1000;
}

/* Sends the request once the upstream's rate allows it (--upstream-rate). */
static void
send_request(struct job *j)
{
	if (gate == NULL) {
		send_now(j);
		return;
	}
	j->state = JOB_RUNNING;	/* its turn takes a transfer's place */
	running++;
	gate_ask(gate, j->url, on_turn, j, &j->turn);	/* j may have gone */
}

/* Sends the request, conditional when a stored response has validators. */
static void
send_now(struct job *j)
{
	struct buf headers = BUF_INIT;
	struct header h;
	struct upstream_request req = {
		.url = j->url, .ctx = j,
		.on_head = on_head, .on_body = on_body, .on_done = on_done,
	};

	buf_adds(&headers, buf_cstr(&request_headers));
	if (j->authorization != NULL && !headers_get(buf_cstr(&request_headers),
	    "authorization", &h))
		buf_adds(&headers, j->authorization);
	policy_add_capability(&headers);	/* as relay-serve's requests */
	if (j->cached.url != NULL && j->cached.etag != NULL)
		buf_printf(&headers, "If-None-Match: %s\r\n", j->cached.etag);
	else if (j->cached.url != NULL && j->cached.last_modified != NULL)
		buf_printf(&headers, "If-Modified-Since: %s\r\n",
		    j->cached.last_modified);
	req.headers = buf_cstr(&headers);
	j->attempts++;
	j->retry = 0;
	j->request_time = time(NULL);
	j->state = JOB_RUNNING;
	running++;
	req.max_redirects = max_redirects;
	j->t = upstream_add(upstream, &req);
	buf_free(&headers);
}

static int
parked(void)
{
	struct job *j;

	for (j = queue; j != NULL; j = j->next)
		if (j->state == JOB_PARKED)
			return 1;
	return 0;
}

static void
park(struct job *j, struct lease *l)
{
	j->state = JOB_PARKED;
	j->waiting = l;
	j->retry_at = prog_now_ms() + LEASE_RECHECK_MS;
	j->wait_until = prog_now_ms() + opts.collapse_ms;
}

/*
 * Whether the job may ask the upstream: no other request for its URL
 * is under way, here or in another process. Else it is parked until
 * that one is done, then looks in the cache again.
 */
static int
claim(struct job *j)
{
	struct lease *l = NULL;

	if (j->on_its_own || store_uncacheable(reader, j->url,
	    time(NULL)) == 1)
		return 1;	/* no use waiting: it will not be stored */
	if (hold_find(j->url) != NULL) {
		park(j, NULL);
		return 0;
	}
	if (leases != NULL && !lease_held(l = lease_take(leases, j->url))) {
		park(j, l);
		return 0;
	}
	j->hold = xcalloc(1, sizeof *j->hold);
	j->hold->url = xstrdup(j->url);
	j->hold->lease = l;
	j->hold->next = holds;
	holds = j->hold;
	return 1;
}

static void
start(struct job *j)
{
	if (j->cached.url != NULL)
		store_entry_free(&j->cached);	/* looked up before parking */
	if (answer_from_cache(j) || j->state == JOB_DONE)
		return;		/* answered, or failed on a damaged entry */
	if (offline) {
		job_fail(j, "'%s' is not in the cache", j->url);
		return;
	}
	if (claim(j) && (j->hold == NULL || shared == NULL || ask_shared(j)))
		send_request(j);
}

/*
 * A parked job goes back to waiting when the request it waited for is
 * done (its lease's FIFO hung up, or the lock is free) or when it has
 * waited collapse_ms: then it asks on its own.
 */
static void
unpark(struct job *j, short revents, long long now)
{
	if (now >= j->wait_until)
		j->on_its_own = 1;
	else if (j->other_host_until > 0) {
		if (now < j->retry_at)
			return;
	} else if (j->waiting == NULL ? hold_find(j->url) != NULL :
	    revents == 0 && (now < j->retry_at || lease_busy(j->waiting))) {
		if (j->waiting != NULL && now >= j->retry_at)
			j->retry_at = now + LEASE_RECHECK_MS;
		return;
	}
	lease_end(j->waiting);
	j->waiting = NULL;
	j->state = JOB_WAITING;
}

/*
 * Whether the job's stored response may stand in for a failed transfer
 * at this age (RFC 5861 stale-if-error, or --stale-if-error). As the
 * age only grows, a response that may not now never may later.
 */
static int
may_serve_stale(const struct job *j, long long age)
{
	const struct store_entry *c = &j->cached;

	return c->url != NULL && policy_stale_if_error(c->headers, age,
	    c->lifetime, opts.stale_if_error);
}

/*
 * Forgets what a transfer that failed received: the body being stored,
 * the one held for the output (its spool, or its -o part file), and
 * the head and the URL it came from, which are not the stored
 * response's. Used before a retry and before the stored response
 * stands in.
 */
static void
drop_received(struct job *j)
{
	writeback_abort(writeback, j->body);
	j->body = NULL;
	buf_free(&j->shared_body);
	j->sharing = 0;
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

/*
 * Exponential backoff, half of it random so that clients that failed
 * together do not retry together; or when the server said.
 */
static void
schedule_retry(struct job *j, long long after_ms)
{
	long long base = 250LL << (j->attempts < 8 ? j->attempts : 8);

	if (after_ms < 0)
		after_ms = base / 2 + random() % (base / 2 + 1);
	j->retry_at = prog_now_ms() + after_ms;
	j->state = JOB_WAITING;
	drop_received(j);
}

static int
retryable_status(int status)
{
	return status == 429 || status == 502 || status == 503 ||
	    status == 504;
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
 * The key the response received is stored under: the URL that gave
 * it (RFC 9111 section 2), the last one redirects led to with -L. The
 * redirects themselves are not stored.
 */
static const char *
key_of(const struct job *j)
{
	return j->final_url != NULL ? j->final_url : j->url;
}

/*
 * The body is stored as it comes (a redirected one under its own URL,
 * and not in the shared tier, where the job's lease is the first
 * URL's), and goes to the output straight away when it is next there,
 * else to a file of -o or a spool. A body the stored response may yet
 * stand in for, should its transfer fail (serve_stale), is spooled
 * until the transfer is over: the output is then one or the other,
 * never bytes of both.
 */
static void
begin_body(struct job *j)
{
	int ok = j->status >= 200 && j->status < 300;

	if (!no_store && cache_unstorable(&opts.rules, j->status,
	    buf_cstr(&request_headers), buf_cstr(&j->head)) == NULL) {
		j->body = writeback_body_new(key_of(j));
		j->sharing = shared != NULL && j->final_url == NULL;
	} else
		j->uncacheable = !no_store;
	if (!ok || records || may_serve_stale(j, cache_age(&j->cached,
	    time(NULL)))) {
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

static int failed_here(struct job *, struct buf *);

/*
 * -L: notes the URL redirects led to, when another, as the response's
 * key; -1 with the reason if it cannot be one (over URL_MAX bytes).
 */
static int
note_final_url(struct job *j)
{
	struct buf why = BUF_INIT;
	const char *reason;

	free(j->final_url);
	j->final_url = NULL;
	if (j->t == NULL || upstream_redirects(j->t) == 0)
		return 0;
	j->final_url = url_normalize(upstream_url(j->t), &reason);
	if (j->final_url == NULL) {
		buf_printf(&why, "redirected to an invalid URL: %s", reason);
		return failed_here(j, &why);
	}
	if (strcmp(j->final_url, j->url) == 0) {
		free(j->final_url);	/* back where it started */
		j->final_url = NULL;
	}
	return 0;
}

static int
on_head(void *ctx, int status, const char *headers)
{
	struct job *j = ctx;

	j->status = status;
	j->response_time = time(NULL);
	buf_reset(&j->head);
	buf_adds(&j->head, headers);
	if (gate != NULL)	/* 429 or 503 with Retry-After: every process waits */
		(void)gate_answered(gate, j->url, status, headers);
	if (note_final_url(j) < 0)
		return -1;
	if (status == 304 && j->cached.url != NULL && j->final_url != NULL) {
		/* another URL's 304: the stored body is not confirmed */
		store_entry_free(&j->cached);
		j->retry = 1;
		schedule_retry(j, 0);
		return -1;
	}
	if (status == 304 && j->cached.url != NULL)
		return 0;	/* revalidated: the stored body stands */
	if (retryable_status(status) && j->attempts <= max_retries) {
		j->retry = 1;
		schedule_retry(j, http_retry_after_ms(headers, 3600));
		return -1;
	}
	if (status >= 500 && j->cached.url != NULL)
		return -1;	/* keep the stored response (on_done) */
	begin_body(j);
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
	if (j->body != NULL)
		writeback_write(writeback, j->body, p, n);
	if (j->sharing && j->shared_body.len + n >
	    (size_t)shared_sync_max_object(shared)) {
		j->sharing = 0;		/* too large to share */
		buf_free(&j->shared_body);
	} else if (j->sharing)
		buf_add(&j->shared_body, p, n);
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

/* The response the job received, as the cache sees it. */
static struct cache_response
response_of(const struct job *j)
{
	return (struct cache_response){
		.url = key_of(j), .status = j->status,
		.headers = buf_str(&j->head),
		.request_headers = buf_cstr(&request_headers),
		.request_time = j->request_time,
		.response_time = j->response_time,
	};
}

/*
 * What the job has for the shared tier, if anything (ttl_s 0: nothing),
 * with the end of the hold's lease there and the news for every host.
 */
static void
share(struct job *j, const struct cache_response *r, const struct buf *body,
    long long ttl_s)
{
	if (shared == NULL)
		return;
	shared_sync_put(shared, j->url, j->hold != NULL ?
	    j->hold->shared_token : NULL, r, body->data, body->len, ttl_s);
	if (j->hold != NULL)
		j->hold->shared_token[0] = '\0';
}

static void
commit_response(struct job *j)
{
	struct cache_response r = response_of(j);

	share(j, &r, &j->shared_body, j->sharing ? shared_ttl(&r,
	    &opts.rules) : 0);
	buf_free(&j->shared_body);
	j->sharing = 0;
	hold_until(j, writeback_commit(writeback, j->body, &r));
	j->body = NULL;
	j->stored = 1;
}

/*
 * A local miss that another host stored in the shared tier: taken as
 * if fetched, with the times it was received with, so that its age
 * is what it was there. Returns whether it was.
 */
static int
answer_from_shared(struct job *j, const struct shared_entry *e)
{
	if (e->r.status >= 500 || retryable_status(e->r.status) ||
	    (j->cached.url != NULL && e->r.response_time <=
	    j->cached.response_time) || cache_unstorable(&opts.rules,
	    e->r.status, buf_cstr(&request_headers), e->r.headers) != NULL)
		return 0;	/* ours is as new, or it is not for here */
	j->attempts++;
	j->state = JOB_RUNNING;
	running++;
	if (on_head(j, e->r.status, e->r.headers) == 0) {
		j->sharing = 0;		/* it is there already */
		if (e->body_len > 0)
			(void)on_body(j, e->body, e->body_len);
	}
	j->request_time = e->r.request_time;
	j->response_time = e->r.response_time;
	on_done(j, NULL);
	if (j->source != NULL && strcmp(j->source, "miss") == 0)
		j->source = "shared";
	return 1;
}

/*
 * The shared tier, for a job that holds its URL here: 1 if this host
 * is to ask the upstream (the URL's lease there is the hold's, or the
 * tier is down); 0 if the job was answered from another host's entry,
 * or is parked while another host asks, looking in the tier every
 * SHARED_POLL_MS, collapse_ms at most. An entry no newer than the
 * copy here is no use: the lease is asked for alone then.
 */
static int
ask_shared(struct job *j)
{
	struct shared_found f;
	enum shared_found_kind kind;
	long long now = prog_now_ms();
	int answered;

	kind = shared_sync_find(shared, j->url, 0, 2 * opts.collapse_ms,
	    j->hold->shared_token, &f);
	if (kind == SHARED_ENTRY) {
		answered = answer_from_shared(j, &f.entry);
		shared_entry_free(&f.entry);
		if (answered)
			return 0;
		kind = shared_sync_find(shared, j->url, 1,
		    2 * opts.collapse_ms, j->hold->shared_token, &f);
	}
	if (kind != SHARED_BUSY)
		return 1;
	hold_release(j->hold);
	j->hold = NULL;
	if (j->other_host_until == 0)
		j->other_host_until = now + opts.collapse_ms;
	j->state = JOB_PARKED;
	j->retry_at = now + SHARED_POLL_MS;
	j->wait_until = j->other_host_until;
	return 0;
}

/* A 304 refreshes the shared tier's copy too: other hosts take it. */
static void
share_refreshed(struct job *j)
{
	struct cache_response r = cache_response_of(&j->cached,
	    buf_cstr(&request_headers));
	struct buf body = BUF_INIT;

	if (shared != NULL && j->cached.size <= shared_sync_max_object(shared)
	    && store_body_read(reader, &j->cached, &body) == 0)
		share(j, &r, &body, shared_ttl(&r, &opts.rules));
	buf_free(&body);	/* else the lease ends with the hold */
}

/* A 304: the stored entry takes the new fields and freshness. */
static void
refresh_cached(struct job *j)
{
	struct cache_response r = response_of(j);

	/* what the 304 says may forbid keeping it (cache_revalidate) */
	if (cache_revalidate(&j->cached, &r, &opts.rules) != NULL) {
		hold_until(j, writeback_remove(writeback, j->cached.url));
	} else {
		share_refreshed(j);
		hold_until(j, writeback_refresh(writeback, &j->cached));
	}
	count_hit(j);
	j->status = j->cached.status;
	j->source = "revalidated";
}

/*
 * After a failed revalidation: the stale entry, if the rules allow;
 * what the failed transfer received is dropped, so that the output is
 * the stored response and nothing else. A body that may give way to it
 * is never streamed (begin_body), and on_done does not ask for one that
 * was: none of it is out already.
 */
static int
serve_stale(struct job *j, const char *why)
{
	struct store_entry *c = &j->cached;
	long long age = cache_age(c, time(NULL));

	if (!may_serve_stale(j, age))
		return 0;
	drop_received(j);
	clear_progress();
	prog_warnx("%s: %s; serving the cached response, %lld s old",
	    j->url, why, age);
	count_hit(j);
	j->source = "stale";
	j->status = c->status;
	return 1;
}

static void
on_done(void *ctx, const char *error)
{
	struct job *j = ctx;
	char why[CURL_WHY];
	int transport = error != NULL && strcmp(error, "aborted") != 0;

	running--;
	j->t = NULL;
	if (j->retry)
		return;		/* schedule_retry has set it waiting */
	j->state = JOB_DONE;
	if (j->error != NULL) {	/* write_failed, or open_part */
		writeback_abort(writeback, j->body);
		j->body = NULL;
		hold_until(j, 0);
		return;
	}
	if (error == NULL && j->status == 304 && j->cached.url != NULL) {
		refresh_cached(j);
		return;
	}
	if (error == NULL && j->status < 500) {
		j->source = "miss";
		if (j->body != NULL)
			commit_response(j);
		else if (j->uncacheable && j->hold != NULL)
			hold_until(j, writeback_mark_uncacheable(writeback,
			    j->url, time(NULL) + STORE_UNCACHEABLE_SECS));
		hold_until(j, 0);
		return;
	}
	writeback_abort(writeback, j->body);
	j->body = NULL;
	if (transport)
		snprintf(why, sizeof why, "%s", error);
	else
		snprintf(why, sizeof why, "HTTP %d %s", j->status,
		    http_reason(j->status));
	if (transport && j->attempts <= max_retries && !j->direct &&
	    j->size == 0) {
		j->retry = 1;
		schedule_retry(j, -1);
		return;
	}
	hold_until(j, 0);	/* nothing stored: the others ask themselves */
	if (!j->direct && serve_stale(j, why))
		return;
	if (error == NULL) {
		j->source = "miss";	/* a 5xx response, relayed as it is */
		return;
	}
	job_fail(j, "%s", why);
}

static int
spool_open(void *ctx, struct source *out)
{
	*out = spool_source(ctx);
	return 0;
}

static void
spool_close(void *ctx)
{
	(void)ctx;
}

static void
write_record(struct job *j, struct writer *w)
{
	const struct store_entry *c = &j->cached;
	struct store_body_ref ref = { reader, c, NULL };
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
		body = (struct record_source){ spool_open, spool_close,
			j->spool };
		headers_add_end_to_end(&rec.headers, buf_cstr(&j->head));
		rec.age = policy_current_age(&(struct policy_times){
		    e.request_time, e.response_time, e.date, e.age },
		    time(NULL));
		rec.ttl = e.lifetime - rec.age;
		rec.has = j->stored ? HAS_TTL : 0;	/* else no freshness */
	} else if (j->error == NULL) {
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

/* Reports the cache writes that failed, on lines of their own. */
static void
report_writeback(char *warnings)
{
	char *line, *next;

	for (line = warnings; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		clear_progress();
		prog_warnx("%s", line);
	}
	free(warnings);
}

/* Whether the job's output reads its body from the cache file. */
static int
reads_cached(const struct job *j)
{
	return j->error == NULL && j->cached.url != NULL && j->spool == NULL &&
	    !j->direct && j->part == NULL;
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
	buf_reset(&j->head);
	free(j->final_url);
	j->final_url = NULL;
	j->state = JOB_WAITING;
	j->attempts = 0;
	j->retry_at = 0;
	j->source = NULL;
	j->status = 0;
	j->size = 0;
	j->uncacheable = 0;
	j->stored = 0;
	j->other_host_until = 0;
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

	report_writeback(writeback_warnings(writeback));
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

/*
 * Starts waiting jobs while there is room, in input order. Their cache
 * lookups share one read transaction: one lock and snapshot a round
 * rather than one a URL.
 */
static void
start_waiting(void)
{
	long long now = prog_now_ms();
	struct job *j;

	store_read_begin(reader);
	for (j = queue; j != NULL && running < concurrency; j = j->next)
		if (j->state == JOB_WAITING && j->retry_at <= now) {
			if (j->attempts == 0)
				start(j);
			else
				send_request(j);
		}
	store_read_end(reader);
}

/*
 * On a terminal, one line on stderr: URLs done of those read so far
 * ("+" while more may come), failures, bytes and rate. At most ten
 * updates a second; nothing when stderr is not a terminal.
 */
static void
show_progress(int more, long long start_ms)
{
	static long long last_ms;
	static int tty = -1;
	long long now = prog_now_ms();
	char total[16], rate[16];

	if (tty == -1)	/* not over bodies written to the same terminal */
		tty = isatty(STDERR_FILENO) && !isatty(STDOUT_FILENO);
	if (!tty || now - last_ms < 100)
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
	flush_hits();
}

/*
 * This round's descriptors: the writer's, standard input's while URLs
 * may come and there is room for them, the leases parked jobs wait on;
 * and how long to wait: only retries waiting, look every 10 ms.
 */
static void
jobs_gather(struct loop *l, void *ctx)
{
	int wake = run.argc == 0 && run.more && queued < run.window;
	struct job *j;

	(void)ctx;
	(void)loop_add_fd(l, writeback_wake_fd(writeback), POLLIN);
	if (wake)
		(void)loop_add_fd(l, STDIN_FILENO, POLLIN);
	for (j = queue; j != NULL; j = j->next) {
		j->slot = -1;
		if (j->state == JOB_PARKED && j->waiting != NULL &&
		    lease_fd(j->waiting) >= 0)
			j->slot = (int)loop_add_fd(l, lease_fd(j->waiting),
			    POLLIN);
	}
	loop_due(l, prog_now_ms() + (parked() ? SHARED_POLL_MS :
	    running > 0 || wake || holds != NULL ? 100 : 10));
}

/* What the writer applied, and parked jobs whose wait is over. */
static void
jobs_dispatch(struct loop *l, void *ctx)
{
	long long now;
	struct job *j;
	short ev;

	(void)ctx;
	release_applied();
	now = prog_now_ms();
	for (j = queue; j != NULL; j = j->next)
		if (j->slot >= 0) {
			ev = loop_revents(l, (unsigned)j->slot);
			j->slot = -1;
			unpark(j, ev, now);
		}
	for (j = queue; j != NULL; j = j->next)
		if (j->state == JOB_PARKED)
			unpark(j, 0, now);
	flush_done(run.w);
	/* Over: a last line would only race the next program's. */
	if (run.more || queue != NULL)
		show_progress(run.more, run.start_ms);
}

static int
jobs_left(void *ctx)
{
	(void)ctx;
	return run.more || queue != NULL;
}

static int
on_poll(struct pollfd *fds, unsigned n, int timeout_ms, void *ctx)
{
	(void)ctx;
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
	if (rc == 0 && !offline)
		shared = shared_sync_open(&shared_at, &shared_opts,
		    "relay-fetch", SHARED_SYNC_TOLERANT);
	else if (rc == 0)
		redis_target_free(&shared_at);
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
		writer = store_open_or_exit(loc.path, STORE_WRITE);
		store_set_max_size(writer, opts.max_size);
	}
	reader = store_open_or_exit(loc.path, STORE_READ);
	if (!offline && (leases = leases_open(loc.path, lease_why,
	    sizeof lease_why)) == NULL)
		prog_warnx("duplicate requests are merged in this run only: %s",
		    lease_why);
	writeback = writeback_start(writer, &opts.rules);
	upstream = upstream_new(&opts.limits);
	loop = loop_new(on_poll, on_idle, NULL);
	if (opts.upstream_rate != NULL && !offline)
		start_gate(loc.path);
	free(loc.path);
	fetch_all(argc, argv);
	flush_hits();
	free(hits.ids);
	gate_free(gate);
	limiter_stop(limiter);
	loop_free(loop);
	upstream_free(upstream);
	report_writeback(writeback_finish(writeback));
	while (holds != NULL)
		hold_release(holds);
	leases_close(leases);
	shared_sync_close(shared);
	store_close(reader);
	store_close(writer);
	buf_free(&request_headers);
	if (failed == 0)
		return prog_finish_stdout(0);
	if (succeeded > 0)
		return prog_finish_stdout(EXIT_PARTIAL);
	/* 65 says what a retry cannot mend: each URL's entry is damaged */
	return prog_finish_stdout(failed == failed_damaged ? EX_DATAERR :
	    EXIT_ALL_FAILED);
}
