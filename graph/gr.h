/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GR_H
#define DJINN_GR_H

/*
 * Graph internals, shared by the files of graph/: the node table (graph.c),
 * annotations (annotate.c), the text form (describe.c), the plan that cuts a
 * run into per-server batches (plan.c) and its execution with the context's
 * caches (run.c). Public API: include/djinn/graph.h.
 */
#include <pthread.h>
#include <stdint.h>

#include "djinn/graph.h"
#include "tensor/ops.h"

#define GR_MAX_SERVERS 64
#define GR_ERR_LEN 320

struct gr_node {
	enum dj_graph_kind kind;
	char *name;                  /* input/param/state name; NULL for none */
	const struct tn_op *op;      /* op: NULL where the table lacks it (raw node) */
	char *op_name;               /* op */
	char *attrs_json;            /* op: compact JSON, "{}" for none */
	int n_in;
	int in[DJ_MAX_OP_ARGS];
	struct dj_tensor_desc desc;
	int inferred;
	struct dj_tensor host;       /* input/param: the caller's tensor; state: init */
	int has_host;
	uint64_t hash;               /* param */
	int writes;                  /* in-place op: the node it writes, else -1 */
	int root;                    /* the node whose tensor this is (itself unless in place) */
	/* Annotations (annotate.c). */
	enum dj_graph_residency residency;
	uint32_t patterns;
	int block;
	const char *role;
	double flops;
	int server;                  /* last fetch's placement, -1 */
};

/* One recognised attention or MLP instance, or phase evidence. */
struct gr_annot {
	int valid;
	int n_attention, n_mlp;
	int query_len;               /* largest query length of an attention, 0 none */
	int key_len;
	int n_appends;
	int append_min_start, append_max_len;
	enum dj_graph_phase phase;
	char reason[GR_ERR_LEN];
};

struct dj_graph {
	struct dj_graph_ctx *ctx;
	struct gr_node *nodes;
	int n, cap;
	struct gr_annot annot;
	struct dj_graph_run_stats last;
	int failed_server;           /* the last fetch's failed request's server, -1 */
	char err[GR_ERR_LEN];
};

/* graph.c */
int gr_node_new(struct dj_graph *g, struct gr_node **node);
int gr_error(struct dj_graph *g, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An op whose output is its input 0, written in place: the operation
 * table's inplace flag (slice_write today); 0 for a name it lacks. */
int gr_op_in_place(const char *op_name);
/*
 * Record an op without the op table: desc is the caller's. For annotating
 * graphs that use operations this build's table lacks yet (tests, the
 * explain example). Inputs are checked; nothing else is.
 */
int gr_op_raw(struct dj_graph *g, const char *op_name, const int *inputs, int n_in,
	      const char *attrs_json, const struct dj_tensor_desc *desc);

/* annotate.c: residency, patterns, roles, flops, phase (idempotent). */
int gr_annotate(struct dj_graph *g);
/* An integer attribute of an op node's JSON; def where absent. */
int64_t gr_attr_int(const struct gr_node *n, const char *key, int64_t def);

/* run.c: where the context holds a param or state node's tensor (server
 * bit mask; 0 without a context). */
uint64_t gr_ctx_resident(struct dj_graph_ctx *ctx, const struct gr_node *n);

/* local.c: the same run on this machine's CPU (reference operations), state
 * in a local table; the reference remote fetches are checked against. */
struct gr_local;
int gr_local_create(struct gr_local **local);
void gr_local_destroy(struct gr_local *local);
int gr_local_fetch(struct gr_local *local, struct dj_graph *g, const int *nodes, int n,
		   struct dj_tensor *out);

/* hash.c */
uint64_t gr_xxh64(const void *data, size_t len, uint64_t seed);

/*
 * A plan: one run cut into waves of batches. A batch is the entries of one
 * server in one stage; an entry is an op or a put. Inputs of an op entry
 * are "$k" of the same batch, or nodes that earlier waves (or the caches)
 * left on the server, resolved to handles when the batch is sent.
 */
enum gr_put_src {
	GR_PUT_HOST,       /* the node's host tensor (input, param) */
	GR_PUT_STATE_INIT, /* state creation: init bytes or zeros */
	GR_PUT_TRANSFER,   /* bytes fetched from another server earlier */
	/* A device copy (to_device) of a tensor an earlier stage made on
	 * another server of the same session: two devices of one djinn-dp. */
	GR_PUT_PEER,
};

struct gr_entry {
	int node;
	int is_put;
	enum gr_put_src src;
	int in_entry[DJ_MAX_OP_ARGS];  /* op: "$k" where >= 0, else in_node on the server */
	int in_node[DJ_MAX_OP_ARGS];
	int fetch;                     /* bytes come back */
	uint64_t fetch_off;            /* in the batch's fetch buffer */
	int *free;                     /* entries freed after this one */
	int n_free, cap_free;
	int keep;                      /* a param or state put: cached on success */
	int peer_from;                 /* GR_PUT_PEER: the server holding the source */
};

struct gr_batch {
	int server, stage;
	struct gr_entry *e;
	int n, cap;
	uint64_t fetch_len, inline_bytes;
};

/* An upload too large for a batch, PUT in the wave before the batches. */
struct gr_sep_put {
	int server, node;
	enum gr_put_src src;
};

struct gr_plan {
	int n_nodes, n_servers;
	uint8_t *needed;
	int *server;                   /* per node (ops, state) */
	int *stage;
	struct gr_batch *b;
	int n_batches, cap_batches;
	int n_stages;
	struct gr_sep_put *sep;
	int n_sep, cap_sep;
	/* Nodes alive on a server after their batch, freed when the run ends
	 * (a later stage read them by handle). Per node: a server bit mask. */
	uint64_t *linger;
	/* Tensors fetched to move them to another server. */
	uint8_t *transfer;
	int n_transfers;
	/* Bytes of the transfers' uploads (one per receiving batch); of them,
	 * KV-cache data (a state, or a copy of part of one). */
	uint64_t transfer_bytes, kv_transfer_bytes;
};

/* What plan.c needs to know of the context's caches. */
struct gr_view {
	int n_servers;
	uint64_t inline_max;
	/* Where a param / state node's tensor is already: server bit mask. */
	uint64_t (*resident)(void *arg, const struct gr_node *n);
	void *arg;
	/* Per server, its session's first server: servers with the same one
	 * are devices of one session, and a tensor crosses between them as a
	 * device copy on the server (GR_PUT_PEER). NULL: every server its own. */
	const int *session;
};

/* Fill plan->needed for the nodes asked for plus every in-place write into
 * state; 0 or -EINVAL (bad node id). */
int gr_plan_needed(struct dj_graph *g, const int *nodes, int n, struct gr_plan *plan);
/* Cut the run into batches, given plan->needed and plan->server (checked
 * here: -EXDEV with a message in g->err where it splits what cannot be). */
int gr_plan_build(struct dj_graph *g, const struct gr_view *view, const int *fetch, int n_fetch,
		  struct gr_plan *plan);
void gr_plan_free(struct gr_plan *plan);
/* The entry of node on batch b, -1 where none. */
int gr_batch_find(const struct gr_batch *b, int node);

#endif
