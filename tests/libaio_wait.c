/* libaio_wait: how io_getevents, io_pgetevents and io_queue_wait wait:
 * timeouts, min_nr, signals, the signal mask swap, and a context destroyed
 * under a waiter. */
#include "libaio_common.h"

/* A POLL on an empty pipe: a request that stays in flight until the test
 * writes to the pipe. */
struct pending {
	int p[2];
	struct iocb cb;
};

static void pending_start(io_context_t ctx, struct pending *pd)
{
	cr_assert_eq(pipe(pd->p), 0);
	io_prep_poll(&pd->cb, pd->p[0], POLLIN);
	cr_assert_eq(submit1(ctx, &pd->cb), 1);
}

static void pending_fire(struct pending *pd)
{
	cr_assert_eq(write(pd->p[1], "x", 1), 1);
}

static void pending_close(struct pending *pd)
{
	close(pd->p[0]);
	close(pd->p[1]);
}

/* Fires a pending request from another thread after a short delay. */
static void *fire_later(void *arg)
{
	sleep_ms(30);
	pending_fire(arg);
	return NULL;
}

Test(libaio_wait, zero_timeout_never_waits)
{
	io_context_t ctx = new_ctx(2);
	struct pending pd;
	struct io_event ev;
	struct timespec zero = { 0, 0 };

	pending_start(ctx, &pd);
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &zero), 0);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0);
	pending_fire(&pd);
	get_one(ctx);
	io_destroy(ctx);
	pending_close(&pd);
}

Test(libaio_wait, relative_timeout_returns_what_it_has)
{
	io_context_t ctx = new_ctx(4);
	struct pending pd;
	struct io_event ev[2];
	struct timespec t = { 0, 50 * 1000000L };
	long long start = now_ms();

	pending_start(ctx, &pd);
	cr_assert_eq(io_getevents(ctx, 1, 2, ev, &t), 0, "nothing came");
	cr_assert_geq(now_ms() - start, 45, "it waited for the timeout");
	/* tv_nsec past a second is read as the kernel reads it. */
	pending_fire(&pd);
	t = (struct timespec){ 0, 1500 * 1000000L };
	cr_assert_eq(io_getevents(ctx, 1, 2, ev, &t), 1);
	io_destroy(ctx);
	pending_close(&pd);
}

Test(libaio_wait, null_timeout_waits_for_min_nr)
{
	io_context_t ctx = new_ctx(4);
	struct pending a, b;
	struct io_event ev[2];
	pthread_t t1, t2;

	pending_start(ctx, &a);
	pending_start(ctx, &b);
	pthread_create(&t1, NULL, fire_later, &a);
	pthread_create(&t2, NULL, fire_later, &b);
	int got = io_getevents(ctx, 2, 2, ev, NULL);
	if (got == 1)
		got += io_getevents(ctx, 1, 1, ev + 1, NULL);
	cr_assert_eq(got, 2);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	cr_assert(ev[0].obj != ev[1].obj);
	cr_assert(((long)ev[0].res & POLLIN) && ((long)ev[1].res & POLLIN));
	io_destroy(ctx);
	pending_close(&a);
	pending_close(&b);
}

/* The deliberate difference from the kernel: min_nr == 0 with a wait
 * allowed waits for one event while requests are in flight. */
Test(libaio_wait, min_nr_zero_waits_for_one_while_in_flight)
{
	io_context_t ctx = new_ctx(4);
	struct pending pd;
	struct io_event ev;
	pthread_t t;
	struct timespec ten = { 10, 0 };

	pending_start(ctx, &pd);
	pthread_create(&t, NULL, fire_later, &pd);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, NULL), 1);
	cr_assert_eq(ev.obj, &pd.cb);
	pthread_join(t, NULL);
	/* Nothing in flight: it returns at once. */
	long long start = now_ms();
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &ten), 0);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, NULL), 0);
	cr_assert_lt(now_ms() - start, DEADLINE_MS / 2);
	/* With a timeout, also in flight: the event or the timeout. */
	pending_close(&pd);
	pending_start(ctx, &pd);
	pthread_create(&t, NULL, fire_later, &pd);
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &ten), 1);
	pthread_join(t, NULL);
	io_destroy(ctx);
	pending_close(&pd);
}

