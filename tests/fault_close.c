/* fault_close: an fd closed, and its number reused, while requests are
 * queued on it.  aiopool's close(), dup2() and dup3() cancel what is still
 * queued on the fd they close (aiopool(7), "Closing a file descriptor"):
 *
 *   - queued POSIX requests end with ECANCELED, aio_return -1, and their
 *     notification, once; queued libaio requests get an event with res
 *     -ECANCELED (and their eventfd bump);
 *   - nothing reaches the file that takes the number next, and requests
 *     submitted on the number afterwards form a queue of their own, of the
 *     new file's kind (a pipe read with read(), not pread());
 *   - a request already running finishes on the file it started with;
 *   - with threads submitting on the number while it is closed and reused
 *     (close, dup2, dup3), every request ends once (done, ECANCELED or
 *     EBADF) and every write that succeeded is in exactly one of the files,
 *     once, on the file the number named at its submission, and
 *     in submission order within each file;
 *   - a request picked by a worker runs on the file its fd named at
 *     submission even if aiopool's close() and a reuse of the number come
 *     before its system call (workers use a pinned duplicate, never the
 *     number);
 *   - a number closed behind aiopool's back (a raw close or dup3 system
 *     call) and reused: the next submission on it cancels what is queued
 *     for the old file, as close() would, and the new file gets a queue of
 *     its own kind.
 *
 * close(), dup2() and dup3() cancel after their system call, and only the
 * queue that was on the fd before it: a request submitted on the fd before
 * the call joins the file's one queue, so the records of each file stay in
 * submission order (close_and_reuse_keeps_each_file_in_order).
 *
 * (This asserts the close() cancellation added to the engine with
 * src/fdclose.c; tests/posix_close.c has the basic cases.) */
#include "libaio_common.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

/* Undoes uffd_open (common.h has no helper for it). */
static void uffd_done(struct uffd *u)
{
	close(u->fd);
	munmap(u->base, u->npages * (size_t)u->pagesz);
	free(u->seen);
	free(u->src);
}

#define SIG_NOTE (SIGRTMIN + 5)

enum { NQ = 16 };
static int sig_arrived[NQ];
static int thr_arrived[NQ];

static void on_note_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code == SI_ASYNCIO && si->si_value.sival_int >= 0 && si->si_value.sival_int < NQ)
		__atomic_add_fetch(&sig_arrived[si->si_value.sival_int], 1, __ATOMIC_SEQ_CST);
}

static void on_note_thread(union sigval v)
{
	if (v.sival_int >= 0 && v.sival_int < NQ)
		__atomic_add_fetch(&thr_arrived[v.sival_int], 1, __ATOMIC_SEQ_CST);
}

static int sum(const int *a, int n)
{
	int s = 0;

	for (int i = 0; i < n; i++)
		s += __atomic_load_n(&a[i], __ATOMIC_SEQ_CST);
	return s;
}

