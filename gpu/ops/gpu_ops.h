/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_OPS_H
#define DJINN_GPU_OPS_H

/**
 * @file
 * The tensor operations of ops.h on a CUDA GPU: kernels for elementwise,
 * reductions and normalisations, cuBLAS for matmul and linear (fp32, fp16
 * and bf16 with fp32 accumulation; int32/int64 through an integer kernel).
 * Shapes, dtypes and attributes are validated by tn_op_infer(): results and
 * error messages match the CPU reference.
 *
 * A context owns one CUDA stream, one cuBLAS handle, a stream-ordered memory
 * pool and scratch space. Work is only enqueued: nothing waits for the GPU
 * except djg_ops_sync() and the copy helpers. Use a context from one
 * thread at a time (create one per worker thread). A build without CUDA
 * compiles these functions too: they return -DJ_ENOGPU.
 *
 * Typical server use:
 *   djg_ops_create(0, &g);
 *   djg_ops_execute(g, tn_op_find("matmul"), in, 2, &attrs, &out, err, n);
 *   ... more operations on out, all ordered on the context's stream ...
 *   djg_ops_sync(g); then read or send out.data; djg_ops_free(g, out.data);
 */

#include <stddef.h>

#include "tensor/ops.h"
#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Context for one thread's GPU operations (opaque). */
struct djg_ops;

/** CUDA devices this build can use: 0 without CUDA support or a GPU. */
int djg_ops_device_count(void);

/**
 * Free and total memory of CUDA device @p device (cudaMemGetInfo; memory
 * that the contexts' pools keep for reuse counts as used). Any thread.
 * Returns 0, -DJ_ENOGPU (no CUDA build or no such device) or -EIO.
 */
int djg_ops_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes);

/**
 * Create a context on CUDA device @p device (0-based). On success *ops is
 * owned by the caller and released with djg_ops_destroy().
 * Returns 0, -DJ_ENOGPU (no CUDA build or no such device), -ENOMEM or -EIO.
 */
int djg_ops_create(int device, struct djg_ops **ops);

/** Wait for the context's work, then release it. NULL is accepted. */
void djg_ops_destroy(struct djg_ops *ops);

/**
 * Enqueue operation @p op on GPU tensors. Every input and @p out must be
 * DJ_MEM_GPU memory of this context's device; @p out->desc must equal what
 * tn_op_infer() gives, and @p out->data (owned by the caller) must hold
 * dj_tensor_nbytes(&out->desc) bytes and not overlap any input, except that
 * an in-place op (op->inplace: slice_write) may be given its input 0 itself
 * as @p out (the slice is then written into it; any other output receives a
 * copy of input 0 with the slice written).
 * Returns once the work is enqueued; inputs must stay allocated until it ran
 * (djg_ops_sync(), or later work on the same stream). embedding alone waits
 * for the stream before it returns: its index check is read back.
 * Errors: -DJ_EUNKNOWN_OP, -DJ_ESHAPE, -DJ_EDTYPE, -EINVAL with a message in
 * @p err (may be NULL); -ERANGE for an embedding index outside the weight's
 * rows, named as the CPU reference names it (never read out of bounds);
 * -ENOMEM; -EIO when CUDA or cuBLAS fails (logged; a sticky CUDA error
 * leaves the context unusable).
 */
int djg_ops_run(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err,
		   size_t errlen);

/**
 * As djg_ops_run(), but infer the output and allocate it from the
 * context's pool, as the server does. On success @p out describes the result
 * and the caller owns out->data: release it with djg_ops_free(). On
 * failure nothing is allocated.
 */
int djg_ops_execute(struct djg_ops *ops, const struct tn_op *op,
		       const struct dj_tensor *in, int n_in, const struct tn_op_attrs *attrs,
		       struct dj_tensor *out, char *err, size_t errlen);

/**
 * Device memory from the context's stream-ordered pool (cached: no CUDA
 * allocation once the pool is warm). Usable at once by work on the
 * context's stream, elsewhere after djg_ops_sync(). 0 bytes gives NULL.
 * Returns 0, -ENOMEM or -EIO.
 */
int djg_ops_alloc(struct djg_ops *ops, size_t bytes, void **ptr);
/**
 * As djg_ops_alloc(), from @p owner's pool (a context of the same device)
 * but ordered on @p ops' stream: a batch that runs on one context takes
 * its outputs from the device's shared pool without waiting for either
 * stream. Usable at once by work on @p ops' stream, elsewhere after
 * djg_ops_sync(ops). Returns 0, -EINVAL (other device), -ENOMEM or -EIO.
 */
int djg_ops_alloc_from(struct djg_ops *ops, struct djg_ops *owner, size_t bytes, void **ptr);
/**
 * Enqueue the zeroing of @p bytes at @p ptr (device memory of this
 * context's device) on the context's stream, ordered before any later work
 * on it; elsewhere visible after djg_ops_sync(). The pool reuses memory
 * across tensors: what a tenant may read must be zeroed first.
 * Returns 0, -EINVAL or -EIO.
 */
int djg_ops_zero(struct djg_ops *ops, void *ptr, size_t bytes);
/** Return memory of djg_ops_alloc() once the stream's work on it ran. */
void djg_ops_free(struct djg_ops *ops, void *ptr);

/** Copy host -> device, ordered after earlier work; returns when done. */
int djg_ops_copy_in(struct djg_ops *ops, void *dst_gpu, const void *src_host,
		       size_t bytes);
