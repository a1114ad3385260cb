/*
 * relay-serve's own endpoints, under /_relay/: metrics in the
 * Prometheus text format and stats as JSON, summed over every process
 * on the cache file. They answer loopback clients, or ones that show
 * the admin token; to every other client they do not exist (404).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "headers.h"
#include "metrics.h"

#define TOKEN_MAX	4096

/* Whether a normalised target is one of ours: /_relay or under it. */
int
admin_target(const char *target)
{
	return strncmp(target, "/_relay", 7) == 0 &&
	    (target[7] == '\0' || target[7] == '/' || target[7] == '?');
}

/*
 * The token in path: its first line, of visible ASCII, as a client
 * sends it after "Bearer ". NULL, with why, if there is none.
 */
char *
admin_read_token(const char *path, const char **why)
{
	char buf[TOKEN_MAX + 2];
	ssize_t n;
	size_t len, i;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why = strerror(errno);
		return NULL;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0) {
		*why = strerror(errno);
		return NULL;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	for (i = 0; i < len; i++)
		if (buf[i] <= ' ' || buf[i] > '~')
			break;
	*why = len == 0 ? "it is empty" : len > TOKEN_MAX ?
	    "it is longer than 4096 bytes" : i < len ?
	    "it has spaces or bytes other than visible ASCII" : NULL;
	return *why == NULL ? xstrndup(buf, len) : NULL;
}

/*
 * 127.0.0.0/8, ::1 and IPv4-mapped loopback, or a Unix socket's peer:
 * "127.0.0.1:port", "[::1]:port", or an inetd server's bare address.
 */
static int
loopback(const char *peer)
{
	const char *p = peer + (peer[0] == '[');

	return strncmp(p, "127.", 4) == 0 ||
	    strncmp(p, "::ffff:127.", 11) == 0 ||
	    (strncmp(p, "::1", 3) == 0 && (p[3] == '\0' || p[3] == ']')) ||
	    strcmp(peer, "unix") == 0;
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

/*
 * Whether the client may see the endpoints: from loopback, or with
 * "Authorization: Bearer TOKEN" when there is a token (NULL: none).
 */
int
admin_allowed(const char *peer, const char *fields, const char *token)
{
	struct header h;

	if (loopback(peer))
		return 1;
	if (token == NULL || !headers_get(fields, "authorization", &h) ||
	    h.value_len < 7 || strncasecmp(h.value, "Bearer ", 7) != 0)
		return 0;
	return same_secret(h.value + 7, h.value_len - 7, token);
}

/* Whether the path of target (n bytes) is name. */
static int
named(const char *target, size_t n, const char *name)
{
	return n == strlen(name) && strncmp(target, name, n) == 0;
}

/*
 * The body of an allowed GET of target, and its type; returns the
 * status: 200, 404 for a name not ours, 503 if the file cannot be read.
 */
int
admin_answer(struct store *s, const char *target, struct buf *body,
    const char **type)
{
	size_t n = strcspn(target, "?");
	int metrics = named(target, n, "/_relay/metrics"), status = 200;
	long long *v = xcalloc(metrics_count(), sizeof *v);
	struct store_stats st;

	if (!metrics && !named(target, n, "/_relay/stats"))
		status = 404;
	else if (store_counters(s, metrics_add_row, v) < 0 ||
	    store_stats(s, time(NULL), &st) < 0)
		status = 503;
	if (status != 200) {
		free(v);
		return status;
	}
	metrics_add_pending(v);
	if (metrics) {
		*type = "text/plain; version=0.0.4; charset=utf-8";
		metrics_prometheus(body, v, st.entries, st.bytes);
	} else {
		*type = "application/json";
		buf_addc(body, '{');
		metrics_json(body, v);
		buf_printf(body, ",\"entries\":%lld,\"bytes\":%lld}\n",
		    st.entries, st.bytes);
	}
	free(v);
	return status;
}
