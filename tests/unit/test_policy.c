/*
 * Tests the caching rules (lib/policy/policy.h) and what they rest on: HTTP
 * dates (lib/http/httpdate.h) and header blocks (lib/http/headers.h).
 */
#include <stdlib.h>
#include <string.h>

#include "http/headers.h"
#include "http/httpdate.h"
#include "policy/policy.h"
#include "unit.h"

#define CHECK_AT(i, cond) do {						\
	if (!(cond))							\
		printf("# row %zu\n", (size_t)(i));			\
	CHECK(cond);							\
} while (0)

#define T0	784111777	/* Sun, 06 Nov 1994 08:49:37 GMT */
#define DATE	"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

/*
 * RFC 9110 section 5.6.7: the three forms exactly as the grammar spells
 * them, names in any case (RFC 9111 section 4.2).
 */
static void
httpdate_parses_three_forms(void)
{
	static const struct {
		const char	*text;
		time_t		 want;
	} rows[] = {
		{ "Sun, 06 Nov 1994 08:49:37 GMT", T0 },	/* IMF-fixdate */
		{ "Sunday, 06-Nov-94 08:49:37 GMT", T0 },	/* rfc850-date */
		{ "Sun Nov  6 08:49:37 1994", T0 },		/* asctime-date */
		{ "Sun Nov 06 08:49:37 1994", T0 },		/* 2DIGIT day */
		{ "Sun Nov 16 08:49:37 1994", T0 + 10 * 86400 },
		{ "SUN, 06 NOV 1994 08:49:37 GMT", T0 },
		{ "sun, 06 nov 1994 08:49:37 gmt", T0 },
		{ "SUNDAY, 06-nov-94 08:49:37 Gmt", T0 },
		{ "sun nov  6 08:49:37 1994", T0 },
		/* the day name is the sender's to get right (RFC 5322 3.3) */
		{ "Mon, 06 Nov 1994 08:49:37 GMT", T0 },
		{ "Thu, 29 Feb 2000 00:00:00 GMT", 951782400 },
		{ "Thu, 31 Dec 1998 23:59:60 GMT", 915148800 },	/* leap second */
		{ "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
		{ "Fri, 31 Dec 9999 23:59:59 GMT", 253402300799 },
	};
	time_t t;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		t = -1;
		CHECK_AT(i, httpdate_parse(rows[i].text, strlen(rows[i].text),
		    &t) == 0);
		CHECK_AT(i, t == rows[i].want);
	}
	/* the length given ends the value */
	CHECK(httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMTxyz", 29, &t) == 0);
	CHECK(t == T0);
	CHECK(httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT", 28, &t) < 0);
}

/* Every other spelling is invalid: an Expires of it is in the past. */
static void
httpdate_rejects_garbage(void)
{
	static const char *const rows[] = {
		"", "garbage", "0", "-1", "784111777",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49:37 GMT extra",
		"Sun, 32 Nov 1994 08:49:37 GMT",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 25:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:37 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Sun, 0x Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 19a4 08:49:37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		/* zones other than GMT (RFC 9111 section 4.2) */
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 AEST",
		"Sun, 06 Nov 1994 08:49:37 +0000",
		"Sun, 06 Nov 1994 08:49:37 -0000",
		"Sunday, 06-Nov-94 08:49:37 UTC",
		"Sun Nov  6 08:49:37 1994 GMT",
		/* whitespace the grammar does not have */
		"Sun, 06  Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov  1994 08:49:37 GMT",
		"Sun,  06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994  08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37  GMT",
		" Sun, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT ",
		"Sun,	06 Nov 1994 08:49:37 GMT",
		"Sun, 06	Nov 1994 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun Nov   6 08:49:37 1994",
		"Sun  Nov  6 08:49:37 1994",
		"Sun Nov  6  08:49:37 1994",
		"Sunday,  06-Nov-94 08:49:37 GMT",
		/* digits the grammar does not have */
		"Sun, 06 Nov 1994 8:49:37 GMT",
		"Sun, 06 Nov 1994 08:9:37 GMT",
		"Sun, 06 Nov 1994 08:49:7 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sun, 06 Nov 01994 08:49:37 GMT",
		"Sun, 006 Nov 1994 08:49:37 GMT",
		"Sun, +6 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sunday, 6-Nov-94 08:49:37 GMT",
		"Sunday, 06-Nov-94 8:49:37 GMT",
		"Sun Nov  6 8:49:37 1994",
		"Sun Nov  6 08:49:37 94",
		"Sun Nov 006 08:49:37 1994",
		/* separators and names in the wrong form */
		"Sun 06 Nov 1994 08:49:37 GMT",
		"Sun, 06-Nov-1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08.49.37 GMT",
		"Sun, 06 Nov 1994 08:49 GMT",
		"Sunday, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06-Nov-94 08:49:37 GMT",
		"Sund, 06-Nov-94 08:49:37 GMT",
		"Sun, 06 November 1994 08:49:37 GMT",
		"Sun, Nov 06 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday Nov  6 08:49:37 1994",
		"Sun, Nov  6 08:49:37 1994",
		"1994-11-06T08:49:37Z",
		/* days that are not in the month */
		"Wed, 31 Apr 1996 00:00:00 GMT",
		"Wed, 29 Feb 1995 00:00:00 GMT",
		"Wed, 29 Feb 1900 00:00:00 GMT",
		"Wed, 30 Feb 2000 00:00:00 GMT",
		"Wed Feb 30 00:00:00 2000",
	};
	time_t t;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, httpdate_parse(rows[i], strlen(rows[i]), &t) < 0);
	CHECK(httpdate_parse("Sun, 06 Nov 1994 08:49:37 G\0MT", 30, &t) < 0);
	CHECK(httpdate_parse("Sun, 06 Nov\0001994 08:49:37 GMT", 29, &t) < 0);
}

/*
 * RFC 9110 section 5.6.7: a two-digit year more than 50 years ahead of
 * now is the most recent past year with those digits.
 */
static void
httpdate_two_digit_years(void)
{
	static const struct {
		time_t		 now;
		const char	*text;
		time_t		 want;
	} rows[] = {
		/* now 1994-11-06 08:49:37 */
		{ T0, "Sunday, 06-Nov-94 08:49:37 GMT", T0 },
		{ T0, "Saturday, 01-Jan-00 00:00:00 GMT", 946684800 },
		{ T0, "Thursday, 01-Jan-70 00:00:00 GMT", 0 },
		{ T0, "Friday, 01-Jan-44 00:00:00 GMT", 2335219200 },
		/* 2045-01-01 is more than 50 years ahead: 1945 */
		{ T0, "Monday, 01-Jan-45 00:00:00 GMT", -788918400 },
		/* 2044-11-06 08:49:37 is exactly 50 years ahead */
		{ T0, "Sunday, 06-Nov-44 08:49:37 GMT", 2362034977 },
		{ T0, "Monday, 06-Nov-44 08:49:38 GMT", -793725022 },
		/* now 2030-01-01: 2080 is 50 years ahead, 2081 more */
		{ 1893456000, "Monday, 01-Jan-80 00:00:00 GMT", 3471292800 },
		{ 1893456000, "Thursday, 01-Jan-81 00:00:00 GMT", 347155200 },
		{ 1893456000, "Tuesday, 01-Jan-30 00:00:00 GMT", 1893456000 },
		/* now 2095: "05" is 2105, not 2005 */
		{ 3944678400, "Thursday, 01-Jan-05 00:00:00 GMT", 4260211200 },
	};
	time_t t;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		t = -1;
		CHECK_AT(i, httpdate_parse_at(rows[i].text,
		    strlen(rows[i].text), rows[i].now, &t) == 0);
		if (t != rows[i].want)
			printf("# got %lld\n", (long long)t);
		CHECK_AT(i, t == rows[i].want);
	}
}

