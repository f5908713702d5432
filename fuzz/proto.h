/* The input of fuzz_proto, shared with seeds.c, which writes its seeds.
 *
 * An input is a configuration byte, then up to PROTO_MAX_STEPS steps, each
 * an opcode byte (taken modulo PR_NOPS) and its operands.  Every operand
 * is read through one reader that gives zeros once the input runs out, so
 * any prefix of an input is an input too: libFuzzer's cuts and splices
 * stay meaningful.  Node and page operands are taken modulo the node count
 * and PROTO_NPAGES unless a step says otherwise.
 */
#ifndef DSM_FUZZ_PROTO_H
#define DSM_FUZZ_PROTO_H

#define PROTO_MAX_STEPS 64
#define PROTO_NPAGES 8   /* pages the legitimate steps use and the checks
			    watch */
#define PROTO_NPROC 2    /* lock processes per node */
#define PROTO_NCLIENT 2  /* raw client connections per node */
#define PROTO_NNAMES 6   /* lock names the steps use */

/* The configuration byte. */
#define PC_FOUR 0x01       /* 4 nodes, else 3 */
#define PC_HOLD(b) (((b) >> 1) & 3) /* hold time: 0, 200 us, 20 ms, 0 */
#define PC_POLICY(b) (((b) >> 3) & 3) /* static, migrating, eager, first
					 touch */
#define PC_PEER_OFF 0x20   /* read misses go to the master only */

enum proto_op {
	/* node, page, kind (0 read, 1 write, 2 write-protect fault) */
	PR_FAULT,
	/* node, page: the process writes the page if its node holds it M */
	PR_STORE,
	/* deliver until nothing moves (bounded) */
	PR_PUMP,
	/* node, times (1..4): only that node takes what it has received */
	PR_STEP,
	/* index into the harness's table of delays; timers and ticks run */
	PR_ADVANCE,
	/* node, proc, name, mode, flags (1 NOQUEUE, 2 VALBLK, 4 blocking
	 * notes, 8 a parent lock follows as one byte, 0x30 timeout) */
	PR_LOCK,
	/* node, proc, lkid, mode, flags (1 NOQUEUE, 2 VALBLK) */
	PR_CONVERT,
	/* node, proc, lkid, flags (1 CANCEL, 2 VALBLK), value byte */
	PR_UNLOCK,
	/* node, proc: the process's lock connection closes */
	PR_PROC_GONE,
	/* from, to, length (u16), bytes: a peer's raw message */
	PR_PEER_RAW,
	/* from, to, selector (0: any type with body bytes as given, else a
	 * message built field by field), type index, fields */
	PR_PEER_MSG,
	/* from, to, fields: a peer's RDMA WRITE into a receive slot */
	PR_PEER_RDMA,
	/* node, slot, what (0 connect, 1 raw bytes, 2 a request built field
	 * by field, 3 close), operands */
	PR_CLIENT,
	/* node: it dies (once per input) */
	PR_KILL,
	PR_NOPS,
};

#endif
