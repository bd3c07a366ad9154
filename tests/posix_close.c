/* posix_close: close(), dup2() and dup3() through aiopool cancel the
 * requests still queued on the fd they close, so that those never run on
 * whatever file takes the number next; running requests finish on the
 * file they started on. */
#include "common.h"

#include <libaio.h>
#include <sys/stat.h>

/* A regular file that stays empty unless something writes to it. */
static int empty_file(void)
{
	return temp_file(0, 0);
}

Test(posix_close, close_cancels_queued_requests_and_frees_the_number)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "must not reach the next file";
	int fd = empty_file(), fd2;

	one_busy_worker(&b);
	fill_cb(&w, fd, data, sizeof data, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(aio_error(&w), EINPROGRESS, "queued behind the busy worker");

	cr_assert_eq(close(fd), 0);
	cr_assert_eq(aio_error(&w), ECANCELED, "closing the fd cancels its queued write");
	cr_assert_eq(aio_return(&w), -1);

	fd2 = empty_file();   /* takes the number fd had */
	cr_assert_eq(fd2, fd, "the test needs the number reused");
	blocker_release(&b);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(size_of(fd2), 0, "nothing was written to the file that reused the number");
	close(fd2);
}

Test(posix_close, running_request_finishes_on_its_file)
{
	struct aiocb r;
	char buf[4] = { 0 };
	int p[2];

	make_pipe(p);
	signal(SIGPIPE, SIG_IGN);   /* a failure is an assertion, not a crash */
	fill_cb(&r, p[0], buf, 3, 0);
	cr_assert_eq(aio_read(&r), 0);
	/* The worker inside read(), which is what this test is about: a
	 * request still queued at the close is cancelled instead. */
	wait_thread_in_read(p[0]);
	cr_assert_eq(close(p[0]), 0);
	/* The read holds the pipe open: the data still reaches it. */
	put(p[1], "abc", 3);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_return(&r), 3);
	cr_assert_str_eq(buf, "abc");
	close(p[1]);
}

Test(posix_close, dup2_onto_a_busy_fd_cancels_its_queue)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "x";
	int fd = empty_file(), other = empty_file();

	one_busy_worker(&b);
	fill_cb(&w, fd, data, 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(dup2(other, fd), fd);
	cr_assert_eq(aio_error(&w), ECANCELED);
	blocker_release(&b);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(size_of(other), 0, "the write did not go to the file dup2 put there");
	close(fd);
	close(other);
}

Test(posix_close, dup3_onto_a_busy_fd_cancels_its_queue)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "x";
	int fd = empty_file(), other = empty_file();

	one_busy_worker(&b);
	fill_cb(&w, fd, data, 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(dup3(other, fd, O_CLOEXEC), fd);
	cr_assert_eq(aio_error(&w), ECANCELED);
	blocker_release(&b);
	close(fd);
	close(other);
}

Test(posix_close, dup2_with_a_bad_source_closes_nothing)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "x";
	int fd = empty_file();

	one_busy_worker(&b);
	fill_cb(&w, fd, data, 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	errno = 0;
	cr_assert_eq(dup2(closed_fd(), fd), -1);
	cr_assert_eq(errno, EBADF);
	cr_assert_eq(aio_error(&w), EINPROGRESS, "a failed dup2 leaves fd's queue alone");
	blocker_release(&b);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(size_of(fd), 1);
	close(fd);
}

Test(posix_close, close_of_a_bad_fd_reports_ebadf)
{
	errno = 0;
	cr_assert_eq(close(closed_fd()), -1);
	cr_assert_eq(errno, EBADF);
	errno = 0;
	cr_assert_eq(close(-1), -1);
	cr_assert_eq(errno, EBADF);
}

Test(posix_close, libaio_request_gets_a_cancelled_event)
{
	struct blocker b;
	io_context_t ctx = 0;
	struct iocb io, *ios[1] = { &io };
	struct io_event ev;
	struct timespec ts = { DEADLINE_MS / 1000, 0 };
	char data[] = "y";
	int fd = empty_file();

	one_busy_worker(&b);
	cr_assert_eq(io_setup(4, &ctx), 0);
	io_prep_pwrite(&io, fd, data, 1, 0);
	cr_assert_eq(io_submit(ctx, 1, ios), 1);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &ts), 1, "the cancelled write still has its event");
	cr_assert_eq(ev.obj, &io);
	cr_assert_eq((long)ev.res, -ECANCELED);
	blocker_release(&b);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* ---- exit ---------------------------------------------------------------- */

/* Only a dup3 or dup2 that replaces newfd closes it: one that fails (bad
 * flags, a bad oldfd, oldfd == newfd) or dup2 onto itself leaves newfd's
 * queue alone. */
Test(posix_close, failed_dup3_and_dup2_onto_itself_cancel_nothing)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "x";
	int fd = empty_file(), other = empty_file();

	one_busy_worker(&b);
	fill_cb(&w, fd, data, 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	errno = 0;
	cr_assert_eq(dup3(other, fd, 0x12345678), -1, "bad flags");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(dup3(fd, fd, 0), -1, "oldfd == newfd");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(dup3(closed_fd(), fd, 0), -1, "bad oldfd");
	cr_assert_eq(errno, EBADF);
	cr_assert_eq(dup2(fd, fd), fd, "dup2 onto itself");
	cr_assert_eq(aio_error(&w), EINPROGRESS, "a dup3 that closed nothing cancelled fd's queue");
	blocker_release(&b);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(size_of(fd), 1);
	close(fd);
	close(other);
}

/* A vfork() child shares the parent's memory, not its fds: its close() and
 * dup2() close its own fds and leave the parent's requests alone. */
Test(posix_close, vfork_child_close_leaves_the_parents_requests)
{
	struct blocker b;
	struct aiocb w;
	char data[] = "x";
	int fd = empty_file(), other = empty_file(), status;
	pid_t pid;

	one_busy_worker(&b);
	fill_cb(&w, fd, data, 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	pid = vfork();
	if (pid == 0) {
		close(fd);
		dup2(other, b.p[0]);
		_exit(0);
	}
	cr_assert_gt(pid, 0, "vfork: %s", strerror(errno));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(aio_error(&w), EINPROGRESS, "the child's close cancelled the parent's write");
	cr_assert_eq(stats_now().cancelled, 0);
	blocker_release(&b);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(size_of(fd), 1, "the parent's write reached its file");
	close(fd);
	close(other);
}

/* close() is a cancellation point, as glibc's: a pending deferred cancel
 * acts before the fd is closed. */
static void *close_cancelled(void *arg)
{
	int fd = *(int *)arg;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cancel(pthread_self());
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	close(fd);
	return arg;   /* not reached */
}

Test(posix_close, close_is_a_cancellation_point)
{
	pthread_t t;
	void *ret;
	int fd = empty_file();

	cr_assert_eq(pthread_create(&t, NULL, close_cancelled, &fd), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_eq(ret, PTHREAD_CANCELED, "close() did not act on the pending cancel");
	cr_assert_geq(fcntl(fd, F_GETFD), 0, "the cancelled close() closed the fd");
	cr_assert_eq(close(fd), 0);
}
