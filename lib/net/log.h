/*
 * Access logs: one JSON object per request and line, on stderr or in a
 * file, gathered and written by whole lines, at most PIPE_BUF bytes a
 * write(2), so that workers sharing the log never interleave; or to
 * syslog, when stderr is not ours to write to; or nowhere.
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

struct log_request {
	const char	*peer;
	const char	*method;
	const char	*target;
	int		 status;
	long long	 bytes;		/* body bytes sent */
	const char	*cache;		/* hit, miss, revalidated, stale, … */
	long long	 upstream_ms;	/* -1: no upstream request */
	long long	 total_ms;
	const char	*error;		/* why it failed, or NULL */
};

void	log_request(const struct log_request *);
void	log_flush(void);
void	log_to_syslog(const char *);
int	log_to_file(const char *);

#endif
