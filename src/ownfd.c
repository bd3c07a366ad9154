/* ownfd.c: the descriptors the libaio front end keeps for itself: its
 * wake-up pipes (the poller's, each masked waiter's), the duplicates it
 * takes of a RESFD eventfd and of a waiting POLL's fd, and how each is
 * checked before use (laio.h says why).
 *
 * Owns no state and no lock: each descriptor belongs to the structure that
 * holds it, under that structure's lock.
 */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "laio.h"

/* What fd names now; false if it is not open. */
bool ap_fdid_take(int fd, struct fdid *id)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return false;
	*id = (struct fdid){ st.st_dev, st.st_ino };
	return true;
}

/* Does fd still name what ap_fdid_take saw? */
bool ap_fdid_same(int fd, dev_t dev, ino_t ino)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev &&
	       st.st_ino == ino;
}

/* A new pipe end, fd, moved out of the low numbers a program expects its
 * next open() to get (where no high one is free, the low one serves); -1
 * if it is no longer the pipe id names.  For the moment it was at the low
 * number, another thread's dup2() onto that number makes it the program's
 * file: that one is neither closed nor kept. */
static int wake_move(int fd, const struct fdid *id)
{
	int d = ap_fd_dup(fd);

	if (d < 0)
		return ap_fdid_same(fd, id->dev, id->ino) ? fd : -1;
	if (!ap_fdid_same(d, id->dev, id->ino)) {
		ap_close(d);   /* a duplicate of the program's file */
		return -1;
	}
	if (ap_fdid_same(fd, id->dev, id->ino))
		ap_close(fd);
	return d;
}

/* A new pipe in *w; false (and *w none) if there is no descriptor free. */
bool ap_wake_open(struct wakepipe *w)
{
	int p[2];

	*w = WAKEPIPE_NONE;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return false;
	/* Both ends have the pipe's inode. */
	if (!ap_fdid_take(p[1], &w->id) && !ap_fdid_take(p[0], &w->id))
		return false;
	w->rfd = wake_move(p[0], &w->id);
	w->wfd = wake_move(p[1], &w->id);
	if (w->rfd >= 0 && w->wfd >= 0)
		return true;
	ap_wake_close(w);   /* the end that is still the pipe */
	return false;
}

bool ap_wake_ours(const struct wakepipe *w, int fd)
{
	return ap_fdid_same(fd, w->id.dev, w->id.ino);
}

/* Are both ends still ours? */
bool ap_wake_ok(const struct wakepipe *w)
{
	return w->rfd >= 0 && ap_wake_ours(w, w->rfd) && ap_wake_ours(w, w->wfd);
}

/* A byte into the pipe, if its write end is still ours.  A full pipe is
 * awake already. */
void ap_wake_signal(const struct wakepipe *w)
{
	if (w->wfd >= 0 && ap_wake_ours(w, w->wfd)) {
		ssize_t n = write(w->wfd, "", 1);
		(void)n;
	}
}

/* Empties the pipe: false if it is broken (an end is no longer ours). */
bool ap_wake_drain(const struct wakepipe *w)
{
	char buf[64];

	if (!ap_wake_ok(w))
		return false;
	while (read(w->rfd, buf, sizeof buf) == (ssize_t)sizeof buf)
		;
	return true;
}

/* Closes the ends still ours, forgets the others. */
void ap_wake_close(struct wakepipe *w)
{
	if (w->rfd >= 0 && ap_wake_ours(w, w->rfd))
		ap_close(w->rfd);
	if (w->wfd >= 0 && ap_wake_ours(w, w->wfd))
		ap_close(w->wfd);
	*w = WAKEPIPE_NONE;
}
