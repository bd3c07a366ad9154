/* laio.h: what the libaio front end's files share (libaio.c: the API and
 * its checks; ctx.c: contexts and their rings; poller.c: the POLL poller;
 * ownfd.c: the front end's own descriptors).  Nothing here is the engine's: its API is internal.h.
 * Locks: see internal.h (reg.lock, poller.lock, ctx->lock, ctx->ring_lock).
 */
#ifndef AIOPOOL_LAIO_H
#define AIOPOOL_LAIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "aiopool/libaio.h"
#include "dlist.h"
#include "internal.h"

/* ---- ownfd.c: aiopool's own descriptors --------------------------------- *
 *
 * A program may close descriptors it did not open (close_range(3, ~0U, 0)
 * in a daemon, a loop over /proc/self/fd), and its next file then takes the
 * number.  So each descriptor kept here is checked, before every use, to
 * name still what it named when it was made; a number that fails is
 * forgotten, never written, read or closed.  Wake-ups are pipes: each has
 * an inode of its own, so fstat tells it from any file that may take its
 * number (all eventfds share one inode and could not be told apart).
 * A new descriptor takes the lowest free number; for the moment before it
 * is moved high (wake_move), another thread's dup2() onto that number can
 * make it the program's, so each is checked again before it is closed or
 * kept.  The front end opens no other file: io_setup's limit is read when
 * the library is loaded.
 */
struct fdid {
	dev_t dev;
	ino_t ino;
};

/* What fd names now; false if it is not open. */
AP_HIDDEN bool ap_fdid_take(int fd, struct fdid *id);
/* Does fd still name what ap_fdid_take saw? */
AP_HIDDEN bool ap_fdid_same(int fd, dev_t dev, ino_t ino);

/* A wake-up: a byte in the pipe wakes whoever polls its read end. */
struct wakepipe {
	int rfd, wfd;         /* -1: none */
	struct fdid id;       /* both ends' inode */
};
#define WAKEPIPE_NONE ((struct wakepipe){ -1, -1, { 0, 0 } })

/* A new pipe in *w; false (and *w none) if there is no descriptor free. */
AP_HIDDEN bool ap_wake_open(struct wakepipe *w);
/* Is fd one of w's ends still? */
AP_HIDDEN bool ap_wake_ours(const struct wakepipe *w, int fd);
/* Are both ends still ours? */
AP_HIDDEN bool ap_wake_ok(const struct wakepipe *w);
/* A byte into the pipe, if its write end is still ours. */
AP_HIDDEN void ap_wake_signal(const struct wakepipe *w);
/* Empties the pipe: false if it is broken (an end is no longer ours). */
AP_HIDDEN bool ap_wake_drain(const struct wakepipe *w);
/* Closes the ends still ours, forgets the others; *w becomes none. */
AP_HIDDEN void ap_wake_close(struct wakepipe *w);

/* ---- ctx.c: contexts and their rings ----------------------------------- */

/* The kernel's struct aio_ring. */
struct aio_ring {
	unsigned id;
	unsigned nr;
	unsigned head;          /* written by the program or under ring_lock */
	unsigned tail;
	unsigned magic;
	unsigned compat_features;
	unsigned incompat_features;
	unsigned header_length;
	struct io_event io_events[];
};
_Static_assert(sizeof(struct aio_ring) == 32, "the ring header is 32 bytes");
#define AIO_RING_MAGIC 0xa10a10a1u

#define CTX_DEAD (1u << 31)

struct pwaiter {
	struct ap_dnode link;         /* on ctx->pw, under ctx->lock */
	struct wakepipe pipe;         /* written by ap_ctx_wake, under ctx->lock */
};

struct ap_ctx {
	struct ap_ctx *hnext;         /* registry chain, under reg.lock */
	struct aio_ring *ring;        /* == the handle */
	uint32_t nr;                  /* ring slots (ring->nr may be scribbled) */
	uint32_t nevents;             /* io_setup's nr */
	uint32_t refs;                /* CTX_DEAD | calls and requests using it */
	uint32_t npw;                 /* io_pgetevents waiters */
	/* Monotonic counts: accepted requests (less those that ended without
	 * an event), and events pushed into the ring.  reserved - pushed is
	 * what is in flight; pushed % nr is the ring's tail. */
	uint64_t reserved;
	uint64_t pushed;              /* written under ring_lock */
	struct ap_chan chan;          /* io_getevents waiters */
	pthread_mutex_t ring_lock;    /* innermost: events, head and tail */
	pthread_mutex_t lock;         /* pw, spare */
	struct ap_dlist pw;           /* of struct pwaiter, through link */
	struct wakepipe spare;        /* the last masked waiter's pipe */
};

#define RING_OFFSET ((sizeof(struct ap_ctx) + 63) & ~(size_t)63)

