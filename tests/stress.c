/* stress.c: the stress test.  A plain program whose exit status
 * is the verdict: 0 passed, 1 a check failed, 2 the watchdog fired.
 *
 *   tests/stress [--seconds N] [--threads N] [--seed N] [--dir PATH]
 *                [--report N] [--quiet]
 *
 * Several submitting threads drive both front ends at once on many fds:
 * regular files (shared by every thread, each opened twice), one O_APPEND
 * file per thread, and per thread two pipes and a socketpair (four byte
 * streams).  The mix: aio_read/aio_write/aio_fsync, lio_listio in both
 * modes, aio_suspend, aio_cancel (one request and whole fds), io_submit of
 * batches to a context of each thread's own and to one shared by all
 * (reaped by a thread that waits on an eventfd), preadv/pwritev, io_cancel,
 * io_getevents and io_pgetevents, contexts destroyed and set up again, and
 * every notification kind: SIGEV_NONE, SIGEV_SIGNAL (a counting SA_SIGINFO
 * handler), SIGEV_THREAD (with and without attributes), SIGEV_THREAD_ID,
 * the list's own sigevent, and IOCB_FLAG_RESFD eventfds.  The main thread
 * meanwhile turns the engine's knobs (threads, idle time, queue bound, fd
 * concurrency, fast path, request cache).
 *
 * Checked as it runs:
 *   - every request ends once: a POSIX request's aiocb leaves EINPROGRESS
 *     and aio_return gives its result once; a libaio request gives one
 *     event, or io_cancel hands its event back and no event follows;
 *   - every notification arrives exactly once, on the right thread, after
 *     the result is visible: sigev_value carries the request's slot and a
 *     generation number, and a stray, duplicate, early or lost one is an
 *     error; eventfd counts never run ahead of the requests that may bump
 *     them;
 *   - data: a block of a regular file holds a header, a version and a
 *     checksum, and reads back as the last write that completed on it
 *     (one request per block at a time); records written to a stream or an
 *     O_APPEND file carry a sequence number and a checksum, and arrive
 *     exactly as the writes that completed, in submission order, with
 *     nothing from a cancelled write;
 *   - aio_suspend returning 0 means one of its requests is done; a
 *     lio_listio(LIO_WAIT) that returns 0 or EIO has nothing in progress;
 *     aio_cancel's answer matches aio_error.
 * Checked at the end: each thread's eventfd count equals its completed
 * requests that asked for it; aiopool_stats() agrees with our counts of
 * requests accepted, completed and cancelled, and notify_failed is 0; and,
 * comparing the end of the main run with the end of a short warm-up run
 * (idle workers let go with a short idle time, the request cache emptied):
 * the same number of threads (/proc/self/task), of fds (/proc/self/fd),
 * and the same heap use (mallinfo2) within a small allowance for the C
 * library's per-thread arenas.
 *
 * Nothing blocks for good: a stream read never asks for more than has been
 * written, a stream write never more than the pipe holds.  A watchdog ends
 * the program (status 2) if the run overstays its time by two minutes.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libaio.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

#define MAXT 16            /* submitting threads, at most */
#define NSLOT 48           /* requests in flight per thread */
#define NLIST 8            /* lio_listio calls in flight per thread */
#define LIST_MAX 6         /* elements of one lio_listio call */
#define BATCH_MAX 6        /* iocbs of one io_submit call */
#define NFILE 4            /* regular files shared by all threads */
#define NBLK 256           /* blocks per regular file */
#define BLK 1024           /* block size */
#define NSTREAM 4          /* streams per thread: 2 pipes, 1 socketpair */
#define STREAM_CAP 16384   /* bytes written and not read, per stream */
#define STREAM_RECS 32     /* records outstanding per stream */
#define REC_MIN 32
#define REC_MAX 2048
#define LOG_CAP 1024       /* record log entries (a power of two) */
#define APP_LOG_MAX 256    /* appends between two checks of the file */
#define APP_TRUNC (4 << 20)/* an append file is emptied past this size */
#define NOTE_DEADLINE_MS 20000
#define DRAIN_DEADLINE_MS 60000
#define HEAP_SLACK (64 * 1024)
#define LIST_BIT 0x80000000u

#define SIG_NOTE (SIGRTMIN + 2)  /* SIGEV_SIGNAL */
#define SIG_TID (SIGRTMIN + 3)   /* SIGEV_THREAD_ID */

#define BLK_MAGIC 0x6b6c4241u    /* "ABlk" */
#define REC_MAGIC 0x63655241u    /* "ARec" */

#define load(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define inc(p) __atomic_add_fetch((p), 1, __ATOMIC_RELAXED)
#define add(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)

/* ---- options, errors, time --------------------------------------------- */

static struct {
	int seconds, threads, report;
	uint64_t seed;
	const char *dir;
	bool quiet;
} opt = { .seconds = 10, .threads = 4 };

static uint64_t nerrors;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (inc(&nerrors) > 40)
		return;
	pthread_mutex_lock(&print_lock);
	fputs("stress: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&print_lock);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);   /* a signal may cut it short: fine */
}

/* ---- patterns and checksums ---------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd_next(uint64_t *s)
{
	*s = mix(*s);
	return *s;
}

static unsigned rnd(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd_next(s) % n);
}

static void fill_payload(unsigned char *p, size_t n, uint64_t key)
{
	uint64_t x = mix(key) | 1;

	for (size_t i = 0; i < n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, n - i < 8 ? n - i : 8);
	}
}

static uint32_t fnv(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* A block of a regular file: header, then a payload from (file, block,
 * version). */
struct bhdr {
	uint32_t magic, where, ver, sum;
};

static uint64_t block_key(int f, int b, uint32_t ver)
{
	return opt.seed ^ ((uint64_t)f << 56) ^ ((uint64_t)b << 36) ^ ver;
}

static void make_block(unsigned char *buf, int f, int b, uint32_t ver)
{
	struct bhdr h = { BLK_MAGIC, (uint32_t)(f << 16 | b), ver, 0 };

	fill_payload(buf + sizeof h, BLK - sizeof h, block_key(f, b, ver));
	h.sum = fnv(buf + sizeof h, BLK - sizeof h);
	memcpy(buf, &h, sizeof h);
}

/* NULL if buf holds block b of file f at version ver, else what is wrong. */
static const char *check_block(const unsigned char *buf, int f, int b, uint32_t ver)
{
	static __thread unsigned char want[BLK];
	struct bhdr h;

	memcpy(&h, buf, sizeof h);
	if (h.magic != BLK_MAGIC)
		return "no block header";
	if (h.where != (uint32_t)(f << 16 | b))
		return "another block's data";
	if (h.ver != ver)
		return "another version";
	if (fnv(buf + sizeof h, BLK - sizeof h) != h.sum)
		return "bad checksum";
	make_block(want, f, b, ver);
	if (memcmp(want, buf, BLK) != 0)
		return "bytes differ";
	return NULL;
}

/* A record of a stream or an append file. */
struct rec {
	uint32_t magic, len, stream, sum;
	uint64_t seq;
};

static uint64_t rec_key(uint32_t stream, uint64_t seq)
{
	return opt.seed ^ ((uint64_t)stream << 48) ^ seq;
}

static void make_rec(unsigned char *buf, uint32_t stream, uint64_t seq, uint32_t len)
{
	struct rec h = { REC_MAGIC, len, stream, 0, seq };

	fill_payload(buf + sizeof h, len - sizeof h, rec_key(stream, seq));
	h.sum = fnv(buf + sizeof h, len - sizeof h);
	memcpy(buf, &h, sizeof h);
}

static const char *check_rec(const unsigned char *buf, const struct rec *h)
{
	static __thread unsigned char want[REC_MAX];

	if (fnv(buf + sizeof *h, h->len - sizeof *h) != h->sum)
		return "bad checksum";
	make_rec(want, h->stream, h->seq, h->len);
	if (memcmp(want, buf, h->len) != 0)
		return "bytes differ";
	return NULL;
}

/* ---- record logs: what was written to a stream or an append file -------- */

enum { L_PENDING, L_DONE, L_GONE };   /* in flight, written, never written */

struct reclog {
	uint64_t base, next;                 /* entries base..next-1 */
	struct { uint32_t len; uint8_t st; } e[LOG_CAP];
};

#define LOG_AT(l, s) ((l)->e[(s) & (LOG_CAP - 1)])

static uint64_t log_add(struct reclog *l, uint32_t len)
{
	uint64_t s = l->next++;

	LOG_AT(l, s).len = len;
	LOG_AT(l, s).st = L_PENDING;
	return s;
}

static unsigned log_count(const struct reclog *l)
{
	return (unsigned)(l->next - l->base);
}

/* Drops leading entries that will never show up. */
static void log_trim(struct reclog *l)
{
	while (l->base < l->next && LOG_AT(l, l->base).st == L_GONE)
		l->base++;
}

/* ---- the notifications ----------------------------------------------------- */

enum { N_NONE, N_SIGNAL, N_THREAD, N_THREAD_ATTR, N_THREAD_ID, N_KINDS };
static const char *const nk_name[N_KINDS] = {
	"none", "signal", "thread", "thread+attr", "thread_id"
};

/* What a notification is checked against: it must carry the current
 * generation and come as `kind` (on thread tid for SIGEV_THREAD_ID), once,
 * after cb (if any) has left EINPROGRESS. */
