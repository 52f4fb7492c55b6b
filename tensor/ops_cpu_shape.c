/* SPDX-License-Identifier: BSD-3-Clause */
/* Data movement: transpose (any permutation), reshape, cat. Dtype-blind. */
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

OP_CPU(cat)
{
	int64_t outer, len, inner;
	size_t size = dj_dtype_size(out->desc.dtype);
	char *dst = out->data;

	tn_op_axis_split(tn_op_get(TN_OP_CAT), &in[0].desc, a, &outer, &len, &inner);
	/* Each outer slice of the result is the inputs' slices back to back. */
	for (int64_t o = 0; o < outer; o++) {
		for (int i = 0; i < n_in; i++) {
			int64_t in_outer, in_len, in_inner;

			tn_op_axis_split(tn_op_get(TN_OP_CAT), &in[i].desc, a, &in_outer, &in_len,
					 &in_inner);
			size_t chunk = (size_t)(in_len * in_inner) * size;

			if (chunk > 0)
				memcpy(dst, (const char *)in[i].data + (size_t)o * chunk, chunk);
			dst += chunk;
		}
	}
	return 0;
}
