/*
 * Cache keys: URLs normalised (RFC 3986 section 6) so that one resource
 * has one key, using libcurl's URL parser.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/base64.h"
#include "base/buf.h"
#include "base/io.h"
#include "base/utf8.h"
#include "http/url.h"

static int
lowercase_host(CURLU *u)
{
	char *host, *p;
	CURLUcode rc;

	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		return 0;	/* file: URLs may have none */
	for (p = host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	rc = curl_url_set(u, CURLUPART_HOST, host, 0);
	curl_free(host);
	return rc == CURLUE_OK ? 0 : -1;
}

/* The reason a URL over URL_MAX is refused: a server answers 414. */
const char url_too_long[] = "longer than 8192 bytes";

/*
 * text with each byte that is not part of valid UTF-8 percent-encoded
 * (RFC 3986 section 2.1). What a URL names is unchanged, and it reads
 * as text: in a record (JSON is UTF-8), on a terminal.
 */
char *
url_encode_invalid(const char *text)
{
	const unsigned char *s = (const unsigned char *)text, *run;
	struct buf out = BUF_INIT;
	size_t n;

	buf_cstr(&out);
	while (*s != '\0') {
		for (run = s; *s != '\0' && *s < 0x80; s++)
			;	/* ASCII, the common case, goes in one piece */
		buf_add(&out, run, (size_t)(s - run));
		if (*s == '\0')
			break;
		if ((n = utf8_sequence(s, 4)) == 0)
			buf_printf(&out, "%%%02X", *s);
		else
			buf_add(&out, s, n);
		s += n > 0 ? n : 1;
	}
	return buf_take(&out);
}

/*
 * The normalised form of an absolute URL: scheme and host in lower
 * case, default port dropped, dot segments removed, fragment dropped
 * (it never reaches a server), credentials dropped (see
 * url_authorization), bytes that are not UTF-8 percent-encoded
 * (url_encode_invalid). Returns NULL and a reason if invalid.
 */
char *
url_normalize(const char *in, const char **why)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	char *out = NULL, *copy = NULL;

	if (u == NULL)
		out_of_memory();
	if (strlen(in) > URL_MAX) {
		curl_url_cleanup(u);
		*why = url_too_long;
		return NULL;
	}
	rc = curl_url_set(u, CURLUPART_URL, in, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (rc == CURLUE_OK)		/* credentials are never part of a key */
		rc = curl_url_set(u, CURLUPART_USER, NULL, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
	if (rc == CURLUE_OK && lowercase_host(u) < 0)
		rc = CURLUE_BAD_HOSTNAME;
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &out,
		    CURLU_NO_DEFAULT_PORT);
	curl_url_cleanup(u);
	if (rc != CURLUE_OK) {
		*why = curl_url_strerror(rc);
		return NULL;
	}
	copy = url_encode_invalid(out);
	curl_free(out);
	if (strlen(copy) > URL_MAX) {	/* escaped, it grew */
		free(copy);
		*why = url_too_long;
		return NULL;
	}
	return copy;
}

/*
 * The upstream URL for a path (with its query): the base with the path
 * appended, or, when the base is a template holding "{path}", put there
 * ("file:///srv/api{path}.json" maps paths to files). The query goes
 * after the template's end, so that no query can take the place of
 * what follows the path ("/README?" is README.json?, never README),
 * joined with the template's own query, if it has one.
 */
char *
url_join(const char *base, const char *path)
{
	struct buf out = BUF_INIT;
	const char *slot = strstr(base, "{path}");
	size_t n = slot != NULL ? (size_t)(slot - base) : strlen(base);
	size_t path_len = strcspn(path, "?");

	while (n > 0 && base[n - 1] == '/')
		n--;
	buf_add(&out, base, n);
	if (slot == NULL) {
		buf_adds(&out, path);
		return buf_take(&out);
	}
	buf_add(&out, path, path_len);
	buf_adds(&out, slot + 6);
	if (path[path_len] == '?' && path[path_len + 1] != '\0') {
		buf_addc(&out, strchr(slot + 6, '?') != NULL ? '&' : '?');
		buf_adds(&out, path + path_len + 1);
	}
	return buf_take(&out);
}

