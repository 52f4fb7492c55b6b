/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_OPS_KERNELS_H
#define DJINN_GPU_OPS_KERNELS_H

/*
 * Launchers of the CUDA kernels (the .cu files), callable from the C dispatch
 * in gpu_ops.c. Each one only enqueues work on @p stream and returns a
 * cudaError_t as an int (0 = success); none synchronises. Pointers are device
 * memory, sizes are element counts, every tensor is contiguous row-major.
 * The geometry structs are built by the host side, which has already
 * validated shapes and collapsed redundant dimensions.
 */

#include <stdint.h>

#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Same type as cudaStream_t, without pulling CUDA headers into C callers. */
typedef struct CUstream_st *djg_k_stream_t;

enum djg_k_unary_op {
	DJG_K_RELU,
	DJG_K_SIGMOID,
	DJG_K_TANH,
	DJG_K_EXP,
	DJG_K_LOG,
	DJG_K_SQRT,
	DJG_K_GELU, /* erf form: x/2 * (1 + erf(x/sqrt(2))) */
	DJG_K_SILU,
};

enum djg_k_binary_op {
	DJG_K_ADD,
	DJG_K_SUB,
	DJG_K_MUL,
	DJG_K_DIV,
};

/*
 * Elementwise walk over an output shape; stride[k][d] is input k's element
 * stride along output dimension d (0 where input k is broadcast).
 */
struct djg_k_walk {
	int ndim;
	int64_t shape[DJ_MAX_DIMS];
	int64_t stride[2][DJ_MAX_DIMS];
};

/* y[i] = op(x[i]) for n elements; x may equal y. */
int djg_k_unary(enum djg_k_unary_op op, enum dj_dtype dtype, const void *x, void *y,
		int64_t n, djg_k_stream_t stream);

/*
 * y = a op b with broadcasting described by @p walk. Inputs have dtype
 * @p in_dtype, y has @p out_dtype (they differ only for a division of
 * integers producing float32). y may equal a when a is not broadcast.
 */
int djg_k_binary(enum djg_k_binary_op op, enum dj_dtype in_dtype, enum dj_dtype out_dtype,
		 const void *a, const void *b, void *y, const struct djg_k_walk *walk,
		 djg_k_stream_t stream);

/*
 * Sum (or mean) over the middle axis of x viewed as [outer, len, inner],
 * giving y[outer, inner]. Floats accumulate in double, integers in int64
 * (wrapping). @p workspace holds djg_k_reduce_workspace() bytes.
 */
size_t djg_k_reduce_workspace(int64_t outer, int64_t len, int64_t inner);
int djg_k_reduce(int mean, enum dj_dtype in_dtype, enum dj_dtype out_dtype, const void *x,
		 void *y, int64_t outer, int64_t len, int64_t inner, void *workspace,
		 djg_k_stream_t stream);

/* Softmax over the middle axis of [outer, len, inner]; computed in float. */
int djg_k_softmax(enum dj_dtype dtype, const void *x, void *y, int64_t outer, int64_t len,
		  int64_t inner, djg_k_stream_t stream);

/*
 * Layer normalisation of each of @p rows rows of @p cols elements;
 * weight and bias (cols elements each) may be NULL. With @p rms, rms_norm
 * instead: no centring, y = x / sqrt(mean(x^2) + eps) * weight (bias NULL).
 */
int djg_k_layer_norm(int rms, enum dj_dtype dtype, const void *x, const void *weight,
		     const void *bias, void *y, int64_t rows, int64_t cols, double eps,
		     djg_k_stream_t stream);

/*
 * Index of the largest element along the middle axis of [outer, len, inner]
 * into y[outer, inner] (int64): the first of equal values, NaN above all
 * (the first NaN), as torch.argmax. len >= 1.
 */
int djg_k_argmax(enum dj_dtype dtype, const void *x, int64_t *y, int64_t outer, int64_t len,
		 int64_t inner, djg_k_stream_t stream);

/*
 * y[r] = weight[idx[r]] for n rows of row_bytes bytes. An index outside
 * [0, rows) is never read: its output row is zeroed and the lowest such
 * position is recorded with an atomicMin into *bad (device memory, set to
 * UINT64_MAX by the caller beforehand). @p index_dtype: int32 or int64.
 */
int djg_k_embedding(enum dj_dtype index_dtype, const void *idx, const void *weight, void *y,
		    int64_t n, int64_t rows, size_t row_bytes, unsigned long long *bad,
		    djg_k_stream_t stream);

/*
 * Fused scaled_dot_product_attention (flash-style, online softmax, no
 * L x S matrix in memory): y[b][i] = softmax(scale * q[b][i].k[b]^T
 * (+ causal mask)) . v[b], computed in float. Batch b's operands start at
 * the element offsets given by the strides (0 where broadcast); y is
 * contiguous [batch, L, Ev]. Long key ranges with few query rows are split
 * across blocks (flash-decoding): the partials go to @p workspace
 * (djg_k_attention_workspace() bytes) and are merged by a second kernel.
 */
struct djg_k_attention {
	int64_t L, S, E, Ev;
	int64_t batch;
	int batch_ndim;
	int64_t batch_shape[DJ_MAX_DIMS];
	int64_t q_stride[DJ_MAX_DIMS], k_stride[DJ_MAX_DIMS], v_stride[DJ_MAX_DIMS];
	float scale;
	int causal;
};
size_t djg_k_attention_workspace(const struct djg_k_attention *g);
int djg_k_attention(enum dj_dtype dtype, const void *q, const void *k, const void *v, void *y,
		    const struct djg_k_attention *g, void *workspace, djg_k_stream_t stream);

/*
 * Gather copy: y walks walk->shape in row-major order, reading x at
 * sum(index[d] * walk->stride[0][d]). Element size 1, 2, 4 or 8 bytes.
 */
int djg_k_permute(size_t elem_size, const void *x, void *y, const struct djg_k_walk *walk,
		  djg_k_stream_t stream);

/*
 * Integer matrix products (cuBLAS has none for int32/int64):
 * C[b][m][n] = sum_k A[b][m*sak + k] * B[b][k*sbk + n*sbn], accumulated in
 * int64 and wrapped to the dtype. Batch b reads A at b*batch_a, B at
 * b*batch_b (0 to broadcast), writes C at b*M*N.
 */
struct djg_k_int_gemm {
	int64_t batch, M, N, K;
	int64_t sak;              /* A's row stride */
	int64_t sbk, sbn;         /* B's strides along k and n */
	int64_t batch_a, batch_b; /* element offsets between batches */
};
int djg_k_int_gemm(enum dj_dtype dtype, const void *a, const void *b, void *c,
		   const struct djg_k_int_gemm *g, djg_k_stream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GPU_OPS_KERNELS_H */
