/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote execution end to end, in one process: djinn-dp's runtime behind a
 * real control-plane server on loopback, driven through the client API.
 * Every operation runs remotely on random inputs and must equal the same
 * operation run locally; chains stay resident; bad requests get named
 * errors and the server keeps serving; 1000 operations with 100 in flight;
 * every operation writes every byte of its output (poisoned twice: outputs
 * are not zeroed, see docs/CONTROL.md).
 *
 *   test_remote_ops          host runtime: results bit-identical to local
 *   test_remote_ops gpu      GPU runtime (CUDA operations): within the
 *                            per-dtype tolerances of docs/GPU_OPS.md;
 *                            skipped where there is no GPU
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "gpu/ops/gpu_ops.h"
#include "tensor/ops.h"
#include "runtime/runtime.h"
#include "harness.h"

static struct rt_runtime *rt;
static struct ctl_server *server;
static struct dj_client *client;
static struct dj_conn *conn;
static unsigned int seed;
static const char *gpu_spec = "none";

static int suite_init(void)
{
	struct rt_config rcfg = {.gpu = gpu_spec, .session_limit = 256u << 20};
	struct ctl_server_config scfg;
	struct dj_client_options copts;

	seed = dj_test_seed();
	if (rt_create(&rcfg, &rt) != 0)
		return -1;
	ctl_server_config_init(&scfg);
	scfg.port = 0;
	if (ctl_server_create(&scfg, rt_backend(), rt, &server) != 0 ||
	    ctl_server_start(server) != 0)
		return -1;
	dj_client_options_init(&copts);
	copts.port = ctl_server_port(server);
	copts.path = DJ_PATH_TCP;
	if (dj_client_create(&copts, &client) != 0 || dj_connect(client, &conn) != 0)
		return -1;
	return 0;
}

static int suite_cleanup(void)
{
	dj_disconnect(conn);
	dj_client_destroy(client);
	ctl_server_destroy(server);
	rt_destroy(rt);
	return 0;
}

struct op_case {
	const char *op;
	enum dj_dtype dtype;
	int n_in;
	struct { int ndim; int64_t shape[4]; } in[3];
	const char *attrs;
};

/* Shapes chosen odd on purpose; broadcasting, batched and along-dim cases. */
static const struct op_case cases[] = {
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
	/* fill() gives indices 0..4: 6 rows hold them all */
	{"embedding", DJ_DTYPE_FLOAT32, 2, {{2, {3, 5}}, {2, {6, 4}}}, NULL},
	{"embedding", DJ_DTYPE_BFLOAT16, 2, {{1, {7}}, {2, {5, 9}}}, NULL},
	{"narrow", DJ_DTYPE_FLOAT32, 1, {{3, {2, 6, 3}}}, "{\"dim\": 1, \"start\": -4, \"length\": 3}"},
	{"scaled_dot_product_attention", DJ_DTYPE_FLOAT32, 3,
	 {{4, {2, 3, 5, 8}}, {4, {2, 3, 7, 8}}, {4, {2, 3, 7, 4}}}, "{\"is_causal\": true}"},
	{"scaled_dot_product_attention", DJ_DTYPE_FLOAT16, 3,
	 {{3, {4, 1, 16}}, {3, {4, 9, 16}}, {3, {1, 9, 16}}}, "{\"scale\": 0.2}"},
	{"slice_write", DJ_DTYPE_FLOAT32, 2, {{3, {2, 8, 4}}, {3, {2, 3, 4}}},
	 "{\"dim\": 1, \"start\": 5}"},
	{"argmax", DJ_DTYPE_FLOAT32, 1, {{2, {5, 7}}}, "{\"dim\": -1}"},
	{"argmax", DJ_DTYPE_INT32, 1, {{3, {2, 3, 4}}}, NULL},
	{"rms_norm", DJ_DTYPE_FLOAT32, 2, {{2, {3, 16}}, {1, {16}}}, NULL},
	{"rms_norm", DJ_DTYPE_BFLOAT16, 1, {{3, {2, 2, 8}}}, "{\"eps\": 0.01}"},
};

