/* Big buffers kept from one input to the next, for fuzz_proto.
 *
 * Each dsmd core's page module allocates and zeroes about 2 MB of slot
 * buffers at set-up (page/page.c, reg_buf).  Fresh from the kernel every
 * input, those pages cost most of a run: faulting them in took over 70%
 * of the time, at 120 inputs a second.  page.c is built for the fuzzer
 * with aligned_alloc and free renamed to the two functions below, which
 * keep big buffers here instead of giving them back; page.c still zeroes
 * what it gets, so it sees exactly what a fresh allocation gives it.  A
 * buffer in the pool is poisoned, so a stale use of it from a torn-down
 * core is still reported by AddressSanitizer.
 */
#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#define POOL_MIN (64u << 10) /* smaller ones go to the allocator */
#define POOL_MAX 32

void *fuzz_pool_alloc(size_t align, size_t size);
void fuzz_pool_free(void *p);

static struct {
	void *p;
	size_t size;
	bool used;
} pool[POOL_MAX];

void *fuzz_pool_alloc(size_t align, size_t size)
{
	int empty = -1;
	void *p;

	if (size < POOL_MIN || align > 4096)
		return aligned_alloc(align, size);
	for (int i = 0; i < POOL_MAX; i++) {
		if (pool[i].p && !pool[i].used && pool[i].size == size) {
			pool[i].used = true;
			ASAN_UNPOISON_MEMORY_REGION(pool[i].p, size);
			return pool[i].p;
		}
		if (!pool[i].p && empty < 0)
			empty = i;
	}
	p = aligned_alloc(4096, size);
	if (p && empty >= 0)
		pool[empty] = (typeof(pool[0])){.p = p, .size = size,
						.used = true};
	return p;
}

void fuzz_pool_free(void *p)
{
	for (int i = 0; p && i < POOL_MAX; i++) {
		if (pool[i].p == p) {
			pool[i].used = false;
			ASAN_POISON_MEMORY_REGION(p, pool[i].size);
			return;
		}
	}
	free(p);
}
