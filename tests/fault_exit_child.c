/* fault_exit_child: a program that exits with requests in flight, for
 * tests/fault_exit.c.  Not a Criterion suite: it is the process whose exit
 * is watched.  Exit status 0 means it got as far as exiting; 1..99 is the
 * step that failed before that.
 *
 *   fault_exit_child SCENARIO FD
 *
 * FD is an open, empty regular file the parent checks afterwards.
 *   busy       pipes and a socket whose reads never end, a worker stuck on
 *              each; 64 POSIX and 64 libaio writes queued on FD, with
 *              SIGEV_THREAD and SIGEV_SIGNAL notifications; return from
 *              main.
 *   busy_exit  the same, then _exit(0): nothing is waited for.
 *   submitting two threads keep submitting appends to FD (POSIX and
 *              libaio) while the main thread calls exit(0).
 *   deep       the same with 64 appends kept queued on FD (made O_APPEND,
 *              so that they run one at a time and never all finish).
 *   in_note    exit(0) called from a SIGEV_THREAD notification function
 *              while 63 writes are queued on FD.
 *   stuck      a write to FD from a userfaultfd page that is never filled:
 *              it never finishes; exit(0) gives up on it after its stall
 *              time.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

enum { N = 64, CHUNK = 4096 };

#define STEP(n, cond) do { if (!(cond)) { \
	fprintf(stderr, "fault_exit_child: step %d failed: %s\n", (n), #cond); \
	_exit(n); } } while (0)

static int fd;
static char chunk[CHUNK];

/* Under LeakSanitizer, the leak check at exit stops every thread first,
 * and a thread stuck in a userfaultfd fault cannot be stopped: the check
 * is off for that scenario (the hook is LSan's; unused otherwise). */
static int lsan_off;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return lsan_off;
}
static struct aiocb cbs[N];
static struct iocb ios[N];
static int notes;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void on_signal(int sig)
{
	(void)sig;
}

static void note(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&notes, 1, __ATOMIC_RELAXED);
}

static void fill(struct aiocb *cb, int f, void *buf, size_t n, off_t off)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = f;
	cb->aio_buf = buf;
	cb->aio_nbytes = n;
	cb->aio_offset = off;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

static void wait_running(unsigned long n)
{
	struct aiopool_stats st;

	for (int i = 0; i < 10000; i++) {
		STEP(2, aiopool_stats(&st, sizeof st) == 0);
		if (st.running >= n)
			return;
		sleep_ms(1);
	}
	STEP(3, !"the stuck reads never started");
}

