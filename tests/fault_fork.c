/* fault_fork: fork() while requests are in flight and other threads are
 * submitting, through both front ends.  Documented outcome (aiopool(7),
 * "fork"): the child starts with an empty engine (no worker, nothing
 * queued, counters at 0); the parent's requests are not executed there and
 * their aiocbs report ECANCELED (but for one a thread was in the middle of
 * submitting, which the child does not have); the parent's contexts are
 * -EINVAL in the child; new requests in the child work on every fd, with
 * notifications; the parent is not affected: everything it submitted
 * completes with the right result. */
#include "libaio_common.h"

enum { DEPTH = 8, CHUNK = 512, FILE_SIZE = 1 << 20 };

/* Under LeakSanitizer, a child that calls exit() would report what the
 * parent's vanished threads held (a request half submitted) and the
 * parent's contexts, which the child forgets by design: not leaks of the
 * child's own.  Its leak check is off in children (the hook is LSan's). */
static bool in_child;
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_child;
}

struct loader {
	pthread_t self;
	int kind;                /* 0: POSIX reads, 1: libaio reads and writes */
	int fd, wfd;
	int stop;
	io_context_t ctx;
	struct aiocb cbs[DEPTH];
	unsigned char bufs[DEPTH][CHUNK];
	long done;
	int bad;
	char why[128];
};

static void loader_fail(struct loader *l, const char *msg, long a)
{
	if (!l->bad++)
		snprintf(l->why, sizeof l->why, "%s %ld", msg, a);
}

static bool stopping(struct loader *l)
{
	return __atomic_load_n(&l->stop, __ATOMIC_ACQUIRE);
}

/* POSIX reads at random offsets, checked, DEPTH in flight. */
static void *posix_loader(void *arg)
{
	struct loader *l = arg;
	off_t off[DEPTH];
	bool busy[DEPTH] = { false };
	unsigned seed = 1;
	long long end = now_ms() + 8 * DEADLINE_MS;

	for (;;) {
		bool any = false;
		for (int i = 0; i < DEPTH; i++) {
			if (busy[i]) {
				int e = aio_error(&l->cbs[i]);
				if (e == EINPROGRESS) {
					any = true;
					continue;
				}
				if (e != 0 || aio_return(&l->cbs[i]) != CHUNK)
					loader_fail(l, "read failed, error", e);
				else if (l->bufs[i][17] != pattern(off[i] + 17))
					loader_fail(l, "wrong bytes at", (long)off[i]);
				busy[i] = false;
				l->done++;
			}
			if (stopping(l))
				continue;
			seed = seed * 1103515245 + 12345;
			off[i] = (off_t)((seed >> 8) % (FILE_SIZE / CHUNK)) * CHUNK;
			fill_cb(&l->cbs[i], l->fd, l->bufs[i], CHUNK, off[i]);
			if (aio_read(&l->cbs[i]) != 0)
				loader_fail(l, "aio_read errno", errno);
			else
				busy[i] = any = true;
		}
		if (!any && stopping(l))
			break;
		if (now_ms() > end) {
			loader_fail(l, "requests never ended", 0);
			break;
		}
		const struct aiocb *list[DEPTH];
		for (int i = 0; i < DEPTH; i++)
			list[i] = busy[i] ? &l->cbs[i] : NULL;
		aio_suspend(list, DEPTH, &(struct timespec){ 0, 5 * 1000000L });
	}
	return NULL;
}

/* libaio: writes of a known block to wfd, and reads of the file. */
static void *libaio_loader(void *arg)
{
	struct loader *l = arg;
	struct iocb ios[DEPTH];
	bool busy[DEPTH] = { false };
	off_t off[DEPTH];
	int inflight = 0;
	unsigned seed = 7;
	long long end = now_ms() + 8 * DEADLINE_MS;

	for (;;) {
		struct io_event ev[DEPTH];
		struct timespec t = { 0, 5 * 1000000L };

		for (int i = 0; i < DEPTH && !stopping(l); i++) {
			struct iocb *one = &ios[i];
			if (busy[i])
				continue;
			seed = seed * 1103515245 + 12345;
			off[i] = (off_t)((seed >> 8) % 256) * CHUNK;
			if (i % 2) {
				io_prep_pread(&ios[i], l->fd, l->bufs[i], CHUNK, off[i]);
			} else {
				memset(l->bufs[i], 'W', CHUNK);
				io_prep_pwrite(&ios[i], l->wfd, l->bufs[i], CHUNK, off[i]);
			}
			ios[i].data = (void *)(uintptr_t)i;
			int rc = io_submit(l->ctx, 1, &one);
			if (rc != 1)
				loader_fail(l, "io_submit", rc);
			else {
				busy[i] = true;
				inflight++;
			}
		}
		if (!inflight && stopping(l))
			break;
		int n = io_getevents(l->ctx, 1, DEPTH, ev, &t);
		for (int k = 0; k < n; k++) {
			int i = (int)(uintptr_t)ev[k].data;
			if ((long)ev[k].res != CHUNK)
				loader_fail(l, "libaio res", (long)ev[k].res);
			else if (i % 2 && l->bufs[i][9] != pattern(off[i] + 9))
				loader_fail(l, "libaio read: wrong bytes at", (long)off[i]);
			busy[i] = false;
			inflight--;
			l->done++;
		}
		if (now_ms() > end) {
			loader_fail(l, "events never came", inflight);
			break;
		}
	}
	return NULL;
}

