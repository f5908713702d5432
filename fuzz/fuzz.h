/* What the harnesses share. */
#ifndef DSM_FUZZ_H
#define DSM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* An invariant of the code under test: a violation traps, which libFuzzer
 * reports as a crash with the input that caused it. */
#define REQUIRE(c)                        \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
