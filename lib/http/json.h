/*
 * A streaming JSON (RFC 8259) pull parser over a reader: validates and
 * copies values compactly, decodes strings into a writer, and escapes
 * strings for output. Memory use does not depend on the input size.
 */
#ifndef RELAY_JSON_H
#define RELAY_JSON_H

#include "base/buf.h"
#include "base/io.h"

#define JSON_MAX_DEPTH 512

struct json {
	struct reader	*in;
	int		 one_line;	/* a newline ends the input (NDJSON) */
	char		 why[96];	/* the first error */
};

void	json_init(struct json *, struct reader *, int one_line);
int	json_peek(struct json *);
int	json_expect(struct json *, int);
int	json_next(struct json *, int, int *);
int	json_value(struct json *, struct writer *);
int	json_string(struct json *, struct writer *);
int	json_string_buf(struct json *, struct buf *, size_t max);
int	json_integer(struct json *, long long *);

void	json_write_escaped(struct writer *, const void *, size_t);
void	json_write_string(struct writer *, const char *, size_t);
void	json_buf_string(struct buf *, const char *, size_t);

#endif
