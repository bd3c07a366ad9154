/* bench/aiobench.c: the benchmark binary behind `make bench` (bench/run.sh
 * drives it).  One run measures one engine on one workload for a fixed time
 * and prints RESULT lines: operations per second, mean and p99 latency from
 * submission to completion (CLOCK_MONOTONIC).
 *
 * Engines (-e):
 *   posix   <aio.h>: aio_read/aio_write/aio_fsync, aio_suspend then aio_error
 *           on the requests in flight.  glibc's AIO as linked, aiopool's
 *           POSIX front end under LD_PRELOAD=libaiopool.so.
 *   libaio  io_submit/io_getevents through libaio: kernel AIO as linked,
 *           aiopool's libaio front end under LD_PRELOAD.
 *   uring   io_uring through liburing (submit and wait in one call).
 *   psync   -t plain threads, each doing pread/pwrite/fsync in a loop.
 *
 * -t N: N threads; with at least N files given, each thread has its own
 * share of them (thread i of N the files i*F/N up to (i+1)*F/N), otherwise
 * every thread uses every file.  psync threads each do one request at a
 * time; with the read workload, each asynchronous engine's thread runs its
 * own queue of -q requests (its own io_context, ring, aiocb list).
 *
 * -c USEC: a fixed amount of CPU spent on every completion (a busy loop
 * calibrated at start-up, not a sleep), as a program does with its data.
 *
 * The binary is deliberately not linked with libaiopool: the same code runs
 * every engine, and -x aiopool / -x native checks that the preload did (or
 * did not) take the entry points, so a missing front end prints NA instead
 * of silently measuring the wrong thing.
 *
 * Workloads (-w): read (random -b reads over the files given), append
 * (sequential O_APPEND writes), mixed (random reads and writes, an fsync
 * after every 64th write), lio (batches of -q requests: lio_listio LIO_WAIT,
 * io_submit + io_getevents, one io_uring submit), sigthread and sigsignal
 * (completions notified by SIGEV_THREAD / SIGEV_SIGNAL, posix only), prio
 * (one aio_reqprio 0 request while -q aio_reqprio 20 requests flood the same
 * file, posix only), mem (-n requests parked on an empty pipe: resident
 * memory per queued request, posix only), sigbatch (batches of -q requests
 * notified by SIGEV_THREAD, each batch awaited until all its functions have
 * run, posix only), submit (the time spent inside the submit call itself:
 * rounds of -q requests, each submitted alone (aio_read, io_submit of one)
 * or, with -l, as one list (lio_listio LIO_NOWAIT, io_submit of -q), then
 * waited for; prints the p50 and p99 of the calls, posix and libaio only).
 */
#include "config.h"

#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

#define STALL_S      5            /* one wait; ten in a row is a hang */
#define APPEND_WRAP  (256L << 20) /* truncate the append file this often */
#define NOTIFY_SIG   (SIGRTMIN + 1)

enum { OP_READ, OP_WRITE, OP_FSYNC };
enum { W_READ, W_APPEND, W_MIXED, W_LIO, W_SUBMIT, W_SIGTHREAD, W_SIGBATCH,
       W_SIGSIGNAL, W_PRIO, W_MEM };
enum { PH_WARM, PH_MEASURE, PH_STOP };

static const char *const wl_names[] = {
	"read", "append", "mixed", "lio", "submit", "sigthread", "sigbatch",
	"sigsignal", "prio", "mem", NULL
};

/* ---- small helpers --------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("aiobench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* The run cannot be made here (no O_DIRECT, no io_uring...): say why on
 * stdout, which run.sh prints as n/a, and succeed. */
static void na(const char *why)
{
	printf("NA %s\n", why);
	exit(0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { ns / 1000000000u, ns % 1000000000u };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void *xalloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, 4096, n))
		die("out of memory");
	memset(p, 0, n);
	return p;
}

/* Latency histogram: 64 linear steps per power of two (1.6 % resolution). */
#define HSUB     64
#define HBUCKETS (HSUB * 59)

struct hist {
	uint64_t n, sum;
	uint64_t b[HBUCKETS];
};

static void hist_add(struct hist *h, uint64_t v)
{
	int i = (int)v;

	if (v >= HSUB) {
		int e = 63 - __builtin_clzll(v);

		i = (e - 5) * HSUB + (int)((v >> (e - 6)) & (HSUB - 1));
	}
	h->b[i]++;
	h->n++;
	h->sum += v;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	for (int i = 0; i < HBUCKETS; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	to->sum += from->sum;
}

static double hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)(p * (double)h->n + 0.999999), seen = 0;

	for (int i = 0; i < HBUCKETS; i++) {
		seen += h->b[i];
		if (seen < want || !h->b[i])
			continue;
		if (i < HSUB)
			return i;
		int e = i / HSUB + 5;
		uint64_t lo = (uint64_t)(HSUB + i % HSUB) << (e - 6);
		return (double)lo + (double)(1ull << (e - 6)) / 2;
	}
	return 0;
}

/* What one class of requests measured (prio has two classes). */
struct stat_cls {
	struct hist h;
	uint64_t ops;         /* requests completed in the window */
};

static struct stat_cls stats[2];
static const char *cls_names[] = { "all", "high" };

static void report(double secs)
{
	int ncls = stats[1].h.n ? 2 : 1;

	if (ncls == 2)
		cls_names[0] = "low";
	for (int c = 0; c < ncls; c++) {
		const struct hist *h = &stats[c].h;

		printf("RESULT cls=%s ops=%.0f mean_us=%.2f p50_us=%.2f "
		       "p99_us=%.2f n=%llu secs=%.3f\n", cls_names[c],
		       (double)stats[c].ops / secs,
		       h->n ? (double)h->sum / (double)h->n / 1e3 : 0,
		       hist_pct(h, 0.5) / 1e3, hist_pct(h, 0.99) / 1e3,
		       (unsigned long long)h->n, secs);
	}
}

