/* pool.c: the engine: its lock, the worker threads, submission and
 * cancellation, the knobs, stats and fork().  The fast path that
 * ap_submit tries first is fastpath.c's; the request cache is reqcache.c's.
 *
 * Owns: `engine` below, and each thread's pins_seen (its own, no lock).
 * engine.lock guards the queues (queue.c), the thread
 * counts and the in-flight count.  Counters are atomics, bumped anywhere;
 * knobs are atomics read without the lock.  The request cache
 * (reqcache.c) has its own leaf lock; pin_lock serialises making fd
 * queues.  The lock
 * order, and the fork handlers' exception to it, are in internal.h.
 *
 * The close path (ap_fd_gen, ap_fd_replaced: close, dup2 and
 * dup3 call them, maybe from a signal handler) enters the engine only in the
 * engine's own process (engine_pid) and on a thread holding no aiopool lock;
 * the engine itself then allocates, frees and starts nothing, but the
 * notifications of the requests it cancels are delivered on the calling
 * thread (see aiopool(7)).
 *
 * No I/O system call, notification or user code runs under engine.lock,
 * but for pthread_cond_* on it: the pinned descriptors of fdqs that die in
 * a critical section are closed after it (engine_unlock).
 *
 * Files are pinned (queue.h): a queued submission looks at its fd (fstat,
 * F_GETFL, without the lock; for a read on an fd whose fdq pins its very
 * description, one kcmp: fdq_same_pin, with the thread's pins_seen; none
 * after the first on one fd in one call: call_same_pin), takes
 * its flags into the request, and finds
 * the fdq that pins the file the fd names now, or makes one; a queue whose
 * file the number no longer names is detached first, as close() would.
 * Workers make their system calls on the fdq's pinned descriptor, never on
 * the user's number, so a request runs on the file its fd named at
 * submission whatever happens to the number meanwhile.
 *
 * Workers are created on demand, up to AIOPOOL_MAX_THREADS; they block
 * every signal, and exit after AIOPOOL_IDLE_MS without work.  A worker
 * finishing a request picks its next one in the same critical section, then
 * notifies outside it.
 *
 * How many workers run: about one per CPU (AIOPOOL_RUNNABLE), plus one for
 * each worker blocked in I/O.  Queued work wakes or starts a worker only
 * while fewer than AIOPOOL_RUNNABLE are runnable ("active").  A worker
 * leaves the active set while it waits for a device: for a request that
 * will block (fsync, O_DIRECT, a pipe or socket, a read the cache cannot
 * serve), or when its RWF_NOWAIT attempt at a read says it would block.
 * So cached I/O runs on as many threads as CPUs, not on every thread the
 * pool may have, and slow I/O still gets a thread per request in flight.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aiopool.h"
#include "queue.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WORKER_STACK (1024 * 1024)
#else
#define WORKER_STACK (256 * 1024)  /* a system call and our bookkeeping */
#endif

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* idle workers wait here, CLOCK_MONOTONIC */
	struct ap_queues q;
	int nthreads;             /* workers alive or being started */
	int nactive;              /* runnable: not idle, not blocked in I/O */
	int nidle;                /* waiting on `work` */
	int nwaking;              /* signalled and not yet awake */
	long inflight_files;      /* accepted, not yet finished, on files and
	                             block devices (in flight: q.nqueued +
	                             q.nrunning) */
	int nspinning;            /* workers spinning for work (atomic) */
	int nfeeding;             /* workers running a request they will
	                             come back from at once, to take the
	                             next without a wake-up (atomic) */
	unsigned long backlog;    /* q.nqueued as of the last release of the
	                             lock: read unlocked by offload (atomic) */
	int npeer;                /* workers blocked on a pipe, socket or
	                             tty: they may never come back */
	bool draining;            /* exit(): finish what is on files */
	pthread_cond_t drained;   /* inflight_files reached 0 while draining */
} engine = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The process the engine belongs to: a vfork or CLONE_VM child shares its
 * memory, and must not touch it. */
static pid_t engine_pid;

int ap_ncpus = 1;
__thread int ap_locks_held __attribute__((tls_model("initial-exec")));

static struct {
	unsigned long long submitted, completed, cancelled, fastpath,
	                   threads_created;
} count;


#define knob(name) ap_load_relaxed(&ap_knobs.name)

/* Under engine.lock: what is queued, for offload() to read without it.
 * Stored only when it changed, so that the line stays shared. */
static void publish_backlog(void)
{
	if (ap_load_relaxed(&engine.backlog) != engine.q.nqueued)
		ap_store_relaxed(&engine.backlog, engine.q.nqueued);
}

/* Releases engine.lock, then closes the pinned descriptors of the fdqs that
 * became dead in the critical section (queue.h): no system call runs under
 * the lock.  Every release of engine.lock after a change to the queues goes
 * through here (or engine_unlock_nofree, on close()'s path). */
static void engine_unlock(void)
{
	struct ap_fdq *dead = engine.q.dead;

	engine.q.dead = NULL;
	publish_backlog();
	ap_unlock(&engine.lock);
	if (dead)
		ap_q_bury(dead);
}

/* engine_unlock for close()'s path, which may run in a signal handler and
 * so frees nothing: it closes the pinned descriptors of the fdqs that died
 * (a pipe closed through aiopool reaches EOF at once) and leaves the fdqs
 * on engine.q.dead, for the next engine_unlock to free. */
