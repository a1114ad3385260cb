/*
 * RFC 9111 shared-cache rules as pure functions of header blocks and
 * times: storability, freshness lifetime, age, and what to do with a
 * stored response for a request. No I/O.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "http/headers.h"
#include "http/httpdate.h"
#include "http/sf.h"
#include "policy/policy.h"

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

/*
 * The targeted cache-control fields this cache obeys, in order of
 * precedence (RFC 9213 section 2.2): the first with a valid, non-empty
 * value stands in for Cache-Control and Expires.
 */
static char targets[POLICY_MAX_TARGETS][POLICY_MAX_TARGET_NAME + 1] = {
	"cdn-cache-control",
};
static size_t ntargets = 1;

static int
is_field_name_char(char ch)
{
	return isalnum((unsigned char)ch) ||
	    (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * Sets the targeted fields from a comma-separated list of field names,
 * or "none". Returns -1, leaving them as they were, if a name is not a
 * field name or the list is too long.
 */
int
policy_set_targets(const char *list)
{
	char names[POLICY_MAX_TARGETS][POLICY_MAX_TARGET_NAME + 1];
	size_t n = 0, len;
	const char *p = list;

	if (strcmp(list, "none") == 0) {
		ntargets = 0;
		return 0;
	}
	for (;;) {
		len = strcspn(p, ",");
		if (len == 0 || len > POLICY_MAX_TARGET_NAME ||
		    n == POLICY_MAX_TARGETS)
			return -1;
		for (size_t i = 0; i < len; i++) {
			if (!is_field_name_char(p[i]))
				return -1;
			names[n][i] = (char)tolower((unsigned char)p[i]);
		}
		names[n++][len] = '\0';
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	memcpy(targets, names, sizeof names);
	ntargets = n;
	return 0;
}

/* Whether a field of that name is one the cache obeys. */
int
policy_is_target(const char *name)
{
	size_t i;

	for (i = 0; i < ntargets; i++)
		if (strcasecmp(name, targets[i]) == 0)
			return 1;
	return 0;
}

/*
 * The field that tells the upstream what relay obeys, when it obeys
 * Surrogate-Control (Edge Architecture 1.0: the device token that
 * field may name), added to a request's fields.
 */
void
policy_add_capability(struct buf *fields)
{
	if (policy_is_target("surrogate-control"))
		buf_adds(fields,
		    "Surrogate-Capability: relay=\"Surrogate/1.0\"\r\n");
}

/*
 * Looks up a directive in every line of one targeted field, as one
 * dictionary. Returns -1 if a line is not a valid dictionary, else
 * as policy_directive.
 */
static int
targeted_directive(const char *headers, const char *field, const char *name,
    long long *value)
{
	struct header h;
	struct sf_item item, last;
	int rc, found = 0;

	while (headers_next(&headers, &h)) {
		if (!header_is(&h, field))
			continue;
		if ((rc = sf_dictionary_get(h.value, h.value_len, name,
		    &item)) < 0)
			return -1;
		if (rc == 1)
			last = item, found = 1;
	}
	if (found && last.type == SF_BOOLEAN && last.integer == 0)
		found = 0;	/* "no-store=?0" says it is not */
	if (found && value != NULL)
		*value = last.type == SF_INTEGER && last.integer >= 0 ?
		    (last.integer < POLICY_DELTA_MAX ? last.integer :
		    POLICY_DELTA_MAX) : -1;
	return found;
}

/* The first targeted field present with a valid, non-empty value; NULL if none. */
static const char *
targeted_field(const char *headers)
{
	struct header h;
	size_t i;

	for (i = 0; i < ntargets; i++)
		if (headers_get(headers, targets[i], &h) &&
		    h.value_len > strspn(h.value, " \t") &&
		    targeted_directive(headers, targets[i], "", NULL) >= 0)
			return targets[i];
	return NULL;
}

/*
 * Where a response's directives are read: its targeted field in force,
 * found once per decision, else (field NULL) its Cache-Control.
 */
struct control {
	const char	*response;
	const char	*field;
};

static struct control
control_of(const char *response)
{
	return (struct control){ response, targeted_field(response) };
}

/* A response directive, as policy_directive. */
static int
directive(const struct control *c, const char *name, long long *value)
{
	return c->field != NULL ? targeted_directive(c->response, c->field,
	    name, value) : policy_directive(c->response, name, value);
}

/*
 * A field's value as one: every line of it, in order, joined by commas
 * (RFC 9110 section 5.3), without the whitespace around it. Returns
 * whether the field is there.
 */
static int
field_value(const char *headers, const char *name, struct buf *v)
{
	buf_reset(v);
	if (headers_get_all(headers, name, strlen(name), v) == 0)
		return 0;
	while (v->len > 0 && (v->data[v->len - 1] == ' ' ||
	    v->data[v->len - 1] == '\t'))
		v->len--;
	buf_cstr(v);
	return 1;
}

/*
 * A date field (RFC 9110 section 5.6.7): 1 and its time, 0 if absent,
 * -1 if invalid. A date is one value: on two lines it is none.
 */
static int
header_date(const char *headers, const char *name, time_t *out)
{
	struct buf v = BUF_INIT;
	int rc = 0;

	if (field_value(headers, name, &v))
		rc = httpdate_parse(v.data, v.len, out) == 0 ? 1 : -1;
	buf_free(&v);
	return rc;
}

/*
 * Freshness lifetime (RFC 9111 section 4.2.1) for a shared cache:
 * s-maxage, then max-age, then Expires minus Date, then the
 * Last-Modified heuristic of section 4.2.2 (10% of the time since the
 * last change), then the operator's default. An invalid max-age makes
 * the response stale from the start (4.2.1), and so does an invalid
 * Expires (5.3): one not exactly an HTTP-date, or on several lines. A
 * Date that is not one is replaced by the time received (RFC 9110
 * section 6.6.1).
 */
long long
policy_lifetime(const char *headers, time_t response_time,
    long long default_ttl)
{
	struct control c = control_of(headers);
	long long v;
	time_t expires, date, modified;
	int has;

	if (directive(&c, "s-maxage", &v) || directive(&c, "max-age", &v))
		return v < 0 ? 0 : v;
	if (header_date(headers, "date", &date) != 1)
		date = response_time;
	if (c.field == NULL &&
	    (has = header_date(headers, "expires", &expires)) != 0)
		return has < 0 || expires <= date ? 0 : (long long)(expires - date);
	if (header_date(headers, "last-modified", &modified) == 1 &&
	    modified < date)
		return (long long)(date - modified) / 10;
	return default_ttl;
}

/*
 * age_value (RFC 9111 section 5.1) of an Age field's value, its lines
 * joined: Age is one delta-seconds, but a list of them counts by its
 * first member (empty ones are no members: RFC 9110 section 5.6.1). A
 * value that is not a delta-seconds (a sign, a fraction, a parameter,
 * a word) is ignored: 0, as without the field, not stale.
 */
long long
policy_age_value(const char *value)
{
	const char *first = value + strspn(value, " \t,");
	size_t n = strcspn(first, ",");
	long long age;

	while (n > 0 && (first[n - 1] == ' ' || first[n - 1] == '\t'))
		n--;
	return n > 0 && parse_delta(first, n, &age) == 0 ? age : 0;
}

/* The times of a response. */
void
policy_times_from(const char *headers, time_t request_time,
    time_t response_time, struct policy_times *t)
{
	struct buf age = BUF_INIT;

	t->request_time = request_time;
	t->response_time = response_time;
	if (header_date(headers, "date", &t->date) != 1)
		t->date = -1;
	t->age = field_value(headers, "age", &age) ?
	    policy_age_value(age.data) : 0;
	buf_free(&age);
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

static int
listed(int status, const int *codes, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (codes[i] == status)
			return 1;
	return 0;
}

/* Status codes a cache may store without explicit freshness (RFC 9110 section 15.1). */
static int
heuristically_cacheable(int status)
{
	static const int codes[] = {
		200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501,
	};

	return listed(status, codes, sizeof codes / sizeof codes[0]);
}

/*
 * Status codes whose caching requirements this cache implements, for
 * must-understand (RFC 9111 section 5.2.2.3): the final ones of RFC
 * 9110 it stores as any other response. 206 is not stored.
 */
static int
understood(int status)
{
	static const int codes[] = {
		200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404,
		405, 410, 414, 500, 501, 502, 503, 504,
	};

	return listed(status, codes, sizeof codes / sizeof codes[0]);
}

static int
has_explicit_freshness(const struct control *c)
{
	struct header h;

	return directive(c, "max-age", NULL) || directive(c, "s-maxage", NULL) ||
	    (c->field == NULL && headers_get(c->response, "expires", &h));
}

/*
 * Whether a shared cache may store a response (RFC 9111 section 3 and
 * 3.5). Returns NULL if it may, else the reason it may not.
 */
const char *
policy_unstorable(const char *method, int status, const char *request,
    const char *response)
{
	struct control c = control_of(response);
	struct header h;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return "method is not GET or HEAD";
	if (status < 200 || status == 206 || status == 304)
		return "status is not storable";
	if (policy_directive(request, "no-store", NULL))
		return "request says no-store";
	if (directive(&c, "must-understand", NULL)) {
		/* it stands in for no-store where understood (5.2.2.3) */
		if (!understood(status))
			return "status is not understood (must-understand)";
	} else if (directive(&c, "no-store", NULL)) {
		return "response says no-store";
	}
	if (directive(&c, "private", NULL))
		return "response is private";
	if (headers_get(response, "vary", &h) && h.value_len == 1 &&
	    h.value[0] == '*')
		return "response varies on everything";
	if (headers_get(request, "authorization", &h) &&
	    !directive(&c, "must-revalidate", NULL) &&
	    !directive(&c, "public", NULL) &&
	    !directive(&c, "s-maxage", NULL))
		return "request carries Authorization";
	if (!has_explicit_freshness(&c) &&
	    !heuristically_cacheable(status) &&
	    !directive(&c, "public", NULL))
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

/*
 * A shared cache may not serve this response stale (RFC 9111 sections
 * 4.2.4, 5.2.2.2, 5.2.2.4, 5.2.2.8, 5.2.2.10).
 */
static int
must_revalidate(const struct control *c)
{
	return directive(c, "must-revalidate", NULL) ||
	    directive(c, "no-cache", NULL) ||
	    directive(c, "proxy-revalidate", NULL) ||
	    directive(c, "s-maxage", NULL);
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
	struct control c = control_of(response);
	long long v, stale_for = age - lifetime;

	if (req->no_cache || directive(&c, "no-cache", NULL))
		return POLICY_REVALIDATE;
	if (req->max_age >= 0 && age > req->max_age)
		return POLICY_REVALIDATE;
	if (stale_for < 0 && lifetime - age >= req->min_fresh)
		return POLICY_FRESH;
	if (stale_for < 0 || must_revalidate(&c))
		return POLICY_REVALIDATE;
	if (req->max_stale >= 0 && stale_for <= req->max_stale)
		return POLICY_FRESH;
	/* RFC 5861 section 3 */
	if (directive(&c, "stale-while-revalidate", &v) &&
	    v >= 0 && stale_for < v)
		return POLICY_STALE_REVALIDATE;
	return POLICY_REVALIDATE;
}

/*
 * Whether a stale response may answer when the upstream cannot be
 * asked (RFC 9111 section 4.2.4: "disconnected").
 */
int
policy_may_go_stale(const char *response)
{
	struct control c = control_of(response);

	return !must_revalidate(&c);
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
	struct control c = control_of(response);
	long long v = operator_window;

	if (must_revalidate(&c))
		return 0;
	if (directive(&c, "stale-if-error", &v) && v < 0)
		v = 0;
	return v > 0 && age - lifetime < v;
}

/* Whether p[0..n) is a field name, a token (RFC 9110 section 5.1). */
static int
field_name(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_field_name_char(p[i]))
			return 0;
	return 1;
}

/*
 * Appends "name=value\n" for one field named by Vary, its value every
 * line of it in the request as one (RFC 9111 section 4.1 with RFC 9110
 * section 5.3), as the upstream sees it.
 */
static void
add_variant_field(struct buf *key, const char *name, size_t n,
    const char *request)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_addc(key, (char)tolower((unsigned char)name[i]));
	buf_addc(key, '=');
	headers_get_all(request, name, n, key);
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
			/* "*", or no field name (RFC 9110 12.5.5): no reuse */
			if ((n == 1 && *p == '*') || !field_name(p, n)) {
				buf_free(&key);
				return NULL;
			}
			if (n > 0)
				add_variant_field(&key, p, n, request);
		}
	}
	return buf_take(&key);
}
