/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Send side: a source (GPU memory) staged chunk by chunk into pinned host
 * buffers with asynchronous device-to-host copies, handed out in order as
 * each copy lands, so transmission of chunk i overlaps the copy of i+1...
 * Each buffer's rte_mbuf_ext_shared_info counts its users: one for the
 * caller between next() and put(), one per attached mbuf. When it drops to
 * zero (on whichever lcore frees the last mbuf) the buffer is marked free;
 * the owning lcore refills it on its next call.
 */
/* This file implements (and calls) experimental API of gpu/gpu.h. */
#define DJG_ALLOW_EXPERIMENTAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"
#endif

#define DEFAULT_CHUNK (1u << 20)
#define DEFAULT_CHUNKS 4
#define MAX_CHUNKS 64

enum buffer_state { BUF_FREE, BUF_COPYING, BUF_OUT };

struct tx_buffer {
	struct rte_mbuf_ext_shared_info shinfo;
	uint32_t state;          /* enum buffer_state; BUF_OUT -> BUF_FREE on any lcore */
	uint32_t len;
	uint64_t offset;
	uint8_t *data;
	rte_iova_t iova;
	const struct rte_memzone *mz;
	void *event;             /* GPU: copy done */
} __rte_cache_aligned;

struct djg_tx_stager {
	int16_t dev_id;
	uint16_t n;
	uint32_t chunk_size;
	void *stream;
	const uint8_t *src;
	size_t len;
	uint64_t issued;         /* source bytes whose copy was started */
	uint64_t handed;         /* source bytes handed out */
	uint16_t fifo[MAX_CHUNKS]; /* buffers in source order, copying */
	uint16_t fifo_head, fifo_n;
	struct tx_buffer buf[MAX_CHUNKS];
};

static void buffer_released(void *addr, void *opaque)
{
	struct tx_buffer *b = opaque;

	(void)addr;
	__atomic_store_n(&b->state, BUF_FREE, __ATOMIC_RELEASE);
}

static int copy_into(struct djg_tx_stager *st, struct tx_buffer *b)
{
	const uint8_t *from = st->src + b->offset;

	if (st->dev_id == DJG_HOST) {
		memcpy(b->data, from, b->len);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	int rc = djg_copy_async_host(st->dev_id, st->stream, b->data, from, b->len, false);

	return rc == 0 ? djg_event_record(b->event, st->stream) : rc;
#else
	return -DJ_ENOGPU;
#endif
}

/* Start copies into every free buffer while source bytes remain. */
static int refill(struct djg_tx_stager *st)
{
	for (uint16_t i = 0; i < st->n && st->issued < st->len; i++) {
		struct tx_buffer *b = &st->buf[i];
		int rc;

		if (__atomic_load_n(&b->state, __ATOMIC_ACQUIRE) != BUF_FREE)
			continue;
		b->offset = st->issued;
		b->len = RTE_MIN((size_t)st->chunk_size, st->len - st->issued);
		b->state = BUF_COPYING;
		rc = copy_into(st, b);
		if (rc != 0) {
			b->state = BUF_FREE;
			return rc;
		}
		st->issued += b->len;
		st->fifo[(st->fifo_head + st->fifo_n++) % MAX_CHUNKS] = i;
	}
	return 0;
}

static int buffer_init(struct djg_tx_stager *st, uint16_t i, int socket)
{
	struct tx_buffer *b = &st->buf[i];
	char name[RTE_MEMZONE_NAMESIZE];

	snprintf(name, sizeof(name), "djtx_%p_%u", (void *)st, i);
	b->mz = rte_memzone_reserve_aligned(name, st->chunk_size, socket, RTE_MEMZONE_IOVA_CONTIG,
					    DJG_PAGE_SIZE);
	if (b->mz == NULL)
		return -ENOMEM;
	b->data = b->mz->addr;
	b->iova = b->mz->iova;
	b->shinfo.free_cb = buffer_released;
	b->shinfo.fcb_opaque = b;
	b->state = BUF_FREE;
	if (st->dev_id == DJG_HOST)
		return 0;
#ifdef DJ_HAVE_CUDA
	int rc = djg_host_register(st->dev_id, b->data, st->chunk_size);

	return rc == 0 ? djg_event_create(&b->event) : rc;
#else
	return -DJ_ENOGPU;
#endif
}

static void buffer_fini(struct djg_tx_stager *st, struct tx_buffer *b)
{
	if (b->mz == NULL)
		return;
#ifdef DJ_HAVE_CUDA
	djg_event_destroy(b->event);
#endif
	djg_host_unregister(st->dev_id, b->data);
	rte_memzone_free(b->mz);
}

void djg_tx_stager_destroy(struct djg_tx_stager *st)
{
	if (st == NULL)
		return;
#ifdef DJ_HAVE_CUDA
	djg_stream_destroy(st->stream); /* waits for copies in flight */
#endif
	for (uint16_t i = 0; i < st->n; i++)
		buffer_fini(st, &st->buf[i]);
	free(st);
}

int djg_tx_stager_create(const struct djg_tx_stager_conf *conf,
			    struct djg_tx_stager **stager)
{
	struct djg_tx_stager *st;
	int rc = 0;

	if (conf == NULL || stager == NULL || conf->n_chunks > MAX_CHUNKS)
		return -EINVAL;
	if (conf->dev_id != DJG_HOST && djg_count() == 0)
		return -DJ_ENOGPU;
	st = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(sizeof(*st), RTE_CACHE_LINE_SIZE));
	if (st == NULL)
		return -ENOMEM;
	memset(st, 0, sizeof(*st));
	st->dev_id = conf->dev_id;
	st->chunk_size = conf->chunk_size ? conf->chunk_size : DEFAULT_CHUNK;
	st->n = conf->n_chunks ? conf->n_chunks : DEFAULT_CHUNKS;
#ifdef DJ_HAVE_CUDA
	if (st->dev_id != DJG_HOST) {
		int ordinal = djg_ordinal(st->dev_id);

		rc = ordinal < 0 ? ordinal : djg_stream_create(ordinal, &st->stream);
	}
#endif
	for (uint16_t i = 0; rc == 0 && i < st->n; i++)
		rc = buffer_init(st, i, conf->socket);
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "tx stager: %u chunks of %u B: %s", st->n,
		       st->chunk_size, dj_strerror(rc));
		djg_tx_stager_destroy(st);
		return rc;
	}
	*stager = st;
	return 0;
}

