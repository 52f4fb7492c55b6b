/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_SCHEDULER_H
#define DJINN_SCHEDULER_H

/**
 * @file
 * The semantic-aware scheduler: it places the nodes of lazy graphs
 * (djinn/graph.h) across the servers of a fleet from what the graph means
 * (sequences and their KV caches, weights, phases) and what the fleet can do
 * (compute, memory, queues, links). docs/SCHEDULER.md has the rules.
 *
 *   struct dj_sched *s;
 *   dj_sched_create(NULL, conns, 3, &s);        // calibrates the servers
 *   dj_graph_create(dj_sched_ctx(s), &g);       // graphs in its context
 *   ... record 8 sequences' decode step ...
 *   dj_sched_fetch(s, g, next, 8, out);         // placed, run, recovered
 *   dj_sched_explain(s);                        // every decision, why, cost
 *
 * Over a fleet (djinn/fleet.h), dj_sched_create_fleet(NULL, fleet, &s)
 * takes the members that are up, their figures from the fleet's view,
 * links probed server to server, and moves KV caches with dj_fleet_move():
 * straight from one member's memory into another's, never through the
 * client. A member that leaves the fleet makes the next fetch rebuild its
 * sequences on the others.
 *
 * Servers of several devices (djinn-dp --gpu all): the scheduler places on
 * units, one per device of each server ("server/device"), sharing the
 * server's session; every index this API calls a server is a unit's. A KV
 * cache moving between two devices of one server is a to_device there,
 * never the network (docs/SCHEDULER.md, "Devices").
 *
 * A sequence is the set of states whose names share the part before their
 * last '/' ("seq3/l0.k" and "seq3/l0.v" are sequence "seq3"; a name
 * without '/' is a sequence of its own). Within one graph, the operations
 * connected to a sequence's states (not through weights or inputs) are that
 * sequence's step, placed together.
 *
 * Threads: a scheduler (and the graphs of its context) is used by one
 * thread at a time.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/djinn.h"
#include "djinn/graph.h"
#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Placement units at most: (server, device) pairs. */
#define DJ_SCHED_MAX_SERVERS 64
#define DJ_SCHED_NAME_MAX 64
#define DJ_SCHED_DEVICE_MAX 16

/**
 * What the scheduler knows of one placement unit: a server with one device,
 * or one device of a server with several ("server/device"). Every index
 * called a server in this API (decisions, sequences, pins, masks) is a
 * unit's. Units of one server share its session; compute figures are the
 * server's (calibrated on its session's device), memory and queue each
 * device's own.
 */
struct dj_sched_server {
	char name[DJ_SCHED_NAME_MAX];  /**< "host:port", "sim1/cuda:2", a simulated name */
	int up;                        /**< 0: left the fleet; nothing goes there */
	/** Compute, from the calibration: matmul GFLOP/s per dtype (0: not
	 *  measured; float32's stands in), elementwise GB/s (bytes read and
	 *  written by an add), and the time one operation costs inside a
	 *  batch beyond its arithmetic (launch, bookkeeping). */
	double matmul_gflops[DJ_DTYPE_COUNT];
	double elementwise_gbps;
	double op_overhead_s;
	/** Time a request holds the server, on average (calibration): what
	 *  each queued request is expected to cost a newcomer. */
	double service_s;
	/** Memory tensors may still take, and in all (bytes; UINT64_MAX: not
	 *  known), from STATS. */
	uint64_t mem_free, mem_total;
	/** Requests waiting for a worker at the last STATS. */
	double queued;
	/** The link between the client and this server. */
	double rtt_s, bw_Bps;
	/** The device of its server this unit places on ("cuda:2"; "": the
	 *  session's, a server with one device). */
	char device[DJ_SCHED_DEVICE_MAX];
	/** 0: a server of its own. >= 1: units with the same group are the
	 *  devices of one server (consecutive, one session): a tensor moves
	 *  between them as a device copy on that server (to_device), at the
	 *  cost of their link_* figures (the peer-copy link), never over the
	 *  network. */
	int group;
};

