/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * GPU module logic that needs no GPU: the page allocator (on a host pool),
 * the host receive sink, the receive path decision and the GPUDirect set-up
 * refusing a port without buffer split (EAL with a net_null port).
 */
/* Tests and measures experimental API of gpu/gpu.h too. */
#define DJG_ALLOW_EXPERIMENTAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "harness.h"

#define PAGE DJG_PAGE_SIZE

/* ---- pool ---- */

static void test_pool_alloc_aligned_disjoint(void)
{
	struct djg_pool *pool;
	struct djg_pool_stats st;
	void *a, *b, *c;

	CU_ASSERT_EQUAL_FATAL(djg_pool_create(DJG_HOST, 10 * PAGE, &pool), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 1, &a), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, PAGE + 1, &b), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 3 * PAGE, &c), 0);
	CU_ASSERT_EQUAL((uintptr_t)a % PAGE, 0);
	CU_ASSERT_EQUAL((uintptr_t)b % PAGE, 0);
	CU_ASSERT_EQUAL((uintptr_t)c % PAGE, 0);
	CU_ASSERT((char *)b >= (char *)a + PAGE);
	CU_ASSERT((char *)c >= (char *)b + 2 * PAGE || (char *)c + 3 * PAGE <= (char *)a);
	CU_ASSERT_EQUAL(djg_pool_stats_get(pool, &st), 0);
	CU_ASSERT_EQUAL(st.used, 6 * PAGE);
	CU_ASSERT_EQUAL(st.allocs, 3);
	CU_ASSERT_EQUAL(st.largest_free, 4 * PAGE);
	/* The whole buffer is ours to write (ASan sees overruns). */
	memset(c, 0xab, 3 * PAGE);
	djg_pool_destroy(pool);
}

static void test_pool_exhaustion_and_reuse(void)
{
	struct djg_pool *pool;
	struct djg_pool_stats st;
	void *p[4], *q;

	CU_ASSERT_EQUAL_FATAL(djg_pool_create(DJG_HOST, 4 * PAGE, &pool), 0);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(djg_pool_alloc(pool, PAGE, &p[i]), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 1, &q), -ENOMEM);
	/* Two free pages that are not adjacent hold no two-page buffer. */
	CU_ASSERT_EQUAL(djg_pool_free(pool, p[1]), 0);
	CU_ASSERT_EQUAL(djg_pool_free(pool, p[3]), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 2 * PAGE, &q), -ENOMEM);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, PAGE, &q), 0);
	CU_ASSERT_PTR_EQUAL(q, p[1]);
	CU_ASSERT_EQUAL(djg_pool_free(pool, p[2]), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 2 * PAGE, &q), 0);
	CU_ASSERT_PTR_EQUAL(q, p[2]);
	CU_ASSERT_EQUAL(djg_pool_stats_get(pool, &st), 0);
	CU_ASSERT_EQUAL(st.failed, 2);
	CU_ASSERT_EQUAL(st.largest_free, 0);
	djg_pool_destroy(pool);
}

static void test_pool_bad_input(void)
{
	struct djg_pool *pool;
	void *a;
	char host[16] = "0123456789abcde";

	CU_ASSERT_EQUAL(djg_pool_create(DJG_HOST, 0, &pool), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(djg_pool_create(DJG_HOST, 2 * PAGE, &pool), 0);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 3 * PAGE, &a), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_alloc(pool, 100, &a), 0);
	CU_ASSERT_EQUAL(djg_pool_free(pool, (char *)a + 64), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_free(pool, host), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_free(pool, (char *)a + PAGE), -EINVAL);
	/* Copies must stay inside the pool. */
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, (char *)a + 2 * PAGE - 8, host, 16), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, host, host, 4), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, a, host, sizeof(host)), 0);
	memset(host, 0, sizeof(host));
	CU_ASSERT_EQUAL(djg_pool_copy_out(pool, host, a, sizeof(host)), 0);
	CU_ASSERT_STRING_EQUAL(host, "0123456789abcde");
	CU_ASSERT_EQUAL(djg_pool_free(pool, a), 0);
	CU_ASSERT_EQUAL(djg_pool_free(pool, a), -EINVAL);
	djg_pool_destroy(pool);
}

