/* badinput_posix: hostile input to every function of the POSIX front end
 * and of <aiopool.h>: one test for each row of the "Bad input" table in
 * docs/reliability.md (the row's name is in each test's comment), checking
 * the error the call gives, when it gives it (at once, or later through
 * aio_error), and that nothing else was disturbed. */
#include "common.h"

#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>

/* A backstop for the calls that could block: every wait below has its own
 * deadline, this catches one that does not. */
TestSuite(badinput_posix, .timeout = 60);

/* <aio.h> declares these nonnull.  NULL is one of the inputs here, so they
 * are called through pointers whose type does not say so: the compiler
 * then neither warns nor assumes, and UBSan's nonnull check stays quiet. */
static int (*volatile p_aio_read)(struct aiocb *) = aio_read;
static int (*volatile p_aio_write)(struct aiocb *) = aio_write;
static int (*volatile p_aio_fsync)(int, struct aiocb *) = aio_fsync;
static int (*volatile p_aio_error)(const struct aiocb *) = aio_error;
static ssize_t (*volatile p_aio_return)(struct aiocb *) = aio_return;
static int (*volatile p_aio_suspend)(const struct aiocb *const[], int,
		const struct timespec *) = aio_suspend;
static int (*volatile p_lio_listio)(int, struct aiocb *const[], int,
		struct sigevent *) = lio_listio;
static void (*volatile p_aio_init)(const struct aioinit *) = aio_init;
static int (*volatile p_aio_read64)(struct aiocb64 *) = aio_read64;

static int (*const submit_fn[2])(struct aiocb *) = { aio_read, aio_write };
static const char *const submit_name[2] = { "aio_read", "aio_write" };

/* Submits cb with aio_read (w = 0) or aio_write (w = 1) and checks that
 * it was accepted, then that it ends with err (0: success). */
static ssize_t accepted_then(int w, struct aiocb *cb, int err)
{
	errno = 0;
	cr_assert_eq(submit_fn[w](cb), 0, "%s: %s", submit_name[w], strerror(errno));
	cr_assert_eq(wait_aio(cb), err, "%s ended with %s, not %s", submit_name[w],
	             strerror(aio_error(cb)), strerror(err));
	return aio_return(cb);
}

/* Submits cb and checks that it was refused at once with err, which the
 * aiocb then holds (aio_return -1, once). */
static void refused(int w, struct aiocb *cb, int err)
{
	errno = 0;
	cr_assert_eq(submit_fn[w](cb), -1, "%s accepted it", submit_name[w]);
	cr_assert_eq(errno, err, "%s: errno %s, not %s", submit_name[w],
	             strerror(errno), strerror(err));
	cr_assert_eq(aio_error(cb), err, "the aiocb holds %s", strerror(aio_error(cb)));
	cr_assert_eq(aio_return(cb), -1);
}

/* ---- aio_read, aio_write ------------------------------------------------ */

/* Row: aio_read/aio_write, aiocbp NULL. */
Test(badinput_posix, submit_null_aiocb)
{
	errno = 0;
	cr_assert_eq(p_aio_read(NULL), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(p_aio_write(NULL), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(p_aio_read64(NULL), -1);
	cr_assert_eq(errno, EINVAL);
}

/* Row: aio_fildes -1: accepted, EBADF before the call returns. */
Test(badinput_posix, submit_fd_minus_one)
{
	char buf[8] = "abcdefg";
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, -1, buf, sizeof buf, 0);
		cr_assert_eq(submit_fn[w](&cb), 0);
		cr_assert_eq(aio_error(&cb), EBADF, "%s: not done at once", submit_name[w]);
		cr_assert_eq(aio_return(&cb), -1);
	}
}

/* Row: aio_fildes closed (never open): accepted, then EBADF. */
Test(badinput_posix, submit_closed_fd)
{
	char buf[8] = "abcdefg";
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, closed_fd(), buf, sizeof buf, 0);
		cr_assert_eq(accepted_then(w, &cb, EBADF), -1);
	}
}

/* Row: aio_fildes open in the other direction: accepted, then EBADF. */
Test(badinput_posix, submit_wrong_direction)
{
	char buf[8] = "abcdefg";
	struct aiocb cb;
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[1], buf, sizeof buf, 0);
	cr_assert_eq(accepted_then(0, &cb, EBADF), -1, "read on a pipe's write end");
	fill_cb(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(accepted_then(1, &cb, EBADF), -1, "write on a pipe's read end");
}

