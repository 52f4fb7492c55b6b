/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The polling loop: one per queue pair, owning its sessions. No locks, no
 * allocation, no system calls here (but the opt-in idle naps and sleeps of
 * idle.c, and a futex wake per finished operation while a control thread
 * sleeps on one):
 * commands arrive through a ring, frames through rte_eth_rx_burst, and
 * results leave through atomics.
 */
#include <errno.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "engine.h"
#include "txframe.h"

#define EVENT_BURST 16
/* frame_input(): the frame went to another lcore; other results are -1
 * (used) or an enum dp_drop. */
#define FRAME_KEPT (-2)

void dp_op_complete(struct dp_op *op, int status)
{
	op->status = status;
	dp_flag_raise(&op->done);
}

static void send_op_finish(struct dp_op *op, int status)
{
	op->status = status;
	dp_flag_raise(&op->done);
	/* Last touch: frees op->shinfo's owner reference; the free callback
	 * (now or when the last mbuf goes) sets op->released. */
	dp_txframe_owner_put(&op->shinfo);
}

void dp_event_deliver(const struct dp_xfer_event *ev)
{
	dp_op_trace(ev->user, DP_TR_DONE);
	if (ev->dir == DP_XFER_TX)
		send_op_finish(ev->user, ev->status);
	else
		dp_op_complete(ev->user, ev->status);
}

/* ---- transmit -------------------------------------------------------------- */

#ifdef DJ_DP_TRACE
/* The frame just queued at txq[n_txq - 1] is the first or the last DATA
 * frame of its transfer: stamp it when rte_eth_tx_burst() takes it. */
static void trace_tx_queued(struct dp_lcore *lc, const struct dp_frag_desc *d,
			    const struct dp_op *op)
{
	enum dp_trace_ev evs[2];
	unsigned int n = 0;

	if (!dp_trace_on || d->retransmit || lc->n_txq == 0)
		return;
	if (d->offset == 0)
		evs[n++] = DP_TR_TX_FIRST;
	if (d->offset + d->payload_len >= op->len)
		evs[n++] = DP_TR_TX_LAST;
	for (unsigned int i = 0; i < n; i++) {
		if (lc->n_trace_pend == RTE_DIM(lc->trace_pend)) {
			dp_op_trace(op, evs[i]);
			continue;
		}
		lc->trace_pend[lc->n_trace_pend++] = (struct dp_trace_pending){
			.cookie = op->cookie, .id = op->xfer_id, .len = op->len,
			.pos = lc->n_txq - 1, .ev = evs[i],
		};
	}
}

/* The time before rte_eth_tx_burst(), read only while frames wait for a
 * stamp: the frames were handed to the driver then (on 2 shared CPUs the
 * driver's wake-up of the peer may preempt us before the call returns). */
static uint64_t trace_tx_t0(const struct dp_lcore *lc)
{
	return lc->n_trace_pend != 0 ? djc_time_ns() : 0;
}

/* rte_eth_tx_burst(), called at t0, took the first sent frames of txq (all
 * of them when the queue was dropped, t0 0: now): stamp those pending,
 * move the others up. */
static void trace_tx_sent(struct dp_lcore *lc, unsigned int sent, uint64_t t0)
{
	uint64_t now = t0;
	unsigned int k = 0;

	for (unsigned int i = 0; i < lc->n_trace_pend; i++) {
		struct dp_trace_pending *p = &lc->trace_pend[i];

		if (p->pos >= sent) {
			p->pos -= sent;
			lc->trace_pend[k++] = *p;
			continue;
		}
		now = now != 0 ? now : djc_time_ns();
		DP_TRACE_AT(p->ev, p->cookie, p->id, DP_XFER_TX, p->len, now);
	}
	lc->n_trace_pend = k;
}
#define TRACE_TX_QUEUED(lc, d, op) trace_tx_queued((lc), (d), (op))
#define TRACE_TX_T0(lc) trace_tx_t0(lc)
#define TRACE_TX_SENT(lc, sent, t0) trace_tx_sent((lc), (sent), (t0))
#else
#define TRACE_TX_QUEUED(lc, d, op) ((void)0)
#define TRACE_TX_T0(lc) 0
#define TRACE_TX_SENT(lc, sent, t0) ((void)(t0))
#endif

