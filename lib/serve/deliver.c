/*
 * The delivery queue (relay-serve --queue); see deliver.h.
 *
 * The thread, each time it wakes (asked to, or once a second): reads
 * what is due, locks what no other process delivers, then in one
 * transaction keeps the requests accepted meanwhile, settles the
 * attempts that ended and starts the new ones; one sync for all. The
 * event loop learns of both through an eventfd: accepted requests are
 * answered 202 only then, and started ones go upstream through the
 * cache, whose answers come back to be settled.
 */
#include <sys/eventfd.h>
#include <sys/random.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/io.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "net/metrics.h"
#include "serve/deliver.h"

#define POLL_MS		1000	/* other processes' entries are seen this soon */
#define IN_FLIGHT_MAX	32	/* deliveries at once, per process */
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	300000
#define RETRY_AFTER_MAX_S 3600
#define KEEP_DELIVERED_MS (24 * 3600 * 1000LL)	/* then they are removed */

enum job_kind { JOB_ADD, JOB_SETTLE };

struct job {
	struct job		*next;
	enum job_kind		 kind;
	struct store_queued	 q;		/* ADD: to keep; SETTLE: how */
	int			 uncounted;	/* SETTLE: never sent */
	const char		*failure;	/* ADD: why it was not kept */
	deliver_added_fn	*fn;		/* ADD */
	void			*ctx;		/* NULL once forgotten */
};

/* One entry being delivered, from the thread's start to its settle. */
struct delivery {
	struct delivery		*next;
	struct deliver		*d;
	struct store_queued	 q;
	struct through_call	*call;
	long long		 retry_after_ms;
	int			 decided;	/* q's state is set already */
	int			 uncounted;	/* …and the attempt was none */
	int			 no_body;	/* its body could not be read */
};

struct deliver {
	struct store		*s;		/* the thread's */
	int			 lock_fd;	/* CACHE-queue.lock */
	struct loop		*loop;
	struct through		*th;
	long long		 max_attempts;
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;
	struct job		*jobs, **jobs_tail;	/* for the thread */
	struct job		*round, **round_tail;	/* the loop's */
	struct job		*added;			/* for the loop */
	struct delivery		*started;		/* for the loop */
	struct delivery		*delivering;		/* the loop's */
	long long		 in_flight[IN_FLIGHT_MAX];	/* the thread's */
	int			 n_in_flight;
	int			 closing, poke;
	int			 wake_fd;
	struct watch		*wake;
	long long		 forgot_ms;
};

/* Unix ms, as the queue file keeps times: shared with other processes. */
static long long
now_ms(void)
{
	return prog_clock_us() / 1000;
}

/*
 * What an attempt that ended with q's status (0: no response) and
 * error makes of the entry: delivered if the upstream decided
 * (2xx-4xx but 408, 425 and 429), else queued again after its
 * Retry-After or a backoff of 1 s doubling to 5 min, half of it
 * random; failed once max_attempts are spent.
 */
void
deliver_outcome(struct store_queued *q, long long max_attempts,
    long long retry_after_ms, long long now)
{
	long long backoff;
	int shift = q->attempts > 1 ? (int)(q->attempts < 20 ? q->attempts - 1 :
	    19) : 0;

	free(q->state);
	if (q->status >= 200 && q->status < 500 && q->status != 408 &&
	    q->status != 425 && q->status != 429) {
		q->state = xstrdup("delivered");
		return;
	}
	if (q->attempts >= max_attempts) {
		q->state = xstrdup("failed");
		return;
	}
	q->state = xstrdup("queued");
	backoff = BACKOFF_MIN_MS << shift;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	q->next_ms = now + (retry_after_ms >= 0 ? retry_after_ms :
	    backoff / 2 + random() % (backoff / 2 + 1));
}

/* One byte of the lock file per entry; never blocks. */
static int
lock_entry(struct deliver *d, long long id, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = (off_t)id,
		.l_len = 1,
	};

	return fcntl(d->lock_fd, F_OFD_SETLK, &fl);
}

static int
in_flight(const struct deliver *d, long long id)
{
	int i;

	for (i = 0; i < d->n_in_flight; i++)
		if (d->in_flight[i] == id)
			return 1;
	return 0;
}

