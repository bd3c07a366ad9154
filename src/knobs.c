/* knobs.c: the knobs of aiopool_set and aiopool_get: one table gives each
 * its AIOPOOL_* number, its environment variable, its range and its
 * variable in ap_knobs, and setting, getting and reading the environment
 * at start-up all go through it.  What a change makes the engine do (wake
 * idle workers, start more, trim the request cache) is aiopool_set's, in
 * pool.c.
 *
 * Owns ap_knobs: atomics, read anywhere without a lock; written by
 * aiopool_set under engine.lock and by the start-up before any thread.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "aiopool.h"
#include "internal.h"

struct ap_knobs ap_knobs = {
	.max_threads = 20,        /* glibc's default */
	.idle_ms = 1000,          /* glibc's default */
	.max_queued = 1L << 20,
	.fd_concurrency = 16,
	.cache = 64,              /* glibc's aio_num default */
	.fastpath = 1,
	.runnable = 1,            /* set to the online CPUs at start-up */
};

/* Every knob of aiopool_set and aiopool_get, indexed by its AIOPOOL_*
 * number: its environment variable (read once, at start-up), its range
 * and its variable. */
static const struct knob_def {
	const char *env;
	long min, max;
	long *val;
} knob_defs[] = {
	[AIOPOOL_MAX_THREADS] = { "AIOPOOL_THREADS", 1, 1024, &ap_knobs.max_threads },
	[AIOPOOL_IDLE_MS] = { "AIOPOOL_IDLE_MS", -1, INT_MAX, &ap_knobs.idle_ms },
	[AIOPOOL_MAX_QUEUED] = { "AIOPOOL_MAX_QUEUED", 1, 1L << 30, &ap_knobs.max_queued },
	[AIOPOOL_FD_CONCURRENCY] = { "AIOPOOL_FD_CONCURRENCY", 1, 1024,
	                             &ap_knobs.fd_concurrency },
	[AIOPOOL_CACHE] = { "AIOPOOL_CACHE", 0, 1L << 20, &ap_knobs.cache },
	[AIOPOOL_FASTPATH] = { "AIOPOOL_FASTPATH", 0, 1, &ap_knobs.fastpath },
	[AIOPOOL_RUNNABLE] = { "AIOPOOL_RUNNABLE", 1, 1024, &ap_knobs.runnable },
	[AIOPOOL_SYSCALL_SETUP] = { "AIOPOOL_SYSCALL_SETUP", 0, 1,
	                            &ap_knobs.syscall_setup },
};
#define NKNOBS (int)(sizeof knob_defs / sizeof knob_defs[0])

/* The knob numbered k, or NULL if there is none. */
static const struct knob_def *knob_def(int k)
{
	return k >= 0 && k < NKNOBS && knob_defs[k].val ? &knob_defs[k] : NULL;
}

bool ap_knob_ok(int k, long v)
{
	const struct knob_def *d = knob_def(k);

	return d && v >= d->min && v <= d->max;
}

void ap_knob_store(int k, long v)
{
	ap_store(knob_defs[k].val, v);
}

AP_EXPORT long aiopool_get(int k)
{
	const struct knob_def *d = knob_def(k);

	if (!d) {
		errno = EINVAL;
		return -1;
	}
	return ap_load_relaxed(d->val);
}

/* Sets knob k from its environment variable, if that holds a number in
 * its range (else the variable is ignored, as aiopool(7) says).
 * secure_getenv: a set-user-ID or otherwise privileged program is not
 * tuned by its caller's environment. */
static void env_knob(int k)
{
	const char *s = secure_getenv(knob_defs[k].env);
	char *end;
	long v;

	if (!s || !*s)
		return;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || !ap_knob_ok(k, v))
		return;
	ap_knob_store(k, v);
}

void ap_knobs_init(int ncpus)
{
	ap_knob_store(AIOPOOL_RUNNABLE, ncpus);
	for (int k = 0; k < NKNOBS; k++)
		if (knob_def(k))
			env_knob(k);
}
