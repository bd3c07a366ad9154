/* libaio.c: the libaio front end (libaio.so.1's API and ABI, x86_64), on
 * the same engine and queues as the POSIX front end.
 *
 * Owns:
 *   each struct la_req (laio.h): a request, the engine's struct ap_req
 *            first, then its context, iocb, RESFD duplicate and, for a
 *            POLL, what it polls (a waiting POLL is poller.c's).
 *   each struct ap_ctx (laio.h, registered by ctx.c): the io_getevents
 *            and io_pgetevents waiters (its lock: the masked waiters and
 *            their spare wake-up pipe); its ring and counts are ctx.c's.
 *   the descriptors the front end keeps: the masked waiters' wake-up
 *            pipes and a RESFD eventfd's duplicate (per request), made and
 *            checked before every use by ownfd.c; none is needed for a
 *            call to succeed but the RESFD duplicate.
 *   max_nr   fs.aio-max-nr, written once by the constructor.
 *
 * The registry and the rings are in ctx.c, the POLL poller in poller.c,
 * the front end's own descriptors in ownfd.c; laio.h has what the four
 * files share.
 *
 * Locks (their order, and fork's exception to it, are in internal.h):
 * A context's lock is never held across an engine call, nor with another
 * lock; fork's prepare handler takes ctx.c's reg.lock, then poller.c's
 * poller.lock.  Under a context's lock no request's I/O and no user code
 * runs, only work on the front end's own descriptors (fstat, a wake-up
 * pipe's byte written or drained, a wake-up pipe made or closed).  ring_lock
 * is the innermost lock of all, taken in aio_finish (under engine.lock for
 * a queued request, without it for one never queued) and by readers of
 * the ring.
 *
 * A context is one allocation: struct ap_ctx, then the ring, laid out as
 * the kernel's struct aio_ring (32-byte header, then the events).  The
 * handle given to the program is the ring's address, so programs that reap
 * straight from the ring (fio's userspace_reap) work.  The ring has
 * nr_events + 1 slots: room for nr_events events in flight or unreaped.
 * Room is counted as the requests in flight (accepted, event not yet in
 * the ring) plus the events between head and tail, head as the program
 * left it (see ap_ctx_reserve).
 *
 * Lifetime: refs counts the calls using a context and the requests it has
 * in flight (until their notify has run); io_destroy takes the context out
 * of the registry, sets CTX_DEAD in refs, cancels what is queued, and waits
 * for the count to reach zero before it frees the memory.
 *
 * Differences from kernel AIO (also in <aiopool/libaio.h>, for aiopool(7)):
 *   - io_getevents with min_nr == 0 and a non-zero (or NULL) timeout waits
 *     for one event while requests are in flight: kernel AIO completes
 *     buffered I/O inside io_submit, and programs rely on that.
 *   - io_cancel cancels anything still queued, writes its event (res
 *     -ECANCELED) to *result and returns 0; no event for it is queued.  A
 *     running request gives -EAGAIN, an unknown or finished one -EINVAL.
 *   - io_queue_wait waits until an event is ready, nothing is in flight,
 *     or the timeout passes; it returns 0 (the timeout is not updated).
 *   - IOCB_FLAG_IOPRIO: the class and level order the request among this
 *     process's requests (RT level L -> priority 16-L, BE level L -> 4-L,
 *     IDLE -> -20, NONE -> 0, on the scale where POSIX requests get
 *     sched_priority - aio_reqprio); the RT class needs no privilege.
 *   - A context of nr events accepts nr requests in flight or unreaped
 *     (the kernel rounds nr up); io_setup's -EAGAIN compares nr alone with
 *     fs.aio-max-nr (not the sum over all contexts of the system).
 *   - aio_rw_flags outside the RWF_* flags known are -EOPNOTSUPP at
 *     submission; a known flag the kernel refuses for that file comes back
 *     as the event's res.
 *   - POLL's res is poll(2)'s revents for the requested events (and
 *     POLLERR, POLLHUP).  A waiting POLL holds its file through a
 *     duplicate of the fd, as the kernel holds a reference; if the program
 *     closes that duplicate (or, when no descriptor was free for one, its
 *     own fd) it ends with -ECANCELED instead of polling whatever file
 *     takes the number.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "laio.h"

/* ---- the ABI ------------------------------------------------------------- */

_Static_assert(sizeof(struct iocb) == 64, "struct iocb is 64 bytes");
_Static_assert(sizeof(struct io_event) == 32, "struct io_event is 32 bytes");
_Static_assert(offsetof(struct iocb, key) == 8 &&
               offsetof(struct iocb, aio_rw_flags) == 12 &&
               offsetof(struct iocb, aio_lio_opcode) == 16 &&
               offsetof(struct iocb, aio_reqprio) == 18 &&
               offsetof(struct iocb, aio_fildes) == 20 &&
               offsetof(struct iocb, u.c.buf) == 24 &&
               offsetof(struct iocb, u.c.nbytes) == 32 &&
               offsetof(struct iocb, u.c.offset) == 40 &&
               offsetof(struct iocb, u.c.__pad3) == 48 &&
               offsetof(struct iocb, u.c.flags) == 56 &&
               offsetof(struct iocb, u.c.resfd) == 60 &&
               offsetof(struct iocb, u.v.vec) == 24 &&
               offsetof(struct iocb, u.v.nr) == 32 &&
               offsetof(struct iocb, u.poll.events) == 24,
               "struct iocb has the kernel's layout");
_Static_assert(offsetof(struct io_event, obj) == 8 &&
               offsetof(struct io_event, res) == 16 &&
               offsetof(struct io_event, res2) == 24,
               "struct io_event has the kernel's layout");

