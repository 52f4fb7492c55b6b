/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a DPDK process leaves on disk, found and removed: the memif socket of
 * a server that was killed (the next start with the same arguments could not
 * bind it and came up without a data plane), and EAL's run-time folder under
 * /var/run/dpdk (fbarray files of --no-huge runs, the telemetry socket),
 * which a killed process never removes. Plain POSIX: no EAL needed, so tests
 * call these before, after and without EAL.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"

#define MEMIF_DEFAULT_SOCKET "/run/memif.sock" /* the PMD's, rte_eth_memif.h */
#define MEMIF_MSG_LEN 128                      /* memif_msg_t */
#define HELLO_WAIT_MS 2000
#define MAX_OWN_SOCKETS 8

/* The socket files this process's memif servers bind (dp_eal_memif_reclaim),
 * removed by dp_eal_memif_release(). */
static char own_sockets[MAX_OWN_SOCKETS][PATH_MAX];
static unsigned int n_own_sockets;
#define OWN_PREFIX "djinn-"

/* ---- memif sockets ----------------------------------------------------------- */

/* An AF_UNIX address for path, in the file system or (abstract) in the
 * abstract namespace, spelled as the memif PMD binds it. */
static int unix_addr(const char *path, bool abstract, struct sockaddr_un *un, socklen_t *len)
{
	size_t n = strlen(path);

	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (n + 1 >= sizeof(un->sun_path))
		return -ENAMETOOLONG;
	if (abstract) {
		memcpy(un->sun_path + 1, path, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	} else {
		memcpy(un->sun_path, path, n);
		*len = sizeof(*un);
	}
	return 0;
}

/* 1 when something listens on the socket, 0 when nothing does (a connect
 * is refused), or a negative errno that says neither. A memif server that
 * is probed this way sees a connection that closes before it names an
 * interface: it drops that connection and nothing else. The probe closes
 * only after the server's HELLO (or HELLO_WAIT_MS): DPDK 22.11 without our
 * patch 0005 panics when that HELLO finds the connection already closed. */
static int socket_live(const struct sockaddr_un *un, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	uint8_t hello[MEMIF_MSG_LEN];
	struct pollfd pfd;
	int rc;

	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)un, len) == 0 ? 1 :
	     errno == ECONNREFUSED ? 0 : -errno;
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	if (rc == 1 && poll(&pfd, 1, HELLO_WAIT_MS) == 1)
		(void)recv(fd, hello, sizeof(hello), MSG_DONTWAIT);
	close(fd);
	return rc;
}

int dp_memif_socket_reclaim(const char *path, bool abstract)
{
	struct sockaddr_un un;
	struct stat st;
	socklen_t len;
	int rc = unix_addr(path, abstract, &un, &len);

	if (rc != 0)
		return rc;
	if (!abstract && lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!abstract && !S_ISSOCK(st.st_mode))
		return -EEXIST;
	rc = socket_live(&un, len);
	/* Abstract names go with their last descriptor: nothing to remove. */
	if (rc != 0 || abstract)
		return rc > 0 ? -EADDRINUSE : rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	djc_log(DJ_LOG_NOTICE, "eal", "removed the stale memif socket %s (nothing listened on "
	       "it: left by a process that was killed)", path);
	return 0;
}

/* One --vdev value: a memif server's socket, path and namespace, or 0 when
 * it is something else (another driver, a client). */
static int memif_server_socket(const char *vdev, char *path, size_t cap, bool *abstract)
{
	char buf[512], *save = NULL, *kv;
	bool server = false;

	if (strncmp(vdev, "net_memif", 9) != 0)
		return 0;
	snprintf(buf, sizeof(buf), "%s", vdev);
	snprintf(path, cap, "%s", MEMIF_DEFAULT_SOCKET);
	*abstract = true; /* the PMD's default */
	strtok_r(buf, ",", &save); /* the device name */
	while ((kv = strtok_r(NULL, ",", &save)) != NULL) {
		if (strncmp(kv, "role=", 5) == 0)
			server = strcmp(kv + 5, "server") == 0 || strcmp(kv + 5, "master") == 0;
		else if (strncmp(kv, "socket=", 7) == 0)
			snprintf(path, cap, "%s", kv + 7);
		else if (strncmp(kv, "socket-abstract=", 16) == 0)
			*abstract = strcmp(kv + 16, "no") != 0;
	}
	return server ? 1 : 0;
}

/* Reclaim one vdev's server socket; a live one or one that is not a socket
 * is logged with its path. */
