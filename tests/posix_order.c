/* posix_order: the engine's ordering rules seen through the POSIX front
 * end: O_APPEND writes, serial fds (pipes, FIFOs, sockets, ttys), the
 * aio_fsync barrier, aio_reqprio, and per-fd concurrency on a regular file.
 *
 * Requests that must be held running use userfaultfd buffers (common.h):
 * the test sees exactly which request a worker has started, so the orders
 * below are observed, not inferred from timing.  Those tests pin
 * AIOPOOL_FASTPATH to 0: an inline read into such a buffer would block the
 * submitting thread, which is the one resolving the faults.  With several
 * workers they also raise AIOPOOL_RUNNABLE: a read held in a page fault
 * looks to the pool like one served from the cache, which it runs on only
 * about one thread per CPU. */
#include "common.h"

#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_order, .timeout = 60);

static void rd(struct aiocb *cb, int fd, void *buf, size_t n, off_t off, int reqprio)
{
	fill_cb(cb, fd, buf, n, off);
	cb->aio_reqprio = reqprio;
	cr_assert_eq(aio_read(cb), 0, "aio_read: %s", strerror(errno));
}

static void wr(struct aiocb *cb, int fd, const void *buf, size_t n, off_t off, int reqprio)
{
	fill_cb(cb, fd, (void *)buf, n, off);
	cb->aio_reqprio = reqprio;
	cr_assert_eq(aio_write(cb), 0, "aio_write: %s", strerror(errno));
}

/* For requests held in page faults: no fast path, and `threads` workers
 * that may all be runnable at once. */
static void hold_setup(int threads)
{
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, threads), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_RUNNABLE, threads), 0);
}

/* Releases the requests held on u's pages one by one as they start, and
 * checks they start in the order `want` (page numbers). */
static void expect_start_order(struct uffd *u, const long *want, int n)
{
	for (int i = 0; i < n; i++) {
		long got = uffd_next_fault(u);
		cr_assert_eq(got, want[i], "start #%d: request %ld ran, expected %ld",
		             i, got, want[i]);
		uffd_release(u, (size_t)got, 0);
	}
}

/* ---- O_APPEND ------------------------------------------------------------- */

Test(posix_order, append_writes_land_in_submission_order)
{
	enum { N = 200, LEN = 16 };
	int fd = temp_file(0, O_APPEND);
	static char recs[N][LEN + 1];
	static struct aiocb cbs[N];
	char *all = malloc(N * LEN);

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 8), 0);
	for (int i = 0; i < N; i++) {
		snprintf(recs[i], sizeof recs[i], "record %07d\n", i);
		/* The offset is ignored on an O_APPEND fd. */
		wr(&cbs[i], fd, recs[i], LEN, 0, 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), LEN);
	}
	cr_assert_eq(pread(fd, all, N * LEN, 0), N * LEN);
	for (int i = 0; i < N; i++)
		cr_assert_arr_eq(all + i * LEN, recs[i], LEN, "record %d out of place", i);
	free(all);
	close(fd);
}

Test(posix_order, append_writes_run_one_at_a_time)
{
	struct uffd u;
	int fd = temp_file(512, O_APPEND);
	char rbuf[512], tail[] = "second write";
	unsigned char file[512 + 100 + sizeof tail];
	struct aiocb w1, w2, r;

	UFFD_OR_SKIP(&u, 1);
	hold_setup(4);

	wr(&w1, fd, uffd_page(&u, 0), 100, 0, 0);
	cr_assert_eq(uffd_next_fault(&u), 0);   /* w1 runs, held in its write */
	/* A read on the same fd is not ordered: it runs beside w1. */
	rd(&r, fd, rbuf, sizeof rbuf, 0, 0);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_return(&r), 512);
	wr(&w2, fd, tail, sizeof tail, 0, 0);

	/* w2 waits for w1, with workers to spare. */
	wait_stats(S.running == 1 && S.queued == 1, "w2 should be queued behind w1");
	sleep_ms(SETTLE_MS);
	assert_in_progress(&w2);
	cr_assert_eq(stats_now().running, 1, "w2 started while w1 ran");

	uffd_release(&u, 0, 'A');
	cr_assert_eq(wait_aio(&w1), 0);
	cr_assert_eq(wait_aio(&w2), 0);
	cr_assert_eq(aio_return(&w1), 100);
	cr_assert_eq(aio_return(&w2), (ssize_t)sizeof tail);
	cr_assert_eq(pread(fd, file, sizeof file, 0), (ssize_t)sizeof file);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(file[512 + i], 'A');
	cr_assert_arr_eq(file + 612, tail, sizeof tail);
	close(fd);
}

