/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_APP_LLM_MODEL_H
#define DJINN_APP_LLM_MODEL_H

/*
 * The acceptance workload's model (issue 14): a decoder-only transformer
 * with seeded random float32 weights, learned position embeddings, pre-norm
 * blocks (rms_norm, multi-head attention over a per-sequence KV cache,
 * SwiGLU MLP), tied logits and greedy argmax, recorded as lazy graphs: one
 * step of many sequences per graph (a prefill of T tokens, or a decode
 * step of one). Shared by djinn-llm (the demo) and `djinn plan`.
 */
#include <getopt.h>
#include <stdint.h>

#include "djinn/graph.h"

struct llm_cfg {
	int layers, d_model, heads, vocab, ffn, max_pos;
};

/* The defaults of the demo: 4 layers, d_model 256, 4 heads, vocabulary
 * 4096, SwiGLU width 1024, 96 positions (64 of prompt + 32 generated). */
void llm_cfg_default(struct llm_cfg *c);

/* The model's options, the same in djinn-llm and djinn plan (getopt_long
 * entries, codes LLM_OPT_BASE..+4). */
#define LLM_OPT_BASE 1000
#define LLM_CFG_LONGOPTS \
	{"layers", required_argument, NULL, LLM_OPT_BASE}, \
	{"d-model", required_argument, NULL, LLM_OPT_BASE + 1}, \
	{"heads", required_argument, NULL, LLM_OPT_BASE + 2}, \
	{"vocab", required_argument, NULL, LLM_OPT_BASE + 3}, \
	{"ffn", required_argument, NULL, LLM_OPT_BASE + 4}
/* Option code c with its argument into cfg: 0, -EINVAL (a bad value, said
 * on stderr), or -ENOENT (not one of the model's options). */
int llm_cfg_opt(struct llm_cfg *cfg, int c, const char *arg);
/* After the options: 0, or -EINVAL said on stderr (d_model not a multiple
 * of heads). */
int llm_cfg_check(const struct llm_cfg *cfg);

enum { LLM_W_NORM1, LLM_W_Q, LLM_W_K, LLM_W_V, LLM_W_O, LLM_W_NORM2, LLM_W_GATE, LLM_W_UP,
       LLM_W_DOWN, LLM_W_PER_LAYER };

#define LLM_MAX_LAYERS 16
#define LLM_N_WEIGHTS (3 + LLM_MAX_LAYERS * LLM_W_PER_LAYER)

struct llm_model {
	struct llm_cfg c;
	int n_w;
	struct dj_tensor w[LLM_N_WEIGHTS];   /* tok_emb, pos_emb, final_norm, then per layer */
	char name[LLM_N_WEIGHTS][24];
	uint64_t hash[LLM_N_WEIGHTS];        /* content hashes, computed once */
};

/* Weights from seed (splitmix64; the same on every machine). 0 or -ENOMEM,
 * -EINVAL (a bad configuration). */
int llm_model_make(struct llm_model *m, const struct llm_cfg *c, uint64_t seed);
void llm_model_free(struct llm_model *m);
/* Bytes of all weights. */
uint64_t llm_model_bytes(const struct llm_model *m);

/* The inputs of one sequence's step: token ids and their positions. They
 * must stay valid until the fetch. */
struct llm_step_in {
	int64_t tok[128];
	int64_t pos[128];
	struct dj_tensor t_tok, t_pos;
};

/* Parameter nodes of a graph (recorded once per graph, shared by its
 * sequences). */
struct llm_params {
	int node[LLM_N_WEIGHTS];
};
int llm_params_record(struct dj_graph *g, const struct llm_model *m, struct llm_params *p);

/*
 * One step of sequence seq: tokens[0..T) at positions pos..pos+T-1 (its
 * KV caches are states "seq<seq>/l<i>.k" and ".v", [1, heads, max_pos,
 * d/heads]). Returns the node of the next token ([1,1] int64: the argmax
 * of the last position's logits), or a negative error (dj_graph_error).
 */
int llm_step_record(struct dj_graph *g, const struct llm_model *m, const struct llm_params *p,
		    int seq, int pos, int T, const int64_t *tokens, struct llm_step_in *in);


/* "host:port,host:port" (a port alone means 127.0.0.1): up to max servers,
 * hosts copied into host[i] (64 bytes each). @return their number, or
 * -EINVAL with a message on stderr. */
int llm_servers_parse(const char *text, char (*host)[64], uint16_t *port, int max);
/* "0,2" -> bits 0 and 2; each below n. @return 0 or -EINVAL. */
int llm_mask_parse(const char *text, int n, uint64_t *mask);

#endif
