/*
 * Tests the streaming JSON parser (lib/http/json.h): compact copies, the
 * reasons given for bad input, string decoding, integers, one-line
 * mode and escaping, each fed whole and one byte per read.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "unit.h"

/* A source over a buffer; step > 0 hands out at most step bytes a read. */
struct mem {
	const char	*p;
	size_t		 left;
	size_t		 step;
};

static struct {
	struct mem	 mem;
	struct reader	 in;
	struct writer	 out;
	struct json	 j;
	struct buf	 got;
} t;

static const size_t steps[] = { 0, 1 };

/* CHECK that first names the table row (and read size) it failed on. */
#define CHECK_AT(i, cond) do {						\
	if (!(cond))							\
		printf("# row %zu, step %zu, why \"%s\"\n",		\
		    (size_t)(i), t.mem.step, t.j.why);			\
	CHECK(cond);							\
} while (0)

static ssize_t
mem_read(void *ctx, void *p, size_t n)
{
	struct mem *m = ctx;

	if (m->step > 0 && n > m->step)
		n = m->step;
	if (n > m->left)
		n = m->left;
	memcpy(p, m->p, n);
	m->p += n;
	m->left -= n;
	return (ssize_t)n;
}

static int
buf_write(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
	return 0;
}

static void
start_n(const char *s, size_t n, size_t step, int one_line)
{
	t.mem = (struct mem){ s, n, step };
	reader_init(&t.in, (struct source){ mem_read, &t.mem });
	writer_init(&t.out, (struct sink){ buf_write, &t.got });
	buf_reset(&t.got);
	json_init(&t.j, &t.in, one_line);
}

static void
start(const char *s, size_t step, int one_line)
{
	start_n(s, strlen(s), step, one_line);
}

static const char *
output(void)
{
	writer_flush(&t.out);
	return buf_cstr(&t.got);
}

static void
copies_compactly(void)
{
	static const struct { const char *in, *out; } rows[] = {
		{ " { \"a\" : [1, 2.5e3, -0, true, null, \"x\\u00e9\\n\"] } ",
		    "{\"a\":[1,2.5e3,-0,true,null,\"x\\u00e9\\n\"]}" },
		{ "\t\r\n 0 \n", "0" },
		{ "-1.5E+10", "-1.5E+10" },
		{ "[ ]", "[]" },
		{ "{ }", "{}" },
		{ "{\"a\" :{\"b\": [ {} ,[]]} , \"c\":false}",
		    "{\"a\":{\"b\":[{},[]]},\"c\":false}" },
		{ "\"\\/ \\\" \xC3\xA9 \xF0\x9F\x98\x80\"",
		    "\"\\/ \\\" \xC3\xA9 \xF0\x9F\x98\x80\"" },
		{ "[\"a , b\" , \"{\"]", "[\"a , b\",\"{\"]" },
	};
	size_t i, s;
	int rc;

	for (s = 0; s < sizeof steps / sizeof steps[0]; s++)
		for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			start(rows[i].in, steps[s], 0);
			rc = json_value(&t.j, &t.out);
			CHECK_AT(i, rc == 0);
			CHECK_AT(i, strcmp(output(), rows[i].out) == 0);
			CHECK_AT(i, json_peek(&t.j) == -1);
		}
}

