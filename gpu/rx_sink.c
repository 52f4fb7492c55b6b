/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The receive sink: a burst's copy list plus the buffers it reads from.
 * Host path: memcpy now, release now. Staged path: the burst goes into the
 * gather ring (gpu_cuda.cu); its buffers are held per ring slot and released
 * in burst order once the GPU says the burst is in the destination.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_pause.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"
#endif

#define DEFAULT_MAX_COPIES 256
#define MAX_COPIES 1024
#define DEFAULT_RING 512

struct djg_rx_sink {
	/* Hot: touched on every submit/poll by the owning lcore. */
	uint8_t *dest;
	size_t dest_len;
	uint64_t head;            /* bursts submitted */
	uint64_t tail;            /* bursts released */
	uint32_t ring_mask;
	uint16_t max_copies;
	uint16_t max_bufs;
	enum djg_rx_path path;
	djg_release_fn *release;
	void *release_arg;
	struct djg_gather *gather;
	void **held;              /* [ring][max_bufs] buffers per burst */
	uint16_t *held_n;         /* [ring] */
	struct djg_rx_sink_stats stats;
} __rte_cache_aligned;

static int conf_check(struct djg_rx_sink_conf *c)
{
	if (c->max_copies == 0)
		c->max_copies = DEFAULT_MAX_COPIES;
	if (c->max_bufs == 0)
		c->max_bufs = c->max_copies;
	if (c->ring_size == 0)
		c->ring_size = DEFAULT_RING;
	/* dest NULL with dest_len 0: absolute mode, dst_off is an address. */
	if (c->release == NULL || (c->dest == NULL) != (c->dest_len == 0) ||
	    c->max_copies > MAX_COPIES || !rte_is_power_of_2(c->ring_size) ||
	    (c->mode != DJG_GATHER_PERSISTENT && c->mode != DJG_GATHER_LAUNCH))
		return -EINVAL;
	return 0;
}

static int start_gather(struct djg_rx_sink *s, const struct djg_rx_sink_conf *c)
{
#ifdef DJ_HAVE_CUDA
	struct djg_gather_conf gc = {
		.ordinal = djg_ordinal(c->dev_id),
		.ring_size = c->ring_size,
		.max_copies = c->max_copies,
		.blocks = c->blocks,
		.frag_size = c->frag_size,
		.mode = c->mode,
	};

	if (gc.ordinal < 0)
		return -DJ_ENOGPU;
	s->held = calloc((size_t)c->ring_size * c->max_bufs, sizeof(*s->held));
	s->held_n = calloc(c->ring_size, sizeof(*s->held_n));
	if (s->held == NULL || s->held_n == NULL)
		return -ENOMEM;
	return djg_gather_create(&gc, &s->gather);
#else
	(void)s;
	(void)c;
	return -DJ_ENOGPU;
#endif
}

static void sink_free(struct djg_rx_sink *s)
{
#ifdef DJ_HAVE_CUDA
	djg_gather_destroy(s->gather);
#endif
	free(s->held);
	free(s->held_n);
	free(s);
}

int djg_rx_sink_create(const struct djg_rx_sink_conf *conf, struct djg_rx_sink **sink)
{
	struct djg_rx_sink_conf c;
	struct djg_rx_sink *s;
	int rc;

	if (conf == NULL || sink == NULL)
		return -EINVAL;
	c = *conf;
	rc = conf_check(&c);
	if (rc != 0)
		return rc;
	if (c.dev_id != DJG_HOST && djg_count() == 0)
		return -DJ_ENOGPU;
	s = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(sizeof(*s), RTE_CACHE_LINE_SIZE));
	if (s == NULL)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->dest = c.dest;
	s->dest_len = c.dest_len;
	s->ring_mask = c.ring_size - 1;
	s->max_copies = c.max_copies;
	s->max_bufs = c.max_bufs;
	s->release = c.release;
	s->release_arg = c.release_arg;
	s->path = c.dev_id == DJG_HOST ? DJG_RX_HOST : DJG_RX_STAGED;
	s->stats.path = s->path;
	s->stats.mode = c.mode;
	rc = s->path == DJG_RX_STAGED ? start_gather(s, &c) : 0;
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "rx sink: cannot start the gather engine: %s",
		       dj_strerror(rc));
		sink_free(s);
		return rc;
	}
	DJC_LOG(DJ_LOG_INFO, DJG_LOG, "rx sink: %s path%s, %u bursts of %u copies in flight",
	       djg_rx_path_name(s->path),
	       s->path == DJG_RX_HOST ? "" :
	       c.mode == DJG_GATHER_LAUNCH ? " (kernel per burst)" : " (persistent kernel)",
	       s->path == DJG_RX_HOST ? 1 : c.ring_size, c.max_copies);
	*sink = s;
	return 0;
}

/* dest NULL: absolute addresses, which the caller has validated. */
static int copies_valid(const void *dest, size_t dest_len, const struct djg_copy *copies,
			size_t n, uint64_t *bytes)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		const struct djg_copy *c = &copies[i];

		if ((dest != NULL && (c->len > dest_len || c->dst_off > dest_len - c->len)) ||
		    (c->src == NULL && c->len != 0))
			return 0;
		total += c->len;
	}
	*bytes = total;
	return 1;
}

static void memcpy_copies(uint8_t *dest, const struct djg_copy *copies, size_t n)
{
	for (size_t i = 0; i < n; i++)
		memcpy((void *)((uintptr_t)dest + copies[i].dst_off), copies[i].src, copies[i].len);
}