static int note_ran;

static void child_note(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&note_ran, 1, __ATOMIC_SEQ_CST);
}

/* In the child: a clean engine that works. */
static int check_child(struct loader *ls, int nloaders, int pfd[2], bool use_exit)
{
	struct aiopool_stats st;
	struct aiocb cb, l1, l2, *list[2] = { &l1, &l2 };
	unsigned char buf[CHUNK], b1[8], b2[8];
	struct iocb io, *iop[1] = { &io };
	struct io_event ev;
	io_context_t mine = 0;
	int stuck = 0;

	child_check(aiopool_stats(&st, sizeof st) == 0, "failed");
	child_check(st.threads == 0 && st.idle_threads == 0 && st.queued == 0 &&
	            st.running == 0 && st.submitted == 0 && st.completed == 0,
	            "the child's engine is not empty: threads %lu queued %lu running %lu "
	            "submitted %llu", st.threads, st.queued, st.running, st.submitted);
	/* The parent's aiocbs: done before the fork, or ECANCELED; one may
	 * have been half submitted by the thread the child lacks. */
	for (int k = 0; k < nloaders; k++)
		if (ls[k].kind == 0)
			for (int i = 0; i < DEPTH; i++) {
				int e = aio_error(&ls[k].cbs[i]);
				stuck += e == EINPROGRESS;
				child_check(e == EINPROGRESS || e == 0 || e == ECANCELED || e == EINVAL,
				            "a parent's aiocb reports %s", strerror(e));
			}
	child_check(stuck <= 1, "%d of the parent's aiocbs still in progress", stuck);
	/* The parent's context is not ours. */
	for (int k = 0; k < nloaders; k++)
		if (ls[k].kind == 1) {
			io_prep_pread(&io, ls[k].fd, buf, 1, 0);
			child_check(io_submit(ls[k].ctx, 1, iop) == -EINVAL, "failed");
		}

	/* New requests work, on the same fds, with notifications. */
	fill_cb(&cb, ls[0].fd, buf, CHUNK, 3 * CHUNK);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = child_note;
	child_check(aio_read(&cb) == 0, "aio_read in the child: %s", strerror(errno));
	child_check(child_wait_aio(&cb) == 0 && aio_return(&cb) == CHUNK, "failed");
	child_check(buf[5] == pattern(3 * CHUNK + 5), "failed");
	/* Sleeps between looks: a spinning child would take the CPU from the
	 * notifier it waits for. */
	for (long long end = now_ms() + DEADLINE_MS; !__atomic_load_n(&note_ran, __ATOMIC_SEQ_CST); sleep_ms(1))
		child_check(now_ms() < end, "SIGEV_THREAD never ran in the child");
	fill_cb(&l1, pfd[1], (void *)"pipe", 4, 0);
	l1.aio_lio_opcode = LIO_WRITE;
	fill_cb(&l2, ls[0].fd, b2, sizeof b2, 64);
	l2.aio_lio_opcode = LIO_READ;
	child_check(lio_listio(LIO_WAIT, list, 2, NULL) == 0, "lio_listio: %s", strerror(errno));
	child_check(read(pfd[0], b1, 4) == 4 && memcmp(b1, "pipe", 4) == 0, "failed");
	child_check(b2[0] == pattern(64), "failed");
	child_check(io_setup(4, &mine) == 0, "failed");
	io_prep_pread(&io, ls[0].fd, buf, 100, 200);
	child_check(io_submit(mine, 1, iop) == 1, "failed");
	child_check(io_getevents(mine, 1, 1, &ev, &(struct timespec){ DEADLINE_MS / 1000, 0 }) == 1, "failed");
	child_check((long)ev.res == 100 && buf[0] == pattern(200), "failed");
	child_check(io_destroy(mine) == 0, "failed");
	if (use_exit)
		exit(0);   /* the library's exit handling, with the parent's orphans */
	return 0;
}

