/* libaio_fds: the descriptors behind libaio requests.  A POLL follows the
 * file it was submitted on, not its fd number; the descriptors aiopool
 * keeps (the poller's wake-up, a RESFD eventfd's duplicate, a masked
 * io_pgetevents' wake-up) are never written once the program has closed
 * them and reused their numbers; a new one whose number a dup2() takes
 * before aiopool moves it high stays the program's; a context's life
 * opens no file; and nothing needs a free descriptor. */
#include "libaio_common.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/resource.h>

TestSuite(libaio_fds, .timeout = 60);

static void raw_close(int fd)
{
	cr_assert_eq(syscall(SYS_close, fd), 0, "close(%d)", fd);
}

/* Numbers looked at: aiopool's own descriptors sit at 1024 at the most
 * and above (lower with a lower RLIMIT_NOFILE). */
#define NFDS 4096

/* The open descriptors, as a bitmap over the first NFDS numbers. */
static void open_fds(bool set[NFDS])
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int dfd;

	cr_assert_not_null(d);
	dfd = dirfd(d);
	memset(set, 0, NFDS * sizeof *set);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != dfd && fd < NFDS)
			set[fd] = true;
	}
	closedir(d);
}

/* A POLL whose fd is closed (behind aiopool's back) and whose number then
 * names another, readable pipe does not complete with that pipe's
 * readiness: it polls the file it was submitted on, as the kernel's holds
 * a reference to it, and completes when that file is ready. */
Test(libaio_fds, poll_follows_its_file_not_the_fd_number)
{
	io_context_t ctx = new_ctx(4);
	int a[2], b[2], c[2], num;
	struct iocb pa, pc;
	struct io_event ev[2];
	struct timespec zero = { 0, 0 };

	make_pipe(a);
	make_pipe(c);
	io_prep_poll(&pa, a[0], POLLIN);
	cr_assert_eq(submit1(ctx, &pa), 1);
	num = a[0];
	raw_close(a[0]);
	make_pipe(b);
	if (b[0] != num)
		cr_skip_test("the number was not reused (%d, %d)", num, b[0]);
	put(b[1], "x", 1);   /* the number now names a readable pipe */
	/* Another POLL makes the poller look at its list again; when its
	 * event is in, the poller has polled pa's number since. */
	io_prep_poll(&pc, c[0], POLLIN);
	cr_assert_eq(submit1(ctx, &pc), 1);
	put(c[1], "x", 1);
	cr_assert_eq(get_one(ctx).obj, &pc);
	cr_assert_eq(io_getevents(ctx, 0, 2, ev, &zero), 0,
	             "the POLL completed with the readiness of a pipe it was "
	             "not asked about");
	put(a[1], "y", 1);   /* its own file gets ready */
	ev[0] = get_one(ctx);
	cr_assert_eq(ev[0].obj, &pa);
	cr_assert((long)ev[0].res & POLLIN, "res %#lx", (long)ev[0].res);
	cr_assert_eq(io_destroy(ctx), 0);
}

static volatile pid_t pwait_tid;

static void *pwait_main(void *arg)
{
	io_context_t ctx = arg;
	struct io_event ev;
	sigset_t none;

	sigemptyset(&none);
	pwait_tid = (pid_t)syscall(SYS_gettid);
	return (void *)(intptr_t)io_pgetevents(ctx, 1, 1, &ev, NULL, &none);
}

/* The first of the files that is not empty, or that aiopool closed (as
 * if it were its own); -1 if none. */
static int written(const int *files, int n)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (fstat(files[i], &st) < 0 || st.st_size)
			return files[i];
	}
	return -1;
}

