/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which receive path a port and a GPU allow, and the GPUDirect set-up:
 * payload mbufs in GPU memory (NVIDIA l2fwd-nv's sequence) with Rx buffer
 * split, headers in host mbufs.
 */
/* This file implements (and calls) experimental API of gpu/gpu.h. */
#define DJG_ALLOW_EXPERIMENTAL
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_gpudev.h>
#include <rte_mbuf.h>
#include <rte_memory.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/gpu.h"
#include "gpu_internal.h"

const char *djg_rx_path_name(enum djg_rx_path path)
{
	switch (path) {
	case DJG_RX_AUTO:
		return "auto";
	case DJG_RX_HOST:
		return "host";
	case DJG_RX_STAGED:
		return "staged";
	case DJG_RX_GPUDIRECT:
		return "gpudirect";
	}
	return "?";
}

int djg_rx_caps_get(uint16_t port_id, int16_t dev_id, struct djg_rx_caps *caps)
{
	struct rte_eth_dev_info info;
	const char *bus;
	int rc;

	if (caps == NULL)
		return -EINVAL;
	rc = rte_eth_dev_info_get(port_id, &info);
	if (rc != 0)
		return rc;
	memset(caps, 0, sizeof(*caps));
	caps->gpu = dev_id != DJG_HOST && djg_count() > 0 && rte_gpu_is_valid(dev_id);
	caps->rx_offload_capa = info.rx_offload_capa;
	caps->rx_seg_max_nseg = info.rx_seg_capa.max_nseg;
	caps->rx_seg_multi_pools = info.rx_seg_capa.multi_pools;
	/* Virtual devices (memif, ring, af_packet) copy in software: no DMA. */
	bus = info.device != NULL ? rte_bus_name(rte_dev_bus(info.device)) : NULL;
	caps->port_dma_map = bus != NULL && (strcmp(bus, "pci") == 0 || strcmp(bus, "auxiliary") == 0);
	return 0;
}

/* NULL when GPUDirect is possible, else what is missing. */
static const char *gpudirect_missing(const struct djg_rx_caps *caps)
{
	if (!(caps->rx_offload_capa & RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT))
		return "the port lacks RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT";
	if (caps->rx_seg_max_nseg < 2 || !caps->rx_seg_multi_pools)
		return "the port cannot split a packet over two mempools";
	if (!caps->port_dma_map)
		return "the port is no bus device that can DMA into GPU memory";
	return NULL;
}

static void say(char *why, size_t len, const char *fmt, const char *what)
{
	if (why != NULL && len > 0)
		snprintf(why, len, fmt, what);
}

int djg_rx_path_choose(const struct djg_rx_caps *caps, enum djg_rx_path want,
			  enum djg_rx_path *path, char *why, size_t why_len)
{
	const char *missing;

	if (caps == NULL || path == NULL || want > DJG_RX_GPUDIRECT)
		return -EINVAL;
	if (want == DJG_RX_HOST || (want == DJG_RX_AUTO && !caps->gpu)) {
		*path = DJG_RX_HOST;
		say(why, why_len, "%s", caps->gpu ? "host memory requested" : "no usable GPU");
		return 0;
	}
	if (!caps->gpu) {
		say(why, why_len, "the %s path needs a GPU and none is usable",
		    djg_rx_path_name(want));
		return -DJ_ENOGPU;
	}
	missing = gpudirect_missing(caps);
	if (want == DJG_RX_GPUDIRECT && missing != NULL) {
		say(why, why_len, "GPUDirect refused: %s", missing);
		return -ENOTSUP;
	}
	if (want == DJG_RX_STAGED || missing != NULL) {
		*path = DJG_RX_STAGED;
		if (missing != NULL)
			say(why, why_len, "staged through host mbufs: %s", missing);
		else
			say(why, why_len, "%s", "staged path requested");
		return 0;
	}
	*path = DJG_RX_GPUDIRECT;
	say(why, why_len, "%s", "GPUDirect: payloads written by the NIC into GPU memory");
	return 0;
}

struct djg_direct_pool {
	int16_t dev_id;
	struct rte_device *dev;
	void *gpu_mem;
	size_t len;
	int extmem_registered;
	int dma_mapped;
	struct rte_mempool *mp;
};

static int direct_pool_map(struct djg_direct_pool *p, unsigned int n_mbufs,
			   uint16_t elt_size, const char *name, int socket)
{
	struct rte_pktmbuf_extmem ext;

	p->gpu_mem = rte_gpu_mem_alloc(p->dev_id, p->len, DJG_PAGE_SIZE);
	if (p->gpu_mem == NULL)
		return -ENOMEM;
	/* GPU memory has no IOVA DPDK knows: the NIC maps it by VA (iova=va). */
	if (rte_extmem_register(p->gpu_mem, p->len, NULL, 0, DJG_PAGE_SIZE) != 0)
		return -rte_errno;
	p->extmem_registered = 1;
	if (rte_dev_dma_map(p->dev, p->gpu_mem, RTE_BAD_IOVA, p->len) != 0)
		return -rte_errno;
	p->dma_mapped = 1;
	ext = (struct rte_pktmbuf_extmem){
		.buf_ptr = p->gpu_mem,
		.buf_iova = RTE_BAD_IOVA,
		.buf_len = p->len,
		.elt_size = elt_size,
	};
	p->mp = rte_pktmbuf_pool_create_extbuf(name, n_mbufs, n_mbufs >= 4096 ? 256 : 0, 0,
					       elt_size, socket, &ext, 1);
	return p->mp != NULL ? 0 : -rte_errno;
}

int djg_direct_pool_create(int16_t dev_id, uint16_t port_id, const char *name,
			      unsigned int n_mbufs, uint16_t data_room,
			      struct djg_direct_pool **pool)
{
	struct djg_rx_caps caps;
	struct rte_eth_dev_info info;
	enum djg_rx_path path;
	struct djg_direct_pool *p;
	char why[128];
	uint16_t elt_size = RTE_ALIGN_CEIL(data_room, RTE_CACHE_LINE_SIZE);
	int rc;

	if (pool == NULL || name == NULL || n_mbufs == 0 || data_room == 0 || elt_size < data_room)
		return -EINVAL;
	rc = djg_rx_caps_get(port_id, dev_id, &caps);
	if (rc == 0)
		rc = djg_rx_path_choose(&caps, DJG_RX_GPUDIRECT, &path, why, sizeof(why));
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "port %u: %s", port_id,
		       rc == -ENODEV ? "no such port" : why);
		return rc;
	}
	rte_eth_dev_info_get(port_id, &info);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->dev_id = dev_id;
	p->dev = info.device;
	p->len = RTE_ALIGN_CEIL((size_t)n_mbufs * elt_size, DJG_PAGE_SIZE);
	rc = direct_pool_map(p, n_mbufs, elt_size, name, rte_eth_dev_socket_id(port_id));
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, DJG_LOG, "port %u: GPUDirect mbuf pool: %s", port_id,
		       dj_strerror(rc));
		djg_direct_pool_destroy(p);
		return rc;
	}
	DJC_LOG(DJ_LOG_NOTICE, DJG_LOG, "port %u: GPUDirect pool %s, %u mbufs of %u B in GPU %d",
	       port_id, name, n_mbufs, elt_size, dev_id);
	*pool = p;
	return 0;
}

