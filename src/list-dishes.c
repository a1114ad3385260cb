/*
 * list-dishes: restaurant menus from the terminal, over the menu API.
 * Fetches run through relay-fetch, straight through the shared cache
 * to the upstream, or through a relay-serve with --relay.
 */
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <assert.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jq.h>

#include "base/buf.h"
#include "base/prog.h"
#include "base/text.h"
#include "http/http.h"
#include "http/target.h"
#include "http/url.h"
#include "policy/policy.h"

#define EXIT_UNAVAILABLE EX_UNAVAILABLE	/* nothing fetched, nothing cached */
#define STALE_LIMIT "30d"	/* the oldest menus shown when offline */
#define SHOWN_MAX 200		/* columns of a text quoted in a message */
#define AGE_MAX 1e15		/* seconds: beyond, an age is not one */

#define STRING(x) #x
#define NUMBER(x) STRING(x)

static int json_output;			/* --json */
static const char *region;		/* --region */
static const char *search;		/* --search */
static int offline;			/* --offline */
static const char *relay_url;		/* --relay, RELAY_URL */
static const char *upstream_option;	/* --upstream */
static const char *cache_option;	/* --cache */
static const char *timeout = "10";	/* --timeout: a person is waiting */
static int tty;				/* stdout is a terminal */
static int exit_status;
static int data_error;		/* a response was not JSON, or a relay's
				   batch answer not one: exit 65 */

static const char usage_text[] =
    "usage: list-dishes [--json] [--region name] [--search text]"
    " [--offline]\n"
    "           [--relay url] [--upstream url] [--cache file]"
    " [--timeout duration]\n"
    "           [id ...]\n";

static const char help_text[] =
    "\nToday's menus: the restaurants with no id, each id's dishes, or a"
    " search\nthrough every menu. A table on a terminal, tab-separated"
    " when piped.\n\n"
    "      --json              JSON instead\n"
    "      --region NAME       only this region's restaurants\n"
    "      --search TEXT       dishes that contain TEXT (case and accents"
    " aside)\n"
    "      --offline           from the cache only\n"
    "      --relay URL         through the relay-serve at URL (RELAY_URL)\n"
    "      --upstream URL      the menu API, or a {path} template\n"
    "      --cache FILE        the cache file\n"
    "      --timeout TIME      wait this long for the upstream (10s)\n"
    "  -h, --help              this text\n"
    "      --version           the version\n"
    "\nSee list-dishes(1).\n";

static void
usage(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

/*
 * The bytes of a JSON string, borrowed from its value: a NUL may be
 * among them ("\u0000"), so they are never read as a C string, which
 * would end there. (libjq ends each with a NUL too: p[len] is one.)
 */
struct text {
	const char	*p;		/* NULL: not a string */
	size_t		 len;
};

static struct text
text_of(const char *s)
{
	struct text t = { s, strlen(s) };

	return t;
}

static struct text
text_of_jv(jv s)
{
	struct text t = { jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)) };

	return t;
}

static int
text_is(struct text t, const char *s)
{
	return t.p != NULL && t.len == strlen(s) && memcmp(t.p, s, t.len) == 0;
}

static int
text_equal(struct text a, struct text b)
{
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static int
has_nul(struct text t)
{
	return memchr(t.p, '\0', t.len) != NULL;
}

/* A string as a JSON value again, whole. */
static jv
text_jv(struct text t)
{
	return jv_string_sized(t.p, (int)t.len);
}

/*
 * Text from elsewhere for a message: escaped (text_printable) and cut
 * after SHOWN_MAX columns with "…", so that a message is one short line.
 */
static char *
shown_text(struct text text)
{
	char *safe = text_printable_n(text.p, text.len, 0);
	size_t fit = text_fit(safe, SHOWN_MAX);
	struct buf out = BUF_INIT;

	buf_add(&out, safe, fit);
	if (safe[fit] != '\0')
		buf_adds(&out, "…");
	free(safe);
	return buf_take(&out);
}

static char *
shown(const char *text)
{
	return shown_text(text_of(text));
}

/* A page to fetch, and its response: a relay-fetch record, parsed. */
struct page {
	char		*path;		/* NULL if it cannot be asked for */
	struct text	 id;		/* the restaurant of a menu page */
	const char	*refused;	/* why id cannot be in a path */
	jv		 record;	/* the whole record; null if none came */
};

static void
pages_free(struct page *pages, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		jv_free(pages[i].record);
		free(pages[i].path);
	}
	free(pages);
}

/* relay-fetch beside this program, as installed, else on PATH. */
static const char *
relay_fetch_path(void)
{
	static char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
	char *slash;

	if (n > 0) {
		path[n] = '\0';
		if ((slash = strrchr(path, '/')) != NULL) {
			snprintf(slash + 1, sizeof path - (size_t)(slash + 1 -
			    path), "relay-fetch");
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	return "relay-fetch";
}

/* The relay-fetch command line; the paths go on its standard input. */
static char **
fetch_argv(void)
{
	char **argv = xcalloc(24, sizeof *argv);
	size_t i = 0;

	argv[i++] = (char *)"relay-fetch";
	argv[i++] = (char *)"--records";
	argv[i++] = (char *)"--retry";
	argv[i++] = (char *)"1";
	argv[i++] = (char *)"-j";
	argv[i++] = (char *)"16";
	if (relay_url != NULL) {
		/* The relay caches; these URLs are never stored here. */
		argv[i++] = (char *)"--no-store";
		argv[i++] = (char *)"--upstream";
		argv[i++] = (char *)relay_url;
	} else {
		argv[i++] = (char *)"--stale-if-error";
		argv[i++] = (char *)STALE_LIMIT;
		if (upstream_option != NULL) {
			argv[i++] = (char *)"--upstream";
			argv[i++] = (char *)upstream_option;
		}
	}
	if (offline)
		argv[i++] = (char *)"--offline";
	argv[i++] = (char *)"--connect-timeout";
	argv[i++] = (char *)timeout;
	argv[i++] = (char *)"--max-time";
	argv[i++] = (char *)timeout;
	if (cache_option != NULL) {
		argv[i++] = (char *)"--cache";
		argv[i++] = (char *)cache_option;
	}
	return argv;
}

/*
 * Reads the records relay-fetch writes, one a line, in request order;
 * returns how many came.
 */
static size_t
read_records(FILE *in, struct page **pages, size_t n)
{
	char *line = NULL;
	size_t cap = 0, i = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, in)) > 0 && i < n) {
		jv_free(pages[i]->record);
		pages[i++]->record = jv_parse_sized(line, (int)len);
	}
	free(line);
	return i;
}

