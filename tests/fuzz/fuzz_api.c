/* fuzz_api.c: a libFuzzer target that drives both front ends of aiopool,
 * the POSIX <aio.h> one and the libaio one, with sequences of calls whose
 * arguments the fuzzer chooses, against a small fixed set of real fds:
 * a regular file, an O_APPEND file, a pipe, a socketpair, an fd number that
 * is never open, and -1.  Built by tests/fuzz/run.sh from the library's
 * sources (clang -fsanitize=fuzzer,address,undefined).
 *
 * Each call's outcome is checked against what docs/reliability.md's table
 * and the man pages promise, and at the end of every input:
 *   - every request that was accepted completed, or was cancelled, exactly
 *     once (aio_return takes each result once; each libaio event names an
 *     iocb that was in flight; every notification arrived once) within a
 *     deadline: the target abort()s naming what never came;
 *   - the data is right where it is defined: the regular file only ever
 *     holds its pattern (every write writes the pattern of its offsets), the
 *     O_APPEND file holds the records written, in submission order, and
 *     every byte put into the pipe and the sockets came out exactly once;
 *   - the engine is idle and its counters agree.
 * State is cleaned between inputs (contexts destroyed, knobs restored,
 * files reset, streams drained) so that inputs are independent.
 *
 * A call that could block for good (lio_listio(LIO_WAIT), aio_suspend
 * without a timeout, io_destroy with requests running) runs on a helper
 * thread while this one feeds and drains the pipe and sockets, so that
 * every request can finish; it must return within the deadline.
 *
 * Built with -DFUZZ_STANDALONE it has a main() of its own that runs each
 * file (or each file of each directory) named on the command line once,
 * for a compiler without libFuzzer or for valgrind (tests/valgrind.sh,
 * which adds -DFUZZ_VALGRIND: no bad buffers handed to the kernel on
 * purpose).  FUZZ_TRACE=1 in the environment prints what an input does.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"
#include "libaio.h"   /* aiopool's, include/aiopool/libaio.h */

extern int io_queue_wait(io_context_t ctx, struct timespec *timeout);

/* <aio.h> declares its functions nonnull; passing NULL is one of the bad
 * inputs, so they are called through pointers that do not say so. */
static int (*volatile f_aio_read)(struct aiocb *) = aio_read;
static int (*volatile f_aio_write)(struct aiocb *) = aio_write;
static int (*volatile f_aio_fsync)(int, struct aiocb *) = aio_fsync;
static int (*volatile f_aio_error)(const struct aiocb *) = aio_error;
static ssize_t (*volatile f_aio_return)(struct aiocb *) = aio_return;
static int (*volatile f_aio_suspend)(const struct aiocb *const[], int,
		const struct timespec *) = aio_suspend;
static int (*volatile f_lio_listio)(int, struct aiocb *const[], int,
		struct sigevent *) = lio_listio;
static void (*volatile f_aio_init)(const struct aioinit *) = aio_init;

/* ---- limits ------------------------------------------------------------ */

#define DEADLINE_MS 30000   /* for anything to complete or return: generous,
                               the target also runs under valgrind on a
                               busy machine */
#define MAX_OPS     48      /* calls per input */
#define NPS         10      /* POSIX aiocbs */
#define NLS         10      /* libaio iocbs */
#define NCTX        2       /* context slots */
#define NDEAD       8       /* destroyed handles remembered */
#define BUFSZ       4096
#define REGION      65536   /* the regular file's size, never changed */
#define MAXNOTE     2048
#define MAXREC      1024
#define NEV         32

#define SIG_NOTE    (SIGRTMIN + 3)
#define USER_BAD    ((void *)-4096L)   /* a kernel address */

/* ---- dying with a message ------------------------------------------------ */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_api: invariant broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define check(cond, ...) do { if (!(cond)) die(__VA_ARGS__); } while (0)

/* FUZZ_TRACE=1 in the environment: say what each input does. */
static bool tracing;
#define trace(...) do { if (tracing) fprintf(stderr, __VA_ARGS__); } while (0)

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);   /* EINTR (our notification signal) is fine */
}

/* ---- the input ------------------------------------------------------------- */

static const uint8_t *in_p;
static size_t in_n;

static unsigned u8(void)
{
	if (!in_n)
		return 0;
	in_n--;
	return *in_p++;
}

static unsigned u16(void)
{
	return u8() | u8() << 8;
}

/* One of n choices. */
static unsigned pick(unsigned n)
{
	return u8() % n;
}

/* ---- the fds ----------------------------------------------------------------- */

enum { F_REG, F_APP, F_PIPE_R, F_PIPE_W, F_SOCK_A, F_SOCK_B, F_CLOSED, F_NEG, NFD };
static const char *const fd_name[NFD] = {
	"regular", "append", "pipe-r", "pipe-w", "sock-a", "sock-b", "closed", "-1",
};
static int fds[NFD];
static int evfd;            /* an eventfd for IOCB_FLAG_RESFD */

static bool fd_bad(int f)   { return f == F_CLOSED || f == F_NEG; }
static bool fd_file(int f)  { return f == F_REG || f == F_APP; }
static bool fd_stream(int f) { return f >= F_PIPE_R && f <= F_SOCK_B; }

/* Streams: the pipe, and the socketpair's two directions. */
enum { S_PIPE, S_AB, S_BA, NSTREAM, S_NONE = -1 };

struct stream {
	int wr, rd;                 /* the fd choices written to and read from */
	int feed_fd, drain_fd;      /* our own non-blocking ends */
	bool sock;
	uint64_t in[256], out[256]; /* bytes put in and taken out, by value */
	bool valid;                 /* the counts are exact this input */
	unsigned char seq;
};
static struct stream st[NSTREAM];

/* The stream a read or write on fd choice f belongs to, or S_NONE. */
static int stream_of(int f, bool write)
{
	switch (f) {
	case F_PIPE_R: return write ? S_NONE : S_PIPE;
	case F_PIPE_W: return write ? S_PIPE : S_NONE;
	case F_SOCK_A: return write ? S_AB : S_BA;
	case F_SOCK_B: return write ? S_BA : S_AB;
	}
	return S_NONE;
}

/* The regular file's byte at off. */
static unsigned char pat(unsigned long long off)
{
	return (unsigned char)(off * 131 + (off >> 9) * 7 + 3);
}

/* Nothing is ever opened at this number. */
static int closed_number(void)
{
	struct rlimit rl;
	int fd = 1000;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur <= 1000)
		fd = (int)rl.rlim_cur - 1;
	check(fcntl(fd, F_GETFD) < 0, "fd %d is open: no closed fd number", fd);
	return fd;
}

static int temp_fd(int flags)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/aiopool-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkostemp(path, flags | O_CLOEXEC);
	check(fd >= 0, "mkostemp %s: %s", path, strerror(errno));
	unlink(path);
	return fd;
}

static int reopen(int fd, int flags)
{
	char path[64];
	int r;

	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	r = open(path, flags | O_NONBLOCK | O_CLOEXEC);
	check(r >= 0, "open %s: %s", path, strerror(errno));
	return r;
}

static void setup_fds(void)
{
	static unsigned char buf[REGION];
	int p[2], sv[2];

	fds[F_REG] = temp_fd(0);
	for (int i = 0; i < REGION; i++)
		buf[i] = pat((unsigned)i);
	check(pwrite(fds[F_REG], buf, REGION, 0) == REGION, "filling the file");
	fds[F_APP] = temp_fd(O_APPEND);
	check(pipe2(p, O_CLOEXEC) == 0, "pipe");
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	fds[F_PIPE_R] = p[0];
	fds[F_PIPE_W] = p[1];
	fds[F_SOCK_A] = sv[0];
	fds[F_SOCK_B] = sv[1];
	fds[F_CLOSED] = closed_number();
	fds[F_NEG] = -1;
	evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	check(evfd >= 0, "eventfd");

	st[S_PIPE] = (struct stream){ .wr = F_PIPE_W, .rd = F_PIPE_R,
		.feed_fd = reopen(p[1], O_WRONLY), .drain_fd = reopen(p[0], O_RDONLY) };
	st[S_AB] = (struct stream){ .wr = F_SOCK_A, .rd = F_SOCK_B, .sock = true,
		.feed_fd = sv[0], .drain_fd = sv[1] };
	st[S_BA] = (struct stream){ .wr = F_SOCK_B, .rd = F_SOCK_A, .sock = true,
		.feed_fd = sv[1], .drain_fd = sv[0] };
}

static void count_bytes(uint64_t *h, const unsigned char *b, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++)
		h[b[i]]++;
}

/* Puts up to n filler bytes into s without blocking. */
static void feed(struct stream *s, size_t n)
{
	unsigned char b[512];
	ssize_t k;

	if (n > sizeof b)
		n = sizeof b;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(0xa5 ^ s->seq++);
	k = s->sock ? send(s->feed_fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL)
	            : write(s->feed_fd, b, n);
	if (k > 0)
		count_bytes(s->in, b, k);
	else
		check(errno == EAGAIN || errno == EINTR, "feeding: %s", strerror(errno));
}

/* Takes what s holds without blocking; whether it got anything. */
static bool drain(struct stream *s)
{
	unsigned char b[4096];
	bool got = false;

	for (int i = 0; i < 64; i++) {
		ssize_t k = s->sock ? recv(s->drain_fd, b, sizeof b, MSG_DONTWAIT)
		                    : read(s->drain_fd, b, sizeof b);
		if (k <= 0) {
			check(k < 0 && (errno == EAGAIN || errno == EINTR),
			      "draining: %s", k ? strerror(errno) : "end of file");
			break;
		}
		count_bytes(s->out, b, k);
		got = true;
	}
	return got;
}

/* ---- notifications ----------------------------------------------------------- */

/* Every notification carries gen << 16 | id in its sigval.  The counts are
 * bumped from signal handlers and notifier threads. */
static unsigned gen;
static uint32_t note_got[MAXNOTE];
static unsigned char note_times[MAXNOTE];  /* arrivals expected */
static bool note_sig[MAXNOTE];             /* a signal: may be lost, counted */
static int nnotes;
static uint32_t note_stray;
static pthread_attr_t note_attr;           /* for SIGEV_THREAD with attributes */
static pid_t main_tid;

static void note_hit(int v)
{
	unsigned g = (unsigned)v >> 16, id = (unsigned)v & 0xffff;

	if (g != gen || id >= MAXNOTE)
		__atomic_add_fetch(&note_stray, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&note_got[id], 1, __ATOMIC_RELAXED);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code == SI_ASYNCIO)
		note_hit(si->si_value.sival_int);
}

static void on_thread(union sigval v)
{
	note_hit(v.sival_int);
}

/* Notification kinds the fuzzer picks from. */
enum { N_NONE, N_SIGNAL, N_SIGNAL0, N_THREAD, N_THREAD_ATTR, N_THREAD_ID,
       N_BAD_NOTIFY, N_BAD_SIGNO, N_BAD_FN, N_BAD_TID, NNOTIFY };

static bool notify_valid(int k)
{
	return k < N_BAD_NOTIFY;
}