/* Positive values (log, sqrt and div stay defined), distinct per element. */
static void fill(struct dj_tensor *t)
{
	for (int64_t i = 0; i < dj_tensor_numel(&t->desc); i++)
		dj_tensor_store_f64(t, i, 0.25 + (double)(rand_r(&seed) % 1000) / 250.0);
}

static int make_input(const struct op_case *c, int k, struct dj_tensor *t)
{
	memset(t, 0, sizeof(*t));
	t->desc.dtype = c->dtype;
	if (tn_op_find(c->op)->index_inputs & (1u << k)) /* embedding's indices */
		t->desc.dtype = DJ_DTYPE_INT64;
	t->desc.ndim = c->in[k].ndim;
	memcpy(t->desc.shape, c->in[k].shape, sizeof(int64_t) * (size_t)c->in[k].ndim);
	t->mem = DJ_MEM_HOST;
	t->data = malloc(dj_tensor_nbytes(&t->desc) + 1);
	if (t->data == NULL)
		return -ENOMEM;
	fill(t);
	return 0;
}

/*
 * Host runtime: the same reference code, so bit-identical. GPU runtime:
 * per element within tol * (|want| + max|want|), tol per dtype as measured
 * and documented in docs/GPU_OPS.md; integers exact.
 */
static int results_agree(const struct dj_tensor *got, const struct dj_tensor *want)
{
	static const double tol[DJ_DTYPE_COUNT] = {
		[DJ_DTYPE_FLOAT32] = 3e-5, [DJ_DTYPE_FLOAT16] = 2e-3, [DJ_DTYPE_BFLOAT16] = 1.6e-2,
	};
	int64_t n = dj_tensor_numel(&want->desc);
	double scale = 0;

	if (strcmp(gpu_spec, "none") == 0)
		return memcmp(got->data, want->data, dj_tensor_nbytes(&want->desc)) == 0;
	for (int64_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(dj_tensor_load_f64(want, i)));
	for (int64_t i = 0; i < n; i++) {
		double g = dj_tensor_load_f64(got, i), w = dj_tensor_load_f64(want, i);
		if (!(fabs(g - w) <= tol[want->desc.dtype] * (fabs(w) + scale)))
			return 0;
	}
	return 1;
}