/* A link that takes nothing for DP_TX_STALL_NS (peer gone, memif
 * disconnected) loses the queued frames: they would otherwise pin the
 * senders' buffers. The protocol retransmits what mattered. */
static void tx_stall_check(struct dp_lcore *lc, uint16_t sent, uint64_t now)
{
	if (sent != 0 || lc->n_txq == 0) {
		lc->tx_stall_since = 0;
		return;
	}
	if (lc->tx_stall_since == 0) {
		lc->tx_stall_since = now;
		return;
	}
	if (now - lc->tx_stall_since < DP_TX_STALL_NS)
		return;
	lc->stats.drops[DP_DROP_TX_FULL] += lc->n_txq;
	TRACE_TX_SENT(lc, lc->n_txq, 0);
	rte_pktmbuf_free_bulk(lc->txq, lc->n_txq);
	lc->n_txq = 0;
	lc->tx_stall_since = 0;
}

/* One rte_eth_tx_burst() of at most want frames from txq[from]. Returns
 * how many it took (the trace's pending stamps count from txq[from]). */
static uint16_t tx_chunk_send(struct dp_lcore *lc, uint16_t from, uint16_t want)
{
	uint64_t t0 = TRACE_TX_T0(lc);
	uint16_t sent = rte_eth_tx_burst(lc->dp->cfg.port.port_id, lc->queue, lc->txq + from,
					 want);

	for (uint16_t i = 0; i < sent; i++)
		lc->stats.tx_bytes += lc->txq[from + i]->pkt_len;
	lc->stats.tx_packets += sent;
	if (sent != 0)
		TRACE_TX_SENT(lc, sent, t0);
	return sent;
}

/* Everything queued, in chunks of tx_chunk frames (memif shows the peer
 * each chunk once it is in the ring), until the ring takes no more; what
 * is left moves to the head of txq once. */
static void tx_flush(struct dp_lcore *lc, uint64_t now)
{
	uint16_t sent = 0, n, want;

	if (lc->n_txq == 0)
		return;
	do {
		want = (uint16_t)RTE_MIN(lc->n_txq - sent, lc->tx_chunk);
		n = tx_chunk_send(lc, sent, want);
		sent += n;
	} while (n == want && n != 0 && sent < lc->n_txq);
	lc->n_txq -= sent;
	if (lc->n_txq != 0 && sent != 0)
		memmove(lc->txq, lc->txq + sent, lc->n_txq * sizeof(lc->txq[0]));
	tx_stall_check(lc, sent, now);
}

static void txq_push(struct dp_lcore *lc, struct rte_mbuf *m)
{
	if (unlikely(lc->n_txq == DP_TXQ_MAX)) {
		tx_flush(lc, lc->now);
		if (lc->n_txq == DP_TXQ_MAX) {
			lc->stats.drops[DP_DROP_TX_FULL]++;
			rte_pktmbuf_free(m);
			return;
		}
	}
	lc->txq[lc->n_txq++] = m;
}

/* In-line impairment of an outgoing frame. The payload segment may be the
 * caller's tensor, so corruption stays within the header mbuf. */
