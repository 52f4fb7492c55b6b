/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPLANE_ENGINE_H
#define DJINN_DATAPLANE_ENGINE_H

/*
 * Engine internals. Control threads and polling lcores share nothing but
 * single-producer/single-consumer command rings and a few atomic fields:
 *
 *   control thread                         lcore (owns its sessions)
 *   op = calloc, ring enqueue     ---->    dequeue, dp_channel_send/recv/...
 *   wait for op->done (sleeps)    <----    event: op->status, op->done = 1
 *   free(op)                               (never touches op again)
 *
 * A SEND op also holds the payload's extbuf reference count: the waiter
 * frees it only after the driver released every mbuf pointing into the
 * caller's buffer (op->released), so a returning send() never leaves a
 * packet that still reads the buffer. A SEND of a GPU source carries a
 * staging ring instead (op->stage): the waiter fills it while it waits,
 * and the ring's slots hold the frames' references, so the caller's GPU
 * memory is free once the copies settled; a ring that frames still read
 * when the send ends drains on the side (dp->draining), never freed
 * under them.
 *
 * Session lifetime: a dp_session is counted (refs). The control-side list
 * holds one reference from a successful open until close; a lookup takes one
 * under dp->lock before the lock is dropped; every op holds one on op->sess
 * until the thread that frees the op drops it (op_free). The last reference
 * frees the session. The lcore touches a session only while it is on its
 * list (OPEN..CLOSE, inside the list reference) or while it runs an op of it
 * (inside the op's), so no path reaches a freed session. An op leaked on
 * -EDEADLK keeps its session too: leaking beats a use after free.
 *
 * Statistics: the lcore counts into private fields and publishes copies
 * under a single-writer sequence count (dp_seq_publish); readers on other
 * threads take consistent snapshots (dp_seq_read) without a lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "dataplane/dataplane.h"
#include "dataplane/proto/impair.h"
#include "dataplane/proto/trace.h"
#include "port.h"

#define DP_MAX_LCORES DP_PORT_MAX_QUEUES
#define DP_MAX_SESSIONS 64       /* per lcore */
#define DP_CMD_RING 1024
#define DP_TXQ_MAX 256           /* frames waiting for room in the tx ring */
/* memif makes a tx burst visible to the peer only once the whole burst
 * is copied into the ring: at 32 jumbo frames (288 KiB) the receiver
 * starts its copies some 25 us after the sender started, and a 1 MiB
 * transfer paid that fill twice over (H100 trace). Smaller chunks let
 * the two copies overlap: 8 frames fixed 1 MiB on the H100; 4 took a
 * 64 KiB transfer's p50 from 18-19 to 15 us on the dev VM, where the
 * receiver waited for the sender's first eight copies (2 was no better,
 * and each chunk costs the driver a call). */
#define DP_MEMIF_TX_CHUNK 4
/* A probe of a memif whose link is down waits for it this long after the
 * engine started (its first handshake, mapping the regions, may still be
 * running); later a link that is down fails the probe at once. */
#define DP_PROBE_LINK_GRACE_NS (3000ull * 1000 * 1000)
#define DP_CTRL_BURST 8
#define DP_HOLD_MAX 4096
#define DP_STATS_PERIOD_NS 1000000ull
#define DP_POLL_NS 10000ull
#define DP_TX_STALL_NS (50ull * 1000 * 1000)
#define DP_LINK_CHECK_NS (1000ull * 1000)
/* Idle napping (cfg.idle_sleep_us): an lcore naps once it did nothing for
 * DP_IDLE_POLL_NS, or for DP_IDLE_INFLIGHT_NS while one of its sends waits
 * for the peer's ACK (the answer is due within a round trip: a nap then
 * delays the completion by a wake-up, on a loaded VM 20-60 us). */
#define DP_IDLE_POLL_NS (30ull * 1000)
#define DP_IDLE_INFLIGHT_NS (1000ull * 1000)
/* DP_IDLE_INTERRUPT: the longest sleep, so how late a memif link that went
 * down (its eventfd closed under the sleeper) is noticed; the sessions'
 * timers (keep-alives every 250 ms) bound it further. */
