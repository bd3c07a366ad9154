/* sysaio_run: aiopool-run runs a program on aiopool (preloaded, its
 * options mapped onto AIOPOOL_* variables), passes its arguments and exit
 * status through, and refuses bad options with exit status 2.  The script
 * is the build tree's, given the build tree's library with --lib; the
 * program is tests/aiorun_probe, built against glibc alone. */
#include "common.h"

TestSuite(sysaio_run, .timeout = 60);

#define OUT_MAX 8192

/* A program built without sanitizers cannot preload a sanitized library. */
static void skip_if_sanitized(void)
{
#ifdef AIOPOOL_TEST_SANITIZED
	cr_skip_test("the library is built with sanitizers: it cannot be "
	             "preloaded into a program built without them");
#endif
}

static char script[PATH_MAX], probe[PATH_MAX], lib[PATH_MAX + 8];

static void paths(void)
{
	const char *libdir = getenv("AIOPOOL_TEST_LIBDIR");

	build_path(script, sizeof script, "aiopool-run");
	build_path(probe, sizeof probe, "tests/aiorun_probe");
	cr_assert_not_null(libdir);
	snprintf(lib, sizeof lib, "%s/libaiopool.so.0", libdir);
}

/* Runs aiopool-run with words (NULL-terminated) and env, standard error
 * with standard output into out; its exit status, or -1 if it did not
 * exit. */
static int run(const char *const words[], const char *const env[], char *out)
{
	char *argv[24] = { "/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", script };
	int n = 4, status;

	for (; *words; words++)
		argv[n++] = (char *)*words;
	argv[n] = NULL;
	status = run_program(argv, env, out, OUT_MAX);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *const no_preload[] = { "LD_PRELOAD", "AIOPOOL_STATS",
	"AIOPOOL_THREADS", "AIOPOOL_FASTPATH", NULL };

static void assert_has(const char *out, const char *want)
{
	cr_assert_not_null(strstr(out, want), "no \"%s\" in:\n%s", want, out);
}

/* The probe's read was served by aiopool: mapped, and counted. */
static void assert_on_aiopool(const char *out)
{
	assert_has(out, "read=4\n");
	assert_has(out, "mapped=1 submitted=1 ");
}

Test(sysaio_run, runs_the_program_on_aiopool)
{
	char lib_opt[PATH_MAX + 16], out[OUT_MAX];
	const char *words[] = { lib_opt, "--", probe, "0", "one", "two words", "", "-x", NULL };

	skip_if_sanitized();
	paths();
	snprintf(lib_opt, sizeof lib_opt, "--lib=%s", lib);
	cr_assert_eq(run(words, no_preload, out), 0, "%s", out);
	assert_on_aiopool(out);
	assert_has(out, "\narg=one\narg=two words\narg=\narg=-x\n");
}

Test(sysaio_run, exit_status_passes_through)
{
	char out[OUT_MAX];
	const char *words[] = { "--lib", lib, probe, "42", NULL };

	skip_if_sanitized();
	paths();
	cr_assert_eq(run(words, no_preload, out), 42, "%s", out);
	assert_on_aiopool(out);
}

Test(sysaio_run, options_set_the_knobs)
{
	char out[OUT_MAX];
	const char *words[] = { "--lib", lib, "--threads", "7", "--no-fastpath", "--stats",
	                        "--", probe, "0", NULL };

	skip_if_sanitized();
	paths();
	cr_assert_eq(run(words, no_preload, out), 0, "%s", out);
	assert_has(out, "mapped=1 submitted=1 threads=7 fastpath=0\n");
	assert_has(out, "aiopool: pid=");
}

Test(sysaio_run, stats_path_option_appends_to_the_file)
{
	char dir[] = "/tmp/aiopool-run-XXXXXX", path[PATH_MAX], opt[PATH_MAX + 16];
	char out[OUT_MAX], text[OUT_MAX] = "";
	const char *words[] = { "--lib", lib, opt, probe, "0", NULL };
	int fd;

	skip_if_sanitized();
	paths();
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/stats", dir);
	snprintf(opt, sizeof opt, "--stats=%s", path);
	cr_assert_eq(run(words, no_preload, out), 0, "%s", out);
	cr_assert_null(strstr(out, "aiopool: pid="), "the line went to stderr: %s", out);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "no stats file: %s", strerror(errno));
	cr_assert_gt(read(fd, text, sizeof text - 1), 0);
	close(fd);
	assert_has(text, " submitted=1 ");
	unlink(path);
	rmdir(dir);
}

/* An LD_PRELOAD the caller set stays, first; the library is not added
 * twice. */
Test(sysaio_run, appends_to_ld_preload)
{
	char out[OUT_MAX], pre[PATH_MAX + 32], want[2 * PATH_MAX];
	const char *words[] = { "--lib", lib, probe, "0", NULL };
	const char *env[] = { pre, "AIOPOOL_STATS", NULL };
	const char *other = "/lib/x86_64-linux-gnu/libm.so.6";

	skip_if_sanitized();
	paths();
	if (access(other, R_OK) != 0)
		cr_skip_test("%s: %s", other, strerror(errno));
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", other);
	cr_assert_eq(run(words, env, out), 0, "%s", out);
	snprintf(want, sizeof want, "LD_PRELOAD=%s:%s\n", other, lib);
	assert_has(out, want);
	assert_on_aiopool(out);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", lib);
	cr_assert_eq(run(words, env, out), 0, "%s", out);
	snprintf(want, sizeof want, "LD_PRELOAD=%s\n", lib);
	assert_has(out, want);
}

/* Bad options: a usage message on stderr, exit status 2, nothing run. */
Test(sysaio_run, bad_options_exit_2)
{
	static const char *const cases[][4] = {
		{ "--bogus", "--", "true", NULL },
		{ "-x", "true", NULL },
		{ "--threads", "0", "true", NULL },
		{ "--threads=1025", "true", NULL },
		{ "--threads", "many", "true", NULL },
		{ "--threads", NULL },
		{ "--stats=", "true", NULL },
		{ "--", NULL },
		{ NULL },
	};
	char out[OUT_MAX];

	paths();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cr_assert_eq(run(cases[i], no_preload, out), 2, "case %zu: %s", i, out);
		assert_has(out, "aiopool-run: ");
		assert_has(out, "--help");
	}
}

Test(sysaio_run, help_and_version)
{
	const char *help[] = { "--help", NULL }, *version[] = { "--version", NULL };
	char out[OUT_MAX];

	paths();
	cr_assert_eq(run(help, no_preload, out), 0, "%s", out);
	assert_has(out, "Usage: aiopool-run ");
	cr_assert_eq(run(version, no_preload, out), 0, "%s", out);
	assert_has(out, "aiopool-run (aiopool) " AIOPOOL_VERSION "\n");
}
