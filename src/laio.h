/* laio.h: what the libaio front end's files share (libaio.c: the API,
 * contexts and rings; poller.c: the POLL poller; ownfd.c: the front end's
 * own descriptors).  Nothing here is the engine's: its API is internal.h.
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

/* ---- libaio.c: requests and contexts ------------------------------------ */

struct ap_ctx;  /* one io_context_t (libaio.c) */
/* Has io_destroy begun on ctx (no request may join it any more)? */
AP_HIDDEN bool ap_ctx_dead(struct ap_ctx *ctx);

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