/* Random alloc/free against a model: no overlap, stats agree, all freed at the end. */
static void test_pool_random_against_model(void)
{
	enum { PAGES = 200, SLOTS = 40, ROUNDS = 4000 };
	struct djg_pool *pool;
	struct djg_pool_stats st;
	unsigned int seed = dj_test_seed();
	char owner[PAGES];
	void *ptr[SLOTS] = {0};
	size_t pages[SLOTS] = {0};
	uint64_t used = 0;

	memset(owner, -1, sizeof(owner));
	CU_ASSERT_EQUAL_FATAL(djg_pool_create(DJG_HOST, PAGES * PAGE, &pool), 0);
	char *base = NULL;
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, PAGE, (void **)&base), 0);
	CU_ASSERT_EQUAL(djg_pool_free(pool, base), 0);
	for (int r = 0; r < ROUNDS; r++) {
		int s = rand_r(&seed) % SLOTS;

		if (ptr[s] != NULL) {
			size_t first = ((char *)ptr[s] - base) / PAGE;

			CU_ASSERT_EQUAL_FATAL(djg_pool_free(pool, ptr[s]), 0);
			memset(owner + first, -1, pages[s]);
			used -= pages[s];
			ptr[s] = NULL;
			continue;
		}
		size_t len = 1 + rand_r(&seed) % (12 * PAGE);
		int rc = djg_pool_alloc(pool, len, &ptr[s]);

		if (rc == -ENOMEM) {
			ptr[s] = NULL;
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		size_t first = ((char *)ptr[s] - base) / PAGE;

		pages[s] = (len + PAGE - 1) / PAGE;
		CU_ASSERT_FATAL(first + pages[s] <= PAGES);
		for (size_t i = first; i < first + pages[s]; i++) {
			CU_ASSERT_EQUAL_FATAL(owner[i], -1);
			owner[i] = s;
		}
		used += pages[s];
	}
	CU_ASSERT_EQUAL(djg_pool_stats_get(pool, &st), 0);
	CU_ASSERT_EQUAL(st.used, used * PAGE);
	for (int s = 0; s < SLOTS; s++)
		if (ptr[s] != NULL)
			CU_ASSERT_EQUAL(djg_pool_free(pool, ptr[s]), 0);
	CU_ASSERT_EQUAL(djg_pool_stats_get(pool, &st), 0);
	CU_ASSERT_EQUAL(st.used, 0);
	CU_ASSERT_EQUAL(st.largest_free, PAGES * PAGE);
	djg_pool_destroy(pool);
}

/* ---- host sink ---- */

struct released {
	void *bufs[64];
	int n;
	int calls;
};

static void record_release(void **bufs, uint16_t n, void *arg)
{
	struct released *r = arg;

	for (uint16_t i = 0; i < n && r->n < 64; i++)
		r->bufs[r->n++] = bufs[i];
	r->calls++;
}

static void test_sink_host_copies_and_releases(void)
{
	static const char src[] = "headerPAYLOAD-ONEpayload-two";
	char dest[32];
	struct released rel = {0};
	struct djg_rx_sink_conf conf = {
		.dev_id = DJG_HOST, .dest = dest, .dest_len = sizeof(dest),
		.release = record_release, .release_arg = &rel,
	};
	struct djg_rx_sink *sink;
	struct djg_rx_sink_stats st;
	/* Out of order, as fragments may arrive. */
	struct djg_copy copies[2] = {
		{.src = src + 17, .dst_off = 11, .len = 11},
		{.src = src + 6, .dst_off = 0, .len = 11},
	};
	void *bufs[2] = {(void *)0x10, (void *)0x20};

	memset(dest, '.', sizeof(dest));
	CU_ASSERT_EQUAL_FATAL(djg_rx_sink_create(&conf, &sink), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_path(sink), DJG_RX_HOST);
	CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, copies, 2, bufs, 2), 0);
	CU_ASSERT_EQUAL(memcmp(dest, "PAYLOAD-ONEpayload-two.", 23), 0);
	CU_ASSERT_EQUAL(rel.n, 2);
	CU_ASSERT_PTR_EQUAL(rel.bufs[0], (void *)0x10);
	CU_ASSERT_PTR_EQUAL(rel.bufs[1], (void *)0x20);
	CU_ASSERT_EQUAL(djg_rx_sink_drain(sink, 0), 0);
	djg_rx_sink_stats_get(sink, &st);
	CU_ASSERT_EQUAL(st.path, DJG_RX_HOST);
	CU_ASSERT_EQUAL(st.bursts, 1);
	CU_ASSERT_EQUAL(st.bytes, 22);
	CU_ASSERT_EQUAL(st.completed, 1);
	djg_rx_sink_destroy(sink);
}

