/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GPU operations: context life cycle, validation through tn_op_infer(), and
 * the dispatch from an operation to its kernels. Geometry (broadcast strides,
 * axis splits, permutations) comes from ops.h so that the GPU and the CPU
 * reference can never disagree on shapes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu_ops_internal.h"

int djg_ops_cuda_rc(int cuda_error, const char *what)
{
	if (cuda_error == cudaSuccess)
		return 0;
	DJC_LOG(DJ_LOG_ERR, GPU_OPS_LOG, "%s: %s", what,
	       cudaGetErrorString((cudaError_t)cuda_error));
	switch (cuda_error) {
	case cudaErrorMemoryAllocation: return -ENOMEM;
	case cudaErrorInvalidValue: return -EINVAL;
	case cudaErrorNoDevice:
	case cudaErrorInvalidDevice:
	case cudaErrorInsufficientDriver: return -DJ_ENOGPU;
	default: return -EIO;
	}
}

int djg_ops_blas_rc(cublasStatus_t status, const char *what)
{
	if (status == CUBLAS_STATUS_SUCCESS)
		return 0;
	DJC_LOG(DJ_LOG_ERR, GPU_OPS_LOG, "%s: %s", what, cublasGetStatusString(status));
	switch (status) {
	case CUBLAS_STATUS_ALLOC_FAILED: return -ENOMEM;
	case CUBLAS_STATUS_INVALID_VALUE: return -EINVAL;
	case CUBLAS_STATUS_NOT_SUPPORTED: return -ENOTSUP;
	default: return -EIO;
	}
}

/* The runtime's current device is per thread: every entry point sets it. */
static int use_device(struct djg_ops *ops)
{
	return djg_ops_cuda_rc(cudaSetDevice(ops->device), "cudaSetDevice");
}

int djg_ops_device_count(void)
{
	int n = 0;

	if (cudaGetDeviceCount(&n) != cudaSuccess) {
		cudaGetLastError(); /* "no device" must not stick to later calls */
		return 0;
	}
	return n;
}

int djg_ops_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes)
{
	size_t f = 0, t = 0;
	int rc;

	if (device < 0 || device >= djg_ops_device_count())
		return -DJ_ENOGPU;
	rc = djg_ops_cuda_rc(cudaSetDevice(device), "cudaSetDevice");
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
	*free_bytes = f;
	*total_bytes = t;
	return rc;
}

static int context_open(struct djg_ops *ops)
{
	struct cudaMemPoolProps props = {
		.allocType = cudaMemAllocationTypePinned,
		.location = {.type = cudaMemLocationTypeDevice, .id = ops->device},
	};
	uint64_t keep_all = UINT64_MAX;
	int rc;

	if ((rc = use_device(ops)) ||
	    (rc = djg_ops_cuda_rc(cudaStreamCreateWithFlags(&ops->stream, cudaStreamNonBlocking),
				  "cudaStreamCreate")) ||
	    (rc = djg_ops_cuda_rc(cudaMemPoolCreate(&ops->pool, &props), "cudaMemPoolCreate")) ||
	    (rc = djg_ops_cuda_rc(cudaMemPoolSetAttribute(ops->pool,
							  cudaMemPoolAttrReleaseThreshold,
							  &keep_all),
				  "cudaMemPoolSetAttribute")) ||
	    (rc = djg_ops_cuda_rc(cudaMalloc(&ops->blas_workspace, BLAS_WORKSPACE_BYTES),
				  "cudaMalloc(cuBLAS workspace)")) ||
	    (rc = djg_ops_blas_rc(cublasCreate(&ops->blas), "cublasCreate")) ||
	    (rc = djg_ops_blas_rc(cublasSetStream(ops->blas, ops->stream), "cublasSetStream")) ||
	    (rc = djg_ops_blas_rc(cublasSetWorkspace(ops->blas, ops->blas_workspace,
						     BLAS_WORKSPACE_BYTES),
				  "cublasSetWorkspace")) ||
	    (rc = djg_ops_cuda_rc(cudaMalloc((void **)&ops->bad_index, sizeof(*ops->bad_index)),
				  "cudaMalloc(embedding check)")) ||
	    (rc = djg_ops_cuda_rc(cudaMallocHost((void **)&ops->bad_host,
						 2 * sizeof(*ops->bad_host)),
				  "cudaMallocHost(embedding check)")))
		return rc;
	return djg_ops_blas_open(ops);
}

