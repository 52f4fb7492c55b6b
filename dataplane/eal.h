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
 * What processes leave behind is cleaned up: dp_eal_cleanup() removes its
 * memif servers' socket files and its run-time folder; dp_eal_init() first removes the folders of djinn-PID
 * processes that were killed, and the socket file of a memif server that
 * was killed (nothing listens on it) so that the port can bind it again.
 */

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
 * Returns 0 or a negative errno (EAL's rte_errno).
 */
int dp_eal_init(int argc, char **argv, const struct dp_eal_options *opts,
		int *app_argc, char ***app_argv);

/**
 * The application's arguments without starting EAL (before it, or where it
 * cannot start): the program name, then what follows "--"; only the program
 * name when there is no "--". argv is left as it is; *app_argv points to
 * static storage (one caller at a time), NULL-terminated.
 */
void dp_eal_app_args(int argc, char **argv, int *app_argc, char ***app_argv);

/** 1 when EAL was started with hugepages, 0 under --no-huge. */
int dp_eal_has_hugepages(void);

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
