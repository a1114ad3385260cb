/*
 * A jq program compiled once (libjq), and run in a child process per
 * input: libjq 1.6 has no way to interrupt a run, nor to go on when
 * memory runs out, so a run is bounded only by a process to kill.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/jqprog.h"
#include "base/num.h"
#include "base/prog.h"

/*
 * The child writes frames on its pipe: a kind, a length, then that many
 * bytes. Its values and what it writes to stderr, in the order it gave
 * them; the run's error if it had one, or halt_error's status and
 * message; then its end: done, or out of memory. Then it waits to be
 * killed: the parent has all it needs and waits for nothing, not even
 * the child's exit (under valgrind, a leak check that would count the
 * parent's threads' memory as lost). A child that ends otherwise
 * crashed, or was killed.
 */
#define FRAME_VALUE	'v'
#define FRAME_STDERR	's'	/* text, whole code points */
#define FRAME_ERROR	'e'
#define FRAME_HALT	'h'	/* an exit status byte, then the message */
#define FRAME_DONE	'd'
#define FRAME_NO_MEMORY	'm'
#define FRAME_HEAD	(1 + sizeof(uint32_t))
#define CHILD_FD	3		/* the pipe, in the child */
#define CHILD_BATCH	(64 << 10)	/* bytes of frames a write takes */
#define CHILD_FLUSH_MS	10		/* the longest a frame waits */
#define PIPE_SIZE	(1 << 20)	/* the pipe's buffer, if allowed */
#define JQRUN_READ_MAX	(1 << 20)	/* bytes a jqrun_next call reads */

struct jqrun {
	pid_t		 pid;		/* 0 once reaped */
	int		 fd;		/* the pipe's end to read; -1: closed */
	long long	 deadline_ms;
	long long	 gave_at;	/* when a value was given, or 0 */
	struct jq_bounds bounds;
	struct buf	 in;		/* read, from taken on */
	size_t		 taken;
	enum jqrun_end	 end;
	struct buf	 why;
	int		 halted;	/* halt_error: why is its message */
	int		 halt_status;
};

/* jq's reports, formatted as jq does, a line apart. */
static void
collect_error(void *ctx, jv msg)
{
	struct buf *errors = ctx;

	msg = jq_format_error(msg);
	buf_printf(errors, "%s%s", errors->len > 0 ? "\n" : "",
	    jv_string_value(msg));
	jv_free(msg);
}

/* libjq's out of memory, in the parent: as ours. */
static void
no_memory(void *ctx)
{
	(void)ctx;
	out_of_memory();
}

