/*
 * RFC 9111 shared-cache rules as pure functions of header blocks and
 * times: freshness lifetime and age. No I/O.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "httpdate.h"
#include "policy.h"

/* delta-seconds (RFC 9111 section 1.2.2): digits, capped at 2^31. */
static int
parse_delta(const char *s, size_t n, long long *out)
{
	long long v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (v < POLICY_DELTA_MAX)
			v = v * 10 + (s[i] - '0');
	}
	*out = v < POLICY_DELTA_MAX ? v : POLICY_DELTA_MAX;
	return 0;
}

/*
 * Looks for a Cache-Control directive in every Cache-Control field
 * (RFC 9111 section 5.2). Returns 0 if absent, 1 if present (value set
 * when it has a valid delta-seconds argument, else -1), and for
 * duplicates the first occurrence wins (section 4.2.1).
 */
int
policy_directive(const char *headers, const char *name, long long *value)
{
	struct header h;
	const char *p, *end, *tok, *arg;
	size_t len = strlen(name), toklen, arglen;

	while (headers_next(&headers, &h)) {
		if (!header_is(&h, "cache-control"))
			continue;
		for (p = h.value, end = h.value + h.value_len; p < end; p++) {
			p += strspn(p, " \t,");
			tok = p;
			while (p < end && *p != ',' && *p != '=' && *p != ' ')
				p++;
			toklen = (size_t)(p - tok);
			arg = NULL, arglen = 0;
			if (p < end && *p == '=') {
				arg = ++p;
				if (p < end && *p == '"') {
					arg = ++p;
					while (p < end && *p != '"')
						p++;
					arglen = (size_t)(p - arg);
					if (p < end)
						p++;
				} else {
					while (p < end && *p != ',' && *p != ' ')
						p++;
					arglen = (size_t)(p - arg);
				}
			}
			while (p < end && *p != ',')
				p++;
			if (toklen != len || strncasecmp(tok, name, len) != 0)
				continue;
			if (value != NULL && (arg == NULL ||
			    parse_delta(arg, arglen, value) < 0))
				*value = -1;
			return 1;
		}
	}
	return 0;
}

static int
header_date(const char *headers, const char *name, time_t *out)
{
	struct header h;

	if (!headers_get(headers, name, &h))
		return 0;
	return httpdate_parse(h.value, h.value_len, out) == 0 ? 1 : -1;
}

/*
 * Freshness lifetime (RFC 9111 section 4.2.1) for a shared cache:
 * s-maxage, then max-age, then Expires minus Date, then the
 * Last-Modified heuristic of section 4.2.2 (10% of the time since the
 * last change), then the operator's default. An invalid value makes
 * the response stale from the start.
 */
long long
policy_lifetime(const char *headers, time_t response_time,
    long long default_ttl)
{
	long long v;
	time_t expires, date, modified;
	int has;

	if (policy_directive(headers, "s-maxage", &v) ||
	    policy_directive(headers, "max-age", &v))
		return v < 0 ? 0 : v;
	if (header_date(headers, "date", &date) != 1)
		date = response_time;
	if ((has = header_date(headers, "expires", &expires)) != 0)
		return has < 0 || expires <= date ? 0 : (long long)(expires - date);
	if (header_date(headers, "last-modified", &modified) == 1 &&
	    modified < date)
		return (long long)(date - modified) / 10;
	return default_ttl;
}

void
policy_times_from(const char *headers, time_t request_time,
    time_t response_time, struct policy_times *t)
{
	struct header h;

	t->request_time = request_time;
	t->response_time = response_time;
	if (header_date(headers, "date", &t->date) != 1)
		t->date = -1;
	t->age = 0;
	if (headers_get(headers, "age", &h) &&
	    parse_delta(h.value, h.value_len, &t->age) < 0)
		t->age = 0;
}

/* corrected_initial_age, RFC 9111 section 4.2.3. */
long long
policy_initial_age(const struct policy_times *t)
{
	long long apparent = 0, delay, corrected;

	if (t->date != -1 && t->response_time > t->date)
		apparent = (long long)(t->response_time - t->date);
	delay = (long long)(t->response_time - t->request_time);
	corrected = t->age + (delay > 0 ? delay : 0);
	return apparent > corrected ? apparent : corrected;
}

long long
policy_current_age(const struct policy_times *t, time_t now)
{
	long long resident = (long long)(now - t->response_time);

	return policy_initial_age(t) + (resident > 0 ? resident : 0);
}

/* The moment the current age reaches the lifetime. */
time_t
policy_stale_at(const struct policy_times *t, long long lifetime)
{
	return t->response_time - (time_t)policy_initial_age(t) +
	    (time_t)lifetime;
}
