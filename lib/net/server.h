/*
 * The server side's connections: accepting, reading requests with hard
 * limits and timeouts, queueing responses in bounded memory, keep-alive
 * and pipelining, graceful stop. What to answer is the program's.
 */
#ifndef RELAY_SERVER_H
#define RELAY_SERVER_H

#include <poll.h>
#include <stddef.h>

#include "base/buf.h"
#include "http/http.h"
#include "net/loop.h"

#define SERVER_OUT_MAX	65536	/* queued bytes before writers wait */

struct server_options {
	long long	idle_timeout_ms;	/* between requests */
	long long	request_timeout_ms;	/* to receive a whole request */
	long long	send_timeout_ms;	/* without the client reading */
	long long	max_body;		/* request body bytes (413) */
	long long	drain_timeout_ms;	/* once stopping, then closed */
};

struct conn;

/*
 * The program's side. request is called with a complete request; the
 * program answers with conn_write and ends with conn_done, at once or
 * later. writable is called when queued output has drained below
 * SERVER_OUT_MAX / 2 while an answer is in progress. gone is called
 * when a connection closes before conn_done.
 */
struct server_handler {
	void	(*request)(struct conn *, void *);
	void	(*writable)(struct conn *, void *);
	void	(*gone)(struct conn *, void *);
	void	*ctx;
};

/*
 * Where an inner request's answer goes (server_inner): its bytes, as
 * a client would get them; its end, with why it was cut short (NULL
 * when it is whole: conn_cut); and how much its consumer holds, which
 * the program weighs as a socket's queued output.
 */
struct inner_ops {
	void	(*write)(void *, const void *, size_t);
	void	(*done)(void *, const char *);
	size_t	(*queued)(void *);
};

/*
 * An upgraded connection's reader (conn_upgrade): input is given what
 * has come and returns how much it took (0: none for now; see
 * conn_raw_feed); eof says the client sends no more; stop that the
 * server is stopping.
 */
struct raw_ops {
	size_t	(*input)(void *, const char *, size_t);
	void	(*eof)(void *);
	void	(*stop)(void *);
};

struct server;
struct log_request;

struct server	*server_new(struct loop *, const struct server_options *,
		    const struct server_handler *);
void		 server_free(struct server *);
struct loop	*server_loop(const struct server *);
void		 server_listen(struct server *, int);
void		 server_connection(struct server *, int, int);
void		 server_stop(struct server *);

void		 server_inner(struct server *, const char *,
		    struct http_request *, struct buf *,
		    const struct inner_ops *, void *, struct conn **);
void		 inner_writable(struct conn *);
void		 inner_cancel(struct conn *);

const struct http_request *conn_request(const struct conn *);
const struct buf *conn_body(const struct conn *);
char		*conn_take_body(struct conn *, size_t *);
const char	*conn_peer(const struct conn *);
int		 conn_inner(const struct conn *);
int		 conn_stopping(const struct conn *);
size_t		 conn_queued(const struct conn *);
void		 conn_write(struct conn *, const void *, size_t);
void		 conn_done(struct conn *, int);
void		 conn_cut(struct conn *, const char *);
void		 conn_upgrade(struct conn *, const struct raw_ops *, void *);
void		 conn_raw_feed(struct conn *);
void		 conn_log(struct conn *, const struct log_request *);
void		*conn_data(const struct conn *);
void		 conn_set_data(struct conn *, void *);

#endif
