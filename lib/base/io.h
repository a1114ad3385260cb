/*
 * Byte streams: sources and sinks with a small vtable, and buffered
 * readers and writers on top of them, so that bodies of any size move
 * through fixed-size buffers.
 */
#ifndef RELAY_IO_H
#define RELAY_IO_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* read returns bytes read, 0 at end, -1 on error (errno or the owner says why). */
struct source {
	ssize_t	(*read)(void *ctx, void *buf, size_t n);
	void	*ctx;
};

/* write consumes all n bytes or returns -1. */
struct sink {
	int	(*write)(void *ctx, const void *buf, size_t n);
	void	*ctx;
};

struct mem_source {
	const char	*at;
	size_t		 left;
};

struct source	source_fd(int *fd);
struct source	source_mem(struct mem_source *, const void *, size_t);
struct sink	sink_fd(int *fd);
struct sink	sink_file(FILE *);
struct sink	sink_null(void);
struct buf;
struct sink	sink_buf(struct buf *);
int		io_read_file(const char *, size_t, struct buf *, char *,
		    size_t);

#define IO_BUFSIZE 65536

struct reader {
	struct source	 src;
	unsigned char	 buf[IO_BUFSIZE];
	size_t		 pos;
	size_t		 len;
	int		 eof;
	int		 err;	/* the source failed */
	int		 last;	/* last byte consumed, -1 before any */
};

struct writer {
	struct sink	 sink;
	unsigned char	 buf[IO_BUFSIZE];
	size_t		 len;
	int		 err;	/* sticky: the sink failed */
};

void	reader_init(struct reader *, struct source);
int	reader_fill(struct reader *);

/* The next byte without consuming it, or -1 at end or error. */
static inline int
reader_peek(struct reader *r)
{
	if (r->pos == r->len && reader_fill(r) <= 0)
		return -1;
	return r->buf[r->pos];
}

static inline int
reader_getc(struct reader *r)
{
	if (r->pos == r->len && reader_fill(r) <= 0)
		return -1;
	return r->last = r->buf[r->pos++];
}

void	writer_init(struct writer *, struct sink);
void	writer_put(struct writer *, const void *, size_t);
void	writer_puts(struct writer *, const char *);
void	writer_printf(struct writer *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	writer_flush(struct writer *);

static inline void
writer_putc(struct writer *w, int c)
{
	if (w->len == sizeof w->buf)
		writer_flush(w);
	w->buf[w->len++] = (unsigned char)c;
}

/* Copy a source to a sink; returns 0, or -1 if the source, -2 if the sink failed. */
int	io_copy(struct source, struct sink);

#endif
