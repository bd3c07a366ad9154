/* aiopool.h: aiopool's own interface, beside the POSIX <aio.h> and libaio
 * front ends: observe the engine (aiopool_stats), tune it at run time
 * (aiopool_set / aiopool_get), and read inline under its fast path's rules
 * (aiopool_read_now).  See aiopool(7). */
#ifndef AIOPOOL_H
#define AIOPOOL_H

#ifdef __cplusplus
extern "C" {
#endif

#define AIOPOOL_VERSION_MAJOR 0
#define AIOPOOL_VERSION_MINOR 1
#define AIOPOOL_VERSION "0.1.0"

/* A snapshot of the engine.  Gauges are read under the engine lock, so
 * they are consistent with each other; counters only ever grow. */
struct aiopool_stats {
	/* gauges */
	unsigned long threads;       /* worker threads alive */
	unsigned long idle_threads;  /* workers waiting for work */
	unsigned long queued;        /* accepted, not started */
	unsigned long running;       /* being executed by a worker */
	/* counters since start (or since fork() in a child) */
	unsigned long long submitted;       /* requests accepted */
	unsigned long long completed;       /* finished with a result */
	unsigned long long cancelled;       /* finished as cancelled */
	unsigned long long fastpath;        /* of completed: done inline (RWF_NOWAIT) */
	unsigned long long threads_created; /* workers started */
	unsigned long long notify_failed;   /* notifications that could not be sent */
	unsigned long long reserved[6];
};

/* Copies a snapshot into *st; size is sizeof(struct aiopool_stats) as the
 * caller was compiled.  0, or -1 with errno EINVAL (st NULL or size too
 * small). */
int aiopool_stats(struct aiopool_stats *st, unsigned long size);

/* Tuning knobs: each is also set by an environment variable read at load
 * time (named in the comment), and the POSIX knobs by aio_init(3). */
enum aiopool_knob {
	AIOPOOL_MAX_THREADS = 1,   /* workers at most, 1..1024; AIOPOOL_THREADS */
	AIOPOOL_IDLE_MS = 2,       /* idle worker lifetime in ms, -1 = exit at once;
	                              AIOPOOL_IDLE_MS */
	AIOPOOL_MAX_QUEUED = 3,    /* requests in flight at most, past it EAGAIN;
	                              AIOPOOL_MAX_QUEUED */
	AIOPOOL_FD_CONCURRENCY = 4,/* positional requests running at once on one
	                              regular file, 1..1024; AIOPOOL_FD_CONCURRENCY */
	AIOPOOL_CACHE = 5,         /* freed request blocks kept for reuse;
	                              AIOPOOL_CACHE (aio_init's aio_num) */
	AIOPOOL_FASTPATH = 6,      /* 1: try cached reads inline with RWF_NOWAIT,
	                              0: always queue; AIOPOOL_FASTPATH */
	AIOPOOL_RUNNABLE = 7,      /* workers runnable at once (not blocked in
	                              I/O), 1..1024, default: online CPUs;
	                              AIOPOOL_RUNNABLE */
	AIOPOOL_SYSCALL_SETUP = 8, /* 1: syscall(SYS_io_setup, ...) makes an
	                              aiopool context, 0 (default): the
	                              kernel's; AIOPOOL_SYSCALL_SETUP */
};

/* 0, or -1 with errno EINVAL for an unknown knob or a value out of range.
 * Takes effect at once, also for requests already queued. */
int aiopool_set(int knob, long value);
/* The knob's value, or -1 with errno EINVAL for an unknown knob. */
long aiopool_get(int knob);

/* Reads count bytes at offset from fd now, on the calling thread, if
 * aiopool's fast path would run such a read inline (aiopool(7)): the
 * AIOPOOL_FASTPATH knob is 1, no request queued on fd must go first, fd is
 * not O_DIRECT, count is at most the per-read cap, and the page cache
 * holds all of it.  Returns count, or -1 with errno EAGAIN when the read
 * is to go through aiopool instead (buf's contents are then unspecified).
 * Not counted in aiopool_stats.  libaiopool-ev's fast path. */
long aiopool_read_now(int fd, void *buf, unsigned long count, long long offset);

#ifdef __cplusplus
}
#endif
#endif
