/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_PROTO_PROTO_H
#define DJINN_PROTO_PROTO_H

/*
 * Internals of struct dp_channel, shared by session.c (life cycle, input
 * dispatch, timers, events), tx.c (sender) and rx.c (receiver).
 */
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/proto/transfer.h"
#include "dataplane/proto/wire.h"

#define DP_CACHE_LINE 64
/* Completed transfers remembered per direction, so that late duplicates
 * and repeated final ACKs are recognised instead of counted as unknown. */
#define RECENT_CAP 64u
#define PING_QUEUE_CAP 8u
/* Bytes reserved per header in the tx arena: encapsulation + Djinn header,
 * rounded to a cache line. */
#define HDR_SLOT 128u

_Static_assert(DP_WIRE_FULL_HDR_LEN <= HDR_SLOT, "header slot too small");

/* Per-fragment sender state for fragments in [cum, next_new). */
enum frag_flags {
	FRAG_SACKED = 1u << 0,  /* selectively acknowledged */
	FRAG_QUEUED = 1u << 1,  /* in the retransmission ring */
	FRAG_SAMPLED = 1u << 2, /* already gave an RTT sample */
};

struct frag_slot {
	uint64_t sent_ns;
	uint16_t tries;
	uint8_t flags;
};

struct tx_xfer {
	uint64_t id;
	uint32_t frag_count;
	uint32_t cum;        /* fragments < cum acknowledged */
	uint32_t next_new;   /* first never-sent fragment */
	uint32_t credit_end; /* may send indices < credit_end */
	uint32_t sack_high;  /* SACK marks are current below this index */
	uint32_t cwnd;       /* congestion window, fragments beyond cum */
	uint32_t ssthresh;
	uint32_t cwnd_acc;   /* acknowledged fragments towards the next +1 */
	uint32_t recover;    /* no new cut until cum passes this */
	uint32_t rtx_head;
	uint32_t rtx_count;
	uint32_t ready_end;  /* fragments < ready_end have their bytes in place */
	/* Recovery after a timeout (tx.c, tx_rto_resend): fragments below
	 * rto_end (0: none) from rto_next on are resent rto_burst at a time,
	 * the burst doubling with each ACK that moves cum. */
	uint32_t rto_next, rto_end, rto_burst;
	uint64_t len;
	const uint8_t *buf;
	uint64_t wrap;       /* 0, or buf is a ring of wrap bytes (dp_tx_source) */
	struct dp_tx_source *src; /* NULL: the whole source is ready */
	void *user;
	enum dj_mem_kind mem;
	uint64_t rto_deadline; /* UINT64_MAX: nothing in flight */
	uint64_t last_progress_ns; /* start, or new data last acknowledged */
	struct frag_slot *frags; /* window entries, indexed by fragment & mask */
	uint32_t *rtx;           /* ring of fragment indices to resend */
} __attribute__((aligned(DP_CACHE_LINE)));

struct rx_xfer {
	uint64_t id;
	uint32_t frag_count;
	uint32_t cum;       /* fragments < cum all arrived */
	uint32_t high;      /* 1 + highest fragment arrived */
	uint32_t unacked;   /* new fragments since the last ACK */
	uint32_t trigger;   /* newest arrival, echoed for RTT sampling */
	uint32_t hole_mark; /* high when the newest gap appeared */
	bool hole_pending;  /* a gap not NACKed yet */
	bool nack_due;
	uint64_t len;
	uint8_t *dest;
	void *user;
	enum dj_mem_kind mem;
	uint64_t ack_deadline; /* UINT64_MAX: no ACK owed */
	uint64_t last_progress_ns;
	uint64_t last_nack_ns;
	uint64_t *bits; /* ring bitmap of window bits, fragment & mask */
} __attribute__((aligned(DP_CACHE_LINE)));

struct done_rec {
	uint64_t id;
	uint32_t frag_count;
	uint64_t total_len;
	uint64_t answered_ns; /* failed rings: when an ABORT last answered it */
};

/* Fixed-capacity FIFO of done_rec (recent completions, final ACKs owed,
 * recent failures). */
struct done_ring {
	struct done_rec rec[RECENT_CAP];
	uint32_t head;
	uint32_t count;
};

/* Dense set of active transfers over a preallocated pool. */
struct xfer_table {
	void *pool;        /* max_transfers elements of elem bytes */
	size_t elem;
	uint32_t *free;    /* stack of free pool indices */
	uint32_t nfree;
	void **active;     /* dense array of active elements */
	uint64_t *ids;     /* ids[i] belongs to active[i] */
	uint32_t nactive;
	uint32_t last_hit; /* index into active of the last lookup */
};

struct abort_rec {
	uint64_t id;
	bool from_rx;
};

struct dp_channel {
	struct dp_channel_config cfg;
	uint32_t mask; /* window - 1 */
	bool closed;
	bool close_pending;
	uint16_t ip_id;

	struct xfer_table tx;
	struct xfer_table rx;
	uint32_t tx_rr; /* round-robin position over tx.active */
	struct done_ring tx_done;
	struct done_ring rx_done;
	struct done_ring reacks; /* final ACKs to (re)send */
	/* Transfers that failed here: a frame of one gets an ABORT back, so
	 * that a peer that was away when we gave up learns it at once. */
	struct done_ring tx_failed;
	struct done_ring rx_failed;

