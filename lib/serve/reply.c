/*
 * An answer as it goes out on a connection (see reply.h).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/prog.h"
#include "net/log.h"
#include "net/metrics.h"
#include "serve/reply.h"

/*
 * A reply to the request on c; ended(owner) is called once the answer
 * has ended (reply_done, reply_cut, reply_fail), to free what holds it.
 */
void
reply_init(struct reply *r, struct conn *c, void (*ended)(void *),
    void *owner)
{
	memset(r, 0, sizeof *r);
	r->c = c;
	r->req = conn_request(c);
	r->head_only = strcmp(r->req->method, "HEAD") == 0;
	r->start_ms = prog_now_ms();
	r->upstream_ms = -1;
	r->ended = ended;
	r->owner = owner;
}

/* What the reply holds, its feature's included. */
void
reply_free(struct reply *r)
{
	free(r->limit_fields);
	r->limit_fields = NULL;
	reply_release(r);
}

/*
 * The feature lets the answer go, its state freed, so that another may
 * take it (reply_give): the caller must not touch that state again.
 */
void
reply_release(struct reply *r)
{
	const struct reply_feature *f = r->feature;

	r->feature = NULL;
	if (f != NULL)
		f->free(r->feature_ctx);
}

/* The answer is the feature's from now on (ctx its state). */
void
reply_give(struct reply *r, const struct reply_feature *f, void *ctx)
{
	assert(r->feature == NULL);
	r->feature = f;
	r->feature_ctx = ctx;
}

/* Room to write again: to the feature; 0 if there is none. */
int
reply_writable(struct reply *r)
{
	if (r->feature == NULL)
		return 0;
	r->feature->writable(r->feature_ctx);
	return 1;
}

/* Output the client has not taken yet, as a writer weighs it. */
size_t
reply_queued(const struct reply *r)
{
	return conn_queued(r->c);
}

/*
 * Sends the status line and fields (http_response_head); length is the
 * body's size, or -1 if unknown.
 */
void
reply_head(struct reply *r, int status, const char *fields,
    const char *cache_status, long long age, long long length)
{
	struct buf out = BUF_INIT;
	struct http_head h = {
		.status = status, .fields = fields,
		.cache_status = cache_status, .age = age, .length = length,
		.extra = r->limit_fields,
		.fields_ready = r->from_memory,
		.minor = r->req->minor, .head_only = r->head_only,
		.close = conn_stopping(r->c) || r->close_after,
		.now = time(NULL),
	};

	r->status = status;
	switch (http_response_head(&out, &h)) {
	case HTTP_FRAME_CHUNKED:
		r->chunked = 1;
		break;
	case HTTP_FRAME_CLOSE:
		r->close_after = 1;
		break;
	case HTTP_FRAME_LENGTH:
		break;
	}
	conn_write(r->c, out.data, out.len);
	buf_free(&out);
	r->head_sent = 1;
}

void
reply_body(struct reply *r, const void *p, size_t n)
{
	char size[24];
	int len;

	if (r->head_only || n == 0)
		return;
	if (r->chunked) {
		len = snprintf(size, sizeof size, "%zx\r\n", n);
		conn_write(r->c, size, (size_t)len);
	}
	conn_write(r->c, p, n);
	if (r->chunked)
		conn_write(r->c, "\r\n", 2);
	r->bytes += (long long)n;
}

/* The body is whole: the last chunk, if it went in chunks. */
void
reply_end(struct reply *r)
{
	if (r->chunked && !r->head_only)
		conn_write(r->c, "0\r\n\r\n", 5);
}

/* A whole answer at once: its head, its body of len bytes, its end. */
void
reply_send(struct reply *r, int status, const char *fields,
    const char *cache_status, const void *body, size_t len)
{
	reply_head(r, status, fields, cache_status, -1, (long long)len);
	reply_body(r, body, len);
	reply_end(r);
	reply_done(r, 0);
}

/*
 * The answer's access log line, written once the client has it all;
 * one cut short before it knew how it would be answered is "-".
 */
void
reply_log(struct reply *r)
{
	const char *how = r->cache_status != NULL ? r->cache_status : "-";
	struct log_request log = {
		.peer = conn_peer(r->c), .method = r->req->method,
		.target = r->req->target, .status = r->status,
		.bytes = r->bytes, .cache = how,
		.upstream_ms = r->upstream_ms,
		.total_ms = prog_now_ms() - r->start_ms, .error = r->error,
	};

	conn_log(r->c, &log);
	if (!r->admin)
		metrics_answered(how, r->shared, r->status, r->bytes);
}

/* The answer is whole; the connection goes on, or closes after it. */
void
reply_done(struct reply *r, int close_after)
{
	reply_log(r);
	conn_set_data(r->c, NULL);
	conn_done(r->c, close_after || r->close_after);
	r->ended(r->owner);
}

/* The answer ends before it is whole, for why (r->error by default). */
void
reply_cut(struct reply *r, const char *why)
{
	if (r->error == NULL)
		r->error = why;
	reply_log(r);
	conn_set_data(r->c, NULL);
	conn_cut(r->c, r->error);
	r->ended(r->owner);
}

/*
 * An error answer from relay-serve itself, which closes the connection;
 * fields are extra header fields, or NULL.
 */
void
reply_fail(struct reply *r, int status, const char *why, const char *fields)
{
	struct buf out = BUF_INIT, all = BUF_INIT;

	buf_adds(&all, fields != NULL ? fields : "");
	buf_adds(&all, r->limit_fields != NULL ? r->limit_fields : "");
	r->bytes = (long long)http_error_response(&out, status, why,
	    buf_cstr(&all), r->head_only);
	buf_free(&all);
	conn_write(r->c, out.data, out.len);
	buf_free(&out);
	r->status = status;
	if (r->error == NULL)
		r->error = why;
	if (r->cache_status == NULL)
		r->cache_status = "-";
	reply_done(r, 1);
}
