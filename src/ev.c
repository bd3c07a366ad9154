/* ev.c: libaiopool-ev, the libev adapter (include/aiopool-ev.h, where the
 * design is explained).  A library of its own, on top of libaiopool's
 * public interfaces only, so that libaiopool never depends on libev.
 *
 * Owns struct aiopool_ev and its requests (struct req).  Everything in an
 * adapter belongs to the loop's thread except:
 *   done    the POSIX completions, a lock-free stack pushed by
 *           posix_done (on aiopool's notifier threads) and taken whole by
 *           the loop with one exchange: no ABA, since nothing pops singly;
 *   tramp   the aiocbs whose posix_done has not returned yet: the adapter
 *           is not freed before it is 0, as posix_done touches it last;
 *   efd     the eventfd, written by aiopool's workers (the iocbs'
 *           IOCB_FLAG_RESFD), by posix_done, and by the loop itself.
 *
 * A request is in exactly one place: the free list, `backlog' (accepted,
 * not yet given to aiopool: the context was full), `inflight' (given to
 * aiopool; also on the done stack once posix_done pushed it), or `ready'
 * (completed, callback due: aiocbs taken from the done stack, reads done
 * on the fast path, and requests whose submission failed, whose error the
 * callback reports).
 */
#include "config.h"

#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>

#include "aiopool.h"
#include "aiopool/libaio.h"
#include "aiopool-ev.h"
#include "dlist.h"

#if !EV_MULTIPLICITY
#error "libaiopool-ev needs libev built with EV_MULTIPLICITY"
#endif

/* A name of libaiopool-ev's ABI (the adapter is built hidden by default). */
#define EXPORT __attribute__((visibility("default")))

#define CTX_DEPTH 4096       /* the io_context_t's requests in flight */
#define DEFAULT_BATCH 64     /* callbacks per wake-up */
#define MAX_BATCH 65536
#define REAP_MAX 64          /* events per io_getevents */
#define FREE_KEEP 256        /* request blocks kept for reuse */

enum kind { K_IOCB = 1, K_AIOCB };

struct req {
	struct req *next;            /* backlog, ready, done stack, free list */
	struct ap_dnode llink;       /* on inflight */
	struct aiopool_ev *aev;
	aiopool_ev_cb *cb;
	void *data;
	long res;                    /* in ready: the result to report */
	bool has_res;                /* in ready: res is set (else an aiocb) */
	unsigned char kind;          /* enum kind */
	int op;                      /* K_AIOCB: LIO_READ... */
	struct iocb *iocb;           /* K_IOCB: &own or the program's */
	struct aiocb *aiocb;
	struct iocb own;             /* for aiopool_ev_read / _write */
};

struct fifo {
	struct req *head, *tail;
};

struct aiopool_ev {
	struct ev_loop *loop;
	ev_io watcher;               /* efd readable */
	int efd;
	io_context_t ctx;
	unsigned batch;
	long pending;                /* accepted, callback not started */
	long ninflight;              /* on inflight */
	long niocb;                  /* of those, iocbs (events to reap) */
	bool reffed;                 /* holds a reference on the loop */
	bool freeing;                /* aiopool_ev_free was called */
	bool posix_first;            /* which source a wake-up serves first */
	int depth;                   /* callbacks being run (nesting) */
	struct fifo backlog;
	struct fifo ready;
	struct ap_dlist inflight;    /* of struct req, through llink */
	struct req *done;            /* atomic: posix_done's stack */
	unsigned tramp;              /* atomic */
	struct req *free_list;
	unsigned nfree;
};

/* ---- aiopool's functions ------------------------------------------------ */

/* The POSIX and libaio names are also the C library's and libaio.so.1's,
 * and a reference to aio_read@GLIBC_2.34 binds to the first object in the
 * program's search order that defines it.  Linked with `pkg-config --libs
 * aiopool-ev', the program depends on libaiopool itself, ahead of the C
 * library, but a linker that drops unused dependencies (--as-needed, the
 * default of some distributions) leaves libaiopool behind the C library
 * in the search order, and a program that also links -laio puts libaio
 * first.  So the adapter looks its functions up in libaiopool itself (the
 * object that defines aiopool_stats), by name and version, and falls back
 * on the ordinary references only when it cannot (static linking). */
