/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPLANE_H
#define DJINN_DATAPLANE_H

/**
 * @file
 * The DPDK data plane: ports with N rx/tx queue pairs (one polling lcore
 * each), per-lcore statistics, and zero-copy transmission of host payloads.
 *
 * A port works with any ethdev (real NIC, net_memif, net_af_packet, net_tap,
 * net_null, net_ring). Offloads (IPv4/UDP checksum, RSS, rte_flow steering)
 * are used when the port has them; dp_port_caps() says which, and the engine
 * does the rest in software.
 *
 * EAL must be running (dp_eal_init()) before anything here is called.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/datapath.h"
#include "dataplane/proto/transfer.h"
#include "dataplane/proto/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DP_PORT_MAX_QUEUES 16

struct dp_port;

struct dp_port_config {
	uint16_t port_id;
	/** rx/tx queue pairs, one polling lcore each; 0 means 1. */
	uint16_t nb_queues;
	/** Descriptors per rx / tx queue; 0 means 1024. */
	uint16_t nb_rxd, nb_txd;
	/** Largest frame sent or received, Ethernet header included; frames
	 * above the port's MTU need a jumbo-capable port (memif: bsize).
	 * 0 means 1514. Receive buffers get this much data room. */
	uint16_t frame_size;
	/** Receive mbufs per queue; 0 means 4 x nb_rxd + 2048, fewer for jumbo
	 * frames (about 128 MiB a queue, at least nb_rxd + 512). */
	uint32_t nb_mbufs;
	/** Accept every destination MAC (software endpoints, tests). */
	int promiscuous;
	/** Ask for rx queue interrupts (intr_conf.rxq); a driver that refuses
	 *  them gets the port configured without (and its lcores nap). */
	int rx_intr;
};

/** What the port does in hardware; everything else is done in software. */
struct dp_port_caps {
	unsigned int tx_ipv4_cksum : 1;
	unsigned int tx_udp_cksum : 1;
	unsigned int rx_ipv4_cksum : 1;
	unsigned int rx_udp_cksum : 1;
	unsigned int rss : 1;        /**< RSS on IPv4/UDP over the queues */
	unsigned int multi_seg : 1;  /**< chained mbufs on transmit */
	/** Payloads outside DPDK memory may be attached on transmit (chained
	 *  mbufs, and not a zero-copy memif, which passes buffers by offset
	 *  into DPDK's memory). Otherwise payloads are copied. */
	unsigned int tx_extbuf : 1;
	unsigned int flow : 1;       /**< rte_flow steering accepted (known after a rule) */
	/** A memif client: it connects to its server only when started, so
	 *  after the server went away it must be restarted to come back. */
	unsigned int memif_client : 1;
	/** Rx queue interrupts configured (port.rx_intr asked, driver took
	 *  it): rte_eth_dev_rx_intr_enable() may work. */
	unsigned int rx_intr : 1;
	uint16_t max_queues;
	uint32_t max_rx_pktlen;
	char driver[32];
};

/**
 * Configure and start a port: queues, mempools on the port's NUMA socket,
 * offloads it has. *out is owned by the caller: dp_port_destroy().
 */
int dp_port_create(const struct dp_port_config *cfg, struct dp_port **out);

/** Stop the port (left configured, not closed: the ethdev stays EAL's),
 * free its flows and mempools. NULL is a no-op. */
void dp_port_destroy(struct dp_port *port);

const struct dp_port_caps *dp_port_get_caps(const struct dp_port *port);
const struct dp_port_config *dp_port_get_config(const struct dp_port *port);

/**
 * Steer IPv4/UDP packets for @p udp_port to rx queue @p queue with rte_flow.
 * -ENOTSUP where the port cannot (the engine then dispatches in software).
 */
int dp_port_steer_udp(struct dp_port *port, uint16_t udp_port, uint16_t queue);

/** Find a port by its ethdev name ("net_memif0", a PCI address...). */
int dp_port_find(const char *name, uint16_t *port_id);

