/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control-plane server: accept, frame I/O, timeouts, workers.
 * Message semantics live in ctl_handlers.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_server.h"

#define TAG "ctl"
#define SWEEP_MS 100
/* Stop reading a connection whose replies pile up: the client is not reading. */
#define OUT_BACKLOG_BYTES (8u << 20)
/* A chunk of binary replies: a few hundred of them per write. */
#define OUT_CHUNK_BYTES (16u << 10)

static uint64_t ms_to_ns(uint32_t ms)
{
	return (uint64_t)ms * 1000000ull;
}

void ctl_server_config_init(struct ctl_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->n_workers = 4;
	cfg->dp_timeout_ms = 10000;
	cfg->slow_request_ms = 1000;
	cfg->busy_poll_us = -1;
	cfg->limits = (struct ctl_limits){
		.max_json_bytes = 1u << 20,
		.max_json_depth = 32,
		.max_payload_bytes = 16ull << 30,
		.max_inflight = 4096,
		.max_connections = 1024,
		.max_unauth_connections = 128,
		.max_unauth_per_addr = 32,
		.auth_delay_max_ms = 2000,
		.log_interval_ms = 10000,
		.max_handles = 65536,
		.frame_timeout_ms = 10000,
		.auth_timeout_ms = 5000,
		.idle_timeout_ms = 0,
		.session_linger_ms = 30000,
	};
}

static void limits_fill_defaults(struct ctl_limits *l)
{
	struct ctl_server_config d;

	ctl_server_config_init(&d);
#define DEF(f) if (l->f == 0) l->f = d.limits.f
	DEF(max_json_bytes);
	DEF(max_json_depth);
	DEF(max_payload_bytes);
	DEF(max_inflight);
	DEF(max_connections);
	DEF(max_unauth_connections);
	DEF(max_unauth_per_addr);
	DEF(auth_delay_max_ms);
	DEF(log_interval_ms);
	DEF(max_handles);
	DEF(frame_timeout_ms);
	DEF(auth_timeout_ms);
	DEF(session_linger_ms);
#undef DEF
}

/* ---- epoll interest ---------------------------------------------------- */

/* Reading stops while replies pile up unread or too many requests are in
 * flight (back-pressure on this client only), and while its AUTH waits. */
static int conn_may_read(const struct ctl_conn *c)
{
	return c->state != CS_CLOSING && !c->dead && !c->parked &&
	       c->out_bytes < OUT_BACKLOG_BYTES && c->inflight < c->srv->cfg.limits.max_inflight;
}

/* Bring the epoll mask in line with the state: one epoll_ctl, only on change,
 * once per event (conn_event's end), not per message. */
static void conn_arm(struct ctl_conn *c)
{
	int want_in = conn_may_read(c);
	int want_out = c->out_head != NULL;
	struct epoll_event ev = {.data.ptr = c};

	if (c->dead || (want_in == c->reading && want_out == c->writing))
		return;
	ev.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0) | EPOLLRDHUP;
	epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->io.fd, &ev);
	c->reading = want_in;
	c->writing = want_out;
}

/* ---- connection lifetime ----------------------------------------------- */

static void out_free(struct ctl_server *srv, struct ctl_conn *c, struct ctl_out *o)
{
	/* A TCP GET ends here: whole, or abandoned with its connection. */
	if (o->req_t0 != 0) {
		int whole = o->payload_off == o->payload_len;
		char note[64];

		snprintf(note, sizeof(note), "%" PRIu64 " B over tcp", o->payload_len);
		if (whole)
			ctl_tensor_moved(srv, DJ_PATH_TCP, CTL_DIR_OUT, o->payload_len);
		ctl_request_done(srv, CTL_REQ_GET, o->req_trace, o->req_t0,
				 whole ? 0 : -ECONNABORTED, note);
	}
	if (o->has_read_io && srv->be->read_end != NULL)
		srv->be->read_end(srv->bctx, c->sess != NULL ? c->sess->bsess : NULL, &o->rio);
	free(o->frame);
	free(o);
}

static void conn_abort_payload(struct ctl_conn *c)
{
	struct ctl_server *srv = c->srv;
	void *bs = c->sess != NULL ? c->sess->bsess : NULL;

	if (c->exec_buf != NULL) {
		ctl_payload_unhold(srv, bs, c->h.payload_len);
		ctl_request_done(srv, CTL_REQ_EXECUTE, c->req_trace, c->req_t0, -ECONNABORTED,
				 NULL);
	}
	cJSON_Delete(c->exec_msg);
	free(c->exec_buf);
	c->exec_msg = NULL;
	c->exec_buf = NULL;
	if (!c->pay_into)
		return;
	ctl_request_done(srv, CTL_REQ_PUT, c->pay_trace, c->pay_t0, -ECONNABORTED, NULL);
	srv->be->write_end(srv->bctx, bs, &c->wio, -ECONNABORTED);
	if (c->pay_is_new && srv->be->free(srv->bctx, bs, c->pay_handle, c->pay_err) == 0)
		c->sess->n_handles--;
	c->pay_into = 0;
}

static void conn_unref(struct ctl_conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->spare != NULL)
		free(c->spare->frame);
	free(c->spare);
	free(c->bin_buf);
	free(c->json);
	free(c->inbuf);
	free(c->staging);
	free(c);
}

