/*
 * The cache file's entries: reading and judging them, finding one,
 * listing them, changes for sync, removing and purging, refreshing,
 * hit-for-miss marks, hits, counters and statistics.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "base/buf.h"
#include "base/text.h"
#include "http/http.h"
#include "store/db.h"

char *
db_column_text(sqlite3_stmt *st, int col)
{
	const unsigned char *p = sqlite3_column_text(st, col);

	return p != NULL ? xstrdup((const char *)p) : NULL;
}

static const char *
type_name(int type)
{
	switch (type) {
	case SQLITE_INTEGER: return "an integer";
	case SQLITE_FLOAT: return "a real number";
	case SQLITE_TEXT: return "text";
	case SQLITE_BLOB: return "a blob";
	default: return "NULL";
	}
}

/*
 * Why a row's columns are not of the types relay writes them in, or
 * NULL: types has a letter a column, i for INTEGER, t for TEXT (with
 * no NUL in it), b for BLOB, in upper case if NULL may stand in. A
 * value SQLite could not make an integer ('200abc', 200.5, a blob)
 * would otherwise be read as some other number. Called before any
 * other sqlite3_column_ call, which may convert the value.
 */
const char *
db_columns_invalid(sqlite3_stmt *st, const char *types, char *why, size_t len)
{
	const unsigned char *text;
	int i, have, want, lower;

	for (i = 0; types[i] != '\0'; i++) {
		lower = types[i] | 0x20;
		assert(lower == 'i' || lower == 't' || lower == 'b');
		want = lower == 'i' ? SQLITE_INTEGER : lower == 't' ?
		    SQLITE_TEXT : SQLITE_BLOB;
		have = sqlite3_column_type(st, i);
		if (have == SQLITE_NULL && types[i] != lower)
			continue;
		if (have != want) {
			snprintf(why, len, "its %s is %s, not %s",
			    sqlite3_column_name(st, i), type_name(have),
			    type_name(want));
			return why;
		}
		if (have == SQLITE_TEXT && (text = sqlite3_column_text(st, i)) !=
		    NULL && strlen((const char *)text) !=
		    (size_t)sqlite3_column_bytes(st, i)) {
			snprintf(why, len, "its %s has a NUL byte",
			    sqlite3_column_name(st, i));
			return why;
		}
	}
	return NULL;
}

/* The types of ENTRY_COLUMNS (columns_invalid). */
static const char entry_types[] = "itttitiiIiiiTTiii";

static void
read_entry(sqlite3_stmt *st, struct store_entry *e)
{
	e->id = sqlite3_column_int64(st, 0);
	e->method = db_column_text(st, 1);
	e->url = db_column_text(st, 2);
	e->variant = db_column_text(st, 3);
	e->status = sqlite3_column_int(st, 4);
	e->headers = db_column_text(st, 5);
	e->request_time = (time_t)sqlite3_column_int64(st, 6);
	e->response_time = (time_t)sqlite3_column_int64(st, 7);
	e->date = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 :
	    (time_t)sqlite3_column_int64(st, 8);
	e->age = sqlite3_column_int64(st, 9);
	e->lifetime = sqlite3_column_int64(st, 10);
	e->stale_at = (time_t)sqlite3_column_int64(st, 11);
	e->etag = db_column_text(st, 12);
	e->last_modified = db_column_text(st, 13);
	e->body = sqlite3_column_int64(st, 14);
	e->size = sqlite3_column_int64(st, 15);
	e->hits = sqlite3_column_int64(st, 16);
	if (e->headers == NULL)
		e->headers = xstrdup("");
}

/* Whether a validator (NULL: none) can go into a request field as it is. */
static int
field_value(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;	/* RFC 9110 5.5 */
}

/*
 * Why a block of header fields is not one relay stores, or NULL: it is
 * lines that each end in CRLF, with no other control character than
 * HTAB (RFC 9110 section 5.5: a field value is visible characters,
 * obs-text, SP and HTAB), so that a field read back can neither split
 * into two nor drive a terminal (relay-cache get -i).
 */
