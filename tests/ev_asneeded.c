/* ev_asneeded: the libev adapter uses aiopool's POSIX functions even when
 * the C library comes first in the program's search order.  This program
 * is linked with --as-needed against libaiopool-ev alone and calls nothing
 * of libaiopool itself, so libaiopool is only a dependency of the adapter,
 * loaded after libc.so.6, whose aio_read@GLIBC_2.34 the ordinary lookup
 * would then find first.  It submits an aiocb through the adapter and
 * checks, through aiopool_stats found at run time, that aiopool took it.
 * Exits 0 on success, 1 on failure, 77 (skip) when the link kept
 * libaiopool as a direct dependency after all. */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <link.h>   /* after ev.h: its <elf.h> defines EV_NONE */

#include "aiopool.h"
#include "aiopool-ev.h"

static long result = -1;
static int calls;

static void done(struct aiopool_ev *aev, long res, void *data)
{
	(void)aev;
	(void)data;
	calls++;
	result = res;
}

static void deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	fprintf(stderr, "ev_asneeded: no completion within 10 s\n");
	exit(1);
	(void)loop;
}

/* Whether libaiopool comes before libc.so.6 in load order, which is the
 * search order: 1, 0, or -1 if either is missing. */
static int order_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	int *state = arg;

	(void)size;
	if (strstr(info->dlpi_name, "libaiopool.so") && *state == -1)
		*state = 1;
	if (strstr(info->dlpi_name, "libc.so")) {
		if (*state == -1)
			*state = 0;
		return 1;
	}
	return 0;
}

static int aiopool_first(void)
{
	int state = -1;

	dl_iterate_phdr(order_cb, &state);
	return state;
}

int main(void)
{
	typedef int stats_fn(struct aiopool_stats *, unsigned long);
	stats_fn *stats = (stats_fn *)dlsym(RTLD_DEFAULT, "aiopool_stats");
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct aiopool_ev *aev;
	struct aiopool_stats before, after;
	struct aiocb cb;
	char buf[64];
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	ev_timer t;

	if (aiopool_first() != 0) {
		printf("ev_asneeded: libaiopool is not loaded after the C library here; skipped\n");
		return 77;
	}
	if (!stats || !loop || fd < 0 || !(aev = aiopool_ev_new(loop))) {
		fprintf(stderr, "ev_asneeded: set-up failed: %s\n", strerror(errno));
		return 1;
	}
	memset(&cb, 0, sizeof cb);
	cb.aio_fildes = fd;
	cb.aio_buf = buf;
	cb.aio_nbytes = sizeof buf;
	stats(&before, sizeof before);
	if (aiopool_ev_submit_aiocb(aev, &cb, LIO_READ, done, NULL) != 0) {
		fprintf(stderr, "ev_asneeded: aiopool_ev_submit_aiocb failed\n");
		return 1;
	}
	ev_timer_init(&t, deadline, 10, 0);
	ev_timer_start(loop, &t);
	ev_unref(loop);
	ev_run(loop, 0);
	stats(&after, sizeof after);
	if (calls != 1 || result != (long)sizeof buf) {
		fprintf(stderr, "ev_asneeded: %d callbacks, result %ld\n", calls, result);
		return 1;
	}
	if (after.submitted != before.submitted + 1) {
		fprintf(stderr, "ev_asneeded: aiopool did not see the aiocb (submitted %llu -> %llu): "
		        "the adapter used the C library's aio_read\n",
		        before.submitted, after.submitted);
		return 1;
	}
	printf("ev_asneeded: the aiocb went to aiopool\n");
	ev_ref(loop);
	ev_timer_stop(loop, &t);
	aiopool_ev_free(aev);
	ev_loop_destroy(loop);
	close(fd);
	return 0;
}