#define IOCB_RESFD  (1u << 0)   /* IOCB_FLAG_RESFD */
#define IOCB_IOPRIO (1u << 1)   /* IOCB_FLAG_IOPRIO */


#define AIO_RING_MAGIC 0xa10a10a1u
#define MAX_EVENTS 4194304u      /* the kernel's bound on nr_events */
#define IOPRIO_CLASS_SHIFT 13
#define IOV_MAX_SEGS 1024        /* UIO_MAXIOV */
/* RWF_HIPRI, DSYNC, SYNC, NOWAIT, APPEND, NOAPPEND, ATOMIC, DONTCACHE:
 * passed to preadv2/pwritev2, which reports what the kernel refuses. */
#define RWF_KNOWN 0xffu

/* User addresses end below 2^56 (5-level paging); past it, or in the first
 * page, a pointer is not the program's: -EFAULT without touching it. */
#define USER_END (1ULL << 56)

static bool bad_ptr(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p;

	return a < 4096 || a >= USER_END || len > USER_END - a;
}

/* bad_ptr, or the 8 bytes at p, which hold zero, cannot be written (a
 * read-only mapping): where the kernel's put_user would fault, -EFAULT
 * instead of a crash.  select() with a 64-bit set of no descriptors reads
 * the 8 bytes and writes the same zeros back, or fails with EFAULT; called
 * raw, as sanitizers' select() would check a whole fd_set. */
static bool bad_zero_out(void *p)
{
	struct timeval zero = { 0, 0 };

	if (bad_ptr(p, 8))
		return true;
	return syscall(SYS_select, 64, p, NULL, NULL, &zero) < 0 && errno == EFAULT;
}

/* ---- the engine's view of a libaio request -------------------------------- */

static void aio_finish(struct ap_req *r);
static void aio_notify(struct ap_req *r);
static void aio_orphan(struct ap_req *r);

static const struct ap_ops aio_ops = {
	.finish = aio_finish,
	.notify = aio_notify,
	.orphan = aio_orphan,
};

/* Under the engine lock (or for a request never queued, without it): the
 * event goes into the ring.  A request
 * cancelled quietly was cancelled by io_cancel (which hands its event to
 * the caller) or by io_destroy (which discards it): no event is queued and
 * no eventfd signalled.  One cancelled otherwise (its fd was closed) gets
 * its -ECANCELED event like any other result. */
static void aio_finish(struct ap_req *r)
{
	struct ap_ctx *ctx = la(r)->ctx;
	struct io_event *ev;
	uint64_t p;

	if (r->quiet) {   /* no event, and aio_notify signals no eventfd */
		ap_ctx_unreserve(ctx);
		return;
	}
	ap_lock(&ctx->ring_lock);
	p = ctx->pushed;
	ev = &ctx->ring->io_events[p % ctx->nr];
	ev->data = la(r)->data;
	ev->obj = la(r)->iocb;
	ev->res = r->err ? (unsigned long)-(long)r->err : (unsigned long)r->res;
	ev->res2 = 0;
	ap_store(&ctx->pushed, p + 1);   /* the event, then the counts */
	ap_store(&ctx->ring->tail, (unsigned)((p + 1) % ctx->nr));
	ap_unlock(&ctx->ring_lock);
}

/* Without the engine lock: the event is in the ring (or cancelled). */
static void aio_notify(struct ap_req *r)
{
	struct ap_ctx *ctx = la(r)->ctx;

	if (la(r)->resfd >= 0 &&   /* our duplicate (dup_eventfd), still? */
	    ap_fdid_same(la(r)->resfd, la(r)->resfd_dev, la(r)->resfd_ino)) {
		uint64_t one = 1;

		if (!r->quiet) {
			ssize_t n = write(la(r)->resfd, &one, sizeof one);
			(void)n;   /* as the kernel: an overflow is not an error */
		}
		ap_close(la(r)->resfd);
	}
	ap_poll_drop_fd(la(r));
	ap_ctx_wake(ctx);
	free(la(r)->iov);
	ap_req_free(r);
	ap_ctx_put(ctx);       /* last: ctx may go away now */
}

/* In a fork child: the parent's contexts are not the child's. */
static void aio_orphan(struct ap_req *r)
{
	(void)r;
}

/* ---- fork ----------------------------------------------------------------- */

static void aio_atfork_prepare(void)
{
	ap_reg_lock();
	ap_poller_lock();
}

static void aio_atfork_parent(void)
{
	ap_poller_unlock();
	ap_reg_unlock();
}

/* The child has none of the parent's contexts, as with the kernel (see
 * ap_reg_atfork_child), and the poller thread is the parent's. */
static void aio_atfork_child(void)
{
	ap_reg_atfork_child();
	ap_poller_atfork_child();
}

static void read_aio_max_nr(void);

__attribute__((constructor)) static void aio_init(void)
{
	ap_atfork_register(aio_atfork_prepare, aio_atfork_parent,
	                   aio_atfork_child);
	read_aio_max_nr();
}

/* ---- io_setup, io_destroy ------------------------------------------------- */

/* fs.aio-max-nr, read when the library is loaded (the kernel's default
 * without /proc), so that io_setup opens no file: a descriptor it held for
 * a moment could be the number another thread's dup2() is about to
 * replace, and closing it then would close that thread's file. */
static unsigned long max_nr = 65536;

static void read_aio_max_nr(void)
{
	FILE *f = fopen("/proc/sys/fs/aio-max-nr", "re");
	unsigned long x;

	if (!f)
		return;
	if (fscanf(f, "%lu", &x) == 1 && x > 0)
		max_nr = x;
	fclose(f);
}

