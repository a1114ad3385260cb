/*
 * Tests text for people (src/text.h): terminal widths, fitting,
 * folding for search, and edit distances for suggestions.
 */
#include <stdlib.h>
#include <string.h>

#include "text.h"
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

static const struct unit_test tests[] = {
	TEST(widths),
	TEST(fitting),
	TEST(folding),
	TEST(distances),
};

UNIT_MAIN(tests)
