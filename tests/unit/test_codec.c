/*
 * Tests the two streaming codecs: base64 (lib/base/base64.h) with the
 * RFC 4648 vectors both ways, and UTF-8 validation (lib/base/utf8.h), each
 * with its input split across calls; and buf_addll's decimals.
 */
#include <limits.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/utf8.h"
#include "unit.h"

#define CHECK_AT(i, cond) do {						\
	if (!(cond))							\
		printf("# row %zu\n", (size_t)(i));			\
	CHECK(cond);							\
} while (0)

/* RFC 4648 section 10. */
static const struct { const char *plain, *coded; } vectors[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static struct buf out;
static struct writer w;

static int
buf_write(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
	return 0;
}

static void
start(void)
{
	buf_reset(&out);
	writer_init(&w, (struct sink){ buf_write, &out });
}

static const char *
output(void)
{
	writer_flush(&w);
	return buf_cstr(&out);
}

/* Encodes in two calls, split at cut. */
static const char *
encode(const void *p, size_t n, size_t cut)
{
	struct base64 b = BASE64_INIT;

	start();
	base64_encode(&b, &w, p, cut);
	base64_encode(&b, &w, (const char *)p + cut, n - cut);
	base64_encode_end(&b, &w);
	return output();
}

/* Decodes a whole string; returns -1 if any character or the end is refused. */
static int
decode(const char *s)
{
	struct base64 b = BASE64_INIT;

	start();
	for (; *s != '\0'; s++)
		if (base64_decode(&b, &w, (unsigned char)*s) < 0)
			return -1;
	output();
	return base64_decode_end(&b);
}

static void
base64_encodes_vectors(void)
{
	size_t i, cut, n;

	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		n = strlen(vectors[i].plain);
		for (cut = 0; cut <= n; cut++)
			CHECK_AT(i, strcmp(encode(vectors[i].plain, n, cut),
			    vectors[i].coded) == 0);
	}
}

static void
base64_decodes_vectors(void)
{
	size_t i;
	int rc;

	for (i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		rc = decode(vectors[i].coded);
		CHECK_AT(i, rc == 0);
		CHECK_AT(i, strcmp(output(), vectors[i].plain) == 0);
	}
}

static void
base64_decode_rejects(void)
{
	static const char *const rows[] = {
		"Zg=", "Zg===", "Z", "Zm9v=", "Zm9vYg==Zg==", "Zm8==", "=",
		"Zg=a", "Zm9v!", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9vY", "Z===",
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, decode(rows[i]) < 0);
}

/* All 256 byte values, encoded at every split, decode to themselves. */
static void
base64_round_trip(void)
{
	unsigned char all[256];
	char coded[400];
	size_t i, cut;

	for (i = 0; i < sizeof all; i++)
		all[i] = (unsigned char)(255 - i);
	for (cut = 0; cut <= sizeof all; cut += 37) {
		snprintf(coded, sizeof coded, "%s",
		    encode(all, sizeof all, cut));
		CHECK(strlen(coded) == 344);
		CHECK(decode(coded) == 0);
		CHECK(out.len == sizeof all && memcmp(out.data, all, 256) == 0);
	}
}

/* One state carried across calls, as when a body arrives in pieces. */
static void
base64_decode_streams(void)
{
	struct base64 b = BASE64_INIT;
	const char *s = "Zm9vYmE=";

	start();
	CHECK(base64_decode(&b, &w, s[0]) == 0);
	CHECK(base64_decode_end(&b) < 0);	/* mid-quantum */
	for (s++; *s != '\0'; s++)
		CHECK(base64_decode(&b, &w, *s) == 0);
	CHECK(base64_decode_end(&b) == 0);
	CHECK(strcmp(output(), "fooba") == 0);
}

