/* posix_envprobe: a helper program for posix_pool, linked with libaiopool.
 * The environment variables are read when the library loads, so the test
 * runs this program with the environment it wants and reads its output.
 *
 *   posix_envprobe knobs    prints every knob's value
 *   posix_envprobe load N   keeps N reads in flight, each on its own empty
 *                           pipe, and prints how many the pool runs at once
 *
 * Exits 0, or 1 with a message on stderr; every wait has a deadline. */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"
#include "deadline.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void die(const char *what)
{
	fprintf(stderr, "posix_envprobe: %s\n", what);
	exit(1);
}

static struct aiopool_stats stats(void)
{
	struct aiopool_stats st;

	if (aiopool_stats(&st, sizeof st) < 0)
		die("aiopool_stats failed");
	return st;
}

static int knobs(void)
{
	printf("threads=%ld idle_ms=%ld max_queued=%ld fd_concurrency=%ld cache=%ld "
	       "fastpath=%ld runnable=%ld\n",
	       aiopool_get(AIOPOOL_MAX_THREADS), aiopool_get(AIOPOOL_IDLE_MS),
	       aiopool_get(AIOPOOL_MAX_QUEUED), aiopool_get(AIOPOOL_FD_CONCURRENCY),
	       aiopool_get(AIOPOOL_CACHE), aiopool_get(AIOPOOL_FASTPATH),
	       aiopool_get(AIOPOOL_RUNNABLE));
	return 0;
}

static int load(int n)
{
	int (*p)[2] = calloc(n, sizeof *p);
	struct aiocb *cbs = calloc(n, sizeof *cbs);
	char *bufs = calloc(n, 1);
	long want = aiopool_get(AIOPOOL_MAX_THREADS) < n ? aiopool_get(AIOPOOL_MAX_THREADS) : n;
	long long end = now_ms() + DEADLINE_MS;
	struct aiopool_stats st;

	if (!p || !cbs || !bufs)
		die("out of memory");
	for (int i = 0; i < n; i++) {
		if (pipe(p[i]) < 0)
			die("pipe failed");
		cbs[i].aio_fildes = p[i][0];
		cbs[i].aio_buf = &bufs[i];
		cbs[i].aio_nbytes = 1;
		cbs[i].aio_sigevent.sigev_notify = SIGEV_NONE;
		if (aio_read(&cbs[i]) < 0)
			die("aio_read failed");
	}
	/* Until the pool is as busy as the knob lets it be, then a little
	 * longer, to catch a pool that grows past it. */
	while (st = stats(), st.running < (unsigned long)want) {
		if (now_ms() > end)
			die("the pool never got busy");
		sleep_ms(1);
	}
	sleep_ms(30);
	st = stats();
	printf("running=%lu queued=%lu threads=%lu\n", st.running, st.queued, st.threads);
	for (int i = 0; i < n; i++)
		if (write(p[i][1], "x", 1) != 1)
			die("write failed");
	for (int i = 0; i < n; i++) {
		while (aio_error(&cbs[i]) == EINPROGRESS) {
			if (now_ms() > end)
				die("a read never completed");
			sleep_ms(1);
		}
		close(p[i][0]);
		close(p[i][1]);
	}
	free(p);
	free(cbs);
	free(bufs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "knobs"))
		return knobs();
	if (argc == 3 && !strcmp(argv[1], "load"))
		return load(atoi(argv[2]));
	fprintf(stderr, "usage: posix_envprobe knobs | load N\n");
	return 2;
}
