/* posix_pool: the worker pool seen through the POSIX front end and the
 * stats: aio_init retuning it at any time, the thread bound, idle workers
 * exiting, workers blocking every signal, the environment variables (read
 * at load time, so checked in a helper program, tests/posix_envprobe), and
 * thread-creation failure, which must never lose a request.
 *
 * The reads that keep workers busy are on empty pipes, each its own: a
 * pipe's requests run one at a time, and a worker blocked on one is
 * waiting for a peer, so the pool may add another. */
#include "common.h"

#include <sys/resource.h>

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_pool, .timeout = 60);

enum { MAXP = 8 };

struct load {
	int n;
	int p[MAXP][2];
	char buf[MAXP];
	struct aiocb cb[MAXP];
};

static void load_start(struct load *l, int n)
{
	l->n = n;
	for (int i = 0; i < n; i++) {
		make_pipe(l->p[i]);
		fill_cb(&l->cb[i], l->p[i][0], &l->buf[i], 1, 0);
		cr_assert_eq(aio_read(&l->cb[i]), 0, "aio_read: %s", strerror(errno));
	}
}

static void load_finish(struct load *l)
{
	for (int i = 0; i < l->n; i++)
		put(l->p[i][1], "x", 1);
	for (int i = 0; i < l->n; i++) {
		cr_assert_eq(wait_aio(&l->cb[i]), 0);
		cr_assert_eq(aio_return(&l->cb[i]), 1);
		close(l->p[i][0]);
		close(l->p[i][1]);
	}
}

static void first_request(void)
{
	int fd = temp_file(4096, 0);
	char buf[64];
	struct aiocb cb;

	fill_cb(&cb, fd, buf, sizeof buf, 0);
	cr_assert_eq(aio_read(&cb), 0);
	cr_assert_eq(wait_aio(&cb), 0);
	close(fd);
}

/* ---- aio_init and the thread bound ------------------------------------------ */

Test(posix_pool, aio_init_retunes_the_pool_after_the_first_request)
{
	struct aioinit init;
	struct load l;

	first_request();   /* glibc ignores aio_init from here on; we do not */
	memset(&init, 0, sizeof init);
	init.aio_threads = 2;
	init.aio_num = 17;
	init.aio_idle_time = 3;
	aio_init(&init);
	cr_assert_eq(aiopool_get(AIOPOOL_MAX_THREADS), 2);
	cr_assert_eq(aiopool_get(AIOPOOL_CACHE), 17);
	cr_assert_eq(aiopool_get(AIOPOOL_IDLE_MS), 3000);

	load_start(&l, 6);
	wait_stats(S.running == 2 && S.queued == 4, "two of six run");
	sleep_ms(SETTLE_MS);
	wait_stats(S.threads == 2 && S.running == 2, "still two");

	/* More threads: the queued reads start at once. */
	init.aio_threads = 4;
	aio_init(&init);
	wait_stats(S.running == 4 && S.queued == 2, "four of six run");
	sleep_ms(SETTLE_MS);
	wait_stats(S.threads == 4 && S.running == 4, "still four");
	load_finish(&l);

	/* Fewer: the extra workers leave. */
	init.aio_threads = 1;
	aio_init(&init);
	wait_stats(S.threads <= 1, "down to one worker");
	load_start(&l, 3);
	wait_stats(S.running == 1 && S.queued == 2, "one of three runs");
	load_finish(&l);
}

Test(posix_pool, aio_init_zero_fields_keep_their_knobs)
{
	struct aioinit init;

	cr_assert_eq(aiopool_set(AIOPOOL_CACHE, 33), 0);
	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 4321), 0);
	memset(&init, 0, sizeof init);
	init.aio_threads = 5;
	aio_init(&init);
	cr_assert_eq(aiopool_get(AIOPOOL_MAX_THREADS), 5);
	cr_assert_eq(aiopool_get(AIOPOOL_CACHE), 33, "aio_num 0 keeps the cache");
	cr_assert_eq(aiopool_get(AIOPOOL_IDLE_MS), 4321, "aio_idle_time 0 keeps the idle time");
	init.aio_threads = 0;   /* as glibc: raised to 1 */
	aio_init(&init);
	cr_assert_eq(aiopool_get(AIOPOOL_MAX_THREADS), 1);
}