static void conn_close(struct ctl_conn *c, const char *why)
{
	struct ctl_server *srv = c->srv;

	if (c->dead)
		return;
	DJC_LOG(DJ_LOG_INFO, TAG, "closing %s: %s", c->peer, why);
	c->dead = 1;
	/* A parked AUTH ends unjudged. */
	if (c->parked)
		ctl_request_done(srv, CTL_REQ_AUTH, c->req_trace, c->req_t0, -ECONNABORTED, NULL);
	conn_abort_payload(c);
	/* Nothing more is written: end the replies' reads now, while the
	 * session surely exists. */
	while (c->out_head != NULL) {
		struct ctl_out *o = c->out_head;

		c->out_head = o->next;
		out_free(srv, c, o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	/* The session is free to resume elsewhere at once; its jobs still
	 * running hold it (sess->refs), and their replies are dropped. */
	if (c->sess != NULL && c->sess->conn == c)
		ctl_session_detach(srv, c->sess);
	ctl_guard_forget(srv, c);
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->io.fd, NULL);
	ctl_stream_close(&c->io);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->st.open--;
	conn_unref(c);
}

void ctl_close_after_flush(struct ctl_conn *c)
{
	c->state = CS_CLOSING;
}

/* Close at once, with a reset rather than a close: a peer that stopped
 * reading must not keep megabytes of our replies queued in the kernel.
 * Where nothing else is queued, it is told why first (best effort: one
 * non-blocking write). */
static void conn_drop(struct ctl_conn *c, int code, const char *why)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	if (c->out_head == NULL && c->state != CS_CLOSING) {
		cJSON *e = ctl_error_new(0, code, why);
		char *f;
		size_t n;

		if (ctl_frame(e, 0, &f, &n) == 0) {
			(void)ctl_stream_write(&c->io, f, n);
			free(f);
		}
		cJSON_Delete(e);
	}
	setsockopt(c->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c, why);
}

static void set_nonblock_nodelay(int fd)
{
	int one = 1;

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Every connection is accepted: until it authenticates it lives on the
 * budget of the unauthenticated (ctl_guard.c), whose oldest member makes
 * room when it is full, so idle connections never lock anyone out; the
 * limit of max_connections applies once a connection authenticates.
 */
static void accept_one(struct ctl_server *srv, int fd, const struct sockaddr_in *sa)
{
	struct ctl_conn *c = calloc(1, sizeof(*c)), *victim;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
	char ip[INET_ADDRSTRLEN];

	if (c == NULL) {
		if (ctl_log_allowed(&srv->log_flood, djc_time_ns()))
			DJC_LOG(DJ_LOG_WARN, TAG, "refusing a connection: out of memory");
		close(fd);
		return;
	}
	set_nonblock_nodelay(fd);
	c->srv = srv;
	c->io.fd = fd;
	c->refs = 1;
	c->reading = 1;
	c->accepted_ns = c->last_in_ns = c->last_out_ns = djc_time_ns();
	c->addr = sa->sin_addr.s_addr;
	inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
	snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(sa->sin_port));
	if (srv->tls_ctx != NULL && ctl_tls_attach(srv->tls_ctx, fd, 1, &c->io) != 0) {
		close(fd);
		free(c);
		return;
	}
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		ctl_stream_close(&c->io);
		free(c);
		return;
	}
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->st.accepted++;
	srv->st.open++;
	DJC_LOG(DJ_LOG_INFO, TAG, "connection from %s", c->peer);
	victim = ctl_guard_admit(srv, c);
	if (victim != NULL)
		conn_drop(victim, -DJ_ELIMIT, "not authenticated yet, and the budget of "
			  "unauthenticated connections is full");
}

static void accept_all(struct ctl_server *srv)
{
	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = accept4(srv->lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		accept_one(srv, fd, &sa);
	}
}

/* ---- output -------------------------------------------------------------- */

void ctl_send_out(struct ctl_conn *c, struct ctl_out *o)
{
	if (c->dead) {
		out_free(c->srv, c, o);
		return;
	}
	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += o->len;
}

uint8_t *ctl_out_reserve(struct ctl_conn *c, size_t n)
{
	struct ctl_out *o = c->out_tail;

	if (o != NULL && o->chunk && o->cap - o->len >= n)
		return (uint8_t *)o->frame + o->len;
	if (c->dead)
		return NULL;
	o = c->spare;
	if (o != NULL && o->cap >= n) {
		c->spare = NULL;
	} else {
		size_t cap = n > OUT_CHUNK_BYTES ? n : OUT_CHUNK_BYTES;

		o = calloc(1, sizeof(*o));
		if (o == NULL || (o->frame = malloc(cap)) == NULL) {
			free(o);
			return NULL;
		}
		o->cap = cap;
		o->chunk = 1;
	}
	o->len = o->off = 0;
	o->next = NULL;
	ctl_send_out(c, o);
	return (uint8_t *)o->frame;
}

void ctl_out_commit(struct ctl_conn *c, size_t n)
{
	c->out_tail->len += n;
	c->out_bytes += n;
}

/* The frame of msg with len payload bytes appended to it (one buffer: the
 * writer sends it as one frame). */
static int frame_with_payload(const cJSON *msg, const void *payload, uint64_t len,
			      struct ctl_out *o)
{
	char *grown;

	if (ctl_frame(msg, len, &o->frame, &o->len) != 0)
		return -ENOMEM;
	if (len == 0)
		return 0;
	grown = realloc(o->frame, o->len + len);
	if (grown == NULL) {
		free(o->frame);
		return -ENOMEM;
	}
	memcpy(grown + o->len, payload, len);
	o->frame = grown;
	o->len += len;
	return 0;
}

void ctl_send_payload(struct ctl_conn *c, cJSON *msg, void *payload, uint64_t len)
{
	struct ctl_out *o;

	if (msg == NULL) {
		free(payload);
		conn_close(c, "out of memory for a reply");
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL || frame_with_payload(msg, payload, len, o) != 0) {
		free(o);
		free(payload);
		cJSON_Delete(msg);
		conn_close(c, "out of memory");
		return;
	}
	free(payload);
	cJSON_Delete(msg);
	ctl_send_out(c, o);
}

/* msg NULL: building the reply ran out of memory; the client learns of it
 * from the closed connection instead of waiting for an answer. */
void ctl_send(struct ctl_conn *c, cJSON *msg)
{
	ctl_send_payload(c, msg, NULL, 0);
}

void ctl_send_error(struct ctl_conn *c, uint64_t id, int code, const char *msg)
{
	c->srv->st.errors++;
	DJC_LOG(DJ_LOG_INFO, TAG, "%s: request %llu: ERROR %d %s", c->peer,
	       (unsigned long long)id, code, msg != NULL ? msg : "");
	ctl_send(c, ctl_error_new(id, code, msg));
}

