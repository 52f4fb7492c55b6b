/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "port.h"
#include "txframe.h"

#define DEFAULT_DESC 1024
#define DEFAULT_FRAME 1514
#define POOL_CACHE 256
#define MEMIF_START_NS (10ull * 1000 * 1000 * 1000)
#define RX_POOL_BYTES (128u << 20)
#define LINK_KICK_NS (500ull * 1000 * 1000)
#define HDR_DATA_ROOM (RTE_PKTMBUF_HEADROOM + DP_TXFRAME_HDR_ROOM)

/* The memif device argument "key=value" is there. */
static bool memif_arg(const struct rte_eth_dev_info *info, const char *kv)
{
	const struct rte_devargs *da = info->device ? rte_dev_devargs(info->device) : NULL;

	return strcmp(info->driver_name, "net_memif") == 0 && da != NULL && da->args != NULL &&
	       strstr(da->args, kv) != NULL;
}

static bool memif_zero_copy(const struct rte_eth_dev_info *info)
{
	return memif_arg(info, "zero-copy=yes");
}

/* The PMD's default role is client. */
static bool memif_client(const struct rte_eth_dev_info *info)
{
	return strcmp(info->driver_name, "net_memif") == 0 && !memif_arg(info, "role=server") &&
	       !memif_arg(info, "role=master");
}