/* Row: aio_offset negative: EINVAL later on a file, ignored on a pipe. */
Test(badinput_posix, submit_negative_offset)
{
	int fd = temp_file(4096, 0), p[2];
	char buf[8] = "abcdefg";
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, fd, buf, sizeof buf, -1);
		cr_assert_eq(accepted_then(w, &cb, EINVAL), -1);
		fill_cb(&cb, fd, buf, sizeof buf, LLONG_MIN);
		cr_assert_eq(accepted_then(w, &cb, EINVAL), -1);
	}
	/* Also for an append, which the engine makes with RWF_APPEND, where
	 * pwritev2 would take -1 for the file position. */
	int app = temp_file(0, O_APPEND);
	fill_cb(&cb, app, buf, sizeof buf, -1);
	cr_assert_eq(accepted_then(1, &cb, EINVAL), -1, "an append at offset -1");
	close(app);
	make_pipe(p);
	fill_cb(&cb, p[1], buf, sizeof buf, -1);
	cr_assert_eq(accepted_then(1, &cb, 0), (ssize_t)sizeof buf, "a pipe has no offset");
	fill_cb(&cb, p[0], buf, sizeof buf, -1);
	cr_assert_eq(accepted_then(0, &cb, 0), (ssize_t)sizeof buf);
}

/* Row: aio_offset + aio_nbytes past the largest offset: EINVAL later. */
Test(badinput_posix, submit_offset_overflow)
{
	int fd = temp_file(4096, 0);
	char buf[8] = "abcdefg";
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, fd, buf, sizeof buf, LLONG_MAX - 4);
		cr_assert_eq(accepted_then(w, &cb, EINVAL), -1);
		fill_cb(&cb, fd, buf, sizeof buf, LLONG_MAX);
		cr_assert_eq(accepted_then(w, &cb, EINVAL), -1);
	}
}

/* Row: aio_offset huge but valid: a read is at end of file (0 bytes). */
Test(badinput_posix, read_huge_offset_is_end_of_file)
{
	int fd = temp_file(4096, 0);
	char buf[8];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 1LL << 62);
	cr_assert_eq(accepted_then(0, &cb, 0), 0);
}

/* Row: aio_nbytes over SSIZE_MAX: refused at once with EINVAL. */
Test(badinput_posix, submit_nbytes_over_ssize_max)
{
	int fd = temp_file(4096, 0);
	char buf[8];
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, fd, buf, (size_t)SSIZE_MAX + 1, 0);
		refused(w, &cb, EINVAL);
		fill_cb(&cb, fd, buf, SIZE_MAX, 0);
		refused(w, &cb, EINVAL);
	}
}

/* Row: aio_buf NULL (or not the program's): EFAULT later; 0 bytes: 0. */
Test(badinput_posix, submit_bad_buffer)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, fd, NULL, 16, 0);
		cr_assert_eq(accepted_then(w, &cb, EFAULT), -1);
		fill_cb(&cb, fd, (void *)-4096L, 16, 0);
		cr_assert_eq(accepted_then(w, &cb, EFAULT), -1);
		fill_cb(&cb, fd, NULL, 0, 0);
		cr_assert_eq(accepted_then(w, &cb, 0), 0);
	}
}

/* Row: aio_reqprio outside 0..AIO_PRIO_DELTA_MAX: refused at once. */
Test(badinput_posix, submit_bad_reqprio)
{
	static const int bad[] = { -1, AIO_PRIO_DELTA_MAX + 1, INT_MIN, INT_MAX };
	int fd = temp_file(4096, 0);
	char buf[8] = "abcdefg";
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			fill_cb(&cb, fd, buf, sizeof buf, 0);
			cb.aio_reqprio = bad[i];
			refused(w, &cb, EINVAL);
		}
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		cb.aio_reqprio = AIO_PRIO_DELTA_MAX;
		cr_assert_eq(accepted_then(w, &cb, 0), (ssize_t)sizeof buf);
	}
}