Test(posix_order, priority_never_reorders_append_writes)
{
	static const int prio[] = { 20, 10, 0, 0, 20, 5, 0, 15 };
	enum { N = sizeof prio / sizeof prio[0] };
	struct blocker b;
	struct aiocb cbs[N];
	char data[N], got[N + 1] = { 0 };
	int fd = temp_file(0, O_APPEND);

	one_busy_worker(&b);
	for (int i = 0; i < N; i++) {
		data[i] = (char)('A' + i);
		wr(&cbs[i], fd, &data[i], 1, 0, prio[i]);
	}
	blocker_release(&b);
	for (int i = 0; i < N; i++)
		cr_assert_eq(wait_aio(&cbs[i]), 0);
	cr_assert_eq(pread(fd, got, N, 0), N);
	cr_assert_str_eq(got, "ABCDEFGH");
	close(fd);
}

/* O_APPEND is the request's, taken at submission: fcntl(F_SETFL) adding it
 * to an fd that already has a queue orders the writes submitted after. */
Test(posix_order, append_added_by_setfl_orders_later_writes)
{
	struct uffd u;
	int fd = temp_file(512, 0);
	char tail[] = "second write";
	unsigned char file[512 + 100 + sizeof tail];
	struct aiocb w0, w1, w2;

	UFFD_OR_SKIP(&u, 1);
	hold_setup(4);
	wr(&w0, fd, "y", 1, 0, 0);             /* the fd's queue: not O_APPEND */
	cr_assert_eq(wait_aio(&w0), 0);
	cr_assert_eq(aio_return(&w0), 1);
	cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND), 0);

	wr(&w1, fd, uffd_page(&u, 0), 100, 0, 0);
	cr_assert_eq(uffd_next_fault(&u), 0);   /* w1 runs, held in its write */
	wr(&w2, fd, tail, sizeof tail, 0, 0);
	wait_stats(S.running == 1 && S.queued == 1,
	           "w2, an append, should be queued behind w1");
	sleep_ms(SETTLE_MS);
	assert_in_progress(&w2);
	cr_assert_eq(stats_now().running, 1, "w2 started while w1 ran");

	uffd_release(&u, 0, 'A');
	cr_assert_eq(wait_aio(&w1), 0);
	cr_assert_eq(wait_aio(&w2), 0);
	cr_assert_eq(aio_return(&w1), 100);
	cr_assert_eq(aio_return(&w2), (ssize_t)sizeof tail);
	cr_assert_eq(pread(fd, file, sizeof file, 0), (ssize_t)sizeof file);
	cr_assert_eq(file[0], 'y');
	for (int i = 0; i < 100; i++)
		cr_assert_eq(file[512 + i], 'A', "byte %d of the first append", i);
	cr_assert_arr_eq(file + 612, tail, sizeof tail);
	close(fd);
	close(u.fd);
	munmap(u.base, u.npages * (size_t)u.pagesz);
	free(u.seen);
	free(u.src);
}

/* And F_SETFL clearing O_APPEND: later writes are positional, land at their
 * offsets and run side by side like any on a regular file. */
Test(posix_order, append_cleared_by_setfl_makes_writes_positional)
{
	struct uffd u;
	int fd = temp_file(0, O_APPEND);
	unsigned char file[2100];
	struct aiocb w0, w1, w2;

	UFFD_OR_SKIP(&u, 2);
	hold_setup(4);
	wr(&w0, fd, "y", 1, 0, 0);             /* the fd's queue: O_APPEND */
	cr_assert_eq(wait_aio(&w0), 0);
	cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_APPEND), 0);

	wr(&w1, fd, uffd_page(&u, 0), 100, 1000, 0);
	cr_assert_eq(uffd_next_fault(&u), 0);   /* w1 runs, held in its write */
	wr(&w2, fd, uffd_page(&u, 1), 100, 2000, 0);
	/* w2 is not ordered behind w1 (the kernel may hold it on the inode
	 * lock: the engine has started it). */
	wait_stats(S.running == 2 && S.queued == 0,
	           "w2, positional, should run beside w1");
	uffd_release(&u, 0, 'A');
	uffd_release(&u, 1, 'B');
	cr_assert_eq(wait_aio(&w1), 0);
	cr_assert_eq(wait_aio(&w2), 0);
	cr_assert_eq(aio_return(&w1), 100);
	cr_assert_eq(aio_return(&w2), 100);
	cr_assert_eq(pread(fd, file, sizeof file, 0), (ssize_t)sizeof file);
	cr_assert_eq(file[0], 'y');
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(file[1000 + i], 'A', "byte %d of w1", i);
		cr_assert_eq(file[2000 + i], 'B', "byte %d of w2", i);
	}
	close(fd);
	close(u.fd);
	munmap(u.base, u.npages * (size_t)u.pagesz);
	free(u.seen);
	free(u.src);
}

