/*
 * Tests the cache file (lib/store/store.h) in a temporary directory: bodies
 * across chunks, replacing, aborting, removing, purging, statistics,
 * iteration, vacuum, batches and their failures, and files that are
 * missing or not databases.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "store/store.h"
#include "unit.h"

#define KIB	1024

static unsigned char
byte_at(size_t i, int seed)
{
	return (unsigned char)(i * 31 + (i >> 9) + (size_t)seed * 7);
}

/* Writes size pattern bytes in uneven pieces through a writer's sink. */
static struct store_writer *
write_body(struct store *s, size_t size, int seed)
{
	struct store_writer *w = store_writer_new(s);
	struct sink k = store_writer_sink(w);
	unsigned char piece[10007];
	size_t done, n, i;

	for (done = 0; done < size; done += n) {
		n = size - done < sizeof piece ? size - done : sizeof piece;
		for (i = 0; i < n; i++)
			piece[i] = byte_at(done + i, seed);
		if (k.write(k.ctx, piece, n) < 0)
			break;
	}
	return w;
}

static int
put(struct store *s, const char *method, const char *url, size_t size,
    int seed, time_t stale_at)
{
	struct store_entry e = {
		.method = (char *)method, .url = (char *)url,
		.variant = (char *)"", .status = 200,
		.headers = (char *)"Content-Type: x/y\r\n",
		.request_time = 1000, .response_time = 1001, .date = -1,
		.lifetime = 60, .stale_at = stale_at,
	};

	return store_writer_commit(write_body(s, size, seed), &e);
}

/* Reads an entry's body back and compares it with the pattern. */
static int
body_matches(struct store *s, const struct store_entry *e, int seed)
{
	struct store_body *b = store_body_open(s, e);
	struct source src;
	unsigned char buf[9001];
	size_t at = 0, i;
	ssize_t got;
	int ok = 1;

	if (b == NULL)
		return 0;
	src = store_body_source(b);
	while ((got = src.read(src.ctx, buf, sizeof buf)) > 0)
		for (i = 0; i < (size_t)got; i++, at++)
			if (buf[i] != byte_at(at, seed))
				ok = 0;
	store_body_close(b);
	return ok && got == 0 && (long long)at == e->size;
}

static int
stored_as(struct store *s, const char *url, size_t size, int seed)
{
	struct store_entry e;
	int ok;

	if (store_get(s, "GET", url, "", &e) != 1)
		return 0;
	ok = e.size == (long long)size && body_matches(s, &e, seed);
	store_entry_free(&e);
	return ok;
}

/* One number from the file itself, through a separate connection. */
static long long
query(const char *file, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return n;
}

