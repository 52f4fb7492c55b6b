/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef BENCH_GPU_H
#define BENCH_GPU_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gpu/gpu.h"

#define MAX_SIZES 8
#define MAX_RUNS 8
/* Receive queues of --verify-queues: a receive and a sender thread each,
 * each receive thread on a state of one placer (16 at most), each queue a
 * net_ring pair of two ports: with the one-thread check's pair, the 32
 * ports of DPDK's default RTE_MAX_ETHPORTS. */
#define MAX_QUEUES 15

struct bench_opts {
	const char *gpu;          /* --gpu spec, NULL: first */
	uint64_t verify[MAX_SIZES]; /* transfer sizes for the net_ring check */
	int n_verify;
	uint64_t queues[MAX_SIZES]; /* --verify-queues counts, each a row of its own */
	int n_queues;             /* 0: none */
	int prebuilt;             /* --verify-prebuilt: queue rows again, packets built first */
	uint64_t bench_bytes;     /* 0: no bandwidth bench */
	uint32_t payload;         /* payload bytes per packet / fragment */
	uint16_t burst;           /* packets per rx burst (verify) */
	uint16_t gather_burst;    /* fragments per gather burst, 0: the placer's default */
	int modes;                /* bit per enum djg_gather_mode */
	int movers;               /* verify: bit 0 gather (the rx sink), bit 1 copy chunks */
	uint64_t chunk_size;      /* copy mover chunk bytes */
	int n_chunks;
	uint16_t blocks;          /* persistent kernel blocks, 0: default */
	int reps;
	unsigned int seed;
	const char *json;         /* JSON output file, NULL: stdout only */
};

/* One line of the final table. */
struct bench_result {
	char what[64];            /* e.g. "verify 1 GiB staged/persistent" */
	uint64_t bytes;
	double seconds;           /* best of the repetitions */
	double worst_s;           /* worst of them (0: one run, or not kept) */
	char layout[16];          /* bandwidth rows: the fragments' layout */
	int probe;                /* 1: the read-only probe of that layout */
	double gbytes_s;          /* bytes / seconds / 1e9 */
	double ratio;             /* to cudaMemcpy H2D, 0 when n/a */
	int ok;                   /* 1 byte-exact / measured, 0 failed */
	uint16_t queues;          /* receive queues of a --verify-queues row, else 0 */
	/* Per queue, its share over the time from the start to its receive
	 * thread's sync() done, and to its sender's last packet sent. */
	double lcore_gbytes_s[MAX_QUEUES];
	double sender_gbytes_s[MAX_QUEUES];
	/* Of all sends, those the ring took only part of; of all polls, those
	 * that found the ring empty: which side waited. */
	double ring_full, polls_empty;
};

struct bench_report {
	char device[160];
	struct bench_result r[64];
	int n;
};

struct bench_result *report_add(struct bench_report *rep, const char *what);

/* Byte-exact transfers through two net_ring ports and the rx sink, then
 * for each --verify-queues count the largest size spread over that many
 * net_ring pairs, each with a sender and a receive thread of its own.
 * Returns 0 when every transfer matched. */
int run_verify(const struct bench_opts *o, int16_t dev_id, struct bench_report *rep);

/* cudaMemcpy pinned H2D vs the staged gather on the same bytes. */
int run_bandwidth(const struct bench_opts *o, int16_t dev_id, struct bench_report *rep);

/* Read-only probe (read_kernel.cu): @blocks blocks read the words holding
 * each fragment of copies[0..n) from mapped host memory, @reps timed runs
 * after a warm-up. 0, or -1 on a CUDA error. */
int bench_read_probe(const struct djg_copy *copies, size_t n, unsigned int blocks, int reps,
		     double *best_s, double *worst_s);

/* Fragments per gather burst: --gather-burst, else the placer's default
 * for the payload (djg_dp_placer_gather_burst), at least one rx burst. */
uint16_t bench_gather_burst(const struct bench_opts *o);

/* The CUDA ordinal of gpudev device @dev_id, or -1. */
int bench_cuda_ordinal(int16_t dev_id);

/* Deterministic test bytes: byte i of a stream seeded with @seed. */
void fill_pattern(uint8_t *buf, size_t len, unsigned int seed);

#endif
