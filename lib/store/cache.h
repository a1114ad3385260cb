/*
 * The cache: the RFC 9111 rules (policy) applied to the cache file
 * (store), as relay-fetch and relay-serve both use them.
 */
#ifndef RELAY_CACHE_H
#define RELAY_CACHE_H

#include <stddef.h>
#include <time.h>

#include "store/store.h"

/* The operator's knobs. */
struct cache_rules {
	long long	default_ttl;	/* when the response gives none */
	long long	force_ttl;	/* -1: the response's own */
	int		store_set_cookie;	/* as RFC 9111 allows */
	long long	max_object;	/* larger bodies are not stored; 0: any */
};

/* A response as received from the upstream, and its request. */
struct cache_response {
	const char	*url;		/* normalised: the key */
	int		 status;
	const char	*headers;	/* as received */
	const char	*request_headers;	/* for Vary */
	const char	*scope;		/* cache_variant's, or NULL */
	time_t		 request_time;
	time_t		 response_time;
};

char		*cache_variant(const char *, const char *, const char *);
int		cache_lookup(struct store *, const char *, const char *,
		    const char *, struct store_entry *);
long long	cache_age(const struct store_entry *, time_t);
long long	cache_ttl(const struct store_entry *, time_t);
struct writer;
int		cache_write_record(struct writer *, struct store *,
		    const struct store_entry *, time_t, long long, long long);
void		cache_entry(const struct cache_response *,
		    const struct cache_rules *, const char *,
		    struct store_entry *);
const char	*cache_unstorable(const struct cache_rules *, int,
		    const char *, const char *);
int		cache_write(struct store_writer **, const void *, size_t);
void		cache_stored_entry(const struct cache_response *,
		    const struct cache_rules *, struct buf *,
		    struct store_entry *);
void		cache_stored_free(struct store_entry *, struct buf *);
int		cache_commit(struct store_writer *,
		    const struct cache_response *, const struct cache_rules *);
const char	*cache_revalidate(struct store_entry *,
		    const struct cache_response *, const struct cache_rules *);
struct cache_response cache_response_of(const struct store_entry *,
		    const char *);
int		cache_refresh(struct store *, struct store_entry *,
		    const struct cache_response *, const struct cache_rules *);

#endif
