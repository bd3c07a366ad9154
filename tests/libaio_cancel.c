/* libaio_cancel: io_cancel of queued, running, waiting (POLL), finished and
 * unknown requests; io_destroy with requests queued and running; POLL. */
#include "libaio_common.h"

/* These requests must queue behind a busy worker: no cached read may be
 * done inline by the fast path. */
static void queue_everything(void)
{
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
}

TestSuite(libaio_cancel, .init = queue_everything);

Test(libaio_cancel, queued_request_is_cancelled_without_an_event)
{
	int fd = temp_file(4096, 0), p[2];
	io_context_t ctx = new_ctx(4);
	char buf[2][16], pb;
	struct aiocb blocker;
	struct iocb a, b;
	struct io_event res, ev;
	struct timespec zero = { 0, 0 };

	block_worker(p, &blocker, &pb);
	io_prep_pread(&a, fd, buf[0], 16, 0);
	a.data = (void *)0xabc;
	io_prep_pread(&b, fd, buf[1], 16, 16);
	cr_assert_eq(submit1(ctx, &a), 1);
	cr_assert_eq(submit1(ctx, &b), 1);
	memset(&res, 0x55, sizeof res);
	cr_assert_eq(io_cancel(ctx, &a, &res), 0);
	cr_assert_eq(res.obj, &a);
	cr_assert_eq(res.data, (void *)0xabc);
	cr_assert_eq((long)res.res, -ECANCELED);
	cr_assert_eq(res.res2, 0);
	cr_assert_eq(io_cancel(ctx, &a, &res), -EINVAL, "already cancelled");
	unblock_worker(p, &blocker);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &b, "only b's event is queued");
	cr_assert_eq((long)ev.res, 16);
	sleep_ms(20);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0, "no event for a");
	cr_assert_eq(io_cancel(ctx, &b, &res), -EINVAL, "finished");
	/* The cancelled request gave its slot back. */
	struct iocb more[4], *list[4];
	for (int i = 0; i < 4; i++) {
		io_prep_pread(&more[i], fd, buf[0], 1, 0);
		list[i] = &more[i];
	}
	cr_assert_eq(io_submit(ctx, 4, list), 4);
	struct io_event evs[4];
	get_events(ctx, evs, 4);
	io_destroy(ctx);
	close(fd);
}

Test(libaio_cancel, running_request_is_eagain_and_completes)
{
	io_context_t ctx = new_ctx(2);
	int p[2];
	char buf[4];
	struct iocb cb;
	struct io_event res, ev;

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	cr_assert_eq(pipe(p), 0);
	io_prep_pread(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(submit1(ctx, &cb), 1);
	wait_until(stats_now().running == 1, "the read never started");
	cr_assert_eq(io_cancel(ctx, &cb, &res), -EAGAIN);
	cr_assert_eq(write(p[1], "abcd", 4), 4);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &cb);
	cr_assert_eq((long)ev.res, 4, "completed normally");
	cr_assert_eq(memcmp(buf, "abcd", 4), 0);
	io_destroy(ctx);
	close(p[0]);
	close(p[1]);
}

Test(libaio_cancel, waiting_poll_is_cancelled)
{
	io_context_t ctx = new_ctx(2);
	int p[2];
	struct iocb cb;
	struct io_event res, ev;
	struct timespec zero = { 0, 0 };

	cr_assert_eq(pipe(p), 0);
	io_prep_poll(&cb, p[0], POLLIN);
	cb.data = (void *)7;
	cr_assert_eq(submit1(ctx, &cb), 1);
	cr_assert_eq(io_cancel(ctx, &cb, &res), 0);
	cr_assert_eq(res.obj, &cb);
	cr_assert_eq(res.data, (void *)7);
	cr_assert_eq((long)res.res, -ECANCELED);
	cr_assert_eq(write(p[1], "x", 1), 1);
	sleep_ms(20);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0, "no event for it");
	io_destroy(ctx);
	close(p[0]);
	close(p[1]);
}

Test(libaio_cancel, cancel_in_another_context_is_einval)
{
	int fd = temp_file(64, 0), p[2];
	io_context_t ctx = new_ctx(2), other = new_ctx(2);
	char buf[8], pb;
	struct aiocb blocker;
	struct iocb cb;
	struct io_event res;

	block_worker(p, &blocker, &pb);
	io_prep_pread(&cb, fd, buf, 8, 0);
	cr_assert_eq(submit1(ctx, &cb), 1);
	cr_assert_eq(io_cancel(other, &cb, &res), -EINVAL);
	cr_assert_eq(io_cancel(ctx, &cb, &res), 0);
	unblock_worker(p, &blocker);
	io_destroy(ctx);
	io_destroy(other);
	close(fd);
}

/* ---- POLL -------------------------------------------------------------------- */

