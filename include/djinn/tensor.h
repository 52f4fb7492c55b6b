/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TENSOR_H
#define DJINN_TENSOR_H

/**
 * @file
 * Tensor descriptions shared by every layer: dtype, shape, and where the bytes
 * live. Tensors are contiguous and row-major, up to DJ_MAX_DIMS dimensions.
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DJ_MAX_DIMS 8

/** Element types. The numeric values travel on the wire: never renumber. */
enum dj_dtype {
	DJ_DTYPE_FLOAT32 = 0,
	DJ_DTYPE_FLOAT16 = 1,
	DJ_DTYPE_BFLOAT16 = 2,
	DJ_DTYPE_INT32 = 3,
	DJ_DTYPE_INT64 = 4,
	DJ_DTYPE_COUNT
};

/** Where a tensor's bytes are. */
enum dj_mem_kind {
	DJ_MEM_HOST = 0, /**< ordinary host memory */
	DJ_MEM_GPU = 1,  /**< GPU device memory (not CPU-addressable) */
};

/** Shape and type, without storage. */
struct dj_tensor_desc {
	enum dj_dtype dtype;
	int ndim;                     /**< 0 (a scalar) to DJ_MAX_DIMS */
	int64_t shape[DJ_MAX_DIMS];
};

/** A tensor: description plus a borrowed pointer to its bytes. */
struct dj_tensor {
	struct dj_tensor_desc desc;
	void *data;            /**< not owned by this struct */
	enum dj_mem_kind mem;
};

#ifdef __cplusplus
}
#endif

#endif /* DJINN_TENSOR_H */
