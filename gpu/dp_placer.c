/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The data plane's GPU placement (struct dp_engine_placer) on the rx sink
 * in absolute mode, one sink per polling lcore and device:
 *
 *   place()      find the destination's device (once per destination),
 *                append {payload inside the mbuf, destination address, len}
 *   burst_end()  keep the burst's mbufs in the lcore's open gather burst;
 *                once it holds the gather burst's fragments (conf
 *                gather_burst: 128 for MTU-size fragments, where the
 *                resident kernel reads fastest in bursts of 128; jumbo ones
 *                a rx burst at a time), hand each device's copies and the
 *                mbufs to that device's sink; the sinks free the mbufs once
 *                the GPUs have read them (one mbuf reference per device)
 *   flush()      the engine's rx poll came back short: the open gather
 *                burst goes now, full or not, so no fragment waits for
 *                traffic that may not come
 *   sync()       flush, then drain the sinks: every placed byte is in its
 *                destination before a receive is reported complete
 *   stage_*()    GPU sources sent chunk by chunk: pinned host rings, a
 *                stream (on the source's GPU) and an event per slot, cached
 *                for later sends
 *   copy_out()   one whole device-to-host copy (engines that do not stage)
 *
 * Two movers bring received payloads into GPU memory (enum djg_rx_mover):
 * the gather kernel reads the mbufs (the sinks above), or the lcore packs
 * each fragment into a pinned chunk at place() and the copy engine moves
 * the chunks (gpu/packer.h; the mbufs go back to the engine at burst_end(),
 * their bytes already copied). AUTO measures both at create on the first
 * GPU and keeps the faster for the placer's life.
 *
 * The gather kernel reads mbuf data, so a mempool is registered with CUDA
 * the first time one of its mbufs is seen; gpudev registers host memory
 * portable and mapped, so one registration serves every GPU. That slow
 * path (once per pool and lcore) is the only lock. Whatever a sink cannot
 * take (a full ring that does not drain, a pool that cannot be registered)
 * is copied synchronously with cudaMemcpy before the mbufs go back: slower,
 * never lost. The pools are unregistered when the last lcore state goes,
 * which the engine does before it frees the port's mempools.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"
#include "packer.h"
#ifdef DJ_HAVE_CUDA
#include "gpu_cuda.h"

/* dp_placer_cuda.cu: make CUDA device @ordinal the calling thread's; the
 * device of a pointer (-1: host or unknown). */
int djg_dp_device_use(int ordinal);
int djg_dp_pointer_device(const void *ptr);
#endif

/* The engine's rx burst (DP_PORT_BURST); one burst_end() brings at most
 * two (the port's and the hand-off ring's). */
#define PLACER_RX_BURST 32
/* A gather burst is handed over once one more rx burst would take it past
 * its size, so it holds at most DJG_PLACER_BURST_MAX fragments with rx
 * bursts of PLACER_RX_BURST, and never more than this. */
#define PLACER_MAX_COPIES (DJG_PLACER_BURST_MAX + 2 * PLACER_RX_BURST)
#define PLACER_MAX_BUFS PLACER_MAX_COPIES
#define PLACER_MAX_POOLS 16
#define PLACER_MAX_LCORES 16
/* Received mbufs an lcore lets the GPUs and its open gather burst hold at
 * once (counted once per device holding them). The rx queue refills from
 * the same pool: were the placer to hold all of it, no burst would come to
 * poll the sinks again and the queue would stall for good. */
#define PLACER_MAX_HELD 1024
#define SUBMIT_RETRY_NS (100ull * 1000 * 1000)
#define SYNC_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)
/* Send stages kept for later sends, so a send pays no allocation and no
 * pinning of host memory (milliseconds for a ring of tens of MiB). */
#define STAGE_CACHE_MAX 4
#define NO_DEVICE (-1)

struct placer_lcore;

/* Staging for GPU sends: pinned host memory in DPDK's heap (a NIC can DMA
 * it), a stream and an event per slot on the GPU of the source it last
 * staged. Owned by one send between stage_get() and stage_put(), cached
 * by the placer otherwise. */
struct placer_stage {
	struct placer_stage *next;   /* in the placer's cache */
	struct djg_dp_placer *owner;
	size_t bytes;
	int socket;                  /* NUMA socket of host */
	int dev;                     /* device the stream and events are on */
	void *host;
	void *stream;
	bool registered;             /* host is registered with the GPU */
	bool failed;                 /* a copy failed: never reused */
	void *events[DP_STAGE_MAX_SLOTS];
};

struct djg_dp_placer {
	struct dp_engine_placer ops;
	struct djg_dp_placer_conf conf;
	unsigned int n_devs;
	int16_t dev_ids[DJG_PLACER_MAX_DEVS];
	int ordinals[DJG_PLACER_MAX_DEVS]; /* CUDA device of each; -1: host memory */
	int16_t reg_dev;              /* gpudev id registrations go through; DJG_HOST: none */
	pthread_mutex_t lock;         /* everything below */
	struct rte_mempool *pools[PLACER_MAX_POOLS]; /* registered with CUDA */
	unsigned int n_pools;
	struct placer_lcore *lcores[PLACER_MAX_LCORES];
	unsigned int n_lcores;
	struct placer_stage *stages;  /* cache, at most STAGE_CACHE_MAX */
	unsigned int n_stages;
	enum djg_rx_mover mover;      /* GATHER or COPY, fixed at create */
	uint16_t gather_burst;        /* fragments per gather burst */
	double gather_gbytes_s, copy_gbytes_s; /* AUTO's measurement */
};

/* State of one polling lcore; only that lcore touches it after init. */
struct placer_lcore {
	struct djg_dp_placer *owner;
	unsigned int idx;             /* the caller's lcore index, for logs */
	unsigned int slot;            /* in the placer's lcores[] */
	int cur_ordinal;              /* the thread's CUDA device; -2: not set */
	struct djg_rx_sink *sinks[DJG_PLACER_MAX_DEVS];
	struct djg_packer *packers[DJG_PLACER_MAX_DEVS]; /* COPY: per GPU device */
	struct djg_cuda_packer *chunks[DJG_PLACER_MAX_DEVS];
	uint16_t n_copies;
	bool mixed;                   /* the copies go to more than one device */
	uint8_t first_dev;
	uint32_t dev_mask;            /* devices the copies go to */
	uint32_t held;                /* mbuf references the sinks hold */
	uint16_t gather_burst;        /* the placer's, read on every burst */
	uint16_t n_pend;              /* mbufs of the open gather burst */
	const void *last_dest;        /* the destination whose device is last_dev */
	int last_dev;
	unsigned int n_known, n_refused;
	struct rte_mempool *known[PLACER_MAX_POOLS];
	struct rte_mempool *refused[PLACER_MAX_POOLS]; /* failed once: not retried */
	uint64_t direct_copies, mixed_bursts;
	uint64_t failures, failures_reported;
	uint8_t copy_dev[PLACER_MAX_COPIES];
	struct djg_copy copies[PLACER_MAX_COPIES];
	struct djg_copy grouped[PLACER_MAX_COPIES]; /* a mixed burst's, by device */
	struct rte_mbuf *pend[PLACER_MAX_BUFS]; /* the open gather burst's mbufs */
} __rte_cache_aligned;

static void release_mbufs(void **bufs, uint16_t n, void *arg)
{
	struct placer_lcore *lc = arg;

	rte_pktmbuf_free_bulk((struct rte_mbuf **)bufs, n);
	lc->held -= n;
}

/* The device @addr lies on: the caller's answer, else CUDA's. */
static int device_of(const struct djg_dp_placer *p, const void *addr)
{
	int dev = 0;

	if (p->n_devs == 1)
		return 0;
	if (p->conf.device_of != NULL) {
		dev = p->conf.device_of(p->conf.device_arg, addr);
	} else {
#ifdef DJ_HAVE_CUDA
		int ordinal = djg_dp_pointer_device(addr);

		/* The first listing of that GPU (its aliases share it); none: 0. */
		for (dev = 0; (unsigned int)dev < p->n_devs && p->ordinals[dev] != ordinal; dev++)
			;
#endif
	}
	return dev >= 0 && (unsigned int)dev < p->n_devs ? dev : 0;
}

static int copy_to_dest(const struct djg_dp_placer *p, int dev, const struct djg_copy *c)
{
	void *dst = (void *)(uintptr_t)c->dst_off;

	if (p->ordinals[dev] < 0) {
		memcpy(dst, c->src, c->len);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	return djg_cuda_copy(p->ordinals[dev], dst, c->src, c->len, 1);
#else
	return -DJ_ENOGPU;
#endif
}

/* The slow, always available way: one synchronous copy per fragment of
 * copies[0..n), each to its device. The sinks involved are drained first,
 * which also pauses their resident kernels: no synchronous CUDA call runs
 * on this lcore while its own kernel waits for the lcore's next burst. */
static void copy_list_now(struct placer_lcore *lc, const struct djg_copy *copies,
			  const uint8_t *devs, uint8_t one_dev, uint16_t n)
{
	struct djg_dp_placer *p = lc->owner;
	uint32_t mask = 0;

	for (uint16_t i = 0; i < n; i++)
		mask |= 1u << (devs != NULL ? devs[i] : one_dev);
	for (unsigned int d = 0; d < p->n_devs; d++)
		if ((mask >> d) & 1 && p->ordinals[d] >= 0 &&
		    djg_rx_sink_drain(lc->sinks[d], SYNC_TIMEOUT_NS) != 0)
			lc->failures++;
	for (uint16_t i = 0; i < n; i++)
		if (copy_to_dest(p, devs != NULL ? devs[i] : one_dev, &copies[i]) != 0)
			lc->failures++;
	lc->direct_copies += n;
}

static void copy_now(struct placer_lcore *lc)
{
	copy_list_now(lc, lc->copies, lc->copy_dev, 0, lc->n_copies);
	lc->n_copies = 0;
}

static int lcore_device_set(struct placer_lcore *lc, int dev);

/* COPY mover: into the lcore's chunk for dev's GPU now. A fragment the
 * packer cannot take (no chunk came free) is copied synchronously. */
static void pack(struct placer_lcore *lc, int dev, void *dst, const void *src, uint32_t len)
{
	int rc = lcore_device_set(lc, dev);

	if (rc == 0)
		rc = djg_packer_add(lc->packers[dev], dst, src, len);
	if (rc == -EIO) {
		lc->failures++; /* packed all the same; an earlier chunk failed */
		return;
	}
	if (rc != 0) {
		struct djg_copy c = {.src = src, .dst_off = (uint64_t)(uintptr_t)dst, .len = len};

		if (copy_to_dest(lc->owner, dev, &c) != 0)
			lc->failures++;
		lc->direct_copies++;
	}
}

static void place(void *state, void *dest_base, uint64_t dest_len, uint64_t dest_offset,
		  const void *src, uint32_t len)
{
	struct placer_lcore *lc = state;
	int dev = 0;

	(void)dest_len; /* the engine validated the range */
	if (lc->owner->n_devs > 1) {
		if (dest_base != lc->last_dest) {
			lc->last_dev = device_of(lc->owner, dest_base);
			lc->last_dest = dest_base;
		}
		dev = lc->last_dev;
	}
	if (lc->packers[dev] != NULL) {
		pack(lc, dev, (uint8_t *)dest_base + dest_offset, src, len);
		return;
	}
	if (unlikely(lc->n_copies == PLACER_MAX_COPIES))
		copy_now(lc);
	if (lc->n_copies == 0) {
		lc->first_dev = (uint8_t)dev;
		lc->mixed = false;
		lc->dev_mask = 0;
	}
	lc->mixed |= dev != lc->first_dev;
	lc->dev_mask |= 1u << dev;
	lc->copy_dev[lc->n_copies] = (uint8_t)dev;
	lc->copies[lc->n_copies++] = (struct djg_copy){
		.src = src,
		.dst_off = (uint64_t)(uintptr_t)dest_base + dest_offset,
		.len = len,
	};
}

static int pool_register(struct placer_lcore *lc, struct rte_mempool *mp)
{
	struct djg_dp_placer *p = lc->owner;
	unsigned int i;
	int rc = 0;

	if (lc->n_known == PLACER_MAX_POOLS)
		return -ENOSPC;
	/* Registration is a driver call that may want the context quiet: not
	 * while this lcore's own resident kernels wait for it. */
	for (i = 0; i < p->n_devs && rc == 0; i++)
		if (p->ordinals[i] >= 0)
			rc = djg_rx_sink_drain(lc->sinks[i], SYNC_TIMEOUT_NS);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n_pools && p->pools[i] != mp; i++)
		;
	if (i == p->n_pools) {
		rc = p->n_pools == PLACER_MAX_POOLS ? -ENOSPC :
		     djg_mempool_register(p->reg_dev, mp);
		if (rc == 0)
			p->pools[p->n_pools++] = mp;
	}
	pthread_mutex_unlock(&p->lock);
	if (rc != 0) {
		/* Once per lcore and pool: no lock, registration or log line on
		 * every later burst of this polling lcore. */
		if (lc->n_refused < PLACER_MAX_POOLS)
			lc->refused[lc->n_refused++] = mp;
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "dp placer: mempool %s not readable by the GPU "
		       "(%s): its payloads are copied synchronously", mp->name, dj_strerror(rc));
		return rc;
	}
	lc->known[lc->n_known++] = mp;
	return 0;
}

