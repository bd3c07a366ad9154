/* libaio_basic: the libaio front end's I/O: every opcode, the events it
 * gives back, the ring at the context address, eventfd notification,
 * io_queue_* and callbacks, priorities, and the LIBAIO_0.1 variants. */
#include "libaio_common.h"

#include <dlfcn.h>
#include <stddef.h>

Test(libaio_basic, abi_layouts)
{
	cr_assert_eq(sizeof(struct iocb), 64);
	cr_assert_eq(sizeof(struct io_event), 32);
	cr_assert_eq(offsetof(struct iocb, aio_lio_opcode), 16);
	cr_assert_eq(offsetof(struct iocb, aio_fildes), 20);
	cr_assert_eq(offsetof(struct iocb, u.c.buf), 24);
	cr_assert_eq(offsetof(struct iocb, u.c.offset), 40);
	cr_assert_eq(offsetof(struct iocb, u.c.resfd), 60);
	cr_assert_eq(offsetof(struct io_event, res), 16);
	cr_assert_eq(IO_CMD_POLL, 5);
	cr_assert_eq(IO_CMD_PWRITEV, 8);
}

Test(libaio_basic, pread_returns_file_bytes)
{
	int fd = temp_file(65536, 0);
	io_context_t ctx = new_ctx(4);
	unsigned char buf[4096];
	struct iocb cb;
	struct io_event ev;

	io_prep_pread(&cb, fd, buf, sizeof buf, 8192);
	cb.data = (void *)0x1234;
	cb.key = 77;
	cr_assert_eq(submit1(ctx, &cb), 1);
	cr_assert_eq(cb.key, 0, "io_submit sets key to 0, as the kernel");
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &cb);
	cr_assert_eq(ev.data, (void *)0x1234);
	cr_assert_eq((long)ev.res, 4096);
	cr_assert_eq(ev.res2, 0);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(buf[i], pattern(8192 + i), "byte %d", i);
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
}

Test(libaio_basic, pwrite_then_pread_back)
{
	int fd = temp_file(0, 0);
	io_context_t ctx = new_ctx(2);
	char out[] = "written through libaio", in[sizeof out] = { 0 };
	struct iocb w, r;
	struct io_event ev;

	io_prep_pwrite(&w, fd, out, sizeof out, 1000);
	cr_assert_eq(submit1(ctx, &w), 1);
	ev = get_one(ctx);
	cr_assert_eq((long)ev.res, (long)sizeof out);
	io_prep_pread(&r, fd, in, sizeof in, 1000);
	cr_assert_eq(submit1(ctx, &r), 1);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &r);
	cr_assert_eq((long)ev.res, (long)sizeof in);
	cr_assert_str_eq(in, out);
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, preadv_pwritev_and_the_iovec_array_is_copied)
{
	int fd = temp_file(0, 0);
	io_context_t ctx = new_ctx(2);
	char a[] = "abc", b[] = "defgh", ra[3], rb[5];
	struct iovec *iov = malloc(2 * sizeof *iov);
	struct iovec riov[2] = { { ra, 3 }, { rb, 5 } };
	struct iocb w, r;
	struct io_event ev;

	iov[0] = (struct iovec){ a, 3 };
	iov[1] = (struct iovec){ b, 5 };
	io_prep_pwritev(&w, fd, iov, 2, 10);
	cr_assert_eq(submit1(ctx, &w), 1);
	/* The kernel copies the array at submission: so must we. */
	memset(iov, 0xff, 2 * sizeof *iov);
	free(iov);
	ev = get_one(ctx);
	cr_assert_eq((long)ev.res, 8);
	io_prep_preadv(&r, fd, riov, 2, 10);
	cr_assert_eq(submit1(ctx, &r), 1);
	ev = get_one(ctx);
	cr_assert_eq((long)ev.res, 8);
	cr_assert_eq(memcmp(ra, "abc", 3), 0);
	cr_assert_eq(memcmp(rb, "defgh", 5), 0);
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, rw_flags_are_applied)
{
	int fd = temp_file(0, 0);
	io_context_t ctx = new_ctx(2);
	char x[] = "tail";
	struct iovec iov = { x, 4 };
	struct iocb cb;
	struct stat st;

	cr_assert_eq(pwrite(fd, "0123456789", 10, 0), 10);
	/* RWF_APPEND: the offset is ignored and the data goes at the end. */
	io_prep_pwritev2(&cb, fd, &iov, 1, 0, RWF_APPEND);
	cr_assert_eq(submit1(ctx, &cb), 1);
	cr_assert_eq((long)get_one(ctx).res, 4);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 14);
	/* RWF_DSYNC on a plain pwrite goes through pwritev2. */
	io_prep_pwrite(&cb, fd, x, 4, 2);
	cb.aio_rw_flags = RWF_DSYNC;
	cr_assert_eq(submit1(ctx, &cb), 1);
	cr_assert_eq((long)get_one(ctx).res, 4);
	io_destroy(ctx);
	close(fd);
}

