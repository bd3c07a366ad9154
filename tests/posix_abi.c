/* posix_abi: an unchanged program built against glibc's <aio.h>
 * (tests/abi_client.c) runs on aiopool both linked with -laiopool and
 * under LD_PRELOAD, with the plain and the *64 names (and, preloaded, with
 * the symbol versions of binaries linked before glibc 2.34), and aiopool's
 * stats show it served every request; the same program runs on glibc alone.
 * And libaiopool.so exports its interface and nothing else. */
#include "common.h"

/* A backstop: a call that blocks without a deadline of its own (LIO_WAIT,
 * aio_suspend without a timeout) and is never woken fails the test. */
TestSuite(posix_abi, .timeout = 60);

/* Requests abi_client submits: 2 aio_write, 2 lio_listio writes, 1
 * aio_fsync, 2 lio_listio reads, 2 aio_read. */
#define CLIENT_REQUESTS 9

/* Runs tests/NAME, with libaiopool.so preloaded or not. */
static void run_client(const char *name, bool preload, char *out, size_t n)
{
	char path[4096], lib[4096], asan[4096];
	char *argv[] = { path, NULL };
	const char *env[4];
	const char *dir = getenv("AIOPOOL_TEST_LIBDIR");
	const char *old = getenv("ASAN_OPTIONS");
	int status;

	build_path(path, sizeof path, name);
	/* A sanitizer build preloads an instrumented library ahead of the
	 * sanitizer's runtime: that is fine here. */
	snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
	         old ? old : "", old && *old ? ":" : "");
	env[0] = asan;
	env[1] = "LD_PRELOAD";
	env[2] = NULL;
	if (preload) {
		cr_assert_not_null(dir, "AIOPOOL_TEST_LIBDIR is not set");
		snprintf(lib, sizeof lib, "LD_PRELOAD=%s/libaiopool.so", dir);
		env[1] = lib;
	}
	status = run_program(argv, env, out, n);
	cr_assert(WIFEXITED(status), "%s killed by signal %d", name, WTERMSIG(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "%s failed (its messages are above); it said:\n%s",
	             name, out);
}

static void expect_aiopool(const char *name, bool preload, const char *names)
{
	char out[4096], want[64];
	const char *s;
	unsigned long long submitted = 0;

	run_client(name, preload, out, sizeof out);
	snprintf(want, sizeof want, "names=%s\n", names);
	cr_assert(strstr(out, want), "%s: expected %s in:\n%s", name, want, out);
	s = strstr(out, "served=aiopool submitted=");
	cr_assert_not_null(s, "%s was not served by aiopool:\n%s", name, out);
	sscanf(s, "served=aiopool submitted=%llu", &submitted);
	cr_assert_eq(submitted, CLIENT_REQUESTS,
	             "%s: aiopool accepted %llu of its %d requests", name, submitted,
	             CLIENT_REQUESTS);
	s = strstr(out, "aio_read=");
	cr_assert(s && strstr(s, "libaiopool") && strchr(s, '\n') > strstr(s, "libaiopool"),
	          "%s: aio_read does not come from libaiopool:\n%s", name, out);
}

static void expect_glibc(const char *name, const char *names)
{
	char out[4096], want[64];

	run_client(name, false, out, sizeof out);
	snprintf(want, sizeof want, "names=%s\n", names);
	cr_assert(strstr(out, want), "%s: expected %s in:\n%s", name, want, out);
	cr_assert(strstr(out, "served=glibc\n"), "%s:\n%s", name, out);
	cr_assert(strstr(out, "libc.so"), "%s: aio_read not from libc:\n%s", name, out);
}

Test(posix_abi, plain_program_runs_on_glibc)
{
	expect_glibc("tests/abi_client_plain", "plain");
	expect_glibc("tests/abi_client_plain64", "64");
	expect_glibc("tests/abi_client_old", "plain");
}

Test(posix_abi, program_linked_with_aiopool_is_served_by_it)
{
	expect_aiopool("tests/abi_client_linked", false, "plain");
	expect_aiopool("tests/abi_client_linked64", false, "64");
}

Test(posix_abi, program_under_ld_preload_is_served_by_aiopool)
{
	expect_aiopool("tests/abi_client_plain", true, "plain");
	expect_aiopool("tests/abi_client_plain64", true, "64");
}

