/*
 * libFuzzer harness for the request-target normaliser (lib/http/target.h):
 * what it accepts cannot leave the upstream base, and is a fixed point.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/target.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond) do {						\
	if (!(cond))							\
		failed(__LINE__, #cond);				\
} while (0)

static _Noreturn void
failed(int line, const char *cond)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, line, cond);
	abort();
}

#define MAX_INPUT	9000	/* a little over HTTP_MAX_TARGET */

static int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Whether s[0..n) holds needle, ignoring case. */
static int
has(const char *s, size_t n, const char *needle)
{
	size_t len = strlen(needle), i;

	for (i = 0; i + len <= n; i++)
		if (strncasecmp(s + i, needle, len) == 0)
			return 1;
	return 0;
}

static int
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t len = strlen(suffix);

	return n >= len && memcmp(s + n - len, suffix, len) == 0;
}

/*
 * The path is checked for what could climb out of the base; the query
 * may carry %2F and dots as data (tests/unit/test_http.c keeps "y=%2F").
 */
static void
check_result(const char *in, const char *out)
{
	size_t path = strcspn(out, "?");

	CHECK(out[0] == '/' && out[1] != '/');
	CHECK(!has(out, path, "/../") && !ends_with(out, path, "/.."));
	CHECK(!has(out, path, "/./") && !ends_with(out, path, "/."));
	CHECK(!has(out, path, "%2f") && !has(out, path, "%5c") &&
	    !has(out, path, "%2e"));
	CHECK(strchr(out, '\\') == NULL && strchr(out, '#') == NULL);
	/* Raw control bytes pass through; decoding must not add any. */
	CHECK(has_ctl(in) || !has_ctl(out));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL, *why2 = NULL;
	char *in, *out, *again;

	if (size > MAX_INPUT || memchr(data, '\0', size) != NULL)
		return 0;
	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	out = target_normalize(in, &why);
	if (out == NULL) {
		CHECK(why != NULL && why[0] != '\0');
	} else {
		CHECK(why == NULL);
		check_result(in, out);
		again = target_normalize(out, &why2);
		CHECK(again != NULL && strcmp(again, out) == 0);
		free(again);
	}
	free(out);
	free(in);
	return 0;
}
