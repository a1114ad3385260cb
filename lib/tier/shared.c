/*
 * The shared tier: see shared.h. The scripts run whole in Redis, so
 * each decision is atomic across hosts without a lock of ours; their
 * clock is Redis's (TIME), one for every host.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/num.h"
#include "base/prog.h"
#include "base/sha1.h"
#include "store/store.h"
#include "tier/shared.h"

#define REPORT_KEEP_MS	60000	/* a gathering's rows, in Redis */

struct shared {
	struct loop		*loop;
	struct redis		*redis;
	long long		 timeout_ms;
	shared_report_fn	*report;
	void			*report_ctx;
	char			*prefix;
	char			*channel;
	long long		 max_object;
	struct shared_events	 ev;
	void			*ev_ctx;
	char			 token_base[17];	/* this process's */
	unsigned long long	 tokens;
};

struct shared_ask {
	struct shared		*sh;
	struct redis_ask	*ask;
	shared_found_fn		*found;
	shared_decided_fn	*decided;
	void			*ctx;
	char			*url;		/* find: the entry's */
	struct gcra_limit	 limit;		/* take */
	long long		 wait_us;
	shared_gathered_fn	*gathered;	/* gather */
	struct watch		*timer;		/* …until the hosts answer */
	char			 id[SHARED_TOKEN_LEN];
};

/*
 * find: the entry, unless only the lease is wanted (ARGV[3]); else
 * the lease, if no one holds it; else how long its holder has yet.
 */
/* A script's keys and arguments, and the buffers they point into. */
struct shared_args {
	const char	*argv[7];
	size_t		 len[7];
	int		 argc;
	struct buf	 held[5];
};

static struct redis_script shared_find_script = { .text =
	"if ARGV[3] ~= 'lease' then\n"
	"  local v = redis.call('GET', KEYS[1])\n"
	"  if v then return {1, v} end\n"
	"end\n"
	"if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
	"  return {2}\n"
	"end\n"
	"return {3, redis.call('PTTL', KEYS[2])}\n",
};

/* put: the entry (unless ARGV[3] is 0), the lease given up, the end told. */
static struct redis_script shared_put_script = { .text =
	"if ARGV[3] ~= '0' then\n"
	"  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
	"end\n"
	"if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
	"  redis.call('DEL', KEYS[2])\n"
	"end\n"
	"redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
	"return 1\n",
};

/*
 * take: GCRA's step (gcra.c) on the bucket's arrival time, at Redis's
 * time; returns the arrival time before and that time, from which the
 * caller computes the whole decision exactly as the script made it.
 * ARGV: the interval, the burst's tolerance, how long it may wait (µs).
 */
static struct redis_script take_script = { .text =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local old = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"local tat = math.max(old, now)\n"
	"if tat - now - tonumber(ARGV[2]) <= tonumber(ARGV[3]) then\n"
	"  tat = tat + tonumber(ARGV[1])\n"
	"  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',\n"
	"      math.floor((tat - now) / 1000) + 1000)\n"
	"end\n"
	"return {string.format('%.0f', old), string.format('%.0f', now)}\n",
};

/* pause: nothing through for ARGV[1] ms from now (gcra_pause). */
static struct redis_script pause_script = { .text =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local paused = now + tonumber(ARGV[1]) * 1000 + tonumber(ARGV[2])\n"
	"local old = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"if paused > old then\n"
	"  redis.call('SET', KEYS[1], string.format('%.0f', paused), 'PX',\n"
	"      math.floor((paused - now) / 1000) + 1000)\n"
	"end\n"
	"return 1\n",
};

/* PREFIX{sha1(id)}:kind, the hash tag keeping an id's keys together. */
void
shared_key(struct buf *out, const char *prefix, const char *id,
    const char *kind)
{
	char sha[2 * SHA1_LEN + 1];

	sha1_hex(id, strlen(id), sha);
	buf_adds(out, prefix);
	buf_addc(out, '{');
	buf_adds(out, sha);
	buf_adds(out, "}:");
	buf_adds(out, kind);
}

