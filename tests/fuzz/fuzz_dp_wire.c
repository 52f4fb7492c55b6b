/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: data-plane frame decoding without a channel. The input is
 * a mode byte and a frame: the Ethernet/IPv4/UDP encapsulation is parsed
 * (mode bit 0; bit 1 verifies the IPv4 checksum), then the Djinn header
 * (bit 2: the body follows in the same buffer), then an ACK/NACK body.
 * Whatever a decoder accepts must encode back to the same bytes, and the
 * encapsulation built from what was parsed must parse again to the same
 * addresses: a decoder that accepts what the encoder cannot produce, or
 * reads fields from the wrong place, fails here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_dp_wire: invariant broken: %s\n", what);
		abort();
	}
}

/* Field by field: the struct has padding. */
static int same_addr(const struct dp_netaddr *a, const struct dp_netaddr *b)
{
	return memcmp(a->mac, b->mac, 6) == 0 && a->ipv4 == b->ipv4 && a->port == b->port;
}

static void encap_roundtrip(const struct dp_wire_encap *e)
{
	uint8_t buf[DP_WIRE_ENCAP_LEN + 16];
	struct dp_wire_encap again;
	size_t n = e->payload_len < 16 ? e->payload_len : 16;

	/* A frame of the same addresses with up to 16 payload bytes. */
	check(dp_wire_encap_build(buf, &e->src, &e->dst, n, 7) == 0, "encap build");
	memset(buf + DP_WIRE_ENCAP_LEN, 0, n);
	check(dp_wire_encap_parse(buf, DP_WIRE_ENCAP_LEN + n, true, &again) == DP_REJ_NONE,
	      "a built encapsulation does not parse");
	check(same_addr(&again.src, &e->src) && same_addr(&again.dst, &e->dst) &&
	      again.payload_len == n && again.payload_off == DP_WIRE_ENCAP_LEN,
	      "encapsulation round trip changed the addresses");
}

static void ranges(const uint8_t *body, size_t len)
{
	struct dp_wire_ranges r;
	uint8_t again[DP_WIRE_RANGES_FIXED_LEN + 8 * DP_WIRE_MAX_RANGES];
	size_t n;

	if (dp_wire_ranges_decode(body, len, &r) != DP_REJ_NONE)
		return;
	check(r.nranges <= DP_WIRE_MAX_RANGES, "too many ranges accepted");
	for (unsigned i = 0; i < r.nranges; i++)
		check(r.range[i].first < r.range[i].end, "empty or inverted range accepted");
	n = dp_wire_ranges_encode(&r, again);
	check(n <= len, "ranges re-encode longer than the body");
	/* Bytes 14-15 are padding: not compared. */
	check(memcmp(again, body, 14) == 0 &&
	      memcmp(again + DP_WIRE_RANGES_FIXED_LEN, body + DP_WIRE_RANGES_FIXED_LEN,
		     n - DP_WIRE_RANGES_FIXED_LEN) == 0,
	      "ranges round trip changed the bytes");
}

static void djinn(const uint8_t *p, size_t avail, int body_in_buf)
{
	struct dp_wire_hdr h;
	uint8_t again[DP_WIRE_HDR_LEN];
	uint32_t session;
	size_t body_len;

	if (dp_wire_hdr_decode(p, avail, body_in_buf, &h) != DP_REJ_NONE)
		return;
	check(h.hdr_len >= DP_WIRE_HDR_LEN && h.hdr_len <= avail, "header length outside the buffer");
	check(!body_in_buf || h.payload_len <= avail - h.hdr_len, "body outside the buffer");
	check(h.type > 0 && h.type < DP_PKT_TYPE_MAX, "unknown type accepted");
	dp_wire_hdr_encode(&h, again);
	check(memcmp(again, p, DP_WIRE_HDR_LEN) == 0, "header round trip changed the bytes");
	check(dp_wire_peek_session(p, avail, &session) == 0 && session == h.session_id,
	      "peek_session disagrees with the header");
	body_len = avail - h.hdr_len;
	if (body_in_buf)
		body_len = h.payload_len;
	(void)dp_wire_crc(p, h.hdr_len, p + h.hdr_len, body_len, h.flags & DP_WIRE_F_CRC);
	if (h.type == DP_PKT_ACK || h.type == DP_PKT_NACK)
		ranges(p + h.hdr_len, body_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_wire_encap e;
	uint8_t *frame;
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0];
	size--;
	/* Exactly the frame's bytes, so any read past them is reported. */
	frame = malloc(size ? size : 1);
	if (frame == NULL)
		return 0;
	memcpy(frame, data + 1, size);
	if (!(mode & 1)) {
		djinn(frame, size, mode & 4);
	} else if (dp_wire_encap_parse(frame, size, mode & 2, &e) == DP_REJ_NONE) {
		check(e.payload_off >= DP_WIRE_ENCAP_LEN && e.payload_off <= size &&
		      e.payload_len <= size - e.payload_off, "UDP payload outside the frame");
		encap_roundtrip(&e);
		djinn(frame + e.payload_off, e.payload_len, mode & 4);
	}
	free(frame);
	return 0;
}