/* Whether two parsed URLs share scheme, host and port. */
static int
same_origin(CURLU *a, CURLU *b)
{
	static const CURLUPart parts[] = {
		CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT,
	};
	char *x, *y;
	size_t i;
	int same = 1;

	for (i = 0; same && i < sizeof parts / sizeof parts[0]; i++) {
		x = y = NULL;
		curl_url_get(a, parts[i], &x, CURLU_DEFAULT_PORT);
		curl_url_get(b, parts[i], &y, CURLU_DEFAULT_PORT);
		same = x != NULL && y != NULL && strcasecmp(x, y) == 0;
		curl_free(x);
		curl_free(y);
	}
	return same;
}

/* Whether two absolute URLs share scheme, host and port; 0 if either is bad. */
int
url_same_origin(const char *a, const char *b)
{
	CURLU *x = curl_url(), *y = curl_url();
	int same;

	if (x == NULL || y == NULL)
		out_of_memory();
	same = curl_url_set(x, CURLUPART_URL, a, CURLU_NON_SUPPORT_SCHEME) ==
	    CURLUE_OK && curl_url_set(y, CURLUPART_URL, b,
	    CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK && same_origin(x, y);
	curl_url_cleanup(x);
	curl_url_cleanup(y);
	return same;
}

/*
 * A reference (a Location or Content-Location value) resolved against
 * an absolute URL and normalised as a key; NULL if it is invalid or
 * names another origin (RFC 9111 section 4.4: a response cannot
 * invalidate what another host serves).
 */
char *
url_resolve(const char *base, const char *ref)
{
	CURLU *b = curl_url(), *u;
	char *joined = NULL, *out = NULL;
	const char *why;

	if (b == NULL)
		out_of_memory();
	if (curl_url_set(b, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) !=
	    CURLUE_OK || (u = curl_url_dup(b)) == NULL) {
		curl_url_cleanup(b);
		return NULL;
	}
	if (curl_url_set(u, CURLUPART_URL, ref, CURLU_NON_SUPPORT_SCHEME) ==
	    CURLUE_OK && same_origin(b, u) &&
	    curl_url_get(u, CURLUPART_URL, &joined, 0) == CURLUE_OK)
		out = url_normalize(joined, &why);
	curl_free(joined);
	curl_url_cleanup(u);
	curl_url_cleanup(b);
	return out;
}

static int
buf_write(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
	return 0;
}

/*
 * The credentials of a URL (http://user:secret@host/) as the request
 * field that sends them, "Authorization: Basic ...\r\n" (RFC 7617),
 * so that they go to the upstream but never into a key, a record or a
 * message; NULL if it has none.
 */
char *
url_authorization(const char *url)
{
	CURLU *u = curl_url();
	char *user = NULL, *password = NULL;
	struct buf pair = BUF_INIT, field = BUF_INIT;
	struct base64 b64 = BASE64_INIT;
	struct writer w;

	if (u == NULL)
		out_of_memory();
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ==
	    CURLUE_OK &&
	    curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) ==
	    CURLUE_OK) {
		curl_url_get(u, CURLUPART_PASSWORD, &password, CURLU_URLDECODE);
		buf_printf(&pair, "%s:%s", user, password != NULL ? password :
		    "");
		buf_adds(&field, "Authorization: Basic ");
		writer_init(&w, (struct sink){ buf_write, &field });
		base64_encode(&b64, &w, pair.data, pair.len);
		base64_encode_end(&b64, &w);
		writer_flush(&w);
		buf_adds(&field, "\r\n");
		explicit_bzero(pair.data, pair.len);
	}
	curl_free(user);
	curl_free(password);
	curl_url_cleanup(u);
	buf_free(&pair);
	return field.len > 0 ? buf_take(&field) : NULL;
}

/*
 * Text that may be a URL, for a message: whatever stands before an
 * "@" in its authority replaced by "***", so that a URL that does not
 * even parse never shows its credentials, and cut after 200 bytes.
 */
char *
url_redacted(const char *text)
{
	const char *scheme = strstr(text, "://"), *rest = text, *at, *end;
	struct buf out = BUF_INIT;
	size_t n;

	if (scheme != NULL) {
		end = scheme + 3 + strcspn(scheme + 3, "/?#");
		if ((at = memrchr(scheme + 3, '@', (size_t)(end - scheme - 3))) !=
		    NULL) {
			buf_add(&out, text, (size_t)(scheme + 3 - text));
			buf_adds(&out, "***");
			rest = at;
		}
	}
	n = strlen(rest);
	buf_add(&out, rest, n > 200 ? 200 : n);
	if (n > 200)
		buf_adds(&out, "...");
	return buf_take(&out);
}