static void check_case(const struct op_case *c)
{
	const struct tn_op *op = tn_op_find(c->op);
	struct dj_tensor in[3], local = {0}, remote = {0};
	uint64_t handles[3], out;
	struct dj_tensor_desc desc;
	struct tn_op_attrs attrs;
	cJSON *json = c->attrs ? cJSON_Parse(c->attrs) : NULL;
	char err[256] = "";
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(op);
	for (int k = 0; k < c->n_in; k++) {
		CU_ASSERT_EQUAL_FATAL(make_input(c, k, &in[k]), 0);
		CU_ASSERT_EQUAL_FATAL(dj_put(conn, &in[k], &handles[k]), 0);
	}
	rc = dj_execute(conn, c->op, handles, c->n_in, c->attrs, &out, &desc);
	if (rc != 0)
		printf("\n%s remote: %s (%s)\n", c->op, dj_strerror(rc), dj_conn_last_error(conn));
	CU_ASSERT_EQUAL_FATAL(rc, 0);

	CU_ASSERT_EQUAL(tn_op_attrs_from_json(op, json, &attrs, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(tn_op_cpu_alloc(op, in, c->n_in, &attrs, &local, err, sizeof(err)), 0);
	CU_ASSERT(dj_tensor_desc_equal(&desc, &local.desc));

	remote.desc = desc;
	remote.mem = DJ_MEM_HOST;
	remote.data = malloc(dj_tensor_nbytes(&desc) + 1);
	CU_ASSERT_EQUAL(dj_get(conn, out, &remote), 0);
	int same = results_agree(&remote, &local);
	if (!same)
		printf("\n%s (%s): remote result differs from local (seed %u)\n", c->op,
		       dj_dtype_name(c->dtype), seed);
	CU_ASSERT(same);

	/* An in-place op answers with its input 0's own handle. */
	CU_ASSERT_EQUAL(out == handles[0], op->inplace);
	for (int k = 0; k < c->n_in; k++) {
		CU_ASSERT_EQUAL(dj_free(conn, handles[k]), 0);
		free(in[k].data);
	}
	if (!op->inplace)
		CU_ASSERT_EQUAL(dj_free(conn, out), 0);
	free(remote.data);
	dj_tensor_free_host(&local);
	cJSON_Delete(json);
}

static void test_every_operation_remote_equals_local(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	/* Every operation in the table was exercised at least once. */
	for (int id = 0; id < tn_op_count(); id++) {
		const char *name = tn_op_get((enum tn_op_id)id)->name;
		int seen = 0;
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			seen |= strcmp(cases[i].op, name) == 0;
		if (!seen)
			printf("\noperation %s has no remote case\n", name);
		CU_ASSERT(seen);
	}
}

static uint64_t put_f32(int ndim, const int64_t *shape)
{
	struct dj_tensor t = {.desc = {DJ_DTYPE_FLOAT32, ndim, {0}}, .mem = DJ_MEM_HOST};
	uint64_t h = 0;

	memcpy(t.desc.shape, shape, sizeof(int64_t) * (size_t)ndim);
	t.data = malloc(dj_tensor_nbytes(&t.desc));
	fill(&t);
	CU_ASSERT_EQUAL(dj_put(conn, &t, &h), 0);
	free(t.data);
	return h;
}

static void test_bad_requests_get_named_errors(void)
{
	uint64_t a = put_f32(2, (int64_t[]){3, 4}), b = put_f32(2, (int64_t[]){5, 6}), out;

	CU_ASSERT_EQUAL(dj_execute(conn, "frobnicate", &a, 1, NULL, &out, NULL), -DJ_EUNKNOWN_OP);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "frobnicate"));
	CU_ASSERT_EQUAL(dj_execute(conn, "matmul", (uint64_t[]){a, b}, 2, NULL, &out, NULL),
			-DJ_ESHAPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "matmul"));
	CU_ASSERT_EQUAL(dj_execute(conn, "relu", (uint64_t[]){0xdeadbeefull}, 1, NULL, &out, NULL),
			-DJ_EHANDLE);
	/* Handles in error texts as on the wire: "0x..." */
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "tensor 0xdeadbeef"));
	CU_ASSERT_EQUAL(dj_free(conn, 0xfeedull), -DJ_EHANDLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "free 0xfeed"));
	CU_ASSERT_EQUAL(dj_describe(conn, 0xbeefull, NULL), -DJ_EHANDLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "tensor 0xbeef"));
	CU_ASSERT_EQUAL(dj_execute(conn, "sum", &a, 1, "{\"dim\": \"x\"}", &out, NULL), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "dim"));
	CU_ASSERT_EQUAL(dj_execute(conn, "add", &a, 1, NULL, &out, NULL) < 0, 1);
	/* Still serving, and the inputs are intact. */
	CU_ASSERT_EQUAL(dj_execute(conn, "relu", &a, 1, NULL, &out, NULL), 0);
	CU_ASSERT_EQUAL(dj_free(conn, out), 0);
	CU_ASSERT_EQUAL(dj_free(conn, a), 0);
	CU_ASSERT_EQUAL(dj_free(conn, b), 0);
	CU_ASSERT_EQUAL(dj_free(conn, b), -DJ_EHANDLE);
}

/* The session's live handles, from STATS. */
static int session_handles(void)
{
	char *text = NULL;
	int n = -1;

	CU_ASSERT_EQUAL_FATAL(dj_stats(conn, &text), 0);
	cJSON *j = cJSON_Parse(text);
	cJSON *h = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "session"),
						    "handles");

	if (cJSON_IsNumber(h))
		n = h->valueint;
	cJSON_Delete(j);
	free(text);
	return n;
}

static void get_tensor(uint64_t h, struct dj_tensor *t)
{
	CU_ASSERT_EQUAL_FATAL(dj_get(conn, h, t), 0);
}

