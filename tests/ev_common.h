/* ev_common.h: helpers for the libev adapter's suites (tests/ev_*.c), on
 * top of common.h: a loop per test, ev_run under a watchdog, and a record
 * per request of how its callback was called. */
#ifndef AIOPOOL_TEST_EV_COMMON_H
#define AIOPOOL_TEST_EV_COMMON_H

#include "common.h"

#include <ev.h>
#include <libaio.h>

#include "aiopool-ev.h"

/* ---- the loop --------------------------------------------------------------- */

/* A watchdog: a timer that does not keep the loop alive by itself, and
 * breaks it after DEADLINE_MS. */
struct watchdog {
	ev_timer t;
	bool fired;
};

static inline void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct watchdog *wd = w->data;

	(void)revents;
	wd->fired = true;
	ev_ref(loop);   /* libev stopped it: balance the ev_unref */
	ev_break(loop, EVBREAK_ALL);
}

static pthread_t loop_thread;

/* A loop of its own; the calling thread is the one that runs it. */
static inline struct ev_loop *new_loop(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);

	loop_thread = pthread_self();

	cr_assert_not_null(loop, "ev_loop_new failed");
	return loop;
}

/* Runs the loop until ev_run returns on its own: when nothing referenced
 * is active any more.  Fails the test after DEADLINE_MS. */
static inline void run_loop(struct ev_loop *loop, const char *what)
{
	struct watchdog wd = { .fired = false };

	ev_timer_init(&wd.t, watchdog_cb, DEADLINE_MS / 1000.0, 0);
	wd.t.data = &wd;
	ev_timer_start(loop, &wd.t);
	ev_unref(loop);
	ev_run(loop, 0);
	if (!wd.fired) {
		ev_ref(loop);
		ev_timer_stop(loop, &wd.t);
	}
	cr_assert(!wd.fired, "ev_run did not return within %d ms: %s", DEADLINE_MS, what);
}

/* ---- what a callback saw ---------------------------------------------------- */

struct rec {
	int calls;
	long res;
	bool other_thread;     /* a call came on a thread not the loop's */
	struct aiopool_ev *aev;
	long pending;          /* aiopool_ev_pending during the call */
	void (*then)(struct rec *r);   /* runs inside the callback */
	void *arg;
};

static inline void rec_cb(struct aiopool_ev *aev, long res, void *data)
{
	struct rec *r = data;

	r->calls++;
	r->res = res;
	r->aev = aev;
	r->pending = aiopool_ev_pending(aev);
	if (!pthread_equal(pthread_self(), loop_thread))
		r->other_thread = true;
	if (r->then)
		r->then(r);
}

static inline void assert_rec(const struct rec *r, long res, const char *what)
{
	cr_assert_eq(r->calls, 1, "%s: callback ran %d times", what, r->calls);
	cr_assert(!r->other_thread, "%s: callback ran outside the loop thread", what);
	cr_assert_eq(r->res, res, "%s: result %ld (%s), expected %ld", what, r->res,
	             r->res < 0 ? strerror((int)-r->res) : "bytes", res);
}

/* Writes one byte to fd after ms, from a thread of its own. */
struct later {
	pthread_t t;
	int fd;
	long ms;
};

static inline void *later_run(void *arg)
{
	struct later *l = arg;

	sleep_ms(l->ms);
	if (write(l->fd, "x", 1) != 1)
		abort();
	return NULL;
}

static inline void later_start(struct later *l, int fd, long ms)
{
	l->fd = fd;
	l->ms = ms;
	cr_assert_eq(pthread_create(&l->t, NULL, later_run, l), 0);
}

static inline void later_join(struct later *l)
{
	pthread_join(l->t, NULL);
}

#endif
