/* badinput_libaio: hostile input to every function of the libaio front
 * end: one test for each row of the "Bad input" table in
 * docs/reliability.md (the row's name is in each test's comment): the
 * negative errno each call returns, whether io_submit refuses an iocb or
 * accepts it and reports the error in its event, and that nothing else was
 * disturbed. */
#include "libaio_common.h"

#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>

TestSuite(badinput_libaio, .timeout = 60);

static const struct timespec zero_ts = { 0, 0 };

/* Pointers that are no program's: below the first page, and a kernel
 * address.  (An unmapped address inside the program's range is not
 * detected: see docs/reliability.md.) */
static void *opaque(uintptr_t a)
{
	void *volatile p = (void *)a;   /* the compiler must not see it */

	return p;
}
#define LOW_PTR(type) ((type)opaque(8))
#define KERNEL_PTR(type) ((type)opaque((uintptr_t)-4096L))

static struct timespec *zero(void)
{
	return (struct timespec *)&zero_ts;
}

/* One iocb through io_submit: its return value. */
static int submit_one(io_context_t ctx, struct iocb *cb)
{
	return io_submit(ctx, 1, &cb);
}

/* Submits cb, expecting it accepted, and returns its event's res. */
static long accepted_res(io_context_t ctx, struct iocb *cb)
{
	struct io_event ev;
	int rc = submit_one(ctx, cb);

	cr_assert_eq(rc, 1, "io_submit: %d (%s)", rc, rc < 0 ? strerror(-rc) : "");
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, cb);
	return (long)ev.res;
}

/* The contexts a call must refuse with -EINVAL without touching them. */
struct bad_ctx { io_context_t ctx; const char *what; };

static int bad_contexts(struct bad_ctx *out)
{
	static struct test_ring fake = { .nr = 4, .magic = 0xa10a10a1u, .header_length = 32 };
	io_context_t dead = new_ctx(4);
	int n = 0;

	cr_assert_eq(io_destroy(dead), 0);
	out[n++] = (struct bad_ctx){ NULL, "NULL" };
	out[n++] = (struct bad_ctx){ dead, "destroyed" };
	out[n++] = (struct bad_ctx){ (io_context_t)&fake, "a fake ring" };
	out[n++] = (struct bad_ctx){ (io_context_t)(uintptr_t)1, "1" };
	out[n++] = (struct bad_ctx){ (io_context_t)(uintptr_t)-1, "-1" };
	out[n++] = (struct bad_ctx){ (io_context_t)(uintptr_t)0x7f0012345000ULL, "unmapped" };
	return n;
}

/* ---- io_setup, io_queue_init ------------------------------------------- */

/* Row: io_setup with ctxp NULL or not the program's: -EFAULT. */
Test(badinput_libaio, setup_bad_ctxp)
{
	cr_assert_eq(io_setup(4, NULL), -EFAULT);
	cr_assert_eq(io_setup(4, LOW_PTR(io_context_t *)), -EFAULT);
	cr_assert_eq(io_setup(4, KERNEL_PTR(io_context_t *)), -EFAULT);
	cr_assert_eq(io_setup(-1, NULL), -EFAULT, "checked before maxevents");
}

/* Row: io_setup with ctxp in read-only memory (holding 0): -EFAULT, as the
 * kernel's put_user of the handle faults; no crash, no context left. */
