/*
 * The rate limits' buckets; see buckets.h.
 *
 * The file is a header (a magic string, a random hash key, the mutex)
 * and 2^17 slots of a key's 64-bit hash and its arrival time. A key
 * lives in the first slot of its 64 from its hash's place that holds
 * it, else takes the first one there that is free: empty, or with an
 * arrival time past, which is the same as a full bucket, so keys
 * expire by themselves. The hash is SipHash-2-4 under the file's key,
 * so that a client cannot choose API keys that share another's bucket.
 * A file made concurrently by two processes is made whole under a
 * temporary name and linked into place: one wins, the other uses it.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/buckets.h"

#define MAGIC		"relay buckets 1\n"	/* 16 bytes */
#define SLOTS		(1u << 17)
#define PROBES		64
#define SPINS		1000	/* tries for the lock, without waiting */
#define LOCK_AT		64	/* the mutex's offset, for tests/ to hold */

struct slot {
	uint64_t	key;		/* the key's hash; 0: never used */
	int64_t		tat_us;		/* its arrival time */
};

struct table {
	char		magic[16];
	uint64_t	hash_key[2];
	uint32_t	slots;
	uint32_t	slot_size;
	char		pad[LOCK_AT - 40];
	pthread_mutex_t	lock;
	char		pad2[128 - LOCK_AT - sizeof(pthread_mutex_t)];
	struct slot	slot[];
};

struct buckets {
	struct table	*t;
	size_t		 len;
};

#define TABLE_SIZE	(sizeof(struct table) + SLOTS * sizeof(struct slot))

/* SipHash-2-4 (Aumasson and Bernstein), of a string under key. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static uint64_t
siphash(const uint64_t key[2], const char *s)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ key[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ key[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ key[0];
	uint64_t v3 = 0x7465646279746573ULL ^ key[1];
	size_t n = strlen(s), i;
	uint64_t m, b = (uint64_t)n << 56;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&m, s + i, 8);	/* little-endian machines: the spec's */
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (m = 0; i < n; i++)
		m |= (uint64_t)(unsigned char)s[i] << (8 * (i % 8));
	b |= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* A new table under a temporary name, linked into place if none is. */
static int
create(const char *path, char *err, size_t errlen)
{
	struct buf tmp = BUF_INIT;
	pthread_mutexattr_t attr;
	struct table *t;
	int fd, rc = -1;

	buf_printf(&tmp, "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp.data)) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", path,
		    strerror(errno));
		buf_free(&tmp);
		return -1;
	}
	if (fchmod(fd, 0644) < 0 || ftruncate(fd, (off_t)TABLE_SIZE) < 0 ||
	    (t = mmap(NULL, TABLE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "cannot create '%s': %s", path,
		    strerror(errno));
		goto out;
	}
	if (getrandom(t->hash_key, sizeof t->hash_key, 0) !=
	    (ssize_t)sizeof t->hash_key) {
		snprintf(err, errlen, "cannot create '%s': no random key: %s",
		    path, strerror(errno));
		munmap(t, TABLE_SIZE);
		goto out;
	}
	t->slots = SLOTS;
	t->slot_size = sizeof(struct slot);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&t->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	memcpy(t->magic, MAGIC, sizeof t->magic);	/* whole: now valid */
	munmap(t, TABLE_SIZE);
	if (link(tmp.data, path) < 0 && errno != EEXIST)
		snprintf(err, errlen, "cannot create '%s': %s", path,
		    strerror(errno));
	else
		rc = 0;
out:
	unlink(tmp.data);
	close(fd);
	buf_free(&tmp);
	return rc;
}

/*
 * Maps CACHE-buckets beside cache_path, making it if it is not there.
 * NULL with the reason if it cannot be, or is not such a file.
 */