/* Next bytes of the head reply's payload into view: the backend's storage
 * itself, or the staging buffer refilled through read_chunk. */
static int payload_view(struct ctl_conn *c, struct ctl_out *o, const char **p, size_t *n)
{
	struct ctl_server *srv = c->srv;
	uint64_t left = o->payload_len - o->payload_off;
	char err[CTL_ERRMSG_MAX] = "";
	int rc;

	if (o->rio.host != NULL) {
		*p = (const char *)o->rio.host + o->payload_off;
		*n = left;
		return 0;
	}
	if (c->stage_off == c->stage_len) {
		size_t want = left < CTL_STAGING_BYTES ? left : CTL_STAGING_BYTES;

		if (c->staging == NULL && (c->staging = malloc(CTL_STAGING_BYTES)) == NULL)
			return -ENOMEM;
		rc = srv->be->read_chunk(srv->bctx, c->sess->bsess, &o->rio, o->payload_off,
					 c->staging, want, err);
		if (rc != 0)
			return rc;
		c->stage_len = want;
		c->stage_off = 0;
	}
	*p = (const char *)c->staging + c->stage_off;
	*n = c->stage_len - c->stage_off;
	return 0;
}

static void count_out(struct ctl_conn *c, size_t w)
{
	c->last_out_ns = djc_time_ns();
	c->srv->st.bytes_out += w;
	if (c->sess != NULL)
		c->sess->bytes_out += w;
}

/* The frames (header + JSON) from the head on, in one gathered write: up to
 * CTL_GATHER of them, stopping after one whose payload must follow. */
static ssize_t write_frames(struct ctl_conn *c)
{
	struct iovec iov[CTL_GATHER];
	struct ctl_out *o = c->out_head;
	ssize_t w;
	int n = 0;

	for (; o != NULL && n < CTL_GATHER; o = o->next) {
		iov[n].iov_base = o->frame + o->off;
		iov[n++].iov_len = o->len - o->off;
		if (o->payload_len > 0)
			break;
	}
	w = ctl_stream_writev(&c->io, iov, n);
	if (w <= 0)
		return w;
	o = c->out_head;
	for (size_t left = (size_t)w; left > 0; o = o->next) {
		size_t take = o->len - o->off < left ? o->len - o->off : left;

		o->off += take;
		left -= take;
	}
	count_out(c, (size_t)w);
	return w;
}

/* Write what the socket takes; 0 when the queue is drained or the socket is full. */
static int flush_out(struct ctl_conn *c)
{
	while (c->out_head != NULL) {
		struct ctl_out *o = c->out_head;
		const char *p;
		size_t n;
		ssize_t w;
		int rc;

		if (o->off < o->len) {
			w = write_frames(c);
		} else if (o->payload_off < o->payload_len) {
			rc = payload_view(c, o, &p, &n);
			if (rc != 0)
				return rc; /* the stream cannot be resynchronised */
			w = ctl_stream_write(&c->io, p, n);
			if (w > 0) {
				count_out(c, (size_t)w);
				o->payload_off += (uint64_t)w;
				if (o->rio.host == NULL)
					c->stage_off += (size_t)w;
			}
		} else {
			c->out_head = o->next;
			if (c->out_head == NULL)
				c->out_tail = NULL;
			c->out_bytes -= o->len;
			/* A chunk of binary replies serves the next ones. */
			if (o->chunk && c->spare == NULL)
				c->spare = o;
			else
				out_free(c->srv, c, o);
			continue;
		}
		if (w == -EAGAIN)
			return 0;
		if (w <= 0)
			return w < 0 ? (int)w : -ECONNRESET;
	}
	return 0;
}

/* ---- input ----------------------------------------------------------------- */

static void protocol_error(struct ctl_conn *c, const char *why)
{
	c->srv->st.protocol_errors++;
	ctl_send_error(c, 0, -EPROTO, why);
	ctl_close_after_flush(c);
}

/* A whole binary frame (its body at body) is in: a request begins. */
static void bin_body_done(struct ctl_conn *c, const uint8_t *body)
{
	c->stage = IN_HDR;
	c->hdr_got = 0;
	c->req_t0 = djc_time_ns();
	c->srv->st.requests++;
	if (c->sess != NULL)
		c->sess->requests++;
	ctl_bin_request(c, body);
}

/* A binary header: only after HELLO negotiated binary frames (before, it
 * is a bad magic). A header at fault closes the connection after its
 * ERROR: its length cannot be trusted to find the next frame. */
static void bin_header_done(struct ctl_conn *c)
{
	char why[128];
	int rc;

	if (!c->binary) {
		protocol_error(c, "bad frame magic (binary frames need \"binary\" in HELLO)");
		return;
	}
	rc = ctl_bin_hdr_decode(c->hdr, 0, &c->bh, why);
	if (rc != 0) {
		c->srv->st.protocol_errors++;
		ctl_bin_send_error(c, c->bh.id, rc, why);
		ctl_close_after_flush(c);
		return;
	}
	static const uint8_t empty[1];

	c->bin_got = 0;
	/* Not NULL: the body is read as a pointer, if not a byte of it. */
	if (c->bh.body_len == 0)
		bin_body_done(c, empty);
	else
		c->stage = IN_BIN;
}

static void frame_header_done(struct ctl_conn *c)
{
	const struct ctl_limits *l = &c->srv->cfg.limits;
	char why[128];

	if (ctl_bin_is(c->hdr)) {
		bin_header_done(c);
		return;
	}
	if (ctl_hdr_decode(c->hdr, &c->h) != 0) {
		protocol_error(c, "bad frame magic (not a Djinn control frame, or TLS mismatch)");
		return;
	}
	if (c->h.json_len == 0 || c->h.json_len > l->max_json_bytes ||
	    c->h.payload_len > l->max_payload_bytes) {
		snprintf(why, sizeof(why), "frame too large: json %u bytes (max %u), payload %llu (max %llu)",
			 c->h.json_len, l->max_json_bytes, (unsigned long long)c->h.payload_len,
			 (unsigned long long)l->max_payload_bytes);
		c->srv->st.protocol_errors++;
		ctl_send_error(c, 0, -DJ_ELIMIT, why);
		ctl_close_after_flush(c);
		return;
	}
	c->json = malloc(c->h.json_len + 1);
	if (c->json == NULL) {
		protocol_error(c, "out of memory");
		return;
	}
	c->json_got = 0;
	c->stage = IN_JSON;
}

