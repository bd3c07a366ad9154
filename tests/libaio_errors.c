/* libaio_errors: every error code of io_setup, io_submit, io_getevents,
 * io_cancel and io_destroy, partial submission, a full completion queue,
 * garbage contexts, and many small contexts. */
#include "libaio_common.h"

#include <sys/mman.h>

/* ---- io_setup -------------------------------------------------------------- */

Test(libaio_errors, io_setup)
{
	io_context_t ctx = 0, other = (io_context_t)0x1000;

	cr_assert_eq(io_setup(1, NULL), -EFAULT);
	cr_assert_eq(io_setup(1, (io_context_t *)8), -EFAULT);
	cr_assert_eq(io_setup(1, &other), -EINVAL, "*ctxp must be 0");
	cr_assert_eq(io_setup(0, &ctx), -EINVAL);
	cr_assert_eq(io_setup(-1, &ctx), -EINVAL);
	cr_assert_eq(io_setup(-1000, &ctx), -EINVAL);
	cr_assert_null(ctx);
	cr_assert_eq(io_setup(1, &ctx), 0);
	cr_assert_not_null(ctx);
	cr_assert_eq(io_destroy(ctx), 0);
}

Test(libaio_errors, io_setup_beyond_aio_max_nr_is_eagain)
{
	FILE *f = fopen("/proc/sys/fs/aio-max-nr", "r");
	unsigned long max = 65536;
	io_context_t ctx = 0;

	if (f) {
		cr_assert_eq(fscanf(f, "%lu", &max), 1);
		fclose(f);
	}
	if (max >= 4194304)
		cr_skip_test("fs.aio-max-nr is %lu: past the ring size limit", max);
	cr_assert_eq(io_setup((int)max + 1, &ctx), -EAGAIN);
	cr_assert_null(ctx);
}

Test(libaio_errors, io_queue_init)
{
	io_context_t ctx = (io_context_t)0x77;

	cr_assert_eq(io_queue_init(0, &ctx), -EINVAL);
	cr_assert_eq(io_queue_init(-5, &ctx), -EINVAL);
	cr_assert_eq(io_queue_init(4, NULL), -EFAULT);
	cr_assert_eq(io_queue_init(4, &ctx), 0);
	cr_assert_eq(io_queue_release(ctx), 0);
}

Test(libaio_errors, tens_of_thousands_of_contexts)
{
	enum { N = 20000 };
	static io_context_t ctx[N];
	int fd = temp_file(4096, 0);
	char buf[8];
	struct iocb cb;

	for (int i = 0; i < N; i++) {
		int rc = io_setup(1, &ctx[i]);
		cr_assert_eq(rc, 0, "context %d: %d", i, rc);
	}
	/* Each still works, and they do not mix. */
	for (int i = 0; i < N; i += 997) {
		io_prep_pread(&cb, fd, buf, sizeof buf, i % 4096);
		cb.data = (void *)(intptr_t)i;
		cr_assert_eq(submit1(ctx[i], &cb), 1);
		struct io_event ev = get_one(ctx[i]);
		cr_assert_eq((intptr_t)ev.data, i);
	}
	for (int i = 0; i < N; i++)
		cr_assert_eq(io_destroy(ctx[i]), 0, "context %d", i);
	close(fd);
}

/* ---- io_submit --------------------------------------------------------------- */

Test(libaio_errors, io_submit_call_level)
{
	io_context_t ctx = new_ctx(4);

	cr_assert_eq(io_submit(ctx, -1, NULL), -EINVAL);
	cr_assert_eq(io_submit(ctx, 0, NULL), 0);
	cr_assert_eq(io_submit(ctx, 1, NULL), -EFAULT);
	cr_assert_eq(io_submit(ctx, 1, (struct iocb **)-1L), -EFAULT);
	struct iocb *null = NULL;
	cr_assert_eq(io_submit(ctx, 1, &null), -EFAULT);
	cr_assert_eq(io_submit(NULL, 0, NULL), -EINVAL);
	io_destroy(ctx);
}