/* The live context of a handle, with a reference; NULL if there is none. */
AP_HIDDEN struct ap_ctx *ap_ctx_get(io_context_t handle);
/* Drops a reference; ctx may be freed as soon as this returns. */
AP_HIDDEN void ap_ctx_put(struct ap_ctx *ctx);
/* Has io_destroy begun on ctx (no request may join it any more)? */
AP_HIDDEN bool ap_ctx_dead(struct ap_ctx *ctx);
/* Wakes everyone waiting on ctx for an event (or for its death). */
AP_HIDDEN void ap_ctx_wake(struct ap_ctx *ctx);
/* The ring's head as the program left it, reduced into the ring. */
AP_HIDDEN uint32_t ap_ring_head(struct ap_ctx *ctx);
/* Events in the ring not yet reaped, given its head (ap_ring_head) and
 * then the count of events pushed. */
AP_HIDDEN uint32_t ap_ring_used(const struct ap_ctx *ctx, uint32_t head,
		uint64_t pushed);
/* Requests accepted and not yet reaped: in flight plus in the ring. */
AP_HIDDEN uint64_t ap_ctx_outstanding(struct ap_ctx *ctx);
/* Takes a slot for one more request: false when the ring has no room. */
AP_HIDDEN bool ap_ctx_reserve(struct ap_ctx *ctx);
/* A reserved request ends without an event (refused, or cancelled). */
AP_HIDDEN void ap_ctx_unreserve(struct ap_ctx *ctx);
/* Copies up to nr events out of the ring, oldest first: how many. */
AP_HIDDEN long ap_ring_reap(struct ap_ctx *ctx, struct io_event *ev, long nr);
/* io_setup: gives ctx (its ring set up) an id and a place in the
 * registry.  false if out of memory. */
AP_HIDDEN bool ap_ctx_register(struct ap_ctx *ctx);
/* io_destroy: takes handle's context out of the registry and marks it
 * dead; NULL if there is none (never was, or destroyed already). */
AP_HIDDEN struct ap_ctx *ap_ctx_unregister(io_context_t handle);
/* io_destroy: waits until no call and no request uses the dead ctx. */
AP_HIDDEN void ap_ctx_wait_unused(struct ap_ctx *ctx);
/* fork: libaio's prepare hook takes reg.lock first; the parent releases
 * it; the child forgets the parent's contexts. */
AP_HIDDEN void ap_reg_lock(void);
AP_HIDDEN void ap_reg_unlock(void);
AP_HIDDEN void ap_reg_atfork_child(void);

/* A libaio request: the engine's, and what the front end keeps of its
 * iocb.  A POLL is never handed to the engine: the poller below waits for
 * it, on its own list, and completes it with ap_complete_unqueued. */
struct la_req {
	struct ap_req r;
	struct ap_ctx *ctx;
	struct iocb *iocb;            /* as submitted */
	void *data;                   /* iocb->data */
	struct iovec *iov;            /* our copy of a vector, or NULL */
	int resfd;                    /* our duplicate of the eventfd, or -1 */
	/* What resfd and a waiting POLL's fd named when taken (fstat),
	 * checked before each use: the program may close them and reuse the
	 * numbers. */
	dev_t resfd_dev, poll_dev;
	ino_t resfd_ino, poll_ino;
	bool poll;                    /* a POLL */
	bool poll_own;                /* POLL: r.fd is our duplicate */
	short poll_events;
	/* Under poller.lock, while the POLL waits in the poller. */
	struct ap_dnode plink;
	uint64_t round;               /* the poll() round it was last in */
	size_t slot;                  /* its pollfd in that round */
};

static inline struct la_req *la(const struct ap_req *r)
{
	return ap_container_of(r, struct la_req, r);
}


/* ---- poller.c: the POLL poller ------------------------------------------ */

/* Queues the POLL l (filled in by submit_one): completes it at once if its
 * fd is ready, else hands it to the poller.  0 or an errno value (l is
 * then still the caller's). */
AP_HIDDEN int ap_poll_submit(struct la_req *l);
/* Takes ctx's waiting POLLs (iocb NULL: all of them; else the first of
 * iocb, whose data goes to *data) off the poller and completes them as
 * cancelled, quietly.  How many it took. */
AP_HIDDEN int ap_poll_cancel(struct ap_ctx *ctx, struct iocb *iocb, void **data);
/* Closes l's duplicate of its fd, if it is a POLL and the duplicate still
 * ours (aio_notify). */
AP_HIDDEN void ap_poll_drop_fd(struct la_req *l);
/* fork: libaio's prepare hook takes poller.lock after reg.lock; the parent
 * releases it; the child forgets the parent's poller and its requests'
 * duplicates, and releases it. */
AP_HIDDEN void ap_poller_lock(void);
AP_HIDDEN void ap_poller_unlock(void);
AP_HIDDEN void ap_poller_atfork_child(void);

#endif
