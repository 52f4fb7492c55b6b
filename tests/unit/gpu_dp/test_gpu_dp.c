/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The GPU module's data-plane placer (djg_dp_placer) under the real
 * engine: two engines over a net_ring pair in one process, real rx mbufs.
 *
 *   test_gpu_dp        host placer (DJG_HOST): runs everywhere
 *   test_gpu_dp gpu    receives into and sends from GPU memory through the
 *                      staged sink (persistent and launch kernels); exits
 *                      77 (skipped) where no GPU is usable
 *
 * A placer of two devices (the same GPU twice, or host memory twice: two
 * logical devices with a sink each) gathers every receive into the device
 * its destination lies on, sends from either, and splits a burst whose
 * fragments go to both (one mbuf reference per device, none lost or freed
 * twice). Several receive threads place into one destination at once, each
 * on a placer state of its own.
 *
 * Every transfer is checked byte for byte (GPU memory copied back), with
 * guard bytes around the destination that must stay untouched; more data
 * than the rx mempool holds goes through, so mbufs must come back.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_ring.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "harness.h"
#include "ring_pair.h"

#define IP_A 0x0a640001u
#define IP_B 0x0a640002u
#define COOKIE 0x6770756470000001ull
#define GUARD 64
#define GUARD_BYTE 0x5a

static int16_t dev = DJG_HOST;
static struct djg_pool *pool;   /* "device" memory: GPU, or host for DJG_HOST */
static uint32_t next_id = 1;

struct duo {
	struct djg_dp_placer *placer;
	struct dp_engine_placer ops; /* the placer's, as the test changed them */
	struct dp_engine *a, *b;     /* both use ops */
};

struct duo_conf {
	enum djg_gather_mode mode;
	int two_devices;         /* the placer serves dev twice (logical devices) */
	const char *impair;      /* in-line impairment on b's transmissions */
	uint32_t stage_slots;    /* b's staging ring for GPU sources; 0: default */
	enum djg_rx_mover mover; /* GPU receives: gather kernel or chunks */
	uint32_t chunk_size;     /* copy mover; 0: default */
	uint16_t n_chunks;
	uint16_t frame_size;     /* both ports; 0: 9014 (jumbo) */
	uint16_t gather_burst;   /* the placer's; 0: its default for the frames */
	/* Change the placer's callbacks (failure injection); NULL: keep them. */
	void (*wrap)(struct dp_engine_placer *ops);
};

static int engine_create(uint16_t port, uint32_t ip, const struct dp_engine_placer *placer,
			 const struct duo_conf *dc, struct dp_engine **dp)
{
	struct dp_engine_config cfg = {0};

	cfg.placer = placer;
	cfg.port.port_id = port;
	cfg.port.frame_size = dc != NULL && dc->frame_size != 0 ? dc->frame_size : 9014;
	cfg.local.ipv4 = ip;
	if (dc != NULL) {
		cfg.impair = dc->impair;
		cfg.stage_slots = dc->stage_slots;
	}
	return dp_engine_create(&cfg, dp);
}

/* Logical device 1 is the address range the test says; everything else
 * is device 0 (on one GPU CUDA's pointer attributes cannot tell them). */
static uintptr_t dev1_lo, dev1_hi;

static int test_device_of(void *arg, const void *addr)
{
	return (uintptr_t)addr >= dev1_lo && (uintptr_t)addr < dev1_hi ? 1 : 0;
}

static void two_devices_conf(struct djg_dp_placer_conf *pc)
{
	pc->n_devs = 2;
	pc->dev_ids[0] = pc->dev_ids[1] = dev;
	pc->device_of = test_device_of;
}

static void duo_start_conf(struct duo *d, const struct duo_conf *dc)
{
	struct djg_dp_placer_conf pc = {.dev_id = dev, .mode = dc->mode,
					   .frag_size = dc->frame_size != 0 ? dc->frame_size : 8000,
					   .gather_burst = dc->gather_burst,
					   .mover = dc->mover == DJG_MOVER_AUTO ? DJG_MOVER_GATHER
										: dc->mover,
					   .chunk_size = dc->chunk_size, .n_chunks = dc->n_chunks};
	struct duo_conf a_conf = {.frame_size = dc->frame_size}; /* the frames alone */
	struct dp_endpoint ea, eb;
	uint16_t pa, pb;

	if (dc->two_devices)
		two_devices_conf(&pc);
	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &d->placer), 0);
	d->ops = *djg_dp_placer_ops(d->placer);
	if (dc->wrap != NULL)
		dc->wrap(&d->ops);
	dj_test_ring_pair(&pa, &pb, NULL);
	CU_ASSERT_EQUAL_FATAL(engine_create(pa, IP_A, &d->ops, &a_conf, &d->a), 0);
	CU_ASSERT_EQUAL_FATAL(engine_create(pb, IP_B, &d->ops, dc, &d->b), 0);
	dp_engine_endpoint(d->a, &ea);
	dp_engine_endpoint(d->b, &eb);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d->a, 9, COOKIE, &eb), 0);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d->b, 9, COOKIE, &ea), 0);
}

static void duo_start(struct duo *d, enum djg_gather_mode mode)
{
	struct duo_conf dc = {.mode = mode, .mover = DJG_MOVER_GATHER};

	duo_start_conf(d, &dc);
}

/* Both lcores stop before either engine frees its pools: a running lcore
 * would otherwise free frames of the other engine still in its rx ring
 * (ACKs, or the last fragments of a send) into a destroyed mempool. */
static void duo_stop(struct duo *d)
{
	dp_engine_quiesce(d->a);
	dp_engine_quiesce(d->b);
	dp_engine_destroy(d->a);
	dp_engine_destroy(d->b);
	djg_dp_placer_destroy(d->placer);
}

static uint8_t *random_bytes(size_t len, unsigned int seed)
{
	uint8_t *p = malloc(len + 1);

	CU_ASSERT_FATAL(p != NULL);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(rand_r(&seed) >> 7);
	return p;
}

/* Device buffer of len bytes between guards, at a misaligned offset when
 * odd is set; *base receives the whole allocation. */
static uint8_t *device_buffer(size_t len, int odd, void **base)
{
	size_t total = len + 2 * GUARD + 8;
	uint8_t *guards = malloc(total);

	CU_ASSERT_FATAL(guards != NULL);
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, total, base), 0);
	memset(guards, GUARD_BYTE, total);
	CU_ASSERT_EQUAL_FATAL(djg_pool_copy_in(pool, *base, guards, total), 0);
	free(guards);
	return (uint8_t *)*base + GUARD + (odd ? 3 : 0);
}

/* Copy the device buffer back: the payload must match want, the guards
 * must be intact. */
static void device_check(void *base, size_t len, int odd, const uint8_t *want)
{
	size_t total = len + 2 * GUARD + 8, at = GUARD + (odd ? 3 : 0);
	uint8_t *back = malloc(total);
	size_t bad_guard = 0;

	CU_ASSERT_FATAL(back != NULL);
	/* not fatal: the case goes on to stop its engines */
	if (djg_pool_copy_out(pool, back, base, total) != 0) {
		CU_FAIL("device memory not readable after the transfer");
		free(back);
		return;
	}
	CU_ASSERT_EQUAL(memcmp(back + at, want, len), 0);
	for (size_t i = 0; i < total; i++)
		bad_guard += (i < at || i >= at + len) && back[i] != GUARD_BYTE;
	CU_ASSERT_EQUAL(bad_guard, 0);
	free(back);
}