#define DP_SLEEP_MAX_NS (10ull * 1000 * 1000)
/* lc->baton. */
#define DP_BATON_FREE 0
#define DP_BATON_LCORE 1
#define DP_BATON_CALLER 2
/* cfg.caller_runs: a waiting caller runs the sleeping lcore's loop this
 * long at most before it sleeps itself. */
#define DP_ASSIST_NS (200ull * 1000)
/* lc->napping: how a napping lcore waits, so how to wake it. */
#define DP_NAP_FUTEX 1
#define DP_NAP_EPOLL 2
#define DP_HANDOFF_RING 4096
/* A memif client whose link went down is restarted this often (link.c). */
#define DP_RELINK_NS (200ull * 1000 * 1000)

enum dp_cmd {
	DP_CMD_OPEN,
	DP_CMD_CLOSE,
	DP_CMD_SEND,
	DP_CMD_RECV,
	DP_CMD_CANCEL,
	DP_CMD_PING,
};

struct dp_session;

/*
 * The staging ring of one GPU-source send (stage.c). The sending control
 * thread copies chunk c of the source into slot c % n_slots with the
 * placer's asynchronous copies and raises src.ready as they land; the lcore
 * sends from the ring (src.wrap) and attaches every fragment of slot k with
 * slot[k].shinfo as its owner, so a slot is refilled only once the session
 * acknowledged its chunk (src.acked) and no frame holds it (refcnt 1: the
 * ring's own reference).
 */
struct dp_stage_slot {
	struct rte_mbuf_ext_shared_info shinfo;
} __rte_cache_aligned;

struct dp_stage {
	struct dp_tx_source src;
	const struct dp_engine_placer *placer;
	void *handle;              /* the placer's stage */
	uint8_t *host;             /* n_slots * chunk bytes, the placer's */
	const uint8_t *gpu;        /* the source, len bytes */
	uint64_t len;
	uint64_t chunk;            /* bytes per slot, whole fragments */
	uint64_t n_chunks;
	unsigned int n_slots;
	uint64_t issued;           /* chunks whose copy started */
	uint64_t landed;           /* chunks whose copy is done (in order) */
	bool waiting;              /* the next copy waits for its slot */
	struct dp_engine_stage_stats st; /* this send's share */
	struct dp_stage *next;     /* on dp->draining, or leaked (stage.c) */
	struct dp_stage_slot slot[];
};

/* Owner of the frame carrying source bytes at offset. */
static inline struct rte_mbuf_ext_shared_info *dp_stage_shinfo(struct dp_stage *st,
								uint64_t offset)
{
	return &st->slot[(offset / st->chunk) % st->n_slots].shinfo;
}

/* A ring for len bytes at src (GPU memory) from dp's placer, sized for
 * fragments of frag_size; *out is the caller's: dp_stage_finish(). */
int dp_stage_create(const struct dp_engine *dp, const void *src, uint64_t len,
		    uint32_t frag_size, struct dp_stage **out);
/* Start the copies that have a free slot, publish those that landed.
 * Returns how many things moved (0: nothing to do now), or the error of a
 * failed copy. */
int dp_stage_pump(struct dp_stage *st);
/* No frame references the ring any more. */
bool dp_stage_idle(const struct dp_stage *st);
/* Wait until every copy that started landed (or failed): no copy reads
 * the source any more. */
void dp_stage_settle(struct dp_stage *st);
/* The send is over and its copies settled: add its counters to dp's, and
 * give the ring back once no frame reads it, now or later (dp->draining,
 * reaped by dp_stage_reap()). */
void dp_stage_finish(struct dp_engine *dp, struct dp_stage *st);
/* Give back the draining rings that no frame reads any more; how many
 * are still read. */
