/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The chunk packer (gpu/packer.h) over a host-memory stand-in for the copy
 * engine: copies are queued, not done, and a seeded simulator finishes
 * them late and in its own time, as a CUDA stream does. A packer that wrote
 * a chunk again before its copies were done would deliver the wrong bytes;
 * every test compares the destination byte for byte with the source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/packer.h"
#include "harness.h"

#define CHUNK (64u * 1024)
#define MAX_PENDING (1u << 16)

/* The stand-in copy engine: one in-order queue, a fence position per chunk. */
struct fake_ce {
	struct {
		void *dst;
		const void *src;
		size_t len;
	} q[MAX_PENDING];
	size_t queued, done;           /* copies queued / executed */
	size_t fence[DJG_PACKER_MAX_CHUNKS];
	unsigned int seed;
	unsigned int stall_pct;        /* chance a done() poll makes no progress */
	long fail_copy_at;             /* copy number that fails; -1: none */
	int never_done;                /* the engine hangs */
	size_t copies;
};

static int fake_copy(void *ctx, void *dst, const void *src, size_t len)
{
	struct fake_ce *ce = ctx;

	if ((long)ce->copies++ == ce->fail_copy_at)
		return -EIO;
	CU_ASSERT_FATAL(ce->queued - ce->done < MAX_PENDING);
	ce->q[ce->queued % MAX_PENDING].dst = dst;
	ce->q[ce->queued % MAX_PENDING].src = src;
	ce->q[ce->queued % MAX_PENDING].len = len;
	ce->queued++;
	return 0;
}

static int fake_fence(void *ctx, unsigned int idx)
{
	struct fake_ce *ce = ctx;

	ce->fence[idx] = ce->queued;
	return 0;
}

static int fake_done(void *ctx, unsigned int idx)
{
	struct fake_ce *ce = ctx;

	if (ce->never_done)
		return 0;
	if ((unsigned int)rand_r(&ce->seed) % 100 < ce->stall_pct)
		return ce->done >= ce->fence[idx];
	/* Progress: the next few copies of the queue, in order. */
	for (int k = 1 + rand_r(&ce->seed) % 4; k > 0 && ce->done < ce->queued; k--, ce->done++)
		memcpy(ce->q[ce->done % MAX_PENDING].dst, ce->q[ce->done % MAX_PENDING].src,
		       ce->q[ce->done % MAX_PENDING].len);
	return ce->done >= ce->fence[idx];
}

static const struct djg_packer_ops fake_ops = {
	.copy = fake_copy, .fence = fake_fence, .done = fake_done,
};

static uint8_t *pattern(size_t len, unsigned int seed)
{
	uint8_t *b = malloc(len);

	CU_ASSERT_FATAL(b != NULL);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rand_r(&seed);
	return b;
}

struct rig {
	struct fake_ce *ce;
	uint8_t *mem;
	struct djg_packer *p;
	size_t len;           /* of src and dest */
	uint8_t *src, *dest;  /* seeded bytes; zeroed destination */
};

static void rig_up(struct rig *r, unsigned int n_chunks, uint32_t max_runs, unsigned int seed,
		   size_t len)
{
	struct djg_packer_conf conf = {
		.chunk_size = CHUNK, .n_chunks = n_chunks, .max_runs = max_runs,
		.ops = &fake_ops,
	};

	r->ce = calloc(1, sizeof(*r->ce));
	r->mem = malloc((size_t)n_chunks * CHUNK);
	CU_ASSERT_FATAL(r->ce != NULL && r->mem != NULL);
	r->ce->seed = seed;
	r->ce->stall_pct = 50;
	r->ce->fail_copy_at = -1;
	conf.mem = r->mem;
	conf.ctx = r->ce;
	CU_ASSERT_EQUAL_FATAL(djg_packer_create(&conf, &r->p), 0);
	r->len = len;
	r->src = pattern(len, seed + 1000);
	r->dest = calloc(1, len);
	CU_ASSERT_FATAL(r->dest != NULL);
}

static void rig_down(struct rig *r)
{
	djg_packer_destroy(r->p);
	free(r->mem);
	free(r->ce);
	free(r->src);
	free(r->dest);
}

/* Fragment i of @frag bytes of r->src (the last one shorter) to the same
 * place in r->dest: pack them in @order (NULL: in order). */
static int pack(struct rig *r, uint32_t frag, const size_t *order)
{
	size_t n = (r->len + frag - 1) / frag, len = r->len;

	for (size_t k = 0; k < n; k++) {
		size_t i = order != NULL ? order[k] : k;
		size_t off = i * frag;
		uint32_t l = (uint32_t)(len - off < frag ? len - off : frag);
		int rc = djg_packer_add(r->p, r->dest + off, r->src + off, l);

		if (rc != 0)
			return rc;
	}
	return 0;
}