Test(fault_close, reused_number_gets_nothing_of_the_old_queue)
{
	static struct aiocb cbs[NQ], fresh[4];
	static struct iocb ios[NQ];
	struct iocb *iop[NQ];
	struct io_event ev[NQ];
	char old_data[64], new_data[4][32];
	struct blocker b;
	io_context_t ctx;
	int efd, x, keep, y;
	uint64_t bumps = 0;

	memset(old_data, 'O', sizeof old_data);
	on_signal(SIG_NOTE, on_note_signal, 0);
	efd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(efd, 0);
	ctx = new_ctx(NQ + 4);
	one_busy_worker(&b);
	x = temp_file(0, 0);
	keep = dup(x);   /* the old file, to look at afterwards */

	for (int i = 0; i < NQ; i++) {
		fill_cb(&cbs[i], x, old_data, sizeof old_data, (off_t)i * 64);
		cbs[i].aio_sigevent.sigev_value.sival_int = i;
		if (i % 2) {
			cbs[i].aio_sigevent.sigev_notify = SIGEV_SIGNAL;
			cbs[i].aio_sigevent.sigev_signo = SIG_NOTE;
		} else {
			cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
			cbs[i].aio_sigevent.sigev_notify_function = on_note_thread;
		}
		cr_assert_eq(aio_write(&cbs[i]), 0);
		io_prep_pwrite(&ios[i], x, old_data, sizeof old_data, (long long)(NQ + i) * 64);
		io_set_eventfd(&ios[i], efd);
		ios[i].data = (void *)(uintptr_t)(i + 1);
		iop[i] = &ios[i];
	}
	cr_assert_eq(io_submit(ctx, NQ, iop), NQ);
	cr_assert_eq(stats_now().queued, 2 * NQ, "all queued behind the busy worker");

	cr_assert_eq(close(x), 0);
	for (int i = 0; i < NQ; i++) {
		cr_assert_eq(aio_error(&cbs[i]), ECANCELED, "queued write %d: cancelled by close", i);
		cr_assert_eq(aio_return(&cbs[i]), -1);
	}
	y = temp_file(0, 0);
	cr_assert_eq(y, x, "the test needs the number reused");
	for (int i = 0; i < 4; i++) {
		memset(new_data[i], 'a' + i, sizeof new_data[i]);
		fill_cb(&fresh[i], y, new_data[i], sizeof new_data[i], (off_t)i * 32);
		cr_assert_eq(aio_write(&fresh[i]), 0);
	}
	blocker_release(&b);

	get_events(ctx, ev, NQ);
	for (int i = 0; i < NQ; i++) {
		cr_assert_eq((long)ev[i].res, -ECANCELED, "libaio write: res %ld", (long)ev[i].res);
		cr_assert(ev[i].obj >= &ios[0] && ev[i].obj < &ios[NQ]);
	}
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(wait_aio(&fresh[i]), 0);
		cr_assert_eq(aio_return(&fresh[i]), 32);
	}
	wait_until(sum(sig_arrived, NQ) + sum(thr_arrived, NQ) >= NQ,
	           "notifications of cancelled requests: %d of %d",
	           sum(sig_arrived, NQ) + sum(thr_arrived, NQ), NQ);
	for (long long end = now_ms() + DEADLINE_MS; bumps < NQ; ) {
		struct pollfd p = { efd, POLLIN, 0 };
		uint64_t v;
		if (poll(&p, 1, 10) > 0 && read(efd, &v, sizeof v) == (ssize_t)sizeof v)
			bumps += v;
		cr_assert_lt(now_ms(), end, "eventfd: %" PRIu64 " bumps of %d", bumps, NQ);
	}
	sleep_ms(SETTLE_MS);
	{
		struct pollfd p = { efd, POLLIN, 0 };
		uint64_t v;
		if (poll(&p, 1, 0) > 0 && read(efd, &v, sizeof v) == (ssize_t)sizeof v)
			bumps += v;
	}
	for (int i = 0; i < NQ; i++)
		cr_assert_eq(sig_arrived[i] + thr_arrived[i], 1,
		             "request %d: %d notifications", i, sig_arrived[i] + thr_arrived[i]);
	cr_assert_eq(bumps, NQ, "eventfd bumped %" PRIu64 " times for %d events", bumps, NQ);

	cr_assert_eq(size_of(keep), 0, "no queued write ran on the old file");
	cr_assert_eq(size_of(y), 4 * 32, "the new file has the new writes alone");
	for (int i = 0; i < 4; i++) {
		char back[32];
		cr_assert_eq(pread(y, back, 32, i * 32), 32);
		cr_assert_eq(memcmp(back, new_data[i], 32), 0, "new write %d", i);
	}
	cr_assert_eq(io_destroy(ctx), 0);
	close(y);
	close(keep);
	close(efd);
}

/* The number comes back as a pipe: requests on it now are pipe requests
 * (read(), one at a time), not the regular file's pread(). */
