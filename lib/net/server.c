/*
 * The server side's connections: accepting, reading requests with hard
 * limits and timeouts, queueing responses in bounded memory, keep-alive
 * and pipelining, graceful stop. What to answer is the program's.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/prog.h"
#include "net/log.h"
#include "net/loop.h"
#include "net/server.h"

#define IN_MAX		(HTTP_MAX_HEAD + 16384)	/* unparsed input held */
#define MAX_CONNS	4096		/* per process */
#define FDS_SPARE	256		/* files, pipes, the upstream's */
#define LINGER_MS	2000		/* to drain input before closing */
#define ACCEPT_PAUSE_MS	100		/* out of descriptors, then accept */

enum conn_state {
	CONN_IDLE,	/* between requests */
	CONN_HEAD,	/* receiving a request head */
	CONN_BODY,	/* receiving its body */
	CONN_BUSY,	/* the program is answering */
	CONN_RAW,	/* upgraded: the program reads the bytes itself */
	CONN_CLOSING,	/* sending what is queued, then closing */
	CONN_LINGER,	/* output shut; reading what the client still sends */
};

struct conn {
	struct server		*srv;
	struct conn		*next;
	int			 in, out;
	int			 is_socket;
	char			 peer[64];
	enum conn_state		 state;
	struct buf		 inbuf;		/* received, not yet consumed */
	struct buf		 outbuf;	/* to send, from out_pos */
	size_t			 out_pos;
	struct http_request	 req;
	struct http_chunked	 chunked;
	struct buf		 body;
	long long		 body_left;	/* of a Content-Length body */
	long long		 deadline_ms;	/* for the state; 0: none */
	long long		 last_write_ms;
	int			 eof;		/* the client sends no more */
	int			 flush_due;	/* output queued this round */
	int			 dead;		/* close now */
	int			 write_errno;	/* why sending failed, or 0 */
	int			 leaving;	/* the gone handler runs */
	long long		 queued_total;	/* bytes ever queued… */
	long long		 sent_total;	/* …and ever sent */
	long long		 answer_start;	/* queued_total at dispatch */
	struct sent_log		*logs, **logs_tail;	/* until sent */
	void			*data;
	const struct inner_ops	*inner;		/* an inner request's, or NULL */
	void			*inner_ctx;
	const struct raw_ops	*raw;		/* CONN_RAW's reader */
	void			*raw_ctx;
	int			 eof_told;	/* raw->eof was called */
	int			 slot_in, slot_out;	/* this round's, or -1 */
};

/*
 * An answer's access log line waits until its last byte is sent, so
 * that it says what the client really got: if the connection fails
 * first, the body bytes that went out and why the rest did not.
 */
struct sent_log {
	struct sent_log		*next;
	long long		 start, end;	/* its bytes in queued_total */
	int			 unfinished;	/* logged as its client left */
	struct log_request	 log;
	char			 strings[];	/* the log's, copied */
};

struct server {
	struct server_options	 opt;
	struct server_handler	 h;
	struct loop		*loop;
	int			 listen_fd;
	int			 listen_slot;	/* this round's, or -1 */
	long long		 accept_again_ms;	/* out of fds: not before */
	struct conn		*conns;
	int			 nconns;
	int			 stopping;
	long long		 drain_ms;	/* stopping: all close then */
};

static void gather(struct loop *, void *);
static void sweep(struct loop *, void *);
static void flush_finished(void *);
static int serving(void *);
static long long next_deadline(const struct server *, long long);

/* A server on the loop: its connections are one of the loop's sources. */
struct server *
server_new(struct loop *loop, const struct server_options *opt,
    const struct server_handler *h)
{
	struct server *srv = xcalloc(1, sizeof *srv);
	const struct loop_source source = { gather, sweep, flush_finished,
	    serving, srv };

	srv->opt = *opt;
	srv->h = *h;
	srv->loop = loop;
	srv->listen_fd = -1;
	srv->listen_slot = -1;
	loop_add_source(loop, &source);
	return srv;
}

void
server_free(struct server *srv)
{
	free(srv);
}

struct loop *
server_loop(const struct server *srv)
{
	return srv->loop;
}