/* The library's calls to poll() and ppoll() come here first (the
 * program's definitions go before libc's).  While the gate is closed a
 * thread coming back from one waits before it looks at any descriptor;
 * `poller_tid' is the last thread that polled more than one (the POLL
 * poller), `poller_nfds' how many. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_open = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static volatile pid_t poller_tid;
static volatile nfds_t poller_nfds;

static void gate_pass(void)
{
	int e = errno;

	pthread_mutex_lock(&gate_lock);
	while (gate_closed)
		pthread_cond_wait(&gate_open, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	errno = e;
}

static void gate_set(bool closed)
{
	pthread_mutex_lock(&gate_lock);
	gate_closed = closed;
	pthread_cond_broadcast(&gate_open);
	pthread_mutex_unlock(&gate_lock);
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int (*next)(struct pollfd *, nfds_t, int) =
		(int (*)(struct pollfd *, nfds_t, int))dlsym(RTLD_NEXT, "poll");
	int rc;

	if (n > 1) {
		poller_nfds = n;
		poller_tid = (pid_t)syscall(SYS_gettid);
	}
	rc = next(fds, n, timeout);
	gate_pass();
	return rc;
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t,
          const sigset_t *mask)
{
	int (*next)(struct pollfd *, nfds_t, const struct timespec *,
	            const sigset_t *) =
		(int (*)(struct pollfd *, nfds_t, const struct timespec *,
		         const sigset_t *))dlsym(RTLD_NEXT, "ppoll");
	int rc = next(fds, n, t, mask);

	gate_pass();
	return rc;
}

static bool polling(pid_t tid)
{
	return tid && (task_sleeps_in(tid, SYS_poll, -1) ||
	               task_sleeps_in(tid, SYS_ppoll, -1));
}

/* Closes the gate with the poller asleep on pp, pq, pr and its wake-up,
 * and the masked waiter asleep on its own: true.  Seen asleep after the
 * gate closed, each will wait at it when it wakes.  False (the gate open
 * again) if one of them was not asleep once it had closed. */
static bool asleep_at_gate(void)
{
	wait_until(poller_nfds == 4 && polling(poller_tid) &&
	           polling(pwait_tid), "the poller never slept on 4 fds "
	           "(last: %d)", (int)poller_nfds);
	gate_set(true);
	if (poller_nfds == 4 && polling(poller_tid) && polling(pwait_tid))
		return true;
	gate_set(false);
	return false;
}

/* A program closes every descriptor it did not open (as close_range(3,
 * ~0U, 0) does) while aiopool has some: the poller's wake-up, a RESFD
 * eventfd's duplicate, a masked io_pgetevents' wake-up, a POLL's
 * duplicate.  Its own files then take those numbers.  aiopool writes into
 * none of them, and its requests still complete.
 *
 * The replacing is done while aiopool's threads sleep and cannot act: a
 * number that changes hands while aiopool is acting on it (it checks what
 * the number names, then uses it: two system calls) is a window no
 * library closes, and it is not what this test is about. */
Test(libaio_fds, closed_internal_descriptors_are_never_written)
{
	io_context_t ctx = new_ctx(4), ctx2 = new_ctx(4);
	bool before[NFDS], after[NFDS];
	int p[2], q[2], r[2], efd, files[64], nfiles = 0;
	struct iocb pp, pq, pr, px;
	pthread_t t;
	intptr_t rc;

	make_pipe(p);
	make_pipe(q);
	make_pipe(r);
	efd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	open_fds(before);

	io_prep_poll(&pp, p[0], POLLIN);          /* starts the poller */
	cr_assert_eq(submit1(ctx, &pp), 1);
	io_prep_poll(&pq, q[0], POLLIN);          /* a RESFD request */
	io_set_eventfd(&pq, efd);
	cr_assert_eq(submit1(ctx, &pq), 1);
	pthread_create(&t, NULL, pwait_main, ctx2);
	io_prep_poll(&pr, r[0], POLLIN);
	cr_assert_eq(submit1(ctx2, &pr), 1);
	/* The masked waiter's wake-up is open once it sleeps in ppoll. */
	wait_until(pwait_tid && task_sleeps_in(pwait_tid, SYS_ppoll, -1),
	           "io_pgetevents never slept");
	int extra = 0;
	open_fds(after);
	for (int fd = 0; fd < NFDS; fd++)
		extra += after[fd] && !before[fd];
	cr_assert_geq(extra, 3, "only %d descriptors of aiopool's", extra);

	/* Each number aiopool had now names a file of the program's, put
	 * there while the poller and the waiter are asleep, held at the gate
	 * when they wake. */
	while (!asleep_at_gate())
		;
	for (int fd = 0; fd < NFDS; fd++)
		if (after[fd] && !before[fd] && nfiles < 64) {
			int tf = temp_file(0, 0);
			raw_close(fd);
			cr_assert_eq(syscall(SYS_dup2, tf, fd), fd);
			raw_close(tf);
			files[nfiles++] = fd;
		}
	gate_set(false);

	io_prep_poll(&px, q[1], POLLOUT);   /* ready: completes at once */
	cr_assert_eq(submit1(ctx, &px), 1);
	put(q[1], "x", 1);                   /* the RESFD request completes */
	put(r[1], "x", 1);                   /* the masked waiter's event */
	/* The waiter returns, unless its wake-up went into a file. */
	wait_until(pthread_tryjoin_np(t, (void **)&rc) == 0 ||
	           written(files, nfiles) >= 0, "the masked waiter never woke");
	int w = written(files, nfiles);
	cr_assert_lt(w, 0, "aiopool wrote into (or closed) fd %d, a file that "
	             "took the number of one of its own descriptors", w);
	cr_assert_eq(rc, 1, "io_pgetevents: %ld", (long)rc);
	cr_assert_eq(io_destroy(ctx), 0);
	cr_assert_eq(io_destroy(ctx2), 0);
	cr_assert_lt(written(files, nfiles), 0, "written into a file at the end");
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen = 1;
}

