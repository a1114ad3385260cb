/*
 * WebSocket framing (RFC 6455 section 5) and the opening handshake
 * (section 4.2). A protocol error names the close code that answers it
 * (section 7.4.1): 1002 for bad framing, 1007 for text that is not
 * UTF-8, 1009 for a message over the bound.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/io.h"
#include "base/sha1.h"
#include "http/headers.h"
#include "http/ws.h"

#define WS_GUID	"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Whether a comma-separated field value lists token, in any case. */
static int
lists(const struct header *h, const char *token)
{
	const char *p = h->value, *end = h->value + h->value_len, *comma;
	size_t n = strlen(token), len;

	for (; p < end; p = comma + 1) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		for (len = (size_t)(comma - p); len > 0 &&
		    (p[len - 1] == ' ' || p[len - 1] == '\t'); len--)
			;
		if (len == n && strncasecmp(p, token, n) == 0)
			return 1;
	}
	return 0;
}

/* 16 bytes in base64: 22 characters of the alphabet and "==". */
static int
key_valid(const struct header *key)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	if (key->value_len != 24 || memcmp(key->value + 22, "==", 2) != 0)
		return 0;
	for (i = 0; i < 22; i++)
		if (key->value[i] == '\0' ||
		    strchr(alphabet, key->value[i]) == NULL)
			return 0;
	return 1;
}

static void
add_accept(struct buf *out, const struct header *key)
{
	unsigned char digest[SHA1_LEN];
	struct writer *w = xmalloc(sizeof *w);
	struct base64 b64 = BASE64_INIT;
	struct sha1 s;

	sha1_init(&s);
	sha1_update(&s, key->value, key->value_len);
	sha1_update(&s, WS_GUID, sizeof WS_GUID - 1);
	sha1_final(&s, digest);
	writer_init(w, sink_buf(out));
	base64_encode(&b64, w, digest, sizeof digest);
	base64_encode_end(&b64, w);
	writer_flush(w);
	free(w);
}

/*
 * Checks an opening handshake (a GET of HTTP/1.minor with the fields
 * given) and writes the 101 answer's head to out. Returns -1 if it is
 * not one, with the status to answer (400, 405, or 426 for a version
 * other than 13).
 */
int
ws_handshake(const char *method, int minor, const char *fields,
    struct buf *out, int *status, const char **why)
{
	struct header h, key;

	*status = 400;
	if (strcmp(method, "GET") != 0) {
		*status = 405;
		*why = "a WebSocket opens with a GET";
	} else if (minor < 1) {	/* RFC 6455 section 4.1: "at least 1.1" */
		*why = "a WebSocket opens over HTTP/1.1";
	} else if (!headers_get(fields, "upgrade", &h) ||
	    !lists(&h, "websocket")) {
		*status = 426;
		*why = "no Upgrade: websocket";
	} else if (!headers_get(fields, "connection", &h) ||
	    !lists(&h, "upgrade")) {
		*why = "no Connection: Upgrade";
	} else if (!headers_get(fields, "sec-websocket-version", &h) ||
	    h.value_len != 2 || memcmp(h.value, "13", 2) != 0) {
		*status = 426;
		*why = "WebSocket version 13 only";
	} else if (!headers_get(fields, "sec-websocket-key", &key) ||
	    !key_valid(&key)) {
		*why = "no valid Sec-WebSocket-Key";
	} else {
		buf_adds(out, "HTTP/1.1 101 Switching Protocols\r\n"
		    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		    "Sec-WebSocket-Accept: ");
		add_accept(out, &key);
		buf_adds(out, "\r\n\r\n");
		return 0;
	}
	return -1;
}

void
ws_reader_init(struct ws_reader *r, size_t max)
{
	memset(r, 0, sizeof *r);
	r->max = max;
}

void
ws_reader_free(struct ws_reader *r)
{
	buf_free(&r->message);
	buf_free(&r->control);
}

static ssize_t
fail(struct ws_reader *r, int code, const char *why)
{
	r->code = code;
	r->why = why;
	return -1;
}

/* The bytes of the head still to come: 2, then the length and mask. */
static size_t
head_size(const struct ws_reader *r)
{
	size_t n = 2;

	if (r->head_len < 2)
		return 2;
	if ((r->head[1] & 0x7f) == 126)
		n += 2;
	else if ((r->head[1] & 0x7f) == 127)
		n += 8;
	return n + 4;	/* a client's frames are masked */
}

/* The first two bytes: what they rule out at once. */
static int
check_start(struct ws_reader *r)
{
	if (r->head[0] & 0x70)
		return fail(r, WS_PROTOCOL_ERROR, "reserved bits set"), -1;
	if (!(r->head[1] & 0x80))
		return fail(r, WS_PROTOCOL_ERROR, "a client frame unmasked"), -1;
	return 0;
}

