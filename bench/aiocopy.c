/* bench/aiocopy.c: the quick-start demo.  Copies a file with aiopool's
 * POSIX AIO: a window of chunk buffers, the first reads started with one
 * lio_listio(LIO_NOWAIT) call, then each buffer cycles read -> write -> next
 * read, driven by aio_suspend; aio_fsync at the end.  Linked with
 * libaiopool, so aio_* here are aiopool's.
 *
 *   aiocopy [-c chunk-bytes] [-w window] SOURCE DEST
 */
#include "config.h"

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aiopool.h"

enum { IDLE, READING, WRITING, SYNCING };

struct slot {
	struct aiocb cb;
	char *buf;
	off_t off;        /* where this chunk starts */
	size_t len;       /* its length */
	size_t done;      /* bytes of it read (READING) or written (WRITING) */
	size_t have;      /* bytes of it in buf */
	int state;
};

static int src, dst;
static off_t size, next_off;
static size_t chunk = 1 << 20;

static void die(const char *what)
{
	fprintf(stderr, "aiocopy: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void prep(struct slot *s, int fd, char *buf, size_t n, off_t off)
{
	memset(&s->cb, 0, sizeof(s->cb));
	s->cb.aio_fildes = fd;
	s->cb.aio_buf = buf;
	s->cb.aio_nbytes = n;
	s->cb.aio_offset = off;
	s->cb.aio_sigevent.sigev_notify = SIGEV_NONE;
}

/* Gives the slot its next chunk and prepares the read; false at the end. */
static int take_chunk(struct slot *s)
{
	if (next_off >= size) {
		s->state = IDLE;
		return 0;
	}
	s->off = next_off;
	s->len = (size_t)(size - next_off) < chunk ? (size_t)(size - next_off) : chunk;
	s->done = s->have = 0;
	next_off += (off_t)s->len;
	s->state = READING;
	prep(s, src, s->buf, s->len, s->off);
	s->cb.aio_lio_opcode = LIO_READ;
	return 1;
}

/* One request of this slot has finished with n bytes: start its next. */
static void advance(struct slot *s, ssize_t n)
{
	if (s->state == READING) {
		if (n == 0) {
			errno = EIO;
			die("source shrank while copying");
		}
		s->have += (size_t)n;
		if (s->have < s->len) {        /* short read: read the rest */
			prep(s, src, s->buf + s->have, s->len - s->have,
			     s->off + (off_t)s->have);
			if (aio_read(&s->cb))
				die("aio_read");
			return;
		}
		s->state = WRITING;
		s->done = 0;
	} else {
		s->done += (size_t)n;
	}
	if (s->done < s->have) {               /* write (the rest of) the chunk */
		prep(s, dst, s->buf + s->done, s->have - s->done,
		     s->off + (off_t)s->done);
		if (aio_write(&s->cb))
			die("aio_write");
		return;
	}
	if (take_chunk(s) && aio_read(&s->cb))
		die("aio_read");
}

int main(int argc, char **argv)
{
	int window = 8, c, busy;
	struct timespec t0, t1;
	struct stat sb;

	while ((c = getopt(argc, argv, "c:w:")) != -1) {
		if (c == 'c')
			chunk = strtoul(optarg, NULL, 0);
		else if (c == 'w')
			window = atoi(optarg);
		else
			goto usage;
	}
	if (argc - optind != 2 || chunk < 1 || window < 1 || window > 1024) {
usage:
		fprintf(stderr, "usage: aiocopy [-c chunk-bytes] [-w window] SOURCE DEST\n");
		return 2;
	}
	src = open(argv[optind], O_RDONLY);
	if (src < 0 || fstat(src, &sb))
		die(argv[optind]);
	dst = open(argv[optind + 1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (dst < 0)
		die(argv[optind + 1]);
	size = sb.st_size;

	struct slot *slots = calloc((size_t)window, sizeof(*slots));
	struct aiocb **list = calloc((size_t)window, sizeof(*list));
	if (!slots || !list)
		die("calloc");
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* The first reads of every slot go in with one call. */
	for (int i = 0; i < window; i++) {
		slots[i].buf = malloc(chunk);
		if (!slots[i].buf)
			die("malloc");
		list[i] = take_chunk(&slots[i]) ? &slots[i].cb : NULL;
	}
	if (lio_listio(LIO_NOWAIT, list, window, NULL))
		die("lio_listio");

	do {
		busy = 0;
		for (int i = 0; i < window; i++) {
			struct slot *s = &slots[i];
			int err;

			list[i] = NULL;
			if (s->state == IDLE)
				continue;
			err = aio_error(&s->cb);
			if (err == EINPROGRESS) {
				list[i] = &s->cb;
				busy++;
				continue;
			}
			ssize_t n = aio_return(&s->cb);
			if (err) {
				errno = err;
				die(s->state == READING ? "read" : "write");
			}
			advance(s, n);
			if (s->state != IDLE) {
				list[i] = &s->cb;
				busy++;
			}
		}
		if (busy && aio_suspend((const struct aiocb *const *)list,
					window, NULL) && errno != EINTR)
			die("aio_suspend");
	} while (busy);

	/* Make the copy durable, through the same interface. */
	const struct aiocb *sync[1] = { &slots[0].cb };
	prep(&slots[0], dst, NULL, 0, 0);
	if (aio_fsync(O_SYNC, &slots[0].cb))
		die("aio_fsync");
	while (aio_error(&slots[0].cb) == EINPROGRESS)
		aio_suspend(sync, 1, NULL);
	if (aio_return(&slots[0].cb)) {
		errno = aio_error(&slots[0].cb);
		die("fsync");
	}
	if (close(dst))
		die("close");
	clock_gettime(CLOCK_MONOTONIC, &t1);

	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct aiopool_stats st;
	aiopool_stats(&st, sizeof(st));
	printf("aiocopy: %lld bytes in %.3f s (%.0f MiB/s): %llu requests, "
	       "%llu done inline, %llu worker threads started\n",
	       (long long)size, secs, (double)size / 1048576 / secs,
	       st.completed, st.fastpath, st.threads_created);
	for (int i = 0; i < window; i++)
		free(slots[i].buf);
	free(slots);
	free(list);
	return 0;
}