/* Host -> device memory through the placer's sink. net_ring hands the
 * receiver the sender's zero-copy frames, whose payload is src itself:
 * registered with the GPU, so that the gather kernel reads it (unregistered
 * it would go through the synchronous copy, counted as direct). Whole
 * pages: CUDA registers pages, and a heap buffer sharing one with src
 * would then look registered to cudaMemcpy, which refuses copies that run
 * past a registration ("invalid argument"). */
static void receive_check(struct duo *d, size_t len, int odd)
{
	uint32_t id = next_id++;
	size_t pages = RTE_ALIGN_CEIL(len, 4096);
	uint8_t *heap = random_bytes(len, dj_test_seed() + id);
	uint8_t *src = aligned_alloc(4096, pages);
	void *base;
	uint8_t *dst = device_buffer(len, odd, &base);

	CU_ASSERT_FATAL(src != NULL);
	memcpy(src, heap, len);
	free(heap);
	CU_ASSERT_EQUAL_FATAL(djg_host_register(dev, src, pages), 0);
	CU_ASSERT_EQUAL(dp_engine_expect(d->b, COOKIE, id, dst, len, DJ_MEM_GPU), 0);
	CU_ASSERT_EQUAL(dp_engine_send(d->a, COOKIE, id, src, len, DJ_MEM_HOST, 30000), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d->b, COOKIE, id, 30000), 0);
	device_check(base, len, odd, src);
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	CU_ASSERT_EQUAL(djg_host_unregister(dev, src), 0);
	free(src);
}

/* Device memory -> host, sent by b: dp_engine_send() must return want;
 * on success the bytes match, otherwise the receiver hears of the abort. */
static void send_expect(struct duo *d, size_t len, int want)
{
	uint32_t id = next_id++;
	uint8_t *bytes = random_bytes(len, dj_test_seed() + id);
	uint8_t *got = calloc(1, len + 1);
	void *base;
	uint8_t *src = device_buffer(len, 1, &base);

	CU_ASSERT_FATAL(got != NULL);
	CU_ASSERT_EQUAL_FATAL(djg_pool_copy_in(pool, src, bytes, len), 0);
	CU_ASSERT_EQUAL(dp_engine_expect(d->a, COOKIE, id, got, len, DJ_MEM_HOST), 0);
	/* a's lcore must have taken the receive before b sends (it runs
	 * commands in order, the probe's after it): a send failing at once
	 * sends its ABORT at once, which would find no transfer (only the idle
	 * timeout would end the receive), and on a loaded machine the first
	 * fragments could arrive first too, rejected as of an unknown transfer
	 * (resent, but counted among the rejections test_staged_lossy checks).
	 * Under impairment the pong may be lost: the answer is what counts. */
	if (want != 0) {
		CU_ASSERT_EQUAL(dp_engine_probe(d->a, COOKIE, 5000, NULL), 0);
	} else {
		CU_ASSERT(dp_engine_probe(d->a, COOKIE, 200, NULL) != -EDEADLK);
	}
	CU_ASSERT_EQUAL(dp_engine_send(d->b, COOKIE, id, src, len, DJ_MEM_GPU, 30000), want);
	if (want == 0) {
		CU_ASSERT_EQUAL(dp_engine_wait(d->a, COOKIE, id, 30000), 0);
		CU_ASSERT_EQUAL(memcmp(got, bytes, len), 0);
	} else {
		CU_ASSERT_EQUAL(dp_engine_wait(d->a, COOKIE, id, 30000), -DJ_EPEER);
	}
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	free(got);
	free(bytes);
}

static void send_check(struct duo *d, size_t len)
{
	send_expect(d, len, 0);
}

static const size_t sizes[] = {1, 1000, 8943, 8945, (1u << 20) + 17, 64u << 20};

static void transfers_in_mode(enum djg_gather_mode mode)
{
	struct djg_dp_placer_stats st;
	struct duo d;
	uint64_t bytes = 0;

	duo_start(&d, mode);
	for (size_t i = 0; i < RTE_DIM(sizes); i++) {
		receive_check(&d, sizes[i], (int)(i & 1));
		send_check(&d, sizes[i]);
		bytes += sizes[i];
	}
	djg_dp_placer_stats_get(d.placer, &st);
	/* More than the rx mempool holds (6144 mbufs) went through the sink:
	 * it gave the mbufs back. */
	CU_ASSERT_EQUAL(st.sink.bytes, bytes);
	CU_ASSERT(st.sink.copies >= bytes / 8944);
	CU_ASSERT_EQUAL(st.sink.rejected, 0);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	CU_ASSERT_EQUAL(st.failures, 0);
	CU_ASSERT_EQUAL(st.sink.path, dev == DJG_HOST ? DJG_RX_HOST : DJG_RX_STAGED);
	/* GPU: the rx pool was registered once (host: nothing to register) */
	CU_ASSERT_EQUAL(st.pools, dev == DJG_HOST ? 0 : 1);
	/* A resident kernel leaves when a receive completes (the engine's
	 * sync drains the sink) and comes back with the next one. */
	if (dev != DJG_HOST && mode == DJG_GATHER_PERSISTENT)
		CU_ASSERT(st.sink.generations >= RTE_DIM(sizes));
	duo_stop(&d);
}

static void test_transfers_persistent(void)
{
	transfers_in_mode(DJG_GATHER_PERSISTENT);
}

static void test_transfers_launch(void)
{
	transfers_in_mode(DJG_GATHER_LAUNCH);
}

/* Every size, received through the copy mover; chunks small enough that
 * the 64 MiB transfer spans hundreds through two slots. The rx mbufs go
 * back at each burst's end (their bytes are in a chunk): no pool is
 * registered with the GPU and the gather kernels take nothing. */
static void test_transfers_copy_mover(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_PERSISTENT, .mover = DJG_MOVER_COPY,
			      .chunk_size = 256u << 10, .n_chunks = 2};
	struct djg_dp_placer_stats st;
	uint64_t bytes = 0;
	struct duo d;

	duo_start_conf(&d, &dc);
	for (size_t i = 0; i < RTE_DIM(sizes); i++) {
		receive_check(&d, sizes[i], (int)(i & 1));
		bytes += sizes[i];
	}
	djg_dp_placer_stats_get(d.placer, &st);
	CU_ASSERT_EQUAL(st.mover, DJG_MOVER_COPY);
	CU_ASSERT_EQUAL(st.mover_asked, DJG_MOVER_COPY);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	CU_ASSERT_EQUAL(st.failures, 0);
	CU_ASSERT_EQUAL(st.dev[0].bytes, bytes);
	if (dev != DJG_HOST) {
		CU_ASSERT_EQUAL(st.chunk_bytes, bytes);
		CU_ASSERT(st.chunks >= (64u << 20) / (256u << 10));
		CU_ASSERT(st.chunk_copies >= st.chunks);
		CU_ASSERT_EQUAL(st.sink.bytes, 0);
		CU_ASSERT_EQUAL(st.pools, 0);
	} else {
		/* Host memory: memcpy either way, nothing packed. */
		CU_ASSERT_EQUAL(st.chunk_bytes, 0);
		CU_ASSERT_EQUAL(st.sink.bytes, bytes);
	}
	duo_stop(&d);
}

