/* poller.c: the libaio front end's POLL poller: one thread that poll()s
 * every waiting IO_CMD_POLL request, so that none occupies a worker.  A
 * POLL never reaches the engine: it completes inline when its fd is ready
 * at submission, or here, through ap_complete_unqueued.
 *
 * Owns `poller` below (its list of waiting requests, linked through their
 * la_req's plink; the round; the wake-up pipe; whether the thread
 * runs) and, for each waiting request, its links, round and slot: all
 * under poller.lock.  poller.lock is taken alone, never across an engine
 * call; under it no request's I/O and no user code runs, only work on the
 * front end's own descriptors and the thread's start (internal.h has the
 * order, and fork's exception: libaio's prepare hook takes it after
 * reg.lock).
 *
 * A waiting POLL request is on poller.list, through its own link
 * (la_req.plink).  For each round of poll() the thread notes in the
 * requests it polls the round number (la_req.round) and their slot
 * (la_req.slot): after poll() returns it looks only at requests still on
 * the list and polled in this round, so a request cancelled meanwhile is
 * never touched.
 *
 * A waiting POLL polls the file it was submitted on, as the kernel's holds
 * a reference to it: r.fd is a duplicate of the program's fd taken at
 * submission (la_req.poll_own), so closing the program's fd and reusing
 * its number changes nothing.  Without a descriptor free for the duplicate
 * it polls the program's number.  Either way, before each round and before
 * a result is taken, the poller checks that r.fd still names the file it
 * did at submission; one that does not (the program closed it, or closed
 * our duplicate, perhaps reusing the number) ends with -ECANCELED, as
 * aiopool's close() ends the requests queued on an fd.
 *
 * The wake-up is a pipe (poller.wake, checked like any descriptor of ours,
 * made again if the program closed it); without one the poller polls every
 * POLLER_TICK_MS until it can make one.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "laio.h"

#define POLLER_TICK_MS 10

static struct {
	pthread_mutex_t lock;
	struct ap_dlist list;   /* of la_req, through plink */
	size_t n;
	uint64_t round;
	struct wakepipe wake;  /* the list changed */
	bool started;
} poller = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = { -1, -1, { 0, 0 } } };

/* The request whose plink n is, or NULL. */
static struct la_req *poll_entry(struct ap_dnode *n)
{
	return n ? AP_DLIST_ENTRY(n, struct la_req, plink) : NULL;
}

static struct la_req *poll_next(const struct la_req *l)
{
	return poll_entry(l->plink.next);
}

/* Under poller.lock. */
static void poll_link(struct la_req *l)
{
	l->round = 0;
	ap_dlist_push_back(&poller.list, &l->plink);
	poller.n++;
}

/* Under poller.lock. */
static void poll_unlink(struct la_req *l)
{
	ap_dlist_unlink(&poller.list, &l->plink);
	poller.n--;
}

/* Under poller.lock: the poller's list changed. */
static void poller_kick_locked(void)
{
	ap_wake_signal(&poller.wake);
}

/* Does a POLL's fd still name the file it was submitted on? */
static bool poll_fd_ok(const struct la_req *l)
{
	return ap_fdid_same(l->r.fd, l->poll_dev, l->poll_ino);
}

/* Under poller.lock: takes l off the list, onto *donep's chain, with its
 * result. */
static void poll_done_locked(struct la_req *l, ssize_t res, int err,
		struct ap_req ***donep)
{
	poll_unlink(l);
	l->r.res = res;
	l->r.err = err;
	l->r.notify_next = NULL;
	**donep = &l->r;
	*donep = &l->r.notify_next;
}

/* Under poller.lock: fills pfd (room for cap) for one round: the wake-up,
 * then each POLL whose fd is still its file; the others end on *donep. */
static size_t poller_fill(struct pollfd *pfd, size_t cap, uint64_t round,
		struct ap_req ***donep)
{
	struct la_req *l, *next;
	size_t n = 1;

	if (!ap_wake_ok(&poller.wake)) {   /* the program closed it */
		ap_wake_close(&poller.wake);
		ap_wake_open(&poller.wake);
	}
	pfd[0] = (struct pollfd){ poller.wake.rfd, POLLIN, 0 };
	for (l = poll_entry(poller.list.head); l && n < cap; l = next) {
		next = poll_next(l);
		if (!poll_fd_ok(l)) {
			poll_done_locked(l, -1, ECANCELED, donep);
			continue;
		}
		l->round = round;
		l->slot = n;
		pfd[n++] = (struct pollfd){ l->r.fd, l->poll_events, 0 };
	}
	return n;
}

/* Under poller.lock: the POLLs of this round that poll() found ready (on
 * their own file: checked again) go onto *donep. */
static void poller_collect(const struct pollfd *pfd, uint64_t round,
		struct ap_req ***donep)
{
	struct la_req *l, *next;

	for (l = poll_entry(poller.list.head); l; l = next) {
		next = poll_next(l);
		if (l->round != round || !pfd[l->slot].revents)
			continue;
		if (poll_fd_ok(l))
			poll_done_locked(l, pfd[l->slot].revents, 0, donep);
		else
			poll_done_locked(l, -1, ECANCELED, donep);
	}
}

/* Completes a chain of finished POLLs, with poller.lock released. */
static void poller_complete(struct ap_req *done)
{
	struct ap_req *r, *next;

	if (!done)
		return;
	ap_unlock(&poller.lock);
	for (r = done; r; r = next) {
		next = r->notify_next;
		ap_complete_unqueued(r);
	}
	ap_lock(&poller.lock);
}

