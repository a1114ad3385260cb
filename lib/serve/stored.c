/*
 * A stored response as an answer: 304 when the client's copy is
 * current (RFC 9110 section 13.2.2), one byte range as 206 or 416
 * (section 14), its Cache-Status (RFC 9211) and age, and its body
 * streamed from memory or from the file as the client takes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "http/http.h"
#include "serve/stored.h"
#include "store/cache.h"

struct stored {
	struct reply		*r;
	struct store		*reader;
	char			*key;		/* to look up again */
	struct stored_how	 how;
	struct store_entry	 cached;	/* looked up again, or none */
	struct store_body	*body;		/* being sent */
	long long		 sent_from;	/* the byte range of the body */
	long long		 sent_to;	/* sent; -1: all of it */
	long long		 read_at;	/* where its reading is */
};

/* RFC 9110 section 13.2.2: the client's copy of e is current. */
static int
not_modified(const struct stored *a, const struct store_entry *e)
{
	return e->status == 200 && http_not_modified(buf_str(&a->r->req->fields), e->etag, e->last_modified);
}

/*
 * Sends the part of n stored body bytes, read from a->read_at on, that
 * falls in the range asked for. Returns 0 once past the range's end.
 */
static int
write_stored(struct stored *a, const char *p, size_t n)
{
	long long at = a->read_at, end = at + (long long)n, from, to;

	a->read_at = end;
	if (a->sent_to < 0) {
		reply_body(a->r, p, n);
		return 1;
	}
	from = at > a->sent_from ? at : a->sent_from;
	to = end < a->sent_to + 1 ? end : a->sent_to + 1;
	if (from < to)
		reply_body(a->r, p + (from - at), (size_t)(to - from));
	return end <= a->sent_to;
}

/* Sends as much of the stored body as the connection may queue. */
static void
pump(void *ctx)
{
	struct stored *a = ctx;
	struct source src = store_body_source(a->body);
	char tmp[16384];
	ssize_t n;

	while (conn_queued(a->r->c) < SERVER_OUT_MAX) {
		if ((n = src.read(src.ctx, tmp, sizeof tmp)) < 0) {
			reply_cut(a->r, store_error(a->reader));
			return;
		}
		if (n == 0 || !write_stored(a, tmp, (size_t)n)) {
			store_body_close(a->body);
			a->body = NULL;
			reply_end(a->r);
			reply_done(a->r, 0);
			return;
		}
	}
}

/*
 * Opens the stored body and reads its first piece before anything is
 * sent. A writer may have replaced the entry since the lookup, taking
 * its body away; then the lookup is made again. Once a first piece is
 * read, the rest comes from the same snapshot. Returns its length, or
 * -1 if no entry could be read.
 */
static ssize_t
open_body(struct stored *a, const struct store_entry *e, char *first,
    size_t len)
{
	struct store *reader = a->reader;
	const char *fields = buf_str(&a->r->req->fields);
	struct source src;
	ssize_t n;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if ((a->body = store_body_open(reader, e)) != NULL) {
			src = store_body_source(a->body);
			if ((n = src.read(src.ctx, first, len)) >= 0)
				return n;
			store_body_close(a->body);
			a->body = NULL;
		}
		if (a->cached.url != NULL)
			store_entry_free(&a->cached);
		if (cache_lookup(reader, a->key, NULL, fields, &a->cached) <= 0)
			break;
		e = &a->cached;
	}
	return -1;
}

/* The Cache-Status of an answer from the store (RFC 9211). */
void
stored_cache_status(const struct stored_how *h, enum through_how kind,
    long long ttl, char *out, size_t len)
{
	const char *fwd = h->had_stored ? "stale" : "miss";

	switch (kind) {
	case THROUGH_HIT:
		if (h->shared)	/* another host's: no upstream request */
			snprintf(out, len, "relay; hit; ttl=%lld; "
			    "detail=shared", ttl);
		else if (h->collapsed)
			snprintf(out, len, "relay; fwd=%s; collapsed; ttl=%lld",
			    fwd, ttl);
		else
			snprintf(out, len, "relay; hit; ttl=%lld", ttl);
		break;
	case THROUGH_STALE:
		snprintf(out, len, "relay; hit; ttl=%lld; "
		    "detail=stale-while-revalidate", ttl);
		break;
	case THROUGH_STALE_ERROR:
		snprintf(out, len, "relay; hit; ttl=%lld; "
		    "detail=stale-if-error", ttl);
		break;
	case THROUGH_REVALIDATED:
		snprintf(out, len, "relay; fwd=stale; fwd-status=304; "
		    "ttl=%lld", ttl);
		break;
	case THROUGH_STALE_LIMITED:
		snprintf(out, len, "relay; hit; ttl=%lld; "
		    "detail=upstream-rate", ttl);
		break;
	}
}