/* Writes with RWF_APPEND on an fd without O_APPEND are appends: one at a
 * time, in submission order.  The first is held in its write (a
 * userfaultfd page) while the others are submitted, with workers to spare. */
Test(libaio_basic, rwf_append_writes_land_in_submission_order)
{
	enum { N = 64, LEN = 16, HELD = 100 };
	static char recs[N][LEN + 1];
	static struct iocb cbs[N];
	struct iocb *ptrs[N];
	struct io_event ev[N];
	char *all = malloc(HELD + N * LEN);
	int fd = temp_file(0, 0);
	io_context_t ctx = new_ctx(N + 1);
	struct uffd u;

	UFFD_OR_SKIP(&u, 1);
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 8), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_RUNNABLE, 8), 0);
	io_prep_pwrite(&cbs[0], fd, uffd_page(&u, 0), HELD, 0);
	for (int i = 1; i < N; i++) {
		snprintf(recs[i], sizeof recs[i], "record %07d\n", i);
		io_prep_pwrite(&cbs[i], fd, recs[i], LEN, 0);
	}
	for (int i = 0; i < N; i++) {
		cbs[i].aio_rw_flags = RWF_APPEND;
		ptrs[i] = &cbs[i];
	}
	cr_assert_eq(submit1(ctx, &cbs[0]), 1);
	cr_assert_eq(uffd_next_fault(&u), 0);   /* the first runs, held */
	cr_assert_eq(io_submit(ctx, N - 1, ptrs + 1), N - 1);
	wait_stats(S.running == 1 && S.queued == N - 1,
	           "the appends should wait behind the first");
	sleep_ms(SETTLE_MS);
	cr_assert_eq(stats_now().running, 1, "an append started beside the first");
	uffd_release(&u, 0, 'A');
	get_events(ctx, ev, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq((long)ev[i].res, ev[i].obj == &cbs[0] ? HELD : LEN);
	cr_assert_eq(pread(fd, all, HELD + N * LEN, 0), HELD + (N - 1) * LEN);
	for (int i = 0; i < HELD; i++)
		cr_assert_eq(all[i], 'A');
	for (int i = 1; i < N; i++)
		cr_assert_arr_eq(all + HELD + (i - 1) * LEN, recs[i], LEN,
		                 "record %d out of place", i);
	free(all);
	io_destroy(ctx);
	close(fd);
	close(u.fd);
	munmap(u.base, u.npages * (size_t)u.pagesz);
	free(u.seen);
	free(u.src);
}

