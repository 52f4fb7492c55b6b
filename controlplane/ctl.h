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
/** Longest member id of a fleet (fleet/, docs/FLEET.md), NUL included. */
#define CTL_MEMBER_ID_MAX 64

/** Longest device name in requests and replies ("cuda:1"), NUL included. */
#define CTL_DEVICE_MAX 16

/** Memory and load of the devices a backend keeps tensors on, and of its
 *  store (the fleet record's "load", docs/FLEET.md). */
struct ctl_mem_info {
	int n_devices;
	struct {
		char name[DP_GPU_NAME_MAX]; /**< "cuda:0", "host" */
		enum dj_mem_kind mem;
		uint64_t total, free;       /**< bytes */
		uint64_t used, tensors;     /**< resident on this device */
		uint64_t ops;               /**< operations run on it */
		uint64_t running, queued;   /**< operations (and moves) on it / waiting for it */
		uint64_t sessions;          /**< sessions whose default device it is */
		int numa_node;              /**< -1: unknown */
	} devices[DP_MAX_GPUS];
	uint64_t store_bytes;               /**< bytes of resident tensors */
	uint64_t store_limit;               /**< 0: none */
};


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

	/** Allocate a tensor that reads as zeros (for ALLOC and a PUT into a
	 * new tensor): memory is reused across sessions, and no byte of an
	 * earlier tenant may ever show. */
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
	 * (never NULL; may be empty; borrowed for the call). A request's (or
	 * batch entry's) top-level "device" arrives as attrs' "device": where
	 * the output goes (docs/CONTROL.md, "Devices"). Fill up to
	 * DJ_MAX_OP_ARGS output handles and their descriptions; *n_out
	 * receives their number. An output equal to one of the input handles
	 * is that input updated in place (slice_write): it is not a new handle
	 * (not counted, not freed when a batch fails). Runs on a worker
	 * thread; may block.
	 */
	int (*execute)(void *ctx, void *session, const char *op,
		       const uint64_t *inputs, int n_in, const cJSON *attrs,
		       uint64_t *outputs, struct dj_tensor_desc *out_desc,
		       int *n_out, char *err);

	/**
	 * Optional: 1 where op on inputs is so quick (a few microseconds:
	 * small tensors in host memory, nothing that blocks) that the server
	 * runs execute() on its connection thread rather than hand it to a
	 * worker and back; 0 otherwise (also for handles it does not know:
	 * the worker then reports them). Called on the connection thread:
	 * quick, never blocking. Without it every EXECUTE goes to a worker.
	 */
	int (*execute_inline)(void *ctx, void *session, const char *op,
			      const uint64_t *inputs, int n_in);

	/** Optional: add the session's figures (bytes held, handles...) to
	 * the STATS reply object. */
	void (*stats)(void *ctx, void *session, cJSON *obj);

	/** Optional: memory of each device tensors live on and of the store,
	 * for the server's load (STATS "member", fleet records). Quick and
	 * thread safe. */
	int (*mem_info)(void *ctx, struct ctl_mem_info *info);

	/**
	 * Optional, for fleet moves: hand handle from session from to session
	 * to. The tensor keeps its bytes, is charged to to (-DJ_ELIMIT where
	 * that exceeds its budget) and gets a new handle there, *new_handle;
	 * from no longer reaches it. Without it, moves are refused (-ENOTSUP).
	 */
	int (*adopt)(void *ctx, void *from, uint64_t handle, void *to, uint64_t *new_handle,
		     char *err);

	/**
	 * Optional: charge (bytes > 0) or give back (bytes < 0) memory the
	 * server holds for the session outside any tensor, to its memory limit
	 * as a tensor of that many bytes would be charged: an EXECUTE's
	 * payload, from when the request is accepted until the batch's puts
	 * have become tensors (each put's bytes move from the hold to its
	 * tensor). Any thread. 0, or -DJ_ELIMIT with err naming the figures.
	 * Without it such payloads are held uncharged.
	 */
	int (*hold)(void *ctx, void *session, int64_t bytes, char *err);

	/*
	 * Optional, for servers with several devices (docs/MULTIGPU.md). A
	 * device is named by a string of fewer than CTL_DEVICE_MAX bytes
	 * ("cuda:1"). Without them a request that names a device is refused
	 * with -ENOTSUP and replies name none.
	 */
	/** As alloc, on @p device (NULL: the session's default device);
	 *  -ENODEV for a device the backend does not have. Replaces alloc
	 *  for ALLOC, PUT into a new tensor and batch puts where present. */
	int (*alloc_on)(void *ctx, void *session, const struct dj_tensor_desc *desc,
			const char *device, uint64_t *handle, char *err);
	/** The device @p handle lives on, into @p device (CTL_DEVICE_MAX
	 *  bytes), for the "device" of replies that name a tensor. */
	int (*device_of)(void *ctx, void *session, uint64_t handle, char *device);
	/** Make @p want the session's default device (where not NULL;
	 *  -ENODEV), then write the default into @p device (CTL_DEVICE_MAX
	 *  bytes): SESSION's "device". */
	int (*session_device)(void *ctx, void *session, const char *want, char *device,
			      char *err);

	/**
	 * Optional: the bounds of one EXECUTE (a batch or a single op), on the
	 * worker thread that runs it. Between them execute() may return before
	 * a GPU has run the op (its output usable by the entries after it,
	 * read_chunk() of it waiting for it); batch_end waits for all of it
	 * and returns 0, or the error the device reported late (into err):
	 * the whole EXECUTE then fails. Called for every batch_begin, also
	 * after an entry failed, before its tensors are freed.
	 */
	void (*batch_begin)(void *ctx, void *session);
	int (*batch_end)(void *ctx, void *session, char *err);
};