unsigned int dp_stage_reap(struct dp_engine *dp);
/* Reap the draining rings until none is left or timeout_ns passed. */
void dp_stage_drain_wait(struct dp_engine *dp, uint64_t timeout_ns);
/* Leak the draining rings that frames still read for good (logged, with
 * the process's count): destroy, once the port let go of every frame it
 * could. */
void dp_stage_abandon_draining(struct dp_engine *dp);
/* Add to dp's GPU-send counters (control threads). */
void dp_stage_stats_add(struct dp_engine *dp, const struct dp_engine_stage_stats *add);

/* One request from a control thread; allocated and freed by that thread. */
struct dp_op {
	enum dp_cmd cmd;
	struct dp_session *sess;
	uint64_t xfer_id;
	enum dp_xfer_dir dir;      /* CANCEL: which side */
	void *buf;
	uint64_t len;              /* bytes; PING: timeout in ns */
	enum dj_mem_kind mem;
	int status;                /* valid once done */
	atomic_int done;
	atomic_int released;       /* SEND: no mbuf references buf any more */
	struct dp_stage *stage;    /* SEND of a GPU source: its ring, else NULL */
	/* SEND of a host source: all of it ready; the session publishes in
	 * src.acked what the peer acknowledged (the waiter's progress). */
	struct dp_tx_source src;
	uint64_t rtt_ns;           /* PING */
	struct rte_mbuf_ext_shared_info shinfo;
	/* expected-transfer list of the control side */
	uint64_t cookie;
	struct dp_op *next;
	/* expected list (dp->lock): threads waiting on this op, which frees
	 * it only once none is and it is off the list */
	unsigned int waiters;
	bool unlisted;
};

/* A session: created by a control thread, then served by one lcore. */
struct dp_session {
	struct dp_channel *s;
	uint64_t cookie;
	uint32_t id;
	/* The peer's address on this session's queue pair: with the id, the
	 * key lcores find the session by (ids are numbered by each server on
	 * its own, so two peers may pick the same one). */
	uint32_t peer_ipv4;
	uint16_t peer_port;
	unsigned int lcore_idx;
	atomic_uint refs;            /* see "Session lifetime" above */
	bool ready;                  /* dp->lock: open finished, lookups see it */
	bool closed;                 /* lcore: CLOSE ran, no probe may start */
	uint64_t next_poll_ns;
	uint64_t next_snap_ns;
	struct dp_op *ping;          /* lcore-owned while a probe runs */
	uint64_t ping_sent_ns, pongs_before;
	struct dp_proto_stats snap;  /* lcore-private, refreshed every ms */
	atomic_uint snap_seq;        /* publishes snap into snap_pub */
	struct dp_proto_stats snap_pub;
	struct dp_proto_stats retired; /* dp->lock: counted when unlinked */
	struct dp_session *next;     /* control-side list */
};

/* The key lcores find a session by: its id and its peer's address on the
 * session's queue pair (each server numbers its sessions on its own, so
 * two peers may use one id). */
static inline bool dp_session_is(const struct dp_session *ses, uint32_t id, uint32_t peer_ipv4,
				 uint16_t peer_port)
{
	return ses->id == id && ses->peer_ipv4 == peer_ipv4 && ses->peer_port == peer_port;
}

