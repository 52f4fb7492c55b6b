/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Byte-exact check of the receive path with real mbufs: two net_ring ports
 * of this process joined back to back. The sender cuts a random buffer into
 * UDP packets (a 16-byte header says where each payload goes); the receiver
 * drives the data plane's placer (gpu/dp_placer.c) as the engine does: each
 * payload to place(), each rx burst to burst_end(), flush() after a poll
 * that came back short, sync() at the end. So the placer's gather bursts
 * (rx bursts coalesced, --gather-burst) feed the rx sink (staged: GPU
 * gather kernel; host: memcpy). With a GPU, the copy mover packs each
 * payload into pinned chunks that the copy engine moves (gpu/packer.h) and
 * frees the burst at once. One packet pointing past the destination is
 * injected per size: it must be refused (as the engine's bounds check
 * does) while the rest lands. Then the destination is copied back and
 * compared.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "dataplane/dataplane.h"
#include "gpu/packer.h"
#include "bench_gpu.h"

#define RING_SLOTS 4096
#define POOL_MBUFS 16383
#define PKT_MAGIC 0x646a6e31u /* "djn1" */
#define UDP_PORT 4791

struct frag_hdr {
	uint64_t offset;
	uint32_t len;
	uint32_t magic;
} __attribute__((packed));

#define HDR_LEN (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
		 sizeof(struct rte_udp_hdr) + sizeof(struct frag_hdr))

struct wire {
	struct rte_mempool *mp;
	struct rte_ring *rings[2];
	uint16_t tx_port;
	uint16_t rx_port;
};

struct xfer {
	const struct bench_opts *o;
	struct wire *w;
	const struct dp_engine_placer *placer; /* gather mover; NULL: packer */
	void *state;                  /* the placer's, for this thread */
	struct djg_packer *packer;    /* copy mover */
	uint8_t *dest;
	const uint8_t *src;
	size_t total;
	size_t next_off;        /* next payload byte to packetise */
	uint64_t bytes_landed;  /* payload bytes accepted by the sink */
	uint64_t refused;       /* packets the sink or the parser refused */
	uint64_t tx_pkts, rx_pkts;
	int inject_bad;         /* send the out-of-range packet still */
	struct rte_mbuf *pending[256];
	uint16_t pending_n, pending_first;
};

static int port_start(uint16_t port, struct rte_mempool *mp)
{
	struct rte_eth_conf conf = {0};
	int rc = rte_eth_dev_configure(port, 1, 1, &conf);

	if (rc == 0)
		rc = rte_eth_rx_queue_setup(port, 0, 1024, rte_socket_id(), NULL, mp);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, 1024, rte_socket_id(), NULL);
	return rc == 0 ? rte_eth_dev_start(port) : rc;
}