static void frame_json_done(struct ctl_conn *c)
{
	const struct ctl_limits *l = &c->srv->cfg.limits;
	cJSON *msg = NULL;
	uint64_t payload_len = c->h.payload_len;

	c->json[c->h.json_len] = '\0';
	c->pay_into = 0;
	c->pay_got = 0;
	c->stage = payload_len > 0 ? IN_PAYLOAD : IN_HDR;
	c->hdr_got = 0;
	c->req_t0 = djc_time_ns();
	c->srv->st.requests++;
	if (c->sess != NULL)
		c->sess->requests++;
	if ((uint32_t)ctl_json_depth(c->json, c->h.json_len) > l->max_json_depth) {
		c->srv->st.protocol_errors++;
		ctl_send_error(c, 0, -DJ_ELIMIT, "JSON nested too deeply");
		ctl_request_done(c->srv, CTL_REQ_OTHER, "", c->req_t0, -DJ_ELIMIT, NULL);
	} else if ((msg = cJSON_ParseWithLength(c->json, c->h.json_len)) == NULL ||
		   !cJSON_IsObject(msg)) {
		c->srv->st.protocol_errors++;
		ctl_send_error(c, 0, -EBADMSG, "malformed JSON (or not an object)");
		ctl_request_done(c->srv, CTL_REQ_OTHER, "", c->req_t0, -EBADMSG, NULL);
	} else {
		c->req_msg = msg;
		ctl_dispatch(c, msg, payload_len);
		msg = c->req_msg; /* NULL where a job took it over */
		c->req_msg = NULL;
	}
	cJSON_Delete(msg);
	free(c->json);
	c->json = NULL;
}

/* Where the next payload bytes go: the tensor's storage itself (zero copy),
 * or the staging buffer (chunked backend, or bytes being discarded). */
static int payload_sink(struct ctl_conn *c, char **p, size_t *n)
{
	uint64_t left = c->h.payload_len - c->pay_got;

	if (c->exec_buf != NULL) {
		*p = (char *)c->exec_buf + c->pay_got;
		*n = left;
		return 0;
	}
	if (c->pay_into && c->wio.host != NULL) {
		*p = (char *)c->wio.host + c->pay_got;
		*n = left;
		return 0;
	}
	if (c->staging == NULL && (c->staging = malloc(CTL_STAGING_BYTES)) == NULL)
		return -ENOMEM;
	*p = (char *)c->staging;
	*n = left < CTL_STAGING_BYTES ? left : CTL_STAGING_BYTES;
	return 0;
}

static void payload_consumed(struct ctl_conn *c, const char *p, size_t n)
{
	struct ctl_server *srv = c->srv;
	char note[64];

	if (c->pay_into && c->wio.host == NULL && c->pay_rc == 0)
		c->pay_rc = srv->be->write_chunk(srv->bctx, c->sess->bsess, &c->wio,
						 c->pay_got, p, n, c->pay_err);
	c->pay_got += n;
	if (c->pay_got < c->h.payload_len)
		return;
	c->stage = IN_HDR;
	c->hdr_got = 0;
	if (c->exec_buf != NULL) {
		ctl_exec_payload_done(c);
		return;
	}
	if (!c->pay_into)
		return;
	c->pay_into = 0;
	srv->be->write_end(srv->bctx, c->sess->bsess, &c->wio, c->pay_rc);
	snprintf(note, sizeof(note), "%" PRIu64 " B over tcp", c->h.payload_len);
	if (c->pay_rc == 0)
		ctl_tensor_moved(srv, DJ_PATH_TCP, CTL_DIR_IN, c->h.payload_len);
	ctl_request_done(srv, CTL_REQ_PUT, c->pay_trace, c->pay_t0, c->pay_rc, note);
	if (c->pay_rc != 0) {
		if (c->pay_is_new && srv->be->free(srv->bctx, c->sess->bsess, c->pay_handle,
						   c->pay_err + CTL_ERRMSG_MAX / 2) == 0)
			c->sess->n_handles--;
		ctl_send_error(c, c->pay_id, c->pay_rc, c->pay_err);
		return;
	}
	ctl_send(c, ctl_reply_device(srv, c->sess->bsess,
				     ctl_handle_reply(c->pay_id, "PUT", c->pay_handle, NULL),
				     c->pay_handle));
}

/* Where the next bytes of the current stage go, and how many it wants. */
static int in_sink(struct ctl_conn *c, char **p, size_t *n)
{
	switch (c->stage) {
	case IN_HDR:
		*p = (char *)c->hdr + c->hdr_got;
		*n = CTL_HDR_LEN - c->hdr_got;
		return 0;
	case IN_JSON:
		*p = c->json + c->json_got;
		*n = c->h.json_len - c->json_got;
		return 0;
	case IN_BIN:
		if (c->bin_buf == NULL && (c->bin_buf = malloc(CTL_BIN_BODY_MAX)) == NULL)
			return -ENOMEM;
		*p = (char *)c->bin_buf + c->bin_got;
		*n = c->bh.body_len - c->bin_got;
		return 0;
	default:
		return payload_sink(c, p, n);
	}
}

static void in_consumed(struct ctl_conn *c, char *p, size_t n)
{
	switch (c->stage) {
	case IN_HDR:
		if (c->hdr_got == 0)
			c->frame_start_ns = c->last_in_ns;
		c->hdr_got += n;
		if (c->hdr_got == CTL_HDR_LEN)
			frame_header_done(c);
		break;
	case IN_JSON:
		c->json_got += (uint32_t)n;
		if (c->json_got == c->h.json_len)
			frame_json_done(c);
		break;
	case IN_BIN:
		c->bin_got += (uint32_t)n;
		if (c->bin_got == c->bh.body_len)
			bin_body_done(c, c->bin_buf);
		break;
	default:
		payload_consumed(c, p, n);
		break;
	}
}

