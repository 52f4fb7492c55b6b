/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_CLIENT_H
#define DJINN_CTL_CLIENT_H

/*
 * Client internals. A dj_conn is a blocking socket with one reader thread:
 * callers write whole frames under wlock; the reader matches replies to
 * futures by id (a slot table, which also bounds requests in flight) and
 * lands GET payloads straight in the caller's buffer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "djinn/djinn.h"
#include "common/djc.h"
#include "ctl_io.h"
#include "ctl_wire.h"
#include "ctl_bin.h"

#define CL_SLOTS 4096 /* power of two: requests in flight per connection */
#define CL_RBUF (64u << 10) /* reader's buffer: many small replies per read(2) */
#define CL_OBUF (16u << 10) /* corked requests of one connection */
/* A request frame (with its payload) at most this long may be corked;
 * a longer one is written at once, after what obuf holds. */
#define CL_CORK_MAX (4u << 10)
/* The reader's blocking reads time out after this long without a byte
 * (SO_RCVTIMEO, rounded up to the kernel's tick) to send what was corked
 * meanwhile: the most a slow reply holds back a corked request nobody
 * waits for. It costs nothing while replies flow. After CL_CORK_NAPS
 * silent timeouts the reader sleeps without one (idle), and callers send
 * themselves. */
#define CL_CORK_NAP_US 2000
#define CL_CORK_NAPS 64
/* Requests are corked only while replies flow: the reader read a batch
 * of them within this long (dj_client_options.cork_flow_us's default).
 * Behind a slow request, with no reply for longer, a new one is written
 * at once, so that it waits neither for the slow reply nor for a timeout
 * of the reader's read (which remains for a request corked just as the
 * replies stopped). */
#define CL_CORK_FLOW_US 500
#define CL_PROBE_RETRY_MS 500
#define CL_PROBE_RETRY_MAX_MS 30000

struct dj_future {
	atomic_int refs;          /* caller + the connection while pending */
	struct dj_future *next_free; /* in its thread's cache of released ones */
	struct dj_conn *conn;
	uint64_t id;
	uint64_t wire_gen;        /* the socket its slot was claimed on (conn->wire_gen) */
	atomic_int done;          /* set under conn->lock; read lock-free while spinning */
	int rc;
	cJSON *reply;
	void *dst;                /* GET: where the payload goes */
	uint64_t dst_len;
	dj_future_cb cb;
	void *arg;
	uint64_t deadline_ns;
	char error[CTL_ERRMSG_MAX];
	/* For its debug log line: the request's type, id and start. */
	char type[16];
	char trace[DJC_REQ_ID_MAX];
	uint64_t t0;
	/* A binary request (ctl_bin.h): its type, and its reply's outputs in
	 * place of reply. Last, and not zeroed at creation: only n_out of
	 * them are ever read. */
	uint8_t bin_type;
	int n_out;
	struct ctl_bin_output outs[DJ_MAX_OP_ARGS];
};

