/* ev_basic: the libev adapter (aiopool-ev.h) delivers each request's
 * result once, in the loop's thread, from ev_run; reports errors through
 * the callback or, for bad arguments, the return value; keeps the loop
 * alive exactly while requests are pending; and frees cleanly with
 * requests in flight. */
#include "ev_common.h"

#include <sys/uio.h>

#define FILE_SIZE (1 << 20)

Test(ev_basic, idle_adapter_does_not_keep_the_loop)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);

	cr_assert_not_null(aev, "aiopool_ev_new: %s", strerror(errno));
	cr_assert_eq(aiopool_ev_pending(aev), 0);
	run_loop(loop, "an idle adapter kept the loop alive");
	/* Twice: the references stay balanced. */
	run_loop(loop, "an idle adapter kept the loop alive the second time");
	aiopool_ev_free(aev);
	run_loop(loop, "a freed adapter kept the loop alive");
	ev_loop_destroy(loop);
}

Test(ev_basic, reads_deliver_bytes_once_in_the_loop_thread)
{
	enum { N = 100 };
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(FILE_SIZE, 0);
	static struct rec rec[N];
	static unsigned char buf[N][8192];
	long long off[N];
	size_t len[N];

	cr_assert_not_null(aev);
	for (int i = 0; i < N; i++) {
		len[i] = 1 + (size_t)(i * 97) % sizeof buf[i];
		off[i] = (long long)(i * 10007) % FILE_SIZE;
		if (i == N - 2)
			off[i] = FILE_SIZE - 100;   /* crosses the end: short */
		if (i == N - 1)
			off[i] = FILE_SIZE + 5;     /* past the end: 0 */
		cr_assert_eq(aiopool_ev_read(aev, fd, buf[i], len[i], off[i], rec_cb,
		                             &rec[i]), 0);
	}
	cr_assert_eq(aiopool_ev_pending(aev), N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(rec[i].calls, 0, "request %d: callback ran inside the submission", i);

	run_loop(loop, "reads did not complete");

	cr_assert_eq(aiopool_ev_pending(aev), 0);
	for (int i = 0; i < N; i++) {
		long want = off[i] >= FILE_SIZE ? 0 :
		            (long)(len[i] < (size_t)(FILE_SIZE - off[i]) ? len[i] :
		                   (size_t)(FILE_SIZE - off[i]));
		assert_rec(&rec[i], want, "read");
		cr_assert_eq(rec[i].aev, aev);
		for (long j = 0; j < want; j++)
			cr_assert_eq(buf[i][j], pattern(off[i] + j), "request %d byte %ld", i, j);
	}
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}

/* A write whose callback reads the bytes back: submissions from a
 * callback work, and the loop stays alive for them. */
static int chain_fd;
static char chain_out[] = "written through the libev adapter";
static char chain_in[sizeof chain_out];
static struct rec chain_read;

static void chain_then(struct rec *r)
{
	cr_assert_eq(aiopool_ev_read(r->aev, chain_fd, chain_in, sizeof chain_in, 4096,
	                             rec_cb, &chain_read), 0);
}

Test(ev_basic, write_then_read_back_from_the_callback)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	struct rec w = { .then = chain_then };

	chain_fd = temp_file(0, 0);
	cr_assert_eq(aiopool_ev_write(aev, chain_fd, chain_out, sizeof chain_out, 4096,
	                              rec_cb, &w), 0);
	run_loop(loop, "write then read");
	assert_rec(&w, sizeof chain_out, "write");
	assert_rec(&chain_read, sizeof chain_out, "read back");
	cr_assert_str_eq(chain_in, chain_out);
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(chain_fd);
}

/* POSIX aiocbs: write, both syncs, read, each through the adapter; the
 * result comes to the callback and the aiocb is free to reuse. */
