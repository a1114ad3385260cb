/*
 * Rate limits as the generic cell rate algorithm (GCRA, ITU-T I.371):
 * a rate and a burst, one number kept per key (its theoretical arrival
 * time), decided in constant time. Pure: the store keeps the numbers.
 */
#ifndef RELAY_GCRA_H
#define RELAY_GCRA_H

/* "100/m": count per period; with a burst of requests at once. */
struct gcra_limit {
	long long	count;
	long long	period_us;
	long long	burst;
};

struct gcra_decision {
	int		allowed;
	long long	tat_us;		/* the key's new arrival time */
	long long	remaining;	/* requests allowed right now */
	long long	reset_us;	/* until the whole burst is back */
	long long	retry_us;	/* refused: until one is allowed */
	long long	wait_us;	/* allowed: until its turn */
};

int	gcra_parse(const char *, long long, struct gcra_limit *);
void	gcra_decide(const struct gcra_limit *, long long, long long,
	    long long, struct gcra_decision *);
long long gcra_pause(const struct gcra_limit *, long long, long long);

#endif
