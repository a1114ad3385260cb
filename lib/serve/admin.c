/*
 * relay-serve's own endpoints, under /_relay/: metrics in the
 * Prometheus text format and stats as JSON, summed over every process
 * on the cache file, and the state of a queued request. They answer
 * loopback clients, or ones that show the admin token; to every other
 * client they do not exist (404). The files are read in connections of
 * their own, opened at the first request.
 */
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/num.h"
#include "http/headers.h"
#include "net/metrics.h"
#include "serve/admin.h"
#include "serve/deliver.h"
#include "tier/shared.h"

#define TOKEN_MAX	4096
#define TOKEN_FILE_MAX	65536	/* the token file, its first line the token */

struct admin {
	char		*cache_path;
	char		*token;		/* NULL: loopback only */
	struct store	*cache, *queue;	/* opened when first read */
	const struct shared *shared;	/* NULL: no --shared */
};

/*
 * The token in path: its first line, of visible ASCII, as a client
 * sends it after "Bearer ". NULL, with why, if there is none.
 */
char *
admin_read_token(const char *path, const char **why)
{
	static char reason[300];
	struct buf text = BUF_INIT;
	const char *buf;
	size_t len, i;
	char *token;

	if (io_read_file(path, TOKEN_FILE_MAX, &text, reason,
	    sizeof reason) < 0) {
		buf_free(&text);
		*why = reason;
		return NULL;
	}
	buf = buf_cstr(&text);
	len = strcspn(buf, "\r\n");
	if (len < text.len && buf[len] == '\0')	/* a NUL: not ASCII text */
		len = text.len;
	for (i = 0; i < len; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			break;
	*why = len == 0 ? "it is empty" : len > TOKEN_MAX ?
	    "it is longer than 4096 bytes" : i < len ?
	    "it has spaces or bytes other than visible ASCII" : NULL;
	token = *why == NULL ? xstrndup(buf, len) : NULL;
	buf_free(&text);
	return token;
}

/*
 * 127.0.0.0/8, ::1 and IPv4-mapped loopback, or a Unix socket's peer:
 * "127.0.0.1:port", "[::1]:port", or an inetd server's bare address.
 */
static int
loopback(const char *peer)
{
	unsigned char a[16];
	char host[64];
	const char *end;
	size_t n;

	if (strcmp(peer, "unix") == 0)
		return 1;
	if (peer[0] == '[') {			/* [v6]:port */
		peer++;
		end = strchr(peer, ']');
	} else if ((end = strchr(peer, ':')) != NULL &&
	    strchr(end + 1, ':') != NULL) {	/* a bare v6 address */
		end = NULL;
	}
	n = end != NULL ? (size_t)(end - peer) : strlen(peer);
	if (n >= sizeof host)
		return 0;
	memcpy(host, peer, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) != 1)
		return 0;
	/* ::1, or 127.0.0.0/8 mapped (::ffff:127.0.0.1, ::ffff:7f00:1) */
	return (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0) ||
	    (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 && a[12] == 127);
}

/* Compares in a time that does not tell how much of the token was right. */
static int
same_secret(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b), i;
	unsigned char diff = alen != blen;

	if (blen == 0)
		return 0;
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i % blen];
	return diff == 0;
}

/* The endpoints of the cache at cache_path; token NULL: loopback only. */
struct admin *
admin_new(const char *cache_path, const char *token)
{
	struct admin *a = xcalloc(1, sizeof *a);

	a->cache_path = xstrdup(cache_path);
	a->token = token != NULL ? xstrdup(token) : NULL;
	return a;
}

/* This process's shared tier, whose state the metrics show. */
void
admin_share(struct admin *a, const struct shared *sh)
{
	a->shared = sh;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	store_close(a->cache);
	store_close(a->queue);
	free(a->cache_path);
	free(a->token);
	free(a);
}

/*
 * Whether the client may see the endpoints: from loopback, or with
 * "Authorization: Bearer TOKEN" when there is a token.
 */
int
admin_allowed(const struct admin *a, const char *peer, const char *fields)
{
	struct header h;

	if (loopback(peer))
		return 1;
	if (a->token == NULL || !headers_get(fields, "authorization", &h) ||
	    h.value_len < 7 || strncasecmp(h.value, "Bearer ", 7) != 0)
		return 0;
	return same_secret(h.value + 7, h.value_len - 7, a->token);
}

/* Whether the path of target (n bytes) is name. */
static int
named(const char *target, size_t n, const char *name)
{
	return n == strlen(name) && strncmp(target, name, n) == 0;
}

/* The queue file's reader, if there is a queue file. */
static struct store *
queue_reader(struct admin *a)
{
	if (a->queue == NULL || store_status(a->queue) != 0) {
		store_close(a->queue);
		a->queue = store_open_queue(a->cache_path, 0);
	}
	return store_status(a->queue) == 0 ? a->queue : NULL;
}