/* The pages' paths, one a line, in a file to read from its start. */
static FILE *
path_file(struct page **pages, size_t n)
{
	FILE *f = tmpfile();
	size_t i;

	if (f == NULL)
		err(EX_OSERR, "cannot run relay-fetch");
	for (i = 0; i < n; i++)
		fprintf(f, "%s\n", pages[i]->path);
	if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0)
		err(EX_IOERR, "cannot run relay-fetch");
	return f;
}

/*
 * Fetches the pages through relay-fetch, their paths on its standard
 * input (no bound on how many), its own messages kept back: the records
 * say what happened, and are reported here in the words of this
 * program. Its messages are shown only if relay-fetch itself failed
 * (the cache file, say, or it could not be run: fewer records came).
 */
static void
fetch_records(struct page **pages, size_t n)
{
	int out[2], status;
	FILE *errors = tmpfile(), *paths = path_file(pages, n), *in;
	char **argv = fetch_argv(), buf[4096];
	size_t k, got;
	pid_t pid;

	if (errors == NULL || pipe(out) < 0)
		err(EX_OSERR, "cannot run relay-fetch");
	if ((pid = fork()) < 0)
		err(EX_OSERR, "cannot run relay-fetch");
	if (pid == 0) {
		dup2(fileno(paths), STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(fileno(errors), STDERR_FILENO);
		close(out[0]);
		close(out[1]);
		execvp(relay_fetch_path(), argv);
		dprintf(STDERR_FILENO, "list-dishes: cannot run relay-fetch: "
		    "%s\n", strerror(errno));
		_exit(EX_UNAVAILABLE);
	}
	close(out[1]);
	if ((in = fdopen(out[0], "r")) == NULL)
		err(EX_OSERR, "cannot read from relay-fetch");
	got = read_records(in, pages, n);
	fclose(in);
	fclose(paths);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	free(argv);
	/* 69 only says every URL failed, which the records tell. */
	if (!WIFEXITED(status) || (WEXITSTATUS(status) >= 64 &&
	    WEXITSTATUS(status) != EX_UNAVAILABLE) || got < n) {
		rewind(errors);
		while ((k = fread(buf, 1, sizeof buf, errors)) > 0)
			fwrite(buf, 1, k, stderr);
		exit(WIFEXITED(status) && WEXITSTATUS(status) >= 64 ?
		    WEXITSTATUS(status) : EX_SOFTWARE);
	}
	fclose(errors);
}

static jv
member(jv v, const char *key)
{
	if (jv_get_kind(v) != JV_KIND_OBJECT)
		return jv_invalid();
	return jv_object_get(jv_copy(v), jv_string(key));
}

/* A string member, or p NULL; the bytes live as long as v. */
static struct text
string_member(jv v, const char *key)
{
	jv s = member(v, key);
	struct text t = { NULL, 0 };

	if (jv_get_kind(s) == JV_KIND_STRING)
		t = text_of_jv(s);
	jv_free(s);	/* v still holds the string */
	return t;
}

#define BATCH_MAX_ANSWER_MIB 64		/* a batch's answer, at most */
#define BATCH_MAX_ANSWER (BATCH_MAX_ANSWER_MIB << 20)

/* A batch's answer, as it comes. */
struct answer {
	struct buf	 body;
	int		 too_long;	/* past BATCH_MAX_ANSWER: cut */
};

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
	struct answer *a = ctx;

	if (a->body.len + size * n > BATCH_MAX_ANSWER) {
		a->too_long = 1;
		return 0;	/* curl stops: too much */
	}
	buf_add(&a->body, p, size * n);
	return size * n;
}

/*
 * A batch item's answer (relay(7)) as the record relay-fetch would
 * have written: its status, body and error, and its source and age
 * from its Cache-Status and Age.
 */
