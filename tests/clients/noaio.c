/* noaio: runs a program in which the kernel's AIO and io_uring system
 * calls fail with ENOSYS, as on a kernel built without them, so that any
 * asynchronous I/O that still works was served in user space (by aiopool
 * under LD_PRELOAD).  A seccomp filter, inherited by every thread and
 * child and kept across execve; PR_SET_NO_NEW_PRIVS lets an unprivileged
 * user install it.
 *
 *   noaio PROGRAM [ARG]...
 * Exit status: PROGRAM's, or 126 if the filter could not be installed,
 * 127 if PROGRAM could not be run. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NOAIO_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NOAIO_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NOAIO_ARCH AUDIT_ARCH_I386
#endif

#ifndef __NR_io_pgetevents
#define __NR_io_pgetevents -1
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup -1
#define __NR_io_uring_enter -1
#define __NR_io_uring_register -1
#endif

#define DENY(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)(nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA))

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
#ifdef NOAIO_ARCH
		/* Another ABI's numbers mean other calls: refuse it whole. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NOAIO_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		DENY(__NR_io_setup), DENY(__NR_io_destroy), DENY(__NR_io_submit),
		DENY(__NR_io_cancel), DENY(__NR_io_getevents), DENY(__NR_io_pgetevents),
		DENY(__NR_io_uring_setup), DENY(__NR_io_uring_enter),
		DENY(__NR_io_uring_register),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof filter / sizeof *filter),
		.filter = filter,
	};

	if (argc < 2) {
		fprintf(stderr, "usage: noaio PROGRAM [ARG]...\n");
		return 126;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		fprintf(stderr, "noaio: cannot install the seccomp filter: %s\n",
		        strerror(errno));
		return 126;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "noaio: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