static void test_sink_rejects_bad_bursts(void)
{
	char dest[16], src[16] = "abcdefghijklmno";
	struct released rel = {0};
	struct djg_rx_sink_conf conf = {
		.dev_id = DJG_HOST, .dest = dest, .dest_len = sizeof(dest),
		.max_copies = 4, .release = record_release, .release_arg = &rel,
	};
	struct djg_rx_sink *sink;
	struct djg_rx_sink_stats st;
	struct djg_copy ok = {.src = src, .dst_off = 0, .len = 4};
	struct djg_copy bad[] = {
		{.src = src, .dst_off = 13, .len = 4},          /* runs past the end */
		{.src = src, .dst_off = UINT64_MAX - 1, .len = 4}, /* wraps around */
		{.src = src, .dst_off = 0, .len = 17},          /* longer than dest */
		{.src = NULL, .dst_off = 0, .len = 1},          /* no source */
	};
	struct djg_copy many[5] = {ok, ok, ok, ok, ok};
	void *buf = (void *)0x30;

	memset(dest, '.', sizeof(dest));
	CU_ASSERT_EQUAL_FATAL(djg_rx_sink_create(&conf, &sink), 0);
	for (size_t i = 0; i < RTE_DIM(bad); i++) {
		struct djg_copy burst[2] = {ok, bad[i]};

		CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, burst, 2, &buf, 1), -EINVAL);
	}
	CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, many, 5, &buf, 1), -EINVAL);
	/* Nothing written, nothing released: the caller still owns the buffer. */
	CU_ASSERT_EQUAL(memcmp(dest, "................", 16), 0);
	CU_ASSERT_EQUAL(rel.calls, 0);
	djg_rx_sink_stats_get(sink, &st);
	CU_ASSERT_EQUAL(st.rejected, RTE_DIM(bad) + 1);
	CU_ASSERT_EQUAL(st.bursts, 0);
	/* And it keeps serving. */
	CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, &ok, 1, &buf, 1), 0);
	CU_ASSERT_EQUAL(memcmp(dest, "abcd....", 8), 0);
	CU_ASSERT_EQUAL(rel.calls, 1);
	djg_rx_sink_destroy(sink);
}

static void test_sink_conf_and_rebind(void)
{
	char a[8], b[8], src[4] = "xyz";
	struct released rel = {0};
	struct djg_rx_sink_conf conf = {
		.dev_id = DJG_HOST, .dest = a, .dest_len = sizeof(a),
		.release = record_release, .release_arg = &rel,
	};
	struct djg_rx_sink_conf bad;
	struct djg_rx_sink *sink;
	struct djg_copy c = {.src = src, .dst_off = 5, .len = 3};

	bad = conf;
	bad.release = NULL;
	CU_ASSERT_EQUAL(djg_rx_sink_create(&bad, &sink), -EINVAL);
	bad = conf;
	bad.ring_size = 3;
	CU_ASSERT_EQUAL(djg_rx_sink_create(&bad, &sink), -EINVAL);
	bad = conf;
	bad.max_copies = 2000;
	CU_ASSERT_EQUAL(djg_rx_sink_create(&bad, &sink), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(djg_rx_sink_create(&conf, &sink), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_rebind(sink, b, sizeof(b)), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, &c, 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(memcmp(b + 5, "xyz", 3), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_rebind(sink, b, 0), -EINVAL);
	CU_ASSERT_EQUAL(rel.calls, 0);
	djg_rx_sink_destroy(sink);
}

/* Absolute mode: fragments of two destinations through one sink. */
static void test_sink_absolute(void)
{
	char a[4] = "....", b[4] = "....", src[] = "wxyz";
	struct released rel = {0};
	struct djg_rx_sink_conf conf = {
		.dev_id = DJG_HOST, .release = record_release, .release_arg = &rel,
	};
	struct djg_rx_sink *sink;
	struct djg_copy copies[2] = {
		{.src = src, .dst_off = (uintptr_t)a + 1, .len = 2},
		{.src = src + 2, .dst_off = (uintptr_t)b, .len = 2},
	};
	void *buf = (void *)0x40;

	conf.dest_len = 4; /* a length without a buffer is a mistake */
	CU_ASSERT_EQUAL(djg_rx_sink_create(&conf, &sink), -EINVAL);
	conf.dest_len = 0;
	CU_ASSERT_EQUAL_FATAL(djg_rx_sink_create(&conf, &sink), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, copies, 2, &buf, 1), 0);
	CU_ASSERT_EQUAL(memcmp(a, ".wx.", 4), 0);
	CU_ASSERT_EQUAL(memcmp(b, "yz..", 4), 0);
	CU_ASSERT_EQUAL(rel.calls, 1);
	CU_ASSERT_EQUAL(djg_rx_sink_rebind(sink, a, sizeof(a)), -EINVAL);
	djg_rx_sink_destroy(sink);
}

static void test_gather_host(void)
{
	char dest[8] = "........", src[] = "abcdefgh";
	struct djg_copy copies[2] = {
		{.src = src + 4, .dst_off = 0, .len = 4},
		{.src = src, .dst_off = 4, .len = 3},
	};

	CU_ASSERT_EQUAL(djg_gather_list(DJG_HOST, dest, sizeof(dest), copies, 2), 0);
	CU_ASSERT_EQUAL(memcmp(dest, "efghabc.", 8), 0);
	copies[1].dst_off = 6;
	CU_ASSERT_EQUAL(djg_gather_list(DJG_HOST, dest, sizeof(dest), copies, 2), -EINVAL);
	CU_ASSERT_EQUAL(memcmp(dest, "efghabc.", 8), 0); /* nothing done */
	CU_ASSERT_EQUAL(djg_gather_list(DJG_HOST, NULL, 8, copies, 1), -EINVAL);
	/* EAL is not up in this suite: gpudev knows no GPU, whatever the machine. */
	CU_ASSERT_EQUAL(djg_gather_list(0, dest, sizeof(dest), copies, 1), -DJ_ENOGPU);
}

/* ---- path choice ---- */

static const struct djg_rx_caps nic_full = {
	.gpu = true, .port_dma_map = true,
	.rx_offload_capa = RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT | RTE_ETH_RX_OFFLOAD_SCATTER,
	.rx_seg_max_nseg = 2, .rx_seg_multi_pools = true,
};

static void test_path_auto(void)
{
	struct djg_rx_caps caps = nic_full;
	enum djg_rx_path path;
	char why[128];

	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_AUTO, &path, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_GPUDIRECT);
	caps.rx_offload_capa = RTE_ETH_RX_OFFLOAD_SCATTER;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_AUTO, &path, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_STAGED);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "BUFFER_SPLIT"));
	caps.gpu = false;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_AUTO, &path, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_HOST);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no usable GPU"));
}