/** Wait until the link is up (memif: the peer connected), looking every
 * millisecond. With restart, a memif client turned away by a server not
 * started yet is restarted: only while no lcore polls the port (with
 * lcores running, their link watch does that). 0, or -ETIMEDOUT (the link
 * is looked at once even with timeout_ns 0). */
int dp_port_wait_link(struct dp_port *port, uint64_t timeout_ns, bool restart);

/** The link is up now (no system call: ethdev data). */
bool dp_port_link_up(const struct dp_port *port);

/** Stop and start the port: a memif client connects to its server again.
 *  Only while no lcore polls the port. 0 or the start's error (the server
 *  is not there yet: try again later). */
int dp_port_restart(struct dp_port *port);

struct rte_mbuf;
struct rte_mbuf_ext_shared_info;

/**
 * Build one frame for tx queue @p queue: hdr_len bytes of hdr copied into a
 * small header mbuf, then len payload bytes. Payloads above 256 bytes are
 * attached zero-copy as an external buffer when shinfo is given and the port
 * chains mbufs: the payload must then stay valid until shinfo's free_cb runs
 * (each attached mbuf holds a reference on shinfo). NULL when a pool is empty.
 * The frame is the caller's (rte_eth_tx_burst or rte_pktmbuf_free).
 */
struct rte_mbuf *dp_port_frame_build(const struct dp_port *port, uint16_t queue,
				     const void *hdr, uint16_t hdr_len,
				     const void *payload, uint32_t len,
				     struct rte_mbuf_ext_shared_info *shinfo);

/** Reasons a packet was dropped by the data plane, counted per lcore. */
enum dp_drop {
	DP_DROP_NOT_DJINN,   /**< not IPv4/UDP to a Djinn endpoint */
	DP_DROP_REJECTED,    /**< rejected by the transfer engine (see its counters) */
	DP_DROP_NO_MBUF,     /**< mempool empty on transmit */
	DP_DROP_TX_FULL,     /**< tx queue full after retries */
	DP_DROP_IMPAIR,      /**< dropped on purpose by in-line impairment */
	DP_DROP_MAX
};

/** Statistics of one lcore, or summed over lcores. */
struct dp_engine_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t tx_packets, tx_bytes;
	uint64_t retransmits;
	uint64_t drops[DP_DROP_MAX];
	uint64_t idle_naps;   /**< naps taken (DP_IDLE_NAP, or a DP_IDLE_INTERRUPT
			       *  lcore that could not sleep) */
	uint64_t idle_sleeps; /**< DP_IDLE_INTERRUPT: waits on the rx interrupt */
	uint64_t idle_rx_wakes; /**< of those, ended by the rx interrupt (a frame) */
	/** Time the polling loop ran, and the part spent in iterations that
	 *  moved a packet or took a command (the rest polled empty queues or
	 *  napped): busy_ns / loop_ns is the lcore's busy ratio. Measured
	 *  once per loop iteration from the clock the loop reads anyway. */
	uint64_t loop_ns, busy_ns;
};

/** Name of a drop reason ("not_djinn", ...). */
const char *dp_drop_name(enum dp_drop reason);

/** Add @p from into @p to. */
void dp_engine_stats_add(struct dp_engine_stats *to, const struct dp_engine_stats *from);

/* ---- The engine ------------------------------------------------------------ */

struct dp_engine;

/**
 * Receive placement for destinations the CPU does not write (DJ_MEM_GPU),
 * e.g. the GPU module's batching sink (djg_dp_placer_create). Every
 * callback but copy_out runs on the polling lcore that owns the session,
 * one lcore state never concurrently.
 */
