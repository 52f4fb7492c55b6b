/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine in one process over net_ring pairs (no NIC, no hugepages):
 * port setup and its errors, zero-copy frames and their buffer references,
 * transfers between two engines, malformed and foreign packets counted and
 * dropped while the engine keeps serving, and the API's error returns.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "harness.h"
#include "ring_pair.h"

#define IP_A 0x0a630001u
#define IP_B 0x0a630002u
#define IP_C 0x0a630003u
#define COOKIE 0xc0ffee0011223344ull

static struct rte_mempool *inject_pool;
static void test_port_errors(void)
{
	struct dp_port_config cfg = {0};
	struct dp_port *port = NULL;
	uint16_t a, b;

	dj_test_ring_pair(&a, &b, NULL);
	CU_ASSERT_EQUAL(dp_port_create(NULL, &port), -EINVAL);
	cfg.port_id = RTE_MAX_ETHPORTS - 1;
	CU_ASSERT_EQUAL(dp_port_create(&cfg, &port), -EINVAL);
	cfg.port_id = a;
	cfg.frame_size = 64;
	CU_ASSERT_EQUAL(dp_port_create(&cfg, &port), -EINVAL);
	cfg.frame_size = 0;
	cfg.nb_queues = 2; /* a ring port made from one ring has one queue */
	CU_ASSERT_EQUAL(dp_port_create(&cfg, &port), -EINVAL);
	cfg.nb_queues = 1;
	CU_ASSERT_EQUAL_FATAL(dp_port_create(&cfg, &port), 0);
	CU_ASSERT_STRING_EQUAL(dp_port_get_caps(port)->driver, "net_ring");
	CU_ASSERT(dp_port_get_caps(port)->multi_seg);
	CU_ASSERT_EQUAL(dp_port_get_config(port)->frame_size, 1514);
	CU_ASSERT_EQUAL(dp_port_find("no-such-port", &b), -ENODEV);
	dp_port_destroy(port);
}

static int released;

static void count_release(void *addr, void *opaque)
{
	(void)addr;
	*(int *)opaque += 1;
}

static void test_frame_zero_copy(void)
{
	struct dp_port_config cfg = {.frame_size = 9014};
	struct rte_mbuf_ext_shared_info shinfo = {.free_cb = count_release, .fcb_opaque = &released};
	static uint8_t payload[4000];
	uint8_t hdr[98];
	struct dp_port *port;
	struct rte_mbuf *big, *small;
	uint16_t b;

	dj_test_ring_pair(&cfg.port_id, &b, NULL);
	CU_ASSERT_EQUAL_FATAL(dp_port_create(&cfg, &port), 0);
	memset(hdr, 0xab, sizeof(hdr));
	memset(payload, 0xcd, sizeof(payload));
	rte_mbuf_ext_refcnt_set(&shinfo, 1);
	released = 0;

	big = dp_port_frame_build(port, 0, hdr, sizeof(hdr), payload, sizeof(payload), &shinfo);
	CU_ASSERT_FATAL(big != NULL);
	CU_ASSERT_EQUAL(big->nb_segs, 2);
	CU_ASSERT_EQUAL(big->pkt_len, sizeof(hdr) + sizeof(payload));
	CU_ASSERT_EQUAL(big->data_len, sizeof(hdr));
	/* attached, not copied */
	CU_ASSERT_PTR_EQUAL(rte_pktmbuf_mtod(big->next, void *), payload);
	CU_ASSERT_EQUAL(rte_mbuf_ext_refcnt_read(&shinfo), 2);

	small = dp_port_frame_build(port, 0, hdr, sizeof(hdr), payload, 100, &shinfo);
	CU_ASSERT_FATAL(small != NULL);
	CU_ASSERT_EQUAL(small->nb_segs, 1);
	CU_ASSERT_EQUAL(memcmp(rte_pktmbuf_mtod_offset(small, void *, sizeof(hdr)), payload, 100), 0);
	CU_ASSERT_EQUAL(rte_mbuf_ext_refcnt_read(&shinfo), 2);

	rte_pktmbuf_free(small);
	rte_pktmbuf_free(big);
	CU_ASSERT_EQUAL(rte_mbuf_ext_refcnt_read(&shinfo), 1);
	CU_ASSERT_EQUAL(released, 0);
	dp_port_destroy(port);
}

/* ---- two engines ------------------------------------------------------------------- */

struct duo {
	struct dp_engine *a, *b;
	struct rte_ring *a_to_b;
	uint16_t port_a, port_b;
};

/* Idle naps of the engines duo_start() makes (0: pure polling), and the
 * idle mode of its engine b (a's follows engine_idle_us). */
static uint32_t engine_idle_us;
static enum dp_idle engine_idle_b;

static int engine_create(uint16_t port, uint32_t ip, const struct dp_engine_placer *placer,
			 struct dp_engine **dp)
{
	struct dp_engine_config cfg = {0};

	cfg.placer = placer;
	cfg.idle_sleep_us = engine_idle_us;
	cfg.idle = ip == IP_B ? engine_idle_b : DP_IDLE_DEFAULT;
	cfg.port.port_id = port;
	cfg.port.frame_size = 9014;
	cfg.local.ipv4 = ip;
	return dp_engine_create(&cfg, dp);
}

static void peer_of(struct dp_engine *dp, struct dp_endpoint *ep)
{
	dp_engine_endpoint(dp, ep);
}

static void duo_start_placer(struct duo *d, const struct dp_engine_placer *placer_b)
{
	struct dp_endpoint ea, eb;

	dj_test_ring_pair(&d->port_a, &d->port_b, &d->a_to_b);
	CU_ASSERT_EQUAL_FATAL(engine_create(d->port_a, IP_A, NULL, &d->a), 0);
	CU_ASSERT_EQUAL_FATAL(engine_create(d->port_b, IP_B, placer_b, &d->b), 0);
	peer_of(d->a, &ea);
	peer_of(d->b, &eb);
	CU_ASSERT_EQUAL(rte_be_to_cpu_32(ea.ipv4), IP_A);
	CU_ASSERT_EQUAL(ea.udp_port, DP_WIRE_UDP_PORT);
	CU_ASSERT_EQUAL(ea.mtu, 9000);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d->a, 7, COOKIE, &eb), 0);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d->b, 7, COOKIE, &ea), 0);
}

static void duo_start(struct duo *d)
{
	duo_start_placer(d, NULL);
}

/* Each engine holds the other's mbufs (frames in flight, a placer's held
 * ones): both lcores stop before either engine frees its pools, and the
 * receiver, which holds most, goes first. */