/* The child makes up to CHILD_STEPS waits of up to DEADLINE_MS each, with
 * the parent's loaders and their workers running: on a machine with twice
 * as many runnable threads as CPUs each can take seconds.  The parent
 * waits for all of them, and fails the test only when the child is stuck
 * past that. */
enum { CHILD_STEPS = 5 };

static int wait_child_steps(pid_t pid)
{
	return wait_child_within(pid, CHILD_STEPS * DEADLINE_MS);
}

Test(fault_fork, fork_while_threads_submit, .timeout = 600)
{
	enum { FORKS = 24 };
	struct loader *ls;
	int fd, wfd, pfd[2];

#ifdef AIOPOOL_TEST_SANITIZED
	/* This AddressSanitizer takes no lock of its allocator at fork: a
	 * fork while another thread allocates leaves that lock held in the
	 * child, whose first new thread then waits for it forever.  Here the
	 * loaders allocate all the time; plain builds run the test. */
	cr_skip_test("AddressSanitizer's allocator is not fork-safe; see docs/reliability.md");
#endif
	ls = calloc(2, sizeof *ls);
	fd = temp_file(FILE_SIZE, 0);
	wfd = temp_file(0, 0);

	make_pipe(pfd);
	ls[0] = (struct loader){ .kind = 0, .fd = fd };
	ls[1] = (struct loader){ .kind = 1, .fd = fd, .wfd = wfd, .ctx = new_ctx(DEPTH) };
	cr_assert_eq(pthread_create(&ls[0].self, NULL, posix_loader, &ls[0]), 0);
	cr_assert_eq(pthread_create(&ls[1].self, NULL, libaio_loader, &ls[1]), 0);
	for (int f = 0; f < FORKS; f++) {
		pid_t pid;
		int status;

		sleep_ms(5 + f % 7);
		fflush(NULL);
		pid = fork();
		cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			in_child = true;
			_exit(check_child(ls, 2, pfd, f % 2));
		}
		status = wait_child_steps(pid);
		cr_assert(WIFEXITED(status), "child %d died: signal %d", f, WTERMSIG(status));
		cr_assert_eq(WEXITSTATUS(status), 0, "child %d failed (see its message)", f);
	}
	for (int k = 0; k < 2; k++) {
		__atomic_store_n(&ls[k].stop, 1, __ATOMIC_RELEASE);
		pthread_join(ls[k].self, NULL);
		cr_assert_eq(ls[k].bad, 0, "parent's %s loader: %s", k ? "libaio" : "POSIX", ls[k].why);
		cr_assert_gt(ls[k].done, 0);
		cr_log_info("%s loader: %ld requests", k ? "libaio" : "POSIX", ls[k].done);
	}
	wait_stats(S.queued == 0 && S.running == 0 && S.submitted == S.completed + S.cancelled,
	           "the parent's engine has requests left");
	cr_assert_eq(io_destroy(ls[1].ctx), 0);
	free(ls);
	close(fd);
	close(wfd);
	close(pfd[0]);
	close(pfd[1]);
}

/* fork() from a SIGEV_THREAD notification function (a notifier thread):
 * the child's engine is clean and works; the parent's notification
 * returns and the parent goes on. */
static int nfd;
static pid_t forked;
static int fork_status = -1;

static void fork_in_note(union sigval v)
{
	pid_t pid;

	(void)v;
	pid = fork();
	if (pid == 0) {
		struct aiocb cb;
		char buf[16];
		struct aiopool_stats st;
		child_check(aiopool_stats(&st, sizeof st) == 0 && st.threads == 0, "failed");
		fill_cb(&cb, nfd, buf, sizeof buf, 32);
		child_check(aio_read(&cb) == 0, "failed");
		child_check(child_wait_aio(&cb) == 0 && aio_return(&cb) == 16, "failed");
		child_check(buf[0] == (char)pattern(32), "failed");
		_exit(0);
	}
	__atomic_store_n(&forked, pid, __ATOMIC_SEQ_CST);
}

