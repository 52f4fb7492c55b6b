/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_SERVER_H
#define DJINN_CTL_SERVER_H

/*
 * Server internals. One epoll thread owns every connection and session (no
 * locks on them); worker threads run EXECUTE and data-path transfers and hand
 * finished replies back through a completion queue + eventfd.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/djc.h"
#include "controlplane/ctl.h"
#include "ctl_io.h"
#include "ctl_stripe.h"
#include "ctl_wire.h"
#include "ctl_bin.h"

#define CTL_STAGING_BYTES (1u << 20)
/* The bytes of an EXECUTE batch's "put" entries travel in the request's
 * payload and are held in memory until the batch runs: at most this much. */
#define CTL_EXEC_PAYLOAD_MAX DJ_BATCH_PUT_MAX
/* Input buffer: many small frames per read(2); larger things (big JSON,
 * payloads) are read straight into place. */
#define CTL_INBUF_BYTES (64u << 10)
/* Replies gathered into one write. */
#define CTL_GATHER 64

enum conn_state { CS_HELLO, CS_AUTH, CS_READY, CS_CLOSING };

/* Failed AUTHs of one source address (ctl_guard.c); a fixed table. */
#define CTL_AUTH_ADDRS 1024
struct ctl_auth_addr {
	uint32_t addr;            /* IPv4, network order */
	uint32_t failures;        /* in a row; 0: a free slot */
	uint32_t window_failures; /* this log interval, for its summary */
	uint64_t last_ns;         /* the last failure */
	uint64_t next_ns;         /* its next AUTH is judged no sooner */
};

/* A few lines of one kind per interval, then a summary (ctl_guard.c). */
struct ctl_log_limit {
	const char *what;
	uint64_t window_start_ns;
	uint64_t logged, suppressed;
};
enum in_stage { IN_HDR, IN_JSON, IN_PAYLOAD, IN_BIN };

/*
 * Lifetimes. A connection holds its session while attached (ctl_conn.sess,
 * ctl_session.conn); when the connection closes the session is detached at
 * once (resumable, its linger clock running). A session also counts what
 * still uses it without a connection (refs): every worker job in flight and
 * every held read. The sweep closes a session only when it is detached, its
 * linger has passed and refs is 0, so a job never runs on a closed backend
 * session and a held tensor is never freed under the data path.
 */

/* A data-plane GET whose send returned -EDEADLK: frames may still read the
 * tensor, so its read stays open (the backend keeps the storage) until the
 * data path's send_pinned() says they let go. */
struct held_read {
	struct held_read *next;
	uint64_t xfer;
	struct ctl_stripe st;     /* the parts whose frames may read it */
	struct ctl_tensor_io io;
};

/* A PUT over the data plane between its READY and its PUT_DONE. */
struct dp_put {
	struct dp_put *next;
	uint64_t xfer, handle;
	int is_new;               /* free the handle where the transfer fails */
	struct ctl_stripe st;     /* where each part lands */
	struct ctl_tensor_io io;
};

struct ctl_session {
	struct ctl_session *next;
	uint64_t id, cookie;
	void *bsess;              /* the backend's session */
	struct ctl_conn *conn;    /* attached connection, or NULL while lingering */
	uint64_t linger_until_ns;
	enum dj_path path;
	char path_reason[160];
	struct dp_caps peer_caps;
	struct dp_put *dp_puts;
	/* Handles held against limits.max_handles: changed on the epoll
	 * thread and by workers as a batch makes tensors (ctl_handles_take). */
	_Atomic uint32_t n_handles;
	uint64_t requests, bytes_in, bytes_out, dp_failures;
	uint64_t opened_ns;
	int dp_opened;
	/* Why no stripe opened where both sides have a data path (the data
	 * path's error: -DJ_ELIMIT, -EEXIST...); 0 where one opened or none
	 * was tried. SESSION's reply says so (dp_open false). */
	int dp_error;
	unsigned int stripes;     /* data-plane sessions (ctl_stripe.h), >= 1 */
	int bye;                  /* closes as soon as its connection is gone */
	int member;               /* a fleet member's: no linger either */
	int refs;                 /* jobs in flight + held reads (see above) */
	struct held_read *held;
};

/* One queued reply: frame (header + JSON), then maybe a tensor's bytes;
 * or a chunk of binary replies written back to back (chunk: cap bytes at
 * frame, recycled by its connection once written). */
