/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Receiver: validates every DATA fragment against its posted transfer before
 * a byte is written, places the payload, tracks arrivals in a ring bitmap of
 * one window (memory independent of the transfer size), and owes the sender
 * ACKs (cumulative + SACK) and NACKs (missing ranges).
 */
#include <errno.h>
#include <string.h>
#include <emmintrin.h>

#include "proto.h"
#include "trace.h"

static inline bool bit_test(const uint64_t *bits, uint32_t pos)
{
	return bits[pos >> 6] >> (pos & 63) & 1;
}

static inline void bit_set(uint64_t *bits, uint32_t pos)
{
	bits[pos >> 6] |= 1ull << (pos & 63);
}

static inline void bit_clear(uint64_t *bits, uint32_t pos)
{
	bits[pos >> 6] &= ~(1ull << (pos & 63));
}

/* First index in [from, end) whose bit equals want, else end. Words of the
 * ring map onto contiguous indices because the window is a multiple of 64. */
static uint32_t bit_scan(const uint64_t *bits, uint32_t mask, uint32_t from,
			 uint32_t end, bool want)
{
	uint64_t i = from;

	while (i < end) {
		uint32_t pos = (uint32_t)i & mask;
		uint64_t w = bits[pos >> 6];

		w = (want ? w : ~w) >> (pos & 63);
		if (w) {
			i += (uint64_t)__builtin_ctzll(w);
			return i < end ? (uint32_t)i : end;
		}
		i += 64 - (pos & 63);
	}
	return end;
}

int dp_rx_start(struct dp_channel *s, uint64_t id, void *dest, uint64_t len,
	     enum dj_mem_kind mem, void *user, uint64_t now_ns)
{
	uint32_t count;
	struct rx_xfer *x;
	uint64_t *bits;
	int rc = dp_xfer_begin(&s->rx, id, len, s->cfg.frag_size, &count, (void **)&x);

	if (rc)
		return rc;
	bits = x->bits;
	memset(x, 0, sizeof(*x));
	memset(bits, 0, s->cfg.window / 8);
	x->bits = bits;
	x->id = id;
	x->frag_count = count;
	x->len = len;
	x->dest = dest;
	x->mem = mem;
	x->user = user;
	x->trigger = UINT32_MAX;
	x->ack_deadline = UINT64_MAX;
	x->last_progress_ns = now_ns;
	dp_channel_arm(s, now_ns + s->cfg.keepalive_ns);
	return 0;
}

void dp_rx_end(struct dp_channel *s, struct rx_xfer *x, int status)
{
	/* Streamed stores become visible before whoever acts on the event
	 * reads the buffer. */
	if (x->mem == DJ_MEM_HOST && x->len >= s->cfg.stream_copy_min)
		_mm_sfence();
	dp_channel_event(s, x->id, DP_XFER_RX, status, x->len, x->user);
	if (status == 0) {
		dp_done_push(&s->rx_done, x->id, x->frag_count, x->len);
		dp_done_push(&s->reacks, x->id, x->frag_count, x->len);
	}
	dp_xfer_release(&s->rx, x);
}

/* Late fragment of a finished transfer: its final ACK was probably lost. */
static enum dp_wire_reject rx_on_stale(struct dp_channel *s,
				       const struct dp_wire_hdr *h, uint64_t now_ns)
{
	const struct done_rec *d = dp_done_find(&s->rx_done, h->transfer_id);

	if (!d || d->total_len != h->total_len) {
		dp_channel_answer_failed(s, &s->rx_failed, h->transfer_id, true, now_ns);
		return DP_REJ_UNKNOWN_TRANSFER;
	}
	dp_done_push(&s->reacks, d->id, d->frag_count, d->total_len);
	return DP_REJ_DUPLICATE;
}

static enum dp_wire_reject rx_validate(const struct dp_channel *s,
				       const struct rx_xfer *x,
				       const struct dp_wire_hdr *h)
{
	uint64_t fs = s->cfg.frag_size;
	uint32_t idx = h->frag_index;

	if (h->total_len != x->len)
		return DP_REJ_TOTAL_MISMATCH;
	if (h->offset > x->len || h->payload_len > x->len - h->offset)
		return DP_REJ_OUT_OF_RANGE;
	if (idx >= x->frag_count || h->offset != idx * fs ||
	    h->payload_len != (x->len - h->offset < fs ? x->len - h->offset : fs))
		return DP_REJ_INDEX_MISMATCH;
	if (idx < x->cum || (idx < x->high && bit_test(x->bits, idx & s->mask)))
		return DP_REJ_DUPLICATE;
	if (idx - x->cum >= s->cfg.window)
		return DP_REJ_BEYOND_WINDOW;
	return DP_REJ_NONE;
}

