/*
 * The shared tier (--shared): what several hosts share through one
 * Redis, each behind its own cache file. A URL's response, looked for
 * after a local miss and kept there by the host that fetched it; one
 * upstream request per URL across hosts (a lease, SET NX PX, given up
 * by its holder only, its end told on a channel every host listens
 * to); the rate limits' buckets; and purges. Each is one script or
 * command, so one round trip. Keys are the prefix, then a hash tag of
 * the URL's or bucket's SHA-1, so that a Redis Cluster could spread
 * them: a URL's entry and lease share a slot.
 */
#ifndef RELAY_SHARED_H
#define RELAY_SHARED_H

#include <stddef.h>

#include "net/loop.h"
#include "policy/gcra.h"
#include "store/cache.h"
#include "tier/redis.h"
#include "tier/shared_entry.h"

#define SHARED_KEEP_S	3600	/* kept past its freshness, to revalidate */
#define SHARED_TOKEN_LEN 33	/* a lease's token, with its NUL */

struct shared_options {
	const char	*url;		/* --shared, RELAY_SHARED; NULL: none */
	const char	*password_file;	/* --shared-password-file */
	const char	*prefix;	/* --shared-prefix */
	long long	 timeout_ms;	/* --shared-timeout */
	long long	 max_object;	/* --shared-max-object-size */
};

#define SHARED_DEFAULTS { .prefix = "relay:", .timeout_ms = 250, \
	.max_object = 1 << 20 }

/* Their getopt_long entries (but --shared-max-object-size: a server's). */
enum {
	SHARED_OPT_URL = 0x5300, SHARED_OPT_PASSWORD_FILE, SHARED_OPT_PREFIX,
	SHARED_OPT_TIMEOUT, SHARED_OPT_MAX_OBJECT,
};
#define SHARED_LONG \
	{ "shared", required_argument, NULL, SHARED_OPT_URL }, \
	{ "shared-password-file", required_argument, NULL, \
	    SHARED_OPT_PASSWORD_FILE }, \
	{ "shared-prefix", required_argument, NULL, SHARED_OPT_PREFIX }, \
	{ "shared-timeout", required_argument, NULL, SHARED_OPT_TIMEOUT }

int		 shared_option(struct shared_options *, int, const char *);

/* What other hosts say on the channel. */
struct shared_events {
	void	(*done)(void *, const char *, int);	/* URL, stored */
	void	(*purge)(void *, const char *, int);	/* URL or glob */
};

enum shared_found_kind {
	SHARED_FAILED,		/* Redis is down, slow or said no */
	SHARED_ENTRY,		/* there: found.entry */
	SHARED_LEASED,		/* not there, and the lease is ours */
	SHARED_BUSY,		/* another host holds it: busy_ms more */
};

struct shared_found {
	enum shared_found_kind	 kind;
	struct shared_entry	 entry;
	long long		 busy_ms;
	const char		*why;		/* FAILED: NULL if down */
	char			 invalid[160];	/* why, for an entry refused */
};

struct shared;
struct shared_ask;

typedef void shared_found_fn(void *, struct shared_found *);
typedef void shared_decided_fn(void *, const struct gcra_decision *);
/* Every host's rows; n is -1 if they could not be gathered. */
typedef void shared_gathered_fn(void *, const char *const *, const size_t *,
		    long long);
/* This host is asked for its rows for the gathering named id. */
typedef void shared_report_fn(void *, const char *);

int		 shared_target(const struct shared_options *,
		    struct redis_target *, char *, size_t);
struct shared	*shared_open(struct loop *, const struct redis_target *,
		    const struct shared_options *, const struct shared_events *,
		    void *);
void		 shared_close(struct shared *);
int		 shared_up(const struct shared *);
int		 shared_busy(const struct shared *);
long long	 shared_failures(const struct shared *);
long long	 shared_max_object(const struct shared *);
void		 shared_cancel(struct shared_ask *);

struct shared_ask *shared_find(struct shared *, const char *, int, long long,
		    char[SHARED_TOKEN_LEN], shared_found_fn *, void *);
void		 shared_put(struct shared *, const char *, const char *,
		    const struct cache_response *, const void *, size_t,
		    long long);
struct shared_ask *shared_take(struct shared *, const char *,
		    const struct gcra_limit *, long long, shared_decided_fn *,
		    void *);
int		 shared_pause(struct shared *, const char *,
		    const struct gcra_limit *, long long);
void		 shared_on_report(struct shared *, shared_report_fn *, void *);
void		 shared_report(struct shared *, const char *, const char *,
		    const struct buf *);
struct shared_ask *shared_gather(struct shared *, shared_gathered_fn *,
		    void *);

long long	 shared_ttl(const struct cache_response *,
		    const struct cache_rules *);

/*
 * The same tier, blocking, for relay-cache's commands on it
 * (shared_sync.c): a failure is the command's (shared_sync_error).
 */
struct shared_sync;

struct shared_sync *shared_sync_open(const struct redis_target *,
		    const struct shared_options *);
void		 shared_sync_close(struct shared_sync *);
long long	 shared_sync_remove(struct shared_sync *, const char *);
long long	 shared_sync_purge(struct shared_sync *, const char *);
int		 shared_sync_ready(struct shared_sync *);
const char	*shared_sync_error(const struct shared_sync *);

void		 shared_key(struct buf *, const char *, const char *,
		    const char *);
char		*shared_channel(const char *);

#endif