static void test_path_gpudirect_refusals(void)
{
	struct djg_rx_caps caps;
	enum djg_rx_path path = DJG_RX_AUTO;
	char why[128];

	caps = nic_full;
	caps.rx_offload_capa = 0;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT"));
	caps = nic_full;
	caps.rx_seg_max_nseg = 1;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "two mempools"));
	caps = nic_full;
	caps.rx_seg_multi_pools = false;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-ENOTSUP);
	caps = nic_full;
	caps.port_dma_map = false;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "DMA"));
	caps = nic_full;
	caps.gpu = false;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-DJ_ENOGPU);
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_STAGED, &path, why, sizeof(why)),
			-DJ_ENOGPU);
	CU_ASSERT_EQUAL(path, DJG_RX_AUTO); /* untouched on refusal */
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, 42, &path, NULL, 0), -EINVAL);
}

static void test_path_forced(void)
{
	struct djg_rx_caps caps = nic_full;
	enum djg_rx_path path;

	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_STAGED, &path, NULL, 0), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_STAGED);
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_HOST, &path, NULL, 0), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_HOST);
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, NULL, 0), 0);
	CU_ASSERT_EQUAL(path, DJG_RX_GPUDIRECT);
	CU_ASSERT_STRING_EQUAL(djg_rx_path_name(DJG_RX_STAGED), "staged");
}

/* ---- with EAL: a real port without buffer split ---- */

static int eal_init(void)
{
	char prefix[64];
	char *argv[] = {"test_gpu", "--no-huge", "-m", "64", "--no-pci", "--iova-mode=va",
			"--vdev", "net_null0", "--log-level", "lib.eal:error", prefix, NULL};
	char **app_argv;
	int app_argc;

	/* dp_eal_init: no shared files, and dp_eal_cleanup() removes the
	 * run-time folder (nothing left under /var/run/dpdk). */
	snprintf(prefix, sizeof(prefix), "--file-prefix=dj_test_gpu_%d", getpid());
	return dp_eal_init(RTE_DIM(argv) - 1, argv, NULL, &app_argc, &app_argv) < 0 ? -1 : 0;
}

static int eal_cleanup(void)
{
	dp_eal_cleanup();
	return 0;
}

