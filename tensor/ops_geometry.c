/* SPDX-License-Identifier: BSD-3-Clause */
/* Layout helpers shared by inference, the CPU kernels and the GPU backend. */
#include <errno.h>
#include <math.h>
#include <string.h>

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
	case TN_OP_ARGMAX:
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
	case TN_OP_RMS_NORM:
	case TN_OP_LAYER_NORM:
		*len = op->id == TN_OP_LAYER_NORM ? layer_norm_len(in, a) : in->shape[in->ndim - 1];
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
			  int batch_ndim, int64_t strides[DJ_MAX_DIMS])
{
	int64_t s = matrix;
	int lead = batch_ndim - t_batch_ndim;

	for (int i = batch_ndim - 1; i >= 0; i--) {
		int j = i - lead;
		int64_t d = j >= 0 ? t->shape[j] : 1;

		strides[i] = d == 1 ? 0 : s;
		s *= d;
	}
}

/* The leading (batch) dims of @p t: all but its last two (none for 1-D). */
static struct dj_tensor_desc batch_part(const struct dj_tensor_desc *t)
{
	struct dj_tensor_desc b = {.dtype = t->dtype, .ndim = t->ndim > 2 ? t->ndim - 2 : 0};

	for (int i = 0; i < b.ndim; i++)
		b.shape[i] = t->shape[i];
	return b;
}

/* Copy the broadcast batch shape out and count its entries (overflow:
 * -DJ_ESHAPE). */
static int batch_fill(const struct dj_tensor_desc *batch, int *ndim, int64_t *shape,
		      int64_t *count)
{
	*ndim = batch->ndim;
	*count = 1;
	for (int i = 0; i < batch->ndim; i++) {
		shape[i] = batch->shape[i];
		if (__builtin_mul_overflow(*count, batch->shape[i], count))
			return -DJ_ESHAPE;
	}
	return 0;
}

int tn_op_matmul_plan(const struct dj_tensor_desc *a, const struct dj_tensor_desc *b,
		      struct tn_op_matmul_plan *p)
{
	struct dj_tensor_desc ab = batch_part(a), bb = batch_part(b), batch;

	p->m = a->ndim > 1 ? a->shape[a->ndim - 2] : 1;
	p->k = a->shape[a->ndim - 1];
	p->k_right = b->ndim > 1 ? b->shape[b->ndim - 2] : b->shape[0];
	p->n = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
	if (p->k != p->k_right)
		return -DJ_ESHAPE;
	if (tn_broadcast_shape(&ab, &bb, &batch) != 0 ||
	    batch_fill(&batch, &p->batch_ndim, p->batch_shape, &p->batch) != 0)
		return -DJ_ESHAPE;
	batch_strides(a, ab.ndim, p->m * p->k, p->batch_ndim, p->a_batch_stride);
	batch_strides(b, bb.ndim, p->k * p->n, p->batch_ndim, p->b_batch_stride);
	return 0;
}

int64_t tn_op_batch_offset(int batch_ndim, const int64_t *batch_shape, const int64_t *strides,
			   int64_t b)
{
	int64_t off = 0;

	for (int d = batch_ndim - 1; d >= 0; d--) {
		off += (b % batch_shape[d]) * strides[d];
		b /= batch_shape[d];
	}
	return off;
}

int tn_op_sdpa_plan(const struct dj_tensor_desc *in, const struct tn_op_attrs *a,
		    struct tn_op_sdpa_plan *p)
{
	const struct dj_tensor_desc *q = &in[0], *k = &in[1], *v = &in[2];
	struct dj_tensor_desc qb, kb, vb, qk, batch;

	memset(p, 0, sizeof(*p));
	if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2)
		return -DJ_ESHAPE;
	p->L = q->shape[q->ndim - 2];
	p->E = q->shape[q->ndim - 1];
	p->S = k->shape[k->ndim - 2];
	p->Ev = v->shape[v->ndim - 1];
	if (k->shape[k->ndim - 1] != p->E || v->shape[v->ndim - 2] != p->S)
		return -DJ_ESHAPE;
	qb = batch_part(q);
	kb = batch_part(k);
	vb = batch_part(v);
	if (tn_broadcast_shape(&qb, &kb, &qk) != 0 || tn_broadcast_shape(&qk, &vb, &batch) != 0 ||
	    batch_fill(&batch, &p->batch_ndim, p->batch_shape, &p->batch) != 0)
		return -DJ_ESHAPE;
	batch_strides(q, qb.ndim, p->L * p->E, p->batch_ndim, p->q_stride);
	batch_strides(k, kb.ndim, p->S * p->E, p->batch_ndim, p->k_stride);
	batch_strides(v, vb.ndim, p->S * p->Ev, p->batch_ndim, p->v_stride);
	/* E = 0: every logit is 0, as torch's scaling of q and k before the
	 * product gives (a default 1/sqrt(0) would turn them into NaN). */
	p->scale = p->E == 0 ? 0.0 : a->has_scale ? a->scale : 1.0 / sqrt((double)p->E);
	p->causal = a->is_causal;
	return 0;
}

/* A negative start counts from the end, as torch.narrow; -DJ_ESHAPE when
 * [start, start + len) is not inside [0, size). */
int tn_op_slice_start(int64_t size, int64_t start, int64_t len, int64_t *resolved)
{
	if (start < -size || start > size || len < 0)
		return -DJ_ESHAPE;
	if (start < 0)
		start += size;
	if (len > size - start)
		return -DJ_ESHAPE;
	*resolved = start;
	return 0;
}

int tn_op_slice_plan(const struct tn_op *op, const struct dj_tensor_desc *in,
		     const struct tn_op_attrs *a, struct tn_op_slice_plan *p)
{
	int dim;
	int64_t len;

	if (op == NULL || (op->id != TN_OP_NARROW && op->id != TN_OP_SLICE_WRITE) ||
	    in[0].ndim == 0 || tn_op_resolve_dim(a->dim, in[0].ndim, &dim) != 0)
		return -EINVAL;
	len = op->id == TN_OP_NARROW ? a->length : in[1].shape[dim];
	tn_op_split_at(&in[0], dim, &p->outer, &p->big, &p->inner);
	p->len = len;
	return tn_op_slice_start(p->big, a->start, len, &p->start) == 0 ? 0 : -EINVAL;
}
