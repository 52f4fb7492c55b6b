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
 *
 * --verify-queues N then spreads the receive over N queues, as the engine's
 * polling lcores share a port: N net_ring pairs, each with a sender thread
 * that packetises its contiguous share of the source and a receive thread
 * that drives the placer on a state of its own (lcore_init per queue), all
 * into one destination, each thread pinned to a CPU of its own. Timed from
 * the senders' start to the last receive thread's sync().
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
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
	bool ports_open;
};

struct xfer {
	const struct bench_opts *o;
	struct wire *w;
	const struct dp_engine_placer *placer; /* gather mover; NULL: packer */
	void *state;                  /* the placer's, for this thread */
	struct djg_packer *packer;    /* copy mover */
	struct rte_mempool *mp;       /* the sender's packets come from it */
	uint8_t *dest;
	const uint8_t *src;
	size_t total;           /* the destination's length */
	size_t end;             /* this sender's share ends here (total: all of it) */
	size_t next_off;        /* next payload byte to packetise */
	uint64_t bytes_landed;  /* payload bytes accepted by the sink */
	uint64_t refused;       /* packets the sink or the parser refused */
	uint64_t tx_pkts, rx_pkts; /* tx_pkts: atomic, a receive thread reads it */
	int sent_all;           /* atomic: the sender is done, tx_pkts is final */
	int inject_bad;         /* send the out-of-range packet still */
	/* Who waits for whom: sends the ring took only part of (the receive
	 * side is behind), polls that found nothing (the sender is behind). */
	uint64_t sends, sends_short, polls, polls_empty;
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

/* A net_ring pair of its own, its objects' names ending in @tag (a
 * receive queue's number; "" for the one-thread check). */
static int wire_open(struct wire *w, uint32_t payload, const char *tag)
{
	uint16_t room = RTE_PKTMBUF_HEADROOM + HDR_LEN + payload;
	char n[3][RTE_MEMPOOL_NAMESIZE];
	struct rte_ring *a, *b;
	int tx, rx;

	snprintf(n[0], sizeof(n[0]), "bench_mbufs%s", tag);
	snprintf(n[1], sizeof(n[1]), "bench_r0%s", tag);
	snprintf(n[2], sizeof(n[2]), "bench_r1%s", tag);
	w->mp = rte_pktmbuf_pool_create(n[0], POOL_MBUFS, 256, 0, room, rte_socket_id());
	a = rte_ring_create(n[1], RING_SLOTS, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	b = rte_ring_create(n[2], RING_SLOTS, rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	w->rings[0] = a;
	w->rings[1] = b;
	if (w->mp == NULL || a == NULL || b == NULL)
		return -ENOMEM;
	snprintf(n[0], sizeof(n[0]), "bench_tx%s", tag);
	snprintf(n[1], sizeof(n[1]), "bench_rx%s", tag);
	tx = rte_eth_from_rings(n[0], &b, 1, &a, 1, rte_socket_id());
	rx = rte_eth_from_rings(n[1], &a, 1, &b, 1, rte_socket_id());
	if (tx < 0 || rx < 0)
		return -ENODEV;
	w->tx_port = tx;
	w->rx_port = rx;
	w->ports_open = true;
	/* The placer registers the pool with the GPU when it first sees it. */
	return port_start(w->tx_port, w->mp) != 0 || port_start(w->rx_port, w->mp) != 0 ? -EIO : 0;
}

static void wire_close(struct wire *w)
{
	if (w->ports_open) {
		rte_eth_dev_stop(w->tx_port);
		rte_eth_dev_stop(w->rx_port);
		rte_eth_dev_close(w->tx_port);
		rte_eth_dev_close(w->rx_port);
	}
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

	if (x->pending_n > 0 || (x->next_off >= x->end && !x->inject_bad))
		return;
	if (rte_pktmbuf_alloc_bulk(x->mp, x->pending, x->o->burst) != 0)
		return;
	for (; n < x->o->burst && x->next_off < x->end; n++) {
		uint32_t len = RTE_MIN((size_t)chunk, x->end - x->next_off);

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
	__atomic_store_n(&x->tx_pkts, x->tx_pkts + sent, __ATOMIC_RELEASE);
	x->sends++;
	x->sends_short += sent < x->pending_n;
	x->pending_n -= sent;
}

/* Whether the sender has packets left to build or send. */
static bool sender_busy(const struct xfer *x)
{
	return x->next_off < x->end || x->inject_bad || x->pending_n > 0;
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

/* One rx poll of the receive side, as the engine's loop does it. */
static int receive_poll(struct xfer *x)
{
	struct rte_mbuf *pkts[256];
	uint16_t n = rte_eth_rx_burst(x->w->rx_port, 0, pkts, x->o->burst);
	int rc;

	x->rx_pkts += n;
	x->polls++;
	x->polls_empty += n == 0;
	if (n > 0 && (rc = x->packer != NULL ? deliver_packed(x, pkts, n) :
					      deliver(x, pkts, n)) != 0)
		return rc;
	/* A short poll ends the gather burst, as in the engine. */
	if (x->placer != NULL && n < x->o->burst)
		x->placer->flush(x->state);
	return 0;
}

/* The engine's sync() before it reports a receive complete. */
static int receive_sync(struct xfer *x)
{
	return x->packer != NULL ? djg_packer_drain(x->packer) : x->placer->sync(x->state);
}

/* Sender and receiver on this thread, in turn. */
static int transfer(struct xfer *x)
{
	/* Until every packet sent was received: none may leak into the next size. */
	while (sender_busy(x) || x->rx_pkts < x->tx_pkts) {
		int rc;

		sender_fill(x);
		sender_send(x);
		rc = receive_poll(x);
		if (rc != 0)
			return rc;
	}
	return receive_sync(x);
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
		struct xfer x = {.o = o, .w = w, .mp = w->mp, .placer = copy ? NULL : ops,
				 .state = state,
				 .packer = copy && cp != NULL ? djg_cuda_packer_get(cp) : NULL,
				 .dest = dest, .src = src, .total = o->verify[i % o->n_verify],
				 .end = o->verify[i % o->n_verify], .inject_bad = 1};
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

/* ---- the receive spread over queues (--verify-queues) ------------------------- */

/* Bytes each queue's warm-up sends before the timed transfer: the placer
 * registers each queue's mempool with the GPU at its first burst, a slow
 * driver call that must not be timed. */
#define WARM_BYTES (256u << 10)
/* A run that is not done by then failed (bounded loops). */
#define QUEUE_TIMEOUT_NS (120ull * 1000 * 1000 * 1000)

/* What the threads of one run share. */
struct queues_run {
	bool prebuilt;       /* the senders build every packet before the start */
	unsigned int ready;  /* atomic: threads set up (senders: packets built) */
	int go;              /* atomic: the threads start */
	int stop;            /* atomic: a thread failed, the others give up */
	uint64_t deadline;   /* djc_time_ns() past which the run failed */
};

/*
 * One receive queue: a net_ring pair of its own, a sender thread that
 * packetises the queue's share of the source and a receive thread that
 * polls the pair and drives the placer on a state of its own, each pinned
 * to a CPU of its own (and registered with EAL, for the mempool caches).
 */
struct queue {
	struct xfer x;
	struct queues_run *run;
	/* --verify-prebuilt: every packet of the share built before the start,
	 * from a pool of the queue's own that holds them all. */
	struct rte_mempool *pre_mp;
	struct rte_mbuf **pre;
	size_t n_pre, pre_cap;
	size_t pre_sent;     /* pre[0..pre_sent) are the port's now */
	pthread_t tx_thread, rx_thread;
	bool tx_started, rx_started;
	int tx_cpu, rx_cpu;
	int tx_rc, rx_rc;
	uint64_t tx_end_ns, rx_end_ns;
} __rte_cache_aligned;

/* Pin the calling thread to @cpu and give it an EAL lcore id; without one
 * (all taken) it runs without mempool caches: slower, still correct. */
static int thread_enter(int cpu)
{
	cpu_set_t set;
	int rc;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc != 0)
		return -rc;
	if (rte_thread_register() != 0)
		fprintf(stderr, "bench-gpu: CPU %d: no EAL lcore id, no mempool cache\n", cpu);
	return 0;
}

/* Whether the run goes on: the threads start together, give up together. */
static bool run_wait_go(struct queues_run *r)
{
	__atomic_fetch_add(&r->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		rte_pause();
	return !__atomic_load_n(&r->stop, __ATOMIC_RELAXED);
}

static int run_check(struct queues_run *r, int rc)
{
	if (rc == 0 && djc_time_ns() > r->deadline)
		rc = -ETIMEDOUT;
	if (rc != 0)
		__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	return rc;
}

/* Build every packet of the share now (untimed), into q->pre. */
static int prebuild(struct queue *q)
{
	struct xfer *x = &q->x;

	q->n_pre = q->pre_sent = 0;
	while (sender_busy(x)) {
		sender_fill(x);
		if (x->pending_n == 0 || q->n_pre + x->pending_n > q->pre_cap)
			return -ENOMEM; /* the pool holds the whole share */
		memcpy(q->pre + q->n_pre, x->pending, x->pending_n * sizeof(*q->pre));
		q->n_pre += x->pending_n;
		x->pending_n = 0;
	}
	return 0;
}

/* Send the prebuilt packets: the timed sender only fills the ring, as a
 * NIC's DMA would, without the memcpy of every payload. */
static int send_prebuilt(struct queue *q)
{
	struct xfer *x = &q->x;
	unsigned int polls = 0;
	int rc = 0;

	while (q->pre_sent < q->n_pre && !__atomic_load_n(&q->run->stop, __ATOMIC_RELAXED)) {
		uint16_t want = (uint16_t)RTE_MIN((size_t)x->o->burst, q->n_pre - q->pre_sent);
		uint16_t sent = rte_eth_tx_burst(x->w->tx_port, 0, q->pre + q->pre_sent, want);

		q->pre_sent += sent;
		__atomic_store_n(&x->tx_pkts, x->tx_pkts + sent, __ATOMIC_RELEASE);
		x->sends++;
		x->sends_short += sent < want;
		if (++polls % 1024 == 0 && (rc = run_check(q->run, 0)) != 0)
			break;
	}
	return rc;
}

/* Give back every packet built and not handed to the port: the pending
 * burst, and the prebuilt ones from pre_sent on. A run that failed, or
 * never started because another thread failed first, leaves none taken
 * from a pool that the row's next run needs whole. */
static void sender_drop(struct queue *q)
{
	struct xfer *x = &q->x;

	if (x->pending_n > 0)
		rte_pktmbuf_free_bulk(x->pending + x->pending_first, x->pending_n);
	x->pending_n = 0;
	if (q->pre_sent < q->n_pre)
		rte_pktmbuf_free_bulk(q->pre + q->pre_sent, (unsigned int)(q->n_pre - q->pre_sent));
	q->n_pre = q->pre_sent = 0;
}

static int send_built(struct queue *q)
{
	unsigned int polls = 0;
	int rc = 0;

	while (sender_busy(&q->x) && !__atomic_load_n(&q->run->stop, __ATOMIC_RELAXED)) {
		sender_fill(&q->x);
		sender_send(&q->x);
		if (++polls % 1024 == 0 && (rc = run_check(q->run, 0)) != 0)
			break;
	}
	return rc;
}

static void *queue_send(void *arg)
{
	struct queue *q = arg;
	struct queues_run *r = q->run;
	int rc = thread_enter(q->tx_cpu);

	if (rc == 0 && r->prebuilt)
		rc = run_check(r, prebuild(q));
	if (run_wait_go(r) && rc == 0)
		rc = r->prebuilt ? send_prebuilt(q) : send_built(q);
	q->tx_end_ns = djc_time_ns();
	sender_drop(q);
	q->tx_rc = run_check(r, rc);
	__atomic_store_n(&q->x.sent_all, 1, __ATOMIC_RELEASE);
	rte_thread_unregister();
	return NULL;
}

/* Until the sender is done and every packet it sent came in. */
static bool receive_pending(const struct xfer *x)
{
	if (!__atomic_load_n(&x->sent_all, __ATOMIC_ACQUIRE))
		return true;
	return x->rx_pkts < __atomic_load_n(&x->tx_pkts, __ATOMIC_ACQUIRE);
}

static void *queue_receive(void *arg)
{
	struct queue *q = arg;
	struct queues_run *r = q->run;
	unsigned int polls = 0;
	int rc = thread_enter(q->rx_cpu);

	if (run_wait_go(r) && rc == 0) {
		while (receive_pending(&q->x) && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
			rc = receive_poll(&q->x);
			if (rc != 0 || (++polls % 1024 == 0 && (rc = run_check(r, 0)) != 0))
				break;
		}
	}
	/* Whatever happened, the GPU is done with the queue's mbufs after this. */
	if (q->x.placer != NULL) {
		int s = receive_sync(&q->x);

		rc = rc != 0 ? rc : s;
	}
	q->rx_end_ns = djc_time_ns();
	q->rx_rc = run_check(r, rc);
	rte_thread_unregister();
	return NULL;
}

/* Receive threads on CPUs 1..n, senders on the next n (wrapping): CPU 0
 * keeps EAL's main thread, which only waits. */
static int queue_cpu(unsigned int i)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return (int)((1 + i) % (unsigned long)(n > 0 ? n : 1));
}

/* The queues' shares of @total bytes: contiguous, whole payloads each,
 * the out-of-range packet on queue 0. */
static void queues_share(struct queue *qs, unsigned int nq, size_t total, uint32_t payload)
{
	size_t per = (total + nq - 1) / nq;

	per = (per + payload - 1) / payload * payload;
	for (unsigned int i = 0; i < nq; i++) {
		struct xfer *x = &qs[i].x;

		x->total = total;
		x->next_off = RTE_MIN((size_t)i * per, total);
		x->end = RTE_MIN(x->next_off + per, total);
		x->inject_bad = i == 0;
		x->bytes_landed = x->refused = x->tx_pkts = x->rx_pkts = 0;
		x->sends = x->sends_short = x->polls = x->polls_empty = 0;
		x->sent_all = 0;
		x->pending_n = x->pending_first = 0;
		qs[i].tx_started = qs[i].rx_started = false;
		qs[i].tx_rc = qs[i].rx_rc = 0;
	}
}

/* One transfer of @total bytes spread over the queues, the packets built
 * as they are sent or, @prebuilt, all before; *seconds from the start of
 * the senders to the last receive thread's sync(). */
static int queues_transfer(struct queue *qs, unsigned int nq, size_t total, bool prebuilt,
			   double *seconds)
{
	struct queues_run run = {.prebuilt = prebuilt,
				 .deadline = djc_time_ns() + QUEUE_TIMEOUT_NS};
	uint64_t t0, last = 0;
	int rc = 0;

	queues_share(qs, nq, total, qs[0].x.o->payload);
	for (unsigned int i = 0; i < nq && rc == 0; i++) {
		qs[i].run = &run;
		qs[i].rx_cpu = queue_cpu(i);
		qs[i].tx_cpu = queue_cpu(nq + i);
		rc = -pthread_create(&qs[i].rx_thread, NULL, queue_receive, &qs[i]);
		qs[i].rx_started = rc == 0;
		if (rc == 0)
			rc = -pthread_create(&qs[i].tx_thread, NULL, queue_send, &qs[i]);
		qs[i].tx_started = rc == 0;
	}
	if (rc != 0) /* the threads started give up at once */
		run.stop = 1;
	/* Every thread pinned (and every prebuilt packet built) first. */
	while (rc == 0 && __atomic_load_n(&run.ready, __ATOMIC_ACQUIRE) < 2 * nq)
		rte_pause();
	t0 = djc_time_ns();
	__atomic_store_n(&run.go, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < nq; i++) {
		if (qs[i].tx_started)
			pthread_join(qs[i].tx_thread, NULL);
		if (qs[i].rx_started)
			pthread_join(qs[i].rx_thread, NULL);
		rc = rc != 0 ? rc : qs[i].tx_rc != 0 ? qs[i].tx_rc : qs[i].rx_rc;
		last = RTE_MAX(last, qs[i].rx_end_ns);
		/* From here on the queue's rates are relative to the start. */
		qs[i].tx_end_ns -= t0;
		qs[i].rx_end_ns -= t0;
	}
	*seconds = (last - t0) / 1e9;
	return rc;
}

/* The row's rate per receive lcore and per sender (GB/s of its share). */
static void queues_rates(const struct queue *qs, unsigned int nq, struct bench_result *res)
{
	uint64_t sends = 0, sends_short = 0, polls = 0, polls_empty = 0;

	res->queues = (uint16_t)nq;
	for (unsigned int i = 0; i < nq; i++) {
		double share = (double)qs[i].x.bytes_landed;

		sends += qs[i].x.sends;
		sends_short += qs[i].x.sends_short;
		polls += qs[i].x.polls;
		polls_empty += qs[i].x.polls_empty;

		res->lcore_gbytes_s[i] = qs[i].rx_end_ns ? share / qs[i].rx_end_ns : 0;
		res->sender_gbytes_s[i] = qs[i].tx_end_ns ? share / qs[i].tx_end_ns : 0;
	}
	res->ring_full = sends ? (double)sends_short / sends : 0;
	res->polls_empty = polls ? (double)polls_empty / polls : 0;
}
/* Sum of the queues' counters: every payload byte landed, one refused. */
static bool queues_complete(const struct queue *qs, unsigned int nq, size_t total)
{
	uint64_t landed = 0, refused = 0;

	for (unsigned int i = 0; i < nq; i++) {
		landed += qs[i].x.bytes_landed;
		refused += qs[i].x.refused;
	}
	if (landed == total && refused == 1)
		return true;
	fprintf(stderr, "bench-gpu: %u queues: %" PRIu64 " of %zu B landed, %" PRIu64
		" refused (want 1)\n", nq, landed, total, refused);
	return false;
}

/* A warm-up transfer, then the timed one: @total bytes into @dest, copied
 * back and compared. */
static int queues_check(struct queue *qs, unsigned int nq, struct djg_pool *pool, void *dest,
			const uint8_t *src, uint8_t *back, size_t total, struct bench_result *res)
{
	size_t warm = RTE_MIN((size_t)WARM_BYTES * nq, total);
	double warm_s;
	/* The warm-up builds as it sends, from the same pools. */
	int rc = queues_transfer(qs, nq, warm, false, &warm_s);

	if (rc == 0 && !queues_complete(qs, nq, warm))
		rc = -EIO;
	memset(back, 0xee, total);
	if (rc == 0)
		rc = djg_pool_copy_in(pool, dest, back, total); /* poison the destination */
	if (rc == 0)
		rc = queues_transfer(qs, nq, total, qs[0].pre != NULL, &res->seconds);
	res->bytes = total;
	res->gbytes_s = rc == 0 && res->seconds > 0 ? total / res->seconds / 1e9 : 0;
	if (rc == 0)
		rc = djg_pool_copy_out(pool, back, dest, total);
	res->ok = rc == 0 && queues_complete(qs, nq, total) && memcmp(back, src, total) == 0;
	if (rc == 0 && !res->ok && memcmp(back, src, total) != 0)
		fprintf(stderr, "bench-gpu: %zu B over %u queues: MISMATCH\n", total, nq);
	queues_rates(qs, nq, res);
	return rc;
}

static void queues_print(const struct bench_result *r)
{
	printf("%s: %.2f GB/s = %.1f Gbit/s end to end%s\n  receive lcores GB/s:", r->what,
	       r->gbytes_s, r->gbytes_s * 8, r->ok ? "" : " (FAILED)");
	for (unsigned int i = 0; i < r->queues; i++)
		printf(" %.2f", r->lcore_gbytes_s[i]);
	printf("\n  senders GB/s:       ");
	for (unsigned int i = 0; i < r->queues; i++)
		printf(" %.2f", r->sender_gbytes_s[i]);
	printf("\n  sends into a full ring %.1f %% (receive side behind), empty polls %.1f %% "
	       "(senders behind)\n", r->ring_full * 100, r->polls_empty * 100);
}

/* --verify-prebuilt: queue @i's pool holds every packet of its share of
 * @total over @nq queues at once, and the out-of-range one. No per-lcore
 * cache: no packet may sit in another thread's cache when the sender
 * builds them all. */
static int prebuilt_pool(struct queue *q, unsigned int i, unsigned int nq, size_t total,
			 uint32_t payload)
{
	uint16_t room = RTE_PKTMBUF_HEADROOM + HDR_LEN + payload;
	size_t per = ((total + nq - 1) / nq + payload - 1) / payload;
	char name[RTE_MEMPOOL_NAMESIZE];

	snprintf(name, sizeof(name), "bench_pre_q%u", i);
	q->pre_cap = per + 1;
	q->pre = malloc(q->pre_cap * sizeof(*q->pre));
	q->pre_mp = rte_pktmbuf_pool_create(name, (unsigned int)q->pre_cap + 64, 0, 0, room,
					    rte_socket_id());
	if (q->pre == NULL || q->pre_mp == NULL)
		return -ENOMEM;
	q->x.mp = q->pre_mp;
	return 0;
}

/* One row: @nq queues, each with its wire (wires[0..nq)) and its state of
 * one placer whose mover is @mover, move @total bytes into one destination;
 * @prebuilt: every packet built before the start. */
static int queues_row(const struct bench_opts *o, int16_t dev_id, struct djg_pool *pool,
		      struct wire *wires, void *dest, const uint8_t *src, uint8_t *back,
		      size_t total, unsigned int nq, enum djg_rx_mover mover, bool prebuilt,
		      struct bench_report *rep)
{
	struct djg_dp_placer_conf pc = {
		.dev_id = dev_id, .mode = DJG_GATHER_PERSISTENT, .blocks = o->blocks,
		.frag_size = o->payload, .gather_burst = bench_gather_burst(o),
		.mover = mover, .chunk_size = o->chunk_size, .n_chunks = (uint16_t)o->n_chunks,
	};
	struct queue *qs = aligned_alloc(RTE_CACHE_LINE_SIZE, nq * sizeof(*qs));
	const struct dp_engine_placer *ops = NULL;
	struct djg_dp_placer *placer = NULL;
	struct bench_result *res;
	int rc = qs != NULL ? djg_dp_placer_create(&pc, &placer) : -ENOMEM;

	if (qs != NULL)
		memset(qs, 0, nq * sizeof(*qs));
	if (rc == 0)
		ops = djg_dp_placer_ops(placer);
	for (unsigned int i = 0; i < nq && rc == 0; i++) {
		qs[i].x = (struct xfer){.o = o, .w = &wires[i], .mp = wires[i].mp,
					.placer = ops, .dest = dest, .src = src};
		if (prebuilt)
			rc = prebuilt_pool(&qs[i], i, nq, total, o->payload);
		if (rc == 0)
			rc = ops->lcore_init(ops->ctx, i, &qs[i].x.state);
	}
	if (rc == 0) {
		res = report_add(rep, "verify");
		snprintf(res->what, sizeof(res->what), "verify %zu B %s x%u%s", total,
			 mover == DJG_MOVER_COPY ? "copy chunks" :
			 djg_rx_path_name(dev_id == DJG_HOST ? DJG_RX_HOST : DJG_RX_STAGED), nq,
			 prebuilt ? " prebuilt" : "");
		rc = queues_check(qs, nq, pool, dest, src, back, total, res);
		queues_print(res);
	}
	/* The states let go of (unregister) the pools; the next row's placer
	 * registers them again, in its warm-up. */
	for (unsigned int i = 0; qs != NULL && i < nq; i++)
		if (qs[i].x.state != NULL)
			ops->lcore_fini(qs[i].x.state);
	djg_dp_placer_destroy(placer);
	for (unsigned int i = 0; qs != NULL && i < nq; i++) {
		rte_mempool_free(qs[i].pre_mp);
		free(qs[i].pre);
	}
	free(qs);
	return rc;
}

/* Every --verify-queues count at the largest --verify size, for each
 * mover asked for (the copy mover where a GPU is). */
static int verify_queues(const struct bench_opts *o, int16_t dev_id, struct djg_pool *pool,
			 struct bench_report *rep)
{
	size_t total = largest(o);
	uint8_t *src = malloc(total), *back = malloc(total);
	struct wire wires[MAX_QUEUES] = {0};
	unsigned int n_wires = 0, max_q = 0;
	void *dest = NULL;
	int rc = src && back ? djg_pool_alloc(pool, total, &dest) : -ENOMEM;
	int failed = 0;

	for (int i = 0; i < o->n_queues; i++)
		max_q = RTE_MAX(max_q, (unsigned int)o->queues[i]);
	/* One net_ring pair per queue, for every row: ports are few. */
	for (; rc == 0 && n_wires < max_q; n_wires++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "_q%u", n_wires);
		rc = wire_open(&wires[n_wires], o->payload, tag);
	}
	if (rc == 0)
		fill_pattern(src, total, o->seed + 1);
	for (int m = 0; rc == 0 && m < 2; m++) {
		if (!(o->movers & (1 << m)) || (m == 1 && dev_id == DJG_HOST))
			continue;
		for (int i = 0; rc == 0 && i < o->n_queues * (1 + o->prebuilt); i++) {
			int before = rep->n;

			rc = queues_row(o, dev_id, pool, wires, dest, src, back, total,
					(unsigned int)o->queues[i % o->n_queues],
					m == 1 ? DJG_MOVER_COPY : DJG_MOVER_GATHER,
					i >= o->n_queues, rep);
			failed += rep->n > before && !rep->r[rep->n - 1].ok;
		}
	}
	for (unsigned int i = 0; i < n_wires; i++)
		wire_close(&wires[i]);
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
	int rc = wire_open(&w, o->payload, "");

	if (rc == 0)
		rc = djg_pool_create(dev_id, largest(o), &pool);
	if (rc == 0)
		rc = verify_sizes(o, dev_id, &w, pool, rep);
	if (rc == 0 && o->n_queues > 0)
		rc = verify_queues(o, dev_id, pool, rep);
	if (rc != 0)
		fprintf(stderr, "bench-gpu: verify: %s\n", dj_strerror(rc));
	djg_pool_destroy(pool);
	wire_close(&w);
	return rc;
}
