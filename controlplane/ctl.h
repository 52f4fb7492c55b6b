/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CONTROL_H
#define DJINN_CONTROL_H

/**
 * @file
 * The Djinn control-plane server: TCP (optionally TLS), length-prefixed JSON
 * frames with an optional raw payload, HMAC challenge-response auth, sessions,
 * path negotiation (DPDK or the TCP fallback), tensor ALLOC/PUT/GET/FREE,
 * EXECUTE, STATS, PING, BYE. The protocol is described in docs/CONTROL.md.
 *
 * The server is embeddable: it runs its own epoll thread plus a few worker
 * threads (never a polling lcore) and reaches tensors only through the
 * backend table below, which the embedding program supplies.
 */

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "djinn/djinn.h"
#include "djinn/tensor.h"
#include "dataplane/datapath.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol version spoken in HELLO. */
#define CTL_PROTO_VERSION 1
/** Size of the message buffer a backend writes its error text into. */
#define CTL_ERRMSG_MAX 256


/**
 * Bytes of a tensor's storage in transit. Filled by the backend's
 * write_begin / read_begin; the server hands it back unchanged to the chunk
 * and end calls.
 */
struct ctl_tensor_io {
	/** Host-addressable storage the server may read from / write to
	 * directly (zero copy), or NULL: use write_chunk / read_chunk. Owned by
	 * the backend; valid until the matching *_end call. */
	void *host;
	/** Where the storage is (for the data path). */
	enum dj_mem_kind mem;
	/** Device or host pointer for the data path where host is NULL (GPU
	 * memory); NULL where the data path cannot reach the storage. */
	void *dp_addr;
	uint64_t nbytes;
	/** Backend's own state for this transfer. */
	void *token;
};

/**
 * Everything the server needs from the tensor store and the operations.
 * Every function returns 0 or a negative errno / DJ_E* and, on failure, may
 * write a human message (NUL-terminated, at most CTL_ERRMSG_MAX bytes)
 * into err; the server sends it in the ERROR reply.
 *
 * Threads: functions are called from the server's epoll thread and its
 * worker threads, concurrently for different sessions and requests: the
 * backend must be thread safe. Only execute() may block for long (it runs on
 * a worker); the others should be quick.
 *
 * Handles: 64-bit, chosen by the backend, never 0. A session only reaches its
 * own handles; session_close frees whatever it still holds.
 */
struct ctl_backend {
	/** Optional: add GPUs, dtypes and operations to the HELLO capabilities. */
	int (*caps)(void *ctx, struct dp_caps *caps);

	/** A session begins; *session is the backend's own per-session state. */
	int (*session_open)(void *ctx, uint64_t session_id, void **session, char *err);
	/** The session ended (BYE, close, vanished client): free everything. */
	void (*session_close)(void *ctx, void *session);

	/** Allocate an uninitialised tensor. */
	int (*alloc)(void *ctx, void *session, const struct dj_tensor_desc *desc,
		     uint64_t *handle, char *err);
	/** Shape and dtype of a handle. */
	int (*describe)(void *ctx, void *session, uint64_t handle,
			struct dj_tensor_desc *desc, char *err);
	/** Release a handle. */
	int (*free)(void *ctx, void *session, uint64_t handle, char *err);

	/** Start overwriting the storage of handle; fill io. */
	int (*write_begin)(void *ctx, void *session, uint64_t handle,
			   struct ctl_tensor_io *io, char *err);
	/** Bytes [offset, offset + len) where io->host is NULL. */
	int (*write_chunk)(void *ctx, void *session, struct ctl_tensor_io *io,
			   uint64_t offset, const void *buf, size_t len, char *err);
	/** End of a write; status < 0: abandoned, contents undefined. */
	void (*write_end)(void *ctx, void *session, struct ctl_tensor_io *io, int status);

	/** Start reading handle's storage; the backend keeps it alive (even
	 * across a concurrent free) until read_end. A read may stay open long
	 * after its GET failed, while data-path frames may still read the
	 * storage (datapath send_pinned); the session is closed only after
	 * its reads end. */
	int (*read_begin)(void *ctx, void *session, uint64_t handle,
			  struct ctl_tensor_io *io, char *err);
	/** Copy bytes [offset, offset + len) into buf where io->host is NULL. */
	int (*read_chunk)(void *ctx, void *session, struct ctl_tensor_io *io,
			  uint64_t offset, void *buf, size_t len, char *err);
	void (*read_end)(void *ctx, void *session, struct ctl_tensor_io *io);