/* ---- serial fds: pipes and sockets --------------------------------------- */

/* Reads of one byte each on a serial fd: one runs, the others wait with
 * workers to spare, and byte i goes to read i.  Later reads get higher
 * priorities, which must not matter. */
static void check_serial_reads(int rfd, int wfd, const char *what)
{
	enum { N = 8 };
	char bufs[N];
	struct aiocb cbs[N];

	for (int i = 0; i < N; i++)
		rd(&cbs[i], rfd, &bufs[i], 1, 0, N - 1 - i);
	wait_stats(S.running == 1 && S.queued == N - 1,
	           "%s: one read runs, the others wait", what);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(stats_now().running, 1, "%s: a second read started", what);

	for (int i = 0; i < N; i++) {
		char c = (char)('a' + i);
		put(wfd, &c, 1);
		cr_assert_eq(wait_aio(&cbs[i]), 0, "%s: read %d", what, i);
		cr_assert_eq(aio_return(&cbs[i]), 1);
		cr_assert_eq(bufs[i], c, "%s: read %d got byte %c", what, i, bufs[i]);
		for (int j = i + 1; j < N; j++)
			assert_in_progress(&cbs[j]);
	}
}

Test(posix_order, pipe_requests_run_one_at_a_time_in_submission_order)
{
	int p[2];

	make_pipe(p);
	check_serial_reads(p[0], p[1], "pipe");
	close(p[0]);
	close(p[1]);
}

Test(posix_order, fifo_requests_run_one_at_a_time_in_submission_order)
{
	char path[] = "/tmp/aiopool-fifo-XXXXXX";
	int fd;

	cr_assert_not_null(mkdtemp(path));
	{
		char fifo[sizeof path + 8];
		snprintf(fifo, sizeof fifo, "%s/fifo", path);
		cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", strerror(errno));
		fd = open(fifo, O_RDWR | O_CLOEXEC);   /* both ends, without blocking */
		cr_assert_geq(fd, 0, "open: %s", strerror(errno));
		unlink(fifo);
		rmdir(path);
	}
	check_serial_reads(fd, fd, "FIFO");
	close(fd);
}

Test(posix_order, socket_requests_run_one_at_a_time_in_submission_order)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	check_serial_reads(sv[0], sv[1], "socket");
	close(sv[0]);
	close(sv[1]);
}

Test(posix_order, tty_requests_run_one_at_a_time_in_submission_order)
{
	struct termios t;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s;

	if (m < 0)
		cr_skip_test("no pseudo-terminals here: %s", strerror(errno));
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(s, 0, "open %s: %s", ptsname(m), strerror(errno));
	cr_assert_eq(tcgetattr(s, &t), 0);
	cfmakeraw(&t);   /* bytes as they come, no line editing, no echo */
	cr_assert_eq(tcsetattr(s, TCSANOW, &t), 0);
	check_serial_reads(s, m, "tty");
	close(s);
	close(m);
}

Test(posix_order, socket_writes_run_one_at_a_time_in_submission_order)
{
	enum { N = 16, LEN = 32 };
	int sv[2], small = 4096;
	long filled = 0;
	char recs[N][LEN], *sink;
	struct aiocb cbs[N];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	/* Fill the socket so that the first write blocks. */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		char junk[256] = { 0 };
		ssize_t n = write(sv[0], junk, sizeof junk);
		if (n < 0) {
			cr_assert_eq(errno, EAGAIN);
			break;
		}
		filled += n;
	}
	fcntl(sv[0], F_SETFL, 0);

	for (int i = 0; i < N; i++) {
		memset(recs[i], 'a' + i, LEN);
		wr(&cbs[i], sv[0], recs[i], LEN, 0, N - 1 - i);
	}
	wait_stats(S.running == 1 && S.queued == N - 1,
	           "one write runs, the others wait, with workers to spare");
	sleep_ms(SETTLE_MS);
	cr_assert_eq(stats_now().running, 1, "a second write on the socket started");

	sink = malloc(filled + N * LEN);
	get(sv[1], sink, filled + N * LEN);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), LEN);
		cr_assert_arr_eq(sink + filled + i * LEN, recs[i], LEN,
		                 "record %d out of place", i);
	}
	free(sink);
	close(sv[0]);
	close(sv[1]);
}

