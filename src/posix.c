/* posix.c: the POSIX <aio.h> front end (glibc's ABI, struct aiocb of 168
 * bytes on x86_64).
 *
 * Owns: the aiocb fields we keep state in, and posix_chan, the wait channel
 * that aio_suspend and lio_listio(LIO_WAIT) sleep on.  Takes no lock of its
 * own: the result of a submitted aiocb is published only in posix_finish
 * (under engine.lock, pool.c's, for a queued request; on the submitting
 * thread, without it, for one completed at submission), by fail() for one
 * refused at submission and, in a fork child, by posix_orphan; it is read
 * with atomics, so aio_error and aio_return take no lock.
 *
 * In each submitted aiocb: __error_code and __return_value as glibc keeps
 * them, and in __glibc_reserved a mark that says this aiocb was submitted
 * here (a magic number mixed with its address, so that a zeroed, copied or
 * never submitted aiocb is told apart) and where its request stands.
 */
#include "config.h"

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>

#include "aiopool.h"
#include "internal.h"

enum cb_state {
	CB_QUEUED = 1,   /* in flight: __error_code is EINPROGRESS */
	CB_DONE,         /* result published */
	CB_RETURNED,     /* aio_return has taken it */
};

struct cb_mark {
	uint64_t magic;
	uint32_t state;  /* enum cb_state */
} __attribute__((may_alias));

_Static_assert(sizeof(struct cb_mark) <= sizeof(((struct aiocb *)0)->__glibc_reserved),
               "the mark fits in struct aiocb");
_Static_assert(sizeof(struct aiocb) == 168, "glibc's x86_64 struct aiocb");

#define MAGIC 0x616970706f6f6c31ULL   /* "aiopool1" */

static struct ap_chan posix_chan;

/* The calling thread's queue depth, which the engine's fast path looks at
 * (ap_req.deep): requests it submitted and has not yet taken back with
 * aio_return.  Per thread, as the rule is about what the submitter has in
 * flight (two threads at a depth of one each are not a depth of two), and
 * so that no cache line bounces between submitting CPUs.  A request taken
 * back by another thread leaves its submitter's count high (that thread
 * counts as deep, which only allows the offload) and lowers the reaper's,
 * never below zero (a thread that reaps for others and submits counts as
 * shallow: its reads stay inline). */
static __thread long thread_depth;

static struct cb_mark *mark(const struct aiocb *cb)
{
	return (struct cb_mark *)cb->__glibc_reserved;
}

static uint64_t magic_of(const struct aiocb *cb)
{
	return MAGIC ^ (uintptr_t)cb;
}

static bool ours(const struct aiocb *cb)
{
	return ap_load_relaxed(&mark(cb)->magic) == magic_of(cb);
}

static int cb_error(const struct aiocb *cb)
{
	return ap_load(&cb->__error_code);
}

/* Still in flight: the aiocb belongs to its request; a new submission
 * must leave it be, refusals included. */
static bool in_flight(const struct aiocb *cb)
{
	return ours(cb) && ap_load(&mark(cb)->state) == CB_QUEUED;
}

/* Publishes a result in the aiocb: the return value first, the error code
 * last, so that whoever sees the error code sees the rest. */
static void cb_publish(struct aiocb *cb, ssize_t ret, int err)
{
	cb->__return_value = ret;
	ap_store_relaxed(&mark(cb)->state, (uint32_t)CB_DONE);
	ap_store_relaxed(&mark(cb)->magic, magic_of(cb));
	ap_store(&cb->__error_code, err);
}

/* A request that fails before it is queued: the aiocb reports the error
 * too, so aio_error and aio_return agree with the -1/errno returned. */
static int fail(struct aiocb *cb, int err)
{
	cb_publish(cb, -1, err);
	errno = err;
	return -1;
}

/* ---- lio_listio groups --------------------------------------------------- */

/* One lio_listio call.  Two counts, each with one extra for the submitting
 * call while it queues:
 *   unsent: elements whose I/O is not complete or whose own notification
 *     has not been sent (signal queued, function handed to its thread).
 *     At 0 a LIO_WAIT caller returns: it waits for the I/O, never for a
 *     SIGEV_THREAD function to return.
 *   pending: elements whose own notification is not over (for SIGEV_THREAD,
 *     its function has not returned).  At 0 the list's sigevent goes out
 *     (LIO_NOWAIT), after every element's.
 * refs counts who may still touch it: the caller, each element twice (one
 * for each count) and the list's own notification in flight.  No part of it
 * lives on a stack, so a LIO_WAIT interrupted by a signal leaves nothing
 * dangling. */
