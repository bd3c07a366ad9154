/* exec.c: executing one request: the system call and its result.
 *
 * Owns nothing shared and takes no lock: a request being executed belongs
 * to the thread executing it.  Workers block every signal, so EINTR comes
 * only from a stopped-and-continued process and is retried.
 *
 * The caller names the descriptor: a worker passes its queue's pinned
 * duplicate (queue.h), which names the file the request's fd named at
 * submission for as long as the request runs, whatever happens to the
 * user's number meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "internal.h"

/* The transfer, with extra (0 or RWF_APPEND) added to the request's own
 * RWF_ flags. */
static ssize_t rw(struct ap_req *r, int fd, bool seekable, int extra)
{
	struct iovec one = { r->buf, r->nbytes };
	const struct iovec *iov = r->buf;
	int cnt = (int)r->nbytes;
	off_t off = seekable ? r->offset : -1;  /* -1: the file position */
	bool o = ap_op_writes(r->op);
	int flags = r->rw_flags | extra;

	/* preadv2/pwritev2 take -1 for "the file position": a negative offset
	 * on a seekable file is EINVAL, as pread/pwrite and kernel AIO say,
	 * whatever flags the transfer carries. */
	if (seekable && r->offset < 0) {
		errno = EINVAL;
		return -1;
	}
	if (r->op == AP_OP_READ || r->op == AP_OP_WRITE) {
		if (!flags && seekable)
			return o ? pwrite(fd, r->buf, r->nbytes, r->offset)
			             : pread(fd, r->buf, r->nbytes, r->offset);
		if (!flags)
			return o ? write(fd, r->buf, r->nbytes)
			             : read(fd, r->buf, r->nbytes);
		iov = &one;
		cnt = 1;
	} else if (r->nbytes > INT32_MAX) {
		errno = EINVAL;
		return -1;
	}
	return o ? pwritev2(fd, iov, cnt, off, flags)
	             : preadv2(fd, iov, cnt, off, flags);
}

void ap_exec(struct ap_req *r, int fd, bool seekable)
{
	ssize_t n;
	int extra;

	do {
		switch (r->op) {
		case AP_OP_READ:
		case AP_OP_WRITE:
		case AP_OP_READV:
		case AP_OP_WRITEV:
			/* Submitted as an append: it appends even if O_APPEND
			 * was cleared since (the ordering rules ran it as one).
			 * Kernels before 4.16 know no RWF_APPEND: there the
			 * description's O_APPEND, which it was submitted with,
			 * does the appending. */
			extra = r->append && seekable && ap_op_writes(r->op) &&
			        !(r->rw_flags & RWF_APPEND) ? RWF_APPEND : 0;
			n = rw(r, fd, seekable, extra);
			if (n < 0 && errno == EOPNOTSUPP && extra)
				n = rw(r, fd, seekable, 0);
			break;
		case AP_OP_FSYNC:
			n = fsync(fd);
			break;
		case AP_OP_FDSYNC:
			n = fdatasync(fd);
			break;
		default:
			n = -1;
			errno = EINVAL;
			break;
		}
	} while (n < 0 && errno == EINTR);
	r->res = n;
	r->err = n < 0 ? errno : 0;
}

size_t ap_nowait_bytes(const struct ap_req *r)
{
	const struct iovec *iov = r->buf;
	size_t want = 0;

	if (r->offset < 0)
		return 0;
	if (r->op == AP_OP_READ)
		return r->nbytes <= SSIZE_MAX ? r->nbytes : 0;
	if (r->op != AP_OP_READV || r->nbytes == 0 || r->nbytes > 16)
		return 0;
	for (size_t i = 0; i < r->nbytes; i++) {
		if (iov[i].iov_len > SSIZE_MAX - want)
			return 0;
		want += iov[i].iov_len;
	}
	return want;
}

bool ap_exec_nowait(struct ap_req *r, int fd)
{
	struct iovec one = { r->buf, r->nbytes };
	const struct iovec *iov = &one;
	int cnt = 1;
	size_t want = ap_nowait_bytes(r);
	ssize_t n;

	if (want == 0)
		return false;
	if (r->op == AP_OP_READV) {
		iov = r->buf;
		cnt = (int)r->nbytes;
	}
	n = preadv2(fd, iov, cnt, r->offset, r->rw_flags | RWF_NOWAIT);
	if (n < 0 || (size_t)n != want)
		return false;
	r->res = n;
	r->err = 0;
	return true;
}
