/*
 * A queued request as JSON, as relay-serve's /_relay/queue/TOKEN and
 * relay-cache queue --json show it (relay-cache(5)).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/io.h"
#include "base/utf8.h"
#include "http/json.h"
#include "store/store.h"

/* A time in ms as JSON: an RFC 3339 date in UTC, or null for 0. */
static void
write_time(struct writer *w, long long ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char out[32];

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL) {
		writer_puts(w, "null");
		return;
	}
	strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
	writer_printf(w, "\"%s.%03lldZ\"", out, ms % 1000);
}

static void
write_string_or_null(struct writer *w, const char *s)
{
	if (s != NULL)
		json_write_string(w, s, strlen(s));
	else
		writer_puts(w, "null");
}

/* The upstream's body: as a string if it is UTF-8, else in base64. */
static void
write_response(struct writer *w, const struct store_queued *q)
{
	struct utf8 u = { 0 };
	struct base64 b = { 0 };

	writer_puts(w, ",\"type\":");
	write_string_or_null(w, q->response_type);
	if (utf8_feed(&u, q->response, q->response_len) == 0 &&
	    utf8_done(&u) == 0) {
		writer_puts(w, ",\"body\":");
		json_write_string(w, q->response, q->response_len);
		return;
	}
	writer_puts(w, ",\"body_base64\":\"");
	base64_encode(&b, w, q->response, q->response_len);
	base64_encode_end(&b, w);
	writer_putc(w, '"');
}

/* An entry as one JSON object, for /_relay/queue/ID and relay-cache. */
void
store_queued_json(struct buf *out, const struct store_queued *q)
{
	struct writer *w = xmalloc(sizeof *w);

	writer_init(w, sink_buf(out));
	writer_printf(w, "{\"id\":%lld,\"token\":", q->id);
	write_string_or_null(w, q->token);
	writer_puts(w, ",\"state\":");
	write_string_or_null(w, q->state);
	writer_puts(w, ",\"method\":");
	write_string_or_null(w, q->method);
	writer_puts(w, ",\"url\":");
	write_string_or_null(w, q->url);
	writer_printf(w, ",\"attempts\":%lld,\"created\":", q->attempts);
	write_time(w, q->created_ms);
	writer_puts(w, ",\"updated\":");
	write_time(w, q->updated_ms);
	writer_puts(w, ",\"next_attempt\":");
	write_time(w, q->state != NULL && strcmp(q->state, "queued") == 0 ?
	    q->next_ms : 0);
	writer_puts(w, ",\"error\":");
	write_string_or_null(w, q->error);
	if (q->status > 0) {
		writer_printf(w, ",\"status\":%d", q->status);
		write_response(w, q);
	}
	writer_puts(w, "}");
	writer_flush(w);
	free(w);
}
