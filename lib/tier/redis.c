/*
 * The connection to the shared tier's Redis: see redis.h.
 *
 * hiredis's asynchronous client does the protocol; its descriptor is a
 * watch of the server's, so its reads and writes happen in the event
 * loop's rounds like a connection's. hiredis 0.14 has no timeouts of
 * its own: every command is an ask in a queue, in the order Redis
 * answers them, with a deadline; one timer looks at the first. When it
 * passes, the connection is dropped, which fails every command on it
 * (hiredis calls each back with no reply), and Redis is down until a
 * new connection, tried every REDIS_RETRY_MS, is made.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/num.h"
#include "base/prog.h"
#include "base/sha1.h"
#include "net/metrics.h"
#include "tier/redis.h"

#define PASSWORD_MAX	1024
#define PASSWORD_FILE_MAX 65536	/* the file, its first line the password */

/* One of the two connections: commands, or the subscription. */
struct link {
	struct redis		*r;
	redisAsyncContext	*ac;		/* NULL: none now */
	struct watch		*io;
	short			 events;
	int			 connected;
	long long		 connect_by_ms;	/* while connecting */
};

struct redis_ask {
	struct redis_ask	*next;
	long long		 deadline_ms;
	redis_reply_fn		*fn;
	void			*ctx;		/* NULL: cancelled */
	struct redis_script	*script;	/* EVALSHA, for NOSCRIPT */
	int			 argc;
	char			**argv;		/* a script's, kept to resend */
	size_t			*argvlen;
};

struct redis {
	struct loop		*loop;
	struct redis_target	 target;
	long long		 timeout_ms;
	struct link		 cmd, sub;
	const char		*channel;	/* NULL: no subscription */
	redis_message_fn	*on_message;
	void			*message_ctx;
	struct redis_ask	*asks, **asks_tail;	/* cmd's, in order */
	struct watch		*timer;
	long long		 retry_ms;	/* while down: next try */
	int			 up;
	int			 said_down;	/* in the log, once */
	long long		 failures;
	int			 closing;
};

static void link_open(struct link *);

/* Reads the first line of the password file, whole, or says why not. */
static char *
read_password(const char *path, char *why, size_t len)
{
	struct buf text = BUF_INIT;
	char *password = NULL, reason[200];
	size_t end;

	if (io_read_file(path, PASSWORD_FILE_MAX, &text, reason,
	    sizeof reason) < 0) {
		snprintf(why, len, "cannot read '%s': %s", path, reason);
	} else {
		end = strcspn(buf_cstr(&text), "\r\n");
		if (end == 0 || end > PASSWORD_MAX ||
		    memchr(text.data, '\0', text.len) != NULL)
			snprintf(why, len, "'%s' holds no password of 1 to %d "
			    "bytes on its first line", path, PASSWORD_MAX);
		else
			password = xstrndup(text.data, end);
	}
	buf_free(&text);
	return password;
}

/* host, resolved now, so that no connection waits for a name later. */
static char *
resolve(const char *host, char *why, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char numeric[NI_MAXHOST];
	int rc;

	if ((rc = getaddrinfo(host, NULL, &hints, &ai)) != 0) {
		snprintf(why, len, "cannot resolve '%s': %s", host,
		    gai_strerror(rc));
		return NULL;
	}
	rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, numeric, sizeof numeric,
	    NULL, 0, NI_NUMERICHOST);
	freeaddrinfo(ai);
	if (rc != 0) {
		snprintf(why, len, "cannot resolve '%s': %s", host,
		    gai_strerror(rc));
		return NULL;
	}
	return xstrdup(numeric);
}

/*
 * redis://HOST[:PORT][/DB], with the password, if any, from
 * password_file (never in the URL, which a process list shows).
 * Returns -1 with the reason if it is not one.
 */
int
redis_target_parse(const char *url, const char *password_file,
    struct redis_target *t, char *why, size_t len)
{
	const char *p = url + 8, *host_end, *port_end;
	char *host = NULL;
	long long port = 6379, db = 0;
	struct buf num = BUF_INIT;

