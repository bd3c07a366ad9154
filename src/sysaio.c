/* sysaio.c: syscall(3), so that a program that makes the AIO system calls
 * itself on a context aiopool made (mariadbd calls io_getevents that way
 * on a context from libaio's io_setup) is served by aiopool, as if it had
 * called the libaio function.
 *
 * syscall(SYS_io_destroy, SYS_io_submit, SYS_io_cancel, SYS_io_getevents
 * or SYS_io_pgetevents, ctx, ...) with ctx a live aiopool context (the
 * registry in libaio.c says) runs libaio.c's implementation and returns the
 * way syscall(3) does: the result, or -1 with errno.  With the
 * AIOPOOL_SYSCALL_SETUP knob on, syscall(SYS_io_setup, ...) makes an
 * aiopool context too; off (the default), io_setup is the kernel's.
 * Everything else, and those calls on any other context (the kernel's own
 * contexts, garbage), is the kernel's system call, made here with the
 * syscall instruction: no allocation, no lock, nothing before the
 * constructors run that needs them, and errno changed only as glibc's
 * syscall changes it (set from a failure, untouched on success), so it is
 * as safe as glibc's in a signal handler, a vfork child or a constructor.
 *
 * Arguments are read as glibc's syscall reads them: six longs after the
 * number, whatever the caller passed.  aiopool's own system calls (futex,
 * getpid, close, ...) go through here too when the library calls syscall;
 * they are never AIO numbers, so they are one comparison longer.
 *
 * Owns nothing: no state, no lock.  The AIO calls take libaio.c's locks.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#if !defined(__x86_64__)
#error "sysaio.c: the raw system call is written for x86_64"
#endif

/* The kernel's system call: its raw result, -4095..-1 for an error. */
static inline long raw_syscall(long n, const long a[6])
{
	register long r10 __asm__("r10") = a[3];
	register long r8 __asm__("r8") = a[4];
	register long r9 __asm__("r9") = a[5];
	long ret;

	__asm__ volatile ("syscall"
	                  : "=a"(ret)
	                  : "a"(n), "D"(a[0]), "S"(a[1]), "d"(a[2]),
	                    "r"(r10), "r"(r8), "r"(r9)
	                  : "rcx", "r11", "memory");
	return ret;
}

/* The syscall(3) convention for a kernel or libaio result. */
static inline long to_errno(long ret)
{
	if ((unsigned long)ret > -4096UL) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static bool is_aio(long n)
{
	return n == SYS_io_setup || n == SYS_io_destroy || n == SYS_io_submit ||
	       n == SYS_io_cancel || n == SYS_io_getevents ||
	       n == SYS_io_pgetevents;
}

/* Runs AIO call n on aiopool's front end: its -errno result in *ret, or
 * false when it is the kernel's (not an aiopool context, or io_setup with
 * the knob off). */
static bool aio_call(long n, const long a[6], long *ret)
{
	unsigned long id = (unsigned long)a[0];

	if (n == SYS_io_setup) {
		if (!ap_load_relaxed(&ap_knobs.syscall_setup))
			return false;
		*ret = ap_aio_setup((unsigned)a[0], (unsigned long *)a[1]);
		return true;
	}
	if (!ap_aio_ours(id))
		return false;
	switch (n) {
	case SYS_io_destroy:
		*ret = ap_aio_destroy(id);
		break;
	case SYS_io_submit:
		*ret = ap_aio_submit(id, a[1], (struct iocb **)a[2]);
		break;
	case SYS_io_cancel:
		*ret = ap_aio_cancel(id, (struct iocb *)a[1],
		                     (struct io_event *)a[2]);
		break;
	case SYS_io_getevents:
		*ret = ap_aio_getevents(id, a[1], a[2], (struct io_event *)a[3],
		                        (const struct timespec *)a[4]);
		break;
	default:   /* SYS_io_pgetevents */
		*ret = ap_aio_pgetevents(id, a[1], a[2], (struct io_event *)a[3],
		                         (const struct timespec *)a[4],
		                         (const struct ap_aio_sigset *)a[5]);
		break;
	}
	return true;
}

/* The AIO numbers: errno is the caller's unless the call failed (the
 * front end's own system calls may have changed it). */
static __attribute__((noinline)) long aio_syscall(long n, const long a[6])
{
	int saved = errno;
	long ret;

	if (!aio_call(n, a, &ret))
		return to_errno(raw_syscall(n, a));
	errno = saved;
	return to_errno(ret);
}

/* syscall@GLIBC_2.2.5 (src/libaiopool.map), so that programs' references
 * bind here under LD_PRELOAD as with -laiopool.  The sixth argument comes
 * from the caller's stack, where a caller that passed fewer has none:
 * reading that word is what glibc does too, and AddressSanitizer must not
 * take it for an overflow. */
AP_EXPORT __attribute__((no_sanitize("address")))
long syscall(long n, ...)
{
	va_list ap;
	long a[6];

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (__builtin_expect(is_aio(n), 0))
		return aio_syscall(n, a);
	return to_errno(raw_syscall(n, a));
}