int djg_ops_create(int device, struct djg_ops **ops)
{
	struct djg_ops *g;
	int rc;

	if (ops == NULL)
		return -EINVAL;
	*ops = NULL;
	if (device < 0 || device >= djg_ops_device_count())
		return -DJ_ENOGPU;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return -ENOMEM;
	g->device = device;
	rc = context_open(g);
	if (rc != 0) {
		djg_ops_destroy(g);
		return rc;
	}
	*ops = g;
	return 0;
}

void djg_ops_destroy(struct djg_ops *ops)
{
	if (ops == NULL)
		return;
	(void)use_device(ops); /* tear down whatever was set up, regardless */
	if (ops->stream)
		cudaStreamSynchronize(ops->stream);
	djg_ops_blas_close(ops);
	if (ops->blas)
		cublasDestroy(ops->blas);
	if (ops->scratch)
		cudaFreeAsync(ops->scratch, ops->stream);
	if (ops->stream) {
		cudaStreamSynchronize(ops->stream);
		cudaStreamDestroy(ops->stream);
	}
	djg_ops_move_fini(ops);
	cudaFree(ops->blas_workspace);
	cudaFree(ops->bad_index);
	cudaFreeHost(ops->bad_host);
	/* Outstanding allocations keep the pool alive until they are freed. */
	if (ops->pool)
		cudaMemPoolDestroy(ops->pool);
	free(ops);
}

void *djg_ops_stream(struct djg_ops *ops)
{
	return ops ? ops->stream : NULL;
}

int djg_ops_alloc_from(struct djg_ops *ops, struct djg_ops *owner, size_t bytes, void **ptr)
{
	int rc;

	if (ops == NULL || owner == NULL || ptr == NULL || owner->device != ops->device)
		return -EINVAL;
	*ptr = NULL;
	if (bytes == 0)
		return 0;
	rc = use_device(ops);
	return rc ? rc : djg_ops_cuda_rc(cudaMallocFromPoolAsync(ptr, bytes, owner->pool,
								 ops->stream),
					 "cudaMallocFromPoolAsync");
}

int djg_ops_alloc(struct djg_ops *ops, size_t bytes, void **ptr)
{
	return djg_ops_alloc_from(ops, ops, bytes, ptr);
}

int djg_ops_zero(struct djg_ops *ops, void *ptr, size_t bytes)
{
	int rc;

	if (ops == NULL || (bytes > 0 && ptr == NULL))
		return -EINVAL;
	if (bytes == 0)
		return 0;
	rc = use_device(ops);
	return rc ? rc : djg_ops_cuda_rc(cudaMemsetAsync(ptr, 0, bytes, ops->stream),
					 "cudaMemsetAsync");
}

void djg_ops_free(struct djg_ops *ops, void *ptr)
{
	if (ops == NULL || ptr == NULL || use_device(ops) != 0)
		return;
	djg_ops_cuda_rc(cudaFreeAsync(ptr, ops->stream), "cudaFreeAsync");
}

int djg_ops_sync(struct djg_ops *ops)
{
	int rc;

	if (ops == NULL)
		return -EINVAL;
	rc = use_device(ops);
	if (rc != 0)
		return rc;
	return djg_ops_cuda_rc(cudaStreamSynchronize(ops->stream), "cudaStreamSynchronize");
}

static int copy_sync(struct djg_ops *ops, void *dst, const void *src, size_t bytes,
		     enum cudaMemcpyKind kind)
{
	int rc;

	if (ops == NULL || (bytes && (dst == NULL || src == NULL)))
		return -EINVAL;
	if (bytes == 0)
		return 0;
	rc = use_device(ops);
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaMemcpyAsync(dst, src, bytes, kind, ops->stream),
				     "cudaMemcpyAsync");
	return rc ? rc : djg_ops_sync(ops);
}

