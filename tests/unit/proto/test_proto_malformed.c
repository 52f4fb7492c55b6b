/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Malformed and hostile packets: each one is rejected with its own reason,
 * counted, and never written; the session then completes the real transfer
 * byte-exact.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sim.h"

#define FS 1000u
#define NFRAG 101u
#define LEN ((NFRAG - 1) * FS + 17)
#define POISON 0xee

struct fixture {
	struct sim sim;
	uint8_t *src;
	uint8_t *dst;
	uint8_t frag[2][DP_WIRE_HDR_LEN + FS]; /* fragments 2 and NFRAG-1 */
	uint32_t frag_len[2];
};

static struct fixture fx;

static int fixture_init(void)
{
	struct dp_channel_config cfg;
	struct dp_frag_desc d[DP_CHANNEL_TX_BURST_MAX];
	unsigned n;

	sim_config(&cfg, FS);
	cfg.window = 64;
	cfg.initial_credit = 64;
	if (sim_init(&fx.sim, &cfg, &cfg, NULL, NULL))
		return -1;
	fx.src = malloc(LEN);
	fx.dst = malloc(LEN);
	for (uint32_t i = 0; i < LEN; i++)
		fx.src[i] = (uint8_t)(i * 7 + 3);
	memset(fx.dst, POISON, LEN);
	if (dp_channel_recv(fx.sim.ep[1], 1, fx.dst, LEN, DJ_MEM_HOST, NULL, 0) ||
	    dp_channel_send(fx.sim.ep[0], 1, fx.src, LEN, DJ_MEM_HOST, NULL, 0))
		return -1;
	/* Take fragment 2 as a template; what the sender handed out is lost. */
	n = dp_channel_tx_burst(fx.sim.ep[0], fx.sim.now, d, DP_CHANNEL_TX_BURST_MAX);
	if (n < 3 || d[2].frag_index != 2)
		return -1;
	memcpy(fx.frag[0], d[2].hdr, d[2].hdr_len);
	memcpy(fx.frag[0] + d[2].hdr_len, d[2].payload, d[2].payload_len);
	fx.frag_len[0] = d[2].hdr_len + d[2].payload_len;
	return 0;
}

static int fixture_fini(void)
{
	sim_fini(&fx.sim);
	free(fx.src);
	free(fx.dst);
	return 0;
}

static bool dst_untouched(void)
{
	for (uint32_t i = 0; i < LEN; i++)
		if (fx.dst[i] != POISON)
			return false;
	return true;
}

typedef void (*mutate_fn)(struct dp_wire_hdr *h);

/* Re-encode fragment 2 after mutate(), with a correct CRC so the check under
 * test is the one that fires, and inject it into the receiver. */
static void expect_reject(mutate_fn mutate, uint32_t extra_body,
			  enum dp_wire_reject want)
{
	uint8_t pkt[DP_WIRE_HDR_LEN + FS + 64];
	struct dp_wire_hdr h;
	struct dp_proto_stats before, after;
	struct dp_rx_pkt rx = {.hdr = pkt};
	enum dp_wire_reject why = DP_REJ_NONE;
	int rc;

	memcpy(pkt, fx.frag[0], fx.frag_len[0]);
	memset(pkt + fx.frag_len[0], 0x55, extra_body);
	CU_ASSERT_FATAL(dp_wire_hdr_decode(pkt, fx.frag_len[0], true, &h) == DP_REJ_NONE);
	mutate(&h);
	dp_wire_hdr_encode(&h, pkt);
	dp_wire_hdr_set_crc(pkt, dp_wire_crc(pkt, DP_WIRE_HDR_LEN, pkt + DP_WIRE_HDR_LEN,
					     h.payload_len <= FS + extra_body ? h.payload_len : 0,
					     true));
	rx.hdr_avail = fx.frag_len[0] + extra_body;
	dp_channel_stats(fx.sim.ep[1], &before);
	rc = dp_channel_input(fx.sim.ep[1], &rx, fx.sim.now, &why);
	dp_channel_stats(fx.sim.ep[1], &after);
	CU_ASSERT_EQUAL(rc, -EBADMSG);
	CU_ASSERT_EQUAL(why, want);
	CU_ASSERT_EQUAL(after.rx_reject[want], before.rx_reject[want] + 1);
	CU_ASSERT_EQUAL(after.rx_data, before.rx_data);
	CU_ASSERT(dst_untouched());
}