Test(posix_pool, max_threads_bounds_the_pool)
{
	struct load l;

	cr_assert_eq(aiopool_set(AIOPOOL_MAX_THREADS, 3), 0);
	load_start(&l, 7);
	wait_stats(S.running == 3 && S.queued == 4, "three of seven run");
	sleep_ms(SETTLE_MS);
	wait_stats(S.threads == 3 && S.running == 3, "still three");
	cr_assert_leq(stats_now().threads_created, 3);
	load_finish(&l);
}

/* ---- idle workers --------------------------------------------------------------- */

Test(posix_pool, idle_workers_exit)
{
	int base = count_tasks();
	struct load l;

	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 50), 0);
	load_start(&l, 4);
	wait_stats(S.running == 4, "four workers busy");
	cr_assert_gt(count_tasks(), base);
	load_finish(&l);
	wait_stats(S.threads == 0 && S.idle_threads == 0, "every idle worker exits");
	wait_until(count_tasks() == base, "the threads are really gone: %d tasks, %d before",
	           count_tasks(), base);
	/* And the pool starts again when needed. */
	load_start(&l, 2);
	wait_stats(S.running == 2, "two workers again");
	load_finish(&l);
}

Test(posix_pool, shorter_idle_time_applies_to_idle_workers)
{
	struct load l;

	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 3600 * 1000), 0);
	load_start(&l, 3);
	wait_stats(S.running == 3, "three workers busy");
	load_finish(&l);
	/* At least three: the pool may start a spare while workers block. */
	wait_stats(S.threads >= 3 && S.idle_threads == S.threads, "idle workers");
	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, 10), 0);
	wait_stats(S.threads == 0, "idle workers exit after the new idle time");
}

Test(posix_pool, idle_time_minus_one_exits_at_once)
{
	struct load l;

	cr_assert_eq(aiopool_set(AIOPOOL_IDLE_MS, -1), 0);
	load_start(&l, 2);
	wait_stats(S.running == 2, "two workers busy");
	load_finish(&l);
	wait_stats(S.threads == 0, "no worker waits for more work");
}

/* ---- signals ----------------------------------------------------------------------- */

static unsigned long long sigblk(int tid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return ~0ULL;   /* gone meanwhile */
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask;
}

/* This process's thread ids, into tids[max]; how many. */
static int list_tasks(int *tids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.')
			tids[n++] = atoi(e->d_name);
	closedir(d);
	return n;
}

Test(posix_pool, workers_block_every_signal)
{
	int before[64], now[64], nbefore, nnow, nworkers = 0;
	unsigned long long want = 0;
	struct load l;

	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP && s != 32 && s != 33)  /* 32, 33: glibc's own */
			want |= 1ULL << (s - 1);
	nbefore = list_tasks(before, 64);
	load_start(&l, 3);
	wait_stats(S.running == 3, "three workers busy");
	nnow = list_tasks(now, 64);
	for (int i = 0; i < nnow; i++) {
		bool old = false;
		for (int j = 0; j < nbefore; j++)
			old |= now[i] == before[j];
		if (old)
			continue;
		nworkers++;
		cr_assert_eq(sigblk(now[i]) & want, want,
		             "thread %d blocks only %llx", now[i], sigblk(now[i]));
	}
	cr_assert_geq(nworkers, 3);
	load_finish(&l);
}

/* ---- environment variables ----------------------------------------------------------- */

static const char *const clear_env[] = {
	"AIOPOOL_THREADS", "AIOPOOL_IDLE_MS", "AIOPOOL_MAX_QUEUED",
	"AIOPOOL_FD_CONCURRENCY", "AIOPOOL_CACHE", "AIOPOOL_FASTPATH",
	"AIOPOOL_RUNNABLE", "LD_PRELOAD",
};

