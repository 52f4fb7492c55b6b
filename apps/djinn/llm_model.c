/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The demo's decoder-only transformer as lazy graphs (llm_model.h). One
 * sequence's step, T tokens at position pos:
 *
 *   x = embedding(tokens, tok_emb) + embedding(positions, pos_emb)
 *   per layer:  h = rms_norm(x)
 *               q, k, v = linear(h) -> [1, heads, T, d/heads]
 *               cache_k[.., pos:pos+T, ..] = k   (slice_write: in place)
 *               a = attention(q, cache_k[0:pos+T], cache_v[0:pos+T]),
 *                   causal where T > 1
 *               x = x + linear(a, wo)
 *               x = x + linear(silu(linear(rms_norm(x), w_gate)) *
 *                              linear(rms_norm(x), w_up), w_down)
 *   next = argmax(linear(rms_norm(x[last position]), tok_emb))
 *
 * Only the last position's logits are computed (a prefill needs no more).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "llm_model.h"

void llm_cfg_default(struct llm_cfg *c)
{
	*c = (struct llm_cfg){.layers = 4, .d_model = 256, .heads = 4, .vocab = 4096,
			      .ffn = 1024, .max_pos = 96};
}

int llm_cfg_opt(struct llm_cfg *cfg, int c, const char *arg)
{
	switch (c) {
	case LLM_OPT_BASE: return djc_opt_int("--layers", arg, 1, LLM_MAX_LAYERS, &cfg->layers);
	case LLM_OPT_BASE + 1: return djc_opt_int("--d-model", arg, 1, 8192, &cfg->d_model);
	case LLM_OPT_BASE + 2: return djc_opt_int("--heads", arg, 1, 256, &cfg->heads);
	case LLM_OPT_BASE + 3: return djc_opt_int("--vocab", arg, 2, 1 << 20, &cfg->vocab);
	case LLM_OPT_BASE + 4: return djc_opt_int("--ffn", arg, 1, 1 << 16, &cfg->ffn);
	default: return -ENOENT;
	}
}

int llm_cfg_check(const struct llm_cfg *cfg)
{
	if (cfg->d_model % cfg->heads != 0)
		return djc_cli_error("--d-model %d is not a multiple of --heads %d", cfg->d_model,
				     cfg->heads);
	return 0;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A weight [a, b] (b 0: a vector of ones, a norm's gain) uniform in
 * [-scale, scale). */
static int weight(struct llm_model *m, const char *name, int64_t a, int64_t b, double scale,
		  uint64_t *seed)
{
	struct dj_tensor *t = &m->w[m->n_w];
	float *v;

	*t = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_FLOAT32, .ndim = b > 0 ? 2 : 1,
					 .shape = {a, b}}, .mem = DJ_MEM_HOST};
	v = malloc(dj_tensor_nbytes(&t->desc));
	if (v == NULL)
		return -ENOMEM;
	for (int64_t i = 0; i < dj_tensor_numel(&t->desc); i++)
		v[i] = b == 0 ? 1.0f : (float)(((double)(splitmix64(seed) >> 11) / 9007199254740992.0 *
						2.0 - 1.0) * scale);
	t->data = v;
	snprintf(m->name[m->n_w], sizeof(m->name[0]), "%s", name);
	m->hash[m->n_w] = dj_graph_hash(t);
	m->n_w++;
	return 0;
}

