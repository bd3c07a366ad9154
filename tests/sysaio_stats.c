/* sysaio_stats: AIOPOOL_STATS prints one line of aiopool_stats(3) per
 * process when it leaves (exit, return from main, _exit, _Exit), to
 * standard error or appended to a file; and a set-user-ID program is not
 * steered by its caller's AIOPOOL_* variables.  The program watched is
 * tests/sysaio_child, run with the environment each test wants.
 * (src/exitstats.c, src/pool.c) */
#include "common.h"

TestSuite(sysaio_stats, .timeout = 60);

#define OUT_MAX 8192

/* Runs sysaio_child with args and env, standard error into out with its
 * standard output; fails the test unless it exits 0. */
static void run_child_prog(const char *const args[], const char *const env[],
		char *out)
{
	char prog[PATH_MAX];
	char *argv[12] = { "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", prog };
	int n = 4, status;

	build_path(prog, sizeof prog, "tests/sysaio_child");
	for (; *args; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	status = run_program(argv, env, out, OUT_MAX);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "sysaio_child failed (status %#x): %s", status, out);
}

/* The pids the child printed ("pid=N" lines), in order. */
static int pids(const char *out, long *pid, int max)
{
	int n = 0;

	for (const char *p = out; p && *p && n < max; ) {
		if (strncmp(p, "pid=", 4) == 0)
			pid[n++] = atol(p + 4);
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return n;
}

/* How many stats lines text has for pid; the last in *line. */
static int stats_lines(const char *text, long pid, const char **line)
{
	char want[64];
	int n = 0;

	snprintf(want, sizeof want, "aiopool: pid=%ld ", pid);
	for (const char *p = strstr(text, want); p; p = strstr(p + 1, want)) {
		if (p != text && p[-1] != '\n')
			continue;
		*line = p;
		n++;
	}
	return n;
}

/* A counter of a stats line; fails the test if it is missing. */
static unsigned long long field(const char *line, const char *name)
{
	char want[64];
	const char *end = strchr(line, '\n'), *p;

	snprintf(want, sizeof want, " %s=", name);
	p = strstr(line, want);
	cr_assert(p && (!end || p < end), "no %s in the stats line: %.300s", name, line);
	return strtoull(p + strlen(want), NULL, 10);
}

/* The process's one stats line says it submitted and completed n. */
static void assert_one_line(const char *text, long pid, unsigned long long n)
{
	const char *line = NULL;
	int k = stats_lines(text, pid, &line);

	cr_assert_eq(k, 1, "%d stats lines for pid %ld, not one, in:\n%s", k, pid, text);
	cr_assert_eq(field(line, "submitted"), n, "%.300s", line);
	cr_assert_eq(field(line, "completed"), n, "%.300s", line);
	cr_assert_eq(field(line, "cancelled"), 0);
	cr_assert_eq(field(line, "queued"), 0);
	(void)field(line, "threads");
	(void)field(line, "idle_threads");
	(void)field(line, "running");
	(void)field(line, "fastpath");
	(void)field(line, "threads_created");
	(void)field(line, "notify_failed");
}

/* Runs sysaio_child with args and AIOPOOL_STATS=1; checks that it printed
 * one line, counting n requests completed. */
static void check_line_of(const char **args, long n)
{
	const char *env[] = { "AIOPOOL_STATS=1", NULL };
	char out[OUT_MAX];
	long pid;

	run_child_prog(args, env, out);
	cr_assert_eq(pids(out, &pid, 1), 1, "no pid in: %s", out);
	assert_one_line(out, pid, n);
}

/* Runs `sysaio_child read 3 HOW' and checks its line. */
static void check_stderr_line(const char *how)
{
	const char *args[] = { "read", "3", how, NULL };

	check_line_of(args, 3);
}

Test(sysaio_stats, line_on_stderr_at_exit)
{
	check_stderr_line("return");
	check_stderr_line("exit");
}

Test(sysaio_stats, line_on_stderr_at__exit)
{
	check_stderr_line("_exit");
	check_stderr_line("_Exit");
}

/* The line at exit comes after exit has finished the writes still queued
 * on files: it counts them completed. */
Test(sysaio_stats, line_at_exit_counts_what_exit_finished)
{
	const char *args[] = { "write", "256", NULL };

	check_line_of(args, 256);
}

/* exit() whose handler calls _exit: the destructor never runs, _exit
 * prints the one line. */
Test(sysaio_stats, line_when_exit_handler_calls__exit)
{
	check_stderr_line("atexit");
}

/* A forked child that leaves with _exit prints its own line, with its own
 * counts; the parent's line has the parent's. */
Test(sysaio_stats, forked_child_prints_its_own_line)
{
	const char *args[] = { "fork", "1", "2", NULL };
	const char *env[] = { "AIOPOOL_STATS=1", NULL };
	char out[OUT_MAX];
	long pid[2];

	run_child_prog(args, env, out);
	cr_assert_eq(pids(out, pid, 2), 2, "two pids expected in: %s", out);
	assert_one_line(out, pid[0], 1);
	assert_one_line(out, pid[1], 2);
}

/* A temporary directory, removed with its files by rm_dir. */
static void make_dir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/aiopool-stats-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	rmdir(dir);
}

