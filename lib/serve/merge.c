/*
 * A merge route answered: its upstream calls made at once, each
 * through the shared cache with its own freshness and revalidation,
 * then its each's calls, one an item of another call's answer and
 * at-once of them at a time, and all their answers merged by the
 * route's jq program (libjq). Each's items and the program run in a
 * child process (jqprog.h), watched by the event loop, never waited for.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/jqprog.h"
#include "base/prog.h"
#include "http/headers.h"
#include "http/http.h"
#include "http/target.h"
#include "http/url.h"
#include "policy/policy.h"
#include "serve/admin.h"
#include "serve/merge.h"

#define MERGE_STOP_MS	100	/* a program's time left once stopping */
#define MERGE_MAX_RUNS	4	/* programs running at once in a process */

struct call {
	struct merge		*m;
	const char		*name;
	int			 fan;		/* one of each's */
	char			*path;		/* each's: its item's, or NULL */
	struct through_call	*call;		/* until it has answered */
	struct buf		 body;
	int			 status;
	const char		*error;		/* why it failed, or NULL */
	char			 error_text[256];
};

/*
 * A run of each's items or of the program, and what takes its values;
 * or one waiting for its turn.
 */
struct merge_run {
	struct merge		*m;
	struct jqrun		*run;		/* NULL: waiting for a turn */
	struct jqprog		*program;	/* …to run this */
	jv			 input;		/* …on this */
	struct watch		*watch;		/* its pipe and deadline */
	struct buf		 value;		/* the last one it gave */
	int			 nvalues;
	long long		 wait_until;	/* for a turn */
	int			(*take)(struct merge *);	/* 0: go on */
	void			(*ended)(struct merge *, enum jqrun_end,
				    const char *);
	struct merge_run	*next, **prev;	/* in the env's runs, or
						   prev NULL */
};

struct merge {
	struct merge_env	*env;
	struct route		*route;
	struct route_params	 params;
	struct cache_rules	 rules;
	struct call		 calls[ROUTES_MAX_CALLS];
	struct call		*fan;		/* each's, one an item */
	int			 nfan, fan_next, fan_running;
	int			 fanned;	/* each's items are known */
	int			 fan_cut;	/* over max-items, or no items */
	int			 pumping;	/* inside fan_pump */
	char			 fan_why[96];	/* why fan_cut */
	int			 items_failed;	/* …each's items did */
	int			 pending;	/* calls of the phase to answer */
	int			 starting;	/* inside merge_start */
	int			 ready;		/* the result is */
	struct merge_run	 jq;		/* its run, if one is under way */
	void			(*done)(struct merge *, void *);
	void			*ctx;
	struct merge_result	 result;
	char			 why[160];
};

/*
 * libjq's first compile error, as "file:line: jq: reason" with the
 * line of the routes file it is on: "jq: error: REASON at <top-level>,
 * line N:" then the line's text, which would show the wrapper
 * merge_compile puts before the route's program on its first line.
 */
static void
compile_error(const struct route *r, int first, const char *errors,
    char *err, size_t errlen)
{
	static const char hint[] = " (Unix shell quoting issues?)";
	const char *reason = errors, *at = strstr(errors, " at <top-level>, line ");
	size_t n = strcspn(errors, "\n");
	long line = 1;

	if (strncmp(reason, "jq: error: ", 11) == 0)
		reason += 11, n -= 11;
	if (at != NULL && at < reason + n) {
		line = strtol(at + 22, NULL, 10);
		n = (size_t)(at - reason);
	}
	if (n >= sizeof hint - 1 &&
	    strncmp(reason + n - (sizeof hint - 1), hint, sizeof hint - 1) == 0)
		n -= sizeof hint - 1;	/* the shell is not involved here */
	snprintf(err, errlen, "%s:%ld: jq: %.*s", r->file,
	    first + (line > 0 ? line - 1 : 0), (int)n, reason);
}

/*
 * Compiles a route's program with no environment: jq's $ENV and env
 * would give it relay-serve's, whose variables hold the secrets routes'
 * headers take (${TOKEN}), and a client's parameters steer what the
 * program answers. (The child that runs it has none either.)
 */