/**
 * A fleet as the scheduler sees it. Large (about 70 KiB): allocate it.
 * link_*[a][b]: a tensor moved from unit a to unit b costs
 * link_rtt_s[a][b] + bytes / link_bw_Bps[a][b]: between servers, the
 * network (or the client); between two devices of one server, the
 * peer-copy link (a to_device of 1 MiB timed at creation, or simulated).
 */
struct dj_sched_fleet {
	int n_servers;
	struct dj_sched_server servers[DJ_SCHED_MAX_SERVERS];
	double link_rtt_s[DJ_SCHED_MAX_SERVERS][DJ_SCHED_MAX_SERVERS];
	double link_bw_Bps[DJ_SCHED_MAX_SERVERS][DJ_SCHED_MAX_SERVERS];
	/** 1: links probed server to server; 0: derived from the client's
	 *  links, as a move goes today (fetch from a, put to b). */
	int links_direct;
	char note[160];                /**< how the figures were obtained */
};

/** How weights are placed (rule 5). */
enum dj_sched_weights {
	/** A server that runs an operation reading a weight gets a copy
	 *  (uploaded once, kept): weights do not steer placement, memory
	 *  permitting. */
	DJ_SCHED_WEIGHTS_REPLICATE = 0,
	/** Each weight lives on one server (dj_sched_pin(), else the one with
	 *  the most free memory when first seen): operations reading it run
	 *  there, their other inputs move. */
	DJ_SCHED_WEIGHTS_PIN,
};

enum dj_sched_mode {
	DJ_SCHED_MODE_RULES = 0,    /**< the cost model and the rules */
	/** A baseline: operation after operation on the next server in turn
	 *  (a new state too); operations on a state beside it, as the graph
	 *  requires. */
	DJ_SCHED_MODE_ROUND_ROBIN,
};

struct dj_sched_options {
	enum dj_sched_mode mode;
	enum dj_sched_weights weights;
	/** Prefill/decode disaggregation (rule 4): bit s set where server s
	 *  takes new sequences (prefill) / runs decode steps. 0 (both, the
	 *  default): every server does both, nothing moves. Where decode
	 *  servers are named, a sequence prefilled elsewhere has its KV cache
	 *  moved once to a decode server before its first decode step. */
	uint64_t prefill_servers, decode_servers;
	/** Graph context options (inline_max, mover); the placer is the
	 *  scheduler's. NULL: the defaults. */
	const struct dj_graph_options *graph;
	/** Calibration sizes: matmul side (default 128, doubled while one
	 *  takes under 0.5 ms, at most 1024) and elementwise elements
	 *  (default 1M). */
	int calib_matmul_n;
	int64_t calib_elementwise_n;
	/** 1: the servers are the same hardware (a homogeneous fleet): each
	 *  compute figure is the best measured on any of them, for all of
	 *  them, so that noise of a busy client cannot tell twins apart. Links,
	 *  memory and queues stay each server's own. */
	int homogeneous;
	/** Figures to use instead of measuring (dj_sched_create): an earlier
	 *  scheduler's (dj_sched_fleet_get) over the same servers, in the same
	 *  order. Borrowed for the call. NULL: calibrate. */
	const struct dj_sched_fleet *fleet;
	/** dj_sched_create_fleet: 1 derives the links between members from
	 *  their links to the client (dj_sched_fleet_links) instead of
	 *  probing them with server-to-server copies. */
	int no_link_probe;
};

void dj_sched_options_init(struct dj_sched_options *opts);

/**
 * A simulated fleet of n servers (1..DJ_SCHED_MAX_SERVERS), each named
 * "simN" with the same figures: 10 GFLOP/s matmul (float32), 5 GB/s
 * elementwise, 10 us per op, 50 us service time, memory not known, 50 us and
 * 1 GB/s to the client; links derived through the client. Edit the servers'
 * figures, then dj_sched_fleet_links() again. @return 0, -EINVAL.
 */