static int wire_open(struct wire *w, uint32_t payload)
{
	uint16_t room = RTE_PKTMBUF_HEADROOM + HDR_LEN + payload;
	struct rte_ring *a, *b;
	int tx, rx;

	w->mp = rte_pktmbuf_pool_create("bench_mbufs", POOL_MBUFS, 256, 0, room, rte_socket_id());
	a = rte_ring_create("bench_r0", RING_SLOTS, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	b = rte_ring_create("bench_r1", RING_SLOTS, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (w->mp == NULL || a == NULL || b == NULL)
		return -ENOMEM;
	w->rings[0] = a;
	w->rings[1] = b;
	tx = rte_eth_from_rings("bench_tx", &b, 1, &a, 1, rte_socket_id());
	rx = rte_eth_from_rings("bench_rx", &a, 1, &b, 1, rte_socket_id());
	if (tx < 0 || rx < 0)
		return -ENODEV;
	w->tx_port = tx;
	w->rx_port = rx;
	/* The placer registers the pool with the GPU when it first sees it. */
	return port_start(w->tx_port, w->mp) != 0 || port_start(w->rx_port, w->mp) != 0 ? -EIO : 0;
}

static void wire_close(struct wire *w)
{
	rte_eth_dev_stop(w->tx_port);
	rte_eth_dev_stop(w->rx_port);
	rte_eth_dev_close(w->tx_port);
	rte_eth_dev_close(w->rx_port);
	rte_mempool_free(w->mp);
	rte_ring_free(w->rings[0]);
	rte_ring_free(w->rings[1]);
}

static void build_packet(struct rte_mbuf *m, uint64_t offset, uint32_t len, const uint8_t *data)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	struct frag_hdr *fh = (struct frag_hdr *)(udp + 1);

	memset(eth, 0, sizeof(*eth));
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + sizeof(*udp) + sizeof(*fh) + len);
	udp->dst_port = rte_cpu_to_be_16(UDP_PORT);
	udp->dgram_len = rte_cpu_to_be_16(sizeof(*udp) + sizeof(*fh) + len);
	fh->offset = offset;
	fh->len = len;
	fh->magic = PKT_MAGIC;
	memcpy(fh + 1, data, len);
	m->data_len = m->pkt_len = HDR_LEN + len;
}

/* Packetise the next burst of the source (the "remote sender"). */
static void sender_fill(struct xfer *x)
{
	uint32_t chunk = x->o->payload;
	uint16_t n = 0;

	if (x->pending_n > 0 || (x->next_off >= x->total && !x->inject_bad))
		return;
	if (rte_pktmbuf_alloc_bulk(x->w->mp, x->pending, x->o->burst) != 0)
		return;
	for (; n < x->o->burst && x->next_off < x->total; n++) {
		uint32_t len = RTE_MIN((size_t)chunk, x->total - x->next_off);

		build_packet(x->pending[n], x->next_off, len, x->src + x->next_off);
		x->next_off += len;
	}
	if (x->inject_bad && n < x->o->burst) {
		/* Points one byte past the destination: must be refused. */
		build_packet(x->pending[n++], x->total, 1, x->src);
		x->inject_bad = 0;
	}
	if (n < x->o->burst)
		rte_pktmbuf_free_bulk(x->pending + n, x->o->burst - n);
	x->pending_n = n;
	x->pending_first = 0;
}

static void sender_send(struct xfer *x)
{
	uint16_t sent;

	if (x->pending_n == 0)
		return;
	sent = rte_eth_tx_burst(x->w->tx_port, 0, x->pending + x->pending_first, x->pending_n);
	x->pending_first += sent;
	x->tx_pkts += sent;
	x->pending_n -= sent;
}

/* The payload's copy, or 0 when the packet is not one of ours. */
static int parse(struct rte_mbuf *m, struct djg_copy *c)
{
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eth + 1);
	const struct frag_hdr *fh = (const struct frag_hdr *)((const uint8_t *)(ip + 1) +
								sizeof(struct rte_udp_hdr));

	if (m->data_len < HDR_LEN || eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ip->next_proto_id != IPPROTO_UDP || fh->magic != PKT_MAGIC ||
	    fh->len != m->data_len - HDR_LEN)
		return 0;
	c->src = fh + 1;
	c->dst_off = fh->offset;
	c->len = fh->len;
	c->reserved = 0;
	return 1;
}

/* Whether the packet is ours and lands inside the destination (the
 * engine's check before it places a fragment): *c its copy. */
static int accepted(const struct xfer *x, struct rte_mbuf *m, struct djg_copy *c)
{
	return parse(m, c) && c->len <= x->total && c->dst_off <= x->total - c->len;
}

/* Copy mover: each payload into the chunks (bounds checked as the sink
 * does), then the burst goes back to its pool at once. */
