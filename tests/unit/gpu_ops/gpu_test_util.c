/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the GPU operation tests share: seeded random host tensors, device
 * copies (poisoned outputs, optionally misaligned operands), the comparison
 * with the CPU reference and its per-dtype tolerances, the worst error seen
 * per op and dtype, and the main that skips (77) without a GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "harness.h"
#include "gpu_test_util.h"

struct djg_ops *gpu;
uint64_t rng_state;
uintptr_t address_bits;
int misalign;
double worst[TN_OP_COUNT][DJ_DTYPE_COUNT];
int cases[TN_OP_COUNT][DJ_DTYPE_COUNT];

/* xorshift64*: one state per thread (the global one for the main thread). */
uint64_t rng_step(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1DULL;
}

uint64_t rng_next(void)
{
	return rng_step(&rng_state);
}

double rng_uniform_with(uint64_t *state, double lo, double hi)
{
	return lo + (hi - lo) * (double)(rng_step(state) >> 11) / 9007199254740992.0;
}

double tolerance(enum dj_dtype dtype)
{
	switch (dtype) {
	case DJ_DTYPE_FLOAT32: return 3e-5;
	case DJ_DTYPE_FLOAT16: return 2e-3;
	case DJ_DTYPE_BFLOAT16: return 1.6e-2;
	default: return 0.0;
	}
}

void set_value(struct dj_tensor *t, int64_t i, double v)
{
	switch (t->desc.dtype) {
	case DJ_DTYPE_FLOAT32: ((float *)t->data)[i] = (float)v; break;
	case DJ_DTYPE_FLOAT16: ((uint16_t *)t->data)[i] = dj_double_to_half(v); break;
	case DJ_DTYPE_BFLOAT16: ((uint16_t *)t->data)[i] = dj_double_to_bf16(v); break;
	case DJ_DTYPE_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
	default: ((int64_t *)t->data)[i] = (int64_t)v; break;
	}
}

double get_value(const struct dj_tensor *t, int64_t i)
{
	switch (t->desc.dtype) {
	case DJ_DTYPE_FLOAT32: return ((const float *)t->data)[i];
	case DJ_DTYPE_FLOAT16: return dj_half_to_float(((const uint16_t *)t->data)[i]);
	case DJ_DTYPE_BFLOAT16: return dj_bf16_to_float(((const uint16_t *)t->data)[i]);
	case DJ_DTYPE_INT32: return ((const int32_t *)t->data)[i];
	default: return (double)((const int64_t *)t->data)[i];
	}
}

/* Value ranges: "any" in [-2, 2] (integers [-20, 20]), "positive" for log and
 * sqrt, "divisor" keeps away from zero. */

double random_value(uint64_t *rng, enum dj_dtype dtype, enum range r)
{
	int is_int = !dj_dtype_is_float(dtype);
	double v = is_int ? (double)(int64_t)rng_uniform_with(rng, -20.0, 21.0)
			  : rng_uniform_with(rng, -2.0, 2.0);

	if (r == POSITIVE)
		return is_int ? fabs(v) + 1 : rng_uniform_with(rng, 0.05, 4.0);
	if (r == DIVISOR && fabs(v) < (is_int ? 1 : 0.25))
		return is_int ? 7 : 0.5;
	return v;
}

struct dj_tensor host_tensor(enum dj_dtype dtype, int ndim, const int64_t *shape)
{
	struct dj_tensor t = {.desc = {.dtype = dtype, .ndim = ndim}, .mem = DJ_MEM_HOST};

	memcpy(t.desc.shape, shape, sizeof(int64_t) * ndim);
	t.data = malloc(dj_tensor_nbytes(&t.desc) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t.data);
	return t;
}

/* Any thread: no CUnit assertion (CUnit is not thread safe). */
struct dj_tensor host_random_with(uint64_t *rng, enum dj_dtype dtype, int ndim,
					 const int64_t *shape, enum range r)
{
	struct dj_tensor t = {.desc = {.dtype = dtype, .ndim = ndim}, .mem = DJ_MEM_HOST};

	memcpy(t.desc.shape, shape, sizeof(int64_t) * ndim);
	t.data = malloc(dj_tensor_nbytes(&t.desc) + 1);
	if (t.data == NULL)
		abort();
	for (int64_t i = 0; i < dj_tensor_numel(&t.desc); i++)
		set_value(&t, i, random_value(rng, dtype, r));
	return t;
}

struct dj_tensor host_random(enum dj_dtype dtype, int ndim, const int64_t *shape,
				    enum range r)
{
	return host_random_with(&rng_state, dtype, ndim, shape, r);
}

