/* apstats: a preloadable probe for tests/clients/run.sh.  Loaded beside
 * libaiopool.so, it appends one line per process to the file named by
 * AIOPOOL_CLIENTS_STATS when the process ends (exit, _exit or _Exit):
 *   pid=N submitted=S completed=C
 * from aiopool_stats(3), or "pid=N no-aiopool" when aiopool is not loaded,
 * so the harness can tell that aiopool (and not glibc or the kernel)
 * served a program's asynchronous I/O.  A process killed by a signal
 * writes nothing.  Each line is one write(2) on an O_APPEND descriptor,
 * so processes never interleave. */
#define _GNU_SOURCE
#include <aiopool.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int stats_fn(struct aiopool_stats *, unsigned long);

static void report(void)
{
	const char *path = getenv("AIOPOOL_CLIENTS_STATS");
	stats_fn *stats;
	struct aiopool_stats st;
	char line[160];
	int fd, n;

	if (!path || !*path)
		return;
	stats = (stats_fn *)dlsym(RTLD_DEFAULT, "aiopool_stats");
	if (stats && stats(&st, sizeof st) == 0)
		n = snprintf(line, sizeof line, "pid=%ld submitted=%llu completed=%llu\n",
		             (long)getpid(), st.submitted, st.completed);
	else
		n = snprintf(line, sizeof line, "pid=%ld no-aiopool\n", (long)getpid());
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n) {
		/* nothing to do: the harness sees the line missing */
	}
	close(fd);
}

/* An atexit handler registered from a constructor runs before any
 * library's destructor, so aiopool is still whole when it is read. */
__attribute__((constructor)) static void apstats_init(void)
{
	atexit(report);
}

/* Programs that fork workers (stress-ng) end them with _exit. */
void _exit(int status)
{
	report();
	syscall(SYS_exit_group, status);
	for (;;)
		;
}

void _Exit(int status)
{
	_exit(status);
}