static void impaired_push(struct dp_lcore *lc, struct rte_mbuf *m, uint64_t now)
{
	struct dp_impair_verdict v;
	struct rte_mbuf *copy = NULL;

	dp_impair_decide(lc->impair, now, m->pkt_len, &v);
	if (v.actions & DP_IMPAIR_DROP) {
		lc->stats.drops[DP_DROP_IMPAIR]++;
		rte_pktmbuf_free(m);
		return;
	}
	if (v.actions & DP_IMPAIR_CORRUPT) {
		v.corrupt_off %= m->data_len;
		dp_impair_corrupt(&v, rte_pktmbuf_mtod(m, void *), m->data_len);
	}
	if (v.actions & DP_IMPAIR_DUP)
		copy = rte_pktmbuf_clone(m, lc->dp->port->q[lc->queue].ext_pool);
	for (int i = 0; i < 2; i++, m = copy) {
		if (m == NULL)
			continue;
		if ((v.actions & DP_IMPAIR_HOLD) && dp_hold_queue_push(lc->hold, m, v.release_ns) == 0)
			continue;
		txq_push(lc, m);
	}
}

static void frame_push(struct dp_lcore *lc, struct rte_mbuf *m, uint64_t now)
{
	/* The wire helpers wrote the IPv4 checksum; a NIC that can does it
	 * instead (the header is rewritten per frame anyway). */
	if (lc->tx_ip_cksum_offload)
		dp_txframe_ip_cksum_offload(m);
	if (lc->impair != NULL)
		impaired_push(lc, m, now);
	else
		txq_push(lc, m);
}

static void held_release(struct dp_lcore *lc, uint64_t now)
{
	void *due[DP_PORT_BURST];
	unsigned int n;

	if (lc->hold == NULL || dp_hold_queue_next(lc->hold) > now)
		return;
	n = dp_hold_queue_pop_due(lc->hold, now, due, DP_PORT_BURST);
	for (unsigned int i = 0; i < n; i++)
		txq_push(lc, due[i]);
}

static void data_send(struct dp_lcore *lc, struct dp_session *ses, uint64_t now)
{
	struct dp_frag_desc d[DP_PORT_BURST];
	const struct dp_port *port = lc->dp->port;
	unsigned int n;

	/* Back-pressure: pull fragments only when the tx ring took the last
	 * ones, so none is counted as sent and then dropped here. */
	if (lc->n_txq >= DP_PORT_BURST)
		return;
	n = dp_channel_tx_burst(ses->s, now, d, DP_PORT_BURST);
	for (unsigned int i = 0; i < n; i++) {
		struct dp_op *op = d[i].user;
		unsigned int flags = (port->caps.tx_extbuf ? DP_TXFRAME_CHAIN : 0) |
				     (d[i].mem == DJ_MEM_GPU ? DP_TXFRAME_NO_CPU : 0);
		/* A staged GPU source: the frame holds its ring slot. */
		struct rte_mbuf_ext_shared_info *owner =
			op->stage != NULL ? dp_stage_shinfo(op->stage, d[i].offset) : &op->shinfo;
		struct rte_mbuf *m;

		m = dp_txframe_build(&port->q[lc->queue], flags, d[i].hdr,
				     (uint16_t)d[i].hdr_len, d[i].payload, d[i].payload_len, owner);
		if (unlikely(m == NULL)) {
			/* The protocol retransmits it after its timeout. */
			lc->stats.drops[DP_DROP_NO_MBUF]++;
			continue;
		}
		lc->stats.retransmits += d[i].retransmit;
		frame_push(lc, m, now);
		TRACE_TX_QUEUED(lc, &d[i], op);
	}
}

static void ctrl_send(struct dp_lcore *lc, struct dp_session *ses, uint64_t now)
{
	struct dp_ctrl_pkt pkts[DP_CTRL_BURST];
	const struct dp_port *port = lc->dp->port;
	unsigned int n;

	for (unsigned int i = 0; i < DP_CTRL_BURST; i++)
		pkts[i] = (struct dp_ctrl_pkt){.buf = lc->ctrl_buf[i], .cap = DP_WIRE_CTRL_MAX};
	n = dp_channel_ctrl_burst(ses->s, now, pkts, DP_CTRL_BURST);
	for (unsigned int i = 0; i < n; i++) {
		struct rte_mbuf *m = dp_txframe_build(&port->q[lc->queue], 0, pkts[i].buf,
						      (uint16_t)pkts[i].len, NULL, 0, NULL);

		if (unlikely(m == NULL)) {
			lc->stats.drops[DP_DROP_NO_MBUF]++;
			continue;
		}
		frame_push(lc, m, now);
	}
}

