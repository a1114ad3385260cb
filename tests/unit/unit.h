/*
 * A minimal unit-test harness that prints TAP: each test is a function,
 * CHECK stops it at the first failed condition and says where.
 */
#ifndef RELAY_UNIT_H
#define RELAY_UNIT_H

#include <sys/resource.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

static char unit_dir[64];

static void
unit_remove_dir(void)
{
	char file[sizeof unit_dir + 258];
	struct dirent *d;
	DIR *dp;

	if ((dp = opendir(unit_dir)) == NULL)
		return;
	while ((d = readdir(dp)) != NULL)
		if (d->d_name[0] != '.') {
			snprintf(file, sizeof file, "%s/%s", unit_dir,
			    d->d_name);
			unlink(file);
		}
	closedir(dp);
	rmdir(unit_dir);
}

/*
 * A path in the test's own directory, made on first use and removed at
 * exit; the result lasts until the next call.
 */
static __attribute__((unused)) const char *
unit_tmp_path(const char *name)
{
	static char path[sizeof unit_dir + 64];

	if (unit_dir[0] == '\0') {
		/* mkdtemp replaces the six X's with a unique name. */
		snprintf(unit_dir, sizeof unit_dir, "/tmp/relay-unit-XXXXXX");
		if (mkdtemp(unit_dir) == NULL) {
			perror("mkdtemp");
			exit(1);
		}
		atexit(unit_remove_dir);
	}
	snprintf(path, sizeof path, "%s/%s", unit_dir, name);
	return path;
}

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

static struct rlimit unit_file_limit_saved;

/*
 * A full disk, as far as this process can tell: writing a file beyond
 * bytes fails with EFBIG ("File too large") until unit_file_limit_end.
 */
static __attribute__((unused)) void
unit_file_limit(long long bytes)
{
	struct rlimit lim;

	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &unit_file_limit_saved);
	lim = unit_file_limit_saved;
	lim.rlim_cur = (rlim_t)bytes;
	setrlimit(RLIMIT_FSIZE, &lim);
}

static __attribute__((unused)) void
unit_file_limit_end(void)
{
	setrlimit(RLIMIT_FSIZE, &unit_file_limit_saved);
}

#endif
