/* dsmrun: run a job on a cluster of dsmd started on this machine.
 *
 *   dsmrun -n NODES [-p PROCS_PER_NODE] [options] CMD [ARGS...]
 *
 * Starts NODES dsmd on the local RDMA device, waits until they have formed
 * the cluster, then runs a job of NODES x PROCS_PER_NODE ranks: CMD
 * PROCS_PER_NODE times per node (default once), each copy with its rank's
 * environment.  Rank R runs on node R / PROCS_PER_NODE as local rank
 * R % PROCS_PER_NODE.  Every output line is forwarded with a prefix ("[R] "
 * for rank R, "[dsmd N] " for the daemon of node N; with one process per
 * node the rank is the node), and the first failure is returned.  The
 * daemons and the ranks are torn down whatever happens: normal end, a
 * failure, a signal, or the time limit.
 *
 * Every child runs in its own process group so that whatever it starts is
 * signalled with it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"
#include "clock.h"

#define OUT_BUF 8192
/* Most ranks dsmrun starts per node. */
#define MAX_PROCS_PER_NODE 64

/* One output stream being forwarded with a prefix. */
struct stream {
	int fd;
	char prefix[32];
	char buf[OUT_BUF];
	size_t len;
};

struct child {
	pid_t pid;
	bool running;
	int status;         /* wait status once it ended */
	struct stream out;  /* stdout and stderr share one pipe */
};

struct run {
	int nnodes;
	int ppn;            /* ranks per node (-p) */
	int nranks;         /* nnodes * ppn */
	const char *device, *addr, *hb, *dead;
	unsigned timeout_s, form_timeout_s;
	bool verbose;
	bool set_log_level; /* we quietened the daemons' log */
	char tmpdir[64];
	char dsmd_path[PATH_MAX];
	char rendezvous[64];
	int rdv_fd;             /* node 0's listening socket, until it starts */
	struct child daemons[WIRE_MAX_NODES];
	struct child *cmds;        /* nranks of them, in rank order */
	int ready_fd[WIRE_MAX_NODES];
	/* pump()'s poll set, room for 1 + 2 * nnodes + nranks: the
	 * signalfd, per node the daemon's output and ready pipe, per rank its
	 * output. */
	struct pollfd *pfd;
	struct stream **sp;        /* NULL: not a stream */
	int *rnode;                /* a ready pipe's node, or -1 */
	int sigfd;
	unsigned long job;  /* DSM_JOB: this run's id */
	int first_failure;  /* exit status to return, 0 if none */
	bool failed;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("dsmrun: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: dsmrun -n NODES [-p PROCS_PER_NODE] [options] CMD [ARGS...]\n"
"  -n, --nodes N          dsmd to start (1..%u)\n"
"  -p, --procs-per-node P copies of CMD per node (1..%d, default 1)\n"
"  -d, --device NAME      RDMA device (default $DSM_DEVICE or the first)\n"
"  -a, --addr IP          its IPv4 address (default from the device)\n"
"  -t, --timeout S        kill everything after S seconds (default none)\n"
"      --form-timeout S   time for the cluster to form (default 120)\n"
"      --heartbeat-ms MS  passed to dsmd\n"
"      --dead-after-ms MS passed to dsmd\n"
"  -v, --verbose          show the daemons' info messages\n"
"The job has NODES x P ranks; rank R runs on node R / P.  Each copy gets\n"
"DSM_RANK (R), DSM_SIZE (NODES x P), DSM_LOCAL_RANK (R %% P), DSM_LOCAL_SIZE\n"
"(P), DSM_NODE, DSM_NNODES, DSM_JOB and DSM_JOB_KEY (this run's id and\n"
"secret), and DSM_SOCKET and\n"
"DSM_DAEMON_PID (its node's dsmd).  Output lines start with \"[R] \", the daemons' with \"[dsmd N] \".\n"
"The exit status is the first failure's: its exit code, or 128 + the signal\n"
"that killed it; 124 at the time limit.\n", WIRE_MAX_NODES, MAX_PROCS_PER_NODE);
}

/* ---------------------------------------------------------------------- */
/* Output forwarding                                                      */

