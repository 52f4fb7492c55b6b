/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Semantic annotations of a recorded graph: every node's residency, the
 * patterns it takes part in (attention, MLP, normalisation, KV-cache append)
 * with its role there, an estimate of its floating-point work, and the
 * graph's phase (prefill, decode, unknown). A scheduler reads them through
 * dj_graph_node() and dj_graph_phase(). The recogniser keys on the server's
 * operation names, so it knows operations this build's table may lack yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gr.h"

/* Who reads each node: users of node i are list[off[i] .. off[i + 1]). */
struct users {
	int *off, *list;
};

static int users_build(const struct dj_graph *g, struct users *u)
{
	int *fill;

	u->off = calloc((size_t)g->n + 1, sizeof(int));
	u->list = NULL;
	fill = calloc((size_t)g->n + 1, sizeof(int));
	if (u->off == NULL || fill == NULL)
		goto error;
	for (int i = 0; i < g->n; i++)
		for (int k = 0; k < g->nodes[i].n_in; k++)
			u->off[g->nodes[i].in[k] + 1]++;
	for (int i = 0; i < g->n; i++)
		u->off[i + 1] += u->off[i];
	u->list = malloc(sizeof(int) * (size_t)(u->off[g->n] > 0 ? u->off[g->n] : 1));
	if (u->list == NULL)
		goto error;
	for (int i = 0; i < g->n; i++)
		for (int k = 0; k < g->nodes[i].n_in; k++) {
			int src = g->nodes[i].in[k];

			u->list[u->off[src] + fill[src]++] = i;
		}
	free(fill);
	return 0;
error:
	free(fill);
	free(u->off);
	free(u->list);
	return -ENOMEM;
}

static int is_op(const struct dj_graph *g, int id, const char *name)
{
	const struct gr_node *n = id >= 0 ? &g->nodes[id] : NULL;

	return n != NULL && n->kind == DJ_GRAPH_OP && strcmp(n->op_name, name) == 0;
}

static int is_matmul_like(const struct dj_graph *g, int id)
{
	return is_op(g, id, "matmul") || is_op(g, id, "linear");
}

static int is_activation(const struct dj_graph *g, int id)
{
	static const char *const acts[] = {"relu", "gelu", "silu", "sigmoid", "tanh"};

	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (is_op(g, id, acts[i]))
			return 1;
	return 0;
}

static void mark(struct dj_graph *g, int id, uint32_t pattern, int block, const char *role)
{
	if (id < 0)
		return;
	g->nodes[id].patterns |= pattern;
	g->nodes[id].block = block;
	g->nodes[id].role = role;
}

/* The user of id that is op `name` reading id as its input 0, or -1. */
static int user_as_first(const struct dj_graph *g, const struct users *u, int id,
			 int (*want)(const struct dj_graph *, int))
{
	for (int k = u->off[id]; k < u->off[id + 1]; k++) {
		int user = u->list[k];

		if (want(g, user) && g->nodes[user].in[0] == id)
			return user;
	}
	return -1;
}

static int is_matmul(const struct dj_graph *g, int id)
{
	return is_op(g, id, "matmul");
}

static int dim_from_end(const struct dj_tensor_desc *d, int k)
{
	return d->ndim >= k ? (int)d->shape[d->ndim - k] : 1;
}

static void note_attention(struct dj_graph *g, int query_len, int key_len)
{
	g->annot.n_attention++;
	if (query_len > g->annot.query_len)
		g->annot.query_len = query_len;
	if (key_len > g->annot.key_len)
		g->annot.key_len = key_len;
}

/* The operand of a scale or mask node the scores come through: the one
 * that is itself a matmul, scale or mask (the factor and the mask are
 * leaves or other ops); a divisor is never it. */
static int chain_operand(const struct dj_graph *g, int id)
{
	const struct gr_node *n = &g->nodes[id];
	int last = is_op(g, id, "div") ? 1 : n->n_in;

	for (int k = 0; k < last; k++) {
		int x = n->in[k];

		if (is_matmul(g, x) || is_op(g, x, "add") || is_op(g, x, "mul") || is_op(g, x, "div"))
			return x;
	}
	return n->in[0];
}

