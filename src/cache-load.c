/*
 * relay-cache's entries made here (cache-load.h): put's, and load's,
 * from records on standard input.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/record.h"
#include "http/url.h"
#include "policy/policy.h"
#include "store/cache.h"
#include "store/store.h"

#include "cache-load.h"

/* An entry received now, owning its strings; the headers are filtered. */
void
new_entry(struct store_entry *e, char *url, const char *method, int status,
    const char *headers, time_t now)
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
void
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

struct load {
	struct store		*s;
	struct store_writer	*w;
	struct sink		 sink;		/* into w */
	struct sink		 absorb;	/* what the record's body goes to */
	int			 failed;	/* the sink did: the rest is dropped */
	time_t			 now;		/* what received means */
	int			 store_set_cookie;
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
	    l->store_set_cookie };
	const char *headers = buf_str(&rec->headers);
	const char *why = cache_unstorable(&rules, status, "", headers);
	struct header h;

	if (why == NULL)
		return NULL;
	snprintf(l->why, sizeof l->why, "not stored, as relay-fetch would "
	    "not store it: %s%s", why, !l->store_set_cookie &&
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
	    buf_cstr(&rec->headers), l->now);
	if (store_entry_invalid(&e, l->why, sizeof l->why) != NULL ||
	    load_unstorable(l, rec, status) != NULL) {
		store_entry_free(&e);
		return 1;
	}
	policy_times_from(e.headers, l->now, l->now, &t);
	if (rec->has & HAS_AGE)
		t.age = rec->age;
	if (rec->has & HAS_TTL)
		lifetime = policy_current_age(&t, l->now) + rec->ttl;
	derive_entry(&e, &t, lifetime < 0 && (rec->has & HAS_TTL) ? 0 :
	    lifetime);
	rc = store_writer_commit(l->w, &e);
	l->w = NULL;
	store_entry_free(&e);
	return rc < 0 ? -1 : 0;
}

/*
 * relay-cache load, into s: each record stored, or named by its line and left
 * out (1); one that does not fit (a full disk: 74) too, since a
 * smaller one may; any other failure of the file ends it there.
 */
int
cache_load(struct store *s, time_t now, int store_set_cookie)
{
	struct load l = { .s = s, .now = now,
		.store_set_cookie = store_set_cookie };
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
	return unstored ? EX_IOERR : status;
}