static void
httpdate_round_trip(void)
{
	static const time_t rows[] = {
		0, T0, 951782400 /* 2000-02-29 */, 2147483647, 4102444800,
		-86400 /* 1969-12-31 */, 951868800 /* 2000-03-01 */,
		253402300799 /* 9999-12-31 23:59:59 */,
	};
	char s[HTTPDATE_LEN];
	time_t t;
	size_t i;

	httpdate_format(T0, s);
	CHECK(strcmp(s, "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
	httpdate_format(0, s);
	CHECK(strcmp(s, "Thu, 01 Jan 1970 00:00:00 GMT") == 0);
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		httpdate_format(rows[i], s);
		CHECK_AT(i, strlen(s) == HTTPDATE_LEN - 1);
		CHECK_AT(i, httpdate_parse(s, strlen(s), &t) == 0);
		CHECK_AT(i, t == rows[i]);
	}
}

static void
directives(void)
{
	static const struct {
		const char	*headers, *name;
		int		 found;
		long long	 value;
	} rows[] = {
		{ "Cache-Control: max-age=60\r\n", "max-age", 1, 60 },
		{ "Cache-Control: max-age=60", "max-age", 1, 60 },
		{ "Cache-Control: max-age=\"60\"\r\n", "max-age", 1, 60 },
		{ "Cache-Control: public\r\nX: 1\r\n"
		    "Cache-Control: max-age=5\r\n", "max-age", 1, 5 },
		{ "cache-control: MAX-AGE=7\r\n", "Max-Age", 1, 7 },
		{ "Cache-Control:  no-store , max-age=3 \r\n", "max-age", 1,
		    3 },
		{ "Cache-Control: public,\tmax-age=9\r\n", "max-age", 1, 9 },
		{ "Cache-Control: max-age\r\n", "max-age", 1, -1 },
		{ "Cache-Control: max-age=\r\n", "max-age", 1, -1 },
		{ "Cache-Control: max-age=abc\r\n", "max-age", 1, -1 },
		{ "Cache-Control: max-age=-5\r\n", "max-age", 1, -1 },
		{ "Cache-Control: max-age=10, max-age=20\r\n", "max-age", 1,
		    10 },
		{ "Cache-Control: max-age=10\r\nCache-Control: max-age=20\r\n",
		    "max-age", 1, 10 },
		{ "Cache-Control: max-age=2147483647\r\n", "max-age", 1,
		    2147483647 },
		{ "Cache-Control: max-age=99999999999999999999\r\n", "max-age",
		    1, POLICY_DELTA_MAX },
		{ "Cache-Control: no-store\r\n", "no-store", 1, -1 },
		{ "Cache-Control: max-age-foo=1\r\n", "max-age", 0, 0 },
		{ "Cache-Control: s-maxage=1\r\n", "max-age", 0, 0 },
		{ "Cache-Control: no-cache=\"a, max-age=1\", private\r\n",
		    "max-age", 0, 0 },
		{ "X-Cache-Control: max-age=1\r\n", "max-age", 0, 0 },
		{ "", "max-age", 0, 0 },
	};
	long long v;
	size_t i;
	int found;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		v = 0;
		found = policy_directive(rows[i].headers, rows[i].name, &v);
		CHECK_AT(i, found == rows[i].found);
		CHECK_AT(i, v == rows[i].value);
	}
	CHECK(policy_directive("Cache-Control: no-store\r\n", "no-store",
	    NULL) == 1);
}