static int
compile(struct jqprog *p, const struct route *r, int line, const char *prelude,
    const char *prog, char *err, size_t errlen)
{
	extern char **environ;
	char **saved = environ, *none[] = { NULL };
	int rc;

	environ = none;
	rc = jqprog_compile(p, prelude, prog, jv_object());
	environ = saved;
	if (rc == 0)
		return 0;
	compile_error(r, line, buf_cstr(&p->errors), err, errlen);
	jqprog_free(p);
	return -1;
}

/*
 * Compiles the route's program with its parameters, its calls, each's
 * answers and $incomplete bound, from the object each request gives as
 * input; and each's items expression.
 */
int
merge_compile(struct route *r, char *err, size_t errlen)
{
	struct route_params ps;
	struct buf prog = BUF_INIT;
	struct jqprog *p = xmalloc(sizeof *p), *items = NULL;
	int i, rc;

	route_param_names(r, &ps);
	buf_adds(&prog, ". as {$incomplete");
	for (i = 0; i < ps.n; i++)
		buf_printf(&prog, ", $%s", ps.names[i]);
	for (i = 0; i < r->ncalls; i++)
		buf_printf(&prog, ", $%s", r->calls[i].name);
	if (r->each != NULL)
		buf_printf(&prog, ", $%s", r->each->name);
	buf_adds(&prog, "} | null | ");
	route_params_free(&ps);
	rc = compile(p, r, r->program_line, buf_cstr(&prog), r->program, err,
	    errlen);
	if (rc == 0 && r->each != NULL) {
		items = xmalloc(sizeof *items);
		if ((rc = compile(items, r, r->each->line, "", r->each->items,
		    err, errlen)) < 0) {
			free(items);
			jqprog_free(p);
		}
	}
	if (rc == 0) {
		r->compiled = p;
		if (r->each != NULL)
			r->each->compiled = items;
	} else {
		free(p);
	}
	buf_free(&prog);
	return rc;
}

static void
uncompile(void **compiled)
{
	if (*compiled != NULL) {
		jqprog_free(*compiled);
		free(*compiled);
	}
	*compiled = NULL;
}

void
merge_uncompile(struct route *r)
{
	uncompile(&r->compiled);
	if (r->each != NULL)
		uncompile(&r->each->compiled);
}

static int
ok_status(const struct call *c)
{
	return c->error == NULL && c->status >= 200 && c->status < 300;
}

/* The call's answer as JSON, or null if it failed or is not JSON. */
static jv
call_json(const struct call *c)
{
	jv v;

	if (!ok_status(c))
		return jv_null();
	v = jv_parse_sized(c->body.data ? c->body.data : "",
	    (int)c->body.len);
	if (!jv_is_valid(v)) {
		jv_free(v);
		return jv_null();
	}
	return v;
}

static void
answer_error(struct merge *m, int status, const char *detail)
{
	m->result.status = status;
	buf_reset(&m->result.body);
	http_error_body(&m->result.body, status, detail);
	if (m->result.error == NULL)
		m->result.error = detail;
}

/* The result is final: done is called, unless merge_start is returning. */
static void
answered(struct merge *m)
{
	m->ready = 1;
	if (!m->starting)
		m->done(m, m->ctx);
}

/* Answers status, saying detail; why goes to the log. */
static void
answer_run_error(struct merge *m, int status, const char *detail)
{
	m->result.error = m->why;
	answer_error(m, status, detail);
	answered(m);
}

static void launch(struct merge_env *, struct merge_run *);

/*
 * The oldest runs waiting start, while fewer than MERGE_MAX_RUNS run.
 * (Runs are listed newest first.)
 */
static void
take_turns(struct merge_env *env)
{
	struct merge_run *j, *oldest;

	while (env->nrunning < MERGE_MAX_RUNS) {
		oldest = NULL;
		for (j = env->runs; j != NULL; j = j->next)
			if (j->run == NULL)
				oldest = j;
		if (oldest == NULL)
			break;
		launch(env, oldest);
	}
}

/*
 * Ends the merge's run, killing its child if it still runs, or its
 * wait for a turn; the next run waiting may start.
 */
