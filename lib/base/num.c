/*
 * Strict number parsing for options and fields: the whole string,
 * within bounds, or an error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"

int
num_parse(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)*s) && !(*s == '-' &&
	    isdigit((unsigned char)s[1])))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

struct unit {
	char		name;
	long long	times;
};

/* A number up to max, optionally followed by one of n units. */
static int
with_unit(const char *s, const struct unit *units, size_t n_units,
    long long max, long long *out)
{
	char digits[24];
	size_t n = strlen(s), i;
	long long mult = 1, v;

	for (i = 0; n > 0 && i < n_units; i++)
		if (s[n - 1] == units[i].name) {
			mult = units[i].times;
			n--;
			break;
		}
	if (n == 0 || n >= sizeof digits || s[0] == '-')
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (num_parse(digits, 0, max / mult, &v) < 0)
		return -1;
	*out = v * mult;
	return 0;
}

/* Seconds, optionally with one unit suffix: 90, 90s, 15m, 2h, 7d. */
int
num_duration(const char *s, long long *out)
{
	static const struct unit units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};

	return with_unit(s, units, sizeof units / sizeof units[0],
	    100LL * 365 * 86400, out);
}

/* Bytes, optionally with K, M or G (powers of 1024): 512, 64K, 8M, 2G. */
int
num_size(const char *s, long long *out)
{
	static const struct unit units[] = {
		{ 'K', 1LL << 10 }, { 'M', 1LL << 20 }, { 'G', 1LL << 30 },
	};

	return with_unit(s, units, sizeof units / sizeof units[0], 1LL << 50,
	    out);
}

/* The value of a hexadecimal digit, either case, or -1. */
int
num_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
