/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `djinn graph`: the lazy graph of a small decoder layer (embedding,
 * rms_norm, attention over a KV cache, SwiGLU MLP, tied logits, argmax),
 * recorded for a prefill and a decode step and printed with its
 * annotations; with --run, both steps run on a server (the decode step
 * appending to the cache the prefill made) and are checked against the
 * local CPU reference.
 *
 * Operations this build's table lacks are recorded from descriptors for
 * --explain (marked "description given"); for --run they are replaced by
 * today's operations (layer_norm for rms_norm, unfused attention over the
 * step's own keys, the embedding looked up here), which the output says.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "djinn/graph.h"
#include "graph/gr.h"
#include "graph_cmd.h"

#define B 1
#define D 16
#define F 32
#define V 32
#define MAX_POS 32
#define N_WEIGHTS 11

struct example {
	int tokens, prompt, run;     /* prompt length; --run: runnable ops only */
	unsigned int seed;
	struct dj_tensor w[N_WEIGHTS];
	int64_t ids[MAX_POS];
	float x[MAX_POS * D], scale, mask[MAX_POS * MAX_POS];
	char missing[160];
};

enum { W_EMB, W_G1, W_Q, W_K, W_V, W_O, W_G2, W_UP, W_GATE, W_DOWN, W_GF };

static const char *const weight_names[N_WEIGHTS] = {
	"emb", "l0.norm1", "l0.wq", "l0.wk", "l0.wv", "l0.wo", "l0.norm2", "l0.w_up", "l0.w_gate",
	"l0.w_down", "final_norm",
};

static void weights_make(struct example *e)
{
	static const int64_t shapes[N_WEIGHTS][2] = {
		{V, D}, {D, 0}, {D, D}, {D, D}, {D, D}, {D, D}, {D, 0}, {F, D}, {F, D}, {D, F}, {D, 0},
	};

	for (int i = 0; i < N_WEIGHTS; i++) {
		struct dj_tensor *t = &e->w[i];

		*t = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = shapes[i][1] ? 2 : 1,
						 .shape = {shapes[i][0], shapes[i][1]}},
					.mem = DJ_MEM_HOST};
		t->data = malloc(dj_tensor_nbytes(&t->desc));
		for (int64_t k = 0; t->data != NULL && k < dj_tensor_numel(&t->desc); k++)
			((float *)t->data)[k] = shapes[i][1] == 0 ? 1.0f :
				((float)rand_r(&e->seed) / (float)RAND_MAX - 0.5f) * 0.6f;
	}
	e->scale = 1.0f / sqrtf((float)D);
}

static int have(struct example *e, const char *op)
{
	if (tn_op_find(op) != NULL)
		return 1;
	if (strstr(e->missing, op) == NULL)
		snprintf(e->missing + strlen(e->missing), sizeof(e->missing) - strlen(e->missing),
			 "%s%s", e->missing[0] ? ", " : "", op);
	return 0;
}

#define SHAPE(...) (&(struct dj_tensor_desc){.dtype = DJ_DTYPE_FLOAT32, \
	.ndim = (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), .shape = {__VA_ARGS__}})

/* A new operation: from the table where it has it, else (explain only)
 * from its description. */
static int new_op(struct dj_graph *g, struct example *e, const char *op, const int *in, int n_in,
		  const char *attrs, const struct dj_tensor_desc *desc)
{
	return have(e, op) ? dj_graph_op(g, op, in, n_in, attrs) :
			     gr_op_raw(g, op, in, n_in, attrs, desc);
}

static int op2(struct dj_graph *g, const char *op, int a, int b)
{
	return dj_graph_op(g, op, (int[]){a, b}, 2, NULL);
}

static int norm(struct dj_graph *g, struct example *e, int x, int w, int T)
{
	if (e->run && !have(e, "rms_norm"))
		return op2(g, "layer_norm", x, w);
	return new_op(g, e, "rms_norm", (int[]){x, w}, 2, "{\"eps\":1e-6}", SHAPE(B, T, D));
}

/* Attention of q over the cache (or, without slice_write at run time, over
 * this step's own keys and values). */
static int attention(struct dj_graph *g, struct example *e, int q, int k, int v, int pos, int T,
		     struct dj_tensor *mask_t)
{
	struct dj_tensor_desc cache = *SHAPE(B, MAX_POS, D);
	int fused = !e->run || have(e, "scaled_dot_product_attention");
	/* & rather than &&: both missing ops are named in the note. */
	int cached = !e->run || (have(e, "slice_write") & have(e, "narrow"));
	char attrs[96];
	int s;