/* ---- signals ----------------------------------------------------------------- */

static volatile sig_atomic_t handled;
static void on_usr1(int sig)
{
	handled++;
}

struct kicker {
	pthread_t target;
	volatile bool stop;
};

static void *kick_until_stopped(void *arg)
{
	struct kicker *k = arg;
	while (!k->stop) {
		pthread_kill(k->target, SIGUSR1);
		sleep_ms(5);
	}
	return NULL;
}

Test(libaio_wait, signal_interrupts_with_eintr)
{
	io_context_t ctx = new_ctx(2);
	struct pending pd;
	struct io_event ev;
	struct kicker k = { pthread_self(), false };
	pthread_t t;
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	pending_start(ctx, &pd);
	pthread_create(&t, NULL, kick_until_stopped, &k);
	/* Not restarted, even with SA_RESTART, as the kernel's. */
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, NULL), -EINTR);
	cr_assert_eq(io_queue_wait(ctx, NULL), -EINTR);
	cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, NULL, NULL), -EINTR);
	k.stop = true;
	pthread_join(t, NULL);
	cr_assert_geq(handled, 1);
	pending_fire(&pd);
	get_one(ctx);
	io_destroy(ctx);
	pending_close(&pd);
}

/* io_pgetevents swaps the mask atomically: a signal blocked before the
 * call and pending at its start is taken during the wait. */
Test(libaio_wait, pgetevents_swaps_the_mask_atomically)
{
	io_context_t ctx = new_ctx(2);
	struct pending pd;
	struct io_event ev;
	sigset_t block, waitmask;
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &waitmask);
	sigdelset(&waitmask, SIGUSR1);

	pending_start(ctx, &pd);
	handled = 0;
	raise(SIGUSR1);   /* pending: blocked */
	cr_assert_eq(handled, 0);
	cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, NULL, &waitmask), -EINTR);
	cr_assert_eq(handled, 1, "the handler ran during the wait");
	/* The old mask is back: SIGUSR1 blocked again. */
	sigset_t now;
	pthread_sigmask(SIG_SETMASK, NULL, &now);
	cr_assert(sigismember(&now, SIGUSR1));

	/* With events ready it returns them and the mask stays. */
	pending_fire(&pd);
	raise(SIGUSR1);
	struct timespec t = { 10, 0 };
	int rc = io_pgetevents(ctx, 1, 1, &ev, &t, &waitmask);
	cr_assert(rc == 1 || rc == -EINTR, "rc %d", rc);
	if (rc == -EINTR)
		cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, &t, &waitmask), 1);
	cr_assert_eq(ev.obj, &pd.cb);
	/* A timeout with the mask: nothing in flight, nothing ready. */
	t = (struct timespec){ 0, 20 * 1000000L };
	rc = io_pgetevents(ctx, 1, 1, &ev, &t, &waitmask);
	if (rc == -EINTR)   /* the SIGUSR1 raised above, if the event came first */
		rc = io_pgetevents(ctx, 1, 1, &ev, &t, &waitmask);
	cr_assert_eq(rc, 0);
	io_destroy(ctx);
	pending_close(&pd);
}

Test(libaio_wait, pgetevents_with_a_mask_gets_events)
{
	io_context_t ctx = new_ctx(4);
	struct pending pd;
	struct io_event ev;
	sigset_t mask;
	pthread_t t;

	sigemptyset(&mask);
	pending_start(ctx, &pd);
	pthread_create(&t, NULL, fire_later, &pd);
	cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, NULL, &mask), 1);
	cr_assert_eq(ev.obj, &pd.cb);
	pthread_join(t, NULL);
	io_destroy(ctx);
	pending_close(&pd);
}

/* ---- destroy under a waiter --------------------------------------------------- */

struct waiter {
	io_context_t ctx;
	bool masked;
	volatile int started;
	int rc;
};

static void *wait_forever(void *arg)
{
	struct waiter *w = arg;
	struct io_event ev;
	sigset_t none;

	sigemptyset(&none);
	w->started = 1;
	w->rc = w->masked ? io_pgetevents(w->ctx, 1, 1, &ev, NULL, &none)
	                  : io_getevents(w->ctx, 1, 1, &ev, NULL);
	return NULL;
}