const char *
store_fields_invalid(const char *headers, char *why, size_t len)
{
	const unsigned char *p = (const unsigned char *)headers, *line = p;
	char *name, *shown;

	for (; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n')
			line = ++p + 1;
		else if (*p < 0x20 && *p != '\t')
			break;
		else if (*p == 0x7F)
			break;
	}
	if (*p == '\0' && line == p)
		return NULL;
	name = xstrndup((const char *)line, strcspn((const char *)line,
	    ":\r\n"));
	shown = text_printable(name, 0);
	if (*p == '\0')
		snprintf(why, len, "field '%.40s' does not end in CRLF", shown);
	else
		snprintf(why, len, "field '%.40s' has the control character "
		    "\\x%02X: a value may have HTAB only (RFC 9110 section "
		    "5.5)", shown, *p);
	free(name);
	free(shown);
	return why;
}

/* Whether t is a time or duration of an entry (STORE_TIME_MAX). */
static int
time_valid(long long t, long long min)
{
	return t >= min && t <= STORE_TIME_MAX;
}

/*
 * Why an entry is one relay never stores, or NULL: a status that is
 * not final (RFC 9110 section 15: a stored response is a final one, and
 * codes past 599 are not defined), a method that is not a method name,
 * a negative size, a time or duration out of bounds (STORE_TIME_MAX),
 * fields with control characters (store_fields_invalid), a validator
 * that is no field value (sent back in If-None-Match, it would add
 * fields of its own). Writes refuse it; reads take it for damage.
 */
const char *
store_entry_invalid(const struct store_entry *e, char *why, size_t len)
{
	const struct { const char *name; long long value, min; } times[] = {
		{ "request_time", e->request_time, -STORE_TIME_MAX },
		{ "response_time", e->response_time, -STORE_TIME_MAX },
		{ "date", e->date, -STORE_TIME_MAX },
		{ "age", e->age, 0 },
		{ "lifetime", e->lifetime, 0 },
		{ "stale_at", e->stale_at, -STORE_TIME_MAX },
	};
	char *shown;
	size_t i;

	if (e->status < 200 || e->status > 599) {
		snprintf(why, len, "status %d is not a final status (200 to "
		    "599)", e->status);
		return why;
	}
	if (e->method == NULL || !http_method_valid(e->method)) {
		shown = text_printable(e->method != NULL ? e->method : "", 0);
		snprintf(why, len, "method '%.40s' is not a method name, a "
		    "token of at most %d characters", shown, HTTP_MAX_METHOD);
		free(shown);
		return why;
	}
	if (e->size < 0) {
		snprintf(why, len, "size %lld is negative", e->size);
		return why;
	}
	if (!field_value(e->etag) || !field_value(e->last_modified)) {
		snprintf(why, len, "its %s holds a CR or LF: it is no field "
		    "value", field_value(e->etag) ? "Last-Modified" : "ETag");
		return why;
	}
	for (i = 0; i < sizeof times / sizeof times[0]; i++)
		if (!time_valid(times[i].value, times[i].min)) {
			snprintf(why, len, "%s %lld is out of bounds (%s to "
			    "2^42 seconds)", times[i].name, times[i].value,
			    times[i].min < 0 ? "-2^42" : "0");
			return why;
		}
	return store_fields_invalid(e->headers != NULL ? e->headers : "", why,
	    len);
}

/*
 * Records that entry id (whose URL is url, or NULL to look it up) is
 * not as relay writes entries: "entry 'URL' is damaged: why".
 */
int
db_damaged(struct store *s, long long id, const char *url, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	char why[200], *shown;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (url == NULL && (st = db_stmt(s, ST_ENTRY_URL)) != NULL) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW)
			url = (const char *)sqlite3_column_text(st, 0);
	}
	shown = text_printable(url != NULL ? url : "?", 0);
	db_fail_msg(s, EX_DATAERR, "cannot read cache '%s': entry '%.200s' is "
	    "damaged: %s", s->path, shown, why);
	free(shown);
	if (st != NULL)
		sqlite3_reset(st);
	return STORE_DAMAGED;
}

/*
 * Reads a row as read_entry does, and refuses one relay never wrote:
 * the entry is then freed and store_error names it.
 */