static void engines_stop(struct dp_engine *a, struct dp_engine *b)
{
	dp_engine_quiesce(a);
	dp_engine_quiesce(b);
	dp_engine_destroy(b);
	dp_engine_destroy(a);
}

/* The ports go back to EAL too: a process has 32 (RTE_MAX_ETHPORTS). */
static void duo_stop(struct duo *d)
{
	engines_stop(d->a, d->b);
	rte_eth_dev_close(d->port_a);
	rte_eth_dev_close(d->port_b);
}

/* Send len random bytes a -> b as transfer id and check them. */
static void xfer_check(struct dp_engine *a, struct dp_engine *b, uint64_t cookie,
		       uint64_t id, size_t len)
{
	uint8_t *src = malloc(len ? len : 1), *dst = calloc(1, len ? len : 1);
	unsigned int seed = dj_test_seed() + (unsigned int)id;

	CU_ASSERT_FATAL(src != NULL && dst != NULL);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)rand_r(&seed);
	CU_ASSERT_EQUAL(dp_engine_expect(b, cookie, id, dst, len, DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_send(a, cookie, id, src, len, DJ_MEM_HOST, 10000), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(b, cookie, id, 10000), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, len), 0);
	free(src);
	free(dst);
}

static void transfer_check(struct duo *d, uint64_t id, size_t len)
{
	xfer_check(d->a, d->b, COOKIE, id, len);
}

static void test_transfers(void)
{
	struct dp_engine_stats st;
	struct duo d;

	duo_start(&d);
	transfer_check(&d, 1, 0);
	transfer_check(&d, 2, 1);
	transfer_check(&d, 3, 8944);     /* exactly one fragment at MTU 9000 */
	transfer_check(&d, 4, 8945);
	transfer_check(&d, 5, 3u << 20); /* zero-copy fragments */
	dp_engine_get_stats(d.b, &st, NULL);
	CU_ASSERT_EQUAL(st.idle_naps, 0); /* pure polling by default */
	duo_stop(&d);
}

/* The engine's lcores took an idle nap (within 2 s: a loaded machine may
 * not run them at once). */
static bool naps_seen(struct dp_engine *dp)
{
	uint64_t until = djc_time_ns() + 2000000000ull;
	struct dp_engine_stats st;

	do {
		dp_engine_get_stats(dp, &st, NULL);
		if (st.idle_naps > 0)
			return true;
		usleep(1000);
	} while (djc_time_ns() < until);
	return false;
}

/* Lcores that nap when idle still serve every transfer, and a 1 MiB
 * transfer keeps them busy enough not to nap in the middle of it. Engine b
 * is in interrupt mode on a port without rx interrupts (net_ring): it naps
 * as a, and never sleeps on an interrupt. */
static void test_idle_naps(void)
{
	struct dp_engine_stats st;
	struct duo d;
	uint64_t t0;

	engine_idle_us = 200;
	engine_idle_b = DP_IDLE_INTERRUPT;
	duo_start(&d);
	usleep(20000); /* both lcores are napping now */
	CU_ASSERT(naps_seen(d.a));
	CU_ASSERT(naps_seen(d.b));
	t0 = djc_time_ns();
	transfer_check(&d, 1, 100);
	transfer_check(&d, 2, 1u << 20);
	CU_ASSERT(djc_time_ns() - t0 < 2000000000ull);
	dp_engine_get_stats(d.b, &st, NULL);
	CU_ASSERT_EQUAL(st.idle_sleeps, 0);
	CU_ASSERT_EQUAL(st.idle_rx_wakes, 0);
	duo_stop(&d);
	engine_idle_us = 0;
	engine_idle_b = DP_IDLE_DEFAULT;
}

static void test_api_errors(void)
{
	struct dp_engine_config bad = {0};
	struct dp_endpoint ep;
	struct dp_engine *dp;
	uint8_t buf[16];
	struct duo d;

	bad.impair = "drop=2";
	CU_ASSERT_EQUAL(dp_engine_create(&bad, &dp), -EINVAL);
	duo_start(&d);
	dp_engine_endpoint(d.b, &ep);
	CU_ASSERT_EQUAL(dp_engine_session_open(d.a, 7, COOKIE, &ep), -EEXIST);
	CU_ASSERT_EQUAL(dp_engine_send(d.a, COOKIE + 1, 1, buf, 1, DJ_MEM_HOST, 100), -ENOENT);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE + 1, 1, buf, 1, DJ_MEM_HOST), -ENOENT);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 99, 10), -ENOENT);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 9, buf, sizeof(buf), DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 9, buf, sizeof(buf), DJ_MEM_HOST), -EEXIST);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 9, 10), -ETIMEDOUT);
	CU_ASSERT_EQUAL(dp_engine_cancel(d.b, COOKIE, 9), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 9, 10), -ENOENT);
	CU_ASSERT_EQUAL(dp_engine_cancel(d.b, COOKIE, 9), -ENOENT);
	/* Nobody expects transfer 10 at b: the sender gives up. */
	CU_ASSERT_NOT_EQUAL(dp_engine_send(d.a, COOKIE, 10, buf, 1, DJ_MEM_HOST, 300), 0);
	transfer_check(&d, 11, 1000); /* and the session still works */
	/* Transfer ids are 64 bits end to end (wire version 2): one that
	 * differs from 11 only above bit 31 is another transfer. */
	transfer_check(&d, 11 + (1ull << 32), 1000);
	transfer_check(&d, UINT64_MAX, 1000);
	dp_engine_session_close(d.a, COOKIE);
	CU_ASSERT_EQUAL(dp_engine_send(d.a, COOKIE, 12, buf, 1, DJ_MEM_HOST, 100), -ENOENT);
	duo_stop(&d);
}

static void test_probe(void)
{
	uint64_t rtt = 0, t0;
	struct duo d;

	duo_start(&d);
	CU_ASSERT_EQUAL(dp_engine_probe(d.a, COOKIE, 2000, &rtt), 0);
	CU_ASSERT(rtt > 0 && rtt < 2000000000ull);
	CU_ASSERT_EQUAL(dp_engine_probe(d.a, COOKIE + 1, 100, &rtt), -ENOENT);
	/* The peer forgets the session: no PONG, the probe ends at its timeout. */
	dp_engine_session_close(d.b, COOKIE);
	t0 = djc_time_ns();
	CU_ASSERT_EQUAL(dp_engine_probe(d.a, COOKIE, 50, &rtt), -ETIMEDOUT);
	CU_ASSERT(djc_time_ns() - t0 < 1000000000ull);
	duo_stop(&d);
}

/* One transfer in two parts, one per session (sessions 7 and 8, one per
 * queue): each part lands at its offset of one buffer, byte-exact. Then
 * the errors: no parts, too many, a part of an unknown session, which
 * stops the part that had started, and a part the peer never expects. */