	struct abort_rec *aborts; /* FIFO, 2 * max_transfers */
	uint32_t abort_head, abort_count, abort_cap;
	uint64_t pings[PING_QUEUE_CAP], pongs[PING_QUEUE_CAP];
	uint32_t nping, npong;

	struct dp_xfer_event *events; /* FIFO */
	uint32_t ev_head, ev_count, ev_cap;

	bool have_rtt;
	uint64_t srtt, rttvar;
	uint64_t rto_base; /* from the estimator, before backoff */
	uint64_t rto;      /* rto_base doubled per timeout in a row */
	uint64_t next_deadline;
	uint64_t last_heard_ns;     /* last packet that passed authentication */
	uint64_t next_keepalive_ns; /* no keep-alive PING before this */

	struct dp_proto_stats st;
	uint8_t hdr_arena[DP_CHANNEL_TX_BURST_MAX][HDR_SLOT]
		__attribute__((aligned(DP_CACHE_LINE)));
};

/* The value a keep-alive PING carries; its PONG echoes it. A probe's
 * value (a time in ns) never takes it. */
#define KEEPALIVE_VALUE UINT64_MAX

/* When a transfer that last made progress at last_progress_ns fails: after
 * dead_timeout of neither progress nor any packet from the peer, or after
 * stall_timeout of no progress at all (transfer.h). */
static inline uint64_t dp_xfer_deadline(const struct dp_channel *s, uint64_t last_progress_ns)
{
	uint64_t quiet = last_progress_ns > s->last_heard_ns ? last_progress_ns : s->last_heard_ns;
	uint64_t dead = quiet + s->cfg.dead_timeout_ns;
	uint64_t stall = last_progress_ns + s->cfg.stall_timeout_ns;

	return dead < stall ? dead : stall;
}

/* session.c */
void dp_channel_arm(struct dp_channel *s, uint64_t when_ns);
void dp_channel_event(struct dp_channel *s, uint64_t id, enum dp_xfer_dir dir,
		   int status, uint64_t bytes, void *user);
void dp_channel_queue_abort(struct dp_channel *s, uint64_t id, bool from_rx);
void *dp_xfer_find(struct xfer_table *t, uint64_t id);
/* A free slot registered as active under id; NULL when none is free. */
void *dp_xfer_alloc(struct xfer_table *t, uint64_t id);
/* Checks common to both directions, then dp_xfer_alloc(): -EMSGSIZE (more
 * than 2^32-1 fragments), -EEXIST, -EBUSY. */
int dp_xfer_begin(struct xfer_table *t, uint64_t id, uint64_t len,
	       uint32_t frag_size, uint32_t *count, void **x);
void dp_xfer_release(struct xfer_table *t, void *x);
void dp_done_push(struct done_ring *r, uint64_t id, uint32_t count, uint64_t total);
struct done_rec *dp_done_find(struct done_ring *r, uint64_t id);
/* A frame of transfer id that is no longer active arrived: where id failed
 * here (its record in @failed), queue an ABORT for the peer, at most one
 * per retransmission timeout. @return whether id failed here. */
bool dp_channel_answer_failed(struct dp_channel *s, struct done_ring *failed, uint64_t id,
			      bool from_rx, uint64_t now_ns);
/* Header fields common to every packet of the session. */
void dp_channel_hdr_init(const struct dp_channel *s, struct dp_wire_hdr *h,
		      enum dp_pkt_type type, uint64_t transfer_id);
/* Encapsulate (when configured), encode h and set its CRC over the body at
 * pkt + headers; returns the header bytes in front of the body. */
uint32_t dp_channel_write_hdr(struct dp_channel *s, uint8_t *pkt,
			   struct dp_wire_hdr *h, const void *body,
			   bool crc_body);
uint32_t dp_channel_hdr_room(const struct dp_channel *s);

/* tx.c */
/* src: NULL, or a progressively filled source (dp_channel_send_source). */
int dp_tx_start(struct dp_channel *s, uint64_t id, const void *buf, uint64_t len,
	     enum dj_mem_kind mem, struct dp_tx_source *src, void *user, uint64_t now_ns);
enum dp_wire_reject dp_tx_on_feedback(struct dp_channel *s,
				   const struct dp_wire_hdr *h,
				   const uint8_t *body, uint64_t now_ns);
/* Report the transfer's event (status 0: success) and free its slot. */
void dp_tx_end(struct dp_channel *s, struct tx_xfer *x, int status);
uint64_t dp_tx_timers(struct dp_channel *s, uint64_t now_ns);

/* rx.c */
int dp_rx_start(struct dp_channel *s, uint64_t id, void *dest, uint64_t len,
	     enum dj_mem_kind mem, void *user, uint64_t now_ns);
enum dp_wire_reject dp_rx_on_data(struct dp_channel *s,
			       const struct dp_wire_hdr *h,
			       const uint8_t *body, uint64_t now_ns);
/* Same for a receive; success also remembers it for late duplicates. */
void dp_rx_end(struct dp_channel *s, struct rx_xfer *x, int status);
uint64_t dp_rx_timers(struct dp_channel *s, uint64_t now_ns);
/* Write owed ACK/NACKs into pkts; returns how many. */
unsigned dp_rx_feedback(struct dp_channel *s, uint64_t now_ns,
		     struct dp_ctrl_pkt *pkts, unsigned n);
/* Final ACK of a completed transfer into pkt. */
void dp_rx_write_final_ack(struct dp_channel *s, const struct done_rec *d,
			struct dp_ctrl_pkt *pkt);

#endif