Test(posix_order, socket_write_waits_for_earlier_read)
{
	int sv[2];
	char in[4], out[] = "pong";
	struct aiocb r, w;
	struct pollfd pf;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	rd(&r, sv[0], in, sizeof in, 0, 0);        /* blocks: nothing to read */
	wr(&w, sv[0], out, 4, 0, 0);               /* would not block */
	wait_stats(S.running == 1 && S.queued == 1, "the write waits for the read");
	sleep_ms(SETTLE_MS);
	pf = (struct pollfd){ sv[1], POLLIN, 0 };
	cr_assert_eq(poll(&pf, 1, 0), 0, "the write ran before the read before it");
	assert_in_progress(&w);

	put(sv[1], "ping", 4);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_arr_eq(in, "ping", 4);
	cr_assert_eq(read(sv[1], in, 4), 4);
	cr_assert_arr_eq(in, "pong", 4);
	close(sv[0]);
	close(sv[1]);
}

/* ---- the aio_fsync barrier ----------------------------------------------- */

Test(posix_order, fsync_waits_for_earlier_requests_and_holds_later_ones)
{
	struct uffd u;
	int fd = temp_file(65536, 0);
	char buf[4096];
	struct aiocb w1, r1, f, r2;

	UFFD_OR_SKIP(&u, 2);
	hold_setup(8);

	/* Earlier requests, of the lowest priority. */
	wr(&w1, fd, uffd_page(&u, 0), 4096, 0, AIO_PRIO_DELTA_MAX);
	cr_assert_eq(uffd_next_fault(&u), 0);     /* w1 held in its write */
	rd(&r1, fd, buf, sizeof buf, 8192, AIO_PRIO_DELTA_MAX);
	fill_cb(&f, fd, NULL, 0, 0);
	cr_assert_eq(aio_fsync(O_SYNC, &f), 0, "aio_fsync: %s", strerror(errno));
	/* A later request, of the highest priority. */
	rd(&r2, fd, uffd_page(&u, 1), 4096, 0, 0);

	cr_assert_eq(wait_aio(&r1), 0);           /* reads beside w1 are fine */
	wait_stats(S.running == 1 && S.queued == 2, "fsync and r2 wait for w1");
	cr_assert_eq(uffd_poll_fault(&u, SETTLE_MS), -1, "r2 started before the fsync");
	assert_in_progress(&f);
	assert_in_progress(&r2);

	uffd_release(&u, 0, 'W');
	cr_assert_eq(uffd_next_fault(&u), 1);
	/* r2 has started: the fsync must be over, and after w1. */
	cr_assert_eq(aio_error(&w1), 0);
	cr_assert_eq(aio_error(&f), 0, "r2 started before the fsync completed");
	uffd_release(&u, 1, 0);
	cr_assert_eq(wait_aio(&r2), 0);
	cr_assert_eq(aio_return(&r2), 4096);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(((unsigned char *)uffd_page(&u, 1))[i], 'W',
		             "r2 did not see w1's data at %d", i);
	cr_assert_eq(aio_return(&f), 0);
	close(fd);
}

