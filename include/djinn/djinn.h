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
/** At most this many bytes of puts in one batch (the request carries them). */
#define DJ_BATCH_PUT_MAX (64ull << 20)

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

/**
 * The pre-shared token: the file at path where path is not NULL, else
 * DJINN_TOKEN, else the file DJINN_TOKEN_FILE names. Trailing newlines are
 * dropped. *token is malloc'ed: the caller frees it.
 *
 * @return
 *   - 0: *token set.
 *   - -ENOENT: no source is set (or the file does not exist).
 *   - -ENODATA: the file is empty.
 *   - -E2BIG: the file holds more than 4095 bytes (a newline aside).
 *   - -errno of fopen(): the file cannot be read; -ENOMEM.
 */
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
	 * blocking call at the cost of a core while it lasts. Where 8 or
	 * more CPUs are online the connection's reader thread also polls its
	 * socket this long before it blocks in read(2). */
	uint32_t wait_spin_us;
	/** The device new sessions keep their tensors on by default ("cuda:1"),
	 * sent in SESSION; NULL: the server's choice (docs/MULTIGPU.md). */
	const char *device;
	/** 1: JSON frames only. Default 0: PING, FREE and single-op EXECUTE
	 * travel as binary frames where the server offers them in HELLO
	 * (docs/CONTROL.md, "Binary frames"). */
	int json_only;
	/** Stripes: over DPDK, a session asks the server for one data-plane
	 *  session per queue pair, at most this many (default 0: as many as
	 *  both sides' queues; 1: one, as before). A tensor of at least twice
	 *  dp_stripe_min bytes then moves in parts of whole cache lines, one
	 *  per stripe, at once (docs/CONTROL.md, "Stripes"); smaller ones go
	 *  whole, on the stripes in turn. */
	unsigned int dp_stripes;
	/** Least bytes of one part (default 8 MiB, DJ_STRIPE_MIN_DEFAULT):
	 *  a tensor of n bytes goes in min(stripes, n / dp_stripe_min) parts. */
	uint64_t dp_stripe_min;
	/** 1: every request is written to the socket at once. Default 0
	 * (autocorking): while a request of the connection awaits its reply,
	 * a new small request waits in the connection's buffer and goes out
	 * with others when a reply comes, dj_future_wait() starts waiting, or
	 * dj_conn_flush() is called: one send(2) for many requests. A request
	 * with nothing before it on the wire is sent at once, as without
	 * corking. Behind a slow request (a long EXECUTE) a corked one
	 * waits a few milliseconds at most (the reader's read timing out,
	 * 2 ms, rounded up to the kernel's tick). TLS connections never
	 * cork. */
	int no_autocork;
	/** Corking needs replies to flow: a request is corked only where the
	 * reader read a reply within this long (default 500). Behind a slow
	 * request alone, a new one is written at once instead of waiting for
	 * the reader's timed-out read. A slow server (one reply every few
	 * milliseconds) corks with a longer window; 0 keeps the default. */
	uint32_t cork_flow_us;
};

/** dp_stripe_min's default: below about 8 MiB a part is too small to fill
 *  its window, and two parts lose to one (docs/PERFORMANCE.md, Goal 2). */
#define DJ_STRIPE_MIN_DEFAULT (8ull << 20)

/** Fill options with the defaults above. */
void dj_client_options_init(struct dj_client_options *opts);

struct dj_client;   /**< options + pool of connections to one server */
struct dj_conn;     /**< one authenticated session on one connection */
struct dj_future;   /**< one request in flight */

/**
 * Copies opts (strings included) and loads the token. Connects nothing yet.
 * @return 0, -EINVAL, -ENOMEM, -DJ_ENODPDK (path DPDK without a datapath),
 *   the errno of a named token file that cannot be read (token_file, or
 *   DJINN_TOKEN_FILE without DJINN_TOKEN: -ENOENT, -EACCES...), -ENODATA
 *   for an empty one, or TLS set-up errors.
 */
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

/**
 * The path this session uses and why ("both sides have DPDK and the probe
 * succeeded"). Safe while other threads use conn: the path and its reason
 * are read together, as of one moment (a transfer may move the session to
 * TCP right after).
 *
 * @param reason
 *   NULL, or receives the reason: this thread's copy, valid until this
 *   thread calls dj_conn_path() again or exits, whatever happens to conn
 *   meanwhile (it is never rewritten by another thread, nor freed with
 *   conn). Copy it to keep it longer.
 * @return
 *   DJ_PATH_TCP or DJ_PATH_DPDK (never DJ_PATH_AUTO).
 */