struct ctl_out {
	struct ctl_out *next;
	char *frame;
	size_t len, off;
	size_t cap;
	int chunk;
	uint64_t payload_len, payload_off;
	int has_read_io;
	struct ctl_tensor_io rio;
	/* A TCP GET's request, done once the last payload byte is written
	 * (req_t0 0: a reply that ends no request). */
	uint64_t req_t0;
	char req_trace[DJC_REQ_ID_MAX];
};

struct ctl_conn {
	struct ctl_conn *prev, *next;
	struct ctl_server *srv;
	struct ctl_stream io;
	enum conn_state state;
	int refs;                 /* the list + jobs in flight */
	int dead;
	int reading;              /* EPOLLIN armed */
	int writing;              /* EPOLLOUT armed */
	int touched;              /* on the completion pass's flush list */
	struct ctl_conn *next_touched;
	char peer[48];
	uint32_t addr;            /* the peer's IPv4, network order */
	int unauth;               /* on the server's unauthenticated list */
	struct ctl_conn *unauth_prev, *unauth_next;
	/* An AUTH waiting for its address's delay (ctl_guard.c): judged by
	 * the sweep; the connection reads nothing meanwhile. */
	int parked;
	uint64_t parked_id;
	uint8_t parked_mac[CTL_MAC_LEN];

	enum in_stage stage;
	uint8_t hdr[CTL_HDR_LEN];
	size_t hdr_got;
	struct ctl_hdr h;
	char *json;
	uint32_t json_got;
	uint64_t pay_got;
	int pay_into;             /* payload goes to wio (else: discarded) */
	struct ctl_tensor_io wio;
	uint64_t pay_id, pay_handle;
	int pay_is_new;
	char pay_err[CTL_ERRMSG_MAX];
	int pay_rc;
	/* An EXECUTE whose payload (its puts' bytes) is being read into
	 * exec_buf; submitted once the last byte is in. */
	cJSON *exec_msg;
	uint8_t *exec_buf;
	uint64_t exec_id;
	uint64_t pay_t0;          /* the PUT whose payload this is */
	char pay_trace[DJC_REQ_ID_MAX];

	/* The request being dispatched: its start, type and id (the client's
	 * "trace", or one made up); deferred where its reply comes later
	 * (worker job, payload still to read or write). */
	uint64_t req_t0;
	enum ctl_req_type req_type;
	char req_trace[DJC_REQ_ID_MAX];
	int req_deferred;
	/* Its parsed JSON, freed after dispatch unless a job took it over
	 * (ctl_take_request). */
	cJSON *req_msg;

	/* Binary frames (ctl_bin_server.c): negotiated in HELLO; the header
	 * of the one being read, and its body where it did not arrive whole
	 * in inbuf (else it is parsed there, in place). */
	int bin_offered;
	int binary;
	struct ctl_bin_hdr bh;
	uint8_t *bin_buf;         /* CTL_BIN_BODY_MAX, lazily */
	uint32_t bin_got;
	/* A written chunk of binary replies, kept for the next ones. */
	struct ctl_out *spare;

	uint8_t *inbuf;           /* CTL_INBUF_BYTES, lazily */
	size_t in_off, in_len;

	uint8_t *staging;
	size_t stage_len, stage_off;

	struct ctl_out *out_head, *out_tail;
	size_t out_bytes;
	uint32_t inflight;

	uint64_t accepted_ns, last_in_ns, last_out_ns;
	uint64_t frame_start_ns;  /* first byte of the frame being read */
	uint8_t nonce_c[CTL_NONCE_LEN], nonce_s[CTL_NONCE_LEN];
	struct dp_caps peer_caps;
	struct ctl_session *sess;
	/* A fleet member (HELLO "member"), authenticated with the fleet token. */
	int member;
	char member_id[CTL_MEMBER_ID_MAX];
};

struct ctl_job;
typedef cJSON *(*ctl_job_fn)(struct ctl_server *srv, struct ctl_job *job);