static void engine_unlock_nofree(void)
{
	struct ap_fdq *dead = engine.q.dead, *last;

	engine.q.dead = NULL;
	publish_backlog();
	ap_unlock(&engine.lock);
	if (!dead)
		return;
	ap_q_unpin(dead);
	for (last = dead; last->next_dead; last = last->next_dead)
		;
	ap_lock(&engine.lock);
	last->next_dead = engine.q.dead;
	engine.q.dead = dead;
	ap_unlock(&engine.lock);
}

/* ---- workers ----------------------------------------------------------- */

static void *worker(void *arg);

/* Starts a worker already counted in engine.nthreads: 0 or an errno. */
static int start_worker(void)
{
	int err = ap_thread_start(worker, NULL, NULL, WORKER_STACK);

	if (err) {
		ap_lock(&engine.lock);
		engine.nthreads--;
		engine.nactive--;
		engine_unlock();
		return err;
	}
	ap_add(&count.threads_created, 1);
	return 0;
}

/* While exit() drains the files' requests, a few workers more than the
 * limit may run: when every worker is blocked on a pipe or a socket, which
 * exit does not wait for, the files' requests still get threads.  A bounded
 * reserve, not a thread per request: the files' requests go through the
 * usual number of runnable workers. */
#define DRAIN_RESERVE 4

static int max_threads(void)
{
	return knob(max_threads) + (engine.draining ? DRAIN_RESERVE : 0);
}

static int runnable(void)
{
	return knob(runnable);
}

/* Requests accepted and not yet finished. */
static unsigned long inflight_locked(void)
{
	return engine.q.nqueued + engine.q.nrunning;
}

/* A request enters or leaves the engine's count of what is in flight on
 * files, which exit() drains. */
static void admit_locked(struct ap_req *r, const struct ap_fdq *q)
{
	r->on_file = q->kind.parallel && !engine.draining; /* exit waits for
	                        what was in flight, not for what keeps coming */
	engine.inflight_files += r->on_file;
}

static void retire_locked(struct ap_req *r)
{
	if (r->on_file && --engine.inflight_files == 0 && engine.draining)
		pthread_cond_broadcast(&engine.drained);
}

/* Work is queued and fewer workers than wanted are runnable: wakes an idle
 * worker, or reserves a new one (counted as active) for the caller to start
 * (true) when none is idle and the pool may grow. */
static bool kick_locked(void)
{
	if (!ap_q_has_work(&engine.q) ||
	    engine.nactive + engine.nwaking >= runnable())
		return false;
	if (engine.nidle > engine.nwaking) {
		engine.nwaking++;
		pthread_cond_signal(&engine.work);
		return false;
	}
	if (engine.nthreads < max_threads()) {
		engine.nthreads++;
		engine.nactive++;
		return true;
	}
	return false;
}

/* How a worker runs a request: staying runnable, or leaving the active set
 * for the time it waits for a device. */
enum run_class {
	RUN_CPU,     /* served by the page cache or buffered: stays active */
	RUN_PROBE,   /* a read: tried with RWF_NOWAIT first */
	RUN_BLOCK,   /* waits for a device or a peer */
};

static enum run_class run_class(const struct ap_req *r, const struct ap_fdkind *k)
{
	bool read = ap_op_reads(r->op);

	if (!k->parallel || r->direct || r->uncached ||
	    ap_op_syncs(r->op))
		return RUN_BLOCK;
	if (read)
		return RUN_PROBE;
	return r->sync ? RUN_BLOCK : RUN_CPU;
}

/* A running request is done: update its fd's queue, publish the result. */
static void finish_locked(struct ap_req *r)
{
	ap_q_done(&engine.q, r, knob(fd_concurrency));
	retire_locked(r);
	r->state = AP_ST_DONE;
	r->ops->finish(r);
	ap_add(&count.completed, 1);
}

static bool work_queued(void *arg)
{
	(void)arg;
	return ap_q_work_hint(&engine.q);
}

/* Before sleeping, an out-of-work worker spins a little with the lock
 * dropped: a submitter refilling its queue depth often brings the next
 * request within microseconds, and a worker that is awake and active
 * takes it without a wake-up. */
static bool spin_for_work(void)
{
	bool found;

	if (ap_ncpus < 2)
		return false;
	engine_unlock();
	ap_add(&engine.nspinning, 1);
	found = ap_spin(work_queued, NULL);
	ap_add(&engine.nspinning, -1);
	ap_lock(&engine.lock);
	return found && ap_q_has_work(&engine.q);
}

/* Waits for work for up to the idle time: false if none came. */
static bool idle_wait(void)
{
	int ms = knob(idle_ms);
	struct timespec deadline;
	int rc;

	/* Work queued while the lock was dropped (spin_for_work) found no
	 * worker to wake: this one must not sleep on it, nor exit. */
	if (ap_q_has_work(&engine.q))
		return true;
	if (ms < 0)
		return false;
	ap_deadline_ms(&deadline, ms);
	engine.nactive--;
	engine.nidle++;
	rc = pthread_cond_timedwait(&engine.work, &engine.lock, &deadline);
	engine.nidle--;
	engine.nactive++;
	if (engine.nwaking > 0)
		engine.nwaking--;
	return rc != ETIMEDOUT || ap_q_has_work(&engine.q);
}

