/* queue.h: the per-fd request queues and the run queue (queue.c).  Every
 * ap_q_ function here is called with engine.lock (pool.c) held and makes no
 * system call (ap_q_create allocates), except ap_q_bury, ap_q_unpin and
 * ap_q_reset, called without it or in a fork child, and ap_q_maybe_busy and
 * ap_q_bypass_now, lock-free reads; the ap_fd_ functions make the system
 * calls and are called without it. */
#ifndef AP_QUEUE_H
#define AP_QUEUE_H

#include "internal.h"

/* How an fd is treated: what its file type decides, which cannot change
 * for one file.  Its flags (O_APPEND, O_DIRECT, O_SYNC) can, and are
 * looked at per request (struct ap_req's append, direct, sync). */
struct ap_fdkind {
	bool seekable;   /* pread/pwrite work; else read/write */
	bool parallel;   /* regular file or block device: positional requests
	                    may run side by side */
};

/* What the user's fd names, looked at on each queued submission. */
struct ap_fdid {
	dev_t dev;
	ino_t ino;
	mode_t type;     /* st_mode & S_IFMT */
	int flags;       /* F_GETFL of the description */
};

/* The requests on one fd number, for the file it named when the fdq was
 * made.  A request is in exactly one of:
 *   blocked  submission order; waits for an ordering rule (a barrier, an
 *            earlier write when either is an append, anything earlier on
 *            a serial fd).  Only the head is ever promoted, so nothing in
 *            blocked is passed by a later request.
 *   ready    may start; sorted by priority, then submission order.
 *   running  a worker executes it.
 * The fdq sits in the run heap while it has a ready request and fewer than
 * the per-fd limit running.
 *
 * pfd pins the file: a duplicate of the user's fd made with the fdq, on
 * which workers make every system call, so that a request runs on the file
 * its fd named at submission even if the number is closed and reused
 * meanwhile.  It is closed (outside the lock, ap_q_bury) only once the fdq
 * is detached and idle: closing any descriptor of a file drops the
 * process's record locks on it, so it stays open while the user's fd may
 * still name the file. */
struct ap_fdq {
	int fd;
	int pfd;                 /* the pinned duplicate, or -1 */
	struct ap_fdid id;       /* what fd named when pfd was made */
	uint64_t gen;            /* unique among all fdqs ever made */
	struct ap_fdkind kind;
	struct ap_dlist blocked, ready, running;  /* of ap_req, qlink */
	unsigned nactive;        /* ready + running */
	unsigned nrunning;
	unsigned nactive_writes; /* ready + running writes */
	unsigned nactive_appends;/* of those, appends */
	bool barrier_active;     /* an fsync is ready or running */
	bool detached;           /* its fd was closed: no longer in fds */
	int heap_idx;            /* index in the run heap, -1 if not in it */
	struct ap_fdq *next_dead;/* in ap_queues.dead */
	struct ap_dnode dlink;   /* on ap_queues.detached, once detached */
};

struct ap_queues {
	struct ap_fdq **fds;     /* indexed by fd number */
	int nfds;
	struct ap_fdq **heap;    /* run heap: best ready request on top */
	int nheap, heapcap;      /* nheap is stored atomically: read unlocked
	                            by spinning workers (ap_q_work_hint) */
	int nfdq;                /* fdqs in fds or in detached */
	struct ap_dlist detached; /* of fdqs (dlink) taken out of fds, until
	                             freed: a fork child finds their requests
	                             here */
	uint64_t seq;
	unsigned long nqueued;   /* blocked + ready, all fds */
	unsigned long nrunning;
	uint64_t gen;            /* the last fdq generation given out; stored
	                            atomically, read unlocked by ap_submit */
	struct ap_fdq *dead;     /* detached, idle: for ap_q_bury */
};

/* System calls: call these without the lock. */
/* What fd names now (fstat, F_GETFL): 0, or an errno value (EBADF). */
AP_HIDDEN int ap_fd_id(int fd, struct ap_fdid *id);
/* Does fd name the file id was taken from?  (fstat only: the type,
 * device and inode.) */