/* dst[:, start:start+1, :] == src, element for element (a copy: exact). */
static int slice_holds(const struct dj_tensor *dst, int64_t start, const struct dj_tensor *src)
{
	for (int64_t b = 0; b < 2; b++)
		for (int64_t e = 0; e < 4; e++)
			if (((float *)dst->data)[(b * 8 + start) * 4 + e] != ((float *)src->data)[b * 4 + e])
				return 0;
	return 1;
}

/*
 * slice_write is the KV-cache append: it writes dst in place, answers with
 * dst's own handle, adds no handle to the session, and a batch that fails
 * after it frees nothing of dst.
 */
static void test_slice_write_in_place(void)
{
	int64_t cache_shape[3] = {2, 8, 4}, step_shape[3] = {2, 1, 4};
	uint64_t dst = put_f32(3, cache_shape), src = put_f32(3, step_shape), out = 0, outs[2];
	struct dj_tensor cache = {.desc = {DJ_DTYPE_FLOAT32, 3, {2, 8, 4}}, .mem = DJ_MEM_HOST};
	struct dj_tensor step = {.desc = {DJ_DTYPE_FLOAT32, 3, {2, 1, 4}}, .mem = DJ_MEM_HOST};
	struct dj_tensor_desc desc;
	char src_text[24];
	int before = session_handles();

	cache.data = malloc(dj_tensor_nbytes(&cache.desc));
	step.data = malloc(dj_tensor_nbytes(&step.desc));
	get_tensor(src, &step);
	CU_ASSERT_EQUAL_FATAL(dj_execute(conn, "slice_write", (uint64_t[]){dst, src}, 2,
					 "{\"dim\": 1, \"start\": 3}", &out, &desc), 0);
	CU_ASSERT_EQUAL(out, dst);
	CU_ASSERT(desc.ndim == 3 && desc.shape[1] == 8);
	CU_ASSERT_EQUAL(session_handles(), before);
	get_tensor(dst, &cache);
	CU_ASSERT(slice_holds(&cache, 3, &step));

	/* In a batch, "$0" after slice_write is dst itself. */
	snprintf(src_text, sizeof(src_text), "0x%016llx", (unsigned long long)src);
	char dst_text[24];

	snprintf(dst_text, sizeof(dst_text), "0x%016llx", (unsigned long long)dst);
	struct dj_batch_op batch[2] = {
		{.op = "slice_write", .inputs = {dst_text, src_text}, .n_in = 2,
		 .attrs_json = "{\"dim\": -2, \"start\": -1}"},
		{.op = "relu", .inputs = {"$0"}, .n_in = 1},
	};
	CU_ASSERT_EQUAL_FATAL(dj_execute_batch(conn, batch, 2, outs), 0);
	CU_ASSERT_EQUAL(outs[0], dst);
	CU_ASSERT_NOT_EQUAL(outs[1], dst);
	CU_ASSERT_EQUAL(session_handles(), before + 1);
	CU_ASSERT_EQUAL(dj_free(conn, outs[1]), 0);
	get_tensor(dst, &cache);
	CU_ASSERT(slice_holds(&cache, 7, &step));

	/* A failing batch: dst survives it (the write before the failure stays). */
	batch[0].attrs_json = "{\"dim\": 1, \"start\": 0}";
	batch[1] = (struct dj_batch_op){.op = "matmul", .inputs = {"$0", "$0"}, .n_in = 2};
	CU_ASSERT_EQUAL(dj_execute_batch(conn, batch, 2, outs), -DJ_ESHAPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "batch op 1"));
	CU_ASSERT_EQUAL(session_handles(), before);
	get_tensor(dst, &cache);
	CU_ASSERT(slice_holds(&cache, 0, &step));

	/* Out of range: named, nothing written. */
	CU_ASSERT_EQUAL(dj_execute(conn, "slice_write", (uint64_t[]){dst, src}, 2,
				   "{\"dim\": 1, \"start\": 8}", &out, NULL), -DJ_ESHAPE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "start 8, length 1 out of range"));
	CU_ASSERT_EQUAL(dj_free(conn, dst), 0);
	CU_ASSERT_EQUAL(dj_free(conn, dst), -DJ_EHANDLE);
	CU_ASSERT_EQUAL(dj_free(conn, src), 0);
	free(cache.data);
	free(step.data);
}

