/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lazy graphs run on real servers (djinn-dp's runtime behind the control
 * plane, loopback, in process): one round trip per fetch on one server;
 * results equal, bit for bit, to the same operations run one by one with
 * dj_execute and to the local CPU reference; parameters uploaded once across
 * runs and graphs (uploads counted at the server's backend), a changed
 * weight uploaded again and its old version freed; no intermediate left on
 * the server; state created once and read by later graphs; two servers with
 * a placement from the annotations (MLP blocks on server 1); errors named by
 * node; uploads too large to ride inline.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "controlplane/ctl.h"
#include "djinn/graph.h"
#include "graph/gr.h"
#include "harness.h"
#include "servers.h"

static struct test_server srv[2];
static unsigned int seed;

static int suite_init(void)
{
	seed = dj_test_seed();
	return test_server_start(&srv[0]) != 0 || test_server_start(&srv[1]) != 0 ? -1 : 0;
}

static int suite_cleanup(void)
{
	test_server_stop(&srv[0]);
	test_server_stop(&srv[1]);
	return 0;
}

/* A host float32 tensor with random values in [-1, 1). */
static struct dj_tensor rand_f32(int ndim, const int64_t *shape)
{
	struct dj_tensor t = {.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = ndim}, .mem = DJ_MEM_HOST};

	memcpy(t.desc.shape, shape, sizeof(int64_t) * (size_t)ndim);
	t.data = malloc(dj_tensor_nbytes(&t.desc) + 1);
	for (int64_t i = 0; i < dj_tensor_numel(&t.desc); i++)
		((float *)t.data)[i] = (float)rand_r(&seed) / (float)RAND_MAX * 2.0f - 1.0f;
	return t;
}

#define T_LEN 5
#define D_MODEL 8
#define D_FF 16
#define N_PARAMS 8

/* The data of one pre-norm transformer block: weights, input, causal mask. */
struct model {
	struct dj_tensor p[N_PARAMS], x, mask;
};

static const char *const param_names[N_PARAMS] = {
	"ln1.w", "wq", "wk", "wv", "wo", "w1", "w2", "scale",
};

static void model_make(struct model *m)
{
	const int64_t shapes[N_PARAMS][2] = {
		{D_MODEL}, {D_MODEL, D_MODEL}, {D_MODEL, D_MODEL}, {D_MODEL, D_MODEL},
		{D_MODEL, D_MODEL}, {D_FF, D_MODEL}, {D_MODEL, D_FF}, {1},
	};

	for (int i = 0; i < N_PARAMS; i++)
		m->p[i] = rand_f32(shapes[i][1] ? 2 : 1, shapes[i]);
	((float *)m->p[7].data)[0] = 0.35f;
	m->x = rand_f32(3, (int64_t[]){1, T_LEN, D_MODEL});
	m->mask = rand_f32(2, (int64_t[]){T_LEN, T_LEN});
	for (int i = 0; i < T_LEN; i++)
		for (int j = 0; j < T_LEN; j++)
			((float *)m->mask.data)[i * T_LEN + j] = j > i ? -1e4f : 0.0f;
}

static void model_free(struct model *m)
{
	for (int i = 0; i < N_PARAMS; i++)
		free(m->p[i].data);
	free(m->x.data);
	free(m->mask.data);
}

/* Node ids of what the tests fetch. */
struct block {
	int x, av, up, y;
};

static int op2(struct dj_graph *g, const char *op, int a, int b, const char *attrs)
{
	return dj_graph_op(g, op, (int[]){a, b}, 2, attrs);
}

static int op1(struct dj_graph *g, const char *op, int a, const char *attrs)
{
	return dj_graph_op(g, op, &a, 1, attrs);
}

