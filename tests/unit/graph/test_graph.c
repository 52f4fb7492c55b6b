/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lazy graphs without a server: shapes inferred at record time, record-time
 * errors naming node and operation, error propagation through a chain,
 * annotations of a transformer block (attention, MLP, norms) with today's
 * operations and, through descriptors, with the decoder operations the table
 * may lack yet (embedding, rms_norm, narrow, scaled_dot_product_attention,
 * slice_write, argmax); prefill vs decode; the plan that cuts a run into
 * per-server batches (puts, fetches, frees, stages, transfers, placement
 * checks); the content hash against libxxhash.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/gr.h"
#include "harness.h"

static struct dj_tensor_desc desc(enum dj_dtype dt, int ndim, const int64_t *shape)
{
	struct dj_tensor_desc d = {.dtype = dt, .ndim = ndim};

	memcpy(d.shape, shape, sizeof(int64_t) * (size_t)ndim);
	return d;
}

#define DESC(dt, ...) desc(dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
			   (int64_t[]){__VA_ARGS__})
/* A pointer to such a description, for calls that take one. */
#define PDESC(dt, ...) (&(struct dj_tensor_desc[1]){DESC(dt, __VA_ARGS__)}[0])

static int desc_is(struct dj_tensor_desc got, struct dj_tensor_desc want)
{
	return dj_tensor_desc_equal(&got, &want);
}

/* A host tensor of d over static zeroed storage (recording reads no data,
 * except dj_graph_param's hash). */
static struct dj_tensor host(struct dj_tensor_desc d)
{
	static float storage[1 << 16];

	return (struct dj_tensor){.desc = d, .data = storage, .mem = DJ_MEM_HOST};
}

static int input(struct dj_graph *g, const char *name, struct dj_tensor_desc d)
{
	struct dj_tensor t = host(d);

	return dj_graph_input(g, name, &t);
}

static int param(struct dj_graph *g, const char *name, struct dj_tensor_desc d)
{
	struct dj_tensor t = host(d);

	return dj_graph_param(g, name, &t);
}

static int op(struct dj_graph *g, const char *name, int a, int b, const char *attrs)
{
	int in[2] = {a, b};

	return dj_graph_op(g, name, in, b < -1000 ? 1 : 2, attrs);
}

#define ONE (-100000) /* op(): a unary operation */

static struct dj_graph_node_info info(struct dj_graph *g, int id)
{
	struct dj_graph_node_info ni;

	CU_ASSERT_EQUAL_FATAL(dj_graph_node(g, id, &ni), 0);
	return ni;
}

/* The graph's text has every one of wants (NULL-terminated). */
static void describe_has(struct dj_graph *g, const char *const *wants)
{
	char *text = dj_graph_describe(g);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	for (; *wants != NULL; wants++) {
		if (strstr(text, *wants) == NULL)
			printf("\n  no '%s' in:\n%s", *wants, text);
		CU_ASSERT_PTR_NOT_NULL(strstr(text, *wants));
	}
	free(text);
}

static void test_shapes_inferred(void)
{
	struct dj_graph *g;
	int x, w, b, y, s, t, r;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	x = input(g, "x", DESC(DJ_DTYPE_FLOAT32, 2, 3));
	w = param(g, "w", DESC(DJ_DTYPE_FLOAT32, 4, 3));
	b = param(g, "b", DESC(DJ_DTYPE_FLOAT32, 4));
	y = dj_graph_op(g, "linear", (int[]){x, w, b}, 3, NULL);
	CU_ASSERT_EQUAL(y, 3);
	CU_ASSERT(desc_is(info(g, y).desc, DESC(DJ_DTYPE_FLOAT32, 2, 4)));
	t = op(g, "transpose", y, ONE, NULL);
	CU_ASSERT(desc_is(info(g, t).desc, DESC(DJ_DTYPE_FLOAT32, 4, 2)));
	r = op(g, "reshape", t, ONE, "{\"shape\":[-1]}");
	CU_ASSERT_EQUAL(info(g, r).desc.shape[0], 8);
	CU_ASSERT_STRING_EQUAL(info(g, r).attrs_json, "{\"shape\":[-1]}");
	/* Output dtypes follow the table: sum of int32 is int64. */
	s = op(g, "sum", input(g, "i", DESC(DJ_DTYPE_INT32, 5)), ONE, NULL);
	CU_ASSERT_EQUAL(info(g, s).desc.dtype, DJ_DTYPE_INT64);
	CU_ASSERT_EQUAL(info(g, s).desc.ndim, 0);
	CU_ASSERT_EQUAL(info(g, s).inferred, 1);
	CU_ASSERT_STRING_EQUAL(dj_graph_error(g), "");
	CU_ASSERT_EQUAL(dj_graph_node_count(g), 8);
	dj_graph_destroy(g);
}

/* dj_graph_node_desc: each node's description as recorded, no annotation
 * run (the annotations stay stale until dj_graph_node asks for them). */