static const struct { const char *s; size_t len; int valid; } utf8_rows[] = {
	{ "", 0, 1 },
	{ "plain ASCII\t\n", 13, 1 },
	{ "\0", 1, 1 },
	{ "\xC2\x80", 2, 1 },			/* U+0080 */
	{ "\xC3\xA9", 2, 1 },
	{ "\xDF\xBF", 2, 1 },			/* U+07FF */
	{ "\xE0\xA0\x80", 3, 1 },		/* U+0800 */
	{ "\xE2\x82\xAC", 3, 1 },
	{ "\xED\x9F\xBF", 3, 1 },		/* U+D7FF */
	{ "\xEE\x80\x80", 3, 1 },		/* U+E000 */
	{ "\xEF\xBF\xBF", 3, 1 },		/* U+FFFF */
	{ "\xF0\x90\x80\x80", 4, 1 },		/* U+10000 */
	{ "\xF0\x9F\x98\x80", 4, 1 },
	{ "\xF4\x8F\xBF\xBF", 4, 1 },		/* U+10FFFF */
	{ "a\xC3\xA9z\xF0\x9F\x98\x80", 8, 1 },
	{ "\xC0\x80", 2, 0 },			/* overlong NUL */
	{ "\xC1\xBF", 2, 0 },
	{ "\xE0\x80\x80", 3, 0 },
	{ "\xE0\x9F\xBF", 3, 0 },
	{ "\xF0\x80\x80\x80", 4, 0 },
	{ "\xF0\x8F\xBF\xBF", 4, 0 },
	{ "\xED\xA0\x80", 3, 0 },		/* U+D800 */
	{ "\xED\xBF\xBF", 3, 0 },		/* U+DFFF */
	{ "\xF4\x90\x80\x80", 4, 0 },		/* U+110000 */
	{ "\xF5\x80\x80\x80", 4, 0 },
	{ "\xF8\x88\x80\x80\x80", 5, 0 },
	{ "\xFE", 1, 0 },
	{ "\xFF", 1, 0 },
	{ "\x80", 1, 0 },			/* lone continuation */
	{ "a\xBF", 2, 0 },
	{ "\xC3\x41", 2, 0 },
	{ "\xE2\x28\xA1", 3, 0 },
	{ "\xC3", 1, 0 },			/* truncated at the end */
	{ "\xE2\x82", 2, 0 },
	{ "\xF0\x9F\x98", 3, 0 },
};

static int
utf8_valid(const char *s, size_t len, size_t cut)
{
	struct utf8 u = UTF8_INIT;

	return utf8_feed(&u, s, cut) == 0 &&
	    utf8_feed(&u, s + cut, len - cut) == 0 && utf8_done(&u) == 0;
}

static void
utf8_table(void)
{
	size_t i, cut;

	for (i = 0; i < sizeof utf8_rows / sizeof utf8_rows[0]; i++)
		for (cut = 0; cut <= utf8_rows[i].len; cut++)
			CHECK_AT(i, utf8_valid(utf8_rows[i].s, utf8_rows[i].len,
			    cut) == utf8_rows[i].valid);
}

static void
utf8_byte_at_a_time(void)
{
	const unsigned char *s;
	struct utf8 u;
	size_t i, k;
	int ok;

	for (i = 0; i < sizeof utf8_rows / sizeof utf8_rows[0]; i++) {
		s = (const unsigned char *)utf8_rows[i].s;
		u = (struct utf8)UTF8_INIT;
		ok = 1;
		for (k = 0; k < utf8_rows[i].len && ok; k++)
			ok = utf8_byte(&u, s[k]) == 0;
		CHECK_AT(i, (ok && utf8_done(&u) == 0) == utf8_rows[i].valid);
	}
}

/* A truncated sequence is only caught at the end, by utf8_done. */
static void
utf8_truncated_needs_done(void)
{
	struct utf8 u = UTF8_INIT;

	CHECK(utf8_feed(&u, "ok \xE2\x82", 5) == 0);
	CHECK(utf8_done(&u) < 0);
	CHECK(utf8_feed(&u, "\xAC", 1) == 0);
	CHECK(utf8_done(&u) == 0);
}

/* Decimals as printf's %lld writes them, to both ends of the range. */
static void
buf_addll_matches_printf(void)
{
	static const long long v[] = { 0, 7, -7, 10, 99, -100, 1234567890123,
	    LLONG_MAX, LLONG_MIN };
	struct buf b = BUF_INIT, p = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof v / sizeof v[0]; i++) {
		buf_reset(&b);
		buf_reset(&p);
		buf_addll(&b, v[i]);
		buf_printf(&p, "%lld", v[i]);
		CHECK_AT(i, strcmp(buf_cstr(&b), buf_cstr(&p)) == 0);
	}
	buf_free(&b);
	buf_free(&p);
}

static const struct unit_test tests[] = {
	TEST(base64_encodes_vectors),
	TEST(base64_decodes_vectors),
	TEST(base64_decode_rejects),
	TEST(base64_round_trip),
	TEST(base64_decode_streams),
	TEST(utf8_table),
	TEST(utf8_byte_at_a_time),
	TEST(utf8_truncated_needs_done),
	TEST(buf_addll_matches_printf),
};

UNIT_MAIN(tests)
