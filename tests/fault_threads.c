/* fault_threads: thread creation failing.  In a forked child, RLIMIT_NPROC
 * is lowered to the number of tasks the child has, so that pthread_create
 * fails with EAGAIN (root is exempt from the limit, so a root child first
 * becomes a user id of its own, which no other process has).
 *
 * Documented outcome (aio_read(3), io_submit(3), aiopool(7)): a submission
 * either runs on a worker that exists (one waiting on a pipe, socket or tty,
 * maybe for ever, does not count) or fails with EAGAIN and is not queued; nothing hangs and nothing is lost; SIGEV_THREAD notifications
 * still run (on the delivering thread when no notifier can start); POLL
 * requests fail with -EAGAIN when the poller cannot start; and once threads
 * can be created again, the engine works as before.  These run with the
 * fast path off (AIOPOOL_FASTPATH 0), so that every request needs the pool;
 * with it on (the default), a read the page cache serves completes on the
 * submitting thread and needs no thread at all (aiopool(7)), checked too. */
#include "libaio_common.h"

#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static int tasks_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	child_check(d != NULL, "opendir /proc/self/task: %s", strerror(errno));
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static struct rlimit saved_nproc;

static void *nothing(void *arg)
{
	return arg;
}

/* In the child: no task may be created from now on (until nproc_restore).
 * CHILD_SKIP when the child cannot arrange it. */
static void nproc_block(void)
{
	struct rlimit rl;

	if (geteuid() == 0) {
		uid_t uid = (uid_t)(40000 + getpid() % 20000);
		if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
			_exit(CHILD_SKIP);
		/* A set-user-ID change makes /proc/self root's; make it ours. */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	child_check(getrlimit(RLIMIT_NPROC, &saved_nproc) == 0, "failed");
	rl = saved_nproc;
	rl.rlim_cur = (rlim_t)tasks_now();
	if (setrlimit(RLIMIT_NPROC, &rl) != 0)
		_exit(CHILD_SKIP);
	/* Make sure it holds: a thread of our own cannot start either. */
	pthread_t t;
	int err = pthread_create(&t, NULL, nothing, NULL);
	if (err == 0)
		_exit(CHILD_SKIP);   /* the limit does not apply here */
	child_check(err == EAGAIN, "pthread_create: %s", strerror(err));
}

static void nproc_restore(void)
{
	child_check(setrlimit(RLIMIT_NPROC, &saved_nproc) == 0, "%s", strerror(errno));
}

static struct aiopool_stats child_stats(void)
{
	struct aiopool_stats st;

	child_check(aiopool_stats(&st, sizeof st) == 0, "failed");
	return st;
}

/* Collects exactly n events within the deadline. */
static void child_events(io_context_t ctx, struct io_event *ev, int n)
{
	long long end = now_ms() + DEADLINE_MS;
	int got = 0;

	while (got < n) {
		struct timespec t = { 0, 20 * 1000000L };
		int rc = io_getevents(ctx, 1, n - got, ev + got, &t);
		child_check(rc >= 0, "io_getevents: %d", rc);
		got += rc;
		child_check(got == n || now_ms() < end, "%d of %d events", got, n);
	}
}

struct files {
	int file;      /* 64 KiB of pattern() */
	int p[2];      /* an empty pipe */
};

static void open_files(struct files *f)
{
	f->file = temp_file(65536, 0);
	make_pipe(f->p);
}

static int thread_notes;

static void count_note(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&thread_notes, 1, __ATOMIC_SEQ_CST);
}

/* ---- no worker exists ------------------------------------------------------- */

