/*
 * Tests the pure parts of batches and their items (lib/serve/item.h,
 * lib/serve/batch.h): an item read from JSON, or why not, with its id kept
 * for the error; an answer's head and body written back as a line; a
 * batch body read into items, or refused as a whole.
 */
#include <string.h>

#include "serve/batch.h"
#include "serve/item.h"
#include "unit.h"

static int
parses(struct item *it, const char *json)
{
	int rc = item_parse(it, json, strlen(json));

	if (rc < 0)
		printf("# %s: %s\n", json, it->why);
	return rc == 0;
}

static int
refused(const char *json, const char *id, const char *why)
{
	struct item it;
	int ok = item_parse(&it, json, strlen(json)) < 0 &&
	    (id == NULL ? it.id == NULL : it.id != NULL &&
	    strcmp(it.id, id) == 0) && strcmp(it.why, why) == 0;

	if (!ok)
		printf("# %s: id %s, why '%s'\n", json, it.id ? it.id : "-",
		    it.why);
	item_free(&it);
	return ok;
}

static void
item_reads_members(void)
{
	struct item it;

	CHECK(parses(&it, "{\"path\":\"/a?b=1\",\"id\":\"x\"}"));
	CHECK(strcmp(it.id, "\"x\"") == 0 && strcmp(it.method, "GET") == 0);
	CHECK(strcmp(it.path, "/a?b=1") == 0 && !it.has_body);
	item_free(&it);
	CHECK(parses(&it, "{\"id\":42,\"method\":\"POST\",\"path\":\"/p\","
	    "\"headers\":{\"X-A\":\"1\",\"X-B\":[\"2\",\"3\"]},"
	    "\"body\":{\"n\": [1, 2]}}"));
	CHECK(strcmp(it.id, "42") == 0 && strcmp(it.method, "POST") == 0);
	CHECK(strcmp(buf_cstr(&it.fields), "X-A: 1\r\nX-B: 2\r\nX-B: 3\r\n")
	    == 0);
	CHECK(it.has_body && it.json_body);
	CHECK(strcmp(buf_cstr(&it.body), "{\"n\":[1,2]}") == 0);
	item_free(&it);
	CHECK(parses(&it, "{\"id\":\"t\",\"path\":\"/p\",\"body\":\"a\\nb\"}"));
	CHECK(it.has_body && !it.json_body && it.body.len == 3);
	item_free(&it);
}

static void
item_refusals_keep_the_id(void)
{
	CHECK(refused("[1]", NULL, "an item is an object"));
	CHECK(refused("{\"path\":\"/a\"}", NULL, "no \"id\""));
	CHECK(refused("{\"id\":\"a\"}", "\"a\"", "no \"path\""));
	CHECK(refused("{\"method\":\"GE T\",\"id\":\"a\",\"path\":\"/\"}", "\"a\"",
	    "\"method\": not a method: 'GE T'"));
	CHECK(refused("{\"id\":\"a\",\"path\":\"x\"}", "\"a\"",
	    "\"path\" must start with '/'"));
	CHECK(refused("{\"id\":\"a\",\"path\":\"/a b\"}", "\"a\"",
	    "\"path\": byte 2 is not allowed in a request target"));
	CHECK(refused("{\"id\":\"a\",\"path\":\"/\\u0001\"}", "\"a\"",
	    "\"path\": byte 1 is not allowed in a request target"));
	CHECK(refused("{\"id\":\"a\",\"path\":\"/\",\"x\":1}", "\"a\"",
	    "unknown member \"x\""));
	CHECK(refused("{\"id\":\"a\",\"path\":\"/\",\"headers\":{\"A\":1}}",
	    "\"a\"", "header \"A\": unexpected '1', expected a string"));
	CHECK(refused("{\"id\":\"a\",\"path\":\"/\",\"headers\":"
	    "{\"Bad Name\":\"v\"}}", "\"a\"",
	    "header \"Bad Name\": invalid name or value"));
	CHECK(refused("{\"id\":true,\"path\":\"/\"}", NULL,
	    "\"id\" is a string or an integer"));
	/* 1 and "1" are two ids, each kept as it came */
	CHECK(refused("{\"id\":1}", "1", "no \"path\""));
	CHECK(refused("{\"id\":\"1\"}", "\"1\"", "no \"path\""));
}

static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/"
    "json\r\nETag: \"v\"\r\nCache-Status: relay; hit\r\nContent-Length: "
    "9\r\nConnection: close\r\n\r\n";

