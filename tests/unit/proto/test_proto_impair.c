/* SPDX-License-Identifier: BSD-3-Clause */
/* Impairment layer: determinism, rates, validation, hold queue order. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/proto/impair.h"
#include "harness.h"

#define N_PKTS 200000

static void test_same_seed_same_verdicts(void)
{
	struct dp_impair_config c = {.seed = dj_test_seed(), .drop = 0.1,
				     .duplicate = 0.1, .corrupt = 0.1, .reorder = 0.1,
				     .delay = 0.1, .delay_ns = 500, .delay_jitter_ns = 100,
				     .reorder_ns = 50};
	struct dp_impair *a, *b;
	unsigned differ = 0;

	CU_ASSERT_FATAL(dp_impair_create(&c, &a) == 0);
	CU_ASSERT_FATAL(dp_impair_create(&c, &b) == 0);
	for (int i = 0; i < 10000; i++) {
		struct dp_impair_verdict va, vb;

		dp_impair_decide(a, (uint64_t)i, 1500, &va);
		dp_impair_decide(b, (uint64_t)i, 1500, &vb);
		differ += memcmp(&va, &vb, sizeof(va)) != 0;
	}
	CU_ASSERT_EQUAL(differ, 0);
	dp_impair_destroy(a);
	dp_impair_destroy(b);
}

static void expect_rate(uint64_t count, double p)
{
	double got = (double)count / N_PKTS;
	double sigma = sqrt(p * (1 - p) / N_PKTS);

	CU_ASSERT(fabs(got - p) <= 6 * sigma + 1e-9);
}

static void test_each_probability_holds(void)
{
	struct dp_impair_config c = {.seed = dj_test_seed(), .drop = 0.05,
				     .duplicate = 0.02, .corrupt = 0.03, .reorder = 0.1,
				     .delay = 0.01, .delay_ns = 1000, .reorder_ns = 10};
	struct dp_impair *im;
	struct dp_impair_stats st;
	uint64_t bad_off = 0, hold_early = 0;

	CU_ASSERT_FATAL(dp_impair_create(&c, &im) == 0);
	for (int i = 0; i < N_PKTS; i++) {
		struct dp_impair_verdict v;

		dp_impair_decide(im, 100, 64, &v);
		if (v.actions & DP_IMPAIR_DROP)
			CU_ASSERT_EQUAL(v.actions, DP_IMPAIR_DROP);
		if (v.actions & DP_IMPAIR_CORRUPT)
			bad_off += v.corrupt_off >= 64 || v.corrupt_xor == 0;
		if (v.actions & DP_IMPAIR_HOLD)
			hold_early += v.release_ns <= 100;
	}
	dp_impair_get_stats(im, &st);
	CU_ASSERT_EQUAL(st.packets, N_PKTS);
	expect_rate(st.dropped, 0.05);
	/* The others apply to packets that were not dropped. */
	expect_rate(st.duplicated, 0.02 * 0.95);
	expect_rate(st.corrupted, 0.03 * 0.95);
	expect_rate(st.delayed, 0.01 * 0.95);
	expect_rate(st.reordered, 0.1 * 0.99 * 0.95);
	CU_ASSERT_EQUAL(bad_off, 0);
	CU_ASSERT_EQUAL(hold_early, 0);
	dp_impair_destroy(im);
}

static void test_corrupt_flips_one_byte(void)
{
	struct dp_impair_config c = {.seed = 3, .corrupt = 1.0};
	struct dp_impair *im;
	struct dp_impair_verdict v;
	uint8_t pkt[100], orig[100];
	int changed = 0;

	memset(pkt, 0x5a, sizeof(pkt));
	memcpy(orig, pkt, sizeof(pkt));
	CU_ASSERT_FATAL(dp_impair_create(&c, &im) == 0);
	dp_impair_decide(im, 0, sizeof(pkt), &v);
	CU_ASSERT(v.actions & DP_IMPAIR_CORRUPT);
	dp_impair_corrupt(&v, pkt, sizeof(pkt));
	for (size_t i = 0; i < sizeof(pkt); i++)
		changed += pkt[i] != orig[i];
	CU_ASSERT_EQUAL(changed, 1);
	dp_impair_destroy(im);
}

