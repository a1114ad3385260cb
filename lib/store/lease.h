/*
 * Leases: one upstream request per key at a time across every process
 * that shares a cache file. A lease is a lock on one byte of the file
 * CACHE-lease, so the kernel releases it when its holder dies; waiters
 * are woken by a FIFO in CACHE-wake/ that the holder keeps open.
 */
#ifndef RELAY_LEASE_H
#define RELAY_LEASE_H

#include <stddef.h>

#define LEASE_RECHECK_MS 250	/* a waiter asks the lock this often */

struct leases;
struct lease;

struct leases	*leases_open(const char *, char *, size_t);
void		 leases_close(struct leases *);

struct lease	*lease_take(struct leases *, const char *);
int		 lease_held(const struct lease *);
int		 lease_fd(const struct lease *);
int		 lease_busy(struct lease *);
void		 lease_end(struct lease *);

#endif
