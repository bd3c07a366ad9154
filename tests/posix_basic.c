/* posix_basic: reads and writes through the POSIX front end return the
 * right bytes and results. */
#include "common.h"

Test(posix_basic, read_returns_file_bytes)
{
	int fd = temp_file(65536, 0);
	unsigned char buf[4096];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 8192);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(buf[i], pattern(8192 + i), "byte %d", i);
	close(fd);
}

Test(posix_basic, write_then_read_back)
{
	int fd = temp_file(0, 0);
	char out[] = "hello, aiopool", in[sizeof out] = { 0 };
	struct aiocb w, r;

	fill_cb(&w, fd, out, sizeof out, 100);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(aio_return(&w), (ssize_t)sizeof out);
	fill_cb(&r, fd, in, sizeof in, 100);
	cr_assert_eq(aio_read(&r), 0);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_return(&r), (ssize_t)sizeof in);
	cr_assert_str_eq(in, out);
	close(fd);
}

Test(posix_basic, short_read_at_end_of_file)
{
	int fd = temp_file(100, 0);
	char buf[4096];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 60);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 40);
	close(fd);
}

Test(posix_basic, many_reads_in_flight_all_complete)
{
	enum { N = 256 };
	int fd = temp_file(N * 512, 0);
	static unsigned char bufs[N][512];
	static struct aiocb cbs[N];

	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 512, (off_t)i * 512);
		cr_assert_eq(aio_read(&cbs[i]), 0, "submit %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), 512);
		for (int j = 0; j < 512; j++)
			cr_assert_eq(bufs[i][j], pattern((long long)i * 512 + j));
	}
	close(fd);
}

Test(posix_basic, served_by_aiopool)
{
	struct aiopool_stats before = stats_now(), after;
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	wait_aio(&cb);
	after = stats_now();
	cr_assert_eq(after.submitted, before.submitted + 1);
	cr_assert_eq(after.completed, before.completed + 1);
	close(fd);
}

/* Programs memset their aiocb and set only the I/O fields: sigev_notify is
 * then SIGEV_SIGNAL (0) with signal 0, which glibc takes as "no signal". */
Test(posix_basic, zeroed_aiocb_means_no_notification)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = sizeof buf;
	cr_assert_eq(cb.aio_sigevent.sigev_notify, SIGEV_SIGNAL);
	cr_assert_eq(aio_read(&cb), 0, "aio_read: %s", strerror(errno));
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	close(fd);
}

/* ---- the fast path --------------------------------------------------------- */

static int notified;

static void count_notification(union sigval v)
{
	__atomic_add_fetch((int *)v.sival_ptr, 1, __ATOMIC_SEQ_CST);
}

Test(posix_basic, fastpath_serves_cached_reads_inline_and_still_notifies)
{
	struct aiopool_stats before, after;
	int fd = temp_file(65536, 0);
	char buf[4096];
	struct aiocb cb;

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
	cr_assert_eq(pread(fd, buf, sizeof buf, 4096), (ssize_t)sizeof buf); /* cached */
	before = stats_now();
	fill_cb(&cb, fd, buf, sizeof buf, 4096);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = count_notification;
	cb.aio_sigevent.sigev_value.sival_ptr = &notified;
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(aio_error(&cb), 0, "done when aio_read returns");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	for (int i = 0; i < (int)sizeof buf; i++)
		cr_assert_eq((unsigned char)buf[i], pattern(4096 + i));
	after = stats_now();
	cr_assert_eq(after.fastpath, before.fastpath + 1);
	cr_assert_eq(after.threads_created, before.threads_created, "no worker needed");
	wait_until(__atomic_load_n(&notified, __ATOMIC_SEQ_CST) == 1, "the notification");
	close(fd);
}

Test(posix_basic, fastpath_switched_off_queues_every_read)
{
	struct aiopool_stats before, after;
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	cr_assert_eq(aiopool_get(AIOPOOL_FASTPATH), 0);
	before = stats_now();
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	after = stats_now();
	cr_assert_eq(after.fastpath, before.fastpath, "nothing inline");
	cr_assert_eq(after.completed, before.completed + 1);
	close(fd);
}

/* A read submitted after an fsync on the same fd may not pass it, inline
 * or not: the fsync is a barrier both ways. */
Test(posix_basic, fastpath_never_passes_a_pending_fsync)
{
	struct blocker b;
	struct aiocb sync, rd;
	int fd = temp_file(4096, 0);
	char buf[64];

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
	one_busy_worker(&b);
	fill_cb(&sync, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &sync), 0);
	fill_cb(&rd, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&rd), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(aio_error(&rd), EINPROGRESS, "the read waits behind the fsync");
	blocker_release(&b);
	cr_assert_eq(wait_aio(&sync), 0);
	cr_assert_eq(wait_aio(&rd), 0);
	cr_assert_eq(aio_return(&rd), (ssize_t)sizeof buf);
	close(fd);
}

/* A read on a file with nothing queued ahead of it completes inline even
 * while every worker is busy elsewhere: the fast path needs no worker. */
Test(posix_basic, fastpath_needs_no_worker)
{
	struct blocker b;
	struct aiocb rd;
	int fd = temp_file(4096, 0);
	char buf[64];

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
	cr_assert_eq(pread(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	one_busy_worker(&b);
	fill_cb(&rd, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&rd), 0);
	cr_assert_eq(aio_error(&rd), 0, "completed inline though the one worker is busy");
	blocker_release(&b);
	close(fd);
}
