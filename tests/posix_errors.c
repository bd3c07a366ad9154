/* posix_errors: every error the POSIX front end reports, when it reports
 * it (at once or through aio_error), and that a failed call disturbs
 * nothing else; the errors of aiopool_set, aiopool_get and aiopool_stats. */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_errors, .timeout = 60);

/* NULL where <aio.h> declares the argument nonnull: called through
 * pointers, as a program finding the functions with dlsym would, so that
 * neither the compiler nor UBSan assumes the argument is not NULL. */
static struct aiocb *volatile null_cb;
static const struct aiocb *const *volatile null_list;
static struct aiocb *const *volatile null_lio_list;
static int (*volatile read_fn)(struct aiocb *) = aio_read;
static int (*volatile write_fn)(struct aiocb *) = aio_write;
static int (*volatile fsync_fn)(int, struct aiocb *) = aio_fsync;
static int (*volatile error_fn)(const struct aiocb *) = aio_error;
static ssize_t (*volatile return_fn)(struct aiocb *) = aio_return;
static int (*volatile suspend_fn)(const struct aiocb *const[], int,
		const struct timespec *) = aio_suspend;
static int (*volatile lio_fn)(int, struct aiocb *const[], int, struct sigevent *) = lio_listio;
static void (*volatile init_fn)(const struct aioinit *) = aio_init;
static const struct aioinit *volatile null_init;

static int submit_read(struct aiocb *cb)
{
	return aio_read(cb);
}

static int submit_write(struct aiocb *cb)
{
	return aio_write(cb);
}

static int (*const submitters[])(struct aiocb *) = { submit_read, submit_write };
static const char *const names[] = { "aio_read", "aio_write" };

/* ---- aio_reqprio --------------------------------------------------------- */

Test(posix_errors, reqprio_out_of_range_fails_at_once)
{
	static const int bad[] = { -1, AIO_PRIO_DELTA_MAX + 1, 1000, -1000 };
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			fill_cb(&cb, fd, buf, sizeof buf, 0);
			cb.aio_reqprio = bad[i];
			errno = 0;
			cr_assert_eq(submitters[s](&cb), -1, "%s reqprio %d", names[s], bad[i]);
			cr_assert_eq(errno, EINVAL);
			cr_assert_eq(aio_error(&cb), EINVAL, "aio_error reports it too");
			cr_assert_eq(aio_return(&cb), -1);
		}
	cr_assert_eq(stats_now().submitted, 0, "nothing was queued");
	close(fd);
}

Test(posix_errors, reqprio_bounds_are_accepted)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	for (int prio = 0; prio <= AIO_PRIO_DELTA_MAX; prio += AIO_PRIO_DELTA_MAX) {
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		cb.aio_reqprio = prio;
		cr_assert_eq(aio_read(&cb), 0, "reqprio %d: %s", prio, strerror(errno));
		cr_assert_eq(wait_aio(&cb), 0);
		cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	}
	close(fd);
}

Test(posix_errors, fsync_ignores_reqprio)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;

	fill_cb(&cb, fd, NULL, 0, 0);
	cb.aio_reqprio = 1000;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), 0, "aio_fsync: %s", strerror(errno));
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 0);
	close(fd);
}

/* ---- bad fds, offsets, ops ----------------------------------------------- */

Test(posix_errors, bad_fd_is_accepted_then_reported_as_ebadf)
{
	int fds[] = { -1, closed_fd(), 1 << 20 };
	char buf[16] = "data";
	struct aiocb cb;

	for (int s = 0; s < 2; s++)
		for (int i = 0; i < 3; i++) {
			fill_cb(&cb, fds[i], buf, sizeof buf, 0);
			cr_assert_eq(submitters[s](&cb), 0, "%s on fd %d is accepted: %s",
			             names[s], fds[i], strerror(errno));
			cr_assert_eq(wait_aio(&cb), EBADF, "%s on fd %d", names[s], fds[i]);
			cr_assert_eq(aio_return(&cb), -1);
		}
}

Test(posix_errors, fsync_bad_fd_fails_at_once)
{
	struct aiocb cb;

	fill_cb(&cb, closed_fd(), NULL, 0, 0);
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EBADF);
	fill_cb(&cb, -1, NULL, 0, 0);
	errno = 0;
	cr_assert_eq(aio_fsync(O_DSYNC, &cb), -1);
	cr_assert_eq(errno, EBADF);
	cr_assert_eq(stats_now().submitted, 0);
}