int djg_ops_copy_in(struct djg_ops *ops, void *dst_gpu, const void *src_host,
		       size_t bytes)
{
	return copy_sync(ops, dst_gpu, src_host, bytes, cudaMemcpyHostToDevice);
}

int djg_ops_copy_out(struct djg_ops *ops, void *dst_host, const void *src_gpu,
			size_t bytes)
{
	return copy_sync(ops, dst_host, src_gpu, bytes, cudaMemcpyDeviceToHost);
}

/* ---- geometry ---- */

static void walk_remove(struct djg_k_walk *w, int d)
{
	for (int i = d; i < w->ndim - 1; i++) {
		w->shape[i] = w->shape[i + 1];
		w->stride[0][i] = w->stride[0][i + 1];
		w->stride[1][i] = w->stride[1][i + 1];
	}
	w->ndim--;
}

void djg_ops_walk_collapse(struct djg_k_walk *w)
{
	for (int d = w->ndim - 1; d >= 0; d--)
		if (w->shape[d] == 1)
			walk_remove(w, d);
	for (int d = w->ndim - 2; d >= 0; d--) {
		int mergeable = 1;

		for (int k = 0; k < 2; k++)
			mergeable &= w->stride[k][d] == w->stride[k][d + 1] * w->shape[d + 1];
		if (!mergeable)
			continue;
		w->shape[d] *= w->shape[d + 1];
		w->stride[0][d] = w->stride[0][d + 1];
		w->stride[1][d] = w->stride[1][d + 1];
		walk_remove(w, d + 1);
	}
}

/* ---- validation ---- */

/* "op: message" into the caller's buffer, through common's formatter. */
#define fail djc_errf

/* index -1 names the output. */
static int check_placement(const struct tn_op *op, const struct dj_tensor *t, int index,
			   char *err, size_t errlen)
{
	char what[32];

	if (index < 0)
		snprintf(what, sizeof(what), "output");
	else
		snprintf(what, sizeof(what), "input %d", index);
	if (t->mem != DJ_MEM_GPU)
		return fail(-EINVAL, err, errlen, op->name, "%s is not in GPU memory", what);
	if (t->data == NULL && dj_tensor_numel(&t->desc) != 0)
		return fail(-EINVAL, err, errlen, op->name, "%s has no data", what);
	return 0;
}

static int validate(const struct tn_op *op, const struct dj_tensor *in, int n_in,
		    const struct tn_op_attrs *attrs, struct dj_tensor_desc *out_desc, char *err,
		    size_t errlen)
{
	struct dj_tensor_desc descs[TN_OP_MAX_INPUTS] = {0};
	int rc;

	if (n_in < 0 || n_in > TN_OP_MAX_INPUTS || (n_in > 0 && in == NULL) || attrs == NULL)
		return fail(-EINVAL, err, errlen, op ? op->name : "?", "bad arguments (%d inputs)",
			    n_in);
	for (int i = 0; i < n_in; i++)
		descs[i] = in[i].desc;
	rc = tn_op_infer(op, descs, n_in, attrs, out_desc, err, errlen);
	if (rc != 0)
		return rc;
	for (int i = 0; i < n_in; i++)
		if ((rc = check_placement(op, &in[i], i, err, errlen)) != 0)
			return rc;
	return 0;
}

/* ---- dispatch ---- */

static int run_unary(struct djg_ops *ops, enum djg_k_unary_op kind,
		     const struct dj_tensor *x, struct dj_tensor *y)
{
	return djg_ops_cuda_rc(djg_k_unary(kind, x->desc.dtype, x->data, y->data,
					   dj_tensor_numel(&y->desc), ops->stream),
			       "elementwise kernel");
}

static int run_binary(struct djg_ops *ops, enum djg_k_binary_op kind,
		      const struct dj_tensor *a, const struct dj_tensor *b, struct dj_tensor *y)
{
	struct djg_k_walk walk = {.ndim = y->desc.ndim};

	memcpy(walk.shape, y->desc.shape, sizeof(walk.shape));
	tn_broadcast_strides(&a->desc, &y->desc, walk.stride[0]);
	tn_broadcast_strides(&b->desc, &y->desc, walk.stride[1]);
	djg_ops_walk_collapse(&walk);
	return djg_ops_cuda_rc(djg_k_binary(kind, a->desc.dtype, y->desc.dtype, a->data, b->data,
					    y->data, &walk, ops->stream),
			       "broadcast kernel");
}