int upload_with(struct djg_ops *g, const struct dj_tensor *h, struct dj_tensor *d)
{
	size_t bytes = dj_tensor_nbytes(&h->desc);
	int rc;

	*d = (struct dj_tensor){.desc = h->desc, .mem = DJ_MEM_GPU};
	rc = djg_ops_alloc(g, bytes, &d->data);
	return rc ? rc : djg_ops_copy_in(g, d->data, h->data, bytes);
}

size_t misalign_bytes(const struct dj_tensor_desc *desc)
{
	return (size_t)misalign * dj_dtype_size(desc->dtype);
}

/* Device memory for @p desc, poisoned (see poison()). */
struct dj_tensor gpu_tensor(const struct dj_tensor_desc *desc)
{
	struct dj_tensor g = {.desc = *desc, .mem = DJ_MEM_GPU};
	size_t bytes = dj_tensor_nbytes(desc), shift = misalign_bytes(desc);
	void *base;

	CU_ASSERT_EQUAL_FATAL(djg_ops_alloc(gpu, bytes + shift, &base), 0);
	g.data = base ? (char *)base + shift : NULL;
	if (!misalign)
		address_bits |= (uintptr_t)g.data;
	return g;
}

void gpu_release(struct dj_tensor *g)
{
	if (g->data)
		djg_ops_free(gpu, (char *)g->data - misalign_bytes(&g->desc));
}

struct dj_tensor to_gpu(const struct dj_tensor *h)
{
	struct dj_tensor g = gpu_tensor(&h->desc);

	CU_ASSERT_EQUAL_FATAL(djg_ops_copy_in(gpu, g.data, h->data,
						 dj_tensor_nbytes(&h->desc)), 0);
	return g;
}

/* Floats get NaN bits, integers an unlikely pattern: an unwritten element
 * never passes for a result. */
void poison(struct dj_tensor *g)
{
	size_t bytes = dj_tensor_nbytes(&g->desc);
	void *junk = malloc(bytes + 1);

	CU_ASSERT_PTR_NOT_NULL_FATAL(junk);
	memset(junk, dj_dtype_is_float(g->desc.dtype) ? 0xff : 0xa5, bytes);
	CU_ASSERT_EQUAL(djg_ops_copy_in(gpu, g->data, junk, bytes), 0);
	free(junk);
}

/* Index of the first element out of tolerance, or -1; *worst_ratio gets the
 * largest error / allowed seen. Thread safe. */
int64_t first_mismatch(const struct dj_tensor *got, const struct dj_tensor *want,
			      double *worst_ratio)
{
	enum dj_dtype dtype = want->desc.dtype;
	size_t esize = dj_dtype_size(dtype);
	int64_t n = dj_tensor_numel(&want->desc);
	double tol = tolerance(dtype), scale = 0;

	*worst_ratio = 0;
	for (int64_t i = 0; i < n; i++)
		if (isfinite(get_value(want, i)))
			scale = fmax(scale, fabs(get_value(want, i)));
	for (int64_t i = 0; i < n; i++) {
		double g = get_value(got, i), w = get_value(want, i);
		double err = fabs(g - w), allowed = tol * (fabs(w) + scale);
		int ok = isnan(w) ? isnan(g) : isinf(w) ? g == w : err <= allowed;

		if (!dj_dtype_is_float(dtype)) /* exact, compared as integers */
			ok = memcmp((char *)got->data + i * esize, (char *)want->data + i * esize,
				    esize) == 0;
		if (!ok)
			return i;
		if (allowed > 0 && isfinite(w))
			*worst_ratio = fmax(*worst_ratio, err / allowed);
	}
	return -1;
}

int elements_match(const struct dj_tensor *got, const struct dj_tensor *want,
			  const char *what, enum tn_op_id id)
{
	enum dj_dtype dtype = want->desc.dtype;
	double ratio;
	int64_t bad = first_mismatch(got, want, &ratio);

	if (bad >= 0) {
		printf("\n  %s: element %lld: gpu %.9g, cpu %.9g (tolerance %.3g of |cpu| + max|cpu|; "
		       "replay with DJ_TEST_SEED=%u)\n",
		       what, (long long)bad, get_value(got, bad), get_value(want, bad),
		       tolerance(dtype), dj_test_seed());
		return 0;
	}
	worst[id][dtype] = fmax(worst[id][dtype], ratio);
	cases[id][dtype]++;
	return 1;
}

void free_gpu_tensors(struct dj_tensor *t, int n)
{
	for (int i = 0; i < n; i++)
		gpu_release(&t[i]);
}