static int submit_err(io_context_t ctx, struct iocb *cb)
{
	return submit1(ctx, cb);
}

Test(libaio_errors, io_submit_per_iocb)
{
	int fd = temp_file(4096, 0), p[2];
	int wfd, efd = eventfd(0, 0);
	char path[] = "/tmp/aiopool-test-wo-XXXXXX";
	io_context_t ctx = new_ctx(8);
	char buf[64];
	struct iocb cb;

	wfd = mkstemp(path);
	cr_assert_geq(wfd, 0);
	close(wfd);
	wfd = open(path, O_WRONLY);
	unlink(path);
	cr_assert_geq(wfd, 0);
	cr_assert_eq(pipe(p), 0);

	io_prep_pread(&cb, 9999, buf, sizeof buf, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EBADF, "bad fd");
	io_prep_pread(&cb, wfd, buf, sizeof buf, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EBADF, "read on a write-only fd");
	int ro = open("/proc/self/exe", O_RDONLY);
	io_prep_pwrite(&cb, ro, buf, sizeof buf, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EBADF, "write on a read-only fd");
	close(ro);

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cb.aio_lio_opcode = IO_CMD_NOOP;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "NOOP, as the kernel");
	cb.aio_lio_opcode = 4;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "opcode 4");
	cb.aio_lio_opcode = 99;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "unknown opcode");

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cb.u.c.__pad3 = 1;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "reserved field");
	io_prep_pread(&cb, fd, buf, (size_t)-1, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "nbytes > SSIZE_MAX");
	io_prep_pread(&cb, fd, buf, sizeof buf, -1);
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "negative offset");
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cb.aio_rw_flags = 0x80000000u;
	cr_assert_eq(submit_err(ctx, &cb), -EOPNOTSUPP, "unknown RWF flag");
	io_prep_pread(&cb, fd, (void *)-4096L, 64, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EFAULT, "not a user address");

	struct iovec iov = { buf, 8 };
	io_prep_preadv(&cb, fd, &iov, 1025, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "more than UIO_MAXIOV");
	io_prep_preadv(&cb, fd, NULL, 1, 0);
	cr_assert_eq(submit_err(ctx, &cb), -EFAULT, "NULL iovec array");

	io_prep_fsync(&cb, fd);
	cb.u.c.buf = buf;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "fsync with a buffer");
	io_prep_fdsync(&cb, fd);
	cb.u.c.offset = 8;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "fdsync with an offset");
	io_prep_fsync(&cb, fd);
	cb.u.c.nbytes = 8;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "fsync with a length");
	io_prep_fsync(&cb, p[0]);
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "fsync on a pipe");
	io_prep_fsync(&cb, 9999);
	cr_assert_eq(submit_err(ctx, &cb), -EBADF, "fsync on a bad fd");

	io_prep_poll(&cb, p[0], POLLIN);
	cb.u.poll.__pad1 = 1;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "poll events past 16 bits");
	io_prep_poll(&cb, p[0], POLLIN);
	cb.u.c.offset = 1;
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "poll with an offset");

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	io_set_eventfd(&cb, 9999);
	cr_assert_eq(submit_err(ctx, &cb), -EBADF, "bad eventfd");
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	io_set_eventfd(&cb, p[0]);
	cr_assert_eq(submit_err(ctx, &cb), -EINVAL, "not an eventfd");

	/* Nothing above was queued: the context has no event and no room
	 * was lost. */
	struct timespec zero = { 0, 0 };
	struct io_event ev;
	cr_assert_eq(io_getevents(ctx, 0, 1, &ev, &zero), 0);
	struct iocb cbs[8], *list[8];
	for (int i = 0; i < 8; i++) {
		io_prep_pread(&cbs[i], fd, buf, 8, 0);
		list[i] = &cbs[i];
	}
	cr_assert_eq(io_submit(ctx, 8, list), 8);
	struct io_event evs[8];
	get_events(ctx, evs, 8);

	io_destroy(ctx);
	close(fd);
	close(wfd);
	close(efd);
	close(p[0]);
	close(p[1]);
}

