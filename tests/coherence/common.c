/* Helpers shared by the coherence test modes. */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct coh coh = {.rank = -1, .node = -1, .lsize = 1};
const char *coh_mode = "?";

static char phase[160] = "starting";
static unsigned int watchdog_s;

static void vsay(const char *tag, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void vsay(const char *tag, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (coh.rank >= 0)
		printf("%s%s: rank %d (node %d): %s\n", tag, coh_mode,
		       coh.rank, coh.node, msg);
	else
		printf("%s%s: %s\n", tag, coh_mode, msg);
	fflush(stdout);
}

void coh_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("FAIL: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void coh_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

void coh_phase(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(phase, sizeof(phase), fmt, ap);
	va_end(ap);
}

static void on_alarm(int sig)
{
	char msg[384];
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg),
		     "FAIL: %s: rank %d (node %d): watchdog: still running "
		     "after %u s, in phase: %s\n",
		     coh_mode, coh.rank, coh.node, watchdog_s, phase);
	if (n > 0 && write(STDOUT_FILENO, msg, (size_t)n) < 0)
		_exit(3);
	_exit(3);
}

void coh_watchdog(unsigned int seconds)
{
	watchdog_s = seconds;
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : def;
}

void coh_init(void)
{
	int rc;

	coh_phase("dsm_init");
	rc = dsm_init();
	if (rc)
		coh_fail("dsm_init: %s", strerror(-rc));
	coh.rank = dsm_rank();
	coh.size = dsm_size();
	coh.node = dsm_node();
	coh.nnodes = dsm_num_nodes();
	coh.local = env_int("DSM_LOCAL_RANK", 0);
	coh.lsize = env_int("DSM_LOCAL_SIZE", 1);
	if (coh.rank < 0 || coh.size <= 0 || coh.node < 0 || coh.nnodes <= 0)
		coh_fail("dsm_rank/size/node/num_nodes: %d %d %d %d",
			 coh.rank, coh.size, coh.node, coh.nnodes);
	if (coh.size != coh.nnodes * coh.lsize ||
	    coh.rank != coh_rank_of(coh.node, coh.local))
		coh_fail("rank %d of %d, local %d of %d on node %d of %d: "
			 "not rank = node * P + local", coh.rank, coh.size,
			 coh.local, coh.lsize, coh.node, coh.nnodes);
}

void coh_finish(void)
{
	int rc;

	coh_phase("dsm_finalize");
	rc = dsm_finalize();
	if (rc)
		coh_fail("dsm_finalize: %s", strerror(-rc));
	coh_say("ok");
}

void coh_barrier(void)
{
	int rc = dsm_barrier();

	if (rc)
		coh_fail("dsm_barrier (%s): %s", phase, strerror(-rc));
}

void *coh_alloc(size_t size)
{
	void *p = dsm_alloc(size);

	if (!p)
		coh_fail("dsm_alloc(%zu): %s", size, strerror(errno));
	if ((uintptr_t)p % PAGE)
		coh_fail("dsm_alloc(%zu) = %p: not page aligned", size, p);
	return p;
}

void coh_free(void *p)
{
	int rc = dsm_free(p);

	if (rc)
		coh_fail("dsm_free(%p): %s", p, strerror(-rc));
}

int coh_master(const void *p)
{
	int m = dsm_page_master(p);

	if (m < 0 || m >= coh.nnodes)
		coh_fail("dsm_page_master(%p) = %d", p, m);
	return m;
}

int coh_state(const void *p)
{
	int s = dsm_page_state(p);

	if (s < 0)
		coh_fail("dsm_page_state(%p): %s", p, strerror(-s));
	return s;
}

const char *coh_state_name(int state)
{
	switch (state) {
	case DSM_PAGE_INVALID: return "INVALID";
	case DSM_PAGE_SHARED: return "SHARED";
	case DSM_PAGE_MODIFIED: return "MODIFIED";
	}
	return "?";
}

void coh_stats(struct dsm_stats *s)
{
	int rc = dsm_get_stats(s);

	if (rc)
		coh_fail("dsm_get_stats: %s", strerror(-rc));
}

const char *coh_pte(const void *p)
{
	uint64_t e;
	off_t off = (off_t)((uintptr_t)p / PAGE * sizeof(e));
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return "unknown (no pagemap)";
	n = pread(fd, &e, sizeof(e), off);
	close(fd);
	if (n != sizeof(e))
		return "unknown (pagemap unreadable)";
	if (!(e >> 63 & 1))
		return "not present";
	return e >> 57 & 1 ? "present, uffd-wp" : "present, not uffd-wp";
}

