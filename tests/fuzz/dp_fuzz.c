/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fuzzed data-plane channel and its driver loop (see dp_fuzz.h), shared
 * by the target and the seed generator.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_fuzz.h"

const uint64_t fz_dp_rx_len[FZ_DP_RX_IDS] = {1300, 0, 768};
const uint64_t fz_dp_tx_len = 700;

#define FZ_SESSION 0x5eedu
#define FZ_COOKIE 0x0123456789abcdefull

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_dp: invariant broken: %s\n", what);
		abort();
	}
}

static void set_addr(struct dp_netaddr *a, uint8_t last)
{
	memset(a, 0, sizeof(*a));
	a->mac[0] = 0x02;
	a->mac[5] = last;
	a->ipv4 = 0xc6120000u | last; /* 198.18.0.x */
	a->port = (uint16_t)(47000u + last);
}

void fz_dp_config(unsigned mode, bool peer_side, struct dp_channel_config *cfg)
{
	dp_channel_config_init(cfg);
	cfg->session_id = FZ_SESSION;
	cfg->cookie = FZ_COOKIE;
	cfg->frag_size = 256;
	cfg->encap = mode & FZ_DP_ENCAP;
	set_addr(peer_side ? &cfg->peer : &cfg->local, 2);
	set_addr(peer_side ? &cfg->local : &cfg->peer, 1);
	cfg->max_transfers = 4;
	cfg->window = 64;
	cfg->initial_credit = 4;
	cfg->ack_every = 2;
	cfg->ack_delay_ns = 2 * FZ_DP_TICK_NS;
	cfg->nack_threshold = 2;
	cfg->rto_init_ns = 16 * FZ_DP_TICK_NS;
	cfg->rto_min_ns = 4 * FZ_DP_TICK_NS;
	cfg->rto_max_ns = 64 * FZ_DP_TICK_NS;
	/* The liveness deadlines within a few records' time (a record
	 * advances at most 255 ticks), so that inputs reach the keep-alive,
	 * the dead peer and the stalled transfer. */
	cfg->keepalive_ns = 32 * FZ_DP_TICK_NS;
	cfg->dead_timeout_ns = 1024 * FZ_DP_TICK_NS;
	cfg->stall_timeout_ns = 4096 * FZ_DP_TICK_NS;
	/* Receive 1 (1300 bytes) goes through the streaming copy, 3 not. */
	cfg->stream_copy_min = 1024;
	cfg->rx_crc = peer_side || (mode & FZ_DP_RX_CRC);
	cfg->congestion_control = mode & FZ_DP_CC;
}

/* GPU stand-in: the destination is host memory, but only this callback
 * writes it, and it must stay inside the posted receive. */
static void place(void *ctx, void *user, void *dest, uint64_t off, const void *src,
		  uint32_t len)
{
	uintptr_t i = (uintptr_t)user;

	(void)ctx;
	check(i < FZ_DP_RX_IDS, "place: unknown transfer");
	check(off <= fz_dp_rx_len[i] && len <= fz_dp_rx_len[i] - off,
	      "place: write outside the posted receive");
	memcpy((uint8_t *)dest + off, src, len);
}

int fz_dp_open(struct fz_dp *f, unsigned mode)
{
	struct dp_channel_config cfg;
	enum dj_mem_kind mem = mode & FZ_DP_GPU ? DJ_MEM_GPU : DJ_MEM_HOST;
	int rc;

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	fz_dp_config(mode, false, &cfg);
	cfg.place = place;
	cfg.place_ctx = f;
	rc = dp_channel_create(&cfg, &f->ch);
	if (rc != 0)
		return rc;
	for (int i = 0; i < FZ_DP_RX_IDS; i++) {
		/* Exactly the posted size (1 for 0 bytes): a write past it is
		 * an ASan report. */
		f->rx_buf[i] = malloc(fz_dp_rx_len[i] ? fz_dp_rx_len[i] : 1);
		if (f->rx_buf[i] == NULL)
			return -ENOMEM;
		rc = dp_channel_recv(f->ch, (uint64_t)i + 1, f->rx_buf[i], fz_dp_rx_len[i], mem,
				     (void *)(uintptr_t)i, 0);
		if (rc != 0)
			return rc;
	}
	f->tx_buf = malloc(fz_dp_tx_len);
	if (f->tx_buf == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < fz_dp_tx_len; i++)
		f->tx_buf[i] = (uint8_t)(i * 7 + 1);
	return dp_channel_send(f->ch, 1, f->tx_buf, fz_dp_tx_len, DJ_MEM_HOST,
			       (void *)(uintptr_t)FZ_DP_RX_IDS, 0);
}

void fz_dp_close(struct fz_dp *f)
{
	dp_channel_destroy(f->ch);
	for (int i = 0; i < FZ_DP_RX_IDS; i++)
		free(f->rx_buf[i]);
	free(f->tx_buf);
	f->ch = NULL;
}