Test(libaio_basic, short_read_and_io_errors_come_in_the_event)
{
	int fd = temp_file(100, 0);
	io_context_t ctx = new_ctx(4);
	char buf[4096];
	struct iocb a, b;
	struct io_event ev;

	io_prep_pread(&a, fd, buf, sizeof buf, 60);
	cr_assert_eq(submit1(ctx, &a), 1);
	cr_assert_eq((long)get_one(ctx).res, 40, "a short read is a short res");
	/* A NULL buffer is accepted by io_submit; the read fails with EFAULT. */
	io_prep_pread(&b, fd, NULL, 10, 0);
	cr_assert_eq(submit1(ctx, &b), 1);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &b);
	cr_assert_eq((long)ev.res, -EFAULT);
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, fsync_and_fdsync)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(2);
	struct iocb a, b;
	struct io_event ev[2];

	io_prep_fsync(&a, fd);
	io_prep_fdsync(&b, fd);
	struct iocb *list[2] = { &a, &b };
	cr_assert_eq(io_submit(ctx, 2, list), 2);
	get_events(ctx, ev, 2);
	cr_assert_eq((long)ev[0].res, 0);
	cr_assert_eq((long)ev[1].res, 0);
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, many_reads_in_flight_all_complete)
{
	enum { N = 512 };
	int fd = temp_file(N * 512, 0);
	io_context_t ctx = new_ctx(N);
	static unsigned char bufs[N][512];
	static struct iocb cbs[N];
	static struct iocb *list[N];
	static struct io_event ev[N];
	static bool seen[N];

	for (int i = 0; i < N; i++) {
		io_prep_pread(&cbs[i], fd, bufs[i], 512, (long long)i * 512);
		cbs[i].data = (void *)(intptr_t)i;
		list[i] = &cbs[i];
	}
	cr_assert_eq(io_submit(ctx, N, list), N);
	get_events(ctx, ev, N);
	for (int k = 0; k < N; k++) {
		int i = (int)(intptr_t)ev[k].data;
		cr_assert(i >= 0 && i < N && !seen[i] && ev[k].obj == &cbs[i]);
		seen[i] = true;
		cr_assert_eq((long)ev[k].res, 512);
	}
	for (int i = 0; i < N; i++)
		for (int j = 0; j < 512; j++)
			cr_assert_eq(bufs[i][j], pattern((long long)i * 512 + j));
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, served_by_aiopool_and_errno_untouched)
{
	struct aiopool_stats before = stats_now();
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(1);
	char buf[16];
	struct iocb cb;

	errno = 4321;
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(submit1(ctx, &cb), 1);
	get_one(ctx);
	cr_assert_eq(io_submit(ctx, -1, NULL), -EINVAL);
	cr_assert_eq(io_getevents(NULL, 0, 0, NULL, NULL), -EINVAL);
	cr_assert_eq(errno, 4321, "errno changed to %d", errno);
	cr_assert_geq(stats_now().submitted, before.submitted + 1);
	io_destroy(ctx);
	cr_assert_eq(errno, 4321);
	close(fd);
}

/* ---- the ring ------------------------------------------------------------ */

Test(libaio_basic, ring_header_as_the_kernel)
{
	io_context_t ctx = new_ctx(32);
	struct test_ring *ring = ring_of(ctx);

	cr_assert_eq(ring->magic, 0xa10a10a1);
	cr_assert_eq(ring->header_length, 32);
	cr_assert_eq(ring->compat_features, 1);
	cr_assert_eq(ring->incompat_features, 0);
	cr_assert_geq(ring->nr, 33, "room for 32 events and the empty slot");
	cr_assert_eq(ring->head, 0);
	cr_assert_eq(ring->tail, 0);
	io_destroy(ctx);
}

/* fio's userspace_reap: events are taken from the ring by the program,
 * which advances head itself; io_getevents and io_submit honour that. */
Test(libaio_basic, userspace_reap_as_fio)
{
	enum { N = 8 };
	int fd = temp_file(N * 64, 0);
	io_context_t ctx = new_ctx(N);
	struct test_ring *ring = ring_of(ctx);
	char bufs[N][64];
	struct iocb cbs[N], *list[N];
	struct io_event ev;
	int reaped = 0;

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			io_prep_pread(&cbs[i], fd, bufs[i], 64, i * 64);
			list[i] = &cbs[i];
		}
		/* The ring is full only if head was honoured: all N fit again. */
		cr_assert_eq(io_submit(ctx, N, list), N, "round %d", round);
		long long end = now_ms() + DEADLINE_MS;
		for (int got = 0; got < N;) {
			unsigned head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
			unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
			if (head == tail) {
				cr_assert(now_ms() < end, "ring stayed empty");
				sleep_ms(1);
				continue;
			}
			ev = ring->events[head];
			cr_assert(ev.obj >= &cbs[0] && ev.obj < &cbs[N]);
			cr_assert_eq((long)ev.res, 64);
			__atomic_store_n(&ring->head, (head + 1) % ring->nr, __ATOMIC_RELEASE);
			got++;
			reaped++;
		}
		struct timespec zero = { 0, 0 };
		cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0,
		             "events reaped from the ring are gone");
	}
	cr_assert_eq(reaped, 3 * N);
	io_destroy(ctx);
	close(fd);
}

/* ---- eventfd --------------------------------------------------------------- */

