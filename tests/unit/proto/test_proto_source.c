/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Progressive sources (struct dp_tx_source): the sender describes nothing
 * beyond the producer's ready mark, new or retransmitted, and reads its
 * payload from a ring that the producer refills behind the cumulative ACK.
 * A slot refilled too early, or a fragment sent before its bytes landed,
 * puts other bytes on the wire: the receiver's copy would not match.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sim.h"

#define FS 1416u
#define SEC 1000000000ull
#define POISON 0xee

static unsigned seed;

static void ready_set(struct dp_tx_source *src, uint64_t bytes)
{
	__atomic_store_n(&src->ready, bytes, __ATOMIC_RELEASE);
}

/* Describe everything the session offers now; returns the count and the
 * highest fragment end seen. */
static unsigned drain(struct dp_channel *s, uint64_t now, uint64_t *max_end)
{
	struct dp_frag_desc d[DP_CHANNEL_TX_BURST_MAX];
	unsigned n, total = 0;

	while ((n = dp_channel_tx_burst(s, now, d, DP_CHANNEL_TX_BURST_MAX)) != 0) {
		for (unsigned i = 0; i < n; i++)
			if (d[i].offset + d[i].payload_len > *max_end)
				*max_end = d[i].offset + d[i].payload_len;
		total += n;
	}
	return total;
}

/* Nothing above ready leaves, retransmissions included. */
static void test_ready_mark_bounds_descriptors(void)
{
	struct dp_channel_config cfg;
	struct dp_tx_source src = {0};
	struct dp_channel *s;
	uint64_t len = 10 * FS + 7, max_end = 0;
	uint8_t *buf = sim_pattern(len, 1);

	sim_config(&cfg, FS);
	CU_ASSERT_FATAL(dp_channel_create(&cfg, &s) == 0);
	CU_ASSERT_EQUAL(dp_channel_send_source(s, 1, buf, len, DJ_MEM_HOST, &src, NULL, 0), 0);
	CU_ASSERT_EQUAL(drain(s, 1, &max_end), 0);
	ready_set(&src, 2 * FS + FS / 2);
	CU_ASSERT_EQUAL(drain(s, 2, &max_end), 2);
	CU_ASSERT_EQUAL(max_end, 2 * FS);
	/* The timeout queues fragments 0 and 1 again: still nothing above
	 * (one second: well before the peer is taken for dead). */
	dp_channel_poll(s, SEC);
	CU_ASSERT_EQUAL(drain(s, SEC, &max_end), 2);
	CU_ASSERT_EQUAL(max_end, 2 * FS);
	ready_set(&src, len - 1); /* the last, short fragment is not whole yet */
	max_end = 0;
	CU_ASSERT_EQUAL(drain(s, SEC + 1, &max_end), 8);
	CU_ASSERT_EQUAL(max_end, 10 * FS);
	ready_set(&src, len);
	CU_ASSERT_EQUAL(drain(s, SEC + 2, &max_end), 1);
	CU_ASSERT_EQUAL(max_end, len);
	dp_channel_destroy(s);
	free(buf);
}

