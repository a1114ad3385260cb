/*
 * The upstream: HTTP transfers with libcurl's multi interface, many at
 * once on shared connections, each streaming its response head and
 * body to callbacks through curl's fixed-size buffers.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/buf.h"
#include "http/headers.h"
#include "http/http.h"
#include "upstream/upstream.h"

struct upstream {
	CURLM			*multi;
	struct upstream_options	 opt;
	int			 running;
	struct curl_waitfd	*waitfds;	/* upstream_poll's, reused */
	unsigned		 waitfds_len;
	struct transfer		*refused;	/* to end as 404, unasked */
};

struct transfer {
	struct upstream_request	 req;
	CURL			*easy;
	struct curl_slist	*headers;
	struct buf		 head;		/* the current response's fields */
	long			 status;
	int			 status_seen;	/* an HTTP status line came */
	int			 head_ended;	/* …and the blank line after its
						   final head */
	int			 head_done;	/* handed to the caller */
	int			 aborted;
	int			 broken;	/* framing the caller must not trust */
	long long		 length;	/* Content-Length, or -1 */
	int			 coded;		/* a Transfer-Encoding came */
	int			 chunked;	/* …chunked last: ours to decode */
	struct http_chunked	 chunks;
	struct buf		 decoded;	/* of the bytes curl holds */
	int			 redelivery;	/* curl gives them again */
	char			 error[CURL_ERROR_SIZE];	/* curl's */
	CURLcode		 code;		/* how it ended */
	char			 why[96];	/* why it is broken */
	struct transfer		*next_refused;
};

struct upstream *
upstream_new(const struct upstream_options *opt)
{
	struct upstream *u = xcalloc(1, sizeof *u);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (u->multi = curl_multi_init()) == NULL)
		out_of_memory();
	u->opt = *opt;
	/* HTTP/2 streams share one connection where the server offers it. */
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	if (opt->max_connections > 0)
		curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
		    opt->max_connections);
	return u;
}

/* Parses "HTTP/1.1 200 OK" and "HTTP/2 200". */
static long
status_of(const char *line, size_t n)
{
	const char *sp = memchr(line, ' ', n);
	long status = 0;
	int i;

	if (sp == NULL || (size_t)(sp - line) + 4 > n)
		return 0;
	for (i = 1; i <= 3; i++) {
		if (sp[i] < '0' || sp[i] > '9')
			return 0;
		status = status * 10 + (sp[i] - '0');
	}
	return status;
}

/* Makes the transfer fail with this reason; curl stops on 0. */
static size_t
broken(struct transfer *t, const char *why)
{
	snprintf(t->why, sizeof t->why, "%s", why);
	t->broken = 1;
	return 0;
}

/*
 * A Content-Length field's value: one or more decimal numbers in a
 * list, all the same (RFC 9112 section 6.3, item 5). Differing values
 * across fields or within one make the response invalid: a proxy must
 * not forward it, as the framing it would pass on is ambiguous.
 */
static int
check_length(struct transfer *t, const char *v, size_t n)
{
	long long len;
	size_t i = 0, digits;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		if (i == n)
			break;
		for (len = 0, digits = 0; i < n && v[i] >= '0' && v[i] <= '9';
		    i++, digits++) {
			if (len > (LLONG_MAX - 9) / 10)
				return -1;
			len = len * 10 + (v[i] - '0');
		}
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		if (digits == 0 || (i < n && v[i] != ','))
			return -1;
		if (t->length >= 0 && t->length != len)
			return -1;
		t->length = len;
	}
	return t->length >= 0 ? 0 : -1;
}

/*
 * Whether a Transfer-Encoding field is "chunked" alone, the one coding
 * relay takes off itself (curl is told not to decode). Any other, on
 * its own or under chunked, is one relay cannot relay as content.
 */
