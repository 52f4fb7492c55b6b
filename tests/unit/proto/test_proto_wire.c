/* SPDX-License-Identifier: BSD-3-Clause */
/* Wire format: CRC32C, header and body codecs, Ethernet/IPv4/UDP framing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/proto/wire.h"
#include "harness.h"

static void test_crc32c_known_vectors(void)
{
	static const uint8_t zeros[32];
	uint8_t ones[32];

	memset(ones, 0xff, sizeof(ones));
	/* RFC 3720 B.4 and the classic check value. */
	CU_ASSERT_EQUAL(dp_crc32c(0, "123456789", 9), 0xe3069283u);
	CU_ASSERT_EQUAL(dp_crc32c_sw(0, "123456789", 9), 0xe3069283u);
	CU_ASSERT_EQUAL(dp_crc32c(0, zeros, 32), 0x8a9136aau);
	CU_ASSERT_EQUAL(dp_crc32c(0, ones, 32), 0x62a8ab43u);
	CU_ASSERT_EQUAL(dp_crc32c(0, NULL, 0), 0u);
}

/* Folding, SSE4.2 (3-way interleaved) and table paths agree on every length
 * and alignment, including the 256-byte folding threshold and the 3 x 8 KiB,
 * 3 x 256 B and 3 x 64 B block boundaries, and CRCs chain across split
 * buffers. */
static void test_crc32c_hw_matches_table(void)
{
	unsigned seed = dj_test_seed();
	size_t max = 50000; /* the longest length below */
	uint8_t *buf = malloc(max + 8);
	static const size_t lens[] = {0, 1, 7, 8, 9, 63, 191, 192, 193, 255, 256,
				      257, 319, 511, 512, 513, 767, 768, 769, 1024,
				      1080, 4096, 24575, 24576, 24577, 50000};

	CU_ASSERT_FATAL(buf != NULL);
	srand(seed);
	for (size_t i = 0; i < max + 8; i++)
		buf[i] = (uint8_t)rand();
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
		for (size_t align = 0; align < 8; align++) {
			uint32_t sw = dp_crc32c_sw(0, buf + align, lens[l]);

			CU_ASSERT_EQUAL(dp_crc32c(0, buf + align, lens[l]), sw);
			CU_ASSERT_EQUAL(dp_crc32c_sse42(0, buf + align, lens[l]), sw);
			CU_ASSERT_EQUAL(dp_crc32c(0x12345678, buf + align, lens[l]),
					dp_crc32c_sw(0x12345678, buf + align, lens[l]));
			if (lens[l] > 5) {
				uint32_t part = dp_crc32c(0, buf + align, 5);

				CU_ASSERT_EQUAL(dp_crc32c(part, buf + align + 5,
							  lens[l] - 5), sw);
			}
		}
	}
	free(buf);
}

static struct dp_wire_hdr sample_hdr(void)
{
	return (struct dp_wire_hdr){
		.magic = DP_WIRE_MAGIC, .version = DP_WIRE_VERSION,
		.type = DP_PKT_DATA, .flags = DP_WIRE_F_CRC,
		.hdr_len = DP_WIRE_HDR_LEN, .session_id = 0xdeadbeef,
		.payload_len = 1416, .cookie = 0x1122334455667788ull,
		.transfer_id = 0x0102030405060708ull, .frag_index = 3,
		.crc = 0xcafef00d, .offset = 3 * 1416ull,
		.total_len = 5ull << 32, /* many GiB */
	};
}

static void test_header_roundtrip_and_layout(void)
{
	struct dp_wire_hdr h = sample_hdr(), back;
	uint8_t buf[DP_WIRE_HDR_LEN];

	/* Every byte as docs/PROTOCOL.md lists it: network byte order, the
	 * 64-bit transfer id at 24, no fragment count (version 2). */
	static const uint8_t want[DP_WIRE_HDR_LEN] = {
		0x44, 0x4a, 0x02, 0x01, 0x00, 0x01, 0x00, 0x38,         /* magic .. hdr_len */
		0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x05, 0x88,         /* session, payload_len */
		0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,         /* cookie */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,         /* transfer_id */
		0x00, 0x00, 0x00, 0x03, 0xca, 0xfe, 0xf0, 0x0d,         /* frag_index, crc */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x98,         /* offset */
		0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00,         /* total_len */
	};

	dp_wire_hdr_encode(&h, buf);
	CU_ASSERT_EQUAL(DP_WIRE_VERSION, 2);
	CU_ASSERT_EQUAL(memcmp(buf, want, sizeof(want)), 0);
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), false, &back), DP_REJ_NONE);
	CU_ASSERT_EQUAL(memcmp(&h, &back, sizeof(h)), 0);
}

