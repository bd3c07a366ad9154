/* fault_malloc: memory allocation failing.  This program defines malloc,
 * calloc, realloc, posix_memalign and their kin over glibc's __libc_*
 * functions; the library's allocations bind to them (the executable comes
 * first in symbol lookup), and so do the C library's own, such as the
 * thread descriptors pthread_create allocates.  Armed on the test's thread
 * only, they fail the k-th allocation (or every one from the k-th on), for
 * k = 0, 1, 2, ... until a call makes fewer than k allocations: every
 * allocation each call makes fails once.
 *
 * Documented outcomes: aio_read/aio_write/aio_fsync -1 with EAGAIN, and the
 * aiocb reports EAGAIN (aio_read(3)); lio_listio -1 with EAGAIN, entries
 * refused with EAGAIN or, when the list itself could not be allocated,
 * untouched (lio_listio(3)); io_setup -ENOMEM (io_setup(3)); io_submit
 * -EAGAIN for the first iocb or the count of those accepted (io_submit(3)).
 * Whatever is accepted completes with the right result, notifications
 * included, and nothing crashes; the engine's counts agree at the end.
 *
 * Under a sanitizer the wrappers would sit below its allocator: the tests
 * skip. */
#include "libaio_common.h"

#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || \
    defined(AIOPOOL_TEST_SANITIZED)
#define WRAPPED 0
#else
#define WRAPPED 1
#endif

enum { FAIL_ONE, FAIL_ALL };

/* volatile: the compiler takes the allocation functions for builtins that
 * touch no program state, and would move these across the calls under
 * test (the suite is also built with -fno-builtin). */
static __thread volatile long fail_in = -1;   /* allocations to let through; -1 off */
static __thread volatile int fail_mode;
static __thread volatile long nalloc;         /* allocations seen while armed */
static __thread volatile long ninjected;      /* failures injected while armed */

#if WRAPPED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static bool fail_now(void)
{
	if (fail_in < 0)
		return false;
	nalloc++;
	if (fail_in > 0) {
		fail_in--;
		return false;
	}
	if (fail_mode == FAIL_ONE)
		fail_in = -1;
	ninjected++;
	errno = ENOMEM;
	return true;
}

void *malloc(size_t n)
{
	return fail_now() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

void *memalign(size_t align, size_t n)
{
	return fail_now() ? NULL : __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	if (fail_now())
		return ENOMEM;
	if (!(p = __libc_memalign(align, n)))
		return ENOMEM;
	*out = p;
	return 0;
}
#endif

/* From now on, on this thread, the k-th allocation fails (and with
 * FAIL_ALL every one after it). */
static void arm(long k, int mode)
{
	nalloc = 0;
	ninjected = 0;
	fail_mode = mode;
	fail_in = k;
}

/* Disarms; true if a failure was injected since arm(). */
static bool disarm(void)
{
	fail_in = -1;
	return ninjected > 0;
}

static void need_wrappers(void)
{
	if (!WRAPPED)
		cr_skip_test("malloc wrappers are not used under a sanitizer");
	/* They must be the ones the library binds to. */
	void *(*volatile alloc)(size_t) = malloc;   /* not optimised away */
	arm(0, FAIL_ONE);
	void *p = alloc(16);
	disarm();
	free(p);
	cr_assert_null(p, "the test's malloc wrapper is not in effect");
}

/* Requests are allocated each time (no cache), and each submission must
 * start a thread (workers exit when idle): so the sweep reaches the
 * request, the fd's queue and pthread_create's own allocations. */
static void hostile_knobs(void)
{
	cr_assert_eq(aiopool_set(AIOPOOL_CACHE, 0), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, -1), 0);
}

/* Every accepted request ended; the counts agree. */
static void engine_consistent(void)
{
	wait_stats(S.queued == 0 && S.running == 0 &&
	           S.submitted == S.completed + S.cancelled,
	           "requests accepted but not finished");
}

#define SWEEP_MAX 200

