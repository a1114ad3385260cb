/*
 * The shared tier (shared.h) for relay-cache's commands on it: blocking
 * commands, each bounded by the timeout; a failure is the command's,
 * and shared_sync_error says why.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prog.h"
#include "tier/shared.h"

struct shared_sync {
	struct redis_target	 t;
	char			*prefix;
	char			*channel;
	long long		 timeout_ms;
	redisContext		*c;		/* NULL: none now */
	char			 error[512];	/* why the last one failed */
};

struct shared_sync *
shared_sync_open(const struct redis_target *t, const struct shared_options *o)
{
	struct shared_sync *s = xcalloc(1, sizeof *s);

	s->t = *t;	/* taken */
	s->prefix = xstrdup(o->prefix);
	s->channel = shared_channel(o->prefix);
	s->timeout_ms = o->timeout_ms;
	return s;
}

void
shared_sync_close(struct shared_sync *s)
{
	if (s == NULL)
		return;
	if (s->c != NULL)
		redisFree(s->c);
	redis_target_free(&s->t);
	free(s->prefix);
	free(s->channel);
	free(s);
}

const char *
shared_sync_error(const struct shared_sync *s)
{
	return s->error;
}

/*
 * A command failed: the reason is kept for the caller, who says it,
 * and the next command connects again.
 */
static void
sync_down(struct shared_sync *s, const char *why)
{
	snprintf(s->error, sizeof s->error, "%s", why);
	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
}

/* The connection, made if there is none; NULL while Redis is down. */
static redisContext *
sync_connection(struct shared_sync *s)
{
	char why[512];

	if (s->c == NULL && (s->c = redis_connect_blocking(&s->t, s->timeout_ms, why,
	    sizeof why)) == NULL)
		sync_down(s, why);
	return s->c;
}

/* Whether the tier answers a connection now (else shared_sync_error). */
int
shared_sync_ready(struct shared_sync *s)
{
	return sync_connection(s) != NULL;
}

/* A reply that is no failure, or NULL with Redis marked down. */
static redisReply *
sync_reply(struct shared_sync *s, redisReply *r)
{
	char why[512];

	if (r != NULL && r->type != REDIS_REPLY_ERROR)
		return r;
	snprintf(why, sizeof why, "shared tier: %s",
	    r != NULL ? r->str : s->c->errstr);
	sync_down(s, why);
	freeReplyObject(r);
	return NULL;
}

/* Tells every relay-serve on the tier: "rm URL", "purge GLOB". */
static int
sync_tell(struct shared_sync *s, redisContext *c, const char *what,
    const char *arg)
{
	struct buf message = BUF_INIT;
	redisReply *r;

	buf_printf(&message, "%s %s", what, arg);
	r = sync_reply(s, redisCommand(c, "PUBLISH %s %s", s->channel,
	    buf_cstr(&message)));
	buf_free(&message);
	freeReplyObject(r);
	return r != NULL ? 0 : -1;
}

/* A key's UNLINK: how many went (0 or 1), or -1. */
static long long
sync_unlink(struct shared_sync *s, redisContext *c, const char *key)
{
	redisReply *r = sync_reply(s, redisCommand(c, "UNLINK %s", key));
	long long n;

	if (r == NULL)
		return -1;
	n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return n;
}

/*
 * Removes url's entry from the tier and tells every host to remove it
 * from its file; returns 1 if the tier had one, 0 if not, -1 if the
 * tier failed (shared_sync_error).
 */
long long
shared_sync_remove(struct shared_sync *s, const char *url)
{
	struct buf key = BUF_INIT;
	redisContext *c;
	long long n;

	if ((c = sync_connection(s)) == NULL)
		return -1;
	shared_key(&key, s->prefix, url, "entry");
	n = sync_unlink(s, c, buf_cstr(&key));
	buf_free(&key);
	if (n < 0 || sync_tell(s, c, "rm", url) < 0)
		return -1;
	return n;
}

/* Whether the entry under key is one whose URL matches glob. */
static int
sync_matches(struct shared_sync *s, redisContext *c, const char *key,
    const char *glob, int *failed)
{
	redisReply *v = sync_reply(s, redisCommand(c, "GET %s", key));
	struct shared_entry e;
	const char *why;
	int yes;

	if (v == NULL) {
		*failed = 1;
		return 0;
	}
	yes = v->type == REDIS_REPLY_STRING &&
	    shared_entry_decode(v->str, v->len, NULL, &e, &why) == 0 &&
	    fnmatch(glob, e.r.url, 0) == 0;
	shared_entry_free(&e);
	freeReplyObject(v);
	return yes;
}

/* One SCAN step's keys removed (those matching glob, if not NULL). */
static long long
sync_purge_keys(struct shared_sync *s, redisContext *c, const redisReply *keys,
    const char *glob)
{
	long long n = 0, one;
	int failed = 0;
	size_t i;

	for (i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if (glob != NULL && !sync_matches(s, c, keys->element[i]->str,
		    glob, &failed)) {
			if (failed)
				return -1;
			continue;
		}
		if ((one = sync_unlink(s, c, keys->element[i]->str)) < 0)
			return -1;
		n += one;
	}
	return n;
}

/*
 * Removes the tier's entries whose URL matches glob (NULL: all) and
 * tells every host to do the same in its file; returns how many went
 * from the tier, or -1 (shared_sync_error).
 */
long long
shared_sync_purge(struct shared_sync *s, const char *glob)
{
	struct buf pattern = BUF_INIT;
	redisContext *c;
	redisReply *r;
	char *cursor = xstrdup("0");
	long long n = 0, step;

	if ((c = sync_connection(s)) == NULL) {
		free(cursor);
		return -1;
	}
	buf_adds(&pattern, s->prefix);
	buf_adds(&pattern, "{*}:entry");
	do {
		r = sync_reply(s, redisCommand(c, "SCAN %s MATCH %s COUNT 500",
		    cursor, buf_cstr(&pattern)));
		if (r != NULL && (r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY)) {
			sync_down(s, "shared tier: SCAN answered another shape");
			freeReplyObject(r);
			r = NULL;
		}
		step = r != NULL ? sync_purge_keys(s, c, r->element[1], glob) :
		    -1;
		free(cursor);
		cursor = r != NULL ? xstrdup(r->element[0]->str) : NULL;
		freeReplyObject(r);
		n = step < 0 ? -1 : n + step;
	} while (n >= 0 && strcmp(cursor, "0") != 0);
	free(cursor);
	buf_free(&pattern);
	if (n < 0 || sync_tell(s, c, "purge", glob != NULL ? glob : "*") < 0)
		return -1;
	return n;
}
