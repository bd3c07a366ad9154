/* ev_fileclient.c: the load generator for ev_fileserver.c: CONNS
 * connections on one libev loop, each sending a request for a random range
 * of the served file as soon as the previous reply has arrived.
 *
 *	ev_fileclient -p PORT [-c CONNS] [-n REQUESTS | -t SECONDS]
 *	              [-l LENGTH] [-a ALIGN] [-v]
 *	ev_fileclient -w FILE SIZE
 *
 * -c connections (16); -n requests in all, or -t seconds of requests (the
 * default: -n 1000); -l bytes per request (4096); -a offsets are multiples
 * of this (4096; a range may run past the end of the file, and then the
 * reply must be short); -v checks every byte against the pattern that -w
 * writes: byte i of the file is (i * 131 + (i >> 8) * 7 + 1) mod 256.
 *
 * It prints one line of key=value pairs: requests, bytes, secs, req_per_s,
 * MiB_per_s, lat_avg_us, lat_p99_us, lat_max_us, errors; and exits 1 if
 * any request failed, came back wrong, or a connection broke.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

struct cconn {
	ev_io rw;
	int fd;
	uint64_t rng;
	uint64_t off;          /* of the request in flight */
	uint32_t len, tag;
	double sent_at;
	unsigned char hdr[16];
	size_t got;            /* bytes of hdr + data received */
	size_t want;           /* hdr + data expected */
	unsigned char *buf;
};

static struct {
	struct ev_loop *loop;
	int port, nconns, verify;
	uint32_t len, align;
	long long size;
	long long limit;       /* requests to send, -1: until the time is up */
	long long issued, done, bytes, errors;
	int stopping, active;
	double start, end;
	double *lat;
	size_t nlat, cap;
} C = { .nconns = 16, .len = 4096, .align = 4096, .limit = -1 };

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned char pattern(long long i)
{
	return (unsigned char)(i * 131 + (i >> 8) * 7 + 1);
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int write_file(const char *path, long long size)
{
	static unsigned char buf[1 << 16];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		perror(path);
		return 1;
	}
	for (long long off = 0; off < size; off += sizeof buf) {
		size_t n = size - off < (long long)sizeof buf ? (size_t)(size - off) : sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + (long long)i);
		if (pwrite(fd, buf, n, off) != (ssize_t)n) {
			perror(path);
			return 1;
		}
	}
	return close(fd) < 0;
}

static void fail(struct cconn *c, const char *what)
{
	fprintf(stderr, "ev_fileclient: %s\n", what);
	C.errors++;
	ev_io_stop(C.loop, &c->rw);
	close(c->fd);
	c->fd = -1;
	if (--C.active == 0)
		ev_break(C.loop, EVBREAK_ALL);
}

static void send_request(struct cconn *c)
{
	unsigned char req[16];
	uint64_t slots = (uint64_t)(C.size + C.align - 1) / C.align;

	if (C.stopping || (C.limit >= 0 && C.issued >= C.limit)) {
		ev_io_stop(C.loop, &c->rw);
		close(c->fd);
		c->fd = -1;
		if (--C.active == 0)
			ev_break(C.loop, EVBREAK_ALL);
		return;
	}
	C.issued++;
	c->off = (next_rand(&c->rng) % slots) * C.align;
	c->len = C.len;
	c->tag++;
	memcpy(req, &c->off, 8);
	memcpy(req + 8, &c->len, 4);
	memcpy(req + 12, &c->tag, 4);
	c->got = 0;
	c->want = 16;
	c->sent_at = now();
	/* One request in flight per connection: the socket's send buffer is
	 * empty, so 16 bytes always go at once. */
	if (write(c->fd, req, sizeof req) != (ssize_t)sizeof req)
		fail(c, "short write of a request");
}

static void record(double lat)
{
	if (C.nlat == C.cap) {
		size_t cap = C.cap ? C.cap * 2 : 4096;
		double *p = realloc(C.lat, cap * sizeof *p);
		if (!p)
			return;
		C.lat = p;
		C.cap = cap;
	}
	C.lat[C.nlat++] = lat;
}

