/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_IMPAIR_H
#define DJINN_IMPAIR_H

/**
 * @file
 * Deterministic fault injection for any packet path: a seeded generator
 * decides per packet whether to drop, duplicate, corrupt, delay or reorder
 * it, each with its own probability, and a hold queue keeps delayed packets
 * until their release time. The caller owns the packets (mbufs, simulator
 * buffers) and applies the verdict itself, so the same layer serves the unit
 * test simulator, in-line impairment in the DPDK engine and djinn-impair.
 *
 * One instance per lcore (no locks); the same seed and the same sequence of
 * calls give the same verdicts.
 *
 * Applying a verdict, in this order:
 *   DROP     free the packet, nothing else;
 *   CORRUPT  dp_impair_corrupt() flips bits of one byte;
 *   DUP      make one copy (after the corruption);
 *   HOLD     push the packet (and its copy) into a dp_hold_queue with
 *            release_ns; otherwise forward at once.
 * A reorder is a short HOLD (reorder_ns) that lets later packets overtake;
 * a delay is a HOLD of delay_ns plus jitter.
 */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Probabilities are in [0, 1], independent of each other (drop wins). */
struct dp_impair_config {
	uint64_t seed;
	double drop;
	double duplicate;
	double corrupt;
	double reorder;
	double delay;
	uint64_t delay_ns;        /**< hold time of a delayed packet */
	uint64_t delay_jitter_ns; /**< plus uniform [0, jitter) */
	uint64_t reorder_ns;      /**< hold time of a reordered packet */
};

/** Verdict bits. */
enum dp_impair_action {
	DP_IMPAIR_PASS = 0,
	DP_IMPAIR_DROP = 1u << 0,
	DP_IMPAIR_DUP = 1u << 1,
	DP_IMPAIR_CORRUPT = 1u << 2,
	DP_IMPAIR_HOLD = 1u << 3,
};

struct dp_impair_verdict {
	unsigned actions;     /**< DJ_IMPAIR_* bits */
	uint64_t release_ns;  /**< HOLD: forward at this time */
	uint32_t corrupt_off; /**< CORRUPT: byte to damage (< pkt_len) */
	uint8_t corrupt_xor;  /**< CORRUPT: non-zero bits flipped there */
};

struct dp_impair_stats {
	uint64_t packets;
	uint64_t dropped;
	uint64_t duplicated;
	uint64_t corrupted;
	uint64_t reordered;
	uint64_t delayed;
};

struct dp_impair;

/** -EINVAL for a probability outside [0, 1] or NaN; -ENOMEM. *out is
 *  released with dp_impair_destroy(). */
int dp_impair_create(const struct dp_impair_config *cfg,
		     struct dp_impair **out);
void dp_impair_destroy(struct dp_impair *im);

/**
 * Parse "drop=0.01,dup=0.001,corrupt=0,reorder=0.05,delay=0,delay_us=100,
 * jitter_us=0,reorder_us=20,seed=1" (any subset, any order) into cfg, over
 * whatever cfg already holds. -EINVAL on an unknown key or bad value.
 */
int dp_impair_config_parse(const char *text, struct dp_impair_config *cfg);

/** Decide the fate of one packet of pkt_len bytes at now_ns. */
void dp_impair_decide(struct dp_impair *im, uint64_t now_ns, uint32_t pkt_len,
		      struct dp_impair_verdict *v);

/** Apply a CORRUPT verdict to the packet bytes (no-op without the bit or
 *  when corrupt_off >= len). */
void dp_impair_corrupt(const struct dp_impair_verdict *v, void *pkt,
		       uint32_t len);

void dp_impair_get_stats(const struct dp_impair *im, struct dp_impair_stats *st);

/**
 * Bounded queue of held packets (opaque pointers, never dereferenced),
 * released in order of release time, ties in order of arrival.
 */
struct dp_hold_queue;

/** Create a queue of at most capacity packets; -EINVAL, -ENOMEM. */
int dp_hold_queue_create(uint32_t capacity, struct dp_hold_queue **out);
/** Free the queue; packets still in it are the caller's to drain first
 *  (dp_hold_queue_pop_due(q, UINT64_MAX, ...)). */
void dp_hold_queue_destroy(struct dp_hold_queue *q);
/** -ENOBUFS when full: the caller forwards or drops the packet itself. */
int dp_hold_queue_push(struct dp_hold_queue *q, void *pkt, uint64_t release_ns);
/** Take up to n packets due at now_ns into out; returns how many. */
unsigned dp_hold_queue_pop_due(struct dp_hold_queue *q, uint64_t now_ns,
			       void **out, unsigned n);
/** Release time of the next packet, UINT64_MAX when empty. */
uint64_t dp_hold_queue_next(const struct dp_hold_queue *q);
uint32_t dp_hold_queue_count(const struct dp_hold_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_IMPAIR_H */