static int la_setup(int maxevents, io_context_t *ctxp)
{
	struct ap_ctx *ctx;
	struct aio_ring *ring;
	unsigned nr = (unsigned)maxevents;
	pthread_mutexattr_t ma;
	void *mem;

	if (bad_ptr(ctxp, sizeof *ctxp))
		return -EFAULT;
	if (*ctxp)
		return -EINVAL;
	if (nr == 0 || nr > MAX_EVENTS)   /* a negative int is huge */
		return -EINVAL;
	if (nr > max_nr)
		return -EAGAIN;
	if (bad_zero_out(ctxp))
		return -EFAULT;   /* the kernel's final put_user would fault */
	if (posix_memalign(&mem, 64, RING_OFFSET + sizeof *ring +
	                   (size_t)(nr + 1) * sizeof(struct io_event)))
		return -ENOMEM;
	ctx = mem;
	memset(ctx, 0, sizeof *ctx);
	ring = (struct aio_ring *)((char *)mem + RING_OFFSET);
	ctx->ring = ring;
	ctx->nr = nr + 1;
	ctx->nevents = nr;
	ctx->spare = WAKEPIPE_NONE;
	pthread_mutexattr_init(&ma);
	pthread_mutex_init(&ctx->ring_lock, &ma);
	pthread_mutex_init(&ctx->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	*ring = (struct aio_ring){
		.nr = ctx->nr,
		.magic = AIO_RING_MAGIC,
		.compat_features = 1,
		.incompat_features = 0,
		.header_length = sizeof *ring,
	};
	if (!ap_ctx_register(ctx)) {
		free(mem);
		return -ENOMEM;
	}
	*ctxp = (io_context_t)ring;
	return 0;
}

static bool match_ctx(const struct ap_req *r, void *ctx)
{
	return r->ops == &aio_ops && la(r)->ctx == ctx;
}

static int la_destroy(io_context_t handle)
{
	struct ap_ctx *ctx;

	if (!(ctx = ap_ctx_unregister(handle)))
		return -EINVAL;   /* never was, or destroyed already */

	ap_ctx_wake(ctx);                       /* waiters: -EINVAL */
	ap_poll_cancel(ctx, NULL, NULL);        /* waiting POLLs */
	ap_cancel(-1, match_ctx, ctx, true);       /* queued requests */
	ap_ctx_wait_unused(ctx);             /* running ones, and callers */
	ap_store_relaxed(&ctx->ring->magic, 0u);
	ap_wake_close(&ctx->spare);
	pthread_mutex_destroy(&ctx->ring_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	return 0;
}

/* ---- io_submit -------------------------------------------------------------- */

/* The ioprio class and level on the engine's priority scale. */
static int ioprio_to_prio(short reqprio, int *prio)
{
	unsigned v = (unsigned short)reqprio;
	unsigned cls = v >> IOPRIO_CLASS_SHIFT;
	unsigned level = v & 7;   /* bits 3..12 are hints: ignored */

	switch (cls) {
	case 0:   /* NONE: the default */
		if (level)
			return EINVAL;
		*prio = 0;
		return 0;
	case 1:   /* RT */
		*prio = 16 - (int)level;
		return 0;
	case 2:   /* BE */
		*prio = 4 - (int)level;
		return 0;
	case 3:   /* IDLE */
		*prio = -20;
		return 0;
	}
	return EINVAL;
}

/* The request signals its eventfd through a duplicate of its own, taken
 * here: the program may close the eventfd before the request completes
 * and the number may then name a file, which must not get 8 bytes (the
 * kernel holds a reference too).  *dup is the duplicate, closed by
 * aio_notify, and *id what it names, which aio_notify checks first (the
 * program may close our duplicate too).  0, EBADF, EINVAL (not an
 * eventfd), or EAGAIN (no descriptor free for the duplicate). */
static int dup_eventfd(int fd, int *dup, struct fdid *id)
{
	char path[40], link[32];
	ssize_t n;
	int d;

	if (fd < 0 || (d = ap_fd_dup(fd)) < 0)
		return fd >= 0 && errno == EMFILE ? EAGAIN : EBADF;
	snprintf(path, sizeof path, "/proc/self/fd/%d", d);
	n = readlink(path, link, sizeof link - 1);
	if (n >= 0) {   /* without /proc to ask, take the program's word */
		link[n] = '\0';
		if (strcmp(link, "anon_inode:[eventfd]") != 0) {
			ap_close(d);
			return EINVAL;
		}
	}
	if (!ap_fdid_take(d, id)) {
		ap_close(d);
		return EBADF;
	}
	*dup = d;
	return 0;
}

static bool bad_buf(const void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)buf;

	return len && (a >= USER_END || len > USER_END - a);
}

/* Validates and copies an iovec array: 0 or an errno value. */
static int copy_iov(const struct iocb *iocb, struct iovec **out)
{
	const struct iovec *iov = iocb->u.v.vec;
	unsigned long cnt = iocb->u.v.nr;
	size_t total = 0;
	struct iovec *copy;

	if (cnt > IOV_MAX_SEGS)
		return EINVAL;
	if (cnt && bad_ptr(iov, cnt * sizeof *iov))
		return EFAULT;
	if (!(copy = malloc((cnt ? cnt : 1) * sizeof *copy)))
		return EAGAIN;
	for (unsigned long i = 0; i < cnt; i++) {
		copy[i] = iov[i];
		if (copy[i].iov_len > SSIZE_MAX - total) {
			free(copy);
			return EINVAL;
		}
		total += copy[i].iov_len;
		if (bad_buf(copy[i].iov_base, copy[i].iov_len)) {
			free(copy);
			return EFAULT;
		}
	}
	*out = copy;
	return 0;
}

/* IO_CMD_POLL's code: served by the poller, never an engine operation. */
#define OP_POLL (-2)

/* The engine's operation for a libaio opcode, OP_POLL, or -1 (IO_CMD_NOOP
 * and unknown ones, which the kernel refuses with EINVAL). */
static int iocb_op(const struct iocb *iocb)
{
	switch (iocb->aio_lio_opcode) {
	case IO_CMD_PREAD:   return AP_OP_READ;
	case IO_CMD_PWRITE:  return AP_OP_WRITE;
	case IO_CMD_PREADV:  return AP_OP_READV;
	case IO_CMD_PWRITEV: return AP_OP_WRITEV;
	case IO_CMD_FSYNC:   return AP_OP_FSYNC;
	case IO_CMD_FDSYNC:  return AP_OP_FDSYNC;
	case IO_CMD_POLL:    return OP_POLL;
	default:             return -1;
	}
}

/* Checks a read or write iocb on an fd of status flags fl, in the kernel's
 * order; sets *prio from IOCB_IOPRIO and *iov to a copy of a vector (the
 * caller frees it).  0 or an errno value. */
static int check_rw(const struct iocb *iocb, int op, int fl, int *prio,
		struct iovec **iov)
{
	bool in = ap_op_reads(op);
	int err;

	if ((iocb->u.c.flags & IOCB_IOPRIO) &&
	    (err = ioprio_to_prio(iocb->aio_reqprio, prio)) != 0)
		return err;
	if (iocb->aio_rw_flags & ~RWF_KNOWN)
		return EOPNOTSUPP;
	if ((fl & O_ACCMODE) == (in ? O_WRONLY : O_RDONLY))
		return EBADF;
	if (iocb->u.c.offset < 0)
		return EINVAL;
	if (ap_op_vector(op))
		return copy_iov(iocb, iov);
	return bad_buf(iocb->u.c.buf, iocb->u.c.nbytes) ? EFAULT : 0;
}

/* Checks an FSYNC or FDSYNC iocb: no buffer, and a file there is something
 * to sync on.  0 or an errno value. */
static int check_sync(const struct iocb *iocb)
{
	struct stat st;

	if (iocb->u.c.buf || iocb->u.c.nbytes || iocb->u.c.offset ||
	    iocb->aio_rw_flags)
		return EINVAL;
	if (fstat(iocb->aio_fildes, &st) < 0)
		return EBADF;
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return EINVAL;   /* nothing to sync: fsync(2) says EINVAL */
	return 0;
}

/* Checks a POLL iocb: the events fill the 64-bit buf field's low 16 bits,
 * and nothing else is set.  0 or EINVAL. */
static int check_poll(const struct iocb *iocb)
{
	if (((uint64_t)(uintptr_t)iocb->u.c.buf & ~(uint64_t)0xffff) ||
	    iocb->u.c.nbytes || iocb->u.c.offset || iocb->aio_rw_flags)
		return EINVAL;
	return 0;
}

/* Fills r, freshly allocated, for iocb of operation op on ctx, with the
 * checks' results (fl, iov) and the eventfd duplicate resfd (-1: none). */
static void req_from_iocb(struct la_req *l, struct ap_ctx *ctx,
		struct iocb *iocb, int op, int fl, struct iovec *iov, int resfd,
		struct fdid resfd_id)
{
	struct ap_req *r = &l->r;
	bool rw = ap_op_reads(op) || ap_op_writes(op);

	if (op == OP_POLL) {
		l->poll = true;
		l->poll_events = (short)(iocb->u.poll.events | POLLERR | POLLHUP);
	} else {
		r->op = (unsigned char)op;
	}
	r->fd = iocb->aio_fildes;
	r->rw_flags = (int)iocb->aio_rw_flags;
	r->fl = fl;            /* the fast path needs no F_GETFL of its own */
	r->fl_known = true;
	if (iov) {
		r->buf = iov;
		r->nbytes = iocb->u.v.nr;
	} else if (rw) {
		r->buf = iocb->u.c.buf;
		r->nbytes = iocb->u.c.nbytes;
	}
	r->offset = rw ? (off_t)iocb->u.c.offset : 0;
	r->ops = &aio_ops;
	l->ctx = ctx;
	l->iocb = iocb;
	l->data = iocb->data;
	l->iov = iov;
	l->resfd = resfd;
	l->resfd_dev = resfd_id.dev;
	l->resfd_ino = resfd_id.ino;
	/* A queue depth: more than this request accepted and not yet reaped. */
	r->deep = ap_ctx_outstanding(ctx) > 1;
}

/* Queues one iocb of the io_submit call `call': 0 or an errno value (then
 * nothing was queued).  The checks run in the kernel's order, so that an
 * iocb wrong in two ways fails with the kernel's errno. */
static int submit_one(struct ap_ctx *ctx, struct iocb *iocb,
		struct ap_call *call)
{
	struct ap_req *r;
	struct la_req *l;
	struct iovec *iov = NULL;
	int op, fl, prio = 0, resfd = -1, err;
	struct fdid resfd_id = { 0, 0 };

	if (bad_ptr(iocb, sizeof *iocb))
		return EFAULT;
	if (iocb->u.c.__pad3 != 0 || (ssize_t)iocb->u.c.nbytes < 0)
		return EINVAL;
	if (!ap_ctx_reserve(ctx))
		return EAGAIN;

	err = EBADF;
	if ((fl = ap_call_getfl(call, iocb->aio_fildes)) < 0 || (fl & O_PATH))
		goto fail;
	if ((iocb->u.c.flags & IOCB_RESFD) &&
	    (err = dup_eventfd((int)iocb->u.c.resfd, &resfd, &resfd_id)) != 0)
		goto fail;
	iocb->key = 0;   /* as the kernel does */

	err = EINVAL;
	if ((op = iocb_op(iocb)) == -1)
		goto fail;
	if (op == OP_POLL)
		err = check_poll(iocb);
	else if (ap_op_reads(op) || ap_op_writes(op))
		err = check_rw(iocb, op, fl, &prio, &iov);
	else
		err = check_sync(iocb);
	if (err)
		goto fail;

	err = EAGAIN;
	if (!(r = ap_req_alloc(sizeof(struct la_req)))) {
		free(iov);
		goto fail;
	}
	l = la(r);
	req_from_iocb(l, ctx, iocb, op, fl, iov, resfd, resfd_id);
	ap_add(&ctx->refs, 1);   /* dropped by aio_notify */

	/* From here on l may complete, and be freed, at any moment. */
	err = op == OP_POLL ? ap_poll_submit(l) : ap_submit(r, prio, call);
	if (err) {
		free(iov);
		ap_req_free(r);
		ap_ctx_put(ctx);
		goto fail;
	}
	return 0;

fail:
	if (resfd >= 0)
		ap_close(resfd);
	ap_ctx_unreserve(ctx);
	return err;
}

static int la_submit(io_context_t handle, long nr, struct iocb *ios[])
{
	struct ap_ctx *ctx;
	struct ap_call call;   /* the inline budget of the whole call */
	long i = 0;
	int err = 0;

	if (nr < 0)
		return -EINVAL;
	if (!(ctx = ap_ctx_get(handle)))
		return -EINVAL;
	if (nr > 0 && bad_ptr(ios, sizeof *ios))
		err = EFAULT;
	ap_call_begin(&call, false);
	for (; !err && i < nr; i++) {
		if (ap_ctx_dead(ctx))
			err = EINVAL;   /* io_destroy has begun meanwhile */
		else
			err = submit_one(ctx, ios[i], &call);
		if (err)
			break;
	}
	ap_ctx_put(ctx);
	return i ? (int)i : -err;
}

/* ---- io_getevents, io_pgetevents, io_queue_wait ---------------------------- */

struct waitspec {
	bool nowait;              /* {0, 0} */
	bool forever;             /* NULL, or negative as the kernel reads it */
	struct timespec deadline; /* CLOCK_MONOTONIC */
};

static void waitspec_init(struct waitspec *w, const struct timespec *t)
{
	*w = (struct waitspec){ 0 };
	if (!t || t->tv_sec < 0 || t->tv_nsec < 0) {
		w->forever = true;    /* the kernel never returns either */
	} else if (t->tv_sec == 0 && t->tv_nsec == 0) {
		w->nowait = true;
	} else {   /* tv_nsec past a second counts, as the kernel's does */
		struct timespec rel = { t->tv_sec, t->tv_nsec % 1000000000L };
		long extra = t->tv_nsec / 1000000000L;
		rel.tv_sec = rel.tv_sec > (1L << 40) ? (1L << 40) : rel.tv_sec + extra;
		ap_deadline(&w->deadline, &rel);
	}
}

/* Time left until w's deadline, for ppoll; false if none is left. */
static bool waitspec_left(const struct waitspec *w, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = w->deadline.tv_sec - now.tv_sec;
	left->tv_nsec = w->deadline.tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_nsec += 1000000000L;
		left->tv_sec--;
	}
	return left->tv_sec >= 0 && (left->tv_sec > 0 || left->tv_nsec > 0);
}