static int no_worker_child(void *arg)
{
	struct files *f = arg;
	struct aiocb cb, l1, l2, *list[2] = { &l1, &l2 };
	unsigned char buf[512], b1[16], b2[16];
	struct iocb io, io2, *ios[2] = { &io, &io2 };
	struct io_event ev[2];
	struct timespec zero = { 0, 0 };
	io_context_t ctx = 0;
	struct aiopool_stats st;

	child_check(aiopool_set(AIOPOOL_FASTPATH, 0) == 0, "failed");
	nproc_block();
	child_check(child_stats().threads == 0, "the child starts without workers");

	/* POSIX: EAGAIN, reported by the aiocb too. */
	fill_cb(&cb, f->file, buf, sizeof buf, 0);
	child_check(aio_read(&cb) == -1 && errno == EAGAIN, "aio_read: %s", strerror(errno));
	child_check(aio_error(&cb) == EAGAIN, "failed");
	child_check(aio_return(&cb) == -1, "failed");
	child_check(aio_write(&cb) == -1 && errno == EAGAIN, "failed");
	child_check(aio_fsync(O_SYNC, &cb) == -1 && errno == EAGAIN, "failed");
	fill_cb(&l1, f->file, b1, sizeof b1, 0);
	fill_cb(&l2, f->p[0], b2, sizeof b2, 0);
	l1.aio_lio_opcode = l2.aio_lio_opcode = LIO_READ;
	child_check(lio_listio(LIO_WAIT, list, 2, NULL) == -1 && errno == EAGAIN,
	            "lio_listio(LIO_WAIT): %s", strerror(errno));
	child_check(aio_error(&l1) == EAGAIN && aio_error(&l2) == EAGAIN, "failed");

	/* libaio: -EAGAIN for the first iocb; nothing is left behind. */
	child_check(io_setup(4, &ctx) == 0, "failed");
	io_prep_pread(&io, f->file, buf, sizeof buf, 0);
	io_prep_pread(&io2, f->file, buf, sizeof buf, 512);
	child_check(io_submit(ctx, 1, ios) == -EAGAIN, "failed");
	child_check(io_submit(ctx, 2, ios) == -EAGAIN, "failed");
	io_prep_poll(&io, f->p[0], POLLIN);
	child_check(io_submit(ctx, 1, ios) == -EAGAIN, "POLL without a poller thread");
	child_check(io_getevents(ctx, 0, 2, ev, &zero) == 0, "no event for refused iocbs");

	st = child_stats();
	child_check(st.threads == 0 && st.queued == 0 && st.running == 0 &&
	            st.submitted == 0 && st.completed == 0,
	            "refused requests left no trace (threads %lu queued %lu running %lu "
	            "submitted %llu)", st.threads, st.queued, st.running, st.submitted);

	/* Threads again: everything works, the same aiocb and iocb included. */
	nproc_restore();
	fill_cb(&cb, f->file, buf, sizeof buf, 1024);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = count_note;
	child_check(aio_read(&cb) == 0, "aio_read after the limit is lifted: %s", strerror(errno));
	child_check(child_wait_aio(&cb) == 0, "failed");
	child_check(aio_return(&cb) == (ssize_t)sizeof buf, "failed");
	for (size_t i = 0; i < sizeof buf; i++)
		child_check(buf[i] == pattern(1024 + (long long)i), "byte %zu", i);
	for (long long end = now_ms() + DEADLINE_MS;
	     !__atomic_load_n(&thread_notes, __ATOMIC_SEQ_CST) && now_ms() < end; )
		sleep_ms(1);
	child_check(thread_notes == 1, "SIGEV_THREAD ran %d times", thread_notes);
	io_prep_pread(&io, f->file, buf, 100, 0);
	child_check(io_submit(ctx, 1, ios) == 1, "failed");
	child_events(ctx, ev, 1);
	child_check(ev[0].obj == &io && (long)ev[0].res == 100, "failed");
	io_prep_poll(&io, f->p[0], POLLIN);
	child_check(io_submit(ctx, 1, ios) == 1, "POLL once the poller can start");
	put(f->p[1], "x", 1);
	child_events(ctx, ev, 1);
	child_check((long)ev[0].res & POLLIN, "failed");
	child_check(io_destroy(ctx) == 0, "failed");
	return 0;
}

Test(fault_threads, no_worker_and_none_can_start_is_eagain)
{
	struct files f;

	open_files(&f);
	run_child(no_worker_child, &f);
}

/* ---- a worker exists ---------------------------------------------------------- */

enum { NREQ = 64, CHUNK = 512 };