static void
lifetimes(void)
{
	static const struct {
		const char	*headers;
		long long	 want;
	} rows[] = {
		{ "Cache-Control: s-maxage=10, max-age=60\r\n", 10 },
		{ "Cache-Control: max-age=60, s-maxage=10\r\n", 10 },
		{ "Cache-Control: s-maxage\r\nCache-Control: max-age=60\r\n",
		    0 },
		{ "Cache-Control: max-age=60\r\n" DATE
		    "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n", 60 },
		{ "Cache-Control: max-age=abc\r\n" DATE
		    "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n", 0 },
		{ "Cache-Control: max-age=99999999999\r\n", POLICY_DELTA_MAX },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n", 3600 },
		{ "expires: Sunday, 06-Nov-94 09:49:37 GMT\r\ndate: "
		    "Sun, 06 Nov 1994 08:49:37 GMT\r\n", 3600 },
		{ "Expires: Sun, 06 Nov 1994 08:51:17 GMT\r\n", 100 },
		{ "Date: yesterday\r\n"
		    "Expires: Sun, 06 Nov 1994 08:50:27 GMT\r\n", 50 },
		{ DATE "Expires: 0\r\n", 0 },
		/* RFC 9111 section 4.2: names in any case */
		{ DATE "Expires: sun, 06 NOV 1994 09:49:37 gmt\r\n", 3600 },
		{ DATE "Expires: Sun Nov  6 09:49:37 1994\r\n", 3600 },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 GMT \r\n", 3600 },
		/* RFC 9111 section 5.3: an invalid date is in the past */
		{ DATE "Expires: Sun Nov 6 09:49:37 1994\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994  09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 9:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 6 Nov 1994 09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun 06 Nov 1994 09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06-Nov-1994 09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 09.49.37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 94 09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 UTC\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 AEST\r\n", 0 },
		{ DATE "Expires: Tue 19 Jan 2038 14:14:08 GMT\r\n", 0 },
		{ DATE "Expires: \r\n", 0 },
		/* …and so is one on two lines (RFC 9110 section 5.3) */
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
		    "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
		    "Expires: Sun, 06 Nov 1994 09:49:38 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
		    "expires: \r\n", 0 },
		/* a Date on two lines is not one: the time received is */
		{ "Date: Sun, 06 Nov 1994 08:00:00 GMT\r\n"
		    "Date: Sun, 06 Nov 1994 08:00:00 GMT\r\n"
		    "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n", 3600 },
		{ DATE "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n"
		    "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n", 42 },
		{ DATE "Expires: Sun, 06 Nov 1994 08:49:27 GMT\r\n", 0 },
		{ DATE "Expires: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 0 },
		{ DATE "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n",
		    100 },
		{ "Last-Modified: Sun, 06 Nov 1994 08:32:57 GMT\r\n", 100 },
		{ DATE "Last-Modified: Sun, 06 Nov 1994 09:06:17 GMT\r\n", 42 },
		{ DATE "Last-Modified: never\r\n", 42 },
		{ DATE, 42 },
		{ "", 42 },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, policy_lifetime(rows[i].headers, T0, 42) ==
		    rows[i].want);
	CHECK(policy_lifetime("", T0, POLICY_DEFAULT_TTL) == 300);
}

