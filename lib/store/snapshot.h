/*
 * A sync as a SQLite file (?format=sqlite): the records of the stream
 * as rows a client opens directly with sqlite3, built in a temporary
 * file a page at a time, then read out and gone. The schema is in
 * relay(7).
 */
#ifndef RELAY_SNAPSHOT_H
#define RELAY_SNAPSHOT_H

#include <sys/types.h>

#include "store/store.h"

#define SNAPSHOT_AT_ONCE	2		/* being made, per process */

struct snapshot;

struct snapshot	*snapshot_new(long long, char *, size_t);
int		 snapshot_begin(struct snapshot *);
int		 snapshot_add(struct snapshot *, struct store *,
		    const struct store_entry *, long long, int, long long);
int		 snapshot_commit(struct snapshot *);
int		 snapshot_end(struct snapshot *, const char *, long long,
		    long long);
off_t		 snapshot_size(const struct snapshot *);
ssize_t		 snapshot_read(struct snapshot *, void *, size_t, off_t);
const char	*snapshot_error(const struct snapshot *);
int		 snapshot_status(const struct snapshot *);
void		 snapshot_free(struct snapshot *);

#endif
