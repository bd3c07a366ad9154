/* order_frontends: POSIX and libaio requests on one fd are ordered
 * together, by the same queues, whichever front end submitted them. */
#include "libaio_common.h"

/* O_APPEND: writes go out one at a time in submission order, whichever
 * front end submitted them. */
Test(order_frontends, mixed_appends_keep_submission_order)
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
Test(order_frontends, mixed_pipe_writes_in_order)
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
Test(order_frontends, posix_fsync_orders_libaio_writes)
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