/* An embedding index out of range is refused by name; the server serves on
 * (int32 indices here, int64 in the table of cases). */
static void test_embedding_index_refused(void)
{
	struct dj_tensor idx = {.desc = {DJ_DTYPE_INT32, 1, {3}}, .mem = DJ_MEM_HOST};
	int32_t values[3] = {1, 9, 2};
	uint64_t hi, w = put_f32(2, (int64_t[]){6, 4}), out;

	idx.data = values;
	CU_ASSERT_EQUAL_FATAL(dj_put(conn, &idx, &hi), 0);
	int before = session_handles();

	CU_ASSERT_EQUAL(dj_execute(conn, "embedding", (uint64_t[]){hi, w}, 2, NULL, &out, NULL),
			-ERANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn),
				      "embedding: index 9 out of range for 6 rows (at position 1)"));
	CU_ASSERT_EQUAL(session_handles(), before);
	values[1] = 5;
	CU_ASSERT_EQUAL(dj_free(conn, hi), 0);
	CU_ASSERT_EQUAL_FATAL(dj_put(conn, &idx, &hi), 0);
	CU_ASSERT_EQUAL(dj_execute(conn, "embedding", (uint64_t[]){hi, w}, 2, NULL, &out, NULL), 0);
	struct dj_tensor rows = {.desc = {DJ_DTYPE_FLOAT32, 2, {3, 4}}, .mem = DJ_MEM_HOST};
	struct dj_tensor table = {.desc = {DJ_DTYPE_FLOAT32, 2, {6, 4}}, .mem = DJ_MEM_HOST};

	rows.data = malloc(dj_tensor_nbytes(&rows.desc));
	table.data = malloc(dj_tensor_nbytes(&table.desc));
	get_tensor(out, &rows);
	get_tensor(w, &table);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(memcmp((float *)rows.data + 4 * i, (float *)table.data + 4 * values[i],
				 4 * sizeof(float)) == 0);
	free(rows.data);
	free(table.data);
	dj_free(conn, out);
	dj_free(conn, hi);
	dj_free(conn, w);
}

/* A chain moves no intermediate bytes: only the final get does. */
static void test_chain_stays_resident(void)
{
	const int64_t shape[2] = {64, 64};
	uint64_t x = put_f32(2, shape), h = x, next;
	struct ctl_server_stats before, after;

	ctl_server_get_stats(server, &before);
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL_FATAL(dj_execute(conn, i % 2 ? "relu" : "tanh", &h, 1, NULL, &next,
						 NULL), 0);
		if (h != x)
			dj_free(conn, h);
		h = next;
	}
	ctl_server_get_stats(server, &after);
	/* 20 requests and replies of JSON, not 20 x 16 KiB of tensor. */
	CU_ASSERT(after.bytes_out - before.bytes_out < 64 * 64 * 4);
	dj_free(conn, h);
	dj_free(conn, x);
}