static struct {
	__typeof__(aio_read) *aio_read;
	__typeof__(aio_write) *aio_write;
	__typeof__(aio_fsync) *aio_fsync;
	__typeof__(aio_error) *aio_error;
	__typeof__(aio_return) *aio_return;
	__typeof__(aio_cancel) *aio_cancel;
	__typeof__(io_setup) *io_setup;
	__typeof__(io_destroy) *io_destroy;
	__typeof__(io_submit) *io_submit;
	__typeof__(io_getevents) *io_getevents;
} F;

static pthread_once_t bind_once = PTHREAD_ONCE_INIT;

static void bind_aiopool(void)
{
	Dl_info info;
	void *h = NULL;

	if (dladdr((void *)aiopool_stats, &info) && info.dli_fname)
		h = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
#define BIND(name, ver) do { \
		F.name = h ? (__typeof__(F.name))dlvsym(h, #name, ver) : NULL; \
		if (!F.name) \
			F.name = name; \
	} while (0)
	BIND(aio_read, "GLIBC_2.34");
	BIND(aio_write, "GLIBC_2.34");
	BIND(aio_fsync, "GLIBC_2.34");
	BIND(aio_error, "GLIBC_2.34");
	BIND(aio_return, "GLIBC_2.34");
	BIND(aio_cancel, "GLIBC_2.34");
	BIND(io_setup, "LIBAIO_0.4");
	BIND(io_destroy, "LIBAIO_0.4");
	BIND(io_submit, "LIBAIO_0.1");
	BIND(io_getevents, "LIBAIO_0.4");
#undef BIND
	if (h)
		dlclose(h);   /* a reference of our own: libaiopool stays loaded */
}

/* ---- small helpers ------------------------------------------------------- */

static void fifo_push(struct fifo *f, struct req *r)
{
	r->next = NULL;
	if (f->tail)
		f->tail->next = r;
	else
		f->head = r;
	f->tail = r;
}

static struct req *fifo_pop(struct fifo *f)
{
	struct req *r = f->head;

	if (r && !(f->head = r->next))
		f->tail = NULL;
	return r;
}

static void inflight_add(struct aiopool_ev *aev, struct req *r)
{
	ap_dlist_push_back(&aev->inflight, &r->llink);
	aev->ninflight++;
}

static void inflight_del(struct aiopool_ev *aev, struct req *r)
{
	ap_dlist_unlink(&aev->inflight, &r->llink);
	aev->ninflight--;
}

/* A cleared request of aev, of kind `kind', for callback cb with data:
 * NULL when memory is short. */
static struct req *req_get(struct aiopool_ev *aev, enum kind kind,
		aiopool_ev_cb *cb, void *data)
{
	struct req *r = aev->free_list;

	if (r) {
		aev->free_list = r->next;
		aev->nfree--;
	} else if (!(r = malloc(sizeof *r))) {
		return NULL;
	}
	memset(r, 0, offsetof(struct req, own));
	r->aev = aev;
	r->kind = (unsigned char)kind;
	r->cb = cb;
	r->data = data;
	return r;
}

static void req_put(struct aiopool_ev *aev, struct req *r)
{
	if (aev->nfree >= FREE_KEEP) {
		free(r);
		return;
	}
	r->next = aev->free_list;
	aev->free_list = r;
	aev->nfree++;
}

/* Makes the watcher fire (again) in the loop's next iteration. */
static void kick(struct aiopool_ev *aev)
{
	uint64_t one = 1;
	ssize_t n = write(aev->efd, &one, sizeof one);

	(void)n;   /* only fails when the count would overflow: readable anyway */
}