/* The access log's word for how a stored response answered. */
const char *
stored_log_word(const struct stored_how *h, enum through_how kind)
{
	if (kind == THROUGH_HIT)
		return h->collapsed ? "collapsed" : "hit";
	return kind == THROUGH_REVALIDATED ? "revalidated" : "stale";
}

/*
 * The head of a stored 200, whole or, for a Range the client asks
 * (RFC 9110 section 14), as a 206 of one byte range: the range is set
 * for write_stored. One that cannot be satisfied is answered 416 here;
 * then it returns 0.
 */
static int
send_stored_head(struct stored *a, const struct store_entry *e,
    const char *cs, long long age)
{
	struct buf fields = BUF_INIT;
	char range[80];
	int r = 0;

	a->sent_to = -1;
	if (e->status == 200 && e->size >= 0 &&
	    (strcmp(a->r->req->method, "GET") == 0 || a->r->head_only))
		r = http_byte_range(buf_str(&a->r->req->fields),
		    e->etag, e->last_modified, e->size, &a->sent_from,
		    &a->sent_to);
	if (r < 0) {
		snprintf(range, sizeof range, "Content-Range: bytes */%lld\r\n",
		    e->size);
		reply_fail(a->r, 416, "range not satisfiable", range);
		return 0;
	}
	if (r == 0) {
		reply_head(a->r, e->status, e->headers, cs, age, e->size);
		return 1;
	}
	buf_adds(&fields, e->headers);
	buf_printf(&fields, "Content-Range: bytes %lld-%lld/%lld\r\n",
	    a->sent_from, a->sent_to, e->size);
	reply_head(a->r, 206, buf_cstr(&fields), cs, age,
	    a->sent_to - a->sent_from + 1);
	buf_free(&fields);
	return 1;
}

/*
 * Answers with the stored response e, or 304 if the client has it;
 * its body is in memory (memory, e->size bytes), or read from the file.
 */
static void
send_stored(struct stored *a, const struct store_entry *e,
    const char *memory, enum through_how kind)
{
	char cs[128], first[16384];
	long long age;
	ssize_t n = 0;
	int current = not_modified(a, e);
	int body = !current && !a->r->head_only && http_has_body(e->status);

	a->r->cache_status = stored_log_word(&a->how, kind);
	a->r->from_memory = memory != NULL;
	if (body && memory == NULL &&
	    (n = open_body(a, e, first, sizeof first)) < 0) {
		reply_fail(a->r, 503, "cache entry unavailable", NULL);
		return;
	}
	if (a->cached.url != NULL)
		e = &a->cached;		/* looked up again */
	age = cache_age(e, time(NULL));
	stored_cache_status(&a->how, kind, e->lifetime - age, cs, sizeof cs);
	if (current) {
		reply_head(a->r, 304, e->headers, cs, age, -1);
		reply_done(a->r, 0);
		return;
	}
	if (!send_stored_head(a, e, cs, age))
		return;
	if (body && memory != NULL)
		write_stored(a, memory, (size_t)e->size);
	if (a->body == NULL) {
		reply_done(a->r, 0);
		return;
	}
	if (!write_stored(a, first, (size_t)n)) {
		store_body_close(a->body);
		a->body = NULL;
		reply_done(a->r, 0);
		return;
	}
	pump(a);
}

static void
stored_free(void *ctx)
{
	struct stored *a = ctx;

	if (a->body != NULL)
		store_body_close(a->body);
	if (a->cached.url != NULL)
		store_entry_free(&a->cached);
	free(a->key);
	free(a);
}

static const struct reply_feature feature = { pump, stored_free };

/*
 * Answers r with e, the stored response for key that reader holds, as
 * kind and h say it came; memory is its body if in memory, or NULL.
 */
void
stored_reply(struct reply *r, struct store *reader, const char *key,
    const struct store_entry *e, const char *memory, enum through_how kind,
    const struct stored_how *h)
{
	struct stored *a = xcalloc(1, sizeof *a);

	a->r = r;
	a->reader = reader;
	a->key = xstrdup(key);
	a->how = *h;
	reply_give(r, &feature, a);
	send_stored(a, e, memory, kind);
}