struct dp_engine_placer {
	/** Per-lcore state for lcore_idx (0 .. queues - 1). */
	int (*lcore_init)(void *ctx, unsigned int lcore_idx, void **state);
	void (*lcore_fini)(void *state);
	/** Copy, or queue a copy of, len bytes at src (inside a received
	 *  mbuf) to dest_base + dest_offset; dest_len is the whole destination
	 *  (the transfer's length), for sinks bound to one destination. */
	void (*place)(void *state, void *dest_base, uint64_t dest_len, uint64_t dest_offset,
		      const void *src, uint32_t len);
	/** End of an rx burst: mbufs[0..n) hold payloads given to place().
	 *  0: the placer keeps them and frees them (rte_pktmbuf_free) once its
	 *  copies are done; non-zero: the engine frees them now. */
	int (*burst_end)(void *state, struct rte_mbuf **mbufs, uint16_t n);
	/** Finish every queued copy; called before a receive is reported
	 *  complete. 0, or a negative errno that fails nothing but is logged. */
	int (*sync)(void *state);
	/** Optional: start the copies of every fragment placed so far, without
	 *  waiting for them. A placer may gather several rx bursts into one
	 *  larger batch (burst_end() then keeps the mbufs); the engine calls
	 *  this after an rx poll that came back short of a full burst, so no
	 *  fragment waits in an open batch for traffic that may not come.
	 *  NULL: burst_end() starts each burst's copies itself. */
	void (*flush)(void *state);
	void *ctx;
	/** Optional, for GPU sources on transmit (dp_engine_send with
	 *  DJ_MEM_GPU) when the staging members below are NULL: copy len
	 *  bytes of GPU memory at src into host memory at dst before
	 *  returning (one whole copy, then the send). Runs on control
	 *  threads, several at once. NULL too: such sends fail with -ENOTSUP. */
	int (*copy_out)(void *ctx, void *dst, const void *src, size_t len);
	/*
	 * Optional, all four or none: GPU sources sent chunk by chunk. The
	 * sending control thread copies chunks of the source into a ring of
	 * slots in pinned host memory with asynchronous copies, and the lcore
	 * transmits each chunk once its copy landed, while later ones are
	 * still copying. These run on control threads (several at once, each
	 * on its own stage), never on polling lcores.
	 */
	/** A stage of slots x slot_bytes of host memory that the port may
	 *  transmit from (DPDK memory on NUMA socket, the port's, so a NIC can
	 *  DMA it) and the GPU can copy into, plus what slots independent
	 *  copies need (events...). *stage and *host stay the placer's; the
	 *  engine gives them back with stage_put(). 0 or a negative errno. */
	int (*stage_get)(void *ctx, size_t slot_bytes, unsigned int slots, int socket,
			 void **stage, void **host);
	/** Give a stage back once no frame references its memory: the placer
	 *  waits for copies still running, and keeps it for a later send
	 *  unless one of its copies failed. */
	void (*stage_put)(void *ctx, void *stage);
	/** Start copying len bytes of GPU memory at src to dst (inside the
	 *  stage's host memory) as slot's copy; slot's previous copy is done.
	 *  0 or a negative errno. */
	int (*stage_copy)(void *stage, unsigned int slot, void *dst, const void *src, size_t len);
	/** 1: slot's last copy landed, 0: not yet, negative errno: it failed. */
	int (*stage_poll)(void *stage, unsigned int slot);
};

/** What an idle polling lcore does (docs/DATAPLANE.md "Idle lcores"). */
enum dp_idle {
	/** DP_IDLE_NAP where idle_sleep_us is set, else DP_IDLE_POLL. */
	DP_IDLE_DEFAULT = 0,
	/** Poll without pause: dedicated cores, the lowest latency. */
	DP_IDLE_POLL,
	/** After 30 us without work, nap idle_sleep_us at a time
	 *  (a command ends the nap, a frame waits for its end). */
	DP_IDLE_NAP,
	/** After 30 us without work, sleep until a frame (the rx
	 *  queue's interrupt), a command or the next timer wakes the lcore.
	 *  Where the port has no rx interrupts (af_packet, most NICs under
	 *  DPDK, a memif whose link is down) the lcore naps instead. */
	DP_IDLE_INTERRUPT,
};

/** Default nap of DP_IDLE_NAP and DP_IDLE_INTERRUPT, in microseconds. */
#define DP_IDLE_NAP_US 20

/** Names of the modes, indexed by enum dp_idle ("default", "poll", "nap",
 *  "interrupt"): options take dp_idle_names + 1, 3 of them. */
extern const char *const dp_idle_names[DP_IDLE_INTERRUPT + 1];