Test(ev_basic, posix_aiocbs_complete_in_the_loop)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(0, 0);
	char out[5000], in[5000];
	struct aiocb wcb, scb, dcb, rcb;
	struct rec w = { 0 }, s = { 0 }, d = { 0 }, r = { 0 };

	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (char)pattern((long long)i);
	fill_cb(&wcb, fd, out, sizeof out, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &wcb, LIO_WRITE, rec_cb, &w), 0);
	run_loop(loop, "aio_write");
	assert_rec(&w, sizeof out, "aio_write");

	fill_cb(&scb, fd, NULL, 0, 0);
	fill_cb(&dcb, fd, NULL, 0, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &scb, O_SYNC, rec_cb, &s), 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &dcb, O_DSYNC, rec_cb, &d), 0);
	fill_cb(&rcb, fd, in, sizeof in, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &rcb, LIO_READ, rec_cb, &r), 0);
	cr_assert_eq(aiopool_ev_pending(aev), 3);
	run_loop(loop, "aio_fsync and aio_read");
	assert_rec(&s, 0, "aio_fsync(O_SYNC)");
	assert_rec(&d, 0, "aio_fsync(O_DSYNC)");
	assert_rec(&r, sizeof in, "aio_read");
	cr_assert_eq(memcmp(in, out, sizeof in), 0);
	/* The adapter took the result: the aiocb is no longer in flight. */
	cr_assert_eq(aio_error(&rcb), 0);

	/* The same aiocb again, short this time. */
	memset(&r, 0, sizeof r);
	rcb.aio_offset = sizeof out - 10;
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &rcb, LIO_READ, rec_cb, &r), 0);
	run_loop(loop, "aio_read again");
	assert_rec(&r, 10, "the aiocb reused");
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}

/* iocbs the program prepared: preadv, fsync, and a poll on a pipe that
 * becomes readable later. */
Test(ev_basic, prepared_iocbs)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(FILE_SIZE, 0), p[2];
	unsigned char a[100], b[300];
	struct iovec iov[2] = { { a, sizeof a }, { b, sizeof b } };
	struct iocb vio, sio, pio;
	struct rec v = { 0 }, s = { 0 }, pl = { 0 };
	struct later l;

	make_pipe(p);
	io_prep_preadv(&vio, fd, iov, 2, 777);
	io_prep_fsync(&sio, fd);
	io_prep_poll(&pio, p[0], POLLIN);
	cr_assert_eq(aiopool_ev_submit(aev, &vio, rec_cb, &v), 0);
	cr_assert_eq(aiopool_ev_submit(aev, &sio, rec_cb, &s), 0);
	cr_assert_eq(aiopool_ev_submit(aev, &pio, rec_cb, &pl), 0);
	later_start(&l, p[1], 20);
	run_loop(loop, "preadv, fsync and poll");
	later_join(&l);
	assert_rec(&v, sizeof a + sizeof b, "preadv");
	assert_rec(&s, 0, "fsync");
	cr_assert_eq(pl.calls, 1);
	cr_assert(pl.res > 0 && (pl.res & POLLIN), "poll: revents %#lx", pl.res);
	for (size_t i = 0; i < sizeof a; i++)
		cr_assert_eq(a[i], pattern(777 + (long long)i));
	for (size_t i = 0; i < sizeof b; i++)
		cr_assert_eq(b[i], pattern(777 + (long long)(sizeof a + i)));
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* ---- errors ------------------------------------------------------------------ */

