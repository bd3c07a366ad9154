/* posix_inline.c: what the POSIX fast path (aio_read, lio_listio) leaves
 * to the pool.  A read the submitting thread runs itself shows in its own
 * read count (/proc/self/task/TID/io), so these count the reads rather than
 * time anything: an O_DIRECT read never runs on the submitter, a read
 * larger than the per-read cap neither, and one call runs at most its
 * budget of reads inline. */
#include "inline_common.h"

#define DIRECT_SIZE (64 * 1024)

static void fastpath_on(void)
{
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
}

/* Waits for cb, checks that it read n bytes of pattern at off. */
static void assert_read(struct aiocb *cb, size_t n, off_t off)
{
	cr_assert_eq(wait_aio(cb), 0, "read at %lld: %s", (long long)off,
	             strerror(aio_error(cb)));
	cr_assert_eq(aio_return(cb), (ssize_t)n);
	assert_pattern((const unsigned char *)cb->aio_buf, n, off);
}

/* An fd with a queue that knows it as buffered: an fsync made the queue
 * before F_SETFL turned O_DIRECT on. */
static int direct_with_queue(int fd)
{
	int d = reopen(fd, 0);
	struct aiocb sync;

	memset(&sync, 0, sizeof sync);
	sync.aio_fildes = d;
	cr_assert_eq(aio_fsync(O_SYNC, &sync), 0);
	cr_assert_eq(wait_aio(&sync), 0);
	cr_assert_eq(aio_return(&sync), 0);
	if (fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_DIRECT) < 0)
		cr_skip_test("F_SETFL O_DIRECT: %s", strerror(errno));
	return d;
}

static void direct_aio_read(int d)
{
	unsigned char *buf = page_buf(4096);
	struct aiocb cb;
	struct thread_io a, b;

	fill_cb(&cb, d, buf, 4096, 8192);
	a = thread_io_now();
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	b = thread_io_now();
	cr_assert_eq(reads_between(a, b), 0,
	             "aio_read ran %llu O_DIRECT read(s) on the submitting thread",
	             reads_between(a, b));
	assert_read(&cb, 4096, 8192);
	free(buf);
}

static void direct_lio(int d)
{
	enum { N = 4 };
	unsigned char *buf = page_buf(N * 4096);
	struct aiocb cbs[N], *list[N];
	struct thread_io a, b;

	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], d, buf + i * 4096, 4096, i * 4096);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	a = thread_io_now();
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, N, NULL), 0, "lio_listio: %s",
	             strerror(errno));
	b = thread_io_now();
	cr_assert_eq(reads_between(a, b), 0,
	             "lio_listio ran %llu O_DIRECT read(s) on the submitting thread",
	             reads_between(a, b));
	for (int i = 0; i < N; i++)
		assert_read(&cbs[i], 4096, i * 4096);
	free(buf);
}

Test(posix_inline, o_direct_aio_read_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d = reopen(fd, O_DIRECT);

	fastpath_on();
	direct_aio_read(d);
	close(d);
	close(fd);
}

Test(posix_inline, o_direct_aio_read_on_a_queued_fd_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d;

	fastpath_on();
	d = direct_with_queue(fd);
	direct_aio_read(d);
	close(d);
	close(fd);
}

Test(posix_inline, o_direct_lio_listio_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d = reopen(fd, O_DIRECT);

	fastpath_on();
	direct_lio(d);
	close(d);
	close(fd);
}

Test(posix_inline, o_direct_lio_listio_on_a_queued_fd_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d;

	fastpath_on();
	d = direct_with_queue(fd);
	direct_lio(d);
	close(d);
	close(fd);
}

/* With the only worker held on a pipe, what goes to the pool stays queued
 * until the test lets it go: a request done at return was done by the
 * submitter. */
