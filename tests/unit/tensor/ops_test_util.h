/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_OPS_UTIL_H
#define DJINN_TEST_OPS_UTIL_H

/*
 * Helpers for the operation tests: random tensors, index arithmetic written
 * independently of the library, and comparison with per-dtype tolerances.
 */
#include <stdint.h>

#include "tensor/ops.h"
#include "djinn/tensor.h"

/* Random integer in [lo, hi], from the seeded rand(). */
int64_t tu_rand_range(int64_t lo, int64_t hi);

/* A host tensor owning its data (free with tu_free). */
struct dj_tensor tu_tensor(enum dj_dtype dtype, int ndim, const int64_t *shape);
/* Same, filled with random values: floats in [-2, 2] (already representable
 * in the dtype), integers in [-20, 20]. */
struct dj_tensor tu_random(enum dj_dtype dtype, int ndim, const int64_t *shape);
/* Same, filled from a list of doubles. */
struct dj_tensor tu_from(enum dj_dtype dtype, int ndim, const int64_t *shape,
			 const double *values);
void tu_free(struct dj_tensor *t);

/* A 16-bit float (float16: 5, 10; bfloat16: 8, 7) decoded from its
 * definition, not through the library. */
double tu_decode16(uint16_t v, int exp_bits, int mant_bits);

/* Element value, decoded by the test's own code for every dtype. */
double tu_get(const struct dj_tensor *t, int64_t i);
int64_t tu_get_int(const struct dj_tensor *t, int64_t i);

/* Row-major coordinates <-> flat index. */
void tu_unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *coord);
int64_t tu_ravel(int ndim, const int64_t *shape, const int64_t *coord);

/*
 * Compare a result with expected values computed in double (floats: within
 * the dtype's rounding, see tu_tolerance) or int64 (integers: exact). Prints
 * the first mismatch with @p what and the seed; returns 0 when all match.
 */
int tu_check(const struct dj_tensor *got, const double *want_f, const int64_t *want_i,
	     const char *what);
/* Largest accepted |got - want| for a result of dtype with magnitude |want|. */
double tu_tolerance(enum dj_dtype dtype, double want);

/* Run op on the CPU (allocating the output); asserts success. */
struct dj_tensor tu_run(const char *op, const struct dj_tensor *in, int n_in,
			const struct tn_op_attrs *attrs);

/* A fresh /tmp/djinn-<tag>-XXXXXX (CUnit init/cleanup style: 0 or -1). */
int tu_tmpdir_create(char *dir, size_t len, const char *tag);
int tu_tmpdir_remove(const char *dir);

#endif