void
server_listen(struct server *srv, int fd)
{
	struct rlimit fds;

	srv->listen_fd = fd;
	/*
	 * MAX_CONNS connections and the files beside them: systemd and
	 * most shells give a soft limit of 1024, below what is promised.
	 */
	if (getrlimit(RLIMIT_NOFILE, &fds) == 0 &&
	    fds.rlim_cur < MAX_CONNS + FDS_SPARE) {
		fds.rlim_cur = fds.rlim_max < MAX_CONNS + FDS_SPARE ?
		    fds.rlim_max : MAX_CONNS + FDS_SPARE;
		(void)setrlimit(RLIMIT_NOFILE, &fds);
	}
}

/* "address:port" of a socket's peer, or what inetd-style servers say. */
static void
peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof sa;
	char host[INET6_ADDRSTRLEN];
	const char *env;

	snprintf(out, len, "-");
	if (getpeername(fd, (struct sockaddr *)&sa, &salen) < 0) {
		/* an address, or nothing: admin access is decided on it */
		if (((env = getenv("TCPREMOTEIP")) != NULL ||
		    (env = getenv("REMOTE_ADDR")) != NULL) &&
		    (inet_pton(AF_INET, env, &sa) == 1 ||
		    inet_pton(AF_INET6, env, &sa) == 1))
			snprintf(out, len, "%s", env);
		return;
	}
	if (sa.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(out, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(out, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else if (sa.ss_family == AF_UNIX) {
		snprintf(out, len, "unix");
	}
}

static int
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A connection on in and out: one socket, or inetd's fd 0 and 1. */
void
server_connection(struct server *srv, int in, int out)
{
	struct conn *c = xcalloc(1, sizeof *c);
	int one = 1;

	c->logs_tail = &c->logs;
	c->srv = srv;
	c->slot_in = c->slot_out = -1;
	c->in = in;
	c->out = out;
	c->is_socket = is_socket(out);
	if (c->is_socket)
		setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	peer_name(in, c->peer, sizeof c->peer);
	c->last_write_ms = prog_now_ms();
	c->deadline_ms = c->last_write_ms + srv->opt.idle_timeout_ms;
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
}

/*
 * Stops accepting; idle connections close, answers in progress finish,
 * until the drain deadline: then what is left is closed, cut short.
 */
void
server_stop(struct server *srv)
{
	struct conn *c;

	if (!srv->stopping) {
		for (c = srv->conns; c != NULL; c = c->next)
			if (c->state == CONN_RAW)
				c->raw->stop(c->raw_ctx);
		srv->drain_ms = prog_now_ms() + srv->opt.drain_timeout_ms;
	}
	srv->stopping = 1;
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	srv->listen_fd = -1;
}

const struct http_request *
conn_request(const struct conn *c)
{
	return &c->req;
}

const struct buf *
conn_body(const struct conn *c)
{
	return &c->body;
}

/*
 * Takes the request's body: the caller's to free from now on (the
 * connection's is empty after), so that a large one is never copied.
 */
char *
conn_take_body(struct conn *c, size_t *len)
{
	*len = c->body.len;
	return buf_take(&c->body);
}

/* Whether the request is an inner one (server_inner): a batch item's. */
int
conn_inner(const struct conn *c)
{
	return c->inner != NULL;
}

const char *
conn_peer(const struct conn *c)
{
	return c->peer;
}

/* Whether the connection ends after this answer. */
int
conn_stopping(const struct conn *c)
{
	return c->srv->stopping || !c->req.keep_alive;
}

size_t
conn_queued(const struct conn *c)
{
	if (c->inner != NULL)
		return c->inner->queued(c->inner_ctx);
	return c->outbuf.len - c->out_pos;
}

void *
conn_data(const struct conn *c)
{
	return c->data;
}

void
conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

static void write_logs(struct conn *, int);

/* Sends what the socket takes now; pipes take PIPE_BUF per readiness. */
static void
flush(struct conn *c)
{
	size_t was = conn_queued(c), left;
	ssize_t n;

	while (!c->dead && (left = conn_queued(c)) > 0) {
		if (c->is_socket)
			n = send(c->out, c->outbuf.data + c->out_pos, left,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = write(c->out, c->outbuf.data + c->out_pos,
			    left < PIPE_BUF ? left : PIPE_BUF);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n < 0) {
			c->write_errno = errno;
			c->dead = 1;
			break;
		}
		c->out_pos += (size_t)n;
		c->sent_total += n;
		c->last_write_ms = prog_now_ms();
		if (!c->is_socket)
			break;
	}
	write_logs(c, 0);
	if (conn_queued(c) == 0) {
		c->outbuf.len = c->out_pos = 0;
	} else if (c->out_pos > SERVER_OUT_MAX) {
		memmove(c->outbuf.data, c->outbuf.data + c->out_pos,
		    conn_queued(c));
		c->outbuf.len -= c->out_pos;
		c->out_pos = 0;
	}
	if ((c->state == CONN_BUSY || c->state == CONN_RAW) &&
	    was >= SERVER_OUT_MAX / 2 &&
	    conn_queued(c) < SERVER_OUT_MAX / 2 && c->srv->h.writable != NULL)
		c->srv->h.writable(c, c->srv->h.ctx);
}

void
conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->inner != NULL) {
		c->inner->write(c->inner_ctx, p, n);
		return;
	}
	buf_add(&c->outbuf, p, n);
	c->queued_total += (long long)n;
}