static void test_node_desc(void)
{
	struct dj_tensor_desc d;
	struct dj_graph *g;
	int x, w, y;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	x = input(g, "x", DESC(DJ_DTYPE_FLOAT16, 2, 7, 3));
	w = param(g, "w", DESC(DJ_DTYPE_FLOAT16, 5, 3));
	y = dj_graph_op(g, "linear", (int[]){x, w}, 2, NULL);
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, y, &d), 0);
	CU_ASSERT(desc_is(d, DESC(DJ_DTYPE_FLOAT16, 2, 7, 5)));
	CU_ASSERT_EQUAL(g->annot.valid, 0);
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, x, &d), 0);
	CU_ASSERT(desc_is(d, DESC(DJ_DTYPE_FLOAT16, 2, 7, 3)));
	y = op(g, "argmax", y, ONE, "{\"dim\":-1}");
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, y, &d), 0);
	CU_ASSERT(desc_is(d, DESC(DJ_DTYPE_INT64, 2, 7)));
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, y + 1, &d), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, -1, &d), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_node_desc(g, y, NULL), -EINVAL);
	dj_graph_destroy(g);
}

static void test_record_errors(void)
{
	struct dj_graph *g;
	int a, b, bad, chained, n;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	a = input(g, "a", DESC(DJ_DTYPE_FLOAT32, 3, 4));
	b = input(g, "b", DESC(DJ_DTYPE_FLOAT32, 5, 6));
	n = dj_graph_node_count(g);
	bad = op(g, "matmul", a, b, NULL);
	CU_ASSERT_EQUAL(bad, -DJ_ESHAPE);
	CU_ASSERT_STRING_EQUAL(dj_graph_error(g), "node 2: matmul: inner dimensions differ: [3,4] @ [5,6]");
	/* The error flows through a chain; no node is added; the first
	 * message stays. */
	chained = op(g, "relu", op(g, "exp", bad, ONE, NULL), ONE, NULL);
	CU_ASSERT_EQUAL(chained, -DJ_ESHAPE);
	CU_ASSERT_EQUAL(dj_graph_node_count(g), n);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "matmul"));
	dj_graph_destroy(g);

	/* Each kind of mistake, each with its own message. */
	static const struct {
		const char *op, *attrs;
		int dtype_b, code;
		const char *msg;
	} cases[] = {
		{"conv9d", NULL, 0, -DJ_EUNKNOWN_OP, "node 2: conv9d: unknown operation"},
		{"add", NULL, DJ_DTYPE_INT32, -DJ_EDTYPE, "node 2: add: dtypes differ"},
		{"mul", "{\"dim\":1}", 0, -EINVAL, "node 2: mul: attribute 'dim'"},
		{"softmax", "not json", 0, -EINVAL, "node 2: softmax: attributes are not a JSON object"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
		a = input(g, "a", DESC(DJ_DTYPE_FLOAT32, 2, 2));
		b = input(g, "b", DESC((enum dj_dtype)cases[i].dtype_b, 2, 2));
		CU_ASSERT_EQUAL(op(g, cases[i].op, a, strcmp(cases[i].op, "softmax") == 0 ? ONE : b,
				   cases[i].attrs), cases[i].code);
		if (strncmp(dj_graph_error(g), cases[i].msg, strlen(cases[i].msg)) != 0)
			printf("\n  got '%s', want '%s...'\n", dj_graph_error(g), cases[i].msg);
		CU_ASSERT_EQUAL(strncmp(dj_graph_error(g), cases[i].msg, strlen(cases[i].msg)), 0);
		dj_graph_destroy(g);
	}

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	a = input(g, "a", DESC(DJ_DTYPE_FLOAT32, 2));
	CU_ASSERT_EQUAL(op(g, "add", a, 7, NULL), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "input 1 is node 7, which does not exist"));
	CU_ASSERT_EQUAL(dj_graph_param(g, NULL, &(struct dj_tensor){.desc = DESC(DJ_DTYPE_FLOAT32, 2),
							 .data = g, .mem = DJ_MEM_HOST}), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_input(g, "gpu", &(struct dj_tensor){.desc = DESC(DJ_DTYPE_FLOAT32, 2),
							  .mem = DJ_MEM_GPU}), -EINVAL);
	/* A state's name means one description. */
	struct dj_tensor_desc kd = DESC(DJ_DTYPE_FLOAT32, 4, 8), other = DESC(DJ_DTYPE_FLOAT32, 4, 9);
	CU_ASSERT(dj_graph_state(g, "k", &kd, NULL) >= 0);
	CU_ASSERT(dj_graph_state(g, "k", &kd, NULL) >= 0);
	CU_ASSERT_EQUAL(dj_graph_state(g, "k", &other, NULL), -EINVAL);
	/* In-place writes never touch a parameter. */
	int w = param(g, "w", kd);
	CU_ASSERT_EQUAL(gr_op_raw(g, "slice_write", (int[]){w, a}, 2, "{\"dim\":0,\"start\":0}", &kd),
			-EINVAL);
	CU_ASSERT_EQUAL(dj_graph_fetch(g, &a, 1, &(struct dj_tensor){0}), -ENOTCONN);
	dj_graph_destroy(g);
}

/*
 * One pre-norm transformer block with today's operations:
 *   x -> layer_norm -> q, k, v (linear) -> q.k^T (matmul, transpose) ->
 *   * scale -> + mask -> softmax -> .v -> linear -> + x -> layer_norm ->
 *   MLP (linear, gelu, linear; or SwiGLU: silu(linear) * linear, linear) -> + residual.
 */
