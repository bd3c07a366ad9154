/* posix_lio: lio_listio in both modes: waiting, skipped entries, bad
 * elements and arguments, the list's notification (also for an empty list,
 * and after every element's own), LIO_WAIT (and aio_suspend) returning with
 * the I/O while the elements' functions wait for the caller, and a LIO_WAIT
 * interrupted by a signal, which must return EINTR and leave nothing
 * behind. */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_lio, .timeout = 60);

#define SIG_LIST (SIGRTMIN + 3)

/* A NULL list where <aio.h> declares it nonnull: called through a
 * pointer, so that neither the compiler nor UBSan assumes otherwise. */
static struct aiocb *const *volatile no_list;
static int (*volatile lio_fn)(int, struct aiocb *const[], int, struct sigevent *) = lio_listio;

static void set_op(struct aiocb *cb, int fd, void *buf, size_t n, off_t off, int op)
{
	fill_cb(cb, fd, buf, n, off);
	cb->aio_lio_opcode = op;
}

/* ---- LIO_WAIT and LIO_NOWAIT ----------------------------------------------- */

Test(posix_lio, lio_wait_returns_with_every_element_done)
{
	enum { N = 8, LEN = 1000 };
	int fd = temp_file(0, 0);
	static char out[N][LEN], in[N][LEN];
	struct aiocb cbs[N], *list[N];

	for (int i = 0; i < N; i++) {
		memset(out[i], 'a' + i, LEN);
		set_op(&cbs[i], fd, out[i], LEN, i * LEN, LIO_WRITE);
		list[i] = &cbs[i];
	}
	cr_assert_eq(lio_listio(LIO_WAIT, list, N, NULL), 0, "%s", strerror(errno));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_error(&cbs[i]), 0, "element %d done when the call returns", i);
		cr_assert_eq(aio_return(&cbs[i]), LEN);
	}
	for (int i = 0; i < N; i++) {
		set_op(&cbs[i], fd, in[i], LEN, i * LEN, LIO_READ);
		list[i] = &cbs[i];
	}
	cr_assert_eq(lio_listio(LIO_WAIT, list, N, NULL), 0, "%s", strerror(errno));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(aio_error(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), LEN);
		cr_assert_arr_eq(in[i], out[i], LEN, "element %d", i);
	}
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

Test(posix_lio, lio_wait_waits_for_a_slow_element)
{
	int p[2], fd = temp_file(4096, 0);
	char pbuf[4], fbuf[64];
	struct aiocb pr, fr, *list[] = { &fr, &pr };
	struct late_writer w;

	make_pipe(p);
	set_op(&pr, p[0], pbuf, 4, 0, LIO_READ);
	set_op(&fr, fd, fbuf, sizeof fbuf, 0, LIO_READ);
	w.fd = p[1];
	cr_assert_eq(pthread_create(&w.t, NULL, write_later, &w), 0);
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(aio_error(&pr), 0, "returned before the pipe read completed");
	cr_assert_eq(aio_return(&pr), 4);
	cr_assert_arr_eq(pbuf, "late", 4);
	cr_assert_eq(aio_error(&fr), 0);
	pthread_join(w.t, NULL);
	close(p[0]);
	close(p[1]);
	close(fd);
}

static int list_calls;
static int list_value;

static void list_done(union sigval v)
{
	list_value = v.sival_int;
	__atomic_add_fetch(&list_calls, 1, __ATOMIC_RELEASE);
}

static int nlist(void)
{
	return __atomic_load_n(&list_calls, __ATOMIC_ACQUIRE);
}

static void thread_sigevent(struct sigevent *sev, void (*fn)(union sigval), int value)
{
	memset(sev, 0, sizeof *sev);
	sev->sigev_notify = SIGEV_THREAD;
	sev->sigev_notify_function = fn;
	sev->sigev_value.sival_int = value;
}

Test(posix_lio, lio_nowait_returns_at_once_and_notifies_when_all_done)
{
	int p[2], fd = temp_file(4096, 0);
	char pbuf[4], fbuf[64];
	struct aiocb pr, fr, *list[] = { &pr, &fr };
	struct sigevent sev;

	make_pipe(p);
	set_op(&pr, p[0], pbuf, 4, 0, LIO_READ);
	set_op(&fr, fd, fbuf, sizeof fbuf, 0, LIO_READ);
	thread_sigevent(&sev, list_done, 77);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, &sev), 0, "%s", strerror(errno));
	assert_in_progress(&pr);
	cr_assert_eq(wait_aio(&fr), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(nlist(), 0, "the list notified before its pipe read completed");
	put(p[1], "pipe", 4);
	wait_until(nlist() == 1, "the list's notification");
	cr_assert_eq(list_value, 77);
	cr_assert_eq(aio_error(&pr), 0);
	cr_assert_arr_eq(pbuf, "pipe", 4);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(nlist(), 1, "notified once");
	close(p[0]);
	close(p[1]);
	close(fd);
}