/* Leaves the active set for a wait on a device, letting another worker
 * take the queue meanwhile. */
static void block_begin_locked(bool *spawn)
{
	engine.nactive--;
	*spawn |= kick_locked();
}

/* Runs r, of class cls, on this worker, on pfd, its queue's pinned
 * descriptor: the file r's fd named at submission, even if the number has
 * been closed and reused since.  Returns the class it ended in. */
static enum run_class run(struct ap_req *r, enum run_class cls, int pfd,
		bool seekable)
{
	bool spawn = false;

	if (cls == RUN_PROBE) {
		if (ap_exec_nowait(r, pfd))
			return cls;
		cls = RUN_BLOCK;
		ap_add(&engine.nfeeding, -1);   /* it waits for the device now */
		ap_lock(&engine.lock);
		block_begin_locked(&spawn);
		engine_unlock();
		if (spawn)
			start_worker();
	}
	ap_exec(r, pfd, seekable);
	return cls;
}

static void detach_stale(int fd, uint64_t gen);

/* A worker about to exit after its idle time looks at each idle fdq still
 * in the table: if its fd no longer names the file pfd pins (closed behind
 * aiopool's back: fclose, close_range, a raw system call), the fdq is
 * detached as aiopool's close() would, so that pfd does not keep that file
 * open (a pipe's writer from seeing EOF, a deleted file's space) for longer
 * than about the idle time.  Drops and retakes engine.lock. */
static void sweep_locked(void)
{
	for (int fd = 0; fd < engine.q.nfds; fd++) {
		struct ap_fdq *q = engine.q.fds[fd];
		struct ap_fdid id;
		uint64_t gen;

		if (!q || q->nactive || q->blocked.head)
			continue;
		id = q->id;
		gen = q->gen;
		engine_unlock();
		if (!ap_fd_same_file(fd, &id))
			detach_stale(fd, gen);
		ap_lock(&engine.lock);
	}
}

/* Is r to wait on a peer (pipe, socket, tty), maybe for ever? */
static bool on_peer(const struct ap_req *r, enum run_class cls)
{
	return cls == RUN_BLOCK && !r->q->kind.parallel;
}

/* Out of work for the idle time: true if the worker is to exit. */
static bool worker_retires(void)
{
	if (engine.nthreads > max_threads())
		return true;
	if (spin_for_work() || idle_wait())
		return false;
	sweep_locked();
	return !ap_q_has_work(&engine.q);
}

static void *worker(void *arg)
{
	struct ap_req *done = NULL;

	(void)arg;
	ap_lock(&engine.lock);
	for (;;) {
		struct ap_req *r = NULL;
		enum run_class cls;
		bool seekable, spawn, peer;
		int pfd;

		if (done)
			finish_locked(done);
		if (engine.nthreads <= max_threads())
			r = ap_q_pick(&engine.q, knob(fd_concurrency));
		if (!r && done) {
			engine_unlock();
			done->ops->notify(done);
			done = NULL;
			ap_lock(&engine.lock);
			continue;
		}
		if (!r) {
			if (worker_retires())
				break;
			continue;
		}
		seekable = r->q->kind.seekable;
		pfd = r->q->pfd;
		cls = run_class(r, &r->q->kind);
		peer = on_peer(r, cls);
		engine.npeer += peer;
		spawn = false;
		if (cls == RUN_BLOCK)
			block_begin_locked(&spawn);
		else
			spawn = kick_locked();
		if (cls != RUN_BLOCK)
			ap_add(&engine.nfeeding, 1);
		engine_unlock();

		if (done)
			done->ops->notify(done);
		if (spawn)
			start_worker();
		cls = run(r, cls, pfd, seekable);
		done = r;
		ap_lock(&engine.lock);
		engine.npeer -= peer;
		if (cls == RUN_BLOCK)
			engine.nactive++;
		else
			ap_add(&engine.nfeeding, -1);
	}
	engine.nactive--;
	engine.nthreads--;
	engine_unlock();
	return NULL;
}

/* ---- submission -------------------------------------------------------- */

/* No engine lock: no queue, canceller or fork child can see r, which
 * was never queued; finish needs only its own front end's locks. */
void ap_complete_unqueued(struct ap_req *r)
{
	r->state = AP_ST_DONE;
	r->ops->finish(r);
	ap_add(&count.submitted, 1);
	ap_add(r->err == ECANCELED ? &count.cancelled : &count.completed, 1);
	if (r->fast)
		ap_add(&count.fastpath, 1);
	r->ops->notify(r);
}

/* How many workers are awake to take a request without a wake-up
 * (spinning for work, or running one they will come back from at once),
 * and how many requests wait for one: read without the lock, for the fast
 * path's offload policy (fastpath.c). */
unsigned long ap_pool_awake(unsigned long *backlog)
{
	*backlog = ap_load_relaxed(&engine.backlog);
	return (unsigned long)ap_load_relaxed(&engine.nspinning) +
	       (unsigned long)ap_load_relaxed(&engine.nfeeding);
}

/* The request's own view of its fd's flags at submission (fl, F_GETFL)
 * and of its RWF_ flags: what the ordering rules and run_class look at. */