/* Bytes from the socket: into the input buffer where the stage wants
 * little (many frames per read), straight into place where it wants much.
 * Returns bytes placed at p (0: the buffer was refilled), or <0. */
static ssize_t in_fill(struct ctl_conn *c, char *p, size_t n, int *drained)
{
	size_t want = n >= CTL_INBUF_BYTES ? n : CTL_INBUF_BYTES;
	ssize_t r;

	if (n >= CTL_INBUF_BYTES) {
		r = ctl_stream_read(&c->io, p, n);
	} else {
		if (c->inbuf == NULL && (c->inbuf = malloc(CTL_INBUF_BYTES)) == NULL)
			return -ENOMEM;
		r = ctl_stream_read(&c->io, c->inbuf, CTL_INBUF_BYTES);
	}
	/* A short read from a plain socket emptied it: no need to ask again
	 * (epoll reports what comes next). TLS reads end at record bounds. */
	*drained = r > 0 && (size_t)r < want && c->io.ssl == NULL;
	if (r == 0)
		return c->stage == IN_HDR && c->hdr_got == 0 ? -ENOTCONN : -ECONNRESET;
	if (r < 0)
		return r;
	c->last_in_ns = djc_time_ns();
	c->srv->st.bytes_in += (uint64_t)r;
	if (c->sess != NULL)
		c->sess->bytes_in += (uint64_t)r;
	if (n >= CTL_INBUF_BYTES)
		return r;
	c->in_off = 0;
	c->in_len = (size_t)r;
	return 0;
}

/* Read until the socket is empty, a frame needs a reply slot, or the
 * connection stops reading. Returns <0 when the connection must close. */
static int read_in(struct ctl_conn *c)
{
	int drained = 0;

	while (conn_may_read(c)) {
		char *p;
		size_t n;
		ssize_t r;
		int rc;

		/* A binary body whole in the input buffer is parsed there. */
		if (c->stage == IN_BIN && c->bin_got == 0 &&
		    c->in_len - c->in_off >= c->bh.body_len) {
			c->in_off += c->bh.body_len;
			bin_body_done(c, c->inbuf + c->in_off - c->bh.body_len);
			continue;
		}
		rc = in_sink(c, &p, &n);

		if (rc != 0)
			return rc;
		if (c->in_off < c->in_len) {
			r = (ssize_t)(n < c->in_len - c->in_off ? n : c->in_len - c->in_off);
			memcpy(p, c->inbuf + c->in_off, (size_t)r);
			c->in_off += (size_t)r;
		} else if (drained) {
			return 0;
		} else {
			r = in_fill(c, p, n, &drained);
			if (r == -EAGAIN)
				return 0;
			if (r < 0)
				return (int)r;
			if (r == 0)
				continue;
		}
		in_consumed(c, p, (size_t)r);
	}
	return 0;
}