static void *write_later(void *arg)
{
	put(*(int *)arg, "x", 1);
	return NULL;
}

/* With every descriptor in use (RLIMIT_NOFILE reached), a POLL is still
 * accepted and completes, and io_pgetevents with a mask still waits for
 * it, swapping the mask atomically: a signal it unblocks, pending at the
 * call, ends the wait with -EINTR. */
Test(libaio_fds, poll_and_masked_wait_need_no_free_descriptor)
{
	io_context_t ctx = new_ctx(4);
	struct rlimit rl = { 64, 64 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct timespec ten = { 10, 0 };
	sigset_t block, waitmask;
	struct io_event ev;
	struct iocb cb;
	pthread_t t;
	int p[2], rc;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &waitmask);
	sigdelset(&waitmask, SIGUSR1);
	make_pipe(p);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0)
		;
	cr_assert_eq(errno, EMFILE);

	io_prep_poll(&cb, p[0], POLLIN);
	cr_assert_eq(submit1(ctx, &cb), 1, "a POLL at RLIMIT_NOFILE");
	usr1_seen = 0;
	raise(SIGUSR1);   /* pending: blocked */
	cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, &ten, &waitmask), -EINTR);
	cr_assert_eq(usr1_seen, 1, "the handler ran during the wait");
	pthread_create(&t, NULL, write_later, &p[1]);
	rc = io_pgetevents(ctx, 1, 1, &ev, &ten, &waitmask);
	cr_assert_eq(rc, 1, "io_pgetevents with a mask at RLIMIT_NOFILE: %d", rc);
	cr_assert_eq(ev.obj, &cb);
	pthread_join(t, NULL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* The descriptors aiopool makes for a POLL and for a RESFD eventfd stay out
 * of the low numbers: a daemon that closes its standard input and opens
 * /dev/null still gets 0. */
Test(libaio_fds, own_descriptors_leave_the_lowest_numbers_free)
{
	io_context_t ctx = new_ctx(4);
	int p[2], f = temp_file(8, 0), efd = eventfd(0, EFD_CLOEXEC);
	int saved = dup(0), null;
	struct iocb poll_cb, wr;
	struct io_event ev[2];
	char buf[8] = "abcdefgh";

	cr_assert(saved >= 0 && efd >= 0);
	make_pipe(p);
	cr_assert_eq(close(0), 0);
	io_prep_poll(&poll_cb, p[0], POLLIN);         /* waits: a duplicate */
	cr_assert_eq(submit1(ctx, &poll_cb), 1);
	io_prep_pwrite(&wr, f, buf, sizeof buf, 0);
	io_set_eventfd(&wr, efd);                      /* a duplicate too */
	cr_assert_eq(submit1(ctx, &wr), 1);
	null = open("/dev/null", O_RDONLY);
	cr_assert_eq(null, 0, "/dev/null got %d: aiopool took 0", null);
	put(p[1], "x", 1);
	get_events(ctx, ev, 2);
	cr_assert_eq(dup2(saved, 0), 0);
	close(saved);
	io_destroy(ctx);
	close(p[0]);
	close(p[1]);
	close(f);
	close(efd);
}

/* ---- descriptors that exist for a moment ---------------------------------- */

/* The library's calls to pipe2() and fopen() come here first (the program's
 * definitions go before libc's).  While `counting', each is counted; a
 * `pipe_victim' >= 0 takes the read end's number of the next pipe right
 * after the call, as another thread's dup2() onto a number it found free
 * would, and `pipe_taken' says which number that was. */
static int counting, opened, pipe_victim = -1, pipe_taken = -1;

int pipe2(int p[2], int flags)
{
	int (*next)(int *, int) = (int (*)(int *, int))dlsym(RTLD_NEXT, "pipe2");
	int rc = next(p, flags), victim;

	if (rc == 0 && __atomic_load_n(&counting, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&opened, 1, __ATOMIC_SEQ_CST);
	victim = __atomic_exchange_n(&pipe_victim, -1, __ATOMIC_SEQ_CST);
	if (rc == 0 && victim >= 0) {
		syscall(SYS_dup2, victim, p[0]);
		__atomic_store_n(&pipe_taken, p[0], __ATOMIC_SEQ_CST);
	}
	return rc;
}

FILE *fopen(const char *path, const char *mode)
{
	FILE *(*next)(const char *, const char *) =
		(FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, "fopen");

	if (__atomic_load_n(&counting, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&opened, 1, __ATOMIC_SEQ_CST);
	return next(path, mode);
}

/* A context's life opens no file: a descriptor held for a moment takes the
 * lowest free number, which another thread may be about to dup2() onto,
 * and closing it then would close that thread's file. */
Test(libaio_fds, a_context_opens_no_file)
{
	io_context_t ctx = 0;
	int f = temp_file(0, 0);
	char buf[8] = "abcdefgh";
	struct iocb wr;

	__atomic_store_n(&counting, 1, __ATOMIC_SEQ_CST);
	cr_assert_eq(io_setup(4, &ctx), 0);
	io_prep_pwrite(&wr, f, buf, sizeof buf, 0);
	cr_assert_eq(submit1(ctx, &wr), 1);
	cr_assert_eq(get_one(ctx).res, sizeof buf);
	cr_assert_eq(io_destroy(ctx), 0);
	__atomic_store_n(&counting, 0, __ATOMIC_SEQ_CST);
	cr_assert_eq(opened, 0, "io_setup, io_submit, io_getevents and io_destroy "
	             "opened %d files", opened);
	close(f);
}

/* The poller's new wake-up pipe has its read end's number taken by a file
 * of the program's (dup2) before aiopool moves it out of the low numbers:
 * that file stays open and the program's, and the POLL still completes
 * (the poller ticks without its pipe until it makes another). */
Test(libaio_fds, a_new_descriptor_taken_by_dup2_stays_the_programs)
{
	io_context_t ctx = new_ctx(4);
	int p[2], f = temp_file(0, 0), taken;
	struct stat want, got;
	struct iocb cb;

	make_pipe(p);
	cr_assert_eq(fstat(f, &want), 0);
	__atomic_store_n(&pipe_victim, f, __ATOMIC_SEQ_CST);
	io_prep_poll(&cb, p[0], POLLIN);   /* starts the poller: a pipe */
	cr_assert_eq(submit1(ctx, &cb), 1);
	taken = __atomic_load_n(&pipe_taken, __ATOMIC_SEQ_CST);
	cr_assert_geq(taken, 0, "the poller made no wake-up pipe");
	cr_assert_eq(fstat(taken, &got), 0, "aiopool closed fd %d, which had "
	             "become the program's file", taken);
	cr_assert(got.st_dev == want.st_dev && got.st_ino == want.st_ino,
	          "fd %d no longer names the program's file", taken);
	put(p[1], "x", 1);
	cr_assert_eq(get_one(ctx).obj, &cb);
	cr_assert_eq(fstat(taken, &got), 0, "fd %d closed later", taken);
	cr_assert_eq(io_destroy(ctx), 0);
	close(taken);
	close(f);
}