struct ap_lio {
	uint32_t unsent;
	uint32_t pending;
	uint32_t refs;
	bool notify;
	struct ap_notify_node note;
};

static void lio_unref(void *arg)
{
	struct ap_lio *lio = arg;

	if (__atomic_sub_fetch(&lio->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(lio);
}

/* An element's I/O is complete and its notification sent. */
static void lio_element_sent(struct ap_lio *lio)
{
	if (__atomic_sub_fetch(&lio->unsent, 1, __ATOMIC_ACQ_REL) == 0)
		ap_chan_wake(&posix_chan);
	lio_unref(lio);
}

/* An element's own notification is over. */
static void lio_element_done(struct ap_lio *lio)
{
	if (__atomic_sub_fetch(&lio->pending, 1, __ATOMIC_ACQ_REL) == 0 &&
	    lio->notify) {
		ap_add(&lio->refs, 1);
		ap_notify(&lio->note);
	}
	lio_unref(lio);
}

/* ---- the engine's view of a POSIX request -------------------------------- */

/* A POSIX request: the engine's, and the aiocb it serves. */
struct px_req {
	struct ap_req r;
	struct aiocb *cb;
	struct ap_notify_node note;   /* aio_sigevent, copied */
	struct ap_lio *lio;           /* its lio_listio call, or NULL */
};

static struct px_req *px(const struct ap_req *r)
{
	return ap_container_of(r, struct px_req, r);
}

static void posix_finish(struct ap_req *r)
{
	cb_publish(px(r)->cb, r->err ? -1 : r->res, r->err);
}

/* The element's own notification has been delivered. */
static void posix_released(void *arg)
{
	struct ap_req *r = arg;
	struct ap_lio *lio = px(r)->lio;

	ap_req_free(r);
	if (lio)
		lio_element_done(lio);
}

static void posix_notify(struct ap_req *r)
{
	struct ap_lio *lio = px(r)->lio;   /* r may be gone after ap_notify */

	ap_chan_wake(&posix_chan);
	px(r)->note.done = posix_released;
	px(r)->note.arg = r;
	ap_notify(&px(r)->note);
	if (lio)
		lio_element_sent(lio);
}

/* In a fork child: the parent's requests will not run here. */
static void posix_orphan(struct ap_req *r)
{
	cb_publish(px(r)->cb, -1, ECANCELED);
}

static const struct ap_ops posix_ops = {
	.finish = posix_finish,
	.notify = posix_notify,
	.orphan = posix_orphan,
};

static void posix_atfork_child(void)
{
	posix_chan = (struct ap_chan){ 0, 0 };
	thread_depth = 0;   /* the forking thread's: the child's only one */
}

__attribute__((constructor)) static void posix_init(void)
{
	ap_atfork_register(NULL, NULL, posix_atfork_child);
}

/* ---- submission ---------------------------------------------------------- */

/* The submitting thread's scheduling priority: aio_reqprio lowers it. */
static int thread_prio(void)
{
	struct sched_param sp;
	int policy;

	if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0)
		return 0;
	return sp.sched_priority;
}

/* Submits cb: lio and call are its lio_listio call's, or NULL. */
static int submit(struct aiocb *cb, int op, struct ap_lio *lio,
		struct ap_call *call)
{
	struct ap_req *r;
	int prio = thread_prio(), err;

	if (!cb) {
		errno = EINVAL;
		return -1;
	}
	if (in_flight(cb)) {
		errno = EINVAL;
		return -1;
	}
	if (ap_op_syncs(op))
		cb->aio_reqprio = 0;   /* ignored for fsync, as glibc does */
	else if (cb->aio_reqprio < 0 || cb->aio_reqprio > AIO_PRIO_DELTA_MAX)
		return fail(cb, EINVAL);
	else if (cb->aio_nbytes > SSIZE_MAX)
		return fail(cb, EINVAL);   /* as POSIX allows and libaio does */
	if (ap_sigevent_check(&cb->aio_sigevent))
		return fail(cb, EINVAL);
	if (!(r = ap_req_alloc(sizeof(struct px_req))))
		return fail(cb, EAGAIN);

	r->op = (unsigned char)op;
	r->fd = cb->aio_fildes;
	r->buf = (void *)cb->aio_buf;
	r->nbytes = cb->aio_nbytes;
	r->offset = cb->aio_offset;
	r->ops = &posix_ops;
	px(r)->cb = cb;
	px(r)->note.sev = cb->aio_sigevent;
	px(r)->lio = lio;

	cb->__return_value = 0;
	ap_store_relaxed(&mark(cb)->magic, magic_of(cb));
	ap_store_relaxed(&mark(cb)->state, (uint32_t)CB_QUEUED);
	ap_store(&cb->__error_code, EINPROGRESS);
	if (lio) {
		ap_add(&lio->unsent, 1);
		ap_add(&lio->pending, 1);
		ap_add(&lio->refs, 2);
	}
	r->deep = ++thread_depth > 1;
	err = ap_submit(r, prio - cb->aio_reqprio, call);
	if (err) {
		thread_depth--;
		if (lio) {
			__atomic_sub_fetch(&lio->unsent, 1, __ATOMIC_ACQ_REL);
			__atomic_sub_fetch(&lio->pending, 1, __ATOMIC_ACQ_REL);
			__atomic_sub_fetch(&lio->refs, 2, __ATOMIC_ACQ_REL);
		}
		ap_req_free(r);
		return fail(cb, err);
	}
	return 0;
}

static int p_read(struct aiocb *cb)
{
	return submit(cb, AP_OP_READ, NULL, NULL);
}

static int p_write(struct aiocb *cb)
{
	return submit(cb, AP_OP_WRITE, NULL, NULL);
}

static int p_fsync(int op, struct aiocb *cb)
{
	if (op != O_SYNC && op != O_DSYNC) {
		errno = EINVAL;
		return -1;
	}
	if (!cb || in_flight(cb)) {
		errno = EINVAL;
		return -1;
	}
	if (fcntl(cb->aio_fildes, F_GETFL) < 0)
		return fail(cb, EBADF);
	return submit(cb, op == O_SYNC ? AP_OP_FSYNC : AP_OP_FDSYNC, NULL, NULL);
}

/* ---- status -------------------------------------------------------------- */

static int p_error(const struct aiocb *cb)
{
	if (!cb || !ours(cb))
		return EINVAL;   /* never submitted: POSIX allows EINVAL */
	return cb_error(cb);
}

static ssize_t p_return(struct aiocb *cb)
{
	uint32_t done = CB_DONE;

	if (!cb || !ours(cb)) {
		errno = EINVAL;
		return -1;
	}
	if (cb_error(cb) == EINPROGRESS) {
		errno = EINPROGRESS;
		return -1;
	}
	/* Only once per request; aio_error still reports its error after. */
	if (!__atomic_compare_exchange_n(&mark(cb)->state, &done, CB_RETURNED,
	                                 false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		errno = EINVAL;
		return -1;
	}
	if (thread_depth > 0)
		thread_depth--;
	return cb->__return_value;
}

/* ---- waiting ------------------------------------------------------------- */

static int p_suspend(const struct aiocb *const list[], int nent,
		const struct timespec *timeout)
{
	struct timespec deadline;

	if (nent < 0 || (nent > 0 && !list) ||
	    (timeout && !ap_timespec_valid(timeout))) {
		errno = EINVAL;
		return -1;
	}
	pthread_testcancel();
	if (timeout)
		ap_deadline(&deadline, timeout);
	for (;;) {
		uint32_t seen = ap_chan_seq(&posix_chan);
		bool waiting = false;
		int err;

		for (int i = 0; i < nent; i++) {
			if (!list[i])
				continue;
			if (p_error(list[i]) != EINPROGRESS)
				return 0;
			waiting = true;
		}
		if (!waiting)
			return 0;   /* nothing to wait for (all NULL), as glibc */
		err = ap_chan_wait_cancellable(&posix_chan, seen,
		                               timeout ? &deadline : NULL);
		if (err) {
			errno = err == ETIMEDOUT ? EAGAIN : err;
			return -1;
		}
	}
}

/* ---- cancellation -------------------------------------------------------- */

static bool match_cb(const struct ap_req *r, void *cb)
{
	return r->ops == &posix_ops && (!cb || px(r)->cb == cb);
}

static int p_cancel(int fd, struct aiocb *cb)
{
	struct ap_cancel_result res;

	if (fcntl(fd, F_GETFL) < 0) {
		errno = EBADF;
		return -1;
	}
	if (cb && cb->aio_fildes != fd) {
		errno = EINVAL;
		return -1;
	}
	if (cb && (!ours(cb) || cb_error(cb) != EINPROGRESS))
		return AIO_ALLDONE;
	res = ap_cancel(fd, match_cb, cb, false);
	if (res.running)
		return AIO_NOTCANCELED;
	return res.cancelled ? AIO_CANCELED : AIO_ALLDONE;
}

/* ---- lio_listio ---------------------------------------------------------- */

/* A new lio_listio call, counted as one element unsent and pending while
 * it queues; its sigevent, if any, to send when every element is done.
 * NULL if out of memory. */
static struct ap_lio *lio_new(int mode, const struct sigevent *sig)
{
	struct ap_lio *lio = calloc(1, sizeof *lio);

	if (!lio)
		return NULL;
	lio->unsent = lio->pending = 1;   /* this call, while it queues */
	lio->refs = 1;
	if (mode == LIO_NOWAIT && sig && sig->sigev_notify != SIGEV_NONE) {
		lio->notify = true;
		lio->note.sev = *sig;
		lio->note.done = lio_unref;
		lio->note.arg = lio;
	}
	return lio;
}

/* Submits each element of list: sets *failed if one was refused, and
 * *eagain if one was refused for want of resources. */
static void lio_submit_all(struct ap_lio *lio, int mode,
		struct aiocb *const list[], int nent, bool *failed, bool *eagain)
{
	struct ap_call call;   /* the inline budget of the whole list */

	ap_call_begin(&call, mode == LIO_WAIT);
	for (int i = 0; i < nent; i++) {
		struct aiocb *cb = list[i];
		int op;

		if (!cb || cb->aio_lio_opcode == LIO_NOP)
			continue;
		if (cb->aio_lio_opcode == LIO_READ)
			op = AP_OP_READ;
		else if (cb->aio_lio_opcode == LIO_WRITE)
			op = AP_OP_WRITE;
		else {
			if (!in_flight(cb))   /* else leave its request be */
				fail(cb, EINVAL);
			*failed = true;
			continue;
		}
		if (submit(cb, op, lio, &call) < 0) {
			*failed = true;
			*eagain |= errno == EAGAIN;
		}
	}
}

/* LIO_WAIT: waits until every element of lio has completed, then sets
 * *failed if one of list's failed.  0 or EINTR. */
static int lio_wait(struct ap_lio *lio, struct aiocb *const list[],
		int nent, bool *failed)
{
	while (ap_load(&lio->unsent) != 0) {
		uint32_t seen = ap_chan_seq(&posix_chan);

		if (ap_load(&lio->unsent) == 0)
			break;
		if (ap_chan_wait(&posix_chan, seen, NULL) == EINTR)
			return EINTR;
	}
	for (int i = 0; i < nent; i++) {
		struct aiocb *cb = list[i];

		if (cb && cb->aio_lio_opcode != LIO_NOP && cb_error(cb) != 0)
			*failed = true;
	}
	return 0;
}

static int p_lio_listio(int mode, struct aiocb *const list[], int nent,
		struct sigevent *sig)
{
	struct ap_lio *lio;
	bool failed = false, eagain = false;
	int err = 0;

	if ((mode != LIO_WAIT && mode != LIO_NOWAIT) || nent < 0 ||
	    (nent > 0 && !list) ||
	    (mode == LIO_NOWAIT && sig && ap_sigevent_check(sig))) {
		errno = EINVAL;
		return -1;
	}
	if (!(lio = lio_new(mode, sig))) {
		errno = EAGAIN;
		return -1;
	}
	lio_submit_all(lio, mode, list, nent, &failed, &eagain);
	ap_add(&lio->refs, 2);   /* each of these drops one */
	lio_element_sent(lio);
	lio_element_done(lio);
	if (mode == LIO_WAIT)
		err = lio_wait(lio, list, nent, &failed);
	lio_unref(lio);

	if (!err && eagain)
		err = EAGAIN;
	else if (!err && failed)
		err = EIO;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* ---- aio_init ------------------------------------------------------------ */

/* Unlike glibc's, honoured at any time, also after the first request.
 * Zero fields keep their knob as it is (except aio_threads, which glibc
 * raises to 1). */
static void p_init(const struct aioinit *init)
{
	if (!init)
		return;
	aiopool_set(AIOPOOL_MAX_THREADS,
	            init->aio_threads < 1 ? 1 :
	            init->aio_threads > 1024 ? 1024 : init->aio_threads);
	if (init->aio_num > 0)
		aiopool_set(AIOPOOL_CACHE, init->aio_num > (1 << 20) ? (1 << 20) : init->aio_num);
	if (init->aio_idle_time > 0)
		aiopool_set(AIOPOOL_IDLE_MS, init->aio_idle_time > INT_MAX / 1000 ?
		            INT_MAX : init->aio_idle_time * 1000);
	else if (init->aio_idle_time < 0)
		aiopool_set(AIOPOOL_IDLE_MS, -1);
}

/* ---- the *64 names and glibc's older symbol versions ---------------------- */

/* The exported names are aliases of the functions above: those are
 * compiled without <aio.h>'s nonnull attributes, so that a NULL argument
 * is checked for and gives EINVAL instead of a crash.
 *
 * On LP64 struct aiocb64 is struct aiocb and the *64 names are the same
 * functions.  The compat versions bind binaries linked before glibc 2.34,
 * when these names lived in librt at GLIBC_2.2.5 (lio_listio also 2.4). */
_Static_assert(sizeof(struct aiocb64) == sizeof(struct aiocb) &&
               offsetof(struct aiocb64, aio_offset) == offsetof(struct aiocb, aio_offset),
               "struct aiocb64 is struct aiocb");

static int p_read64(struct aiocb64 *cb)
{
	return p_read((struct aiocb *)cb);
}

static int p_write64(struct aiocb64 *cb)
{
	return p_write((struct aiocb *)cb);
}

static int p_fsync64(int op, struct aiocb64 *cb)
{
	return p_fsync(op, (struct aiocb *)cb);
}

static int p_error64(const struct aiocb64 *cb)
{
	return p_error((const struct aiocb *)cb);
}

static ssize_t p_return64(struct aiocb64 *cb)
{
	return p_return((struct aiocb *)cb);
}

static int p_suspend64(const struct aiocb64 *const list[], int nent,
		const struct timespec *timeout)
{
	return p_suspend((const struct aiocb *const *)list, nent, timeout);
}

static int p_cancel64(int fd, struct aiocb64 *cb)
{
	return p_cancel(fd, (struct aiocb *)cb);
}

static int p_lio_listio64(int mode, struct aiocb64 *const list[], int nent,
		struct sigevent *sig)
{
	return p_lio_listio(mode, (struct aiocb *const *)list, nent, sig);
}

/* Binds impl to name@@GLIBC_2.34 (the default) and name@GLIBC_2.2.5. */
#define EXPORT(name, impl) \
	AP_SYMVER(ap_export_##name, impl, #name "@@GLIBC_2.34"); \
	AP_SYMVER(ap_compat_##name, impl, #name "@GLIBC_2.2.5")

EXPORT(aio_read, p_read);
EXPORT(aio_read64, p_read64);
EXPORT(aio_write, p_write);
EXPORT(aio_write64, p_write64);
EXPORT(aio_fsync, p_fsync);
EXPORT(aio_fsync64, p_fsync64);
EXPORT(aio_error, p_error);
EXPORT(aio_error64, p_error64);
EXPORT(aio_return, p_return);
EXPORT(aio_return64, p_return64);
EXPORT(aio_suspend, p_suspend);
EXPORT(aio_suspend64, p_suspend64);
EXPORT(aio_cancel, p_cancel);
EXPORT(aio_cancel64, p_cancel64);
EXPORT(lio_listio, p_lio_listio);
EXPORT(lio_listio64, p_lio_listio64);
EXPORT(aio_init, p_init);

AP_SYMVER(ap_compat24_lio_listio, p_lio_listio, "lio_listio@GLIBC_2.4");
AP_SYMVER(ap_compat24_lio_listio64, p_lio_listio64, "lio_listio64@GLIBC_2.4");