static void complete(struct cconn *c)
{
	int64_t res;
	uint32_t tag;
	long long expect = C.size - (long long)c->off;

	memcpy(&res, c->hdr, 8);
	memcpy(&tag, c->hdr + 8, 4);
	if (expect > (long long)c->len)
		expect = c->len;
	if (expect < 0)
		expect = 0;
	record(now() - c->sent_at);
	C.done++;
	if (tag != c->tag || res != expect) {
		fprintf(stderr, "ev_fileclient: offset %llu length %u: result %lld, "
		        "expected %lld (tag %u/%u)\n", (unsigned long long)c->off,
		        c->len, (long long)res, expect, tag, c->tag);
		C.errors++;
	} else {
		C.bytes += res;
		if (C.verify)
			for (long long i = 0; i < res; i++)
				if (c->buf[i] != pattern((long long)c->off + i)) {
					fprintf(stderr, "ev_fileclient: byte %lld of the file is wrong\n",
					        (long long)c->off + i);
					C.errors++;
					break;
				}
	}
	send_request(c);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cconn *c = w->data;

	(void)loop;
	(void)revents;
	while (c->got < c->want) {
		ssize_t n;

		if (c->got < 16)
			n = read(c->fd, c->hdr + c->got, 16 - c->got);
		else
			n = read(c->fd, c->buf + (c->got - 16), c->want - c->got);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			fail(c, n < 0 ? strerror(errno) : "the server closed the connection");
			return;
		}
		c->got += (size_t)n;
		if (c->got == 16) {
			int64_t res;
			memcpy(&res, c->hdr, 8);
			if (res > (int64_t)c->len) {
				fail(c, "reply longer than asked");
				return;
			}
			if (res > 0)
				c->want = 16 + (size_t)res;
		}
	}
	complete(c);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_ref(loop);   /* libev stopped the unreferenced timer */
	C.stopping = 1;
}

static int connect_to(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                          .sin_port = htons((uint16_t)port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("ev_fileclient: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Asks for the file's size with a request of length 0. */
static long long file_size(void)
{
	unsigned char req[16] = { 0 }, rep[16];
	int fd = connect_to(C.port);
	size_t got = 0;
	int64_t res;

	if (write(fd, req, sizeof req) != (ssize_t)sizeof req) {
		perror("ev_fileclient: write");
		exit(1);
	}
	while (got < sizeof rep) {
		ssize_t n = read(fd, rep + got, sizeof rep - got);
		if (n <= 0) {
			fprintf(stderr, "ev_fileclient: no size from the server\n");
			exit(1);
		}
		got += (size_t)n;
	}
	close(fd);
	memcpy(&res, rep, 8);
	if (res < 0) {
		fprintf(stderr, "ev_fileclient: size: %s\n", strerror((int)-res));
		exit(1);
	}
	return res;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: ev_fileclient -p PORT [-c CONNS] [-n REQUESTS | -t SECONDS]\n"
	        "                     [-l LENGTH] [-a ALIGN] [-v]\n"
	        "       ev_fileclient -w FILE SIZE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double secs = 0;
	ev_timer tm;
	int opt;

	if (argc == 4 && !strcmp(argv[1], "-w"))
		return write_file(argv[2], atoll(argv[3]));
	while ((opt = getopt(argc, argv, "p:c:n:t:l:a:v")) != -1) {
		switch (opt) {
		case 'p': C.port = atoi(optarg); break;
		case 'c': C.nconns = atoi(optarg); break;
		case 'n': C.limit = atoll(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'l': C.len = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'a': C.align = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'v': C.verify = 1; break;
		default: usage();
		}
	}
	if (optind != argc || C.port <= 0 || C.nconns <= 0 || C.len == 0 ||
	    C.len > (1u << 20) || C.align == 0)
		usage();
	if (C.limit < 0 && secs <= 0)
		C.limit = 1000;
	C.size = file_size();
	if (C.size == 0) {
		fprintf(stderr, "ev_fileclient: the file is empty\n");
		return 1;
	}

	C.loop = ev_default_loop(EVFLAG_AUTO);
	struct cconn *cs = calloc((size_t)C.nconns, sizeof *cs);
	if (!cs)
		return 1;
	C.start = now();
	for (int i = 0; i < C.nconns; i++) {
		struct cconn *c = &cs[i];
		c->fd = connect_to(C.port);
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		c->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) + (uint64_t)getpid();
		c->buf = malloc(C.len);
		if (!c->buf)
			return 1;
		ev_io_init(&c->rw, on_readable, c->fd, EV_READ);
		c->rw.data = c;
		ev_io_start(C.loop, &c->rw);
		C.active++;
	}
	if (C.limit < 0) {
		ev_timer_init(&tm, on_timeout, secs, 0);
		ev_timer_start(C.loop, &tm);
		ev_unref(C.loop);   /* the connections keep the loop going */
	}
	for (int i = 0; i < C.nconns; i++)
		send_request(&cs[i]);
	ev_run(C.loop, 0);
	C.end = now();

	double dt = C.end - C.start, sum = 0;
	for (size_t i = 0; i < C.nlat; i++)
		sum += C.lat[i];
	qsort(C.lat, C.nlat, sizeof *C.lat, cmp);
	printf("requests=%lld bytes=%lld secs=%.3f req_per_s=%.0f MiB_per_s=%.1f "
	       "lat_avg_us=%.0f lat_p99_us=%.0f lat_max_us=%.0f errors=%lld\n",
	       C.done, C.bytes, dt, C.done / dt, C.bytes / dt / 1048576.0,
	       C.nlat ? sum / C.nlat * 1e6 : 0.0,
	       C.nlat ? C.lat[(size_t)((C.nlat - 1) * 0.99)] * 1e6 : 0.0,
	       C.nlat ? C.lat[C.nlat - 1] * 1e6 : 0.0, C.errors);
	return C.errors || (C.limit >= 0 && C.done != C.limit) ? 1 : 0;
}