static jv
item_record(jv item)
{
	jv headers = member(item, "headers"), rec = jv_object(), v;
	struct text cs = string_member(headers, "cache-status");
	struct text age = string_member(headers, "age");
	static const char *const keep[] = { "status", "json", "text",
	    "error" };
	size_t i;

	for (i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if (jv_is_valid(v = member(item, keep[i])))
			rec = jv_object_set(rec, jv_string(keep[i]), v);
	rec = jv_object_set(rec, jv_string("source"), jv_string(cs.p != NULL &&
	    memmem(cs.p, cs.len, "detail=stale", 12) != NULL ? "stale" :
	    "relay"));
	if (age.p != NULL && !has_nul(age))	/* read as a cache reads it */
		rec = jv_object_set(rec, jv_string("age"),
		    jv_number((double)policy_age_value(age.p)));
	jv_free(headers);
	jv_free(item);
	return rec;
}

/*
 * The pages that have no record yet get one that says the relay failed
 * them: before, the relay's URL, then after.
 */
static void
fail_pages(struct page **pages, size_t n, const char *before,
    const char *after)
{
	char *relay = url_redacted(relay_url);
	struct buf text = BUF_INIT;
	size_t i;

	buf_printf(&text, "%s%s%s", before, relay, after);
	for (i = 0; i < n; i++)
		if (jv_get_kind(pages[i]->record) == JV_KIND_NULL) {
			jv_free(pages[i]->record);
			pages[i]->record = jv_object_set(jv_object(),
			    jv_string("error"), jv_string(buf_cstr(&text)));
		}
	buf_free(&text);
	free(relay);
}

/* A batch item's page: its id one of those sent, "0" to n - 1; or n. */
static size_t
item_page(jv item, size_t n)
{
	struct text id = string_member(item, "id");
	size_t i = 0, k;

	if (id.p == NULL || id.len == 0 || id.len > 9 ||
	    (id.p[0] == '0' && id.len > 1))
		return n;
	for (k = 0; k < id.len; k++) {
		if (id.p[k] < '0' || id.p[k] > '9')
			return n;
		i = i * 10 + (size_t)(id.p[k] - '0');
	}
	return i < n ? i : n;
}

/*
 * The lines of a batch's answer, each its page's record by id. A line
 * that is not an item of this batch (not a JSON object, or not one of
 * its ids), or a page with no line, is the relay's data error: such a
 * page fails, saying so.
 */
static void
read_items(const struct buf *answer, struct page **pages, size_t n)
{
	const char *p = answer->data, *end = p + answer->len, *nl;
	char bad[160] = "";
	size_t i, line = 0;
	jv item;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		line++;
		item = jv_parse_sized(p, (int)(nl - p));
		if (jv_get_kind(item) != JV_KIND_OBJECT ||
		    (i = item_page(item, n)) == n) {
			if (bad[0] == '\0')
				snprintf(bad, sizeof bad, " answered the batch "
				    "with something else than a batch answer "
				    "(line %zu is %s)", line,
				    jv_get_kind(item) == JV_KIND_OBJECT ?
				    "no item of the batch sent" : "not a JSON "
				    "object");
			jv_free(item);
		} else if (jv_get_kind(pages[i]->record) == JV_KIND_NULL) {
			pages[i]->record = item_record(item);
		} else {
			jv_free(item);
		}
	}
	for (i = 0; i < n; i++)
		data_error |= jv_get_kind(pages[i]->record) == JV_KIND_NULL;
	fail_pages(pages, n, "the relay at ", bad[0] != '\0' ? bad :
	    " answered the batch without a line for it");
}

/*
 * What the relay answered the batch, in the pages' records; whether it
 * answers batches at all (an older one answers 404 or 405; a server
 * that is not one answers 200 with anything but NDJSON).
 */
static int
batch_answered(CURL *h, CURLcode rc, const struct answer *answer,
    struct page **pages, size_t n)
{
	long status = 0;
	char *type = NULL, why[CURL_ERROR_SIZE + 64];
	int batches;

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
	batches = status != 404 && status != 405 && (status != 200 ||
	    (type != NULL && strncmp(type, "application/x-ndjson", 20) == 0));
	if (rc != CURLE_OK && answer->too_long) {
		data_error = 1;
		fail_pages(pages, n, "the relay at ", " answered the batch with "
		    "more than " NUMBER(BATCH_MAX_ANSWER_MIB) " MiB");
	} else if (rc != CURLE_OK) {
		snprintf(why, sizeof why, status == 0 ? ": %s" : " broke off "
		    "its batch answer: %s", curl_easy_strerror(rc));
		fail_pages(pages, n, status == 0 ? "cannot reach the relay "
		    "at " : "the relay at ", why);
	} else if (status == 200 && batches) {
		read_items(&answer->body, pages, n);
	} else if (batches) {
		snprintf(why, sizeof why, " answered the batch with HTTP "
		    "status %ld %s", status, http_reason((int)status));
		fail_pages(pages, n, "the relay at ", why);
	}
	return rc == CURLE_OK && !batches ? -1 : 0;
}

/*
 * With --relay, the pages in one POST /_relay/batch (relay-serve(8)):
 * one round trip for them all. Returns -1 if the relay has no batches
 * (an older one answers 404; a server that is not one answers anything
 * but NDJSON), for a fetch one by one instead.
 */
static int
fetch_batch(struct page **pages, size_t n)
{
	CURL *h = curl_easy_init();
	CURLU *u = curl_url();
	struct curl_slist *fields = NULL;
	struct answer answer = { BUF_INIT, 0 };
	struct buf url = BUF_INIT;
	jv requests = jv_array(), body;
	char *prefix = NULL, *origin = NULL, id[32], *redacted, *shown_relay;
	long secs = prog_duration("--timeout", timeout);
	int batches;
	size_t i;

	if (h == NULL || u == NULL ||
	    curl_url_set(u, CURLUPART_URL, relay_url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &prefix, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PATH, "/_relay/batch", 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &origin, 0) != CURLUE_OK) {
		redacted = url_redacted(relay_url);
		shown_relay = shown(redacted);
		warnx("bad --relay '%s': expected a URL", shown_relay);
		free(shown_relay);
		free(redacted);
		exit(EXIT_USAGE);
	}
	for (i = 0; i < n; i++) {
		buf_reset(&url);
		buf_adds(&url, strcmp(prefix, "/") == 0 ? "" : prefix);
		buf_adds(&url, pages[i]->path);
		snprintf(id, sizeof id, "%zu", i);
		requests = jv_array_append(requests, jv_object_set(jv_object_set(
		    jv_object(), jv_string("id"), jv_string(id)),
		    jv_string("path"), jv_string(buf_cstr(&url))));
	}
	body = jv_dump_string(jv_object_set(jv_object(),
	    jv_string("requests"), requests), 0);
	fields = curl_slist_append(fields, "Content-Type: application/json");
	fields = curl_slist_append(fields, "Accept: application/x-ndjson");
	curl_easy_setopt(h, CURLOPT_URL, origin);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, fields);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, jv_string_value(body));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, secs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, secs);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	batches = batch_answered(h, curl_easy_perform(h), &answer, pages, n);
	curl_slist_free_all(fields);
	curl_easy_cleanup(h);
	curl_url_cleanup(u);
	curl_free(prefix);
	curl_free(origin);
	jv_free(body);
	buf_free(&answer.body);
	buf_free(&url);
	return batches;
}

