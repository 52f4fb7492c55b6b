/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What DPDK processes leave on disk (dataplane/eal_files.c), without EAL:
 * the memif socket of a killed server is removed, a live one is refused by
 * path, a path that is not a socket is left alone; run-time folders are
 * removed by prefix, and those of killed djinn-PID processes swept.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "dataplane/eal.h"
#include "harness.h"

static char dir[64];

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static socklen_t addr_of(const char *path, bool abstract, struct sockaddr_un *un)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (!abstract) {
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", path);
		return sizeof(*un);
	}
	memcpy(un->sun_path + 1, path, strlen(path));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(path));
}

/* A socket bound at path; listening when listen_it, else closed at once,
 * as a killed server leaves its file behind. Returns the fd or -1. */
static int bound(const char *path, bool abstract, bool listen_it)
{
	struct sockaddr_un un;
	socklen_t len = addr_of(path, abstract, &un);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&un, len) == 0);
	if (listen_it) {
		CU_ASSERT_FATAL(listen(fd, 1) == 0);
		return fd;
	}
	close(fd);
	return -1;
}

/* A memif server's manners: accept, send a 128-byte HELLO, wait for the
 * peer to go. */
static void *serve_one(void *arg)
{
	int lfd = *(int *)arg, fd = accept(lfd, NULL, NULL);
	char hello[128] = {0}, buf[128];

	if (fd >= 0) {
		(void)send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			;
		close(fd);
	}
	return NULL;
}

static int reclaim_live(const char *path, bool abstract)
{
	pthread_t t;
	int lfd = bound(path, abstract, true), rc;

	CU_ASSERT_FATAL(pthread_create(&t, NULL, serve_one, &lfd) == 0);
	rc = dp_memif_socket_reclaim(path, abstract);
	pthread_join(t, NULL);
	close(lfd);
	return rc;
}

static void test_socket_files(void)
{
	char p[128];
	FILE *f;

	path_in(p, sizeof(p), "none.sock");
	CU_ASSERT_EQUAL(dp_memif_socket_reclaim(p, false), 0);
	/* Killed server: the file stays, nothing listens. */
	path_in(p, sizeof(p), "stale.sock");
	bound(p, false, false);
	CU_ASSERT_TRUE(exists(p));
	CU_ASSERT_EQUAL(dp_memif_socket_reclaim(p, false), 0);
	CU_ASSERT_FALSE(exists(p));
	/* A server still running keeps its socket. */
	path_in(p, sizeof(p), "live.sock");
	CU_ASSERT_EQUAL(reclaim_live(p, false), -EADDRINUSE);
	CU_ASSERT_TRUE(exists(p));
	unlink(p);
	/* Not a socket: never removed. */
	path_in(p, sizeof(p), "file.sock");
	f = fopen(p, "w");
	CU_ASSERT_FATAL(f != NULL);
	fclose(f);
	CU_ASSERT_EQUAL(dp_memif_socket_reclaim(p, false), -EEXIST);
	CU_ASSERT_TRUE(exists(p));
	unlink(p);
}

static void test_abstract_sockets(void)
{
	char name[96];

	snprintf(name, sizeof(name), "djinn-test-eal-files-%d", (int)getpid());
	CU_ASSERT_EQUAL(dp_memif_socket_reclaim(name, true), 0);
	CU_ASSERT_EQUAL(reclaim_live(name, true), -EADDRINUSE);
}

/* Only memif servers' sockets, as the PMD reads its arguments. */
static void test_vdev_arguments(void)
{
	char srv[128], cli[128], a1[256], a2[256], a3[256];
	char *argv[5];

	path_in(srv, sizeof(srv), "srv.sock");
	path_in(cli, sizeof(cli), "cli.sock");
	bound(srv, false, false);
	bound(cli, false, false);
	snprintf(a1, sizeof(a1), "net_memif0,role=server,socket=%s,socket-abstract=no,bsize=9216",
		 srv);
	snprintf(a2, sizeof(a2), "--vdev=net_memif1,role=client,socket=%s,socket-abstract=no", cli);
	snprintf(a3, sizeof(a3), "net_ring0");
	argv[0] = "--vdev";
	argv[1] = a1;
	argv[2] = a2;
	argv[3] = "--vdev";
	argv[4] = a3;
	CU_ASSERT_EQUAL(dp_eal_memif_reclaim(5, argv, NULL), 0);
	CU_ASSERT_FALSE(exists(srv));
	CU_ASSERT_TRUE(exists(cli)); /* a client binds nothing: not ours to touch */
	/* The default vdev counts too; a live one is an error. */
	snprintf(a1, sizeof(a1), "net_memif0,role=server,socket=%s,socket-abstract=no", cli);
	CU_ASSERT_EQUAL(dp_eal_memif_reclaim(0, argv, a1), 0);
	CU_ASSERT_FALSE(exists(cli));
	unlink(srv);
	unlink(cli);
}

static void make_folder(const char *prefix)
{
	char base[256], p[320];
	FILE *f;

	snprintf(base, sizeof(base), "%s/dpdk", getuid() == 0 ? "/var/run" :
		 getenv("XDG_RUNTIME_DIR") != NULL ? getenv("XDG_RUNTIME_DIR") : "/tmp");
	mkdir(base, 0700);
	snprintf(p, sizeof(p), "%s/%s", base, prefix);
	CU_ASSERT_FATAL(mkdir(p, 0700) == 0);
	snprintf(p, sizeof(p), "%s/%s/fbarray_memzone", base, prefix);
	f = fopen(p, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("x", f);
	fclose(f);
}

static void test_runtime_folders(void)
{
	char mine[64], dead[64];
	pid_t child = fork();

	CU_ASSERT_FATAL(child >= 0);
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0); /* a pid nobody has now */
	snprintf(mine, sizeof(mine), "djinn-%d", (int)getpid());
	snprintf(dead, sizeof(dead), "djinn-%d", (int)child);
	make_folder(mine);
	make_folder(dead);
	CU_ASSERT_TRUE(dp_eal_rundir_sweep() >= 1);
	CU_ASSERT_FALSE(dp_eal_prefix_exists(dead));
	CU_ASSERT_TRUE(dp_eal_prefix_exists(mine)); /* alive: kept */
	CU_ASSERT_EQUAL(dp_eal_prefix_remove(mine), 0);
	CU_ASSERT_FALSE(dp_eal_prefix_exists(mine));
	CU_ASSERT_EQUAL(dp_eal_prefix_remove(mine), 0); /* nothing there: fine */
	CU_ASSERT_EQUAL(dp_eal_prefix_remove("../etc"), -EINVAL);
	CU_ASSERT_EQUAL(dp_eal_prefix_remove(".."), -EINVAL);
	CU_ASSERT_EQUAL(dp_eal_prefix_remove(""), -EINVAL);
}

static int setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/djinn-test-eal-files-%d", (int)getpid());
	return mkdir(dir, 0700);
}

static int teardown(void)
{
	return rmdir(dir);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"memif socket files: stale removed, live and non-sockets kept",
		 test_socket_files},
		{"abstract memif sockets", test_abstract_sockets},
		{"memif servers among --vdev arguments", test_vdev_arguments},
		{"run-time folders: by prefix, killed djinn-PID swept", test_runtime_folders},
		{NULL, NULL},
	};

	dj_test_add_suite("eal_files", setup, teardown, cases);
	return dj_test_main(argc, argv);
}