/* ---- sessions -------------------------------------------------------------- */

/* A completed GPU receive is reported only once its copies are done. */
static void placer_sync(struct dp_lcore *lc)
{
	int rc;

	if (!lc->placer_pending)
		return;
	lc->placer_pending = false;
	lc->placer_open = false; /* sync() starts the batch's copies too */
	rc = lc->dp->cfg.placer->sync(lc->placer_state);
	if (rc != 0)
		DJC_LOG(DJ_LOG_ERR, "dataplane", "GPU placement sync: %s", dj_strerror(rc));
}

static void events_deliver(struct dp_lcore *lc, struct dp_session *ses)
{
	struct dp_xfer_event ev[EVENT_BURST];
	unsigned int n;

	while ((n = dp_channel_events(ses->s, ev, EVENT_BURST)) != 0) {
		placer_sync(lc);
		for (unsigned int i = 0; i < n; i++) {
			if (ev[i].dir == DP_XFER_TX && lc->sends_inflight != 0)
				lc->sends_inflight--;
			dp_event_deliver(&ev[i]);
		}
	}
}

/* Refresh the session's protocol counters and publish them for
 * dp_engine_get_stats(). */
static void session_snap(struct dp_session *ses)
{
	dp_channel_stats(ses->s, &ses->snap);
	dp_seq_publish(&ses->snap_seq, &ses->snap_pub, &ses->snap, sizeof(ses->snap));
}

static void probe_check(struct dp_session *ses, uint64_t now)
{
	if (ses->ping == NULL)
		return;
	if (ses->snap.pongs != ses->pongs_before) {
		ses->ping->rtt_ns = now - ses->ping_sent_ns;
		dp_op_complete(ses->ping, 0);
	} else if (now - ses->ping_sent_ns >= ses->ping->len) {
		dp_op_complete(ses->ping, -ETIMEDOUT);
	} else {
		return;
	}
	ses->ping = NULL;
}

static void session_service(struct dp_lcore *lc, struct dp_session *ses, uint64_t now)
{
	/* Sends, receives and packets move the session's deadlines without
	 * telling us: poll at least every DP_POLL_NS. */
	if (now >= ses->next_poll_ns)
		ses->next_poll_ns = RTE_MIN(dp_channel_poll(ses->s, now), now + DP_POLL_NS);
	data_send(lc, ses, now);
	ctrl_send(lc, ses, now);
	events_deliver(lc, ses);
	if (now >= ses->next_snap_ns || ses->ping != NULL) {
		session_snap(ses);
		ses->next_snap_ns = now + DP_STATS_PERIOD_NS;
		probe_check(ses, now);
	}
}

/* The session of id with the peer at from (engine.c: session_key_taken).
 * A frame of another peer that reuses the id finds nothing here, and a
 * forged address still meets the session's cookie check. */
static struct dp_session *session_find(struct dp_lcore *lc, uint32_t id,
				       const struct dp_netaddr *from)
{
	for (unsigned int i = 0; i < lc->n_sessions; i++)
		if (dp_session_is(lc->sessions[i], id, from->ipv4, from->port))
			return lc->sessions[i];
	return NULL;
}

static void session_detach(struct dp_lcore *lc, struct dp_session *ses)
{
	for (unsigned int i = 0; i < lc->n_sessions; i++) {
		if (lc->sessions[i] == ses) {
			lc->sessions[i] = lc->sessions[--lc->n_sessions];
			return;
		}
	}
}

/* ---- commands ---------------------------------------------------------------- */

static void cmd_open(struct dp_lcore *lc, struct dp_op *op)
{
	if (lc->n_sessions == DP_MAX_SESSIONS) {
		dp_op_complete(op, -DJ_ELIMIT);
		return;
	}
	lc->sessions[lc->n_sessions++] = op->sess;
	dp_op_complete(op, 0);
}