struct note {
	uint32_t gen;            /* atomic */
	int kind;
	pid_t tid;
	int count;               /* atomic: arrivals for gen */
	const struct aiocb *cb;
};

static struct {
	uint64_t kind[N_KINDS], list, stray, dup, early, wrong_thread, bad_info;
} notes;

static void *encode(uint32_t id, uint32_t gen)
{
	return (void *)(uintptr_t)((uint64_t)gen << 32 | id);
}

struct slot;
struct list;
static struct slot *all_slots;
static struct list *all_lists;
static uint64_t eventfd_notes;   /* eventfd bumps counted, for the summary */
static uint32_t nslots_total, nlists_total;

static struct note *note_of(uint32_t id);

static void note_arrived(void *v, int kind)
{
	uint64_t x = (uintptr_t)v;
	uint32_t id = (uint32_t)x, gen = (uint32_t)(x >> 32);
	struct note *n = note_of(id);

	if (!n || load(&n->gen) != gen || n->kind != kind) {
		inc(&notes.stray);
		return;
	}
	if (kind == N_THREAD_ID && gettid() != n->tid)
		inc(&notes.wrong_thread);
	if (n->cb && aio_error(n->cb) == EINPROGRESS)
		inc(&notes.early);
	if (__atomic_add_fetch(&n->count, 1, __ATOMIC_ACQ_REL) != 1)
		inc(&notes.dup);
	inc(id & LIST_BIT ? &notes.list : &notes.kind[kind]);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	(void)uc;
	if (si->si_code != SI_ASYNCIO || si->si_pid != getpid())
		inc(&notes.bad_info);
	note_arrived(si->si_value.sival_ptr, sig == SIG_NOTE ? N_SIGNAL : N_THREAD_ID);
	errno = saved;
}

static void thread_note(union sigval v)
{
	note_arrived(v.sival_ptr, N_THREAD);
}

static void thread_note_attr(union sigval v)
{
	note_arrived(v.sival_ptr, N_THREAD_ATTR);
}

static pthread_attr_t note_attr;

/* Starts a new use of n, as kind: older notifications become strays. */
static void note_arm(struct note *n, int kind, pid_t tid, const struct aiocb *cb)
{
	n->kind = kind;
	n->tid = tid;
	n->cb = cb;
	store(&n->count, 0);
	store(&n->gen, n->gen + 1);
}

static void note_disarm(struct note *n)
{
	store(&n->gen, n->gen + 1);
}

static void set_sigev(struct sigevent *sev, int kind, void *val, pid_t tid, bool zero_signo)
{
	memset(sev, 0, sizeof *sev);
	sev->sigev_value.sival_ptr = val;
	switch (kind) {
	case N_NONE:
		/* A zeroed sigevent (SIGEV_SIGNAL, signal 0) asks for nothing. */
		sev->sigev_notify = zero_signo ? SIGEV_SIGNAL : SIGEV_NONE;
		break;
	case N_SIGNAL:
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = SIG_NOTE;
		break;
	case N_THREAD:
		sev->sigev_notify = SIGEV_THREAD;
		sev->sigev_notify_function = thread_note;
		break;
	case N_THREAD_ATTR:
		sev->sigev_notify = SIGEV_THREAD;
		sev->sigev_notify_function = thread_note_attr;
		sev->sigev_notify_attributes = &note_attr;
		break;
	case N_THREAD_ID:
		sev->sigev_notify = SIGEV_THREAD_ID;
		sev->sigev_signo = SIG_TID;
		sev->_sigev_un._tid = tid;
		break;
	}
}

/* ThreadSanitizer keeps one pending instance of each signal per thread
 * and delivers it later, so queued real-time signals coalesce there: their
 * count cannot be checked, and signal notifications are not used. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static int pick_kind(uint64_t *r)
{
	unsigned x = rnd(r, 100);
	int k = x < 30 ? N_NONE : x < 55 ? N_SIGNAL : x < 72 ? N_THREAD :
	        x < 75 ? N_THREAD_ATTR : N_THREAD_ID;

	if (UNDER_TSAN && (k == N_SIGNAL || k == N_THREAD_ID))
		k = N_THREAD;
	return k;
}

/* ---- requests ------------------------------------------------------------- */

enum { S_FREE, S_PREP, S_FLIGHT, S_RESOLVED, S_NOTE };
enum { FE_POSIX, FE_LIO, FE_AIO, FE_AIO_SHARED, FE_KINDS };
static const char *const fe_name[FE_KINDS] = { "posix", "lio", "libaio", "libaio-shared" };
enum { OP_BREAD, OP_BWRITE, OP_AWRITE, OP_SWRITE, OP_SREAD, OP_FSYNC, OP_FDSYNC, OP_PSYNC };
static const char *const op_name[] = {
	"block read", "block write", "append", "stream write", "stream read",
	"fsync", "fdatasync", "fsync on a pipe"
};

struct stream;
struct appfile;

struct slot {
	struct note note;
	uint32_t id;             /* index in all_slots */
	int state;
	int fe, op, fd;
	int file, blk;           /* blocks */
	uint32_t ver;            /* block write: the new version */
	struct stream *st;       /* stream ops */
	struct appfile *app;     /* appends */
	uint64_t seq;            /* record writes */
	uint32_t len;            /* bytes asked */
	int list;                /* its lio_listio call (index in all_lists), or -1 */
	int resfd;               /* libaio: the eventfd asked for, or -1 */
	int evdone;              /* shared context (atomic): 1 event reaped, 2 cancelled */
	long evres;              /* the event's res, set by the reaper */
	long long t_done;
	ssize_t res;
	int err;
	bool refused;
	struct aiocb cb;
	struct iocb iocb;
	struct iovec iov[2];
	unsigned char buf[REC_MAX] __attribute__((aligned(64)));
};

enum { LS_FREE, LS_FLIGHT };

struct list {
	struct note note;
	int state, mode, pending;   /* elements not yet ended */
	long long t_done;
};

static struct note *note_of(uint32_t id)
{
	if (id & LIST_BIT) {
		id &= ~LIST_BIT;
		return id < nlists_total ? &all_lists[id].note : NULL;
	}
	return id < nslots_total ? &all_slots[id].note : NULL;
}

/* A stream: records written to wfd, read back from rfd, one thread. */
struct stream {
	uint32_t id;
	int wfd, rfd;
	struct reclog log;
	int64_t written;         /* bytes of writes seen complete */
	int64_t consumed;        /* bytes of reads processed */
	int64_t wflight, rflight;/* bytes asked by writes / reads in flight */
	int rq[NSLOT], rq_head, rq_n;  /* reads in submission order */
	unsigned char acc[STREAM_CAP + 2 * REC_MAX];
	size_t acc_n;            /* read, not yet parsed */
	bool broken;
};

struct appfile {
	uint32_t id;
	int fd;
	struct reclog log;
	int inflight;
	off_t checked;           /* verified up to here */
	bool want_check;
};

struct counters {
	uint64_t submitted[FE_KINDS], completed, cancelled, refused, failed_ok;
	uint64_t eintr, suspends, lists, batches, cancel_calls, recycles;
	uint64_t bytes_read, bytes_written;
};

struct tstate {
	int idx;
	pid_t tid;
	pthread_t thr;
	uint64_t rng;
	struct slot *slot;       /* NSLOT of all_slots */
	int freel[NSLOT], nfree;
	struct list *list;       /* NLIST of all_lists */
	int nposix, nown, nshared, nnote;   /* slots by where they wait */
	io_context_t ctx;
	int efd;
	uint64_t efd_total, efd_expect, efd_open;   /* own eventfd */
	uint32_t ver[NFILE][NBLK];
	uint8_t busy[NFILE][NBLK];
	struct stream st[NSTREAM];
	struct appfile app;
	struct aiocb nop;        /* a LIO_NOP element: never touched */
	struct counters c;
};

static struct tstate *ts;
static int file_fd[NFILE][2];
static io_context_t shared_ctx;
static int shared_efd;
static uint64_t shared_efd_expect;   /* atomic */
static uint64_t shared_efd_total;    /* the reaper's */
static int shared_inflight;          /* atomic */
static int stop_flag, reaper_stop;
static uint64_t phase_deadline_ms;   /* for the watchdog */

/* ---- slots ---------------------------------------------------------------- */

static struct slot *slot_get(struct tstate *t)
{
	struct slot *s;

	if (!t->nfree)
		return NULL;
	s = &t->slot[t->freel[--t->nfree]];
	s->state = S_PREP;
	s->list = -1;
	s->resfd = -1;
	s->st = NULL;
	s->app = NULL;
	s->refused = false;
	s->evdone = 0;
	s->res = 0;
	s->err = 0;
	return s;
}

static void slot_put(struct tstate *t, struct slot *s)
{
	note_disarm(&s->note);
	s->state = S_FREE;
	t->freel[t->nfree++] = (int)(s - t->slot);
}

static int busy_slots(const struct tstate *t)
{
	return NSLOT - t->nfree;
}

/* ---- choosing what a request does ---------------------------------------- */

enum { ALLOW_SYNC = 1, ALLOW_PIPE_SYNC = 2 };