Test(posix_errors, fsync_bad_op_fails_with_einval)
{
	static const int bad[] = { 0, O_RDWR, O_APPEND, O_SYNC | O_APPEND, -1 };
	int fd = temp_file(16, 0);
	struct aiocb cb;

	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fill_cb(&cb, fd, NULL, 0, 0);
		errno = 0;
		cr_assert_eq(aio_fsync(bad[i], &cb), -1, "op %#x", bad[i]);
		cr_assert_eq(errno, EINVAL, "op %#x", bad[i]);
	}
	/* As glibc: the op is checked before the fd. */
	fill_cb(&cb, -1, NULL, 0, 0);
	errno = 0;
	cr_assert_eq(aio_fsync(0, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(stats_now().submitted, 0);
	close(fd);
}

Test(posix_errors, negative_offset_is_reported_as_einval)
{
	int fd = temp_file(4096, 0);
	char buf[16] = "data";
	struct aiocb cb;

	for (int s = 0; s < 2; s++) {
		fill_cb(&cb, fd, buf, sizeof buf, -1);
		cr_assert_eq(submitters[s](&cb), 0, "%s: %s", names[s], strerror(errno));
		cr_assert_eq(wait_aio(&cb), EINVAL, "%s at offset -1", names[s]);
		cr_assert_eq(aio_return(&cb), -1);
	}
	close(fd);
}

/* ---- sigevents ----------------------------------------------------------- */

Test(posix_errors, unknown_sigev_notify_fails_with_einval)
{
	static const int bad[] = { 777, -1, 3 /* between SIGEV_THREAD and _ID */ };
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	for (int s = 0; s < 2; s++)
		for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			if (bad[i] == SIGEV_NONE || bad[i] == SIGEV_SIGNAL ||
			    bad[i] == SIGEV_THREAD || bad[i] == SIGEV_THREAD_ID)
				continue;
			fill_cb(&cb, fd, buf, sizeof buf, 0);
			cb.aio_sigevent.sigev_notify = bad[i];
			errno = 0;
			cr_assert_eq(submitters[s](&cb), -1, "%s sigev_notify %d", names[s], bad[i]);
			cr_assert_eq(errno, EINVAL);
			cr_assert_eq(aio_error(&cb), EINVAL);
		}
	cr_assert_eq(stats_now().submitted, 0);
	close(fd);
}

Test(posix_errors, invalid_sigevent_fields_fail_with_einval)
{
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	/* A signal number no signal has. */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb.aio_sigevent.sigev_signo = 999;
	errno = 0;
	cr_assert_eq(aio_read(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	/* SIGEV_THREAD without a function. */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = NULL;
	errno = 0;
	cr_assert_eq(aio_read(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(stats_now().submitted, 0);
	close(fd);
}

/* ---- aio_error and aio_return -------------------------------------------- */

Test(posix_errors, aio_error_on_never_submitted_aiocb_is_einval)
{
	struct aiocb cb, copy;
	int fd = temp_file(4096, 0);
	char buf[16];

	memset(&cb, 0, sizeof cb);
	cr_assert_eq(aio_error(&cb), EINVAL, "a zeroed aiocb");
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);

	/* A copy of a submitted aiocb was never submitted itself. */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	memcpy(&copy, &cb, sizeof cb);
	cr_assert_eq(aio_error(&copy), EINVAL, "a copy of a submitted aiocb");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	close(fd);
}

Test(posix_errors, second_aio_return_fails_and_aio_error_still_reports)
{
	int fd = temp_file(4096, 0);
	char buf[100];
	struct aiocb ok, bad;

	fill_cb(&ok, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&ok), 0);
	cr_assert_eq(wait_aio(&ok), 0);
	cr_assert_eq(aio_return(&ok), 100);
	errno = 0;
	cr_assert_eq(aio_return(&ok), -1, "a second aio_return");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&ok), 0, "aio_error still reports the request's error");

	fill_cb(&bad, -1, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&bad), 0);
	cr_assert_eq(wait_aio(&bad), EBADF);
	cr_assert_eq(aio_return(&bad), -1);
	errno = 0;
	cr_assert_eq(aio_return(&bad), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&bad), EBADF);

	/* Submitting the aiocb again makes a new request with its own result. */
	fill_cb(&ok, fd, buf, 50, 0);
	cr_assert_eq(aio_read(&ok), 0);
	cr_assert_eq(wait_aio(&ok), 0);
	cr_assert_eq(aio_return(&ok), 50);
	close(fd);
}