static void test_eal_vdev_port_caps(void)
{
	struct djg_rx_caps caps;
	enum djg_rx_path path;
	char why[128];

	CU_ASSERT_EQUAL_FATAL(rte_eth_dev_count_avail(), 1);
	CU_ASSERT_EQUAL(djg_rx_caps_get(0, DJG_HOST, &caps), 0);
	CU_ASSERT_FALSE(caps.gpu);
	CU_ASSERT_FALSE(caps.port_dma_map);
	CU_ASSERT_FALSE(caps.rx_offload_capa & RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT);
	CU_ASSERT_EQUAL(djg_rx_caps_get(7, DJG_HOST, &caps), -ENODEV);
	/* Pretend a GPU: the port still refuses GPUDirect, and says why. */
	CU_ASSERT_EQUAL(djg_rx_caps_get(0, DJG_HOST, &caps), 0);
	caps.gpu = true;
	CU_ASSERT_EQUAL(djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why)),
			-ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "BUFFER_SPLIT"));
}

static void test_eal_direct_pool_refused(void)
{
	struct djg_direct_pool *pool = NULL;
	int rc = djg_direct_pool_create(0, 0, "djt_direct", 1024, 2048, &pool);

	/* No GPU here: -DJ_ENOGPU; a GPU with this port: -ENOTSUP. Never a pool. */
	CU_ASSERT(rc == -DJ_ENOGPU || rc == -ENOTSUP);
	CU_ASSERT_PTR_NULL(pool);
	CU_ASSERT_EQUAL(djg_direct_pool_create(0, 9, "djt_direct", 1024, 2048, &pool) < 0, 1);
	CU_ASSERT_EQUAL(djg_direct_pool_create(0, 0, "djt_direct", 0, 2048, &pool), -EINVAL);
}

static void test_eal_split_rxconf(void)
{
	struct rte_mempool *hdr = rte_pktmbuf_pool_create("djt_hdr", 255, 0, 0, 256, SOCKET_ID_ANY);
	struct rte_mempool *pay = rte_pktmbuf_pool_create("djt_pay", 255, 0, 0, 2048 + 128,
							  SOCKET_ID_ANY);
	union rte_eth_rxseg segs[2];
	struct rte_eth_rxconf rxconf = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(hdr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pay);
	CU_ASSERT_EQUAL(djg_direct_rxconf(hdr, 64, pay, segs, &rxconf), 0);
	CU_ASSERT_PTR_EQUAL(rxconf.rx_seg, segs);
	CU_ASSERT_EQUAL(rxconf.rx_nseg, 2);
	CU_ASSERT(rxconf.offloads & RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT);
	CU_ASSERT_PTR_EQUAL(segs[0].split.mp, hdr);
	CU_ASSERT_EQUAL(segs[0].split.length, 64);
	CU_ASSERT_PTR_EQUAL(segs[1].split.mp, pay);
	CU_ASSERT_EQUAL(segs[1].split.length, 0);
	/* A header longer than the header mbufs can hold is refused. */
	CU_ASSERT_EQUAL(djg_direct_rxconf(hdr, 200, pay, segs, &rxconf), -EINVAL);
	CU_ASSERT_EQUAL(djg_direct_rxconf(NULL, 64, pay, segs, &rxconf), -EINVAL);
	rte_mempool_free(hdr);
	rte_mempool_free(pay);
}

/* Stage @len bytes through 2 buffers of 4 KiB into mbufs of at most 1000 B,
 * holding every mbuf of a chunk until the next chunk is asked for. */
