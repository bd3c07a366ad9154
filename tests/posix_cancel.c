/* posix_cancel: aio_cancel's errors and results (AIO_CANCELED,
 * AIO_NOTCANCELED, AIO_ALLDONE), with an aiocb and with NULL; a cancelled
 * request's result and notification; and that cancelling a queued request
 * never stalls the requests behind it (glibc's does). */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_cancel, .timeout = 60);

static int calls[16];

static void count_call(union sigval v)
{
	__atomic_add_fetch(&calls[v.sival_int], 1, __ATOMIC_RELEASE);
}

static int ncalls(int i)
{
	return __atomic_load_n(&calls[i], __ATOMIC_ACQUIRE);
}

static void rd(struct aiocb *cb, int fd, void *buf, size_t n)
{
	fill_cb(cb, fd, buf, n, 0);
	cr_assert_eq(aio_read(cb), 0, "aio_read: %s", strerror(errno));
}

static void rd_notify(struct aiocb *cb, int fd, void *buf, size_t n, int value)
{
	fill_cb(cb, fd, buf, n, 0);
	cb->aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb->aio_sigevent.sigev_notify_function = count_call;
	cb->aio_sigevent.sigev_value.sival_int = value;
	cr_assert_eq(aio_read(cb), 0, "aio_read: %s", strerror(errno));
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* ---- errors ---------------------------------------------------------------- */

Test(posix_cancel, bad_fd_gives_ebadf)
{
	struct aiocb cb;
	int fd = closed_fd();

	errno = 0;
	cr_assert_eq(aio_cancel(-1, NULL), -1);
	cr_assert_eq(errno, EBADF);
	errno = 0;
	cr_assert_eq(aio_cancel(fd, NULL), -1);
	cr_assert_eq(errno, EBADF);
	/* Checked first, as glibc does. */
	fill_cb(&cb, fd, NULL, 0, 0);
	errno = 0;
	cr_assert_eq(aio_cancel(fd, &cb), -1);
	cr_assert_eq(errno, EBADF);
}

Test(posix_cancel, aiocb_on_another_fd_gives_einval_and_is_left_alone)
{
	int p[2], q[2];
	char buf[4];
	struct aiocb cb;

	make_pipe(p);
	make_pipe(q);
	rd(&cb, p[0], buf, 4);
	errno = 0;
	cr_assert_eq(aio_cancel(q[0], &cb), -1);
	cr_assert_eq(errno, EINVAL);
	assert_in_progress(&cb);
	put(p[1], "abcd", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 4);
	close_pipe(p);
	close_pipe(q);
}

/* ---- one request ------------------------------------------------------------ */

Test(posix_cancel, queued_request_is_cancelled_and_notified)
{
	int p[2];
	char b1[4], b2[4];
	struct aiocb r1, r2;

	make_pipe(p);
	rd(&r1, p[0], b1, 4);
	rd_notify(&r2, p[0], b2, 4, 2);
	wait_stats(S.running == 1 && S.queued == 1, "r1 runs, r2 waits");

	cr_assert_eq(aio_cancel(p[0], &r2), AIO_CANCELED);
	cr_assert_eq(aio_error(&r2), ECANCELED);
	cr_assert_eq(aio_return(&r2), -1);
	wait_until(ncalls(2) == 1, "the cancelled request's notification");
	cr_assert_eq(stats_now().cancelled, 1);
	cr_assert_eq(aio_cancel(p[0], &r2), AIO_ALLDONE, "cancelled is done");

	assert_in_progress(&r1);
	put(p[1], "r1r1", 4);
	cr_assert_eq(wait_aio(&r1), 0);
	cr_assert_eq(aio_return(&r1), 4);
	cr_assert_arr_eq(b1, "r1r1", 4);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(ncalls(2), 1, "notified once");
	close_pipe(p);
}

Test(posix_cancel, running_request_is_not_cancelled_and_completes)
{
	int p[2];
	char buf[4];
	struct aiocb r;

	make_pipe(p);
	rd_notify(&r, p[0], buf, 4, 1);
	wait_stats(S.running == 1, "the read runs");
	cr_assert_eq(aio_cancel(p[0], &r), AIO_NOTCANCELED);
	assert_in_progress(&r);
	cr_assert_eq(stats_now().cancelled, 0);
	put(p[1], "full", 4);
	cr_assert_eq(wait_aio(&r), 0, "a running request is never interrupted");
	cr_assert_eq(aio_return(&r), 4);
	cr_assert_arr_eq(buf, "full", 4);
	wait_until(ncalls(1) == 1, "its normal notification");
	close_pipe(p);
}

Test(posix_cancel, finished_request_is_alldone)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb r, never;

	rd(&r, fd, buf, sizeof buf);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_cancel(fd, &r), AIO_ALLDONE);
	cr_assert_eq(aio_error(&r), 0, "the result stands");
	cr_assert_eq(aio_return(&r), (ssize_t)sizeof buf);
	cr_assert_eq(aio_cancel(fd, &r), AIO_ALLDONE, "also after aio_return");
	cr_assert_eq(aio_cancel(fd, NULL), AIO_ALLDONE, "nothing in flight on fd");
	fill_cb(&never, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_cancel(fd, &never), AIO_ALLDONE, "as glibc: a never submitted aiocb");
	close(fd);
}

/* ---- every request on an fd ------------------------------------------------- */