/** Limits that keep one client from hurting the others. 0: the default. */
struct ctl_limits {
	uint32_t max_json_bytes;     /**< one control message (default 1 MiB) */
	uint32_t max_json_depth;     /**< nesting of a message (default 32) */
	uint64_t max_payload_bytes;  /**< one tensor payload (default 16 GiB) */
	uint32_t max_inflight;       /**< unanswered requests per connection (default 4096) */
	uint32_t max_connections;    /**< authenticated ones at once (default 1024) */
	/** Connections not yet past HELLO/AUTH, at once (default 128): a
	 *  newcomer beyond closes the oldest of them. */
	uint32_t max_unauth_connections;
	/** The same per source address (default 32). */
	uint32_t max_unauth_per_addr;
	/** Failed AUTHs from one address space its next AUTH by 100 ms,
	 *  doubling per failure in a row, at most this (default 2000). */
	uint32_t auth_delay_max_ms;
	/** Rate-limited log lines (failed AUTHs, closed floods): a few per
	 *  interval, then one summary line (default 10000). */
	uint32_t log_interval_ms;
	uint32_t max_handles;        /**< live handles per session (default 65536) */
	uint32_t frame_timeout_ms;   /**< a frame begun must progress within (default 10 s) */
	uint32_t auth_timeout_ms;    /**< HELLO + AUTH must finish within (default 5 s) */
	uint32_t idle_timeout_ms;    /**< close connections idle this long (default: never) */
	/** A session whose connection dropped (without BYE) waits this long
	 * for the client to reconnect and resume it, handles intact
	 * (default 30 s). */
	uint32_t session_linger_ms;
};

/**
 * What the control plane needs to take part in a fleet (docs/FLEET.md):
 * member connections authenticated with the fleet's token, receive grants,
 * and COPY / MOVE of resident tensors to other members.
 */