void backoff(struct backoff *b)
{
	b->n++;
	if (b->n < 64)
		__builtin_ia32_pause();
	else if (b->n < 256)
		sched_yield();
	else
		usleep(100);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void spin_us(unsigned int us)
{
	double end = now_s() + us / 1e6;

	while (now_s() < end)
		__builtin_ia32_pause();
}

/* Every rank asks who masters each page of [base, base + npages pages):
 * all must name the same node, whichever node they ask from.  Collective. */
void coh_check_masters(const char *base, size_t npages)
{
	int *seen = coh_alloc(((size_t)coh.size * npages * sizeof(int) +
			       PAGE - 1) / PAGE * PAGE);
	struct dsm_stats st;
	size_t i;
	int r;

	for (i = 0; i < npages; i++)
		seen[(size_t)coh.rank * npages + i] =
			coh_master(base + i * PAGE);
	coh_barrier();
	for (r = 0; r < coh.size; r++)
		for (i = 0; i < npages; i++)
			if (seen[(size_t)r * npages + i] != seen[i])
				coh_fail("page %zu: rank %d says node %d "
					 "masters it, rank 0 says node %d", i,
					 r, seen[(size_t)r * npages + i],
					 seen[i]);
	coh_stats(&st);
	coh_say("every rank agrees on the masters of %zu pages; this node: "
		"migrations in %" PRIu64 " out %" PRIu64 ", forwards %" PRIu64
		", who-has %" PRIu64, npages, st.migrations_in,
		st.migrations_out, st.forwards, st.who_has_broadcasts);
	coh_barrier();
	coh_free(seen);
}

/* ---- pool ---- */

void pool_init(struct pool *pp, void *base, size_t npages)
{
	size_t i;

	pp->base = base;
	pp->npages = npages;
	pp->master = calloc(npages, sizeof(*pp->master));
	pp->used = calloc(npages, sizeof(*pp->used));
	if (!pp->master || !pp->used)
		coh_fail("out of memory");
	for (i = 0; i < npages; i++)
		pp->master[i] = coh_master(pp->base + i * PAGE);
}

void pool_reset(struct pool *pp)
{
	memset(pp->used, 0, pp->npages * sizeof(*pp->used));
}

void pool_destroy(struct pool *pp)
{
	free(pp->master);
	free(pp->used);
	pp->master = NULL;
	pp->used = NULL;
}

void *pool_take(struct pool *pp, int want)
{
	size_t i, any = pp->npages;

	for (i = 0; i < pp->npages; i++) {
		if (pp->used[i])
			continue;
		if (any == pp->npages)
			any = i;
		if (pp->master[i] == want)
			break;
	}
	if (i == pp->npages)
		i = any;
	if (i == pp->npages)
		coh_fail("page pool of %zu pages exhausted", pp->npages);
	pp->used[i] = true;
	return pp->base + i * PAGE;
}

/* ---- counters ---- */

#define F(x) {#x, offsetof(struct dsm_stats, x)}
const struct stat_field coh_stat_fields[] = {
	F(read_faults), F(write_faults), F(upgrade_faults), F(minor_faults),
	F(zero_fills), F(pages_received), F(pages_sent), F(bytes_received),
	F(bytes_sent), F(invalidations_sent), F(invalidations_received),
	F(downgrades), F(directory_local), F(directory_remote), F(forwards),
	F(msgs_sent), F(msgs_received), F(bad_msgs), F(wp_faults),
	F(stale_faults), F(held_back), F(lost_faults), F(holder_forwards),
	F(migrations_in), F(migrations_out), F(hint_hits), F(hint_misses),
	F(who_has_broadcasts), F(wakeups), F(poll_hits),
	F(direct_installs),
};
#undef F
const size_t coh_nstat_fields =
	sizeof(coh_stat_fields) / sizeof(coh_stat_fields[0]);

void stats_sub(struct dsm_stats *d, const struct dsm_stats *a,
	       const struct dsm_stats *b)
{
	const uint64_t *pa = (const uint64_t *)a, *pb = (const uint64_t *)b;
	uint64_t *pd = (uint64_t *)d;
	size_t i;

	for (i = 0; i < sizeof(*d) / sizeof(uint64_t); i++)
		pd[i] = pb[i] - pa[i];
}

void stats_format(char *buf, size_t len, const struct dsm_stats *s)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < coh_nstat_fields && used < len; i++) {
		uint64_t v = stat_get(s, coh_stat_fields[i].off);

		if (!v)
			continue;
		n = snprintf(buf + used, len - used, "%s%s=%llu",
			     used ? " " : "", coh_stat_fields[i].name,
			     (unsigned long long)v);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (!used)
		snprintf(buf, len, "(all zero)");
}

long arg_long(int argc, char **argv, int i, long def)
{
	char *end;
	long v;

	if (i >= argc)
		return def;
	errno = 0;
	v = strtol(argv[i], &end, 0);
	if (errno || *end || v <= 0)
		coh_fail("argument %d: '%s' is not a positive number", i,
			 argv[i]);
	return v;
}