	memset(t, 0, sizeof *t);
	if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(why, len, "'%s': TLS (rediss://) needs hiredis 1.0 "
		    "or later, and this relay is built with an older one", url);
		return -1;
	}
	if (strncmp(url, "redis://", 8) != 0 || strchr(p, '@') != NULL) {
		snprintf(why, len, "'%s' is not redis://HOST[:PORT][/DB]%s",
		    url, strchr(url, '@') != NULL ? " (a password goes in "
		    "--shared-password-file)" : "");
		return -1;
	}
	if (*p == '[')
		host_end = strchr(p, ']');
	else
		host_end = p + strcspn(p, ":/");
	if (host_end == NULL || host_end == p || (*p == '[' &&
	    host_end == p + 1))
		goto bad;
	host = *p == '[' ? xstrndup(p + 1, (size_t)(host_end - p - 1)) :
	    xstrndup(p, (size_t)(host_end - p));
	p = *host_end == ']' ? host_end + 1 : host_end;
	if (*p == ':') {
		port_end = p + 1 + strcspn(p + 1, "/");
		buf_add(&num, p + 1, (size_t)(port_end - p - 1));
		if (num_parse(buf_cstr(&num), 1, 65535, &port) < 0)
			goto bad;
		p = port_end;
	}
	if (*p == '/' && p[1] != '\0' && num_parse(p + 1, 0, 1000000,
	    &db) < 0)
		goto bad;
	if (*p != '\0' && *p != '/')
		goto bad;
	if (password_file != NULL &&
	    (t->password = read_password(password_file, why, len)) == NULL)
		goto fail;
	if ((t->host = resolve(host, why, len)) == NULL)
		goto fail;
	t->url = xstrdup(url);
	t->port = (int)port;
	t->db = db;
	free(host);
	buf_free(&num);
	return 0;
bad:
	snprintf(why, len, "'%s' is not redis://HOST[:PORT][/DB]", url);
fail:
	free(host);
	buf_free(&num);
	redis_target_free(t);
	return -1;
}

void
redis_target_free(struct redis_target *t)
{
	free(t->url);
	free(t->host);
	free(t->password);
	memset(t, 0, sizeof *t);
}

/* A reply that is no error, nor the connection's failure. */
static int
reply_ok(const redisReply *reply)
{
	return reply != NULL && reply->type != REDIS_REPLY_ERROR;
}

/*
 * For a program that may wait (relay-cache): a blocking connection,
 * every command bounded by timeout_ms, logged in and on its database.
 */
redisContext *
redis_connect_blocking(const struct redis_target *t, long long timeout_ms,
    char *why, size_t len)
{
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	redisContext *c = redisConnectWithTimeout(t->host, t->port, tv);
	redisReply *reply = NULL;

	if (c == NULL || c->err != 0 || redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(why, len, "cannot connect to %s: %s", t->url,
		    c != NULL ? c->errstr : "out of memory");
		goto fail;
	}
	if (t->password != NULL && !reply_ok(reply = redisCommand(c,
	    "AUTH %s", t->password))) {
		snprintf(why, len, "%s refused the password: %s", t->url,
		    reply != NULL ? reply->str : c->errstr);
		goto fail;
	}
	freeReplyObject(reply);
	if (t->db != 0 && !reply_ok(reply = redisCommand(c, "SELECT %lld",
	    t->db))) {
		snprintf(why, len, "%s has no database %lld: %s", t->url,
		    t->db, reply != NULL ? reply->str : c->errstr);
		goto fail;
	}
	freeReplyObject(reply);
	return c;
fail:
	freeReplyObject(reply);
	if (c != NULL)
		redisFree(c);
	return NULL;
}

/* The timer's next deadline: the first command's, a connect, a retry. */
static void
reschedule(struct redis *r)
{
	long long at = r->up ? 0 : r->retry_ms;
	const struct link *links[] = { &r->cmd, &r->sub };
	size_t i;

	for (i = 0; i < 2; i++)
		if (links[i]->ac != NULL && !links[i]->connected &&
		    (at == 0 || links[i]->connect_by_ms < at))
			at = links[i]->connect_by_ms;
	if (r->asks != NULL && (at == 0 || r->asks->deadline_ms < at))
		at = r->asks->deadline_ms;
	watch_deadline(r->timer, at);
}

static void
ask_free(struct redis_ask *a)
{
	int i;

	for (i = 0; a->argv != NULL && i < a->argc; i++)
		free(a->argv[i]);
	free(a->argv);
	free(a->argvlen);
	free(a);
}

/* Redis is down: said once, and tried again in a while. */
static void
went_down(struct redis *r, const char *why)
{
	if (r->closing)
		return;
	if (r->up || !r->said_down) {
		r->failures++;
		metrics_shared_lost();
	}
	if (!r->said_down++)
		prog_warnx("shared tier %s is down (%s): this host goes on "
		    "alone and tries again every %d ms", r->target.url, why,
		    REDIS_RETRY_MS);
	r->up = 0;
	r->retry_ms = prog_now_ms() + REDIS_RETRY_MS;
	reschedule(r);
}