	if (cached) {
		int kc = dj_graph_state(g, "l0.k_cache", &cache, NULL);
		int vc = dj_graph_state(g, "l0.v_cache", &cache, NULL);

		snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d}", pos);
		k = new_op(g, e, "slice_write", (int[]){kc, k}, 2, attrs, &cache);
		v = new_op(g, e, "slice_write", (int[]){vc, v}, 2, attrs, &cache);
		snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":0,\"length\":%d}", pos + T);
		k = new_op(g, e, "narrow", &k, 1, attrs, SHAPE(B, pos + T, D));
		v = new_op(g, e, "narrow", &v, 1, attrs, SHAPE(B, pos + T, D));
	}
	if (fused)
		return new_op(g, e, "scaled_dot_product_attention", (int[]){q, k, v}, 3,
			      T > 1 ? "{\"is_causal\":true}" : "{\"is_causal\":false}", SHAPE(B, T, D));
	s = op2(g, "matmul", q, dj_graph_op(g, "transpose", &k, 1, NULL));
	s = op2(g, "mul", s, dj_graph_param(g, "l0.scale", &(struct dj_tensor){
		.desc = *SHAPE(1), .data = &e->scale, .mem = DJ_MEM_HOST}));
	if (T > 1) {
		for (int i = 0; i < T; i++)
			for (int j = 0; j < T; j++)
				e->mask[i * T + j] = j > i ? -1e9f : 0.0f;
		*mask_t = (struct dj_tensor){.desc = *SHAPE(T, T), .data = e->mask, .mem = DJ_MEM_HOST};
		s = op2(g, "add", s, dj_graph_input(g, "causal_mask", mask_t));
	}
	s = dj_graph_op(g, "softmax", &s, 1, "{\"dim\":-1}");
	return op2(g, "matmul", s, v);
}

/*
 * One step of T tokens at position pos. *logits and *next (-1 where argmax
 * is missing at run time) are the nodes to fetch.
 */
static int step_record(struct dj_graph *g, struct example *e, int pos, int T,
		       struct dj_tensor *in, int *logits, int *next)
{
	int w[N_WEIGHTS], x, n1, q, k, v, a, h, n2, up, gate, mlp;

	for (int i = 0; i < N_WEIGHTS; i++)
		w[i] = dj_graph_param(g, weight_names[i], &e->w[i]);
	in[0] = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_INT64, .ndim = 2, .shape = {B, T}},
				   .data = e->ids + pos, .mem = DJ_MEM_HOST};
	if (!e->run || have(e, "embedding")) {
		x = new_op(g, e, "embedding", (int[]){dj_graph_input(g, "tokens", &in[0]), w[W_EMB]}, 2,
			   NULL, SHAPE(B, T, D));
	} else {
		/* The lookup done here: the rows of emb as the input. */
		for (int t = 0; t < T; t++)
			memcpy(e->x + t * D, (float *)e->w[W_EMB].data + e->ids[pos + t] * D,
			       sizeof(float) * D);
		in[1] = (struct dj_tensor){.desc = *SHAPE(B, T, D), .data = e->x, .mem = DJ_MEM_HOST};
		x = dj_graph_input(g, "x", &in[1]);
	}
	n1 = norm(g, e, x, w[W_G1], T);
	q = op2(g, "linear", n1, w[W_Q]);
	k = op2(g, "linear", n1, w[W_K]);
	v = op2(g, "linear", n1, w[W_V]);
	a = attention(g, e, q, k, v, pos, T, &in[2]);
	h = op2(g, "add", x, op2(g, "linear", a, w[W_O]));
	n2 = norm(g, e, h, w[W_G2], T);
	up = op2(g, "linear", n2, w[W_UP]);
	gate = op2(g, "linear", n2, w[W_GATE]);
	mlp = op2(g, "mul", dj_graph_op(g, "silu", &up, 1, NULL), gate);
	h = op2(g, "add", h, op2(g, "linear", mlp, w[W_DOWN]));
	*logits = op2(g, "linear", norm(g, e, h, w[W_GF], T), w[W_EMB]);
	*next = -1;
	if (!e->run || have(e, "argmax"))
		*next = new_op(g, e, "argmax", logits, 1, "{\"dim\":-1}",
			       &(struct dj_tensor_desc){.dtype = DJ_DTYPE_INT64, .ndim = 2, .shape = {B, T}});
	return *logits < 0 ? *logits : 0;
}