static void test_in_order_one_copy_per_chunk(void)
{
	size_t len = 10 * CHUNK + 12345;
	struct djg_packer_stats st;
	struct rig r;

	rig_up(&r, 4, 0, 7, len);
	CU_ASSERT_EQUAL(pack(&r, 1416, NULL), 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.bytes, len);
	CU_ASSERT_EQUAL(st.fragments, (len + 1415) / 1416);
	/* In order: each chunk is one run, one copy; 46 fragments fit one. */
	CU_ASSERT_EQUAL(st.copies, st.chunks);
	CU_ASSERT_EQUAL(st.chunks, (st.fragments + 45) / 46);
	CU_ASSERT_EQUAL(st.partial, 1);
	CU_ASSERT_EQUAL(st.failures, 0);
	CU_ASSERT_EQUAL(djg_packer_in_flight(r.p), 0);
	rig_down(&r);
}

/* Fragments of whole chunks: each chunk goes the moment it is full. */
static void test_full_chunk_goes_at_once(void)
{
	size_t len = 3 * CHUNK;
	struct djg_packer_stats st;
	struct rig r;

	rig_up(&r, 2, 0, 8, len);
	CU_ASSERT_EQUAL(pack(&r, 8192, NULL), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.chunks, 3); /* before any drain */
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.partial, 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	rig_down(&r);
}