static void striped_check(struct dp_engine *a, struct dp_engine *b)
{
	size_t len = (3u << 20) + 7, half = ((len / 2) + 63) & ~(size_t)63;
	uint8_t *src = malloc(len), *dst = calloc(1, len);
	unsigned int seed = dj_test_seed();
	struct dp_send_part parts[2] = {
		{COOKIE + 7, src, half}, {COOKIE + 8, src + half, len - half},
	};
	struct dp_send_part bad[2] = {{COOKIE + 7, src, half}, {COOKIE + 99, src, 1}};

	CU_ASSERT_FATAL(src != NULL && dst != NULL);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)rand_r(&seed);
	CU_ASSERT_EQUAL(dp_engine_expect(b, COOKIE + 7, 30, dst, half, DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_expect(b, COOKIE + 8, 30, dst + half, len - half,
					 DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_send_parts(a, parts, 2, 30, 10000), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(b, COOKIE + 7, 30, 10000), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(b, COOKIE + 8, 30, 10000), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, len), 0);

	CU_ASSERT_EQUAL(dp_engine_send_parts(a, parts, 0, 31, 1000), -EINVAL);
	CU_ASSERT_EQUAL(dp_engine_send_parts(a, parts, DP_SEND_PARTS_MAX + 1, 31, 1000),
			-EINVAL);
	CU_ASSERT_EQUAL(dp_engine_send_parts(NULL, parts, 2, 31, 1000), -EINVAL);
	CU_ASSERT_EQUAL(dp_engine_send_parts(a, bad, 2, 32, 1000), -ENOENT);

	/* A part the peer never expects stalls: the whole fails with the
	 * stalled part's -ETIMEDOUT after one timeout (not the -ECANCELED of
	 * a part it stopped), and the part that was expected landed. */
	uint64_t t0 = djc_time_ns();

	memset(dst, 0, len);
	CU_ASSERT_EQUAL(dp_engine_expect(b, COOKIE + 7, 33, dst, half, DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_send_parts(a, parts, 2, 33, 300), -ETIMEDOUT);
	CU_ASSERT(djc_time_ns() - t0 < 5000000000ull);
	CU_ASSERT_EQUAL(dp_engine_wait(b, COOKIE + 7, 33, 1000), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, half), 0);
	free(src);
	free(dst);
}

/* Two queue pairs a side, two sessions: each on its own queue and lcore
 * (session id % 2), both directions. */
static void test_two_queues(void)
{
	struct rte_ring *ab[2], *ba[2];
	struct dp_engine *a, *b;
	struct dp_endpoint ea, eb;
	struct dp_engine_config cfg = {0};
	char name[32];
	int pa, pb;

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "dj2qab%d", i);
		ab[i] = rte_ring_create(name, 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "dj2qba%d", i);
		ba[i] = rte_ring_create(name, 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		CU_ASSERT_FATAL(ab[i] != NULL && ba[i] != NULL);
	}
	pa = rte_eth_from_rings("net_ring2qA", ba, 2, ab, 2, 0);
	pb = rte_eth_from_rings("net_ring2qB", ab, 2, ba, 2, 0);
	CU_ASSERT_FATAL(pa >= 0 && pb >= 0);
	cfg.port.nb_queues = 2;
	cfg.port.frame_size = 9014;
	cfg.port.port_id = (uint16_t)pa;
	cfg.local.ipv4 = IP_A;
	CU_ASSERT_EQUAL_FATAL(dp_engine_create(&cfg, &a), 0);
	cfg.port.port_id = (uint16_t)pb;
	cfg.local.ipv4 = IP_B;
	CU_ASSERT_EQUAL_FATAL(dp_engine_create(&cfg, &b), 0);
	dp_engine_endpoint(a, &ea);
	dp_engine_endpoint(b, &eb);
	CU_ASSERT_EQUAL(ea.n_queues, 2);
	for (uint64_t s = 7; s <= 8; s++) {
		CU_ASSERT_EQUAL(dp_engine_session_open(a, s, COOKIE + s, &eb), 0);
		CU_ASSERT_EQUAL(dp_engine_session_open(b, s, COOKIE + s, &ea), 0);
	}
	for (uint64_t s = 7; s <= 8; s++) {
		xfer_check(a, b, COOKIE + s, 1, 2u << 20);
		xfer_check(b, a, COOKIE + s, 2, 2u << 20);
	}
	/* Both lcores of each side carried a session. */
	for (unsigned int i = 0; i < 2; i++) {
		struct dp_engine_stats st;

		CU_ASSERT_EQUAL(dp_engine_lcore_stats(b, i, &st), 0);
		CU_ASSERT(st.rx_packets > 200);
		CU_ASSERT_EQUAL(dp_engine_lcore_stats(a, i, &st), 0);
		CU_ASSERT(st.rx_packets > 200);
	}
	CU_ASSERT_EQUAL(dp_engine_lcore_stats(a, 2, &(struct dp_engine_stats){0}), -ENOENT);
	striped_check(a, b);
	engines_stop(a, b);
}

/* ---- GPU placement plug-in ------------------------------------------------------------- */

/* A stand-in for the GPU sink: copies late (at sync), holds the mbufs
 * until then, like a gather kernel reading them. */
struct fake_placer {
	struct { void *dst; const void *src; uint32_t len; } copy[4096];
	unsigned int n_copies, places, syncs, lcores, out_of_range;
	struct rte_mbuf *held[4096];
	unsigned int n_held, max_held;
};

static int fp_init(void *ctx, unsigned int idx, void **state)
{
	struct fake_placer *fp = ctx;

	(void)idx;
	fp->lcores++;
	*state = fp;
	return 0;
}

static void fp_fini(void *state)
{
	struct fake_placer *fp = state;

	rte_pktmbuf_free_bulk(fp->held, fp->n_held);
	fp->n_held = 0;
}

static void fp_place(void *state, void *base, uint64_t base_len, uint64_t off,
		     const void *src, uint32_t len)
{
	struct fake_placer *fp = state;

	fp->places++;
	fp->out_of_range += off + len > base_len;
	fp->copy[fp->n_copies].dst = (uint8_t *)base + off;
	fp->copy[fp->n_copies].src = src;
	fp->copy[fp->n_copies++].len = len;
}

static int fp_burst_end(void *state, struct rte_mbuf **m, uint16_t n)
{
	struct fake_placer *fp = state;

	for (uint16_t i = 0; i < n; i++)
		fp->held[fp->n_held++] = m[i];
	fp->max_held = fp->n_held > fp->max_held ? fp->n_held : fp->max_held;
	return 0;
}