static void
rejects_with_reason(void)
{
	static const struct { const char *in, *why; } rows[] = {
		{ "[1,]", "unexpected ']', expected a JSON value" },
		{ "{\"a\":1,}", "unexpected '}', expected a member name" },
		{ "[01]", "unexpected '1', expected ',' or ']'" },
		{ "[-01]", "unexpected '1', expected ',' or ']'" },
		{ "[1.]", "unexpected ']', expected a digit" },
		{ "1.", "unexpected end of input, expected a digit" },
		{ ".5", "unexpected '.', expected a JSON value" },
		{ "-", "unexpected end of input, expected a digit" },
		{ "1e+", "unexpected end of input, expected a digit" },
		{ "\"abc",
		    "unexpected end of input, expected a string character" },
		{ "\"a\tb\"",
		    "unexpected byte 0x09, expected a string character" },
		{ "\"\xC0\x80\"", "invalid UTF-8 in string" },
		{ "\"\xED\xA0\x80\"", "invalid UTF-8 in string" },
		{ "\"\xE2\x82\"", "invalid UTF-8 in string" },
		{ "\"\xFF\"", "invalid UTF-8 in string" },
		{ "\"\\x\"", "unexpected 'x', expected an escape character" },
		{ "\"\\u12G4\"", "unexpected 'G', expected a hex digit" },
		{ "tru", "unexpected end of input, expected true" },
		{ "nulL", "unexpected 'L', expected null" },
		{ "{\"a\" 1}", "unexpected '1', expected ':'" },
		{ "{1:2}", "unexpected '1', expected a member name" },
		{ "[1 2]", "unexpected '2', expected ',' or ']'" },
		{ "", "unexpected end of input, expected a JSON value" },
		{ "'a'", "unexpected ''', expected a JSON value" },
		{ "\x01", "unexpected byte 0x01, expected a JSON value" },
	};
	size_t i, s;
	int rc;

	for (s = 0; s < sizeof steps / sizeof steps[0]; s++)
		for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			start(rows[i].in, steps[s], 0);
			rc = json_value(&t.j, &t.out);
			CHECK_AT(i, rc < 0);
			CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
		}
}

/*
 * A surrogate is a character only with its other half: alone, it makes
 * the value invalid on every path, copied (as records carry bodies and
 * member names), only validated (as bodies are classified) or decoded;
 * a pair is copied as a pair.
 */
static void
lone_surrogates_are_invalid(void)
{
	static const struct { const char *in, *why; } rows[] = {
		{ "\"\\ud800\"", "lone high surrogate \\uD800" },
		{ "\"n\\uDBFF\"", "lone high surrogate \\uDBFF" },
		{ "\"\\udc00\"", "lone low surrogate \\uDC00" },
		{ "\"\\uDFFFx\"", "lone low surrogate \\uDFFF" },
		{ "\"\\ud800\\u0041\"", "lone high surrogate \\uD800" },
		{ "\"\\ud800\\ud800\"", "lone high surrogate \\uD800" },
		{ "\"\\ud800\\n\"", "lone high surrogate \\uD800" },
		{ "\"\\ude00\\ud83d\"", "lone low surrogate \\uDE00" },
		{ "{\"restaurants\":[{\"name\":\"n\\ud800\"}]}",
		    "lone high surrogate \\uD800" },
		{ "{\"\\udfff\":1}", "lone low surrogate \\uDFFF" },
		{ "[\"\\ud83d\\ude00\",\"\\ud83d\"]",
		    "lone high surrogate \\uD83D" },
	};
	size_t i, s;
	int rc;

	for (s = 0; s < sizeof steps / sizeof steps[0]; s++)
		for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			start(rows[i].in, steps[s], 0);
			rc = json_value(&t.j, &t.out);
			CHECK_AT(i, rc < 0);
			CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
			start(rows[i].in, steps[s], 0);
			rc = json_value(&t.j, NULL);
			CHECK_AT(i, rc < 0);
			CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
			if (rows[i].in[0] != '"')
				continue;
			start(rows[i].in, steps[s], 0);
			rc = json_string(&t.j, &t.out);
			CHECK_AT(i, rc < 0);
			CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
		}
	start("[\"\\uD83D\\uDE00\",{\"\\udbff\\udfff\":\"\\u00e9\"}]", 0, 0);
	rc = json_value(&t.j, &t.out);
	CHECK(rc == 0);
	CHECK(strcmp(output(),
	    "[\"\\ud83d\\ude00\",{\"\\udbff\\udfff\":\"\\u00e9\"}]") == 0);
}