Test(libaio_errors, partial_submission)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(8);
	char buf[3][8];
	struct iocb good1, good2, bad;
	struct io_event ev[2];

	io_prep_pread(&good1, fd, buf[0], 8, 0);
	io_prep_pread(&good2, fd, buf[1], 8, 8);
	io_prep_pread(&bad, 9999, buf[2], 8, 0);

	struct iocb *a[3] = { &good1, &bad, &good2 };
	cr_assert_eq(io_submit(ctx, 3, a), 1, "stops at the bad one: 1 queued");
	get_events(ctx, ev, 1);
	cr_assert_eq(ev[0].obj, &good1);

	struct iocb *b[2] = { &bad, &good2 };
	cr_assert_eq(io_submit(ctx, 2, b), -EBADF, "the first fails: its error");

	struct iocb *c[3] = { &good1, &good2, NULL };
	cr_assert_eq(io_submit(ctx, 3, c), 2);
	get_events(ctx, ev, 2);

	struct timespec zero = { 0, 0 };
	cr_assert_eq(io_getevents(ctx, 0, 2, ev, &zero), 0, "nothing else ran");
	io_destroy(ctx);
	close(fd);
}

Test(libaio_errors, full_completion_queue_is_eagain)
{
	int p[2], fd = temp_file(64, 0);
	io_context_t ctx = new_ctx(2);
	struct iocb polls[2], rd, *list[3] = { &polls[0], &polls[1], &rd };
	struct io_event ev[2];
	char buf[8];

	cr_assert_eq(pipe(p), 0);
	io_prep_poll(&polls[0], p[0], POLLIN);
	io_prep_poll(&polls[1], p[0], POLLIN);
	io_prep_pread(&rd, fd, buf, 8, 0);
	cr_assert_eq(io_submit(ctx, 3, list), 2, "room for 2");
	cr_assert_eq(submit1(ctx, &rd), -EAGAIN);
	/* Completed but unreaped events still take room.  Both POLLs' events
	 * are in the ring before anything is reaped, so the reads' events
	 * come after them. */
	cr_assert_eq(write(p[1], "x", 1), 1);
	wait_until(ring_of(ctx)->tail - ring_of(ctx)->head == 2,
	           "the two POLLs never completed");
	get_events(ctx, ev, 1);
	cr_assert_eq(submit1(ctx, &rd), 1, "one slot free again");
	get_events(ctx, ev + 1, 1);
	cr_assert_eq(submit1(ctx, &rd), 1, "the first read holds one slot, one is free");
	struct iocb rd2 = rd;
	cr_assert_eq(submit1(ctx, &rd2), -EAGAIN, "two reads, in flight or unreaped");
	get_events(ctx, ev, 1);
	cr_assert_eq(ev[0].obj, &rd);
	io_destroy(ctx);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* ---- io_getevents ---------------------------------------------------------------- */

Test(libaio_errors, io_getevents)
{
	io_context_t ctx = new_ctx(2);
	struct io_event ev[2];
	struct timespec zero = { 0, 0 };

	cr_assert_eq(io_getevents(ctx, -1, 2, ev, &zero), -EINVAL, "min_nr < 0");
	cr_assert_eq(io_getevents(ctx, 3, 2, ev, &zero), -EINVAL, "min_nr > nr");
	cr_assert_eq(io_getevents(ctx, 0, -1, ev, &zero), -EINVAL, "nr < 0");
	cr_assert_eq(io_getevents(ctx, 0, 0, NULL, NULL), 0);
	cr_assert_eq(io_getevents(ctx, 1, 2, ev, (struct timespec *)8), -EFAULT);
	cr_assert_eq(io_pgetevents(ctx, 1, 2, ev, &zero, (sigset_t *)8), -EFAULT);
	cr_assert_eq(io_getevents(NULL, 0, 2, ev, &zero), -EINVAL);
	io_destroy(ctx);
}

/* ---- io_cancel, io_destroy ---------------------------------------------------------- */

Test(libaio_errors, io_cancel)
{
	io_context_t ctx = new_ctx(2);
	struct iocb cb;
	struct io_event ev;

	cr_assert_eq(io_cancel(NULL, NULL, &ev), -EFAULT, "checked before ctx");
	memset(&cb, 0, sizeof cb);
	cb.key = 5;
	cr_assert_eq(io_cancel(ctx, &cb, &ev), -EINVAL, "key != 0");
	cb.key = 0;
	cr_assert_eq(io_cancel(ctx, &cb, &ev), -EINVAL, "never submitted");
	cr_assert_eq(io_cancel((io_context_t)&cb, &cb, &ev), -EINVAL, "not a context");
	io_destroy(ctx);
}

Test(libaio_errors, io_destroy_twice)
{
	io_context_t ctx = new_ctx(2);

	cr_assert_eq(io_destroy(ctx), 0);
	cr_assert_eq(io_destroy(ctx), -EINVAL);
	cr_assert_eq(io_destroy(NULL), -EINVAL);
}

/* ---- garbage contexts ------------------------------------------------------------ */

static void assert_not_a_context(io_context_t bad, const char *what)
{
	struct io_event ev;
	struct iocb cb, *list[1] = { &cb };
	struct timespec zero = { 0, 0 };

	memset(&cb, 0, sizeof cb);
	cr_assert_eq(io_submit(bad, 1, list), -EINVAL, "io_submit: %s", what);
	cr_assert_eq(io_submit(bad, 0, NULL), -EINVAL, "io_submit 0: %s", what);
	cr_assert_eq(io_getevents(bad, 0, 1, &ev, &zero), -EINVAL, "io_getevents: %s", what);
	cr_assert_eq(io_getevents(bad, 1, 1, &ev, NULL), -EINVAL, "blocking: %s", what);
	cr_assert_eq(io_pgetevents(bad, 1, 1, &ev, NULL, NULL), -EINVAL, "%s", what);
	cr_assert_eq(io_cancel(bad, &cb, &ev), -EINVAL, "io_cancel: %s", what);
	cr_assert_eq(io_queue_run(bad), -EINVAL, "io_queue_run: %s", what);
	cr_assert_eq(io_destroy(bad), -EINVAL, "io_destroy: %s", what);
}

Test(libaio_errors, garbage_contexts_are_einval_never_a_crash)
{
	struct test_ring fake = { .magic = 0xa10a10a1, .nr = 4, .header_length = 32 };
	void *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	io_context_t dead = new_ctx(4), live = new_ctx(4);
	io_context_t copy;

	cr_assert_neq(unmapped, MAP_FAILED);
	munmap(unmapped, 4096);
	cr_assert_eq(io_destroy(dead), 0);

	assert_not_a_context(NULL, "NULL");
	assert_not_a_context((io_context_t)-1L, "-1");
	assert_not_a_context((io_context_t)0x1234, "a small number");
	assert_not_a_context((io_context_t)unmapped, "unmapped memory");
	assert_not_a_context((io_context_t)&fake, "a fake ring with the magic");
	assert_not_a_context((io_context_t)((char *)live + 8), "inside a real ring");
	assert_not_a_context(dead, "a destroyed context");
	/* A copy of a live ring's bytes elsewhere is not that context. */
	copy = (io_context_t)malloc(4096);
	memcpy(copy, live, 32);
	assert_not_a_context(copy, "a copy of a ring header");
	free(copy);
	cr_assert_eq(io_destroy(live), 0);
}
