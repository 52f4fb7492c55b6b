/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"

#define EAL_MAX_ARGS 128

static int eal_hugepages;
/* This process's run-time folder, removed at dp_eal_cleanup(). */
static char eal_rundir[PATH_MAX];

static int arg_given(int argc, char **argv, const char *const *names)
{
	for (int i = 0; i < argc; i++)
		for (const char *const *n = names; *n != NULL; n++)
			if (strncmp(argv[i], *n, strlen(*n)) == 0)
				return 1;
	return 0;
}

/* A free 2 MiB (or default-size) hugepage on a mounted hugetlbfs. */
static int hugepages_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long free_pages = 0;
	int mounted = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		sscanf(line, "HugePages_Free: %ld", &free_pages);
	fclose(f);
	f = fopen("/proc/mounts", "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, " hugetlbfs ") != NULL)
			mounted = 1;
	fclose(f);
	return free_pages > 0 && mounted;
}

int dp_eal_init(int argc, char **argv, const struct dp_eal_options *opts,
		int *app_argc, char ***app_argv)
{
	static char *eal_argv[EAL_MAX_ARGS];
	static char mem_arg[32];
	static char prefix_arg[48];
	static const char *const device_args[] = {"-a", "--allow", "--vdev", "-b", "--block", NULL};
	static const char *const prefix_args[] = {"--file-prefix", NULL};
	static const char *const private_args[] = {"--in-memory", "--no-shconf", NULL};
	static const char *const huge_args[] = {"--no-huge", NULL};
	static const char *const mem_args[] = {"-m", "--socket-mem", NULL};
	static const char *const iova_args[] = {"--iova-mode", NULL};
	const char *default_vdev = NULL;
	int split = 1, n = 0;

	while (split < argc && strcmp(argv[split], "--") != 0)
		split++;
	if (split + 8 > EAL_MAX_ARGS)
		return -E2BIG;
	int user_count = split - 1;
	char **user = argv + 1;

	eal_argv[n++] = argv[0];
	for (int i = 0; i < user_count; i++)
		eal_argv[n++] = user[i];
	if (!arg_given(user_count, user, iova_args))
		eal_argv[n++] = "--iova-mode=va";
	eal_hugepages = !arg_given(user_count, user, huge_args);
	if (eal_hugepages && !hugepages_available()) {
		djc_log(DJ_LOG_NOTICE, "eal",
		       "no free hugepages on a mounted hugetlbfs: running with --no-huge "
		       "(scripts/hugepages.sh reserves some)");
		eal_argv[n++] = "--no-huge";
		eal_hugepages = 0;
	}
	/* Private run-time state, so parallel processes never collide and a
	 * killed one leaves (almost) nothing: no shared files at all
	 * (--in-memory; --no-shconf under --no-huge, which --in-memory does
	 * not allow there: fbarrays in anonymous memory instead of files
	 * under /var/run/dpdk), and a folder of our own for what EAL still
	 * puts there (the telemetry socket), removed at dp_eal_cleanup() and,
	 * after a kill, by the next dp_eal_init() (dp_eal_rundir_sweep). */
	if (!arg_given(user_count, user, private_args))
		eal_argv[n++] = eal_hugepages ? "--in-memory" : "--no-shconf";
	if (!arg_given(user_count, user, prefix_args)) {
		snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=djinn-%d", (int)getpid());
		eal_argv[n++] = prefix_arg;
	}
	if (!eal_hugepages && !arg_given(user_count, user, mem_args)) {
		unsigned int mb = opts && opts->no_huge_mem_mb ? opts->no_huge_mem_mb : 512;
		snprintf(mem_arg, sizeof(mem_arg), "-m%u", mb);
		eal_argv[n++] = mem_arg;
	}
	if (opts && opts->default_vdev && !arg_given(user_count, user, device_args)) {
		default_vdev = opts->default_vdev;
		eal_argv[n++] = "--vdev";
		eal_argv[n++] = (char *)default_vdev;
	}
	eal_argv[n] = NULL;

	dp_eal_rundir_sweep();
	/* A memif server killed last time left its socket: bind would fail and
	 * the port with it. A socket something still listens on is refused
	 * here, by path. */
	int rc = dp_eal_memif_reclaim(user_count, user, default_vdev);
	if (rc != 0)
		return rc;
	if (rte_eal_init(n, eal_argv) < 0) {
		rc = rte_errno ? -rte_errno : -EINVAL;
		djc_log(DJ_LOG_ERR, "eal", "rte_eal_init failed: %s", rte_strerror(-rc));
		return rc;
	}
	if (rte_eal_process_type() == RTE_PROC_PRIMARY)
		snprintf(eal_rundir, sizeof(eal_rundir), "%s", rte_eal_get_runtime_dir());
	/* The application's arguments: program name, then what follows "--". */
	if (split < argc) {
		argv[split] = argv[0];
		*app_argc = argc - split;
		*app_argv = argv + split;
	} else {
		*app_argc = 1;
		*app_argv = argv;
	}
	return 0;
}

