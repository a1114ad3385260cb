/*
 * A body held until its turn comes: in memory up to a limit, the rest
 * in an unlinked temporary file, so many small bodies cost no files
 * and large ones no memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/spool.h"

struct spool {
	struct buf	 mem;
	size_t		 limit;
	FILE		*file;		/* what did not fit, or NULL */
	size_t		 pos;		/* reading: offset in mem */
	int		 reading_file;
};

struct spool *
spool_new(size_t limit)
{
	struct spool *s = xcalloc(1, sizeof *s);

	s->limit = limit;
	return s;
}

/* Returns 0, or -1 with errno if the temporary file failed. */
int
spool_write(struct spool *s, const void *p, size_t n)
{
	size_t room = s->limit - s->mem.len;

	if (s->file == NULL && n <= room) {
		buf_add(&s->mem, p, n);
		return 0;
	}
	if (s->file == NULL && (s->file = tmpfile()) == NULL)
		return -1;
	return fwrite(p, 1, n, s->file) == n ? 0 : -1;
}

static ssize_t
spool_read(void *ctx, void *p, size_t n)
{
	struct spool *s = ctx;
	size_t left = s->mem.len - s->pos;

	if (left > 0) {
		if (n > left)
			n = left;
		memcpy(p, s->mem.data + s->pos, n);
		s->pos += n;
		return (ssize_t)n;
	}
	if (s->file == NULL)
		return 0;
	if (!s->reading_file) {
		if (fflush(s->file) != 0 || fseek(s->file, 0, SEEK_SET) != 0)
			return -1;
		s->reading_file = 1;
	}
	n = fread(p, 1, n, s->file);
	return n == 0 && ferror(s->file) ? -1 : (ssize_t)n;
}

/* Reads the body from its start; each call begins a new pass. */
struct source
spool_source(struct spool *s)
{
	s->pos = 0;
	s->reading_file = 0;
	return (struct source){ spool_read, s };
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	if (s->file != NULL)
		fclose(s->file);
	buf_free(&s->mem);
	free(s);
}
