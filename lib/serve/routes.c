/*
 * Merge routes: a request path pattern, the upstream calls it makes,
 * the extra request fields they carry, and the jq program that merges
 * their answers. Read from a routes file; see relay-serve(8).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/io.h"
#include "base/num.h"
#include "http/headers.h"
#include "http/target.h"
#include "serve/routes.h"

struct parser {
	const char	*file;
	int		 line;
	char		*err;
	size_t		 errlen;
	struct route	*routes, *cur;
};

static int
fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, p->line);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int
is_name(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return 0;
	return n > 0;
}

/* The {param} names of a pattern, in order; -1 if it is malformed. */
static int
pattern_params(const char *pattern, struct route_params *out)
{
	const char *p = pattern, *end;

	memset(out, 0, sizeof *out);
	if (*p != '/')
		return -1;
	while ((p = strchr(p, '{')) != NULL) {
		if (p[-1] != '/' || (end = strchr(p, '}')) == NULL ||
		    (end[1] != '/' && end[1] != '\0') ||
		    !is_name(p + 1, (size_t)(end - p - 1)) ||
		    out->n == ROUTES_MAX_PARAMS)
			return -1;
		out->names[out->n++] = xstrndup(p + 1, (size_t)(end - p - 1));
		p = end;
	}
	return strpbrk(pattern, "?# \t") != NULL ? -1 : 0;
}

static int
has_param(const struct route_params *ps, const char *name, size_t n)
{
	int i;

	for (i = 0; i < ps->n; i++)
		if (strlen(ps->names[i]) == n && !strncmp(ps->names[i], name, n))
			return 1;
	return 0;
}

/* "${NAME}" in a field value, from the environment. */
static int
expand(struct parser *p, const char *in, struct buf *out)
{
	const char *s, *end, *val;
	char name[128];

	for (s = in; *s != '\0'; s++) {
		if (s[0] != '$' || s[1] != '{') {
			buf_addc(out, *s);
			continue;
		}
		if ((end = strchr(s, '}')) == NULL ||
		    (size_t)(end - s - 2) >= sizeof name)
			return fail(p, "unclosed ${ in header value");
		snprintf(name, sizeof name, "%.*s", (int)(end - s - 2), s + 2);
		if ((val = getenv(name)) == NULL)
			return fail(p, "environment variable '%s' is not set",
			    name);
		buf_adds(out, val);
		s = end;
	}
	return 0;
}

/* header-file Name: /path: the value is the file's first line. */
static int
header_from_file(struct parser *p, const char *arg, struct buf *out)
{
	const char *colon = strchr(arg, ':'), *path;
	struct buf text = BUF_INIT;
	char why[300];
	size_t n;

	if (colon == NULL)
		return fail(p, "expected header-file Name: /path");
	for (path = colon + 1; *path == ' ' || *path == '\t'; path++)
		;
	if (io_read_file(path, ROUTES_MAX_HEADER_FILE, &text, why,
	    sizeof why) < 0) {
		buf_free(&text);
		return fail(p, "cannot read '%s': %s", path, why);
	}
	n = strcspn(buf_cstr(&text), "\r\n");
	if (memchr(text.data, '\0', n < text.len ? n + 1 : n) != NULL) {
		buf_free(&text);
		return fail(p, "'%s' holds a NUL on its first line", path);
	}
	buf_add(out, arg, (size_t)(colon - arg));
	buf_adds(out, ": ");
	buf_add(out, text.data, n);
	buf_free(&text);
	return 0;
}

static int
add_header(struct parser *p, const char *arg, int from_file)
{
	struct buf line = BUF_INIT;
	const char *why;
	int rc;

	rc = from_file ? header_from_file(p, arg, &line) :
	    expand(p, arg, &line);
	if (rc == 0 && headers_add_line(&p->cur->fields, buf_cstr(&line),
	    &why) < 0)
		rc = fail(p, "bad header: %s", why);
	buf_free(&line);
	return rc;
}