static void take_flags(struct ap_req *r, int fl)
{
	r->append = (fl & O_APPEND) || (r->rw_flags & RWF_APPEND);
	r->direct = (fl & O_DIRECT) != 0;
	r->sync = (fl & (O_SYNC | O_DSYNC)) ||
	          (r->rw_flags & (RWF_SYNC | RWF_DSYNC));
}

enum verdict { FDQ_SERVES, FDQ_STALE, FDQ_ASK };

/* Does q serve what id says its fd names now?  Another file: no.  The same
 * file and flags: yes.  Other flags: F_SETFL changed the description pfd
 * shares, or the number was closed and names another description of the
 * file now, whose access mode or flags pfd lacks; pfd's own flags tell
 * (FDQ_ASK), unless the access mode differs, which F_SETFL cannot change. */
static enum verdict fdq_verdict(const struct ap_fdq *q, const struct ap_fdid *id)
{
	if (!ap_fdid_same_file(&q->id, id) ||
	    ((q->id.flags ^ id->flags) & O_ACCMODE))
		return FDQ_STALE;
	return q->id.flags == id->flags ? FDQ_SERVES : FDQ_ASK;
}

/* FDQ_ASK for q (engine.lock held): drops the lock for an F_GETFL of pfd,
 * retakes it; q if it still serves r->fd (its flags updated), else NULL. */
static struct ap_fdq *fdq_ask(struct ap_fdq *q, int fd, const struct ap_fdid *id)
{
	int pfd = q->pfd, fl;
	uint64_t gen = q->gen;

	engine_unlock();
	fl = fcntl(pfd, F_GETFL);  /* pfd may be closed meanwhile: the answer
	                              counts only if q is still there, below */
	ap_lock(&engine.lock);
	q = ap_q_lookup(&engine.q, fd);
	if (!q || q->gen != gen)
		return NULL;
	if (fl != id->flags) {
		engine_unlock();
		detach_stale(fd, gen);
		ap_lock(&engine.lock);
		return NULL;
	}
	q->id.flags = fl;
	return q;
}

/* fdq_get's answer when id may be out of date: look at the fd again. */
#define FDQ_RETRY (-1)

/* The fdq for r->fd serving the file id describes, found or made (pinning
 * the file); a queue of an earlier file the number named is detached on
 * the way, exactly as aiopool's close() would.  id was taken when the
 * newest fdq was of generation seen: a queue made after that, which id
 * does not match, may be right and id stale, so it is never detached on
 * id's word (FDQ_RETRY).  0 with engine.lock held, or without it EAGAIN
 * (the file cannot be pinned, no memory), EBADF (the fd was closed
 * meanwhile) or FDQ_RETRY. */
/* Serialises making fdqs, so that two submitters that both find no fdq for
 * a new fd do not both pin it: closing the loser's duplicate would drop the
 * process's record locks on the file.  Taken before engine.lock. */
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;

/* r->fd has no fdq (called with engine.lock held, which it drops): pins the
 * file the fd names now and makes its fdq.  id and r's flags are taken
 * again from the duplicate, which names what the fd named at that moment.
 * 0 with engine.lock held; FDQ_RETRY if another thread made the fdq
 * meanwhile; else, without the lock, EBADF or EAGAIN (no descriptor or no
 * memory for the pin). */
static int fdq_make(struct ap_req *r, struct ap_fdid *id, struct ap_fdq **out)
{
	struct ap_fdkind kind;
	int pfd, err;

	engine_unlock();
	ap_lock(&pin_lock);
	ap_lock(&engine.lock);
	if (ap_q_lookup(&engine.q, r->fd)) {
		engine_unlock();
		ap_unlock(&pin_lock);
		return FDQ_RETRY;
	}
	engine_unlock();
	pfd = ap_fd_pin(r->fd, id, &kind);  /* system calls: unlocked */
	err = errno;
	if (pfd < 0) {
		ap_unlock(&pin_lock);
		return err == EBADF ? EBADF : EAGAIN;
	}
	take_flags(r, id->flags);
	ap_lock(&engine.lock);
	*out = ap_q_create(&engine.q, r->fd, pfd, id, kind);
	ap_unlock(&pin_lock);   /* only pin_lock's holder makes fdqs */
	if (*out)
		return 0;
	engine_unlock();
	ap_fd_unpin(pfd);
	return EAGAIN;
}

/* The fdq for r->fd serving the file id describes, found or made (pinning
 * the file); a queue of an earlier file the number named is detached on
 * the way, exactly as aiopool's close() would.  id was taken when the
 * newest fdq was of generation seen: a queue made after that, which id
 * does not match, may be right and id stale, so it is never detached on
 * id's word (FDQ_RETRY).  0 with engine.lock held, or without it EAGAIN
 * (the file cannot be pinned, no memory), EBADF (the fd was closed
 * meanwhile) or FDQ_RETRY. */
static int fdq_get(struct ap_req *r, struct ap_fdid *id, uint64_t seen,
		struct ap_fdq **out)
{
	struct ap_fdq *q;