static void *poller_main(void *arg)
{
	struct pollfd *pfd = NULL;
	size_t cap = 0;

	(void)arg;
	ap_lock(&poller.lock);
	for (;;) {
		struct ap_req *done = NULL, **donep = &done;
		uint64_t round = ++poller.round;
		size_t n;
		int rc;

		if (cap < poller.n + 1) {
			size_t c = (poller.n + 1) * 2;
			struct pollfd *p = realloc(pfd, c * sizeof *p);
			if (p) {
				pfd = p;
				cap = c;
			}
		}
		if (!pfd) {   /* no memory yet: try again shortly */
			ap_unlock(&poller.lock);
			poll(NULL, 0, POLLER_TICK_MS);
			ap_lock(&poller.lock);
			continue;
		}
		n = poller_fill(pfd, cap, round, &donep);
		poller_complete(done);
		if (done)
			continue;   /* the list changed meanwhile */
		ap_unlock(&poller.lock);
		rc = poll(pfd, (nfds_t)n, pfd[0].fd < 0 ? POLLER_TICK_MS : -1);
		ap_lock(&poller.lock);
		if (pfd[0].revents)
			ap_wake_drain(&poller.wake);
		if (rc <= 0)
			continue;
		poller_collect(pfd, round, &donep);
		poller_complete(done);
	}
	return NULL;
}

/* Under poller.lock: starts the thread if it is not there.  0 or errno. */
static int poller_start_locked(void)
{
	if (poller.started)
		return 0;
	if (poller.wake.rfd < 0)
		ap_wake_open(&poller.wake);   /* without, the poller ticks */
	if (ap_thread_start(poller_main, NULL, NULL, 64 * 1024) != 0)
		return EAGAIN;
	poller.started = true;
	return 0;
}

/* l polls a duplicate of the program's fd, the file itself (see above);
 * or, without a descriptor free for one, the program's number.  Notes what
 * it names, for poll_fd_ok.  false if fd is not open. */
static bool poll_take_fd(struct la_req *l)
{
	struct fdid id;
	int d = ap_fd_dup(l->r.fd);

	l->poll_own = d >= 0;
	if (d >= 0)
		l->r.fd = d;
	if (!ap_fdid_take(l->r.fd, &id)) {
		if (d >= 0)
			ap_close(d);
		return false;
	}
	l->poll_dev = id.dev;
	l->poll_ino = id.ino;
	return true;
}

/* Closes a POLL's duplicate, if it still is ours. */
void ap_poll_drop_fd(struct la_req *l)
{
	if (l->poll && l->poll_own) {
		if (poll_fd_ok(l))
			ap_close(l->r.fd);
		l->poll_own = false;
	}
}

/* Queues a POLL request: completes it at once if its fd is ready, else
 * hands it to the poller.  0 or an errno value (l is then still ours). */
int ap_poll_submit(struct la_req *l)
{
	struct pollfd p = { l->r.fd, l->poll_events, 0 };
	int err;

	if (poll(&p, 1, 0) > 0) {
		l->r.res = p.revents;
		l->r.err = 0;
		ap_complete_unqueued(&l->r);
		return 0;
	}
	if (!poll_take_fd(l))
		return EBADF;   /* closed since submit_one looked */
	ap_lock(&poller.lock);
	if (ap_ctx_dead(l->ctx)) {
		/* io_destroy has already swept the poller. */
		err = EINVAL;
		goto fail;
	}
	if ((err = poller_start_locked()) != 0)
		goto fail;
	poll_link(l);
	poller_kick_locked();
	ap_unlock(&poller.lock);
	return 0;
fail:
	ap_unlock(&poller.lock);
	ap_poll_drop_fd(l);
	return err;
}

/* Takes ctx's waiting POLL requests off the poller (iocb NULL: all of
 * them) and completes them as cancelled.  How many it took. */
int ap_poll_cancel(struct ap_ctx *ctx, struct iocb *iocb, void **data)
{
	struct la_req *l, *next;
	struct ap_req *r, *rnext, *done = NULL;
	int n = 0;

	ap_lock(&poller.lock);
	for (l = poll_entry(poller.list.head); l; l = next) {
		next = poll_next(l);
		if (l->ctx != ctx || (iocb && l->iocb != iocb))
			continue;
		poll_unlink(l);
		if (data)
			*data = l->data;
		l->r.notify_next = done;
		done = &l->r;
		n++;
		if (iocb)
			break;   /* one request per io_cancel */
	}
	if (n)
		poller_kick_locked();   /* it need not poll them any more */
	ap_unlock(&poller.lock);
	for (r = done; r; r = rnext) {
		rnext = r->notify_next;
		r->res = -1;
		r->err = ECANCELED;
		r->quiet = true;
		ap_complete_unqueued(r);
	}
	return n;
}

void ap_poller_lock(void)
{
	ap_lock(&poller.lock);
}

void ap_poller_unlock(void)
{
	ap_unlock(&poller.lock);
}

/* In a fork child, with poller.lock held by this thread (ap_poller_lock in
 * the prepare hook): the poller thread is the parent's, and so are the
 * wake-up pipe and the waiting requests. */
void ap_poller_atfork_child(void)
{
	ap_wake_close(&poller.wake);   /* shared with the parent's poller */
	for (struct la_req *l = poll_entry(poller.list.head); l; l = poll_next(l))
		ap_poll_drop_fd(l);     /* the parent's requests' duplicates */
	poller.list = (struct ap_dlist){ NULL, NULL };
	poller.n = 0;
	poller.started = false;
	ap_unlock(&poller.lock);   /* this thread took it: the count drops */
}
