/* posix_fork: after fork() the child has a clean engine.  New requests
 * work on every fd, also those that had requests in flight in the parent
 * (glibc's child wedges them), and the aiocbs the parent had in flight are
 * reported in the child as cancelled (ECANCELED, aio_return -1), as
 * documented.  The parent's requests are not disturbed. */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_fork, .timeout = 60);

struct scene {
	int p[2];          /* a pipe: one read running, one queued behind it */
	int fd;            /* a regular file: reads queued, no worker free */
	char pbuf[2][4];
	char fbuf[3][64];
	struct aiocb pr[2], fr[3];
	struct blocker b;  /* keeps one of the parent's two workers busy */
};

static int child_calls;

static void child_notified(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&child_calls, 1, __ATOMIC_RELEASE);
}

static int in_child(void *arg)
{
	struct scene *s = arg;
	struct aiopool_stats st;
	struct aiocb r, pr, f;
	char buf[64], pb[4];
	const struct aiocb *list[] = { &s->pr[0], &s->fr[0] };
	long long end = now_ms() + DEADLINE_MS;

	/* A clean engine. */
	child_check(aiopool_stats(&st, sizeof st) == 0, "stats");
	child_check(st.threads == 0 && st.queued == 0 && st.running == 0,
	            "threads %lu queued %lu running %lu", st.threads, st.queued, st.running);
	child_check(st.submitted == 0 && st.completed == 0, "counters start again");

	/* What the parent had in flight is cancelled here, running or not. */
	for (int i = 0; i < 2; i++) {
		child_check(aio_error(&s->pr[i]) == ECANCELED, "pipe read %d: %d", i,
		            aio_error(&s->pr[i]));
		child_check(aio_return(&s->pr[i]) == -1, "pipe read %d", i);
	}
	for (int i = 0; i < 3; i++) {
		child_check(aio_error(&s->fr[i]) == ECANCELED, "file read %d", i);
		child_check(aio_return(&s->fr[i]) == -1, "file read %d", i);
	}
	child_check(aio_error(&s->b.cb) == ECANCELED, "the blocker");
	child_check(aio_suspend(list, 2, NULL) == 0, "nothing to wait for");
	child_check(aio_cancel(s->p[0], NULL) == AIO_ALLDONE, "nothing in flight on the pipe");
	child_check(aio_cancel(s->fd, NULL) == AIO_ALLDONE, "nothing in flight on the file");

	/* New requests on the same fds work. */
	fill_cb(&f, s->fd, buf, sizeof buf, 64);
	child_check(aio_read(&f) == 0, "aio_read: %s", strerror(errno));
	child_check(child_wait_aio(&f) == 0, "file read");
	child_check(aio_return(&f) == 64, "file read");
	for (int i = 0; i < 64; i++)
		child_check((unsigned char)buf[i] == pattern(64 + i), "byte %d", i);

	/* The parent's reads still wait on the same pipe: write for all
	 * three, and whichever third this read gets, it completes. */
	fill_cb(&pr, s->p[0], pb, 4, 0);
	pr.aio_sigevent.sigev_notify = SIGEV_THREAD;
	pr.aio_sigevent.sigev_notify_function = child_notified;
	child_check(aio_read(&pr) == 0, "aio_read: %s", strerror(errno));
	child_check(write(s->p[1], "AAAABBBBCCCC", 12) == 12, "write");
	child_check(child_wait_aio(&pr) == 0, "pipe read in the child");
	child_check(aio_return(&pr) == 4, "pipe read in the child");
	child_check(!memcmp(pb, "AAAA", 4) || !memcmp(pb, "BBBB", 4) || !memcmp(pb, "CCCC", 4),
	            "got %.4s", pb);
	while (__atomic_load_n(&child_calls, __ATOMIC_ACQUIRE) != 1) {
		child_check(now_ms() < end, "no SIGEV_THREAD notification in the child");
		sleep_ms(1);
	}

	/* The parent's blocker pipe too. */
	fill_cb(&r, s->b.p[0], buf, 1, 0);
	child_check(write(s->b.p[1], "cc", 2) == 2, "write");
	child_check(aio_read(&r) == 0, "aio_read: %s", strerror(errno));
	child_check(child_wait_aio(&r) == 0, "blocker pipe read in the child");
	return 0;
}

