/*
 * Text for people: the columns a UTF-8 string takes on a terminal,
 * cutting it to fit, folding case and accents for searching, and how
 * far apart two words are, for suggestions; text from elsewhere made
 * safe to print.
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

#endif