	for (;;) {
		ap_lock(&engine.lock);
		q = ap_q_lookup(&engine.q, r->fd);
		if (!q)
			return fdq_make(r, id, out);
		enum verdict v = fdq_verdict(q, id);
		uint64_t gen = q->gen;

		if (v != FDQ_SERVES && gen > seen) {
			engine_unlock();
			return FDQ_RETRY;
		}
		if (v == FDQ_ASK && (q = fdq_ask(q, r->fd, id)) == NULL) {
			engine_unlock();
			continue;
		}
		if (v != FDQ_STALE)
			break;
		engine_unlock();
		detach_stale(r->fd, gen);
	}
	*out = q;
	return 0;
}

/* r->fd named no file when the newest fdq was of generation seen: a queue
 * left from the file it named before goes. */
static void fd_gone(int fd, uint64_t seen)
{
	struct ap_fdq *q;
	uint64_t gen = 0;

	if (!ap_q_maybe_busy(fd))
		return;
	ap_lock(&engine.lock);
	q = ap_q_lookup(&engine.q, fd);
	if (q && q->gen <= seen)
		gen = q->gen;
	engine_unlock();
	if (gen)
		detach_stale(fd, gen);
}

/* Is r, of submission number seq, still queued on q?  Only a request found
 * in q's lists is looked at: r itself may have run and been released. */
static bool still_queued(const struct ap_fdq *q, const struct ap_req *r,
		uint64_t seq)
{
	for (int i = 0; i < 2; i++)
		for (const struct ap_req *x = ap_req_of(i ? q->ready.head :
		                                                q->blocked.head);
		     x; x = ap_req_next(x))
			if (x == r && x->seq == seq)
				return true;
	return false;
}

/* A worker could not be started for r, queued on r->fd's fdq of
 * generation gen as submission seq: if no worker can ever come to it
 * (every one waits on a pipe, socket or tty, which may never end), r is
 * taken back: EAGAIN.  Else 0: a worker will run it, or has. */
static int undo_if_unstartable(struct ap_req *r, int fd, uint64_t gen,
		uint64_t seq)
{
	struct ap_fdq *q;

	ap_lock(&engine.lock);
	q = ap_q_lookup(&engine.q, fd);
	if (engine.nthreads <= engine.npeer && q && q->gen == gen &&
	    still_queued(q, r, seq) &&
	    ap_q_remove(&engine.q, r, knob(fd_concurrency))) {
		retire_locked(r);
		engine_unlock();
		ap_add(&count.submitted, -1ULL);
		r->state = AP_ST_NEW;
		return EAGAIN;
	}
	engine_unlock();
	return 0;
}

/* Does fd name the very open file description pfd does (kcmp KCMP_FILE)?
 * False when it does not, or when kcmp cannot tell (a kernel without it,
 * a seccomp filter): then it is not asked again. */
static bool same_description(int fd, int pfd)
{
	static int works = 1;
	pid_t pid = ap_load_relaxed(&engine_pid);
	long rc;

	if (!ap_load_relaxed(&works))
		return false;
	rc = syscall(SYS_kcmp, pid, pid, KCMP_FILE, fd, pfd);
	if (rc < 0 && errno != EBADF)
		ap_store_relaxed(&works, 0);
	return rc == 0;
}

/* The fdqs this thread's submissions were last queued on, by fd number:
 * where fdq_same_pin looks for the pinned descriptor to compare with,
 * without the lock.  What it finds there counts only if the fdq of that
 * generation is still in the table afterwards. */
#define PINS_SEEN 16
static __thread struct pin_seen {
	int fd, pfd;
	uint64_t gen;       /* 0: none */
} pins_seen[PINS_SEEN];

/* Takes engine.lock, and r->fd's fdq if it is still the one numbered gen
 * that pins pfd (then pfd was open throughout, and the fd was seen naming
 * it).  r takes fl as its flags, or, for fl < 0 (a read), the fdq's with
 * O_DIRECT as direct says.  0 with engine.lock held and *out set, or -1
 * without it. */
static int queue_on_seen(struct ap_req *r, uint64_t gen, int pfd, int fl,
		int direct, struct ap_fdq **out)
{
	struct ap_fdq *q;

	ap_lock(&engine.lock);
	q = ap_q_lookup(&engine.q, r->fd);
	if (!q || q->gen != gen || q->pfd != pfd) {
		engine_unlock();
		return -1;
	}
	take_flags(r, fl >= 0 ? fl :
	              direct ? q->id.flags | O_DIRECT : q->id.flags & ~O_DIRECT);
	*out = q;
	return 0;
}

/* r's flags when known without asking: the front end's F_GETFL (r->fl)
 * or, from this call, given; else -1.  O_DIRECT of a read with neither
 * (*direct) comes from the flags cache (ap_fd_direct); -2 when even that
 * cannot tell (the fd is not open): take the long way. */
static int known_flags(const struct ap_req *r, int given, int *direct)
{
	if (r->fl_known)
		return r->fl;
	if (given >= 0)
		return given;
	if (!ap_op_reads(r->op) || (*direct = ap_fd_direct(r->fd)) < 0)
		return -2;
	return -1;
}

