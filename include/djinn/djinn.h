/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_DJINN_H
#define DJINN_DJINN_H

/**
 * @file
 * The Djinn client API: run tensor work on a remote Djinn server.
 *
 *   struct dj_client_options o;  dj_client_options_init(&o);  o.host = "10.0.0.2";
 *   dj_client_create(&o, &client);          // a pool of connections to one server
 *   dj_connect(client, &conn);              // pooled: reuses an idle session
 *   dj_put(conn, &a, &ha);  dj_put(conn, &b, &hb);
 *   dj_execute(conn, "matmul", (uint64_t[]){ha, hb}, 2, NULL, &hc, &desc_c);
 *   dj_get(conn, hc, &c);                   // results stay remote until asked for
 *   dj_free(conn, ha); ...
 *   dj_disconnect(conn);                    // back to the pool
 *   dj_client_destroy(client);
 *
 * Every call has an asynchronous form returning a future (wait on it, or get
 * a callback on the connection's reader thread). Requests may be in flight
 * by the thousand on one connection; replies come back in any order.
 *
 * Tensor handles belong to the session of the connection that made them: a
 * connection returned to the pool keeps its session (and handles) for the
 * next dj_connect of the same client. Tensors are contiguous, row-major.
 *
 * Threads: a dj_conn may be used by several threads at once (requests are
 * serialised on the socket, replies matched by id). Release every future of a
 * connection before dj_disconnect / dj_conn_close. Where the connection drops,
 * idempotent calls (ping, stats, describe, get over TCP) reconnect and resume
 * the session (the server keeps it for a while); other calls fail with
 * -ECONNRESET and may be repeated by the caller.
 */

#include <stddef.h>
#include <stdint.h>

#include "djinn/common.h"
#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default TCP port of a server's control plane. */
#define DJ_DEFAULT_PORT 18515
/** At most this many inputs / outputs per operation. */
#define DJ_MAX_OP_ARGS 16

/** Which path carries tensor bytes. The numeric values are not on the wire. */
enum dj_path {
	DJ_PATH_AUTO = 0, /**< DPDK when both sides have it and a probe works */
	DJ_PATH_TCP,      /**< the control connection carries the bytes */
	DJ_PATH_DPDK,     /**< the DPDK data plane; fail rather than fall back */
};

/** "auto", "tcp", "dpdk". Static string. */
const char *dj_path_name(enum dj_path path);
/** Parse a dj_path_name(); -EINVAL otherwise. */
int dj_path_parse(const char *name, enum dj_path *path);

/** Token from DJINN_TOKEN, else the file DJINN_TOKEN_FILE, else path (may be
 * NULL). Trailing newlines are dropped. *token is malloc'ed: caller frees.
 * -ENOENT where none is set. */
int dj_token_load(const char *path, char **token);

/** A data path that carries tensor bytes beside the control connection
 * (the DPDK data plane); opaque to clients. */
struct dj_datapath;

struct dj_client_options {
	const char *host;             /**< IPv4 address or name; default "127.0.0.1" */
	uint16_t port;                /**< default DJ_DEFAULT_PORT */
	const char *token;            /**< NULL: DJINN_TOKEN / DJINN_TOKEN_FILE / token_file */
	const char *token_file;
	int tls;                      /**< 1: TLS on the control connection */
	const char *tls_ca;           /**< PEM CA / certificate to verify the server;
					   NULL with tls: no verification (logged) */
	enum dj_path path;            /**< auto (default), tcp or dpdk */
	/** Client-side data path (DPDK), borrowed; NULL: TCP only. */
	const struct dj_datapath *datapath;
	uint32_t probe_timeout_ms;    /**< data-plane probe (default 500) */
	uint32_t dp_timeout_ms;       /**< a data-plane transfer fails after this long without
					   progress, whatever its size (default 10000) */
	int dp_max_failures;          /**< failed transfers in a row before the
					   session moves to TCP (default 2) */
	uint32_t connect_timeout_ms;  /**< one connect attempt (default 2000) */
	uint32_t request_timeout_ms;  /**< one request (default 30000; 0: none) */
	int max_retries;              /**< connect / idempotent request (default 5) */
	uint32_t backoff_base_ms;     /**< first retry delay (default 50), doubling, with jitter */
	uint32_t backoff_max_ms;      /**< cap (default 2000) */
	int pool_max_idle;            /**< idle connections kept (default 8) */
	uint32_t pool_idle_timeout_ms; /**< idle longer: closed (default 60000) */
	uint32_t pool_check_after_ms; /**< idle longer: PING before reuse (default 5000) */
	/** Busy-wait this long for a reply before sleeping (default 50; 0:
	 * sleep at once). Spinning saves a thread wake-up (~20 us) per
	 * blocking call at the cost of a core while it lasts. */
	uint32_t wait_spin_us;
};

/** Fill options with the defaults above. */
void dj_client_options_init(struct dj_client_options *opts);

struct dj_client;   /**< options + pool of connections to one server */
struct dj_conn;     /**< one authenticated session on one connection */
struct dj_future;   /**< one request in flight */

/** Copies opts (strings included). Connects nothing yet. */
int dj_client_create(const struct dj_client_options *opts, struct dj_client **client);
/** Close every pooled connection; every dj_conn must be disconnected first. */
void dj_client_destroy(struct dj_client *client);

/** A session: an idle pooled one (health-checked) or a new connection
 * (connect retried with backoff; HELLO, AUTH, SESSION, path negotiation). */