static bool prep_block(struct tstate *t, struct slot *s, bool write)
{
	int per = NBLK / opt.threads;

	for (int tries = 0; tries < 4; tries++) {
		int f = (int)rnd(&t->rng, NFILE);
		int b = t->idx + opt.threads * (int)rnd(&t->rng, (unsigned)per);

		if (t->busy[f][b])
			continue;
		t->busy[f][b] = 1;
		s->file = f;
		s->blk = b;
		s->fd = file_fd[f][rnd(&t->rng, 2)];
		s->len = BLK;
		if (write) {
			s->op = OP_BWRITE;
			s->ver = t->ver[f][b] + 1;
			make_block(s->buf, f, b, s->ver);
		} else {
			s->op = OP_BREAD;
			memset(s->buf, 0xee, BLK);
		}
		return true;
	}
	return false;
}

static bool prep_append(struct tstate *t, struct slot *s)
{
	struct appfile *a = &t->app;
	uint32_t len = REC_MIN + rnd(&t->rng, 1024 - REC_MIN);

	if (a->want_check || log_count(&a->log) >= APP_LOG_MAX)
		return false;
	s->op = OP_AWRITE;
	s->app = a;
	s->fd = a->fd;
	s->len = len;
	s->seq = log_add(&a->log, len);
	make_rec(s->buf, a->id, s->seq, len);
	a->inflight++;
	if (log_count(&a->log) >= APP_LOG_MAX)
		a->want_check = true;
	return true;
}

static bool prep_stream_write(struct tstate *t, struct stream *st, struct slot *s)
{
	uint32_t len = REC_MIN + rnd(&t->rng, REC_MAX - REC_MIN + 1);

	/* Bytes in the pipe or read and not parsed yet stay under the cap. */
	if (st->broken || log_count(&st->log) >= STREAM_RECS ||
	    st->written + st->wflight - st->consumed + (int64_t)st->acc_n + len > STREAM_CAP)
		return false;
	s->op = OP_SWRITE;
	s->st = st;
	s->fd = st->wfd;
	s->len = len;
	s->seq = log_add(&st->log, len);
	make_rec(s->buf, st->id, s->seq, len);
	st->wflight += len;
	return true;
}

/* A read never asks for more than the writes seen complete have put in. */
static bool prep_stream_read(struct tstate *t, struct stream *st, struct slot *s)
{
	int64_t avail = st->written - st->consumed - st->rflight;
	uint32_t len;

	if (st->broken || avail <= 0)
		return false;
	len = 1 + rnd(&t->rng, REC_MAX);
	if (len > avail)
		len = (uint32_t)avail;
	s->op = OP_SREAD;
	s->st = st;
	s->fd = st->rfd;
	s->len = len;
	memset(s->buf, 0xee, len);
	st->rflight += len;
	st->rq[(st->rq_head + st->rq_n++) % NSLOT] = (int)(s - t->slot);
	return true;
}

static bool prep(struct tstate *t, struct slot *s, unsigned allow)
{
	unsigned x = rnd(&t->rng, 100);
	struct stream *st = &t->st[rnd(&t->rng, NSTREAM)];

	if (x < 2 && (allow & ALLOW_SYNC)) {
		s->op = rnd(&t->rng, 2) ? OP_FSYNC : OP_FDSYNC;
		s->fd = rnd(&t->rng, 4) ? file_fd[rnd(&t->rng, NFILE)][rnd(&t->rng, 2)]
		                        : t->app.fd;
		s->len = 0;
		return true;
	}
	if (x < 3 && (allow & ALLOW_PIPE_SYNC)) {
		s->op = OP_PSYNC;
		s->fd = st->wfd;
		s->len = 0;
		return true;
	}
	if (x < 35 && prep_block(t, s, false))
		return true;
	if (x < 68 && prep_block(t, s, true))
		return true;
	if (x < 78 && prep_append(t, s))
		return true;
	if (x < 89 && prep_stream_write(t, st, s))
		return true;
	if (prep_stream_read(t, st, s))
		return true;
	if (prep_stream_write(t, st, s))
		return true;
	return prep_block(t, s, rnd(&t->rng, 2));
}

/* ---- results ---------------------------------------------------------- */

static void stream_parse(struct stream *st)
{
	while (!st->broken) {
		struct reclog *l = &st->log;
		struct rec h;
		const char *why;

		log_trim(l);
		if (st->acc_n < sizeof h)
			return;
		memcpy(&h, st->acc, sizeof h);
		if (h.magic != REC_MAGIC || h.stream != st->id || h.len < REC_MIN ||
		    h.len > REC_MAX) {
			fail("stream %u: garbage at byte %" PRId64 " (magic %#x stream %u len %u)",
			     st->id, st->consumed - (int64_t)st->acc_n, h.magic, h.stream, h.len);
			st->broken = true;
			return;
		}
		if (h.len > st->acc_n)
			return;   /* the rest is still to be read */
		if (h.seq < l->base || h.seq >= l->next) {
			fail("stream %u: record %" PRIu64 " unexpected (expecting %" PRIu64
			     "..%" PRIu64 ")", st->id, h.seq, l->base, l->next);
			st->broken = true;
			return;
		}
		/* Everything before it must have been cancelled; it must have
		 * been written.  Wait until their outcomes are known. */
		for (uint64_t q = l->base; q <= h.seq; q++)
			if (LOG_AT(l, q).st == L_PENDING)
				return;
		for (uint64_t q = l->base; q < h.seq; q++)
			if (LOG_AT(l, q).st == L_DONE) {
				fail("stream %u: record %" PRIu64 " missing or out of order "
				     "(next came %" PRIu64 ")", st->id, q, h.seq);
				st->broken = true;
				return;
			}
		if (LOG_AT(l, h.seq).st != L_DONE) {
			fail("stream %u: record %" PRIu64 " of a cancelled write arrived",
			     st->id, h.seq);
			st->broken = true;
			return;
		}
		if (LOG_AT(l, h.seq).len != h.len || (why = check_rec(st->acc, &h))) {
			fail("stream %u: record %" PRIu64 ": %s", st->id, h.seq,
			     LOG_AT(l, h.seq).len != h.len ? "wrong length" : why);
			st->broken = true;
			return;
		}
		l->base = h.seq + 1;
		memmove(st->acc, st->acc + h.len, st->acc_n - h.len);
		st->acc_n -= h.len;
	}
}

/* The file from `checked` on must hold exactly the appends that completed,
 * in submission order.  Only with none in flight. */
static void app_check(struct tstate *t)
{
	struct appfile *a = &t->app;
	struct reclog *l = &a->log;
	static __thread unsigned char buf[REC_MAX];
	struct stat sb;
	off_t off = a->checked;

	if (a->inflight || fstat(a->fd, &sb) < 0)
		return;
	while (off < sb.st_size) {
		struct rec h;
		const char *why;

		log_trim(l);
		if (pread(a->fd, &h, sizeof h, off) != (ssize_t)sizeof h ||
		    h.magic != REC_MAGIC || h.stream != a->id || h.len < REC_MIN ||
		    h.len > REC_MAX || off + h.len > sb.st_size ||
		    pread(a->fd, buf, h.len, off) != (ssize_t)h.len) {
			fail("append file %u: garbage at offset %lld", a->id, (long long)off);
			goto reset;
		}
		if (l->base == l->next || h.seq != l->base) {
			fail("append file %u: record %" PRIu64 " at offset %lld, expected %s%" PRIu64,
			     a->id, h.seq, (long long)off,
			     l->base == l->next ? "none after " : "", l->base);
			goto reset;
		}
		if (LOG_AT(l, h.seq).len != h.len || (why = check_rec(buf, &h))) {
			fail("append file %u: record %" PRIu64 ": %s", a->id, h.seq,
			     LOG_AT(l, h.seq).len != h.len ? "wrong length" : why);
			goto reset;
		}
		l->base++;
		off += h.len;
	}
	log_trim(l);
	if (l->base != l->next)
		fail("append file %u: record %" PRIu64 " completed but is not in the file",
		     a->id, l->base);
reset:
	l->base = l->next;
	a->checked = off;
	if (off != sb.st_size || sb.st_size > APP_TRUNC) {
		if (ftruncate(a->fd, 0) < 0)
			fail("ftruncate: %s", strerror(errno));
		a->checked = 0;
	}
	a->want_check = false;
}

static void after(struct tstate *t, struct slot *s);

