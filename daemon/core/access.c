/* Who may attach: the socket's directory and mode, one daemon per socket,
 * and the peer's credentials.
 *
 * Whoever can connect to dsmd's socket gets the node's memory (the memfd
 * at attach) and can fault in any page of the cluster, so the socket is
 * its owner's alone by default:
 *
 *   - its directory is dsmd's own: created 0700, or if it exists owned by
 *     dsmd's uid, not a symbolic link, and writable by nobody else (a
 *     group- or world-writable directory is refused: another user could
 *     replace the socket there); its mode is set to what the allowed
 *     clients need, 0700 by default;
 *   - the socket is 0600 (bound, chmod, then listen: nobody can connect
 *     before its mode is set);
 *   - at accept, the kernel's word on the peer (SO_PEERCRED, and
 *     SO_PEERGROUPS for its supplementary groups) must name root, dsmd's
 *     own uid, a uid of --allow-uid or a group of --allow-group.  A refused
 *     client is counted in ipc_refused (dsmctl status) and logged with its
 *     uid and pid (the first 16, then at each power of two).
 *
 * --allow-group G opens the directory to G for search (0710, group G) and
 * the socket to G (0660, group G).  --allow-uid U cannot be said with
 * modes alone: the directory becomes searchable (0711) and the socket
 * writable by all (0666), and the credential check is what keeps others
 * out.
 *
 * One daemon per socket: dsmd holds an exclusive flock on PATH.lock (in
 * the same directory) for its whole life.  A second dsmd given the same
 * path fails with EADDRINUSE before it touches the socket, so the live
 * daemon keeps its clients.  The lock goes with the process however it
 * ends; a socket left by a dead dsmd is replaced.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsmd.h"
#include "ipc.h"
#include "log.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

/* A Unix socket's path fits in sun_path (108 bytes). */
#define ACCESS_PATH_MAX 128

/* Parse "name,123,..." into ids; users when `user`, else groups. */
static int parse_ids(const char *list, bool user, uint32_t *ids,
		     unsigned *n)
{
	char buf[512], *save = NULL, *tok;

	*n = 0;
	if (!list || !*list)
		return 0;
	if (strlen(list) >= sizeof(buf)) {
		log_err("--allow-%s: list too long", user ? "uid" : "group");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v;

		if (*n == DSMD_MAX_ALLOW) {
			log_err("--allow-%s: more than %d entries",
				user ? "uid" : "group", DSMD_MAX_ALLOW);
			return -EINVAL;
		}
		errno = 0;
		v = strtoul(tok, &end, 10);
		if (*tok >= '0' && *tok <= '9' && !*end && !errno &&
		    v < UINT32_MAX) {
			ids[(*n)++] = (uint32_t)v;
			continue;
		}
		if (user) {
			struct passwd *pw = getpwnam(tok);

			if (pw) {
				ids[(*n)++] = pw->pw_uid;
				continue;
			}
		} else {
			struct group *gr = getgrnam(tok);

			if (gr) {
				ids[(*n)++] = gr->gr_gid;
				continue;
			}
		}
		log_err("--allow-%s: no %s '%s'", user ? "uid" : "group",
			user ? "user" : "group", tok);
		return -EINVAL;
	}
	return 0;
}