/* Row: sigev_notify unknown: refused at once. */
Test(badinput_posix, submit_bad_sigev_notify)
{
	static const int bad[] = { 77, -1, INT_MAX };
	int fd = temp_file(4096, 0);
	char buf[8];
	struct aiocb cb;

	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			fill_cb(&cb, fd, buf, sizeof buf, 0);
			cb.aio_sigevent.sigev_notify = bad[i];
			refused(w, &cb, EINVAL);
		}
}

/* Row: SIGEV_SIGNAL with a signal number out of range: refused; signal 0
 * (a zeroed aiocb) is accepted and sends nothing. */
Test(badinput_posix, submit_bad_signal_number)
{
	static const int bad[] = { -1, NSIG, NSIG + 100, INT_MIN };
	int fd = temp_file(4096, 0);
	char buf[8];
	struct aiocb cb;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cb.aio_sigevent.sigev_signo = bad[i];
		refused(0, &cb, EINVAL);
	}
	memset(&cb, 0, sizeof cb);   /* SIGEV_SIGNAL, signal 0 */
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = sizeof buf;
	cr_assert_eq(accepted_then(0, &cb, 0), (ssize_t)sizeof buf);
}

/* Row: SIGEV_THREAD without a function: refused. */
Test(badinput_posix, submit_thread_without_function)
{
	int fd = temp_file(4096, 0);
	char buf[8];
	struct aiocb cb;

	for (int w = 0; w < 2; w++) {
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		cb.aio_sigevent.sigev_notify_function = NULL;
		refused(w, &cb, EINVAL);
	}
}

/* Row: SIGEV_THREAD_ID naming no thread of ours, or with a bad signal. */
Test(badinput_posix, submit_bad_thread_id)
{
	int fd = temp_file(4096, 0);
	pid_t tids[] = { 0, -1, getppid() };   /* the parent: not a thread of ours */
	char buf[8];
	struct aiocb cb;

	for (size_t i = 0; i < sizeof tids / sizeof tids[0]; i++) {
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
		cb.aio_sigevent.sigev_signo = SIGUSR1;
		cb.aio_sigevent._sigev_un._tid = tids[i];
		refused(0, &cb, EINVAL);
	}
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
	cb.aio_sigevent.sigev_signo = 0;   /* a thread needs a real signal */
	cb.aio_sigevent._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	refused(0, &cb, EINVAL);
}

/* Row: an aiocb submitted again while in flight: refused with EINVAL, and
 * its request goes on undisturbed. */
Test(badinput_posix, submit_in_flight_again)
{
	struct aiocb cb;
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	for (int w = 0; w < 2; w++) {
		errno = 0;
		cr_assert_eq(submit_fn[w](&cb), -1, "%s of an aiocb in flight", submit_name[w]);
		cr_assert_eq(errno, EINVAL);
		assert_in_progress(&cb);
	}
	put(p[1], "q", 1);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 1);
	cr_assert_eq(buf[0], 'q');
}

/* ---- aio_fsync ------------------------------------------------------------ */

/* Row: aio_fsync, op neither O_SYNC nor O_DSYNC: EINVAL, aiocb untouched. */
Test(badinput_posix, fsync_bad_op)
{
	int fd = temp_file(4096, 0);
	static const int ops[] = { 0, O_RDWR, O_SYNC | O_DSYNC | 1, -1 };
	struct aiocb cb;

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (ops[i] == O_SYNC || ops[i] == O_DSYNC)
			continue;
		fill_cb(&cb, fd, NULL, 0, 0);
		errno = 0;
		cr_assert_eq(aio_fsync(ops[i], &cb), -1, "op %#x", ops[i]);
		cr_assert_eq(errno, EINVAL);
		cr_assert_eq(aio_error(&cb), EINVAL, "never submitted: EINVAL as status");
	}
}

/* Row: aio_fsync, aiocbp NULL. */
Test(badinput_posix, fsync_null_aiocb)
{
	errno = 0;
	cr_assert_eq(p_aio_fsync(O_SYNC, NULL), -1);
	cr_assert_eq(errno, EINVAL);
}

/* Row: aio_fsync on a closed fd or -1: EBADF at once, in the aiocb too. */
Test(badinput_posix, fsync_bad_fd)
{
	struct aiocb cb;
	int fds[2] = { -1, closed_fd() };

	for (int i = 0; i < 2; i++) {
		fill_cb(&cb, fds[i], NULL, 0, 0);
		errno = 0;
		cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
		cr_assert_eq(errno, EBADF);
		cr_assert_eq(aio_error(&cb), EBADF);
		cr_assert_eq(aio_return(&cb), -1);
	}
}

