/* libaio_clients: real libaio programs on aiopool: the exported symbol
 * versions, tests/aiocp built against aiopool and against the system's
 * libaio (run under LD_PRELOAD, with strace confirming that no kernel AIO
 * system call is made), and fio's libaio engine with crc32c verification
 * (tests/libaio_fio.sh).  Tests needing a missing tool skip. */
#include "libaio_common.h"

#include <stdarg.h>
#include <sys/wait.h>

static const char *env_dir(const char *name)
{
	const char *d = getenv(name);
	if (!d || !*d)
		cr_skip_test("%s is not set (run through make check)", name);
	return d;
}

/* Runs a shell command line; its exit status, or -1 if it did not exit. */
static int run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	st = system(cmd);
	cr_assert_neq(st, -1, "system(%s)", cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have(const char *tool)
{
	return run("command -v %s >/dev/null 2>&1", tool) == 0;
}

static bool strace_works(void)
{
	return have("strace") && run("strace -f -qq -o /dev/null true >/dev/null 2>&1") == 0;
}

static char workdir[64];

static void make_workdir(void)
{
	strcpy(workdir, "/tmp/aiopool-clients-XXXXXX");
	cr_assert_not_null(mkdtemp(workdir));
}

static void remove_workdir(void)
{
	if (workdir[0])
		run("rm -rf '%s'", workdir);
}

/* A file of n bytes that repeats nowhere (xorshift). */
static void make_file(const char *path, size_t n)
{
	FILE *f = fopen(path, "w");
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ n;

	cr_assert_not_null(f);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		fputc((int)(x & 0xff), f);
	}
	cr_assert_eq(fclose(f), 0);
}

static void assert_same(const char *a, const char *b)
{
	cr_assert_eq(run("cmp -s '%s' '%s'", a, b), 0, "%s and %s differ", a, b);
}

/* ---- symbol versions ------------------------------------------------------- */

Test(libaio_clients, exported_symbol_versions)
{
	const char *lib = env_dir("AIOPOOL_TEST_LIBDIR");
	static const char *want[] = {
		"LIBAIO_0.1 +io_queue_init", "LIBAIO_0.1 +io_queue_release",
		"LIBAIO_0.1 +io_queue_run", "LIBAIO_0.1 +io_submit",
		"LIBAIO_0.4 +io_setup", "LIBAIO_0.4 +io_destroy",
		"LIBAIO_0.4 +io_getevents", "LIBAIO_0.4 +io_cancel",
		"LIBAIO_0.4 +io_queue_wait", "LIBAIO_0.5 +io_pgetevents",
		"\\(LIBAIO_0.1\\) +io_getevents", "\\(LIBAIO_0.1\\) +io_cancel",
		"\\(LIBAIO_0.1\\) +io_queue_wait",
	};
	char out[256];

	if (!have("objdump"))
		cr_skip_test("objdump not installed");
	snprintf(out, sizeof out, "/tmp/aiopool-objdump-%d", (int)getpid());
	cr_assert_eq(run("objdump -T '%s/libaiopool.so' >'%s'", lib, out), 0);
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		cr_assert_eq(run("grep -Eq ' %s$' '%s'", want[i], out), 0,
		             "objdump -T has no %s", want[i]);
	/* Exactly 13 libaio definitions: 10 names, 3 older variants. */
	cr_assert_eq(run("test $(grep -Ec 'LIBAIO_0\\.[145]\\)? +io_' '%s') -eq 13", out), 0);
	unlink(out);
}

/* ---- aiocp, built against aiopool -------------------------------------------- */

static void copy_and_compare(const char *prog, const char *env, size_t n,
		const char *opts)
{
	char src[128], dst[128];
	int rc;

	snprintf(src, sizeof src, "%s/src-%zu", workdir, n);
	snprintf(dst, sizeof dst, "%s/dst-%zu", workdir, n);
	make_file(src, n);
	rc = run("%s '%s' %s '%s' '%s'", env, prog, opts, src, dst);
	cr_assert_eq(rc, 0, "%s %s exited with %d", prog, opts, rc);
	assert_same(src, dst);
}

