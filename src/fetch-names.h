/*
 * relay-fetch's -o file names: a template's escapes, the URL's file
 * name in it, and the names given out so far, so that no URL
 * overwrites another's file.
 */
#ifndef RELAY_FETCH_NAMES_H
#define RELAY_FETCH_NAMES_H

void		 check_template(const char *);
char		*output_name(const char *, long long, const char *);
long long	 claim_name(const char *, long long);
void		 make_parents(const char *);

#endif
