/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DATAPATH_H
#define DJINN_DATAPATH_H

/**
 * @file
 * The abstract data path: how tensor bytes move between a client and a
 * server once the control plane has agreed on a session.
 *
 * The control plane (controlplane/) negotiates and drives transfers through
 * this interface; the DPDK engine (dataplane/) implements it. A test may
 * implement it with anything (tests/unit/control uses an in-memory fake).
 * Where no data path exists (no DPDK, no port), the control plane carries the
 * bytes over its own TCP connection instead: the TCP fallback.
 *
 * Transfer protocol, as the control plane uses it:
 *  - receiver: expect(xfer_id, dst, len) BEFORE the sender is told to go,
 *    then wait(xfer_id, timeout) until every byte is placed; cancel() where
 *    the transfer is abandoned (the destination is then never written again).
 *  - sender: send(xfer_id, src, len, timeout) returns once the receiver has
 *    acknowledged every byte, or with an error.
 * Transfer ids are chosen by the control plane, unique per session and never
 * reused within it; (cookie, xfer_id) names a transfer on the wire.
 *
 * Threads: every operation may be called from any non-polling thread (control
 * plane workers, client threads), concurrently for different transfers. The
 * blocking ones (probe, send, wait) sleep or spin politely; they never run on
 * a polling lcore.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/djinn.h"
#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DP_MAX_GPUS 16
#define DP_MAX_OPS 64
#define DP_OP_NAME_MAX 32
#define DP_GPU_NAME_MAX 64
#define DP_SOCKET_PATH_MAX 108 /* sun_path */

/** A data-plane endpoint: where to send fragments to reach one side. */
struct dp_endpoint {
	uint8_t mac[6];
	uint32_t ipv4;          /**< network byte order */
	uint16_t udp_port;      /**< host byte order */
	uint16_t n_queues;      /**< rx queues the peer spreads sessions over */
	uint16_t mtu;           /**< L3 MTU of the port (1500, 9000, ...) */
	/** memif socket path where the "port" is a memif, else "". */
	char memif_socket[DP_SOCKET_PATH_MAX];
};

/** One GPU as advertised in HELLO. */
struct dp_gpu {
	char name[DP_GPU_NAME_MAX];
	uint64_t mem_total;     /**< bytes */
	uint64_t mem_free;      /**< bytes, at the time of HELLO */
};

/**
 * What one side has, exchanged in HELLO (both directions). Plain data:
 * copyable with memcpy, no pointers.
 */
struct dp_caps {
	int dpdk;                       /**< 1: a DPDK data path is up */
	struct dp_endpoint endpoint; /**< valid where dpdk == 1 */
	int n_gpus;
	struct dp_gpu gpus[DP_MAX_GPUS];
	uint32_t dtypes;                /**< bit (1u << enum dj_dtype) per dtype supported */
	int n_ops;
	char ops[DP_MAX_OPS][DP_OP_NAME_MAX]; /**< operation names */
};

/** Counters of one data path, for STATS. */
struct dp_datapath_stats {
	uint64_t tx_bytes, rx_bytes;
	uint64_t transfers_ok, transfers_failed;
	uint64_t timeouts, retransmits;
};

/** One part of a striped transfer: the data-plane session (by cookie)
 * that carries it and its bytes. */
struct dp_send_part {
	uint64_t cookie;
	const void *src;
	size_t len;
};
#define DP_SEND_PARTS_MAX 64

/**
 * Operations of a data path. ctx is the implementation's own object; every
 * function returns 0 or a negative errno / DJ_E* value:
 * -ETIMEDOUT when time ran out, -EHOSTUNREACH / -DJ_ENODPDK when the peer or
 * the port is gone, -EEXIST for a transfer id already expected, -ENOENT for an
 * unknown one, -ECANCELED for a cancelled one.
 */
struct dj_datapath_ops {
	/** Fill this side's capabilities (endpoint, queues, MTU). Optional
	 * fields (GPUs, ops, dtypes) may be left zero: the control plane adds
	 * them from its backend. */
	int (*local_caps)(void *ctx, struct dp_caps *caps);