static int deliver_packed(struct xfer *x, struct rte_mbuf **pkts, uint16_t n)
{
	int rc = 0;

	for (uint16_t i = 0; i < n && rc == 0; i++) {
		struct djg_copy c;

		if (!accepted(x, pkts[i], &c)) {
			x->refused++;
			continue;
		}
		rc = djg_packer_add(x->packer, x->dest + c.dst_off, c.src, c.len);
		x->bytes_landed += c.len;
	}
	rte_pktmbuf_free_bulk(pkts, n);
	return rc;
}

/* One received burst through the placer, as the engine's rx loop hands it:
 * every accepted payload to place(), those mbufs to burst_end() (which
 * keeps them in its gather burst or gives them back), the rest freed. */
static int deliver(struct xfer *x, struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mbuf *placed[256];
	uint16_t k = 0;

	for (uint16_t i = 0; i < n; i++) {
		struct djg_copy c;

		if (!accepted(x, pkts[i], &c)) {
			rte_pktmbuf_free(pkts[i]);
			x->refused++;
			continue;
		}
		x->placer->place(x->state, x->dest, x->total, c.dst_off, c.src, c.len);
		x->bytes_landed += c.len;
		placed[k++] = pkts[i];
	}
	if (k > 0 && x->placer->burst_end(x->state, placed, k) != 0)
		rte_pktmbuf_free_bulk(placed, k);
	return 0;
}

static int transfer(struct xfer *x)
{
	struct rte_mbuf *pkts[256];

	/* Until every packet sent was received: none may leak into the next size. */
	while (x->next_off < x->total || x->inject_bad || x->pending_n > 0 ||
	       x->rx_pkts < x->tx_pkts) {
		uint16_t n;
		int rc;

		sender_fill(x);
		sender_send(x);
		n = rte_eth_rx_burst(x->w->rx_port, 0, pkts, x->o->burst);
		x->rx_pkts += n;
		if (n > 0 && (rc = x->packer != NULL ? deliver_packed(x, pkts, n) :
						      deliver(x, pkts, n)) != 0)
			return rc;
		/* A short poll ends the gather burst, as in the engine. */
		if (x->placer != NULL && n < x->o->burst)
			x->placer->flush(x->state);
	}
	/* The engine's sync() before it reports a receive complete. */
	return x->packer != NULL ? djg_packer_drain(x->packer) : x->placer->sync(x->state);
}

static int check_size(struct xfer *x, struct djg_pool *pool, void *dest, uint8_t *back,
		      struct bench_result *res)
{
	uint64_t t0;
	int rc;

	memset(back, 0xee, x->total);
	rc = djg_pool_copy_in(pool, dest, back, x->total); /* poison the destination */
	if (rc != 0)
		return rc;
	t0 = djc_time_ns();
	rc = transfer(x);
	res->seconds = (djc_time_ns() - t0) / 1e9;
	if (rc == 0)
		rc = djg_pool_copy_out(pool, back, dest, x->total);
	res->bytes = x->total;
	res->gbytes_s = res->seconds > 0 ? x->total / res->seconds / 1e9 : 0;
	res->ok = rc == 0 && memcmp(back, x->src, x->total) == 0 && x->refused == 1;
	if (rc == 0 && !res->ok)
		fprintf(stderr, "bench-gpu: %zu B: %s (refused %" PRIu64 ", want 1)\n", x->total,
			memcmp(back, x->src, x->total) ? "MISMATCH" : "bad packet not refused",
			x->refused);
	return rc;
}

/* What the placer handed its sinks: rx bursts coalesced into how many. */
static void gather_bursts_print(struct djg_dp_placer *p)
{
	struct djg_dp_placer_stats st;

	djg_dp_placer_stats_get(p, &st);
	printf("placer: %" PRIu64 " fragments in %" PRIu64 " gather bursts (%.1f each), "
	       "%" PRIu64 " copied directly, %" PRIu64 " failed\n", st.sink.copies, st.sink.bursts,
	       st.sink.bursts != 0 ? (double)st.sink.copies / st.sink.bursts : 0.0,
	       st.direct_copies, st.failures);
}