/* memcpy with non-temporal stores for the 16-byte-aligned middle (SSE2,
 * every x86-64). dp_rx_end() fences them before completion is reported. */
static void stream_copy(uint8_t *dst, const uint8_t *src, uint32_t len)
{
	uint32_t head = (uint32_t)(-(uintptr_t)dst & 15);

	if (head > len)
		head = len;
	memcpy(dst, src, head);
	dst += head;
	src += head;
	len -= head;
	for (; len >= 64; len -= 64, dst += 64, src += 64) {
		__m128i a = _mm_loadu_si128((const __m128i *)src);
		__m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
		__m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
		__m128i d = _mm_loadu_si128((const __m128i *)(src + 48));

		_mm_stream_si128((__m128i *)dst, a);
		_mm_stream_si128((__m128i *)(dst + 16), b);
		_mm_stream_si128((__m128i *)(dst + 32), c);
		_mm_stream_si128((__m128i *)(dst + 48), d);
	}
	memcpy(dst, src, len);
}

static void rx_place(struct dp_channel *s, struct rx_xfer *x,
		     const struct dp_wire_hdr *h, const uint8_t *body)
{
	if (h->payload_len == 0)
		return;
	if (x->mem == DJ_MEM_HOST && x->len >= s->cfg.stream_copy_min)
		stream_copy(x->dest + h->offset, body, h->payload_len);
	else if (x->mem == DJ_MEM_HOST)
		memcpy(x->dest + h->offset, body, h->payload_len);
	else
		s->cfg.place(s->cfg.place_ctx, x->user, x->dest, h->offset, body,
			     h->payload_len);
}

static void rx_record(struct dp_channel *s, struct rx_xfer *x, uint32_t idx)
{
	if (idx == x->cum && x->high == x->cum) {
		/* In order with no gap: the bitmap is not involved. */
		x->cum++;
		x->high++;
		return;
	}
	bit_set(x->bits, idx & s->mask);
	if (idx >= x->high) {
		if (idx > x->high) {
			x->hole_pending = true;
			x->hole_mark = idx;
		}
		x->high = idx + 1;
	}
	if (idx != x->cum)
		return;
	while (x->cum < x->high && bit_test(x->bits, x->cum & s->mask))
		bit_clear(x->bits, x->cum++ & s->mask);
}

/* When the sender should next hear from us about x. */
static void rx_schedule_feedback(struct dp_channel *s, struct rx_xfer *x,
				 uint64_t now_ns)
{
	if (x->hole_pending && x->high - x->hole_mark >= s->cfg.nack_threshold) {
		x->nack_due = true;
		x->hole_pending = false;
	}
	if (x->unacked >= s->cfg.ack_every || x->nack_due)
		x->ack_deadline = now_ns;
	else if (x->ack_deadline == UINT64_MAX)
		x->ack_deadline = now_ns + s->cfg.ack_delay_ns;
	dp_channel_arm(s, x->ack_deadline);
}

enum dp_wire_reject dp_rx_on_data(struct dp_channel *s,
			       const struct dp_wire_hdr *h,
			       const uint8_t *body, uint64_t now_ns)
{
	struct rx_xfer *x = dp_xfer_find(&s->rx, h->transfer_id);
	enum dp_wire_reject rej;

	if (!x)
		return rx_on_stale(s, h, now_ns);
	rej = rx_validate(s, x, h);
	if (rej == DP_REJ_DUPLICATE) {
		/* The sender missed an ACK: repeat it now. */
		x->ack_deadline = now_ns;
		dp_channel_arm(s, now_ns);
	}
	if (rej)
		return rej;
	if (x->high == 0)
		DP_TRACE(DP_TR_RX_FIRST, s->cfg.cookie, x->id, DP_XFER_RX, x->len);
	rx_place(s, x, h, body);
	rx_record(s, x, h->frag_index);
	s->st.rx_data++;
	s->st.rx_data_bytes += h->payload_len;
	x->unacked++;
	x->trigger = h->frag_index;
	x->last_progress_ns = now_ns;
	if (x->cum == x->frag_count) {
		DP_TRACE(DP_TR_RX_LAST, s->cfg.cookie, x->id, DP_XFER_RX, x->len);
		dp_rx_end(s, x, 0);
	} else {
		rx_schedule_feedback(s, x, now_ns);
	}
	return DP_REJ_NONE;
}

