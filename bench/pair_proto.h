/* pair_proto: what the two raw floors, bench_verbs and bench_ofi, share
 * besides their fabric: the 64-byte control and ping-pong messages, the
 * server's handling of them, and the forked server with its reaping.
 *
 * The fabric-specific parts (posting, polling, sleeping on a completion
 * channel or a wait fd) stay in each program: they are the floor.
 */
#ifndef DSM_BENCH_PAIR_PROTO_H
#define DSM_BENCH_PAIR_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PAIR_MSG_SIZE 64
#define PAIR_MAGIC 0x64736d62u /* "dsmb" */

/* Exit statuses of both programs. */
enum { PAIR_EXIT_OK = 0, PAIR_EXIT_FAIL = 1, PAIR_EXIT_ENV = 2 };

/* Messages, PAIR_MSG_SIZE bytes on the wire, in host byte order (both ends
 * run the same program; mixed-endian pairs are unsupported). */
struct pair_msg {
	uint32_t magic;
	uint32_t type;
	uint64_t seq;
	unsigned char pad[PAIR_MSG_SIZE - 16];
};

enum pair_msg_type {
	/* client -> server, server idle: a phase starts; the server
	 * busy-polls until PAIR_END. */
	PAIR_BEGIN = 1,
	/* client -> server, in a phase: answered by PAIR_PONG, same seq. */
	PAIR_PING = 2,
	/* server -> client: the answer to one PAIR_PING. */
	PAIR_PONG = 3,
	/* client -> server, in a phase: back to sleeping between phases. */
	PAIR_END = 4,
	/* client -> server, idle: exit. */
	PAIR_QUIT = 5,
};

static inline struct pair_msg pair_msg(uint32_t type, uint64_t seq)
{
	struct pair_msg m = { .magic = PAIR_MAGIC, .type = type, .seq = seq };

	return m;
}

/* What the server knows of the client's requests. */
struct pair_server {
	bool busy;          /* in a phase: spin, do not sleep */
	bool done;          /* PAIR_QUIT seen */
	bool pong_pending;  /* the fabric refused the PONG; retry */
	uint64_t pong_seq;  /* of the PING to answer; one at most in flight */
	unsigned long bad;  /* received messages dropped as malformed */
};

/* Take `len` received bytes (a copy of the receive slot): true when a
 * PONG for s->pong_seq is to be sent.  Malformed messages are counted in
 * s->bad, the first one logged. */
bool pair_server_take(struct pair_server *s, const struct pair_msg *m,
		      size_t len);

/* Whether `len` bytes are the PONG to the client's PING `seq`; the first
 * of anything else is logged, all are counted in *bad. */
bool pair_client_pong(const struct pair_msg *m, size_t len, uint64_t seq,
		      unsigned long *bad);

struct bench_result;

/* The counters of a floor's result, added while the pair is up: the
 * round-trip divisor (1, or 2 for a ping-pong's one-way time), whether
 * the message went inline (verbs) or injected (libfabric), and that the
 * measuring side busy-polled. */
int pair_floor_counters(struct bench_result *r, unsigned divisor,
			bool inline_send);

/* The two ends of a forked pair, each given the options and its end of a
 * socketpair (the server's hang-up check and whatever the ends swap go
 * through it).  Both return 0 or a negative errno; -ECHILD from the client
 * means the server failed first and has said why. */
typedef int pair_end_fn(const void *opts, int fd);

/* Fork the server, run the client here, reap the server (killed if it
 * outlives the client by five seconds).  `exit_status` maps an end's
 * result to an exit status.  Returns the program's exit status. */
int pair_run(pair_end_fn *server, pair_end_fn *client, const void *opts,
	     int (*exit_status)(int rc));

#endif