Test(badinput_libaio, setup_read_only_ctxp)
{
	long pg = sysconf(_SC_PAGESIZE);
	io_context_t *ro = mmap(NULL, (size_t)pg, PROT_READ,
	                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(ro, MAP_FAILED);
	cr_assert_eq(io_setup(4, ro), -EFAULT);
	cr_assert_eq(io_queue_init(4, ro), -EFAULT);
	cr_assert_null(*ro);
	munmap(ro, (size_t)pg);
}

/* Row: io_setup with *ctxp not 0: -EINVAL, *ctxp untouched. */
Test(badinput_libaio, setup_ctxp_not_zero)
{
	io_context_t live = new_ctx(2), ctx = live;

	cr_assert_eq(io_setup(4, &ctx), -EINVAL);
	cr_assert_eq(ctx, live);
	ctx = (io_context_t)0x1234;
	cr_assert_eq(io_setup(4, &ctx), -EINVAL);
	cr_assert_eq(ctx, (io_context_t)0x1234);
	cr_assert_eq(io_destroy(live), 0);
}

/* Row: io_setup with maxevents 0, negative, or past the kernel's bound
 * (4194304): -EINVAL; past fs.aio-max-nr: -EAGAIN. */
Test(badinput_libaio, setup_bad_maxevents)
{
	static const int bad[] = { 0, -1, INT_MIN, 4194305, INT_MAX };
	io_context_t ctx = NULL;
	unsigned long max = 65536;
	FILE *f = fopen("/proc/sys/fs/aio-max-nr", "r");

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(io_setup(bad[i], &ctx), -EINVAL, "maxevents %d", bad[i]);
		cr_assert_null(ctx);
	}
	if (f) {
		cr_assert_eq(fscanf(f, "%lu", &max), 1);
		fclose(f);
	}
	if (max < 4194304) {
		cr_assert_eq(io_setup((int)max + 1, &ctx), -EAGAIN);
		cr_assert_null(ctx);
	}
}

/* Row: io_queue_init with maxevents <= 0: -EINVAL; ctxp NULL: -EFAULT. */
Test(badinput_libaio, queue_init_bad_arguments)
{
	io_context_t ctx = (io_context_t)0x99;   /* io_queue_init clears it */

	cr_assert_eq(io_queue_init(0, &ctx), -EINVAL);
	cr_assert_eq(io_queue_init(INT_MIN, &ctx), -EINVAL);
	cr_assert_eq(io_queue_init(4, NULL), -EFAULT);
	cr_assert_eq(io_queue_init(4, &ctx), 0);
	cr_assert_not_null(ctx);
	cr_assert_eq(io_queue_release(ctx), 0);
}

/* ---- io_destroy, io_queue_release --------------------------------------- */

/* Row: io_destroy / io_queue_release of a NULL, garbage or destroyed
 * context: -EINVAL, never a crash. */
Test(badinput_libaio, destroy_bad_context)
{
	struct bad_ctx bad[8];
	int n = bad_contexts(bad);

	for (int i = 0; i < n; i++) {
		cr_assert_eq(io_destroy(bad[i].ctx), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_queue_release(bad[i].ctx), -EINVAL, "%s", bad[i].what);
	}
}

/* ---- io_submit: the call -------------------------------------------------- */

/* Row: io_submit on a NULL, garbage or destroyed context: -EINVAL. */
Test(badinput_libaio, submit_bad_context)
{
	int fd = temp_file(4096, 0);
	struct bad_ctx bad[8];
	int n = bad_contexts(bad);
	struct iocb cb, *list[1] = { &cb };
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(io_submit(bad[i].ctx, 1, list), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_submit(bad[i].ctx, 0, NULL), -EINVAL, "%s", bad[i].what);
	}
	cr_assert_eq(stats_now().submitted, 0);
}