static void test_header_rejections(void)
{
	struct dp_wire_hdr h = sample_hdr(), out;
	uint8_t buf[DP_WIRE_HDR_LEN + 8];
	uint32_t sid;

	h.payload_len = 8;
	dp_wire_hdr_encode(&h, buf);
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_NONE);
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf) - 1, true, &out), DP_REJ_TRUNCATED);
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, DP_WIRE_HDR_LEN - 1, false, &out), DP_REJ_TRUNCATED);
	buf[0] ^= 1;
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_BAD_MAGIC);
	CU_ASSERT_EQUAL(dp_wire_peek_session(buf, sizeof(buf), &sid), -EINVAL);
	buf[0] ^= 1;
	CU_ASSERT_EQUAL(dp_wire_peek_session(buf, sizeof(buf), &sid), 0);
	CU_ASSERT_EQUAL(sid, 0xdeadbeef);
	/* Version 1 (32-bit transfer ids) and anything newer are refused. */
	buf[2] = 1;
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_BAD_VERSION);
	buf[2] = 3;
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_BAD_VERSION);
	buf[2] = DP_WIRE_VERSION;
	buf[3] = DP_PKT_TYPE_MAX;
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_BAD_TYPE);
	buf[3] = DP_PKT_DATA;
	buf[7] = 40; /* hdr_len below the fixed header */
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), true, &out), DP_REJ_BAD_HDR_LEN);
	buf[7] = 60; /* a later minor revision's longer header: fits, accepted */
	CU_ASSERT_EQUAL(dp_wire_hdr_decode(buf, sizeof(buf), false, &out), DP_REJ_NONE);
	CU_ASSERT_EQUAL(out.hdr_len, 60);
	CU_ASSERT_STRING_EQUAL(dp_wire_reject_name(DP_REJ_BAD_COOKIE), "bad_cookie");
	CU_ASSERT_STRING_EQUAL(dp_pkt_type_name(DP_PKT_NACK), "NACK");
	CU_ASSERT_STRING_EQUAL(dp_pkt_type_name(99), "?");
}

static void test_crc_covers_header_and_body(void)
{
	struct dp_wire_hdr h = sample_hdr();
	uint8_t hdr[DP_WIRE_HDR_LEN], body[100];
	uint32_t full, hdr_only;

	memset(body, 0xab, sizeof(body));
	h.payload_len = sizeof(body);
	dp_wire_hdr_encode(&h, hdr);
	full = dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), true);
	hdr_only = dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), false);
	{
		/* Independently: the table CRC of header (crc field zeroed)
		 * then body. */
		uint8_t flat[DP_WIRE_HDR_LEN + sizeof(body)];

		memcpy(flat, hdr, sizeof(hdr));
		memset(flat + 36, 0, 4);
		memcpy(flat + sizeof(hdr), body, sizeof(body));
		CU_ASSERT_EQUAL(full, dp_crc32c_sw(0, flat, sizeof(flat)));
		CU_ASSERT_EQUAL(hdr_only, dp_crc32c_sw(0, flat, sizeof(hdr)));
	}
	CU_ASSERT_NOT_EQUAL(full, hdr_only);
	/* The crc field itself does not take part. */
	dp_wire_hdr_set_crc(hdr, full);
	CU_ASSERT_EQUAL(dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), true), full);
	body[99] ^= 0x10;
	CU_ASSERT_NOT_EQUAL(dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), true), full);
	CU_ASSERT_EQUAL(dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), false), hdr_only);
	hdr[30] ^= 1;
	CU_ASSERT_NOT_EQUAL(dp_wire_crc(hdr, sizeof(hdr), body, sizeof(body), false), hdr_only);
}

static void test_ranges_codec(void)
{
	struct dp_wire_ranges r = {.cum = 10, .credit = 4096, .trigger = 17, .nranges = 2,
				   .range = {{12, 14}, {20, 31}}}, back;
	uint8_t buf[DP_WIRE_RANGES_FIXED_LEN + 8 * DP_WIRE_MAX_RANGES];
	size_t len = dp_wire_ranges_encode(&r, buf);

	CU_ASSERT_EQUAL(len, DP_WIRE_RANGES_FIXED_LEN + 16);
	CU_ASSERT_EQUAL(dp_wire_ranges_decode(buf, len, &back), DP_REJ_NONE);
	CU_ASSERT_EQUAL(back.cum, 10);
	CU_ASSERT_EQUAL(back.credit, 4096);
	CU_ASSERT_EQUAL(back.trigger, 17);
	CU_ASSERT_EQUAL(back.nranges, 2);
	CU_ASSERT_EQUAL(back.range[1].first, 20);
	CU_ASSERT_EQUAL(back.range[1].end, 31);
	CU_ASSERT_EQUAL(dp_wire_ranges_decode(buf, len - 1, &back), DP_REJ_BAD_BODY);
	CU_ASSERT_EQUAL(dp_wire_ranges_decode(buf, 15, &back), DP_REJ_BAD_BODY);
	buf[13] = DP_WIRE_MAX_RANGES + 1; /* too many ranges */
	CU_ASSERT_EQUAL(dp_wire_ranges_decode(buf, sizeof(buf), &back), DP_REJ_BAD_BODY);
	r.range[0] = (struct dp_wire_range){14, 12}; /* inverted */
	len = dp_wire_ranges_encode(&r, buf);
	CU_ASSERT_EQUAL(dp_wire_ranges_decode(buf, len, &back), DP_REJ_BAD_BODY);
}

