/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_SCHED_STEPS_H
#define DJINN_SCHED_STEPS_H

/*
 * Graphs and checks the scheduler's unit tests share: a small decoder step
 * for several sequences (embedding, q/k/v, KV append into per-sequence
 * state "seqN/k", "seqN/v", narrow, fused attention, MLP, tied logits,
 * argmax) recorded without a context, placed with dj_sched_plan on a
 * simulated fleet.
 */
#include "djinn/graph.h"
#include "djinn/scheduler.h"

#define D 8
#define F 16
#define V 32
#define P 16

struct weights {
	int emb, wq, wk, wv, w1, w2;
};

/* A host tensor over zeroed storage (recording reads no data). */
struct dj_tensor host(enum dj_dtype dt, int ndim, int64_t a, int64_t b);
void weights_record(struct dj_graph *g, struct weights *w, uint64_t salt);
int op1(struct dj_graph *g, const char *op, int a, const char *attrs);
int op2(struct dj_graph *g, const char *op, int a, int b);
/* One step of sequence seq: T tokens at position pos; the argmax node. */
int seq_step(struct dj_graph *g, const struct weights *w, int seq, int pos, int T);
/* A graph of n sequences first..first+n-1, each T tokens at pos. */
struct dj_graph *step_graph(int first, int n, int pos, int T, int *out);
/* A simulation over f with the weights policy and disaggregation masks. */
struct dj_sched *sched_new(const struct dj_sched_fleet *f, enum dj_sched_weights weights,
			   uint64_t prefill, uint64_t decode);
/* dj_sched_plan, its error printed. */
int plan(struct dj_sched *s, struct dj_graph *g, const int *out, int n,
	 struct dj_graph_run_stats *st);
/* Sequences per server (count[]), and the server of each "seqN" (where[]). */
void spread(struct dj_sched *s, int n_servers, int *count, int *where, int n_seq);
/* Op nodes placed elsewhere than where[] says of their sequence. */
int ops_off_seq(struct dj_graph *g, const int *out, int n, const int *where);
/* Decisions of the last placement with that rule. */
int count_rule(struct dj_sched *s, enum dj_sched_rule rule);

#endif