static int
only_chunked(const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

/* Whether curl is to follow this response rather than hand it over. */
static int
followed(const struct transfer *t)
{
	struct header h;

	return t->req.max_redirects > 0 && (t->status == 301 ||
	    t->status == 302 || t->status == 303 || t->status == 307 ||
	    t->status == 308) && headers_get(buf_str(&t->head),
	    "location", &h);
}

/* Hands the head to the caller once; file: URLs have no status line. */
static int
deliver_head(struct transfer *t)
{
	if (t->head_done)
		return 0;
	t->head_done = 1;
	if (t->status == 0)
		t->status = 200;
	if (t->req.on_head != NULL && t->req.on_head(t->req.ctx,
	    (int)t->status, buf_cstr(&t->head)) < 0) {
		t->aborted = 1;
		return -1;
	}
	return 0;
}

/* An interim (1xx) status: a final response is still to come. */
static int
interim(long status)
{
	return status >= 100 && status < 200;
}

/*
 * The blank line after an interim response's head: handed to the
 * caller. A 101 is not interim: it would switch protocols, and relay
 * asks no upstream to (RFC 9110 section 15.2.2); curl would take it as
 * the final response.
 */
static size_t
interim_ended(struct transfer *t, size_t len)
{
	if (t->status == 101)
		return broken(t, "101 Switching Protocols, not asked for");
	if (t->req.on_interim != NULL)
		t->req.on_interim(t->req.ctx, (int)t->status,
		    buf_cstr(&t->head));
	return len;
}

/*
 * curl calls this once per header line of every response it reads,
 * interim ones (1xx) included: each status line starts over.
 */
static size_t
on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct transfer *t = ctx;
	size_t len = size * n, vlen;
	const char *colon;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		t->status = status_of(p, len);
		t->status_seen = 1;
		t->head_ended = 0;
		t->length = -1;
		t->coded = t->chunked = 0;
		memset(&t->chunks, 0, sizeof t->chunks);
		buf_reset(&t->head);
		return len;
	}
	if (len <= 2) {		/* the blank line ending a head */
		if (interim(t->status))
			return interim_ended(t, len);
		/*
		 * RFC 9112 section 6.3: a length beside a transfer coding
		 * may be a response split in two, and a coding other than
		 * chunked last is one relay cannot take off: neither is
		 * relayed as if its bytes were the content (nginx: 502).
		 */
		if (t->coded && t->length >= 0)
			return broken(t, "both Content-Length and "
			    "Transfer-Encoding");
		if (t->coded && !t->chunked)
			return broken(t, "a transfer coding other than "
			    "chunked");
		t->head_ended = 1;
		if (t->status >= 200 && !followed(t) && deliver_head(t) < 0)
			return 0;
		return len;
	}
	if (t->head.len + len > UPSTREAM_MAX_HEAD)
		return broken(t, "response header fields longer than 64 KiB");
	vlen = len;
	while (vlen > 0 && (p[vlen - 1] == '\n' || p[vlen - 1] == '\r'))
		vlen--;
	if ((colon = memchr(p, ':', vlen)) == NULL)
		return len;
	if ((size_t)(colon - p) == 14 && strncasecmp(p, "content-length",
	    14) == 0 && check_length(t, colon + 1,
	    vlen - (size_t)(colon - p) - 1) < 0)
		return broken(t, "invalid or differing Content-Length values");
	if ((size_t)(colon - p) == 17 && strncasecmp(p, "transfer-encoding",
	    17) == 0) {
		/* a second field line is a second coding: not chunked alone */
		t->chunked = !t->coded && only_chunked(colon + 1,
		    vlen - (size_t)(colon - p) - 1);
		t->coded = 1;
	}
	headers_add(&t->head, p, (size_t)(colon - p), colon + 1,
	    vlen - (size_t)(colon - p) - 1);
	return len;
}

/*
 * Body bytes as curl reads them: chunked ones decoded here. When the
 * caller pauses, curl gives the same bytes again on resuming; their
 * decoded form is kept until then. Bytes past a Content-Length are not
 * given at all: curl cuts the body there and closes the connection, so
 * that they cannot be read as the answer to another request.
 */
static size_t
on_write(char *p, size_t size, size_t n, void *ctx)
{
	struct transfer *t = ctx;
	const char *body = p;
	size_t len = size * n;
	int rc;

	if (t->broken || deliver_head(t) < 0)
		return 0;
	if (t->chunked) {
		if (!t->redelivery) {
			buf_reset(&t->decoded);
			if (http_dechunk(&t->chunks, p, len, &t->decoded) < 0)
				return broken(t, "invalid chunked framing");
		}
		body = t->decoded.data, len = t->decoded.len;
	}
	t->redelivery = 0;
	rc = t->req.on_body != NULL && len > 0 ?
	    t->req.on_body(t->req.ctx, body, len) : 0;
	if (rc == UPSTREAM_PAUSE) {
		t->redelivery = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (rc < 0) {
		t->aborted = 1;
		return 0;
	}
	return size * n;
}

static void
set_options(struct upstream *u, struct transfer *t)
{
	CURL *e = t->easy;

	curl_easy_setopt(e, CURLOPT_URL, t->req.url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	/* bodies pass as the upstream coded them; chunks: on_write */
	curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(e, CURLOPT_HTTP_TRANSFER_DECODING, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "relay/" VERSION);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
	/*
	 * Over TLS, wait for a connection that may turn out to multiplex
	 * (HTTP/2) rather than open more. Plain HTTP is HTTP/1.1 here, and
	 * waiting would hold every transfer behind the first response.
	 */
	if (strncasecmp(t->req.url, "https:", 6) == 0)
		curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	if (u->opt.ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, u->opt.ca_file);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, u->opt.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, u->opt.timeout_ms);
	if (u->opt.low_speed_secs > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT,
		    u->opt.low_speed_bytes);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
		    u->opt.low_speed_secs);
	}
	if (t->req.method != NULL && strcmp(t->req.method, "HEAD") == 0)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (t->req.method != NULL && strcmp(t->req.method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->req.method);
	if (t->headers != NULL)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	if (t->req.max_redirects > 0) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, t->req.max_redirects);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	if (t->req.body != NULL) {	/* the caller's until the end */
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)t->req.body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->req.body);
	}
}

