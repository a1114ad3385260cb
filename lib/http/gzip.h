/*
 * gzip (RFC 1952) as a stream, for answers relay-serve makes itself:
 * each piece compressed and flushed as it comes (Z_SYNC_FLUSH), so a
 * client on a slow network has every line as soon as it is sent, in
 * bounded memory. zlib does the work.
 */
#ifndef RELAY_GZIP_H
#define RELAY_GZIP_H

#include <stddef.h>

#include "base/buf.h"

struct gzip;

struct gzip	*gzip_new(void);
void		 gzip_add(struct gzip *, const void *, size_t, struct buf *);
void		 gzip_end(struct gzip *, struct buf *);
void		 gzip_free(struct gzip *);
int		 gzip_accepted(const char *);

#endif
