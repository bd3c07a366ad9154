/* aiocp: copies a file with libaio, in the style of libaio's classic
 * example: each block is a read whose callback turns the same iocb into a
 * write, whose callback frees the slot for the next read; io_queue_run
 * calls the callbacks, io_queue_wait waits.  An fsync ends the copy.
 *
 * Written against <libaio.h> only: the tests build it with aiopool's header
 * and library, and with the system's libaio (-laio) to run it under
 * LD_PRELOAD=libaiopool.so.
 *
 *   aiocp [-b BLOCKSIZE] [-n DEPTH] SRC DST
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Exported by libaio and aiopool, not declared by <libaio.h>. */
extern int io_queue_wait(io_context_t ctx, struct timespec *timeout);

struct slot {
	struct iocb iocb;     /* first: the callbacks get &slot->iocb */
	char *buf;
	long long offset;
	size_t len;
};

static int src, dst;
static size_t blocksize = 64 * 1024;
static int depth = 8;
static long long size, next_offset;
static int busy, failed, synced;
static struct slot *slots;
static struct slot **free_slots;
static int nfree;

static void fail(const char *what, long err)
{
	fprintf(stderr, "aiocp: %s: %s\n", what, strerror((int)-err));
	failed = 1;
}

static void wr_done(io_context_t ctx, struct iocb *iocb, long res, long res2);

static void rd_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	struct slot *s = (struct slot *)iocb;
	int rc;

	if (res2 != 0 || res != (long)s->len) {
		fail("read", res < 0 ? res : -EIO);
		busy--;
		return;
	}
	/* The same iocb, now a write of what was read. */
	io_prep_pwrite(iocb, dst, s->buf, s->len, s->offset);
	io_set_callback(iocb, wr_done);
	if ((rc = io_submit(ctx, 1, &iocb)) != 1) {
		fail("io_submit(write)", rc < 0 ? rc : -EAGAIN);
		busy--;
	}
}

static void wr_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	struct slot *s = (struct slot *)iocb;

	if (res2 != 0 || res != (long)s->len)
		fail("write", res < 0 ? res : -EIO);
	busy--;
	free_slots[nfree++] = s;
}

static void sync_done(io_context_t ctx, struct iocb *iocb, long res, long res2)
{
	if (res != 0)
		fail("fsync", res);
	synced = 1;
	busy--;
}

/* Starts reads into free slots while there is something left to read. */
static int start_reads(io_context_t ctx)
{
	while (nfree > 0 && next_offset < size && !failed) {
		struct slot *s = free_slots[--nfree];
		struct iocb *iocb = &s->iocb;
		int rc;

		s->offset = next_offset;
		s->len = size - next_offset < (long long)blocksize ?
		         (size_t)(size - next_offset) : blocksize;
		io_prep_pread(iocb, src, s->buf, s->len, s->offset);
		io_set_callback(iocb, rd_done);
		if ((rc = io_submit(ctx, 1, &iocb)) != 1) {
			free_slots[nfree++] = s;
			if (rc == -EAGAIN)
				return 0;   /* try again after some complete */
			fail("io_submit(read)", rc < 0 ? rc : -EIO);
			return -1;
		}
		next_offset += (long long)s->len;
		busy++;
	}
	return 0;
}

/* Runs callbacks until nothing is in flight. */
static int drain(io_context_t ctx, int (*more)(io_context_t))
{
	for (;;) {
		struct timespec t = { 1, 0 };
		int rc;

		if (more && more(ctx) < 0)
			return -1;
		if (busy == 0 && (!more || next_offset >= size || failed))
			return 0;
		if ((rc = io_queue_wait(ctx, &t)) < 0 && rc != -EINTR) {
			fail("io_queue_wait", rc);
			return -1;
		}
		if ((rc = io_queue_run(ctx)) < 0) {
			fail("io_queue_run", rc);
			return -1;
		}
	}
}

int main(int argc, char **argv)
{
	io_context_t ctx = 0;
	struct stat st;
	struct iocb sync_cb, *sync_list[1] = { &sync_cb };
	int opt, rc;

	while ((opt = getopt(argc, argv, "b:n:")) != -1) {
		switch (opt) {
		case 'b': blocksize = strtoul(optarg, NULL, 0); break;
		case 'n': depth = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (argc - optind != 2 || blocksize == 0 || depth <= 0)
		goto usage;
	if ((src = open(argv[optind], O_RDONLY)) < 0 ||
	    (dst = open(argv[optind + 1], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0 ||
	    fstat(src, &st) < 0) {
		perror("aiocp");
		return 1;
	}
	size = st.st_size;
	if ((rc = io_queue_init(depth, &ctx)) != 0) {
		fail("io_queue_init", rc);
		return 1;
	}
	slots = calloc((size_t)depth, sizeof *slots);
	free_slots = calloc((size_t)depth, sizeof *free_slots);
	if (!slots || !free_slots)
		return 1;
	for (int i = 0; i < depth; i++) {
		if (!(slots[i].buf = malloc(blocksize)))
			return 1;
		free_slots[nfree++] = &slots[i];
	}

	if (drain(ctx, start_reads) == 0 && !failed) {
		io_prep_fsync(&sync_cb, dst);
		io_set_callback(&sync_cb, sync_done);
		if ((rc = io_submit(ctx, 1, sync_list)) != 1)
			fail("io_submit(fsync)", rc < 0 ? rc : -EIO);
		else {
			busy++;
			drain(ctx, NULL);
		}
	}
	if ((rc = io_queue_release(ctx)) != 0)
		fail("io_queue_release", rc);
	if (!failed && !synced)
		fail("fsync", -EIO);
	close(src);
	if (close(dst) < 0)
		failed = 1;
	return failed;

usage:
	fprintf(stderr, "usage: aiocp [-b BLOCKSIZE] [-n DEPTH] SRC DST\n");
	return 2;
}
