/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * transfer and pingpong: whole transfers through the engine. The receiver
 * arms each transfer, then tells the sender "ready" with a 1-byte transfer
 * the other way, so the sender's clock measures the transfer alone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "bench.h"

#define LINK_WAIT_MS 30000u
/* The peer process may start later: retry the first exchange this long. */
#define FIRST_CONTACT_NS (30ull * 1000 * 1000 * 1000)

static int port_pick(const struct bench_opts *o, uint16_t *port_id)
{
	if (o->port_name != NULL)
		return dp_port_find(o->port_name, port_id);
	RTE_ETH_FOREACH_DEV(*port_id)
		return 0;
	return -ENODEV;
}

static void peer_dp_endpoint(const struct bench_opts *o, struct dp_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	memcpy(ep->mac, o->peer.mac, sizeof(ep->mac));
	ep->ipv4 = __builtin_bswap32(o->peer.ipv4);
	ep->udp_port = o->peer.port;
	ep->n_queues = o->queues;
	ep->mtu = (uint16_t)(o->frame_size - 14);
}

int bench_engine_create(const struct bench_opts *o, struct dp_engine **dp)
{
	struct dp_engine_config cfg = {0};
	int rc = port_pick(o, &cfg.port.port_id);

	if (rc != 0)
		return rc;
	cfg.port.nb_queues = o->queues;
	cfg.port.frame_size = o->frame_size;
	cfg.port.promiscuous = 1;
	cfg.local = o->local;
	cfg.impair = o->impair;
	cfg.idle_sleep_us = o->idle_sleep_us;
	cfg.idle = o->idle;
	cfg.caller_runs = o->caller_runs;
	dp_channel_config_init(&cfg.session);
	cfg.session.tx_crc = o->crc;
	cfg.session.rx_crc = o->crc;
	if (o->initial_credit != 0)
		cfg.session.initial_credit = o->initial_credit;
	cfg.session_set = true;
	cfg.link_timeout_ms = LINK_WAIT_MS;
	return dp_engine_create(&cfg, dp);
}

int bench_engine_start(const struct bench_opts *o, struct dp_engine **dp)
{
	struct dp_endpoint peer;
	int rc = bench_engine_create(o, dp);

	if (rc != 0)
		return rc;
	peer_dp_endpoint(o, &peer);
	/* One session per stripe: session i goes to queue (id + i) % queues
	 * on both sides, cookie + i names it. */
	for (unsigned int i = 0; rc == 0 && i < o->stripes; i++)
		rc = dp_engine_session_open(*dp, o->session_id + i, o->cookie + i, &peer);
	if (rc != 0) {
		dp_engine_destroy(*dp);
		*dp = NULL;
	}
	return rc;
}

void bench_engine_stop(struct dp_engine *dp, struct bench_result *r)
{
	if (dp == NULL)
		return;
	/* Our last ACK leaves, then both sides stop polling before either
	 * port (memif) disconnects. */
	usleep(200000);
	dp_engine_quiesce(dp);
	usleep(300000);
	dp_engine_get_stats(dp, &r->dp, &r->proto);
	r->have_engine_stats = true;
	for (r->n_queues = 0; r->n_queues < BENCH_MAX_STRIPES; r->n_queues++) {
		struct dp_engine_stats q;

		if (dp_engine_lcore_stats(dp, r->n_queues, &q) != 0)
			break;
		r->queue_rx[r->n_queues] = q.rx_packets;
		r->queue_tx[r->n_queues] = q.tx_packets;
	}
	dp_engine_destroy(dp);
}

/* Where the sender's 1-byte "ready" transfers land (two armed at a time). */
static uint8_t ready_slots[2];