int dj_sched_fleet_sim(struct dj_sched_fleet *fleet, int n);
/** Links between servers from each server's link to the client, as a
 *  tensor crosses today (fetched from a, put to b): rtt[a][b] = rtt(b),
 *  1/bw[a][b] = 1/bw(a) + 1/bw(b); links_direct = 0, note set. Links
 *  between two devices of one server (same group) are kept. */
void dj_sched_fleet_links(struct dj_sched_fleet *fleet);
/**
 * Every server of @p fleet (each of one device, group 0) becomes
 * @p n_devices units "NAME/cuda:D" (device "cuda:D", group = its server's
 * index + 1), each with the server's figures (memory too: each GPU has its
 * own); peer-copy links between them simulated at 10 us and 20 GB/s (edit
 * link_* to model NVLink or a slower path); links between servers derived
 * again (dj_sched_fleet_links). n_devices 1 changes nothing.
 * @return 0, -EINVAL (n_devices < 1, a server with devices already, more
 * than DJ_SCHED_MAX_SERVERS units).
 */
int dj_sched_fleet_devices(struct dj_sched_fleet *fleet, int n_devices);

struct dj_sched;

/**
 * Measure servers[0..n-1] (borrowed sessions; they must outlive the
 * scheduler): per server a short calibration through EXECUTE batches timed
 * here (matmul GFLOP/s for float32, float16 and bfloat16; elementwise
 * GB/s; the cost of one more operation in a batch), PINGs and a PUT (round
 * trip, bandwidth), STATS (free memory, queue); links between servers
 * derived through the client (fleet->note says so); or opts->fleet's
 * figures where given. A server whose STATS lists several devices becomes
 * that many units ("sN/DEVICE"), each with its device's memory and queue,
 * the server's compute figures, and peer-copy links between them measured
 * with to_device (4 B and 1 MiB). Then a graph context over the units (the
 * units of a server on its session, each on its device) with the scheduler
 * as its placer.
 * @return 0, -EINVAL (also opts->fleet of other units), -ENOMEM, or a
 * server's error (its message logged).
 */
int dj_sched_create(const struct dj_sched_options *opts, struct dj_conn *const *servers, int n,
		    struct dj_sched **sched);
struct dj_fleet;

/**
 * A scheduler over the members of @p fleet (borrowed; it must outlive the
 * scheduler) that are up now, in dj_fleet_view()'s order: server s is the
 * member dj_sched_member() names, its session dj_fleet_conn()'s. Figures:
 * compute calibrated as dj_sched_create() does (or opts->fleet's, of the
 * same units), memory (each member's devices, capped by its store limit)
 * and queue from the fleet's view (a member of several devices: one unit
 * per device, its own memory and queue, peer-copy links probed with
 * to_device), links between members
 * probed with a 4-byte and a 1 MiB dj_fleet_move() COPY each way, timed by
 * the source, the least of two rounds (opts->no_link_probe, or a probe
 * that fails: derived through the client). A member up that takes no
 * session is left out. Where every member accepts moves (a fleet token),
 * the graph context's mover is dj_fleet_move(): KV caches move server to
 * server (counted in dj_sched_stats: kv_moves_direct,
 * kv_move_bytes_direct); otherwise, or where opts->graph gives a mover of
 * its own, as without a fleet.
 * Membership: before each dj_sched_fetch(), a member the view says left
 * (and that does not answer a PING) or restarted is marked down
 * (dj_sched_server_down) and its sequences are rebuilt from their lineage;
 * dj_sched_refresh() reads memory and queue from the view. Members that
 * join later are not used by this scheduler.
 * @return 0, -EINVAL (opts->fleet of another size), -ENOMEM,
 * -EHOSTUNREACH (no member up), or a calibration error.
 */
int dj_sched_create_fleet(const struct dj_sched_options *opts, struct dj_fleet *fleet,
			  struct dj_sched **sched);
/**
 * The fleet member of server @p server (its dj_fleet_member.index) for a
 * scheduler made by dj_sched_create_fleet().
 * @return 0, -EINVAL (no such server), -ENOENT (not over a fleet).
 */
int dj_sched_member(const struct dj_sched *sched, int server, uint32_t *member);