/* Row: io_submit with nr negative: -EINVAL; nr 0: 0. */
Test(badinput_libaio, submit_bad_nr)
{
	io_context_t ctx = new_ctx(4);

	cr_assert_eq(io_submit(ctx, -1, NULL), -EINVAL);
	cr_assert_eq(io_submit(ctx, LONG_MIN, NULL), -EINVAL);
	cr_assert_eq(io_submit(ctx, 0, NULL), 0);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_submit with ios NULL or not the program's, or a NULL entry:
 * -EFAULT (after the entries before it are queued: their count). */
Test(badinput_libaio, submit_bad_list)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb, *list[2] = { &cb, NULL }, *nul[1] = { NULL };
	char buf[8];

	cr_assert_eq(io_submit(ctx, 1, NULL), -EFAULT);
	cr_assert_eq(io_submit(ctx, 1, LOW_PTR(struct iocb **)), -EFAULT);
	cr_assert_eq(io_submit(ctx, 1, KERNEL_PTR(struct iocb **)), -EFAULT);
	cr_assert_eq(io_submit(ctx, 1, nul), -EFAULT);
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(io_submit(ctx, 2, list), 1, "the first is queued");
	cr_assert_eq((long)get_one(ctx).res, (long)sizeof buf);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_submit past the context's room (nr events): the count that fit,
 * then -EAGAIN. */
Test(badinput_libaio, submit_past_ring)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(2);
	struct iocb cb[3], *list[3] = { &cb[0], &cb[1], &cb[2] };
	char buf[3][8];
	struct io_event ev[3];

	for (int i = 0; i < 3; i++)
		io_prep_pread(&cb[i], fd, buf[i], 8, 0);
	cr_assert_eq(io_submit(ctx, 3, list), 2);
	cr_assert_eq(io_submit(ctx, 1, list + 2), -EAGAIN);
	get_events(ctx, ev, 2);
	cr_assert_eq(io_submit(ctx, 1, list + 2), 1, "room again once reaped");
	get_events(ctx, ev, 1);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* ---- io_submit: one iocb -------------------------------------------------- */

/* Row: iocb with aio_fildes -1 or closed: -EBADF at submission. */
Test(badinput_libaio, iocb_bad_fd)
{
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, -1, buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_pwrite(&cb, closed_fd(), buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_fsync(&cb, closed_fd());
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_poll(&cb, -1, POLLIN);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb reading a write-only fd, or writing a read-only one: -EBADF. */
Test(badinput_libaio, iocb_wrong_direction)
{
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];
	int p[2];

	make_pipe(p);
	io_prep_pread(&cb, p[1], buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_pwrite(&cb, p[0], buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb with an unknown opcode (IO_CMD_NOOP, 4, others): -EINVAL. */
Test(badinput_libaio, iocb_bad_opcode)
{
	static const short bad[] = { IO_CMD_NOOP, 4, 9, 99, -1, SHRT_MAX };
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		io_prep_pread(&cb, fd, buf, sizeof buf, 0);
		cb.aio_lio_opcode = bad[i];
		cr_assert_eq(submit_one(ctx, &cb), -EINVAL, "opcode %d", bad[i]);
	}
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb with nbytes over SSIZE_MAX: -EINVAL. */
Test(badinput_libaio, iocb_nbytes_over_ssize_max)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, (size_t)SSIZE_MAX + 1, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_pwrite(&cb, fd, buf, SIZE_MAX, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_pread(&cb, closed_fd(), buf, SIZE_MAX, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL, "checked before the fd");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb with a negative offset: -EINVAL (also on a pipe, as the
 * kernel). */
Test(badinput_libaio, iocb_negative_offset)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];
	int p[2];

	make_pipe(p);
	io_prep_pread(&cb, fd, buf, sizeof buf, -1);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_pwrite(&cb, fd, buf, sizeof buf, LLONG_MIN);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_pwrite(&cb, p[1], buf, sizeof buf, -1);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb whose offset + nbytes overflows: accepted, event -EINVAL; a
 * huge valid offset reads end of file. */
Test(badinput_libaio, iocb_offset_overflow)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8] = "abcdefg";

	io_prep_pread(&cb, fd, buf, sizeof buf, LLONG_MAX - 4);
	cr_assert_eq(accepted_res(ctx, &cb), -EINVAL);
	io_prep_pwrite(&cb, fd, buf, sizeof buf, LLONG_MAX);
	cr_assert_eq(accepted_res(ctx, &cb), -EINVAL);
	io_prep_pread(&cb, fd, buf, sizeof buf, 1LL << 62);
	cr_assert_eq(accepted_res(ctx, &cb), 0, "end of file");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb buffer not the program's (a kernel address), or nbytes past
 * the end of the address space: -EFAULT; buffer NULL: event -EFAULT. */
Test(badinput_libaio, iocb_bad_buffer)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, KERNEL_PTR(void *), 16, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EFAULT);
	io_prep_pread(&cb, fd, buf, SSIZE_MAX, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EFAULT);
	io_prep_pread(&cb, fd, NULL, 16, 0);
	cr_assert_eq(accepted_res(ctx, &cb), -EFAULT);
	io_prep_pwrite(&cb, fd, NULL, 16, 0);
	cr_assert_eq(accepted_res(ctx, &cb), -EFAULT);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb with its reserved field (__pad3) set: -EINVAL. */
Test(badinput_libaio, iocb_reserved_field)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cb.u.c.__pad3 = 1;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: iocb with aio_rw_flags the kernel does not know: -EOPNOTSUPP. */
Test(badinput_libaio, iocb_unknown_rw_flags)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cb.aio_rw_flags = 0x100;
	cr_assert_eq(submit_one(ctx, &cb), -EOPNOTSUPP);
	cb.aio_rw_flags = 0x80000000u;
	cr_assert_eq(submit_one(ctx, &cb), -EOPNOTSUPP);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: vectored iocb with more than 1024 pieces: -EINVAL; iovec array
 * NULL or not the program's: -EFAULT; piece not the program's: -EFAULT;
 * piece lengths adding up past SSIZE_MAX: -EINVAL. */
Test(badinput_libaio, iocb_bad_iovec)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	char buf[16];
	struct iovec iov[2] = { { buf, 8 }, { buf + 8, 8 } };
	struct iocb cb;

	io_prep_preadv(&cb, fd, iov, 1025, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_preadv(&cb, fd, NULL, 1, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EFAULT);
	io_prep_pwritev(&cb, fd, LOW_PTR(struct iovec *), 1, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EFAULT);
	iov[1].iov_base = KERNEL_PTR(void *);
	io_prep_preadv(&cb, fd, iov, 2, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EFAULT);
	iov[1].iov_base = buf + 8;
	iov[1].iov_len = SSIZE_MAX;
	io_prep_preadv(&cb, fd, iov, 2, 0);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_preadv(&cb, fd, iov, 0, 0);
	cr_assert_eq(accepted_res(ctx, &cb), 0, "no pieces: nothing to read");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: IOCB_FLAG_IOPRIO with an invalid class or level: -EINVAL. */
Test(badinput_libaio, iocb_bad_ioprio)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	static const short bad[] = { 5, (short)(4 << 13), (short)(7 << 13) };
	struct iocb cb;
	char buf[8];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		io_prep_pread(&cb, fd, buf, sizeof buf, 0);
		cb.u.c.flags |= IOCB_FLAG_IOPRIO;
		cb.aio_reqprio = bad[i];
		cr_assert_eq(submit_one(ctx, &cb), -EINVAL, "ioprio %#x", (unsigned short)bad[i]);
	}
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: IOCB_FLAG_RESFD with a closed fd: -EBADF; with an fd that is not
 * an eventfd: -EINVAL. */
Test(badinput_libaio, iocb_bad_resfd)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	io_set_eventfd(&cb, closed_fd());
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	io_set_eventfd(&cb, -1);
	cr_assert_eq(submit_one(ctx, &cb), -EBADF);
	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	io_set_eventfd(&cb, fd);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: fsync iocb with buf, nbytes, offset or rw_flags set: -EINVAL; on a
 * pipe or socket: -EINVAL. */
Test(badinput_libaio, iocb_bad_fsync)
{
	int fd = temp_file(4096, 0), p[2], sv[2];
	io_context_t ctx = new_ctx(4);
	struct iocb cb;

	io_prep_fsync(&cb, fd);
	cb.u.c.nbytes = 1;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_fdsync(&cb, fd);
	cb.u.c.offset = 8;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_fsync(&cb, fd);
	cb.aio_rw_flags = 2;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	make_pipe(p);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	io_prep_fsync(&cb, p[0]);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_fdsync(&cb, sv[0]);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: POLL iocb with events past 16 bits, or nbytes / offset set:
 * -EINVAL. */
Test(badinput_libaio, iocb_bad_poll)
{
	int p[2];
	io_context_t ctx = new_ctx(4);
	struct iocb cb;

	make_pipe(p);
	io_prep_poll(&cb, p[0], 0x10000 | POLLIN);
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_poll(&cb, p[0], POLLIN);
	cb.u.c.offset = 1;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	io_prep_poll(&cb, p[0], POLLIN);
	cb.u.c.nbytes = 1;
	cr_assert_eq(submit_one(ctx, &cb), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: an iocb submitted again while in flight: accepted, as by the
 * kernel: two requests, two events (io_cancel takes one at a time). */
Test(badinput_libaio, iocb_in_flight_again)
{
	io_context_t ctx = new_ctx(4);
	struct iocb cb, *twice[2] = { &cb, &cb };
	struct io_event ev[2], res;
	char buf[4];
	int p[2];

	make_pipe(p);
	io_prep_pread(&cb, p[0], buf, 1, 0);
	cr_assert_eq(io_submit(ctx, 2, twice), 2);
	wait_stats(S.running == 1 && S.queued == 1, "one read runs, one waits");
	cr_assert_eq(io_cancel(ctx, &cb, &res), 0, "the queued one");
	cr_assert_eq(res.obj, &cb);
	cr_assert_eq((long)res.res, -ECANCELED);
	cr_assert_eq(io_cancel(ctx, &cb, &res), -EAGAIN, "the other runs");
	put(p[1], "ab", 2);
	get_events(ctx, ev, 1);
	cr_assert_eq(ev[0].obj, &cb);
	cr_assert_eq((long)ev[0].res, 1);
	cr_assert_eq(io_getevents(ctx, 0, 2, ev, zero()), 0, "no event for the cancelled one");

	/* Two POLLs of one iocb: io_cancel takes one, then the other. */
	io_prep_poll(&cb, p[1], 0);   /* no event asked: waits for good */
	cr_assert_eq(io_submit(ctx, 2, twice), 2);
	cr_assert_eq(io_cancel(ctx, &cb, &res), 0);
	cr_assert_eq(io_cancel(ctx, &cb, &res), 0);
	cr_assert_eq(io_cancel(ctx, &cb, &res), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* ---- io_getevents, io_pgetevents ------------------------------------------ */

/* Row: io_getevents / io_pgetevents on a NULL, garbage or destroyed
 * context: -EINVAL, also when asked to wait. */
Test(badinput_libaio, getevents_bad_context)
{
	struct bad_ctx bad[8];
	int n = bad_contexts(bad);
	struct io_event ev;

	for (int i = 0; i < n; i++) {
		cr_assert_eq(io_getevents(bad[i].ctx, 0, 1, &ev, zero()), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_getevents(bad[i].ctx, 1, 1, &ev, NULL), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_pgetevents(bad[i].ctx, 1, 1, &ev, NULL, NULL), -EINVAL,
		             "%s", bad[i].what);
	}
}

/* Row: min_nr negative, min_nr > nr, nr negative: -EINVAL. */
Test(badinput_libaio, getevents_bad_counts)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev[2];

	cr_assert_eq(io_getevents(ctx, -1, 2, ev, zero()), -EINVAL);
	cr_assert_eq(io_getevents(ctx, 3, 2, ev, zero()), -EINVAL);
	cr_assert_eq(io_getevents(ctx, 0, -1, ev, zero()), -EINVAL);
	cr_assert_eq(io_getevents(ctx, LONG_MIN, LONG_MIN, ev, zero()), -EINVAL);
	cr_assert_eq(io_pgetevents(ctx, 3, 2, ev, zero(), NULL), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: events NULL or not the program's with nr > 0: -EFAULT; with nr 0,
 * 0 (nothing is written). */
Test(badinput_libaio, getevents_bad_events)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	cr_assert_eq(io_getevents(ctx, 0, 1, NULL, zero()), -EFAULT);
	cr_assert_eq(io_getevents(ctx, 0, 1, LOW_PTR(struct io_event *), zero()), -EFAULT);
	cr_assert_eq(io_getevents(ctx, 0, 1, KERNEL_PTR(struct io_event *), zero()), -EFAULT);
	cr_assert_eq(io_getevents(ctx, 0, 0, NULL, NULL), 0);
	cr_assert_eq(io_pgetevents(ctx, 0, 0, NULL, NULL, NULL), 0);
	cr_assert_eq(get_one(ctx).obj, &cb, "the event is still there");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: timeout not the program's: -EFAULT, checked before the context. */
Test(badinput_libaio, getevents_bad_timeout_pointer)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev;

	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, LOW_PTR(struct timespec *)), -EFAULT);
	cr_assert_eq(io_getevents(NULL, 1, 1, &ev, KERNEL_PTR(struct timespec *)), -EFAULT);
	cr_assert_eq(io_pgetevents(ctx, 1, 1, &ev, LOW_PTR(struct timespec *), NULL), -EFAULT);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: timeout with tv_nsec of a second or more: counted, as the kernel
 * does (not refused); it returns as soon as the events are there. */
Test(badinput_libaio, getevents_nsec_past_a_second)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct timespec t = { 0, 1500000000L };
	struct io_event ev;
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &t), 1);
	cr_assert_eq(ev.obj, &cb);
	t = (struct timespec){ 0, 1000000000L + 1000000L };   /* 1.001 s */
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &t), 0, "timed out, no error");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: negative timeout: waits with no end, as the kernel does: until an
 * event comes, or a signal handler runs (-EINTR). */
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
}

Test(badinput_libaio, getevents_negative_timeout)
{
	io_context_t ctx = new_ctx(4);
	struct timespec t = { -1, 0 };
	struct interrupter it;
	struct io_event ev;
	struct iocb cb;
	char buf[4];
	int p[2];

	on_signal(SIGUSR1, on_usr1, 0);
	interrupter_start(&it, SIGUSR1);
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &t), -EINTR, "{-1, 0}");
	t = (struct timespec){ 0, -1 };
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &t), -EINTR, "{0, -1}");
	interrupter_stop(&it);
	make_pipe(p);
	io_prep_pread(&cb, p[0], buf, 1, 0);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	put(p[1], "e", 1);
	cr_assert_eq(io_getevents(ctx, 1, 1, &ev, &t), 1, "an event ends the wait");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_pgetevents with a signal mask not the program's: -EFAULT. */
