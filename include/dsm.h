/* libdsm: distributed shared memory for Linux clusters with RDMA.
 *
 * This header is the whole public API.  Calls return 0 or a negative errno
 * unless stated otherwise; pointer-returning calls return NULL and set errno.
 */
#ifndef DSM_H
#define DSM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the symbols libdsm.so exports; everything else stays hidden. */
#define DSM_API __attribute__((visibility("default")))

#define DSM_VERSION_MAJOR 0
#define DSM_VERSION_MINOR 1
#define DSM_VERSION_PATCH 0

/* The library's version as "MAJOR.MINOR.PATCH"; never NULL. */
DSM_API const char *dsm_version(void);

/* Ask this node's dsmd (at `socket`, or $DSM_SOCKET, or /run/dsm/dsmd.sock
 * when NULL) whether it is up.  On success writes this node's number and the
 * cluster's node count (either pointer may be NULL) and returns 0.  Errors:
 * -ENOENT or -ECONNREFUSED (no daemon at that socket), -ETIMEDOUT (no
 * answer within timeout_ms), -EPROTO (the daemon speaks another version). */
DSM_API int dsm_daemon_ping(const char *socket, int timeout_ms, int *node,
		    int *nnodes);

#ifdef __cplusplus
}
#endif

#endif
