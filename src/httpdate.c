/*
 * HTTP dates (RFC 9110 section 5.6.7): the preferred IMF-fixdate and
 * the two obsolete forms recipients must still accept.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpdate.h"

int
httpdate_parse(const char *s, size_t n, time_t *out)
{
	static const char *const forms[] = {
		"%a, %d %b %Y %H:%M:%S GMT",	/* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",	/* RFC 850 */
		"%a %b %e %H:%M:%S %Y",		/* asctime */
	};
	char tmp[64];
	struct tm tm;
	const char *end;
	size_t i;

	if (n >= sizeof tmp)
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		memset(&tm, 0, sizeof tm);
		end = strptime(tmp, forms[i], &tm);
		if (end != NULL && *end == '\0') {
			*out = timegm(&tm);
			return *out == (time_t)-1 ? -1 : 0;
		}
	}
	return -1;
}

void
httpdate_format(time_t t, char out[HTTPDATE_LEN])
{
	static const char days[][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	/* Day and month names are fixed English, whatever the locale. */
	snprintf(out, HTTPDATE_LEN, "%s, %02u %s %04u %02u:%02u:%02u GMT",
	    days[tm.tm_wday], (unsigned)tm.tm_mday % 100, months[tm.tm_mon],
	    (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)tm.tm_hour % 100,
	    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
}