int llm_model_make(struct llm_model *m, const struct llm_cfg *c, uint64_t seed)
{
	int64_t d = c->d_model;
	int rc;

	memset(m, 0, sizeof(*m));
	if (c->layers < 1 || c->layers > LLM_MAX_LAYERS || d < 1 || c->heads < 1 ||
	    d % c->heads != 0 || c->vocab < 2 || c->ffn < 1 || c->max_pos < 2)
		return -EINVAL;
	m->c = *c;
	rc = weight(m, "tok_emb", c->vocab, d, 1.0, &seed);
	if (rc == 0)
		rc = weight(m, "pos_emb", c->max_pos, d, 0.5, &seed);
	if (rc == 0)
		rc = weight(m, "final_norm", d, 0, 0, &seed);
	for (int l = 0; rc == 0 && l < c->layers; l++) {
		static const char *const names[LLM_W_PER_LAYER] = {
			"norm1", "wq", "wk", "wv", "wo", "norm2", "w_gate", "w_up", "w_down",
		};
		for (int k = 0; rc == 0 && k < LLM_W_PER_LAYER; k++) {
			char name[24];
			int64_t out = k == LLM_W_GATE || k == LLM_W_UP ? c->ffn : d;
			int64_t in = k == LLM_W_DOWN ? c->ffn : d;
			int norm = k == LLM_W_NORM1 || k == LLM_W_NORM2;

			snprintf(name, sizeof(name), "l%d.%s", l, names[k]);
			rc = weight(m, name, norm ? d : out, norm ? 0 : in,
				    norm ? 0 : 1.0 / sqrt((double)in), &seed);
		}
	}
	if (rc != 0)
		llm_model_free(m);
	return rc;
}

void llm_model_free(struct llm_model *m)
{
	for (int i = 0; i < m->n_w; i++)
		free(m->w[i].data);
	m->n_w = 0;
}

uint64_t llm_model_bytes(const struct llm_model *m)
{
	uint64_t n = 0;

	for (int i = 0; i < m->n_w; i++)
		n += dj_tensor_nbytes(&m->w[i].desc);
	return n;
}

int llm_params_record(struct dj_graph *g, const struct llm_model *m, struct llm_params *p)
{
	for (int i = 0; i < m->n_w; i++) {
		p->node[i] = dj_graph_param_hashed(g, m->name[i], &m->w[i], m->hash[i]);
		if (p->node[i] < 0)
			return p->node[i];
	}
	return 0;
}

static int op1(struct dj_graph *g, const char *op, int a, const char *attrs)
{
	return dj_graph_op(g, op, &a, 1, attrs);
}

static int op2(struct dj_graph *g, const char *op, int a, int b)
{
	return dj_graph_op(g, op, (int[]){a, b}, 2, NULL);
}

/* [1,T,d] -> [1,heads,T,d/heads] and back. */
static int split_heads(struct dj_graph *g, const struct llm_cfg *c, int x, int T)
{
	char attrs[80];

	snprintf(attrs, sizeof(attrs), "{\"shape\":[1,%d,%d,%d]}", T, c->heads,
		 c->d_model / c->heads);
	return op1(g, "transpose", op1(g, "reshape", x, attrs), "{\"perm\":[0,2,1,3]}");
}

static int merge_heads(struct dj_graph *g, const struct llm_cfg *c, int x, int T)
{
	char attrs[64];

	snprintf(attrs, sizeof(attrs), "{\"shape\":[1,%d,%d]}", T, c->d_model);
	return op1(g, "reshape", op1(g, "transpose", x, "{\"perm\":[0,2,1,3]}"), attrs);
}

static int attention(struct dj_graph *g, const struct llm_model *m, const int *w, int seq, int l,
		     int h, int pos, int T)
{
	const struct llm_cfg *c = &m->c;
	struct dj_tensor_desc cache = {.dtype = DJ_DTYPE_FLOAT32, .ndim = 4,
				       .shape = {1, c->heads, c->max_pos, c->d_model / c->heads}};
	char name[40], attrs[80];
	int q, k, v, kc, vc;

	q = split_heads(g, c, op2(g, "linear", h, w[LLM_W_Q]), T);
	k = split_heads(g, c, op2(g, "linear", h, w[LLM_W_K]), T);
	v = split_heads(g, c, op2(g, "linear", h, w[LLM_W_V]), T);
	snprintf(name, sizeof(name), "seq%d/l%d.k", seq, l);
	kc = dj_graph_state(g, name, &cache, NULL);
	snprintf(name, sizeof(name), "seq%d/l%d.v", seq, l);
	vc = dj_graph_state(g, name, &cache, NULL);
	snprintf(attrs, sizeof(attrs), "{\"dim\":2,\"start\":%d}", pos);
	kc = dj_graph_op(g, "slice_write", (int[]){kc, k}, 2, attrs);
	vc = dj_graph_op(g, "slice_write", (int[]){vc, v}, 2, attrs);
	snprintf(attrs, sizeof(attrs), "{\"dim\":2,\"start\":0,\"length\":%d}", pos + T);
	kc = op1(g, "narrow", kc, attrs);
	vc = op1(g, "narrow", vc, attrs);
	return dj_graph_op(g, "scaled_dot_product_attention", (int[]){q, kc, vc}, 3,
			   T > 1 ? "{\"is_causal\":true}" : "{\"is_causal\":false}");
}