int dp_eal_cli_start(void *arg, int argc, char **argv, int *app_argc, char ***app_argv)
{
	return dp_eal_init(argc, argv, arg, app_argc, app_argv);
}

void dp_eal_cli_stop(void *arg)
{
	(void)arg;
	dp_eal_cleanup();
}

int dp_eal_has_hugepages(void)
{
	return eal_hugepages;
}

const char *dp_eal_file_prefix(void)
{
	/* The run-time folder is .../dpdk/PREFIX. */
	const char *dir = rte_eal_get_runtime_dir(), *slash = strrchr(dir, '/');

	return slash != NULL ? slash + 1 : dir;
}

/* 1 where this process holds the socket of this inode (/proc/self/fd). */
static int own_socket(unsigned long inode)
{
	char want[48], link[64], path[300];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int found = 0;

	if (d == NULL)
		return 0;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	return found;
}

int dp_eal_telemetry_socket(char *path, size_t size)
{
	char base[PATH_MAX], line[PATH_MAX + 128];
	FILE *f = fopen("/proc/net/unix", "r");
	int rc = -ENOENT;

	snprintf(base, sizeof(base), "%s/dpdk_telemetry.v2", rte_eal_get_runtime_dir());
	if (f == NULL)
		return rc;
	/* "Num RefCount Protocol Flags Type St Inode Path": the listening
	 * socket named base, or base:N, that is ours. */
	while (rc != 0 && fgets(line, sizeof(line), f) != NULL) {
		unsigned long inode;
		char name[PATH_MAX];
		size_t blen = strlen(base);

		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %4095s", &inode, name) != 2)
			continue;
		if (strncmp(name, base, blen) != 0 || (name[blen] != '\0' && name[blen] != ':'))
			continue;
		if (own_socket(inode)) {
			snprintf(path, size, "%s", name);
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

/* DPDK's lines arrive through a stream; whole lines go to djc_log. */
static pthread_mutex_t bridge_lock = PTHREAD_MUTEX_INITIALIZER;
static char bridge_line[1024];
static size_t bridge_len;

static enum dj_log_level bridge_level(void)
{
	int l = rte_log_cur_msg_loglevel();

	return l <= (int)RTE_LOG_ERR ? DJ_LOG_ERR : l == (int)RTE_LOG_WARNING ? DJ_LOG_WARN :
	       l == (int)RTE_LOG_NOTICE ? DJ_LOG_NOTICE : l == (int)RTE_LOG_INFO ? DJ_LOG_INFO :
	       DJ_LOG_DEBUG;
}

static ssize_t bridge_write(void *cookie, const char *buf, size_t len)
{
	enum dj_log_level level = bridge_level();

	pthread_mutex_lock(&bridge_lock);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n' && bridge_len < sizeof(bridge_line) - 1) {
			bridge_line[bridge_len++] = buf[i];
			continue;
		}
		bridge_line[bridge_len] = '\0';
		if (bridge_len > 0)
			DJC_LOG(level, "dpdk", "%s", bridge_line);
		bridge_len = 0;
		if (buf[i] != '\n')
			bridge_line[bridge_len++] = buf[i]; /* a line too long: cut */
	}
	pthread_mutex_unlock(&bridge_lock);
	return (ssize_t)len;
}

int dp_eal_log_bridge(void)
{
	cookie_io_functions_t io = {.write = bridge_write};
	FILE *f = fopencookie(NULL, "w", io);

	if (f == NULL)
		return -ENOMEM;
	setvbuf(f, NULL, _IOLBF, 0);
	return rte_openlog_stream(f) == 0 ? 0 : -EINVAL;
}

void dp_eal_cleanup(void)
{
	rte_eal_cleanup();
	/* A memif server's socket file goes only when its port is closed,
	 * which 22.11's rte_eal_cleanup() does not do, and closing it here
	 * races with a client reconnecting (the PMD frees the listener under
	 * its interrupt callback): remove the file instead. */
	dp_eal_memif_release();
	dp_eal_rundir_remove(eal_rundir);
	eal_rundir[0] = '\0';
}