/* AUTO measures both movers once at create (on a GPU) and keeps one. */
static void test_mover_auto(void)
{
	struct djg_dp_placer_conf pc = {.dev_id = dev, .mode = DJG_GATHER_LAUNCH,
					   .frag_size = 1416, .mover = DJG_MOVER_AUTO};
	struct djg_dp_placer_stats st;
	struct djg_dp_placer *p;

	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	djg_dp_placer_stats_get(p, &st);
	CU_ASSERT_EQUAL(st.mover_asked, DJG_MOVER_AUTO);
	CU_ASSERT(st.mover == DJG_MOVER_GATHER || st.mover == DJG_MOVER_COPY);
	if (dev == DJG_HOST) {
		CU_ASSERT_EQUAL(st.mover, DJG_MOVER_GATHER);
		CU_ASSERT_EQUAL(st.gather_gbytes_s, 0);
	} else {
		CU_ASSERT(st.gather_gbytes_s > 0);
		CU_ASSERT(st.copy_gbytes_s > 0);
		CU_ASSERT_EQUAL(st.mover, st.copy_gbytes_s > st.gather_gbytes_s ? DJG_MOVER_COPY
										  : DJG_MOVER_GATHER);
		printf("\n    mover auto at 1416 B: gather %.1f GB/s, copy %.1f GB/s -> %s\n",
		       st.gather_gbytes_s, st.copy_gbytes_s, djg_rx_mover_name(st.mover));
	}
	djg_dp_placer_destroy(p);
}

/* A receive cancelled half way leaves the placer and the engine serving. */
static void test_cancel_then_serve(void)
{
	struct duo d;
	void *base;
	uint8_t *dst;

	duo_start(&d, DJG_GATHER_LAUNCH);
	dst = device_buffer(4096, 0, &base);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, next_id, dst, 4096, DJ_MEM_GPU), 0);
	CU_ASSERT_EQUAL(dp_engine_cancel(d.b, COOKIE, next_id), 0);
	CU_ASSERT(dp_engine_wait(d.b, COOKIE, next_id, 1000) < 0);
	next_id++;
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	receive_check(&d, 300000, 1);
	send_check(&d, 300000);
	duo_stop(&d);
}

/* Without a placer (or one with no copy_out) a GPU source is refused, not
 * read by the CPU. */
static void test_gpu_source_needs_placer(void)
{
	struct dp_engine *a, *b;
	struct dp_endpoint eb;
	uint16_t pa, pb;
	uint8_t buf[64] = {0};

	dj_test_ring_pair(&pa, &pb, NULL);
	CU_ASSERT_EQUAL_FATAL(engine_create(pa, IP_A, NULL, NULL, &a), 0);
	CU_ASSERT_EQUAL_FATAL(engine_create(pb, IP_B, NULL, NULL, &b), 0);
	dp_engine_endpoint(b, &eb);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(a, 3, COOKIE, &eb), 0);
	CU_ASSERT_EQUAL(dp_engine_send(a, COOKIE, 1, buf, sizeof(buf), DJ_MEM_GPU, 100),
			-ENOTSUP);
	dp_engine_destroy(a);
	dp_engine_destroy(b);
}

/* ---- GPU sources through the staging ring ------------------------------------- */

static uint64_t frag_size(void)
{
	return dp_wire_frag_size(9000); /* engine_create's frames: 9014 B */
}

/* The engine's chunk for the default 1 MiB: whole fragments. */
static uint64_t chunk_size(void)
{
	return (1u << 20) / frag_size() * frag_size();
}

static uint64_t chunks_of(uint64_t len)
{
	return (len + chunk_size() - 1) / chunk_size();
}

/* Failure injection around the placer's real callbacks: the copy (or its
 * completion) of chunk number fail_at of the next send fails. */
static struct {
	int (*copy)(void *stage, unsigned int slot, void *dst, const void *src, size_t len);
	int (*poll)(void *stage, unsigned int slot);
	int copies_left;   /* < 0: never fail */
	bool in_poll;      /* fail the completion rather than the start */
	unsigned int slot_failed;
	bool failed;
} inject = {.copies_left = -1};

static int copy_failing(void *stage, unsigned int slot, void *dst, const void *src, size_t len)
{
	if (inject.copies_left == 0 && !inject.in_poll) {
		inject.copies_left = -1;
		inject.failed = true;
		return -EIO;
	}
	if (inject.copies_left == 0) {
		inject.copies_left = -1;
		inject.slot_failed = slot;
		inject.failed = true;
	} else if (inject.copies_left > 0) {
		inject.copies_left--;
	}
	return inject.copy(stage, slot, dst, src, len);
}

static int poll_failing(void *stage, unsigned int slot)
{
	int rc = inject.poll(stage, slot);

	if (inject.failed && inject.in_poll && slot == inject.slot_failed) {
		inject.failed = false;
		return -EIO;
	}
	return rc;
}

/* Host mode copies at once; this makes copies take COPY_NS each, one
 * after the other, as asynchronous ones on a stream would, so that bytes sent before their
 * copy landed (or from a slot refilled too early) show. */
#define COPY_NS 100000ull

static struct {
	const void *src;
	void *dst;
	size_t len;
	uint64_t due;     /* 0: landed */
} deferred[DP_STAGE_MAX_SLOTS];

/* One stream: a copy starts when the one before it is done. */
static int copy_deferred(void *stage, unsigned int slot, void *dst, const void *src, size_t len)
{
	static uint64_t stream_free;
	uint64_t now = djc_time_ns();

	(void)stage;
	stream_free = (stream_free > now ? stream_free : now) + COPY_NS;
	deferred[slot] = (typeof(deferred[0])){.src = src, .dst = dst, .len = len,
					       .due = stream_free};
	return 0;
}

/* Then the real copy (a GPU's is asynchronous too) and its completion. */
static int poll_deferred(void *stage, unsigned int slot)
{
	if (deferred[slot].due == 0)
		return inject.poll(stage, slot);
	if (djc_time_ns() < deferred[slot].due)
		return 0;
	deferred[slot].due = 0;
	CU_ASSERT_EQUAL(inject.copy(stage, slot, deferred[slot].dst, deferred[slot].src,
				    deferred[slot].len), 0);
	return inject.poll(stage, slot);
}

static void wrap_deferred(struct dp_engine_placer *ops)
{
	inject.copy = ops->stage_copy;
	inject.poll = ops->stage_poll;
	ops->stage_copy = copy_deferred;
	ops->stage_poll = poll_deferred;
}

static void wrap_failing(struct dp_engine_placer *ops)
{
	inject.copy = ops->stage_copy;
	inject.poll = ops->stage_poll;
	ops->stage_copy = copy_failing;
	ops->stage_poll = poll_failing;
}

static void fail_next_send(int after_copies, bool in_poll)
{
	inject.copies_left = after_copies;
	inject.in_poll = in_poll;
	inject.failed = false;
}

