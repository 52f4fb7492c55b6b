/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * matmul and linear. Each batch's operands are first widened into 8-byte
 * scratch matrices (double for float types, wrapping uint64 for integers),
 * then multiplied in i-k-j order so the inner loop runs over contiguous rows.
 */
#include <errno.h>
#include <stdlib.h>

#include "ops_internal.h"

/* A strided matrix view into a tensor. */
struct matrix_view {
	const struct dj_tensor *t;
	int64_t offset;
	int64_t row_stride, col_stride;
	int64_t rows, cols;
};

/* 8-byte scratch: float types use .f, integers .u. */
union wide {
	double f;
	uint64_t u;
};

/*
 * float32 rows, the common case, without tensor_load_f64()'s switch per
 * element: a plain loop the compiler vectorises. The values are the same
 * doubles the generic path makes (float to double is exact).
 */
static void widen_f32_rows(const struct matrix_view *v, union wide *dst)
{
	const float *src = (const float *)v->t->data + v->offset;

	for (int64_t r = 0; r < v->rows; r++)
		for (int64_t c = 0; c < v->cols; c++)
			dst[r * v->cols + c].f = src[r * v->row_stride + c];
}

static void widen(const struct matrix_view *v, int is_float, union wide *dst)
{
	if (v->t->desc.dtype == DJ_DTYPE_FLOAT32 && v->col_stride == 1) {
		widen_f32_rows(v, dst);
		return;
	}
	for (int64_t r = 0; r < v->rows; r++) {
		for (int64_t c = 0; c < v->cols; c++) {
			int64_t at = v->offset + r * v->row_stride + c * v->col_stride;

			if (is_float)
				dst[r * v->cols + c].f = tensor_load_f64(v->t, at);
			else
				dst[r * v->cols + c].u = (uint64_t)op_load_i64(v->t, at);
		}
	}
}

struct gemm_scratch {
	union wide *a, *b, *row;
	int is_float;
};

static int scratch_alloc(struct gemm_scratch *s, int64_t m, int64_t k, int64_t n, int is_float)
{
	/* Sizes are bounded by valid tensors, so the sum cannot overflow. */
	size_t count = (size_t)(m * k + k * n + n);

	s->a = malloc((count > 0 ? count : 1) * sizeof(union wide));
	if (s->a == NULL)
		return -ENOMEM;
	s->b = s->a + m * k;
	s->row = s->b + k * n;
	s->is_float = is_float;
	return 0;
}

/* row += x * brow: separate loops per type so each vectorises. */
static void axpy_f64(union wide *restrict row, double x, const union wide *restrict brow,
		     int64_t n)
{
	for (int64_t j = 0; j < n; j++)
		row[j].f += x * brow[j].f;
}

static void axpy_u64(union wide *restrict row, uint64_t x, const union wide *restrict brow,
		     int64_t n)
{
	for (int64_t j = 0; j < n; j++)
		row[j].u += x * brow[j].u;
}

/* out[out_offset + i * n + j] = sum_k a[i][k] * b[k][j] (+ bias[j]). */
static void gemm(struct gemm_scratch *s, const struct matrix_view *a, const struct matrix_view *b,
		 const struct dj_tensor *bias, struct dj_tensor *out, int64_t out_offset)
{
	int64_t m = a->rows, k = a->cols, n = b->cols;

	widen(a, s->is_float, s->a);
	widen(b, s->is_float, s->b);
	for (int64_t i = 0; i < m; i++) {
		for (int64_t j = 0; j < n; j++)
			s->row[j].u = 0; /* also 0.0 */
		for (int64_t p = 0; p < k; p++) {
			if (s->is_float)
				axpy_f64(s->row, s->a[i * k + p].f, s->b + p * n, n);
			else
				axpy_u64(s->row, s->a[i * k + p].u, s->b + p * n, n);
		}
		for (int64_t j = 0; j < n; j++) {
			int64_t at = out_offset + i * n + j;

			if (s->is_float)
				tensor_store_f64(out, at, s->row[j].f +
						    (bias ? tensor_load_f64(bias, j) : 0.0));
			else
				op_store_i64(out, at, (int64_t)(s->row[j].u +
						(bias ? (uint64_t)op_load_i64(bias, j) : 0)));
		}
	}
}