static void m_cookie(struct dp_wire_hdr *h) { h->cookie ^= 1; }
static void m_session(struct dp_wire_hdr *h) { h->session_id++; }
static void m_offset_past_end(struct dp_wire_hdr *h) { h->offset = LEN + 5; }
static void m_offset_overflow(struct dp_wire_hdr *h) { h->offset = UINT64_MAX - 10; }
static void m_len_past_end(struct dp_wire_hdr *h)
{
	h->offset = LEN - 17;
	h->frag_index = NFRAG - 1;
	h->payload_len = 18;
}
static void m_index_out_of_range(struct dp_wire_hdr *h) { h->frag_index = NFRAG; }
static void m_index_vs_offset(struct dp_wire_hdr *h) { h->frag_index = 3; }
static void m_short_payload(struct dp_wire_hdr *h) { h->payload_len = FS - 1; }
static void m_total(struct dp_wire_hdr *h) { h->total_len++; }
/* Another transfer whose id agrees in the low 32 bits: what a 32-bit id
 * (wire version 1) could not tell apart once the ids wrapped. */
static void m_wrapped_id(struct dp_wire_hdr *h) { h->transfer_id += 1ull << 32; }
static void m_transfer(struct dp_wire_hdr *h) { h->transfer_id = 99; }
static void m_beyond_window(struct dp_wire_hdr *h)
{
	h->frag_index = 70;
	h->offset = 70ull * FS;
}
static void m_no_crc_flag(struct dp_wire_hdr *h) { h->flags &= (uint16_t)~DP_WIRE_F_CRC; }
static void m_claims_more(struct dp_wire_hdr *h) { h->payload_len = FS + 100; }

static void test_semantic_rejections(void)
{
	expect_reject(m_cookie, 0, DP_REJ_BAD_COOKIE);
	expect_reject(m_session, 0, DP_REJ_BAD_SESSION);
	expect_reject(m_offset_past_end, 0, DP_REJ_OUT_OF_RANGE);
	expect_reject(m_offset_overflow, 0, DP_REJ_OUT_OF_RANGE);
	expect_reject(m_len_past_end, 0, DP_REJ_OUT_OF_RANGE);
	expect_reject(m_index_out_of_range, 0, DP_REJ_INDEX_MISMATCH);
	expect_reject(m_index_vs_offset, 0, DP_REJ_INDEX_MISMATCH);
	expect_reject(m_short_payload, 0, DP_REJ_INDEX_MISMATCH);
	expect_reject(m_total, 0, DP_REJ_TOTAL_MISMATCH);
	expect_reject(m_wrapped_id, 0, DP_REJ_UNKNOWN_TRANSFER);
	expect_reject(m_transfer, 0, DP_REJ_UNKNOWN_TRANSFER);
	expect_reject(m_beyond_window, 0, DP_REJ_BEYOND_WINDOW);
	expect_reject(m_no_crc_flag, 0, DP_REJ_BAD_CRC);
	expect_reject(m_claims_more, 0, DP_REJ_TRUNCATED);
}

/* Raw byte damage, no CRC repair. */
static void inject_raw(const uint8_t *pkt, uint32_t len, const void *payload,
		       uint32_t payload_avail, enum dp_wire_reject want)
{
	struct dp_rx_pkt rx = {.hdr = pkt, .hdr_avail = len, .payload = payload,
			       .payload_avail = payload_avail};
	enum dp_wire_reject why = DP_REJ_NONE;

	CU_ASSERT_EQUAL(dp_channel_input(fx.sim.ep[1], &rx, fx.sim.now, &why), -EBADMSG);
	CU_ASSERT_EQUAL(why, want);
	CU_ASSERT(dst_untouched());
}

