/*
 * Rate limits as the generic cell rate algorithm (GCRA, ITU-T I.371):
 * a rate and a burst, one number kept per key (its theoretical arrival
 * time), decided in constant time. Pure: the store keeps the numbers.
 */
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "policy/gcra.h"

/* The time between two requests at the limit's rate. */
static long long
gcra_interval(const struct gcra_limit *l)
{
	return l->period_us / l->count > 0 ? l->period_us / l->count : 1;
}

/*
 * "N/s", "N/m", "N/h" or "N/d" (N from 1 to 10^9) and a burst from 1
 * to 10^6. Returns -1 if the text is not such a rate.
 */
int
gcra_parse(const char *text, long long burst, struct gcra_limit *out)
{
	static const struct { char unit; long long us; } units[] = {
		{ 's', 1000000LL }, { 'm', 60000000LL }, { 'h', 3600000000LL },
		{ 'd', 86400000000LL },
	};
	const char *slash = strchr(text, '/');
	char number[16];
	size_t i, n;

	if (slash == NULL || (n = (size_t)(slash - text)) == 0 ||
	    n >= sizeof number || slash[1] == '\0' || slash[2] != '\0' ||
	    burst < 1 || burst > 1000000)
		return -1;
	memcpy(number, text, n);
	number[n] = '\0';
	if (num_parse(number, 1, 1000000000, &out->count) < 0)
		return -1;
	for (i = 0; i < sizeof units / sizeof units[0]; i++)
		if (units[i].unit == slash[1]) {
			out->period_us = units[i].us;
			out->burst = burst;
			return 0;
		}
	return -1;
}

/*
 * One request at now_us for a key whose arrival time is tat_us (0 for
 * a new key), which may wait up to wait_us for its turn. Each request
 * moves the arrival time on by one emission interval (period/count);
 * one is allowed while it stays within the burst's tolerance of now:
 * burst requests at once, then one an interval. One that may wait is
 * given the time it is due, d->wait_us from now, and its turn is kept
 * for it: the requests of every waiter are spaced as the limit says.
 */
void
gcra_decide(const struct gcra_limit *l, long long tat_us, long long now_us,
    long long wait_us, struct gcra_decision *d)
{
	long long interval = gcra_interval(l);
	long long tolerance = interval * (l->burst - 1);
	long long tat = tat_us > now_us ? tat_us : now_us, slack, due;

	memset(d, 0, sizeof *d);
	due = tat - now_us - tolerance;
	if (due > wait_us) {
		d->tat_us = tat_us;
		d->retry_us = due;
	} else {
		d->allowed = 1;
		d->wait_us = due > 0 ? due : 0;
		d->tat_us = tat = tat + interval;
	}
	slack = tolerance - (tat - now_us);	/* room for more at once */
	d->remaining = slack < 0 ? 0 : slack / interval + 1;
	d->reset_us = tat > now_us ? tat - now_us : 0;
}

/*
 * The arrival time that refuses every request until until_us, after
 * which the limit starts again one at a time (an upstream's
 * Retry-After): none is let through before it, whatever its burst.
 */
long long
gcra_pause(const struct gcra_limit *l, long long tat_us, long long until_us)
{
	long long paused = until_us + gcra_interval(l) * (l->burst - 1);

	return paused > tat_us ? paused : tat_us;
}