Test(fault_close, number_reused_by_a_pipe_is_a_pipe)
{
	struct aiocb w, r, r2;
	char data[] = "queued", buf[8] = { 0 }, buf2[8] = { 0 };
	struct blocker b;
	int x, keep, p[2];

	one_busy_worker(&b);
	x = temp_file(0, 0);
	keep = dup(x);
	fill_cb(&w, x, data, sizeof data, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(close(x), 0);
	cr_assert_eq(aio_error(&w), ECANCELED);
	make_pipe(p);
	cr_assert_eq(p[0], x, "the test needs the pipe's read end on the number");
	fill_cb(&r, p[0], buf, 3, 4096);    /* an offset: ignored on a pipe */
	fill_cb(&r2, p[0], buf2, 3, 0);
	cr_assert_eq(aio_read(&r), 0);
	cr_assert_eq(aio_read(&r2), 0);
	blocker_release(&b);
	put(p[1], "abcdef", 6);
	cr_assert_eq(wait_aio(&r), 0, "read on the reused number: %s", strerror(aio_error(&r)));
	cr_assert_eq(aio_return(&r), 3);
	cr_assert_eq(wait_aio(&r2), 0);
	cr_assert_eq(aio_return(&r2), 3);
	cr_assert_str_eq(buf, "abc", "in order, as a pipe");
	cr_assert_str_eq(buf2, "def");
	cr_assert_eq(size_of(keep), 0);
	close(p[0]);
	close(p[1]);
	close(keep);
}

/* A write running when its fd is closed (held inside the kernel by a
 * userfaultfd page) finishes on its own file, not on the next one. */
static void running_write(bool use_libaio)
{
	struct uffd u;
	struct aiocb w;
	struct iocb io;
	io_context_t ctx = 0;
	int x, keep, y;
	long page;

	UFFD_OR_SKIP(&u, 1);
	x = temp_file(0, 0);
	keep = dup(x);
	if (use_libaio) {
		ctx = new_ctx(4);
		io_prep_pwrite(&io, x, uffd_page(&u, 0), (size_t)u.pagesz, 0);
		cr_assert_eq(submit1(ctx, &io), 1);
	} else {
		fill_cb(&w, x, uffd_page(&u, 0), (size_t)u.pagesz, 0);
		cr_assert_eq(aio_write(&w), 0);
	}
	page = uffd_next_fault(&u);   /* the write runs, and waits for its page */
	cr_assert_eq(page, 0);
	cr_assert_eq(close(x), 0);
	y = temp_file(0, 0);
	cr_assert_eq(y, x, "the test needs the number reused");
	uffd_release(&u, 0, 'R');
	if (use_libaio) {
		cr_assert_eq((long)get_one(ctx).res, u.pagesz, "the running write completes");
		cr_assert_eq(io_destroy(ctx), 0);
	} else {
		cr_assert_eq(wait_aio(&w), 0, "the running write completes: %s", strerror(aio_error(&w)));
		cr_assert_eq(aio_return(&w), u.pagesz);
	}
	cr_assert_eq(size_of(keep), u.pagesz, "it wrote to the file it started on");
	char c = 0;
	cr_assert_eq(pread(keep, &c, 1, 7), 1);
	cr_assert_eq(c, 'R');
	cr_assert_eq(size_of(y), 0, "and nothing to the file that took the number");
	close(y);
	close(keep);
	uffd_done(&u);
}

Test(fault_close, running_posix_write_finishes_on_its_file)
{
	running_write(false);
}

Test(fault_close, running_libaio_write_finishes_on_its_file)
{
	running_write(true);
}

/* ---- closed behind aiopool's back ------------------------------------------ */

/* Closes x and puts newfd's file on the number with raw system calls, which
 * aiopool's close() and dup3() never see (as fclose or close_range). */
static void reuse_behind_the_back(int newfd, int x)
{
	cr_assert_eq(syscall(SYS_close, x), 0);
	cr_assert_eq(syscall(SYS_dup3, newfd, x, O_CLOEXEC), x);
}

Test(fault_close, number_reused_by_a_pipe_behind_aiopools_back_is_a_pipe)
{
	struct aiocb w, r1, r2;
	char b1 = 0, b2 = 0;
	int x = temp_file(0, 0), p[2];

	fill_cb(&w, x, "w", 1, 0);
	cr_assert_eq(aio_write(&w), 0);   /* x has a queue, of a regular file */
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(aio_return(&w), 1);
	make_pipe(p);
	reuse_behind_the_back(p[0], x);

	fill_cb(&r1, x, &b1, 1, 0);
	fill_cb(&r2, x, &b2, 1, 0);
	cr_assert_eq(aio_read(&r1), 0);
	cr_assert_eq(aio_read(&r2), 0);
	wait_stats(S.running == 1 && S.queued == 1,
	           "reads on a pipe run one at a time, whatever the number was");
	sleep_ms(SETTLE_MS);
	cr_assert_eq(stats_now().running, 1, "a second pipe read started");
	put(p[1], "ab", 2);
	cr_assert_eq(wait_aio(&r1), 0, "%s", strerror(aio_error(&r1)));
	cr_assert_eq(wait_aio(&r2), 0, "%s", strerror(aio_error(&r2)));
	cr_assert_eq(aio_return(&r1), 1);
	cr_assert_eq(aio_return(&r2), 1);
	cr_assert(b1 == 'a' && b2 == 'b', "the pipe's bytes in order: got %c%c", b1, b2);
	close(x);
	close(p[0]);
	close(p[1]);
}

/* A file's number reused behind aiopool's back by another file while the
 * old file's queue is busy (one request running, held in its write; one
 * queued behind it, AIOPOOL_FD_CONCURRENCY 1): the queued one never reaches
 * the new file, and the new file's write lands where it was asked to. */
Test(fault_close, queued_request_never_reaches_a_file_reopened_behind_aiopools_back)
{
	struct uffd u;
	struct aiocb w1, w2, w3;
	char back[3];
	int x, keep, y;

	UFFD_OR_SKIP(&u, 1);
	cr_assert_eq(aiopool_set(AIOPOOL_FD_CONCURRENCY, 1), 0);
	x = temp_file(0, 0);
	keep = dup(x);
	fill_cb(&w1, x, uffd_page(&u, 0), 100, 0);
	cr_assert_eq(aio_write(&w1), 0);
	cr_assert_eq(uffd_next_fault(&u), 0);   /* w1 runs, held */
	fill_cb(&w2, x, "old", 3, 50);
	cr_assert_eq(aio_write(&w2), 0);
	wait_stats(S.running == 1 && S.queued == 1, "w2 queued behind w1");

	y = temp_file(0, 0);
	reuse_behind_the_back(y, x);
	fill_cb(&w3, x, "new", 3, 100);
	cr_assert_eq(aio_write(&w3), 0);
	cr_assert_eq(wait_aio(&w3), 0, "%s", strerror(aio_error(&w3)));
	cr_assert_eq(aio_return(&w3), 3);
	cr_assert_eq(wait_aio(&w2), ECANCELED, "w2, queued for the old file, is cancelled");
	uffd_release(&u, 0, 'A');
	cr_assert_eq(wait_aio(&w1), 0);
	cr_assert_eq(aio_return(&w1), 100);

	cr_assert_eq(size_of(y), 103, "the new file has the new write alone");
	cr_assert_eq(pread(y, back, 3, 100), 3);
	cr_assert_arr_eq(back, "new", 3);
	cr_assert_eq(pread(y, back, 3, 50), 3);
	cr_assert_arr_eq(back, "\0\0\0", 3, "the old file's write went to the new file");
	cr_assert_eq(size_of(keep), 100, "the old file has the running write alone");
	close(x);
	close(y);
	close(keep);
	uffd_done(&u);
}

/* A read a worker has started, and which must go back to the kernel (its
 * first, RWF_NOWAIT, attempt came back short), reads the file its fd named
 * at submission even if aiopool's close() and a reuse of the number came in
 * between.  The first attempt is held in a page fault on the second page of
 * its buffer; the page is then unmapped, so both attempts stop short after
 * the first page. */
Test(fault_close, started_read_goes_on_with_its_file_after_close_and_reuse)
{
	struct uffd u;
	struct aiocb r;
	unsigned char *buf;
	long psz;
	int x, y;

	UFFD_OR_SKIP(&u, 2);
	psz = u.pagesz;
	buf = (unsigned char *)u.base;
	struct uffdio_range first = { (unsigned long)buf, (unsigned long)psz };
	cr_assert_eq(ioctl(u.fd, UFFDIO_UNREGISTER, &first), 0);
	memset(buf, 0, (size_t)psz);
	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	x = temp_file(2 * (size_t)psz, 0);
	fill_cb(&r, x, buf, 2 * (size_t)psz, 0);
	cr_assert_eq(aio_read(&r), 0);
	cr_assert_eq(uffd_next_fault(&u), 1);   /* its first attempt, held */

	cr_assert_eq(close(x), 0);
	y = temp_file(0, 0);
	cr_assert_eq(pwrite(y, "\xee\xee\xee\xee", 4, 0), 4);
	cr_assert_eq(dup2(y, x), x);
	cr_assert_eq(munmap(buf + psz, (size_t)psz), 0);
	struct uffdio_range second = { (unsigned long)(buf + psz), (unsigned long)psz };
	ioctl(u.fd, UFFDIO_WAKE, &second);

	cr_assert_eq(wait_aio(&r), 0, "the started read: %s", strerror(aio_error(&r)));
	cr_assert_eq(aio_return(&r), psz, "the first page, up to the unmapped one");
	for (long i = 0; i < psz; i++)
		cr_assert_eq(buf[i], pattern(i), "byte %ld: not from the file it was submitted on", i);
	close(x);
	close(y);
	close(u.fd);
	munmap(buf, (size_t)psz);
	free(u.seen);
	free(u.src);
}

/* aiopool holds a duplicate of each file it served until the program closes
 * it; closed behind its back, the file is let go once a worker's idle time
 * has passed: the reader of a pipe whose write end was closed so sees EOF. */
/* How many of this process's descriptors name the file st describes. */
static int fds_naming(const struct stat *st)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		struct stat x;
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != dirfd(d) && fstat(fd, &x) == 0 &&
		    x.st_dev == st->st_dev && x.st_ino == st->st_ino)
			n++;
	}
	closedir(d);
	return n;
}