	/**
	 * Run operation op on inputs; attrs is the request's "attrs" object
	 * (never NULL; may be empty; borrowed for the call). Fill up to
	 * DJ_MAX_OP_ARGS output handles and their descriptions; *n_out
	 * receives their number. Runs on a worker thread; may block.
	 */
	int (*execute)(void *ctx, void *session, const char *op,
		       const uint64_t *inputs, int n_in, const cJSON *attrs,
		       uint64_t *outputs, struct dj_tensor_desc *out_desc,
		       int *n_out, char *err);

	/** Optional: add the session's figures (bytes held, handles...) to
	 * the STATS reply object. */
	void (*stats)(void *ctx, void *session, cJSON *obj);
};

/** Limits that keep one client from hurting the others. 0: the default. */
struct ctl_limits {
	uint32_t max_json_bytes;     /**< one control message (default 1 MiB) */
	uint32_t max_json_depth;     /**< nesting of a message (default 32) */
	uint64_t max_payload_bytes;  /**< one tensor payload (default 16 GiB) */
	uint32_t max_inflight;       /**< unanswered requests per connection (default 4096) */
	uint32_t max_connections;    /**< at once (default 1024) */
	uint32_t max_handles;        /**< live handles per session (default 65536) */
	uint32_t frame_timeout_ms;   /**< a frame begun must progress within (default 10 s) */
	uint32_t auth_timeout_ms;    /**< HELLO + AUTH must finish within (default 5 s) */
	uint32_t idle_timeout_ms;    /**< close connections idle this long (default: never) */
	/** A session whose connection dropped (without BYE) waits this long
	 * for the client to reconnect and resume it, handles intact
	 * (default 30 s). */
	uint32_t session_linger_ms;
};

struct ctl_server_config {
	const char *listen_addr;   /**< IPv4 address or "0.0.0.0"; NULL: 127.0.0.1 */
	uint16_t port;             /**< 0: any free port (see ctl_server_port) */
	/** Pre-shared token; NULL and token_file NULL: no authentication
	 * (logged as a warning). Copied by create. */
	const char *token;
	const char *token_file;    /**< read at create where token is NULL */
	const char *tls_cert;      /**< PEM certificate file: TLS on; NULL: plain TCP */
	const char *tls_key;       /**< PEM private key file */
	int n_workers;             /**< execute / data-path threads (default 4) */
	struct ctl_limits limits;
	/** The DPDK data path, or NULL for TCP only. Borrowed; must outlive
	 * the server. */
	const struct dj_datapath *datapath;
	uint32_t dp_timeout_ms;    /**< a data-path transfer fails after this long without
					progress, whatever its size (default 10000) */
};

struct ctl_server;

/** Fill config with defaults (all limits spelled out). */
void ctl_server_config_init(struct ctl_server_config *config);

/**
 * Create a server: bind and listen (so clients may connect as soon as this
 * returns), load the token and TLS material. Nothing runs until start.
 * backend and backend_ctx are borrowed and must outlive the server.
 */
int ctl_server_create(const struct ctl_server_config *config,
			 const struct ctl_backend *backend, void *backend_ctx,
			 struct ctl_server **server);
/** Start the epoll thread and the workers. */
int ctl_server_start(struct ctl_server *server);
/** Close every connection (sessions closed), stop the threads. Idempotent. */
void ctl_server_stop(struct ctl_server *server);
/** Stop if running, then free. NULL is fine. */
void ctl_server_destroy(struct ctl_server *server);
/** The bound port (useful with config port 0). */
uint16_t ctl_server_port(const struct ctl_server *server);

/** Server-wide counters. */
struct ctl_server_stats {
	uint64_t connections_accepted, connections_open;
	uint64_t auth_failures, sessions_opened;
	uint64_t requests, errors_sent, protocol_errors;
	uint64_t bytes_in, bytes_out;
	uint64_t sessions_dpdk, sessions_tcp;
};
void ctl_server_get_stats(struct ctl_server *server,
			     struct ctl_server_stats *stats);

/**
 * The path decision, shared by client and server so both apply one rule:
 * forced TCP -> TCP; DPDK only when both sides have it and probe_rc == 0;
 * forced DPDK without it -> -DJ_ENODPDK. reason receives a short text
 * ("client forced tcp", "server has no DPDK", "probe failed: ...").
 */
int ctl_path_decide(enum dj_path want, int local_dpdk, int peer_dpdk, int probe_rc,
		   enum dj_path *chosen, char *reason, size_t reason_len);


#ifdef __cplusplus
}
#endif

#endif /* DJINN_CONTROL_H */
