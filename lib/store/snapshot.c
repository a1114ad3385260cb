/*
 * Snapshots: a temporary SQLite file, written without a journal (it
 * is thrown away if anything fails), one transaction a page, then
 * closed, opened for reading and unlinked, so that nothing is left
 * behind however the answer ends.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "store/snapshot.h"

/* The journal in memory: the defensive mode (store_harden) refuses OFF. */
static const char schema[] =
    "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;"
    "CREATE TABLE sync (kind TEXT NOT NULL, since INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL);"
    "CREATE TABLE records (url TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  status INTEGER NOT NULL, deleted INTEGER NOT NULL,"
    "  headers TEXT NOT NULL, body BLOB, error TEXT);"
    "CREATE INDEX records_url ON records(url);";

struct snapshot {
	sqlite3		*db;		/* while it is being written */
	sqlite3_stmt	*add;
	char		 path[PATH_MAX];	/* "": unlinked */
	int		 fd;		/* once written, to read it */
	off_t		 size;
	long long	 max;		/* bytes it may take */
	int		 too_big;	/* over max */
	int		 counted;	/* in live */
	char		 why[256];
};

static int live;	/* snapshots of this process, at most SNAPSHOT_AT_ONCE */

static int
failed(struct snapshot *sn, const char *what)
{
	snprintf(sn->why, sizeof sn->why, "the snapshot cannot be %s: %s",
	    what, sn->db != NULL ? sqlite3_errmsg(sn->db) : strerror(errno));
	return -1;
}

/*
 * A new snapshot in $TMPDIR (or /tmp), of at most max bytes; NULL with
 * the reason.
 */
struct snapshot *
snapshot_new(long long max, char *why, size_t len)
{
	struct snapshot *sn;
	const char *dir = getenv("TMPDIR");
	int fd;

	if (live == SNAPSHOT_AT_ONCE) {	/* each may be the whole cache */
		snprintf(why, len, "%d snapshots are being made already: "
		    "try again later", SNAPSHOT_AT_ONCE);
		return NULL;
	}
	sn = xcalloc(1, sizeof *sn);
	sn->fd = -1;
	sn->max = max;
	snprintf(sn->path, sizeof sn->path, "%s/relay-sync.XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp");
	if ((fd = mkstemp(sn->path)) < 0) {
		snprintf(why, len, "cannot make a snapshot in %s: %s",
		    dir != NULL ? dir : "/tmp", strerror(errno));
		free(sn);
		return NULL;
	}
	close(fd);
	if (sqlite3_open_v2(sn->path, &sn->db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK || store_harden(sn->db, 0) < 0 ||
	    sqlite3_exec(sn->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sn->db, "INSERT INTO records"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &sn->add, NULL) !=
	    SQLITE_OK) {
		failed(sn, "made");
		snprintf(why, len, "%s", sn->why);
		snapshot_free(sn);
		return NULL;
	}
	live++;
	sn->counted = 1;
	return sn;
}

int
snapshot_begin(struct snapshot *sn)
{
	return sqlite3_exec(sn->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ?
	    0 : failed(sn, "written");
}

/* A page is in; a snapshot past its max ends there. */
int
snapshot_commit(struct snapshot *sn)
{
	struct stat st;

	if (sqlite3_exec(sn->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return failed(sn, "written");
	if (stat(sn->path, &st) == 0 && st.st_size > sn->max) {
		sn->too_big = 1;
		snprintf(sn->why, sizeof sn->why, "the snapshot is over %lld "
		    "bytes (--sync-max-size): ask for format=ndjson, or a "
		    "narrower prefix=", sn->max);
		return -1;
	}
	return 0;
}

/* The body, whole, if it is at most max bytes; -1 if it cannot be read. */
static int
read_body(struct store *s, const struct store_entry *e, long long max,
    struct buf *out)
{
	struct store_body *b;
	struct source src;
	char tmp[16384];
	ssize_t n = 0;

	if (e->size > max)
		return 0;
	if ((b = store_body_open(s, e)) == NULL)
		return -1;
	src = store_body_source(b);
	while ((n = src.read(src.ctx, tmp, sizeof tmp)) > 0)
		buf_add(out, tmp, (size_t)n);
	store_body_close(b);
	return n < 0 ? -1 : 1;
}

/*
 * A row for an entry read from s, with its change number: a tombstone
 * if deleted, else with its body if that is at most max bytes.
 * STORE_DAMAGED, adding nothing, if that body is not whole.
 */
int
snapshot_add(struct snapshot *sn, struct store *s, const struct store_entry *e,
    long long seq, int deleted, long long max)
{
	struct buf body = BUF_INIT;
	char why[80];
	int have = 0, rc;

	if (!deleted && e->size <= max && (rc = store_body_check(s, e)) < 0)
		return rc;
	if (!deleted && (have = read_body(s, e, max, &body)) < 0) {
		buf_free(&body);
		snprintf(sn->why, sizeof sn->why, "%s", store_error(s));
		return -1;
	}
	snprintf(why, sizeof why, "the body is over %lld bytes: ask for it "
	    "alone", max);
	sqlite3_bind_text(sn->add, 1, e->url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(sn->add, 2, seq);
	sqlite3_bind_int(sn->add, 3, e->status);
	sqlite3_bind_int(sn->add, 4, deleted);
	sqlite3_bind_text(sn->add, 5, deleted ? "" : e->headers, -1,
	    SQLITE_STATIC);
	if (have)
		sqlite3_bind_blob(sn->add, 6, body.data != NULL ? body.data :
		    "", (int)body.len, SQLITE_STATIC);
	else
		sqlite3_bind_null(sn->add, 6);
	if (!deleted && !have)
		sqlite3_bind_text(sn->add, 7, why, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(sn->add, 7);
	rc = sqlite3_step(sn->add);
	sqlite3_reset(sn->add);
	buf_free(&body);
	return rc == SQLITE_DONE ? 0 : failed(sn, "written");
}

/* The sync's row, then the file closed and opened to be read out. */
int
snapshot_end(struct snapshot *sn, const char *kind, long long since,
    long long seq)
{
	char sql[128];
	struct stat st;

	snprintf(sql, sizeof sql, "INSERT INTO sync VALUES ('%s', %lld, %lld)",
	    kind, since, seq);
	if (sqlite3_exec(sn->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return failed(sn, "written");
	sqlite3_finalize(sn->add);
	sn->add = NULL;
	if (sqlite3_close(sn->db) != SQLITE_OK)
		return failed(sn, "written");
	sn->db = NULL;
	if ((sn->fd = open(sn->path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(sn->fd, &st) < 0)
		return failed(sn, "read");
	sn->size = st.st_size;
	unlink(sn->path);
	sn->path[0] = '\0';
	return 0;
}

off_t
snapshot_size(const struct snapshot *sn)
{
	return sn->size;
}

ssize_t
snapshot_read(struct snapshot *sn, void *p, size_t n, off_t at)
{
	return pread(sn->fd, p, n, at);
}

const char *
snapshot_error(const struct snapshot *sn)
{
	return sn->why;
}

/* The status a failed snapshot answers: 507 when it is too big. */
int
snapshot_status(const struct snapshot *sn)
{
	return sn->too_big ? 507 : 503;
}

void
snapshot_free(struct snapshot *sn)
{
	if (sn == NULL)
		return;
	sqlite3_finalize(sn->add);
	if (sn->db != NULL)
		sqlite3_close(sn->db);
	if (sn->fd >= 0)
		close(sn->fd);
	if (sn->path[0] != '\0')
		unlink(sn->path);
	live -= sn->counted;
	free(sn);
}
