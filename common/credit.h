/* Credit-based flow control for two-sided messages, kept free of verbs so
 * that it can be tested on its own (tests/test_credit.c).
 *
 * Each side pre-posts `depth` receive buffers for ordinary messages plus
 * CREDIT_SPARE for credit-only messages.  A sender spends one credit per
 * ordinary message (SEND, or RDMA WRITE with immediate, which also consumes
 * a receive).  The receiver returns credits as it reposts buffers:
 * piggybacked on any message it sends, or in a credit-only message once
 * `depth/2` are owed.  A credit-only message spends no credit and earns
 * none back.  Every credit-only message returns at least depth/2 credits,
 * and at most `depth` credits can be owed to a peer at once, so at most two
 * credit-only messages are ever unconsumed at the receiver: CREDIT_SPARE is
 * 2.  Neither side can starve: a side at zero credits has `depth` messages
 * waiting at its peer, whose processing owes it enough for a credit-only
 * message, which needs no credit to leave.
 */
#ifndef DSM_CREDIT_H
#define DSM_CREDIT_H

#include <stdbool.h>

#define CREDIT_SPARE 2u

struct credit {
	unsigned depth;     /* peer's ordinary receive buffers */
	unsigned avail;     /* credits we may spend now */
	unsigned owed;      /* credits we owe the peer (buffers reposted) */
};

static inline void credit_init(struct credit *c, unsigned depth)
{
	c->depth = depth;
	c->avail = depth;
	c->owed = 0;
}

/* Spend a credit for an ordinary message; false if none is left. */
static inline bool credit_take(struct credit *c)
{
	if (c->avail == 0)
		return false;
	c->avail--;
	return true;
}

/* Credits to put in the header of a message about to leave. */
static inline unsigned credit_piggyback(struct credit *c)
{
	unsigned n = c->owed;

	c->owed = 0;
	return n;
}

/* The peer returned n credits.  False (and nothing changes) if that would
 * give us more than the peer has buffers: a broken or hostile peer. */
static inline bool credit_grant(struct credit *c, unsigned n)
{
	if (n > c->depth - c->avail)
		return false;
	c->avail += n;
	return true;
}

/* We consumed and reposted one of our buffers for an ordinary message. */
static inline void credit_reposted(struct credit *c) { c->owed++; }

/* Whether enough is owed to justify a credit-only message. */
static inline bool credit_need_msg(const struct credit *c)
{
	return c->owed > 0 && c->owed >= (c->depth + 1) / 2;
}

#endif
