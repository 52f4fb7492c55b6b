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

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GPU_OPS_H */