struct ctl_fleet_config {
	/** The fleet's pre-shared token: members prove it to each other
	 * (HMAC, as clients do with theirs). NULL (and token_file NULL): no
	 * member connection is accepted and no move is made. Copied. */
	const char *token;
	const char *token_file;
	/** This server's id in the fleet; NULL: its endpoint. Copied. */
	const char *member_id;
	/** "host:port" at which members and clients reach this server; NULL:
	 * the listen address and bound port. Copied. */
	const char *advertise;
	/** Optional: may a move go to host:port? 0, or a negative errno with
	 * why filled (at least 128 bytes), e.g. "not a member of this fleet".
	 * NULL: any server that proves the fleet token. Any thread. */
	int (*peer_check)(void *arg, const char *host, uint16_t port, char *why);
	/** Optional: fill the "fleet" object of STATS replies (the
	 * membership: static list or etcd view). Epoll thread. */
	void (*stats)(void *arg, cJSON *fleet);
	void *arg;
	/** A receive grant expires this long after it was made (default 180 s:
	 * longer than a move may take, since it is checked at the end). */
	uint32_t grant_ttl_ms;
	/** Grants outstanding per server (default 1024) and per session (64). */
	uint32_t max_grants, max_session_grants;
	/** Data path of member connections (default auto: DPDK where both
	 * have it and a probe works, else TCP). */
	enum dj_path move_path;
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
	/** A request slower than this is logged at notice level with its
	 *  request id (default 1000 ms; every request is logged at debug). */
	uint32_t slow_request_ms;
	/** The connection thread polls for the next event this long before it
	 *  sleeps in epoll_wait: a request arriving meanwhile is served without
	 *  a wake-up (several microseconds each way). -1 (default): 50 where 8
	 *  or more CPUs are online, else 0 (never spin). */
	int32_t busy_poll_us;
	/** Membership in a fleet of servers; all zero: a lone server that
	 * accepts no member connections and makes no moves. */
	struct ctl_fleet_config fleet;
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
	uint64_t connections_unauth;  /**< open, not yet authenticated */
	uint64_t unauth_evicted;      /**< closed to keep within their budget */
	uint64_t auth_delayed;        /**< AUTHs judged late (their address failed) */
	uint64_t auth_failures, sessions_opened;
	uint64_t requests, errors_sent, protocol_errors;
	uint64_t bytes_in, bytes_out;
	uint64_t sessions_dpdk, sessions_tcp;
	uint64_t ops;             /**< operations executed (a batch counts each) */
	uint64_t moves_out, moves_failed; /**< fleet moves made by this server */
};
void ctl_server_get_stats(struct ctl_server *server,
			     struct ctl_server_stats *stats);

/** Request types, as counted by ctl_server_request_stats(); OTHER: an
 *  unknown type or a message that named none. */
enum ctl_req_type {
	CTL_REQ_HELLO, CTL_REQ_AUTH, CTL_REQ_SESSION, CTL_REQ_PATH, CTL_REQ_STATS,
	CTL_REQ_ALLOC, CTL_REQ_PUT, CTL_REQ_PUT_DONE, CTL_REQ_GET, CTL_REQ_DESCRIBE,
	CTL_REQ_FREE, CTL_REQ_EXECUTE, CTL_REQ_PING, CTL_REQ_BYE, CTL_REQ_FLEET_GRANT,
	CTL_REQ_FLEET_ADOPT, CTL_REQ_FLEET_MOVE, CTL_REQ_OTHER,
	CTL_REQ_TYPES
};

/** The message type of t ("PUT"...; "OTHER"). Static. */
const char *ctl_req_type_name(enum ctl_req_type t);

/** Upper bounds, in seconds, of the request latency histogram's buckets
 *  (a last bucket holds the slower ones). */
#define CTL_LATENCY_BUCKETS 18
extern const double ctl_latency_bounds[CTL_LATENCY_BUCKETS];

/** Tensor bytes' direction: into the server (PUT) or out of it (GET). */
enum ctl_dir { CTL_DIR_IN, CTL_DIR_OUT, CTL_DIRS };

