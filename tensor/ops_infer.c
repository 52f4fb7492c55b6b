/* SPDX-License-Identifier: BSD-3-Clause */
/* Shape and dtype inference, one function per family of operations. */
#include <errno.h>
#include <stdio.h>

#include "djinn/common.h"
#include "ops_internal.h"

/* Room for two shapes in one message. */
#define SHAPE_TEXT 8 * 22

OP_INFER(elementwise_binary)
{
	char sa[SHAPE_TEXT], sb[SHAPE_TEXT];

	if (tn_broadcast_shape(&in[0], &in[1], out) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "shapes do not broadcast: %s and %s",
			       dj_shape_format(&in[0], sa, sizeof(sa)),
			       dj_shape_format(&in[1], sb, sizeof(sb)));
	return 0;
}

OP_INFER(div)
{
	int rc = tn_infer_elementwise_binary(in, n_in, a, out, err, errlen);

	if (rc == 0 && !dj_dtype_is_float(in[0].dtype))
		out->dtype = DJ_DTYPE_FLOAT32;
	return rc;
}

OP_INFER(elementwise_unary)
{
	*out = in[0];
	return 0;
}

static int reduced_desc(const struct dj_tensor_desc *in, const struct tn_op_attrs *a,
			struct dj_tensor_desc *out, char *err, size_t errlen)
{
	int dim;

	*out = *in;
	if (!a->has_dim) {
		for (int i = 0; i < in->ndim; i++)
			out->shape[i] = 1;
		if (!a->keepdim)
			out->ndim = 0;
		return 0;
	}
	if (tn_op_resolve_dim(a->dim, in->ndim, &dim) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "dim %d out of range for %d dimensions", a->dim, in->ndim);
	if (in->ndim == 0)
		return 0;
	out->shape[dim] = 1;
	if (!a->keepdim) {
		for (int i = dim; i + 1 < in->ndim; i++)
			out->shape[i] = in->shape[i + 1];
		out->ndim--;
	}
	return 0;
}

OP_INFER(reduce)
{
	return reduced_desc(&in[0], a, out, err, errlen);
}

OP_INFER(sum)
{
	int rc = reduced_desc(&in[0], a, out, err, errlen);

	if (rc == 0 && in[0].dtype == DJ_DTYPE_INT32)
		out->dtype = DJ_DTYPE_INT64;
	return rc;
}

OP_INFER(softmax)
{
	int dim;
	int want = a->has_dim ? a->dim : -1;

	if (tn_op_resolve_dim(want, in[0].ndim, &dim) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "dim %d out of range for %d dimensions", want, in[0].ndim);
	*out = in[0];
	return 0;
}

static int same_shape_as(const struct dj_tensor_desc *d, int ndim, const int64_t *shape)
{
	if (d->ndim != ndim)
		return 0;
	for (int i = 0; i < ndim; i++)
		if (d->shape[i] != shape[i])
			return 0;
	return 1;
}

OP_INFER(layer_norm)
{
	char sx[SHAPE_TEXT], sn[SHAPE_TEXT];
	const struct dj_tensor_desc *x = &in[0];
	struct dj_tensor_desc norm = {.dtype = x->dtype, .ndim = a->norm_ndim};

	if (a->norm_ndim == 0) {
		if (x->ndim == 0)
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
				       "input is a scalar; it needs at least 1 dimension");
		norm.ndim = 1;
		norm.shape[0] = x->shape[x->ndim - 1];
	} else {
		for (int i = 0; i < a->norm_ndim; i++)
			norm.shape[i] = a->norm_shape[i];
	}
	dj_shape_format(x, sx, sizeof(sx));
	dj_shape_format(&norm, sn, sizeof(sn));
	if (norm.ndim > x->ndim ||
	    !same_shape_as(&norm, norm.ndim, x->shape + x->ndim - norm.ndim))
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "normalized_shape %s is not the trailing shape of %s", sn, sx);
	for (int i = 1; i < n_in; i++) {
		char sw[SHAPE_TEXT];

		if (!dj_tensor_desc_equal(&in[i], &norm))
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
				       "%s shape %s differs from normalized_shape %s",
				       i == 1 ? "weight" : "bias",
				       dj_shape_format(&in[i], sw, sizeof(sw)), sn);
	}
	*out = *x;
	return 0;
}

