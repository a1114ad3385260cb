/*
 * Cache keys: URLs normalised (RFC 3986 section 6) so that one resource
 * has one key, using libcurl's URL parser.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "buf.h"
#include "url.h"

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

/*
 * The normalised form of an absolute URL: scheme and host in lower
 * case, default port dropped, dot segments removed, fragment dropped
 * (it never reaches a server). Returns NULL and a reason if invalid.
 */
char *
url_normalize(const char *in, const char **why)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	char *out = NULL, *copy = NULL;

	if (u == NULL)
		out_of_memory();
	rc = curl_url_set(u, CURLUPART_URL, in, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
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
	copy = xstrdup(out);
	curl_free(out);
	return copy;
}