static int
line_is(const char *id, const char *h, const char *body, const char *error,
    const char *want)
{
	struct buf line = BUF_INIT, b = BUF_INIT;
	int same;

	buf_adds(&b, body);
	item_answer_line(&line, id, h, strlen(h), &b, error);
	same = strcmp(buf_cstr(&line), want) == 0;
	if (!same)
		printf("# got %s", buf_cstr(&line));
	buf_free(&line);
	buf_free(&b);
	return same;
}

static void
answer_lines(void)
{
	CHECK(line_is("\"1\"", head, "{\"a\": 1}\n", NULL, "{\"id\":\"1\",\"status\":"
	    "200,\"headers\":{\"content-type\":\"application/json\",\"etag\":"
	    "\"\\\"v\\\"\",\"cache-status\":\"relay; hit\"},\"json\":"
	    "{\"a\":1}}\n"));
	/* JSON in name only is text; bytes that are not UTF-8 are base64 */
	CHECK(line_is("\"2\"", head, "{broken", NULL, "{\"id\":\"2\",\"status\":200,"
	    "\"headers\":{\"content-type\":\"application/json\",\"etag\":"
	    "\"\\\"v\\\"\",\"cache-status\":\"relay; hit\"},\"text\":"
	    "\"{broken\"}\n"));
	CHECK(line_is("\"3\"", "HTTP/1.1 200 OK\r\n\r\n", "\xff", NULL,
	    "{\"id\":\"3\",\"status\":200,\"headers\":{},\"base64\":\"/w==\"}\n"));
	CHECK(line_is("\"4\"", "HTTP/1.1 304 Not Modified\r\nETag: \"v\"\r\n\r\n",
	    "", NULL, "{\"id\":\"4\",\"status\":304,\"headers\":{\"etag\":"
	    "\"\\\"v\\\"\"}}\n"));
	CHECK(line_is("\"5\"", "HTTP/1.1 200 OK\r\n\r\n", "",
	    "the body is over 1048576 bytes: ask for it alone", "{\"id\":\"5\","
	    "\"status\":200,\"headers\":{},\"error\":\"the body is over "
	    "1048576 bytes: ask for it alone\"}\n"));
	CHECK(line_is("\"6\"", "garbage\r\n\r\n", "", NULL, "{\"id\":\"6\","
	    "\"status\":502,\"error\":\"relay-serve's answer could not be "
	    "read back\"}\n"));
}

static void
error_lines(void)
{
	struct buf line = BUF_INIT;

	item_error_line(&line, NULL, 400, "no \"id\"");
	CHECK(strcmp(buf_cstr(&line), "{\"id\":null,\"status\":400,\"error\":"
	    "\"no \\\"id\\\"\"}\n") == 0);
	buf_free(&line);
}

static int
batch_refused(const char *body, int status, const char *why)
{
	char got[256] = "";
	int st = 0;
	struct batch *b = batch_parse(body, strlen(body), &st, got,
	    sizeof got);
	int ok = b == NULL && st == status && strcmp(got, why) == 0;

	if (!ok)
		printf("# %s: %d '%s'\n", body, st, got);
	batch_free(b);
	return ok;
}

static void
batches(void)
{
	char why[256], big[8192];
	struct batch *b;
	size_t i, n;
	int status;

	b = batch_parse("{\"requests\":[{\"id\":\"1\",\"path\":\"/\"},{}, 3]}",
	    42, &status, why, sizeof why);
	CHECK(b != NULL && batch_size(b) == 3);
	batch_free(b);
	b = batch_parse("{\"requests\":[]}", 15, &status, why, sizeof why);
	CHECK(b != NULL && batch_size(b) == 0);
	batch_free(b);
	CHECK(batch_refused("", 400, "unexpected end of input, expected '{'"));
	CHECK(batch_refused("{}", 400, "no \"requests\""));
	CHECK(batch_refused("{\"requests\":{}}", 400,
	    "\"requests\": unexpected '{', expected '['"));
	CHECK(batch_refused("{\"calls\":[]}", 400, "a member other than "
	    "\"requests\": a batch is {\"requests\":[…]}"));
	CHECK(batch_refused("{\"requests\":[]} x", 400, "more after the batch"));
	n = (size_t)snprintf(big, sizeof big, "{\"requests\":[");
	for (i = 0; i <= BATCH_MAX_ITEMS; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "%s{}",
		    i ? "," : "");
	snprintf(big + n, sizeof big - n, "]}");
	CHECK(batch_refused(big, 413, "more than 100 requests"));
}

static const struct unit_test tests[] = {
	TEST(item_reads_members),
	TEST(item_refusals_keep_the_id),
	TEST(answer_lines),
	TEST(error_lines),
	TEST(batches),
};

UNIT_MAIN(tests)
