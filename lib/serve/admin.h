/*
 * relay-serve's own endpoints, under /_relay/: metrics in the
 * Prometheus text format and stats as JSON, summed over every process
 * on the cache file, and the state of a queued request. They answer
 * loopback clients, or ones that show the admin token; to every other
 * client they do not exist (404).
 */
#ifndef RELAY_ADMIN_H
#define RELAY_ADMIN_H

#include <string.h>

#include "base/buf.h"
#include "store/store.h"

struct admin;

/* Whether a normalised target is one of ours: /_relay or under it. */
static inline int
admin_target(const char *target)
{
	return strncmp(target, "/_relay", 7) == 0 &&
	    (target[7] == '\0' || target[7] == '/' || target[7] == '?');
}

int		 admin_capability(const char *);
char		*admin_read_token(const char *, const char **);
struct admin	*admin_new(const char *, const char *);
void		 admin_free(struct admin *);
struct shared;
void		 admin_share(struct admin *, const struct shared *);
int		 admin_allowed(const struct admin *, const char *,
		    const char *);
int		 admin_answer(struct admin *, const char *, struct buf *,
		    const char **);
int		 admin_host_rows(struct admin *, struct buf *);
void		 admin_hosts_stats(struct buf *, const char *const *,
		    const size_t *, size_t);

#endif
