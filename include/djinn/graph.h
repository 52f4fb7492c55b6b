/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GRAPH_H
#define DJINN_GRAPH_H

/**
 * @file
 * Lazy tensor graphs: record operations on tensors without running them,
 * then run what a fetch needs, on the servers a placement picks, in as few
 * round trips as it allows (one per fetch where everything is on one server).
 *
 *   struct dj_graph_ctx *ctx;                  // servers, weight cache, state
 *   dj_graph_ctx_create(NULL, &conn, 1, &ctx);
 *   struct dj_graph *g;
 *   dj_graph_create(ctx, &g);
 *   int x = dj_graph_input(g, "x", &xt);       // host tensor, uploaded when needed
 *   int w = dj_graph_param(g, "w1", &wt);      // uploaded once per server
 *   int h = dj_graph_op(g, "linear", (int[]){x, w}, 2, NULL);
 *   int y = dj_graph_op(g, "gelu", &h, 1, NULL);
 *   dj_graph_fetch(g, &y, 1, &yt);             // runs; only y comes back
 *   dj_graph_destroy(g);
 *
 * Recording checks every operation with the operation table's own shape and
 * dtype inference (tensor/ops.h): a bad shape is an error at record time,
 * naming the node and the operation. Record functions return the new node's
 * id (>= 0) or a negative error; an error passed in as an input id is
 * returned again, so a chain of calls can be checked once at its end;
 * dj_graph_error() gives the first error's text.
 *
 * Nodes are inputs (host tensors, borrowed until the fetch that uses them),
 * parameters (persistent weights, identified by name and content hash: the
 * context uploads each once per server and reuses it across fetches and
 * graphs), state (named tensors resident on one server, created once and
 * then read and updated in place by later graphs: the KV cache) and
 * operations (the server's names and attributes, docs/OPERATIONS.md).
 *
 * Every fetch is one run: the operations the fetched nodes need, plus every
 * in-place write into state, in record order. Nothing of a run stays on the
 * servers but parameters and state; intermediates are freed there, and only
 * the fetched nodes come back. docs/GRAPH.md has the details.
 *
 * Threads: a graph is used by one thread at a time; fetches through one
 * context run one at a time (the context serialises them).
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/common.h"
#include "djinn/djinn.h"
#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dj_graph;      /**< one recorded graph */
struct dj_graph_ctx;  /**< servers, placement, parameter cache, state */

/** Node kinds. */
enum dj_graph_kind {
	DJ_GRAPH_INPUT = 0,   /**< host tensor, uploaded by the fetch that needs it */
	DJ_GRAPH_PARAM,       /**< persistent weight, uploaded once per server */
	DJ_GRAPH_STATE,       /**< named resident tensor, updated in place */
	DJ_GRAPH_OP,          /**< an operation on earlier nodes */
};

/** How long a node's tensor lives (the annotation every node gets). */
enum dj_graph_residency {
	DJ_RES_EPHEMERAL_ACTIVATION = 0, /**< made and freed within one run */
	DJ_RES_PERSISTENT_WEIGHT,        /**< a parameter: kept across runs */
	DJ_RES_STATEFUL_KV_CACHE,        /**< state, and in-place writes into it */
};

/** Patterns recognised in the graph (bits of dj_graph_node_info.patterns). */
enum dj_graph_pattern {
	DJ_PAT_ATTENTION = 1u << 0, /**< q.k^T, scale, mask, softmax, .v; or the fused op */
	DJ_PAT_MLP = 1u << 1,       /**< linear/matmul -> activation [* gate] -> linear/matmul */
	DJ_PAT_NORM = 1u << 2,      /**< layer_norm, rms_norm */
	DJ_PAT_KV_APPEND = 1u << 3, /**< slice_write into state */
};

/** What a graph does, from its attention and its KV-cache writes. */
enum dj_graph_phase {
	DJ_PHASE_UNKNOWN = 0,
	DJ_PHASE_PREFILL,   /**< query length > 1, or the KV cache created / filled */
	DJ_PHASE_DECODE,    /**< query length 1, appending to an existing cache */
};