/* Close: fail the transfers, send the CLOSE, hand the session back. */
static void cmd_close(struct dp_lcore *lc, struct dp_op *op, uint64_t now)
{
	struct dp_session *ses = op->sess;

	dp_channel_close(ses->s);
	session_service(lc, ses, now);
	if (ses->ping != NULL)
		dp_op_complete(ses->ping, -ECONNRESET);
	ses->ping = NULL;
	ses->closed = true;
	session_snap(ses);
	session_detach(lc, ses);
	dp_op_complete(op, 0);
}

static void cmd_send(struct dp_lcore *lc, struct dp_op *op, uint64_t now)
{
	int rc = dp_channel_send_source(op->sess->s, op->xfer_id, op->buf, op->len, op->mem,
					dp_op_source(op), op, now);

	if (rc != 0)
		send_op_finish(op, rc);
	else
		lc->sends_inflight++;
}

static void cmd_recv(struct dp_op *op, uint64_t now)
{
	int rc = dp_channel_recv(op->sess->s, op->xfer_id, op->buf, op->len, op->mem, op, now);

	if (rc != 0)
		dp_op_complete(op, rc);
}

/* A cancelled destination is never written again: not by queued GPU
 * copies either. */
static void cmd_cancel(struct dp_lcore *lc, struct dp_op *op)
{
	int rc = dp_channel_cancel(op->sess->s, op->dir, op->xfer_id);

	placer_sync(lc);
	dp_op_complete(op, rc);
}

static void cmd_ping(struct dp_op *op, uint64_t now)
{
	struct dp_session *ses = op->sess;

	/* A closed session is off the loop: nobody would end the probe. */
	if (ses->closed) {
		dp_op_complete(op, -ECONNRESET);
		return;
	}
	if (ses->ping != NULL) {
		dp_op_complete(op, -EBUSY);
		return;
	}
	session_snap(ses);
	ses->pongs_before = ses->snap.pongs;
	ses->ping_sent_ns = now;
	ses->ping = op;
	dp_channel_ping(ses->s, now);
}

static void commands_run(struct dp_lcore *lc, uint64_t now)
{
	void *cmds[DP_PORT_BURST];
	unsigned int n = rte_ring_dequeue_burst(lc->cmds, cmds, DP_PORT_BURST, NULL);

	lc->commands += n;
	for (unsigned int i = 0; i < n; i++) {
		struct dp_op *op = cmds[i];

		switch (op->cmd) {
		case DP_CMD_OPEN:
			cmd_open(lc, op);
			break;
		case DP_CMD_CLOSE:
			cmd_close(lc, op, now);
			break;
		case DP_CMD_SEND:
			dp_op_trace(op, DP_TR_TAKE);
			cmd_send(lc, op, now);
			break;
		case DP_CMD_RECV:
			dp_op_trace(op, DP_TR_TAKE);
			cmd_recv(op, now);
			break;
		case DP_CMD_CANCEL:
			cmd_cancel(lc, op);
			break;
		case DP_CMD_PING:
			cmd_ping(op, now);
			break;
		}
	}
}

/* ---- receive ------------------------------------------------------------------- */

/* A frame of a session served elsewhere (RSS without rte_flow): pass it to
 * the lcore of the queue its UDP destination port names, as rte_flow would
 * have steered it (the peer sends each session to base + its queue), which
 * parses it again. FRAME_KEPT: not ours to free. */
static int handoff(struct dp_lcore *lc, struct rte_mbuf *m, uint16_t dst_port)
{
	const struct dp_engine *dp = lc->dp;
	unsigned int q = (uint16_t)(dst_port - dp->local.port);

	if (!dp->sw_dispatch || q >= dp->n_lcores || q == lc->queue)
		return DP_DROP_NOT_DJINN;
	if (rte_ring_mp_enqueue(dp->lcores[q]->handoff, m) != 0)
		return DP_DROP_NO_MBUF;
	return FRAME_KEPT;
}