uint64_t dp_rx_timers(struct dp_channel *s, uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = s->rx.nactive; i-- > 0;) {
		struct rx_xfer *x = s->rx.active[i];

		if (dp_xfer_deadline(s, x->last_progress_ns) <= now_ns)
			dp_rx_end(s, x, -ETIMEDOUT);
	}
	for (uint32_t i = 0; i < s->rx.nactive; i++) {
		struct rx_xfer *x = s->rx.active[i];
		uint64_t idle_at = dp_xfer_deadline(s, x->last_progress_ns);

		next = idle_at < next ? idle_at : next;
		next = x->ack_deadline < next ? x->ack_deadline : next;
	}
	return next;
}

/* Runs of set (SACK) or clear (missing) bits in [cum, high). */
static void rx_ranges(const struct dp_channel *s, const struct rx_xfer *x,
		      bool missing, struct dp_wire_ranges *r)
{
	uint32_t i = x->cum;

	r->nranges = 0;
	while (r->nranges < DP_WIRE_MAX_RANGES) {
		uint32_t first = bit_scan(x->bits, s->mask, i, x->high, !missing);
		uint32_t end;

		if (first == x->high)
			break;
		end = bit_scan(x->bits, s->mask, first, x->high, missing);
		r->range[r->nranges].first = first;
		r->range[r->nranges++].end = end;
		i = end;
	}
}

static void write_ranges(struct dp_channel *s, struct dp_ctrl_pkt *pkt,
			 enum dp_pkt_type type, uint16_t flags, uint64_t id,
			 uint64_t total, const struct dp_wire_ranges *r)
{
	uint32_t room = dp_channel_hdr_room(s);
	struct dp_wire_hdr h;

	dp_channel_hdr_init(s, &h, type, id);
	h.flags = flags;
	h.total_len = total;
	h.payload_len = (uint32_t)dp_wire_ranges_encode(r, pkt->buf + room);
	pkt->len = dp_channel_write_hdr(s, pkt->buf, &h, pkt->buf + room, true) +
		   h.payload_len;
	s->st.tx_acks += type == DP_PKT_ACK;
	s->st.tx_nacks += type == DP_PKT_NACK;
}

void dp_rx_write_final_ack(struct dp_channel *s, const struct done_rec *d,
			struct dp_ctrl_pkt *pkt)
{
	struct dp_wire_ranges r = {
		.cum = d->frag_count, .credit = s->cfg.window, .trigger = UINT32_MAX,
	};

	write_ranges(s, pkt, DP_PKT_ACK, DP_WIRE_F_COMPLETE, d->id, d->total_len, &r);
	DP_TRACE(DP_TR_ACK_OUT, s->cfg.cookie, d->id, DP_XFER_RX, d->total_len);
}

static void rx_write_feedback(struct dp_channel *s, struct rx_xfer *x,
			      uint64_t now_ns, struct dp_ctrl_pkt *pkt)
{
	struct dp_wire_ranges r = {
		.cum = x->cum, .credit = s->cfg.window, .trigger = x->trigger,
	};
	bool gaps = x->high > x->cum;
	bool nack = gaps && (x->nack_due ||
			     now_ns - x->last_nack_ns >= s->cfg.rto_min_ns);

	rx_ranges(s, x, nack, &r);
	write_ranges(s, pkt, nack ? DP_PKT_NACK : DP_PKT_ACK, 0, x->id, x->len, &r);
	if (nack)
		x->last_nack_ns = now_ns;
	x->unacked = 0;
	x->nack_due = false;
	x->trigger = UINT32_MAX;
	x->ack_deadline = UINT64_MAX;
}

unsigned dp_rx_feedback(struct dp_channel *s, uint64_t now_ns,
		     struct dp_ctrl_pkt *pkts, unsigned n)
{
	unsigned k = 0;

	for (uint32_t i = 0; i < s->rx.nactive && k < n; i++) {
		struct rx_xfer *x = s->rx.active[i];

		if (x->ack_deadline <= now_ns)
			rx_write_feedback(s, x, now_ns, &pkts[k++]);
	}
	return k;
}