enum dj_path dj_conn_path(const struct dj_conn *conn, const char **reason);
uint64_t dj_conn_session_id(const struct dj_conn *conn);
/**
 * The session's default device as the server named it. Safe while other
 * threads use conn (a reconnect to a server that lost the session may
 * change it).
 *
 * @return
 *   "cuda:0", "host"..., or "" where the server names no devices: this
 *   thread's copy, valid until this thread calls dj_conn_device() again
 *   or exits (never rewritten by another thread, nor freed with conn).
 */
const char *dj_conn_device(const struct dj_conn *conn);

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
/**
 * Send the requests that autocorking holds back (see
 * dj_client_options.no_autocork) now, for a caller about to wait in its own
 * way (an event loop) on a future of conn. Waiting in dj_future_wait() and
 * the blocking calls flush by themselves, and replies flush what was corked
 * behind them, so a request is never held back for good.
 * @return 0, or the send's error (-EPIPE, -ECONNRESET...): the connection is
 * then abandoned and its pending requests complete with an error.
 */
int dj_conn_flush(struct dj_conn *conn);
/** Round trip; *rtt_ns (may be NULL) receives it. */
int dj_ping(struct dj_conn *conn, uint64_t *rtt_ns);
/** Server and session statistics as JSON text; *json is malloc'ed, caller frees. */
int dj_stats(struct dj_conn *conn, char **json);
/**
 * Text of the last ERROR reply on this connection, of whichever thread's
 * request (not kept per thread), or of a failed handshake.
 *
 * @return
 *   The text, "" where none: this thread's copy, valid until this thread
 *   calls dj_conn_last_error() again or exits (never rewritten by another
 *   thread, nor freed with conn).
 */
const char *dj_conn_last_error(const struct dj_conn *conn);

/**
 * One entry of a batch: an operation, or an upload (put). Entries run in
 * order, in one request; an input "$k" refers to the first output of entry k
 * of the same batch. Leave the fields you do not use zero.
 */
struct dj_batch_op {
	const char *op;                         /**< operation name, or NULL with put */
	const char *inputs[DJ_MAX_OP_ARGS];     /**< "0x1234..." handle text or "$k" */
	int n_in;
	const char *attrs_json;                 /**< or NULL */
	/** Instead of op: a new tensor holding these bytes (host memory),
	 * carried inside the request (no PUT round trip of its own). */
	const struct dj_tensor *put;
	/** 1: the entry's first output comes back with the reply (see
	 * dj_execute_batch_async()). */
	int fetch;
	/** After this entry ran (and was fetched), free the first outputs of
	 * these entries: indices up to this entry's own, each a tensor this
	 * batch made (not an in-place op's destination), each freed once. */
	const int *free;
	int n_free;
	/** The device the entry's new tensor is made on ("cuda:1"; NULL: the
	 * session's): a put's tensor, or an operation's output (moved there
	 * where its inputs are elsewhere; docs/CONTROL.md, "Devices"). A
	 * server that names no devices refuses it (-ENOTSUP). */
	const char *device;
};
/**
 * Run a batch; outputs[i] receives entry i's first output handle (of a
 * freed entry too: that handle is gone). All or nothing: where an entry
 * fails, every tensor the batch made is freed. No entry may fetch here.
 * @return 0, -EINVAL (bad entry: op and put both or neither, a free naming a
 * later entry, fetch), -ENOTSUP (a put not in host memory), -DJ_ELIMIT (puts
 * over DJ_BATCH_PUT_MAX in all: PUT them instead), or the server's error.
 */
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
/**
 * A batch, asynchronously: the request and its puts' bytes are sent before
 * this returns (the put tensors may be reused at once). The fetched outputs'
 * bytes land back to back, in entry order, in fetch_buf (host memory;
 * fetch_len must be exactly their total size, else the future fails with
 * -EMSGSIZE), which must stay valid until the future completes. Entry
 * handles: dj_future_batch_handles().
 * @return 0 (then the future tells the batch's result), -EINVAL, -ENOTSUP,
 * -ENOMEM, or a connection error.
 */
