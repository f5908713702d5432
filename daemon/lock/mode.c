/* Modes and names: pure functions, with no daemon behind them (the unit
 * test test_lock_mode links this file alone).
 *
 * The six modes and their compatibility are VMS's: a mode may be held
 * beside another exactly when the matrix says so, and a request waits
 * until its mode is compatible with every granted one.  A resource is
 * named by its parent's key and its name, hashed into the key that places
 * it; owners are ranked by (node, connection) so that of the owners on a
 * deadlock cycle exactly one, the largest, finds it (deadlock.c).
 */
#define LOCK_MODE_ONLY
#include <dsm.h>

#include "lock.h"

/* Bit m of compat[a]: mode a may be held with mode m. */
static const uint8_t compat[WIRE_LK_MODES] = {
	[DSM_LK_NL] = 0x3f, /* all */
	[DSM_LK_CR] = 0x1f, /* all but EX */
	[DSM_LK_CW] = 0x07, /* NL CR CW */
	[DSM_LK_PR] = 0x0b, /* NL CR PR */
	[DSM_LK_PW] = 0x03, /* NL CR */
	[DSM_LK_EX] = 0x01, /* NL */
};

bool lock_compatible(unsigned a, unsigned b)
{
	if (a == WIRE_LK_NONE || b == WIRE_LK_NONE)
		return true;
	return a < WIRE_LK_MODES && b < WIRE_LK_MODES && (compat[a] >> b & 1);
}

bool lock_weaker_or_equal(unsigned b, unsigned a)
{
	return (compat[b] & compat[a]) == compat[a];
}

uint64_t lock_key(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
	size_t i;

	for (i = 0; i < 8; i++) {
		h ^= (parent >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	for (i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h ? h : 1;
}

uint64_t lock_owner_rank(const struct wire_lock_id *id)
{
	return (uint64_t)id->node << 32 | id->owner;
}

bool lock_same_lock(const struct wire_lock_id *a, const struct wire_lock_id *b)
{
	return a->handle == b->handle && a->node == b->node &&
	       a->owner == b->owner;
}
