/* thread.c: how aiopool starts its own threads and sets up the condition
 * variables they sleep on.  Workers (pool.c), notifier threads (notify.c)
 * and the libaio poller (libaio.c) all start here, so that every one of
 * them starts detached with every signal blocked: a signal meant for the
 * program must never run its handler on a thread of ours, and no thread
 * of ours is ever joined.  Timed waits on the condition variables are on
 * CLOCK_MONOTONIC, which a change of the wall clock does not move.
 *
 * Owns no state and no lock.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>

#include "internal.h"

int ap_thread_start(void *(*fn)(void *), void *arg,
		const pthread_attr_t *user, size_t stack)
{
	pthread_attr_t own;
	pthread_t t;
	sigset_t all, old;
	int err, detach = PTHREAD_CREATE_DETACHED;

	sigfillset(&all);
	/* The new thread inherits this mask; ours is put back after. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (user) {
		err = pthread_create(&t, user, fn, arg);
		if (!err && pthread_attr_getdetachstate(user, &detach) == 0 &&
		    detach == PTHREAD_CREATE_JOINABLE)
			pthread_detach(t);
	} else {
		pthread_attr_init(&own);
		pthread_attr_setdetachstate(&own, PTHREAD_CREATE_DETACHED);
		if (stack)
			pthread_attr_setstacksize(&own, stack < (size_t)PTHREAD_STACK_MIN ?
			                          (size_t)PTHREAD_STACK_MIN : stack);
		err = pthread_create(&t, &own, fn, arg);
		pthread_attr_destroy(&own);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

void ap_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}
