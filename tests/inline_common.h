/* inline_common.h: what the fast-path suites (posix_inline, libaio_inline)
 * share: counting the reads the submitting thread itself makes, and files
 * for O_DIRECT and for large cached reads. */
#ifndef AIOPOOL_TEST_INLINE_COMMON_H
#define AIOPOOL_TEST_INLINE_COMMON_H

#include "common.h"

#include <inttypes.h>

/* The calling thread's read counters (/proc/self/task/TID/io): syscr, the
 * read system calls it made, and rchar, the bytes they returned.  Taking
 * them is itself one read of nread bytes, which the next taking counts. */
struct thread_io {
	unsigned long long syscr, rchar, nread;
};

static inline struct thread_io thread_io_now(void)
{
	char path[64], buf[1024], *p;
	struct thread_io t = { 0, 0, 0 };
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%ld/io", (long)syscall(SYS_gettid));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("%s: %s (no per-task I/O accounting)", path, strerror(errno));
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	cr_assert_gt(n, 0, "read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	t.nread = (unsigned long long)n;
	cr_assert_not_null(p = strstr(buf, "rchar: "));
	t.rchar = strtoull(p + 7, NULL, 10);
	cr_assert_not_null(p = strstr(buf, "syscr: "));
	t.syscr = strtoull(p + 7, NULL, 10);
	return t;
}

/* The read system calls this thread made between two takings, and their
 * bytes: the first taking's own read left out. */
static inline unsigned long long reads_between(struct thread_io a, struct thread_io b)
{
	return b.syscr - a.syscr - 1;
}

static inline unsigned long long bytes_between(struct thread_io a, struct thread_io b)
{
	return b.rchar - a.rchar - a.nread;
}

/* A second description of fd's file, opened with extra flags (through
 * /proc/self/fd); skips the test when the file system refuses O_DIRECT. */
static inline int reopen(int fd, int flags)
{
	char path[64];
	int d;

	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	d = open(path, O_RDONLY | O_CLOEXEC | flags);
	if (d < 0 && errno == EINVAL && (flags & O_DIRECT))
		cr_skip_test("O_DIRECT is not supported on the test directory's file system");
	cr_assert_geq(d, 0, "open %s: %s", path, strerror(errno));
	return d;
}

/* A file of n bytes (pattern()), written back and in the page cache: an
 * O_DIRECT read of it would not wait for dirty pages, a buffered one is
 * served from memory. */
static inline int cached_file(size_t n)
{
	int fd = temp_file(n, 0);
	cr_assert_eq(fsync(fd), 0);
	return fd;
}

static inline void *page_buf(size_t n)
{
	void *p = NULL;
	cr_assert_eq(posix_memalign(&p, 4096, n), 0);
	return p;
}

static inline void assert_pattern(const unsigned char *buf, size_t n, off_t off)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pattern(off + (long long)i))
			cr_assert_fail("byte %zu at offset %lld: %u, not %u", i,
			               (long long)off, buf[i], pattern(off + (long long)i));
}

#endif
