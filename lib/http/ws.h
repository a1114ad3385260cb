/*
 * The WebSocket protocol (RFC 6455), server side, pure: the opening
 * handshake's checks and answer; a client's frames (masked, maybe
 * fragmented, with control frames between the fragments) read into
 * whole messages in bounded memory, text checked as UTF-8 as it comes;
 * and the frames sent back.
 */
#ifndef RELAY_WS_H
#define RELAY_WS_H

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/utf8.h"

enum ws_op {
	WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA,
};

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_NORMAL		1000
#define WS_GOING_AWAY		1001
#define WS_PROTOCOL_ERROR	1002
#define WS_UNSUPPORTED		1003
#define WS_NO_STATUS		1005	/* a close without a code */
#define WS_BAD_DATA		1007	/* text that is not UTF-8 */
#define WS_TOO_BIG		1009

/* A message, or a control frame, read whole. */
struct ws_message {
	enum ws_op	 op;		/* WS_TEXT, WS_BINARY or a control */
	const char	*data;		/* valid until the next ws_read */
	size_t		 len;
	int		 code;		/* WS_CLOSE's, or WS_NO_STATUS */
};

struct ws_reader {
	size_t		 max;		/* bytes of a message */
	unsigned char	 head[14];	/* of the frame being read */
	size_t		 head_len;
	int		 op, fin;
	unsigned long long left;	/* payload bytes still to come */
	unsigned char	 mask[4];
	unsigned	 masked;	/* payload bytes unmasked so far */
	int		 message_op;	/* of a fragmented message; 0: none */
	struct buf	 message;
	struct buf	 control;
	struct utf8	 utf8;
	int		 code;		/* why reading failed: a close code */
	const char	*why;
};

int	ws_handshake(const char *, int, const char *, struct buf *, int *,
	    const char **);
void	ws_reader_init(struct ws_reader *, size_t);
void	ws_reader_free(struct ws_reader *);
ssize_t	ws_read(struct ws_reader *, const void *, size_t,
	    struct ws_message *);
void	ws_frame(struct buf *, enum ws_op, const void *, size_t);
void	ws_close_frame(struct buf *, int, const char *);

#endif
