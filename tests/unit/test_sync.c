/*
 * The sync stream's pages (lib/serve/sync.h): bounded by entries and by body
 * bytes, so that a round of the loop does bounded work.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "serve/sync.h"
#include "store/store.h"
#include "unit.h"

/* An entry of url with a body of size bytes. */
static int
put(struct store *s, const char *url, size_t size)
{
	struct store_entry e = {
		.method = (char *)"GET", .url = (char *)url,
		.variant = (char *)"", .status = 200,
		.headers = (char *)"Content-Type: text/plain\r\n",
		.request_time = 1000, .response_time = 1001, .date = -1,
		.lifetime = 60, .stale_at = 1061,
	};
	struct store_writer *w = store_writer_new(s);
	struct sink k = store_writer_sink(w);
	char *body = malloc(size);

	memset(body, 'x', size);
	if (k.write(k.ctx, body, size) < 0) {
		free(body);
		store_writer_abort(w);
		return -1;
	}
	free(body);
	return store_writer_commit(w, &e);
}

static size_t
lines(const struct buf *b)
{
	size_t n = 0, i;

	for (i = 0; i < b->len; i++)
		n += b->data[i] == '\n';
	return n;
}

/* Pages end at SYNC_PAGE_BYTES of bodies, long before SYNC_PAGE entries. */
static void
pages_are_bounded_by_bytes(void)
{
	const char *path = unit_tmp_path("sync.db");
	struct store *s;
	struct sync *y;
	struct buf out = BUF_INIT;
	char url[64];
	const char *why;
	int i, status, more, rounds = 0;
	size_t total = 0;

	unlink(path);
	s = store_open(path, STORE_WRITE);
	CHECK(store_status(s) == 0);
	for (i = 0; i < 12; i++) {
		snprintf(url, sizeof url, "http://up/items/%d", i);
		CHECK(put(s, url, 100000) == 0);
	}
	y = sync_start(s, "http://up", "/_relay/sync", 1 << 20, &status,
	    &why);
	CHECK(y != NULL);
	do {
		buf_reset(&out);
		more = sync_next(y, &out);
		CHECK(more >= 0);
		/* at most 3 bodies of 100000 reach 262144; a head first */
		CHECK(lines(&out) <= (rounds == 0 ? 4 : 3));
		total += lines(&out);
		rounds++;
	} while (more > 0);
	CHECK(total == 13);
	CHECK(rounds >= 4);
	sync_free(y);
	buf_free(&out);
	store_close(s);
}

static const struct unit_test tests[] = {
	TEST(pages_are_bounded_by_bytes),
};

UNIT_MAIN(tests)