static void test_byte_level_rejections(void)
{
	uint8_t pkt[sizeof(fx.frag[0])];
	uint32_t len = fx.frag_len[0];
	struct dp_proto_stats st;

	memcpy(pkt, fx.frag[0], len);
	inject_raw(pkt, 0, NULL, 0, DP_REJ_TRUNCATED);
	inject_raw(pkt, DP_WIRE_HDR_LEN - 1, NULL, 0, DP_REJ_TRUNCATED);
	inject_raw(pkt, len - 1, NULL, 0, DP_REJ_TRUNCATED);
	/* Header and payload in separate buffers, payload one byte short. */
	inject_raw(pkt, DP_WIRE_HDR_LEN, pkt + DP_WIRE_HDR_LEN, FS - 1, DP_REJ_TRUNCATED);
	pkt[0] ^= 0xff;
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_MAGIC);
	pkt[0] ^= 0xff;
	pkt[2] = DP_WIRE_VERSION + 1;
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_VERSION);
	pkt[2] = DP_WIRE_VERSION;
	pkt[3] = 0;
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_TYPE);
	pkt[3] = DP_PKT_DATA;
	pkt[7] = 50; /* hdr_len */
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_HDR_LEN);
	pkt[7] = DP_WIRE_HDR_LEN;
	pkt[DP_WIRE_HDR_LEN + 500] ^= 0x01; /* payload bit flip */
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_CRC);
	pkt[DP_WIRE_HDR_LEN + 500] ^= 0x01;
	pkt[30] ^= 0x01; /* header bit flip in frag_index */
	inject_raw(pkt, len, NULL, 0, DP_REJ_BAD_CRC);
	pkt[30] ^= 0x01;
	dp_channel_stats(fx.sim.ep[1], &st);
	CU_ASSERT_EQUAL(st.rx_reject[DP_REJ_BAD_VERSION], 1);
	CU_ASSERT_EQUAL(st.rx_reject[DP_REJ_BAD_MAGIC], 1);
	CU_ASSERT(st.rx_reject[DP_REJ_BAD_CRC] >= 2);
	CU_ASSERT_EQUAL(st.rx_data, 0);
}

/* Hostile feedback to the sender. */
static void inject_ack(enum dp_pkt_type type, uint64_t id,
		       const struct dp_wire_ranges *r, uint16_t nranges_raw,
		       enum dp_wire_reject want)
{
	uint8_t pkt[DP_WIRE_HDR_LEN + DP_WIRE_RANGES_FIXED_LEN + 8 * 17];
	struct dp_wire_hdr h = {
		.magic = DP_WIRE_MAGIC, .version = DP_WIRE_VERSION, .type = (uint8_t)type,
		.flags = DP_WIRE_F_CRC, .hdr_len = DP_WIRE_HDR_LEN, .session_id = 7,
		.cookie = 0x0123456789abcdefull, .transfer_id = id, .total_len = LEN,
	};
	struct dp_rx_pkt rx = {.hdr = pkt};
	enum dp_wire_reject why;

	memset(pkt, 0, sizeof(pkt));
	h.payload_len = (uint32_t)dp_wire_ranges_encode(r, pkt + DP_WIRE_HDR_LEN);
	if (nranges_raw) {
		pkt[DP_WIRE_HDR_LEN + 12] = 0;
		pkt[DP_WIRE_HDR_LEN + 13] = (uint8_t)nranges_raw;
		h.payload_len = DP_WIRE_RANGES_FIXED_LEN + 8u * nranges_raw;
	}
	dp_wire_hdr_encode(&h, pkt);
	dp_wire_hdr_set_crc(pkt, dp_wire_crc(pkt, DP_WIRE_HDR_LEN, pkt + DP_WIRE_HDR_LEN,
					     h.payload_len, true));
	rx.hdr_avail = DP_WIRE_HDR_LEN + h.payload_len;
	CU_ASSERT_NOT_EQUAL(dp_channel_input(fx.sim.ep[0], &rx, fx.sim.now, &why), 0);
	CU_ASSERT_EQUAL(why, want);
}

static void test_hostile_feedback(void)
{
	struct dp_wire_ranges r = {.cum = 0, .credit = 64, .trigger = UINT32_MAX};

	inject_ack(DP_PKT_ACK, 1, &r, 17, DP_REJ_BAD_BODY);
	r.cum = NFRAG; /* acknowledges fragments never sent */
	inject_ack(DP_PKT_ACK, 1, &r, 0, DP_REJ_OUT_OF_RANGE);
	r.cum = 0;
	inject_ack(DP_PKT_NACK, 42, &r, 0, DP_REJ_UNKNOWN_TRANSFER);
	/* The id of the transfer in flight plus 2^32: not this transfer. */
	inject_ack(DP_PKT_ACK, 1 + (1ull << 32), &r, 0, DP_REJ_UNKNOWN_TRANSFER);
	r.nranges = 1;
	r.range[0] = (struct dp_wire_range){9, 3};
	inject_ack(DP_PKT_ACK, 1, &r, 0, DP_REJ_BAD_BODY);
}