static void stream_emit(struct stream *s, size_t n)
{
	/* One write per line so that lines of different nodes do not mix. */
	char line[OUT_BUF + 40];
	int p = snprintf(line, sizeof(line), "%s", s->prefix);

	memcpy(line + p, s->buf, n);
	if (n == 0 || s->buf[n - 1] != '\n')
		line[p + (int)n++] = '\n';
	if (write(STDOUT_FILENO, line, (size_t)p + n) < 0) {
		/* Nowhere to report it. */
	}
}

/* Read what is there; forward whole lines.  Returns false at EOF. */
static bool stream_read(struct stream *s)
{
	ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		if (s->len)
			stream_emit(s, s->len);
		s->len = 0;
		close(s->fd);
		s->fd = -1;
		return false;
	}
	s->len += (size_t)n;
	while ((nl = memchr(s->buf, '\n', s->len))) {
		size_t l = (size_t)(nl - s->buf) + 1;

		stream_emit(s, l);
		memmove(s->buf, s->buf + l, s->len - l);
		s->len -= l;
	}
	if (s->len == sizeof(s->buf)) {
		stream_emit(s, s->len);
		s->len = 0;
	}
	return true;
}

/* ---------------------------------------------------------------------- */
/* Children                                                               */

static int spawn(struct child *c, char *const argv[], int keep_fd,
		 int keep_fd2, const char *prefix)
{
	int pipefd[2];
	sigset_t none;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	c->pid = fork();
	if (c->pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -errno;
	}
	if (c->pid == 0) {
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		if (keep_fd >= 0)
			fcntl(keep_fd, F_SETFD, 0);
		if (keep_fd2 >= 0)
			fcntl(keep_fd2, F_SETFD, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "dsmrun: cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	setpgid(c->pid, c->pid);
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	c->running = true;
	c->out.fd = pipefd[0];
	c->out.len = 0;
	snprintf(c->out.prefix, sizeof(c->out.prefix), "%s", prefix);
	return 0;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* who: "dsmd of node N" or "rank R (node N)". */
static void describe_exit(const char *who, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status))
		say("%s exited with status %d", who, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		say("%s was killed by signal %d (%s)", who, WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
}

/* The running child with that pid, or NULL. */
static struct child *find_child(struct child *cs, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (cs[i].running && cs[i].pid == pid)
			return &cs[i];
	return NULL;
}

static void child_ended(struct run *r, pid_t pid, int status)
{
	struct child *c;
	bool cmd = true;
	char who[64];
	int i;

	c = find_child(r->cmds, r->nranks, pid);
	if (c) {
		i = (int)(c - r->cmds);
		snprintf(who, sizeof(who), "rank %d (node %d)", i, i / r->ppn);
	} else {
		c = find_child(r->daemons, r->nnodes, pid);
		if (!c)
			return; /* not ours, or reaped already */
		cmd = false;
		i = (int)(c - r->daemons);
		snprintf(who, sizeof(who), "dsmd of node %d", i);
	}
	c->running = false;
	c->status = status;
	describe_exit(who, status);
	if (cmd && exit_code(status) && !r->failed) {
		r->failed = true;
		r->first_failure = exit_code(status);
	}
}

/* Reap whatever ended; record the first failing command. */
static void reap(struct run *r)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		child_ended(r, pid, status);
}

static void signal_all(struct child *cs, int n, int sig)
{
	for (int i = 0; i < n; i++) {
		if (!cs[i].running)
			continue;
		kill(-cs[i].pid, SIGCONT); /* a stopped child must hear sig */
		kill(-cs[i].pid, sig);
	}
}

static bool any_running(const struct child *cs, int n)
{
	for (int i = 0; i < n; i++)
		if (cs[i].running)
			return true;
	return false;
}

/* ---------------------------------------------------------------------- */
/* The loop: forward output, reap children, watch signals and time.       */

enum wait_for { WAIT_FORMED, WAIT_CMDS, WAIT_DAEMONS };

/* 1: the goal is reached; 0: it cannot be (a dsmd ended before it was
 * ready); -1: keep waiting. */
static int goal_state(struct run *r, enum wait_for goal, const bool *ready,
		      int nready)
{
	switch (goal) {
	case WAIT_FORMED:
		if (nready == r->nnodes)
			return 1;
		for (int i = 0; i < r->nnodes; i++)
			if (!r->daemons[i].running && !ready[i])
				return 0;
		return -1;
	case WAIT_CMDS:
		return any_running(r->cmds, r->nranks) ? -1 : 1;
	case WAIT_DAEMONS:
		return any_running(r->daemons, r->nnodes) ||
		       any_running(r->cmds, r->nranks) ? -1 : 1;
	}
	return 0;
}

/* Add fd to the poll set: a stream to forward, or node's ready pipe. */
static void poll_add(struct run *r, int *n, int fd, struct stream *s,
		     int node)
{
	r->pfd[*n] = (struct pollfd){.fd = fd, .events = POLLIN};
	r->sp[*n] = s;
	r->rnode[*n] = node;
	(*n)++;
}

/* Fill the poll set; returns its size. */
static int poll_set(struct run *r, enum wait_for goal, const bool *ready)
{
	int n = 0, i;

	poll_add(r, &n, r->sigfd, NULL, -1);
	for (i = 0; i < r->nnodes; i++) {
		if (r->daemons[i].out.fd >= 0)
			poll_add(r, &n, r->daemons[i].out.fd,
				 &r->daemons[i].out, -1);
		if (goal == WAIT_FORMED && !ready[i] && r->ready_fd[i] >= 0)
			poll_add(r, &n, r->ready_fd[i], NULL, i);
	}
	for (i = 0; i < r->nranks; i++)
		if (r->cmds[i].out.fd >= 0)
			poll_add(r, &n, r->cmds[i].out.fd, &r->cmds[i].out, -1);
	return n;
}

/* Milliseconds to the deadline for poll(): -1 for none, 0 if passed. */
static int poll_timeout(long long deadline)
{
	long long left;

	if (!deadline)
		return -1;
	left = deadline - (long long)clock_mono_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* A signal arrived: false if it asks us to stop (anything but SIGCHLD). */
static bool read_signal(struct run *r)
{
	struct signalfd_siginfo si;

	if (read(r->sigfd, &si, sizeof(si)) != sizeof(si) ||
	    si.ssi_signo == SIGCHLD)
		return true;
	say("signal %u: tearing down", si.ssi_signo);
	r->first_failure = 128 + (int)si.ssi_signo;
	r->failed = true;
	return false;
}

/* A dsmd wrote to its ready pipe, or closed it. */
static void read_ready(struct run *r, int node, bool *ready, int *nready)
{
	char b[16];

	if (read(r->ready_fd[node], b, sizeof(b)) > 0) {
		ready[node] = true;
		(*nready)++;
	}
	close(r->ready_fd[node]);
	r->ready_fd[node] = -1;
}

/* Poll every stream, the ready pipes and the signalfd.  Returns 1 when the
 * goal is reached, 0 on timeout or when it cannot be, -1 if a signal asked
 * us to stop. */
static int pump(struct run *r, enum wait_for goal, long long deadline)
{
	bool ready[WIRE_MAX_NODES] = {0};
	int n, i, nready = 0, t, st;

	for (;;) {
		reap(r);
		st = goal_state(r, goal, ready, nready);
		if (st >= 0)
			return st;
		n = poll_set(r, goal, ready);
		t = poll_timeout(deadline);
		if (t == 0)
			return 0;
		if (poll(r->pfd, (nfds_t)n, t) < 0 && errno != EINTR)
			return -1;
		for (i = 0; i < n; i++) {
			if (!r->pfd[i].revents)
				continue;
			if (i == 0) {
				if (!read_signal(r))
					return -1;
			} else if (r->rnode[i] >= 0) {
				read_ready(r, r->rnode[i], ready, &nready);
			} else {
				stream_read(r->sp[i]);
			}
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Set-up                                                                 */

static int find_dsmd(struct run *r)
{
	const char *env = getenv("DSM_DSMD");
	char self[PATH_MAX - 16];
	ssize_t n;

	if (env && *env) {
		snprintf(r->dsmd_path, sizeof(r->dsmd_path), "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			snprintf(r->dsmd_path, sizeof(r->dsmd_path), "%s/dsmd",
				 self);
			if (access(r->dsmd_path, X_OK) == 0)
				return 0;
		}
	}
	snprintf(r->dsmd_path, sizeof(r->dsmd_path), "dsmd");
	return 0;
}

/* Node 0's rendezvous socket, bound to a free port on loopback and
 * listening before any dsmd starts; node 0 inherits it (--rendezvous-fd).
 * Picking a free port and closing it for dsmd to bind again would race
 * with every other socket on the machine taking that port meanwhile. */
static int rendezvous_socket(int nnodes, int *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(fd, nnodes) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

static int start_daemon(struct run *r, int i)
{
	char node[16], nnodes[16], sock[128], readyfd[16], rdvfd[16];
	char prefix[32];
	char *argv[32];
	int pfd[2], a = 0, ret;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	snprintf(node, sizeof(node), "%d", i);
	snprintf(nnodes, sizeof(nnodes), "%d", r->nnodes);
	snprintf(sock, sizeof(sock), "%s/dsmd.%d.sock", r->tmpdir, i);
	snprintf(readyfd, sizeof(readyfd), "%d", pfd[1]);
	snprintf(rdvfd, sizeof(rdvfd), "%d", r->rdv_fd);
	snprintf(prefix, sizeof(prefix), "[dsmd %d] ", i);
	argv[a++] = r->dsmd_path;
	argv[a++] = "--node";
	argv[a++] = node;
	argv[a++] = "--nodes";
	argv[a++] = nnodes;
	argv[a++] = "--rendezvous";
	argv[a++] = r->rendezvous;
	argv[a++] = "--socket";
	argv[a++] = sock;
	argv[a++] = "--ready-fd";
	argv[a++] = readyfd;
	if (r->device) {
		argv[a++] = "--device";
		argv[a++] = (char *)r->device;
	}
	if (r->addr) {
		argv[a++] = "--addr";
		argv[a++] = (char *)r->addr;
	}
	if (r->hb) {
		argv[a++] = "--heartbeat-ms";
		argv[a++] = (char *)r->hb;
	}
	if (r->dead) {
		argv[a++] = "--dead-after-ms";
		argv[a++] = (char *)r->dead;
	}
	if (i == 0) {
		argv[a++] = "--rendezvous-fd";
		argv[a++] = rdvfd;
	}
	argv[a] = NULL;
	ret = spawn(&r->daemons[i], argv, pfd[1], i == 0 ? r->rdv_fd : -1,
		    prefix);
	close(pfd[1]);
	if (i == 0) {
		close(r->rdv_fd); /* node 0 has it now */
		r->rdv_fd = -1;
	}
	r->ready_fd[i] = pfd[0];
	return ret;
}

static void setenv_int(const char *name, long v)
{
	char s[24];

	snprintf(s, sizeof(s), "%ld", v);
	setenv(name, s, 1);
}

/* A fresh 128-bit secret, in hex, into the variable `name`. */
static int set_random_key(const char *name)
{
	unsigned char k[16];
	char hex[sizeof(k) * 2 + 1];

	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		return -EIO;
	for (size_t i = 0; i < sizeof(k); i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	setenv(name, hex, 1);
	return 0;
}

/* The environment of rank `rank`, for the child about to be forked. */
static void set_rank_env(struct run *r, int rank)
{
	int node = rank / r->ppn;
	char v[160];

	setenv_int("DSM_RANK", rank);
	setenv_int("DSM_SIZE", r->nranks);
	setenv_int("DSM_LOCAL_RANK", rank % r->ppn);
	setenv_int("DSM_LOCAL_SIZE", r->ppn);
	setenv_int("DSM_NODE", node);
	setenv_int("DSM_NNODES", r->nnodes);
	snprintf(v, sizeof(v), "%s/dsmd.%d.sock", r->tmpdir, node);
	setenv("DSM_SOCKET", v, 1);
	setenv_int("DSM_DAEMON_PID", r->daemons[node].pid);
	unsetenv("DSM_CLUSTER_KEY"); /* the daemons' secret, not the ranks' */
}

static int start_commands(struct run *r, char **argv)
{
	char prefix[32];
	int i, ret;

	for (i = 0; i < r->nranks; i++) {
		set_rank_env(r, i);
		snprintf(prefix, sizeof(prefix), "[%d] ", i);
		ret = spawn(&r->cmds[i], argv, -1, -1, prefix);
		if (ret) {
			say("cannot start the command for rank %d: %s", i,
			    strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* SIGTERM everything, give it a few seconds, then SIGKILL. */
static void teardown(struct run *r)
{
	char path[160];
	int i;

	signal_all(r->cmds, r->nranks, SIGTERM);
	signal_all(r->daemons, r->nnodes, SIGTERM);
	if (pump(r, WAIT_DAEMONS, (long long)clock_mono_ms() + 5000) != 1) {
		signal_all(r->cmds, r->nranks, SIGKILL);
		signal_all(r->daemons, r->nnodes, SIGKILL);
		pump(r, WAIT_DAEMONS, (long long)clock_mono_ms() + 5000);
	}
	for (i = 0; i < r->nnodes; i++) {
		snprintf(path, sizeof(path), "%s/dsmd.%d.sock", r->tmpdir, i);
		unlink(path);
	}
	rmdir(r->tmpdir);
}

/* A whole number 1..max in arg, into *out. */
static bool in_range(const char *arg, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > max)
		return false;
	*out = (int)v;
	return true;
}

static int parse_args(int argc, char **argv, struct run *r)
{
	enum { O_HB = 256, O_DEAD, O_FORM };
	static const struct option opts[] = {
		{"nodes", required_argument, NULL, 'n'},
		{"procs-per-node", required_argument, NULL, 'p'},
		{"device", required_argument, NULL, 'd'},
		{"addr", required_argument, NULL, 'a'},
		{"timeout", required_argument, NULL, 't'},
		{"form-timeout", required_argument, NULL, O_FORM},
		{"heartbeat-ms", required_argument, NULL, O_HB},
		{"dead-after-ms", required_argument, NULL, O_DEAD},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char *end;
	long v;
	int o;

	while ((o = getopt_long(argc, argv, "+n:p:d:a:t:vh", opts,
				NULL)) != -1) {
		switch (o) {
		case 'n':
			if (!in_range(optarg, WIRE_MAX_NODES, &r->nnodes)) {
				say("bad node count '%s' (1..%u)", optarg,
				    WIRE_MAX_NODES);
				return -EINVAL;
			}
			break;
		case 'p':
			if (!in_range(optarg, MAX_PROCS_PER_NODE, &r->ppn)) {
				say("bad processes per node '%s' (1..%d)",
				    optarg, MAX_PROCS_PER_NODE);
				return -EINVAL;
			}
			break;
		case 'd': r->device = optarg; break;
		case 'a': r->addr = optarg; break;
		case 't':
		case O_FORM:
			v = strtol(optarg, &end, 10);
			if (*end || v < 1) {
				say("bad timeout '%s'", optarg);
				return -EINVAL;
			}
			if (o == 't')
				r->timeout_s = (unsigned)v;
			else
				r->form_timeout_s = (unsigned)v;
			break;
		case O_HB: r->hb = optarg; break;
		case O_DEAD: r->dead = optarg; break;
		case 'v': r->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (!r->nnodes || optind >= argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!r->ppn)
		r->ppn = 1;
	r->nranks = r->nnodes * r->ppn;
	if (!r->device)
		r->device = getenv("DSM_DEVICE");
	if (!r->addr)
		r->addr = getenv("DSM_RDMA_ADDR");
	return 0;
}

/* The per-rank arrays and the poll set, once the job's size is known. */
static int alloc_run(struct run *r)
{
	size_t npoll = 1 + 2 * (size_t)r->nnodes + (size_t)r->nranks;
	int i;

	r->cmds = calloc((size_t)r->nranks, sizeof(*r->cmds));
	r->pfd = calloc(npoll, sizeof(*r->pfd));
	r->sp = calloc(npoll, sizeof(*r->sp));
	r->rnode = calloc(npoll, sizeof(*r->rnode));
	if (!r->cmds || !r->pfd || !r->sp || !r->rnode)
		return -ENOMEM;
	r->rdv_fd = -1;
	for (i = 0; i < r->nranks; i++)
		r->cmds[i].out.fd = -1;
	for (i = 0; i < (int)WIRE_MAX_NODES; i++) {
		r->daemons[i].out.fd = -1;
		r->ready_fd[i] = -1;
	}
	return 0;
}

/* dsmrun holds a pipe per rank and two per node: raise the soft limit on
 * open files if it is too low for that (-p 64 on 64 nodes needs 4,200). */
static int raise_fd_limit(const struct run *r)
{
	rlim_t need = (rlim_t)r->nranks + 2 * (rlim_t)r->nnodes + 32;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		say("%d ranks on %d nodes need %llu open files; the limit "
		    "is %llu", r->nranks, r->nnodes, (unsigned long long)need,
		    (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) ? -errno : 0;
}

static int setup(struct run *r)
{
	sigset_t set;
	int port = 0, ret;

	ret = raise_fd_limit(r);
	if (ret)
		return ret;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	r->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (r->sigfd < 0)
		return -errno;
	snprintf(r->tmpdir, sizeof(r->tmpdir), "/tmp/dsmrun.XXXXXX");
	if (!mkdtemp(r->tmpdir))
		return -errno;
	r->job = ((unsigned long)time(NULL) << 22) ^ (unsigned long)getpid();
	/* The cluster's secret: only its own dsmd join its rendezvous and
	 * connect to each other.  The job's: only its ranks attach to them.
	 * Through the environment, not the command line (ps shows that to
	 * everyone). */
	if (!getenv("DSM_CLUSTER_KEY") && set_random_key("DSM_CLUSTER_KEY"))
		return -EIO;
	if (set_random_key("DSM_JOB_KEY"))
		return -EIO;
	setenv_int("DSM_JOB", (long)r->job);
	r->rdv_fd = rendezvous_socket(r->nnodes, &port);
	if (r->rdv_fd < 0)
		return r->rdv_fd;
	snprintf(r->rendezvous, sizeof(r->rendezvous), "127.0.0.1:%d", port);
	find_dsmd(r);
	if (!r->verbose && !getenv("DSM_LOG_LEVEL")) {
		setenv("DSM_LOG_LEVEL", "warning", 1);
		r->set_log_level = true;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct run r = {.form_timeout_s = 120};
	long long deadline;
	int i, ret;

	if (parse_args(argc, argv, &r))
		return 2;
	ret = alloc_run(&r);
	if (!ret)
		ret = setup(&r);
	if (ret) {
		say("set-up failed: %s", strerror(-ret));
		return 1;
	}
	deadline = r.timeout_s ? (long long)clock_mono_ms() + r.timeout_s * 1000LL : 0;
	for (i = 0; i < r.nnodes && ret == 0; i++)
		ret = start_daemon(&r, i);
	if (ret) {
		say("cannot start %s: %s", r.dsmd_path, strerror(-ret));
		r.first_failure = 1;
		r.failed = true;
		goto out;
	}
	ret = pump(&r, WAIT_FORMED, (long long)clock_mono_ms() + r.form_timeout_s * 1000LL);
	if (ret != 1) {
		if (ret == 0)
			say("the cluster of %d dsmd did not form", r.nnodes);
		if (!r.first_failure)
			r.first_failure = 1;
		r.failed = true;
		goto out;
	}
	/* Daemons now log only warnings unless -v; commands inherit the
	 * caller's level. */
	if (r.set_log_level)
		unsetenv("DSM_LOG_LEVEL");
	if (start_commands(&r, argv + optind)) {
		r.first_failure = 1;
		r.failed = true;
		goto out;
	}
	ret = pump(&r, WAIT_CMDS, deadline);
	if (ret == 0) {
		say("time limit of %u s reached", r.timeout_s);
		r.first_failure = 124;
		r.failed = true; /* the kills that follow are not failures */
	}
out:
	teardown(&r);
	return r.first_failure;
}