/* What has the name in the route: 1 a call, 2 a parameter or incomplete. */
static int
name_taken(const struct route *r, const char *name, size_t n)
{
	struct route_params ps;
	int i, taken = n == 10 && strncmp(name, "incomplete", 10) == 0 ? 2 : 0;

	for (i = 0; i < r->ncalls; i++)
		if (strlen(r->calls[i].name) == n &&
		    !strncmp(r->calls[i].name, name, n))
			taken = 1;
	pattern_params(r->pattern, &ps);
	if (has_param(&ps, name, n))
		taken = 2;
	route_params_free(&ps);
	return taken;
}

static int
add_call(struct parser *p, const char *arg)
{
	struct route *r = p->cur;
	struct route_params ps;
	const char *sp = strpbrk(arg, " \t"), *path, *q, *end;
	size_t n = sp != NULL ? (size_t)(sp - arg) : 0;
	int rc = 0;

	if (sp == NULL || !is_name(arg, n))
		return fail(p, "expected call NAME /path");
	for (path = sp; *path == ' ' || *path == '\t'; path++)
		;
	if (*path != '/')
		return fail(p, "a call's path starts with /");
	if (r->ncalls == ROUTES_MAX_CALLS)
		return fail(p, "more than %d calls", ROUTES_MAX_CALLS);
	switch (name_taken(r, arg, n)) {
	case 1:
		return fail(p, "call '%.*s' named twice", (int)n, arg);
	case 2:
		return fail(p, "call '%.*s' has the name of a parameter", (int)n,
		    arg);
	}
	pattern_params(r->pattern, &ps);
	for (q = path; rc == 0 && (q = strchr(q, '{')) != NULL; q = end) {
		if ((end = strchr(q, '}')) == NULL ||
		    !has_param(&ps, q + 1, (size_t)(end - q - 1)))
			rc = fail(p, "no parameter '%.*s' in the route's "
			    "pattern", end != NULL ? (int)(end - q + 1) :
			    (int)strlen(q), q);
	}
	route_params_free(&ps);
	if (rc < 0)
		return rc;
	r->calls[r->ncalls].name = xstrndup(arg, n);
	r->calls[r->ncalls++].path = xstrdup(path);
	return 0;
}

/* The next word of *s, which moves past it and the blanks after. */
static size_t
next_word(const char **s, const char **w)
{
	size_t n = strcspn(*s, " \t");

	*w = *s;
	*s += n;
	*s += strspn(*s, " \t");
	return n;
}

/* each NAME /path/{.} from CALL ITEMS: a call an item (routes.h). */
static int
add_each(struct parser *p, const char *arg)
{
	struct route *r = p->cur;
	struct route_params ps;
	const char *s = arg, *name, *path, *from, *call, *q, *end;
	size_t nname = next_word(&s, &name), npath = next_word(&s, &path),
	    nfrom = next_word(&s, &from), ncall = next_word(&s, &call);
	int i, rc = 0;

	if (!is_name(name, nname) || npath == 0 || nfrom != 4 ||
	    strncmp(from, "from", 4) != 0 || ncall == 0 || *s == '\0')
		return fail(p, "expected each NAME /path/{.} from CALL "
		    "ITEMS (a jq expression)");
	if (r->each != NULL)
		return fail(p, "a route has one each");
	if (name_taken(r, name, nname))
		return fail(p, "each '%.*s' has the name of a call or a "
		    "parameter", (int)nname, name);
	if (path[0] != '/' || memmem(path, npath, "{.}", 3) == NULL)
		return fail(p, "each's path starts with / and has {.} for "
		    "the item");
	for (i = 0; i < r->ncalls; i++)
		if (strlen(r->calls[i].name) == ncall &&
		    !strncmp(r->calls[i].name, call, ncall))
			break;
	if (i == r->ncalls)
		return fail(p, "each '%.*s': no call '%.*s' before it",
		    (int)nname, name, (int)ncall, call);
	pattern_params(r->pattern, &ps);
	for (q = path; rc == 0 && q < path + npath &&
	    (q = memchr(q, '{', (size_t)(path + npath - q))) != NULL; q = end) {
		end = memchr(q, '}', (size_t)(path + npath - q));
		if (end == NULL || (strncmp(q, "{.}", 3) != 0 &&
		    !has_param(&ps, q + 1, (size_t)(end - q - 1))))
			rc = fail(p, "no parameter '%.*s' in the route's "
			    "pattern", end != NULL ? (int)(end - q + 1) : 1, q);
	}
	route_params_free(&ps);
	if (rc < 0)
		return rc;
	r->each = xcalloc(1, sizeof *r->each);
	r->each->name = xstrndup(name, nname);
	r->each->path = xstrndup(path, npath);
	r->each->from = i;
	r->each->items = xstrdup(s);
	r->each->line = p->line;
	return 0;
}