/* Row: aio_fsync on a pipe or socket: accepted, then EINVAL (fsync(2)). */
Test(badinput_posix, fsync_pipe_or_socket)
{
	struct aiocb cb;
	int p[2], sv[2];

	make_pipe(p);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int fds[3] = { p[0], p[1], sv[0] };
	for (int i = 0; i < 3; i++) {
		fill_cb(&cb, fds[i], NULL, 0, 0);
		cr_assert_eq(aio_fsync(O_DSYNC, &cb), 0);
		cr_assert_eq(wait_aio(&cb), EINVAL);
		cr_assert_eq(aio_return(&cb), -1);
	}
}

/* Row: aio_fsync of an aiocb in flight: EINVAL, and the request is left
 * alone, even when its fd has been closed meanwhile. */
Test(badinput_posix, fsync_in_flight_aiocb)
{
	struct aiocb cb;
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	signal(SIGPIPE, SIG_IGN);   /* a failure is an assertion, not a crash */
	cr_assert_eq(aio_read(&cb), 0);
	/* Inside read(), not just taken by a worker: a close before the call
	 * cancels the request instead (fdclose.c). */
	wait_thread_in_read(p[0]);
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	assert_in_progress(&cb);
	close(p[0]);   /* the running read keeps its file */
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EINVAL, "not EBADF: the aiocb is in flight");
	assert_in_progress(&cb);
	put(p[1], "z", 1);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 1);
}

/* Row: aio_fsync with an invalid sigevent: EINVAL at once. */
Test(badinput_posix, fsync_bad_sigevent)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;

	fill_cb(&cb, fd, NULL, 0, 0);
	cb.aio_sigevent.sigev_notify = 77;
	errno = 0;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EINVAL);
}

/* Row: aio_fsync ignores aio_reqprio, even out of range, and sets it to 0. */
Test(badinput_posix, fsync_ignores_reqprio)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;

	fill_cb(&cb, fd, NULL, 0, 0);
	cb.aio_reqprio = -5;
	cr_assert_eq(aio_fsync(O_SYNC, &cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(cb.aio_reqprio, 0);
}

/* ---- aio_error, aio_return ----------------------------------------------- */

/* Row: aio_error on NULL, a zeroed aiocb, a copy: EINVAL as the value,
 * errno untouched. */
Test(badinput_posix, error_foreign_aiocb)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb, copy, zero;
	char buf[8];

	memset(&zero, 0, sizeof zero);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	memcpy(&copy, &cb, sizeof copy);
	errno = 1234;
	cr_assert_eq(p_aio_error(NULL), EINVAL);
	cr_assert_eq(aio_error(&zero), EINVAL);
	cr_assert_eq(aio_error(&copy), EINVAL, "a copy is not the aiocb submitted");
	cr_assert_eq(errno, 1234, "aio_error changed errno");
	cr_assert_eq(aio_error(&cb), 0);
}

/* Row: aio_return on NULL, a zeroed aiocb, a copy: -1 EINVAL. */
Test(badinput_posix, return_foreign_aiocb)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb, copy, zero;
	char buf[8];

	memset(&zero, 0, sizeof zero);
	zero.__error_code = 0;
	zero.__return_value = 42;   /* what glibc would hand back */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	memcpy(&copy, &cb, sizeof copy);
	errno = 0;
	cr_assert_eq(p_aio_return(NULL), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aio_return(&zero), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aio_return(&copy), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf, "the original still has it");
}

/* Row: aio_return while in progress: -1 EINPROGRESS, result kept. */
Test(badinput_posix, return_in_progress)
{
	struct aiocb cb;
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINPROGRESS);
	put(p[1], "k", 1);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 1);
}

/* Row: aio_return twice: the second gives -1 EINVAL; aio_error still
 * reports the request's error. */
Test(badinput_posix, return_twice)
{
	char buf[8];
	struct aiocb cb;

	fill_cb(&cb, -1, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), EBADF);
	cr_assert_eq(aio_return(&cb), -1);
	errno = 0;
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EBADF);
}

/* ---- aio_suspend --------------------------------------------------------- */