static void
end_flight(struct deliver *d, long long id)
{
	int i;

	for (i = 0; i < d->n_in_flight; i++)
		if (d->in_flight[i] == id) {
			d->in_flight[i] = d->in_flight[--d->n_in_flight];
			break;
		}
	lock_entry(d, id, F_UNLCK);
}

struct claims {
	struct deliver		*d;
	struct delivery		*list;		/* due, locked */
	struct buf		 orphans;	/* ids of the dead's, locked */
};

/* A due entry: ours to deliver if no one else holds it. */
static void
on_due(void *ctx, struct store_queued *q)
{
	struct claims *c = ctx;
	struct deliver *d = c->d;
	struct delivery *dv;

	if (in_flight(d, q->id) || d->n_in_flight == IN_FLIGHT_MAX ||
	    lock_entry(d, q->id, F_WRLCK) < 0) {
		store_queued_free(q);
		return;
	}
	d->in_flight[d->n_in_flight++] = q->id;
	dv = xcalloc(1, sizeof *dv);
	dv->d = d;
	dv->q = *q;
	dv->next = c->list;
	c->list = dv;
}

/* An entry some process was delivering: if it died, it is queued again. */
static void
on_delivering(void *ctx, struct store_queued *q)
{
	struct claims *c = ctx;

	if (!in_flight(c->d, q->id) && lock_entry(c->d, q->id, F_WRLCK) == 0)
		buf_add(&c->orphans, &q->id, sizeof q->id);
	store_queued_free(q);
}

/* Queues the entries of processes that died while delivering them. */
static void
requeue_orphans(struct deliver *d, struct claims *c, long long now)
{
	static char queued[] = "queued",
	    why[] = "its delivery was cut short: its process ended";
	struct store_queued again = { .state = queued, .next_ms = now,
		.error = why };
	size_t i;

	for (i = 0; i < c->orphans.len; i += sizeof again.id) {
		memcpy(&again.id, c->orphans.data + i, sizeof again.id);
		store_queue_settle(d->s, &again, 0, now);
	}
}

static void
unlock_orphans(struct deliver *d, struct claims *c)
{
	long long id;
	size_t i;

	for (i = 0; i < c->orphans.len; i += sizeof id) {
		memcpy(&id, c->orphans.data + i, sizeof id);
		lock_entry(d, id, F_UNLCK);
	}
	buf_free(&c->orphans);
}

/* Keeps, settles and starts, in one transaction; returns the started. */
static struct delivery *
apply(struct deliver *d, struct job *jobs, int claim)
{
	struct claims c = { d, NULL, BUF_INIT };
	struct delivery *dv, *started = NULL, *next;
	struct job *j;
	long long now = now_ms();
	int lost;

	if (claim) {
		store_queue_list(d->s, "delivering", on_delivering, &c);
		store_queue_due(d->s, now, IN_FLIGHT_MAX, on_due, &c);
	}
	store_batch_begin(d->s);
	requeue_orphans(d, &c, now);
	for (j = jobs; j != NULL; j = j->next)
		if (j->kind == JOB_ADD && store_queue_add(d->s, &j->q, now) < 0)
			j->failure = "the queue file cannot be written";
	for (j = jobs; j != NULL; j = j->next)
		if (j->kind == JOB_SETTLE)
			store_queue_settle(d->s, &j->q, j->uncounted, now);
	for (dv = c.list; dv != NULL; dv = next) {
		next = dv->next;
		if (store_queue_start(d->s, dv->q.id, now) == 1) {
			dv->q.attempts++;
			dv->next = started;
			started = dv;
		} else {
			end_flight(d, dv->q.id);
			store_queued_free(&dv->q);
			free(dv);
		}
	}
	lost = store_batch_end(d->s) < 0;
	unlock_orphans(d, &c);
	for (j = jobs; j != NULL; j = j->next) {
		if (j->kind == JOB_ADD) {	/* kept, or never to be */
			free(j->q.body);
			j->q.body = NULL;
		}
		if (lost && j->kind == JOB_ADD)
			j->failure = "the queue file cannot be written";
		if (j->kind == JOB_SETTLE)	/* lost: the orphan check redoes it */
			end_flight(d, j->q.id);
	}
	if (lost)
		for (; started != NULL; started = next) {
			next = started->next;
			end_flight(d, started->q.id);
			store_queued_free(&started->q);
			free(started);
		}
	/* Read here, on the thread: a large body never holds the loop. */
	for (dv = started; dv != NULL; dv = dv->next)
		dv->no_body = store_queue_body(d->s, &dv->q) < 0;
	return started;
}