static int pool_check(struct placer_lcore *lc, struct rte_mempool *mp)
{
	for (unsigned int i = 0; i < lc->n_known; i++)
		if (likely(lc->known[i] == mp))
			return 0;
	for (unsigned int i = 0; i < lc->n_refused; i++)
		if (lc->refused[i] == mp)
			return -EFAULT;
	return pool_register(lc, mp);
}

/* Registered host memory: portable, so any of the placer's GPUs that
 * registered it makes it readable by all. */
static bool host_readable(const struct djg_dp_placer *p, const void *ptr, size_t len)
{
	for (unsigned int i = 0; i < p->n_devs; i++)
		if (p->ordinals[i] >= 0 && djg_host_readable(p->dev_ids[i], ptr, len))
			return true;
	return false;
}

/*
 * Every mbuf the gather kernel reads lies in memory registered with CUDA.
 * An attached external buffer does not lie in its mbuf's pool: on net_ring
 * the receiver gets the sender's zero-copy frames, whose payload is the
 * sender's own buffer. Unless that buffer is registered (djg_host_register)
 * a kernel reading it faults: such bursts take the synchronous copy instead.
 */
static int segment_readable(struct placer_lcore *lc, struct rte_mbuf *seg)
{
	if (RTE_MBUF_HAS_EXTBUF(seg))
		return host_readable(lc->owner, rte_pktmbuf_mtod(seg, void *), seg->data_len) ?
		       0 : -EFAULT;
	return pool_check(lc, seg->pool);
}

