/*
 * Tests merge routes (lib/serve/routes.h): reading a routes file, matching
 * request paths, and filling call paths with parameters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/routes.h"
#include "unit.h"

static struct route *
load(const char *text, char *err, size_t errlen)
{
	char path[] = "/tmp/relay-routes-test.XXXXXX";
	struct route *r;
	FILE *f;
	int fd = mkstemp(path);

	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	r = routes_load(path, err, errlen);
	unlink(path);
	return r;
}

static void
reads_and_matches(void)
{
	static const char text[] =
	    "# two routes\n"
	    "route /events/{id}\n"
	    "  call event /events/{id}\n"
	    "  call subs /subs?ids=%5B{id}%5D\n"
	    "  header X-Token: abc\n"
	    "  ttl 4m\n"
	    "  cache 30s\n"
	    "  on-error partial\n"
	    "  jq {id: $id,\n"
	    "      e: $event}\n"
	    "end\n"
	    "route /a/{x}/b/{y}\n"
	    "  call c /c/{y}/{x}\n"
	    "  jq .\n"
	    "end\n";
	struct route_params ps;
	struct route *list, *r;
	char err[256], *path;

	CHECK((list = load(text, err, sizeof err)) != NULL);
	CHECK((r = routes_match(list, "/events/7?x=1", &ps)) != NULL);
	CHECK(strcmp(r->pattern, "/events/{id}") == 0);
	CHECK(r->ncalls == 2 && r->ttl == 240 && r->cache == 30 && r->partial);
	CHECK(strcmp(r->program, "{id: $id,\n      e: $event}\n") == 0);
	CHECK(strcmp(buf_cstr(&r->fields), "X-Token: abc\r\n") == 0);
	CHECK(ps.n == 1 && strcmp(ps.values[0], "7") == 0);
	path = route_call_path(&r->calls[1], &ps);
	CHECK(strcmp(path, "/subs?ids=%5B7%5D") == 0);
	free(path);
	route_params_free(&ps);
	CHECK((r = routes_match(list, "/a/1/b/2", &ps)) != NULL);
	path = route_call_path(&r->calls[0], &ps);
	CHECK(strcmp(path, "/c/2/1") == 0);
	free(path);
	route_params_free(&ps);
	CHECK(routes_match(list, "/events/", &ps) == NULL);
	CHECK(routes_match(list, "/events/7/x", &ps) == NULL);
	CHECK(routes_match(list, "/a/1/b", &ps) == NULL);
	routes_free(list);
}

static void
reports_errors(void)
{
	static const struct {
		const char	*text;
		const char	*err;
	} rows[] = {
		{ "call a /a\n", ":1: 'call' outside a route" },
		{ "route x\n", ":1: bad route pattern 'x'" },
		{ "route /a/{b\n", ":1: bad route pattern" },
		{ "route /a\ncall 1a /x\n", ":2: expected call NAME /path" },
		{ "route /a\ncall a x\n", ":2: a call's path starts with /" },
		{ "route /a\ncall a /x\ncall a /y\n",
		    ":3: call 'a' named twice" },
		{ "route /a/{id}\ncall id /x\n", ":2: call 'id' has the name" },
		{ "route /a\nttl soon\n", ":2: bad ttl 'soon'" },
		{ "route /a\ncache -1\n", ":2: bad cache duration '-1'" },
		{ "route /a\non-error maybe\n", ":2: on-error is fail or" },
		{ "route /a\ncall a /x\nend\n", ":3: route '/a' has no jq" },
		{ "route /a\njq .\nend\n", ":3: route '/a' makes no call" },
		{ "route /a\ncall a /x\njq .\n", ":3: route '/a': no end" },
		{ "route /a\ncall a /x\n", ":2: route '/a' has no end" },
		{ "route /a\nheader X: ${NO_SUCH_VAR_HERE}\n",
		    ":2: environment variable 'NO_SUCH_VAR_HERE' is not set" },
		{ "route /a\nheader-file X: /no/such/file\n",
		    ":2: cannot read '/no/such/file'" },
		{ "route /a\ncall l /l\neach m /x/{.} of l .[]\n",
		    ":3: expected each NAME /path/{.} from CALL ITEMS" },
		{ "route /a\ncall l /l\neach m /x/{.} from l\n",
		    ":3: expected each NAME" },
		{ "route /a\ncall l /l\neach m /x from l .[]\n",
		    ":3: each's path starts with / and has {.}" },
		{ "route /a\ncall l /l\neach m /x/{.} from k .[]\n",
		    ":3: each 'm': no call 'k' before it" },
		{ "route /a\ncall l /l\neach l /x/{.} from l .[]\n",
		    ":3: each 'l' has the name of a call or a parameter" },
		{ "route /a/{r}\ncall l /l\neach m /{s}/{.} from l .[]\n",
		    ":3: no parameter '{s}' in the route's pattern" },
		{ "route /a\ncall l /l\neach m /x/{.} from l .[]\n"
		    "each n /y/{.} from l .[]\n", ":4: a route has one each" },
		{ "route /a\ncall l /l\neach m /x/{.} from l .[]\ncall k /k\n",
		    ":4: calls come before each" },
		{ "route /a\nmax-items 0\n", ":2: bad max-items '0': 1 to 1000" },
		{ "route /a\nat-once 65\n", ":2: bad at-once '65': 1 to 64" },
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (load(rows[i].text, err, sizeof err) != NULL ||
		    strstr(err, rows[i].err) == NULL)
			printf("# row %zu: %s\n", i, err);
		CHECK(strstr(err, rows[i].err) != NULL);
	}
}

/* each's path: the route's parameters, and the item encoded as a segment. */
static void
each_paths(void)
{
	struct route *list;
	struct route_params ps;
	char err[256], *path;

	list = load("route /menus/{region}\ncall l /list?r={region}\n"
	    "each menus /r/{region}/{.}?x=1 from l .[].id\njq $menus\nend\n",
	    err, sizeof err);
	CHECK(list != NULL && list->each != NULL);
	CHECK(list->each->from == 0 && list->max_items == 100);
	CHECK(strcmp(list->each->items, ".[].id") == 0);
	CHECK(routes_match(list, "/menus/Uppsala", &ps) == list);
	path = route_each_path(list->each, &ps, "caf\xc3\xa9 ?#% 1~2", 13);
	CHECK(strcmp(path, "/r/Uppsala/caf%C3%A9%20%3F%23%25%201~2?x=1") == 0);
	free(path);
	/* items that no encoding keeps one segment (target_add_segment) */
	CHECK(route_each_path(list->each, &ps, "..", 2) == NULL);
	CHECK(route_each_path(list->each, &ps, "a/../b", 6) == NULL);
	CHECK(route_each_path(list->each, &ps, "a\0/b", 4) == NULL);
	route_params_free(&ps);
	routes_free(list);
}

static const struct unit_test tests[] = {
	TEST(reads_and_matches),
	TEST(each_paths),
	TEST(reports_errors),
};

UNIT_MAIN(tests)
