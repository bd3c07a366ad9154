/* common.h: helpers shared by the Criterion suites.  Every wait here has a
 * deadline and fails the test with a message instead of hanging.
 *
 * Besides waiting: temporary files and pipes, signal helpers, waiting for a
 * worker to be inside its system call, a blocker that keeps a worker busy,
 * userfaultfd-backed buffers that hold a request inside its system call
 * for as long as a test needs, and forked children and helper programs run
 * with a deadline. */
#ifndef AIOPOOL_TEST_COMMON_H
#define AIOPOOL_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <aio.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"
#include "deadline.h"

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The pause between two polls of a wait: 20 us for the first 50 (most
 * completions take microseconds, and a test may wait for thousands of
 * them), then 1 ms. */
static inline void poll_pause(int *polls)
{
	if (*polls < 50) {
		struct timespec ts = { 0, 20000 };
		(*polls)++;
		nanosleep(&ts, NULL);
	} else {
		sleep_ms(1);
	}
}

/* Waits until cond holds, polling; fails the test after DEADLINE_MS. */
#define wait_until(cond, ...) do { \
	long long wu_end_ = now_ms() + DEADLINE_MS; \
	int wu_polls_ = 0; \
	while (!(cond)) { \
		if (now_ms() > wu_end_) \
			cr_assert_fail("timed out waiting for " #cond ": " __VA_ARGS__); \
		poll_pause(&wu_polls_); \
	} \
} while (0)

/* Waits for one aiocb to leave EINPROGRESS; returns aio_error's value. */
static inline int wait_aio(const struct aiocb *cb)
{
	wait_until(aio_error(cb) != EINPROGRESS, "aiocb %p still in progress", (void *)cb);
	return aio_error(cb);
}

static inline struct aiopool_stats stats_now(void)
{
	struct aiopool_stats st;
	cr_assert_eq(aiopool_stats(&st, sizeof st), 0);
	return st;
}

static inline unsigned long stats_running(void)
{
	return stats_now().running;
}

/* fd's file size (the test fails if fstat does). */
static inline off_t size_of(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return st.st_size;
}

/* A temporary regular file of n bytes whose byte i is pattern(i); unlinked
 * at once, so nothing is left behind. */
static inline unsigned char pattern(long long i)
{
	return (unsigned char)(i * 131 + (i >> 8) * 7 + 1);
}

static inline int temp_file(size_t n, int flags)
{
	char path[] = "/tmp/aiopool-test-XXXXXX";
	int fd = mkostemp(path, flags);
	cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
	unlink(path);
	if (n) {
		unsigned char *buf = malloc(n);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern((long long)i);
		cr_assert_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
		free(buf);
	}
	return fd;
}

static inline void fill_cb(struct aiocb *cb, int fd, void *buf, size_t n, off_t off)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = n;
	cb->aio_offset = off;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

/* ---- more waiting -------------------------------------------------------- */

/* Waits until cond, an expression on the stats snapshot S, holds; fails the
 * test after DEADLINE_MS, logging the last snapshot. */
#define wait_stats(cond, ...) do { \
	long long ws_end_ = now_ms() + DEADLINE_MS; \
	int ws_polls_ = 0; \
	struct aiopool_stats S; \
	for (;;) { \
		S = stats_now(); \
		if (cond) \
			break; \
		if (now_ms() > ws_end_) { \
			cr_log_error("stats: threads %lu idle %lu queued %lu running %lu", \
			             S.threads, S.idle_threads, S.queued, S.running); \
			cr_assert_fail("timed out waiting for " #cond ": " __VA_ARGS__); \
		} \
		poll_pause(&ws_polls_); \
	} \
} while (0)

#define assert_in_progress(cb) \
	cr_assert_eq(aio_error(cb), EINPROGRESS, "%s should be in progress, is %s", \
	             #cb, strerror(aio_error(cb)))

/* Brief pause before checking that something did NOT happen.  It can only
 * make a broken engine pass by luck, never a working one fail. */
#define SETTLE_MS 30

/* ---- fds ----------------------------------------------------------------- */

static inline void make_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

static inline void put(int fd, const void *buf, size_t n)
{
	cr_assert_eq(write(fd, buf, n), (ssize_t)n, "write: %s", strerror(errno));
}

/* Reads exactly n bytes, waiting up to DEADLINE_MS for them. */
static inline void get(int fd, void *buf, size_t n)
{
	long long end = now_ms() + DEADLINE_MS;
	size_t got = 0;

	while (got < n) {
		struct pollfd pf = { fd, POLLIN, 0 };
		long left = (long)(end - now_ms());
		ssize_t r;

		cr_assert(left > 0 && poll(&pf, 1, (int)left) > 0,
		          "only %zu of %zu bytes came within %d ms", got, n, DEADLINE_MS);
		r = read(fd, (char *)buf + got, n - got);
		cr_assert_gt(r, 0, "read: %s", r < 0 ? strerror(errno) : "end of file");
		got += (size_t)r;
	}
}

/* A number no fd of this process has. */
static inline int closed_fd(void)
{
	int fd = dup(0);

	cr_assert_geq(fd, 0);
	close(fd);
	return fd;
}

/* ---- signals and threads ------------------------------------------------- */

static inline void on_signal(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(sig, &sa, NULL), 0);
}