/* The channel every host listens to for the others' news. */
char *
shared_channel(const char *prefix)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, prefix);
	buf_adds(&b, "events");
	return buf_take(&b);
}

/*
 * Parses one of the options (SHARED_LONG, SHARED_OPT_MAX_OBJECT);
 * returns 0 if opt is none of them. A bad value is a usage error.
 */
int
shared_option(struct shared_options *o, int opt, const char *arg)
{
	switch (opt) {
	case SHARED_OPT_URL:
		o->url = arg;
		break;
	case SHARED_OPT_MAX_OBJECT:
		if (num_size(arg, &o->max_object) < 0 ||
		    o->max_object > 512LL << 20)
			prog_errx(EXIT_USAGE,
			    "bad --shared-max-object-size '%s': "
			    "expected bytes, or a number with K or M, up to "
			    "512M (Redis's largest string)", arg);
		break;
	case SHARED_OPT_PASSWORD_FILE:
		o->password_file = arg;
		break;
	case SHARED_OPT_PREFIX:
		if (arg[0] == '\0' || strlen(arg) > 64 ||
		    strpbrk(arg, "{} \t\r\n") != NULL)
			prog_errx(EXIT_USAGE,
			    "bad --shared-prefix '%s': expected "
			    "1 to 64 bytes without braces or spaces", arg);
		o->prefix = arg;
		break;
	case SHARED_OPT_TIMEOUT:
		if (num_parse(arg, 1, 60000, &o->timeout_ms) < 0)
			prog_errx(EXIT_USAGE,
			    "bad --shared-timeout '%s': expected "
			    "1 to 60000 ms", arg);
		break;
	default:
		return 0;
	}
	return 1;
}

/* Where --shared says, or -1 with the reason; 1 if there is none. */
int
shared_target(const struct shared_options *o, struct redis_target *t,
    char *why, size_t len)
{
	const char *url = o->url != NULL ? o->url : getenv("RELAY_SHARED");

	if (url == NULL || url[0] == '\0')
		return 1;
	return redis_target_parse(url, o->password_file, t, why, len);
}

/* A gathering's name: a token (hexadecimal), as shared_gather makes them. */
static int
is_token(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n > 0 && n < SHARED_TOKEN_LEN && s[n] == '\0';
}

/*
 * "done 1 URL", "done 0 URL", "rm URL", "purge GLOB" or "report ID",
 * from any host.
 */
static void
on_message(void *ctx, const char *p, size_t n)
{
	struct shared *sh = ctx;
	char *text = xstrndup(p, n);

	if (n > 7 && strncmp(text, "done ", 5) == 0 && (text[5] == '0' ||
	    text[5] == '1') && text[6] == ' ' && sh->ev.done != NULL)
		sh->ev.done(sh->ev_ctx, text + 7, text[5] == '1');
	else if (n > 3 && strncmp(text, "rm ", 3) == 0 && sh->ev.purge != NULL)
		sh->ev.purge(sh->ev_ctx, text + 3, 0);
	else if (n > 6 && strncmp(text, "purge ", 6) == 0 &&
	    sh->ev.purge != NULL)
		sh->ev.purge(sh->ev_ctx, text + 6, 1);
	else if (n > 7 && strncmp(text, "report ", 7) == 0 &&
	    is_token(text + 7) && sh->report != NULL)
		sh->report(sh->report_ctx, text + 7);
	free(text);
}

/* Tokens unique to this process: 64 random bits, then a count. */
static void
shared_token_base(char out[17])
{
	unsigned long long r = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, &r, sizeof r) != (ssize_t)sizeof r)
		r = (unsigned long long)prog_clock_us() ^
		    ((unsigned long long)getpid() << 32);
	if (fd >= 0)
		close(fd);
	snprintf(out, 17, "%016llx", r);
}