static int vdev_reclaim(const char *vdev)
{
	char path[PATH_MAX];
	bool abstract;
	int rc;

	if (memif_server_socket(vdev, path, sizeof(path), &abstract) != 1)
		return 0;
	rc = dp_memif_socket_reclaim(path, abstract);
	if (rc == 0 && !abstract && n_own_sockets < MAX_OWN_SOCKETS)
		snprintf(own_sockets[n_own_sockets++], PATH_MAX, "%s", path);
	if (rc == -EADDRINUSE)
		djc_log(DJ_LOG_ERR, "eal", "memif socket %s%s is in use: another process (a "
		       "djinn-dp?) serves on it; stop it or give this one another socket= path",
		       abstract ? "(abstract) " : "", path);
	else if (rc == -EEXIST)
		djc_log(DJ_LOG_ERR, "eal", "memif socket path %s exists and is not a socket: "
		       "not removed; give another socket= path", path);
	else if (rc != 0)
		djc_log(DJ_LOG_ERR, "eal", "memif socket %s: %s", path, dj_strerror(rc));
	return rc;
}

int dp_eal_memif_reclaim(int argc, char **argv, const char *extra_vdev)
{
	int rc = extra_vdev != NULL ? vdev_reclaim(extra_vdev) : 0;

	for (int i = 0; i < argc && rc == 0; i++) {
		if (strcmp(argv[i], "--vdev") == 0 && i + 1 < argc)
			rc = vdev_reclaim(argv[++i]);
		else if (strncmp(argv[i], "--vdev=", 7) == 0)
			rc = vdev_reclaim(argv[i] + 7);
	}
	return rc;
}

void dp_eal_memif_release(void)
{
	for (unsigned int i = 0; i < n_own_sockets; i++)
		unlink(own_sockets[i]);
	n_own_sockets = 0;
}

/* ---- run-time folders ---------------------------------------------------------- */

/* Where EAL puts run-time folders (eal_create_runtime_dir): /var/run/dpdk
 * for root, $XDG_RUNTIME_DIR/dpdk (or /tmp/dpdk) for anyone else. */
static void runtime_base(char *out, size_t cap)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	snprintf(out, cap, "%s/dpdk", getuid() == 0 ? "/var/run" : xdg != NULL ? xdg : "/tmp");
}

/* A run-time folder holds files and sockets, no subfolders. */
static int folder_remove(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (d == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir) == 0 || errno == ENOENT ? 0 : -errno;
}

int dp_eal_prefix_remove(const char *prefix)
{
	char base[PATH_MAX / 2], dir[PATH_MAX];

	if (prefix == NULL || prefix[0] == '\0' || strchr(prefix, '/') != NULL ||
	    strcmp(prefix, ".") == 0 || strcmp(prefix, "..") == 0)
		return -EINVAL;
	runtime_base(base, sizeof(base));
	snprintf(dir, sizeof(dir), "%s/%s", base, prefix);
	return folder_remove(dir);
}

void dp_eal_rundir_remove(const char *dir)
{
	if (dir != NULL && dir[0] != '\0')
		folder_remove(dir);
}

bool dp_eal_prefix_exists(const char *prefix)
{
	char base[PATH_MAX / 2], dir[PATH_MAX];
	struct stat st;

	runtime_base(base, sizeof(base));
	snprintf(dir, sizeof(dir), "%s/%s", base, prefix);
	return stat(dir, &st) == 0;
}

/* "djinn-<pid>" (dp_eal_init's own prefix) of a process that is gone. */
static bool own_prefix_dead(const char *name)
{
	char *end;
	long pid;

	if (strncmp(name, OWN_PREFIX, strlen(OWN_PREFIX)) != 0)
		return false;
	pid = strtol(name + strlen(OWN_PREFIX), &end, 10);
	return end != name + strlen(OWN_PREFIX) && *end == '\0' && pid > 0 &&
	       kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

unsigned int dp_eal_rundir_sweep(void)
{
	char base[PATH_MAX / 2];
	unsigned int removed = 0;
	struct dirent *e;
	DIR *d;

	runtime_base(base, sizeof(base));
	d = opendir(base);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (own_prefix_dead(e->d_name) && dp_eal_prefix_remove(e->d_name) == 0)
			removed++;
	closedir(d);
	if (removed != 0)
		DJC_LOG(DJ_LOG_INFO, "eal", "removed %u run-time folder(s) of killed processes "
		       "from %s", removed, base);
	return removed;
}