/* Applies a result to what the test expects of the files. */
static void apply(struct tstate *t, struct slot *s)
{
	bool ok = s->err == 0, gone = s->err == ECANCELED;
	const char *why;

	if (s->refused)
		t->c.refused++;
	else if (gone)
		t->c.cancelled++;
	else
		t->c.completed++;

	switch (s->op) {
	case OP_BREAD:
		t->busy[s->file][s->blk] = 0;
		if (!ok)
			break;
		t->c.bytes_read += (uint64_t)s->res;
		if (s->res != BLK)
			fail("%s of file %d block %d via %s: %zd bytes", op_name[s->op],
			     s->file, s->blk, fe_name[s->fe], s->res);
		else if ((why = check_block(s->buf, s->file, s->blk, t->ver[s->file][s->blk])))
			fail("file %d block %d (version %u) read via %s: %s", s->file, s->blk,
			     t->ver[s->file][s->blk], fe_name[s->fe], why);
		break;
	case OP_BWRITE:
		t->busy[s->file][s->blk] = 0;
		if (!ok)
			break;
		t->c.bytes_written += (uint64_t)s->res;
		if (s->res != BLK)
			fail("%s via %s: %zd bytes", op_name[s->op], fe_name[s->fe], s->res);
		t->ver[s->file][s->blk] = s->ver;
		break;
	case OP_AWRITE:
		s->app->inflight--;
		LOG_AT(&s->app->log, s->seq).st = ok ? L_DONE : L_GONE;
		if (ok && s->res != s->len)
			fail("append via %s: %zd of %u bytes", fe_name[s->fe], s->res, s->len);
		if (ok)
			t->c.bytes_written += s->len;
		break;
	case OP_SWRITE:
		s->st->wflight -= s->len;
		LOG_AT(&s->st->log, s->seq).st = ok ? L_DONE : L_GONE;
		if (ok) {
			if (s->res != s->len)
				fail("stream %u write via %s: %zd of %u bytes", s->st->id,
				     fe_name[s->fe], s->res, s->len);
			s->st->written += s->len;
			t->c.bytes_written += s->len;
		}
		stream_parse(s->st);
		break;
	case OP_SREAD:
		s->st->rflight -= s->len;
		if (!ok)
			break;
		if (s->res <= 0 || s->res > s->len ||
		    s->st->acc_n + (size_t)s->res > sizeof s->st->acc) {
			fail("stream %u read via %s: %zd bytes of %u", s->st->id,
			     fe_name[s->fe], s->res, s->len);
			s->st->broken = true;
			break;
		}
		memcpy(s->st->acc + s->st->acc_n, s->buf, (size_t)s->res);
		s->st->acc_n += (size_t)s->res;
		s->st->consumed += s->res;
		t->c.bytes_read += (uint64_t)s->res;
		stream_parse(s->st);
		break;
	case OP_FSYNC:
	case OP_FDSYNC:
		if (ok && s->res != 0)
			fail("%s via %s returned %zd", op_name[s->op], fe_name[s->fe], s->res);
		break;
	case OP_PSYNC:
		if (s->err == EINVAL) {
			t->c.failed_ok++;   /* of completed */
			return;
		}
		if (!gone)
			fail("fsync on a pipe via %s: %s, not EINVAL", fe_name[s->fe],
			     strerror(s->err));
		return;
	}
	if (!ok && !gone)
		fail("%s via %s: %s", op_name[s->op], fe_name[s->fe], strerror(s->err));
}

/* Stream reads are applied in submission order, as they ran. */
static void stream_reads(struct tstate *t, struct stream *st)
{
	while (st->rq_n) {
		struct slot *s = &t->slot[st->rq[st->rq_head]];

		if (s->state != S_RESOLVED)
			return;
		st->rq_head = (st->rq_head + 1) % NSLOT;
		st->rq_n--;
		apply(t, s);
		after(t, s);
	}
}

/* The request has ended (or was refused): res and err are set. */
static void resolve(struct tstate *t, struct slot *s, ssize_t res, int err)
{
	if (s->state == S_FLIGHT) {
		if (s->fe == FE_POSIX || s->fe == FE_LIO)
			t->nposix--;
		else if (s->fe == FE_AIO)
			t->nown--;
		else
			t->nshared--;
	}
	s->res = res;
	s->err = err;
	s->state = S_RESOLVED;
	if (s->resfd >= 0 && !s->refused && err != ECANCELED) {
		if (s->fe == FE_AIO)
			t->efd_expect++;
		else
			add(&shared_efd_expect, 1);
	}
	if (s->resfd >= 0 && s->fe == FE_AIO)
		t->efd_open--;
	if (s->op == OP_SREAD) {
		stream_reads(t, s->st);
		return;
	}
	apply(t, s);
	after(t, s);
}

static void refuse(struct tstate *t, struct slot *s)
{
	s->refused = true;
	resolve(t, s, -1, ECANCELED);
}

/* Waits for its notification, or frees the slot. */
static void after(struct tstate *t, struct slot *s)
{
	if (s->list >= 0 && !s->refused) {
		struct list *L = &all_lists[s->list];
		if (--L->pending == 0)
			L->t_done = now_ms();
	}
	if (!s->refused && s->note.kind != N_NONE && load(&s->note.count) == 0) {
		s->state = S_NOTE;
		s->t_done = now_ms();
		t->nnote++;
		return;
	}
	slot_put(t, s);
}

/* ---- polling ----------------------------------------------------------- */

static void posix_done(struct tstate *t, struct slot *s, int e)
{
	ssize_t r = aio_return(&s->cb);

	if (e == 0 && r < 0)
		fail("aio_return %zd with aio_error 0", r);
	if (e != 0 && r != -1)
		fail("aio_return %zd with aio_error %s", r, strerror(e));
	if (rnd(&t->rng, 16) == 0) {
		/* Only once: a second aio_return is EINVAL; aio_error stays. */
		errno = 0;
		if (aio_return(&s->cb) != -1 || errno != EINVAL)
			fail("a second aio_return did not fail with EINVAL");
		if (aio_error(&s->cb) != e)
			fail("aio_error changed after aio_return");
	}
	resolve(t, s, r, e);
}