/* The session's memory limit (256 MiB here) holds; freeing gives it back. */
static void test_session_memory_limit(void)
{
	struct dj_tensor_desc big = {DJ_DTYPE_FLOAT32, 2, {1 << 14, 1 << 13}}; /* 512 MiB */
	struct dj_tensor_desc half = {DJ_DTYPE_FLOAT32, 2, {1 << 14, 1 << 12}}; /* 256 MiB */
	struct rt_memory before, held;
	uint64_t h, h2;

	CU_ASSERT_EQUAL_FATAL(rt_memory(rt, &before, 1), 1);
	CU_ASSERT_EQUAL(dj_alloc(conn, &big, &h), -DJ_ELIMIT);
	/* The error says the figures: asked, held, the limit. */
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "alloc of 536870912 bytes: limit "
				      "exceeded: the session holds 0 bytes of its limit of 268435456"));
	CU_ASSERT_EQUAL_FATAL(dj_alloc(conn, &half, &h), 0);
	CU_ASSERT_EQUAL(dj_alloc(conn, &half, &h2), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "the session holds 268435456 bytes "
				      "of its limit of 268435456"));
	/* An operation's output is held to it too. */
	CU_ASSERT_EQUAL(dj_execute(conn, "relu", &h, 1, NULL, &h2, NULL), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "relu: output of 268435456 bytes: "
				      "limit exceeded"));
	/* What the metrics export: the device's resident bytes and refusals. */
	CU_ASSERT_EQUAL_FATAL(rt_memory(rt, &held, 1), 1);
	CU_ASSERT_EQUAL(held.used - before.used, 256u << 20);
	CU_ASSERT_EQUAL(held.tensors - before.tensors, 1);
	CU_ASSERT_EQUAL(held.refused - before.refused, 3);
	CU_ASSERT(held.peak >= held.used);
	CU_ASSERT_STRING_EQUAL(held.device, strcmp(gpu_spec, "none") == 0 ? "host" : "cuda:0");
	CU_ASSERT(held.total > 0 && held.free > 0 && held.free <= held.total);
	/* A batch's payload is charged from when the server takes it. */
	float small[256] = {0};
	struct dj_tensor t = {.desc = {DJ_DTYPE_FLOAT32, 1, {256}}, .data = small,
			      .mem = DJ_MEM_HOST};
	struct dj_batch_op put = {.put = &t};

	CU_ASSERT_EQUAL(dj_execute_batch(conn, &put, 1, &h2), -DJ_ELIMIT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_conn_last_error(conn), "EXECUTE payload of 1024 bytes: "
				      "limit exceeded: the session holds 268435456 bytes of its "
				      "limit of 268435456"));
	CU_ASSERT_EQUAL(dj_free(conn, h), 0);
	CU_ASSERT_EQUAL(dj_execute_batch(conn, &put, 1, &h2), 0);
	CU_ASSERT_EQUAL(dj_free(conn, h2), 0);
	CU_ASSERT_EQUAL_FATAL(dj_alloc(conn, &half, &h2), 0);
	CU_ASSERT_EQUAL(dj_free(conn, h2), 0);
}

struct inflight {
	struct dj_future *f;
};

static void test_thousand_ops_hundred_in_flight(void)
{
	enum { TOTAL = 1000, WINDOW = 100 };
	static struct inflight slots[WINDOW];
	const int64_t shape[1] = {256};
	uint64_t x = put_f32(1, shape), out;
	int sent = 0, done = 0, failed = 0;

	while (done < TOTAL) {
		for (int s = 0; s < WINDOW && sent < TOTAL; s++) {
			if (slots[s].f != NULL)
				continue;
			CU_ASSERT_EQUAL_FATAL(dj_execute_async(conn, "exp", &x, 1, NULL, NULL, NULL,
							       &slots[s].f), 0);
			sent++;
		}
		for (int s = 0; s < WINDOW; s++) {
			if (slots[s].f == NULL)
				continue;
			if (dj_future_wait(slots[s].f, 10000) != 0 ||
			    dj_future_handle(slots[s].f, &out, NULL) != 0)
				failed++;
			else
				dj_free(conn, out);
			dj_future_release(slots[s].f);
			slots[s].f = NULL;
			done++;
		}
	}
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(done, TOTAL);
	dj_free(conn, x);
}

/*
 * Operation outputs are not zeroed (a pass over every output would add up
 * to half again to a memory-bound operation), so a new tensor shows no
 * other tenant's bytes only because every operation writes every byte of
 * its output: each case runs twice into outputs poisoned with 0x7f and
 * with 0xa5, and no byte may keep its poison both times (a written byte
 * cannot: 0x7f is not 0xa5). The CPU reference on the host runtime, CUDA
 * kernels and cuBLAS with gpu. On top of the cases above, larger odd
 * shapes: many blocks, ragged tails.
 */