Test(posix_lio, cancelled_elements_count_as_done_for_the_list)
{
	int p[2];
	char b0[4], b1[4];
	struct aiocb e0, e1, *list[] = { &e0, &e1 };
	struct sigevent sev;

	make_pipe(p);
	set_op(&e0, p[0], b0, 4, 0, LIO_READ);
	set_op(&e1, p[0], b1, 4, 0, LIO_READ);
	thread_sigevent(&sev, list_done, 3);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, &sev), 0, "%s", strerror(errno));
	wait_stats(S.running == 1 && S.queued == 1, "e0 runs, e1 waits");
	cr_assert_eq(aio_cancel(p[0], &e1), AIO_CANCELED);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(nlist(), 0, "the list notified while e0 was in flight");
	put(p[1], "e0e0", 4);
	wait_until(nlist() == 1, "the list's notification");
	cr_assert_eq(list_value, 3);
	cr_assert_eq(aio_error(&e0), 0);
	cr_assert_eq(aio_error(&e1), ECANCELED);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(nlist(), 1, "notified once");
	close(p[0]);
	close(p[1]);
}

/* ---- entries ------------------------------------------------------------------ */

Test(posix_lio, null_and_nop_entries_are_skipped)
{
	int fd = temp_file(4096, 0);
	char buf[64], nbuf[8];
	struct aiocb r, nop, copy, *list[] = { NULL, &nop, &r, NULL };

	set_op(&r, fd, buf, sizeof buf, 100, LIO_READ);
	/* A NOP entry is not looked at: not even its fd or reqprio. */
	set_op(&nop, -1, nbuf, sizeof nbuf, -5, LIO_NOP);
	nop.aio_reqprio = 999;
	memcpy(&copy, &nop, sizeof nop);
	for (int mode = 0; mode < 2; mode++) {
		int m = mode ? LIO_NOWAIT : LIO_WAIT;
		cr_assert_eq(lio_listio(m, list, 4, NULL), 0, "mode %d: %s", m, strerror(errno));
		cr_assert_eq(wait_aio(&r), 0);
		cr_assert_eq(aio_return(&r), (ssize_t)sizeof buf);
		for (int i = 0; i < 64; i++)
			cr_assert_eq((unsigned char)buf[i], pattern(100 + i));
		cr_assert_arr_eq(&nop, &copy, sizeof nop, "the NOP aiocb was touched");
		cr_assert_eq(aio_error(&nop), EINVAL, "the NOP was never submitted");
	}
	cr_assert_eq(stats_now().submitted, 2);
	close(fd);
}

Test(posix_lio, unknown_opcode_element_fails_and_the_call_reports_eio)
{
	static const int bad[] = { 7, -1, 99 };
	int fd = temp_file(4096, 0);
	char rbuf[64], wbuf[8] = "written";

	for (unsigned b = 0; b < sizeof bad / sizeof bad[0]; b++)
		for (int mode = 0; mode < 2; mode++) {
			int m = mode ? LIO_NOWAIT : LIO_WAIT;
			struct aiocb r, w, x, *list[] = { &r, &x, &w };

			set_op(&r, fd, rbuf, sizeof rbuf, 0, LIO_READ);
			set_op(&x, fd, rbuf, sizeof rbuf, 0, bad[b]);
			set_op(&w, fd, wbuf, sizeof wbuf, 1000, LIO_WRITE);
			errno = 0;
			cr_assert_eq(lio_listio(m, list, 3, NULL), -1, "opcode %d mode %d", bad[b], m);
			cr_assert_eq(errno, EIO);
			cr_assert_eq(aio_error(&x), EINVAL);
			cr_assert_eq(aio_return(&x), -1);
			/* The good elements run all the same. */
			cr_assert_eq(wait_aio(&r), 0);
			cr_assert_eq(wait_aio(&w), 0);
			cr_assert_eq(aio_return(&r), (ssize_t)sizeof rbuf);
			cr_assert_eq(aio_return(&w), (ssize_t)sizeof wbuf);
		}
	close(fd);
}

