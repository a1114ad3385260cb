/*
 * A minimal unit-test harness that prints TAP: each test is a function,
 * CHECK stops it at the first failed condition and says where.
 */
#ifndef RELAY_UNIT_H
#define RELAY_UNIT_H

#include <stdio.h>

struct unit_test {
	const char	*name;
	void		(*run)(void);
};

static int unit_failed;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: CHECK(%s) failed\n", __FILE__,		\
		    __LINE__, #cond);					\
		unit_failed = 1;					\
		return;							\
	}								\
} while (0)

#define TEST(fn) { #fn, fn }

static int
unit_main(const struct unit_test *tests, size_t n)
{
	size_t i;
	int any = 0;

	printf("1..%zu\n", n);
	for (i = 0; i < n; i++) {
		unit_failed = 0;
		tests[i].run();
		printf("%sok %zu - %s\n", unit_failed ? "not " : "", i + 1,
		    tests[i].name);
		any |= unit_failed;
	}
	return any;
}

#define UNIT_MAIN(tests) \
	int main(void) { return unit_main(tests, sizeof tests / sizeof tests[0]); }

#endif
