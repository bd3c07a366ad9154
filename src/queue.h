/* queue.h: the per-fd request queues and the run queue (queue.c).  Every
 * function here but ap_fd_kind and ap_q_maybe_busy is called with
 * ap_engine.lock held, and makes no system call.  Only ap_q_create allocates; it, ap_q_done, ap_q_remove and
 * ap_q_reset may free an fdq; ap_q_detach, on close()'s path, frees
 * nothing. */
#ifndef AP_QUEUE_H
#define AP_QUEUE_H

#include "internal.h"

struct ap_list {
	struct ap_req *head, *tail;
};

/* How an fd is treated, found out once when its queue is created. */
struct ap_fdkind {
	bool seekable;   /* pread/pwrite work; else read/write */
	bool parallel;   /* regular file or block device: positional requests
	                    may run side by side */
	bool append;     /* opened with O_APPEND: writes one at a time, in order */
	bool direct;     /* O_DIRECT: every transfer waits for the device */
	bool sync;       /* O_SYNC or O_DSYNC: every write waits for the device */
	bool bad;        /* not an open fd */
};

/* The requests on one fd number.  A request is in exactly one of:
 *   blocked  submission order; waits for an ordering rule (a barrier, an
 *            earlier write on an O_APPEND fd, anything earlier on a serial
 *            fd).  Only the head is ever promoted, so nothing in blocked
 *            is passed by a later request.
 *   ready    may start; sorted by priority, then submission order.
 *   running  a worker executes it.
 * The fdq sits in the run heap while it has a ready request and fewer than
 * the per-fd limit running. */
struct ap_fdq {
	int fd;
	struct ap_fdkind kind;
	struct ap_list blocked, ready, running;
	unsigned nactive;        /* ready + running */
	unsigned nrunning;
	unsigned nactive_writes; /* ready + running writes, O_APPEND fds */
	bool barrier_active;     /* an fsync is ready or running */
	bool detached;           /* its fd was closed: no longer in fds; set
	                            atomically, read by workers unlocked */
	int heap_idx;            /* index in the run heap, -1 if not in it */
	uint64_t gen;            /* which fdq this is: unique in the process,
	                            unlike its address, which may be reused */
	struct ap_fdq *dnext, *dprev; /* in ap_queues.detached, once detached */
};

struct ap_queues {
	struct ap_fdq **fds;     /* indexed by fd number */
	int nfds;
	struct ap_fdq **heap;    /* run heap: best ready request on top */
	int nheap, heapcap;      /* nheap is stored atomically: read unlocked
	                            by spinning workers (ap_q_work_hint) */
	int nfdq;                /* fdqs in fds or in detached */
	struct ap_fdq *detached; /* fdqs taken out of fds, until freed: a fork
	                            child finds their requests here */
	uint64_t fdq_gen;        /* the last ap_fdq.gen given */
	uint64_t seq;
	unsigned long nqueued;   /* blocked + ready, all fds */
	unsigned long nrunning;
};

/* What kind of fd this is (system calls; call without the lock). */
AP_HIDDEN struct ap_fdkind ap_fd_kind(int fd);

/* The fdq for fd, or NULL if it has none. */
AP_HIDDEN struct ap_fdq *ap_q_lookup(struct ap_queues *qs, int fd);
/* Creates fd's fdq (it must have none) of the given kind; NULL on ENOMEM. */
AP_HIDDEN struct ap_fdq *ap_q_create(struct ap_queues *qs, int fd,
		struct ap_fdkind kind);

/* Queues r on q: ready at once if the ordering rules allow, else blocked. */
AP_HIDDEN void ap_q_enqueue(struct ap_queues *qs, struct ap_fdq *q,
		struct ap_req *r, int limit);
/* Takes the best ready request of all fds and marks it running; NULL if
 * there is none. */
AP_HIDDEN struct ap_req *ap_q_pick(struct ap_queues *qs, int limit);
/* A running request finished: removes it and promotes what it held back.
 * Frees a detached fdq with its last request. */
AP_HIDDEN void ap_q_done(struct ap_queues *qs, struct ap_req *r, int limit);
/* Removes a blocked or ready request (cancel).  false if r is running. */
AP_HIDDEN bool ap_q_remove(struct ap_queues *qs, struct ap_req *r, int limit);
/* fd is being closed: takes its fdq (which must have nothing queued) out of
 * the table onto qs->detached; its running requests finish on it.  Frees
 * nothing (close() may run in a signal handler): the fdq is freed with its
 * last request, or, if it has none, by the next ap_q_create. */
AP_HIDDEN void ap_q_detach(struct ap_queues *qs, int fd);
/* Without the lock: may fd have an fdq?  False is certain; a true may be
 * stale, to be checked under the lock. */
AP_HIDDEN bool ap_q_maybe_busy(int fd);

/* Re-applies the per-fd limit after it changed. */
AP_HIDDEN void ap_q_relimit(struct ap_queues *qs, int limit);

/* In a fork child: hands every request, on detached fdqs too, to orphan(),
 * frees every fdq and empties qs. */
AP_HIDDEN void ap_q_reset(struct ap_queues *qs, void (*orphan)(struct ap_req *r));

static inline bool ap_q_has_work(const struct ap_queues *qs)
{
	return qs->nheap > 0;
}

/* Without the lock: is there work, probably?  For spinning only. */
static inline bool ap_q_work_hint(const struct ap_queues *qs)
{
	return ap_load_relaxed(&qs->nheap) > 0;
}

#endif
