/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdbool.h>

#include <rte_ether.h>
#include <rte_ip.h>

#include "dataplane/proto/wire.h"
#include "txframe.h"

void dp_txframe_owner_init(struct rte_mbuf_ext_shared_info *shinfo,
			   rte_mbuf_extbuf_free_callback_t free_cb, void *opaque)
{
	shinfo->free_cb = free_cb;
	shinfo->fcb_opaque = opaque;
	rte_mbuf_ext_refcnt_set(shinfo, 1);
}

void dp_txframe_owner_put(struct rte_mbuf_ext_shared_info *shinfo)
{
	if (rte_mbuf_ext_refcnt_update(shinfo, -1) == 0)
		shinfo->free_cb(NULL, shinfo->fcb_opaque);
}

static struct rte_mbuf *payload_attach(const struct dp_port_queue *q, const void *payload,
				       uint32_t len, struct rte_mbuf_ext_shared_info *shinfo)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(q->ext_pool);
	void *addr = (void *)(uintptr_t)payload;

	if (unlikely(m == NULL))
		return NULL;
	/* EAL runs with --iova-mode=va (dp_eal_init), where IOVA is the
	 * virtual address; a NIC must have the buffer DMA-mapped. */
	rte_mbuf_ext_refcnt_update(shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, addr, (rte_iova_t)(uintptr_t)addr, (uint16_t)len, shinfo);
	m->data_len = (uint16_t)len;
	m->pkt_len = len;
	return m;
}

struct rte_mbuf *dp_txframe_build(const struct dp_port_queue *q, unsigned int flags,
				  const void *hdr, uint16_t hdr_len,
				  const void *payload, uint32_t len,
				  struct rte_mbuf_ext_shared_info *shinfo)
{
	bool no_cpu = flags & DP_TXFRAME_NO_CPU;
	bool attach = shinfo != NULL && (flags & DP_TXFRAME_CHAIN) && len != 0 &&
		      (len > DP_TXFRAME_COPY_MAX || no_cpu);
	uint32_t inline_len = attach ? 0 : len;
	/* Copied payloads too big for a header mbuf take a frame-sized one. */
	struct rte_mempool *pool = hdr_len + inline_len <= DP_TXFRAME_HDR_ROOM ?
				   q->hdr_pool : q->rx_pool;
	struct rte_mbuf *head = rte_pktmbuf_alloc(pool);
	char *p;

	if (unlikely(head == NULL))
		return NULL;
	if (unlikely(hdr_len + inline_len > rte_pktmbuf_tailroom(head) ||
		     (no_cpu && inline_len != 0)))
		goto fail;
	p = rte_pktmbuf_append(head, (uint16_t)(hdr_len + inline_len));
	rte_memcpy(p, hdr, hdr_len);
	if (inline_len != 0)
		rte_memcpy(p + hdr_len, payload, inline_len);
	if (attach) {
		struct rte_mbuf *seg = payload_attach(q, payload, len, shinfo);

		if (unlikely(seg == NULL))
			goto fail;
		head->next = seg;
		head->nb_segs = 2;
		head->pkt_len += len;
	}
	return head;
fail:
	rte_pktmbuf_free(head);
	return NULL;
}

void dp_txframe_ip_cksum_offload(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
							  DP_WIRE_ETH_LEN);

	ip->hdr_checksum = 0;
	m->l2_len = DP_WIRE_ETH_LEN;
	m->l3_len = DP_WIRE_IPV4_LEN;
	m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
}