static int fp_sync(void *state)
{
	struct fake_placer *fp = state;

	for (unsigned int i = 0; i < fp->n_copies; i++)
		memcpy(fp->copy[i].dst, fp->copy[i].src, fp->copy[i].len);
	fp->n_copies = 0;
	rte_pktmbuf_free_bulk(fp->held, fp->n_held);
	fp->n_held = 0;
	fp->syncs++;
	return 0;
}

static void test_gpu_placer(void)
{
	static struct fake_placer fp;
	const struct dp_engine_placer placer = {
		.lcore_init = fp_init, .lcore_fini = fp_fini, .place = fp_place,
		.burst_end = fp_burst_end, .sync = fp_sync, .ctx = &fp,
	};
	size_t len = 1u << 20;
	uint8_t *src = malloc(len), *dst = calloc(1, len);
	struct duo d;

	CU_ASSERT_FATAL(src != NULL && dst != NULL);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 7 + 3);
	duo_start_placer(&d, &placer);
	CU_ASSERT_EQUAL(fp.lcores, 1);
	/* "GPU" memory: only the placer writes it, and only at sync */
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 1, dst, len, DJ_MEM_GPU), 0);
	CU_ASSERT_EQUAL(dp_engine_send(d.a, COOKIE, 1, src, len, DJ_MEM_HOST, 10000), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 1, 10000), 0);
	CU_ASSERT_EQUAL(memcmp(src, dst, len), 0);
	CU_ASSERT(fp.places >= len / 8944);
	CU_ASSERT_EQUAL(fp.out_of_range, 0);
	CU_ASSERT(fp.max_held > 0);
	CU_ASSERT(fp.syncs > 0);
	duo_stop(&d);
	CU_ASSERT_EQUAL(fp.n_held, 0);

	/* without a placer a GPU destination is refused */
	duo_start(&d);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 2, dst, len, DJ_MEM_GPU), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 2, 1000), -ENOTSUP);
	duo_stop(&d);
	free(src);
	free(dst);
}

/* ---- malformed and foreign packets ----------------------------------------------------- */

static void inject_ring(struct rte_ring *r, const void *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(inject_pool);

	CU_ASSERT_FATAL(m != NULL);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), frame, len);
	CU_ASSERT_EQUAL(rte_ring_enqueue(r, m), 0);
}

static void inject(struct duo *d, const void *frame, size_t len)
{
	inject_ring(d->a_to_b, frame, len);
}

/* Who a forged frame claims to be: session, cookie, the sender's IPv4,
 * and the queue pair it is addressed from and to (UDP ports base + queue,
 * as an engine sends a session's frames). */
struct forged {
	uint32_t session;
	uint64_t cookie;
	uint32_t src_ip;
	uint16_t queue;
	uint8_t fill;     /* the payload's bytes */
};

/* The DATA frame of w, fragment 0 of a 100-byte transfer 1, to IP_B. */
static size_t forged_frame(uint8_t *f, const struct forged *w, uint8_t version)
{
	struct dp_netaddr src = {.ipv4 = w->src_ip, .port = DP_WIRE_UDP_PORT + w->queue};
	struct dp_netaddr dst = {.ipv4 = IP_B, .port = DP_WIRE_UDP_PORT + w->queue};
	struct dp_wire_hdr h = {
		.magic = DP_WIRE_MAGIC, .version = version, .type = DP_PKT_DATA,
		.flags = DP_WIRE_F_CRC, .hdr_len = DP_WIRE_HDR_LEN, .session_id = w->session,
		.payload_len = 100, .cookie = w->cookie, .transfer_id = 1,
		.total_len = 100,
	};
	uint8_t *hdr = f + DP_WIRE_ENCAP_LEN;

	memset(dst.mac, 0xff, sizeof(dst.mac));
	dp_wire_encap_build(f, &src, &dst, DP_WIRE_HDR_LEN + 100, 1);
	dp_wire_hdr_encode(&h, hdr);
	memset(hdr + DP_WIRE_HDR_LEN, w->fill, 100);
	dp_wire_hdr_set_crc(hdr, dp_wire_crc(hdr, DP_WIRE_HDR_LEN, hdr + DP_WIRE_HDR_LEN, 100, true));
	return DP_WIRE_FULL_HDR_LEN + 100;
}

/* A DATA frame a -> b of session 7 (queue 0) for transfer 1, fragment 0 of
 * a 100-byte transfer, bytes 0x5a. */
static size_t data_frame(uint8_t *f, uint64_t cookie, uint8_t version)
{
	const struct forged w = {.session = 7, .cookie = cookie, .src_ip = IP_A, .fill = 0x5a};

	return forged_frame(f, &w, version);
}

/* Wait until the engine has seen rx_packets frames, then for the lcore to
 * publish its session counters (every ms). */
static void stats_settle(struct dp_engine *dp, uint64_t rx_packets,
			 struct dp_engine_stats *st, struct dp_proto_stats *ps)
{
	uint64_t deadline = djc_time_ns() + 5000000000ull;

	do {
		usleep(1000);
		dp_engine_get_stats(dp, st, ps);
	} while (st->rx_packets < rx_packets && djc_time_ns() < deadline);
	usleep(50000);
	dp_engine_get_stats(dp, st, ps);
}

static void test_bad_packets(void)
{
	struct dp_engine_stats before, after;
	struct dp_proto_stats pbefore, pafter;
	uint8_t f[512];
	size_t len;
	struct duo d;

	duo_start(&d);
	stats_settle(d.b, 0, &before, &pbefore);
	inject(&d, "runt", 4);                         /* not Ethernet/IPv4/UDP */
	len = data_frame(f, COOKIE, DP_WIRE_VERSION);
	f[DP_WIRE_ENCAP_LEN] ^= 0xff;                  /* bad magic */
	inject(&d, f, len);
	len = data_frame(f, COOKIE, DP_WIRE_VERSION);
	inject(&d, f, len - 50);                        /* truncated */
	len = data_frame(f, COOKIE ^ 1, DP_WIRE_VERSION);
	inject(&d, f, len);                             /* wrong cookie */
	len = data_frame(f, COOKIE, 9);
	inject(&d, f, len);                             /* unknown version */
	len = data_frame(f, COOKIE, DP_WIRE_VERSION);
	f[DP_WIRE_FULL_HDR_LEN + 3] ^= 1;               /* payload corrupted */
	inject(&d, f, len);
	stats_settle(d.b, before.rx_packets + 6, &after, &pafter);

	CU_ASSERT_EQUAL(after.rx_packets - before.rx_packets, 6);
	CU_ASSERT(after.drops[DP_DROP_NOT_DJINN] - before.drops[DP_DROP_NOT_DJINN] >= 2);
	CU_ASSERT_EQUAL(after.drops[DP_DROP_NOT_DJINN] + after.drops[DP_DROP_REJECTED] -
			before.drops[DP_DROP_NOT_DJINN] - before.drops[DP_DROP_REJECTED], 6);
	CU_ASSERT(pafter.rx_reject[DP_REJ_BAD_COOKIE] > pbefore.rx_reject[DP_REJ_BAD_COOKIE]);
	CU_ASSERT(pafter.rx_reject[DP_REJ_BAD_CRC] > pbefore.rx_reject[DP_REJ_BAD_CRC]);
	CU_ASSERT_EQUAL(pafter.rx_data, pbefore.rx_data);
	/* still serving */
	transfer_check(&d, 20, 100000);
	duo_stop(&d);
}