/*
 * torch.matmul: 1-D operands become a row (left) or column (right) vector and
 * lose that dimension again in the result; leading batch dims broadcast.
 */
OP_INFER(matmul)
{
	char sa[SHAPE_TEXT], sb[SHAPE_TEXT];
	const struct dj_tensor_desc *x = &in[0], *y = &in[1];
	struct tn_op_matmul_plan plan;

	if (x->ndim == 0 || y->ndim == 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "both operands need at least 1 dimension: %s @ %s",
			       dj_shape_format(x, sa, sizeof(sa)), dj_shape_format(y, sb, sizeof(sb)));
	int rc = tn_op_matmul_plan(x, y, &plan);

	if (rc == -DJ_ESHAPE && plan.k != plan.k_right)
		return tn_op_fail(rc, err, errlen, NULL, "inner dimensions differ: %s @ %s",
			       dj_shape_format(x, sa, sizeof(sa)), dj_shape_format(y, sb, sizeof(sb)));
	if (rc != 0)
		return tn_op_fail(rc, err, errlen, NULL, "batch dimensions do not broadcast: %s @ %s",
			       dj_shape_format(x, sa, sizeof(sa)), dj_shape_format(y, sb, sizeof(sb)));
	out->dtype = x->dtype;
	out->ndim = plan.batch_ndim;
	for (int i = 0; i < plan.batch_ndim; i++)
		out->shape[i] = plan.batch_shape[i];
	if (x->ndim > 1)
		out->shape[out->ndim++] = plan.m;
	if (y->ndim > 1)
		out->shape[out->ndim++] = plan.n;
	return 0;
}

OP_INFER(linear)
{
	char sx[SHAPE_TEXT], sw[SHAPE_TEXT];
	const struct dj_tensor_desc *x = &in[0], *w = &in[1];

	dj_shape_format(x, sx, sizeof(sx));
	dj_shape_format(w, sw, sizeof(sw));
	if (x->ndim < 1 || w->ndim != 2)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "needs x [..., in] and weight [out, in], got %s and %s", sx, sw);
	if (x->shape[x->ndim - 1] != w->shape[1])
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "in-features differ: x %s, weight %s", sx, sw);
	if (n_in == 3 && !(in[2].ndim == 1 && in[2].shape[0] == w->shape[0])) {
		char sb[SHAPE_TEXT];

		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "bias %s must be [%lld] (out-features of weight %s)",
			       dj_shape_format(&in[2], sb, sizeof(sb)), (long long)w->shape[0], sw);
	}
	*out = *x;
	out->shape[x->ndim - 1] = w->shape[0];
	return 0;
}

OP_INFER(transpose)
{
	int perm[DJ_MAX_DIMS];
	int rc = tn_op_transpose_perm(&in[0], a, perm);

	if (rc != 0)
		return tn_op_fail(rc, err, errlen, NULL,
			       a->n_perm ? "perm is not a permutation of %d dimensions"
					 : "dims out of range for %d dimensions", in[0].ndim);
	*out = in[0];
	for (int i = 0; i < in[0].ndim; i++)
		out->shape[i] = in[0].shape[perm[i]];
	return 0;
}

