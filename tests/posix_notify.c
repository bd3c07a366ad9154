/* posix_notify: the sigevent kinds of the POSIX front end.  SIGEV_NONE,
 * SIGEV_SIGNAL (payload checked in a SA_SIGINFO handler), SIGEV_THREAD (the
 * value, reused notifier threads, the caller's thread attributes, each
 * function as if on a thread of its own: its signal mask, functions that
 * wait for each other, idle notifiers that take no process signal),
 * SIGEV_THREAD_ID; every request notified exactly once, cancelled and
 * failed ones included; a failed notification keeps the I/O's result.
 *
 * Signal handlers only record, with atomics; the test thread checks.  A
 * process-directed signal may be handled on any thread that does not block
 * it (Criterion has one of its own), which the records allow for. */
#include "common.h"

#include <sys/resource.h>

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_notify, .timeout = 60);

#define SIG_A (SIGRTMIN + 1)
#define SIG_B (SIGRTMIN + 2)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---- what a handler saw ---------------------------------------------------- */

static struct {
	int count;
	int signo, code, err;
	pid_t pid, tid;
	uid_t uid;
	void *value;
	const struct aiocb *cb;   /* aio_error of this one is read in the handler */
} seen;

static void record(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	seen.signo = sig;
	seen.code = si->si_code;
	seen.pid = si->si_pid;
	seen.uid = si->si_uid;
	seen.value = si->si_value.sival_ptr;
	seen.tid = my_tid();
	seen.err = seen.cb ? aio_error(seen.cb) : -1;
	__atomic_add_fetch(&seen.count, 1, __ATOMIC_RELEASE);
}

static int seen_count(void)
{
	return __atomic_load_n(&seen.count, __ATOMIC_ACQUIRE);
}

static void set_signal(struct aiocb *cb, int sig, void *value)
{
	cb->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
	cb->aio_sigevent.sigev_signo = sig;
	cb->aio_sigevent.sigev_value.sival_ptr = value;
}

/* ---- SIGEV_NONE ------------------------------------------------------------ */

Test(posix_notify, sigev_none_sends_nothing)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	on_signal(SIG_A, record, 0);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_signo = SIG_A;  /* ignored with SIGEV_NONE */
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(seen_count(), 0, "a signal came for SIGEV_NONE");
	cr_assert_eq(stats_now().notify_failed, 0);
	close(fd);
}

Test(posix_notify, zeroed_sigevent_sends_nothing)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	/* As glibc: a zeroed aiocb asks for SIGEV_SIGNAL with signal 0. */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	memset(&cb.aio_sigevent, 0, sizeof cb.aio_sigevent);
	cr_assert_eq(aio_read(&cb), 0, "%s", strerror(errno));
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	cr_assert_eq(stats_now().notify_failed, 0);
	close(fd);
}

/* ---- SIGEV_SIGNAL ---------------------------------------------------------- */

static void check_signal_payload(int sig, struct aiocb *cb, int want_err)
{
	wait_until(seen_count() >= 1, "no signal %d came", sig);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(seen_count(), 1, "one request, one signal");
	cr_assert_eq(seen.signo, sig);
	cr_assert_eq(seen.code, SI_ASYNCIO, "si_code %d", seen.code);
	cr_assert_eq(seen.pid, getpid());
	cr_assert_eq(seen.uid, getuid());
	cr_assert_eq(seen.value, (void *)cb, "si_value as given");
	cr_assert_eq(seen.err, want_err, "aio_error in the handler: %s", strerror(seen.err));
}

Test(posix_notify, sigev_signal_payload_in_handler)
{
	int fd = temp_file(4096, 0);
	char buf[100];
	struct aiocb cb;

	on_signal(SIG_A, record, 0);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	set_signal(&cb, SIG_A, &cb);
	seen.cb = &cb;
	cr_assert_eq(aio_read(&cb), 0);
	check_signal_payload(SIG_A, &cb, 0);
	cr_assert_eq(aio_return(&cb), 100);
	close(fd);
}

