/* aiorun_probe: the program tests/sysaio_run runs under aiopool-run.
 * Built against glibc alone, not linked with aiopool: it is served by
 * aiopool only if aiopool-run preloaded it.
 *
 *   aiorun_probe STATUS [ARG]...
 *
 * Makes one aio_read of a file and waits for it, then prints whether
 * libaiopool is mapped, what aiopool_stats and aiopool_get say (found
 * with dlsym, 0 and -1 when absent), LD_PRELOAD, and each ARG on a line
 * of its own; exits with STATUS. */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

static int mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];
	int found = 0;

	while (f && fgets(line, sizeof line, f))
		found |= strstr(line, "/libaiopool.so") != NULL;
	if (f)
		fclose(f);
	return found;
}

static int read_once(void)
{
	char path[] = "/tmp/aiopool-probe-XXXXXX", buf[4];
	int fd = mkstemp(path);
	struct aiocb cb;
	time_t end = time(NULL) + 10;

	if (fd < 0 || write(fd, "data", 4) != 4)
		return -1;
	unlink(path);
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = 4;
	if (aio_read(&cb) != 0)
		return -1;
	while (aio_error(&cb) == EINPROGRESS && time(NULL) < end)
		;
	close(fd);
	return (int)aio_return(&cb);
}

int main(int argc, char **argv)
{
	int (*stats)(struct aiopool_stats *, unsigned long) =
		(int (*)(struct aiopool_stats *, unsigned long))dlsym(RTLD_DEFAULT, "aiopool_stats");
	long (*get)(int) = (long (*)(int))dlsym(RTLD_DEFAULT, "aiopool_get");
	struct aiopool_stats st = { 0 };
	const char *pre = getenv("LD_PRELOAD");

	if (argc < 2)
		return 2;
	printf("read=%d\n", read_once());
	if (stats)
		stats(&st, sizeof st);
	printf("mapped=%d submitted=%llu threads=%ld fastpath=%ld\n", mapped(),
	       st.submitted, get ? get(AIOPOOL_MAX_THREADS) : -1L,
	       get ? get(AIOPOOL_FASTPATH) : -1L);
	printf("LD_PRELOAD=%s\n", pre ? pre : "(unset)");
	for (int i = 2; i < argc; i++)
		printf("arg=%s\n", argv[i]);
	return atoi(argv[1]);
}