/* Recompute the CRC of a Djinn header at p (avail bytes, body after it). */
static void fix_crc(uint8_t *p, size_t avail)
{
	struct dp_wire_hdr h;

	if (dp_wire_hdr_decode(p, avail, true, &h) != DP_REJ_NONE ||
	    !(h.flags & (DP_WIRE_F_CRC | DP_WIRE_F_CRC_HDR)))
		return;
	dp_wire_hdr_set_crc(p, dp_wire_crc(p, h.hdr_len, p + h.hdr_len, h.payload_len,
					   h.flags & DP_WIRE_F_CRC));
}

int fz_dp_deliver(struct dp_channel *ch, unsigned mode, uint8_t *frame, size_t len,
		  uint64_t now)
{
	struct dp_rx_pkt pkt = {.hdr = frame, .hdr_avail = (uint32_t)len};
	struct dp_wire_encap e;
	struct dp_wire_hdr h;
	uint8_t *body = NULL;
	int rc;

	if (mode & FZ_DP_ENCAP) {
		if (dp_wire_encap_parse(frame, len, true, &e) != DP_REJ_NONE)
			return -EBADMSG;
		check(e.payload_off <= len && e.payload_len <= len - e.payload_off,
		      "encap: payload outside the frame");
		pkt.hdr = frame + e.payload_off;
		pkt.hdr_avail = e.payload_len;
	}
	if (mode & FZ_DP_FIX_CRC)
		fix_crc((uint8_t *)pkt.hdr, pkt.hdr_avail);
	if ((mode & FZ_DP_SPLIT) &&
	    dp_wire_hdr_decode(pkt.hdr, pkt.hdr_avail, false, &h) == DP_REJ_NONE) {
		/* The body in its own buffer of exactly the bytes that follow. */
		size_t n = pkt.hdr_avail - h.hdr_len;

		body = malloc(n ? n : 1);
		if (body == NULL)
			return -ENOMEM;
		memcpy(body, (const uint8_t *)pkt.hdr + h.hdr_len, n);
		pkt.payload = body;
		pkt.payload_avail = (uint32_t)n;
		pkt.hdr_avail = h.hdr_len;
	}
	rc = dp_channel_input(ch, &pkt, now, NULL);
	free(body);
	return rc;
}

void fz_dp_drain(struct dp_channel *ch, uint64_t now, uint8_t ctrl[][DP_WIRE_CTRL_MAX],
		 uint8_t *frame, fz_dp_out_fn out, void *ctx)
{
	struct dp_ctrl_pkt pkts[8];
	struct dp_frag_desc d[16];
	unsigned n;

	for (unsigned i = 0; i < 8; i++)
		pkts[i] = (struct dp_ctrl_pkt){.buf = ctrl[i], .cap = DP_WIRE_CTRL_MAX};
	do {
		n = dp_channel_ctrl_burst(ch, now, pkts, 8);
		for (unsigned i = 0; i < n; i++) {
			check(pkts[i].len <= pkts[i].cap, "control packet overflows its buffer");
			if (out != NULL)
				out(ctx, pkts[i].buf, pkts[i].len);
		}
	} while (n == 8);
	do {
		n = dp_channel_tx_burst(ch, now, d, 16);
		for (unsigned i = 0; i < n; i++) {
			check(d[i].hdr_len + d[i].payload_len <= FZ_DP_MAX_FRAME,
			      "DATA fragment larger than the frame size");
			if (out == NULL)
				continue;
			memcpy(frame, d[i].hdr, d[i].hdr_len);
			if (d[i].payload_len)
				memcpy(frame + d[i].hdr_len, d[i].payload, d[i].payload_len);
			out(ctx, frame, d[i].hdr_len + d[i].payload_len);
		}
	} while (n == 16);
}

static void take_events(struct fz_dp *f)
{
	struct dp_xfer_event ev[8];
	unsigned n;

	while ((n = dp_channel_events(f->ch, ev, 8)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			unsigned bit;

			if (ev[i].dir == DP_XFER_RX) {
				check(ev[i].transfer_id >= 1 && ev[i].transfer_id <= FZ_DP_RX_IDS,
				      "event of a receive never posted");
				check(ev[i].bytes == fz_dp_rx_len[ev[i].transfer_id - 1],
				      "receive event with the wrong length");
				bit = ev[i].transfer_id;
			} else {
				check(ev[i].transfer_id == 1, "event of a send never started");
				check(ev[i].bytes == fz_dp_tx_len, "send event with the wrong length");
				bit = 8;
			}
			check(!(f->events_seen & (1u << bit)), "transfer reported twice");
			f->events_seen |= 1u << bit;
		}
	}
}

void fz_dp_record(struct fz_dp *f, unsigned dt, const uint8_t *frame, size_t len,
		  fz_dp_out_fn out, void *ctx)
{
	f->now += dt * FZ_DP_TICK_NS;
	if (len > 0) {
		uint8_t *copy = malloc(len);

		if (copy == NULL)
			return;
		memcpy(copy, frame, len);
		fz_dp_deliver(f->ch, f->mode, copy, len, f->now);
		free(copy);
	}
	dp_channel_poll(f->ch, f->now);
	fz_dp_drain(f->ch, f->now, f->ctrl, f->frame, out, ctx);
	take_events(f);
}