void djg_direct_pool_destroy(struct djg_direct_pool *p)
{
	if (p == NULL)
		return;
	rte_mempool_free(p->mp);
	if (p->dma_mapped)
		rte_dev_dma_unmap(p->dev, p->gpu_mem, RTE_BAD_IOVA, p->len);
	if (p->extmem_registered)
		rte_extmem_unregister(p->gpu_mem, p->len);
	if (p->gpu_mem != NULL)
		djg_gpudev_release(p->dev_id, p->gpu_mem, 0);
	free(p);
}

struct rte_mempool *djg_direct_pool_mempool(struct djg_direct_pool *p)
{
	return p->mp;
}

int djg_direct_rxconf(struct rte_mempool *hdr_pool, uint16_t hdr_len,
			 struct rte_mempool *payload_pool, union rte_eth_rxseg *segs,
			 struct rte_eth_rxconf *rxconf)
{
	if (hdr_pool == NULL || payload_pool == NULL || segs == NULL || rxconf == NULL ||
	    hdr_len == 0 || hdr_len > rte_pktmbuf_data_room_size(hdr_pool) - RTE_PKTMBUF_HEADROOM)
		return -EINVAL;
	memset(segs, 0, 2 * sizeof(*segs));
	segs[0].split.mp = hdr_pool;
	segs[0].split.length = hdr_len;
	segs[1].split.mp = payload_pool;
	segs[1].split.length = 0; /* the rest of the packet, up to the data room */
	rxconf->rx_seg = segs;
	rxconf->rx_nseg = 2;
	rxconf->offloads |= RTE_ETH_RX_OFFLOAD_BUFFER_SPLIT;
	return 0;
}