bool djg_tx_stager_done(struct djg_tx_stager *st)
{
	if (st->handed < st->len)
		return false;
	for (uint16_t i = 0; i < st->n; i++)
		if (__atomic_load_n(&st->buf[i].state, __ATOMIC_ACQUIRE) != BUF_FREE)
			return false;
	return true;
}

int djg_tx_stager_start(struct djg_tx_stager *st, const void *src, size_t len)
{
	if (st == NULL || (src == NULL && len > 0))
		return -EINVAL;
	if (!djg_tx_stager_done(st))
		return -EBUSY;
	st->src = src;
	st->len = len;
	st->issued = 0;
	st->handed = 0;
	st->fifo_head = 0;
	st->fifo_n = 0;
	return refill(st);
}

static int copy_landed(struct djg_tx_stager *st, struct tx_buffer *b)
{
#ifdef DJ_HAVE_CUDA
	if (st->dev_id != DJG_HOST)
		return djg_event_done(b->event);
#endif
	(void)st;
	(void)b;
	return 1;
}

int djg_tx_stager_next(struct djg_tx_stager *st, struct djg_tx_chunk *chunk)
{
	struct tx_buffer *b;
	int rc;

	if (st == NULL || chunk == NULL)
		return -EINVAL;
	rc = refill(st);
	if (rc != 0)
		return rc;
	if (st->handed >= st->len)
		return -ENODATA;
	if (st->fifo_n == 0)
		return -EAGAIN;
	b = &st->buf[st->fifo[st->fifo_head]];
	rc = copy_landed(st, b);
	if (rc <= 0)
		return rc == 0 ? -EAGAIN : rc;
	st->fifo_head = (st->fifo_head + 1) % MAX_CHUNKS;
	st->fifo_n--;
	rte_mbuf_ext_refcnt_set(&b->shinfo, 1);
	b->state = BUF_OUT;
	st->handed += b->len;
	*chunk = (struct djg_tx_chunk){
		.data = b->data, .iova = b->iova, .offset = b->offset, .len = b->len,
		.buffer = b - st->buf,
	};
	return 0;
}

int djg_tx_chunk_attach(struct djg_tx_stager *st, const struct djg_tx_chunk *chunk,
			   struct rte_mbuf *m, uint32_t off, uint16_t len)
{
	struct tx_buffer *b;

	if (st == NULL || chunk == NULL || m == NULL || chunk->buffer >= st->n || len == 0 ||
	    off > chunk->len || len > chunk->len - off)
		return -EINVAL;
	b = &st->buf[chunk->buffer];
	rte_mbuf_ext_refcnt_update(&b->shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, b->data + off, b->iova + off, len, &b->shinfo);
	m->data_off = 0;
	m->data_len = len;
	m->pkt_len = len;
	return 0;
}

void djg_tx_chunk_put(struct djg_tx_stager *st, const struct djg_tx_chunk *chunk)
{
	struct tx_buffer *b;

	if (st == NULL || chunk == NULL || chunk->buffer >= st->n)
		return;
	b = &st->buf[chunk->buffer];
	if (rte_mbuf_ext_refcnt_update(&b->shinfo, -1) == 0)
		buffer_released(b->data, b);
}