/*
 * Fetches the pages that can be asked for in one concurrent round:
 * with --relay in one batch, else (or from a relay without batches)
 * through relay-fetch. Each page gets a record, null if none came.
 */
static void
fetch(struct page *pages, size_t n)
{
	struct page **todo = xcalloc(n + 1, sizeof *todo);
	size_t i, m = 0;

	for (i = 0; i < n; i++) {
		jv_free(pages[i].record);
		pages[i].record = jv_null();
		if (pages[i].path != NULL)
			todo[m++] = &pages[i];
	}
	if (m > 0 && (relay_url == NULL || fetch_batch(todo, m) < 0))
		fetch_records(todo, m);
	free(todo);
}

/*
 * A record's age (a relay's Age field, the upstream's text) for a
 * person; one that is not a number of seconds from 0 to AGE_MAX is
 * read as the nearest, never cast out of range.
 */
static const char *
human_age(jv age, char *out, size_t len)
{
	double v = jv_get_kind(age) == JV_KIND_NUMBER ?
	    jv_number_value(age) : 0;
	long long secs = 0;

	if (v > 0)	/* not NaN either */
		secs = v < AGE_MAX ? (long long)v : (long long)AGE_MAX;

	return text_age(secs, AGE_WORDS, out, len);
}

/* Says why a page has no body to use: its path (or identifier), why. */
static void
page_failed(const struct page *p, struct text why)
{
	char *name = p->path != NULL ? shown(p->path) : shown_text(p->id);
	char *reason = shown_text(why);

	if (p->path != NULL)
		warnx("%s: %s", name, reason);
	else
		warnx("restaurant '%s': cannot be asked for: %s", name, reason);
	free(reason);
	free(name);
}

/*
 * The record's body as JSON: its json member, or its text parsed (a
 * file: upstream says no Content-Type).
 */
static jv
body_json(const struct page *p)
{
	jv json = member(p->record, "json");
	struct text text;

	if (jv_is_valid(json))
		return json;
	jv_free(json);
	if ((text = string_member(p->record, "text")).p != NULL &&
	    jv_is_valid(json = jv_parse_sized(text.p, (int)text.len)))
		return json;
	if (text.p != NULL)
		jv_free(json);
	page_failed(p, text_of("expected a JSON document"));
	data_error = 1;
	return jv_invalid();
}

/*
 * The JSON body of a page, after saying what went wrong if anything
 * did: an invalid value if there is none to use.
 */
static jv
page_json(const struct page *p)
{
	jv rec = p->record, age, status;
	struct text error = string_member(rec, "error");
	struct text source = string_member(rec, "source");
	char when[32], code[64], *name;

	if (p->path == NULL) {
		page_failed(p, text_of(p->refused));
		return jv_invalid();
	}
	if (jv_get_kind(rec) != JV_KIND_OBJECT) {
		page_failed(p, text_of("no answer from relay-fetch"));
		return jv_invalid();
	}
	if (error.p != NULL) {
		page_failed(p, error);
		return jv_invalid();
	}
	status = member(rec, "status");
	if (jv_get_kind(status) != JV_KIND_NUMBER ||
	    jv_number_value(status) != 200) {
		if (jv_get_kind(status) == JV_KIND_NUMBER)
			snprintf(code, sizeof code, "HTTP status %.15g",
			    jv_number_value(status));
		page_failed(p, text_of(jv_get_kind(status) == JV_KIND_NUMBER ?
		    code : "an answer with no status"));
		jv_free(status);
		return jv_invalid();
	}
	jv_free(status);
	if (text_is(source, "stale") && !offline) {
		age = member(rec, "age");
		name = shown(p->path);
		warnx("the upstream did not answer; %s is from the cache, %s "
		    "old", name, human_age(age, when, sizeof when));
		free(name);
		jv_free(age);
	}
	return body_json(p);
}

/* A restaurant of the list, its strings borrowed from the list. */
struct restaurant {
	struct text	 id, name, region;
};

/*
 * GET /restaurant: {"restaurants": [{"identifier", "name", "region"},
 * ...]}. Exits on anything else, saying what was expected.
 */
static size_t
restaurants(jv list, struct restaurant **out)
{
	jv array = member(list, "restaurants"), item;
	struct restaurant *r;
	int i, n;

	if (jv_get_kind(array) != JV_KIND_ARRAY)
		errx(EX_DATAERR, "/restaurant: expected an object with a "
		    "\"restaurants\" array");
	n = jv_array_length(jv_copy(array));
	r = xcalloc((size_t)n + 1, sizeof *r);
	for (i = 0; i < n; i++) {
		item = jv_array_get(jv_copy(array), i);
		r[i].id = string_member(item, "identifier");
		r[i].name = string_member(item, "name");
		r[i].region = string_member(item, "region");
		jv_free(item);	/* list still holds the strings */
		if (r[i].id.p == NULL || r[i].name.p == NULL ||
		    r[i].region.p == NULL)
			errx(EX_DATAERR, "/restaurant: expected restaurants "
			    "with string \"identifier\", \"name\" and "
			    "\"region\" (item %d)", i + 1);
	}
	jv_free(array);
	*out = r;
	return (size_t)n;
}