static char *
copy_string(char **to, const char *s)
{
	char *at = *to;
	size_t n = strlen(s) + 1;

	memcpy(at, s, n);
	*to += n;
	return at;
}

/*
 * The access log line of the answer just queued, written once the
 * client has taken all of it (or the connection fails).
 */
void
conn_log(struct conn *c, const struct log_request *log)
{
	const char *peer = log->peer ? log->peer : "-", *cache = log->cache ?
	    log->cache : "-", *error = log->error;
	struct sent_log *l;
	char *at;

	if (c->inner != NULL) {		/* its consumer has it all now */
		log_request(log);
		return;
	}
	l = xmalloc(sizeof *l + strlen(peer) + strlen(log->method) +
	    strlen(log->target) + strlen(cache) +
	    (error ? strlen(error) : 0) + 5);
	at = l->strings;
	l->next = NULL;
	l->start = c->answer_start;
	l->end = c->queued_total;
	l->unfinished = c->leaving;
	l->log = *log;
	l->log.peer = copy_string(&at, peer);
	l->log.method = copy_string(&at, log->method);
	l->log.target = copy_string(&at, log->target);
	l->log.cache = copy_string(&at, cache);
	l->log.error = error ? copy_string(&at, error) : NULL;
	*c->logs_tail = l;
	c->logs_tail = &l->next;
	c->answer_start = c->queued_total;
}

/*
 * Writes the log lines of the answers sent in full; with gone, those of
 * the rest too, with the body bytes that went out.
 */
static void
write_logs(struct conn *c, int gone)
{
	struct sent_log *l;
	long long head, sent;
	char why[96];

	while ((l = c->logs) != NULL && (gone || l->end <= c->sent_total)) {
		/* Unfinished, though all it had queued may have gone. */
		if (l->end > c->sent_total || l->unfinished) {
			head = l->end - l->start - l->log.bytes;
			sent = c->sent_total - l->start - head;
			l->log.bytes = sent < 0 ? 0 : sent;
			snprintf(why, sizeof why, "the answer was cut short: %s",
			    c->write_errno ? strerror(c->write_errno) :
			    "the connection ended");
			l->log.error = why;
		}
		log_request(&l->log);
		if ((c->logs = l->next) == NULL)
			c->logs_tail = &c->logs;
		free(l);
	}
}

static void inner_free(struct conn *);

/* The answer is complete: on to the next request, or closing. */
void
conn_done(struct conn *c, int close_after)
{
	struct server *srv = c->srv;
	int keep = c->req.keep_alive && !close_after && !srv->stopping;

	if (c->inner != NULL) {
		c->inner->done(c->inner_ctx, NULL);
		inner_free(c);
		return;
	}
	http_request_free(&c->req);
	buf_reset(&c->body);
	c->state = keep ? CONN_IDLE : CONN_CLOSING;
	c->deadline_ms = prog_now_ms() + srv->opt.idle_timeout_ms;
	c->flush_due = 1;
}

/*
 * The answer ends before it is whole (its upstream broke off, its body
 * could not be read): the connection closes, so that a client sees it
 * cut short by its framing, and an inner request's consumer is told
 * why.
 */
void
conn_cut(struct conn *c, const char *why)
{
	assert(why != NULL);
	if (c->inner != NULL) {
		c->inner->done(c->inner_ctx, why);
		inner_free(c);
		return;
	}
	conn_done(c, 1);
}

/*
 * A request made inside the program, answered by the handler like a
 * client's: req and body are taken over (left empty). *conn is set
 * before the handler is called, which may answer at once; after
 * ops->done the connection is gone.
 */
void
server_inner(struct server *srv, const char *peer, struct http_request *req,
    struct buf *body, const struct inner_ops *ops, void *ctx,
    struct conn **conn)
{
	struct conn *c = xcalloc(1, sizeof *c);