Test(posix_errors, aio_return_in_progress_does_not_take_the_result)
{
	int p[2];
	char buf[4];
	struct aiocb cb;

	make_pipe(p);
	fill_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_return(&cb), -1, "no result yet");
	put(p[1], "abcd", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 4, "the early aio_return did not use it up");
	close(p[0]);
	close(p[1]);
}

/* ---- NULL pointers ------------------------------------------------------- */

Test(posix_errors, null_pointers_give_einval)
{
	struct timespec ts = { 0, 1000 };

	errno = 0;
	cr_assert_eq(read_fn(null_cb), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(write_fn(null_cb), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(fsync_fn(O_SYNC, null_cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(error_fn(null_cb), EINVAL);
	errno = 0;
	cr_assert_eq(return_fn(null_cb), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(suspend_fn(null_list, 1, &ts), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(lio_fn(LIO_WAIT, null_lio_list, 1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(lio_fn(LIO_NOWAIT, null_lio_list, 1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	init_fn(null_init);   /* nothing to report: it must just not crash */
	cr_assert_eq(stats_now().submitted, 0);
}

/* ---- resubmitting an aiocb in flight -------------------------------------- */

Test(posix_errors, resubmitting_an_aiocb_in_flight_fails_and_leaves_it_alone)
{
	int p[2];
	char buf[4];
	struct aiocb cb, *list[] = { &cb };

	make_pipe(p);
	fill_cb(&cb, p[0], buf, sizeof buf, 0);
	signal(SIGPIPE, SIG_IGN);   /* a failure is an assertion, not a crash */
	cr_assert_eq(aio_read(&cb), 0);
	/* Inside read(): the close below must find the file held by the call,
	 * not cancel a request that has yet to make it. */
	wait_thread_in_read(p[0]);
	for (int s = 0; s < 2; s++) {
		errno = 0;
		cr_assert_eq(submitters[s](&cb), -1, "%s again", names[s]);
		cr_assert_eq(errno, EINVAL);
	}
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	cb.aio_lio_opcode = LIO_READ;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, NULL), -1);
	assert_in_progress(&cb);
	cb.aio_lio_opcode = 99;   /* not even an unknown opcode is stored */
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, NULL), -1);
	assert_in_progress(&cb);
	/* Nor a bad fd: the running read keeps the pipe open after close. */
	cr_assert_eq(close(p[0]), 0);
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	assert_in_progress(&cb);
	cr_assert_eq(stats_now().submitted, 1, "only the first submission counts");

	put(p[1], "wxyz", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 4);
	cr_assert_arr_eq(buf, "wxyz", 4);
	close(p[1]);
}

/* ---- the queue bound ------------------------------------------------------ */

Test(posix_errors, queue_bound_gives_eagain_and_disturbs_nothing)
{
	enum { N = 4 };
	int p[2], fd = temp_file(4096, 0);
	char bufs[N][4], extra[16];
	struct aiocb cbs[N], over, over_file, *list[] = { &over_file };
	struct aiopool_stats st;

	/* The bound is on queued requests: a cached read done inline by the
	 * fast path takes no place in the queue. */
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);

	make_pipe(p);
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_QUEUED, N), 0);
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], p[0], bufs[i], 4, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0, "request %d: %s", i, strerror(errno));
	}
	wait_stats(S.running == 1 && S.queued == N - 1, "one runs, the rest wait");

	/* Past the bound, on the same fd and on another: EAGAIN. */
	fill_cb(&over, p[0], extra, 4, 0);
	errno = 0;
	cr_assert_eq(aio_read(&over), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(aio_error(&over), EAGAIN);
	fill_cb(&over_file, fd, extra, sizeof extra, 0);
	errno = 0;
	cr_assert_eq(aio_read(&over_file), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(aio_error(&over_file), EAGAIN);
	over_file.aio_lio_opcode = LIO_READ;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, NULL), -1);
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(aio_error(&over_file), EAGAIN);

	/* Nothing else moved. */
	st = stats_now();
	cr_assert_eq(st.submitted, N);
	cr_assert_eq(st.queued, N - 1);
	cr_assert_eq(st.running, 1);
	for (int i = 0; i < N; i++)
		assert_in_progress(&cbs[i]);
	for (int i = 0; i < N; i++) {
		char rec[4] = { 'q', 'b', '0', (char)('0' + i) };
		put(p[1], rec, 4);
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), 4);
		cr_assert_arr_eq(bufs[i], rec, 4);
	}

	/* Below the bound again, the refused aiocbs can be submitted. */
	cr_assert_eq(aio_read(&over_file), 0, "%s", strerror(errno));
	cr_assert_eq(wait_aio(&over_file), 0);
	cr_assert_eq(aio_return(&over_file), (ssize_t)sizeof extra);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* ---- aiopool_set, aiopool_get, aiopool_stats ----------------------------- */