/* A two-segment frame whose UDP payload ends inside the first segment
 * (padding after it, then a second segment of other bytes): the body is
 * read from the first segment, never from the second. */
static void test_padded_two_segments(void)
{
	uint8_t f[512], dst[100];
	struct rte_mbuf *m, *tail;
	uint64_t rtt;
	size_t len;
	struct duo d;

	duo_start(&d);
	len = data_frame(f, COOKIE, DP_WIRE_VERSION);
	memset(f + len, 0, 50);
	m = rte_pktmbuf_alloc(inject_pool);
	tail = rte_pktmbuf_alloc(inject_pool);
	CU_ASSERT_FATAL(m != NULL && tail != NULL);
	memcpy(rte_pktmbuf_append(m, (uint16_t)(len + 50)), f, len + 50);
	memset(rte_pktmbuf_append(tail, 64), 0xa5, 64);
	CU_ASSERT_EQUAL_FATAL(rte_pktmbuf_chain(m, tail), 0);
	memset(dst, 0, sizeof(dst));
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 1, dst, sizeof(dst), DJ_MEM_HOST), 0);
	/* The receive is posted to b's lcore, not yet taken; a probe posted
	 * after it has come back once the lcore took both. The injected frame
	 * is never retransmitted, so it must not arrive first. */
	CU_ASSERT_EQUAL(dp_engine_probe(d.b, COOKIE, 2000, &rtt), 0);
	CU_ASSERT_EQUAL(rte_ring_enqueue(d.a_to_b, m), 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 1, 5000), 0);
	for (size_t i = 0; i < sizeof(dst); i++)
		if (dst[i] != 0x5a) {
			CU_FAIL("body not taken from the first segment");
			break;
		}
	duo_stop(&d);
}

/* Frames of w until transfer 1 of its session landed (the first may
 * overtake the armed receive and be rejected as unknown, as a sender's
 * first try would be, and the sender retransmits). */
static int forged_deliver(struct duo *d, const struct forged *w)
{
	uint8_t f[512];
	int rc = -1;

	for (int i = 0; i < 50 && rc != 0; i++) {
		inject(d, f, forged_frame(f, w, DP_WIRE_VERSION));
		rc = dp_engine_wait(d->b, w->cookie, 1, 20);
	}
	return rc;
}

/* Two peers open sessions of the same id at b (each server numbers its
 * sessions on its own): both open and both work; the same id with the same
 * peer is refused; a frame never reaches the other peer's session, also
 * when it carries that session's cookie, and one with the other session's
 * cookie is rejected, not placed. */
static void test_same_id_two_peers(void)
{
	const struct dp_endpoint ec = {.ipv4 = rte_cpu_to_be_32(IP_C),
				       .udp_port = DP_WIRE_UDP_PORT, .n_queues = 1, .mtu = 9000};
	const struct forged from_c = {.session = 7, .cookie = COOKIE + 1, .src_ip = IP_C,
				      .fill = 0xc1};
	const struct forged c_as_a = {.session = 7, .cookie = COOKIE, .src_ip = IP_C, .fill = 0xbd};
	const struct forged a_as_c = {.session = 7, .cookie = COOKIE + 1, .src_ip = IP_A,
				      .fill = 0xbd};
	struct dp_proto_stats before, after;
	struct dp_engine_stats st;
	struct dp_endpoint ea;
	uint8_t dst_a[100], dst_c[100], f[512];
	struct duo d;

	duo_start(&d); /* session 7 between a and b, COOKIE */
	dp_engine_endpoint(d.a, &ea);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d.b, 7, COOKIE + 1, &ec), 0);
	CU_ASSERT_EQUAL(dp_engine_session_open(d.b, 7, COOKIE + 2, &ea), -EEXIST);
	memset(dst_a, 0, sizeof(dst_a));
	memset(dst_c, 0, sizeof(dst_c));
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE, 1, dst_a, sizeof(dst_a), DJ_MEM_HOST), 0);
	CU_ASSERT_EQUAL(dp_engine_expect(d.b, COOKIE + 1, 1, dst_c, sizeof(dst_c), DJ_MEM_HOST),
			0);
	stats_settle(d.b, 0, &st, &before);
	/* Forged: c's address with a's cookie, and a's with c's. */
	inject(&d, f, forged_frame(f, &c_as_a, DP_WIRE_VERSION));
	inject(&d, f, forged_frame(f, &a_as_c, DP_WIRE_VERSION));
	stats_settle(d.b, st.rx_packets + 2, &st, &after);
	CU_ASSERT_EQUAL(after.rx_reject[DP_REJ_BAD_COOKIE] - before.rx_reject[DP_REJ_BAD_COOKIE],
			2);
	CU_ASSERT_EQUAL(after.rx_data, before.rx_data);
	/* c's own frame lands in c's session only. */
	CU_ASSERT_EQUAL(forged_deliver(&d, &from_c), 0);
	for (size_t i = 0; i < sizeof(dst_c); i++)
		CU_ASSERT_EQUAL_FATAL(dst_c[i], 0xc1);
	for (size_t i = 0; i < sizeof(dst_a); i++)
		CU_ASSERT_EQUAL_FATAL(dst_a[i], 0);
	CU_ASSERT_EQUAL(dp_engine_wait(d.b, COOKIE, 1, 10), -ETIMEDOUT);
	CU_ASSERT_EQUAL(dp_engine_cancel(d.b, COOKIE, 1), 0);
	/* a's session still carries a's transfers, c's open beside it. */
	transfer_check(&d, 2, 100000);
	dp_engine_session_close(d.b, COOKIE + 1);
	transfer_check(&d, 3, 1000);
	duo_stop(&d);
}

/* Two queues on a ring port (no rte_flow): a frame that arrives on the
 * wrong queue reaches its session's lcore anyway, also after another
 * session of that lcore whose id is equal modulo 4096 closed (the lcore
 * was once looked up in a table of 4096 slots by id, which that close
 * emptied). */
