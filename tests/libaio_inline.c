/* libaio_inline.c: what io_submit's fast path leaves to the pool, counted
 * by the reads the submitting thread makes itself (/proc/self/task/TID/io):
 * an O_DIRECT read never runs on the submitter, and one io_submit runs at
 * most its budget of reads inline, the rest going to the pool. */
#include "libaio_common.h"
#include "inline_common.h"

#define DIRECT_SIZE (64 * 1024)

static void fastpath_on(void)
{
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 1), 0);
}

/* Collects n events and checks each read: iocb i read sz bytes at i * sz
 * (or at 0 when same is set). */
static void assert_reads(io_context_t ctx, struct iocb *cbs, int n, size_t sz,
		bool same)
{
	struct io_event *ev = calloc((size_t)n, sizeof *ev);

	get_events(ctx, ev, n);
	for (int i = 0; i < n; i++) {
		struct iocb *cb = ev[i].obj;
		long k = cb - cbs;
		cr_assert_eq((long)ev[i].res, (long)sz, "iocb %ld: res %ld", k,
		             (long)ev[i].res);
		assert_pattern(cb->u.c.buf, sz, same ? 0 : (off_t)(k * (long)sz));
	}
	free(ev);
}

/* Submits n O_DIRECT reads of 4 KiB on d in one io_submit: none may run
 * on the submitting thread. */
static void direct_submit(int d, int n)
{
	io_context_t ctx = new_ctx(16);
	unsigned char *buf = page_buf((size_t)n * 4096);
	struct iocb cbs[16], *list[16];
	struct thread_io a, b;

	for (int i = 0; i < n; i++) {
		io_prep_pread(&cbs[i], d, buf + i * 4096, 4096, i * 4096);
		list[i] = &cbs[i];
	}
	a = thread_io_now();
	cr_assert_eq(io_submit(ctx, n, list), n);
	b = thread_io_now();
	cr_assert_eq(reads_between(a, b), 0,
	             "io_submit ran %llu O_DIRECT read(s) on the submitting thread",
	             reads_between(a, b));
	assert_reads(ctx, cbs, n, 4096, false);
	cr_assert_eq(io_destroy(ctx), 0);
	free(buf);
}

Test(libaio_inline, o_direct_io_submit_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d = reopen(fd, O_DIRECT);

	fastpath_on();
	direct_submit(d, 1);
	direct_submit(d, 4);
	close(d);
	close(fd);
}

/* The fd's queue was made while it was buffered (an fsync), then F_SETFL
 * turned O_DIRECT on. */
Test(libaio_inline, o_direct_io_submit_on_a_queued_fd_never_runs_on_the_submitter)
{
	int fd = cached_file(DIRECT_SIZE), d = reopen(fd, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb sync;

	fastpath_on();
	io_prep_fsync(&sync, d);
	cr_assert_eq(submit1(ctx, &sync), 1);
	cr_assert_eq((long)get_one(ctx).res, 0);
	cr_assert_eq(io_destroy(ctx), 0);
	if (fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_DIRECT) < 0)
		cr_skip_test("F_SETFL O_DIRECT: %s", strerror(errno));
	direct_submit(d, 1);
	direct_submit(d, 4);
	close(d);
	close(fd);
}

/* Events in ctx's ring, not yet reaped. */
static unsigned ring_events(io_context_t ctx)
{
	struct test_ring *r = ring_of(ctx);
	unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);

	return (tail + r->nr - head) % r->nr;
}

/* With the only worker held on a pipe (a POSIX read), what goes to the
 * pool stays queued until the test lets it go. */
static void submit_held(int fd, int n, size_t sz, bool same, bool budget)
{
	io_context_t ctx = new_ctx(n);
	unsigned char *buf = page_buf((size_t)n * sz);
	struct iocb *cbs = calloc((size_t)n, sizeof *cbs);
	struct iocb **list = calloc((size_t)n, sizeof *list);
	struct blocker blk;
	struct thread_io a, b;

	fastpath_on();
	one_busy_worker(&blk);
	for (int i = 0; i < n; i++) {
		io_prep_pread(&cbs[i], fd, buf + (size_t)i * sz, sz,
		              same ? 0 : (long long)i * (long long)sz);
		list[i] = &cbs[i];
	}
	a = thread_io_now();
	cr_assert_eq(io_submit(ctx, n, list), n);
	b = thread_io_now();
	if (budget)
		cr_assert_lt(bytes_between(a, b), (unsigned long long)n * sz / 2,
		             "the submitting thread read %llu of the call's %zu bytes",
		             bytes_between(a, b), n * sz);
	else
		cr_assert_lt(reads_between(a, b), (unsigned long long)n,
		             "io_submit did all %d reads itself", n);
	cr_assert_lt(ring_events(ctx), (unsigned)n,
	             "io_submit returned with every read done");
	blocker_release(&blk);
	assert_reads(ctx, cbs, n, sz, same);
	cr_assert_eq(io_destroy(ctx), 0);
	free(list);
	free(cbs);
	free(buf);
}

Test(libaio_inline, io_submit_returns_before_large_cached_reads_are_done,
     .timeout = 60)
{
	const size_t n = 16 << 20;
	int fd = cached_file(n);

	submit_held(fd, 10, n, true, false);
	close(fd);
}

Test(libaio_inline, io_submit_runs_at_most_its_budget_inline, .timeout = 60)
{
	enum { N = 1024, SZ = 16 * 1024 };
	int fd = cached_file((size_t)N * SZ);

	submit_held(fd, N, SZ, false, true);
	close(fd);
}