int dj_execute_batch_async(struct dj_conn *conn, const struct dj_batch_op *ops, int n_ops,
			   void *fetch_buf, uint64_t fetch_len,
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
/** First output handle of every entry of a completed batch, up to max;
 * returns their number, or a negative error (the batch's). */
int dj_future_batch_handles(const struct dj_future *future, uint64_t *handles, int max);
/** Error text of a failed request ("" otherwise); valid until release. */
const char *dj_future_error(const struct dj_future *future);
/**
 * Give up on a pending request, as a blocking call does when its request
 * times out: the connection is abandoned, so that no late reply can land in
 * the request's buffer (a GET's, a batch's fetch_buf). Every pending request
 * of the connection then completes with -ECONNRESET (callbacks run); the
 * next idempotent call (ping, stats, describe, get) reconnects and resumes
 * the session, other calls fail with -ECONNRESET until then. For callers
 * that wait in their own way (an event loop's timeout): futures complete
 * on a reply or a lost connection, never on request_timeout_ms alone.
 * The future stays the caller's to release.
 * @return 0, -EALREADY (it had completed: nothing done).
 */
int dj_future_abandon(struct dj_future *future);
/** Release the caller's reference; a pending request completes unseen. */
void dj_future_release(struct dj_future *future);

/* ---- The client's DPDK data path ------------------------------------------ */

/*
 * Tensor bytes over DPDK instead of the control connection: start one with
 * dj_dpdk_create() from the program's command line
 * (`prog [EAL args] -- [app args]`), put dj_dpdk_datapath() into
 * dj_client_options.datapath, and the sessions of that client negotiate the
 * DPDK path with the server (DJ_PATH_AUTO falls back to TCP where the probe
 * fails). One per process: EAL starts once.
 *
 *   struct dj_dpdk_options d;  dj_dpdk_options_init(&d);
 *   if (dj_dpdk_create(argc, argv, &d, &argc, &argv, &dpdk) == 0)
 *           opts.datapath = dj_dpdk_datapath(dpdk);
 *   ... dj_client_create(&opts, &client) ... dj_client_destroy(client);
 *   dj_dpdk_destroy(dpdk);
 */

/** The vdev added where the EAL args name no device: a memif client on
 *  djinn-dp's default socket. */
#define DJ_DPDK_DEFAULT_VDEV \
	"net_memif0,role=client,socket=/tmp/djinn-dp.memif,socket-abstract=no,bsize=9216"
/** This side's data-plane IPv4 by default (djinn-dp's is 198.18.0.1). */
#define DJ_DPDK_DEFAULT_IP "198.18.0.2"

/** How an idle data-plane lcore waits for work (djinn-dp --dp-idle). */
enum dj_dpdk_idle {
	DJ_DPDK_IDLE_DEFAULT = 0, /**< naps where idle_sleep_us is set, else polling */
	DJ_DPDK_IDLE_POLL,        /**< poll without pause: a dedicated core */
	DJ_DPDK_IDLE_NAP,         /**< after 30 us idle, nap idle_sleep_us at a time */
	/** After 30 us idle, sleep until a frame (the port's rx interrupt:
	 *  memif, NICs that have one), a command or a timer wakes the lcore;
	 *  ports without rx interrupts nap instead. */
	DJ_DPDK_IDLE_INTERRUPT,
};

struct dj_dpdk_options {
	/** Added as --vdev where the EAL args name no device (-a, --vdev,
	 *  -b); default DJ_DPDK_DEFAULT_VDEV, NULL: none. */
	const char *default_vdev;
	/** ethdev name of the port ("net_memif0", a PCI address); NULL
	 *  (default): the first port. */
	const char *port;
	const char *local_ip;     /**< this side's data-plane IPv4; default DJ_DPDK_DEFAULT_IP */
	/** Largest frame, Ethernet header included (default 9014: jumbo,
	 *  as memif's bsize=9216 carries); 1514 for a standard NIC. */
	uint16_t frame_size;
	/** An idle polling lcore naps this long (shared cores); default 0:
	 *  poll without pause, for a dedicated core. */
	uint32_t idle_sleep_us;
	/** Wait this long for the link (a memif server to accept) before
	 *  returning; default 0: return at once, a later probe finds out. */
	uint32_t link_timeout_ms;
	/** Memory (MiB) under --no-huge, where the EAL args give no -m;
	 *  default 512. */
	unsigned int no_huge_mem_mb;
	/** Queue pairs of the port, one polling lcore each (EAL needs this
	 *  many worker lcores); default 0: one. With several, a session asks
	 *  the server for as many stripes (dj_client_options.dp_stripes). */
	unsigned int queues;
	/** What an idle lcore does; DJ_DPDK_IDLE_DEFAULT (0) follows
	 *  idle_sleep_us: naps where it is set, else polling. */
	enum dj_dpdk_idle idle;
	/** DJ_DPDK_IDLE_INTERRUPT only: a thread that waits for a transfer
	 *  runs the sleeping lcore's loop itself for up to 200 us, so that a
	 *  small transfer needs no thread wake-up (default 0: off). */
	int caller_runs;
};

/** An EAL and a polling data-plane engine on one port; opaque. */
struct dj_dpdk;

/** Fill opts with the defaults above. */
void dj_dpdk_options_init(struct dj_dpdk_options *opts);

/**
 * Start DPDK for a client: EAL with the arguments before "--" in argv, with
 * djinn-dp's defaults where they say nothing (private run-time files,
 * --no-huge where no hugepage is free, opts->default_vdev where no device is
 * named), then the data-plane engine on the port, polling on the first worker
 * lcore (so EAL needs two lcores, e.g. -l 0-1; it takes every core without
 * -l). opts NULL: the defaults.
 *
 * The application's arguments (argv[0], then what follows "--") land in
 * *app_argc / *app_argv (either pointer may be NULL), also where this
 * fails, so that a caller can go on over TCP. They point into argv (whose
 * "--" slot is overwritten with argv[0]) or into static storage.
 *
 * EAL starts once per process; after a failure here, or dj_dpdk_destroy(),
 * it cannot start again.
 *
 * @return
 *   - 0: *dpdk is the caller's, release it with dj_dpdk_destroy().
 *   - -EINVAL: argc < 1, argv or dpdk NULL, local_ip not an IPv4 address,
 *     frame_size below 128, queues above 16, idle not a dj_dpdk_idle,
 *     caller_runs without DJ_DPDK_IDLE_INTERRUPT.
 *   - -EALREADY: EAL was started (or tried) before in this process.
 *   - -E2BIG: too many EAL arguments.
 *   - -ENODEV: EAL started, but there is no port, or none of that name.
 *   - -ENOMEM: out of memory (hugepages or -m too small).
 *   - other negative errno values from EAL (-EACCES: not permitted, -EPERM,
 *     -EFAULT, ...; DPDK logs the reason) or from the port's driver.
 */
int dj_dpdk_create(int argc, char **argv, const struct dj_dpdk_options *opts,
		   int *app_argc, char ***app_argv, struct dj_dpdk **dpdk);

/** What goes into dj_client_options.datapath: valid until dj_dpdk_destroy(). */
const struct dj_datapath *dj_dpdk_datapath(const struct dj_dpdk *dpdk);

/**
 * Stop the lcores (the port stays up until the end so that a memif peer
 * never sees its rings vanish under a burst), free the engine and the port,
 * and stop EAL. Destroy every dj_client using the data path first. NULL is a
 * no-op.
 */
void dj_dpdk_destroy(struct dj_dpdk *dpdk);

/** Client-side counters: the pool, retries and autocorking. */
struct dj_client_stats {
	uint64_t connects;        /**< new connections made */
	uint64_t reuses;          /**< dj_connect served from the pool */
	uint64_t health_checks, health_failures, idle_closed;
	uint64_t retries;         /**< connect + request retries */
	uint64_t dp_fallbacks;    /**< sessions moved from DPDK to TCP mid-way */
	double reuse_rate;        /**< reuses / (reuses + connects) */
	/** Autocorking: requests that waited in a connection's buffer, and
	 * socket writes that carried requests (a lone request's or a flush's,
	 * the handshake's included). */
	uint64_t corked, request_writes;
	/** Flushes of corked requests: by a connection's reader after replies,
	 * by a caller (nothing else on the wire, a full buffer, dj_conn_flush,
	 * a connection's close), by dj_future_wait. */
	uint64_t flushes_reader, flushes_caller, flushes_wait;
};
void dj_client_get_stats(struct dj_client *client, struct dj_client_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_DJINN_H */