/* A file aiopool served, closed behind its back: the idle sweep lets the
 * pinned duplicate go, so that no descriptor of the process keeps the file
 * open (a deleted file's space, an unmount). */
Test(fault_close, file_closed_behind_aiopools_back_is_let_go_after_the_idle_time)
{
	struct aiocb w;
	struct stat st;
	int fd = temp_file(0, 0);
	long long end;

	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 50), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	fill_cb(&w, fd, "w", 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(aio_return(&w), 1);
	cr_assert_eq(syscall(SYS_close, fd), 0);
	end = now_ms() + DEADLINE_MS;
	while (fds_naming(&st) > 0) {
		cr_assert(now_ms() < end, "a descriptor still names the closed file "
		          "%d ms after its close", DEADLINE_MS);
		sleep_ms(10);
	}
}

/* A pipe's fdq goes, and its pinned duplicate with it, as soon as nothing
 * is in flight on it: a write end closed where aiopool does not see it
 * (pclose, fclose, a raw system call) reaches EOF at once, not after some
 * idle time. */
Test(fault_close, pipe_closed_behind_aiopools_back_reaches_eof_at_once)
{
	struct aiocb w;
	char c;
	int p[2];

	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 3600 * 1000), 0);
	make_pipe(p);
	fill_cb(&w, p[1], "w", 1, 0);
	cr_assert_eq(aio_write(&w), 0);
	cr_assert_eq(wait_aio(&w), 0);
	cr_assert_eq(aio_return(&w), 1);
	cr_assert_eq(read(p[0], &c, 1), 1);
	cr_assert_eq(syscall(SYS_close, p[1]), 0);
	struct pollfd pf = { p[0], POLLIN, 0 };
	cr_assert_eq(poll(&pf, 1, DEADLINE_MS), 1, "the pipe's write end is still open");
	cr_assert_eq(read(p[0], &c, 1), 0, "end of file");
	close(p[0]);
	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 1000), 0);
}

