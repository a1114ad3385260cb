/*
 * Tests throttling's pure part (lib/policy/throttle.h): the bucket a request
 * counts against, the RateLimit fields and a refusal.
 */
#include <stdio.h>
#include <string.h>

#include "policy/throttle.h"
#include "unit.h"

static int
key_is(struct throttle_policy *p, const char *peer, const char *fields,
    const char *route, const char *want)
{
	struct buf key = BUF_INIT;
	int same;

	throttle_key(&key, p, peer, fields, route);
	same = strcmp(buf_cstr(&key), want) == 0;
	if (!same)
		printf("# key: %s\n", buf_cstr(&key));
	buf_free(&key);
	return same;
}

static void
keys(void)
{
	struct throttle_policy p = { .name = "default" };

	CHECK(throttle_key_parse("peer", &p) == 0);
	CHECK(key_is(&p, "127.0.0.1:52102", "", "/x", "default\n127.0.0.1"));
	CHECK(key_is(&p, "[::1]:52102", "", "/x", "default\n[::1]"));
	CHECK(key_is(&p, NULL, "", "/x", "default\n-"));
	CHECK(throttle_key_parse("header:X-Api-Key", &p) == 0);
	CHECK(key_is(&p, "1.2.3.4:5", "X-API-KEY: k1\r\n", "/x", "default\nk1"));
	CHECK(key_is(&p, "1.2.3.4:5", "", "/x", "default\n"));
	CHECK(throttle_key_parse("route", &p) == 0);
	CHECK(key_is(&p, "1.2.3.4:5", "", "/menus/{region}",
	    "default\n/menus/{region}"));
	CHECK(throttle_key_parse("header:", &p) < 0);
	CHECK(throttle_key_parse("header:a b", &p) < 0);
	CHECK(throttle_key_parse("everyone", &p) < 0);
}

static void
fields(void)
{
	struct throttle_policy p = { .name = "default" };
	struct gcra_decision d = { .allowed = 1, .remaining = 7,
		.reset_us = 1200000 };
	struct buf f = BUF_INIT, body = BUF_INIT;

	gcra_parse("100/m", 10, &p.limit);
	throttle_fields(&f, &p, &d);
	CHECK(strcmp(buf_cstr(&f), "RateLimit-Policy: \"default\";q=100;w=60\r\n"
	    "RateLimit: \"default\";r=7;t=2\r\n") == 0);
	buf_reset(&f);
	d = (struct gcra_decision){ .retry_us = 1, .reset_us = 6000000 };
	throttle_refusal(&f, &body, &p, &d);
	CHECK(strstr(buf_cstr(&f), "Retry-After: 1\r\n") != NULL);
	CHECK(strstr(buf_cstr(&f), "application/problem+json") != NULL);
	CHECK(strstr(buf_cstr(&body), "\"status\":429") != NULL);
	buf_free(&f);
	buf_free(&body);
}

static const struct unit_test tests[] = {
	TEST(keys),
	TEST(fields),
};

UNIT_MAIN(tests)