struct ctl_job {
	struct ctl_job *next;
	struct ctl_conn *conn;
	struct ctl_session *sess; /* counted in sess->refs until drained */
	void *bsess;
	uint64_t cookie;
	unsigned int stripes;     /* the session's */
	struct dp_endpoint peer;
	uint64_t id;
	cJSON *req;
	ctl_job_fn fn;
	struct dp_put *put;       /* PUT_DONE: the transfer to finish */
	cJSON *reply;
	int handles_delta;
	int dp_failed;
	struct held_read *held;   /* GET: moved to sess->held when drained */
	uint8_t *in_payload;      /* EXECUTE: the puts' bytes (owned) */
	uint64_t in_len;
	uint8_t *out_payload;     /* EXECUTE: fetched outputs, sent after the reply's JSON */
	uint64_t out_len;
	/* The request: type, id, start; what it moved over the data plane
	 * (set by fn on success) and a note for its log line. */
	enum ctl_req_type type;
	char trace[DJC_REQ_ID_MAX];
	uint64_t t0;
	int dp_moved;
	uint64_t dp_bytes;
	enum ctl_dir dp_dir;
	char note[96];
	/* A binary EXECUTE (ctl_bin_server.c): its request and result, in
	 * place of req and reply; NULL for JSON requests. */
	struct ctl_bin_job *bin;
};

struct ctl_server {
	struct ctl_server_config cfg;
	char *listen_addr, *tls_cert, *tls_key, *token;
	const struct ctl_backend *be;
	void *bctx;
	struct dp_caps caps;
	void *tls_ctx;
	int lfd, epfd, evfd;
	uint16_t port;
	pthread_t thread;
	pthread_t *workers;
	int running;
	atomic_int stopping;

	struct ctl_conn *conns;
	/* Not yet authenticated, oldest first (ctl_guard.c). */
	struct ctl_conn *unauth_head, *unauth_tail;
	atomic_uint n_unauth;     /* read by ctl_server_get_stats() from any thread */
	struct ctl_auth_addr *auth_addrs;
	struct ctl_log_limit log_auth, log_flood, log_timeout;
	struct ctl_session *sessions;
	uint64_t next_session_id;

	pthread_mutex_t lock;     /* jobs and completions */
	pthread_cond_t job_cond;
	struct ctl_job *jobs, *jobs_tail;
	struct ctl_job *done, *done_tail;
	uint64_t jobs_queued, jobs_running; /* under lock */

	struct {
		atomic_uint_fast64_t accepted, open, auth_failures, sessions;
		atomic_uint_fast64_t unauth_evicted, auth_delayed;
		atomic_uint_fast64_t requests, errors, protocol_errors;
		atomic_uint_fast64_t bytes_in, bytes_out, dpdk, tcp;
		atomic_uint_fast64_t ops, moves_out, moves_failed;
	} st;
	/* Request counters (ctl_stats.c): written by the epoll thread alone,
	 * read by any (metrics, telemetry). */
	struct {
		atomic_uint_fast64_t ok[CTL_REQ_TYPES], errors[CTL_REQ_TYPES];
		atomic_uint_fast64_t latency[CTL_REQ_TYPES][CTL_LATENCY_BUCKETS + 1];
		atomic_uint_fast64_t latency_sum_ns[CTL_REQ_TYPES];
		atomic_uint_fast64_t tensor_bytes[3][CTL_DIRS], tensor_transfers[3][CTL_DIRS];
		atomic_uint_fast64_t dp_failures;
	} rq;
	/* Sessions as of the last sweep, for other threads (ctl_server_sessions). */
	pthread_mutex_t snap_lock;
	struct ctl_session_info *snap;
	int n_snap, snap_total;
	uint64_t snap_count[2][3];
	uint64_t next_snap_ns;

	/* Fleet membership (ctl_fleet.c): the fleet's token, this member's
	 * id and incarnation, grants, outgoing member connections. */
	char *fleet_token;
	struct ctl_fleet *fleet;
};

/* ctl_server.c */
void ctl_send(struct ctl_conn *c, cJSON *msg);
/* msg's frame followed by len bytes of payload (taken over: freed). */
void ctl_send_payload(struct ctl_conn *c, cJSON *msg, void *payload, uint64_t len);
void ctl_send_out(struct ctl_conn *c, struct ctl_out *out);
void ctl_send_error(struct ctl_conn *c, uint64_t id, int code, const char *msg);
void ctl_close_after_flush(struct ctl_conn *c);
/* msg kept past its dispatch: the request being dispatched itself, taken
 * over (no copy), or a copy where msg is some other message. NULL: out of
 * memory. */