/*
 * Drops a link's connection; its commands fail (hiredis calls them
 * back). Inside a callback hiredis frees it later: it is detached from
 * the link and its watch now, so that a new one may take their place.
 */
static void
link_drop(struct link *k, const char *why)
{
	redisAsyncContext *ac = k->ac;

	if (ac == NULL)
		return;
	k->ac = NULL;
	k->connected = 0;
	memset(&ac->ev, 0, sizeof ac->ev);
	loop_unwatch(k->io);
	k->io = NULL;
	went_down(k->r, why);
	redisAsyncFree(ac);
}

/* Both are up: said once, if they were down. */
static void
maybe_up(struct redis *r)
{
	if (!r->cmd.connected || (r->channel != NULL && !r->sub.connected))
		return;
	if (!r->up && r->said_down) {
		prog_warnx("shared tier %s is back: this host shares again",
		    r->target.url);
		r->said_down = 0;
	}
	r->up = 1;
	reschedule(r);
}

static void
ev_update(struct link *k, short add, short del)
{
	k->events = (short)((k->events | add) & ~del);
	if (k->io != NULL)
		watch_events(k->io, k->events);
}

static void ev_add_read(void *p) { ev_update(p, POLLIN, 0); }
static void ev_del_read(void *p) { ev_update(p, 0, POLLIN); }
static void ev_add_write(void *p) { ev_update(p, POLLOUT, 0); }
static void ev_del_write(void *p) { ev_update(p, 0, POLLOUT); }

static void
ev_cleanup(void *p)
{
	struct link *k = p;

	loop_unwatch(k->io);
	k->io = NULL;
}

static void
on_io(struct watch *w, short revents, void *ctx)
{
	struct link *k = ctx;
	redisAsyncContext *ac = k->ac;

	(void)w;
	if (ac != NULL && revents & (POLLIN | POLLERR | POLLHUP))
		redisAsyncHandleRead(ac);
	if ((ac = k->ac) != NULL && revents & POLLOUT)
		redisAsyncHandleWrite(ac);
}

static struct link *
link_of(const redisAsyncContext *ac)
{
	return ac->data;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct link *k = link_of(ac);

	if (status != REDIS_OK) {
		/* hiredis frees ac after this: no drop of ours. */
		k->ac = NULL;
		went_down(k->r, ac->errstr);
		return;
	}
	if (k == &k->r->cmd) {	/* the subscription: once confirmed */
		k->connected = 1;
		maybe_up(k->r);
	}
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct link *k = link_of(ac);

	if (k->ac != ac)
		return;		/* dropped by link_drop */
	k->ac = NULL;
	k->connected = 0;
	if (status != REDIS_OK || !k->r->closing)
		went_down(k->r, ac->errstr[0] != '\0' ? ac->errstr :
		    "connection closed");
}

/* The first command's answer (hiredis keeps the order), or its failure. */
static void
on_reply(redisAsyncContext *ac, void *reply_p, void *privdata)
{
	struct redis *r = link_of(ac)->r;
	struct redis_ask *a = privdata, **p;
	redisReply *reply = reply_p;

	for (p = &r->asks; *p != NULL && *p != a; p = &(*p)->next)
		;	/* in order: the first, unless a script was resent */
	if (*p == a && (*p = a->next) == NULL)
		r->asks_tail = p;
	if (reply != NULL && a->script != NULL && reply->type ==
	    REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
	    r->cmd.ac != NULL) {
		/* Not loaded there yet (a restart, a flush): its text once. */
		memcpy(a->argv[0], "EVAL", 5);	/* in EVALSHA's room */
		a->argvlen[0] = 4;
		free(a->argv[1]);
		a->argv[1] = xstrdup(a->script->text);
		a->argvlen[1] = strlen(a->argv[1]);
		a->script = NULL;
		a->next = NULL;
		*r->asks_tail = a;
		r->asks_tail = &a->next;
		redisAsyncCommandArgv(r->cmd.ac, on_reply, a, a->argc,
		    (const char **)a->argv, a->argvlen);
		return;
	}
	if (a->ctx != NULL)
		a->fn(a->ctx, reply);
	ask_free(a);
	reschedule(r);
}

/* Logging in and choosing the database: come first on a connection. */
static void
on_setup(void *ctx, const redisReply *reply)
{
	struct link *k = ctx;

	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		link_drop(k, reply->str);
}

/*
 * The subscription's confirmation, ["subscribe", channel, 1], then its
 * messages, ["message", channel, data].
 */