static void aio_event(struct tstate *t, const struct io_event *ev, bool shared)
{
	uint64_t x = (uintptr_t)ev->data;
	uint32_t id = (uint32_t)x, gen = (uint32_t)(x >> 32);
	long res = (long)ev->res;
	struct slot *s;

	if (id >= nslots_total) {
		fail("event with data %#" PRIx64 ": not ours", x);
		return;
	}
	s = &all_slots[id];
	if (load(&s->note.gen) != gen || ev->obj != &s->iocb) {
		fail("event for slot %u: stale (generation %u, now %u)", id, gen,
		     load(&s->note.gen));
		return;
	}
	if (res == -ECANCELED)
		fail("an -ECANCELED event in the ring");
	if (shared) {
		int zero = 0;
		store(&s->evres, res);
		if (!__atomic_compare_exchange_n(&s->evdone, &zero, 1, false,
		                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			fail("a second event, or an event after io_cancel, for slot %u", id);
		return;
	}
	if (s->state != S_FLIGHT || s->fe != FE_AIO) {
		fail("event for slot %u that is not in flight on this context", id);
		return;
	}
	resolve(t, s, res < 0 ? -1 : res, res < 0 ? (int)-res : 0);
}

static void read_efd(struct tstate *t)
{
	uint64_t v;

	if (read(t->efd, &v, sizeof v) == (ssize_t)sizeof v)
		t->efd_total += v;
	if (t->efd_total > t->efd_expect + t->efd_open)
		fail("eventfd of thread %d counts %" PRIu64 ", more than the %" PRIu64
		     " requests that may have bumped it", t->idx, t->efd_total,
		     t->efd_expect + t->efd_open);
}

static void poll_lists(struct tstate *t)
{
	long long now = now_ms();

	for (int i = 0; i < NLIST; i++) {
		struct list *L = &t->list[i];

		if (L->state != LS_FLIGHT || L->pending)
			continue;
		if (L->note.kind == N_NONE || load(&L->note.count) > 0) {
			note_disarm(&L->note);
			L->state = LS_FREE;
		} else if (now - L->t_done > NOTE_DEADLINE_MS) {
			fail("lio_listio notification (%s) never came", nk_name[L->note.kind]);
			note_disarm(&L->note);
			L->state = LS_FREE;
		}
	}
}

static void poll_all(struct tstate *t)
{
	static const struct timespec zero = { 0, 0 };
	struct io_event ev[32];
	long long now = 0;

	if (t->nown) {
		int n = io_getevents(t->ctx, 0, 32, ev, (struct timespec *)&zero);
		if (n < 0 && n != -EINTR)
			fail("io_getevents: %s", strerror(-n));
		for (int i = 0; i < n; i++)
			aio_event(t, &ev[i], false);
	}
	for (int i = 0; i < NSLOT; i++) {
		struct slot *s = &t->slot[i];
		int e;

		switch (s->state) {
		case S_FLIGHT:
			if (s->fe == FE_AIO_SHARED) {
				int d = load(&s->evdone);
				if (d == 1) {
					long res = load(&s->evres);
					resolve(t, s, res < 0 ? -1 : res, res < 0 ? (int)-res : 0);
				}
			} else if (s->fe != FE_AIO &&
			           (e = aio_error(&s->cb)) != EINPROGRESS) {
				posix_done(t, s, e);
			}
			break;
		case S_NOTE:
			if (load(&s->note.count) > 0) {
				t->nnote--;
				slot_put(t, s);
				break;
			}
			if (!now)
				now = now_ms();
			if (now - s->t_done > NOTE_DEADLINE_MS) {
				fail("%s notification of a %s via %s never came", nk_name[s->note.kind],
				     op_name[s->op], fe_name[s->fe]);
				t->nnote--;
				slot_put(t, s);
			}
			break;
		}
	}
	poll_lists(t);
	if (t->efd_open || t->efd_total < t->efd_expect)
		read_efd(t);
}

/* Waits a little for something to end, the way a program would. */
static void wait_some(struct tstate *t)
{
	struct timespec tmo = { 0, 10 * 1000000L };
	unsigned how = rnd(&t->rng, 4);

	if (t->nposix && how < 2) {
		const struct aiocb *list[8];
		int n = 0;

		for (int i = 0; i < NSLOT && n < 8; i++)
			if (t->slot[i].state == S_FLIGHT &&
			    (t->slot[i].fe == FE_POSIX || t->slot[i].fe == FE_LIO))
				list[n++] = &t->slot[i].cb;
		if (how == 1 && n < 8)
			list[n++] = NULL;   /* ignored */
		t->c.suspends++;
		if (aio_suspend(list, n, &tmo) == 0) {
			bool any = false;
			for (int i = 0; i < n; i++)
				any |= list[i] && aio_error(list[i]) != EINPROGRESS;
			if (!any)
				fail("aio_suspend returned 0 with all %d requests in progress", n);
		} else if (errno == EINTR) {
			t->c.eintr++;
		} else if (errno != EAGAIN) {
			fail("aio_suspend: %s", strerror(errno));
		}
	} else if (t->nown && how < 3) {
		struct io_event ev[16];
		sigset_t none;
		int n;

		sigemptyset(&none);
		n = rnd(&t->rng, 2) ? io_getevents(t->ctx, 1, 16, ev, &tmo)
		                    : io_pgetevents(t->ctx, 1, 16, ev, &tmo, &none);
		if (n == -EINTR)
			t->c.eintr++;
		else if (n < 0)
			fail("io_getevents: %s", strerror(-n));
		for (int i = 0; i < n; i++)
			aio_event(t, &ev[i], false);
	} else {
		sleep_us(200);
	}
}

/* ---- submitting ------------------------------------------------------------ */

static void fill_cb(struct tstate *t, struct slot *s, int kind)
{
	memset(&s->cb, 0, sizeof s->cb);
	s->cb.aio_fildes = s->fd;
	s->cb.aio_buf = s->buf;
	s->cb.aio_nbytes = s->len;
	s->cb.aio_offset = s->op == OP_BREAD || s->op == OP_BWRITE ? (off_t)s->blk * BLK : 0;
	s->cb.aio_reqprio = (int)rnd(&t->rng, 3);
	s->cb.aio_lio_opcode = s->op == OP_BREAD || s->op == OP_SREAD ? LIO_READ : LIO_WRITE;
	note_arm(&s->note, kind, t->tid, &s->cb);
	set_sigev(&s->cb.aio_sigevent, kind, encode(s->id, s->note.gen), t->tid,
	          rnd(&t->rng, 8) == 0);
}

static void do_posix(struct tstate *t)
{
	struct slot *s = slot_get(t);
	int rc;

	if (!s)
		return;
	if (!prep(t, s, ALLOW_SYNC | ALLOW_PIPE_SYNC)) {
		slot_put(t, s);
		return;
	}
	s->fe = FE_POSIX;
	fill_cb(t, s, pick_kind(&t->rng));
	switch (s->op) {
	case OP_BREAD:
	case OP_SREAD:
		rc = aio_read(&s->cb);
		break;
	case OP_FSYNC:
	case OP_PSYNC:
		rc = aio_fsync(O_SYNC, &s->cb);
		break;
	case OP_FDSYNC:
		rc = aio_fsync(O_DSYNC, &s->cb);
		break;
	default:
		rc = aio_write(&s->cb);
		break;
	}
	if (rc == 0) {
		s->state = S_FLIGHT;
		t->nposix++;
		t->c.submitted[FE_POSIX]++;
	} else {
		if (errno != EAGAIN)
			fail("aio_%s: %s", s->op == OP_BREAD || s->op == OP_SREAD ? "read" : "write/fsync",
			     strerror(errno));
		else if (aio_error(&s->cb) != EAGAIN)
			fail("a refused aiocb reports %d, not EAGAIN", aio_error(&s->cb));
		refuse(t, s);
	}
}

static void do_lio(struct tstate *t, int mode)
{
	struct aiocb *vec[2 * LIST_MAX];
	struct slot *el[LIST_MAX];
	struct sigevent lsev;
	struct list *L = NULL;
	int n = 0, nv = 0, k, rc, err, lkind = N_NONE;

	for (int i = 0; i < NLIST; i++)
		if (t->list[i].state == LS_FREE) {
			L = &t->list[i];
			break;
		}
	if (!L)
		return;
	k = 1 + (int)rnd(&t->rng, LIST_MAX);
	for (int i = 0; i < k; i++) {
		struct slot *s = slot_get(t);
		if (!s)
			break;
		if (!prep(t, s, 0)) {
			slot_put(t, s);
			break;
		}
		s->fe = FE_LIO;
		s->list = (int)(L - all_lists);
		fill_cb(t, s, pick_kind(&t->rng));
		el[n++] = s;
		vec[nv++] = &s->cb;
		if (rnd(&t->rng, 8) == 0)
			vec[nv++] = rnd(&t->rng, 2) ? NULL : &t->nop;
	}
	if (!n)
		return;
	L->state = LS_FLIGHT;
	L->mode = mode;
	L->pending = n;
	if (mode == LIO_NOWAIT)
		lkind = pick_kind(&t->rng);
	note_arm(&L->note, lkind, t->tid, NULL);
	set_sigev(&lsev, lkind, encode(LIST_BIT | (uint32_t)(L - all_lists), L->note.gen),
	          t->tid, false);
	t->c.lists++;
	rc = lio_listio(mode, vec, nv, mode == LIO_NOWAIT && (lkind || rnd(&t->rng, 2)) ? &lsev : NULL);
	err = errno;

	int refused = 0, inprog = 0;
	for (int i = 0; i < n; i++) {
		struct slot *s = el[i];
		int e = aio_error(&s->cb);

		/* EAGAIN: refused; untouched (EINVAL, as never submitted)
		 * when the call failed before looking at the list. */
		if (e == EAGAIN || (rc < 0 && e == EINVAL)) {
			refused++;
			L->pending--;
			s->list = -1;
			refuse(t, s);
			continue;
		}
		inprog += e == EINPROGRESS;
		s->state = S_FLIGHT;
		t->nposix++;
		t->c.submitted[FE_LIO]++;
	}
	if (L->pending == 0)
		L->t_done = now_ms();
	if (aio_error(&t->nop) != EINVAL)
		fail("lio_listio touched a LIO_NOP element");
	if (rc == 0 && refused)
		fail("lio_listio returned 0 but refused %d elements", refused);
	if (rc < 0 && err == EAGAIN && !refused)
		fail("lio_listio failed with EAGAIN but refused nothing");
	if (rc < 0 && err == EINTR) {
		if (mode != LIO_WAIT)
			fail("lio_listio(LIO_NOWAIT): EINTR");
		t->c.eintr++;
	} else if (rc < 0 && err != EAGAIN && !(err == EIO && mode == LIO_WAIT)) {
		fail("lio_listio(%s): %s", mode == LIO_WAIT ? "LIO_WAIT" : "LIO_NOWAIT",
		     strerror(err));
	}
	if (mode == LIO_WAIT && (rc == 0 || err == EIO || err == EAGAIN) && inprog)
		fail("lio_listio(LIO_WAIT) returned with %d requests in progress", inprog);
}

static void do_aio(struct tstate *t, bool shared)
{
	struct iocb *vec[BATCH_MAX];
	struct slot *el[BATCH_MAX];
	io_context_t ctx = shared ? shared_ctx : t->ctx;
	int efd = shared ? shared_efd : t->efd;
	int k = 1 + (int)rnd(&t->rng, BATCH_MAX), n = 0, rc, done;

	for (int i = 0; i < k; i++) {
		struct slot *s = slot_get(t);
		struct iocb *io;
		bool vect = rnd(&t->rng, 3) == 0;

		if (!s)
			break;
		if (!prep(t, s, ALLOW_SYNC)) {
			slot_put(t, s);
			break;
		}
		s->fe = shared ? FE_AIO_SHARED : FE_AIO;
		note_arm(&s->note, N_NONE, t->tid, NULL);
		io = &s->iocb;
		switch (s->op) {
		case OP_FSYNC:
			io_prep_fsync(io, s->fd);
			break;
		case OP_FDSYNC:
			io_prep_fdsync(io, s->fd);
			break;
		case OP_BREAD:
		case OP_SREAD:
		case OP_BWRITE:
		case OP_AWRITE:
		case OP_SWRITE: {
			bool in = s->op == OP_BREAD || s->op == OP_SREAD;
			long long off = s->op == OP_BREAD || s->op == OP_BWRITE ? (long long)s->blk * BLK : 0;
			if (vect) {
				size_t half = s->len / 2;
				s->iov[0] = (struct iovec){ s->buf, half };
				s->iov[1] = (struct iovec){ s->buf + half, s->len - half };
				if (in)
					io_prep_preadv(io, s->fd, s->iov, 2, off);
				else
					io_prep_pwritev(io, s->fd, s->iov, 2, off);
			} else if (in) {
				io_prep_pread(io, s->fd, s->buf, s->len, off);
			} else {
				io_prep_pwrite(io, s->fd, s->buf, s->len, off);
			}
			if (rnd(&t->rng, 4) == 0) {
				io->u.c.flags |= 1u << 1;   /* IOCB_FLAG_IOPRIO */
				io->aio_reqprio = (short)(2 << 13 | rnd(&t->rng, 8));
			}
			break;
		}
		}
		io->data = encode(s->id, s->note.gen);
		if (rnd(&t->rng, 2)) {
			io_set_eventfd(io, efd);
			s->resfd = efd;
			if (!shared)
				t->efd_open++;
		}
		el[n] = s;
		vec[n++] = io;
	}
	if (!n)
		return;
	if (shared)
		add(&shared_inflight, n);
	t->c.batches++;
	rc = io_submit(ctx, n, vec);
	done = rc < 0 ? 0 : rc;
	if (rc < 0 && rc != -EAGAIN)
		fail("io_submit: %s", strerror(-rc));
	if (rc > n)
		fail("io_submit returned %d for %d", rc, n);
	for (int i = 0; i < n; i++) {
		struct slot *s = el[i];
		if (i < done) {
			s->state = S_FLIGHT;
			if (shared)
				t->nshared++;
			else
				t->nown++;
			t->c.submitted[s->fe]++;
		} else {
			if (shared)
				add(&shared_inflight, -1);
			refuse(t, s);
		}
	}
}

/* Cancels something in flight, or everything queued on one fd. */
static void do_cancel(struct tstate *t)
{
	struct slot *s = &t->slot[rnd(&t->rng, NSLOT)];

	t->c.cancel_calls++;
	if (rnd(&t->rng, 20) == 0) {
		struct stream *st = &t->st[rnd(&t->rng, NSTREAM)];
		int fd = rnd(&t->rng, 3) == 0 ? file_fd[rnd(&t->rng, NFILE)][0] :
		         rnd(&t->rng, 2) ? st->rfd : t->app.fd;
		int rc = aio_cancel(fd, NULL);
		if (rc != AIO_CANCELED && rc != AIO_NOTCANCELED && rc != AIO_ALLDONE)
			fail("aio_cancel(%d, NULL): %d (%s)", fd, rc, strerror(errno));
		return;
	}
	if (s->state != S_FLIGHT)
		return;
	if (s->fe == FE_POSIX || s->fe == FE_LIO) {
		int rc = aio_cancel(s->fd, &s->cb), e = aio_error(&s->cb);
		if (rc == AIO_CANCELED && e != ECANCELED)
			fail("aio_cancel said AIO_CANCELED, aio_error says %d", e);
		else if (rc == AIO_ALLDONE && e == EINPROGRESS)
			fail("aio_cancel said AIO_ALLDONE, request in progress");
		else if (rc != AIO_CANCELED && rc != AIO_ALLDONE && rc != AIO_NOTCANCELED)
			fail("aio_cancel: %d (%s)", rc, strerror(errno));
		return;
	}

	struct io_event ev;
	bool shared = s->fe == FE_AIO_SHARED;
	int rc = io_cancel(shared ? shared_ctx : t->ctx, &s->iocb, &ev);

	if (rc == 0) {
		if (ev.obj != &s->iocb || ev.data != s->iocb.data ||
		    (long)ev.res != -ECANCELED)
			fail("io_cancel's event is wrong (res %ld)", (long)ev.res);
		if (shared) {
			int zero = 0;
			if (!__atomic_compare_exchange_n(&s->evdone, &zero, 2, false,
			                                 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				fail("io_cancel succeeded on a request whose event was reaped");
			add(&shared_inflight, -1);
		}
		resolve(t, s, -1, ECANCELED);
	} else if (rc != -EAGAIN && rc != -EINVAL) {
		fail("io_cancel: %s", strerror(-rc));
	}
}

/* ---- contexts ---------------------------------------------------------------- */

static void ctx_open(struct tstate *t)
{
	int rc;

	t->ctx = 0;
	rc = rnd(&t->rng, 2) ? io_setup(NSLOT, &t->ctx) : io_queue_init(NSLOT, &t->ctx);
	if (rc != 0) {
		fail("io_setup: %s", strerror(-rc));
		exit(1);
	}
}

/* Destroys the context (nothing in flight on it) and checks its eventfd:
 * every request that asked for it bumped it once. */
static void ctx_close(struct tstate *t)
{
	int rc = rnd(&t->rng, 2) ? io_destroy(t->ctx) : io_queue_release(t->ctx);

	if (rc != 0)
		fail("io_destroy: %s", strerror(-rc));
	read_efd(t);
	if (t->efd_total != t->efd_expect)
		fail("eventfd of thread %d: %" PRIu64 " bumps for %" PRIu64 " requests",
		     t->idx, t->efd_total, t->efd_expect);
	add(&eventfd_notes, t->efd_total);
	t->efd_total = t->efd_expect = 0;
	t->ctx = 0;
}

/* ---- the threads ------------------------------------------------------------ */

static bool stream_pending(const struct tstate *t)
{
	for (int i = 0; i < NSTREAM; i++)
		if (!t->st[i].broken && (t->st[i].written > t->st[i].consumed + t->st[i].rflight))
			return true;
	return false;
}

static bool lists_busy(const struct tstate *t)
{
	for (int i = 0; i < NLIST; i++)
		if (t->list[i].state != LS_FREE)
			return true;
	return false;
}

static void step(struct tstate *t)
{
	unsigned x;

	poll_all(t);
	if (busy_slots(t) > NSLOT - LIST_MAX - 2) {
		wait_some(t);
		return;
	}
	if (t->app.want_check && !t->app.inflight)
		app_check(t);
	x = rnd(&t->rng, 1000);
	if (x < 290)
		do_posix(t);
	else if (x < 400)
		do_lio(t, LIO_NOWAIT);
	else if (x < 440)
		do_lio(t, LIO_WAIT);
	else if (x < 700)
		do_aio(t, false);
	else if (x < 800)
		do_aio(t, true);
	else if (x < 850)
		do_cancel(t);
	else if (x < 990)
		wait_some(t);
	else if (x < 995 && !t->app.inflight)
		app_check(t);
	else if (x == 999 && t->nown == 0 && t->efd_open == 0) {
		ctx_close(t);
		ctx_open(t);
		t->c.recycles++;
	}
}

/* Lets everything in flight end, reads what the streams still hold, and
 * checks the files once more. */
static void drain(struct tstate *t)
{
	long long end = now_ms() + DRAIN_DEADLINE_MS;

	for (;;) {
		poll_all(t);
		while (stream_pending(t) && busy_slots(t) < NSLOT) {
			struct slot *s = slot_get(t);
			int i = (int)rnd(&t->rng, NSTREAM);
			if (!prep_stream_read(t, &t->st[i], s)) {
				slot_put(t, s);
				break;
			}
			s->fe = FE_POSIX;
			fill_cb(t, s, N_NONE);
			if (aio_read(&s->cb) == 0) {
				s->state = S_FLIGHT;
				t->nposix++;
				t->c.submitted[FE_POSIX]++;
			} else {
				refuse(t, s);
			}
		}
		if (!t->app.inflight && t->app.log.base != t->app.log.next)
			app_check(t);
		if (busy_slots(t) == 0 && !lists_busy(t) && !stream_pending(t) &&
		    t->app.log.base == t->app.log.next)
			break;
		if (now_ms() > end) {
			fail("thread %d: still %d requests in flight or waiting for their "
			     "notification after %d ms (posix %d, libaio %d, shared %d, "
			     "notifications %d)", t->idx, busy_slots(t), DRAIN_DEADLINE_MS,
			     t->nposix, t->nown, t->nshared, t->nnote);
			return;
		}
		wait_some(t);
	}
	for (int i = 0; i < NSTREAM; i++) {
		struct stream *st = &t->st[i];
		log_trim(&st->log);
		if (!st->broken && (st->acc_n || st->written != st->consumed ||
		                    st->log.base != st->log.next))
			fail("stream %u: %zu bytes unparsed, %" PRId64 " written, %" PRId64
			     " read, records %" PRIu64 "..%" PRIu64 " outstanding", st->id,
			     st->acc_n, st->written, st->consumed, st->log.base, st->log.next);
	}
}

static void *runner(void *arg)
{
	struct tstate *t = arg;

	t->tid = gettid();
	ctx_open(t);
	while (!load(&stop_flag))
		step(t);
	drain(t);
	ctx_close(t);
	return NULL;
}

/* The shared context's reaper: waits on its eventfd (or in io_getevents)
 * and hands each event to the slot it names. */
static void *reaper(void *arg)
{
	struct io_event ev[64];
	uint64_t r = opt.seed ^ 0x5eed;

	(void)arg;
	while (!load(&reaper_stop) || load(&shared_inflight) > 0) {
		struct timespec tmo = { 0, 5 * 1000000L }, zero = { 0, 0 };
		int n;

		if (rnd(&r, 2)) {
			struct pollfd p = { shared_efd, POLLIN, 0 };
			uint64_t v;
			if (poll(&p, 1, 5) > 0 && read(shared_efd, &v, sizeof v) == (ssize_t)sizeof v)
				shared_efd_total += v;
			n = io_getevents(shared_ctx, 0, 64, ev, &zero);
		} else {
			n = io_getevents(shared_ctx, 1, 64, ev, &tmo);
		}
		if (n == -EINTR)
			continue;
		if (n < 0) {
			fail("io_getevents (shared): %s", strerror(-n));
			continue;
		}
		for (int i = 0; i < n; i++) {
			add(&shared_inflight, -1);
			aio_event(NULL, &ev[i], true);
		}
		/* Events reaped here are counted as expected once their
		 * owner has looked at them: up to every slot. */
		if (shared_efd_total > load(&shared_efd_expect) +
		                       (uint64_t)load(&shared_inflight) + nslots_total)
			fail("the shared eventfd runs ahead of its requests");
	}
	return NULL;
}

/* ---- the engine's knobs --------------------------------------------------- */

static long knob_default[8];

static void knobs_save(void)
{
	for (int k = AIOPOOL_MAX_THREADS; k <= AIOPOOL_RUNNABLE; k++)
		knob_default[k] = aiopool_get(k);
}

static void knobs_restore(void)
{
	for (int k = AIOPOOL_MAX_THREADS; k <= AIOPOOL_RUNNABLE; k++)
		if (aiopool_set(k, knob_default[k]) != 0)
			fail("aiopool_set(%d, %ld): %s", k, knob_default[k], strerror(errno));
}

static void churn(uint64_t *r)
{
	static const long threads[] = { 1, 2, 3, 8, 20 };
	static const long idle[] = { -1, 0, 3, 100, 1000 };
	static const long conc[] = { 1, 2, 4, 16 };
	static const long queued[] = { 16, 64, 1L << 20, 1L << 20, 1L << 20 };
	static const long cache[] = { 0, 8, 64 };
	int k = AIOPOOL_MAX_THREADS + (int)rnd(r, 7);
	long v;

	if (rnd(r, 4) == 0) {
		knobs_restore();
		return;
	}
	switch (k) {
	case AIOPOOL_MAX_THREADS:    v = threads[rnd(r, 5)]; break;
	case AIOPOOL_IDLE_MS:        v = idle[rnd(r, 5)]; break;
	case AIOPOOL_MAX_QUEUED:     v = queued[rnd(r, 5)]; break;
	case AIOPOOL_FD_CONCURRENCY: v = conc[rnd(r, 4)]; break;
	case AIOPOOL_CACHE:          v = cache[rnd(r, 3)]; break;
	case AIOPOOL_FASTPATH:       v = rnd(r, 2); break;
	default:                     v = 1 + rnd(r, 3); break;
	}
	if (aiopool_set(k, v) != 0)
		fail("aiopool_set(%d, %ld): %s", k, v, strerror(errno));
}

/* ---- process-wide measures ------------------------------------------------ */

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0);   /* the DIR's own fd */
}

/* The program's own descriptors: those below where aiopool puts its own
 * (min(1024, half the soft RLIMIT_NOFILE)).  aiopool holds a duplicate of
 * each file it has served until the file is closed, and lets go of one
 * closed behind its back after an idle time, so its count between two
 * points of a run depends on timing; the end of the run, after every file
 * is closed, counts them all. */
static int count_program_fds(void)
{
	struct rlimit rl;
	long base = 1024;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)(rl.rlim_cur / 2) < base)
		base = (long)(rl.rlim_cur / 2);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' && atol(e->d_name) < base &&
		     atoi(e->d_name) != dirfd(d);
	closedir(d);
	return n;
}