/* A send that tolerates a peer not listening yet (first contact). */
static int send_patiently(struct dp_engine *dp, const struct bench_opts *o, uint32_t id,
			  const void *buf, uint64_t len)
{
	uint64_t deadline = djc_time_ns() + FIRST_CONTACT_NS;
	int rc;

	do {
		rc = dp_engine_send(dp, o->cookie, id, buf, len, DJ_MEM_HOST, o->timeout_ms);
	} while (rc == -ETIMEDOUT && djc_time_ns() < deadline);
	return rc;
}

/* Receiver of one size: arm, say ready, wait, check. */
static int recv_size(struct dp_engine *dp, const struct bench_opts *o, uint64_t size,
		     unsigned int iters, uint32_t *id, uint8_t *buf)
{
	static const uint8_t ready = 1;
	int rc = 0;

	for (unsigned int i = 0; i < iters && rc == 0; i++, (*id)++) {
		memset(buf, 0, size < 4096 ? size : 4096);
		for (unsigned int k = 0; k < o->stripes && rc == 0; k++) {
			uint64_t off, len;

			bench_part(size, o->stripes, k, &off, &len);
			if (len != 0)
				rc = dp_engine_expect(dp, o->cookie + k, *id, buf + off, len,
						      DJ_MEM_HOST);
		}
		if (rc == 0)
			rc = send_patiently(dp, o, *id, &ready, 1);
		for (unsigned int k = 0; k < o->stripes && rc == 0; k++) {
			uint64_t off, len;

			bench_part(size, o->stripes, k, &off, &len);
			if (len != 0)
				rc = dp_engine_wait(dp, o->cookie + k, *id, o->timeout_ms);
		}
		for (unsigned int k = 0; k < o->stripes && rc != 0; k++)
			dp_engine_cancel(dp, o->cookie + k, *id);
		if (rc == 0 && o->verify && (i == 0 || i + 1 == iters) &&
		    !bench_pattern_check(buf, size, size)) {
			fprintf(stderr, "djinn-bench: transfer %u (%lu B): bytes differ\n", *id,
				(unsigned long)size);
			rc = -EIO;
		}
	}
	return rc;
}

/* Sender of one size: wait for ready, time the send. The next ready is
 * armed before this send so that it never arrives unexpected. */
static int send_size(struct dp_engine *dp, const struct bench_opts *o, uint64_t size,
		     unsigned int iters, uint32_t *id, const uint8_t *buf, uint64_t *ns)
{
	struct dp_send_part parts[BENCH_MAX_STRIPES];
	unsigned int n = 0;
	int rc = 0;

	/* One part per stripe (session), all posted at once by the engine. */
	for (unsigned int k = 0; k < o->stripes; k++) {
		uint64_t off, len;

		bench_part(size, o->stripes, k, &off, &len);
		if (len != 0)
			parts[n++] = (struct dp_send_part){o->cookie + k, buf + off, len};
	}

	for (unsigned int i = 0; i < iters && rc == 0; i++, (*id)++) {
		uint32_t wait_ms = *id == 0 ? (uint32_t)(FIRST_CONTACT_NS / 1000000) : o->timeout_ms;
		uint64_t t0;

		rc = dp_engine_wait(dp, o->cookie, *id, wait_ms);
		if (rc == 0)
			rc = dp_engine_expect(dp, o->cookie, *id + 1, &ready_slots[(*id + 1) % 2], 1,
						 DJ_MEM_HOST);
		t0 = djc_time_ns();
		if (rc == 0)
			rc = dp_engine_send_parts(dp, parts, n, *id, o->timeout_ms);
		ns[i] = djc_time_ns() - t0;
	}
	return rc;
}