/* A whole head: its checks, then ready for the payload. */
static int
start_frame(struct ws_reader *r)
{
	const unsigned char *h = r->head;
	size_t len7 = h[1] & 0x7f, at = 2, i;

	r->fin = h[0] & 0x80;
	r->op = h[0] & 0x0f;
	r->left = len7;
	if (len7 >= 126) {
		r->left = 0;
		for (i = 0; i < (len7 == 126 ? 2u : 8u); i++)
			r->left = r->left << 8 | h[at++];
		if (r->left >> 63)
			return fail(r, WS_PROTOCOL_ERROR, "a length over 2^63"),
			    -1;
	}
	memcpy(r->mask, h + at, 4);
	r->masked = 0;
	if (r->op & 0x8) {
		if (r->op > WS_PONG)
			return fail(r, WS_PROTOCOL_ERROR, "an unknown opcode"),
			    -1;
		if (!r->fin || r->left > 125)
			return fail(r, WS_PROTOCOL_ERROR, "a control frame "
			    "fragmented or over 125 bytes"), -1;
		buf_reset(&r->control);
		return 0;
	}
	if (r->op > WS_BINARY)
		return fail(r, WS_PROTOCOL_ERROR, "an unknown opcode"), -1;
	if (r->op == WS_CONT && r->message_op == 0)
		return fail(r, WS_PROTOCOL_ERROR, "a continuation of nothing"),
		    -1;
	if (r->op != WS_CONT && r->message_op != 0)
		return fail(r, WS_PROTOCOL_ERROR, "a new message inside a "
		    "fragmented one"), -1;
	if (r->op != WS_CONT) {
		r->message_op = r->op;
		buf_reset(&r->message);
		r->utf8 = (struct utf8)UTF8_INIT;
	}
	if (r->left > r->max - r->message.len)
		return fail(r, WS_TOO_BIG, "a message over the bound"), -1;
	return 0;
}

/* Close codes a peer may send (section 7.4). */
static int
code_valid(int code)
{
	return (code >= 1000 && code <= 1003) ||
	    (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

/* A control frame read whole. */
static int
end_control(struct ws_reader *r, struct ws_message *m)
{
	struct utf8 u = UTF8_INIT;
	const unsigned char *p = (const unsigned char *)r->control.data;

	m->op = r->op;
	m->data = r->control.data != NULL ? r->control.data : "";
	m->len = r->control.len;
	m->code = WS_NO_STATUS;
	if (r->op != WS_CLOSE || m->len == 0)
		return 0;
	if (m->len == 1)
		return fail(r, WS_PROTOCOL_ERROR, "a close code of one byte"),
		    -1;
	m->code = p[0] << 8 | p[1];
	if (!code_valid(m->code))
		return fail(r, WS_PROTOCOL_ERROR, "a close code not allowed"),
		    -1;
	if (utf8_feed(&u, p + 2, m->len - 2) < 0 || utf8_done(&u) < 0)
		return fail(r, WS_BAD_DATA, "a close reason not UTF-8"), -1;
	m->data += 2;
	m->len -= 2;
	return 0;
}

/* Unmasks n payload bytes onto the message or the control frame. */
static int
take_payload(struct ws_reader *r, const unsigned char *p, size_t n)
{
	struct buf *to = r->op & 0x8 ? &r->control : &r->message;
	size_t from = to->len, i;

	buf_add(to, p, n);
	for (i = 0; i < n; i++)
		to->data[from + i] ^= (char)r->mask[r->masked++ % 4];
	r->left -= n;
	if (!(r->op & 0x8) && r->message_op == WS_TEXT &&
	    utf8_feed(&r->utf8, to->data + from, n) < 0)
		return fail(r, WS_BAD_DATA, "text that is not UTF-8"), -1;
	return 0;
}

/*
 * Reads frames from n bytes until a message or a control frame is
 * whole: returns the bytes consumed, with m->op set if one is (else
 * 0: more is needed). -1 on a protocol error: r->code and r->why say
 * which; nothing more may be read.
 */
ssize_t
ws_read(struct ws_reader *r, const void *data, size_t n, struct ws_message *m)
{
	const unsigned char *p = data;
	size_t used = 0, take;

	m->op = 0;
	while (used < n) {
		if (r->head_len < head_size(r)) {
			r->head[r->head_len++] = p[used++];
			if (r->head_len == 2 && check_start(r) < 0)
				return -1;
			if (r->head_len == head_size(r) && start_frame(r) < 0)
				return -1;
			if (r->head_len < head_size(r) || r->left > 0)
				continue;
		} else {
			take = r->left < n - used ? (size_t)r->left : n - used;
			if (take_payload(r, p + used, take) < 0)
				return -1;
			used += take;
			if (r->left > 0)
				continue;
		}
		r->head_len = 0;	/* the frame is whole */
		if (r->op & 0x8)
			return end_control(r, m) < 0 ? -1 : (ssize_t)used;
		if (!r->fin)
			continue;
		if (r->message_op == WS_TEXT && utf8_done(&r->utf8) < 0)
			return fail(r, WS_BAD_DATA, "text that is not UTF-8");
		m->op = r->message_op;
		m->data = r->message.data != NULL ? r->message.data : "";
		m->len = r->message.len;
		r->message_op = 0;
		return (ssize_t)used;
	}
	return (ssize_t)used;
}

/* One unfragmented frame from the server: unmasked (section 5.1). */
void
ws_frame(struct buf *out, enum ws_op op, const void *p, size_t n)
{
	unsigned char head[10];
	size_t len = 2, i;

	head[0] = (unsigned char)(0x80 | op);
	if (n < 126) {
		head[1] = (unsigned char)n;
	} else if (n < 65536) {
		head[1] = 126;
		head[2] = (unsigned char)(n >> 8);
		head[3] = (unsigned char)n;
		len = 4;
	} else {
		head[1] = 127;
		for (i = 0; i < 8; i++)
			head[2 + i] = (unsigned char)((unsigned long long)n >>
			    (56 - 8 * i));
		len = 10;
	}
	buf_add(out, head, len);
	buf_add(out, p, n);
}

/* A close frame with its code and a reason of at most 123 bytes. */
void
ws_close_frame(struct buf *out, int code, const char *reason)
{
	char payload[125];
	size_t n = strlen(reason);

	if (n > sizeof payload - 2)
		n = sizeof payload - 2;
	payload[0] = (char)(code >> 8);
	payload[1] = (char)code;
	memcpy(payload + 2, reason, n);
	ws_frame(out, WS_CLOSE, payload, n + 2);
}
