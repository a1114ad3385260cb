/*
 * Tests how a stored response says how it answered (lib/serve/stored.h):
 * its Cache-Status (RFC 9211) for each way the cache-through came by
 * it, and the access log's word.
 */
#include <string.h>

#include "serve/stored.h"
#include "unit.h"

static int
status_is(const struct stored_how *h, enum through_how kind, long long ttl,
    const char *want)
{
	char out[128];

	stored_cache_status(h, kind, ttl, out, sizeof out);
	if (strcmp(out, want) != 0)
		printf("# got \"%s\", want \"%s\"\n", out, want);
	return strcmp(out, want) == 0;
}

/* A fresh hit, and what else a hit may have been. */
static void
hits(void)
{
	struct stored_how plain = { 0, 0, 0 }, shared = { 1, 0, 0 },
	    collapsed = { 0, 1, 0 }, after_stale = { 0, 1, 1 };

	CHECK(status_is(&plain, THROUGH_HIT, 60, "relay; hit; ttl=60"));
	CHECK(status_is(&shared, THROUGH_HIT, 5,
	    "relay; hit; ttl=5; detail=shared"));
	/* it waited for another request's miss: forwarded, not a hit */
	CHECK(status_is(&collapsed, THROUGH_HIT, 60,
	    "relay; fwd=miss; collapsed; ttl=60"));
	CHECK(status_is(&after_stale, THROUGH_HIT, 60,
	    "relay; fwd=stale; collapsed; ttl=60"));
}

/* Stale answers say why they were allowed; a 304 says it was asked. */
static void
stale_and_revalidated(void)
{
	struct stored_how h = { 0, 0, 1 };

	CHECK(status_is(&h, THROUGH_STALE, -3,
	    "relay; hit; ttl=-3; detail=stale-while-revalidate"));
	CHECK(status_is(&h, THROUGH_STALE_ERROR, -30,
	    "relay; hit; ttl=-30; detail=stale-if-error"));
	CHECK(status_is(&h, THROUGH_STALE_LIMITED, -1,
	    "relay; hit; ttl=-1; detail=upstream-rate"));
	CHECK(status_is(&h, THROUGH_REVALIDATED, 300,
	    "relay; fwd=stale; fwd-status=304; ttl=300"));
}

static void
log_words(void)
{
	struct stored_how plain = { 0, 0, 0 }, collapsed = { 0, 1, 0 };

	CHECK(strcmp(stored_log_word(&plain, THROUGH_HIT), "hit") == 0);
	CHECK(strcmp(stored_log_word(&collapsed, THROUGH_HIT),
	    "collapsed") == 0);
	CHECK(strcmp(stored_log_word(&plain, THROUGH_REVALIDATED),
	    "revalidated") == 0);
	CHECK(strcmp(stored_log_word(&plain, THROUGH_STALE), "stale") == 0);
	CHECK(strcmp(stored_log_word(&plain, THROUGH_STALE_ERROR),
	    "stale") == 0);
}

static const struct unit_test tests[] = {
	TEST(hits),
	TEST(stale_and_revalidated),
	TEST(log_words),
};

UNIT_MAIN(tests)
