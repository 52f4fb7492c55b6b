/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TRANSFER_H
#define DJINN_TRANSFER_H

/**
 * @file
 * Reliable tensor transfer engine: one struct dp_channel per peer carries any
 * number of concurrent transfers in both directions over the Djinn wire format
 * (dataplane/proto/wire.h). Plain C without threads, I/O or clocks of its own: the
 * caller (DPDK engine, TCP fallback, simulator) moves the packets and passes
 * the time in, so behaviour is deterministic and testable.
 *
 * The loop a driver runs:
 *
 *   dp_channel_input()      for every received packet of this session
 *   dp_channel_poll()       timers: retransmission timeouts, idle receivers
 *   dp_channel_tx_burst()   DATA fragment descriptors to transmit (zero copy)
 *   dp_channel_ctrl_burst() ACK/NACK/PONG/CLOSE/ABORT into caller buffers
 *   dp_channel_events()     completions and failures, each reported once
 *
 * A session is single-threaded: one lcore owns it. Nothing on the per-packet
 * path allocates, locks or makes a system call; all transfer state comes from
 * pools sized at dp_channel_create() (max_transfers per direction, a window
 * of fragments each), so memory is bounded per session and independent of
 * transfer sizes. A slot returns to its pool when its transfer completes,
 * fails or the session closes.
 *
 * Transfer ids are agreed on the control plane, like the destination buffer
 * and the length: the receiver posts dp_channel_recv() with the same id and
 * length the sender passes to dp_channel_send(). The two directions have
 * separate id spaces. Never reuse an id within a session (use a counter): a
 * late duplicate of an old transfer with the same id and length would pass
 * validation against the new one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "djinn/tensor.h"
#include "dataplane/proto/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dp_channel;

/**
 * Placement callback for receive destinations the CPU cannot write (GPU
 * memory): copy len bytes from src (inside the received packet) to
 * dest_base + dest_offset. Called from dp_channel_input() after the fragment
 * is fully validated, at most once per fragment. When it returns the session
 * no longer references src; if the callee only queued the copy (to batch it
 * for a gather kernel) it must keep the packet buffer until the copy is done,
 * and must finish pending copies before it acts on the transfer's completion
 * event.
 */
typedef void (*dp_place_fn)(void *ctx, void *transfer_user, void *dest_base,
			    uint64_t dest_offset, const void *src, uint32_t len);

/** Session parameters; dp_channel_config_init() fills the defaults. */
struct dp_channel_config {
	uint32_t session_id;   /**< agreed on the control plane */
	uint64_t cookie;       /**< random secret agreed on the control plane */
	/** Payload bytes per DATA fragment, the same on both peers; usually
	 *  dp_wire_frag_size(negotiated MTU). Default 1416 (MTU 1500). At
	 *  most 65451 with encap (one IPv4 datagram), 16 MiB without. */
	uint32_t frag_size;
	/** Prefix every packet with Ethernet/IPv4/UDP from local to peer
	 *  (DPDK engine). false: bare Djinn header (TCP fallback, simulator). */
	bool encap;
	struct dp_netaddr local;
	struct dp_netaddr peer;
	/** Concurrent transfers per direction, 1 to 65536 (default 64). */
	uint32_t max_transfers;
	/** Window in fragments, a power of two from 64 to 2^20: the credit
	 *  the receiver advertises and the most a sender keeps in flight
	 *  (default 4096). Memory per transfer slot: 24 B per window fragment
	 *  on the sending side, window / 8 B on the receiving side. */
	uint32_t window;
	/** Fragments a sender may send before the first ACK (default 64). */
	uint32_t initial_credit;
	/** ACK after this many new fragments of a transfer (default 32) ... */
	uint32_t ack_every;
	/** ... or this long after the first unacknowledged one (default 20 us). */
	uint64_t ack_delay_ns;
	/** Fragments received above a gap before it is NACKed (default 3). */
	uint32_t nack_threshold;
	uint64_t rto_init_ns; /**< default 1 ms */
	uint64_t rto_min_ns;  /**< default 100 us */
	uint64_t rto_max_ns;  /**< default 200 ms */
	/** A transfer (either side) fails with -ETIMEDOUT once it made no
	 *  progress (new data acknowledged, or a new fragment placed) for
	 *  this long AND nothing at all came from the peer for this long
	 *  (default 10 s): the peer is taken for dead. A peer that is merely
	 *  slow, paused or descheduled for less never fails a transfer. */
	uint64_t dead_timeout_ns;
	/** A transfer fails with -ETIMEDOUT once it made no progress for this
	 *  long however alive the peer is (default 60 s): a receive nobody
	 *  sends, a send nobody receives, an ABORT that was lost. */
	uint64_t stall_timeout_ns;
	/** While a transfer is active and nothing came from the peer for this
	 *  long, a keep-alive PING goes out, at most one per interval
	 *  (default 250 ms); its PONG is the peer's sign of life. */
	uint64_t keepalive_ns;
	/** Sender computes the CRC32C (header+payload for host memory, header
	 *  only for GPU memory). Default true. */
	bool tx_crc;
	/** Receiver verifies the CRC32C and rejects packets without one.
	 *  false when the NIC has verified the checksums. Default true. */
	bool rx_crc;
	/** Needed for DJ_MEM_GPU receive destinations; NULL otherwise. */
	dp_place_fn place;
	void *place_ctx;
	/** Congestion control (loss-based AIMD, per transfer): new fragments
	 *  are limited to a congestion window that starts at initial_credit,
	 *  doubles per RTT up to the window (slow start), then grows by one
	 *  fragment per RTT; a NACK halves it (once per window of data), a
	 *  retransmission timeout drops it to 4. Default false: credit only,
	 *  for dedicated links. */
	bool congestion_control;
	/** Host receives of at least this many bytes are placed with
	 *  non-temporal stores, which bypass the cache: a tensor larger than
	 *  the cache would not be read from it anyway, and the copy avoids
	 *  the read-for-ownership traffic. Default 8 MiB; UINT64_MAX: never. */
	uint64_t stream_copy_min;
};