static void conn_event(struct ctl_conn *c, uint32_t events)
{
	int rc = 0;

	c->refs++;
	/* A parked AUTH reads nothing; a peer gone meanwhile is closed, not
	 * reported by epoll again and again until its turn. */
	if (c->parked && (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		rc = -ENOTCONN;
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		rc = read_in(c);
	if (rc == 0 && !c->dead)
		rc = flush_out(c);
	/* Bytes epoll cannot see (our input buffer, TLS's decrypted ones):
	 * read them now where reading may go on. */
	if (rc == 0 && conn_may_read(c) &&
	    (c->in_off < c->in_len || ctl_stream_pending(&c->io))) {
		rc = read_in(c);
		if (rc == 0 && !c->dead)
			rc = flush_out(c);
	}
	if (rc == 0 && !c->dead && c->state == CS_CLOSING && c->out_head == NULL)
		rc = -ESHUTDOWN;
	if (rc != 0)
		conn_close(c, rc == -ENOTCONN ? "peer closed" : dj_strerror(rc));
	else
		conn_arm(c);
	conn_unref(c);
}

/* ---- workers and completions --------------------------------------------- */

cJSON *ctl_take_request(struct ctl_conn *c, const cJSON *msg)
{
	cJSON *taken = c->req_msg;

	if (msg != taken)
		return cJSON_Duplicate(msg, 1);
	c->req_msg = NULL;
	return taken;
}

int ctl_submit_job(struct ctl_server *srv, struct ctl_conn *c, struct ctl_job *job)
{
	job->conn = c;
	job->sess = c->sess;
	job->bsess = c->sess->bsess;
	job->cookie = c->sess->cookie;
	job->stripes = c->sess->stripes;
	job->peer = c->sess->peer_caps.endpoint;
	job->type = c->req_type;
	job->t0 = c->req_t0;
	djc_strcpy(job->trace, c->req_trace, sizeof(job->trace));
	c->refs++;
	c->inflight++;
	c->sess->refs++;
	c->req_deferred = 1;
	pthread_mutex_lock(&srv->lock);
	srv->jobs_queued++;
	if (srv->jobs_tail != NULL)
		srv->jobs_tail->next = job;
	else
		srv->jobs = job;
	srv->jobs_tail = job;
	pthread_cond_signal(&srv->job_cond);
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

static int submit(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
		  ctl_job_fn fn, struct dp_put *put, uint8_t *in, uint64_t in_len)
{
	struct ctl_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -ENOMEM;
	job->in_payload = in;
	job->in_len = in_len;
	job->id = id;
	job->req = ctl_take_request(c, req);
	job->fn = fn;
	job->put = put;
	if (job->req == NULL) {
		free(job);
		return -ENOMEM;
	}
	return ctl_submit_job(srv, c, job);
}

int ctl_submit(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
	       ctl_job_fn fn, struct dp_put *put)
{
	return submit(srv, c, id, req, fn, put, NULL, 0);
}

int ctl_submit_payload(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, cJSON *req,
		       ctl_job_fn fn, uint8_t *buf, uint64_t len)
{
	int rc = submit(srv, c, id, req, fn, NULL, buf, len);

	if (rc != 0)
		free(buf);
	return rc;
}

static void *worker_main(void *arg)
{
	struct ctl_server *srv = arg;
	uint64_t one = 1;

	pthread_setname_np(pthread_self(), "dj-ctl-worker");
	pthread_mutex_lock(&srv->lock);
	for (;;) {
		struct ctl_job *job;

		while (srv->jobs == NULL && !srv->stopping)
			pthread_cond_wait(&srv->job_cond, &srv->lock);
		if (srv->jobs == NULL)
			break;
		job = srv->jobs;
		srv->jobs = job->next;
		if (srv->jobs == NULL)
			srv->jobs_tail = NULL;
		srv->jobs_queued--;
		srv->jobs_running++;
		pthread_mutex_unlock(&srv->lock);

		/* Its log lines (data path included) name the request. */
		djc_log_req_set(job->trace);
		job->reply = job->fn(srv, job);
		djc_log_req_set(NULL);
		job->next = NULL;

		pthread_mutex_lock(&srv->lock);
		srv->jobs_running--;
		/* Wake the epoll thread only when the list goes non-empty: it
		 * drains everything queued by then. */
		if (srv->done_tail != NULL) {
			srv->done_tail->next = job;
		} else {
			srv->done = job;
			if (write(srv->evfd, &one, sizeof(one)) < 0)
				DJC_LOG(DJ_LOG_ERR, TAG, "eventfd write failed");
		}
		srv->done_tail = job;
	}
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* A finished job's effects on its session: handles made, data-path
 * failures. */
static void job_effects(struct ctl_job *job)
{
	job->sess->n_handles += (uint32_t)job->handles_delta;
	job->sess->dp_failures += (uint64_t)job->dp_failed;
}

/* A finished job's reference on its session (a held read takes it over). */
static void job_settle(struct ctl_job *job)
{
	struct ctl_session *s = job->sess;

	job_effects(job);
	if (job->held != NULL) {
		job->held->next = s->held;
		s->held = job->held;
	} else {
		s->refs--;
	}
}

/* A finished job's reply queued on its connection (1), or dropped with a
 * dead one (0); the request is accounted either way. */
static int job_reply(struct ctl_server *srv, struct ctl_job *job)
{
	struct ctl_conn *c = job->conn;

	if (job->bin != NULL) {
		ctl_request_done(srv, job->type, job->trace, job->t0, ctl_bin_job_reply(c, job),
				 NULL);
		return !c->dead;
	}

	/* No memory even for an ERROR: ctl_send() closes the connection
	 * rather than leave the request unanswered. */
	if (job->reply == NULL)
		job->reply = ctl_error_new(job->id, -ENOMEM, "server out of memory");
	if (job->reply != NULL && cJSON_GetObjectItem(job->reply, "code") != NULL)
		srv->st.errors++;
	ctl_job_done(srv, job);
	if (c->dead) {
		cJSON_Delete(job->reply);
		return 0;
	}
	ctl_send_payload(c, job->reply, job->out_payload, job->out_len);
	job->out_payload = NULL;
	return 1;
}

void ctl_run_inline(struct ctl_server *srv, struct ctl_conn *c, uint64_t id, const cJSON *req,
		    ctl_job_fn fn)
{
	struct ctl_job job = {
		.conn = c, .sess = c->sess, .bsess = c->sess->bsess, .cookie = c->sess->cookie,
		.peer = c->sess->peer_caps.endpoint, .id = id, .req = (cJSON *)req, .fn = fn,
		.type = c->req_type, .t0 = c->req_t0,
	};

	memcpy(job.trace, c->req_trace, sizeof(job.trace));
	/* Accounted by job_reply, as a worker's job is. */
	c->req_deferred = 1;
	job.reply = fn(srv, &job);
	job_effects(&job);
	job_reply(srv, &job);
	free(job.out_payload);
}

static void drain_completions(struct ctl_server *srv)
{
	struct ctl_conn *touched = NULL;
	struct ctl_job *job;
	uint64_t n;

	if (read(srv->evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		DJC_LOG(DJ_LOG_ERR, TAG, "eventfd read failed");
	pthread_mutex_lock(&srv->lock);
	job = srv->done;
	srv->done = srv->done_tail = NULL;
	pthread_mutex_unlock(&srv->lock);
	while (job != NULL) {
		struct ctl_job *next = job->next;
		struct ctl_conn *c = job->conn;

		c->inflight--;
		job_settle(job);
		if (job_reply(srv, job) && !c->touched) {
			/* Flushed once below, all its replies in one write. */
			c->touched = 1;
			c->next_touched = touched;
			touched = c;
			c->refs++;
		}
		cJSON_Delete(job->req);
		free(job->put);
		free(job->in_payload);
		free(job->out_payload);
		free(job);
		conn_unref(c);
		job = next;
	}
	while (touched != NULL) {
		struct ctl_conn *c = touched;

		touched = c->next_touched;
		c->touched = 0;
		conn_event(c, 0); /* write, and read on where a slot freed up */
		conn_unref(c);
	}
}

/* ---- timers -------------------------------------------------------------- */

static const char *conn_overdue(const struct ctl_conn *c, uint64_t now)
{
	const struct ctl_limits *l = &c->srv->cfg.limits;
	int mid_frame = c->stage != IN_HDR || c->hdr_got > 0;

	if ((c->state == CS_HELLO || c->state == CS_AUTH) &&
	    now - c->accepted_ns > ms_to_ns(l->auth_timeout_ms))
		return "authentication not finished in time";
	if (mid_frame && now - c->last_in_ns > ms_to_ns(l->frame_timeout_ms))
		return "frame stalled half-sent";
	/* A header and its JSON (at most max_json_bytes) arrive within the
	 * frame timeout, however slowly they trickle; payloads need only keep
	 * moving (above). */
	if (mid_frame && c->stage != IN_PAYLOAD &&
	    now - c->frame_start_ns > ms_to_ns(l->frame_timeout_ms))
		return "control message trickling in too slowly";
	if (c->out_head != NULL && now - c->last_out_ns > ms_to_ns(l->frame_timeout_ms))
		return "client not reading its replies";
	if (l->idle_timeout_ms > 0 && c->out_head == NULL && c->inflight == 0 &&
	    now - c->last_in_ns > ms_to_ns(l->idle_timeout_ms))
		return "idle";
	return NULL;
}

/* AUTHs whose address's delay has passed are judged, oldest first; a
 * failure pushes the address's next one further out. */
static void judge_parked(struct ctl_server *srv, uint64_t now)
{
	struct ctl_conn *c = srv->unauth_head;

	while (c != NULL) {
		struct ctl_conn *next = c->unauth_next;

		/* Judging touches c alone: next stays valid. */
		if (c->parked && ctl_guard_auth_due(srv, c->addr, now) <= now) {
			c->refs++;
			ctl_auth_judge(c);
			conn_event(c, 0); /* the reply out, reading on or closed */
			conn_unref(c);
		}
		c = next;
	}
}

static void sweep(struct ctl_server *srv)
{
	uint64_t now = djc_time_ns();
	struct ctl_session **sp = &srv->sessions;
	struct ctl_conn *c;

	judge_parked(srv, now);
	for (c = srv->conns; c != NULL;) {
		struct ctl_conn *next = c->next;
		const char *why = conn_overdue(c, now);

		if (why != NULL) {
			/* A flood of connections that never authenticate times
			 * out all at once: summed up, not a line each. */
			if (!c->unauth || ctl_log_allowed(&srv->log_timeout, now))
				DJC_LOG(DJ_LOG_NOTICE, TAG, "%s: %s", c->peer, why);
			conn_drop(c, -ETIMEDOUT, why);
		}
		c = next;
	}
	ctl_guard_sweep(srv, now);
	while (*sp != NULL) {
		struct ctl_session *s = *sp;

		if (s->held != NULL)
			ctl_session_release_held(srv, s, 0);
		if (s->conn == NULL && s->refs == 0 && now >= s->linger_until_ns) {
			*sp = s->next;
			ctl_session_close(srv, s);
		} else {
			sp = &s->next;
		}
	}
	ctl_sessions_publish(srv, now);
}

/* ---- the epoll thread ---------------------------------------------------- */

static void *server_main(void *arg)
{
	struct ctl_server *srv = arg;
	struct epoll_event evs[64];
	uint64_t last_sweep = 0, last_event = 0;
	uint64_t spin_ns = 1000ull * (srv->cfg.busy_poll_us >= 0 ? (uint32_t)srv->cfg.busy_poll_us
							: djc_spin_budget_us(50));

	while (!srv->stopping) {
		/* Poll while the last event is recent: the next request of a
		 * busy client comes within microseconds, and a sleep would
		 * cost a wake-up on each side of it. */
		int timeout = spin_ns > 0 && djc_time_ns() - last_event < spin_ns ? 0 : SWEEP_MS;
		int n = epoll_wait(srv->epfd, evs, 64, timeout);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &srv->lfd)
				accept_all(srv);
			else if (evs[i].data.ptr == &srv->evfd)
				drain_completions(srv);
			else
				conn_event(evs[i].data.ptr, evs[i].events);
		}
		/* From the replies just written: the next request follows. */
		if (n > 0 && spin_ns > 0)
			last_event = djc_time_ns();
		if (djc_time_ns() - last_sweep > ms_to_ns(SWEEP_MS)) {
			sweep(srv);
			last_sweep = djc_time_ns();
		}
	}
	return NULL;
}

static int listen_on(struct ctl_server *srv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(srv->cfg.port)};
	socklen_t sl = sizeof(sa);
	int one = 1;

	if (inet_pton(AF_INET, srv->listen_addr, &sa.sin_addr) != 1)
		return -EINVAL;
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->lfd < 0)
		return -errno;
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(srv->lfd, 512) != 0 ||
	    getsockname(srv->lfd, (struct sockaddr *)&sa, &sl) != 0)
		return -errno;
	srv->port = ntohs(sa.sin_port);
	return 0;
}

static int epoll_add(int epfd, int fd, void *ptr)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static int local_caps(struct ctl_server *srv)
{
	const struct dj_datapath *dp = srv->cfg.datapath;
	int rc;

	if (dp != NULL && dp->ops->local_caps != NULL) {
		rc = dp->ops->local_caps(dp->ctx, &srv->caps);
		if (rc != 0) {
			DJC_LOG(DJ_LOG_WARN, TAG, "data path reports no capabilities (%s): TCP only",
			       dj_strerror(rc));
			memset(&srv->caps, 0, sizeof(srv->caps));
		}
	}
	if (srv->be->caps != NULL)
		return srv->be->caps(srv->bctx, &srv->caps);
	return 0;
}

static int server_setup(struct ctl_server *srv)
{
	int rc = 0;

	if (srv->cfg.token == NULL && srv->cfg.token_file != NULL)
		rc = dj_token_load(srv->cfg.token_file, &srv->token);
	else if (srv->cfg.token != NULL && (srv->token = strdup(srv->cfg.token)) == NULL)
		rc = -ENOMEM;
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, TAG, "token: %s", dj_strerror(rc));
		return rc;
	}
	if (srv->token == NULL)
		DJC_LOG(DJ_LOG_WARN, TAG, "no token configured: clients are not authenticated");
	if (srv->tls_cert != NULL) {
		rc = ctl_tls_server_ctx(srv->tls_cert, srv->tls_key, &srv->tls_ctx);
		if (rc != 0)
			return rc;
	}
	rc = local_caps(srv);
	if (rc == 0)
		rc = listen_on(srv);
	if (rc != 0)
		return rc;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->epfd < 0 || srv->evfd < 0)
		return -errno;
	rc = epoll_add(srv->epfd, srv->lfd, &srv->lfd);
	if (rc == 0)
		rc = epoll_add(srv->epfd, srv->evfd, &srv->evfd);
	return rc;
}

