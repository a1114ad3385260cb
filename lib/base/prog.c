/*
 * Process hygiene shared by every program: standard descriptors that
 * exist, signals set for filters, a checked stdout at exit, diagnostics
 * safe for a terminal; and the option and clock helpers they all need.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/num.h"
#include "base/prog.h"
#include "base/text.h"

void
prog_init(char **argv)
{
	int fd;

	/* The name every message gives, wherever argv[0] is shown. */
	argv[0] = program_invocation_short_name;

	/*
	 * A database opened on fd 1 would receive our output. A closed
	 * one gets /dev/null read-only, so that a write to it still fails
	 * (EBADF) and the exit status says so, as cat's does.
	 */
	for (fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDONLY) != fd)
			prog_err(EX_OSERR, "cannot open /dev/null");
	/* A file size limit becomes EFBIG, reported like a full disk. */
	signal(SIGXFSZ, SIG_IGN);
}

/*
 * Writes "program: message" to stderr, with ": " and the reason of
 * errnum when it is not 0, as err(3)'s family does; but the whole
 * message made safe for a terminal by text_printable, because the URLs,
 * upstream reasons, header values, records and file names in messages
 * come from elsewhere: no control character or invalid UTF-8 in them
 * reaches the terminal as it is. The line goes out in one piece, so
 * that the lines of processes sharing stderr do not mix.
 */
static void
say(int errnum, const char *fmt, va_list ap)
{
	struct buf msg = BUF_INIT, line = BUF_INIT;
	char *shown;

	buf_vprintf(&msg, fmt, ap);
	if (errnum != 0)
		buf_printf(&msg, ": %s", strerror(errnum));
	shown = text_printable(buf_cstr(&msg), 0);
	buf_printf(&line, "%s: %s\n", program_invocation_short_name, shown);
	fwrite(line.data, 1, line.len, stderr);
	free(shown);
	buf_free(&msg);
	buf_free(&line);
}

void
prog_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(0, fmt, ap);
	va_end(ap);
}

/* prog_warnx with errno's reason. */
void
prog_warn(const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	say(errnum, fmt, ap);
	va_end(ap);
}

_Noreturn void
prog_errx(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(0, fmt, ap);
	va_end(ap);
	exit(status);
}

/* prog_errx with errno's reason. */
_Noreturn void
prog_err(int status, const char *fmt, ...)
{
	int errnum = errno;
	va_list ap;

	va_start(ap, fmt);
	say(errnum, fmt, ap);
	va_end(ap);
	exit(status);
}

/*
 * The long option an argument names ("--name" or "--name=value"), as
 * getopt_long finds it: the exact name, else the one it begins.
 */
static const struct option *
long_option_named(const char *given, const struct option *longopts)
{
	const struct option *o, *prefix = NULL;
	size_t len;

	if (strncmp(given, "--", 2) != 0)
		return NULL;
	given += 2;
	len = strcspn(given, "=");
	for (o = longopts; o->name != NULL; o++) {
		if (strncmp(o->name, given, len) != 0)
			continue;
		if (o->name[len] == '\0')
			return o;
		if (prefix == NULL)
			prefix = o;
	}
	return prefix;
}

/*
 * Says what is wrong with the option getopt_long just refused ('?', or
 * ':' for a missing argument). The argument it is in is the last one
 * taken, argv[optind - 1], except for a letter inside "-abc", which
 * optopt holds alone.
 */
static void
option_error(int opt, char *const argv[], const struct option *longopts)
{
	const char *given = argv[optind - 1];
	const struct option *o = long_option_named(given, longopts);

	if (opt == ':' && o != NULL)
		prog_warnx("option '%s' requires an argument", given);
	else if (opt == ':')
		prog_warnx("option '-%c' requires an argument", optopt);
	else if (optopt == 0 && o != NULL)	/* it begins several names */
		prog_warnx("option '%s' is ambiguous", given);
	else if (optopt == 0)	/* getopt_long's mark of a long one */
		prog_warnx("unrecognized option '%s'", given);
	else if (o != NULL && o->val == optopt && o->has_arg == no_argument &&
	    strchr(given, '=') != NULL)
		prog_warnx("option '--%s' doesn't allow an argument", o->name);
	else
		prog_warnx("invalid option '-%c'", optopt);
}

/*
 * getopt_long, whose messages would show argv as it is, control bytes
 * and all: here they go through prog_warnx instead. optstring starts
 * with ':' (after a '-' or '+'), so that a missing argument is told
 * apart; a refused option comes back as '?' for the caller's usage().
 */
int
prog_getopt(int argc, char *const argv[], const char *optstring,
    const struct option *longopts)
{
	int opt;

	assert(optstring[optstring[0] == '-' || optstring[0] == '+'] == ':');
	opterr = 0;
	opt = getopt_long(argc, argv, optstring, longopts, NULL);
	if (opt == '?' || opt == ':') {
		option_error(opt, argv, longopts);
		return '?';
	}
	return opt;
}

/* Flushes stdout; a failed write turns the exit status into EX_IOERR. */
int
prog_finish_stdout(int status)
{
	if (fflush(stdout) != 0) {
		prog_warn("write error on standard output");
		return EX_IOERR;
	}
	if (ferror(stdout)) {	/* an earlier write failed; errno is gone */
		prog_warnx("write error on standard output");
		return EX_IOERR;
	}
	return status;
}

/* Milliseconds of a clock that never goes back, for timeouts. */
long long
prog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Microseconds since the epoch: the clock every process on a machine
 * shares, for what they keep together (rate-limit buckets, the queue).
 */
long long
prog_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* An option's duration in seconds; a bad one is a usage error. */
long long
prog_duration(const char *opt, const char *arg)
{
	long long v;

	if (num_duration(arg, &v) < 0)
		prog_errx(EXIT_USAGE,
		    "bad %s '%s': expected seconds or a number "
		    "with s, m, h or d", opt, arg);
	return v;
}

/* A size option's bytes, more than 0, or a usage error. */
long long
prog_size(const char *opt, const char *arg)
{
	long long v;

	if (num_size(arg, &v) < 0 || v == 0)
		prog_errx(EXIT_USAGE,
		    "bad %s '%s': expected bytes, or a number "
		    "with K, M or G", opt, arg);
	return v;
}

/* An option's whole number from lo to hi; else a usage error. */
long long
prog_range(const char *opt, const char *arg, long long lo, long long hi)
{
	long long v;

	if (num_parse(arg, lo, hi, &v) < 0)
		prog_errx(EXIT_USAGE, "bad %s '%s': expected %lld to %lld",
		    opt, arg, lo, hi);
	return v;
}

/*
 * Starts a thread that takes no signals: they stay the main thread's
 * to handle. Exits, naming what, if it cannot.
 */
void
prog_start_thread(pthread_t *t, void *(*fn)(void *), void *arg,
    const char *what)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		prog_errx(EX_OSERR, "cannot start the %s: %s", what,
		    strerror(rc));
}
