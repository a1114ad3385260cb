/* relay-fetch's input (fetch-input.h). */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/prog.h"
#include "fetch-input.h"

/* Reads what standard input holds now; returns 0 if nothing was ready. */
static int
input_fill(struct url_input *in)
{
	struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
	ssize_t n;

	if (in->eof || poll(&pfd, 1, 0) <= 0)
		return 0;
	n = read(STDIN_FILENO, in->buf + in->len, sizeof in->buf - in->len);
	if (n < 0 && errno != EINTR && errno != EAGAIN)
		prog_err(EX_IOERR, "cannot read standard input");
	if (n == 0)
		in->eof = 1;
	if (n > 0)
		in->len += (size_t)n;
	return 1;
}

/*
 * Takes one line out of the buffer, trimmed; returns 0 if none is
 * complete. A line longer than URL_MAX is reported, consumed as it
 * arrives, and given back as an empty line; so is a line with a NUL
 * byte, which would otherwise cut the URL short without a word.
 */
static int
input_take(struct url_input *in, char *line)
{
	char *nl = memchr(in->buf, '\n', in->len);
	size_t n = nl != NULL ? (size_t)(nl - in->buf) : in->len;
	int nul = 0;

	if (nl == NULL && (in->len == 0 || (!in->eof && in->len <= URL_MAX)))
		return 0;	/* wait for the rest of the line */
	if (n > URL_MAX && !in->skipping) {
		prog_warnx("line %lld: URL longer than %d bytes",
		    in->lineno + 1, URL_MAX);
		in->refused++;
		in->skipping = 1;
	}
	if (!in->skipping) {
		memcpy(line, in->buf, n);
		line[n] = '\0';
		nul = memchr(line, '\0', n) != NULL;
	}
	n += nl != NULL;
	in->len -= n;
	memmove(in->buf, in->buf + n, in->len);
	if (nl == NULL && !in->eof)
		return 0;	/* more of the over-long line to come */
	in->lineno++;
	if (nul) {
		prog_warnx("line %lld: a NUL byte in the URL", in->lineno);
		in->refused++;
	}
	if (in->skipping || nul) {
		in->skipping = 0;
		line[0] = '\0';
	}
	for (n = strlen(line); n > 0 && strchr(" \t\r", line[n - 1]); n--)
		line[n - 1] = '\0';
	return 1;
}

/* The next URL line: 1 with it, 0 if none is ready yet, -1 at the end. */
int
url_input_next(struct url_input *in, char *line)
{
	for (;;) {
		while (input_take(in, line))
			if (line[0] != '\0' && line[0] != '#')
				return 1;
		if (in->eof && in->len == 0)
			return -1;
		if (!input_fill(in))
			return 0;
	}
}
