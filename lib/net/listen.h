/*
 * Where a server's connections come from: a socket of its own
 * (--listen), systemd's socket activation, or inetd's descriptors; and
 * worker processes sharing a listening socket.
 */
#ifndef RELAY_LISTEN_H
#define RELAY_LISTEN_H

#include <signal.h>

extern volatile sig_atomic_t listen_stop;	/* SIGTERM or SIGINT came */
extern volatile sig_atomic_t listen_reload;	/* SIGHUP came */

void	listen_catch_signals(void);
int	listen_open(const char *);
int	listen_activated(int *);
void	listen_quiet_stderr(void);
int	listen_workers(int, int, int (*)(int));

#endif
