/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Session life cycle, packet dispatch, timers, control output and events.
 * The sender lives in tx.c, the receiver in rx.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "proto.h"

#define MAX_FRAG_SIZE_BARE (1u << 24)

void dp_channel_config_init(struct dp_channel_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->frag_size = dp_wire_frag_size(1500);
	cfg->max_transfers = 64;
	cfg->window = 4096;
	cfg->initial_credit = 64;
	cfg->ack_every = 32;
	cfg->ack_delay_ns = 20 * 1000;
	cfg->nack_threshold = 3;
	cfg->rto_init_ns = 1000 * 1000;
	cfg->rto_min_ns = 100 * 1000;
	cfg->rto_max_ns = 200 * 1000 * 1000;
	cfg->dead_timeout_ns = 10000ull * 1000 * 1000;
	cfg->stall_timeout_ns = 60000ull * 1000 * 1000;
	cfg->keepalive_ns = 250ull * 1000 * 1000;
	cfg->stream_copy_min = 8ull << 20;
	cfg->tx_crc = true;
	cfg->rx_crc = true;
	cfg->local.port = DP_WIRE_UDP_PORT;
	cfg->peer.port = DP_WIRE_UDP_PORT;
}

static bool config_valid(const struct dp_channel_config *c)
{
	uint32_t max_frag = c->encap ? 65535u - DP_WIRE_IPV4_LEN - DP_WIRE_UDP_LEN -
					   DP_WIRE_HDR_LEN
				     : MAX_FRAG_SIZE_BARE;

	return c->frag_size > 0 && c->frag_size <= max_frag &&
	       c->max_transfers > 0 && c->max_transfers <= 65536 &&
	       c->window >= 64 && c->window <= (1u << 20) &&
	       (c->window & (c->window - 1)) == 0 &&
	       c->initial_credit > 0 && c->initial_credit <= c->window &&
	       c->ack_every > 0 && c->nack_threshold > 0 &&
	       c->rto_min_ns > 0 && c->rto_min_ns <= c->rto_max_ns &&
	       c->dead_timeout_ns > 0 && c->stall_timeout_ns > 0 && c->keepalive_ns > 0;
}

static int table_init(struct xfer_table *t, uint32_t n, size_t elem)
{
	t->pool = aligned_alloc(DP_CACHE_LINE, n * elem);
	t->free = calloc(n, sizeof(*t->free));
	t->active = calloc(n, sizeof(*t->active));
	t->ids = calloc(n, sizeof(*t->ids));
	if (!t->pool || !t->free || !t->active || !t->ids)
		return -ENOMEM;
	t->elem = elem;
	memset(t->pool, 0, n * elem);
	for (uint32_t i = 0; i < n; i++)
		t->free[i] = n - 1 - i;
	t->nfree = n;
	return 0;
}

static void table_fini(struct xfer_table *t)
{
	free(t->pool);
	free(t->free);
	free(t->active);
	free(t->ids);
}

/* Per-transfer window storage lives with each pool slot from the start, so
 * starting a transfer never allocates. */
static int alloc_windows(struct dp_channel *s)
{
	uint32_t n = s->cfg.max_transfers, w = s->cfg.window;
	struct tx_xfer *tx = s->tx.pool;
	struct rx_xfer *rx = s->rx.pool;

	for (uint32_t i = 0; i < n; i++) {
		tx[i].frags = calloc(w, sizeof(*tx[i].frags));
		tx[i].rtx = calloc(2 * (size_t)w, sizeof(*tx[i].rtx));
		rx[i].bits = calloc(w / 64, sizeof(uint64_t));
		if (!tx[i].frags || !tx[i].rtx || !rx[i].bits)
			return -ENOMEM;
	}
	return 0;
}

static void free_windows(struct dp_channel *s)
{
	struct tx_xfer *tx = s->tx.pool;
	struct rx_xfer *rx = s->rx.pool;

	for (uint32_t i = 0; tx && rx && i < s->cfg.max_transfers; i++) {
		free(tx[i].frags);
		free(tx[i].rtx);
		free(rx[i].bits);
	}
}

