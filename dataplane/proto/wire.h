/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_WIRE_H
#define DJINN_WIRE_H

/**
 * @file
 * The Djinn data-plane wire format (docs/PROTOCOL.md has the full picture).
 *
 *   Ethernet (14) | IPv4 (20, no options) | UDP (8) | Djinn header (56) | body
 *
 * Every multi-byte field is big-endian (network order). The body is the
 * fragment payload for DATA, a range list for ACK/NACK, a timestamp for
 * PING/PONG, and empty for CLOSE/ABORT.
 *
 * Djinn header (version 2), 56 bytes, naturally aligned:
 *
 *   off size field
 *    0   2   magic        0x444A ("DJ")
 *    2   1   version      DP_WIRE_VERSION; anything else is rejected and counted
 *    3   1   type         enum dp_pkt_type
 *    4   2   flags        DJ_WIRE_F_*
 *    6   2   hdr_len      bytes of Djinn header; >= 56; the body starts here
 *                         (later minor revisions append fields; old peers skip them)
 *    8   4   session_id
 *   12   4   payload_len  bytes of body after the header
 *   16   8   cookie       per-session secret agreed on the control plane
 *   24   8   transfer_id  64 bits, never reused within a session
 *   32   4   frag_index
 *   36   4   crc          CRC32C (Castagnoli) over header (crc field as 0) and
 *                         body, see DP_WIRE_F_CRC / DP_WIRE_F_CRC_HDR
 *   40   8   offset       byte offset of this fragment in the transfer
 *   48   8   total_len    bytes of the whole transfer
 *
 * Version 1 had a 32-bit transfer_id at 24 and frag_count at 32 (the count
 * follows from total_len and the session's fragment size, so version 2
 * spends those bytes on a transfer id that never wraps).
 *
 * Nothing here needs the DPDK run time; the DPDK engine, the TCP fallback, the
 * simulator and the benchmarks all share these helpers.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DP_WIRE_MAGIC 0x444Au
#define DP_WIRE_VERSION 2u
/** Size of the version-2 Djinn header. */
#define DP_WIRE_HDR_LEN 56u
#define DP_WIRE_ETH_LEN 14u
#define DP_WIRE_IPV4_LEN 20u
#define DP_WIRE_UDP_LEN 8u
/** Ethernet + IPv4 + UDP. */
#define DP_WIRE_ENCAP_LEN (DP_WIRE_ETH_LEN + DP_WIRE_IPV4_LEN + DP_WIRE_UDP_LEN)
/** Everything in front of a DATA payload when encapsulated in UDP. */
#define DP_WIRE_FULL_HDR_LEN (DP_WIRE_ENCAP_LEN + DP_WIRE_HDR_LEN)
/** Default UDP port of the data plane. */
#define DP_WIRE_UDP_PORT 47000u
/** Most selective ranges in one ACK or NACK. */
#define DP_WIRE_MAX_RANGES 16u
/** ACK/NACK body: cum, credit, trigger, nranges+pad, then ranges. */
#define DP_WIRE_RANGES_FIXED_LEN 16u
/** Largest control packet (PING..NACK), encapsulation included. */
#define DP_WIRE_CTRL_MAX                                                       \
	(DP_WIRE_FULL_HDR_LEN + DP_WIRE_RANGES_FIXED_LEN + 8u * DP_WIRE_MAX_RANGES)

/** Packet types. Values travel on the wire: never renumber. */
enum dp_pkt_type {
	DP_PKT_DATA = 1,  /**< one fragment of a transfer */
	DP_PKT_ACK = 2,   /**< cumulative + selective acknowledgement, credit */
	DP_PKT_NACK = 3,  /**< missing ranges: retransmit these now */
	DP_PKT_PING = 4,  /**< liveness / RTT probe, body: u64 echo value */
	DP_PKT_PONG = 5,  /**< answer to PING, echoes the body */
	DP_PKT_CLOSE = 6, /**< the session ends: every transfer fails at the peer */
	DP_PKT_ABORT = 7, /**< one transfer (transfer_id) is abandoned by the peer */
	DP_PKT_TYPE_MAX
};

