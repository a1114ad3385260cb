/*
 * Process hygiene shared by every program: standard descriptors that
 * exist, signals set for filters, and a checked stdout at exit.
 */
#ifndef RELAY_PROG_H
#define RELAY_PROG_H

#define EXIT_PARTIAL 1	/* some items failed, or not found */
#define EXIT_USAGE 2

void	prog_init(void);
int	prog_finish_stdout(int);

#endif