/* max-items N and at-once N: each's bounds (routes.h). */
static int
set_bound(struct parser *p, const char *word, const char *arg, int max,
    int *out)
{
	long long n;

	if (num_parse(arg, 1, max, &n) < 0)
		return fail(p, "bad %s '%s': 1 to %d", word, arg, max);
	*out = (int)n;
	return 0;
}

static int
start_route(struct parser *p, const char *pattern)
{
	struct route_params ps;
	struct route *r;

	if (pattern_params(pattern, &ps) < 0) {
		route_params_free(&ps);
		return fail(p, "bad route pattern '%s': a path with {name} "
		    "segments", pattern);
	}
	route_params_free(&ps);
	for (r = p->routes; r != NULL; r = r->next)
		if (strcmp(r->pattern, pattern) == 0)
			return fail(p, "route '%s' defined twice (line %d)",
			    pattern, r->line);
	r = xcalloc(1, sizeof *r);
	r->pattern = xstrdup(pattern);
	r->file = xstrdup(p->file);
	r->line = p->line;
	r->ttl = -1;
	r->max_items = 100;
	r->fan_at_once = 8;
	r->next = p->routes;
	p->routes = p->cur = r;
	return 0;
}

static int
end_route(struct parser *p)
{
	struct route *r = p->cur;

	if (r->ncalls == 0)
		return fail(p, "route '%s' makes no call", r->pattern);
	if (r->program == NULL)
		return fail(p, "route '%s' has no jq program", r->pattern);
	p->cur = NULL;
	return 0;
}

/* limit RATE [burst N]: the route's own rate limit (gcra.h). */
static int
set_limit(struct parser *p, const char *arg)
{
	size_t n = strcspn(arg, " \t");
	char *rate = xstrndup(arg, n);
	const char *rest = arg + n + strspn(arg + n, " \t");
	long long burst = 1;
	int rc = 0;

	if (*rest != '\0' && (strncmp(rest, "burst", 5) != 0 ||
	    (rest[5] != ' ' && rest[5] != '\t') ||
	    num_parse(rest + 6 + strspn(rest + 6, " \t"), 1, 1000000,
	    &burst) < 0))
		rc = fail(p, "expected limit RATE [burst N], N from 1 to "
		    "1000000");
	else if (gcra_parse(rate, burst, &p->cur->limit) < 0)
		rc = fail(p, "bad limit '%s': a count per s, m, h or d, as "
		    "100/m", rate);
	p->cur->limited = rc == 0;
	free(rate);
	return rc;
}