/* Enough collected?  min_nr == 0 with a wait allowed waits for one event
 * while requests are in flight (see the top of the file).  `pushed' is the
 * count of events pushed, read before the reap that collected nothing: the
 * reap saw every one of them, so if every request accepted is among them,
 * nothing is in flight and nothing was missed.  A count read after the
 * reap could include an event pushed since, which the reap did not see
 * and nobody would return. */
static bool enough(struct ap_ctx *ctx, long got, long min_nr, long nr,
		const struct waitspec *w, uint64_t pushed)
{
	if (got < min_nr)
		return false;
	if (got == 0 && min_nr == 0 && nr > 0 && !w->nowait)
		return ap_load(&ctx->reserved) == pushed;
	return true;
}

/* io_pgetevents with a signal mask sleeps in ppoll, which swaps the mask
 * atomically with the sleep, as the kernel does: on the read end of a wake
 * pipe of its own (me->pipe), to which ap_ctx_wake writes.  A context keeps
 * the pipe of its last masked waiter for the next one (ctx->spare), so the
 * call needs no descriptor after the first.  Without one free, it sleeps
 * in ppoll on no descriptor for PGET_TICK_NS at a time and looks at the
 * ring in between: still atomic with the mask, never an error. */
#define PGET_TICK_NS 2000000L

