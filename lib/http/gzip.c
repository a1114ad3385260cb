/*
 * gzip streams: zlib's deflate with the gzip wrapper (windowBits 15 +
 * 16), level 6, and whether a client's Accept-Encoding takes it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http/gzip.h"
#include "http/headers.h"

struct gzip {
	z_stream	 z;
};

struct gzip *
gzip_new(void)
{
	struct gzip *g = xcalloc(1, sizeof *g);

	if (deflateInit2(&g->z, 6, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		out_of_memory();
	return g;
}

/* Runs deflate over the input until it has taken all and said all. */
static void
deflate_all(struct gzip *g, const void *p, size_t n, int flush,
    struct buf *out)
{
	unsigned char tmp[16384];
	int rc;

	g->z.next_in = (unsigned char *)(size_t)p;
	g->z.avail_in = (unsigned)n;
	do {
		g->z.next_out = tmp;
		g->z.avail_out = sizeof tmp;
		rc = deflate(&g->z, flush);
		buf_add(out, tmp, sizeof tmp - g->z.avail_out);
	} while (g->z.avail_out == 0 || (flush == Z_FINISH &&
	    rc != Z_STREAM_END));
}

/* Compresses n bytes onto out, flushed so that they can be read now. */
void
gzip_add(struct gzip *g, const void *p, size_t n, struct buf *out)
{
	if (n > 0)
		deflate_all(g, p, n, Z_SYNC_FLUSH, out);
}

/* The end of the stream: its last block and the gzip trailer. */
void
gzip_end(struct gzip *g, struct buf *out)
{
	deflate_all(g, "", 0, Z_FINISH, out);
}

void
gzip_free(struct gzip *g)
{
	if (g == NULL)
		return;
	deflateEnd(&g->z);
	free(g);
}

/*
 * Whether Accept-Encoding takes gzip (RFC 9110 section 12.5.3): named,
 * or "*", with a q-value other than 0.
 */
int
gzip_accepted(const char *fields)
{
	struct header h;
	const char *p, *end, *comma, *q;
	size_t n;

	if (!headers_get(fields, "accept-encoding", &h))
		return 0;
	for (p = h.value, end = h.value + h.value_len; p < end; p = comma + 1) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if ((comma = memchr(p, ',', (size_t)(end - p))) == NULL)
			comma = end;
		n = strcspn(p, ";, \t");
		if (n > (size_t)(comma - p))
			n = (size_t)(comma - p);
		if (!((n == 4 && strncasecmp(p, "gzip", 4) == 0) ||
		    (n == 1 && *p == '*')))
			continue;
		q = memchr(p, ';', (size_t)(comma - p));
		while (q != NULL && q < comma && (*++q == ' ' || *q == '\t'))
			;
		return q == NULL || q >= comma || strncasecmp(q, "q=", 2) != 0 ||
		    strtod(q + 2, NULL) > 0;
	}
	return 0;
}
