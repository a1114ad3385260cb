/*
 * Request targets made safe to append to the upstream base: origin-form
 * paths that cannot leave it (RFC 9112 section 3.2.1, RFC 3986).
 */
#ifndef RELAY_TARGET_H
#define RELAY_TARGET_H

char	*target_normalize(const char *, const char **);

#endif
