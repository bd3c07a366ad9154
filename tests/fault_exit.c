/* fault_exit: process exit and io_destroy with requests in flight.
 *
 * Documented outcomes (aiopool(7) "Exit", io_destroy(3)):
 *   - exit() or a return from main with requests in flight: requests on
 *     regular files, queued or running, are finished first (their data
 *     reaches the file); requests on pipes and sockets are not waited for;
 *     if nothing completes for 30 seconds, the process exits regardless.
 *     Never a crash or a hang: the process is gone within the deadline,
 *     also when threads keep submitting or exit() is called from a
 *     notification function.  _exit() waits for nothing.
 *   - io_destroy cancels the queued requests of its context (no event, and
 *     they never run), waits for the running ones, makes a call waiting in
 *     io_getevents on it return -EINVAL, and io_submit on it -EINVAL. */
#include "libaio_common.h"

#include <sched.h>
#include <sys/stat.h>

/* Undoes uffd_open (common.h has no helper for it). */
static void uffd_done(struct uffd *u)
{
	close(u->fd);
	munmap(u->base, u->npages * (size_t)u->pagesz);
	free(u->seen);
	free(u->src);
}

/* Runs tests/fault_exit_child SCENARIO FD; fails the test if it is not gone
 * within ms.  Its wait status. */
static int run_scenario(const char *scenario, int fd, long ms)
{
	char path[4096], num[16];
	long long end;
	pid_t pid;
	int status;

	build_path(path, sizeof path, "tests/fault_exit_child");
	snprintf(num, sizeof num, "%d", fd);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(path, path, scenario, num, (char *)NULL);
		_exit(127);
	}
	end = now_ms() + ms;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return status;
		cr_assert_eq(w, 0);
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("%s: the process did not exit within %ld ms", scenario, ms);
		}
		sleep_ms(5);
	}
}