static struct curl_slist *
append(struct curl_slist *list, const char *line)
{
	struct curl_slist *next = curl_slist_append(list, line);

	if (next == NULL)
		out_of_memory();
	return next;
}

/*
 * Turns a header block into curl's list of lines. A request with a
 * body gets no field libcurl would add to it on its own: no
 * form-encoded Content-Type the client never sent, no Expect that
 * would wait a second for a 100 (an empty "Name:" line stops curl's).
 */
static struct curl_slist *
header_list(const char *block, int with_body)
{
	struct curl_slist *list = NULL;
	struct buf line = BUF_INIT;
	struct header h;
	const char *p = block;

	while (p != NULL && headers_next(&p, &h)) {
		buf_reset(&line);
		buf_add(&line, h.name, h.name_len);
		buf_add(&line, ": ", 2);
		buf_add(&line, h.value, h.value_len);
		list = append(list, buf_cstr(&line));
	}
	if (with_body && (block == NULL ||
	    !headers_get(block, "content-type", &h)))
		list = append(list, "Content-Type:");
	if (with_body)
		list = append(list, "Expect:");
	buf_free(&line);
	return list;
}

/*
 * Whether a file: URL names something other than a regular file (a
 * directory, a FIFO that would hold the loop, a device that never
 * ends): never read, as if it were not there. Other URLs are curl's.
 */
static int
not_a_file(const char *url)
{
	CURLU *u;
	char *path = NULL;
	struct stat st;
	int refused = 0;

	if (strncasecmp(url, "file:", 5) != 0 || (u = curl_url()) == NULL)
		return 0;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) ==
	    CURLUE_OK)
		refused = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
	curl_free(path);
	curl_url_cleanup(u);
	return refused;
}

/*
 * Starts a transfer; the request's strings are copied by curl, but
 * for its body, which must stay until the transfer ends or is
 * cancelled.
 */
struct transfer *
upstream_add(struct upstream *u, const struct upstream_request *req)
{
	struct transfer *t = xcalloc(1, sizeof *t);

	t->req = *req;
	t->length = -1;
	if ((t->easy = curl_easy_init()) == NULL)
		out_of_memory();
	t->headers = header_list(req->headers, req->body != NULL);
	set_options(u, t);
	t->req.url = NULL;	/* not ours to keep */
	t->req.headers = NULL;
	t->req.body = NULL;
	u->running++;
	if (not_a_file(req->url)) {	/* answered on the next round */
		t->next_refused = u->refused;
		u->refused = t;
		return t;
	}
	if (curl_multi_add_handle(u->multi, t->easy) != CURLM_OK)
		out_of_memory();
	return t;
}

/* How many redirects the transfer has followed so far. */
long
upstream_redirects(struct transfer *t)
{
	long n = 0;

	curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_COUNT, &n);
	return n;
}

/*
 * The URL of the response being received: the last one a redirect led
 * to. curl owns the string; it lasts as long as the transfer.
 */
const char *
upstream_url(struct transfer *t)
{
	const char *url = NULL;

	curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
	return url != NULL ? url : "";
}

/*
 * In on_done: whether the transfer failed for a reason that trying
 * again cannot mend (a scheme curl does not speak, a bad URL, too many
 * redirects, a certificate refused), as opposed to one that may pass
 * (a refused or reset connection, a timeout, a broken response).
 */
int
upstream_failure_lasts(const struct transfer *t)
{
	switch (t->code) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_FILE_COULDNT_READ_FILE:
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
		return !t->broken && !t->aborted;
	default:
		return 0;
	}
}

/* Delivers again the body bytes that on_body paused on. */
void
upstream_resume(struct upstream *u, struct transfer *t)
{
	(void)u;
	curl_easy_pause(t->easy, CURLPAUSE_CONT);
}

static void
release(struct upstream *u, struct transfer *t)
{
	struct transfer **p;

	for (p = &u->refused; *p != NULL; p = &(*p)->next_refused)
		if (*p == t) {
			*p = t->next_refused;
			break;
		}
	curl_multi_remove_handle(u->multi, t->easy);
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	buf_free(&t->head);
	buf_free(&t->decoded);
	u->running--;
	free(t);
}