/* Where the Djinn header and body sit: one segment, or (chaining drivers,
 * zero-copy senders on ring ports) headers first and the body behind. */
static int pkt_locate(struct rte_mbuf *m, const struct dp_wire_encap *encap,
		      struct dp_rx_pkt *pkt)
{
	if (m->nb_segs > 2 || (m->nb_segs == 2 &&
			       encap->payload_off + DP_WIRE_HDR_LEN > m->data_len)) {
		if (rte_pktmbuf_linearize(m) != 0)
			return -1;
	}
	pkt->hdr = rte_pktmbuf_mtod_offset(m, const void *, encap->payload_off);
	pkt->hdr_avail = encap->payload_len;
	pkt->payload = NULL;
	pkt->payload_avail = 0;
	/* A UDP payload that ends inside the first segment (the second holds
	 * only padding) is a one-segment frame: payload_avail must not wrap. */
	if (m->nb_segs == 2 && m->data_len - encap->payload_off < encap->payload_len) {
		pkt->hdr_avail = m->data_len - encap->payload_off;
		pkt->payload = rte_pktmbuf_mtod(m->next, const void *);
		pkt->payload_avail = encap->payload_len - pkt->hdr_avail;
	}
	return 0;
}

static int frame_input(struct dp_lcore *lc, struct rte_mbuf *m, uint64_t now)
{
	const struct dp_netaddr *local = &lc->dp->local;
	bool ip_verified = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	struct dp_wire_encap encap;
	struct dp_session *ses;
	struct dp_rx_pkt pkt;
	uint32_t session_id;

	if (unlikely(m->data_len < DP_WIRE_ENCAP_LEN) && rte_pktmbuf_linearize(m) != 0)
		return DP_DROP_NOT_DJINN;
	if (dp_wire_encap_parse(rte_pktmbuf_mtod(m, void *), m->pkt_len, !ip_verified, &encap) !=
	    DP_REJ_NONE || (local->ipv4 != 0 && encap.dst.ipv4 != local->ipv4))
		return DP_DROP_NOT_DJINN;
	if (pkt_locate(m, &encap, &pkt) != 0)
		return DP_DROP_REJECTED;
	if (dp_wire_peek_session(pkt.hdr, pkt.hdr_avail, &session_id) != 0)
		return DP_DROP_NOT_DJINN;
	ses = session_find(lc, session_id, &encap.src);
	if (unlikely(ses == NULL))
		return handoff(lc, m, encap.dst.port);
	if (dp_channel_input(ses->s, &pkt, now, NULL) == -EBADMSG)
		return DP_DROP_REJECTED;
	return -1;
}

void dp_place(void *ctx, void *transfer_user, void *dest_base, uint64_t dest_offset,
	      const void *src, uint32_t len)
{
	struct dp_lcore *lc = ctx;
	const struct dp_op *op = transfer_user;

	lc->frame_placed = true;
	lc->dp->cfg.placer->place(lc->placer_state, dest_base, op->len, dest_offset, src, len);
}

/* Frames whose payload the placer may still read go to it, not back to
 * the pool. */
static void placed_hand_over(struct dp_lcore *lc)
{
	const struct dp_engine_placer *pl = lc->dp->cfg.placer;

	if (lc->n_placed == 0)
		return;
	if (pl->burst_end(lc->placer_state, lc->placed, (uint16_t)lc->n_placed) != 0)
		rte_pktmbuf_free_bulk(lc->placed, lc->n_placed);
	lc->n_placed = 0;
	lc->placer_pending = true;
	lc->placer_open = true;
}

/* The port had no full burst for us: what the placer batched goes now. */
static void placer_flush(struct dp_lcore *lc)
{
	const struct dp_engine_placer *pl = lc->dp->cfg.placer;

	if (!lc->placer_open)
		return;
	lc->placer_open = false;
	if (pl->flush != NULL)
		pl->flush(lc->placer_state);
}

