/* sysaio_syscall: the AIO system calls made with syscall(3) on contexts
 * aiopool made are served by aiopool, with syscall(3)'s conventions (the
 * result, or -1 and errno); every other call, and those calls on the
 * kernel's own contexts, reach the kernel unchanged.  (src/sysaio.c) */
#include "libaio_common.h"

#include <stdint.h>

TestSuite(sysaio_syscall, .timeout = 60);

/* Pointers that are no program's (as in badinput_libaio). */
static void *opaque(uintptr_t a)
{
	void *volatile p = (void *)a;

	return p;
}
#define LOW_PTR(type) ((type)opaque(8))
#define KERNEL_PTR(type) ((type)opaque((uintptr_t)-4096L))

/* syscall(3)'s result and errno, errno set to a marker first. */
struct sysret { long rc; int err; };

#define SYS(...) ({ errno = 4321; long rc_ = syscall(__VA_ARGS__); \
                    (struct sysret){ rc_, errno }; })

#define assert_fails(r, e, what) do { \
	struct sysret r_ = (r); \
	cr_assert(r_.rc == -1 && r_.err == (e), "%s: %ld, errno %d (%s), not -1 and %s", \
	          (what), r_.rc, r_.err, strerror(r_.err), strerror(e)); \
} while (0)

#define assert_ok(r, want, what) do { \
	struct sysret r_ = (r); \
	cr_assert(r_.rc == (want) && r_.err == 4321, \
	          "%s: %ld, errno %d (%s), not %ld with errno untouched", \
	          (what), r_.rc, r_.err, strerror(r_.err), (long)(want)); \
} while (0)

static const struct timespec ten_s = { 10, 0 };

/* A read of the first 8 bytes of fd, prepared in cb. */
static void prep_read(struct iocb *cb, int fd, char *buf)
{
	io_prep_pread(cb, fd, buf, 8, 0);
	cb->data = (void *)(uintptr_t)0x5eed;
}

static void check_read_event(const struct io_event *ev, struct iocb *cb,
		const char *buf)
{
	cr_assert_eq(ev->obj, cb);
	cr_assert_eq(ev->data, (void *)(uintptr_t)0x5eed);
	cr_assert_eq((long)ev->res, 8, "res %ld", (long)ev->res);
	for (int i = 0; i < 8; i++)
		cr_assert_eq((unsigned char)buf[i], pattern(i));
}

/* mariadbd's way: the context and the submission from libaio's functions,
 * the events from syscall(SYS_io_getevents). */
Test(sysaio_syscall, getevents_on_aiopool_context)
{
	io_context_t ctx = new_ctx(4);
	int fd = temp_file(4096, 0);
	struct io_event ev[2];
	struct iocb cb;
	char buf[8];

	prep_read(&cb, fd, buf);
	cr_assert_eq(submit1(ctx, &cb), 1);
	assert_ok(SYS(SYS_io_getevents, ctx, 1L, 2L, ev, &ten_s), 1,
	          "io_getevents");
	check_read_event(&ev[0], &cb, buf);
	assert_ok(SYS(SYS_io_getevents, ctx, 0L, 2L, ev, &(struct timespec){ 0, 0 }), 0,
	          "io_getevents with nothing left");
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
}

Test(sysaio_syscall, submit_on_aiopool_context)
{
	io_context_t ctx = new_ctx(4);
	int fd = temp_file(4096, 0);
	struct iocb cb, *ios[1] = { &cb };
	struct io_event ev;
	char buf[8];

	prep_read(&cb, fd, buf);
	assert_ok(SYS(SYS_io_submit, ctx, 1L, ios), 1, "io_submit");
	ev = get_one(ctx);
	check_read_event(&ev, &cb, buf);
	assert_ok(SYS(SYS_io_submit, ctx, 0L, NULL), 0, "io_submit of none");
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
}

Test(sysaio_syscall, destroy_on_aiopool_context)
{
	io_context_t ctx = new_ctx(4);

	assert_ok(SYS(SYS_io_destroy, ctx), 0, "io_destroy");
	cr_assert_eq(io_destroy(ctx), -EINVAL, "the context is gone");
	assert_fails(SYS(SYS_io_destroy, ctx), EINVAL, "io_destroy again");
}

/* A request queued behind a busy worker is cancelled: 0 and its event in
 * *result, as libaio's io_cancel; a running one is EAGAIN. */