/*
 * Unfused attention around softmax s: back from s through at most one
 * scale (mul, div) and one mask (add), in either order, to the q.k^T
 * matmul (its k side a transpose, where it is one); forward to the matmul
 * that multiplies the probabilities by v.
 */
static void attention_unfused(struct dj_graph *g, const struct users *u, int s)
{
	int x = g->nodes[s].in[0], scale = -1, mask = -1, qk = -1, kt, av;

	for (int step = 0; step < 3 && x >= 0 && qk < 0; step++) {
		if (is_matmul(g, x)) {
			qk = x;
		} else if ((is_op(g, x, "mul") || is_op(g, x, "div")) && scale < 0) {
			scale = x;
			x = chain_operand(g, x);
		} else if (is_op(g, x, "add") && mask < 0) {
			mask = x;
			x = chain_operand(g, x);
		} else {
			x = -1;
		}
	}
	av = user_as_first(g, u, s, is_matmul);
	if (qk < 0 || av < 0)
		return;
	kt = is_op(g, g->nodes[qk].in[1], "transpose") ? g->nodes[qk].in[1] : -1;
	int block = g->annot.n_attention + g->annot.n_mlp;

	mark(g, qk, DJ_PAT_ATTENTION, block, "qk");
	mark(g, kt, DJ_PAT_ATTENTION, block, "kt");
	mark(g, scale, DJ_PAT_ATTENTION, block, "scale");
	mark(g, mask, DJ_PAT_ATTENTION, block, "mask");
	mark(g, s, DJ_PAT_ATTENTION, block, "softmax");
	mark(g, av, DJ_PAT_ATTENTION, block, "av");
	note_attention(g, dim_from_end(&g->nodes[qk].desc, 2), dim_from_end(&g->nodes[qk].desc, 1));
}

static void attention_fused(struct dj_graph *g, int id)
{
	const struct gr_node *n = &g->nodes[id];

	mark(g, id, DJ_PAT_ATTENTION, g->annot.n_attention + g->annot.n_mlp, "sdpa");
	note_attention(g, dim_from_end(&g->nodes[n->in[0]].desc, 2),
		       n->n_in > 1 ? dim_from_end(&g->nodes[n->in[1]].desc, 2) : 0);
}

static int is_free_matmul(const struct dj_graph *g, int id)
{
	return is_matmul_like(g, id) && g->nodes[id].patterns == 0;
}

/* act(up(x)) [* gate(x)] -> down: an MLP block, SwiGLU's gate included. */
static void mlp(struct dj_graph *g, const struct users *u, int act)
{
	int up = g->nodes[act].in[0], gate = -1, mul = -1, down;

	if (!is_free_matmul(g, up) || g->nodes[act].patterns != 0)
		return;
	for (int k = u->off[act]; k < u->off[act + 1] && mul < 0; k++) {
		int user = u->list[k];
		const struct gr_node *m = &g->nodes[user];

		if (is_op(g, user, "mul") && m->n_in == 2) {
			int other = m->in[0] == act ? m->in[1] : m->in[0];

			if (is_free_matmul(g, other)) {
				mul = user;
				gate = other;
			}
		}
	}
	down = user_as_first(g, u, mul >= 0 ? mul : act, is_free_matmul);
	if (down < 0)
		return;
	int block = g->annot.n_attention + g->annot.n_mlp;

	g->annot.n_mlp++;
	mark(g, up, DJ_PAT_MLP, block, "up");
	mark(g, act, DJ_PAT_MLP, block, "act");
	mark(g, gate, DJ_PAT_MLP, block, "gate");
	mark(g, mul, DJ_PAT_MLP, block, "mul");
	mark(g, down, DJ_PAT_MLP, block, "down");
}

