/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The GPU side: pool memory on the GPU, and the staged sink (both gather
 * modes) moving random, misaligned fragments out of registered host memory.
 * Exits 77 (skipped) where no GPU is usable.
 */
/* Tests and measures experimental API of gpu/gpu.h too. */
#define DJG_ALLOW_EXPERIMENTAL
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"
#include "gpu/gpu.h"
#include "harness.h"

#define SRC_LEN (8u << 20)
#define DEST_LEN (4u << 20)
#define MAX_FRAGS 65536

static int16_t gpu;
static uint8_t *src;   /* registered with the GPU */

static void test_pool_roundtrip(void)
{
	struct djg_pool *pool;
	struct djg_pool_stats st;
	uint8_t *back = malloc(3 << 20);
	void *a, *b;

	CU_ASSERT_EQUAL_FATAL(djg_pool_create(gpu, 16 << 20, &pool), 0);
	CU_ASSERT_EQUAL(djg_pool_dev(pool), gpu);
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, 1 << 20, &a), 0);
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, 3 << 20, &b), 0);
	CU_ASSERT_EQUAL((uintptr_t)b % DJG_PAGE_SIZE, 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, b, src + 7, 3 << 20), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, a, src, 1 << 20), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_out(pool, back, b, 3 << 20), 0);
	CU_ASSERT_EQUAL(memcmp(back, src + 7, 3 << 20), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, (char *)b + (3 << 20) - 1, src, 2 << 20), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, (char *)a + (16 << 20), src, 1), -EINVAL);
	CU_ASSERT_EQUAL(djg_pool_stats_get(pool, &st), 0);
	CU_ASSERT_EQUAL(st.used, 4 << 20);
	CU_ASSERT_EQUAL(djg_pool_free(pool, a), 0);
	CU_ASSERT_EQUAL(djg_pool_free(pool, b), 0);
	djg_pool_destroy(pool);
	free(back);
}

static int released;

static void count_release(void **bufs, uint16_t n, void *arg)
{
	for (uint16_t i = 0; i < n; i++)
		released += (uintptr_t)bufs[i] == (uintptr_t)arg;
}

/* Random fragments (1 B to 9000 B, any alignment) tiling the destination in
 * shuffled order, through a small ring so that it wraps many times. */
static void submit_all(struct djg_rx_sink *sink, const struct djg_copy *copies, size_t n,
		       unsigned int *seed)
{
	size_t bursts = 0;

	released = 0;
	for (size_t i = 0; i < n; bursts++) {
		uint16_t k = RTE_MIN((size_t)(1 + rand_r(seed) % 64), n - i);
		void *bufs[2] = {(void *)0x5a, (void *)0x5a};
		int rc;

		while ((rc = djg_rx_sink_submit(sink, copies + i, k, bufs, 2)) == -EAGAIN)
			;
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		i += k;
	}
	CU_ASSERT_EQUAL(djg_rx_sink_drain(sink, 5000000000ull), 0);
	CU_ASSERT_EQUAL(released, 2 * (int)bursts);
}

/* mode: a sink gather mode, or -1 for one djg_gather_list() call;
 * absolute: the sink takes destination addresses, not offsets. */
static void make_fragments(struct djg_copy *copies, size_t *count, uint8_t *want,
			   unsigned int *seed)
{
	size_t n = 0;

	for (size_t off = 0; off < DEST_LEN; n++) {
		uint32_t len = rand_r(seed) % 4 == 0 ? 1 + rand_r(seed) % 15
						     : 1 + rand_r(seed) % 9000;

		len = RTE_MIN((size_t)len, DEST_LEN - off);
		if (n == MAX_FRAGS - 1)
			len = DEST_LEN - off;
		copies[n] = (struct djg_copy){
			.src = src + rand_r(seed) % (SRC_LEN - len), .dst_off = off, .len = len};
		memcpy(want + off, copies[n].src, len);
		off += len;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rand_r(seed) % (i + 1);
		struct djg_copy t = copies[i];

		copies[i] = copies[j];
		copies[j] = t;
	}
	*count = n;
}

/* cuMemHostUnregister waits for every running kernel. */
static void quiet_context_call(void)
{
	void *page = aligned_alloc(4096, 4096);

	CU_ASSERT_FATAL(page != NULL);
	CU_ASSERT_EQUAL(djg_host_register(gpu, page, 4096), 0);
	CU_ASSERT_EQUAL(djg_host_unregister(gpu, page), 0);
	free(page);
}

