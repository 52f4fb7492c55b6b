/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_EAL_H
#define DJINN_EAL_H

/**
 * @file
 * Starting DPDK's EAL the Djinn way: `prog [EAL args] -- [app args]`.
 *
 * dp_eal_init() adds what a sensible default needs where the user said
 * nothing: --in-memory (unless a --file-prefix is given, so parallel processes
 * never share run-time files), --iova-mode=va (needed for GPU memory registered
 * with RTE_BAD_IOVA), --no-huge with a log line where no free hugepage is
 * mounted, and a default vdev where no device was named.
 */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dp_eal_options {
	/** vdev to add when the EAL args name no device (-a, --vdev, -b), or NULL. */
	const char *default_vdev;
	/** Memory (MiB) to ask for under --no-huge when -m is not given; 0: 512. */
	unsigned int no_huge_mem_mb;
	/** Run-time file prefix where the EAL args name none, or NULL: none
	 *  with hugepages (--in-memory alone), djinn-PID under --no-huge. It
	 *  names the run-time folder and so the telemetry socket
	 *  (dp_eal_telemetry_socket()); --in-memory is still added. */
	const char *file_prefix;
};

/**
 * Split argv at "--", start EAL with the first half (plus defaults) and
 * return the application's arguments in *app_argc / *app_argv, where
 * (*app_argv)[0] is the program name. *app_argv points into the caller's
 * argv (the "--" slot is overwritten with the program name).
 * Returns 0 or a negative errno (EAL's rte_errno).
 */
int dp_eal_init(int argc, char **argv, const struct dp_eal_options *opts,
		int *app_argc, char ***app_argv);

/* The application's arguments without starting EAL: djc_cli_app_args()
 * (common/cli.h). */

/**
 * dp_eal_init() and dp_eal_cleanup() in the shape of struct djc_cli_tool's
 * start and stop (common/cli.h), for tools that start EAL before their
 * options: arg is a const struct dp_eal_options * or NULL.
 */
int dp_eal_cli_start(void *arg, int argc, char **argv, int *app_argc, char ***app_argv);
void dp_eal_cli_stop(void *arg);

/** 1 when EAL was started with hugepages, 0 under --no-huge. */
int dp_eal_has_hugepages(void);

/** The run-time file prefix EAL was started with ("rte" where none was
 *  given), for `dpdk-telemetry.py -f PREFIX`. Static storage. */
const char *dp_eal_file_prefix(void);

/**
 * Path of DPDK's telemetry socket (v2) of this process: RUNTIME_DIR/
 * dpdk_telemetry.v2, with ":N" where another process held that name when
 * EAL started (found in /proc/net/unix among this process's sockets).
 * @return 0, -ENOENT (no telemetry socket: EAL down or --no-telemetry).
 */
int dp_eal_telemetry_socket(char *path, size_t size);

/**
 * Send DPDK's own log lines through djc_log (component "dpdk", DPDK's
 * level mapped onto ours), so that they follow the log format (JSON lines
 * included) and level. Call before dp_eal_init to catch EAL's lines.
 * @return 0, -ENOMEM.
 */
int dp_eal_log_bridge(void);

/** Stop EAL (rte_eal_cleanup). */
void dp_eal_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_EAL_H */