/* RFC 9111 section 4.2.3, with every time relative to T0. */
static void
ages(void)
{
	static const struct {
		int		 has_date;
		long long	 date;
		const char	*age;	/* the Age field, or NULL */
		long long	 request, response, initial;
	} rows[] = {
		{ 0, 0, NULL, 0, 0, 0 },
		{ 1, -10, NULL, 0, 0, 10 },		/* apparent age */
		{ 0, 0, "30", -2, 0, 32 },		/* Age + delay */
		{ 1, -100, "30", -2, 0, 100 },		/* the larger */
		{ 1, -5, "30", -2, 0, 32 },
		{ 1, 50, NULL, 0, 0, 0 },		/* Date ahead */
		/* RFC 9111 section 5.1: a list's first member */
		{ 0, 0, "0, 0", 0, 0, 0 },
		{ 0, 0, "0,7200", 0, 0, 0 },
		{ 0, 0, "7200, 0", 0, 0, 7200 },
		{ 0, 0, "3600 ,\t3600", 0, 0, 3600 },
		{ 0, 0, ", ,30, 5", -2, 0, 32 },	/* empty members */
		{ 0, 0, "30 ", -2, 0, 32 },
		/* …and an invalid one is ignored: 0 */
		{ 0, 0, "abc", -3, 0, 3 },
		{ 0, 0, "-7200", 0, 0, 0 },
		{ 0, 0, "+7200", 0, 0, 0 },
		{ 0, 0, "7200.0", 0, 0, 0 },
		{ 0, 0, "7200;foo=bar", 0, 0, 0 },
		{ 0, 0, "7200;foo=111", 0, 0, 0 },
		{ 0, 0, "72 00", 0, 0, 0 },
		{ 0, 0, "0x10", 0, 0, 0 },
		{ 0, 0, "\"7200\"", 0, 0, 0 },
		{ 0, 0, "abc, 7200", 0, 0, 0 },
		{ 0, 0, "", 0, 0, 0 },
		{ 0, 0, " , ", 0, 0, 0 },
		{ 1, -100, "abc", -2, 0, 100 },		/* Date still counts */
		/* RFC 9111 section 1.2.2: too large is 2^31 */
		{ 0, 0, "99999999999", 0, 0, POLICY_DELTA_MAX },
		{ 0, 0, "2147483648", 0, 0, POLICY_DELTA_MAX },
		{ 0, 0, "2147483647", 0, 0, POLICY_DELTA_MAX - 1 },
		{ 0, 0, "7", 5, 0, 7 },		/* clock went back */
	};
	struct policy_times pt;
	struct buf h = BUF_INIT;
	char date[HTTPDATE_LEN];
	size_t i;
	long long initial;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&h);
		if (rows[i].has_date) {
			httpdate_format(T0 + rows[i].date, date);
			buf_printf(&h, "Date: %s\r\n", date);
		}
		if (rows[i].age != NULL)
			buf_printf(&h, "Age: %s\r\n", rows[i].age);
		policy_times_from(buf_cstr(&h), T0 + rows[i].request,
		    T0 + rows[i].response, &pt);
		initial = policy_initial_age(&pt);
		CHECK_AT(i, pt.date == (rows[i].has_date ?
		    T0 + rows[i].date : -1));
		CHECK_AT(i, initial == rows[i].initial);
		CHECK_AT(i, policy_current_age(&pt, T0 + 100) == initial + 100);
		CHECK_AT(i, policy_current_age(&pt, T0 - 100) == initial);
	}
	buf_free(&h);
}

static void
stale_at(void)
{
	struct policy_times pt;
	time_t at;

	policy_times_from("Age: 30\r\n", T0 - 2, T0, &pt);
	at = policy_stale_at(&pt, 60);
	CHECK(at == T0 - 32 + 60);
	CHECK(policy_current_age(&pt, at) == 60);
	CHECK(policy_current_age(&pt, at - 1) == 59);
	CHECK(policy_stale_at(&pt, 0) == T0 - 32);
}