Test(fault_fork, fork_from_a_notification)
{
	struct aiocb cb, after;
	char buf[16];

	nfd = temp_file(4096, 0);
	fill_cb(&cb, nfd, buf, sizeof buf, 0);
	cb.aio_sigevent.sigev_notify = SIGEV_THREAD;
	cb.aio_sigevent.sigev_notify_function = fork_in_note;
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	wait_until(__atomic_load_n(&forked, __ATOMIC_SEQ_CST) != 0, "the notification never ran");
	cr_assert_gt(forked, 0, "fork in the notification failed");
	fork_status = wait_child(forked);
	cr_assert(WIFEXITED(fork_status) && WEXITSTATUS(fork_status) == 0,
	          "the child forked by the notifier failed: status %#x", fork_status);
	/* The parent is unaffected. */
	fill_cb(&after, nfd, buf, sizeof buf, 100);
	cr_assert_eq(aio_read(&after), 0);
	cr_assert_eq(wait_aio(&after), 0);
	cr_assert_eq(buf[0], (char)pattern(100));
	close(nfd);
}

/* A child of a child, each forked with requests in flight. */
static int grandchild_fd;

static int generation(void *arg)
{
	int depth = *(int *)arg;
	struct aiocb cbs[4];
	char bufs[4][64];
	int p[2];

	child_check(pipe(p) == 0, "failed");
	for (int i = 0; i < 4; i++) {
		fill_cb(&cbs[i], i == 3 ? p[0] : grandchild_fd, bufs[i], 64, i * 64);
		child_check(aio_read(&cbs[i]) == 0, "failed");   /* the pipe read never ends */
	}
	if (depth < 3) {
		int next = depth + 1, status;
		fflush(NULL);
		pid_t pid = fork();
		child_check(pid >= 0, "failed");
		if (pid == 0)
			_exit(generation(&next));
		for (int i = 0; i < 3; i++)
			child_check(child_wait_aio(&cbs[i]) == 0, "generation %d read %d", depth, i);
		child_check(waitpid(pid, &status, 0) == pid, "failed");
		child_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "generation %d's child", depth);
	} else {
		for (int i = 0; i < 3; i++)
			child_check(child_wait_aio(&cbs[i]) == 0, "generation %d read %d", depth, i);
	}
	for (int i = 0; i < 3; i++)
		child_check(bufs[i][1] == (char)pattern(i * 64 + 1), "failed");
	child_check(aio_error(&cbs[3]) == EINPROGRESS, "failed");
	return 0;
}

Test(fault_fork, generations_of_children)
{
	int depth = 0;

	grandchild_fd = temp_file(4096, 0);
	run_child(generation, &depth);
	close(grandchild_fd);
}

/* fork() after a close(): a request still running on the closed fd is in
 * no fd's queue, but the child has no worker for it either.  It ends in the
 * child as every parent's request does (ECANCELED), not in progress
 * forever; the parent's finishes there on its file. */
static struct aiocb closed_cb;

static int child_sees_the_closed_fds_request(void *arg)
{
	(void)arg;
	in_child = true;
	/* Within half the parent's deadline, to fail with this message. */
	for (long long end = now_ms() + DEADLINE_MS / 2; aio_error(&closed_cb) == EINPROGRESS; sleep_ms(1))
		child_check(now_ms() < end, "the request on the fd closed before the fork "
		            "is still in progress in the child");
	child_check(aio_error(&closed_cb) == ECANCELED, "the request on the closed fd: %s",
	            strerror(aio_error(&closed_cb)));
	child_check(aio_return(&closed_cb) == -1, "failed");
	return 0;
}

Test(fault_fork, fork_after_closing_an_fd_with_a_running_request)
{
	struct uffd u;
	int fd = temp_file(0, 0), keep = dup(fd);
	struct stat st;

	UFFD_OR_SKIP(&u, 1);
	fill_cb(&closed_cb, fd, uffd_page(&u, 0), 1, 0);
	cr_assert_eq(aio_write(&closed_cb), 0);
	uffd_next_fault(&u);   /* the worker is inside pwrite() */
	cr_assert_eq(close(fd), 0);
	run_child(child_sees_the_closed_fds_request, NULL);
	uffd_release(&u, 0, 'f');
	cr_assert_eq(wait_aio(&closed_cb), 0);
	cr_assert_eq(aio_return(&closed_cb), 1);
	cr_assert_eq(fstat(keep, &st), 0);
	cr_assert_eq(st.st_size, 1, "the parent's write reached its file");
	close(keep);
	close(u.fd);
	munmap(u.base, u.pagesz);
	free(u.seen);
	free(u.src);
}
