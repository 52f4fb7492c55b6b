/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Elementwise operations. Float types compute in double and round once into
 * the output dtype; integer types compute in int64 with wrapping (unsigned)
 * arithmetic, so overflow is defined and int32 results wrap modulo 2^32.
 */
#include <math.h>

#include "ops_internal.h"

/* Walks the output shape keeping the element offsets of both inputs. */
struct bcast_walk {
	int ndim;
	int64_t shape[DJ_MAX_DIMS];
	int64_t idx[DJ_MAX_DIMS];
	int64_t stride_a[DJ_MAX_DIMS];
	int64_t stride_b[DJ_MAX_DIMS];
	int64_t off_a, off_b;
};

static void walk_init(struct bcast_walk *w, const struct dj_tensor_desc *a,
		      const struct dj_tensor_desc *b, const struct dj_tensor_desc *out)
{
	w->ndim = out->ndim;
	for (int i = 0; i < out->ndim; i++) {
		w->shape[i] = out->shape[i];
		w->idx[i] = 0;
	}
	tn_broadcast_strides(a, out, w->stride_a);
	tn_broadcast_strides(b, out, w->stride_b);
	w->off_a = w->off_b = 0;
}

static void walk_next(struct bcast_walk *w)
{
	for (int d = w->ndim - 1; d >= 0; d--) {
		w->off_a += w->stride_a[d];
		w->off_b += w->stride_b[d];
		if (++w->idx[d] < w->shape[d])
			return;
		w->off_a -= w->stride_a[d] * w->shape[d];
		w->off_b -= w->stride_b[d] * w->shape[d];
		w->idx[d] = 0;
	}
}

enum binary_kind { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

static double binary_f64(enum binary_kind k, double x, double y)
{
	switch (k) {
	case BIN_ADD:
		return x + y;
	case BIN_SUB:
		return x - y;
	case BIN_MUL:
		return x * y;
	default:
		return x / y;
	}
}

static int64_t binary_i64(enum binary_kind k, int64_t x, int64_t y)
{
	uint64_t ux = (uint64_t)x, uy = (uint64_t)y;

	switch (k) {
	case BIN_ADD:
		return (int64_t)(ux + uy);
	case BIN_SUB:
		return (int64_t)(ux - uy);
	default:
		return (int64_t)(ux * uy);
	}
}

static int binary(const struct dj_tensor *in, struct dj_tensor *out, enum binary_kind k)
{
	struct bcast_walk w;
	int64_t n = dj_tensor_numel(&out->desc);
	/* div on integers is true division into float32, so it takes the
	 * double path like the float types. */
	int in_double = k == BIN_DIV || dj_dtype_is_float(in[0].desc.dtype);

	walk_init(&w, &in[0].desc, &in[1].desc, &out->desc);
	for (int64_t i = 0; i < n; i++, walk_next(&w)) {
		if (in_double)
			tensor_store_f64(out, i, binary_f64(k, tensor_load_f64(&in[0], w.off_a),
							       tensor_load_f64(&in[1], w.off_b)));
		else
			op_store_i64(out, i, binary_i64(k, op_load_i64(&in[0], w.off_a),
							op_load_i64(&in[1], w.off_b)));
	}
	return 0;
}

OP_CPU(add)
{
	return binary(in, out, BIN_ADD);
}

OP_CPU(sub)
{
	return binary(in, out, BIN_SUB);
}

OP_CPU(mul)
{
	return binary(in, out, BIN_MUL);
}

OP_CPU(div)
{
	return binary(in, out, BIN_DIV);
}

static void unary_f64(const struct dj_tensor *x, struct dj_tensor *out, double (*f)(double))
{
	int64_t n = dj_tensor_numel(&out->desc);

	for (int64_t i = 0; i < n; i++)
		tensor_store_f64(out, i, f(tensor_load_f64(x, i)));
}

static double relu_f64(double x)
{
	/* NaN propagates as in torch.relu. */
	return x > 0 || isnan(x) ? x : 0.0;
}

OP_CPU(relu)
{
	if (dj_dtype_is_float(in[0].desc.dtype)) {
		unary_f64(&in[0], out, relu_f64);
		return 0;
	}
	int64_t n = dj_tensor_numel(&out->desc);

	for (int64_t i = 0; i < n; i++) {
		int64_t v = op_load_i64(&in[0], i);

		op_store_i64(out, i, v > 0 ? v : 0);
	}
	return 0;
}

static double sigmoid_f64(double x)
{
	/* Both branches avoid exp overflow for large |x|. */
	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	double e = exp(x);

	return e / (1.0 + e);
}

static double gelu_f64(double x)
{
	return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static double silu_f64(double x)
{
	return x * sigmoid_f64(x);
}

OP_CPU(sigmoid)
{
	unary_f64(&in[0], out, sigmoid_f64);
	return 0;
}

OP_CPU(tanh)
{
	unary_f64(&in[0], out, tanh);
	return 0;
}

OP_CPU(exp)
{
	unary_f64(&in[0], out, exp);
	return 0;
}

OP_CPU(log)
{
	unary_f64(&in[0], out, log);
	return 0;
}

OP_CPU(sqrt)
{
	unary_f64(&in[0], out, sqrt);
	return 0;
}

OP_CPU(gelu)
{
	unary_f64(&in[0], out, gelu_f64);
	return 0;
}

OP_CPU(silu)
{
	unary_f64(&in[0], out, silu_f64);
	return 0;
}