OP_INFER(reshape)
{
	char si[SHAPE_TEXT];
	struct dj_tensor_desc r = {.dtype = in[0].dtype, .ndim = a->shape_ndim};
	int64_t known = 1;
	int infer_at = -1;

	if (a->shape_ndim < 0 || a->shape_ndim > DJ_MAX_DIMS)
		return tn_op_fail(-EINVAL, err, errlen, NULL, "shape has %d dimensions (0..%d)",
			       a->shape_ndim, DJ_MAX_DIMS);
	for (int i = 0; i < a->shape_ndim; i++) {
		r.shape[i] = a->shape[i];
		if (a->shape[i] == -1 && infer_at < 0) {
			infer_at = i;
			continue;
		}
		if (a->shape[i] < 0)
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
				       "bad target dimension %lld (one -1 allowed)",
				       (long long)a->shape[i]);
		if (__builtin_mul_overflow(known, a->shape[i], &known))
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL, "target shape overflows");
	}
	int64_t numel = dj_tensor_numel(&in[0]);

	if (infer_at >= 0 && known != 0 && numel % known == 0)
		r.shape[infer_at] = numel / known;
	else if (infer_at >= 0)
		known = -1; /* forces the mismatch message below */
	if (dj_tensor_numel(&r) != numel || known < 0) {
		char sr[SHAPE_TEXT];
		struct dj_tensor_desc asked = {.ndim = a->shape_ndim};

		for (int i = 0; i < a->shape_ndim; i++)
			asked.shape[i] = a->shape[i];
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "cannot reshape %s (%lld elements) to %s",
			       dj_shape_format(&in[0], si, sizeof(si)), (long long)numel,
			       dj_shape_format(&asked, sr, sizeof(sr)));
	}
	*out = r;
	return 0;
}

OP_INFER(cat)
{
	char s0[SHAPE_TEXT], si[SHAPE_TEXT];
	int dim;
	int want = a->has_dim ? a->dim : 0;

	if (in[0].ndim == 0 || tn_op_resolve_dim(want, in[0].ndim, &dim) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "dim %d out of range for %d dimensions", want, in[0].ndim);
	*out = in[0];
	for (int i = 1; i < n_in; i++) {
		int fits = in[i].ndim == in[0].ndim;

		for (int d = 0; fits && d < in[0].ndim; d++)
			fits = d == dim || in[i].shape[d] == in[0].shape[d];
		if (!fits)
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
				       "input %d %s does not match input 0 %s outside dim %d", i,
				       dj_shape_format(&in[i], si, sizeof(si)),
				       dj_shape_format(&in[0], s0, sizeof(s0)), dim);
		if (__builtin_add_overflow(out->shape[dim], in[i].shape[dim], &out->shape[dim]))
			return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL, "result too large");
	}
	return 0;
}

OP_INFER(embedding)
{
	char si[SHAPE_TEXT], sw[SHAPE_TEXT];
	const struct dj_tensor_desc *idx = &in[0], *w = &in[1];

	if (w->ndim != 2)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "weight %s must be 2-D [num_embeddings, embedding_dim]",
			       dj_shape_format(w, sw, sizeof(sw)));
	if (idx->ndim >= DJ_MAX_DIMS)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "indices %s: the result would have %d dimensions (at most %d)",
			       dj_shape_format(idx, si, sizeof(si)), idx->ndim + 1, DJ_MAX_DIMS);
	*out = *idx;
	out->dtype = w->dtype;
	out->shape[out->ndim++] = w->shape[1];
	return 0;
}

/* narrow and slice_write name their missing attribute rather than guess. */
static int require(int present, const char *key, char *err, size_t errlen)
{
	return present ? 0 : tn_op_fail(-EINVAL, err, errlen, NULL, "attribute '%s' is required",
				       key);
}

/* The dim and start of narrow and slice_write, resolved against @p x. */
static int slice_dim(const struct dj_tensor_desc *x, const struct tn_op_attrs *a, int *dim,
		     char *err, size_t errlen)
{
	int rc = require(a->has_dim, "dim", err, errlen);

	if (rc == 0)
		rc = require(a->has_start, "start", err, errlen);
	if (rc != 0)
		return rc;
	if (x->ndim == 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "cannot slice a 0-dimensional tensor");
	if (tn_op_resolve_dim(a->dim, x->ndim, dim) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "dim %d out of range for %d dimensions", a->dim, x->ndim);
	return 0;
}

static int slice_range(const struct dj_tensor_desc *x, int dim, int64_t start, int64_t len,
		       char *err, size_t errlen)
{
	int64_t resolved;

	if (tn_op_slice_start(x->shape[dim], start, len, &resolved) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "start %lld, length %lld out of range for size %lld of dim %d",
			       (long long)start, (long long)len, (long long)x->shape[dim], dim);
	return 0;
}