/* Whether the restaurant's region is --region's (which has no NUL). */
static int
region_matches(const struct restaurant *r)
{
	char *a, *b;
	int same;

	if (region == NULL)
		return 1;
	if (has_nul(r->region))
		return 0;
	a = text_fold(r->region.p);
	b = text_fold(region);
	same = strcmp(a, b) == 0;
	free(a);
	free(b);
	return same;
}

static size_t
terminal_width(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");
	long n;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if (env != NULL && (n = strtol(env, NULL, 10)) > 0 && n < 10000)
		return (size_t)n;
	return 80;
}

/* Prints text from the upstream, escaped (text_printable). */
static void
put_text(struct text s)
{
	char *safe = text_printable_n(s.p, s.len, !tty);

	fputs(safe, stdout);
	free(safe);
}

#define GAP 2	/* columns between the cells of a row */

/*
 * Adds s (escaped) cut to width columns, "…" at its end if cut;
 * returns the columns it took.
 */
static size_t
add_cut(struct buf *out, const char *s, size_t width)
{
	size_t fit = text_fit(s, width);

	assert(width > 0);
	if (s[fit] == '\0') {
		buf_adds(out, s);
		return text_width(s);
	}
	buf_add(out, s, text_fit(s, width - 1));
	buf_adds(out, "…");
	return width;
}

/*
 * Prints a line (escaped) cut to the terminal's width, however narrow:
 * one column is "…".
 */
static void
put_line(const char *s, size_t width)
{
	struct buf line = BUF_INIT;

	add_cut(&line, s, width);
	buf_addc(&line, '\n');
	fwrite(line.data, 1, line.len, stdout);
	buf_free(&line);
}

/*
 * The widths of a table's columns on a terminal total columns wide: the
 * widest cell of each (natural), or, if they do not all fit, those that
 * fit in an equal share of the room whole and the share of what is left
 * for the others; the last column takes the rest of the line. A
 * terminal too narrow for a column each still gets one.
 */
static void
column_widths(const size_t *natural, size_t *width, size_t cols,
    size_t total)
{
	size_t room = total > (GAP + 1) * cols ? total - GAP * (cols - 1) :
	    cols, left = cols, share = 0, used = 0, c;
	int fixed[3] = { 0 }, again = 1;

	assert(cols > 0 && cols <= sizeof fixed / sizeof fixed[0]);
	while (again && left > 0) {
		again = 0;
		share = room / left;	/* only grows as columns are fixed */
		for (c = 0; c < cols; c++)
			if (!fixed[c] && natural[c] <= share) {
				width[c] = natural[c];
				room -= natural[c];
				left--;
				fixed[c] = again = 1;
			}
	}
	for (c = 0; c + 1 < cols; c++) {
		if (!fixed[c])
			width[c] = share > 0 ? share : 1;
		used += width[c] + GAP;
	}
	width[cols - 1] = total > used ? total - used : 1;
}

/*
 * A table on a terminal: columns as column_widths says, each cell cut
 * to its column, so that no line is wider than the terminal however
 * long the text.
 */
static void
print_columns(const char *const *header, const char **cells, size_t rows,
    size_t cols)
{
	size_t natural[3], width[3], r, c, took, total = terminal_width();
	struct buf line = BUF_INIT;
	const char *cell;

	assert(cols > 0 && cols <= sizeof width / sizeof width[0]);
	for (c = 0; c < cols; c++) {
		natural[c] = text_width(header[c]);
		for (r = 0; r < rows; r++)
			if (text_width(cells[r * cols + c]) > natural[c])
				natural[c] = text_width(cells[r * cols + c]);
	}
	column_widths(natural, width, cols, total);
	for (r = 0; r <= rows; r++) {
		buf_reset(&line);
		for (c = 0; c < cols; c++) {
			cell = r == 0 ? header[c] : cells[(r - 1) * cols + c];
			took = add_cut(&line, cell, width[c]);
			if (c + 1 < cols)
				buf_printf(&line, "%*s",
				    (int)(width[c] - took + GAP), "");
		}
		/* narrower than a column each and the gaps: cut again */
		put_line(buf_cstr(&line), total);
	}
	buf_free(&line);
}

/*
 * Prints rows of cells: on a terminal, aligned in columns under a
 * header (print_columns); piped, whole, as tab-separated lines without
 * a header. Cells are escaped first.
 */
static void
print_table(const char *const *header, const struct text *cells,
    size_t rows, size_t cols)
{
	char **safe = xcalloc(rows * cols + 1, sizeof *safe);
	size_t i;

	for (i = 0; i < rows * cols; i++)
		safe[i] = text_printable_n(cells[i].p, cells[i].len, !tty);
	if (tty)
		print_columns(header, (const char **)safe, rows, cols);
	else
		for (i = 0; i < rows * cols; i++)
			printf("%s%c", safe[i], (i + 1) % cols ? '\t' : '\n');
	for (i = 0; i < rows * cols; i++)
		free(safe[i]);
	free(safe);
}

/*
 * Prints a JSON value on a line. jq writes the C1 controls (U+0080 to
 * U+009F) raw, and some terminals obey them: they go out as \u00XX,
 * the same string to a JSON reader.
 */