Test(posix_fork, child_gets_a_clean_engine)
{
	struct scene s;

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	/* Both of the parent's workers busy: the file reads stay queued. */
	one_busy_worker(&s.b);
	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 2), 0);
	make_pipe(s.p);
	s.fd = temp_file(65536, 0);
	for (int i = 0; i < 2; i++) {
		fill_cb(&s.pr[i], s.p[0], s.pbuf[i], 4, 0);
		cr_assert_eq(aio_read(&s.pr[i]), 0);
	}
	wait_stats(S.running == 2 && S.queued == 1, "blocker and one pipe read run");
	for (int i = 0; i < 3; i++) {
		fill_cb(&s.fr[i], s.fd, s.fbuf[i], 64, i * 64);
		cr_assert_eq(aio_read(&s.fr[i]), 0);
	}
	wait_stats(S.running == 2 && S.queued == 4, "the file reads wait for a worker");

	run_child(in_child, &s);

	/* The parent's requests carry on, on the bytes the child wrote for
	 * them: one of the blocker pipe's two, eight of the other's twelve. */
	cr_assert_eq(wait_aio(&s.b.cb), 0, "the parent's blocker");
	cr_assert_eq(wait_aio(&s.pr[0]), 0, "the parent's running pipe read");
	cr_assert_eq(wait_aio(&s.pr[1]), 0, "the parent's queued pipe read");
	for (int i = 0; i < 2; i++)
		cr_assert_eq(aio_return(&s.pr[i]), 4);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(wait_aio(&s.fr[i]), 0);
		cr_assert_eq(aio_return(&s.fr[i]), 64);
	}
	close(s.p[0]);
	close(s.p[1]);
	close(s.fd);
}

static int many_in_child(void *arg)
{
	int fd = *(int *)arg;
	static char bufs[64][256];
	static struct aiocb cbs[64];
	struct aiopool_stats st;

	for (int i = 0; i < 64; i++) {
		fill_cb(&cbs[i], fd, bufs[i], 256, i * 256);
		child_check(aio_read(&cbs[i]) == 0, "read %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < 64; i++) {
		child_check(child_wait_aio(&cbs[i]) == 0, "read %d", i);
		child_check(aio_return(&cbs[i]) == 256, "read %d", i);
		for (int j = 0; j < 256; j++)
			child_check((unsigned char)bufs[i][j] == pattern(i * 256 + j),
			            "read %d byte %d", i, j);
	}
	child_check(aiopool_stats(&st, sizeof st) == 0, "stats");
	child_check(st.submitted == 64 && st.completed == 64,
	            "submitted %llu completed %llu", st.submitted, st.completed);
	return 0;
}

Test(posix_fork, child_runs_many_requests_while_the_parents_worker_is_busy)
{
	struct blocker b;
	int fd = temp_file(1 << 16, 0);

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	one_busy_worker(&b);   /* the parent's pool is full */
	run_child(many_in_child, &fd);
	blocker_release(&b);
	close(fd);
}

/* The child's close() cancels what is queued on the fd, as the parent's
 * does: the fork leaves its thread holding no aiopool lock. */
static int close_in_child(void *arg)
{
	struct aiocb busy, queued;
	struct aiopool_stats st;
	long long end = now_ms() + DEADLINE_MS;
	int p[2], q[2];
	char b1, b2;

	(void)arg;
	child_check(aiopool_set(AIOPOOL_MAX_THREADS, 1) == 0, "one worker");
	child_check(pipe(p) == 0 && pipe(q) == 0, "pipe: %s", strerror(errno));
	fill_cb(&busy, p[0], &b1, 1, 0);
	child_check(aio_read(&busy) == 0, "aio_read: %s", strerror(errno));
	do {
		child_check(now_ms() < end, "the blocking read never started");
		child_check(aiopool_stats(&st, sizeof st) == 0, "stats");
	} while (st.running != 1);
	fill_cb(&queued, q[0], &b2, 1, 0);
	child_check(aio_read(&queued) == 0, "aio_read: %s", strerror(errno));
	child_check(close(q[0]) == 0, "close: %s", strerror(errno));
	child_check(aio_error(&queued) == ECANCELED, "the queued read: %s",
	            strerror(aio_error(&queued)));
	child_check(write(p[1], "x", 1) == 1, "write");
	child_check(child_wait_aio(&busy) == 0, "the blocking read");
	return 0;
}

Test(posix_fork, close_in_child_cancels_queued_requests)
{
	run_child(close_in_child, NULL);
}
