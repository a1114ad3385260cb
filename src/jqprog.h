/*
 * A jq program compiled once and run on many inputs: libjq's life
 * cycle, its error reports and the end of a run in one place, for
 * relay-merge and for merge routes.
 */
#ifndef RELAY_JQPROG_H
#define RELAY_JQPROG_H

#include <jq.h>

#include "buf.h"

struct jqprog {
	jq_state	*jq;
	struct buf	 errors;	/* what jq reported, a line apart */
};

int	jqprog_compile(struct jqprog *, const char *, jv);
void	jqprog_start(struct jqprog *, jv);
jv	jqprog_next(struct jqprog *);
int	jqprog_failed(jv, struct buf *);
void	jqprog_free(struct jqprog *);

#endif
