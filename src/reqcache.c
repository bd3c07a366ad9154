/* reqcache.c: the request cache.  A front end's request is its own
 * structure with the engine's struct ap_req as its first member (posix.c,
 * libaio.c); ap_req_alloc hands out zeroed blocks of the size the front
 * end asks for, and freed blocks are kept for reuse, one list per size,
 * AIOPOOL_CACHE blocks in all (aio_init's aio_num).  A front end of a new
 * size needs no change here: the first free of a size takes a free list.
 *
 * Owns `cache` below, guarded by cache.lock, a leaf: nothing is taken
 * while it is held, and it is held for a few instructions.  The fork
 * handlers (pool.c) hold it across fork() through ap_req_cache_lock.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CACHE_SIZES 4   /* distinct request sizes: one per front end */

static struct {
	pthread_mutex_t lock;
	struct {
		size_t size;        /* 0: a free slot */
		struct ap_dnode *head;  /* through qlink.next */
	} list[CACHE_SIZES];
	long n;                 /* blocks kept, on all lists */
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Under cache.lock: the list of blocks of `size', or NULL; with `take',
 * a free slot becomes that list. */
static struct ap_dnode **list_of(size_t size, bool take)
{
	for (int i = 0; i < CACHE_SIZES; i++)
		if (cache.list[i].size == size)
			return &cache.list[i].head;
	for (int i = 0; take && i < CACHE_SIZES; i++)
		if (cache.list[i].size == 0) {
			cache.list[i].size = size;
			return &cache.list[i].head;
		}
	return NULL;
}

struct ap_req *ap_req_alloc(size_t size)
{
	struct ap_req *r = NULL;
	struct ap_dnode **l;

	ap_lock(&cache.lock);
	if ((l = list_of(size, false)) && (r = ap_req_of(*l))) {
		*l = r->qlink.next;
		cache.n--;
	}
	ap_unlock(&cache.lock);
	if (!r && !(r = malloc(size)))
		return NULL;
	memset(r, 0, size);
	r->size = size;
	return r;
}

void ap_req_free(struct ap_req *r)
{
	struct ap_dnode **l;

	ap_lock(&cache.lock);
	if (cache.n < ap_load_relaxed(&ap_knobs.cache) &&
	    (l = list_of(r->size, true))) {
		r->qlink.next = *l;
		*l = &r->qlink;
		cache.n++;
		r = NULL;
	}
	ap_unlock(&cache.lock);
	free(r);
}

void ap_req_cache_trim(void)
{
	struct ap_dnode *drop = NULL;

	ap_lock(&cache.lock);
	for (int i = 0; i < CACHE_SIZES; i++)
		while (cache.n > ap_load_relaxed(&ap_knobs.cache) &&
		       cache.list[i].head) {
			struct ap_dnode *n = cache.list[i].head;

			cache.list[i].head = n->next;
			cache.n--;
			n->next = drop;
			drop = n;
		}
	ap_unlock(&cache.lock);
	while (drop) {
		struct ap_req *r = ap_req_of(drop);

		drop = drop->next;
		free(r);
	}
}

void ap_req_cache_lock(void)
{
	ap_lock(&cache.lock);
}

void ap_req_cache_unlock(void)
{
	ap_unlock(&cache.lock);
}