static char *dup_or_null(const char *s, int *failed)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*failed = 1;
	return d;
}

int ctl_server_create(const struct ctl_server_config *config,
			 const struct ctl_backend *backend, void *backend_ctx,
			 struct ctl_server **server)
{
	struct ctl_server *srv;
	int failed = 0, rc;

	if (config == NULL || backend == NULL || server == NULL ||
	    (config->tls_cert != NULL) != (config->tls_key != NULL))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -ENOMEM;
	srv->cfg = *config;
	limits_fill_defaults(&srv->cfg.limits);
	if (srv->cfg.n_workers <= 0)
		srv->cfg.n_workers = 4;
	if (srv->cfg.dp_timeout_ms == 0)
		srv->cfg.dp_timeout_ms = 10000;
	if (srv->cfg.slow_request_ms == 0)
		srv->cfg.slow_request_ms = 1000;
	srv->be = backend;
	srv->bctx = backend_ctx;
	srv->lfd = srv->epfd = srv->evfd = -1;
	/* Session ids name data-plane sessions on the wire (32 bits): a fleet
	 * member takes part in sessions numbered by other servers too, so each
	 * server numbers from a random point rather than from 1. */
	uint32_t first_id = 1;

	if (ctl_auth_random(&first_id, sizeof(first_id)) != 0)
		first_id = (uint32_t)djc_time_ns();
	srv->next_session_id = (first_id & 0x7fffffffu) | 1u;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_mutex_init(&srv->snap_lock, NULL);
	pthread_cond_init(&srv->job_cond, NULL);
	srv->listen_addr = dup_or_null(config->listen_addr != NULL ? config->listen_addr :
				       "127.0.0.1", &failed);
	srv->tls_cert = dup_or_null(config->tls_cert, &failed);
	srv->tls_key = dup_or_null(config->tls_key, &failed);
	rc = failed ? -ENOMEM : ctl_guard_init(srv);
	if (rc == 0)
		rc = server_setup(srv);
	if (rc == 0)
		rc = ctl_fleet_create(srv);
	if (rc != 0) {
		ctl_server_destroy(srv);
		return rc;
	}
	DJC_LOG(DJ_LOG_NOTICE, TAG, "control plane on %s:%u (%s, %s, data path %s)",
	       srv->listen_addr, srv->port, srv->tls_ctx != NULL ? "TLS" : "plain TCP",
	       srv->token != NULL ? "token auth" : "NO auth",
	       srv->caps.dpdk ? "DPDK + TCP fallback" : "TCP only");
	*server = srv;
	return 0;
}