/* Fills sev for kind k; the notification id it will carry, or -1. */
static int make_sigevent(struct sigevent *sev, int k)
{
	int id = -1;

	memset(sev, 0, sizeof *sev);
	if (k == N_SIGNAL || k == N_THREAD || k == N_THREAD_ATTR || k == N_THREAD_ID) {
		if (nnotes >= MAXNOTE)
			k = N_NONE;
		else
			id = nnotes++;
	}
	sev->sigev_value.sival_int = id < 0 ? 0 : (int)(gen << 16 | (unsigned)id);
	switch (k) {
	case N_NONE:
		sev->sigev_notify = SIGEV_NONE;
		break;
	case N_SIGNAL:
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = SIG_NOTE;
		break;
	case N_SIGNAL0:
		sev->sigev_notify = SIGEV_SIGNAL;   /* a zeroed sigevent: nothing */
		break;
	case N_THREAD:
	case N_THREAD_ATTR:
		sev->sigev_notify = SIGEV_THREAD;
		sev->sigev_notify_function = on_thread;
		sev->sigev_notify_attributes = k == N_THREAD_ATTR ? &note_attr : NULL;
		break;
	case N_THREAD_ID:
		sev->sigev_notify = SIGEV_THREAD_ID;
		sev->sigev_signo = SIG_NOTE;
		sev->_sigev_un._tid = main_tid;
		break;
	case N_BAD_NOTIFY:
		sev->sigev_notify = 77;
		break;
	case N_BAD_SIGNO:
		sev->sigev_notify = SIGEV_SIGNAL;
		sev->sigev_signo = 65 + (int)u8();
		break;
	case N_BAD_FN:
		sev->sigev_notify = SIGEV_THREAD;
		break;
	case N_BAD_TID:
		sev->sigev_notify = SIGEV_THREAD_ID;
		sev->sigev_signo = SIG_NOTE;
		sev->_sigev_un._tid = 0x7ffffff0;
		break;
	}
	return id;
}

/* A request or list carrying note id was accepted: one more arrival.
 * Signals may be lost, but only as counted by notify_failed. */
static void note_expect(int id, int kind)
{
	if (id < 0)
		return;
	note_times[id]++;
	note_sig[id] = kind == N_SIGNAL || kind == N_THREAD_ID;
}

/* ---- what a request should end with ------------------------------------------ */

enum { OP_READ, OP_WRITE, OP_FSYNC, OP_POLL };
enum { CHK_NONE, CHK_REG, CHK_IN, CHK_OUT, CHK_APPEND, CHK_POLL };
enum { B_VALID, B_NULL, B_KERNEL };

struct expect {
	/* what was asked */
	int op, fdc, bufk, rwf, events;
	long long off;
	size_t len;
	unsigned seed;          /* the data written */
	/* how it may end */
	int errs[6], nerrs;     /* errors it may end with */
	ssize_t lo, hi;         /* bytes when it succeeds; hi < 0: it cannot */
	int chk, stream;
};

static void may_fail(struct expect *e, int err)
{
	for (int i = 0; i < e->nerrs; i++)
		if (e->errs[i] == err)
			return;
	if (e->nerrs < (int)(sizeof e->errs / sizeof e->errs[0]))
		e->errs[e->nerrs++] = err;
}

static void only_fail(struct expect *e, int err)
{
	may_fail(e, err);
	e->hi = -1;
}

/* The result of an accepted request, by fd kind and operation (the
 * kernel's behaviour: pread/pwrite/read/write, fsync, poll).  posix: the
 * POSIX front end, which checks less at submission. */
static void expect_async(struct expect *e)
{
	bool write = e->op == OP_WRITE;
	int f = e->fdc;

	e->nerrs = 0;
	e->lo = e->hi = 0;
	e->chk = CHK_NONE;
	e->stream = S_NONE;
	if (fd_bad(f)) {
		only_fail(e, EBADF);
		return;
	}
	if (e->op == OP_FSYNC) {
		if (fd_stream(f))
			only_fail(e, EINVAL);
		return;
	}
	if (e->op == OP_POLL) {
		e->lo = 1;
		e->hi = 0xffff;
		e->chk = CHK_POLL;
		return;
	}
	if ((f == F_PIPE_W && !write) || (f == F_PIPE_R && write)) {
		only_fail(e, EBADF);
		return;
	}
	if (e->len > (size_t)SSIZE_MAX) {    /* refused at submission */
		only_fail(e, EINVAL);
	} else if (fd_file(f) && e->off < 0) {   /* pread/pwrite check it first */
		only_fail(e, EINVAL);
	} else if (e->bufk != B_VALID) {   /* EFAULT, or nothing to move */
		may_fail(e, EFAULT);
		if (fd_file(f) && e->len && e->off > LLONG_MAX - (long long)e->len)
			may_fail(e, EINVAL);
	} else if (fd_file(f)) {
		if (e->len && e->off > LLONG_MAX - (long long)e->len) {
			only_fail(e, EINVAL);
		} else if (write) {
			e->lo = e->hi = (ssize_t)e->len;
			if (f == F_APP)
				e->chk = CHK_APPEND;
		} else if (f == F_REG) {
			long long left = e->off >= REGION ? 0 : REGION - e->off;
			e->lo = e->hi = (ssize_t)((long long)e->len < left ?
			                          (long long)e->len : left);
			e->chk = CHK_REG;
		} else {   /* the O_APPEND file's length varies */
			e->lo = 0;
			e->hi = (ssize_t)e->len;
		}
	} else {   /* a pipe or socket end, in the right direction */
		e->stream = stream_of(f, write);
		e->lo = e->len ? 1 : 0;
		e->hi = (ssize_t)e->len;
		if (write)
			e->lo = e->hi;
		e->chk = write ? CHK_IN : CHK_OUT;
	}
	if (e->rwf) {   /* RWF_* flags: the kernel may refuse them or stop short */
		may_fail(e, EAGAIN);
		may_fail(e, EOPNOTSUPP);
		may_fail(e, EINVAL);
		if (e->hi >= 0)
			e->lo = 0;
	}
}

/* Byte i of a write's data.  On the regular file it is the file's pattern,
 * so any mix of writes leaves the file as it was. */
static unsigned char wbyte(const struct expect *e, size_t i)
{
	if (e->fdc == F_REG)
		return pat((unsigned long long)e->off + i);
	return (unsigned char)(e->seed * 37u + i * 11 + (i >> 8));
}

static void fill_write(const struct expect *e, unsigned char *buf)
{
	size_t n = e->len < BUFSZ ? e->len : BUFSZ;

	for (size_t i = 0; i < n; i++)
		buf[i] = wbyte(e, i);
}

/* ---- the O_APPEND file's records -------------------------------------------------- */

struct rec {
	unsigned seed;
	size_t len;
	ssize_t res;      /* -2: not known yet */
};
static struct rec recs[MAXREC];
static int nrecs;
static bool app_valid;

static int rec_add(const struct expect *e)
{
	if (nrecs >= MAXREC) {
		app_valid = false;
		return -1;
	}
	recs[nrecs] = (struct rec){ e->seed, e->len, -2 };
	trace("  append record %d: %zu bytes\n", nrecs, e->len);
	return nrecs++;
}

/* ---- engine state --------------------------------------------------------------- */

static long knob_default[9];
static bool eagain_ok;          /* a knob makes EAGAIN possible anywhere */
static struct aiopool_stats st0;

/* ---- POSIX slots -------------------------------------------------------------- */

struct pslot {
	struct aiocb cb;
	unsigned char *buf;
	bool busy;            /* accepted; result not taken yet */
	bool cancel_tried;
	struct expect ex;
	int note, rec;
};
static struct pslot ps[NPS];

/* Checks a finished request's result and accounts for its data.  which:
 * for messages. */
static void check_result(const char *which, const struct expect *e,
		const unsigned char *buf, ssize_t res, int err, bool cancel_ok,
		int rec)
{
	if (err) {
		bool ok = err == ECANCELED && cancel_ok;
		for (int i = 0; i < e->nerrs; i++)
			ok |= e->errs[i] == err;
		check(ok, "%s: op %d on %s (off %lld len %zu buf %d rwf %#x) failed "
		      "with %s, not an error it may end with",
		      which, e->op, fd_name[e->fdc], e->off, e->len, e->bufk,
		      e->rwf, strerror(err));
		if (rec >= 0)
			recs[rec].res = 0;
		trace("  %s: failed, %s\n", which, strerror(err));
		return;
	}
	check(res >= e->lo && res <= e->hi,
	      "%s: op %d on %s (off %lld len %zu buf %d rwf %#x) returned %zd, "
	      "expected %zd..%zd", which, e->op, fd_name[e->fdc], e->off, e->len,
	      e->bufk, e->rwf, res, e->lo, e->hi);
	switch (e->chk) {
	case CHK_REG:
		for (ssize_t i = 0; i < res; i++)
			check(buf[i] == pat((unsigned long long)(e->off + i)),
			      "%s: read byte %zd at %lld is %#x, the file holds %#x",
			      which, i, e->off + i, buf[i],
			      pat((unsigned long long)(e->off + i)));
		break;
	case CHK_OUT:
		count_bytes(st[e->stream].out, buf, res);
		break;
	case CHK_IN:
		for (ssize_t i = 0; i < res; i++)
			st[e->stream].in[wbyte(e, (size_t)i)]++;
		break;
	case CHK_APPEND:
		break;
	case CHK_POLL:
		check((res & ~(ssize_t)(e->events | POLLERR | POLLHUP | POLLNVAL)) == 0,
		      "%s: poll for %#x returned %#zx", which, e->events, res);
		break;
	}
	if (rec >= 0)
		recs[rec].res = res;
	trace("  %s: done, %zd %s\n", which, res, err ? strerror(err) : "");
}

/* The result of a request whose aiocb was taken over by a resubmission
 * (it completed between our look and the call): its predicted end. */
static void lost_result(struct pslot *s)
{
	const struct expect *e = &s->ex;

	if (e->chk == CHK_IN) {
		if (e->lo == e->hi && e->hi >= 0)
			for (ssize_t i = 0; i < e->hi; i++)
				st[e->stream].in[wbyte(e, (size_t)i)]++;
		else if (e->hi >= 0)
			st[e->stream].valid = false;
	}
	if (s->rec >= 0) {
		if (e->lo == e->hi)
			recs[s->rec].res = e->hi < 0 ? 0 : e->hi;
		else
			app_valid = false;
	}
	if (e->chk == CHK_OUT)
		st[e->stream].valid = false;
}

