/*
 * A body held until its turn comes: in memory up to a limit, the rest
 * in an unlinked temporary file, so many small bodies cost no files
 * and large ones no memory.
 */
#ifndef RELAY_SPOOL_H
#define RELAY_SPOOL_H

#include <stddef.h>

#include "base/io.h"

struct spool;

struct spool	*spool_new(size_t);
int		 spool_write(struct spool *, const void *, size_t);
struct source	 spool_source(struct spool *);
void		 spool_free(struct spool *);

#endif