static const struct op_case large_cases[] = {
	{"add", DJ_DTYPE_FLOAT32, 2, {{2, {1000, 1025}}, {1, {1025}}}, NULL},
	{"relu", DJ_DTYPE_FLOAT16, 1, {{1, {(1 << 20) + 3}}}, NULL},
	{"div", DJ_DTYPE_INT64, 2, {{3, {3, 1, 4097}}, {2, {5, 4097}}}, NULL},
	{"sum", DJ_DTYPE_FLOAT32, 1, {{2, {513, 1031}}}, "{\"dim\": 0}"},
	{"sum", DJ_DTYPE_FLOAT32, 1, {{1, {(1 << 20) + 7}}}, NULL},
	{"mean", DJ_DTYPE_BFLOAT16, 1, {{3, {7, 300, 129}}}, "{\"dim\": 1}"},
	{"softmax", DJ_DTYPE_FLOAT32, 1, {{2, {300, 1001}}}, "{\"dim\": -1}"},
	{"softmax", DJ_DTYPE_FLOAT16, 1, {{3, {3, 257, 5}}}, "{\"dim\": 1}"},
	{"layer_norm", DJ_DTYPE_FLOAT16, 1, {{2, {257, 2049}}}, NULL},
	{"matmul", DJ_DTYPE_FLOAT16, 2, {{2, {257, 513}}, {2, {513, 129}}}, NULL},
	{"matmul", DJ_DTYPE_INT32, 2, {{3, {3, 65, 33}}, {3, {3, 33, 17}}}, NULL},
	{"linear", DJ_DTYPE_BFLOAT16, 3, {{2, {65, 1000}}, {2, {33, 1000}}, {1, {33}}}, NULL},
	{"transpose", DJ_DTYPE_FLOAT32, 1, {{2, {1023, 1025}}}, NULL},
	{"transpose", DJ_DTYPE_FLOAT16, 1, {{4, {3, 5, 67, 9}}}, "{\"perm\": [3, 1, 0, 2]}"},
	{"cat", DJ_DTYPE_INT64, 2, {{2, {333, 77}}, {2, {333, 5}}}, "{\"dim\": 1}"},
	{"reshape", DJ_DTYPE_BFLOAT16, 1, {{2, {1000, 1001}}}, "{\"shape\": [-1]}"},
};

/* Device copies of the host inputs, for the CUDA run. */
struct gpu_inputs {
	struct dj_tensor t[3];
	int n;
};

static void gpu_inputs_free(struct djg_ops *g, struct gpu_inputs *gi)
{
	for (int k = 0; k < gi->n; k++)
		djg_ops_free(g, gi->t[k].data);
	gi->n = 0;
}

static int gpu_inputs_put(struct djg_ops *g, const struct dj_tensor *in, int n, struct gpu_inputs *gi)
{
	for (gi->n = 0; gi->n < n; gi->n++) {
		size_t bytes = dj_tensor_nbytes(&in[gi->n].desc);

		gi->t[gi->n] = in[gi->n];
		gi->t[gi->n].mem = DJ_MEM_GPU;
		if (djg_ops_alloc(g, bytes, &gi->t[gi->n].data) != 0 ||
		    djg_ops_copy_in(g, gi->t[gi->n].data, in[gi->n].data, bytes) != 0)
			return -EIO;
	}
	return 0;
}

/* Run op into an output poisoned with byte p; its bytes end up in got. */
static int run_poisoned(struct djg_ops *g, const struct tn_op *op, const struct dj_tensor *in,
			int n_in, const struct gpu_inputs *gi, const struct tn_op_attrs *attrs,
			const struct dj_tensor_desc *out_desc, uint8_t p, uint8_t *got)
{
	size_t bytes = dj_tensor_nbytes(out_desc);
	struct dj_tensor out = {.desc = *out_desc, .mem = g != NULL ? DJ_MEM_GPU : DJ_MEM_HOST};
	char err[256] = "";
	int rc;

	memset(got, p, bytes);
	if (g == NULL) {
		out.data = got;
		rc = tn_op_cpu(op, in, n_in, attrs, &out, err, sizeof(err));
	} else {
		rc = djg_ops_alloc(g, bytes, &out.data);
		if (rc == 0)
			rc = djg_ops_copy_in(g, out.data, got, bytes);
		if (rc == 0)
			rc = djg_ops_run(g, op, gi->t, n_in, attrs, &out, err, sizeof(err));
		if (rc == 0)
			rc = djg_ops_copy_out(g, got, out.data, bytes);
		djg_ops_free(g, out.data);
	}
	if (rc != 0)
		printf("\n  %s: %s (%s)\n", op->name, dj_strerror(rc), err);
	return rc;
}