	c->srv = srv;
	c->in = c->out = -1;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	c->req = *req;
	memset(req, 0, sizeof *req);
	c->body = *body;
	memset(body, 0, sizeof *body);
	c->inner = ops;
	c->inner_ctx = ctx;
	c->state = CONN_BUSY;
	*conn = c;
	srv->h.request(c, srv->h.ctx);
}

/* Its consumer has room again, as a socket's writable. */
void
inner_writable(struct conn *c)
{
	if (c->srv->h.writable != NULL)
		c->srv->h.writable(c, c->srv->h.ctx);
}

/* Its consumer has gone: the answer is dropped, as a client's gone. */
void
inner_cancel(struct conn *c)
{
	if (c->srv->h.gone != NULL)
		c->srv->h.gone(c, c->srv->h.ctx);
	inner_free(c);
}

static void
inner_free(struct conn *c)
{
	http_request_free(&c->req);
	buf_free(&c->body);
	free(c);
}

static void
consume(struct conn *c, size_t n)
{
	memmove(c->inbuf.data, c->inbuf.data + n, c->inbuf.len - n);
	c->inbuf.len -= n;
}

/*
 * After the answer that switched protocols (a 101): what the client
 * sends from now on goes to ops, and the program ends the connection
 * with conn_done. No deadline is the server's but the send timeout.
 */
void
conn_upgrade(struct conn *c, const struct raw_ops *ops, void *ctx)
{
	c->raw = ops;
	c->raw_ctx = ctx;
	c->state = CONN_RAW;
	c->deadline_ms = 0;
	conn_raw_feed(c);
}

/* Offers the input not yet taken again, as when more comes. */
void
conn_raw_feed(struct conn *c)
{
	size_t n;

	while (c->state == CONN_RAW && c->inbuf.len > 0 &&
	    (n = c->raw->input(c->raw_ctx, c->inbuf.data, c->inbuf.len)) > 0)
		consume(c, n);
	if (c->state == CONN_RAW && c->eof && c->inbuf.len == 0 &&
	    !c->eof_told) {
		c->eof_told = 1;
		c->raw->eof(c->raw_ctx);
	}
}

/* A request the server refuses itself: answered, logged, then closed. */
static void
reject(struct conn *c, int status, const char *why)
{
	struct log_request log = {
		.peer = c->peer, .method = c->req.method[0] ? c->req.method :
		    "-", .target = c->req.target ? c->req.target : "-",
		.status = status, .cache = "-", .upstream_ms = -1,
		.error = why,
	};
	size_t was = c->outbuf.len;

	log.bytes = (long long)http_error_response(&c->outbuf, status, why,
	    NULL, strcmp(c->req.method, "HEAD") == 0);
	c->queued_total += (long long)(c->outbuf.len - was);
	conn_log(c, &log);
	http_request_free(&c->req);
	c->state = CONN_CLOSING;
	c->flush_due = 1;
}

static void
dispatch(struct conn *c)
{
	c->answer_start = c->queued_total;
	c->state = CONN_BUSY;
	c->deadline_ms = 0;
	c->srv->h.request(c, c->srv->h.ctx);
}

/* A complete head: on to its body, or to the program. */
static void
start_request(struct conn *c, size_t head_len)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	consume(c, head_len);
	buf_reset(&c->body);
	if (c->req.body == HTTP_BODY_NONE) {
		dispatch(c);
		return;
	}
	if (c->req.body == HTTP_BODY_LENGTH &&
	    c->req.content_length > c->srv->opt.max_body) {
		reject(c, 413, "request body too large");
		return;
	}
	c->body_left = c->req.content_length;
	memset(&c->chunked, 0, sizeof c->chunked);
	if (c->req.expect_continue && c->req.minor >= 1)
		conn_write(c, cont, sizeof cont - 1);
	c->state = CONN_BODY;
}

static void
read_head(struct conn *c)
{
	const char *why;
	ssize_t rc;

	if (c->inbuf.len == 0) {
		if (c->eof || c->srv->stopping)
			c->state = CONN_CLOSING;
		return;
	}
	if (c->state == CONN_IDLE) {
		c->state = CONN_HEAD;
		c->deadline_ms = prog_now_ms() + c->srv->opt.request_timeout_ms;
	}
	rc = http_parse_request(c->inbuf.data, c->inbuf.len, &c->req, &why);
	if (rc < 0)
		reject(c, (int)-rc, why);
	else if (rc > 0)
		start_request(c, (size_t)rc);
	else if (c->eof)
		c->state = CONN_CLOSING;	/* a partial request */
}