static inline void mask_signal(int how, int sig)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	cr_assert_eq(pthread_sigmask(how, &s, NULL), 0);
}

/* Sends sig to a thread every few ms until stopped, so that a call the
 * target is about to block in is interrupted whenever it gets there. */
struct interrupter {
	pthread_t target, self;
	int sig;
	int stop;
};

static inline void *interrupter_run(void *arg)
{
	struct interrupter *it = arg;
	long long end = now_ms() + DEADLINE_MS;

	while (!__atomic_load_n(&it->stop, __ATOMIC_ACQUIRE) && now_ms() < end) {
		pthread_kill(it->target, it->sig);
		sleep_ms(5);
	}
	return NULL;
}

static inline void interrupter_start(struct interrupter *it, int sig)
{
	it->target = pthread_self();
	it->sig = sig;
	it->stop = 0;
	cr_assert_eq(pthread_create(&it->self, NULL, interrupter_run, it), 0);
}

static inline void interrupter_stop(struct interrupter *it)
{
	__atomic_store_n(&it->stop, 1, __ATOMIC_RELEASE);
	pthread_join(it->self, NULL);
}

/* Threads of this process, from /proc. */
static inline int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- a thread inside a system call -------------------------------------- *
 *
 * A request counted as running in the stats has been taken by a worker, not
 * necessarily begun its system call: a test that closes the fd, or needs the
 * call to hold its file, must wait for the call itself.  Linux shows it in
 * /proc/self/task/TID/syscall: the number and arguments of the call a
 * sleeping thread is in ("running" while it is on a CPU). */

/* Do descriptors a and b name the same file?  A worker makes its system
 * calls on its queue's pinned duplicate of the program's fd, not on the
 * program's number. */
static inline bool same_file(int a, int b)
{
	struct stat x, y;

	return a == b || (fstat(a, &x) == 0 && fstat(b, &y) == 0 &&
	                  x.st_dev == y.st_dev && x.st_ino == y.st_ino);
}

/* Is thread tid asleep inside system call nr on fd's file (its first
 * argument fd, or a descriptor of the same file; any first argument when fd
 * is negative)?  A thread that is gone is not. */
static inline bool task_sleeps_in(int tid, long nr, int fd)
{
	char path[64], line[256];
	unsigned long arg0;
	long n;
	bool ok;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(line, sizeof line, f) && sscanf(line, "%ld %lx", &n, &arg0) == 2;
	fclose(f);
	return ok && n == nr && (fd < 0 || (arg0 <= INT_MAX && same_file((int)arg0, fd)));
}

/* A thread of this process other than the caller asleep in one of the
 * nnr system calls nrs on fd: its id, or 0 if there is none. */
static inline int thread_in_call(const long *nrs, int nnr, int fd)
{
	int self = (int)syscall(SYS_gettid), found = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	cr_assert_not_null(d, "/proc/self/task: %s", strerror(errno));
	while (!found && (e = readdir(d))) {
		int tid = atoi(e->d_name);
		if (tid <= 0 || tid == self)
			continue;
		for (int i = 0; i < nnr && !found; i++)
			if (task_sleeps_in(tid, nrs[i], fd))
				found = tid;
	}
	closedir(d);
	return found;
}

/* Waits until another thread of this process sleeps in one of the calls
 * nrs on fd (any, if fd is negative); returns its id.  Skips the test where /proc does not show
 * system calls; fails it after DEADLINE_MS. */