static int
directive(struct parser *p, const char *word, const char *arg)
{
	struct route *r = p->cur;

	if (strcmp(word, "route") == 0)
		return r != NULL ? fail(p, "route inside route '%s' (no end)",
		    r->pattern) : start_route(p, arg);
	if (r == NULL)
		return fail(p, "'%s' outside a route", word);
	if (strcmp(word, "call") == 0)
		return r->each != NULL ? fail(p, "calls come before each") :
		    add_call(p, arg);
	if (strcmp(word, "each") == 0)
		return add_each(p, arg);
	if (strcmp(word, "max-items") == 0)
		return set_bound(p, word, arg, ROUTES_MAX_ITEMS, &r->max_items);
	if (strcmp(word, "at-once") == 0)
		return set_bound(p, word, arg, ROUTES_MAX_AT_ONCE,
		    &r->fan_at_once);
	if (strcmp(word, "header") == 0)
		return add_header(p, arg, 0);
	if (strcmp(word, "header-file") == 0)
		return add_header(p, arg, 1);
	if (strcmp(word, "ttl") == 0)
		return num_duration(arg, &r->ttl) < 0 ?
		    fail(p, "bad ttl '%s'", arg) : 0;
	if (strcmp(word, "cache") == 0)
		return num_duration(arg, &r->cache) < 0 ?
		    fail(p, "bad cache duration '%s'", arg) : 0;
	if (strcmp(word, "on-error") == 0) {
		if (strcmp(arg, "fail") != 0 && strcmp(arg, "partial") != 0)
			return fail(p, "on-error is fail or partial");
		r->partial = strcmp(arg, "partial") == 0;
		return 0;
	}
	if (strcmp(word, "limit") == 0)
		return set_limit(p, arg);
	if (strcmp(word, "end") == 0)
		return end_route(p);
	return fail(p, "unknown directive '%s'", word);
}

/* The jq program: the rest of the jq line and the lines up to end. */
static int
read_program(struct parser *p, FILE *f, const char *first)
{
	struct buf prog = BUF_INIT;
	char *line = NULL, *s;
	size_t cap = 0;

	p->cur->program_line = p->line;
	buf_adds(&prog, first);
	buf_addc(&prog, '\n');
	while (getline(&line, &cap, f) > 0) {
		p->line++;
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (strcmp(s, "end\n") == 0 || strcmp(s, "end") == 0) {
			free(line);
			p->cur->program = buf_take(&prog);
			return end_route(p);
		}
		buf_adds(&prog, line);
	}
	free(line);
	buf_free(&prog);
	return fail(p, "route '%s': no end after its jq program",
	    p->cur->pattern);
}

static int
parse(struct parser *p, FILE *f)
{
	char *line = NULL, *s, *arg, *end;
	size_t cap = 0;
	int rc = 0;

	while (rc == 0 && getline(&line, &cap, f) > 0) {
		p->line++;
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		end = s + strlen(s);
		while (end > s && strchr(" \t\r\n", end[-1]) != NULL)
			*--end = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		arg = s + strcspn(s, " \t");
		if (*arg != '\0')
			*arg++ = '\0';
		while (*arg == ' ' || *arg == '\t')
			arg++;
		if (strcmp(s, "jq") == 0 && p->cur != NULL)
			rc = read_program(p, f, arg);
		else
			rc = directive(p, s, arg);
	}
	free(line);
	if (rc == 0 && p->cur != NULL)
		rc = fail(p, "route '%s' has no end", p->cur->pattern);
	return rc;
}

/*
 * Reads a routes file. Returns its routes (NULL for none), or NULL
 * with "file:line: reason" in err.
 */
struct route *
routes_load(const char *path, char *err, size_t errlen)
{
	struct parser p = { path, 0, err, errlen, NULL, NULL };
	struct buf text = BUF_INIT;
	char why[200];
	FILE *f;
	int rc;

	err[0] = '\0';
	if (io_read_file(path, ROUTES_MAX_FILE, &text, why, sizeof why) < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", path, why);
		buf_free(&text);
		return NULL;
	}
	if (memchr(buf_cstr(&text), '\0', text.len) != NULL) {
		snprintf(err, errlen, "'%s' is not text: it has a NUL byte",
		    path);
		buf_free(&text);
		return NULL;
	}
	if (text.len == 0) {	/* no routes */
		buf_free(&text);
		return NULL;
	}
	if ((f = fmemopen(text.data, text.len, "r")) == NULL)
		out_of_memory();
	rc = parse(&p, f);
	fclose(f);
	buf_free(&text);
	if (rc < 0) {
		routes_free(p.routes);
		return NULL;
	}
	return p.routes;
}

