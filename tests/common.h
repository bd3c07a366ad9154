/* common.h: helpers shared by the Criterion suites.  Every wait here has a
 * deadline and fails the test with a message instead of hanging. */
#ifndef AIOPOOL_TEST_COMMON_H
#define AIOPOOL_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <aio.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

/* Generous: tests wait for completions, they do not time them. */
#define DEADLINE_MS 10000

static inline long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Waits until cond holds, polling; fails the test after DEADLINE_MS. */
#define wait_until(cond, ...) do { \
	long long wu_end_ = now_ms() + DEADLINE_MS; \
	while (!(cond)) { \
		if (now_ms() > wu_end_) \
			cr_assert_fail("timed out waiting for " #cond ": " __VA_ARGS__); \
		sleep_ms(1); \
	} \
} while (0)

/* Waits for one aiocb to leave EINPROGRESS; returns aio_error's value. */
static inline int wait_aio(const struct aiocb *cb)
{
	wait_until(aio_error(cb) != EINPROGRESS, "aiocb %p still in progress", (void *)cb);
	return aio_error(cb);
}

static inline struct aiopool_stats stats_now(void)
{
	struct aiopool_stats st;
	cr_assert_eq(aiopool_stats(&st, sizeof st), 0);
	return st;
}

/* A temporary regular file of n bytes whose byte i is pattern(i); unlinked
 * at once, so nothing is left behind. */
static inline unsigned char pattern(long long i)
{
	return (unsigned char)(i * 131 + (i >> 8) * 7 + 1);
}

static inline int temp_file(size_t n, int flags)
{
	char path[] = "/tmp/aiopool-test-XXXXXX";
	int fd = mkostemp(path, flags);
	cr_assert_geq(fd, 0, "mkostemp: %s", strerror(errno));
	unlink(path);
	if (n) {
		unsigned char *buf = malloc(n);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern((long long)i);
		cr_assert_eq(pwrite(fd, buf, n, 0), (ssize_t)n);
		free(buf);
	}
	return fd;
}

static inline void fill_cb(struct aiocb *cb, int fd, void *buf, size_t n, off_t off)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = n;
	cb->aio_offset = off;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

#endif
