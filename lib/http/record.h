/*
 * The record: one response as one line of JSON (NDJSON), the format the
 * programs exchange on pipes. Written and read in bounded memory, body
 * included; the format is documented in relay(7).
 */
#ifndef RELAY_RECORD_H
#define RELAY_RECORD_H

#include "base/buf.h"
#include "base/io.h"
#include "http/json.h"
#include "http/url.h"

#define RECORD_MAX_URL		URL_MAX
#define RECORD_MAX_HEADERS	65536	/* bytes of the header block */
#define RECORD_MAX_FIELDS	100

enum record_body {
	RECORD_NO_BODY,
	RECORD_JSON,	/* the body is JSON: kept as a value */
	RECORD_TEXT,	/* valid UTF-8: a string */
	RECORD_BASE64,	/* anything else */
};

/*
 * Has-bits for the optional fields of a decoded record; of those of a
 * record to write, HAS_TTL: without it the record has no ttl member.
 */
enum {
	HAS_STATUS = 1 << 0,
	HAS_REQUEST_TIME = 1 << 1,
	HAS_RESPONSE_TIME = 1 << 2,
	HAS_AGE = 1 << 3,
	HAS_TTL = 1 << 4,
	HAS_SIZE = 1 << 5,
};

struct record {
	char		*url;
	char		*effective_url;	/* the response's, if another: NULL */
	char		*method;
	char		 source[16];	/* hit, miss, revalidated, stale */
	char		*error;		/* a failed fetch, or NULL */
	int		 status;
	struct buf	 headers;	/* "Name: value\r\n" lines */
	long long	 request_time;
	long long	 response_time;
	long long	 age;
	long long	 ttl;
	long long	 size;
	long long	 seq;		/* a sync record's change; 0: none */
	unsigned	 has;
	enum record_body body;
};

/* Opens the sink a decoded body goes to; NULL discards it. */
typedef struct sink *(*record_body_open)(void *, const struct record *);

struct record_reader {
	struct reader	 in;
	struct json	 json;
	long long	 line;		/* of the record just read */
	char		 why[160];
};

enum record_result {
	RECORD_OK,
	RECORD_END,
	RECORD_BAD,	/* the line is not a valid record; skipped */
	RECORD_SINK,	/* the body sink failed */
	RECORD_READ,	/* the input failed */
};

/* A body that can be read more than once. */
struct record_source {
	int	(*open)(void *, struct source *);
	void	(*close)(void *);
	void	*ctx;
};

enum record_body record_classify(const char *, struct source);
int	record_read_headers(struct json *, struct buf *, char *, size_t);
void	record_write_headers(struct writer *, const char *);
int	record_write(struct writer *, const struct record *,
	    const struct record_source *);
void	record_write_head(struct writer *, const struct record *);
int	record_write_body(struct writer *, enum record_body, struct source);

struct record_reader *record_reader_new(struct source);
void	record_reader_free(struct record_reader *);
enum record_result record_read(struct record_reader *, struct record *,
	    record_body_open, void *);
void	record_free(struct record *);

#endif