static void block_record(struct dj_graph *g, const struct model *m, struct block *b)
{
	int p[N_PARAMS], ln1, q, k, v, s, h, ln2, act, mask;

	for (int i = 0; i < N_PARAMS; i++)
		p[i] = dj_graph_param(g, param_names[i], &m->p[i]);
	b->x = dj_graph_input(g, "x", &m->x);
	mask = dj_graph_input(g, "mask", &m->mask);
	ln1 = op2(g, "layer_norm", b->x, p[0], NULL);
	q = op2(g, "linear", ln1, p[1], NULL);
	k = op2(g, "linear", ln1, p[2], NULL);
	v = op2(g, "linear", ln1, p[3], NULL);
	s = op2(g, "matmul", q, op1(g, "transpose", k, NULL), NULL);
	s = op1(g, "softmax", op2(g, "add", op2(g, "mul", s, p[7], NULL), mask, NULL), "{\"dim\":-1}");
	b->av = op2(g, "matmul", s, v, NULL);
	h = op2(g, "add", b->x, op2(g, "linear", b->av, p[4], NULL), NULL);
	ln2 = op1(g, "layer_norm", h, NULL);
	b->up = op2(g, "linear", ln2, p[5], NULL);
	act = op1(g, "gelu", b->up, NULL);
	b->y = op2(g, "add", h, op2(g, "linear", act, p[6], NULL), NULL);
	CU_ASSERT_STRING_EQUAL(dj_graph_error(g), "");
	CU_ASSERT_FATAL(b->y >= 0);
}

static int same_bytes(const struct dj_tensor *a, const struct dj_tensor *b)
{
	return dj_tensor_desc_equal(&a->desc, &b->desc) &&
	       memcmp(a->data, b->data, dj_tensor_nbytes(&a->desc)) == 0;
}

/* The local CPU reference of the same fetch. */
static void local_fetch(struct dj_graph *g, const int *nodes, int n, struct dj_tensor *out)
{
	struct gr_local *l;

	CU_ASSERT_EQUAL_FATAL(gr_local_create(&l), 0);
	memset(out, 0, sizeof(*out) * (size_t)n);
	CU_ASSERT_EQUAL_FATAL(gr_local_fetch(l, g, nodes, n, out), 0);
	gr_local_destroy(l);
}

/* The same graph run the old way: a PUT per leaf, an EXECUTE per op, a GET
 * per result. */
static void one_by_one(struct dj_graph *g, struct dj_conn *conn, const int *nodes, int n,
		       struct dj_tensor *out)
{
	int count = dj_graph_node_count(g);
	uint64_t *h = calloc((size_t)count, sizeof(*h));

	for (int x = 0; x < count; x++) {
		struct dj_graph_node_info ni;
		uint64_t in[DJ_MAX_OP_ARGS];

		CU_ASSERT_EQUAL_FATAL(dj_graph_node(g, x, &ni), 0);
		if (ni.kind != DJ_GRAPH_OP) {
			CU_ASSERT_EQUAL_FATAL(dj_put(conn, &g->nodes[x].host, &h[x]), 0);
			continue;
		}
		for (int k = 0; k < ni.n_in; k++)
			in[k] = h[ni.inputs[k]];
		CU_ASSERT_EQUAL_FATAL(dj_execute(conn, ni.name, in, ni.n_in, ni.attrs_json, &h[x],
						 NULL), 0);
	}
	for (int i = 0; i < n; i++) {
		out[i] = (struct dj_tensor){.desc = g->nodes[nodes[i]].desc, .mem = DJ_MEM_HOST};
		out[i].data = malloc(dj_tensor_nbytes(&out[i].desc) + 1);
		CU_ASSERT_EQUAL(dj_get(conn, h[nodes[i]], &out[i]), 0);
	}
	for (int x = 0; x < count; x++)
		CU_ASSERT_EQUAL(dj_free(conn, h[x]), 0);
	free(h);
}

static void release(struct dj_tensor *t, int n)
{
	for (int i = 0; i < n; i++)
		free(t[i].data);
}

