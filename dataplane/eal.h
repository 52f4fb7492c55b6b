/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_EAL_H
#define DJINN_EAL_H

/**
 * @file
 * Starting DPDK's EAL the Djinn way: `prog [EAL args] -- [app args]`.
 *
 * dp_eal_init() adds what a sensible default needs where the user said
 * nothing: --in-memory (--no-shconf under --no-huge) and a --file-prefix of
 * its own (djinn-PID), so parallel processes never share run-time files and
 * almost nothing is written under /var/run/dpdk; --iova-mode=va (needed for
 * GPU memory registered with RTE_BAD_IOVA); --no-huge with a log line where
 * no free hugepage is mounted; and a default vdev where no device was named.
 *
 * The prefix names the run-time folder, and so DPDK's telemetry socket in it
 * (dp_eal_file_prefix(), dp_eal_telemetry_socket()): one scheme for the
 * server, the client tool, libdjinn's dj_dpdk_create() and the tests that
 * call dp_eal_init() without a --file-prefix of their own.
 *
 * What processes leave behind is cleaned up: dp_eal_cleanup() removes its
 * memif servers' socket files and its run-time folder; dp_eal_init() first
 * removes the folders of djinn-PID processes that were killed, and the
 * socket file of a memif server that was killed (nothing listens on it) so
 * that the port can bind it again.
 */

#include <stddef.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dp_eal_options {
	/** vdev to add when the EAL args name no device (-a, --vdev, -b), or NULL. */
	const char *default_vdev;
	/** Memory (MiB) to ask for under --no-huge when -m is not given; 0: 512. */
	unsigned int no_huge_mem_mb;
};

/**
 * Split argv at "--", start EAL with the first half (plus defaults) and
 * return the application's arguments in *app_argc / *app_argv, where
 * (*app_argv)[0] is the program name. *app_argv points into the caller's
 * argv (the "--" slot is overwritten with the program name).
 * @return 0, -E2BIG (too many arguments), the errors of
 *   dp_eal_memif_reclaim() (-EADDRINUSE: a running process listens on a
 *   memif server's socket; -EEXIST: its path is not a socket), or EAL's
 *   rte_errno, negated.
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

/** Stop EAL (rte_eal_cleanup), then remove what this process left on disk:
 *  its memif servers' socket files and its run-time folder. */
void dp_eal_cleanup(void);

/**
 * A memif server socket that a killed process left: free it for bind.
 * path is a file (abstract false) or a name in the abstract namespace.
 * @return
 *   - 0: nothing there, or a stale socket file (nothing listens) removed
 *     (logged); an abstract name nobody holds.
 *   - -EADDRINUSE: something listens on it (a running server).
 *   - -EEXIST: the path exists and is not a socket (left alone).
 *   - -ENAMETOOLONG, or another -errno of lstat/socket/connect/unlink.
 */
int dp_memif_socket_reclaim(const char *path, bool abstract);

/**
 * dp_memif_socket_reclaim() for every memif server among the --vdev
 * arguments in argv[0..argc) and extra_vdev (NULL: none), as the PMD reads
 * them (role, socket, socket-abstract and their defaults). Errors name the
 * path in the log.
 * @return 0, or the first error of dp_memif_socket_reclaim().
 */
int dp_eal_memif_reclaim(int argc, char **argv, const char *extra_vdev);

/** Remove the socket files of the memif servers dp_eal_memif_reclaim()
 *  found (this process's own): at exit, after rte_eal_cleanup(). */
void dp_eal_memif_release(void);

/**
 * Remove the run-time folder of EAL file prefix prefix (under /var/run/dpdk
 * for root, $XDG_RUNTIME_DIR/dpdk otherwise), as after a kill.
 * @return 0 (also when there is none), -EINVAL for a prefix that is not a
 *   plain name, or -errno of rmdir.
 */
int dp_eal_prefix_remove(const char *prefix);

/** true when prefix has a run-time folder. */
bool dp_eal_prefix_exists(const char *prefix);

/** Remove the run-time folder at dir (a path EAL gave), if any. */
void dp_eal_rundir_remove(const char *dir);

/** Remove the run-time folders of dp_eal_init()'s own prefixes (djinn-PID)
 *  whose process is gone; returns how many. */
unsigned int dp_eal_rundir_sweep(void);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_EAL_H */
