/*
 * Tests text for people (lib/base/text.h): terminal widths, fitting,
 * folding for search, and edit distances for suggestions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "unit.h"

static void
widths(void)
{
	CHECK(text_width("") == 0);
	CHECK(text_width("Bikupan") == 7);
	CHECK(text_width("Café Erik Jorpes") == 16);
	CHECK(text_width("Svarta Räfven") == 13);
	CHECK(text_width("Måndag – Ärtsoppa") == 17);
}

static void
fitting(void)
{
	CHECK(text_fit("Räfven", 2) == 3);	/* "Rä" is three bytes */
	CHECK(text_fit("Räfven", 0) == 0);
	CHECK(text_fit("Räfven", 6) == strlen("Räfven"));
	CHECK(text_fit("Räfven", 60) == strlen("Räfven"));
	CHECK(text_fit("a–b", 2) == 4);		/* the dash is three bytes */
}

static void
folding(void)
{
	static const char *const rows[][2] = {
		{ "Svarta Räfven", "svarta rafven" },
		{ "CAFÉ ÉRIK", "cafe erik" },
		{ "Jöns Jacob", "jons jacob" },
		{ "Åland ÖL ÆØ", "aland ol ao" },
		{ "x×y÷z", "x×y÷z" },
		{ "Måndag – vegetarisk", "mandag – vegetarisk" },
	};
	size_t i;
	char *f;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		f = text_fold(rows[i][0]);
		if (strcmp(f, rows[i][1]) != 0)
			printf("# %s -> %s\n", rows[i][0], f);
		CHECK(strcmp(f, rows[i][1]) == 0);
		free(f);
	}
}

static void
distances(void)
{
	CHECK(text_distance("", "") == 0);
	CHECK(text_distance("bikupan", "bikupan") == 0);
	CHECK(text_distance("bikupn", "bikupan") == 1);
	CHECK(text_distance("bikupan", "bikupna") == 2);
	CHECK(text_distance("elma", "") == 4);
	CHECK(text_distance("kitten", "sitting") == 3);
}

static int
printable_is(const char *in, int tsv, const char *want)
{
	char *got = text_printable(in, tsv);
	int same = strcmp(got, want) == 0;

	if (!same)
		printf("# %s\n", got);
	free(got);
	return same;
}

/* Nothing from elsewhere reaches a terminal raw, nor splits a TSV field. */
static void
printable(void)
{
	CHECK(printable_is("Café – ok", 0, "Café – ok"));
	CHECK(printable_is("a\x1b]0;x\a", 0, "a\\x1B]0;x\\x07"));
	CHECK(printable_is("a\tb\nc\rd", 0, "a\\tb\\nc\\rd"));
	CHECK(printable_is("\xc2\x9b" "31m", 0, "\\u009B31m"));	/* C1 CSI */
	CHECK(printable_is("\xff\xc3", 0, "\\xFF\\xC3"));	/* not UTF-8 */
	CHECK(printable_is("\xed\xa0\x80", 0, "\\xED\\xA0\\x80"));	/* surrogate */
	CHECK(printable_is("a\\b", 0, "a\\b"));
	CHECK(printable_is("a\\b", 1, "a\\\\b"));
	CHECK(printable_is("\x7f", 1, "\\x7F"));
}

/* A NUL inside the text is shown, and the text goes on after it. */
static void
printable_nul(void)
{
	char *got = text_printable_n("plain\0evil\xc2\x9b", 12, 0);

	CHECK(strcmp(got, "plain\\x00evil\\u009B") == 0);
	free(got);
	got = text_printable_n("\0", 1, 1);
	CHECK(strcmp(got, "\\x00") == 0);
	free(got);
}

/* Sizes as ls -h shows them: bytes, then a tenth below ten of a unit. */
static void
sizes(void)
{
	char out[16];

	CHECK(strcmp(text_size(0, out, sizeof out), "0") == 0);
	CHECK(strcmp(text_size(1023, out, sizeof out), "1023") == 0);
	CHECK(strcmp(text_size(1024, out, sizeof out), "1.0K") == 0);
	CHECK(strcmp(text_size(1536, out, sizeof out), "1.5K") == 0);
	CHECK(strcmp(text_size(20 << 20, out, sizeof out), "20M") == 0);
	CHECK(strcmp(text_size(3LL << 40, out, sizeof out), "3.0T") == 0);
	CHECK(strcmp(text_size(5000LL << 50, out, sizeof out), "5000P") == 0);
	CHECK(strcmp(text_size(1536, out, 3), "1.") == 0);	/* cut, ended */
}

/* Ages in the largest unit below two of the next, short or in words. */
static void
ages(void)
{
	char out[16];

	CHECK(strcmp(text_age(-1, AGE_SHORT, out, sizeof out), "-") == 0);
	CHECK(strcmp(text_age(0, AGE_SHORT, out, sizeof out), "0s") == 0);
	CHECK(strcmp(text_age(119, AGE_SHORT, out, sizeof out), "119s") == 0);
	CHECK(strcmp(text_age(120, AGE_SHORT, out, sizeof out), "2m") == 0);
	CHECK(strcmp(text_age(7199, AGE_SHORT, out, sizeof out), "119m") == 0);
	CHECK(strcmp(text_age(7200, AGE_SHORT, out, sizeof out), "2h") == 0);
	CHECK(strcmp(text_age(172800, AGE_SHORT, out, sizeof out), "2d") == 0);
	CHECK(strcmp(text_age(5, AGE_WORDS, out, sizeof out), "5 s") == 0);
	CHECK(strcmp(text_age(600, AGE_WORDS, out, sizeof out), "10 min") == 0);
	CHECK(strcmp(text_age(7200, AGE_WORDS, out, sizeof out), "2 h") == 0);
	CHECK(strcmp(text_age(86400LL * 24855, AGE_WORDS, out, sizeof out),
	    "24855 days") == 0);
}

static const struct unit_test tests[] = {
	TEST(sizes),
	TEST(ages),
	TEST(printable),
	TEST(printable_nul),
	TEST(widths),
	TEST(fitting),
	TEST(folding),
	TEST(distances),
};

UNIT_MAIN(tests)
