/*
 * Leases: one holder per key, waiters woken through the FIFO when the
 * holder ends, and a lock that goes with its descriptor (a holder that
 * dies). Two leases_open make two open file descriptions, which lock
 * against each other as two processes would.
 */
#include <poll.h>
#include <string.h>

#include "store/lease.h"
#include "unit.h"

static int
hung_up(const struct lease *l)
{
	struct pollfd p = { lease_fd(l), POLLIN, 0 };

	return lease_fd(l) >= 0 && poll(&p, 1, 0) == 1 &&
	    (p.revents & POLLHUP);
}

static void
cleanup(const char *cache)
{
	char path[256];

	snprintf(path, sizeof path, "%s-wake", cache);
	rmdir(path);
}

static void
one_holder_and_a_woken_waiter(void)
{
	char err[256], cache[128];
	struct leases *a, *b;
	struct lease *held, *waiting, *other;

	snprintf(cache, sizeof cache, "%s", unit_tmp_path("cache.db"));
	a = leases_open(cache, err, sizeof err);
	b = leases_open(cache, err, sizeof err);
	CHECK(a != NULL && b != NULL);
	held = lease_take(a, "http://x/1");
	CHECK(lease_held(held));
	waiting = lease_take(b, "http://x/1");
	CHECK(!lease_held(waiting));
	CHECK(lease_busy(waiting));
	CHECK(!hung_up(waiting));
	other = lease_take(b, "http://x/2");	/* another key is free */
	CHECK(lease_held(other));
	lease_end(other);
	lease_end(held);
	CHECK(hung_up(waiting));
	CHECK(!lease_busy(waiting));
	lease_end(waiting);
	held = lease_take(b, "http://x/1");
	CHECK(lease_held(held));
	lease_end(held);
	leases_close(a);
	leases_close(b);
	cleanup(cache);
}

static void
a_dead_holder_frees_the_key(void)
{
	char err[256], cache[128];
	struct leases *a, *b;
	struct lease *held, *waiting;

	snprintf(cache, sizeof cache, "%s", unit_tmp_path("dead.db"));
	a = leases_open(cache, err, sizeof err);
	b = leases_open(cache, err, sizeof err);
	CHECK(a != NULL && b != NULL);
	held = lease_take(a, "http://x/dies");
	waiting = lease_take(b, "http://x/dies");
	CHECK(lease_busy(waiting));
	leases_close(a);	/* what the kernel does when a holder dies */
	CHECK(!lease_busy(waiting));
	lease_end(waiting);
	free(held);		/* its descriptor is gone with a */
	leases_close(b);
	cleanup(cache);
}

static void
no_lease_file_is_said(void)
{
	char err[256] = "";

	CHECK(leases_open("/nonexistent/dir/cache.db", err, sizeof err) ==
	    NULL);
	CHECK(strstr(err, "cannot open '/nonexistent/dir/cache.db-lease'") !=
	    NULL);
}

static const struct unit_test tests[] = {
	TEST(one_holder_and_a_woken_waiter),
	TEST(a_dead_holder_frees_the_key),
	TEST(no_lease_file_is_said),
};

UNIT_MAIN(tests)