struct dj_conn {
	struct dj_conn *next_idle;
	struct dj_client *cl;
	struct ctl_stream io;
	pthread_mutex_t wlock;    /* one frame at a time on the socket */
	pthread_mutex_t lock;     /* slots, futures' state, what HELLO said */
	pthread_mutex_t reopen_lock; /* one reconnect at a time */
	atomic_uint_fast64_t generation; /* bumped by every successful reconnect */
	/* The socket's generation, moved on under wlock once a connection's
	 * reader stopped (every request claimed on it failed): a request is
	 * written only on the socket its slot was claimed on, never on the
	 * next one, where a reconnect came between the two. */
	atomic_uint_fast64_t wire_gen;
	pthread_cond_t cond;
	pthread_t reader;
	/* Started and stopped only by the handshake's owner: the opener, a
	 * reconnect (under reopen_lock) or the last user (conn_free). */
	int reader_running;
	struct dj_future *slots[CL_SLOTS];
	uint64_t next_id;
	/* No request may start: written under lock (claim_slot() looks at it
	 * there, under the same lock as the slots), read anywhere. */
	atomic_int broken;
	/* SESSION's: a reconnect to a server that lost the session writes a
	 * new pair while transfers on other threads read them. */
	_Atomic uint64_t session_id, cookie;
	/* The session's path, read lock-free by every transfer; written with
	 * path_reason under lock, which is read only under lock (a copy:
	 * dj_conn_path). device (SESSION's "device", "" where none) likewise:
	 * written under lock by the handshake, copied out under lock. */
	_Atomic enum dj_path path;
	char path_reason[160];
	char device[CTL_DEVICE_MAX];
	/* SESSION said the server opened no data-plane session for this one
	 * (dp_open false): its error (dp_error, never 0) and dp_reason. The
	 * handshake's own: no probe of that session, ever. */
	int dp_refused;
	char dp_refused_why[CTL_ERRMSG_MAX];
	/*
	 * What the server said in HELLO: its caps, and whether it takes
	 * binary frames (the server accepted them and the options allow
	 * them: PING, FREE and single-op EXECUTE go binary). A reconnect may
	 * reach another server that says otherwise. The handshake writes
	 * them under lock (and reopen_lock, or before the connection is
	 * anyone else's) and moves hello_gen on; callers read them under
	 * lock (ctl_client_hello), the handshake's own steps and the reader
	 * (which runs only between handshakes) without. A request built from
	 * them (a binary frame, an op's id) carries the hello_gen it read and
	 * is refused, -ECONNRESET, where a handshake came between.
	 */
	struct dp_caps server_caps;
	int binary;
	uint64_t hello_gen;
	/* The client's data path knows the session, on stripes 0 ..
	 * dp_stripes - 1: set by a probe and reset by a reconnect (both under
	 * reopen_lock) while transfers on other threads read them. */
	atomic_int dp_session;
	_Atomic unsigned int dp_stripes;
	unsigned int stripes;     /* the session's stripes, as SESSION said (>= 1) */
	/* PUTs [0] and GETs [1] that went whole: each takes the next stripe. */
	atomic_uint whole_xfers[2];
	/* On TCP because the data-plane probe failed: written under
	 * reopen_lock, read first without it by every transfer. */
	atomic_int probe_failed;
	_Atomic uint64_t next_probe_ns; /* probe again from then on (probe_failed) */
	uint32_t probe_retry_ms;  /* the wait after that, doubling (reopen_lock) */
	atomic_int dp_failures;   /* data-plane failures in a row, of every thread */
	atomic_uint_fast64_t next_xfer; /* callers on several threads take ids */
	uint64_t idle_since_ns;
	/* The last ERROR's text: written under lock (the reader, callers, a
	 * reconnect's handshake), read only under it (dj_conn_last_error's
	 * copy). */
	char last_error[CTL_ERRMSG_MAX];
	/* The reader polls the socket this long before it sleeps in read(2)
	 * (wait_spin_us where the host has the CPUs for it, else 0). */
	uint64_t read_spin_ns;
	/*
	 * Autocorking (plain TCP; off with no_autocork or TLS): while a
	 * request is on the wire (wire_outstanding > 0) a new small request
	 * is appended to obuf instead of sent, and the reader sends obuf
	 * after each batch of replies it processed. Dekker's pairing keeps a
	 * request from being stranded: a caller appends, sets pending, then
	 * loads wire_outstanding (0: it sends itself); the reader decrements
	 * wire_outstanding per reply, then loads pending before it reads
	 * again. The reader also sends what was corked whenever its read
	 * times out (CL_CORK_NAP_US); where it sleeps without a timeout it
	 * sets reader_idle, then loads pending, and a caller that finds
	 * reader_idle set after setting pending sends itself (the same
	 * pairing): a request corked behind a slow one is not held back
	 * until its reply. Corking also needs replies to flow
	 * (cork_flow_ns): behind a slow request alone, a new one goes out
	 * at once. obuf, ooff, olen and oreqs are guarded by wlock.
	 */
	int cork;
	uint64_t cork_flow_ns;       /* dj_client_options.cork_flow_us */
	atomic_int pending;          /* obuf holds unsent bytes */
	atomic_long wire_outstanding; /* requests written whose reply is not processed */
	atomic_int reader_tail;      /* the reader wrote part of obuf: the socket was full */
	atomic_int reader_idle;      /* the reader sleeps without a timeout */
	atomic_uint_fast64_t last_reply_ns; /* when the reader last read replies' bytes */
	int naps;                    /* the reader's silent timeouts in a row */
	uint32_t ooff, olen;         /* unsent bytes: obuf[ooff, olen) */
	uint32_t oreqs;              /* requests in obuf not yet counted on the wire */
	uint8_t obuf[CL_OBUF];
	uint8_t *bbuf;            /* a binary reply's body not whole in rbuf (reader) */
	size_t roff, rlen;        /* unread bytes in rbuf: the reader's alone */
	uint8_t rbuf[CL_RBUF];
};

struct dj_client {
	struct dj_client_options o;
	char *host, *token, *tls_ca, *device;
	void *tls_ctx;
	struct dp_caps caps;   /* what this side has */
	/* A fleet member's connections to another member (ctl_fleet.c): HELLO
	 * says "member", token is the fleet's, and the server must prove it. */
	char *member_id;
	pthread_mutex_t lock;
	struct dj_conn *idle;
	int n_idle;
	struct {
		atomic_uint_fast64_t connects, reuses, health_checks, health_failures;
		atomic_uint_fast64_t idle_closed, retries, dp_fallbacks;
		/* Autocorking: requests corked, socket writes of requests, and
		 * flushes of obuf by who did them. */
		atomic_uint_fast64_t corked, writes;
		atomic_uint_fast64_t flushes_reader, flushes_caller, flushes_wait;
	} st;
};

/* ctl_client.c */
int ctl_client_conn_start(struct dj_conn *conn);
void ctl_client_conn_stop(struct dj_conn *conn);
/* Abandon conn's socket of generation wire_gen (a future's, or read under
 * wlock) for rc: broken, shut down, every pending request failed by the
 * reader. A no-op where a reconnect replaced that socket since. */
