/*
 * Tests the shared tier's entry format (lib/tier/shared_entry.h): what goes
 * to Redis comes back the same, and what comes back from Redis is
 * checked as hostile: the wrong URL, bad numbers, lengths that are not
 * its size, fields that are not fields, and every truncation.
 */
#include <string.h>

#include "tier/shared_entry.h"
#include "unit.h"

static const struct cache_response sample = {
	.url = "http://up.example/a?b=1", .status = 200,
	.headers = "Content-Type: text/plain\r\nETag: \"v1\"\r\n",
	.request_headers = "Accept: */*\r\n",
	.request_time = 1700000000, .response_time = 1700000001,
};

static void
round_trip(void)
{
	struct buf b = BUF_INIT;
	struct shared_entry e;
	const char *why;

	shared_entry_encode(&b, &sample, "hello\0world", 11);
	CHECK(shared_entry_decode(b.data, b.len, sample.url, &e, &why) == 0);
	CHECK(why == NULL);
	CHECK(strcmp(e.r.url, sample.url) == 0 && e.r.status == 200);
	CHECK(strcmp(e.r.headers, sample.headers) == 0);
	CHECK(strcmp(e.r.request_headers, sample.request_headers) == 0);
	CHECK(e.r.request_time == 1700000000 && e.r.response_time == 1700000001);
	CHECK(e.body_len == 11 && memcmp(e.body, "hello\0world", 11) == 0);
	shared_entry_free(&e);
	/* any URL, for relay-cache purge --match */
	CHECK(shared_entry_decode(b.data, b.len, NULL, &e, &why) == 0);
	CHECK(strcmp(e.r.url, sample.url) == 0);
	shared_entry_free(&e);
	buf_free(&b);
}

/* Decoding text as the entry of url fails, with reason. */
static int
refused(const char *text, size_t n, const char *url, const char *reason)
{
	struct shared_entry e;
	const char *why = NULL;

	if (shared_entry_decode(text, n, url, &e, &why) == 0) {
		shared_entry_free(&e);
		printf("# accepted: %.*s\n", (int)n, text);
		return 0;
	}
	if (strcmp(why, reason) != 0) {
		printf("# '%s', not '%s'\n", why, reason);
		return 0;
	}
	return 1;
}

#define REFUSED(text, reason) \
	refused(text, sizeof text - 1, "http://x/", reason)

static void
hostile(void)
{
	struct buf b = BUF_INIT;
	size_t n;

	CHECK(REFUSED("HTTP/1.1 200 OK\r\n", "not an entry of this relay"));
	CHECK(REFUSED("relay-shared 2\n200 1 1\n9 0 0 0\nhttp://x/",
	    "not an entry of this relay"));
	CHECK(REFUSED("relay-shared 1\n1000 1 1\n9 0 0 0\nhttp://x/",
	    "a bad head"));
	CHECK(REFUSED("relay-shared 1\n-1 1 1\n9 0 0 0\nhttp://x/",
	    "a bad head"));
	CHECK(REFUSED("relay-shared 1\n200 5 4\n9 0 0 0\nhttp://x/",
	    "a bad head"));		/* a response before its request */
	CHECK(REFUSED("relay-shared 1\n200 -1 1\n9 0 0 0\nhttp://x/",
	    "a bad head"));
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 0 0 5\nhttp://x/",
	    "lengths that are not its size"));
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 0 0 0\nhttp://x/extra",
	    "lengths that are not its size"));
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 0 0 0\nhttp://y/",
	    "another URL's entry"));
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 6 0 0\nhttp://x/A: b\r\r",
	    "bad fields"));
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 6 0 0\nhttp://x/Ab\r\n\r\n",
	    "bad fields"));		/* no colon */
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 7 0 0\nhttp://x/A: \nb\r\n",
	    "bad fields"));		/* a bare LF in a value */
	CHECK(REFUSED("relay-shared 1\n200 1 1\n9 8 0 0\nhttp://x/A b: c\r\n",
	    "bad fields"));		/* a name that is no token */
	/* every truncation of a good one is refused */
	shared_entry_encode(&b, &sample, "body", 4);
	for (n = 0; n < b.len; n++) {
		struct shared_entry e;
		const char *why;

		CHECK(shared_entry_decode(b.data, n, sample.url, &e, &why) < 0);
	}
	buf_free(&b);
}

static const struct unit_test tests[] = {
	TEST(round_trip),
	TEST(hostile),
};

UNIT_MAIN(tests)
