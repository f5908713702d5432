/* SipHash-2-4: see siphash.h.  Written from the paper's description:
 * four 64-bit words of state from the key, two rounds per 8-byte block,
 * the length in the last block's top byte, four rounds to finish. */
#include "siphash.h"

#include <string.h>

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3)                                          \
	do {                                                              \
		v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
		v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                    \
		v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                    \
		v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
	} while (0)

static uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t siphash24(const struct sip_key *key, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
	unsigned char last[8] = {0};
	size_t i, tail = len & 7;
	uint64_t m;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	memcpy(last, p + i, tail);
	last[7] = (unsigned char)len;
	m = load_le64(last);
	v3 ^= m;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	for (i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

struct sip_key sip_key_from(const char *secret)
{
	static const struct sip_key a = {0x64736d636c757374ull,
					 0x65726b6579206121ull};
	static const struct sip_key b = {0x6c696264736d2064ull,
					 0x6572697665732031ull};
	size_t n = strlen(secret);

	return (struct sip_key){siphash24(&a, secret, n),
				siphash24(&b, secret, n)};
}
