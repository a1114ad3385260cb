/*
 * Leases: one upstream request per key at a time across every process
 * that shares a cache file. A lease is a lock on one byte of the file
 * CACHE-lease, so the kernel releases it when its holder dies; waiters
 * are woken by a FIFO in CACHE-wake/ that the holder keeps open.
 *
 * The lock is an open file description lock (F_OFD_SETLK): it never
 * blocks, belongs to the descriptor rather than the process (so each
 * worker opens its own), and goes with the last close, death included.
 * Its byte is at an offset hashed from the key: 62 bits, so that two
 * keys of one cache share a byte with odds no cache lives to see.
 *
 * The wake-up: a reader of a FIFO gets POLLHUP once a writer that came
 * after it has gone. A waiter makes the key's FIFO, opens it for
 * reading and then checks the lock again; the holder, done, unlocks,
 * then opens and closes the FIFO if there is one, and removes it. So
 * an end between a waiter's open and its check is not missed, and a
 * holder nobody waits for pays one failed open. What no ordering can
 * close (a holder that dies, a FIFO replaced under a waiter by the next
 * holder) is caught by lease_busy, which waiters call now and then.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/lease.h"

#define TRIES 3		/* a lock that frees while we look: look again */

struct leases {
	int	 fd;		/* CACHE-lease, for the locks */
	char	*dir;		/* CACHE-wake, for the FIFOs */
};

struct lease {
	struct leases	*ls;
	off_t		 at;		/* the lock's byte */
	int		 held;
	int		 fifo;		/* a waiter's */
	char		 path[];	/* the FIFO's */
};

/*
 * Opens the lease file and the wake directory beside the cache file,
 * creating them. NULL with the reason if that cannot be done: the
 * caller then coalesces within its own process only.
 */
struct leases *
leases_open(const char *cache_path, char *err, size_t errlen)
{
	struct leases *ls = xcalloc(1, sizeof *ls);
	struct buf path = BUF_INIT;

	buf_printf(&path, "%s-lease", cache_path);
	ls->fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (ls->fd < 0)
		snprintf(err, errlen, "cannot open '%s': %s", buf_cstr(&path),
		    strerror(errno));
	buf_reset(&path);
	buf_printf(&path, "%s-wake", cache_path);
	ls->dir = xstrdup(buf_cstr(&path));
	buf_free(&path);
	if (ls->fd >= 0 && mkdir(ls->dir, 0777) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create '%s': %s", ls->dir,
		    strerror(errno));
		close(ls->fd);
		ls->fd = -1;
	}
	if (ls->fd < 0) {
		free(ls->dir);
		free(ls);
		return NULL;
	}
	return ls;
}

void
leases_close(struct leases *ls)
{
	if (ls == NULL)
		return;
	close(ls->fd);
	free(ls->dir);
	free(ls);
}

/* FNV-1a, 64 bits. */
static uint64_t
hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 0x100000001b3ULL;
	return h;
}

static int
lock(struct lease *l, int cmd, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = l->at,
		.l_len = 1,
	};
	int rc = fcntl(l->ls->fd, cmd, &fl);

	if (cmd == F_OFD_GETLK && rc == 0)
		return fl.l_type != F_UNLCK;
	return rc;
}

/* The waiter's end of the FIFO, made if missing; -1 if it cannot be. */
static int
open_fifo(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && (mkfifo(path, 0666) == 0 ||
	    errno == EEXIST))
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return fd;
}

/* Wakes the FIFO's readers, if there are any, and removes it. */
static void
wake_waiters(const char *path)
{
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	if (fd >= 0 || errno == ENXIO)	/* ENXIO: there, but no reader */
		unlink(path);
}

/*
 * Takes the key's lease if it is free, else starts waiting for it.
 * Either way returns a lease to end with lease_end: lease_held says
 * which. A waiter polls lease_fd for POLLHUP.
 */
struct lease *
lease_take(struct leases *ls, const char *key)
{
	uint64_t h = hash(key);
	size_t n = strlen(ls->dir) + 18;
	struct lease *l = xcalloc(1, sizeof *l + n);
	int tries;

	l->ls = ls;
	l->at = (off_t)(h >> 2);
	l->fifo = -1;
	snprintf(l->path, n, "%s/%016llx", ls->dir, (unsigned long long)h);
	for (tries = 0; tries < TRIES; tries++) {
		if (lock(l, F_OFD_SETLK, F_WRLCK) == 0) {
			l->held = 1;
			return l;
		}
		/* Without its FIFO, a waiter finds the end by lease_busy. */
		l->fifo = open_fifo(l->path);
		if (lease_busy(l))
			return l;
		if (l->fifo >= 0)
			close(l->fifo);
		l->fifo = -1;
	}
	return l;	/* waiting, with only lease_busy to tell the end */
}

int
lease_held(const struct lease *l)
{
	return l->held;
}

/* A waiter's FIFO: POLLHUP when the holder is done; -1 if none. */
int
lease_fd(const struct lease *l)
{
	return l->fifo;
}

/*
 * Whether another process holds the key's lease now. A lock that
 * cannot be asked about counts as free, so that no one waits on it.
 */
int
lease_busy(struct lease *l)
{
	return lock(l, F_OFD_GETLK, F_WRLCK) == 1;
}

/*
 * Ends the lease: a holder gives it up and wakes its waiters; a waiter
 * stops waiting. The lock goes first, so that a waiter that comes
 * after the wake-up finds it free.
 */
void
lease_end(struct lease *l)
{
	if (l == NULL)
		return;
	if (l->held) {
		lock(l, F_OFD_SETLK, F_UNLCK);
		wake_waiters(l->path);
	}
	if (l->fifo >= 0)
		close(l->fifo);
	free(l);
}