/* Takes slot i's result if it has finished: whether it has. */
static bool p_collect(int i)
{
	struct pslot *s = &ps[i];
	char which[32];
	ssize_t res;
	int err;

	if (!s->busy)
		return true;
	err = f_aio_error(&s->cb);
	if (err == EINPROGRESS)
		return false;
	errno = 0;
	res = f_aio_return(&s->cb);
	snprintf(which, sizeof which, "aiocb %d", i);
	check(!(res == -1 && (errno == EINVAL || errno == EINPROGRESS)),
	      "%s: aio_return failed (%s) after aio_error gave %s", which,
	      strerror(errno), strerror(err));
	check(err ? res == -1 : res >= 0, "%s: aio_error %d but aio_return %zd",
	      which, err, res);
	errno = 0;
	check(f_aio_return(&s->cb) == -1 && errno == EINVAL,
	      "%s: aio_return gave the result twice", which);
	check_result(which, &s->ex, s->buf, res, err, s->cancel_tried, s->rec);
	s->busy = false;
	return true;
}

/* ---- libaio slots and contexts -------------------------------------------------- */

struct ctxslot {
	io_context_t ctx;
	unsigned nevents;
};
static struct ctxslot cx[NCTX];
static io_context_t dead[NDEAD];
static int ndead;
static unsigned long aio_max_nr = 65536;

struct lslot {
	struct iocb iocb;
	struct iovec iov[4];
	unsigned char *buf;
	unsigned inflight[NCTX];
	bool resfd;
	struct expect ex;
	int recs[8], nrec;    /* records of its writes in flight, in order */
};
static struct lslot ls[NLS];
static uint64_t resfd_want, resfd_got;
static bool resfd_valid;

static void io_callback(io_context_t ctx, struct iocb *iocb, long res, long res2);

static unsigned ctx_outstanding(int c)
{
	unsigned n = 0;

	for (int i = 0; i < NLS; i++)
		n += ls[i].inflight[c];
	return n;
}

static int ctx_index(io_context_t ctx)
{
	for (int c = 0; c < NCTX; c++)
		if (cx[c].ctx && cx[c].ctx == ctx)
			return c;
	return -1;
}

/* One event from context c. */
static void l_event(int c, const struct io_event *ev)
{
	struct lslot *s = NULL;
	char which[32];
	long res = (long)ev->res;
	int rec = -1;

	for (int i = 0; i < NLS; i++)
		if (ev->obj == &ls[i].iocb)
			s = &ls[i];
	check(s, "an event for iocb %p, which is none of ours", (void *)ev->obj);
	snprintf(which, sizeof which, "iocb %d", (int)(s - ls));
	check(s->inflight[c] > 0, "%s: an event on context %d, where it is not in flight",
	      which, c);
	check(ev->data == (void *)io_callback, "%s: the event's data is %p", which, ev->data);
	check(ev->res2 == 0, "%s: res2 is %lu", which, ev->res2);
	check(res != -ECANCELED, "%s: an event for a cancelled request", which);
	if (s->nrec) {
		rec = s->recs[0];
		memmove(s->recs, s->recs + 1, --s->nrec * sizeof s->recs[0]);
	}
	check_result(which, &s->ex, s->buf, res < 0 ? -1 : res,
	             res < 0 ? (int)-res : 0, false, rec);
	s->inflight[c]--;
	if (s->resfd)
		resfd_want++;
}

static void l_events(int c, const struct io_event *ev, int n)
{
	for (int i = 0; i < n; i++)
		l_event(c, &ev[i]);
}

static void io_callback(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	struct io_event ev = { (void *)io_callback, iocb, (unsigned long)res,
	                       (unsigned long)res2 };
	int c = ctx_index(ctx);

	check(c >= 0, "io_queue_run called back for a context not ours");
	l_event(c, &ev);
}

/* The kernel's ring header, which the handle points to. */
struct ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features,
	         header_length;
	struct io_event events[];
};

static unsigned ring_avail(int c)
{
	struct ring *r = (struct ring *)cx[c].ctx;
	unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	unsigned tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);

	return tail >= head ? tail - head : tail + r->nr - head;
}

/* Reaps one event straight from the ring, as fio's userspace_reap does. */
static bool ring_reap_one(int c)
{
	struct ring *r = (struct ring *)cx[c].ctx;
	unsigned head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	struct io_event ev;

	check(r->magic == 0xa10a10a1u, "context %d: the ring's magic is %#x", c, r->magic);
	if (head == __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE))
		return false;
	ev = r->events[head];
	__atomic_store_n(&r->head, (head + 1) % r->nr, __ATOMIC_RELEASE);
	l_event(c, &ev);
	return true;
}

static void l_reap(int c)
{
	static const struct timespec zero = { 0, 0 };
	struct io_event ev[NEV];
	int n;

	if (!cx[c].ctx)
		return;
	do {
		n = io_getevents(cx[c].ctx, 0, NEV, ev, (struct timespec *)&zero);
		check(n >= 0, "io_getevents on context %d: %s", c, strerror(-n));
		l_events(c, ev, n);
	} while (n == NEV);
}

/* ---- in flight, everywhere ------------------------------------------------------ */

static unsigned outstanding(void)
{
	unsigned n = 0;

	for (int i = 0; i < NPS; i++)
		n += ps[i].busy;
	for (int c = 0; c < NCTX; c++)
		n += ctx_outstanding(c);
	return n;
}

/* What the streams need for their requests to go on: data for readers
 * (feed), room for writers (drain). */
static void service_streams(void)
{
	bool rd[NSTREAM] = { false }, wr[NSTREAM] = { false };

	for (int i = 0; i < NPS; i++) {
		const struct expect *e = &ps[i].ex;
		if (!ps[i].busy || !fd_stream(e->fdc))
			continue;
		if (e->op == OP_READ && stream_of(e->fdc, false) >= 0)
			rd[stream_of(e->fdc, false)] = true;
		if (e->op == OP_WRITE && stream_of(e->fdc, true) >= 0)
			wr[stream_of(e->fdc, true)] = true;
	}
	for (int i = 0; i < NLS; i++) {
		const struct expect *e = &ls[i].ex;
		bool busy = false;
		for (int c = 0; c < NCTX; c++)
			busy |= ls[i].inflight[c] > 0;
		if (!busy || !fd_stream(e->fdc))
			continue;
		if ((e->op == OP_READ || (e->op == OP_POLL && (e->events & POLLIN))) &&
		    stream_of(e->fdc, false) >= 0)
			rd[stream_of(e->fdc, false)] = true;
		if ((e->op == OP_WRITE || (e->op == OP_POLL && (e->events & POLLOUT))) &&
		    stream_of(e->fdc, true) >= 0)
			wr[stream_of(e->fdc, true)] = true;
	}
	for (int s = 0; s < NSTREAM; s++) {
		if (wr[s])
			drain(&st[s]);
		if (rd[s])
			feed(&st[s], 256);
	}
}

/* ---- calls that may block: on a helper thread, while this one serves ------------- */

struct blocking {
	void (*fn)(void *arg);
	void *arg;
	int done;
};

static void *blocking_main(void *arg)
{
	struct blocking *b = arg;

	b->fn(b->arg);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void run_blocking(const char *what, void (*fn)(void *), void *arg)
{
	struct blocking b = { fn, arg, 0 };
	long long end = now_ms() + DEADLINE_MS;
	pthread_t t;

	check(pthread_create(&t, NULL, blocking_main, &b) == 0, "pthread_create");
	while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE)) {
		service_streams();
		check(now_ms() < end, "%s did not return within %d ms", what, DEADLINE_MS);
		nap_us(200);
	}
	pthread_join(t, NULL);
}

/* ---- value choices ------------------------------------------------------------ */

static int pick_fd(void)
{
	unsigned v = u8();

	return v < 200 ? (int)(v % 6) : (int)(v % NFD);   /* mostly real fds */
}

/* A length.  SSIZE_MAX only where the kernel never sees it with a real
 * buffer: the kernel clamps a length to MAX_RW_COUNT (2 GiB) and may then
 * write past the buffer, as read(2) would; libaio's io_submit refuses it
 * (kernel_sees: the POSIX front end, or a vectored iocb). */
static size_t pick_len(int op, int bufk, int f, bool kernel_sees)
{
	switch (pick(16)) {
	case 0:  return 0;
	case 1:  return (size_t)SSIZE_MAX + 1;
	case 2:  return SIZE_MAX;
	case 3:
		if ((op == OP_WRITE && f == F_REG) || (bufk == B_VALID && kernel_sees))
			return 1;
		return (size_t)SSIZE_MAX;
	case 4:  return BUFSZ;
	default: return 1 + u16() % (bufk == B_VALID ? BUFSZ : 64);
	}
}

/* An offset; writes to the regular file stay inside it, or are refused. */
static long long pick_off(int op, int f, size_t *len)
{
	static const long long odd[] = {
		-1, LLONG_MIN, LLONG_MAX, LLONG_MAX - 4, REGION, REGION + 4097,
		1LL << 62, REGION - 1,
	};
	long long off;

	if (pick(6) == 0) {
		off = odd[pick(8)];
	} else {
		off = u16() % REGION;
	}
	if (op == OP_WRITE && f == F_REG && off >= 0 &&
	    *len <= (size_t)SSIZE_MAX) {
		if (off >= REGION || off > LLONG_MAX - (long long)*len)
			off = u16() % REGION;
		if (off + (long long)*len > REGION)
			*len = (size_t)(REGION - off);
	}
	return off;
}

static int pick_buf(int op, int f)
{
	unsigned v = pick(16);

#ifdef FUZZ_VALGRIND
	/* Under valgrind, whose memcheck would report the bad buffers given
	 * to the kernel on purpose, every buffer is real. */
	return v < 16 ? B_VALID : B_NULL;
#endif

	/* A stream read into a bad buffer may or may not consume data: the
	 * byte counts would not add up.  Never. */
	if (op == OP_READ && fd_stream(f))
		return B_VALID;
	return v == 0 ? B_NULL : v == 1 ? B_KERNEL : B_VALID;
}

static void *buf_ptr(int k, unsigned char *own)
{
	return k == B_VALID ? own : k == B_NULL ? NULL : USER_BAD;
}


/* ---- POSIX operations ------------------------------------------------------------- */

/* Fills slot s's aiocb for op, from the input. */
static void p_prep(struct pslot *s, int op, int *nkind)
{
	struct expect *e = &s->ex;

	memset(e, 0, sizeof *e);
	e->op = op;
	e->fdc = pick_fd();
	e->bufk = pick_buf(op, e->fdc);
	e->len = pick_len(op, e->bufk, e->fdc, true);
	e->off = pick_off(op, e->fdc, &e->len);
	e->seed = u8() | gen << 8;
	memset(&s->cb, 0, sizeof s->cb);
	s->cb.aio_fildes = fds[e->fdc];
	s->cb.aio_buf = buf_ptr(e->bufk, s->buf);
	s->cb.aio_nbytes = e->len;
	s->cb.aio_offset = e->off;
	switch (pick(12)) {
	case 0:  s->cb.aio_reqprio = -1; break;
	case 1:  s->cb.aio_reqprio = AIO_PRIO_DELTA_MAX + 1; break;
	case 2:  s->cb.aio_reqprio = AIO_PRIO_DELTA_MAX; break;
	case 3:  s->cb.aio_reqprio = INT_MIN; break;
	default: s->cb.aio_reqprio = (int)pick(4);
	}
	*nkind = (int)pick(NNOTIFY);
	s->note = make_sigevent(&s->cb.aio_sigevent, *nkind);
	if (op == OP_WRITE && e->bufk == B_VALID)
		fill_write(e, s->buf);
	s->rec = -1;
	s->cancel_tried = false;
	expect_async(e);
}

