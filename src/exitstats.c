/* exitstats.c: AIOPOOL_STATS, one line of aiopool_stats(3) when the process
 * leaves.
 *
 *   AIOPOOL_STATS=1      the line goes to standard error
 *   AIOPOOL_STATS=/PATH  the line is appended to PATH, a regular file
 *                        (made mode 0600 if missing; a symbolic link as
 *                        its last component is not followed)
 *
 * Anything else, or a privileged process (secure_getenv: set-user-ID,
 * set-group-ID, file capabilities), prints nothing.  The variable is read
 * once, at load.
 *
 * When: at exit() and return from main, by a destructor that runs after
 * pool.c's (which finishes the requests on files first), so the counts
 * include them; and at _exit and _Exit called by the program, which this
 * file interposes.  A forked child that leaves by either way prints its
 * own line (its counts start at the fork).  glibc's exit() reaches _exit
 * without going through the interposed symbol, and the line is printed at
 * most once per process anyway (`printed').  Nothing is printed by a
 * vfork or CLONE_VM child (it shares its parent's memory and engine), by
 * a signal handler that interrupted aiopool on its thread (ap_in_lock:
 * the engine's lock may be that thread's), on death by a signal, on
 * execve, or on a raw exit_group system call.
 *
 * The line is formatted on the stack and written with one write(2): no
 * allocation, nothing that is not async-signal-safe, since _exit may be
 * called from a signal handler or a child of a multithreaded fork.
 *
 * Owns `cfg', written once by the constructor, and `printed' (atomic).
 * Takes no lock but the engine's, through aiopool_stats.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aiopool.h"
#include "internal.h"

enum { TO_NONE, TO_STDERR, TO_FILE };

static struct {
	int to;
	char path[PATH_MAX];
	void (*next_exit)(int);   /* the C library's _exit */
} cfg;

/* The pid of the process that printed its line, or 0. */
static pid_t printed;

struct line {
	char buf[512];
	size_t len;
};

static void put_str(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof l->buf - l->len)
		n = sizeof l->buf - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_num(struct line *l, const char *name, unsigned long long v)
{
	char digits[24];
	int i = (int)sizeof digits;

	digits[--i] = '\0';
	do
		digits[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	put_str(l, name);
	put_str(l, digits + i);
}

static void format(struct line *l, pid_t pid, const struct aiopool_stats *st)
{
	l->len = 0;
	put_num(l, "aiopool: pid=", (unsigned long long)pid);
	put_num(l, " threads=", st->threads);
	put_num(l, " idle_threads=", st->idle_threads);
	put_num(l, " queued=", st->queued);
	put_num(l, " running=", st->running);
	put_num(l, " submitted=", st->submitted);
	put_num(l, " completed=", st->completed);
	put_num(l, " cancelled=", st->cancelled);
	put_num(l, " fastpath=", st->fastpath);
	put_num(l, " threads_created=", st->threads_created);
	put_num(l, " notify_failed=", st->notify_failed);
	if (l->len == sizeof l->buf)
		l->len--;
	l->buf[l->len++] = '\n';
}

/* Appends the line to cfg.path, a regular file, with one write. */
static void write_file(const struct line *l)
{
	int fd = open(cfg.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	              O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		(void)!write(fd, l->buf, l->len);
	ap_close(fd);
}

/* Prints this process's line, if it is to and has not yet. */
static void print_stats(void)
{
	struct aiopool_stats st;
	struct line l;
	pid_t me, seen;
	int saved = errno;

	if (cfg.to == TO_NONE || ap_in_lock() || !ap_engine_here())
		return;
	me = (pid_t)syscall(SYS_getpid);
	seen = ap_load(&printed);
	if (seen == me || !__atomic_compare_exchange_n(&printed, &seen, me, false,
	                                               __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	if (aiopool_stats(&st, sizeof st) == 0) {
		format(&l, me, &st);
		if (cfg.to == TO_STDERR)
			(void)!write(STDERR_FILENO, l.buf, l.len);
		else
			write_file(&l);
	}
	errno = saved;
}

__attribute__((constructor)) static void exitstats_init(void)
{
	const char *v = secure_getenv("AIOPOOL_STATS");

	cfg.next_exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
	if (!v)
		return;
	if (!strcmp(v, "1")) {
		cfg.to = TO_STDERR;
	} else if (v[0] == '/' && strlen(v) < sizeof cfg.path) {
		strcpy(cfg.path, v);
		cfg.to = TO_FILE;
	}
}

/* Priority 101, the lowest: destructors with a priority run after those
 * without (pool.c's drain) and among themselves the lowest last. */
__attribute__((destructor(101))) static void exitstats_fini(void)
{
	print_stats();
}

/* _exit@GLIBC_2.2.5 and _Exit@GLIBC_2.2.5 (src/libaiopool.map). */
AP_EXPORT __attribute__((noreturn)) void _exit(int status)
{
	void (*next)(int) = cfg.next_exit;

	print_stats();
	if (next)
		next(status);
	for (;;)   /* before the constructor ran, or no C library's */
		syscall(SYS_exit_group, status);
}

extern __typeof(_exit) _Exit __attribute__((alias("_exit"), AP_EXPORT_ATTR));
