/*
 * Request targets made safe to append to the upstream base: origin-form
 * paths that cannot leave it, and segments that stay one (RFC 3986).
 */
#ifndef RELAY_TARGET_H
#define RELAY_TARGET_H

#include <stddef.h>

struct buf;

char		*target_normalize(const char *, const char **);
const char	*target_add_segment(struct buf *, const char *, size_t);
int		 target_decode_segment(struct buf *, const char *, size_t);

#endif
