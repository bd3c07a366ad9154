/* queue.c: per-fd request queues and the run heap.
 *
 * Owns: the fd table (fdq per fd number with requests), the list of detached
 * fdqs (their fd was closed while requests ran; they live until those are
 * done), each fdq's lists, the run heap of fdqs.  Everything here is
 * guarded by engine.lock (pool.c), which every caller holds; this file
 * takes no lock itself.  Two bit maps by fd number are also read without
 * it: the busy map (has an fdq) for close(), the order map (a read must
 * queue) for the fast path; they are written under the lock with atomics.
 *
 * The ordering rules live here: may_activate() says when a queued request
 * may start (what POSIX orders is serialised, everything else on a regular
 * file may run side by side), ap_q_may_bypass() when a read may skip the
 * queue and run on its submitting thread.  They look at each request's own
 * flags (struct ap_req's append), never at what an fd's flags were when its
 * fdq was made.
 *
 * The ap_fd_ functions are the exception to "no system call": they look at
 * and pin fds, and are called without the lock.  So is the fd flags cache
 * (ap_fd_direct, ap_fd_flags_changed), lock-free, which answers the fast
 * path's question "is this fd O_DIRECT?" without a system call per read.
 * Priority picks among ready requests only, so it never moves a request
 * past a barrier or an ordered write.  The heap is keyed by each fdq's best
 * ready request (priority, then submission order), so workers take requests
 * in global priority order, FIFO among equals, across fds.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

/* ---- lists ------------------------------------------------------------- */

static void list_unlink(struct ap_dlist *l, struct ap_req *r)
{
	ap_dlist_unlink(l, &r->qlink);
}

static void list_append(struct ap_dlist *l, struct ap_req *r)
{
	ap_dlist_push_back(l, &r->qlink);
}

/* ---- fds ------------------------------------------------------------- */

int ap_fd_id(int fd, struct ap_fdid *id)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fstat(fd, &st) < 0)
		return errno;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->type = st.st_mode & S_IFMT;
	id->flags = fl;
	return 0;
}

bool ap_fd_same_file(int fd, const struct ap_fdid *id)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == id->dev &&
	       st.st_ino == id->ino && (st.st_mode & S_IFMT) == id->type;
}

/* Where pinned duplicates go: high, out of the way of programs that expect
 * low numbers (select's FD_SETSIZE), but well inside the fd limit. */
static int pin_base(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1024;
	return rl.rlim_cur / 2 < 1024 ? (int)(rl.rlim_cur / 2) : 1024;
}

int ap_fd_dup(int fd)
{
	int base = pin_base(), d;

	/* Never 0-2: a daemon that closes stdin and opens /dev/null expects
	 * to get 0.  Low numbers only when no high one is free (EMFILE, or
	 * EINVAL: the limit went down since): not on EBADF, when the fd may
	 * name another file a moment later, which the retry would pin low. */
	d = fcntl(fd, F_DUPFD_CLOEXEC, base < 3 ? 3 : base);
	if (d < 0 && base > 3 && (errno == EMFILE || errno == EINVAL))
		d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return d;
}

int ap_fd_pin(int fd, struct ap_fdid *id, struct ap_fdkind *kind)
{
	int pfd = ap_fd_dup(fd), err;

	if (pfd < 0)
		return -1;
	/* The number may have been closed and reused since id was taken: what
	 * is pinned is what it names now.  The duplicate is kept either way,
	 * since closing a descriptor of a file drops the process's record
	 * locks on it. */
	if ((err = ap_fd_id(pfd, id)) != 0) {
		ap_fd_unpin(pfd);
		errno = err;
		return -1;
	}
	kind->parallel = S_ISREG(id->type) || S_ISBLK(id->type);
	if (kind->parallel)
		kind->seekable = true;
	else if (!S_ISFIFO(id->type) && !S_ISSOCK(id->type))
		kind->seekable = lseek(pfd, 0, SEEK_CUR) >= 0; /* char devices vary */
	else
		kind->seekable = false;
	return pfd;
}