/* The error aio_read/aio_write/lio_listio give this aiocb at submission,
 * or 0: reqprio, nbytes, then the sigevent. */
static int p_sync_err(const struct pslot *s, int nkind, int op)
{
	if (op != OP_FSYNC &&
	    (s->cb.aio_reqprio < 0 || s->cb.aio_reqprio > AIO_PRIO_DELTA_MAX))
		return EINVAL;
	if (op != OP_FSYNC && s->cb.aio_nbytes > (size_t)SSIZE_MAX)
		return EINVAL;
	if (!notify_valid(nkind))
		return EINVAL;
	return 0;
}

/* A request was accepted for slot s. */
static void p_accepted(struct pslot *s, int nkind)
{
	trace("  aiocb %d: op %d on %s off %lld len %zu accepted\n", (int)(s - ps),
	      s->ex.op, fd_name[s->ex.fdc], s->ex.off, s->ex.len);
	s->busy = true;
	note_expect(s->note, nkind);
	if (s->ex.chk == CHK_APPEND || (s->ex.op == OP_WRITE && s->ex.fdc == F_APP))
		s->rec = rec_add(&s->ex);
}

/* A request was refused for slot s with err, which it must hold now. */
static void p_refused(struct pslot *s, int err)
{
	ssize_t r;

	check(f_aio_error(&s->cb) == err, "a refused aiocb holds %s, not %s",
	      strerror(f_aio_error(&s->cb)), strerror(err));
	errno = 0;
	r = f_aio_return(&s->cb);
	check(r == -1 && errno == 0, "a refused aiocb's aio_return gave %zd (%s)",
	      r, strerror(errno));
	s->busy = false;
}

static int p_call(int op, int fsync_op, struct aiocb *cb)
{
	return op == OP_READ ? f_aio_read(cb) : op == OP_WRITE ? f_aio_write(cb) :
	       f_aio_fsync(fsync_op, cb);
}

static void op_p_submit(void)
{
	int i = (int)pick(NPS + 1), op = (int)pick(3), nkind, fop, rc, e, err;
	struct pslot *s;

	fop = pick(8) ? (pick(2) ? O_SYNC : O_DSYNC) : 0x7777;
	if (i == NPS) {   /* a NULL aiocb */
		errno = 0;
		rc = op == OP_READ ? f_aio_read(NULL) : op == OP_WRITE ?
		     f_aio_write(NULL) : f_aio_fsync(O_SYNC, NULL);
		check(rc == -1 && errno == EINVAL, "aio_* on NULL: %d %s", rc, strerror(errno));
		return;
	}
	s = &ps[i];
	if (s->busy && !p_collect(i)) {
		/* Submitted again while in flight: refused, untouched.  Not a
		 * stream read: if it completes meanwhile its data is lost. */
		if (s->ex.chk == CHK_OUT)
			return;
		errno = 0;
		rc = p_call(s->ex.op, O_SYNC, &s->cb);
		e = errno;
		if (rc == 0) {
			/* It had completed after all: this is a second request
			 * with the same fields, notified with the same id. */
			lost_result(s);
			if (s->note >= 0)
				note_times[s->note]++;
			s->rec = s->ex.op == OP_WRITE && s->ex.fdc == F_APP ?
			         rec_add(&s->ex) : -1;
			s->cancel_tried = false;
			return;
		}
		if (rc == -1 && e == EAGAIN && eagain_ok) {
			lost_result(s);   /* it completed; the new one was refused */
			s->busy = false;
			return;
		}
		check(rc == -1 && e == EINVAL, "resubmitting an aiocb in flight: %d %s",
		      rc, strerror(e));
		return;
	}
	p_prep(s, op, &nkind);
	if (op == OP_FSYNC && fop == 0x7777) {
		errno = 0;
		rc = f_aio_fsync(fop, &s->cb);
		check(rc == -1 && errno == EINVAL, "aio_fsync with a bad op: %d %s",
		      rc, strerror(errno));
		return;
	}
	if (op == OP_FSYNC && fd_bad(s->ex.fdc))
		err = EBADF;
	else
		err = p_sync_err(s, nkind, op);
	errno = 0;
	rc = p_call(op, fop, &s->cb);
	e = errno;
	if (err) {
		check(rc == -1 && e == err, "aio op %d on %s: %d (%s), expected %s",
		      op, fd_name[s->ex.fdc], rc, strerror(e), strerror(err));
		p_refused(s, err);
		return;
	}
	if (rc == -1 && e == EAGAIN && eagain_ok) {
		p_refused(s, EAGAIN);
		return;
	}
	check(rc == 0, "aio op %d on %s: %d (%s), expected success", op,
	      fd_name[s->ex.fdc], rc, strerror(e));
	if (op == OP_FSYNC)
		check(s->cb.aio_reqprio == 0, "aio_fsync left aio_reqprio %d", s->cb.aio_reqprio);
	p_accepted(s, nkind);
}

struct lio_call {
	int mode, nent, rc, err;
	struct aiocb *list[8], **listp;
	struct sigevent *sig;
};

static void lio_fn(void *arg)
{
	struct lio_call *l = arg;

	errno = 0;
	l->rc = f_lio_listio(l->mode, l->listp, l->nent, l->sig);
	l->err = errno;
}

static void op_p_lio(void)
{
	struct lio_call l = { 0 };
	struct sigevent sev;
	int idx[8], kinds[8], serr[8], n = (int)pick(7), skind, sid, mode;
	bool used[NPS] = { false }, bad_args, refused = false, nullist;

	mode = (int)pick(8);
	l.mode = mode == 0 ? 0x55 : mode < 4 ? LIO_WAIT : LIO_NOWAIT;
	skind = (int)pick(NNOTIFY);
	sid = make_sigevent(&sev, skind);
	l.sig = pick(4) ? &sev : NULL;
	if (!l.sig)
		skind = N_NONE;
	for (int k = 0; k < n; k++) {
		int i = (int)pick(NPS + 2), op;
		idx[k] = -1;
		if (i >= NPS || used[i] || (ps[i].busy && !p_collect(i))) {
			l.list[k] = NULL;   /* NULL entries are skipped */
			continue;
		}
		used[i] = true;
		idx[k] = i;
		op = (int)pick(5);
		p_prep(&ps[i], op < 2 ? op : OP_READ, &kinds[k]);
		if (op < 2) {
			ps[i].cb.aio_lio_opcode = op == OP_READ ? LIO_READ : LIO_WRITE;
			serr[k] = p_sync_err(&ps[i], kinds[k], op);
		} else {
			static const int other[] = { LIO_NOP, 3, 99 };
			ps[i].cb.aio_lio_opcode = other[op - 2];
			serr[k] = op == 2 ? -1 : EINVAL;   /* -1: skipped */
		}
		if (ps[i].ex.op == OP_WRITE && ps[i].ex.bufk == B_VALID)
			fill_write(&ps[i].ex, ps[i].buf);
		l.list[k] = &ps[i].cb;
	}
	l.nent = pick(10) == 0 ? -1 - (int)pick(3) : n;
	nullist = pick(16) == 0;   /* NULL: refused unless nent is 0 */
	l.listp = nullist ? NULL : l.list;
	nullist &= l.nent > 0;
	bad_args = (l.mode != LIO_WAIT && l.mode != LIO_NOWAIT) || l.nent < 0 ||
	           nullist || (l.mode == LIO_NOWAIT && l.sig && !notify_valid(skind));
	/* The elements count as in flight first: the streams get served. */
	for (int k = 0; k < n && !bad_args; k++)
		if (idx[k] >= 0 && serr[k] == 0)
			ps[idx[k]].busy = true;
	if (l.mode == LIO_WAIT && !bad_args)
		run_blocking("lio_listio(LIO_WAIT)", lio_fn, &l);
	else
		lio_fn(&l);
	if (bad_args) {
		check(l.rc == -1 && l.err == EINVAL, "lio_listio with bad arguments: %d %s",
		      l.rc, strerror(l.err));
		return;   /* nothing was submitted: the slots stay idle */
	}
	for (int k = 0; k < n; k++) {
		struct pslot *s;
		if (idx[k] < 0)
			continue;
		s = &ps[idx[k]];
		if (serr[k] == -1) {
			s->busy = false;
			continue;
		}
		if (serr[k]) {
			refused = true;
			s->busy = false;
			p_refused(s, serr[k]);
			continue;
		}
		if (eagain_ok && f_aio_error(&s->cb) == EAGAIN && s->busy) {
			/* may be refused for the queue bound: EAGAIN is no
			 * result a request of ours can end with */
			p_refused(s, EAGAIN);
			refused = true;
			continue;
		}
		p_accepted(s, kinds[k]);
	}
	if (l.mode == LIO_NOWAIT && l.sig)
		note_expect(sid, skind);
	if (l.rc == 0) {
		check(!refused, "lio_listio returned 0 with entries refused");
	} else {
		check(l.err == EIO || l.err == EINTR || (l.err == EAGAIN && eagain_ok),
		      "lio_listio: -1 %s", strerror(l.err));
		if (l.err == EIO && l.mode == LIO_NOWAIT)
			check(refused, "lio_listio(LIO_NOWAIT): EIO with none refused");
	}
	if (l.mode == LIO_WAIT && !(l.rc == -1 && l.err == EINTR)) {
		/* Everything has completed: take the results now. */
		bool failed = refused;
		for (int k = 0; k < n; k++) {
			if (idx[k] < 0 || !ps[idx[k]].busy)
				continue;
			failed |= f_aio_error(&ps[idx[k]].cb) != 0;
			check(p_collect(idx[k]), "lio_listio(LIO_WAIT) returned with "
			      "aiocb %d in progress", idx[k]);
		}
		check((l.rc == 0) == !failed, "lio_listio(LIO_WAIT) returned %d "
		      "(%s), but its entries %s", l.rc, strerror(l.err),
		      failed ? "failed" : "succeeded");
	}
}

struct suspend_call {
	const struct aiocb *list[8];
	int nent, rc, err;
	struct timespec ts, *tp;
};

static void suspend_fn(void *arg)
{
	struct suspend_call *s = arg;

	errno = 0;
	s->rc = f_aio_suspend(s->list, s->nent, s->tp);
	s->err = errno;
}

