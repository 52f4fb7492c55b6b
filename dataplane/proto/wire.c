/* SPDX-License-Identifier: BSD-3-Clause */
/* Djinn header and ACK/NACK body encoding; see dataplane/proto/wire.h. */
#include <errno.h>
#include <string.h>

#include "dataplane/proto/wire.h"
#include "wire_bytes.h"

#define CRC_FIELD_OFF 36u

static const char *const reject_names[DP_REJ_COUNT] = {
	[DP_REJ_NONE] = "none",
	[DP_REJ_TRUNCATED] = "truncated",
	[DP_REJ_BAD_MAGIC] = "bad_magic",
	[DP_REJ_BAD_VERSION] = "bad_version",
	[DP_REJ_BAD_TYPE] = "bad_type",
	[DP_REJ_BAD_SESSION] = "bad_session",
	[DP_REJ_BAD_COOKIE] = "bad_cookie",
	[DP_REJ_BAD_CRC] = "bad_crc",
	[DP_REJ_BAD_HDR_LEN] = "bad_hdr_len",
	[DP_REJ_UNKNOWN_TRANSFER] = "unknown_transfer",
	[DP_REJ_TOTAL_MISMATCH] = "total_mismatch",
	[DP_REJ_OUT_OF_RANGE] = "out_of_range",
	[DP_REJ_INDEX_MISMATCH] = "index_mismatch",
	[DP_REJ_BEYOND_WINDOW] = "beyond_window",
	[DP_REJ_DUPLICATE] = "duplicate",
	[DP_REJ_BAD_BODY] = "bad_body",
	[DP_REJ_NOT_IPV4_UDP] = "not_ipv4_udp",
	[DP_REJ_BAD_IP_CSUM] = "bad_ip_csum",
	[DP_REJ_WRONG_DEST] = "wrong_dest",
};

const char *dp_wire_reject_name(enum dp_wire_reject reason)
{
	if ((unsigned)reason >= DP_REJ_COUNT)
		return "?";
	return reject_names[reason];
}

const char *dp_pkt_type_name(unsigned type)
{
	static const char *const names[DP_PKT_TYPE_MAX] = {
		[DP_PKT_DATA] = "DATA", [DP_PKT_ACK] = "ACK",
		[DP_PKT_NACK] = "NACK", [DP_PKT_PING] = "PING",
		[DP_PKT_PONG] = "PONG", [DP_PKT_CLOSE] = "CLOSE",
		[DP_PKT_ABORT] = "ABORT",
	};

	if (type == 0 || type >= DP_PKT_TYPE_MAX)
		return "?";
	return names[type];
}

void dp_wire_hdr_encode(const struct dp_wire_hdr *h, void *buf)
{
	uint8_t *p = buf;

	put_be16(p + 0, h->magic);
	p[2] = h->version;
	p[3] = h->type;
	put_be16(p + 4, h->flags);
	put_be16(p + 6, h->hdr_len);
	put_be32(p + 8, h->session_id);
	put_be32(p + 12, h->payload_len);
	put_be64(p + 16, h->cookie);
	put_be64(p + 24, h->transfer_id);
	put_be32(p + 32, h->frag_index);
	put_be32(p + CRC_FIELD_OFF, h->crc);
	put_be64(p + 40, h->offset);
	put_be64(p + 48, h->total_len);
}

enum dp_wire_reject dp_wire_hdr_decode(const void *buf, size_t avail,
				       bool body_in_buf, struct dp_wire_hdr *h)
{
	const uint8_t *p = buf;

	if (avail < DP_WIRE_HDR_LEN)
		return DP_REJ_TRUNCATED;
	h->magic = get_be16(p);
	if (h->magic != DP_WIRE_MAGIC)
		return DP_REJ_BAD_MAGIC;
	h->version = p[2];
	if (h->version != DP_WIRE_VERSION)
		return DP_REJ_BAD_VERSION;
	h->type = p[3];
	h->flags = get_be16(p + 4);
	h->hdr_len = get_be16(p + 6);
	h->session_id = get_be32(p + 8);
	h->payload_len = get_be32(p + 12);
	h->cookie = get_be64(p + 16);
	h->transfer_id = get_be64(p + 24);
	h->frag_index = get_be32(p + 32);
	h->crc = get_be32(p + CRC_FIELD_OFF);
	h->offset = get_be64(p + 40);
	h->total_len = get_be64(p + 48);
	if (h->hdr_len < DP_WIRE_HDR_LEN || (h->hdr_len & 3))
		return DP_REJ_BAD_HDR_LEN;
	if (h->hdr_len > avail)
		return DP_REJ_TRUNCATED;
	if (body_in_buf && h->payload_len > avail - h->hdr_len)
		return DP_REJ_TRUNCATED;
	if (h->type == 0 || h->type >= DP_PKT_TYPE_MAX)
		return DP_REJ_BAD_TYPE;
	return DP_REJ_NONE;
}

