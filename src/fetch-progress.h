/*
 * relay-fetch's progress line: on a terminal, when standard output is
 * not that terminal, one line on standard error with the URLs done of
 * those read so far ("+" while more may come), failures, bytes and
 * rate, at most ten times a second.
 */
#ifndef RELAY_FETCH_PROGRESS_H
#define RELAY_FETCH_PROGRESS_H

struct progress {
	long long	done, started, failed;
	int		more;		/* URLs may come */
	long long	bytes;		/* received */
	long long	start_ms;	/* of the run */
};

int	progress_on(void);
void	progress_show(const struct progress *);
void	progress_clear(void);

#endif