/* The jobs asked for, once there are some or the poll is due. */
static struct job *
take_jobs(struct deliver *d, int *claim)
{
	struct timespec until;
	struct job *jobs;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += POLL_MS / 1000;
	pthread_mutex_lock(&d->lock);
	while (d->jobs == NULL && !d->poke && !d->closing)
		if (pthread_cond_timedwait(&d->work, &d->lock, &until) ==
		    ETIMEDOUT)
			break;
	jobs = d->jobs;
	d->jobs = NULL;
	d->jobs_tail = &d->jobs;
	*claim = !d->closing;
	d->poke = 0;
	pthread_mutex_unlock(&d->lock);
	return jobs;
}

static void *
deliver_thread(void *arg)
{
	struct deliver *d = arg;
	struct delivery *started, *last;
	struct job *jobs, *j, *next;
	uint64_t one = 1;
	int claim, closing;

	do {
		jobs = take_jobs(d, &claim);
		started = apply(d, jobs, claim);
		if (now_ms() - d->forgot_ms > 3600 * 1000) {
			store_queue_forget(d->s, now_ms() - KEEP_DELIVERED_MS);
			d->forgot_ms = now_ms();
		}
		pthread_mutex_lock(&d->lock);
		for (j = jobs; j != NULL; j = next) {
			next = j->next;
			if (j->kind == JOB_ADD) {
				j->next = d->added;
				d->added = j;
			} else {
				store_queued_free(&j->q);
				free(j);
			}
		}
		if (started != NULL) {
			for (last = started; last->next != NULL; last = last->next)
				;
			last->next = d->started;
			d->started = started;
		}
		if (jobs != NULL || started != NULL)
			d->poke = 1;	/* what they let go may be due now */
		closing = d->closing && d->jobs == NULL;
		pthread_mutex_unlock(&d->lock);
		(void)!write(d->wake_fd, &one, sizeof one);
	} while (!closing);
	return NULL;
}

/* The loop's side: hand a job to the thread at the round's end. */
static void
ask(struct deliver *d, struct job *j)
{
	*d->round_tail = j;
	d->round_tail = &j->next;
}

/* The end of an attempt: settled by the thread, in the file. */
static void
settle(struct delivery *dv)
{
	struct deliver *d = dv->d;
	struct delivery **p;
	struct job *j = xcalloc(1, sizeof *j);

	for (p = &d->delivering; *p != dv; p = &(*p)->next)
		;
	*p = dv->next;
	if (!dv->decided)
		deliver_outcome(&dv->q, d->max_attempts, dv->retry_after_ms,
		    now_ms());
	if (!dv->uncounted)
		metrics_delivery(strcmp(dv->q.state, "queued") == 0 ?
		    "retried" : dv->q.state);
	j->kind = JOB_SETTLE;
	j->q = dv->q;
	j->uncounted = dv->uncounted;
	ask(d, j);
	deliver_flush(d);
	free(dv);
}

static void
set_error(struct delivery *dv, const char *error)
{
	free(dv->q.error);
	dv->q.error = error != NULL ? xstrdup(error) : NULL;
}

/* Queued again at next, as the caller decided. */
static void
requeue(struct delivery *dv, long long next, int uncounted)
{
	free(dv->q.state);
	dv->q.state = xstrdup("queued");
	dv->q.next_ms = next;
	dv->decided = 1;
	dv->uncounted = uncounted;
}

/* Not for an unsafe method, which the cache never answers; but if so… */
static void
on_stored(void *ctx, const struct store_entry *e, enum through_how how)
{
	struct delivery *dv = ctx;

	(void)e, (void)how;
	dv->call = NULL;
	set_error(dv, "answered from the cache, not delivered");
	settle(dv);
}

