/*
 * Counters of what relay-serve does, for /_relay/metrics (the
 * Prometheus text format), /_relay/stats and relay-cache stats (JSON):
 * counted in memory by each process, added to the cache file's
 * counters now and then by its writer, so that what is read there is
 * the sum of every process's, and survives restarts.
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include "base/buf.h"

/* What the files hold now, read when the metrics are. */
struct metrics_gauges {
	long long	entries, bytes;		/* stored */
	long long	queue[3];		/* queued, delivering, failed */
	int		shared_up;		/* -1: no shared tier */
};

size_t	metrics_count(void);
void	metrics_add_row(void *, const char *, size_t, long long);

void	metrics_answered(const char *, int, int, long long);
void	metrics_upstream_sent(void);
void	metrics_upstream_head(long long);
void	metrics_upstream_failed(void);
void	metrics_delivery(const char *);
void	metrics_shared_lost(void);
int	metrics_take(struct buf *);
void	metrics_rows(struct buf *, const long long *,
	    const struct metrics_gauges *);
void	metrics_add_rows(long long *, struct metrics_gauges *, const char *,
	    size_t);

void	metrics_prometheus(struct buf *, const long long *,
	    const struct metrics_gauges *);
void	metrics_json(struct buf *, const long long *);
void	metrics_text(struct buf *, const long long *, int);

#endif