/**
 * Requests and tensor transfers since the server started, and what waits.
 * A request's latency runs from its message read whole to its reply
 * written to the socket (a TCP GET: its last payload byte), so it
 * includes worker queueing, data-plane transfers and payload streaming.
 */
struct ctl_request_stats {
	uint64_t ok[CTL_REQ_TYPES];       /**< answered with their reply */
	uint64_t errors[CTL_REQ_TYPES];   /**< answered with ERROR, or abandoned */
	/** Per type: observations per bucket (not cumulative), the last
	 *  beyond ctl_latency_bounds[CTL_LATENCY_BUCKETS - 1]. */
	uint64_t latency[CTL_REQ_TYPES][CTL_LATENCY_BUCKETS + 1];
	uint64_t latency_sum_ns[CTL_REQ_TYPES];
	/** Tensor payload bytes and completed transfers, by path (indexed by
	 *  enum dj_path: DJ_PATH_TCP, DJ_PATH_DPDK) and direction. */
	uint64_t tensor_bytes[3][CTL_DIRS], tensor_transfers[3][CTL_DIRS];
	uint64_t dp_failures;    /**< data-plane transfers that failed */
	uint64_t jobs_queued;    /**< waiting for a worker now */
	uint64_t jobs_running;   /**< on a worker now */
	/** Sessions now (as of the last sweep, at most 100 ms old), by
	 *  state (1: a connection holds it, 0: lingering without one) and
	 *  path (enum dj_path). */
	uint64_t sessions[2][3];
};

/** Read the request counters (never blocks the epoll thread). */
void ctl_server_request_stats(struct ctl_server *server, struct ctl_request_stats *stats);

/** One session, as of the last sweep. */
struct ctl_session_info {
	uint64_t id;
	enum dj_path path;
	int attached;             /**< a connection holds it (else lingering) */
	char peer[48];            /**< the connection's address, "" while lingering */
	uint64_t age_ms;          /**< since it opened */
	uint64_t requests, bytes_in, bytes_out, dp_failures;
	uint32_t handles;
	uint32_t inflight;        /**< requests of its connection not answered yet */
};

/**
 * Copy up to max sessions (as of the last sweep, every 100 ms) into out.
 * Safe from any thread.
 * @return the number of sessions (may exceed max; only max were copied).
 */
int ctl_server_sessions(struct ctl_server *server, struct ctl_session_info *out, int max);

/**
 * This server as a fleet member record (docs/FLEET.md): {"id",
 * "incarnation", "endpoint", "caps", "load"}, built fresh (device memory,
 * queued jobs, recent ops/s). The same object is STATS' "member" and the
 * value a member registers in etcd. Any thread; the caller frees it; NULL
 * where memory ran out.
 */
cJSON *ctl_server_member_json(struct ctl_server *server);

/** This server's member id and its incarnation (random, drawn at create:
 * a restarted server is a new incarnation of the same id). */
const char *ctl_server_member_id(const struct ctl_server *server);
uint64_t ctl_server_incarnation(const struct ctl_server *server);

/**
 * The path decision, shared by client and server so both apply one rule:
 * forced TCP -> TCP; DPDK only when both sides have it and probe_rc == 0;
 * forced DPDK without it -> -DJ_ENODPDK. reason receives a short text
 * ("client forced tcp", "server has no DPDK", "probe failed: ..."), or
 * refused where that is not NULL and both sides have DPDK: why the peer
 * opened no data-plane session (SESSION's dp_reason; probe_rc then says
 * its error, not a probe's).
 * @return 0 (*chosen set), -DJ_ENODPDK (dpdk wanted and not possible).
 */
int ctl_path_decide(enum dj_path want, int local_dpdk, int peer_dpdk, int probe_rc,
		    const char *refused, enum dj_path *chosen, char *reason, size_t reason_len);


#ifdef __cplusplus
}
#endif

#endif /* DJINN_CONTROL_H */
