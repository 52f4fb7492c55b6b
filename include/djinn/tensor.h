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


/** Bytes per element of @p dtype; 0 for an invalid dtype. */
size_t dj_dtype_size(enum dj_dtype dtype);
/** "float32", "float16", "bfloat16", "int32", "int64"; "invalid" otherwise. */
const char *dj_dtype_name(enum dj_dtype dtype);
/** Parse a dtype name (also "f32", "f16", "bf16", "i32", "i64"); -EINVAL. */
int dj_dtype_parse(const char *name, enum dj_dtype *dtype);
/** Nonzero for float32, float16 and bfloat16. */
int dj_dtype_is_float(enum dj_dtype dtype);

/**
 * Validate a description: known dtype, 0 <= ndim <= DJ_MAX_DIMS, no negative
 * dimension, and an element count whose byte size fits in int64_t (so every
 * size computation on a valid description is free of overflow).
 * Returns 0, -DJ_EDTYPE or -DJ_ESHAPE.
 */
int dj_tensor_desc_check(const struct dj_tensor_desc *desc);
/** Element count (1 for a scalar). Only meaningful on a checked description. */
int64_t dj_tensor_numel(const struct dj_tensor_desc *desc);
/** Byte size of a checked description. */
size_t dj_tensor_nbytes(const struct dj_tensor_desc *desc);
/** Nonzero when dtype, ndim and every dimension are equal. */
int dj_tensor_desc_equal(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b);
/**
 * Write "[2,3,4]" into @p buf (always NUL-terminated, truncated if short).
 * Returns @p buf so it can be used inside a printf argument list.
 */
char *dj_shape_format(const struct dj_tensor_desc *desc, char *buf, size_t len);

/** Row-major element strides of a contiguous tensor (stride of the last dim is 1). */
void dj_tensor_strides(const struct dj_tensor_desc *desc, int64_t strides[DJ_MAX_DIMS]);

/*
 * 16-bit float conversions. float -> 16 bit rounds to nearest, ties to even;
 * NaN stays NaN (quiet, sign kept), infinities and signed zeros are kept,
 * overflow gives infinity, float16 subnormals are produced and read exactly.
 */
uint16_t dj_float_to_half(float f);
float dj_half_to_float(uint16_t h);
uint16_t dj_float_to_bf16(float f);
float dj_bf16_to_float(uint16_t b);
/** Rounded once from double (no double rounding through float). */
uint16_t dj_double_to_half(double d);
uint16_t dj_double_to_bf16(double d);

/** Free a host tensor allocated by dj_npy_load()
 *  (its data, then data = NULL); NULL-safe. */
void dj_tensor_free_host(struct dj_tensor *t);

/** Element @p i of a host tensor as double (int64 beyond 2^53 rounds). */
double dj_tensor_load_f64(const struct dj_tensor *t, int64_t i);
/** Store @p v into element @p i of a host tensor, rounding to nearest even
 *  for float types; integers truncate toward zero and saturate (NaN -> 0). */
void dj_tensor_store_f64(struct dj_tensor *t, int64_t i, double v);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_TENSOR_H */
