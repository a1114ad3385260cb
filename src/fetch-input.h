/*
 * relay-fetch's input: URL lines from standard input, read as they
 * arrive without ever blocking the transfers in progress, so that a
 * slow producer upstream in the pipeline does not stall the fetches
 * already running. A line refused (too long, a NUL byte) is said on
 * standard error and counted in refused.
 */
#ifndef RELAY_FETCH_INPUT_H
#define RELAY_FETCH_INPUT_H

#include <stddef.h>

#include "http/url.h"

struct url_input {
	char		buf[2 * URL_MAX];
	size_t		len;
	int		eof;
	int		skipping;	/* the rest of an over-long line */
	long long	lineno;
	int		refused;	/* lines, since the caller looked */
};

int	url_input_next(struct url_input *, char *);

#endif