/* ---- the workload ---------------------------------------------------- */

struct req {
	struct aiocb cb;      /* posix */
	struct iocb io;       /* libaio */
	int op, fd, cls, prio;
	void *buf;
	size_t len;
	off_t off;
	uint64_t t0;          /* submitted (ns) */
	uint64_t rng;
	long res;             /* bytes, or -errno */
};

static struct {
	int kind;
	int nfd;
	int fd[64];
	off_t nblocks;        /* bs-sized blocks in the smallest file */
	size_t bs;
	int qd, threads;
	double warm, secs;
	unsigned long long count;   /* -n: exactly this many, no time limit */
	double work_us;             /* -c: CPU spent per completion */
	double spins_per_us;        /* the busy loop's calibration */
	bool list;                  /* -l: submit as one list call */
	atomic_ulong writes;
	atomic_int fsync_due;
	atomic_long appended;
	pthread_rwlock_t wrap;      /* psync append: writes vs truncation */
} wl = { .bs = 4096, .qd = 1, .threads = 1, .warm = 1, .secs = 3,
	 .wrap = PTHREAD_RWLOCK_INITIALIZER };

static _Atomic int phase;

/* The files this thread draws from (-t with at least as many files as
 * threads); my_nfd 0: every file (the main thread, notification threads). */
static __thread int my_fd0, my_nfd;

static void take_files(int i, int n)
{
	if (n < 2 || wl.nfd < n)
		return;
	my_fd0 = i * wl.nfd / n;
	my_nfd = (i + 1) * wl.nfd / n - my_fd0;
}

