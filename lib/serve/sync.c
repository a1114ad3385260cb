/*
 * The sync stream: a first line saying what it is, then the entries in
 * change order, a page of them a call, each as a record with its seq
 * or as a tombstone. The newest change number is read once, at the
 * start: an entry changed meanwhile has a newer one and is left for
 * the next delta, so that a client that applies the stream, then asks
 * for what changed after its seq, misses nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/io.h"
#include "base/num.h"
#include "base/prog.h"
#include "http/json.h"
#include "serve/sync.h"
#include "store/cache.h"
#include "store/snapshot.h"

struct sync {
	struct store	*s;
	char		*prefix;	/* of the URLs: base and path */
	enum sync_kind	 kind;
	long long	 since, seq, after;	/* after: the last one sent */
	int		 started;
	struct snapshot	*snap;		/* ?format=sqlite's */
};

static int
hex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' &&
	    (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/*
 * The value of name in the target's query, percent-decoded, into out;
 * 0 if it is not there, -1 if it is bad (too long, a bad escape, a
 * control character).
 */
static int
query_value(const char *target, const char *name, char *out, size_t len)
{
	const char *p = strchr(target, '?'), *end;
	size_t n = strlen(name), k;

	for (; p != NULL; p = strchr(p + 1, '&')) {
		if (strncmp(p + 1, name, n) != 0 || p[1 + n] != '=')
			continue;
		end = p + 1 + n + 1 + strcspn(p + 1 + n + 1, "&");
		for (p += n + 2, k = 0; p < end; p++, k++) {
			if (k + 1 >= len)
				return -1;
			if (*p == '%') {
				if (hex(p[1]) < 0 || hex(p[2]) < 0)
					return -1;
				out[k] = (char)(hex(p[1]) << 4 | hex(p[2]));
				p += 2;
			} else {
				out[k] = *p == '+' ? ' ' : *p;
			}
			if ((unsigned char)out[k] < 0x20 || out[k] == 0x7f)
				return -1;
		}
		out[k] = '\0';
		return 1;
	}
	return 0;
}

/*
 * A sync of the entries under base (the upstream's URL prefix) and the
 * target's ?prefix= (a path, "/" by default), since its ?since= (0: a
 * full dump); a ?format=sqlite snapshot of at most max_snapshot bytes.
 * NULL with a status and the reason if the query is bad or
 * the store cannot be read.
 */
struct sync *
sync_start(struct store *s, const char *base, const char *target,
    long long max_snapshot, int *status, const char **why)
{
	struct sync *y;
	char prefix[2048] = "/", since[24] = "0", format[16] = "ndjson";
	static char made[256];
	struct buf url = BUF_INIT;
	long long horizon;

	*status = 400;
	if (query_value(target, "prefix", prefix, sizeof prefix) < 0 ||
	    prefix[0] != '/') {
		*why = "prefix= is a path, starting with /";
		return NULL;
	}
	if (query_value(target, "since", since, sizeof since) < 0 ||
	    num_parse(since, 0, 1LL << 62, &horizon) < 0) {
		*why = "since= is a change number, 0 or more";
		return NULL;
	}
	if (query_value(target, "format", format, sizeof format) < 0 ||
	    (strcmp(format, "ndjson") != 0 && strcmp(format, "sqlite") != 0)) {
		*why = "format= is ndjson or sqlite";
		return NULL;
	}
	y = xcalloc(1, sizeof *y);
	y->s = s;
	y->since = horizon;
	if (strcmp(format, "sqlite") == 0 &&
	    (y->snap = snapshot_new(max_snapshot, made, sizeof made)) ==
	    NULL) {
		*status = 503;
		*why = made;
		free(y);
		return NULL;
	}
	if (store_sync_mark(s, &y->seq, &horizon) < 0) {
		*status = 503;
		*why = "the cache file cannot be read";
		sync_free(y);
		return NULL;
	}
	y->kind = y->since == 0 ? SYNC_FULL : y->since < horizon ||
	    y->since > y->seq ? SYNC_RESET : SYNC_DELTA;
	y->after = y->kind == SYNC_DELTA ? y->since : 0;
	buf_adds(&url, base);
	buf_adds(&url, prefix);
	y->prefix = buf_take(&url);
	return y;
}

static const char *const kinds[] = { "full", "delta", "reset" };

/* What the stream is: "full", "delta" or "reset" (relay(7)). */
const char *
sync_kind(const struct sync *y)
{
	return kinds[y->kind];
}

/* The newest change number, the stream's ETag. */
long long
sync_seq(const struct sync *y)
{
	return y->seq;
}

static int
is_gone(int status)
{
	return status == 404 || status == 410;
}

/* {"url":…,"seq":…,"deleted":true,"status":…}: the upstream said so. */
static void
write_tombstone(struct writer *w, const struct store_entry *e, long long seq)
{
	writer_puts(w, "{\"url\":");
	json_write_string(w, e->url, strlen(e->url));
	writer_printf(w, ",\"seq\":%lld,\"deleted\":true,\"status\":%d}\n",
	    seq, e->status);
}

/*
 * Whether an entry answers only the requests that carry credentials:
 * a merge route's own (its scope, cache_variant), or a client's that
 * the response varies on. A sync, a copy for anyone it answers, never
 * carries them.
 */
static int
credentialed(const char *variant)
{
	static const char *const names[] = {
		":scope=", "authorization=", "proxy-authorization=", "cookie=",
	};
	const char *line;
	size_t i;

	for (line = variant; *line != '\0'; line = strchr(line, '\n') + 1) {
		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strncmp(line, names[i], strlen(names[i])) == 0)
				return 1;
		if (strchr(line, '\n') == NULL)
			break;
	}
	return 0;
}

