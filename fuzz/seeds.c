/* Writes the seed corpora: for every message type, the smallest all-zero
 * body wire_decode() accepts, as a message (corpus/wire/TYPE) and as a
 * client's IPC message with and without a descriptor (corpus/ipc/); and,
 * given a third directory, step sequences for fuzz_proto (fuzz/proto.h):
 * sharing patterns, lock contention, a death, and a peer replaying and
 * forging messages (corpus/proto/). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "wire.h"

static void put(const char *dir, const char *name, const void *p, size_t n,
		int flag)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return;
	if (flag >= 0)
		fputc(flag, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

/* A fuzz_proto input being written. */
static unsigned char seq[4096];
static size_t seq_len;

static void b(int n, ...)
{
	va_list ap;

	va_start(ap, n);
	while (n-- > 0 && seq_len < sizeof(seq))
		seq[seq_len++] = (unsigned char)va_arg(ap, int);
	va_end(ap);
}

#define B(...) b(sizeof((int[]){__VA_ARGS__}) / sizeof(int), __VA_ARGS__)

static void start(unsigned cfg)
{
	seq_len = 0;
	B((int)cfg);
}

static void fault(int node, int page, int kind)
{
	B(PR_FAULT, node, page, kind);
}

static void pump(void)
{
	B(PR_PUMP);
}

static void store(int node, int page)
{
	B(PR_STORE, node, page);
}

/* A new lock of process 0 of node on name index `name`. */
static void lock(int node, int name, int mode, int flags)
{
	B(PR_LOCK, node, 0, name, mode, flags);
}

static void done(const char *dir, const char *name)
{
	put(dir, name, seq, seq_len, -1);
}