Test(posix_inline, a_large_aio_read_is_left_to_the_pool, .timeout = 60)
{
	const size_t n = 16 << 20;
	int fd = cached_file(n);
	unsigned char *buf = page_buf(n);
	struct blocker blk;
	struct aiocb cb;

	fastpath_on();
	one_busy_worker(&blk);
	fill_cb(&cb, fd, buf, n, 0);
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	cr_assert_eq(aio_error(&cb), EINPROGRESS,
	             "a 16 MiB cached read was done inside aio_read");
	blocker_release(&blk);
	assert_read(&cb, n, 0);
	free(buf);
	close(fd);
}

Test(posix_inline, lio_nowait_returns_before_a_list_of_large_cached_reads_is_done,
     .timeout = 60)
{
	enum { N = 10 };
	const size_t n = 16 << 20;
	int fd = cached_file(n), pending = 0;
	struct aiocb cbs[N], *list[N];
	struct blocker blk;
	struct thread_io a, b;

	fastpath_on();
	one_busy_worker(&blk);
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, page_buf(n), n, 0);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	a = thread_io_now();
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, N, NULL), 0, "lio_listio: %s",
	             strerror(errno));
	b = thread_io_now();
	for (int i = 0; i < N; i++)
		pending += aio_error(&cbs[i]) == EINPROGRESS;
	cr_assert_gt(pending, 0, "lio_listio(LIO_NOWAIT) returned with all %d "
	             "reads done (%llu read on the submitting thread)", N,
	             reads_between(a, b));
	cr_assert_lt(reads_between(a, b), N);
	blocker_release(&blk);
	for (int i = 0; i < N; i++) {
		assert_read(&cbs[i], n, 0);
		free((void *)cbs[i].aio_buf);
	}
	close(fd);
}

/* Reads each well under the per-read cap: the call's budget is what keeps
 * the submitter from doing the whole list. */
Test(posix_inline, lio_listio_runs_at_most_its_budget_inline, .timeout = 60)
{
	enum { N = 1024, SZ = 16 * 1024 };
	int fd = cached_file((size_t)N * SZ);
	unsigned char *buf = page_buf((size_t)N * SZ);
	static struct aiocb cbs[N], *list[N];
	struct blocker blk;
	struct thread_io a, b;

	fastpath_on();
	one_busy_worker(&blk);
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, buf + (size_t)i * SZ, SZ, (off_t)i * SZ);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	a = thread_io_now();
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, N, NULL), 0, "lio_listio: %s",
	             strerror(errno));
	b = thread_io_now();
	cr_assert_lt(bytes_between(a, b), (unsigned long long)N * SZ / 2,
	             "the submitting thread read %llu of the list's %d bytes itself",
	             bytes_between(a, b), N * SZ);
	blocker_release(&blk);
	for (int i = 0; i < N; i++)
		assert_read(&cbs[i], SZ, (off_t)i * SZ);
	free(buf);
	close(fd);
}

struct lio_wait_arg {
	struct aiocb **list;
	int n, rc, err;
};

static void *lio_wait_thread(void *p)
{
	struct lio_wait_arg *a = p;

	a->rc = lio_listio(LIO_WAIT, a->list, a->n, NULL);
	a->err = errno;
	return NULL;
}

/* A LIO_WAIT caller waits for its whole list whoever reads it, so no
 * budget keeps it from reading the cached list itself.  The only worker is
 * held in a read, so none is awake to take reads: what the caller does
 * not read inline stays queued, and the stats count the two apart once
 * the list is submitted. */