Test(ev_basic, bad_fds_reach_the_callback)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int ro = temp_file(100, 0);
	char buf[64] = { 0 };
	struct aiocb cb, cbw;
	struct rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 }, r4 = { 0 }, r5 = { 0 };
	char path[64];

	/* A read-only descriptor on the same file. */
	snprintf(path, sizeof path, "/proc/self/fd/%d", ro);
	int rofd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(rofd, 0);
	int bad = closed_fd();   /* last: no open() may take its number */

	cr_assert_eq(aiopool_ev_read(aev, bad, buf, sizeof buf, 0, rec_cb, &r1), 0);
	cr_assert_eq(aiopool_ev_write(aev, rofd, buf, sizeof buf, 0, rec_cb, &r2), 0);
	fill_cb(&cb, bad, buf, sizeof buf, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cb, LIO_READ, rec_cb, &r3), 0);
	fill_cb(&cbw, rofd, buf, sizeof buf, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cbw, LIO_WRITE, rec_cb, &r4), 0);
	cr_assert_eq(aiopool_ev_read(aev, ro, buf, sizeof buf, -1, rec_cb, &r5), 0);
	cr_assert_eq(r1.calls + r2.calls + r3.calls + r4.calls + r5.calls, 0,
	             "an error was reported inside the submission");
	cr_assert_eq(aiopool_ev_pending(aev), 5);
	run_loop(loop, "failing requests");
	assert_rec(&r1, -EBADF, "read on a closed fd");
	assert_rec(&r2, -EBADF, "write on a read-only fd");
	assert_rec(&r3, -EBADF, "aio_read on a closed fd");
	assert_rec(&r4, -EBADF, "aio_write on a read-only fd");
	assert_rec(&r5, -EINVAL, "read at a negative offset");
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(ro);
	close(rofd);
}

static void never_cb(struct aiopool_ev *aev, long res, void *data)
{
	(void)aev;
	(void)res;
	(void)data;
	cr_assert_fail("a refused request's callback ran");
}

Test(ev_basic, bad_arguments_are_einval)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(100, 0);
	char buf[10];
	struct aiocb cb;
	struct iocb io;

	errno = 0;
	cr_assert_null(aiopool_ev_new(NULL));
	cr_assert_eq(errno, EINVAL);

	cr_assert_eq(aiopool_ev_read(NULL, fd, buf, 1, 0, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_read(aev, fd, buf, 1, 0, NULL, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_write(NULL, fd, buf, 1, 0, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_write(aev, fd, buf, 1, 0, NULL, NULL), -EINVAL);
	io_prep_pread(&io, fd, buf, 1, 0);
	cr_assert_eq(aiopool_ev_submit(NULL, &io, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit(aev, NULL, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit(aev, &io, NULL, NULL), -EINVAL);
	fill_cb(&cb, fd, buf, 1, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(NULL, &cb, LIO_READ, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, NULL, LIO_READ, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cb, LIO_READ, NULL, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cb, LIO_NOP, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cb, 12345, never_cb, NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_pending(NULL), -EINVAL);
	cr_assert_eq(aiopool_ev_set_batch(NULL, 8), -EINVAL);
	cr_assert_eq(aiopool_ev_set_batch(aev, 0), -EINVAL);
	cr_assert_eq(aiopool_ev_set_batch(aev, 65537), -EINVAL);
	cr_assert_eq(aiopool_ev_set_batch(aev, 65536), 0);
	aiopool_ev_free(NULL);

	cr_assert_eq(aiopool_ev_pending(aev), 0);
	run_loop(loop, "refused requests kept the loop alive");
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}

Test(ev_basic, aiocb_in_flight_is_busy)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int p[2];
	char c1, c2;
	struct aiocb direct, via;
	struct rec r = { 0 };

	make_pipe(p);
	/* In flight outside the adapter. */
	fill_cb(&direct, p[0], &c1, 1, 0);
	cr_assert_eq(aio_read(&direct), 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &direct, LIO_READ, never_cb, NULL), -EBUSY);
	cr_assert_eq(direct.aio_sigevent.sigev_notify, SIGEV_NONE, "the aiocb was changed");
	put(p[1], "a", 1);
	cr_assert_eq(wait_aio(&direct), 0);
	cr_assert_eq(aio_return(&direct), 1);

	/* In flight through the adapter. */
	fill_cb(&via, p[0], &c2, 1, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &via, LIO_READ, rec_cb, &r), 0);
	wait_until(aio_error(&via) == EINPROGRESS);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &via, LIO_READ, never_cb, NULL), -EBUSY);
	cr_assert_eq(aiopool_ev_pending(aev), 1);
	put(p[1], "b", 1);
	run_loop(loop, "the pipe read");
	assert_rec(&r, 1, "the aiocb read");
	cr_assert_eq(c2, 'b');
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(p[0]);
	close(p[1]);
}

/* ---- the loop's references ------------------------------------------------------ */