static void test_one_round_trip_equals_one_by_one_and_local(void)
{
	struct dj_graph_ctx *ctx;
	struct dj_graph_run_stats st;
	struct dj_graph *g;
	struct model m;
	struct block b;
	struct dj_tensor got[2] = {0}, ref[2], solo[2];
	int before = test_server_tensors(&srv[0]);

	model_make(&m);
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	block_record(g, &m, &b);
	int want[2] = {b.y, b.av};

	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, want, 2, got), 0);
	dj_graph_last_run(g, &st);
	CU_ASSERT_EQUAL(st.round_trips, 1);
	CU_ASSERT_EQUAL(st.batches, 1);
	CU_ASSERT_EQUAL(st.ops, 17);
	CU_ASSERT_EQUAL(st.puts_inline, N_PARAMS + 2);
	CU_ASSERT_EQUAL(st.params_uploaded, N_PARAMS);
	CU_ASSERT_EQUAL(st.bytes_down, 2 * T_LEN * D_MODEL * 4);
	/* Every intermediate was freed inside the batch; only weights stay. */
	CU_ASSERT_EQUAL(st.frees_inline, 17 + 2 - 0);
	CU_ASSERT_EQUAL(st.frees_async, 0);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before + N_PARAMS);

	local_fetch(g, want, 2, ref);
	one_by_one(g, srv[0].conn, want, 2, solo);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(same_bytes(&got[i], &ref[i]));
		CU_ASSERT(same_bytes(&got[i], &solo[i]));
	}
	if (!same_bytes(&got[0], &ref[0]))
		printf("\n  graph result differs from the local reference (seed %u)\n", seed);
	release(got, 2);
	release(ref, 2);
	release(solo, 2);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	/* The context freed its weights. */
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before);
	model_free(&m);
}

static void test_params_uploaded_once(void)
{
	struct dj_graph_ctx *ctx;
	struct dj_graph_run_stats st;
	struct dj_graph *g, *g2;
	struct model m;
	struct block b, b2;
	struct dj_tensor got = {0}, ref;
	int up, before = test_server_tensors(&srv[0]);

	model_make(&m);
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	block_record(g, &m, &b);
	up = atomic_load(&srv[0].uploads);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &b.y, 1, &got), 0);
	CU_ASSERT_EQUAL(atomic_load(&srv[0].uploads) - up, N_PARAMS + 2);

	/* Run 2, new input data: only x and mask travel. */
	struct dj_tensor x2 = rand_f32(3, (int64_t[]){1, T_LEN, D_MODEL});
	CU_ASSERT_EQUAL(dj_graph_bind(g, b.x, &x2), 0);
	up = atomic_load(&srv[0].uploads);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &b.y, 1, &got), 0);
	CU_ASSERT_EQUAL(atomic_load(&srv[0].uploads) - up, 2);
	dj_graph_last_run(g, &st);
	CU_ASSERT_EQUAL(st.round_trips, 1);
	CU_ASSERT_EQUAL(st.params_uploaded, 0);
	CU_ASSERT_EQUAL(st.params_reused, N_PARAMS);
	local_fetch(g, &b.y, 1, &ref);
	CU_ASSERT(same_bytes(&got, &ref));
	release(&ref, 1);

	/* Another graph, the same weights (by name and content): reused. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g2), 0);
	block_record(g2, &m, &b2);
	up = atomic_load(&srv[0].uploads);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g2, &b2.y, 1, &got), 0);
	CU_ASSERT_EQUAL(atomic_load(&srv[0].uploads) - up, 2);
	dj_graph_destroy(g2);

	/* wq changed: a new version is uploaded, the old one freed. */
	((float *)m.p[1].data)[3] += 1.0f;
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g2), 0);
	block_record(g2, &m, &b2);
	up = atomic_load(&srv[0].uploads);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g2, &b2.y, 1, &got), 0);
	CU_ASSERT_EQUAL(atomic_load(&srv[0].uploads) - up, 3);
	dj_graph_last_run(g2, &st);
	CU_ASSERT_EQUAL(st.params_uploaded, 1);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before + N_PARAMS);
	local_fetch(g2, &b2.y, 1, &ref);
	CU_ASSERT(same_bytes(&got, &ref));
	release(&ref, 1);
	dj_graph_ctx_stats(ctx, &st);
	CU_ASSERT_EQUAL(st.round_trips, 4);
	CU_ASSERT_EQUAL(st.params_uploaded, N_PARAMS + 1);

	dj_graph_destroy(g2);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	free(got.data);
	free(x2.data);
	model_free(&m);
}