static void burst_input(struct dp_lcore *lc, struct rte_mbuf **pkts, unsigned int n,
			uint64_t now, bool counted)
{
	for (unsigned int i = 0; i < n; i++) {
		int verdict;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (counted) {
			lc->stats.rx_packets++;
			lc->stats.rx_bytes += pkts[i]->pkt_len;
		}
		lc->frame_placed = false;
		verdict = frame_input(lc, pkts[i], now);
		if (verdict == FRAME_KEPT)
			continue;
		if (verdict >= 0)
			lc->stats.drops[verdict]++;
		if (unlikely(lc->frame_placed))
			lc->placed[lc->n_placed++] = pkts[i];
		else
			rte_pktmbuf_free(pkts[i]);
	}
	if (unlikely(lc->n_placed != 0))
		placed_hand_over(lc);
}

/* One rx burst from the port (and one from the hand-off ring). True where
 * either came back full: more is likely waiting. */
static bool rx_run(struct dp_lcore *lc, uint64_t now)
{
	struct rte_mbuf *pkts[DP_PORT_BURST];
	uint16_t n = rte_eth_rx_burst(lc->dp->cfg.port.port_id, lc->queue, pkts, DP_PORT_BURST);
	bool full = n == DP_PORT_BURST;

	burst_input(lc, pkts, n, now, true);
	if (unlikely(lc->dp->sw_dispatch)) {
		n = (uint16_t)rte_ring_sc_dequeue_burst(lc->handoff, (void **)pkts, DP_PORT_BURST, NULL);
		burst_input(lc, pkts, n, now, false);
		full |= n == DP_PORT_BURST;
	}
	return full;
}

/* memif maps and unmaps its rings from the interrupt thread when the peer
 * comes and goes; bursting meanwhile crashes or wedges the ring. Stay off
 * the port while its link is down (read from ethdev data, no system call). */
static bool link_usable(struct dp_lcore *lc, uint64_t now)
{
	struct rte_eth_link link;

	if (!lc->link_gated)
		return true;
	if (now >= lc->next_link_check) {
		lc->next_link_check = now + DP_LINK_CHECK_NS;
		lc->link_up = rte_eth_link_get_nowait(lc->dp->cfg.port.port_id, &link) == 0 &&
			      link.link_status == RTE_ETH_LINK_UP;
	}
	return lc->link_up;
}

/* The port may be polled in this iteration: not while the link watch
 * restarts it (acknowledged here, before any burst of the iteration), nor
 * while a memif link is down. */
static bool port_usable(struct dp_lcore *lc, uint64_t now)
{
	unsigned int gen = atomic_load_explicit(&lc->dp->park_gen, memory_order_acquire);

	if (unlikely(gen & 1)) {
		atomic_store_explicit(&lc->park_ack, gen, memory_order_release);
		lc->next_link_check = 0; /* look again once it is back */
		return false;
	}
	return link_usable(lc, now);
}

/* Publish the counters once a loop that did work, and at least every
 * DP_STATS_PERIOD_NS (drops, naps): a copy per burst, not per packet. */
static void stats_publish(struct dp_lcore *lc, uint64_t work_before, uint64_t now)
{
	if (lc->stats.rx_packets + lc->stats.tx_packets + lc->commands == work_before &&
	    now < lc->next_publish)
		return;
	dp_seq_publish(&lc->stats_seq, &lc->stats_pub, &lc->stats, sizeof(lc->stats));
	lc->next_publish = now + DP_STATS_PERIOD_NS;
}

/* One pass of the loop's work: commands, frames, sessions, transmission. */
static void lcore_pass(struct dp_lcore *lc, uint64_t now, bool up)
{
	lc->now = now;
	commands_run(lc, now);
	/* A short poll ends the placer's batch: its fragments must not wait
	 * for later traffic. */
	if (!(likely(up) && rx_run(lc, now)))
		placer_flush(lc);
	for (unsigned int i = 0; i < lc->n_sessions; i++)
		session_service(lc, lc->sessions[i], now);
	held_release(lc, now);
	if (likely(up))
		tx_flush(lc, now);
	else
		tx_stall_check(lc, 0, now);
}