/* Row: aio_suspend, nent negative. */
Test(badinput_posix, suspend_negative_nent)
{
	const struct aiocb *list[1] = { NULL };

	errno = 0;
	cr_assert_eq(aio_suspend(list, -1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aio_suspend(list, INT_MIN, NULL), -1);
	cr_assert_eq(errno, EINVAL);
}

/* Row: aio_suspend, list NULL: EINVAL if nent > 0, 0 if nent is 0. */
Test(badinput_posix, suspend_null_list)
{
	errno = 0;
	cr_assert_eq(p_aio_suspend(NULL, 1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(p_aio_suspend(NULL, 0, NULL), 0);
}

/* Row: aio_suspend, timeout with tv_nsec outside 0..999999999 or tv_sec
 * negative: EINVAL (glibc aborts on an assertion). */
Test(badinput_posix, suspend_bad_timeout)
{
	static const struct timespec bad[] = {
		{ 0, 1000000000L }, { 0, -1 }, { -1, 0 }, { 1, LONG_MAX }, { 0, LONG_MIN },
	};
	struct aiocb cb;
	const struct aiocb *list[1] = { &cb };
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aio_suspend(list, 1, &bad[i]), -1, "timeout %zu", i);
		cr_assert_eq(errno, EINVAL, "timeout %zu: %s", i, strerror(errno));
	}
	put(p[1], "x", 1);
	cr_assert_eq(wait_aio(&cb), 0);
}

/* Row: aio_suspend on a list of NULLs, or of aiocbs never submitted:
 * nothing to wait for, 0 at once. */
Test(badinput_posix, suspend_nothing_to_wait_for)
{
	struct aiocb zero;
	const struct aiocb *nulls[3] = { NULL, NULL, NULL }, *never[2] = { NULL, &zero };

	memset(&zero, 0, sizeof zero);
	cr_assert_eq(aio_suspend(nulls, 3, NULL), 0);
	cr_assert_eq(aio_suspend(never, 2, NULL), 0);
}

/* Row: aio_suspend, zero timeout with every entry in progress: EAGAIN. */
Test(badinput_posix, suspend_zero_timeout)
{
	static const struct timespec zero = { 0, 0 };
	struct aiocb cb;
	const struct aiocb *list[1] = { &cb };
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	errno = 0;
	cr_assert_eq(aio_suspend(list, 1, &zero), -1);
	cr_assert_eq(errno, EAGAIN);
	put(p[1], "x", 1);
	cr_assert_eq(wait_aio(&cb), 0);
}

/* ---- aio_cancel ----------------------------------------------------------- */

/* Row: aio_cancel on -1 or a closed fd: EBADF, checked before the aiocb. */
Test(badinput_posix, cancel_bad_fd)
{
	struct aiocb cb;
	int fds[2] = { -1, closed_fd() };

	for (int i = 0; i < 2; i++) {
		errno = 0;
		cr_assert_eq(aio_cancel(fds[i], NULL), -1);
		cr_assert_eq(errno, EBADF);
		fill_cb(&cb, 12345, NULL, 0, 0);   /* another fd, too */
		errno = 0;
		cr_assert_eq(aio_cancel(fds[i], &cb), -1);
		cr_assert_eq(errno, EBADF);
	}
}

/* Row: aio_cancel with an aiocb of another fd: EINVAL, nothing cancelled. */
Test(badinput_posix, cancel_aiocb_of_other_fd)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	errno = 0;
	cr_assert_eq(aio_cancel(fd, &cb), -1);
	cr_assert_eq(errno, EINVAL);
	assert_in_progress(&cb);
	put(p[1], "x", 1);
	cr_assert_eq(wait_aio(&cb), 0);
}

/* Row: aio_cancel of an aiocb never submitted, or done: AIO_ALLDONE. */
Test(badinput_posix, cancel_aiocb_not_in_flight)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb;
	char buf[8];

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_cancel(fd, &cb), AIO_ALLDONE, "never submitted");
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_cancel(fd, &cb), AIO_ALLDONE, "done");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf, "the result is still there");
	cr_assert_eq(aio_cancel(fd, NULL), AIO_ALLDONE, "nothing on the fd");
}

/* ---- lio_listio ------------------------------------------------------------ */

/* Row: lio_listio, mode neither LIO_WAIT nor LIO_NOWAIT: EINVAL, nothing
 * submitted. */
