/*
 * Tests cache keys (lib/http/url.h): normalising URLs and resolving the
 * references an unsafe request's answer invalidates.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/url.h"
#include "unit.h"

static int
resolves(const char *base, const char *ref, const char *want)
{
	char *got = url_resolve(base, ref);
	int same = want == NULL ? got == NULL :
	    got != NULL && strcmp(got, want) == 0;

	if (!same)
		printf("# %s + %s: %s\n", base, ref, got ? got : "NULL");
	free(got);
	return same;
}

static void
normalising(void)
{
	const char *why;
	char *u = url_normalize("HTTP://Example.ORG:80/a/./b/../c#frag", &why);

	CHECK(u != NULL && strcmp(u, "http://example.org/a/c") == 0);
	free(u);
	CHECK(url_normalize("http://[::1", &why) == NULL);
}

/* A key is UTF-8: bytes that are not are percent-encoded, once. */
static void
keys_are_text(void)
{
	static const char *const rows[][2] = {
		{ "http://x/a\xFF\xFE?q=\xC0\xAF", "http://x/a%FF%FE?q=%C0%AF" },
		{ "http://x/caf\xC3\xA9?\xC2\x9B", "http://x/caf\xC3\xA9?\xC2\x9B" },
		{ "http://x/\xE2\x82", "http://x/%E2%82" },
		{ "http://x/a%FF", "http://x/a%FF" },
	};
	const char *why;
	char *u, *again;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		u = url_normalize(rows[i][0], &why);
		again = u != NULL ? url_normalize(u, &why) : NULL;
		if (u == NULL || strcmp(u, rows[i][1]) != 0)
			printf("# %s: %s\n", rows[i][0], u ? u : why);
		CHECK(u != NULL && strcmp(u, rows[i][1]) == 0);
		CHECK(again != NULL && strcmp(again, u) == 0);
		free(u);
		free(again);
	}
	u = url_encode_invalid("\xC3(\xE9\xF0\x9F\x98\x80");
	CHECK(strcmp(u, "%C3(%E9\xF0\x9F\x98\x80") == 0);
	free(u);
}

/* RFC 9111 section 4.4: same origin only */
static void
resolving(void)
{
	const char *base = "http://127.0.0.1:8080/api/items/1";

	CHECK(resolves(base, "/api/items/2", "http://127.0.0.1:8080/api/items/2"));
	CHECK(resolves(base, "3", "http://127.0.0.1:8080/api/items/3"));
	CHECK(resolves(base, "../list?x=1", "http://127.0.0.1:8080/api/list?x=1"));
	CHECK(resolves(base, "HTTP://127.0.0.1:8080/z#f", "http://127.0.0.1:8080/z"));
	CHECK(resolves(base, "http://127.0.0.1:9090/z", NULL));
	CHECK(resolves(base, "https://127.0.0.1:8080/z", NULL));
	CHECK(resolves(base, "http://other.example/z", NULL));
	CHECK(resolves("http://a.example/x", "//a.example:80/y", "http://a.example/y"));
}

/* A {path} template: the path in its slot, the query after its end. */
static void
joining(void)
{
	static const struct { const char *base, *path, *out; } rows[] = {
		{ "http://h/api/", "/a?b=1", "http://h/api/a?b=1" },
		{ "file:///s/api{path}.json", "/a", "file:///s/api/a.json" },
		{ "file:///s/api{path}.json", "/README?",
		    "file:///s/api/README.json" },
		{ "file:///s/api{path}.json", "/a?x=1",
		    "file:///s/api/a.json?x=1" },
		{ "http://h/{path}.json?key=k", "/a?x=1",
		    "http://h/a.json?key=k&x=1" },
	};
	size_t i;
	char *got;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		got = url_join(rows[i].base, rows[i].path);
		if (strcmp(got, rows[i].out) != 0)
			printf("# row %zu: %s\n", i, got);
		CHECK(strcmp(got, rows[i].out) == 0);
		free(got);
	}
}

static const struct unit_test tests[] = {
	TEST(normalising),
	TEST(keys_are_text),
	TEST(resolving),
	TEST(joining),
};

UNIT_MAIN(tests)
