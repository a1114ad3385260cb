/*
 * Process hygiene shared by every program: standard descriptors that
 * exist, signals set for filters, and a checked stdout at exit.
 */
#include <err.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include "prog.h"

void
prog_init(void)
{
	int fd;

	/* A database opened on fd 1 would receive our output. */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
	/* A file size limit becomes EFBIG, reported like a full disk. */
	signal(SIGXFSZ, SIG_IGN);
}

/* Flushes stdout; a failed write turns the exit status into EX_IOERR. */
int
prog_finish_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warn("write error on standard output");
		return EX_IOERR;
	}
	return status;
}
