/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_OPS_INTERNAL_H
#define DJINN_GPU_OPS_INTERNAL_H

/* Shared between the dispatch (gpu_ops.c) and the cuBLAS paths (blas.c). */

/* cublasLt.h has a declaration without a prototype. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <cublasLt.h>
#pragma GCC diagnostic pop
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stdbool.h>

#include "gpu/ops/gpu_ops.h"
#include "kernels.h"

#define GPU_OPS_LOG "gpu_ops"

/* cuBLAS on Hopper wants 32 MiB of workspace for its best kernels. */
#define BLAS_WORKSPACE_BYTES (32u << 20)

/* cuBLASLt plans of linear with a fused bias, kept per shape: choosing an
 * algorithm costs tens of microseconds, too much for every request. */
#define LINEAR_PLANS 8

struct linear_plan {
	cublasLtMatmulDesc_t op; /* NULL: unused slot */
	int dtype;
	int64_t m, n, k;
	cublasLtMatrixLayout_t w, x, y;
	cublasLtMatmulAlgo_t algo;
};

struct djg_ops {
	int device;
	cudaStream_t stream;
	cublasHandle_t blas;
	cudaMemPool_t pool;       /* outputs and scratch; keeps freed memory */
	void *blas_workspace;     /* given to cuBLAS so it never allocates */
	void *scratch;            /* reduction partials, grown on demand */
	size_t scratch_size;
	cublasLtHandle_t lt;      /* linear with a fused bias */
	/* embedding's index check: the lowest bad position (device word), and
	 * pinned host words the position and the bad index are read into */
	unsigned long long *bad_index;
	long long *bad_host;
	struct linear_plan plans[LINEAR_PLANS];
	unsigned next_plan;       /* round-robin replacement */
	/* Staged moves (move.c): this context as the source records
	 * move_out[slot], as the destination move_in[slot]; made on first use. */
	bool move_events;
	cudaEvent_t move_out[DJG_STAGE_MAX_SLOTS], move_in[DJG_STAGE_MAX_SLOTS];
};

/* Destroy the events of staged moves (move.c), device set. */
void djg_ops_move_fini(struct djg_ops *ops);

/* Map a CUDA / cuBLAS failure to an errno value, logging what failed. */
int djg_ops_cuda_rc(int cuda_error, const char *what);
int djg_ops_blas_rc(cublasStatus_t status, const char *what);

/* Drop size-1 dimensions and merge neighbours that every input walks
 * contiguously, so the kernels index as few dimensions as possible. */
void djg_ops_walk_collapse(struct djg_k_walk *walk);

/* matmul and linear (blas.c). The inputs are already validated. */
int djg_ops_blas_open(struct djg_ops *ops);
void djg_ops_blas_close(struct djg_ops *ops);
int djg_ops_matmul(struct djg_ops *ops, const struct dj_tensor *a,
		   const struct dj_tensor *b, struct dj_tensor *out);
int djg_ops_linear(struct djg_ops *ops, const struct dj_tensor *in, int n_in,
		   struct dj_tensor *out);

/* out = a + b over out's shape, with b broadcast (used for linear's bias). */
int djg_ops_add_broadcast(struct djg_ops *ops, const struct dj_tensor *a,
			  const struct dj_tensor *b, struct dj_tensor *out);

#endif /* DJINN_GPU_OPS_INTERNAL_H */
