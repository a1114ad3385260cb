/*
 * Fresh stored responses kept in one process's memory. The cache file
 * stays the truth: the caller clears this whenever the file's data
 * version moves (any commit by any process), so an entry here is one
 * the file holds as it is. Entries in use when cleared live on until
 * released. When the total would pass HOT_MAX_BYTES, everything goes:
 * simple, bounded, and refilled by the next hits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/headers.h"
#include "http/http.h"
#include "store/hot.h"

#define BUCKETS 1024

struct hot {
	struct hot_entry	*bucket[BUCKETS];
	size_t			 bytes;
};

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

struct hot *
hot_new(void)
{
	return xcalloc(1, sizeof(struct hot));
}

void
hot_release(struct hot_entry *h)
{
	if (--h->refs > 0)
		return;
	store_entry_free(&h->e);
	free(h);
}

void
hot_clear(struct hot *hot)
{
	struct hot_entry *h, *next;
	size_t i;

	for (i = 0; i < BUCKETS; i++) {
		for (h = hot->bucket[i]; h != NULL; h = next) {
			next = h->next;
			hot_release(h);
		}
		hot->bucket[i] = NULL;
	}
	hot->bytes = 0;
}

void
hot_free(struct hot *hot)
{
	if (hot == NULL)
		return;
	hot_clear(hot);
	free(hot);
}

/* The entry for url, with a reference the caller releases; or NULL. */
struct hot_entry *
hot_get(struct hot *hot, const char *url)
{
	struct hot_entry *h;

	for (h = hot->bucket[hash(url) % BUCKETS]; h != NULL; h = h->next)
		if (strcmp(h->e.url, url) == 0) {
			h->refs++;
			return h;
		}
	return NULL;
}

/*
 * Whether an entry may be kept here: a GET response that does not vary
 * (its one stored form answers every request) with a small body.
 */
int
hot_fits(const struct store_entry *e)
{
	struct header h;

	return strcmp(e->method, "GET") == 0 && e->variant[0] == '\0' &&
	    e->size >= 0 && e->size <= HOT_MAX_BODY &&
	    !headers_get(e->headers, "vary", &h);
}

/* Keeps a copy of e, whose body (e->size bytes) is body. */
void
hot_put(struct hot *hot, const struct store_entry *e, const void *body)
{
	struct hot_entry *h, **p;
	struct buf fields = BUF_INIT;
	size_t bytes = sizeof *h + (size_t)e->size + strlen(e->url) +
	    strlen(e->headers);

	if (!hot_fits(e) || bytes > HOT_MAX_BYTES)
		return;
	if (hot->bytes + bytes > HOT_MAX_BYTES)
		hot_clear(hot);
	p = &hot->bucket[hash(e->url) % BUCKETS];
	for (h = *p; h != NULL; h = h->next)
		if (strcmp(h->e.url, e->url) == 0)
			return;		/* already here */
	h = xmalloc(sizeof *h + (size_t)e->size);
	h->refs = 1;
	h->bytes = bytes;
	store_entry_copy(&h->e, e);
	/* As they are sent from the cache, once rather than every hit. */
	http_end_to_end(&fields, e->headers, 1);
	free(h->e.headers);
	h->e.headers = buf_take(&fields);
	if (e->size > 0)
		memcpy(h->body, body, (size_t)e->size);
	h->next = *p;
	*p = h;
	hot->bytes += bytes;
}