Test(posix_notify, sigev_signal_for_a_later_completion)
{
	int p[2];
	char buf[4];
	struct aiocb cb;

	on_signal(SIGUSR2, record, 0);
	make_pipe(p);
	fill_cb(&cb, p[0], buf, sizeof buf, 0);
	set_signal(&cb, SIGUSR2, &cb);
	seen.cb = &cb;
	cr_assert_eq(aio_read(&cb), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(seen_count(), 0, "a signal before the read completed");
	put(p[1], "abcd", 4);
	check_signal_payload(SIGUSR2, &cb, 0);
	cr_assert_eq(aio_return(&cb), 4);
	close(p[0]);
	close(p[1]);
}

Test(posix_notify, sigev_signal_for_a_failed_request)
{
	char buf[4];
	struct aiocb cb;

	on_signal(SIG_A, record, 0);
	fill_cb(&cb, closed_fd(), buf, sizeof buf, 0);
	set_signal(&cb, SIG_A, &cb);
	seen.cb = &cb;
	cr_assert_eq(aio_read(&cb), 0);
	check_signal_payload(SIG_A, &cb, EBADF);
	cr_assert_eq(aio_return(&cb), -1);
}

/* ---- SIGEV_THREAD ---------------------------------------------------------- */

enum { MAXEV = 256 };
static struct {
	int calls[MAXEV];
	pid_t tid[MAXEV];
	size_t stack[MAXEV];
	int total;
} th;

static void thread_fn(union sigval v)
{
	int i = v.sival_int;
	pthread_attr_t a;
	size_t sz = 0;

	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, &sz);
		pthread_attr_destroy(&a);
	}
	if (i >= 0 && i < MAXEV) {
		th.tid[i] = my_tid();
		th.stack[i] = sz;
		__atomic_add_fetch(&th.calls[i], 1, __ATOMIC_RELEASE);
	}
	__atomic_add_fetch(&th.total, 1, __ATOMIC_RELEASE);
}

static int th_calls(int i)
{
	return __atomic_load_n(&th.calls[i], __ATOMIC_ACQUIRE);
}

static int th_total(void)
{
	return __atomic_load_n(&th.total, __ATOMIC_ACQUIRE);
}

static void set_thread(struct aiocb *cb, int value, pthread_attr_t *attr)
{
	cb->aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb->aio_sigevent.sigev_notify_function = thread_fn;
	cb->aio_sigevent.sigev_notify_attributes = attr;
	cb->aio_sigevent.sigev_value.sival_int = value;
}

static int distinct(const pid_t *tids, int n)
{
	int d = 0;

	for (int i = 0; i < n; i++) {
		int j;
		for (j = 0; j < i && tids[j] != tids[i]; j++)
			;
		d += j == i;
	}
	return d;
}

Test(posix_notify, sigev_thread_calls_the_function_with_the_value)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	set_thread(&cb, 42, NULL);
	cr_assert_eq(aio_read(&cb), 0);
	wait_until(th_calls(42) == 1, "the function was not called with 42");
	cr_assert_eq(aio_error(&cb), 0, "called before the result was final");
	cr_assert_neq(th.tid[42], my_tid(), "called on the submitting thread");
	sleep_ms(SETTLE_MS);
	cr_assert_eq(th_total(), 1);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	close(fd);
}

Test(posix_notify, sigev_thread_reuses_threads_one_event_at_a_time)
{
	enum { N = 64 };
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	for (int i = 0; i < N; i++) {
		fill_cb(&cb, fd, buf, sizeof buf, 0);
		set_thread(&cb, i, NULL);
		cr_assert_eq(aio_read(&cb), 0);
		wait_until(th_calls(i) == 1, "event %d", i);
		cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	}
	cr_assert_leq(distinct(th.tid, N), N / 4,
	              "%d events ran on %d threads: not reused", N, distinct(th.tid, N));
	close(fd);
}

Test(posix_notify, sigev_thread_reuses_threads_for_a_burst)
{
	enum { N = 200 };
	int fd = temp_file(N * 64, 0);
	static char bufs[N][64];
	static struct aiocb cbs[N];

	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		set_thread(&cbs[i], i, NULL);
		cr_assert_eq(aio_read(&cbs[i]), 0, "%d: %s", i, strerror(errno));
	}
	wait_until(th_total() == N, "%d of %d notifications", th_total(), N);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(th_total(), N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(th_calls(i), 1, "event %d", i);
		cr_assert_eq(aio_error(&cbs[i]), 0);
	}
	cr_assert_lt(distinct(th.tid, N), N / 4,
	             "%d events ran on %d threads: not reused", N, distinct(th.tid, N));
	close(fd);
}