/** "input", "param", "state", "op". Static. */
const char *dj_graph_kind_name(enum dj_graph_kind kind);
/** "ephemeral_activation", "persistent_weight", "stateful_kv_cache". Static. */
const char *dj_graph_residency_name(enum dj_graph_residency res);
/** "unknown", "prefill", "decode". Static. */
const char *dj_graph_phase_name(enum dj_graph_phase phase);

/* ---- the context: servers, placement, caches ------------------------------ */

/**
 * Placement: which server runs each node. Called once per fetch, after
 * annotation (so dj_graph_node() tells patterns, residency, sizes and where
 * parameters and state already live). needed[i] is 1 for every node the run
 * uses; place() sets server[i] (0 .. n_servers - 1) for every needed
 * operation and state node (inputs and parameters go wherever they are
 * consumed; their entries are ignored). server[] comes filled with the
 * default (0; a state's current server, and the operations that write or
 * read a state beside it). Returns 0, or a negative error
 * with a message in why. The graph then checks the result: a state that
 * exists lives where it is (a placement elsewhere is -EXDEV), and an
 * in-place write runs where its destination lives.
 */
struct dj_graph_placer {
	int (*place)(void *arg, struct dj_graph *g, const uint8_t *needed, int *server,
		     char *why, size_t why_len);
	void *arg;
	/** Optional, for dj_graph_plan() of a graph without a context (a
	 * simulation): the servers (bit mask) that hold parameter or state
	 * @p node already, as the placer's own tables know them. NULL: none. */
	uint64_t (*resident)(void *arg, struct dj_graph *g, int node);
};

/**
 * How a state moves between servers (dj_graph_ctx_state_move): a
 * server-to-server move where the servers can make one (a fleet's). move()
 * gets the tensor's handle on server @p from and returns its handle on
 * server @p to in *new_handle, the source freed; 0 or a negative error
 * (then the source must still hold the tensor). Without a mover, states
 * move through the client: GET from one server, PUT to the other.
 */
struct dj_graph_mover {
	int (*move)(void *arg, int from, uint64_t handle, int to,
		    const struct dj_tensor_desc *desc, uint64_t *new_handle);
	void *arg;
};

struct dj_graph_options {
	/** Uploads carried inside the batch itself, at most this many bytes
	 * per batch (default and most DJ_BATCH_PUT_MAX). Beyond, tensors are
	 * PUT first (over the data plane where the session has one): a round
	 * trip of their own. */
	uint64_t inline_max;
	/** NULL: every node on server 0, but state where it lives and the
	 * operations writing or reading it beside it. Borrowed; must outlive
	 * the context. */
	const struct dj_graph_placer *placer;
	/** NULL: states move through the client. Borrowed, as placer. */
	const struct dj_graph_mover *mover;
	/**
	 * Per server of the context, the device its new tensors are made on
	 * ("cuda:1", at most DJ_GRAPH_DEVICE_MAX - 1 characters; NULL or "":
	 * the session's). NULL: every server's session's. Read by
	 * dj_graph_ctx_create() only. One session may be given as several
	 * servers, each naming another device (the devices of one djinn-dp):
	 * a tensor crosses between them as a device copy on that server
	 * (to_device), a state too (dj_graph_ctx_state_move, whatever the
	 * mover), never through the client.
	 */
	const char *const *devices;
};

#define DJ_GRAPH_DEVICE_MAX 16

/** Fill options with the defaults. */
void dj_graph_options_init(struct dj_graph_options *opts);

/**
 * A context over n_servers sessions (borrowed; they must outlive it). Server
 * s of a placement is servers[s] (with opts->devices[s], where given). opts
 * may be NULL (defaults).
 * @return 0, -EINVAL (no servers, more than 64, a NULL one, a device name
 * too long, one session given twice without a device each, or twice with
 * the same device), -ENOMEM.
 */
