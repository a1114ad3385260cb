/*
 * A jq program compiled once and run on many inputs, each run in a
 * child process bounded in time and memory: for relay-merge and for
 * merge routes, which may not wait for it (libjq cannot be stopped).
 */
#ifndef RELAY_JQPROG_H
#define RELAY_JQPROG_H

#include <jq.h>

#include "base/buf.h"

#define JQ_TIMEOUT_S	2		/* --program-timeout's default */
#define JQ_MAX_MEMORY	(256LL << 20)	/* --program-max-memory's */

struct jqprog {
	jq_state	*jq;
	struct buf	 errors;	/* what jq reported, a line apart */
};

/* What a run may take. */
struct jq_bounds {
	long long	 timeout_s;	/* wall clock, from its start */
	long long	 max_memory;	/* bytes beyond what the process had */
};

#define JQ_BOUNDS_DEFAULT { JQ_TIMEOUT_S, JQ_MAX_MEMORY }

/*
 * How the child writes a run's values and its error, as strings (jv):
 * value may format each output (NULL: compact JSON), error the message
 * a run ended with (NULL: as jq gave it). Both run in the child. With
 * quiet, what the program writes to stderr (the stderr and debug
 * builtins) is dropped; else jqrun_next gives it.
 */
struct jq_text {
	jv	(*value)(jv, void *);
	jv	(*error)(jv, void *);
	void	*ctx;
	int	 quiet;
};

/* How a run ended. */
enum jqrun_end {
	JQRUN_RUNNING,
	JQRUN_DONE,		/* every value given */
	JQRUN_FAILED,		/* jq's error: jqrun_why */
	JQRUN_HALTED,		/* halt_error: jqrun_halt */
	JQRUN_TIMEOUT,		/* past its timeout, and killed */
	JQRUN_MEMORY,		/* it needed more than max_memory */
	JQRUN_CRASHED,		/* died otherwise */
};

/* What jqrun_next gave. */
#define JQRUN_VALUE	1
#define JQRUN_STDERR	2

struct jqrun;

int		 jqprog_compile(struct jqprog *, const char *, const char *,
		    jv);
void		 jqprog_free(struct jqprog *);
void		 jq_bounds_timeout(struct jq_bounds *, const char *);
void		 jq_bounds_memory(struct jq_bounds *, const char *);

struct jqrun	*jqrun_start(struct jqprog *, jv, const struct jq_bounds *,
		    const struct jq_text *);
int		 jqrun_fd(const struct jqrun *);
long long	 jqrun_deadline(const struct jqrun *);
void		 jqrun_cut(struct jqrun *, long long);
int		 jqrun_next(struct jqrun *, struct buf *);
void		 jqrun_wait(const struct jqrun *);
enum jqrun_end	 jqrun_end(const struct jqrun *);
const char	*jqrun_why(const struct jqrun *);
const char	*jqrun_halt(const struct jqrun *, int *, size_t *);
void		 jqrun_free(struct jqrun *);
void		 jqrun_reap(void);

#endif
