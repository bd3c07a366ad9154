/* notify.c: delivering a sigevent.
 *
 * SIGEV_SIGNAL and SIGEV_THREAD_ID are queued at once with
 * rt_sigqueueinfo / rt_tgsigqueueinfo, si_code SI_ASYNCIO, as glibc does.
 * SIGEV_THREAD runs the function on a new thread only when the caller gave
 * sigev_notify_attributes; otherwise on a notifier thread that is reused.
 * Each function runs as if on a thread of its own: a notification goes to
 * a notifier that is idle or starting, never behind a function that still
 * runs, so the notifiers grow to as many functions as run at once (no
 * bound) and shrink after the idle time, as the workers do.  Only when no
 * notifier exists and none can be created does the delivering thread run
 * the function itself.
 *
 * Signal masks: every thread started here starts with every signal blocked
 * and keeps them blocked except while it runs the user's function, which
 * runs with none blocked, as on glibc's thread per notification.  An idle
 * notifier never takes a process-directed signal.
 *
 * Owns: `np` below, guarded by np.lock, a leaf lock: outside fork() nothing
 * else is taken while it is held (fork's prepare handler takes engine.lock
 * and cache.lock after it: internal.h has the order), and no user code
 * runs under it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

unsigned long long ap_notify_failed;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;               /* CLOCK_MONOTONIC */
	struct ap_notify_node *head, *tail;
	int nqueued;                     /* notifications in the queue */
	int nthreads;                    /* notifier threads */
	int nidle;                       /* of which waiting on cv */
	int nstarting;                   /* of which created, not yet looking */
} np = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Every signal: the mask of an aiopool thread outside the user's code. */
static sigset_t all_signals;

static bool signo_ok(int signo)
{
	return signo > 0 && signo < NSIG;
}

int ap_sigevent_check(const struct sigevent *sev)
{
	switch (sev->sigev_notify) {
	case SIGEV_NONE:
		return 0;
	case SIGEV_SIGNAL:
		/* A zeroed aiocb asks for SIGEV_SIGNAL with signal 0: glibc
		 * then sends nothing, and programs rely on it. */
		return sev->sigev_signo == 0 || signo_ok(sev->sigev_signo) ? 0 : EINVAL;
	case SIGEV_THREAD:
		return sev->sigev_notify_function ? 0 : EINVAL;
	case SIGEV_THREAD_ID:
		/* The thread must exist now, in this process. */
		if (!signo_ok(sev->sigev_signo) || sev->_sigev_un._tid <= 0 ||
		    syscall(SYS_tgkill, getpid(), sev->_sigev_un._tid, 0) < 0)
			return EINVAL;
		return 0;
	}
	return EINVAL;
}

static void send_signal(const struct sigevent *sev, pid_t tid)
{
	siginfo_t si;
	long rc;

	memset(&si, 0, sizeof si);
	si.si_signo = sev->sigev_signo;
	si.si_code = SI_ASYNCIO;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value = sev->sigev_value;
	if (tid)
		rc = syscall(SYS_rt_tgsigqueueinfo, si.si_pid, tid, si.si_signo, &si);
	else
		rc = syscall(SYS_rt_sigqueueinfo, si.si_pid, si.si_signo, &si);
	if (rc < 0)  /* e.g. EAGAIN: RLIMIT_SIGPENDING; the I/O result stands */
		ap_add(&ap_notify_failed, 1);
}

/* Runs the user's function with the signal mask glibc gives it (nothing
 * blocked, as on a thread of its own), then puts back the mask `after`
 * before anything else runs on this thread.  n may be gone once done(arg)
 * has run. */
static void run(struct ap_notify_node *n, const sigset_t *after)
{
	sigset_t none;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	n->sev.sigev_notify_function(n->sev.sigev_value);
	pthread_sigmask(SIG_SETMASK, after, NULL);
	n->done(n->arg);
}

static void *one_shot(void *arg)
{
	run(arg, &all_signals);
	return NULL;
}

/* Under np.lock: the oldest queued notification, or NULL. */
static struct ap_notify_node *take(void)
{
	struct ap_notify_node *n = np.head;

	if (n) {
		np.head = n->next;
		if (!np.head)
			np.tail = NULL;
		np.nqueued--;
	}
	return n;
}

/* Under np.lock, with nothing queued: waits as an idle notifier.  false
 * when the idle time ran out with nothing to do: the thread exits. */
