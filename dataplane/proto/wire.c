/* SPDX-License-Identifier: BSD-3-Clause */
/* Djinn header and ACK/NACK body encoding; see include/djinn/wire.h. */
#include <errno.h>
#include <string.h>

#include "djinn/wire.h"
#include "wire_bytes.h"

#define CRC_FIELD_OFF 36u

static const char *const reject_names[DJ_REJ_COUNT] = {
	[DJ_REJ_NONE] = "none",
	[DJ_REJ_TRUNCATED] = "truncated",
	[DJ_REJ_BAD_MAGIC] = "bad_magic",
	[DJ_REJ_BAD_VERSION] = "bad_version",
	[DJ_REJ_BAD_TYPE] = "bad_type",
	[DJ_REJ_BAD_SESSION] = "bad_session",
	[DJ_REJ_BAD_COOKIE] = "bad_cookie",
	[DJ_REJ_BAD_CRC] = "bad_crc",
	[DJ_REJ_BAD_HDR_LEN] = "bad_hdr_len",
	[DJ_REJ_UNKNOWN_TRANSFER] = "unknown_transfer",
	[DJ_REJ_TOTAL_MISMATCH] = "total_mismatch",
	[DJ_REJ_OUT_OF_RANGE] = "out_of_range",
	[DJ_REJ_INDEX_MISMATCH] = "index_mismatch",
	[DJ_REJ_BEYOND_WINDOW] = "beyond_window",
	[DJ_REJ_DUPLICATE] = "duplicate",
	[DJ_REJ_BAD_BODY] = "bad_body",
	[DJ_REJ_NOT_IPV4_UDP] = "not_ipv4_udp",
	[DJ_REJ_BAD_IP_CSUM] = "bad_ip_csum",
	[DJ_REJ_WRONG_DEST] = "wrong_dest",
};

const char *dj_wire_reject_name(enum dj_wire_reject reason)
{
	if ((unsigned)reason >= DJ_REJ_COUNT)
		return "?";
	return reject_names[reason];
}

const char *dj_pkt_type_name(unsigned type)
{
	static const char *const names[DJ_PKT_TYPE_MAX] = {
		[DJ_PKT_DATA] = "DATA", [DJ_PKT_ACK] = "ACK",
		[DJ_PKT_NACK] = "NACK", [DJ_PKT_PING] = "PING",
		[DJ_PKT_PONG] = "PONG", [DJ_PKT_CLOSE] = "CLOSE",
		[DJ_PKT_ABORT] = "ABORT",
	};

	if (type == 0 || type >= DJ_PKT_TYPE_MAX)
		return "?";
	return names[type];
}

void dj_wire_hdr_encode(const struct dj_wire_hdr *h, void *buf)
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
	put_be32(p + 24, h->transfer_id);
	put_be32(p + 28, h->frag_index);
	put_be32(p + 32, h->frag_count);
	put_be32(p + CRC_FIELD_OFF, h->crc);
	put_be64(p + 40, h->offset);
	put_be64(p + 48, h->total_len);
}

enum dj_wire_reject dj_wire_hdr_decode(const void *buf, size_t avail,
				       bool body_in_buf, struct dj_wire_hdr *h)
{
	const uint8_t *p = buf;

	if (avail < DJ_WIRE_HDR_LEN)
		return DJ_REJ_TRUNCATED;
	h->magic = get_be16(p);
	if (h->magic != DJ_WIRE_MAGIC)
		return DJ_REJ_BAD_MAGIC;
	h->version = p[2];
	if (h->version != DJ_WIRE_VERSION)
		return DJ_REJ_BAD_VERSION;
	h->type = p[3];
	h->flags = get_be16(p + 4);
	h->hdr_len = get_be16(p + 6);
	h->session_id = get_be32(p + 8);
	h->payload_len = get_be32(p + 12);
	h->cookie = get_be64(p + 16);
	h->transfer_id = get_be32(p + 24);
	h->frag_index = get_be32(p + 28);
	h->frag_count = get_be32(p + 32);
	h->crc = get_be32(p + CRC_FIELD_OFF);
	h->offset = get_be64(p + 40);
	h->total_len = get_be64(p + 48);
	if (h->hdr_len < DJ_WIRE_HDR_LEN || (h->hdr_len & 3))
		return DJ_REJ_BAD_HDR_LEN;
	if (h->hdr_len > avail)
		return DJ_REJ_TRUNCATED;
	if (body_in_buf && h->payload_len > avail - h->hdr_len)
		return DJ_REJ_TRUNCATED;
	if (h->type == 0 || h->type >= DJ_PKT_TYPE_MAX)
		return DJ_REJ_BAD_TYPE;
	return DJ_REJ_NONE;
}