static void test_bad_wrap_rejected(void)
{
	struct dp_channel_config cfg;
	struct dp_tx_source src = {.wrap = 3 * FS + 1};
	struct dp_channel *s;
	uint8_t buf[16];

	sim_config(&cfg, FS);
	CU_ASSERT_FATAL(dp_channel_create(&cfg, &s) == 0);
	CU_ASSERT_EQUAL(dp_channel_send_source(s, 1, buf, 16, DJ_MEM_HOST, &src, NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(dp_channel_frag_size(s), FS);
	dp_channel_destroy(s);
}

/* The producer: a ring of n_slots chunks over a source of len bytes. */
struct producer {
	struct dp_tx_source src;
	const uint8_t *data;
	uint64_t len, chunk;
	unsigned int n_slots;
	uint64_t next_chunk, refills, next_due;
	uint8_t *ring;
};

/* At most one chunk per COPY_NS, like a copy that takes time: into its
 * slot once the chunk that slot held is acknowledged. */
#define COPY_NS 20000ull

static void produce(struct sim *sim, void *arg)
{
	struct producer *p = arg;
	uint64_t acked = __atomic_load_n(&p->src.acked, __ATOMIC_ACQUIRE);
	uint64_t c = p->next_chunk, off = c * p->chunk;
	uint8_t *slot = p->ring + (c % p->n_slots) * p->chunk;

	if (off >= p->len || sim->now < p->next_due)
		return;
	if (c >= p->n_slots && acked < (c - p->n_slots + 1) * p->chunk)
		return;
	p->refills += c >= p->n_slots;
	memcpy(slot, p->data + off, p->len - off < p->chunk ? p->len - off : p->chunk);
	p->next_chunk++;
	p->next_due = sim->now + COPY_NS;
	ready_set(&p->src, off + p->chunk < p->len ? off + p->chunk : p->len);
}

static void ring_transfer(uint64_t len, const struct dp_impair_config *imp, bool cc)
{
	struct dp_channel_config cfg;
	struct producer p = {.len = len, .chunk = 16 * FS, .n_slots = 3};
	uint8_t *dst = calloc(1, len);
	unsigned want[2] = {1, 1};
	struct dp_proto_stats st;
	struct sim sim;

	p.data = sim_pattern(len, (uint32_t)len);
	p.ring = malloc(p.n_slots * p.chunk);
	CU_ASSERT_FATAL(dst != NULL && p.ring != NULL);
	memset(p.ring, POISON, p.n_slots * p.chunk);
	p.src.wrap = p.n_slots * p.chunk;
	sim_config(&cfg, FS);
	cfg.congestion_control = cc;
	CU_ASSERT_FATAL(sim_init(&sim, &cfg, &cfg, imp, imp) == 0);
	sim.hook = produce;
	sim.hook_arg = &p;
	sim.hook_every_ns = COPY_NS;
	CU_ASSERT_FATAL(dp_channel_recv(sim.ep[1], 3, dst, len, DJ_MEM_HOST, NULL, sim.now) == 0);
	CU_ASSERT_FATAL(dp_channel_send_source(sim.ep[0], 3, p.ring, len, DJ_MEM_HOST, &p.src,
					       NULL, sim.now) == 0);
	CU_ASSERT_FATAL(sim_run(&sim, want, sim.now + 600 * SEC));
	CU_ASSERT_EQUAL(sim_event(&sim, 0, DP_XFER_TX, 3)->status, 0);
	CU_ASSERT_EQUAL(sim_event(&sim, 1, DP_XFER_RX, 3)->status, 0);
	CU_ASSERT(memcmp(dst, p.data, len) == 0);
	CU_ASSERT_EQUAL(__atomic_load_n(&p.src.acked, __ATOMIC_ACQUIRE), len);
	CU_ASSERT(p.refills > 0);
	dp_channel_stats(sim.ep[0], &st);
	if (imp != NULL && imp->drop > 0)
		CU_ASSERT(st.tx_retrans > 0);
	sim_fini(&sim);
	free((void *)p.data);
	free(p.ring);
	free(dst);
}

/* Slots are reused many times over, under loss and reordering; the sender
 * waits for the producer instead of timing out. */
static void test_ring_refilled_behind_ack(void)
{
	struct dp_impair_config imp = {.seed = seed, .drop = 0.05, .reorder = 0.05,
				       .reorder_ns = 30000};

	ring_transfer(1u << 20, NULL, false);
	ring_transfer((1u << 20) + 5, &imp, false);
	ring_transfer(3u << 20, &imp, true);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"nothing above the ready mark is described", test_ready_mark_bounds_descriptors},
		{"a ring not a multiple of the fragment is refused", test_bad_wrap_rejected},
		{"ring refilled behind the ACK, lossy and reordered", test_ring_refilled_behind_ack},
		{NULL, NULL},
	};
	seed = dj_test_seed();
	dj_test_add_suite("proto_source", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