struct shared *
shared_open(struct loop *loop, const struct redis_target *t,
    const struct shared_options *o, const struct shared_events *ev,
    void *ctx)
{
	struct shared *sh = xcalloc(1, sizeof *sh);

	sh->loop = loop;
	sh->timeout_ms = o->timeout_ms;
	sh->prefix = xstrdup(o->prefix);
	sh->channel = shared_channel(o->prefix);
	sh->max_object = o->max_object;
	sh->ev = *ev;
	sh->ev_ctx = ctx;
	shared_token_base(sh->token_base);
	sh->redis = redis_open(loop, t, o->timeout_ms, sh->channel, on_message,
	    sh);
	return sh;
}

void
shared_close(struct shared *sh)
{
	if (sh == NULL)
		return;
	redis_close(sh->redis);
	free(sh->prefix);
	free(sh->channel);
	free(sh);
}

/* Whether commands are still under way: a put to land before exit. */
int
shared_busy(const struct shared *sh)
{
	return sh != NULL && redis_busy(sh->redis);
}

int
shared_up(const struct shared *sh)
{
	return sh != NULL && redis_up(sh->redis);
}

long long
shared_failures(const struct shared *sh)
{
	return sh != NULL ? redis_failures(sh->redis) : 0;
}

long long
shared_max_object(const struct shared *sh)
{
	return sh->max_object;
}

static struct shared_ask *
ask_new(struct shared *sh, void *ctx)
{
	struct shared_ask *a = xcalloc(1, sizeof *a);

	a->sh = sh;
	a->ctx = ctx;
	return a;
}

static void
ask_free(struct shared_ask *a)
{
	free(a->url);
	free(a);
}

/* Its caller has gone: nothing is called, the reply is dropped. */
void
shared_cancel(struct shared_ask *a)
{
	if (a == NULL)
		return;
	redis_cancel(a->ask);
	loop_unwatch(a->timer);
	ask_free(a);
}

static long long
integer_of(const redisReply *r)
{
	return r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
}

/*
 * Why the store would refuse e (store_entry_invalid), or NULL. What
 * another host, or anyone with the Redis password, put in the tier is
 * neither imported nor answered unless the store would keep it: a
 * shared entry is a GET's, of its body's size.
 */
static const char *
entry_invalid(const struct shared_entry *e, char *why, size_t len)
{
	char get[] = "GET";
	struct store_entry as_stored = {
		.method = get, .status = e->r.status,
		.size = (long long)e->body_len,
	};

	return store_entry_invalid(&as_stored, why, len);
}

/* find's reply, for url, as what was found (entry valid while reply is). */
static void
shared_found_of(const redisReply *reply, const char *url,
    struct shared_found *f)
{
	const redisReply *v;

	memset(f, 0, sizeof *f);
	f->kind = SHARED_FAILED;
	if (reply == NULL)
		f->why = NULL;
	else if (reply->type == REDIS_REPLY_ERROR)
		f->why = reply->str;
	else if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    integer_of(reply->element[0]) < 1)
		f->why = "an answer of another shape";
	else if (integer_of(reply->element[0]) == 2)
		f->kind = SHARED_LEASED;
	else if (reply->elements != 2)
		f->why = "an answer of another shape";
	else if (integer_of(reply->element[0]) == 3) {
		f->kind = SHARED_BUSY;
		f->busy_ms = integer_of(reply->element[1]);
	} else if ((v = reply->element[1])->type != REDIS_REPLY_STRING)
		f->why = "an entry that is no string";
	else if (shared_entry_decode(v->str, v->len, url, &f->entry,
	    &f->why) < 0)
		;
	else if ((f->why = entry_invalid(&f->entry, f->invalid,
	    sizeof f->invalid)) != NULL)
		shared_entry_free(&f->entry);
	else
		f->kind = SHARED_ENTRY;
}

static void
on_found(void *ctx, const redisReply *reply)
{
	struct shared_ask *a = ctx;
	struct shared_found f;

	shared_found_of(reply, a->url, &f);
	a->found(a->ctx, &f);
	shared_entry_free(&f.entry);
	ask_free(a);
}

/* Lets go of what a script's arguments were made of. */
static void
shared_args_free(struct shared_args *a)
{
	size_t i;

	for (i = 0; i < sizeof a->held / sizeof a->held[0]; i++)
		buf_free(&a->held[i]);
}

