/*
 * Strict number parsing for options and fields: the whole string,
 * within bounds, or an error.
 */
#ifndef RELAY_NUM_H
#define RELAY_NUM_H

int	num_parse(const char *, long long, long long, long long *);
int	num_duration(const char *, long long *);
int	num_size(const char *, long long *);
int	num_hex_digit(char);

#endif