struct dp_engine_config {
	/** Port and queues; one worker lcore per queue pair must be free
	 *  (EAL -l), taken in rte_lcore order. */
	struct dp_port_config port;
	/** This side: IPv4 (host order) and base UDP port (queue q listens on
	 *  port + q; 0 means DP_WIRE_UDP_PORT). A zero MAC means the port's. */
	struct dp_netaddr local;
	/** IP MTU that sizes DATA fragments (the smaller of both sides' is
	 *  used); 0 means port.frame_size - 14. */
	uint16_t mtu;
	/** Transfer protocol settings used for every session (timeouts,
	 *  window, CRC); session id, cookie, endpoints and frag_size are
	 *  filled per session. Zero: dp_channel_config_init() defaults. */
	struct dp_channel_config session;
	bool session_set; /**< session above was filled by the caller */
	/** GPU receive placement (borrowed, outlives the engine); NULL: a
	 *  DJ_MEM_GPU receive fails with -ENOTSUP. */
	const struct dp_engine_placer *placer;
	/** Shared cores: an lcore idle for a few hundred loops naps this many
	 *  microseconds (0, the default: poll without pause, for dedicated
	 *  cores). With idle DP_IDLE_NAP or DP_IDLE_INTERRUPT, 0 means
	 *  DP_IDLE_NAP_US. */
	uint32_t idle_sleep_us;
	/** What an idle lcore does (enum dp_idle); DP_IDLE_DEFAULT follows
	 *  idle_sleep_us as before this field existed. */
	enum dp_idle idle;
	/** DP_IDLE_INTERRUPT only, host memory and no placer: a thread that
	 *  waits for a send or a receive runs the lcore's loop itself while
	 *  the lcore sleeps (up to 200 us, then it sleeps too), so that a
	 *  small transfer needs no thread wake-up (run to completion). */
	bool caller_runs;
	/** Wait this long for the link (the memif peer) before the lcores
	 *  start; 0: do not wait. A link that stays down is logged, not fatal. */
	uint32_t link_timeout_ms;
	/** In-line impairment of transmitted packets (dp_impair_config_parse
	 *  syntax, e.g. "drop=0.05,reorder=0.05"), NULL or "" for none. */
	const char *impair;
	/** GPU sources through a placer with staging: slots of the staging
	 *  ring per send (chunks of about 1 MiB, a whole number of fragments),
	 *  at most DP_STAGE_MAX_SLOTS. 0: enough for the session's
	 *  window plus 2 of look-ahead, at least 4. Never more than the
	 *  tensor needs. */
	uint32_t stage_slots;
	/** Bytes per staging chunk before rounding down to whole fragments;
	 *  0 means 1 MiB. */
	uint32_t stage_chunk;
};

#define DP_STAGE_MAX_SLOTS 64

/**
 * Configure the port, start one polling lcore per queue. *out is owned by
 * the caller: dp_engine_destroy(). -EINVAL (bad config, too few lcores),
 * -ENOMEM, or the port's error.
 */
int dp_engine_create(const struct dp_engine_config *cfg, struct dp_engine **out);

/** Stop the lcores, close every session (their transfers fail), free all. */
void dp_engine_destroy(struct dp_engine *dp);

/**
 * Stop the lcores but leave the port up, so that the peer sees no
 * disconnect yet. For an orderly end between processes on memif: both
 * sides quiesce, then destroy (a memif peer that disconnects while the
 * other side's lcore is inside a burst can crash it in DPDK 22.11). After
 * this only dp_engine_get_stats() and dp_engine_destroy() are valid.
 */
void dp_engine_quiesce(struct dp_engine *dp);

/** This side's endpoint in HELLO form (MAC, IPv4, base UDP port, queues, MTU). */
void dp_engine_endpoint(const struct dp_engine *dp, struct dp_endpoint *ep);

/**
 * The engine as a data path (dataplane/datapath.h) for the control plane.
 * The operations below are the same functions, callable directly; all are
 * for control threads, never for polling lcores.
 */
void dp_engine_datapath(struct dp_engine *dp, struct dj_datapath *out);