/* dup2 and dup3 onto a number with libaio requests queued. */
Test(fault_close, dup2_and_dup3_cancel_queued_libaio_requests)
{
	struct iocb ios[4], *iop[4];
	struct io_event ev[4];
	char data[16];
	struct blocker b;
	io_context_t ctx = new_ctx(8);
	int x = temp_file(0, 0), keep = dup(x), other = temp_file(0, 0);

	memset(data, 'd', sizeof data);
	one_busy_worker(&b);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 4; i++) {
			io_prep_pwrite(&ios[i], x, data, sizeof data, i * 16);
			iop[i] = &ios[i];
		}
		cr_assert_eq(io_submit(ctx, 4, iop), 4);
		if (round == 0)
			cr_assert_eq(dup2(other, x), x);
		else
			cr_assert_eq(dup3(other, x, O_CLOEXEC), x);
		get_events(ctx, ev, 4);
		for (int i = 0; i < 4; i++)
			cr_assert_eq((long)ev[i].res, -ECANCELED);
	}
	blocker_release(&b);
	sleep_ms(SETTLE_MS);
	cr_assert_eq(size_of(keep), 0);
	cr_assert_eq(size_of(other), 0, "nothing went to the file dup2 put on the number");
	cr_assert_eq(io_destroy(ctx), 0);
	close(x);
	close(keep);
	close(other);
}