/* A read on an empty pipe is the only thing pending: ev_run must wait
 * for it, and return once its callback ran. */
Test(ev_basic, pending_requests_keep_the_loop_alive)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int p[2];
	char c = 0, d = 0;
	struct aiocb cb;
	struct rec r = { 0 }, rp = { 0 };
	struct later l;

	make_pipe(p);
	cr_assert_eq(aiopool_ev_read(aev, p[0], &c, 1, 0, rec_cb, &r), 0);
	later_start(&l, p[1], 50);
	run_loop(loop, "the pipe read");
	later_join(&l);
	assert_rec(&r, 1, "pipe read");
	cr_assert_eq(r.pending, 0);

	/* The same with an aiocb. */
	fill_cb(&cb, p[0], &d, 1, 0);
	cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cb, LIO_READ, rec_cb, &rp), 0);
	later_start(&l, p[1], 50);
	run_loop(loop, "the aiocb pipe read");
	later_join(&l);
	assert_rec(&rp, 1, "aiocb pipe read");
	cr_assert_eq(c, 'x');
	cr_assert_eq(d, 'x');

	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(p[0]);
	close(p[1]);
}

Test(ev_basic, two_adapters_share_a_loop)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *a = aiopool_ev_new(loop), *b = aiopool_ev_new(loop);
	int fd = temp_file(4096, 0);
	char x[10], y[20];
	struct rec ra = { 0 }, rb = { 0 };

	cr_assert_eq(aiopool_ev_read(a, fd, x, sizeof x, 0, rec_cb, &ra), 0);
	cr_assert_eq(aiopool_ev_read(b, fd, y, sizeof y, 100, rec_cb, &rb), 0);
	run_loop(loop, "two adapters");
	assert_rec(&ra, sizeof x, "adapter a");
	assert_rec(&rb, sizeof y, "adapter b");
	cr_assert_eq(ra.aev, a);
	cr_assert_eq(rb.aev, b);
	aiopool_ev_free(a);
	run_loop(loop, "one adapter left");
	aiopool_ev_free(b);
	ev_loop_destroy(loop);
	close(fd);
}

/* ---- freeing --------------------------------------------------------------------- */

/* Requests queued behind a running pipe read, of both kinds: free cancels
 * the queued ones, waits for the running one, and runs no callback. */
Test(ev_basic, free_with_requests_in_flight)
{
	enum { N = 500 };
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(FILE_SIZE, 0), p[2];
	static char bufs[N][512];
	static struct aiocb cbs[N];
	struct blocker b;
	char c;
	struct later l;

	make_pipe(p);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	/* Queued behind the blocker: the adapter's own pipe read... */
	cr_assert_eq(aiopool_ev_read(aev, p[0], &c, 1, 0, never_cb, NULL), 0);
	for (int i = 0; i < N; i++) {
		if (i % 2)
			cr_assert_eq(aiopool_ev_read(aev, fd, bufs[i], 512, i * 512LL,
			                             never_cb, NULL), 0);
		else {
			fill_cb(&cbs[i], fd, bufs[i], 512, i * 512LL);
			cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cbs[i], LIO_READ,
			                                     never_cb, NULL), 0);
		}
	}
	cr_assert_eq(aiopool_ev_pending(aev), N + 1);
	/* ...which starts running once the blocker is released; it then
	 * holds the only worker, inside read(), until the pipe gets a byte,
	 * 100 ms later. */
	blocker_release(&b);
	wait_thread_in_read(p[0]);
	later_start(&l, p[1], 100);
	aiopool_ev_free(aev);
	later_join(&l);
	wait_stats(S.queued == 0 && S.running == 0, "requests left in the engine");
	run_loop(loop, "the loop after free");
	ev_loop_destroy(loop);
	close(fd);
	close(p[0]);
	close(p[1]);
}

/* A callback frees the adapter: no other callback runs after it. */
static int freed_calls;