OP_INFER(narrow)
{
	int dim;
	int rc = slice_dim(&in[0], a, &dim, err, errlen);

	if (rc == 0)
		rc = require(a->has_length, "length", err, errlen);
	if (rc == 0)
		rc = slice_range(&in[0], dim, a->start, a->length, err, errlen);
	if (rc != 0)
		return rc;
	*out = in[0];
	out->shape[dim] = a->length;
	return 0;
}

OP_INFER(slice_write)
{
	char sd[SHAPE_TEXT], ss[SHAPE_TEXT];
	const struct dj_tensor_desc *dst = &in[0], *src = &in[1];
	int dim, fits;
	int rc = slice_dim(dst, a, &dim, err, errlen);

	if (rc != 0)
		return rc;
	fits = src->ndim == dst->ndim;
	for (int d = 0; fits && d < dst->ndim; d++)
		fits = d == dim || src->shape[d] == dst->shape[d];
	if (!fits)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "src %s does not match dst %s outside dim %d",
			       dj_shape_format(src, ss, sizeof(ss)),
			       dj_shape_format(dst, sd, sizeof(sd)), dim);
	rc = slice_range(dst, dim, a->start, src->shape[dim], err, errlen);
	if (rc == 0)
		*out = *dst;
	return rc;
}

OP_INFER(sdpa)
{
	char sq[SHAPE_TEXT], sk[SHAPE_TEXT], sv[SHAPE_TEXT];
	struct tn_op_sdpa_plan p;

	dj_shape_format(&in[0], sq, sizeof(sq));
	dj_shape_format(&in[1], sk, sizeof(sk));
	dj_shape_format(&in[2], sv, sizeof(sv));
	if (in[0].ndim < 2 || in[1].ndim < 2 || in[2].ndim < 2)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "q, k and v need at least 2 dimensions: q %s, k %s, v %s", sq, sk,
			       sv);
	if (in[1].shape[in[1].ndim - 1] != in[0].shape[in[0].ndim - 1])
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "q %s and k %s differ in the last dimension (E)", sq, sk);
	if (in[2].shape[in[2].ndim - 2] != in[1].shape[in[1].ndim - 2])
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "k %s and v %s differ in the key dimension (S)", sk, sv);
	if (tn_op_sdpa_plan(in, a, &p) != 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "batch dimensions do not broadcast: q %s, k %s, v %s", sq, sk, sv);
	out->dtype = in[0].dtype;
	out->ndim = p.batch_ndim + 2;
	for (int i = 0; i < p.batch_ndim; i++)
		out->shape[i] = p.batch_shape[i];
	out->shape[p.batch_ndim] = p.L;
	out->shape[p.batch_ndim + 1] = p.Ev;
	return 0;
}

/* torch refuses an argmax over nothing: there is no index to give. */
OP_INFER(argmax)
{
	char sx[SHAPE_TEXT];
	int rc = reduced_desc(&in[0], a, out, err, errlen);
	int dim;

	if (rc != 0)
		return rc;
	if (!a->has_dim && dj_tensor_numel(&in[0]) == 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL, "input %s has no elements",
			       dj_shape_format(&in[0], sx, sizeof(sx)));
	if (a->has_dim && in[0].ndim > 0 && tn_op_resolve_dim(a->dim, in[0].ndim, &dim) == 0 &&
	    in[0].shape[dim] == 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "dim %d of %s is empty: no index to give", a->dim,
			       dj_shape_format(&in[0], sx, sizeof(sx)));
	out->dtype = DJ_DTYPE_INT64;
	return 0;
}

OP_INFER(rms_norm)
{
	char sx[SHAPE_TEXT], sw[SHAPE_TEXT];
	const struct dj_tensor_desc *x = &in[0];

	if (x->ndim == 0)
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "input is a scalar; it needs at least 1 dimension");
	if (n_in > 1 && !(in[1].ndim == 1 && in[1].shape[0] == x->shape[x->ndim - 1]))
		return tn_op_fail(-DJ_ESHAPE, err, errlen, NULL,
			       "weight %s must be [%lld], the last dimension of %s",
			       dj_shape_format(&in[1], sw, sizeof(sw)),
			       (long long)x->shape[x->ndim - 1], dj_shape_format(x, sx, sizeof(sx)));
	*out = *x;
	return 0;
}