cJSON *ctl_take_request(struct ctl_conn *c, const cJSON *msg);
int ctl_submit(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
	       ctl_job_fn fn, struct dp_put *put);
/* As ctl_submit, for an EXECUTE whose request payload (buf, len bytes) the
 * job takes over (freed with the job, also on failure). */
int ctl_submit_payload(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
		       ctl_job_fn fn, uint8_t *buf, uint64_t len);
/* Run fn for request id on the connection thread now, as a worker would,
 * and queue its reply: for requests the backend says are quick
 * (execute_inline), which then skip two thread hand-offs. req is borrowed. */
void ctl_run_inline(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, const cJSON *req,
		    ctl_job_fn fn);
/* Room for n bytes (a binary reply) at the end of c's output, in a chunk of
 * binary replies; NULL where memory ran out. ctl_out_commit(c, n) then
 * queues the n bytes written there. */
uint8_t *ctl_out_reserve(struct ctl_conn *c, size_t n);
void ctl_out_commit(struct ctl_conn *c, size_t n);
/* Queue a job the caller made (calloc'ed; id, fn and its request filled):
 * the rest of it is filled from c's request, as ctl_submit does. */
int ctl_submit_job(struct ctl_server *srv, struct ctl_conn *c, struct ctl_job *job);

/* ctl_bin_server.c: a binary frame whose header is in c->bh and whose body
 * (body_len bytes, trace first) is at body: answered, queued or run. */
void ctl_bin_request(struct ctl_conn *c, const uint8_t *body);
/* A binary ERROR for request id (0: about the connection). */
void ctl_bin_send_error(struct ctl_conn *c, uint64_t id, int code, const char *msg);
/* A binary job finished: its reply queued on c (alive). Returns its rc. */
int ctl_bin_job_reply(struct ctl_conn *c, struct ctl_job *job);
/* HELLO's "binary" offer read / answered (ctl_handlers.c). */
void ctl_bin_hello(struct ctl_conn *c, const cJSON *hello);
void ctl_bin_hello_reply(struct ctl_conn *c, cJSON *reply);

/* ctl_handlers.c: the last byte of an EXECUTE's payload is in c->exec_buf:
 * run it (or answer its ERROR). */
void ctl_exec_payload_done(struct ctl_conn *c);

/* ctl_guard.c: the budget of unauthenticated connections, the delay of
 * failed AUTHs per address, rate-limited log lines (see its top). */
int ctl_guard_init(struct ctl_server *srv);
void ctl_guard_fini(struct ctl_server *srv);
/* A new connection joins the unauthenticated; returns the one to close to
 * stay within budget (the oldest of its address, or of all), or NULL. */
struct ctl_conn *ctl_guard_admit(struct ctl_server *srv, struct ctl_conn *c);
/* The connection closes: off the unauthenticated list. */
void ctl_guard_forget(struct ctl_server *srv, struct ctl_conn *c);
/* HELLO/AUTH succeeded: off the list; -DJ_ELIMIT (why filled) where that
 * makes more than max_connections authenticated connections. */
int ctl_guard_authenticated(struct ctl_conn *c, char *why, size_t why_len);
/* When the address's next AUTH may be judged (0: now). */
uint64_t ctl_guard_auth_due(struct ctl_server *srv, uint32_t addr, uint64_t now);
void ctl_guard_auth_failed(struct ctl_server *srv, uint32_t addr, const char *peer,
			   const char *why, uint64_t now);
void ctl_guard_auth_ok(struct ctl_server *srv, uint32_t addr, uint64_t now);
/* 1: log this line; 0: counted for the interval's summary. */
int ctl_log_allowed(struct ctl_log_limit *l, uint64_t now);
/* Summary lines of the intervals that ended. */
void ctl_guard_sweep(struct ctl_server *srv, uint64_t now);

/* ctl_handlers.c: judge a parked AUTH (its address's delay passed). */
void ctl_auth_judge(struct ctl_conn *c);

/* ctl_stats.c: request accounting (epoll thread). A request of type t,
 * id trace, begun at t0, ended: rc 0 (its reply) or the ERROR's code;
 * note (may be NULL) goes into its debug log line. */
