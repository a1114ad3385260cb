/*
 * Where a server's connections come from: a socket of its own
 * (--listen), systemd's socket activation, or inetd's descriptors; and
 * worker processes sharing a listening socket.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/num.h"
#include "base/prog.h"
#include "net/listen.h"
#include "net/log.h"

#define SD_LISTEN_FDS_START 3	/* sd_listen_fds(3) */

volatile sig_atomic_t listen_stop;
volatile sig_atomic_t listen_reload;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		listen_reload = 1;
	else
		listen_stop = 1;
}

/*
 * SIGTERM and SIGINT stop gracefully, SIGHUP asks for a reload; poll is
 * interrupted, not resumed.
 */
void
listen_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/*
 * A worker; reloaded says a SIGHUP came since the parent read its
 * configuration, so that the worker reads it again before it serves
 * (listen_reload set), as the workers that were told did.
 */
static pid_t
spawn_worker(int listen_fd, int (*serve)(int), int reloaded)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		prog_err(EX_OSERR, "cannot start a worker");
	if (pid == 0) {
		/* A parent killed outright takes its workers along. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			exit(0);	/* it died already */
		listen_reload = reloaded;
		exit(serve(listen_fd));
	}
	return pid;
}

/*
 * Runs serve(listen_fd) in n worker processes, which share the socket
 * and each accept for themselves. The parent passes SIGTERM and SIGINT
 * on, waits, and replaces a worker that died otherwise.
 */
int
listen_workers(int listen_fd, int n, int (*serve)(int))
{
	pid_t *pids = xcalloc((size_t)n, sizeof *pids), pid;
	int i, status, left = n, forwarded = 0, reloaded = 0;

	for (i = 0; i < n; i++)
		pids[i] = spawn_worker(listen_fd, serve, 0);
	while (left > 0) {
		if (listen_stop && !forwarded) {
			for (i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGTERM);
			forwarded = 1;
		}
		if (listen_reload) {
			listen_reload = 0;
			reloaded = 1;
			for (i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGHUP);
		}
		if ((pid = waitpid(-1, &status, 0)) < 0)
			continue;
		for (i = 0; i < n && pids[i] != pid; i++)
			;
		if (i == n)
			continue;
		pids[i] = 0;
		left--;
		if (!listen_stop && !(WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)) {
			prog_warnx("worker %d died (status %d); starting "
			    "another", (int)pid, status);
			sleep(1);
			pids[i] = spawn_worker(listen_fd, serve, reloaded);
			left++;
		}
	}
	free(pids);
	return 0;
}

/* --listen: "host:port", "[v6]:port", ":port" (every address) or "port". */
int
listen_open(const char *spec)
{
	struct addrinfo hints = { 0 }, *res, *ai;
	char host[256], actual[64];
	const char *colon = strrchr(spec, ':'), *port = spec;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof sa;
	long long number;
	int fd = -1, one = 1, rc;

	host[0] = '\0';
	if (colon != NULL) {
		snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		port = colon + 1;
	}
	/* getaddrinfo takes 99999 as 34463, and "" as any port */
	if (num_parse(port, 0, 65535, &number) < 0)
		prog_errx(EXIT_USAGE, "bad --listen '%s': expected a port "
		    "from 0 to 65535", spec);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0)
		prog_errx(EXIT_USAGE, "bad --listen '%s': %s", spec,
		    gai_strerror(rc));
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, 1024) < 0) {
			rc = errno;
			close(fd);
			fd = -1;
			errno = rc;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		prog_err(EX_UNAVAILABLE, "cannot listen on '%s'", spec);
	getsockname(fd, (struct sockaddr *)&sa, &salen);
	getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, actual,
	    sizeof actual, NI_NUMERICHOST | NI_NUMERICSERV);
	prog_warnx("listening on %s%s%s:%s", strchr(host, ':') ? "[" : "",
	    host, strchr(host, ':') ? "]" : "", actual);
	return fd;
}

/*
 * systemd's socket activation (sd_listen_fds(3)): the one socket is fd
 * 3, listening (Accept=no) or connected (Accept=yes). Returns -1 when
 * not socket-activated.
 */
int
listen_activated(int *listening)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	long long n, owner;
	int accepting = 0;
	socklen_t len = sizeof accepting;

	if (fds == NULL || (pid != NULL && (num_parse(pid, 1, 1LL << 31,
	    &owner) < 0 || owner != getpid())))
		return -1;
	if (num_parse(fds, 0, 1024, &n) < 0 || n != 1)
		prog_errx(EX_CONFIG, "expected one socket from LISTEN_FDS, "
		    "got '%s'", fds);
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (getsockopt(SD_LISTEN_FDS_START, SOL_SOCKET, SO_ACCEPTCONN,
	    &accepting, &len) < 0)
		prog_err(EX_CONFIG, "LISTEN_FDS: fd 3 is not a socket");
	fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	/* Workers that lose the race for a connection must not block. */
	if (accepting && fcntl(SD_LISTEN_FDS_START, F_SETFL,
	    fcntl(SD_LISTEN_FDS_START, F_GETFL) | O_NONBLOCK) < 0)
		prog_err(EX_OSERR, "LISTEN_FDS: fd 3");
	*listening = accepting;
	return SD_LISTEN_FDS_START;
}

/*
 * BSD inetd passes the connection as stderr too: logs and warnings
 * would go to the client. They go to syslog and /dev/null instead.
 */
void
listen_quiet_stderr(void)
{
	struct stat in, errst;
	int fd;

	if (fstat(STDIN_FILENO, &in) < 0 || fstat(STDERR_FILENO, &errst) < 0 ||
	    in.st_dev != errst.st_dev || in.st_ino != errst.st_ino ||
	    !S_ISSOCK(in.st_mode))
		return;
	if ((fd = open("/dev/null", O_WRONLY)) >= 0) {
		dup2(fd, STDERR_FILENO);
		if (fd != STDERR_FILENO)
			close(fd);
	}
	log_to_syslog(program_invocation_short_name);
}