/* ---- closing and reusing the number under submitters ---------------------- */

enum { REC = 64, GENS = 200, DEPTH = 8 };

struct rec {
	uint32_t magic, who;
	uint64_t seq;
	char pad[REC - 16];
};
#define REC_MAGIC 0x43524546u

/* What each submitter saw of its requests, by sequence number. */
enum { ST_NONE, ST_DONE, ST_GONE, ST_FOUND };

struct submitter {
	pthread_t self;
	int who;                /* 0: POSIX, 1: libaio */
	int x;                  /* the number */
	int stop;
	uint64_t n;             /* requests ended */
	uint8_t *state;         /* by seq */
	size_t cap;
	int bad;
	char why[160];
};

static void mark(struct submitter *s, uint64_t seq, int st)
{
	if (seq >= s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		while (cap <= seq)
			cap *= 2;
		s->state = realloc(s->state, cap);
		memset(s->state + s->cap, ST_NONE, cap - s->cap);
		s->cap = cap;
	}
	s->state[seq] = (uint8_t)st;
}

static void *posix_submitter(void *arg)
{
	struct submitter *s = arg;
	struct aiocb cbs[DEPTH];
	struct rec recs[DEPTH];
	bool busy[DEPTH] = { false };
	uint64_t seq = 0;
	long long end = now_ms() + 4 * DEADLINE_MS;

	for (;;) {
		bool any = false;
		for (int i = 0; i < DEPTH; i++) {
			if (busy[i]) {
				int e = aio_error(&cbs[i]);
				if (e == EINPROGRESS) {
					any = true;
					continue;
				}
				ssize_t r = aio_return(&cbs[i]);
				if (e == 0 && r == REC)
					mark(s, recs[i].seq, ST_DONE);
				else if (e == ECANCELED || e == EBADF)
					mark(s, recs[i].seq, ST_GONE);
				else if (!s->bad++)
					snprintf(s->why, sizeof s->why, "write %" PRIu64 ": %s, %zd",
					         recs[i].seq, strerror(e), r);
				busy[i] = false;
				__atomic_add_fetch(&s->n, 1, __ATOMIC_SEQ_CST);
			}
			if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
				continue;
			recs[i] = (struct rec){ REC_MAGIC, 0, seq, { 0 } };
			fill_cb(&cbs[i], s->x, &recs[i], REC, 0);
			if (aio_write(&cbs[i]) == 0) {
				busy[i] = any = true;
			} else {
				/* EBADF is reported through the aiocb, not here */
				if (!s->bad++)
					snprintf(s->why, sizeof s->why, "aio_write: %s", strerror(errno));
				mark(s, seq, ST_GONE);
			}
			seq++;
		}
		if (!any && __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			break;
		if (now_ms() > end) {
			if (!s->bad++)
				snprintf(s->why, sizeof s->why, "requests never ended");
			break;
		}
	}
	return NULL;
}

static void *libaio_submitter(void *arg)
{
	struct submitter *s = arg;
	io_context_t ctx = 0;
	struct iocb ios[DEPTH];
	struct rec recs[DEPTH];
	bool busy[DEPTH] = { false };
	int inflight = 0;
	uint64_t seq = 0;
	long long end = now_ms() + 4 * DEADLINE_MS;

	if (io_setup(DEPTH, &ctx) != 0) {
		s->bad++;
		snprintf(s->why, sizeof s->why, "io_setup");
		return NULL;
	}
	for (;;) {
		struct io_event ev[DEPTH];
		struct timespec t = { 0, 1000000L };
		bool stopping = __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);

		for (int i = 0; i < DEPTH && !stopping; i++) {
			struct iocb *one = &ios[i];
			int rc;
			if (busy[i])
				continue;
			recs[i] = (struct rec){ REC_MAGIC, 1, seq, { 0 } };
			io_prep_pwrite(&ios[i], s->x, &recs[i], REC, 0);
			ios[i].data = (void *)(uintptr_t)i;
			rc = io_submit(ctx, 1, &one);
			if (rc == 1) {
				busy[i] = true;
				inflight++;
			} else if (rc == -EBADF) {
				mark(s, seq, ST_GONE);   /* the number was closed */
			} else if (!s->bad++) {
				snprintf(s->why, sizeof s->why, "io_submit: %d", rc);
			}
			seq++;
		}
		if (!inflight && stopping)
			break;
		int n = io_getevents(ctx, 1, DEPTH, ev, &t);
		for (int k = 0; k < n; k++) {
			int i = (int)(uintptr_t)ev[k].data;
			long res = (long)ev[k].res;
			if (res == REC)
				mark(s, recs[i].seq, ST_DONE);
			else if (res == -ECANCELED || res == -EBADF)
				mark(s, recs[i].seq, ST_GONE);
			else if (!s->bad++)
				snprintf(s->why, sizeof s->why, "write %" PRIu64 ": res %ld", recs[i].seq, res);
			busy[i] = false;
			inflight--;
			__atomic_add_fetch(&s->n, 1, __ATOMIC_SEQ_CST);
		}
		if (now_ms() > end) {
			if (!s->bad++)
				snprintf(s->why, sizeof s->why, "events never came");
			break;
		}
	}
	io_destroy(ctx);
	return NULL;
}