Test(posix_notify, sigev_thread_uses_the_given_attributes)
{
	enum { N = 3 };
	static pthread_attr_t attr;  /* must outlive the notifications */
	size_t want = 3 * 1024 * 1024 + 5 * 4096;
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cbs[N];

	pthread_attr_init(&attr);
	cr_assert_eq(pthread_attr_setstacksize(&attr, want), 0);
	/* Joinable, as the caller gave it: nobody joins, it must not leak. */
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, buf, sizeof buf, 0);
		set_thread(&cbs[i], i, &attr);
		cr_assert_eq(aio_read(&cbs[i]), 0);
		wait_until(th_calls(i) == 1, "event %d", i);
		cr_assert_eq(th.stack[i], want, "event %d ran on a thread with a %zu-byte stack",
		             i, th.stack[i]);
	}
	close(fd);
}

Test(posix_notify, sigev_thread_with_unusable_attributes_still_notifies)
{
	static pthread_attr_t attr;
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	/* No thread can have a 64 TiB stack: creating it fails. */
	pthread_attr_init(&attr);
	cr_assert_eq(pthread_attr_setstacksize(&attr, 1ULL << 46), 0);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	set_thread(&cb, 7, &attr);
	cr_assert_eq(aio_read(&cb), 0);
	wait_until(th_calls(7) == 1, "the function was not called");
	cr_assert_eq(aio_error(&cb), 0, "the read's result stands");
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(th_total(), 1);
	close(fd);
}

/* ---- SIGEV_THREAD: as if on a thread of its own ---------------------------- */

static int idle_returned;

static void return_at_once(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&idle_returned, 1, __ATOMIC_RELEASE);
}

/* Every thread of this process but the caller is asleep: not running, so
 * not between a function's return and its wait either.  In a forked child. */
static bool others_asleep(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool asleep = true;

	child_check(d != NULL, "opendir: %s", strerror(errno));
	while (asleep && (e = readdir(d))) {
		char path[300], buf[512], *p;
		ssize_t n;
		int fd;

		if (e->d_name[0] == '.' || atoi(e->d_name) == my_tid())
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;   /* gone */
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		p = strrchr(buf, ')');
		asleep = p && p[1] == ' ' && p[2] == 'S';
	}
	closedir(d);
	return asleep;
}

static int signal_past_idle_notifiers(void *arg)
{
	enum { N = 4 };
	int fd = *(int *)arg, polls = 0;
	static char bufs[N][64];
	struct aiocb cbs[N];
	struct timespec wait = { DEADLINE_MS / 1000, 0 };
	long long end = now_ms() + DEADLINE_MS;
	sigset_t usr1;

	signal(SIGUSR1, SIG_DFL);   /* its default action ends the process */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	child_check(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0, "pthread_sigmask");
	child_check(aiopool_set(AIOPOOL_IDLE_MS, 10 * DEADLINE_MS) == 0, "idle time");
	for (int i = 0; i < N; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = return_at_once;
		child_check(aio_read(&cbs[i]) == 0, "aio_read: %s", strerror(errno));
	}
	while (__atomic_load_n(&idle_returned, __ATOMIC_ACQUIRE) < N || !others_asleep()) {
		child_check(now_ms() < end, "%d of %d functions returned; every other "
		            "thread asleep: %d", idle_returned, N, others_asleep());
		poll_pause(&polls);
	}
	child_check(count_tasks() > 1, "no notifier thread is left");
	/* Process-directed, as from another process: only an idle aiopool
	 * thread could take it. */
	child_check(kill(getpid(), SIGUSR1) == 0, "kill: %s", strerror(errno));
	child_check(sigtimedwait(&usr1, NULL, &wait) == SIGUSR1,
	            "sigtimedwait: %s", strerror(errno));
	return 0;
}

Test(posix_notify, idle_notifiers_keep_process_signals_blocked)
{
	int fd = temp_file(4096, 0);

	/* The child dies of SIGUSR1 if an idle notifier takes it. */
	run_child(signal_past_idle_notifiers, &fd);
	close(fd);
}

static void *mask_of_function;   /* NULL until the function saw its mask */
static sigset_t function_mask;

static void record_mask(union sigval v)
{
	(void)v;
	pthread_sigmask(SIG_BLOCK, NULL, &function_mask);
	__atomic_store_n(&mask_of_function, &function_mask, __ATOMIC_RELEASE);
}

