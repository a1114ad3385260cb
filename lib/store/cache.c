/*
 * The cache: the RFC 9111 rules (policy) applied to the cache file
 * (store), as relay-fetch and relay-serve both use them.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/sha1.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/record.h"
#include "policy/policy.h"
#include "store/cache.h"

static char method_get[] = "GET";
static char no_variant[] = "";

/*
 * The secondary key of a response for a request (RFC 9111 section
 * 4.1): the request's values of the fields its Vary names, after, when
 * the request has a scope, a line for it. A scope is the fields relay
 * itself adds to a request that the client never sent (a merge route's
 * credentials): what they unlock is kept apart, and answers only the
 * requests that carry the same (RFC 9111 section 3.5). Its line is the
 * scope's digest, so that no secret lies in the file, and starts with
 * ':', which no field name does. NULL if the response varies on "*".
 */
char *
cache_variant(const char *scope, const char *response, const char *request)
{
	char *variant = policy_variant(response, request), digest[41];
	struct buf key = BUF_INIT;

	if (variant == NULL || scope == NULL || *scope == '\0')
		return variant;
	sha1_hex(scope, strlen(scope), digest);
	buf_adds(&key, ":scope=");
	buf_adds(&key, digest);
	buf_addc(&key, '\n');
	buf_adds(&key, variant);
	free(variant);
	return buf_take(&key);
}

/*
 * Finds the stored response for a GET of url: the most recent one, or,
 * when responses vary (RFC 9111 section 4.1) or the request has a
 * scope, the one whose secondary key (cache_variant) is the request's.
 * Returns 1 if found, 0 if not, -1 if the store failed.
 */
int
cache_lookup(struct store *s, const char *url, const char *scope,
    const char *request_headers, struct store_entry *e)
{
	char *variant;
	int found = store_get(s, "GET", url, NULL, e);

	if (found <= 0)
		return found;
	variant = cache_variant(scope, e->headers, request_headers);
	if (variant == NULL || strcmp(variant, e->variant) != 0) {
		store_entry_free(e);
		found = variant == NULL ? 0 :
		    store_get(s, "GET", url, variant, e);
	}
	free(variant);
	return found;
}

/*
 * Whether a GET's response may be stored (RFC 9111 section 3), and
 * shared: by default one that sets a cookie is not, as nginx and
 * Varnish do, so that one client's session never reaches another.
 * Returns NULL if it may, else the reason.
 */
const char *
cache_unstorable(const struct cache_rules *rules, int status,
    const char *request, const char *response)
{
	struct header h;
	const char *why = policy_unstorable("GET", status, request, response);

	if (why == NULL && !rules->store_set_cookie &&
	    headers_get(response, "set-cookie", &h))
		why = "response sets a cookie";
	if (why == NULL && rules->max_object > 0 &&
	    http_content_length(response) > rules->max_object)
		why = "larger than --max-object-size";
	return why;
}

/* t within STORE_TIME_MAX of 0, so that a few of them add up safely. */
static long long
bounded(long long t)
{
	return t < -STORE_TIME_MAX ? -STORE_TIME_MAX :
	    t > STORE_TIME_MAX ? STORE_TIME_MAX : t;
}

/* The freshness a stored response has left (relay-cache(5), Freshness). */
long long
cache_ttl(const struct store_entry *e, time_t now)
{
	return bounded((long long)e->stale_at) - bounded((long long)now);
}

/*
 * The current age of a stored response (RFC 9111 section 4.2.3), as
 * relay-cache(5) gives it from the entry: its lifetime less the
 * freshness left, never below 0. For an entry as relay writes it, this
 * is corrected_initial_age plus resident_time; for one another program
 * changed, it still agrees with stale_at, which says whether it is
 * fresh.
 */
long long
cache_age(const struct store_entry *e, time_t now)
{
	long long age = bounded(e->lifetime) - cache_ttl(e, now);

	return age > 0 ? age : 0;
}

/*
 * The entry for a response with these header fields: its times and
 * freshness. The strings are borrowed from r and headers; variant,
 * etag and last_modified are left for the caller.
 */
void
cache_entry(const struct cache_response *r, const struct cache_rules *rules,
    const char *headers, struct store_entry *e)
{
	struct policy_times t;

	memset(e, 0, sizeof *e);
	e->method = method_get;
	e->url = (char *)r->url;
	e->variant = no_variant;
	e->status = r->status;
	e->headers = (char *)headers;
	e->request_time = r->request_time;
	e->response_time = r->response_time;
	policy_times_from(headers, r->request_time, r->response_time, &t);
	e->date = t.date;
	e->age = t.age;
	e->lifetime = rules->force_ttl >= 0 ? rules->force_ttl :
	    policy_lifetime(headers, r->response_time, rules->default_ttl);
	e->stale_at = policy_stale_at(&t, e->lifetime);
}

/*
 * Body bytes for a writer, if there is one. A write that fails gives
 * the writer up (the response is then not stored) and returns -1; the
 * reason is in store_error.
 */
int
cache_write(struct store_writer **w, const void *p, size_t n)
{
	struct sink sink;

	if (*w == NULL)
		return 0;
	sink = store_writer_sink(*w);
	if (sink.write(sink.ctx, p, n) == 0)
		return 0;
	store_writer_abort(*w);
	*w = NULL;
	return -1;
}

