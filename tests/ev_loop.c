/* ev_loop: the libev adapter beside other watchers.  With thousands of
 * reads in flight the loop keeps running its timers and fd watchers; a
 * flood of completions is handed out at most `batch' per loop iteration,
 * with other watchers served in between; more requests than the adapter's
 * context holds are all accepted and completed. */
#include "ev_common.h"

#define FILE_SIZE (8 << 20)

/* ---- a loop with a timer, an fd watcher and thousands of reads -------------- */

enum { NREAD = 3000, NAIOCB = 2000, NREQ = NREAD + NAIOCB, RLEN = 1024, HOLD_TICKS = 20 };

static struct {
	struct ev_loop *loop;
	struct aiopool_ev *aev;
	unsigned batch;
	struct blocker *blocker;
	bool released;
	/* the timer */
	int ticks, ticks_held;
	/* the always-readable pipe's watcher */
	int p[2];
	long fd_calls;
	/* per loop iteration (ev_check) */
	long iterations, in_iteration, max_in_iteration;
	long fd_calls_at_iteration;
	long starved;           /* iterations with callbacks but no fd watcher */
	/* completions */
	long done;
	long iter_of_last;      /* the iteration of the last callback */
	int calls[NREQ];
	long res[NREQ];
	bool other_thread;
	unsigned char bufs[NREQ][RLEN];
	struct aiocb cbs[NAIOCB];
	ev_timer timer;
	ev_io fdw;
	ev_check check;
} T;

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	T.ticks++;
	if (!T.released) {
		/* Held: nothing can have completed, the loop still runs. */
		cr_assert_eq(T.done, 0, "a read completed while the worker was held");
		cr_assert_eq(aiopool_ev_pending(T.aev), NREQ);
		if (++T.ticks_held == HOLD_TICKS) {
			put(T.blocker->p[1], "x", 1);   /* let the flood go */
			T.released = true;
		}
	}
}

static void fd_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	T.fd_calls++;   /* never drained: readable in every iteration */
}

/* After each poll, before the callbacks of this iteration: close the
 * books of the previous one. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (T.in_iteration > 0 && T.fd_calls == T.fd_calls_at_iteration)
		T.starved++;
	T.iterations++;
	T.in_iteration = 0;
	T.fd_calls_at_iteration = T.fd_calls;
}

static void done_cb(struct aiopool_ev *aev, long res, void *data)
{
	long i = (long)(intptr_t)data;

	(void)aev;
	if (!pthread_equal(pthread_self(), loop_thread))
		T.other_thread = true;
	T.calls[i]++;
	T.res[i] = res;
	T.done++;
	T.iter_of_last = T.iterations;
	if (++T.in_iteration > T.max_in_iteration)
		T.max_in_iteration = T.in_iteration;
	if (T.done == NREQ) {   /* the last one: let ev_run return */
		ev_timer_stop(T.loop, &T.timer);
		ev_io_stop(T.loop, &T.fdw);
		ev_check_stop(T.loop, &T.check);
	}
}

static void flood(unsigned batch)
{
	int fd = temp_file(FILE_SIZE, 0);
	struct blocker b;

	T.batch = batch;
	T.loop = new_loop();
	T.aev = aiopool_ev_new(T.loop);
	cr_assert_not_null(T.aev);
	if (batch)
		cr_assert_eq(aiopool_ev_set_batch(T.aev, batch), 0);
	else
		T.batch = 64;   /* the documented default */

	/* One worker, held by a read on an empty pipe: everything queues. */
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);
	T.blocker = &b;
	for (long i = 0; i < NREQ; i++) {
		long long off = (i * 7919LL * RLEN) % (FILE_SIZE - RLEN);
		if (i < NREAD) {
			cr_assert_eq(aiopool_ev_read(T.aev, fd, T.bufs[i], RLEN, off, done_cb,
			                             (void *)(intptr_t)i), 0);
		} else {
			struct aiocb *cb = &T.cbs[i - NREAD];
			fill_cb(cb, fd, T.bufs[i], RLEN, (off_t)off);
			cr_assert_eq(aiopool_ev_submit_aiocb(T.aev, cb, LIO_READ, done_cb,
			                                     (void *)(intptr_t)i), 0);
		}
	}
	cr_assert_eq(aiopool_ev_pending(T.aev), NREQ);

	ev_timer_init(&T.timer, tick, 0.001, 0.001);
	ev_timer_start(T.loop, &T.timer);
	make_pipe(T.p);
	put(T.p[1], "x", 1);
	ev_io_init(&T.fdw, fd_ready, T.p[0], EV_READ);
	ev_io_start(T.loop, &T.fdw);
	ev_check_init(&T.check, on_check);
	ev_check_start(T.loop, &T.check);

	run_loop(T.loop, "thousands of reads beside a timer and an fd watcher");

	cr_assert(T.released, "the timer did not fire %d times while reads were held",
	          HOLD_TICKS);
	cr_assert_eq(wait_aio(&b.cb), 0);
	cr_assert_eq(T.done, NREQ, "%ld of %d callbacks ran", T.done, NREQ);
	cr_assert(!T.other_thread, "a callback ran outside the loop thread");
	for (long i = 0; i < NREQ; i++) {
		long long off = (i * 7919LL * RLEN) % (FILE_SIZE - RLEN);
		cr_assert_eq(T.calls[i], 1, "request %ld: %d callbacks", i, T.calls[i]);
		cr_assert_eq(T.res[i], RLEN, "request %ld: result %ld", i, T.res[i]);
		for (int j = 0; j < RLEN; j++)
			if (T.bufs[i][j] != pattern(off + j))
				cr_assert_fail("request %ld: byte %d is wrong", i, j);
	}
	cr_assert_leq(T.max_in_iteration, (long)T.batch,
	              "%ld callbacks in one loop iteration, batch %u",
	              T.max_in_iteration, T.batch);
	cr_assert_eq(T.starved, 0, "%ld iterations ran callbacks without the fd watcher",
	             T.starved);
	/* Bounded batches mean many iterations: at least NREQ / batch. */
	cr_assert_geq(T.iterations, NREQ / (long)T.batch);
	aiopool_ev_free(T.aev);
	ev_loop_destroy(T.loop);
	close(fd);
	close(T.p[0]);
	close(T.p[1]);
}

