/* libaio_fork: libaio contexts across fork(). */
#include "libaio_common.h"

#include <sys/wait.h>

/* Runs fn in a child; returns its exit status (a failed check in the child
 * exits with the line number). */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(fn(arg));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child died (status 0x%x)", status);
	return WEXITSTATUS(status);
}

#define CHILD_CHECK(c) do { if (!(c)) return __LINE__ % 250 + 1; } while (0)

struct fork_arg {
	io_context_t parent_ctx;
	int fd;
};

static int child_body(void *p)
{
	struct fork_arg *a = p;
	struct io_event ev;
	struct iocb cb, *list[1] = { &cb };
	struct timespec zero = { 0, 0 };
	io_context_t mine = 0;
	char buf[16];

	/* The parent's context is not the child's. */
	CHILD_CHECK(io_submit(a->parent_ctx, 0, NULL) == -EINVAL);
	io_prep_pread(&cb, a->fd, buf, sizeof buf, 0);
	CHILD_CHECK(io_submit(a->parent_ctx, 1, list) == -EINVAL);
	CHILD_CHECK(io_getevents(a->parent_ctx, 0, 1, &ev, &zero) == -EINVAL);
	CHILD_CHECK(io_cancel(a->parent_ctx, &cb, &ev) == -EINVAL);
	CHILD_CHECK(io_destroy(a->parent_ctx) == -EINVAL);
	/* A new one works. */
	CHILD_CHECK(io_setup(4, &mine) == 0);
	CHILD_CHECK(mine != a->parent_ctx);
	CHILD_CHECK(io_submit(mine, 1, list) == 1);
	struct timespec t = { 10, 0 };
	CHILD_CHECK(io_getevents(mine, 1, 1, &ev, &t) == 1);
	CHILD_CHECK(ev.obj == &cb && (long)ev.res == 16);
	CHILD_CHECK(buf[0] == (char)pattern(0));
	/* POLL works in the child too (its own poller). */
	int pp[2];
	CHILD_CHECK(pipe(pp) == 0);
	io_prep_poll(&cb, pp[0], POLLIN);
	CHILD_CHECK(io_submit(mine, 1, list) == 1);
	CHILD_CHECK(write(pp[1], "x", 1) == 1);
	CHILD_CHECK(io_getevents(mine, 1, 1, &ev, &t) == 1);
	CHILD_CHECK((long)ev.res & POLLIN);
	CHILD_CHECK(io_destroy(mine) == 0);
	return 0;
}

Test(libaio_fork, parent_contexts_are_einval_in_the_child)
{
	int fd = temp_file(4096, 0);
	struct fork_arg a = { new_ctx(8), fd };

	cr_assert_eq(in_child(child_body, &a), 0);
	/* And the parent's context still works. */
	char buf[8];
	struct iocb cb;
	io_prep_pread(&cb, fd, buf, 8, 0);
	cr_assert_eq(submit1(a.parent_ctx, &cb), 1);
	cr_assert_eq((long)get_one(a.parent_ctx).res, 8);
	io_destroy(a.parent_ctx);
	close(fd);
}

/* Forked while the parent has requests queued, running and polling. */
Test(libaio_fork, fork_with_requests_in_flight)
{
	int fd = temp_file(4096, 0), p[2], pp[2];
	io_context_t ctx = new_ctx(8);
	struct fork_arg a = { ctx, fd };
	char rbuf[4], qbuf[8];
	struct iocb running, queued, poll_cb;
	struct io_event ev[3];

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(pp), 0);
	io_prep_pread(&running, p[0], rbuf, 4, 0);
	cr_assert_eq(submit1(ctx, &running), 1);
	wait_thread_in_read(p[0]);
	io_prep_pread(&queued, fd, qbuf, 8, 0);
	cr_assert_eq(submit1(ctx, &queued), 1);
	io_prep_poll(&poll_cb, pp[0], POLLIN);
	cr_assert_eq(submit1(ctx, &poll_cb), 1);
	/* The fork comes once the worker and the poller sleep in their calls:
	 * a thread still starting may hold a lock of AddressSanitizer's
	 * allocator, which its fork leaves held in the child. */
	wait_thread_in_poll();

	cr_assert_eq(in_child(child_body, &a), 0);

	cr_assert_eq(write(p[1], "abcd", 4), 4);
	cr_assert_eq(write(pp[1], "x", 1), 1);
	get_events(ctx, ev, 3);
	io_destroy(ctx);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(pp[0]);
	close(pp[1]);
}