int dj_graph_ctx_create(const struct dj_graph_options *opts, struct dj_conn *const *servers,
			int n_servers, struct dj_graph_ctx **ctx);
/** Free every parameter and state the context holds on its servers, then
 * the context. Graphs made in it must be destroyed first. NULL is fine. */
void dj_graph_ctx_destroy(struct dj_graph_ctx *ctx);
/** Number of servers. */
int dj_graph_ctx_servers(const struct dj_graph_ctx *ctx);
/**
 * Free state @p name on its server; the next graph that uses it creates it
 * again. @return 0, -ENOENT (no such state), or the server's FREE error.
 */
int dj_graph_ctx_state_drop(struct dj_graph_ctx *ctx, const char *name);
/**
 * Where state @p name lives: its server and handle.
 * @return 0, -ENOENT (not created yet).
 */
int dj_graph_ctx_state_where(struct dj_graph_ctx *ctx, const char *name, int *server,
			     uint64_t *handle);
/**
 * Move state @p name to server @p to: with the context's mover where it has
 * one, else through the client (GET, PUT, then FREE of the source, not
 * waited for). Counted in dj_graph_ctx_stats() (state_moves, kv_bytes_moved,
 * and the bytes up and down) and in the next fetch's dj_graph_last_run().
 * *moved (may be NULL) receives the bytes moved. Where it fails, the state
 * stays where it was. May be called from a placer (the fetch then runs with
 * the state where it now lives).
 * @return 0 (also where it lives on @p to already), -ENOENT (no such state),
 * -EINVAL (@p to out of range), -ENOMEM, or the GET / PUT / mover error.
 */
int dj_graph_ctx_state_move(struct dj_graph_ctx *ctx, const char *name, int to,
			    uint64_t *moved);
/**
 * Server @p server left (its connection failed for good): forget every
 * parameter and state the context holds there, sending it nothing. Later
 * fetches upload parameters again where they are read; a lost state is
 * created again by the next run that writes it (rebuilding it is the
 * caller's: the scheduler's lineage, include/djinn/scheduler.h).
 * @return the number of states forgotten, or -EINVAL (no such server).
 */
int dj_graph_ctx_server_lost(struct dj_graph_ctx *ctx, int server);

/** Counters of one fetch (dj_graph_last_run) or of a context's life
 * (dj_graph_ctx_stats). */
struct dj_graph_run_stats {
	int round_trips;      /**< request waves waited for (1 per fetch on one server) */
	int stages;           /**< waves of batches (more where data crosses servers) */
	int batches;          /**< EXECUTE batches sent */
	int ops;              /**< operations run */
	int puts_inline;      /**< tensors uploaded inside batches */
	int puts_separate;    /**< tensors uploaded with a PUT of their own */
	int params_uploaded;  /**< parameters sent to a server */
	int params_reused;    /**< parameters found on their server already */
	int states_created;
	int frees_inline;     /**< intermediates freed inside the batches */
	int frees_async;      /**< intermediates freed by FREE requests not waited for */
	int transfers;        /**< tensors moved between servers through the client */
	int gets;             /**< GETs (fetching a state node itself) */
	uint64_t bytes_up;    /**< tensor bytes sent */
	uint64_t bytes_down;  /**< tensor bytes received */
	/** KV-cache bytes that crossed servers: a state moved
	 * (dj_graph_ctx_state_move) or a copy of part of it (narrow, reshape,
	 * transpose of a state, no arithmetic) sent to another server. */
	uint64_t kv_bytes_moved;
	int state_moves;      /**< states moved to another server */
	/** Of kv_bytes_moved, those that came down to this client and went up
	 * again: states moved without a mover (GET, PUT) and every part of a
	 * cache sent to another server by a placement. 0 where a mover (the
	 * fleet's server-to-server move) carried every state move. */
	uint64_t kv_bytes_through_client;
};
void dj_graph_ctx_stats(struct dj_graph_ctx *ctx, struct dj_graph_run_stats *stats);