int dj_connect(struct dj_client *client, struct dj_conn **conn);
/** Give conn back to the pool (or close it where broken or the pool is full). */
void dj_disconnect(struct dj_conn *conn);
/** Close conn for good (BYE); its session and handles are freed. */
void dj_conn_close(struct dj_conn *conn);

/** The path this session uses and why ("both sides have DPDK, probe rtt 12 us"). */
enum dj_path dj_conn_path(const struct dj_conn *conn, const char **reason);
uint64_t dj_conn_session_id(const struct dj_conn *conn);

/* Blocking calls. Each returns 0 or a negative errno / DJ_E*; a server
 * ERROR reply returns its code, and dj_conn_last_error() its message.
 * -EDEADLK from a put or get: the local data path may still read (put) or
 * write (get) the tensor's memory; keep that memory valid. */

/** Upload t (host memory) into a new remote tensor; *handle receives it. */
int dj_put(struct dj_conn *conn, const struct dj_tensor *t, uint64_t *handle);
/** Overwrite an existing remote tensor (same byte size) with t. */
int dj_put_into(struct dj_conn *conn, uint64_t handle, const struct dj_tensor *t);
/** Allocate an uninitialised remote tensor. */
int dj_alloc(struct dj_conn *conn, const struct dj_tensor_desc *desc, uint64_t *handle);
/** Download handle into t->data (host, caller-allocated); t->desc must have
 * the remote tensor's byte size (-EMSGSIZE otherwise), and receives its
 * shape and dtype. */
int dj_get(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t);
int dj_describe(struct dj_conn *conn, uint64_t handle, struct dj_tensor_desc *desc);
int dj_free(struct dj_conn *conn, uint64_t handle);
/**
 * Run op on input handles; attrs_json is a JSON object text ("{\"dim\":1}")
 * or NULL. The first output's handle and description land in *out /
 * *out_desc (either may be NULL).
 */
int dj_execute(struct dj_conn *conn, const char *op, const uint64_t *inputs, int n_in,
	       const char *attrs_json, uint64_t *out, struct dj_tensor_desc *out_desc);
/** Round trip; *rtt_ns (may be NULL) receives it. */
int dj_ping(struct dj_conn *conn, uint64_t *rtt_ns);
/** Server and session statistics as JSON text; *json is malloc'ed, caller frees. */
int dj_stats(struct dj_conn *conn, char **json);
/** Text of the last ERROR reply on this connection (per thread not kept). */
const char *dj_conn_last_error(const struct dj_conn *conn);

/** A batch: ops run in order, in one request. An input "$k" refers to the
 * first output of op k of the same batch. */
struct dj_batch_op {
	const char *op;
	const char *inputs[DJ_MAX_OP_ARGS]; /**< "0x1234..." handle text or "$k" */
	int n_in;
	const char *attrs_json;                 /**< or NULL */
};
/** Run a batch; outputs[i] receives op i's first output handle. */
int dj_execute_batch(struct dj_conn *conn, const struct dj_batch_op *ops, int n_ops,
		     uint64_t *outputs);

/* Asynchronous forms: the request is sent before they return (a put's
 * payload included); the reply completes the future. cb (may be NULL) runs on
 * the connection's reader thread when it completes: keep it short, and do
 * not wait on other futures there. The caller releases every future. */

typedef void (*dj_future_cb)(struct dj_future *future, void *arg);

int dj_put_async(struct dj_conn *conn, const struct dj_tensor *t,
		 dj_future_cb cb, void *arg, struct dj_future **future);
/** t->data must stay valid until the future completes. */
int dj_get_async(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
		 dj_future_cb cb, void *arg, struct dj_future **future);
int dj_execute_async(struct dj_conn *conn, const char *op, const uint64_t *inputs,
		     int n_in, const char *attrs_json,
		     dj_future_cb cb, void *arg, struct dj_future **future);
int dj_free_async(struct dj_conn *conn, uint64_t handle,
		  dj_future_cb cb, void *arg, struct dj_future **future);

/** Wait for completion (timeout_ms < 0: the request's own timeout); returns
 * the request's result, or -ETIMEDOUT (the future stays pending). */
int dj_future_wait(struct dj_future *future, int timeout_ms);
/** 1 when complete. */
int dj_future_done(const struct dj_future *future);
/** Output handle / description of a completed put, alloc or execute. */
int dj_future_handle(const struct dj_future *future, uint64_t *handle,
		     struct dj_tensor_desc *desc);
/** Every output of a completed EXECUTE (of the last op of a batch): up to
 * max handles and descriptions (descs may be NULL); returns their number, or
 * a negative error. */
int dj_future_outputs(const struct dj_future *future, uint64_t *handles,
		      struct dj_tensor_desc *descs, int max);
/** Error text of a failed request ("" otherwise); valid until release. */
const char *dj_future_error(const struct dj_future *future);
/** Release the caller's reference; a pending request completes unseen. */
void dj_future_release(struct dj_future *future);

/** Client-side counters, for the pool and retries. */
struct dj_client_stats {
	uint64_t connects;        /**< new connections made */
	uint64_t reuses;          /**< dj_connect served from the pool */
	uint64_t health_checks, health_failures, idle_closed;
	uint64_t retries;         /**< connect + request retries */
	uint64_t dp_fallbacks;    /**< sessions moved from DPDK to TCP mid-way */
	double reuse_rate;        /**< reuses / (reuses + connects) */
};
void dj_client_get_stats(struct dj_client *client, struct dj_client_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_DJINN_H */