Test(libaio_cancel, poll_on_a_pipe)
{
	io_context_t ctx = new_ctx(4);
	int p[2];
	struct iocb rd, wr;
	struct io_event ev;
	struct timespec zero = { 0, 0 };

	cr_assert_eq(pipe(p), 0);
	io_prep_poll(&wr, p[1], POLLOUT);
	cr_assert_eq(submit1(ctx, &wr), 1);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &wr);
	cr_assert((long)ev.res & POLLOUT, "a pipe with room is writable");

	io_prep_poll(&rd, p[0], POLLIN);
	cr_assert_eq(submit1(ctx, &rd), 1);
	sleep_ms(20);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0, "nothing to read yet");
	cr_assert_eq(write(p[1], "x", 1), 1);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &rd);
	cr_assert((long)ev.res & POLLIN, "res 0x%lx", ev.res);
	/* One-shot: nothing more, though the pipe stays readable. */
	sleep_ms(20);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0);

	/* POLLHUP is always reported. */
	io_prep_poll(&rd, p[0], POLLPRI);
	cr_assert_eq(submit1(ctx, &rd), 1);
	char c;
	cr_assert_eq(read(p[0], &c, 1), 1);
	close(p[1]);
	ev = get_one(ctx);
	cr_assert((long)ev.res & POLLHUP, "res 0x%lx", ev.res);
	io_destroy(ctx);
	close(p[0]);
}

/* Waiting polls do not occupy workers: with one worker and many polls
 * waiting, reads still complete. */
Test(libaio_cancel, waiting_polls_take_no_worker)
{
	enum { N = 50 };
	int fd = temp_file(4096, 0), p[N][2];
	io_context_t ctx = new_ctx(N + 1);
	struct iocb polls[N], rd;
	struct io_event ev[N];
	char buf[8];

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(pipe(p[i]), 0);
		io_prep_poll(&polls[i], p[i][0], POLLIN);
		polls[i].data = (void *)(intptr_t)i;
		cr_assert_eq(submit1(ctx, &polls[i]), 1);
	}
	io_prep_pread(&rd, fd, buf, 8, 0);
	cr_assert_eq(submit1(ctx, &rd), 1);
	get_events(ctx, ev, 1);
	cr_assert_eq(ev[0].obj, &rd);
	for (int i = N - 1; i >= 0; i--)
		cr_assert_eq(write(p[i][1], "x", 1), 1);
	get_events(ctx, ev, N);
	bool seen[N] = { 0 };
	for (int i = 0; i < N; i++) {
		int k = (int)(intptr_t)ev[i].data;
		cr_assert(k >= 0 && k < N && !seen[k]);
		seen[k] = true;
	}
	io_destroy(ctx);
	for (int i = 0; i < N; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	close(fd);
}

/* ---- io_destroy with requests in flight ------------------------------------------- */

struct destroyer {
	io_context_t ctx;
	volatile int done;
	int rc;
};

static void *destroy_thread(void *arg)
{
	struct destroyer *d = arg;
	d->rc = io_destroy(d->ctx);
	__atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

Test(libaio_cancel, destroy_waits_for_running_and_cancels_queued)
{
	enum { Q = 8 };
	int fd = temp_file(4096, 0), p[2], pp[2];
	io_context_t ctx = new_ctx(Q + 2);
	static char qbuf[Q][16];
	char rbuf[4] = { 0 };
	struct iocb running, queued[Q], poll_cb;
	struct destroyer d = { ctx, 0, 1 };
	pthread_t t;

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(pp), 0);
	io_prep_pread(&running, p[0], rbuf, sizeof rbuf, 0);
	cr_assert_eq(submit1(ctx, &running), 1);
	wait_until(stats_now().running == 1, "the read never started");
	memset(qbuf, 'Q', sizeof qbuf);
	for (int i = 0; i < Q; i++) {
		io_prep_pread(&queued[i], fd, qbuf[i], 16, 0);
		cr_assert_eq(submit1(ctx, &queued[i]), 1);
	}
	io_prep_poll(&poll_cb, pp[0], POLLIN);
	cr_assert_eq(submit1(ctx, &poll_cb), 1);

	pthread_create(&t, NULL, destroy_thread, &d);
	sleep_ms(50);
	cr_assert_eq(__atomic_load_n(&d.done, __ATOMIC_ACQUIRE), 0,
	             "io_destroy returned while a read was running");
	cr_assert_eq(write(p[1], "data", 4), 4);
	pthread_join(t, NULL);
	cr_assert_eq(d.rc, 0);
	/* The running read completed before io_destroy returned; the queued
	 * ones never touched their buffers. */
	cr_assert_eq(memcmp(rbuf, "data", 4), 0);
	for (int i = 0; i < Q; i++)
		for (int j = 0; j < 16; j++)
			cr_assert_eq(qbuf[i][j], 'Q', "queued read %d ran", i);
	cr_assert_eq(io_destroy(ctx), -EINVAL, "a second io_destroy");
	struct aiopool_stats st = stats_now();
	cr_assert_eq(st.queued, 0);
	cr_assert_eq(st.running, 0);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(pp[0]);
	close(pp[1]);
}

Test(libaio_cancel, destroy_with_events_unreaped)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(16);
	char buf[16][64];
	struct iocb cbs[16], *list[16];

	for (int i = 0; i < 16; i++) {
		io_prep_pread(&cbs[i], fd, buf[i], 64, i * 64);
		list[i] = &cbs[i];
	}
	cr_assert_eq(io_submit(ctx, 16, list), 16);
	cr_assert_eq(io_destroy(ctx), 0);
	struct aiopool_stats st = stats_now();
	cr_assert_eq(st.queued + st.running, 0, "nothing left behind");
	close(fd);
}