static void read_text(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	len = read(fd, buf, n - 1);
	cr_assert_geq(len, 0);
	buf[len] = '\0';
	close(fd);
}

/* AIOPOOL_STATS=PATH: one line per process appended, the file made 0600,
 * nothing on standard error. */
Test(sysaio_stats, lines_appended_to_file)
{
	char dir[64], path[PATH_MAX], env0[PATH_MAX + 16], out[OUT_MAX], text[OUT_MAX];
	const char *a1[] = { "read", "1", "return", NULL };
	const char *a2[] = { "read", "2", "_exit", NULL };
	const char *env[] = { env0, NULL };
	struct stat st;
	long pid[2];

	make_dir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/stats", dir);
	snprintf(env0, sizeof env0, "AIOPOOL_STATS=%s", path);
	umask(umask(0));   /* whatever the umask, the file is 0600 */
	run_child_prog(a1, env, out);
	cr_assert_eq(pids(out, &pid[0], 1), 1);
	cr_assert_null(strstr(out, "aiopool:"), "a line on stderr: %s", out);
	run_child_prog(a2, env, out);
	cr_assert_eq(pids(out, &pid[1], 1), 1);
	cr_assert_null(strstr(out, "aiopool:"), "a line on stderr: %s", out);
	cr_assert_eq(stat(path, &st), 0, "no stats file: %s", strerror(errno));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	read_text(path, text, sizeof text);
	assert_one_line(text, pid[0], 1);
	assert_one_line(text, pid[1], 2);
	rm_dir(dir);
}

/* The file is a regular file named by the path itself: a symbolic link
 * there is not followed, a FIFO is not written (nor waited on). */
Test(sysaio_stats, file_must_be_regular)
{
	char dir[64], link[PATH_MAX], target[PATH_MAX], fifo[PATH_MAX];
	char env0[PATH_MAX + 16], out[OUT_MAX];
	const char *args[] = { "read", "1", "return", NULL };
	const char *env[] = { env0, NULL };
	struct stat st;

	make_dir(dir, sizeof dir);
	snprintf(link, sizeof link, "%s/link", dir);
	snprintf(target, sizeof target, "%s/target", dir);
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	cr_assert_eq(symlink(target, link), 0);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	snprintf(env0, sizeof env0, "AIOPOOL_STATS=%s", link);
	run_child_prog(args, env, out);
	cr_assert_neq(stat(target, &st), 0, "the link was followed");
	snprintf(env0, sizeof env0, "AIOPOOL_STATS=%s", fifo);
	run_child_prog(args, env, out);   /* finishes: nothing waits on the FIFO */
	rm_dir(dir);
}