static int mbufs_readable(struct placer_lcore *lc, int dev, struct rte_mbuf **mbufs, uint16_t n)
{
	if (lc->owner->ordinals[dev] < 0)
		return 0;
	for (uint16_t i = 0; i < n; i++)
		for (struct rte_mbuf *seg = mbufs[i]; seg != NULL; seg = seg->next)
			if (segment_readable(lc, seg) != 0)
				return -EFAULT;
	return 0;
}

/* Kernel launches (launch mode, and a resident kernel's restart) go to the
 * calling thread's current device: the device of the sink submitted to. */
static int lcore_device_set(struct placer_lcore *lc, int dev)
{
#ifdef DJ_HAVE_CUDA
	int ordinal = lc->owner->ordinals[dev];

	if (ordinal >= 0 && lc->cur_ordinal != ordinal) {
		int rc = djg_dp_device_use(ordinal);

		if (rc != 0)
			return rc;
		lc->cur_ordinal = ordinal;
	}
#else
	(void)lc;
	(void)dev;
#endif
	return 0;
}

static int submit(struct djg_rx_sink *sink, const struct djg_copy *copies, uint16_t n_copies,
		  struct rte_mbuf **mbufs, uint16_t n)
{
	uint64_t deadline = 0;
	int rc;

	while ((rc = djg_rx_sink_submit(sink, copies, n_copies, (void **)mbufs, n)) == -EAGAIN) {
		uint64_t now = djc_time_ns();

		if (deadline == 0)
			deadline = now + SUBMIT_RETRY_NS;
		else if (now > deadline)
			break;
	}
	return rc;
}