int djg_ops_add_broadcast(struct djg_ops *ops, const struct dj_tensor *a,
			  const struct dj_tensor *b, struct dj_tensor *out)
{
	return run_binary(ops, DJG_K_ADD, a, b, out);
}

/* Scratch for reduction partials, grown in stream order (never shrinks). */
static int scratch_reserve(struct djg_ops *ops, size_t bytes)
{
	void *grown;
	int rc;

	if (bytes <= ops->scratch_size)
		return 0;
	if (bytes < 2 * ops->scratch_size)
		bytes = 2 * ops->scratch_size;
	rc = djg_ops_cuda_rc(cudaMallocFromPoolAsync(&grown, bytes, ops->pool, ops->stream),
			     "cudaMallocFromPoolAsync(scratch)");
	if (rc != 0)
		return rc;
	if (ops->scratch)
		djg_ops_cuda_rc(cudaFreeAsync(ops->scratch, ops->stream), "cudaFreeAsync(scratch)");
	ops->scratch = grown;
	ops->scratch_size = bytes;
	return 0;
}

/* sum, mean, argmax and softmax: one axis of [outer, len, inner]. */
static int run_axis_op(struct djg_ops *ops, const struct tn_op *op,
		       const struct dj_tensor *x, const struct tn_op_attrs *attrs,
		       struct dj_tensor *y)
{
	int64_t outer, len, inner;
	int rc = tn_op_axis_split(op, &x->desc, attrs, &outer, &len, &inner);

	if (rc != 0)
		return rc;
	if (op->id == TN_OP_SOFTMAX)
		return djg_ops_cuda_rc(djg_k_softmax(x->desc.dtype, x->data, y->data, outer, len,
						     inner, ops->stream),
				       "softmax kernel");
	if (op->id == TN_OP_ARGMAX)
		return djg_ops_cuda_rc(djg_k_argmax(x->desc.dtype, x->data, y->data, outer, len,
						    inner, ops->stream),
				       "argmax kernel");
	rc = scratch_reserve(ops, djg_k_reduce_workspace(outer, len, inner));
	if (rc != 0)
		return rc;
	return djg_ops_cuda_rc(djg_k_reduce(op->id == TN_OP_MEAN, x->desc.dtype, y->desc.dtype,
					    x->data, y->data, outer, len, inner, ops->scratch,
					    ops->stream),
			       "reduction kernel");
}

static int run_layer_norm(struct djg_ops *ops, const struct tn_op *op,
			  const struct dj_tensor *in, int n_in, const struct tn_op_attrs *attrs,
			  struct dj_tensor *y)
{
	int64_t rows, cols, inner;
	int rc = tn_op_axis_split(op, &in[0].desc, attrs, &rows, &cols, &inner);

	if (rc != 0)
		return rc;
	return djg_ops_cuda_rc(djg_k_layer_norm(op->id == TN_OP_RMS_NORM, in[0].desc.dtype,
						in[0].data, n_in > 1 ? in[1].data : NULL,
						n_in > 2 ? in[2].data : NULL, y->data, rows * inner,
						cols, tn_op_eps(op, attrs), ops->stream),
			       "layer_norm kernel");
}

static int run_transpose(struct djg_ops *ops, const struct dj_tensor *x,
			 const struct tn_op_attrs *attrs, struct dj_tensor *y)
{
	struct djg_k_walk walk = {.ndim = y->desc.ndim};
	int64_t in_strides[DJ_MAX_DIMS];
	int perm[DJ_MAX_DIMS];
	int rc = tn_op_transpose_perm(&x->desc, attrs, perm);

	if (rc != 0)
		return rc;
	dj_tensor_strides(&x->desc, in_strides);
	for (int d = 0; d < walk.ndim; d++) {
		walk.shape[d] = y->desc.shape[d];
		walk.stride[0][d] = in_strides[perm[d]];
	}
	djg_ops_walk_collapse(&walk);
	return djg_ops_cuda_rc(djg_k_permute(dj_dtype_size(x->desc.dtype), x->data, y->data,
					     &walk, ops->stream),
			       "permute kernel");
}

