/* Coherence tests: what every mode of the `coherence` program shares.
 *
 * The program runs under dsmrun, one copy per rank.  A mode checks a
 * property of libdsm's shared memory and fails with coh_fail(), which
 * prints "FAIL: ..." with the rank and exits 1; dsmrun then returns that
 * status.  A watchdog (alarm) turns a hang into a failure that names the
 * phase the rank was in.
 *
 * Shared variables are accessed with sequentially consistent atomics
 * (ld64/st64): they keep the compiler from caching or reordering them, and
 * on x86 a seq_cst store is followed by a full fence, which gives SC between
 * processes of one node (they share physical pages, so TSO applies there);
 * libdsm promises SC between nodes.
 */
#ifndef COH_COMMON_H
#define COH_COMMON_H

#include <dsm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE 4096u
#define WORDS_PER_PAGE (PAGE / sizeof(uint64_t))

/* Where this rank sits in the job. */
struct coh {
	int rank, size;    /* DSM_RANK, DSM_SIZE */
	int node, nnodes;  /* this rank's dsmd, the cluster's size */
	int local, lsize;  /* rank within the node, ranks per node */
};
extern struct coh coh;

/* Set by main(): the mode's name, for messages. */
extern const char *coh_mode;

void coh_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void coh_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What the rank is doing now; the watchdog's message names it. */
void coh_phase(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A hang of more than `seconds` fails the rank (0: no watchdog). */
void coh_watchdog(unsigned int seconds);

/* dsm_init() and the job's shape; any error fails. */
void coh_init(void);
/* dsm_finalize() (a rank that ends without it counts as dead), then "ok". */
void coh_finish(void);
void coh_barrier(void);
void *coh_alloc(size_t size);
void coh_free(void *p);
int coh_master(const void *p);
void coh_check_masters(const char *base, size_t npages);
int coh_state(const void *p);
const char *coh_state_name(int state);
void coh_stats(struct dsm_stats *s);
/* "present uffd-wp" / "present" / "not present" (or why unknown) for the
 * page holding p in this process, from /proc/self/pagemap. */
const char *coh_pte(const void *p);

/* Rank number of local rank `local` of node `node`. */
static inline int coh_rank_of(int node, int local)
{
	return node * coh.lsize + local;
}

static inline int coh_node_of(int rank)
{
	return rank / coh.lsize;
}

/* ---- shared variables ---- */

static inline uint64_t ld64(const volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void st64(volatile uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static inline void fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* The word `w` of page `pg` of a region. */
static inline volatile uint64_t *word_at(void *base, size_t pg, size_t w)
{
	return (volatile uint64_t *)((char *)base + pg * PAGE) + w;
}

/* Waiting for another rank without starving the daemons of CPU: spin a
 * little, then yield, then sleep. */
struct backoff {
	unsigned long n;
};
void backoff(struct backoff *b);

/* ---- random numbers (splitmix64) ---- */

struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)((rng_next(r) >> 32) * n >> 32);
}

/* Busy-wait about `us` microseconds (no system call). */
void spin_us(unsigned int us);
double now_s(void);

/* ---- pages with a chosen master ---- */

/* A region whose pages are handed out by the node that masters them, so
 * that a test can put its variables where their accesses are remote. */
struct pool {
	char *base;
	size_t npages;
	int *master;
	bool *used;
};
void pool_init(struct pool *pp, void *base, size_t npages);
void pool_reset(struct pool *pp);
void pool_destroy(struct pool *pp);
/* An unused page mastered by `want`, else any unused page. */
void *pool_take(struct pool *pp, int want);

/* ---- counters ---- */

struct stat_field {
	const char *name;
	size_t off;
};
extern const struct stat_field coh_stat_fields[];
extern const size_t coh_nstat_fields;

static inline uint64_t stat_get(const struct dsm_stats *s, size_t off)
{
	return *(const uint64_t *)((const char *)s + off);
}

#define STAT_DIFF(a, b, f) ((b)->f - (a)->f)

/* d = b - a, field by field. */
void stats_sub(struct dsm_stats *d, const struct dsm_stats *a,
	       const struct dsm_stats *b);
/* "name=value ..." of the non-zero fields of s, into buf. */
void stats_format(char *buf, size_t len, const struct dsm_stats *s);

/* ---- modes ---- */

int mode_litmus(int argc, char **argv);
int mode_bakery(int argc, char **argv);
int mode_stress(int argc, char **argv);
int mode_upgrade(int argc, char **argv);
int mode_falseshare(int argc, char **argv);
int mode_memcpy(int argc, char **argv);
int mode_local(int argc, char **argv);
int mode_cost(int argc, char **argv);
int mode_kernel(int argc, char **argv);
int mode_badinput(int argc, char **argv);
int mode_init_errors(int argc, char **argv);
int mode_exit(int argc, char **argv);

/* Argument i as a positive number, or `def` when absent. */
long arg_long(int argc, char **argv, int i, long def);

#endif
