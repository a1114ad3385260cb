/*
 * The shared tier (shared.h) for a program that may wait for it:
 * blocking commands, each bounded by the timeout. For relay-fetch,
 * after one fails, Redis is down for REDIS_RETRY_MS, said once, and
 * the program goes on alone; for relay-cache's commands on the tier
 * itself (SHARED_SYNC_STRICT), a failure is the command's, and
 * shared_sync_error says why.
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
	char			*prog;		/* who says it is down */
	long long		 timeout_ms, max_object;
	redisContext		*c;		/* NULL: none now */
	long long		 retry_ms;	/* down: until then */
	int			 said_down;
	redisReply		*last;		/* the entry given last */
	char			 token_base[17];	/* this process's */
	unsigned long long	 tokens;
	int			 strict;	/* failures are the caller's */
	char			 error[512];	/* why the last one failed */
};

struct shared_sync *
shared_sync_open(const struct redis_target *t, const struct shared_options *o,
    const char *prog, int strict)
{
	struct shared_sync *s = xcalloc(1, sizeof *s);

	s->strict = strict == SHARED_SYNC_STRICT;
	s->t = *t;	/* taken */
	s->prefix = xstrdup(o->prefix);
	s->channel = shared_channel(o->prefix);
	shared_token_base(s->token_base);
	s->prog = xstrdup(prog);
	s->timeout_ms = o->timeout_ms;
	s->max_object = o->max_object;
	return s;
}

void
shared_sync_close(struct shared_sync *s)
{
	if (s == NULL)
		return;
	freeReplyObject(s->last);
	if (s->c != NULL)
		redisFree(s->c);
	redis_target_free(&s->t);
	free(s->prefix);
	free(s->channel);
	free(s->prog);
	free(s);
}

long long
shared_sync_max_object(const struct shared_sync *s)
{
	return s->max_object;
}

const char *
shared_sync_error(const struct shared_sync *s)
{
	return s->error;
}

/*
 * A command failed: down for REDIS_RETRY_MS, said once; strict, the
 * reason is kept for the caller, who says it, and the next command
 * tries again.
 */
static void
sync_down(struct shared_sync *s, const char *why)
{
	if (s->strict)
		snprintf(s->error, sizeof s->error, "%s", why);
	else if (!s->said_down++)
		prog_warnx("shared tier %s is down (%s): %s goes on alone",
		    s->t.url, why, s->prog);
	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
	if (!s->strict)
		s->retry_ms = prog_now_ms() + REDIS_RETRY_MS;
}

/* The connection, made if there is none; NULL while Redis is down. */
static redisContext *
sync_connection(struct shared_sync *s)
{
	char why[512];

	if (s->c == NULL && prog_now_ms() >= s->retry_ms &&
	    (s->c = redis_connect_blocking(&s->t, s->timeout_ms, why,
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
	sync_down(s, s->strict ? why : why + strlen("shared tier: "));
	freeReplyObject(r);
	return NULL;
}

/*
 * url's entry in f->entry (SHARED_ENTRY; valid until the next call),
 * unless lease_only; else its lease for lease_ms, its token put in
 * token (SHARED_LEASED); SHARED_BUSY, and f->busy_ms, if another host
 * has it; SHARED_FAILED if the tier is down or said no (the caller
 * then goes on alone). One script does it all, so that no other
 * host's store falls between the look and the lease.
 */
enum shared_found_kind
shared_sync_find(struct shared_sync *s, const char *url, int lease_only,
    long long lease_ms, char token[SHARED_TOKEN_LEN], struct shared_found *f)
{
	struct shared_args args;
	redisContext *c;

	freeReplyObject(s->last);
	s->last = NULL;
	memset(f, 0, sizeof *f);
	token[0] = '\0';
	if ((c = sync_connection(s)) == NULL)
		return f->kind = SHARED_FAILED;
	snprintf(token, SHARED_TOKEN_LEN, "%s%016llx", s->token_base,
	    ++s->tokens);
	shared_find_args(&args, s->prefix, url, token, lease_ms, lease_only);
	s->last = sync_reply(s, redis_eval_blocking(c, &shared_find_script, 2,
	    args.argc, args.argv, args.len));
	shared_args_free(&args);
	shared_found_of(s->last, url, f);
	if (f->kind == SHARED_FAILED && f->why != NULL)
		prog_warnx("%s: shared tier: %s", url, f->why);
	if (f->kind != SHARED_LEASED)
		token[0] = '\0';
	return f->kind;
}

/*
 * Keeps r and its body as url's entry for ttl_s (0: nothing kept),
 * gives up the lease token names (NULL or "": none) and tells every
 * host, as shared_put does.
 */
void
shared_sync_put(struct shared_sync *s, const char *url, const char *token,
    const struct cache_response *r, const void *body, size_t body_len,
    long long ttl_s)
{
	struct shared_args args;
	redisContext *c;

	if ((ttl_s <= 0 && (token == NULL || token[0] == '\0')) ||
	    (c = sync_connection(s)) == NULL)
		return;
	shared_put_args(&args, s->prefix, s->channel, url, token, r, body,
	    body_len, ttl_s);
	freeReplyObject(sync_reply(s, redis_eval_blocking(c,
	    &shared_put_script, 2, args.argc, args.argv, args.len)));
	shared_args_free(&args);
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