Test(posix_inline, lio_wait_reads_past_the_budget_itself, .timeout = 60)
{
	enum { N = 256, SZ = 16 * 1024 };
	int fd = cached_file((size_t)N * SZ);
	unsigned char *buf = page_buf((size_t)N * SZ);
	static struct aiocb cbs[N], *list[N];
	struct lio_wait_arg arg = { list, N, -1, 0 };
	struct blocker blk;
	pthread_t t;

	fastpath_on();
	one_busy_worker(&blk);
	wait_thread_in_read(blk.p[0]);
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, buf + (size_t)i * SZ, SZ, (off_t)i * SZ);
		cbs[i].aio_lio_opcode = LIO_READ;
		list[i] = &cbs[i];
	}
	cr_assert_eq(pthread_create(&t, NULL, lio_wait_thread, &arg), 0);
	wait_stats(S.fastpath + S.queued == N, "the list was never all submitted");
	cr_assert_gt(stats_now().fastpath, (unsigned long long)N / 2,
	             "only %llu of the LIO_WAIT list's %d cached reads ran on the caller",
	             stats_now().fastpath, N);
	blocker_release(&blk);
	pthread_join(t, NULL);
	cr_assert_eq(arg.rc, 0, "lio_listio: %s", strerror(arg.err));
	for (int i = 0; i < N; i++)
		assert_read(&cbs[i], SZ, (off_t)i * SZ);
	free(buf);
	close(fd);
}

static void *submit_one_and_leave(void *p)
{
	cr_assert_eq(aio_read(p), 0, "aio_read: %s", strerror(errno));
	return NULL;
}

/* Reads fd's first n blocks of sz, one at a time (a depth of one of this
 * thread's own, on top of whatever it holds), and asserts that every one
 * ran on this thread: the stats count n more fast-path reads. */
static void assert_reads_stay_inline(int fd, int n, size_t sz, const char *what)
{
	unsigned char *buf = page_buf(sz);
	struct aiopool_stats before = stats_now(), after;
	struct aiocb cb;

	for (int i = 0; i < n; i++) {
		fill_cb(&cb, fd, buf, sz, (off_t)i * (off_t)sz);
		cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
		assert_read(&cb, sz, (off_t)i * (off_t)sz);
	}
	after = stats_now();
	cr_assert_eq(after.fastpath - before.fastpath, (unsigned long long)n,
	             "%llu of %d reads (%s) went to the pool",
	             n - (after.fastpath - before.fastpath), n, what);
	free(buf);
}

/* The queue depth that lets the fast path hand a read to a worker is the
 * submitting thread's own.  Another thread's request still unreaped
 * makes no depth here: every read of a thread at a depth of one stays on
 * it (at a depth of two, one read of the offload size in 64 would go to
 * the pool to wake a worker). */
Test(posix_inline, another_threads_request_makes_no_queue_depth, .timeout = 60)
{
	enum { N = 256, SZ = 64 * 1024 };
	int fd = cached_file((size_t)N * SZ);
	unsigned char *other = page_buf(SZ);
	struct aiocb theirs;
	pthread_t t;

	fastpath_on();
	fill_cb(&theirs, fd, other, SZ, 0);
	cr_assert_eq(pthread_create(&t, NULL, submit_one_and_leave, &theirs), 0);
	pthread_join(t, NULL);
	cr_assert_eq(wait_aio(&theirs), 0);   /* done, not taken back */
	assert_reads_stay_inline(fd, N, SZ, "at a depth of one");
	cr_assert_eq(aio_return(&theirs), SZ);
	free(other);
	close(fd);
}

/* Handing a small cached read to a worker costs the submitter more than
 * reading it: a read under the offload size stays on the submitting
 * thread even at a queue depth (here two: one request left unreaped),
 * where a larger one may go to the pool (one in 64 to wake a worker). */
Test(posix_inline, a_small_read_at_a_depth_stays_on_the_submitter, .timeout = 60)
{
	enum { N = 256, SZ = 4096 };
	int fd = cached_file((size_t)N * SZ);
	unsigned char *held = page_buf(SZ);
	struct aiocb first;

	fastpath_on();
	fill_cb(&first, fd, held, SZ, 0);
	cr_assert_eq(aio_read(&first), 0, "aio_read: %s", strerror(errno));
	cr_assert_eq(wait_aio(&first), 0);   /* done, not taken back */
	assert_reads_stay_inline(fd, N, SZ, "small, at a depth of two");
	cr_assert_eq(aio_return(&first), SZ);
	free(held);
	close(fd);
}