/* The hand-off of a read at the cost of one system call: when r->fd names
 * the very description its fdq pins, the fd names the file the fdq serves
 * with the access mode of the pin, which is all a read needs (a read has
 * no append or sync rule).  Its O_DIRECT, which decides how a worker runs
 * it (run_class), is the fd's now: the F_GETFL io_submit made, or the
 * flags cache (ap_fd_direct), not what the fdq saw when it asked last.
 * pfd is the pin this thread saw the fdq with (pins_seen).  0 with
 * engine.lock held, *out set and *fl the flags known without asking
 * (known_flags; -1: none), or -1 without the lock: take the long way
 * (fstat, F_GETFL). */
static int fdq_same_pin(struct ap_req *r, struct ap_fdq **out, int *fl)
{
	struct pin_seen *seen = &pins_seen[r->fd % PINS_SEEN];
	int saved = errno, direct = 0;
	bool same;

	if (!ap_op_reads(r->op) || seen->gen == 0 || seen->fd != r->fd)
		return -1;
	same = same_description(r->fd, seen->pfd);
	errno = saved;
	if (!same || (*fl = known_flags(r, -1, &direct)) == -2)
		return -1;
	return queue_on_seen(r, seen->gen, seen->pfd, *fl, direct, out);
}

/* A request of a call that has queued on r->fd's fdq already: the fd was
 * looked at then, for the whole call (struct ap_call), so no system call.
 * As fdq_same_pin; without flags from then (a read that fdq_same_pin let
 * through), only a read. */
static int call_same_pin(struct ap_req *r, const struct ap_call *call,
		struct ap_fdq **out, int *fl)
{
	int direct = 0;

	if (!call || call->queued.gen == 0 || call->queued.fd != r->fd ||
	    (*fl = known_flags(r, call->queued.fl, &direct)) == -2)
		return -1;
	return queue_on_seen(r, call->queued.gen, call->queued.pfd, *fl, direct,
	                     out);
}

/* Under engine.lock: q is the fdq r->fd's submission was queued on. */
static void pin_note(const struct ap_fdq *q)
{
	struct pin_seen *seen = &pins_seen[q->fd % PINS_SEEN];

	*seen = (struct pin_seen){ q->fd, q->pfd, q->gen };
}

/* Under engine.lock: call (maybe NULL) queued on q, with fl the fd's
 * flags as it saw them (-1: not asked). */
static void call_note(struct ap_call *call, const struct ap_fdq *q, int fl)
{
	if (call) {
		call->queued.fd = q->fd;
		call->queued.pfd = q->pfd;
		call->queued.fl = fl;
		call->queued.gen = q->gen;
	}
}

/* Queued submissions look at the fd (fstat, F_GETFL: two system calls, no
 * lock; for a read on an fd whose queue pins its very description, one:
 * fdq_same_pin): the request runs with the flags the fd has now, on the
 * file it names now, pinned. */
int ap_submit(struct ap_req *r, int prio, struct ap_call *call)
{
	struct ap_fdid id;
	struct ap_fdq *q;
	uint64_t seen, gen, seq;
	int fd = r->fd, err, fl;
	bool spawn;

	r->prio = prio;
	if (r->fd < 0)
		goto bad_fd;
	if (ap_try_inline(r, call))
		return 0;
	if (call_same_pin(r, call, &q, &fl) == 0 ||
	    fdq_same_pin(r, &q, &fl) == 0)
		goto queue;
	do {
		seen = ap_load(&engine.q.gen);
		if (ap_fd_id(r->fd, &id) != 0) {
			fd_gone(r->fd, seen);
			goto bad_fd;
		}
		take_flags(r, id.flags);
	} while ((err = fdq_get(r, &id, seen, &q)) == FDQ_RETRY);
	if (err == EBADF)
		goto bad_fd;
	if (err)
		return err;
	fl = id.flags;
queue:
	if (inflight_locked() >= (unsigned long)knob(max_queued)) {
		engine_unlock();
		return EAGAIN;
	}
	pin_note(q);
	call_note(call, q, fl);
	ap_q_enqueue(&engine.q, q, r, knob(fd_concurrency));
	admit_locked(r, q);
	gen = q->gen;
	seq = r->seq;
	spawn = kick_locked();
	engine_unlock();
	ap_add(&count.submitted, 1);
	if (spawn && start_worker() != 0)
		return undo_if_unstartable(r, fd, gen, seq);
	return 0;

bad_fd:
	/* Accepted, and reported through the request as EBADF. */
	r->res = -1;
	r->err = EBADF;
	ap_complete_unqueued(r);
	return 0;
}

/* ---- cancellation and inspection ---------------------------------------- */

static void collect(struct ap_req *first, bool (*match)(const struct ap_req *, void *),
		void *arg, struct ap_req **out, int *n)
{
	for (struct ap_req *r = first; r; r = ap_req_next(r))
		if (match(r, arg)) {
			r->notify_next = *out;
			*out = r;
			(*n)++;
		}
}

/* Is fd's queue the one numbered gen (0: any)? */
static bool gen_matches(int fd, uint64_t gen)
{
	struct ap_fdq *q;

	if (gen == 0)
		return true;
	q = ap_q_lookup(&engine.q, fd);
	return q && q->gen == gen;
}

/* ap_cancel; with detach (fd >= 0), also takes fd's queue out of the table
 * in the same critical section, so that nothing submitted meanwhile is left
 * queued on a detached queue; and then only if that queue is the one
 * numbered gen (0: whichever it is).  With detach it is on close()'s path
 * (maybe in a signal handler): it starts no thread and frees nothing. */