static void
headers_lookup(void)
{
	static const char block[] = "Content-Type: a\r\ncontent-type: b\r\n"
	    "X:\r\nY:\tz\r\nSet-Cookie: k=v; Path=/\r\n";
	static const struct { const char *name, *value; } rows[] = {
		{ "CONTENT-TYPE", "a" }, { "x", "" }, { "y", "z" },
		{ "set-cookie", "k=v; Path=/" }, { "Content", NULL },
		{ "Content-Type-X", NULL }, { "missing", NULL },
	};
	struct header h;
	size_t i;
	char *dup;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		dup = headers_get_dup(block, rows[i].name);
		CHECK_AT(i, headers_get(block, rows[i].name, &h) ==
		    (rows[i].value != NULL));
		CHECK_AT(i, (dup == NULL) == (rows[i].value == NULL));
		CHECK_AT(i, dup == NULL || strcmp(dup, rows[i].value) == 0);
		free(dup);
	}
}

static void
headers_add_checks(void)
{
	static const struct {
		const char	*name, *value;
		size_t		 vlen;
		const char	*out;	/* NULL: refused */
	} rows[] = {
		{ "X-A", "  v  ", 5, "X-A: v\r\n" },
		{ "X", "\t a b \t", 7, "X: a b\r\n" },
		{ "X", "", 0, "X: \r\n" },
		{ "!#$%&'*+-.^_`|~09azAZ", "v", 1,
		    "!#$%&'*+-.^_`|~09azAZ: v\r\n" },
		{ "a b", "v", 1, NULL },
		{ "", "v", 1, NULL },
		{ "x:y", "v", 1, NULL },
		{ "X(", "v", 1, NULL },
		{ "\xC3\xA9", "v", 1, NULL },
		{ "X", "a\r\nb", 4, NULL },
		{ "X", "a\nb", 3, NULL },
		{ "X", "a\rb", 3, NULL },
		{ "X", "a\0b", 3, NULL },
	};
	struct buf b = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&b);
		buf_adds(&b, "A: 1\r\n");
		rc = headers_add(&b, rows[i].name, strlen(rows[i].name),
		    rows[i].value, rows[i].vlen);
		CHECK_AT(i, rc == (rows[i].out ? 0 : -1));
		CHECK_AT(i, strncmp(buf_cstr(&b), "A: 1\r\n", 6) == 0);
		CHECK_AT(i, strcmp(b.data + 6, rows[i].out ? rows[i].out :
		    "") == 0);
	}
	buf_free(&b);
}

static void
headers_add_lines(void)
{
	static const struct { const char *line, *out, *why; } rows[] = {
		{ "X-Y: 1", "X-Y: 1\r\n", NULL },
		{ "X-Y:1", "X-Y: 1\r\n", NULL },
		{ "X-Y: a: b ", "X-Y: a: b\r\n", NULL },
		{ "no colon", NULL, "expected 'Name: value'" },
		{ "Bad Name: 1", NULL, "invalid header name or value" },
		{ "X-Y : 1", NULL, "invalid header name or value" },
		{ ": v", NULL, "invalid header name or value" },
		{ "X: a\r\nInjected: 1", NULL, "invalid header name or value" },
	};
	struct buf b = BUF_INIT;
	const char *why;
	size_t i;
	int rc;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&b);
		why = NULL;
		rc = headers_add_line(&b, rows[i].line, &why);
		CHECK_AT(i, rc == (rows[i].out ? 0 : -1));
		CHECK_AT(i, strcmp(buf_cstr(&b), rows[i].out ? rows[i].out :
		    "") == 0);
		CHECK_AT(i, rows[i].why == NULL ||
		    strcmp(why, rows[i].why) == 0);
	}
	buf_free(&b);
}

static void
hop_by_hop(void)
{
	static const struct { const char *name; int hop; } rows[] = {
		{ "Connection", 1 }, { "content-length", 1 },
		{ "KEEP-ALIVE", 1 }, { "Proxy-Authenticate", 1 },
		{ "Proxy-Authorization", 1 }, { "Proxy-Connection", 1 },
		{ "TE", 1 }, { "Trailer", 1 }, { "Transfer-Encoding", 1 },
		{ "Upgrade", 1 }, { "Content-Type", 0 }, { "Connectio", 0 },
		{ "Connections", 0 }, { "T", 0 }, { "Age", 0 },
		{ "Set-Cookie", 0 }, { "", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, headers_is_hop_by_hop(rows[i].name,
		    strlen(rows[i].name)) == rows[i].hop);
	CHECK(headers_is_hop_by_hop("Connection: close", 10) == 1);
}

static void
end_to_end(void)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, "Kept: 0\r\n");
	headers_add_end_to_end(&b, "Connection: close\r\nContent-Type: x\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"
	    "ETag: \"a\"\r\nBad Line\r\nKeep-Alive: 5\r\n"
	    "Set-Cookie: a\r\nset-cookie: b\r\n");
	CHECK(strcmp(buf_cstr(&b), "Kept: 0\r\nContent-Type: x\r\n"
	    "ETag: \"a\"\r\nSet-Cookie: a\r\nset-cookie: b\r\n") == 0);
	buf_free(&b);
}

