/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sim.h"

#define HOLD_CAP (1u << 20)
#define BURST 32u

struct sim_pkt {
	uint32_t len;
	uint8_t data[];
};

uint8_t *sim_pattern(uint64_t len, uint32_t salt)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t x = salt * 0x9e3779b97f4a7c15ull + 1;

	CU_ASSERT_FATAL(p != NULL);
	for (uint64_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

void sim_config(struct dp_channel_config *cfg, uint32_t frag_size)
{
	dp_channel_config_init(cfg);
	cfg->session_id = 7;
	cfg->cookie = 0x0123456789abcdefull;
	cfg->frag_size = frag_size;
	cfg->max_transfers = 16;
	cfg->window = 1024;
}

static int dir_init(struct sim_dir *d, const struct dp_impair_config *imp)
{
	struct dp_impair_config none = {0};
	int rc = dp_impair_create(imp ? imp : &none, &d->impair);

	return rc ? rc : dp_hold_queue_create(HOLD_CAP, &d->queue);
}

int sim_init(struct sim *sim, const struct dp_channel_config *cfg0,
	     const struct dp_channel_config *cfg1,
	     const struct dp_impair_config *imp0,
	     const struct dp_impair_config *imp1)
{
	int rc;

	memset(sim, 0, sizeof(*sim));
	sim->now = 1000;
	sim->latency_ns = 5000;
	sim->step_ns = 1000;
	sim->encap[0] = cfg0->encap;
	sim->encap[1] = cfg1->encap;
	rc = dp_channel_create(cfg0, &sim->ep[0]);
	if (!rc)
		rc = dp_channel_create(cfg1, &sim->ep[1]);
	if (!rc)
		rc = dir_init(&sim->dir[0], imp0);
	if (!rc)
		rc = dir_init(&sim->dir[1], imp1);
	return rc;
}

void sim_fini(struct sim *sim)
{
	for (int i = 0; i < 2; i++) {
		void *pkt;

		while (sim->dir[i].queue &&
		       dp_hold_queue_pop_due(sim->dir[i].queue, UINT64_MAX, &pkt, 1))
			free(pkt);
		dp_hold_queue_destroy(sim->dir[i].queue);
		dp_impair_destroy(sim->dir[i].impair);
		dp_channel_destroy(sim->ep[i]);
	}
}

static void link_push(struct sim *sim, struct sim_dir *d, struct sim_pkt *p,
		      uint64_t release)
{
	if (dp_hold_queue_push(d->queue, p, release))
		free(p);
}

/* Serialise through the bottleneck; false when its queue is full. */
static bool bottleneck_admit(struct sim *sim, struct sim_dir *d, uint64_t *release)
{
	uint64_t service = 1000 / d->rate_per_us;
	uint64_t start = d->busy_until > sim->now ? d->busy_until : sim->now;

	if (start - sim->now >= (uint64_t)d->queue_pkts * service) {
		d->tail_drops++;
		return false;
	}
	d->busy_until = start + service;
	*release = d->busy_until + sim->latency_ns;
	return true;
}

/* Impair one packet and queue it for delivery. Takes ownership of p. */
static void link_send(struct sim *sim, int from, struct sim_pkt *p)
{
	struct sim_dir *d = &sim->dir[from];
	struct dp_impair_verdict v;
	uint64_t release = sim->now + sim->latency_ns;

	d->sent++;
	dp_impair_decide(d->impair, sim->now, p->len, &v);
	if (d->cut || (v.actions & DP_IMPAIR_DROP)) {
		free(p);
		return;
	}
	if (d->rate_per_us && !bottleneck_admit(sim, d, &release)) {
		free(p);
		return;
	}
	dp_impair_corrupt(&v, p->data, p->len);
	if (v.actions & DP_IMPAIR_HOLD)
		release = v.release_ns + sim->latency_ns;
	if (v.actions & DP_IMPAIR_DUP) {
		struct sim_pkt *copy = malloc(sizeof(*p) + p->len);

		memcpy(copy, p, sizeof(*p) + p->len);
		link_push(sim, d, copy, release);
	}
	link_push(sim, d, p, release);
}

static struct sim_pkt *pkt_new(uint32_t len)
{
	struct sim_pkt *p = malloc(sizeof(*p) + len);

	CU_ASSERT_FATAL(p != NULL);
	p->len = len;
	return p;
}

static unsigned emit(struct sim *sim, int i)
{
	struct dp_channel *s = sim->ep[i];
	struct dp_frag_desc d[BURST];
	uint8_t ctrl_buf[BURST][DP_WIRE_CTRL_MAX];
	struct dp_ctrl_pkt ctrl[BURST];
	unsigned n = dp_channel_tx_burst(s, sim->now, d, BURST), m;

	for (unsigned k = 0; k < n; k++) {
		struct sim_pkt *p = pkt_new(d[k].hdr_len + d[k].payload_len);

		memcpy(p->data, d[k].hdr, d[k].hdr_len);
		if (d[k].payload_len)
			memcpy(p->data + d[k].hdr_len, d[k].payload, d[k].payload_len);
		link_send(sim, i, p);
	}
	for (unsigned k = 0; k < BURST; k++)
		ctrl[k] = (struct dp_ctrl_pkt){ctrl_buf[k], DP_WIRE_CTRL_MAX, 0};
	m = dp_channel_ctrl_burst(s, sim->now, ctrl, BURST);
	for (unsigned k = 0; k < m; k++) {
		struct sim_pkt *p = pkt_new(ctrl[k].len);

		CU_ASSERT(ctrl[k].len <= DP_WIRE_CTRL_MAX);
		memcpy(p->data, ctrl[k].buf, ctrl[k].len);
		link_send(sim, i, p);
	}
	return n + m;
}

/* Hand a packet to a session the way an engine would: strip the UDP
 * encapsulation when configured, sometimes in two buffers. */
static void deliver(struct sim *sim, int to, struct sim_pkt *p, bool encap)
{
	struct dp_rx_pkt rx = {.hdr = p->data, .hdr_avail = p->len};
	uint8_t *hdr_copy = NULL;

	if (encap) {
		struct dp_wire_encap e;

		if (dp_wire_encap_parse(p->data, p->len, true, &e) != DP_REJ_NONE)
			return; /* a corrupted encapsulation: the NIC/engine drops it */
		rx.hdr = p->data + e.payload_off;
		rx.hdr_avail = e.payload_len;
	}
	if (sim->split && (sim->steps & 1) && rx.hdr_avail > DP_WIRE_HDR_LEN) {
		hdr_copy = malloc(DP_WIRE_HDR_LEN);
		memcpy(hdr_copy, rx.hdr, DP_WIRE_HDR_LEN);
		rx.payload = (const uint8_t *)rx.hdr + DP_WIRE_HDR_LEN;
		rx.payload_avail = rx.hdr_avail - DP_WIRE_HDR_LEN;
		rx.hdr = hdr_copy;
		rx.hdr_avail = DP_WIRE_HDR_LEN;
	}
	dp_channel_input(sim->ep[to], &rx, sim->now, NULL);
	free(hdr_copy);
}

static unsigned absorb(struct sim *sim, int from, bool encap)
{
	void *pkts[BURST];
	unsigned n, total = 0;

	if (sim->stalled[1 - from])
		return 0;
	do {
		n = dp_hold_queue_pop_due(sim->dir[from].queue, sim->now, pkts, BURST);
		for (unsigned k = 0; k < n; k++) {
			if (!sim->frozen[1 - from])
				deliver(sim, 1 - from, pkts[k], encap);
			sim->dir[from].delivered++;
			free(pkts[k]);
		}
		total += n;
	} while (n == BURST);
	return total;
}

static void collect(struct sim *sim, int i)
{
	struct dp_xfer_event ev[16];
	unsigned n;

	while ((n = dp_channel_events(sim->ep[i], ev, 16)) > 0) {
		for (unsigned k = 0; k < n && sim->nev[i] < SIM_MAX_EVENTS; k++)
			sim->ev[i][sim->nev[i]++] = ev[k];
	}
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

bool sim_run(struct sim *sim, const unsigned want[2], uint64_t limit_ns)
{
	while (sim->now <= limit_ns) {
		uint64_t next = UINT64_MAX;
		unsigned busy = 0;

		sim->steps++;
		if (sim->hook)
			sim->hook(sim, sim->hook_arg);
		for (int i = 0; i < 2; i++)
			busy += absorb(sim, i, sim->encap[i]);
		for (int i = 0; i < 2; i++) {
			if (sim->frozen[i] || sim->stalled[i])
				continue;
			next = min_u64(next, dp_channel_poll(sim->ep[i], sim->now));
			busy += emit(sim, i);
			collect(sim, i);
		}
		if (sim->nev[0] >= want[0] && sim->nev[1] >= want[1])
			return true;
		for (int i = 0; i < 2; i++)
			next = min_u64(next, dp_hold_queue_next(sim->dir[i].queue));
		if (sim->hook)
			next = min_u64(next, sim->now + sim->hook_every_ns);
		if (busy || next <= sim->now)
			sim->now += sim->step_ns;
		else if (next == UINT64_MAX)
			return false;
		else
			sim->now = next;
	}
	return false;
}

const struct dp_xfer_event *sim_event(const struct sim *sim, int i,
				      enum dp_xfer_dir dir, uint64_t id)
{
	const struct dp_xfer_event *found = NULL;

	for (unsigned k = 0; k < sim->nev[i]; k++) {
		const struct dp_xfer_event *e = &sim->ev[i][k];

		if (e->dir != dir || e->transfer_id != id)
			continue;
		CU_ASSERT_PTR_NULL(found);
		found = e;
	}
	return found;
}