Test(libaio_basic, eventfd_is_signalled_after_the_event_is_queued)
{
	int fd = temp_file(1 << 16, 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	io_context_t ctx = new_ctx(4);
	char buf[64];
	struct iocb cb;

	cr_assert_geq(efd, 0);
	for (int i = 0; i < 200; i++) {
		struct timespec zero = { 0, 0 };
		struct io_event ev;
		uint64_t v;

		io_prep_pread(&cb, fd, buf, sizeof buf, (i * 64) % (1 << 16));
		io_set_eventfd(&cb, efd);
		cr_assert_eq(submit1(ctx, &cb), 1);
		wait_readable(efd);
		cr_assert_eq(read(efd, &v, sizeof v), (ssize_t)sizeof v);
		cr_assert_eq(v, 1);
		/* Once the eventfd has been read the event must be there. */
		cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 1, "iteration %d", i);
		cr_assert_eq(ev.obj, &cb);
	}
	io_destroy(ctx);
	close(efd);
	close(fd);
}

/* ---- io_queue_* and callbacks ------------------------------------------------ */

static int calls;
static long sum;
static io_context_t cb_ctx;

static void read_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	cr_assert_eq(ctx, cb_ctx);
	cr_assert_eq(res2, 0);
	cr_assert_eq(iocb->aio_lio_opcode, IO_CMD_PREAD);
	calls++;
	sum += res;
}

Test(libaio_basic, queue_run_calls_each_callback)
{
	enum { N = 16 };
	int fd = temp_file(N * 100, 0);
	io_context_t ctx = (io_context_t)0x5555;   /* io_queue_init clears it */
	char bufs[N][100];
	struct iocb cbs[N];
	long long end = now_ms() + DEADLINE_MS;

	cr_assert_eq(io_queue_init(N, &ctx), 0);
	cb_ctx = ctx;
	for (int i = 0; i < N; i++) {
		io_prep_pread(&cbs[i], fd, bufs[i], 100, i * 100);
		io_set_callback(&cbs[i], read_done);
		cr_assert_eq(submit1(ctx, &cbs[i]), 1);
	}
	while (calls < N) {
		struct timespec t = { 0, 100 * 1000000L };
		cr_assert_eq(io_queue_wait(ctx, &t), 0);
		cr_assert_eq(io_queue_run(ctx), 0);
		cr_assert(now_ms() < end, "only %d callbacks", calls);
	}
	cr_assert_eq(calls, N);
	cr_assert_eq(sum, N * 100);
	cr_assert_eq(io_queue_run(ctx), 0, "nothing left");
	cr_assert_eq(io_queue_release(ctx), 0);
	cr_assert_eq(io_queue_release(ctx), -EINVAL);
	close(fd);
}

static void fsync_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	calls++;
	sum = res;
}

