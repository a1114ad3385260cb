/*
 * Tests the rate limits (lib/policy/gcra.h): parsing "N/unit" and the
 * decisions of the generic cell rate algorithm.
 */
#include <stdio.h>

#include "policy/gcra.h"
#include "unit.h"

#define S 1000000LL

static void
parsing(void)
{
	struct gcra_limit l;

	CHECK(gcra_parse("100/m", 10, &l) == 0);
	CHECK(l.count == 100 && l.period_us == 60 * S && l.burst == 10);
	CHECK(gcra_parse("5/s", 1, &l) == 0 && l.period_us == S);
	CHECK(gcra_parse("1/d", 1, &l) == 0 && l.period_us == 86400 * S);
	CHECK(gcra_parse("100/x", 1, &l) < 0);
	CHECK(gcra_parse("/m", 1, &l) < 0);
	CHECK(gcra_parse("0/m", 1, &l) < 0);
	CHECK(gcra_parse("-5/m", 1, &l) < 0);
	CHECK(gcra_parse("5/mm", 1, &l) < 0);
	CHECK(gcra_parse("5", 1, &l) < 0);
	CHECK(gcra_parse("5/m", 0, &l) < 0);
}

/* The burst at once, then one an interval: 100/m is one each 0.6 s. */
static void
burst_then_rate(void)
{
	struct gcra_limit l;
	struct gcra_decision d;
	long long tat = 0, now = 1000 * S;
	int i, allowed = 0;

	gcra_parse("100/m", 10, &l);
	for (i = 0; i < 50; i++) {
		gcra_decide(&l, tat, now, 0, &d);
		if (d.allowed) {
			allowed++;
			tat = d.tat_us;
			CHECK(d.remaining == 10 - allowed);
		} else {
			CHECK(d.remaining == 0);
			CHECK(d.retry_us == 600000);	/* one interval */
		}
	}
	CHECK(allowed == 10);
	CHECK(d.reset_us == 6 * S);	/* ten intervals until all is back */
	gcra_decide(&l, tat, now + 600000, 0, &d);
	CHECK(d.allowed);
	gcra_decide(&l, d.tat_us, now + 600000, 0, &d);
	CHECK(!d.allowed && d.retry_us == 600000);
	/* over any time T from idle: the burst plus T / interval */
	for (tat = 0, allowed = 0, i = 0; i < 6000; i++) {
		gcra_decide(&l, tat, now + i * 10000LL, 0, &d);	/* 60 s */
		if (d.allowed)
			allowed++, tat = d.tat_us;
	}
	CHECK(allowed == 10 + 99);
}

/* Waiters are given their turns 0.2 s apart at 5/s, up to their bound. */
static void
waiting_turns(void)
{
	struct gcra_limit l;
	struct gcra_decision d;
	long long tat = 0, now = 1000 * S;
	int i;

	gcra_parse("5/s", 1, &l);
	for (i = 0; i < 11; i++) {
		gcra_decide(&l, tat, now, 2 * S, &d);
		CHECK(d.allowed && d.wait_us == i * 200000LL);
		tat = d.tat_us;
	}
	gcra_decide(&l, tat, now, 2 * S, &d);	/* 2.2 s away: too long */
	CHECK(!d.allowed && d.retry_us == 2200000 && d.tat_us == tat);
	gcra_decide(&l, tat, now + S, 2 * S, &d);	/* later, sooner */
	CHECK(d.allowed && d.wait_us == 1200000);
}

/* A pause lets nothing through until it ends, then one at a time. */
static void
pausing(void)
{
	struct gcra_limit l;
	struct gcra_decision d;
	long long now = 1000 * S, tat;

	gcra_parse("100/s", 10, &l);
	tat = gcra_pause(&l, 0, now + 2 * S);
	gcra_decide(&l, tat, now + 2 * S - 1, 0, &d);
	CHECK(!d.allowed && d.retry_us == 1);
	gcra_decide(&l, tat, now + 2 * S, 0, &d);
	CHECK(d.allowed);
	gcra_decide(&l, d.tat_us, now + 2 * S, 0, &d);
	CHECK(!d.allowed && d.retry_us == 10000);
	/* one ending sooner than the limit's own wait changes nothing */
	CHECK(gcra_pause(&l, now + 5 * S, now + S) == now + 5 * S);
}

static const struct unit_test tests[] = {
	TEST(parsing),
	TEST(burst_then_rate),
	TEST(waiting_turns),
	TEST(pausing),
};

UNIT_MAIN(tests)
