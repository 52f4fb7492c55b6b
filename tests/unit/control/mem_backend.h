/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TEST_MEM_BACKEND_H
#define DJINN_TEST_MEM_BACKEND_H

/*
 * A host-memory backend for the control-plane tests and bench: tensors in
 * malloc'ed buffers, a few operations ("add", "scale", "sleep", "dup",
 * "fail", and "iadd": input 0 += input 1 in place, returning input 0),
 * per-session byte limits; ops on at most 4 KiB of inputs (but "sleep")
 * may run on the server's connection thread. Test code, not the production store.
 */
#include <stddef.h>
#include <stdint.h>

#include "controlplane/ctl.h"

struct mem_backend;

struct mem_backend_options {
	int chunked;              /* hand out no host pointer: exercise *_chunk */
	uint64_t session_bytes;   /* per-session limit (0: none) */
	int no_inline;            /* every EXECUTE to a worker (no execute_inline) */
};

int mem_backend_create(const struct mem_backend_options *opts, struct mem_backend **mb);
void mem_backend_destroy(struct mem_backend *mb);
/* The callback table; pass the mem_backend as its ctx. */
const struct ctl_backend *mem_backend_ops(void);
/* Live tensors over all sessions (leak checks). */
int mem_backend_live(struct mem_backend *mb);
/* Tensors whose storage is still allocated: live ones plus freed ones a
 * read still holds. */
int mem_backend_tensors(struct mem_backend *mb);
/* Sessions open now. */
int mem_backend_sessions(struct mem_backend *mb);

#endif