int dp_channel_create(const struct dp_channel_config *cfg,
		      struct dp_channel **out)
{
	struct dp_channel *s;
	int rc;

	if (!cfg || !out || !config_valid(cfg))
		return -EINVAL;
	s = aligned_alloc(DP_CACHE_LINE, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->mask = cfg->window - 1;
	s->rto = s->rto_base = cfg->rto_init_ns;
	s->next_deadline = UINT64_MAX;
	s->abort_cap = 2 * cfg->max_transfers;
	s->ev_cap = 4 * cfg->max_transfers;
	s->aborts = calloc(s->abort_cap, sizeof(*s->aborts));
	s->events = calloc(s->ev_cap, sizeof(*s->events));
	rc = s->aborts && s->events ? 0 : -ENOMEM;
	if (!rc)
		rc = table_init(&s->tx, cfg->max_transfers, sizeof(struct tx_xfer));
	if (!rc)
		rc = table_init(&s->rx, cfg->max_transfers, sizeof(struct rx_xfer));
	if (!rc)
		rc = alloc_windows(s);
	if (rc) {
		dp_channel_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

void dp_channel_destroy(struct dp_channel *s)
{
	if (!s)
		return;
	free_windows(s);
	table_fini(&s->tx);
	table_fini(&s->rx);
	free(s->aborts);
	free(s->events);
	free(s);
}

/* ---- shared helpers --------------------------------------------------------- */

void dp_channel_arm(struct dp_channel *s, uint64_t when_ns)
{
	if (when_ns < s->next_deadline)
		s->next_deadline = when_ns;
}

void dp_channel_event(struct dp_channel *s, uint64_t id, enum dp_xfer_dir dir,
		   int status, uint64_t bytes, void *user)
{
	/* Cannot overflow: starting a transfer reserves room for its event. */
	struct dp_xfer_event *ev = &s->events[(s->ev_head + s->ev_count++) % s->ev_cap];

	ev->transfer_id = id;
	ev->dir = dir;
	ev->status = status;
	ev->bytes = bytes;
	ev->user = user;
	if (dir == DP_XFER_TX) {
		s->st.tx_completed += status == 0;
		s->st.tx_failed += status != 0;
		s->st.tx_timeouts += status == -ETIMEDOUT;
	} else {
		s->st.rx_completed += status == 0;
		s->st.rx_failed += status != 0;
		s->st.rx_timeouts += status == -ETIMEDOUT;
	}
	if (status != 0)
		dp_done_push(dir == DP_XFER_TX ? &s->tx_failed : &s->rx_failed, id, 0, bytes);
	/* A peer that is slow rather than gone learns it now, not when its
	 * own deadline passes (a cancel sends its ABORT itself). */
	if (status == -ETIMEDOUT)
		dp_channel_queue_abort(s, id, dir == DP_XFER_RX);
}

void dp_channel_queue_abort(struct dp_channel *s, uint64_t id, bool from_rx)
{
	/* A full queue loses the ABORT; the peer then times out instead. */
	if (s->abort_count == s->abort_cap)
		return;
	s->aborts[(s->abort_head + s->abort_count++) % s->abort_cap] =
		(struct abort_rec){.id = id, .from_rx = from_rx};
}

void *dp_xfer_find(struct xfer_table *t, uint64_t id)
{
	if (t->last_hit < t->nactive && t->ids[t->last_hit] == id)
		return t->active[t->last_hit];
	for (uint32_t i = 0; i < t->nactive; i++) {
		if (t->ids[i] == id) {
			t->last_hit = i;
			return t->active[i];
		}
	}
	return NULL;
}

int dp_xfer_begin(struct xfer_table *t, uint64_t id, uint64_t len,
	       uint32_t frag_size, uint32_t *count, void **x)
{
	*count = dp_wire_frag_count(len, frag_size);
	if (*count == 0)
		return -EMSGSIZE;
	if (dp_xfer_find(t, id))
		return -EEXIST;
	*x = dp_xfer_alloc(t, id);
	return *x ? 0 : -EBUSY;
}

void *dp_xfer_alloc(struct xfer_table *t, uint64_t id)
{
	uint8_t *x;

	if (t->nfree == 0)
		return NULL;
	x = (uint8_t *)t->pool + (size_t)t->free[--t->nfree] * t->elem;
	t->active[t->nactive] = x;
	t->ids[t->nactive++] = id;
	return x;
}

void dp_xfer_release(struct xfer_table *t, void *x)
{
	for (uint32_t i = 0; i < t->nactive; i++) {
		if (t->active[i] != x)
			continue;
		t->nactive--;
		t->active[i] = t->active[t->nactive];
		t->ids[i] = t->ids[t->nactive];
		break;
	}
	t->free[t->nfree++] =
		(uint32_t)(((uint8_t *)x - (uint8_t *)t->pool) / t->elem);
}

void dp_done_push(struct done_ring *r, uint64_t id, uint32_t count, uint64_t total)
{
	uint32_t slot = (r->head + r->count) % RECENT_CAP;

	if (r->count == RECENT_CAP) {
		slot = r->head;
		r->head = (r->head + 1) % RECENT_CAP;
	} else {
		r->count++;
	}
	r->rec[slot] = (struct done_rec){.id = id, .frag_count = count, .total_len = total};
}

struct done_rec *dp_done_find(struct done_ring *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->count; i++) {
		struct done_rec *d = &r->rec[(r->head + i) % RECENT_CAP];

		if (d->id == id)
			return d;
	}
	return NULL;
}

bool dp_channel_answer_failed(struct dp_channel *s, struct done_ring *failed, uint64_t id,
			      bool from_rx, uint64_t now_ns)
{
	struct done_rec *d = dp_done_find(failed, id);

	if (d == NULL)
		return false;
	/* A window of DATA in flight would otherwise draw a window of
	 * ABORTs; one per timeout also repeats one that was lost. */
	if (d->answered_ns == 0 || now_ns - d->answered_ns >= s->rto) {
		d->answered_ns = now_ns;
		dp_channel_queue_abort(s, id, from_rx);
		s->st.aborts_answered++;
	}
	return true;
}

static bool done_pop(struct done_ring *r, struct done_rec *d)
{
	if (r->count == 0)
		return false;
	*d = r->rec[r->head];
	r->head = (r->head + 1) % RECENT_CAP;
	r->count--;
	return true;
}

uint32_t dp_channel_hdr_room(const struct dp_channel *s)
{
	return s->cfg.encap ? DP_WIRE_FULL_HDR_LEN : DP_WIRE_HDR_LEN;
}

void dp_channel_hdr_init(const struct dp_channel *s, struct dp_wire_hdr *h,
		      enum dp_pkt_type type, uint64_t transfer_id)
{
	memset(h, 0, sizeof(*h));
	h->magic = DP_WIRE_MAGIC;
	h->version = DP_WIRE_VERSION;
	h->type = (uint8_t)type;
	h->hdr_len = DP_WIRE_HDR_LEN;
	h->session_id = s->cfg.session_id;
	h->cookie = s->cfg.cookie;
	h->transfer_id = transfer_id;
}

uint32_t dp_channel_write_hdr(struct dp_channel *s, uint8_t *pkt,
			   struct dp_wire_hdr *h, const void *body,
			   bool crc_body)
{
	uint8_t *djh = pkt;

	if (s->cfg.encap) {
		dp_wire_encap_build(pkt, &s->cfg.local, &s->cfg.peer,
				    DP_WIRE_HDR_LEN + h->payload_len, s->ip_id++);
		djh += DP_WIRE_ENCAP_LEN;
	}
	if (s->cfg.tx_crc)
		h->flags |= crc_body ? DP_WIRE_F_CRC : DP_WIRE_F_CRC_HDR;
	dp_wire_hdr_encode(h, djh);
	if (s->cfg.tx_crc)
		dp_wire_hdr_set_crc(djh, dp_wire_crc(djh, DP_WIRE_HDR_LEN, body,
						     h->payload_len, crc_body));
	return (uint32_t)(djh - pkt) + DP_WIRE_HDR_LEN;
}

/* ---- transfers ---------------------------------------------------------- */

/* Room for one more transfer's event, so dp_channel_event() never overflows. */
static int session_can_start(const struct dp_channel *s)
{
	if (s->closed)
		return -ECONNRESET;
	if (s->ev_count + s->tx.nactive + s->rx.nactive >= s->ev_cap)
		return -EBUSY;
	return 0;
}

int dp_channel_send_source(struct dp_channel *s, uint64_t transfer_id,
			   const void *buf, uint64_t len, enum dj_mem_kind mem,
			   struct dp_tx_source *src, void *user,
			   uint64_t now_ns)
{
	int rc;

	if (!s || (!buf && len) || (mem != DJ_MEM_HOST && mem != DJ_MEM_GPU))
		return -EINVAL;
	if (src && src->wrap % s->cfg.frag_size != 0)
		return -EINVAL;
	rc = session_can_start(s);
	return rc ? rc : dp_tx_start(s, transfer_id, buf, len, mem, src, user, now_ns);
}

int dp_channel_send(struct dp_channel *s, uint64_t transfer_id,
		    const void *buf, uint64_t len, enum dj_mem_kind mem,
		    void *user, uint64_t now_ns)
{
	return dp_channel_send_source(s, transfer_id, buf, len, mem, NULL, user,
				      now_ns);
}

uint32_t dp_channel_frag_size(const struct dp_channel *s)
{
	return s->cfg.frag_size;
}

int dp_channel_recv(struct dp_channel *s, uint64_t transfer_id, void *dest,
		    uint64_t len, enum dj_mem_kind mem, void *user,
		    uint64_t now_ns)
{
	int rc;

	if (!s || (!dest && len) || (mem != DJ_MEM_HOST && mem != DJ_MEM_GPU))
		return -EINVAL;
	if (mem == DJ_MEM_GPU && !s->cfg.place)
		return -ENOTSUP;
	rc = session_can_start(s);
	return rc ? rc : dp_rx_start(s, transfer_id, dest, len, mem, user, now_ns);
}

int dp_channel_cancel(struct dp_channel *s, enum dp_xfer_dir dir,
		      uint64_t transfer_id)
{
	void *x;

	if (!s)
		return -EINVAL;
	x = dp_xfer_find(dir == DP_XFER_TX ? &s->tx : &s->rx, transfer_id);
	if (!x)
		return -ENOENT;
	if (dir == DP_XFER_TX)
		dp_tx_end(s, x, -ECANCELED);
	else
		dp_rx_end(s, x, -ECANCELED);
	dp_channel_queue_abort(s, transfer_id, dir == DP_XFER_RX);
	return 0;
}

static void fail_all(struct dp_channel *s, int status)
{
	while (s->tx.nactive)
		dp_tx_end(s, s->tx.active[s->tx.nactive - 1], status);
	while (s->rx.nactive)
		dp_rx_end(s, s->rx.active[s->rx.nactive - 1], status);
}

void dp_channel_close(struct dp_channel *s)
{
	if (!s || s->closed)
		return;
	fail_all(s, -ECONNRESET);
	s->closed = true;
	s->close_pending = true;
}

/* ---- input -------------------------------------------------------------- */

static enum dp_wire_reject check_crc(const struct dp_channel *s,
				     const struct dp_wire_hdr *h,
				     const uint8_t *hdr, const uint8_t *body)
{
	bool with_body = h->flags & DP_WIRE_F_CRC;

	if (!s->cfg.rx_crc)
		return DP_REJ_NONE;
	if (!(h->flags & (DP_WIRE_F_CRC | DP_WIRE_F_CRC_HDR)))
		return DP_REJ_BAD_CRC;
	if (dp_wire_crc(hdr, h->hdr_len, body, h->payload_len, with_body) != h->crc)
		return DP_REJ_BAD_CRC;
	return DP_REJ_NONE;
}

/* Everything that does not depend on the packet type; *body is set. */
static enum dp_wire_reject authenticate(const struct dp_channel *s,
					const struct dp_rx_pkt *pkt,
					struct dp_wire_hdr *h,
					const uint8_t **body)
{
	bool body_in_hdr = pkt->payload == NULL;
	enum dp_wire_reject rej;

	if (!pkt->hdr)
		return DP_REJ_TRUNCATED;
	rej = dp_wire_hdr_decode(pkt->hdr, pkt->hdr_avail, body_in_hdr, h);
	if (rej)
		return rej;
	if (h->session_id != s->cfg.session_id)
		return DP_REJ_BAD_SESSION;
	if (h->cookie != s->cfg.cookie)
		return DP_REJ_BAD_COOKIE;
	if (!body_in_hdr && h->payload_len > pkt->payload_avail)
		return DP_REJ_TRUNCATED;
	*body = body_in_hdr ? (const uint8_t *)pkt->hdr + h->hdr_len
			    : (const uint8_t *)pkt->payload;
	return check_crc(s, h, pkt->hdr, *body);
}

static enum dp_wire_reject on_ping(struct dp_channel *s,
				   const struct dp_wire_hdr *h,
				   const uint8_t *body)
{
	uint64_t v;

	if (h->payload_len < sizeof(v))
		return DP_REJ_BAD_BODY;
	memcpy(&v, body, sizeof(v));
	if (h->type == DP_PKT_PONG) {
		/* A keep-alive's answer is a sign of life (already taken in
		 * dp_channel_input), not the answer to a probe. */
		if (v == KEEPALIVE_VALUE)
			s->st.keepalive_pongs++;
		else
			s->st.pongs++;
		return DP_REJ_NONE;
	}
	/* PONG echoes the raw bytes; a full queue drops the answer. */
	if (s->npong < PING_QUEUE_CAP)
		s->pongs[s->npong++] = v;
	return DP_REJ_NONE;
}

static enum dp_wire_reject on_abort(struct dp_channel *s,
				    const struct dp_wire_hdr *h)
{
	bool from_rx = h->flags & DP_WIRE_F_FROM_RX;
	void *x = dp_xfer_find(from_rx ? &s->tx : &s->rx, h->transfer_id);

	if (!x)
		return DP_REJ_UNKNOWN_TRANSFER;
	if (from_rx)
		dp_tx_end(s, x, -DJ_EPEER);
	else
		dp_rx_end(s, x, -DJ_EPEER);
	return DP_REJ_NONE;
}

static enum dp_wire_reject dispatch(struct dp_channel *s,
				    const struct dp_wire_hdr *h,
				    const uint8_t *body, uint64_t now_ns)
{
	switch (h->type) {
	case DP_PKT_DATA:
		return dp_rx_on_data(s, h, body, now_ns);
	case DP_PKT_ACK:
	case DP_PKT_NACK:
		return dp_tx_on_feedback(s, h, body, now_ns);
	case DP_PKT_PING:
	case DP_PKT_PONG:
		return on_ping(s, h, body);
	case DP_PKT_CLOSE:
		if (!s->closed)
			fail_all(s, -ECONNRESET);
		s->closed = true;
		return DP_REJ_NONE;
	case DP_PKT_ABORT:
		return on_abort(s, h);
	default:
		return DP_REJ_BAD_TYPE;
	}
}

int dp_channel_input(struct dp_channel *s, const struct dp_rx_pkt *pkt,
		     uint64_t now_ns, enum dp_wire_reject *reason)
{
	struct dp_wire_hdr h;
	const uint8_t *body = NULL;
	enum dp_wire_reject rej;

	s->st.rx_pkts++;
	rej = authenticate(s, pkt, &h, &body);
	if (!rej) {
		/* Whatever it carries, the peer sent it: it is alive. */
		s->last_heard_ns = now_ns;
		rej = dispatch(s, &h, body, now_ns);
	}
	if (reason)
		*reason = rej;
	if (!rej) {
		s->st.rx_ctrl += h.type != DP_PKT_DATA;
		return 0;
	}
	s->st.rx_reject[rej]++;
	return rej == DP_REJ_DUPLICATE ? -EALREADY : -EBADMSG;
}

/* ---- timers, output, events ---------------------------------------------- */

static bool ctrl_pending(const struct dp_channel *s)
{
	return s->close_pending || s->abort_count || s->npong || s->nping ||
	       s->reacks.count;
}

/* A transfer waits and the peer has been quiet for keepalive_ns: ask it
 * for a sign of life (at most one PING per interval). Returns when to look
 * again, UINT64_MAX when no transfer waits. */
static uint64_t keepalive(struct dp_channel *s, uint64_t now_ns)
{
	uint64_t due;

	if (s->tx.nactive + s->rx.nactive == 0 || s->closed)
		return UINT64_MAX;
	due = s->last_heard_ns + s->cfg.keepalive_ns;
	if (due < s->next_keepalive_ns)
		due = s->next_keepalive_ns;
	if (now_ns < due)
		return due;
	if (s->nping < PING_QUEUE_CAP) {
		s->pings[s->nping++] = KEEPALIVE_VALUE;
		s->st.keepalives++;
	}
	s->next_keepalive_ns = now_ns + s->cfg.keepalive_ns;
	return s->next_keepalive_ns;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* This side was not polled for late_ns past its deadline (a starved lcore,
 * a stopped process): that time is no silence of the peer's, which had
 * nobody to answer, nor a stall of the transfers. Shift both clocks by it,
 * ask the peer for a sign of life at once, and have every receive report
 * its state now: a sender that gave up meanwhile answers with ABORT. */
static void forgive_stall(struct dp_channel *s, uint64_t now_ns, uint64_t late_ns)
{
	s->st.stalls_forgiven++;
	s->last_heard_ns = min_u64(s->last_heard_ns + late_ns, now_ns);
	for (uint32_t i = 0; i < s->tx.nactive; i++) {
		struct tx_xfer *x = s->tx.active[i];

		x->last_progress_ns = min_u64(x->last_progress_ns + late_ns, now_ns);
	}
	for (uint32_t i = 0; i < s->rx.nactive; i++) {
		struct rx_xfer *x = s->rx.active[i];

		x->last_progress_ns = min_u64(x->last_progress_ns + late_ns, now_ns);
		x->ack_deadline = now_ns;
	}
	if (s->nping < PING_QUEUE_CAP) {
		s->pings[s->nping++] = KEEPALIVE_VALUE;
		s->st.keepalives++;
	}
	s->next_keepalive_ns = now_ns + s->cfg.keepalive_ns;
}

/* Forgive the time by which this poll comes late, where it is a stall. */
static void stall_check(struct dp_channel *s, uint64_t now_ns)
{
	if (now_ns > s->next_deadline && now_ns - s->next_deadline > s->cfg.keepalive_ns &&
	    s->tx.nactive + s->rx.nactive != 0 && !s->closed) {
		forgive_stall(s, now_ns, now_ns - s->next_deadline);
		s->next_deadline = now_ns;
	}
}

uint64_t dp_channel_poll(struct dp_channel *s, uint64_t now_ns)
{
	uint64_t next;

	stall_check(s, now_ns);
	if (now_ns < s->next_deadline)
		return ctrl_pending(s) ? now_ns : s->next_deadline;
	next = min_u64(dp_tx_timers(s, now_ns), dp_rx_timers(s, now_ns));
	s->next_deadline = next = min_u64(next, keepalive(s, now_ns));
	return ctrl_pending(s) ? now_ns : next;
}

uint64_t dp_channel_deadline(struct dp_channel *s, uint64_t now_ns)
{
	/* A stall is measured against the deadline as it stood; then the
	 * timers are read again from now. */
	stall_check(s, now_ns);
	s->next_deadline = min_u64(s->next_deadline, now_ns);
	return dp_channel_poll(s, now_ns);
}

void dp_channel_ping(struct dp_channel *s, uint64_t value)
{
	if (s->nping < PING_QUEUE_CAP)
		s->pings[s->nping++] = value;
}

/* A bodiless or 8-byte-body control packet. */
static void write_simple(struct dp_channel *s, struct dp_ctrl_pkt *pkt,
			 enum dp_pkt_type type, uint64_t id, uint16_t flags,
			 const uint64_t *value)
{
	struct dp_wire_hdr h;
	uint32_t room = dp_channel_hdr_room(s);

	dp_channel_hdr_init(s, &h, type, id);
	h.flags = flags;
	h.payload_len = value ? sizeof(*value) : 0;
	if (value)
		memcpy(pkt->buf + room, value, sizeof(*value));
	pkt->len = dp_channel_write_hdr(s, pkt->buf, &h, pkt->buf + room, true) +
		   h.payload_len;
}

static unsigned session_ctrl(struct dp_channel *s, struct dp_ctrl_pkt *pkts,
			     unsigned n)
{
	unsigned k = 0;
	struct done_rec d;

	if (s->close_pending && k < n) {
		write_simple(s, &pkts[k++], DP_PKT_CLOSE, 0, 0, NULL);
		s->close_pending = false;
	}
	for (; s->abort_count && k < n; s->abort_count--) {
		struct abort_rec *a = &s->aborts[s->abort_head];

		write_simple(s, &pkts[k++], DP_PKT_ABORT, a->id,
			     a->from_rx ? DP_WIRE_F_FROM_RX : 0, NULL);
		s->abort_head = (s->abort_head + 1) % s->abort_cap;
	}
	for (; s->npong && k < n; s->npong--)
		write_simple(s, &pkts[k++], DP_PKT_PONG, 0, 0,
			     &s->pongs[s->npong - 1]);
	for (; s->nping && k < n; s->nping--)
		write_simple(s, &pkts[k++], DP_PKT_PING, 0, 0,
			     &s->pings[s->nping - 1]);
	while (k < n && done_pop(&s->reacks, &d))
		dp_rx_write_final_ack(s, &d, &pkts[k++]);
	return k;
}

unsigned dp_channel_ctrl_burst(struct dp_channel *s, uint64_t now_ns,
			       struct dp_ctrl_pkt *pkts, unsigned n)
{
	unsigned k;

	for (unsigned i = 0; i < n; i++)
		if (!pkts[i].buf || pkts[i].cap < DP_WIRE_CTRL_MAX)
			return 0;
	k = session_ctrl(s, pkts, n);
	return k + dp_rx_feedback(s, now_ns, pkts + k, n - k);
}

unsigned dp_channel_events(struct dp_channel *s, struct dp_xfer_event *ev,
			   unsigned n)
{
	unsigned k = 0;

	for (; k < n && s->ev_count; k++, s->ev_count--) {
		ev[k] = s->events[s->ev_head];
		s->ev_head = (s->ev_head + 1) % s->ev_cap;
	}
	return k;
}

void dp_channel_stats(const struct dp_channel *s, struct dp_proto_stats *out)
{
	*out = s->st;
	out->srtt_ns = s->have_rtt ? s->srtt : 0;
	out->rttvar_ns = s->rttvar;
	out->rto_ns = s->rto;
}

uint64_t dp_proto_stats_rejected(const struct dp_proto_stats *st)
{
	uint64_t sum = 0;

	for (int r = DP_REJ_NONE + 1; r < DP_REJ_COUNT; r++)
		if (r != DP_REJ_DUPLICATE)
			sum += st->rx_reject[r];
	return sum;
}