static void fill_caps(uint16_t port_id, const struct rte_eth_dev_info *info,
		      struct dp_port_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	caps->tx_ipv4_cksum = !!(info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
	caps->tx_udp_cksum = !!(info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
	caps->rx_ipv4_cksum = !!(info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM);
	caps->rx_udp_cksum = !!(info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
	caps->rss = !!(info->flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_UDP);
	caps->multi_seg = !!(info->tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	caps->tx_extbuf = caps->multi_seg && !memif_zero_copy(info);
	caps->memif_client = memif_client(info);
	caps->max_queues = RTE_MIN(info->max_rx_queues, info->max_tx_queues);
	caps->max_rx_pktlen = info->max_rx_pktlen;
	snprintf(caps->driver, sizeof(caps->driver), "%s", info->driver_name);
	(void)port_id;
}

static void fill_defaults(struct dp_port_config *cfg)
{
	if (cfg->nb_queues == 0)
		cfg->nb_queues = 1;
	if (cfg->nb_rxd == 0)
		cfg->nb_rxd = DEFAULT_DESC;
	if (cfg->nb_txd == 0)
		cfg->nb_txd = DEFAULT_DESC;
	if (cfg->frame_size == 0)
		cfg->frame_size = DEFAULT_FRAME;
	/* Enough to refill every descriptor a few times over, but jumbo
	 * buffers (up to 64 KiB) within RX_POOL_BYTES. */
	if (cfg->nb_mbufs == 0) {
		uint32_t fit = RX_POOL_BYTES / cfg->frame_size;

		cfg->nb_mbufs = RTE_MIN(4u * cfg->nb_rxd + 2048, fit);
		cfg->nb_mbufs = RTE_MAX(cfg->nb_mbufs, (uint32_t)cfg->nb_rxd + 512);
	}
}

static struct rte_mempool *pool_create(const struct dp_port *port, const char *what,
				       uint16_t q, uint32_t n, uint16_t data_room)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	struct rte_mempool *mp;

	snprintf(name, sizeof(name), "dj%u_%s%u", port->cfg.port_id, what, q);
	mp = rte_pktmbuf_pool_create(name, n, POOL_CACHE, 0, data_room, port->socket);
	if (mp == NULL)
		djc_log(DJ_LOG_ERR, "port", "mempool %s (%u x %u B) on socket %d: %s", name, n,
		       data_room, port->socket, rte_strerror(rte_errno));
	return mp;
}

static int queue_pools_create(struct dp_port *port, uint16_t q)
{
	struct dp_port_queue *pq = &port->q[q];
	uint32_t tx_n = 4u * port->cfg.nb_txd + 2048;

	/* At least the default data room: af_packet wants its whole frame
	 * slot (2016 B) to fit whatever the MTU. */
	uint16_t room = RTE_MAX(port->cfg.frame_size, (uint16_t)RTE_MBUF_DEFAULT_DATAROOM);

	pq->rx_pool = pool_create(port, "rx", q, port->cfg.nb_mbufs,
				  (uint16_t)(room + RTE_PKTMBUF_HEADROOM));
	pq->hdr_pool = pool_create(port, "hd", q, tx_n, HDR_DATA_ROOM);
	pq->ext_pool = pool_create(port, "ex", q, tx_n, 0);
	if (pq->rx_pool == NULL || pq->hdr_pool == NULL || pq->ext_pool == NULL)
		return -ENOMEM;
	return 0;
}

static void port_conf_fill(const struct dp_port *port, const struct rte_eth_dev_info *info,
			   struct rte_eth_conf *conf)
{
	const struct dp_port_caps *c = &port->caps;
	uint32_t mtu = port->cfg.frame_size - RTE_ETHER_HDR_LEN;

	memset(conf, 0, sizeof(*conf));
	/* Drivers that ignore the MTU (memif, af_packet) report a 1518-byte
	 * maximum yet carry bigger frames; ask only for what validates. */
	if (info->max_rx_pktlen > RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN)
		mtu = RTE_MIN(mtu, info->max_rx_pktlen - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN);
	conf->rxmode.mtu = RTE_MIN(mtu, (uint32_t)info->max_mtu);
	if (c->tx_ipv4_cksum)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	if (c->tx_udp_cksum)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	if (c->multi_seg)
		conf->txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	if (c->rx_ipv4_cksum)
		conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	if (c->rx_udp_cksum)
		conf->rxmode.offloads |= RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
	if (c->rss && port->cfg.nb_queues > 1) {
		conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf->rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_NONFRAG_IPV4_UDP &
						    info->flow_type_rss_offloads;
	}
}

static int queues_setup(struct dp_port *port, const struct rte_eth_dev_info *info,
			const struct rte_eth_conf *conf)
{
	uint16_t pid = port->cfg.port_id;

	for (uint16_t q = 0; q < port->cfg.nb_queues; q++) {
		struct rte_eth_rxconf rxc = info->default_rxconf;
		struct rte_eth_txconf txc = info->default_txconf;
		int rc = queue_pools_create(port, q);

		if (rc != 0)
			return rc;
		rxc.offloads = conf->rxmode.offloads;
		txc.offloads = conf->txmode.offloads;
		rc = rte_eth_rx_queue_setup(pid, q, port->cfg.nb_rxd, port->socket, &rxc,
					    port->q[q].rx_pool);
		if (rc == 0)
			rc = rte_eth_tx_queue_setup(pid, q, port->cfg.nb_txd, port->socket, &txc);
		if (rc != 0) {
			djc_log(DJ_LOG_ERR, "port", "port %u queue %u setup: %s", pid, q,
			       rte_strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void jumbo_mtu_set(struct dp_port *port)
{
	uint16_t mtu = port->cfg.frame_size - RTE_ETHER_HDR_LEN;
	int rc;

	if (mtu <= RTE_ETHER_MTU)
		return;
	rc = rte_eth_dev_set_mtu(port->cfg.port_id, mtu);
	if (rc != 0)
		DJC_LOG(DJ_LOG_INFO, "port", "port %u (%s): MTU %u not settable (%s); "
		       "sending %u-byte frames anyway (software ports ignore the MTU)",
		       port->cfg.port_id, port->caps.driver, mtu, rte_strerror(-rc),
		       port->cfg.frame_size);
}

static int port_configure(struct dp_port *port)
{
	uint16_t pid = port->cfg.port_id;
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	int rc;

	rc = rte_eth_dev_info_get(pid, &info);
	if (rc != 0)
		return rc;
	fill_caps(pid, &info, &port->caps);
	if (port->cfg.nb_queues > port->caps.max_queues || port->cfg.nb_queues > DP_PORT_MAX_QUEUES) {
		djc_log(DJ_LOG_ERR, "port", "port %u (%s): %u queues asked, %u possible", pid,
		       port->caps.driver, port->cfg.nb_queues, port->caps.max_queues);
		return -EINVAL;
	}
	port_conf_fill(port, &info, &conf);
	conf.intr_conf.rxq = port->cfg.rx_intr != 0;
	rc = rte_eth_dev_configure(pid, port->cfg.nb_queues, port->cfg.nb_queues, &conf);
	if (rc != 0 && conf.intr_conf.rxq) {
		djc_log(DJ_LOG_NOTICE, "port", "port %u (%s): no rx interrupts (%s); "
		       "idle lcores nap instead", pid, port->caps.driver, rte_strerror(-rc));
		conf.intr_conf.rxq = 0;
		rc = rte_eth_dev_configure(pid, port->cfg.nb_queues, port->cfg.nb_queues, &conf);
	}
	port->caps.rx_intr = conf.intr_conf.rxq;
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &port->cfg.nb_rxd, &port->cfg.nb_txd);
	if (rc != 0) {
		djc_log(DJ_LOG_ERR, "port", "port %u configure: %s", pid, rte_strerror(-rc));
		return rc;
	}
	jumbo_mtu_set(port);
	return queues_setup(port, &info, &conf);
}

/* A memif client whose server socket does not exist yet fails to start:
 * give the server MEMIF_START_NS to appear. */
static int port_start(struct dp_port *port)
{
	uint64_t deadline = djc_time_ns() + MEMIF_START_NS;
	struct timespec pause = {.tv_nsec = 50000000};
	int rc, logged = 0;

	while ((rc = rte_eth_dev_start(port->cfg.port_id)) != 0 &&
	       strcmp(port->caps.driver, "net_memif") == 0 && djc_time_ns() < deadline) {
		if (!logged++)
			djc_log(DJ_LOG_NOTICE, "port", "port %u: memif peer not there yet, retrying",
			       port->cfg.port_id);
		nanosleep(&pause, NULL);
	}
	return rc;
}

int dp_port_create(const struct dp_port_config *cfg, struct dp_port **out)
{
	struct dp_port *port;
	int rc;

	if (cfg == NULL || out == NULL || !rte_eth_dev_is_valid_port(cfg->port_id))
		return -EINVAL;
	if (cfg->frame_size != 0 &&
	    (cfg->frame_size < 128 || cfg->frame_size > UINT16_MAX - RTE_PKTMBUF_HEADROOM))
		return -EINVAL;
	port = rte_zmalloc("dp_port", sizeof(*port), RTE_CACHE_LINE_SIZE);
	if (port == NULL)
		return -ENOMEM;
	port->cfg = *cfg;
	fill_defaults(&port->cfg);
	port->socket = rte_eth_dev_socket_id(cfg->port_id);
	if (port->socket < 0)
		port->socket = (int)rte_socket_id();
	rc = port_configure(port);
	if (rc == 0 && port->cfg.promiscuous)
		rte_eth_promiscuous_enable(cfg->port_id);
	if (rc == 0)
		rc = port_start(port);
	if (rc != 0) {
		dp_port_destroy(port);
		return rc < 0 ? rc : -EIO;
	}
	port->started = 1;
	djc_log(DJ_LOG_INFO, "port", "port %u (%s) up: %u queue pairs, frames up to %u B, "
	       "socket %d, tx cksum ip %d udp %d, rx cksum ip %d udp %d, rss %d, zero-copy tx %d",
	       cfg->port_id, port->caps.driver, port->cfg.nb_queues, port->cfg.frame_size,
	       port->socket, port->caps.tx_ipv4_cksum, port->caps.tx_udp_cksum,
	       port->caps.rx_ipv4_cksum, port->caps.rx_udp_cksum, port->caps.rss,
	       port->caps.tx_extbuf);
	*out = port;
	return 0;
}

void dp_port_destroy(struct dp_port *port)
{
	struct rte_flow_error err;

	if (port == NULL)
		return;
	for (uint16_t q = 0; q < DP_PORT_MAX_QUEUES; q++)
		if (port->flows[q] != NULL)
			rte_flow_destroy(port->cfg.port_id, port->flows[q], &err);
	/* Stopped, not closed: the ethdev belongs to EAL (or whoever made it)
	 * and may be configured again. */
	if (port->started)
		rte_eth_dev_stop(port->cfg.port_id);
	for (uint16_t q = 0; q < DP_PORT_MAX_QUEUES; q++) {
		rte_mempool_free(port->q[q].rx_pool);
		rte_mempool_free(port->q[q].hdr_pool);
		rte_mempool_free(port->q[q].ext_pool);
	}
	rte_free(port);
}

const struct dp_port_caps *dp_port_get_caps(const struct dp_port *port)
{
	return &port->caps;
}

const struct dp_port_config *dp_port_get_config(const struct dp_port *port)
{
	return &port->cfg;
}

int dp_port_steer_udp(struct dp_port *port, uint16_t udp_port, uint16_t queue)
{
	struct rte_flow_attr attr = {.ingress = 1};
	struct rte_flow_item_udp udp_spec = {.hdr.dst_port = rte_cpu_to_be_16(udp_port)};
	struct rte_flow_item_udp udp_mask = {.hdr.dst_port = RTE_BE16(0xffff)};
	struct rte_flow_item pattern[] = {
		{.type = RTE_FLOW_ITEM_TYPE_ETH},
		{.type = RTE_FLOW_ITEM_TYPE_IPV4},
		{.type = RTE_FLOW_ITEM_TYPE_UDP, .spec = &udp_spec, .mask = &udp_mask},
		{.type = RTE_FLOW_ITEM_TYPE_END},
	};
	struct rte_flow_action_queue to_queue = {.index = queue};
	struct rte_flow_action actions[] = {
		{.type = RTE_FLOW_ACTION_TYPE_QUEUE, .conf = &to_queue},
		{.type = RTE_FLOW_ACTION_TYPE_END},
	};
	struct rte_flow_error err = {0};
	struct rte_flow *flow;

	if (port == NULL || queue >= port->cfg.nb_queues)
		return -EINVAL;
	if (rte_flow_validate(port->cfg.port_id, &attr, pattern, actions, &err) != 0)
		goto unsupported;
	flow = rte_flow_create(port->cfg.port_id, &attr, pattern, actions, &err);
	if (flow == NULL)
		goto unsupported;
	if (port->flows[queue] != NULL)
		rte_flow_destroy(port->cfg.port_id, port->flows[queue], &err);
	port->flows[queue] = flow;
	port->caps.flow = 1;
	return 0;
unsupported:
	DJC_LOG(DJ_LOG_INFO, "port", "port %u (%s): no rte_flow steering of UDP %u to queue %u "
	       "(%s); dispatching in software", port->cfg.port_id, port->caps.driver, udp_port,
	       queue, err.message ? err.message : "unsupported");
	return -ENOTSUP;
}

int dp_port_find(const char *name, uint16_t *port_id)
{
	if (name == NULL || port_id == NULL)
		return -EINVAL;
	return rte_eth_dev_get_port_by_name(name, port_id) == 0 ? 0 : -ENODEV;
}

int dp_port_restart(struct dp_port *port)
{
	int rc;

	if (port->started)
		rte_eth_dev_stop(port->cfg.port_id);
	rc = rte_eth_dev_start(port->cfg.port_id);
	port->started = rc == 0;
	return rc;
}

bool dp_port_link_up(const struct dp_port *port)
{
	struct rte_eth_link link;

	return rte_eth_link_get_nowait(port->cfg.port_id, &link) == 0 &&
	       link.link_status == RTE_ETH_LINK_UP;
}

int dp_port_wait_link(struct dp_port *port, uint64_t timeout_ns, bool restart)
{
	uint64_t start = djc_time_ns(), next_kick = start + LINK_KICK_NS;
	struct timespec pause = {.tv_nsec = 1000000};

	for (;;) {
		uint64_t now = djc_time_ns();

		if (dp_port_link_up(port))
			return 0;
		if (now - start >= timeout_ns)
			return -ETIMEDOUT;
		/* A memif client that connected before its server was started
		 * is turned away once and never tries again. */
		if (restart && now >= next_kick && port->caps.memif_client) {
			dp_port_restart(port);
			next_kick = now + LINK_KICK_NS;
		}
		nanosleep(&pause, NULL);
	}
}

static const char *const drop_names[DP_DROP_MAX] = {
	[DP_DROP_NOT_DJINN] = "not_djinn",
	[DP_DROP_REJECTED] = "rejected",
	[DP_DROP_NO_MBUF] = "no_mbuf",
	[DP_DROP_TX_FULL] = "tx_full",
	[DP_DROP_IMPAIR] = "impair",
};

const char *dp_drop_name(enum dp_drop reason)
{
	return (unsigned int)reason < DP_DROP_MAX ? drop_names[reason] : "unknown";
}

void dp_engine_stats_add(struct dp_engine_stats *to, const struct dp_engine_stats *from)
{
	to->rx_packets += from->rx_packets;
	to->rx_bytes += from->rx_bytes;
	to->tx_packets += from->tx_packets;
	to->tx_bytes += from->tx_bytes;
	to->retransmits += from->retransmits;
	for (int i = 0; i < DP_DROP_MAX; i++)
		to->drops[i] += from->drops[i];
	to->idle_naps += from->idle_naps;
	to->idle_sleeps += from->idle_sleeps;
	to->idle_rx_wakes += from->idle_rx_wakes;
	to->loop_ns += from->loop_ns;
	to->busy_ns += from->busy_ns;
}

struct rte_mbuf *dp_port_frame_build(const struct dp_port *port, uint16_t queue,
				     const void *hdr, uint16_t hdr_len,
				     const void *payload, uint32_t len,
				     struct rte_mbuf_ext_shared_info *shinfo)
{
	return dp_txframe_build(&port->q[queue], port->caps.tx_extbuf ? DP_TXFRAME_CHAIN : 0,
				hdr, hdr_len, payload,
				len, shinfo);
}