/**
 * A scheduler over a described fleet and no servers (a simulation: `djinn
 * plan`, tests). Placement only (dj_sched_plan); states and weights it
 * places are remembered as if a run had made them.
 * @return 0, -EINVAL (no servers, too many), -ENOMEM.
 */
int dj_sched_create_sim(const struct dj_sched_options *opts, const struct dj_sched_fleet *fleet,
			struct dj_sched **sched);
/** The graph context is destroyed too (its graphs first). NULL is fine. */
void dj_sched_destroy(struct dj_sched *sched);
/** The graph context over the servers (NULL for a simulation). */
struct dj_graph_ctx *dj_sched_ctx(struct dj_sched *sched);

/**
 * Calibrate servers[0..n-1] into *fleet, as dj_sched_create() does.
 * @return 0, -EINVAL, -ENOMEM, or the first server's error.
 */
int dj_sched_measure(const struct dj_sched_options *opts, struct dj_conn *const *servers, int n,
		     struct dj_sched_fleet *fleet);
/** Read every up server's STATS again (free memory, queue); forget the
 *  memory reserved since. Over a fleet: the figures of the fleet's view
 *  instead (no request), and members that left or restarted marked down.
 *  @return 0 or the first error (that server kept its old figures). */
int dj_sched_refresh(struct dj_sched *sched);
void dj_sched_fleet_get(const struct dj_sched *sched, struct dj_sched_fleet *fleet);
/** Replace the description (same number of servers): a simulation's new
 *  loads, or figures from elsewhere. @return 0, -EINVAL. */
int dj_sched_fleet_set(struct dj_sched *sched, const struct dj_sched_fleet *fleet);
/**
 * The server of unit @p server left, with every device of it: nothing is
 * placed on its units any more, their sequences are lost (rebuilt from
 * their lineage by dj_sched_fetch(), or by a prefill that writes them
 * again), the context forgets what it held there.
 * @return the number of sequences lost, -EINVAL.
 */
int dj_sched_server_down(struct dj_sched *sched, int server);
/** Pin weight @p name to @p server (DJ_SCHED_WEIGHTS_PIN). @return 0,
 *  -EINVAL, -ENOMEM. */
int dj_sched_pin(struct dj_sched *sched, const char *name, int server);

/**
 * Rebuild sequence @p sequence, lost with its server, from its lineage:
 * record and run (dj_sched_fetch) a graph that writes its states again from
 * position 0 (for an LLM: a prefill of the sequence's tokens so far). The
 * scheduler places it on a surviving server. Return 0, -EAGAIN where there
 * is nothing to rebuild (the sequence was lost in the very fetch that
 * creates it: it is forgotten, and that fetch, run again, makes it), or an
 * error.
 */
typedef int (*dj_sched_rebuild_fn)(void *arg, struct dj_sched *sched, const char *sequence);
void dj_sched_set_lineage(struct dj_sched *sched, dj_sched_rebuild_fn rebuild, void *arg);

/**
 * dj_graph_fetch() of a graph of the scheduler's context, with recovery:
 * where a server's request failed and the server does not answer a PING,
 * it is marked down (dj_sched_server_down), its lost sequences are rebuilt
 * through the lineage callback on survivors, and the fetch runs again (its
 * in-place writes at fixed positions give the same bytes twice). At most
 * one retry per server.
 * @return 0, or dj_graph_fetch()'s error; -EHOSTDOWN where a sequence was
 * lost and no lineage rebuilt it (dj_graph_error says which).
 */
int dj_sched_fetch(struct dj_sched *sched, struct dj_graph *graph, const int *nodes, int n,
		   struct dj_tensor *out);
/**
 * Place a graph and cut it into batches without running it
 * (dj_graph_plan with the scheduler's placer): the decisions
 * (dj_sched_decisions, dj_sched_explain) and what the run would send
 * (*expect, may be NULL). With servers nothing is remembered; in a
 * simulation the new states and weights are, as a run would make them.
 * @return as dj_graph_plan().
 */
