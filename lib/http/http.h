/*
 * HTTP/1.1 protocol tables and message helpers shared by the programs
 * (RFC 9110, RFC 9112): reason phrases, the conditional-request rule,
 * the heads a relay sends on and back, and the server side's request
 * head parser and chunked-body decoder, pure and bounded for fuzzing.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "base/buf.h"

#define HTTP_MAX_TARGET	8192	/* longer request targets get 414 */
#define HTTP_MAX_HEAD	16384	/* bigger request heads get 431 */
#define HTTP_MAX_FIELDS	100	/* more header fields get 431 */
#define HTTP_MAX_METHOD	23	/* longer method names get 501 */

enum http_body { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED };

struct http_request {
	char		 method[HTTP_MAX_METHOD + 1];
	char		*target;	/* as sent; owned */
	int		 minor;		/* HTTP/1.minor */
	struct buf	 fields;	/* "name: value\r\n" lines, trimmed */
	int		 keep_alive;	/* the connection may carry more */
	enum http_body	 body;
	int		 has_content;	/* framed content, maybe empty */
	long long	 content_length;
	int		 expect_continue;
};

const char	*http_reason(int);
void		 http_error_body(struct buf *, int, const char *);
size_t		 http_error_response(struct buf *, int, const char *,
		    const char *, int);

int		 http_not_modified(const char *, const char *, const char *);

/* A response head a relay sends: what it says beyond its fields. */
struct http_head {
	int		 status;
	const char	*fields;	/* its end-to-end fields */
	int		 fields_ready;	/* http_end_to_end made them */
	const char	*cache_status;	/* RFC 9211 */
	const char	*extra;		/* more fields of ours, or NULL */
	long long	 age;		/* ours, replacing theirs; -1: none */
	long long	 length;	/* the body's; -1: unknown */
	int		 minor;		/* the request's HTTP/1.minor */
	int		 head_only;	/* HEAD: no body follows */
	int		 close;		/* the connection ends after it */
	time_t		 now;
};

/* How the body that follows is framed. */
enum http_framing { HTTP_FRAME_LENGTH, HTTP_FRAME_CHUNKED, HTTP_FRAME_CLOSE };

int		 http_has_body(int);
void		 http_end_to_end(struct buf *, const char *, int);
enum http_framing http_response_head(struct buf *, const struct http_head *);
void		 http_interim_head(struct buf *, int, const char *);
void		 http_forward_fields(struct buf *, const char *);
long long	 http_content_length(const char *);
long long	 http_retry_after_ms(const char *, long long);
int		 http_method_valid(const char *);
int		 http_byte_range(const char *, const char *, const char *,
		    long long, long long *, long long *);

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
