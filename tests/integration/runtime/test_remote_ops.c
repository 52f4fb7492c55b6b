/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Remote execution end to end, in one process: djinn-dp's runtime behind a
 * real control-plane server on loopback, driven through the client API.
 * Every operation runs remotely on random inputs and must equal the same
 * operation run locally; chains stay resident; bad requests get named
 * errors and the server keeps serving; 1000 operations with 100 in flight.
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

	for (int k = 0; k < c->n_in; k++) {
		CU_ASSERT_EQUAL(dj_free(conn, handles[k]), 0);
		free(in[k].data);
	}
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
	CU_ASSERT_EQUAL_FATAL(dj_alloc(conn, &half, &h), 0);
	CU_ASSERT_EQUAL(dj_alloc(conn, &half, &h2), -DJ_ELIMIT);
	/* What the metrics export: the device's resident bytes and refusals. */
	CU_ASSERT_EQUAL_FATAL(rt_memory(rt, &held, 1), 1);
	CU_ASSERT_EQUAL(held.used - before.used, 256u << 20);
	CU_ASSERT_EQUAL(held.tensors - before.tensors, 1);
	CU_ASSERT_EQUAL(held.refused - before.refused, 2);
	CU_ASSERT(held.peak >= held.used);
	CU_ASSERT_STRING_EQUAL(held.device, strcmp(gpu_spec, "none") == 0 ? "host" : "cuda:0");
	CU_ASSERT(held.total > 0 && held.free > 0 && held.free <= held.total);
	CU_ASSERT_EQUAL(dj_free(conn, h), 0);
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

int main(int argc, char **argv)
{
	static const struct dj_test_case tests[] = {
		{"every operation: remote equals local", test_every_operation_remote_equals_local},
		{"bad requests get named errors, server keeps serving", test_bad_requests_get_named_errors},
		{"a chain of operations stays resident", test_chain_stays_resident},
		{"1000 operations, 100 in flight", test_thousand_ops_hundred_in_flight},
		{"the session's memory limit holds", test_session_memory_limit},
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