static void test_encap_build_parse(void)
{
	struct dp_netaddr a, b;
	struct dp_wire_encap e;
	uint8_t frame[DP_WIRE_ENCAP_LEN + 100 + 4];

	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00:01,10.0.0.1,47001", &a), 0);
	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00:02,10.0.0.2", &b), 0);
	CU_ASSERT_EQUAL(a.ipv4, 0x0a000001u);
	CU_ASSERT_EQUAL(a.port, 47001);
	CU_ASSERT_EQUAL(b.port, DP_WIRE_UDP_PORT);
	CU_ASSERT_EQUAL(b.mac[5], 2);
	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00:02,10.0.0.256", &b), -EINVAL);
	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00,10.0.0.2", &b), -EINVAL);
	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00:02,10.0.0.2,70000", &b), -EINVAL);
	CU_ASSERT_EQUAL(dp_netaddr_parse("02:00:00:00:00:02,10.0.0.2,1x", &b), -EINVAL);

	CU_ASSERT_EQUAL(dp_wire_encap_build(frame, &a, &b, 100, 7), 0);
	CU_ASSERT_EQUAL(dp_wire_ipv4_csum(frame + DP_WIRE_ETH_LEN, DP_WIRE_IPV4_LEN), 0);
	/* Ethernet padding after the datagram is allowed. */
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), true, &e), DP_REJ_NONE);
	CU_ASSERT_EQUAL(e.payload_off, DP_WIRE_ENCAP_LEN);
	CU_ASSERT_EQUAL(e.payload_len, 100);
	CU_ASSERT_EQUAL(e.src.ipv4, a.ipv4);
	CU_ASSERT_EQUAL(e.dst.port, b.port);
	CU_ASSERT_EQUAL(memcmp(e.dst.mac, b.mac, 6), 0);
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, DP_WIRE_ENCAP_LEN + 99, true, &e),
			DP_REJ_TRUNCATED);
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, 20, true, &e), DP_REJ_TRUNCATED);
	frame[DP_WIRE_ETH_LEN + 8] ^= 1; /* TTL: checksum breaks */
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), true, &e), DP_REJ_BAD_IP_CSUM);
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), false, &e), DP_REJ_NONE);
	frame[DP_WIRE_ETH_LEN + 8] ^= 1;
	frame[DP_WIRE_ETH_LEN + 9] = 6; /* TCP */
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), false, &e), DP_REJ_NOT_IPV4_UDP);
	frame[DP_WIRE_ETH_LEN + 9] = 17;
	frame[DP_WIRE_ETH_LEN + 6] |= 0x20; /* more fragments */
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), false, &e), DP_REJ_NOT_IPV4_UDP);
	frame[DP_WIRE_ETH_LEN + 6] &= (uint8_t)~0x20;
	frame[12] = 0x86; /* IPv6 ethertype */
	CU_ASSERT_EQUAL(dp_wire_encap_parse(frame, sizeof(frame), false, &e), DP_REJ_NOT_IPV4_UDP);
	CU_ASSERT_EQUAL(dp_wire_encap_build(frame, &a, &b, 65535, 7), -EMSGSIZE);
}

static void test_fragment_geometry(void)
{
	CU_ASSERT_EQUAL(dp_wire_frag_size(1500), 1416);
	CU_ASSERT_EQUAL(dp_wire_frag_size(9000), 8916);
	CU_ASSERT_EQUAL(dp_wire_frag_size(100), 0);
	CU_ASSERT_EQUAL(dp_wire_frag_count(0, 1416), 1);
	CU_ASSERT_EQUAL(dp_wire_frag_count(1, 1416), 1);
	CU_ASSERT_EQUAL(dp_wire_frag_count(1416, 1416), 1);
	CU_ASSERT_EQUAL(dp_wire_frag_count(1417, 1416), 2);
	CU_ASSERT_EQUAL(dp_wire_frag_count(64ull << 30, 8916), 7707434);
	CU_ASSERT_EQUAL(dp_wire_frag_count(1ull << 50, 1024), 0);
	CU_ASSERT_EQUAL(dp_wire_frag_count(10, 0), 0);
}

int main(int argc, char **argv)
{
	static const struct dj_test_case cases[] = {
		{"crc32c known vectors", test_crc32c_known_vectors},
		{"crc32c hardware path matches the table", test_crc32c_hw_matches_table},
		{"header round trip and byte layout", test_header_roundtrip_and_layout},
		{"header rejections", test_header_rejections},
		{"crc covers header and body", test_crc_covers_header_and_body},
		{"ack/nack range codec", test_ranges_codec},
		{"ethernet/ipv4/udp build and parse", test_encap_build_parse},
		{"fragment geometry", test_fragment_geometry},
		{NULL, NULL},
	};
	dj_test_add_suite("proto_wire", NULL, NULL, cases);
	return dj_test_main(argc, argv);
}