Test(posix_abi, program_linked_before_glibc_2_34_is_served_under_ld_preload)
{
	/* It asks for aio_read@GLIBC_2.2.5 and lio_listio@GLIBC_2.4. */
	expect_aiopool("tests/abi_client_old", true, "plain");
}

/* ---- exported symbols ------------------------------------------------------ */

static const char *const posix_names[] = {
	"aio_read", "aio_read64", "aio_write", "aio_write64", "aio_fsync",
	"aio_fsync64", "aio_error", "aio_error64", "aio_return", "aio_return64",
	"aio_suspend", "aio_suspend64", "aio_cancel", "aio_cancel64",
	"lio_listio", "lio_listio64", "aio_init",
};

/* Besides the interface: aiopool's close, dup2 and dup3, which cancel
 * what is queued on the fd they close; fcntl and fcntl64, which keep the
 * fast path's fd flags cache true after F_SETFL; syscall, which serves the
 * AIO system calls on aiopool's contexts; _exit and _Exit, which print
 * AIOPOOL_STATS's line. */
static const char *const fd_names[] = {
	"close", "dup2", "dup3", "fcntl", "fcntl64", "syscall", "_exit", "_Exit",
};

static bool allowed(const char *name)
{
	static const char *const prefixes[] = { "aio_", "lio_", "io_", "aiopool_" };

	for (unsigned i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	for (unsigned i = 0; i < sizeof fd_names / sizeof fd_names[0]; i++)
		if (!strcmp(name, fd_names[i]))
			return true;
	return false;
}

Test(posix_abi, only_the_interface_is_exported)
{
	static char out[1 << 16];
	char lib[4096], *argv[] = { "nm", "-D", "--defined-only", lib, NULL };
	const char *dir = getenv("AIOPOOL_TEST_LIBDIR");
	int status, nsyms = 0;

	if (!dir)
		cr_skip_test("AIOPOOL_TEST_LIBDIR is not set: run through make check");
	snprintf(lib, sizeof lib, "%s/libaiopool.so", dir);
	status = run_program(argv, (const char *const[]){ "LC_ALL=C", NULL }, out, sizeof out);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		cr_skip_test("nm is not installed");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nm failed:\n%s", out);

	/* Lines: "<value> <type> <name>[@[@]<version>]"; type A is a version. */
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char type, sym[256];
		char *at;

		if (sscanf(line, "%*s %c %255s", &type, sym) != 2 || type == 'A')
			continue;
		if ((at = strchr(sym, '@')))
			*at = '\0';
		nsyms++;
		cr_assert(allowed(sym), "libaiopool.so exports %s (%s)", sym, line);
	}
	cr_assert_gt(nsyms, 0, "nm listed nothing");
}

Test(posix_abi, posix_names_carry_glibcs_versions)
{
	static char out[1 << 16];
	char lib[4096], *argv[] = { "nm", "-D", "--defined-only", lib, NULL };
	const char *dir = getenv("AIOPOOL_TEST_LIBDIR");
	int status;

	if (!dir)
		cr_skip_test("AIOPOOL_TEST_LIBDIR is not set: run through make check");
	snprintf(lib, sizeof lib, "%s/libaiopool.so", dir);
	status = run_program(argv, (const char *const[]){ "LC_ALL=C", NULL }, out, sizeof out);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		cr_skip_test("nm is not installed");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nm failed:\n%s", out);

	/* The default version binds new binaries (aio_read@GLIBC_2.34), the
	 * old one binaries linked before glibc 2.34 (librt's, 2.2.5). */
	for (unsigned i = 0; i < sizeof posix_names / sizeof posix_names[0]; i++) {
		char want[128];

		snprintf(want, sizeof want, " %s@@GLIBC_2.34\n", posix_names[i]);
		cr_assert(strstr(out, want), "no %s", want + 1);
		snprintf(want, sizeof want, " %s@GLIBC_2.2.5\n", posix_names[i]);
		cr_assert(strstr(out, want), "no %s", want + 1);
	}
	cr_assert(strstr(out, " lio_listio@GLIBC_2.4\n"), "no lio_listio@GLIBC_2.4");
	cr_assert(strstr(out, " lio_listio64@GLIBC_2.4\n"), "no lio_listio64@GLIBC_2.4");
	cr_assert(strstr(out, " aiopool_stats@@"), "no aiopool_stats");
	cr_assert(strstr(out, " aiopool_set@@"), "no aiopool_set");
	cr_assert(strstr(out, " aiopool_get@@"), "no aiopool_get");
}
