/* sysaio_child: a helper program for tests/sysaio_stats, linked with
 * libaiopool.  The AIOPOOL_* variables are read when the library loads, so
 * the test runs this program with the environment it wants.
 *
 *   sysaio_child knobs         prints AT_SECURE and the knobs the
 *                              environment may set
 *   sysaio_child read N HOW    prints its pid, makes N POSIX reads of a
 *                              file (each waited for), then leaves by HOW:
 *                              return (from main), exit, _exit, _Exit, or
 *                              atexit (exit, whose handler calls _exit)
 *   sysaio_child write N       prints its pid, queues N writes of 64 KiB to
 *                              a file and returns from main at once
 *   sysaio_child fork N M      prints its pid, makes N reads, forks a child
 *                              that prints its pid, makes M reads and calls
 *                              _exit(0); waits for it and returns
 *
 * Exits 0, or 1 with a message on stderr; every wait has a deadline. */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"
#include "deadline.h"

static void die(const char *what)
{
	fprintf(stderr, "sysaio_child: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* LeakSanitizer's check at exit cannot stop the threads of a set-user-ID
 * process (it is not allowed to trace it), and fails the run: it is off
 * there (the hook is LSan's; unused otherwise). */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return getauxval(AT_SECURE) != 0;
}

/* The knobs as this process sees them, and the library it loaded. */
static int knobs(void)
{
	Dl_info di = { 0 };

	if (!dladdr((void *)aiopool_get, &di) || !di.dli_fname)
		di.dli_fname = "?";
	printf("secure=%lu threads=%ld syscall_setup=%ld lib=%s\n", getauxval(AT_SECURE),
	       aiopool_get(AIOPOOL_MAX_THREADS), aiopool_get(AIOPOOL_SYSCALL_SETUP),
	       di.dli_fname);
	fflush(stdout);
	return 0;
}

static void say_pid(void)
{
	printf("pid=%d\n", (int)getpid());
	fflush(stdout);
}

/* n reads of a temporary file, one after the other. */
static void reads(int n)
{
	char path[] = "/tmp/aiopool-child-XXXXXX", buf[16];
	int fd = mkstemp(path);

	if (fd < 0)
		die("mkstemp");
	unlink(path);
	if (write(fd, "0123456789abcdef", 16) != 16)
		die("write");
	for (int i = 0; i < n; i++) {
		struct aiocb cb;
		long long end = now_ms() + DEADLINE_MS;

		memset(&cb, 0, sizeof cb);
		cb.aio_fildes = fd;
		cb.aio_buf = buf;
		cb.aio_nbytes = sizeof buf;
		cb.aio_sigevent.sigev_notify = SIGEV_NONE;
		if (aio_read(&cb) != 0)
			die("aio_read");
		while (aio_error(&cb) == EINPROGRESS)
			if (now_ms() > end)
				die("the read did not finish");
		if (aio_return(&cb) != 16)
			die("aio_return");
	}
	close(fd);
}

/* n writes queued on a temporary file, not waited for: exit finishes them. */
static int writes(int n)
{
	static char buf[65536];
	char path[] = "/tmp/aiopool-child-XXXXXX";
	struct aiocb *cbs = calloc((size_t)n, sizeof *cbs);
	int fd = mkstemp(path);

	if (fd < 0 || !cbs)
		die("mkstemp");
	unlink(path);
	say_pid();
	for (int i = 0; i < n; i++) {
		cbs[i].aio_fildes = fd;
		cbs[i].aio_buf = buf;
		cbs[i].aio_nbytes = sizeof buf;
		cbs[i].aio_offset = (off_t)i * (off_t)sizeof buf;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		if (aio_write(&cbs[i]) != 0)
			die("aio_write");
	}
	return 0;
}

static void exit_from_handler(void)
{
	_exit(0);
}

static int leave(const char *how)
{
	if (!strcmp(how, "exit"))
		exit(0);
	if (!strcmp(how, "_exit"))
		_exit(0);
	if (!strcmp(how, "_Exit"))
		_Exit(0);
	if (!strcmp(how, "atexit")) {
		atexit(exit_from_handler);
		exit(0);
	}
	return 0;
}

static int forked(int n, int m)
{
	pid_t pid;
	int status;

	say_pid();
	reads(n);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		say_pid();
		reads(m);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		die("the child failed");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "knobs"))
		return knobs();
	if (argc == 4 && !strcmp(argv[1], "read")) {
		say_pid();
		reads(atoi(argv[2]));
		return leave(argv[3]);
	}
	if (argc == 3 && !strcmp(argv[1], "write"))
		return writes(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "fork"))
		return forked(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: sysaio_child knobs | read N HOW | write N | fork N M\n");
	return 2;
}