/* Runs posix_envprobe with only the AIOPOOL_* variables in set. */
static void probe(const char *const set[], char *const args[], char *out, size_t n)
{
	char path[4096];
	const char *env[32];
	char *argv[4] = { path, NULL, NULL, NULL };
	int k = 0, status;

	build_path(path, sizeof path, "tests/posix_envprobe");
	for (unsigned i = 0; i < sizeof clear_env / sizeof clear_env[0]; i++)
		env[k++] = clear_env[i];
	for (int i = 0; set && set[i]; i++)
		env[k++] = set[i];
	env[k] = NULL;
	argv[1] = args[0];
	argv[2] = args[1];
	status = run_program(argv, env, out, n);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "posix_envprobe failed (status %#x): %s", status, out);
}

Test(posix_pool, environment_variables_set_the_knobs)
{
	static const char *const set[] = {
		"AIOPOOL_THREADS=3", "AIOPOOL_IDLE_MS=250", "AIOPOOL_MAX_QUEUED=77",
		"AIOPOOL_FD_CONCURRENCY=5", "AIOPOOL_CACHE=9", "AIOPOOL_FASTPATH=1",
		"AIOPOOL_RUNNABLE=6", NULL,
	};
	char *args[] = { "knobs", NULL };
	char out[512];

	probe(set, args, out, sizeof out);
	cr_assert_str_eq(out, "threads=3 idle_ms=250 max_queued=77 fd_concurrency=5 "
	                      "cache=9 fastpath=1 runnable=6\n");

	static const char *const other[] = {
		"AIOPOOL_THREADS=1", "AIOPOOL_IDLE_MS=-1", "AIOPOOL_FASTPATH=0", NULL,
	};
	probe(other, args, out, sizeof out);
	cr_assert(strstr(out, "threads=1 idle_ms=-1 ") == out, "%s", out);
	cr_assert(strstr(out, " fastpath=0 "), "%s", out);
}

Test(posix_pool, invalid_environment_values_are_ignored)
{
	static const char *const bad[] = {
		"AIOPOOL_THREADS=0", "AIOPOOL_IDLE_MS=fast", "AIOPOOL_MAX_QUEUED=12x",
		"AIOPOOL_FD_CONCURRENCY=-3", "AIOPOOL_CACHE=", "AIOPOOL_FASTPATH=2",
		"AIOPOOL_RUNNABLE=99999", NULL,
	};
	char *args[] = { "knobs", NULL };
	char defaults[512], out[512];

	probe(NULL, args, defaults, sizeof defaults);
	probe(bad, args, out, sizeof out);
	cr_assert_str_eq(out, defaults);
}

Test(posix_pool, environment_thread_bound_holds_under_load)
{
	static const char *const set[] = { "AIOPOOL_THREADS=2", NULL };
	char *args[] = { "load", "5" };
	char out[512];

	probe(set, args, out, sizeof out);
	cr_assert_str_eq(out, "running=2 queued=3 threads=2\n");
}

/* ---- thread-creation failure ------------------------------------------------------------ */

/* In a forked child: no thread can be created from here on.  Root ignores
 * RLIMIT_NPROC, so the child also gives up root.  CHILD_SKIP if the system
 * does not enforce it. */
static void *nothing(void *arg)
{
	return arg;
}