static void
end_run(struct merge *m)
{
	struct merge_run *j = &m->jq;

	if (j->prev == NULL)
		return;	/* none */
	loop_unwatch(j->watch);
	j->watch = NULL;
	if ((*j->prev = j->next) != NULL)
		j->next->prev = j->prev;
	j->prev = NULL;
	if (j->run != NULL) {
		jqrun_free(j->run);
		j->run = NULL;
		m->env->nrunning--;
	} else {
		jv_free(j->input);
	}
	buf_free(&j->value);
	take_turns(m->env);
}

/*
 * The run's values as they come, to its take, until it ends or take
 * has had enough; then its ended, after the run is gone (ended may
 * answer, and the merge be freed). A run cut short by a stop answers
 * 503 itself.
 */
static void
on_run(struct watch *w, short revents, void *ctx)
{
	struct merge *m = ctx;
	struct merge_run *j = &m->jq;
	void (*ended)(struct merge *, enum jqrun_end, const char *) = j->ended;
	enum jqrun_end end = JQRUN_DONE;
	char why[128];
	size_t len;
	int rc, status;

	(void)revents;
	while ((rc = jqrun_next(j->run, &j->value)) == JQRUN_VALUE) {
		j->nvalues++;
		if (j->take(m) != 0)
			break;	/* enough: the child is killed */
	}
	assert(rc != JQRUN_STDERR);	/* quiet */
	if (rc == 0) {
		watch_deadline(w, jqrun_deadline(j->run));
		return;
	}
	if (rc < 0)
		end = jqrun_end(j->run);
	if (end == JQRUN_HALTED) {	/* its message, as its stderr, unsaid */
		jqrun_halt(j->run, &status, &len);
		snprintf(why, sizeof why, "stopped with halt_error, exit "
		    "status %d", status);
	} else {
		snprintf(why, sizeof why, "%s", jqrun_why(j->run));
	}
	end_run(m);
	if (end == JQRUN_TIMEOUT && m->env->stop_by > 0) {
		snprintf(m->why, sizeof m->why, "route %s: stopped, as "
		    "relay-serve is", m->route->pattern);
		answer_run_error(m, 503, "relay-serve is stopping");
		return;
	}
	ended(m, end, why);
}

/* A run waited twice its timeout for a turn, or relay-serve stops. */
static void
on_no_turn(struct watch *w, short revents, void *ctx)
{
	struct merge *m = ctx;
	int stopping = m->env->stop_by > 0;

	(void)w;
	(void)revents;
	end_run(m);
	if (stopping)
		snprintf(m->why, sizeof m->why, "route %s: stopped, as "
		    "relay-serve is", m->route->pattern);
	else
		snprintf(m->why, sizeof m->why, "route %s: no turn to run "
		    "its program in %llds (%d run at once)", m->route->pattern,
		    2 * m->env->bounds.timeout_s, MERGE_MAX_RUNS);
	answer_run_error(m, 503, stopping ? "relay-serve is stopping" :
	    "too many route programs running");
}

/*
 * Starts a run that was waiting, in a child watched by the event loop.
 * One that cannot start (no process) answers 503.
 */
static void
launch(struct merge_env *env, struct merge_run *j)
{
	/* a client's parameters are not for the log */
	static const struct jq_text quiet = { .quiet = 1 };
	struct merge *m = j->m;

	assert(j->run == NULL && j->prev != NULL);
	loop_unwatch(j->watch);
	j->watch = NULL;
	j->run = jqrun_start(j->program, j->input, &env->bounds, &quiet);
	j->input = jv_invalid();	/* taken */
	if (j->run == NULL) {
		snprintf(m->why, sizeof m->why, "route %s: cannot start its "
		    "jq program: %s", m->route->pattern, strerror(errno));
		end_run(m);
		answer_run_error(m, 503, "cannot start the route program");
		return;
	}
	env->nrunning++;
	if (env->stop_by > 0)
		jqrun_cut(j->run, env->stop_by);
	j->watch = loop_watch(server_loop(env->server), jqrun_fd(j->run), POLLIN,
	    on_run, m);
	watch_deadline(j->watch, jqrun_deadline(j->run));
}

