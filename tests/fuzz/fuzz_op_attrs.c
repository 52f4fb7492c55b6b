/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: operation attributes as EXECUTE carries them, and shape
 * inference, for every operation (op_fuzz.h gives the input layout). Checks:
 * accepted attributes survive tn_op_attrs_to_json() and back unchanged; a
 * failure always names its problem; an inferred output is a valid tensor;
 * and where inference accepts small inputs the CPU reference runs on them
 * (buffers of exactly the inferred sizes, so a kernel reading or writing
 * outside what inference promised is an ASan report) and must succeed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "djinn/common.h"
#include "tensor/ops.h"
#include "op_fuzz.h"

/* CPU runs only where inputs and output are this small, and the work
 * (output elements times the largest input) stays under FZ_WORK_MAX. */
#define FZ_BYTES_MAX (64u << 10)
#define FZ_WORK_MAX (1ull << 22)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what, const char *detail)
{
	if (!ok) {
		fprintf(stderr, "fuzz_op_attrs: invariant broken: %s (%s)\n", what,
			detail != NULL ? detail : "");
		abort();
	}
}

static void attrs_roundtrip(const struct tn_op *op, const struct tn_op_attrs *a)
{
	struct tn_op_attrs b;
	cJSON *j1 = tn_op_attrs_to_json(op, a), *j2 = NULL;
	char *t1 = NULL, *t2 = NULL, err[TN_OP_ERR_LEN] = "";

	if (j1 == NULL)
		return;
	tn_op_attrs_init(&b);
	check(tn_op_attrs_from_json(op, j1, &b, err, sizeof(err)) == 0,
	      "attributes written by tn_op_attrs_to_json are refused", err);
	j2 = tn_op_attrs_to_json(op, &b);
	t1 = cJSON_PrintUnformatted(j1);
	t2 = j2 != NULL ? cJSON_PrintUnformatted(j2) : NULL;
	if (t1 != NULL && t2 != NULL)
		check(strcmp(t1, t2) == 0, "attributes changed in a JSON round trip", t1);
	cJSON_free(t1);
	cJSON_free(t2);
	cJSON_Delete(j1);
	cJSON_Delete(j2);
}

static int small_enough(const struct dj_tensor_desc *in, int n_in,
			const struct dj_tensor_desc *out)
{
	int64_t most = 1;

	for (int i = 0; i < n_in; i++) {
		if (dj_tensor_nbytes(&in[i]) > FZ_BYTES_MAX)
			return 0;
		if (dj_tensor_numel(&in[i]) > most)
			most = dj_tensor_numel(&in[i]);
	}
	return dj_tensor_nbytes(out) <= FZ_BYTES_MAX &&
	       (uint64_t)dj_tensor_numel(out) * (uint64_t)most <= FZ_WORK_MAX;
}

/* The CPU reference on inputs of exactly their sizes, filled with a pattern. */
static void run_cpu(const struct tn_op *op, const struct dj_tensor_desc *in, int n_in,
		    const struct tn_op_attrs *a, const struct dj_tensor_desc *expect)
{
	struct dj_tensor t[TN_OP_MAX_INPUTS], out = {0};
	char err[TN_OP_ERR_LEN] = "";
	int rc;

	for (int i = 0; i < n_in; i++) {
		size_t n = dj_tensor_nbytes(&in[i]);
		int index = (op->index_inputs >> i) & 1u;

		t[i] = (struct dj_tensor){.desc = in[i], .mem = DJ_MEM_HOST, .data = malloc(n ? n : 1)};
		/* Indices are zeros, the one value valid for any non-empty
		 * table: a pattern would mostly point past its rows. */
		for (size_t b = 0; t[i].data != NULL && b < n; b++)
			((uint8_t *)t[i].data)[b] = index ? 0 : (uint8_t)(b * 37 + (size_t)i);
	}
	rc = tn_op_cpu_alloc(op, t, n_in, a, &out, err, sizeof(err));
	/* Inference sees shapes, not values: an operation with index inputs
	 * may still refuse an index its table lacks (zero, for an empty one). */
	check(rc == 0 || rc == -ENOMEM || (rc == -ERANGE && op->index_inputs != 0),
	      "the CPU reference refuses what inference accepted", err);
	if (rc == 0) {
		check(dj_tensor_desc_equal(&out.desc, expect), "CPU output differs from inference", err);
		dj_tensor_free_host(&out);
	}
	for (int i = 0; i < n_in; i++)
		free(t[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dj_tensor_desc in[TN_OP_MAX_INPUTS], out;
	const struct tn_op *op;
	struct tn_op_attrs a;
	cJSON *json = NULL;
	char err[TN_OP_ERR_LEN] = "";
	size_t off = 2;
	int n_in, rc;

	if (size < 2)
		return 0;
	dj_log_set_level(DJ_LOG_ERR);
	op = tn_op_get((enum tn_op_id)(data[0] % tn_op_count()));
	n_in = data[1] % (TN_OP_MAX_INPUTS + 1);
	for (int i = 0; i < n_in; i++)
		if (fz_op_get_desc(data, size, &off, &in[i]) != 0)
			return 0;
	if (off < size) {
		json = cJSON_ParseWithLength((const char *)data + off, size - off);
		if (json == NULL)
			return 0;
	}
	tn_op_attrs_init(&a);
	rc = tn_op_attrs_from_json(op, json, &a, err, sizeof(err));
	cJSON_Delete(json);
	if (rc != 0) {
		check(rc < 0 && err[0] != '\0', "attribute failure without a message", op->name);
		return 0;
	}
	attrs_roundtrip(op, &a);
	err[0] = '\0';
	rc = tn_op_infer(op, in, n_in, &a, &out, err, sizeof(err));
	if (rc != 0) {
		check(rc < 0 && err[0] != '\0', "inference failure without a message", op->name);
		return 0;
	}
	check(dj_tensor_desc_check(&out) == 0, "inferred an invalid tensor", op->name);
	if (small_enough(in, n_in, &out))
		run_cpu(op, in, n_in, &a, &out);
	return 0;
}