int
db_read_row(struct store *s, sqlite3_stmt *st, struct store_entry *e)
{
	char why[160];

	if (db_columns_invalid(st, entry_types, why, sizeof why) != NULL) {
		memset(e, 0, sizeof *e);
		return db_damaged(s, sqlite3_column_int64(st, 0), NULL, "%s", why);
	}
	read_entry(st, e);
	if (store_entry_invalid(e, why, sizeof why) == NULL)
		return 0;
	db_damaged(s, e->id, e->url, "%s", why);
	store_entry_free(e);
	return STORE_DAMAGED;
}

void
store_entry_free(struct store_entry *e)
{
	free(e->method);
	free(e->url);
	free(e->variant);
	free(e->headers);
	free(e->etag);
	free(e->last_modified);
	memset(e, 0, sizeof *e);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Makes dst a copy of src with strings of its own (store_entry_free). */
void
store_entry_copy(struct store_entry *dst, const struct store_entry *src)
{
	*dst = *src;
	dst->method = dup_or_null(src->method);
	dst->url = dup_or_null(src->url);
	dst->variant = dup_or_null(src->variant);
	dst->headers = dup_or_null(src->headers);
	dst->etag = dup_or_null(src->etag);
	dst->last_modified = dup_or_null(src->last_modified);
}

/*
 * Looks up an entry; variant NULL means the most recent of any
 * variant. Returns 1 if found, 0 if not, STORE_DAMAGED if the entry
 * is damaged (store_entry_invalid), -1 on another error: store_error
 * says which.
 */
int
store_get(struct store *s, const char *method, const char *url,
    const char *variant, struct store_entry *e)
{
	sqlite3_stmt *st = db_stmt(s, variant ? ST_GET : ST_GET_ANY);
	int rc, found;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, method, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	if (variant != NULL)
		sqlite3_bind_text(st, 3, variant, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		found = db_read_row(s, st, e) == 0 ? 1 : STORE_DAMAGED;
	else
		found = rc == SQLITE_DONE ? 0 : db_fail(s, rc, "read");
	sqlite3_reset(st);
	return found;
}

/* Entries whose URL matches a GLOB (NULL: all), in URL order. */
struct store_iter *
store_iter_new(struct store *s, const char *glob)
{
	static const char sql[] = "SELECT " ENTRY_COLUMNS " FROM entries"
	    " WHERE ?1 IS NULL OR url GLOB ?1 ORDER BY url, method, variant";
	struct store_iter *it = xcalloc(1, sizeof *it);
	int rc;

	it->s = s;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &it->st, NULL);
	if (rc != SQLITE_OK) {
		db_fail(s, rc, "read");
		free(it);
		return NULL;
	}
	db_bind_text(it->st, 1, glob);
	return it;
}

/*
 * Returns 1 with the next entry, 0 at the end, -1 on error, or
 * STORE_DAMAGED for an entry relay never wrote (store_error names it),
 * after which the next call goes on.
 */
int
store_iter_next(struct store_iter *it, struct store_entry *e)
{
	int rc = sqlite3_step(it->st);

	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : db_fail(it->s, rc, "read");
	if (db_read_row(it->s, it->st, e) < 0)
		return STORE_DAMAGED;
	if ((rc = store_body_check(it->s, e)) < 0)
		store_entry_free(e);
	return rc < 0 ? rc : 1;
}

void
store_iter_free(struct store_iter *it)
{
	if (it == NULL)
		return;
	sqlite3_finalize(it->st);
	free(it);
}

/*
 * The GET entries under a URL prefix whose change number is in
 * (after, upto], in its order, at most limit (migration 5).
 */
struct store_iter *
store_changes_new(struct store *s, const char *prefix, long long after,
    long long upto, int limit)
{
	static const char sql[] = "SELECT " ENTRY_COLUMNS ", changed"
	    " FROM entries WHERE changed > ?1 AND changed <= ?2"
	    " AND method = 'GET' AND substr(url, 1, length(?3)) = ?3"
	    " ORDER BY changed LIMIT ?4";
	struct store_iter *it = xcalloc(1, sizeof *it);
	int rc;

	it->s = s;
	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &it->st, NULL)) !=
	    SQLITE_OK) {
		db_fail(s, rc, "read");
		free(it);
		return NULL;
	}
	sqlite3_bind_int64(it->st, 1, after);
	sqlite3_bind_int64(it->st, 2, upto);
	sqlite3_bind_text(it->st, 3, prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(it->st, 4, limit);
	return it;
}

