/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reductions (sum, mean, argmax) and normalisations (softmax, layer_norm,
 * rms_norm) over one axis of an [outer][len][inner] view. Float types
 * accumulate in double; integer sums in int64, wrapping.
 */
#include <math.h>

#include "ops_internal.h"

static void split(const struct dj_tensor *x, const struct tn_op_attrs *a, enum tn_op_id id,
		  int64_t *outer, int64_t *len, int64_t *inner)
{
	tn_op_axis_split(tn_op_get(id), &x->desc, a, outer, len, inner);
}

static double sum_f64(const struct dj_tensor *x, int64_t base, int64_t len, int64_t step)
{
	double acc = 0;

	for (int64_t j = 0; j < len; j++)
		acc += tensor_load_f64(x, base + j * step);
	return acc;
}

static int64_t sum_i64(const struct dj_tensor *x, int64_t base, int64_t len, int64_t step)
{
	uint64_t acc = 0;

	for (int64_t j = 0; j < len; j++)
		acc += (uint64_t)op_load_i64(x, base + j * step);
	return (int64_t)acc;
}

/* Out element (o, i) sits at o * inner + i whatever keepdim says. */
static void reduce(const struct dj_tensor *x, const struct tn_op_attrs *a, enum tn_op_id id,
		   struct dj_tensor *out)
{
	int64_t outer, len, inner;

	split(x, a, id, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			int64_t at = o * inner + i;

			if (!dj_dtype_is_float(x->desc.dtype))
				op_store_i64(out, at, sum_i64(x, base, len, inner));
			else if (id == TN_OP_SUM)
				tensor_store_f64(out, at, sum_f64(x, base, len, inner));
			else /* mean of nothing is NaN, as in torch */
				tensor_store_f64(out, at, sum_f64(x, base, len, inner) / (double)len);
		}
	}
}

OP_CPU(sum)
{
	reduce(&in[0], a, TN_OP_SUM, out);
	return 0;
}

OP_CPU(mean)
{
	reduce(&in[0], a, TN_OP_MEAN, out);
	return 0;
}

OP_CPU(softmax)
{
	int64_t outer, len, inner;
	const struct dj_tensor *x = &in[0];

	split(x, a, TN_OP_SOFTMAX, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			double max = -INFINITY, total = 0;

			/* Subtracting the max keeps exp() in range. */
			for (int64_t j = 0; j < len; j++)
				max = fmax(max, tensor_load_f64(x, base + j * inner));
			for (int64_t j = 0; j < len; j++)
				total += exp(tensor_load_f64(x, base + j * inner) - max);
			for (int64_t j = 0; j < len; j++)
				tensor_store_f64(out, base + j * inner,
						    exp(tensor_load_f64(x, base + j * inner) - max) /
							    total);
		}
	}
	return 0;
}

/*
 * Biased variance (divides by len) as torch.nn.functional.layer_norm; with
 * @p centre 0 the mean is taken as 0, so var is rms_norm's mean square.
 */
static void row_moments(const struct dj_tensor *x, int64_t base, int64_t len, int centre,
			double *mean, double *var)
{
	double m = centre ? sum_f64(x, base, len, 1) / (double)len : 0.0, sq = 0;

	/* Two passes: no cancellation from E[x^2] - E[x]^2. */
	for (int64_t j = 0; j < len; j++) {
		double d = tensor_load_f64(x, base + j) - m;

		sq += d * d;
	}
	*mean = m;
	*var = sq / (double)len;
}

/* layer_norm: (x - mean) / sqrt(var + eps) * w + b; rms_norm: x /
 * sqrt(mean(x^2) + eps) * w. */
static void normalise(const struct dj_tensor *in, int n_in, const struct tn_op_attrs *a,
		      enum tn_op_id id, struct dj_tensor *out)
{
	int64_t rows, len, inner;
	const struct dj_tensor *x = &in[0];
	double eps = tn_op_eps(tn_op_get(id), a);

	split(x, a, id, &rows, &len, &inner);
	for (int64_t r = 0; r < rows; r++) {
		double mean, var;
		int64_t base = r * len;

		row_moments(x, base, len, id == TN_OP_LAYER_NORM, &mean, &var);
		double inv = 1.0 / sqrt(var + eps);

		for (int64_t j = 0; j < len; j++) {
			double y = (tensor_load_f64(x, base + j) - mean) * inv;

			if (n_in > 1)
				y *= tensor_load_f64(&in[1], j);
			if (n_in > 2)
				y += tensor_load_f64(&in[2], j);
			tensor_store_f64(out, base + j, y);
		}
	}
}

OP_CPU(layer_norm)
{
	normalise(in, n_in, a, TN_OP_LAYER_NORM, out);
	return 0;
}

OP_CPU(rms_norm)
{
	normalise(in, n_in, a, TN_OP_RMS_NORM, out);
	return 0;
}

/* NaN beats everything (torch.argmax picks the first NaN); ties keep the
 * first index. Integers compare as integers: int64 beyond 2^53 stays exact. */
static int argmax_better(const struct dj_tensor *x, int64_t i, int64_t best)
{
	if (!dj_dtype_is_float(x->desc.dtype))
		return op_load_i64(x, i) > op_load_i64(x, best);
	double v = tensor_load_f64(x, i), b = tensor_load_f64(x, best);

	return !isnan(b) && (isnan(v) || v > b);
}

OP_CPU(argmax)
{
	int64_t outer, len, inner;
	const struct dj_tensor *x = &in[0];

	split(x, a, TN_OP_ARGMAX, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++) {
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i, best = 0;

			for (int64_t j = 1; j < len; j++)
				if (argmax_better(x, base + j * inner, base + best * inner))
					best = j;
			((int64_t *)out->data)[o * inner + i] = best;
		}
	}
	return 0;
}