/* Ends a transfer whose caller has gone; on_done is not called. */
void
upstream_cancel(struct upstream *u, struct transfer *t)
{
	release(u, t);
}

static void
finish(struct upstream *u, struct transfer *t, CURLcode rc)
{
	void (*on_done)(void *, const char *) = t->req.on_done;
	void *ctx = t->req.ctx;
	const char *error = NULL;

	/* file: URLs have no status; a missing file is what 404 says. */
	if (rc == CURLE_FILE_COULDNT_READ_FILE && !t->head_done) {
		t->status = 404;
		rc = CURLE_OK;
	}
	/*
	 * curl takes a head cut short by the end of the connection as if
	 * it were whole, and an end after an interim response for an
	 * empty reply.
	 */
	if (t->status_seen && !t->head_ended && interim(t->status) &&
	    (rc == CURLE_OK || rc == CURLE_GOT_NOTHING))
		broken(t, "no final response after an interim one");
	else if (rc == CURLE_OK && t->status_seen && !t->head_ended)
		broken(t, "response head cut short");
	if (t->broken)
		rc = CURLE_RECV_ERROR;
	if (rc == CURLE_OK)
		deliver_head(t);	/* a response without a body */
	/*
	 * curl holds a header line whole, up to CURL_MAX_HTTP_HEADER bytes;
	 * a longer one fails the transfer as if memory had run out, with
	 * nothing in the error buffer. In a head, that is what it means.
	 */
	if (rc == CURLE_OUT_OF_MEMORY && !t->head_done && t->error[0] == '\0')
		snprintf(t->error, sizeof t->error, "response header line "
		    "longer than %d KiB", CURL_MAX_HTTP_HEADER / 1024);
	t->code = rc;
	if (t->broken) {
		error = t->why;
	} else if (rc != CURLE_OK && !t->aborted) {
		if (t->error[0] == '\0')
			snprintf(t->error, sizeof t->error, "%s",
			    curl_easy_strerror(rc));
		error = t->error;
	} else if (t->aborted) {
		error = "aborted";
	}
	if (on_done != NULL)
		on_done(ctx, error);
	release(u, t);
}

/* Finishes the transfers that completed; returns how many. */
static int
finish_completed(struct upstream *u)
{
	struct transfer *t;
	CURLMsg *msg;
	int left, n = 0;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
		finish(u, t, msg->data.result);
		n++;
	}
	while ((t = u->refused) != NULL) {	/* what curl would not find */
		u->refused = t->next_refused;
		finish(u, t, CURLE_FILE_COULDNT_READ_FILE);
		n++;
	}
	return n;
}

/*
 * Moves every transfer along, waiting up to timeout_ms for activity on
 * them or for the events asked on the caller's fds, whose revents are
 * set; then finishes the transfers that completed. Returns how many
 * transfers are running.
 */
int
upstream_poll(struct upstream *u, struct pollfd *fds, unsigned n,
    int timeout_ms)
{
	unsigned i;
	int still;

	if (n > u->waitfds_len) {
		u->waitfds = xrealloc(u->waitfds, n * sizeof *u->waitfds);
		u->waitfds_len = n;
	}
	for (i = 0; i < n; i++) {
		u->waitfds[i].fd = fds[i].fd;
		u->waitfds[i].events =
		    (fds[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
		    (fds[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0);
		u->waitfds[i].revents = 0;
	}
	curl_multi_perform(u->multi, &still);
	/* Transfers this perform completed must not wait out the poll. */
	if (finish_completed(u) > 0 || u->refused != NULL)
		timeout_ms = 0;
	if (still > 0 || n > 0)
		curl_multi_poll(u->multi, u->waitfds, n, timeout_ms, NULL);
	/* curl reports no POLLHUP or POLLERR: ask the kernel again. */
	if (n > 0 && poll(fds, n, 0) < 0)
		for (i = 0; i < n; i++)
			fds[i].revents = 0;
	curl_multi_perform(u->multi, &still);
	finish_completed(u);
	return u->running;
}

/* upstream_poll with at most one fd to wake for input on (-1: none). */
int
upstream_run(struct upstream *u, int timeout_ms, int wake_fd)
{
	struct pollfd wake = { wake_fd, POLLIN, 0 };

	return upstream_poll(u, &wake, wake_fd >= 0 ? 1 : 0, timeout_ms);
}

void
upstream_free(struct upstream *u)
{
	if (u == NULL)
		return;
	curl_multi_cleanup(u->multi);
	curl_global_cleanup();
	free(u->waitfds);
	free(u);
}
