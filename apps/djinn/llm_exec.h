/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_APP_LLM_EXEC_H
#define DJINN_APP_LLM_EXEC_H

/*
 * Two baselines of the LLM demo run a lazy graph without the graph's
 * batching: every node in record order, one call each, through an
 * operation table. Over a dj_conn it is one request per operation (the
 * original system's way); over a runtime in this process it is the same
 * model with no network at all.
 */
#include <stdint.h>

#include "djinn/djinn.h"
#include "djinn/graph.h"
#include "runtime/runtime.h"

struct llm_exec_ops {
	int (*put)(void *arg, const struct dj_tensor *t, uint64_t *handle);
	int (*execute)(void *arg, const char *op, const uint64_t *in, int n_in,
		       const char *attrs_json, uint64_t *out);
	int (*get)(void *arg, uint64_t handle, struct dj_tensor *t);
	/* Free, not waited for. */
	void (*release)(void *arg, uint64_t handle);
};

struct llm_exec_cached {
	char name[32];
	uint64_t hash;
	int is_state;
	uint64_t handle;
};

struct llm_exec {
	const struct llm_exec_ops *ops;
	void *arg;
	struct llm_exec_cached *c;       /* parameters and states kept across graphs */
	int n_c, cap_c;
	uint64_t requests;               /* calls made (each a request over a conn) */
	uint64_t waited;                 /* of them, waited for (round trips) */
	uint64_t bytes_up, bytes_down;
	char err[256];
};

/* Run every node of g in record order; copy nodes[i]'s value (an op's, at
 * the time it ran) into out[i] (data allocated where NULL). Parameters and
 * states stay for the next graphs; everything else is released. */
int llm_exec_fetch(struct llm_exec *e, struct dj_graph *g, const int *nodes, int n,
		   struct dj_tensor *out);
/* Release parameters and states. */
void llm_exec_clear(struct llm_exec *e);

/* One request per operation over a session. */
void llm_exec_over_conn(struct llm_exec *e, struct dj_conn *conn);

/* A runtime in this process, through its backend table: no network. */
struct llm_inproc {
	struct rt_runtime *rt;
	void *session;
};
int llm_inproc_open(struct llm_inproc *ip, const char *gpu);
void llm_inproc_close(struct llm_inproc *ip);
void llm_exec_over_inproc(struct llm_exec *e, struct llm_inproc *ip);

#endif
