/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPLANE_TXFRAME_H
#define DJINN_DATAPLANE_TXFRAME_H

/*
 * Zero-copy frames: headers copied into a small mbuf, the payload attached
 * behind it as an external buffer (rte_pktmbuf_attach_extbuf), so host
 * payloads are never copied by the CPU on transmit. The payload's owner
 * learns through its rte_mbuf_ext_shared_info when the driver let go.
 */
#include <rte_mbuf.h>

#include "port.h"

/* Payloads this short are cheaper to copy next to the headers. */
#define DP_TXFRAME_COPY_MAX 256

struct dp_port_queue;

/* Start a payload owner's shared info: refcnt 1 held by the owner, so
 * free_cb runs only after dp_txframe_owner_put() and the last mbuf is
 * freed. */
void dp_txframe_owner_init(struct rte_mbuf_ext_shared_info *shinfo,
			   rte_mbuf_extbuf_free_callback_t free_cb, void *opaque);
/* Drop the owner's reference; free_cb runs now if no mbuf holds the payload. */
void dp_txframe_owner_put(struct rte_mbuf_ext_shared_info *shinfo);

/* dp_txframe_build() flags. */
enum {
	DP_TXFRAME_CHAIN = 1u << 0,   /* the port transmits chained mbufs */
	DP_TXFRAME_NO_CPU = 1u << 1,  /* payload the CPU must not read (GPU) */
};

/*
 * One frame: hdr_len bytes of hdr, then len bytes of payload (may be 0).
 * Payloads above DP_TXFRAME_COPY_MAX (any size with DP_TXFRAME_NO_CPU) are
 * attached, not copied, when shinfo is given and the port chains mbufs; the
 * payload must then stay valid until shinfo's free_cb runs. NULL when a
 * mempool is empty, or for a NO_CPU payload the port cannot chain.
 */
struct rte_mbuf *dp_txframe_build(const struct dp_port_queue *q, unsigned int flags,
				  const void *hdr, uint16_t hdr_len,
				  const void *payload, uint32_t len,
				  struct rte_mbuf_ext_shared_info *shinfo);

/* Ask for IPv4 header checksum offload on a frame built by
 * dp_wire_encap_build(): the NIC then writes the checksum. */
void dp_txframe_ip_cksum_offload(struct rte_mbuf *m);

#endif