/* State lives on across graphs: made once with its init, then read. */
static void test_state_across_graphs(void)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {4}};
	float init[4] = {1, 2, 3, 4}, xs[4] = {10, 20, 30, 40}, out[4];
	struct dj_tensor ti = {.desc = d, .data = init, .mem = DJ_MEM_HOST};
	struct dj_tensor tx = {.desc = d, .data = xs, .mem = DJ_MEM_HOST};
	struct dj_tensor got = {.data = out};
	struct dj_graph_run_stats st;
	struct dj_graph_ctx *ctx;
	struct dj_graph *g;
	int acc, x, y, server, up, before = test_server_tensors(&srv[0]);
	uint64_t h1, h2;

	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	acc = dj_graph_state(g, "acc", &d, &ti);
	x = dj_graph_input(g, "x", &tx);
	y = op2(g, "mul", acc, x, NULL);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &y, 1, &got), 0);
	CU_ASSERT(out[0] == 10 && out[3] == 160);
	dj_graph_last_run(g, &st);
	CU_ASSERT_EQUAL(st.states_created, 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "acc", &server, &h1), 0);
	CU_ASSERT_EQUAL(server, 0);
	dj_graph_destroy(g);

	/* A new graph names the state without init: the server's copy. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	acc = dj_graph_state(g, "acc", &d, NULL);
	y = op2(g, "add", acc, dj_graph_input(g, "x", &tx), NULL);
	up = atomic_load(&srv[0].uploads);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &y, 1, &got), 0);
	CU_ASSERT(out[0] == 11 && out[3] == 44);
	CU_ASSERT_EQUAL(atomic_load(&srv[0].uploads) - up, 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_where(ctx, "acc", &server, &h2), 0);
	CU_ASSERT_EQUAL(h1, h2);
	struct dj_graph_node_info ni;
	CU_ASSERT_EQUAL(dj_graph_node(g, acc, &ni), 0);
	CU_ASSERT_EQUAL(ni.resident, 1);
	CU_ASSERT_EQUAL(ni.residency, DJ_RES_STATEFUL_KV_CACHE);
	/* The state node itself: its value after the run, by GET. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &acc, 1, &got), 0);
	CU_ASSERT(out[0] == 1 && out[3] == 4);
	dj_graph_last_run(g, &st);
	CU_ASSERT_EQUAL(st.gets, 1);
	CU_ASSERT_EQUAL(st.round_trips, 1);
	/* Another description under the same name is refused. */
	struct dj_tensor_desc d8 = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {8}};
	struct dj_graph *g2;
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g2), 0);
	int other = dj_graph_state(g2, "acc", &d8, NULL);
	int r = op1(g2, "relu", other, NULL);
	CU_ASSERT_EQUAL(dj_graph_fetch(g2, &r, 1, &(struct dj_tensor){0}), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g2), "another description"));
	dj_graph_destroy(g2);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before + 1);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_drop(ctx, "acc"), 0);
	CU_ASSERT_EQUAL(dj_graph_ctx_state_drop(ctx, "acc"), -ENOENT);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
}

/* A server that stops answering (its connection open, its worker or its
 * connection thread asleep) fails the run after the connection's
 * request_timeout_ms, naming the server and why; nothing the server sends
 * later lands in a buffer (a GET's destination, the run's fetched bytes);
 * after a PING the context runs again on the same session. */
