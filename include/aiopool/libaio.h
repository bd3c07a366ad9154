/* libaio.h: aiopool's libaio-compatible interface.  Installed as
 * <aiopool/libaio.h>; with `pkg-config --cflags aiopool` a program's
 * #include <libaio.h> finds it, and the program links against aiopool
 * (`pkg-config --libs aiopool`) instead of libaio.so.1.
 *
 * The types have the layouts of libaio's, which are the kernel's
 * <linux/aio_abi.h> ones, on 64-bit little-endian targets (x86_64):
 * struct iocb is 64 bytes, struct io_event 32, and io_context_t points to a
 * ring laid out as the kernel's struct aio_ring.  The functions return a
 * negative errno value on failure and leave errno alone, as libaio's do.
 *
 * Where aiopool differs from kernel AIO (see also aiopool(7)):
 *  - io_getevents(ctx, 0, nr, ev, timeout) with a non-zero or NULL timeout
 *    waits for one event while requests are in flight (kernel AIO does not
 *    wait, but completes buffered I/O inside io_submit).
 *  - io_cancel cancels a request still queued: its event (res -ECANCELED)
 *    is written to *result, 0 is returned and no event is queued for it.
 *    A running request gives -EAGAIN, an unknown or finished one -EINVAL.
 *  - io_queue_wait waits until an event is ready, nothing is in flight or
 *    the timeout passes, and returns 0.
 *  - A context made for nr events accepts nr requests in flight or
 *    unreaped; more gives -EAGAIN.
 *  - With IOCB_FLAG_IOPRIO the I/O priority orders requests within this
 *    process: RT level L before BE level L before IDLE (no privilege is
 *    needed for RT).
 *  - Invalid, destroyed or foreign contexts give -EINVAL, never a crash.
 */
#ifndef __LIBAIO_H
#define __LIBAIO_H
#define AIOPOOL_LIBAIO_H 1

#include <signal.h>
#include <string.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if !defined(__LP64__) || !defined(__BYTE_ORDER__) || \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "aiopool's libaio.h has the layouts of 64-bit little-endian targets only"
#endif

struct timespec;
struct sockaddr;
struct iovec;

/* The handle: the address of the context's completion ring. */
typedef struct io_context *io_context_t;

typedef enum io_iocb_cmd {
	IO_CMD_PREAD = 0,
	IO_CMD_PWRITE = 1,
	IO_CMD_FSYNC = 2,
	IO_CMD_FDSYNC = 3,
	/* 4 was the kernel's experimental PREADX; never accepted */
	IO_CMD_POLL = 5,
	IO_CMD_NOOP = 6,      /* rejected with -EINVAL, as by the kernel */
	IO_CMD_PREADV = 7,
	IO_CMD_PWRITEV = 8,
} io_iocb_cmd_t;

/* The union members of struct iocb (at offset 24). */
struct io_iocb_poll {
	int events;           /* POLL* bits; the 64-bit buf field */
	unsigned __pad1;
};

struct io_iocb_sockaddr {
	struct sockaddr *addr;
	unsigned long len;
};

struct io_iocb_common {
	void *buf;            /* 24 */
	unsigned long nbytes; /* 32 */
	long long offset;     /* 40 */
	long long __pad3;     /* 48: reserved, must be 0 */
	unsigned flags;       /* 56: IOCB_FLAG_RESFD (1 << 0), IOCB_FLAG_IOPRIO (1 << 1) */
	unsigned resfd;       /* 60: the eventfd with IOCB_FLAG_RESFD */
};

struct io_iocb_vector {
	const struct iovec *vec;
	unsigned long nr;     /* iovec count */
	long long offset;
};

struct iocb {
	void *data;           /*  0: returned in the event (io_set_callback) */
	unsigned key;         /*  8: set to 0 by io_submit */
	unsigned aio_rw_flags;/* 12: RWF_* flags for preadv2/pwritev2 */
	short aio_lio_opcode; /* 16: IO_CMD_* */
	short aio_reqprio;    /* 18: I/O priority, with IOCB_FLAG_IOPRIO */
	int aio_fildes;       /* 20 */
	union {
		struct io_iocb_common c;
		struct io_iocb_vector v;
		struct io_iocb_poll poll;
		struct io_iocb_sockaddr saddr;
	} u;                  /* 24 */
};

struct io_event {
	void *data;           /* the iocb's data */
	struct iocb *obj;     /* the iocb as submitted */
	unsigned long res;    /* bytes, poll mask, or a negative errno */
	unsigned long res2;   /* 0 */
};

/* The signal set argument of the io_pgetevents system call. */
struct io_sigset {
	unsigned long ss;
	unsigned long ss_len;
};

struct io_sigset_compat {
	unsigned long ss;
	unsigned long ss_len;
};

