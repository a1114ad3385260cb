/*
 * HTTP/1.1 protocol tables and message helpers shared by the programs
 * (RFC 9110, RFC 9112): reason phrases, and the server side's request
 * head parser and chunked-body decoder, pure and bounded for fuzzing.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

#define HTTP_MAX_TARGET	8192	/* longer request targets get 414 */
#define HTTP_MAX_HEAD	16384	/* bigger request heads get 431 */
#define HTTP_MAX_FIELDS	100	/* more header fields get 431 */

enum http_body { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

struct http_request {
	char		 method[24];
	char		*target;	/* as sent; owned */
	int		 minor;		/* HTTP/1.minor */
	struct buf	 fields;	/* "name: value\r\n" lines, trimmed */
	int		 keep_alive;	/* the connection may carry more */
	enum http_body	 body;
	long long	 content_length;
	int		 expect_continue;
};

const char	*http_reason(int);
void		 http_error_body(struct buf *, int, const char *);
void		 http_error_response(struct buf *, int, const char *,
		    const char *);

int		 http_not_modified(const char *, const char *, const char *);

ssize_t		 http_parse_request(const char *, size_t,
		    struct http_request *, const char **);
void		 http_request_free(struct http_request *);

struct http_chunked {
	int		 state;
	long long	 left;		/* bytes of the current chunk */
	size_t		 line;		/* bytes of the current line */
	int		 ext;		/* past the size digits; CR seen */
	int		 done;
};

ssize_t		 http_dechunk(struct http_chunked *, const char *, size_t,
		    struct buf *);

#endif