Test(posix_lio, bad_fd_element_is_accepted_then_ebadf)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb r, bad, *list[] = { &r, &bad };

	set_op(&r, fd, buf, sizeof buf, 0, LIO_READ);
	set_op(&bad, closed_fd(), buf, sizeof buf, 0, LIO_READ);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, NULL), 0, "accepted: %s", strerror(errno));
	cr_assert_eq(wait_aio(&bad), EBADF);
	cr_assert_eq(wait_aio(&r), 0);

	/* LIO_WAIT reports that an element failed. */
	set_op(&r, fd, buf, sizeof buf, 0, LIO_READ);
	set_op(&bad, closed_fd(), buf, sizeof buf, 0, LIO_READ);
	errno = 0;
	cr_assert_eq(lio_listio(LIO_WAIT, list, 2, NULL), -1);
	cr_assert_eq(errno, EIO);
	cr_assert_eq(aio_error(&bad), EBADF);
	cr_assert_eq(aio_error(&r), 0);
	close(fd);
}

/* ---- arguments ------------------------------------------------------------------ */

Test(posix_lio, bad_mode_or_nent_gives_einval_and_submits_nothing)
{
	static const int bad_modes[] = { 2, -1, 42 };
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb r, *list[] = { &r };
	struct sigevent bad_sev;

	set_op(&r, fd, buf, sizeof buf, 0, LIO_READ);
	for (unsigned i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
		errno = 0;
		cr_assert_eq(lio_listio(bad_modes[i], list, 1, NULL), -1, "mode %d", bad_modes[i]);
		cr_assert_eq(errno, EINVAL);
	}
	for (int mode = 0; mode < 2; mode++) {
		errno = 0;
		cr_assert_eq(lio_listio(mode ? LIO_NOWAIT : LIO_WAIT, list, -1, NULL), -1);
		cr_assert_eq(errno, EINVAL);
	}
	/* A list sigevent with an unknown sigev_notify. */
	memset(&bad_sev, 0, sizeof bad_sev);
	bad_sev.sigev_notify = 777;
	errno = 0;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 1, &bad_sev), -1);
	cr_assert_eq(errno, EINVAL);

	cr_assert_eq(aio_error(&r), EINVAL, "the element was never submitted");
	cr_assert_eq(stats_now().submitted, 0);

	/* LIO_WAIT ignores its sigevent, however bad. */
	cr_assert_eq(lio_listio(LIO_WAIT, list, 1, &bad_sev), 0, "%s", strerror(errno));
	cr_assert_eq(aio_error(&r), 0);
	cr_assert_eq(aio_return(&r), (ssize_t)sizeof buf);
	close(fd);
}

/* ---- the list's notification ------------------------------------------------------ */

static struct {
	int count;
	int code;
	int value;
} sigrec;

static void list_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sigrec.code = si->si_code;
	sigrec.value = si->si_value.sival_int;
	__atomic_add_fetch(&sigrec.count, 1, __ATOMIC_RELEASE);
}

static int nsig(void)
{
	return __atomic_load_n(&sigrec.count, __ATOMIC_ACQUIRE);
}

Test(posix_lio, empty_nowait_list_still_signals)
{
	struct aiocb nop, *list[] = { NULL, &nop };
	struct sigevent sev;

	on_signal(SIG_LIST, list_signal, 0);
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIG_LIST;
	sev.sigev_value.sival_int = 5;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 0, &sev), 0, "%s", strerror(errno));
	wait_until(nsig() == 1, "the signal for an empty list");
	cr_assert_eq(sigrec.code, SI_ASYNCIO);
	cr_assert_eq(sigrec.value, 5);

	/* Only NULL and NOP entries: empty too. */
	set_op(&nop, -1, NULL, 0, 0, LIO_NOP);
	sev.sigev_value.sival_int = 6;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 2, &sev), 0, "%s", strerror(errno));
	wait_until(nsig() == 2, "the signal for a list of NULL and NOP");
	cr_assert_eq(sigrec.value, 6);
}

Test(posix_lio, empty_nowait_list_still_calls_its_thread)
{
	struct sigevent sev;

	thread_sigevent(&sev, list_done, 9);
	cr_assert_eq(lio_fn(LIO_NOWAIT, no_list, 0, &sev), 0, "%s", strerror(errno));
	wait_until(nlist() == 1, "the function for an empty list");
	cr_assert_eq(list_value, 9);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(nlist(), 1);
}

