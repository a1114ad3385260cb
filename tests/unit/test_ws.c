/*
 * Tests the WebSocket codec (lib/http/ws.h) and the SHA-1 under its
 * handshake (lib/base/sha1.h): RFC 3174's and RFC 6455's vectors, frames
 * read whole however they are split, each protocol error with its
 * close code, and the frames written back.
 */
#include <stdio.h>
#include <string.h>

#include "base/sha1.h"
#include "http/ws.h"
#include "unit.h"

static int
sha1_is(const char *text, size_t repeat, const char *hex)
{
	unsigned char d[SHA1_LEN];
	char got[2 * SHA1_LEN + 1];
	struct sha1 s;
	size_t i;

	sha1_init(&s);
	for (i = 0; i < repeat; i++)
		sha1_update(&s, text, strlen(text));
	sha1_final(&s, d);
	for (i = 0; i < SHA1_LEN; i++)
		snprintf(got + 2 * i, 3, "%02x", d[i]);
	return strcmp(got, hex) == 0;
}

static void
sha1_vectors(void)
{
	CHECK(sha1_is("abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"));
	CHECK(sha1_is("", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"));
	CHECK(sha1_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    1, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
	CHECK(sha1_is("a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"));
}

static void
handshake(void)
{
	struct buf out = BUF_INIT;
	const char *why;
	int status;

	CHECK(ws_handshake("GET", 1, "Host: x\r\nUpgrade: WebSocket\r\nConnection: "
	    "keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", &out, &status,
	    &why) == 0);
	CHECK(strstr(buf_cstr(&out), "\r\nSec-WebSocket-Accept: "
	    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") != NULL);
	CHECK(ws_handshake("POST", 1, "", &out, &status, &why) < 0 &&
	    status == 405);
	CHECK(ws_handshake("GET", 1, "Connection: upgrade\r\n", &out, &status,
	    &why) < 0 && status == 426);
	CHECK(ws_handshake("GET", 1, "Upgrade: websocket\r\nConnection: close\r\n",
	    &out, &status, &why) < 0 && status == 400);
	CHECK(ws_handshake("GET", 1, "Upgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Version: 8\r\n", &out, &status, &why) < 0 &&
	    status == 426);
	CHECK(ws_handshake("GET", 1, "Upgrade: websocket\r\nConnection: upgrade\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n", &out,
	    &status, &why) < 0 && status == 400);
	/* RFC 6455 section 4.1: HTTP/1.1 at least */
	CHECK(ws_handshake("GET", 0, "Upgrade: websocket\r\nConnection: "
	    "upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
	    "dGhlIHNhbXBsZSBub25jZQ==\r\n", &out, &status, &why) < 0 &&
	    status == 400);
	buf_free(&out);
}

/* A client's frame: masked with a fixed key. */
static void
client_frame(struct buf *out, int first, const void *p, size_t n)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	unsigned char head[8];
	size_t i, len = 2;

	head[0] = (unsigned char)first;
	if (n < 126) {
		head[1] = (unsigned char)(0x80 | n);
	} else {
		head[1] = 0x80 | 126;
		head[2] = (unsigned char)(n >> 8);
		head[3] = (unsigned char)n;
		len = 4;
	}
	buf_add(out, head, len);
	buf_add(out, key, 4);
	for (i = 0; i < n; i++)
		buf_addc(out, (char)(((const unsigned char *)p)[i] ^ key[i % 4]));
}

/*
 * Reads all of in, split into pieces of step bytes, into the messages'
 * ops and texts ("1:abc 9:ping "); returns the close code on an error.
 */
static int
read_all(const struct buf *in, size_t step, size_t max, char *got,
    size_t len)
{
	struct ws_reader r;
	struct ws_message m;
	size_t at = 0, n, piece;
	ssize_t used;
	int rc = 0;

	ws_reader_init(&r, max);
	got[0] = '\0';
	while (at < in->len) {
		piece = in->len - at < step ? in->len - at : step;
		for (n = 0; n < piece; n += (size_t)used) {
			if ((used = ws_read(&r, in->data + at + n, piece - n,
			    &m)) < 0) {
				rc = r.code;
				goto out;
			}
			if (m.op != 0)
				snprintf(got + strlen(got), len - strlen(got),
				    "%d:%.*s ", m.op, (int)m.len, m.data);
		}
		at += piece;
	}
out:
	ws_reader_free(&r);
	return rc;
}

static void
frames_read_whole_however_split(void)
{
	struct buf in = BUF_INIT;
	char big[300], got[1024], want[1024];
	size_t step;

	memset(big, 'b', sizeof big);
	client_frame(&in, 0x01, "hel", 3);	/* text, not final */
	client_frame(&in, 0x89, "ping", 4);	/* a ping between */
	client_frame(&in, 0x80, "lo", 2);	/* the last fragment */
	client_frame(&in, 0x81, big, sizeof big);	/* 16-bit length */
	client_frame(&in, 0x82, "", 0);		/* an empty binary */
	snprintf(want, sizeof want, "9:ping 1:hello 1:%.*s 2: ",
	    (int)sizeof big, big);
	for (step = 1; step <= in.len; step++) {
		CHECK(read_all(&in, step, 1000, got, sizeof got) == 0);
		CHECK(strcmp(got, want) == 0);
	}
	buf_free(&in);
}

static int
fails_with(int first, const void *p, size_t n, int code)
{
	struct buf in = BUF_INIT;
	char got[256];
	int rc;

	client_frame(&in, first, p, n);
	rc = read_all(&in, in.len, 100, got, sizeof got);
	buf_free(&in);
	return rc == code;
}

static void
protocol_errors(void)
{
	struct buf in = BUF_INIT;
	char got[256], long_ping[126];

	memset(long_ping, 'p', sizeof long_ping);
	CHECK(fails_with(0xc1, "x", 1, WS_PROTOCOL_ERROR));	/* RSV1 */
	CHECK(fails_with(0x83, "x", 1, WS_PROTOCOL_ERROR));	/* opcode 3 */
	CHECK(fails_with(0x8b, "x", 1, WS_PROTOCOL_ERROR));	/* opcode 11 */
	CHECK(fails_with(0x09, "x", 1, WS_PROTOCOL_ERROR));	/* ping, not final */
	CHECK(fails_with(0x89, long_ping, sizeof long_ping, WS_PROTOCOL_ERROR));
	CHECK(fails_with(0x80, "x", 1, WS_PROTOCOL_ERROR));	/* a continuation */
	CHECK(fails_with(0x81, "\xc3\x28", 2, WS_BAD_DATA));
	CHECK(fails_with(0x81, "\xed\xa0\x80", 3, WS_BAD_DATA));	/* a surrogate */
	CHECK(fails_with(0x81, "\xe2\x82", 2, WS_BAD_DATA));	/* cut short */
	CHECK(fails_with(0x81, long_ping, 101, WS_TOO_BIG));
	CHECK(fails_with(0x88, "\x03", 1, WS_PROTOCOL_ERROR));
	CHECK(fails_with(0x88, "\x03\xed", 2, WS_PROTOCOL_ERROR));	/* 1005 */
	CHECK(fails_with(0x88, "\x03\xe8\xff", 3, WS_BAD_DATA));
	CHECK(fails_with(0x88, "\x03\xe8ok", 4, 0));
	/* a text frame while another message is fragmented */
	client_frame(&in, 0x01, "a", 1);
	client_frame(&in, 0x81, "b", 1);
	CHECK(read_all(&in, in.len, 100, got, sizeof got) ==
	    WS_PROTOCOL_ERROR);
	/* the bound counts every fragment of a message */
	buf_reset(&in);
	client_frame(&in, 0x01, long_ping, 60);
	client_frame(&in, 0x80, long_ping, 60);
	CHECK(read_all(&in, in.len, 100, got, sizeof got) == WS_TOO_BIG);
	/* unmasked: refused at its second byte, whatever its length says */
	buf_reset(&in);
	buf_add(&in, "\x81\x7f", 2);
	CHECK(read_all(&in, 2, 100, got, sizeof got) == WS_PROTOCOL_ERROR);
	buf_free(&in);
}

static void
frames_written(void)
{
	struct buf out = BUF_INIT;
	char big[70000];

	ws_frame(&out, WS_TEXT, "hi", 2);
	CHECK(out.len == 4 && memcmp(out.data, "\x81\x02hi", 4) == 0);
	buf_reset(&out);
	ws_frame(&out, WS_TEXT, big, 126);
	CHECK(out.len == 130 && memcmp(out.data, "\x81\x7e\x00\x7e", 4) == 0);
	buf_reset(&out);
	memset(big, 0, sizeof big);
	ws_frame(&out, WS_BINARY, big, sizeof big);
	CHECK(out.len == sizeof big + 10 && memcmp(out.data,
	    "\x82\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10) == 0);
	buf_reset(&out);
	ws_close_frame(&out, WS_TOO_BIG, "too big");
	CHECK(out.len == 11 && memcmp(out.data, "\x88\x09\x03\xf1too big", 11)
	    == 0);
	buf_free(&out);
}

static const struct unit_test tests[] = {
	TEST(sha1_vectors),
	TEST(handshake),
	TEST(frames_read_whole_however_split),
	TEST(protocol_errors),
	TEST(frames_written),
};

UNIT_MAIN(tests)