int dp_engine_session_open(struct dp_engine *dp, uint64_t session_id, uint64_t cookie,
			      const struct dp_endpoint *peer);
void dp_engine_session_close(struct dp_engine *dp, uint64_t cookie);
int dp_engine_probe(struct dp_engine *dp, uint64_t cookie, uint32_t timeout_ms,
		       uint64_t *rtt_ns);
int dp_engine_expect(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
			void *dst, size_t len, enum dj_mem_kind mem);
/** Wait up to timeout_ms for an expected transfer: 0, its error, or
 *  -ETIMEDOUT (the transfer stays armed: wait again or cancel). The
 *  protocol itself fails it by the liveness rule (docs/DATAPLANE.md). */
int dp_engine_wait(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
		      uint32_t timeout_ms);
int dp_engine_cancel(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id);
/**
 * Send len bytes of src as transfer xfer_id; returns once the peer
 * acknowledged every byte and no frame reads src any more. Deadlines follow
 * progress, not size: the send fails with -ETIMEDOUT once the peer
 * acknowledged nothing new for timeout_ms (the peer alive but the transfer
 * stuck), or earlier where the session heard nothing at all from the peer
 * for its dead_timeout_ns (the peer taken for dead). A send that makes
 * progress never times out. Also -ENOENT (no such session), -EDEADLK
 * (frames still read src: send_pinned), the protocol's errors.
 */
int dp_engine_send(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id,
		      const void *src, size_t len, enum dj_mem_kind mem, uint32_t timeout_ms);

/**
 * Send one transfer in parts, each as transfer xfer_id of its own session
 * (sessions on different queue pairs move their parts on as many lcores at
 * once): every part is posted before the first wait, then each ends as
 * dp_engine_send's does. Host memory only. The receiver expects each part
 * on its session. A part that cannot start (unknown session, full command
 * ring), fails or stalls cancels the others: the waiter looks at every
 * part every 2 ms, so the whole fails as soon as one part did.
 * @return 0 once every part was acknowledged and released; otherwise the
 *   first error of a part in order, where the part that failed is named
 *   rather than the parts it stopped: -EINVAL (no parts, more than
 *   DP_SEND_PARTS_MAX, NULL), -ENOENT, -ENOMEM, -EBUSY, -ETIMEDOUT (a part
 *   stalled for timeout_ms), -EDEADLK (frames of a part still read its
 *   source: dp_send_pinned per part), -ECANCELED (only where every failed
 *   part was cancelled), the protocol's errors.
 */
int dp_engine_send_parts(struct dp_engine *dp, const struct dp_send_part *parts,
			 unsigned int n, uint64_t xfer_id, uint32_t timeout_ms);

/** Counters of the lcore serving queue pair idx; -ENOENT past the last. */
int dp_engine_lcore_stats(const struct dp_engine *dp, unsigned int idx,
			     struct dp_engine_stats *st);

/** GPU-source sends, counted since the engine started. */
struct dp_engine_stage_stats {
	uint64_t staged_sends;    /**< sent chunk by chunk through a staging ring */
	uint64_t whole_sends;     /**< sent after one whole copy (placer without staging) */
	uint64_t chunks;          /**< chunk copies that landed */
	uint64_t slot_reuses;     /**< chunks copied into a slot that held an earlier one */
	uint64_t ring_waits;      /**< times a copy waited for its slot to be acknowledged */
	uint64_t copy_failures;   /**< sends failed by a copy (-EIO) */
	uint64_t max_stage_bytes; /**< largest staging ring one send used */
	uint64_t late_rings;      /**< rings still read by frames when their send
				       ended: given back later, not by the send */
};

/** Counters of GPU-source sends. */
void dp_engine_stage_stats(const struct dp_engine *dp, struct dp_engine_stage_stats *st);

/** Engine counters summed over lcores; proto (may be NULL) receives the
 *  transfer protocol's counters summed over every session since the engine
 *  started, closed ones included, so that each only grows (the RTT fields:
 *  those of one open session). */
void dp_engine_get_stats(const struct dp_engine *dp, struct dp_engine_stats *st,
			    struct dp_proto_stats *proto);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_DATAPLANE_H */