static void proto_seeds(const char *dir)
{
	unsigned char raw[256];
	struct wire_dsm_req q = {.page = 4, .access = WIRE_ACC_READ,
				 .route = {.origin = 2}};
	struct wire_ipc_lock lk = {0};
	size_t n;

	/* Page 4 (master 1): written, read by two, upgraded, read back. */
	start(0);
	fault(0, 4, 1), pump(), store(0, 4);
	fault(2, 4, 0), pump(), fault(1, 4, 0), pump();
	fault(1, 4, 2), pump(), store(1, 4);
	fault(0, 4, 0), pump(), fault(2, 4, 1), pump(), store(2, 4);
	fault(1, 4, 0), pump();
	done(dir, "rw_sharing");

	/* Two sharers upgrade at once, delivered one node at a time. */
	start(0);
	fault(1, 3, 1), pump(), store(1, 3), fault(2, 3, 0), pump();
	fault(1, 3, 2), fault(2, 3, 2);
	B(PR_STEP, 0, 1, PR_STEP, 1, 0, PR_STEP, 2, 1, PR_STEP, 0, 1);
	B(PR_STEP, 1, 1, PR_STEP, 2, 1);
	pump(), store(1, 3), store(2, 3), fault(0, 3, 0), pump();
	done(dir, "upgrade_race");

	/* A read miss served by the last writer, then a third node's
	 * write takes both copies. */
	start(0);
	fault(0, 4, 1), pump(), store(0, 4), fault(2, 4, 0), pump();
	fault(0, 4, 2), pump(), store(0, 4);
	fault(2, 4, 0), pump(), fault(1, 4, 1), pump(), store(1, 4);
	fault(0, 4, 0), fault(2, 4, 0), pump();
	done(dir, "peer_read");

	/* A 20 ms hold time: the invalidation waits for the clock. */
	start(2 << 1);
	fault(0, 4, 0), pump(), fault(2, 4, 1), pump();
	B(PR_ADVANCE, 3), pump(), store(2, 4), fault(0, 4, 0), pump();
	B(PR_ADVANCE, 3), pump();
	done(dir, "hold_time");

	/* Eager migration: node 2 keeps using page 1 (home 1). */
	start(2 << 3);
	for (int i = 0; i < 4; i++) {
		fault(2, 1, 0), pump(), fault(2, 1, 1), pump(), store(2, 1);
		fault(0, 1, 1), pump(), store(0, 1), B(PR_ADVANCE, 4);
	}
	fault(1, 1, 0), pump();
	done(dir, "migrate");

	/* First-touch placement on four nodes. */
	start(PC_FOUR | 3 << 3);
	fault(3, 0, 1), pump(), store(3, 0), fault(2, 5, 0), pump();
	fault(1, 0, 0), pump(), fault(0, 5, 1), pump(), store(0, 5);
	fault(3, 5, 0), pump();
	done(dir, "first_touch");

	/* Lock contention: EX held, EX waits, PR NOQUEUE refused; the
	 * holder lets go, the waiter converts down, a reader joins. */
	start(0);
	lock(0, 0, 5, 0), pump(), lock(1, 0, 5, 4), pump();
	lock(2, 0, 3, 1), pump();
	B(PR_UNLOCK, 0, 0, 1, 0, 0), pump();
	B(PR_CONVERT, 1, 0, 1, 3, 0), pump();
	lock(2, 0, 3, 2), pump();
	done(dir, "lock_contention");

	/* A deadlock of two, found after the deadlock wait. */
	start(0);
	lock(0, 0, 5, 0), lock(1, 1, 5, 0), pump();
	lock(0, 1, 5, 0), lock(1, 0, 5, 0), pump();
	B(PR_ADVANCE, 7), pump(), B(PR_ADVANCE, 7), pump();
	B(PR_UNLOCK, 0, 0, 1, 0, 0, PR_UNLOCK, 1, 0, 1, 0, 0), pump();
	done(dir, "lock_deadlock");

	/* Value blocks and a timeout. */
	start(0);
	lock(0, 2, 5, 2), pump();
	B(PR_UNLOCK, 0, 0, 1, 2, 0x5a), pump();
	lock(1, 2, 3, 2), pump(), lock(2, 2, 5, 0x20), pump();
	B(PR_ADVANCE, 2), pump(), B(PR_PROC_GONE, 1, 0), pump();
	done(dir, "lock_values");

	/* The master of page 4 dies with its pages and a lock. */
	start(0);
	fault(0, 4, 1), pump(), store(0, 4), fault(2, 4, 0), pump();
	lock(2, 1, 5, 0), lock(0, 1, 3, 0), pump();
	B(PR_KILL, 1), pump();
	fault(0, 4, 1), pump(), fault(0, 3, 1), pump(), store(0, 3);
	fault(2, 3, 0), pump(), lock(0, 3, 5, 0), pump();
	done(dir, "death");

	/* A peer replays and forges: a grant racing the real one for an
	 * open transaction, a DONE for the entry's open transaction, and a
	 * raw copy of another node's request. */
	start(0);
	fault(0, 4, 0);
	/* GRANT from the master: page, state S, no acks, zero fill, the
	 * entry's epoch and version, no set, the open transaction's id. */
	B(PR_PEER_MSG, 0, 0, 1, 5, 4, 1, 0, 1, 0, 0, 0, 0, 0);
	pump();
	fault(2, 4, 1);
	B(PR_STEP, 2, 1, PR_STEP, 1, 1);
	/* DONE from node 2 to master 1 naming the entry's open id. */
	B(PR_PEER_MSG, 1, 0, 1, 6, 2, 4);
	pump();
	q.slot.index = 0;
	n = wire_build(raw, sizeof(raw), WIRE_DSM_REQ, 1u << 16, &q,
		       sizeof(q));
	B(PR_PEER_RAW, 1, 0, (int)(n & 0xff), (int)(n >> 8));
	for (size_t i = 0; i < n; i++)
		B(raw[i]);
	pump(), fault(1, 4, 0), pump();
	done(dir, "peer_replay");

	/* A page written into an open transaction's slot by a peer. */
	start(0);
	fault(0, 4, 0);
	B(PR_PEER_RDMA, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0);
	B(0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0, 0, 0);
	pump(), fault(0, 4, 1), pump();
	done(dir, "peer_rdma");

	/* Clients: an application attaches and asks for a page's state;
	 * a lock connection locks; a stranger sends garbage. */
	start(0);
	B(PR_CLIENT, 0, 0, 0, 0);
	B(PR_CLIENT, 0, 0, 2, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	  1);
	B(PR_CLIENT, 0, 0, 2, 0, 4, 1);
	for (int i = 0; i < 24; i++)
		B(0);
	B(2);
	B(PR_CLIENT, 0, 0, 2, 0, 8, 1, 4, 0, 0, 0, 0, 0, 0, 0, 3);
	pump();
	B(PR_CLIENT, 0, 1, 2, 0, 0, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	  0, 4);
	/* IPC_LOCK, its fields fixed up (a LOCK of name "b"): EX, lkid 1. */
	B(PR_CLIENT, 0, 1, 2, 0, 12, 0x07);
	lk.mode = 5;
	lk.lkid = 1;
	for (size_t i = 0; i < sizeof(lk); i++)
		B(((unsigned char *)&lk)[i]);
	B(5);
	pump();
	B(PR_CLIENT, 1, 0, 1, 1, 40, 0);
	for (int i = 0; i < 40; i++)
		B(0xa5);
	B(PR_CLIENT, 0, 0, 3, 0), pump();
	done(dir, "clients");
}

int main(int argc, char **argv)
{
	static unsigned char msg[WIRE_IPC_MAX], body[WIRE_IPC_MAX];
	struct wire_msg m;
	char name[96];

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s WIRE_DIR IPC_DIR [PROTO_DIR]\n",
			argv[0]);
		return 2;
	}
	if (argc == 4)
		proto_seeds(argv[3]);
	for (unsigned t = 0; t < WIRE_TYPE_MAX; t++) {
		int ch = wire_type_channel(t);

		if (ch < 0)
			continue;
		for (size_t len = 0; len <= 1024; len++) {
			size_t n = wire_build(msg, sizeof(msg), t, 7, body, len);

			if (!n || wire_decode(msg, n, ch, &m) != WIRE_OK)
				continue;
			snprintf(name, sizeof(name), "%s", wire_type_name(t));
			put(argv[1], name, msg, n, -1);
			if (ch == WIRE_CH_IPC) {
				put(argv[2], name, msg, n, 0);
				snprintf(name, sizeof(name), "%s.fd",
					 wire_type_name(t));
				put(argv[2], name, msg, n, 1);
			}
			break;
		}
	}
	return 0;
}