/*
 * Runs p on input (taken) in a child, at once or, with MERGE_MAX_RUNS
 * running, once it is its turn: its values go to take, then ended is
 * called with how it ended and why. One that has no turn within twice
 * the timeout (time for the runs ahead of it to end) answers 503.
 */
static void
start_run(struct merge *m, struct jqprog *p, jv input,
    int (*take)(struct merge *),
    void (*ended)(struct merge *, enum jqrun_end, const char *))
{
	struct merge_env *env = m->env;
	struct merge_run *j = &m->jq;
	long long until = prog_now_ms() + 2 * env->bounds.timeout_s * 1000;

	assert(j->prev == NULL);
	j->m = m;
	j->program = p;
	j->input = input;
	j->nvalues = 0;
	j->take = take;
	j->ended = ended;
	if ((j->next = env->runs) != NULL)
		j->next->prev = &j->next;
	j->prev = &env->runs;
	env->runs = j;
	if (env->nrunning < MERGE_MAX_RUNS) {
		launch(env, j);
		return;
	}
	j->wait_until = env->stop_by > 0 && env->stop_by < until ?
	    env->stop_by : until;
	j->watch = loop_watch(server_loop(env->server), -1, 0, on_no_turn, m);
	watch_deadline(j->watch, j->wait_until);
}

/* The program's first value is the answer; a second one is too many. */
static int
take_result(struct merge *m)
{
	struct merge_run *j = &m->jq;
	struct buf swap;

	if (j->nvalues > 1)
		return -1;
	swap = m->result.body;
	m->result.body = j->value;
	j->value = swap;
	return 0;
}

/*
 * The program has ended: its one value is the answer. Its own error
 * is logged, not sent (it may quote the request); a bound it met, a
 * halt_error's status, or a crash, is said to the client too.
 */
static void
program_ended(struct merge *m, enum jqrun_end end, const char *why)
{
	char detail[160];

	if (end == JQRUN_DONE && m->jq.nvalues == 1) {
		m->result.status = 200;
		buf_addc(&m->result.body, '\n');
	} else if (m->jq.nvalues > 1) {
		answer_error(m, 500, "route program gave several values");
	} else if (end == JQRUN_DONE || end == JQRUN_FAILED) {
		if (end == JQRUN_DONE)
			snprintf(m->why, sizeof m->why,
			    "route program gave no value");
		else
			snprintf(m->why, sizeof m->why, "route program: %s",
			    why);
		m->result.error = m->why;
		answer_error(m, 500, "route program failed");
	} else {
		snprintf(m->why, sizeof m->why, "route %s: program %s",
		    m->route->pattern, why);
		m->result.error = m->why;
		snprintf(detail, sizeof detail, "route program %s", why);
		answer_error(m, 500, detail);
	}
	answered(m);
}

/* each's answers, in item order: null for a failed call. */
static jv
fan_json(const struct merge *m)
{
	jv all = jv_array();
	int i;

	for (i = 0; i < m->nfan; i++)
		all = jv_array_append(all, call_json(&m->fan[i]));
	return all;
}

/* The first failed call, and every failed one's name in incomplete. */
static const struct call *
failures(const struct merge *m, jv *incomplete)
{
	const struct route *r = m->route;
	const struct call *failed = NULL;
	int i, fan_failed = m->fan_cut;

	for (i = 0; i < r->ncalls; i++)
		if (!ok_status(&m->calls[i])) {
			if (failed == NULL)
				failed = &m->calls[i];
			*incomplete = jv_array_append(*incomplete,
			    jv_string(r->calls[i].name));
		}
	for (i = 0; i < m->nfan; i++)
		if (!ok_status(&m->fan[i])) {
			if (failed == NULL)
				failed = &m->fan[i];
			fan_failed = 1;
		}
	if (fan_failed)
		*incomplete = jv_array_append(*incomplete,
		    jv_string(r->each->name));
	return failed;
}

/*
 * Every call has answered. A failed call fails the route, passing an
 * upstream error status on; with on-error partial the program sees null
 * for it instead and the answer says it is incomplete.
 */
