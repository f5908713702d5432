/* An intrusive doubly linked list with a head: O(1) append, prepend and
 * unlink, iteration in insertion order.  The node (struct list) lives
 * inside the object; container_of() gets the object back.
 *
 * A head is a struct list whose next and prev point at itself when empty
 * (list_init).  A node that is on no list is kept self-linked too
 * (list_del re-initialises it), so list_linked() can tell, and unlinking
 * it twice is harmless.
 */
#ifndef DSM_LIST_H
#define DSM_LIST_H

#include <stdbool.h>
#include <stddef.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct list {
	struct list *next, *prev;
};

static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}

static inline bool list_empty(const struct list *head)
{
	return head->next == head;
}

/* Whether node n is on a list (false for one list_init'ed or deleted). */
static inline bool list_linked(const struct list *n)
{
	return n->next && n->next != n;
}

static inline void list_insert_(struct list *n, struct list *prev,
				struct list *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

static inline void list_add_tail(struct list *head, struct list *n)
{
	list_insert_(n, head->prev, head);
}

static inline void list_add_head(struct list *head, struct list *n)
{
	list_insert_(n, head, head->next);
}

static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

/* Move every node of `from` to the end of `to`, in order; `from` ends
 * empty. */
static inline void list_splice_tail(struct list *to, struct list *from)
{
	if (list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	list_init(from);
}

#define list_entry(node, type, member) container_of(node, type, member)

/* The first object of a list, or NULL when it is empty. */
#define list_first(head, type, member) \
	(list_empty(head) ? NULL : list_entry((head)->next, type, member))

/* pos walks the objects; the body must not unlink pos (see _safe). */
#define list_for_each(pos, head, member)                                   \
	for (pos = list_entry((head)->next, __typeof__(*pos), member);     \
	     &pos->member != (head);                                       \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))

/* The same, where the body may unlink or free pos (tmp holds the next). */
#define list_for_each_safe(pos, tmp, head, member)                         \
	for (pos = list_entry((head)->next, __typeof__(*pos), member),     \
	     tmp = list_entry(pos->member.next, __typeof__(*pos), member); \
	     &pos->member != (head);                                       \
	     pos = tmp,                                                    \
	     tmp = list_entry(tmp->member.next, __typeof__(*pos), member))

#endif