static uint64_t rnd(struct req *r)
{
	uint64_t x = r->rng;   /* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static struct req *alloc_reqs(int n, size_t bs)
{
	struct req *v = xalloc(sizeof(*v) * (size_t)n);
	char *bufs = xalloc(bs * (size_t)n);

	memset(bufs, 'x', bs * (size_t)n);
	for (int i = 0; i < n; i++) {
		v[i].buf = bufs + (size_t)i * bs;
		v[i].rng = (now_ns() ^ (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1))) | 1;
	}
	return v;
}

/* n requests of bs bytes each, and an array of pointers to them, for the
 * engines' submit calls. */
static struct req **alloc_req_ptrs(int n, size_t bs)
{
	struct req *reqs = alloc_reqs(n, bs);
	struct req **v = xalloc(sizeof(*v) * (size_t)n);

	for (int i = 0; i < n; i++)
		v[i] = &reqs[i];
	return v;
}

/* The next request of the workload into r (keeps r's buffer, class and
 * priority).  Shared by every engine and thread. */
static void gen(struct req *r)
{
	r->len = wl.bs;
	int nfd = my_nfd ? my_nfd : wl.nfd;

	r->fd = wl.fd[my_fd0 + (nfd > 1 ? (int)(rnd(r) % (uint64_t)nfd) : 0)];
	r->off = (off_t)(rnd(r) % (uint64_t)wl.nblocks) * (off_t)wl.bs;
	r->op = OP_READ;
	if (wl.kind == W_APPEND) {
		r->op = OP_WRITE;
		r->off = 0;
	} else if (wl.kind == W_MIXED) {
		if (atomic_load(&wl.fsync_due) && atomic_exchange(&wl.fsync_due, 0)) {
			r->op = OP_FSYNC;
		} else if (rnd(r) & 1) {
			r->op = OP_WRITE;
			if (atomic_fetch_add(&wl.writes, 1) % 64 == 63)
				atomic_store(&wl.fsync_due, 1);
		}
	}
}

/* -c: spin n times; the empty asm keeps the loop from being folded. */
static void spin(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		__asm__ __volatile__("" ::: "memory");
}

/* Spins per microsecond: the fastest of several timed runs of at least
 * 2 ms (the fastest is the one nothing preempted). */
static void calibrate(void)
{
	uint64_t n = 1 << 16, best = UINT64_MAX;

	for (;;) {
		uint64_t t0 = now_ns();
		spin(n);
		if (now_ns() - t0 >= 2000000)
			break;
		n <<= 1;
	}
	for (int i = 0; i < 7; i++) {
		uint64_t t0 = now_ns();
		spin(n);
		uint64_t d = now_ns() - t0;
		if (d < best)
			best = d;
	}
	wl.spins_per_us = (double)n * 1e3 / (double)(best ? best : 1);
}

/* What the program does with one completed request (-c). */
static void work(void)
{
	if (wl.work_us > 0)
		spin((uint64_t)(wl.work_us * wl.spins_per_us));
}

static void check(const struct req *r)
{
	long want = r->op == OP_FSYNC ? 0 : (long)r->len;

	if (r->res < 0)
		die("request (op %d, fd %d, offset %lld) failed: %s", r->op,
		    r->fd, (long long)r->off, strerror((int)-r->res));
	if (r->res != want)
		die("request (op %d, offset %lld): %ld bytes, expected %ld",
		    r->op, (long long)r->off, r->res, want);
}

/* ---- engines --------------------------------------------------------- */

struct engine {
	const char *name;
	void (*setup)(int depth);
	void (*submit)(struct req **v, int n);
	int (*reap)(struct req **done, int max);   /* at least one */
	void (*batch)(struct req **v, int n);      /* optional: submit, wait all */
};

static void stalled(int *stalls)
{
	if (++*stalls >= 10)
		die("no completion for %d s: the engine hangs", 10 * STALL_S);
}

/* posix: the requests in flight, and the same as a list for aio_suspend. */
static __thread struct req **px_fl;
static __thread const struct aiocb **px_list;
static __thread struct aiocb **px_lio;
static __thread int px_n;

static void px_setup(int depth)
{
	px_fl = xalloc(sizeof(*px_fl) * (size_t)depth);
	px_list = xalloc(sizeof(*px_list) * (size_t)depth);
	px_lio = xalloc(sizeof(*px_lio) * (size_t)depth);
}

static void px_fill(struct req *r)
{
	struct aiocb *cb = &r->cb;

	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = r->fd;
	cb->aio_buf = r->buf;
	cb->aio_nbytes = r->len;
	cb->aio_offset = r->off;
	cb->aio_reqprio = r->prio;
	cb->aio_lio_opcode = r->op == OP_READ ? LIO_READ : LIO_WRITE;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

static void px_start(struct req *r)
{
	int rc;

	if (r->op == OP_READ)
		rc = aio_read(&r->cb);
	else if (r->op == OP_WRITE)
		rc = aio_write(&r->cb);
	else
		rc = aio_fsync(O_SYNC, &r->cb);
	if (rc)
		die("aio submission: %s", strerror(errno));
}

/* r is in flight: px_reap looks for it. */
static void px_track(struct req *r)
{
	px_fl[px_n] = r;
	px_list[px_n++] = &r->cb;
}

static void px_submit(struct req **v, int n)
{
	for (int i = 0; i < n; i++) {
		px_fill(v[i]);
		px_start(v[i]);
		px_track(v[i]);
	}
}

static void px_result(struct req *r, int err)
{
	ssize_t res = aio_return(&r->cb);

	r->res = err ? -err : (long)res;
}

static int px_reap(struct req **done, int max)
{
	int stalls = 0;

	for (;;) {
		int k = 0;

		for (int i = 0; i < px_n && k < max;) {
			struct req *r = px_fl[i];
			int err = aio_error(&r->cb);

			if (err == EINPROGRESS) {
				i++;
				continue;
			}
			px_result(r, err);
			done[k++] = r;
			px_n--;
			px_fl[i] = px_fl[px_n];
			px_list[i] = px_list[px_n];
		}
		if (k)
			return k;
		struct timespec ts = { STALL_S, 0 };
		if (aio_suspend(px_list, px_n, &ts) == 0 || errno == EINTR)
			continue;
		if (errno != EAGAIN)
			die("aio_suspend: %s", strerror(errno));
		stalled(&stalls);
	}
}

static void px_batch(struct req **v, int n)
{
	for (int i = 0; i < n; i++) {
		px_fill(v[i]);
		px_lio[i] = &v[i]->cb;
	}
	if (lio_listio(LIO_WAIT, px_lio, n, NULL) && errno != EIO)
		die("lio_listio: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		px_result(v[i], aio_error(&v[i]->cb));
}

/* libaio */
static __thread io_context_t la_ctx;

static void la_setup(int depth)
{
	int rc = io_setup(depth, &la_ctx);

	if (rc == -ENOSYS)
		na("kernel AIO not available (io_setup: ENOSYS)");
	if (rc)
		die("io_setup(%d): %s", depth, strerror(-rc));
}

static struct iocb *la_prep(struct req *r)
{
	if (r->op == OP_READ)
		io_prep_pread(&r->io, r->fd, r->buf, r->len, r->off);
	else if (r->op == OP_WRITE)
		io_prep_pwrite(&r->io, r->fd, r->buf, r->len, r->off);
	else
		io_prep_fsync(&r->io, r->fd);
	r->io.data = r;
	return &r->io;
}

static void la_submit(struct req **v, int n)
{
	struct iocb *l[n];
	int done = 0;

	for (int i = 0; i < n; i++)
		l[i] = la_prep(v[i]);
	while (done < n) {
		int rc = io_submit(la_ctx, n - done, l + done);

		if (rc <= 0 && rc != -EINTR)
			die("io_submit: %s", rc ? strerror(-rc) : "nothing taken");
		if (rc > 0)
			done += rc;
	}
}

static int la_reap(struct req **done, int max)
{
	struct io_event ev[max];
	int stalls = 0, rc;

	for (;;) {
		struct timespec ts = { STALL_S, 0 };

		rc = io_getevents(la_ctx, 1, max, ev, &ts);
		if (rc > 0)
			break;
		if (rc < 0 && rc != -EINTR)
			die("io_getevents: %s", strerror(-rc));
		if (rc == 0)
			stalled(&stalls);
	}
	for (int i = 0; i < rc; i++) {
		struct req *r = ev[i].data;

		r->res = (long)ev[i].res;
		done[i] = r;
	}
	return rc;
}

/* io_uring: submit only prepares entries, reap submits and waits at once. */
static __thread struct io_uring ur;

static void ur_setup(int depth)
{
	unsigned n = 1;
	int rc;

	while (n < (unsigned)depth)
		n <<= 1;
	rc = io_uring_queue_init(n, &ur, 0);
	if (rc == -ENOSYS || rc == -EPERM)
		na("io_uring not available");
	if (rc)
		die("io_uring_queue_init: %s", strerror(-rc));
}

static void ur_submit(struct req **v, int n)
{
	for (int i = 0; i < n; i++) {
		struct req *r = v[i];
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ur);

		if (!sqe) {
			io_uring_submit(&ur);
			sqe = io_uring_get_sqe(&ur);
		}
		if (r->op == OP_READ) {
			io_uring_prep_read(sqe, r->fd, r->buf, r->len, r->off);
		} else if (r->op == OP_WRITE) {
			io_uring_prep_write(sqe, r->fd, r->buf, r->len, r->off);
		} else {
			io_uring_prep_fsync(sqe, r->fd, 0);
			sqe->flags |= IOSQE_IO_DRAIN;   /* a barrier, as aio_fsync */
		}
		io_uring_sqe_set_data(sqe, r);
	}
}

static int ur_reap(struct req **done, int max)
{
	struct io_uring_cqe *cqe;
	unsigned head;
	int k = 0, stalls = 0, rc;

	for (;;) {
		struct __kernel_timespec ts = { STALL_S, 0 };

		rc = io_uring_submit_and_wait_timeout(&ur, &cqe, 1, &ts, NULL);
		if (rc >= 0)
			break;
		if (rc == -ETIME)
			stalled(&stalls);
		else if (rc != -EINTR)
			die("io_uring_submit_and_wait: %s", strerror(-rc));
	}
	io_uring_for_each_cqe(&ur, head, cqe) {
		struct req *r = io_uring_cqe_get_data(cqe);

		if (k == max)
			break;
		r->res = cqe->res;
		done[k++] = r;
	}
	io_uring_cq_advance(&ur, (unsigned)k);
	return k;
}

static const struct engine engines[] = {
	{ "posix", px_setup, px_submit, px_reap, px_batch },
	{ "libaio", la_setup, la_submit, la_reap, NULL },
	{ "uring", ur_setup, ur_submit, ur_reap, NULL },
	{ "psync", NULL, NULL, NULL, NULL },
};

/* ---- drivers --------------------------------------------------------- */

struct window {
	uint64_t start, warm_end, end;
};

static struct window window_open(void)
{
	struct window w;

	w.start = now_ns();
	w.warm_end = w.start + (uint64_t)(wl.warm * 1e9);
	w.end = w.warm_end + (uint64_t)(wl.secs * 1e9);
	return w;
}

static bool in_window(const struct window *w, uint64_t t)
{
	return wl.count || (t >= w->warm_end && t < w->end);
}

static double window_secs(const struct window *w, uint64_t last)
{
	return (double)((wl.count ? last : w->end) -
			(wl.count ? w->start : w->warm_end)) / 1e9;
}

/* An asynchronous engine at a queue depth of wl.qd (read, append, mixed,
 * prio), counted into st (two classes).  Completed requests are
 * resubmitted at once, in one call per wake-up. */
static double run_async(const struct engine *e, struct stat_cls *st)
{
	int depth = wl.qd + (wl.kind == W_PRIO);
	struct req *reqs = alloc_reqs(depth, wl.bs);
	struct req **idle = xalloc(sizeof(*idle) * (size_t)depth);
	struct req **batch = xalloc(sizeof(*batch) * (size_t)depth);
	struct req **done = xalloc(sizeof(*done) * (size_t)depth);
	int nidle = 0, inflight = 0;
	unsigned long long submitted = 0;
	bool stopping = false;

	for (int i = depth - 1; i >= 0; i--) {
		if (wl.kind == W_PRIO) {
			reqs[i].cls = i == 0;
			reqs[i].prio = i == 0 ? 0 : AIO_PRIO_DELTA_MAX;
		}
		idle[nidle++] = &reqs[i];
	}
	e->setup(depth);
	struct window w = window_open();
	uint64_t t = w.start;
	for (;;) {
		int nb = 0;

		while (!stopping && nidle &&
		       (!wl.count || submitted < wl.count)) {
			if (wl.kind == W_APPEND && wl.appended >= APPEND_WRAP) {
				if (inflight + nb)
					break;   /* drain, then start over */
				if (ftruncate(wl.fd[0], 0))
					die("ftruncate: %s", strerror(errno));
				wl.appended = 0;
			}
			struct req *r = idle[--nidle];
			gen(r);
			r->t0 = t;
			batch[nb++] = r;
			submitted++;
			if (wl.kind == W_APPEND)
				wl.appended += (long)r->len;
		}
		if (nb)
			e->submit(batch, nb);
		inflight += nb;
		if (!inflight)
			break;
		int k = e->reap(done, inflight);
		t = now_ns();
		for (int i = 0; i < k; i++) {
			struct req *r = done[i];

			check(r);
			work();
			if (in_window(&w, t)) {
				hist_add(&st[r->cls].h, t - r->t0);
				st[r->cls].ops++;
			}
			idle[nidle++] = r;
		}
		inflight -= k;
		if (!wl.count && t >= w.end)
			stopping = true;
	}
	return window_secs(&w, t);
}

/* Reaps exactly n completions into done. */
static void reap_all(const struct engine *e, struct req **done, int n)
{
	for (int got = 0; got < n;)
		got += e->reap(done + got, n - got);
}

/* Batches of wl.qd requests, each submitted at once and waited for as a
 * whole; the latency is the batch's. */
static double run_lio(const struct engine *e)
{
	int n = wl.qd;
	struct req **v = alloc_req_ptrs(n, wl.bs);
	struct req **done = xalloc(sizeof(*done) * (size_t)n);
	unsigned long long batches = 0;
	uint64_t t;

	e->setup(n);
	struct window w = window_open();
	do {
		for (int i = 0; i < n; i++)
			gen(v[i]);
		uint64_t t0 = now_ns();
		if (e->batch) {
			e->batch(v, n);
		} else {
			e->submit(v, n);
			reap_all(e, done, n);
		}
		t = now_ns();
		for (int i = 0; i < n; i++) {
			check(v[i]);
			work();
		}
		if (in_window(&w, t)) {
			hist_add(&stats[0].h, t - t0);
			stats[0].ops += (uint64_t)n;
		}
		batches++;
	} while (wl.count ? batches * (unsigned)n < wl.count : t < w.end);
	return window_secs(&w, t);
}

/* submit: the time inside each submit call alone (the requests are
 * prepared before, reaped after), recorded when the call starts after the
 * warm-up. */
#define SUBMIT_MIN_CALLS 10   /* the run goes on until it has as many */

static void call_timed(const struct window *w, uint64_t t0)
{
	uint64_t t1 = now_ns();

	if (wl.count || t0 >= w->warm_end)
		hist_add(&stats[0].h, t1 - t0);
}

static void px_submit_timed(struct req **v, int n, const struct window *w)
{
	for (int i = 0; i < n; i++) {
		px_fill(v[i]);
		px_lio[i] = &v[i]->cb;
	}
	if (wl.list) {
		uint64_t t0 = now_ns();
		int rc = lio_listio(LIO_NOWAIT, px_lio, n, NULL);
		call_timed(w, t0);
		if (rc)
			die("lio_listio(LIO_NOWAIT): %s", strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		if (!wl.list) {
			uint64_t t0 = now_ns();
			int rc = aio_read(&v[i]->cb);
			call_timed(w, t0);
			if (rc)
				die("aio_read: %s", strerror(errno));
		}
		px_track(v[i]);
	}
}

static void la_submit_timed(struct req **v, int n, const struct window *w)
{
	struct iocb *l[n];
	int done = 0;

	for (int i = 0; i < n; i++)
		l[i] = la_prep(v[i]);
	while (done < n) {
		uint64_t t0 = now_ns();
		int rc = io_submit(la_ctx, wl.list ? n - done : 1, l + done);
		call_timed(w, t0);
		if (rc <= 0 && rc != -EINTR)
			die("io_submit: %s", rc ? strerror(-rc) : "nothing taken");
		if (rc > 0)
			done += rc;
	}
}

/* Rounds of wl.qd reads: submitted (timed), then all reaped (not).  A
 * round can outlast the window (lists of large reads), so the run goes on
 * until SUBMIT_MIN_CALLS calls are timed. */
static double run_submit(const struct engine *e)
{
	int n = wl.qd;
	bool posix = !strcmp(e->name, "posix");
	struct req **v = alloc_req_ptrs(n, wl.bs);
	struct req **done = xalloc(sizeof(*done) * (size_t)n);
	unsigned long long rounds = 0;
	uint64_t t;

	e->setup(n);
	struct window w = window_open();
	do {
		for (int i = 0; i < n; i++)
			gen(v[i]);
		if (posix)
			px_submit_timed(v, n, &w);
		else
			la_submit_timed(v, n, &w);
		reap_all(e, done, n);
		t = now_ns();
		for (int i = 0; i < n; i++) {
			check(done[i]);
			work();
		}
		if (in_window(&w, t))
			stats[0].ops += (uint64_t)n;
		rounds++;
	} while (wl.count ? rounds * (unsigned)n < wl.count :
		 t < w.end || stats[0].h.n < SUBMIT_MIN_CALLS);
	return window_secs(&w, t);
}

/* -t threads of run_async, each on its own share of the files; their
 * figures merged into stats. */
struct athread {
	pthread_t tid;
	const struct engine *e;
	int idx;
	struct stat_cls st[2];
	double secs;
};

static void *async_thread(void *arg)
{
	struct athread *a = arg;

	take_files(a->idx, wl.threads);
	a->secs = run_async(a->e, a->st);
	return NULL;
}

static double run_async_threads(const struct engine *e)
{
	int n = wl.threads;
	struct athread *a = xalloc(sizeof(*a) * (size_t)n);
	double secs = 0;

	for (int i = 0; i < n; i++) {
		a[i].e = e;
		a[i].idx = i;
		if (pthread_create(&a[i].tid, NULL, async_thread, &a[i]))
			die("pthread_create failed");
	}
	for (int i = 0; i < n; i++) {
		pthread_join(a[i].tid, NULL);
		for (int c = 0; c < 2; c++) {
			hist_merge(&stats[c].h, &a[i].st[c].h);
			stats[c].ops += a[i].st[c].ops;
		}
		if (a[i].secs > secs)
			secs = a[i].secs;
	}
	free(a);
	return secs;
}

/* psync: wl.threads threads, each one request (or one lio batch) at a time. */
static atomic_llong ps_left;
static struct stat_cls *ps_stats;   /* one per thread */

static void ps_one(struct req *r)
{
	ssize_t n;

	if (r->op == OP_READ) {
		n = pread(r->fd, r->buf, r->len, r->off);
	} else if (r->op == OP_FSYNC) {
		n = fsync(r->fd);
	} else if (wl.kind != W_APPEND) {
		n = pwrite(r->fd, r->buf, r->len, r->off);
	} else {
		pthread_rwlock_rdlock(&wl.wrap);
		n = write(r->fd, r->buf, r->len);
		pthread_rwlock_unlock(&wl.wrap);
		if (atomic_fetch_add(&wl.appended, (long)r->len) >= APPEND_WRAP) {
			pthread_rwlock_wrlock(&wl.wrap);
			if (wl.appended >= APPEND_WRAP) {
				if (ftruncate(r->fd, 0))
					die("ftruncate: %s", strerror(errno));
				wl.appended = 0;
			}
			pthread_rwlock_unlock(&wl.wrap);
		}
	}
	r->res = n < 0 ? -errno : (long)n;
	check(r);
}

static void *ps_thread(void *arg)
{
	struct stat_cls *st = arg;
	struct req *r = alloc_reqs(1, wl.bs);
	int nb = wl.kind == W_LIO ? wl.qd : 1;

	take_files((int)(st - ps_stats), wl.threads);

	while (atomic_load(&phase) != PH_STOP) {
		if (wl.count && atomic_fetch_sub(&ps_left, nb) <= 0)
			break;
		uint64_t t0 = now_ns();
		for (int i = 0; i < nb; i++) {
			gen(r);
			ps_one(r);
			work();
		}
		uint64_t t1 = now_ns();
		if (wl.count || atomic_load(&phase) == PH_MEASURE) {
			hist_add(&st->h, t1 - t0);
			st->ops += (uint64_t)nb;
		}
	}
	free(r->buf);
	free(r);
	return NULL;
}

static double run_psync(void)
{
	int n = wl.threads;
	pthread_t tid[n];
	struct stat_cls *st = xalloc(sizeof(*st) * (size_t)n);
	uint64_t t0, t1;

	ps_stats = st;
	atomic_store(&ps_left, (long long)wl.count);
	atomic_store(&phase, wl.count ? PH_MEASURE : PH_WARM);
	t0 = now_ns();
	for (int i = 0; i < n; i++)
		if (pthread_create(&tid[i], NULL, ps_thread, &st[i]))
			die("pthread_create failed");
	if (!wl.count) {
		sleep_ns((uint64_t)(wl.warm * 1e9));
		t0 = now_ns();
		atomic_store(&phase, PH_MEASURE);
		sleep_ns((uint64_t)(wl.secs * 1e9));
		atomic_store(&phase, PH_STOP);
	}
	t1 = now_ns();
	for (int i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		hist_merge(&stats[0].h, &st[i].h);
		stats[0].ops += st[i].ops;
	}
	if (wl.count)
		t1 = now_ns();
	return (double)(t1 - t0) / 1e9;
}

/* sigthread: each completion runs a SIGEV_THREAD function that records it
 * and resubmits the request from there. */
static pthread_mutex_t sh_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int sh_inflight;

static void sh_start(struct req *r);

static void sh_done(union sigval sv)
{
	struct req *r = sv.sival_ptr;
	uint64_t t = now_ns();

	px_result(r, aio_error(&r->cb));
	check(r);
	work();
	if (atomic_load(&phase) == PH_MEASURE) {
		pthread_mutex_lock(&sh_lock);
		hist_add(&stats[0].h, t - r->t0);
		stats[0].ops++;
		pthread_mutex_unlock(&sh_lock);
	}
	if (atomic_load(&phase) == PH_STOP)
		atomic_fetch_sub(&sh_inflight, 1);
	else
		sh_start(r);
}

static void sh_start(struct req *r)
{
	gen(r);
	px_fill(r);
	if (wl.kind == W_SIGTHREAD) {
		r->cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		r->cb.aio_sigevent.sigev_notify_function = sh_done;
	} else {
		r->cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
		r->cb.aio_sigevent.sigev_signo = NOTIFY_SIG;
	}
	r->cb.aio_sigevent.sigev_value.sival_ptr = r;
	r->t0 = now_ns();
	px_start(r);
}

static double run_notify(void)
{
	struct req *reqs = alloc_reqs(wl.qd, wl.bs);
	uint64_t t0, t1, deadline;
	sigset_t set;
	int stalls = 0;

	sigemptyset(&set);
	sigaddset(&set, NOTIFY_SIG);
	atomic_store(&phase, PH_WARM);
	atomic_store(&sh_inflight, wl.qd);
	for (int i = 0; i < wl.qd; i++)
		sh_start(&reqs[i]);
	t0 = now_ns() + (uint64_t)(wl.warm * 1e9);
	t1 = t0 + (uint64_t)(wl.secs * 1e9);
	if (wl.kind == W_SIGTHREAD) {
		sleep_ns(t0 - now_ns());
		atomic_store(&phase, PH_MEASURE);
		sleep_ns(t1 - now_ns());
		atomic_store(&phase, PH_STOP);
	} else {
		/* sigsignal: this thread takes the signals (blocked in all
		 * threads since main) and resubmits. */
		while (atomic_load(&sh_inflight)) {
			struct timespec ts = { STALL_S, 0 };
			siginfo_t si;
			uint64_t t;

			if (sigtimedwait(&set, &si, &ts) < 0) {
				if (errno == EAGAIN)
					stalled(&stalls);
				else if (errno != EINTR)
					die("sigtimedwait: %s", strerror(errno));
				continue;
			}
			struct req *r = si.si_value.sival_ptr;
			t = now_ns();
			atomic_store(&phase, t < t0 ? PH_WARM :
				     t < t1 ? PH_MEASURE : PH_STOP);
			px_result(r, aio_error(&r->cb));
			check(r);
			work();
			if (atomic_load(&phase) == PH_MEASURE) {
				hist_add(&stats[0].h, t - r->t0);
				stats[0].ops++;
			}
			if (atomic_load(&phase) == PH_STOP)
				atomic_fetch_sub(&sh_inflight, 1);
			else
				sh_start(r);
		}
	}
	deadline = now_ns() + 10 * STALL_S * 1000000000ull;
	while (atomic_load(&sh_inflight)) {
		if (now_ns() > deadline)
			die("%d notifications missing", atomic_load(&sh_inflight));
		sleep_ns(1000000);
	}
	return (double)(t1 - t0) / 1e9;
}

/* sigbatch: batches of wl.qd reads, each notified by SIGEV_THREAD; the
 * batch is over when every one of its functions has run (the last one
 * posts sb_sem).  The latency is the batch's. */
static sem_t sb_sem;
static atomic_int sb_left;

static void sb_done(union sigval sv)
{
	struct req *r = sv.sival_ptr;

	px_result(r, aio_error(&r->cb));
	check(r);
	work();
	if (atomic_fetch_sub(&sb_left, 1) == 1)
		sem_post(&sb_sem);
}

static void sb_wait(void)
{
	int stalls = 0;

	for (;;) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += STALL_S;
		if (sem_timedwait(&sb_sem, &ts) == 0)
			return;
		if (errno == ETIMEDOUT)
			stalled(&stalls);
		else if (errno != EINTR)
			die("sem_timedwait: %s", strerror(errno));
	}
}

static double run_sigbatch(void)
{
	int n = wl.qd;
	struct req *reqs = alloc_reqs(n, wl.bs);
	unsigned long long batches = 0;
	uint64_t t;

	sem_init(&sb_sem, 0, 0);
	struct window w = window_open();
	do {
		uint64_t t0 = now_ns();

		atomic_store(&sb_left, n);
		for (int i = 0; i < n; i++) {
			struct req *r = &reqs[i];

			gen(r);
			px_fill(r);
			r->cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
			r->cb.aio_sigevent.sigev_notify_function = sb_done;
			r->cb.aio_sigevent.sigev_value.sival_ptr = r;
			px_start(r);
		}
		sb_wait();
		t = now_ns();
		if (in_window(&w, t)) {
			hist_add(&stats[0].h, t - t0);
			stats[0].ops += (uint64_t)n;
		}
		batches++;
	} while (wl.count ? batches * (unsigned)n < wl.count : t < w.end);
	return window_secs(&w, t);
}

/* mem: park wl.count one-byte reads on an empty pipe (they stay queued
 * behind the one that blocks), and read the resident set size before and
 * after; then feed the pipe and check every one completes. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void run_mem(void)
{
	long n = wl.count ? (long)wl.count : 100000, first = n / 100;
	struct aiocb *cb = xalloc(sizeof(*cb) * (size_t)n);
	char *bytes = xalloc((size_t)n), feed[4096];
	int p[2], stalls = 0;
	long rss0, rss1, fed = 0;
	uint64_t t0, t1, t2;

	if (pipe(p))
		die("pipe: %s", strerror(errno));
	for (long i = 0; i < n; i++) {
		cb[i].aio_fildes = p[0];
		cb[i].aio_buf = bytes + i;
		cb[i].aio_nbytes = 1;
		cb[i].aio_sigevent.sigev_notify = SIGEV_NONE;
	}
	/* The first hundredth starts the engine (threads, caches), so that
	 * the difference is the cost of queued requests alone. */
	for (long i = 0; i < first; i++)
		if (aio_read(&cb[i]))
			die("aio_read %ld: %s", i, strerror(errno));
	sleep_ns(200000000);
	rss0 = rss_kib();
	t0 = now_ns();
	for (long i = first; i < n; i++)
		if (aio_read(&cb[i]))
			die("aio_read %ld of %ld: %s", i, n, strerror(errno));
	t1 = now_ns();
	rss1 = rss_kib();
	memset(feed, 'm', sizeof(feed));
	while (fed < n) {
		ssize_t w = write(p[1], feed, (size_t)(n - fed) < sizeof(feed) ?
				  (size_t)(n - fed) : sizeof(feed));
		if (w < 0)
			die("write to pipe: %s", strerror(errno));
		fed += w;
	}
	for (long i = 0; i < n; i++) {
		const struct aiocb *l[1] = { &cb[i] };
		struct timespec ts = { STALL_S, 0 };

		while (aio_error(&cb[i]) == EINPROGRESS)
			if (aio_suspend(l, 1, &ts) && errno == EAGAIN)
				stalled(&stalls);
		if (aio_return(&cb[i]) != 1)
			die("request %ld of %ld did not read its byte", i, n);
	}
	t2 = now_ns();
	printf("RESULT cls=mem requests=%ld bytes_per_req=%.0f rss_before_kib=%ld "
	       "rss_after_kib=%ld submit_ns_per_req=%.0f drain_ms=%.1f\n", n,
	       (double)(rss1 - rss0) * 1024 / (double)(n - first), rss0, rss1,
	       (double)(t1 - t0) / (double)(n - first), (double)(t2 - t1) / 1e6);

	/* Idle workers must go away after the idle time (aiopool only). */
	long (*get)(int) = (long (*)(int))dlsym(RTLD_DEFAULT, "aiopool_get");
	int (*st)(struct aiopool_stats *, unsigned long) =
		(int (*)(struct aiopool_stats *, unsigned long))
		dlsym(RTLD_DEFAULT, "aiopool_stats");
	if (get && st) {
		struct aiopool_stats s;
		long idle = get(AIOPOOL_IDLE_MS);

		if (idle > 0)
			sleep_ns((uint64_t)(idle + 500) * 1000000u);
		st(&s, sizeof(s));
		printf("RESULT cls=idle idle_ms=%ld threads_after_idle=%lu\n",
		       idle, s.threads);
	}
}

/* ---- main ------------------------------------------------------------ */

/* Whether the name the binary binds (at the version it was linked
 * against) comes from the library that defines aiopool_stats. */
static bool from_aiopool(const char *name, const char *version)
{
	void *mine = dlsym(RTLD_DEFAULT, "aiopool_stats");
	void *fn = dlvsym(RTLD_DEFAULT, name, version);
	Dl_info a, b;

	if (!fn)
		fn = dlsym(RTLD_DEFAULT, name);
	if (!mine || !fn || !dladdr(mine, &a) || !dladdr(fn, &b))
		return false;
	return a.dli_fbase == b.dli_fbase;
}

static void aiopool_note(void)
{
	int (*st)(struct aiopool_stats *, unsigned long) =
		(int (*)(struct aiopool_stats *, unsigned long))
		dlsym(RTLD_DEFAULT, "aiopool_stats");
	struct aiopool_stats s;

	if (st && st(&s, sizeof(s)) == 0)
		printf("AIOPOOL completed=%llu fastpath=%llu threads_created=%llu\n",
		       s.completed, s.fastpath, s.threads_created);
}

static void usage(void)
{
	fputs("usage: aiobench -e posix|libaio|uring|psync -w WORKLOAD [-q depth]\n"
	      "         [-t threads] [-b bytes] [-d secs] [-W warmup-secs]\n"
	      "         [-n count] [-c work-usecs] [-l] [-D] [-x aiopool|native] FILE...\n"
	      "       aiobench -P          (prints which front ends aiopool provides)\n"
	      "WORKLOAD: read append mixed lio submit sigthread sigbatch sigsignal\n"
	      "          prio mem\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	const struct engine *e = NULL;
	const char *expect = NULL;
	bool direct = false;
	sigset_t set;
	double secs;
	int c;

	/* Notification signals are taken with sigtimedwait only. */
	sigemptyset(&set);
	sigaddset(&set, NOTIFY_SIG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	wl.kind = -1;
	while ((c = getopt(argc, argv, "e:w:q:t:b:d:W:n:c:lDx:P")) != -1) {
		switch (c) {
		case 'e':
			for (size_t i = 0; i < sizeof(engines) / sizeof(*engines); i++)
				if (!strcmp(optarg, engines[i].name))
					e = &engines[i];
			break;
		case 'w':
			for (int i = 0; wl_names[i]; i++)
				if (!strcmp(optarg, wl_names[i]))
					wl.kind = i;
			break;
		case 'q': wl.qd = atoi(optarg); break;
		case 't': wl.threads = atoi(optarg); break;
		case 'b': wl.bs = strtoul(optarg, NULL, 0); break;
		case 'd': wl.secs = atof(optarg); break;
		case 'W': wl.warm = atof(optarg); break;
		case 'n': wl.count = strtoull(optarg, NULL, 0); break;
		case 'c': wl.work_us = atof(optarg); break;
		case 'l': wl.list = true; break;
		case 'D': direct = true; break;
		case 'x': expect = optarg; break;
		case 'P':
			printf("posix=%d libaio=%d\n",
			       from_aiopool("aio_read", "GLIBC_2.34"),
			       from_aiopool("io_setup", "LIBAIO_0.4"));
			return 0;
		default: usage();
		}
	}
	if (!e || wl.kind < 0 || wl.qd < 1 || wl.threads < 1 || wl.bs < 1 ||
	    wl.secs <= 0 || wl.warm < 0 || wl.work_us < 0)
		usage();
	bool async = strcmp(e->name, "psync") != 0;
	if (wl.threads > 1 && async && wl.kind != W_READ)
		die("-t %d with -e %s: only the read workload runs threads",
		    wl.threads, e->name);
	if (wl.kind == W_SUBMIT && strcmp(e->name, "posix") &&
	    strcmp(e->name, "libaio"))
		na("a submit-call workload (posix and libaio)");
	if (wl.kind >= W_SIGTHREAD && strcmp(e->name, "posix"))
		na("a POSIX AIO workload");
	if (expect) {
		bool mine = !strcmp(e->name, "libaio") ?
			from_aiopool("io_setup", "LIBAIO_0.4") :
			from_aiopool("aio_read", "GLIBC_2.34");

		if (!strcmp(expect, "aiopool") && !mine)
			na(strcmp(e->name, "libaio") ? "aiopool not preloaded" :
			   "aiopool has no libaio front end yet");
		if (!strcmp(expect, "native") && mine)
			die("aiopool is preloaded, expected the system's %s",
			    e->name);
	}
	if (wl.kind == W_MEM) {
		run_mem();
		return 0;
	}

	if (optind == argc || argc - optind > 64)
		usage();
	wl.nfd = argc - optind;
	wl.nblocks = -1;
	for (int i = 0; i < wl.nfd; i++) {
		int flags = wl.kind == W_APPEND ? O_WRONLY | O_APPEND | O_CREAT :
			    wl.kind == W_MIXED ? O_RDWR : O_RDONLY;
		struct stat sb;

		if (direct)
			flags |= O_DIRECT;
		wl.fd[i] = open(argv[optind + i], flags, 0644);
		if (wl.fd[i] < 0 && direct && errno == EINVAL)
			na("O_DIRECT not supported by this filesystem");
		if (wl.fd[i] < 0 || fstat(wl.fd[i], &sb))
			die("%s: %s", argv[optind + i], strerror(errno));
		if (wl.kind != W_APPEND &&
		    (wl.nblocks < 0 || sb.st_size / (off_t)wl.bs < wl.nblocks))
			wl.nblocks = sb.st_size / (off_t)wl.bs;
	}
	if (wl.kind == W_APPEND) {
		wl.nblocks = 1;
		if (ftruncate(wl.fd[0], 0))
			die("ftruncate: %s", strerror(errno));
	}
	if (wl.nblocks < 1)
		die("%s: smaller than one block", argv[optind]);
	if (direct) {
		void *b = xalloc(wl.bs);
		if (pread(wl.fd[0], b, wl.bs, 0) < 0)
			na("O_DIRECT reads fail on this filesystem");
		free(b);
	}

	if (wl.work_us > 0)
		calibrate();
	if (!async)
		secs = run_psync();
	else if (wl.kind == W_LIO)
		secs = run_lio(e);
	else if (wl.kind == W_SUBMIT)
		secs = run_submit(e);
	else if (wl.kind == W_SIGBATCH)
		secs = run_sigbatch();
	else if (wl.kind == W_SIGTHREAD || wl.kind == W_SIGSIGNAL)
		secs = run_notify();
	else if (wl.threads > 1)
		secs = run_async_threads(e);
	else
		secs = run_async(e, stats);
	report(secs);
	aiopool_note();
	return 0;
}