/* A wake pipe for a masked waiter: the context's spare, or a new one. */
static void pwaiter_open(struct ap_ctx *ctx, struct pwaiter *me)
{
	ap_lock(&ctx->lock);
	me->pipe = ctx->spare;
	ctx->spare = WAKEPIPE_NONE;
	ap_unlock(&ctx->lock);
	if (me->pipe.rfd >= 0 && ap_wake_drain(&me->pipe))
		return;
	ap_wake_close(&me->pipe);
	ap_wake_open(&me->pipe);   /* else: ticks */
}

/* Unlinks me (under ctx->lock) and keeps its pipe as the spare. */
static void pwaiter_close(struct ap_ctx *ctx, struct pwaiter *me)
{
	ap_lock(&ctx->lock);
	ap_dlist_unlink(&ctx->pw, &me->link);
	__atomic_sub_fetch(&ctx->npw, 1, __ATOMIC_SEQ_CST);
	if (ctx->spare.rfd < 0 && !ap_ctx_dead(ctx)) {
		ctx->spare = me->pipe;
		me->pipe = WAKEPIPE_NONE;
	}
	ap_unlock(&ctx->lock);
	ap_wake_close(&me->pipe);
}

/* One sleep of a masked waiter: ppoll on its pipe (or a tick), the mask
 * swapped in.  EINTR; ETIMEDOUT if the wait's time was over before it;
 * else 0.  A pipe found broken (the program closed an end) is dropped,
 * under ctx->lock as ap_ctx_wake reads it: ticks from then. */