/* max |a - b| over float32 tensors; -1 where they differ in shape. */
static double max_diff(const struct dj_tensor *a, const struct dj_tensor *b, double *scale)
{
	double m = 0;

	*scale = 0;
	if (!dj_tensor_desc_equal(&a->desc, &b->desc))
		return -1;
	for (int64_t i = 0; i < dj_tensor_numel(&a->desc); i++) {
		m = fmax(m, fabs(dj_tensor_load_f64(a, i) - dj_tensor_load_f64(b, i)));
		*scale = fmax(*scale, fabs(dj_tensor_load_f64(b, i)));
	}
	return m;
}

static void print_stats(const char *what, const struct dj_graph_run_stats *st)
{
	printf("%s: %d round trip%s, %d batch%s, %d ops; uploads %d inline + %d PUT (%d params, "
	       "%d states new; %d params reused); %d intermediates freed in the batch, %d after; "
	       "%llu bytes up, %llu down\n", what, st->round_trips, st->round_trips == 1 ? "" : "s",
	       st->batches, st->batches == 1 ? "" : "es", st->ops, st->puts_inline,
	       st->puts_separate, st->params_uploaded, st->states_created, st->params_reused,
	       st->frees_inline, st->frees_async, (unsigned long long)st->bytes_up,
	       (unsigned long long)st->bytes_down);
}

/* Run step (pos, T) remotely and locally; compare. 0 when they agree. */
static int step_run(struct example *e, struct dj_graph_ctx *ctx, struct gr_local *local,
		    const char *what, int pos, int T)
{
	struct dj_tensor in[3], got[2], ref[2];
	struct dj_graph_run_stats st;
	struct dj_graph *g = NULL;
	int nodes[2], n, rc, status = 1;
	double diff, scale;

	memset(got, 0, sizeof(got));
	memset(ref, 0, sizeof(ref));
	rc = dj_graph_create(ctx, &g);
	if (rc == 0)
		rc = step_record(g, e, pos, T, in, &nodes[0], &nodes[1]);
	n = rc == 0 && nodes[1] >= 0 ? 2 : 1;
	if (rc == 0)
		rc = dj_graph_fetch(g, nodes, n, got);
	if (rc != 0) {
		fprintf(stderr, "djinn graph: %s: %s: %s\n", what, dj_strerror(rc),
			g != NULL ? dj_graph_error(g) : "");
		goto out;
	}
	dj_graph_last_run(g, &st);
	print_stats(what, &st);
	rc = gr_local_fetch(local, g, nodes, n, ref);
	if (rc != 0) {
		fprintf(stderr, "djinn graph: %s: local run: %s\n", what, dj_graph_error(g));
		goto out;
	}
	diff = max_diff(&got[0], &ref[0], &scale);
	status = !(diff >= 0 && diff <= 1e-3 * (1 + scale));
	printf("  logits: max |server - local| = %.3g (tolerance %.3g): %s\n", diff,
	       1e-3 * (1 + scale), status ? "MISMATCH" : "MATCH");
	if (n == 2) {
		int same = memcmp(got[1].data, ref[1].data, dj_tensor_nbytes(&ref[1].desc)) == 0;
		int64_t tok = ((int64_t *)got[1].data)[T - 1];

		printf("  next token %lld (local %lld)%s\n", (long long)tok,
		       (long long)((int64_t *)ref[1].data)[T - 1], same ? "" : ": differs");
		if (tok >= 0 && tok < V)
			e->ids[pos + T] = tok;
	}
out:
	for (int i = 0; i < 2; i++) {
		free(got[i].data);
		free(ref[i].data);
	}
	dj_graph_destroy(g);
	return status;
}

static int explain(struct example *e, int pos, int T)
{
	struct dj_tensor in[3];
	struct dj_graph *g;
	int logits, next, rc = dj_graph_create(NULL, &g);
	char *text;

	if (rc == 0)
		rc = step_record(g, e, pos, T, in, &logits, &next);
	text = rc == 0 ? dj_graph_describe(g) : NULL;
	if (text == NULL) {
		fprintf(stderr, "djinn graph: %s\n", rc != 0 ? dj_graph_error(g) : "out of memory");
		dj_graph_destroy(g);
		return 1;
	}
	printf("%s\n", text);
	free(text);
	dj_graph_destroy(g);
	return 0;
}

