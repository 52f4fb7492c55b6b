/* SPDX-License-Identifier: BSD-3-Clause */
/* Layout helpers shared by inference, the CPU kernels and the GPU backend. */
#include <errno.h>

#include "djinn/common.h"
#include "ops_internal.h"

static int64_t layer_norm_len(const struct dj_tensor_desc *in, const struct tn_op_attrs *a)
{
	int64_t len = 1;
	int n = a->norm_ndim > 0 ? a->norm_ndim : 1;

	for (int i = in->ndim - n; i < in->ndim; i++)
		len *= in->shape[i];
	return len;
}

int tn_op_axis_split(const struct tn_op *op, const struct dj_tensor_desc *in,
		     const struct tn_op_attrs *a, int64_t *outer, int64_t *len,
		     int64_t *inner)
{
	int dim;

	if (op == NULL)
		return -EINVAL;
	switch (op->id) {
	case TN_OP_SUM:
	case TN_OP_MEAN:
		if (!a->has_dim) {
			*outer = *inner = 1;
			*len = dj_tensor_numel(in);
			return 0;
		}
		dim = a->dim;
		break;
	case TN_OP_SOFTMAX:
		dim = a->has_dim ? a->dim : -1;
		break;
	case TN_OP_CAT:
		dim = a->has_dim ? a->dim : 0;
		break;
	case TN_OP_LAYER_NORM:
		*len = layer_norm_len(in, a);
		*outer = *len > 0 ? dj_tensor_numel(in) / *len : 0;
		*inner = 1;
		return 0;
	default:
		return -EINVAL;
	}
	if (tn_op_resolve_dim(dim, in->ndim, &dim) != 0)
		return -DJ_ESHAPE;
	tn_op_split_at(in, dim, outer, len, inner);
	return 0;
}

int tn_op_transpose_perm(const struct dj_tensor_desc *in, const struct tn_op_attrs *a,
			 int perm[DJ_MAX_DIMS])
{
	int n = in->ndim;

	for (int i = 0; i < n; i++)
		perm[i] = i;
	if (a->n_perm != 0) {
		unsigned int seen = 0;

		if (a->n_perm != n)
			return -DJ_ESHAPE;
		for (int i = 0; i < n; i++) {
			int d;

			if (tn_op_resolve_dim(a->perm[i], n, &d) != 0 || (seen & (1u << d)))
				return -DJ_ESHAPE;
			seen |= 1u << d;
			perm[i] = d;
		}
		return 0;
	}
	int d0 = n - 2, d1 = n - 1;

	if (a->has_dims) {
		if (tn_op_resolve_dim(a->dims[0], n, &d0) != 0 ||
		    tn_op_resolve_dim(a->dims[1], n, &d1) != 0)
			return -DJ_ESHAPE;
	}
	if (n < 2)
		return 0;
	perm[d0] = d1;
	perm[d1] = d0;
	return 0;
}

/* Strides of one operand's batch dims aligned to the broadcast batch shape. */
static void batch_strides(const struct dj_tensor_desc *t, int t_batch_ndim, int64_t matrix,
			  const struct tn_op_matmul_plan *p, int64_t strides[DJ_MAX_DIMS])
{
	int64_t s = matrix;
	int lead = p->batch_ndim - t_batch_ndim;

	for (int i = p->batch_ndim - 1; i >= 0; i--) {
		int j = i - lead;
		int64_t d = j >= 0 ? t->shape[j] : 1;

		strides[i] = d == 1 ? 0 : s;
		s *= d;
	}
}

int tn_op_matmul_plan(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b,
		      struct tn_op_matmul_plan *p)
{
	struct dj_tensor_desc ab = {.ndim = a->ndim > 2 ? a->ndim - 2 : 0};
	struct dj_tensor_desc bb = {.ndim = b->ndim > 2 ? b->ndim - 2 : 0};
	struct dj_tensor_desc batch;

	p->m = a->ndim > 1 ? a->shape[a->ndim - 2] : 1;
	p->k = a->shape[a->ndim - 1];
	p->k_right = b->ndim > 1 ? b->shape[b->ndim - 2] : b->shape[0];
	p->n = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
	if (p->k != p->k_right)
		return -DJ_ESHAPE;
	for (int i = 0; i < ab.ndim; i++)
		ab.shape[i] = a->shape[i];
	for (int i = 0; i < bb.ndim; i++)
		bb.shape[i] = b->shape[i];
	if (tn_broadcast_shape(&ab, &bb, &batch) != 0)
		return -DJ_ESHAPE;
	p->batch_ndim = batch.ndim;
	p->batch = 1;
	for (int i = 0; i < batch.ndim; i++) {
		p->batch_shape[i] = batch.shape[i];
		if (__builtin_mul_overflow(p->batch, batch.shape[i], &p->batch))
			return -DJ_ESHAPE;
	}
	batch_strides(a, ab.ndim, p->m * p->k, p, p->a_batch_stride);
	batch_strides(b, bb.ndim, p->k * p->n, p, p->b_batch_stride);
	return 0;
}