Test(badinput_posix, lio_bad_mode)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb, *list[1] = { &cb };
	char buf[8];

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_lio_opcode = LIO_READ;
	errno = 0;
	cr_assert_eq(lio_listio(7, list, 1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EINVAL, "it was submitted");
	cr_assert_eq(stats_now().submitted, 0);
}

/* Row: lio_listio, nent negative: EINVAL. */
Test(badinput_posix, lio_negative_nent)
{
	struct aiocb *list[1] = { NULL };

	for (int mode = 0; mode < 2; mode++) {
		errno = 0;
		cr_assert_eq(lio_listio(mode ? LIO_NOWAIT : LIO_WAIT, list, -1, NULL), -1);
		cr_assert_eq(errno, EINVAL);
	}
}

/* Row: lio_listio, list NULL: EINVAL if nent > 0; nent 0 is an empty
 * list (LIO_NOWAIT still notifies, once). */
static int empty_list_notes;

static void empty_list_note(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&empty_list_notes, 1, __ATOMIC_RELAXED);
}

Test(badinput_posix, lio_null_list)
{
	struct sigevent sev;

	errno = 0;
	cr_assert_eq(p_lio_listio(LIO_WAIT, NULL, 2, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(p_lio_listio(LIO_WAIT, NULL, 0, NULL), 0);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = empty_list_note;
	cr_assert_eq(p_lio_listio(LIO_NOWAIT, NULL, 0, &sev), 0);
	wait_until(__atomic_load_n(&empty_list_notes, __ATOMIC_RELAXED) == 1);
}

/* Row: lio_listio(LIO_NOWAIT) with an invalid sigevent: EINVAL, nothing
 * submitted; LIO_WAIT ignores the sigevent. */
Test(badinput_posix, lio_bad_sigevent)
{
	int fd = temp_file(4096, 0);
	struct aiocb cb, *list[1] = { &cb };
	struct sigevent sev;
	char buf[8];

	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = 77;
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_lio_opcode = LIO_READ;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &sev), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aio_error(&cb), EINVAL, "never submitted");
	cr_assert_eq(lio_listio(LIO_WAIT, list, 1, &sev), 0, "LIO_WAIT ignores it");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
}

/* Row: lio_listio entry with an unknown aio_lio_opcode (3 and 4, glibc's
 * internal fsync codes, included): the call fails with EIO, that entry
 * holds EINVAL, the others run. */
Test(badinput_posix, lio_bad_opcode)
{
	static const int bad[] = { 3, 4, 99, -1 };
	int fd = temp_file(4096, 0);
	struct aiocb good, odd, *list[2] = { &good, &odd };
	char buf[8], buf2[8];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fill_cb(&good, fd, buf, sizeof buf, 0);
		good.aio_lio_opcode = LIO_READ;
		fill_cb(&odd, fd, buf2, sizeof buf2, 0);
		odd.aio_lio_opcode = bad[i];
		errno = 0;
		cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), -1, "opcode %d", bad[i]);
		cr_assert_eq(errno, EIO);
		cr_assert_eq(aio_error(&odd), EINVAL);
		cr_assert_eq(aio_return(&odd), -1);
		cr_assert_eq(aio_error(&good), 0);
		cr_assert_eq(aio_return(&good), (ssize_t)sizeof buf);
	}
}

/* Row: lio_listio with NULL entries and LIO_NOP entries: skipped. */
Test(badinput_posix, lio_null_and_nop_entries)
{
	int fd = temp_file(4096, 0);
	struct aiocb nop, rd, *list[3] = { NULL, &nop, &rd };
	char buf[8];

	fill_cb(&nop, fd, buf, sizeof buf, 0);
	nop.aio_lio_opcode = LIO_NOP;
	fill_cb(&rd, fd, buf, sizeof buf, 0);
	rd.aio_lio_opcode = LIO_READ;
	cr_assert_eq(lio_listio(LIO_WAIT, list, 3, NULL), 0);
	cr_assert_eq(aio_error(&nop), EINVAL, "a LIO_NOP entry is never submitted");
	cr_assert_eq(aio_return(&rd), (ssize_t)sizeof buf);
}

/* Row: lio_listio entry with a bad aio_reqprio, sigevent or nbytes: EIO,
 * the entry holds EINVAL. */