static int one_worker_child(void *arg)
{
	struct files *f = arg;
	static struct aiocb cbs[NREQ];
	static unsigned char bufs[NREQ][CHUNK];
	static struct iocb ios[NREQ];
	struct iocb *iop[NREQ];
	struct io_event ev[NREQ];
	struct aiocb pipe_cb, file_cb;
	unsigned char pbuf[1], fbuf[CHUNK];
	io_context_t ctx = 0;
	struct aiopool_stats st;
	int wfd = temp_file(0, 0);

	/* One worker that stays. */
	child_check(aiopool_set(AIOPOOL_FASTPATH, 0) == 0, "failed");
	child_check(aiopool_set(AIOPOOL_IDLE_MS, 600000) == 0, "failed");
	fill_cb(&file_cb, f->file, fbuf, CHUNK, 0);
	child_check(aio_read(&file_cb) == 0, "failed");
	child_check(child_wait_aio(&file_cb) == 0, "failed");
	aio_return(&file_cb);
	child_check(io_setup(NREQ, &ctx) == 0, "failed");
	for (long long end = now_ms() + DEADLINE_MS; child_stats().idle_threads < 1; ) {
		child_check(now_ms() < end, "the worker never went idle");
		sleep_ms(1);
	}
	st = child_stats();
	child_check(st.threads == 1, "%lu workers", st.threads);

	nproc_block();

	/* Reads with SIGEV_THREAD notifications, and writes through libaio:
	 * the one worker runs them all; no notifier thread can start, so the
	 * worker runs the notification functions itself. */
	for (int i = 0; i < NREQ; i++) {
		fill_cb(&cbs[i], f->file, bufs[i], CHUNK, (off_t)i * CHUNK);
		cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
		cbs[i].aio_sigevent.sigev_notify_function = count_note;
		child_check(aio_read(&cbs[i]) == 0, "aio_read %d: %s", i, strerror(errno));
		io_prep_pwrite(&ios[i], wfd, bufs[i], CHUNK, (long long)i * CHUNK);
		iop[i] = &ios[i];
	}
	for (int i = 0; i < NREQ; i++) {
		child_check(child_wait_aio(&cbs[i]) == 0, "read %d", i);
		child_check(aio_return(&cbs[i]) == CHUNK, "failed");
		for (int j = 0; j < CHUNK; j++)
			child_check(bufs[i][j] == pattern((long long)i * CHUNK + j), "read %d byte %d", i, j);
	}
	child_check(io_submit(ctx, NREQ, iop) == NREQ, "failed");
	child_events(ctx, ev, NREQ);
	for (int i = 0; i < NREQ; i++)
		child_check((long)ev[i].res == CHUNK, "write event %d: %ld", i, (long)ev[i].res);
	for (long long end = now_ms() + DEADLINE_MS;
	     __atomic_load_n(&thread_notes, __ATOMIC_SEQ_CST) < NREQ && now_ms() < end; )
		sleep_ms(1);
	child_check(thread_notes == NREQ, "%d SIGEV_THREAD notifications for %d requests",
	            thread_notes, NREQ);
	for (int i = 0; i < NREQ; i++) {
		unsigned char back[CHUNK];
		child_check(pread(wfd, back, CHUNK, (off_t)i * CHUNK) == CHUNK, "failed");
		child_check(memcmp(back, bufs[i], CHUNK) == 0, "write %d", i);
	}

	/* The worker blocked on a pipe, which may never be written: a read on
	 * the file must not be accepted with no worker that can come to it.
	 * It is refused at once, or it runs (POSIX and libaio alike); either
	 * way without the pipe read ending. */
	fill_cb(&pipe_cb, f->p[0], pbuf, 1, 0);
	child_check(aio_read(&pipe_cb) == 0, "failed");
	for (long long end = now_ms() + DEADLINE_MS; child_stats().running < 1; ) {
		child_check(now_ms() < end, "the pipe read never started");
		sleep_ms(1);
	}
	fill_cb(&file_cb, f->file, fbuf, CHUNK, 4096);
	if (aio_read(&file_cb) == 0) {
		child_check(child_wait_aio(&file_cb) == 0 && aio_return(&file_cb) == CHUNK,
		            "accepted while the only worker waits on a pipe: it must run");
		child_check(fbuf[0] == pattern(4096), "failed");
	} else {
		child_check(errno == EAGAIN, "aio_read: %s", strerror(errno));
		child_check(aio_error(&file_cb) == EAGAIN, "failed");
	}
	io_prep_pread(&ios[1], f->file, fbuf, CHUNK, 0);
	iop[1] = &ios[1];
	int rc = io_submit(ctx, 1, iop + 1);
	child_check(rc == 1 || rc == -EAGAIN, "io_submit: %d", rc);
	if (rc == 1) {
		child_events(ctx, ev, 1);
		child_check((long)ev[0].res == CHUNK, "res %ld", (long)ev[0].res);
	}
	put(f->p[1], "z", 1);
	child_check(child_wait_aio(&pipe_cb) == 0 && aio_return(&pipe_cb) == 1, "failed");

	/* POLL needs the poller thread. */
	io_prep_poll(&ios[0], f->p[0], POLLIN);
	child_check(io_submit(ctx, 1, iop) == -EAGAIN, "failed");

	st = child_stats();
	child_check(st.threads == 1 && st.threads_created == 1,
	            "%lu workers, %llu created", st.threads, st.threads_created);
	child_check(st.submitted == st.completed && st.queued == 0 && st.running == 0, "failed");
	child_check(io_destroy(ctx) == 0, "failed");
	return 0;
}

Test(fault_threads, existing_worker_runs_what_is_accepted)
{
	struct files f;

	open_files(&f);
	run_child(one_worker_child, &f);
}