static void
finish(struct merge *m)
{
	struct route *r = m->route;
	jv input = jv_object(), incomplete = jv_array();
	const struct call *failed = failures(m, &incomplete);
	char detail[128];
	int i;

	m->result.complete = jv_array_length(jv_copy(incomplete)) == 0;
	if (!m->result.complete && !r->partial) {
		snprintf(m->why, sizeof m->why, "call %s: %s", failed != NULL ?
		    failed->name : r->each->name, failed == NULL ? m->fan_why :
		    failed->error != NULL ? failed->error :
		    http_reason(failed->status));
		m->result.error = m->why;
		if (failed == NULL && m->items_failed) {
			/* each's items, not the upstream, failed */
			snprintf(detail, sizeof detail, "route %s", m->fan_why);
			answer_error(m, 500, detail);
		} else {
			answer_error(m, failed != NULL && failed->error ==
			    NULL && failed->status >= 400 ? failed->status :
			    502, "an upstream call failed");
		}
		jv_free(input);
		jv_free(incomplete);
		answered(m);
	} else {
		input = jv_object_set(input, jv_string("incomplete"), incomplete);
		for (i = 0; i < m->params.n; i++)
			input = jv_object_set(input,
			    jv_string(m->params.names[i]),
			    jv_string(m->params.values[i]));
		for (i = 0; i < r->ncalls; i++)
			input = jv_object_set(input,
			    jv_string(r->calls[i].name),
			    call_json(&m->calls[i]));
		if (r->each != NULL)
			input = jv_object_set(input, jv_string(r->each->name),
			    fan_json(m));
		start_run(m, m->route->compiled, input, take_result,
		    program_ended);
	}
}

static void start_call(struct merge *, struct call *, const char *,
    char *);

/* Starts each's calls while fewer than at-once are under way. */
static void
fan_pump(struct merge *m)
{
	struct call *c;

	if (m->pumping)
		return;	/* the loop below goes on */
	m->pumping = 1;
	while (m->fan_next < m->nfan &&
	    m->fan_running < m->route->fan_at_once) {
		c = &m->fan[m->fan_next++];
		m->fan_running++;
		start_call(m, c, m->route->each->name, c->path);
	}
	m->pumping = 0;
	if (m->pending == 0)
		finish(m);
}

/*
 * An item as a path segment's text, whole (a NUL in it too): a string
 * as it is, a number as JSON; an invalid value if it cannot be one,
 * with why in *why. jq keeps numbers as doubles: an integer of 2^53 or
 * more may have been rounded (jq reads 9007199254740993 as ...992), so
 * it is refused, never asked for as another one.
 */
static jv
item_text(jv item, const char **why)
{
	double v;

	if (jv_get_kind(item) == JV_KIND_STRING)
		return item;
	if (jv_get_kind(item) != JV_KIND_NUMBER) {
		*why = "an item that is not a string or a number that can be "
		    "a path segment";
		jv_free(item);
		return jv_invalid();
	}
	v = jv_number_value(item);
	if (!(fabs(v) < 9007199254740992.0)) {	/* 2^53, NaN, inf */
		*why = "an item that is a number of 2^53 or more, which jq "
		    "does not keep exact: give it as a string";
		jv_free(item);
		return jv_invalid();
	}
	return jv_dump_string(item, 0);
}

/* An item of each's: one more call, unless there are max-items. */
static int
take_item(struct merge *m)
{
	const struct route_each *e = m->route->each;
	struct buf *text = &m->jq.value;
	struct call *c;
	jv item;

	if (m->nfan == m->route->max_items) {
		m->fan_cut = 1;
		snprintf(m->fan_why, sizeof m->fan_why, "more than %d items",
		    m->route->max_items);
		return -1;
	}
	m->fan = xrealloc(m->fan, (size_t)(m->nfan + 1) * sizeof *m->fan);
	c = &m->fan[m->nfan++];
	memset(c, 0, sizeof *c);
	c->m = m;
	c->fan = 1;
	item = item_text(jv_parse_sized(buf_cstr(text), (int)text->len),
	    &c->error);
	if (jv_is_valid(item) && (c->path = route_each_path(e, &m->params,
	    jv_string_value(item),
	    (size_t)jv_string_length_bytes(jv_copy(item)))) == NULL)
		c->error = "an item that cannot be a path segment (empty, a "
		    "dot segment, a slash or a control character)";
	jv_free(item);
	return 0;
}