/* A zero credit with nothing in flight would leave no timer running: the
 * sender keeps one fragment of credit so the transfer cannot stall. */
static void test_zero_credit_does_not_stall(void)
{
	uint8_t src[5 * 16], pkt[DP_WIRE_HDR_LEN + DP_WIRE_RANGES_FIXED_LEN];
	struct dp_wire_ranges r = {.cum = 2, .credit = 0, .trigger = UINT32_MAX};
	struct dp_wire_hdr h = {
		.magic = DP_WIRE_MAGIC, .version = DP_WIRE_VERSION, .type = DP_PKT_ACK,
		.flags = DP_WIRE_F_CRC, .hdr_len = DP_WIRE_HDR_LEN, .session_id = 7,
		.cookie = 0x0123456789abcdefull, .transfer_id = 1, .total_len = sizeof(src),
	};
	struct dp_rx_pkt rx = {.hdr = pkt, .hdr_avail = sizeof(pkt)};
	struct dp_frag_desc d[8];
	struct dp_channel_config cfg;
	struct dp_channel *s;

	sim_config(&cfg, 16);
	cfg.initial_credit = 2;
	CU_ASSERT_FATAL(dp_channel_create(&cfg, &s) == 0);
	CU_ASSERT_FATAL(dp_channel_send(s, 1, src, sizeof(src), DJ_MEM_HOST, NULL, 0) == 0);
	CU_ASSERT_EQUAL(dp_channel_tx_burst(s, 0, d, 8), 2);
	h.payload_len = (uint32_t)dp_wire_ranges_encode(&r, pkt + DP_WIRE_HDR_LEN);
	dp_wire_hdr_encode(&h, pkt);
	dp_wire_hdr_set_crc(pkt, dp_wire_crc(pkt, DP_WIRE_HDR_LEN, pkt + DP_WIRE_HDR_LEN,
					     h.payload_len, true));
	CU_ASSERT_EQUAL(dp_channel_input(s, &rx, 10, NULL), 0);
	CU_ASSERT_EQUAL(dp_channel_tx_burst(s, 10, d, 8), 1);
	CU_ASSERT_EQUAL(d[0].frag_index, 2);
	dp_channel_destroy(s);
}

/* After all that abuse, the real transfer completes byte-exact, and a
 * duplicate is ignored and counted. */
static void test_still_serving(void)
{
	unsigned want[2] = {1, 1};
	struct dp_proto_stats st;
	struct dp_rx_pkt rx = {.hdr = fx.frag[0], .hdr_avail = fx.frag_len[0]};

	CU_ASSERT_EQUAL(dp_channel_input(fx.sim.ep[1], &rx, fx.sim.now, NULL), 0);
	CU_ASSERT_EQUAL(dp_channel_input(fx.sim.ep[1], &rx, fx.sim.now, NULL), -EALREADY);
	CU_ASSERT(sim_run(&fx.sim, want, fx.sim.now + 10000000000ull));
	CU_ASSERT(sim_event(&fx.sim, 0, DP_XFER_TX, 1)->status == 0);
	CU_ASSERT(sim_event(&fx.sim, 1, DP_XFER_RX, 1)->status == 0);
	CU_ASSERT(memcmp(fx.src, fx.dst, LEN) == 0);
	dp_channel_stats(fx.sim.ep[1], &st);
	CU_ASSERT(st.rx_reject[DP_REJ_DUPLICATE] >= 1);
	CU_ASSERT_EQUAL(st.rx_data, NFRAG);
	/* Late packets of a finished transfer: a duplicate, not an error. */
	CU_ASSERT_EQUAL(dp_channel_input(fx.sim.ep[1], &rx, fx.sim.now, NULL), -EALREADY);
}

/* A "GPU" destination of more than 4 GiB, never touched: placements are
 * only recorded, so 64-bit offsets are checked without the memory. */
