/*
 * Request targets made safe to append to the upstream base: origin-form
 * paths that cannot leave it, and segments that stay one (RFC 3986).
 */
#include <string.h>

#include "base/buf.h"
#include "base/num.h"
#include "http/target.h"

/* ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 section 2.3) */
static int
unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/*
 * Copies one path segment or the query from in[0..n) to out, checking
 * each percent-encoding. Encoded unreserved characters are decoded
 * (RFC 3986 section 6.2.2.2), so that "%2e%2e" is seen as the ".." it
 * is and "/%5Frelay" as "/_relay"; encoded slashes, backslashes and
 * control characters are refused, as are raw backslashes.
 */
static const char *
copy_checked(const char *in, size_t n, struct buf *out, int in_path)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;
	int hi, lo, c;

	for (i = 0; i < n; i++) {
		if (in[i] == '\\')
			return "backslash in target";
		if (in[i] != '%') {
			buf_addc(out, in[i]);
			continue;
		}
		if (n - i < 3)
			return "bad percent-encoding";
		if ((hi = num_hex_digit(in[i + 1])) < 0 || (lo = num_hex_digit(in[i + 2])) < 0)
			return "bad percent-encoding";
		c = hi * 16 + lo;
		i += 2;
		if (c < 0x20 || c == 0x7f)
			return "encoded control character in target";
		if (in_path && (c == '/' || c == '\\'))
			return "encoded slash in path";
		if (unreserved(c)) {
			buf_addc(out, (char)c);
			continue;
		}
		buf_addc(out, '%');
		buf_addc(out, digits[hi]);
		buf_addc(out, digits[lo]);
	}
	return NULL;
}

/* Drops the last segment of a normalised path, "/a/b" to "/a". */
static int
pop_segment(struct buf *path)
{
	if (path->len == 0)
		return -1;	/* above the root */
	while (path->len > 0 && path->data[--path->len] != '/')
		;
	return 0;
}

/* Appends the path's segments, resolving "." and ".." (RFC 3986 5.2.4). */
static const char *
add_path(const char *p, size_t n, struct buf *out)
{
	struct buf seg = BUF_INIT;
	const char *end = p + n, *slash, *why = NULL;

	while (p < end && why == NULL) {
		p++;	/* the slash */
		slash = memchr(p, '/', (size_t)(end - p));
		if (slash == NULL)
			slash = end;
		buf_reset(&seg);
		why = copy_checked(p, (size_t)(slash - p), &seg, 1);
		if (why == NULL && seg.len == 2 && memcmp(seg.data, "..", 2) == 0) {
			if (pop_segment(out) < 0)
				why = "path above the root";
			else if (slash == end)
				buf_addc(out, '/');
		} else if (why == NULL && seg.len == 1 && seg.data[0] == '.') {
			if (slash == end)
				buf_addc(out, '/');
		} else if (why == NULL) {
			buf_addc(out, '/');
			buf_add(out, seg.data, seg.len);
		}
		p = slash;
	}
	buf_free(&seg);
	return why;
}

/*
 * Appends a normalised target's segment to out with its percent-
 * encodings decoded: the text it stands for, to be encoded again where
 * it goes (target_add_segment). Returns -1 on a bad encoding.
 */
int
target_decode_segment(struct buf *out, const char *p, size_t n)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (p[i] != '%') {
			buf_addc(out, p[i]);
			continue;
		}
		if (n - i < 3 || (hi = num_hex_digit(p[i + 1])) < 0 ||
		    (lo = num_hex_digit(p[i + 2])) < 0)
			return -1;
		buf_addc(out, (char)(hi * 16 + lo));
		i += 2;
	}
	return 0;
}

/*
 * Appends text, of len bytes, as one path segment, percent-encoded but
 * for RFC 3986's unreserved characters, for a path built from text from
 * elsewhere (an identifier, a fan-out item: a JSON string, which may
 * hold a NUL). Returns why, appending nothing, if no encoding keeps the
 * text one segment wherever the path goes: "", "." and ".." are steps,
 * not names, and "%2E" decodes back to them (section 6.2.2.2); a slash
 * or backslash, encoded, is refused by target_normalize or decoded into
 * a separator by a file: upstream; a control character (NUL among
 * them, which would end the path where C reads it) is refused by
 * target_normalize.
 */
const char *
target_add_segment(struct buf *out, const char *text, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)text, *end = s + len;

	if (len == 0)
		return "an empty path segment";
	if ((len == 1 && text[0] == '.') || (len == 2 && text[0] == '.' &&
	    text[1] == '.'))
		return "a dot segment";
	if (memchr(text, '/', len) != NULL)
		return "a slash in a path segment";
	if (memchr(text, '\\', len) != NULL)
		return "a backslash in a path segment";
	for (; s < end; s++)
		if (*s < 0x20 || *s == 0x7F)
			return "a control character in a path segment";
	for (s = (const unsigned char *)text; s < end; s++) {
		if (unreserved(*s)) {
			buf_addc(out, (char)*s);
			continue;
		}
		buf_addc(out, '%');
		buf_addc(out, digits[*s >> 4]);
		buf_addc(out, digits[*s & 15]);
	}
	return NULL;
}

/*
 * The target as it may be appended to the upstream base URL: an
 * origin-form path, not starting with "//", its dot segments resolved
 * without climbing above the root, and an optional query. Returns NULL
 * with the reason in *why when the target is refused.
 */
char *
target_normalize(const char *target, const char **why)
{
	struct buf out = BUF_INIT;
	size_t path_len = strcspn(target, "?");

	*why = NULL;
	if (target[0] != '/')
		*why = "target is not an origin-form path";
	else if (target[1] == '/')
		*why = "target starts with //";
	else if (strchr(target, '#') != NULL)
		*why = "fragment in target";
	if (*why == NULL)
		*why = add_path(target, path_len, &out);
	if (*why == NULL && out.len == 0)
		buf_addc(&out, '/');
	/* "/.//host" resolves to "//host", a network-path reference. */
	if (*why == NULL && out.len > 1 && out.data[1] == '/')
		*why = "target resolves to one starting with //";
	if (*why == NULL && target[path_len] == '?') {
		buf_addc(&out, '?');
		*why = copy_checked(target + path_len + 1,
		    strlen(target + path_len + 1), &out, 0);
	}
	if (*why != NULL) {
		buf_free(&out);
		return NULL;
	}
	return buf_take(&out);
}