Test(libaio_clients, aiocp_against_aiopool)
{
	const char *build = env_dir("AIOPOOL_TEST_BUILDDIR");
	char prog[4096];

	snprintf(prog, sizeof prog, "%s/tests/aiocp", build);
	make_workdir();
	copy_and_compare(prog, "", 0, "");
	copy_and_compare(prog, "", 1, "");
	copy_and_compare(prog, "", 3 * 1024 * 1024 + 12345, "-b 65536 -n 8");
	copy_and_compare(prog, "", 1024 * 1024 + 1, "-b 4096 -n 64");
	copy_and_compare(prog, "AIOPOOL_THREADS=1", 512 * 1024 + 7, "-b 1000 -n 3");
	remove_workdir();
}

/* ---- aiocp, built with -laio, under LD_PRELOAD ----------------------------------- */

Test(libaio_clients, aiocp_with_system_libaio_under_ld_preload)
{
	const char *build = env_dir("AIOPOOL_TEST_BUILDDIR");
	const char *lib = env_dir("AIOPOOL_TEST_LIBDIR");
	char prog[4096], env[4096], log[256], src[128], dst[128];
	int rc;

#ifdef AIOPOOL_TEST_SANITIZED
	cr_skip_test("a sanitizer build cannot be preloaded into other programs");
#endif
	snprintf(prog, sizeof prog, "%s/tests/aiocp-laio", build);
	if (run("'%s' >/dev/null 2>&1", prog) == 77)
		cr_skip_test("built without the system's libaio (libaio-dev)");
	make_workdir();
	snprintf(env, sizeof env, "LD_PRELOAD='%s/libaiopool.so'", lib);
	copy_and_compare(prog, env, 2 * 1024 * 1024 + 99, "-b 32768 -n 16");

	if (!strace_works()) {
		remove_workdir();
		cr_skip_test("strace not installed or not permitted: system calls not checked");
	}
	/* Every call reached aiopool: no kernel AIO system call at all. */
	snprintf(src, sizeof src, "%s/src-strace", workdir);
	snprintf(dst, sizeof dst, "%s/dst-strace", workdir);
	snprintf(log, sizeof log, "%s/strace.log", workdir);
	make_file(src, 1024 * 1024 + 5);
	rc = run("strace -f -qq -o '%s' -e trace=io_setup,io_submit,io_getevents,"
	         "io_pgetevents,io_destroy,io_cancel -E LD_PRELOAD='%s/libaiopool.so' "
	         "'%s' -b 8192 -n 8 '%s' '%s'", log, lib, prog, src, dst);
	cr_assert_eq(rc, 0);
	assert_same(src, dst);
	cr_assert_neq(run("grep -Eq '^[0-9]+ +io_' '%s'", log), 0,
	              "kernel AIO system calls were made:\n%s", log);
	/* The check can see them: without aiopool the same program makes
	 * them (when the kernel offers AIO at all). */
	rc = run("strace -f -qq -o '%s' -e trace=io_setup,io_submit "
	         "'%s' '%s' '%s' >/dev/null 2>&1", log, prog, src, dst);
	if (rc == 0)
		cr_assert_eq(run("grep -Eq '^[0-9]+ +io_submit' '%s'", log), 0,
		             "strace saw no io_submit from the real libaio");
	remove_workdir();
}

/* ---- fio --------------------------------------------------------------------------- */

Test(libaio_clients, fio_libaio_engine_verifies, .timeout = 600)
{
	const char *src = env_dir("AIOPOOL_TEST_SRCDIR");
	const char *lib = env_dir("AIOPOOL_TEST_LIBDIR");
	char log[256];
	int rc;

#ifdef AIOPOOL_TEST_SANITIZED
	cr_skip_test("a sanitizer build cannot be preloaded into other programs");
#endif
	if (!have("fio"))
		cr_skip_test("fio not installed");
	make_workdir();
	snprintf(log, sizeof log, "%s/fio.out", workdir);
	rc = run("sh '%s/tests/libaio_fio.sh' '%s/libaiopool.so' '%s/data' >'%s' 2>&1",
	         src, lib, workdir, log);
	if (rc == 77) {
		remove_workdir();
		cr_skip_test("fio not installed");
	}
	if (rc != 0)
		run("cat '%s' >&2", log);
	cr_assert_eq(rc, 0, "libaio_fio.sh failed (output above)");
	remove_workdir();
}