Test(badinput_posix, lio_entry_refused)
{
	int fd = temp_file(4096, 0);
	struct aiocb e[3], *list[3] = { &e[0], &e[1], &e[2] };
	char buf[8];

	for (int i = 0; i < 3; i++) {
		fill_cb(&e[i], fd, buf, sizeof buf, 0);
		e[i].aio_lio_opcode = LIO_READ;
	}
	e[0].aio_reqprio = -1;
	e[1].aio_sigevent.sigev_notify = 77;
	e[2].aio_nbytes = SIZE_MAX;
	for (int mode = 0; mode < 2; mode++) {
		errno = 0;
		cr_assert_eq(lio_listio(mode ? LIO_NOWAIT : LIO_WAIT, list, 3, NULL), -1);
		cr_assert_eq(errno, EIO);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(aio_error(&e[i]), EINVAL, "entry %d", i);
	}
}

/* Row: lio_listio(LIO_WAIT) whose entry fails when it runs: EIO. */
Test(badinput_posix, lio_wait_entry_fails)
{
	int fd = temp_file(4096, 0);
	struct aiocb good, bad, *list[2] = { &good, &bad };
	char buf[8];

	fill_cb(&good, fd, buf, sizeof buf, 0);
	good.aio_lio_opcode = LIO_READ;
	fill_cb(&bad, closed_fd(), buf, sizeof buf, 0);
	bad.aio_lio_opcode = LIO_WRITE;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), -1);
	cr_assert_eq(errno, EIO);
	cr_assert_eq(aio_error(&bad), EBADF);
	cr_assert_eq(aio_error(&good), 0);
}

/* Row: lio_listio entry still in flight from an earlier call, even with
 * a bad opcode: EIO, and that request is left alone. */
Test(badinput_posix, lio_entry_in_flight)
{
	struct aiocb cb, *list[1] = { &cb };
	char buf[4];
	int p[2];

	make_pipe(p);
	fill_cb(&cb, p[0], buf, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cb.aio_lio_opcode = LIO_READ;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, NULL), -1);
	cr_assert_eq(errno, EIO);
	assert_in_progress(&cb);
	cb.aio_lio_opcode = 99;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, NULL), -1);
	cr_assert_eq(errno, EIO);
	assert_in_progress(&cb);
	put(p[1], "w", 1);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 1);
	cr_assert_eq(buf[0], 'w');
}

/* ---- aio_init -------------------------------------------------------------- */

/* Row: aio_init(NULL): nothing changes. */
Test(badinput_posix, init_null)
{
	long before[8];

	for (int k = 1; k <= 7; k++)
		before[k] = aiopool_get(k);
	p_aio_init(NULL);
	for (int k = 1; k <= 7; k++)
		cr_assert_eq(aiopool_get(k), before[k], "knob %d", k);
}

/* Row: aio_init with out-of-range fields: clamped. */
Test(badinput_posix, init_out_of_range)
{
	struct aioinit ai;

	memset(&ai, 0, sizeof ai);
	ai.aio_threads = -5;
	ai.aio_num = INT_MAX;
	ai.aio_idle_time = INT_MAX;
	aio_init(&ai);
	cr_assert_eq(aiopool_get(AIOPOOL_MAX_THREADS), 1);
	cr_assert_eq(aiopool_get(AIOPOOL_CACHE), 1L << 20);
	cr_assert_eq(aiopool_get(AIOPOOL_IDLE_MS), INT_MAX);
	ai.aio_threads = INT_MAX;
	ai.aio_num = -1;             /* not positive: unchanged */
	ai.aio_idle_time = INT_MIN;  /* negative: exit at once */
	aio_init(&ai);
	cr_assert_eq(aiopool_get(AIOPOOL_MAX_THREADS), 1024);
	cr_assert_eq(aiopool_get(AIOPOOL_CACHE), 1L << 20);
	cr_assert_eq(aiopool_get(AIOPOOL_IDLE_MS), -1);
}

/* Row: aio_init with one thread and a negative idle time: workers exit as
 * soon as they find no work, and a request queued just then must still
 * find one (it once waited forever: a lost wake-up). */