/* A write into state: its start and the number of positions written. */
static void kv_append(struct dj_graph *g, int id)
{
	struct gr_node *n = &g->nodes[id];
	struct gr_annot *a = &g->annot;
	const struct dj_tensor_desc *src = n->n_in > 1 ? &g->nodes[n->in[1]].desc : &n->desc;
	int64_t dim = gr_attr_int(n, "dim", 0), start = gr_attr_int(n, "start", 0);
	int len;

	if (dim < 0)
		dim += src->ndim;
	len = dim >= 0 && dim < src->ndim ? (int)src->shape[dim] : 1;
	mark(g, id, DJ_PAT_KV_APPEND, -1, "append");
	if (a->n_appends == 0 || start < a->append_min_start)
		a->append_min_start = (int)start;
	if (len > a->append_max_len)
		a->append_max_len = len;
	a->n_appends++;
}

static double numel(const struct dj_tensor_desc *d)
{
	return (double)dj_tensor_numel(d);
}

/* Floating-point operations of an op node, roughly: what a cost model
 * weighs compute with. Data movement (reshape, narrow, ...) counts 0. */
static double flops(const struct dj_graph *g, const struct gr_node *n)
{
	static const char *const moves[] = {
		"transpose", "reshape", "cat", "embedding", "narrow", "slice_write",
	};
	static const char *const heavy[] = {"softmax", "layer_norm", "rms_norm", "gelu", "silu"};
	const struct dj_tensor_desc *a = n->n_in > 0 ? &g->nodes[n->in[0]].desc : NULL;
	struct tn_op_matmul_plan plan;

	if (strcmp(n->op_name, "matmul") == 0 && n->n_in == 2 &&
	    tn_op_matmul_plan(a, &g->nodes[n->in[1]].desc, &plan) == 0)
		return 2.0 * (double)plan.m * (double)plan.k * (double)plan.n * (double)plan.batch;
	if (strcmp(n->op_name, "linear") == 0 && a != NULL && a->ndim > 0)
		return 2.0 * numel(&n->desc) * (double)a->shape[a->ndim - 1];
	if (strcmp(n->op_name, "scaled_dot_product_attention") == 0 && n->n_in >= 2)
		return 4.0 * numel(a) * (double)dim_from_end(&g->nodes[n->in[1]].desc, 2);
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		if (strcmp(n->op_name, moves[i]) == 0)
			return 0;
	for (size_t i = 0; i < sizeof(heavy) / sizeof(heavy[0]); i++)
		if (strcmp(n->op_name, heavy[i]) == 0)
			return 5.0 * numel(&n->desc);
	return a != NULL && numel(a) > numel(&n->desc) ? numel(a) : numel(&n->desc);
}

static enum dj_graph_residency residency(const struct dj_graph *g, const struct gr_node *n)
{
	const struct gr_node *root = &g->nodes[n->root];

	if (root->kind == DJ_GRAPH_PARAM)
		return DJ_RES_PERSISTENT_WEIGHT;
	if (root->kind == DJ_GRAPH_STATE)
		return DJ_RES_STATEFUL_KV_CACHE;
	return DJ_RES_EPHEMERAL_ACTIVATION;
}

/* The state a KV append writes, for the phase's reason. */
static const char *first_state_written(const struct dj_graph *g, int *count)
{
	const char *name = "";

	*count = 0;
	for (int i = 0; i < g->n; i++)
		if (g->nodes[i].patterns & DJ_PAT_KV_APPEND) {
			if ((*count)++ == 0)
				name = g->nodes[g->nodes[i].root].name;
		}
	return name;
}

