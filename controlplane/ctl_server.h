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

#include "controlplane/ctl.h"
#include "ctl_io.h"
#include "ctl_wire.h"

#define CTL_STAGING_BYTES (1u << 20)
/* Input buffer: many small frames per read(2); larger things (big JSON,
 * payloads) are read straight into place. */
#define CTL_INBUF_BYTES (64u << 10)
/* Replies gathered into one write. */
#define CTL_GATHER 64

enum conn_state { CS_HELLO, CS_AUTH, CS_READY, CS_CLOSING };
enum in_stage { IN_HDR, IN_JSON, IN_PAYLOAD };

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
	struct ctl_tensor_io io;
};

/* A PUT over the data plane between its READY and its PUT_DONE. */
struct dp_put {
	struct dp_put *next;
	uint64_t xfer, handle;
	int is_new;               /* free the handle where the transfer fails */
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
	uint32_t n_handles;
	uint64_t requests, bytes_in, bytes_out, dp_failures;
	int dp_opened;
	int bye;                  /* closes as soon as its connection is gone */
	int member;               /* a fleet member's: no linger either */
	int refs;                 /* jobs in flight + held reads (see above) */
	struct held_read *held;
};

/* One queued reply: frame (header + JSON), then maybe a tensor's bytes. */
struct ctl_out {
	struct ctl_out *next;
	char *frame;
	size_t len, off;
	uint64_t payload_len, payload_off;
	int has_read_io;
	struct ctl_tensor_io rio;
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
	struct dp_endpoint peer;
	uint64_t id;
	cJSON *req;
	ctl_job_fn fn;
	struct dp_put *put;       /* PUT_DONE: the transfer to finish */
	cJSON *reply;
	int handles_delta;
	int dp_failed;
	struct held_read *held;   /* GET: moved to sess->held when drained */
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
	struct ctl_session *sessions;
	uint64_t next_session_id;

	pthread_mutex_t lock;     /* jobs and completions */
	pthread_cond_t job_cond;
	struct ctl_job *jobs, *jobs_tail;
	struct ctl_job *done, *done_tail;

	struct {
		atomic_uint_fast64_t accepted, open, auth_failures, sessions;
		atomic_uint_fast64_t requests, errors, protocol_errors;
		atomic_uint_fast64_t bytes_in, bytes_out, dpdk, tcp;
		atomic_uint_fast64_t ops, jobs, moves_out, moves_failed;
	} st;

	/* Fleet membership (ctl_fleet.c): the fleet's token, this member's
	 * id and incarnation, grants, outgoing member connections. */
	char *fleet_token;
	struct ctl_fleet *fleet;
};

/* ctl_server.c */
void ctl_send(struct ctl_conn *c, cJSON *msg);
void ctl_send_out(struct ctl_conn *c, struct ctl_out *out);
void ctl_send_error(struct ctl_conn *c, uint64_t id, int code, const char *msg);
void ctl_close_after_flush(struct ctl_conn *c);
int ctl_submit(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
	       ctl_job_fn fn, struct dp_put *put);

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
/* FLEET_* messages (none carries a payload: it is skipped, ERROR sent). */
void ctl_fleet_dispatch(struct ctl_conn *c, const char *type, const cJSON *msg, uint64_t id,
			uint64_t payload_len);
/* The STATS reply's "member" and "fleet" objects. */
void ctl_fleet_stats(struct ctl_server *srv, cJSON *reply);

/* ctl_handlers.c: a session by id (epoll thread), or NULL. */
struct ctl_session *ctl_session_find(struct ctl_server *srv, uint64_t id);
/* ctl_handlers.c: a reply naming handle (and its description where desc
 * is given); NULL where memory ran out, never a reply missing a field. */
cJSON *ctl_handle_reply(uint64_t id, const char *type, uint64_t handle,
			const struct dj_tensor_desc *desc);
/* One control message (JSON parsed); payload_len bytes follow. */
void ctl_dispatch(struct ctl_conn *c, cJSON *msg, uint64_t payload_len);
/* The session ends for good (backend and data path told). */
void ctl_session_close(struct ctl_server *srv, struct ctl_session *s);
void ctl_session_detach(struct ctl_server *srv, struct ctl_session *s);
/* End the held reads the data path let go of (all: also the others, which
 * are then leaked, never freed under the data path). */
void ctl_session_release_held(struct ctl_server *srv, struct ctl_session *s, int all);

#endif
