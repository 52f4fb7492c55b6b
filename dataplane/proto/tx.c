/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sender: hands out fragment descriptors within the receiver's credit,
 * retransmits selectively on NACK and on the adaptive retransmission timeout
 * (RFC 6298 estimator, exponential backoff, Karn's rule). A transfer fails
 * only by the liveness rule (dp_xfer_deadline): a dead peer or a stall, never
 * a count of timeouts, so a peer paused for seconds does not fail it.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "trace.h"

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

int dp_tx_start(struct dp_channel *s, uint64_t id, const void *buf, uint64_t len,
	     enum dj_mem_kind mem, struct dp_tx_source *src, void *user, uint64_t now_ns)
{
	uint32_t count;
	struct tx_xfer *x;
	struct frag_slot *frags;
	uint32_t *rtx;
	int rc = dp_xfer_begin(&s->tx, id, len, s->cfg.frag_size, &count, (void **)&x);

	if (rc)
		return rc;
	frags = x->frags;
	rtx = x->rtx;
	memset(x, 0, sizeof(*x));
	/* Only the slots this transfer can use: fragment i lives in slot
	 * i % window. Clearing the whole window (64 KiB at 4096 slots) cost
	 * the lcore microseconds before a one-fragment send's frame left. */
	memset(frags, 0, (size_t)min_u32(count, s->cfg.window) * sizeof(*frags));
	x->frags = frags;
	x->rtx = rtx;
	x->id = id;
	x->frag_count = count;
	x->credit_end = min_u32(s->cfg.initial_credit, count);
	x->cwnd = s->cfg.initial_credit;
	x->ssthresh = s->cfg.window;
	x->len = len;
	x->buf = buf;
	x->mem = mem;
	x->user = user;
	x->rto_deadline = UINT64_MAX;
	x->last_progress_ns = now_ns;
	dp_channel_arm(s, now_ns + s->cfg.keepalive_ns);
	x->src = src;
	x->ready_end = src ? 0 : count;
	if (src) {
		x->wrap = src->wrap;
		__atomic_store_n(&src->acked, 0, __ATOMIC_RELEASE);
	}
	return 0;
}

/* Fragments whose bytes are all in place: every one of an ordinary send,
 * those below the producer's ready mark for a progressive source. The
 * atomic is read only when the cached mark stops the sender. */
static uint32_t tx_ready_end(const struct dp_channel *s, struct tx_xfer *x)
{
	uint64_t ready;

	if (x->ready_end == x->frag_count || x->next_new < x->ready_end)
		return x->ready_end;
	ready = __atomic_load_n(&x->src->ready, __ATOMIC_ACQUIRE);
	x->ready_end = ready >= x->len ? x->frag_count
				       : (uint32_t)(ready / s->cfg.frag_size);
	return x->ready_end;
}

/* The producer may refill what lies below the cumulative ACK: the
 * session never describes those fragments again. */
static void tx_publish_acked(const struct dp_channel *s, struct tx_xfer *x)
{
	uint64_t acked = (uint64_t)x->cum * s->cfg.frag_size;

	if (x->src)
		__atomic_store_n(&x->src->acked, min_u64(acked, x->len), __ATOMIC_RELEASE);
}

void dp_tx_end(struct dp_channel *s, struct tx_xfer *x, int status)
{
	if (status == 0)
		DP_TRACE(DP_TR_ACK_IN, s->cfg.cookie, x->id, DP_XFER_TX, x->len);
	dp_channel_event(s, x->id, DP_XFER_TX, status, x->len, x->user);
	if (status == 0)
		dp_done_push(&s->tx_done, x->id, x->frag_count, x->len);
	dp_xfer_release(&s->tx, x);
}

static void rtt_sample(struct dp_channel *s, uint64_t rtt)
{
	const struct dp_channel_config *c = &s->cfg;

	if (!s->have_rtt) {
		s->srtt = rtt;
		s->rttvar = rtt / 2;
		s->have_rtt = true;
	} else {
		uint64_t dev = s->srtt > rtt ? s->srtt - rtt : rtt - s->srtt;

		s->rttvar = (3 * s->rttvar + dev) / 4;
		s->srtt = (7 * s->srtt + rtt) / 8;
	}
	s->rto_base = s->srtt + 4 * s->rttvar;
	if (s->rto_base < c->rto_min_ns)
		s->rto_base = c->rto_min_ns;
	if (s->rto_base > c->rto_max_ns)
		s->rto_base = c->rto_max_ns;
	s->rto = s->rto_base;
	s->st.rtt_samples++;
}

/* Karn's rule: only fragments sent exactly once give a sample. */
static void tx_sample(struct dp_channel *s, struct tx_xfer *x, uint32_t trigger,
		      uint64_t now_ns)
{
	struct frag_slot *f;

	if (trigger < x->cum || trigger >= x->next_new)
		return;
	f = &x->frags[trigger & s->mask];
	if (f->tries != 1 || (f->flags & FRAG_SAMPLED) || now_ns < f->sent_ns)
		return;
	f->flags |= FRAG_SAMPLED;
	rtt_sample(s, now_ns - f->sent_ns);
}

static uint32_t rtx_mask(const struct dp_channel *s)
{
	return 2 * s->cfg.window - 1;
}

/* Entries of fragments acknowledged after they were queued stay in the
 * ring (skipped when popped); drop them when the ring fills. At most one
 * window of entries is live, so compaction always makes room. */
static void tx_compact_rtx(struct dp_channel *s, struct tx_xfer *x)
{
	uint32_t live = 0;

	for (uint32_t n = 0; n < x->rtx_count; n++) {
		uint32_t i = x->rtx[(x->rtx_head + n) & rtx_mask(s)];

		if (i >= x->cum && (x->frags[i & s->mask].flags & FRAG_QUEUED))
			x->rtx[(x->rtx_head + live++) & rtx_mask(s)] = i;
	}
	x->rtx_count = live;
}

static void tx_queue_rtx(struct dp_channel *s, struct tx_xfer *x, uint32_t idx)
{
	struct frag_slot *f = &x->frags[idx & s->mask];

	if (f->flags & (FRAG_SACKED | FRAG_QUEUED))
		return;
	if (x->rtx_count == rtx_mask(s) + 1)
		tx_compact_rtx(s, x);
	f->flags |= FRAG_QUEUED;
	x->rtx[(x->rtx_head + x->rtx_count++) & rtx_mask(s)] = idx;
}

/* Enough in flight after a cut for a gap to be NACKed (nack_threshold 3). */
#define CWND_MIN 4u

/* Slow start below ssthresh, then one fragment per window acknowledged. */
static void cc_on_ack(struct dp_channel *s, struct tx_xfer *x, uint32_t acked)
{
	if (x->cwnd < x->ssthresh) {
		x->cwnd += acked;
	} else {
		x->cwnd_acc += acked;
		if (x->cwnd_acc >= x->cwnd) {
			x->cwnd_acc -= x->cwnd;
			x->cwnd++;
		}
	}
	if (x->cwnd > s->cfg.window)
		x->cwnd = s->cfg.window;
}

/* One cut per window of data: losses reported until cum passes what was
 * in flight at the cut belong to the same congestion event. */
static void cc_on_loss(struct dp_channel *s, struct tx_xfer *x, bool timeout)
{
	if (!timeout && x->cum < x->recover)
		return;
	x->ssthresh = x->cwnd / 2 > CWND_MIN ? x->cwnd / 2 : CWND_MIN;
	x->cwnd = timeout ? CWND_MIN : x->ssthresh;
	x->cwnd_acc = 0;
	x->recover = x->next_new;
	s->st.cwnd_reductions++;
}

static bool tx_advance(struct dp_channel *s, struct tx_xfer *x, uint32_t cum,
		       uint64_t now_ns)
{
	if (cum <= x->cum)
		return false;
	for (uint32_t i = x->cum; i < cum; i++)
		x->frags[i & s->mask].flags = 0;
	if (s->cfg.congestion_control)
		cc_on_ack(s, x, cum - x->cum);
	x->cum = cum;
	x->last_progress_ns = now_ns;
	tx_publish_acked(s, x);
	return true;
}

/* Age a fragment must have before a NACK may resend it: a NACK that
 * crossed the previous retransmission in flight must not trigger another. */
static uint64_t nack_guard(const struct dp_channel *s)
{
	return s->have_rtt ? s->srtt : s->cfg.rto_min_ns;
}

/* Every ACK repeats the SACK ranges it knows; marking only above the
 * highest fragment marked so far touches each slot once. A retransmission
 * that fills a hole below it stays unmarked until cum passes it, which at
 * worst costs one needless resend after a timeout. */
static void tx_apply_sack(struct dp_channel *s, struct tx_xfer *x,
			  const struct dp_wire_ranges *r, uint64_t now_ns)
{
	for (unsigned i = 0; i < r->nranges; i++) {
		uint32_t first = r->range[i].first;
		uint32_t end = min_u32(r->range[i].end, x->next_new);

		if (first < x->sack_high)
			first = x->sack_high;
		if (first < x->cum)
			first = x->cum;
		for (uint32_t k = first; k < end; k++)
			x->frags[k & s->mask].flags |= FRAG_SACKED;
		if (end > x->sack_high) {
			x->sack_high = end;
			x->last_progress_ns = now_ns; /* new data acknowledged */
		}
	}
}

static void tx_apply_nack(struct dp_channel *s, struct tx_xfer *x,
			  const struct dp_wire_ranges *r, uint64_t now_ns)
{
	for (unsigned i = 0; i < r->nranges; i++) {
		uint32_t first = r->range[i].first > x->cum ? r->range[i].first : x->cum;
		uint32_t end = min_u32(r->range[i].end, x->next_new);

		for (uint32_t k = first; k < end; k++) {
			struct frag_slot *f = &x->frags[k & s->mask];

			if (now_ns - f->sent_ns < nack_guard(s))
				continue;
			if (!(f->flags & (FRAG_SACKED | FRAG_QUEUED)))
				s->st.tx_retrans_nack++;
			tx_queue_rtx(s, x, k);
		}
	}
}

/*
 * A timeout resends every unacknowledged, un-SACKed fragment in flight
 * where the receiver spoke while the timer ran (it reads what we send:
 * what it did not acknowledge is lost). Where it was silent for the whole
 * timeout, it may only have stopped reading (a descheduled lcore, its rx
 * ring full of what we sent): then the oldest fragments go RTO_BURST_MIN
 * at a time, each ACK that moves cum doubling the next burst, until every
 * fragment in flight at the timeout was resent or acknowledged. A spurious
 * timeout then ends with its first ACK, which acknowledges the window,
 * after a few duplicates. Resending the whole window to a silent receiver
 * cost up to 4096 fragments (36 MB of jumbo frames) per timeout, with the
 * backoff several per stall, 2.6 times the transfer in the simulator (test
 * "a receiver paused past the RTO"), which the receiver had to read and
 * drop: a queue at half speed. Where it was really lost, the bursts
 * double per round trip.
 */
#define RTO_BURST_MIN 8u

static void tx_rto_resend(struct dp_channel *s, struct tx_xfer *x)
{
	uint32_t queued = 0;

	if (x->rto_next < x->cum)
		x->rto_next = x->cum;
	for (; x->rto_next < x->rto_end && queued < x->rto_burst; x->rto_next++) {
		struct frag_slot *f = &x->frags[x->rto_next & s->mask];

		if (f->flags & (FRAG_SACKED | FRAG_QUEUED))
			continue;
		tx_queue_rtx(s, x, x->rto_next);
		queued++;
	}
	if (x->rto_next >= x->rto_end)
		x->rto_end = 0;
}

enum dp_wire_reject dp_tx_on_feedback(struct dp_channel *s,
				   const struct dp_wire_hdr *h,
				   const uint8_t *body, uint64_t now_ns)
{
	struct dp_wire_ranges r;
	struct tx_xfer *x;
	bool nack = h->type == DP_PKT_NACK, advanced = false;
	uint32_t resent_end;

	if (dp_wire_ranges_decode(body, h->payload_len, &r))
		return DP_REJ_BAD_BODY;
	x = dp_xfer_find(&s->tx, h->transfer_id);
	if (!x) {
		if (dp_done_find(&s->tx_done, h->transfer_id))
			return DP_REJ_DUPLICATE;
		dp_channel_answer_failed(s, &s->tx_failed, h->transfer_id, false, now_ns);
		return DP_REJ_UNKNOWN_TRANSFER;
	}
	if (h->total_len != x->len)
		return DP_REJ_TOTAL_MISMATCH;
	if (r.cum > x->next_new)
		return DP_REJ_OUT_OF_RANGE;
	s->st.rx_acks += !nack;
	s->st.rx_nacks += nack;
	tx_sample(s, x, r.trigger, now_ns);
	/* Where this timeout's resends have reached, before the ACK moves
	 * them (tx_rto_resend starts from cum). */
	resent_end = x->rto_next;
	if (tx_advance(s, x, r.cum, now_ns)) {
		/* New data acknowledged: the path works, drop the backoff
		 * (as Linux does) rather than wait for a Karn-valid sample,
		 * which heavy loss can delay for many round trips. */
		s->rto = s->rto_base;
		x->rto_deadline = x->cum < x->next_new ? now_ns + s->rto : UINT64_MAX;
		advanced = true;
	}
	if (x->cum == x->frag_count) {
		dp_tx_end(s, x, 0);
		return DP_REJ_NONE;
	}
	if (nack && s->cfg.congestion_control)
		cc_on_loss(s, x, false);
	if (nack)
		tx_apply_nack(s, x, &r, now_ns);
	else
		tx_apply_sack(s, x, &r, now_ns);
	/* The receiver acknowledged fragments this timeout has not resent
	 * yet: their first copies arrived, so nothing was lost before
	 * them and the timeout was spurious (the receiver was slow, a
	 * backlog in its rx ring). Stop resending, as F-RTO (RFC 5682)
	 * does: the rest of the window is in flight, and a fragment really
	 * lost gets a NACK or the next timeout. */
	if (advanced && x->rto_end != 0 && r.cum > resent_end) {
		x->rto_end = 0;
		s->st.rto_spurious++;
	}
	/* After the marks: what the receiver holds is not resent. */
	if (advanced && x->rto_end != 0) {
		x->rto_burst = min_u32(x->rto_burst * 2, s->cfg.window);
		tx_rto_resend(s, x);
	}
	/* At least one fragment of credit: a zero window with nothing in
	 * flight would leave no timer running and hang the transfer. */
	x->credit_end = (uint32_t)min_u64(x->frag_count,
		(uint64_t)r.cum + (r.credit ? min_u32(r.credit, s->cfg.window) : 1));
	dp_channel_arm(s, x->rto_deadline);
	return DP_REJ_NONE;
}

static void tx_on_rto(struct dp_channel *s, struct tx_xfer *x, uint64_t now_ns)
{
	/* The peer spoke while the timer ran: it reads what we send, and
	 * what it did not acknowledge is lost. Else it may just not be
	 * reading (a descheduled lcore) with the window in its rx ring. */
	bool talking = now_ns - s->last_heard_ns < s->rto;

	s->st.rto_expired++;
	s->rto = min_u64(s->rto * 2, s->cfg.rto_max_ns);
	if (s->cfg.congestion_control)
		cc_on_loss(s, x, true);
	x->rto_next = x->cum;
	x->rto_end = x->next_new;
	x->rto_burst = talking ? s->cfg.window : RTO_BURST_MIN;
	tx_rto_resend(s, x);
	x->rto_deadline = now_ns + s->rto;
}

uint64_t dp_tx_timers(struct dp_channel *s, uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;

	/* Backwards: a failing transfer swaps the last one into its place. */
	for (uint32_t i = s->tx.nactive; i-- > 0;) {
		struct tx_xfer *x = s->tx.active[i];

		if (dp_xfer_deadline(s, x->last_progress_ns) <= now_ns)
			dp_tx_end(s, x, -ETIMEDOUT);
		else if (x->rto_deadline <= now_ns)
			tx_on_rto(s, x, now_ns);
	}
	for (uint32_t i = 0; i < s->tx.nactive; i++) {
		struct tx_xfer *x = s->tx.active[i];

		next = min_u64(next, x->rto_deadline);
		next = min_u64(next, dp_xfer_deadline(s, x->last_progress_ns));
	}
	return next;
}

/* ---- descriptors ------------------------------------------------------------- */

static void tx_describe(struct dp_channel *s, struct tx_xfer *x, uint32_t idx,
			bool retrans, uint8_t *arena, struct dp_frag_desc *d)
{
	uint64_t off = (uint64_t)idx * s->cfg.frag_size;
	uint32_t plen = (uint32_t)min_u64(s->cfg.frag_size, x->len - off);
	struct dp_wire_hdr h;

	dp_channel_hdr_init(s, &h, DP_PKT_DATA, x->id);
	h.flags = retrans ? DP_WIRE_F_RETRANS : 0;
	h.payload_len = plen;
	h.frag_index = idx;
	h.offset = off;
	h.total_len = x->len;
	d->hdr = arena;
	d->payload = plen ? x->buf + (x->wrap ? off % x->wrap : off) : NULL;
	d->hdr_len = dp_channel_write_hdr(s, arena, &h, d->payload,
				       x->mem == DJ_MEM_HOST);
	d->transfer_id = x->id;
	d->payload_len = plen;
	d->frag_index = idx;
	d->offset = off;
	d->mem = x->mem;
	d->retransmit = retrans;
	d->user = x->user;
	s->st.tx_data++;
	s->st.tx_data_bytes += plen;
	s->st.tx_retrans += retrans;
}

static void tx_mark_sent(struct dp_channel *s, struct tx_xfer *x, uint32_t idx,
			 uint64_t now_ns)
{
	struct frag_slot *f = &x->frags[idx & s->mask];

	f->sent_ns = now_ns;
	f->tries++;
	if (x->rto_deadline == UINT64_MAX) {
		x->rto_deadline = now_ns + s->rto;
		dp_channel_arm(s, x->rto_deadline);
	}
}

/* Next fragment of x to send, retransmissions first; false if none.
 * Nothing at or above ready_end goes out: new fragments wait for it, and
 * a queued retransmission lies below next_new, which never passes it. */
static bool tx_next(struct dp_channel *s, struct tx_xfer *x, uint32_t *idx,
		    bool *retrans)
{
	uint32_t ready_end = tx_ready_end(s, x);

	while (x->rtx_count) {
		uint32_t i = x->rtx[x->rtx_head];
		struct frag_slot *f;

		x->rtx_head = (x->rtx_head + 1) & rtx_mask(s);
		x->rtx_count--;
		if (i < x->cum)
			continue; /* acknowledged meanwhile; slot reused */
		f = &x->frags[i & s->mask];
		f->flags &= (uint8_t)~FRAG_QUEUED;
		if ((f->flags & FRAG_SACKED) || i >= ready_end)
			continue;
		*idx = i;
		*retrans = true;
		return true;
	}
	if (x->next_new < x->credit_end && x->next_new < ready_end &&
	    x->next_new - x->cum < s->cfg.window &&
	    (!s->cfg.congestion_control || x->next_new - x->cum < x->cwnd)) {
		*idx = x->next_new++;
		*retrans = false;
		return true;
	}
	return false;
}

unsigned dp_channel_tx_burst(struct dp_channel *s, uint64_t now_ns,
			     struct dp_frag_desc *out, unsigned n)
{
	unsigned k = 0, idle = 0;

	if (n > DP_CHANNEL_TX_BURST_MAX)
		n = DP_CHANNEL_TX_BURST_MAX;
	/* Round-robin, one fragment per transfer per turn, until the burst is
	 * full or a whole turn found nothing to send. */
	while (k < n && s->tx.nactive && idle < s->tx.nactive) {
		struct tx_xfer *x;
		uint32_t idx;
		bool retrans;

		if (s->tx_rr >= s->tx.nactive)
			s->tx_rr = 0;
		x = s->tx.active[s->tx_rr++];
		if (!tx_next(s, x, &idx, &retrans)) {
			idle++;
			continue;
		}
		idle = 0;
		tx_describe(s, x, idx, retrans, s->hdr_arena[k], &out[k]);
		tx_mark_sent(s, x, idx, now_ns);
		k++;
	}
	return k;
}