static void test_software_dispatch(void)
{
	struct rte_ring *rx[2], *tx[2];
	struct dp_engine_config cfg = {0};
	struct dp_endpoint peer = {.udp_port = DP_WIRE_UDP_PORT, .n_queues = 2, .mtu = 9000};
	const struct forged w = {.session = 7, .cookie = COOKIE, .src_ip = IP_A, .queue = 1,
				 .fill = 0x5a};
	struct dp_engine_stats st;
	struct dp_engine *dp;
	uint8_t f[512], dst[100], want[100];
	char name[32];
	int port, rc = -1;

	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "djmqrx%d", i);
		rx[i] = rte_ring_create(name, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "djmqtx%d", i);
		tx[i] = rte_ring_create(name, 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		CU_ASSERT_FATAL(rx[i] != NULL && tx[i] != NULL);
	}
	port = rte_eth_from_rings("net_ringMQ", rx, 2, tx, 2, 0);
	CU_ASSERT_FATAL(port >= 0);
	cfg.port.port_id = (uint16_t)port;
	cfg.port.nb_queues = 2;
	cfg.port.frame_size = 9014;
	cfg.local.ipv4 = IP_B;
	CU_ASSERT_EQUAL_FATAL(dp_engine_create(&cfg, &dp), 0);
	peer.ipv4 = rte_cpu_to_be_32(IP_A);
	/* sessions 7 and 7 + 4096 belong to queue 7 % 2 = 1 */
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(dp, 7, COOKIE, &peer), 0);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(dp, 7 + 4096, COOKIE + 1, &peer), 0);
	dp_engine_session_close(dp, COOKIE + 1);
	memset(dst, 0, sizeof(dst));
	CU_ASSERT_EQUAL(dp_engine_expect(dp, COOKIE, 1, dst, sizeof(dst), DJ_MEM_HOST), 0);
	/* The frame may overtake the armed receive on the owner's lcore (then
	 * it is rejected as unknown): inject until it lands, as a sender would
	 * retransmit. */
	for (int i = 0; i < 50 && rc != 0; i++) {
		inject_ring(rx[0], f, forged_frame(f, &w, DP_WIRE_VERSION));
		rc = dp_engine_wait(dp, COOKIE, 1, 20);
	}
	CU_ASSERT_EQUAL(rc, 0);
	memset(want, 0x5a, sizeof(want));
	CU_ASSERT_EQUAL(memcmp(dst, want, sizeof(dst)), 0);
	dp_engine_get_stats(dp, &st, NULL);
	CU_ASSERT(st.rx_packets >= 1);
	CU_ASSERT_EQUAL(st.drops[DP_DROP_NOT_DJINN], 0);
	dp_engine_destroy(dp);
}

/* ---- lifetimes under churn ---------------------------------------------------------- */

#define CHURN_COOKIES 3
#define CHURN_USERS 2
#define CHURN_NS 2000000000ull

struct churn {
	struct duo d;
	atomic_int stop;
	atomic_uint next_id;
	atomic_uint calls, unclean, closes;
	int bad_rc;
};

static uint64_t churn_cookie(unsigned int k)
{
	return COOKIE + 1000 + k;
}

/* What a call on a session that may close under it may return: done, or a
 * clean refusal. Never -EDEADLK, never a crash. A receive may also end with
 * -DJ_EPEER: its sender gave up (a 50 ms send timed out, or its session
 * closed) and said so with an ABORT. */
static void churn_check(struct churn *ch, int rc)
{
	atomic_fetch_add(&ch->calls, 1);
	if (rc == 0 || rc == -ENOENT || rc == -ECONNRESET || rc == -ETIMEDOUT ||
	    rc == -ECANCELED || rc == -EBUSY || rc == -DJ_EPEER)
		return;
	atomic_fetch_add(&ch->unclean, 1);
	ch->bad_rc = rc;
}

/* Receive, send, probe, wait and cancel on sessions that come and go. */
static void *churn_user(void *arg)
{
	struct churn *ch = arg;
	unsigned int seed = dj_test_seed() ^ (unsigned int)(uintptr_t)pthread_self();
	uint8_t src[2000], dst[2000];
	uint64_t rtt;

	memset(src, 0x3c, sizeof(src));
	while (!atomic_load(&ch->stop)) {
		uint64_t cookie = churn_cookie((unsigned int)rand_r(&seed) % CHURN_COOKIES);
		uint32_t id = atomic_fetch_add(&ch->next_id, 1);
		int rc = dp_engine_expect(ch->d.b, cookie, id, dst, sizeof(dst), DJ_MEM_HOST);

		churn_check(ch, rc);
		switch (rand_r(&seed) % 3) {
		case 0:
			churn_check(ch, dp_engine_send(ch->d.a, cookie, id, src, sizeof(src),
							  DJ_MEM_HOST, 50));
			break;
		case 1:
			churn_check(ch, dp_engine_probe(ch->d.a, cookie, 20, &rtt));
			break;
		default:
			churn_check(ch, dp_engine_cancel(ch->d.b, cookie, id));
			break;
		}
		/* dst is ours again once wait or cancel said so. */
		rc = dp_engine_wait(ch->d.b, cookie, id, 20);
		churn_check(ch, rc);
		if (rc == -ETIMEDOUT)
			churn_check(ch, dp_engine_cancel(ch->d.b, cookie, id));
	}
	return NULL;
}

static void churn_open(struct churn *ch, unsigned int k)
{
	struct dp_endpoint ea, eb;

	peer_of(ch->d.a, &ea);
	peer_of(ch->d.b, &eb);
	CU_ASSERT_EQUAL(dp_engine_session_open(ch->d.a, 100 + k, churn_cookie(k), &eb), 0);
	CU_ASSERT_EQUAL(dp_engine_session_open(ch->d.b, 100 + k, churn_cookie(k), &ea), 0);
}

static void churn_close(struct churn *ch, unsigned int k)
{
	dp_engine_session_close(ch->d.a, churn_cookie(k));
	dp_engine_session_close(ch->d.b, churn_cookie(k));
	atomic_fetch_add(&ch->closes, 1);
}

static size_t heap_used(void)
{
	struct rte_malloc_socket_stats st;

	CU_ASSERT_EQUAL_FATAL(rte_malloc_get_socket_stats(0, &st), 0);
	return st.heap_allocsz_bytes;
}

/* Sessions close while other threads send, receive, probe, wait and cancel
 * on them: every call ends cleanly, and once all is closed the engine holds
 * no session memory (DPDK heap; the sanitizer build checks malloc). */