/* ---- the POSIX front end ------------------------------------------------- */

static int notes;

static void note(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&notes, 1, __ATOMIC_SEQ_CST);
}

static void posix_sweep(int mode, int op)
{
	int fd = temp_file(65536, 0), refused = 0, accepted = 0;
	unsigned char buf[4096];
	long k;

	need_wrappers();
	hostile_knobs();
	for (k = 0; k < SWEEP_MAX; k++) {
		struct aiocb cb;
		off_t off = (k % 16) * 4096;
		int rc, want = __atomic_load_n(&notes, __ATOMIC_SEQ_CST);
		bool injected;

		/* A new fd number now and then: its queue and the fd table
		 * are allocated again. */
		int use = k % 3 == 0 ? dup(fd) : fd;
		cr_assert_geq(use, 0);
		fill_cb(&cb, use, buf, sizeof buf, off);
		if (k % 2) {
			cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
			cb.aio_sigevent.sigev_notify_function = note;
		}
		memset(buf, 0, sizeof buf);
		if (op == 1)
			memset(buf, 'w', sizeof buf);
		arm(k, mode);
		rc = op == 0 ? aio_read(&cb) : op == 1 ? aio_write(&cb) : aio_fsync(O_SYNC, &cb);
		int err = errno;
		injected = disarm();
		if (rc != 0) {
			cr_assert(injected, "refused without an injected failure: %s", strerror(err));
			cr_assert_eq(err, EAGAIN, "k=%ld: %s, not EAGAIN", k, strerror(err));
			cr_assert_eq(aio_error(&cb), EAGAIN, "the aiocb reports EAGAIN too");
			cr_assert_eq(aio_return(&cb), -1);
			refused++;
		} else {
			accepted++;
			cr_assert_eq(wait_aio(&cb), 0, "k=%ld", k);
			if (op == 2) {
				cr_assert_eq(aio_return(&cb), 0);
			} else {
				cr_assert_eq(aio_return(&cb), (ssize_t)sizeof buf);
				if (op == 0)
					cr_assert_eq(buf[100], pattern(off + 100), "k=%ld: wrong bytes", k);
			}
			if (k % 2)
				wait_until(__atomic_load_n(&notes, __ATOMIC_SEQ_CST) == want + 1,
				           "k=%ld: the SIGEV_THREAD notification did not run once", k);
		}
		if (use != fd)
			close(use);
		if (!injected && k > 8)
			break;   /* the call made fewer than k allocations: done */
	}
	cr_assert_lt(k, SWEEP_MAX, "the sweep never ended");
	cr_assert_gt(refused, 0, "no failure led to EAGAIN");
	cr_assert_gt(accepted, 0);
	cr_log_info("%d refused, %d accepted over %ld allocation points", refused, accepted, k);
	engine_consistent();
	close(fd);
}

Test(fault_malloc, aio_read_one_failure)
{
	posix_sweep(FAIL_ONE, 0);
}

Test(fault_malloc, aio_read_every_allocation_from_k)
{
	posix_sweep(FAIL_ALL, 0);
}

Test(fault_malloc, aio_write_one_failure)
{
	posix_sweep(FAIL_ONE, 1);
}

Test(fault_malloc, aio_fsync_every_allocation_from_k)
{
	posix_sweep(FAIL_ALL, 2);
}

