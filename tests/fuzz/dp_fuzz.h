/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DP_FUZZ_H
#define DJINN_DP_FUZZ_H

/*
 * The data-plane channel under fuzz, shared by its libFuzzer target
 * (fuzz_dp_channel.c) and the seed generator (gen_seeds.c), so that seeds
 * recorded from a real exchange replay exactly against the target.
 *
 * The channel ("B") has three receives posted (ids 1: 1300 bytes = 6
 * fragments of 256 with a short last one, 2: 0 bytes, 3: 768 bytes = 3 whole
 * fragments) and one send (id 1, 700 bytes), so DATA, ACK and NACK all find
 * a transfer to act on. Its peer ("A", only in the generator) mirrors it.
 *
 * Input of the target: one mode byte (FZ_DP_*), then records
 *   dt (u8, units of FZ_DP_TICK_NS) | len (u16, big endian) | len bytes
 * Each record advances the virtual clock by dt, gives the frame (when len
 * is not 0) to the channel, then runs its timers and drains its output and
 * events, as a driver's loop does. Each frame is copied into a buffer of
 * exactly its size so that AddressSanitizer sees any read past its end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/proto/transfer.h"

/* Mode bits (the input's first byte). */
#define FZ_DP_ENCAP 0x01u   /* frames are Ethernet/IPv4/UDP: parse the encapsulation */
#define FZ_DP_RX_CRC 0x02u  /* the channel verifies CRC32C */
#define FZ_DP_FIX_CRC 0x04u /* recompute the CRC of each frame first (reach past it) */
#define FZ_DP_GPU 0x08u     /* receives go through the place callback (GPU path) */
#define FZ_DP_SPLIT 0x10u   /* body in a separate buffer (multi-segment packet) */
#define FZ_DP_CC 0x20u      /* congestion control on */

#define FZ_DP_TICK_NS 16000ull
#define FZ_DP_RX_IDS 3
#define FZ_DP_MAX_FRAME 2048u

extern const uint64_t fz_dp_rx_len[FZ_DP_RX_IDS]; /* receive id i + 1 */
extern const uint64_t fz_dp_tx_len;                /* send id 1 */

/* A frame the channel emitted (DATA, assembled; or a control packet). */
typedef void (*fz_dp_out_fn)(void *ctx, const uint8_t *frame, size_t len);

struct fz_dp {
	struct dp_channel *ch;
	unsigned mode;
	uint64_t now;
	uint8_t *rx_buf[FZ_DP_RX_IDS];
	uint8_t *tx_buf;
	unsigned events_seen;       /* bit per (dir, id): each reported once */
	uint8_t ctrl[8][DP_WIRE_CTRL_MAX];
	uint8_t frame[FZ_DP_MAX_FRAME];
};

/* Channel config of side B (peer_side false) or A (true) for mode. */
void fz_dp_config(unsigned mode, bool peer_side, struct dp_channel_config *cfg);
/* Create B with its transfers posted at time 0. 0 or -errno. */
int fz_dp_open(struct fz_dp *f, unsigned mode);
void fz_dp_close(struct fz_dp *f);
/* One record: advance dt ticks, input frame (len 0: none), run the loop;
 * out (may be NULL) receives what B sends. Aborts on a broken invariant. */
void fz_dp_record(struct fz_dp *f, unsigned dt, const uint8_t *frame, size_t len,
		  fz_dp_out_fn out, void *ctx);
/* Give one received frame to channel ch as the engine does (encapsulation
 * parsed first when encap); the frame may be modified (FZ_DP_FIX_CRC). */
int fz_dp_deliver(struct dp_channel *ch, unsigned mode, uint8_t *frame, size_t len,
		  uint64_t now);
/* Drain ch's output at now into out: control packets, then DATA fragments. */
void fz_dp_drain(struct dp_channel *ch, uint64_t now, uint8_t ctrl[][DP_WIRE_CTRL_MAX],
		 uint8_t *frame, fz_dp_out_fn out, void *ctx);

#endif