/* Per-lcore state: everything the packet path touches. */
struct dp_lcore {
	struct dp_engine *dp;
	unsigned int lcore_id;
	uint16_t queue;
	struct rte_ring *cmds;
	struct rte_ring *handoff;    /* frames other lcores received for us */
	unsigned int n_sessions;
	struct dp_session *sessions[DP_MAX_SESSIONS];
	unsigned int n_txq;
	uint64_t now;                /* time of this loop iteration */
	uint64_t tx_stall_since;     /* 0: the tx ring takes frames */
	bool link_gated, link_up;    /* memif: burst only while the link is up */
	uint16_t tx_chunk;           /* frames per rte_eth_tx_burst() call (DP_MEMIF_TX_CHUNK) */
	bool link_watch;             /* queue 0 of a memif client: dp_link_watch() */
	uint64_t down_since;         /* link watch: down since (0: up) */
	uint64_t next_restart;
	unsigned int restarts;
	bool tx_ip_cksum_offload;
	uint64_t commands;           /* taken from the ring, for idle detection */
	uint64_t idle_since;         /* last loop that did work */
	int rx_fd;                   /* the rx interrupt's eventfd in epfd, -1: none */
	bool rx_intr;                /* the queue may have rx interrupts */
	unsigned int sends_inflight; /* SENDs started and not yet ended */
	/* GPU placement: frames whose payload went to the placer this burst */
	void *placer_state;
	bool frame_placed, placer_pending;
	bool placer_open;            /* burst_end() ran since the last flush() */
	unsigned int n_placed;
	struct rte_mbuf *placed[DP_PORT_BURST * 2];
	uint64_t next_link_check;
	struct rte_mbuf *txq[DP_TXQ_MAX];
#ifdef DJ_DP_TRACE
	/* First and last DATA frames in txq (at pos), stamped once
	 * rte_eth_tx_burst() took them (lcore.c). */
	struct dp_trace_pending {
		uint64_t cookie, id, len;
		unsigned int pos;
		enum dp_trace_ev ev;
	} trace_pend[8];
	unsigned int n_trace_pend;
#endif
	struct dp_impair *impair;
	struct dp_hold_queue *hold;
	struct dp_engine_stats stats;  /* lcore-private */
	uint64_t next_publish;
	uint8_t ctrl_buf[DP_CTRL_BURST][DP_WIRE_CTRL_MAX];
	/* What other threads read, on its own line: the packet path never
	 * shares a cache line with a reader. */
	atomic_uint stats_seq __rte_cache_aligned;
	/* DP_NAP_* while the lcore naps or sleeps: a control thread that
	 * queued a command wakes it (dp_lcore_kick()). */
	atomic_int napping;
	/* DP_IDLE_INTERRUPT (idle.c): the epoll set of the rx queue's
	 * interrupt and wake_fd, which other threads write to wake the
	 * lcore; -1 in the other modes. */
	int epfd, wake_fd;
	/* Who runs the loop's work (DP_BATON_*): the lcore, or nobody while
	 * it sleeps on the interrupt, when a waiting caller may take it
	 * (cfg.caller_runs, dp_lcore_assist()). */
	atomic_int baton;
	struct dp_engine_stats stats_pub;
	/* The last odd dp->park_gen seen: off the port until it moves on. */
	atomic_uint park_ack;
} __rte_cache_aligned;

struct dp_engine {
	struct dp_engine_config cfg;
	struct dp_port *port;
	struct dp_netaddr local;
	uint16_t mtu;
	atomic_int stop;
	unsigned int n_lcores;
	struct dp_lcore *lcores[DP_MAX_LCORES];
	/* No rte_flow steering: frames that land on another lcore's queue
	 * are handed to the lcore their UDP destination port names (queue q
	 * listens on local.port + q) through its handoff ring. */
	bool sw_dispatch;
	pthread_mutex_t lock;        /* the control-side lists below */
	struct dp_session *sessions;
	struct dp_op *expected;
	struct dp_engine_stage_stats stage_stats; /* under lock */
	/* under lock: protocol counters of sessions closed (and of those
	 * closing, up to their unlinking) */
	struct dp_proto_stats proto_closed;
	struct dp_op *orphans;       /* SEND ops given up on (-EDEADLK) */
	struct dp_stage *draining;   /* under lock: rings frames still read */
	/* Odd while the link watch (link.c) restarts the port: lcores stay
	 * off it and acknowledge in park_ack. */
	atomic_uint park_gen;
	uint64_t created_ns;         /* dp_engine_create() returned then */
};

/*
 * Single-writer sequence count. The writer (one lcore) makes the count odd,
 * copies, makes it even; a reader retries while it saw an odd count or the
 * count moved during its copy. Why this is cheap for the lcore: two plain
 * stores and a copy of a few cache-hot lines per publication, no atomic
 * read-modify-write, no lock, and it never waits for a reader; only readers
 * (rare, on control threads) ever retry.
 */