void ctl_client_conn_poison(struct dj_conn *conn, uint64_t wire_gen, int rc);
/* conn->last_error = the text fmt makes, under conn->lock (not held). */
void ctl_client_error_set(struct dj_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* No request may start on conn (1), or they may again (0): conn->broken. */
void ctl_client_set_broken(struct dj_conn *conn, int broken);
/* Send what conn corked (blocking); a send error poisons conn. 0 or -errno. */
int ctl_client_flush(struct dj_conn *conn);
/* Send msg ("id" added) plus payload; dst receives a reply payload. Takes msg. */
int ctl_client_request(struct dj_conn *conn, cJSON *msg, const void *payload, uint64_t payload_len,
	       void *dst, uint64_t dst_len, dj_future_cb cb, void *arg,
	       struct dj_future **future);
/* Request and wait; returns the result, the reply in *reply (caller frees). */
int ctl_client_call(struct dj_conn *conn, cJSON *msg, const void *payload, uint64_t payload_len,
	    void *dst, uint64_t dst_len, cJSON **reply);
/* Room a binary request's frame needs before its body: header and trace. */
#define CTL_CLIENT_BIN_ROOM (CTL_HDR_LEN + CTL_BIN_TRACE_MAX)
/* What the server said in HELLO, as of now (struct dj_conn): whether it
 * takes binary frames, its data-plane endpoint (either may be NULL) and,
 * where op is not NULL, *op_id: op's index in its caps.ops for a binary
 * frame, else CTL_BIN_OP_NAMED.
 * @return the handshake's generation, for ctl_client_bin_request(). */
uint64_t ctl_client_hello(struct dj_conn *conn, int *binary, struct dp_endpoint *peer,
			  const char *op, uint16_t *op_id);
/* A binary request of type (ctl_bin.h): frame holds CTL_CLIENT_BIN_ROOM
 * free bytes, then body_len bytes of body (after its trace), built from
 * what ctl_client_hello() said at hello_gen.
 * @return 0 (the request is on its way: *future), -ENOMEM, -ECONNRESET
 *   (the connection is broken, or a handshake came after hello_gen: the
 *   frame may not fit the server now), a send error. */
int ctl_client_bin_request(struct dj_conn *conn, uint64_t hello_gen, uint8_t type,
			   uint8_t *frame, size_t body_len, dj_future_cb cb, void *arg,
			   struct dj_future **future);
/* Synchronous exchange before the reader runs (handshake). */
int ctl_client_sync_call(struct dj_conn *conn, cJSON *msg, cJSON **reply);
int ctl_client_reply_error(cJSON *reply, char *msg);

/* ctl_pool.c */
int ctl_client_conn_open(struct dj_client *cl, uint64_t resume_id, uint64_t resume_cookie,
		 struct dj_conn **conn);
/* Reopen a broken connection, resuming its session where the server still
 * has it; a no-op where another thread already reopened generation gen. */
int ctl_client_conn_reopen(struct dj_conn *conn, uint64_t gen);
void ctl_client_conn_free(struct dj_conn *conn);
/* Tell the server the session's path (PATH) on a connection whose reader
 * runs, and make it conn's. 0, or the request's error. */
int ctl_client_send_path(struct dj_conn *conn, enum dj_path path, const char *reason);
/* A session on TCP because its data-plane probe failed (a restarted
 * server's memif link not up yet) probes again before a transfer, first
 * CL_PROBE_RETRY_MS after the failure, then at doubling intervals up to
 * CL_PROBE_RETRY_MAX_MS (a probe that times out costs probe_timeout_ms),
 * and moves back to DPDK once one succeeds. */
void ctl_client_path_retry(struct dj_conn *conn);
/* A request message of type, with "trace": this thread's request id, or a
 * fresh one where it has none. */
cJSON *ctl_client_msg(const char *type);
/* This thread's request id, or a fresh one where it has none, into id;
 * its length. */
size_t ctl_client_trace(char id[DJC_REQ_ID_MAX]);
/* A public call begins: its requests and this thread's log lines carry one
 * id (an outer call's where one is set); saved is what _end restores. */
void ctl_client_trace_begin(char saved[DJC_REQ_ID_MAX]);
void ctl_client_trace_end(const char saved[DJC_REQ_ID_MAX]);
/* rc = call, all of whose requests share one id. */
#define CTL_CLIENT_TRACED(rc, call)                                             \
	do {                                                                    \
		char saved_trace_[DJC_REQ_ID_MAX];                              \
		ctl_client_trace_begin(saved_trace_);                           \
		(rc) = (call);                                                  \
		ctl_client_trace_end(saved_trace_);                             \
	} while (0)
/* A client whose connections authenticate as fleet member member_id with
 * the fleet token opts->token (ctl_fleet.c). */
int ctl_client_create_member(const struct dj_client_options *opts, const char *member_id,
			     struct dj_client **client);

/* ctl_api.c: dj_put, and which path carried the bytes (*used). */
int ctl_client_put(struct dj_conn *conn, const struct dj_tensor *t, enum dj_path *used,
		   uint64_t *handle);
uint32_t ctl_client_backoff_ms(const struct dj_client *cl, int attempt);

#endif