static int no_more_threads(void)
{
	struct rlimit one = { 1, 1 };
	pthread_t t;

	if (setrlimit(RLIMIT_NPROC, &one) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
		return CHILD_SKIP;
	if (pthread_create(&t, NULL, nothing, NULL) == 0) {
		pthread_join(t, NULL);
		return CHILD_SKIP;
	}
	return 0;
}

static int no_worker_at_all(void *arg)
{
	int fd = *(int *)arg, rc;
	char buf[64];
	struct aiocb cb, lcb, *list[] = { &lcb };
	struct aiopool_stats st;

	if (no_more_threads())
		return CHILD_SKIP;
	/* No worker and none can start: the submission fails, nothing is
	 * left queued. */
	fill_cb(&cb, fd, buf, sizeof buf, 0);
	errno = 0;
	rc = aio_read(&cb);
	child_check(rc == -1 && errno == EAGAIN, "aio_read gave %d, %s", rc, strerror(errno));
	child_check(aio_error(&cb) == EAGAIN, "aio_error %d", aio_error(&cb));
	fill_cb(&lcb, fd, buf, sizeof buf, 0);
	lcb.aio_lio_opcode = LIO_READ;
	errno = 0;
	rc = lio_listio(LIO_WAIT, list, 1, NULL);   /* must not wait forever */
	child_check(rc == -1 && errno == EAGAIN, "lio_listio gave %d, %s", rc, strerror(errno));
	child_check(aio_error(&lcb) == EAGAIN, "element's aio_error %d", aio_error(&lcb));
	child_check(aiopool_stats(&st, sizeof st) == 0, "stats");
	child_check(st.queued == 0 && st.running == 0 && st.threads == 0,
	            "queued %lu running %lu threads %lu", st.queued, st.running, st.threads);
	return 0;
}

Test(posix_pool, thread_creation_failure_without_workers_gives_eagain)
{
	int fd = temp_file(4096, 0);

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	run_child(no_worker_at_all, &fd);
	close(fd);
}

static int thread_calls;

static void count_thread(union sigval v)
{
	(void)v;
	__atomic_add_fetch(&thread_calls, 1, __ATOMIC_RELEASE);
}

static int one_worker_left(void *arg)
{
	int fd = *(int *)arg, p[3][2];
	char buf[64], pb[3];
	struct aiocb warm, cbs[3], fr[2];
	struct aiopool_stats st;
	long long end = now_ms() + DEADLINE_MS;

	/* One worker, idle, before threads run out. */
	aiopool_set(AIOPOOL_IDLE_MS, 600 * 1000);
	fill_cb(&warm, fd, buf, sizeof buf, 0);
	child_check(aio_read(&warm) == 0, "aio_read: %s", strerror(errno));
	child_check(child_wait_aio(&warm) == 0, "first read");
	do {
		child_check(aiopool_stats(&st, sizeof st) == 0, "stats");
		child_check(now_ms() < end, "the worker never went idle");
		sleep_ms(1);
	} while (st.idle_threads != 1);
	if (no_more_threads())
		return CHILD_SKIP;

	/* Each is either accepted, and then run by the one worker in turn, or
	 * refused with EAGAIN at once: once that worker waits on a pipe, which
	 * may never end, nothing can come to a new request.  Nothing accepted
	 * is lost. */
	bool took[5];
	int nthread_calls = 0;
	for (int i = 0; i < 3; i++) {
		child_check(pipe(p[i]) == 0, "pipe");
		fill_cb(&cbs[i], p[i][0], &pb[i], 1, 0);
		if (i == 2) {
			cbs[i].aio_sigevent.sigev_notify = SIGEV_THREAD;
			cbs[i].aio_sigevent.sigev_notify_function = count_thread;
		}
		took[i] = aio_read(&cbs[i]) == 0;
		child_check(took[i] || errno == EAGAIN, "pipe read %d: %s", i, strerror(errno));
	}
	child_check(took[0], "the first pipe read, with the worker idle, was refused");
	nthread_calls = took[2];
	for (int i = 0; i < 2; i++) {
		fill_cb(&fr[i], fd, buf, sizeof buf, 0);
		took[3 + i] = aio_read(&fr[i]) == 0;
		child_check(took[3 + i] || errno == EAGAIN, "file read %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < 3; i++)
		child_check(write(p[i][1], "x", 1) == 1, "write");
	for (int i = 0; i < 3; i++) {
		if (!took[i])
			continue;
		child_check(child_wait_aio(&cbs[i]) == 0, "pipe read %d", i);
		child_check(aio_return(&cbs[i]) == 1, "pipe read %d", i);
	}
	for (int i = 0; i < 2; i++)
		if (took[3 + i])
			child_check(child_wait_aio(&fr[i]) == 0, "file read %d", i);
	child_check(aiopool_stats(&st, sizeof st) == 0 && st.threads == 1,
	            "threads %lu", st.threads);
	/* An accepted SIGEV_THREAD notification came, though no thread could
	 * start. */
	while (__atomic_load_n(&thread_calls, __ATOMIC_ACQUIRE) != nthread_calls) {
		child_check(now_ms() < end, "the SIGEV_THREAD notification never came");
		sleep_ms(1);
	}
	return 0;
}

Test(posix_pool, thread_creation_failure_with_a_worker_loses_nothing)
{
	int fd = temp_file(4096, 0);

	cr_assert_eq(aiopool_set(AIOPOOL_FASTPATH, 0), 0);
	run_child(one_worker_left, &fd);
	close(fd);
}