static int
on_head(void *ctx, int status, const char *fields)
{
	struct delivery *dv = ctx;
	struct header h;

	dv->q.status = status;
	free(dv->q.response_type);
	dv->q.response_type = headers_get(fields, "content-type", &h) ?
	    xstrndup(h.value, h.value_len) : NULL;
	dv->retry_after_ms = http_retry_after_ms(fields, RETRY_AFTER_MAX_S);
	free(dv->q.response);
	dv->q.response = NULL;
	dv->q.response_len = 0;
	return 0;
}

/* Keeps the start of the upstream's body, DELIVER_RESPONSE_MAX bytes. */
static int
on_body(void *ctx, const void *p, size_t n)
{
	struct delivery *dv = ctx;
	size_t room = DELIVER_RESPONSE_MAX - dv->q.response_len;

	if (n > room)
		n = room;
	if (n > 0) {
		dv->q.response = xrealloc(dv->q.response, dv->q.response_len + n);
		memcpy(dv->q.response + dv->q.response_len, p, n);
		dv->q.response_len += n;
	}
	return 0;
}

static void
on_done(void *ctx, const char *error)
{
	struct delivery *dv = ctx;

	dv->call = NULL;
	if (error != NULL)
		dv->q.status = 0;	/* cut short: not known to be done */
	else if (dv->q.status >= 400)
		error = http_reason(dv->q.status);
	set_error(dv, error);
	settle(dv);
}

static void
on_fail(void *ctx, enum through_failure why, const char *error)
{
	struct delivery *dv = ctx;
	const struct through_result *r = through_result(dv->call);

	dv->call = NULL;
	dv->q.status = 0;
	set_error(dv, error);
	if (why == THROUGH_UPSTREAM_LIMITED)	/* never sent: no attempt */
		requeue(dv, now_ms() + r->retry_after_s * 1000, 1);
	settle(dv);
}

static const struct through_sink delivery_sink = {
	.stored = on_stored, .head = on_head, .body = on_body,
	.done = on_done, .fail = on_fail,
};

/*
 * Sends a started entry upstream, through the cache, with its body if
 * it has one (NULL: it had no content). One whose body cannot be read
 * is an attempt that failed.
 */
static void
send_entry(struct deliver *d, struct delivery *dv)
{
	struct through_request req = {
		.key = dv->q.url, .method = dv->q.method, .fields = "",
		.forward = dv->q.fields, .body = dv->q.body,
		.body_len = dv->q.body_len,
	};

	dv->next = d->delivering;
	d->delivering = dv;
	dv->retry_after_ms = -1;
	if (dv->no_body) {
		dv->q.status = 0;
		set_error(dv, "its body cannot be read from the queue file");
		settle(dv);
		return;
	}
	through_start(d->th, &req, &delivery_sink, dv, &dv->call);
}

static void
on_wake(struct watch *w, short revents, void *ctx)
{
	struct deliver *d = ctx;
	struct delivery *started, *next;
	struct job *added, *j;
	uint64_t n;

	(void)w, (void)revents;
	(void)!read(d->wake_fd, &n, sizeof n);
	pthread_mutex_lock(&d->lock);
	added = d->added;
	started = d->started;
	d->added = NULL;
	d->started = NULL;
	pthread_mutex_unlock(&d->lock);
	for (; added != NULL; added = j) {
		j = added->next;
		if (added->ctx != NULL)
			added->fn(added->ctx, added->failure != NULL ? 0 :
			    added->q.id, added->failure != NULL ? NULL :
			    added->q.token, added->failure);
		store_queued_free(&added->q);
		free(added);
	}
	for (; started != NULL; started = next) {
		next = started->next;
		send_entry(d, started);
	}
}

/*
 * Opens the queue file beside cache_path and starts delivering; an
 * attempt that fails is retried up to max_attempts.
 */