/*
 * Each's items are known: their calls start. An error of jq's ends
 * the items; a bound met, or a crash, fails each.
 */
static void
items_ended(struct merge *m, enum jqrun_end end, const char *why)
{
	if (end != JQRUN_DONE && end != JQRUN_FAILED) {
		m->fan_cut = 1;
		m->items_failed = 1;
		snprintf(m->fan_why, sizeof m->fan_why, "items %s", why);
	}
	m->pending = m->nfan;
	fan_pump(m);
}

/*
 * The fixed calls have answered: each's items, from its call's answer,
 * become its calls, at most max-items of them.
 */
static void
start_fan(struct merge *m)
{
	const struct route_each *e = m->route->each;

	m->fanned = 1;
	if (!ok_status(&m->calls[e->from])) {
		m->fan_cut = 1;
		snprintf(m->fan_why, sizeof m->fan_why, "no items: call %s "
		    "failed", m->route->calls[e->from].name);
		finish(m);
		return;
	}
	start_run(m, e->compiled, call_json(&m->calls[e->from]), take_item,
	    items_ended);
}

static void
call_done(struct call *c)
{
	struct merge *m = c->m;

	m->pending--;
	if (c->fan) {
		m->fan_running--;
		fan_pump(m);
	} else if (m->pending == 0) {
		if (m->route->each != NULL && !m->fanned)
			start_fan(m);
		else
			finish(m);
	}
}

static void
call_failed(struct call *c, const char *error)
{
	if (c->error == NULL) {
		snprintf(c->error_text, sizeof c->error_text, "%s", error);
		c->error = c->error_text;
	}
}

/* Reads a stored answer whole into the call's body. */
static void
call_stored(void *ctx, const struct store_entry *e, enum through_how how)
{
	struct call *c = ctx;
	struct store_body *b = store_body_open(through_reader(c->m->env->through), e);
	struct source src;
	char tmp[16384];
	ssize_t n = -1;

	(void)how;
	c->call = NULL;
	c->status = e->status;
	buf_reset(&c->body);
	if (b != NULL) {
		src = store_body_source(b);
		while ((n = src.read(src.ctx, tmp, sizeof tmp)) > 0 &&
		    c->body.len + (size_t)n <= MERGE_MAX_BODY)
			buf_add(&c->body, tmp, (size_t)n);
		store_body_close(b);
	}
	if (n != 0)
		call_failed(c, "cached answer unreadable");
	call_done(c);
}

static int
call_head(void *ctx, int status, const char *fields)
{
	struct call *c = ctx;

	(void)fields;
	c->status = status;
	return 0;
}

static int
call_body(void *ctx, const void *p, size_t n)
{
	struct call *c = ctx;

	if (c->body.len + n > MERGE_MAX_BODY) {
		call_failed(c, "answer too large to merge");
		return -1;
	}
	buf_add(&c->body, p, n);
	return 0;
}

static void
call_end(void *ctx, const char *error)
{
	struct call *c = ctx;

	c->call = NULL;
	if (error != NULL)
		call_failed(c, error);
	call_done(c);
}

static void
call_fail(void *ctx, enum through_failure why, const char *error)
{
	struct call *c = ctx;

	(void)why;
	c->call = NULL;
	call_failed(c, error);
	call_done(c);
}

static const struct through_sink call_sink = {
	.stored = call_stored, .head = call_head, .body = call_body,
	.done = call_end, .fail = call_fail,
};

/*
 * Whether a call's path, once normalised, is in relay's own namespace,
 * which never reaches an upstream (one that is another relay would
 * answer it): parameters could spell it, /x/_relay/sync for /{a}/{b}.
 */
static int
relays_own(const char *path)
{
	const char *why;
	char *target = target_normalize(path, &why);
	int own = target == NULL || admin_target(target);

	free(target);
	return own;
}