Test(posix_order, priority_never_moves_a_request_across_fsync)
{
	struct uffd u;
	struct blocker b;
	int fd = temp_file(65536, 0);
	struct aiocb ra, rb, f, rc, rd2;

	UFFD_OR_SKIP(&u, 4);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	rd(&ra, fd, uffd_page(&u, 0), 512, 0, 20);
	rd(&rb, fd, uffd_page(&u, 1), 512, 512, 10);
	fill_cb(&f, fd, NULL, 0, 0);
	f.aio_reqprio = 20;   /* ignored for aio_fsync */
	cr_assert_eq(aio_fsync(O_DSYNC, &f), 0, "aio_fsync: %s", strerror(errno));
	rd(&rc, fd, uffd_page(&u, 2), 512, 1024, 0);
	rd(&rd2, fd, uffd_page(&u, 3), 512, 1536, 0);
	blocker_release(&b);

	/* Before the barrier by priority; after it in order. */
	cr_assert_eq(uffd_next_fault(&u), 1);
	uffd_release(&u, 1, 0);
	cr_assert_eq(uffd_next_fault(&u), 0, "a later request passed the fsync");
	assert_in_progress(&f);
	uffd_release(&u, 0, 0);
	cr_assert_eq(uffd_next_fault(&u), 2);
	cr_assert_eq(aio_error(&f), 0, "rc started before the fsync completed");
	uffd_release(&u, 2, 0);
	cr_assert_eq(uffd_next_fault(&u), 3);
	uffd_release(&u, 3, 0);
	struct aiocb *all[] = { &ra, &rb, &rc, &rd2 };
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(wait_aio(all[i]), 0);
		cr_assert_eq(aio_return(all[i]), 512);
		for (int j = 0; j < 512; j++)
			cr_assert_eq(((unsigned char *)uffd_page(&u, i))[j],
			             pattern(i * 512 + j));
	}
	close(fd);
}

/* ---- priority ------------------------------------------------------------ */

Test(posix_order, priority_orders_queued_requests_fifo_among_equals)
{
	static const int prio[] = { 5, 0, 20, 0, 5, 10, 0, 20 };
	static const long want[] = { 1, 3, 6, 0, 4, 5, 2, 7 };
	enum { N = sizeof prio / sizeof prio[0] };
	struct uffd u;
	struct blocker b;
	struct aiocb cbs[N];
	int fd = temp_file(65536, 0);

	UFFD_OR_SKIP(&u, N);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	for (int i = 0; i < N; i++)
		rd(&cbs[i], fd, uffd_page(&u, i), 256, i * 256, prio[i]);
	blocker_release(&b);
	expect_start_order(&u, want, N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), 256);
	}
	close(fd);
}