/* The loop is referenced while requests are pending, and only then. */
static void update_ref(struct aiopool_ev *aev)
{
	bool want = aev->pending > 0 && !aev->freeing;

	if (want && !aev->reffed)
		ev_ref(aev->loop);
	else if (!want && aev->reffed)
		ev_unref(aev->loop);
	aev->reffed = want;
}

/* ---- submission ---------------------------------------------------------- */

/* Runs on aiopool's notifier thread (or glibc's): the aiocb is complete. */
static void posix_done(union sigval v)
{
	struct req *r = v.sival_ptr;
	struct aiopool_ev *aev = r->aev;
	struct req *old = __atomic_load_n(&aev->done, __ATOMIC_RELAXED);

	do
		r->next = old;
	while (!__atomic_compare_exchange_n(&aev->done, &old, r, true,
	                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	if (!old)   /* else the loop has been told and not taken the list yet */
		kick(aev);
	/* Last: from here on aiopool_ev_free may free aev. */
	__atomic_sub_fetch(&aev->tramp, 1, __ATOMIC_RELEASE);
}

/* Hands r to aiopool: 0, or an errno value (r is then still ours). */
static int try_submit(struct aiopool_ev *aev, struct req *r)
{
	int rc, err;

	if (r->kind == K_IOCB) {
		struct iocb *iocb = r->iocb;

		iocb->data = r;
		io_set_eventfd(iocb, aev->efd);
		rc = F.io_submit(aev->ctx, 1, &iocb);
		if (rc != 1)
			return rc < 0 ? -rc : EAGAIN;
		inflight_add(aev, r);
		aev->niocb++;
		return 0;
	}

	struct aiocb *cb = r->aiocb;
	memset(&cb->aio_sigevent, 0, sizeof cb->aio_sigevent);
	cb->aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb->aio_sigevent.sigev_notify_function = posix_done;
	cb->aio_sigevent.sigev_value.sival_ptr = r;
	__atomic_add_fetch(&aev->tramp, 1, __ATOMIC_RELAXED);
	err = errno;
	switch (r->op) {
	case LIO_READ:  rc = F.aio_read(cb);  break;
	case LIO_WRITE: rc = F.aio_write(cb); break;
	default:        rc = F.aio_fsync(r->op, cb); break;
	}
	if (rc == 0) {
		errno = err;
		inflight_add(aev, r);
		return 0;
	}
	rc = errno ? errno : EAGAIN;
	errno = err;
	__atomic_sub_fetch(&aev->tramp, 1, __ATOMIC_RELAXED);
	return rc;
}

/* r is complete without aiopool: its callback runs from the loop, soon.
 * While ready holds anything a wake-up is due (on_readable leaves the
 * eventfd readable when it leaves anything there), so only the first
 * needs a kick. */
static void complete_now(struct aiopool_ev *aev, struct req *r, long res)
{
	bool was_empty = !aev->ready.head;

	r->res = res;
	r->has_res = true;
	fifo_push(&aev->ready, r);
	if (was_empty)
		kick(aev);
}

/* r did not make it: its callback reports -err. */
static void defer_error(struct aiopool_ev *aev, struct req *r, int err)
{
	complete_now(aev, r, -(long)err);
}

/* The fast path: aiopool_read_now runs the read here, in the loop's
 * thread, under the engine's own rule for aio_read and io_submit (the
 * fast path on, nothing queued on the fd that must go first, not O_DIRECT,
 * within the per-read cap, all of it cached).  The adapter adds one rule
 * the engine cannot apply: nothing while its backlog holds requests, which
 * aiopool has not seen yet and which a read must not pass (accept_req
 * keeps the backlog in submission order).  A read that may not, or is not
 * cached, goes to aiopool as usual.  true: r is done. */
static bool try_inline(struct aiopool_ev *aev, struct req *r)
{
	long n;
	int saved = errno;

	if (aev->backlog.head)
		return false;
	n = aiopool_read_now(r->own.aio_fildes, r->own.u.c.buf,
	                     (unsigned long)r->own.u.c.nbytes,
	                     (long long)r->own.u.c.offset);
	errno = saved;
	if (n < 0)
		return false;
	aev->pending++;
	complete_now(aev, r, n);
	update_ref(aev);
	return true;
}

/* Submits r, or keeps it for later, or fails it through its callback:
 * accepted either way. */
static void accept_req(struct aiopool_ev *aev, struct req *r)
{
	int err;

	aev->pending++;
	if (aev->backlog.head) {   /* keep the submission order */
		fifo_push(&aev->backlog, r);
	} else if ((err = try_submit(aev, r)) != 0) {
		/* Full: the context, or aiopool's queue bound.  Completions
		 * of ours make room; without any, there is nothing to wait
		 * for and EAGAIN is the answer. */
		if (err == EAGAIN && aev->ninflight > 0)
			fifo_push(&aev->backlog, r);
		else
			defer_error(aev, r, err);
	}
	update_ref(aev);
}

/* Submits what the backlog holds, as far as there is room. */
static void retry_backlog(struct aiopool_ev *aev)
{
	struct req *r;
	int err;

	while (!aev->freeing && (r = aev->backlog.head)) {
		err = try_submit(aev, r);
		if (err == EAGAIN && aev->ninflight > 0)
			break;
		fifo_pop(&aev->backlog);
		if (err)
			defer_error(aev, r, err);
	}
}

static int rw(struct aiopool_ev *aev, int op, int fd, void *buf, size_t len,
		long long offset, aiopool_ev_cb *cb, void *data)
{
	struct req *r;

	if (!aev || !cb || aev->freeing)
		return -EINVAL;
	if (!(r = req_get(aev, K_IOCB, cb, data)))
		return -ENOMEM;
	r->iocb = &r->own;
	if (op == IO_CMD_PREAD) {
		io_prep_pread(&r->own, fd, buf, len, offset);
		if (try_inline(aev, r))
			return 0;
	} else {
		io_prep_pwrite(&r->own, fd, buf, len, offset);
	}
	accept_req(aev, r);
	return 0;
}

EXPORT int aiopool_ev_read(struct aiopool_ev *aev, int fd, void *buf,
		size_t len, long long offset, aiopool_ev_cb *cb, void *data)
{
	return rw(aev, IO_CMD_PREAD, fd, buf, len, offset, cb, data);
}

EXPORT int aiopool_ev_write(struct aiopool_ev *aev, int fd, const void *buf,
		size_t len, long long offset, aiopool_ev_cb *cb, void *data)
{
	return rw(aev, IO_CMD_PWRITE, fd, (void *)buf, len, offset, cb, data);
}

EXPORT int aiopool_ev_submit(struct aiopool_ev *aev, struct iocb *iocb,
		aiopool_ev_cb *cb, void *data)
{
	struct req *r;

	if (!aev || !iocb || !cb || aev->freeing)
		return -EINVAL;
	if (!(r = req_get(aev, K_IOCB, cb, data)))
		return -ENOMEM;
	r->iocb = iocb;
	accept_req(aev, r);
	return 0;
}

EXPORT int aiopool_ev_submit_aiocb(struct aiopool_ev *aev, struct aiocb *aiocb,
		int op, aiopool_ev_cb *cb, void *data)
{
	struct req *r;

	if (!aev || !aiocb || !cb || aev->freeing)
		return -EINVAL;
	if (op != LIO_READ && op != LIO_WRITE && op != O_SYNC && op != O_DSYNC)
		return -EINVAL;
	/* Still in flight: its sigevent is not ours to change.  Both aiopool
	 * and glibc keep a request's status in __error_code (glibc's ABI),
	 * so this sees aiocbs in flight in either. */
	if (__atomic_load_n(&aiocb->__error_code, __ATOMIC_ACQUIRE) == EINPROGRESS)
		return -EBUSY;
	if (!(r = req_get(aev, K_AIOCB, cb, data)))
		return -ENOMEM;
	r->op = op;
	r->aiocb = aiocb;
	accept_req(aev, r);
	return 0;
}

/* ---- completion ---------------------------------------------------------- */

/* Runs r's callback with res; r goes back to the free list first, so
 * that the callback's own submissions can reuse it. */
static void deliver(struct aiopool_ev *aev, struct req *r, long res)
{
	aiopool_ev_cb *cb = r->cb;
	void *data = r->data;

	aev->pending--;
	req_put(aev, r);
	cb(aev, res, data);
}

/* The result of a completed aiocb; aio_return takes it from aiopool. */
static long aiocb_result(struct aiocb *cb)
{
	int saved = errno;
	int err = F.aio_error(cb);
	ssize_t ret = F.aio_return(cb);
	errno = saved;

	if (err == EINPROGRESS)   /* not by aiopool: it publishes, then notifies */
		err = EIO;
	return err ? -(long)err : (long)ret;
}

/* Moves the done stack, oldest first, to the end of ready. */
static void take_done(struct aiopool_ev *aev)
{
	struct req *r = __atomic_exchange_n(&aev->done, NULL, __ATOMIC_ACQUIRE);
	struct req *rev = NULL;

	while (r) {
		struct req *next = r->next;
		r->next = rev;
		rev = r;
		r = next;
	}
	while (rev) {
		struct req *next = rev->next;
		inflight_del(aev, rev);
		fifo_push(&aev->ready, rev);
		rev = next;
	}
}

/* Runs up to budget callbacks from ready (and the done stack); the number
 * run.  *more: some are left. */
static unsigned run_ready(struct aiopool_ev *aev, unsigned budget, bool *more)
{
	unsigned n = 0;
	struct req *r;

	take_done(aev);
	while (n < budget && !aev->freeing && (r = fifo_pop(&aev->ready))) {
		long res = r->has_res ? r->res : aiocb_result(r->aiocb);
		n++;
		deliver(aev, r, res);
	}
	if (aev->ready.head)
		*more = true;
	return n;
}

/* Runs up to budget callbacks from the context's ring. */
static unsigned run_ring(struct aiopool_ev *aev, unsigned budget, bool *more)
{
	static const struct timespec zero = { 0, 0 };
	struct io_event ev[REAP_MAX];
	unsigned n = 0;

	while (n < budget && !aev->freeing && aev->niocb > 0) {
		long want = budget - n < REAP_MAX ? (long)(budget - n) : REAP_MAX;
		int got = F.io_getevents(aev->ctx, 0, want, ev, (struct timespec *)&zero);

		if (got <= 0)
			return n;
		for (int i = 0; i < got; i++) {
			struct req *r = ev[i].data;

			inflight_del(aev, r);
			aev->niocb--;
			if (aev->freeing) {   /* a callback freed the adapter */
				aev->pending--;
				req_put(aev, r);
				continue;
			}
			deliver(aev, r, (long)ev[i].res);
		}
		n += (unsigned)got;
		if (got < want)
			return n;
	}
	if (n >= budget && aev->niocb > 0)
		*more = true;   /* maybe: the next wake-up will tell */
	return n;
}

static void teardown(struct aiopool_ev *aev);

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aiopool_ev *aev = w->data;
	unsigned budget = aev->batch, n;
	bool more = false;
	uint64_t count;
	ssize_t rd;

	(void)loop;
	(void)revents;
	/* Reset first: whatever completes from here on signals again. */
	rd = read(aev->efd, &count, sizeof count);
	(void)rd;
	aev->depth++;
	if (aev->posix_first) {
		n = run_ready(aev, budget, &more);
		run_ring(aev, budget - n, &more);
	} else {
		n = run_ring(aev, budget, &more);
		run_ready(aev, budget - n, &more);
	}
	aev->posix_first = !aev->posix_first;
	retry_backlog(aev);
	aev->depth--;
	if (aev->freeing) {
		if (aev->depth == 0)
			teardown(aev);
		return;
	}
	if (more)
		kick(aev);
	update_ref(aev);
}

/* ---- the adapter --------------------------------------------------------- */

EXPORT struct aiopool_ev *aiopool_ev_new(struct ev_loop *loop)
{
	struct aiopool_ev *aev;
	int err;

	if (!loop) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&bind_once, bind_aiopool);
	if (!(aev = calloc(1, sizeof *aev)))
		return NULL;
	aev->loop = loop;
	aev->batch = DEFAULT_BATCH;
	aev->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (aev->efd < 0) {
		err = errno;
		goto fail;
	}
	if ((err = -F.io_setup(CTX_DEPTH, &aev->ctx)) != 0) {
		close(aev->efd);
		goto fail;
	}
	ev_io_init(&aev->watcher, on_readable, aev->efd, EV_READ);
	aev->watcher.data = aev;
	ev_io_start(loop, &aev->watcher);
	ev_unref(loop);   /* the watcher alone does not keep ev_run going */
	return aev;

fail:
	free(aev);
	errno = err;
	return NULL;
}

