/* The access log's lines: JSON whatever bytes a request brings. */
#include <fcntl.h>
#include <string.h>

#include "net/log.h"
#include "unit.h"

/* One line logged to a file of its own, read back. */
static const char *
logged(const struct log_request *r)
{
	static char line[4096];
	const char *path = unit_tmp_path("access.log");
	ssize_t n;
	int fd;

	unlink(path);
	if (log_to_file(path) < 0)
		return "";
	log_request(r);
	log_flush();
	if ((fd = open(path, O_RDONLY)) < 0)
		return "";
	n = read(fd, line, sizeof line - 1);
	close(fd);
	line[n > 0 ? n : 0] = '\0';
	return line;
}

/* UTF-8 is kept as it is, once: never read as Latin-1 and encoded again. */
static void
keeps_utf8(void)
{
	struct log_request r = { .peer = "127.0.0.1:1", .method = "GET",
		.target = "/caf\xC3\xA9", .status = 502, .cache = "miss",
		.upstream_ms = -1, .error = "upstream said \xE2\x9C\x97" };
	const char *line = logged(&r);

	CHECK(strstr(line, "\"target\":\"/caf\xC3\xA9\"") != NULL);
	CHECK(strstr(line, "\"error\":\"upstream said \xE2\x9C\x97\"}\n") !=
	    NULL);
	CHECK(strstr(line, "\\u00c3") == NULL);
}

/* Controls, C1 ones and bytes that are not UTF-8 never reach the file raw. */
static void
escapes_the_rest(void)
{
	struct log_request r = { .peer = "-", .method = "GET",
		.target = "/\x1b[31m\xC2\x9B\xFF\"", .status = 400,
		.cache = "-", .upstream_ms = -1 };
	const char *line = logged(&r);

	CHECK(strstr(line, "\"target\":\"/\\u001b[31m\\u009b\xC3\xBF\\\"\"") !=
	    NULL);
}

static const struct unit_test tests[] = {
	TEST(keeps_utf8),
	TEST(escapes_the_rest),
};

UNIT_MAIN(tests)