static void test_eal_tx_stager_host(void)
{
	enum { CHUNK = 4096, LEN = 3 * CHUNK + 100 };
	struct rte_mempool *mp = rte_pktmbuf_pool_create("djt_tx", 63, 0, 0, 0, SOCKET_ID_ANY);
	struct djg_tx_stager_conf conf = {.dev_id = DJG_HOST, .chunk_size = CHUNK,
					     .n_chunks = 2, .socket = SOCKET_ID_ANY};
	struct djg_tx_stager *st;
	struct djg_tx_chunk c[4];
	struct rte_mbuf *held[4][8];
	int held_n[4] = {0};
	uint8_t *src = malloc(LEN), *got = calloc(1, LEN);
	unsigned int seed = dj_test_seed();

	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	for (int i = 0; i < LEN; i++)
		src[i] = rand_r(&seed);
	CU_ASSERT_EQUAL_FATAL(djg_tx_stager_create(&conf, &st), 0);
	CU_ASSERT_EQUAL(djg_tx_stager_start(st, src, LEN), 0);
	for (int k = 0; k < 4; k++) {
		if (k == 2) {
			/* Both buffers are out: nothing more until mbufs are freed. */
			CU_ASSERT_EQUAL(djg_tx_stager_next(st, &c[k]), -EAGAIN);
			CU_ASSERT_FALSE(djg_tx_stager_done(st));
			rte_pktmbuf_free_bulk(held[0], held_n[0]);
		}
		if (k == 3)
			rte_pktmbuf_free_bulk(held[1], held_n[1]);
		CU_ASSERT_EQUAL_FATAL(djg_tx_stager_next(st, &c[k]), 0);
		CU_ASSERT_EQUAL(c[k].offset, (uint64_t)k * CHUNK);
		CU_ASSERT_EQUAL(c[k].len, k < 3 ? CHUNK : 100);
		for (uint32_t off = 0; off < c[k].len; off += 1000) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
			uint16_t len = RTE_MIN(1000u, c[k].len - off);

			CU_ASSERT_PTR_NOT_NULL_FATAL(m);
			CU_ASSERT_EQUAL(djg_tx_chunk_attach(st, &c[k], m, off, len), 0);
			CU_ASSERT(RTE_MBUF_HAS_EXTBUF(m) != 0);
			memcpy(got + c[k].offset + off, rte_pktmbuf_mtod(m, void *), m->data_len);
			held[k][held_n[k]++] = m;
		}
		CU_ASSERT_EQUAL(djg_tx_chunk_attach(st, &c[k], held[k][0], c[k].len, 1), -EINVAL);
		djg_tx_chunk_put(st, &c[k]);
	}
	CU_ASSERT_EQUAL(memcmp(got, src, LEN), 0);
	CU_ASSERT_EQUAL(djg_tx_stager_next(st, &c[0]), -ENODATA);
	CU_ASSERT_EQUAL(djg_tx_stager_start(st, src, LEN), -EBUSY);
	rte_pktmbuf_free_bulk(held[2], held_n[2]);
	rte_pktmbuf_free_bulk(held[3], held_n[3]);
	CU_ASSERT_TRUE(djg_tx_stager_done(st));
	CU_ASSERT_EQUAL(djg_tx_stager_start(st, src, 10), 0);
	CU_ASSERT_EQUAL(djg_tx_stager_next(st, &c[0]), 0);
	CU_ASSERT_EQUAL(memcmp(c[0].data, src, 10), 0);
	djg_tx_chunk_put(st, &c[0]);
	CU_ASSERT_TRUE(djg_tx_stager_done(st));
	djg_tx_stager_destroy(st);
	rte_mempool_free(mp);
	free(src);
	free(got);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case pool_cases[] = {
		{"alloc_aligned_disjoint", test_pool_alloc_aligned_disjoint},
		{"exhaustion_and_reuse", test_pool_exhaustion_and_reuse},
		{"bad_input", test_pool_bad_input},
		{"random_against_model", test_pool_random_against_model},
		{NULL, NULL},
	};
	static const struct dj_test_case sink_cases[] = {
		{"host_copies_and_releases", test_sink_host_copies_and_releases},
		{"rejects_bad_bursts", test_sink_rejects_bad_bursts},
		{"conf_and_rebind", test_sink_conf_and_rebind},
		{"absolute", test_sink_absolute},
		{"gather_host", test_gather_host},
		{NULL, NULL},
	};
	static const struct dj_test_case path_cases[] = {
		{"auto", test_path_auto},
		{"gpudirect_refusals", test_path_gpudirect_refusals},
		{"forced", test_path_forced},
		{NULL, NULL},
	};
	static const struct dj_test_case eal_cases[] = {
		{"vdev_port_caps", test_eal_vdev_port_caps},
		{"direct_pool_refused", test_eal_direct_pool_refused},
		{"split_rxconf", test_eal_split_rxconf},
		{"tx_stager_host", test_eal_tx_stager_host},
		{NULL, NULL},
	};

	dj_test_add_suite("gpu_pool_host", NULL, NULL, pool_cases);
	dj_test_add_suite("gpu_rx_sink_host", NULL, NULL, sink_cases);
	dj_test_add_suite("gpu_rx_path", NULL, NULL, path_cases);
	dj_test_add_suite("gpu_eal_net_null", eal_init, eal_cleanup, eal_cases);
	return dj_test_main(argc, argv);
}