/* A value ends where the grammar ends it; the caller sees what follows. */
static void
leading_zero_leaves_rest(void)
{
	start("01", 0, 0);
	CHECK(json_value(&t.j, &t.out) == 0);
	CHECK(strcmp(output(), "0") == 0);
	CHECK(json_peek(&t.j) == '1');
}

static void
depth_limit(void)
{
	char *s = malloc(2 * JSON_MAX_DEPTH + 3);
	size_t n;
	int rc;

	for (n = JSON_MAX_DEPTH; n <= JSON_MAX_DEPTH + 1; n++) {
		memset(s, '[', n);
		memset(s + n, ']', n);
		s[2 * n] = '\0';
		start(s, 0, 0);
		rc = json_value(&t.j, &t.out);
		if (n == JSON_MAX_DEPTH) {
			CHECK(rc == 0);
			CHECK(strcmp(output(), s) == 0);
		} else {
			CHECK(rc < 0);
			CHECK(strcmp(t.j.why, "nesting deeper than 512") == 0);
		}
	}
	free(s);
}

static void
string_decodes(void)
{
	static const struct { const char *in, *out; size_t len; } rows[] = {
		{ "\"plain\"", "plain", 5 },
		{ "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8 },
		{ "\"\\u00e9\"", "\xC3\xA9", 2 },
		{ "\"\\u20AC\"", "\xE2\x82\xAC", 3 },
		{ "\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4 },
		{ "\"\\uD83D\\uDE00!\"", "\xF0\x9F\x98\x80!", 5 },
		{ "\"\\udbff\\udfff\"", "\xF4\x8F\xBF\xBF", 4 },
		{ "\"a\\u0000b\"", "a\0b", 3 },
		{ "\"\xC3\xA9\"", "\xC3\xA9", 2 },
		{ " \"\"", "", 0 },
	};
	size_t i, s;
	int rc;
	const char *got;

	for (s = 0; s < sizeof steps / sizeof steps[0]; s++)
		for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			start(rows[i].in, steps[s], 0);
			rc = json_string(&t.j, &t.out);
			got = output();
			CHECK_AT(i, rc == 0);
			CHECK_AT(i, t.got.len == rows[i].len);
			CHECK_AT(i, memcmp(got, rows[i].out, rows[i].len) == 0);
		}
}

static void
string_rejects(void)
{
	static const struct { const char *in, *why; } rows[] = {
		{ "\"\\ud800\"", "lone high surrogate \\uD800" },
		{ "\"\\ude00\"", "lone low surrogate \\uDE00" },
		{ "\"\\ud800\\u0041\"", "lone high surrogate \\uD800" },
		{ "\"\\ud800\\ud800\"", "lone high surrogate \\uD800" },
		{ "\"\\ud800x\"", "lone high surrogate \\uD800" },
		{ "\"\\u00\"", "unexpected '\"', expected a hex digit" },
		{ "12", "unexpected '1', expected a string" },
		{ "\"\xF4\x90\x80\x80\"", "invalid UTF-8 in string" },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		start(rows[i].in, 0, 0);
		rc = json_string(&t.j, &t.out);
		CHECK_AT(i, rc < 0);
		CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
	}
}

/*
 * The raw bytes of a string must be UTF-8 (RFC 8259 section 8.1): an
 * escape may not sit inside a multi-byte sequence, decoding or not.
 */
static void
string_escape_splits_utf8(void)
{
	static const char in[] = "\"\xC3\\u0041\xA9\"";
	int rc;

	start(in, 0, 0);
	CHECK(json_value(&t.j, NULL) < 0);
	start(in, 0, 0);
	rc = json_string(&t.j, &t.out);
	output();
	if (rc == 0)
		printf("# decoded to %02X %02X %02X\n",
		    (unsigned char)t.got.data[0], (unsigned char)t.got.data[1],
		    (unsigned char)t.got.data[2]);
	CHECK(rc < 0);
	CHECK(strcmp(t.j.why, "invalid UTF-8 in string") == 0);
}

static void
string_buf_limits(void)
{
	struct buf b = BUF_INIT;

	start("\"abcd\"", 0, 0);
	CHECK(json_string_buf(&t.j, &b, 4) == 0);
	CHECK(b.len == 4 && strcmp(b.data, "abcd") == 0);
	start("\"abcd\"", 0, 0);
	CHECK(json_string_buf(&t.j, &b, 3) < 0);
	CHECK(strcmp(t.j.why, "string longer than 3 bytes") == 0);
	start("\"\"", 0, 0);
	CHECK(json_string_buf(&t.j, &b, 0) == 0);
	CHECK(b.len == 0 && strcmp(b.data, "") == 0);
	start("\"a\\u0000b\"", 0, 0);
	CHECK(json_string_buf(&t.j, &b, 10) < 0);
	CHECK(strcmp(t.j.why, "string contains NUL") == 0);
	buf_free(&b);
}

/*
 * json.h promises memory use independent of the input size: an
 * over-long string is scanned to its end but not kept.
 */
static void
string_buf_bounded_by_max(void)
{
	const size_t n = 4 << 20;
	char *s = malloc(n);
	struct buf b = BUF_INIT;
	size_t kept;
	int rc;

	memset(s, 'a', n);
	s[0] = '"';
	s[n - 1] = '"';
	start_n(s, n, 0, 0);
	rc = json_string_buf(&t.j, &b, 100);
	kept = b.cap;
	buf_free(&b);
	free(s);
	CHECK(rc < 0);
	CHECK(strstr(t.j.why, "longer than 100 bytes") != NULL);
	CHECK(kept <= 256);
}

static void
integers(void)
{
	static const struct {
		const char	*in;
		long long	 v;
		const char	*why;	/* NULL: accepted */
	} rows[] = {
		{ "0", 0, NULL },
		{ " -0", 0, NULL },
		{ "42 ", 42, NULL },
		{ "9223372036854775807", LLONG_MAX, NULL },
		{ "-9223372036854775808", LLONG_MIN, NULL },
		{ "9223372036854775808", 0, "integer out of range" },
		{ "-9223372036854775809", 0, "integer out of range" },
		{ "99999999999999999999", 0, "integer out of range" },
		{ "1.5", 0, "expected an integer, not a fraction" },
		{ "1e3", 0, "expected an integer, not a fraction" },
		{ "-", 0, "unexpected end of input, expected an integer" },
		{ "\"1\"", 0, "unexpected '\"', expected an integer" },
	};
	long long v;
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		start(rows[i].in, 1, 0);
		v = -1;
		rc = json_integer(&t.j, &v);
		if (rows[i].why == NULL) {
			CHECK_AT(i, rc == 0);
			CHECK_AT(i, v == rows[i].v);
		} else {
			CHECK_AT(i, rc < 0);
			CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
		}
	}
}