/* Every size that matters to the ring: less than a fragment, one, one
 * chunk, a byte more, and many rings' worth through 4 slots. */
static void test_staged_sizes_bounded_ring(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 4,
			      .wrap = wrap_deferred};
	const uint64_t lens[] = {1, frag_size(), chunk_size(), chunk_size() + 1, 64u << 20};
	struct dp_engine_stage_stats st;
	uint64_t chunks = 0;
	struct duo d;

	duo_start_conf(&d, &dc);
	send_check(&d, 0); /* nothing to copy: no ring */
	for (size_t i = 0; i < RTE_DIM(lens); i++) {
		send_check(&d, lens[i]);
		chunks += chunks_of(lens[i]);
	}
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT_EQUAL(st.staged_sends, RTE_DIM(lens));
	CU_ASSERT_EQUAL(st.whole_sends, 0);
	CU_ASSERT_EQUAL(st.copy_failures, 0);
	CU_ASSERT_EQUAL(st.chunks, chunks);
	/* 64 MiB went through 4 MiB of staging, every slot refilled. */
	CU_ASSERT_EQUAL(st.max_stage_bytes, 4 * chunk_size());
	CU_ASSERT_EQUAL(st.slot_reuses, chunks_of(64u << 20) - 4 + chunks_of(chunk_size() + 1) - 2);
	CU_ASSERT(st.ring_waits > 0);
	duo_stop(&d);
}

/* Which rejections, should there be any. */
static void rejects_print(const char *who, const struct dp_proto_stats *proto)
{
	for (int r = DP_REJ_NONE + 1; r < DP_REJ_COUNT; r++)
		if (r != DP_REJ_DUPLICATE && proto->rx_reject[r] != 0)
			printf("%s rejected %" PRIu64 " frames: %s\n", who, proto->rx_reject[r],
			       dp_wire_reject_name(r));
}

/* Lost and reordered fragments are resent from ring slots that later
 * chunks reuse: still byte-exact. */
static void test_staged_lossy(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 3,
			      .impair = "drop=0.05,reorder=0.05,dup=0.02,reorder_us=2000",
			      .wrap = wrap_deferred};
	struct dp_engine_stage_stats st;
	struct dp_engine_stats eng;
	struct dp_proto_stats proto;
	struct duo d;

	duo_start_conf(&d, &dc);
	send_check(&d, (16u << 20) + 5);
	send_check(&d, chunk_size() - 1);
	/* No frame carried other bytes than its CRC covers (a slot refilled
	 * under a held or duplicated frame would). */
	dp_engine_get_stats(d.a, &eng, &proto);
	rejects_print("receiver", &proto);
	CU_ASSERT_EQUAL(dp_proto_stats_rejected(&proto), 0);
	dp_engine_get_stats(d.b, &eng, &proto);
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT(proto.tx_retrans > 0);
	CU_ASSERT(eng.drops[DP_DROP_IMPAIR] > 0);
	CU_ASSERT(st.slot_reuses >= chunks_of(16u << 20) - 3);
	duo_stop(&d);
}

/* A failed copy fails its send with -EIO (the peer is told), frees nothing
 * a frame still reads, and the engine goes on serving. */
static void test_staged_copy_failure(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 4,
			      .wrap = wrap_failing};
	struct dp_engine_stage_stats st;
	struct duo d;

	duo_start_conf(&d, &dc);
	fail_next_send(0, false);           /* the very first copy */
	send_expect(&d, 3 * chunk_size(), -EIO);
	fail_next_send(6, false);           /* mid-way, slots already reused */
	send_expect(&d, 12 * chunk_size(), -EIO);
	fail_next_send(5, true);            /* a copy that started, then failed */
	send_expect(&d, 12 * chunk_size(), -EIO);
	send_check(&d, 12 * chunk_size() + 7);
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT_EQUAL(st.copy_failures, 3);
	CU_ASSERT_EQUAL(st.staged_sends, 4);
	duo_stop(&d);
}

/* A peer that never posted the receive: the send times out like a host
 * send (cancelled, its ring released), and the next one goes through. */
static void test_staged_timeout(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 2};
	struct dp_engine_stage_stats st;
	size_t len = 5 * chunk_size();
	struct duo d;
	void *base;
	uint8_t *src;

	duo_start_conf(&d, &dc);
	src = device_buffer(len, 0, &base);
	CU_ASSERT_EQUAL(dp_engine_send(d.b, COOKIE, next_id++, src, len, DJ_MEM_GPU, 200),
			-ETIMEDOUT);
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	send_check(&d, len);
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT_EQUAL(st.staged_sends, 2);
	CU_ASSERT_EQUAL(st.copy_failures, 0);
	duo_stop(&d);
}

/* A peer that stopped polling strands the frames of a send in its rx
 * ring, pointing into the staging ring: the send still ends at its
 * timeout, with the ring left to drain on the side (late_rings), never
 * freed under the frames, and the next send is not held up by it. */
static void test_staged_stranded_frames(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 2};
	struct dp_engine_stage_stats st;
	size_t len = 5 * chunk_size();
	uint64_t start;
	struct duo d;
	void *base;
	uint8_t *src;

	duo_start_conf(&d, &dc);
	dp_engine_quiesce(d.a);
	src = device_buffer(len, 0, &base);
	for (int i = 0; i < 2; i++) {
		start = djc_time_ns();
		CU_ASSERT_EQUAL(dp_engine_send(d.b, COOKIE, next_id++, src, len, DJ_MEM_GPU,
						  200), -ETIMEDOUT);
		/* The timeout plus the cancel, not a wait for frames that
		 * never come back. */
		CU_ASSERT(djc_time_ns() - start < 3000ull * 1000 * 1000);
	}
	/* The GPU source is the caller's again: no copy and no frame reads it. */
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT_EQUAL(st.staged_sends, 2);
	CU_ASSERT_EQUAL(st.late_rings, 2);
	/* Its rings are still read from a's ring: b's destroy leaks them
	 * (logged with the count). */
	duo_stop(&d);
}

struct concurrent_send {
	struct duo *d;
	uint32_t id;
	const void *src;
	size_t len;
	int rc;
};

static void *send_thread(void *arg)
{
	struct concurrent_send *cs = arg;

	cs->rc = dp_engine_send(cs->d->b, COOKIE, cs->id, cs->src, cs->len, DJ_MEM_GPU, 30000);
	return NULL;
}

/* Control threads send GPU sources at once on one session, each through a
 * ring of its own (the placer's stage cache is shared). */
