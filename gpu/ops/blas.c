/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * matmul and linear. Float types go to cuBLAS (tensor cores for fp16/bf16,
 * fp32 accumulation; fp32 stays true fp32, no TF32, so results match the
 * reference as PyTorch's defaults do). Integers go to the integer kernel.
 *
 * cuBLAS is column-major: a row-major [m, k] matrix is its transpose, so
 * C = A.B (row-major) is computed as C^T = B^T.A^T, i.e. cuBLAS gets B first.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "djinn/common.h"
#include "gpu_ops_internal.h"

/* One product family: C[batch][m][n] = A[m][k] . B, where B is [k][n]
 * (matmul) or a weight [n][k] used transposed (linear). */
struct gemm {
	enum dj_dtype dtype;
	int64_t m, n, k;
	int b_is_weight;
	const char *a, *b; /* device bytes */
	char *c;
	size_t c_bytes;    /* the whole output, every batch */
};

static int blas_type(enum dj_dtype dtype, cudaDataType *type)
{
	switch (dtype) {
	case DJ_DTYPE_FLOAT32: *type = CUDA_R_32F; return 0;
	case DJ_DTYPE_FLOAT16: *type = CUDA_R_16F; return 0;
	case DJ_DTYPE_BFLOAT16: *type = CUDA_R_16BF; return 0;
	default: return -DJ_EDTYPE;
	}
}

static int fits_int(int64_t v)
{
	return v <= INT32_MAX;
}

/*
 * One product goes through cublasGemmEx, exactly as a direct caller would
 * (the strided-batched entry points pick other, sometimes slower, kernels
 * for small single products); the _64 forms only when a size needs them.
 */
static int float_gemm(struct djg_ops *ops, const struct gemm *g, cudaDataType type,
		      int64_t batch, int64_t stride_a, int64_t stride_b)
{
	static const float one = 1.0f, zero = 0.0f;
	cublasOperation_t op_b = g->b_is_weight ? CUBLAS_OP_T : CUBLAS_OP_N;
	int64_t ldb = g->b_is_weight ? g->k : g->n;
	int small = fits_int(g->m) && fits_int(g->n) && fits_int(g->k) && fits_int(batch);

	if (batch == 1 && small)
		return djg_ops_blas_rc(cublasGemmEx(ops->blas, op_b, CUBLAS_OP_N, (int)g->n, (int)g->m,
						    (int)g->k, &one, g->b, type, (int)ldb, g->a, type,
						    (int)g->k, &zero, g->c, type, (int)g->n,
						    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
				       "cublasGemmEx");
	if (small)
		return djg_ops_blas_rc(
			cublasGemmStridedBatchedEx(ops->blas, op_b, CUBLAS_OP_N, (int)g->n, (int)g->m,
						   (int)g->k, &one, g->b, type, (int)ldb, stride_b,
						   g->a, type, (int)g->k, stride_a, &zero, g->c, type,
						   (int)g->n, g->m * g->n, (int)batch,
						   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
			"cublasGemmStridedBatchedEx");
	return djg_ops_blas_rc(
		cublasGemmStridedBatchedEx_64(ops->blas, op_b, CUBLAS_OP_N, g->n, g->m, g->k, &one,
					      g->b, type, ldb, stride_b, g->a, type, g->k, stride_a,
					      &zero, g->c, type, g->n, g->m * g->n, batch,
					      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
		"cublasGemmStridedBatchedEx_64");
}

/* @p batch products; A and B advance by stride_a / stride_b elements
 * (0 = shared), C by m*n. */
static int gemm_strided(struct djg_ops *ops, const struct gemm *g, int64_t batch,
			int64_t stride_a, int64_t stride_b)
{
	cudaDataType type;

	if (blas_type(g->dtype, &type) != 0) {
		struct djg_k_int_gemm ig = {
			.batch = batch, .M = g->m, .N = g->n, .K = g->k, .sak = g->k,
			.sbk = g->b_is_weight ? 1 : g->n, .sbn = g->b_is_weight ? g->k : 1,
			.batch_a = stride_a, .batch_b = stride_b,
		};
		return djg_ops_cuda_rc(djg_k_int_gemm(g->dtype, g->a, g->b, g->c, &ig, ops->stream),
				       "integer gemm kernel");
	}
	return float_gemm(ops, g, type, batch, stride_a, stride_b);
}

/*
 * Batch dimensions that survive collapsing: the last one goes to one strided
 * batched call, the ones before it are looped over here (rare: only batch
 * dims broadcast in different ways need it).
 */
static int gemm_batched(struct djg_ops *ops, const struct gemm *g,
			const struct djg_k_walk *batch)
{
	size_t esize = dj_dtype_size(g->dtype);
	int last = batch->ndim - 1;
	int64_t outer = 1, count = batch->shape[last];

	for (int d = 0; d < last; d++)
		outer *= batch->shape[d];
	for (int64_t i = 0; i < outer; i++) {
		struct gemm part = *g;
		int64_t rest = i, off_a = 0, off_b = 0;
		int rc;

		for (int d = last - 1; d >= 0; d--) {
			int64_t idx = rest % batch->shape[d];

			rest /= batch->shape[d];
			off_a += idx * batch->stride[0][d];
			off_b += idx * batch->stride[1][d];
		}
		part.a += off_a * esize;
		part.b += off_b * esize;
		part.c += i * count * g->m * g->n * esize;
		rc = gemm_strided(ops, &part, count, batch->stride[0][last], batch->stride[1][last]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int gemm_run(struct djg_ops *ops, struct gemm *g, struct djg_k_walk *batch)
{
	djg_ops_walk_collapse(batch);
	if (g->m == 0 || g->n == 0)
		return 0;
	if (g->k == 0) /* empty sums: zero bits are 0 in every dtype */
		return djg_ops_cuda_rc(cudaMemsetAsync(g->c, 0, g->c_bytes, ops->stream),
				       "cudaMemsetAsync");
	if (batch->ndim == 0)
		return gemm_strided(ops, g, 1, 0, 0);
	/* A batch of A's against one shared B is one taller product. */
	if (batch->ndim == 1 && batch->stride[1][0] == 0 && batch->stride[0][0] == g->m * g->k) {
		g->m *= batch->shape[0];
		return gemm_strided(ops, g, 1, 0, 0);
	}
	return gemm_batched(ops, g, batch);
}

int djg_ops_matmul(struct djg_ops *ops, const struct dj_tensor *a,
		   const struct dj_tensor *b, struct dj_tensor *out)
{
	struct tn_op_matmul_plan plan;
	struct djg_k_walk batch = {0};
	struct gemm g;
	int rc = tn_op_matmul_plan(&a->desc, &b->desc, &plan);

	if (rc != 0)
		return rc;
	g = (struct gemm){.dtype = out->desc.dtype, .m = plan.m, .n = plan.n, .k = plan.k,
			  .a = a->data, .b = b->data, .c = out->data,
			  .c_bytes = dj_tensor_nbytes(&out->desc)};
	batch.ndim = plan.batch_ndim;
	memcpy(batch.shape, plan.batch_shape, sizeof(batch.shape));
	memcpy(batch.stride[0], plan.a_batch_stride, sizeof(batch.stride[0]));
	memcpy(batch.stride[1], plan.b_batch_stride, sizeof(batch.stride[1]));
	return gemm_run(ops, &g, &batch);
}

/* ---- linear with the bias fused into the product (cuBLASLt) ---- */

int djg_ops_blas_open(struct djg_ops *ops)
{
	return djg_ops_blas_rc(cublasLtCreate(&ops->lt), "cublasLtCreate");
}

static void plan_release(struct linear_plan *p)
{
	if (p->op)
		cublasLtMatmulDescDestroy(p->op);
	if (p->w)
		cublasLtMatrixLayoutDestroy(p->w);
	if (p->x)
		cublasLtMatrixLayoutDestroy(p->x);
	if (p->y)
		cublasLtMatrixLayoutDestroy(p->y);
	memset(p, 0, sizeof(*p));
}

void djg_ops_blas_close(struct djg_ops *ops)
{
	for (int i = 0; i < LINEAR_PLANS; i++)
		plan_release(&ops->plans[i]);
	if (ops->lt)
		cublasLtDestroy(ops->lt);
}

static int set_op_attr(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr,
		       const void *value, size_t size)
{
	return djg_ops_blas_rc(cublasLtMatmulDescSetAttribute(op, attr, value, size),
			       "cublasLtMatmulDescSetAttribute");
}

/* A packed column-major rows x cols matrix. */
static int layout(cublasLtMatrixLayout_t *l, cudaDataType type, int64_t rows, int64_t cols)
{
	return djg_ops_blas_rc(cublasLtMatrixLayoutCreate(l, type, rows, cols, rows),
			       "cublasLtMatrixLayoutCreate");
}

/* Column-major view as in gemm_strided: y^T[n, m] = W[n, k] . x^T[k, m],
 * the bias running along y^T's rows. */
static int plan_describe(struct linear_plan *p, cudaDataType type, const void *bias)
{
	cublasOperation_t trans = CUBLAS_OP_T, keep = CUBLAS_OP_N;
	cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
	int rc;

	if ((rc = djg_ops_blas_rc(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
				  "cublasLtMatmulDescCreate")) ||
	    (rc = set_op_attr(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans))) ||
	    (rc = set_op_attr(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof(keep))) ||
	    (rc = set_op_attr(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue))) ||
	    (rc = set_op_attr(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias))))
		return rc;
	if ((rc = layout(&p->w, type, p->k, p->n)) || (rc = layout(&p->x, type, p->k, p->m)))
		return rc;
	return layout(&p->y, type, p->n, p->m);
}

/* -ENOTSUP when cuBLASLt has no algorithm: the caller falls back. */
static int plan_choose(struct djg_ops *ops, struct linear_plan *p)
{
	cublasLtMatmulPreference_t pref;
	cublasLtMatmulHeuristicResult_t found;
	uint64_t workspace = BLAS_WORKSPACE_BYTES;
	int count = 0, rc;

	rc = djg_ops_blas_rc(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
	if (rc != 0)
		return rc;
	rc = djg_ops_blas_rc(cublasLtMatmulPreferenceSetAttribute(
				     pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
				     sizeof(workspace)),
			     "cublasLtMatmulPreferenceSetAttribute");
	if (rc == 0 && cublasLtMatmulAlgoGetHeuristic(ops->lt, p->op, p->w, p->x, p->y, p->y, pref,
						      1, &found, &count) == CUBLAS_STATUS_SUCCESS &&
	    count > 0)
		p->algo = found.algo;
	else if (rc == 0)
		rc = -ENOTSUP;
	cublasLtMatmulPreferenceDestroy(pref);
	return rc;
}

static struct linear_plan *plan_get(struct djg_ops *ops, const struct gemm *g,
				    cudaDataType type, const void *bias, int *rc)
{
	struct linear_plan *p;

	for (int i = 0; i < LINEAR_PLANS; i++) {
		p = &ops->plans[i];
		if (p->op && p->dtype == (int)g->dtype && p->m == g->m && p->n == g->n &&
		    p->k == g->k)
			return p;
	}
	p = &ops->plans[ops->next_plan++ % LINEAR_PLANS];
	plan_release(p);
	*p = (struct linear_plan){.dtype = g->dtype, .m = g->m, .n = g->n, .k = g->k};
	*rc = plan_describe(p, type, bias);
	if (*rc == 0)
		*rc = plan_choose(ops, p);
	if (*rc != 0) {
		plan_release(p);
		return NULL;
	}
	return p;
}

/* cuBLASLt's default algorithms assume 256-byte aligned operands. */
static int aligned256(const void *p)
{
	return ((uintptr_t)p & 255) == 0;
}

/* 0, -ENOTSUP (no fused path here: use the plain one) or an error. */
static int linear_fused(struct djg_ops *ops, const struct gemm *g, const void *bias)
{
	static const float one = 1.0f, zero = 0.0f;
	struct linear_plan *p;
	cudaDataType type;
	int rc = 0;

	if (blas_type(g->dtype, &type) != 0 || g->m == 0 || g->n == 0 || g->k == 0 ||
	    !aligned256(g->a) || !aligned256(g->b) || !aligned256(g->c) || !aligned256(bias))
		return -ENOTSUP;
	p = plan_get(ops, g, type, bias, &rc);
	if (p == NULL)
		return rc;
	rc = set_op_attr(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
	if (rc != 0)
		return rc;
	return djg_ops_blas_rc(cublasLtMatmul(ops->lt, p->op, &one, g->b, p->w, g->a, p->x, &zero,
					      g->c, p->y, g->c, p->y, &p->algo,
					      ops->blas_workspace, BLAS_WORKSPACE_BYTES,
					      ops->stream),
			       "cublasLtMatmul");
}

int djg_ops_linear(struct djg_ops *ops, const struct dj_tensor *in, int n_in,
		   struct dj_tensor *out)
{
	const struct dj_tensor *x = &in[0], *w = &in[1];
	int64_t k = w->desc.shape[1];
	struct gemm g = {
		.dtype = out->desc.dtype, .n = w->desc.shape[0], .k = k, .b_is_weight = 1,
		.m = k ? dj_tensor_numel(&x->desc) / k : 0, .a = x->data, .b = w->data,
		.c = out->data, .c_bytes = dj_tensor_nbytes(&out->desc),
	};
	struct djg_k_walk no_batch = {0};
	int rc;

	if (k == 0) /* x has no elements to tell the rows: count them from out */
		g.m = g.n ? dj_tensor_numel(&out->desc) / g.n : 0;
	if (n_in == 3) {
		rc = linear_fused(ops, &g, in[2].data);
		if (rc != -ENOTSUP)
			return rc;
	}
	rc = gemm_run(ops, &g, &no_batch);
	if (rc != 0 || n_in < 3)
		return rc;
	return djg_ops_add_broadcast(ops, out, &in[2], out);
}
