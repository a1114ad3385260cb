/*
 * The cache-through's parts (through.h), for its own files alone:
 * through.c the calls and lookups, flight.c what one URL's requests
 * share while its answer is not in the file, ask.c the upstream's side,
 * share.c the shared tier's.
 */
#ifndef RELAY_THROUGH_CALL_H
#define RELAY_THROUGH_CALL_H

#include "base/buf.h"
#include "net/loop.h"
#include "store/hot.h"
#include "store/lease.h"
#include "store/writeback.h"
#include "through/through.h"

enum flight_state {
	FLIGHT_FETCHING, FLIGHT_STORING, FLIGHT_REMOTE,
	FLIGHT_SHARED,		/* asking the shared tier, or waiting for it */
};

struct flight {
	struct flight		*next;
	struct through		*th;
	char			*key;
	enum flight_state	 state;
	struct through_call	*holder;	/* FETCHING: whose request */
	struct lease		*lease;		/* held, or waited on */
	struct watch		*watch;		/* its FIFO, its deadlines */
	long long		 seq;		/* STORING: the write */
	long long		 recheck_ms;	/* REMOTE: next lease_busy;
						   SHARED: next ask */
	int			 uncacheable;	/* waiters ask on their own */
	struct shared_ask	*asking;	/* SHARED: the tier */
	char			 token[SHARED_TOKEN_LEN];	/* its lease's */
	int			 shared_waits;
	int			 shared_news;	/* came while asking */
	struct through_call	*waiters;
};

struct through_call {
	struct through		*th;
	struct through_call	*prev_all, *next_all;	/* th->calls */
	const struct through_sink *sink;	/* NULL once answered */
	void			*ctx;
	char			*key, *method, *fields, *forward;
	char			*scope;		/* NULL: none */
	const char		*body;		/* the caller's */
	size_t			 body_len;
	struct cache_rules	 rules;
	struct policy_request	 directives;
	int			 cacheable;	/* GET or HEAD */
	int			 stored_only;
	int			 retries;	/* left */
	int			 unstored_5xx;
	int			 attempts;	/* sent so far */
	long long		 retry_after_ms;	/* -1: backoff */
	long			 max_redirects;
	struct watch		*retry_timer;	/* NULL: none yet */
	int			 retrying;	/* when the transfer is over */
	char			*final_url;	/* redirects led here */
	char			*error;		/* a message of its own */
	int			 lookup_warned;
	int			 waited_remote;	/* stored_only: once */
	int			 shared_asked;	/* the tier: once */
	struct store_entry	 cached;
	int			 have_cached;
	struct hot_entry	*hot;		/* cached is this one's */
	struct flight		*flight;	/* held or waited on */
	struct through_call	*next;		/* among waiters, or ready */
	long long		 wait_until;
	int			 go_upstream;	/* when woken */
	struct gate_turn	*turn;		/* waited for to send */
	struct transfer		*t;
	struct writeback_body	*wbody;		/* being stored */
	struct buf		 shared_body;	/* …and for the shared tier */
	int			 sharing;	/* shared_body is whole so far */
	struct buf		 head;
	int			 head_passed;	/* to the sink */
	int			 settled;	/* the transfer is moot */
	int			 paused_for_room;
	time_t			 request_time, response_time;
	long long		 upstream_start_ms;
	struct through_result	 result;
};

struct through {
	struct store		*reader, *writer;
	struct writeback	*wb;
	struct upstream		*upstream;
	struct loop		*loop;
	struct leases		*leases;	/* NULL: this process only */
	struct gate		*gate;		/* NULL: no --upstream-rate */
	struct shared		*shared;	/* NULL: no --shared */
	struct options		 opt;	/* rules, stale-if-error, collapse */
	char			*authorization;	/* the upstream URL's credentials */
	char			*origin;	/* …which go to its origin alone */
	int			 reading;	/* this round's read transaction */
	struct hot		*hot;		/* fresh entries in memory */
	long long		 data_version;	/* the file's, that hot holds */
	struct flight		*flights;
	struct through_call	*calls;		/* every one alive */
	struct through_call	*ready, **ready_tail;	/* woken */
	struct watch		*ready_timer;
	struct watch		*applied;	/* the writer's eventfd */
	struct buf		 paused;	/* calls waiting for queue room */
	struct {
		long long	*ids;
		size_t		 len, cap;
		long long	 flushed_ms;
	} hits;
};

/* through.c */
void		 round_read_begin(struct through *);
void		 call_forget_cached(struct through_call *);
void		 call_settle(struct through_call *);
void		 call_answer_stored(struct through_call *, enum through_how);
void		 call_answer_failed(struct through_call *,
		    enum through_failure, const char *);
enum policy_use	 call_usable(const struct through_call *,
		    const struct store_entry *);

/* flight.c */
struct flight	*flight_new(struct through *, const char *, enum flight_state,
		    int);
struct flight	*flight_find(struct through *, const char *);
struct flight	*flight_held(const struct through_call *);
void		 flight_schedule(struct flight *);
void		 flight_wait(struct flight *, struct through_call *, int);
void		 flight_wait_remote(struct through_call *, struct lease *, int);
void		 flight_release_waiters(struct flight *, int);
void		 flight_storing(struct through *, struct through_call *,
		    const char *, long long);
void		 flight_abandon(struct through_call *);
void		 flight_end(struct flight *);

/* ask.c */
void		 call_fetch(struct through_call *);

/* share.c */
void		 share_ask(struct flight *, int);
void		 share_put(struct through_call *, const struct cache_response *);
void		 share_refreshed(struct through_call *);
void		 share_on_done(void *, const char *, int);
void		 share_on_purge(void *, const char *, int);

#endif