void ap_fd_unpin(int pfd)
{
	int saved = errno;

	ap_close(pfd);   /* not our close(): no queue to look at */
	errno = saved;
}

void ap_q_unpin(struct ap_fdq *dead)
{
	for (struct ap_fdq *q = dead; q; q = q->next_dead) {
		/* A program that closed descriptors it did not open
		 * (close_range) may have the number for a file of its own. */
		if (q->pfd >= 0 && ap_fd_same_file(q->pfd, &q->id))
			ap_fd_unpin(q->pfd);
		q->pfd = -1;
	}
}

void ap_q_bury(struct ap_fdq *dead)
{
	ap_q_unpin(dead);
	while (dead) {
		struct ap_fdq *q = dead;

		dead = q->next_dead;
		free(q);
	}
}

static bool is_append(const struct ap_req *r)
{
	return r->append && ap_op_writes(r->op);
}

/* The ordering rules: may r start now, given what is active on q?  Whether
 * a write appends is the request's own (its fd's O_APPEND at submission,
 * or RWF_APPEND), so an fd whose flags change keeps each write in its
 * place. */
static bool may_activate(const struct ap_fdq *q, const struct ap_req *r)
{
	if (!q->kind.parallel)          /* pipes, sockets, ttys: one at a time */
		return q->nactive == 0;
	if (q->barrier_active)          /* nothing passes a pending fsync */
		return false;
	if (ap_op_syncs(r->op))              /* fsync waits for all before it */
		return q->nactive == 0;
	if (is_append(r))               /* appends in order, one at a time, */
		return q->nactive_writes == 0;
	if (ap_op_writes(r->op))                /* and no write passes one */
		return q->nactive_appends == 0;
	return true;
}

bool ap_q_may_bypass(const struct ap_fdq *q)
{
	return !q || (q->kind.parallel && !q->blocked.head && !q->barrier_active);
}

/* ---- the run heap ------------------------------------------------------ */

/* Is a's best ready request to run before b's? */
static bool heap_before(const struct ap_fdq *a, const struct ap_fdq *b)
{
	const struct ap_req *x = ap_req_of(a->ready.head);
	const struct ap_req *y = ap_req_of(b->ready.head);

	if (x->prio != y->prio)
		return x->prio > y->prio;
	return x->seq < y->seq;
}

static void heap_set(struct ap_queues *qs, int i, struct ap_fdq *q)
{
	qs->heap[i] = q;
	q->heap_idx = i;
}

static void heap_up(struct ap_queues *qs, int i)
{
	struct ap_fdq *q = qs->heap[i];

	while (i > 0) {
		int parent = (i - 1) / 2;
		if (!heap_before(q, qs->heap[parent]))
			break;
		heap_set(qs, i, qs->heap[parent]);
		i = parent;
	}
	heap_set(qs, i, q);
}

static void heap_down(struct ap_queues *qs, int i)
{
	struct ap_fdq *q = qs->heap[i];

	for (;;) {
		int c = 2 * i + 1;
		if (c >= qs->nheap)
			break;
		if (c + 1 < qs->nheap && heap_before(qs->heap[c + 1], qs->heap[c]))
			c++;
		if (!heap_before(qs->heap[c], q))
			break;
		heap_set(qs, i, qs->heap[c]);
		i = c;
	}
	heap_set(qs, i, q);
}

static void heap_remove(struct ap_queues *qs, struct ap_fdq *q)
{
	int i = q->heap_idx;
	struct ap_fdq *last = qs->heap[qs->nheap - 1];

	ap_store_relaxed(&qs->nheap, qs->nheap - 1);

	q->heap_idx = -1;
	if (last == q)
		return;
	heap_set(qs, i, last);
	heap_up(qs, i);
	heap_down(qs, last->heap_idx);
}

/* Puts q in the heap, takes it out, or moves it, to match its state.  The
 * heap array always has room for every fdq (see ap_q_create). */
