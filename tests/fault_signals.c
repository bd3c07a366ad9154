/* fault_signals: signals against the library.
 *
 *   - RLIMIT_SIGPENDING exhausted: a SIGEV_SIGNAL or SIGEV_THREAD_ID
 *     notification that cannot be queued is lost, the I/O result stays
 *     intact and aiopool_stats().notify_failed counts it (aiopool(7)).
 *   - A signal storm (another thread sending a handled signal every ~100 us)
 *     against aio_suspend, lio_listio(LIO_WAIT) and io_getevents: each call
 *     completes or returns EINTR / -EINTR, with or without SA_RESTART
 *     (aio_suspend(3), lio_listio(3), io_getevents(3)); no request or event
 *     is lost or doubled, and the calls after work.  io_pgetevents with a
 *     mask that blocks the storm's signal is never interrupted by it.
 *   - A SIGSTOP/SIGCONT storm against a process doing I/O: every request
 *     completes with its result (workers retry EINTR). */
#include "libaio_common.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#define SIG_A (SIGRTMIN + 4)

static int handled;

static void count_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	__atomic_add_fetch(&handled, 1, __ATOMIC_SEQ_CST);
}

static struct aiopool_stats child_stats(void)
{
	struct aiopool_stats st;

	child_check(aiopool_stats(&st, sizeof st) == 0, "failed");
	return st;
}

/* ---- RLIMIT_SIGPENDING ------------------------------------------------------- */

enum { LIMIT = 4, NSIG_REQ = 10 };

