/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TENSOR_OPS_INTERNAL_H
#define DJINN_TENSOR_OPS_INTERNAL_H

/* Shared by the operation table, the inference functions and the CPU kernels. */
#include <stdint.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "tensor/ops.h"
#include "tensor_internal.h"

/* Bits of struct tn_op.attr_keys: which JSON attributes an op takes. */
enum {
	ATTR_DIM = 1u << 0,
	ATTR_KEEPDIM = 1u << 1,
	ATTR_DIMS = 1u << 2,
	ATTR_PERM = 1u << 3,
	ATTR_SHAPE = 1u << 4,
	ATTR_NORM_SHAPE = 1u << 5,
	ATTR_EPS = 1u << 6,
	ATTR_START = 1u << 7,
	ATTR_LENGTH = 1u << 8,
	ATTR_IS_CAUSAL = 1u << 9,
	ATTR_SCALE = 1u << 10,
};

#define DTYPE_BIT(t) (1u << (t))
#define DTYPES_FLOAT (DTYPE_BIT(DJ_DTYPE_FLOAT32) | DTYPE_BIT(DJ_DTYPE_FLOAT16) | \
		      DTYPE_BIT(DJ_DTYPE_BFLOAT16))
#define DTYPES_INT (DTYPE_BIT(DJ_DTYPE_INT32) | DTYPE_BIT(DJ_DTYPE_INT64))
#define DTYPES_ALL (DTYPES_FLOAT | DTYPES_INT)

/* Format "<op>: <message>" into err (NULL-safe; op NULL: no prefix, which
 * tn_op_infer() adds for the per-op inference functions); returns rc.
 * common's formatter under the name the operation code knows. */
#define tn_op_fail djc_errf

/* Resolve a (possibly negative) slice start in a dimension of @p size so
 * that [start, start + len) lies inside it: 0 or -DJ_ESHAPE. */
int tn_op_slice_start(int64_t size, int64_t start, int64_t len, int64_t *resolved);

/* Split a shape around dimension dim: outer * size(dim) * inner. */
void tn_op_split_at(const struct dj_tensor_desc *d, int dim, int64_t *outer, int64_t *len,
		 int64_t *inner);

/* Integer element access; int32 results wrap when stored. */
static inline int64_t op_load_i64(const struct dj_tensor *t, int64_t i)
{
	if (t->desc.dtype == DJ_DTYPE_INT64)
		return ((const int64_t *)t->data)[i];
	return ((const int32_t *)t->data)[i];
}

static inline void op_store_i64(struct dj_tensor *t, int64_t i, int64_t v)
{
	if (t->desc.dtype == DJ_DTYPE_INT64)
		((int64_t *)t->data)[i] = v;
	else
		((int32_t *)t->data)[i] = (int32_t)(uint32_t)(uint64_t)v;
}

/* Per-op inference (tn_op_infer() has done the common checks) and CPU kernels. */
#define OP_INFER(name) int tn_infer_##name(const struct dj_tensor_desc *in, int n_in, \
					const struct tn_op_attrs *a, \
					struct dj_tensor_desc *out, char *err, size_t errlen)
#define OP_CPU(name) int tn_cpu_##name(const struct dj_tensor *in, int n_in, \
				    const struct tn_op_attrs *a, struct dj_tensor *out, \
				    char *err, size_t errlen)

OP_INFER(elementwise_binary);
OP_INFER(div);
OP_INFER(elementwise_unary);
OP_INFER(reduce);
OP_INFER(sum);
OP_INFER(softmax);
OP_INFER(layer_norm);
OP_INFER(matmul);
OP_INFER(linear);
OP_INFER(transpose);
OP_INFER(reshape);
OP_INFER(cat);
OP_INFER(embedding);
OP_INFER(narrow);
OP_INFER(sdpa);
OP_INFER(slice_write);
OP_INFER(argmax);
OP_INFER(rms_norm);

OP_CPU(add);
OP_CPU(sub);
OP_CPU(mul);
OP_CPU(div);
OP_CPU(relu);
OP_CPU(sigmoid);
OP_CPU(tanh);
OP_CPU(exp);
OP_CPU(log);
OP_CPU(sqrt);
OP_CPU(gelu);
OP_CPU(silu);
OP_CPU(sum);
OP_CPU(mean);
OP_CPU(softmax);
OP_CPU(layer_norm);
OP_CPU(matmul);
OP_CPU(linear);
OP_CPU(transpose);
OP_CPU(reshape);
OP_CPU(cat);
OP_CPU(embedding);
OP_CPU(narrow);
OP_CPU(sdpa);
OP_CPU(slice_write);
OP_CPU(argmax);
OP_CPU(rms_norm);

/* Copy @p rows rows of @p width bytes from src (rows @p spitch bytes
 * apart) to dst (@p dpitch apart); identical src and dst copy nothing. */
void tn_copy_rows(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
		  int64_t rows);

#endif