Test(libaio_basic, io_fsync_and_io_poll_helpers)
{
	int fd = temp_file(10, 0), p[2];
	io_context_t ctx = new_ctx(4);
	struct iocb a, b;
	long long end = now_ms() + DEADLINE_MS;

	cb_ctx = ctx;
	cr_assert_eq(io_fsync(ctx, &a, fsync_done, fd), 1);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(io_poll(ctx, &b, fsync_done, p[0], POLLIN), 1);
	while (calls < 2) {
		cr_assert_eq(io_queue_run(ctx), 0);
		cr_assert(now_ms() < end);
		sleep_ms(1);
	}
	io_destroy(ctx);
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* ---- priorities ---------------------------------------------------------------- */

/* Submits four reads with the given reqprio values while the only worker
 * is busy, then lets them run: returns the completion order (iocb index). */
static void run_prio(const short prio[4], bool flag, int order[4])
{
	int fd = temp_file(4096, 0), p[2];
	io_context_t ctx = new_ctx(8);

	/* The reads must queue behind the busy worker, not run inline. */
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	char b[4][16], pb;
	struct aiocb blocker;
	struct iocb cbs[4];
	struct io_event ev[4];

	block_worker(p, &blocker, &pb);
	for (int i = 0; i < 4; i++) {
		io_prep_pread(&cbs[i], fd, b[i], 16, i * 16);
		cbs[i].aio_reqprio = prio[i];
		if (flag)
			cbs[i].u.c.flags |= IOCB_FLAG_IOPRIO;
		cbs[i].data = (void *)(intptr_t)i;
		cr_assert_eq(submit1(ctx, &cbs[i]), 1);
	}
	unblock_worker(p, &blocker);
	get_events(ctx, ev, 4);
	for (int i = 0; i < 4; i++)
		order[i] = (int)(intptr_t)ev[i].data;
	io_destroy(ctx);
	close(fd);
}

Test(libaio_basic, ioprio_orders_queued_requests)
{
	const short prio[4] = {
		IOPRIO(IOPRIO_IDLE, 0), IOPRIO(IOPRIO_BE, 7),
		IOPRIO(IOPRIO_RT, 0), IOPRIO(IOPRIO_BE, 0),
	};
	int order[4];

	run_prio(prio, true, order);
	cr_assert_eq(order[0], 2, "RT first (got %d %d %d %d)", order[0], order[1], order[2], order[3]);
	cr_assert_eq(order[1], 3, "then BE 0");
	cr_assert_eq(order[2], 1, "then BE 7");
	cr_assert_eq(order[3], 0, "IDLE last");
}

Test(libaio_basic, reqprio_ignored_without_the_flag)
{
	const short prio[4] = {
		IOPRIO(IOPRIO_IDLE, 0), IOPRIO(IOPRIO_BE, 7),
		IOPRIO(IOPRIO_RT, 0), 12345,
	};
	int order[4];

	run_prio(prio, false, order);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(order[i], i, "submission order without IOCB_FLAG_IOPRIO");
}

Test(libaio_basic, bad_ioprio_is_einval)
{
	int fd = temp_file(16, 0);
	io_context_t ctx = new_ctx(2);
	char b[16];
	struct iocb cb;

	io_prep_pread(&cb, fd, b, 16, 0);
	cb.u.c.flags |= IOCB_FLAG_IOPRIO;
	cb.aio_reqprio = (short)(5 << 13);   /* no such class */
	cr_assert_eq(submit1(ctx, &cb), -EINVAL);
	cb.aio_reqprio = 3;                    /* class NONE with a level */
	cr_assert_eq(submit1(ctx, &cb), -EINVAL);
	io_destroy(ctx);
	close(fd);
}

/* ---- LIBAIO_0.1's variants ---------------------------------------------------- */

Test(libaio_basic, libaio_0_1_variants)
{
	const char *dir = getenv("AIOPOOL_TEST_LIBDIR");
	char path[4096];
	void *h;
	int (*getevents01)(io_context_t, long, struct io_event *, struct timespec *);
	int (*cancel01)(io_context_t, struct iocb *);
	int (*wait01)(io_context_t, struct timespec *);
	int fd = temp_file(100, 0);
	io_context_t ctx = new_ctx(2);
	struct io_event ev[2];
	struct iocb cb;
	char buf[10];

	if (!dir)
		cr_skip_test("AIOPOOL_TEST_LIBDIR is not set");
	snprintf(path, sizeof path, "%s/libaiopool.so", dir);
	h = dlopen(path, RTLD_NOW);
	cr_assert_not_null(h, "dlopen: %s", dlerror());
	getevents01 = (__typeof(getevents01))dlvsym(h, "io_getevents", "LIBAIO_0.1");
	cancel01 = (__typeof(cancel01))dlvsym(h, "io_cancel", "LIBAIO_0.1");
	wait01 = (__typeof(wait01))dlvsym(h, "io_queue_wait", "LIBAIO_0.1");
	cr_assert(getevents01 && cancel01 && wait01);
	cr_assert_neq((void *)getevents01, dlvsym(h, "io_getevents", "LIBAIO_0.4"));

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(submit1(ctx, &cb), 1);
	/* (ctx, nr, events, timeout): waits for at least one. */
	struct timespec t = { 10, 0 };
	cr_assert_eq(getevents01(ctx, 2, ev, &t), 1);
	cr_assert_eq(ev[0].obj, &cb);
	cr_assert_eq((long)ev[0].res, 10);
	cr_assert_eq(wait01(ctx, &(struct timespec){ 0, 0 }), 0);
	/* (ctx, iocb): a finished request cannot be cancelled. */
	cr_assert_eq(cancel01(ctx, &cb), -EINVAL);
	io_destroy(ctx);
	dlclose(h);
	close(fd);
}