static void test_staged_concurrent(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .stage_slots = 3};
	struct concurrent_send cs[3];
	pthread_t threads[3];
	uint8_t *want[3], *got[3];
	void *base[3];
	struct duo d;

	duo_start_conf(&d, &dc);
	for (int i = 0; i < 3; i++) {
		size_t len = (size_t)(i + 2) * chunk_size() + (size_t)i * 1001;
		uint8_t *src = device_buffer(len, i & 1, &base[i]);

		cs[i] = (struct concurrent_send){.d = &d, .id = next_id++, .src = src, .len = len};
		want[i] = random_bytes(len, dj_test_seed() + cs[i].id);
		got[i] = calloc(1, len);
		CU_ASSERT_FATAL(got[i] != NULL);
		CU_ASSERT_EQUAL_FATAL(djg_pool_copy_in(pool, src, want[i], len), 0);
		CU_ASSERT_EQUAL(dp_engine_expect(d.a, COOKIE, cs[i].id, got[i], len, DJ_MEM_HOST), 0);
	}
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, send_thread, &cs[i]), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(threads[i], NULL);
		CU_ASSERT_EQUAL(cs[i].rc, 0);
		CU_ASSERT_EQUAL(dp_engine_wait(d.a, COOKIE, cs[i].id, 30000), 0);
		CU_ASSERT_EQUAL(memcmp(got[i], want[i], cs[i].len), 0);
		CU_ASSERT_EQUAL(djg_pool_free(pool, base[i]), 0);
		free(want[i]);
		free(got[i]);
	}
	duo_stop(&d);
}

static void wrap_whole_copy(struct dp_engine_placer *ops)
{
	ops->stage_get = NULL;
}

/* A placer without staging: one whole copy, then the send. */
static void test_whole_copy_fallback(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_LAUNCH, .wrap = wrap_whole_copy};
	struct dp_engine_stage_stats st;
	struct duo d;

	duo_start_conf(&d, &dc);
	send_check(&d, 3 * chunk_size() + 1);
	dp_engine_stage_stats(d.b, &st);
	CU_ASSERT_EQUAL(st.whole_sends, 1);
	CU_ASSERT_EQUAL(st.staged_sends, 0);
	duo_stop(&d);
}

/* Refused before the port is touched. */
static void test_bad_stage_slots(void)
{
	struct duo_conf dc = {.stage_slots = DP_STAGE_MAX_SLOTS + 1};
	struct dp_engine *dp = NULL;

	CU_ASSERT_EQUAL(engine_create(0, IP_A, NULL, &dc, &dp), -EINVAL);
	CU_ASSERT_PTR_NULL(dp);
}

/* A buffer of logical device 1: the test's device_of says so. */
static uint8_t *device1_buffer(size_t len, void **base)
{
	uint8_t *p = device_buffer(len, 1, base);

	dev1_lo = (uintptr_t)*base;
	dev1_hi = dev1_lo + len + 2 * GUARD + 8;
	return p;
}

/* Receives into device 0 and device 1 in turn, and a send from each:
 * every byte lands, each device's sinks gather exactly its own bytes. */
static void test_two_devices_engine(void)
{
	struct duo_conf dc = {.mode = DJG_GATHER_PERSISTENT, .two_devices = 1};
	size_t lens[2] = {(1u << 20) + 17, (3u << 20) + 5};
	struct djg_dp_placer_stats st;
	struct duo d;

	duo_start_conf(&d, &dc);
	for (int k = 0; k < 2; k++) {
		for (int which = 0; which < 2; which++) {
			uint32_t id = next_id++;
			size_t len = lens[which], pages = RTE_ALIGN_CEIL(len, 4096);
			uint8_t *src = aligned_alloc(4096, pages), *dst;
			uint8_t *bytes = random_bytes(len, dj_test_seed() + id);
			void *base;

			CU_ASSERT_FATAL(src != NULL);
			memcpy(src, bytes, len);
			free(bytes);
			dst = which == 1 ? device1_buffer(len, &base) : device_buffer(len, 1, &base);
			CU_ASSERT_EQUAL_FATAL(djg_host_register(dev, src, pages), 0);
			CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, id, dst, len, DJ_MEM_GPU), 0);
			CU_ASSERT_EQUAL(dp_engine_send(d.a, COOKIE, id, src, len, DJ_MEM_HOST, 30000),
					0);
			CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, id, 30000), 0);
			device_check(base, len, 1, src);
			CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
			dev1_lo = dev1_hi = 0; /* the pool hands the range out again */
			CU_ASSERT_EQUAL(djg_host_unregister(dev, src), 0);
			free(src);
		}
	}
	djg_dp_placer_stats_get(d.placer, &st);
	CU_ASSERT_EQUAL(st.n_devs, 2);
	CU_ASSERT_EQUAL(st.dev[0].bytes, 2 * lens[0]);
	CU_ASSERT_EQUAL(st.dev[1].bytes, 2 * lens[1]);
	CU_ASSERT_EQUAL(st.sink.bytes, 2 * (lens[0] + lens[1]));
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	CU_ASSERT_EQUAL(st.failures, 0);
	/* Sends from device 1's memory stage on its stream. */
	for (int which = 0; which < 2; which++) {
		uint32_t id = next_id++;
		size_t len = lens[which];
		uint8_t *bytes = random_bytes(len, dj_test_seed() + id), *got = calloc(1, len);
		void *base;
		uint8_t *src = which == 1 ? device1_buffer(len, &base) : device_buffer(len, 1, &base);

		CU_ASSERT_FATAL(got != NULL);
		CU_ASSERT_EQUAL_FATAL(djg_pool_copy_in(pool, src, bytes, len), 0);
		CU_ASSERT_EQUAL(dp_engine_expect(d.a, COOKIE, id, got, len, DJ_MEM_HOST), 0);
		CU_ASSERT_EQUAL(dp_engine_probe(d.a, COOKIE, 5000, NULL), 0);
		CU_ASSERT_EQUAL(dp_engine_send(d.b, COOKIE, id, src, len, DJ_MEM_GPU, 30000), 0);
		CU_ASSERT_EQUAL(dp_engine_wait(d.a, COOKIE, id, 30000), 0);
		CU_ASSERT_EQUAL(memcmp(got, bytes, len), 0);
		CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
		dev1_lo = dev1_hi = 0;
		free(bytes);
		free(got);
	}
	duo_stop(&d);
}

/*
 * One burst whose fragments go to both devices, through the placer's
 * callbacks as the engine calls them (deterministic: an engine mixes
 * transfers in a burst only as timing has it). Each device's sink takes
 * the burst with a reference of its own: both destinations get their
 * bytes, and every mbuf goes back to its pool exactly once.
 */