static void op_p_suspend(void)
{
	static struct aiocb zeroed;
	struct suspend_call c = { .nent = (int)pick(6) };
	bool any_done = false, bad;
	int t = (int)pick(8);

	for (int k = 0; k < c.nent; k++) {
		int i = (int)pick(NPS + 2);
		if (i == NPS)
			c.list[k] = NULL;
		else if (i == NPS + 1)
			c.list[k] = &zeroed;   /* never submitted: "done" */
		else
			c.list[k] = &ps[i].cb;
	}
	if (pick(12) == 0)
		c.nent = -1;
	switch (t) {
	case 0:  c.tp = NULL; break;
	case 1:  c.ts = (struct timespec){ 0, 1000000000L }; c.tp = &c.ts; break;
	case 2:  c.ts = (struct timespec){ 0, -1 }; c.tp = &c.ts; break;
	case 3:  c.ts = (struct timespec){ -1, 0 }; c.tp = &c.ts; break;
	case 4:  c.ts = (struct timespec){ 0, 1000000 }; c.tp = &c.ts; break;
	default: c.ts = (struct timespec){ 0, 0 }; c.tp = &c.ts; break;
	}
	bad = c.nent < 0 || (c.tp && (c.tp->tv_sec < 0 || c.tp->tv_nsec < 0 ||
	                              c.tp->tv_nsec >= 1000000000L));
	for (int k = 0; k < c.nent; k++)
		if (c.list[k] && f_aio_error(c.list[k]) != EINPROGRESS)
			any_done = true;
	if (!c.tp && !bad)
		run_blocking("aio_suspend without a timeout", suspend_fn, &c);
	else
		suspend_fn(&c);
	if (bad) {
		check(c.rc == -1 && c.err == EINVAL, "aio_suspend with bad arguments: %d %s",
		      c.rc, strerror(c.err));
		return;
	}
	if (any_done)
		check(c.rc == 0, "aio_suspend with an entry done: %d %s", c.rc, strerror(c.err));
	if (c.rc == 0) {
		bool some = c.nent == 0;
		for (int k = 0; k < c.nent; k++)
			some |= !c.list[k] || f_aio_error(c.list[k]) != EINPROGRESS;
		check(some, "aio_suspend returned 0 with every entry in progress");
	} else {
		check(c.err == EAGAIN || c.err == EINTR, "aio_suspend: -1 %s", strerror(c.err));
		check(c.err != EAGAIN || c.tp, "aio_suspend without a timeout gave EAGAIN");
	}
}

static void op_p_cancel(void)
{
	static struct aiocb zeroed;
	int f = pick_fd(), i = (int)pick(NPS + 2), rc, e;
	struct aiocb *cb = i < NPS ? &ps[i].cb : i == NPS ? NULL : &zeroed;
	bool mine = i < NPS && ps[i].busy;

	if (i == NPS + 1)
		zeroed.aio_fildes = fds[f];
	if (cb && pick(4) == 0)
		f = F_REG;   /* maybe not its fd */
	errno = 0;
	rc = aio_cancel(fds[f], cb);
	e = errno;
	if (fd_bad(f)) {
		check(rc == -1 && e == EBADF, "aio_cancel on %s: %d %s", fd_name[f], rc,
		      strerror(e));
		return;
	}
	if (cb && cb->aio_fildes != fds[f]) {
		check(rc == -1 && e == EINVAL, "aio_cancel with another fd's aiocb: %d %s",
		      rc, strerror(e));
		return;
	}
	check(rc == AIO_CANCELED || rc == AIO_NOTCANCELED || rc == AIO_ALLDONE,
	      "aio_cancel: %d %s", rc, strerror(e));
	if (cb && !mine) {
		check(rc == AIO_ALLDONE, "aio_cancel of an aiocb not in flight: %d", rc);
		return;
	}
	for (int k = 0; k < NPS; k++) {
		if (!ps[k].busy || ps[k].cb.aio_fildes != fds[f] || (cb && k != i))
			continue;
		ps[k].cancel_tried = true;
		if (rc == AIO_ALLDONE || (cb && rc == AIO_CANCELED))
			check(f_aio_error(&ps[k].cb) != EINPROGRESS,
			      "aio_cancel said %d, yet aiocb %d is in progress", rc, k);
		if (cb && rc == AIO_CANCELED)
			check(f_aio_error(&ps[k].cb) == ECANCELED,
			      "aio_cancel said AIO_CANCELED, yet aiocb %d holds %s", k,
			      strerror(f_aio_error(&ps[k].cb)));
	}
}

/* aio_error and aio_return: on a slot (taking its result), or on aiocbs
 * that are not ours. */
static void op_p_status(void)
{
	static struct aiocb other;
	int i = (int)pick(NPS), how = (int)pick(4);
	ssize_t r;

	if (how == 0) {   /* a copy of a slot, or a zeroed aiocb: not submitted */
		if (pick(2))
			memcpy(&other, &ps[i].cb, sizeof other);
		else
			memset(&other, 0, sizeof other);
		check(f_aio_error(&other) == EINVAL, "aio_error on a foreign aiocb: %d",
		      f_aio_error(&other));
		errno = 0;
		r = f_aio_return(&other);
		check(r == -1 && errno == EINVAL, "aio_return on a foreign aiocb: %zd %s",
		      r, strerror(errno));
		return;
	}
	if (how == 1) {
		check(f_aio_error(NULL) == EINVAL, "aio_error(NULL)");
		errno = 0;
		check(f_aio_return(NULL) == -1 && errno == EINVAL, "aio_return(NULL)");
		return;
	}
	if (ps[i].busy && f_aio_error(&ps[i].cb) == EINPROGRESS) {
		errno = 0;
		r = f_aio_return(&ps[i].cb);
		if (r == -1 && errno == EINPROGRESS)
			return;
		/* it completed between the two calls: that was its result */
		check(f_aio_error(&ps[i].cb) != EINPROGRESS,
		      "aio_return gave %zd (%s) for an aiocb in progress", r, strerror(errno));
		check_result("aiocb (raced)", &ps[i].ex, ps[i].buf, r,
		             f_aio_error(&ps[i].cb), ps[i].cancel_tried, ps[i].rec);
		ps[i].busy = false;
		return;
	}
	p_collect(i);
}

/* ---- libaio operations ---------------------------------------------------------- */

static io_context_t garbage_ctx(void)
{
	static struct ring fake = { .nr = 2, .magic = 0xa10a10a1u, .header_length = 32 };
	io_context_t g;

	switch (pick(6)) {
	case 0:  g = NULL; break;
	case 1:  g = (io_context_t)(uintptr_t)1; break;
	case 2:  g = (io_context_t)(uintptr_t)-1; break;
	case 3:  g = (io_context_t)&fake; break;
	case 4:  g = ndead ? dead[pick(ndead)] : NULL; break;
	default: g = (io_context_t)(uintptr_t)(u16() << 12 | 0x7f0000000000ULL); break;
	}
	return ctx_index(g) >= 0 ? NULL : g;   /* a reused address is live again */
}

struct destroy_call {
	io_context_t ctx;
	bool release;
	int rc;
};

static void destroy_fn(void *arg)
{
	struct destroy_call *d = arg;

	d->rc = d->release ? io_queue_release(d->ctx) : io_destroy(d->ctx);
}

/* Destroys context c, waiting on a helper thread: its requests are
 * discarded (queued ones cancelled, running ones finish unseen). */
static void l_destroy(int c, bool release)
{
	struct destroy_call d = { cx[c].ctx, release, 0 };

	for (int i = 0; i < NLS; i++) {
		struct expect *e = &ls[i].ex;
		if (!ls[i].inflight[c])
			continue;
		if (e->chk == CHK_IN || e->chk == CHK_OUT)
			st[e->stream].valid = false;
		if (ls[i].nrec)
			app_valid = false;
		if (ls[i].resfd)
			resfd_valid = false;
	}
	if (ctx_outstanding(c))
		run_blocking("io_destroy", destroy_fn, &d);
	else
		destroy_fn(&d);
	check(d.rc == 0, "io_destroy of a live context: %d", d.rc);
	for (int i = 0; i < NLS; i++) {
		if (ls[i].inflight[c])
			ls[i].nrec = 0;   /* app_valid is false */
		ls[i].inflight[c] = 0;
	}
	dead[ndead++ % NDEAD] = cx[c].ctx;
	if (ndead > NDEAD)
		ndead = NDEAD;
	cx[c].ctx = NULL;
}

static void op_l_setup(void)
{
	static const int nrs[] = { 1, 2, 3, 8, 64, 0, -1, INT_MIN, 4194305, 65537 };
	int c = (int)pick(NCTX), nr = nrs[pick(10)], rc, want;
	bool queue_init = pick(2), null = pick(12) == 0;
	io_context_t ctx = NULL;

	if (cx[c].ctx) {
		if (pick(2)) {   /* *ctxp must be 0 */
			ctx = cx[c].ctx;
			rc = io_setup(nr > 0 ? nr : 1, &ctx);
			check(rc == -EINVAL && ctx == cx[c].ctx, "io_setup over a live "
			      "handle: %d", rc);
			return;
		}
		l_destroy(c, queue_init);
		return;
	}
	if (queue_init && null)
		want = nr <= 0 ? -EINVAL : -EFAULT;
	else if (null)
		want = -EFAULT;
	else if (nr <= 0 || nr > 4194304)
		want = -EINVAL;
	else if ((unsigned long)nr > aio_max_nr)
		want = -EAGAIN;
	else
		want = 0;
	rc = queue_init ? io_queue_init(nr, null ? NULL : &ctx)
	                : io_setup(nr, null ? NULL : &ctx);
	check(rc == want, "%s(%d): %d, expected %d", queue_init ? "io_queue_init" :
	      "io_setup", nr, rc, want);
	if (rc == 0) {
		check(ctx && ctx_index(ctx) < 0, "io_setup gave %p", (void *)ctx);
		cx[c].ctx = ctx;
		cx[c].nevents = (unsigned)nr;
		for (int d = 0; d < ndead; d++)
			if (dead[d] == ctx)
				dead[d] = NULL;   /* the address is live again */
	} else {
		check(!ctx, "a failed io_setup wrote the handle");
	}
}