static void heap_fix(struct ap_queues *qs, struct ap_fdq *q, int limit)
{
	bool want = q->ready.head && q->nrunning < (unsigned)limit;

	if (!want) {
		if (q->heap_idx >= 0)
			heap_remove(qs, q);
		return;
	}
	if (q->heap_idx < 0) {
		q->heap_idx = qs->nheap;
		ap_store_relaxed(&qs->nheap, qs->nheap + 1);
		qs->heap[q->heap_idx] = q;
	}
	heap_up(qs, q->heap_idx);
	heap_down(qs, q->heap_idx);
}

/* ---- the busy map ------------------------------------------------------ */

/* One bit per fd number that has an fdq, readable without the lock so that
 * close() costs nothing for fds without requests, and stays async-signal
 * safe for them.  Chunks are allocated under the lock and never freed
 * (their addresses must stay valid for lock-free readers). */
#define MAP_CHUNK_BITS 16                        /* 65536 fds a chunk */
#define MAP_CHUNKS (1 << (31 - MAP_CHUNK_BITS))
#define MAP_WORDS ((1 << MAP_CHUNK_BITS) / 64)
static uint64_t *busy_map[MAP_CHUNKS];

/* The same layout for the order map: one bit per fd number whose fdq makes
 * a read wait its turn (ap_q_may_bypass says no), so that the fast path asks
 * without the lock.  Its chunks are made with the busy map's. */
static uint64_t *order_map[MAP_CHUNKS];

static uint64_t *map_word_in(uint64_t **map, int fd, bool create)
{
	uint64_t *chunk = ap_load(&map[fd >> MAP_CHUNK_BITS]);

	if (!chunk && create) {
		chunk = calloc(MAP_WORDS, sizeof *chunk);
		if (!chunk)
			return NULL;
		ap_store(&map[fd >> MAP_CHUNK_BITS], chunk);
	}
	return chunk ? &chunk[(fd & ((1 << MAP_CHUNK_BITS) - 1)) / 64] : NULL;
}

static uint64_t *map_word(int fd, bool create)
{
	return map_word_in(busy_map, fd, create);
}