OP_CPU(matmul)
{
	struct tn_op_matmul_plan p;
	struct gemm_scratch s;

	tn_op_matmul_plan(&in[0].desc, &in[1].desc, &p);
	if (scratch_alloc(&s, p.m, p.k, p.n, dj_dtype_is_float(in[0].desc.dtype)) != 0)
		return -ENOMEM;
	struct matrix_view va = {.t = &in[0], .row_stride = p.k, .col_stride = 1,
				 .rows = p.m, .cols = p.k};
	struct matrix_view vb = {.t = &in[1], .row_stride = p.n, .col_stride = 1,
				 .rows = p.k, .cols = p.n};

	for (int64_t b = 0; b < p.batch; b++) {
		va.offset = tn_op_batch_offset(p.batch_ndim, p.batch_shape, p.a_batch_stride, b);
		vb.offset = tn_op_batch_offset(p.batch_ndim, p.batch_shape, p.b_batch_stride, b);
		gemm(&s, &va, &vb, NULL, out, b * p.m * p.n);
	}
	free(s.a);
	return 0;
}

/* Outputs computed together by linear_f32: independent sums the core
 * overlaps, each still added in k order. */
#define LINEAR_LANES 4

/*
 * float32 linear without widening: out[i][j] = sum over p in order of
 * x[i][p] * W[j][p] in double, plus bias, rounded once. Exactly what gemm()
 * computes (a zeroed double, the products added in p order, then the bias),
 * but reading W's rows where they lie instead of copying W transposed into
 * a scratch matrix first, which cost more than the products themselves at
 * decode (one row of x against a vocabulary-sized W: 5 ms of 5.2 for [1,256]
 * x [4096,256] on the dev VM). LINEAR_LANES outputs at a time keep the adds'
 * latency hidden.
 */
static void linear_f32(const float *x, const float *w, const float *bias, float *out,
		       int64_t m, int64_t k, int64_t n)
{
	for (int64_t i = 0; i < m; i++) {
		const float *xi = x + i * k;
		int64_t j = 0;

		for (; j + LINEAR_LANES <= n; j += LINEAR_LANES) {
			double acc[LINEAR_LANES] = {0};

			for (int64_t p = 0; p < k; p++)
				for (int l = 0; l < LINEAR_LANES; l++)
					acc[l] += (double)xi[p] * (double)w[(j + l) * k + p];
			for (int l = 0; l < LINEAR_LANES; l++)
				out[i * n + j + l] = (float)(acc[l] + (bias ? (double)bias[j + l] : 0.0));
		}
		for (; j < n; j++) {
			double acc = 0.0;

			for (int64_t p = 0; p < k; p++)
				acc += (double)xi[p] * (double)w[j * k + p];
			out[i * n + j] = (float)(acc + (bias ? (double)bias[j] : 0.0));
		}
	}
}

/* x [..., k] @ W^T, W [n, k]: W read transposed through its strides. */
OP_CPU(linear)
{
	struct gemm_scratch s;
	const struct dj_tensor_desc *w = &in[1].desc;
	int64_t n = w->shape[0], k = w->shape[1];
	int64_t m = k > 0 ? dj_tensor_numel(&in[0].desc) / k : 0;

	if (k == 0) /* rows are undefined; the result is bias (or zeros) per row */
		m = dj_tensor_numel(&out->desc) / (n > 0 ? n : 1);
	if (k > 0 && w->dtype == DJ_DTYPE_FLOAT32 && in[0].desc.dtype == DJ_DTYPE_FLOAT32 &&
	    out->desc.dtype == DJ_DTYPE_FLOAT32 &&
	    (n_in < 3 || in[2].desc.dtype == DJ_DTYPE_FLOAT32)) {
		linear_f32(in[0].data, in[1].data, n_in > 2 ? in[2].data : NULL, out->data, m, k, n);
		return 0;
	}
	if (scratch_alloc(&s, m, k, n, dj_dtype_is_float(w->dtype)) != 0)
		return -ENOMEM;
	struct matrix_view vx = {.t = &in[0], .row_stride = k, .col_stride = 1,
				 .rows = m, .cols = k};
	struct matrix_view vw = {.t = &in[1], .row_stride = 1, .col_stride = k,
				 .rows = k, .cols = n};

	gemm(&s, &vx, &vw, n_in > 2 ? &in[2] : NULL, out, 0);
	free(s.a);
	return 0;
}