/* Fills iocb slot s from the input; the error io_submit gives it, or 0. */
static int l_prep(struct lslot *s, int c)
{
	static const short opcodes[] = {
		IO_CMD_PREAD, IO_CMD_PWRITE, IO_CMD_PREADV, IO_CMD_PWRITEV,
		IO_CMD_PREAD, IO_CMD_PWRITE, IO_CMD_FSYNC, IO_CMD_FDSYNC,
		IO_CMD_POLL, IO_CMD_POLL, IO_CMD_NOOP, 4, 99,
	};
	static const unsigned rwfs[] = { 0, 0, 0, 0, 1, 2, 4, 8, 0x40, 0x80, 0x100,
	                                 0x80000000u };
	static const int evs[] = { POLLIN, POLLOUT, POLLIN | POLLOUT, 0, POLLPRI,
	                           POLLIN, 0x10000 };
	struct iocb *io = &s->iocb;
	struct expect *e = &s->ex;
	short opc = opcodes[pick(sizeof opcodes / sizeof opcodes[0])];
	bool vec = opc == IO_CMD_PREADV || opc == IO_CMD_PWRITEV;
	int fl, cnt = 1, err = 0, resfd_kind = -1, prio_bad = 0;
	unsigned odd = pick(32);

	memset(e, 0, sizeof *e);
	memset(io, 0, sizeof *io);
	e->op = opc == IO_CMD_PREAD || opc == IO_CMD_PREADV ? OP_READ :
	        opc == IO_CMD_PWRITE || opc == IO_CMD_PWRITEV ? OP_WRITE :
	        opc == IO_CMD_POLL ? OP_POLL : OP_FSYNC;
	e->fdc = pick_fd();
	e->seed = u8() | gen << 8 | 0x80;
	io->aio_lio_opcode = opc;
	io->aio_fildes = fds[e->fdc];
	io->data = (void *)io_callback;
	if (odd == 0)
		io->key = 0x5a5a;   /* io_submit sets it to 0 */
	if (e->op == OP_READ || e->op == OP_WRITE) {
		e->bufk = pick_buf(e->op, e->fdc);
		e->len = pick_len(e->op, e->bufk, e->fdc, vec);
		if (vec && e->len > BUFSZ)
			e->len = BUFSZ;
		e->off = pick_off(e->op, e->fdc, &e->len);
		e->rwf = (int)rwfs[pick(sizeof rwfs / sizeof rwfs[0])];
		io->aio_rw_flags = (unsigned)e->rwf;
		if (vec) {   /* up to four pieces of one buffer */
			size_t at = 0;
			cnt = (int)pick(5);
			for (int k = 0; k < cnt; k++) {
				size_t part = k == cnt - 1 ? e->len - at :
				              (e->len - at) / (size_t)(2 + pick(3));
				s->iov[k].iov_base = e->bufk == B_VALID ? s->buf + at :
				                     buf_ptr(e->bufk, NULL);
				s->iov[k].iov_len = part;
				at += part;
			}
			if (cnt == 0)
				e->len = 0;
			io->u.v.vec = odd == 1 ? NULL : s->iov;
			io->u.v.nr = odd == 2 ? 1025 : (unsigned long)cnt;
			io->u.v.offset = e->off;
		} else {
			io->u.c.buf = buf_ptr(e->bufk, s->buf);
			io->u.c.nbytes = e->len;
			io->u.c.offset = e->off;
		}
	} else if (e->op == OP_FSYNC) {
		if (odd == 3)
			io->u.c.nbytes = 1;   /* must be 0 */
	} else if (e->op == OP_POLL) {
		e->events = evs[pick(sizeof evs / sizeof evs[0])];
		io->u.poll.events = e->events;
		if (odd == 4)
			io->u.c.offset = 1;   /* must be 0 */
	}
	if (odd == 5)
		io->u.c.__pad3 = 1;
	if (pick(8) == 0) {
		resfd_kind = (int)pick(4);
		io->u.c.flags |= 1u << 0;
		io->u.c.resfd = (unsigned)(resfd_kind == 0 ? fds[F_CLOSED] :
		                           resfd_kind == 1 ? fds[F_REG] : evfd);
		s->resfd = resfd_kind >= 2;
	} else {
		s->resfd = false;
	}
	if (pick(8) == 0) {
		static const short prios[] = { 1 << 13 | 3, 2 << 13 | 7, 3 << 13, 0,
		                               5, (short)(5 << 13) };
		int k = (int)pick(6);
		io->u.c.flags |= 1u << 1;
		io->aio_reqprio = prios[k];
		prio_bad = k >= 4;
	}
	if (e->op == OP_WRITE && e->bufk == B_VALID)
		fill_write(e, s->buf);
	expect_async(e);

	/* What submit_one checks, in its order. */
	fl = fd_bad(e->fdc) ? -1 : fcntl(fds[e->fdc], F_GETFL);
	if (io->u.c.__pad3)
		err = EINVAL;
	else if ((long)io->u.c.nbytes < 0)
		err = EINVAL;
	else if (ctx_outstanding(c) >= cx[c].nevents)
		err = EAGAIN;
	else if (fl < 0)
		err = EBADF;
	else if (resfd_kind == 0)
		err = EBADF;
	else if (resfd_kind == 1)
		err = EINVAL;
	else if (opc == IO_CMD_NOOP || opc == 4 || opc == 99)
		err = EINVAL;
	else if (e->op == OP_READ || e->op == OP_WRITE) {
		int acc = fl & O_ACCMODE;
		if (prio_bad)
			err = EINVAL;
		else if (e->rwf & ~0xff)
			err = EOPNOTSUPP;
		else if ((e->op == OP_READ && acc == O_WRONLY) ||
		         (e->op == OP_WRITE && acc == O_RDONLY))
			err = EBADF;
		else if (e->off < 0)
			err = EINVAL;
		else if (vec && io->u.v.nr > 1024)
			err = EINVAL;
		else if (vec && io->u.v.nr && !io->u.v.vec)
			err = EFAULT;
		else if (e->bufk == B_KERNEL && e->len)
			err = EFAULT;
		else if (!vec && e->len == (size_t)SSIZE_MAX && e->bufk == B_VALID)
			err = EFAULT;
		else if (!vec && e->len && e->bufk == B_NULL &&
		         e->len > (1ULL << 56))
			err = EFAULT;
	} else if (e->op == OP_FSYNC) {
		if (io->u.c.nbytes || fd_stream(e->fdc))
			err = EINVAL;
	} else {
		if (io->u.c.offset || (e->events & ~0xffff))
			err = EINVAL;
	}
	return err;
}

static void op_l_submit(void)
{
	int c = (int)pick(NCTX), n = (int)pick(5), want[8], accepted = 0, rc;
	struct iocb *list[8];
	int slot[8];
	long nr;

	if (!cx[c].ctx) {
		io_context_t g = garbage_ctx();
		rc = io_submit(g, pick(3), NULL);
		check(rc == -EINVAL, "io_submit on a bad context: %d", rc);
		return;
	}
	for (int k = 0; k < n; k++) {
		int i = (int)pick(NLS + 1);
		struct lslot *s;
		bool busy = false;
		slot[k] = i;
		if (i == NLS) {   /* a NULL iocb: -EFAULT */
			list[k] = NULL;
			want[k] = EFAULT;
			continue;
		}
		s = &ls[i];
		for (int d = 0; d < NCTX; d++)
			busy |= s->inflight[d] > 0;
		if (busy) {
			/* again while in flight, unchanged: accepted as a
			 * second request (as by the kernel), unless its data
			 * could not be told apart (stream reads) */
			if (s->ex.chk == CHK_OUT) {
				n = k;
				break;
			}
			want[k] = ctx_outstanding(c) >= cx[c].nevents ? EAGAIN : 0;
			for (int j = 0; j < k; j++)   /* counted below */
				if (slot[j] == i && want[j] == 0)
					want[k] = want[j];
		} else {
			bool again = false;
			for (int j = 0; j < k; j++)
				again |= slot[j] == i;
			if (again) {   /* the same iocb twice, refused first time */
				n = k;
				break;
			}
			want[k] = l_prep(s, c);
		}
		list[k] = &s->iocb;
	}
	nr = pick(10) == 0 ? -1 : n;
	/* Outcome: the first refusal stops the list. */
	rc = io_submit(cx[c].ctx, nr, list);
	if (nr < 0) {
		check(rc == -EINVAL, "io_submit with nr -1: %d", rc);
		return;
	}
	check(rc >= 0 || rc == -EAGAIN || rc == -EFAULT || rc == -EINVAL ||
	      rc == -EBADF || rc == -EOPNOTSUPP, "io_submit: %d", rc);
	accepted = rc > 0 ? rc : 0;
	for (int k = 0; k < accepted; k++) {
		struct lslot *s = &ls[slot[k]];
		check(want[k] == 0 || (want[k] == EAGAIN),
		      "io_submit accepted iocb %d (entry %d), which should get %s",
		      slot[k], k, strerror(want[k]));
		if (want[k] == EAGAIN)
			die("io_submit accepted iocb %d past the context's %u events",
			    slot[k], cx[c].nevents);
		check(s->iocb.key == 0, "io_submit left key %#x", s->iocb.key);
		trace("  iocb %d: op %d on %s off %lld len %zu accepted on context %d\n",
		      slot[k], s->ex.op, fd_name[s->ex.fdc], s->ex.off, s->ex.len, c);
		s->inflight[c]++;
		if (s->ex.op == OP_WRITE && s->ex.fdc == F_APP && s->nrec < 8) {
			s->recs[s->nrec++] = rec_add(&s->ex);
		} else if (s->ex.op == OP_WRITE && s->ex.fdc == F_APP) {
			app_valid = false;
		}
		/* a second entry for a busy slot sees the ring fuller */
		for (int j = k + 1; j < n; j++)
			if (want[j] == 0 && ctx_outstanding(c) >= cx[c].nevents)
				want[j] = EAGAIN;
	}
	if (accepted < n) {
		int w = want[accepted];
		if (w == 0 && eagain_ok)
			w = EAGAIN;
		check(w != 0, "io_submit stopped at entry %d (iocb %d): %d", accepted,
		      slot[accepted], rc);
		if (accepted == 0)
			check(rc == -w || (rc == -EAGAIN && eagain_ok),
			      "io_submit: %d, expected -%s", rc, strerror(w));
	}
}

struct getev_call {
	int c, rc, kind;
	long min_nr, nr;
	struct io_event ev[NEV], *evp;
	struct timespec ts, *tp;
	sigset_t mask, *mp;
};

static void getev_fn(void *arg)
{
	struct getev_call *g = arg;
	io_context_t ctx = g->c >= 0 ? cx[g->c].ctx : NULL;

	g->rc = g->kind == 0 ? io_getevents(ctx, g->min_nr, g->nr, g->evp, g->tp) :
	        io_pgetevents(ctx, g->min_nr, g->nr, g->evp, g->tp, g->mp);
}

