/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_RT_INTERNAL_H
#define DJINN_RT_INTERNAL_H

/*
 * Shared between the runtime's devices (rt_device.c: the device list, its
 * memory, contexts and moves) and its backend table (runtime.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gpu/ops/gpu_ops.h"
#include "runtime/runtime.h"
#include "runtime/topo.h"
#include "tensor/store.h"

#define RT_MAX_CONTEXTS 16

/* One execution context of a device: a CUDA context (stream, cuBLAS,
 * pool) for a GPU, a token for host and simulated devices, and the
 * staging ring of the staged moves that land on this device (made on the
 * first one, on the device's NUMA node). */
struct rt_ctx {
	struct djg_ops *ops;          /* NULL: host or simulated device */
	struct djg_stage_ring ring;   /* host NULL until the first staged move */
	size_t ring_bytes;
	int ring_registered;          /* pinned with cudaHostRegister */
};

/* Executes and moves check a context out: one thread uses it at a time. */
struct rt_ctx_pool {
	pthread_mutex_t lock;
	pthread_cond_t available;
	struct rt_ctx *free_list[RT_MAX_CONTEXTS];
	int n_free;
	struct rt_ctx all[RT_MAX_CONTEXTS];
	int n_all;
};

struct rt_device {
	struct rt_runtime *rt;
	int index;
	char name[RT_DEVICE_NAME_MAX];
	enum rt_device_kind kind;
	int ordinal;                  /* CUDA device; -1 */
	int numa_node;                /* -1: unknown */
	uint64_t capacity;            /* simulated devices: bytes they pretend to have */
	struct tn_store_backend backend;
	/* Store allocations and copies share one context, serialised. */
	pthread_mutex_t mem_lock;
	struct djg_ops *mem_ctx;
	struct rt_ctx_pool pool;
	_Atomic uint64_t sim_used;    /* simulated: bytes allocated now */
	/* Load, for STATS, the fleet record and the metrics. */
	_Atomic uint64_t ops, ops_failed, running, waiting, sessions;
	_Atomic uint64_t moves_in, moves_out, move_bytes_in, move_bytes_out;
};

struct rt_runtime {
	struct tn_store *store;
	int n_devices;
	struct rt_device devices[RT_MAX_DEVICES];
	enum rt_move_mode move_mode;
	size_t stage_slot_bytes;
	unsigned int stage_slots;
	struct tp_topology topo;
	char description[256];
	void (*stats_extra)(void *arg, cJSON *obj);
	void *stats_arg;
};

/* rt_device.c */
int rt_devices_create(struct rt_runtime *rt, const struct rt_config *config);
void rt_devices_destroy(struct rt_runtime *rt);
struct rt_ctx *rt_ctx_checkout(struct rt_device *d);
/* As rt_ctx_checkout(), but NULL at once where none is free. */
struct rt_ctx *rt_ctx_try_checkout(struct rt_device *d);
void rt_ctx_checkin(struct rt_device *d, struct rt_ctx *ctx);
/* The path a move from src to dst takes under the runtime's move mode. */
enum djg_move_path rt_move_path(const struct rt_runtime *rt, const struct rt_device *src,
				const struct rt_device *dst);
/* Copy bytes from src (on device s) to dst (on device d) and wait; the
 * counters of both devices are updated. 0 or a negative errno. */
int rt_device_move(struct rt_runtime *rt, struct rt_device *s, struct rt_device *d, void *dst,
		   const void *src, size_t bytes, enum djg_move_path *path);
/* Free and total bytes of device d now (0 where unknown). */
void rt_device_mem(struct rt_device *d, uint64_t *free_bytes, uint64_t *total_bytes);
/* Copy host bytes into device memory and back (the store's upload /
 * download of d). */
int rt_device_upload(struct rt_device *d, void *dst, const void *src, size_t bytes);
int rt_device_download(struct rt_device *d, void *dst, const void *src, size_t bytes);

/* rt_batch.c: one batch's hold on its devices' contexts (this thread's). */
/* Begin a batch on this thread (one at a time: a batch still open ends). */
void rt_batch_begin(struct rt_runtime *rt);
/* Wait for the held streams, give their contexts back, drop the pins: 0 or
 * the first error any wait of the batch met. */
int rt_batch_flush(void);
/* Flush and end the batch; no batch: 0. */
int rt_batch_end(void);
/* The context the batch holds on d, or NULL (no batch, none held yet). */
struct rt_ctx *rt_batch_ctx(const struct rt_device *d);
/* The context the batch holds on device d (a GPU or a simulated one),
 * checked out at the first call; NULL outside a batch or for the host:
 * run as one operation. */
struct rt_ctx *rt_batch_hold(struct rt_device *d);
/* Keep ref pinned until the next flush (where the batch holds its device):
 * 0; -ENOENT (not held: release it now) or -ENOMEM (flushed: release it). */
int rt_batch_keep(struct tn_store_ref *ref);
/* Count bytes of outputs made; past a threshold the batch flushes. */
void rt_batch_made(uint64_t bytes);

#endif