struct block {
	int x, ln1, q, k, v, kt, qk, scaled, masked, probs, av, o, h, ln2, up, act, gate, mul, down, y;
};

static void block_record(struct dj_graph *g, int swiglu, struct block *b)
{
	const int64_t T = 6, D = 8, F = 16;
	int g1 = param(g, "ln1.w", DESC(DJ_DTYPE_FLOAT32, D));
	int wq = param(g, "wq", DESC(DJ_DTYPE_FLOAT32, D, D)), wk = param(g, "wk", DESC(DJ_DTYPE_FLOAT32, D, D));
	int wv = param(g, "wv", DESC(DJ_DTYPE_FLOAT32, D, D)), wo = param(g, "wo", DESC(DJ_DTYPE_FLOAT32, D, D));
	int w1 = param(g, "w1", DESC(DJ_DTYPE_FLOAT32, F, D)), w2 = param(g, "w2", DESC(DJ_DTYPE_FLOAT32, D, F));
	int scale = param(g, "scale", DESC(DJ_DTYPE_FLOAT32, 1));
	int mask = input(g, "mask", DESC(DJ_DTYPE_FLOAT32, T, T));

	b->x = input(g, "x", DESC(DJ_DTYPE_FLOAT32, 1, T, D));
	b->ln1 = op(g, "layer_norm", b->x, g1, NULL);
	b->q = op(g, "linear", b->ln1, wq, NULL);
	b->k = op(g, "linear", b->ln1, wk, NULL);
	b->v = op(g, "linear", b->ln1, wv, NULL);
	b->kt = op(g, "transpose", b->k, ONE, NULL);
	b->qk = op(g, "matmul", b->q, b->kt, NULL);
	b->scaled = op(g, "mul", b->qk, scale, NULL);
	b->masked = op(g, "add", b->scaled, mask, NULL);
	b->probs = op(g, "softmax", b->masked, ONE, "{\"dim\":-1}");
	b->av = op(g, "matmul", b->probs, b->v, NULL);
	b->o = op(g, "linear", b->av, wo, NULL);
	b->h = op(g, "add", b->x, b->o, NULL);
	b->ln2 = op(g, "layer_norm", b->h, ONE, NULL);
	b->up = op(g, "linear", b->ln2, w1, NULL);
	b->act = op(g, swiglu ? "silu" : "gelu", b->up, ONE, NULL);
	b->gate = b->mul = -1;
	if (swiglu) {
		b->gate = op(g, "linear", b->ln2, param(g, "w3", DESC(DJ_DTYPE_FLOAT32, F, D)), NULL);
		b->mul = op(g, "mul", b->act, b->gate, NULL);
	}
	b->down = op(g, "linear", swiglu ? b->mul : b->act, w2, NULL);
	b->y = op(g, "add", b->h, b->down, NULL);
	CU_ASSERT_STRING_EQUAL(dj_graph_error(g), "");
}

static void expect_role(struct dj_graph *g, int id, uint32_t pattern, const char *role)
{
	struct dj_graph_node_info ni = info(g, id);

	if (!(ni.patterns & pattern) || strcmp(ni.role, role) != 0)
		printf("\n  node %d (%s): patterns %#x role '%s', want %#x '%s'\n", id, ni.name,
		       ni.patterns, ni.role, pattern, role);
	CU_ASSERT(ni.patterns & pattern);
	CU_ASSERT_STRING_EQUAL(ni.role, role);
}

static void test_transformer_block_annotation(void)
{
	for (int swiglu = 0; swiglu <= 1; swiglu++) {
		struct dj_graph *g;
		struct block b;
		const char *why;

		CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
		block_record(g, swiglu, &b);
		expect_role(g, b.qk, DJ_PAT_ATTENTION, "qk");
		expect_role(g, b.kt, DJ_PAT_ATTENTION, "kt");
		expect_role(g, b.scaled, DJ_PAT_ATTENTION, "scale");
		expect_role(g, b.masked, DJ_PAT_ATTENTION, "mask");
		expect_role(g, b.probs, DJ_PAT_ATTENTION, "softmax");
		expect_role(g, b.av, DJ_PAT_ATTENTION, "av");
		expect_role(g, b.up, DJ_PAT_MLP, "up");
		expect_role(g, b.act, DJ_PAT_MLP, "act");
		expect_role(g, b.down, DJ_PAT_MLP, "down");
		if (swiglu) {
			expect_role(g, b.gate, DJ_PAT_MLP, "gate");
			expect_role(g, b.mul, DJ_PAT_MLP, "mul");
		}
		expect_role(g, b.ln1, DJ_PAT_NORM, "norm");
		expect_role(g, b.ln2, DJ_PAT_NORM, "norm");
		/* The projections and residual adds are in no pattern. */
		CU_ASSERT_EQUAL(info(g, b.q).patterns, 0);
		CU_ASSERT_EQUAL(info(g, b.o).patterns, 0);
		CU_ASSERT_EQUAL(info(g, b.h).patterns, 0);
		CU_ASSERT_EQUAL(info(g, b.qk).block, 0);
		CU_ASSERT_EQUAL(info(g, b.up).block, 1);
		CU_ASSERT_EQUAL(info(g, b.x).residency, DJ_RES_EPHEMERAL_ACTIVATION);
		CU_ASSERT_EQUAL(info(g, b.q).residency, DJ_RES_EPHEMERAL_ACTIVATION);
		CU_ASSERT_EQUAL(info(g, 0).residency, DJ_RES_PERSISTENT_WEIGHT);
		/* matmul [1,6,8] @ [1,8,6]: 2 * 6 * 8 * 6 flops. */
		CU_ASSERT_DOUBLE_EQUAL(info(g, b.qk).flops, 576.0, 1e-9);
		CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_UNKNOWN);
		CU_ASSERT_STRING_EQUAL(why, "attention with query length 6 but no KV-cache append");
		describe_has(g, (const char *const[]){"phase unknown", "attention#0:qk",
			"attention#0 (unfused):", swiglu ? "mlp#1:gate" : "mlp#1:up",
			"persistent_weight", "norm: %", NULL});
		dj_graph_destroy(g);
	}
}