	/** Optional: a session begins. Packets carrying cookie from peer
	 * (NULL: any peer) are accepted from now on; session_id is for logs and
	 * stats. The control plane calls it on both sides before any probe or
	 * transfer of the session. */
	int (*session_open)(void *ctx, uint64_t session_id, uint64_t cookie,
			    const struct dp_endpoint *peer);

	/** Optional: the session ended; cancel its transfers, drop its
	 * packets from now on. */
	void (*session_close)(void *ctx, uint64_t cookie);

	/** One round trip to the peer over the data plane, carrying cookie;
	 * *rtt_ns receives the measured round trip. Blocks up to timeout_ms. */
	int (*probe)(void *ctx, const struct dp_endpoint *peer,
		     uint64_t cookie, uint32_t timeout_ms, uint64_t *rtt_ns);

	/** Arm reception of transfer xfer_id (len bytes) into dst, which the
	 * caller owns and keeps valid until wait() returns or cancel() is
	 * called. mem says whether dst is host or GPU memory. Non-blocking. */
	int (*expect)(void *ctx, uint64_t cookie, uint64_t xfer_id, void *dst,
		      size_t len, enum dj_mem_kind mem);

	/** Block until transfer xfer_id is complete (0) or timeout_ms passed
	 * (-ETIMEDOUT; the transfer stays armed: wait again or cancel). */
	int (*wait)(void *ctx, uint64_t cookie, uint64_t xfer_id, uint32_t timeout_ms);

	/** Abandon an expected transfer; dst is not written after this
	 * returns. Returns -ENOENT for an unknown or finished transfer. */
	int (*cancel)(void *ctx, uint64_t cookie, uint64_t xfer_id);

	/** Send len bytes of src (caller-owned, valid until return) as
	 * transfer xfer_id to peer; returns when every byte was acknowledged,
	 * or an error. timeout_ms bounds the time without progress (no byte
	 * newly acknowledged), not the whole transfer: a large transfer that
	 * keeps moving never times out. A data path may fail it earlier when
	 * the peer shows no sign of life (docs/DATAPLANE.md). */
	int (*send)(void *ctx, const struct dp_endpoint *peer, uint64_t cookie,
		    uint64_t xfer_id, const void *src, size_t len,
		    enum dj_mem_kind mem, uint32_t timeout_ms);

	/** Optional: counters. */
	int (*stats)(void *ctx, struct dp_datapath_stats *stats);

	/** Optional: after send() of (cookie, xfer_id) returned -EDEADLK,
	 * frames of it may still read src. 1 while some may; 0 once none
	 * does (src is the caller's again; the data path forgets the
	 * transfer); -ENOENT for a transfer it holds nothing of. Without this
	 * operation such a src must stay valid as long as the data path. */
	int (*send_pinned)(void *ctx, uint64_t cookie, uint64_t xfer_id);

	/** Optional: send one transfer in n parts (host memory), each as
	 * transfer xfer_id of the session of its cookie, all moving at once
	 * (sessions on different queues: as many polling lcores). Returns as
	 * send() does once every part ended; a part that fails or stalls
	 * cancels the others and names the whole's error. After -EDEADLK,
	 * send_pinned() per part's cookie says which still hold their
	 * source. Without it the control plane sends the parts one after
	 * another with send(). */
	int (*send_parts)(void *ctx, const struct dp_send_part *parts, unsigned int n,
			  uint64_t xfer_id, uint32_t timeout_ms);
};

/**
 * A data path: the operations plus their context. Borrowed by whoever it is
 * given to (server config, client options); the implementation creates and
 * destroys ctx and must outlive every user.
 */
struct dj_datapath {
	const struct dj_datapath_ops *ops;
	void *ctx;
};

#ifdef __cplusplus
}
#endif

#endif /* DJINN_DATAPATH_H */