/*
 * RFC 9110 section 7.6.1: the fields a Connection header names are
 * hop-by-hop too, and an intermediary removes them.
 */
static void
end_to_end_drops_connection_options(void)
{
	struct buf b = BUF_INIT;
	int kept_end, dropped_hop;

	headers_add_end_to_end(&b, "Connection: close, X-Hop\r\n"
	    "X-Hop: 1\r\nX-End: 2\r\n");
	kept_end = strstr(buf_cstr(&b), "X-End: 2\r\n") != NULL;
	dropped_hop = strstr(b.data, "X-Hop") == NULL;
	buf_free(&b);
	CHECK(kept_end);
	CHECK(dropped_hop);
}

/* RFC 9111 section 3: what a shared cache may store. */
static void
storable(void)
{
	static const struct {
		const char	*method;
		int		 status;
		const char	*request;
		const char	*response;
		int		 ok;
	} rows[] = {
		{ "GET", 200, "", "", 1 },
		{ "HEAD", 200, "", "", 1 },
		{ "POST", 200, "", "Cache-Control: max-age=60\r\n", 0 },
		{ "GET", 100, "", "", 0 },
		{ "GET", 206, "", "", 0 },
		{ "GET", 304, "", "", 0 },
		{ "GET", 404, "", "", 1 },
		{ "GET", 500, "", "", 0 },
		{ "GET", 500, "", "Cache-Control: max-age=5\r\n", 1 },
		{ "GET", 302, "", "Expires: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
		    1 },
		{ "GET", 302, "", "Cache-Control: public\r\n", 1 },
		{ "GET", 200, "Cache-Control: no-store\r\n", "", 0 },
		{ "GET", 200, "", "Cache-Control: no-store\r\n", 0 },
		{ "GET", 200, "", "Cache-Control: private\r\n", 0 },
		{ "GET", 200, "", "Cache-Control: Private=\"x\"\r\n", 0 },
		{ "GET", 200, "", "Vary: *\r\n", 0 },
		{ "GET", 200, "", "Vary: Accept\r\n", 1 },
		{ "GET", 200, "Authorization: Token x\r\n", "", 0 },
		{ "GET", 200, "Authorization: Token x\r\n",
		    "Cache-Control: public\r\n", 1 },
		{ "GET", 200, "Authorization: Token x\r\n",
		    "Cache-Control: s-maxage=5\r\n", 1 },
		{ "GET", 200, "Authorization: Token x\r\n",
		    "Cache-Control: must-revalidate\r\n", 1 },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_AT(i, (policy_unstorable(rows[i].method, rows[i].status,
		    rows[i].request, rows[i].response) == NULL) == rows[i].ok);
}

static void
request_directives(void)
{
	struct policy_request r;

	policy_request_parse("", &r);
	CHECK(!r.no_cache && !r.no_store && !r.only_if_cached);
	CHECK(r.max_age == -1 && r.max_stale == -1 && r.min_fresh == 0);
	policy_request_parse("Cache-Control: max-age=5, min-fresh=7, "
	    "max-stale=9, only-if-cached, no-store\r\n", &r);
	CHECK(r.max_age == 5 && r.min_fresh == 7 && r.max_stale == 9);
	CHECK(r.only_if_cached && r.no_store && !r.no_cache);
	policy_request_parse("Cache-Control: max-stale\r\n", &r);
	CHECK(r.max_stale == POLICY_DELTA_MAX);
	policy_request_parse("Pragma: no-cache\r\n", &r);
	CHECK(r.no_cache);
	/* Pragma counts only without Cache-Control (RFC 9111 section 5.4). */
	policy_request_parse("Pragma: no-cache\r\nCache-Control: max-age=9\r\n",
	    &r);
	CHECK(!r.no_cache);
}

/* What to do with a stored response, by request and response directives. */
static void
uses(void)
{
	static const struct {
		const char	*request;
		const char	*response;
		long long	 age, lifetime;
		enum policy_use	 want;
	} rows[] = {
		{ "", "", 10, 60, POLICY_FRESH },
		{ "", "", 60, 60, POLICY_REVALIDATE },
		{ "", "Cache-Control: no-cache\r\n", 0, 60, POLICY_REVALIDATE },
		{ "Cache-Control: no-cache\r\n", "", 0, 60, POLICY_REVALIDATE },
		{ "Pragma: no-cache\r\n", "", 0, 60, POLICY_REVALIDATE },
		{ "Cache-Control: max-age=5\r\n", "", 10, 60,
		    POLICY_REVALIDATE },
		{ "Cache-Control: max-age=10\r\n", "", 10, 60, POLICY_FRESH },
		{ "Cache-Control: min-fresh=50\r\n", "", 20, 60,
		    POLICY_REVALIDATE },
		{ "Cache-Control: min-fresh=40\r\n", "", 20, 60, POLICY_FRESH },
		{ "Cache-Control: max-stale=30\r\n", "", 80, 60, POLICY_FRESH },
		{ "Cache-Control: max-stale=10\r\n", "", 80, 60,
		    POLICY_REVALIDATE },
		{ "Cache-Control: max-stale\r\n", "", 99999, 60, POLICY_FRESH },
		{ "Cache-Control: max-stale\r\n",
		    "Cache-Control: must-revalidate\r\n", 80, 60,
		    POLICY_REVALIDATE },
		{ "Cache-Control: max-stale\r\n",
		    "Cache-Control: s-maxage=60\r\n", 80, 60, POLICY_REVALIDATE },
		{ "", "Cache-Control: max-age=60, stale-while-revalidate=30\r\n",
		    80, 60, POLICY_STALE_REVALIDATE },
		{ "", "Cache-Control: max-age=60, stale-while-revalidate=30\r\n",
		    95, 60, POLICY_REVALIDATE },
	};
	struct policy_request r;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		policy_request_parse(rows[i].request, &r);
		CHECK_AT(i, policy_use(&r, rows[i].response, rows[i].age,
		    rows[i].lifetime) == rows[i].want);
	}
}

