/* abi_client: an ordinary program written against glibc's <aio.h>, and
 * nothing of aiopool's.  posix_abi builds it five ways (plain or linked
 * with -laiopool, each with and without -D_FILE_OFFSET_BITS=64, which
 * makes it call the *64 names; and plain with -DABI_OLD_VERSIONS, which
 * makes it call the versions binaries linked before glibc 2.34 use) and
 * runs it plain, linked and under LD_PRELOAD.
 *
 * It writes a file with aio_write and lio_listio, reads it back with
 * aio_read and lio_listio, waits with aio_suspend, syncs with aio_fsync,
 * and checks every result.  Then it says who served it: if aiopool_stats
 * can be found at run time (dlsym), aiopool did, and it prints the number
 * of requests aiopool accepted; it also names the object aio_read came
 * from.  Output, one line each:
 *   names=plain|64
 *   aio_read=<object path>
 *   served=aiopool submitted=<n>   or   served=glibc
 * Exits 0 if every result was right, 1 (with a message) otherwise. */
#define _GNU_SOURCE
#include <aio.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { N = 4, LEN = 4096 };

#ifdef ABI_OLD_VERSIONS
/* As a program linked before glibc 2.34 refers to these names: at the
 * version they had in librt, not today's default. */
__asm__(".symver aio_read, aio_read@GLIBC_2.2.5");
__asm__(".symver aio_write, aio_write@GLIBC_2.2.5");
__asm__(".symver aio_fsync, aio_fsync@GLIBC_2.2.5");
__asm__(".symver aio_error, aio_error@GLIBC_2.2.5");
__asm__(".symver aio_return, aio_return@GLIBC_2.2.5");
__asm__(".symver aio_suspend, aio_suspend@GLIBC_2.2.5");
__asm__(".symver aio_cancel, aio_cancel@GLIBC_2.2.5");
__asm__(".symver lio_listio, lio_listio@GLIBC_2.4");
#endif

#if defined(_FILE_OFFSET_BITS) && _FILE_OFFSET_BITS == 64
#define AIO_READ_NAME "aio_read64"
#else
#define AIO_READ_NAME "aio_read"
#endif

/* The start of struct aiopool_stats, as a program probing for aiopool
 * without its header would declare it (the layout is aiopool's ABI). */
struct pool_stats {
	unsigned long threads, idle_threads, queued, running;
	unsigned long long submitted, completed, cancelled, fastpath;
	unsigned long long threads_created, notify_failed, reserved[6];
};

static int failures;

#define check(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "abi_client:%d: %s: ", __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

static char out[N][LEN], in[N][LEN];

/* Waits for cb with aio_suspend, 10 s at most. */
static int wait_one(struct aiocb *cb)
{
	const struct aiocb *list[] = { cb };
	struct timespec ts = { 10, 0 };

	while (aio_error(cb) == EINPROGRESS)
		if (aio_suspend(list, 1, &ts) < 0 && errno == EAGAIN)
			return ETIMEDOUT;
	return aio_error(cb);
}

static void fill(struct aiocb *cb, int fd, void *buf, int op, int i)
{
	memset(cb, 0, sizeof *cb);
	cb->aio_fildes = fd;
	cb->aio_buf = buf;
	cb->aio_nbytes = LEN;
	cb->aio_offset = (off_t)i * LEN;
	cb->aio_lio_opcode = op;
	cb->aio_sigevent.sigev_notify = SIGEV_NONE;
}

int main(void)
{
	char path[] = "/tmp/aiopool-abi-XXXXXX";
	struct aiocb cbs[N], *list[N], sync;
	int fd = mkstemp(path), rc;
	void *stats_fn, *fn;
	Dl_info info;

	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	unlink(path);
	for (int i = 0; i < N; i++)
		memset(out[i], 'a' + i, LEN);

	/* aio_write the first two blocks, lio_listio(LIO_WAIT) the others. */
	for (int i = 0; i < 2; i++) {
		fill(&cbs[i], fd, out[i], LIO_WRITE, i);
		check(aio_write(&cbs[i]) == 0, "aio_write %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < 2; i++) {
		check(wait_one(&cbs[i]) == 0, "write %d", i);
		check(aio_return(&cbs[i]) == LEN, "write %d", i);
	}
	for (int i = 2; i < N; i++) {
		fill(&cbs[i], fd, out[i], LIO_WRITE, i);
		list[i - 2] = &cbs[i];
	}
	check(lio_listio(LIO_WAIT, list, 2, NULL) == 0, "lio_listio write: %s", strerror(errno));
	for (int i = 2; i < N; i++) {
		check(aio_error(&cbs[i]) == 0, "write %d", i);
		check(aio_return(&cbs[i]) == LEN, "write %d", i);
	}

	fill(&sync, fd, NULL, 0, 0);
	check(aio_fsync(O_SYNC, &sync) == 0, "aio_fsync: %s", strerror(errno));
	check(wait_one(&sync) == 0, "fsync");
	check(aio_return(&sync) == 0, "fsync");

	/* Read back: lio_listio(LIO_NOWAIT) and aio_read, then aio_suspend. */
	for (int i = 0; i < 2; i++) {
		fill(&cbs[i], fd, in[i], LIO_READ, i);
		list[i] = &cbs[i];
	}
	check(lio_listio(LIO_NOWAIT, list, 2, NULL) == 0, "lio_listio read: %s", strerror(errno));
	for (int i = 2; i < N; i++) {
		fill(&cbs[i], fd, in[i], LIO_READ, i);
		check(aio_read(&cbs[i]) == 0, "aio_read %d: %s", i, strerror(errno));
	}
	for (int i = 0; i < N; i++) {
		check(wait_one(&cbs[i]) == 0, "read %d", i);
		check(aio_return(&cbs[i]) == LEN, "read %d", i);
		check(!memcmp(in[i], out[i], LEN), "block %d read back wrong", i);
	}
	rc = aio_cancel(fd, &cbs[0]);
	check(rc == AIO_ALLDONE, "aio_cancel of a finished request gave %d", rc);
	close(fd);

	/* The name this build calls: <aio.h> renames it for 64-bit offsets. */
	printf("names=%s\n", AIO_READ_NAME[8] ? "64" : "plain");
	fn = dlsym(RTLD_DEFAULT, AIO_READ_NAME);
	if (fn && dladdr(fn, &info) && info.dli_fname)
		printf("aio_read=%s\n", info.dli_fname);
	else
		printf("aio_read=?\n");
	stats_fn = dlsym(RTLD_DEFAULT, "aiopool_stats");
	if (stats_fn) {
		int (*get)(struct pool_stats *, unsigned long) =
			(int (*)(struct pool_stats *, unsigned long))stats_fn;
		struct pool_stats st;

		memset(&st, 0, sizeof st);
		check(get(&st, sizeof st) == 0, "aiopool_stats: %s", strerror(errno));
		printf("served=aiopool submitted=%llu\n", st.submitted);
	} else {
		printf("served=glibc\n");
	}
	return failures ? 1 : 0;
}