/* SIGEV_THREAD: when the list's function runs, every element's has run
 * to its end. */
enum { NEL = 6 };
static int el_entered, el_returned, el_returned_at_list = -1;

static void element_done(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&el_entered, 1, __ATOMIC_ACQ_REL);
	sleep_ms(5);   /* a slow handler: the list must wait for it */
	__atomic_add_fetch(&el_returned, 1, __ATOMIC_ACQ_REL);
}

static void list_after_elements(union sigval v)
{
	(void)v;
	__atomic_store_n(&el_returned_at_list, __atomic_load_n(&el_returned, __ATOMIC_ACQUIRE),
	                 __ATOMIC_RELEASE);
	__atomic_add_fetch(&list_calls, 1, __ATOMIC_RELEASE);
}

Test(posix_lio, element_threads_finish_before_the_lists)
{
	int fd = temp_file(65536, 0);
	static char bufs[NEL][64];
	struct aiocb cbs[NEL], *list[NEL];
	struct sigevent sev;

	for (int i = 0; i < NEL; i++) {
		set_op(&cbs[i], fd, bufs[i], 64, i * 64, LIO_READ);
		thread_sigevent(&cbs[i].aio_sigevent, element_done, i);
		list[i] = &cbs[i];
	}
	thread_sigevent(&sev, list_after_elements, 0);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, NEL, &sev), 0, "%s", strerror(errno));
	wait_until(nlist() == 1, "the list's function");
	cr_assert_eq(__atomic_load_n(&el_returned_at_list, __ATOMIC_ACQUIRE), NEL,
	             "the list was notified with %d of %d element notifications done",
	             el_returned_at_list, NEL);
	close(fd);
}

/* SIGEV_THREAD_ID to this thread, which blocks the signal and takes the
 * queue with sigtimedwait: queued real-time signals of one number come in
 * the order they were sent. */
Test(posix_lio, element_signals_come_before_the_lists)
{
	int fd = temp_file(65536, 0), got = 0;
	static char bufs[NEL][64];
	struct aiocb cbs[NEL], *list[NEL];
	struct sigevent sev;
	sigset_t set;
	pid_t me = (pid_t)syscall(SYS_gettid);

	sigemptyset(&set);
	sigaddset(&set, SIG_LIST);
	mask_signal(SIG_BLOCK, SIG_LIST);
	for (int i = 0; i < NEL; i++) {
		set_op(&cbs[i], fd, bufs[i], 64, i * 64, LIO_READ);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
		cbs[i].aio_sigevent.sigev_signo = SIG_LIST;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		cbs[i].aio_sigevent._sigev_un._tid = me;
		list[i] = &cbs[i];
	}
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIG_LIST;
	sev.sigev_value.sival_int = 100;
	sev._sigev_un._tid = me;
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, NEL, &sev), 0, "%s", strerror(errno));
	for (int n = 0; n <= NEL; n++) {
		struct timespec ts = { DEADLINE_MS / 1000, 0 };
		siginfo_t si;

		cr_assert_eq(sigtimedwait(&set, &si, &ts), SIG_LIST, "signal %d of %d", n, NEL + 1);
		if (si.si_value.sival_int == 100)
			cr_assert_eq(got, NEL, "the list's signal came after %d of %d elements'",
			             got, NEL);
		else
			got++;
	}
	cr_assert_eq(got, NEL);
	close(fd);
}

/* ---- waiting returns with the I/O, not with the functions ----------------- */

/* The caller holds `held` while it waits; the elements' functions take it.
 * The wait must end with the I/O, and the functions run once it is let go. */
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static int held_calls;

static void take_held(union sigval v)
{
	(void)v;
	pthread_mutex_lock(&held);
	held_calls++;
	pthread_mutex_unlock(&held);
}

static int held_count(void)
{
	pthread_mutex_lock(&held);
	int n = held_calls;
	pthread_mutex_unlock(&held);
	return n;
}

static void wait_held_calls(int n)
{
	long long end = now_ms() + DEADLINE_MS;
	int polls = 0;

	while (held_count() < n) {
		child_check(now_ms() < end, "%d of %d functions ran", held_count(), n);
		poll_pause(&polls);
	}
	child_check(held_count() == n, "%d calls for %d requests", held_count(), n);
}