/* A resident tensor could alias instead; the API promises a distinct output. */
static int run_copy(struct djg_ops *ops, const struct dj_tensor *x, struct dj_tensor *y)
{
	size_t bytes = dj_tensor_nbytes(&y->desc);

	if (bytes == 0)
		return 0;
	return djg_ops_cuda_rc(cudaMemcpyAsync(y->data, x->data, bytes, cudaMemcpyDeviceToDevice,
					       ops->stream),
			       "cudaMemcpyAsync(reshape)");
}

/* rows rows of width bytes, pitches apart: one strided copy, no kernel
 * (identical source and destination: nothing to do). */
static int copy_rows(struct djg_ops *ops, void *dst, size_t dpitch, const void *src,
		     size_t spitch, size_t width, int64_t rows, const char *what)
{
	if (width == 0 || rows == 0 || (dst == src && dpitch == spitch))
		return 0;
	if (rows == 1 || (dpitch == width && spitch == width))
		return djg_ops_cuda_rc(cudaMemcpyAsync(dst, src, width * (size_t)rows,
						       cudaMemcpyDeviceToDevice, ops->stream),
				       what);
	return djg_ops_cuda_rc(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, (size_t)rows,
						 cudaMemcpyDeviceToDevice, ops->stream),
			       what);
}

/* Each input is a [outer, len_i * inner] block of rows placed side by side. */
static int run_cat(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *y)
{
	size_t esize = dj_dtype_size(y->desc.dtype), offset = 0;
	int64_t outer, out_len, inner;
	int rc = tn_op_axis_split(op, &y->desc, attrs, &outer, &out_len, &inner);

	if (rc != 0)
		return rc;
	for (int i = 0; i < n_in; i++) {
		int64_t len;
		size_t width, pitch = (size_t)(out_len * inner) * esize;

		if ((rc = tn_op_axis_split(op, &in[i].desc, attrs, &outer, &len, &inner)) != 0)
			return rc;
		width = (size_t)(len * inner) * esize;
		rc = copy_rows(ops, (char *)y->data + offset, pitch, in[i].data, width, width, outer,
			       "cudaMemcpy2DAsync(cat)");
		if (rc != 0)
			return rc;
		offset += width;
	}
	return 0;
}

/*
 * narrow: rows of the slice out of the input; slice_write: rows of src into
 * dst at the slice, in place when the output is dst itself, else into a
 * copy of dst.
 */
static int run_slice(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		     const struct tn_op_attrs *attrs, struct dj_tensor *y)
{
	struct dj_tensor_desc descs[2] = {in[0].desc, in[op->id == TN_OP_SLICE_WRITE].desc};
	size_t esize = dj_dtype_size(y->desc.dtype);
	struct tn_op_slice_plan p;
	size_t big, small, offset;
	int rc = tn_op_slice_plan(op, descs, attrs, &p);

	if (rc != 0)
		return rc;
	big = (size_t)(p.big * p.inner) * esize;
	small = (size_t)(p.len * p.inner) * esize;
	offset = (size_t)(p.start * p.inner) * esize;
	if (op->id == TN_OP_NARROW)
		return copy_rows(ops, y->data, small, (const char *)in[0].data + offset, big, small,
				 p.outer, "cudaMemcpy2DAsync(narrow)");
	if (y->data != in[0].data)
		rc = copy_rows(ops, y->data, 0, in[0].data, 0, dj_tensor_nbytes(&y->desc), 1,
			       "cudaMemcpyAsync(slice_write)");
	if (rc == 0)
		rc = copy_rows(ops, (char *)y->data + offset, big, in[1].data, small, small, p.outer,
			       "cudaMemcpy2DAsync(slice_write)");
	return rc;
}

/*
 * The kernel never reads a bad index's row; whether there was one is known
 * only once it ran, so embedding waits for its stream (the one operation
 * that does) and names the first bad index as the CPU reference does.
 */