struct measure {
	int tasks, fds;
	size_t heap;
};

static struct aiopool_stats stats(void)
{
	struct aiopool_stats st;

	if (aiopool_stats(&st, sizeof st) != 0)
		fail("aiopool_stats: %s", strerror(errno));
	return st;
}

/* Lets the engine's idle threads go and empties its request cache, then
 * measures the process. */
static struct measure settle(int want_tasks)
{
	long long end = now_ms() + 30000;
	struct measure m;
	struct aiopool_stats st;

	aiopool_set(AIOPOOL_CACHE, 0);
	aiopool_set(AIOPOOL_IDLE_MS, 5);
	for (;;) {
		st = stats();
		m.tasks = count_dir("/proc/self/task");
		if ((st.threads == 0 && m.tasks <= want_tasks) || now_ms() > end)
			break;
		sleep_us(5000);
	}
	if (st.threads || st.queued || st.running)
		fail("the engine is not idle: %lu threads, %lu queued, %lu running",
		     st.threads, st.queued, st.running);
	m.fds = count_program_fds();
	m.heap = mallinfo2().uordblks;
	aiopool_set(AIOPOOL_CACHE, knob_default[AIOPOOL_CACHE]);
	aiopool_set(AIOPOOL_IDLE_MS, knob_default[AIOPOOL_IDLE_MS]);
	return m;
}