static void test_session_churn(void)
{
	static struct churn ch;
	pthread_t users[CHURN_USERS];
	unsigned int seed = dj_test_seed(), k;
	uint64_t until;
	size_t before;

	memset(&ch, 0, sizeof(ch));
	engine_idle_us = 50; /* the test's threads need the shared cores */
	duo_start(&ch.d);
	atomic_store(&ch.next_id, 1);
	before = heap_used();
	for (k = 0; k < CHURN_COOKIES; k++)
		churn_open(&ch, k);
	for (int i = 0; i < CHURN_USERS; i++)
		CU_ASSERT_FATAL(pthread_create(&users[i], NULL, churn_user, &ch) == 0);
	until = djc_time_ns() + CHURN_NS;
	while (djc_time_ns() < until) {
		k = (unsigned int)rand_r(&seed) % CHURN_COOKIES;
		usleep((useconds_t)(rand_r(&seed) % 3000));
		churn_close(&ch, k);
		usleep((useconds_t)(rand_r(&seed) % 1000));
		churn_open(&ch, k);
	}
	atomic_store(&ch.stop, 1);
	for (int i = 0; i < CHURN_USERS; i++)
		pthread_join(users[i], NULL);
	for (k = 0; k < CHURN_COOKIES; k++)
		churn_close(&ch, k);
	printf("\n  churn: %u calls, %u closes\n", atomic_load(&ch.calls), atomic_load(&ch.closes));
	CU_ASSERT(atomic_load(&ch.closes) > 20);
	CU_ASSERT(atomic_load(&ch.calls) > 100);
	CU_ASSERT_EQUAL(atomic_load(&ch.unclean), 0);
	if (atomic_load(&ch.unclean) != 0)
		printf("  unclean return %d\n", ch.bad_rc);
	CU_ASSERT_EQUAL(heap_used(), before);
	transfer_check(&ch.d, 1, 10000); /* the duo's own session still works */
	duo_stop(&ch.d);
	engine_idle_us = 0;
}

/* ---- consistent statistics ---------------------------------------------------------- */

#define STATS_FRAME 150
#define STATS_NS 1000000000ull

struct stats_race {
	struct dp_engine *dp;
	struct rte_ring *to_dp;
	atomic_int stop;
	uint64_t snapshots, torn, backwards;
};

/* Frames of STATS_FRAME bytes that are not Djinn: each one counted as a
 * received packet of that size and as a not_djinn drop. */
static void *stats_injector(void *arg)
{
	struct stats_race *sr = arg;
	struct rte_mbuf *m[16];

	while (!atomic_load(&sr->stop)) {
		unsigned int n;

		if (rte_pktmbuf_alloc_bulk(inject_pool, m, 16) != 0) {
			usleep(10);
			continue;
		}
		for (unsigned int i = 0; i < 16; i++)
			memset(rte_pktmbuf_append(m[i], STATS_FRAME), 0x11, STATS_FRAME);
		n = rte_ring_enqueue_burst(sr->to_dp, (void **)m, 16, NULL);
		if (n < 16)
			rte_pktmbuf_free_bulk(m + n, 16 - n);
	}
	return NULL;
}

static bool stats_went_back(const struct dp_engine_stats *now,
			    const struct dp_engine_stats *prev)
{
	const uint64_t *a = (const uint64_t *)now, *b = (const uint64_t *)prev;

	for (size_t i = 0; i < sizeof(*now) / sizeof(uint64_t); i++)
		if (a[i] < b[i])
			return true;
	return false;
}

/* A reader snapshots the counters of a busy lcore: every snapshot is one
 * moment (bytes, packets and drops of the same frames), and none goes
 * backwards. */
static void test_stats_consistent(void)
{
	static struct stats_race sr;
	struct dp_engine_stats st, prev = {0};
	uint16_t pa, pb;
	pthread_t inj;
	uint64_t until;

	memset(&sr, 0, sizeof(sr));
	dj_test_ring_pair(&pa, &pb, &sr.to_dp);
	CU_ASSERT_EQUAL_FATAL(engine_create(pb, IP_B, NULL, &sr.dp), 0);
	CU_ASSERT_FATAL(pthread_create(&inj, NULL, stats_injector, &sr) == 0);
	until = djc_time_ns() + STATS_NS;
	while (djc_time_ns() < until) {
		if (dp_engine_lcore_stats(sr.dp, 0, &st) != 0)
			break;
		sr.snapshots++;
		sr.torn += st.rx_bytes != st.rx_packets * STATS_FRAME ||
			   st.drops[DP_DROP_NOT_DJINN] != st.rx_packets;
		sr.backwards += stats_went_back(&st, &prev);
		prev = st;
	}
	atomic_store(&sr.stop, 1);
	pthread_join(inj, NULL);
	printf("\n  %" PRIu64 " snapshots of %" PRIu64 " frames: %" PRIu64 " torn, %" PRIu64
	       " backwards\n", sr.snapshots, st.rx_packets, sr.torn, sr.backwards);
	CU_ASSERT(st.rx_packets > 1000);
	CU_ASSERT_EQUAL(sr.torn, 0);
	CU_ASSERT_EQUAL(sr.backwards, 0);
	dp_engine_destroy(sr.dp);
}

/* ---- a send whose frames stay queued ---------------------------------------------------- */

/* Nobody reads the wire: the frames of a send sit in the ring, pointing
 * into the source, past the send's give-up (-EDEADLK). The data path's
 * send_pinned() says so until they are freed, then lets go of the send. */