/* Hand copies (all for device dev) and the burst's mbufs to dev's sink,
 * which then holds one reference to each mbuf. 0, or why it could not. */
static int hand_over(struct placer_lcore *lc, int dev, const struct djg_copy *copies,
		     uint16_t n_copies, struct rte_mbuf **mbufs, uint16_t n)
{
	int rc = lcore_device_set(lc, dev);

	if (rc == 0)
		rc = mbufs_readable(lc, dev, mbufs, n);
	if (rc == 0) {
		lc->held += n; /* before the submit: a host sink releases at once */
		rc = submit(lc->sinks[dev], copies, n_copies, mbufs, n);
		if (rc != 0)
			lc->held -= n;
	}
	return rc;
}

/* Poll every sink: give back what the GPUs have read. */
static int sinks_poll(struct placer_lcore *lc)
{
	int rc = 0;

	for (unsigned int d = 0; d < lc->owner->n_devs && rc >= 0; d++)
		rc = djg_rx_sink_poll(lc->sinks[d]);
	return rc;
}

/* Above the cap, wait for the GPUs (they read a burst in microseconds). */
static int held_trim(struct placer_lcore *lc)
{
	uint64_t deadline = 0;
	int rc = sinks_poll(lc);

	while (rc >= 0 && lc->held + lc->n_pend > PLACER_MAX_HELD) {
		uint64_t now = djc_time_ns();

		if (deadline == 0)
			deadline = now + SYNC_TIMEOUT_NS;
		else if (now > deadline)
			return -ETIMEDOUT;
		rc = sinks_poll(lc);
	}
	return rc < 0 ? rc : 0;
}

/* Each mbuf (every segment) gets @extra more references. */
static void mbufs_ref(struct rte_mbuf **mbufs, uint16_t n, int16_t extra)
{
	for (uint16_t i = 0; i < n; i++)
		for (struct rte_mbuf *seg = mbufs[i]; seg != NULL; seg = seg->next)
			rte_mbuf_refcnt_update(seg, extra);
}

/*
 * A burst whose fragments go to several devices: the copies grouped by
 * device, each group with the whole burst to its device's sink, one mbuf
 * reference per device. A group its sink refuses is copied now and gives
 * its reference back. Returns 1 where no sink took the burst (the engine
 * frees the last reference), else 0.
 */
static int burst_mixed(struct placer_lcore *lc, struct rte_mbuf **mbufs, uint16_t n)
{
	struct djg_dp_placer *p = lc->owner;
	uint16_t start[DJG_PLACER_MAX_DEVS + 1] = {0}, fill[DJG_PLACER_MAX_DEVS];
	int k = __builtin_popcount(lc->dev_mask), taken = 0, refused = 0;

	for (uint16_t i = 0; i < lc->n_copies; i++)
		start[lc->copy_dev[i] + 1]++;
	for (unsigned int d = 0; d < p->n_devs; d++) {
		start[d + 1] += start[d];
		fill[d] = start[d];
	}
	for (uint16_t i = 0; i < lc->n_copies; i++)
		lc->grouped[fill[lc->copy_dev[i]]++] = lc->copies[i];
	mbufs_ref(mbufs, n, (int16_t)(k - 1));
	for (unsigned int d = 0; d < p->n_devs; d++) {
		uint16_t cnt = start[d + 1] - start[d];

		if (cnt == 0)
			continue;
		if (hand_over(lc, (int)d, &lc->grouped[start[d]], cnt, mbufs, n) == 0) {
			taken++;
			continue;
		}
		copy_list_now(lc, &lc->grouped[start[d]], NULL, (uint8_t)d, cnt);
		refused++;
	}
	/* The references of refused groups go back; where nobody took the
	 * burst, the engine's own is left for the engine to free. */
	for (int r = taken == 0 ? 1 : 0; r < refused; r++)
		rte_pktmbuf_free_bulk(mbufs, n);
	lc->mixed_bursts++;
	return taken == 0;
}

/*
 * Start gathering copies[0..n_copies) out of mbufs[0..n): hand them to the
 * sinks, or copy them now where no sink takes them. Returns 1 where nobody
 * kept the mbufs (the caller frees them), 0 where the sinks hold them.
 */
static int gather_start(struct placer_lcore *lc, struct rte_mbuf **mbufs, uint16_t n)
{
	int rc = -E2BIG;

	if (n <= PLACER_MAX_BUFS && lc->n_copies > 0 && lc->mixed) {
		rc = burst_mixed(lc, mbufs, n);
		lc->n_copies = 0;
		if (unlikely(held_trim(lc) != 0))
			lc->failures++;
		return rc;
	}
	if (n <= PLACER_MAX_BUFS)
		rc = hand_over(lc, lc->n_copies > 0 ? lc->first_dev : 0, lc->copies, lc->n_copies,
			       mbufs, n);
	if (unlikely(rc != 0)) {
		copy_now(lc);
		return 1; /* copied: the caller frees the mbufs now */
	}
	lc->n_copies = 0;
	if (unlikely(held_trim(lc) != 0))
		lc->failures++; /* the GPU stopped reading: sync() reports it */
	return 0;
}