/* Values other than 1 and an absolute path print nothing. */
Test(sysaio_stats, other_values_print_nothing)
{
	static const char *const values[] = {
		"AIOPOOL_STATS=", "AIOPOOL_STATS=0", "AIOPOOL_STATS=yes",
		"AIOPOOL_STATS=stats.txt", "AIOPOOL_STATS",
	};
	const char *args[] = { "read", "1", "exit", NULL };
	char out[OUT_MAX];

	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		const char *env[] = { values[i], NULL };

		run_child_prog(args, env, out);
		cr_assert_null(strstr(out, "aiopool:"), "%s printed: %s", values[i], out);
	}
}

/* ---- a set-user-ID program ----------------------------------------------- */

/* Copies the file src to dst. */
static void copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	char buf[65536];
	ssize_t n;

	cr_assert(in >= 0 && out >= 0, "copy %s: %s", src, strerror(errno));
	while ((n = read(in, buf, sizeof buf)) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
}

/* Runs a set-user-ID copy of sysaio_child, owned by nobody, with the
 * AIOPOOL_* variables set: the knobs keep their defaults and no stats
 * file is written, though nobody could write it.  Needs root (to give the
 * copy away) and a mount that honours set-user-ID. */
Test(sysaio_stats, setuid_program_ignores_environment)
{
	char dir[64], src[PATH_MAX], prog[PATH_MAX], stats[PATH_MAX];
	char env0[PATH_MAX + 16], out[OUT_MAX], libs[PATH_MAX];
	const char *env[] = { env0, "AIOPOOL_THREADS=3", "AIOPOOL_SYSCALL_SETUP=1", NULL };
	char *argv[] = { prog, "knobs", NULL };
	unsigned long secure = 9;
	long threads = -1, setup = -1;
	struct stat st;
	int status;

	if (geteuid() != 0)
		cr_skip_test("needs root to make a set-user-ID program of another user");
	build_path(src, sizeof src, "tests/sysaio_child");
	build_path(libs, sizeof libs, ".libs/libaiopool.so");
	make_dir(dir, sizeof dir);
	cr_assert_eq(chmod(dir, 01777), 0);
	snprintf(prog, sizeof prog, "%s/child", dir);
	snprintf(stats, sizeof stats, "%s/stats", dir);
	snprintf(env0, sizeof env0, "AIOPOOL_STATS=%s", stats);
	copy_file(src, prog);
	cr_assert_eq(chown(prog, 65534, 65534), 0, "chown: %s", strerror(errno));
	cr_assert_eq(chmod(prog, 04755), 0);
	status = run_program(argv, env, out, sizeof out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    sscanf(out, "secure=%lu threads=%ld syscall_setup=%ld", &secure, &threads,
	           &setup) != 3) {
		rm_dir(dir);
		cr_skip_test("the set-user-ID copy did not run (status %#x: %s): can "
		             "user 65534 read the build tree?", status, out);
	}
	if (secure != 1) {
		rm_dir(dir);
		cr_skip_test("AT_SECURE not set for a set-user-ID program (nosuid mount?)");
	}
	/* A build tree user 65534 cannot enter makes the loader fall back to
	 * the system's path, where another libaiopool may be installed. */
	if (!strstr(out, libs)) {
		rm_dir(dir);
		cr_skip_test("the set-user-ID copy loaded another libaiopool than %s "
		             "(can user 65534 read the build tree?): %s", libs, out);
	}
	cr_assert_eq(threads, 20, "AIOPOOL_THREADS was read: %s", out);
	cr_assert_eq(setup, 0, "AIOPOOL_SYSCALL_SETUP was read: %s", out);
	cr_assert_neq(stat(stats, &st), 0, "AIOPOOL_STATS was read: a file was written");
	rm_dir(dir);
}