Test(ev_loop, thousands_in_flight_default_batch)
{
	flood(0);
}

Test(ev_loop, thousands_in_flight_batch_of_7)
{
	flood(7);
}

/* ---- more than the context holds ------------------------------------------------ */

enum { NBIG = 10000 };
static int big_calls[NBIG];
static long big_res[NBIG];
static long big_order[NBIG], big_n;

static void big_cb(struct aiopool_ev *aev, long res, void *data)
{
	long i = (long)(intptr_t)data;

	(void)aev;
	big_calls[i]++;
	big_res[i] = res;
	big_order[big_n++] = i;
}

/* 10,000 reads at once, beyond the adapter's 4096-request context: all
 * accepted, all completed once with the right bytes. */
Test(ev_loop, more_than_the_context_holds)
{
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(NBIG * 64, 0);
	static unsigned char bufs[NBIG][64];

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);   /* all through aiopool */

	for (long i = 0; i < NBIG; i++)
		cr_assert_eq(aiopool_ev_read(aev, fd, bufs[i], 64, i * 64, big_cb,
		                             (void *)(intptr_t)i), 0, "read %ld", i);
	cr_assert_eq(aiopool_ev_pending(aev), NBIG);
	run_loop(loop, "10,000 reads");
	cr_assert_eq(big_n, NBIG);
	for (long i = 0; i < NBIG; i++) {
		cr_assert_eq(big_calls[i], 1, "read %ld: %d callbacks", i, big_calls[i]);
		cr_assert_eq(big_res[i], 64, "read %ld: %ld", i, big_res[i]);
		for (int j = 0; j < 64; j++)
			cr_assert_eq(bufs[i][j], pattern(i * 64 + j), "read %ld byte %d", i, j);
	}
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}

/* A write that the backlog holds stays behind earlier requests: with one
 * worker and a file opened O_APPEND, appends land in submission order even
 * when they pass through the backlog. */
static char append_seen[NBIG];

static void append_cb(struct aiopool_ev *aev, long res, void *data)
{
	(void)aev;
	cr_assert_eq(res, 1);
	append_seen[(intptr_t)data]++;
}

Test(ev_loop, backlog_keeps_submission_order)
{
	enum { N = 6000 };
	struct ev_loop *loop = new_loop();
	struct aiopool_ev *aev = aiopool_ev_new(loop);
	int fd = temp_file(0, O_APPEND);
	static char bytes[N];
	char *back = malloc(N);

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	for (int i = 0; i < N; i++) {
		bytes[i] = (char)(i % 251);
		cr_assert_eq(aiopool_ev_write(aev, fd, &bytes[i], 1, 0, append_cb,
		                              (void *)(intptr_t)i), 0);
	}
	run_loop(loop, "appends");
	for (int i = 0; i < N; i++)
		cr_assert_eq(append_seen[i], 1);
	cr_assert_eq(pread(fd, back, N, 0), N);
	for (int i = 0; i < N; i++)
		cr_assert_eq(back[i], bytes[i], "append %d is out of order", i);
	free(back);
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
}