Test(posix_notify, sigev_thread_function_runs_with_no_signal_blocked)
{
	int fd = temp_file(4096, 0);
	char buf[16];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = record_mask;
	cr_assert_eq(aio_read(&cb), 0);
	wait_until(__atomic_load_n(&mask_of_function, __ATOMIC_ACQUIRE) != NULL, "the function");
	for (int s = 1; s <= SIGRTMAX; s++)
		cr_assert_eq(sigismember(&function_mask, s), 0,
		             "signal %d blocked in the function (glibc blocks none)", s);
	cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
	close(fd);
}

/* Functions that wait for each other: each must have a thread. */
enum { MEET_N = 32 };
static struct {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int arrived, met, returned;
} meet = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void meet_the_others(union sigval v)
{
	struct timespec end;

	(void)v;
	/* Longer than the test waits: a function left waiting fails the test,
	 * it does not time out first. */
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += 2 * DEADLINE_MS / 1000;
	pthread_mutex_lock(&meet.m);
	if (++meet.arrived == MEET_N)
		pthread_cond_broadcast(&meet.cv);
	while (meet.arrived < MEET_N &&
	       pthread_cond_timedwait(&meet.cv, &meet.m, &end) != ETIMEDOUT)
		;
	meet.met += meet.arrived == MEET_N;
	meet.returned++;
	pthread_mutex_unlock(&meet.m);
}

static int meet_count(int *field)
{
	pthread_mutex_lock(&meet.m);
	int n = *field;
	pthread_mutex_unlock(&meet.m);
	return n;
}

Test(posix_notify, sigev_thread_functions_that_wait_for_each_other_all_run)
{
	int fd = temp_file(MEET_N * 64, 0);
	static char bufs[MEET_N][64];
	static struct aiocb cbs[MEET_N];

	for (int i = 0; i < MEET_N; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = meet_the_others;
		cr_assert_eq(aio_read(&cbs[i]), 0, "%d: %s", i, strerror(errno));
	}
	wait_until(meet_count(&meet.arrived) == MEET_N,
	           "%d of %d functions started: the others wait for one to return",
	           meet_count(&meet.arrived), MEET_N);
	wait_until(meet_count(&meet.returned) == MEET_N, "the functions returned");
	cr_assert_eq(meet_count(&meet.met), MEET_N);
	for (int i = 0; i < MEET_N; i++)
		cr_assert_eq(aio_return(&cbs[i]), 64);
	close(fd);
}

/* ---- SIGEV_THREAD_ID -------------------------------------------------------- */

struct target {
	pid_t tid;
	int ready, stop;
};

static void *target_thread(void *arg)
{
	struct target *t = arg;
	long long end = now_ms() + DEADLINE_MS;

	t->tid = my_tid();
	__atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE) && now_ms() < end)
		sleep_ms(1);
	return NULL;
}

Test(posix_notify, sigev_thread_id_delivers_to_the_named_thread)
{
	struct target t = { 0, 0, 0 };
	pthread_t th_;
	int p[2];
	char buf[4];
	struct aiocb cb;

	on_signal(SIG_B, record, 0);
	cr_assert_eq(pthread_create(&th_, NULL, target_thread, &t), 0);
	wait_until(__atomic_load_n(&t.ready, __ATOMIC_ACQUIRE), "target thread");
	make_pipe(p);
	fill_cb(&cb, p[0], buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD_ID;
	cb.aio_sigevent.sigev_signo = SIG_B;
	cb.aio_sigevent.sigev_value.sival_ptr = &cb;
	cb.aio_sigevent.sigev_notify_thread_id = t.tid;
	seen.cb = &cb;
	cr_assert_eq(aio_read(&cb), 0, "%s", strerror(errno));
	/* This thread does not block SIG_B either: only the target may get it. */
	put(p[1], "abcd", 4);
	check_signal_payload(SIG_B, &cb, 0);
	cr_assert_eq(seen.tid, t.tid, "delivered to thread %d, not to %d", (int)seen.tid, (int)t.tid);
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th_, NULL);
	close(p[0]);
	close(p[1]);
}

/* ---- exactly once ----------------------------------------------------------- */

enum { ONCE_N = 32 };
static int sig_calls[ONCE_N];

static void count_signal(int sig, siginfo_t *si, void *uc)
{
	int i = si->si_value.sival_int;

	(void)sig;
	(void)uc;
	if (si->si_code == SI_ASYNCIO && i >= 0 && i < ONCE_N)
		__atomic_add_fetch(&sig_calls[i], 1, __ATOMIC_RELEASE);
}

