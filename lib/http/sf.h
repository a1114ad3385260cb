/*
 * Structured Field Values (RFC 8941): dictionaries, read strictly, as
 * targeted cache-control fields (RFC 9213) are. Pure and bounded.
 */
#ifndef RELAY_SF_H
#define RELAY_SF_H

#include <stddef.h>

enum sf_type {
	SF_INTEGER, SF_DECIMAL, SF_STRING, SF_TOKEN, SF_BYTES, SF_BOOLEAN,
	SF_INNER_LIST,
};

/* A member's value; its parameters are checked and skipped. */
struct sf_item {
	enum sf_type	 type;
	long long	 integer;	/* SF_INTEGER; SF_BOOLEAN: 0 or 1 */
	const char	*text;		/* the item as written */
	size_t		 text_len;
};

int	sf_dictionary_get(const char *, size_t, const char *,
	    struct sf_item *);

#endif