static void lio_sweep(int mode, int lmode)
{
	enum { N = 4 };
	int fd = temp_file(65536, 0), refused = 0, untouched = 0;
	unsigned char bufs[N][256];
	long k;

	need_wrappers();
	hostile_knobs();
	for (k = 0; k < SWEEP_MAX; k++) {
		struct aiocb cbs[N], *list[N];
		struct sigevent sev;
		int rc, err, before = __atomic_load_n(&notes, __ATOMIC_SEQ_CST);
		bool injected, none_touched = true;

		for (int i = 0; i < N; i++) {
			fill_cb(&cbs[i], fd, bufs[i], sizeof bufs[i], (off_t)(i * 1000 + k));
			cbs[i].aio_lio_opcode = LIO_READ;
			list[i] = &cbs[i];
		}
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_THREAD;
		sev.sigev_notify_function = note;
		arm(k, mode);
		rc = lio_listio(lmode, list, N, lmode == LIO_NOWAIT ? &sev : NULL);
		err = errno;
		injected = disarm();
		if (rc != 0) {
			cr_assert(injected, "failed without an injected failure: %s", strerror(err));
			cr_assert_eq(err, EAGAIN, "k=%ld: %s, not EAGAIN", k, strerror(err));
		}
		for (int i = 0; i < N; i++) {
			int e = aio_error(&cbs[i]);
			if (lmode == LIO_WAIT)
				cr_assert_neq(e, EINPROGRESS, "LIO_WAIT returned with entry %d in progress", i);
			if (e == EINVAL) {   /* never submitted */
				cr_assert_neq(rc, 0);
				continue;
			}
			none_touched = false;
			if (e == EAGAIN) {
				cr_assert_neq(rc, 0, "an entry refused, and lio_listio returned 0");
				refused++;
				continue;
			}
			cr_assert_eq(wait_aio(&cbs[i]), 0, "k=%ld entry %d", k, i);
			cr_assert_eq(aio_return(&cbs[i]), (ssize_t)sizeof bufs[i]);
			cr_assert_eq(bufs[i][5], pattern(i * 1000 + k + 5));
		}
		if (rc != 0 && none_touched)
			untouched++;
		if (lmode == LIO_NOWAIT) {
			/* The list's notification: once, unless the list itself
			 * could not be allocated (then nothing was submitted). */
			int want = before + (rc != 0 && none_touched ? 0 : 1);
			wait_until(__atomic_load_n(&notes, __ATOMIC_SEQ_CST) >= want,
			           "k=%ld: the list's notification never ran", k);
			sleep_ms(2);
			cr_assert_eq(__atomic_load_n(&notes, __ATOMIC_SEQ_CST), want,
			             "k=%ld: the list's notification ran more than once", k);
		}
		if (!injected && k > 8)
			break;
	}
	cr_assert_lt(k, SWEEP_MAX, "the sweep never ended");
	cr_assert_gt(untouched, 0, "the list's own allocation never failed");
	cr_log_info("%d entries refused; %d calls failed before submitting", refused, untouched);
	engine_consistent();
	close(fd);
}

Test(fault_malloc, lio_listio_wait)
{
	lio_sweep(FAIL_ONE, LIO_WAIT);
}

Test(fault_malloc, lio_listio_nowait_with_notification)
{
	lio_sweep(FAIL_ALL, LIO_NOWAIT);
}

/* ---- the libaio front end ------------------------------------------------- */

/* io_setup's allocations: the context (and its ring), the registry when
 * it grows, and, the first time, what reading fs.aio-max-nr needs. */
static int io_setup_sweep(void)
{
	int enomem = 0;
	long k;

	for (k = 0; k < SWEEP_MAX; k++) {
		io_context_t ctx = 0;
		bool injected;
		int rc;

		arm(k, k % 2 ? FAIL_ALL : FAIL_ONE);
		rc = io_setup(16, &ctx);
		injected = disarm();
		if (rc != 0) {
			cr_assert(injected, "io_setup failed without an injected failure: %d", rc);
			cr_assert_eq(rc, -ENOMEM, "k=%ld: io_setup %d, not -ENOMEM", k, rc);
			cr_assert_null(ctx, "a failed io_setup leaves *ctxp 0");
			enomem++;
		} else {
			int fd = temp_file(4096, 0);
			char buf[64];
			struct iocb io;
			io_prep_pread(&io, fd, buf, sizeof buf, 64);
			cr_assert_eq(submit1(ctx, &io), 1);
			cr_assert_eq((long)get_one(ctx).res, 64);
			cr_assert_eq(buf[0], (char)pattern(64));
			cr_assert_eq(io_destroy(ctx), 0);
			close(fd);
		}
		if (!injected)
			break;
	}
	cr_assert_lt(k, SWEEP_MAX);
	return enomem;
}