/* ---- set-up ---------------------------------------------------------------- */

static char tmpdir[PATH_MAX];

static int open_temp(const char *name, int flags)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | flags, 0600);
	if (fd < 0) {
		fprintf(stderr, "stress: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	unlink(path);
	return fd;
}

static void setup(void)
{
	const char *base = opt.dir ? opt.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct sigaction sa;
	unsigned char blk[BLK];
	char name[32];

	snprintf(tmpdir, sizeof tmpdir, "%s/aiopool-stress-XXXXXX", base);
	if (!mkdtemp(tmpdir)) {
		fprintf(stderr, "stress: mkdtemp %s: %s\n", tmpdir, strerror(errno));
		exit(1);
	}
	for (int f = 0; f < NFILE; f++) {
		snprintf(name, sizeof name, "file%d", f);
		file_fd[f][0] = open_temp(name, 0);
		snprintf(name, sizeof name, "/proc/self/fd/%d", file_fd[f][0]);
		file_fd[f][1] = open(name, O_RDWR | O_CLOEXEC);
		if (file_fd[f][1] < 0) {
			file_fd[f][1] = dup(file_fd[f][0]);
			if (file_fd[f][1] < 0) {
				fprintf(stderr, "stress: dup: %s\n", strerror(errno));
				exit(1);
			}
		}
		for (int b = 0; b < NBLK; b++) {
			make_block(blk, f, b, 0);
			if (pwrite(file_fd[f][0], blk, BLK, (off_t)b * BLK) != BLK) {
				fprintf(stderr, "stress: pwrite: %s\n", strerror(errno));
				exit(1);
			}
		}
	}

	nslots_total = (uint32_t)(opt.threads * NSLOT);
	nlists_total = (uint32_t)(opt.threads * NLIST);
	all_slots = calloc(nslots_total, sizeof *all_slots);
	all_lists = calloc(nlists_total, sizeof *all_lists);
	ts = calloc((size_t)opt.threads, sizeof *ts);
	if (!all_slots || !all_lists || !ts) {
		fprintf(stderr, "stress: out of memory\n");
		exit(1);
	}
	for (uint32_t i = 0; i < nslots_total; i++)
		all_slots[i].id = i;
	for (int i = 0; i < opt.threads; i++) {
		struct tstate *t = &ts[i];
		t->idx = i;
		t->slot = &all_slots[i * NSLOT];
		t->list = &all_lists[i * NLIST];
		t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		for (int s = 0; s < NSTREAM; s += 2) {
			int p[2], q[2];
			if (s == 0) {
				if (pipe2(p, O_CLOEXEC) || pipe2(q, O_CLOEXEC))
					exit(1);
			} else {
				if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p))
					exit(1);
				q[0] = p[1];
				q[1] = p[0];
			}
			t->st[s] = (struct stream){ .id = (uint32_t)(i * NSTREAM + s),
			                            .rfd = p[0], .wfd = p[1] };
			t->st[s + 1] = (struct stream){ .id = (uint32_t)(i * NSTREAM + s + 1),
			                                .rfd = q[0], .wfd = q[1] };
		}
		snprintf(name, sizeof name, "append%d", i);
		t->app.id = 1000u + (uint32_t)i;
		t->app.fd = open_temp(name, O_APPEND);
		t->nop.aio_lio_opcode = LIO_NOP;
		t->nop.aio_fildes = t->app.fd;
		t->nfree = NSLOT;
		for (int k = 0; k < NSLOT; k++)
			t->freel[k] = NSLOT - 1 - k;
	}
	rmdir(tmpdir);

	pthread_attr_init(&note_attr);
	pthread_attr_setdetachstate(&note_attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&note_attr, 128 * 1024);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIG_NOTE, &sa, NULL);
	sigaction(SIG_TID, &sa, NULL);
}

static void teardown(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIG_NOTE, &sa, NULL);
	sigaction(SIG_TID, &sa, NULL);
	for (int f = 0; f < NFILE; f++) {
		close(file_fd[f][0]);
		close(file_fd[f][1]);
	}
	for (int i = 0; i < opt.threads; i++) {
		struct tstate *t = &ts[i];
		close(t->efd);
		close(t->app.fd);
		for (int s = 0; s < NSTREAM; s += 2) {
			close(t->st[s].rfd);
			close(t->st[s].wfd);
			if (s == 0) {
				close(t->st[s + 1].rfd);
				close(t->st[s + 1].wfd);
			}
		}
	}
	pthread_attr_destroy(&note_attr);
	free(all_slots);
	free(all_lists);
	free(ts);
}

/* ---- the run ----------------------------------------------------------------- */

static struct counters total(void)
{
	struct counters c = { 0 };

	for (int i = 0; i < opt.threads; i++) {
		struct counters *x = &ts[i].c;
		for (int k = 0; k < FE_KINDS; k++)
			c.submitted[k] += load(&x->submitted[k]);
		c.completed += load(&x->completed);
		c.cancelled += load(&x->cancelled);
		c.refused += load(&x->refused);
		c.failed_ok += load(&x->failed_ok);
		c.eintr += load(&x->eintr);
		c.suspends += load(&x->suspends);
		c.lists += load(&x->lists);
		c.batches += load(&x->batches);
		c.cancel_calls += load(&x->cancel_calls);
		c.recycles += load(&x->recycles);
		c.bytes_read += load(&x->bytes_read);
		c.bytes_written += load(&x->bytes_written);
	}
	return c;
}

static uint64_t submitted(const struct counters *c)
{
	uint64_t n = 0;

	for (int k = 0; k < FE_KINDS; k++)
		n += c->submitted[k];
	return n;
}

static uint64_t notes_total(void)
{
	uint64_t n = load(&notes.list) + load(&eventfd_notes);

	for (int k = 1; k < N_KINDS; k++)
		n += load(&notes.kind[k]);
	return n;
}

static long long run_start_ms;