void ctl_request_done(struct ctl_server *srv, enum ctl_req_type t, const char *trace,
		      uint64_t t0, int rc, const char *note);
/* Tensor bytes that reached their destination over path. */
void ctl_tensor_moved(struct ctl_server *srv, enum dj_path path, enum ctl_dir dir,
		      uint64_t bytes);
/* A worker job settled: its request, data-plane bytes and failure. */
void ctl_job_done(struct ctl_server *srv, const struct ctl_job *job);
enum ctl_req_type ctl_req_type_parse(const char *type);
/* Worker jobs now: waiting for a worker, and on one. Any thread. */
void ctl_server_jobs(struct ctl_server *srv, uint64_t *queued, uint64_t *running);
/* Publish the session list for other threads (sweep, every 100 ms). */
void ctl_sessions_publish(struct ctl_server *srv, uint64_t now);
/* The server-wide figures of STATS beyond ctl_server_stats. */
void ctl_stats_json(struct ctl_server *srv, cJSON *server);

/* ctl_fleet.c */
int ctl_fleet_create(struct ctl_server *srv);
void ctl_fleet_destroy(struct ctl_server *srv);
/* HELLO from a member (it carries "member"): mark c, check that this server
 * has a fleet token. 0, or -DJ_EAUTH with why filled. */
int ctl_fleet_hello(struct ctl_conn *c, const cJSON *hello, char *why);
/* The token and HMAC labels the handshake of c uses (the fleet's for
 * members); token NULL: no authentication. */
void ctl_fleet_auth_params(const struct ctl_conn *c, const char **token,
			   const char **label_client, const char **label_server);
/* FLEET_* messages (none carries a payload: it is skipped, ERROR sent).
 * 0, or the code of the ERROR sent. */
int ctl_fleet_dispatch(struct ctl_conn *c, const char *type, const cJSON *msg, uint64_t id,
		       uint64_t payload_len);
/* The STATS reply's "member" and "fleet" objects. */
void ctl_fleet_stats(struct ctl_server *srv, cJSON *reply);

/* ctl_handlers.c: the handles a session may still make (1), else 0 with
 * err filled. */
int ctl_handles_left(struct ctl_conn *c, char *err);
/* Take n of the session's handles for tensors made or about to be (any
 * thread): 0, or -DJ_ELIMIT with err where they would pass max_handles.
 * ctl_handles_give() returns them. */
int ctl_handles_take(const struct ctl_server *srv, struct ctl_session *s, uint32_t n,
		     char *err);
void ctl_handles_give(struct ctl_session *s, uint32_t n);
/* An EXECUTE's payload is charged to its session (the backend's hold) from
 * when on_execute accepts it: these give back n bytes of it (a put's, as
 * its tensor takes them over; the rest once the job or the connection is
 * done with it). */
void ctl_payload_unhold(struct ctl_server *srv, void *bsess, uint64_t n);
/* Outputs of an op that are new handles: those that are not one of its
 * inputs (an in-place op returns its destination). */
int ctl_new_outputs(const uint64_t *in, int n_in, const uint64_t *out, int n_out);
/* ctl_handlers.c: a session by id (epoll thread), or NULL. */
struct ctl_session *ctl_session_find(struct ctl_server *srv, uint64_t id);
/* ctl_handlers.c: a reply naming handle (and its description where desc
 * is given); NULL where memory ran out, never a reply missing a field. */
cJSON *ctl_handle_reply(uint64_t id, const char *type, uint64_t handle,
			const struct dj_tensor_desc *desc);
/* ctl_handlers.c: "device" (the device handle lives on) into obj, where
 * the backend names devices; obj is returned (NULL stays NULL). */
cJSON *ctl_reply_device(struct ctl_server *srv, void *bsess, cJSON *obj, uint64_t handle);
/* One control message (JSON parsed); payload_len bytes follow. */
void ctl_dispatch(struct ctl_conn *c, cJSON *msg, uint64_t payload_len);
/* The session ends for good (backend and data path told). */
void ctl_session_close(struct ctl_server *srv, struct ctl_session *s);
void ctl_session_detach(struct ctl_server *srv, struct ctl_session *s);
/* End the held reads the data path let go of (all: also the others, which
 * are then leaked, never freed under the data path). */
void ctl_session_release_held(struct ctl_server *srv, struct ctl_session *s, int all);

#endif