/*
 * The counters of every process as the cache file has them (metrics_count()
 * values) and the gauges, into v and g; -1 if the file cannot be read.
 */
static int
read_counters(struct admin *a, long long *v, struct metrics_gauges *g)
{
	struct store_stats st;
	struct store *q;

	if (a->cache == NULL)
		a->cache = store_open(a->cache_path, STORE_READ);
	if (store_counters(a->cache, metrics_add_row, v) < 0 ||
	    store_stats(a->cache, time(NULL), &st) < 0)
		return -1;
	g->entries = st.entries;
	g->bytes = st.bytes;
	g->shared_up = a->shared != NULL ? shared_up(a->shared) : -1;
	if ((q = queue_reader(a)) != NULL)
		store_queue_depth(q, g->queue);
	return 0;
}

/* This host's counters and gauges as rows for the others (metrics_rows). */
int
admin_host_rows(struct admin *a, struct buf *rows)
{
	long long *v = xcalloc(metrics_count(), sizeof *v);
	struct metrics_gauges g;
	int rc = read_counters(a, v, &g);

	if (rc == 0)
		metrics_rows(rows, v, &g);
	free(v);
	return rc;
}

/* /_relay/stats?hosts=all: n hosts' rows, summed (metrics_add_rows). */
void
admin_hosts_stats(struct buf *body, const char *const *rows,
    const size_t *lens, size_t n)
{
	long long *v = xcalloc(metrics_count(), sizeof *v);
	struct metrics_gauges g = { .shared_up = -1 };
	size_t i;

	for (i = 0; i < n; i++)
		metrics_add_rows(v, &g, rows[i], lens[i]);
	buf_addc(body, '{');
	metrics_json(body, v);
	buf_printf(body, ",\"entries\":%lld,\"bytes\":%lld,\"hosts\":%zu}\n",
	    g.entries, g.bytes, n);
	free(v);
}

/* /_relay/metrics and /_relay/stats: the counters and the gauges. */
static int
answer_metrics(struct admin *a, int prometheus, struct buf *body,
    const char **type)
{
	long long *v = xcalloc(metrics_count(), sizeof *v);
	struct metrics_gauges g = { .shared_up = -1 };

	if (read_counters(a, v, &g) < 0) {
		free(v);
		return 503;
	}
	if (prometheus) {
		*type = "text/plain; version=0.0.4; charset=utf-8";
		metrics_prometheus(body, v, &g);
	} else {
		*type = "application/json";
		buf_addc(body, '{');
		metrics_json(body, v);
		buf_printf(body, ",\"entries\":%lld,\"bytes\":%lld,"
		    "\"queue\":{\"queued\":%lld,\"delivering\":%lld,"
		    "\"failed\":%lld}", g.entries, g.bytes, g.queue[0],
		    g.queue[1], g.queue[2]);
		if (g.shared_up >= 0)
			buf_printf(body, ",\"shared_up\":%s",
			    g.shared_up ? "true" : "false");
		buf_adds(body, "}\n");
	}
	free(v);
	return 200;
}

/*
 * /_relay/queue/TOKEN: what became of a queued request, to whoever
 * knows its token (its client, told it in the 202's Location): 128
 * random bits, where a row's number would let anyone read every one.
 */
static int
answer_queued(struct admin *a, const char *token, size_t n, struct buf *body,
    const char **type)
{
	struct store_queued q;
	struct store *s;
	char text[DELIVER_TOKEN_LEN + 1];
	int found;

	if (n != DELIVER_TOKEN_LEN)
		return 404;
	memcpy(text, token, n);
	text[n] = '\0';
	if (!deliver_token_valid(text) || (s = queue_reader(a)) == NULL)
		return 404;
	if ((found = store_queue_find(s, text, &q)) <= 0)
		return found < 0 ? 503 : 404;
	*type = "application/json";
	store_queued_json(body, &q);
	buf_addc(body, '\n');
	store_queued_free(&q);
	return 200;
}

/*
 * Whether target is a queued request's own path, which its token
 * opens to anyone who has it, not to admin clients alone.
 */
int
admin_capability(const char *target)
{
	size_t n = strcspn(target, "?");

	return n == 14 + DELIVER_TOKEN_LEN &&
	    strncmp(target, "/_relay/queue/", 14) == 0;
}

/*
 * The body of an allowed GET of target, and its type; returns the
 * status: 200, 404 for a name not ours, 503 if a file cannot be read.
 */
int
admin_answer(struct admin *a, const char *target, struct buf *body,
    const char **type)
{
	size_t n = strcspn(target, "?");

	if (named(target, n, "/_relay/metrics"))
		return answer_metrics(a, 1, body, type);
	if (named(target, n, "/_relay/stats"))
		return answer_metrics(a, 0, body, type);
	if (n > 14 && strncmp(target, "/_relay/queue/", 14) == 0)
		return answer_queued(a, target + 14, n - 14, body, type);
	return 404;
}