static struct ap_cancel_result cancel(int fd,
		bool (*match)(const struct ap_req *r, void *arg), void *arg,
		bool quiet, bool detach, uint64_t gen)
{
	struct ap_cancel_result res = { 0, 0 };
	struct ap_req *victims = NULL, *r, *next, *done = NULL;
	int lo, hi, limit;
	bool spawn;

	ap_lock(&engine.lock);
	if (!gen_matches(fd, gen)) {
		ap_unlock(&engine.lock);
		return res;
	}
	limit = knob(fd_concurrency);
	lo = fd < 0 ? 0 : fd;
	hi = fd < 0 ? engine.q.nfds : (fd < engine.q.nfds ? fd + 1 : 0);
	for (int i = lo; i < hi; i++) {
		struct ap_fdq *q = engine.q.fds[i];
		int dummy = 0;
		if (!q)
			continue;
		collect(ap_req_of(q->blocked.head), match, arg, &victims, &dummy);
		collect(ap_req_of(q->ready.head), match, arg, &victims, &dummy);
		for (r = ap_req_of(q->running.head); r; r = ap_req_next(r))
			res.running += match(r, arg);
	}
	for (r = victims; r; r = next) {
		next = r->notify_next;
		ap_q_remove(&engine.q, r, limit);
		retire_locked(r);
		r->state = AP_ST_DONE;
		r->res = -1;
		r->err = ECANCELED;
		r->quiet = quiet;
		r->ops->finish(r);
		r->notify_next = done;
		done = r;
		res.cancelled++;
	}
	/* A close starts no thread (it may run in a signal handler), and has
	 * made nothing ready: it cancelled all that was queued on fd. */
	if (detach)
		ap_q_detach(&engine.q, fd);
	spawn = !detach && kick_locked();
	if (detach)
		engine_unlock_nofree();
	else
		engine_unlock();
	if (spawn)
		start_worker();
	ap_add(&count.cancelled, (unsigned long long)res.cancelled);
	for (r = done; r; r = next) {
		next = r->notify_next;
		r->ops->notify(r);
	}
	return res;
}

struct ap_cancel_result ap_cancel(int fd,
		bool (*match)(const struct ap_req *r, void *arg), void *arg,
		bool quiet)
{
	return cancel(fd, match, arg, quiet, false, 0);
}

static bool any_request(const struct ap_req *r, void *arg)
{
	(void)r;
	(void)arg;
	return true;
}

/* fd's queue of generation gen serves a file the number no longer names
 * (closed behind aiopool's back): it goes exactly as at aiopool's close(),
 * unless it has gone already. */
static void detach_stale(int fd, uint64_t gen)
{
	cancel(fd, any_request, NULL, false, true, gen);
}


/* May close(fd), dup2 or dup3 enter the engine for fd?  Only if fd has a
 * queue, this thread is not inside aiopool (a signal handler that
 * interrupted it would wait for a lock the thread holds) and this is the
 * engine's process.  The system call for the pid is made only for an fd
 * with requests. */
static bool may_enter(int fd)
{
	return ap_q_maybe_busy(fd) && !ap_in_lock() &&
	       (pid_t)syscall(SYS_getpid) == ap_load_relaxed(&engine_pid);
}

bool ap_engine_here(void)
{
	return (pid_t)syscall(SYS_getpid) == ap_load_relaxed(&engine_pid);
}

uint64_t ap_fd_gen(int fd)
{
	struct ap_fdq *q;
	uint64_t gen;

	if (!may_enter(fd))
		return 0;
	ap_lock(&engine.lock);
	q = ap_q_lookup(&engine.q, fd);
	gen = q ? q->gen : 0;
	ap_unlock(&engine.lock);
	return gen;
}

void ap_fd_replaced(int fd, uint64_t gen)
{
	if (gen && may_enter(fd))
		cancel(fd, any_request, NULL, false, true, gen);
}

/* ---- knobs (knobs.c has their table) and stats --------------------------- */

AP_EXPORT int aiopool_set(int k, long v)
{
	int spawn = 0;

	if (!ap_knob_ok(k, v)) {
		errno = EINVAL;
		return -1;
	}
	ap_lock(&engine.lock);
	ap_knob_store(k, v);
	if (k == AIOPOOL_FD_CONCURRENCY)
		ap_q_relimit(&engine.q, (int)v);
	/* Idle workers look again: fewer threads, a new idle time. */
	pthread_cond_broadcast(&engine.work);
	/* More threads allowed, or more requests per fd may run: start what
	 * the queued work can use now. */
	while (engine.nidle == 0 && kick_locked())
		spawn++;
	engine_unlock();
	while (spawn-- > 0)
		start_worker();
	if (k == AIOPOOL_CACHE)
		ap_req_cache_trim();
	return 0;
}