static size_t largest(const struct bench_opts *o)
{
	size_t max = 1;

	for (int i = 0; i < o->n_verify; i++)
		max = RTE_MAX(max, o->verify[i]);
	return max;
}

static int verify_sizes(const struct bench_opts *o, int16_t dev_id, struct wire *w,
			struct djg_pool *pool, struct bench_report *rep)
{
	size_t max = largest(o);
	uint8_t *src = malloc(max), *back = malloc(max);
	struct djg_dp_placer_conf pc = {
		.dev_id = dev_id, .mode = DJG_GATHER_PERSISTENT, .blocks = o->blocks,
		.frag_size = o->payload, .gather_burst = bench_gather_burst(o),
		.mover = DJG_MOVER_GATHER,
	};
	const struct dp_engine_placer *ops = NULL;
	struct djg_dp_placer *placer = NULL;
	struct djg_cuda_packer *cp = NULL;
	void *dest = NULL, *state = NULL;
	int rc = src && back ? djg_pool_alloc(pool, max, &dest) : -ENOMEM;
	int failed = 0;

	if (rc == 0) {
		fill_pattern(src, max, o->seed);
		rc = djg_dp_placer_create(&pc, &placer);
	}
	if (rc == 0) {
		ops = djg_dp_placer_ops(placer);
		rc = ops->lcore_init(ops->ctx, 0, &state);
		if (rc != 0)
			state = NULL;
	}
	/* The copy mover needs a GPU: host memory is memcpy either way. */
	if (rc == 0 && (o->movers & 2) && dev_id != DJG_HOST) {
		rc = djg_cuda_packer_create(dev_id, bench_cuda_ordinal(dev_id), o->chunk_size,
					    (unsigned int)o->n_chunks, SOCKET_ID_ANY, &cp);
	}
	for (int i = 0; rc == 0 && i < 2 * o->n_verify; i++) {
		int copy = i >= o->n_verify;
		struct xfer x = {.o = o, .w = w, .placer = copy ? NULL : ops, .state = state,
				 .packer = copy && cp != NULL ? djg_cuda_packer_get(cp) : NULL,
				 .dest = dest, .src = src, .total = o->verify[i % o->n_verify],
				 .inject_bad = 1};
		struct bench_result *res;

		if (x.placer == NULL && x.packer == NULL)
			continue;
		if (!(o->movers & (copy ? 2 : 1)))
			continue;
		res = report_add(rep, "verify");
		snprintf(res->what, sizeof(res->what), "verify %zu B %s", x.total,
			 copy ? "copy chunks" :
			 djg_rx_path_name(dev_id == DJG_HOST ? DJG_RX_HOST : DJG_RX_STAGED));
		rc = check_size(&x, pool, dest, back, res);
		failed += !res->ok;
	}
	if (rc == 0 && placer != NULL)
		gather_bursts_print(placer);
	djg_cuda_packer_destroy(cp);
	/* The placer lets go of the pool (unregisters it) before it is freed. */
	if (state != NULL)
		ops->lcore_fini(state);
	djg_dp_placer_destroy(placer);
	if (dest != NULL)
		djg_pool_free(pool, dest);
	free(src);
	free(back);
	return rc != 0 ? rc : failed ? -EIO : 0;
}

int run_verify(const struct bench_opts *o, int16_t dev_id, struct bench_report *rep)
{
	struct wire w = {0};
	struct djg_pool *pool = NULL;
	int rc = wire_open(&w, o->payload);

	if (rc == 0)
		rc = djg_pool_create(dev_id, largest(o), &pool);
	if (rc == 0)
		rc = verify_sizes(o, dev_id, &w, pool, rep);
	if (rc != 0)
		fprintf(stderr, "bench-gpu: verify: %s\n", dj_strerror(rc));
	djg_pool_destroy(pool);
	wire_close(&w);
	return rc;
}