/*
 * A decoder step with the new operations, recorded from descriptors (their
 * shapes given, as the table may lack them): embedding, rms_norm, the KV
 * append (slice_write into state), narrow of the cache, fused attention,
 * argmax. tokens [B, L] at position pos, cache [B, 16, D].
 */
struct step {
	int tokens, k_cache, v_cache, kw, vw, kn, vn, attn, norm, next;
};

static void step_record(struct dj_graph *g, int L, int pos, int causal, struct step *s)
{
	const int64_t B = 2, D = 8, V = 32, MAX = 16;
	struct dj_tensor_desc cache = DESC(DJ_DTYPE_FLOAT32, B, MAX, D);
	int emb = param(g, "emb", DESC(DJ_DTYPE_FLOAT32, V, D)), nw = param(g, "norm.w", DESC(DJ_DTYPE_FLOAT32, D));
	int wq = param(g, "wq", DESC(DJ_DTYPE_FLOAT32, D, D)), wk = param(g, "wk", DESC(DJ_DTYPE_FLOAT32, D, D));
	int wv = param(g, "wv", DESC(DJ_DTYPE_FLOAT32, D, D));
	char attrs[96];
	int x, q, k, v, logits;

	s->tokens = input(g, "tokens", DESC(DJ_DTYPE_INT64, B, L));
	s->k_cache = dj_graph_state(g, "k0", &cache, NULL);
	s->v_cache = dj_graph_state(g, "v0", &cache, NULL);
	x = gr_op_raw(g, "embedding", (int[]){s->tokens, emb}, 2, NULL, PDESC(DJ_DTYPE_FLOAT32, B, L, D));
	s->norm = gr_op_raw(g, "rms_norm", (int[]){x, nw}, 2, "{\"eps\":1e-6}", PDESC(DJ_DTYPE_FLOAT32, B, L, D));
	q = op(g, "linear", s->norm, wq, NULL);
	k = op(g, "linear", s->norm, wk, NULL);
	v = op(g, "linear", s->norm, wv, NULL);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", pos);
	s->kw = gr_op_raw(g, "slice_write", (int[]){s->k_cache, k}, 2, attrs, &cache);
	s->vw = gr_op_raw(g, "slice_write", (int[]){s->v_cache, v}, 2, attrs, &cache);
	snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":0,\"length\":%d}", pos + L);
	s->kn = gr_op_raw(g, "narrow", (int[]){s->kw}, 1, attrs, PDESC(DJ_DTYPE_FLOAT32, B, pos + L, D));
	s->vn = gr_op_raw(g, "narrow", (int[]){s->vw}, 1, attrs, PDESC(DJ_DTYPE_FLOAT32, B, pos + L, D));
	s->attn = gr_op_raw(g, "scaled_dot_product_attention", (int[]){q, s->kn, s->vn}, 3,
			    causal ? "{\"is_causal\":true}" : "{\"is_causal\":false}",
			    PDESC(DJ_DTYPE_FLOAT32, B, L, D));
	logits = op(g, "linear", s->attn, emb, NULL);
	s->next = gr_op_raw(g, "argmax", (int[]){logits}, 1, "{\"dim\":-1,\"keepdim\":false}",
			    PDESC(DJ_DTYPE_INT64, B, L));
	CU_ASSERT_STRING_EQUAL(dj_graph_error(g), "");
}