static int pwaiter_sleep(struct ap_ctx *ctx, struct pwaiter *me,
		const struct waitspec *w, const sigset_t *mask)
{
	struct pollfd p = { me->pipe.rfd, POLLIN, 0 };
	struct timespec left, *t = NULL;
	int rc, cancel;

	if (!w->forever) {
		if (!waitspec_left(w, &left))
			return ETIMEDOUT;
		t = &left;
	}
	if (p.fd >= 0 && !ap_wake_ours(&me->pipe, p.fd))
		p.fd = -1;
	if (p.fd < 0 && (!t || t->tv_sec > 0 || t->tv_nsec > PGET_TICK_NS)) {
		left = (struct timespec){ 0, PGET_TICK_NS };
		t = &left;
	}
	/* ppoll is a cancellation point and io_pgetevents is not: `me'
	 * lives on the caller's stack and must be unlinked. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	rc = ppoll(&p, 1, t, mask);
	pthread_setcancelstate(cancel, NULL);
	if (rc < 0 && errno == EINTR)
		return EINTR;
	if ((rc > 0 && !ap_wake_drain(&me->pipe)) ||
	    (me->pipe.rfd >= 0 && p.fd < 0)) {
		ap_lock(&ctx->lock);
		ap_wake_close(&me->pipe);
		ap_unlock(&ctx->lock);
	}
	return 0;
}

/* One sleep of a reaper, until an event may have come: on the context's
 * channel, or in ppoll with the signal mask swapped in when me is a
 * masked waiter.  EINTR, ETIMEDOUT (the wait's time is over), or 0. */
static int reaper_sleep(struct ap_ctx *ctx, struct pwaiter *me,
		uint32_t seen, const struct waitspec *w, const sigset_t *mask)
{
	if (me)
		return pwaiter_sleep(ctx, me, w, mask);
	return ap_chan_wait(&ctx->chan, seen, w->forever ? NULL : &w->deadline);
}

/* Collects events until enough() or the wait ends, sleeping as
 * reaper_sleep does: how many, or -EINVAL (context destroyed) or -EINTR
 * when it ends with none. */
static long reap_wait(struct ap_ctx *ctx, long min_nr, long nr,
		struct io_event *events, const struct waitspec *w,
		struct pwaiter *me, const sigset_t *mask)
{
	long got = 0;

	for (;;) {
		uint32_t seen = ap_chan_seq(&ctx->chan);
		uint64_t pushed = ap_load(&ctx->pushed);   /* see enough() */
		int err;

		got += ap_ring_reap(ctx, events + got, nr - got);
		if (enough(ctx, got, min_nr, nr, w, pushed))
			return got;
		if (ap_ctx_dead(ctx))
			return got ? got : -EINVAL;
		if (w->nowait)
			return got;
		err = reaper_sleep(ctx, me, seen, w, mask);
		if (err == EINTR)
			return got ? got : -EINTR;
		if (err == ETIMEDOUT && !w->forever)
			return got + ap_ring_reap(ctx, events + got, nr - got);
	}
}

/* The waiting part of io_pgetevents with a signal mask (see above). */
static long getevents_masked(struct ap_ctx *ctx, long min_nr, long nr,
		struct io_event *events, const struct waitspec *w,
		const sigset_t *mask)
{
	struct pwaiter me = { .pipe = WAKEPIPE_NONE };
	long got;

	pwaiter_open(ctx, &me);
	ap_lock(&ctx->lock);
	ap_dlist_push_back(&ctx->pw, &me.link);
	__atomic_add_fetch(&ctx->npw, 1, __ATOMIC_SEQ_CST);
	ap_unlock(&ctx->lock);
	got = reap_wait(ctx, min_nr, nr, events, w, &me, mask);
	pwaiter_close(ctx, &me);
	return got;
}

/* The checks every waiting call makes first, in the kernel's order: a
 * readable timeout, then a live context, taken into *ctx (ap_ctx_put it).
 * 0 or -errno. */
static int wait_begin(io_context_t handle, const struct timespec *timeout,
		struct ap_ctx **ctx)
{
	if (timeout && bad_ptr(timeout, sizeof *timeout))
		return -EFAULT;
	if (!(*ctx = ap_ctx_get(handle)))
		return -EINVAL;
	return 0;
}

static int getevents(io_context_t handle, long min_nr, long nr,
		struct io_event *events, const struct timespec *timeout,
		const sigset_t *mask)
{
	struct ap_ctx *ctx;
	struct waitspec w;
	long got = 0;
	int err;

	if ((err = wait_begin(handle, timeout, &ctx)) != 0)
		return err;
	if (min_nr < 0 || min_nr > nr) {
		got = -EINVAL;
		goto out;
	}
	if (nr > 0 && bad_ptr(events, sizeof *events)) {
		got = -EFAULT;
		goto out;
	}
	if (nr == 0)
		goto out;   /* nothing to collect (and events may be NULL) */
	if (nr > INT_MAX)
		nr = INT_MAX;   /* the count must fit the int returned */
	if (min_nr > nr)
		min_nr = nr;
	waitspec_init(&w, timeout);
	got = mask ? getevents_masked(ctx, min_nr, nr, events, &w, mask)
	           : reap_wait(ctx, min_nr, nr, events, &w, NULL, NULL);
out:
	ap_ctx_put(ctx);
	return (int)got;
}

static int la_getevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout)
{
	return getevents(ctx, min_nr, nr, events, timeout, NULL);
}