/* The open gather burst goes to the GPUs, full or not. */
static void gather_flush(struct placer_lcore *lc)
{
	uint16_t n = lc->n_pend;

	if (n == 0)
		return;
	lc->n_pend = 0;
	/* No copies left: an overflow copied them already (place()). */
	if (lc->n_copies == 0 || gather_start(lc, lc->pend, n) != 0)
		rte_pktmbuf_free_bulk(lc->pend, n);
}

static void flush(void *state)
{
	gather_flush(state);
}

/*
 * An rx burst placed: its mbufs join the lcore's open gather burst, which
 * goes to the GPUs once one more rx burst would take it past gather_burst
 * fragments (one kernel burst of 128 MTU-size fragments reads faster than
 * four of 32), or at flush() or sync(). A gather burst of one rx burst or
 * less hands each rx burst over at once, as it comes.
 */
static int burst_end(void *state, struct rte_mbuf **mbufs, uint16_t n)
{
	struct placer_lcore *lc = state;

	/* Everything went into chunks: the mbufs are the engine's again. */
	if (lc->owner->mover == DJG_MOVER_COPY && lc->n_copies == 0)
		return 1;
	if (lc->gather_burst <= PLACER_RX_BURST && lc->n_pend == 0)
		return gather_start(lc, mbufs, n);
	if (unlikely(n > PLACER_MAX_BUFS - lc->n_pend)) {
		/* Bursts larger than the engine's: copied now, never lost. */
		copy_now(lc);
		rte_pktmbuf_free_bulk(lc->pend, lc->n_pend);
		lc->n_pend = 0;
		return 1;
	}
	memcpy(&lc->pend[lc->n_pend], mbufs, n * sizeof(*mbufs));
	lc->n_pend += n;
	if (lc->n_copies + PLACER_RX_BURST > lc->gather_burst)
		gather_flush(lc);
	return 0;
}

static int sync_all(void *state)
{
	struct placer_lcore *lc = state;
	int rc = 0;

	/* The open gather burst first: a receive's last fragment may be in it. */
	gather_flush(lc);
	copy_now(lc); /* placed but not handed over yet: the mbufs are still alive */
	for (unsigned int d = 0; d < lc->owner->n_devs; d++) {
		int r = djg_rx_sink_drain(lc->sinks[d], SYNC_TIMEOUT_NS);

		/* The partial chunk goes now; the receive completes only after
		 * its last copy. */
		if (r == 0 && lc->packers[d] != NULL)
			r = djg_packer_drain(lc->packers[d]);
		rc = rc != 0 ? rc : r;
	}
	/* A receive ended: its destination may be freed, and its address
	 * reused on another device. */
	lc->last_dest = NULL;
	if (rc == 0 && lc->failures != lc->failures_reported)
		rc = -EIO;
	lc->failures_reported = lc->failures;
	return rc;
}

static void packers_destroy(struct placer_lcore *lc)
{
	for (unsigned int d = 0; d < DJG_PLACER_MAX_DEVS; d++) {
		djg_cuda_packer_destroy(lc->chunks[d]); /* drains first */
		lc->chunks[d] = NULL;
		lc->packers[d] = NULL;
	}
}

static void sinks_destroy(struct placer_lcore *lc)
{
	for (unsigned int d = 0; d < DJG_PLACER_MAX_DEVS; d++) {
		djg_rx_sink_destroy(lc->sinks[d]); /* drains, then frees what it holds */
		lc->sinks[d] = NULL;
	}
	packers_destroy(lc);
}

/* COPY mover: chunks for each GPU device, on this lcore's socket. */
static int packers_create(struct placer_lcore *lc)
{
	const struct djg_dp_placer *p = lc->owner;
	int rc = 0;

	for (unsigned int d = 0; d < p->n_devs && rc == 0; d++) {
		if (p->ordinals[d] < 0)
			continue;
		rc = djg_cuda_packer_create(p->reg_dev, p->ordinals[d],
					    p->conf.chunk_size != 0 ? p->conf.chunk_size :
					    DJG_RX_CHUNK_SIZE,
					    p->conf.n_chunks != 0 ? p->conf.n_chunks : DJG_RX_CHUNKS,
					    (int)rte_socket_id(), &lc->chunks[d]);
		if (rc == 0)
			lc->packers[d] = djg_cuda_packer_get(lc->chunks[d]);
	}
	return rc;
}

/*
 * List lc in the placer's first free slot. The caller's index does not key
 * the list: the engine passes its queue index, and several engines (or a
 * bench's receive threads) may share one placer, each with a queue 0.
 * Every state gets a slot of its own, so none hides another's statistics
 * or is unlisted when another goes. -ENOSPC when PLACER_MAX_LCORES states
 * are listed.
 */