static void shuffle(size_t *a, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		a[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand_r(&seed) % (i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static void test_out_of_order(void)
{
	size_t len = 5 * CHUNK + 999, n = (len + 1415) / 1416;
	size_t *order = malloc(n * sizeof(*order));
	struct djg_packer_stats st;
	struct rig r;

	shuffle(order, n, 11);
	rig_up(&r, 3, 0, 9, len);
	CU_ASSERT_EQUAL(pack(&r, 1416, order), 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT(st.copies > st.chunks); /* runs broken by the shuffle */
	CU_ASSERT(st.copies <= n);
	rig_down(&r);
	free(order);
}

/* Mostly in order, with swaps of neighbours (a retransmit's pattern). */
static void test_neighbour_swaps_coalesce(void)
{
	size_t len = 4 * CHUNK, n = (len + 1023) / 1024;
	size_t *order = malloc(n * sizeof(*order)), swaps = 0;
	struct djg_packer_stats st;
	struct rig r;

	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = 10; i + 1 < n; i += 37, swaps++) {
		order[i] = i + 1;
		order[i + 1] = i;
	}
	rig_up(&r, 2, 0, 10, len);
	CU_ASSERT_EQUAL(pack(&r, 1024, order), 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	djg_packer_stats_get(r.p, &st);
	/* A swap splits one run into four (before, i + 1, i, after), no more:
	 * the rest coalesces. */
	CU_ASSERT(swaps > 0);
	CU_ASSERT(st.copies <= st.chunks + 3 * swaps);
	CU_ASSERT(st.copies > st.chunks);
	rig_down(&r);
	free(order);
}

/* Two transfers interleaved fragment by fragment, at odd sizes and with
 * few runs allowed per chunk: the run cap sends chunks early. */
static void test_offsets_two_dests_run_cap(void)
{
	size_t len = 2 * CHUNK + 777;
	uint8_t *src_b = pattern(len, 6), *b = calloc(1, len);
	struct djg_packer_stats st;
	unsigned int seed = 12;
	size_t off = 0;
	struct rig r;

	rig_up(&r, 3, 4, 13, len); /* a: r.src to r.dest */
	while (off < len) {
		uint32_t l = 1 + (uint32_t)rand_r(&seed) % 9000;

		if (l > len - off)
			l = (uint32_t)(len - off);
		CU_ASSERT_EQUAL_FATAL(djg_packer_add(r.p, r.dest + off, r.src + off, l), 0);
		CU_ASSERT_EQUAL_FATAL(djg_packer_add(r.p, b + off, src_b + off, l), 0);
		off += l;
	}
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	CU_ASSERT_EQUAL(memcmp(b, src_b, len), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT(st.copies <= 4 * st.chunks);
	CU_ASSERT(st.chunks > (2 * len) / CHUNK + 1); /* the cap, not the size, sent most */
	rig_down(&r);
	free(src_b);
	free(b);
}

/* A partial chunk stays in the packer until a drain flushes it. */
static void test_flush_partial(void)
{
	struct djg_packer_stats st;
	struct rig r;

	rig_up(&r, 2, 0, 14, 3000);
	CU_ASSERT_EQUAL(djg_packer_add(r.p, r.dest, r.src, 1000), 0);
	CU_ASSERT_EQUAL(djg_packer_add(r.p, r.dest + 1000, r.src + 1000, 2000), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.chunks, 0);
	CU_ASSERT_EQUAL(djg_packer_in_flight(r.p), 0);
	/* Nothing copied yet. */
	for (int i = 0; i < 3000; i++)
		CU_ASSERT_EQUAL_FATAL(r.dest[i], 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, 3000), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.chunks, 1);
	CU_ASSERT_EQUAL(st.copies, 1);
	CU_ASSERT_EQUAL(st.partial, 1);
	/* A second drain has nothing to send. */
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.chunks, 1);
	rig_down(&r);
}

/* Many chunks through few slots, the engine slow: the packer waits for
 * slots and never writes one in flight. */
static void test_many_chunks_few_slots(void)
{
	size_t len = 24u << 20;
	struct djg_packer_stats st;
	struct rig r;

	rig_up(&r, 2, 0, 15, len);
	r.ce->stall_pct = 90;
	CU_ASSERT_EQUAL(pack(&r, 8916, NULL), 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT(st.chunks > 300);
	CU_ASSERT(st.waits > 0);
	CU_ASSERT_EQUAL(st.bytes, len);
	rig_down(&r);
}

static void test_bad_input(void)
{
	uint8_t mem[2 * CHUNK];
	struct djg_packer_conf conf = {
		.mem = mem, .chunk_size = CHUNK, .n_chunks = 2, .ops = &fake_ops,
	};
	struct djg_packer_ops no_done = {.copy = fake_copy, .fence = fake_fence};
	struct djg_packer_conf bad;
	struct djg_packer *p;
	struct rig r;

	CU_ASSERT_EQUAL(djg_packer_create(NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(djg_packer_create(&conf, NULL), -EINVAL);
	bad = conf;
	bad.mem = NULL;
	CU_ASSERT_EQUAL(djg_packer_create(&bad, &p), -EINVAL);
	bad = conf;
	bad.chunk_size = 4096;
	CU_ASSERT_EQUAL(djg_packer_create(&bad, &p), -EINVAL);
	bad = conf;
	bad.n_chunks = 1;
	CU_ASSERT_EQUAL(djg_packer_create(&bad, &p), -EINVAL);
	bad.n_chunks = DJG_PACKER_MAX_CHUNKS + 1;
	CU_ASSERT_EQUAL(djg_packer_create(&bad, &p), -EINVAL);
	bad = conf;
	bad.ops = &no_done;
	CU_ASSERT_EQUAL(djg_packer_create(&bad, &p), -EINVAL);
	rig_up(&r, 2, 0, 16, 1);
	CU_ASSERT_EQUAL(djg_packer_add(r.p, mem, mem, CHUNK + 1), -E2BIG);
	rig_down(&r);
}

/* A failed copy is reported by the next drain, once; later bytes land. */
static void test_copy_failure_reported(void)
{
	size_t len = 3 * CHUNK;
	struct djg_packer_stats st;
	struct rig r;

	rig_up(&r, 2, 0, 17, len);
	r.ce->fail_copy_at = 1;
	pack(&r, 1416, NULL);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), -EIO);
	djg_packer_stats_get(r.p, &st);
	CU_ASSERT_EQUAL(st.failures, 1);
	memset(r.dest, 0, len);
	CU_ASSERT_EQUAL(pack(&r, 1416, NULL), 0);
	CU_ASSERT_EQUAL(djg_packer_drain(r.p), 0);
	CU_ASSERT_EQUAL(memcmp(r.dest, r.src, len), 0);
	rig_down(&r);
}

/* An engine that never finishes: the packer gives up, it does not spin. */
static void test_hung_engine_times_out(void)
{
	uint8_t *mem = malloc(2 * CHUNK), *dest = malloc(3 * CHUNK), *src = pattern(3 * CHUNK, 10);
	struct fake_ce *ce = calloc(1, sizeof(*ce));
	struct djg_packer_conf conf = {
		.mem = mem, .chunk_size = CHUNK, .n_chunks = 2, .ops = &fake_ops, .ctx = ce,
		.timeout_ns = 2 * 1000 * 1000,
	};
	struct djg_packer *p;
	int rc = 0;

	ce->never_done = 1;
	ce->fail_copy_at = -1;
	CU_ASSERT_EQUAL_FATAL(djg_packer_create(&conf, &p), 0);
	for (size_t off = 0; off < 3 * CHUNK && rc == 0; off += 8192)
		rc = djg_packer_add(p, dest + off, src + off, 8192);
	CU_ASSERT_EQUAL(rc, -ETIMEDOUT);
	CU_ASSERT_EQUAL(djg_packer_drain(p), -ETIMEDOUT);
	CU_ASSERT_EQUAL(djg_packer_in_flight(p), 2);
	djg_packer_destroy(p);
	free(ce);
	free(mem);
	free(dest);
	free(src);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"in_order_one_copy_per_chunk", test_in_order_one_copy_per_chunk},
		{"full_chunk_goes_at_once", test_full_chunk_goes_at_once},
		{"out_of_order", test_out_of_order},
		{"neighbour_swaps_coalesce", test_neighbour_swaps_coalesce},
		{"offsets_two_dests_run_cap", test_offsets_two_dests_run_cap},
		{"flush_partial", test_flush_partial},
		{"many_chunks_few_slots", test_many_chunks_few_slots},
		{"bad_input", test_bad_input},
		{"copy_failure_reported", test_copy_failure_reported},
		{"hung_engine_times_out", test_hung_engine_times_out},
		{NULL, NULL},
	};

	dj_test_add_suite("gpu_packer", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
