/*
 * GET /_relay/sync as an answer (sync.h): the stream of records a page
 * at a time while the client takes it, gzipped if it takes that; or,
 * with ?format=sqlite, the snapshot built a page a round of the loop,
 * then its file. An up-to-date client's If-None-Match gets 304.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prog.h"
#include "http/gzip.h"
#include "http/http.h"
#include "serve/sync.h"
#include "serve/sync_reply.h"
#include "store/snapshot.h"

#define SYNC_CS	"relay; detail=sync"

struct sync_reply {
	struct reply	*r;
	struct sync	*sync;
	struct gzip	*gzip;		/* its Content-Encoding, or NULL */
	struct watch	*later;		/* the snapshot's next page */
	struct store	*reader;	/* for why a read failed */
	long long	 read_at;	/* of the snapshot's file */
};

/* The fields of a sync's answer, of type, with its ETag. */
static void
sync_fields(const struct sync_reply *y, const char *type, char *out,
    size_t len)
{
	snprintf(out, len, "Content-Type: %s\r\nETag: \"%lld\"\r\n"
	    "Relay-Sync: %s\r\nCache-Control: no-cache\r\n"
	    "Vary: Accept-Encoding\r\n%s", type, sync_seq(y->sync),
	    sync_kind(y->sync), y->gzip != NULL ?
	    "Content-Encoding: gzip\r\n" : "");
}

/* Body bytes of a sync, gzipped if the client takes it. */
static void
write_sync(struct sync_reply *y, const void *p, size_t n)
{
	struct buf z = BUF_INIT;

	if (y->gzip == NULL) {
		reply_body(y->r, p, n);
		return;
	}
	gzip_add(y->gzip, p, n, &z);
	reply_body(y->r, z.data, z.len);
	buf_free(&z);
}

static void
end_sync(struct sync_reply *y)
{
	struct buf z = BUF_INIT;

	if (y->gzip != NULL) {
		gzip_end(y->gzip, &z);
		reply_body(y->r, z.data, z.len);
		buf_free(&z);
	}
	reply_end(y->r);
}

/* A snapshot's file, sent as the client takes it. */
static void
send_snapshot(struct sync_reply *y)
{
	struct reply *r = y->r;
	struct snapshot *sn = sync_snapshot(y->sync);
	char tmp[16384];
	ssize_t n = 0;

	while (!r->head_only && reply_queued(r) < SERVER_OUT_MAX &&
	    (n = snapshot_read(sn, tmp, sizeof tmp, y->read_at)) > 0) {
		y->read_at += n;
		write_sync(y, tmp, (size_t)n);
	}
	if (n < 0)
		r->error = "the snapshot cannot be read";
	if (n == 0 && !r->head_only)
		end_sync(y);
	if (r->head_only || n <= 0)
		reply_done(r, n < 0);	/* cut short if it failed */
}

/* ?format=sqlite: a page of the snapshot a round; then its head and file. */
static void
on_snapshot_page(struct watch *w, short events, void *ctx)
{
	struct sync_reply *y = ctx;
	struct snapshot *sn = sync_snapshot(y->sync);
	struct buf unused = BUF_INIT;
	char fields[256];
	int more = sync_next(y->sync, &unused);

	(void)events;
	buf_free(&unused);
	if (more > 0) {
		watch_deadline(w, prog_now_ms());
		return;
	}
	loop_unwatch(w);
	y->later = NULL;
	if (more < 0) {
		reply_fail(y->r, snapshot_status(sn), snapshot_error(sn), NULL);
		return;
	}
	sync_fields(y, "application/vnd.sqlite3", fields, sizeof fields);
	reply_head(y->r, 200, fields, SYNC_CS, -1, y->gzip != NULL ? -1 :
	    (long long)snapshot_size(sn));
	send_snapshot(y);
}

/* Sends the stream while the client takes it. */
static void
sync_pump(void *ctx)
{
	struct sync_reply *y = ctx;
	struct buf out = BUF_INIT;
	int more = 1;

	if (sync_snapshot(y->sync) != NULL) {
		if (y->r->head_sent)
			send_snapshot(y);
		return;
	}
	while (more > 0 && reply_queued(y->r) < SERVER_OUT_MAX) {
		buf_reset(&out);
		more = sync_next(y->sync, &out);
		write_sync(y, out.data, out.len);
	}
	buf_free(&out);
	if (more < 0) {
		reply_cut(y->r, store_error(y->reader));
	} else if (more == 0) {
		end_sync(y);
		reply_done(y->r, 0);
	}
}

static void
sync_reply_free(void *ctx)
{
	struct sync_reply *y = ctx;

	sync_free(y->sync);
	loop_unwatch(y->later);
	gzip_free(y->gzip);
	free(y);
}

static const struct reply_feature feature = { sync_pump, sync_reply_free };

/*
 * Answers r with the sync of target (its prefix and since) of what
 * reader holds under base_key, up to max_size bytes of snapshot.
 */
void
sync_reply(struct reply *r, struct loop *loop, struct store *reader,
    const char *base_key, const char *target, long long max_size)
{
	const char *fields = buf_str(&r->req->fields), *why;
	struct sync_reply *y;
	struct sync *sync;
	char head[256], etag[32];
	int status;

	if (!r->head_only && strcmp(r->req->method, "GET") != 0) {
		reply_fail(r, 405, "only GET and HEAD", "Allow: GET, HEAD\r\n");
		return;
	}
	if ((sync = sync_start(reader, base_key, target, max_size, &status,
	    &why)) == NULL) {
		reply_fail(r, status, why, status == 503 ?
		    "Retry-After: 1\r\n" : NULL);
		return;
	}
	y = xcalloc(1, sizeof *y);
	y->r = r;
	y->sync = sync;
	y->reader = reader;
	if (gzip_accepted(fields))
		y->gzip = gzip_new();
	reply_give(r, &feature, y);
	snprintf(etag, sizeof etag, "\"%lld\"", sync_seq(sync));
	sync_fields(y, sync_snapshot(sync) != NULL ? "application/vnd.sqlite3" :
	    "application/x-ndjson", head, sizeof head);
	/*
	 * The ETag is the newest change number: a client that has the
	 * state it names has this answer's, dump or delta, as an eviction
	 * is no change (RFC 9110 13.1.2).
	 */
	if (http_not_modified(fields, etag, NULL)) {
		reply_head(r, 304, head, SYNC_CS, -1, 0);
		reply_done(r, 0);
	} else if (sync_snapshot(sync) != NULL) {
		y->later = loop_watch(loop, -1, 0, on_snapshot_page, y);
		watch_deadline(y->later, prog_now_ms());
	} else {
		reply_head(r, 200, head, SYNC_CS, -1, -1);
		if (r->head_only)
			reply_done(r, 0);
		else
			sync_pump(y);
	}
}
