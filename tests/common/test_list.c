/* Unit tests of the intrusive list (common/list.h). */
#include <stddef.h>

#include "harness.h"
#include "list.h"

struct item {
	int v;
	struct list link;
};

/* The values of a list, in order, as a number (digit per item). */
static int digits(struct list *head)
{
	struct item *it;
	int n = 0;

	list_for_each(it, head, link)
		n = n * 10 + it->v;
	return n;
}

static int test_append_prepend_order(void)
{
	struct item a = {.v = 1}, b = {.v = 2}, c = {.v = 3};
	struct list h;

	list_init(&h);
	CHECK(list_empty(&h) && !list_first(&h, struct item, link));
	list_add_tail(&h, &a.link);
	list_add_tail(&h, &b.link);
	list_add_head(&h, &c.link);
	CHECK(digits(&h) == 312);
	CHECK(list_first(&h, struct item, link) == &c);
	CHECK(list_linked(&a.link) && !list_empty(&h));
	return 0;
}

static int test_unlink_anywhere(void)
{
	struct item it[5];
	struct list h;
	int i;

	list_init(&h);
	for (i = 0; i < 5; i++) {
		it[i].v = i + 1;
		list_add_tail(&h, &it[i].link);
	}
	list_del(&it[2].link);  /* middle */
	CHECK(digits(&h) == 1245);
	list_del(&it[0].link);  /* first */
	list_del(&it[4].link);  /* last */
	CHECK(digits(&h) == 24);
	CHECK(!list_linked(&it[0].link));
	list_del(&it[0].link);  /* a second unlink is harmless */
	CHECK(digits(&h) == 24);
	list_del(&it[1].link);
	list_del(&it[3].link);
	CHECK(list_empty(&h));
	return 0;
}

static int test_safe_walk_frees(void)
{
	struct item it[4], *p, *tmp;
	struct list h;
	int i, seen = 0;

	list_init(&h);
	for (i = 0; i < 4; i++) {
		it[i].v = i;
		list_add_tail(&h, &it[i].link);
	}
	list_for_each_safe(p, tmp, &h, link) {
		if (p->v % 2)
			list_del(&p->link);
		seen++;
	}
	CHECK(seen == 4 && digits(&h) == 2); /* 0 then 2 */
	return 0;
}

static int test_splice(void)
{
	struct item it[4];
	struct list a, b;
	int i;

	list_init(&a);
	list_init(&b);
	list_splice_tail(&a, &b); /* empty into empty */
	CHECK(list_empty(&a) && list_empty(&b));
	for (i = 0; i < 4; i++) {
		it[i].v = i + 1;
		list_add_tail(i < 2 ? &a : &b, &it[i].link);
	}
	list_splice_tail(&a, &b);
	CHECK(digits(&a) == 1234 && list_empty(&b));
	list_splice_tail(&b, &a);
	CHECK(digits(&b) == 1234 && list_empty(&a));
	return 0;
}

static const struct test_case tests[] = {
	{"append_prepend_order", test_append_prepend_order},
	{"unlink_anywhere", test_unlink_anywhere},
	{"safe_walk_frees", test_safe_walk_frees},
	{"splice", test_splice},
};

TEST_MAIN(tests, NULL)
