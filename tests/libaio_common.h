/* libaio_common.h: helpers shared by the libaio front end's suites.  Every
 * wait has a deadline (DEADLINE_MS) and fails the test instead of hanging. */
#ifndef AIOPOOL_TEST_LIBAIO_COMMON_H
#define AIOPOOL_TEST_LIBAIO_COMMON_H

#include "common.h"

#include <libaio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>

/* Exported by libaio and aiopool; <libaio.h> leaves it undeclared. */
extern int io_queue_wait(io_context_t ctx, struct timespec *timeout);

#ifndef IOCB_FLAG_RESFD
#define IOCB_FLAG_RESFD (1 << 0)
#endif
#ifndef IOCB_FLAG_IOPRIO
#define IOCB_FLAG_IOPRIO (1 << 1)
#endif
#define IOPRIO(cls, level) ((short)(((cls) << 13) | (level)))
enum { IOPRIO_RT = 1, IOPRIO_BE = 2, IOPRIO_IDLE = 3 };

/* The kernel's ring header, as the context handle points to it. */
struct test_ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features,
	         header_length;
	struct io_event events[];
};

static inline struct test_ring *ring_of(io_context_t ctx)
{
	return (struct test_ring *)ctx;
}

static inline io_context_t new_ctx(int nr)
{
	io_context_t ctx = 0;
	int rc = io_setup(nr, &ctx);
	cr_assert_eq(rc, 0, "io_setup(%d): %d", nr, rc);
	cr_assert_not_null(ctx);
	return ctx;
}

/* Collects exactly n events into ev, waiting at most DEADLINE_MS. */
static inline void get_events(io_context_t ctx, struct io_event *ev, int n)
{
	long long end = now_ms() + DEADLINE_MS;
	int got = 0;

	while (got < n) {
		struct timespec t = { 0, 50 * 1000000L };
		int rc = io_getevents(ctx, 1, n - got, ev + got, &t);
		cr_assert_geq(rc, 0, "io_getevents: %d", rc);
		got += rc;
		if (got < n && now_ms() > end)
			cr_assert_fail("timed out: %d of %d events", got, n);
	}
}

static inline struct io_event get_one(io_context_t ctx)
{
	struct io_event ev;
	get_events(ctx, &ev, 1);
	return ev;
}

static inline int submit1(io_context_t ctx, struct iocb *cb)
{
	return io_submit(ctx, 1, &cb);
}

/* Leaves the engine one worker and keeps it busy reading an empty pipe
 * (a POSIX read, so the libaio context under test stays empty): whatever
 * is submitted next stays queued until unblock_worker().  p gets the pipe;
 * cb must live until the read completes. */
static inline void block_worker(int p[2], struct aiocb *cb, char *buf)
{
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	cr_assert_eq(pipe(p), 0);
	fill_cb(cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(cb), 0);
	wait_until(stats_now().running == 1, "the blocking read never started");
}

static inline void unblock_worker(int p[2], struct aiocb *cb)
{
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(wait_aio(cb), 0);
	cr_assert_eq(aio_return(cb), 1);
}

/* Waits for fd to become readable (an eventfd, a pipe). */
static inline void wait_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	cr_assert_eq(poll(&p, 1, DEADLINE_MS), 1, "fd %d never became readable", fd);
}

#endif