Test(posix_order, priority_orders_requests_across_fds)
{
	/* (fd, reqprio) in submission order */
	static const int which[] = { 0, 1, 0, 1, 0, 1 };
	static const int prio[] = { 10, 0, 0, 10, 5, 5 };
	static const long want[] = { 1, 2, 4, 5, 0, 3 };
	enum { N = sizeof prio / sizeof prio[0] };
	struct uffd u;
	struct blocker b;
	struct aiocb cbs[N];
	int fds[2] = { temp_file(4096, 0), temp_file(4096, 0) };

	UFFD_OR_SKIP(&u, N);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	for (int i = 0; i < N; i++)
		rd(&cbs[i], fds[which[i]], uffd_page(&u, i), 64, 0, prio[i]);
	blocker_release(&b);
	expect_start_order(&u, want, N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(wait_aio(&cbs[i]), 0);
	close(fds[0]);
	close(fds[1]);
}

struct rt_submit {
	struct aiocb *cb;
	int fd;
	void *buf;
	int ok, err;
};

static void *submit_as_fifo_thread(void *arg)
{
	struct rt_submit *s = arg;

	fill_cb(s->cb, s->fd, s->buf, 64, 0);
	s->cb->aio_reqprio = 5;
	s->ok = aio_read(s->cb) == 0;
	s->err = errno;
	return NULL;
}

Test(posix_order, priority_is_the_thread_priority_minus_reqprio)
{
	struct uffd u;
	struct blocker b;
	struct aiocb a, fifo, c;
	struct rt_submit s = { &fifo, -1, NULL, 0, 0 };
	static const long want[] = { 1, 0, 2 };
	pthread_attr_t attr;
	struct sched_param sp = { .sched_priority = 10 };
	pthread_t t;
	int fd = temp_file(4096, 0), err;

	UFFD_OR_SKIP(&u, 3);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	rd(&a, fd, uffd_page(&u, 0), 64, 0, 0);           /* 0 - 0 = 0 */
	/* A SCHED_FIFO thread of priority 10 with reqprio 5: 10 - 5 = 5. */
	s.fd = fd;
	s.buf = uffd_page(&u, 1);
	pthread_attr_init(&attr);
	pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
	pthread_attr_setschedparam(&attr, &sp);
	err = pthread_create(&t, &attr, submit_as_fifo_thread, &s);
	pthread_attr_destroy(&attr);
	if (err == EPERM) {
		blocker_release(&b);
		cr_skip_test("no SCHED_FIFO here");
	}
	cr_assert_eq(err, 0, "pthread_create: %s", strerror(err));
	pthread_join(t, NULL);
	cr_assert(s.ok, "aio_read from the SCHED_FIFO thread: %s", strerror(s.err));
	rd(&c, fd, uffd_page(&u, 2), 64, 0, 0);           /* 0 */
	blocker_release(&b);
	expect_start_order(&u, want, 3);
	cr_assert_eq(wait_aio(&a), 0);
	cr_assert_eq(wait_aio(&fifo), 0);
	cr_assert_eq(wait_aio(&c), 0);
	close(fd);
}

/* ---- per-fd concurrency on a regular file --------------------------------- */

/* n reads held on u's pages, on one fd, with `limit` allowed at once:
 * exactly `limit` start, and each release lets exactly one more in. */
static void check_fd_concurrency(int n, int limit)
{
	struct uffd u;
	struct aiocb *cbs = calloc(n, sizeof *cbs);
	int fd = temp_file(65536, 0), started = 0, done = 0;

	UFFD_OR_SKIP(&u, n);
	hold_setup(2 * n);
	cr_assert_eq(aiopool_set(AIOPOOL_FD_CONCURRENCY, limit), 0);
	for (int i = 0; i < n; i++)
		rd(&cbs[i], fd, uffd_page(&u, i), 128, i * 128, 0);

	long held[64];
	int nheld = 0;

	cr_assert_leq(n, 64);
	while (done < n) {
		int expect = n - done < limit ? n - done : limit;

		while (nheld < expect) {
			held[nheld++] = uffd_next_fault(&u);
			started++;
		}
		cr_assert_eq(uffd_poll_fault(&u, SETTLE_MS), -1,
		             "more than %d reads ran at once on one fd", limit);
		wait_stats(S.running == (unsigned long)expect &&
		           S.queued == (unsigned long)(n - started),
		           "%d running, %d queued", expect, n - started);
		/* Release the oldest held read: exactly one more may start. */
		uffd_release(&u, (size_t)held[0], 0);
		cr_assert_eq(wait_aio(&cbs[held[0]]), 0);
		done++;
		memmove(held, held + 1, --nheld * sizeof held[0]);
	}
	for (int i = 0; i < n; i++) {
		cr_assert_eq(aio_return(&cbs[i]), 128);
		for (int j = 0; j < 128; j++)
			cr_assert_eq(((unsigned char *)uffd_page(&u, i))[j], pattern(i * 128 + j));
	}
	free(cbs);
	close(fd);
}

Test(posix_order, reads_on_one_regular_file_run_concurrently)
{
	check_fd_concurrency(6, 3);
}

Test(posix_order, fd_concurrency_one_serialises_a_regular_file)
{
	check_fd_concurrency(4, 1);
}

Test(posix_order, fd_concurrency_change_applies_to_queued_requests)
{
	enum { N = 5 };
	struct uffd u;
	struct aiocb cbs[N];
	int fd = temp_file(65536, 0);

	UFFD_OR_SKIP(&u, N);
	hold_setup(8);
	cr_assert_eq(aiopool_set(AIOPOOL_FD_CONCURRENCY, 1), 0);
	for (int i = 0; i < N; i++)
		rd(&cbs[i], fd, uffd_page(&u, i), 64, 0, 0);
	cr_assert_eq(uffd_next_fault(&u), 0);
	cr_assert_eq(uffd_poll_fault(&u, SETTLE_MS), -1);
	cr_assert_eq(aiopool_set(AIOPOOL_FD_CONCURRENCY, 3), 0);
	/* The next two queued reads start, without a release (on two
	 * workers: in either order). */
	long a = uffd_next_fault(&u), b = uffd_next_fault(&u);
	cr_assert((a == 1 && b == 2) || (a == 2 && b == 1), "reads %ld and %ld started", a, b);
	cr_assert_eq(uffd_poll_fault(&u, SETTLE_MS), -1);
	wait_stats(S.running == 3 && S.queued == 2, "3 running, 2 queued");
	for (int i = 0; i < 3; i++) {
		uffd_release(&u, i, 0);
		cr_assert_eq(wait_aio(&cbs[i]), 0);
	}
	/* The last two start as the first ones finish. */
	a = uffd_next_fault(&u);
	b = uffd_next_fault(&u);
	cr_assert((a == 3 && b == 4) || (a == 4 && b == 3), "reads %ld and %ld started", a, b);
	for (int i = 3; i < N; i++) {
		uffd_release(&u, i, 0);
		cr_assert_eq(wait_aio(&cbs[i]), 0);
	}
	close(fd);
}
