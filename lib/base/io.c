/*
 * Byte streams: sources and sinks with a small vtable, and buffered
 * readers and writers on top of them; small files read whole, bounded.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/io.h"

static ssize_t
fd_read(void *ctx, void *buf, size_t n)
{
	ssize_t got;

	do
		got = read(*(int *)ctx, buf, n);
	while (got < 0 && errno == EINTR);
	return got;
}

static int
fd_write(void *ctx, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t put;

	while (n > 0) {
		put = write(*(int *)ctx, p, n);
		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			return -1;
		p += put;
		n -= (size_t)put;
	}
	return 0;
}

static int
file_write(void *ctx, const void *buf, size_t n)
{
	return fwrite(buf, 1, n, ctx) == n ? 0 : -1;
}

static int
null_write(void *ctx, const void *buf, size_t n)
{
	(void)ctx, (void)buf, (void)n;
	return 0;
}

struct source
source_fd(int *fd)
{
	return (struct source){ fd_read, fd };
}

struct sink
sink_fd(int *fd)
{
	return (struct sink){ fd_write, fd };
}

struct sink
sink_file(FILE *f)
{
	return (struct sink){ file_write, f };
}

struct sink
sink_null(void)
{
	return (struct sink){ null_write, NULL };
}

static int
buf_write(void *ctx, const void *p, size_t n)
{
	buf_add(ctx, p, n);
	return 0;
}

/* Appends to a buffer in memory. */
struct sink
sink_buf(struct buf *b)
{
	return (struct sink){ buf_write, b };
}

static ssize_t
mem_read(void *ctx, void *p, size_t n)
{
	struct mem_source *m = ctx;

	if (n > m->left)
		n = m->left;
	memcpy(p, m->at, n);
	m->at += n;
	m->left -= n;
	return (ssize_t)n;
}

/* Reads bytes in memory, which must outlive the source. */
struct source
source_mem(struct mem_source *m, const void *p, size_t n)
{
	m->at = p;
	m->left = n;
	return (struct source){ mem_read, m };
}

void
reader_init(struct reader *r, struct source src)
{
	r->src = src;
	r->pos = r->len = 0;
	r->eof = r->err = 0;
	r->last = -1;
}

/* Refill an empty buffer; returns bytes now available, 0 at end, -1 on error. */
int
reader_fill(struct reader *r)
{
	ssize_t got;

	if (r->pos < r->len)
		return (int)(r->len - r->pos);
	if (r->eof || r->err)
		return r->err ? -1 : 0;
	got = r->src.read(r->src.ctx, r->buf, sizeof r->buf);
	if (got < 0) {
		r->err = 1;
		return -1;
	}
	if (got == 0) {
		r->eof = 1;
		return 0;
	}
	r->pos = 0;
	r->len = (size_t)got;
	return (int)got;
}

void
writer_init(struct writer *w, struct sink sink)
{
	w->sink = sink;
	w->len = 0;
	w->err = 0;
}

/* Hands buffered bytes to the sink; returns 0, or -1 once the sink has failed. */
int
writer_flush(struct writer *w)
{
	if (w->len > 0 && !w->err &&
	    w->sink.write(w->sink.ctx, w->buf, w->len) < 0)
		w->err = 1;
	w->len = 0;
	return w->err ? -1 : 0;
}

void
writer_put(struct writer *w, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t room;

	while (n > 0) {
		if (w->len == sizeof w->buf)
			writer_flush(w);
		room = sizeof w->buf - w->len;
		if (room > n)
			room = n;
		memcpy(w->buf + w->len, s, room);
		w->len += room;
		s += room;
		n -= room;
	}
}

void
writer_puts(struct writer *w, const char *s)
{
	writer_put(w, s, strlen(s));
}

void
writer_printf(struct writer *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		w->err = 1;	/* only short formatted items go through here */
		return;
	}
	writer_put(w, tmp, (size_t)n);
}

int
io_copy(struct source src, struct sink sink)
{
	char buf[IO_BUFSIZE];
	ssize_t got;

	while ((got = src.read(src.ctx, buf, sizeof buf)) > 0)
		if (sink.write(sink.ctx, buf, (size_t)got) < 0)
			return -2;
	return got < 0 ? -1 : 0;
}

/*
 * Reads a small file an operator names (a routes file, a token, a
 * password) whole into out: a regular file of at most max bytes. A
 * FIFO, a directory or a device is refused before anything is read,
 * so that none can hold the process or fill its memory. Returns 0, or
 * -1 with the reason in why (the caller names the file).
 */
int
io_read_file(const char *path, size_t max, struct buf *out, char *why,
    size_t len)
{
	char chunk[4096];
	struct stat st;
	ssize_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) < 0) {
		snprintf(why, len, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a regular file");
		close(fd);
		return -1;
	}
	while (out->len <= max && (n = read(fd, chunk, sizeof chunk)) > 0)
		buf_add(out, chunk, (size_t)n);
	if (n < 0)
		snprintf(why, len, "%s", strerror(errno));
	else if (out->len > max)
		snprintf(why, len, "larger than %zu bytes", max);
	close(fd);
	return n < 0 || out->len > max ? -1 : 0;
}
