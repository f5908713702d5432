/* SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit pseudorandom
 * function, used as a MAC for the short messages of the rendezvous and the
 * connection set-up (a fresh nonce in each, so a tag is never reused). */
#ifndef DSM_SIPHASH_H
#define DSM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct sip_key {
	uint64_t k0, k1;
};

uint64_t siphash24(const struct sip_key *key, const void *data, size_t len);

/* The cluster key from a secret string (DSM_CLUSTER_KEY): its SipHash
 * under two fixed keys.  Every node derives the same key from the same
 * string. */
struct sip_key sip_key_from(const char *secret);

#endif