static void
open_write_creates(void)
{
	const char *p = unit_tmp_path("create.db");
	struct store *s;

	CHECK(access(p, F_OK) < 0);
	s = store_open(p, STORE_WRITE);
	CHECK(store_status(s) == 0 && store_error(s)[0] == '\0');
	CHECK(strcmp(store_path(s), p) == 0);
	CHECK(access(p, F_OK) == 0);
	store_close(s);
	CHECK(query(p, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
}

static void
body_across_chunks(void)
{
	const char *p = unit_tmp_path("chunks.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_entry e;

	CHECK(store_status(s) == 0);
	CHECK(put(s, "GET", "http://x/big", 600 * KIB, 1, 5000) == 0);
	CHECK(store_get(s, "GET", "http://x/big", "", &e) == 1);
	CHECK(strcmp(e.method, "GET") == 0);
	CHECK(strcmp(e.url, "http://x/big") == 0);
	CHECK(strcmp(e.variant, "") == 0 && e.status == 200);
	CHECK(strcmp(e.headers, "Content-Type: x/y\r\n") == 0);
	CHECK(e.request_time == 1000 && e.response_time == 1001);
	CHECK(e.date == -1 && e.age == 0 && e.lifetime == 60);
	CHECK(e.stale_at == 5000 && e.size == 600 * KIB && e.hits == 0);
	CHECK(e.etag == NULL && e.last_modified == NULL);
	CHECK(body_matches(s, &e, 1));
	store_entry_free(&e);
	CHECK(query(p, "SELECT count(*) FROM chunks") == 3);
	CHECK(put(s, "GET", "http://x/empty", 0, 2, 5000) == 0);
	CHECK(stored_as(s, "http://x/empty", 0, 2));
	CHECK(put(s, "GET", "http://x/exact", 256 * KIB, 3, 5000) == 0);
	CHECK(stored_as(s, "http://x/exact", 256 * KIB, 3));
	CHECK(store_get(s, "GET", "http://x/none", "", &e) == 0);
	CHECK(store_get(s, "HEAD", "http://x/big", "", &e) == 0);
	CHECK(store_get(s, "GET", "http://x/big", "v", &e) == 0);
	CHECK(store_get(s, "GET", "http://x/big", NULL, &e) == 1);
	store_entry_free(&e);
	store_close(s);
}

static void
replace_keeps_one(void)
{
	const char *p = unit_tmp_path("replace.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_stats st;

	CHECK(put(s, "GET", "http://x/", 600 * KIB, 1, 5000) == 0);
	CHECK(put(s, "GET", "http://x/", 1000, 2, 6000) == 0);
	CHECK(stored_as(s, "http://x/", 1000, 2));
	CHECK(store_stats(s, 0, &st) == 0);
	CHECK(st.entries == 1 && st.bytes == 1000);
	CHECK(st.pending == 0 && st.garbage == 0);
	CHECK(query(p, "SELECT count(*) FROM chunks") == 1);
	store_close(s);
}

static void
abort_before_first_chunk(void)
{
	const char *p = unit_tmp_path("abort1.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_entry e;
	struct store_stats st;

	store_writer_abort(write_body(s, 1000, 1));
	CHECK(store_get(s, "GET", "http://x/", "", &e) == 0);
	CHECK(store_stats(s, 0, &st) == 0);
	CHECK(st.entries == 0 && st.pending == 0 && st.garbage == 0);
	store_close(s);
}

/* store.c: "Gives up a body: whatever was written becomes garbage." */
static void
abort_after_a_chunk_leaves_nothing(void)
{
	const char *p = unit_tmp_path("abort2.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_stats st;
	int rc;

	store_writer_abort(write_body(s, 300 * KIB, 1));
	rc = store_vacuum(s) == 0 && store_stats(s, 0, &st) == 0;
	store_close(s);
	CHECK(rc);
	if (st.pending != 0)
		printf("# %lld bodies still pending\n", st.pending);
	CHECK(st.entries == 0 && st.pending == 0 && st.garbage == 0);
	CHECK(query(p, "SELECT count(*) FROM chunks") == 0);
}

static void
remove_counts(void)
{
	struct store *s = store_open(unit_tmp_path("remove.db"), STORE_WRITE);

	CHECK(put(s, "GET", "http://x/a", 10, 1, 0) == 0);
	CHECK(put(s, "HEAD", "http://x/a", 0, 1, 0) == 0);
	CHECK(put(s, "GET", "http://x/b", 10, 2, 0) == 0);
	CHECK(store_remove(s, "http://x/a") == 2);
	CHECK(store_remove(s, "http://x/a") == 0);
	CHECK(store_remove(s, "http://x/*") == 0);	/* not a glob */
	CHECK(stored_as(s, "http://x/b", 10, 2));
	store_close(s);
}

static void
purges(void)
{
	static const struct { const char *url; time_t stale_at; } all[] = {
		{ "http://a/1", 100 }, { "http://a/2", 200 },
		{ "http://b/1", 100 },
	};
	static const struct {
		const char	*glob;
		time_t		 stale_by;
		long long	 removed;
	} rows[] = {
		{ "http://a/*", -1, 2 },
		{ NULL, 150, 2 },
		{ NULL, 99, 0 },
		{ "http://a/*", 150, 1 },
		{ "http://?/1", 100, 2 },
		{ NULL, -1, 3 },
		{ "nothing", -1, 0 },
	};
	struct store *s = store_open(unit_tmp_path("purge.db"), STORE_WRITE);
	struct store_stats st;
	size_t i, k;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		for (k = 0; k < sizeof all / sizeof all[0]; k++)
			CHECK(put(s, "GET", all[k].url, 5, 1,
			    all[k].stale_at) == 0);
		CHECK(store_purge(s, rows[i].glob, rows[i].stale_by) ==
		    rows[i].removed);
		CHECK(store_stats(s, 0, &st) == 0);
		if (st.entries != 3 - rows[i].removed)
			printf("# row %zu\n", i);
		CHECK(st.entries == 3 - rows[i].removed && st.garbage == 0);
	}
	store_close(s);
}

static void
stats(void)
{
	struct store *s = store_open(unit_tmp_path("stats.db"), STORE_WRITE);
	struct store_stats st;
	struct store_entry e;

	CHECK(put(s, "GET", "http://x/1", 10, 1, 100) == 0);
	CHECK(put(s, "GET", "http://x/2", 20, 1, 200) == 0);
	CHECK(put(s, "GET", "http://x/3", 30, 1, 300) == 0);
	CHECK(store_get(s, "GET", "http://x/2", "", &e) == 1);
	CHECK(store_hit(s, e.id, 1, 150) == 0 && store_hit(s, e.id, 1, 160) == 0);
	store_entry_free(&e);
	CHECK(store_stats(s, 200, &st) == 0);
	CHECK(st.entries == 3 && st.fresh == 1 && st.stale == 2);
	CHECK(st.bytes == 60 && st.hits == 2);
	CHECK(st.pending == 0 && st.garbage == 0 && st.file_bytes > 0);
	CHECK(store_get(s, "GET", "http://x/2", "", &e) == 1 && e.hits == 2);
	store_entry_free(&e);
	store_close(s);
}

static void
iterates_in_url_order(void)
{
	static const char *const urls[] = {
		"http://x/c", "http://y/b", "http://x/a", "http://x/b",
	};
	static const struct { const char *glob, *want; } rows[] = {
		{ NULL, "http://x/a http://x/b http://x/c http://y/b " },
		{ "http://x/*", "http://x/a http://x/b http://x/c " },
		{ "*/b", "http://x/b http://y/b " },
		{ "none", "" },
	};
	struct store *s = store_open(unit_tmp_path("iter.db"), STORE_WRITE);
	struct store_iter *it;
	struct store_entry e;
	struct buf got = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < sizeof urls / sizeof urls[0]; i++)
		CHECK(put(s, "GET", urls[i], 1, 1, 0) == 0);
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		buf_reset(&got);
		it = store_iter_new(s, rows[i].glob);
		while ((rc = store_iter_next(it, &e)) == 1) {
			buf_printf(&got, "%s ", e.url);
			store_entry_free(&e);
		}
		store_iter_free(it);
		if (rc != 0 || strcmp(buf_cstr(&got), rows[i].want) != 0)
			printf("# row %zu: %s\n", i, got.data);
		CHECK(rc == 0 && strcmp(got.data, rows[i].want) == 0);
	}
	buf_free(&got);
	store_close(s);
}

static void
vacuums(void)
{
	const char *p = unit_tmp_path("vacuum.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_stats st;

	CHECK(put(s, "GET", "http://x/1", 600 * KIB, 1, 0) == 0);
	CHECK(put(s, "GET", "http://x/2", 600 * KIB, 2, 0) == 0);
	CHECK(store_remove(s, "http://x/1") == 1);
	CHECK(store_vacuum(s) == 0);
	CHECK(store_stats(s, 0, &st) == 0);
	CHECK(st.entries == 1 && st.pending == 0 && st.garbage == 0);
	CHECK(st.file_bytes < 1000 * KIB);
	CHECK(stored_as(s, "http://x/2", 600 * KIB, 2));
	store_close(s);
}

static void
not_a_database(void)
{
	const char *p = unit_tmp_path("text.db");
	char junk[4096];
	FILE *f = fopen(p, "w");
	struct store *s;
	int mode;

	memset(junk, 'x', sizeof junk);
	CHECK(f != NULL && fwrite(junk, 1, sizeof junk, f) == sizeof junk);
	fclose(f);
	for (mode = STORE_READ; mode <= STORE_WRITE; mode++) {
		s = store_open(p, mode);
		if (store_status(s) != EX_DATAERR)
			printf("# mode %d: %s\n", mode, store_error(s));
		CHECK(store_status(s) == EX_DATAERR);
		CHECK(strstr(store_error(s), "file is not a database") != NULL);
		CHECK(strstr(store_error(s), p) != NULL);
		store_close(s);
	}
}

static void
read_missing_is_empty(void)
{
	const char *p = unit_tmp_path("missing.db");
	struct store *s = store_open(p, STORE_READ);
	struct store_iter *it;
	struct store_entry e;
	struct store_stats st;

	CHECK(store_status(s) == 0);
	CHECK(store_get(s, "GET", "http://x/", "", &e) == 0);
	it = store_iter_new(s, NULL);
	CHECK(it != NULL && store_iter_next(it, &e) == 0);
	store_iter_free(it);
	CHECK(store_stats(s, 0, &st) == 0 && st.entries == 0);
	store_close(s);
	CHECK(access(p, F_OK) < 0 && errno == ENOENT);
}

/* Outside a read transaction, a replaced body is an error, not wrong bytes. */
static void
replaced_body_is_an_error(void)
{
	const char *p = unit_tmp_path("race.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store *other = store_open(p, STORE_WRITE);
	struct store_entry e;
	struct store_body *b;
	struct source src;
	char buf[4096];
	ssize_t got;

	CHECK(put(s, "GET", "http://x/", 300 * KIB, 1, 0) == 0);
	CHECK(store_get(s, "GET", "http://x/", "", &e) == 1);
	CHECK(put(other, "GET", "http://x/", 300 * KIB, 2, 0) == 0);
	/* the open checks the body (store_body_check): it finds it gone */
	got = -1;
	if ((b = store_body_open(s, &e)) != NULL) {
		src = store_body_source(b);
		while ((got = src.read(src.ctx, buf, sizeof buf)) > 0)
			;
		store_body_close(b);
	}
	store_entry_free(&e);
	CHECK(got < 0);
	CHECK(strstr(store_error(s), "changed while reading") != NULL);
	store_close(other);
	store_close(s);
}

/* Inside a read transaction the old body stays readable. */
static void
snapshot_keeps_old_body(void)
{
	const char *p = unit_tmp_path("snapshot.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store *other = store_open(p, STORE_WRITE);
	struct store_entry e;

	CHECK(put(s, "GET", "http://x/", 300 * KIB, 1, 0) == 0);
	CHECK(store_read_begin(s) == 0);
	CHECK(store_get(s, "GET", "http://x/", "", &e) == 1);
	CHECK(put(other, "GET", "http://x/", 300 * KIB, 2, 0) == 0);
	CHECK(body_matches(s, &e, 1));
	store_entry_free(&e);
	store_read_end(s);
	CHECK(stored_as(s, "http://x/", 300 * KIB, 2));
	store_close(other);
	store_close(s);
}

/* A batch becomes visible to other connections at its end, all at once. */
static void
batch_commits_once(void)
{
	const char *p = unit_tmp_path("batch.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_stats st;

	store_batch_begin(s);
	CHECK(put(s, "GET", "http://x/1", 100, 1, 5000) == 0);
	CHECK(put(s, "GET", "http://x/2", 300 * KIB, 2, 5000) == 0);
	CHECK(put(s, "GET", "http://x/1", 200, 3, 5000) == 0);
	CHECK(query(p, "SELECT count(*) FROM entries") == 0);
	CHECK(store_batch_end(s) == 0);
	CHECK(query(p, "SELECT count(*) FROM entries") == 2);
	CHECK(stored_as(s, "http://x/1", 200, 3));
	CHECK(stored_as(s, "http://x/2", 300 * KIB, 2));
	CHECK(store_stats(s, 0, &st) == 0);
	CHECK(st.pending == 0 && st.garbage == 0);
	store_close(s);
}

/* Changes the file through a separate connection, as another process. */
static int
change(const char *file, const char *sql)
{
	sqlite3 *db;
	int rc;

	if (sqlite3_open(file, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* In a batch, a write that fails undoes its own changes only. */
static void
batch_keeps_others_on_failure(void)
{
	const char *p = unit_tmp_path("batch-fail.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_writer *w = write_body(s, 300 * KIB, 2);
	struct store_entry e = {
		.method = (char *)"GET", .url = (char *)"http://x/2",
		.variant = (char *)"", .status = 200, .headers = (char *)"",
		.date = -1,
	};

	/* A collector gave the growing body up, as after ten minutes. */
	CHECK(change(p, "UPDATE bodies SET state = 2") == 0);
	store_batch_begin(s);
	CHECK(put(s, "GET", "http://x/1", 100, 1, 5000) == 0);
	CHECK(store_writer_commit(w, &e) < 0);
	CHECK(strstr(store_error(s), "abandoned") != NULL);
	CHECK(!store_batch_lost(s));
	CHECK(put(s, "GET", "http://x/3", 100, 3, 5000) == 0);
	CHECK(store_batch_end(s) == 0);
	CHECK(stored_as(s, "http://x/1", 100, 1));
	CHECK(stored_as(s, "http://x/3", 100, 3));
	CHECK(query(p, "SELECT count(*) FROM entries") == 2);
	store_close(s);
}

/*
 * A full disk (here a file size limit) undoes a batch's whole
 * transaction: store_batch_lost says so, and later writes begin anew.
 */
static void
batch_lost_to_a_full_disk(void)
{
	const char *p = unit_tmp_path("batch-full.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct stat st;
	int put1, put2, lost, put3, end;

	CHECK(put(s, "GET", "http://x/0", 100, 1, 5000) == 0);
	CHECK(stat(p, &st) == 0);
	unit_file_limit((long long)st.st_size + 512 * KIB);
	store_batch_begin(s);
	put1 = put(s, "GET", "http://x/1", 100, 1, 5000);
	put2 = put(s, "GET", "http://x/2", 4096 * KIB, 2, 5000);
	lost = store_batch_lost(s);
	put3 = put(s, "GET", "http://x/3", 100, 3, 5000);
	end = store_batch_end(s);
	unit_file_limit_end();
	CHECK(put1 == 0);
	CHECK(put2 < 0);
	CHECK(lost);
	CHECK(put3 == 0);
	CHECK(end == 0);
	CHECK(stored_as(s, "http://x/0", 100, 1));
	CHECK(!stored_as(s, "http://x/1", 100, 1));
	CHECK(stored_as(s, "http://x/3", 100, 3));
	store_close(s);
}

static long long
entry_id(struct store *s, const char *url)
{
	struct store_entry e;
	long long id = -1;

	if (store_get(s, "GET", url, "", &e) == 1) {
		id = e.id;
		store_entry_free(&e);
	}
	return id;
}

/*
 * The size budget: the pages in use never pass it, expired entries go
 * first, then SIEVE's choice: the oldest entry not hit since the hand
 * last passed it; evictions are counted.
 */
static void
budget_evicts_by_sieve(void)
{
	const char *p = unit_tmp_path("budget.db");
	struct store *s = store_open(p, STORE_WRITE);
	long long evicted;
	char url[32];
	int i;

	store_set_max_size(s, 600 * KIB);
	/* an expired entry, then u1..u5: about 500 KiB of 100 KiB each */
	CHECK(put(s, "GET", "http://h/old", 100 * KIB, 9, 1) == 0);
	for (i = 1; i <= 4; i++) {
		snprintf(url, sizeof url, "http://h/u%d", i);
		CHECK(put(s, "GET", url, 100 * KIB, i, 4000000000) == 0);
	}
	CHECK(store_hit(s, entry_id(s, "http://h/u1"), 1, 100) == 0);
	CHECK(store_hit(s, entry_id(s, "http://h/u3"), 1, 100) == 0);
	/* the expired one goes first */
	CHECK(put(s, "GET", "http://h/u5", 100 * KIB, 5, 4000000000) == 0);
	CHECK(entry_id(s, "http://h/old") == -1);
	CHECK(entry_id(s, "http://h/u1") > 0);
	/* then u2: u1 was hit, so the hand passes it (clearing its bit) */
	CHECK(put(s, "GET", "http://h/u6", 100 * KIB, 6, 4000000000) == 0);
	CHECK(entry_id(s, "http://h/u2") == -1);
	CHECK(entry_id(s, "http://h/u1") > 0 && entry_id(s, "http://h/u3") > 0);
	/* then u4 (u3 was hit), then u5, then u1, whose bit was cleared */
	CHECK(put(s, "GET", "http://h/u7", 100 * KIB, 7, 4000000000) == 0);
	CHECK(entry_id(s, "http://h/u4") == -1);
	CHECK(stored_as(s, "http://h/u7", 100 * KIB, 7));
	CHECK(query(p, "SELECT (page_count - freelist_count) * page_size FROM "
	    "pragma_page_count, pragma_freelist_count, pragma_page_size") <=
	    600 * KIB);
	CHECK(query(p, "SELECT value FROM counters WHERE series = "
	    "'relay_cache_evictions_total'") == 3);
	/* shrinking evicts the same way: on from the hand, u5, u6, u7 */
	CHECK(store_shrink(s, 260 * KIB, &evicted) <= 260 * KIB);
	CHECK(evicted == 3);
	CHECK(entry_id(s, "http://h/u7") == -1);
	CHECK(stored_as(s, "http://h/u1", 100 * KIB, 1));
	CHECK(stored_as(s, "http://h/u3", 100 * KIB, 3));
	/* a body larger than the whole budget is not stored, and says why */
	CHECK(put(s, "GET", "http://h/huge", 700 * KIB, 8, 4000000000) < 0);
	CHECK(strstr(store_error(s), "larger than --max-size") != NULL);
	CHECK(entry_id(s, "http://h/huge") == -1);
	store_close(s);
}

/* Stores variant v of a URL, received at time t. */
static int
put_variant(struct store *s, const char *url, int v, time_t t)
{
	char variant[32];
	struct store_entry e = {
		.method = (char *)"GET", .url = (char *)url,
		.variant = variant, .status = 200,
		.headers = (char *)"Vary: Accept-Language\r\n",
		.request_time = t, .response_time = t, .date = -1,
		.lifetime = 60, .stale_at = 4000000000,
	};

	snprintf(variant, sizeof variant, "accept-language=l%d", v);
	return store_writer_commit(write_body(s, 10, v), &e);
}

/* Whether the query plan of sql names text: 1, 0, or -1 if it failed. */
static int
plan_has(const char *file, const char *sql, const char *text)
{
	struct buf q = BUF_INIT;
	sqlite3 *db;
	sqlite3_stmt *st;
	int found = -1;

	buf_printf(&q, "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, buf_cstr(&q), -1, &st, NULL) ==
	    SQLITE_OK) {
		found = 0;
		while (sqlite3_step(st) == SQLITE_ROW)
			found |= strstr((const char *)sqlite3_column_text(st,
			    3), text) != NULL;
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	buf_free(&q);
	return found;
}

/*
 * A URL keeps STORE_MAX_VARIANTS responses: storing more evicts those
 * used least recently (a hit counts as a use), never the one stored;
 * the newest is found by an index, whatever their number.
 */
static void
variants_are_capped(void)
{
	const char *p = unit_tmp_path("variants.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_entry e;
	char variant[32];
	int i;

	for (i = 0; i < STORE_MAX_VARIANTS; i++)
		CHECK(put_variant(s, "http://h/v", i, 1000 + i) == 0);
	CHECK(store_get(s, "GET", "http://h/v", "accept-language=l0", &e) == 1);
	CHECK(store_hit(s, e.id, 1, 5000) == 0);	/* l0: used last */
	store_entry_free(&e);
	for (; i < STORE_MAX_VARIANTS + 6; i++)
		CHECK(put_variant(s, "http://h/v", i, 1000 + i) == 0);
	CHECK(query(p, "SELECT count(*) FROM entries") == STORE_MAX_VARIANTS);
	CHECK(query(p, "SELECT value FROM counters WHERE series = "
	    "'relay_cache_evictions_total'") == 6);
	/* gone: l1 to l6, the oldest unused; kept: l0 (hit), l7 on */
	for (i = 0; i < STORE_MAX_VARIANTS + 6; i++) {
		snprintf(variant, sizeof variant, "accept-language=l%d", i);
		CHECK(store_get(s, "GET", "http://h/v", variant, &e) ==
		    (i >= 1 && i <= 6 ? 0 : 1));
		store_entry_free(&e);
	}
	/* their bodies go too */
	CHECK(query(p, "SELECT count(*) FROM bodies") == STORE_MAX_VARIANTS);
	CHECK(store_get(s, "GET", "http://h/v", NULL, &e) == 1);
	snprintf(variant, sizeof variant, "accept-language=l%d",
	    STORE_MAX_VARIANTS + 5);
	CHECK(strcmp(e.variant, variant) == 0);
	store_entry_free(&e);
	CHECK(plan_has(p, "SELECT id FROM entries WHERE method = 'GET' AND "
	    "url = 'http://h/v' ORDER BY response_time DESC LIMIT 1",
	    "TEMP B-TREE") == 0);
	store_close(s);
}

/*
 * An entry relay never stores: a write refuses it, and leaves nothing
 * of its body; one planted in the file is damage, which a lookup and
 * an iteration report, naming it, and an iteration goes past.
 */
static void
damage_is_refused(void)
{
	const char *p = unit_tmp_path("damage.db");
	struct store *s = store_open(p, STORE_WRITE);
	static const int statuses[] = { 0, 100, 199, 600, 999 };
	struct store_entry e = {
		.method = (char *)"GET", .url = (char *)"http://h/s",
		.variant = (char *)"", .headers = (char *)"",
		.request_time = 1000, .response_time = 1001, .date = -1,
		.lifetime = 60, .stale_at = 4000000000,
	};
	struct store_iter *it;
	size_t i;

	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		e.status = statuses[i];
		CHECK(store_writer_commit(write_body(s, 300 * KIB, 1), &e) < 0);
		CHECK(store_status(s) == EX_DATAERR);
		CHECK(strstr(store_error(s), "is not a final status") != NULL);
	}
	e.status = 200;
	e.method = (char *)"G ET";
	CHECK(store_writer_commit(write_body(s, 10, 1), &e) < 0);
	CHECK(strstr(store_error(s), "is not a method name") != NULL);
	CHECK(query(p, "SELECT count(*) FROM entries") == 0);
	CHECK(query(p, "SELECT count(*) FROM chunks") == 0);	/* deleted */
	CHECK(put(s, "GET", "http://h/a", 10, 1, 4000000000) == 0);
	CHECK(put(s, "GET", "http://h/b", 10, 2, 4000000000) == 0);
	CHECK(put(s, "GET", "http://h/c", 10, 3, 4000000000) == 0);
	CHECK(change(p, "UPDATE entries SET status = 100 WHERE url = "
	    "'http://h/b'") == 0);
	CHECK(store_get(s, "GET", "http://h/b", NULL, &e) == STORE_DAMAGED);
	CHECK(store_status(s) == EX_DATAERR);
	CHECK(strstr(store_error(s), "entry 'http://h/b' is damaged: status "
	    "100 is not a final status (200 to 599)") != NULL);
	CHECK((it = store_iter_new(s, NULL)) != NULL);
	CHECK(store_iter_next(it, &e) == 1 && strcmp(e.url, "http://h/a") == 0);
	store_entry_free(&e);
	CHECK(store_iter_next(it, &e) == STORE_DAMAGED);
	CHECK(store_iter_next(it, &e) == 1 && strcmp(e.url, "http://h/c") == 0);
	store_entry_free(&e);
	CHECK(store_iter_next(it, &e) == 0);
	store_iter_free(it);
	store_close(s);
}

/*
 * A schema object relay did not create, planted before it opens the
 * file or while it has it open, is refused and never runs.
 */
static void
planted_objects_are_refused(void)
{
	const char *p = unit_tmp_path("planted.db");
	struct store *s = store_open(p, STORE_WRITE);

	CHECK(put(s, "GET", "http://h/a", 10, 1, 4000000000) == 0);
	CHECK(change(p, "CREATE TRIGGER wipe AFTER INSERT ON entries BEGIN "
	    "DELETE FROM entries; END") == 0);
	/* while open: the next write sees it, and changes nothing */
	CHECK(put(s, "GET", "http://h/b", 10, 2, 4000000000) < 0);
	CHECK(store_status(s) == EX_DATAERR);
	CHECK(strstr(store_error(s), "it has trigger 'wipe' that relay did "
	    "not create") != NULL);
	CHECK(query(p, "SELECT count(*) FROM entries") == 1);
	store_close(s);
	/* at open, for reading and writing */
	s = store_open(p, STORE_READ);
	CHECK(store_status(s) == EX_DATAERR);
	store_close(s);
	s = store_open(p, STORE_WRITE);
	CHECK(store_status(s) == EX_DATAERR);
	store_close(s);
	CHECK(query(p, "SELECT count(*) FROM entries") == 1);
}

/* The store's error after a get of url, which must fail as damage. */
static const char *
damage_of(struct store *s, const char *url)
{
	struct store_entry e;
	int found = store_get(s, "GET", url, NULL, &e);

	if (found == 1)
		store_entry_free(&e);
	if (found != STORE_DAMAGED)
		return "";
	return store_status(s) == EX_DATAERR ? store_error(s) : "";
}

/*
 * A field value with a control character but HTAB (RFC 9110 section
 * 5.5), or a line not ended by CRLF: refused by every write, and
 * damage when planted, so that no reader ever writes it out.
 */
static void
fields_with_controls_are_refused(void)
{
	static const char *const bad[] = { "X-Evil: a\x1b]0;t\x07\r\n",
		"X: bell\a\r\n", "X: del\x7f\r\n", "X: bare\rcr\r\n",
		"X: bare\nlf\r\n", "X: ok\r\nY: unended", "\x1b: v\r\n" };
	const char *p = unit_tmp_path("fields.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_entry e = {
		.method = (char *)"GET", .url = (char *)"http://h/f",
		.variant = (char *)"", .status = 200,
		.request_time = 1000, .response_time = 1001, .date = -1,
		.lifetime = 60, .stale_at = 4000000000,
	};
	char why[160];
	size_t i;

	CHECK(store_fields_invalid("A: tab\there\r\nB: \xc3\xa5\r\n", why,
	    sizeof why) == NULL);
	CHECK(store_fields_invalid("", why, sizeof why) == NULL);
	CHECK(strcmp(store_fields_invalid(bad[0], why, sizeof why), "field "
	    "'X-Evil' has the control character \\x1B: a value may have "
	    "HTAB only (RFC 9110 section 5.5)") == 0);
	CHECK(strcmp(store_fields_invalid(bad[5], why, sizeof why),
	    "field 'Y' does not end in CRLF") == 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		e.headers = (char *)bad[i];
		CHECK(store_fields_invalid(bad[i], why, sizeof why) != NULL);
		CHECK(store_writer_commit(write_body(s, 10, 1), &e) < 0);
		CHECK(store_status(s) == EX_DATAERR);
	}
	CHECK(query(p, "SELECT count(*) FROM entries") == 0);
	CHECK(put(s, "GET", "http://h/f", 10, 1, 4000000000) == 0);
	CHECK(change(p, "UPDATE entries SET headers = 'X: a' || char(27) || "
	    "char(13) || char(10)") == 0);
	CHECK(strstr(damage_of(s, "http://h/f"), "entry 'http://h/f' is "
	    "damaged: field 'X' has the control character \\x1B") != NULL);
	store_close(s);
}

/*
 * A column of another type than relay writes it in: never read as
 * some number SQLite makes of it.
 */
static void
mistyped_columns_are_damage(void)
{
	static const struct { const char *set, *why; } planted[] = {
		{ "status = '200abc'", "its status is text, not an integer" },
		{ "status = 200.5", "its status is a real number, not an "
		    "integer" },
		{ "status = x'c8'", "its status is a blob, not an integer" },
		{ "stale_at = '4000000000x'", "its stale_at is text, not an "
		    "integer" },
		{ "size = 10.5", "its size is a real number, not an integer" },
		{ "date = x'00'", "its date is a blob, not an integer" },
		{ "headers = x'41'", "its headers is a blob, not text" },
		{ "etag = x'37'", "its etag is a blob, not text" },
		{ "headers = 'X: a' || char(0) || char(13) || char(10)",
		    "its headers has a NUL byte" },
		{ "stale_at = -9223372036854775808", "stale_at "
		    "-9223372036854775808 is out of bounds (-2^42 to 2^42 "
		    "seconds)" },
		{ "lifetime = -1", "lifetime -1 is out of bounds (0 to 2^42 "
		    "seconds)" },
		{ "age = 4398046511105", "age 4398046511105 is out of bounds" },
	};
	const char *p = unit_tmp_path("types.db");
	struct store *s = store_open(p, STORE_WRITE);
	char sql[200];
	size_t i;

	CHECK(put(s, "GET", "http://h/t", 10, 1, 4000000000) == 0);
	for (i = 0; i < sizeof planted / sizeof planted[0]; i++) {
		snprintf(sql, sizeof sql, "UPDATE entries SET %s",
		    planted[i].set);
		CHECK(change(p, sql) == 0);
		if (strstr(damage_of(s, "http://h/t"), planted[i].why) ==
		    NULL) {
			printf("# %s: %s\n", planted[i].set, store_error(s));
			CHECK(0);
		}
		CHECK(change(p, "UPDATE entries SET status = 200, method = "
		    "'GET', stale_at = 4000000000, size = 10, date = NULL, "
		    "headers = '', etag = NULL, lifetime = 60, age = 0") == 0);
		CHECK(stored_as(s, "http://h/t", 10, 1));
	}
	store_close(s);
}

/*
 * A body not as relay writes it, whoever reads it: store_body_open
 * refuses it, and store_iter_next goes on past its entry.
 */
static void
bodies_are_checked_for_every_reader(void)
{
#define OF_B " body = (SELECT body FROM entries WHERE url = 'http://h/b')"
	static const char *const planted[] = {
		"UPDATE chunks SET seq = seq + 10 WHERE" OF_B,
		"UPDATE chunks SET data = CAST(data AS TEXT) WHERE seq = 1"
		    " AND" OF_B,
		"UPDATE chunks SET seq = 1.5 WHERE seq = 1 AND" OF_B,
		"UPDATE chunks SET data = data || zeroblob(10) WHERE seq = 0"
		    " AND" OF_B,
		"DELETE FROM chunks WHERE seq = 0 AND" OF_B,
		"UPDATE bodies SET state = 0 WHERE id = (SELECT body FROM"
		    " entries WHERE url = 'http://h/b')",
	};
#undef OF_B
	const char *p = unit_tmp_path("bodies.db");
	struct store *s = store_open(p, STORE_WRITE);
	struct store_entry e;
	struct store_iter *it;
	size_t i;

	for (i = 0; i < sizeof planted / sizeof planted[0]; i++) {
		CHECK(put(s, "GET", "http://h/a", 10, 1, 4000000000) == 0);
		CHECK(put(s, "GET", "http://h/b", 300 * KIB, 2, 4000000000) ==
		    0);
		CHECK(change(p, planted[i]) == 0);
		CHECK(store_get(s, "GET", "http://h/b", NULL, &e) == 1);
		CHECK(store_body_open(s, &e) == NULL);
		CHECK(store_status(s) == EX_DATAERR);
		CHECK(strstr(store_error(s), "entry 'http://h/b' is damaged: "
		    "its body") != NULL);
		store_entry_free(&e);
		CHECK((it = store_iter_new(s, NULL)) != NULL);
		CHECK(store_iter_next(it, &e) == 1);
		store_entry_free(&e);
		CHECK(store_iter_next(it, &e) == STORE_DAMAGED);
		CHECK(store_iter_next(it, &e) == 0);
		store_iter_free(it);
		CHECK(store_remove(s, "http://h/b") == 1);
	}
	CHECK(stored_as(s, "http://h/a", 10, 1));
	store_close(s);
}

/*
 * Rows relay keeps one of, or a sequence, changed by another program:
 * a write that fails on them says which, as damage (65), not as a full
 * disk or a constraint.
 */
static void
damaged_singletons_are_named(void)
{
	static const struct { const char *sql, *why; } planted[] = {
		{ "UPDATE sqlite_sequence SET seq = 9223372036854775807"
		    " WHERE name = 'bodies'", "its table 'sqlite_sequence' is "
		    "damaged: the sequence of 'bodies' is past 2^62" },
		{ "DELETE FROM sync", "its table 'sync' is damaged: 0 rows, "
		    "not one" },
		{ "INSERT INTO chunks VALUES (1000, 0, x'00')",
		    "its table 'chunks' is damaged: it has rows of body 1000, "
		    "which relay had not made" },
	};
	const char *p = unit_tmp_path("singletons.db");
	struct store *s = store_open(p, STORE_WRITE);
	size_t i;

	CHECK(put(s, "GET", "http://h/a", 10, 1, 4000000000) == 0);
	CHECK(change(p, "UPDATE sqlite_sequence SET seq = 999 WHERE name = "
	    "'bodies'") == 0);
	for (i = 0; i < sizeof planted / sizeof planted[0]; i++) {
		CHECK(change(p, planted[i].sql) == 0);
		CHECK(put(s, "GET", "http://h/b", 300 * KIB, 2, 4000000000) < 0);
		if (store_status(s) != EX_DATAERR ||
		    strstr(store_error(s), planted[i].why) == NULL) {
			printf("# %s: %s\n", planted[i].sql, store_error(s));
			CHECK(0);
		}
		CHECK(change(p, "UPDATE sqlite_sequence SET seq = 999 WHERE "
		    "name = 'bodies'; DELETE FROM sync; INSERT INTO sync "
		    "VALUES (10, 0); DELETE FROM chunks WHERE body = 1000") ==
		    0);
	}
	CHECK(put(s, "GET", "http://h/b", 300 * KIB, 2, 4000000000) == 0);
	CHECK(stored_as(s, "http://h/b", 300 * KIB, 2));
	store_close(s);
}

/* A user_version below 0 is no version relay ever set. */
static void
unknown_version_is_named(void)
{
	const char *p = unit_tmp_path("version.db");
	struct store *s = store_open(p, STORE_WRITE);

	store_close(s);
	CHECK(change(p, "PRAGMA user_version = -1") == 0);
	s = store_open(p, STORE_READ);
	CHECK(store_status(s) == EX_DATAERR);
	CHECK(strstr(store_error(s), "unknown schema version -1") != NULL);
	store_close(s);
}

static const struct unit_test tests[] = {
	TEST(open_write_creates),
	TEST(body_across_chunks),
	TEST(replace_keeps_one),
	TEST(abort_before_first_chunk),
	TEST(abort_after_a_chunk_leaves_nothing),
	TEST(remove_counts),
	TEST(purges),
	TEST(stats),
	TEST(iterates_in_url_order),
	TEST(vacuums),
	TEST(not_a_database),
	TEST(read_missing_is_empty),
	TEST(replaced_body_is_an_error),
	TEST(snapshot_keeps_old_body),
	TEST(batch_commits_once),
	TEST(batch_keeps_others_on_failure),
	TEST(batch_lost_to_a_full_disk),
	TEST(budget_evicts_by_sieve),
	TEST(variants_are_capped),
	TEST(damage_is_refused),
	TEST(planted_objects_are_refused),
	TEST(fields_with_controls_are_refused),
	TEST(mistyped_columns_are_damage),
	TEST(bodies_are_checked_for_every_reader),
	TEST(damaged_singletons_are_named),
	TEST(unknown_version_is_named),
};

UNIT_MAIN(tests)