static void close_and_reuse(bool strict)
{
	struct submitter subs[2];
	int gens[GENS + 1], ngen = 0, x;
	uint64_t found[2] = { 0 }, done[2] = { 0 };
	int disorder = 0;

	x = temp_file(0, O_APPEND);
	gens[ngen++] = dup(x);
	for (int k = 0; k < 2; k++) {
		subs[k] = (struct submitter){ .who = k, .x = x };
		cr_assert_eq(pthread_create(&subs[k].self, NULL,
		                            k ? libaio_submitter : posix_submitter, &subs[k]), 0);
	}
	/* The churn starts once both submit: the libaio one's io_setup is then
	 * behind it, and neither ends having done nothing. */
	wait_until(__atomic_load_n(&subs[0].n, __ATOMIC_SEQ_CST) > 0 &&
	           __atomic_load_n(&subs[1].n, __ATOMIC_SEQ_CST) > 0,
	           "the submitters never ended a request");
	for (int g = 0; g < GENS; g++) {
		int nf = temp_file(0, O_APPEND);
		sleep_ms(1 + g % 3);
		gens[ngen++] = dup(nf);
		if (g % 3 == 0) {
			/* close, a moment with the number free, then reuse */
			cr_assert_eq(close(nf), 0);
			cr_assert_eq(close(x), 0);
			struct timespec ts = { 0, 200 * 1000L };
			nanosleep(&ts, NULL);
			cr_assert_eq(dup2(gens[ngen - 1], x), x);
		} else if (g % 3 == 1) {
			cr_assert_eq(dup2(nf, x), x);
			cr_assert_eq(close(nf), 0);
		} else {
			cr_assert_eq(dup3(nf, x, O_CLOEXEC), x);
			cr_assert_eq(close(nf), 0);
		}
	}
	for (int k = 0; k < 2; k++) {
		__atomic_store_n(&subs[k].stop, 1, __ATOMIC_RELEASE);
		pthread_join(subs[k].self, NULL);
		cr_assert_eq(subs[k].bad, 0, "%s submitter: %s", k ? "libaio" : "POSIX", subs[k].why);
		cr_assert_gt(subs[k].n, 0);
	}

	/* Every record is in one file, once; each file has each submitter's
	 * records in increasing order; every write that succeeded is there. */
	for (int g = 0; g < ngen; g++) {
		off_t size = size_of(gens[g]);
		int64_t last[2] = { -1, -1 };
		cr_assert_eq(size % REC, 0, "file %d: %lld bytes, not whole records", g, (long long)size);
		for (off_t off = 0; off < size; off += REC) {
			struct rec r;
			cr_assert_eq(pread(gens[g], &r, REC, off), REC);
			cr_assert_eq(r.magic, REC_MAGIC, "file %d offset %lld: not a record", g, (long long)off);
			cr_assert(r.who < 2);
			struct submitter *s = &subs[r.who];
			cr_assert(r.seq < s->cap && s->state[r.seq] == ST_DONE,
			          "%s write %" PRIu64 " is in file %d but did not succeed (state %d)",
			          r.who ? "libaio" : "POSIX", r.seq, g,
			          r.seq < s->cap ? s->state[r.seq] : -1);
			if ((int64_t)r.seq < last[r.who]) {
				cr_assert(!strict, "file %d of %d: %s write %" PRIu64
				          " after write %" PRId64 " (records %lld of %lld)", g, ngen,
				          r.who ? "libaio" : "POSIX", r.seq, last[r.who],
				          (long long)(off / REC), (long long)(size / REC));
				disorder++;
			}
			last[r.who] = (int64_t)r.seq;
			s->state[r.seq] = ST_FOUND;
			found[r.who]++;
		}
	}
	for (int k = 0; k < 2; k++) {
		for (size_t q = 0; q < subs[k].cap; q++) {
			cr_assert_neq(subs[k].state[q], ST_DONE, "%s write %zu succeeded but is in no file",
			              k ? "libaio" : "POSIX", q);
			done[k] += subs[k].state[q] == ST_FOUND;
		}
		cr_log_info("%s: %" PRIu64 " requests ended, %" PRIu64 " written", k ? "libaio" : "POSIX",
		            subs[k].n, done[k]);
		cr_assert_eq(found[k], done[k]);
		free(subs[k].state);
	}
	if (disorder)
		cr_log_info("%d records out of order within a file", disorder);
	wait_stats(S.queued == 0 && S.running == 0 && S.submitted == S.completed + S.cancelled,
	           "requests left in the engine");
	close(x);
	for (int g = 0; g < ngen; g++)
		close(gens[g]);
}

