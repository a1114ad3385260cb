/*
 * The upstream: HTTP transfers with libcurl's multi interface, many at
 * once on shared connections, each streaming its response head and
 * body to callbacks through curl's fixed-size buffers.
 */
#ifndef RELAY_UPSTREAM_H
#define RELAY_UPSTREAM_H

#include <poll.h>
#include <stddef.h>

#define UPSTREAM_MAX_HEAD 65536	/* bytes of response header fields */

struct upstream_options {
	long		connect_timeout_ms;
	long		timeout_ms;		/* 0: none */
	long		low_speed_bytes;	/* abort below this rate… */
	long		low_speed_secs;		/* …for this long; 0: never */
	long		max_connections;	/* per host */
	const char	*ca_file;		/* NULL: the system's CAs */
};

/*
 * One transfer. on_interim, if not NULL, sees each interim (1xx)
 * response that comes before the final one, its status and fields
 * (RFC 9110 section 15.2); a 101 nobody asked for is a broken
 * response, never an interim or a final one. on_head sees the final
 * status and header fields once they are complete (those of the last
 * response when redirects are followed) and returns 0 to receive the
 * body, -1 to abort.
 * on_body returns 0, -1 to abort, or UPSTREAM_PAUSE to be called again
 * with the same bytes after upstream_resume. on_done is called exactly
 * once, with error NULL on success or curl's message, and the transfer
 * is forgotten afterwards; upstream_cancel ends it without on_done.
 */
#define UPSTREAM_PAUSE	1

struct upstream_request {
	const char	*url;
	const char	*method;	/* NULL: GET */
	const char	*headers;	/* "Name: value\r\n" lines, or NULL */
	const char	*body;		/* request body, or NULL; borrowed */
	size_t		 body_len;
	long		 max_redirects;	/* 3xx with Location followed; 0: none */
	void		*ctx;
	void		(*on_interim)(void *, int, const char *);
	int		(*on_head)(void *, int, const char *);
	int		(*on_body)(void *, const void *, size_t);
	void		(*on_done)(void *, const char *);
};

struct upstream;
struct transfer;

struct upstream	*upstream_new(const struct upstream_options *);
void		 upstream_free(struct upstream *);
struct transfer	*upstream_add(struct upstream *,
		    const struct upstream_request *);
void		 upstream_resume(struct upstream *, struct transfer *);
long		 upstream_redirects(struct transfer *);
const char	*upstream_url(struct transfer *);
int		 upstream_failure_lasts(const struct transfer *);
void		 upstream_cancel(struct upstream *, struct transfer *);
int		 upstream_run(struct upstream *, int, int);
int		 upstream_poll(struct upstream *, struct pollfd *, unsigned,
		    int);

#endif
