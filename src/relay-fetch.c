/*
 * relay-fetch: fetch URLs through the shared cache, many at once.
 */
#include <errno.h>
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
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/record.h"
#include "http/url.h"
#include "net/loop.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/spool.h"
#include "store/store.h"
#include "through/gate.h"
#include "through/limiter.h"
#include "through/through.h"
#include "tier/shared.h"
#include "upstream/upstream.h"

#include "fetch-input.h"
#include "fetch-names.h"
#include "fetch-options.h"
#include "fetch-progress.h"

#define EXIT_ALL_FAILED EX_UNAVAILABLE	/* every URL failed */
#define SPOOL_MEMORY 65536	/* per waiting body; the rest goes to a file */
#define LOOKUPS_MAX 4		/* starts over of a URL whose entry changed */

static struct fetch_options o = FETCH_OPTIONS_INIT;
static const char *upstream_base;	/* --upstream, or its default */

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
static struct job *queue, **queue_tail = &queue;
static int queued, running;
static long long started;		/* jobs created so far */
static int succeeded, failed;
static int failed_damaged;		/* of failed: on a damaged entry */
static long long bytes_in;		/* received, for the progress line */

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
 * An absolute URL, or a path resolved against the upstream, as a key.
 * The credentials an absolute URL carries are the request's own (a
 * field of the job); a path's are --upstream's, which the cache-through
 * sends to that origin as relay-serve does, as the relay's own.
 */
static char *
resolve(struct job *j, const char *text, const char **why)
{
	char *full = text[0] == '/' ? url_join(upstream_base, text) :
	    xstrdup(text), *url = url_normalize(full, why);

	if (url != NULL && text[0] != '/')
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
		progress_clear();
		j->url = url_redacted(text);
		if (line > 0)
			prog_warnx("line %lld: invalid URL '%s': %s", line,
			    j->url, why);
		else
			prog_warnx("invalid URL '%s': %s", j->url, why);
		j->error = xstrdup("invalid URL");
		j->state = JOB_DONE;
	} else if (o.output_template != NULL)
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
 * Hands the job to the cache-through: -H's fields, with the URL's own
 * credentials unless -H has some, go upstream, choose the variant and
 * say whether the response may be stored (RFC 9111 section 3.5: not
 * one to a request with credentials, unless it says it may be).
 */