void
routes_free(struct route *r)
{
	struct route *next;
	int i;

	for (; r != NULL; r = next) {
		next = r->next;
		for (i = 0; i < r->ncalls; i++) {
			free(r->calls[i].name);
			free(r->calls[i].path);
		}
		if (r->each != NULL) {
			free(r->each->name);
			free(r->each->path);
			free(r->each->items);
			free(r->each);
		}
		buf_free(&r->fields);
		free(r->pattern);
		free(r->file);
		free(r->program);
		free(r);
	}
}

/* Whether a path (no query) fits a pattern; fills the parameters. */
static int
fits(const char *pattern, const char *path, struct route_params *ps)
{
	const char *p = pattern, *q = path, *pe, *qe;

	ps->n = 0;
	while (*p != '\0' && *q != '\0') {
		pe = p + 1 + strcspn(p + 1, "/");
		qe = q + 1 + strcspn(q + 1, "/");
		if (p[1] == '{' && qe > q + 1) {
			ps->names[ps->n] = xstrndup(p + 2, (size_t)(pe - p - 3));
			ps->values[ps->n++] = xstrndup(q + 1,
			    (size_t)(qe - q - 1));
		} else if (pe - p != qe - q || strncmp(p, q, (size_t)(pe - p))) {
			return 0;
		}
		p = pe;
		q = qe;
	}
	return *p == '\0' && *q == '\0';
}

/* The route for a request path (with its query), if one fits. */
struct route *
routes_match(struct route *r, const char *target, struct route_params *ps)
{
	char *path = xstrndup(target, strcspn(target, "?"));

	memset(ps, 0, sizeof *ps);
	for (; r != NULL; r = r->next) {
		if (fits(r->pattern, path, ps))
			break;
		route_params_free(ps);
	}
	free(path);
	return r;
}

/* The names of the route's parameters, in the order of its pattern. */
int
route_param_names(const struct route *r, struct route_params *ps)
{
	return pattern_params(r->pattern, ps);
}

void
route_params_free(struct route_params *ps)
{
	int i;

	for (i = 0; i < ps->n; i++) {
		free(ps->names[i]);
		free(ps->values[i]);
	}
	memset(ps, 0, sizeof *ps);
}

/*
 * A parameter's value, a segment of the request's normalised target,
 * as one segment of a call's path: decoded, then encoded again as one
 * (target_add_segment), so that its "&" or "=" never become a query's
 * syntax where the call's path puts it in one. -1 if it cannot be.
 */
static int
add_param(struct buf *out, const char *value)
{
	struct buf text = BUF_INIT;
	int rc = target_decode_segment(&text, value, strlen(value)) < 0 ||
	    target_add_segment(out, buf_cstr(&text), text.len) != NULL ?
	    -1 : 0;

	buf_free(&text);
	return rc;
}

/*
 * A path with each {param} replaced by the request's and {.} by item,
 * each encoded as one segment (target_add_segment); NULL if one cannot
 * be.
 */
static char *
fill_path(const char *path, const struct route_params *ps, const char *item,
    size_t len)
{
	struct buf out = BUF_INIT;
	const char *s = path, *end;
	int i;

	while (*s != '\0') {
		if (*s != '{' || (end = strchr(s, '}')) == NULL) {
			buf_addc(&out, *s++);
			continue;
		}
		if (end == s + 2 && s[1] == '.' && item != NULL &&
		    target_add_segment(&out, item, len) != NULL) {
			buf_free(&out);
			return NULL;
		}
		for (i = 0; i < ps->n; i++)
			if (strlen(ps->names[i]) == (size_t)(end - s - 1) &&
			    !strncmp(ps->names[i], s + 1, (size_t)(end - s - 1))
			    && add_param(&out, ps->values[i]) < 0) {
				buf_free(&out);
				return NULL;
			}
		s = end + 1;
	}
	return buf_take(&out);
}

char *
route_call_path(const struct route_call *c, const struct route_params *ps)
{
	return fill_path(c->path, ps, NULL, 0);
}

/*
 * The path of each's call for one item, of len bytes; NULL if it cannot
 * be a segment.
 */
char *
route_each_path(const struct route_each *e, const struct route_params *ps,
    const char *item, size_t len)
{
	return fill_path(e->path, ps, item, len);
}