static void
on_subscribed(redisAsyncContext *ac, void *reply_p, void *privdata)
{
	struct redis *r = privdata;
	redisReply *reply = reply_p;

	(void)ac;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		link_drop(&r->sub, reply->str);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 3 && reply->element[0]->type ==
	    REDIS_REPLY_STRING && strcmp(reply->element[0]->str,
	    "subscribe") == 0) {
		r->sub.connected = 1;
		maybe_up(r);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 3 || reply->element[0]->type !=
	    REDIS_REPLY_STRING || strcmp(reply->element[0]->str,
	    "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
		return;
	r->on_message(r->message_ctx, reply->element[2]->str,
	    reply->element[2]->len);
}

static struct redis_ask *
ask_new(redis_reply_fn *fn, void *ctx, long long timeout_ms)
{
	struct redis_ask *a = xcalloc(1, sizeof *a);

	a->fn = fn;
	a->ctx = ctx;
	a->deadline_ms = prog_now_ms() + timeout_ms;
	return a;
}

/* Sends on the command link, as the queue's last; 0 if sent. */
static int
send_ask(struct redis *r, struct redis_ask *a, int argc, const char **argv,
    const size_t *argvlen)
{
	if (redisAsyncCommandArgv(r->cmd.ac, on_reply, a, argc, argv,
	    argvlen) != REDIS_OK) {
		ask_free(a);
		return -1;
	}
	*r->asks_tail = a;
	r->asks_tail = &a->next;
	reschedule(r);
	return 0;
}

/* AUTH and SELECT, as the connection's first commands. */
static void
link_setup(struct link *k)
{
	struct redis *r = k->r;
	struct buf db = BUF_INIT;
	const char *argv[2];

	if (r->target.password != NULL) {
		argv[0] = "AUTH";
		argv[1] = r->target.password;
		if (k == &r->cmd)
			send_ask(r, ask_new(on_setup, k, r->timeout_ms), 2,
			    argv, NULL);
		else
			redisAsyncCommandArgv(k->ac, NULL, NULL, 2, argv,
			    NULL);
	}
	if (k == &r->cmd && r->target.db != 0) {
		buf_addll(&db, r->target.db);
		argv[0] = "SELECT";
		argv[1] = buf_cstr(&db);
		send_ask(r, ask_new(on_setup, k, r->timeout_ms), 2, argv,
		    NULL);
	}
	buf_free(&db);
	if (k == &r->sub) {
		argv[0] = "SUBSCRIBE";
		argv[1] = r->channel;
		redisAsyncCommandArgv(k->ac, on_subscribed, r, 2, argv, NULL);
	}
}

/* A new connection, made without waiting; on_connect says how it went. */
static void
link_open(struct link *k)
{
	struct redis *r = k->r;
	redisAsyncContext *ac = redisAsyncConnect(r->target.host,
	    r->target.port);

	if (ac == NULL || ac->err != 0) {
		went_down(r, ac != NULL ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		return;
	}
	k->ac = ac;
	k->connected = 0;
	k->connect_by_ms = prog_now_ms() + r->timeout_ms;
	k->events = 0;
	ac->data = k;
	ac->ev.data = k;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	k->io = loop_watch(r->loop, ac->c.fd, 0, on_io, k);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	ev_add_write(k);	/* the connect's end */
	link_setup(k);
	reschedule(r);
}

/* The first command, or a connection, is late; or a retry is due. */
static void
on_timer(struct watch *w, short revents, void *ctx)
{
	struct redis *r = ctx;
	long long now = prog_now_ms();
	struct link *links[] = { &r->cmd, &r->sub };
	size_t i;

	(void)w, (void)revents;
	for (i = 0; i < 2; i++)
		if (links[i]->ac != NULL && !links[i]->connected &&
		    now >= links[i]->connect_by_ms)
			link_drop(links[i], "connect timed out");
	if (r->asks != NULL && now >= r->asks->deadline_ms)
		link_drop(&r->cmd, "a command timed out");
	if (!r->up && r->retry_ms > 0 && now >= r->retry_ms) {
		r->retry_ms = 0;
		for (i = 0; i < 2; i++)
			if (links[i]->ac == NULL && (links[i] == &r->cmd ||
			    r->channel != NULL))
				link_open(links[i]);
	}
	reschedule(r);
}

/*
 * Starts connecting to t (copied), with every connect and command
 * bounded by timeout_ms; channel, if not NULL, is subscribed to and
 * its messages given to on_message. Commands fail until it is up.
 */
struct redis *
redis_open(struct loop *loop, const struct redis_target *t,
    long long timeout_ms, const char *channel, redis_message_fn *on_message,
    void *ctx)
{
	struct redis *r = xcalloc(1, sizeof *r);

	r->loop = loop;
	r->target.url = xstrdup(t->url);
	r->target.host = xstrdup(t->host);
	r->target.port = t->port;
	r->target.db = t->db;
	r->target.password = t->password != NULL ? xstrdup(t->password) :
	    NULL;
	r->timeout_ms = timeout_ms;
	r->channel = channel;
	r->on_message = on_message;
	r->message_ctx = ctx;
	r->asks_tail = &r->asks;
	r->cmd.r = r->sub.r = r;
	r->timer = loop_watch(loop, -1, 0, on_timer, r);
	link_open(&r->cmd);
	if (channel != NULL)
		link_open(&r->sub);
	return r;
}

/* Closes both connections; their commands' callbacks are not called. */
void
redis_close(struct redis *r)
{
	struct redis_ask *a;

	if (r == NULL)
		return;
	r->closing = 1;
	for (a = r->asks; a != NULL; a = a->next)
		a->ctx = NULL;
	if (r->cmd.ac != NULL)
		redisAsyncFree(r->cmd.ac);
	if (r->sub.ac != NULL)
		redisAsyncFree(r->sub.ac);
	loop_unwatch(r->timer);
	redis_target_free(&r->target);
	free(r);
}

/* Whether commands wait for their replies (each for its deadline at most). */
int
redis_busy(const struct redis *r)
{
	return r != NULL && r->asks != NULL;
}

/*
 * Commands go out while the connection is being made too, after its
 * AUTH and SELECT, so that a process started for one connection
 * (inetd) shares from its first request; a connect that fails in time
 * fails them.
 */
static int
sendable(const struct redis *r)
{
	return r != NULL && r->cmd.ac != NULL && !r->closing;
}

int
redis_up(const struct redis *r)
{
	return r != NULL && r->up;
}

/* Times it went down (a failed connect or command), for the metrics. */
long long
redis_failures(const struct redis *r)
{
	return r != NULL ? r->failures : 0;
}

/*
 * Sends a command (argvlen NULL: C strings), setting *ask to it: fn
 * is called once with its reply, or with NULL if it failed, unless
 * cancelled first. Returns -1, and calls nothing, if Redis is down.
 */
int
redis_command(struct redis *r, int argc, const char **argv,
    const size_t *argvlen, redis_reply_fn *fn, void *ctx,
    struct redis_ask **ask)
{
	struct redis_ask *a;

	if (!sendable(r))
		return -1;
	a = ask_new(fn, ctx, r->timeout_ms);
	if (send_ask(r, a, argc, argv, argvlen) < 0)
		return -1;
	*ask = a;
	return 0;
}

/*
 * Runs a script on nkeys keys and further arguments (argv: the keys,
 * then the arguments) by its SHA-1, or, where Redis has not loaded it,
 * by its text; as redis_command otherwise.
 */
int
redis_eval(struct redis *r, struct redis_script *s, int nkeys, int argc,
    const char **argv, const size_t *argvlen, redis_reply_fn *fn,
    void *ctx, struct redis_ask **ask)
{
	struct redis_ask *a;
	struct buf n = BUF_INIT;
	int i;

	if (!sendable(r))
		return -1;
	if (s->sha[0] == '\0')
		sha1_hex(s->text, strlen(s->text), s->sha);
	a = ask_new(fn, ctx, r->timeout_ms);
	a->script = s;
	a->argc = argc + 3;
	a->argv = xcalloc((size_t)a->argc, sizeof *a->argv);
	a->argvlen = xcalloc((size_t)a->argc, sizeof *a->argvlen);
	a->argv[0] = xstrdup("EVALSHA");	/* room for "EVAL" too */
	a->argv[1] = xstrdup(s->sha);
	buf_addll(&n, nkeys);
	a->argv[2] = xstrdup(buf_cstr(&n));
	buf_free(&n);
	for (i = 0; i < 3; i++)
		a->argvlen[i] = strlen(a->argv[i]);
	for (i = 0; i < argc; i++) {
		a->argvlen[i + 3] = argvlen != NULL ? argvlen[i] :
		    strlen(argv[i]);
		a->argv[i + 3] = xmalloc(a->argvlen[i + 3] + 1);
		memcpy(a->argv[i + 3], argv[i], a->argvlen[i + 3]);
		a->argv[i + 3][a->argvlen[i + 3]] = '\0';
	}
	if (send_ask(r, a, a->argc, (const char **)a->argv, a->argvlen) < 0)
		return -1;
	*ask = a;
	return 0;
}

/* Its caller has gone: the reply, when it comes, is dropped. */
void
redis_cancel(struct redis_ask *a)
{
	if (a != NULL)
		a->ctx = NULL;
}
