/* Faults taken by the kernel on the process's behalf: read() and pread()
 * into shared memory, write() from it.
 *
 *   coherence kernel
 *
 * A rank of node 1 fills 8 pages with a pattern (MODIFIED on node 1).  Then
 * rank 0 (node 0, which holds none of them):
 *   pipe in:   read() 6000 bytes from a pipe to page 0 + 2048 (pages 0-1);
 *   file in:   pread() 5000 bytes of a file to page 3 - 1000 (pages 2-3);
 *   pipe out:  write() 5000 bytes from page 4 + 100 (pages 4-5) to a pipe,
 *              compared with the pattern when read back;
 *   upgrade:   reads page 6 (SHARED), then read()s 1000 bytes into it.
 * A copy the kernel cannot complete fails with EFAULT or comes back short.
 * After a barrier every rank checks all 8 pages byte for byte: the new
 * bytes where the kernel wrote, node 1's pattern everywhere else (a page
 * granted without its data would show zeros).
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPAGES 8

struct span {
	size_t off, len;
	uint8_t seed;
};

static const struct span spans[] = {
	{2048, 6000, 0x31},                 /* pipe in */
	{3 * PAGE - 1000, 5000, 0x57},      /* file in */
	{6 * PAGE + 500, 1000, 0x7b},       /* pipe in, upgrade */
};

static uint8_t base_byte(size_t off)
{
	return (uint8_t)(off * 7 + off / PAGE * 13 + 1);
}

static uint8_t new_byte(const struct span *s, size_t i)
{
	return (uint8_t)(s->seed + i * 3 + i / 251);
}

static void fill(uint8_t *buf, const struct span *s)
{
	size_t i;

	for (i = 0; i < s->len; i++)
		buf[i] = new_byte(s, i);
}

static void full_read(int fd, void *dst, size_t len, const char *what)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, (char *)dst + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			coh_fail("%s: read() into shared memory: %s after %zu "
				 "of %zu bytes", what,
				 n ? strerror(errno) : "end of file", got, len);
		got += (size_t)n;
	}
}

static void pipe_in(char *base, const struct span *s, const char *what)
{
	uint8_t buf[8192];
	int p[2];

	if (pipe(p))
		coh_fail("pipe: %s", strerror(errno));
	fill(buf, s);
	if (write(p[1], buf, s->len) != (ssize_t)s->len)
		coh_fail("write to pipe: %s", strerror(errno));
	full_read(p[0], base + s->off, s->len, what);
	close(p[0]);
	close(p[1]);
}

static void file_in(char *base, const struct span *s)
{
	char path[] = "/tmp/coherence-kernel-XXXXXX";
	uint8_t buf[8192];
	ssize_t n;
	int fd = mkstemp(path);

	if (fd < 0)
		coh_fail("mkstemp: %s", strerror(errno));
	unlink(path);
	fill(buf, s);
	if (write(fd, buf, s->len) != (ssize_t)s->len)
		coh_fail("write to %s: %s", path, strerror(errno));
	n = pread(fd, base + s->off, s->len, 0);
	if (n != (ssize_t)s->len)
		coh_fail("pread() of a file into shared memory: %zd of %zu "
			 "bytes (%s)", n, s->len, n < 0 ? strerror(errno) : "");
	close(fd);
}

static void pipe_out(char *base)
{
	size_t off = 4 * PAGE + 100, len = 5000, i;
	uint8_t buf[8192];
	ssize_t n;
	int p[2];

	if (pipe(p))
		coh_fail("pipe: %s", strerror(errno));
	n = write(p[1], base + off, len);
	if (n != (ssize_t)len)
		coh_fail("write() from shared memory to a pipe: %zd of %zu "
			 "bytes (%s)", n, len, n < 0 ? strerror(errno) : "");
	full_read(p[0], buf, len, "pipe out, reading back");
	for (i = 0; i < len; i++)
		if (buf[i] != base_byte(off + i))
			coh_fail("write() from shared memory sent byte %zu as "
				 "%#x, the page holds %#x", i, buf[i],
				 base_byte(off + i));
	close(p[0]);
	close(p[1]);
}

static void kernel_faults(char *base)
{
	int st;

	coh_phase("kernel: read() from a pipe");
	pipe_in(base, &spans[0], "pipe in");
	coh_phase("kernel: pread() from a file");
	file_in(base, &spans[1]);
	coh_phase("kernel: write() to a pipe");
	pipe_out(base);
	coh_phase("kernel: read() into a SHARED page");
	if (*(volatile uint8_t *)(base + 6 * PAGE) != base_byte(6 * PAGE))
		coh_fail("page 6 reads wrong before the upgrade");
	st = coh_state(base + 6 * PAGE);
	if (st != DSM_PAGE_SHARED)
		coh_fail("page 6 is %s after a read, want SHARED",
			 coh_state_name(st));
	pipe_in(base, &spans[2], "pipe in to a SHARED page");
}

static uint8_t expected(size_t off)
{
	size_t i;

	for (i = 0; i < sizeof(spans) / sizeof(spans[0]); i++)
		if (off >= spans[i].off && off < spans[i].off + spans[i].len)
			return new_byte(&spans[i], off - spans[i].off);
	return base_byte(off);
}

static void check(const char *base)
{
	size_t off;

	for (off = 0; off < NPAGES * PAGE; off++) {
		uint8_t v = ((const volatile uint8_t *)base)[off];

		if (v != expected(off))
			coh_fail("page %zu byte %zu is %#x, want %#x",
				 off / PAGE, off % PAGE, v, expected(off));
	}
}

int mode_kernel(int argc, char **argv)
{
	char *base;
	size_t off;

	(void)argc;
	(void)argv;
	coh_init();
	if (coh.nnodes < 2)
		coh_fail("needs 2 nodes");
	base = coh_alloc(NPAGES * PAGE);
	coh_phase("kernel: node 1 writes");
	if (coh.rank == coh_rank_of(1, 0))
		for (off = 0; off < NPAGES * PAGE; off++)
			((volatile uint8_t *)base)[off] = base_byte(off);
	coh_barrier();
	if (coh.rank == 0)
		kernel_faults(base);
	coh_barrier();
	coh_phase("kernel: check");
	check(base);
	coh_barrier();
	coh_finish();
	return 0;
}