static void expect_clean_exit(const char *scenario, int status)
{
	cr_assert(WIFEXITED(status), "%s: killed by signal %d", scenario,
	          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("%s: userfaultfd unavailable", scenario);
	cr_assert_eq(WEXITSTATUS(status), 0, "%s: failed at step %d", scenario, WEXITSTATUS(status));
}

enum { N = 64, CHUNK = 4096 };

static void expect_all_written(int fd, off_t n)
{
	char buf[CHUNK];

	cr_assert_eq(size_of(fd), n * CHUNK, "every write queued at exit reached the file");
	for (off_t i = 0; i < n; i++) {
		cr_assert_eq(pread(fd, buf, CHUNK, i * CHUNK), CHUNK);
		cr_assert(buf[0] == 'e' && buf[CHUNK - 1] == 'e', "chunk %lld", (long long)i);
	}
}

/* In a child: one worker, stuck on a pipe that never gets data; writes to
 * a file queue behind it; then exit(). */
static void child_writes_then_exits(int fd, bool use_libaio)
{
	static char chunk[CHUNK];
	static struct aiocb cbs[N];
	static struct iocb ios[N];
	struct iocb *iop[N];
	struct aiocb stuck;
	io_context_t ctx = 0;
	char c;
	int p[2];

	memset(chunk, 'w', sizeof chunk);
	if (pipe(p) || aiopool_set(AIOPOOL_MAX_THREADS, 1))
		_exit(10);
	fill_cb(&stuck, p[0], &c, 1, 0);
	if (aio_read(&stuck))
		_exit(11);
	while (stats_running() < 1)
		sleep_ms(1);
	if (use_libaio) {
		if (io_setup(N, &ctx))
			_exit(12);
		for (int i = 0; i < N; i++) {
			io_prep_pwrite(&ios[i], fd, chunk, CHUNK, (long long)i * CHUNK);
			iop[i] = &ios[i];
		}
		if (io_submit(ctx, N, iop) != N)
			_exit(13);
	} else {
		for (int i = 0; i < N; i++) {
			fill_cb(&cbs[i], fd, chunk, CHUNK, (off_t)i * CHUNK);
			if (aio_write(&cbs[i]))
				_exit(14);
		}
	}
	exit(0);   /* not _exit: the library's exit handling runs */
}

static void check_exit_drains(bool use_libaio)
{
	int fd = temp_file(0, 0), status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		child_writes_then_exits(fd, use_libaio);
	status = wait_child(pid);
	cr_assert(WIFEXITED(status), "child died: status %#x", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed at step %d", WEXITSTATUS(status));
	cr_assert_eq(size_of(fd), (off_t)N * CHUNK,
	             "every write queued before exit() reached the file");
	close(fd);
}

Test(fault_exit, exit_finishes_queued_posix_writes_to_files)
{
	check_exit_drains(false);
}

Test(fault_exit, exit_finishes_queued_libaio_writes_to_files)
{
	check_exit_drains(true);
}

Test(fault_exit, return_from_main_with_workers_stuck_and_writes_queued)
{
	int fd = temp_file(0, 0);

	expect_clean_exit("busy", run_scenario("busy", fd, DEADLINE_MS));
	expect_all_written(fd, 2 * N);
	close(fd);
}

Test(fault_exit, _exit_waits_for_nothing)
{
	int fd = temp_file(0, 0);

	expect_clean_exit("busy_exit", run_scenario("busy_exit", fd, DEADLINE_MS));
	cr_assert_leq(size_of(fd), 2 * N * CHUNK);
	close(fd);
}

Test(fault_exit, exit_while_threads_submit)
{
	int fd = temp_file(0, 0);

	expect_clean_exit("submitting", run_scenario("submitting", fd, 3 * DEADLINE_MS));
	cr_assert_eq(size_of(fd) % 512, 0, "only whole writes");
	close(fd);
}

/* Appends run one at a time: with a thread keeping 64 queued, the count
 * of file requests in flight never falls to 0 by itself. */
Test(fault_exit, exit_while_a_thread_keeps_a_deep_queue)
{
	int fd = temp_file(0, 0);

	expect_clean_exit("deep", run_scenario("deep", fd, 3 * DEADLINE_MS));
	cr_assert_eq(size_of(fd) % 512, 0, "only whole writes");
	close(fd);
}

Test(fault_exit, exit_from_a_notification)
{
	int fd = temp_file(0, 0);

	expect_clean_exit("in_note", run_scenario("in_note", fd, DEADLINE_MS));
	expect_all_written(fd, N);
	close(fd);
}

/* Costs the library's 30-second stall time. */
Test(fault_exit, exit_gives_up_on_a_write_that_never_ends, .timeout = 120)
{
	int fd = temp_file(0, 0);
	long long t0 = now_ms();

	expect_clean_exit("stuck", run_scenario("stuck", fd, 60000));
	cr_log_info("exited after %lld ms", now_ms() - t0);
	close(fd);
}

/* ---- io_destroy ---------------------------------------------------------------- */

struct waiter {
	pthread_t self;
	io_context_t ctx;
	int rc;
	int done;
};

static void *wait_events(void *arg)
{
	struct waiter *w = arg;
	struct io_event ev;

	w->rc = io_getevents(w->ctx, 1, 1, &ev, NULL);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct hammer {
	pthread_t self;
	io_context_t ctx;
	int fd;
	int stop;
	long accepted, refused;
	int bad;
};

static void *submit_loop(void *arg)
{
	struct hammer *h = arg;
	static char buf[64];

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		struct iocb io, *one = &io;
		io_prep_pwrite(&io, h->fd, buf, sizeof buf, 0);
		int rc = io_submit(h->ctx, 1, &one);
		if (rc == 1)
			h->accepted++;
		else if (rc == -EINVAL || rc == -EAGAIN)
			h->refused++, sched_yield();   /* the ring is full: let others run */
		else
			h->bad = rc;
		if (rc == -EINVAL)
			break;   /* destroyed */
	}
	return NULL;
}

static void *destroy_ctx(void *arg)
{
	struct waiter *w = arg;

	w->rc = io_destroy(w->ctx);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One worker holds a write inside the kernel (a userfaultfd page); writes
 * queue behind it; a thread waits in io_getevents and another submits.
 * io_destroy must wait for the running write, cancel the queued ones
 * (which never reach the file), wake the waiter with -EINVAL, and stop the
 * submitter with -EINVAL. */
Test(fault_exit, io_destroy_with_requests_in_flight_and_callers)
{
	enum { Q = 32 };
	struct uffd u;
	struct iocb held, ios[Q], *iop[Q];
	struct waiter w, d;
	struct hammer h;
	char data[Q][512];
	int fd = temp_file(0, 0), sink = temp_file(0, 0);
	io_context_t ctx;

	UFFD_OR_SKIP(&u, 1);
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	ctx = new_ctx(4 * Q);
	io_prep_pwrite(&held, fd, uffd_page(&u, 0), (size_t)u.pagesz, 0);
	cr_assert_eq(submit1(ctx, &held), 1);
	cr_assert_eq(uffd_next_fault(&u), 0, "the held write is running");
	for (int i = 0; i < Q; i++) {
		memset(data[i], 'q', sizeof data[i]);
		io_prep_pwrite(&ios[i], fd, data[i], sizeof data[i], u.pagesz + i * 512);
		iop[i] = &ios[i];
	}
	cr_assert_eq(io_submit(ctx, Q, iop), Q);

	w = (struct waiter){ .ctx = ctx };
	h = (struct hammer){ .ctx = ctx, .fd = sink };
	d = (struct waiter){ .ctx = ctx };
	cr_assert_eq(pthread_create(&h.self, NULL, submit_loop, &h), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(pthread_create(&d.self, NULL, destroy_ctx, &d), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(__atomic_load_n(&d.done, __ATOMIC_ACQUIRE), 0,
	             "io_destroy returned while a request still runs");
	uffd_release(&u, 0, 'H');
	wait_until(__atomic_load_n(&d.done, __ATOMIC_ACQUIRE), "io_destroy never returned");
	cr_assert_eq(d.rc, 0);
	pthread_join(d.self, NULL);
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	pthread_join(h.self, NULL);
	cr_assert_eq(h.bad, 0, "io_submit on a context being destroyed: %d", h.bad);

	/* A call on the destroyed context is -EINVAL, and never waits. */
	cr_assert_eq(pthread_create(&w.self, NULL, wait_events, &w), 0);
	wait_until(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "io_getevents on a destroyed context waited");
	pthread_join(w.self, NULL);
	cr_assert_eq(w.rc, -EINVAL);

	/* The held write finished on the file; none of the queued ones ran. */
	wait_stats(S.queued == 0 && S.running == 0, "requests left after io_destroy");
	sleep_ms(SETTLE_MS);
	cr_assert_eq(size_of(fd), u.pagesz, "cancelled writes reached the file");
	char c;
	cr_assert_eq(pread(fd, &c, 1, 0), 1);
	cr_assert_eq(c, 'H');
	cr_log_info("submitter: %ld accepted, %ld refused", h.accepted, h.refused);
	close(fd);
	close(sink);
	uffd_done(&u);
}

/* A thread blocked in io_getevents when io_destroy comes: -EINVAL. */
Test(fault_exit, io_destroy_wakes_a_waiter)
{
	struct waiter w, d;
	io_context_t ctx = new_ctx(4);

	w = (struct waiter){ .ctx = ctx };
	d = (struct waiter){ .ctx = ctx };
	cr_assert_eq(pthread_create(&w.self, NULL, wait_events, &w), 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), 0, "io_getevents did not wait");
	cr_assert_eq(pthread_create(&d.self, NULL, destroy_ctx, &d), 0);
	wait_until(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "the waiter never woke");
	wait_until(__atomic_load_n(&d.done, __ATOMIC_ACQUIRE), "io_destroy never returned");
	pthread_join(w.self, NULL);
	pthread_join(d.self, NULL);
	cr_assert_eq(w.rc, -EINVAL);
	cr_assert_eq(d.rc, 0);
}

/* Contexts created and destroyed with requests in flight, over and over:
 * no crash, and nothing is left in the engine. */
Test(fault_exit, destroy_with_requests_in_flight_repeatedly)
{
	int fd = temp_file(65536, 0), wfd = temp_file(0, 0);
	char buf[64][256];

	for (int round = 0; round < 200; round++) {
		io_context_t ctx = new_ctx(64);
		struct iocb ios[64], *iop[64];
		int n = 1 + round % 64;

		for (int i = 0; i < n; i++) {
			if (i % 2)
				io_prep_pread(&ios[i], fd, buf[i], 256, i * 256);
			else
				io_prep_pwrite(&ios[i], wfd, buf[i], 256, i * 256);
			iop[i] = &ios[i];
		}
		cr_assert_eq(io_submit(ctx, n, iop), n);
		if (round % 3 == 0) {
			struct io_event ev[64];
			io_getevents(ctx, 0, 64, ev, &(struct timespec){ 0, 0 });
		}
		cr_assert_eq(io_destroy(ctx), 0, "round %d", round);
	}
	wait_stats(S.queued == 0 && S.running == 0 && S.submitted == S.completed + S.cancelled,
	           "requests left after the contexts were destroyed");
	close(fd);
	close(wfd);
}

/* exit() finishes the files' queued writes with a bounded number of
 * threads: the pool's limit and a small reserve (aiopool(7), "Exit"), not
 * a thread per request.  The child's only worker is held inside a write
 * (userfaultfd) to one file, and 1999 writes to another file are queued
 * behind it when the child exits (a second write to the held file would
 * wait for the first's inode lock);
 * a thread of the test's own, which exit() leaves running until the end,
 * waits for the other writes to be done, records how many threads the
 * library has started, and lets the held write go. */
enum { DRAIN_WRITES = 2000, DRAIN_THREAD_BOUND = 1 + 8 };

struct drain {
	struct uffd u;
	int fd, held;
	unsigned long long *created;   /* shared with the test */
};

static void *drain_watch(void *arg)
{
	struct drain *d = arg;
	struct aiopool_stats st;

	for (long long end = now_ms() + DEADLINE_MS;; sleep_ms(1)) {
		child_check(aiopool_stats(&st, sizeof st) == 0, "failed");
		if (st.completed >= DRAIN_WRITES - 1)
			break;
		child_check(now_ms() < end, "the queued writes were not done at exit");
	}
	__atomic_store_n(d->created, st.threads_created, __ATOMIC_SEQ_CST);
	uffd_release(&d->u, 0, 'w');
	return NULL;
}

static int drain_child(void *arg)
{
	static struct aiocb cbs[DRAIN_WRITES];
	static struct drain d;
	pthread_t t;

	d.fd = *(int *)arg;
	d.created = (unsigned long long *)((int *)arg + 2);
	if (!uffd_open(&d.u, 1))
		return CHILD_SKIP;
	child_check(aiopool_set(AIOPOOL_MAX_THREADS, 1) == 0, "failed");
	d.held = temp_file(0, 0);
	fill_cb(&cbs[0], d.held, uffd_page(&d.u, 0), 1, 0);
	child_check(aio_write(&cbs[0]) == 0, "failed");
	child_check(uffd_poll_fault(&d.u, DEADLINE_MS) == 0, "the first write never started");
	for (int i = 1; i < DRAIN_WRITES; i++) {
		fill_cb(&cbs[i], d.fd, (void *)"w", 1, i);
		child_check(aio_write(&cbs[i]) == 0, "aio_write %d: %s", i, strerror(errno));
	}
	child_check(pthread_create(&t, NULL, drain_watch, &d) == 0, "failed");
	exit(0);
}

Test(fault_exit, exit_drains_queued_writes_with_bounded_threads)
{
	int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long long created;
	char buf[DRAIN_WRITES - 1];

	cr_assert_neq(shared, MAP_FAILED);
	shared[0] = temp_file(0, 0);
	run_child(drain_child, shared);
	created = __atomic_load_n((unsigned long long *)(shared + 2), __ATOMIC_SEQ_CST);
	cr_assert_gt(created, 0, "the child recorded nothing");
	cr_log_info("threads started by the child, exit's drain included: %llu", created);
	cr_assert_leq(created, DRAIN_THREAD_BOUND,
	              "exit() started %llu threads to finish %d writes", created, DRAIN_WRITES);
	cr_assert_eq(size_of(shared[0]), DRAIN_WRITES, "every write queued at exit reached the file");
	cr_assert_eq(pread(shared[0], buf, sizeof buf, 1), DRAIN_WRITES - 1);
	for (int i = 0; i < DRAIN_WRITES - 1; i++)
		cr_assert_eq(buf[i], 'w', "byte %d", i + 1);
	close(shared[0]);
	munmap(shared, 4096);
}
