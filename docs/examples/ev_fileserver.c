/* ev_fileserver.c: an example of aiopool's libev adapter (aiopool-ev.h): a
 * small file server on loopback TCP, one libev loop in one thread, that
 * serves byte ranges of one file.  It reads them with aiopool_ev_read
 * (-m aio, the default), with POSIX aiocbs through aiopool_ev_submit_aiocb
 * (-m posix), or, for comparison, with a blocking pread(2) in the loop
 * (-m pread).  ev_fileclient.c is its load generator; ev_bench.sh compares
 * the modes (`make ev-bench`).
 *
 *	ev_fileserver [-p PORT] [-m aio|posix|pread] [-d] FILE
 *
 * It listens on 127.0.0.1:PORT (0, the default: any free port), prints
 * "port N" on stdout once it accepts connections, and serves until SIGINT
 * or SIGTERM; then it prints what it did on stderr.  -d opens FILE with
 * O_DIRECT (offsets and lengths must then be multiples of 4096).
 *
 * The protocol, little-endian: a request is 16 bytes,
 *	uint64 offset, uint32 length, uint32 tag;
 * the reply 16 bytes and then the data,
 *	int64 result (bytes read, or -errno), uint32 tag, uint32 0.
 * A request of length 0 asks for the file's size (the result).  Requests
 * on one connection are served one after the other.
 *
 * The loop's "stall" in the summary is how long it went without polling,
 * running callbacks (99th percentile and longest over its iterations): how
 * long a ready socket or due timer could have had to wait.  A blocking
 * pread adds the disk's latency to it.
 */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <aiopool-ev.h>

#define MAX_LEN (1 << 20)
#define ALIGN 4096

enum mode { M_AIO, M_POSIX, M_PREAD };

struct conn {
	ev_io rw, ww;
	int fd;
	unsigned char req[16];
	size_t have;           /* bytes of req received */
	unsigned char hdr[16];
	void *buf;
	size_t cap;
	size_t sent, total;    /* of hdr + data */
	uint32_t tag;
	int busy;              /* a file read is in flight */
	int closing;           /* closed while busy: freed by its callback */
	struct aiocb cb;       /* -m posix */
};

static struct {
	struct ev_loop *loop;
	struct aiopool_ev *aev;
	enum mode mode;
	int file;
	int direct;
	unsigned long long requests, bytes, errors, conns;
	double busy_since, stall_max, busy_total;
	unsigned long long iterations;
	float *stalls;         /* every iteration's, for the percentile */
	size_t nstalls, cap;
} S;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void conn_close(struct conn *c)
{
	ev_io_stop(S.loop, &c->rw);
	ev_io_stop(S.loop, &c->ww);
	close(c->fd);
	if (c->busy) {
		c->closing = 1;
		return;
	}
	free(c->buf);
	free(c);
}

/* Sends what is left of the reply; 0 when all is sent. */
static int send_some(struct conn *c)
{
	while (c->sent < c->total) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;

		if (c->sent < sizeof c->hdr)
			iov[n++] = (struct iovec){ c->hdr + c->sent, sizeof c->hdr - c->sent };
		size_t doff = c->sent > sizeof c->hdr ? c->sent - sizeof c->hdr : 0;
		if (c->total > sizeof c->hdr + doff)
			iov[n++] = (struct iovec){ (char *)c->buf + doff,
			                           c->total - sizeof c->hdr - doff };
		w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 1 : -1;
		}
		c->sent += (size_t)w;
	}
	return 0;
}

/* Replies res; data: the buffer's first res bytes follow. */
static void reply(struct conn *c, long long res, int data)
{
	int64_t r = res;
	int rc;

	if (res < 0)
		S.errors++;
	else
		S.bytes += (unsigned long long)res;
	S.requests++;
	memcpy(c->hdr, &r, 8);
	memcpy(c->hdr + 8, &c->tag, 4);
	memset(c->hdr + 12, 0, 4);
	c->sent = 0;
	c->total = sizeof c->hdr + (data && res > 0 ? (size_t)res : 0);
	rc = send_some(c);
	if (rc < 0) {
		conn_close(c);
	} else if (rc > 0) {
		ev_io_start(S.loop, &c->ww);
	} else {
		ev_io_start(S.loop, &c->rw);   /* the next request */
	}
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int rc = send_some(c);

	(void)loop;
	(void)revents;
	if (rc < 0) {
		conn_close(c);
	} else if (rc == 0) {
		ev_io_stop(S.loop, &c->ww);
		ev_io_start(S.loop, &c->rw);
	}
}

/* The adapter's callback, in the loop's thread. */
static void on_file(struct aiopool_ev *aev, long res, void *data)
{
	struct conn *c = data;

	(void)aev;
	c->busy = 0;
	if (c->closing) {
		free(c->buf);
		free(c);
		return;
	}
	reply(c, res, 1);
}

