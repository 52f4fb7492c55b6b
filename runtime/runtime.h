/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_RUNTIME_H
#define DJINN_RUNTIME_H

/**
 * @file
 * The server's execution runtime: resident tensors (the store) in the memory
 * of the devices it serves (every GPU of the host, a list of them, or host
 * memory), and operations run by CUDA kernels and cuBLAS on the GPU their
 * inputs live on, or by the CPU reference. Each tensor lives on one named
 * device ("cuda:N", "host", or "sim:N" for the simulated devices of
 * tests); a move between two devices of the server is a device copy (peer
 * or staged through pinned host memory), never the network
 * (docs/MULTIGPU.md). It implements the control plane's backend table, so
 * djinn-dp (and tests) serve tensors with:
 *
 *   rt_create(&cfg, &rt);
 *   ctl_server_create(&ctl_cfg, rt_backend(), rt, &srv);
 */

#include <stddef.h>
#include <stdint.h>

#include "controlplane/ctl.h"

struct tp_topology;

#ifdef __cplusplus
extern "C" {
#endif

/** Most devices one runtime serves. */
#define RT_MAX_DEVICES 16
/** Longest device name, NUL included ("cuda:15.15", "sim:15"). */
#define RT_DEVICE_NAME_MAX 16

enum rt_device_kind {
	RT_DEVICE_HOST = 0, /**< host memory, CPU operations */
	RT_DEVICE_CUDA,     /**< a CUDA GPU (or a logical alias of one) */
	RT_DEVICE_SIM,      /**< host memory pretending to be a GPU of a given
			         size, CPU operations (tests, docs/MULTIGPU.md) */
};

/** How moves between two GPUs go. */
enum rt_move_mode {
	RT_MOVE_AUTO = 0,  /**< device to device on one GPU, peer copy where the
			        GPUs reach each other, else staged */
	RT_MOVE_STAGED,    /**< always staged through pinned host memory
			        (tests the staged path on one GPU) */
};

struct rt_config {
	/** Devices to serve (docs/MULTIGPU.md, "Choosing the GPUs"): "auto"
	 * (every GPU, else host memory), "all" (every GPU; none is an error),
	 * "none" or "host" (host memory, CPU operations), a CUDA index ("1")
	 * or a list ("0,2,3"; an index repeated is a logical alias on the
	 * same GPU, named "cuda:N.k"), or "sim:N[:SIZE]" (N simulated devices
	 * of SIZE bytes each, default 1G). NULL: "auto". */
	const char *gpu;
	uint64_t session_limit;  /**< bytes per session; 0: no limit */
	uint64_t total_limit;    /**< bytes over all sessions; 0: no limit */
	int n_contexts;          /**< contexts per device = concurrent executes on it (default 4) */
	enum rt_move_mode move_mode;
	size_t stage_slot_bytes;   /**< staged moves: bytes per slot (default 4 MiB) */
	unsigned int stage_slots;  /**< staged moves: slots (2..8, default 4) */
	/** Optional: adds figures to the "backend" object of STATS replies
	 *  (djinn-dp adds its data plane's receive path); called on control
	 *  threads with @p stats_arg, which must outlive the runtime's use. */
	void (*stats_extra)(void *stats_arg, cJSON *obj);
	void *stats_arg;
};

struct rt_runtime;

/** Create; -EINVAL (a malformed device list), -DJ_ENOGPU where a GPU was
 *  asked for and is absent, -ENOMEM, or a GPU's error. The caller owns
 *  *rt: rt_destroy(). */
int rt_create(const struct rt_config *config, struct rt_runtime **rt);
/** Free every resident tensor and the runtime. NULL-safe. */
void rt_destroy(struct rt_runtime *rt);

/** The backend table for ctl_server_create(); ctx is the runtime. */
const struct ctl_backend *rt_backend(void);

/** "host (host memory, CPU operations)" or "cuda:0, cuda:1 (GPU memory,
 *  CUDA operations)". Owned by rt. */
const char *rt_description(const struct rt_runtime *rt);
/** The CUDA device of the runtime's first GPU, or -1 where it serves no
 *  GPU. */
int rt_gpu_device(const struct rt_runtime *rt);

/** A parsed device list (rt_config.gpu). */
struct rt_device_spec {
	enum rt_device_kind kind;
	int n;                          /**< devices */
	int ordinals[RT_MAX_DEVICES];   /**< CUDA devices, in order (may repeat) */
	uint64_t sim_capacity;          /**< bytes of each simulated device */
};

/**
 * Parse a device list for a machine of @p n_gpus CUDA devices.
 * @return 0; -EINVAL (malformed, more than RT_MAX_DEVICES entries, a
 * simulated size out of range); -DJ_ENOGPU ("all" without a GPU, an index
 * the machine does not have). @p err (may be NULL) says which.
 */
int rt_device_spec_parse(const char *spec, int n_gpus, struct rt_device_spec *out, char *err,
			 size_t errlen);

/** The name device @p i of @p spec gets ("cuda:2", "cuda:0.1", "sim:1",
 *  "host"), into @p name (RT_DEVICE_NAME_MAX bytes). */
void rt_device_spec_name(const struct rt_device_spec *spec, int i, char *name, size_t len);

/** One device the runtime serves. */
struct rt_device_info {
	char name[RT_DEVICE_NAME_MAX]; /**< "cuda:1", "cuda:0.1" (an alias), "host", "sim:0" */
	enum rt_device_kind kind;
	int ordinal;                   /**< CUDA device; -1 */
	int numa_node;                 /**< -1: unknown */
};

/** The devices, in index order. @return how many (at most max filled). */
int rt_devices(const struct rt_runtime *rt, struct rt_device_info *out, int max);
/** Index of the device named @p name, or -ENODEV. */
int rt_device_find(const struct rt_runtime *rt, const char *name);
/** "gpu", "host" or "sim". Static. */
const char *rt_device_kind_name(enum rt_device_kind kind);
/** The topology the runtime placed its staging memory by (topo.h). */
const struct tp_topology *rt_topology(const struct rt_runtime *rt);

/** Memory and load of one device that resident tensors live on. */
struct rt_memory {
	char device[16];   /**< "host", "cuda:N", "sim:N" */
	enum rt_device_kind kind;
	int numa_node;     /**< -1: unknown */
	uint64_t used;     /**< bytes held by resident tensors */
	uint64_t peak;     /**< the most ever held at once */
	uint64_t limit;    /**< --total-mem-limit; 0: none */
	uint64_t free;     /**< the device's free memory now (GPU: cudaMemGetInfo,
			        host: MemAvailable); 0 where unknown */
	uint64_t total;    /**< the device's memory; 0 where unknown */
	uint64_t tensors;  /**< resident tensors */
	uint64_t refused;  /**< allocations refused by the limits */
	uint64_t sessions; /**< open sessions whose default device this is */
	uint64_t ops;      /**< operations run on it (moves not counted) */
	uint64_t ops_failed;
	uint64_t running;  /**< operations and moves on it now */
	uint64_t waiting;  /**< operations and moves waiting for one of its contexts */
	uint64_t moves_in, moves_out;            /**< moves to / from it */
	uint64_t move_bytes_in, move_bytes_out;
};

/**
 * Memory and load of every device the runtime serves, in index order.
 * Thread safe; quick (a lock, and a cudaMemGetInfo per GPU or a read of
 * /proc/meminfo).
 * @return the number of devices filled, at most max.
 */
int rt_memory(struct rt_runtime *rt, struct rt_memory *out, int max);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_RUNTIME_H */