uint32_t dp_wire_crc(const void *hdr, size_t hdr_len, const void *body,
		     size_t body_len, bool with_body)
{
	uint8_t copy[DP_WIRE_HDR_LEN];
	uint32_t crc;

	/* One pass over a copy with the crc field zeroed; a longer header of
	 * a later revision continues after it. */
	memcpy(copy, hdr, sizeof(copy));
	memset(copy + CRC_FIELD_OFF, 0, 4);
	crc = dp_crc32c(0, copy, sizeof(copy));
	if (hdr_len > sizeof(copy))
		crc = dp_crc32c(crc, (const uint8_t *)hdr + sizeof(copy),
				hdr_len - sizeof(copy));
	if (with_body && body_len)
		crc = dp_crc32c(crc, body, body_len);
	return crc;
}

void dp_wire_hdr_set_crc(void *hdr, uint32_t crc)
{
	put_be32((uint8_t *)hdr + CRC_FIELD_OFF, crc);
}

int dp_wire_peek_session(const void *buf, size_t avail, uint32_t *session_id)
{
	const uint8_t *p = buf;

	if (avail < DP_WIRE_HDR_LEN || get_be16(p) != DP_WIRE_MAGIC)
		return -EINVAL;
	*session_id = get_be32(p + 8);
	return 0;
}

size_t dp_wire_ranges_encode(const struct dp_wire_ranges *r, void *buf)
{
	uint8_t *p = buf;
	unsigned n = r->nranges < DP_WIRE_MAX_RANGES ? r->nranges : DP_WIRE_MAX_RANGES;

	put_be32(p, r->cum);
	put_be32(p + 4, r->credit);
	put_be32(p + 8, r->trigger);
	put_be16(p + 12, (uint16_t)n);
	put_be16(p + 14, 0);
	p += DP_WIRE_RANGES_FIXED_LEN;
	for (unsigned i = 0; i < n; i++, p += 8) {
		put_be32(p, r->range[i].first);
		put_be32(p + 4, r->range[i].end);
	}
	return DP_WIRE_RANGES_FIXED_LEN + 8u * n;
}

enum dp_wire_reject dp_wire_ranges_decode(const void *buf, size_t len,
					  struct dp_wire_ranges *r)
{
	const uint8_t *p = buf;

	if (len < DP_WIRE_RANGES_FIXED_LEN)
		return DP_REJ_BAD_BODY;
	r->cum = get_be32(p);
	r->credit = get_be32(p + 4);
	r->trigger = get_be32(p + 8);
	r->nranges = get_be16(p + 12);
	if (r->nranges > DP_WIRE_MAX_RANGES ||
	    len < DP_WIRE_RANGES_FIXED_LEN + 8u * r->nranges)
		return DP_REJ_BAD_BODY;
	p += DP_WIRE_RANGES_FIXED_LEN;
	for (unsigned i = 0; i < r->nranges; i++, p += 8) {
		r->range[i].first = get_be32(p);
		r->range[i].end = get_be32(p + 4);
		if (r->range[i].first >= r->range[i].end)
			return DP_REJ_BAD_BODY;
	}
	return DP_REJ_NONE;
}

uint32_t dp_wire_frag_size(uint32_t mtu)
{
	if (mtu < 128 || mtu > 65535)
		return 0;
	return mtu - DP_WIRE_IPV4_LEN - DP_WIRE_UDP_LEN - DP_WIRE_HDR_LEN;
}

uint32_t dp_wire_frag_count(uint64_t total_len, uint32_t frag_size)
{
	uint64_t n;

	if (frag_size == 0)
		return 0;
	if (total_len == 0)
		return 1;
	n = total_len / frag_size + (total_len % frag_size != 0);
	return n > UINT32_MAX ? 0 : (uint32_t)n;
}