static void free_list(struct req *r)
{
	while (r) {
		struct req *next = r->next;
		free(r);
		r = next;
	}
}

/* Cancels and waits for what is in flight, then frees everything. */
static void teardown(struct aiopool_ev *aev)
{
	struct req *r;
	int saved = errno;

	/* libaio-style requests: io_destroy cancels what is queued (no
	 * event) and waits for what runs. */
	F.io_destroy(aev->ctx);
	/* aiocbs: cancel what is queued; posix_done runs for every one,
	 * cancelled or not, and the adapter lives until the last has. */
	for (struct ap_dnode *n = aev->inflight.head; n; n = n->next) {
		r = AP_DLIST_ENTRY(n, struct req, llink);
		if (r->kind == K_AIOCB)
			F.aio_cancel(r->aiocb->aio_fildes, r->aiocb);
	}
	while (__atomic_load_n(&aev->tramp, __ATOMIC_ACQUIRE) != 0) {
		struct pollfd p = { .fd = aev->efd, .events = POLLIN };
		uint64_t count;
		if (poll(&p, 1, 10) > 0) {   /* a wake-up, or 10 ms */
			ssize_t rd = read(aev->efd, &count, sizeof count);
			(void)rd;
		}
	}
	/* The done stack's requests are on inflight too. */
	__atomic_store_n(&aev->done, NULL, __ATOMIC_RELAXED);
	for (struct ap_dnode *n = aev->inflight.head, *nn; n; n = nn) {
		nn = n->next;
		r = AP_DLIST_ENTRY(n, struct req, llink);
		if (r->kind == K_AIOCB)
			aiocb_result(r->aiocb);   /* take its result from aiopool */
		free(r);
	}
	while ((r = fifo_pop(&aev->ready))) {
		if (!r->has_res)
			aiocb_result(r->aiocb);
		free(r);
	}
	while ((r = fifo_pop(&aev->backlog)))
		free(r);
	free_list(aev->free_list);

	if (aev->reffed)
		ev_unref(aev->loop);
	ev_ref(aev->loop);   /* balances the ev_unref after starting */
	ev_io_stop(aev->loop, &aev->watcher);
	close(aev->efd);
	free(aev);
	errno = saved;
}

EXPORT void aiopool_ev_free(struct aiopool_ev *aev)
{
	if (!aev || aev->freeing)
		return;
	aev->freeing = true;
	if (aev->depth == 0)   /* else on_readable finishes it */
		teardown(aev);
}

EXPORT long aiopool_ev_pending(const struct aiopool_ev *aev)
{
	return aev ? aev->pending : -EINVAL;
}

EXPORT int aiopool_ev_set_batch(struct aiopool_ev *aev, unsigned int n)
{
	if (!aev || n == 0 || n > MAX_BATCH)
		return -EINVAL;
	aev->batch = n;
	return 0;
}
