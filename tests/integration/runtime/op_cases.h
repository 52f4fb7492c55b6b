/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_OP_CASES_H
#define DJINN_TEST_OP_CASES_H

/*
 * One case per operation and then some (broadcasting, batched and along-dim
 * forms, odd shapes), shared by the tests that run every operation: remote
 * against local (test_remote_ops) and poisoned outputs
 * (test_tenant_isolation).
 */
#include <stddef.h>
#include <stdint.h>

#include "djinn/tensor.h"

struct op_case {
	const char *op;
	enum dj_dtype dtype;
	int n_in;
	struct { int ndim; int64_t shape[4]; } in[3];
	const char *attrs;
};

extern const struct op_case op_cases[];
extern const size_t op_case_count;

/* Fill t with positive values, distinct per element (log, sqrt and div stay
 * defined), drawn from *seed. */
void op_case_fill(struct dj_tensor *t, unsigned int *seed);
/* Input k of case c as a new host tensor (free t->data); 0 or -ENOMEM. */
int op_case_input(const struct op_case *c, int k, struct dj_tensor *t, unsigned int *seed);
/* 1 when every operation of the table has at least one case (the missing
 * ones are printed). */
int op_cases_cover_every_op(const struct op_case *cases, size_t n);

#endif
