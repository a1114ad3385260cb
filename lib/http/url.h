/*
 * Cache keys: URLs normalised (RFC 3986 section 6) so that one resource
 * has one key, using libcurl's URL parser.
 */
#ifndef RELAY_URL_H
#define RELAY_URL_H

#define URL_MAX 8192	/* the longest URL any program takes, in bytes */

extern const char url_too_long[];	/* a reason: it is over URL_MAX */

char	*url_normalize(const char *, const char **);
char	*url_join(const char *, const char *);
char	*url_resolve(const char *, const char *);
char	*url_authorization(const char *);
char	*url_redacted(const char *);
int	 url_same_origin(const char *, const char *);
char	*url_encode_invalid(const char *);

#endif
