/*
 * The shared tier (shared.h) for a program that may wait for it,
 * relay-fetch: blocking commands, each bounded by the timeout; after
 * one fails, Redis is down for REDIS_RETRY_MS, said once, and the
 * program goes on alone.
 */
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
};

struct shared_sync *
shared_sync_open(const struct redis_target *t, const struct shared_options *o,
    const char *prog)
{
	struct shared_sync *s = xcalloc(1, sizeof *s);

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

/* A command failed: down for REDIS_RETRY_MS, said once. */
static void
sync_down(struct shared_sync *s, const char *why)
{
	if (!s->said_down++)
		prog_warnx("shared tier %s is down (%s): %s goes on alone",
		    s->t.url, why, s->prog);
	if (s->c != NULL)
		redisFree(s->c);
	s->c = NULL;
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

/* A reply that is no failure, or NULL with Redis marked down. */
static redisReply *
sync_reply(struct shared_sync *s, redisReply *r)
{
	if (r != NULL && r->type != REDIS_REPLY_ERROR)
		return r;
	sync_down(s, r != NULL ? r->str : s->c->errstr);
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