static int
is_ident_start(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * The module directive text starts with (module, import or include, as
 * jq 1.6's lexer reads a program: blanks, # comments, then a keyword
 * that is not the start of a longer name such as include_x or
 * import::f), or NULL; *line is the line it is on. jq's grammar has
 * these directives at a program's start only.
 */
static const char *
module_directive(const char *text, int *line)
{
	static const char *const keywords[] = { "import", "include", "module" };
	static const char ident[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
	const char *s = text;
	size_t i, n;

	*line = 1;
	for (;; s++) {
		if (*s == '\n')
			++*line;
		else if (*s == '#')
			s += strcspn(s, "\r\n") - 1;
		else if (*s != ' ' && *s != '\t')
			break;
	}
	n = strspn(s, ident);
	if (s[n] == ':' && s[n + 1] == ':' && is_ident_start(s[n + 2]))
		return NULL;	/* a name in a module's namespace */
	for (i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
		if (n == strlen(keywords[i]) && strncmp(s, keywords[i], n) == 0)
			return keywords[i];
	return NULL;
}

/*
 * A program that would load modules is refused: libjq 1.6 looks for
 * them in the working directory, and in any directory an import's
 * metadata names, whatever search path it is given. Said as jq says a
 * compile error: the reason, where, and the line.
 */
static int
refuse_modules(struct jqprog *p, const char *text)
{
	const char *directive, *at;
	int line, i;

	if ((directive = module_directive(text, &line)) == NULL)
		return 0;
	for (at = text, i = 1; i < line; i++)
		at = strchr(at, '\n') + 1;
	buf_printf(&p->errors, "jq: error: %s is not supported: relay loads "
	    "no jq modules at <top-level>, line %d:\n%.*s\njq: 1 compile "
	    "error", directive, line, (int)strcspn(at, "\n"), at);
	return -1;
}

/*
 * Compiles prelude (jq text of ours, such as variables bound) then
 * text, the program, with the named arguments args (an object: each
 * key is $key in it). On failure the program is freed and p->errors
 * says why (jq's messages point at the text).
 */
int
jqprog_compile(struct jqprog *p, const char *prelude, const char *text,
    jv args)
{
	struct buf whole = BUF_INIT;
	int ok;

	p->errors = (struct buf)BUF_INIT;
	p->jq = NULL;
	if (refuse_modules(p, text) < 0) {
		jv_free(args);
		return -1;
	}
	if ((p->jq = jq_init()) == NULL)
		out_of_memory();
	/*
	 * libjq 1.6's jq_init leaves these unset: garbage, called (by
	 * debug, input and inputs); no input and no debug unless set.
	 */
	jq_set_nomem_handler(p->jq, no_memory, NULL);
	jq_set_input_cb(p->jq, NULL, NULL);
	jq_set_debug_cb(p->jq, NULL, NULL);
	jq_set_error_cb(p->jq, collect_error, &p->errors);
	/* no search path: modulemeta and get_search_list find nothing */
	jq_set_attr(p->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());
	buf_adds(&whole, prelude);
	buf_adds(&whole, text);
	ok = jq_compile_args(p->jq, buf_cstr(&whole), args);
	buf_free(&whole);
	if (ok)
		return 0;
	jq_teardown(&p->jq);
	return -1;
}

void
jqprog_free(struct jqprog *p)
{
	if (p->jq != NULL)
		jq_teardown(&p->jq);
	buf_free(&p->errors);
}

/* --program-timeout: seconds, or a number with s, m, h or d; 1s to 1d. */
void
jq_bounds_timeout(struct jq_bounds *b, const char *arg)
{
	long long s = prog_duration("--program-timeout", arg);

	if (s < 1 || s > 86400)
		prog_errx(EXIT_USAGE, "bad --program-timeout '%s': expected 1s to "
		    "1d", arg);
	b->timeout_s = s;
}

/* --program-max-memory: bytes, or a number with K, M or G; 1M to 64G. */
void
jq_bounds_memory(struct jq_bounds *b, const char *arg)
{
	long long n;

	if (num_size(arg, &n) < 0 || n < (1LL << 20) || n > (64LL << 30))
		prog_errx(EXIT_USAGE, "bad --program-max-memory '%s': expected 1M "
		    "to 64G", arg);
	b->max_memory = n;
}

/*
 * The child's side. It inherited a copy of the parent, threads aside:
 * it only runs jq and writes to its pipe; it never exits by itself but
 * with _exit when the parent has gone, so that nothing of the parent's
 * (stdio buffers, atexit) runs twice.
 */

static void
write_all(const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		if ((k = write(CHILD_FD, p, n)) < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(1);	/* the parent has gone */
		p += k;
		n -= (size_t)k;
	}
}

/*
 * Frames go out in batches of up to CHILD_BATCH bytes, a write each: a
 * write a value would cost the two processes more than libjq takes to
 * make a small one. A batch goes once full, at the end, and at the
 * latest CHILD_FLUSH_MS after its first frame (SIGALRM), so that a
 * value given before a long computation is not held back. The handler
 * writes the batch only when the frames are not being added to (busy);
 * else the adding writes it, once done.
 */
static char batch[CHILD_BATCH];
static size_t batch_len;
static size_t open_stderr = SIZE_MAX;	/* a stderr frame that ends it */
static volatile sig_atomic_t busy, due;

static void
flush_batch(void)
{
	write_all(batch, batch_len);
	batch_len = 0;
	open_stderr = SIZE_MAX;
}

static void
on_alarm(int sig)
{
	int e = errno;

	(void)sig;
	if (busy)
		due = 1;
	else
		flush_batch();
	errno = e;
}

static void
set_busy(int yes)
{
	atomic_signal_fence(memory_order_seq_cst);
	busy = yes;
	atomic_signal_fence(memory_order_seq_cst);
}

/* n bytes at the batch's end; p may be NULL when n is 0 (no memcpy then). */
static void
batch_append(const char *p, size_t n)
{
	assert(batch_len + n <= CHILD_BATCH);
	if (n == 0)
		return;
	memcpy(batch + batch_len, p, n);
	batch_len += n;
}

/*
 * The frame's bytes, in the batch (or, too long for it, written after
 * it); stderr text after stderr text grows that frame.
 */
static void
add_frame(char kind, const char *a, size_t an, const char *b, size_t bn)
{
	uint32_t len = (uint32_t)(an + bn);
	static const struct itimerval flush_soon = { { 0, 0 },
	    { 0, CHILD_FLUSH_MS * 1000 } };

	assert(an + bn <= UINT32_MAX);
	if (kind == FRAME_STDERR && open_stderr != SIZE_MAX &&
	    batch_len + an <= CHILD_BATCH) {
		memcpy(&len, batch + open_stderr + 1, sizeof len);
		len += (uint32_t)an;
		memcpy(batch + open_stderr + 1, &len, sizeof len);
		batch_append(a, an);
		return;
	}
	if (batch_len + FRAME_HEAD + an + bn > CHILD_BATCH)
		flush_batch();
	if (batch_len == 0)
		setitimer(ITIMER_REAL, &flush_soon, NULL);
	open_stderr = kind == FRAME_STDERR ? batch_len : SIZE_MAX;
	batch[batch_len] = kind;
	memcpy(batch + batch_len + 1, &len, sizeof len);
	batch_len += FRAME_HEAD;
	if (FRAME_HEAD + an + bn > CHILD_BATCH) {	/* too long to copy */
		flush_batch();
		write_all(a, an);
		write_all(b, bn);
		return;
	}
	batch_append(a, an);
	batch_append(b, bn);
}

/* A frame of the bytes of a, then b. */
static void
write_frame(char kind, const char *a, size_t an, const char *b, size_t bn)
{
	set_busy(1);
	add_frame(kind, a, an, b, bn);
	set_busy(0);
	if (due) {
		set_busy(1);
		due = 0;
		flush_batch();
		set_busy(0);
	}
}

/* The last frame, written at once: then the parent kills the child. */
static _Noreturn void
write_end(char kind)
{
	write_frame(kind, NULL, 0, NULL, 0);
	set_busy(1);
	flush_batch();
	for (;;)
		pause();
}

/* libjq's out of memory, which it would answer with abort(). */
static void
on_no_memory(void *ctx)
{
	(void)ctx;
	write_end(FRAME_NO_MEMORY);
}

/*
 * The program's stderr (the stderr and debug builtins): frames. The
 * stream is unbuffered, so that each write is one of libjq's, which
 * never splits a character, and comes in order with the values.
 */
static ssize_t
stderr_write(void *cookie, const char *p, size_t n)
{
	(void)cookie;
	write_frame(FRAME_STDERR, p, n, NULL, 0);
	return (ssize_t)n;
}

static void
route_stderr(void)
{
	static const cookie_io_functions_t io = { .write = stderr_write };
	FILE *f = fopencookie(NULL, "w", io);

	if (f == NULL || setvbuf(f, NULL, _IONBF, 0) != 0)
		_exit(1);
	stderr = f;
}

/* debug's message, as jq(1) writes it. */
static void
debug_text(void *ctx, jv input)
{
	(void)ctx;
	jv_dumpf(JV_ARRAY(jv_string("DEBUG:"), input), stderr, 0);
	fputc('\n', stderr);
}

/* The bytes of address space the process has now (Linux), or 0. */
static unsigned long long
address_space(void)
{
	char text[64];
	unsigned long long pages = 0;
	ssize_t n, i;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, text, sizeof text);
	close(fd);
	for (i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++)
		pages = pages * 10 + (unsigned long long)(text[i] - '0');
	return pages * (unsigned long long)sysconf(_SC_PAGESIZE);
}

/*
 * The memory bound is address space beyond the parent's, which the
 * child starts with; the CPU time one is a backstop to the parent's
 * deadline (SIGXCPU, then SIGKILL), should the parent be stopped.
 */
static void
child_limits(const struct jq_bounds *b)
{
	struct rlimit no_core = { 0, 0 }, as, cpu;

	setrlimit(RLIMIT_CORE, &no_core);
	as.rlim_cur = as.rlim_max = address_space() +
	    (unsigned long long)b->max_memory;
	setrlimit(RLIMIT_AS, &as);
	cpu.rlim_cur = (rlim_t)b->timeout_s + 1;
	cpu.rlim_max = cpu.rlim_cur + 1;
	setrlimit(RLIMIT_CPU, &cpu);
}

extern char **environ;
static char *no_environment[] = { NULL };	/* a route's program's */

/*
 * Signals as a new process has them; the pipe on CHILD_FD, standard
 * input and output on /dev/null and every other descriptor closed, so
 * that no connection or file of the parent's stays open in the child;
 * standard error stays (for a crash's last words), unless quiet. What
 * the program writes to stderr goes to the parent in frames, or with
 * quiet to /dev/null.
 */
static void
child_setup(int fd, pid_t parent, const struct jq_bounds *b, int quiet)
{
	static const int caught[] = { SIGTERM, SIGINT, SIGHUP, SIGPIPE,
		SIGXFSZ, SIGCHLD };
	sigset_t none;
	size_t i;
	int null;

	for (i = 0; i < sizeof caught / sizeof caught[0]; i++)
		signal(caught[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);	/* it died already */
	if ((null = open("/dev/null", O_RDWR)) < 0 || dup2(null, 0) < 0 ||
	    dup2(null, 1) < 0 || (quiet && dup2(null, 2) < 0) ||
	    dup2(fd, CHILD_FD) < 0)
		_exit(1);
	close_range(CHILD_FD + 1, ~0U, 0);
	if (!quiet)
		route_stderr();
	else	/* a route's program: see merge.c's compile */
		environ = no_environment;	/* clearenv's NULL crashes env */
	child_limits(b);
}

/* Writes a frame of a string's bytes, and frees the string. */
static void
write_string(char kind, jv s)
{
	assert(jv_get_kind(s) == JV_KIND_STRING);
	write_frame(kind, jv_string_value(s),
	    (size_t)jv_string_length_bytes(jv_copy(s)), NULL, 0);
	jv_free(s);
}

/* The message of the value a run ended with, or invalid if none. */
static jv
run_error(jv end)
{
	jv msg, text;

	if (!jv_invalid_has_msg(jv_copy(end))) {
		jv_free(end);
		return jv_invalid();
	}
	msg = jv_invalid_get_msg(end);
	if (jv_get_kind(msg) == JV_KIND_STRING)
		return msg;
	msg = jv_dump_string(msg, 0);
	text = jv_string_fmt("%s (not a string)", jv_string_value(msg));
	jv_free(msg);
	return text;
}

/*
 * halt_error's frame: the status jq(1) exits with (its code as an int,
 * of which exit keeps the low 8 bits; 5 for one that is no int), then
 * its message as jq writes it: a string as it is, null as nothing,
 * another value as JSON on a line. A plain halt has no code: no frame.
 */
static void
write_halt(jq_state *jq)
{
	jv code = jq_get_exit_code(jq), msg = jq_get_error_message(jq);
	double x = jv_get_kind(code) == JV_KIND_NUMBER ?
	    jv_number_value(code) : 5;
	char status = (char)(x > INT_MIN - 1.0 && x < INT_MAX + 1.0 ?
	    (int)x & 0xFF : 5);

	if (!jv_is_valid(code)) {
		jv_free(msg);
		return;
	}
	jv_free(code);
	if (jv_get_kind(msg) == JV_KIND_NULL || !jv_is_valid(msg)) {
		jv_free(msg);
		msg = jv_string("");
	} else if (jv_get_kind(msg) != JV_KIND_STRING) {
		msg = jv_string_concat(jv_dump_string(msg, 0), jv_string("\n"));
	}
	write_frame(FRAME_HALT, &status, 1, jv_string_value(msg),
	    (size_t)jv_string_length_bytes(jv_copy(msg)));
	jv_free(msg);
}

static _Noreturn void
child_run(struct jqprog *p, jv input, const struct jq_text *t)
{
	struct sigaction alarm = { .sa_handler = on_alarm,
	    .sa_flags = SA_RESTART };
	jv v;

	sigaction(SIGALRM, &alarm, NULL);
	jq_set_nomem_handler(p->jq, on_no_memory, NULL);
	if (t == NULL || !t->quiet)
		jq_set_debug_cb(p->jq, debug_text, NULL);
	jq_start(p->jq, input, 0);
	while (jv_is_valid(v = jq_next(p->jq)))
		write_string(FRAME_VALUE, t != NULL && t->value != NULL ?
		    t->value(v, t->ctx) : jv_dump_string(v, 0));
	if (jq_halted(p->jq)) {
		jv_free(v);
		write_halt(p->jq);
	} else if (jv_is_valid(v = run_error(v))) {
		write_string(FRAME_ERROR, t != NULL && t->error != NULL ?
		    t->error(v, t->ctx) : v);
	}
	write_end(FRAME_DONE);
}

/*
 * The parent's side.
 */

/*
 * Children killed, not yet reaped: a killed child is not waited for,
 * as it may wait for a CPU to die on; jqrun_reap reaps it later.
 */
static pid_t killed[64];
static size_t nkilled;

/* Reaps the children killed that have died since, waiting for none. */
void
jqrun_reap(void)
{
	size_t i = 0;

	while (i < nkilled)
		if (waitpid(killed[i], NULL, WNOHANG) == 0)
			i++;
		else
			killed[i] = killed[--nkilled];
}

static void
kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	if (nkilled == sizeof killed / sizeof killed[0])
		waitpid(killed[--nkilled], NULL, 0);	/* long killed */
	killed[nkilled++] = pid;
}

/*
 * Starts a run of the program on input (taken) in a child process,
 * whose values come from jqrun_next. NULL, with errno, if there can be
 * no child.
 */
struct jqrun *
jqrun_start(struct jqprog *p, jv input, const struct jq_bounds *b,
    const struct jq_text *t)
{
	struct jqrun *r;
	pid_t parent = getpid(), pid;
	int fds[2], e;

	assert(b->timeout_s > 0 && b->max_memory > 0);
	jqrun_reap();
	if (pipe2(fds, O_CLOEXEC) < 0) {
		jv_free(input);
		return NULL;
	}
	fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);	/* room to run ahead */
	if ((pid = fork()) == 0) {
		child_setup(fds[1], parent, b, t != NULL && t->quiet);
		child_run(p, input, t);
	}
	e = errno;
	jv_free(input);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		errno = e;
		return NULL;
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	r = xcalloc(1, sizeof *r);
	r->pid = pid;
	r->fd = fds[0];
	r->bounds = *b;
	r->deadline_ms = prog_now_ms() + b->timeout_s * 1000;
	r->end = JQRUN_RUNNING;
	return r;
}

/* The descriptor to wait on for more (POLLIN), until the deadline. */
int
jqrun_fd(const struct jqrun *r)
{
	return r->fd;
}

/* When the run is killed, a prog_now_ms time. */
long long
jqrun_deadline(const struct jqrun *r)
{
	return r->deadline_ms;
}

/* Brings the deadline forward to ms, if it is later. */
void
jqrun_cut(struct jqrun *r, long long ms)
{
	if (ms < r->deadline_ms)
		r->deadline_ms = ms;
}

static void
say_size(struct buf *out, long long n)
{
	if (n % (1LL << 20) == 0)
		buf_printf(out, "%lld MiB", n >> 20);
	else if (n % (1LL << 10) == 0)
		buf_printf(out, "%lld KiB", n >> 10);
	else
		buf_printf(out, "%lld bytes", n);
}

/*
 * The run has ended, as end says: the child is killed (it waits to be,
 * once it has said all). JQRUN_RUNNING: it died by itself, and its exit
 * status says how the run ended.
 */
static void
finish(struct jqrun *r, enum jqrun_end end)
{
	int status = 0;

	assert(r->pid != 0);
	if (end != JQRUN_RUNNING)
		kill_child(r->pid);
	else
		while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
			;	/* it has closed its pipe: it is exiting */
	r->pid = 0;
	close(r->fd);
	r->fd = -1;
	if (end == JQRUN_RUNNING)	/* the CPU time backstop, or a crash */
		end = WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU ?
		    JQRUN_TIMEOUT : JQRUN_CRASHED;
	r->end = end;
	if (end == JQRUN_TIMEOUT) {
		buf_printf(&r->why, "took longer than %llds",
		    r->bounds.timeout_s);
	} else if (end == JQRUN_MEMORY) {
		buf_adds(&r->why, "needed more than ");
		say_size(&r->why, r->bounds.max_memory);
	} else if (end == JQRUN_CRASHED && r->why.len > 0) {
		;	/* said already */
	} else if (end == JQRUN_CRASHED && WIFSIGNALED(status)) {
		buf_printf(&r->why, "crashed: %s", strsignal(WTERMSIG(status)));
	} else if (end == JQRUN_CRASHED) {
		buf_printf(&r->why, "crashed: exit status %d",
		    WEXITSTATUS(status));
	}
	buf_cstr(&r->why);
}

/*
 * Takes the whole frames read, up to a value or stderr text: which,
 * with its bytes in out; or 0. An error or a halt is kept for
 * jqrun_why; an end ends the run. A frame longer than the memory the
 * child may have had is a crash.
 */
static int
take_frame(struct jqrun *r, struct buf *out)
{
	static const char kinds[] = { FRAME_VALUE, FRAME_STDERR, FRAME_ERROR,
		FRAME_HALT, FRAME_DONE, FRAME_NO_MEMORY };
	const char *at;
	uint32_t len;

	while (r->pid != 0 && r->in.len - r->taken >= FRAME_HEAD) {
		at = r->in.data + r->taken;
		memcpy(&len, at + 1, sizeof len);
		if ((long long)len > r->bounds.max_memory ||
		    memchr(kinds, at[0], sizeof kinds) == NULL ||
		    (at[0] == FRAME_HALT && len == 0)) {
			buf_adds(&r->why, "crashed: a bad frame on its pipe");
			finish(r, JQRUN_CRASHED);
			break;
		}
		if (r->in.len - r->taken < FRAME_HEAD + len)
			break;
		r->taken += FRAME_HEAD + len;
		if (at[0] == FRAME_VALUE || at[0] == FRAME_STDERR) {
			buf_reset(out);
			buf_add(out, at + FRAME_HEAD, len);
			buf_cstr(out);
			return at[0] == FRAME_VALUE ? JQRUN_VALUE : JQRUN_STDERR;
		}
		if (at[0] == FRAME_ERROR || at[0] == FRAME_HALT) {
			r->halted = at[0] == FRAME_HALT;
			buf_reset(&r->why);
			if (r->halted) {	/* its status byte first */
				r->halt_status = (unsigned char)at[FRAME_HEAD];
				at++;
				len--;
			}
			buf_add(&r->why, at + FRAME_HEAD, len);
		} else {
			finish(r, at[0] == FRAME_NO_MEMORY ? JQRUN_MEMORY :
			    r->halted ? JQRUN_HALTED : r->why.len > 0 ?
			    JQRUN_FAILED : JQRUN_DONE);
		}
	}
	return 0;
}

/*
 * One read of the pipe, of budget bytes at most: whether it changed
 * anything (bytes came, or the end).
 */
static int
read_some(struct jqrun *r, size_t *budget)
{
	char tmp[65536];
	ssize_t n;

	if (r->taken > 0) {
		memmove(r->in.data, r->in.data + r->taken, r->in.len - r->taken);
		r->in.len -= r->taken;
		r->taken = 0;
	}
	n = read(r->fd, tmp, *budget < sizeof tmp ? *budget : sizeof tmp);
	if (n > 0) {
		buf_add(&r->in, tmp, (size_t)n);
		*budget -= (size_t)n;
		return 1;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	finish(r, JQRUN_RUNNING);	/* it died without an end */
	return 1;
}

/*
 * The run's next value, in out: JQRUN_VALUE; or the next text it wrote
 * to stderr (whole characters; never with quiet): JQRUN_STDERR; 0 when
 * none has come yet (wait for jqrun_fd, until jqrun_deadline; see
 * jqrun_wait); -1 at the end, which jqrun_end says. Past the deadline
 * the child is killed. The time between a value given and the next
 * call is its owner's, not counted.
 * A call reads JQRUN_READ_MAX at most, so that a long value does not
 * hold an event loop up.
 */
int
jqrun_next(struct jqrun *r, struct buf *out)
{
	size_t budget = JQRUN_READ_MAX;
	long long now = prog_now_ms();
	int took;

	if (r->gave_at > 0)
		r->deadline_ms += now - r->gave_at;
	r->gave_at = 0;
	for (;;) {
		if (r->pid != 0 && prog_now_ms() >= r->deadline_ms)
			finish(r, JQRUN_TIMEOUT);
		if ((took = take_frame(r, out)) != 0) {
			r->gave_at = prog_now_ms();
			return took;
		}
		if (r->pid == 0)
			return -1;
		if (budget == 0 || !read_some(r, &budget))
			return 0;
	}
}

/* Waits, blocking, until there is more to read or the deadline. */
void
jqrun_wait(const struct jqrun *r)
{
	struct pollfd pfd = { r->fd, POLLIN, 0 };
	long long left = r->deadline_ms - prog_now_ms();

	if (r->fd >= 0 && left > 0)
		poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
}

enum jqrun_end
jqrun_end(const struct jqrun *r)
{
	return r->end;
}

/*
 * Why the run failed: jq's message, or "took longer than 2s", "needed
 * more than 256 MiB", "crashed: ...".
 */
const char *
jqrun_why(const struct jqrun *r)
{
	return r->why.len > 0 ? r->why.data : "";
}

/*
 * A run that ended with halt_error (JQRUN_HALTED): the status jq(1)
 * would exit with, and its message, of *len bytes (a NUL among them,
 * maybe), as jq writes it to stderr.
 */
const char *
jqrun_halt(const struct jqrun *r, int *status, size_t *len)
{
	assert(r->end == JQRUN_HALTED);
	*status = r->halt_status;
	*len = r->why.len;
	return r->why.len > 0 ? r->why.data : "";
}

/* Ends the run, killing its child if it still runs. */
void
jqrun_free(struct jqrun *r)
{
	if (r == NULL)
		return;
	if (r->pid != 0)
		finish(r, JQRUN_DONE);	/* its owner wants no more */
	buf_free(&r->in);
	buf_free(&r->why);
	free(r);
}