/** Fill cfg with the defaults above (session id 0, cookie 0). */
void dp_channel_config_init(struct dp_channel_config *cfg);

/**
 * Create a session; all its memory is allocated here. *out is owned by the
 * caller and released with dp_channel_destroy(). -EINVAL for a bad config
 * (window not a power of two, frag_size 0 ...), -ENOMEM.
 */
int dp_channel_create(const struct dp_channel_config *cfg,
		      struct dp_channel **out);

/** Free the session and every transfer state without reporting events.
 *  Buffers of unfinished transfers are no longer referenced afterwards. */
void dp_channel_destroy(struct dp_channel *s);

/**
 * Start sending len bytes at buf (host or GPU memory; 0 to many GiB) as
 * transfer id. buf is borrowed: it must stay valid and unchanged until the
 * transfer's event is reported and the engine has released every packet
 * that references it. user is returned in descriptors and the event.
 * -EEXIST id already sending, -EBUSY no free transfer slot, -EMSGSIZE more
 * than 2^32-1 fragments, -EINVAL bad arguments, -ECONNRESET session closed.
 */
int dp_channel_send(struct dp_channel *s, uint64_t transfer_id,
		    const void *buf, uint64_t len, enum dj_mem_kind mem,
		    void *user, uint64_t now_ns);

/**
 * A source that becomes readable while it is being sent: a GPU tensor
 * copied out chunk by chunk into a ring of host buffers by another thread
 * (the producer) while the session's thread transmits what has landed.
 * Shared by both threads, so ready and acked are read and written only with
 * __atomic builtins (acquire loads, release stores); they sit on separate
 * cache lines because each has a different writer.
 */
struct dp_tx_source {
	/** Bytes of the source in place, from offset 0 (producer: release
	 *  store, never lowered). The session hands out no fragment, new or
	 *  retransmitted, that ends above it (or above the length when it is
	 *  the last one); a sender with nothing ready simply waits. */
	uint64_t ready __attribute__((aligned(64)));
	/** Bytes cumulatively acknowledged, from offset 0 (session: release
	 *  store as its cumulative ACK advances). Nothing below it is ever
	 *  described again, so the producer may reuse the memory behind it
	 *  once the frames already built from it are released. */
	uint64_t acked __attribute__((aligned(64)));
	/** 0: buf holds the whole source. Otherwise buf is a ring of wrap
	 *  bytes, a multiple of frag_size (so no fragment straddles its end):
	 *  the payload at offset o of the source lies at buf + o % wrap. Set
	 *  before dp_channel_send_source(), constant afterwards. */
	uint64_t wrap;
};

/**
 * dp_channel_send() of a source that fills progressively (struct
 * dp_tx_source). src is borrowed like buf; the caller sets src->ready and
 * src->wrap (src->acked is reset here) and raises ready as bytes land.
 * Timeouts count only while fragments are in flight: waiting for ready
 * bytes is not a loss. Errors as dp_channel_send(); -EINVAL also for a
 * wrap that is not a multiple of the fragment size.
 */