/* RFC 5861 section 4, and the operator's window when the origin names none. */
static void
stale_if_error(void)
{
	CHECK(!policy_stale_if_error("", 70, 60, 0));
	CHECK(policy_stale_if_error("", 70, 60, 30));
	CHECK(!policy_stale_if_error("", 95, 60, 30));
	CHECK(policy_stale_if_error("Cache-Control: stale-if-error=100\r\n",
	    150, 60, 0));
	CHECK(!policy_stale_if_error("Cache-Control: stale-if-error=10\r\n",
	    80, 60, 300));
	CHECK(!policy_stale_if_error("Cache-Control: must-revalidate\r\n",
	    70, 60, 300));
	/* RFC 9111 section 4.2.4: never stale where validation is required */
	CHECK(!policy_stale_if_error("Cache-Control: no-cache\r\n",
	    70, 60, 300));
	CHECK(!policy_stale_if_error("Cache-Control: s-maxage=60\r\n",
	    70, 60, 300));
}

static void
variants(void)
{
	char *v;

	v = policy_variant("Content-Type: text/plain\r\n", "Accept: a\r\n");
	CHECK(v != NULL && strcmp(v, "") == 0);
	free(v);
	v = policy_variant("Vary: Accept, accept-language\r\n",
	    "Accept-Language: sv\r\nAccept: text/html\r\n");
	CHECK(v != NULL &&
	    strcmp(v, "accept=text/html\naccept-language=sv\n") == 0);
	free(v);
	v = policy_variant("Vary: Accept\r\n", "");
	CHECK(v != NULL && strcmp(v, "accept=\n") == 0);
	free(v);
	CHECK(policy_variant("Vary: Accept, *\r\n", "") == NULL);
	/* every line of a field, as the upstream reads it (RFC 9110 5.3) */
	v = policy_variant("Vary: Accept-Language\r\n",
	    "Accept-Language: en\r\nX: y\r\naccept-language: evil\r\n");
	CHECK(v != NULL && strcmp(v, "accept-language=en, evil\n") == 0);
	free(v);
}

/* RFC 9111 section 4.3.4: a 304's fields replace the stored ones. */
static void
merge_304(void)
{
	struct buf out = BUF_INIT;

	headers_merge_304(&out, "Content-Type: text/plain\r\nETag: \"1\"\r\n"
	    "Cache-Control: max-age=1\r\nVia: a\r\nVia: b\r\n",
	    "ETag: \"2\"\r\nCache-Control: max-age=60\r\nVia: c\r\n"
	    "Connection: close\r\n");
	/* the fields that describe the stored body stay as they were */
	CHECK(strcmp(buf_cstr(&out), "Content-Type: text/plain\r\n"
	    "ETag: \"1\"\r\nCache-Control: max-age=60\r\nVia: c\r\n") == 0);
	buf_reset(&out);
	headers_merge_304(&out, "Content-Encoding: gzip\r\n",
	    "Content-Encoding: br\r\nContent-Range: bytes 0-1/2\r\n");
	CHECK(strcmp(buf_cstr(&out), "Content-Encoding: gzip\r\n") == 0);
	buf_free(&out);
}

/*
 * RFC 9111 section 5.1 with RFC 9110 section 5.3: Age on several lines
 * is one list, whose first member counts; an invalid one is ignored.
 */
