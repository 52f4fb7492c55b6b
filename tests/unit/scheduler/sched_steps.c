/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The scheduler tests' shared graphs and checks (sched_steps.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sched_steps.h"


/* Zeroed storage every host tensor points into (recording reads no data;
 * parameters are hashed, all the same here, told apart by name). */
static float storage[1 << 14];
static int64_t ids[P];

struct dj_tensor host(enum dj_dtype dt, int ndim, int64_t a, int64_t b)
{
	return (struct dj_tensor){.desc = {.dtype = dt, .ndim = ndim, .shape = {a, b}},
				  .data = dt == DJ_DTYPE_INT64 ? (void *)ids : (void *)storage,
				  .mem = DJ_MEM_HOST};
}

void weights_record(struct dj_graph *g, struct weights *w, uint64_t salt)
{
	struct dj_tensor emb = host(DJ_DTYPE_FLOAT32, 2, V, D), sq = host(DJ_DTYPE_FLOAT32, 2, D, D),
			 up = host(DJ_DTYPE_FLOAT32, 2, F, D), down = host(DJ_DTYPE_FLOAT32, 2, D, F);

	w->emb = dj_graph_param_hashed(g, "emb", &emb, salt + 1);
	w->wq = dj_graph_param_hashed(g, "wq", &sq, salt + 2);
	w->wk = dj_graph_param_hashed(g, "wk", &sq, salt + 3);
	w->wv = dj_graph_param_hashed(g, "wv", &sq, salt + 4);
	w->w1 = dj_graph_param_hashed(g, "w1", &up, salt + 5);
	w->w2 = dj_graph_param_hashed(g, "w2", &down, salt + 6);
}

int op1(struct dj_graph *g, const char *op, int a, const char *attrs)
{
	return dj_graph_op(g, op, &a, 1, attrs);
}

int op2(struct dj_graph *g, const char *op, int a, int b)
{
	return dj_graph_op(g, op, (int[]){a, b}, 2, NULL);
}

/* One step of sequence seq: T tokens at position pos (one attention head
 * over its caches [1, P, D]). Returns the argmax. */
int seq_step(struct dj_graph *g, const struct weights *w, int seq, int pos, int T)
{
	struct dj_tensor tok = host(DJ_DTYPE_INT64, 2, 1, T);
	struct dj_tensor_desc cache = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 3, .shape = {1, P, D}};
	char name[32], attrs[96];
	int x, q, k, v, kc, vc, a;

	x = op2(g, "embedding", dj_graph_input(g, "tok", &tok), w->emb);
	q = op2(g, "linear", x, w->wq);
	k = op2(g, "linear", x, w->wk);
	v = op2(g, "linear", x, w->wv);
	snprintf(name, sizeof(name), "seq%d/k", seq);
	kc = dj_graph_state(g, name, &cache, NULL);
	snprintf(name, sizeof(name), "seq%d/v", seq);
	vc = dj_graph_state(g, name, &cache, NULL);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", pos);
	kc = dj_graph_op(g, "slice_write", (int[]){kc, k}, 2, attrs);
	vc = dj_graph_op(g, "slice_write", (int[]){vc, v}, 2, attrs);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":0,\"length\":%d}", pos + T);
	kc = op1(g, "narrow", kc, attrs);
	vc = op1(g, "narrow", vc, attrs);
	a = dj_graph_op(g, "scaled_dot_product_attention", (int[]){q, kc, vc}, 3,
			T > 1 ? "{\"is_causal\":true}" : NULL);
	x = op2(g, "add", x, a);
	x = op2(g, "add", x, op2(g, "linear", op1(g, "relu", op2(g, "linear", x, w->w1), NULL),
				 w->w2));
	return op1(g, "argmax", op2(g, "linear", x, w->emb), "{\"dim\":-1}");
}

/* A graph of n sequences first..first+n-1, each T tokens at pos. */
struct dj_graph *step_graph(int first, int n, int pos, int T, int *out)
{
	struct dj_graph *g;
	struct weights w;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	weights_record(g, &w, 0);
	for (int i = 0; i < n; i++) {
		out[i] = seq_step(g, &w, first + i, pos, T);
		CU_ASSERT_FATAL(out[i] >= 0);
	}
	return g;
}

struct dj_sched *sched_new(const struct dj_sched_fleet *f, enum dj_sched_weights weights,
				  uint64_t prefill, uint64_t decode)
{
	struct dj_sched_options o;
	struct dj_sched *s;

	dj_sched_options_init(&o);
	o.weights = weights;
	o.prefill_servers = prefill;
	o.decode_servers = decode;
	CU_ASSERT_EQUAL_FATAL(dj_sched_create_sim(&o, f, &s), 0);
	CU_ASSERT_PTR_NULL(dj_sched_ctx(s));
	return s;
}

/* Place a graph (a simulated run), returning the plan's counters. */
int plan(struct dj_sched *s, struct dj_graph *g, const int *out, int n,
		struct dj_graph_run_stats *st)
{
	int rc = dj_sched_plan(s, g, out, n, st);

	if (rc != 0)
		printf("\n  plan: %s (%s)\n", dj_strerror(rc), dj_graph_error(g));
	return rc;
}

/* How many sequences live on each server; *where the server of each. */
void spread(struct dj_sched *s, int n_servers, int *count, int *where, int n_seq)
{
	struct dj_sched_sequence q[64];
	int n = dj_sched_sequences(s, q, 64);

	memset(count, 0, sizeof(int) * (size_t)n_servers);
	for (int i = 0; i < n; i++) {
		int id = atoi(q[i].name + 3);

		if (!q[i].lost)
			count[q[i].server]++;
		if (id < n_seq)
			where[id] = q[i].server;
	}
}

/* The server every op node of the graph runs on must be one value for each
 * sequence: *bad counts ops elsewhere than where[seq] says. */
int ops_off_seq(struct dj_graph *g, const int *out, int n, const int *where)
{
	int bad = 0, seq = 0;

	for (int x = 0; x < dj_graph_node_count(g); x++) {
		struct dj_graph_node_info ni;

		dj_graph_node(g, x, &ni);
		if (seq < n && x > out[seq])
			seq++;
		if (ni.kind == DJ_GRAPH_OP && seq < n && ni.server != where[seq])
			bad++;
	}
	return bad;
}

int count_rule(struct dj_sched *s, enum dj_sched_rule rule)
{
	const struct dj_sched_decision *d;
	int n = dj_sched_decisions(s, &d), c = 0;

	for (int i = 0; i < n; i++)
		c += d[i].rule == rule;
	return c;
}

