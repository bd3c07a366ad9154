/* dlist.h: an intrusive doubly linked list.  The node is a member of what
 * it links and the owner finds itself again with AP_DLIST_ENTRY; a list
 * knows its head and its tail.  Header-only, so that the libev adapter, a
 * library of its own, uses it too.  No lock of its own: each list is
 * guarded by whatever guards its owner.
 */
#ifndef AIOPOOL_DLIST_H
#define AIOPOOL_DLIST_H

#include <stddef.h>

struct ap_dnode {
	struct ap_dnode *prev, *next;
};

struct ap_dlist {
	struct ap_dnode *head, *tail;
};

/* The structure of type `type' whose member `member' is the node n. */
#define AP_DLIST_ENTRY(n, type, member) \
	((type *)(void *)((char *)(n) - offsetof(type, member)))

/* Links n after pos (pos NULL: at the head). */
static inline void ap_dlist_insert_after(struct ap_dlist *l,
		struct ap_dnode *pos, struct ap_dnode *n)
{
	n->prev = pos;
	n->next = pos ? pos->next : l->head;
	if (n->next)
		n->next->prev = n;
	else
		l->tail = n;
	if (pos)
		pos->next = n;
	else
		l->head = n;
}

static inline void ap_dlist_push_back(struct ap_dlist *l, struct ap_dnode *n)
{
	ap_dlist_insert_after(l, l->tail, n);
}

/* Unlinks n, which must be on l; its links become NULL. */
static inline void ap_dlist_unlink(struct ap_dlist *l, struct ap_dnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->next = n->prev = NULL;
}

#endif