/* find's keys and arguments: url's entry (unless lease_only), its lease. */
static void
shared_find_args(struct shared_args *a, const char *prefix, const char *url,
    const char *token, long long lease_ms, int lease_only)
{
	int i;

	memset(a, 0, sizeof *a);
	shared_key(&a->held[0], prefix, url, "entry");
	shared_key(&a->held[1], prefix, url, "lease");
	buf_addll(&a->held[2], lease_ms > 0 ? lease_ms : 1);
	a->argv[0] = buf_cstr(&a->held[0]);
	a->argv[1] = buf_cstr(&a->held[1]);
	a->argv[2] = token;
	a->argv[3] = buf_cstr(&a->held[2]);
	a->argv[4] = lease_only ? "lease" : "entry";
	a->argc = 5;
	for (i = 0; i < a->argc; i++)
		a->len[i] = strlen(a->argv[i]);
}

/*
 * put's keys and arguments: r and its body as url's entry for ttl_s
 * (0: nothing kept), the lease token names given up, every host told.
 */
static void
shared_put_args(struct shared_args *a, const char *prefix, const char *channel,
    const char *url, const char *token, const struct cache_response *r,
    const void *body, size_t body_len, long long ttl_s)
{
	int i;

	memset(a, 0, sizeof *a);
	shared_key(&a->held[0], prefix, url, "entry");
	shared_key(&a->held[1], prefix, url, "lease");
	if (ttl_s > 0)
		shared_entry_encode(&a->held[2], r, body, body_len);
	buf_addll(&a->held[3], ttl_s > 0 ? ttl_s * 1000 : 0);
	buf_adds(&a->held[4], ttl_s > 0 ? "done 1 " : "done 0 ");
	buf_adds(&a->held[4], url);
	a->argv[0] = buf_cstr(&a->held[0]);
	a->argv[1] = buf_cstr(&a->held[1]);
	a->argv[2] = token != NULL ? token : "";
	a->argv[3] = buf_cstr(&a->held[2]);
	a->argv[4] = buf_cstr(&a->held[3]);
	a->argv[5] = channel;
	a->argv[6] = buf_cstr(&a->held[4]);
	a->argc = 7;
	for (i = 0; i < a->argc; i++)
		a->len[i] = i == 3 ? a->held[2].len : strlen(a->argv[i]);
}

/*
 * Looks for url's entry (unless lease_only), else takes its lease for
 * lease_ms, its token put in token. NULL, and nothing called, if the
 * tier is not up; else fn is called once unless the ask is cancelled.
 */
struct shared_ask *
shared_find(struct shared *sh, const char *url, int lease_only,
    long long lease_ms, char token[SHARED_TOKEN_LEN], shared_found_fn *fn,
    void *ctx)
{
	struct shared_ask *a = ask_new(sh, ctx);
	struct shared_args args;

	snprintf(token, SHARED_TOKEN_LEN, "%s%016llx", sh->token_base,
	    ++sh->tokens);
	shared_find_args(&args, sh->prefix, url, token, lease_ms, lease_only);
	a->found = fn;
	a->url = xstrdup(url);
	if (redis_eval(sh->redis, &shared_find_script, 2, args.argc,
	    args.argv, args.len, on_found, a, &a->ask) < 0) {
		ask_free(a);
		a = NULL;
	}
	shared_args_free(&args);
	return a;
}

/* A write's failure: Redis is the poorer for it, no one waits on it. */
static void
on_written(void *ctx, const redisReply *reply)
{
	(void)ctx;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		prog_warnx("shared tier: %s", reply->str);
}

/* How long Redis keeps r: until it goes stale, and SHARED_KEEP_S more. */
long long
shared_ttl(const struct cache_response *r, const struct cache_rules *rules)
{
	struct store_entry e;
	long long ttl;

	cache_entry(r, rules, r->headers, &e);
	ttl = (long long)(e.stale_at - time(NULL)) + SHARED_KEEP_S;
	return ttl > 0 ? ttl : 0;
}

/*
 * Keeps r and its body as url's entry for ttl_s (0: keeps nothing),
 * gives up the lease token names if it is still ours, and tells every
 * host. Not kept if the tier is down: it is only a copy.
 */
