/* fault_dlclose: a program that dlopen()s libaiopool, uses it and
 * dlclose()s it goes on running.  The library's threads (workers, the
 * libaio poller, SIGEV_THREAD notifiers) outlive the dlclose, so the
 * library is never unloaded (aiopool(7), "Loading and unloading").  Each
 * case leaves one of them in a state it wakes from after the dlclose:
 * idle, blocked in a read, waiting in poll(), running the program's
 * notification function.
 *
 * This program does not link libaiopool: it loads the one built beside it
 * (TEST_LIBAIOPOOL) and calls it through dlsym.  Each case runs in a
 * forked child, so that a crash fails the case. */
#include "common.h"

#include <dlfcn.h>
#include <libaio.h>

struct lib {
	void *h;
	int (*aio_read)(struct aiocb *);
	int (*stats)(struct aiopool_stats *, unsigned long);
	int (*set)(int, long);
	int (*io_setup)(int, io_context_t *);
	int (*io_submit)(io_context_t, long, struct iocb **);
};

static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	child_check(p, "dlsym(%s): %s", name, dlerror());
	return p;
}

static void lib_open(struct lib *l)
{
	l->h = dlopen(TEST_LIBAIOPOOL, RTLD_NOW | RTLD_LOCAL);
	child_check(l->h, "dlopen(%s): %s", TEST_LIBAIOPOOL, dlerror());
	l->aio_read = (int (*)(struct aiocb *))sym(l->h, "aio_read");
	l->stats = (int (*)(struct aiopool_stats *, unsigned long))sym(l->h, "aiopool_stats");
	l->set = (int (*)(int, long))sym(l->h, "aiopool_set");
	l->io_setup = (int (*)(int, io_context_t *))sym(l->h, "io_setup");
	l->io_submit = (int (*)(io_context_t, long, struct iocb **))sym(l->h, "io_submit");
	/* Idle threads leave soon: the cases wait for them to be gone. */
	child_check(l->set(AIOPOOL_IDLE_MS, 50) == 0, "aiopool_set");
	child_check(l->set(AIOPOOL_FASTPATH, 0) == 0, "aiopool_set");
}

static void lib_close(struct lib *l)
{
	child_check(dlclose(l->h) == 0, "dlclose: %s", dlerror());
}

static unsigned long running(struct lib *l)
{
	struct aiopool_stats st;

	child_check(l->stats(&st, sizeof st) == 0, "aiopool_stats");
	return st.running;
}

/* Threads of this process (no Criterion assert: this is a child). */
static int tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	child_check(d, "opendir: %s", strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#define child_wait(cond, ...) do { \
	long long cw_end_ = now_ms() + DEADLINE_MS; \
	while (!(cond)) { \
		child_check(now_ms() < cw_end_, "timed out: " __VA_ARGS__); \
		sleep_ms(1); \
	} \
} while (0)

static int cb_error(const struct aiocb *cb)
{
	return __atomic_load_n(&cb->__error_code, __ATOMIC_ACQUIRE);
}

/* After the dlclose: the library's threads end their work and leave, and
 * the process goes on. */
static int finish(void)
{
	child_wait(tasks() == 1, "the library's threads never left (%d tasks)", tasks());
	/* The library is still there (and usable) when loaded again. */
	child_check(dlopen(TEST_LIBAIOPOOL, RTLD_NOW | RTLD_NOLOAD), "unloaded");
	return 0;
}

static int idle_workers(void *arg)
{
	struct lib l;
	struct aiocb cb;
	char buf[16];
	int fd = open("/proc/self/exe", O_RDONLY);

	(void)arg;
	lib_open(&l);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	child_check(l.aio_read(&cb) == 0, "aio_read: %s", strerror(errno));
	child_wait(cb_error(&cb) != EINPROGRESS, "the read never ended");
	child_check(tasks() > 1, "no worker was started");
	lib_close(&l);
	return finish();
}

static int worker_in_a_read(void *arg)
{
	struct lib l;
	struct aiocb cb;
	char buf[4] = { 0 };
	int p[2];

	(void)arg;
	child_check(pipe(p) == 0, "pipe");
	lib_open(&l);
	fill_cb(&cb, p[0], buf, 3, 0);
	child_check(l.aio_read(&cb) == 0, "aio_read: %s", strerror(errno));
	child_wait(running(&l) == 1, "the read never started");
	lib_close(&l);
	child_check(write(p[1], "abc", 3) == 3, "write");
	child_wait(cb_error(&cb) != EINPROGRESS, "the read never ended");
	child_check(cb_error(&cb) == 0 && memcmp(buf, "abc", 3) == 0, "the read failed");
	return finish();
}

static int waiting_poll(void *arg)
{
	struct lib l;
	io_context_t ctx = 0;
	struct iocb io, *iop[1] = { &io };
	volatile unsigned *tail;
	int p[2];

	(void)arg;
	child_check(pipe(p) == 0, "pipe");
	lib_open(&l);
	child_check(l.io_setup(4, &ctx) == 0, "io_setup");
	io_prep_poll(&io, p[0], POLLIN);
	child_check(l.io_submit(ctx, 1, iop) == 1, "io_submit");
	child_wait(tasks() > 1, "the poller never started");
	lib_close(&l);
	child_check(write(p[1], "x", 1) == 1, "write");
	/* The ring is the context's memory, the kernel's layout: its tail
	 * moves when the poller has delivered the event. */
	tail = &((unsigned *)ctx)[3];
	child_wait(*tail != 0, "the poll's event never came");
	return 0;   /* the poller stays for the next POLL: exit with it */
}

static int note_fd[2];
static int note_in;

static void note(union sigval v)
{
	char c;

	(void)v;
	__atomic_store_n(&note_in, 1, __ATOMIC_RELEASE);
	/* Held here until the test has closed the library. */
	while (read(note_fd[0], &c, 1) < 0 && errno == EINTR)
		;
}

static int live_notifier(void *arg)
{
	struct lib l;
	struct aiocb cb;
	char buf[16];
	int fd = open("/proc/self/exe", O_RDONLY);

	(void)arg;
	child_check(pipe(note_fd) == 0, "pipe");
	lib_open(&l);
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = note;
	child_check(l.aio_read(&cb) == 0, "aio_read: %s", strerror(errno));
	child_wait(cb_error(&cb) != EINPROGRESS, "the read never ended");
	child_wait(__atomic_load_n(&note_in, __ATOMIC_ACQUIRE), "note() never ran");
	lib_close(&l);
	child_check(write(note_fd[1], "x", 1) == 1, "write");
	return finish();
}

Test(fault_dlclose, dlclose_with_idle_workers)
{
	run_child(idle_workers, NULL);
}

Test(fault_dlclose, dlclose_with_a_worker_in_a_blocking_read)
{
	run_child(worker_in_a_read, NULL);
}

Test(fault_dlclose, dlclose_with_a_waiting_io_cmd_poll)
{
	run_child(waiting_poll, NULL);
}

Test(fault_dlclose, dlclose_with_a_live_notifier)
{
	run_child(live_notifier, NULL);
}