AP_HIDDEN bool ap_fd_same_file(int fd, const struct ap_fdid *id);
/* Pins the file fd names: a duplicate (ap_fd_dup); finds its kind.  id is
 * set to what the duplicate names (fd may name another file by now than
 * when id was taken).  The duplicate, or -1 with errno set (EMFILE,
 * EBADF). */
AP_HIDDEN int ap_fd_pin(int fd, struct ap_fdid *id, struct ap_fdkind *kind);
/* Closes pfd, a pinned duplicate, without aiopool's close() wrapper. */
AP_HIDDEN void ap_fd_unpin(int pfd);
/* Closes the pinned descriptors of, and frees, a list of fdqs taken from
 * ap_queues.dead (linked by next_dead).  A pinned number that no longer
 * names its fdq's file is left alone: it is not aiopool's any more. */
AP_HIDDEN void ap_q_bury(struct ap_fdq *dead);
/* The same, but only closes the pinned descriptors (pfd becomes -1) and
 * frees nothing, for close()'s path: the list stays the caller's. */
AP_HIDDEN void ap_q_unpin(struct ap_fdq *dead);

static inline bool ap_fdid_same_file(const struct ap_fdid *a,
		const struct ap_fdid *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->type == b->type;
}

/* The fdq for fd, or NULL if it has none. */
AP_HIDDEN struct ap_fdq *ap_q_lookup(struct ap_queues *qs, int fd);
/* Creates fd's fdq (it must have none) for the file pfd pins, of the given
 * kind; it owns pfd from then on.  NULL on ENOMEM (pfd is still the
 * caller's). */
AP_HIDDEN struct ap_fdq *ap_q_create(struct ap_queues *qs, int fd, int pfd,
		const struct ap_fdid *id, struct ap_fdkind kind);

/* Queues r on q: ready at once if the ordering rules allow, else blocked. */
AP_HIDDEN void ap_q_enqueue(struct ap_queues *qs, struct ap_fdq *q,
		struct ap_req *r, int limit);
/* Takes the best ready request of all fds and marks it running; NULL if
 * there is none. */
AP_HIDDEN struct ap_req *ap_q_pick(struct ap_queues *qs, int limit);
/* A running request finished: removes it and promotes what it held back.
 * A detached fdq goes to qs->dead with its last request (here, in
 * ap_q_remove and in ap_q_detach): the caller hands that list to
 * ap_q_bury once it has dropped the lock. */
AP_HIDDEN void ap_q_done(struct ap_queues *qs, struct ap_req *r, int limit);
/* Removes a blocked or ready request (cancel).  false if r is running. */
AP_HIDDEN bool ap_q_remove(struct ap_queues *qs, struct ap_req *r, int limit);
/* fd is being closed: takes its fdq (which must have nothing queued) out of
 * the table onto qs->detached; its running requests finish on it.  Frees
 * nothing (close() may run in a signal handler): an idle fdq goes to
 * qs->dead at once, a busy one with its last request. */
AP_HIDDEN void ap_q_detach(struct ap_queues *qs, int fd);
/* Without the lock: may fd have an fdq?  False is certain; a true may be
 * stale, to be checked under the lock. */
AP_HIDDEN bool ap_q_maybe_busy(int fd);
/* Without the lock: ap_q_may_bypass for fd's fdq, as the lock would say
 * at the moment of the load.  queue.c keeps one bit per fd number (the
 * order map), updated under the lock with every change that rule looks
 * at, with release stores. */
AP_HIDDEN bool ap_q_bypass_now(int fd);

/* The bypass rule, beside may_activate's: may a read on the fd whose fdq
 * is q (NULL: it has none) run now, on the submitting thread, without
 * being queued?  Only if no request on the fd must go before it: it has no
 * queue, or it is a regular file or block device with nothing blocked and
 * no fsync pending.  (Reads pass ready and running requests there anyway,
 * may_activate says.)  Both front ends' submissions (ap_submit) and
 * aiopool_read_now, the libev adapter's fast path, ask this. */
AP_HIDDEN bool ap_q_may_bypass(const struct ap_fdq *q);

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