Test(posix_errors, aiopool_set_rejects_unknown_knobs_and_bad_values)
{
	static const struct { int knob; long value; } bad[] = {
		{ 0, 1 }, { 99, 1 }, { -1, 1 },
		{ AIOPOOL_MAX_THREADS, 0 }, { AIOPOOL_MAX_THREADS, 1025 },
		{ AIOPOOL_MAX_THREADS, -5 },
		{ AIOPOOL_IDLE_MS, -2 },
		{ AIOPOOL_MAX_QUEUED, 0 }, { AIOPOOL_MAX_QUEUED, -1 },
		{ AIOPOOL_FD_CONCURRENCY, 0 }, { AIOPOOL_FD_CONCURRENCY, 1025 },
		{ AIOPOOL_CACHE, -1 },
		{ AIOPOOL_FASTPATH, 2 }, { AIOPOOL_FASTPATH, -1 },
		{ AIOPOOL_RUNNABLE, 0 }, { AIOPOOL_RUNNABLE, 1025 },
	};
	long before[8];

	for (int k = 1; k <= 7; k++)
		before[k] = aiopool_get(k);
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aiopool_set(bad[i].knob, bad[i].value), -1,
		             "knob %d value %ld", bad[i].knob, bad[i].value);
		cr_assert_eq(errno, EINVAL);
	}
	for (int k = 1; k <= 7; k++)
		cr_assert_eq(aiopool_get(k), before[k], "knob %d changed", k);
}

Test(posix_errors, aiopool_set_then_get_round_trips)
{
	static const struct { int knob; long value; } good[] = {
		{ AIOPOOL_MAX_THREADS, 1 }, { AIOPOOL_MAX_THREADS, 1024 },
		{ AIOPOOL_IDLE_MS, -1 }, { AIOPOOL_IDLE_MS, 0 }, { AIOPOOL_IDLE_MS, 12345 },
		{ AIOPOOL_MAX_QUEUED, 1 }, { AIOPOOL_MAX_QUEUED, 99999 },
		{ AIOPOOL_FD_CONCURRENCY, 1 }, { AIOPOOL_FD_CONCURRENCY, 1024 },
		{ AIOPOOL_CACHE, 0 }, { AIOPOOL_CACHE, 500 },
		{ AIOPOOL_FASTPATH, 0 }, { AIOPOOL_FASTPATH, 1 },
		{ AIOPOOL_RUNNABLE, 1 }, { AIOPOOL_RUNNABLE, 1024 },
	};

	for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
		cr_assert_eq(aiopool_set(good[i].knob, good[i].value), 0,
		             "knob %d value %ld: %s", good[i].knob, good[i].value, strerror(errno));
		cr_assert_eq(aiopool_get(good[i].knob), good[i].value);
	}
}

Test(posix_errors, aiopool_get_rejects_unknown_knobs)
{
	static const int bad[] = { 0, -1, 99, 1 << 20 };

	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aiopool_get(bad[i]), -1, "knob %d", bad[i]);
		cr_assert_eq(errno, EINVAL);
	}
}

Test(posix_errors, aiopool_stats_checks_its_arguments)
{
	struct aiopool_stats st;
	unsigned char big[sizeof st + 64];
	size_t min = offsetof(struct aiopool_stats, reserved);

	errno = 0;
	cr_assert_eq(aiopool_stats(NULL, sizeof st), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aiopool_stats(&st, 0), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aiopool_stats(&st, min - 1), -1, "too small for the fields");
	cr_assert_eq(errno, EINVAL);
	/* Callers built against an older, shorter struct: what they know. */
	cr_assert_eq(aiopool_stats(&st, min), 0);
	/* Callers built against a newer, longer one: nothing past ours. */
	memset(big, 0xa5, sizeof big);
	cr_assert_eq(aiopool_stats((struct aiopool_stats *)big, sizeof big), 0);
	for (size_t i = sizeof st; i < sizeof big; i++)
		cr_assert_eq(big[i], 0xa5, "byte %zu past the struct was written", i);
}
