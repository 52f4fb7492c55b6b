/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cudaMemcpy pinned host-to-device against the staged gather on the same
 * bytes. The source is one host buffer registered with the GPU
 * (rte_gpu_mem_register, as the rx mbuf pools are). Two layouts:
 *  - packed: fragments back to back, the very bytes cudaMemcpy moves;
 *  - mbuf: each fragment where an rx mbuf of a plain pool holds its payload
 *    (after headroom and the 98 bytes of headers, so misaligned), one
 *    mbuf-sized slot per fragment;
 *  - lined: the payload starts on a 128-byte line of its slot (a pool laid
 *    out so that headroom + headers end on a line), slots a whole number of
 *    lines apart. With a payload that is a multiple of 128 B every read the
 *    GPU makes is a full line.
 * Times are wall clock on the CPU, best of --reps, gather from the first
 * submit to the drained sink (descriptor production included). cudaMemcpy
 * runs before and after each layout; ratios are to its best time.
 * With each layout, in the same run:
 *  - read probe: a kernel that only reads the same fragments (read_kernel.cu),
 *    the ceiling of any gather on this host; each gather's share of it is
 *    printed after the table;
 *  - copy chunks: the copy mover (gpu/packer.h): this thread packs the
 *    fragments into pinned chunks, the copy engine moves them.
 * Send side: cudaMemcpy D2H vs the tx stager (1 MiB pinned chunks, D2H
 * overlapped with attaching payload-size extbuf mbufs, freed at once).
 */
/* Tests and measures experimental API of gpu/gpu.h too. */
#define DJG_ALLOW_EXPERIMENTAL
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/eal.h"
#include "gpu/packer.h"
#include "bench_gpu.h"

#ifdef DJ_HAVE_CUDA
#include <cuda_runtime.h>

#include "dataplane/proto/wire.h"

#define MBUF_PAYLOAD_OFF (RTE_PKTMBUF_HEADROOM + DP_WIRE_FULL_HDR_LEN)
#define GPU_LINE 128
#define LINED_PAYLOAD_OFF RTE_ALIGN_CEIL(MBUF_PAYLOAD_OFF, GPU_LINE)

struct layout {
	const char *name;
	size_t stride;   /* bytes from one fragment to the next */
	size_t offset;   /* payload offset within its slot */
};

static void noop_release(void **bufs, uint16_t n, void *arg)
{
	(void)bufs;
	(void)n;
	(void)arg;
}