static void test_decoder_ops_annotation(void)
{
	struct dj_graph *g;
	struct step s;
	const char *why;

	/* Decode: one token at position 7. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	step_record(g, 1, 7, 0, &s);
	expect_role(g, s.kw, DJ_PAT_KV_APPEND, "append");
	expect_role(g, s.vw, DJ_PAT_KV_APPEND, "append");
	expect_role(g, s.attn, DJ_PAT_ATTENTION, "sdpa");
	expect_role(g, s.norm, DJ_PAT_NORM, "norm");
	CU_ASSERT_EQUAL(info(g, s.k_cache).residency, DJ_RES_STATEFUL_KV_CACHE);
	CU_ASSERT_EQUAL(info(g, s.kw).residency, DJ_RES_STATEFUL_KV_CACHE);
	CU_ASSERT_EQUAL(info(g, s.kw).writes, s.k_cache);
	CU_ASSERT_EQUAL(info(g, s.kw).state, s.k_cache);
	CU_ASSERT_EQUAL(info(g, s.kn).residency, DJ_RES_EPHEMERAL_ACTIVATION);
	CU_ASSERT_EQUAL(info(g, s.kn).state, -1);
	CU_ASSERT_EQUAL(info(g, s.next).inferred, 0);
	CU_ASSERT_EQUAL(info(g, s.next).desc.dtype, DJ_DTYPE_INT64);
	CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_DECODE);
	CU_ASSERT_STRING_EQUAL(why, "query length 1; appends 1 position at 7 to 2 states ('k0' first)");
	describe_has(g, (const char *const[]){"phase decode", "attention#0 (fused): %",
		"kv_append: %", "stateful_kv_cache", "(description given, not inferred)", NULL});
	dj_graph_destroy(g);

	/* Prefill: a prompt of 8 creates the cache. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	step_record(g, 8, 0, 1, &s);
	CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_PREFILL);
	CU_ASSERT_STRING_EQUAL(why, "query length 8; 2 states ('k0' first) filled from position 0 "
			       "(cache created)");
	dj_graph_destroy(g);

	/* A second chunk of the prompt: still prefill. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	step_record(g, 4, 8, 1, &s);
	CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_PREFILL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "chunked prefill"));
	dj_graph_destroy(g);

	/* A one-token prompt creates the cache: prefill, not decode. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	step_record(g, 1, 0, 0, &s);
	CU_ASSERT_EQUAL(dj_graph_phase(g, NULL), DJ_PHASE_PREFILL);
	dj_graph_destroy(g);

	/* Nothing to say: no attention, no append. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	op(g, "relu", input(g, "x", DESC(DJ_DTYPE_FLOAT32, 3)), ONE, NULL);
	CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_UNKNOWN);
	CU_ASSERT_STRING_EQUAL(why, "no attention and no KV-cache append");
	dj_graph_destroy(g);
}

/* Unfused attention over a cache read, one query: decode, from the qk
 * matmul's shape. */
static void test_unfused_decode_phase(void)
{
	struct dj_tensor_desc cache = DESC(DJ_DTYPE_FLOAT32, 1, 16, 8);
	struct dj_graph *g;
	const char *why;
	int q, k, kc, kw, kt, qk, p;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	q = input(g, "q", DESC(DJ_DTYPE_FLOAT32, 1, 1, 8));
	k = input(g, "k", DESC(DJ_DTYPE_FLOAT32, 1, 1, 8));
	kc = dj_graph_state(g, "k", &cache, NULL);
	kw = gr_op_raw(g, "slice_write", (int[]){kc, k}, 2, "{\"dim\":1,\"start\":9}", &cache);
	kt = op(g, "transpose", kw, ONE, NULL);
	qk = op(g, "matmul", q, kt, NULL);
	p = op(g, "softmax", op(g, "div", qk, param(g, "sqrt_d", DESC(DJ_DTYPE_FLOAT32, 1)), NULL), ONE, NULL);
	op(g, "matmul", p, kw, NULL);
	CU_ASSERT_EQUAL(dj_graph_phase(g, &why), DJ_PHASE_DECODE);
	CU_ASSERT_STRING_EQUAL(why, "query length 1; appends 1 position at 9 to state 'k'");
	expect_role(g, qk, DJ_PAT_ATTENTION, "qk");
	expect_role(g, qk + 2, DJ_PAT_ATTENTION, "scale");
	dj_graph_destroy(g);
}

/* ---- plans ------------------------------------------------------------------ */

static uint64_t resident_mask;
static int resident_node = -1;

static uint64_t fake_resident(void *arg, const struct gr_node *n)
{
	const struct dj_graph *g = arg;

	return n - g->nodes == resident_node ? resident_mask : 0;
}

static int plan(struct dj_graph *g, int fetch, uint64_t inline_max, int n_servers,
		const int *server, struct gr_plan *p)
{
	struct gr_view v = {.n_servers = n_servers, .inline_max = inline_max,
			    .resident = fake_resident, .arg = g};
	int rc = gr_plan_needed(g, &fetch, 1, p);

	for (int i = 0; rc == 0 && i < g->n; i++)
		p->server[i] = server != NULL ? server[i] : 0;
	return rc != 0 ? rc : gr_plan_build(g, &v, &fetch, 1, p);
}

/* Every tensor a batch made is freed exactly once, after its last reader. */
static void check_frees(const struct dj_graph *g, const struct gr_plan *p)
{
	for (int bi = 0; bi < p->n_batches; bi++) {
		const struct gr_batch *b = &p->b[bi];

		for (int k = 0; k < b->n; k++) {
			const struct gr_entry *e = &b->e[k];
			int made = !e->keep && !(!e->is_put && g->nodes[e->node].writes >= 0);
			int freed = 0, by = -1;

			for (int j = 0; j < b->n; j++)
				for (int f = 0; f < b->e[j].n_free; f++)
					if (b->e[j].free[f] == k) {
						freed++;
						by = j;
					}
			if (p->linger[e->node] >> b->server & 1)
				made = 0;
			CU_ASSERT_EQUAL(freed, made);
			for (int j = by + 1; made && j < b->n; j++)
				for (int q = 0; !b->e[j].is_put && q < g->nodes[b->e[j].node].n_in; q++)
					CU_ASSERT(b->e[j].in_entry[q] != k);
		}
	}
}

static void test_plan_one_server(void)
{
	struct dj_graph *g;
	struct block b;
	struct gr_plan p;
	int puts = 0, ops = 0;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	block_record(g, 0, &b);
	resident_node = -1;
	CU_ASSERT_EQUAL_FATAL(plan(g, b.y, DJ_BATCH_PUT_MAX, 1, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.n_stages, 1);
	CU_ASSERT_EQUAL_FATAL(p.n_batches, 1);
	CU_ASSERT_EQUAL(p.n_sep, 0);
	CU_ASSERT_EQUAL(p.n_transfers, 0);
	for (int k = 0; k < p.b[0].n; k++) {
		const struct gr_entry *e = &p.b[0].e[k];

		puts += e->is_put;
		ops += !e->is_put;
		/* Params are kept, inputs are not; only y comes back. */
		if (e->is_put)
			CU_ASSERT_EQUAL(e->keep, g->nodes[e->node].kind == DJ_GRAPH_PARAM);
		CU_ASSERT_EQUAL(e->fetch, e->node == b.y);
		/* A put comes before its first reader. */
		for (int q = 0; !e->is_put && q < g->nodes[e->node].n_in; q++)
			CU_ASSERT(e->in_entry[q] >= 0 && e->in_entry[q] < k);
	}
	CU_ASSERT_EQUAL(puts, 10); /* 8 params, x, mask */
	CU_ASSERT_EQUAL(ops, 17);
	CU_ASSERT_EQUAL(p.b[0].fetch_len, 6 * 8 * 4);
	check_frees(g, &p);
	gr_plan_free(&p);

	/* A parameter already on the server is read by handle, not put. */
	resident_node = 1;
	resident_mask = 1;
	CU_ASSERT_EQUAL_FATAL(plan(g, b.y, DJ_BATCH_PUT_MAX, 1, NULL, &p), 0);
	CU_ASSERT_EQUAL(gr_batch_find(&p.b[0], 1), -1);
	check_frees(g, &p);
	gr_plan_free(&p);
	/* Nothing inline: every upload is a PUT of its own. */
	resident_node = -1;
	CU_ASSERT_EQUAL_FATAL(plan(g, b.y, 0, 1, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.n_sep, 10);
	for (int k = 0; k < p.b[0].n; k++)
		CU_ASSERT_EQUAL(p.b[0].e[k].is_put, 0);
	check_frees(g, &p);
	gr_plan_free(&p);
	/* Only what the fetched node needs runs. */
	CU_ASSERT_EQUAL_FATAL(plan(g, b.q, DJ_BATCH_PUT_MAX, 1, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.b[0].n, 5); /* x, ln1.w, layer_norm, wq, linear */
	gr_plan_free(&p);
	dj_graph_destroy(g);
}

/* Two servers: the MLP's down projection on server 1, the rest on 0. */
static void test_plan_two_servers(void)
{
	struct dj_tensor_desc cache = DESC(DJ_DTYPE_FLOAT32, 6, 8);
	struct dj_graph *g;
	struct block b;
	struct gr_plan p;
	int server[64] = {0}, st, reader;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	block_record(g, 0, &b);
	server[b.down] = 1;
	resident_node = -1;
	CU_ASSERT_EQUAL_FATAL(plan(g, b.y, DJ_BATCH_PUT_MAX, 2, server, &p), 0);
	/* act on 0 (stage 0) -> down on 1 (stage 1) -> y on 0 (stage 2),
	 * reading h of stage 0 by handle: it lingers on server 0. */
	CU_ASSERT_EQUAL(p.n_stages, 3);
	CU_ASSERT_EQUAL_FATAL(p.n_batches, 3);
	CU_ASSERT_EQUAL(p.n_transfers, 2);
	CU_ASSERT(p.transfer[b.act] && p.transfer[b.down]);
	CU_ASSERT_EQUAL(p.b[1].server, 1);
	CU_ASSERT_EQUAL(p.b[0].e[gr_batch_find(&p.b[0], b.act)].fetch, 1);
	CU_ASSERT_EQUAL(p.b[1].e[gr_batch_find(&p.b[1], b.act)].is_put, 1);
	CU_ASSERT_EQUAL(p.b[1].e[gr_batch_find(&p.b[1], b.act)].src, GR_PUT_TRANSFER);
	CU_ASSERT(p.linger[b.h] & 1);
	CU_ASSERT_EQUAL(gr_batch_find(&p.b[2], b.h), -1);
	check_frees(g, &p);
	gr_plan_free(&p);
	dj_graph_destroy(g);

	/* State stays where it lives, and is read only there. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	st = dj_graph_state(g, "k", &cache, NULL);
	reader = op(g, "relu", st, ONE, NULL);
	memset(server, 0, sizeof(server));
	server[reader] = 1;
	CU_ASSERT_EQUAL(plan(g, reader, DJ_BATCH_PUT_MAX, 2, server, &p), -EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "state does not move"));
	gr_plan_free(&p);
	g->err[0] = '\0';
	server[st] = 1;
	resident_node = st;
	resident_mask = 1; /* it lives on server 0 */
	CU_ASSERT_EQUAL(plan(g, reader, DJ_BATCH_PUT_MAX, 2, server, &p), -EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "lives on another server"));
	gr_plan_free(&p);
	/* Where it does not exist yet, it is created beside its reader. */
	resident_node = -1;
	CU_ASSERT_EQUAL_FATAL(plan(g, reader, DJ_BATCH_PUT_MAX, 2, server, &p), 0);
	CU_ASSERT_EQUAL(p.b[0].server, 1);
	CU_ASSERT_EQUAL(p.b[0].e[0].src, GR_PUT_STATE_INIT);
	CU_ASSERT_EQUAL(p.b[0].e[0].keep, 1);
	gr_plan_free(&p);
	dj_graph_destroy(g);
}

/* An in-place write into state runs in every fetch, asked for or not, and
 * a read recorded before it stays before it. */
static void test_plan_writes_in_order(void)
{
	struct dj_tensor_desc cache = DESC(DJ_DTYPE_FLOAT32, 4, 8);
	struct dj_graph *g;
	struct gr_plan p;
	int st, before, row, w, after, unrelated;

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	st = dj_graph_state(g, "k", &cache, NULL);
	before = op(g, "sum", st, ONE, NULL);
	row = input(g, "row", DESC(DJ_DTYPE_FLOAT32, 1, 8));
	w = gr_op_raw(g, "slice_write", (int[]){st, row}, 2, "{\"dim\":0,\"start\":2}", &cache);
	after = op(g, "sum", w, ONE, NULL);
	unrelated = op(g, "exp", input(g, "z", DESC(DJ_DTYPE_FLOAT32, 2)), ONE, NULL);
	resident_node = -1;
	CU_ASSERT_EQUAL_FATAL(plan(g, unrelated, DJ_BATCH_PUT_MAX, 1, NULL, &p), 0);
	CU_ASSERT(p.needed[w] && !p.needed[before] && !p.needed[after]);
	CU_ASSERT(gr_batch_find(&p.b[0], w) >= 0);
	gr_plan_free(&p);
	CU_ASSERT_EQUAL_FATAL(plan(g, after, DJ_BATCH_PUT_MAX, 1, NULL, &p), 0);
	CU_ASSERT(gr_batch_find(&p.b[0], w) < gr_batch_find(&p.b[0], after));
	/* The state's put is kept; the write's output is the state: neither
	 * is freed by the batch. */
	check_frees(g, &p);
	gr_plan_free(&p);
	dj_graph_destroy(g);
}

/* A placer for dj_graph_plan: nodes listed in arg (ends with -1) on server
 * 1, everything else on 0. */
static int place_listed(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
			char *why, size_t why_len)
{
	(void)g;
	(void)needed;
	(void)why;
	(void)why_len;
	for (const int *x = arg; *x >= 0; x++)
		server[*x] = 1;
	return 0;
}

/* dj_graph_plan: a run placed and cut without servers; KV-cache data that
 * crosses servers is counted apart from other transfers. */
static void test_plan_dry_run(void)
{
	struct dj_tensor_desc cache = DESC(DJ_DTYPE_FLOAT32, 1, 8, 4);
	struct dj_graph_run_stats st;
	struct dj_graph_node_info ni;
	struct dj_graph *g;
	int kv, row, w, nar, tot, x, m, tot2, on1[3] = {-1, -1, -1};
	struct dj_graph_placer placer = {.place = place_listed, .arg = on1};

	CU_ASSERT_EQUAL_FATAL(dj_graph_create(NULL, &g), 0);
	kv = dj_graph_state(g, "seq0/kv", &cache, NULL);
	row = input(g, "row", DESC(DJ_DTYPE_FLOAT32, 1, 1, 4));
	w = dj_graph_op(g, "slice_write", (int[]){kv, row}, 2, "{\"dim\":1,\"start\":2}");
	nar = dj_graph_op(g, "narrow", &w, 1, "{\"dim\":1,\"start\":0,\"length\":3}");
	tot = op(g, "sum", nar, ONE, NULL);
	x = input(g, "x", DESC(DJ_DTYPE_FLOAT32, 5));
	m = op(g, "mul", x, x, NULL);
	tot2 = op(g, "sum", m, ONE, NULL);
	CU_ASSERT_FATAL(tot2 >= 0);
	/* All on one server: one round trip, nothing crosses. */
	CU_ASSERT_EQUAL_FATAL(dj_graph_plan(g, NULL, 1, (int[]){tot, tot2}, 2, &st), 0);
	CU_ASSERT_EQUAL(st.round_trips, 1);
	CU_ASSERT_EQUAL(st.batches, 1);
	CU_ASSERT_EQUAL(st.ops, 5);
	CU_ASSERT_EQUAL(st.puts_inline, 3); /* row, x, the new state */
	CU_ASSERT_EQUAL(st.states_created, 1);
	CU_ASSERT_EQUAL(st.transfers, 0);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, 0);
	CU_ASSERT_EQUAL(st.bytes_up, 4 * 4 + 5 * 4 + 8 * 4 * 4);
	/* Both sums on server 1: the narrow copy of the cache and m cross;
	 * only the first is KV-cache data. */
	on1[0] = tot;
	on1[1] = tot2;
	CU_ASSERT_EQUAL_FATAL(dj_graph_plan(g, &placer, 2, (int[]){tot, tot2}, 2, &st), 0);
	CU_ASSERT_EQUAL(st.stages, 2);
	CU_ASSERT_EQUAL(st.round_trips, 2);
	CU_ASSERT_EQUAL(st.transfers, 2);
	CU_ASSERT_EQUAL(st.kv_bytes_moved, 3 * 4 * 4);
	CU_ASSERT_EQUAL(dj_graph_node(g, tot, &ni), 0);
	CU_ASSERT_EQUAL(ni.server, 1);
	CU_ASSERT_EQUAL(dj_graph_node(g, nar, &ni), 0);
	CU_ASSERT_EQUAL(ni.server, 0);
	/* The cache itself read on server 1: refused, named. */
	on1[0] = nar;
	on1[1] = -1;
	CU_ASSERT_EQUAL(dj_graph_plan(g, &placer, 2, &tot, 1, &st), -EXDEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(dj_graph_error(g), "written in place"));
	CU_ASSERT_EQUAL(dj_graph_plan(g, NULL, 0, &tot, 1, &st), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_plan(g, NULL, 1, (int[]){99}, 1, &st), -EINVAL);
	CU_ASSERT_EQUAL(dj_graph_failed_server(g), -1);
	dj_graph_destroy(g);
}

/* The graph's idea of "in place" is the operation table's flag, for every
 * operation of the table; a name the table lacks is never in place. */
static void test_in_place_from_table(void)
{
	int n_inplace = 0;

	for (int i = 0; i < tn_op_count(); i++) {
		const struct tn_op *op = tn_op_get((enum tn_op_id)i);

		CU_ASSERT_EQUAL(gr_op_in_place(op->name), op->inplace != 0);
		n_inplace += op->inplace != 0;
	}
	CU_ASSERT(n_inplace >= 1);
	CU_ASSERT_TRUE(gr_op_in_place("slice_write"));
	CU_ASSERT_FALSE(gr_op_in_place("narrow"));
	CU_ASSERT_FALSE(gr_op_in_place("slice_write_v2"));
	CU_ASSERT_FALSE(gr_op_in_place(""));
}

/* ---- the hash -------------------------------------------------------------- */

static void test_hash_is_xxh64(void)
{
	uint64_t (*lib)(const void *, size_t, uint64_t);
	unsigned int seed = dj_test_seed();
	uint8_t buf[4096];
	void *dl;
	int bad = 0;

	/* Reference values of XXH64 (xxHash's own test vectors). */
	CU_ASSERT_EQUAL(gr_xxh64("", 0, 0), 0xef46db3751d8e999ull);
	CU_ASSERT_EQUAL(gr_xxh64("abc", 3, 0), 0x44bc2cf5ad770999ull);
	struct dj_tensor t = {.desc = DESC(DJ_DTYPE_INT32, 0), .data = buf, .mem = DJ_MEM_HOST};
	CU_ASSERT_EQUAL(dj_graph_hash(&t), 0xef46db3751d8e999ull);
	dl = dlopen("libxxhash.so.0", RTLD_NOW);
	lib = dl != NULL ? (uint64_t (*)(const void *, size_t, uint64_t))dlsym(dl, "XXH64") : NULL;
	if (lib == NULL) {
		printf("\n  libxxhash.so.0 not found: compared with the reference vectors only\n");
		return;
	}
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand_r(&seed);
	/* Every length 0..4096 (all tail paths), odd offsets, two seeds. */
	for (size_t n = 0; n <= sizeof(buf) - 3; n++)
		bad += lib(buf + 3, n, 0) != gr_xxh64(buf + 3, n, 0) ||
		       lib(buf, n, 0x9e3779b9) != gr_xxh64(buf, n, 0x9e3779b9);
	CU_ASSERT_EQUAL(bad, 0);
	dlclose(dl);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"shapes and dtypes inferred at record time", test_shapes_inferred},
		{"node descriptions without annotation", test_node_desc},
		{"record-time errors name node and op", test_record_errors},
		{"transformer block: attention, MLP, norms", test_transformer_block_annotation},
		{"decoder ops: KV append, fused attention, phases", test_decoder_ops_annotation},
		{"unfused attention over a cache: decode", test_unfused_decode_phase},
		{"plan on one server: one batch, puts, frees", test_plan_one_server},
		{"plan on two servers: stages, transfers, state", test_plan_two_servers},
		{"plan: writes into state run, in order", test_plan_writes_in_order},
		{"plan without servers: dry run, KV bytes", test_plan_dry_run},
		{"in-place operations come from the table", test_in_place_from_table},
		{"content hash is XXH64", test_hash_is_xxh64},
		{NULL, NULL},
	};

	dj_test_add_suite("graph", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