/* RFC 8259 section 6 allows no leading zeros: "007" is not a number. */
static void
integer_rejects_leading_zero(void)
{
	long long v = -1;

	start("007", 0, 0);
	CHECK(json_integer(&t.j, &v) < 0);
}

static void
one_line_mode(void)
{
	static const struct { const char *in, *why; } rows[] = {
		{ "[1,\n2]", "unexpected end of line, expected a JSON value" },
		{ "{\"a\"\n:1}", "unexpected end of line, expected ':'" },
		{ "[1\n]", "unexpected end of line, expected ',' or ']'" },
		{ "\n1", "unexpected end of line, expected a JSON value" },
		{ "\"a\nb\"",
		    "unexpected end of line, expected a string character" },
	};
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		start(rows[i].in, 0, 1);
		rc = json_value(&t.j, NULL);
		CHECK_AT(i, rc < 0);
		CHECK_AT(i, strcmp(t.j.why, rows[i].why) == 0);
		if (i < 4) {	/* the newline is left for the caller */
			CHECK_AT(i, json_peek(&t.j) == '\n');
			start(rows[i].in, 0, 0);
			rc = json_value(&t.j, NULL);
			CHECK_AT(i, rc == 0);
		}
	}
}

static void
write_string_escapes(void)
{
	static const struct { const char *in; size_t len; const char *out; }
	    rows[] = {
		{ "a\"b", 3, "\"a\\\"b\"" },
		{ "a\\b", 3, "\"a\\\\b\"" },
		{ "\n\r\t", 3, "\"\\n\\r\\t\"" },
		{ "\x1f", 1, "\"\\u001f\"" },
		{ "\x7f", 1, "\"\\u007f\"" },
		{ "\0", 1, "\"\\u0000\"" },
		{ "\b\f", 2, "\"\\u0008\\u000c\"" },
		{ "/ \xC3\xA9", 4, "\"/ \xC3\xA9\"" },
		{ "", 0, "\"\"" },
		/* C1 controls are escaped; UTF-8 beyond them kept whole */
		{ "\xC2\x9B\xC2\xA0", 4, "\"\\u009b\xC2\xA0\"" },
		{ "\xE2\x9C\x93\xF0\x9F\x98\x80", 7,
		    "\"\xE2\x9C\x93\xF0\x9F\x98\x80\"" },
		/* a byte that is not UTF-8 is its ISO-8859-1 character, */
		{ "\xFF", 1, "\"\xC3\xBF\"" },
		{ "a\xC3", 2, "\"a\xC3\x83\"" },
		{ "\xC0\xAF", 2, "\"\xC3\x80\xC2\xAF\"" },
		{ "\xED\xA0\x80", 3, "\"\xC3\xAD\xC2\xA0\\u0080\"" },
		/* the UTF-8 beside it kept as it is, never encoded twice */
		{ "\xC3\xA9\xFF", 3, "\"\xC3\xA9\xC3\xBF\"" },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		start("", 0, 0);
		json_write_string(&t.out, rows[i].in, rows[i].len);
		CHECK_AT(i, strcmp(output(), rows[i].out) == 0);
	}
}