Test(badinput_libaio, pgetevents_bad_sigmask)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev;

	cr_assert_eq(io_pgetevents(ctx, 0, 1, &ev, zero(), LOW_PTR(sigset_t *)), -EFAULT);
	cr_assert_eq(io_pgetevents(ctx, 0, 1, &ev, zero(), KERNEL_PTR(sigset_t *)), -EFAULT);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* ---- io_cancel -------------------------------------------------------------- */

/* Row: io_cancel with iocb NULL or not the program's: -EFAULT, checked
 * before the context. */
Test(badinput_libaio, cancel_bad_iocb_pointer)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev;

	cr_assert_eq(io_cancel(ctx, NULL, &ev), -EFAULT);
	cr_assert_eq(io_cancel(NULL, NULL, &ev), -EFAULT);
	cr_assert_eq(io_cancel(ctx, KERNEL_PTR(struct iocb *), &ev), -EFAULT);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_cancel on a NULL, garbage or destroyed context: -EINVAL. */
Test(badinput_libaio, cancel_bad_context)
{
	struct bad_ctx bad[8];
	int n = bad_contexts(bad);
	struct io_event ev;
	struct iocb cb;

	memset(&cb, 0, sizeof cb);
	for (int i = 0; i < n; i++)
		cr_assert_eq(io_cancel(bad[i].ctx, &cb, &ev), -EINVAL, "%s", bad[i].what);
}