struct placement_log {
	uint64_t last_off;
	uint32_t last_len;
	unsigned calls;
};

static void log_place(void *ctx, void *user, void *base, uint64_t off,
		      const void *src, uint32_t len)
{
	struct placement_log *log = ctx;

	log->last_off = off;
	log->last_len = len;
	log->calls++;
}

static int inject_data(struct dp_channel *s, uint32_t idx, uint64_t off, uint64_t total,
		       uint32_t plen)
{
	static uint8_t pkt[DP_WIRE_HDR_LEN + 8192];
	struct dp_wire_hdr h = {
		.magic = DP_WIRE_MAGIC, .version = DP_WIRE_VERSION, .type = DP_PKT_DATA,
		.flags = DP_WIRE_F_CRC, .hdr_len = DP_WIRE_HDR_LEN, .session_id = 7,
		.payload_len = plen, .cookie = 0x0123456789abcdefull, .transfer_id = 3,
		.frag_index = idx, .offset = off, .total_len = total,
	};
	struct dp_rx_pkt rx = {.hdr = pkt, .hdr_avail = DP_WIRE_HDR_LEN + plen};

	dp_wire_hdr_encode(&h, pkt);
	dp_wire_hdr_set_crc(pkt, dp_wire_crc(pkt, DP_WIRE_HDR_LEN, pkt + DP_WIRE_HDR_LEN,
					     plen, true));
	return dp_channel_input(s, &rx, 0, NULL);
}

static void test_offsets_past_4gib(void)
{
	const uint32_t fs = 8192;
	const uint64_t total = (5ull << 30) + 123;
	const uint32_t count = (uint32_t)(total / fs + 1);
	struct placement_log log = {0};
	struct dp_channel_config cfg;
	struct dp_channel *s;
	uint32_t idx = 600000; /* offset 4.9 GB */

	sim_config(&cfg, fs);
	cfg.max_transfers = 1;
	cfg.window = 1u << 20;
	cfg.place = log_place;
	cfg.place_ctx = &log;
	CU_ASSERT_FATAL(dp_channel_create(&cfg, &s) == 0);
	CU_ASSERT_FATAL(dp_channel_recv(s, 3, (void *)0x1000, total, DJ_MEM_GPU, NULL, 0) == 0);
	CU_ASSERT_EQUAL(inject_data(s, idx, (uint64_t)idx * fs, total, fs), 0);
	CU_ASSERT_EQUAL(log.last_off, 600000ull * 8192);
	/* The same offset truncated to 32 bits is inconsistent with the index. */
	CU_ASSERT_EQUAL(inject_data(s, idx + 1, (uint32_t)((idx + 1ull) * fs), total, fs),
			-EBADMSG);
	/* The short last fragment, at 5 GiB. */
	CU_ASSERT_EQUAL(inject_data(s, count - 1, total - 123, total, 123), 0);
	CU_ASSERT_EQUAL(log.last_off, 5ull << 30);
	CU_ASSERT_EQUAL(log.last_len, 123);
	CU_ASSERT_EQUAL(log.calls, 2);
	dp_channel_destroy(s);

	/* A smaller window: inside the transfer but past the credit. */
	cfg.window = 1u << 16;
	CU_ASSERT_FATAL(dp_channel_create(&cfg, &s) == 0);
	CU_ASSERT_FATAL(dp_channel_recv(s, 3, (void *)0x1000, total, DJ_MEM_GPU, NULL, 0) == 0);
	CU_ASSERT_EQUAL(inject_data(s, idx, (uint64_t)idx * fs, total, fs), -EBADMSG);
	CU_ASSERT_EQUAL(log.calls, 2);
	dp_channel_destroy(s);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"semantic rejections (CRC repaired)", test_semantic_rejections},
		{"byte-level damage", test_byte_level_rejections},
		{"hostile ACK/NACK to the sender", test_hostile_feedback},
		{"zero credit does not stall", test_zero_credit_does_not_stall},
		{"still serving afterwards", test_still_serving},
		{"64-bit offsets past 4 GiB", test_offsets_past_4gib},
		{NULL, NULL},
	};
	dj_test_add_suite("proto_malformed", fixture_init, fixture_fini, cases);
	return dj_test_main(argc, argv);
}
