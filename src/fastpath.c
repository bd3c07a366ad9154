/* fastpath.c: the fast path: a cached read done on the submitting thread
 * with preadv2(RWF_NOWAIT) instead of a hand-off to a worker, and its
 * bounds: never a read that can wait for a device (O_DIRECT), at most
 * INLINE_MAX bytes per read and INLINE_BUDGET per lio_listio or io_submit
 * call (struct ap_call), nothing on the fd that must go first (queue.c's
 * ap_q_bypass_now), and the offload policy that hands larger reads to
 * awake workers when the submitter has work of its own.  The rule lives
 * here once; ap_submit, and aiopool_read_now for the libev adapter, use
 * it.
 *
 * Owns no lock and no shared state: each call's budget is the caller's
 * struct ap_call, offload's seed is per thread, and the engine counts it
 * reads (ap_pool_awake) are atomics.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>

#include "aiopool.h"
#include "queue.h"

/* With other requests in flight or unreaped (a queue depth: r->deep), the
 * submitting thread has more to do than wait for this read, and a worker
 * on another CPU can serve it side by side with the submitter's own work
 * and inline reads.  But the hand-off costs the submitter too (the queued
 * path, the wake-up, the reap): about what a cached read of OFFLOAD_MIN
 * costs it (docs/tuning.md), so a smaller read stays inline, even with
 * work of the submitter's own between reads.  A larger one goes to the
 * pool when a worker is awake to take it (spinning for work, or running a
 * request it comes back from to take the next in the same critical
 * section) and fewer than OFFLOAD_AHEAD requests per awake worker are
 * queued; otherwise it runs inline.  So the submitter keeps the awake
 * workers fed, and does the rest itself while they are behind.  With no
 * worker awake, one such read in OFFLOAD_WAKE goes to the pool anyway, to
 * wake one.  Workers spin only while spinning pays (wait.c), so on a busy
 * machine, where a hand-off waits for a CPU, reads stay inline.  At a
 * queue depth of one, everything stays inline: the submitter would only
 * wait for it. */
#define OFFLOAD_MIN (64 * 1024)
#define OFFLOAD_AHEAD 2
#define OFFLOAD_WAKE 64

static bool offload(const struct ap_req *r, size_t n)
{
	static __thread unsigned seed;
	unsigned long awake, backlog;

	if (ap_ncpus < 2 || !r->deep || n < OFFLOAD_MIN)
		return false;
	if ((awake = ap_pool_awake(&backlog)) > 0)
		return backlog < OFFLOAD_AHEAD * awake;
	return ++seed % OFFLOAD_WAKE == 0;
}

/* The fast path's bounds, chosen by measuring a cached preadv2 by size
 * against a hand-off to a worker (docs/tuning.md).  A read is charged its
 * bytes and INLINE_FIXED, the fixed cost of its system call in bytes of
 * copying, so that the per-call budget bounds the time spent, for small
 * reads as for large ones. */
#define INLINE_MAX    (256 * 1024)  /* per read: about 12 us copying */
#define INLINE_BUDGET (1024 * 1024) /* per call: about one hand-off */
#define INLINE_FIXED  (32 * 1024)   /* a system call, about 1.5 us */

void ap_call_begin(struct ap_call *call, bool waits)
{
	call->inline_left = waits ? SIZE_MAX : INLINE_BUDGET;
	call->getfl.fd = -1;
	call->queued.gen = 0;
}

int ap_call_getfl(struct ap_call *call, int fd)
{
	int fl;

	if (call && call->getfl.fd == fd && fd >= 0)
		return call->getfl.fl;
	fl = fcntl(fd, F_GETFL);
	if (call && fl >= 0)
		call->getfl.fd = fd, call->getfl.fl = fl;
	return fl;
}

/* May a read of n bytes run inline within call's budget (NULL: a call of
 * its own)?  Charges it if so.  The first read that does not fit spends
 * the budget: the rest of the call goes to the pool, in order. */
static bool inline_fits(size_t n, struct ap_call *call)
{
	size_t charge = n + INLINE_FIXED;

	if (!call)
		return true;
	if (charge > call->inline_left) {
		call->inline_left = 0;
		return false;
	}
	call->inline_left -= charge;
	return true;
}

/* May a read on fd bypass its queue (ap_q_may_bypass)?  Asked without
 * the lock, of queue.c's order map: a change this thread made (a write or
 * fsync it queued) is in the map before its submission returned. */
static bool may_bypass(int fd)
{
	return ap_q_bypass_now(fd);
}

/* Could the read r wait for a device whatever the page cache holds?  An
 * O_DIRECT read does: RWF_NOWAIT does not keep it from waiting for its
 * I/O.  O_SYNC and O_DSYNC do nothing to reads.  Unknown (fd not open):
 * yes, the queued path reports it. */
static bool waits_for_device(const struct ap_req *r)
{
	if (r->fl_known)
		return (r->fl & O_DIRECT) != 0;
	return ap_fd_direct(r->fd) != 0;
}

/* The fast path's rule for one read of n bytes (ap_nowait_bytes; 0: not a
 * read it can do): on, no larger than INLINE_MAX, nothing on the fd that
 * must go first (ap_q_may_bypass), and never a read that can wait for a
 * device (O_DIRECT).  ap_try_inline adds the call's budget and the offload
 * policy; aiopool_read_now has neither. */
static bool may_run_inline(const struct ap_req *r, size_t n)
{
	return ap_load_relaxed(&ap_knobs.fastpath) && n && n <= INLINE_MAX && may_bypass(r->fd) &&
	       !waits_for_device(r);
}

/* The fast path: a read the page cache can serve at once is done on the
 * submitting thread with preadv2(RWF_NOWAIT), without a hand-off to a
 * worker, which costs more than the read: when may_run_inline, the offload
 * policy keeps it, and it fits its call's budget.  Anything else (EAGAIN:
 * not cached; a short read, which may be a partly cached range; a pipe) is
 * queued as usual.  What it cannot see blocking (a page fault on the
 * buffer, an atime update) is in aiopool(7). */
bool ap_try_inline(struct ap_req *r, struct ap_call *call)
{
	size_t n = ap_nowait_bytes(r);

	if (!may_run_inline(r, n) || offload(r, n) || !inline_fits(n, call))
		return false;
	/* On the user's fd: the inline read runs now, on what it names now. */
	if (!ap_exec_nowait(r, r->fd)) {
		r->uncached = true;  /* the worker need not try again */
		return false;
	}
	r->fast = true;
	ap_complete_unqueued(r);
	return true;
}

/* The fast path's rule (may_run_inline) for a caller that keeps its own
 * request (the libev adapter, a library of its own on the public
 * interface), for a read submitted alone. */
AP_EXPORT long aiopool_read_now(int fd, void *buf, unsigned long len,
		long long offset)
{
	struct ap_req r = { .op = AP_OP_READ, .fd = fd, .buf = buf,
	                    .nbytes = len, .offset = (off_t)offset };
	size_t n = ap_nowait_bytes(&r);
	int saved = errno;

	if (may_run_inline(&r, n) && ap_exec_nowait(&r, fd)) {
		errno = saved;
		return (long)r.res;
	}
	errno = EAGAIN;
	return -1;
}