static inline int wait_thread_in_call(const long *nrs, int nnr, int fd, const char *what)
{
	long long end = now_ms() + DEADLINE_MS;
	int polls = 0, tid;

	if (access("/proc/thread-self/syscall", R_OK) != 0)
		cr_skip_test("/proc/thread-self/syscall: %s: cannot see a worker "
		             "inside its system call", strerror(errno));
	while (!(tid = thread_in_call(nrs, nnr, fd))) {
		if (now_ms() > end)
			cr_assert_fail("no thread was inside a %s of fd %d within %d ms: "
			               "the request never reached its system call",
			               what, fd, DEADLINE_MS);
		poll_pause(&polls);
	}
	return tid;
}

/* Waits until a worker sleeps in a read of fd (read, readv, pread64,
 * preadv or preadv2): past the point where a close of fd could stop the
 * request, which now holds its file.  Returns the thread's id. */
static inline int wait_thread_in_read(int fd)
{
	static const long nrs[] = { SYS_read, SYS_readv, SYS_pread64, SYS_preadv,
	                            SYS_preadv2 };

	return wait_thread_in_call(nrs, 5, fd, "read");
}

/* Waits until another thread sleeps in poll(2) or ppoll(2), such as the
 * libaio POLL poller.  Returns the thread's id. */
static inline int wait_thread_in_poll(void)
{
	static const long nrs[] = { SYS_poll, SYS_ppoll };

	return wait_thread_in_call(nrs, 2, -1, "poll");
}

/* The same for a write of fd (write, writev, pwrite64, pwritev, pwritev2),
 * e.g. one blocked on a full pipe. */
static inline int wait_thread_in_write(int fd)
{
	static const long nrs[] = { SYS_write, SYS_writev, SYS_pwrite64, SYS_pwritev,
	                            SYS_pwritev2 };

	return wait_thread_in_call(nrs, 5, fd, "write");
}

/* ---- a busy pool -------------------------------------------------------- */

/* A read on an empty pipe: it keeps a worker busy until released. */
struct blocker {
	int p[2];
	char buf[1];
	struct aiocb cb;
};

static inline void blocker_start(struct blocker *b)
{
	make_pipe(b->p);
	fill_cb(&b->cb, b->p[0], b->buf, 1, 0);
	cr_assert_eq(aio_read(&b->cb), 0, "aio_read: %s", strerror(errno));
	wait_until(stats_running() >= 1, "the blocking read never started");
}

static inline void blocker_release(struct blocker *b)
{
	put(b->p[1], "x", 1);
	cr_assert_eq(wait_aio(&b->cb), 0);
	cr_assert_eq(aio_return(&b->cb), 1);
}

/* One worker, and it is busy: whatever is submitted next queues, and runs
 * in the engine's order once the blocker is released. */
static inline void one_busy_worker(struct blocker *b)
{
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 1), 0);
	blocker_start(b);
}

/* ---- userfaultfd: requests that block inside their system call ---------- *
 *
 * A buffer page registered with userfaultfd makes a pread into it (or a
 * pwrite from it) block in the kernel until the test resolves the fault.
 * That gives a request the test can hold running for as long as it likes,
 * and tells it which request a worker has started, and when. */
struct uffd {
	int fd;
	long pagesz;
	size_t npages;
	char *base;
	unsigned char *seen;   /* pages whose fault has been reported */
	unsigned char *src;    /* one page, the contents to install */
};

/* false (errno set) when userfaultfd is unavailable here. */
static inline bool uffd_open(struct uffd *u, size_t npages)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;

	memset(u, 0, sizeof *u);
	u->pagesz = sysconf(_SC_PAGESIZE);
	u->npages = npages;
	u->fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0)
		return false;
	if (ioctl(u->fd, UFFDIO_API, &api) < 0) {
		close(u->fd);
		return false;
	}
	u->base = mmap(NULL, npages * u->pagesz, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(u->base, MAP_FAILED);
	reg.range.start = (unsigned long)u->base;
	reg.range.len = npages * u->pagesz;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0) {
		close(u->fd);
		return false;
	}
	u->seen = calloc(npages, 1);
	u->src = malloc(u->pagesz);
	cr_assert(u->seen && u->src);
	return true;
}

#define UFFD_OR_SKIP(u, n) do { \
	if (!uffd_open((u), (n))) \
		cr_skip_test("userfaultfd unavailable: %s", strerror(errno)); \
} while (0)

static inline void *uffd_page(struct uffd *u, size_t i)
{
	return u->base + i * u->pagesz;
}

