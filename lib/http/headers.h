/*
 * Header blocks: "Name: value\r\n" lines kept as one string, the way
 * they are stored in the cache and written on the wire.
 */
#ifndef RELAY_HEADERS_H
#define RELAY_HEADERS_H

#include <stddef.h>

#include "base/buf.h"

struct header {
	const char	*name;
	size_t		 name_len;
	const char	*value;
	size_t		 value_len;
};

int	 headers_next(const char **, struct header *);
int	 headers_get(const char *, const char *, struct header *);
char	*headers_get_dup(const char *, const char *);
int	 headers_add(struct buf *, const char *, size_t, const char *, size_t);
int	 headers_add_line(struct buf *, const char *, const char **);
int	 headers_is_hop_by_hop(const char *, size_t);
int	 header_is(const struct header *, const char *);
void	 headers_add_end_to_end(struct buf *, const char *);
void	 headers_merge_304(struct buf *, const char *, const char *);
int	 headers_get_all(const char *, const char *, size_t, struct buf *);
int	 headers_combine(const char *, struct buf *);

#endif
