/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_RUNTIME_H
#define DJINN_RUNTIME_H

/**
 * @file
 * The server's execution runtime: resident tensors (the store) in GPU memory
 * when a GPU is chosen, else host memory, and operations run by CUDA kernels
 * and cuBLAS on the GPU or by the CPU reference. It implements the control
 * plane's backend table, so djinn-dp (and tests) serve tensors with:
 *
 *   rt_create(&cfg, &rt);
 *   ctl_server_create(&ctl_cfg, rt_backend(), rt, &srv);
 */

#include <stddef.h>
#include <stdint.h>

#include "controlplane/ctl.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rt_config {
	/** "none" (host memory, CPU operations), "auto" (the first GPU if
	 * there is one) or a CUDA device index ("0"). NULL: "auto". */
	const char *gpu;
	uint64_t session_limit;  /**< bytes per session; 0: no limit */
	uint64_t total_limit;    /**< bytes over all sessions; 0: no limit */
	int n_contexts;          /**< GPU contexts = concurrent executes (default 4) */
	/** Optional: adds figures to the "backend" object of STATS replies
	 *  (djinn-dp adds its data plane's receive path); called on control
	 *  threads with @p stats_arg, which must outlive the runtime's use. */
	void (*stats_extra)(void *stats_arg, cJSON *obj);
	void *stats_arg;
};

struct rt_runtime;

/** Create; -DJ_ENOGPU where a GPU index was asked for and is absent. The
 *  caller owns *rt: rt_destroy(). */
int rt_create(const struct rt_config *config, struct rt_runtime **rt);
/** Free every resident tensor and the runtime. NULL-safe. */
void rt_destroy(struct rt_runtime *rt);

/** The backend table for ctl_server_create(); ctx is the runtime. */
const struct ctl_backend *rt_backend(void);

/** "host (CPU operations)" or "cuda:0 (GPU operations)". Static or owned by rt. */
const char *rt_description(const struct rt_runtime *rt);
/** The CUDA device the runtime computes on (tensors in GPU memory), or -1
 *  for host memory. */
int rt_gpu_device(const struct rt_runtime *rt);

/** Memory of one device that resident tensors live on. */
struct rt_memory {
	char device[16];   /**< "host" or "cuda:N" */
	uint64_t used;     /**< bytes held by resident tensors */
	uint64_t peak;     /**< the most ever held at once */
	uint64_t limit;    /**< --total-mem-limit; 0: none */
	uint64_t free;     /**< the device's free memory now (GPU: cudaMemGetInfo,
			        host: MemAvailable); 0 where unknown */
	uint64_t total;    /**< the device's memory; 0 where unknown */
	uint64_t tensors;  /**< resident tensors */
	uint64_t refused;  /**< allocations refused by the limits */
};

/**
 * Memory of every device that holds tensors (one today: the GPU the
 * runtime computes on, or the host). Thread safe; quick (a lock, and a
 * cudaMemGetInfo or a read of /proc/meminfo).
 * @return the number of devices filled, at most max.
 */
int rt_memory(struct rt_runtime *rt, struct rt_memory *out, int max);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_RUNTIME_H */