static void bit_set(uint64_t *w, int fd, bool on)
{
	uint64_t bit = 1ULL << (fd % 64);

	if (on)
		__atomic_or_fetch(w, bit, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(w, ~bit, __ATOMIC_RELEASE);
}

static void map_set(int fd, bool busy)
{
	bit_set(map_word(fd, false), fd, busy);
}

bool ap_q_maybe_busy(int fd)
{
	uint64_t *w;

	if (fd < 0)
		return false;
	w = map_word(fd, false);
	return w && (ap_load(w) & (1ULL << (fd % 64)));
}

/* ---- the fd flags cache ------------------------------------------------ */

/* What F_GETFL said of each fd number, so that the fast path need not ask
 * before every read (a system call costs more than a cached 4 KiB read).
 * One word per number, in chunks like the busy map's, read and written
 * with atomics, never under a lock:
 *   bits 40-63  epoch: bumped by every ap_fd_flags_changed
 *   bits  8-39  when F_GETFL was asked (coarse monotonic milliseconds)
 *   bit      1  O_DIRECT was set
 *   bit      0  the word holds an answer
 * A filler reads the word, asks F_GETFL, and stores its answer only if the
 * word is unchanged (compare-and-swap): a change made meanwhile (epoch
 * bumped) is never overwritten by an answer from before it. */
#define FL_VALID  1ULL
#define FL_DIRECT 2ULL
#define FL_STAMP_SHIFT 8
#define FL_EPOCH_SHIFT 40
static uint64_t *flags_map[MAP_CHUNKS];

static uint64_t *flags_word(int fd, bool create)
{
	uint64_t *chunk, *fresh;

	if (fd < 0)
		return NULL;
	chunk = ap_load(&flags_map[fd >> MAP_CHUNK_BITS]);
	if (!chunk && create) {
		fresh = calloc((size_t)1 << MAP_CHUNK_BITS, sizeof *fresh);
		if (!fresh)
			return NULL;
		/* Two threads may both allocate: one chunk wins. */
		if (__atomic_compare_exchange_n(&flags_map[fd >> MAP_CHUNK_BITS],
		                                &chunk, fresh, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			chunk = fresh;
		else
			free(fresh);
	}
	return chunk ? &chunk[fd & ((1 << MAP_CHUNK_BITS) - 1)] : NULL;
}

static uint32_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);  /* the vDSO: no system call */
	return (uint32_t)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

int ap_fd_direct(int fd)
{
	uint64_t *w = flags_word(fd, true), old, fresh;
	uint32_t now = coarse_ms();
	int fl, saved = errno;

	old = w ? ap_load(w) : 0;
	if ((old & FL_VALID) &&
	    now - (uint32_t)(old >> FL_STAMP_SHIFT) < AP_FDFLAGS_TTL_MS)
		return (old & FL_DIRECT) != 0;
	fl = fcntl(fd, F_GETFL);
	errno = saved;
	if (fl < 0)
		return -1;
	fresh = (old >> FL_EPOCH_SHIFT << FL_EPOCH_SHIFT) |
	        ((uint64_t)now << FL_STAMP_SHIFT) | FL_VALID |
	        ((fl & O_DIRECT) ? FL_DIRECT : 0);
	if (w)
		__atomic_compare_exchange_n(w, &old, fresh, false,
		                            __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	return (fl & O_DIRECT) != 0;
}

void ap_fd_flags_changed(int fd)
{
	uint64_t *w = flags_word(fd, false), old, bumped;

	if (!w)
		return;
	old = ap_load(w);
	do
		bumped = ((old >> FL_EPOCH_SHIFT) + 1) << FL_EPOCH_SHIFT;
	while (!__atomic_compare_exchange_n(w, &old, bumped, true,
	                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
}

/* ---- the order map ----------------------------------------------------- */

/* Brings fd's bit in the order map up to date with its fdq in the table
 * (none: clear): set while ap_q_may_bypass says a read must queue.  Called
 * after every change that rule looks at. */
static void order_sync(struct ap_queues *qs, int fd)
{
	struct ap_fdq *q = ap_q_lookup(qs, fd);
	uint64_t *w = map_word_in(order_map, fd, false);
	bool on = !ap_q_may_bypass(q);

	if (w && !(ap_load_relaxed(w) & (1ULL << (fd % 64))) == on)
		bit_set(w, fd, on);   /* only a change dirties the line */
}

bool ap_q_bypass_now(int fd)
{
	uint64_t *w;

	if (fd < 0)
		return false;
	w = map_word_in(order_map, fd, false);
	return !w || !(ap_load(w) & (1ULL << (fd % 64)));
}

/* ---- fdqs -------------------------------------------------------------- */


struct ap_fdq *ap_q_lookup(struct ap_queues *qs, int fd)
{
	return fd < qs->nfds ? qs->fds[fd] : NULL;
}

struct ap_fdq *ap_q_create(struct ap_queues *qs, int fd, int pfd,
		const struct ap_fdid *id, struct ap_fdkind kind)
{
	struct ap_fdq *q;

	if (fd >= qs->nfds) {
		int n = qs->nfds ? qs->nfds : 64;
		while (n <= fd)
			n *= 2;
		struct ap_fdq **fds = realloc(qs->fds, n * sizeof *fds);
		if (!fds)
			return NULL;
		for (int i = qs->nfds; i < n; i++)
			fds[i] = NULL;
		qs->fds = fds;
		qs->nfds = n;
	}
	/* Every fdq may be in the heap at once, so the heap keeps a slot for
	 * each: heap_fix never allocates. */
	if (qs->nfdq >= qs->heapcap) {
		int n = qs->heapcap ? 2 * qs->heapcap : 64;
		struct ap_fdq **heap = realloc(qs->heap, n * sizeof *heap);
		if (!heap)
			return NULL;
		qs->heap = heap;
		qs->heapcap = n;
	}
	q = calloc(1, sizeof *q);
	if (!q || !map_word(fd, true) || !map_word_in(order_map, fd, true)) {
		free(q);
		return NULL;
	}
	q->fd = fd;
	q->pfd = pfd;
	q->id = *id;
	q->gen = qs->gen + 1;
	ap_store(&qs->gen, q->gen);  /* read unlocked by submitters */
	q->kind = kind;
	q->heap_idx = -1;
	qs->fds[fd] = q;
	qs->nfdq++;
	map_set(fd, true);
	order_sync(qs, fd);
	return q;
}

/* An fdq stays in the table when its last request is done, keeping its
 * pinned descriptor: the user's fd still names the file (the submission
 * path and the idle sweep check that).  It goes when its fd is closed
 * through aiopool's close, dup2 or dup3, or found naming another file
 * (ap_q_detach), once its running requests are done: to qs->dead, for the
 * caller to close pfd without the lock. */
static void fdq_free_if_done(struct ap_queues *qs, struct ap_fdq *q)
{
	if (!q->detached || q->blocked.head || q->ready.head || q->running.head)
		return;
	ap_dlist_unlink(&qs->detached, &q->dlink);
	qs->nfdq--;
	q->next_dead = qs->dead;
	qs->dead = q;
}

/* A pipe, socket or terminal's fdq goes as soon as it is idle, and its
 * pinned descriptor with it: record locks do not apply there, while a
 * duplicate left open would keep the peer from ever seeing EOF once the
 * program closes the file in a way aiopool does not see (pclose, fclose).
 * A file's fdq stays (fdq_free_if_done). */
static void fdq_idle(struct ap_queues *qs, struct ap_fdq *q)
{
	if (!q->kind.parallel && !q->detached && !q->nactive && !q->blocked.head)
		ap_q_detach(qs, q->fd);
	else
		fdq_free_if_done(qs, q);
}

/* ---- moving requests --------------------------------------------------- */

static void activate(struct ap_fdq *q, struct ap_req *r)
{
	struct ap_req *pos = ap_req_of(q->ready.tail);

	/* Newer than everything ready (blocked requests are never passed), so
	 * it goes after every request of equal or higher priority. */
	while (pos && pos->prio < r->prio)
		pos = ap_req_of(pos->qlink.prev);
	ap_dlist_insert_after(&q->ready, pos ? &pos->qlink : NULL, &r->qlink);
	r->state = AP_ST_READY;
	q->nactive++;
	if (ap_op_syncs(r->op))
		q->barrier_active = true;
	if (ap_op_writes(r->op))
		q->nactive_writes++;
	if (is_append(r))
		q->nactive_appends++;
}

static void deactivate(struct ap_fdq *q, struct ap_req *r)
{
	q->nactive--;
	if (ap_op_syncs(r->op))
		q->barrier_active = false;
	if (ap_op_writes(r->op))
		q->nactive_writes--;
	if (is_append(r))
		q->nactive_appends--;
}

static void promote(struct ap_fdq *q)
{
	struct ap_req *r;

	while ((r = ap_req_of(q->blocked.head)) && may_activate(q, r)) {
		list_unlink(&q->blocked, r);
		activate(q, r);
	}
}

void ap_q_enqueue(struct ap_queues *qs, struct ap_fdq *q, struct ap_req *r,
		int limit)
{
	r->q = q;
	r->seq = qs->seq++;
	qs->nqueued++;
	if (!q->blocked.head && may_activate(q, r)) {
		activate(q, r);
		heap_fix(qs, q, limit);
	} else {
		r->state = AP_ST_BLOCKED;
		list_append(&q->blocked, r);
	}
	order_sync(qs, q->fd);
}

struct ap_req *ap_q_pick(struct ap_queues *qs, int limit)
{
	struct ap_fdq *q;
	struct ap_req *r;

	if (!qs->nheap)
		return NULL;
	q = qs->heap[0];
	r = ap_req_of(q->ready.head);
	list_unlink(&q->ready, r);
	list_append(&q->running, r);
	r->state = AP_ST_RUNNING;
	q->nrunning++;
	qs->nqueued--;
	qs->nrunning++;
	heap_fix(qs, q, limit);
	return r;
}

/* r has left q (done, or removed while queued): what it held back may
 * start, q's place in the heap and its fd's bit in the order map follow,
 * and an idle q may go. */
static void left(struct ap_queues *qs, struct ap_fdq *q, struct ap_req *r,
		int limit)
{
	r->q = NULL;
	promote(q);
	heap_fix(qs, q, limit);
	if (!q->detached)
		order_sync(qs, q->fd);
	fdq_idle(qs, q);
}

void ap_q_done(struct ap_queues *qs, struct ap_req *r, int limit)
{
	struct ap_fdq *q = r->q;

	list_unlink(&q->running, r);
	q->nrunning--;
	qs->nrunning--;
	deactivate(q, r);
	left(qs, q, r, limit);
}

bool ap_q_remove(struct ap_queues *qs, struct ap_req *r, int limit)
{
	struct ap_fdq *q = r->q;

	if (r->state == AP_ST_BLOCKED) {
		list_unlink(&q->blocked, r);
	} else if (r->state == AP_ST_READY) {
		list_unlink(&q->ready, r);
		deactivate(q, r);
	} else {
		return false;
	}
	qs->nqueued--;
	/* What r held back may go now: cancelling a queued request never
	 * stalls the requests behind it. */
	left(qs, q, r, limit);
	return true;
}

void ap_q_detach(struct ap_queues *qs, int fd)
{
	struct ap_fdq *q = ap_q_lookup(qs, fd);

	if (!q)
		return;
	qs->fds[fd] = NULL;
	map_set(fd, false);
	order_sync(qs, fd);
	q->detached = true;
	ap_dlist_push_back(&qs->detached, &q->dlink);
	fdq_free_if_done(qs, q);   /* to qs->dead if idle: nothing is freed */
}

void ap_q_relimit(struct ap_queues *qs, int limit)
{
	for (int fd = 0; fd < qs->nfds; fd++)
		if (qs->fds[fd])
			heap_fix(qs, qs->fds[fd], limit);
}

/* Hands q's requests to orphan(), closes its pinned descriptor, frees q. */
static void fdq_orphan(struct ap_fdq *q, void (*orphan)(struct ap_req *r))
{
	struct ap_dlist *lists[3] = { &q->blocked, &q->ready, &q->running };

	for (int i = 0; i < 3; i++) {
		struct ap_req *r, *next;
		for (r = ap_req_of(lists[i]->head); r; r = next) {
			next = ap_req_next(r);
			r->q = NULL;
			r->qlink = (struct ap_dnode){ NULL, NULL };
			orphan(r);
		}
	}
	q->next_dead = NULL;
	ap_q_unpin(q);   /* only while the number is still ours */
	free(q);
}

void ap_q_reset(struct ap_queues *qs, void (*orphan)(struct ap_req *r))
{
	struct ap_dnode *n, *next;

	for (int fd = 0; fd < qs->nfds; fd++)
		if (qs->fds[fd]) {
			fdq_orphan(qs->fds[fd], orphan);
			qs->fds[fd] = NULL;
			map_set(fd, false);
			order_sync(qs, fd);
		}
	/* A request still running when its fd was closed is in no table
	 * slot, but the parent's worker for it is not here either. */
	for (n = qs->detached.head; n; n = next) {
		next = n->next;   /* fdq_orphan frees the fdq */
		fdq_orphan(AP_DLIST_ENTRY(n, struct ap_fdq, dlink), orphan);
	}
	ap_q_bury(qs->dead);
	free(qs->fds);
	free(qs->heap);
	*qs = (struct ap_queues){ 0 };
}