bool dp_lcore_assist(struct dp_lcore *lc, const atomic_int *flag, uint64_t budget_ns)
{
	uint16_t port = lc->dp->cfg.port.port_id;
	uint64_t start = djc_time_ns(), now = start, work;
	int free_baton = DP_BATON_FREE;
	bool up = false, armed = false;

	if (!atomic_compare_exchange_strong(&lc->baton, &free_baton, DP_BATON_CALLER))
		return false;
	/* The lcore sleeps with its interrupt armed: masked while we poll,
	 * so that neither the peer's kicks nor our frames wake it. */
	while (!atomic_load_explicit(flag, memory_order_acquire) &&
	       !atomic_load_explicit(&lc->dp->stop, memory_order_relaxed) &&
	       now - start < budget_ns) {
		up = port_usable(lc, now);
		if (up && !armed) {
			rte_eth_dev_rx_intr_disable(port, lc->queue);
			armed = true;
		}
		work = lc->stats.rx_packets + lc->stats.tx_packets + lc->commands;
		lcore_pass(lc, now, up);
		stats_publish(lc, work, now);
		now = djc_time_ns();
	}
	/* Armed again for the sleeping lcore: frames that came meanwhile
	 * kick its eventfd at once (the driver looks). */
	if (armed && port_usable(lc, now))
		rte_eth_dev_rx_intr_enable(port, lc->queue);
	lc->idle_since = now;
	atomic_store_explicit(&lc->baton, DP_BATON_FREE, memory_order_release);
	/* Work left that no frame will announce (commands posted meanwhile
	 * kicked a sleeper that could not run them; frames waiting for room
	 * in the ring; a send we leave in flight, whose source the lcore
	 * must watch): wake the lcore now that it can run. */
	if (!rte_ring_empty(lc->cmds) || lc->n_txq != 0 || lc->sends_inflight != 0)
		dp_lcore_kick(lc);
	return atomic_load_explicit(flag, memory_order_acquire) != 0;
}

int dp_lcore_main(void *arg)
{
	struct dp_lcore *lc = arg;
	uint64_t last = djc_time_ns(), work = UINT64_MAX;

	if (lc->dp->cfg.idle != DP_IDLE_POLL)
		prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	DP_TRACE_THREAD();
	while (!atomic_load_explicit(&lc->dp->stop, memory_order_relaxed)) {
		uint64_t now = djc_time_ns();
		bool up;

		/* The last iteration's time, busy where it moved something:
		 * two additions per loop, nothing per packet. */
		lc->stats.loop_ns += now - last;
		if (lc->stats.rx_packets + lc->stats.tx_packets + lc->commands != work)
			lc->stats.busy_ns += now - last;
		last = now;
		work = lc->stats.rx_packets + lc->stats.tx_packets + lc->commands;
		up = port_usable(lc, now);
		/* A memif client whose server went away: restart the port
		 * until it is back (and say when it is). */
		if (unlikely(lc->link_watch) && (!up || lc->down_since != 0))
			dp_link_watch(lc, now);
		lcore_pass(lc, now, up);
		stats_publish(lc, work, now);
		dp_idle(lc, work, now, up);
	}
	/* Let go of every frame: SEND waiters wait for their buffers. */
	rte_pktmbuf_free_bulk(lc->txq, lc->n_txq);
	lc->n_txq = 0;
	while (lc->hold != NULL && dp_hold_queue_count(lc->hold) != 0) {
		held_release(lc, UINT64_MAX);
		rte_pktmbuf_free_bulk(lc->txq, lc->n_txq);
		lc->n_txq = 0;
	}
	stats_publish(lc, UINT64_MAX, UINT64_MAX);
	return 0;
}