/* Run @p name on the CPU and the GPU with the same inputs; compare. */
void check_op(const char *name, const struct dj_tensor *in, int n_in,
		     const struct tn_op_attrs *attrs, const char *what)
{
	const struct tn_op *op = tn_op_find(name);
	struct dj_tensor want, got, dev_in[TN_OP_MAX_INPUTS], dev_out;
	char err[TN_OP_ERR_LEN] = "";
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(op);
	rc = tn_op_cpu_alloc(op, in, n_in, attrs, &want, err, sizeof(err));
	if (rc != 0)
		printf("\n  %s: CPU reference failed: %s\n", what, err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	for (int i = 0; i < n_in; i++)
		dev_in[i] = to_gpu(&in[i]);
	dev_out = gpu_tensor(&want.desc);
	poison(&dev_out);
	rc = djg_ops_run(gpu, op, dev_in, n_in, attrs, &dev_out, err, sizeof(err));
	if (rc != 0)
		printf("\n  %s: GPU run failed: %s (%s)\n", what, err, dj_strerror(rc));
	CU_ASSERT_EQUAL(rc, 0);
	got = host_tensor(want.desc.dtype, want.desc.ndim, want.desc.shape);
	CU_ASSERT_EQUAL(djg_ops_copy_out(gpu, got.data, dev_out.data,
					    dj_tensor_nbytes(&want.desc)), 0);
	if (rc == 0)
		CU_ASSERT(elements_match(&got, &want, what, op->id));
	free_gpu_tensors(dev_in, n_in);
	free_gpu_tensors(&dev_out, 1);
	free(got.data);
	dj_tensor_free_host(&want);
}

void free_host(struct dj_tensor *t, int n)
{
	for (int i = 0; i < n; i++)
		free(t[i].data);
}

void attrs_default(struct tn_op_attrs *a)
{
	tn_op_attrs_init(a);
}

void label(char *buf, size_t len, const char *op, enum dj_dtype dtype,
		  const struct dj_tensor_desc *a, const struct dj_tensor_desc *b)
{
	char sa[96], sb[96] = "";

	dj_shape_format(a, sa, sizeof(sa));
	if (b)
		dj_shape_format(b, sb, sizeof(sb));
	snprintf(buf, len, "%s %s %s %s", op, dj_dtype_name(dtype), sa, sb);
}

struct dj_tensor gpu_random(enum dj_dtype dtype, int ndim, const int64_t *shape)
{
	struct dj_tensor h = host_random(dtype, ndim, shape, ANY);
	struct dj_tensor g = to_gpu(&h);

	free(h.data);
	return g;
}

void expect_error(const struct tn_op *op, struct dj_tensor *in, int n_in,
			 const struct tn_op_attrs *attrs, int want_rc, const char *want_text)
{
	char err[TN_OP_ERR_LEN] = "";
	struct dj_tensor out = {.mem = DJ_MEM_GPU, .data = (void *)1};
	int rc = djg_ops_execute(gpu, op, in, n_in, attrs, &out, err, sizeof(err));

	CU_ASSERT_EQUAL(rc, want_rc);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want_text));
	CU_ASSERT_PTR_EQUAL(out.data, (void *)1); /* untouched on failure */
	if (rc != want_rc || !strstr(err, want_text))
		printf("\n  got %d \"%s\", wanted %d \"%s\"\n", rc, err, want_rc, want_text);
}

static void print_summary(void)
{
	printf("\n%-28s %-9s %6s %10s %9s\n", "op", "dtype", "cases", "worst/tol", "tol");
	for (int op = 0; op < TN_OP_COUNT; op++)
		for (int d = 0; d < DJ_DTYPE_COUNT; d++)
			if (cases[op][d])
				printf("%-28s %-9s %6d %10.3f %9.1e\n", tn_op_get(op)->name,
				       dj_dtype_name(d), cases[op][d], worst[op][d],
				       tolerance(d));
	printf("device allocations aligned to %lu bytes\n",
	       (unsigned long)(address_bits & -address_bits));
}

static int suite_init(void)
{
	return djg_ops_create(0, &gpu) == 0 ? 0 : 1;
}

static int suite_cleanup(void)
{
	djg_ops_destroy(gpu);
	gpu = NULL;
	return 0;
}

int gpu_test_main(int argc, char **argv, const char *suite, const struct dj_test_case *tests)
{
	int devices = djg_ops_device_count(), rc;

	if (devices <= 0)
		dj_test_skip("no CUDA GPU here (or a build without CUDA): the GPU operations "
			     "run on the device machine, scripts/ops-device-check.sh");
	rng_state = (uint64_t)dj_test_seed() * 0x9E3779B97F4A7C15ULL | 1;
	dj_test_add_suite(suite, suite_init, suite_cleanup, tests);
	rc = dj_test_main(argc, argv);
	print_summary();
	return rc;
}