void
shared_put(struct shared *sh, const char *url, const char *token,
    const struct cache_response *r, const void *body, size_t body_len,
    long long ttl_s)
{
	struct shared_args args;
	struct redis_ask *unused;

	shared_put_args(&args, sh->prefix, sh->channel, url, token, r, body,
	    body_len, ttl_s);
	(void)redis_eval(sh->redis, &shared_put_script, 2, args.argc,
	    args.argv, args.len, on_written, sh, &unused);
	shared_args_free(&args);
}

static void
on_taken(void *ctx, const redisReply *reply)
{
	struct shared_ask *a = ctx;
	struct gcra_decision d;
	long long v[2];
	size_t i;

	for (i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 2 && i < 2; i++)
		if (reply->element[i]->type != REDIS_REPLY_STRING ||
		    (v[i] = strtoll(reply->element[i]->str, NULL, 10)) < 0)
			break;
	if (i == 2) {
		gcra_decide(&a->limit, v[0], v[1], a->wait_us, &d);
		a->decided(a->ctx, &d);
	} else {
		a->decided(a->ctx, NULL);
	}
	ask_free(a);
}

static void
bucket_args(struct buf *key, struct buf *interval, struct buf *tolerance,
    const struct shared *sh, const char *bucket, const struct gcra_limit *l)
{
	long long each = l->period_us / l->count > 0 ? l->period_us /
	    l->count : 1;

	shared_key(key, sh->prefix, bucket, "bucket");
	buf_addll(interval, each);
	buf_addll(tolerance, each * (l->burst - 1));
}

/*
 * One request under limit for bucket, which may wait wait_us for its
 * turn (gcra_decide), decided in Redis for every host; as shared_find
 * for NULL and fn, which is given NULL if the decision failed.
 */
struct shared_ask *
shared_take(struct shared *sh, const char *bucket,
    const struct gcra_limit *limit, long long wait_us, shared_decided_fn *fn,
    void *ctx)
{
	struct buf key = BUF_INIT, interval = BUF_INIT, tolerance = BUF_INIT,
	    wait = BUF_INIT;
	struct shared_ask *a = ask_new(sh, ctx);
	const char *argv[4];

	bucket_args(&key, &interval, &tolerance, sh, bucket, limit);
	buf_addll(&wait, wait_us);
	argv[0] = buf_cstr(&key);
	argv[1] = buf_cstr(&interval);
	argv[2] = buf_cstr(&tolerance);
	argv[3] = buf_cstr(&wait);
	a->decided = fn;
	a->limit = *limit;
	a->wait_us = wait_us;
	if (redis_eval(sh->redis, &take_script, 1, 4, argv, NULL, on_taken, a,
	    &a->ask) < 0) {
		ask_free(a);
		a = NULL;
	}
	buf_free(&key);
	buf_free(&interval);
	buf_free(&tolerance);
	buf_free(&wait);
	return a;
}

/* Lets nothing through bucket for ms (gcra_pause); -1 if not up. */
int
shared_pause(struct shared *sh, const char *bucket,
    const struct gcra_limit *limit, long long ms)
{
	struct buf key = BUF_INIT, interval = BUF_INIT, tolerance = BUF_INIT,
	    pause = BUF_INIT;
	const char *argv[3];
	struct redis_ask *unused;
	int rc;

	bucket_args(&key, &interval, &tolerance, sh, bucket, limit);
	buf_addll(&pause, ms);
	argv[0] = buf_cstr(&key);
	argv[1] = buf_cstr(&pause);
	argv[2] = buf_cstr(&tolerance);
	rc = redis_eval(sh->redis, &pause_script, 1, 3, argv, NULL,
	    on_written, sh, &unused);
	buf_free(&key);
	buf_free(&interval);
	buf_free(&tolerance);
	buf_free(&pause);
	return rc;
}

/* Who answers a host's gathering of rows (shared_gather). */
void
shared_on_report(struct shared *sh, shared_report_fn *fn, void *ctx)
{
	sh->report = fn;
	sh->report_ctx = ctx;
}