static void serve(struct conn *c)
{
	uint64_t off;
	uint32_t len;
	struct stat st;
	int rc;

	memcpy(&off, c->req, 8);
	memcpy(&len, c->req + 8, 4);
	memcpy(&c->tag, c->req + 12, 4);
	if (len == 0) {
		reply(c, fstat(S.file, &st) < 0 ? -errno : (long long)st.st_size, 0);
		return;
	}
	if (len > MAX_LEN || off > (uint64_t)INT64_MAX - len) {
		reply(c, -EINVAL, 0);
		return;
	}
	if (c->cap < len) {
		size_t cap = (len + ALIGN - 1) & ~(size_t)(ALIGN - 1);
		void *p;
		if (posix_memalign(&p, ALIGN, cap) != 0) {
			reply(c, -ENOMEM, 0);
			return;
		}
		free(c->buf);
		c->buf = p;
		c->cap = cap;
	}
	switch (S.mode) {
	case M_PREAD: {
		ssize_t n = pread(S.file, c->buf, len, (off_t)off);
		reply(c, n < 0 ? -errno : n, 1);
		return;
	}
	case M_AIO:
		rc = aiopool_ev_read(S.aev, S.file, c->buf, len, (long long)off,
		                     on_file, c);
		break;
	default:
		memset(&c->cb, 0, sizeof c->cb);
		c->cb.aio_fildes = S.file;
		c->cb.aio_buf = c->buf;
		c->cb.aio_nbytes = len;
		c->cb.aio_offset = (off_t)off;
		rc = aiopool_ev_submit_aiocb(S.aev, &c->cb, LIO_READ, on_file, c);
		break;
	}
	if (rc < 0)
		reply(c, rc, 0);
	else
		c->busy = 1;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n;

	(void)loop;
	(void)revents;
	n = read(c->fd, c->req + c->have, sizeof c->req - c->have);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_close(c);   /* end of stream, or reset */
		return;
	}
	c->have += (size_t)n;
	if (c->have < sizeof c->req)
		return;
	c->have = 0;
	ev_io_stop(S.loop, &c->rw);   /* one request at a time */
	serve(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct conn *c;

		if (fd < 0)
			return;   /* EAGAIN, or a connection that went away */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (!(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev_io_init(&c->rw, on_readable, fd, EV_READ);
		ev_io_init(&c->ww, on_writable, fd, EV_WRITE);
		c->rw.data = c->ww.data = c;
		ev_io_start(loop, &c->rw);
		S.conns++;
	}
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* The loop's busy stretches: from the end of one poll to the next. */
static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	S.busy_since = now();
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (S.busy_since > 0) {
		double d = now() - S.busy_since;
		if (d > S.stall_max)
			S.stall_max = d;
		S.busy_total += d;
		S.iterations++;
		if (S.nstalls == S.cap) {
			size_t cap = S.cap ? S.cap * 2 : 65536;
			float *p = realloc(S.stalls, cap * sizeof *p);
			if (!p)
				return;
			S.stalls = p;
			S.cap = cap;
		}
		S.stalls[S.nstalls++] = (float)d;
	}
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                          .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("ev_fileserver: listen");
		exit(1);
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: ev_fileserver [-p PORT] [-m aio|posix|pread] [-d] FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const char *names[] = { "aio", "posix", "pread" };
	ev_io lw;
	ev_signal si, st;
	ev_check ck;
	ev_prepare pr;
	int port = 0, opt, lfd;

	while ((opt = getopt(argc, argv, "p:m:d")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'm':
			if (!strcmp(optarg, "aio"))
				S.mode = M_AIO;
			else if (!strcmp(optarg, "posix"))
				S.mode = M_POSIX;
			else if (!strcmp(optarg, "pread"))
				S.mode = M_PREAD;
			else
				usage();
			break;
		case 'd':
			S.direct = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	S.file = open(argv[optind], O_RDONLY | O_CLOEXEC | (S.direct ? O_DIRECT : 0));
	if (S.file < 0) {
		perror(argv[optind]);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	S.loop = ev_default_loop(EVFLAG_AUTO);
	if (S.mode != M_PREAD && !(S.aev = aiopool_ev_new(S.loop))) {
		perror("aiopool_ev_new");
		return 1;
	}
	lfd = listen_on(port);
	ev_io_init(&lw, on_accept, lfd, EV_READ);
	ev_io_start(S.loop, &lw);
	ev_signal_init(&si, on_signal, SIGINT);
	ev_signal_start(S.loop, &si);
	ev_signal_init(&st, on_signal, SIGTERM);
	ev_signal_start(S.loop, &st);
	ev_check_init(&ck, on_check);
	ev_check_start(S.loop, &ck);
	ev_prepare_init(&pr, on_prepare);
	ev_prepare_start(S.loop, &pr);

	ev_run(S.loop, 0);

	/* Connections still open are simply dropped with the process; the
	 * adapter is freed properly (it waits for reads in flight). */
	aiopool_ev_free(S.aev);
	double p99 = 0;
	if (S.nstalls) {
		qsort(S.stalls, S.nstalls, sizeof *S.stalls, cmp_float);
		p99 = S.stalls[(size_t)((S.nstalls - 1) * 0.99)];
	}
	fprintf(stderr, "ev_fileserver: mode %s%s, %llu connections, %llu requests "
	        "(%llu errors), %llu bytes; loop stall p99 %.3f ms, max %.3f ms, "
	        "mean %.3f ms over %llu iterations\n",
	        names[S.mode], S.direct ? " O_DIRECT" : "", S.conns, S.requests,
	        S.errors, S.bytes, p99 * 1e3, S.stall_max * 1e3,
	        S.iterations ? S.busy_total * 1e3 / S.iterations : 0.0, S.iterations);
	free(S.stalls);
	close(lfd);
	close(S.file);
	return 0;
}