int dj_sched_plan(struct dj_sched *sched, struct dj_graph *graph, const int *nodes, int n,
		  struct dj_graph_run_stats *expect);

/** The rules (docs/SCHEDULER.md). */
enum dj_sched_rule {
	DJ_SCHED_RULE_COST = 0,     /**< one operation: earliest finish */
	DJ_SCHED_RULE_KV_COLOCATE,  /**< 1: a step beside its KV cache */
	DJ_SCHED_RULE_MEMORY,       /**< 2: only where it fits */
	DJ_SCHED_RULE_LOAD_BALANCE, /**< 3: a new sequence, earliest completion */
	DJ_SCHED_RULE_DISAGG,       /**< 4: prefill here, decode there */
	DJ_SCHED_RULE_WEIGHTS,      /**< 5: a weight pinned */
	DJ_SCHED_RULE_RECOVERY,     /**< a server left: rebuilt elsewhere */
	DJ_SCHED_RULE_ROUND_ROBIN,  /**< the baseline mode */
};
/** "cost", "kv-colocation", "memory", "load-balance", "disaggregation",
 *  "weights", "recovery", "round-robin". Static. */
const char *dj_sched_rule_name(enum dj_sched_rule rule);

/** One decision: a sequence's step, one operation, a KV cache moved, a
 *  weight pinned, a server lost. Times in seconds. */
struct dj_sched_decision {
	enum dj_sched_rule rule;
	int node;                   /**< first node it places (-1: none) */
	int n_ops;                  /**< operations it places */
	int server;                 /**< where (-1: a failure) */
	int from;                   /**< a move's source, else -1 */
	char what[DJ_SCHED_NAME_MAX]; /**< sequence, weight, or op name */
	double compute_s;           /**< arithmetic and per-op overhead there */
	double move_s;              /**< inputs, states and weights moved there */
	double queue_s;             /**< waiting: queued requests and earlier work */
	double finish_s;            /**< expected completion */
	uint64_t bytes;             /**< memory it needs there (a move: bytes moved) */
	char reason[240];           /**< why, the runner-up's figures included */
};
/** The decisions of the last placement; *d valid until the next one.
 *  @return their number. */
int dj_sched_decisions(const struct dj_sched *sched, const struct dj_sched_decision **d);
/** The last placement's decisions as text, one line each; malloc'ed
 *  (caller frees), NULL where memory ran out. */
char *dj_sched_explain(const struct dj_sched *sched);

/** A sequence and where its KV cache lives. */
struct dj_sched_sequence {
	char name[DJ_SCHED_NAME_MAX];
	int server;
	int lost;                   /**< its server left; not rebuilt yet */
	uint64_t kv_bytes;
};
/** Up to max sequences; @return their number (all of them). */
int dj_sched_sequences(const struct dj_sched *sched, struct dj_sched_sequence *seqs, int max);

struct dj_sched_stats {
	int placements;             /**< graphs placed */
	int decisions;              /**< decisions made */
	int kv_moves;               /**< states (KV caches) moved: disaggregation, memory */
	uint64_t kv_move_bytes;
	/** States moved server to server by the fleet's mover (a scheduler
	 *  of dj_sched_create_fleet; dj_fleet_move: the bytes never came to
	 *  this client), the scheduler's moves above and any made with
	 *  dj_graph_ctx_state_move() on its context; of them, those over the
	 *  data plane; the bytes the fleet reported; the moves' time as this
	 *  client saw it (grant, transfer, hand-over). */
	int kv_moves_direct;
	int kv_moves_dpdk;
	uint64_t kv_move_bytes_direct;
	uint64_t kv_move_ns;
	int servers_lost;
	int sequences_rebuilt;      /**< lineage rebuilds */
	int retries;                /**< fetches run again after a loss */
	/** States moved between two devices of one server (to_device on that
	 *  server: never the network, never this client), and their bytes. */
	int kv_moves_peer;
	uint64_t kv_move_bytes_peer;
};
void dj_sched_stats(const struct dj_sched *sched, struct dj_sched_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_SCHEDULER_H */
