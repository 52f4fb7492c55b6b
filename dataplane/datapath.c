/* SPDX-License-Identifier: BSD-3-Clause */
/* The engine behind the control plane's abstract data path. */
#include <errno.h>
#include <string.h>

#include "dataplane/dataplane.h"
#include "engine.h"

static int dp_local_caps(void *ctx, struct dp_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->dpdk = 1;
	dp_engine_endpoint(ctx, &caps->endpoint);
	return 0;
}

static int dp_session_open(void *ctx, uint64_t session_id, uint64_t cookie,
			   const struct dp_endpoint *peer)
{
	/* A session without a peer cannot send: the engine needs one. */
	return peer != NULL ? dp_engine_session_open(ctx, session_id, cookie, peer) : -EINVAL;
}

static void dp_session_close(void *ctx, uint64_t cookie)
{
	dp_engine_session_close(ctx, cookie);
}

static int dp_probe(void *ctx, const struct dp_endpoint *peer, uint64_t cookie,
		    uint32_t timeout_ms, uint64_t *rtt_ns)
{
	(void)peer; /* the session knows its peer */
	return dp_engine_probe(ctx, cookie, timeout_ms, rtt_ns);
}

static int dp_expect(void *ctx, uint64_t cookie, uint64_t xfer_id, void *dst, size_t len,
		     enum dj_mem_kind mem)
{
	return dp_engine_expect(ctx, cookie, xfer_id, dst, len, mem);
}

static int dp_wait(void *ctx, uint64_t cookie, uint64_t xfer_id, uint32_t timeout_ms)
{
	return dp_engine_wait(ctx, cookie, xfer_id, timeout_ms);
}

static int dp_cancel(void *ctx, uint64_t cookie, uint64_t xfer_id)
{
	return dp_engine_cancel(ctx, cookie, xfer_id);
}

static int dp_send(void *ctx, const struct dp_endpoint *peer, uint64_t cookie,
		   uint64_t xfer_id, const void *src, size_t len, enum dj_mem_kind mem,
		   uint32_t timeout_ms)
{
	(void)peer;
	return dp_engine_send(ctx, cookie, xfer_id, src, len, mem, timeout_ms);
}

static int dp_send_parts(void *ctx, const struct dp_send_part *parts, unsigned int n,
			 uint64_t xfer_id, uint32_t timeout_ms)
{
	return dp_engine_send_parts(ctx, parts, n, xfer_id, timeout_ms);
}

static int dp_pinned(void *ctx, uint64_t cookie, uint64_t xfer_id)
{
	return dp_send_pinned(ctx, cookie, xfer_id);
}

static int dp_stats(void *ctx, struct dp_datapath_stats *out)
{
	struct dp_engine_stats st;
	struct dp_proto_stats ps;

	dp_engine_get_stats(ctx, &st, &ps);
	memset(out, 0, sizeof(*out));
	out->tx_bytes = ps.tx_data_bytes;
	out->rx_bytes = ps.rx_data_bytes;
	out->transfers_ok = ps.tx_completed + ps.rx_completed;
	out->transfers_failed = ps.tx_failed + ps.rx_failed;
	out->timeouts = ps.tx_timeouts + ps.rx_timeouts;
	out->retransmits = st.retransmits;
	return 0;
}

static const struct dj_datapath_ops dataplane_ops = {
	.local_caps = dp_local_caps,
	.session_open = dp_session_open,
	.session_close = dp_session_close,
	.probe = dp_probe,
	.expect = dp_expect,
	.wait = dp_wait,
	.cancel = dp_cancel,
	.send = dp_send,
	.stats = dp_stats,
	.send_pinned = dp_pinned,
	.send_parts = dp_send_parts,
};

void dp_engine_datapath(struct dp_engine *dp, struct dj_datapath *out)
{
	out->ops = &dataplane_ops;
	out->ctx = dp;
}
