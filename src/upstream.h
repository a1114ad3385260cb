/*
 * The upstream: HTTP transfers with libcurl's multi interface, many at
 * once on shared connections, each streaming its response head and
 * body to callbacks through curl's fixed-size buffers.
 */
#ifndef RELAY_UPSTREAM_H
#define RELAY_UPSTREAM_H

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
 * One transfer. on_head sees the final status and header fields once
 * they are complete and returns 0 to receive the body, -1 to abort.
 * on_body returns 0, or -1 to abort. on_done is called exactly once,
 * with error NULL on success or curl's message, and the transfer is
 * forgotten afterwards.
 */
struct upstream_request {
	const char	*url;
	const char	*method;	/* NULL: GET */
	const char	*headers;	/* "Name: value\r\n" lines, or NULL */
	void		*ctx;
	int		(*on_head)(void *, int, const char *);
	int		(*on_body)(void *, const void *, size_t);
	void		(*on_done)(void *, const char *);
};

struct upstream;

struct upstream	*upstream_new(const struct upstream_options *);
void		 upstream_free(struct upstream *);
int		 upstream_add(struct upstream *, const struct upstream_request *);
int		 upstream_run(struct upstream *, int, int);

#endif