static int lio_wait_under_the_functions_lock(void *arg)
{
	int fd = *(int *)arg, rc;
	static char bufs[NEL][64];
	struct aiocb cbs[NEL], *list[NEL];

	for (int i = 0; i < NEL; i++) {
		set_op(&cbs[i], fd, bufs[i], 64, i * 64, LIO_READ);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = take_held;
		list[i] = &cbs[i];
	}
	pthread_mutex_lock(&held);
	rc = lio_listio(LIO_WAIT, list, NEL, NULL);
	child_check(rc == 0, "lio_listio: %s", strerror(errno));
	for (int i = 0; i < NEL; i++)
		child_check(aio_error(&cbs[i]) == 0 && aio_return(&cbs[i]) == 64,
		            "element %d: %s", i, strerror(aio_error(&cbs[i])));
	child_check(held_calls == 0, "a function ran under the caller's lock");
	pthread_mutex_unlock(&held);
	wait_held_calls(NEL);
	return 0;
}

Test(posix_lio, lio_wait_returns_before_the_elements_functions)
{
	int fd = temp_file(65536, 0);

	/* A child with a deadline: the wait must not hang on the functions. */
	run_child(lio_wait_under_the_functions_lock, &fd);
	close(fd);
}

static int suspend_under_the_functions_lock(void *arg)
{
	int fd = *(int *)arg;
	char buf[64];
	struct aiocb cb;
	const struct aiocb *list[] = { &cb };

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = take_held;
	pthread_mutex_lock(&held);
	child_check(aio_read(&cb) == 0, "aio_read: %s", strerror(errno));
	child_check(aio_suspend(list, 1, NULL) == 0, "aio_suspend: %s", strerror(errno));
	child_check(aio_error(&cb) == 0 && aio_return(&cb) == 64, "the read");
	child_check(held_calls == 0, "the function ran under the caller's lock");
	pthread_mutex_unlock(&held);
	wait_held_calls(1);
	return 0;
}

Test(posix_lio, aio_suspend_returns_before_the_function)
{
	int fd = temp_file(4096, 0);

	run_child(suspend_under_the_functions_lock, &fd);
	close(fd);
}

/* ---- LIO_WAIT interrupted ----------------------------------------------------------- */

static int interrupted;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	__atomic_add_fetch(&interrupted, 1, __ATOMIC_RELAXED);
}

static int el_calls;

static void count_element(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&el_calls, 1, __ATOMIC_RELEASE);
}

Test(posix_lio, lio_wait_interrupted_returns_eintr_and_leaves_nothing_behind)
{
	int p[2], fd = temp_file(4096, 0);
	char buf[4], fbuf[64];
	struct aiocb r, fr, *list[] = { &r };
	struct aiocb *list2[] = { &fr };
	struct interrupter it;
	int rc, err;

	on_signal(SIGUSR1, on_usr1, 0);   /* no SA_RESTART */
	make_pipe(p);
	set_op(&r, p[0], buf, sizeof buf, 0, LIO_READ);
	thread_sigevent(&r.aio_sigevent, count_element, 0);
	interrupter_start(&it, SIGUSR1);
	rc = lio_listio(LIO_WAIT, list, 1, NULL);
	err = errno;
	interrupter_stop(&it);
	cr_assert_eq(rc, -1, "lio_listio returned %d", rc);
	cr_assert_eq(err, EINTR, "%s", strerror(err));
	cr_assert_gt(__atomic_load_n(&interrupted, __ATOMIC_RELAXED), 0);

	/* The element is still in flight, and completes normally later. */
	assert_in_progress(&r);
	put(p[1], "wake", 4);
	cr_assert_eq(wait_aio(&r), 0);
	cr_assert_eq(aio_return(&r), 4);
	cr_assert_arr_eq(buf, "wake", 4);
	wait_until(__atomic_load_n(&el_calls, __ATOMIC_ACQUIRE) == 1, "its notification");

	/* The engine is fine: another LIO_WAIT, on both fds. */
	set_op(&r, p[0], buf, sizeof buf, 0, LIO_READ);
	set_op(&fr, fd, fbuf, sizeof fbuf, 0, LIO_READ);
	put(p[1], "more", 4);
	cr_assert_eq(lio_listio(LIO_WAIT, list, 1, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(lio_listio(LIO_WAIT, list2, 1, NULL), 0, "%s", strerror(errno));
	cr_assert_arr_eq(buf, "more", 4);
	cr_assert_eq(aio_return(&fr), (ssize_t)sizeof fbuf);
	close(p[0]);
	close(p[1]);
	close(fd);
}