/*
 * A call through the cache, with the route's fields and freshness;
 * path is NULL for an item that cannot be one.
 */
static void
start_call(struct merge *m, struct call *c, const char *name, char *path)
{
	struct buf fields = BUF_INIT;
	char *url, *key = NULL;
	const char *why;
	/*
	 * The route's own fields (its credentials) do not make an answer
	 * private, but what they unlock answers this route's calls only:
	 * they are the call's scope (cache_variant).
	 */
	struct through_request req = { .method = "GET", .fields = "",
		.scope = buf_cstr(&m->route->fields), .rules = &m->rules };

	c->m = m;
	c->name = name;
	if (path != NULL && relays_own(path)) {
		c->error = "a call to relay's own /_relay/ namespace";
		path = NULL;
	}
	if (path != NULL) {
		url = url_join(m->env->base, path);
		key = url_normalize(url, &why);
		free(url);
	}
	if (key == NULL) {
		if (path != NULL || c->error == NULL)	/* else the item's */
			c->error = "bad call URL";
		call_done(c);
		return;
	}
	buf_adds(&fields, buf_cstr(&m->route->fields));
	buf_adds(&fields, "Via: 1.1 relay\r\n");
	req.key = key;
	req.forward = buf_cstr(&fields);
	policy_request_parse("", &req.directives);
	through_start(m->env->through, &req, &call_sink, c, &c->call);
	buf_free(&fields);
	free(key);
}

/*
 * Starts the route's calls, all at once. done is called once every one
 * has answered and the program has run, unless the result was ready
 * before this returns: see merge_ready. Takes the parameters.
 */
struct merge *
merge_start(struct merge_env *env, struct route *r,
    struct route_params *params, void (*done)(struct merge *, void *),
    void *ctx)
{
	struct merge *m = xcalloc(1, sizeof *m);
	char *path;
	int i;

	m->env = env;
	m->route = r;
	m->params = *params;
	memset(params, 0, sizeof *params);
	m->rules = *env->rules;
	if (r->ttl >= 0)
		m->rules.force_ttl = r->ttl;
	m->done = done;
	m->ctx = ctx;
	m->pending = r->ncalls;
	m->starting = 1;
	for (i = 0; i < r->ncalls; i++) {
		if ((path = route_call_path(&r->calls[i], &m->params)) == NULL)
			m->calls[i].error = "a parameter that cannot be a path "
			    "segment";
		start_call(m, &m->calls[i], r->calls[i].name, path);
		free(path);
	}
	m->starting = 0;
	return m;
}

/* Whether the result is ready already (a failed call, say). */
int
merge_ready(const struct merge *m)
{
	return m->ready;
}

/*
 * The server is stopping: the programs under way, waiting for a turn,
 * or to start from now on, have MERGE_STOP_MS left; then they answer
 * 503.
 */
void
merge_stop(struct merge_env *env)
{
	struct merge_run *j;

	if (env->stop_by == 0)
		env->stop_by = prog_now_ms() + MERGE_STOP_MS;
	for (j = env->runs; j != NULL; j = j->next) {
		if (j->run != NULL) {
			jqrun_cut(j->run, env->stop_by);
			watch_deadline(j->watch, jqrun_deadline(j->run));
		} else if (env->stop_by < j->wait_until) {
			j->wait_until = env->stop_by;
			watch_deadline(j->watch, j->wait_until);
		}
	}
}

const struct merge_result *
merge_result(const struct merge *m)
{
	return &m->result;
}

/* Frees the merge, cancelling the calls still under way. */
void
merge_free(struct merge *m)
{
	struct call *c;
	int i;

	if (m == NULL)
		return;
	end_run(m);
	for (i = 0; i < m->route->ncalls + m->nfan; i++) {
		c = i < m->route->ncalls ? &m->calls[i] :
		    &m->fan[i - m->route->ncalls];
		if (c->call != NULL)
			through_cancel(c->call);
		buf_free(&c->body);
		free(c->path);
	}
	free(m->fan);
	route_params_free(&m->params);
	buf_free(&m->result.body);
	free(m);
}
