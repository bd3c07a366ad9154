/* ctx.c: the libaio front end's contexts: the registry of live contexts,
 * their reference counts, and the accounting of their rings (room,
 * events in flight, reaping).
 *
 * Owns:
 *   reg      the registry, a hash table keyed by handle, guarded by
 *            reg.lock (a writer-preferring rwlock).  Every call validates
 *            its handle here (ap_ctx_get) before touching anything, so a
 *            garbage, destroyed or foreign handle gives -EINVAL without
 *            being dereferenced.
 *   destroy_chan, where io_destroy waits for a dead context's references
 *            to drop (ap_ctx_wait_unused).
 * A context's own fields are described in laio.h; its ring is written
 * under its ring_lock (the innermost lock), its counts are atomics.
 * reg.lock is taken alone, never across an engine call; fork's prepare
 * hook takes it first (ap_reg_lock), then poller.lock.
 */
#include "config.h"

#include <stdlib.h>

#include "laio.h"

static struct {
	pthread_rwlock_t lock;
	struct ap_ctx **tab;
	unsigned bits;                /* tab has 1 << bits chains, or none */
	size_t n;
	unsigned next_id;
} reg = {
	/* Lookups are many and short; io_setup, io_destroy and fork must not
	 * starve behind them. */
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
	.lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
#else
	.lock = PTHREAD_RWLOCK_INITIALIZER,
#endif
};

/* io_destroy waits here for a dead context's references to drop. */
static struct ap_chan destroy_chan;