static void
print_json(jv v)
{
	jv s = jv_dump_string(v, 0);
	const unsigned char *p = (const unsigned char *)jv_string_value(s);

	for (; *p != '\0'; p++)
		if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
			printf("\\u%04X", *++p);
		else
			putchar(*p);
	putchar('\n');
	jv_free(s);
}

/* A --region that names none: says which there are. */
static void
no_region(struct restaurant *r, size_t n)
{
	struct buf known = BUF_INIT;
	char *name = shown(region), *list;
	size_t i, j;
	struct text all;

	for (i = 0; i < n; i++) {
		for (j = 0; j < i && !text_equal(r[j].region, r[i].region); j++)
			;
		if (j == i) {
			buf_adds(&known, known.len ? ", " : "");
			buf_add(&known, r[i].region.p, r[i].region.len);
		}
	}
	all.p = buf_cstr(&known);
	all.len = known.len;
	list = shown_text(all);
	warnx("no restaurant in region '%s'; the regions are %s", name, list);
	exit_status = EXIT_PARTIAL;
	free(list);
	free(name);
	buf_free(&known);
}

/* No arguments: every restaurant (of the region). */
static void
list_restaurants(struct restaurant *r, size_t n)
{
	static const char *const header[] = { "ID", "NAME", "REGION" };
	struct text *cells = xcalloc(3 * n + 1, sizeof *cells);
	jv out = jv_array();
	size_t i, rows = 0;

	for (i = 0; i < n; i++) {
		if (!region_matches(&r[i]))
			continue;
		cells[3 * rows] = r[i].id;
		cells[3 * rows + 1] = r[i].name;
		cells[3 * rows++ + 2] = r[i].region;
		out = jv_array_append(out, JV_OBJECT(jv_string("identifier"),
		    text_jv(r[i].id), jv_string("name"), text_jv(r[i].name),
		    jv_string("region"), text_jv(r[i].region)));
	}
	if (json_output)
		print_json(out);
	else
		print_table(header, cells, rows, 3);
	if (!json_output)
		jv_free(out);
	free(cells);
	if (rows == 0 && region != NULL)
		no_region(r, n);
}

/*
 * The dishes of a menu document, each the string it came as; exits if
 * it has another shape.
 */
static jv
dishes_of(jv doc, const char *path, struct text *title, struct text *location)
{
	jv rest = member(doc, "restaurant"), menu, dishes = jv_array(), item;
	jv dish;
	int i, n;

	menu = member(rest, "menu");
	*title = string_member(rest, "title");
	*location = string_member(rest, "location");
	if (jv_get_kind(menu) != JV_KIND_ARRAY || title->p == NULL)
		errx(EX_DATAERR, "%s: expected {\"restaurant\": {\"title\", "
		    "\"location\", \"menu\": [{\"dish\"}, ...]}}", shown(path));
	if (location->p == NULL)
		*location = text_of("");
	n = jv_array_length(jv_copy(menu));
	for (i = 0; i < n; i++) {
		item = jv_array_get(jv_copy(menu), i);
		if (jv_get_kind(dish = member(item, "dish")) == JV_KIND_STRING)
			dishes = jv_array_append(dishes, dish);
		else
			jv_free(dish);
		jv_free(item);
	}
	jv_free(menu);
	jv_free(rest);
	return dishes;
}

/*
 * text_distance, or limit + 1 when the lengths alone say it is more:
 * a name of megabytes is not compared (nor a row of it allocated).
 */