int dp_channel_send_source(struct dp_channel *s, uint64_t transfer_id,
			   const void *buf, uint64_t len, enum dj_mem_kind mem,
			   struct dp_tx_source *src, void *user,
			   uint64_t now_ns);

/** Payload bytes per DATA fragment of this session (its frag_size). */
uint32_t dp_channel_frag_size(const struct dp_channel *s);

/**
 * Post a receive of exactly len bytes into dest (host: memcpy; GPU: the
 * config's place callback) as transfer id. dest is borrowed until the event.
 * Errors as dp_channel_send(); -ENOTSUP for GPU memory without a callback.
 */
int dp_channel_recv(struct dp_channel *s, uint64_t transfer_id, void *dest,
		    uint64_t len, enum dj_mem_kind mem, void *user,
		    uint64_t now_ns);

/** Which side of a transfer. */
enum dp_xfer_dir {
	DP_XFER_TX = 0,
	DP_XFER_RX = 1,
};

/**
 * Abandon one transfer: its event reports -ECANCELED and the peer is sent
 * an ABORT (its side fails with -DJ_EPEER). -ENOENT if not active.
 */
int dp_channel_cancel(struct dp_channel *s, enum dp_xfer_dir dir,
		      uint64_t transfer_id);

/**
 * End the session: every active transfer fails with -ECONNRESET, a CLOSE is
 * queued for the peer (sent by dp_channel_ctrl_burst()), later sends and
 * receives are refused. A CLOSE from the peer has the same local effect.
 */
void dp_channel_close(struct dp_channel *s);

/** A received packet, from the Djinn header on (encapsulation stripped). */
struct dp_rx_pkt {
	const void *hdr;        /**< Djinn header; hdr_avail bytes readable */
	uint32_t hdr_avail;
	/** Body, when it sits in a separate buffer (payload_avail bytes);
	 *  NULL: the body follows the header inside hdr/hdr_avail. */
	const void *payload;
	uint32_t payload_avail;
};

/**
 * Process one packet of this session. Every check (lengths, magic,
 * version, session, cookie, CRC, transfer, offsets, indices, window) happens
 * before a single byte is written. When it returns the session holds no
 * reference to the packet (see dp_place_fn for queued GPU copies).
 * Returns 0 when the packet was used, -EALREADY for a duplicate (ignored),
 * -EBADMSG when rejected. Every non-zero result is counted by reason in
 * dp_channel_stats(); *reason (may be NULL) receives it.
 */
int dp_channel_input(struct dp_channel *s, const struct dp_rx_pkt *pkt,
		     uint64_t now_ns, enum dp_wire_reject *reason);

/**
 * Run the timers due at now_ns (retransmission timeouts, receiver idle
 * timeouts). Returns the next time anything is due (UINT64_MAX: nothing);
 * a driver may sleep or, with a virtual clock, jump until then.
 */
uint64_t dp_channel_poll(struct dp_channel *s, uint64_t now_ns);

/**
 * dp_channel_poll() with the session's deadline computed afresh: packets,
 * sends and receives arm timers (a delayed ACK, a retransmission) without
 * moving the deadline dp_channel_poll() keeps, which is why a driver that
 * polls calls it at least every few microseconds. A driver about to sleep
 * until the next deadline calls this instead.
 */
uint64_t dp_channel_deadline(struct dp_channel *s, uint64_t now_ns);

/** One DATA fragment ready to transmit, without a copy of its payload. */
struct dp_frag_desc {
	/** hdr_len bytes of headers (encapsulation when configured, then the
	 *  Djinn header with its CRC), session-owned, valid until the next
	 *  dp_channel_tx_burst() on this session: copy them into the packet. */
	const uint8_t *hdr;
	uint32_t hdr_len;
	uint64_t transfer_id;
	/** Payload: payload_len bytes at buf + offset of the transfer's buffer
	 *  (host or GPU address per mem); attach, do not copy. NULL if len 0. */
	const void *payload;
	uint32_t payload_len;
	uint32_t frag_index;
	uint64_t offset;
	enum dj_mem_kind mem;
	bool retransmit;
	void *user;             /**< as given to dp_channel_send() */
};

/** Most descriptors one dp_channel_tx_burst() call returns. */
#define DP_CHANNEL_TX_BURST_MAX 64u

