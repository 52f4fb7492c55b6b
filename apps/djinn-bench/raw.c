/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tx / rx: the raw fragment rate of a port, below the transfer protocol.
 * tx sends DATA frames (headers in a small mbuf, payload attached zero-copy
 * from one buffer) as fast as the port takes them; rx receives, checks the
 * encapsulation and counts. Runs on the main lcore.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "bench.h"

#define RAW_BURST 32
#define RAW_BUF (64u << 20)
#define RX_IDLE_NS (2ull * 1000 * 1000 * 1000)

static void extbuf_noop_free(void *addr, void *opaque)
{
	(void)addr;
	(void)opaque;
}

static int raw_port_open(const struct bench_opts *o, struct dp_port **port)
{
	struct dp_port_config cfg = {.frame_size = o->frame_size, .promiscuous = 1};
	int rc;

	if (o->port_name != NULL) {
		rc = dp_port_find(o->port_name, &cfg.port_id);
		if (rc != 0)
			return rc;
	} else if (rte_eth_dev_count_avail() == 0) {
		return -ENODEV;
	} else {
		RTE_ETH_FOREACH_DEV(cfg.port_id)
			break;
	}
	rc = dp_port_create(&cfg, port);
	if (rc == 0 && dp_port_wait_link(*port, 30ull * 1000 * 1000 * 1000, true) != 0)
		djc_log(DJ_LOG_WARN, "bench", "link down; sending anyway");
	return rc;
}

static void header_template(const struct bench_opts *o, uint8_t *hdr)
{
	struct dp_wire_hdr h = {
		.magic = DP_WIRE_MAGIC, .version = DP_WIRE_VERSION, .type = DP_PKT_DATA,
		.hdr_len = DP_WIRE_HDR_LEN, .session_id = (uint32_t)o->session_id,
		.payload_len = o->payload, .cookie = o->cookie,
		.total_len = o->payload,
	};

	dp_wire_encap_build(hdr, &o->local, &o->peer, DP_WIRE_HDR_LEN + o->payload, 0);
	dp_wire_hdr_encode(&h, hdr + DP_WIRE_ENCAP_LEN);
}

static void rate_fill(const struct bench_opts *o, struct bench_result *r, uint64_t pkts,
		      uint64_t ns)
{
	double s = ns / 1e9;

	r->packets = pkts;
	r->mpps = s > 0 ? pkts / s / 1e6 : 0;
	r->gbps_payload = s > 0 ? pkts * (double)o->payload * 8 / s / 1e9 : 0;
	/* + Ethernet preamble, FCS and gap: 24 bytes a frame. */
	r->gbps_wire = s > 0 ? pkts * (double)(o->payload + DP_WIRE_FULL_HDR_LEN + 24) * 8 / s / 1e9 : 0;
}

static int raw_tx(const struct bench_opts *o, struct dp_port *port, struct bench_result *r)
{
	struct rte_mbuf_ext_shared_info shinfo = {.free_cb = extbuf_noop_free};
	uint16_t port_id = dp_port_get_config(port)->port_id;
	uint8_t hdr[DP_WIRE_FULL_HDR_LEN];
	struct rte_mbuf *burst[RAW_BURST];
	uint64_t pkts = 0, off = 0, t0, end;
	uint8_t *buf = bench_alloc(RAW_BUF);

	if (buf == NULL)
		return -ENOMEM;
	header_template(o, hdr);
	/* The buffer outlives every frame: one reference that never drops. */
	rte_mbuf_ext_refcnt_set(&shinfo, 1);
	t0 = djc_time_ns();
	end = t0 + (uint64_t)(o->duration_s * 1e9);
	while (djc_time_ns() < end) {
		uint16_t n = 0, sent = 0;

		for (; n < RAW_BURST; n++, off = (off + o->payload) % (RAW_BUF - o->payload)) {
			burst[n] = dp_port_frame_build(port, 0, hdr, sizeof(hdr), buf + off,
						       o->payload, &shinfo);
			if (burst[n] == NULL)
				break;
		}
		while (sent < n && djc_time_ns() < end)
			sent += rte_eth_tx_burst(port_id, 0, burst + sent, n - sent);
		rte_pktmbuf_free_bulk(burst + sent, n - sent);
		pkts += sent;
	}
	rate_fill(o, r, pkts, djc_time_ns() - t0);
	bench_free(buf, RAW_BUF);
	return 0;
}

static int raw_rx(const struct bench_opts *o, struct dp_port *port, struct bench_result *r)
{
	uint16_t port_id = dp_port_get_config(port)->port_id;
	struct rte_mbuf *burst[RAW_BURST];
	uint64_t pkts = 0, bad = 0, first = 0, last = 0;
	uint64_t give_up = djc_time_ns() + 30ull * 1000 * 1000 * 1000;
	uint64_t end = djc_time_ns() + (uint64_t)(o->duration_s * 1e9) + RX_IDLE_NS;

	for (;;) {
		uint16_t n = rte_eth_rx_burst(port_id, 0, burst, RAW_BURST);
		uint64_t now = djc_time_ns();

		for (uint16_t i = 0; i < n; i++) {
			struct dp_wire_encap e;

			bad += dp_wire_encap_parse(rte_pktmbuf_mtod(burst[i], void *),
						   burst[i]->data_len, false, &e) != DP_REJ_NONE;
		}
		rte_pktmbuf_free_bulk(burst, n);
		if (n != 0) {
			first = first ? first : now;
			last = now;
			pkts += n;
		} else if ((first && now - last > RX_IDLE_NS) || (!first && now > give_up)) {
			break;
		}
		if (now > end)
			break;
	}
	rate_fill(o, r, pkts, last - first);
	if (bad != 0)
		fprintf(stderr, "djinn-bench: %lu frames failed the encapsulation check\n",
			(unsigned long)bad);
	r->errors += pkts == 0 || bad != 0;
	return 0;
}

int bench_raw(const struct bench_opts *o, struct bench_result *r)
{
	struct dp_port *port;
	int rc;

	if (o->payload + DP_WIRE_FULL_HDR_LEN > o->frame_size || o->payload == 0)
		return -EINVAL;
	rc = raw_port_open(o, &port);
	if (rc != 0)
		return rc;
	r->mode = o->mode == MODE_TX ? "tx" : "rx";
	rc = o->mode == MODE_TX ? raw_tx(o, port, r) : raw_rx(o, port, r);
	dp_port_destroy(port);
	return rc;
}
