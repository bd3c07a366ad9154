/* wait.c: wait channels: a sequence number that waiters sleep on with a
 * futex and wakers bump.  Used by aio_suspend, lio_listio(LIO_WAIT) and
 * io_getevents.  A waiter keeps no state anywhere but its own stack frame
 * and the channel's waiter count, so a wait interrupted by a signal leaves
 * nothing behind.
 *
 * Owns no lock.  The waiter count and the sequence are sequentially
 * consistent atomics: a waiter counts itself, then re-reads seq; a waker
 * bumps seq, then reads the count.  One of the two sees the other.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

void ap_chan_wake(struct ap_chan *c)
{
	__atomic_add_fetch(&c->seq, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->waiters, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &c->seq, FUTEX_WAKE_PRIVATE, INT_MAX,
		        NULL, NULL, 0);
}

/* Spinning pays only when what we wait for runs on another CPU right now.
 * On a busy machine it does not: the spinner takes the CPU from the very
 * thread it waits for (measured: a QD1 round trip five times slower).  So
 * each thread keeps its own limit, as glibc's adaptive mutex does: a spin
 * that succeeds after t ns sets it to about 2t; one that fails halves it;
 * below SPIN_MIN_NS the thread stops spinning and tries again only once in
 * SPIN_RETRY calls. */
#define SPIN_MIN_NS 1000L
#define SPIN_RETRY 32

static __thread long spin_limit = AP_SPIN_NS;
static __thread unsigned spin_skipped;

static long elapsed_ns(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + t.tv_nsec - t0->tv_nsec;
}

bool ap_spin(bool (*cond)(void *arg), void *arg)
{
	struct timespec t0;
	long limit = spin_limit, e;

	if (ap_ncpus < 2)
		return cond(arg);
	if (limit < SPIN_MIN_NS) {
		if (++spin_skipped % SPIN_RETRY)
			return cond(arg);
		limit = SPIN_MIN_NS;   /* a short try: has the machine calmed? */
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (int i = 0; i < 32; i++) {
			if (cond(arg)) {
				e = elapsed_ns(&t0);
				spin_limit = 2 * e < SPIN_MIN_NS ? SPIN_MIN_NS :
				             2 * e > AP_SPIN_NS ? AP_SPIN_NS : 2 * e;
				return true;
			}
			__builtin_ia32_pause();
		}
		if (elapsed_ns(&t0) > limit) {
			spin_limit = limit / 2;
			return cond(arg);
		}
	}
}

struct chan_moved {
	struct ap_chan *c;
	uint32_t seen;
};

static bool chan_moved(void *arg)
{
	struct chan_moved *m = arg;

	return ap_chan_seq(m->c) != m->seen;
}

static void unwait(void *arg)
{
	struct ap_chan *c = arg;

	__atomic_sub_fetch(&c->waiters, 1, __ATOMIC_SEQ_CST);
}

static long futex_wait(struct ap_chan *c, uint32_t seen, const struct timespec *deadline)
{
	return syscall(SYS_futex, &c->seq, FUTEX_WAIT_BITSET_PRIVATE, seen,
	               deadline, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* A cancellation point: the only thing to undo is our place in the waiter
 * count. */
static long futex_wait_cancellable(struct ap_chan *c, uint32_t seen,
		const struct timespec *deadline)
{
	long rc;
	int type;

	pthread_cleanup_push(unwait, c);
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &type);
	rc = futex_wait(c, seen, deadline);
	pthread_setcanceltype(type, NULL);
	pthread_cleanup_pop(0);
	return rc;
}

static int chan_wait(struct ap_chan *c, uint32_t seen,
		const struct timespec *deadline, bool cancellable)
{
	struct timespec far;
	bool forever = !deadline;
	int saved = errno, err = 0;
	long rc;

	/* A completion often comes within microseconds: catching it here
	 * saves both the sleep and the waker's futex call. */
	if (ap_spin(chan_moved, &(struct chan_moved){ c, seen }))
		return 0;

	/* Always wait with a deadline: the kernel then reports a signal
	 * handler's run as EINTR, SA_RESTART or not.  Without one, the wait
	 * ends after an hour as a spurious wake-up; callers loop. */
	if (forever) {
		ap_deadline(&far, &(struct timespec){ 3600, 0 });
		deadline = &far;
	}
	__atomic_add_fetch(&c->waiters, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&c->seq, __ATOMIC_SEQ_CST) == seen) {
		rc = cancellable ? futex_wait_cancellable(c, seen, deadline)
		                 : futex_wait(c, seen, deadline);
		if (rc < 0 && errno == EINTR)
			err = EINTR;
		else if (rc < 0 && errno == ETIMEDOUT && !forever)
			err = ETIMEDOUT;
	}
	unwait(c);
	errno = saved;
	return err;
}

int ap_chan_wait(struct ap_chan *c, uint32_t seen, const struct timespec *deadline)
{
	return chan_wait(c, seen, deadline, false);
}

int ap_chan_wait_cancellable(struct ap_chan *c, uint32_t seen,
		const struct timespec *deadline)
{
	return chan_wait(c, seen, deadline, true);
}

void ap_deadline(struct timespec *d, const struct timespec *rel)
{
	time_t sec = rel->tv_sec > (1L << 40) ? (1L << 40) : rel->tv_sec;

	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += sec;   /* clamped: about 35,000 years is forever enough */
	d->tv_nsec += rel->tv_nsec;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

void ap_deadline_ms(struct timespec *d, int ms)
{
	ap_deadline(d, &(struct timespec){ ms / 1000, (ms % 1000) * 1000000L });
}

bool ap_timespec_valid(const struct timespec *ts)
{
	return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L;
}