/* The page of a fault not reported before, waiting up to ms; -1 if none. */
static inline long uffd_poll_fault(struct uffd *u, long ms)
{
	long long end = now_ms() + ms;

	for (;;) {
		struct pollfd p = { u->fd, POLLIN, 0 };
		struct uffd_msg m;
		long left = (long)(end - now_ms());

		if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
			return -1;
		if (read(u->fd, &m, sizeof m) != (ssize_t)sizeof m)
			continue;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		unsigned long a = (unsigned long)m.arg.pagefault.address;
		long i = (long)((a - (unsigned long)u->base) / (unsigned long)u->pagesz);
		cr_assert(i >= 0 && (size_t)i < u->npages, "fault outside the area");
		if (u->seen[i])
			continue;   /* the same fault, reported again */
		u->seen[i] = 1;
		return i;
	}
}

/* The page of the next new fault; fails the test after DEADLINE_MS. */
static inline long uffd_next_fault(struct uffd *u)
{
	long i = uffd_poll_fault(u, DEADLINE_MS);

	cr_assert_geq(i, 0, "no request started (no page fault) within %d ms", DEADLINE_MS);
	return i;
}

/* Resolves page i's fault, installing a page of byte fill: the request
 * blocked on it goes on. */
static inline void uffd_release(struct uffd *u, size_t i, unsigned char fill)
{
	struct uffdio_copy c;

	memset(u->src, fill, u->pagesz);
	c.dst = (unsigned long)uffd_page(u, i);
	c.src = (unsigned long)u->src;
	c.len = u->pagesz;
	c.mode = 0;
	c.copy = 0;
	cr_assert(ioctl(u->fd, UFFDIO_COPY, &c) == 0 || errno == EEXIST,
	          "UFFDIO_COPY: %s", strerror(errno));
}

/* ---- child processes ----------------------------------------------------- *
 *
 * Criterion's asserts belong to the test process: a forked child checks
 * with child_check and reports through its exit status. */
#define CHILD_SKIP 77

#define child_check(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: in child: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, "" __VA_ARGS__); \
		fputc('\n', stderr); \
		_exit(1); \
	} \
} while (0)

static inline int child_wait_aio(const struct aiocb *cb)
{
	long long end = now_ms() + DEADLINE_MS;
	int polls = 0;

	while (aio_error(cb) == EINPROGRESS) {
		child_check(now_ms() < end, "aiocb %p still in progress", (void *)cb);
		poll_pause(&polls);
	}
	return aio_error(cb);
}

/* Waits for pid up to ms (then kills it); its wait status. */
static inline int wait_child_within(pid_t pid, int ms)
{
	long long end = now_ms() + ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		cr_assert_eq(r, 0, "waitpid: %s", strerror(errno));
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("child %d did not finish within %d ms", (int)pid, ms);
		}
		sleep_ms(1);
	}
}

/* Waits for pid up to DEADLINE_MS (then kills it); its wait status. */
static inline int wait_child(pid_t pid)
{
	return wait_child_within(pid, DEADLINE_MS);
}

/* Runs fn(arg) in a forked child and checks that it passed; skips the test
 * if it returned CHILD_SKIP. */
static inline void run_child(int (*fn)(void *), void *arg)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(fn(arg));
	status = wait_child(pid);
	cr_assert(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) == CHILD_SKIP)
		cr_skip_test("the child could not set up its case");
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed (see its message above)");
}

/* Runs argv[0] with the environment changed by env (NULL-terminated;
 * "NAME=VALUE" sets, "NAME" unsets), its stdout into out (NUL-terminated).
 * Returns its wait status; fails the test if it runs past DEADLINE_MS. */
static inline int run_program(char *const argv[], const char *const env[],
		char *out, size_t outsz)
{
	long long end = now_ms() + DEADLINE_MS;
	size_t len = 0;
	int p[2];
	pid_t pid;

	make_pipe(p);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(p[1], 1);
		for (const char *const *e = env; e && *e; e++) {
			const char *eq = strchr(*e, '=');
			if (eq) {
				char name[256];
				snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(*e);
			}
		}
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = { p[0], POLLIN, 0 };
		long left = (long)(end - now_ms());
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(p[0]);
			cr_assert_fail("%s did not finish within %d ms", argv[0], DEADLINE_MS);
		}
		n = read(p[0], out + len, outsz - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == outsz - 1)
			break;
	}
	out[len] = '\0';
	close(p[0]);
	return wait_child(pid);
}

/* A path in the build tree; skips the test when not run by make check. */
static inline void build_path(char *buf, size_t n, const char *rel)
{
	const char *d = getenv("AIOPOOL_TEST_BUILDDIR");

	if (!d)
		cr_skip_test("AIOPOOL_TEST_BUILDDIR is not set: run through make check");
	snprintf(buf, n, "%s/%s", d, rel);
}

#endif
