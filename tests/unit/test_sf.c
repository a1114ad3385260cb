/*
 * Tests the Structured Field dictionaries (lib/http/sf.h) that targeted
 * cache-control fields are read as (RFC 8941, RFC 9213).
 */
#include <stdio.h>
#include <string.h>

#include "http/sf.h"
#include "unit.h"

static int
get(const char *value, const char *key, struct sf_item *item)
{
	return sf_dictionary_get(value, strlen(value), key, item);
}

static void
members(void)
{
	struct sf_item it;

	CHECK(get("max-age=60, no-store", "max-age", &it) == 1);
	CHECK(it.type == SF_INTEGER && it.integer == 60);
	CHECK(get("max-age=60, no-store", "no-store", &it) == 1);
	CHECK(it.type == SF_BOOLEAN && it.integer == 1);
	CHECK(get("max-age=60, no-store", "private", &it) == 0);
	CHECK(get("a=1, a=2", "a", &it) == 1 && it.integer == 2);
	CHECK(get("max-age=3600;relay", "max-age", &it) == 1 &&
	    it.integer == 3600);
	CHECK(get("a=\"x\\\"y\"", "a", &it) == 1 && it.type == SF_STRING);
	CHECK(get("a=tok/en:1", "a", &it) == 1 && it.type == SF_TOKEN);
	CHECK(get("a=1.5", "a", &it) == 1 && it.type == SF_DECIMAL);
	CHECK(get("a=:aGk=:", "a", &it) == 1 && it.type == SF_BYTES);
	CHECK(get("a=?0", "a", &it) == 1 && it.integer == 0);
	CHECK(get("a=(1 2);p=3, b", "b", &it) == 1);
	CHECK(get("  a=1 ,\tb", "b", &it) == 1);
	CHECK(get("", "a", &it) == 0);
}

static void
invalid(void)
{
	static const char *const bad[] = {
		"MAX-AGE=1", "a=1,", "a=1 b=2", "a=", "a=\"open", "a=1.",
		"a=1.2345", "a=1234567890123456", "a=?2", "a=:ab", ",a",
		"a=(1 2", "a;P", "a=\"\x01\"", "1a", "a=\"\\x\"",
	};
	struct sf_item it;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (get(bad[i], "a", &it) != -1)
			printf("# accepted: %s\n", bad[i]);
		CHECK(get(bad[i], "a", &it) == -1);
	}
}

static const struct unit_test tests[] = {
	TEST(members),
	TEST(invalid),
};

UNIT_MAIN(tests)