Test(sysaio_syscall, cancel_on_aiopool_context)
{
	io_context_t ctx = new_ctx(4);
	int fd = temp_file(4096, 0), p[2];
	struct iocb cb;
	struct io_event res;
	struct aiocb busy;
	char buf[8], b1;

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);   /* it must queue */
	block_worker(p, &busy, &b1);
	prep_read(&cb, fd, buf);
	cr_assert_eq(submit1(ctx, &cb), 1);
	memset(&res, 0x55, sizeof res);
	assert_ok(SYS(SYS_io_cancel, ctx, &cb, &res), 0, "io_cancel");
	cr_assert_eq(res.obj, &cb);
	cr_assert_eq((long)res.res, -ECANCELED);
	assert_fails(SYS(SYS_io_cancel, ctx, &cb, &res), EINVAL, "io_cancel again");
	unblock_worker(p, &busy);
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
}

Test(sysaio_syscall, pgetevents_on_aiopool_context)
{
	io_context_t ctx = new_ctx(4);
	int fd = temp_file(4096, 0);
	struct iocb cb;
	struct io_event ev;
	sigset_t mask;
	struct { const sigset_t *sigmask; size_t sigsetsize; } usig = { &mask, 8 };
	char buf[8];

	sigemptyset(&mask);
	prep_read(&cb, fd, buf);
	cr_assert_eq(submit1(ctx, &cb), 1);
	assert_ok(SYS(SYS_io_pgetevents, ctx, 1L, 1L, &ev, &ten_s, &usig), 1,
	          "io_pgetevents with a mask");
	check_read_event(&ev, &cb, buf);
	cr_assert_eq(submit1(ctx, &cb), 1);
	assert_ok(SYS(SYS_io_pgetevents, ctx, 1L, 1L, &ev, &ten_s, NULL), 1,
	          "io_pgetevents without a sigset");
	check_read_event(&ev, &cb, buf);
	usig.sigsetsize = 7;
	assert_fails(SYS(SYS_io_pgetevents, ctx, 0L, 1L, &ev, &ten_s, &usig), EINVAL,
	             "a sigset size not the kernel's");
	usig.sigmask = NULL;
	assert_ok(SYS(SYS_io_pgetevents, ctx, 0L, 1L, &ev, &(struct timespec){ 0, 0 }, &usig),
	          0, "no mask: any size");
	assert_fails(SYS(SYS_io_pgetevents, ctx, 0L, 1L, &ev, &ten_s, LOW_PTR(void *)),
	             EFAULT, "a sigset pointer not the program's");
	usig = (__typeof__(usig)){ LOW_PTR(sigset_t *), 8 };
	assert_fails(SYS(SYS_io_pgetevents, ctx, 0L, 1L, &ev, &ten_s, &usig), EFAULT,
	             "a mask pointer not the program's");
	cr_assert_eq(io_destroy(ctx), 0);
	close(fd);
}

/* Bad input on an aiopool context: -1 and the kernel's errno. */
Test(sysaio_syscall, bad_input_gives_kernel_errno)
{
	io_context_t ctx = new_ctx(4);
	struct io_event ev;
	struct iocb cb, *bad[1] = { NULL };

	assert_fails(SYS(SYS_io_getevents, ctx, 2L, 1L, &ev, NULL), EINVAL, "min_nr > nr");
	assert_fails(SYS(SYS_io_getevents, ctx, 0L, 1L, LOW_PTR(struct io_event *), NULL),
	             EFAULT, "events not the program's");
	assert_fails(SYS(SYS_io_getevents, ctx, 0L, 1L, &ev, KERNEL_PTR(struct timespec *)),
	             EFAULT, "timeout not the program's");
	assert_fails(SYS(SYS_io_submit, ctx, -1L, bad), EINVAL, "nr < 0");
	assert_fails(SYS(SYS_io_submit, ctx, 1L, LOW_PTR(struct iocb **)), EFAULT,
	             "iocbpp not the program's");
	assert_fails(SYS(SYS_io_submit, ctx, 1L, bad), EFAULT, "a NULL iocb");
	assert_fails(SYS(SYS_io_cancel, ctx, NULL, &ev), EFAULT, "iocb NULL");
	memset(&cb, 0, sizeof cb);
	assert_fails(SYS(SYS_io_cancel, ctx, &cb, LOW_PTR(struct io_event *)), EFAULT,
	             "result not the program's");
	cr_assert_eq(io_destroy(ctx), 0);
	/* Not aiopool's any more: the kernel's answer. */
	assert_fails(SYS(SYS_io_getevents, ctx, 0L, 1L, &ev, NULL), EINVAL,
	             "a destroyed context");
	assert_fails(SYS(SYS_io_submit, ctx, 1L, bad), EINVAL, "a destroyed context");
}