static void test_config_validation_and_parse(void)
{
	struct dp_impair_config c = {.drop = 1.5};
	struct dp_impair *im = NULL;

	CU_ASSERT_EQUAL(dp_impair_create(&c, &im), -EINVAL);
	c.drop = NAN;
	CU_ASSERT_EQUAL(dp_impair_create(&c, &im), -EINVAL);
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(dp_impair_config_parse("drop=0.01,dup=0.5,reorder=0.2,"
					       "reorder_us=20,delay_us=100,seed=9", &c), 0);
	CU_ASSERT_DOUBLE_EQUAL(c.drop, 0.01, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(c.duplicate, 0.5, 1e-12);
	CU_ASSERT_EQUAL(c.reorder_ns, 20000);
	CU_ASSERT_EQUAL(c.delay_ns, 100000);
	CU_ASSERT_EQUAL(c.seed, 9);
	CU_ASSERT_EQUAL(dp_impair_config_parse("drop=2", &c), -EINVAL);
	CU_ASSERT_EQUAL(dp_impair_config_parse("loss=0.1", &c), -EINVAL);
	CU_ASSERT_EQUAL(dp_impair_config_parse("drop", &c), -EINVAL);
	CU_ASSERT_EQUAL(dp_impair_config_parse("delay_us=-1", &c), -EINVAL);
	/* A failed parse leaves the config as it was. */
	CU_ASSERT_DOUBLE_EQUAL(c.drop, 0.01, 1e-12);
}

static void test_hold_queue_order(void)
{
	struct dp_hold_queue *q;
	int v[6];
	void *out[6];

	CU_ASSERT_FATAL(dp_hold_queue_create(5, &q) == 0);
	CU_ASSERT_EQUAL(dp_hold_queue_next(q), UINT64_MAX);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[0], 30), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[1], 10), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[2], 20), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[3], 10), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[4], 5), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_push(q, &v[5], 1), -ENOBUFS);
	CU_ASSERT_EQUAL(dp_hold_queue_count(q), 5);
	CU_ASSERT_EQUAL(dp_hold_queue_next(q), 5);
	CU_ASSERT_EQUAL(dp_hold_queue_pop_due(q, 4, out, 6), 0);
	CU_ASSERT_EQUAL(dp_hold_queue_pop_due(q, 10, out, 6), 3);
	CU_ASSERT_PTR_EQUAL(out[0], &v[4]);
	CU_ASSERT_PTR_EQUAL(out[1], &v[1]); /* ties leave in arrival order */
	CU_ASSERT_PTR_EQUAL(out[2], &v[3]);
	CU_ASSERT_EQUAL(dp_hold_queue_pop_due(q, UINT64_MAX, out, 1), 1);
	CU_ASSERT_PTR_EQUAL(out[0], &v[2]);
	CU_ASSERT_EQUAL(dp_hold_queue_pop_due(q, UINT64_MAX, out, 6), 1);
	CU_ASSERT_PTR_EQUAL(out[0], &v[0]);
	CU_ASSERT_EQUAL(dp_hold_queue_count(q), 0);
	dp_hold_queue_destroy(q);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"same seed gives the same verdicts", test_same_seed_same_verdicts},
		{"each probability holds", test_each_probability_holds},
		{"corrupt flips exactly one byte", test_corrupt_flips_one_byte},
		{"config validation and parsing", test_config_validation_and_parse},
		{"hold queue releases in time order", test_hold_queue_order},
		{NULL, NULL},
	};
	dj_test_add_suite("proto_impair", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