/*
 * store_iter_next for store_changes_new: the entry and its number; for
 * STORE_DAMAGED, its number alone, so that a page goes on past it.
 */
int
store_changes_next(struct store_iter *it, struct store_entry *e,
    long long *changed)
{
	int rc;

	/*
	 * A change number of another type (planted) is damage that cannot
	 * be passed by number (a text one sorts after every number): such
	 * a row is skipped here, and never sent.
	 */
	while (((rc = store_iter_next(it, e)) > 0 || rc == STORE_DAMAGED) &&
	    sqlite3_column_type(it->st, 17) != SQLITE_INTEGER)
		if (rc > 0)
			store_entry_free(e);
	if (rc > 0 || rc == STORE_DAMAGED)
		*changed = sqlite3_column_int64(it->st, 17);
	return rc;
}

/* The newest change number, and the horizon of whole deltas. */
int
store_sync_mark(struct store *s, long long *seq, long long *horizon)
{
	sqlite3_stmt *st = db_stmt(s, ST_SYNC_MARK);
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		*horizon = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);	/* no read transaction is left open */
	return rc == SQLITE_ROW ? 0 : db_fail(s, rc, "read");
}

/* Runs a body-dropping and an entry-deleting statement as one change. */
static long long
delete_entries(struct store *s, sqlite3_stmt *bodies, sqlite3_stmt *entries)
{
	long long n;

	if (db_run(s, bodies, "write to") < 0 || db_run(s, entries, "write to") < 0) {
		db_rollback(s);
		return -1;
	}
	n = sqlite3_changes(s->db);
	s->garbage = 1;
	if (db_commit(s) < 0 || db_collect(s, 0) < 0)
		return -1;
	return n;
}

/* Removes every method and variant of a URL; returns how many entries. */
long long
store_remove(struct store *s, const char *url)
{
	sqlite3_stmt *bodies, *entries;

	if (db_begin_write(s) < 0)
		return -1;
	bodies = db_stmt(s, ST_DROP_URL_BODIES);
	entries = db_stmt(s, ST_DROP_URL);
	if (bodies == NULL || entries == NULL) {
		db_rollback(s);
		return -1;
	}
	sqlite3_bind_text(bodies, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_text(entries, 1, url, -1, SQLITE_STATIC);
	return delete_entries(s, bodies, entries);
}

/*
 * Removes entries whose URL matches glob (NULL: any) and, unless
 * stale_by is -1, that are stale at that time.
 */
long long
store_purge(struct store *s, const char *glob, time_t stale_by)
{
	sqlite3_stmt *st[2];
	int i;

	if (db_begin_write(s) < 0)
		return -1;
	st[0] = db_stmt(s, ST_PURGE_BODIES);
	st[1] = db_stmt(s, ST_PURGE);
	for (i = 0; i < 2; i++) {
		if (st[i] == NULL) {
			db_rollback(s);
			return -1;
		}
		db_bind_text(st[i], 1, glob);
		if (stale_by != -1)
			sqlite3_bind_int64(st[i], 2, (sqlite3_int64)stale_by);
	}
	return delete_entries(s, st[0], st[1]);
}

/*
 * Updates an entry's head and freshness after a 304 (RFC 9111 section
 * 4.3.4) without touching its body. Returns 1, or 0 if the entry was
 * replaced or removed meanwhile, or -1.
 */
int
store_refresh(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st;
	int n;

	if (db_begin_write(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_REFRESH)) == NULL) {
		db_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, e->id);
	db_bind_head(st, 2, e);
	if (db_run(s, st, "write to") < 0) {
		db_rollback(s);
		return -1;
	}
	n = sqlite3_changes(s->db);
	return db_commit(s) < 0 ? -1 : n;
}

/*
 * Marks a URL whose response could not be stored, until a time: while
 * marked, requests for it need not wait for one another (coalescing
 * would only queue them). A time of 0 clears the mark.
 */