static int sigpending_child(void *arg)
{
	int fd = *(int *)arg;
	static struct aiocb cbs[NSIG_REQ], more[NSIG_REQ], l1, *list[1] = { &l1 };
	static unsigned char bufs[NSIG_REQ][256];
	struct sigaction sa;
	struct rlimit rl = { LIMIT, LIMIT };
	struct sigevent lsev;
	sigset_t s;
	unsigned long long failed0;

	/* The pending count is per user: a user id of our own starts at 0. */
	if (geteuid() != 0)
		return CHILD_SKIP;
	uid_t uid = (uid_t)(40000 + getpid() % 20000);
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		return CHILD_SKIP;
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	child_check(setrlimit(RLIMIT_SIGPENDING, &rl) == 0, "%s", strerror(errno));

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = count_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	child_check(sigaction(SIG_A, &sa, NULL) == 0, "failed");
	sigemptyset(&s);
	sigaddset(&s, SIG_A);
	child_check(pthread_sigmask(SIG_BLOCK, &s, NULL) == 0, "failed");   /* signals stay queued */
	failed0 = child_stats().notify_failed;

	/* Ten requests, each with a signal: four fit in the queue. */
	for (int i = 0; i < NSIG_REQ; i++) {
		fill_cb(&cbs[i], fd, bufs[i], sizeof bufs[i], i * 256);
		cbs[i].aio_sigevent.sigev_notify = i % 2 ? SIGEV_SIGNAL : SIGEV_THREAD_ID;
		cbs[i].aio_sigevent.sigev_signo = SIG_A;
		cbs[i].aio_sigevent._sigev_un._tid = gettid();
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		child_check(aio_read(&cbs[i]) == 0, "aio_read: %s", strerror(errno));
	}
	for (int i = 0; i < NSIG_REQ; i++) {
		child_check(child_wait_aio(&cbs[i]) == 0, "request %d: the result stands", i);
		child_check(aio_return(&cbs[i]) == 256, "failed");
		for (int j = 0; j < 256; j++)
			child_check(bufs[i][j] == pattern(i * 256 + j), "request %d byte %d", i, j);
	}
	for (long long end = now_ms() + DEADLINE_MS;
	     child_stats().notify_failed - failed0 < NSIG_REQ - LIMIT; )
		child_check(now_ms() < end, "notify_failed is %llu, not %d",
		            child_stats().notify_failed - failed0, NSIG_REQ - LIMIT);
	sleep_ms(SETTLE_MS);
	child_check(child_stats().notify_failed - failed0 == NSIG_REQ - LIMIT,
	            "notify_failed %llu", child_stats().notify_failed - failed0);

	/* With the queue full, a list's own signal is lost too. */
	fill_cb(&l1, fd, bufs[0], 16, 0);
	l1.aio_lio_opcode = LIO_READ;
	memset(&lsev, 0, sizeof lsev);
	lsev.sigev_notify = SIGEV_SIGNAL;
	lsev.sigev_signo = SIG_A;
	child_check(lio_listio(LIO_NOWAIT, list, 1, &lsev) == 0, "failed");
	child_check(child_wait_aio(&l1) == 0 && aio_return(&l1) == 16, "failed");
	for (long long end = now_ms() + DEADLINE_MS;
	     child_stats().notify_failed - failed0 < NSIG_REQ - LIMIT + 1; )
		child_check(now_ms() < end, "the list's lost signal was not counted");

	/* Unblocked: the four queued signals are handled, no more. */
	child_check(pthread_sigmask(SIG_UNBLOCK, &s, NULL) == 0, "failed");
	child_check(__atomic_load_n(&handled, __ATOMIC_SEQ_CST) == LIMIT,
	            "%d signals handled, %d were queued", handled, LIMIT);

	/* The queue has room again: notifications are delivered. */
	for (int i = 0; i < NSIG_REQ; i++) {
		fill_cb(&more[i], fd, bufs[i], 16, 0);
		more[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		more[i].aio_sigevent.sigev_signo = SIG_A;
		child_check(aio_read(&more[i]) == 0, "failed");
		child_check(child_wait_aio(&more[i]) == 0, "failed");
		for (long long end = now_ms() + DEADLINE_MS;
		     __atomic_load_n(&handled, __ATOMIC_SEQ_CST) < LIMIT + i + 1; )
			child_check(now_ms() < end, "signal %d of a request never came", i);
	}
	child_check(child_stats().notify_failed - failed0 == NSIG_REQ - LIMIT + 1, "failed");
	return 0;
}

Test(fault_signals, sigpending_exhausted_keeps_the_result_and_counts)
{
	int fd = temp_file(NSIG_REQ * 256, 0);

	run_child(sigpending_child, &fd);
	close(fd);
}

/* ---- a signal storm ------------------------------------------------------------ */

struct storm {
	pthread_t target, self;
	int sig, stop;
	long sent;
};

static void *storm_run(void *arg)
{
	struct storm *st = arg;
	long long end = now_ms() + 6 * DEADLINE_MS;

	while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE) && now_ms() < end) {
		pthread_kill(st->target, st->sig);
		st->sent++;
		struct timespec ts = { 0, 100 * 1000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void storm_start(struct storm *st, bool restart)
{
	on_signal(SIGUSR1, count_signal, restart ? SA_RESTART : 0);
	st->target = pthread_self();
	st->sig = SIGUSR1;
	st->stop = 0;
	st->sent = 0;
	cr_assert_eq(pthread_create(&st->self, NULL, storm_run, st), 0);
}

static void storm_stop(struct storm *st)
{
	__atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
	pthread_join(st->self, NULL);
	cr_log_info("%ld signals sent, %d handled", st->sent, handled);
}

/* Feeds one byte to each pipe in turn, a millisecond apart, so that the
 * requests on them end one by one while the main thread waits. */
enum { NPIPE = 16 };

struct feeder {
	pthread_t self;
	int (*p)[2];
	int n;
	long gap_us;
};

static void *feed_run(void *arg)
{
	struct feeder *f = arg;

	for (int i = 0; i < f->n; i++) {
		struct timespec ts = { 0, f->gap_us * 1000L };
		char c = (char)('a' + i);
		nanosleep(&ts, NULL);
		if (write(f->p[i][1], &c, 1) != 1)
			break;
	}
	return NULL;
}

static void feed(struct feeder *f, int (*p)[2], int n, long gap_us)
{
	f->p = p;
	f->n = n;
	f->gap_us = gap_us;
	cr_assert_eq(pthread_create(&f->self, NULL, feed_run, f), 0);
}

static void pipes_open(int (*p)[2], int n)
{
	for (int i = 0; i < n; i++)
		make_pipe(p[i]);
}

static void pipes_close(int (*p)[2], int n)
{
	for (int i = 0; i < n; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}

static void suspend_under_storm(bool restart)
{
	int p[NPIPE][2], eintr = 0, timeouts = 0, left = NPIPE;
	struct aiocb cbs[NPIPE];
	char bufs[NPIPE];
	struct storm st;
	struct feeder fd;
	long long end = now_ms() + DEADLINE_MS;

	pipes_open(p, NPIPE);
	for (int i = 0; i < NPIPE; i++) {
		fill_cb(&cbs[i], p[i][0], &bufs[i], 1, 0);
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	storm_start(&st, restart);
	feed(&fd, p, NPIPE, 2000);
	while (left) {
		const struct aiocb *list[NPIPE];
		struct timespec t = { 1, 0 };
		int n = 0;

		for (int i = 0; i < NPIPE; i++)
			if (aio_error(&cbs[i]) == EINPROGRESS)
				list[n++] = &cbs[i];
		if (!n)
			break;
		if (aio_suspend(list, n, &t) == 0) {
			bool any = false;
			for (int i = 0; i < n; i++)
				any |= aio_error(list[i]) != EINPROGRESS;
			cr_assert(any, "aio_suspend returned 0 with nothing done");
		} else {
			cr_assert(errno == EINTR || errno == EAGAIN, "aio_suspend: %s", strerror(errno));
			eintr += errno == EINTR;
			timeouts += errno == EAGAIN;
		}
		cr_assert_lt(now_ms(), end, "the reads did not all end");
	}
	storm_stop(&st);
	pthread_join(fd.self, NULL);
	for (int i = 0; i < NPIPE; i++) {
		cr_assert_eq(wait_aio(&cbs[i]), 0);
		cr_assert_eq(aio_return(&cbs[i]), 1);
		cr_assert_eq(bufs[i], (char)('a' + i), "read %d got another pipe's byte", i);
	}
	cr_log_info("aio_suspend: %d EINTR, %d timeouts", eintr, timeouts);
	/* And the next wait is an ordinary one. */
	struct aiocb cb;
	char c;
	fill_cb(&cb, p[0][0], &c, 1, 0);
	cr_assert_eq(aio_read(&cb), 0);
	put(p[0][1], "z", 1);
	const struct aiocb *one[1] = { &cb };
	struct timespec t = { DEADLINE_MS / 1000, 0 };
	cr_assert_eq(aio_suspend(one, 1, &t), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	cr_assert_eq(c, 'z');
	pipes_close(p, NPIPE);
}

Test(fault_signals, storm_against_aio_suspend)
{
	suspend_under_storm(false);
}

Test(fault_signals, storm_against_aio_suspend_sa_restart)
{
	suspend_under_storm(true);
}

static void lio_wait_under_storm(bool restart)
{
	enum { ROUNDS = 60, N = 4 };
	int p[N][2], eintr = 0;
	struct storm st;

	pipes_open(p, N);
	storm_start(&st, restart);
	for (int r = 0; r < ROUNDS; r++) {
		struct aiocb cbs[N], *list[N];
		char bufs[N];
		struct feeder fd;
		long long end = now_ms() + DEADLINE_MS;
		int rc;

		for (int i = 0; i < N; i++) {
			fill_cb(&cbs[i], p[i][0], &bufs[i], 1, 0);
			cbs[i].aio_lio_opcode = LIO_READ;
			list[i] = &cbs[i];
		}
		feed(&fd, p, N, 300);
		rc = lio_listio(LIO_WAIT, list, N, NULL);
		if (rc != 0) {
			cr_assert_eq(errno, EINTR, "lio_listio(LIO_WAIT): %s", strerror(errno));
			eintr++;
		}
		for (int i = 0; i < N; i++) {
			if (rc == 0)
				cr_assert_neq(aio_error(&cbs[i]), EINPROGRESS,
				              "lio_listio returned 0 with entry %d in progress", i);
			while (aio_error(&cbs[i]) == EINPROGRESS) {
				const struct aiocb *one[1] = { &cbs[i] };
				struct timespec t = { 0, 50 * 1000000L };
				aio_suspend(one, 1, &t);   /* EINTR too: loop */
				cr_assert_lt(now_ms(), end, "round %d entry %d never ended", r, i);
			}
			cr_assert_eq(aio_error(&cbs[i]), 0);
			cr_assert_eq(aio_return(&cbs[i]), 1);
			cr_assert_eq(bufs[i], (char)('a' + i));
		}
		pthread_join(fd.self, NULL);
	}
	storm_stop(&st);
	cr_log_info("lio_listio(LIO_WAIT): %d of %d rounds interrupted", eintr, ROUNDS);
	pipes_close(p, N);
}

Test(fault_signals, storm_against_lio_listio_wait)
{
	lio_wait_under_storm(false);
}

Test(fault_signals, storm_against_lio_listio_wait_sa_restart)
{
	lio_wait_under_storm(true);
}

static void getevents_under_storm(bool masked)
{
	int p[NPIPE][2], eintr = 0, got = 0, seen[NPIPE] = { 0 };
	struct iocb ios[NPIPE], *iop[NPIPE];
	char bufs[NPIPE];
	io_context_t ctx = new_ctx(NPIPE);
	struct storm st;
	struct feeder fd;
	sigset_t block;
	long long end = now_ms() + DEADLINE_MS;

	pipes_open(p, NPIPE);
	for (int i = 0; i < NPIPE; i++) {
		io_prep_pread(&ios[i], p[i][0], &bufs[i], 1, 0);
		ios[i].data = (void *)(uintptr_t)i;
		iop[i] = &ios[i];
	}
	cr_assert_eq(io_submit(ctx, NPIPE, iop), NPIPE);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	storm_start(&st, false);
	feed(&fd, p, NPIPE, 2000);
	while (got < NPIPE) {
		struct io_event ev[NPIPE];
		struct timespec t = { 1, 0 };
		int rc = masked ? io_pgetevents(ctx, 2, NPIPE, ev, &t, &block)
		                : io_getevents(ctx, 2, NPIPE, ev, &t);

		if (rc == -EINTR) {
			cr_assert(!masked, "io_pgetevents was interrupted by a signal its mask blocks");
			eintr++;
		} else {
			cr_assert_geq(rc, 0, "io_getevents: %d", rc);
		}
		for (int i = 0; i < rc; i++) {
			int k = (int)(uintptr_t)ev[i].data;
			cr_assert(k >= 0 && k < NPIPE);
			cr_assert_eq(seen[k]++, 0, "a second event for read %d", k);
			cr_assert_eq((long)ev[i].res, 1);
			cr_assert_eq(bufs[k], (char)('a' + k));
		}
		got += rc > 0 ? rc : 0;
		cr_assert_lt(now_ms(), end, "only %d of %d events", got, NPIPE);
	}
	storm_stop(&st);
	pthread_join(fd.self, NULL);
	cr_log_info("io_%sgetevents: %d EINTR", masked ? "p" : "", eintr);
	cr_assert_eq(io_getevents(ctx, 0, 1, (struct io_event[1]){ 0 }, &(struct timespec){ 0, 0 }), 0,
	             "no extra event");
	cr_assert_eq(io_destroy(ctx), 0);
	pipes_close(p, NPIPE);
}

Test(fault_signals, storm_against_io_getevents)
{
	getevents_under_storm(false);
}

Test(fault_signals, storm_blocked_by_io_pgetevents_mask)
{
	getevents_under_storm(true);
}

/* Completion signals of the requests themselves, on top of the storm:
 * each request's own signal arrives exactly once (sival_int says which). */
enum { NCOMP = 200 };
static int arrived[NCOMP];

static void count_arrival(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code == SI_ASYNCIO && si->si_value.sival_int >= 0 &&
	    si->si_value.sival_int < NCOMP)
		__atomic_add_fetch(&arrived[si->si_value.sival_int], 1, __ATOMIC_SEQ_CST);
}

static int arrivals(void)
{
	int n = 0;

	for (int i = 0; i < NCOMP; i++)
		n += __atomic_load_n(&arrived[i], __ATOMIC_SEQ_CST);
	return n;
}

Test(fault_signals, storm_with_completion_signals)
{
	static struct aiocb cbs[NCOMP];
	static char bufs[NCOMP][64];
	int fd = temp_file(NCOMP * 64, 0);
	struct storm st;
	long long end;

	on_signal(SIG_A, count_arrival, 0);
	storm_start(&st, false);
	for (int i = 0; i < NCOMP; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 64, i * 64);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		cbs[i].aio_sigevent.sigev_signo = SIG_A;
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		cr_assert_eq(aio_read(&cbs[i]), 0);
	}
	end = now_ms() + DEADLINE_MS;
	for (int i = 0; i < NCOMP; i++) {
		while (aio_error(&cbs[i]) == EINPROGRESS) {
			const struct aiocb *one[1] = { &cbs[i] };
			struct timespec t = { 0, 20 * 1000000L };
			aio_suspend(one, 1, &t);   /* EINTR or not: look again */
			cr_assert_lt(now_ms(), end, "request %d never ended", i);
		}
		cr_assert_eq(aio_return(&cbs[i]), 64);
		cr_assert_eq(bufs[i][1], (char)pattern(i * 64 + 1));
	}
	wait_until(arrivals() >= NCOMP, "%d of %d completion signals", arrivals(), NCOMP);
	storm_stop(&st);
	sleep_ms(SETTLE_MS);
	for (int i = 0; i < NCOMP; i++)
		cr_assert_eq(arrived[i], 1, "request %d: its signal arrived %d times", i, arrived[i]);
	cr_assert_eq(stats_now().notify_failed, 0, "a completion signal could not be sent");
	close(fd);
}

/* ---- SIGSTOP / SIGCONT ---------------------------------------------------------- */

static void ignore_note(union sigval v)
{
	(void)v;
}

/* The child does I/O on files and pipes with notifications while the
 * parent stops and continues it every few milliseconds. */
static int stopped_child(void *arg)
{
	enum { ROUNDS = 300 };
	int fd = *(int *)arg, p[2];
	struct aiocb r, w, pr;
	char buf[512], wbuf[512], c;

	child_check(pipe(p) == 0, "failed");
	memset(wbuf, 's', sizeof wbuf);
	for (int i = 0; i < ROUNDS; i++) {
		fill_cb(&r, fd, buf, sizeof buf, (i % 8) * 512);
		fill_cb(&w, fd, wbuf, sizeof wbuf, 65536 + (i % 8) * 512);
		fill_cb(&pr, p[0], &c, 1, 0);
		r.aio_sigevent.sigev_notify = SIGEV_THREAD;
		r.aio_sigevent.sigev_notify_function = ignore_note;
		child_check(aio_read(&r) == 0 && aio_write(&w) == 0 && aio_read(&pr) == 0, "failed");
		sleep_ms(1);
		child_check(write(p[1], "k", 1) == 1, "failed");
		child_check(child_wait_aio(&r) == 0 && aio_return(&r) == 512, "round %d", i);
		child_check(buf[9] == (char)pattern((i % 8) * 512 + 9), "failed");
		child_check(child_wait_aio(&w) == 0 && aio_return(&w) == 512, "round %d", i);
		child_check(child_wait_aio(&pr) == 0 && aio_return(&pr) == 1 && c == 'k', "failed");
	}
	return 0;
}

Test(fault_signals, stop_continue_storm)
{
	int fd = temp_file(65536, 0), status;
	long long end = now_ms() + 3 * DEADLINE_MS;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(stopped_child(&fd));
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		cr_assert_eq(w, 0);
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("the child did not finish under SIGSTOP/SIGCONT");
		}
		kill(pid, SIGSTOP);
		sleep_ms(1);
		kill(pid, SIGCONT);
		sleep_ms(2);
	}
	cr_assert(WIFEXITED(status), "the child died: status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the child failed (see its message)");
	close(fd);
}

/* ---- close() in a signal handler ------------------------------------------------ */

/* close() and dup2() are async-signal-safe, with aiopool as without: a
 * handler that interrupted aiopool on its own thread, while that held the
 * engine's lock, closes an fd that has had requests and returns.  Here the
 * handler runs on a thread that submits and waits in a loop; another
 * thread sends it the signal every ~100 us.  A deadlock shows as a child
 * that never finishes. */
enum { HANDLER_RUNS = 3000 };
static int hfd, hbase;
static int handler_runs;

static void close_in_handler(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	(void)sig;
	(void)si;
	(void)uc;
	close(hfd);
	dup2(hbase, hfd);
	__atomic_add_fetch(&handler_runs, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

struct pelter {
	pthread_t target, self;
	int stop;
};

static void *pelt(void *arg)
{
	struct pelter *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		pthread_kill(p->target, SIGALRM);
		nanosleep(&(struct timespec){ 0, 50000 }, NULL);
	}
	return NULL;
}

static int close_from_handler_child(void *arg)
{
	struct pelter it = { .target = pthread_self() };
	struct aiocb cb;
	char buf[64];
	long rounds = 0;

	(void)arg;
	child_check(aiopool_set(AIOPOOL_FASTPATH, 0) == 0, "failed");
	hbase = temp_file(4096, 0);
	hfd = dup(hbase);
	fill_cb(&cb, hfd, buf, sizeof buf, 0);
	child_check(aio_read(&cb) == 0, "failed");   /* hfd has a queue now */
	child_check(child_wait_aio(&cb) == 0, "failed");
	on_signal(SIGALRM, close_in_handler, SA_RESTART);
	child_check(pthread_create(&it.self, NULL, pelt, &it) == 0, "failed");
	while (__atomic_load_n(&handler_runs, __ATOMIC_SEQ_CST) < HANDLER_RUNS) {
		int e;

		fill_cb(&cb, hfd, buf, sizeof buf, 0);
		if (aio_read(&cb) != 0)
			continue;
		e = child_wait_aio(&cb);
		child_check(e == 0 || e == ECANCELED || e == EBADF, "aio_read: %s", strerror(e));
		aio_return(&cb);
		rounds++;
	}
	__atomic_store_n(&it.stop, 1, __ATOMIC_RELEASE);
	pthread_join(it.self, NULL);
	child_check(rounds > 0, "no request ran");
	return 0;
}

Test(fault_signals, close_in_a_handler_that_interrupted_aiopool)
{
	run_child(close_from_handler_child, NULL);
}