static int la_pgetevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout,
		sigset_t *sigmask)
{
	if (sigmask && bad_ptr(sigmask, sizeof(unsigned long)))
		return -EFAULT;
	return getevents(ctx, min_nr, nr, events, timeout, sigmask);
}

static int la_queue_wait(io_context_t handle, struct timespec *timeout)
{
	struct ap_ctx *ctx;
	struct waitspec w;
	int ret;

	if ((ret = wait_begin(handle, timeout, &ctx)) != 0)
		return ret;
	waitspec_init(&w, timeout);
	for (;;) {
		uint32_t seen = ap_chan_seq(&ctx->chan), head = ap_ring_head(ctx);
		uint64_t pushed = ap_load(&ctx->pushed);
		int err;

		/* One view: an event pushed between two reads of the count
		 * would be neither in the ring nor in flight. */
		if (ap_ring_used(ctx, head, pushed) ||
		    ap_load(&ctx->reserved) == pushed)
			break;
		if (ap_ctx_dead(ctx)) {
			ret = -EINVAL;
			break;
		}
		if (w.nowait)
			break;
		err = ap_chan_wait(&ctx->chan, seen, w.forever ? NULL : &w.deadline);
		if (err == EINTR) {
			ret = -EINTR;
			break;
		}
		if (err == ETIMEDOUT && !w.forever)
			break;
	}
	ap_ctx_put(ctx);
	return ret;
}

/* ---- io_cancel --------------------------------------------------------------- */

struct cancel_match {
	struct ap_ctx *ctx;
	struct iocb *iocb;
	void *data;
	bool found;
};

/* The first request of the iocb only: an iocb submitted again while in
 * flight is two requests, and io_cancel hands back one result. */
static bool match_iocb(const struct ap_req *r, void *arg)
{
	struct cancel_match *m = arg;

	if (m->found || r->ops != &aio_ops || la(r)->ctx != m->ctx ||
	    la(r)->iocb != m->iocb)
		return false;
	m->data = la(r)->data;
	m->found = true;
	return true;
}

static int la_cancel(io_context_t handle, struct iocb *iocb,
		struct io_event *result)
{
	struct cancel_match m = { .iocb = iocb };
	struct ap_cancel_result res;
	int ret;

	if (bad_ptr(iocb, sizeof *iocb))
		return -EFAULT;
	if (iocb->key != 0)
		return -EINVAL;
	if (!(m.ctx = ap_ctx_get(handle)))
		return -EINVAL;
	if (bad_ptr(result, sizeof *result)) {
		ret = -EFAULT;
		goto out;
	}
	if (ap_poll_cancel(m.ctx, iocb, &m.data) == 0) {
		res = ap_cancel(iocb->aio_fildes, match_iocb, &m, true);
		if (!res.cancelled && !res.running)   /* its fd was changed? */
			res = ap_cancel(-1, match_iocb, &m, true);
		if (!res.cancelled) {
			ret = res.running ? -EAGAIN : -EINVAL;
			goto out;
		}
	}
	*result = (struct io_event){
		.data = m.data,
		.obj = iocb,
		.res = (unsigned long)-(long)ECANCELED,
		.res2 = 0,
	};
	ret = 0;
out:
	ap_ctx_put(m.ctx);
	return ret;
}

/* ---- the io_queue_* library calls --------------------------------------------- */

static int la_queue_init(int maxevents, io_context_t *ctxp)
{
	if (maxevents <= 0)
		return -EINVAL;
	if (bad_ptr(ctxp, sizeof *ctxp))
		return -EFAULT;
	if (*ctxp)
		*ctxp = NULL;   /* a NULL stays unwritten: ctxp may be read-only */
	return la_setup(maxevents, ctxp);
}

static int la_queue_release(io_context_t ctx)
{
	return la_destroy(ctx);
}

/* ---- LIBAIO_0.1's older calls ------------------------------------------------- */

static int la_getevents_0_1(io_context_t ctx, long nr, struct io_event *events,
		const struct timespec *timeout)
{
	struct timespec t;

	if (timeout) {
		if (bad_ptr(timeout, sizeof *timeout))
			return -EFAULT;
		t = *timeout;
	}
	return getevents(ctx, 1, nr, events, timeout ? &t : NULL, NULL);
}

static int la_cancel_0_1(io_context_t ctx, struct iocb *iocb)
{
	struct io_event ev;

	return la_cancel(ctx, iocb, &ev);
}

/* ---- the system calls, for syscall(3) (sysaio.c) ---------------------------- */

bool ap_aio_ours(unsigned long id)
{
	struct ap_ctx *ctx = ap_ctx_get((io_context_t)id);

	if (ctx)
		ap_ctx_put(ctx);
	return ctx != NULL;
}

int ap_aio_setup(unsigned nr, unsigned long *ctxp)
{
	return la_setup((int)nr, (io_context_t *)ctxp);
}

int ap_aio_destroy(unsigned long id)
{
	return la_destroy((io_context_t)id);
}

int ap_aio_submit(unsigned long id, long nr, struct iocb **ios)
{
	return la_submit((io_context_t)id, nr, ios);
}

