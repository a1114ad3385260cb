/*
 * An item of a batch or of a WebSocket channel: one request given as
 * JSON ({"id","method","path","headers","body"}), made inside
 * relay-serve as a client's would be (server_inner: through the cache,
 * coalescing and the limits), and its answer written back as one line
 * of JSON tagged with its id. The shapes are in relay(7).
 */
#ifndef RELAY_ITEM_H
#define RELAY_ITEM_H

#include <stddef.h>

#include "base/buf.h"
#include "http/http.h"
#include "net/server.h"

#define ITEM_MAX_ID	256		/* bytes of a string id */
#define ITEM_MAX_BODY	1048576		/* of an answer, held until whole */
#define ITEM_MAX_RUNNING 128		/* at once, a process: 128 MiB held */

/* One that waits for room to start items (item_room), in a queue. */
struct item_waiter {
	struct item_waiter	*next;
	void			(*fn)(void *);	/* there may be room now */
	void			*ctx;
	int			 waiting;
};

struct item {
	char		*id;		/* its JSON text; NULL: none, or bad */
	char		 why[200];	/* why it cannot be made; "" if it can */
	char		 method[HTTP_MAX_METHOD + 1];
	char		*path;
	struct buf	 fields;	/* its own header fields */
	struct buf	 body;		/* what it sends, if has_body */
	int		 has_body;
	int		 json_body;	/* given as a JSON value */
};

/*
 * Called once with the answer's line, from the event loop; the item's
 * place among ITEM_MAX_RUNNING is the line's until it goes out (see
 * item_lines).
 */
typedef void item_done_fn(void *, const struct buf *);

/*
 * Lines of answered items that wait for their client, in the order
 * they came: each keeps its item's place until it is written, so that
 * clients that do not read hold no more than ITEM_MAX_RUNNING.
 */
struct item_line;
struct item_lines {
	struct item_line	*first, **last;
};

/* Where lines go: room says whether the client takes more now. */
struct item_sink {
	int	(*room)(void *);
	void	(*write)(void *, const struct buf *);
	void	*ctx;
};

struct item_run;

int		 item_parse(struct item *, const char *, size_t);
void		 item_free(struct item *);
void		 item_error_line(struct buf *, const char *, int, const char *);
void		 item_answer_line(struct buf *, const char *, const char *,
		    size_t, const struct buf *, const char *);

int		 item_room(void);
void		 item_lines_init(struct item_lines *);
void		 item_lines_add(struct item_lines *, const struct buf *);
size_t		 item_lines_flush(struct item_lines *, const struct item_sink *);
int		 item_lines_empty(const struct item_lines *);
void		 item_lines_free(struct item_lines *);
void		 item_wait(struct item_waiter *, void (*)(void *), void *);
void		 item_unwait(struct item_waiter *);
struct item_run	*item_start(struct server *, const char *, const char *,
		    struct item *, item_done_fn *, void *);
void		 item_cancel(struct item_run *);

#endif
