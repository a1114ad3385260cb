/*
 * Text for people: the columns a UTF-8 string takes on a terminal,
 * cutting it to fit, folding case and accents for searching, and how
 * far apart two words are, for suggestions; text from elsewhere made
 * safe to print; sizes and ages as people read them.
 */
#ifndef RELAY_TEXT_H
#define RELAY_TEXT_H

#include <stddef.h>

size_t	 text_width(const char *);
size_t	 text_fit(const char *, size_t);
char	*text_fold(const char *);
size_t	 text_distance(const char *, const char *);
char	*text_printable(const char *, int);
char	*text_printable_n(const char *, size_t, int);

/* For text_age: "90s", "3m", "5h", "2d"; or "90 s", "3 min", "2 days". */
enum text_age_style { AGE_SHORT, AGE_WORDS };

const char *text_size(long long, char *, size_t);
const char *text_age(long long, enum text_age_style, char *, size_t);

#endif
