/* internal.h: what the parts of aiopool share.  Every name here starts with
 * ap_ and is hidden from the dynamic symbol table.
 *
 * The parts (libaiopool; ev.c, the libev adapter, is a library of its own
 * on the public interfaces only and uses nothing here):
 *   queue.c   per-fd request queues and the run queue: the ordering rules;
 *             the fd flags cache (queue.h: the queues' own interface)
 *   pool.c    the engine: its lock, the worker threads, submission and
 *             cancellation, the knobs, stats, fork handling
 *   exec.c    executing one request (the system calls)
 *   notify.c  sigevent delivery and the SIGEV_THREAD notifier threads
 *   wait.c    futex wait channels (aio_suspend, lio_listio, io_getevents,
 *             io_destroy) and spinning before sleeping
 *   posix.c   the POSIX <aio.h> front end
 *   libaio.c  the libaio front end
 *   fdclose.c close, dup2 and dup3: cancelling what is queued on the fd;
 *             fcntl: keeping the fd flags cache true
 *   sysaio.c  syscall(3): the AIO system calls on aiopool's contexts
 *   exitstats.c  AIOPOOL_STATS: the stats line at exit and _exit
 *
 * Locks.  Every lock of aiopool's, by its name in the code:
 *   reg.lock          ctx.c     the context registry (a rwlock)
 *   poller.lock       poller.c  the POLL poller's list and wake-up pipe
 *   ctx->lock         libaio.c  a context's io_pgetevents waiters
 *   ctx->ring_lock    ctx.c     a context's ring (written in aio_finish)
 *   pin_lock          pool.c    making an fd queue, pinning its file
 *   engine.lock       pool.c    the engine; guards queue.c's state too
 *   cache.lock        reqcache.c the request cache
 *   np.lock           notify.c  the notifier queue and counts
 * posix.c, queue.c, exec.c, wait.c, thread.c, fdclose.c, ownfd.c,
 * sysaio.c, exitstats.c and ev.c have no lock of their own.
 *
 * The order, outside fork(): a lock may be taken while holding only locks
 * above it here, never the other way round:
 *   pin_lock
 *     -> engine.lock
 *       -> a front end's finish lock: the one lock ops->finish may take,
 *          a leaf of the front end's own (libaio's ctx->ring_lock, in
 *          aio_finish).  ops->finish also runs without engine.lock, for
 *          requests never queued; the front end takes it alone elsewhere
 *          (readers of the ring).
 *   Every other lock of a front end is taken alone, never across an
 *   engine call (libaio's reg.lock, poller.lock and ctx->lock: never two
 *   at once).  np.lock and cache.lock are
 *   leaves, taken alone.  No I/O system call, notification or user code
 *   runs under engine.lock (pthread_cond_* waits on it).
 *
 * The exception is fork(): pool.c's prepare handler (pthread_atfork)
 * takes a chain of locks, each held while the next is taken: the front
 * ends' prepare hooks (ap_atfork_register) first, libaio's taking
 * reg.lock (write) then poller.lock; then pin_lock, np.lock, engine.lock,
 * cache.lock.  Of the locks in the chain, only pin_lock and engine.lock
 * are ever held together outside it, in the chain's order, so the chain
 * cannot deadlock.
 * ctx->lock and ctx->ring_lock are not taken: the child forgets the
 * contexts.  The parent and child handlers release the chain.
 *
 * Every mutex is taken with ap_lock() and released with ap_unlock() (which
 * count it, see below); reg.lock, the one rwlock, with pthread_rwlock_*.
 */
#ifndef AP_INTERNAL_H
#define AP_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "dlist.h"

#define AP_HIDDEN __attribute__((visibility("hidden")))
/* The structure of type `type' whose member `member' ptr points to: how a
 * front end finds its request from the engine's struct ap_req. */
#define ap_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* A name of aiopool's ABI: the only names the library exports. */
#define AP_EXPORT_ATTR visibility("default")
#define AP_EXPORT __attribute__((AP_EXPORT_ATTR))
/* Exports impl under a name bound to a version node of
 * src/libaiopool.map: symver is "name@@VER" for the default a program
 * links against now, "name@VER" for an older one that binaries linked
 * before still ask for.  copy names the exported alias inside the library. */
