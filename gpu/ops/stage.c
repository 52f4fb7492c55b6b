/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The staged move between two devices as one loop over four steps (out of
 * the source into a slot, from the slot into the destination, wait for a
 * slot, finish), so that CUDA's streams and events (move.c) and the
 * runtime's simulated devices (plain memcpy) run the same chunking, slot
 * reuse and error handling. Built with and without CUDA.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "gpu/ops/gpu_ops.h"

const char *djg_move_path_name(enum djg_move_path path)
{
	switch (path) {
	case DJG_MOVE_D2D: return "d2d";
	case DJG_MOVE_PEER: return "peer";
	case DJG_MOVE_STAGED: return "staged";
	}
	return "?";
}

int djg_stage_run(const struct djg_stage_ops *ops, void *ctx, const struct djg_stage_ring *ring,
		  void *dst, const void *src, size_t bytes, uint64_t *chunks)
{
	bool used[DJG_STAGE_MAX_SLOTS] = {false};
	uint64_t k = 0;
	size_t off = 0;
	int rc = 0, done;

	if (ops == NULL || ring == NULL || ring->host == NULL || ring->slot_bytes == 0 ||
	    ring->slots < 2 || ring->slots > DJG_STAGE_MAX_SLOTS ||
	    (bytes > 0 && (dst == NULL || src == NULL)))
		return -EINVAL;
	while (off < bytes && rc == 0) {
		unsigned int slot = (unsigned int)(k % ring->slots);
		size_t n = bytes - off < ring->slot_bytes ? bytes - off : ring->slot_bytes;
		void *host = (char *)ring->host + (size_t)slot * ring->slot_bytes;

		/* The slot's previous chunk must have left it before it is
		 * overwritten; the other slots keep both copies busy. */
		if (used[slot])
			rc = ops->wait(ctx, slot);
		if (rc == 0)
			rc = ops->out(ctx, slot, host, (const char *)src + off, n);
		if (rc == 0)
			rc = ops->in(ctx, slot, (char *)dst + off, host, n);
		used[slot] = true;
		off += n;
		k++;
	}
	/* Whatever was started finishes before the ring may be reused. */
	done = ops->finish(ctx);
	if (chunks != NULL)
		*chunks = k;
	return rc != 0 ? rc : done;
}
