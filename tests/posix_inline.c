/* posix_inline.c: what the POSIX fast path (aio_read, lio_listio) leaves
 * to the pool.  A read the submitting thread runs itself shows in its own
 * read count (/proc/self/task/TID/io), so these count the reads rather than
 * time anything: an O_DIRECT read never runs on the submitter. */
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