static void op_l_getevents(void)
{
	struct getev_call g = { .c = (int)pick(NCTX), .kind = (int)pick(2) };
	int t = (int)pick(8), m = (int)pick(4), want = 0;
	unsigned avail;
	bool forever;

	g.min_nr = (long)pick(4);
	g.nr = (long)pick(NEV + 1);
	g.evp = g.ev;
	switch (pick(10)) {
	case 0: g.min_nr = -1; break;
	case 1: g.min_nr = g.nr + 1; break;
	case 2: g.evp = NULL; break;
	case 3: g.evp = (struct io_event *)8; break;
	case 4: g.nr = -1; break;
	}
	switch (t) {
	case 0:  g.tp = NULL; break;
	case 1:  g.ts = (struct timespec){ 0, 1000000000L + 1000 }; g.tp = &g.ts; break;
	case 2:  g.ts = (struct timespec){ 0, -1 }; g.tp = &g.ts; break;
	case 3:  g.ts = (struct timespec){ -1, 0 }; g.tp = &g.ts; break;
	case 4:  g.ts = (struct timespec){ 0, 1000000 }; g.tp = &g.ts; break;
	case 5:  g.tp = (struct timespec *)16; break;
	default: g.ts = (struct timespec){ 0, 0 }; g.tp = &g.ts; break;
	}
	sigemptyset(&g.mask);
	if (m == 1)
		sigaddset(&g.mask, SIG_NOTE);
	g.mp = m == 0 ? NULL : m == 3 ? (sigset_t *)24 : &g.mask;
	if (!cx[g.c].ctx) {
		io_context_t ctx = garbage_ctx();
		int rc = g.kind == 0 ? io_getevents(ctx, 0, 1, g.ev, &g.ts)
		                     : io_pgetevents(ctx, 0, 1, g.ev, &g.ts, NULL);
		check(rc == -EINVAL, "io_getevents on a bad context: %d", rc);
		return;
	}
	if (g.kind == 1 && g.mp == (sigset_t *)24)
		want = -EFAULT;
	else if (g.tp == (struct timespec *)16)
		want = -EFAULT;
	else if (g.min_nr < 0 || g.min_nr > g.nr)
		want = -EINVAL;
	else if (g.nr > 0 && g.evp != g.ev)
		want = -EFAULT;
	forever = g.tp == NULL || (t == 1 || t == 2 || t == 3);
	avail = ring_avail(g.c);
	if (!want && forever) {
		/* waits with no end (or a second): only when it need not */
		long need = g.min_nr > 0 ? g.min_nr : g.nr > 0 ? 1 : 0;
		if ((long)avail < need) {
			g.tp = &g.ts;
			g.ts = (struct timespec){ 0, 0 };
			forever = false;
		}
	}
	getev_fn(&g);
	if (want) {
		check(g.rc == want, "io_%sgetevents(min %ld nr %ld): %d, expected %d",
		      g.kind ? "p" : "", g.min_nr, g.nr, g.rc, want);
		return;
	}
	if (g.rc == -EINTR)
		return;
	check(g.rc >= 0 && g.rc <= g.nr, "io_getevents(min %ld nr %ld): %d", g.min_nr,
	      g.nr, g.rc);
	if (forever || g.tp->tv_sec > 0)
		check(g.rc >= g.min_nr, "io_getevents returned %d < min_nr %ld", g.rc, g.min_nr);
	l_events(g.c, g.ev, g.rc);
}

static void op_l_cancel(void)
{
	int c = (int)pick(NCTX), i = (int)pick(NLS + 1), rc;
	struct io_event res;
	struct lslot *s;

	if (!cx[c].ctx || i == NLS) {
		io_context_t ctx = cx[c].ctx ? cx[c].ctx : garbage_ctx();
		rc = io_cancel(ctx, i == NLS ? NULL : &ls[i].iocb, &res);
		check(rc == (i == NLS ? -EFAULT : -EINVAL), "io_cancel on a bad "
		      "context or iocb: %d", rc);
		return;
	}
	s = &ls[i];
	if (pick(8) == 0) {
		rc = io_cancel(cx[c].ctx, &s->iocb, NULL);
		check(rc == -EFAULT || (rc == -EINVAL && !s->inflight[c]),
		      "io_cancel with no result: %d", rc);
		return;
	}
	rc = io_cancel(cx[c].ctx, &s->iocb, &res);
	if (!s->inflight[c]) {
		check(rc == -EINVAL, "io_cancel of an iocb not in flight: %d", rc);
		return;
	}
	check(rc == 0 || rc == -EAGAIN || rc == -EINVAL, "io_cancel: %d", rc);
	if (rc != 0)
		return;   /* running, or finished: its event comes */
	check(res.obj == &s->iocb && res.data == (void *)io_callback &&
	      (long)res.res == -ECANCELED && res.res2 == 0,
	      "io_cancel's result: obj %p data %p res %ld", (void *)res.obj,
	      res.data, (long)res.res);
	s->inflight[c]--;
	if (s->nrec == 1) {   /* a queued write never ran: no record */
		recs[s->recs[0]].res = 0;
		s->nrec = 0;
	} else if (s->nrec > 1) {
		/* One of its writes, the oldest still queued: which one is
		 * not known here (the oldest may be running), nor so where
		 * in the file the others went. */
		app_valid = false;
		s->nrec--;
	}
}

static void op_l_misc(void)
{
	int c = (int)pick(NCTX), rc;

	if (!cx[c].ctx) {
		io_context_t g = garbage_ctx();
		struct timespec z = { 0, 0 };
		switch (pick(3)) {
		case 0:
			rc = io_queue_run(g);
			break;
		case 1:
			rc = io_queue_wait(g, &z);
			break;
		default:
			rc = io_destroy(g);
			break;
		}
		check(rc == -EINVAL, "io_queue_run/wait/destroy on a bad context: %d", rc);
		return;
	}
	switch (pick(4)) {
	case 0:
		rc = io_queue_run(cx[c].ctx);
		check(rc == 0, "io_queue_run: %d", rc);
		break;
	case 1: {
		struct timespec z = { 0, pick(2) ? 0 : 500000 };
		bool idle = ring_avail(c) || !ctx_outstanding(c);
		rc = io_queue_wait(cx[c].ctx, idle && pick(2) ? NULL : &z);
		check(rc == 0 || rc == -EINTR, "io_queue_wait: %d", rc);
		break;
	}
	case 2:
		rc = io_queue_wait(cx[c].ctx, (struct timespec *)8);
		check(rc == -EFAULT, "io_queue_wait with a bad timeout: %d", rc);
		break;
	default:
		for (int k = (int)pick(4); k >= 0 && ring_reap_one(c); k--)
			;
		break;
	}
}

/* ---- the engine's own interface ------------------------------------------------ */

static bool knob_in_range(int k, long v)
{
	switch (k) {
	case AIOPOOL_MAX_THREADS:    return v >= 1 && v <= 1024;
	case AIOPOOL_IDLE_MS:        return v >= -1 && v <= INT_MAX;
	case AIOPOOL_MAX_QUEUED:     return v >= 1 && v <= (1L << 30);
	case AIOPOOL_FD_CONCURRENCY: return v >= 1 && v <= 1024;
	case AIOPOOL_CACHE:          return v >= 0 && v <= (1L << 20);
	case AIOPOOL_FASTPATH:       return v == 0 || v == 1;
	case AIOPOOL_RUNNABLE:       return v >= 1 && v <= 1024;
	case AIOPOOL_SYSCALL_SETUP:  return v == 0 || v == 1;
	}
	return false;
}

static void op_knob(void)
{
	static const long vals[] = { -2, -1, 0, 1, 2, 3, 16, 1024, 1025, 1L << 20,
	                             (1L << 20) + 1, 1L << 30, (1L << 30) + 1,
	                             LONG_MAX, LONG_MIN, 64 };
	int k = (int)pick(10), rc;
	long v = vals[pick(16)], got;

	switch (pick(4)) {
	case 0: {   /* aiopool_stats */
		static const unsigned long sizes[] = {
			0, 1, offsetof(struct aiopool_stats, reserved) - 1,
			offsetof(struct aiopool_stats, reserved),
			sizeof(struct aiopool_stats), 4096,
		};
		unsigned char big[4096];
		unsigned long size = sizes[pick(6)];
		bool null = pick(8) == 0;
		errno = 0;
		rc = aiopool_stats(null ? NULL : (struct aiopool_stats *)big, size);
		if (null || size < offsetof(struct aiopool_stats, reserved))
			check(rc == -1 && errno == EINVAL, "aiopool_stats(%lu): %d", size, rc);
		else
			check(rc == 0, "aiopool_stats(%lu): %d %s", size, rc, strerror(errno));
		return;
	}
	case 1: {   /* aio_init */
		struct aioinit ai;
		long th = aiopool_get(AIOPOOL_MAX_THREADS), ca = aiopool_get(AIOPOOL_CACHE),
		     id = aiopool_get(AIOPOOL_IDLE_MS);
		if (pick(8) == 0) {
			f_aio_init(NULL);
			return;
		}
		memset(&ai, 0, sizeof ai);
		ai.aio_threads = (int)(vals[pick(16)] & 0xffffffff);
		ai.aio_num = (int)(vals[pick(16)] & 0xffffffff);
		ai.aio_idle_time = (int)(vals[pick(16)] & 0xffffffff) % 4;
		f_aio_init(&ai);
		th = ai.aio_threads < 1 ? 1 : ai.aio_threads > 1024 ? 1024 : ai.aio_threads;
		if (ai.aio_num > 0)
			ca = ai.aio_num > (1 << 20) ? (1 << 20) : ai.aio_num;
		if (ai.aio_idle_time > 0)
			id = ai.aio_idle_time * 1000L;
		else if (ai.aio_idle_time < 0)
			id = -1;
		check(aiopool_get(AIOPOOL_MAX_THREADS) == th && aiopool_get(AIOPOOL_CACHE) == ca &&
		      aiopool_get(AIOPOOL_IDLE_MS) == id, "aio_init(%d, %d, %d) set the "
		      "knobs to %ld %ld %ld", ai.aio_threads, ai.aio_num, ai.aio_idle_time,
		      aiopool_get(AIOPOOL_MAX_THREADS), aiopool_get(AIOPOOL_CACHE),
		      aiopool_get(AIOPOOL_IDLE_MS));
		return;
	}
	case 2:
		errno = 0;
		got = aiopool_get(k);
		if (k < 1 || k > 8)
			check(got == -1 && errno == EINVAL, "aiopool_get(%d): %ld", k, got);
		else
			check(knob_in_range(k, got), "aiopool_get(%d): %ld", k, got);
		return;
	default:
		if (k == AIOPOOL_MAX_QUEUED && v >= 1 && v < 64)
			v = 64;   /* leave room for our own requests... */
		errno = 0;
		rc = aiopool_set(k, v);
		if (!knob_in_range(k, v)) {
			check(rc == -1 && errno == EINVAL, "aiopool_set(%d, %ld): %d", k, v, rc);
			return;
		}
		check(rc == 0 && aiopool_get(k) == v, "aiopool_set(%d, %ld): %d, then %ld",
		      k, v, rc, aiopool_get(k));
		if (k == AIOPOOL_MAX_QUEUED)
			eagain_ok |= v < 1024;   /* ...but it may still be reached */
		return;
	}
}

/* ---- an input's end: everything completes, then the checks -------------------- */

/* For the message of an invariant broken: the engine's state. */
static void engine_report(void)
{
	struct aiopool_stats sr;

	if (aiopool_stats(&sr, sizeof sr) == 0)
		fprintf(stderr, "engine: threads %lu idle %lu queued %lu running %lu; "
		        "this input: submitted %llu completed %llu cancelled %llu\n",
		        sr.threads, sr.idle_threads, sr.queued, sr.running,
		        sr.submitted - st0.submitted, sr.completed - st0.completed,
		        sr.cancelled - st0.cancelled);
	fprintf(stderr, "knobs:");
	for (int k = 1; k <= 8; k++)
		fprintf(stderr, " %ld", aiopool_get(k));
	fputc('\n', stderr);
}