static void test_two_devices_mixed_burst(void)
{
	enum { N = 48, LEN = 1000 };
	struct djg_dp_placer_conf pc = {.dev_id = dev, .mode = DJG_GATHER_LAUNCH,
					   .mover = DJG_MOVER_GATHER};
	struct rte_mempool *mp = rte_pktmbuf_pool_create("dj_test_mixed", 511, 0, 0, 2048,
							 SOCKET_ID_ANY);
	const struct dp_engine_placer *ops;
	struct djg_dp_placer_stats st;
	struct djg_dp_placer *p;
	struct rte_mbuf *m[N], *all[511];
	uint8_t *want[2], *dst[2];
	void *base[2], *state;
	int off[2] = {0, 0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	two_devices_conf(&pc);
	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	ops = djg_dp_placer_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->lcore_init(ops->ctx, 0, &state), 0);
	for (int k = 0; k < 2; k++)
		want[k] = random_bytes(N / 2 * LEN, dj_test_seed() + 77 + k);
	dst[0] = device_buffer(N / 2 * LEN, 0, &base[0]);
	dst[1] = device1_buffer(N / 2 * LEN, &base[1]);
	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_alloc_bulk(mp, m, N), 0);
	/* Fragments alternate between the two destinations. */
	for (int i = 0; i < N; i++) {
		int k = i & 1;
		uint8_t *data = (uint8_t *)rte_pktmbuf_append(m[i], LEN);

		memcpy(data, want[k] + off[k], LEN);
		ops->place(state, dst[k], N / 2 * LEN, (uint64_t)off[k], data, LEN);
		off[k] += LEN;
	}
	/* The test keeps a reference of its own: once the sinks are done,
	 * each mbuf must hold exactly that one, and none be back in the pool. */
	for (int i = 0; i < N; i++)
		rte_mbuf_refcnt_update(m[i], 1);
	/* 0: the sinks took the burst and free the mbufs once read. */
	CU_ASSERT_EQUAL(ops->burst_end(state, m, N), 0);
	CU_ASSERT_EQUAL(ops->sync(state), 0);
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL(rte_mbuf_refcnt_read(m[i]), 1);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), 511 - N);
	rte_pktmbuf_free_bulk(m, N);
	djg_dp_placer_stats_get(p, &st);
	CU_ASSERT_EQUAL(st.mixed_bursts, 1);
	CU_ASSERT_EQUAL(st.dev[0].bytes, N / 2 * LEN);
	CU_ASSERT_EQUAL(st.dev[1].bytes, N / 2 * LEN);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	ops->lcore_fini(state);
	for (int k = 0; k < 2; k++) {
		device_check(base[k], N / 2 * LEN, k == 0 ? 0 : 1, want[k]);
		CU_ASSERT_EQUAL(djg_pool_free(pool, base[k]), 0);
		free(want[k]);
	}
	dev1_lo = dev1_hi = 0;
	/* Every mbuf back once: the whole pool allocates, and not one more. */
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), 511);
	CU_ASSERT_EQUAL(rte_pktmbuf_alloc_bulk(mp, all, 511), 0);
	CU_ASSERT_PTR_NULL(rte_pktmbuf_alloc(mp));
	rte_pktmbuf_free_bulk(all, 511);
	djg_dp_placer_destroy(p);
	rte_mempool_free(mp);
}

/* ---- gather bursts: rx bursts coalesced --------------------------------------- */

#define MTU_FRAG 1416 /* a fragment's payload at MTU 1500 */

/* One rx burst as the engine hands it: n fresh mbufs holding fragments
 * *next.. of want, each placed at its offset in dst, then burst_end().
 * Returns burst_end()'s answer (non-zero: freed here, as the engine would). */
static int rx_burst(const struct dp_engine_placer *ops, void *state, struct rte_mempool *mp,
		    uint8_t *dst, size_t total, const uint8_t *want, unsigned int *next,
		    unsigned int n)
{
	struct rte_mbuf *m[DJG_PLACER_BURST_MAX];
	int rc;

	CU_ASSERT_FATAL(n <= RTE_DIM(m));
	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_alloc_bulk(mp, m, n), 0);
	for (unsigned int i = 0; i < n; i++, (*next)++) {
		uint8_t *data = (uint8_t *)rte_pktmbuf_append(m[i], MTU_FRAG);

		memcpy(data, want + (size_t)*next * MTU_FRAG, MTU_FRAG);
		ops->place(state, dst, total, (uint64_t)*next * MTU_FRAG, data, MTU_FRAG);
	}
	rc = ops->burst_end(state, m, (uint16_t)n);
	if (rc != 0)
		rte_pktmbuf_free_bulk(m, n);
	return rc;
}

/* What the sinks were handed so far: gather bursts and their fragments. */
static void handed(struct djg_dp_placer *p, uint64_t bursts, uint64_t copies)
{
	struct djg_dp_placer_stats st;

	djg_dp_placer_stats_get(p, &st);
	CU_ASSERT_EQUAL(st.sink.bursts, bursts);
	CU_ASSERT_EQUAL(st.sink.copies, copies);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
}

/*
 * The placer as the engine drives it, MTU-size fragments: rx bursts of 32
 * go to the sinks as one gather burst of 128 (the mbufs held meanwhile),
 * a short poll's flush() hands over a partial one, sync() hands over a
 * lone fragment before it returns (a receive completes only after it),
 * and lcore_fini() with a burst still open places it and gives every mbuf
 * back. Then a gather burst of 1: each rx burst goes at once.
 */
static void test_gather_burst_placer(void)
{
	enum { POOL = 511, FRAGS = 4 * 32 + 32 + 7 + 1 + 5 };
	const size_t total = (size_t)FRAGS * MTU_FRAG;
	struct djg_dp_placer_conf pc = {.dev_id = dev, .mode = DJG_GATHER_LAUNCH,
					   .frag_size = MTU_FRAG, .mover = DJG_MOVER_GATHER};
	struct rte_mempool *mp = rte_pktmbuf_pool_create("dj_test_gburst", POOL, 0, 0, 2048,
							 SOCKET_ID_ANY);
	uint8_t *want = random_bytes(total, dj_test_seed() + 1416);
	const struct dp_engine_placer *ops;
	struct djg_dp_placer *p;
	unsigned int next = 0;
	void *base, *state;
	uint8_t *dst;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	CU_ASSERT_EQUAL(djg_dp_placer_gather_burst(MTU_FRAG), DJG_PLACER_BURST_SMALL);
	CU_ASSERT_EQUAL(djg_dp_placer_gather_burst(0), DJG_PLACER_BURST_SMALL);
	CU_ASSERT_EQUAL(djg_dp_placer_gather_burst(8916), 1);
	dst = device_buffer(total, 1, &base);
	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	ops = djg_dp_placer_ops(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops->flush);
	CU_ASSERT_EQUAL_FATAL(ops->lcore_init(ops->ctx, 0, &state), 0);
	/* Three full rx bursts: kept, nothing handed over yet. */
	for (int b = 0; b < 3; b++) {
		CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 32), 0);
		handed(p, 0, 0);
	}
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), POOL - 3 * 32);
	if (dev == DJG_HOST) /* host memory: nothing written yet either */
		CU_ASSERT_EQUAL(dst[0], GUARD_BYTE);
	/* The fourth fills the gather burst: 128 fragments in one. */
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 32), 0);
	handed(p, 1, 128);
	/* A full rx burst and a short one, then the short poll's flush. */
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 32), 0);
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 7), 0);
	handed(p, 1, 128);
	ops->flush(state);
	handed(p, 2, 128 + 39);
	ops->flush(state); /* nothing open: nothing handed */
	handed(p, 2, 128 + 39);
	/* A lone fragment (a small transfer's only one): sync() places it. */
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 1), 0);
	handed(p, 2, 128 + 39);
	CU_ASSERT_EQUAL(ops->sync(state), 0);
	handed(p, 3, 128 + 40);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), POOL);
	device_check(base, (size_t)next * MTU_FRAG, 1, want);
	/* A burst still open when the lcore goes: placed, mbufs back. */
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 5), 0);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), POOL - 5);
	ops->lcore_fini(state);
	CU_ASSERT_EQUAL(next, FRAGS);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), POOL);
	device_check(base, total, 1, want);
	djg_dp_placer_destroy(p);

	/* A gather burst of one: every rx burst is handed over as it ends. */
	pc.gather_burst = 1;
	next = 0;
	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	ops = djg_dp_placer_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->lcore_init(ops->ctx, 0, &state), 0);
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 32), 0);
	handed(p, 1, 32);
	CU_ASSERT_EQUAL(rx_burst(ops, state, mp, dst, total, want, &next, 3), 0);
	handed(p, 2, 35);
	CU_ASSERT_EQUAL(ops->sync(state), 0);
	ops->lcore_fini(state);
	djg_dp_placer_destroy(p);
	CU_ASSERT_EQUAL(rte_mempool_avail_count(mp), POOL);
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	free(want);
	rte_mempool_free(mp);
}