struct deliver *
deliver_start(const char *cache_path, struct loop *loop, struct through *th,
    long long max_attempts)
{
	struct deliver *d = xcalloc(1, sizeof *d);
	struct buf path = BUF_INIT;

	d->s = store_open_queue(cache_path, 1);
	if (store_status(d->s) != 0)
		prog_errx(store_status(d->s), "%s", store_error(d->s));
	buf_printf(&path, "%s-queue.lock", cache_path);
	if ((d->lock_fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC,
	    0666)) < 0)
		prog_err(EX_CANTCREAT, "cannot open '%s'", buf_cstr(&path));
	buf_free(&path);
	d->loop = loop;
	d->th = th;
	d->max_attempts = max_attempts;
	d->jobs_tail = &d->jobs;
	d->round_tail = &d->round;
	d->forgot_ms = 0;
	if ((d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		prog_err(EX_OSERR, "cannot start the delivery queue");
	d->wake = loop_watch(loop, d->wake_fd, POLLIN, on_wake, d);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work, NULL);
	prog_start_thread(&d->thread, deliver_thread, d, "delivery queue");
	return d;
}

/*
 * A token its client names an entry by: 128 random bits in hex, so
 * that no client can guess another's, as it could a row's number.
 */
static char *
new_token(void)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char bits[DELIVER_TOKEN_LEN / 2];
	char *token = xmalloc(DELIVER_TOKEN_LEN + 1);
	size_t i;

	if (getrandom(bits, sizeof bits, 0) != (ssize_t)sizeof bits)
		prog_err(EX_OSERR, "cannot make a queue token");
	for (i = 0; i < sizeof bits; i++) {
		token[2 * i] = hex[bits[i] >> 4];
		token[2 * i + 1] = hex[bits[i] & 15];
	}
	token[DELIVER_TOKEN_LEN] = '\0';
	return token;
}

/* Whether text is a token as new_token makes them (a path's part). */
int
deliver_token_valid(const char *text)
{
	size_t i;

	for (i = 0; i < DELIVER_TOKEN_LEN; i++)
		if (!((text[i] >= '0' && text[i] <= '9') ||
		    (text[i] >= 'a' && text[i] <= 'f')))
			return 0;
	return text[i] == '\0';
}

/*
 * Keeps q (method, url, path, fields, body) in the queue file, with a
 * token of its own; its body is taken (the caller's is NULL after), so
 * that it is never copied. fn is called once it is there, or could
 * not be, unless the caller forgets it first (it is kept all the same).
 */
struct deliver_add *
deliver_add(struct deliver *d, struct store_queued *q, deliver_added_fn *fn,
    void *ctx)
{
	struct job *j = xcalloc(1, sizeof *j);

	j->kind = JOB_ADD;
	j->q.method = xstrdup(q->method);
	j->q.url = xstrdup(q->url);
	j->q.path = xstrdup(q->path);
	j->q.fields = xstrdup(q->fields);
	j->q.token = new_token();
	j->q.body = q->body;
	j->q.body_len = q->body_len;
	q->body = NULL;
	q->body_len = 0;
	j->fn = fn;
	j->ctx = ctx;
	ask(d, j);
	return (struct deliver_add *)j;
}

void
deliver_forget(struct deliver_add *a)
{
	((struct job *)a)->ctx = NULL;
}

/* After each round of events: its jobs go to the thread together. */
void
deliver_flush(struct deliver *d)
{
	if (d == NULL || d->round == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	*d->jobs_tail = d->round;
	d->jobs_tail = d->round_tail;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
	d->round = NULL;
	d->round_tail = &d->round;
}

/*
 * At exit: deliveries under way are given up (queued again, their
 * attempt counted, as the upstream may have had it), accepted requests
 * kept, and the thread stopped.
 */
void
deliver_stop(struct deliver *d)
{
	struct delivery *dv, *next;

	if (d == NULL)
		return;
	for (dv = d->delivering; dv != NULL; dv = next) {
		next = dv->next;
		through_cancel(dv->call);
		set_error(dv, "its delivery was cut short: relay-serve stopped");
		requeue(dv, now_ms(), 0);
		settle(dv);
	}
	deliver_flush(d);
	pthread_mutex_lock(&d->lock);
	d->closing = 1;
	pthread_cond_signal(&d->work);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->thread, NULL);
	on_wake(d->wake, 0, d);		/* frees what came back */
	loop_unwatch(d->wake);
	close(d->wake_fd);
	close(d->lock_fd);
	pthread_cond_destroy(&d->work);
	pthread_mutex_destroy(&d->lock);
	store_close(d->s);
	free(d);
}
