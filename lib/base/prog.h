/*
 * Process hygiene shared by every program: standard descriptors that
 * exist, signals set for filters, a checked stdout at exit, diagnostics
 * safe for a terminal; and the option and clock helpers they all need.
 */
#ifndef RELAY_PROG_H
#define RELAY_PROG_H

#define EXIT_PARTIAL 1	/* some items failed, or not found */
#define EXIT_USAGE 2

#include <getopt.h>
#include <pthread.h>

void		 prog_init(char **);
void		 prog_warnx(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
void		 prog_warn(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
_Noreturn void	 prog_errx(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
_Noreturn void	 prog_err(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
int		 prog_getopt(int, char *const [], const char *,
		    const struct option *);
int		 prog_finish_stdout(int);
long long	 prog_now_ms(void);
long long	 prog_clock_us(void);
long long	 prog_duration(const char *, const char *);
long long	 prog_size(const char *, const char *);
long long	 prog_range(const char *, const char *, long long, long long);
void		 prog_start_thread(pthread_t *, void *(*)(void *), void *,
		    const char *);

#endif
