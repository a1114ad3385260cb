/*
 * POST /_relay/batch: a JSON body of requests ({"requests":[item, …]},
 * the shape Microsoft Graph and Kinto take), each made as an item
 * (item.h), at most BATCH_AT_ONCE at a time, and one answer body with
 * each item's line as soon as it is ready, in no set order: NDJSON, or
 * the parts of a multipart/mixed body.
 */
#ifndef RELAY_BATCH_H
#define RELAY_BATCH_H

#include <stddef.h>

#include "net/server.h"

#define BATCH_MAX_ITEMS	100	/* more: 413 */
#define BATCH_AT_ONCE	32	/* items being answered at a time */
#define BATCH_BOUNDARY	"relay-batch"	/* no CRLF is in a line */

/* The batch's own answer: its body's bytes, its end, its backlog. */
struct batch_out {
	void	(*write)(void *, const void *, size_t);
	void	(*end)(void *);
	size_t	(*queued)(void *);
};

struct batch;

struct batch	*batch_parse(const char *, size_t, int *, char *, size_t);
size_t		 batch_size(const struct batch *);
void		 batch_start(struct batch *, struct server *, const char *,
		    const char *, int, const struct batch_out *, void *);
void		 batch_writable(struct batch *);
void		 batch_free(struct batch *);

#endif