static void test_send_pinned_until_frames_freed(void)
{
	struct dp_endpoint peer = {.udp_port = DP_WIRE_UDP_PORT, .n_queues = 1, .mtu = 9000};
	const size_t len = 100000;
	uint8_t *src = malloc(len);
	struct dj_datapath path;
	struct dp_engine *dp;
	struct rte_ring *wire;
	struct rte_mbuf *m;
	uint16_t pa, pb;

	CU_ASSERT_FATAL(src != NULL);
	memset(src, 0x77, len);
	dj_test_ring_pair(&pa, &pb, &wire);
	CU_ASSERT_EQUAL_FATAL(engine_create(pa, IP_A, NULL, &dp), 0);
	peer.ipv4 = rte_cpu_to_be_32(IP_B);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(dp, 7, COOKIE, &peer), 0);
	dp_engine_datapath(dp, &path);
	CU_ASSERT_EQUAL(path.ops->send_pinned(path.ctx, COOKIE, 1), -ENOENT);
	CU_ASSERT_EQUAL(dp_engine_send(dp, COOKIE, 1, src, len, DJ_MEM_HOST, 100), -EDEADLK);
	CU_ASSERT_EQUAL(path.ops->send_pinned(path.ctx, COOKIE, 1), 1);
	CU_ASSERT(rte_ring_count(wire) > 0);
	while (rte_ring_dequeue(wire, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	CU_ASSERT_EQUAL(path.ops->send_pinned(path.ctx, COOKIE, 1), 0);
	CU_ASSERT_EQUAL(path.ops->send_pinned(path.ctx, COOKIE, 1), -ENOENT);
	dp_engine_destroy(dp);
	free(src);
}

static int suite_init(void)
{
	char prefix[64];
	char *argv[] = {"test_dataplane", "--no-huge", "-m", "512", "--no-pci",
			"--lcores", "0@0,1@1,2@0,3@1,4@0", "--log-level=lib.eal:warning", prefix,
			"--iova-mode=va", NULL};
	char **app_argv;
	int app_argc;

	snprintf(prefix, sizeof(prefix), "--file-prefix=djdpunit%d", (int)getpid());
	if (dp_eal_init(10, argv, NULL, &app_argc, &app_argv) != 0)
		return -1;
	inject_pool = rte_pktmbuf_pool_create("djinject", 256, 0, 0, 2048, 0);
	return inject_pool != NULL ? 0 : -1;
}

static int suite_cleanup(void)
{
	rte_mempool_free(inject_pool);
	dp_eal_cleanup();
	return 0;
}


/* Protocol counters once a snapshot has them (published every ms). */
static void proto_wait(struct dp_engine *dp, uint64_t tx_completed, uint64_t rx_completed,
		       struct dp_proto_stats *ps)
{
	struct dp_engine_stats st;
	uint64_t until = djc_time_ns() + 2000000000ull;

	do {
		dp_engine_get_stats(dp, &st, ps);
		if (ps->tx_completed >= tx_completed && ps->rx_completed >= rx_completed)
			return;
		usleep(1000);
	} while (djc_time_ns() < until);
}

struct monotonic_reader {
	struct dp_engine *dp;
	atomic_int stop;
	uint64_t reads, backwards;
};

static void *read_monotonic(void *arg)
{
	struct monotonic_reader *r = arg;
	struct dp_proto_stats prev = {0}, ps;
	struct dp_engine_stats st;

	while (!atomic_load(&r->stop)) {
		dp_engine_get_stats(r->dp, &st, &ps);
		if (ps.tx_data_bytes < prev.tx_data_bytes || ps.tx_completed < prev.tx_completed ||
		    ps.tx_acks + ps.rx_acks < prev.tx_acks + prev.rx_acks)
			r->backwards++;
		prev = ps;
		r->reads++;
	}
	return NULL;
}

/* Closing a session keeps what it counted in the engine's sums (Prometheus
 * counters must never go backwards), even for a reader in the middle of
 * the close; the lcores' loop and busy times grow, busy within loop. */
static void test_counters_survive_close(void)
{
	struct monotonic_reader r = {0};
	struct dp_proto_stats pa, pb;
	struct dp_engine_stats st, st2;
	struct dp_endpoint ea, eb;
	pthread_t t;
	struct duo d;

	duo_start(&d);
	transfer_check(&d, 1, 1u << 20);
	proto_wait(d.a, 1, 0, &pa);
	proto_wait(d.b, 0, 1, &pb);
	CU_ASSERT_EQUAL(pa.tx_completed, 1);
	CU_ASSERT(pa.tx_data_bytes >= 1u << 20);
	CU_ASSERT_EQUAL(pb.rx_completed, 1);
	CU_ASSERT(pb.rx_data_bytes == 1u << 20);

	r.dp = d.a;
	pthread_create(&t, NULL, read_monotonic, &r);
	usleep(5000);
	dp_engine_session_close(d.a, COOKIE);
	dp_engine_session_close(d.b, COOKIE);
	usleep(5000);
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	CU_ASSERT(r.reads > 0);
	CU_ASSERT_EQUAL(r.backwards, 0);
	dp_engine_get_stats(d.a, &st, &pa);
	dp_engine_get_stats(d.b, &st, &pb);
	CU_ASSERT_EQUAL(pa.tx_completed, 1);
	CU_ASSERT(pa.tx_data_bytes >= 1u << 20);
	CU_ASSERT_EQUAL(pb.rx_completed, 1);
	CU_ASSERT_EQUAL(pb.rx_data_bytes, 1u << 20);

	/* A new session adds to them. */
	peer_of(d.a, &ea);
	peer_of(d.b, &eb);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d.a, 8, COOKIE + 1, &eb), 0);
	CU_ASSERT_EQUAL_FATAL(dp_engine_session_open(d.b, 8, COOKIE + 1, &ea), 0);
	xfer_check(d.a, d.b, COOKIE + 1, 2, 4096);
	proto_wait(d.b, 0, 2, &pb);
	CU_ASSERT_EQUAL(pb.rx_completed, 2);
	CU_ASSERT_EQUAL(pb.rx_data_bytes, (1u << 20) + 4096);

	/* Loop time grows while idle, busy time stays within it. */
	dp_engine_lcore_stats(d.b, 0, &st);
	CU_ASSERT(st.busy_ns > 0);
	CU_ASSERT(st.busy_ns <= st.loop_ns);
	usleep(50000);
	dp_engine_lcore_stats(d.b, 0, &st2);
	CU_ASSERT(st2.loop_ns > st.loop_ns);
	CU_ASSERT(st2.busy_ns <= st2.loop_ns);
	CU_ASSERT(st2.loop_ns - st.loop_ns > st2.busy_ns - st.busy_ns);
	duo_stop(&d);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"port setup and its errors", test_port_errors},
		{"zero-copy frames hold the payload", test_frame_zero_copy},
		{"transfers between two engines", test_transfers},
		{"API errors, cancel, give-up, close", test_api_errors},
		{"idle lcores nap and still serve (also interrupt mode)", test_idle_naps},
		{"probe round trip and its timeout", test_probe},
		{"two queue pairs, two sessions, a transfer striped over both", test_two_queues},
		{"GPU placement plug-in holds mbufs until sync", test_gpu_placer},
		{"malformed packets dropped and counted", test_bad_packets},
		{"padded two-segment frame read from its first segment", test_padded_two_segments},
		{"one session id, two peers: both served, never mixed", test_same_id_two_peers},
		{"frames on the wrong queue dispatched in software", test_software_dispatch},
		{"sessions close under concurrent calls", test_session_churn},
		{"statistics snapshots are consistent", test_stats_consistent},
		{"closed sessions stay counted; lcore busy time", test_counters_survive_close},
		{"a send pinned by queued frames until they go", test_send_pinned_until_frames_freed},
		{NULL, NULL},
	};

	dj_test_add_suite("dataplane engine (net_ring)", suite_init, suite_cleanup, cases);
	return dj_test_main(argc, argv);
}
