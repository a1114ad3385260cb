/*
 * An answer as it goes out on a connection: its head and body in
 * HTTP/1.1 framing (a length, chunks, or the connection's close), the
 * error answers relay-serve makes itself, and its access log line and
 * metrics once it ends. Whoever answers writes through it; when the
 * answer ends, the owner's ended hook frees what holds it.
 */
#ifndef RELAY_REPLY_H
#define RELAY_REPLY_H

#include <stddef.h>

#include "http/http.h"
#include "net/server.h"

/*
 * The feature an answer is given to, as its connection needs it: room
 * to write again after reply_queued passed SERVER_OUT_MAX, and the
 * answer's end (whole, cut short, or its client gone), to free its own.
 */
struct reply_feature {
	void	(*writable)(void *);
	void	(*free)(void *);
};

struct reply {
	struct conn		*c;
	const struct http_request *req;
	int			 head_only;	/* HEAD */
	int			 status;
	int			 chunked;	/* body framed in chunks */
	int			 close_after;	/* body ends with the connection */
	int			 head_sent;
	int			 from_memory;	/* stored fields ready to send */
	const char		*cache_status;	/* for the log */
	const char		*error;		/* for the log */
	int			 shared;	/* the shared tier had it */
	int			 admin;		/* /_relay/: not counted */
	long long		 bytes;		/* body bytes sent */
	long long		 start_ms, upstream_ms;
	char			*limit_fields;	/* RateLimit fields, or NULL */
	void			(*ended)(void *);	/* the owner's */
	void			*owner;
	const struct reply_feature *feature;	/* NULL: the owner's own */
	void			*feature_ctx;
};

void	reply_init(struct reply *, struct conn *, void (*)(void *), void *);
void	reply_free(struct reply *);
void	reply_head(struct reply *, int, const char *, const char *, long long,
	    long long);
void	reply_body(struct reply *, const void *, size_t);
void	reply_end(struct reply *);
void	reply_send(struct reply *, int, const char *, const char *,
	    const void *, size_t);
void	reply_fail(struct reply *, int, const char *, const char *);
void	reply_log(struct reply *);
void	reply_done(struct reply *, int);
void	reply_cut(struct reply *, const char *);
size_t	reply_queued(const struct reply *);
void	reply_give(struct reply *, const struct reply_feature *, void *);
void	reply_release(struct reply *);
int	reply_writable(struct reply *);

#endif
