/* SPDX-License-Identifier: BSD-3-Clause */
/* The operation cases shared by the tests that run every operation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "op_cases.h"

/* Shapes chosen odd on purpose; broadcasting, batched and along-dim cases. */
const struct op_case op_cases[] = {
	{"matmul", DJ_DTYPE_FLOAT32, 2, {{2, {7, 13}}, {2, {13, 5}}}, NULL},
	{"matmul", DJ_DTYPE_FLOAT32, 2, {{3, {3, 4, 6}}, {2, {6, 2}}}, NULL},
	{"matmul", DJ_DTYPE_INT64, 2, {{2, {3, 4}}, {2, {4, 3}}}, NULL},
	{"add", DJ_DTYPE_FLOAT32, 2, {{2, {5, 9}}, {1, {9}}}, NULL},
	{"add", DJ_DTYPE_FLOAT16, 2, {{2, {4, 3}}, {2, {4, 1}}}, NULL},
	{"sub", DJ_DTYPE_BFLOAT16, 2, {{2, {3, 5}}, {2, {3, 5}}}, NULL},
	{"mul", DJ_DTYPE_INT32, 2, {{3, {2, 3, 4}}, {1, {4}}}, NULL},
	{"div", DJ_DTYPE_FLOAT32, 2, {{2, {6, 7}}, {2, {6, 7}}}, NULL},
	{"relu", DJ_DTYPE_FLOAT32, 1, {{2, {11, 3}}}, NULL},
	{"sigmoid", DJ_DTYPE_FLOAT32, 1, {{1, {17}}}, NULL},
	{"tanh", DJ_DTYPE_FLOAT16, 1, {{2, {3, 3}}}, NULL},
	{"exp", DJ_DTYPE_FLOAT32, 1, {{1, {10}}}, NULL},
	{"log", DJ_DTYPE_FLOAT32, 1, {{1, {10}}}, NULL},
	{"sqrt", DJ_DTYPE_FLOAT32, 1, {{2, {2, 5}}}, NULL},
	{"sum", DJ_DTYPE_FLOAT32, 1, {{2, {9, 4}}}, NULL},
	{"sum", DJ_DTYPE_INT32, 1, {{3, {2, 3, 4}}}, "{\"dim\": 1, \"keepdim\": true}"},
	{"mean", DJ_DTYPE_FLOAT32, 1, {{2, {5, 6}}}, "{\"dim\": -1}"},
	{"mean", DJ_DTYPE_FLOAT32, 1, {{3, {2, 2, 3}}}, NULL},
	{"transpose", DJ_DTYPE_FLOAT32, 1, {{2, {3, 8}}}, NULL},
	{"transpose", DJ_DTYPE_INT64, 1, {{3, {2, 3, 4}}}, "{\"perm\": [2, 0, 1]}"},
	{"reshape", DJ_DTYPE_FLOAT32, 1, {{2, {4, 6}}}, "{\"shape\": [3, -1]}"},
	{"cat", DJ_DTYPE_FLOAT32, 3, {{2, {2, 3}}, {2, {4, 3}}, {2, {1, 3}}}, "{\"dim\": 0}"},
	{"linear", DJ_DTYPE_FLOAT32, 3, {{2, {5, 8}}, {2, {3, 8}}, {1, {3}}}, NULL},
	{"softmax", DJ_DTYPE_FLOAT32, 1, {{2, {4, 7}}}, "{\"dim\": 1}"},
	{"gelu", DJ_DTYPE_FLOAT32, 1, {{1, {33}}}, NULL},
	{"silu", DJ_DTYPE_BFLOAT16, 1, {{1, {9}}}, NULL},
	{"layer_norm", DJ_DTYPE_FLOAT32, 1, {{2, {3, 16}}}, "{\"eps\": 1e-5}"},
};
const size_t op_case_count = sizeof(op_cases) / sizeof(op_cases[0]);

void op_case_fill(struct dj_tensor *t, unsigned int *seed)
{
	for (int64_t i = 0; i < dj_tensor_numel(&t->desc); i++)
		dj_tensor_store_f64(t, i, 0.25 + (double)(rand_r(seed) % 1000) / 250.0);
}

int op_case_input(const struct op_case *c, int k, struct dj_tensor *t, unsigned int *seed)
{
	memset(t, 0, sizeof(*t));
	t->desc.dtype = c->dtype;
	t->desc.ndim = c->in[k].ndim;
	memcpy(t->desc.shape, c->in[k].shape, sizeof(int64_t) * (size_t)c->in[k].ndim);
	t->mem = DJ_MEM_HOST;
	t->data = malloc(dj_tensor_nbytes(&t->desc) + 1);
	if (t->data == NULL)
		return -ENOMEM;
	op_case_fill(t, seed);
	return 0;
}

int op_cases_cover_every_op(const struct op_case *cases, size_t n)
{
	int all = 1;

	for (int id = 0; id < tn_op_count(); id++) {
		const char *name = tn_op_get((enum tn_op_id)id)->name;
		int seen = 0;

		for (size_t i = 0; i < n; i++)
			seen |= strcmp(cases[i].op, name) == 0;
		if (!seen)
			printf("\noperation %s has no case\n", name);
		all &= seen;
	}
	return all;
}