int ap_aio_cancel(unsigned long id, struct iocb *iocb, struct io_event *result)
{
	return la_cancel((io_context_t)id, iocb, result);
}

int ap_aio_getevents(unsigned long id, long min_nr, long nr,
		struct io_event *events, const struct timespec *timeout)
{
	return getevents((io_context_t)id, min_nr, nr, events, timeout, NULL);
}

/* The kernel's order: the timeout, the struct, its size, the mask. */
int ap_aio_pgetevents(unsigned long id, long min_nr, long nr,
		struct io_event *events, const struct timespec *timeout,
		const struct ap_aio_sigset *usig)
{
	struct ap_aio_sigset ks = { NULL, 0 };

	if (timeout && bad_ptr(timeout, sizeof *timeout))
		return -EFAULT;
	if (usig) {
		if (bad_ptr(usig, sizeof *usig))
			return -EFAULT;
		ks = *usig;
	}
	if (ks.sigmask && ks.sigsetsize != sizeof(unsigned long))
		return -EINVAL;   /* the kernel's sigset_t: 64 signals */
	if (ks.sigmask && bad_ptr(ks.sigmask, sizeof(unsigned long)))
		return -EFAULT;
	return getevents((io_context_t)id, min_nr, nr, events, timeout,
	                 ks.sigmask);
}

/* ---- the exported names -------------------------------------------------------- */

/* Each leaves errno as it found it: libaio returns -errno instead. */
#define KEEP_ERRNO(call) ({ int saved_ = errno; int ret_ = (call); \
                            errno = saved_; ret_; })

static int x_setup(int maxevents, io_context_t *ctxp)
{
	return KEEP_ERRNO(la_setup(maxevents, ctxp));
}

static int x_destroy(io_context_t ctx)
{
	return KEEP_ERRNO(la_destroy(ctx));
}

static int x_submit(io_context_t ctx, long nr, struct iocb *ios[])
{
	return KEEP_ERRNO(la_submit(ctx, nr, ios));
}

static int x_getevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout)
{
	return KEEP_ERRNO(la_getevents(ctx, min_nr, nr, events, timeout));
}

static int x_pgetevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout,
		sigset_t *sigmask)
{
	return KEEP_ERRNO(la_pgetevents(ctx, min_nr, nr, events, timeout, sigmask));
}

static int x_cancel(io_context_t ctx, struct iocb *iocb, struct io_event *evt)
{
	return KEEP_ERRNO(la_cancel(ctx, iocb, evt));
}

static int x_queue_init(int maxevents, io_context_t *ctxp)
{
	return KEEP_ERRNO(la_queue_init(maxevents, ctxp));
}

static int x_queue_release(io_context_t ctx)
{
	return KEEP_ERRNO(la_queue_release(ctx));
}

static int x_queue_wait(io_context_t ctx, struct timespec *timeout)
{
	return KEEP_ERRNO(la_queue_wait(ctx, timeout));
}

/* Reaps one event at a time without waiting and calls its callback
 * (iocb->data, set by io_set_callback; events without one are dropped).
 * errno is kept around our part only: the callbacks may set it. */
static int x_queue_run(io_context_t ctx)
{
	static const struct timespec zero = { 0, 0 };
	struct io_event ev;
	int ret;

	while ((ret = KEEP_ERRNO(getevents(ctx, 0, 1, &ev, &zero, NULL))) == 1) {
		io_callback_t cb = (io_callback_t)ev.data;
		if (cb)
			cb(ctx, ev.obj, (long)ev.res, (long)ev.res2);
	}
	return ret;
}

static int x_getevents_0_1(io_context_t ctx, long nr, struct io_event *events,
		const struct timespec *timeout)
{
	return KEEP_ERRNO(la_getevents_0_1(ctx, nr, events, timeout));
}

static int x_cancel_0_1(io_context_t ctx, struct iocb *iocb)
{
	return KEEP_ERRNO(la_cancel_0_1(ctx, iocb));
}

/* The exported names are aliases of the functions above, bound to
 * libaio.so.1's version nodes (src/libaiopool.map): name@@VER is the
 * default a program links against, name@VER an older variant that binaries
 * linked against libaio before 0.4 still ask for. */
#define EXPORT_AS(name, impl, ver) \
	AP_SYMVER(ap_export_##name, impl, #name "@@" ver)
#define EXPORT_OLD(name, impl, ver) \
	AP_SYMVER(ap_compat_##name, impl, #name "@" ver)

EXPORT_AS(io_queue_init, x_queue_init, "LIBAIO_0.1");
EXPORT_AS(io_queue_release, x_queue_release, "LIBAIO_0.1");
EXPORT_AS(io_queue_run, x_queue_run, "LIBAIO_0.1");
EXPORT_AS(io_submit, x_submit, "LIBAIO_0.1");
EXPORT_AS(io_setup, x_setup, "LIBAIO_0.4");
EXPORT_AS(io_destroy, x_destroy, "LIBAIO_0.4");
EXPORT_AS(io_getevents, x_getevents, "LIBAIO_0.4");
EXPORT_AS(io_cancel, x_cancel, "LIBAIO_0.4");
EXPORT_AS(io_queue_wait, x_queue_wait, "LIBAIO_0.4");
EXPORT_AS(io_pgetevents, x_pgetevents, "LIBAIO_0.5");
EXPORT_OLD(io_getevents, x_getevents_0_1, "LIBAIO_0.1");
EXPORT_OLD(io_cancel, x_cancel_0_1, "LIBAIO_0.1");
EXPORT_OLD(io_queue_wait, x_queue_wait, "LIBAIO_0.1");