/* The engine's flush() calls, counted, and whether they reach the placer. */
static struct {
	void (*flush)(void *state);
	uint64_t calls;
	bool pass;
} flushes;

static void flush_counted(void *state)
{
	flushes.calls++;
	if (flushes.pass)
		flushes.flush(state);
}

static void wrap_flush(struct dp_engine_placer *ops)
{
	flushes.flush = ops->flush;
	flushes.calls = 0;
	ops->flush = flush_counted;
}

/*
 * MTU-size fragments through the engine: gather bursts of 128 over many rx
 * bursts land byte-exact. With flush() passed on, the engine calls it after
 * short polls; with it swallowed, only sync() hands the last gather burst
 * over, so a receive reported complete with its bytes in place shows that
 * completion waits for them (and that a lone small transfer never waits
 * for a full burst).
 */
static void gather_bursts_engine(bool pass)
{
	static const size_t lens[] = {1, 1000, 3 * MTU_FRAG + 5, (1u << 20) + 17, 4u << 20};
	struct duo_conf dc = {.mode = DJG_GATHER_PERSISTENT, .mover = DJG_MOVER_GATHER,
			      .frame_size = 1514, .wrap = wrap_flush};
	struct djg_dp_placer_stats st;
	uint64_t bytes = 0;
	struct duo d;

	flushes.pass = pass;
	duo_start_conf(&d, &dc);
	for (size_t i = 0; i < RTE_DIM(lens); i++) {
		receive_check(&d, lens[i], (int)(i & 1));
		bytes += lens[i];
	}
	djg_dp_placer_stats_get(d.placer, &st);
	CU_ASSERT_EQUAL(st.sink.bytes, bytes);
	CU_ASSERT_EQUAL(st.sink.rejected, 0);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	CU_ASSERT_EQUAL(st.failures, 0);
	/* Never more than a gather burst at once; fewer bursts than the
	 * fragments' rx bursts where the polls came back full. */
	CU_ASSERT(st.sink.copies <= st.sink.bursts * DJG_PLACER_BURST_SMALL);
	CU_ASSERT(flushes.calls > 0);
	printf("\n    %s: %" PRIu64 " fragments in %" PRIu64 " gather bursts, %" PRIu64
	       " flushes\n", pass ? "flush" : "sync only", st.sink.copies, st.sink.bursts,
	       flushes.calls);
	duo_stop(&d);
}

static void test_gather_bursts_engine(void)
{
	gather_bursts_engine(true);
}

static void test_gather_bursts_sync_only(void)
{
	gather_bursts_engine(false);
}

/* ---- several lcores on one placer --------------------------------------------- */

#define SHARERS 4
#define SHARE_FRAGS (SHARERS * 700 + 3)
#define SHARE_POOL 2047 /* an lcore's held mbufs (1024) and two gather bursts fit */

/* One receive thread's part: fragments first, first + stride, ... of want
 * into one destination shared with the other threads, in rx bursts of 32
 * (every fifth one short, then flush() as after a short poll), as an engine
 * queue would hand them; mbufs from a pool of its own. No CUnit calls here:
 * the main thread checks rc. */
struct share {
	const struct dp_engine_placer *ops;
	void *state;
	struct rte_mempool *mp;
	uint8_t *dst;
	size_t total;
	const uint8_t *want;
	unsigned int first, stride;
	int rc;
};

static void *share_run(void *arg)
{
	struct share *s = arg;
	const struct dp_engine_placer *ops = s->ops;
	struct rte_mbuf *m[32];
	unsigned int frag = s->first;

	for (unsigned int b = 0; frag < SHARE_FRAGS; b++) {
		unsigned int n = b % 5 == 4 ? 9 : 32, k = 0;

		if (rte_pktmbuf_alloc_bulk(s->mp, m, n) != 0) {
			s->rc = -ENOMEM;
			return NULL;
		}
		for (; k < n && frag < SHARE_FRAGS; k++, frag += s->stride) {
			uint8_t *data = (uint8_t *)rte_pktmbuf_append(m[k], MTU_FRAG);

			memcpy(data, s->want + (size_t)frag * MTU_FRAG, MTU_FRAG);
			ops->place(s->state, s->dst, s->total, (uint64_t)frag * MTU_FRAG, data,
				   MTU_FRAG);
		}
		rte_pktmbuf_free_bulk(m + k, n - k);
		if (ops->burst_end(s->state, m, (uint16_t)k) != 0)
			rte_pktmbuf_free_bulk(m, k);
		if (k < 32)
			ops->flush(s->state);
	}
	s->rc = ops->sync(s->state);
	return NULL;
}

/*
 * SHARERS threads place interleaved fragments into one destination at once
 * through one placer, each on a state of its own although all ask for lcore
 * index 0 (several engines sharing a placer each have a queue 0): the bytes
 * land exactly, the statistics count every state, and one state going
 * leaves the others listed. The placer holds at most 16 states at once,
 * and a slot that came free serves again.
 */