int llm_step_record(struct dj_graph *g, const struct llm_model *m, const struct llm_params *p,
		    int seq, int pos, int T, const int64_t *tokens, struct llm_step_in *in)
{
	const struct llm_cfg *c = &m->c;
	const int *w0 = p->node;
	char attrs[64];
	int x, h, a, mlp;

	if (T < 1 || T > 128 || pos < 0 || pos + T > c->max_pos)
		return -EINVAL;
	for (int t = 0; t < T; t++) {
		in->tok[t] = tokens[t];
		in->pos[t] = pos + t;
	}
	in->t_tok = (struct dj_tensor){.desc = {.dtype = DJ_DTYPE_INT64, .ndim = 2, .shape = {1, T}},
				       .data = in->tok, .mem = DJ_MEM_HOST};
	in->t_pos = in->t_tok;
	in->t_pos.data = in->pos;
	x = op2(g, "add", op2(g, "embedding", dj_graph_input(g, "tokens", &in->t_tok), w0[0]),
		op2(g, "embedding", dj_graph_input(g, "positions", &in->t_pos), w0[1]));
	for (int l = 0; l < c->layers; l++) {
		const int *w = w0 + 3 + l * LLM_W_PER_LAYER;

		h = op2(g, "rms_norm", x, w[LLM_W_NORM1]);
		a = attention(g, m, w, seq, l, h, pos, T);
		x = op2(g, "add", x, op2(g, "linear", merge_heads(g, c, a, T), w[LLM_W_O]));
		h = op2(g, "rms_norm", x, w[LLM_W_NORM2]);
		mlp = op2(g, "mul", op1(g, "silu", op2(g, "linear", h, w[LLM_W_GATE]), NULL),
			  op2(g, "linear", h, w[LLM_W_UP]));
		x = op2(g, "add", x, op2(g, "linear", mlp, w[LLM_W_DOWN]));
	}
	if (T > 1) {
		snprintf(attrs, sizeof(attrs), "{\"dim\":1,\"start\":%d,\"length\":1}", T - 1);
		x = op1(g, "narrow", x, attrs);
	}
	x = op2(g, "linear", op2(g, "rms_norm", x, w0[2]), w0[0]);
	return op1(g, "argmax", x, "{\"dim\":-1}");
}

int llm_servers_parse(const char *text, char (*host)[64], uint16_t *port, int max)
{
	char *copy = strdup(text), *save = NULL, *item;
	int n = 0, rc = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item != NULL && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(item, ':');
		char *end;
		unsigned long p = strtoul(colon != NULL ? colon + 1 : item, &end, 10);

		if (n == max || *end != '\0' || p == 0 || p > 65535 ||
		    (colon != NULL && (colon == item || colon - item >= 64))) {
			fprintf(stderr, "bad server '%s' (host:port, at most %d)\n", item, max);
			rc = -EINVAL;
			break;
		}
		snprintf(host[n], 64, "%.*s", colon != NULL ? (int)(colon - item) : 9,
			 colon != NULL ? item : "127.0.0.1");
		port[n++] = (uint16_t)p;
	}
	free(copy);
	return rc != 0 ? rc : n > 0 ? n : -EINVAL;
}

int llm_mask_parse(const char *text, int n, uint64_t *mask)
{
	const char *p = text;

	*mask = 0;
	while (*p != '\0') {
		char *end;
		unsigned long s = strtoul(p, &end, 10);

		if (end == p || (int)s >= n || (*end != ',' && *end != '\0'))
			return -EINVAL;
		*mask |= 1ull << s;
		p = *end == ',' ? end + 1 : end;
	}
	return *mask != 0 ? 0 : -EINVAL;
}