Test(fault_malloc, io_setup)
{
	io_context_t keep[64];
	int first, again, grow;

	need_wrappers();
	first = io_setup_sweep();   /* the process's first contexts */
	again = io_setup_sweep();   /* the context's own memory */
	for (int i = 0; i < 64; i++)
		keep[i] = new_ctx(1);
	grow = io_setup_sweep();    /* and the registry growing */
	cr_log_info("-ENOMEM: %d, %d, %d", first, again, grow);
	cr_assert_geq(again, 1, "the context's allocation never failed");
	cr_assert_geq(grow, 2, "the registry's growth never failed");
	for (int i = 0; i < 64; i++)
		cr_assert_eq(io_destroy(keep[i]), 0);
}

static void io_submit_sweep(int mode)
{
	enum { N = 4 };
	int fd = temp_file(65536, 0), wfd = temp_file(0, 0), eagain = 0, partial = 0;
	io_context_t ctx = new_ctx(64);
	unsigned char bufs[N][512];
	long k;

	need_wrappers();
	hostile_knobs();
	for (k = 0; k < SWEEP_MAX; k++) {
		struct iocb ios[N], *iop[N];
		struct iovec iov[2] = { { bufs[1], 100 }, { bufs[1] + 100, 412 } };
		struct io_event ev[N];
		struct timespec zero = { 0, 0 };
		bool injected;
		int rc;

		io_prep_pread(&ios[0], fd, bufs[0], 512, k * 10);
		io_prep_preadv(&ios[1], fd, iov, 2, 4096);      /* its iovec is copied */
		memset(bufs[2], 'q', 512);
		io_prep_pwrite(&ios[2], wfd, bufs[2], 512, k * 512);
		io_prep_fsync(&ios[3], wfd);
		for (int i = 0; i < N; i++) {
			ios[i].data = (void *)(uintptr_t)(i + 1);
			iop[i] = &ios[i];
		}
		arm(k, mode);
		rc = io_submit(ctx, N, iop);
		injected = disarm();
		if (rc < 0) {
			cr_assert(injected, "io_submit failed without an injected failure: %d", rc);
			cr_assert_eq(rc, -EAGAIN, "k=%ld: io_submit %d, not -EAGAIN", k, rc);
			eagain++;
		} else {
			cr_assert(rc == N || injected, "k=%ld: %d of %d accepted", k, rc, N);
			partial += rc < N;
			get_events(ctx, ev, rc);
			for (int i = 0; i < rc; i++) {
				int which = (int)(uintptr_t)ev[i].data - 1;
				long want = which == 3 ? 0 : 512;
				cr_assert(which >= 0 && which < rc, "an event for iocb %d, not accepted", which);
				cr_assert_eq(ev[i].obj, &ios[which]);
				cr_assert_eq((long)ev[i].res, want, "k=%ld: iocb %d: res %ld", k, which,
				             (long)ev[i].res);
			}
		}
		cr_assert_eq(io_getevents(ctx, 0, N, ev, &zero), 0, "k=%ld: extra events", k);
		if (rc >= 1)
			cr_assert_eq(bufs[0][3], pattern(k * 10 + 3));
		if (!injected && k > 8)
			break;
	}
	cr_assert_lt(k, SWEEP_MAX);
	cr_assert_gt(eagain, 0);
	cr_log_info("%d calls -EAGAIN, %d partly accepted over %ld points", eagain, partial, k);
	engine_consistent();
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
	close(wfd);
}

Test(fault_malloc, io_submit_one_failure)
{
	io_submit_sweep(FAIL_ONE);
}

Test(fault_malloc, io_submit_every_allocation_from_k)
{
	io_submit_sweep(FAIL_ALL);
}