static void
start(struct job *j)
{
	const char *fields = buf_cstr(&o.headers);
	struct buf forward = BUF_INIT;
	struct header h;
	struct through_request req = {
		.key = j->url, .method = "GET", .fields = fields,
		.retries = (int)o.retries, .max_redirects = o.max_redirects,
		.unstored_5xx = 1,
	};

	buf_adds(&forward, fields);
	if (j->authorization != NULL && !headers_get(fields, "authorization",
	    &h))
		buf_adds(&forward, j->authorization);
	req.forward = req.fields = buf_cstr(&forward);
	policy_request_parse(fields, &req.directives);
	req.directives.no_cache |= o.no_cache;
	req.directives.no_store |= o.no_store;
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

static int open_part(struct job *);

/* -i: the status line and fields the job received, to out. */
static void
write_head(struct job *j, FILE *out)
{
	if (o.include_head)
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

	if (!ok || o.records || may_stand_in) {
		j->spool = spool_new(SPOOL_MEMORY);
	} else if (o.output_template != NULL) {
		/* a failure stops the transfer in on_body */
		if (open_part(j) == 0)
			write_head(j, j->file);
	} else if (!o.unordered && queue == j) {
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

	if (j->error != NULL || (j->direct && (j->size > 0 || o.include_head)))
		return -1;	/* ours, or some of it is out */
	j->direct = 0;
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
		.request_headers = buf_cstr(&o.headers),
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
		progress_clear();
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
		cache_entry(&r, &o.relay.rules, buf_cstr(&j->head), &e);
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

	if (o.include_head)
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

/*
 * Names are claimed as URLs are read, so that the earlier URL in the
 * input keeps a name whichever answer comes first.
 */
static long long
claim_output_name(const struct job *j)
{
	char *name = output_name(o.output_template, j->seq, j->url);
	long long other = claim_name(name, j->seq);

	free(name);
	return other;
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
	char *name = output_name(o.output_template, j->seq, j->url);
	struct buf part = BUF_INIT, why = BUF_INIT;
	struct stat st;

	if (j->name_taken_by != 0) {
		buf_printf(&why, "-o names '%s' for URL %lld already", name,
		    j->name_taken_by);
	} else {
		if (o.create_dirs)
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
	char *name = output_name(o.output_template, j->seq, j->url);
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

	if (ok && o.output_template != NULL && !o.records && write_file(j) < 0)
		ok = 0;
	progress_clear();
	if (j->error != NULL && o.offline && j->damaged)
		prog_warnx("%s", j->error);	/* the store's: it names it */
	else if (j->error != NULL && strcmp(j->error, "invalid URL") != 0)
		prog_warnx("%s: %s", j->url, j->error);
	else if (j->error == NULL && !ok)
		prog_warnx("%s: HTTP %d %s", j->url, j->status,
		    http_reason(j->status));
	if (o.records)
		write_record(j, w);
	else if (ok && o.output_template != NULL)
		;	/* written above */
	else if (ok && !j->direct && (j->spool != NULL ?
	    write_spooled(j, stdout) : write_cached(j, stdout)) < 0)
		prog_err(EX_IOERR, "%s: cannot copy the body", j->url);
	if (ok)
		succeeded++;
	else
		failed++;
	if (!ok && o.offline && j->damaged)
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
			if (!o.unordered)
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

	for (j = queue; j != NULL && running < o.jobs; j = j->next)
		if (j->state == JOB_WAITING && j->retry_at <= now)
			start(j);
}

/* The run: URLs read, jobs done and written, on the event loop. */
static struct {
	struct writer	*w;
	struct url_input *in;
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
		    (got = url_input_next(run.in, run.line)) > 0)
			job_new(run.line, run.in->lineno);
		else if (run.argc == 0 && got < 0)
			run.more = 0;
		else
			break;	/* wait for input */
	}
	failed += run.in->refused;
	run.in->refused = 0;
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
		progress_show(&(struct progress){ succeeded + failed, started,
		    failed, run.more, bytes_in, run.start_ms });
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
	gate = gate_new(loop, limiter, &o.relay.upstream_limit,
	    o.relay.upstream_wait_ms, 0);
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
	run.window = 4 * o.jobs + 16;
	writer_init(run.w, sink_file(stdout));
	loop_add_source(loop, &jobs);
	on_idle(NULL);
	loop_run(loop);
	progress_clear();
	free(run.line);
	free(run.in);
	free(run.w);
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
	fetch_options_parse(&o, argc, argv);
	argc -= optind;
	argv += optind;
	upstream_base = config_upstream(o.relay.upstream);
	if ((rc = shared_target(&o.shared, &shared_at, lease_why,
	    sizeof lease_why)) < 0)
		prog_errx(EX_CONFIG, "bad --shared: %s", lease_why);
	if (config_cache_location(o.relay.cache, &loc, &why) < 0)
		prog_errx(EX_CONFIG, "cannot place the cache: %s", why);
	/*
	 * --offline only reads, as relay-cache's reading commands do: a
	 * missing or empty file is an empty cache, and nothing is written
	 * to it, not a schema, not the hits it answers.
	 */
	if (!o.offline) {
		if (loc.is_default)
			config_make_parent(loc.path);
		upstream = upstream_new(&o.relay.limits);
	}
	loop = loop_new(on_poll, on_idle, NULL);
	through = through_new(loc.path, loop, upstream, &o.relay);
	reader = through_reader(through);
	if (rc == 0 && !o.offline)
		through_share(through, &shared_at, &o.shared);
	if (rc == 0)
		redis_target_free(&shared_at);
	if (o.relay.upstream_rate != NULL && !o.offline) {
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
	buf_free(&o.headers);
	if (failed == 0)
		return prog_finish_stdout(0);
	if (succeeded > 0)
		return prog_finish_stdout(EXIT_PARTIAL);
	/* 65 says what a retry cannot mend: each URL's entry is damaged */
	return prog_finish_stdout(failed == failed_damaged ? EX_DATAERR :
	    EXIT_ALL_FAILED);
}