/* Every ASCII byte survives json_write_string then json_string. */
static void
write_then_decode(void)
{
	char all[128], *text;
	size_t i;

	for (i = 0; i < sizeof all; i++)
		all[i] = (char)i;
	start("", 0, 0);
	json_write_string(&t.out, all, sizeof all);
	text = strdup(output());
	start(text, 1, 0);
	CHECK(json_string(&t.j, &t.out) == 0);
	output();
	free(text);
	CHECK(t.got.len == sizeof all);
	CHECK(memcmp(t.got.data, all, sizeof all) == 0);
}

/* A string longer than the reader's and the writer's buffers. */
static void
long_string(void)
{
	const size_t n = 3 * IO_BUFSIZE;
	char *s = malloc(n + 3);

	memset(s + 1, 'x', n);
	memcpy(s + IO_BUFSIZE - 1, "\xC3\xA9", 2);
	s[0] = '"';
	s[n + 1] = '"';
	s[n + 2] = '\0';
	start(s, 0, 0);
	CHECK(json_value(&t.j, &t.out) == 0);
	CHECK(strcmp(output(), s) == 0);
	free(s);
}

static const struct unit_test tests[] = {
	TEST(copies_compactly),
	TEST(rejects_with_reason),
	TEST(lone_surrogates_are_invalid),
	TEST(leading_zero_leaves_rest),
	TEST(depth_limit),
	TEST(string_decodes),
	TEST(string_rejects),
	TEST(string_escape_splits_utf8),
	TEST(string_buf_limits),
	TEST(string_buf_bounded_by_max),
	TEST(integers),
	TEST(integer_rejects_leading_zero),
	TEST(one_line_mode),
	TEST(write_string_escapes),
	TEST(write_then_decode),
	TEST(long_string),
};

UNIT_MAIN(tests)
