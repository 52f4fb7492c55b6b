/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data movement: transpose (any permutation), reshape, cat, narrow,
 * slice_write (in place) and embedding (a row gather). Dtype-blind: elements
 * move as bytes, never converted.
 */
#include <errno.h>
#include <string.h>

#include "ops_internal.h"

static void copy_element(void *dst, int64_t di, const void *src, int64_t si, size_t size)
{
	memcpy((char *)dst + di * (int64_t)size, (const char *)src + si * (int64_t)size, size);
}

OP_CPU(transpose)
{
	const struct dj_tensor *x = &in[0];
	int perm[DJ_MAX_DIMS];
	int64_t in_strides[DJ_MAX_DIMS], walk[DJ_MAX_DIMS], idx[DJ_MAX_DIMS] = {0};
	int ndim = out->desc.ndim;
	int64_t n = dj_tensor_numel(&out->desc), src = 0;
	size_t size = dj_dtype_size(x->desc.dtype);

	tn_op_transpose_perm(&x->desc, a, perm);
	dj_tensor_strides(&x->desc, in_strides);
	/* Output dim d advances the input by the stride of input dim perm[d]. */
	for (int d = 0; d < ndim; d++)
		walk[d] = in_strides[perm[d]];
	for (int64_t i = 0; i < n; i++) {
		copy_element(out->data, i, x->data, src, size);
		for (int d = ndim - 1; d >= 0; d--) {
			src += walk[d];
			if (++idx[d] < out->desc.shape[d])
				break;
			src -= walk[d] * out->desc.shape[d];
			idx[d] = 0;
		}
	}
	return 0;
}

OP_CPU(reshape)
{
	size_t bytes = dj_tensor_nbytes(&out->desc);

	if (bytes > 0)
		memcpy(out->data, in[0].data, bytes);
	return 0;
}

void tn_copy_rows(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
		  int64_t rows)
{
	if (width == 0 || (dst == src && dpitch == spitch))
		return;
	for (int64_t r = 0; r < rows; r++)
		memcpy((char *)dst + (size_t)r * dpitch, (const char *)src + (size_t)r * spitch,
		       width);
}

/* Each outer slice of the result is the inputs' slices back to back: input
 * i is a block of rows placed at its column offset. */
OP_CPU(cat)
{
	int64_t outer, out_len, inner;
	size_t size = dj_dtype_size(out->desc.dtype), offset = 0;
	const struct tn_op *cat = tn_op_get(TN_OP_CAT);

	tn_op_axis_split(cat, &out->desc, a, &outer, &out_len, &inner);
	for (int i = 0; i < n_in; i++) {
		int64_t len;

		tn_op_axis_split(cat, &in[i].desc, a, &outer, &len, &inner);
		size_t width = (size_t)(len * inner) * size;

		tn_copy_rows((char *)out->data + offset, (size_t)(out_len * inner) * size,
			     in[i].data, width, width, outer);
		offset += width;
	}
	return 0;
}

/* Byte geometry of a narrow or slice_write (see tn_op_slice_plan). */
struct slab {
	size_t big_pitch, small_pitch, offset;
	int64_t rows;
};

static struct slab slab_of(enum tn_op_id id, const struct dj_tensor *in,
			   const struct tn_op_attrs *a)
{
	struct dj_tensor_desc descs[2] = {in[0].desc, in[id == TN_OP_SLICE_WRITE].desc};
	struct tn_op_slice_plan p;
	size_t esize = dj_dtype_size(in[0].desc.dtype);

	tn_op_slice_plan(tn_op_get(id), descs, a, &p);
	return (struct slab){.big_pitch = (size_t)(p.big * p.inner) * esize,
			     .small_pitch = (size_t)(p.len * p.inner) * esize,
			     .offset = (size_t)(p.start * p.inner) * esize, .rows = p.outer};
}

OP_CPU(narrow)
{
	struct slab s = slab_of(TN_OP_NARROW, in, a);

	tn_copy_rows(out->data, s.small_pitch, (const char *)in[0].data + s.offset, s.big_pitch,
		     s.small_pitch, s.rows);
	return 0;
}

/* out is dst itself when run in place; otherwise it gets dst's bytes first. */
OP_CPU(slice_write)
{
	struct slab s = slab_of(TN_OP_SLICE_WRITE, in, a);
	size_t bytes = dj_tensor_nbytes(&out->desc);

	if (out->data != in[0].data && bytes > 0)
		memcpy(out->data, in[0].data, bytes);
	tn_copy_rows((char *)out->data + s.offset, s.big_pitch, in[1].data, s.small_pitch,
		     s.small_pitch, s.rows);
	return 0;
}

/* Every index is checked before anything is written: a bad one is named
 * (the first, by position) and the output stays untouched. */
OP_CPU(embedding)
{
	const struct dj_tensor *idx = &in[0], *w = &in[1];
	int64_t n = dj_tensor_numel(&idx->desc), rows = w->desc.shape[0];
	size_t row_bytes = (size_t)w->desc.shape[1] * dj_dtype_size(w->desc.dtype);

	for (int64_t i = 0; i < n; i++) {
		int64_t v = op_load_i64(idx, i);

		if (v < 0 || v >= rows)
			return tn_op_fail(-ERANGE, err, errlen, NULL,
				       "index %lld out of range for %lld rows (at position %lld)",
				       (long long)v, (long long)rows, (long long)i);
	}
	for (int64_t i = 0; i < n && row_bytes > 0; i++)
		memcpy((char *)out->data + (size_t)i * row_bytes,
		       (const char *)w->data + (size_t)op_load_i64(idx, i) * row_bytes, row_bytes);
	return 0;
}