int ctl_server_start(struct ctl_server *srv)
{
	int rc;

	if (srv->running)
		return -EALREADY;
	srv->workers = calloc((size_t)srv->cfg.n_workers, sizeof(pthread_t));
	if (srv->workers == NULL)
		return -ENOMEM;
	for (int i = 0; i < srv->cfg.n_workers; i++) {
		rc = pthread_create(&srv->workers[i], NULL, worker_main, srv);
		if (rc != 0) {
			srv->cfg.n_workers = i;
			srv->running = 1;
			ctl_server_stop(srv);
			return -rc;
		}
	}
	rc = pthread_create(&srv->thread, NULL, server_main, srv);
	srv->running = 1;
	if (rc != 0) {
		srv->thread = 0;
		ctl_server_stop(srv);
		return -rc;
	}
	return 0;
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (srv == NULL || !srv->running)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stopping = 1;
	pthread_cond_broadcast(&srv->job_cond);
	pthread_mutex_unlock(&srv->lock);
	if (srv->thread != 0)
		pthread_join(srv->thread, NULL);
	for (int i = 0; i < srv->cfg.n_workers; i++)
		pthread_join(srv->workers[i], NULL);
	free(srv->workers);
	srv->workers = NULL;
	/* Workers are gone: finish their replies (dropped), then every
	 * connection and session, on this thread. */
	drain_completions(srv);
	/* New clients get "refused" at once, rather than a backlog nobody serves. */
	close(srv->lfd);
	srv->lfd = -1;
	while (srv->conns != NULL)
		conn_close(srv->conns, "server stopping");
	while (srv->sessions != NULL) {
		struct ctl_session *s = srv->sessions;

		srv->sessions = s->next;
		ctl_session_close(srv, s);
	}
	ctl_sessions_publish(srv, djc_time_ns());
	srv->running = 0;
}

void ctl_server_destroy(struct ctl_server *srv)
{
	if (srv == NULL)
		return;
	ctl_server_stop(srv);
	for (struct ctl_job *j = srv->jobs; j != NULL;) {
		struct ctl_job *next = j->next;

		cJSON_Delete(j->req);
		free(j);
		j = next;
	}
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	if (srv->evfd >= 0)
		close(srv->evfd);
	if (srv->tls_ctx != NULL)
		ctl_tls_ctx_free(srv->tls_ctx);
	pthread_mutex_destroy(&srv->lock);
	pthread_mutex_destroy(&srv->snap_lock);
	pthread_cond_destroy(&srv->job_cond);
	free(srv->snap);
	ctl_fleet_destroy(srv);
	free(srv->listen_addr);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv->token);
	ctl_guard_fini(srv);
	free(srv);
}

uint16_t ctl_server_port(const struct ctl_server *srv)
{
	return srv->port;
}

void ctl_server_get_stats(struct ctl_server *srv, struct ctl_server_stats *s)
{
	s->connections_accepted = srv->st.accepted;
	s->connections_open = srv->st.open;
	s->connections_unauth = srv->n_unauth;
	s->unauth_evicted = srv->st.unauth_evicted;
	s->auth_delayed = srv->st.auth_delayed;
	s->auth_failures = srv->st.auth_failures;
	s->sessions_opened = srv->st.sessions;
	s->requests = srv->st.requests;
	s->errors_sent = srv->st.errors;
	s->protocol_errors = srv->st.protocol_errors;
	s->bytes_in = srv->st.bytes_in;
	s->bytes_out = srv->st.bytes_out;
	s->sessions_dpdk = srv->st.dpdk;
	s->sessions_tcp = srv->st.tcp;
	s->ops = srv->st.ops;
	s->moves_out = srv->st.moves_out;
	s->moves_failed = srv->st.moves_failed;
}
