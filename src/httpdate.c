/*
 * HTTP dates (RFC 9110 section 5.6.7): the preferred IMF-fixdate and
 * the two obsolete forms recipients must still accept.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpdate.h"

static const char days[][4] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* The value of n decimal digits, or -1. */
static int
digits(const char *s, int n)
{
	int v = 0;

	while (n-- > 0) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

static int
name_index(const char (*names)[4], int count, const char *s)
{
	int i;

	for (i = 0; i < count; i++)
		if (memcmp(names[i], s, 3) == 0)
			return i;
	return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
static long long
days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/*
 * IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": what every current
 * server sends, parsed without strptime, which costs more than the rest
 * of storing a small response.
 */
static int
parse_fixdate(const char *s, time_t *out)
{
	int day, mon, year, hour, min, sec;

	if (name_index(days, 7, s) < 0 || memcmp(s + 3, ", ", 2) ||
	    s[7] != ' ' || s[11] != ' ' || s[16] != ' ' || s[19] != ':' ||
	    s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
		return -1;
	day = digits(s + 5, 2);
	mon = name_index(months, 12, s + 8);
	year = digits(s + 12, 4);
	hour = digits(s + 17, 2);
	min = digits(s + 20, 2);
	sec = digits(s + 23, 2);
	if (day < 1 || day > 31 || mon < 0 || year < 0 || hour < 0 ||
	    hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60)
		return -1;
	*out = (time_t)(days_from_civil(year, mon + 1, day) * 86400 +
	    hour * 3600 + min * 60 + sec);
	return 0;
}

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

	if (n == 29)	/* no other form has this length */
		return parse_fixdate(s, out);
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
	struct tm tm;

	gmtime_r(&t, &tm);
	/* Day and month names are fixed English, whatever the locale. */
	snprintf(out, HTTPDATE_LEN, "%s, %02u %s %04u %02u:%02u:%02u GMT",
	    days[tm.tm_wday], (unsigned)tm.tm_mday % 100, months[tm.tm_mon],
	    (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)tm.tm_hour % 100,
	    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
}
