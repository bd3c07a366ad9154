/* fdclose.c: closing an fd with requests queued on it, and keeping the fd
 * flags cache (queue.c) true.
 *
 * Requests are queued by fd number, as glibc's are.  aiopool's close(),
 * dup2() and dup3() cancel what is still queued on the fd they close (POSIX
 * allows close to cancel; the requests end with ECANCELED, libaio ones with
 * a -ECANCELED event).  Requests already running finish on the file they
 * started on: the kernel holds it open for them, "as if the close had not
 * yet occurred".
 *
 * All three make the system call first and then cancel, and only the queue
 * that was on the fd before the call (ap_fd_gen, ap_fd_replaced): one made
 * since is for a new file that took the number, which another thread may
 * open the moment it is free.  A call that fails replaces nothing (dup2 and
 * dup3) or closed nothing that had requests (close: EBADF).  Cancelling
 * after the call loses nothing: a queued request that a worker starts in
 * between runs on the fdq's pinned descriptor, the file it was submitted
 * on, as if the close had not yet occurred; and a request submitted on the
 * fd before the call joins the one queue for the file, in order.
 *
 * These may run anywhere their glibc versions may: in a signal handler
 * (async-signal-safe), in a vfork() or CLONE_VM child, which shares the
 * parent's memory but not its fds.  So they enter the engine only when the
 * fd has requests, the calling thread is not inside aiopool (ap_in_lock:
 * a handler that interrupted it would deadlock on its lock) and the engine
 * is this process's (ap_fd_gen, ap_fd_replaced); otherwise they are just the
 * system call.  The engine's close path allocates and frees nothing itself;
 * the notifications of the requests it cancels are delivered on the calling
 * thread, as for any cancel (aiopool(7) says what that means in a signal
 * handler).
 *
 * close() is a cancellation point, as glibc's: it is glibc's close, found
 * once at start-up, after the cancelling; a deferred cancel pending at the
 * call acts before anything is cancelled or closed.
 *
 * The fast path asks whether an fd is O_DIRECT from a per-fd-number cache
 * (ap_fd_direct): every change these calls make to what a number names,
 * and fcntl's F_SETFL (the one call that can set O_DIRECT) and F_DUPFD
 * (a new number), drop the number's cached flags after the system call
 * (ap_fd_flags_changed), so that for them the cache is exact.  fcntl and
 * fcntl64 are interposed for that alone: they are glibc's, then the drop.
 *
 * Programs get these through -laiopool or LD_PRELOAD, ahead of glibc's.
 * Closes and flag changes that do not go through these symbols (inside
 * glibc, such as fclose, close_range, a raw system call, F_SETFL on another
 * descriptor of the same open file description, in this process or
 * another) are not seen: the cache's answers
 * expire after AP_FDFLAGS_TTL_MS for them.
 *
 * Owns next_close, next_fcntl and next_fcntl64, written once by the
 * constructor.  Takes no lock itself (the engine's functions take the
 * engine's).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* glibc's close, a cancellation point; NULL before the constructor ran. */
static int (*next_close)(int fd);
/* glibc's fcntl and fcntl64 (F_SETLKW is a cancellation point); NULL
 * before the constructor ran. */
typedef int fcntl_fn(int fd, int cmd, ...);
static fcntl_fn *next_fcntl, *next_fcntl64;

__attribute__((constructor)) static void fdclose_init(void)
{
	int (*fn)(int) = (int (*)(int))dlsym(RTLD_NEXT, "close");

	ap_store(&next_close, fn);
	ap_store(&next_fcntl, (fcntl_fn *)dlsym(RTLD_NEXT, "fcntl"));
	ap_store(&next_fcntl64, (fcntl_fn *)dlsym(RTLD_NEXT, "fcntl64"));
}

/* glibc's versions of these names: binaries reference close@GLIBC_2.2.5
 * and dup3@GLIBC_2.9, and the version script gives ours the same. */
/* ap_fd_replaced, keeping errno: the caller's system call set it, and a
 * signal handler's close must not change the errno of what it interrupted. */
static void replaced(int fd, uint64_t gen)
{
	int saved = errno;

	ap_fd_replaced(fd, gen);
	errno = saved;
}

AP_EXPORT int close(int fd)
{
	int (*fn)(int) = ap_load(&next_close);
	uint64_t gen;
	int rc;

	pthread_testcancel();   /* a pending cancel acts before anything */
	gen = ap_fd_gen(fd);
	rc = fn ? fn(fd) : (int)syscall(SYS_close, fd);
	ap_fd_flags_changed(fd);   /* even on EINTR or EIO, as below */
	if (gen)   /* even on EINTR or EIO: Linux has closed the fd */
		replaced(fd, gen);
	return rc;
}

int ap_close(int fd)
{
	ap_fd_flags_changed(fd);   /* before: the number is not ours after */
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer follows descriptors through the calls it intercepts:
	 * a close it does not see makes the next pipe on the number look like
	 * a race.  Its close comes first in the chain, and ours after it makes
	 * no difference for aiopool's own numbers. */
	return close(fd);
#else
	return (int)syscall(SYS_close, fd);
#endif
}

AP_EXPORT int dup2(int oldfd, int newfd)
{
	uint64_t gen = ap_fd_gen(newfd);
	int rc = (int)syscall(SYS_dup2, oldfd, newfd);

	if (rc >= 0)
		ap_fd_flags_changed(newfd);
	/* dup2 onto itself closes nothing */
	if (rc >= 0 && gen && oldfd != newfd)
		replaced(newfd, gen);
	return rc;
}

AP_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	uint64_t gen = ap_fd_gen(newfd);
	int rc = (int)syscall(SYS_dup3, oldfd, newfd, flags);

	if (rc >= 0)
		ap_fd_flags_changed(newfd);
	if (rc >= 0 && gen)
		replaced(newfd, gen);
	return rc;
}

/* fcntl through fn (glibc's), then what the cache must hear of: F_SETFL
 * changed fd's flags, F_DUPFD gave a number the cache may still hold a
 * closed file's flags for.  arg is taken as glibc takes it, a pointer's
 * worth whatever cmd is. */
static int fcntl_via(fcntl_fn *fn, int fd, int cmd, void *arg)
{
	int rc = fn ? fn(fd, cmd, arg) : (int)syscall(SYS_fcntl, fd, cmd, arg);
	int saved = errno;

	if (rc >= 0 && cmd == F_SETFL)
		ap_fd_flags_changed(fd);
	else if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		ap_fd_flags_changed(rc);
	errno = saved;
	return rc;
}

AP_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_via(ap_load(&next_fcntl), fd, cmd, arg);
}

AP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_via(ap_load(&next_fcntl64), fd, cmd, arg);
}