static bool idle_wait(void)
{
	int ms = ap_load_relaxed(&ap_knobs.idle_ms), rc;
	struct timespec deadline;

	if (ms < 0)
		return false;
	ap_deadline_ms(&deadline, ms);
	np.nidle++;
	rc = pthread_cond_timedwait(&np.cv, &np.lock, &deadline);
	np.nidle--;
	return rc != ETIMEDOUT || np.head;
}

/* A notifier: started with every signal blocked (ap_thread_start), and
 * counted in np.nstarting until it first looks at the queue. */
static void *notifier(void *arg)
{
	(void)arg;
	ap_lock(&np.lock);
	np.nstarting--;
	for (;;) {
		struct ap_notify_node *n = take();
		if (n) {
			ap_unlock(&np.lock);
			run(n, &all_signals);
			ap_lock(&np.lock);
		} else if (!idle_wait()) {
			break;
		}
	}
	np.nthreads--;
	ap_unlock(&np.lock);
	return NULL;
}

__attribute__((constructor)) static void notify_init(void)
{
	sigfillset(&all_signals);
	ap_cond_init(&np.cv);
}

/* Starts `want` notifiers already counted in np.nthreads and np.nstarting.
 * true if, after it, some notifier exists to take the queue. */
static bool spawn(int want)
{
	int failed = 0;
	bool any;

	for (int i = 0; i < want; i++)
		failed += ap_thread_start(notifier, NULL, NULL, 0) != 0;
	ap_lock(&np.lock);
	np.nthreads -= failed;
	np.nstarting -= failed;
	any = np.nthreads > 0;
	ap_unlock(&np.lock);
	return any;
}

/* Runs every queued notification on this thread: the last resort when no
 * notifier exists and none can be created.  This thread's mask is put back
 * after each function. */
static void run_queue_here(void)
{
	struct ap_notify_node *n;
	sigset_t mine;

	pthread_sigmask(SIG_BLOCK, NULL, &mine);
	for (;;) {
		ap_lock(&np.lock);
		n = np.nthreads == 0 ? take() : NULL;
		ap_unlock(&np.lock);
		if (!n)
			return;
		run(n, &mine);
	}
}

/* Queues n for a notifier.  Every queued notification has a taker of its
 * own, a notifier that is idle or starting, never one that runs a
 * function: one is started for each notification beyond them.  A
 * notification left without one (no thread could be created) is taken by
 * the next notifier to come free, and the next post tries again to start
 * one for it. */
static void post(struct ap_notify_node *n)
{
	int want;

	n->next = NULL;
	ap_lock(&np.lock);
	if (np.tail)
		np.tail->next = n;
	else
		np.head = n;
	np.tail = n;
	np.nqueued++;
	if (np.nidle > 0)
		pthread_cond_signal(&np.cv);
	want = np.nqueued - np.nidle - np.nstarting;
	if (want > 0) {
		np.nthreads += want;
		np.nstarting += want;
	}
	ap_unlock(&np.lock);
	if (want > 0 && !spawn(want))
		run_queue_here();
}

void ap_notify(struct ap_notify_node *n)
{
	switch (n->sev.sigev_notify) {
	case SIGEV_SIGNAL:
		if (n->sev.sigev_signo != 0)
			send_signal(&n->sev, 0);
		break;
	case SIGEV_THREAD_ID:
		send_signal(&n->sev, n->sev._sigev_un._tid);
		break;
	case SIGEV_THREAD:
		if (n->sev.sigev_notify_attributes &&
		    ap_thread_start(one_shot, n, n->sev.sigev_notify_attributes, 0) == 0)
			return;
		post(n);  /* also when the caller's attributes failed */
		return;
	}
	n->done(n->arg);
}

void ap_notify_atfork_prepare(void)
{
	ap_lock(&np.lock);
}

void ap_notify_atfork_parent(void)
{
	ap_unlock(&np.lock);
}

/* The parent's notifier threads and queued notifications are not the
 * child's. */
void ap_notify_atfork_child(void)
{
	np.head = np.tail = NULL;
	np.nqueued = np.nthreads = np.nidle = np.nstarting = 0;
	ap_notify_failed = 0;   /* counters start again in the child */
	ap_cond_init(&np.cv);
	ap_unlock(&np.lock);
}