Test(posix_cancel, all_queued_on_one_fd_are_cancelled_and_others_kept)
{
	struct blocker b;
	int p[2], q[2];
	char bufs[6][4];
	struct aiocb pb[3], qb[3];

	one_busy_worker(&b);
	make_pipe(p);
	make_pipe(q);
	for (int i = 0; i < 3; i++) {
		rd_notify(&pb[i], p[0], bufs[i], 4, i);
		rd(&qb[i], q[0], bufs[3 + i], 4);
	}
	cr_assert_eq(aio_cancel(p[0], NULL), AIO_CANCELED);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(aio_error(&pb[i]), ECANCELED);
		cr_assert_eq(aio_return(&pb[i]), -1);
		assert_in_progress(&qb[i]);
	}
	for (int i = 0; i < 3; i++)
		wait_until(ncalls(i) == 1, "notification of cancelled request %d", i);
	cr_assert_eq(aio_cancel(p[0], NULL), AIO_ALLDONE, "nothing left on p");
	assert_in_progress(&b.cb);

	/* The other fd's requests run once the worker is free. */
	blocker_release(&b);
	put(q[1], "q0q0q1q1q2q2", 12);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(wait_aio(&qb[i]), 0);
		cr_assert_eq(aio_return(&qb[i]), 4);
	}
	/* And p takes new requests. */
	rd(&pb[0], p[0], bufs[0], 4);
	put(p[1], "next", 4);
	cr_assert_eq(wait_aio(&pb[0]), 0);
	cr_assert_arr_eq(bufs[0], "next", 4);
	close_pipe(p);
	close_pipe(q);
}

Test(posix_cancel, null_with_a_running_request_is_notcanceled)
{
	int p[2];
	char bufs[4][4];
	struct aiocb cbs[4];

	make_pipe(p);
	for (int i = 0; i < 4; i++)
		rd_notify(&cbs[i], p[0], bufs[i], 4, i);
	wait_stats(S.running == 1 && S.queued == 3, "one runs, three wait");
	cr_assert_eq(aio_cancel(p[0], NULL), AIO_NOTCANCELED);
	assert_in_progress(&cbs[0]);
	for (int i = 1; i < 4; i++)
		cr_assert_eq(aio_error(&cbs[i]), ECANCELED, "request %d", i);
	cr_assert_eq(stats_now().cancelled, 3);
	put(p[1], "runs", 4);
	cr_assert_eq(wait_aio(&cbs[0]), 0);
	cr_assert_arr_eq(bufs[0], "runs", 4);
	for (int i = 0; i < 4; i++)
		wait_until(ncalls(i) == 1, "notification %d", i);
	close_pipe(p);
}

/* ---- what cancelling must not break ------------------------------------------ */

/* glibc bug: with its one worker busy on pipe A, cancelling c2, the first
 * request queued on pipe B, leaves c3 behind it stuck for good. */
Test(posix_cancel, cancelling_a_queued_head_never_stalls_the_rest)
{
	struct blocker a;
	int p[2];
	char b2[4], b3[4], b4[4];
	struct aiocb c2, c3, c4;

	one_busy_worker(&a);
	make_pipe(p);
	rd(&c2, p[0], b2, 4);
	rd(&c3, p[0], b3, 4);
	cr_assert_eq(aio_cancel(p[0], &c2), AIO_CANCELED);
	cr_assert_eq(aio_error(&c2), ECANCELED);
	put(p[1], "c3c3", 4);
	blocker_release(&a);
	cr_assert_eq(wait_aio(&c3), 0, "c3 ran after c2 was cancelled");
	cr_assert_eq(aio_return(&c3), 4);
	cr_assert_arr_eq(b3, "c3c3", 4);
	/* Later requests on B run too. */
	rd(&c4, p[0], b4, 4);
	put(p[1], "c4c4", 4);
	cr_assert_eq(wait_aio(&c4), 0);
	cr_assert_arr_eq(b4, "c4c4", 4);
	close_pipe(p);
}

Test(posix_cancel, cancelling_a_queued_request_lets_the_next_start)
{
	int p[2];
	char bufs[3][4];
	struct aiocb r1, r2, r3;

	/* With workers to spare, r3 waits only for r2, which waits for r1. */
	make_pipe(p);
	rd(&r1, p[0], bufs[0], 4);
	rd(&r2, p[0], bufs[1], 4);
	rd(&r3, p[0], bufs[2], 4);
	wait_stats(S.running == 1 && S.queued == 2, "r1 runs");
	cr_assert_eq(aio_cancel(p[0], &r2), AIO_CANCELED);
	put(p[1], "r1r1r3r3", 8);
	cr_assert_eq(wait_aio(&r1), 0);
	cr_assert_eq(wait_aio(&r3), 0, "r3 ran though r2 before it was cancelled");
	cr_assert_arr_eq(bufs[0], "r1r1", 4);
	cr_assert_arr_eq(bufs[2], "r3r3", 4);
	close_pipe(p);
}

Test(posix_cancel, cancelling_a_waiting_fsync_frees_what_it_held)
{
	struct uffd u;
	int fd = temp_file(65536, 0);
	char buf[512];
	struct aiocb w, f, r;

	UFFD_OR_SKIP(&u, 1);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_RUNNABLE, 8), 0);
	/* w is held in its write; the fsync waits for it; r waits for the
	 * fsync. */
	fill_cb(&w, fd, uffd_page(&u, 0), 512, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(uffd_next_fault(&u), 0);
	fill_cb(&f, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0);
	rd(&r, fd, buf, sizeof buf);
	wait_stats(S.running == 1 && S.queued == 2, "fsync and read wait");
	cr_assert_eq(aio_cancel(fd, &f), AIO_CANCELED);
	cr_assert_eq(aio_error(&f), ECANCELED);
	/* The read no longer waits for anything: it runs beside w. */
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_return(&r), 512);
	assert_in_progress(&w);
	uffd_release(&u, 0, 'w');
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(aio_return(&w), 512);
	close(fd);
}