Test(badinput_posix, init_one_thread_no_idle_time)
{
	int fd = temp_file(4096, 0);
	struct aioinit ai;
	char buf[16];

	memset(&ai, 0, sizeof ai);
	ai.aio_threads = 1;
	ai.aio_idle_time = -1;
	aio_init(&ai);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);   /* every read to the worker */
	/* Each round starts a worker, which on a loaded machine or under
	 * valgrind is slow: the rounds also stop at a time budget, well
	 * inside the suite's timeout.  How many ran is logged. */
	long long end = now_ms() + DEADLINE_MS;
	int i;
	for (i = 0; i < 40000 && now_ms() < end; i++) {
		struct timespec t = { DEADLINE_MS / 1000, 0 };
		struct aiocb cb;
		const struct aiocb *list[1] = { &cb };
		fill_cb(&cb, fd, buf, sizeof buf, (off_t)(i % 256) * 16);
		cr_assert_eq(aio_read(&cb), 0, "request %d: %s", i, strerror(errno));
		cr_assert_eq(aio_suspend(list, 1, &t), 0, "request %d never completed "
		             "(%s): no worker took it", i, strerror(errno));
		cr_assert_eq(aio_error(&cb), 0, "request %d", i);
		cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	}
	cr_log_info("%d rounds", i);
}

/* ---- aiopool_stats, aiopool_set, aiopool_get ------------------------------- */

/* Row: aiopool_stats with st NULL, or size below the structure without
 * its reserved tail: EINVAL; a larger size is fine. */
Test(badinput_posix, stats_bad_arguments)
{
	union { struct aiopool_stats st; char big[4096]; } u;
	unsigned long min = offsetof(struct aiopool_stats, reserved);

	errno = 0;
	cr_assert_eq(aiopool_stats(NULL, sizeof u.st), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aiopool_stats(&u.st, 0), -1);
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_eq(aiopool_stats(&u.st, min - 1), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aiopool_stats(&u.st, min), 0);
	memset(u.big, 0x55, sizeof u.big);
	cr_assert_eq(aiopool_stats(&u.st, sizeof u.big), 0);
	cr_assert_eq((unsigned char)u.big[sizeof u.st], 0x55, "wrote past the structure");
}

/* Row: aiopool_set / aiopool_get on an unknown knob: -1 EINVAL. */
Test(badinput_posix, knob_unknown)
{
	static const int bad[] = { 0, 9, -1, INT_MAX, INT_MIN };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aiopool_set(bad[i], 1), -1);
		cr_assert_eq(errno, EINVAL);
		errno = 0;
		cr_assert_eq(aiopool_get(bad[i]), -1);
		cr_assert_eq(errno, EINVAL);
	}
}

/* Row: aiopool_set with a value out of the knob's range: -1 EINVAL, the
 * knob unchanged; the bounds themselves are accepted. */
Test(badinput_posix, knob_out_of_range)
{
	static const struct { int knob; long lo, hi; } k[] = {
		{ AIOPOOL_MAX_THREADS, 1, 1024 },
		{ AIOPOOL_IDLE_MS, -1, INT_MAX },
		{ AIOPOOL_MAX_QUEUED, 1, 1L << 30 },
		{ AIOPOOL_FD_CONCURRENCY, 1, 1024 },
		{ AIOPOOL_CACHE, 0, 1L << 20 },
		{ AIOPOOL_FASTPATH, 0, 1 },
		{ AIOPOOL_RUNNABLE, 1, 1024 },
	};

	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		long before = aiopool_get(k[i].knob);
		long bad[] = { k[i].lo - 1, k[i].hi + 1, LONG_MIN, LONG_MAX };
		for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
			errno = 0;
			cr_assert_eq(aiopool_set(k[i].knob, bad[j]), -1, "knob %d value %ld",
			             k[i].knob, bad[j]);
			cr_assert_eq(errno, EINVAL);
			cr_assert_eq(aiopool_get(k[i].knob), before);
		}
		cr_assert_eq(aiopool_set(k[i].knob, k[i].lo), 0, "knob %d", k[i].knob);
		cr_assert_eq(aiopool_get(k[i].knob), k[i].lo);
		cr_assert_eq(aiopool_set(k[i].knob, k[i].hi), 0, "knob %d", k[i].knob);
		cr_assert_eq(aiopool_get(k[i].knob), k[i].hi);
		cr_assert_eq(aiopool_set(k[i].knob, before), 0);
	}
}