static int run_embedding(struct djg_ops *ops, const struct dj_tensor *in, struct dj_tensor *y,
			 char *err, size_t errlen)
{
	const struct dj_tensor *idx = &in[0], *w = &in[1];
	int64_t n = dj_tensor_numel(&idx->desc), pos, value;
	size_t isize = dj_dtype_size(idx->desc.dtype);
	int rc;

	if (n == 0)
		return 0;
	if ((rc = djg_ops_cuda_rc(cudaMemsetAsync(ops->bad_index, 0xff, sizeof(*ops->bad_index),
						  ops->stream), "cudaMemsetAsync")) ||
	    (rc = djg_ops_cuda_rc(djg_k_embedding(idx->desc.dtype, idx->data, w->data, y->data, n,
						  w->desc.shape[0],
						  (size_t)w->desc.shape[1] *
							  dj_dtype_size(w->desc.dtype),
						  ops->bad_index, ops->stream),
				  "embedding kernel")) ||
	    (rc = djg_ops_cuda_rc(cudaMemcpyAsync(&ops->bad_host[0], ops->bad_index,
						  sizeof(*ops->bad_index), cudaMemcpyDeviceToHost,
						  ops->stream), "cudaMemcpyAsync")) ||
	    (rc = djg_ops_sync(ops)))
		return rc;
	if ((unsigned long long)ops->bad_host[0] == ~0ull)
		return 0;
	pos = ops->bad_host[0];
	ops->bad_host[1] = 0;
	rc = djg_ops_cuda_rc(cudaMemcpyAsync(&ops->bad_host[1], (const char *)idx->data + pos * isize,
					     isize, cudaMemcpyDeviceToHost, ops->stream),
			     "cudaMemcpyAsync");
	if (rc == 0)
		rc = djg_ops_sync(ops);
	if (rc != 0)
		return rc;
	value = isize == 4 ? (int64_t)*(int32_t *)&ops->bad_host[1] : (int64_t)ops->bad_host[1];
	return fail(-ERANGE, err, errlen, "embedding",
		    "index %lld out of range for %lld rows (at position %lld)", (long long)value,
		    (long long)w->desc.shape[0], (long long)pos);
}

static int run_attention(struct djg_ops *ops, const struct dj_tensor *in,
			 const struct tn_op_attrs *attrs, struct dj_tensor *y)
{
	struct dj_tensor_desc descs[3] = {in[0].desc, in[1].desc, in[2].desc};
	struct tn_op_sdpa_plan p;
	struct djg_k_attention g;
	int rc = tn_op_sdpa_plan(descs, attrs, &p);

	if (rc != 0)
		return rc;
	g = (struct djg_k_attention){.L = p.L, .S = p.S, .E = p.E, .Ev = p.Ev, .batch = p.batch,
				     .batch_ndim = p.batch_ndim, .scale = (float)p.scale,
				     .causal = p.causal};
	memcpy(g.batch_shape, p.batch_shape, sizeof(g.batch_shape));
	memcpy(g.q_stride, p.q_stride, sizeof(g.q_stride));
	memcpy(g.k_stride, p.k_stride, sizeof(g.k_stride));
	memcpy(g.v_stride, p.v_stride, sizeof(g.v_stride));
	rc = scratch_reserve(ops, djg_k_attention_workspace(&g));
	if (rc != 0)
		return rc;
	return djg_ops_cuda_rc(djg_k_attention(y->desc.dtype, in[0].data, in[1].data, in[2].data,
					       y->data, &g, ops->scratch, ops->stream),
			       "attention kernel");
}

static const enum djg_k_unary_op unary_kind[TN_OP_COUNT] = {
	[TN_OP_RELU] = DJG_K_RELU, [TN_OP_SIGMOID] = DJG_K_SIGMOID, [TN_OP_TANH] = DJG_K_TANH,
	[TN_OP_EXP] = DJG_K_EXP,   [TN_OP_LOG] = DJG_K_LOG,         [TN_OP_SQRT] = DJG_K_SQRT,
	[TN_OP_GELU] = DJG_K_GELU, [TN_OP_SILU] = DJG_K_SILU,
};

