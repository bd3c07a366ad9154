/* fdclose.c: closing an fd with requests queued on it.
 *
 * Requests are queued by fd number, as glibc's are.  If a program closes
 * an fd while requests wait on it and opens another file, which gets the
 * same number, those requests would run on the new file (glibc bug 14942).
 * So aiopool's close(), dup2() and dup3() first cancel what is still queued
 * on the fd being closed (POSIX allows close to cancel; the requests end
 * with ECANCELED, libaio ones with a -ECANCELED event).  Requests already
 * running finish on the file they started on: the kernel holds it open for
 * them, "as if the close had not yet occurred".
 *
 * Programs get these through -laiopool or LD_PRELOAD, ahead of glibc's.
 * For an fd without requests, they cost one lock-free look-up and stay
 * async-signal safe.  Closes that do not go through these symbols (inside
 * glibc, such as fclose, or a raw system call) are not seen.
 *
 * Owns nothing and takes no lock itself (ap_fd_closing takes the engine's).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* glibc's versions of these names: binaries reference close@GLIBC_2.2.5
 * and dup3@GLIBC_2.9, and the version script gives ours the same. */
__attribute__((visibility("default"))) int close(int fd)
{
	ap_fd_closing(fd);
	return (int)syscall(SYS_close, fd);
}

__attribute__((visibility("default"))) int dup2(int oldfd, int newfd)
{
	/* dup2 onto itself closes nothing */
	if (oldfd != newfd && fcntl(oldfd, F_GETFD) >= 0)
		ap_fd_closing(newfd);
	return (int)syscall(SYS_dup2, oldfd, newfd);
}

__attribute__((visibility("default"))) int dup3(int oldfd, int newfd, int flags)
{
	if (oldfd != newfd && fcntl(oldfd, F_GETFD) >= 0)
		ap_fd_closing(newfd);
	return (int)syscall(SYS_dup3, oldfd, newfd, flags);
}
