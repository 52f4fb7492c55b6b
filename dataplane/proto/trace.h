/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPLANE_PROTO_TRACE_H
#define DJINN_DATAPLANE_PROTO_TRACE_H

/*
 * Per-transfer timestamps of the data plane, for finding where a small
 * transfer's time goes (scripts/dptrace.py merges a sender's and a
 * receiver's files). Compiled only with `meson setup -Ddp_trace=true`
 * (DJ_DP_TRACE): otherwise every DP_TRACE() is nothing at all. With it,
 * tracing runs only when the environment names a file prefix,
 * DJ_DP_TRACE=/path/prefix, and dp_trace_dump() appends every record to
 * prefix.<pid>.tsv.
 *
 * Each thread writes into its own preallocated array (claimed once, on the
 * thread's first record; lcores claim theirs before their loop starts), so
 * a record is a clock read and four stores: no lock, no allocation, no
 * shared cache line. A caller that runs an lcore's loop (caller-runs)
 * records into its own array. Records past an array's end are counted
 * and dropped. The clock is CLOCK_MONOTONIC (djc_time_ns()), the same in
 * every process of a host.
 */
#include <stdint.h>

/* What happened to a transfer (its cookie, id and direction). */
enum dp_trace_ev {
	DP_TR_POST,      /* control thread: SEND or RECV op queued for the lcore */
	DP_TR_TAKE,      /* lcore: took the op from its command ring */
	DP_TR_TX_FIRST,  /* lcore: first DATA frame went through rte_eth_tx_burst */
	DP_TR_TX_LAST,   /* lcore: last DATA frame went through rte_eth_tx_burst */
	DP_TR_RX_FIRST,  /* receiver: first DATA frame of the transfer taken in */
	DP_TR_RX_LAST,   /* receiver: the frame that completed it taken in */
	DP_TR_ACK_OUT,   /* receiver: the final (COMPLETE) ACK written */
	DP_TR_ACK_IN,    /* sender: the ACK that completed the transfer taken in */
	DP_TR_DONE,      /* lcore: the op's done flag raised */
	DP_TR_RELEASED,  /* sender: no frame holds the caller's buffer any more */
	DP_TR_RETURN,    /* control thread: send() or wait() returned */
	DP_TR_ASSIST,    /* caller-runs: the waiter starts running the lcore's loop */
	DP_TR_ASSIST_END, /* ... and stops (at once: the lcore held its loop) */
	DP_TR_N
};

#ifdef DJ_DP_TRACE
#include <stdbool.h>

/* Set by dp_trace_open() when DJ_DP_TRACE names a prefix. */
extern bool dp_trace_on;

/* Read DJ_DP_TRACE; idempotent. 0, or -ENOMEM. */
int dp_trace_open(void);
/* Claim this thread's array now (lcores, before their loop). */
void dp_trace_thread(void);
/* Record one event of transfer (cookie, id) in direction dir (0 TX,
 * 1 RX) of len bytes, at now (0: read the clock). */
void dp_trace_rec(enum dp_trace_ev ev, uint64_t cookie, uint64_t id, unsigned int dir,
		  uint64_t len, uint64_t now);
/* Append every record to prefix.<pid>.tsv and empty the arrays. Call
 * once the threads that record stopped. 0, or -errno of the file. */
int dp_trace_dump(void);

#define DP_TRACE(ev, cookie, id, dir, len) do { \
	if (dp_trace_on) \
		dp_trace_rec((ev), (cookie), (id), (unsigned int)(dir), (len), 0); \
} while (0)
#define DP_TRACE_AT(ev, cookie, id, dir, len, now) do { \
	if (dp_trace_on) \
		dp_trace_rec((ev), (cookie), (id), (unsigned int)(dir), (len), (now)); \
} while (0)
#define DP_TRACE_OPEN() dp_trace_open()
#define DP_TRACE_THREAD() do { if (dp_trace_on) dp_trace_thread(); } while (0)
#define DP_TRACE_DUMP() dp_trace_dump()
#else
#define DP_TRACE(ev, cookie, id, dir, len) ((void)0)
#define DP_TRACE_AT(ev, cookie, id, dir, len, now) ((void)0)
#define DP_TRACE_OPEN() 0
#define DP_TRACE_THREAD() ((void)0)
#define DP_TRACE_DUMP() 0
#endif

#endif
