/* deadline.h: the tests' one clock and deadline, for the Criterion suites
 * (through common.h) and for the helper programs they run, which have no
 * Criterion. */
#ifndef AIOPOOL_TESTS_DEADLINE_H
#define AIOPOOL_TESTS_DEADLINE_H

#include <time.h>

/* Generous: tests wait for completions, they do not time them. */
#define DEADLINE_MS 10000

/* CLOCK_MONOTONIC in milliseconds. */
static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

#endif
