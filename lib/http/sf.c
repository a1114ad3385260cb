/*
 * Structured Field Values (RFC 8941): dictionaries, read strictly, as
 * targeted cache-control fields (RFC 9213) are. Pure and bounded.
 */
#include <string.h>

#include "http/sf.h"

struct cursor {
	const char	*p, *end;
};

static int
at(const struct cursor *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static int
is_lcalpha(char ch)
{
	return ch >= 'a' && ch <= 'z';
}

static int
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static int
is_alpha(char ch)
{
	return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

/* tchar (RFC 9110 section 5.6.2), plus ":" and "/" for sf-token. */
static int
is_token_char(char ch)
{
	return is_alpha(ch) || is_digit(ch) ||
	    (ch != '\0' && strchr("!#$%&'*+-.^_`|~:/", ch) != NULL);
}

static void
skip_sp(struct cursor *c)
{
	while (at(c, ' '))
		c->p++;
}

static void
skip_ows(struct cursor *c)
{
	while (at(c, ' ') || at(c, '\t'))
		c->p++;
}

/* key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) */
static int
parse_key(struct cursor *c, const char **key, size_t *len)
{
	const char *start = c->p;

	if (c->p == c->end || !(is_lcalpha(*c->p) || *c->p == '*'))
		return -1;
	while (c->p < c->end && (is_lcalpha(*c->p) || is_digit(*c->p) ||
	    strchr("_-.*", *c->p) != NULL) && *c->p != '\0')
		c->p++;
	*key = start;
	*len = (size_t)(c->p - start);
	return 0;
}

/* sf-integer and sf-decimal (section 4.2.4): at most 15 digits. */
static int
parse_number(struct cursor *c, struct sf_item *item)
{
	int negative = at(c, '-'), digits = 0, frac = -1;
	long long v = 0;

	if (negative)
		c->p++;
	if (c->p == c->end || !is_digit(*c->p))
		return -1;
	for (; c->p < c->end; c->p++) {
		if (is_digit(*c->p)) {
			if (frac >= 0)
				frac++;
			else
				v = v * 10 + (*c->p - '0');
			if (++digits > 15 || frac > 3)
				return -1;
		} else if (*c->p == '.' && frac < 0) {
			if (digits > 12)
				return -1;
			frac = 0;
		} else {
			break;
		}
	}
	if (frac == 0)
		return -1;	/* "1." */
	item->type = frac > 0 ? SF_DECIMAL : SF_INTEGER;
	item->integer = negative ? -v : v;
	return 0;
}

/* sf-string (section 4.2.5): printable ASCII, \" and \\ escaped. */
static int
parse_string(struct cursor *c, struct sf_item *item)
{
	c->p++;
	for (; c->p < c->end; c->p++) {
		if (*c->p == '"') {
			c->p++;
			item->type = SF_STRING;
			return 0;
		}
		if (*c->p == '\\') {
			if (++c->p == c->end || (*c->p != '"' && *c->p != '\\'))
				return -1;
		} else if (*c->p < 0x20 || *c->p > 0x7e) {
			return -1;
		}
	}
	return -1;
}

static int
parse_bare_item(struct cursor *c, struct sf_item *item)
{
	const char *start = c->p;
	int rc = -1;

	if (c->p == c->end)
		return -1;
	if (*c->p == '-' || is_digit(*c->p)) {
		rc = parse_number(c, item);
	} else if (*c->p == '"') {
		rc = parse_string(c, item);
	} else if (is_alpha(*c->p) || *c->p == '*') {
		while (c->p < c->end && is_token_char(*c->p))
			c->p++;
		item->type = SF_TOKEN;
		rc = 0;
	} else if (*c->p == ':') {	/* sf-binary, section 4.2.7 */
		for (c->p++; c->p < c->end && (is_alpha(*c->p) ||
		    is_digit(*c->p) || *c->p == '+' || *c->p == '/' ||
		    *c->p == '='); c->p++)
			;
		item->type = SF_BYTES;
		rc = at(c, ':') ? (c->p++, 0) : -1;
	} else if (*c->p == '?') {	/* sf-boolean, section 4.2.8 */
		c->p++;
		if (at(c, '0') || at(c, '1')) {
			item->type = SF_BOOLEAN;
			item->integer = *c->p++ == '1';
			rc = 0;
		}
	}
	item->text = start;
	item->text_len = (size_t)(c->p - start);
	return rc;
}

/* parameters = *( ";" *SP key [ "=" bare-item ] ), checked, not kept */
static int
skip_parameters(struct cursor *c)
{
	struct sf_item ignored;
	const char *key;
	size_t len;

	while (at(c, ';')) {
		c->p++;
		skip_sp(c);
		if (parse_key(c, &key, &len) < 0)
			return -1;
		if (at(c, '=')) {
			c->p++;
			if (parse_bare_item(c, &ignored) < 0)
				return -1;
		}
	}
	return 0;
}

/* inner-list = "(" *SP [ sf-item *( 1*SP sf-item ) *SP ] ")" parameters */
static int
parse_inner_list(struct cursor *c, struct sf_item *item)
{
	const char *start = c->p++;
	struct sf_item member;

	for (;;) {
		skip_sp(c);
		if (at(c, ')'))
			break;
		if (parse_bare_item(c, &member) < 0 || skip_parameters(c) < 0)
			return -1;
		if (!at(c, ' ') && !at(c, ')'))
			return -1;
	}
	c->p++;
	item->type = SF_INNER_LIST;
	item->text = start;
	item->text_len = (size_t)(c->p - start);
	return 0;
}

/* One member: key, then "=" and a value, else the boolean true. */
static int
parse_member(struct cursor *c, const char **key, size_t *len,
    struct sf_item *item)
{
	if (parse_key(c, key, len) < 0)
		return -1;
	if (!at(c, '=')) {
		item->type = SF_BOOLEAN;
		item->integer = 1;
		item->text = *key + *len, item->text_len = 0;
	} else if (c->p++, at(c, '(')) {
		if (parse_inner_list(c, item) < 0)
			return -1;
	} else if (parse_bare_item(c, item) < 0) {
		return -1;
	}
	return skip_parameters(c);
}

/*
 * Looks for a key in a dictionary (section 4.2.2), the last member of
 * that name winning. Returns -1 if the value is not a valid
 * dictionary (the whole field is then to be ignored), 0 if the key is
 * absent, 1 with its value in out.
 */
int
sf_dictionary_get(const char *s, size_t n, const char *name,
    struct sf_item *out)
{
	struct cursor c = { s, s + n };
	struct sf_item item;
	const char *key;
	size_t len, want = strlen(name);
	int found = 0;

	skip_sp(&c);
	while (c.p < c.end) {
		if (parse_member(&c, &key, &len, &item) < 0)
			return -1;
		if (len == want && memcmp(key, name, len) == 0) {
			*out = item;
			found = 1;
		}
		skip_ows(&c);
		if (c.p == c.end)
			break;
		if (*c.p++ != ',')
			return -1;
		skip_ows(&c);
		if (c.p == c.end)
			return -1;	/* a trailing comma */
	}
	return found;
}