/*
 * Stores a response whose body the writer holds, with its end-to-end
 * fields only; the writer is consumed. Returns -1 if it failed, with
 * the reason in store_error.
 */
int
cache_commit(struct store_writer *w, const struct cache_response *r,
    const struct cache_rules *rules)
{
	struct buf kept = BUF_INIT;
	struct store_entry e;
	int rc;

	cache_stored_entry(r, rules, &kept, &e);
	rc = store_writer_commit(w, &e);
	cache_stored_free(&e, &kept);
	return rc;
}

/*
 * The entry r is stored as: its end-to-end fields (into kept), its
 * times and freshness, its variant and validators; free it with
 * cache_stored_free. Its size is the caller's to set.
 */
void
cache_stored_entry(const struct cache_response *r,
    const struct cache_rules *rules, struct buf *kept, struct store_entry *e)
{
	headers_add_end_to_end(kept, r->headers);
	cache_entry(r, rules, buf_cstr(kept), e);
	e->variant = cache_variant(r->scope, e->headers, r->request_headers);
	e->etag = headers_get_dup(e->headers, "etag");
	e->last_modified = headers_get_dup(e->headers, "last-modified");
}

void
cache_stored_free(struct store_entry *e, struct buf *kept)
{
	free(e->variant);
	free(e->etag);
	free(e->last_modified);
	buf_free(kept);
}

/*
 * A 304 answered a conditional request for the stored response c: c
 * takes the new fields and freshness (RFC 9111 section 4.3.4) and keeps
 * its body. This changes c in memory only; see cache_refresh. Returns
 * NULL, or why the response as refreshed may not be stored: a 304 can
 * set a cookie or say no-store or private, and then the stored one
 * must go, or it would answer the next client with them (section 3).
 */
const char *
cache_revalidate(struct store_entry *c, const struct cache_response *r,
    const struct cache_rules *rules)
{
	struct cache_response as_stored = *r;
	struct buf merged = BUF_INIT;
	struct store_entry e;

	headers_merge_304(&merged, c->headers, r->headers);
	as_stored.status = c->status;
	cache_entry(&as_stored, rules, buf_cstr(&merged), &e);
	free(c->headers);
	c->headers = xstrdup(e.headers);
	c->request_time = e.request_time;
	c->response_time = e.response_time;
	c->date = e.date;
	c->age = e.age;
	c->lifetime = e.lifetime;
	c->stale_at = e.stale_at;
	free(c->etag);
	c->etag = headers_get_dup(c->headers, "etag");
	free(c->last_modified);
	c->last_modified = headers_get_dup(c->headers, "last-modified");
	buf_free(&merged);
	return cache_unstorable(rules, c->status, r->request_headers,
	    c->headers);
}

/*
 * A stored entry as the response it was made from: for another host,
 * which makes its entry from it as this one did (cache_stored_entry).
 */
struct cache_response
cache_response_of(const struct store_entry *e, const char *request_headers)
{
	return (struct cache_response){
		.url = e->url,
		.status = e->status,
		.headers = e->headers,
		.request_headers = request_headers,
		.request_time = e->request_time,
		.response_time = e->response_time,
	};
}

/* cache_revalidate, in the file as well: refreshed, or removed. */
int
cache_refresh(struct store *s, struct store_entry *c,
    const struct cache_response *r, const struct cache_rules *rules)
{
	if (cache_revalidate(c, r, rules) != NULL)
		return store_remove(s, c->url) < 0 ? -1 : 0;
	return store_refresh(s, c);
}

/* The most a record's age is and its ttl is either way (relay(7)). */
#define RECORD_SECS_MAX	(1LL << 40)

/*
 * A stored entry as a record (relay(7)), its body read from s: source
 * hit or stale, age and ttl as of now, within what a record carries;
 * seq if it is not 0. A body over max bytes is left out, the record
 * saying so. Returns STORE_DAMAGED, having written nothing, if the
 * body is not whole; -1 if it could not be read: the line is then
 * unfinished.
 */
int
cache_write_record(struct writer *w, struct store *s,
    const struct store_entry *e, time_t now, long long seq, long long max)
{
	long long age = cache_age(e, now), ttl = cache_ttl(e, now);
	struct store_body_ref ref = { s, e, NULL };
	struct record_source body = { store_body_ref_open,
		store_body_ref_close, &ref };
	struct record rec = {
		.url = e->url, .method = e->method, .status = e->status,
		.source = "hit", .request_time = e->request_time,
		.response_time = e->response_time,
		.age = age < RECORD_SECS_MAX ? age : RECORD_SECS_MAX,
		.ttl = ttl < -RECORD_SECS_MAX ? -RECORD_SECS_MAX :
		    ttl > RECORD_SECS_MAX ? RECORD_SECS_MAX : ttl,
		.size = e->size, .seq = seq, .has = HAS_TTL,
	};
	char why[80];
	int rc;

	if (e->size <= max && (rc = store_body_check(s, e)) < 0)
		return rc;
	if (now >= e->stale_at)
		snprintf(rec.source, sizeof rec.source, "stale");
	if (e->size > max) {
		snprintf(why, sizeof why, "the body is over %lld bytes: ask "
		    "for it alone", max);
		rec.error = why;
	}
	buf_adds(&rec.headers, e->headers);
	rc = record_write(w, &rec, &body);
	buf_free(&rec.headers);
	return rc;
}