/* One entry of the page: a record, a tombstone, or nothing. */
static int
add_entry(struct sync *y, struct writer *w, const struct store_entry *e,
    long long changed)
{
	int gone = is_gone(e->status) && y->kind == SYNC_DELTA;

	if (!gone && (e->status < 200 || e->status >= 300))
		return 0;
	if (credentialed(e->variant))
		return 0;
	if (y->snap != NULL)
		return snapshot_add(y->snap, y->s, e, changed, gone,
		    SYNC_MAX_BODY);
	if (gone) {
		write_tombstone(w, e, changed);
		return 0;
	}
	return cache_write_record(w, y->s, e, time(NULL), changed,
	    SYNC_MAX_BODY);
}

/*
 * An entry relay did not write, or whose body is not whole, is left
 * out, as relay-cache dump leaves it out; the stream goes on.
 */
static int
left_out(struct sync *y)
{
	prog_warnx("%s: left out of the sync", store_error(y->s));
	return 0;
}

/*
 * The next part of the stream: the first line, then a page of entries,
 * appended to out; or, for a snapshot, the page added to it. A page
 * ends after SYNC_PAGE entries or SYNC_PAGE_BYTES of bodies, so that a
 * round of the loop does bounded work and other connections wait for
 * no more. Returns 1 while there is more, 0 once it has ended, -1 if
 * the store or the snapshot failed (the stream is then cut short).
 */
int
sync_next(struct sync *y, struct buf *out)
{
	struct writer *w = xmalloc(sizeof *w);
	struct store_iter *it;
	struct store_entry e;
	long long changed, bytes = 0;
	int rc, n = 0, more;

	writer_init(w, sink_buf(out));
	if (!y->started && y->snap == NULL)
		writer_printf(w, "{\"sync\":\"%s\",\"since\":%lld,\"seq\":%lld}"
		    "\n", sync_kind(y), y->since, y->seq);
	y->started = 1;
	it = store_changes_new(y->s, y->prefix, y->after, y->seq, SYNC_PAGE);
	rc = it == NULL || (y->snap != NULL && snapshot_begin(y->snap) < 0) ?
	    -1 : 0;
	while (rc == 0 && bytes < SYNC_PAGE_BYTES &&
	    ((rc = store_changes_next(it, &e, &changed)) > 0 ||
	    rc == STORE_DAMAGED)) {
		n++;
		y->after = changed;
		if (rc > 0) {
			bytes += e.size < SYNC_MAX_BODY ? e.size : 0;
			rc = add_entry(y, w, &e, changed);
			store_entry_free(&e);
		}
		if (rc == STORE_DAMAGED)
			rc = left_out(y);
	}
	store_iter_free(it);
	writer_flush(w);
	free(w);
	more = n == SYNC_PAGE || bytes >= SYNC_PAGE_BYTES;
	if (rc == 0 && y->snap != NULL && (snapshot_commit(y->snap) < 0 ||
	    (!more && snapshot_end(y->snap, sync_kind(y), y->since,
	    y->seq) < 0)))
		rc = -1;
	if (rc < 0)
		return -1;
	return more;
}

/* ?format=sqlite's file, once sync_next has ended; else NULL. */
struct snapshot *
sync_snapshot(const struct sync *y)
{
	return y->snap;
}

void
sync_free(struct sync *y)
{
	if (y == NULL)
		return;
	snapshot_free(y->snap);
	free(y->prefix);
	free(y);
}