Test(libaio_wait, destroy_wakes_waiters_with_einval)
{
	io_context_t ctx = new_ctx(2);
	struct pending pd;
	struct waiter w[2] = { { ctx, false, 0, 1 }, { ctx, true, 0, 1 } };
	pthread_t t[2];

	pending_start(ctx, &pd);
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, wait_forever, &w[i]);
	wait_until(w[0].started && w[1].started);
	sleep_ms(20);   /* let them reach the wait; correct either way */
	cr_assert_eq(io_destroy(ctx), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].rc, -EINVAL, "waiter %d: %d", i, w[i].rc);
	}
	pending_close(&pd);
}

/* ---- io_queue_wait -------------------------------------------------------------- */

Test(libaio_wait, queue_wait_waits_for_an_event)
{
	io_context_t ctx = new_ctx(4);
	struct pending pd;
	struct io_event ev;
	pthread_t t;
	struct timespec zero = { 0, 0 }, short_t = { 0, 20 * 1000000L };

	cr_assert_eq(io_queue_wait(ctx, NULL), 0, "nothing in flight: at once");
	pending_start(ctx, &pd);
	cr_assert_eq(io_queue_wait(ctx, &zero), 0);
	cr_assert_eq(io_queue_wait(ctx, &short_t), 0, "the timeout passes");
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0);
	pthread_create(&t, NULL, fire_later, &pd);
	cr_assert_eq(io_queue_wait(ctx, NULL), 0);
	/* It waited until the event was ready: */
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 1);
	pthread_join(t, NULL);
	cr_assert_eq(io_queue_wait((io_context_t)&pd, NULL), -EINVAL);
	io_destroy(ctx);
	pending_close(&pd);
}

/* ---- min_nr 0: one consistent view ------------------------------------------ */

/* io_getevents(min_nr 0, a timeout) with one request in flight through the
 * whole call must wait for its event, so a 0 is certain to be wrong here:
 * this thread is the only reaper and the request was accepted before the
 * call.  The decision can only be wrong if the event is pushed between the
 * reap that finds the ring empty and the look at what is in flight, so the
 * loop makes many round trips (each one checked, the loop bounded), varies
 * the caller's delay a little (longer ones make the worker's completion
 * land while the caller sleeps) so that completions land along its path,
 * and sets head, while the ring is empty, to tail + nr (the same slot: the
 * kernel reads it modulo nr), which sends the reap through its locked path,
 * a wider target. */
Test(libaio_wait, min_nr_zero_never_returns_0_with_a_request_in_flight,
     .timeout = 120)
{
	io_context_t ctx = new_ctx(4);
	struct test_ring *ring = ring_of(ctx);
	int fd = temp_file(0, 0);
	long long end = now_ms() + 30000;
	static char buf[256];
	struct iocb cb;
	struct io_event ev;
	long i;

	for (i = 0; i < 2000000 && now_ms() < end; i++) {
		struct timespec t = { 30, 0 };
		int rc;

		/* The ring is empty: head == tail, and so is tail + nr. */
		__atomic_store_n(&ring->head, ring->tail + ring->nr, __ATOMIC_RELAXED);
		io_prep_pwrite(&cb, fd, buf, sizeof buf, 0);
		cr_assert_eq(submit1(ctx, &cb), 1);
		for (volatile long k = (i % 64) * 2; k > 0; k--)
			;
		rc = io_getevents(ctx, 0, 1, &ev, &t);
		if (rc == 0)
			cr_assert_fail("round trip %ld: io_getevents gave 0 with the "
			               "write in flight or its event in the ring "
			               "(head %u tail %u)", i, ring->head, ring->tail);
		cr_assert_eq(rc, 1, "round trip %ld: %d", i, rc);
		cr_assert_eq(ev.obj, &cb);
		cr_assert_eq((long)ev.res, (long)sizeof buf);
	}
	cr_log_info("%ld round trips", i);
	io_destroy(ctx);
	close(fd);
}