AP_EXPORT int aiopool_stats(struct aiopool_stats *st, unsigned long size)
{
	struct aiopool_stats s = { 0 };

	if (!st || size < offsetof(struct aiopool_stats, reserved)) {
		errno = EINVAL;
		return -1;
	}
	ap_lock(&engine.lock);
	s.threads = (unsigned long)engine.nthreads;
	s.idle_threads = (unsigned long)engine.nidle;
	s.queued = engine.q.nqueued;
	s.running = engine.q.nrunning;
	engine_unlock();
	s.submitted = ap_load(&count.submitted);
	s.completed = ap_load(&count.completed);
	s.cancelled = ap_load(&count.cancelled);
	s.fastpath = ap_load(&count.fastpath);
	s.threads_created = ap_load(&count.threads_created);
	s.notify_failed = ap_load(&ap_notify_failed);
	memcpy(st, &s, size < sizeof s ? size : sizeof s);
	return 0;
}

/* ---- start-up and fork ------------------------------------------------- */

#define MAX_FRONT_ENDS 4
static struct {
	void (*prepare)(void), (*parent)(void), (*child)(void);
} fork_hooks[MAX_FRONT_ENDS];
static int nfork_hooks;

void ap_atfork_register(void (*prepare)(void), void (*parent)(void),
		void (*child)(void))
{
	fork_hooks[nfork_hooks].prepare = prepare;
	fork_hooks[nfork_hooks].parent = parent;
	fork_hooks[nfork_hooks].child = child;
	nfork_hooks++;
}

static void fork_prepare(void)
{
	for (int i = nfork_hooks - 1; i >= 0; i--)
		if (fork_hooks[i].prepare)
			fork_hooks[i].prepare();
	ap_lock(&pin_lock);
	ap_notify_atfork_prepare();
	ap_lock(&engine.lock);
	ap_req_cache_lock();
}

static void fork_parent(void)
{
	ap_req_cache_unlock();
	ap_unlock(&engine.lock);
	ap_notify_atfork_parent();
	ap_unlock(&pin_lock);
	for (int i = 0; i < nfork_hooks; i++)
		if (fork_hooks[i].parent)
			fork_hooks[i].parent();
}

static void orphan(struct ap_req *r)
{
	r->ops->orphan(r);
	free(r);
}

/* The engine lock is held for microseconds at a time: spinning a little on
 * contention beats sleeping (glibc's adaptive mutex). */
static void init_lock(void)
{
	pthread_mutexattr_t ma;

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&engine.lock, &ma);
	pthread_mutexattr_destroy(&ma);
}

static void init_cond(void)
{
	ap_cond_init(&engine.work);
	ap_cond_init(&engine.drained);
}

/* The child has none of the parent's workers: it starts with an empty
 * engine.  What the parent had in flight is handed to its front end
 * (ops->orphan), which marks it as it documents. */
static void fork_child(void)
{
	uint64_t gen = engine.q.gen;

	ap_req_cache_unlock();
	ap_store_relaxed(&engine_pid, (pid_t)syscall(SYS_getpid));
	ap_q_reset(&engine.q, orphan);
	engine.q.gen = gen;   /* generations stay unique: the forking
	                         thread's pins_seen name the parent's */
	engine.nthreads = engine.nactive = engine.nidle = engine.nwaking = 0;
	engine.npeer = engine.nspinning = engine.nfeeding = 0;
	engine.backlog = 0;
	engine.inflight_files = 0;
	memset(&count, 0, sizeof count);
	init_cond();
	ap_unlock(&engine.lock);
	ap_notify_atfork_child();
	ap_unlock(&pin_lock);   /* no thread of the parent's is here to hold it */
	for (int i = 0; i < nfork_hooks; i++)
		if (fork_hooks[i].child)
			fork_hooks[i].child();
}

__attribute__((constructor)) static void ap_init(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	ap_ncpus = cpus < 1 ? 1 : cpus > 1024 ? 1024 : (int)cpus;
	ap_store_relaxed(&engine_pid, (pid_t)syscall(SYS_getpid));
	init_lock();
	init_cond();
	ap_knobs_init(ap_ncpus);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* At exit(), requests on files and block devices still queued or running
 * are finished first: kernel AIO waits for its I/O at exit too, and a
 * program that wrote with aio_write or io_submit and returned from main
 * expects its data written.  Requests on pipes and sockets may wait
 * forever and are not waited for.  The pool may grow by DRAIN_RESERVE
 * workers past its limit for this, so that workers stuck on those do not
 * hold it up; and if nothing at all completes for DRAIN_STALL_S seconds,
 * exit goes on regardless. */
#define DRAIN_STALL_S 30

__attribute__((destructor)) static void ap_fini(void)
{
	unsigned long long seen = ~0ULL;
	int spawn = 0;

	ap_lock(&engine.lock);
	if (engine.inflight_files == 0) {
		engine_unlock();
		return;
	}
	engine.draining = true;
	while (engine.nidle == 0 && kick_locked())
		spawn++;
	pthread_cond_broadcast(&engine.work);
	engine_unlock();
	while (spawn-- > 0)
		start_worker();

	ap_lock(&engine.lock);
	while (engine.inflight_files > 0) {
		unsigned long long done = ap_load(&count.completed) + ap_load(&count.cancelled);
		struct timespec deadline;

		if (done == seen)
			break;   /* stalled: give up rather than hang */
		seen = done;
		ap_deadline(&deadline, &(struct timespec){ DRAIN_STALL_S, 0 });
		while (engine.inflight_files > 0 &&
		       pthread_cond_timedwait(&engine.drained, &engine.lock, &deadline) != ETIMEDOUT)
			;
	}
	engine_unlock();
}
