/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_PACKER_H
#define DJINN_GPU_PACKER_H

/*
 * The chunk packer: the copy-engine receive path. A receive lcore copies
 * each arriving fragment (memcpy) into a large pinned host chunk, where the
 * payload must be copied anyway when it is not zero-copy; each full chunk
 * then goes to the destination in as few copy-engine copies as there are
 * runs of contiguous destination bytes in it (one for an in-order
 * transfer). Chunks are used round-robin: while one fills, the others are
 * in flight. The packer never allocates after create and takes no lock:
 * one packer per lcore and device.
 *
 * Fragments are appended to the chunk in arrival order, not placed by
 * their destination offset: out-of-order fragments, fragments of several
 * transfers and a transfer split over lcores (each lcore packing what it
 * receives) all stay byte-exact, at the price of more runs per chunk.
 *
 * The copies are issued through an operation table, so that the CUDA
 * stream (dp_placer.c) and a host-memory stand-in (tests) drive the same
 * logic. Each function returns 0 or a negative errno unless it says
 * otherwise.
 */
#include <stddef.h>
#include <stdint.h>

/** How the packer moves a chunk: asynchronous copies and a fence per chunk. */
struct djg_packer_ops {
	/** Queue a copy of @p len bytes from @p src (inside the chunk) to
	 *  @p dst. The chunk is not written again before its fence is done. */
	int (*copy)(void *ctx, void *dst, const void *src, size_t len);
	/** Mark the end of chunk @p idx's copies. */
	int (*fence)(void *ctx, unsigned int idx);
	/** 1 once every copy before chunk @p idx's last fence is done, 0 not
	 *  yet, < 0 when one failed. */
	int (*done)(void *ctx, unsigned int idx);
};

struct djg_packer_conf {
	uint8_t *mem;            /**< n_chunks * chunk_size bytes (pinned); borrowed */
	size_t chunk_size;       /**< at least 64 KiB */
	unsigned int n_chunks;   /**< 2..DJG_PACKER_MAX_CHUNKS */
	uint32_t max_runs;       /**< runs per chunk before it goes early; 0: 1024 */
	uint64_t timeout_ns;     /**< longest wait for a chunk; 0: 10 s */
	const struct djg_packer_ops *ops;
	void *ctx;               /**< for ops */
};

#define DJG_PACKER_MAX_CHUNKS 16

struct djg_packer_stats {
	uint64_t fragments;  /**< fragments packed */
	uint64_t bytes;      /**< bytes packed */
	uint64_t chunks;     /**< chunks handed to the copy engine */
	uint64_t copies;     /**< copy-engine copies (runs) issued */
	uint64_t partial;    /**< chunks a drain sent before they were full */
	uint64_t waits;      /**< times the next chunk was still in flight */
	uint64_t failures;   /**< copies or fences that failed */
};

struct djg_packer;

/**
 * Create a packer over conf->mem.
 * @return 0, -EINVAL (bad conf), -ENOMEM.
 */
int djg_packer_create(const struct djg_packer_conf *conf, struct djg_packer **out);

/**
 * Copy @p len bytes at @p src into the current chunk, bound for @p dst.
 * When the chunk is full it is sent and the next one waited for.
 * @return 0; -E2BIG (len above chunk_size: the caller copies it itself);
 *   -ETIMEDOUT (no chunk came free); -EIO (a copy failed: the fragment is
 *   packed all the same, djg_packer_drain() reports it).
 */
int djg_packer_add(struct djg_packer *p, void *dst, const void *src, uint32_t len);

/**
 * Send the current chunk, however full, and wait until every copy is done:
 * the bytes of every add() so far are in their destinations.
 * @return 0; -ETIMEDOUT; -EIO when a copy failed since the last drain.
 */
int djg_packer_drain(struct djg_packer *p);

/** Chunks in flight now (sent, not yet known done); polls the fences. */
unsigned int djg_packer_in_flight(struct djg_packer *p);

void djg_packer_stats_get(const struct djg_packer *p, struct djg_packer_stats *st);

/** Drain (errors logged), then free the packer; conf->mem stays the caller's. */
void djg_packer_destroy(struct djg_packer *p);

/*
 * The packer of the copy-engine receive path (gpu/rx_mover.c): chunks of
 * pinned host memory (DPDK's heap on @socket, registered with GPU
 * @reg_dev, so portable and mapped), copies on a stream of CUDA device
 * @ordinal, an event per chunk as its fence.
 * @return 0, -ENOMEM, -EIO (a CUDA call failed), -DJ_ENOGPU (no CUDA build).
 */
struct djg_cuda_packer;

int djg_cuda_packer_create(int16_t reg_dev, int ordinal, size_t chunk_size,
			   unsigned int n_chunks, int socket, struct djg_cuda_packer **out);
struct djg_packer *djg_cuda_packer_get(struct djg_cuda_packer *cp);
/** Drain, then free the chunks, the stream and the events. */
void djg_cuda_packer_destroy(struct djg_cuda_packer *cp);

#endif
