/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_GPU_TEST_UTIL_H
#define DJINN_TEST_GPU_TEST_UTIL_H

/*
 * Shared by the GPU operation tests (test_gpu_ops, test_gpu_ops_transformer):
 * every helper compares the GPU with the CPU reference. Tolerances, relative
 * to |want| + max|want| of the result (the second term absorbs cancellation
 * in sums and products): float32 3e-5, float16 2e-3 (2 ulp), bfloat16 1.6e-2
 * (2 ulp), integers exact.
 */
#include <stddef.h>
#include <stdint.h>

#include "djinn/tensor.h"
#include "gpu/ops/gpu_ops.h"
#include "tensor/ops.h"
#include "harness.h"

/* The main thread's context, made by the suite's init. */
extern struct djg_ops *gpu;
/* xorshift64* state of the main thread, seeded from dj_test_seed(). */
extern uint64_t rng_state;
/* OR of every device address handed out (its lowest set bit: the worst
 * alignment seen; linear fuses its bias only on 256-byte aligned operands). */
extern uintptr_t address_bits;
/* Elements by which main-thread test tensors sit past the start of their
 * allocation: 1 makes every operand misaligned, for the scalar fallbacks. */
extern int misalign;
/* Worst error seen per op and dtype, as a fraction of the tolerance. */
extern double worst[TN_OP_COUNT][DJ_DTYPE_COUNT];
extern int cases[TN_OP_COUNT][DJ_DTYPE_COUNT];

static const enum dj_dtype all_dtypes[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16,
					   DJ_DTYPE_BFLOAT16, DJ_DTYPE_INT32, DJ_DTYPE_INT64};
static const enum dj_dtype float_dtypes[] = {DJ_DTYPE_FLOAT32, DJ_DTYPE_FLOAT16,
					     DJ_DTYPE_BFLOAT16};
#define N_ALL (int)(sizeof(all_dtypes) / sizeof(all_dtypes[0]))
#define N_FLOAT (int)(sizeof(float_dtypes) / sizeof(float_dtypes[0]))

/* Value ranges: "any" in [-2, 2] (integers [-20, 20]), "positive" for log and
 * sqrt, "divisor" keeps away from zero. */
enum range { ANY, POSITIVE, DIVISOR };

struct shape {
	int ndim;
	int64_t dims[DJ_MAX_DIMS];
};

uint64_t rng_step(uint64_t *state);
uint64_t rng_next(void);
double rng_uniform_with(uint64_t *state, double lo, double hi);
double tolerance(enum dj_dtype dtype);
void set_value(struct dj_tensor *t, int64_t i, double v);
double get_value(const struct dj_tensor *t, int64_t i);
double random_value(uint64_t *rng, enum dj_dtype dtype, enum range r);

/* Host tensors owning their data (free(t.data)); any thread for _with. */
struct dj_tensor host_tensor(enum dj_dtype dtype, int ndim, const int64_t *shape);
struct dj_tensor host_random_with(uint64_t *rng, enum dj_dtype dtype, int ndim,
				  const int64_t *shape, enum range r);
struct dj_tensor host_random(enum dj_dtype dtype, int ndim, const int64_t *shape,
			     enum range r);
void free_host(struct dj_tensor *t, int n);

/* Device tensors of the main context (misaligned by `misalign` elements). */
int upload_with(struct djg_ops *g, const struct dj_tensor *h, struct dj_tensor *d);
size_t misalign_bytes(const struct dj_tensor_desc *desc);
struct dj_tensor gpu_tensor(const struct dj_tensor_desc *desc);
void gpu_release(struct dj_tensor *g);
void free_gpu_tensors(struct dj_tensor *t, int n);
struct dj_tensor to_gpu(const struct dj_tensor *h);
struct dj_tensor gpu_random(enum dj_dtype dtype, int ndim, const int64_t *shape);
/* Floats get NaN bits, integers an unlikely pattern. */
void poison(struct dj_tensor *g);

/* Index of the first element out of tolerance, or -1 (thread safe). */
int64_t first_mismatch(const struct dj_tensor *got, const struct dj_tensor *want,
		       double *worst_ratio);
/* 1 when within tolerance (and counted in worst/cases); else prints why. */
int elements_match(const struct dj_tensor *got, const struct dj_tensor *want,
		   const char *what, enum tn_op_id id);
/* Run @p name on the CPU and the GPU (into a poisoned output); compare. */
void check_op(const char *name, const struct dj_tensor *in, int n_in,
	      const struct tn_op_attrs *attrs, const char *what);
/* djg_ops_execute must fail with want_rc and a message holding want_text,
 * allocating nothing. */
void expect_error(const struct tn_op *op, struct dj_tensor *in, int n_in,
		  const struct tn_op_attrs *attrs, int want_rc, const char *want_text);

void attrs_default(struct tn_op_attrs *a);
void label(char *buf, size_t len, const char *op, enum dj_dtype dtype,
	   const struct dj_tensor_desc *a, const struct dj_tensor_desc *b);

/* Skip (77) without a GPU; else seed, run @p tests as one suite on a fresh
 * context, print the worst error per op and dtype. */
int gpu_test_main(int argc, char **argv, const char *suite, const struct dj_test_case *tests);

#endif