/** Header flags. */
enum dp_wire_flags {
	/** crc covers the header and the body. */
	DP_WIRE_F_CRC = 1u << 0,
	/** crc covers the header only: the sender could not read the payload
	 *  (GPU memory) or left it to the NIC. */
	DP_WIRE_F_CRC_HDR = 1u << 1,
	/** DATA: this is a retransmission (diagnostics only). */
	DP_WIRE_F_RETRANS = 1u << 2,
	/** ACK: the receiver has the whole transfer. */
	DP_WIRE_F_COMPLETE = 1u << 3,
	/** ABORT: sent by the receiving side of the transfer (absent: by
	 *  the sending side), since each direction has its own ids. */
	DP_WIRE_F_FROM_RX = 1u << 4,
};

/** A Djinn header in host byte order. */
struct dp_wire_hdr {
	uint16_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint16_t hdr_len;
	uint32_t session_id;
	uint32_t payload_len;
	uint64_t cookie;
	uint64_t transfer_id;
	uint32_t frag_index;
	uint32_t crc;
	uint64_t offset;
	uint64_t total_len;
};

/** A half-open range of fragment indices [first, end). */
struct dp_wire_range {
	uint32_t first;
	uint32_t end;
};

/** Body of ACK and NACK, host order. */
struct dp_wire_ranges {
	/** Every fragment with index < cum has arrived. */
	uint32_t cum;
	/** The receiver accepts fragment indices < cum + credit. */
	uint32_t credit;
	/** Index of the fragment whose arrival caused this packet, for RTT
	 *  sampling (UINT32_MAX: none, e.g. a timer-driven ACK). */
	uint32_t trigger;
	uint16_t nranges;
	/** ACK: ranges received above cum (SACK). NACK: ranges missing. */
	struct dp_wire_range range[DP_WIRE_MAX_RANGES];
};

/** Reasons a packet is rejected; each one has its own counter. */
enum dp_wire_reject {
	DP_REJ_NONE = 0,
	DP_REJ_TRUNCATED,      /**< shorter than its headers or announced lengths */
	DP_REJ_BAD_MAGIC,
	DP_REJ_BAD_VERSION,    /**< unknown protocol version */
	DP_REJ_BAD_TYPE,
	DP_REJ_BAD_SESSION,    /**< session id not ours */
	DP_REJ_BAD_COOKIE,
	DP_REJ_BAD_CRC,        /**< mismatch, or missing while required */
	DP_REJ_BAD_HDR_LEN,
	DP_REJ_UNKNOWN_TRANSFER,
	DP_REJ_TOTAL_MISMATCH, /**< total_len differs from the transfer's */
	DP_REJ_OUT_OF_RANGE,   /**< offset/length outside the destination, or overflow */
	DP_REJ_INDEX_MISMATCH, /**< index inconsistent with offset, or >= frag_count */
	DP_REJ_BEYOND_WINDOW,  /**< fragment past the advertised credit */
	DP_REJ_DUPLICATE,      /**< already received (ignored, not an error) */
	DP_REJ_BAD_BODY,       /**< malformed ACK/NACK/PING body */
	DP_REJ_NOT_IPV4_UDP,   /**< encapsulation: not Ethernet/IPv4/UDP */
	DP_REJ_BAD_IP_CSUM,
	DP_REJ_WRONG_DEST,     /**< encapsulation: not addressed to this endpoint */
	DP_REJ_COUNT
};

/** Short static name of a rejection reason ("bad_cookie", ...). */
const char *dp_wire_reject_name(enum dp_wire_reject reason);

/** Text for a packet type ("DATA", ...), "?" when unknown. */
const char *dp_pkt_type_name(unsigned type);

/* ---- CRC32C --------------------------------------------------------------- */

/**
 * Extend CRC32C (Castagnoli, reflected, as in iSCSI/ext4) over len bytes.
 * Start with crc = 0; dp_crc32c(dp_crc32c(0, a, n), b, m) is the CRC of a||b.
 * Picks the fastest path the CPU has: carry-less multiply folding
 * (AVX-512 VPCLMULQDQ) from 256 bytes on, else the SSE4.2 crc32
 * instruction on three interleaved streams, else a table.
 */
uint32_t dp_crc32c(uint32_t crc, const void *buf, size_t len);
/** The SSE4.2 path alone (the table where SSE4.2 is missing). */
uint32_t dp_crc32c_sse42(uint32_t crc, const void *buf, size_t len);
/** The table implementation, always available (tests compare the three). */
uint32_t dp_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* ---- Djinn header ---------------------------------------------------------- */

/** Write h (host order) as DP_WIRE_HDR_LEN big-endian bytes; h->crc as given. */
void dp_wire_hdr_encode(const struct dp_wire_hdr *h, void *buf);