static void settle(void)
{
	long long end = now_ms() + DEADLINE_MS;
	int rounds = 0;

	while (outstanding()) {
		for (int i = 0; i < NPS; i++)
			p_collect(i);
		for (int c = 0; c < NCTX; c++)
			l_reap(c);
		if (++rounds > 20) {   /* polls that will never fire */
			for (int c = 0; c < NCTX; c++)
				for (int i = 0; i < NLS; i++) {
					struct io_event res;
					if (ls[i].ex.op != OP_POLL || !ls[i].inflight[c])
						continue;
					if (io_cancel(cx[c].ctx, &ls[i].iocb, &res) == 0)
						ls[i].inflight[c]--;
				}
		}
		service_streams();
		if (!outstanding())
			break;
		if (now_ms() > end) {
			for (int i = 0; i < NPS; i++)
				if (ps[i].busy)
					fprintf(stderr, "aiocb %d: op %d on %s still in progress\n",
					        i, ps[i].ex.op, fd_name[ps[i].ex.fdc]);
			for (int i = 0; i < NLS; i++)
				for (int c = 0; c < NCTX; c++)
					if (ls[i].inflight[c])
						fprintf(stderr, "iocb %d: op %d on %s: %u in flight "
						        "on context %d\n", i, ls[i].ex.op,
						        fd_name[ls[i].ex.fdc], ls[i].inflight[c], c);
			engine_report();
			die("requests never completed within %d ms", DEADLINE_MS);
		}
		nap_us(rounds < 10 ? 50 : 500);
	}
}

static void check_notes(void)
{
	long long end = now_ms() + DEADLINE_MS;
	struct aiopool_stats sn;

	for (;;) {
		unsigned missing = 0, missing_sig = 0;
		for (int id = 0; id < nnotes; id++) {
			uint32_t got = __atomic_load_n(&note_got[id], __ATOMIC_RELAXED);
			check(got <= note_times[id], "notification %d arrived %u times, "
			      "expected %u", id, got, note_times[id]);
			missing += note_times[id] - got;
			if (note_sig[id])
				missing_sig += note_times[id] - got;
		}
		check(!__atomic_load_n(&note_stray, __ATOMIC_RELAXED),
		      "a notification from an earlier input arrived");
		if (!missing)
			return;
		check(aiopool_stats(&sn, sizeof sn) == 0, "aiopool_stats");
		if (missing == missing_sig && sn.notify_failed - st0.notify_failed >= missing)
			return;   /* signals the kernel would not queue */
		if (now_ms() > end)
			die("%u notifications never arrived", missing);
		nap_us(200);
	}
}

static void check_engine(void)
{
	long long end = now_ms() + DEADLINE_MS;
	struct aiopool_stats s;

	for (;;) {
		check(aiopool_stats(&s, sizeof s) == 0, "aiopool_stats");
		if (s.queued == 0 && s.running == 0 &&
		    s.submitted - st0.submitted == (s.completed - st0.completed) +
		                                   (s.cancelled - st0.cancelled))
			return;
		if (now_ms() > end && (engine_report(), 1))
			die("the engine is not idle: queued %lu running %lu, submitted %llu "
			    "completed %llu cancelled %llu this input", s.queued, s.running,
			    s.submitted - st0.submitted, s.completed - st0.completed,
			    s.cancelled - st0.cancelled);
		nap_us(200);
	}
}

static void check_files(void)
{
	static unsigned char buf[REGION + 1], want[MAXREC * BUFSZ];
	struct stat sb;
	size_t n = 0;

	check(fstat(fds[F_REG], &sb) == 0 && sb.st_size == REGION,
	      "the regular file's size changed to %lld", (long long)sb.st_size);
	check(pread(fds[F_REG], buf, REGION, 0) == REGION, "reading the file back");
	for (int i = 0; i < REGION; i++)
		check(buf[i] == pat((unsigned)i), "the regular file's byte %d is "
		      "%#x, not %#x", i, buf[i], pat((unsigned)i));

	check(fstat(fds[F_APP], &sb) == 0, "fstat");
	if (app_valid) {
		for (int r = 0; r < nrecs; r++) {
			struct expect e = { .fdc = F_APP, .seed = recs[r].seed };
			check(recs[r].res != -2, "append record %d has no result", r);
			for (ssize_t i = 0; i < recs[r].res; i++)
				want[n++] = wbyte(&e, (size_t)i);
		}
		check((size_t)sb.st_size == n, "the O_APPEND file holds %lld bytes, "
		      "its %d records %zu", (long long)sb.st_size, nrecs, n);
		for (size_t at = 0; at < n; at += sizeof buf - 1) {
			size_t k = n - at < sizeof buf - 1 ? n - at : sizeof buf - 1;
			check(pread(fds[F_APP], buf, k, (off_t)at) == (ssize_t)k, "reading back");
			check(memcmp(buf, want + at, k) == 0, "the O_APPEND file's records "
			      "are not as written, in submission order (near byte %zu)", at);
		}
	}
	check(ftruncate(fds[F_APP], 0) == 0, "ftruncate");
}

static void check_streams(void)
{
	for (int s = 0; s < NSTREAM; s++) {
		while (drain(&st[s]))
			;
		if (!st[s].valid)
			continue;
		for (int v = 0; v < 256; v++)
			check(st[s].in[v] == st[s].out[v], "stream %d: %llu bytes of value "
			      "%#x went in, %llu came out", s,
			      (unsigned long long)st[s].in[v], v,
			      (unsigned long long)st[s].out[v]);
	}
}

static void check_resfd(void)
{
	long long end = now_ms() + DEADLINE_MS;
	uint64_t v;

	for (;;) {
		if (read(evfd, &v, sizeof v) == sizeof v)
			resfd_got += v;
		if (!resfd_valid || resfd_got >= resfd_want)
			break;
		if (now_ms() > end)
			die("the eventfd counted %llu completions of %llu",
			    (unsigned long long)resfd_got, (unsigned long long)resfd_want);
		nap_us(200);
	}
	if (resfd_valid)
		check(resfd_got == resfd_want, "the eventfd counted %llu completions of %llu",
		      (unsigned long long)resfd_got, (unsigned long long)resfd_want);
}

static void finish_input(void)
{
	settle();
	for (int c = 0; c < NCTX; c++)
		if (cx[c].ctx)
			l_destroy(c, false);
	for (int d = 0; d < ndead; d++) {
		struct io_event ev;
		struct timespec z = { 0, 0 };
		if (!dead[d])
			continue;
		check(io_submit(dead[d], 0, NULL) == -EINVAL, "io_submit on a destroyed context");
		check(io_getevents(dead[d], 0, 1, &ev, &z) == -EINVAL,
		      "io_getevents on a destroyed context");
		check(io_destroy(dead[d]) == -EINVAL, "io_destroy twice");
	}
	for (int k = 1; k <= 8; k++)
		check(aiopool_set(k, knob_default[k]) == 0, "restoring knob %d", k);
	check_engine();
	check_notes();
	check_resfd();
	check_streams();
	check_files();
}

static void start_input(void)
{
	gen = (gen + 1) & 0x7fff;
	nnotes = 0;
	memset(note_got, 0, sizeof note_got);
	memset(note_times, 0, sizeof note_times);
	memset(note_sig, 0, sizeof note_sig);
	__atomic_store_n(&note_stray, 0, __ATOMIC_RELAXED);
	nrecs = 0;
	app_valid = true;
	eagain_ok = false;
	resfd_want = resfd_got = 0;
	resfd_valid = true;
	ndead = 0;
	main_tid = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < NPS; i++) {
		memset(&ps[i].cb, 0, sizeof ps[i].cb);
		ps[i].busy = false;
		ps[i].ex = (struct expect){ 0 };
		ps[i].rec = ps[i].note = -1;
	}
	for (int i = 0; i < NLS; i++) {
		memset(&ls[i].iocb, 0, sizeof ls[i].iocb);
		memset(ls[i].inflight, 0, sizeof ls[i].inflight);
		ls[i].nrec = 0;
		ls[i].ex = (struct expect){ 0 };
	}
	for (int s = 0; s < NSTREAM; s++) {
		memset(st[s].in, 0, sizeof st[s].in);
		memset(st[s].out, 0, sizeof st[s].out);
		st[s].valid = true;
	}
	check(fcntl(fds[F_CLOSED], F_GETFD) < 0, "the closed fd number was opened");
	check(aiopool_stats(&st0, sizeof st0) == 0, "aiopool_stats");
}

/* ---- libFuzzer's entry points -------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sigaction sa;
	FILE *f;

	(void)argc;
	(void)argv;
	tracing = getenv("FUZZ_TRACE") && *getenv("FUZZ_TRACE") == '1';
	setup_fds();
	for (int i = 0; i < NPS; i++) {
		ps[i].buf = aligned_alloc(64, BUFSZ);
		check(ps[i].buf != NULL, "out of memory");
	}
	for (int i = 0; i < NLS; i++) {
		ls[i].buf = aligned_alloc(64, BUFSZ);
		check(ls[i].buf != NULL, "out of memory");
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	check(sigaction(SIG_NOTE, &sa, NULL) == 0, "sigaction");
	pthread_attr_init(&note_attr);
	pthread_attr_setdetachstate(&note_attr, PTHREAD_CREATE_DETACHED);
	for (int k = 1; k <= 8; k++)
		knob_default[k] = aiopool_get(k);
	if ((f = fopen("/proc/sys/fs/aio-max-nr", "re")) != NULL) {
		if (fscanf(f, "%lu", &aio_max_nr) != 1 || !aio_max_nr)
			aio_max_nr = 65536;
		fclose(f);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in_p = data;
	in_n = size;
	start_input();
	for (int ops = 0; ops < MAX_OPS && in_n; ops++) {
		unsigned op = u8();
		trace("call %d: %s\n", ops, op < 40 ? "aio_read/write/fsync" :
		      op < 60 ? "lio_listio" : op < 72 ? "aio_suspend" :
		      op < 84 ? "aio_cancel" : op < 100 ? "aio_error/return" :
		      op < 116 ? "io_setup/destroy" : op < 160 ? "io_submit" :
		      op < 185 ? "io_getevents" : op < 200 ? "io_cancel" :
		      op < 220 ? "io_queue_*" : op < 236 ? "knobs" : "wait");
		if (op < 40)
			op_p_submit();
		else if (op < 60)
			op_p_lio();
		else if (op < 72)
			op_p_suspend();
		else if (op < 84)
			op_p_cancel();
		else if (op < 100)
			op_p_status();
		else if (op < 116)
			op_l_setup();
		else if (op < 160)
			op_l_submit();
		else if (op < 185)
			op_l_getevents();
		else if (op < 200)
			op_l_cancel();
		else if (op < 220)
			op_l_misc();
		else if (op < 236)
			op_knob();
		else
			service_streams();   /* let time pass */
	}
	finish_input();
	return 0;
}

#ifdef FUZZ_STANDALONE
/* Without libFuzzer (for valgrind, or any compiler): runs the target once
 * on each file named, or on each file in each directory named. */
#include <dirent.h>

static void run_file(const char *path)
{
	static uint8_t data[1 << 16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		exit(2);
	}
	n = fread(data, 1, sizeof data, f);
	fclose(f);
	LLVMFuzzerTestOneInput(data, n);
}

int main(int argc, char **argv)
{
	unsigned long runs = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			run_file(argv[i]);
			runs++;
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
			run_file(path);
			runs++;
		}
		closedir(d);
	}
	printf("fuzz_api: %lu inputs, every invariant held\n", runs);
	return 0;
}
#endif