/* ---- threads fail and come back while submitting ------------------------------ */

/* Workers exit at once when idle, so nearly every submission needs a new
 * thread; the limit goes down and up while requests flow.  Each either is
 * refused with EAGAIN or completes with the right bytes. */
static int flapping_child(void *arg)
{
	struct files *f = arg;
	enum { ROUNDS = 400 };
	struct aiocb cb;
	unsigned char buf[CHUNK];
	int refused = 0, done = 0;

	child_check(aiopool_set(AIOPOOL_IDLE_MS, -1) == 0, "failed");
	child_check(aiopool_set(AIOPOOL_FASTPATH, 0) == 0, "failed");
	nproc_block();
	nproc_restore();
	for (int i = 0; i < ROUNDS; i++) {
		struct rlimit rl = saved_nproc;
		off_t off = (off_t)(i % 100) * CHUNK;

		if (i % 2 == 0) {
			rl.rlim_cur = (rlim_t)tasks_now();
			child_check(setrlimit(RLIMIT_NPROC, &rl) == 0, "failed");
		}
		fill_cb(&cb, f->file, buf, CHUNK, off);
		if (aio_read(&cb) != 0) {
			child_check(errno == EAGAIN, "aio_read: %s", strerror(errno));
			child_check(aio_error(&cb) == EAGAIN, "failed");
			refused++;
		} else {
			child_check(child_wait_aio(&cb) == 0, "round %d", i);
			child_check(aio_return(&cb) == CHUNK, "failed");
			child_check(buf[7] == pattern(off + 7), "failed");
			done++;
		}
		nproc_restore();
	}
	child_check(done > 0, "no request ran in %d rounds", ROUNDS);
	struct aiopool_stats st = child_stats();
	child_check(st.submitted == (unsigned long long)done && st.completed == st.submitted,
	            "%llu submitted, %llu completed, %d done", st.submitted, st.completed, done);
	return 0;
}

Test(fault_threads, limit_going_up_and_down)
{
	struct files f;

	open_files(&f);
	run_child(flapping_child, &f);
}

/* ---- the fast path needs no thread ---------------------------------------------- */

/* With the fast path on, a read the page cache serves in full completes
 * inside aio_read, notification included, with no worker; what the cache
 * cannot serve (a pipe) still needs one, and is refused. */
static int fastpath_child(void *arg)
{
	struct files *f = arg;
	struct aiocb cb, pcb;
	struct iocb io, *ios[1] = { &io };
	struct io_event ev;
	unsigned char buf[CHUNK], c;
	io_context_t ctx = 0;
	struct aiopool_stats st;

	child_check(aiopool_set(AIOPOOL_FASTPATH, 1) == 0, "failed");
	child_check(io_setup(4, &ctx) == 0, "failed");
	nproc_block();
	for (int i = 0; i < 8; i++) {
		fill_cb(&cb, f->file, buf, CHUNK, (off_t)i * CHUNK);   /* cached: just written */
		cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
		cb.aio_sigevent.sigev_notify_function = count_note;
		child_check(aio_read(&cb) == 0, "a cached read needs no thread: %s", strerror(errno));
		child_check(child_wait_aio(&cb) == 0 && aio_return(&cb) == CHUNK, "read %d", i);
		child_check(buf[3] == pattern((long long)i * CHUNK + 3), "read %d: wrong bytes", i);
		child_check(__atomic_load_n(&thread_notes, __ATOMIC_SEQ_CST) == i + 1,
		            "read %d: %d notifications", i, thread_notes);
		io_prep_pread(&io, f->file, buf, CHUNK, (long long)i * CHUNK);
		child_check(io_submit(ctx, 1, ios) == 1, "io_submit of a cached read");
		child_check(io_getevents(ctx, 1, 1, &ev, &(struct timespec){ 0, 0 }) == 1,
		            "its event is there when io_submit returns");
		child_check((long)ev.res == CHUNK, "res %ld", (long)ev.res);
	}
	fill_cb(&pcb, f->p[0], &c, 1, 0);
	child_check(aio_read(&pcb) == -1 && errno == EAGAIN, "a pipe read needs a worker");
	st = child_stats();
	child_check(st.threads == 0 && st.threads_created == 0, "%lu workers", st.threads);
	child_check(st.fastpath >= 16 && st.submitted == st.completed, "fastpath %llu",
	            st.fastpath);
	child_check(io_destroy(ctx) == 0, "failed");
	return 0;
}

Test(fault_threads, fast_path_needs_no_thread)
{
	struct files f;

	open_files(&f);
	run_child(fastpath_child, &f);
}