static void
age_lines(void)
{
	static const struct {
		const char	*headers;
		long long	 age;
	} rows[] = {
		{ "Age: 0\r\nAge: 0\r\n", 0 },
		{ "Age: 0\r\nAge: 7200\r\n", 0 },
		{ "Age: 7200\r\nAge: 0\r\n", 7200 },
		{ "Age: 3600\r\nAge: 3600\r\n", 3600 },
		{ "age: 10\r\nX: 1\r\nAGE: abc\r\n", 10 },
		{ "Age: \r\nAge: 5\r\n", 5 },
		{ "Age: ,\r\nAge: , 6\r\n", 6 },
		{ "Age: abc\r\nAge: 10\r\n", 0 },
		{ "Age: -1\r\nAge: 10\r\n", 0 },
		{ "Age: 10\r\n", 10 },
		{ "X-Age: 10\r\n", 0 },
	};
	struct policy_times t;
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		policy_times_from(rows[i].headers, T0, T0, &t);
		CHECK_AT(i, t.age == rows[i].age);
	}
	/* as list-dishes reads a relay's Age */
	CHECK(policy_age_value("7200, 0") == 7200);
	CHECK(policy_age_value("  42  ") == 42);
	CHECK(policy_age_value("7200;foo=111") == 0);
	CHECK(policy_age_value("") == 0);
}

/* RFC 9111 section 5.2.2.3 */
static void
must_understand(void)
{
	CHECK(policy_unstorable("GET", 599, "",
	    "Cache-Control: max-age=60, must-understand\r\n") != NULL);
	CHECK(policy_unstorable("GET", 200, "",
	    "Cache-Control: max-age=60, must-understand, no-store\r\n") == NULL);
	CHECK(policy_unstorable("GET", 200, "",
	    "Cache-Control: max-age=60, no-store\r\n") != NULL);
}

/* RFC 9213: the targeted field stands in for Cache-Control and Expires. */
static void
targeted_fields(void)
{
	static const char fresh_cdn[] = "Cache-Control: no-store\r\n"
	    "CDN-Cache-Control: max-age=600\r\n";
	static const char store_not[] = "Cache-Control: max-age=600\r\n"
	    "Expires: Thu, 01 Jan 2037 00:00:00 GMT\r\n"
	    "CDN-Cache-Control: no-store\r\n";
	static const char invalid[] = "Cache-Control: max-age=5\r\n"
	    "CDN-Cache-Control: max-age=600, MAX=1\r\n";

	CHECK(policy_unstorable("GET", 200, "", fresh_cdn) == NULL);
	CHECK(policy_lifetime(fresh_cdn, T0, 0) == 600);
	CHECK(policy_unstorable("GET", 200, "", store_not) != NULL);
	CHECK(policy_lifetime(invalid, T0, 0) == 5);	/* ignored */
	CHECK(policy_lifetime("CDN-Cache-Control: max-age=\"5\"\r\n",
	    T0, 0) == 0);
	CHECK(policy_lifetime("CDN-Cache-Control: \r\n"
	    "Cache-Control: max-age=7\r\n", T0, 0) == 7);	/* empty */
	CHECK(policy_lifetime("Expires: Thu, 01 Jan 2037 00:00:00 GMT\r\n"
	    "CDN-Cache-Control: no-cache\r\n", T0, 0) == 0);
	CHECK(policy_set_targets("Surrogate-Control,CDN-Cache-Control") == 0);
	CHECK(policy_is_target("surrogate-control"));
	CHECK(policy_lifetime("CDN-Cache-Control: max-age=9\r\n"
	    "Surrogate-Control: max-age=3\r\n", T0, 0) == 3);
	CHECK(policy_set_targets("bad name") < 0);
	CHECK(policy_set_targets("a,,b") < 0);
	CHECK(policy_set_targets("none") == 0);
	CHECK(policy_unstorable("GET", 200, "", fresh_cdn) != NULL);
	CHECK(policy_set_targets("CDN-Cache-Control") == 0);
}

static const struct unit_test tests[] = {
	TEST(httpdate_parses_three_forms),
	TEST(httpdate_rejects_garbage),
	TEST(httpdate_two_digit_years),
	TEST(httpdate_round_trip),
	TEST(directives),
	TEST(lifetimes),
	TEST(ages),
	TEST(stale_at),
	TEST(headers_lookup),
	TEST(headers_add_checks),
	TEST(headers_add_lines),
	TEST(hop_by_hop),
	TEST(end_to_end),
	TEST(end_to_end_drops_connection_options),
	TEST(storable),
	TEST(request_directives),
	TEST(uses),
	TEST(stale_if_error),
	TEST(variants),
	TEST(merge_304),
	TEST(age_lines),
	TEST(must_understand),
	TEST(targeted_fields),
};

UNIT_MAIN(tests)
