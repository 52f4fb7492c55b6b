/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A batch's hold on the GPU (rt_batch_begin .. rt_batch_end, on one
 * thread): the operations of one EXECUTE batch run on one context per CUDA
 * device, checked out at the first operation there and held to the end,
 * and nothing waits for each of them. Its allocations, frees and copies go
 * on that context's stream too, so stream order alone keeps them right.
 * One wait for the stream (a flush) makes the results usable anywhere: at
 * the end of the batch, before a move between devices, and after
 * RT_BATCH_FLUSH_BYTES of outputs (so that tensors the batch freed return
 * to the pool). A copy to the host waits for its stream first (copy_sync).
 *
 * The tensors the batch's operations read and write stay pinned until the
 * flush: a FREE of another thread cannot hand their memory to someone else
 * while a kernel of the batch may still use it.
 *
 * An error CUDA reports only when the stream is waited for fails the batch
 * at its flush (rt_batch_end's return).
 */
#include <errno.h>
#include <stdlib.h>

#include "djinn/common.h"
#include "gpu/ops/gpu_ops.h"
#include "rt_internal.h"

/* Outputs made since the last flush beyond which the batch waits for its
 * streams and lets its pins go. */
#define RT_BATCH_FLUSH_BYTES ((uint64_t)64 << 20)

struct rt_batch {
	struct rt_runtime *rt;          /* NULL: no batch on this thread */
	struct rt_ctx *held[RT_MAX_DEVICES];
	struct tn_store_ref **pins;
	int n_pins, cap_pins;
	uint64_t made;                  /* output bytes since the last flush */
	int rc;                         /* the first failure of a flush */
};

static _Thread_local struct rt_batch batch;

void rt_batch_begin(struct rt_runtime *rt)
{
	if (batch.rt != NULL)
		(void)rt_batch_end();
	batch.rt = rt;
	batch.rc = 0;
	batch.made = 0;
}

/* Wait for every held stream, give the contexts back, drop the pins. */
static int flush(void)
{
	struct rt_runtime *rt = batch.rt;

	for (int i = 0; rt != NULL && i < rt->n_devices; i++) {
		struct rt_ctx *ctx = batch.held[i];
		int rc;

		if (ctx == NULL)
			continue;
		rc = ctx->ops != NULL ? djg_ops_sync(ctx->ops) : 0;
		if (rc != 0 && batch.rc == 0)
			batch.rc = rc;
		batch.held[i] = NULL;
		rt_ctx_checkin(&rt->devices[i], ctx);
	}
	for (int i = 0; i < batch.n_pins; i++)
		tn_store_release(rt->store, batch.pins[i]);
	batch.n_pins = 0;
	batch.made = 0;
	return batch.rc;
}

int rt_batch_flush(void)
{
	return batch.rt != NULL ? flush() : 0;
}

int rt_batch_end(void)
{
	int rc = rt_batch_flush();

	free(batch.pins);
	batch.pins = NULL;
	batch.cap_pins = 0;
	batch.rt = NULL;
	return rc;
}

struct rt_ctx *rt_batch_ctx(const struct rt_device *d)
{
	return batch.rt == d->rt ? batch.held[d->index] : NULL;
}

struct rt_ctx *rt_batch_hold(struct rt_device *d)
{
	/* A simulated device holds its context too (nothing to wait for):
	 * the host's tests run the hold, pins and flushes of a GPU's batch. */
	if (batch.rt != d->rt || d->kind == RT_DEVICE_HOST)
		return NULL;
	if (batch.held[d->index] == NULL) {
		struct rt_ctx *ctx = rt_ctx_try_checkout(d);

		/* None free: give back what the batch holds on other devices
		 * before waiting, so that two batches never each wait for a
		 * context the other holds (more workers than contexts). */
		if (ctx == NULL) {
			(void)flush();
			ctx = rt_ctx_checkout(d);
		}
		batch.held[d->index] = ctx;
	}
	return batch.held[d->index];
}

int rt_batch_keep(struct tn_store_ref *ref)
{
	if (ref == NULL || batch.rt == NULL ||
	    batch.held[tn_store_ref_device(ref)] == NULL)
		return -ENOENT;
	if (batch.n_pins == batch.cap_pins) {
		int cap = batch.cap_pins > 0 ? batch.cap_pins * 2 : 256;
		struct tn_store_ref **grown = realloc(batch.pins, (size_t)cap * sizeof(*grown));

		/* No room to keep it: wait for the streams, then the caller
		 * may let it go at once. */
		if (grown == NULL) {
			(void)flush();
			return -ENOMEM;
		}
		batch.pins = grown;
		batch.cap_pins = cap;
	}
	batch.pins[batch.n_pins++] = ref;
	return 0;
}

void rt_batch_made(uint64_t bytes)
{
	if (batch.rt == NULL)
		return;
	batch.made += bytes;
	if (batch.made > RT_BATCH_FLUSH_BYTES)
		(void)flush();
}