static void test_stalled_server(void)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {4}};
	float init[4] = {1, 2, 3, 4}, xs[4] = {10, 20, 30, 40}, out[4], kept[4] = {-7, -7, -7, -7};
	struct dj_tensor ti = {.desc = d, .data = init, .mem = DJ_MEM_HOST};
	struct dj_tensor tx = {.desc = d, .data = xs, .mem = DJ_MEM_HOST};
	struct dj_tensor got = {.data = out}, state = {.data = kept};
	struct dj_client_options o;
	struct test_server s;
	struct dj_graph_ctx *ctx;
	struct dj_graph *g;
	struct dj_client *cl;
	struct dj_conn *c;
	char *json = NULL;
	cJSON *st;
	int acc, y;

	CU_ASSERT_EQUAL_FATAL(test_server_start(&s), 0);
	dj_client_options_init(&o);
	o.port = ctl_server_port(s.srv);
	o.path = DJ_PATH_TCP;
	o.request_timeout_ms = 300;
	CU_ASSERT_EQUAL_FATAL(dj_client_create(&o, &cl), 0);
	CU_ASSERT_EQUAL_FATAL(dj_connect(cl, &c), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &c, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	acc = dj_graph_state(g, "acc", &d, &ti);
	y = op2(g, "add", acc, dj_graph_input(g, "x", &tx), NULL);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &y, 1, &got), 0);

	/* The batch's operation stalls on the worker. */
	atomic_store(&s.stall_ms, 1000);
	/* -ETIMEDOUT, not the reply's success: the run did not wait for it. */
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &y, 1, &got), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "server 0: a batch of 2 entries: no "
				      "answer within the connection's request timeout"));
	CU_ASSERT_EQUAL(dj_graph_failed_server(g), 0);
	/* Its reply would have come by now (into the run's freed buffer). */
	atomic_store(&s.stall_ms, 0);
	usleep(1500 * 1000);
	CU_ASSERT_EQUAL(dj_ping(c, NULL), 0);
	/* The state alone comes by GET, into the caller's buffer: the
	 * server's connection thread stalls in its read. */
	atomic_store(&s.stall_ms, 1000);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &acc, 1, &state), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "GET: no answer"));
	atomic_store(&s.stall_ms, 0);
	usleep(1500 * 1000);
	CU_ASSERT(kept[0] == -7 && kept[3] == -7);
	/* The same session, resumed on a new connection by the PING. */
	CU_ASSERT_EQUAL(dj_ping(c, NULL), 0);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &y, 1, &got), 0);
	CU_ASSERT(out[0] == 11 && out[3] == 44);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &acc, 1, &state), 0);
	CU_ASSERT(kept[0] == 1 && kept[3] == 4);
	/* The abandoned batch freed its own tensors on the server: the state
	 * is all the session holds. */
	CU_ASSERT_EQUAL_FATAL(dj_stats(c, &json), 0);
	st = cJSON_Parse(json);
	CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "backend"),
								 "session_tensors")), 1);
	cJSON_Delete(st);
	free(json);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	dj_conn_close(c);
	dj_client_destroy(cl);
	test_server_stop(&s);
}

/* A placer that reads the annotations: MLP blocks on server 1. */
static int place_mlp_apart(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
			   char *why, size_t why_len)
{
	for (int x = 0; x < dj_graph_node_count(g); x++) {
		struct dj_graph_node_info ni;

		if (!needed[x] || dj_graph_node(g, x, &ni) != 0)
			continue;
		server[x] = (ni.patterns & DJ_PAT_MLP) ? 1 : 0;
	}
	return 0;
}

static void test_two_servers(void)
{
	struct dj_graph_placer placer = {.place = place_mlp_apart};
	struct dj_graph_options o;
	struct dj_conn *conns[2] = {srv[0].conn, srv[1].conn};
	struct dj_graph_run_stats st;
	struct dj_graph_ctx *ctx;
	struct dj_graph *g;
	struct model m;
	struct block b;
	struct dj_tensor got = {0}, ref;
	int before0 = test_server_tensors(&srv[0]), before1 = test_server_tensors(&srv[1]);

	model_make(&m);
	dj_graph_options_init(&o);
	o.placer = &placer;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, conns, 2, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	block_record(g, &m, &b);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &b.y, 1, &got), 0);
	dj_graph_last_run(g, &st);
	/* attention on 0 -> MLP on 1 -> residual add on 0. */
	CU_ASSERT_EQUAL(st.stages, 3);
	CU_ASSERT_EQUAL(st.round_trips, 3);
	CU_ASSERT_EQUAL(st.transfers, 2);
	CU_ASSERT_EQUAL(st.frees_async, 1); /* h, read again by the last stage */
	local_fetch(g, &b.y, 1, &ref);
	CU_ASSERT(same_bytes(&got, &ref));
	struct dj_graph_node_info ni;
	CU_ASSERT_EQUAL(dj_graph_node(g, b.up, &ni), 0);
	CU_ASSERT_EQUAL(ni.server, 1);
	/* Weights went where they are read: w1, w2 to server 1 only. */
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before0 + N_PARAMS - 2);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[1]), before1 + 2);
	char *text = dj_graph_describe(g);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "@s1"));
	free(text);
	release(&ref, 1);
	free(got.data);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	model_free(&m);
}

