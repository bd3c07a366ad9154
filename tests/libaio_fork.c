/* libaio_fork: contexts across fork(), and POSIX and libaio requests on
 * one fd ordered together by the same queues. */
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

#ifdef AIOPOOL_TEST_SANITIZED
	/* Under AddressSanitizer the child of this fork, taken while a worker
	 * sits in read() and the poller in poll(), hangs before its first
	 * request completes (deterministically when this test runs alone;
	 * not under plain builds, nor with valgrind).  Not understood yet:
	 * see docs/reliability.md. */
	cr_skip_test("hangs under AddressSanitizer; see docs/reliability.md");
#endif

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(pp), 0);
	io_prep_pread(&running, p[0], rbuf, 4, 0);
	cr_assert_eq(submit1(ctx, &running), 1);
	wait_until(stats_now().running == 1);
	io_prep_pread(&queued, fd, qbuf, 8, 0);
	cr_assert_eq(submit1(ctx, &queued), 1);
	io_prep_poll(&poll_cb, pp[0], POLLIN);
	cr_assert_eq(submit1(ctx, &poll_cb), 1);

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

/* ---- POSIX and libaio on one fd ------------------------------------------------ */

/* O_APPEND: writes go out one at a time in submission order, whichever
 * front end submitted them. */
Test(libaio_fork, mixed_appends_keep_submission_order)
{
	enum { N = 200, LEN = 8 };
	int fd = temp_file(0, O_APPEND);
	io_context_t ctx = new_ctx(N);
	static char recs[N][LEN + 1];
	static struct aiocb pcb[N];
	static struct iocb lcb[N];
	char got[N * LEN];

	cr_assert_eq(fcntl(fd, F_SETFL, O_APPEND), 0);
	for (int i = 0; i < N; i++) {
		snprintf(recs[i], sizeof recs[i], "%c%06d\n", i % 2 ? 'L' : 'P', i);
		if (i % 2) {
			io_prep_pwrite(&lcb[i], fd, recs[i], LEN, 0);
			cr_assert_eq(submit1(ctx, &lcb[i]), 1);
		} else {
			fill_cb(&pcb[i], fd, recs[i], LEN, 0);
			cr_assert_eq(aio_write(&pcb[i]), 0);
		}
	}
	struct io_event ev[N / 2];
	get_events(ctx, ev, N / 2);
	for (int i = 0; i < N; i += 2) {
		cr_assert_eq(wait_aio(&pcb[i]), 0);
		cr_assert_eq(aio_return(&pcb[i]), LEN);
	}
	cr_assert_eq(pread(fd, got, sizeof got, 0), (ssize_t)sizeof got);
	for (int i = 0; i < N; i++)
		cr_assert_eq(memcmp(got + i * LEN, recs[i], LEN), 0,
		             "record %d out of order: %.8s", i, got + i * LEN);
	io_destroy(ctx);
	close(fd);
}

/* A pipe is served one request at a time, in order, across front ends. */
Test(libaio_fork, mixed_pipe_writes_in_order)
{
	enum { N = 100 };
	int p[2];
	io_context_t ctx = new_ctx(N);
	static char recs[N][4];
	static struct aiocb pcb[N];
	static struct iocb lcb[N];
	char got[N * 4];

	cr_assert_eq(pipe(p), 0);
	for (int i = 0; i < N; i++) {
		snprintf(recs[i], 4, "%03d", i);
		if (i % 3 == 0) {
			fill_cb(&pcb[i], p[1], recs[i], 3, 0);
			cr_assert_eq(aio_write(&pcb[i]), 0);
		} else {
			io_prep_pwrite(&lcb[i], p[1], recs[i], 3, 0);
			cr_assert_eq(submit1(ctx, &lcb[i]), 1);
		}
	}
	size_t have = 0;
	while (have < N * 3) {
		wait_readable(p[0]);
		ssize_t n = read(p[0], got + have, N * 3 - have);
		cr_assert_gt(n, 0);
		have += (size_t)n;
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(memcmp(got + i * 3, recs[i], 3), 0, "record %d", i);
	int nl = 0;
	for (int i = 0; i < N; i++)
		nl += i % 3 != 0;
	struct io_event ev[N];
	get_events(ctx, ev, nl);
	io_destroy(ctx);
	close(p[0]);
	close(p[1]);
}

/* An fsync from one front end is a barrier for the other's writes. */
Test(libaio_fork, posix_fsync_orders_libaio_writes)
{
	int fd = temp_file(0, 0);
	io_context_t ctx = new_ctx(8);
	char a[] = "first", b[] = "second";
	struct iocb w1, w2;
	struct aiocb sync;
	struct io_event ev[2];

	io_prep_pwrite(&w1, fd, a, 5, 0);
	w1.data = (void *)1;
	cr_assert_eq(submit1(ctx, &w1), 1);
	fill_cb(&sync, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &sync), 0);
	io_prep_pwrite(&w2, fd, b, 6, 0);
	w2.data = (void *)2;
	cr_assert_eq(submit1(ctx, &w2), 1);
	get_events(ctx, ev, 2);
	cr_assert_eq(ev[0].data, (void *)1, "the write before the fsync first");
	cr_assert_eq(ev[1].data, (void *)2);
	cr_assert_eq(wait_aio(&sync), 0);
	char got[6];
	cr_assert_eq(pread(fd, got, 6, 0), 6);
	cr_assert_eq(memcmp(got, "second", 6), 0, "the later write last");
	io_destroy(ctx);
	close(fd);
}