/* Completed, failed, cancelled, lio_listio elements and the list itself:
 * notify(cb, i) sets up request i's sigevent; calls(i) counts. */
static void exactly_once(void (*notify)(struct sigevent *, int), int (*calls)(int))
{
	int fd = temp_file(65536, 0), p[2];
	static char bufs[ONCE_N][64];
	static struct aiocb cbs[ONCE_N];
	struct aiocb *list[4];
	struct sigevent lsig;
	int i;

	make_pipe(p);
	for (i = 0; i < 20; i++) {             /* 0..19: reads */
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		notify(&cbs[i].aio_sigevent, i);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	for (i = 0; i < 20; i++)
		cr_assert_eq(wait_aio(&cbs[i]), 0);
	for (i = 20; i < 25; i++) {            /* 20 runs, 21..24 get cancelled */
		fill_cb(&cbs[i], p[0], bufs[i], 4, 0);
		notify(&cbs[i].aio_sigevent, i);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	wait_stats(S.running == 1 && S.queued == 4, "one pipe read runs, four wait");
	cr_assert_eq(aio_cancel(p[0], NULL), AIO_NOTCANCELED);
	for (i = 21; i < 25; i++)
		cr_assert_eq(aio_error(&cbs[i]), ECANCELED);
	fill_cb(&cbs[25], -1, bufs[25], 4, 0);  /* 25: EBADF */
	notify(&cbs[25].aio_sigevent, 25);
	cr_assert_eq(aio_read(&cbs[25]), 0);
	for (i = 26; i < 30; i++) {            /* 26..29: lio_listio elements */
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_lio_opcode = LIO_READ;
		notify(&cbs[i].aio_sigevent, i);
		list[i - 26] = &cbs[i];
	}
	memset(&lsig, 0, sizeof lsig);          /* 30: the list */
	notify(&lsig, 30);
	cr_assert_eq(lio_listio(LIO_NOWAIT, list, 4, &lsig), 0);
	put(p[1], "done", 4);                   /* 20 completes */

	wait_until(({ int all = 1; for (i = 0; i <= 30; i++) all &= calls(i) >= 1; all; }),
	           "every request notified");
	sleep_ms(SETTLE_MS);
	for (i = 0; i <= 30; i++)
		cr_assert_eq(calls(i), 1, "request %d notified %d times", i, calls(i));
	cr_assert_eq(calls(31), 0);
	close(p[0]);
	close(p[1]);
	close(fd);
}

static void notify_by_signal(struct sigevent *sev, int i)
{
	sev->sigev_notify = SIGEV_SIGNAL;
	sev->sigev_signo = SIG_A;
	sev->sigev_value.sival_int = i;
}

static int signal_calls(int i)
{
	return __atomic_load_n(&sig_calls[i], __ATOMIC_ACQUIRE);
}

static void notify_by_thread(struct sigevent *sev, int i)
{
	sev->sigev_notify = SIGEV_THREAD;
	sev->sigev_notify_function = thread_fn;
	sev->sigev_notify_attributes = NULL;
	sev->sigev_value.sival_int = i;
}

Test(posix_notify, every_request_signalled_exactly_once)
{
	on_signal(SIG_A, count_signal, 0);
	exactly_once(notify_by_signal, signal_calls);
}

Test(posix_notify, every_request_gets_its_thread_call_exactly_once)
{
	exactly_once(notify_by_thread, th_calls);
}

/* ---- a notification that cannot be sent ------------------------------------- */

Test(posix_notify, failed_notification_keeps_the_result)
{
	struct rlimit old, none = { 0, 0 };
	int fd = temp_file(4096, 0);
	char buf[100];
	struct aiocb cb;

	on_signal(SIG_A, record, 0);
	/* No queued signal may be pending: sending one fails with EAGAIN. */
	cr_assert_eq(getrlimit(RLIMIT_SIGPENDING, &old), 0);
	cr_assert_eq(setrlimit(RLIMIT_SIGPENDING, &none), 0);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	set_signal(&cb, SIG_A, &cb);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0, "the read's own result");
	wait_stats(S.notify_failed == 1, "the failed notification is counted");
	setrlimit(RLIMIT_SIGPENDING, &old);
	cr_assert_eq(aio_error(&cb), 0);
	cr_assert_eq(aio_return(&cb), 100);
	cr_assert_eq(seen_count(), 0);
	close(fd);
}