/** Copy device -> host, ordered after earlier work; returns when done. */
int djg_ops_copy_out(struct djg_ops *ops, void *dst_host, const void *src_gpu,
			size_t bytes);

/** Wait until everything enqueued on the context has run. 0 or -EIO. */
int djg_ops_sync(struct djg_ops *ops);

/** The context's cudaStream_t, for callers that order their own CUDA work
 *  with it (the data plane's receive, a benchmark's events). */
void *djg_ops_stream(struct djg_ops *ops);

/* ---- several devices: moves between them (gpu/ops/move.c) ------------- */

/**
 * PCI address of CUDA device @p device ("0000:17:00.0", lowercase, as
 * sysfs names it) into @p pci (at least 16 bytes).
 * Returns 0, -DJ_ENOGPU (no CUDA build or no such device) or -EINVAL.
 */
int djg_ops_device_pci(int device, char *pci, size_t len);

/**
 * Whether device @p from can reach device @p to's memory directly: 1 for
 * the same device or where cudaDeviceCanAccessPeer says so, else 0;
 * -DJ_ENOGPU for a device that does not exist.
 */
int djg_ops_peer_access(int from, int to);

/** How a move between two devices of one server goes. */
enum djg_move_path {
	DJG_MOVE_D2D = 0, /**< same physical device: cudaMemcpyAsync device to device */
	DJG_MOVE_PEER,    /**< cudaMemcpyPeerAsync (NVLink / PCIe peer-to-peer) */
	DJG_MOVE_STAGED,  /**< chunks through pinned host memory (no peer access) */
};

/** "d2d", "peer", "staged". Static. */
const char *djg_move_path_name(enum djg_move_path path);

/** Most slots of a staging ring (events per context). */
#define DJG_STAGE_MAX_SLOTS 8

/**
 * A staging ring for DJG_MOVE_STAGED: @p slots buffers of @p slot_bytes
 * each, back to back at @p host, host memory the caller owns (put it on
 * the NUMA node of the device that reads it) and registered with
 * djg_ops_host_register() for a GPU move.
 */
struct djg_stage_ring {
	void *host;
	size_t slot_bytes;
	unsigned int slots; /**< 2 .. DJG_STAGE_MAX_SLOTS */
};

/**
 * The staged move as a pipeline over any pair of devices: chunk k is
 * copied out of the source into slot k % slots while chunk k - 1 is copied
 * from its slot into the destination; a slot is refilled once the copy
 * that read it finished. CUDA implements the four steps with streams and
 * events (djg_ops_move), the runtime's simulated devices with memcpy, so
 * both run this very loop.
 */
struct djg_stage_ops {
	/** Start copying @p n source bytes at @p src into slot @p slot (@p host). */
	int (*out)(void *ctx, unsigned int slot, void *host, const void *src, size_t n);
	/** Start copying slot @p slot into @p dst once its out() landed. */
	int (*in)(void *ctx, unsigned int slot, void *dst, const void *host, size_t n);
	/** Wait until slot @p slot's last in() has read its buffer. */
	int (*wait)(void *ctx, unsigned int slot);
	/** Wait until everything started has landed. */
	int (*finish)(void *ctx);
};

/**
 * Run the staged pipeline: @p bytes from @p src to @p dst through @p ring.
 * *chunks (may be NULL) receives the number of chunks.
 * Returns 0, -EINVAL (a ring of fewer than 2 or more than
 * DJG_STAGE_MAX_SLOTS slots, or empty slots), or the first error of a step
 * (every started step is finished first).
 */
int djg_stage_run(const struct djg_stage_ops *ops, void *ctx, const struct djg_stage_ring *ring,
		  void *dst, const void *src, size_t bytes, uint64_t *chunks);

/**
 * Pin host memory for staged moves (cudaHostRegister, portable: every
 * device may copy from and to it asynchronously). 0, -DJ_ENOGPU, -EIO.
 */
int djg_ops_host_register(void *ptr, size_t bytes);
/** Undo djg_ops_host_register(). */
void djg_ops_host_unregister(void *ptr);

/**
 * Copy @p bytes at @p src (memory of @p from's device) to @p dst (memory of
 * @p to's device) along @p path, and wait until they landed. Both contexts
 * are used by the calling thread for the call (check both out). D2D and
 * PEER run on @p to's stream (PEER enables peer access between the two
 * devices the first time); STAGED copies out on @p from's stream and in on
 * @p to's, chunk by chunk through @p ring (required then). *chunks (may be
 * NULL): chunks staged (0 for the direct paths).
 * Returns 0, -EINVAL, -ENOTSUP (PEER between devices without peer access;
 * D2D between two physical devices), -DJ_ENOGPU, -EIO.
 */
int djg_ops_move(struct djg_ops *from, struct djg_ops *to, void *dst, const void *src,
		 size_t bytes, enum djg_move_path path, const struct djg_stage_ring *ring,
		 uint64_t *chunks);

/**
 * Let device @p peer read and write the memory this context's pool hands
 * out (cudaMemPoolSetAccess: stream-ordered allocations ignore
 * cudaDeviceEnablePeerAccess), so that peer copies between the two GPUs
 * run on their peer link. Returns 0 (also for the context's own device),
 * -ENOTSUP where @p peer cannot reach this device, -DJ_ENOGPU, -EIO.
 */
int djg_ops_pool_share(struct djg_ops *ops, int peer);

/** The CUDA device of a context (-1 for NULL). */
int djg_ops_device(const struct djg_ops *ops);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GPU_OPS_H */