/* ---- recording ------------------------------------------------------------ */

/**
 * An empty graph in ctx. ctx may be NULL: record, annotate and describe only
 * (dj_graph_fetch() then returns -ENOTCONN).
 * @return 0, -ENOMEM.
 */
int dj_graph_create(struct dj_graph_ctx *ctx, struct dj_graph **graph);
/** NULL is fine. */
void dj_graph_destroy(struct dj_graph *graph);

/**
 * An input: host tensor t (description and data borrowed: the data must
 * stay valid until the last fetch that uses it; t->data may be NULL, then
 * bind it with dj_graph_bind() before fetching). name may be NULL.
 * @return the node id, -EINVAL (t NULL or not in host memory, a bad
 * description), -ENOMEM.
 */
int dj_graph_input(struct dj_graph *graph, const char *name, const struct dj_tensor *t);
/** Give input @p node new data of the same description (for the next
 * fetch). @return 0, -EINVAL (not an input, description differs). */
int dj_graph_bind(struct dj_graph *graph, int node, const struct dj_tensor *t);
/**
 * A parameter named @p name (required) with t's contents (host memory,
 * borrowed until the fetches that upload it). Hashes the bytes
 * (dj_graph_hash()); where the caller knows the hash, use
 * dj_graph_param_hashed() and skip that pass over the weights.
 * @return the node id, -EINVAL, -ENOMEM.
 */
int dj_graph_param(struct dj_graph *graph, const char *name, const struct dj_tensor *t);
int dj_graph_param_hashed(struct dj_graph *graph, const char *name, const struct dj_tensor *t,
			  uint64_t hash);
/** Content hash of a host tensor: XXH64 (seed 0) of its bytes. */
uint64_t dj_graph_hash(const struct dj_tensor *t);
/**
 * State named @p name with description @p desc. Where the context has it
 * already (same description), runs read and write that tensor; otherwise
 * the first run that uses it creates it on the server its placement picks,
 * with init's bytes (host memory, borrowed until then) or zeros (init NULL).
 * @return the node id, -EINVAL (bad description, init of another one,
 * state of that name with another description), -ENOMEM.
 */
int dj_graph_state(struct dj_graph *graph, const char *name, const struct dj_tensor_desc *desc,
		   const struct dj_tensor *init);
/**
 * Operation @p op on nodes @p inputs, attributes as a JSON object text (or
 * NULL), exactly as the server takes them (docs/OPERATIONS.md). The result's
 * description is inferred now. An in-place operation (slice_write) returns a
 * node that is its destination after the write: later reads should use it.
 * @return the node id; -DJ_EUNKNOWN_OP, -DJ_ESHAPE, -DJ_EDTYPE, -EINVAL (bad
 * input id, attributes, a write into a parameter), -ENOMEM; or the negative
 * input id passed in. The message (dj_graph_error) names the node: "node 7:
 * matmul: inner dimensions differ: [3,4] @ [5,6]".
 */
int dj_graph_op(struct dj_graph *graph, const char *op, const int *inputs, int n_in,
		const char *attrs_json);
/** The first recording or fetch error's text ("" when none). */
const char *dj_graph_error(const struct dj_graph *graph);

/* ---- running -------------------------------------------------------------- */

/**
 * Run the graph for nodes[0..n-1] and copy their values into out[i] (host
 * memory). out[i].data may be NULL: then it is malloc'ed (free with
 * dj_tensor_free_host()); else it must hold the node's bytes. out[i].desc
 * receives the node's description. An operation node's value is the one it
 * has when it runs (a later in-place write into its tensor does not show);
 * a state node's is the one after the run.
 * @return 0; -ENOTCONN (graph without context), -EINVAL (bad node id, an
 * input without data), -EXDEV (a placement that splits what cannot be
 * split), a server's error (the message, dj_graph_error, names the node),
 * -ENOMEM.
 */
