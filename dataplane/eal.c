/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"

#define EAL_MAX_ARGS 128

static int eal_hugepages;

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
	static const char *const prefix_args[] = {"--file-prefix", "--in-memory", NULL};
	static const char *const huge_args[] = {"--no-huge", NULL};
	static const char *const mem_args[] = {"-m", "--socket-mem", NULL};
	static const char *const iova_args[] = {"--iova-mode", NULL};
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
	/* Private run-time files so parallel processes never collide:
	 * --in-memory, which --no-huge (legacy memory) does not allow, so a
	 * per-process prefix there. */
	if (!arg_given(user_count, user, prefix_args)) {
		if (eal_hugepages) {
			eal_argv[n++] = "--in-memory";
		} else {
			snprintf(prefix_arg, sizeof(prefix_arg), "--file-prefix=djinn-%d", (int)getpid());
			eal_argv[n++] = prefix_arg;
		}
	}
	if (!eal_hugepages && !arg_given(user_count, user, mem_args)) {
		unsigned int mb = opts && opts->no_huge_mem_mb ? opts->no_huge_mem_mb : 512;
		snprintf(mem_arg, sizeof(mem_arg), "-m%u", mb);
		eal_argv[n++] = mem_arg;
	}
	if (opts && opts->default_vdev && !arg_given(user_count, user, device_args)) {
		eal_argv[n++] = "--vdev";
		eal_argv[n++] = (char *)opts->default_vdev;
	}
	eal_argv[n] = NULL;

	if (rte_eal_init(n, eal_argv) < 0) {
		int rc = rte_errno ? -rte_errno : -EINVAL;
		djc_log(DJ_LOG_ERR, "eal", "rte_eal_init failed: %s", rte_strerror(-rc));
		return rc;
	}
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

void dp_eal_cleanup(void)
{
	rte_eal_cleanup();
}