int bench_transfer(const struct bench_opts *o, struct bench_result *r)
{
	struct dp_engine *dp = NULL;
	uint64_t max = 0;
	uint32_t id = 0;
	uint8_t *buf;
	int rc;

	for (unsigned int s = 0; s < o->n_sizes; s++)
		max = o->sizes[s] > max ? o->sizes[s] : max;
	buf = bench_alloc(max);
	if (buf == NULL)
		return -ENOMEM;
	rc = bench_engine_start(o, &dp);
	r->mode = "transfer";
	if (rc == 0 && o->role == ROLE_SEND)
		rc = dp_engine_expect(dp, o->cookie, 0, &ready_slots[0], 1, DJ_MEM_HOST);
	for (unsigned int s = 0; rc == 0 && s < o->n_sizes; s++) {
		uint64_t size = o->sizes[s];
		unsigned int iters = o->iters ? o->iters : bench_auto_iters(size);
		uint64_t *ns = calloc(iters, sizeof(*ns));

		if (ns == NULL) {
			rc = -ENOMEM;
			break;
		}
		if (o->role == ROLE_SEND) {
			bench_pattern_fill(buf, size, size);
			rc = send_size(dp, o, size, iters, &id, buf, ns);
			if (rc == 0)
				bench_row_fill(&r->rows[r->n_rows++], size, iters, ns);
		} else {
			rc = recv_size(dp, o, size, iters, &id, buf);
			if (rc == 0)
				r->rows[r->n_rows++] = (struct bench_row){.size = size, .iters = iters};
		}
		free(ns);
	}
	if (rc != 0)
		r->errors++;
	if (dp != NULL && o->role == ROLE_SEND)
		dp_engine_cancel(dp, o->cookie, id);
	bench_engine_stop(dp, r);
	bench_free(buf, max);
	return rc;
}

static int pingpong_loop(struct dp_engine *dp, const struct bench_opts *o, uint8_t *tx,
			 uint8_t *rx, uint64_t size, uint64_t *ns)
{
	int rc = 0;

	for (uint32_t id = 0; id < o->count && rc == 0; id++) {
		uint64_t t0 = djc_time_ns();

		if (o->role == ROLE_SEND) {
			rc = dp_engine_expect(dp, o->cookie, id, rx, size, DJ_MEM_HOST);
			if (rc == 0)
				rc = id == 0 ? send_patiently(dp, o, id, tx, size) :
				     dp_engine_send(dp, o->cookie, id, tx, size, DJ_MEM_HOST,
						       o->timeout_ms);
			if (rc == 0)
				rc = dp_engine_wait(dp, o->cookie, id, o->timeout_ms);
			ns[id] = djc_time_ns() - t0;
		} else {
			rc = dp_engine_wait(dp, o->cookie, id,
					       id == 0 ? (uint32_t)(FIRST_CONTACT_NS / 1000000) : o->timeout_ms);
			if (rc == 0 && id + 1 < o->count)
				rc = dp_engine_expect(dp, o->cookie, id + 1, rx, size, DJ_MEM_HOST);
			if (rc == 0)
				rc = dp_engine_send(dp, o->cookie, id, tx, size, DJ_MEM_HOST,
						       o->timeout_ms);
		}
	}
	return rc;
}

int bench_pingpong(const struct bench_opts *o, struct bench_result *r)
{
	uint64_t size = o->sizes[0] > 65536 ? 65536 : o->sizes[0];
	uint64_t *ns = calloc(o->count ? o->count : 1, sizeof(*ns));
	uint8_t *tx = calloc(2, size + 1), *rx = tx ? tx + size + 1 : NULL;
	struct dp_engine *dp = NULL;
	int rc = ns && tx ? bench_engine_start(o, &dp) : -ENOMEM;

	r->mode = "pingpong";
	if (rc == 0 && o->role == ROLE_RECV)
		rc = dp_engine_expect(dp, o->cookie, 0, rx, size, DJ_MEM_HOST);
	if (rc == 0)
		rc = pingpong_loop(dp, o, tx, rx, size, ns);
	if (rc == 0 && o->role == ROLE_SEND) {
		bench_row_fill(&r->rows[0], size, o->count, ns);
		r->n_rows = 1;
	}
	if (rc != 0)
		r->errors++;
	bench_engine_stop(dp, r);
	free(ns);
	free(tx);
	return rc;
}