static int place_nowhere(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
			 char *why, size_t why_len)
{
	for (int x = 0; x < dj_graph_node_count(g); x++)
		server[x] = 5;
	return 0;
}

static void test_errors_name_the_node(void)
{
	struct dj_tensor_desc d = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 1, .shape = {4}};
	float xs[4] = {1, 2, 3, 4};
	struct dj_tensor unbound = {.desc = d, .mem = DJ_MEM_HOST};
	struct dj_tensor tx = {.desc = d, .data = xs, .mem = DJ_MEM_HOST}, got = {0};
	struct dj_graph_placer nowhere = {.place = place_nowhere};
	struct dj_graph_options o;
	struct dj_graph_ctx *ctx;
	struct dj_graph *g;
	int x, w, bad, y, before = test_server_tensors(&srv[0]);

	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(NULL, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	x = dj_graph_input(g, "x", &unbound);
	w = dj_graph_param(g, "w", &tx);
	y = op2(g, "mul", x, w, NULL);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &y, 1, &got), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "input 0 ('x') has no data"));
	CU_ASSERT_EQUAL(dj_graph_fetch(g, (int[]){99}, 1, &got), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_bind(g, x, &tx), 0);
	/* An operation the server does not know: the error names the node. */
	bad = gr_op_raw(g, "no_such_op", &y, 1, NULL, &d);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &bad, 1, &got), -DJ_EUNKNOWN_OP);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "node 3 on server 0: no_such_op"));
	/* All or nothing: the weight put in that batch is gone, not cached. */
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before);
	CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &y, 1, &got), 0);
	CU_ASSERT(((float *)got.data)[3] == 16);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);

	dj_graph_options_init(&o);
	o.placer = &nowhere;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	y = op1(g, "relu", dj_graph_input(g, "x", &tx), NULL);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &y, 1, &got), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "on server 5 of 1"));
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	free(got.data);
	CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before);
}

/* Nothing inline: every upload is a PUT of its own, one wave before the
 * batch; inputs PUT that way are freed after the run. */
static void test_uploads_too_large_for_a_batch(void)
{
	struct dj_graph_options o;
	struct dj_graph_run_stats st;
	struct dj_graph_ctx *ctx;
	struct dj_graph *g;
	struct model m;
	struct block b;
	struct dj_tensor got = {0}, ref;
	int before = test_server_tensors(&srv[0]);

	model_make(&m);
	dj_graph_options_init(&o);
	o.inline_max = 0;
	CU_ASSERT_EQUAL_FATAL(dj_graph_ctx_create(&o, &srv[0].conn, 1, &ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(ctx, &g), 0);
	block_record(g, &m, &b);
	for (int run = 0; run < 2; run++) {
		CU_ASSERT_EQUAL_FATAL(dj_graph_fetch(g, &b.y, 1, &got), 0);
		dj_graph_last_run(g, &st);
		CU_ASSERT_EQUAL(st.round_trips, 2);
		CU_ASSERT_EQUAL(st.puts_separate, run == 0 ? N_PARAMS + 2 : 2);
		CU_ASSERT_EQUAL(st.puts_inline, 0);
		CU_ASSERT_EQUAL(st.frees_async, 2);
		CU_ASSERT_EQUAL(test_server_tensors(&srv[0]), before + N_PARAMS);
	}
	local_fetch(g, &b.y, 1, &ref);
	CU_ASSERT(same_bytes(&got, &ref));
	release(&ref, 1);
	free(got.data);
	dj_graph_destroy(g);
	dj_graph_ctx_destroy(ctx);
	model_free(&m);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"one round trip; equal to one by one and local",
		 test_one_round_trip_equals_one_by_one_and_local},
		{"parameters uploaded once across runs and graphs", test_params_uploaded_once},
		{"state made once, read by later graphs", test_state_across_graphs},
		{"two servers, MLP placed apart", test_two_servers},
		{"errors name the node; nothing left behind", test_errors_name_the_node},
		{"uploads too large for a batch", test_uploads_too_large_for_a_batch},
		{"a stalled server fails the run; nothing lands late", test_stalled_server},
		{NULL, NULL},
	};

	dj_test_add_suite("graph_remote", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