int dj_graph_fetch(struct dj_graph *graph, const int *nodes, int n, struct dj_tensor *out);
/** Counters of the last fetch. */
void dj_graph_last_run(const struct dj_graph *graph, struct dj_graph_run_stats *stats);
/** The server whose request failed in the last fetch (a batch, PUT or GET
 * that could not be sent or came back with an error), or -1 where none did
 * (success, or a failure before anything was sent). */
int dj_graph_failed_server(const struct dj_graph *graph);

/**
 * Place and cut a run into batches without running it: what a fetch of
 * nodes[0..n-1] would send. @p placer (NULL: the context's, else every node
 * on server 0) is called as for a fetch, over @p n_servers servers (the
 * context's number where the graph has one). Afterwards dj_graph_node()
 * gives each operation's server, and *expect (may be NULL) the counters
 * the run would have where it all went as planned: round_trips, stages,
 * batches, ops, puts_inline, puts_separate, transfers, kv_bytes_moved (of
 * transfers) and bytes_up (uploads and transfers; parameters and states the
 * context holds already, or without a context those the placer's resident()
 * names, are not counted). Nothing is sent, nothing cached.
 * @return 0, -EINVAL (bad node id, n_servers out of 1..64), -EXDEV (a
 * placement that splits what cannot be split), the placer's error, -ENOMEM;
 * the message in dj_graph_error().
 */
int dj_graph_plan(struct dj_graph *graph, const struct dj_graph_placer *placer, int n_servers,
		  const int *nodes, int n, struct dj_graph_run_stats *expect);

/* ---- annotations ---------------------------------------------------------- */

/** What the graph knows of one node, annotations included. */
struct dj_graph_node_info {
	enum dj_graph_kind kind;
	const char *name;            /**< input/param/state name ("" none); op: the op name */
	const char *attrs_json;      /**< op: its attributes ("{}" for none); else "" */
	int n_in;
	int inputs[DJ_MAX_OP_ARGS];
	struct dj_tensor_desc desc;
	uint64_t nbytes;
	int inferred;                /**< 1: desc from the op table's inference */
	int writes;                  /**< in-place op: the node it writes (its input 0), else -1 */
	int state;                   /**< the state node whose tensor this is (itself, or
				          an in-place write into it), else -1 */
	enum dj_graph_residency residency;
	uint32_t patterns;           /**< DJ_PAT_* bits */
	int block;                   /**< attention or MLP instance number, else -1 */
	const char *role;            /**< within its pattern: "qk", "kt", "scale", "mask",
				          "softmax", "av", "sdpa", "up", "act", "gate",
				          "mul", "down", "norm", "append"; else "" */
	double flops;                /**< op: floating-point operations, estimated */
	uint64_t hash;               /**< param: content hash */
	uint64_t resident;           /**< param/state: bit s set where server s holds it */
	int server;                  /**< the last fetch's placement, -1 where none */
};
int dj_graph_node_count(const struct dj_graph *graph);
/**
 * Description of @p node (inferred when it was recorded), without
 * annotating the graph: what a frontend that records one operation at a
 * time asks after each (dj_graph_node() re-annotates a changed graph).
 * @return 0, -EINVAL (no such node, desc NULL).
 */
int dj_graph_node_desc(const struct dj_graph *graph, int node, struct dj_tensor_desc *desc);
/** Info of @p node (annotates the graph first where it changed).
 * @return 0, -EINVAL (no such node), -ENOMEM. */
int dj_graph_node(struct dj_graph *graph, int node, struct dj_graph_node_info *info);
/** The graph's phase; *reason (may be NULL) receives why, e.g. "query
 * length 1; appends 1 position at 7 to state 'k0'" (valid until the graph
 * changes). */
enum dj_graph_phase dj_graph_phase(struct dj_graph *graph, const char **reason);
/** The annotated graph as text, one line per node, then its patterns and
 * phase; malloc'ed (caller frees), NULL where memory ran out. */
char *dj_graph_describe(struct dj_graph *graph);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_GRAPH_H */