uint32_t dj_wire_crc(const void *hdr, size_t hdr_len, const void *body,
		     size_t body_len, bool with_body)
{
	uint8_t copy[DJ_WIRE_HDR_LEN];
	uint32_t crc;

	/* One pass over a copy with the crc field zeroed; a longer header of
	 * a later revision continues after it. */
	memcpy(copy, hdr, sizeof(copy));
	memset(copy + CRC_FIELD_OFF, 0, 4);
	crc = dj_crc32c(0, copy, sizeof(copy));
	if (hdr_len > sizeof(copy))
		crc = dj_crc32c(crc, (const uint8_t *)hdr + sizeof(copy),
				hdr_len - sizeof(copy));
	if (with_body && body_len)
		crc = dj_crc32c(crc, body, body_len);
	return crc;
}

void dj_wire_hdr_set_crc(void *hdr, uint32_t crc)
{
	put_be32((uint8_t *)hdr + CRC_FIELD_OFF, crc);
}

int dj_wire_peek_session(const void *buf, size_t avail, uint32_t *session_id)
{
	const uint8_t *p = buf;

	if (avail < DJ_WIRE_HDR_LEN || get_be16(p) != DJ_WIRE_MAGIC)
		return -EINVAL;
	*session_id = get_be32(p + 8);
	return 0;
}

size_t dj_wire_ranges_encode(const struct dj_wire_ranges *r, void *buf)
{
	uint8_t *p = buf;
	unsigned n = r->nranges < DJ_WIRE_MAX_RANGES ? r->nranges : DJ_WIRE_MAX_RANGES;

	put_be32(p, r->cum);
	put_be32(p + 4, r->credit);
	put_be32(p + 8, r->trigger);
	put_be16(p + 12, (uint16_t)n);
	put_be16(p + 14, 0);
	p += DJ_WIRE_RANGES_FIXED_LEN;
	for (unsigned i = 0; i < n; i++, p += 8) {
		put_be32(p, r->range[i].first);
		put_be32(p + 4, r->range[i].end);
	}
	return DJ_WIRE_RANGES_FIXED_LEN + 8u * n;
}

enum dj_wire_reject dj_wire_ranges_decode(const void *buf, size_t len,
					  struct dj_wire_ranges *r)
{
	const uint8_t *p = buf;

	if (len < DJ_WIRE_RANGES_FIXED_LEN)
		return DJ_REJ_BAD_BODY;
	r->cum = get_be32(p);
	r->credit = get_be32(p + 4);
	r->trigger = get_be32(p + 8);
	r->nranges = get_be16(p + 12);
	if (r->nranges > DJ_WIRE_MAX_RANGES ||
	    len < DJ_WIRE_RANGES_FIXED_LEN + 8u * r->nranges)
		return DJ_REJ_BAD_BODY;
	p += DJ_WIRE_RANGES_FIXED_LEN;
	for (unsigned i = 0; i < r->nranges; i++, p += 8) {
		r->range[i].first = get_be32(p);
		r->range[i].end = get_be32(p + 4);
		if (r->range[i].first >= r->range[i].end)
			return DJ_REJ_BAD_BODY;
	}
	return DJ_REJ_NONE;
}

uint32_t dj_wire_frag_size(uint32_t mtu)
{
	if (mtu < 128 || mtu > 65535)
		return 0;
	return mtu - DJ_WIRE_IPV4_LEN - DJ_WIRE_UDP_LEN - DJ_WIRE_HDR_LEN;
}

uint32_t dj_wire_frag_count(uint64_t total_len, uint32_t frag_size)
{
	uint64_t n;

	if (frag_size == 0)
		return 0;
	if (total_len == 0)
		return 1;
	n = total_len / frag_size + (total_len % frag_size != 0);
	return n > UINT32_MAX ? 0 : (uint32_t)n;
}