#define AP_SYMVER(copy, impl, symver) \
	extern __typeof(impl) copy __attribute__((alias(#impl), AP_EXPORT_ATTR)); \
	__asm__(".symver " #copy ", " symver)

/* Operations the engine executes. */
enum ap_op {
	AP_OP_READ,    /* pread(fd, buf, nbytes, offset); read() if not seekable */
	AP_OP_WRITE,   /* pwrite (appends on O_APPEND); write() if not seekable */
	AP_OP_READV,   /* preadv2(fd, iov=buf, iovcnt=nbytes, offset, rw_flags) */
	AP_OP_WRITEV,  /* pwritev2 */
	AP_OP_FSYNC,   /* fsync: a barrier on its fd */
	AP_OP_FDSYNC,  /* fdatasync: a barrier on its fd */
};

/* Request states, owned by the engine (under engine.lock). */
enum ap_state {
	AP_ST_NEW,      /* filled in by a front end, not yet submitted */
	AP_ST_BLOCKED,  /* queued behind an ordering rule */
	AP_ST_READY,    /* may start; waits for a worker */
	AP_ST_RUNNING,  /* a worker executes it */
	AP_ST_DONE,     /* result published (ops->finish ran) */
};

/* What an operation does, for every rule that depends on it. */
static inline bool ap_op_reads(int op)
{
	return op == AP_OP_READ || op == AP_OP_READV;
}

static inline bool ap_op_writes(int op)
{
	return op == AP_OP_WRITE || op == AP_OP_WRITEV;
}

static inline bool ap_op_syncs(int op)   /* a barrier on its fd */
{
	return op == AP_OP_FSYNC || op == AP_OP_FDSYNC;
}

static inline bool ap_op_vector(int op)   /* buf is an iovec array */
{
	return op == AP_OP_READV || op == AP_OP_WRITEV;
}

struct ap_req;
struct ap_fdq;

/* What a front end does with a finished request. */
struct ap_ops {
	/* Make the result visible (aiocb fields, ring event): under
	 * engine.lock for a request the engine queued, without it for one
	 * it never did (ap_complete_unqueued), which nothing else can see.
	 * Cheap: no system call, no user code; safe on any thread at once for
	 * different requests. */
	void (*finish)(struct ap_req *r);
	/* Without any engine lock, once per request, after finish: wake
	 * waiters, deliver notifications, release the request. */
	void (*notify)(struct ap_req *r);
	/* In a fork() child, for each request the parent had queued or
	 * running in the engine (in the fd table or on a detached fdq): the
	 * child has no worker for it.  Not for a request never queued (a
	 * waiting POLL, an inline read another thread was doing), which the
	 * engine never saw.  Without locks; must not free r. */
	void (*orphan)(struct ap_req *r);
};

/* A notification to deliver: caller-provided storage, so that delivery
 * never fails for lack of memory.  It must live until done(arg) runs. */
struct ap_notify_node {
	struct ap_notify_node *next;
	struct sigevent sev;
	void (*done)(void *arg);
	void *arg;
};

/* A request, as the engine knows it.  A front end's request is a
 * structure of its own whose first member is this one (posix.c's px_req,
 * libaio.c's la_req): it allocates that with ap_req_alloc(sizeof) and
 * finds its part again from the struct ap_req * its ops get.  Nothing
 * here belongs to a front end. */
struct ap_req {
	size_t size;                  /* of the whole block (reqcache.c) */
	/* Engine links, under engine.lock. */
	struct ap_dnode qlink;        /* on its fdq's blocked, ready or running
	                                 list (queue.h) */
	struct ap_fdq *q;
	uint64_t seq;                 /* submission order */
	int prio;                     /* higher runs first */
	unsigned char state;          /* enum ap_state */
	bool fast;                    /* completed inline (fast path) */
	bool uncached;                /* the fast path found it not cached */
	bool on_file;                 /* its fd is a regular file or block
	                                 device: exit() waits for it */
	bool deep;                    /* set by the front end: its submitter
	                                 has others in flight or unreaped */
	bool quiet;                   /* cancelled by its owner, who takes
	                                 the result itself (io_cancel) */
	/* How its fd was at submission (F_GETFL, rw_flags), set by ap_submit
	 * for a queued request: the ordering rules and the run class use
	 * these, never what an earlier request found. */
	bool append;                  /* O_APPEND or RWF_APPEND: a write that
	                                 appends, one at a time, in order */
	bool direct;                  /* O_DIRECT: waits for the device */
	bool sync;                    /* O_SYNC, O_DSYNC, RWF_SYNC, RWF_DSYNC */
	/* Set by a front end that asked F_GETFL of fd itself at submission
	 * (libaio): the fast path takes O_DIRECT from fl, not from the cache
	 * (ap_fd_direct). */
	bool fl_known;
	int fl;

	/* The operation, set by the front end before ap_submit, then read-only. */
	unsigned char op;             /* enum ap_op */
	int fd;
	int rw_flags;                 /* RWF_* for preadv2/pwritev2 */
	void *buf;                    /* buffer, or struct iovec * for *V */
	size_t nbytes;                /* bytes, or iovec count for *V */
	off_t offset;
	const struct ap_ops *ops;

	/* The result, written by the executor before ops->finish. */
	ssize_t res;                  /* bytes or poll mask, -1 on error */
	int err;                      /* 0 or an errno value */

	struct ap_req *notify_next;       /* notify.c's queue */
};

/* The request whose qlink n is, or NULL; the next one on its list. */
static inline struct ap_req *ap_req_of(const struct ap_dnode *n)
{
	return n ? AP_DLIST_ENTRY(n, struct ap_req, qlink) : NULL;
}

static inline struct ap_req *ap_req_next(const struct ap_req *r)
{
	return ap_req_of(r->qlink.next);
}

/* ---- pool.c: the engine ------------------------------------------------ */

/* Knob values, read without the lock (atomics where they change).  Their
 * names, ranges and variables are in one table, knobs.c's knob_defs. */
struct ap_knobs {
	long max_threads;
	long idle_ms;
	long max_queued;
	long fd_concurrency;
	long cache;
	long fastpath;
	long runnable;
	long syscall_setup;   /* sysaio.c: syscall(SYS_io_setup) is aiopool's */
};

AP_HIDDEN extern struct ap_knobs ap_knobs;
/* knobs.c: is v in knob k's range (false for an unknown k)? */
AP_HIDDEN bool ap_knob_ok(int k, long v);
/* Stores v, checked by ap_knob_ok, into knob k. */
AP_HIDDEN void ap_knob_store(int k, long v);
/* At start-up: AIOPOOL_RUNNABLE to ncpus, then every knob whose
 * environment variable holds a number in its range. */
AP_HIDDEN void ap_knobs_init(int ncpus);

/* ---- reqcache.c: the request cache ------------------------------------ */

/* Allocates a zeroed front-end request of size bytes, whose first member
 * is its struct ap_req, from the cache when it can; NULL if out of
 * memory. */
AP_HIDDEN struct ap_req *ap_req_alloc(size_t size);
/* Frees r (keeps it in the cache while AIOPOOL_CACHE allows). */
AP_HIDDEN void ap_req_free(struct ap_req *r);
/* Frees cached blocks beyond AIOPOOL_CACHE (after aiopool_set). */
AP_HIDDEN void ap_req_cache_trim(void);
/* The cache's leaf lock, for the fork handlers alone (pool.c). */
AP_HIDDEN void ap_req_cache_lock(void);
AP_HIDDEN void ap_req_cache_unlock(void);

/* One front-end call that submits several requests (lio_listio,
 * io_submit): what it may still run inline, on the calling thread, and
 * what it has seen of an fd.  The front end starts it with ap_call_begin
 * and hands it to each of the call's ap_submit; it lives on the caller's
 * stack for the call only.  waits: the call returns only once all its
 * requests are done (lio_listio's LIO_WAIT), so its time is the I/O's
 * whoever does it: no budget, only the per-read cap.
 *
 * A call's requests are submitted at one instant, so one look at an fd
 * serves all of the call's requests on it (ap_call_getfl, and the fdq
 * ap_submit queued on last): a close() of that fd by aiopool while the
 * call runs detaches the fdq, and the requests after it look again. */
struct ap_call {
	size_t inline_left;   /* bytes of budget left; 0: spent, the rest of
	                         the call goes to the pool */
	struct { int fd, fl; } getfl;   /* fd's F_GETFL (fd -1: none yet) */
	struct {                        /* the fdq this call queued on last */
		int fd, pfd, fl;            /* fl: its F_GETFL then; -1: unknown,
		                               only reads may follow */
		uint64_t gen;               /* 0: none */
	} queued;
};
AP_HIDDEN void ap_call_begin(struct ap_call *call, bool waits);

/* fcntl(fd, F_GETFL) once per fd and call (call NULL: asks every time):
 * the flags, or -1 with errno set. */
AP_HIDDEN int ap_call_getfl(struct ap_call *call, int fd);

/* Queues r (state AP_ST_NEW) with priority prio, or runs it inline when
 * the fast path may (a cached read, within the per-request cap and call's
 * budget: call, or NULL for a call that submits r alone).  0, or an errno
 * value: EAGAIN when the queue bound is reached or no worker can run it.
 * On error r is untouched and still the caller's. */
AP_HIDDEN int ap_submit(struct ap_req *r, int prio, struct ap_call *call);

/* ---- fastpath.c: cached reads on the submitting thread ------------------ */

/* Runs r on the submitting thread when the fast path may (a cached read
 * within the per-read cap and call's budget, nothing on its fd that must
 * go first, kept by the offload policy) and the page cache serves all of
 * it: then r is complete (ap_complete_unqueued) and true.  Else false, r
 * untouched but for r->uncached (the cache could not serve it). */
AP_HIDDEN bool ap_try_inline(struct ap_req *r, struct ap_call *call);
/* pool.c, for the offload policy: workers awake to take a request without
 * a wake-up; *backlog: requests queued as of the last release of the
 * engine lock.  Read without the lock. */
AP_HIDDEN unsigned long ap_pool_awake(unsigned long *backlog);

/* Cancels queued requests on fd (or on every fd when fd < 0) for which
 * match(r, arg) is true: each gets err ECANCELED, res -1, r->quiet as
 * given, then finish and notify.  Counts what it cancelled and the
 * matching requests it could not cancel because they run. */
struct ap_cancel_result { int cancelled, running; };
AP_HIDDEN struct ap_cancel_result ap_cancel(int fd,
		bool (*match)(const struct ap_req *r, void *arg), void *arg,
		bool quiet);

/* Which queue fd has now, for ap_fd_replaced, called by close, dup2 and
 * dup3 (fdclose.c) before their system call: a number no other queue in the
 * process gets, or 0 when fd has none or the engine must not be entered
 * (the calling thread is inside aiopool, ap_in_lock: a signal handler that
 * interrupted it; or the engine is not this process's: a vfork or CLONE_VM
 * child).  Lock-free when fd has no requests. */
AP_HIDDEN uint64_t ap_fd_gen(int fd);

/* fd was closed or replaced: if its queue is still the one ap_fd_gen
 * named, what is still queued on it is cancelled, not quietly, and the
 * queue is detached: running requests finish on the file they started on
 * (its pinned descriptor), and the number is free for a new queue.  A
 * queue made since is for the new file and stays.  The engine itself
 * allocates, frees and starts nothing here; the cancelled requests'
 * notifications are delivered on the calling thread, and those may (a
 * released request, a SIGEV_THREAD thread).  With nothing queued on fd it
 * is async-signal-safe. */
AP_HIDDEN void ap_fd_replaced(int fd, uint64_t gen);

/* Closes an fd of aiopool's own (an eventfd duplicate, a wake-up pipe):
 * the system call only, which neither enters the engine nor acts on a
 * pending thread cancel, as the public close() does. */
AP_HIDDEN int ap_close(int fd);
/* A close-on-exec duplicate of fd for a descriptor of aiopool's own
 * (queue.c): at a high number, out of the way of the numbers programs
 * expect, never 0-2; -1 with errno set (EMFILE, EBADF). */
AP_HIDDEN int ap_fd_dup(int fd);

/* Is the calling process the engine's own: not a vfork or CLONE_VM child,
 * which shares the memory but must not use it?  Async-signal-safe. */
AP_HIDDEN bool ap_engine_here(void);

/* Registers a front end's fork handlers: prepare runs before the engine
 * lock is taken, parent/child after it is released. */
AP_HIDDEN void ap_atfork_register(void (*prepare)(void), void (*parent)(void),
		void (*child)(void));

/* Completes a request the front end could not queue (or ran inline):
 * bookkeeping for stats, then finish and notify, without the engine lock
 * (r was never in a queue). */
AP_HIDDEN void ap_complete_unqueued(struct ap_req *r);

/* ---- queue.c: the fd flags cache ------------------------------------- */

/* Is the open file description fd names in O_DIRECT mode?  1 or 0, or -1
 * if fd is not open.  From a per-fd-number cache of F_GETFL: an answer is
 * trusted for AP_FDFLAGS_TTL_MS by the coarse monotonic clock, then asked
 * again; ap_fd_flags_changed drops it at once.  Lock-free. */
#define AP_FDFLAGS_TTL_MS 1
AP_HIDDEN int ap_fd_direct(int fd);
/* fd was closed, replaced, duplicated onto or had its flags set (F_SETFL):
 * its cached flags are dropped.  Call it after the system call.
 * Async-signal-safe: it allocates nothing and takes no lock. */
AP_HIDDEN void ap_fd_flags_changed(int fd);

/* ---- exec.c ----------------------------------------------------------- */

/* Runs r's system call on fd (a worker passes its queue's pinned
 * descriptor, never the user's number) on the calling thread; sets r->res
 * and r->err.  seekable: pread/pwrite at r->offset, else read/write at the
 * position.  A write with r->append set appends (RWF_APPEND) whatever the
 * description's flags are by now. */
AP_HIDDEN void ap_exec(struct ap_req *r, int fd, bool seekable);
/* The bytes a read ap_exec_nowait may try would transfer, or 0 when it
 * cannot be tried (not a read, more than 16 segments, nothing to read, a
 * negative offset). */
AP_HIDDEN size_t ap_nowait_bytes(const struct ap_req *r);
/* Tries a read on fd, seekable, with RWF_NOWAIT: true if it transferred
 * everything asked (r->res, r->err set); false if it would have had to wait
 * for the device, came back short or failed, and r must be run with
 * ap_exec (a read can be done again). */
AP_HIDDEN bool ap_exec_nowait(struct ap_req *r, int fd);

/* ---- notify.c --------------------------------------------------------- */

/* Checks a sigevent for submission: 0 or EINVAL. */
AP_HIDDEN int ap_sigevent_check(const struct sigevent *sev);
/* Delivers node->sev: queues the signal now, or hands SIGEV_THREAD to a
 * notifier thread.  When delivery is over (the SIGEV_THREAD function has
 * returned), calls done(arg), on whichever thread delivered it. */
AP_HIDDEN void ap_notify(struct ap_notify_node *node);
/* Notifications that could not be sent (e.g. the signal queue was full). */
AP_HIDDEN extern unsigned long long ap_notify_failed;
AP_HIDDEN void ap_notify_atfork_child(void);
AP_HIDDEN void ap_notify_atfork_prepare(void);
AP_HIDDEN void ap_notify_atfork_parent(void);

/* ---- wait.c ----------------------------------------------------------- */

/* A wait channel: waiters sleep until seq changes. */
struct ap_chan {
	uint32_t seq;
	uint32_t waiters;
};
AP_HIDDEN void ap_chan_wake(struct ap_chan *c);
/* Sleeps while c->seq == seen, until deadline (CLOCK_MONOTONIC, NULL =
 * none).  0 when woken (maybe spuriously), ETIMEDOUT or EINTR.  Leaves
 * errno as it was. */
AP_HIDDEN int ap_chan_wait(struct ap_chan *c, uint32_t seen,
		const struct timespec *deadline);
/* The same, and a cancellation point (aio_suspend). */
AP_HIDDEN int ap_chan_wait_cancellable(struct ap_chan *c, uint32_t seen,
		const struct timespec *deadline);
static inline uint32_t ap_chan_seq(struct ap_chan *c)
{
	return __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
}
/* deadline = now (CLOCK_MONOTONIC) + rel.  rel must be valid. */
AP_HIDDEN void ap_deadline(struct timespec *deadline, const struct timespec *rel);
/* deadline = now (CLOCK_MONOTONIC) + ms milliseconds, ms >= 0. */
AP_HIDDEN void ap_deadline_ms(struct timespec *deadline, int ms);
AP_HIDDEN bool ap_timespec_valid(const struct timespec *ts);

/* ---- thread.c: aiopool's own threads ----------------------------------- */

/* Starts fn(arg) on a new thread with every signal blocked (the caller's
 * mask is put back), detached: with the attributes user if not NULL (a
 * joinable thread is detached once started), else with the default ones
 * and, if stack is not 0, a stack of that size (at least PTHREAD_STACK_MIN).
 * 0 or pthread_create's errno value. */
AP_HIDDEN int ap_thread_start(void *(*fn)(void *), void *arg,
		const pthread_attr_t *user, size_t stack);
/* Initialises cv with CLOCK_MONOTONIC for its timed waits. */
AP_HIDDEN void ap_cond_init(pthread_cond_t *cv);

/* ---- libaio.c: the AIO system calls, for syscall(3) (sysaio.c) ----------- *
 *
 * The kernel's arguments, libaio's results: a count or 0, or -errno.  Each
 * is the libaio function of the same name on an aiopool context (a handle
 * the kernel never made), with the kernel's checks in the kernel's order. */
struct iocb;
struct io_event;
/* The kernel's struct __aio_sigset, io_pgetevents' last argument. */
struct ap_aio_sigset {
	const sigset_t *sigmask;
	size_t sigsetsize;
};
/* Is id a live aiopool context?  Takes the registry's read lock. */
AP_HIDDEN bool ap_aio_ours(unsigned long id);
/* io_setup: a new aiopool context in *ctxp. */
AP_HIDDEN int ap_aio_setup(unsigned nr, unsigned long *ctxp);
AP_HIDDEN int ap_aio_destroy(unsigned long id);
AP_HIDDEN int ap_aio_submit(unsigned long id, long nr, struct iocb **ios);
AP_HIDDEN int ap_aio_cancel(unsigned long id, struct iocb *iocb,
		struct io_event *result);
/* io_getevents: timeout relative, NULL for none. */
AP_HIDDEN int ap_aio_getevents(unsigned long id, long min_nr, long nr,
		struct io_event *events, const struct timespec *timeout);
/* io_pgetevents: usig NULL, or a sigmask NULL, for the caller's mask;
 * else sigsetsize must be the kernel's 8 (-EINVAL). */
AP_HIDDEN int ap_aio_pgetevents(unsigned long id, long min_nr, long nr,
		struct io_event *events, const struct timespec *timeout,
		const struct ap_aio_sigset *usig);

/* ---- spinning --------------------------------------------------------- */

/* Online CPUs, at start-up.  Spinning only makes sense with more than one. */
AP_HIDDEN extern int ap_ncpus;
/* How long at most a thread about to sleep first spins waiting for what it
 * waits for: about the cost of the sleep and wake-up it may save. */
#define AP_SPIN_NS 20000L
/* Spins until cond(arg), for up to this thread's adaptive limit (at most
 * AP_SPIN_NS, less or none while spins keep failing); returns cond's last
 * value. */
AP_HIDDEN bool ap_spin(bool (*cond)(void *arg), void *arg);

/* ---- locks ------------------------------------------------------------ */

/* Every aiopool mutex is taken and released through these.  They count, per
 * thread, the aiopool locks the thread holds or is about to take, so that
 * close(), dup2() and dup3() (fdclose.c), which a signal handler may call
 * at any point, can tell that they interrupted aiopool on their own thread
 * and must not take a lock.  The count goes up before the lock is taken and
 * down after it is released, so a handler that runs in between sees it set
 * and stays away.  Initial-exec TLS: reading it never allocates, also in a
 * library that was dlopen()ed. */
AP_HIDDEN extern __thread int ap_locks_held __attribute__((tls_model("initial-exec")));

static inline void ap_lock(pthread_mutex_t *m)
{
	__atomic_add_fetch(&ap_locks_held, 1, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(m);
}

static inline void ap_unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&ap_locks_held, 1, __ATOMIC_RELAXED);
}

/* Does this thread hold, or is it taking, an aiopool lock? */
static inline bool ap_in_lock(void)
{
	return __atomic_load_n(&ap_locks_held, __ATOMIC_RELAXED) > 0;
}

/* ---- helpers ---------------------------------------------------------- */

#define AP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ap_load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ap_store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ap_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define ap_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define ap_add(p, v) __atomic_add_fetch((p), (v), __ATOMIC_ACQ_REL)

#endif