static size_t
distance_within(const char *a, const char *b, size_t limit)
{
	size_t la = strlen(a), lb = strlen(b);

	if ((la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	return text_distance(a, b);
}

/*
 * Says an identifier is unknown, with the closest known ones (compared
 * up to a NUL in them, if any: a suggestion; each shown whole).
 */
static void
unknown(const char *id, struct restaurant *r, size_t n)
{
	struct buf hint = BUF_INIT;
	size_t i, best = (size_t)-1, d, limit = strlen(id) / 3 + 2;
	char *folded = text_fold(id), *name, *typed, *hints;
	struct text all;

	for (i = 0; i < n; i++) {
		name = text_fold(r[i].name.p);
		d = distance_within(folded, r[i].id.p, limit);
		if (distance_within(folded, name, limit) < d)
			d = distance_within(folded, name, limit);
		if (strstr(r[i].id.p, folded) != NULL || strstr(name, folded))
			d = 1;
		free(name);
		if (d > limit)
			continue;
		if (d < best) {
			best = d;
			buf_reset(&hint);
		}
		if (d == best) {
			buf_adds(&hint, hint.len ? ", " : "");
			buf_add(&hint, r[i].id.p, r[i].id.len);
		}
	}
	typed = shown(id);
	all.p = buf_cstr(&hint);
	all.len = hint.len;
	hints = shown_text(all);
	if (hint.len > 0)
		warnx("no restaurant '%s'; did you mean %s?", typed, hints);
	else
		warnx("no restaurant '%s'; 'list-dishes' lists them", typed);
	exit_status = EXIT_PARTIAL;
	buf_free(&hint);
	free(hints);
	free(typed);
	free(folded);
}

static int
known(const char *id, struct restaurant *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (text_is(r[i].id, id))
			return 1;
	return 0;
}

/*
 * A restaurant's menu page, /restaurant/ID with ID as one path
 * segment, or refused: no identifier reaches another path (nor, with a
 * NUL, a shorter one), nor makes one longer than relay-fetch and
 * relay-serve take.
 */
static void
menu_page(struct page *p, struct text id)
{
	struct buf path = BUF_INIT;

	p->id = id;
	buf_adds(&path, "/restaurant/");
	if ((p->refused = target_add_segment(&path, id.p, id.len)) == NULL &&
	    path.len > URL_MAX)
		p->refused = "a path longer than " NUMBER(URL_MAX) " bytes";
	if (p->refused == NULL)
		p->path = buf_take(&path);
	else
		buf_free(&path);
}

/* One tab-separated line of four fields, each escaped. */
static void
put_tsv_row(struct text a, struct text b, struct text c, struct text d)
{
	put_text(a);
	putchar('\t');
	put_text(b);
	putchar('\t');
	put_text(c);
	putchar('\t');
	put_text(d);
	putchar('\n');
}

/*
 * Prints one restaurant's menu on a terminal, each line escaped and cut
 * to the terminal's width.
 */
static void
print_menu(struct text title, struct text location, jv dishes)
{
	int i, n = jv_array_length(jv_copy(dishes));
	size_t width = terminal_width();
	struct buf head = BUF_INIT;
	struct text dish;
	char *line;
	jv d;

	buf_add(&head, title.p, title.len);
	if (location.len > 0) {
		buf_adds(&head, " — ");
		buf_add(&head, location.p, location.len);
	}
	line = text_printable_n(buf_cstr(&head), head.len, 0);
	put_line(line, width);
	free(line);
	for (i = 0; i < n; i++) {
		d = jv_array_get(jv_copy(dishes), i);
		dish = text_of_jv(d);
		line = text_printable_n(dish.p, dish.len, 0);
		buf_reset(&head);
		buf_printf(&head, "  %s", line);
		put_line(buf_cstr(&head), width);
		free(line);
		jv_free(d);
	}
	if (n == 0)
		put_line("  (no dishes listed)", width);
	buf_free(&head);
}

/* list-dishes ID...: each restaurant's title, location and dishes. */
static void
show_menus(char **ids, size_t count, struct restaurant *r, size_t n,
    struct page *pages)
{
	jv out = jv_array(), doc, dishes, d;
	struct text title, location;
	size_t i;
	int k, m;

	for (i = 0; i < count; i++) {
		if (!known(ids[i], r, n)) {	/* whatever its page says */
			unknown(ids[i], r, n);
			continue;
		}
		if (!jv_is_valid(doc = page_json(&pages[i]))) {
			exit_status = EXIT_PARTIAL;
			continue;
		}
		dishes = dishes_of(doc, pages[i].path, &title, &location);
		if (json_output) {
			out = jv_array_append(out, JV_OBJECT(
			    jv_string("identifier"), jv_string(ids[i]),
			    jv_string("title"), text_jv(title),
			    jv_string("location"), text_jv(location),
			    jv_string("dishes"), jv_copy(dishes)));
		} else if (tty) {
			if (i > 0)
				putchar('\n');
			print_menu(title, location, dishes);
		} else {
			m = jv_array_length(jv_copy(dishes));
			for (k = 0; k < m; k++) {
				d = jv_array_get(jv_copy(dishes), k);
				put_tsv_row(text_of(ids[i]), title, location,
				    text_of_jv(d));
				jv_free(d);
			}
		}
		jv_free(dishes);
		jv_free(doc);
	}
	if (json_output)
		print_json(out);
	else
		jv_free(out);
}

#define MENUS_ROUTE "/restaurant-menus"	/* menu.routes' */

/*
 * The menus a relay's MENUS_ROUTE answered ({"restaurants":[…],
 * "menus":[…]}, one a restaurant), as the pages of the restaurants of
 * of. Returns 0 if it gave not all of them (no such route, say).
 */
static int
menus_from_route(const struct page *route, struct page *pages,
    struct restaurant **of, size_t m)
{
	jv doc = member(route->record, "json"), list = member(doc, "restaurants"),
	    menus = member(doc, "menus"), menu, item;
	struct text id;
	size_t k;
	int j, n = jv_get_kind(list) == JV_KIND_ARRAY ?
	    jv_array_length(jv_copy(list)) : -1, found = 1;

	if (jv_get_kind(menus) != JV_KIND_ARRAY ||
	    jv_array_length(jv_copy(menus)) != n)
		n = -1;
	for (k = 0; k < m && n >= 0 && found; k++) {
		menu = jv_null();
		for (j = 0; j < n && jv_get_kind(menu) == JV_KIND_NULL; j++) {
			item = jv_array_get(jv_copy(list), j);
			id = string_member(item, "identifier");
			if (id.p != NULL && text_equal(id, of[k]->id)) {
				jv_free(menu);
				menu = jv_array_get(jv_copy(menus), j);
			}
			jv_free(item);
		}
		if ((found = jv_get_kind(menu) == JV_KIND_OBJECT))
			pages[k].record = jv_object_set(jv_object_set(jv_object(),
			    jv_string("status"), jv_number(200)),
			    jv_string("json"), menu);
		else
			jv_free(menu);
	}
	jv_free(doc);
	jv_free(list);
	jv_free(menus);
	return n >= 0 && found;
}

/*
 * Whether folded text holds want (folded, and without a NUL: no match
 * spans one), looked for in each stretch between NULs.
 */
static int
text_contains(struct text t, const char *want)
{
	const char *p = t.p, *end = t.p + t.len;
	char *folded;
	int found;

	for (;; p += strlen(p) + 1) {	/* p[len] is a NUL */
		folded = text_fold(p);
		found = strstr(folded, want) != NULL;
		free(folded);
		if (found || p + strlen(p) >= end)
			return found;
	}
}

/*
 * --search: every menu (of the region) fetched at once, then matched;
 * taken from route, if it is a page of MENUS_ROUTE that has them all.
 */
static void
search_menus(struct restaurant *r, size_t n, const struct page *route)
{
	static const char *const header[] = { "ID", "NAME", "DISH" };
	struct page *pages = xcalloc(n + 1, sizeof *pages);
	struct restaurant **of = xcalloc(n + 1, sizeof *of);
	char *want = text_fold(search), *folded, *name;
	struct text *cells = NULL, title, location;
	jv out = jv_array(), doc, dishes, d, kept = jv_array();
	size_t i, m = 0, rows = 0;
	int k, count;

	for (i = 0; i < n; i++)
		if (region_matches(&r[i])) {
			of[m] = &r[i];
			menu_page(&pages[m++], r[i].id);
		}
	if (route == NULL || !menus_from_route(route, pages, of, m))
		fetch(pages, m);
	for (i = 0; i < m; i++) {
		if (!jv_is_valid(doc = page_json(&pages[i]))) {
			exit_status = EXIT_PARTIAL;
			continue;
		}
		dishes = dishes_of(doc, pages[i].path, &title, &location);
		count = jv_array_length(jv_copy(dishes));
		for (k = 0; k < count; k++) {
			d = jv_array_get(jv_copy(dishes), k);
			if (text_contains(text_of_jv(d), want)) {
				cells = xrealloc(cells, 3 * (rows + 1) *
				    sizeof *cells);
				cells[3 * rows] = of[i]->id;
				cells[3 * rows + 1] = of[i]->name;
				cells[3 * rows++ + 2] = text_of_jv(d);
				out = jv_array_append(out, JV_OBJECT(
				    jv_string("identifier"),
				    text_jv(of[i]->id), jv_string("name"),
				    text_jv(of[i]->name), jv_string("dish"),
				    jv_copy(d)));
				kept = jv_array_append(kept, jv_copy(d));
			}
			jv_free(d);
		}
		jv_free(dishes);
		jv_free(doc);
	}
	if (json_output)
		print_json(out);
	else {
		print_table(header, cells, rows, 3);
		jv_free(out);
	}
	if (rows == 0) {
		folded = shown(search);
		name = shown(region != NULL ? region : "");
		warnx("no dish matches '%s'%s%s", folded, region != NULL ?
		    " in region " : "", name);
		free(name);
		free(folded);
		exit_status = EXIT_PARTIAL;	/* like grep: nothing found */
	}
	jv_free(kept);
	pages_free(pages, m);
	free(cells);
	free(of);
	free(want);
}

static const struct option long_options[] = {
	{ "cache", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, 'J' },
	{ "offline", no_argument, NULL, 'O' },
	{ "region", required_argument, NULL, 'r' },
	{ "relay", required_argument, NULL, 'R' },
	{ "search", required_argument, NULL, 's' },
	{ "timeout", required_argument, NULL, 't' },
	{ "upstream", required_argument, NULL, 'u' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void
parse_options(int argc, char **argv)
{
	const char *env;
	int opt;

	while ((opt = prog_getopt(argc, argv, ":h", long_options)) != -1) {
		switch (opt) {
		case 'c': cache_option = optarg; break;
		case 'J': json_output = 1; break;
		case 'O': offline = 1; break;
		case 'r': region = optarg; break;
		case 'R': relay_url = optarg; break;
		case 's': search = optarg; break;
		case 't':
			prog_duration("--timeout", optarg);
			timeout = optarg;
			break;
		case 'u': upstream_option = optarg; break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(prog_finish_stdout(0));
		case 'V':
			printf("list-dishes %s\n", VERSION);
			exit(prog_finish_stdout(0));
		default:
			usage();
		}
	}
	if (relay_url == NULL && (env = getenv("RELAY_URL")) != NULL &&
	    *env != '\0')
		relay_url = env;
	if (relay_url != NULL && offline)
		errx(EXIT_USAGE, "--offline reads the local cache; it cannot "
		    "go through a relay");
	if (search != NULL && *search == '\0')
		errx(EXIT_USAGE, "--search needs some text");
	if (search != NULL && optind < argc)
		errx(EXIT_USAGE, "--search looks through every restaurant; "
		    "give no identifiers with it");
}

int
main(int argc, char *argv[])
{
	struct restaurant *r = NULL;
	struct page *pages;
	size_t n = 0, count, i, asked;
	jv list;

	prog_init(argv);
	parse_options(argc, argv);
	argv += optind;
	count = (size_t)(argc - optind);
	tty = isatty(STDOUT_FILENO);
	/*
	 * The list and the menus asked for, in one concurrent round; to a
	 * relay, the menus of a search too, if it has menu.routes.
	 */
	pages = xcalloc(count + 2, sizeof *pages);
	pages[0].path = xstrdup("/restaurant");
	for (i = 0; i < count; i++)
		menu_page(&pages[i + 1], text_of(argv[i]));
	asked = count + 1;
	if (search != NULL && relay_url != NULL)
		pages[asked++].path = xstrdup(MENUS_ROUTE);
	fetch(pages, asked);
	if (!jv_is_valid(list = page_json(&pages[0])))
		exit(data_error ? EX_DATAERR : EXIT_UNAVAILABLE);
	n = restaurants(list, &r);
	if (search != NULL)
		search_menus(r, n, asked > 1 ? &pages[1] : NULL);
	else if (count > 0)
		show_menus(argv, count, r, n, pages + 1);
	else
		list_restaurants(r, n);
	pages_free(pages, asked);
	free(r);
	jv_free(list);
	return prog_finish_stdout(data_error ? EX_DATAERR : exit_status);
}