/* Row: io_cancel with the iocb's key not 0: -EINVAL. */
Test(badinput_libaio, cancel_bad_key)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev;
	struct iocb cb;

	memset(&cb, 0, sizeof cb);
	cb.key = 1;
	cr_assert_eq(io_cancel(ctx, &cb, &ev), -EINVAL);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_cancel with result NULL or not the program's: -EFAULT, and the
 * request is not cancelled. */
Test(badinput_libaio, cancel_bad_result)
{
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	struct io_event ev;
	int p[2];

	make_pipe(p);
	io_prep_poll(&cb, p[0], POLLIN);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	cr_assert_eq(io_cancel(ctx, &cb, NULL), -EFAULT);
	cr_assert_eq(io_cancel(ctx, &cb, KERNEL_PTR(struct io_event *)), -EFAULT);
	put(p[1], "x", 1);
	ev = get_one(ctx);
	cr_assert_eq(ev.obj, &cb, "the POLL was not cancelled");
	cr_assert(ev.res & POLLIN);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_cancel of an iocb never submitted, finished, or of another
 * context: -EINVAL; of one running: -EAGAIN. */
Test(badinput_libaio, cancel_not_cancellable)
{
	io_context_t ctx = new_ctx(4), other = new_ctx(4);
	int fd = temp_file(4096, 0), p[2];
	struct iocb cb, rd;
	struct io_event ev;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(io_cancel(ctx, &cb, &ev), -EINVAL, "never submitted");
	cr_assert_eq(submit_one(ctx, &cb), 1);
	get_one(ctx);
	cr_assert_eq(io_cancel(ctx, &cb, &ev), -EINVAL, "finished");
	make_pipe(p);
	io_prep_pread(&rd, p[0], buf, 1, 0);
	cr_assert_eq(submit_one(ctx, &rd), 1);
	wait_stats(S.running == 1, "the read never started");
	cr_assert_eq(io_cancel(other, &rd, &ev), -EINVAL, "another context's");
	cr_assert_eq(io_cancel(ctx, &rd, &ev), -EAGAIN, "running");
	put(p[1], "x", 1);
	cr_assert_eq((long)get_one(ctx).res, 1);
	cr_assert_eq(io_destroy(other), 0);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* ---- io_queue_run, io_queue_wait ----------------------------------------- */

/* Row: io_queue_run / io_queue_wait on a NULL, garbage or destroyed
 * context: -EINVAL. */
Test(badinput_libaio, queue_run_wait_bad_context)
{
	struct bad_ctx bad[8];
	int n = bad_contexts(bad);

	for (int i = 0; i < n; i++) {
		cr_assert_eq(io_queue_run(bad[i].ctx), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_queue_wait(bad[i].ctx, zero()), -EINVAL, "%s", bad[i].what);
		cr_assert_eq(io_queue_wait(bad[i].ctx, NULL), -EINVAL, "%s", bad[i].what);
	}
}

/* Row: io_queue_wait with a timeout not the program's: -EFAULT. */
Test(badinput_libaio, queue_wait_bad_timeout)
{
	io_context_t ctx = new_ctx(4);

	cr_assert_eq(io_queue_wait(ctx, LOW_PTR(struct timespec *)), -EFAULT);
	cr_assert_eq(io_queue_wait(NULL, KERNEL_PTR(struct timespec *)), -EFAULT);
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: io_queue_run with events that have no callback (data NULL): they
 * are dropped, the call returns 0. */
Test(badinput_libaio, queue_run_without_callbacks)
{
	int fd = temp_file(4096, 0);
	io_context_t ctx = new_ctx(4);
	struct iocb cb;
	char buf[8];

	io_prep_pread(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	wait_until(ring_of(ctx)->head != ring_of(ctx)->tail, "no event");
	cr_assert_eq(io_queue_run(ctx), 0);
	cr_assert_eq(ring_of(ctx)->head, ring_of(ctx)->tail, "the event was taken");
	cr_assert_eq(io_destroy(ctx), 0);
}

/* Row: the eventfd of IOCB_FLAG_RESFD closed while its request is in
 * flight, and its number reused by a file.  The kernel holds the eventfd
 * itself; aiopool signals a duplicate taken at submission, so the file
 * gets nothing. */
Test(badinput_libaio, iocb_resfd_closed_while_in_flight)
{
	io_context_t ctx;
	struct iocb cb;
	struct stat st;
	char buf[4];
	int p[2], efd, fd;

	ctx = new_ctx(4);
	make_pipe(p);
	efd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	io_prep_pread(&cb, p[0], buf, 1, 0);
	io_set_eventfd(&cb, efd);
	cr_assert_eq(submit_one(ctx, &cb), 1);
	wait_stats(S.running == 1, "the read never started");
	close(efd);
	fd = temp_file(0, 0);
	if (fd != efd)
		cr_skip_test("the eventfd's number was not reused (%d, %d)", efd, fd);
	put(p[1], "x", 1);
	cr_assert_eq((long)get_one(ctx).res, 1);
	wait_stats(S.running == 0 && S.queued == 0);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(st.st_size, 0, "the completion wrote %lld bytes into a file "
	             "that took the eventfd's number", (long long)st.st_size);
	cr_assert_eq(io_destroy(ctx), 0);
}