static size_t reg_hash(const void *handle, unsigned bits)
{
	uint64_t h = (uint64_t)(uintptr_t)handle >> 6;

	return (size_t)((h * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
}

/* Under reg.lock. */
static struct ap_ctx **reg_slot(const void *handle)
{
	struct ap_ctx **p;

	if (!reg.tab)
		return NULL;
	for (p = &reg.tab[reg_hash(handle, reg.bits)]; *p; p = &(*p)->hnext)
		if ((void *)(*p)->ring == handle)
			return p;
	return NULL;
}

/* Under reg.lock (write): one more context.  false on ENOMEM. */
static bool reg_insert(struct ap_ctx *ctx)
{
	if (reg.n + 1 > ((size_t)1 << reg.bits) || !reg.tab) {
		unsigned bits = reg.tab ? reg.bits + 1 : 6;
		struct ap_ctx **tab = calloc((size_t)1 << bits, sizeof *tab);

		if (!tab)
			return false;
		for (size_t i = 0; reg.tab && i < ((size_t)1 << reg.bits); i++) {
			struct ap_ctx *c, *next;
			for (c = reg.tab[i]; c; c = next) {
				size_t h = reg_hash(c->ring, bits);
				next = c->hnext;
				c->hnext = tab[h];
				tab[h] = c;
			}
		}
		free(reg.tab);
		reg.tab = tab;
		reg.bits = bits;
	}
	size_t h = reg_hash(ctx->ring, reg.bits);
	ctx->hnext = reg.tab[h];
	reg.tab[h] = ctx;
	reg.n++;
	return true;
}

/* The live context of a handle, with a reference; NULL if there is none. */
struct ap_ctx *ap_ctx_get(io_context_t handle)
{
	struct ap_ctx **p, *ctx = NULL;

	if (!handle)
		return NULL;
	pthread_rwlock_rdlock(&reg.lock);
	if ((p = reg_slot(handle)) != NULL) {
		ctx = *p;
		ap_add(&ctx->refs, 1);
	}
	pthread_rwlock_unlock(&reg.lock);
	return ctx;
}

/* Drops a reference; ctx may be freed as soon as this returns. */
void ap_ctx_put(struct ap_ctx *ctx)
{
	if (__atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) == CTX_DEAD)
		ap_chan_wake(&destroy_chan);
}

bool ap_ctx_dead(struct ap_ctx *ctx)
{
	return (__atomic_load_n(&ctx->refs, __ATOMIC_SEQ_CST) & CTX_DEAD) != 0;
}

/* Wakes everyone waiting on ctx for an event (or for its death). */
void ap_ctx_wake(struct ap_ctx *ctx)
{
	ap_chan_wake(&ctx->chan);   /* a full barrier: then look at npw */
	if (__atomic_load_n(&ctx->npw, __ATOMIC_SEQ_CST)) {
		ap_lock(&ctx->lock);
		for (struct ap_dnode *n = ctx->pw.head; n; n = n->next)
			ap_wake_signal(&AP_DLIST_ENTRY(n, struct pwaiter, link)->pipe);
		ap_unlock(&ctx->lock);
	}
}

/* The ring's head as the program left it.  Every caller of ap_ring_used
 * reads it before `pushed`: a head read after the count can be past the
 * tail the count gives (an event pushed and reaped between the two reads),
 * which would make the ring look full. */
uint32_t ap_ring_head(struct ap_ctx *ctx)
{
	uint32_t head = ap_load(&ctx->ring->head);

	return head >= ctx->nr ? head % ctx->nr : head;
}

/* Events in the ring not yet reaped, given its head (ap_ring_head) and then
 * the count of events pushed. */
uint32_t ap_ring_used(const struct ap_ctx *ctx, uint32_t head,
		uint64_t pushed)
{
	uint32_t tail = (uint32_t)(pushed % ctx->nr);

	return tail >= head ? tail - head : tail + ctx->nr - head;
}

/* Requests accepted and not yet reaped: in flight plus events in the ring,
 * both from one read of `pushed', so an event moving from one to the other
 * is counted once.  pushed is read first: a count read later is never
 * below it. */
uint64_t ap_ctx_outstanding(struct ap_ctx *ctx)
{
	uint32_t head = ap_ring_head(ctx);
	uint64_t p = ap_load(&ctx->pushed);

	return ap_load(&ctx->reserved) - p + ap_ring_used(ctx, head, p);
}

/* Takes a slot for one more request: false when the ring has no room.
 * Room is nevents - (in flight + unreaped), both computed from one read of
 * `pushed`, so an event moving from one to the other is counted once. */
bool ap_ctx_reserve(struct ap_ctx *ctx)
{
	for (;;) {
		uint64_t s = ap_load(&ctx->reserved);
		uint32_t head = ap_ring_head(ctx);
		uint64_t p = ap_load(&ctx->pushed);

		if ((int64_t)(s - p) < 0)
			continue;   /* s is stale: others came and went since */
		if (s - p + ap_ring_used(ctx, head, p) >= ctx->nevents) {
			if (ap_load(&ctx->reserved) != s || ap_ring_head(ctx) != head)
				continue;   /* stale: cancellations or reaps may have
				               freed room */
			return false;
		}
		if (__atomic_compare_exchange_n(&ctx->reserved, &s, s + 1, false,
		                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	}
}

/* A reserved request ends without an event (refused, or cancelled). */
void ap_ctx_unreserve(struct ap_ctx *ctx)
{
	__atomic_sub_fetch(&ctx->reserved, 1, __ATOMIC_RELEASE);
}

/* Copies up to nr events out of the ring, oldest first. */
long ap_ring_reap(struct ap_ctx *ctx, struct io_event *ev, long nr)
{
	struct aio_ring *ring = ctx->ring;
	uint32_t head, tail;
	long n = 0;

	if (nr <= 0)
		return 0;
	head = ap_load_relaxed(&ring->head);
	if (head < ctx->nr && head == ap_load(&ctx->pushed) % ctx->nr)
		return 0;   /* empty: no lock needed to say so */
	ap_lock(&ctx->ring_lock);
	tail = (uint32_t)(ctx->pushed % ctx->nr);
	head = ap_load_relaxed(&ring->head);
	if (head >= ctx->nr)
		head %= ctx->nr;
	while (head != tail && n < nr) {
		ev[n++] = ring->io_events[head];
		head = head + 1 == ctx->nr ? 0 : head + 1;
	}
	ap_store(&ring->head, head);
	ap_unlock(&ctx->ring_lock);
	return n;
}

/* ---- registration ------------------------------------------------------- */

bool ap_ctx_register(struct ap_ctx *ctx)
{
	bool ok;

	pthread_rwlock_wrlock(&reg.lock);
	ctx->ring->id = reg.next_id++;
	ok = reg_insert(ctx);
	pthread_rwlock_unlock(&reg.lock);
	return ok;
}

struct ap_ctx *ap_ctx_unregister(io_context_t handle)
{
	struct ap_ctx **p, *ctx = NULL;

	if (!handle)
		return NULL;
	pthread_rwlock_wrlock(&reg.lock);
	if ((p = reg_slot(handle)) != NULL) {
		ctx = *p;
		*p = ctx->hnext;
		reg.n--;
		__atomic_or_fetch(&ctx->refs, CTX_DEAD, __ATOMIC_SEQ_CST);
	}
	pthread_rwlock_unlock(&reg.lock);
	return ctx;
}

void ap_ctx_wait_unused(struct ap_ctx *ctx)
{
	for (;;) {
		uint32_t seen = ap_chan_seq(&destroy_chan);

		if (ap_load(&ctx->refs) == CTX_DEAD)
			break;
		ap_chan_wait(&destroy_chan, seen, NULL);
	}
}

/* ---- fork --------------------------------------------------------------- */

void ap_reg_lock(void)
{
	pthread_rwlock_wrlock(&reg.lock);
}

void ap_reg_unlock(void)
{
	pthread_rwlock_unlock(&reg.lock);
}

/* The child has none of the parent's contexts, as with the kernel: they
 * are forgotten (their memory is left as it is: the child's copy costs
 * nothing until written, and no new context can reuse their addresses),
 * so their handles give -EINVAL. */
void ap_reg_atfork_child(void)
{
	pthread_rwlockattr_t ra;

	for (size_t i = 0; reg.tab && i < ((size_t)1 << reg.bits); i++)
		for (struct ap_ctx *c = reg.tab[i]; c; c = c->hnext)
			ap_wake_close(&c->spare);   /* descriptors do not stay */
	free(reg.tab);   /* the table only: the contexts stay, forgotten */
	reg.tab = NULL;
	reg.bits = 0;
	reg.n = 0;
	pthread_rwlockattr_init(&ra);
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	pthread_rwlock_init(&reg.lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	destroy_chan = (struct ap_chan){ 0, 0 };
}