static void
read_body(struct conn *c)
{
	size_t take;
	ssize_t k;

	if (c->req.body == HTTP_BODY_LENGTH) {
		take = c->inbuf.len < (size_t)c->body_left ? c->inbuf.len :
		    (size_t)c->body_left;
		buf_add(&c->body, c->inbuf.data, take);
		consume(c, take);
		c->body_left -= (long long)take;
	} else {
		k = http_dechunk(&c->chunked, c->inbuf.data, c->inbuf.len,
		    &c->body);
		if (k < 0) {
			reject(c, 400, "malformed chunked body");
			return;
		}
		consume(c, (size_t)k);
		if ((long long)c->body.len > c->srv->opt.max_body) {
			reject(c, 413, "request body too large");
			return;
		}
	}
	if (c->req.body == HTTP_BODY_LENGTH ? c->body_left == 0 :
	    c->chunked.done)
		dispatch(c);
	else if (c->eof)
		c->state = CONN_CLOSING;
}

/* Moves the connection through whatever its input allows. */
static void
advance(struct conn *c)
{
	enum conn_state was;

	do {
		was = c->state;
		if (c->dead)
			return;
		if (c->state == CONN_IDLE || c->state == CONN_HEAD)
			read_head(c);
		else if (c->state == CONN_BODY)
			read_body(c);
		else if (c->state == CONN_RAW)
			conn_raw_feed(c);
	} while (c->state != was || (c->state == CONN_IDLE &&
	    c->inbuf.len > 0));
}

static void
receive(struct conn *c)
{
	char tmp[16384];
	ssize_t n;

	n = c->is_socket ? recv(c->in, tmp, sizeof tmp, MSG_DONTWAIT) :
	    read(c->in, tmp, sizeof tmp);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->eof = 1;
		if (n < 0 || c->state == CONN_LINGER)
			c->dead = n < 0 || c->state == CONN_LINGER;
		return;
	}
	if (c->state != CONN_LINGER)	/* lingering input is dropped */
		buf_add(&c->inbuf, tmp, (size_t)n);
}

static int
wants_input(const struct conn *c)
{
	return !c->eof && !c->dead && c->state != CONN_CLOSING &&
	    c->inbuf.len < IN_MAX;
}

/* The listener's and the connections' descriptors of this round. */
static void
gather(struct loop *loop, void *ctx)
{
	struct server *srv = ctx;
	struct conn *c;
	short in, out;

	srv->listen_slot = -1;
	if (srv->listen_fd >= 0 && srv->nconns < MAX_CONNS &&
	    prog_now_ms() >= srv->accept_again_ms)
		srv->listen_slot = (int)loop_add_fd(loop, srv->listen_fd,
		    POLLIN);
	for (c = srv->conns; c != NULL; c = c->next) {
		in = wants_input(c) ? POLLIN : 0;
		out = conn_queued(c) > 0 ? POLLOUT : 0;
		c->slot_in = c->slot_out = -1;
		if (c->in == c->out && (in | out)) {
			c->slot_in = (int)loop_add_fd(loop, c->in, in | out);
			c->slot_out = out ? c->slot_in : -1;
			c->slot_in = in ? c->slot_in : -1;
		} else if (c->in != c->out) {
			if (in)
				c->slot_in = (int)loop_add_fd(loop, c->in, in);
			if (out)
				c->slot_out = (int)loop_add_fd(loop, c->out,
				    out);
		}
	}
	loop_due(loop, next_deadline(srv, prog_now_ms()));
}

