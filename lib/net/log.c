/*
 * Access logs: one JSON object per request and line, on stderr or in a
 * file, gathered and written by whole lines, at most PIPE_BUF bytes a
 * write(2), so that workers sharing the log never interleave; or to
 * syslog, when stderr is not ours to write to; or nowhere.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "http/json.h"
#include "net/log.h"

static int use_syslog;
static int log_fd = STDERR_FILENO;	/* -1: no access log */
static struct buf pending;		/* whole lines not yet written */

/*
 * The access log goes to a file from now on, appended to, or nowhere
 * if path is "off". Returns -1 with errno if it cannot be opened.
 */
int
log_to_file(const char *path)
{
	int fd = -1;

	if (strcmp(path, "off") != 0 && (fd = open(path, O_WRONLY |
	    O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		return -1;
	log_fd = fd;
	return 0;
}

/*
 * Writes the lines gathered so far. A log that cannot be written must
 * not stop the service: what fails is dropped.
 */
void
log_flush(void)
{
	size_t at = 0, n;
	const char *nl;

	while (at < pending.len) {
		n = pending.len - at;
		if (n > PIPE_BUF) {	/* whole lines up to PIPE_BUF */
			nl = memrchr(pending.data + at, '\n', PIPE_BUF);
			n = nl != NULL ? (size_t)(nl - pending.data - at) + 1 :
			    (size_t)((char *)memchr(pending.data + at, '\n',
			    n) - pending.data - at) + 1;
		}
		(void)!write(log_fd, pending.data + at, n);
		at += n;
	}
	buf_reset(&pending);
}

/* Logs go to syslog from now on, as ident. */
void
log_to_syslog(const char *ident)
{
	if (log_fd != STDERR_FILENO)
		return;		/* the log has a place of its own */
	openlog(ident, LOG_PID, LOG_DAEMON);
	use_syslog = 1;
}

/*
 * A JSON string, by the one escaper (json.h): request bytes reach
 * here, so everything is escaped, and UTF-8 is kept as it is.
 */
static void
add_string(struct buf *b, const char *s)
{
	if (s == NULL)
		s = "";
	json_buf_string(b, s, strlen(s));
}

void
log_request(const struct log_request *r)
{
	static time_t last;
	static char when[32];
	struct buf line = BUF_INIT, *b = use_syslog ? &line : &pending;
	time_t now = time(NULL);
	struct tm tm;

	if (log_fd < 0 && !use_syslog)
		return;
	if (now != last) {
		last = now;
		gmtime_r(&now, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	buf_printf(b, "{\"time\":\"%s\",\"peer\":", when);
	add_string(b, r->peer);
	buf_adds(b, ",\"method\":");
	add_string(b, r->method);
	buf_adds(b, ",\"target\":");
	add_string(b, r->target);
	buf_printf(b, ",\"status\":%d,\"bytes\":%lld,\"cache\":", r->status,
	    r->bytes);
	add_string(b, r->cache);
	if (r->upstream_ms >= 0)
		buf_printf(b, ",\"upstream_ms\":%lld", r->upstream_ms);
	buf_printf(b, ",\"ms\":%lld", r->total_ms);
	if (r->error != NULL) {
		buf_adds(b, ",\"error\":");
		add_string(b, r->error);
	}
	buf_adds(b, "}\n");
	if (use_syslog) {
		syslog(LOG_INFO, "%.*s", (int)line.len - 1, line.data);
		buf_free(&line);
	} else if (pending.len >= PIPE_BUF) {
		log_flush();
	}
}
