/*
 * Fresh entries in memory (lib/store/hot.h): found by URL with a copy of
 * their own, only small GET responses that do not vary, everything
 * dropped past the byte bound, and an entry in use outliving a clear;
 * header fields kept as a hit sends them.
 */
#include <stdlib.h>
#include <string.h>

#include "store/hot.h"
#include "unit.h"

static struct store_entry
entry(const char *url, const char *headers, long long size)
{
	struct store_entry e = { 0 };

	e.method = (char *)"GET";
	e.url = (char *)url;
	e.variant = (char *)"";
	e.headers = (char *)headers;
	e.status = 200;
	e.size = size;
	e.lifetime = 60;
	return e;
}

static void
keeps_a_copy(void)
{
	struct hot *hot = hot_new();
	char url[] = "http://a/1", body[] = "hello";
	struct store_entry e = entry(url, "Content-Type: text/plain\r\n"
	    "Age: 3\r\nKeep-Alive: timeout=5\r\n", 5);
	struct hot_entry *h;

	CHECK(hot_get(hot, url) == NULL);
	hot_put(hot, &e, body);
	memset(url + 9, '2', 1);	/* the caller's strings may change */
	memset(body, 'x', 5);
	CHECK(hot_get(hot, "http://a/2") == NULL);
	CHECK((h = hot_get(hot, "http://a/1")) != NULL);
	CHECK(memcmp(h->body, "hello", 5) == 0 && h->e.size == 5);
	/* Kept as sent from the cache: no Age of theirs, no hop-by-hop. */
	CHECK(strcmp(h->e.headers, "Content-Type: text/plain\r\n") == 0);
	CHECK(h->e.etag == NULL && h->e.lifetime == 60);
	hot_clear(hot);
	CHECK(hot_get(hot, "http://a/1") == NULL);
	CHECK(memcmp(h->body, "hello", 5) == 0);	/* still in use */
	hot_release(h);
	hot_free(hot);
}

static void
keeps_what_fits(void)
{
	struct store_entry e;

	e = entry("u", "", 0);
	CHECK(hot_fits(&e));
	e = entry("u", "Vary: Accept\r\n", 3);
	CHECK(!hot_fits(&e));
	e = entry("u", "", HOT_MAX_BODY + 1);
	CHECK(!hot_fits(&e));
	e = entry("u", "", 3);
	e.variant = (char *)"accept: x";
	CHECK(!hot_fits(&e));
	e = entry("u", "", 3);
	e.method = (char *)"HEAD";
	CHECK(!hot_fits(&e));
}

static void
stays_within_its_bound(void)
{
	struct hot *hot = hot_new();
	char *body = calloc(1, HOT_MAX_BODY), url[32];
	struct store_entry e;
	struct hot_entry *h;
	int i, kept = 0;

	for (i = 0; i < HOT_MAX_BYTES / HOT_MAX_BODY + 8; i++) {
		snprintf(url, sizeof url, "http://a/%d", i);
		e = entry(url, "", HOT_MAX_BODY);
		hot_put(hot, &e, body);
	}
	for (i = 0; i < HOT_MAX_BYTES / HOT_MAX_BODY + 8; i++) {
		snprintf(url, sizeof url, "http://a/%d", i);
		if ((h = hot_get(hot, url)) != NULL) {
			kept++;
			hot_release(h);
		}
	}
	CHECK(kept > 0 && kept < HOT_MAX_BYTES / HOT_MAX_BODY);
	snprintf(url, sizeof url, "http://a/%d", i - 1);
	CHECK((h = hot_get(hot, url)) != NULL);	/* the newest stays */
	hot_release(h);
	free(body);
	hot_free(hot);
}

static const struct unit_test tests[] = {
	TEST(keeps_a_copy),
	TEST(keeps_what_fits),
	TEST(stays_within_its_bound),
};

UNIT_MAIN(tests)