static bool listed(const uint32_t *ids, unsigned n, uint32_t id)
{
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* Make `dir` dsmd's own with `mode`, or say why it cannot be. */
static int own_dir(const char *dir, mode_t mode, gid_t group)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		log_err("cannot create the socket directory %s: %s", dir,
			strerror(errno));
		return -errno;
	}
	if (lstat(dir, &st)) {
		log_err("socket directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("socket directory %s is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		log_err("socket directory %s belongs to uid %u, not to dsmd's "
			"(%u): refused", dir, (unsigned)st.st_uid,
			(unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_err("socket directory %s is writable by %s (mode %03o): "
			"refused; give dsmd a directory of its own", dir,
			st.st_mode & S_IWOTH ? "everyone" : "its group",
			(unsigned)(st.st_mode & 0777));
		return -EPERM;
	}
	if (group != (gid_t)-1 && chown(dir, (uid_t)-1, group)) {
		log_err("socket directory %s: chown to group %u: %s", dir,
			(unsigned)group, strerror(errno));
		return -errno;
	}
	if (chmod(dir, mode)) {
		log_err("socket directory %s: chmod: %s", dir,
			strerror(errno));
		return -errno;
	}
	return 0;
}

/* The exclusive lock on PATH.lock: -EADDRINUSE when another dsmd has it. */
static int take_lock(struct dsmd *d)
{
	char path[ACCESS_PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s.lock", d->cfg.socket);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? EADDRINUSE : errno;

		log_err("another dsmd serves %s (it holds %s): %s",
			d->cfg.socket, path, strerror(err));
		close(fd);
		return -err;
	}
	d->access.lock_fd = fd;
	return 0;
}

int access_listen(struct dsmd *d)
{
	struct dsmd_access *a = &d->access;
	char dir[ACCESS_PATH_MAX], *slash;
	mode_t dir_mode = 0700, sock_mode = 0600;
	gid_t group = (gid_t)-1;
	int fd, ret;

	a->lock_fd = -1;
	if (!d->cfg.socket || strlen(d->cfg.socket) >= 108) {
		log_err("socket path too long (over 107 bytes): %s",
			d->cfg.socket ? d->cfg.socket : "(none)");
		return -ENAMETOOLONG;
	}
	ret = parse_ids(d->cfg.allow_uid, true, a->uids, &a->nuids);
	if (!ret)
		ret = parse_ids(d->cfg.allow_group, false, a->gids, &a->ngids);
	if (ret)
		return ret;
	if (a->ngids) {
		dir_mode = 0710;
		sock_mode = 0660;
		group = a->gids[0];
	}
	if (a->nuids) {
		dir_mode = 0711;
		sock_mode = 0666;
	}
	snprintf(dir, sizeof(dir), "%s", d->cfg.socket);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		ret = own_dir(dir, dir_mode, group);
		if (ret)
			return ret;
	}
	ret = take_lock(d);
	if (ret)
		return ret;
	fd = ipc_listen(d->cfg.socket, sock_mode, group);
	if (fd < 0) {
		log_err("cannot listen on Unix socket %s: %s", d->cfg.socket,
			strerror(-fd));
		return fd;
	}
	return fd;
}

void access_close(struct dsmd *d)
{
	char path[ACCESS_PATH_MAX + 8];

	if (d->access.lock_fd < 0)
		return;
	/* Ours: the socket is removed while the lock still says so. */
	unlink(d->cfg.socket);
	snprintf(path, sizeof(path), "%s.lock", d->cfg.socket);
	unlink(path);
	close(d->access.lock_fd);
	d->access.lock_fd = -1;
}

/* Whether one of the peer's supplementary groups is allowed. */
static bool group_allowed(const struct dsmd_access *a, int fd)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false; /* ERANGE (over 256 groups) too: the primary
				 group was checked */
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (listed(a->gids, a->ngids, groups[i]))
			return true;
	return false;
}

bool access_allowed(struct dsmd *d, int fd, const struct ucred *cred)
{
	const struct dsmd_access *a = &d->access;

	if (cred->uid == 0 || cred->uid == geteuid() ||
	    listed(a->uids, a->nuids, cred->uid) ||
	    listed(a->gids, a->ngids, cred->gid) ||
	    (a->ngids && group_allowed(a, fd)))
		return true;
	if (client_count_refusal(d))
		log_warn("refused a client on %s: uid %u (pid %d) is not "
			 "allowed (--allow-uid, --allow-group); %llu refused "
			 "so far", d->cfg.socket, (unsigned)cred->uid,
			 (int)cred->pid, (unsigned long long)d->ipc_refused);
	return false;
}