static int lcore_list(struct djg_dp_placer *p, struct placer_lcore *lc)
{
	unsigned int i;
	int rc = -ENOSPC;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < PLACER_MAX_LCORES && p->lcores[i] != NULL; i++)
		;
	if (i < PLACER_MAX_LCORES) {
		lc->slot = i;
		p->lcores[i] = lc;
		p->n_lcores++;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int lcore_init(void *ctx, unsigned int idx, void **state)
{
	struct djg_dp_placer *p = ctx;
	struct djg_rx_sink_conf sc = {
		.max_copies = PLACER_MAX_COPIES,
		.max_bufs = PLACER_MAX_BUFS,
		.mode = p->conf.mode,
		.blocks = p->conf.blocks,
		.frag_size = p->conf.frag_size,
		.release = release_mbufs,
	};
	struct placer_lcore *lc;
	int rc = 0;

	lc = aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(sizeof(*lc), RTE_CACHE_LINE_SIZE));
	if (lc == NULL)
		return -ENOMEM;
	memset(lc, 0, sizeof(*lc));
	lc->owner = p;
	lc->idx = idx;
	lc->cur_ordinal = -2;
	lc->gather_burst = p->gather_burst;
	sc.release_arg = lc;
	for (unsigned int d = 0; d < p->n_devs && rc == 0; d++) {
		sc.dev_id = p->dev_ids[d];
		rc = djg_rx_sink_create(&sc, &lc->sinks[d]);
	}
	/* Without chunks (pinned memory is short) this lcore's fragments go
	 * to the gather kernel, as under the gather mover: slower, not lost. */
	if (rc == 0 && p->mover == DJG_MOVER_COPY && packers_create(lc) != 0) {
		DJC_LOG(DJ_LOG_WARN, DJG_LOG, "dp placer: lcore %u gathers instead of packing "
		       "chunks", idx);
		packers_destroy(lc);
	}
	if (rc != 0) {
		sinks_destroy(lc);
		free(lc);
		return rc;
	}
	rc = lcore_list(p, lc);
	if (rc != 0) {
		sinks_destroy(lc);
		free(lc);
		return rc;
	}
	*state = lc;
	return 0;
}

/* The last lcore gone: no kernel reads the pools any more. */
static void pools_unregister(struct djg_dp_placer *p)
{
	for (unsigned int i = 0; i < p->n_pools; i++)
		djg_mempool_unregister(p->reg_dev, p->pools[i]);
	p->n_pools = 0;
}

static void lcore_fini(void *state)
{
	struct placer_lcore *lc = state;
	struct djg_dp_placer *p = lc->owner;

	gather_flush(lc);
	copy_now(lc);
	/* Unlisted first: djg_dp_placer_stats_get() must not read sinks and
	 * packers being freed. */
	pthread_mutex_lock(&p->lock);
	p->lcores[lc->slot] = NULL;
	pthread_mutex_unlock(&p->lock);
	sinks_destroy(lc);
	pthread_mutex_lock(&p->lock);
	if (--p->n_lcores == 0)
		pools_unregister(p);
	pthread_mutex_unlock(&p->lock);
	free(lc);
}