static const enum djg_k_binary_op binary_kind[TN_OP_COUNT] = {
	[TN_OP_ADD] = DJG_K_ADD, [TN_OP_SUB] = DJG_K_SUB,
	[TN_OP_MUL] = DJG_K_MUL, [TN_OP_DIV] = DJG_K_DIV,
};

static int dispatch(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		    int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err,
		    size_t errlen)
{
	switch (op->id) {
	case TN_OP_MATMUL: return djg_ops_matmul(ops, &in[0], &in[1], out);
	case TN_OP_LINEAR: return djg_ops_linear(ops, in, n_in, out);
	case TN_OP_ADD:
	case TN_OP_SUB:
	case TN_OP_MUL:
	case TN_OP_DIV: return run_binary(ops, binary_kind[op->id], &in[0], &in[1], out);
	case TN_OP_RELU:
	case TN_OP_SIGMOID:
	case TN_OP_TANH:
	case TN_OP_EXP:
	case TN_OP_LOG:
	case TN_OP_SQRT:
	case TN_OP_GELU:
	case TN_OP_SILU: return run_unary(ops, unary_kind[op->id], &in[0], out);
	case TN_OP_SUM:
	case TN_OP_MEAN:
	case TN_OP_ARGMAX:
	case TN_OP_SOFTMAX: return run_axis_op(ops, op, &in[0], attrs, out);
	case TN_OP_RMS_NORM:
	case TN_OP_LAYER_NORM: return run_layer_norm(ops, op, in, n_in, attrs, out);
	case TN_OP_TRANSPOSE: return run_transpose(ops, &in[0], attrs, out);
	case TN_OP_RESHAPE: return run_copy(ops, &in[0], out);
	case TN_OP_CAT: return run_cat(ops, op, in, n_in, attrs, out);
	case TN_OP_NARROW:
	case TN_OP_SLICE_WRITE: return run_slice(ops, op, in, attrs, out);
	case TN_OP_EMBEDDING: return run_embedding(ops, in, out, err, errlen);
	case TN_OP_SDPA: return run_attention(ops, in, attrs, out);
	default: return -DJ_EUNKNOWN_OP;
	}
}

static int enqueue(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err,
		   size_t errlen)
{
	int rc = use_device(ops);

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (rc == 0)
		rc = dispatch(ops, op, in, n_in, attrs, out, err, errlen);
	/* A data-dependent refusal (embedding's index) has named itself. */
	if (rc != 0 && (err == NULL || errlen == 0 || err[0] == '\0'))
		fail(rc, err, errlen, op->name, "GPU execution failed: %s", dj_strerror(rc));
	return rc;
}

int djg_ops_run(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err,
		   size_t errlen)
{
	struct dj_tensor_desc expect;
	int rc;

	if (ops == NULL || out == NULL)
		return -EINVAL;
	rc = validate(op, in, n_in, attrs, &expect, err, errlen);
	if (rc != 0)
		return rc;
	if (!dj_tensor_desc_equal(&expect, &out->desc))
		return fail(-EINVAL, err, errlen, op->name,
			    "output description differs from the inferred one");
	rc = check_placement(op, out, -1, err, errlen);
	if (rc != 0)
		return rc;
	return enqueue(ops, op, in, n_in, attrs, out, err, errlen);
}

int djg_ops_execute(struct djg_ops *ops, const struct tn_op *op,
		       const struct dj_tensor *in, int n_in, const struct tn_op_attrs *attrs,
		       struct dj_tensor *out, char *err, size_t errlen)
{
	struct dj_tensor result = {.mem = DJ_MEM_GPU};
	int rc;

	if (ops == NULL || out == NULL)
		return -EINVAL;
	rc = validate(op, in, n_in, attrs, &result.desc, err, errlen);
	if (rc != 0)
		return rc;
	rc = djg_ops_alloc(ops, dj_tensor_nbytes(&result.desc), &result.data);
	if (rc != 0)
		return rc;
	rc = enqueue(ops, op, in, n_in, attrs, &result, err, errlen);
	if (rc != 0) {
		djg_ops_free(ops, result.data);
		return rc;
	}
	*out = result;
	return 0;
}
