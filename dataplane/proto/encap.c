/* SPDX-License-Identifier: BSD-3-Clause */
/* Ethernet / IPv4 / UDP framing shared by the engine, the benches and tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "dataplane/proto/wire.h"
#include "wire_bytes.h"

#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_VLAN 0x8100u
#define IPPROTO_UDP_NUM 17u
#define IPV4_DF 0x4000u
#define IPV4_MF 0x2000u
#define IPV4_FRAG_OFF_MASK 0x1fffu
#define IPV4_TTL 64u

uint16_t dp_wire_ipv4_csum(const void *ip_hdr, size_t len)
{
	const uint8_t *p = ip_hdr;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get_be16(p + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int dp_wire_encap_build(void *buf, const struct dp_netaddr *src,
			const struct dp_netaddr *dst, size_t udp_payload_len,
			uint16_t ip_id)
{
	uint8_t *eth = buf;
	uint8_t *ip = eth + DP_WIRE_ETH_LEN;
	uint8_t *udp = ip + DP_WIRE_IPV4_LEN;
	size_t ip_len = DP_WIRE_IPV4_LEN + DP_WIRE_UDP_LEN + udp_payload_len;

	if (ip_len > 65535)
		return -EMSGSIZE;
	memcpy(eth, dst->mac, 6);
	memcpy(eth + 6, src->mac, 6);
	put_be16(eth + 12, ETHERTYPE_IPV4);
	ip[0] = 0x45;
	ip[1] = 0;
	put_be16(ip + 2, (uint16_t)ip_len);
	put_be16(ip + 4, ip_id);
	put_be16(ip + 6, IPV4_DF);
	ip[8] = IPV4_TTL;
	ip[9] = IPPROTO_UDP_NUM;
	put_be16(ip + 10, 0);
	put_be32(ip + 12, src->ipv4);
	put_be32(ip + 16, dst->ipv4);
	put_be16(ip + 10, dp_wire_ipv4_csum(ip, DP_WIRE_IPV4_LEN));
	put_be16(udp, src->port);
	put_be16(udp + 2, dst->port);
	put_be16(udp + 4, (uint16_t)(DP_WIRE_UDP_LEN + udp_payload_len));
	put_be16(udp + 6, 0);
	return 0;
}

/* Skip the Ethernet header and at most one 802.1Q tag; 0 if not IPv4. */
static size_t eth_payload_offset(const uint8_t *f, size_t len)
{
	uint16_t type = get_be16(f + 12);
	size_t off = DP_WIRE_ETH_LEN;

	if (type == ETHERTYPE_VLAN) {
		if (len < off + 4)
			return 0;
		type = get_be16(f + 16);
		off += 4;
	}
	return type == ETHERTYPE_IPV4 ? off : 0;
}

enum dp_wire_reject dp_wire_encap_parse(const void *frame, size_t len,
					bool verify_ip_csum,
					struct dp_wire_encap *out)
{
	const uint8_t *f = frame;
	const uint8_t *ip, *udp;
	size_t ip_off, ihl, ip_len, udp_len;

	if (len < DP_WIRE_ENCAP_LEN)
		return DP_REJ_TRUNCATED;
	ip_off = eth_payload_offset(f, len);
	if (ip_off == 0)
		return DP_REJ_NOT_IPV4_UDP;
	ip = f + ip_off;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < DP_WIRE_IPV4_LEN)
		return DP_REJ_NOT_IPV4_UDP;
	ip_len = get_be16(ip + 2);
	if (len - ip_off < ihl + DP_WIRE_UDP_LEN || ip_len > len - ip_off ||
	    ip_len < ihl + DP_WIRE_UDP_LEN)
		return DP_REJ_TRUNCATED;
	if (ip[9] != IPPROTO_UDP_NUM ||
	    (get_be16(ip + 6) & (IPV4_MF | IPV4_FRAG_OFF_MASK)))
		return DP_REJ_NOT_IPV4_UDP;
	if (verify_ip_csum && dp_wire_ipv4_csum(ip, ihl) != 0)
		return DP_REJ_BAD_IP_CSUM;
	udp = ip + ihl;
	udp_len = get_be16(udp + 4);
	if (udp_len < DP_WIRE_UDP_LEN || udp_len > ip_len - ihl)
		return DP_REJ_TRUNCATED;
	memcpy(out->src.mac, f + 6, 6);
	memcpy(out->dst.mac, f, 6);
	out->src.ipv4 = get_be32(ip + 12);
	out->dst.ipv4 = get_be32(ip + 16);
	out->src.port = get_be16(udp);
	out->dst.port = get_be16(udp + 2);
	out->payload_off = (uint32_t)(ip_off + ihl + DP_WIRE_UDP_LEN);
	out->payload_len = (uint32_t)(udp_len - DP_WIRE_UDP_LEN);
	return DP_REJ_NONE;
}

int dp_netaddr_parse(const char *text, struct dp_netaddr *ep)
{
	unsigned m[6];
	char ip[32], tail;
	unsigned long port = DP_WIRE_UDP_PORT;
	struct in_addr addr;
	const char *comma;
	int n;

	if (!text || !ep)
		return -EINVAL;
	n = sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3],
		   &m[4], &m[5], &tail);
	if (n != 7 || tail != ',')
		return -EINVAL;
	comma = strchr(text, ',') + 1;
	n = sscanf(comma, "%31[0-9.]%c", ip, &tail);
	if (n < 1 || (n == 2 && tail != ',') || inet_pton(AF_INET, ip, &addr) != 1)
		return -EINVAL;
	if (n == 2) {
		char *end;

		comma = strchr(comma, ',') + 1;
		port = strtoul(comma, &end, 10);
		if (end == comma || *end != '\0' || port == 0 || port > 65535)
			return -EINVAL;
	} else if (comma[strlen(ip)] != '\0') {
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		ep->mac[i] = (uint8_t)m[i];
	ep->ipv4 = ntohl(addr.s_addr);
	ep->port = (uint16_t)port;
	return 0;
}
