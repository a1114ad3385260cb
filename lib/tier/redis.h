/*
 * The connection to the shared tier's Redis (--shared), on the
 * server's event loop: hiredis's asynchronous client on our watches,
 * so that no command waits; a hard deadline on connecting and on
 * every command, after which the connection is dropped and every
 * command on it fails; a second connection subscribed to one channel;
 * and, while Redis is down, a new try every second, said once in the
 * log each way.
 */
#ifndef RELAY_REDIS_H
#define RELAY_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "net/loop.h"

#define REDIS_RETRY_MS	1000	/* while down, a new connection this often */

/* Where it is, as --shared and --shared-password-file say. */
struct redis_target {
	char	*url;		/* as given, to name it */
	char	*host;		/* numeric, resolved at start */
	int	 port;
	long long db;
	char	*password;	/* NULL: none */
};

int	redis_target_parse(const char *, const char *, struct redis_target *,
	    char *, size_t);
void	redis_target_free(struct redis_target *);
redisContext *redis_connect_blocking(const struct redis_target *, long long,
	    char *, size_t);

/* reply is NULL when the command failed: Redis down or too slow. */
typedef void redis_reply_fn(void *, const redisReply *);
/* A message on the subscribed channel. */
typedef void redis_message_fn(void *, const char *, size_t);

/* A script: its text, and the SHA-1 EVALSHA names it by. */
struct redis_script {
	const char	*text;
	char		 sha[41];	/* filled at first use */
};


struct redis;
struct redis_ask;

struct redis	*redis_open(struct loop *, const struct redis_target *,
		    long long, const char *, redis_message_fn *, void *);
void		 redis_close(struct redis *);
int		 redis_up(const struct redis *);
int		 redis_busy(const struct redis *);
long long	 redis_failures(const struct redis *);
int		 redis_command(struct redis *, int, const char **,
		    const size_t *, redis_reply_fn *, void *,
		    struct redis_ask **);
int		 redis_eval(struct redis *, struct redis_script *, int, int,
		    const char **, const size_t *, redis_reply_fn *, void *,
		    struct redis_ask **);
void		 redis_cancel(struct redis_ask *);

#endif
