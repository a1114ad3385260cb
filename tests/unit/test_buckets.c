/*
 * Tests the shared rate-limit buckets (lib/store/buckets.h): decisions under
 * a limit, keys apart, a table that outlives its processes, counts
 * that stay exact when processes decide at once, a holder that dies
 * with the lock, and a file that is not a table.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/buckets.h"
#include "unit.h"

#define S	1000000LL
#define NOW	(2000000000LL * S)
#define LOCK_AT	64		/* as in buckets.c, and tests/throttling.bats */

static int
allowed(struct buckets *b, const char *key, const struct gcra_limit *l,
    long long now, int n)
{
	struct gcra_decision d;
	int i, yes = 0;

	for (i = 0; i < n; i++)
		if (buckets_take(b, key, l, 0, now, 100, &d) == BUCKETS_DECIDED &&
		    d.allowed)
			yes++;
	return yes;
}

static void
decides_and_keeps(void)
{
	const char *cache = unit_tmp_path("keeps.db");
	char err[256] = "";
	struct buckets *b = buckets_open(cache, err, sizeof err);
	struct gcra_limit l;

	CHECK(b != NULL);
	gcra_parse("100/m", 10, &l);
	CHECK(allowed(b, "k1", &l, NOW, 50) == 10);
	CHECK(allowed(b, "k2", &l, NOW, 50) == 10);	/* a key of its own */
	CHECK(allowed(b, "k1", &l, NOW + 600000, 5) == 1);	/* one interval */
	buckets_close(b);
	b = buckets_open(cache, err, sizeof err);	/* as a new process */
	CHECK(allowed(b, "k1", &l, NOW + 600000, 5) == 0);
	CHECK(allowed(b, "k1", &l, NOW + 60 * S, 20) == 10);	/* full again */
	CHECK(buckets_pause(b, "k3", &l, NOW + 2 * S, NOW, 0) ==
	    BUCKETS_DECIDED);
	CHECK(allowed(b, "k3", &l, NOW + S, 1) == 0);	/* paused */
	buckets_close(b);
}

/* Four processes, 300 asks each, against a burst of 500: exactly 500. */
static void
exact_across_processes(void)
{
	const char *cache = unit_tmp_path("exact.db");
	char err[256] = "";
	struct buckets *b = buckets_open(cache, err, sizeof err);
	struct gcra_limit l;
	int i, status, total = 0, fds[2];
	char count[16];
	pid_t pid;

	gcra_parse("1/d", 500, &l);
	CHECK(pipe(fds) == 0);
	for (i = 0; i < 4; i++)
		if ((pid = fork()) == 0) {
			struct buckets *own = buckets_open(cache, err,
			    sizeof err);

			snprintf(count, sizeof count, "%d\n",
			    allowed(own, "shared", &l, NOW, 300));
			(void)!write(fds[1], count, strlen(count));
			_exit(0);
		}
	close(fds[1]);
	for (i = 0; i < 4; i++)
		wait(&status);
	FILE *in = fdopen(fds[0], "r");
	while (fscanf(in, "%d", &i) == 1)
		total += i;
	fclose(in);
	CHECK(total == 500);
	buckets_close(b);
}

/* A process that dies holding the lock leaves it to the next one. */
static void
dead_holder(void)
{
	const char *cache = unit_tmp_path("dead.db");
	char err[256] = "", path[512];
	struct buckets *b = buckets_open(cache, err, sizeof err);
	struct gcra_limit l;
	int status, fd;
	void *m;

	snprintf(path, sizeof path, "%s-buckets", cache);
	if (fork() == 0) {
		fd = open(path, O_RDWR);
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		pthread_mutex_lock((pthread_mutex_t *)((char *)m + LOCK_AT));
		_exit(0);	/* without unlocking */
	}
	wait(&status);
	gcra_parse("1/d", 2, &l);
	CHECK(allowed(b, "after", &l, NOW, 3) == 2);
	buckets_close(b);
}

static void
not_a_table(void)
{
	const char *cache = unit_tmp_path("bad.db");
	char err[256] = "", path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s-buckets", cache);
	f = fopen(path, "w");
	fputs("not a table\n", f);
	fclose(f);
	CHECK(buckets_open(cache, err, sizeof err) == NULL);
	CHECK(strstr(err, "-buckets': not a buckets file") != NULL);
}

static const struct unit_test tests[] = {
	TEST(decides_and_keeps),
	TEST(exact_across_processes),
	TEST(dead_holder),
	TEST(not_a_table),
};

UNIT_MAIN(tests)