/* Bytes of the output that kept the poison in both runs: never written. */
static size_t check_case_writes_all(struct djg_ops *g, const struct op_case *c)
{
	const struct tn_op *op = tn_op_find(c->op);
	struct dj_tensor in[3];
	struct dj_tensor_desc in_desc[3], out_desc;
	struct gpu_inputs gi = {.n = 0};
	struct tn_op_attrs attrs;
	cJSON *json = c->attrs ? cJSON_Parse(c->attrs) : NULL;
	char err[256] = "";
	uint8_t *a = NULL, *b = NULL;
	size_t bytes, untouched = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(op);
	for (int k = 0; k < c->n_in; k++) {
		CU_ASSERT_EQUAL_FATAL(make_input(c, k, &in[k]), 0);
		in_desc[k] = in[k].desc;
	}
	CU_ASSERT_EQUAL_FATAL(tn_op_attrs_from_json(op, json, &attrs, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(tn_op_infer(op, in_desc, c->n_in, &attrs, &out_desc, err,
					  sizeof(err)), 0);
	bytes = dj_tensor_nbytes(&out_desc);
	a = malloc(bytes + 1);
	b = malloc(bytes + 1);
	CU_ASSERT_FATAL(a != NULL && b != NULL);
	if (g != NULL)
		CU_ASSERT_EQUAL_FATAL(gpu_inputs_put(g, in, c->n_in, &gi), 0);
	CU_ASSERT_EQUAL(run_poisoned(g, op, in, c->n_in, &gi, &attrs, &out_desc, 0x7f, a), 0);
	CU_ASSERT_EQUAL(run_poisoned(g, op, in, c->n_in, &gi, &attrs, &out_desc, 0xa5, b), 0);
	for (size_t i = 0; i < bytes; i++)
		untouched += a[i] == 0x7f && b[i] == 0xa5;
	if (untouched != 0)
		printf("\n  %s (%s): %zu of %zu output bytes never written\n", c->op,
		       dj_dtype_name(c->dtype), untouched, bytes);
	gpu_inputs_free(g, &gi);
	for (int k = 0; k < c->n_in; k++)
		free(in[k].data);
	free(a);
	free(b);
	cJSON_Delete(json);
	return untouched;
}

static void test_every_operation_writes_its_whole_output(void)
{
	struct djg_ops *g = NULL;
	size_t untouched = 0;

	if (strcmp(gpu_spec, "none") != 0)
		CU_ASSERT_EQUAL_FATAL(djg_ops_create(0, &g), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		untouched += check_case_writes_all(g, &cases[i]);
	for (size_t i = 0; i < sizeof(large_cases) / sizeof(large_cases[0]); i++)
		untouched += check_case_writes_all(g, &large_cases[i]);
	CU_ASSERT_EQUAL(untouched, 0);
	djg_ops_destroy(g);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case tests[] = {
		{"every operation: remote equals local", test_every_operation_remote_equals_local},
		{"bad requests get named errors, server keeps serving", test_bad_requests_get_named_errors},
		{"a chain of operations stays resident", test_chain_stays_resident},
		{"1000 operations, 100 in flight", test_thousand_ops_hundred_in_flight},
		{"the session's memory limit holds", test_session_memory_limit},
		{"slice_write runs in place and returns dst", test_slice_write_in_place},
		{"embedding index out of range is refused", test_embedding_index_refused},
		{"every operation writes its whole output (poisoned twice)",
		 test_every_operation_writes_its_whole_output},
		{NULL, NULL},
	};
	if (argc > 1 && strcmp(argv[1], "gpu") == 0) {
		if (djg_ops_device_count() == 0)
			dj_test_skip("no CUDA GPU: the GPU runtime cannot be tested here");
		gpu_spec = "0";
	}
	dj_test_add_suite(strcmp(gpu_spec, "none") ? "remote operations (GPU runtime)"
						   : "remote operations (host runtime)",
			  suite_init, suite_cleanup, tests);
	return dj_test_main(argc, argv);
}