/* Everything else is the kernel's system call: results, all six argument
 * registers, errno set only on failure. */
Test(sysaio_syscall, other_numbers_pass_through)
{
	char buf[8];
	int fd = temp_file(4096, 0);
	void *p;

	assert_ok(SYS(SYS_getpid), getpid(), "getpid");
	assert_fails(SYS(SYS_close, -1L), EBADF, "close(-1)");
	assert_ok(SYS(SYS_pread64, (long)fd, buf, 8L, 8L), 8, "pread64");
	for (int i = 0; i < 8; i++)
		cr_assert_eq((unsigned char)buf[i], pattern(8 + i));
	errno = 4321;
	p = (void *)syscall(SYS_mmap, NULL, 4096L, (long)(PROT_READ | PROT_WRITE),
	                    (long)(MAP_PRIVATE | MAP_ANONYMOUS), -1L, 0L);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	cr_assert_eq(errno, 4321);
	((char *)p)[4095] = 1;
	cr_assert_eq(munmap(p, 4096), 0);
	assert_fails(SYS(SYS_mmap, NULL, 4096L, (long)PROT_READ, (long)MAP_PRIVATE, (long)fd,
	                 1L), EINVAL, "mmap at an unaligned offset (the sixth argument)");
	close(fd);
}

/* A context the kernel made is the kernel's, also through syscall. */
Test(sysaio_syscall, kernel_context_is_the_kernels)
{
	unsigned long kctx = 0;
	int fd = temp_file(4096, 0);
	struct iocb cb, *ios[1] = { &cb };
	struct io_event ev;
	struct sysret r;
	char buf[8];

	cr_assert_eq(aiopool_get(AIOPOOL_SYSCALL_SETUP), 0, "off by default");
	r = SYS(SYS_io_setup, 4L, &kctx);
	if (r.rc == -1 && r.err == ENOSYS)
		cr_skip_test("no kernel AIO here");
	assert_ok(r, 0, "the kernel's io_setup");
	cr_assert_eq(io_submit((io_context_t)kctx, 0, NULL), -EINVAL,
	             "not an aiopool context");
	prep_read(&cb, fd, buf);
	assert_ok(SYS(SYS_io_submit, kctx, 1L, ios), 1, "the kernel's io_submit");
	assert_ok(SYS(SYS_io_getevents, kctx, 1L, 1L, &ev, &ten_s), 1,
	          "the kernel's io_getevents");
	check_read_event(&ev, &cb, buf);
	assert_ok(SYS(SYS_io_destroy, kctx), 0, "the kernel's io_destroy");
	close(fd);
}

/* With AIOPOOL_SYSCALL_SETUP, syscall(SYS_io_setup) makes an aiopool
 * context: libaio's functions and the system calls both serve it. */
Test(sysaio_syscall, raw_setup_with_knob_is_aiopools)
{
	unsigned long ctx = 0;
	int fd = temp_file(4096, 0);
	struct iocb cb, *ios[1] = { &cb };
	struct io_event ev;
	char buf[8];

	cr_assert_eq(aiopool_set(AIOPOOL_SYSCALL_SETUP, 2), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(aiopool_set(AIOPOOL_SYSCALL_SETUP, 1), 0);
	cr_assert_eq(aiopool_get(AIOPOOL_SYSCALL_SETUP), 1);
	assert_ok(SYS(SYS_io_setup, 4L, &ctx), 0, "io_setup");
	cr_assert_eq(io_submit((io_context_t)ctx, 0, NULL), 0, "an aiopool context");
	prep_read(&cb, fd, buf);
	assert_ok(SYS(SYS_io_submit, ctx, 1L, ios), 1, "io_submit");
	assert_ok(SYS(SYS_io_getevents, ctx, 1L, 1L, &ev, &ten_s), 1, "io_getevents");
	check_read_event(&ev, &cb, buf);
	cr_assert_eq(stats_now().submitted, 1, "aiopool ran the read");
	assert_fails(SYS(SYS_io_setup, 4L, &ctx), EINVAL, "*ctxp not 0");
	assert_fails(SYS(SYS_io_setup, 4L, LOW_PTR(unsigned long *)), EFAULT,
	             "ctxp not the program's");
	assert_ok(SYS(SYS_io_destroy, ctx), 0, "io_destroy");
	cr_assert_eq(io_destroy((io_context_t)ctx), -EINVAL, "destroyed");
	close(fd);
}