static int run(struct example *e, const struct dj_client_options *o)
{
	struct dj_client *client = NULL;
	struct dj_conn *conn = NULL;
	struct dj_graph_ctx *ctx = NULL;
	struct gr_local *local = NULL;
	int rc, status = 1;

	rc = dj_client_create(o, &client);
	if (rc == 0)
		rc = dj_connect(client, &conn);
	if (rc == 0)
		rc = dj_graph_ctx_create(NULL, &conn, 1, &ctx);
	if (rc == 0)
		rc = gr_local_create(&local);
	if (rc != 0) {
		fprintf(stderr, "djinn graph: cannot run on %s:%u: %s\n", o->host ? o->host : "127.0.0.1",
			o->port, dj_strerror(rc));
		goto out;
	}
	status = step_run(e, ctx, local, "prefill", 0, e->prompt);
	if (status == 0)
		status = step_run(e, ctx, local, "decode", e->prompt, 1);
	if (e->missing[0] != '\0')
		printf("note: this build's operation table lacks %s: replaced by today's operations "
		       "(layer_norm, attention over the step's own keys, the embedding looked up "
		       "here)\n", e->missing);
out:
	gr_local_destroy(local);
	dj_graph_ctx_destroy(ctx);
	if (conn != NULL)
		dj_disconnect(conn);
	dj_client_destroy(client);
	return status;
}

static void usage(void)
{
	printf("Usage: djinn graph --explain [--prompt N] [--seed S]\n"
	       "       djinn graph --run [--prompt N] [--seed S] [--host ADDR] [--port N]\n"
	       "                   [--token-file PATH] [--tls [--tls-ca PEM]]\n"
	       "\n"
	       "A one-layer decoder (d_model %d, vocabulary %d) as a lazy graph: --explain\n"
	       "prints its prefill (a prompt of N tokens, default 8) and decode graphs with\n"
	       "their annotations; --run runs both on the server (TCP) and checks them\n"
	       "against the local CPU reference.\n", D, V);
}

int djinn_graph_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"explain", no_argument, NULL, 'e'}, {"run", no_argument, NULL, 'r'},
		{"prompt", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 's'},
		{"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
		{"token-file", required_argument, NULL, 'T'}, {"tls", no_argument, NULL, 'L'},
		{"tls-ca", required_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct example *e = calloc(1, sizeof(*e));
	struct dj_client_options o;
	int c, do_explain = 0, status;

	if (e == NULL)
		return 1;
	/* The command prints what matters itself. */
	dj_log_set_level(DJ_LOG_WARN);
	dj_client_options_init(&o);
	o.path = DJ_PATH_TCP;
	e->prompt = 8;
	e->seed = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'e': do_explain = 1; break;
		case 'r': e->run = 1; break;
		case 'n': e->prompt = atoi(optarg); break;
		case 's': e->seed = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'H': o.host = optarg; break;
		case 'p': o.port = (uint16_t)atoi(optarg); break;
		case 'T': o.token_file = optarg; break;
		case 'L': o.tls = 1; break;
		case 'C': o.tls_ca = optarg; break;
		default: usage(); free(e); return c == 'h' ? 0 : 2;
		}
	}
	if ((!do_explain && !e->run) || e->prompt < 1 || e->prompt >= MAX_POS) {
		usage();
		free(e);
		return 2;
	}
	weights_make(e);
	for (int i = 0; i < e->prompt; i++)
		e->ids[i] = rand_r(&e->seed) % V;
	status = 0;
	if (do_explain && !e->run) {
		status = explain(e, 0, e->prompt);
		if (status == 0)
			status = explain(e, e->prompt, 1);
		if (e->missing[0] != '\0')
			printf("note: this build's operation table lacks %s: recorded from their "
			       "descriptions (annotations only)\n", e->missing);
	} else {
		if (do_explain)
			status = explain(e, 0, e->prompt) || explain(e, e->prompt, 1);
		if (status == 0)
			status = run(e, &o);
	}
	for (int i = 0; i < N_WEIGHTS; i++)
		free(e->w[i].data);
	free(e);
	return status;
}
