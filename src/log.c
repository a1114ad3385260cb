/*
 * Access logs: one JSON object per request and line on stderr, written
 * whole by one write(2) so that workers sharing stderr never interleave;
 * or to syslog, when stderr is not ours to write to.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

static int use_syslog;

/* Logs go to syslog from now on, as ident. */
void
log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	use_syslog = 1;
}

/* A JSON string; request bytes reach here, so everything is escaped. */
static void
add_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	buf_addc(b, '"');
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)*p);
		} else if (*p < 0x20 || *p >= 0x7f) {
			buf_adds(b, "\\u00");
			buf_addc(b, hex[*p >> 4]);
			buf_addc(b, hex[*p & 15]);
		} else {
			buf_addc(b, (char)*p);
		}
	}
	buf_addc(b, '"');
}

void
log_request(const struct log_request *r)
{
	struct buf b = BUF_INIT;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	buf_printf(&b, "{\"time\":\"%s\",\"peer\":", when);
	add_string(&b, r->peer);
	buf_adds(&b, ",\"method\":");
	add_string(&b, r->method);
	buf_adds(&b, ",\"target\":");
	add_string(&b, r->target);
	buf_printf(&b, ",\"status\":%d,\"bytes\":%lld,\"cache\":", r->status,
	    r->bytes);
	add_string(&b, r->cache);
	if (r->upstream_ms >= 0)
		buf_printf(&b, ",\"upstream_ms\":%lld", r->upstream_ms);
	buf_printf(&b, ",\"ms\":%lld", r->total_ms);
	if (r->error != NULL) {
		buf_adds(&b, ",\"error\":");
		add_string(&b, r->error);
	}
	buf_adds(&b, "}\n");
	if (use_syslog)
		syslog(LOG_INFO, "%.*s", (int)b.len - 1, b.data);
	else	/* a log that cannot be written must not stop the service */
		(void)!write(STDERR_FILENO, b.data, b.len);
	buf_free(&b);
}
