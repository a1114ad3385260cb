/*
 * Fresh stored responses kept in one process's memory, so that a hit
 * on one need not read the cache file: small bodies only, a bounded
 * total, and everything forgotten whenever the file changes.
 */
#ifndef RELAY_HOT_H
#define RELAY_HOT_H

#include <stddef.h>

#include "store/store.h"

#define HOT_MAX_BODY	65536		/* larger bodies stay in the file */
#define HOT_MAX_BYTES	(16 << 20)	/* in all: headers and bodies */

struct hot_entry {
	struct hot_entry	*next;		/* in its bucket */
	int			 refs;		/* the table's, and callers' */
	size_t			 bytes;		/* what it counts for */
	struct store_entry	 e;		/* headers: http_end_to_end's */
	char			 body[];	/* e.size bytes */
};

struct hot;

struct hot		*hot_new(void);
void			 hot_free(struct hot *);
void			 hot_clear(struct hot *);
struct hot_entry	*hot_get(struct hot *, const char *);
void			 hot_put(struct hot *, const struct store_entry *,
			    const void *);
int			 hot_fits(const struct store_entry *);
void			 hot_release(struct hot_entry *);

#endif
