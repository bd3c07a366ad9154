/* aiopool-ev.h: the libev adapter (libaiopool-ev): file I/O through
 * aiopool whose completions arrive as callbacks in a libev loop, so that a
 * server built on libev never blocks its loop on a disk.  See
 * aiopool_ev_new(3).  Build with `pkg-config --cflags --libs aiopool-ev`.
 *
 * Usage:
 *
 *	struct aiopool_ev *aev = aiopool_ev_new(loop);
 *	aiopool_ev_read(aev, fd, buf, len, offset, done, conn);
 *	...
 *	static void done(struct aiopool_ev *aev, long res, void *data)
 *	{
 *		// in the loop's thread, from ev_run: res is the byte count,
 *		// or a negative errno value (-EBADF, -EIO...)
 *	}
 *
 * The contract:
 *  - A submission returns 0 when it accepted the request: its callback
 *    then runs exactly once, in the loop's thread, from ev_run, never from
 *    within the submitting call.  Whatever goes wrong with the I/O itself
 *    (a bad file descriptor, an offset the file refuses, EIO, aiopool's
 *    queue bound) comes to the callback as a negative errno value.  A
 *    negative return value means the request was not accepted and its
 *    callback will not run: -EINVAL for a NULL adapter, callback, iocb or
 *    aiocb, or an unknown op; -EBUSY for an aiocb still in flight; -ENOMEM.
 *  - Buffers, iocbs and aiocbs belong to the adapter from submission until
 *    the callback starts (or aiopool_ev_free returns).  The callback may
 *    submit more requests, reuse or free them, and call aiopool_ev_free.
 *  - One adapter belongs to one loop and is used from the thread that runs
 *    the loop, like libev's own watchers.  Several adapters may share a
 *    loop or a process.
 *  - The adapter's watcher does not keep ev_run alive on its own: while no
 *    request is pending the adapter holds no reference on the loop, and
 *    while any is pending it holds one, so ev_run returns once the last
 *    callback has run and nothing else is active.
 *
 * How completions reach the loop.  The adapter owns one eventfd, watched
 * by an ev_io in the loop, and two ways into aiopool:
 *  - libaio-style requests (aiopool_ev_read, _write, _submit) go to an
 *    io_context_t of its own (4096 requests in flight at most; beyond that
 *    the adapter queues them in submission order and submits them as
 *    earlier ones complete).  Each iocb carries the adapter's eventfd
 *    (io_set_eventfd): the worker that completes it puts its event in the
 *    context's ring and signals the eventfd.  The loop reaps the ring with
 *    a non-blocking io_getevents.
 *  - POSIX aiocbs (aiopool_ev_submit_aiocb) cannot name an eventfd, so the
 *    adapter sets their aio_sigevent to SIGEV_THREAD, with no thread
 *    attributes: aiopool then runs the function on its reused notifier
 *    threads, not a new thread per completion.  The function only pushes
 *    the request on a lock-free list (one compare-and-swap) and, when the
 *    list was empty, signals the eventfd; the loop takes the whole list
 *    with one atomic exchange and calls aio_error and aio_return itself.
 * So no completion ever runs program code outside the loop thread, the
 * loop never waits for I/O (it reaps only what is ready), and a burst of
 * completions costs the loop one wake-up.
 *
 * The fast path: aiopool_ev_read first offers the read to aiopool_read_now,
 * which runs it in the loop's thread under aiopool's own fast-path rule
 * (the AIOPOOL_FASTPATH knob at 1, nothing queued on the fd that must go
 * first, not O_DIRECT, at most the per-read cap, all of it cached): such
 * a read is done without a thread hop (its callback still comes from the
 * loop, as any other).  Never while the adapter's backlog holds requests,
 * which aiopool has not seen; anything else goes to aiopool as usual.
 *
 * Fairness: one wake-up of the adapter's watcher runs at most `batch`
 * callbacks (64 unless aiopool_ev_set_batch says otherwise).  When more
 * completions are ready, the adapter leaves its eventfd readable, so the
 * loop goes round (timers, other fds, signals) and comes back for them in
 * its next iteration: a flood of completions cannot starve other watchers.
 *
 * aiopool_ev_free cancels what is still queued, waits for requests already
 * running to finish (it blocks: a read on an empty pipe keeps it waiting)
 * and runs no further callback.
 *
 * Names: every function and type here starts with aiopool_ev_; the
 * library exports nothing else (version node AIOPOOL_EV_0.1).
 */
#ifndef AIOPOOL_EV_H
#define AIOPOOL_EV_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;     /* <ev.h>, libev built with EV_MULTIPLICITY (the default) */
struct iocb;        /* <libaio.h> (aiopool's, <aiopool/libaio.h>) */
struct aiocb;       /* <aio.h> */

/* An adapter: opaque. */
struct aiopool_ev;

/* A request's completion, in the loop's thread: res is what the operation
 * returned (bytes, or poll(2)'s revents for IO_CMD_POLL; 0 for fsync), or
 * a negative errno value.  data is the submission's. */
typedef void aiopool_ev_cb(struct aiopool_ev *aev, long res, void *data);

/* Attaches a new adapter to loop: NULL with errno set on failure (EINVAL
 * for a NULL loop; ENOMEM, EMFILE, EAGAIN from the resources it takes). */
struct aiopool_ev *aiopool_ev_new(struct ev_loop *loop);

/* Detaches and frees aev (NULL: nothing happens); see above. */
void aiopool_ev_free(struct aiopool_ev *aev);

/* pread / pwrite of len bytes at offset on fd.  0, or a negative errno
 * value (see above). */
int aiopool_ev_read(struct aiopool_ev *aev, int fd, void *buf, size_t len,
		long long offset, aiopool_ev_cb *cb, void *data);
int aiopool_ev_write(struct aiopool_ev *aev, int fd, const void *buf,
		size_t len, long long offset, aiopool_ev_cb *cb, void *data);

/* Submits an iocb prepared with libaio's io_prep_* (any command aiopool's
 * io_submit takes: preadv, pwritev, fsync, fdatasync, poll...).  The
 * adapter uses the iocb's data field and its eventfd (IOCB_FLAG_RESFD)
 * until the callback.  0, or a negative errno value. */
int aiopool_ev_submit(struct aiopool_ev *aev, struct iocb *iocb,
		aiopool_ev_cb *cb, void *data);

/* Submits a POSIX aiocb: op is LIO_READ or LIO_WRITE (aio_read,
 * aio_write) or O_SYNC or O_DSYNC (aio_fsync).  The adapter overwrites
 * aio_sigevent and calls aio_return before the callback, so in the
 * callback the aiocb is free to reuse.  0, or a negative errno value. */
int aiopool_ev_submit_aiocb(struct aiopool_ev *aev, struct aiocb *aiocb,
		int op, aiopool_ev_cb *cb, void *data);

/* Requests accepted whose callback has not started yet, or -EINVAL. */
long aiopool_ev_pending(const struct aiopool_ev *aev);

/* Callbacks run per wake-up of the watcher at most (1 to 65536; 64 by
 * default).  0, or -EINVAL. */
int aiopool_ev_set_batch(struct aiopool_ev *aev, unsigned int n);

#ifdef __cplusplus
}
#endif
#endif