static void free_in_cb(struct aiopool_ev *aev, long res, void *data)
{
	(void)res;
	(void)data;
	freed_calls++;
	aiopool_ev_free(aev);
	cr_assert_eq(aiopool_ev_read(aev, 0, NULL, 0, 0, never_cb, NULL), -EINVAL,
	             "a freeing adapter took a request");
}

Test(ev_basic, free_from_a_callback)
{
	enum { N = 300 };
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(FILE_SIZE, 0);
	static char bufs[N][100];
	static struct aiocb cbs[N];

	for (int i = 0; i < N; i++) {
		if (i % 3) {
			cr_assert_eq(aiopool_ev_read(aev, fd, bufs[i], 100, i * 100LL,
			                             free_in_cb, NULL), 0);
		} else {
			fill_cb(&cbs[i], fd, bufs[i], 100, i * 100LL);
			cr_assert_eq(aiopool_ev_submit_aiocb(aev, &cbs[i], LIO_READ,
			                                     free_in_cb, NULL), 0);
		}
	}
	run_loop(loop, "freed from a callback");
	cr_assert_eq(freed_calls, 1, "%d callbacks ran", freed_calls);
	ev_loop_destroy(loop);
	close(fd);
}

/* ---- the fast path ------------------------------------------------------------- */

/* With AIOPOOL_FASTPATH=1 a cached read completes in the loop's thread
 * without aiopool (its submitted count stays), and its callback still runs
 * from the loop, not inside the submission.  The rule is the engine's, as
 * for aio_read: a read passes a write of the adapter's that is not held
 * back by an ordering rule, and one on a file opened with O_DIRECT goes to
 * aiopool. */
Test(ev_basic, fastpath_serves_cached_reads_in_the_loop)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(FILE_SIZE, 0);
	static unsigned char buf[8][4096], wbuf[4096];
	struct rec r[8], w = { 0 };
	unsigned long long before;

	memset(r, 0, sizeof r);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
	before = stats_now().submitted;
	for (int i = 0; i < 4; i++)
		cr_assert_eq(aiopool_ev_read(aev, fd, buf[i], 4096, i * 8192LL, rec_cb,
		                             &r[i]), 0);
	cr_assert_eq(r[0].calls + r[1].calls + r[2].calls + r[3].calls, 0,
	             "a callback ran inside the submission");
	cr_assert_eq(aiopool_ev_pending(aev), 4);
	run_loop(loop, "fast-path reads");
	cr_assert_eq(stats_now().submitted, before, "cached reads went to aiopool");
	for (int i = 0; i < 4; i++) {
		assert_rec(&r[i], 4096, "fast-path read");
		for (int j = 0; j < 4096; j++)
			cr_assert_eq(buf[i][j], pattern(i * 8192LL + j));
	}

	/* Behind a write of the adapter's, which nothing holds back: the
	 * write goes to aiopool, the read is done in the loop's thread. */
	before = stats_now().submitted;
	cr_assert_eq(aiopool_ev_write(aev, fd, wbuf, sizeof wbuf, 0, rec_cb, &w), 0);
	cr_assert_eq(aiopool_ev_read(aev, fd, buf[4], 4096, 65536, rec_cb, &r[4]), 0);
	run_loop(loop, "a write and a read");
	assert_rec(&w, 4096, "write");
	assert_rec(&r[4], 4096, "read behind the write");
	cr_assert_eq(stats_now().submitted, before + 1,
	             "the read behind a running write went to aiopool");

	/* O_DIRECT: never inline (the read would wait for the device). */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd >= 0) {
		void *dbuf = NULL;
		cr_assert_eq(posix_memalign(&dbuf, 4096, 4096), 0);
		before = stats_now().submitted;
		cr_assert_eq(aiopool_ev_read(aev, dfd, dbuf, 4096, 8192, rec_cb, &r[5]), 0);
		run_loop(loop, "an O_DIRECT read");
		assert_rec(&r[5], 4096, "O_DIRECT read");
		cr_assert_eq(stats_now().submitted, before + 1);
		cr_assert_eq(memcmp(dbuf, buf[1], 4096), 0);
		free(dbuf);
		close(dfd);
	}
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}