static void phase(struct dj_graph *g)
{
	struct gr_annot *a = &g->annot;
	int n_states, len = a->n_attention > 0 ? a->query_len : a->append_max_len;
	const char *state = first_state_written(g, &n_states);
	char states[160];

	if (n_states > 1)
		snprintf(states, sizeof(states), "%d states ('%.64s' first)", n_states, state);
	else
		snprintf(states, sizeof(states), "state '%.64s'", state);
	if (a->n_appends == 0) {
		a->phase = DJ_PHASE_UNKNOWN;
		if (a->n_attention == 0)
			snprintf(a->reason, sizeof(a->reason), "no attention and no KV-cache append");
		else
			snprintf(a->reason, sizeof(a->reason), "attention with query length %d but no "
				 "KV-cache append", a->query_len);
	} else if (len == 1 && a->append_min_start > 0) {
		a->phase = DJ_PHASE_DECODE;
		snprintf(a->reason, sizeof(a->reason), "query length 1; appends 1 position at %d "
			 "to %s", a->append_min_start, states);
	} else {
		a->phase = DJ_PHASE_PREFILL;
		snprintf(a->reason, sizeof(a->reason), "query length %d; %s filled from position "
			 "%d%s", len, states, a->append_min_start,
			 a->append_min_start > 0 ? " (chunked prefill)" : " (cache created)");
	}
}

int gr_annotate(struct dj_graph *g)
{
	struct users u;

	if (g->annot.valid)
		return 0;
	if (users_build(g, &u) != 0)
		return -ENOMEM;
	memset(&g->annot, 0, sizeof(g->annot));
	for (int i = 0; i < g->n; i++) {
		struct gr_node *n = &g->nodes[i];

		n->residency = residency(g, n);
		n->patterns = 0;
		n->block = -1;
		n->role = "";
		n->flops = n->kind == DJ_GRAPH_OP ? flops(g, n) : 0;
	}
	/* Attention first: its matmuls are then no MLP's. */
	for (int i = 0; i < g->n; i++) {
		if (is_op(g, i, "softmax"))
			attention_unfused(g, &u, i);
		else if (is_op(g, i, "scaled_dot_product_attention"))
			attention_fused(g, i);
	}
	for (int i = 0; i < g->n; i++) {
		if (is_activation(g, i))
			mlp(g, &u, i);
		else if (is_op(g, i, "layer_norm") || is_op(g, i, "rms_norm"))
			mark(g, i, DJ_PAT_NORM, -1, "norm");
		else if (g->nodes[i].writes >= 0 &&
			 g->nodes[g->nodes[i].root].kind == DJ_GRAPH_STATE)
			kv_append(g, i);
	}
	phase(g);
	free(u.off);
	free(u.list);
	g->annot.valid = 1;
	return 0;
}

enum dj_graph_phase dj_graph_phase(struct dj_graph *g, const char **reason)
{
	if (gr_annotate(g) != 0) {
		if (reason != NULL)
			*reason = "out of memory";
		return DJ_PHASE_UNKNOWN;
	}
	if (reason != NULL)
		*reason = g->annot.reason;
	return g->annot.phase;
}

int dj_graph_node(struct dj_graph *g, int id, struct dj_graph_node_info *info)
{
	const struct gr_node *n;

	if (id < 0 || id >= g->n)
		return -EINVAL;
	if (gr_annotate(g) != 0)
		return -ENOMEM;
	n = &g->nodes[id];
	memset(info, 0, sizeof(*info));
	info->kind = n->kind;
	info->name = n->kind == DJ_GRAPH_OP ? n->op_name : n->name != NULL ? n->name : "";
	info->attrs_json = n->kind == DJ_GRAPH_OP ? n->attrs_json : "";
	info->n_in = n->n_in;
	memcpy(info->inputs, n->in, sizeof(int) * (size_t)n->n_in);
	info->desc = n->desc;
	info->nbytes = dj_tensor_nbytes(&n->desc);
	info->inferred = n->inferred;
	info->writes = n->writes;
	info->state = g->nodes[n->root].kind == DJ_GRAPH_STATE ? n->root : -1;
	info->residency = n->residency;
	info->patterns = n->patterns;
	info->block = n->block;
	info->role = n->role;
	info->flops = n->flops;
	info->hash = n->hash;
	info->resident = gr_ctx_resident(g->ctx, n);
	info->server = n->server;
	return 0;
}
