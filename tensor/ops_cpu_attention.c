/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * scaled_dot_product_attention, the reference: for each query row, the
 * logits scale * q.k over every key (-inf where the causal mask hides
 * it), their softmax (max-subtracted) and the weighted sum of the values,
 * all in double with one rounding into the result. It is exactly
 * softmax(q @ k^T * scale + mask) @ v, torch's math path, without the
 * L x S intermediate being kept beyond one row.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "ops_internal.h"

/* One query row: logits into @p w (S entries), then weights summing to 1. */
static void row_weights(const struct dj_tensor *q, int64_t q_row, const struct dj_tensor *k,
			int64_t k_base, const struct tn_op_sdpa_plan *p, int64_t i, double *w)
{
	double max = -INFINITY, total = 0;

	for (int64_t j = 0; j < p->S; j++) {
		double dot = 0;

		for (int64_t e = 0; e < p->E; e++)
			dot += tensor_load_f64(q, q_row + e) * tensor_load_f64(k, k_base + j * p->E + e);
		/* top-left aligned: query i sees keys 0..i (tril(ones(L, S))) */
		w[j] = p->causal && j > i ? -INFINITY : dot * p->scale;
		max = fmax(max, w[j]);
	}
	for (int64_t j = 0; j < p->S; j++) {
		w[j] = w[j] == -INFINITY ? 0.0 : exp(w[j] - max);
		total += w[j];
	}
	for (int64_t j = 0; j < p->S; j++)
		w[j] /= total;
}

OP_CPU(sdpa)
{
	struct tn_op_sdpa_plan p;
	struct dj_tensor_desc descs[3] = {in[0].desc, in[1].desc, in[2].desc};
	double *w;

	tn_op_sdpa_plan(descs, a, &p);
	w = malloc((size_t)(p.S > 0 ? p.S : 1) * sizeof(double));
	if (w == NULL)
		return -ENOMEM;
	for (int64_t b = 0; b < p.batch; b++) {
		int64_t qo = tn_op_batch_offset(p.batch_ndim, p.batch_shape, p.q_stride, b);
		int64_t ko = tn_op_batch_offset(p.batch_ndim, p.batch_shape, p.k_stride, b);
		int64_t vo = tn_op_batch_offset(p.batch_ndim, p.batch_shape, p.v_stride, b);

		for (int64_t i = 0; i < p.L; i++) {
			int64_t o = (b * p.L + i) * p.Ev;

			row_weights(&in[0], qo + i * p.E, &in[1], ko, &p, i, w);
			/* No keys (S = 0): an empty weighted sum, 0 as torch gives. */
			for (int64_t e = 0; e < p.Ev; e++) {
				double acc = 0;

				for (int64_t j = 0; j < p.S; j++)
					acc += w[j] * tensor_load_f64(&in[2], vo + j * p.Ev + e);
				tensor_store_f64(out, o + e, acc);
			}
		}
	}
	free(w);
	return 0;
}
