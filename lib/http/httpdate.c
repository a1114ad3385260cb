/*
 * HTTP dates (RFC 9110 section 5.6.7): the preferred IMF-fixdate and
 * the two obsolete forms recipients must still accept, read exactly as
 * the grammar spells them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/httpdate.h"

static const char *const days[] = { "Sunday", "Monday", "Tuesday",
	"Wednesday", "Thursday", "Friday", "Saturday" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* A date and time as written, before it is checked. */
struct civil {
	long long	year;
	int		mon, day, hour, min, sec;	/* mon 0-11 */
};

/* The text still to read. */
struct scan {
	const char	*p, *end;
};

/*
 * Takes n bytes of s, letters in any case: a cache matches dates
 * case-insensitively (RFC 9111 section 4.2), and so does everything
 * else here, whatever the locale.
 */
static int
take_n(struct scan *sc, const char *s, size_t n)
{
	size_t i;
	char a, b;

	if ((size_t)(sc->end - sc->p) < n)
		return -1;
	for (i = 0; i < n; i++) {
		a = sc->p[i], b = s[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return -1;
	}
	sc->p += n;
	return 0;
}

static int
take(struct scan *sc, const char *s)
{
	return take_n(sc, s, strlen(s));
}

/* Which of the names comes next (its first n bytes; 0: all), or -1. */
static int
take_name(struct scan *sc, const char *const *names, int count, size_t n)
{
	int i;

	for (i = 0; i < count; i++)
		if (take_n(sc, names[i], n > 0 ? n : strlen(names[i])) == 0)
			return i;
	return -1;
}

/* The value of exactly n decimal digits, or -1. */
static int
take_digits(struct scan *sc, int n)
{
	int v = 0;

	if (sc->end - sc->p < n)
		return -1;
	while (n-- > 0) {
		if (*sc->p < '0' || *sc->p > '9')
			return -1;
		v = v * 10 + (*sc->p++ - '0');
	}
	return v;
}

/* time-of-day = hour ":" minute ":" second, each 2DIGIT */
static int
take_time(struct scan *sc, struct civil *c)
{
	return (c->hour = take_digits(sc, 2)) < 0 || take(sc, ":") < 0 ||
	    (c->min = take_digits(sc, 2)) < 0 || take(sc, ":") < 0 ||
	    (c->sec = take_digits(sc, 2)) < 0 ? -1 : 0;
}

/* IMF-fixdate = day-name "," SP day SP month SP year SP time-of-day SP GMT */
static int
fixdate(struct scan *sc, struct civil *c)
{
	return take_name(sc, days, 7, 3) < 0 || take(sc, ", ") < 0 ||
	    (c->day = take_digits(sc, 2)) < 0 || take(sc, " ") < 0 ||
	    (c->mon = take_name(sc, months, 12, 0)) < 0 ||
	    take(sc, " ") < 0 || (c->year = take_digits(sc, 4)) < 0 ||
	    take(sc, " ") < 0 || take_time(sc, c) < 0 ||
	    take(sc, " GMT") < 0 ? -1 : 0;
}

/* rfc850-date = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT */
static int
rfc850_date(struct scan *sc, struct civil *c)
{
	return take_name(sc, days, 7, 0) < 0 || take(sc, ", ") < 0 ||
	    (c->day = take_digits(sc, 2)) < 0 || take(sc, "-") < 0 ||
	    (c->mon = take_name(sc, months, 12, 0)) < 0 ||
	    take(sc, "-") < 0 || (c->year = take_digits(sc, 2)) < 0 ||
	    take(sc, " ") < 0 || take_time(sc, c) < 0 ||
	    take(sc, " GMT") < 0 ? -1 : 0;
}

/* asctime-date = day-name SP month SP ( 2DIGIT / ( SP 1DIGIT )) SP time-of-day SP year */
static int
asctime_date(struct scan *sc, struct civil *c)
{
	if (take_name(sc, days, 7, 3) < 0 || take(sc, " ") < 0 ||
	    (c->mon = take_name(sc, months, 12, 0)) < 0 || take(sc, " ") < 0)
		return -1;
	c->day = take(sc, " ") == 0 ? take_digits(sc, 1) : take_digits(sc, 2);
	return c->day < 0 || take(sc, " ") < 0 || take_time(sc, c) < 0 ||
	    take(sc, " ") < 0 || (c->year = take_digits(sc, 4)) < 0 ? -1 : 0;
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

static int
days_in_month(long long year, int mon)
{
	static const int n[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
		30, 31 };
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return n[mon] + (mon == 1 && leap);
}

/* The seconds since the epoch of c; 23:59:60 (a leap second) is allowed. */
static time_t
seconds_of(const struct civil *c)
{
	return (time_t)(days_from_civil(c->year, c->mon + 1, c->day) * 86400 +
	    c->hour * 3600 + c->min * 60 + c->sec);
}

/* Whether the date is one of the calendar and the time one of the day. */
static int
valid(const struct civil *c)
{
	return c->day >= 1 && c->day <= days_in_month(c->year, c->mon) &&
	    c->hour <= 23 && c->min <= 59 && c->sec <= 60;
}

/*
 * An rfc850-date's two-digit year: the one that is at most 50 years
 * ahead of now, whose century before is more than 50 years behind
 * (RFC 9110 section 5.6.7: "more than 50 years in the future" is "the
 * most recent year in the past that had the same last two digits").
 */
static void
two_digit_year(struct civil *c, time_t now)
{
	struct tm tm;
	struct civil limit;

	gmtime_r(&now, &tm);
	limit = (struct civil){ tm.tm_year + 1900LL + 50, tm.tm_mon,
		tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec };
	c->year += (tm.tm_year + 1900LL) / 100 * 100 - 100;
	while (c->year + 100 <= limit.year) {
		c->year += 100;
		if (seconds_of(c) > seconds_of(&limit)) {
			c->year -= 100;
			break;
		}
	}
}

/*
 * Reads an HTTP-date of n bytes: exactly one of the three forms, no
 * other space or digit, a date of the calendar, GMT; any other value is
 * invalid (-1). now places a two-digit year.
 */
int
httpdate_parse_at(const char *s, size_t n, time_t now, time_t *out)
{
	int (*const forms[])(struct scan *, struct civil *) = {
		fixdate, rfc850_date, asctime_date,
	};
	struct scan sc;
	struct civil c;
	size_t i;

	for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		sc = (struct scan){ s, s + n };
		memset(&c, 0, sizeof c);
		if (forms[i](&sc, &c) < 0 || sc.p != sc.end)
			continue;
		if (forms[i] == rfc850_date)
			two_digit_year(&c, now);
		if (!valid(&c))
			return -1;
		*out = seconds_of(&c);
		return 0;
	}
	return -1;
}

int
httpdate_parse(const char *s, size_t n, time_t *out)
{
	return httpdate_parse_at(s, n, time(NULL), out);
}

void
httpdate_format(time_t t, char out[HTTPDATE_LEN])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	/* Day and month names are fixed English, whatever the locale. */
	snprintf(out, HTTPDATE_LEN, "%.3s, %02u %s %04u %02u:%02u:%02u GMT",
	    days[tm.tm_wday], (unsigned)tm.tm_mday % 100, months[tm.tm_mon],
	    (unsigned)(tm.tm_year + 1900) % 10000, (unsigned)tm.tm_hour % 100,
	    (unsigned)tm.tm_min % 100, (unsigned)tm.tm_sec % 100);
}