static void
accept_all(struct server *srv)
{
	int fd, i;

	for (i = 0; i < 64 && srv->nconns < MAX_CONNS; i++) {
		fd = accept4(srv->listen_fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		/*
		 * Out of descriptors, the connection waits in the backlog;
		 * the listener, still readable, would wake the loop at once
		 * again and again: it is left alone for a while.
		 */
		if (fd < 0 && (errno == EMFILE || errno == ENFILE ||
		    errno == ENOBUFS || errno == ENOMEM))
			srv->accept_again_ms = prog_now_ms() + ACCEPT_PAUSE_MS;
		if (fd < 0)
			return;	/* EAGAIN, or another worker took it */
		server_connection(srv, fd, fd);
	}
}

/* The nearest of the connections' deadlines (a prog_now_ms time). */
static long long
next_deadline(const struct server *srv, long long now)
{
	long long t = LLONG_MAX;
	const struct conn *c;

	if (srv->stopping && srv->conns != NULL && srv->drain_ms < t)
		t = srv->drain_ms;
	if (srv->accept_again_ms > now && srv->accept_again_ms < t)
		t = srv->accept_again_ms;
	for (c = srv->conns; c != NULL; c = c->next) {
		if (c->deadline_ms > 0 && c->deadline_ms < t)
			t = c->deadline_ms;
		if (c->dead || (c->state == CONN_CLOSING &&
		    conn_queued(c) == 0))
			t = now;
	}
	return t;
}

static void
check_deadlines(struct conn *c, long long now)
{
	const struct server_options *o = &c->srv->opt;

	if (conn_queued(c) > 0 && now - c->last_write_ms > o->send_timeout_ms)
		c->dead = 1;	/* the client stopped reading */
	if (c->srv->stopping && now >= c->srv->drain_ms)
		c->dead = 1;	/* the drain is over, whatever is left */
	if (c->deadline_ms == 0 || now < c->deadline_ms)
		return;
	if (c->state == CONN_HEAD || c->state == CONN_BODY)
		reject(c, 408, "request not received in time");
	else if (c->state == CONN_IDLE || c->state == CONN_LINGER)
		c->dead = 1;
	else if (c->state == CONN_CLOSING)
		c->dead = 1;
}

/* Output done: shut the sending side, and read until the client closes. */
static void
start_linger(struct conn *c)
{
	if (!c->is_socket || c->eof) {
		c->dead = 1;
		return;
	}
	shutdown(c->out, SHUT_WR);
	c->state = CONN_LINGER;
	c->deadline_ms = prog_now_ms() + LINGER_MS;
}

static void
conn_free(struct server *srv, struct conn *c)
{
	if ((c->state == CONN_BUSY || c->state == CONN_RAW) &&
	    srv->h.gone != NULL) {
		c->leaving = 1;
		srv->h.gone(c, srv->h.ctx);
	}
	write_logs(c, 1);
	close(c->in);
	if (c->out != c->in)
		close(c->out);
	http_request_free(&c->req);
	buf_free(&c->inbuf);
	buf_free(&c->outbuf);
	buf_free(&c->body);
	free(c);
	srv->nconns--;
}

/* A connection's events of this round: what came, and room to send. */
static void
take_events(struct loop *loop, struct conn *c)
{
	short ev;

	/* A hang-up or an error shows in the next read or write. */
	if (c->slot_in >= 0) {
		ev = loop_revents(loop, (unsigned)c->slot_in);
		if (ev & (POLLIN | POLLHUP | POLLERR))
			receive(c);
	}
	if (c->slot_out >= 0) {
		ev = loop_revents(loop, (unsigned)c->slot_out);
		if (ev & (POLLOUT | POLLHUP | POLLERR))
			flush(c);
	}
	c->slot_in = c->slot_out = -1;
}

/* After the events: reads, writes, parses, times out and closes. */
static void
sweep(struct loop *loop, void *ctx)
{
	struct server *srv = ctx;
	struct conn **p, *c;
	long long now = prog_now_ms();

	if (srv->listen_slot >= 0 &&
	    (loop_revents(loop, (unsigned)srv->listen_slot) & POLLIN))
		accept_all(srv);
	srv->listen_slot = -1;
	for (c = srv->conns; c != NULL; c = c->next)
		take_events(loop, c);
	for (p = &srv->conns; (c = *p) != NULL;) {
		advance(c);
		check_deadlines(c, now);
		if (c->state == CONN_CLOSING && conn_queued(c) == 0 &&
		    !c->dead)
			start_linger(c);
		if (c->dead) {
			*p = c->next;
			conn_free(srv, c);
		} else {
			p = &c->next;
		}
	}
}

/*
 * Sends the answers finished this round, once the program's idle hook
 * has run (it writes the access log first), each in as few writes as
 * its socket takes.
 */
static void
flush_finished(void *ctx)
{
	struct server *srv = ctx;
	struct conn *c;

	for (c = srv->conns; c != NULL; c = c->next)
		if (c->flush_due) {
			c->flush_due = 0;
			flush(c);
		}
}

/*
 * Whether the loop must go on for the server: until stopped and every
 * connection has closed, or, without a listener, until the connections
 * given have closed.
 */
static int
serving(void *ctx)
{
	const struct server *srv = ctx;

	return srv->listen_fd >= 0 || srv->conns != NULL;
}
