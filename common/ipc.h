/* The Unix-socket protocol between dsmd and its clients (dsmctl, libdsm).
 *
 * SOCK_SEQPACKET keeps message boundaries, so one recv is one message and a
 * message longer than the buffer shows up as truncated (MSG_TRUNC) instead
 * of bleeding into the next.  Every connection starts with IPC_HELLO from
 * the client; dsmd answers IPC_HELLO_OK or closes.
 */
#ifndef DSM_IPC_H
#define DSM_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

#define IPC_DEFAULT_SOCKET "/run/dsm/dsmd.sock"

/* Listening socket at path (an old socket file there is replaced: the
 * caller holds the path's lock, daemon/core/access.c), with mode and, unless
 * group is (gid_t)-1, that group, both set before it listens. */
int ipc_listen(const char *path, mode_t mode, gid_t group);
/* Connected socket, or negative errno. */
int ipc_connect(const char *path);
int ipc_send(int fd, unsigned type, uint64_t req_id, const void *body,
	     size_t body_len);
/* A message already built (wire_build), passing pass_fd when >= 0: 0,
 * -EAGAIN when a nonblocking socket is full, or another negative errno. */
int ipc_send_raw(int fd, const void *msg, size_t len, int pass_fd);
/* The same, passing the descriptor pass_fd (SCM_RIGHTS) when >= 0. */
int ipc_send_fd(int fd, unsigned type, uint64_t req_id, const void *body,
		size_t body_len, int pass_fd);
/* Receive one message into buf (cap bytes) and decode it.  Waits at most
 * timeout_ms (-1: forever).  0, -ETIMEDOUT, -ECONNRESET (peer closed),
 * -EPROTO (malformed: *bad says why), or another negative errno. */
int ipc_recv(int fd, void *buf, size_t cap, int timeout_ms,
	     struct wire_msg *out, enum wire_error *bad);
/* ipc_recv() that also takes a descriptor passed with the message:
 * *passed is it (the caller owns it), or -1.  Extra descriptors and those
 * of a refused message are closed. */
int ipc_recv_fd(int fd, void *buf, size_t cap, int timeout_ms,
		struct wire_msg *out, enum wire_error *bad, int *passed);
/* Connect and say hello as a client of `kind`, for a process (APP, LOCK)
 * as a rank of `job` with its key (NULL: none); fills *hello on success.
 * dsmd's refusal comes back as its errno: -EBUSY (it serves another
 * job), -EACCES (not the job's key). */
int ipc_client_open(const char *path, uint32_t kind, uint64_t job,
		    const char *key, int timeout_ms,
		    struct wire_ipc_hello_ok *hello);
/* The socket path from DSM_SOCKET, or the default. */
const char *ipc_socket_path(void);

#endif
