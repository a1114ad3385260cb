/*
 * HTTP dates (RFC 9110 section 5.6.7): the preferred IMF-fixdate and
 * the two obsolete forms recipients must still accept, read exactly as
 * the grammar spells them.
 */
#ifndef RELAY_HTTPDATE_H
#define RELAY_HTTPDATE_H

#include <stddef.h>
#include <time.h>

#define HTTPDATE_LEN 30	/* "Sun, 06 Nov 1994 08:49:37 GMT" and NUL */

int	httpdate_parse(const char *, size_t, time_t *);
int	httpdate_parse_at(const char *, size_t, time_t, time_t *);
void	httpdate_format(time_t, char[HTTPDATE_LEN]);

#endif