static void release_slot(struct djg_rx_sink *s, uint64_t k)
{
	uint32_t slot = k & s->ring_mask;

	if (s->held_n[slot] > 0)
		s->release(s->held + (size_t)slot * s->max_bufs, s->held_n[slot], s->release_arg);
	s->held_n[slot] = 0;
}

int djg_rx_sink_poll(struct djg_rx_sink *s)
{
	int done = 0;

	if (s == NULL)
		return -EINVAL;
#ifdef DJ_HAVE_CUDA
	while (s->tail != s->head) {
		int rc = djg_gather_done(s->gather, s->tail);

		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		release_slot(s, s->tail++);
		done++;
	}
	s->stats.completed += done;
#endif
	return done;
}

static int stage_burst(struct djg_rx_sink *s, const struct djg_copy *copies, uint16_t n,
		       void **bufs, uint16_t nbufs)
{
#ifdef DJ_HAVE_CUDA
	uint32_t slot = s->head & s->ring_mask;
	int rc;

	if (s->head - s->tail > s->ring_mask) {
		rc = djg_rx_sink_poll(s);
		if (rc < 0)
			return rc;
		if (s->head - s->tail > s->ring_mask) {
			s->stats.ring_full++;
			return -EAGAIN;
		}
	}
	rc = djg_gather_put(s->gather, s->head, copies, n, s->dest);
	if (rc != 0)
		return rc;
	memcpy(s->held + (size_t)slot * s->max_bufs, bufs, nbufs * sizeof(*bufs));
	s->held_n[slot] = nbufs;
	s->head++;
	return 0;
#else
	return -DJ_ENOGPU;
#endif
}

int djg_rx_sink_submit(struct djg_rx_sink *s, const struct djg_copy *copies,
			  uint16_t n, void **bufs, uint16_t nbufs)
{
	uint64_t bytes;
	int rc;

	if (s == NULL || n > s->max_copies || nbufs > s->max_bufs ||
	    (n > 0 && copies == NULL) || (nbufs > 0 && bufs == NULL) ||
	    !copies_valid(s->dest, s->dest_len, copies, n, &bytes)) {
		if (s != NULL)
			s->stats.rejected++;
		return -EINVAL;
	}
	if (s->path == DJG_RX_HOST) {
		memcpy_copies(s->dest, copies, n);
		if (nbufs > 0)
			s->release(bufs, nbufs, s->release_arg);
		s->stats.completed++;
	} else {
		rc = stage_burst(s, copies, n, bufs, nbufs);
		if (rc != 0)
			return rc;
	}
	s->stats.bursts++;
	s->stats.copies += n;
	s->stats.bytes += bytes;
	return 0;
}

int djg_rx_sink_drain(struct djg_rx_sink *s, uint64_t timeout_ns)
{
	uint64_t deadline = djc_time_ns() + timeout_ns;

	if (s == NULL)
		return -EINVAL;
	while (s->tail != s->head) {
		int rc = djg_rx_sink_poll(s);

		if (rc < 0)
			return rc;
		if (rc == 0 && djc_time_ns() > deadline)
			return -ETIMEDOUT;
		rte_pause();
	}
#ifdef DJ_HAVE_CUDA
	/* Nothing in flight: a resident kernel leaves the GPU to others. */
	djg_gather_pause(s->gather);
#endif
	return 0;
}

int djg_rx_sink_rebind(struct djg_rx_sink *s, void *dest, size_t dest_len)
{
	if (s == NULL || s->dest == NULL || dest == NULL || dest_len == 0)
		return -EINVAL;
	if (s->tail != s->head)
		return -EBUSY;
	s->dest = dest;
	s->dest_len = dest_len;
	return 0;
}

enum djg_rx_path djg_rx_sink_path(const struct djg_rx_sink *s)
{
	return s->path;
}

void djg_rx_sink_stats_get(const struct djg_rx_sink *s, struct djg_rx_sink_stats *stats)
{
	*stats = s->stats;
#ifdef DJ_HAVE_CUDA
	stats->generations = djg_gather_launches(s->gather);
#endif
}

void djg_rx_sink_destroy(struct djg_rx_sink *s)
{
	if (s == NULL)
		return;
	if (djg_rx_sink_drain(s, 1000000000ull) != 0)
		DJC_LOG(DJ_LOG_WARN, DJG_LOG, "rx sink: %" PRIu64 " bursts unfinished at destroy",
		       s->head - s->tail);
#ifdef DJ_HAVE_CUDA
	/* Stop the GPU first: only then is no buffer read any more. */
	djg_gather_destroy(s->gather);
	s->gather = NULL;
#endif
	while (s->tail != s->head)
		release_slot(s, s->tail++);
	sink_free(s);
}

int djg_gather_list(int16_t dev_id, void *dest, size_t dest_len, const struct djg_copy *copies,
		  size_t n)
{
	uint64_t bytes;

	if (dest == NULL || (n > 0 && copies == NULL) || n > UINT32_MAX ||
	    !copies_valid(dest, dest_len, copies, n, &bytes))
		return -EINVAL;
	if (dev_id == DJG_HOST) {
		memcpy_copies(dest, copies, n);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	int ordinal = djg_ordinal(dev_id);

	return ordinal < 0 ? ordinal : djg_gather_oneshot(ordinal, copies, n, dest);
#else
	return -DJ_ENOGPU;
#endif
}
