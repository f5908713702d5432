/* Public entry points of libdsm. */
#include <dsm.h>

#include <errno.h>
#include <unistd.h>

#include "ipc.h"

#define DSM_STR2(x) #x
#define DSM_STR(x) DSM_STR2(x)

const char *dsm_version(void)
{
	return DSM_STR(DSM_VERSION_MAJOR) "." DSM_STR(DSM_VERSION_MINOR) "."
	       DSM_STR(DSM_VERSION_PATCH);
}

int dsm_daemon_ping(const char *socket, int timeout_ms, int *node,
		    int *nnodes)
{
	struct wire_ipc_hello_ok hello;
	int fd;

	fd = ipc_client_open(socket ? socket : ipc_socket_path(),
			     WIRE_IPC_KIND_CTL, timeout_ms, &hello);
	if (fd < 0)
		return fd;
	close(fd);
	if (node)
		*node = (int)hello.node;
	if (nnodes)
		*nnodes = (int)hello.nnodes;
	return 0;
}