/**
 * Fill up to n (capped at DP_CHANNEL_TX_BURST_MAX) descriptors: pending
 * retransmissions first, then new fragments within each transfer's credit,
 * round-robin over transfers. The fragments count as sent at now_ns.
 * Returns how many were filled.
 */
unsigned dp_channel_tx_burst(struct dp_channel *s, uint64_t now_ns,
			     struct dp_frag_desc *out, unsigned n);

/** A caller-owned buffer for one control packet. */
struct dp_ctrl_pkt {
	uint8_t *buf;  /**< at least DP_WIRE_CTRL_MAX bytes */
	uint32_t cap;
	uint32_t len;  /**< set by dp_channel_ctrl_burst() */
};

/**
 * Write due control packets (ACK, NACK, PONG, PING, CLOSE, ABORT), with
 * encapsulation when configured, into pkts[0..n). Returns how many were
 * written; packets that did not fit wait for the next call.
 */
unsigned dp_channel_ctrl_burst(struct dp_channel *s, uint64_t now_ns,
			       struct dp_ctrl_pkt *pkts, unsigned n);

/** Queue a PING carrying value; the PONG's arrival counts in stats. */
void dp_channel_ping(struct dp_channel *s, uint64_t value);

/** The end of a transfer, reported exactly once. */
struct dp_xfer_event {
	uint64_t transfer_id;
	enum dp_xfer_dir dir;
	/** 0: every byte arrived (RX) or was acknowledged (TX).
	 *  -ETIMEDOUT (dead peer or stalled transfer: dead_timeout_ns,
	 *  stall_timeout_ns), -ECONNRESET (session closed), -ECANCELED
	 *  (cancelled here), -DJ_EPEER (aborted by the peer). */
	int status;
	uint64_t bytes;          /**< transfer length */
	void *user;
};

/** Take up to n pending events, oldest first; returns how many. */
unsigned dp_channel_events(struct dp_channel *s, struct dp_xfer_event *ev,
			   unsigned n);

/** Counters of one session, readable at any time. */
struct dp_proto_stats {
	uint64_t rx_pkts;         /**< packets given to dp_channel_input() */
	uint64_t rx_data;         /**< DATA fragments placed */
	uint64_t rx_data_bytes;   /**< payload bytes placed */
	uint64_t rx_ctrl;         /**< control packets accepted */
	uint64_t rx_reject[DP_REJ_COUNT]; /**< by enum dp_wire_reject */
	uint64_t tx_data;         /**< DATA descriptors handed out */
	uint64_t tx_data_bytes;
	uint64_t tx_retrans;      /**< retransmitted fragments (all causes) */
	uint64_t tx_retrans_nack; /**< of which asked for by a NACK */
	uint64_t rto_expired;     /**< retransmission timer expirations */
	uint64_t rto_spurious;    /**< of which found spurious: the first copies came (F-RTO) */
	uint64_t tx_acks;
	uint64_t tx_nacks;
	uint64_t rx_acks;
	uint64_t rx_nacks;
	uint64_t pongs;           /**< PONGs received (answers to dp_channel_ping) */
	uint64_t keepalives;      /**< keep-alive PINGs sent */
	uint64_t keepalive_pongs; /**< their answers */
	uint64_t tx_completed;
	uint64_t tx_failed;
	uint64_t rx_completed;
	uint64_t rx_failed;
	uint64_t tx_timeouts;     /**< transfers failed with -ETIMEDOUT, TX */
	uint64_t rx_timeouts;     /**< same, RX */
	uint64_t rtt_samples;
	uint64_t srtt_ns;         /**< smoothed RTT (0: no sample yet) */
	uint64_t rttvar_ns;
	uint64_t rto_ns;          /**< current retransmission timeout */
	uint64_t cwnd_reductions; /**< congestion window cuts (NACK or RTO) */
	/** Polls that came more than keepalive_ns after the session's deadline
	 *  (this side was stopped or starved): the time was not counted as the
	 *  peer's silence. */
	uint64_t stalls_forgiven;
	/** ABORTs sent in answer to frames of transfers that failed here. */
	uint64_t aborts_answered;
};

/** Copy the session's counters into *out. */
void dp_channel_stats(const struct dp_channel *s, struct dp_proto_stats *out);

/** Sum of every rx_reject[] entry except DP_REJ_DUPLICATE. */
uint64_t dp_proto_stats_rejected(const struct dp_proto_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_TRANSFER_H */