static int copy_out(void *ctx, void *dst, const void *src, size_t len)
{
	const struct djg_dp_placer *p = ctx;
	int ordinal = p->ordinals[device_of(p, src)];

	if (ordinal < 0) {
		memcpy(dst, src, len);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	return djg_cuda_copy(ordinal, dst, src, len, 0);
#else
	return -DJ_ENOGPU;
#endif
}

/* ---- send staging ------------------------------------------------------------ */

/* The stage's stream and events, on the device they were made on. */
static void stage_cuda_fini(struct placer_stage *st)
{
#ifdef DJ_HAVE_CUDA
	djg_stream_destroy(st->stream); /* waits for copies in flight */
	for (unsigned int i = 0; i < DP_STAGE_MAX_SLOTS; i++) {
		djg_event_destroy(st->events[i]);
		st->events[i] = NULL;
	}
	st->stream = NULL;
#endif
	st->dev = NO_DEVICE;
}

static void stage_free(struct placer_stage *st)
{
	const struct djg_dp_placer *p = st->owner;

	if (st->dev != NO_DEVICE)
		stage_cuda_fini(st);
	if (st->registered)
		djg_host_unregister(p->reg_dev, st->host);
	rte_free(st->host);
	free(st);
}

/* Stream and events on device dev's GPU (the stream call makes it this
 * thread's device, so the events belong to it too): a send stages on the
 * GPU its source lies on. */
static int stage_cuda_init(struct placer_stage *st, int dev)
{
#ifdef DJ_HAVE_CUDA
	struct djg_dp_placer *p = st->owner;
	int rc = djg_stream_create(p->ordinals[dev], &st->stream);

	st->dev = dev;
	for (unsigned int i = 0; rc == 0 && i < DP_STAGE_MAX_SLOTS; i++)
		rc = djg_event_create(&st->events[i]);
	return rc;
#else
	(void)st;
	(void)dev;
	return -DJ_ENOGPU;
#endif
}

static int stage_new(struct djg_dp_placer *p, size_t bytes, int socket,
		     struct placer_stage **out)
{
	struct placer_stage *st = calloc(1, sizeof(*st));
	int rc = 0;

	if (st == NULL)
		return -ENOMEM;
	st->owner = p;
	st->socket = socket;
	st->dev = NO_DEVICE;
	st->bytes = RTE_ALIGN_CEIL(bytes, DJG_PAGE_SIZE);
	st->host = rte_malloc_socket("dj_gpu_send_stage", st->bytes, DJG_PAGE_SIZE, socket);
	if (st->host == NULL)
		rc = -ENOMEM;
	else if (p->reg_dev != DJG_HOST)
		rc = djg_host_register(p->reg_dev, st->host, st->bytes);
	st->registered = rc == 0 && p->reg_dev != DJG_HOST;
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "dp placer: send stage of %zu B: %s", st->bytes,
		       dj_strerror(rc));
		stage_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* The smallest cached stage on socket that is big enough, unlinked; NULL
 * if none. */
static struct placer_stage *stage_cached(struct djg_dp_placer *p, size_t bytes, int socket)
{
	struct placer_stage **best = NULL, *st;

	pthread_mutex_lock(&p->lock);
	for (struct placer_stage **pp = &p->stages; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->bytes >= bytes && (*pp)->socket == socket &&
		    (best == NULL || (*pp)->bytes < (*best)->bytes))
			best = pp;
	st = best != NULL ? *best : NULL;
	if (st != NULL) {
		*best = st->next;
		p->n_stages--;
	}
	pthread_mutex_unlock(&p->lock);
	return st;
}

static int stage_get(void *ctx, size_t slot_bytes, unsigned int slots, int socket, void **stage,
		     void **host)
{
	struct djg_dp_placer *p = ctx;
	size_t bytes = slot_bytes * slots;
	struct placer_stage *st;
	int rc = 0;

	if (slots == 0 || slots > DP_STAGE_MAX_SLOTS || slot_bytes == 0)
		return -EINVAL;
	st = stage_cached(p, bytes, socket);
	if (st == NULL)
		rc = stage_new(p, bytes, socket, &st);
	if (rc != 0)
		return rc;
	*stage = st;
	*host = st->host;
	return 0;
}

static void stage_put(void *ctx, void *stage)
{
	struct djg_dp_placer *p = ctx;
	struct placer_stage *st = stage;

#ifdef DJ_HAVE_CUDA
	/* The next owner must not see this send's copies land. */
	if (!st->failed && st->dev != NO_DEVICE && djg_stream_sync(st->stream) != 0)
		st->failed = true;
#endif
	pthread_mutex_lock(&p->lock);
	if (!st->failed && p->n_stages < STAGE_CACHE_MAX) {
		st->next = p->stages;
		p->stages = st;
		p->n_stages++;
		st = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	if (st != NULL)
		stage_free(st);
}

static int stage_copy(void *stage, unsigned int slot, void *dst, const void *src, size_t len)
{
	struct placer_stage *st = stage;
	const struct djg_dp_placer *p = st->owner;
	int dev = device_of(p, src), rc = -DJ_ENOGPU;

	if (p->ordinals[dev] < 0) {
		memcpy(dst, src, len);
		return 0;
	}
#ifdef DJ_HAVE_CUDA
	/* A send's source is on one GPU: the stream follows it, between sends
	 * (stage_put drained the last one's copies). */
	rc = 0;
	if (st->dev == NO_DEVICE || p->ordinals[st->dev] != p->ordinals[dev]) {
		if (st->dev != NO_DEVICE)
			stage_cuda_fini(st);
		rc = stage_cuda_init(st, dev);
	}
	if (rc == 0)
		rc = djg_copy_async_host(p->reg_dev, st->stream, dst, src, len, false);
	if (rc == 0)
		rc = djg_event_record(st->events[slot], st->stream);
#else
	(void)slot;
#endif
	st->failed |= rc != 0;
	return rc;
}

static int stage_poll(void *stage, unsigned int slot)
{
	struct placer_stage *st = stage;
	int rc = 1;

	if (st->dev == NO_DEVICE)
		return 1; /* host memory: copied at once */
#ifdef DJ_HAVE_CUDA
	rc = djg_event_done(st->events[slot]);
#else
	(void)slot;
#endif
	st->failed |= rc < 0;
	return rc;
}

static void stages_free(struct djg_dp_placer *p)
{
	while (p->stages != NULL) {
		struct placer_stage *st = p->stages;

		p->stages = st->next;
		stage_free(st);
	}
	p->n_stages = 0;
}

int djg_find_cuda(int ordinal)
{
	int n = djg_count();

	if (n == 0)
		return -DJ_ENOGPU;
	for (int i = 0; i < n; i++) {
		struct djg_info info;

		if (djg_info_get(i, &info) == 0 && djg_ordinal(info.dev_id) == ordinal)
			return info.dev_id;
	}
	return -ENODEV;
}

/* The placer's devices from conf: one (dev_id) or a list; each GPU's CUDA
 * ordinal. */
static int devices_set(struct djg_dp_placer *p, const struct djg_dp_placer_conf *conf)
{
	p->n_devs = conf->n_devs > 0 ? conf->n_devs : 1;
	if (p->n_devs > DJG_PLACER_MAX_DEVS)
		return -EINVAL;
	p->reg_dev = DJG_HOST;
	for (unsigned int i = 0; i < p->n_devs; i++) {
		int16_t dev_id = conf->n_devs > 0 ? conf->dev_ids[i] : conf->dev_id;

		p->dev_ids[i] = dev_id;
		p->ordinals[i] = dev_id == DJG_HOST ? -1 : djg_ordinal(dev_id);
		if (dev_id != DJG_HOST && p->ordinals[i] < 0)
			return p->ordinals[i];
		if (dev_id != DJG_HOST && p->reg_dev == DJG_HOST)
			p->reg_dev = dev_id;
	}
	return 0;
}

/*
 * The mover a placer uses: the one asked for, or for AUTO the faster of
 * the two on this host, measured once on the first GPU with the placer's
 * fragment size. A failed measurement leaves the gather kernel, which
 * needs nothing the measurement could not get.
 */
static void mover_choose(struct djg_dp_placer *p)
{
	struct djg_rx_mover_probe pr = {.frag_size = p->conf.frag_size,
					.chunk_size = p->conf.chunk_size,
					.n_chunks = p->conf.n_chunks};
	int rc;

	p->mover = p->conf.mover;
	if (p->reg_dev == DJG_HOST) {
		if (p->mover == DJG_MOVER_AUTO)
			p->mover = DJG_MOVER_GATHER; /* host memory: memcpy either way */
		return;
	}
	if (p->mover != DJG_MOVER_AUTO)
		return;
	rc = djg_rx_mover_measure(p->reg_dev, &pr);
	p->mover = rc == 0 && pr.copy_gbytes_s > pr.gather_gbytes_s ? DJG_MOVER_COPY
								     : DJG_MOVER_GATHER;
	p->gather_gbytes_s = pr.gather_gbytes_s;
	p->copy_gbytes_s = pr.copy_gbytes_s;
	DJC_LOG(DJ_LOG_NOTICE, DJG_LOG, "dp placer: %u B fragments: gather %.1f GB/s, copy "
	       "engine %.1f GB/s (cudaMemcpy %.1f, measured in %.0f ms): %s%s",
	       pr.frag_size, pr.gather_gbytes_s, pr.copy_gbytes_s, pr.memcpy_gbytes_s,
	       pr.seconds * 1e3, djg_rx_mover_name(p->mover),
	       rc != 0 ? " (measurement failed)" : "");
}

uint16_t djg_dp_placer_gather_burst(uint32_t frag_size)
{
	return frag_size < DJG_PLACER_SMALL_FRAG ? DJG_PLACER_BURST_SMALL : 1;
}

int djg_dp_placer_create(const struct djg_dp_placer_conf *conf,
			    struct djg_dp_placer **out)
{
	struct djg_dp_placer *p;
	int rc;

	if (conf == NULL || out == NULL ||
	    (conf->mode != DJG_GATHER_PERSISTENT && conf->mode != DJG_GATHER_LAUNCH) ||
	    (unsigned int)conf->mover > DJG_MOVER_COPY ||
	    (conf->n_chunks != 0 && (conf->n_chunks < 2 || conf->n_chunks > DJG_PACKER_MAX_CHUNKS)) ||
	    (conf->chunk_size != 0 && (conf->chunk_size < 65536 || conf->chunk_size < conf->frag_size)) ||
	    conf->gather_burst > DJG_PLACER_BURST_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->conf = *conf;
	rc = devices_set(p, conf);
	if (rc != 0) {
		free(p);
		return rc;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->gather_burst = conf->gather_burst != 0 ? conf->gather_burst :
			  djg_dp_placer_gather_burst(conf->frag_size);
	mover_choose(p);
	p->ops = (struct dp_engine_placer){
		.lcore_init = lcore_init,
		.lcore_fini = lcore_fini,
		.place = place,
		.burst_end = burst_end,
		.sync = sync_all,
		.flush = flush,
		.ctx = p,
		.copy_out = copy_out,
		.stage_get = stage_get,
		.stage_put = stage_put,
		.stage_copy = stage_copy,
		.stage_poll = stage_poll,
	};
	*out = p;
	return 0;
}

const struct dp_engine_placer *djg_dp_placer_ops(const struct djg_dp_placer *p)
{
	return p != NULL ? &p->ops : NULL;
}

static void sink_stats_add(struct djg_rx_sink_stats *to, const struct djg_rx_sink_stats *s)
{
	to->path = s->path;
	to->mode = s->mode;
	to->bursts += s->bursts;
	to->copies += s->copies;
	to->bytes += s->bytes;
	to->completed += s->completed;
	to->rejected += s->rejected;
	to->ring_full += s->ring_full;
	to->generations += s->generations;
}

void djg_dp_placer_stats_get(struct djg_dp_placer *p, struct djg_dp_placer_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&p->lock);
	st->n_devs = (uint16_t)p->n_devs;
	for (unsigned int i = 0; i < PLACER_MAX_LCORES; i++) {
		const struct placer_lcore *lc = p->lcores[i];

		if (lc == NULL)
			continue;
		for (unsigned int d = 0; d < p->n_devs; d++) {
			struct djg_rx_sink_stats s;

			djg_rx_sink_stats_get(lc->sinks[d], &s);
			sink_stats_add(&st->sink, &s);
			st->dev[d].bytes += s.bytes;
			st->dev[d].copies += s.copies;
			st->dev[d].bursts += s.bursts;
		}
		for (unsigned int d = 0; d < p->n_devs; d++) {
			struct djg_packer_stats ps;

			if (lc->packers[d] == NULL)
				continue;
			djg_packer_stats_get(lc->packers[d], &ps);
			st->dev[d].bytes += ps.bytes;
			st->dev[d].copies += ps.fragments;
			st->chunk_bytes += ps.bytes;
			st->chunks += ps.chunks;
			st->chunk_copies += ps.copies;
			st->chunk_waits += ps.waits;
		}
		st->direct_copies += lc->direct_copies;
		st->failures += lc->failures;
		st->mixed_bursts += lc->mixed_bursts;
	}
	st->pools = p->n_pools;
	st->mover = p->mover;
	st->mover_asked = p->conf.mover;
	st->gather_gbytes_s = p->gather_gbytes_s;
	st->copy_gbytes_s = p->copy_gbytes_s;
	pthread_mutex_unlock(&p->lock);
}

void djg_dp_placer_destroy(struct djg_dp_placer *p)
{
	if (p == NULL)
		return;
	if (p->n_lcores != 0)
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "dp placer destroyed while %u lcores use it "
		       "(destroy the data plane first)", p->n_lcores);
	stages_free(p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