/**
 * Parse the fixed part of a Djinn header from avail bytes into h (host order).
 * Checks magic, version, hdr_len and type, and that hdr_len + payload_len fit
 * in avail when body_in_buf is true (body follows the header in buf).
 * Returns DP_REJ_NONE or the rejection reason; no CRC or session checks.
 */
enum dp_wire_reject dp_wire_hdr_decode(const void *buf, size_t avail,
				       bool body_in_buf, struct dp_wire_hdr *h);

/**
 * Compute the CRC of header bytes hdr (h->hdr_len of them, crc field taken as
 * zero) and, when with_body, of body[0..body_len).
 */
uint32_t dp_wire_crc(const void *hdr, size_t hdr_len, const void *body,
		     size_t body_len, bool with_body);

/** Store crc into the crc field of encoded header bytes. */
void dp_wire_hdr_set_crc(void *hdr, uint32_t crc);

/**
 * Session id of a Djinn header at buf, for demultiplexing before the full
 * parse. -EINVAL when avail is too short or the magic is wrong.
 */
int dp_wire_peek_session(const void *buf, size_t avail, uint32_t *session_id);

/** Encode an ACK/NACK body; returns its length in bytes. */
size_t dp_wire_ranges_encode(const struct dp_wire_ranges *r, void *buf);
/** Decode an ACK/NACK body of len bytes; DP_REJ_BAD_BODY if malformed
 *  (short, too many ranges, empty or inverted range). */
enum dp_wire_reject dp_wire_ranges_decode(const void *buf, size_t len,
					  struct dp_wire_ranges *r);

/* ---- Ethernet / IPv4 / UDP --------------------------------------------------- */

/** One end of a data-plane path. Host byte order for ipv4 and port. */
struct dp_netaddr {
	uint8_t mac[6];
	uint32_t ipv4; /**< e.g. 10.0.0.1 is 0x0a000001 */
	uint16_t port; /**< UDP port */
};

/** Parse "aa:bb:cc:dd:ee:ff,10.0.0.1,47000" (port optional); -EINVAL if bad. */
int dp_netaddr_parse(const char *text, struct dp_netaddr *ep);

/**
 * Write Ethernet + IPv4 + UDP headers (DP_WIRE_ENCAP_LEN bytes) for a UDP
 * payload of udp_payload_len bytes from src to dst, with the IPv4 header
 * checksum and the UDP checksum 0 (Djinn's CRC32C covers the payload).
 * ip_id fills the IPv4 identification field. -EMSGSIZE when the IP datagram
 * would exceed 65535 bytes.
 */
int dp_wire_encap_build(void *buf, const struct dp_netaddr *src,
			const struct dp_netaddr *dst, size_t udp_payload_len,
			uint16_t ip_id);

/** Result of parsing an encapsulated frame. */
struct dp_wire_encap {
	struct dp_netaddr src;
	struct dp_netaddr dst;
	uint32_t payload_off; /**< where the UDP payload starts in the frame */
	uint32_t payload_len; /**< UDP payload bytes (from the UDP length) */
};

/**
 * Validate an Ethernet/IPv4/UDP frame of len bytes: IPv4 (no options
 * beyond IHL), not fragmented, UDP, lengths consistent with len (Ethernet
 * padding allowed), and the IPv4 header checksum unless verify_ip_csum is
 * false (the NIC verified it). A non-zero UDP checksum is not checked (the
 * Djinn CRC covers the payload). Returns DP_REJ_NONE or the reason.
 */
enum dp_wire_reject dp_wire_encap_parse(const void *frame, size_t len,
					bool verify_ip_csum,
					struct dp_wire_encap *out);

/** RFC 1071 ones' complement sum of an IPv4 header, as stored (0 = valid
 *  when the header holds its checksum). */
uint16_t dp_wire_ipv4_csum(const void *ip_hdr, size_t len);

/* ---- Fragment geometry -------------------------------------------------------- */

/**
 * Fragment payload size for an IP MTU (e.g. 1500, 9000) with UDP encapsulation:
 * mtu - 20 - 8 - DP_WIRE_HDR_LEN. 0 if the MTU is too small (< 128).
 */
uint32_t dp_wire_frag_size(uint32_t mtu);

/**
 * Number of fragments of a transfer: ceil(total_len / frag_size), and 1 for a
 * 0-byte transfer (one empty fragment carries its completion). 0 when the
 * count does not fit in 32 bits or frag_size is 0.
 */
uint32_t dp_wire_frag_count(uint64_t total_len, uint32_t frag_size);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_WIRE_H */