/* Through a sink; absolute: it takes destination addresses, not offsets. */
static void sink_gather(int mode, bool absolute, void *dest, struct djg_copy *copies, size_t n,
			unsigned int *seed)
{
	struct djg_rx_sink_conf conf = {
		.dev_id = gpu, .dest = dest, .dest_len = DEST_LEN, .max_copies = 64,
		.ring_size = 16, .mode = mode, .release = count_release,
		.release_arg = (void *)0x5a,
	};
	struct djg_rx_sink *sink;

	if (absolute) {
		for (size_t i = 0; i < n; i++)
			copies[i].dst_off += (uintptr_t)dest;
		conf.dest = NULL;
		conf.dest_len = 0;
	}
	CU_ASSERT_EQUAL_FATAL(djg_rx_sink_create(&conf, &sink), 0);
	CU_ASSERT_EQUAL(djg_rx_sink_path(sink), DJG_RX_STAGED);
	/* In two halves, with a call between them that needs the context
	 * quiet: a drained sink's resident kernel has left (else this hangs)
	 * and the second half starts a new generation. */
	submit_all(sink, copies, n / 2, seed);
	quiet_context_call();
	submit_all(sink, copies + n / 2, n - n / 2, seed);
	if (mode == DJG_GATHER_PERSISTENT) {
		struct djg_rx_sink_stats st;

		djg_rx_sink_stats_get(sink, &st);
		CU_ASSERT_EQUAL(st.generations, 2);
	}
	if (!absolute) {
		/* A copy past the end is refused; the sink keeps working. */
		copies[0].dst_off = DEST_LEN;
		CU_ASSERT_EQUAL(djg_rx_sink_submit(sink, copies, 1, NULL, 0), -EINVAL);
	}
	djg_rx_sink_destroy(sink);
}

/* mode: a sink gather mode, or -1 for one djg_gather_list() call. */
static void run_staged(int mode, bool absolute)
{
	unsigned int seed = dj_test_seed();
	struct djg_pool *pool;
	struct djg_copy *copies = calloc(MAX_FRAGS, sizeof(*copies));
	uint8_t *want = malloc(DEST_LEN), *back = calloc(1, DEST_LEN);
	void *dest;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(djg_pool_create(gpu, DEST_LEN, &pool), 0);
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, DEST_LEN, &dest), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, dest, back, DEST_LEN), 0);
	make_fragments(copies, &n, want, &seed);
	if (mode < 0) {
		CU_ASSERT_EQUAL(djg_gather_list(gpu, dest, DEST_LEN, copies, n), 0);
		copies[n / 2].dst_off = DEST_LEN;
		CU_ASSERT_EQUAL(djg_gather_list(gpu, dest, DEST_LEN, copies, n), -EINVAL);
	} else {
		sink_gather(mode, absolute, dest, copies, n, &seed);
	}
	CU_ASSERT_EQUAL(djg_pool_copy_out(pool, back, dest, DEST_LEN), 0);
	CU_ASSERT_EQUAL(memcmp(back, want, DEST_LEN), 0);
	djg_pool_destroy(pool);
	free(copies);
	free(want);
	free(back);
}

static void test_staged_persistent(void)
{
	run_staged(DJG_GATHER_PERSISTENT, false);
}

static void test_staged_launch(void)
{
	run_staged(DJG_GATHER_LAUNCH, false);
}

static void test_gather_oneshot(void)
{
	run_staged(-1, false);
}

static void test_staged_absolute(void)
{
	run_staged(DJG_GATHER_PERSISTENT, true);
}

/* A GPU buffer streamed out through 3 pinned 1 MiB chunks into extbuf mbufs
 * of at most 8000 B, each freed at once as a NIC would after sending. */
static void test_tx_stager(void)
{
	enum { LEN = (5 << 20) + 3 };
	struct rte_mempool *mp = rte_pktmbuf_pool_create("djt_gtx", 1023, 0, 0, 0, SOCKET_ID_ANY);
	struct djg_tx_stager_conf conf = {.dev_id = gpu, .chunk_size = 1 << 20, .n_chunks = 3,
					     .socket = SOCKET_ID_ANY};
	struct djg_tx_stager *st;
	struct djg_pool *pool;
	struct djg_tx_chunk c;
	uint8_t *got = calloc(1, LEN);
	void *dev;
	uint64_t deadline = djc_time_ns() + 5000000000ull;
	int rc, chunks = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
	CU_ASSERT_EQUAL_FATAL(djg_pool_create(gpu, LEN, &pool), 0);
	CU_ASSERT_EQUAL_FATAL(djg_pool_alloc(pool, LEN, &dev), 0);
	CU_ASSERT_EQUAL(djg_pool_copy_in(pool, dev, src + 5, LEN), 0);
	CU_ASSERT_EQUAL_FATAL(djg_tx_stager_create(&conf, &st), 0);
	CU_ASSERT_EQUAL(djg_tx_stager_start(st, dev, LEN), 0);
	while ((rc = djg_tx_stager_next(st, &c)) != -ENODATA && djc_time_ns() < deadline) {
		if (rc == -EAGAIN)
			continue;
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		chunks++;
		for (uint32_t off = 0; off < c.len; off += 8000) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
			uint16_t len = RTE_MIN(8000u, c.len - off);

			CU_ASSERT_EQUAL_FATAL(djg_tx_chunk_attach(st, &c, m, off, len), 0);
			memcpy(got + c.offset + off, rte_pktmbuf_mtod(m, void *), len);
			rte_pktmbuf_free(m);
		}
		djg_tx_chunk_put(st, &c);
	}
	CU_ASSERT_EQUAL(rc, -ENODATA);
	CU_ASSERT_EQUAL(chunks, 6);
	CU_ASSERT_TRUE(djg_tx_stager_done(st));
	CU_ASSERT_EQUAL(memcmp(got, src + 5, LEN), 0);
	djg_tx_stager_destroy(st);
	djg_pool_destroy(pool);
	rte_mempool_free(mp);
	free(got);
}