static double memcpy_best(void *dest, const void *src, size_t bytes, int reps)
{
	double best = 1e30;

	for (int r = 0; r <= reps; r++) { /* the first run warms up */
		uint64_t t0 = djc_time_ns();

		if (cudaMemcpy(dest, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
			return -1;
		if (r > 0)
			best = RTE_MIN(best, (djc_time_ns() - t0) / 1e9);
	}
	return best;
}

static int gather_once(struct djg_rx_sink *sink, const struct djg_copy *copies,
		       size_t n, uint16_t burst)
{
	for (size_t i = 0; i < n; i += burst) {
		uint16_t k = RTE_MIN((size_t)burst, n - i);
		int rc;

		while ((rc = djg_rx_sink_submit(sink, copies + i, k, NULL, 0)) == -EAGAIN)
			;
		if (rc != 0)
			return rc;
	}
	return djg_rx_sink_drain(sink, 30ull * 1000000000ull);
}

static double gather_best(const struct bench_opts *o, struct djg_rx_sink *sink,
			  const struct djg_copy *copies, size_t n)
{
	double best = 1e30;

	for (int r = 0; r <= o->reps; r++) {
		uint64_t t0 = djc_time_ns();

		if (gather_once(sink, copies, n, bench_gather_burst(o)) != 0)
			return -1;
		if (r > 0)
			best = RTE_MIN(best, (djc_time_ns() - t0) / 1e9);
	}
	return best;
}

/* Modes: the sink's two, then one djg_gather_list() over the whole list. */
#define MODE_ONESHOT 2

static const char *const mode_names[] = {"persistent", "launch", "oneshot"};

static void describe(const struct layout *l, const struct bench_opts *o, int mode,
		     char *what, size_t len)
{
	if (mode == MODE_ONESHOT)
		snprintf(what, len, "gather oneshot %s %uB", l->name, o->payload);
	else
		snprintf(what, len, "gather %s %s %uB x%u", mode_names[mode], l->name,
			 o->payload, bench_gather_burst(o));
}

static double oneshot_best(const struct bench_opts *o, int16_t dev_id, void *dest,
			   const struct djg_copy *copies, size_t n)
{
	double best = 1e30;

	for (int r = 0; r <= o->reps; r++) {
		uint64_t t0 = djc_time_ns();

		if (djg_gather_list(dev_id, dest, o->bench_bytes, copies, n) != 0)
			return -1;
		if (r > 0)
			best = RTE_MIN(best, (djc_time_ns() - t0) / 1e9);
	}
	return best;
}

static double sink_best(const struct bench_opts *o, int16_t dev_id, int mode, void *dest,
			const struct djg_copy *copies, size_t n)
{
	struct djg_rx_sink_conf conf = {
		.dev_id = dev_id, .dest = dest, .dest_len = o->bench_bytes,
		.max_copies = bench_gather_burst(o), .mode = mode, .blocks = o->blocks,
		.frag_size = o->payload,
		.release = noop_release,
	};
	struct djg_rx_sink *sink;
	double best;

	if (djg_rx_sink_create(&conf, &sink) != 0)
		return -1;
	best = gather_best(o, sink, copies, n);
	djg_rx_sink_destroy(sink);
	return best;
}

/* The destination must equal the fragments laid end to end. */
static int gather_exact(const uint8_t *host, const struct layout *l, size_t bytes,
			uint32_t payload, const void *dest, uint8_t *back)
{
	if (cudaMemcpy(back, dest, bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
		return 0;
	for (size_t off = 0, f = 0; off < bytes; off += payload, f++) {
		size_t len = RTE_MIN((size_t)payload, bytes - off);

		if (memcmp(back + off, host + f * l->stride + l->offset, len) != 0)
			return 0;
	}
	return 1;
}

/* The read-only probe of the layout's fragments: 8 blocks per SM. */
static void probe_row(const struct bench_opts *o, int16_t dev_id, const struct layout *l,
		      const struct djg_copy *copies, size_t n, struct bench_report *rep)
{
	struct bench_result *res = report_add(rep, "probe");
	int sms = 0;

	cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, bench_cuda_ordinal(dev_id));
	snprintf(res->what, sizeof(res->what), "read probe %s %uB", l->name, o->payload);
	snprintf(res->layout, sizeof(res->layout), "%s", l->name);
	res->probe = 1;
	res->bytes = o->bench_bytes;
	res->ok = bench_read_probe(copies, n, 8u * (unsigned int)RTE_MAX(sms, 1), o->reps,
				   &res->seconds, &res->worst_s) == 0;
	res->gbytes_s = res->ok ? res->bytes / res->seconds / 1e9 : 0;
}

/* Pack every fragment into the chunks and drain: one copy-mover pass. */
static int chunks_once(struct djg_packer *p, uint8_t *dest, const struct djg_copy *copies,
		       size_t n)
{
	int rc = 0;

	for (size_t f = 0; rc == 0 && f < n; f++)
		rc = djg_packer_add(p, dest + copies[f].dst_off, copies[f].src, copies[f].len);
	return rc != 0 ? rc : djg_packer_drain(p);
}

/* The copy mover on the layout's fragments, checked byte for byte. */
static void chunks_row(const struct bench_opts *o, int16_t dev_id, const struct layout *l,
		       const struct djg_copy *copies, size_t n, uint8_t *host, void *dest,
		       uint8_t *back, struct bench_report *rep)
{
	struct bench_result *res = report_add(rep, "chunks");
	struct djg_cuda_packer *cp = NULL;
	int rc;

	snprintf(res->what, sizeof(res->what), "copy chunks %s %uB %uKiBx%d", l->name,
		 o->payload, (unsigned int)(o->chunk_size >> 10), o->n_chunks);
	snprintf(res->layout, sizeof(res->layout), "%s", l->name);
	res->bytes = o->bench_bytes;
	res->seconds = 1e30;
	cudaMemset(dest, 0, o->bench_bytes);
	rc = djg_cuda_packer_create(dev_id, bench_cuda_ordinal(dev_id), o->chunk_size, (unsigned int)o->n_chunks,
				    SOCKET_ID_ANY, &cp);
	for (int r = 0; rc == 0 && r <= o->reps; r++) {
		uint64_t t0 = djc_time_ns();
		double s;

		rc = chunks_once(djg_cuda_packer_get(cp), dest, copies, n);
		s = (djc_time_ns() - t0) / 1e9;
		if (r == 0)
			continue; /* warm-up */
		res->seconds = RTE_MIN(res->seconds, s);
		res->worst_s = RTE_MAX(res->worst_s, s);
	}
	djg_cuda_packer_destroy(cp);
	res->ok = rc == 0 && gather_exact(host, l, o->bench_bytes, o->payload, dest, back);
	res->gbytes_s = res->ok ? res->bytes / res->seconds / 1e9 : 0;
}

static int bench_layout(const struct bench_opts *o, int16_t dev_id, const struct layout *l,
			uint8_t *host, void *dest, uint8_t *back, double memcpy_s,
			struct bench_report *rep)
{
	size_t bytes = o->bench_bytes, n = (bytes + o->payload - 1) / o->payload;
	struct djg_copy *copies = calloc(n, sizeof(*copies));

	if (copies == NULL)
		return -ENOMEM;
	for (size_t f = 0; f < n; f++) {
		copies[f].src = host + f * l->stride + l->offset;
		copies[f].dst_off = f * o->payload;
		copies[f].len = RTE_MIN((size_t)o->payload, bytes - f * o->payload);
	}
	for (int mode = 0; mode <= MODE_ONESHOT; mode++) {
		struct bench_result *res;

		if (!(o->modes & (1 << mode)))
			continue;
		cudaMemset(dest, 0, bytes);
		res = report_add(rep, "gather");
		describe(l, o, mode, res->what, sizeof(res->what));
		snprintf(res->layout, sizeof(res->layout), "%s", l->name);
		res->bytes = bytes;
		res->seconds = mode == MODE_ONESHOT ? oneshot_best(o, dev_id, dest, copies, n)
						    : sink_best(o, dev_id, mode, dest, copies, n);
		res->ok = res->seconds > 0 && gather_exact(host, l, bytes, o->payload, dest, back);
		res->gbytes_s = res->seconds > 0 ? bytes / res->seconds / 1e9 : 0;
		res->ratio = res->seconds > 0 ? memcpy_s / res->seconds : 0;
	}
	probe_row(o, dev_id, l, copies, n, rep);
	chunks_row(o, dev_id, l, copies, n, host, dest, back, rep);
	free(copies);
	return 0;
}

/* Stream @bytes of @dev out through the stager into extbuf mbufs of
 * payload size, freed at once (a NIC done sending). With @expect, compare. */
static int tx_once(const struct bench_opts *o, struct djg_tx_stager *st,
		   struct rte_mempool *mp, const void *dev, size_t bytes, const uint8_t *expect)
{
	struct djg_tx_chunk c;
	struct rte_mbuf *m[64];
	int rc, ok = 1;

	rc = djg_tx_stager_start(st, dev, bytes);
	while (rc == 0 || rc == -EAGAIN) {
		rc = djg_tx_stager_next(st, &c);
		if (rc != 0)
			continue;
		for (uint32_t off = 0; off < c.len;) {
			unsigned int n = RTE_MIN(64u, (c.len - off + o->payload - 1) / o->payload);

			if (rte_pktmbuf_alloc_bulk(mp, m, n) != 0)
				return -ENOMEM;
			for (unsigned int i = 0; i < n; i++, off += o->payload) {
				uint16_t len = RTE_MIN(o->payload, c.len - off);

				djg_tx_chunk_attach(st, &c, m[i], off, len);
				if (expect != NULL)
					ok &= memcmp(rte_pktmbuf_mtod(m[i], void *),
						     expect + c.offset + off, len) == 0;
			}
			rte_pktmbuf_free_bulk(m, n);
		}
		djg_tx_chunk_put(st, &c);
	}
	return rc == -ENODATA ? (ok ? 0 : -EIO) : rc;
}

static void bench_tx(const struct bench_opts *o, int16_t dev_id, const void *dev, uint8_t *host,
		     uint8_t *back, struct bench_report *rep)
{
	struct djg_tx_stager_conf conf = {.dev_id = dev_id, .chunk_size = 1 << 20,
					     .n_chunks = 4, .socket = SOCKET_ID_ANY};
	struct rte_mempool *mp = rte_pktmbuf_pool_create("bench_txm", 8191, 256, 0, 0,
							 SOCKET_ID_ANY);
	struct djg_tx_stager *st = NULL;
	struct bench_result *base = report_add(rep, "memcpy D2H"), *res;
	size_t bytes = o->bench_bytes;
	double best = 1e30, base_best = 1e30;

	snprintf(base->what, sizeof(base->what), "cudaMemcpy D2H pinned");
	for (int r = 0; r <= o->reps; r++) {
		uint64_t t0 = djc_time_ns();

		if (cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
			return;
		if (r > 0)
			base_best = RTE_MIN(base_best, (djc_time_ns() - t0) / 1e9);
	}
	base->bytes = bytes;
	base->seconds = base_best;
	base->gbytes_s = bytes / base_best / 1e9;
	base->ratio = 1;
	base->ok = 1;
	res = report_add(rep, "tx");
	snprintf(res->what, sizeof(res->what), "tx stage 1MiBx4 -> %uB extbufs", o->payload);
	res->bytes = bytes;
	/* The first pass checks every mbuf's bytes against the D2H copy. */
	memcpy(back, host, bytes);
	res->ok = mp != NULL && djg_tx_stager_create(&conf, &st) == 0 &&
		  tx_once(o, st, mp, dev, bytes, back) == 0;
	for (int r = 0; res->ok && r < o->reps; r++) {
		uint64_t t0 = djc_time_ns();

		res->ok = tx_once(o, st, mp, dev, bytes, NULL) == 0;
		best = RTE_MIN(best, (djc_time_ns() - t0) / 1e9);
	}
	if (res->ok) {
		res->seconds = best;
		res->gbytes_s = bytes / best / 1e9;
		res->ratio = base_best / best;
	}
	djg_tx_stager_destroy(st);
	rte_mempool_free(mp);
}

/* Rx mbufs live in EAL (hugepage) memory, so the source does too where EAL
 * has room; else plain pages. *eal says which, for the free. */
static uint8_t *source_alloc(size_t len, int *eal)
{
	uint8_t *p = rte_malloc("bench_src", len, 4096);

	*eal = p != NULL;
	return p != NULL ? p : aligned_alloc(4096, len);
}

int run_bandwidth(const struct bench_opts *o, int16_t dev_id, struct bench_report *rep)
{
	size_t bytes = o->bench_bytes;
	size_t slot = RTE_ALIGN_CEIL(MBUF_PAYLOAD_OFF + o->payload, RTE_CACHE_LINE_SIZE);
	size_t lined = RTE_ALIGN_CEIL(LINED_PAYLOAD_OFF + o->payload, GPU_LINE);
	size_t frags = (bytes + o->payload - 1) / o->payload;
	size_t widest = RTE_MAX(slot, lined);
	size_t region = RTE_ALIGN_CEIL(RTE_MAX(frags * widest, bytes), 4096);
	const struct layout layouts[] = {
		{"packed", o->payload, 0},
		{"mbuf", slot, MBUF_PAYLOAD_OFF},
		{"lined", lined, LINED_PAYLOAD_OFF},
	};
	int eal_mem;
	uint8_t *host = source_alloc(region, &eal_mem), *back = malloc(bytes);
	struct djg_pool *pool = NULL;
	struct bench_result *base;
	void *dest = NULL;
	int first;
	int rc = host && back ? djg_pool_create(dev_id, bytes, &pool) : -ENOMEM;

	if (rc == 0)
		rc = djg_pool_alloc(pool, bytes, &dest);
	if (rc == 0) {
		fill_pattern(host, region, o->seed);
		rc = djg_host_register(dev_id, host, region);
	}
	if (rc != 0)
		goto out;
	printf("bench-gpu: source %zu MiB in %s memory\n", region >> 20,
	       eal_mem && dp_eal_has_hugepages() ? "hugepage" : "4 KiB-page");
	base = report_add(rep, "memcpy");
	snprintf(base->what, sizeof(base->what), "cudaMemcpy H2D pinned");
	base->bytes = bytes;
	base->seconds = memcpy_best(dest, host, bytes, o->reps);
	base->ok = base->seconds > 0;
	first = rep->n;
	for (size_t i = 0; base->ok && i < RTE_DIM(layouts); i++) {
		double again;

		bench_layout(o, dev_id, &layouts[i], host, dest, back, base->seconds, rep);
		/* The baseline is the best cudaMemcpy of the whole run: a copy
		 * slowed by something else on the machine must not flatter the
		 * gather's ratio. */
		again = memcpy_best(dest, host, bytes, o->reps);
		if (again > 0 && again < base->seconds)
			base->seconds = again;
	}
	base->gbytes_s = base->ok ? bytes / base->seconds / 1e9 : 0;
	base->ratio = 1;
	for (int i = first; i < rep->n; i++)
		if (rep->r[i].seconds > 0)
			rep->r[i].ratio = base->seconds / rep->r[i].seconds;
	if (base->ok)
		bench_tx(o, dev_id, dest, host, back, rep);
	djg_host_unregister(dev_id, host);
out:
	if (rc != 0)
		fprintf(stderr, "bench-gpu: bandwidth: %s\n", dj_strerror(rc));
	djg_pool_destroy(pool);
	if (eal_mem)
		rte_free(host);
	else
		free(host);
	free(back);
	return rc;
}

#else

int run_bandwidth(const struct bench_opts *o, int16_t dev_id, struct bench_report *rep)
{
	(void)o;
	(void)dev_id;
	(void)rep;
	printf("bench-gpu: built without CUDA: no bandwidth bench\n");
	return 0;
}

#endif