static inline void dp_seq_publish(atomic_uint *seq, void *dst, const void *src, size_t len)
{
	unsigned int s = atomic_load_explicit(seq, memory_order_relaxed);

	atomic_store_explicit(seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(dst, src, len);
	atomic_store_explicit(seq, s + 2, memory_order_release);
}

static inline void dp_seq_read(const atomic_uint *seq, void *dst, const void *src, size_t len)
{
	unsigned int before, after;

	do {
		while ((before = atomic_load_explicit(seq, memory_order_acquire)) & 1)
			rte_pause();
		memcpy(dst, src, len);
		atomic_thread_fence(memory_order_acquire);
		after = atomic_load_explicit(seq, memory_order_relaxed);
	} while (before != after);
}

/* Trace one event of a SEND or RECV op (nothing without -Ddp_trace). */
static inline void dp_op_trace(const struct dp_op *op, enum dp_trace_ev ev)
{
	DP_TRACE(ev, op->cookie, op->xfer_id, op->cmd == DP_CMD_SEND ? DP_XFER_TX : DP_XFER_RX,
		 op->len);
	(void)op;
	(void)ev;
}

/* The source a SEND op's session reads: its staging ring's, or its own. */
static inline struct dp_tx_source *dp_op_source(struct dp_op *op)
{
	return op->stage != NULL ? &op->stage->src : &op->src;
}

/* The datapath's send_pinned(): 1 while frames of a send that returned
 * -EDEADLK may still read its source, 0 once none does, -ENOENT. */
int dp_send_pinned(struct dp_engine *dp, uint64_t cookie, uint64_t xfer_id);

/* link.c: on the lcore of queue 0 of a memif client, every loop after the
 * link state was read: restart the port while its server is away. */
void dp_link_watch(struct dp_lcore *lc, uint64_t now);

/* The polling loop of one lcore (rte_eal_remote_launch). */
int dp_lcore_main(void *arg);

/* idle.c: what an idle lcore does (cfg.idle). dp_idle_init() sets up a
 * DP_IDLE_INTERRUPT lcore's epoll set and wake eventfd (0 or -errno; the
 * first thing done to a new dp_lcore, so that dp_idle_fini() may run on
 * any later failure). dp_idle() runs once per loop iteration; work_before
 * is the loop's work count when the iteration began, up whether the port
 * may be used in it (port_usable()). dp_lcore_kick(), on
 * any other thread, after the command or request it published: wakes the
 * lcore if it naps or sleeps. */
int dp_idle_init(struct dp_lcore *lc);
void dp_idle_fini(struct dp_lcore *lc);
void dp_idle(struct dp_lcore *lc, uint64_t work_before, uint64_t now, bool up);
void dp_lcore_kick(struct dp_lcore *lc);
/* lcore.c, cfg.caller_runs: on a waiting caller's thread, while the lcore
 * sleeps on its rx interrupt, run the lcore's loop until *flag is set or
 * budget_ns passed, so that a small transfer and its ACK need no wake-up
 * of the lcore nor of the caller (run to completion). false at once when
 * the lcore runs (or another caller does); else whether *flag is set. */
bool dp_lcore_assist(struct dp_lcore *lc, const atomic_int *flag, uint64_t budget_ns);

/* dp_place_fn of sessions with a placer: ctx is the owning dp_lcore. */
void dp_place(void *ctx, void *transfer_user, void *dest_base, uint64_t dest_offset,
	      const void *src, uint32_t len);

/* Finish an op from the lcore: the last touch of a non-SEND op. */
void dp_op_complete(struct dp_op *op, int status);
/* Finish the op of a transfer event (SEND ops also drop their buffer
 * reference). */
void dp_event_deliver(const struct dp_xfer_event *ev);
/* Set an op's done/released flag and wake the control threads asleep on
 * it (a system call only while one sleeps). */
void dp_flag_raise(atomic_int *flag);

#endif