struct buckets *
buckets_open(const char *cache_path, char *err, size_t errlen)
{
	struct buf path = BUF_INIT;
	struct buckets *b = NULL;
	struct stat st;
	struct table *t;
	int fd;

	err[0] = '\0';
	buf_printf(&path, "%s-buckets", cache_path);
	if ((fd = open(buf_cstr(&path), O_RDWR | O_CLOEXEC)) < 0 &&
	    errno == ENOENT && create(buf_cstr(&path), err, errlen) == 0)
		fd = open(buf_cstr(&path), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot open '%s': %s",
			    buf_cstr(&path), strerror(errno));
	} else if (fstat(fd, &st) < 0 || (t = mmap(NULL, TABLE_SIZE,
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "cannot use '%s': %s", buf_cstr(&path),
		    strerror(errno));
	} else if (st.st_size != (off_t)TABLE_SIZE ||
	    memcmp(t->magic, MAGIC, sizeof t->magic) != 0 ||
	    t->slots != SLOTS || t->slot_size != sizeof(struct slot)) {
		snprintf(err, errlen, "cannot use '%s': not a buckets file "
		    "of this relay", buf_cstr(&path));
		munmap(t, TABLE_SIZE);
	} else {
		b = xcalloc(1, sizeof *b);
		b->t = t;
		b->len = TABLE_SIZE;
	}
	if (fd >= 0)
		close(fd);
	buf_free(&path);
	return b;
}

void
buckets_close(struct buckets *b)
{
	if (b == NULL)
		return;
	munmap(b->t, b->len);
	free(b);
}

/*
 * The lock: tried at once a few times, or with wait_ms waited for up
 * to then. A holder that died leaves it to the next, with its table
 * as it was: every write under it is one slot's, whole or not made.
 */
static int
lock(struct table *t, int wait_ms)
{
	struct timespec until;
	int rc = EBUSY, i;

	for (i = 0; i < SPINS && rc == EBUSY; i++)
		rc = pthread_mutex_trylock(&t->lock);
	if (rc == EBUSY && wait_ms > 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)wait_ms % 1000 * 1000000;
		until.tv_sec += wait_ms / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		rc = pthread_mutex_timedlock(&t->lock, &until);
	}
	if (rc == EOWNERDEAD)
		rc = pthread_mutex_consistent(&t->lock);
	return rc == 0 ? 0 : -1;
}

/* The key's slot: its own, or a free one near its place; NULL if none. */
static struct slot *
find(struct table *t, uint64_t h, long long now_us)
{
	struct slot *s, *free_slot = NULL;
	uint32_t i;

	for (i = 0; i < PROBES; i++) {
		s = &t->slot[(h + i) % SLOTS];
		if (s->key == h)
			return s;
		if (free_slot == NULL && (s->key == 0 || s->tat_us <= now_us))
			free_slot = s;
	}
	if (free_slot != NULL) {
		free_slot->key = h;
		free_slot->tat_us = 0;
	}
	return free_slot;
}

static enum buckets_result
update(struct buckets *b, const char *key, const struct gcra_limit *limit,
    long long wait_us, long long now_us, long long pause_until_us,
    int wait_ms, struct gcra_decision *d)
{
	struct table *t = b->t;
	uint64_t h = siphash(t->hash_key, key) | 1;	/* never 0 */
	struct slot *s;

	if (lock(t, wait_ms) < 0)
		return BUCKETS_BUSY;
	if ((s = find(t, h, now_us)) != NULL) {
		if (pause_until_us > 0) {
			s->tat_us = gcra_pause(limit, s->tat_us, pause_until_us);
		} else {
			gcra_decide(limit, s->tat_us, now_us, wait_us, d);
			if (d->allowed)
				s->tat_us = d->tat_us;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return s != NULL ? BUCKETS_DECIDED : BUCKETS_FULL;
}

/*
 * Decides one request at now_us under limit for key, which may wait
 * wait_us for its turn (gcra_decide); waits up to wait_ms for the lock
 * (0: only tries it).
 */
enum buckets_result
buckets_take(struct buckets *b, const char *key, const struct gcra_limit *limit,
    long long wait_us, long long now_us, int wait_ms, struct gcra_decision *d)
{
	return update(b, key, limit, wait_us, now_us, 0, wait_ms, d);
}

/* Lets no request for key through until until_us (gcra_pause). */
enum buckets_result
buckets_pause(struct buckets *b, const char *key,
    const struct gcra_limit *limit, long long until_us, long long now_us,
    int wait_ms)
{
	struct gcra_decision unused;

	return update(b, key, limit, 0, now_us, until_us, wait_ms, &unused);
}
