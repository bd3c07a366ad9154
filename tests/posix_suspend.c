/* posix_suspend: aio_suspend returns when any listed request is done,
 * times out after a relative timeout with EAGAIN, polls with a zero one,
 * returns EINTR when a signal interrupts it, skips NULL entries and rejects
 * an invalid timespec with EINVAL (glibc aborts). */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_suspend, .timeout = 60);

static void pending_read(struct aiocb *cb, int p[2], char *buf)
{
	make_pipe(p);
	fill_cb(cb, p[0], buf, 4, 0);
	cr_assert_eq(aio_read(cb), 0, "aio_read: %s", strerror(errno));
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

Test(posix_suspend, relative_timeout_gives_eagain)
{
	int p[2];
	char buf[4];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };
	struct timespec ts = { 0, 50 * 1000000L };
	long long t0, waited;

	pending_read(&cb, p, buf);
	t0 = now_ms();
	errno = 0;
	cr_assert_eq(aio_suspend(list, 1, &ts), -1);
	cr_assert_eq(errno, EAGAIN);
	waited = now_ms() - t0;
	/* A relative timeout: it waited that long (an absolute one, taken as
	 * a time long past, would return at once). */
	cr_assert_geq(waited, 49, "returned after %lld ms of a 50 ms timeout", waited);
	assert_in_progress(&cb);
	put(p[1], "data", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	close_pipe(p);
}

Test(posix_suspend, zero_timeout_polls)
{
	int p[2], fd = temp_file(4096, 0);
	char buf[4], fbuf[64];
	struct aiocb cb, done;
	const struct aiocb *pending[] = { &cb }, *both[] = { &cb, &done };
	struct timespec zero = { 0, 0 };

	pending_read(&cb, p, buf);
	errno = 0;
	cr_assert_eq(aio_suspend(pending, 1, &zero), -1);
	cr_assert_eq(errno, EAGAIN);
	fill_cb(&done, fd, fbuf, sizeof fbuf, 0);
	cr_assert_eq(aio_read(&done), 0);
	cr_assert_eq(wait_aio(&done), 0);
	cr_assert_eq(aio_suspend(both, 2, &zero), 0, "one of them is done");
	put(p[1], "data", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	close_pipe(p);
	close(fd);
}

struct late_writer {
	int fd;
	pthread_t t;
};

static void *write_later(void *arg)
{
	struct late_writer *w = arg;

	sleep_ms(SETTLE_MS);
	if (write(w->fd, "late", 4) != 4)
		abort();
	return NULL;
}

Test(posix_suspend, returns_when_any_listed_request_completes)
{
	int p1[2], p2[2];
	char b1[4], b2[4];
	struct aiocb c1, c2;
	const struct aiocb *list[] = { &c1, &c2 };
	struct timespec ts = { DEADLINE_MS / 1000, 0 };
	struct late_writer w;

	pending_read(&c1, p1, b1);
	pending_read(&c2, p2, b2);
	w.fd = p2[1];
	cr_assert_eq(pthread_create(&w.t, NULL, write_later, &w), 0);
	cr_assert_eq(aio_suspend(list, 2, &ts), 0, "%s", strerror(errno));
	cr_assert_eq(aio_error(&c2), 0, "returned, yet c2 is not done");
	assert_in_progress(&c1);
	pthread_join(w.t, NULL);
	cr_assert_eq(aio_return(&c2), 4);

	/* Without a timeout too. */
	{
		const struct aiocb *one[] = { &c1 };
		w.fd = p1[1];
		cr_assert_eq(pthread_create(&w.t, NULL, write_later, &w), 0);
		cr_assert_eq(aio_suspend(one, 1, NULL), 0, "%s", strerror(errno));
		cr_assert_eq(aio_error(&c1), 0);
		pthread_join(w.t, NULL);
	}
	close_pipe(p1);
	close_pipe(p2);
}

Test(posix_suspend, already_done_returns_at_once)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_suspend(list, 1, NULL), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	close(fd);
}

Test(posix_suspend, null_entries_are_skipped)
{
	int p[2], fd = temp_file(4096, 0);
	char buf[4], fbuf[64];
	struct aiocb cb, done;
	const struct aiocb *pending[] = { NULL, &cb, NULL };
	const struct aiocb *with_done[] = { NULL, &cb, NULL, &done };
	const struct aiocb *none[] = { NULL, NULL };
	struct timespec ts = { 0, 20 * 1000000L };

	pending_read(&cb, p, buf);
	/* A NULL is not a finished request. */
	errno = 0;
	cr_assert_eq(aio_suspend(pending, 3, &ts), -1);
	cr_assert_eq(errno, EAGAIN);
	fill_cb(&done, fd, fbuf, sizeof fbuf, 0);
	cr_assert_eq(aio_read(&done), 0);
	cr_assert_eq(wait_aio(&done), 0);
	cr_assert_eq(aio_suspend(with_done, 4, &ts), 0);
	/* Nothing to wait for: returns at once, as glibc. */
	cr_assert_eq(aio_suspend(none, 2, NULL), 0);
	put(p[1], "data", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	close_pipe(p);
	close(fd);
}

Test(posix_suspend, invalid_timespec_gives_einval)
{
	static const struct timespec bad[] = {
		{ 0, 1000000000L }, { 0, 2000000000L }, { 1, -1 }, { 0, -1000 },
	};
	int p[2];
	char buf[4];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };

	pending_read(&cb, p, buf);
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		cr_assert_eq(aio_suspend(list, 1, &bad[i]), -1, "tv_nsec %ld", bad[i].tv_nsec);
		cr_assert_eq(errno, EINVAL, "tv_nsec %ld", bad[i].tv_nsec);
	}
	assert_in_progress(&cb);
	put(p[1], "data", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	close_pipe(p);
}

Test(posix_suspend, negative_nent_gives_einval)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	errno = 0;
	cr_assert_eq(aio_suspend(list, -1, NULL), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(wait_aio(&cb), 0);
	close(fd);
}

static int handled;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	__atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
}

static void check_eintr(const struct timespec *timeout)
{
	int p[2], rc, err;
	char buf[4];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };
	struct interrupter it;

	pending_read(&cb, p, buf);
	interrupter_start(&it, SIGUSR1);
	rc = aio_suspend(list, 1, timeout);
	err = errno;
	interrupter_stop(&it);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err, EINTR, "%s", strerror(err));
	cr_assert_gt(__atomic_load_n(&handled, __ATOMIC_RELAXED), 0);
	assert_in_progress(&cb);
	put(p[1], "data", 4);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), 4);
	close_pipe(p);
}

Test(posix_suspend, signal_interrupts_with_eintr)
{
	struct timespec ts = { DEADLINE_MS / 1000, 0 };

	on_signal(SIGUSR1, on_usr1, 0);
	check_eintr(NULL);
	check_eintr(&ts);
}
