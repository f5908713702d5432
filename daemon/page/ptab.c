/* Tables indexed by page, filled a chunk at a time: the arena may be far
 * larger than what a node ever touches. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "page.h"

int ptab_init(struct ptab *t, uint64_t n, size_t elem)
{
	t->nchunks = (size_t)(n + PTAB_CHUNK - 1) / PTAB_CHUNK;
	t->elem = elem;
	t->chunks = calloc(t->nchunks, sizeof(*t->chunks));
	return t->chunks ? 0 : -ENOMEM;
}

void ptab_free(struct ptab *t)
{
	size_t i;

	for (i = 0; t->chunks && i < t->nchunks; i++)
		free(t->chunks[i]);
	free(t->chunks);
	t->chunks = NULL;
}

void *ptab_get(struct ptab *t, uint64_t idx, bool create)
{
	size_t c = (size_t)(idx / PTAB_CHUNK);

	if (c >= t->nchunks)
		return NULL;
	if (!t->chunks[c]) {
		if (!create)
			return NULL;
		t->chunks[c] = calloc(PTAB_CHUNK, t->elem);
		if (!t->chunks[c]) {
			log_err("out of memory for page tables");
			return NULL;
		}
	}
	return (char *)t->chunks[c] + (idx % PTAB_CHUNK) * t->elem;
}