/*
 * Registrations that share pages: CUDA alone refuses the second one
 * ("already mapped"); the registry registers the uncovered pages only and
 * keeps shared pages until their last registration goes.
 */
static void test_host_register_shared_pages(void)
{
	size_t page = 4096;
	uint8_t *buf = aligned_alloc(page, 4 * page);
	uint8_t *a, *b;

	CU_ASSERT_FATAL(buf != NULL);
	a = buf + 100;              /* pages 0-1 */
	b = buf + page + 200;       /* pages 1-3: page 1 shared with a */
	CU_ASSERT_FALSE(djg_host_readable(gpu, a, 10));
	CU_ASSERT_EQUAL_FATAL(djg_host_register(gpu, a, page + 50), 0);
	CU_ASSERT_EQUAL(djg_host_register(gpu, a, 8), -EEXIST);
	CU_ASSERT_EQUAL_FATAL(djg_host_register(gpu, b, 2 * page), 0);
	CU_ASSERT_TRUE(djg_host_readable(gpu, buf, 4 * page));
	CU_ASSERT_EQUAL(djg_host_unregister(gpu, a), 0);
	/* a's pages were registered as one piece that b shares: it stays */
	CU_ASSERT_TRUE(djg_host_readable(gpu, b, 2 * page));
	CU_ASSERT_EQUAL(djg_host_unregister(gpu, a), -ENOENT);
	CU_ASSERT_EQUAL(djg_host_unregister(gpu, b), 0);
	CU_ASSERT_FALSE(djg_host_readable(gpu, b, 1));
	/* and the pages can be registered again */
	CU_ASSERT_EQUAL(djg_host_register(gpu, buf, 4 * page), 0);
	CU_ASSERT_EQUAL(djg_host_unregister(gpu, buf), 0);
	free(buf);
}

static void test_find(void)
{
	struct djg_info info;

	CU_ASSERT_EQUAL(djg_info_get(0, &info), 0);
	CU_ASSERT(info.total_memory > 0);
	CU_ASSERT(info.processors > 0);
	CU_ASSERT_EQUAL(djg_find("0"), info.dev_id);
	CU_ASSERT_EQUAL(djg_find(info.pci_addr), info.dev_id);
	CU_ASSERT_EQUAL(djg_find("0000:ff:1f.7"), -ENODEV);
	CU_ASSERT_EQUAL(djg_find("99"), -ENODEV);
	printf("gpu 0: %s at %s\n", info.name, info.pci_addr);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"find", test_find},
		{"host_register_shared_pages", test_host_register_shared_pages},
		{"pool_roundtrip", test_pool_roundtrip},
		{"staged_persistent", test_staged_persistent},
		{"staged_launch", test_staged_launch},
		{"gather_oneshot", test_gather_oneshot},
		{"staged_absolute", test_staged_absolute},
		{"tx_stager", test_tx_stager},
		{NULL, NULL},
	};
	char prefix[64];
	char *eal_argv[] = {"test_gpu_device", "--no-huge", "-m", "256", "--iova-mode=va",
			    "--log-level", "lib.eal:error", prefix, NULL};
	char **app_argv;
	int rc, app_argc;

	snprintf(prefix, sizeof(prefix), "--file-prefix=dj_test_gpudev_%d", getpid());
	if (dp_eal_init(RTE_DIM(eal_argv) - 1, eal_argv, NULL, &app_argc, &app_argv) < 0)
		dj_test_skip("EAL does not start here");
	if (djg_count() == 0) {
		dp_eal_cleanup();
		dj_test_skip("no GPU usable through gpudev (or built without CUDA)");
	}
	gpu = djg_find(NULL);
	src = aligned_alloc(4096, SRC_LEN);
	if (src == NULL || djg_host_register(gpu, src, SRC_LEN) != 0)
		dj_test_skip("cannot register host memory with the GPU");
	for (size_t i = 0; i < SRC_LEN; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 12));
	dj_test_add_suite("gpu_device", NULL, NULL, cases);
	rc = dj_test_main(argc, argv);
	djg_host_unregister(gpu, src);
	free(src);
	dp_eal_cleanup();
	return rc;
}