static void test_lcores_one_destination(void)
{
	const size_t total = (size_t)SHARE_FRAGS * MTU_FRAG;
	struct djg_dp_placer_conf pc = {.dev_id = dev, .mode = DJG_GATHER_PERSISTENT,
					   .frag_size = MTU_FRAG, .mover = DJG_MOVER_GATHER};
	uint8_t *want = random_bytes(total, dj_test_seed() + 4242);
	const struct dp_engine_placer *ops;
	struct share sh[SHARERS];
	pthread_t th[SHARERS];
	struct djg_dp_placer_stats st;
	struct djg_dp_placer *p;
	void *base, *more[17];
	unsigned int n_more = 0;
	uint8_t *dst = device_buffer(total, 1, &base);
	int rc = 0;

	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	ops = djg_dp_placer_ops(p);
	for (int t = 0; t < SHARERS; t++) {
		char name[RTE_MEMPOOL_NAMESIZE];

		snprintf(name, sizeof(name), "dj_test_share%d", t);
		sh[t] = (struct share){.ops = ops, .dst = dst, .total = total, .want = want,
				       .first = (unsigned int)t, .stride = SHARERS};
		sh[t].mp = rte_pktmbuf_pool_create(name, SHARE_POOL, 0, 0, 2048, SOCKET_ID_ANY);
		CU_ASSERT_PTR_NOT_NULL_FATAL(sh[t].mp);
		CU_ASSERT_EQUAL_FATAL(ops->lcore_init(ops->ctx, 0, &sh[t].state), 0);
		for (int u = 0; u < t; u++)
			CU_ASSERT_PTR_NOT_EQUAL(sh[t].state, sh[u].state);
	}
	for (int t = 0; t < SHARERS; t++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, share_run, &sh[t]), 0);
	for (int t = 0; t < SHARERS; t++) {
		pthread_join(th[t], NULL);
		CU_ASSERT_EQUAL(sh[t].rc, 0);
	}
	djg_dp_placer_stats_get(p, &st);
	CU_ASSERT_EQUAL(st.sink.copies, SHARE_FRAGS);
	CU_ASSERT_EQUAL(st.sink.bytes, total);
	CU_ASSERT_EQUAL(st.direct_copies, 0);
	CU_ASSERT_EQUAL(st.failures, 0);
	device_check(base, total, 1, want);
	/* The first state gone: the other three still counted. */
	ops->lcore_fini(sh[0].state);
	djg_dp_placer_stats_get(p, &st);
	CU_ASSERT_EQUAL(st.sink.copies, SHARE_FRAGS - (SHARE_FRAGS + SHARERS - 1) / SHARERS);
	for (int t = 1; t < SHARERS; t++)
		ops->lcore_fini(sh[t].state);
	djg_dp_placer_destroy(p);
	/* Up to 16 states at once, then -ENOSPC until one goes (kernels per
	 * burst: no 16 resident kernels on the GPU run). */
	pc.mode = DJG_GATHER_LAUNCH;
	CU_ASSERT_EQUAL_FATAL(djg_dp_placer_create(&pc, &p), 0);
	ops = djg_dp_placer_ops(p);
	while (n_more < RTE_DIM(more) &&
	       (rc = ops->lcore_init(ops->ctx, 0, &more[n_more])) == 0)
		n_more++;
	CU_ASSERT_EQUAL(rc, -ENOSPC);
	CU_ASSERT_EQUAL(n_more, 16);
	if (n_more > 0) {
		ops->lcore_fini(more[--n_more]);
		CU_ASSERT_EQUAL(ops->lcore_init(ops->ctx, 0, &more[n_more]), 0);
		n_more++;
	}
	for (unsigned int i = 0; i < n_more; i++)
		ops->lcore_fini(more[i]);
	djg_dp_placer_destroy(p);
	for (int t = 0; t < SHARERS; t++) {
		/* Every mbuf back in its pool. */
		CU_ASSERT_EQUAL(rte_mempool_avail_count(sh[t].mp), SHARE_POOL);
		rte_mempool_free(sh[t].mp);
	}
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	free(want);
}

static void test_bad_config(void)
{
	struct djg_dp_placer_conf pc = {.dev_id = DJG_HOST, .mode = 7};
	struct djg_dp_placer *p = NULL;

	CU_ASSERT_EQUAL(djg_dp_placer_create(NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.mode = DJG_GATHER_LAUNCH;
	pc.mover = 9;
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.mover = DJG_MOVER_COPY;
	pc.n_chunks = 1;
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.n_chunks = 0;
	pc.chunk_size = 4096;
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.chunk_size = 0;
	pc.mover = DJG_MOVER_GATHER;
	pc.dev_id = 99;
	CU_ASSERT(djg_dp_placer_create(&pc, &p) < 0);
	CU_ASSERT_PTR_NULL(djg_dp_placer_ops(NULL));
	CU_ASSERT_EQUAL(djg_find_cuda(-1) < 0, 1);
	pc.dev_id = DJG_HOST;
	pc.gather_burst = DJG_PLACER_BURST_MAX + 1;
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.gather_burst = 0;
	pc.n_devs = DJG_PLACER_MAX_DEVS + 1;
	CU_ASSERT_EQUAL(djg_dp_placer_create(&pc, &p), -EINVAL);
	pc.n_devs = 2;
	pc.dev_ids[0] = DJG_HOST;
	pc.dev_ids[1] = 99;
	CU_ASSERT(djg_dp_placer_create(&pc, &p) < 0);
	djg_dp_placer_destroy(NULL);
}

static void eal_start(int want_gpu)
{
	char prefix[64];
	/* PCI stays on for the GPU run: gpudev's CUDA driver is a PCI driver. */
	char *argv[] = {"test_gpu_dp", "--no-huge", "-m", "1024", "--lcores", "0@0,1@1,2@0",
			"--log-level=lib.eal:error", "--iova-mode=va", prefix,
			want_gpu ? NULL : "--no-pci", NULL};
	char **app_argv;
	int app_argc, argc = want_gpu ? 9 : 10;

	snprintf(prefix, sizeof(prefix), "--file-prefix=dj_test_gpu_dp_%d", (int)getpid());
	if (dp_eal_init(argc, argv, NULL, &app_argc, &app_argv) != 0)
		dj_test_skip("EAL does not start here");
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"placer: bad configurations", test_bad_config},
		{"engine: too many staging slots", test_bad_stage_slots},
		{"GPU sources refused without a placer", test_gpu_source_needs_placer},
		{"transfers, kernel per burst", test_transfers_launch},
		{"cancelled receive, then serving", test_cancel_then_serve},
		{"transfers, persistent gather", test_transfers_persistent},
		{"transfers, copy-engine mover", test_transfers_copy_mover},
		{"receive mover: auto", test_mover_auto},
		{"GPU sources staged: sizes, bounded ring", test_staged_sizes_bounded_ring},
		{"GPU sources staged under loss and reordering", test_staged_lossy},
		{"GPU sources: a failed copy, then serving", test_staged_copy_failure},
		{"GPU sources: a send that times out, then serving", test_staged_timeout},
		{"GPU sources: frames stranded at a silent peer", test_staged_stranded_frames},
		{"GPU sources: concurrent senders", test_staged_concurrent},
		{"GPU sources: whole copy without staging", test_whole_copy_fallback},
		{"two devices: each receive on its device, sends", test_two_devices_engine},
		{"two devices: one burst split between them", test_two_devices_mixed_burst},
		{"gather bursts: rx bursts coalesced, flush, sync", test_gather_burst_placer},
		{"gather bursts: MTU-size fragments through the engine",
		 test_gather_bursts_engine},
		{"gather bursts: completion waits for the last one", test_gather_bursts_sync_only},
		{"placer: lcores placing into one destination at once",
		 test_lcores_one_destination},
		{NULL, NULL},
	};
	int want_gpu = argc > 1 && strcmp(argv[1], "gpu") == 0;
	int rc;

	eal_start(want_gpu);
	if (want_gpu) {
		int ordinal0 = djg_count() > 0 ? djg_find_cuda(0) : -DJ_ENOGPU;

		if (ordinal0 < 0) {
			dp_eal_cleanup();
			dj_test_skip("no GPU usable through gpudev (or built without CUDA)");
		}
		dev = (int16_t)ordinal0;
	}
	if (djg_pool_create(dev, 512u << 20, &pool) != 0) {
		dp_eal_cleanup();
		dj_test_skip("cannot create a 512 MiB %s pool", dev == DJG_HOST ? "host" : "GPU");
	}
	printf("test_gpu_dp: %s\n", dev == DJG_HOST ? "host placer (DJG_HOST)" :
	       "GPU placer on the GPU that is CUDA device 0");
	dj_test_add_suite(want_gpu ? "gpu_dp_device" : "gpu_dp", NULL, NULL, cases);
	rc = dj_test_main(1, argv);
	djg_pool_destroy(pool);
	dp_eal_cleanup();
	return rc;
}