static void
report_key(struct buf *key, const struct shared *sh, const char *id)
{
	buf_adds(key, sh->prefix);
	buf_adds(key, "{report-");
	buf_adds(key, id);
	buf_adds(key, "}");
}

/* This host's rows for gathering id, under its name host. */
void
shared_report(struct shared *sh, const char *id, const char *host,
    const struct buf *rows)
{
	struct buf key = BUF_INIT, keep = BUF_INIT;
	const char *argv[4];
	size_t len[4];
	struct redis_ask *unused;

	report_key(&key, sh, id);
	buf_addll(&keep, REPORT_KEEP_MS);
	argv[0] = "HSET";
	argv[1] = buf_cstr(&key);
	argv[2] = host;
	argv[3] = rows->data != NULL ? rows->data : "";
	len[0] = 4;
	len[1] = key.len;
	len[2] = strlen(host);
	len[3] = rows->len;
	(void)redis_command(sh->redis, 4, argv, len, on_written, sh, &unused);
	argv[0] = "PEXPIRE";
	argv[2] = buf_cstr(&keep);
	(void)redis_command(sh->redis, 3, argv, NULL, on_written, sh, &unused);
	buf_free(&key);
	buf_free(&keep);
}

static void
on_gathered(void *ctx, const redisReply *reply)
{
	struct shared_ask *a = ctx;
	const char **rows;
	size_t *lens, i, n = 0;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements % 2 != 0) {
		a->gathered(a->ctx, NULL, NULL, -1);
		ask_free(a);
		return;
	}
	rows = xcalloc(reply->elements / 2 + 1, sizeof *rows);
	lens = xcalloc(reply->elements / 2 + 1, sizeof *lens);
	for (i = 1; i < reply->elements; i += 2)	/* host, rows, … */
		if (reply->element[i]->type == REDIS_REPLY_STRING) {
			rows[n] = reply->element[i]->str;
			lens[n++] = reply->element[i]->len;
		}
	a->gathered(a->ctx, rows, lens, (long long)n);
	free(rows);
	free(lens);
	ask_free(a);
}

/* The hosts had their time to answer: what they put in Redis. */
static void
on_gather_time(struct watch *w, short revents, void *ctx)
{
	struct shared_ask *a = ctx;
	struct buf key = BUF_INIT;
	const char *argv[2];

	(void)revents;
	loop_unwatch(w);
	a->timer = NULL;
	report_key(&key, a->sh, a->id);
	argv[0] = "HGETALL";
	argv[1] = buf_cstr(&key);
	if (redis_command(a->sh->redis, 2, argv, NULL, on_gathered, a,
	    &a->ask) < 0) {
		a->gathered(a->ctx, NULL, NULL, -1);
		ask_free(a);
	}
	buf_free(&key);
}

/*
 * Asks every host (every process subscribed, this one too) for its
 * rows, and gives them to fn once the tier's timeout has passed;
 * NULL, and nothing called, if the tier is not up.
 */
struct shared_ask *
shared_gather(struct shared *sh, shared_gathered_fn *fn, void *ctx)
{
	struct shared_ask *a = ask_new(sh, ctx);
	struct buf message = BUF_INIT;
	struct redis_ask *unused;
	const char *argv[3];

	snprintf(a->id, sizeof a->id, "%s%016llx", sh->token_base,
	    ++sh->tokens);
	buf_adds(&message, "report ");
	buf_adds(&message, a->id);
	argv[0] = "PUBLISH";
	argv[1] = sh->channel;
	argv[2] = buf_cstr(&message);
	if (!redis_up(sh->redis) || redis_command(sh->redis, 3, argv, NULL,
	    on_written, sh, &unused) < 0) {
		buf_free(&message);
		ask_free(a);
		return NULL;
	}
	buf_free(&message);
	a->gathered = fn;
	a->timer = loop_watch(sh->loop, -1, 0, on_gather_time, a);
	watch_deadline(a->timer, prog_now_ms() + sh->timeout_ms);
	return a;
}