Test(fault_close, close_and_reuse_while_threads_submit, .timeout = 120)
{
	close_and_reuse(false);
}

Test(fault_close, close_and_reuse_keeps_each_file_in_order, .timeout = 120)
{
	close_and_reuse(true);
}

/* ---- a number closed for a moment while its file is pinned --------------- */

/* The library's fcntl() comes here first (the program's definition goes
 * before libc's): while dupfd_closed is fd's number, F_DUPFD_CLOEXEC of it
 * at a high base fails with EBADF once, as if the number had been closed
 * for that moment and reopened right after. */
static int dupfd_closed = -1;

int fcntl(int fd, int cmd, ...)
{
	int (*next)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
	int want = fd;
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);   /* as libc's own fcntl reads it */
	va_end(ap);
	if (cmd == F_DUPFD_CLOEXEC && arg > 3 &&
	    __atomic_compare_exchange_n(&dupfd_closed, &want, -1, false,
	                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		errno = EBADF;
		return -1;
	}
	return next(fd, cmd, arg);
}

/* How many of the numbers below 1024 name the file fd names. */
static int low_names_of(int fd)
{
	struct stat want, st;
	int n = 0;

	cr_assert_eq(fstat(fd, &want), 0);
	for (int d = 0; d < 1024; d++)
		if (syscall(SYS_fstat, d, &st) == 0 && st.st_dev == want.st_dev &&
		    st.st_ino == want.st_ino)
			n++;
	return n;
}

/* A write's fd is closed just as its file is pinned (and the number taken
 * again at once): the request ends with EBADF, as on a number closed at
 * submission, and aiopool keeps no duplicate among the low numbers, which
 * programs expect their next open() to get. */
Test(fault_close, number_closed_while_pinned_is_ebadf_and_pins_nothing_low)
{
	int f = temp_file(0, 0);
	char buf[64] = "record";
	struct aiocb cb;

	fill_cb(&cb, f, buf, sizeof buf, 0);
	__atomic_store_n(&dupfd_closed, f, __ATOMIC_SEQ_CST);
	cr_assert_eq(aio_write(&cb), 0);
	wait_until(aio_error(&cb) != EINPROGRESS, "the write never ended");
	cr_assert_eq(__atomic_load_n(&dupfd_closed, __ATOMIC_SEQ_CST), -1,
	             "the file was never pinned");
	cr_assert_eq(aio_error(&cb), EBADF, "the write ended with %s",
	             strerror(aio_error(&cb)));
	cr_assert_eq(aio_return(&cb), -1);
	cr_assert_eq(low_names_of(f), 1, "a duplicate of the file below 1024");
	cr_assert_eq(size_of(f), 0, "the write reached the file");
	close(f);
}
