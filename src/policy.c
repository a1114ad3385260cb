/*
 * RFC 9111 shared-cache rules as pure functions of header blocks and
 * times: storability, freshness lifetime, age, and what to do with a
 * stored response for a request. No I/O.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
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

/* Status codes a cache may store without explicit freshness (RFC 9110 section 15.1). */
static int
heuristically_cacheable(int status)
{
	static const int codes[] = {
		200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501,
	};
	size_t i;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (codes[i] == status)
			return 1;
	return 0;
}

static int
has_explicit_freshness(const char *headers)
{
	struct header h;

	return policy_directive(headers, "max-age", NULL) ||
	    policy_directive(headers, "s-maxage", NULL) ||
	    headers_get(headers, "expires", &h);
}

/*
 * Whether a shared cache may store a response (RFC 9111 section 3 and
 * 3.5). Returns NULL if it may, else the reason it may not.
 */
const char *
policy_unstorable(const char *method, int status, const char *request,
    const char *response)
{
	struct header h;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return "method is not GET or HEAD";
	if (status < 200 || status == 206 || status == 304)
		return "status is not storable";
	if (policy_directive(request, "no-store", NULL))
		return "request says no-store";
	if (policy_directive(response, "no-store", NULL))
		return "response says no-store";
	if (policy_directive(response, "private", NULL))
		return "response is private";
	if (headers_get(response, "vary", &h) && h.value_len == 1 &&
	    h.value[0] == '*')
		return "response varies on everything";
	if (headers_get(request, "authorization", &h) &&
	    !policy_directive(response, "must-revalidate", NULL) &&
	    !policy_directive(response, "public", NULL) &&
	    !policy_directive(response, "s-maxage", NULL))
		return "request carries Authorization";
	if (!has_explicit_freshness(response) &&
	    !heuristically_cacheable(status) &&
	    !policy_directive(response, "public", NULL))
		return "status is not cacheable without explicit freshness";
	return NULL;
}

/* Request directives (RFC 9111 section 5.2.1), Pragma: no-cache included (5.4). */
void
policy_request_parse(const char *headers, struct policy_request *r)
{
	struct header h;
	long long v;

	memset(r, 0, sizeof *r);
	r->max_age = r->max_stale = -1;
	r->no_cache = policy_directive(headers, "no-cache", NULL);
	if (!headers_get(headers, "cache-control", &h) &&
	    headers_get(headers, "pragma", &h) && h.value_len == 8 &&
	    strncasecmp(h.value, "no-cache", 8) == 0)
		r->no_cache = 1;
	r->no_store = policy_directive(headers, "no-store", NULL);
	r->only_if_cached = policy_directive(headers, "only-if-cached", NULL);
	if (policy_directive(headers, "max-age", &v))
		r->max_age = v < 0 ? 0 : v;
	if (policy_directive(headers, "max-stale", &v))
		r->max_stale = v < 0 ? POLICY_DELTA_MAX : v;
	if (policy_directive(headers, "min-fresh", &v) && v > 0)
		r->min_fresh = v;
}

/* A shared cache may not serve this response stale (RFC 9111 sections 5.2.2.2, 5.2.2.8, 5.2.2.10). */
static int
must_revalidate(const char *response)
{
	return policy_directive(response, "must-revalidate", NULL) ||
	    policy_directive(response, "proxy-revalidate", NULL) ||
	    policy_directive(response, "s-maxage", NULL);
}

/*
 * What to do with a stored response for a request (RFC 9111 section 4):
 * serve it, serve it stale while revalidating in the background, or
 * revalidate (or fetch) first.
 */
enum policy_use
policy_use(const struct policy_request *req, const char *response,
    long long age, long long lifetime)
{
	long long v, stale_for = age - lifetime;

	if (req->no_cache || policy_directive(response, "no-cache", NULL))
		return POLICY_REVALIDATE;
	if (req->max_age >= 0 && age > req->max_age)
		return POLICY_REVALIDATE;
	if (stale_for < 0 && lifetime - age >= req->min_fresh)
		return POLICY_FRESH;
	if (stale_for < 0 || must_revalidate(response))
		return POLICY_REVALIDATE;
	if (req->max_stale >= 0 && stale_for <= req->max_stale)
		return POLICY_FRESH;
	/* RFC 5861 section 3 */
	if (policy_directive(response, "stale-while-revalidate", &v) &&
	    v >= 0 && stale_for < v)
		return POLICY_STALE_REVALIDATE;
	return POLICY_REVALIDATE;
}

/*
 * Whether a stale response may stand in for an upstream error
 * (RFC 5861 section 4): within its stale-if-error window, or the
 * operator's when the response names none.
 */
int
policy_stale_if_error(const char *response, long long age, long long lifetime,
    long long operator_window)
{
	long long v = operator_window;

	if (must_revalidate(response))
		return 0;
	if (policy_directive(response, "stale-if-error", &v) && v < 0)
		v = 0;
	return v > 0 && age - lifetime < v;
}

/* Appends "name=value\n" for one field named by Vary, from the request. */
static void
add_variant_field(struct buf *key, const char *name, size_t n,
    const char *request)
{
	struct header field;
	size_t i;

	for (i = 0; i < n; i++)
		buf_addc(key, (char)tolower((unsigned char)name[i]));
	buf_addc(key, '=');
	while (headers_next(&request, &field))
		if (field.name_len == n &&
		    strncasecmp(field.name, name, n) == 0) {
			buf_add(key, field.value, field.value_len);
			break;
		}
	buf_addc(key, '\n');
}

/*
 * The secondary key of a response with Vary (RFC 9111 section 4.1):
 * "name=value" lines for each field it names, from the request; empty
 * without Vary. NULL if it varies on "*" and can never be reused.
 */
char *
policy_variant(const char *response, const char *request)
{
	struct buf key = BUF_INIT;
	struct header vary;
	const char *p, *end;
	size_t n;

	buf_cstr(&key);
	while (headers_next(&response, &vary)) {
		if (!header_is(&vary, "vary"))
			continue;
		for (p = vary.value, end = p + vary.value_len; p < end; p += n) {
			p += strspn(p, " \t,");
			n = strcspn(p, " \t,\r");
			if (p + n > end)
				n = (size_t)(end - p);
			if (n == 1 && *p == '*') {
				buf_free(&key);
				return NULL;
			}
			if (n > 0)
				add_variant_field(&key, p, n, request);
		}
	}
	return (char *)buf_cstr(&key);
}