typedef void (*io_callback_t)(io_context_t ctx, struct iocb *iocb, long res,
		long res2);

/* Library calls. */
extern int io_queue_init(int maxevents, io_context_t *ctxp);
extern int io_queue_release(io_context_t ctx);
extern int io_queue_run(io_context_t ctx);
/* io_queue_wait is exported but, as in libaio, not declared:
 * int io_queue_wait(io_context_t ctx, struct timespec *timeout); */

/* The calls that are system calls in libaio. */
extern int io_setup(int maxevents, io_context_t *ctxp);
extern int io_destroy(io_context_t ctx);
extern int io_submit(io_context_t ctx, long nr, struct iocb *ios[]);
extern int io_cancel(io_context_t ctx, struct iocb *iocb, struct io_event *evt);
extern int io_getevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout);
extern int io_pgetevents(io_context_t ctx, long min_nr, long nr,
		struct io_event *events, struct timespec *timeout,
		sigset_t *sigmask);

/* Helpers.  Every io_prep_* clears the whole iocb first, so call
 * io_set_callback and io_set_eventfd after it. */
static inline void io_set_callback(struct iocb *iocb, io_callback_t cb)
{
	iocb->data = (void *)cb;
}

static inline void io_aiopool_prep_rw(struct iocb *iocb, int fd, int op,
		void *buf, unsigned long n, long long offset)
{
	memset(iocb, 0, sizeof *iocb);
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = (short)op;
	iocb->aio_reqprio = 0;
	iocb->u.c.buf = buf;
	iocb->u.c.nbytes = n;
	iocb->u.c.offset = offset;
}

static inline void io_prep_pread(struct iocb *iocb, int fd, void *buf,
		size_t count, long long offset)
{
	io_aiopool_prep_rw(iocb, fd, IO_CMD_PREAD, buf, count, offset);
}

static inline void io_prep_pwrite(struct iocb *iocb, int fd, void *buf,
		size_t count, long long offset)
{
	io_aiopool_prep_rw(iocb, fd, IO_CMD_PWRITE, buf, count, offset);
}

static inline void io_prep_preadv(struct iocb *iocb, int fd,
		const struct iovec *iov, int iovcnt, long long offset)
{
	io_aiopool_prep_rw(iocb, fd, IO_CMD_PREADV, (void *)iov,
	                   (unsigned long)iovcnt, offset);
}

static inline void io_prep_pwritev(struct iocb *iocb, int fd,
		const struct iovec *iov, int iovcnt, long long offset)
{
	io_aiopool_prep_rw(iocb, fd, IO_CMD_PWRITEV, (void *)iov,
	                   (unsigned long)iovcnt, offset);
}

static inline void io_prep_preadv2(struct iocb *iocb, int fd,
		const struct iovec *iov, int iovcnt, long long offset, int flags)
{
	io_prep_preadv(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = (unsigned)flags;
}

static inline void io_prep_pwritev2(struct iocb *iocb, int fd,
		const struct iovec *iov, int iovcnt, long long offset, int flags)
{
	io_prep_pwritev(iocb, fd, iov, iovcnt, offset);
	iocb->aio_rw_flags = (unsigned)flags;
}

static inline void io_prep_poll(struct iocb *iocb, int fd, int events)
{
	memset(iocb, 0, sizeof *iocb);
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = IO_CMD_POLL;
	iocb->aio_reqprio = 0;
	iocb->u.poll.events = events;
}

static inline int io_poll(io_context_t ctx, struct iocb *iocb,
		io_callback_t cb, int fd, int events)
{
	io_prep_poll(iocb, fd, events);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline void io_prep_fsync(struct iocb *iocb, int fd)
{
	memset(iocb, 0, sizeof *iocb);
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = IO_CMD_FSYNC;
	iocb->aio_reqprio = 0;
}

static inline int io_fsync(io_context_t ctx, struct iocb *iocb,
		io_callback_t cb, int fd)
{
	io_prep_fsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline void io_prep_fdsync(struct iocb *iocb, int fd)
{
	memset(iocb, 0, sizeof *iocb);
	iocb->aio_fildes = fd;
	iocb->aio_lio_opcode = IO_CMD_FDSYNC;
	iocb->aio_reqprio = 0;
}

static inline int io_fdsync(io_context_t ctx, struct iocb *iocb,
		io_callback_t cb, int fd)
{
	io_prep_fdsync(iocb, fd);
	io_set_callback(iocb, cb);
	return io_submit(ctx, 1, &iocb);
}

static inline void io_set_eventfd(struct iocb *iocb, int eventfd)
{
	iocb->u.c.flags |= 1u << 0;   /* IOCB_FLAG_RESFD */
	iocb->u.c.resfd = (unsigned)eventfd;
}

#ifdef __cplusplus
}
#endif

#endif /* __LIBAIO_H */