int
store_mark_uncacheable(struct store *s, const char *url, time_t until)
{
	sqlite3_stmt *st;

	if (db_begin_write(s) < 0)
		return -1;
	if ((st = db_stmt(s, until > 0 ? ST_MARK : ST_UNMARK)) == NULL) {
		db_rollback(s);
		return -1;
	}
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	if (until > 0)
		sqlite3_bind_int64(st, 2, (sqlite3_int64)until);
	if (db_run(s, st, "write to") < 0) {
		db_rollback(s);
		return -1;
	}
	return db_commit(s);
}

/* Whether url is marked uncacheable at now: 1, 0, or -1 on error. */
int
store_uncacheable(struct store *s, const char *url, time_t now)
{
	sqlite3_stmt *st = db_stmt(s, ST_MARKED);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	return db_fail(s, rc, "read");
}

int
store_hit(struct store *s, long long id, long long n, time_t now)
{
	sqlite3_stmt *st;

	if (db_begin_write(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_HIT)) == NULL) {
		db_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 3, n);
	if (db_run(s, st, "write to") < 0) {
		db_rollback(s);
		return -1;
	}
	return db_commit(s);
}

/* Adds to counters, given as lines of "DELTA SERIES" (metrics_take). */
int
store_count(struct store *s, const char *lines)
{
	sqlite3_stmt *st;
	const char *end;
	char *name;
	long long delta;

	if (db_begin_write(s) < 0)
		return -1;
	for (; *lines != '\0'; lines = end + 1) {
		delta = strtoll(lines, &name, 10);
		if (*name++ != ' ' || (end = strchr(name, '\n')) == NULL ||
		    (st = db_stmt(s, ST_COUNTER_ADD)) == NULL)
			break;
		sqlite3_bind_text(st, 1, name, (int)(end - name), SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, delta);
		if (db_run(s, st, "write to") < 0)
			break;
	}
	if (*lines != '\0') {
		db_rollback(s);
		return -1;
	}
	return db_commit(s);
}

/*
 * Calls fn with each counter's series and value, in one snapshot; a
 * row of other types than relay writes fails it (store_error).
 */
int
store_counters(struct store *s, void (*fn)(void *, const char *, size_t,
    long long), void *ctx)
{
	sqlite3_stmt *st;
	char why[160], *series;
	int rc;

	if (store_read_begin(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_COUNTERS)) == NULL) {
		store_read_end(s);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    db_columns_invalid(st, "ti", why, sizeof why) == NULL)
		fn(ctx, (const char *)sqlite3_column_text(st, 0),
		    (size_t)sqlite3_column_bytes(st, 0),
		    sqlite3_column_int64(st, 1));
	if (rc == SQLITE_ROW) {
		series = text_printable((const char *)sqlite3_column_text(st,
		    0), 0);
		db_fail_msg(s, EX_DATAERR, "cannot read cache '%s': its table "
		    "'counters' is damaged: series '%.100s': %s", s->path,
		    series, why);
		free(series);
	} else if (rc != SQLITE_DONE)
		db_fail(s, rc, "read");
	sqlite3_reset(st);
	store_read_end(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

long long
db_file_size(const char *path, const char *suffix)
{
	struct buf name = BUF_INIT;
	struct stat sb;
	long long n;

	buf_adds(&name, path);
	buf_adds(&name, suffix);
	n = stat(buf_cstr(&name), &sb) == 0 ? (long long)sb.st_size : 0;
	buf_free(&name);
	return n;
}

int
store_stats(struct store *s, time_t now, struct store_stats *out)
{
	sqlite3_stmt *st;
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (store_read_begin(s) < 0)
		return -1;
	if ((st = db_stmt(s, ST_STATS_ENTRIES)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		goto fail;
	out->entries = sqlite3_column_int64(st, 0);
	out->fresh = sqlite3_column_int64(st, 1);
	out->stale = out->entries - out->fresh;
	out->bytes = sqlite3_column_int64(st, 2);
	out->hits = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	if ((st = db_stmt(s, ST_STATS_BODIES)) == NULL)
		goto out;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW)
		goto fail;
	out->pending = sqlite3_column_int64(st, 0);
	out->garbage = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	out->file_bytes = db_file_size(s->path, "") + db_file_size(s->path, "-wal");
	rc = 0;
	goto out;
fail:
	db_fail(s, rc, "read");
	sqlite3_reset(st);
	rc = -1;
out:
	store_read_end(s);
	return rc;
}
