/* pair_proto: see pair_proto.h. */
#include "pair_proto.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchlib.h"
#include "log.h"

_Static_assert(sizeof(struct pair_msg) == PAIR_MSG_SIZE,
	       "a pair message is exactly PAIR_MSG_SIZE bytes");

bool pair_server_take(struct pair_server *s, const struct pair_msg *m,
		      size_t len)
{
	if (len != PAIR_MSG_SIZE || m->magic != PAIR_MAGIC) {
		if (s->bad++ == 0)
			log_err("server: dropped a malformed message (%zu "
				"bytes); counting the rest", len);
		return false;
	}
	switch (m->type) {
	case PAIR_BEGIN: s->busy = true; return false;
	case PAIR_END: s->busy = false; return false;
	case PAIR_QUIT: s->done = true; return false;
	case PAIR_PING: s->pong_seq = m->seq; return true;
	}
	if (s->bad++ == 0)
		log_err("server: dropped a message of unknown type %u; "
			"counting the rest", m->type);
	return false;
}

bool pair_client_pong(const struct pair_msg *m, size_t len, uint64_t seq,
		      unsigned long *bad)
{
	if (len == PAIR_MSG_SIZE && m->magic == PAIR_MAGIC &&
	    m->type == PAIR_PONG && m->seq == seq)
		return true;
	if ((*bad)++ == 0)
		log_err("client: dropped a malformed message (%zu bytes, type "
			"%u); counting the rest", len, m->type);
	return false;
}

int pair_floor_counters(struct bench_result *r, unsigned divisor,
			bool inline_send)
{
	int rc = bench_result_add_counter(r, "rtt_divisor", divisor);

	if (!rc)
		rc = bench_result_add_counter(r, "inline", inline_send);
	if (!rc)
		rc = bench_result_add_counter(r, "busy_poll", 1);
	return rc;
}

/* Exit status of the child, killing it if it does not end in time. */
static int reap(pid_t pid)
{
	int status;

	for (int i = 0; i < 100; i++) {
		pid_t got = waitpid(pid, &status, WNOHANG);

		if (got == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status)
						 : PAIR_EXIT_FAIL;
		if (got < 0)
			return PAIR_EXIT_FAIL;
		usleep(50000);
	}
	log_err("the server (pid %d) did not exit; killing it", (int)pid);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return PAIR_EXIT_FAIL;
}

int pair_run(pair_end_fn *server, pair_end_fn *client, const void *opts,
	     int (*exit_status)(int rc))
{
	int sv[2], child_status, rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		log_err("socketpair: %s", strerror(errno));
		return PAIR_EXIT_FAIL;
	}
	/* Before any fabric is opened here: the child opens its own. */
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		log_err("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return PAIR_EXIT_FAIL;
	}
	if (pid == 0) {
		close(sv[0]);
		/* Do not outlive a client that crashes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(exit_status(server(opts, sv[1])));
	}
	close(sv[1]);
	rc = client(opts, sv[0]);
	close(sv[0]);
	/* A server still waiting for a client that gave up would only time
	 * out; the client has logged why. */
	if (rc && rc != -ECHILD)
		kill(pid, SIGTERM);
	child_status = reap(pid);
	if (rc == -ECHILD)
		return child_status ? child_status : PAIR_EXIT_FAIL;
	if (!rc && child_status)
		return child_status;
	return exit_status(rc);
}