static void progress(const char *what)
{
	struct counters c = total();
	struct aiopool_stats st = stats();
	double secs = (double)(now_ms() - run_start_ms) / 1000.0;

	printf("stress: %s %.0f s: %" PRIu64 " requests (%.0f/s), %" PRIu64 " completed, %"
	       PRIu64 " cancelled, %" PRIu64 " refused, %" PRIu64 " notifications, %" PRIu64
	       " errors; engine threads %lu\n", what, secs, submitted(&c),
	       secs > 0 ? (double)submitted(&c) / secs : 0.0, c.completed, c.cancelled,
	       c.refused, notes_total(), load(&nerrors), st.threads);
	fflush(stdout);
}

static void phase(int ms, bool main_run)
{
	pthread_t rt;
	uint64_t r = opt.seed ^ 0xc0ffee;
	long long end = now_ms() + ms, next_report;
	int rc;

	store(&stop_flag, 0);
	store(&reaper_stop, 0);
	shared_ctx = 0;
	if ((rc = io_setup(opt.threads * NSLOT, &shared_ctx)) != 0) {
		fail("io_setup (shared): %s", strerror(-rc));
		exit(1);
	}
	shared_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	shared_efd_total = 0;
	store(&shared_efd_expect, 0);
	if (main_run)
		run_start_ms = now_ms();
	next_report = now_ms() + opt.report * 1000LL;
	for (int i = 0; i < opt.threads; i++) {
		ts[i].rng = mix(opt.seed + (uint64_t)i * 7919 + (main_run ? 1 : 0));
		if (pthread_create(&ts[i].thr, NULL, runner, &ts[i]) != 0) {
			fprintf(stderr, "stress: pthread_create failed\n");
			exit(1);
		}
	}
	if (pthread_create(&rt, NULL, reaper, NULL) != 0)
		exit(1);
	while (now_ms() < end) {
		sleep_us(50000);
		if (rnd(&r, 3) == 0)
			churn(&r);
		if (main_run && opt.report && now_ms() >= next_report) {
			progress("at");
			next_report += opt.report * 1000LL;
		}
	}
	knobs_restore();
	store(&stop_flag, 1);
	for (int i = 0; i < opt.threads; i++)
		pthread_join(ts[i].thr, NULL);
	store(&reaper_stop, 1);
	pthread_join(rt, NULL);
	if ((rc = io_destroy(shared_ctx)) != 0)
		fail("io_destroy (shared): %s", strerror(-rc));
	{
		uint64_t v;
		if (read(shared_efd, &v, sizeof v) == (ssize_t)sizeof v)
			shared_efd_total += v;
	}
	if (shared_efd_total != load(&shared_efd_expect))
		fail("shared eventfd: %" PRIu64 " bumps for %" PRIu64 " requests",
		     shared_efd_total, load(&shared_efd_expect));
	add(&eventfd_notes, shared_efd_total);
	close(shared_efd);
	if (load(&shared_inflight) != 0)
		fail("shared context: %d requests unaccounted for", load(&shared_inflight));
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		sleep_us(1000000);
		if ((uint64_t)now_ms() > load(&phase_deadline_ms)) {
			fprintf(stderr, "stress: FAIL: watchdog: the run overstayed its time; "
			        "state follows\n");
			for (int i = 0; i < opt.threads; i++)
				fprintf(stderr, "  thread %d: %d slots busy (posix %d, libaio %d, "
				        "shared %d, awaiting notification %d)\n", i, busy_slots(&ts[i]),
				        ts[i].nposix, ts[i].nown, ts[i].nshared, ts[i].nnote);
			struct aiopool_stats st = stats();
			fprintf(stderr, "  engine: %lu threads, %lu idle, %lu queued, %lu running\n",
			        st.threads, st.idle_threads, st.queued, st.running);
			_exit(2);
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: stress [--seconds N] [--threads N] [--seed N] [--dir PATH] "
	        "[--report N] [--quiet]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	struct aiopool_stats st0, st1;
	struct measure m0, m1;
	struct counters c;
	pthread_t wd;
	int fds_start, warm_ms;
	long long t0;

	opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quiet")) {
			opt.quiet = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--seconds"))
			opt.seconds = atoi(v);
		else if (!strcmp(a, "--threads"))
			opt.threads = atoi(v);
		else if (!strcmp(a, "--seed"))
			opt.seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--dir"))
			opt.dir = v;
		else if (!strcmp(a, "--report"))
			opt.report = atoi(v);
		else
			usage();
	}
	if (opt.seconds < 1 || opt.threads < 1 || opt.threads > MAXT || opt.report < 0)
		usage();

	printf("stress: %d s, %d threads, seed %#" PRIx64 " (rerun with --seed %#" PRIx64 ")\n",
	       opt.seconds, opt.threads, opt.seed, opt.seed);
	fflush(stdout);
	fds_start = count_dir("/proc/self/fd");
	store(&phase_deadline_ms, (uint64_t)now_ms() + (uint64_t)opt.seconds * 1000 + 180000);
	if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
		return 1;
	pthread_detach(wd);
	knobs_save();
	setup();
	st0 = stats();

	/* Warm-up: the same load, briefly, so that whatever the C library
	 * keeps for good (arenas, stacks) is there before the baseline. */
	warm_ms = opt.seconds >= 10 ? 1000 : 300;
	phase(warm_ms, false);
	m0 = settle(2);
	if (!opt.quiet)
		printf("stress: baseline: %d threads, %d fds, %zu bytes of heap in use\n",
		       m0.tasks, m0.fds, m0.heap);

	t0 = now_ms();
	c = total();
	uint64_t warm_requests = submitted(&c);
	phase(opt.seconds * 1000 - warm_ms, true);
	m1 = settle(m0.tasks);
	if (!opt.quiet)
		printf("stress: after:    %d threads, %d fds, %zu bytes of heap in use\n",
		       m1.tasks, m1.fds, m1.heap);
	if (m1.tasks != m0.tasks)
		fail("threads: %d before, %d after", m0.tasks, m1.tasks);
	if (m1.fds != m0.fds)
		fail("fds: %d before, %d after", m0.fds, m1.fds);
	if (m1.heap > m0.heap + HEAP_SLACK)
		fail("heap: %zu bytes in use before, %zu after", m0.heap, m1.heap);

	/* The engine's counts agree with ours. */
	st1 = stats();
	c = total();
	if (st1.submitted - st0.submitted != submitted(&c))
		fail("aiopool_stats: %llu submitted, we had %" PRIu64 " accepted",
		     st1.submitted - st0.submitted, submitted(&c));
	if (st1.completed - st0.completed != c.completed)
		fail("aiopool_stats: %llu completed, we saw %" PRIu64,
		     st1.completed - st0.completed, c.completed);
	if (st1.cancelled - st0.cancelled != c.cancelled)
		fail("aiopool_stats: %llu cancelled, we saw %" PRIu64,
		     st1.cancelled - st0.cancelled, c.cancelled);
	if (st1.notify_failed != st0.notify_failed)
		fail("aiopool_stats: %llu notifications could not be sent",
		     st1.notify_failed - st0.notify_failed);
	if (load(&notes.stray) || load(&notes.dup) || load(&notes.early) ||
	    load(&notes.wrong_thread) || load(&notes.bad_info))
		fail("notifications: %" PRIu64 " stray, %" PRIu64 " duplicate, %" PRIu64
		     " before the result, %" PRIu64 " on the wrong thread, %" PRIu64
		     " with a wrong siginfo", load(&notes.stray), load(&notes.dup),
		     load(&notes.early), load(&notes.wrong_thread), load(&notes.bad_info));

	teardown();
	if (count_dir("/proc/self/fd") != fds_start)
		fail("fds: %d at start, %d at the end", fds_start, count_dir("/proc/self/fd"));

	/* Count the main run only in the rate, everything in the totals. */
	double secs = (double)(now_ms() - t0) / 1000.0;
	printf("stress: %s: %" PRIu64 " requests (posix %" PRIu64 ", lio_listio %" PRIu64
	       " in %" PRIu64 " calls, libaio %" PRIu64 ", shared context %" PRIu64 "), %"
	       PRIu64 " completed, %" PRIu64 " cancelled, %" PRIu64 " refused (EAGAIN), %"
	       PRIu64 " failed as expected; %" PRIu64 " notifications (signal %" PRIu64
	       ", thread %" PRIu64 ", thread+attr %" PRIu64 ", thread_id %" PRIu64 ", list %"
	       PRIu64 ", eventfd %" PRIu64 "); %" PRIu64 " EINTR; %" PRIu64 " MB read, %"
	       PRIu64 " MB written; %.0f requests/s; %" PRIu64 " errors\n",
	       nerrors ? "FAIL" : "PASS", submitted(&c), c.submitted[FE_POSIX],
	       c.submitted[FE_LIO], c.lists, c.submitted[FE_AIO], c.submitted[FE_AIO_SHARED],
	       c.completed, c.cancelled, c.refused, c.failed_ok, notes_total(),
	       load(&notes.kind[N_SIGNAL]), load(&notes.kind[N_THREAD]),
	       load(&notes.kind[N_THREAD_ATTR]), load(&notes.kind[N_THREAD_ID]),
	       load(&notes.list), eventfd_notes, c.eintr,
	       c.bytes_read >> 20, c.bytes_written >> 20,
	       secs > 0 ? (double)(submitted(&c) - warm_requests) / secs : 0.0, nerrors);
	return nerrors ? 1 : 0;
}