/* Workers stuck on reads that never end, and writes queued behind. */
static void busy(void)
{
	static char c[4];
	static struct aiocb stuck[3];
	io_context_t ctx = 0;
	struct iocb *iop[N];
	int p[2], q[2], sv[2];

	signal(SIGUSR1, on_signal);
	STEP(4, pipe(p) == 0 && pipe(q) == 0);
	STEP(5, socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	STEP(6, aiopool_set(AIOPOOL_MAX_THREADS, 3) == 0);
	fill(&stuck[0], p[0], &c[0], 1, 0);
	fill(&stuck[1], q[0], &c[1], 1, 0);
	fill(&stuck[2], sv[0], &c[2], 1, 0);
	for (int i = 0; i < 3; i++)
		STEP(7, aio_read(&stuck[i]) == 0);
	wait_running(3);
	for (int i = 0; i < N; i++) {
		fill(&cbs[i], fd, chunk, CHUNK, (off_t)i * CHUNK);
		if (i % 2) {
			cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
			cbs[i].aio_sigevent.sigev_notify_function = note;
		} else {
			cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
			cbs[i].aio_sigevent.sigev_signo = SIGUSR1;
		}
		STEP(8, aio_write(&cbs[i]) == 0);
	}
	STEP(9, io_setup(N, &ctx) == 0);
	for (int i = 0; i < N; i++) {
		io_prep_pwrite(&ios[i], fd, chunk, CHUNK, (long long)(N + i) * CHUNK);
		iop[i] = &ios[i];
	}
	STEP(10, io_submit(ctx, N, iop) == N);
}

/* Threads that keep submitting appends while main exits. */

static int depth = 8;

static void *posix_appender(void *arg)
{
	static struct aiocb a[64];
	bool busy[64] = { false };

	(void)arg;
	for (;;)
		for (int i = 0; i < depth; i++) {
			if (busy[i] && aio_error(&a[i]) == EINPROGRESS)
				continue;
			if (busy[i])
				aio_return(&a[i]);
			fill(&a[i], fd, chunk, 512, 0);
			busy[i] = aio_write(&a[i]) == 0;
		}
	return NULL;
}

static void *libaio_appender(void *arg)
{
	static struct iocb a[8];
	struct iocb *one;
	struct io_event ev[8];
	io_context_t ctx = 0;
	int inflight = 0;

	(void)arg;
	if (io_setup(8, &ctx) != 0)
		return NULL;
	for (;;) {
		for (int i = inflight; i < 8; i++) {
			io_prep_pwrite(&a[i], fd, chunk, 512, 0);
			one = &a[i];
			if (io_submit(ctx, 1, &one) == 1)
				inflight++;
		}
		int n = io_getevents(ctx, 1, 8, ev, NULL);
		if (n > 0)
			inflight -= n;
	}
	return NULL;
}

static void in_note_exit(union sigval v)
{
	(void)v;
	exit(0);
}

static void stuck_write(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	long pagesz = sysconf(_SC_PAGESIZE);
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	char *page;

	if (u < 0 || ioctl(u, UFFDIO_API, &api) < 0)
		_exit(77);
	page = mmap(NULL, (size_t)pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	STEP(20, page != MAP_FAILED);
	reg.range.start = (unsigned long)page;
	reg.range.len = (unsigned long)pagesz;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(u, UFFDIO_REGISTER, &reg) < 0)
		_exit(77);
	fill(&cbs[0], fd, page, (size_t)pagesz, 0);
	STEP(21, aio_write(&cbs[0]) == 0);
	wait_running(1);
	/* And writes queued behind it on the same file. */
	for (int i = 1; i < 8; i++) {
		fill(&cbs[i], fd, chunk, CHUNK, (off_t)i * CHUNK);
		STEP(22, aio_write(&cbs[i]) == 0);
	}
}

int main(int argc, char **argv)
{
	const char *what;

	STEP(1, argc == 3);
	what = argv[1];
	fd = atoi(argv[2]);
	memset(chunk, 'e', sizeof chunk);
	if (!strcmp(what, "busy")) {
		busy();
		return 0;   /* from main: exit handling runs */
	}
	if (!strcmp(what, "busy_exit")) {
		busy();
		_exit(0);
	}
	if (!strcmp(what, "submitting") || !strcmp(what, "deep")) {
		if (!strcmp(what, "deep")) {
			depth = 64;
			STEP(32, fcntl(fd, F_SETFL, O_APPEND) == 0);
		}
		pthread_t t1, t2;
		STEP(30, pthread_create(&t1, NULL, posix_appender, NULL) == 0);
		STEP(31, pthread_create(&t2, NULL, libaio_appender, NULL) == 0);
		sleep_ms(100);
		exit(0);
	}
	if (!strcmp(what, "in_note")) {
		/* The one worker waits on a pipe until every write is queued. */
		static struct aiocb hold;
		static char c;
		int p[2];
		STEP(40, aiopool_set(AIOPOOL_MAX_THREADS, 1) == 0 && pipe(p) == 0);
		fill(&hold, p[0], &c, 1, 0);
		STEP(42, aio_read(&hold) == 0);
		wait_running(1);
		for (int i = 0; i < N; i++) {
			fill(&cbs[i], fd, chunk, CHUNK, (off_t)i * CHUNK);
			if (i == 0) {
				cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
				cbs[i].aio_sigevent.sigev_notify_function = in_note_exit;
			}
			STEP(41, aio_write(&cbs[i]) == 0);
		}
		STEP(43, write(p[1], "go", 1) == 1);
		for (;;)
			sleep_ms(1000);   /* the notification exits */
	}
	if (!strcmp(what, "stuck")) {
		lsan_off = 1;
		stuck_write();
		exit(0);
	}
	STEP(99, !"unknown scenario");
	return 99;
}
