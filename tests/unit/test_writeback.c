/*
 * Tests cache writes on their own thread (lib/store/writeback.h): what is
 * handed over is in the file once finished, in order, a body larger
 * than the queue included; what a full disk loses is named.
 */
#include <sys/stat.h>

#include <poll.h>
#include <string.h>

#include "base/buf.h"
#include "store/cache.h"
#include "store/store.h"
#include "unit.h"
#include "store/writeback.h"

static const struct cache_rules rules = { 300, -1, 0, 0 };

static struct cache_response
response(const char *url, const char *headers)
{
	return (struct cache_response){
		.url = url, .status = 200, .headers = headers,
		.request_headers = "", .request_time = 1000,
		.response_time = 1000,
	};
}

/* Hands a body of n copies of c over in pieces, then commits it. */
static void
fetched(struct writeback *wb, const char *url, const char *headers,
    size_t n, char c)
{
	struct writeback_body *b = writeback_body_new(url);
	struct cache_response r = response(url, headers);
	char piece[16384];
	size_t k;

	memset(piece, c, sizeof piece);
	for (; n > 0; n -= k) {
		k = n < sizeof piece ? n : sizeof piece;
		writeback_write(wb, b, piece, k);
	}
	writeback_commit(wb, b, &r);
}

/* Whether the stored body for url is n copies of c. */
static int
stored(struct store *s, const char *url, size_t n, char c)
{
	struct store_entry e;
	struct store_body *b;
	struct source src;
	char buf[8192];
	size_t at = 0, i;
	ssize_t got;
	int ok = 1;

	if (store_get(s, "GET", url, "", &e) != 1)
		return 0;
	if ((b = store_body_open(s, &e)) == NULL) {
		store_entry_free(&e);
		return 0;
	}
	src = store_body_source(b);
	while ((got = src.read(src.ctx, buf, sizeof buf)) > 0)
		for (i = 0; i < (size_t)got; i++, at++)
			ok &= buf[i] == c;
	store_body_close(b);
	store_entry_free(&e);
	return ok && got == 0 && at == n;
}

/* Commits, aborts, refreshes and hits: all in the file after finish. */
static void
applies_everything(void)
{
	const char *p = unit_tmp_path("all.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct writeback *wb = writeback_start(s, &rules);
	struct writeback_body *gone = writeback_body_new("http://x/gone");
	struct store_entry e;
	char *warnings;

	fetched(wb, "http://x/a", "ETag: \"1\"\r\n", 10, 'a');
	writeback_write(wb, gone, "zz", 2);
	writeback_abort(wb, gone);
	fetched(wb, "http://x/big", "", 10 * 1024 * 1024, 'b');
	warnings = writeback_finish(wb);
	CHECK(warnings == NULL);
	CHECK(stored(s, "http://x/a", 10, 'a'));
	CHECK(stored(s, "http://x/big", 10 * 1024 * 1024, 'b'));
	CHECK(store_get(s, "GET", "http://x/gone", "", &e) == 0);

	CHECK(store_get(s, "GET", "http://x/a", "", &e) == 1);
	free(e.headers);
	e.headers = xstrdup("ETag: \"2\"\r\n");
	e.lifetime = 77;
	wb = writeback_start(s, &rules);
	writeback_refresh(wb, &e);
	writeback_hits(wb, (long long[]){ e.id, e.id }, 2, 2001);
	CHECK(writeback_finish(wb) == NULL);
	store_entry_free(&e);
	CHECK(store_get(s, "GET", "http://x/a", "", &e) == 1);
	CHECK(strcmp(e.headers, "ETag: \"2\"\r\n") == 0);
	CHECK(e.lifetime == 77 && e.hits == 2);
	store_entry_free(&e);
	CHECK(stored(s, "http://x/a", 10, 'a'));
	store_close(s);
}

/* A full disk loses the group's transaction: each response is named. */
static void
names_what_a_full_disk_loses(void)
{
	const char *p = unit_tmp_path("full.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct writeback *wb = writeback_start(s, &rules);
	struct buf wal = BUF_INIT;
	struct stat st;
	char *warnings;

	fetched(wb, "http://x/first", "", 10, 'f');
	CHECK(writeback_finish(wb) == NULL);
	buf_printf(&wal, "%s-wal", p);
	CHECK(stat(buf_cstr(&wal), &st) == 0);
	buf_free(&wal);
	unit_file_limit((long long)st.st_size);	/* the log cannot grow */
	wb = writeback_start(s, &rules);
	fetched(wb, "http://x/1", "", 10, '1');
	fetched(wb, "http://x/2", "", 10, '2');
	warnings = writeback_finish(wb);
	unit_file_limit_end();
	CHECK(warnings != NULL);
	CHECK(strstr(warnings, "http://x/1: not cached: cannot write to "
	    "cache '") != NULL);
	CHECK(strstr(warnings, "http://x/2: not cached: ") != NULL);
	CHECK(strstr(warnings, "File too large") != NULL);
	free(warnings);
	CHECK(stored(s, "http://x/first", 10, 'f'));
	CHECK(!stored(s, "http://x/1", 10, '1'));
	store_close(s);
}

/*
 * Read-your-writes: the wake fd says when operations are applied, and
 * what writeback_applied then says is in the file; a removal and an
 * uncacheable mark too.
 */
static void
says_when_applied(void)
{
	const char *p = unit_tmp_path("applied.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store *reader = store_open(p, STORE_READ);
	struct writeback *wb = writeback_start(s, &rules);
	struct writeback_body *b = writeback_body_new("http://x/a");
	struct cache_response r = response("http://x/a", "");
	struct pollfd pfd = { writeback_wake_fd(wb), POLLIN, 0 };
	long long seq, applied = 0;
	int rounds;

	writeback_write(wb, b, "aaa", 3);
	seq = writeback_commit(wb, b, &r);
	writeback_flush(wb);
	for (rounds = 0; rounds < 50 && applied < seq; rounds++)
		if (poll(&pfd, 1, 100) == 1)
			applied = writeback_applied(wb);
	CHECK(applied >= seq);
	CHECK(stored(reader, "http://x/a", 3, 'a'));
	seq = writeback_mark_uncacheable(wb, "http://x/a", 2000);
	seq = writeback_remove(wb, "http://x/a") > seq ? seq + 1 : -1;
	CHECK(seq > 0);		/* seqs grow one by one */
	writeback_flush(wb);
	for (rounds = 0; rounds < 50 && applied < seq; rounds++)
		if (poll(&pfd, 1, 100) == 1)
			applied = writeback_applied(wb);
	CHECK(applied >= seq);
	CHECK(!stored(reader, "http://x/a", 3, 'a'));
	CHECK(store_uncacheable(reader, "http://x/a", 1999) == 1);
	CHECK(store_uncacheable(reader, "http://x/a", 2000) == 0);
	CHECK(writeback_finish(wb) == NULL);
	store_close(reader);
	store_close(s);
}

static const struct unit_test tests[] = {
	TEST(applies_everything),
	TEST(says_when_applied),
	TEST(names_what_a_full_disk_loses),
};

UNIT_MAIN(tests)
