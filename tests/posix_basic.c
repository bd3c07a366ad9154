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
