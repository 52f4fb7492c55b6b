/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What each control message means, on the server. Runs on the epoll thread,
 * except the *_job functions, which run on workers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_server.h"

#define TAG "ctl"
/* Ranges of ids a new session tries on the data path (session_dp_open). */
#define CTL_SESSION_ID_TRIES 8

struct request {
	struct ctl_conn *c;
	struct ctl_server *srv;
	const cJSON *msg;
	uint64_t id;
	uint64_t payload_len;
	char err[CTL_ERRMSG_MAX];
};

/* Send the ERROR reply for code; returns code. */
static int fail(struct request *r, int code)
{
	ctl_send_error(r->c, r->id, code, r->err);
	return code;
}

static const struct dj_datapath *server_dp(struct ctl_server *srv)
{
	return srv->caps.dpdk ? srv->cfg.datapath : NULL;
}

/* ---- handshake ------------------------------------------------------------ */

static cJSON *hello_reply(struct request *r)
{
	cJSON *reply = ctl_reply_new(r->id, "HELLO");
	const char *token, *label_c, *label_s;
	uint8_t proof[CTL_MAC_LEN];
	char hex[2 * CTL_MAC_LEN + 1];

	ctl_fleet_auth_params(r->c, &token, &label_c, &label_s);
	cJSON_AddNumberToObject(reply, "version", CTL_PROTO_VERSION);
	cJSON_AddItemToObject(reply, "caps", ctl_caps_to_json(&r->srv->caps));
	if (token != NULL &&
	    ctl_auth_mac(token, label_s, r->c->nonce_c, r->c->nonce_s, proof) == 0) {
		ctl_hex_encode(proof, CTL_MAC_LEN, hex);
		cJSON_AddStringToObject(reply, "proof", hex);
	}
	ctl_bin_hello_reply(r->c, reply);
	return reply;
}

/* The connection cannot go on: ERROR, then closed once it is written. */
static int refuse(struct request *r, int code, const char *why)
{
	ctl_send_error(r->c, r->id, code, why);
	ctl_close_after_flush(r->c);
	return code;
}

/* A client that does not authenticate (no nonce, no AUTH). Rate-limited in
 * the log: a flood of them must not flood it. */
static int auth_refuse(struct request *r, int code, const char *why)
{
	r->srv->st.auth_failures++;
	if (ctl_log_allowed(&r->srv->log_auth, djc_time_ns()))
		DJC_LOG(DJ_LOG_NOTICE, TAG, "%s: authentication refused: %s", r->c->peer, why);
	return refuse(r, code, why);
}

/* The connection is authenticated (or needs no authentication): it
 * leaves the budget of the unauthenticated, within max_connections. */
static int hello_done(struct request *r)
{
	int rc = ctl_guard_authenticated(r->c, r->err, sizeof(r->err));

	if (rc != 0)
		return refuse(r, rc, r->err);
	r->c->state = CS_READY;
	ctl_send(r->c, hello_reply(r));
	return 0;
}

/* The version is an exact match: there is one protocol version, and a
 * client speaking another is refused rather than negotiated down. Not an
 * authentication failure: nothing was guessed. */
static int on_hello(struct request *r)
{
	const cJSON *caps = cJSON_GetObjectItemCaseSensitive(r->msg, "caps");
	const char *nonce, *token, *label_c, *label_s;
	uint64_t version;

	if (ctl_json_u64(r->msg, "version", &version, r->err) != 0) {
		r->srv->st.protocol_errors++;
		return refuse(r, -EINVAL, r->err);
	}
	if (version != CTL_PROTO_VERSION) {
		snprintf(r->err, sizeof(r->err), "protocol version %" PRIu64 " not spoken: this "
			 "server speaks exactly version %d", version, CTL_PROTO_VERSION);
		r->srv->st.protocol_errors++;
		return refuse(r, -DJ_EPROTO_VERSION, r->err);
	}
	if (cJSON_IsObject(caps))
		ctl_caps_from_json(caps, &r->c->peer_caps);
	ctl_bin_hello(r->c, r->msg);
	/* A fleet member proves the fleet's token instead of the clients'. */
	if (ctl_fleet_hello(r->c, r->msg, r->err) != 0)
		return auth_refuse(r, -DJ_EAUTH, r->err);
	ctl_fleet_auth_params(r->c, &token, &label_c, &label_s);
	if (token == NULL)
		return hello_done(r);
	if (ctl_json_str(r->msg, "nonce", &nonce, r->err) != 0 ||
	    ctl_hex_decode(nonce, r->c->nonce_c, CTL_NONCE_LEN) != 0)
		return auth_refuse(r, -DJ_EAUTH, "authentication required: HELLO needs a 64-hex-digit nonce");
	if (ctl_auth_random(r->c->nonce_s, CTL_NONCE_LEN) != 0)
		return refuse(r, -EIO, "no randomness");

	cJSON *ch = ctl_reply_new(r->id, "CHALLENGE");
	char hex[2 * CTL_NONCE_LEN + 1];

	ctl_hex_encode(r->c->nonce_s, CTL_NONCE_LEN, hex);
	cJSON_AddStringToObject(ch, "nonce", hex);
	r->c->state = CS_AUTH;
	ctl_send(r->c, ch);
	return 0;
}

/* Judge a MAC now: a failure delays the address's next AUTH. */
static int auth_judge(struct request *r, const uint8_t got[CTL_MAC_LEN], int well_formed)
{
	uint8_t want[CTL_MAC_LEN];
	uint64_t now = djc_time_ns();
	const char *why = "authentication failed: wrong token", *token, *label_c, *label_s;

	/* A fleet member's MAC is over the fleet's token and labels. */
	ctl_fleet_auth_params(r->c, &token, &label_c, &label_s);
	if (ctl_auth_mac(token, label_c, r->c->nonce_s, r->c->nonce_c, want) != 0)
		return refuse(r, -EIO, "HMAC unavailable");
	if (!well_formed)
		why = "authentication failed: AUTH needs a 64-hex-digit mac";
	else if (ctl_auth_equal(got, want, CTL_MAC_LEN))
		why = NULL;
	if (why != NULL) {
		ctl_guard_auth_failed(r->srv, r->c->addr, r->c->peer, why, now);
		return refuse(r, -DJ_EAUTH, why);
	}
	ctl_guard_auth_ok(r->srv, r->c->addr, now);
	return hello_done(r);
}

/* An AUTH from an address that failed lately waits for its turn: parked,
 * judged by the sweep (ctl_auth_judge), so guesses from one address are
 * spaced out however many connections carry them. */
static int on_auth(struct request *r)
{
	struct ctl_conn *c = r->c;
	uint64_t now = djc_time_ns();
	const char *mac;
	int well_formed = ctl_json_str(r->msg, "mac", &mac, r->err) == 0 &&
			  ctl_hex_decode(mac, c->parked_mac, CTL_MAC_LEN) == 0;

	if (!well_formed)
		memset(c->parked_mac, 0, sizeof(c->parked_mac));
	if (ctl_guard_auth_due(r->srv, c->addr, now) > now) {
		c->parked = well_formed ? 1 : 2;
		c->parked_id = r->id;
		r->srv->st.auth_delayed++;
		/* Answered when judged: the request ends then. */
		c->req_deferred = 1;
		return 0;
	}
	return auth_judge(r, c->parked_mac, well_formed);
}

void ctl_auth_judge(struct ctl_conn *c)
{
	struct request r = {.c = c, .srv = c->srv, .id = c->parked_id};
	int well_formed = c->parked == 1, rc;

	c->parked = 0;
	/* Still the AUTH's request: a parked connection reads nothing. */
	djc_log_req_set(c->req_trace);
	rc = auth_judge(&r, c->parked_mac, well_formed);
	djc_log_req_set(NULL);
	ctl_request_done(c->srv, CTL_REQ_AUTH, c->req_trace, c->req_t0, rc, NULL);
}

/* ---- sessions ------------------------------------------------------------- */

/* Cancel a data-plane PUT and end its write: 0. Where the data path cannot
 * promise the destination is written no more (-EDEADLK) the write stays
 * open: the storage is leaked rather than freed under the lcore. */
static int put_cancel_end(struct ctl_server *srv, void *bsess, uint64_t cookie,
			  struct dp_put *p, int status)
{
	const struct dj_datapath *dp = srv->cfg.datapath;

	(void)cookie; /* the plan names every part's session */
	if (ctl_stripe_cancel(dp, &p->st, p->xfer) == -EDEADLK) {
		DJC_LOG(DJ_LOG_ERR, TAG, "transfer %" PRIu64 ": data path unresponsive, its "
		       "destination may still be written: leaked", p->xfer);
		return -EDEADLK;
	}
	srv->be->write_end(srv->bctx, bsess, &p->io, status);
	return 0;
}

/* End every data-plane PUT still waiting for its PUT_DONE, as a broken
 * connection ends a PUT's payload over TCP: nobody can finish them (a
 * client that comes back resumes the session, not a transfer), so their
 * destinations are disarmed and the tensors they were creating freed now,
 * not when the session's linger ends. */
static void dp_puts_abort(struct ctl_server *srv, struct ctl_session *s, int status)
{
	char err[CTL_ERRMSG_MAX];

	while (s->dp_puts != NULL) {
		struct dp_put *p = s->dp_puts;

		s->dp_puts = p->next;
		if (put_cancel_end(srv, s->bsess, s->cookie, p, status) == 0 && p->is_new &&
		    srv->be->free(srv->bctx, s->bsess, p->handle, err) == 0)
			s->n_handles--;
		free(p);
	}
}

void ctl_session_release_held(struct ctl_server *srv, struct ctl_session *s, int all)
{
	const struct dj_datapath *dp = srv->cfg.datapath;
	struct held_read **pp = &s->held, *h;

	while ((h = *pp) != NULL) {
		/* Only a clear 0 gives the storage back: anything else may
		 * leave a frame reading it. */
		int pinned = ctl_stripe_pinned(dp, &h->st, h->xfer) != 0;

		if (pinned && !all) {
			pp = &h->next;
			continue;
		}
		if (pinned)
			DJC_LOG(DJ_LOG_ERR, TAG, "session %" PRIu64 ": transfer %" PRIu64
			       " still pinned by the data path: its tensor is leaked", s->id, h->xfer);
		else
			srv->be->read_end(srv->bctx, s->bsess, &h->io);
		*pp = h->next;
		free(h);
		s->refs--;
	}
}

void ctl_session_close(struct ctl_server *srv, struct ctl_session *s)
{
	const struct dj_datapath *dp = server_dp(srv);

	ctl_session_release_held(srv, s, 1);
	dp_puts_abort(srv, s, -ECANCELED);
	if (s->dp_opened)
		ctl_stripe_close(dp, s->cookie, s->stripes);
	srv->be->session_close(srv->bctx, s->bsess);
	DJC_LOG(DJ_LOG_INFO, TAG, "session %" PRIu64 " closed", s->id);
	free(s);
}

void ctl_session_detach(struct ctl_server *srv, struct ctl_session *s)
{
	dp_puts_abort(srv, s, -ECONNABORTED);
	s->conn = NULL;
	/* A member's session holds only tensors of moves in progress: they go
	 * at once (the member reconnects with a new session). */
	s->linger_until_ns = s->bye || s->member ? 0 : djc_time_ns() +
			     (uint64_t)srv->cfg.limits.session_linger_ms * 1000000ull;
}

struct ctl_session *ctl_session_find(struct ctl_server *srv, uint64_t id)
{
	for (struct ctl_session *s = srv->sessions; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static int session_resume(struct request *r, const cJSON *resume)
{
	uint64_t id, cookie;
	struct ctl_session *s;

	if (ctl_json_u64(resume, "session", &id, r->err) != 0 ||
	    ctl_json_handle(resume, "cookie", &cookie, r->err) != 0)
		return -EINVAL;
	s = ctl_session_find(r->srv, id);
	/* Constant time on the cookie: it is the session's only secret. */
	if (s == NULL || s->conn != NULL || s->bye ||
	    !ctl_auth_equal((const uint8_t *)&s->cookie, (const uint8_t *)&cookie, sizeof(cookie))) {
		snprintf(r->err, sizeof(r->err), "session %" PRIu64 " cannot be resumed (unknown, in use or expired)", id);
		return -ENOENT;
	}
	s->conn = r->c;
	r->c->sess = s;
	s->peer_caps = r->c->peer_caps;
	return 0;
}

/* Where the backend names devices: make want (may be NULL) the session's
 * default device and write the default into name (may be NULL). */
static int session_device(struct request *r, void *bsess, const char *want, char *name)
{
	char dev[CTL_DEVICE_MAX];
	int rc;

	if (r->srv->be->session_device == NULL) {
		if (want == NULL)
			return 0;
		snprintf(r->err, sizeof(r->err), "this server keeps tensors on one device: "
			 "no 'device' field");
		return -ENOTSUP;
	}
	rc = r->srv->be->session_device(r->srv->bctx, bsess, want, dev, r->err);
	if (rc == 0 && name != NULL)
		snprintf(name, CTL_DEVICE_MAX, "%s", dev);
	return rc;
}

/* The optional "device" field of msg: NULL where absent; -EINVAL where it
 * is not a short string. */
static int device_field(const cJSON *msg, const char **device, char *err)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(msg, "device");

	*device = NULL;
	if (it == NULL)
		return 0;
	if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
	    strlen(it->valuestring) >= CTL_DEVICE_MAX) {
		snprintf(err, CTL_ERRMSG_MAX, "field 'device' must be a device name of 1 to %d "
			 "characters (\"cuda:1\")", CTL_DEVICE_MAX - 1);
		return -EINVAL;
	}
	*device = it->valuestring;
	return 0;
}

/* Stripes a new session gets: what the client asked for (want), at most
 * the queue pairs of either side; 1 without a data path to the client. */
static unsigned int stripes_granted(const struct request *r, unsigned int want)
{
	unsigned int n = want != 0 ? want : 1;
	unsigned int ours = r->srv->caps.endpoint.n_queues;
	unsigned int theirs = r->c->peer_caps.endpoint.n_queues;

	if (server_dp(r->srv) == NULL || !r->c->peer_caps.dpdk)
		return 1;
	n = n < ours ? n : ours;
	n = n < theirs ? n : theirs;
	return n > 1 ? n : 1;
}

/* Stripe i is the data-plane session id + i: the ids of every stripe are
 * this session's, never another's on this server. */
static void session_ids_take(struct ctl_server *srv, struct ctl_session *s, unsigned int n)
{
	s->id = srv->next_session_id;
	srv->next_session_id += n;
}

/* Open the session's stripes on the data path: those that open are the
 * session's (at least the first, else it has no data path). The data path
 * refuses an id it already has open with this peer (-EEXIST): one that
 * peer numbered itself, for a session of its own where this server takes
 * part (a fleet member). The session then takes the next range of ids,
 * a few times at most. */
static void session_dp_open(struct ctl_server *srv, struct ctl_session *s, unsigned int want)
{
	const struct dj_datapath *dp = server_dp(srv);
	unsigned int opened, tries = 0;
	int rc;

	session_ids_take(srv, s, want);
	s->stripes = 1;
	if (dp == NULL || !s->peer_caps.dpdk)
		return;
	for (;;) {
		opened = ctl_stripe_open(dp, s->id, s->cookie, want, &s->peer_caps.endpoint, &rc);
		if (opened == want || rc != -EEXIST || ++tries == CTL_SESSION_ID_TRIES)
			break;
		DJC_LOG(DJ_LOG_NOTICE, TAG, "session %" PRIu64 ": data-plane id %" PRIu64
			" in use with this peer; taking the next range", s->id, s->id + opened);
		ctl_stripe_close(dp, s->cookie, opened);
		session_ids_take(srv, s, want);
	}
	if (opened < want)
		DJC_LOG(DJ_LOG_WARN, TAG, "session %" PRIu64 ": %u of %u data-plane stripes "
			"opened (%s)", s->id, opened, want, dj_strerror(rc));
	s->dp_opened = opened > 0;
	s->dp_error = opened > 0 ? 0 : rc;
	s->stripes = opened > 0 ? opened : 1;
}

static int session_new(struct request *r, const char *device, unsigned int want)
{
	struct ctl_server *srv = r->srv;
	struct ctl_session *s = calloc(1, sizeof(*s));
	unsigned int stripes = stripes_granted(r, want);
	int rc;

	if (s == NULL)
		return -ENOMEM;
	/* The data path first: it settles the session's id. */
	s->peer_caps = r->c->peer_caps;
	rc = ctl_auth_random(&s->cookie, sizeof(s->cookie));
	if (rc != 0)
		goto error;
	session_dp_open(srv, s, stripes);
	rc = srv->be->session_open(srv->bctx, s->id, &s->bsess, r->err);
	if (rc != 0)
		goto error;
	rc = session_device(r, s->bsess, device, NULL);
	if (rc != 0) {
		srv->be->session_close(srv->bctx, s->bsess);
		goto error;
	}
	s->path = DJ_PATH_TCP;
	s->opened_ns = djc_time_ns();
	s->member = r->c->member;
	snprintf(s->path_reason, sizeof(s->path_reason), "not negotiated yet");
	s->conn = r->c;
	s->next = srv->sessions;
	srv->sessions = s;
	r->c->sess = s;
	srv->st.sessions++;
	return 0;
error:
	if (s->dp_opened)
		ctl_stripe_close(server_dp(srv), s->cookie, s->stripes);
	free(s);
	return rc;
}

/* "the server's data plane opened no session for it: limit exceeded". */
static void dp_refused_reason(const struct ctl_session *s, char *buf, size_t len)
{
	snprintf(buf, len, "the server's data plane opened no session for it: %s",
		 dj_strerror(s->dp_error));
}

/* Where both sides have a data path but the server's opened none of the
 * session's stripes (its engine refused: -DJ_ELIMIT where its lcores hold
 * all the sessions they can), SESSION says so: the client goes TCP at
 * once instead of probing a session this server never opened. Absent
 * otherwise, so an old client sees the reply it knew. */
static void session_dp_refused(cJSON *reply, const struct ctl_session *s)
{
	char why[CTL_ERRMSG_MAX];

	if (s->dp_error == 0)
		return;
	dp_refused_reason(s, why, sizeof(why));
	cJSON_AddFalseToObject(reply, "dp_open");
	cJSON_AddNumberToObject(reply, "dp_error", s->dp_error);
	cJSON_AddStringToObject(reply, "dp_reason", why);
}

static int on_session(struct request *r)
{
	const cJSON *resume = cJSON_GetObjectItemCaseSensitive(r->msg, "resume");
	int resumed = cJSON_IsObject(resume), rc;
	char device[CTL_DEVICE_MAX] = "";
	unsigned int stripes;
	const char *want;
	cJSON *reply;

	if (r->c->sess != NULL) {
		snprintf(r->err, sizeof(r->err), "this connection already has a session");
		return fail(r, -EALREADY);
	}
	/* A resumed session keeps the device it had: "device" is for new ones. */
	rc = device_field(r->msg, &want, r->err);
	if (rc == 0)
		rc = ctl_stripe_session_field(r->msg, &stripes, r->err);
	if (rc == 0)
		rc = resumed ? session_resume(r, resume) : session_new(r, want, stripes);
	if (rc != 0)
		return fail(r, rc);
	session_device(r, r->c->sess->bsess, NULL, device);
	reply = ctl_reply_new(r->id, "SESSION");
	ctl_json_add_u64(reply, "session", r->c->sess->id);
	ctl_json_add_handle(reply, "cookie", r->c->sess->cookie);
	cJSON_AddBoolToObject(reply, "resumed", resumed);
	cJSON_AddStringToObject(reply, "path", dj_path_name(r->c->sess->path));
	if (device[0] != '\0')
		cJSON_AddStringToObject(reply, "device", device);
	/* Only to a client that asked: what it has to know to use them. */
	if (stripes != 0)
		cJSON_AddNumberToObject(reply, "stripes", r->c->sess->stripes);
	session_dp_refused(reply, r->c->sess);
	DJC_LOG(DJ_LOG_INFO, TAG, "%s: session %" PRIu64 " %s, %u stripe(s)", r->c->peer,
		r->c->sess->id, resumed ? "resumed" : "opened", r->c->sess->stripes);
	ctl_send(r->c, reply);
	return 0;
}

static int on_path(struct request *r)
{
	struct ctl_session *s = r->c->sess;
	const char *name, *reason = "";
	enum dj_path path;

	if (ctl_json_str(r->msg, "path", &name, r->err) != 0)
		return fail(r, -EINVAL);
	if (dj_path_parse(name, &path) != 0 || path == DJ_PATH_AUTO) {
		snprintf(r->err, sizeof(r->err), "path must be \"tcp\" or \"dpdk\", not \"%.32s\"", name);
		return fail(r, -EINVAL);
	}
	if (path == DJ_PATH_DPDK && !s->dp_opened) {
		if (s->dp_error != 0)
			dp_refused_reason(s, r->err, sizeof(r->err));
		else
			snprintf(r->err, sizeof(r->err), "%s", server_dp(r->srv) == NULL ?
				 "this server has no DPDK data path" :
				 "the client announced no DPDK endpoint");
		return fail(r, -DJ_ENODPDK);
	}
	ctl_json_str(r->msg, "reason", &reason, r->err);
	if (s->path != path || strcmp(s->path_reason, "not negotiated yet") == 0) {
		if (path == DJ_PATH_DPDK)
			r->srv->st.dpdk++;
		else
			r->srv->st.tcp++;
	}
	s->path = path;
	/* Shown in STATS replies: valid UTF-8 whatever the client sent. */
	djc_escape(s->path_reason, sizeof(s->path_reason), reason, strlen(reason));
	DJC_LOG(DJ_LOG_NOTICE, TAG, "session %" PRIu64 ": data path %s (%s)", s->id, name, reason);
	ctl_send(r->c, ctl_reply_new(r->id, "PATH"));
	return 0;
}

/* ---- tensors ------------------------------------------------------------ */

static void handles_error(uint32_t have, char *err)
{
	snprintf(err, CTL_ERRMSG_MAX, "session holds %u handles: the limit", have);
}

int ctl_handles_left(struct ctl_conn *c, char *err)
{
	uint32_t have = atomic_load(&c->sess->n_handles);

	if (have < c->srv->cfg.limits.max_handles)
		return 1;
	handles_error(have, err);
	return 0;
}

int ctl_handles_take(const struct ctl_server *srv, struct ctl_session *s, uint32_t n, char *err)
{
	uint32_t max = srv->cfg.limits.max_handles;
	uint32_t have = atomic_load(&s->n_handles);

	do {
		if (n > max || have > max - n) {
			handles_error(have, err);
			return -DJ_ELIMIT;
		}
	} while (!atomic_compare_exchange_weak(&s->n_handles, &have, have + n));
	return 0;
}

void ctl_handles_give(struct ctl_session *s, uint32_t n)
{
	atomic_fetch_sub(&s->n_handles, n);
}

void ctl_payload_unhold(struct ctl_server *srv, void *bsess, uint64_t n)
{
	char ignored[CTL_ERRMSG_MAX];

	if (srv->be->hold != NULL && n > 0)
		srv->be->hold(srv->bctx, bsess, -(int64_t)n, ignored);
}

static int handles_left(struct request *r)
{
	return ctl_handles_left(r->c, r->err);
}

/* "handle" and, where desc is given, the description into obj; -ENOMEM
 * where memory ran out (obj then lacks fields: do not send it). */
static int handle_to_json(cJSON *obj, uint64_t handle, const struct dj_tensor_desc *desc)
{
	if (obj == NULL || ctl_json_add_handle(obj, "handle", handle) == NULL ||
	    (desc != NULL && ctl_desc_to_json(obj, desc) != 0))
		return -ENOMEM;
	return 0;
}

cJSON *ctl_handle_reply(uint64_t id, const char *type, uint64_t handle,
			const struct dj_tensor_desc *desc)
{
	cJSON *reply = ctl_reply_new(id, type);

	if (reply != NULL && handle_to_json(reply, handle, desc) != 0) {
		cJSON_Delete(reply);
		reply = NULL;
	}
	return reply;
}

cJSON *ctl_reply_device(struct ctl_server *srv, void *bsess, cJSON *obj, uint64_t handle)
{
	char device[CTL_DEVICE_MAX];

	if (obj != NULL && srv->be->device_of != NULL &&
	    srv->be->device_of(srv->bctx, bsess, handle, device) == 0 &&
	    cJSON_AddStringToObject(obj, "device", device) == NULL) {
		cJSON_Delete(obj);
		obj = NULL;
	}
	return obj;
}

static void reply_desc(struct request *r, const char *type, uint64_t handle,
		       const struct dj_tensor_desc *desc)
{
	ctl_send(r->c, ctl_reply_device(r->srv, r->c->sess->bsess,
					ctl_handle_reply(r->id, type, handle, desc), handle));
}

/* A new tensor, zeroed, on the device msg names ("device", optional: the
 * session's default device). */
static int alloc_in(struct ctl_server *srv, void *bsess, const cJSON *msg,
		    const struct dj_tensor_desc *desc, uint64_t *handle, char *err)
{
	const char *device;
	int rc = device_field(msg, &device, err);

	if (rc != 0)
		return rc;
	if (srv->be->alloc_on != NULL)
		return srv->be->alloc_on(srv->bctx, bsess, desc, device, handle, err);
	if (device != NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "this server keeps tensors on one device: no "
			 "'device' field");
		return -ENOTSUP;
	}
	return srv->be->alloc(srv->bctx, bsess, desc, handle, err);
}

static int on_alloc(struct request *r)
{
	struct dj_tensor_desc desc;
	uint64_t handle;
	int rc = ctl_desc_from_json(r->msg, &desc, r->err);

	if (rc == 0)
		rc = ctl_handles_take(r->srv, r->c->sess, 1, r->err);
	if (rc != 0)
		return fail(r, rc);
	rc = alloc_in(r->srv, r->c->sess->bsess, r->msg, &desc, &handle, r->err);
	if (rc != 0) {
		ctl_handles_give(r->c->sess, 1);
		return fail(r, rc);
	}
	reply_desc(r, "ALLOC", handle, &desc);
	return 0;
}

static int on_describe(struct request *r)
{
	struct dj_tensor_desc desc;
	uint64_t handle;
	int rc = ctl_json_handle(r->msg, "handle", &handle, r->err);

	if (rc == 0)
		rc = r->srv->be->describe(r->srv->bctx, r->c->sess->bsess, handle, &desc, r->err);
	if (rc != 0)
		return fail(r, rc);
	reply_desc(r, "DESCRIBE", handle, &desc);
	return 0;
}

static int on_free(struct request *r)
{
	uint64_t handle;
	int rc = ctl_json_handle(r->msg, "handle", &handle, r->err);

	if (rc == 0)
		rc = r->srv->be->free(r->srv->bctx, r->c->sess->bsess, handle, r->err);
	if (rc != 0)
		return fail(r, rc);
	r->c->sess->n_handles--;
	ctl_send(r->c, ctl_reply_new(r->id, "FREE"));
	return 0;
}

/* The handle a PUT writes: the named one (same byte size) or a new one. */
static int put_target(struct request *r, const struct dj_tensor_desc *desc, uint64_t nbytes,
		      uint64_t *handle, int *is_new)
{
	struct ctl_server *srv = r->srv;
	void *bs = r->c->sess->bsess;
	struct dj_tensor_desc have;
	uint64_t have_bytes = 0;
	int rc;

	*is_new = cJSON_GetObjectItemCaseSensitive(r->msg, "handle") == NULL;
	if (*is_new) {
		rc = ctl_handles_take(srv, r->c->sess, 1, r->err);
		if (rc != 0)
			return rc;
		rc = alloc_in(srv, bs, r->msg, desc, handle, r->err);
		if (rc != 0)
			ctl_handles_give(r->c->sess, 1);
		return rc;
	}
	rc = ctl_json_handle(r->msg, "handle", handle, r->err);
	if (rc == 0)
		rc = srv->be->describe(srv->bctx, bs, *handle, &have, r->err);
	if (rc == 0 && (ctl_desc_nbytes(&have, &have_bytes) != 0 || have_bytes != nbytes)) {
		snprintf(r->err, sizeof(r->err), "PUT of %" PRIu64 " bytes into a tensor of %" PRIu64,
			 nbytes, have_bytes);
		rc = -EMSGSIZE;
	}
	return rc;
}

static void put_undo(struct request *r, uint64_t handle, int is_new)
{
	char err[CTL_ERRMSG_MAX];

	if (is_new && r->srv->be->free(r->srv->bctx, r->c->sess->bsess, handle, err) == 0)
		r->c->sess->n_handles--;
}

/* The parts of a transfer of nbytes at addr as a request asked (n parts,
 * or whole on stripe), over the session's stripes. -EINVAL with err. */
static int stripe_plan(const struct ctl_session *s, struct ctl_stripe *st, unsigned int n,
		       unsigned int stripe, void *addr, uint64_t nbytes, char *err)
{
	if (ctl_stripe_plan(st, s->cookie, s->stripes, n, stripe, addr, nbytes) == 0)
		return 0;
	snprintf(err, CTL_ERRMSG_MAX, "stripes %u, stripe %u: this session has %u stripe(s), "
		 "and %" PRIu64 " bytes leave no part empty in at most %" PRIu64 " parts",
		 n, stripe, s->stripes, nbytes,
		 nbytes / CTL_STRIPE_ALIGN < CTL_STRIPES_MAX ? nbytes / CTL_STRIPE_ALIGN + 1 :
		 (uint64_t)CTL_STRIPES_MAX);
	return -EINVAL;
}

static int put_over_dp(struct request *r, uint64_t handle, int is_new, struct ctl_tensor_io *io)
{
	const struct dj_datapath *dp = server_dp(r->srv);
	struct ctl_session *s = r->c->sess;
	void *addr = io->host != NULL ? io->host : io->dp_addr;
	unsigned int n, stripe;
	struct dp_put *p;
	uint64_t xfer;
	int rc;

	if (ctl_json_u64(r->msg, "xfer", &xfer, r->err) != 0 ||
	    ctl_stripe_fields(r->msg, &n, &stripe, r->err) != 0)
		return -EINVAL;
	if (s->path != DJ_PATH_DPDK || addr == NULL) {
		snprintf(r->err, sizeof(r->err), "%s", addr == NULL ?
			 "the data path cannot reach this tensor's memory" :
			 "this session does not use the DPDK data path");
		return -DJ_ENODPDK;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	rc = stripe_plan(s, &p->st, n, stripe, addr, io->nbytes, r->err);
	if (rc == 0)
		rc = ctl_stripe_expect(dp, &p->st, xfer, io->mem);
	if (rc != 0) {
		if (rc != -EINVAL)
			snprintf(r->err, sizeof(r->err), "data path refused transfer %" PRIu64, xfer);
		free(p);
		return rc;
	}
	p->next = s->dp_puts;
	p->xfer = xfer;
	p->handle = handle;
	p->is_new = is_new;
	p->io = *io;
	s->dp_puts = p;
	DJC_LOG(DJ_LOG_DEBUG, TAG, "session %" PRIu64 ": PUT over dpdk, xfer %" PRIu64 ", %" PRIu64
		" B: receiver armed", s->id, xfer, io->nbytes);
	cJSON *reply = ctl_reply_device(r->srv, s->bsess,
					ctl_handle_reply(r->id, "READY", handle, NULL), handle);

	if (reply != NULL && ctl_json_add_u64(reply, "xfer", xfer) == NULL) {
		cJSON_Delete(reply);
		reply = NULL;
	}
	ctl_send(r->c, reply);
	return 0;
}

static int on_put(struct request *r)
{
	struct ctl_server *srv = r->srv;
	struct ctl_conn *c = r->c;
	const char *via = "tcp";
	struct dj_tensor_desc desc;
	struct ctl_tensor_io io = {0};
	uint64_t nbytes = 0, handle;
	int is_new, rc;

	rc = ctl_desc_from_json(r->msg, &desc, r->err);
	if (rc != 0)
		return fail(r, rc);
	ctl_desc_nbytes(&desc, &nbytes);
	if (cJSON_GetObjectItemCaseSensitive(r->msg, "via") != NULL &&
	    ctl_json_str(r->msg, "via", &via, r->err) != 0)
		return fail(r, -EINVAL);
	if (strcmp(via, "dpdk") != 0 && r->payload_len != nbytes) {
		snprintf(r->err, sizeof(r->err), "payload of %" PRIu64 " bytes for a tensor of %" PRIu64,
			 r->payload_len, nbytes);
		return fail(r, -EMSGSIZE);
	}
	rc = put_target(r, &desc, nbytes, &handle, &is_new);
	if (rc != 0)
		return fail(r, rc);
	rc = srv->be->write_begin(srv->bctx, c->sess->bsess, handle, &io, r->err);
	if (rc == 0 && io.nbytes != nbytes) {
		srv->be->write_end(srv->bctx, c->sess->bsess, &io, -EMSGSIZE);
		snprintf(r->err, sizeof(r->err), "backend storage size differs from the tensor's");
		rc = -EMSGSIZE;
	}
	if (rc == 0 && strcmp(via, "dpdk") == 0) {
		rc = put_over_dp(r, handle, is_new, &io);
		if (rc != 0)
			srv->be->write_end(srv->bctx, c->sess->bsess, &io, rc);
	} else if (rc == 0) {
		c->pay_into = 1;
		c->wio = io;
		c->pay_id = r->id;
		c->pay_handle = handle;
		c->pay_is_new = is_new;
		c->pay_rc = 0;
		c->pay_err[0] = '\0';
		/* The request ends with its payload (ctl_server.c). */
		c->pay_t0 = c->req_t0;
		djc_strcpy(c->pay_trace, c->req_trace, sizeof(c->pay_trace));
		c->req_deferred = nbytes > 0;
		if (nbytes == 0) {
			c->pay_into = 0;
			srv->be->write_end(srv->bctx, c->sess->bsess, &io, 0);
			reply_desc(r, "PUT", handle, &desc);
		}
		return 0;
	}
	if (rc != 0) {
		put_undo(r, handle, is_new);
		return fail(r, rc);
	}
	return 0;
}

static cJSON *put_done_job(struct ctl_server *srv, struct ctl_job *job)
{
	const struct dj_datapath *dp = server_dp(srv);
	struct dp_put *p = job->put;
	int abort_it = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job->req, "abort"));
	char err[CTL_ERRMSG_MAX] = "";
	int rc = abort_it ? -ECANCELED : ctl_stripe_wait(dp, &p->st, p->xfer,
							  srv->cfg.dp_timeout_ms);

	if (rc != 0)
		put_cancel_end(srv, job->bsess, job->cookie, p, rc);
	else
		srv->be->write_end(srv->bctx, job->bsess, &p->io, rc);
	snprintf(job->note, sizeof(job->note), "xfer %" PRIu64 ", %" PRIu64 " B over dpdk",
		 p->xfer, p->io.nbytes);
	if (rc == 0) {
		job->dp_moved = 1;
		job->dp_bytes = p->io.nbytes;
		job->dp_dir = CTL_DIR_IN;
		return ctl_reply_device(srv, job->bsess,
					ctl_handle_reply(job->id, "PUT", p->handle, NULL), p->handle);
	}
	job->dp_failed = !abort_it;
	if (p->is_new && srv->be->free(srv->bctx, job->bsess, p->handle, err) == 0)
		job->handles_delta = -1;
	snprintf(err, sizeof(err), "data-plane transfer %" PRIu64 " %s: %s", p->xfer,
		 abort_it ? "aborted by the client" : "failed", dj_strerror(rc));
	return ctl_error_new(job->id, rc, err);
}

static int on_put_done(struct request *r)
{
	struct dp_put **pp = &r->c->sess->dp_puts;
	uint64_t xfer;
	int rc;

	if (ctl_json_u64(r->msg, "xfer", &xfer, r->err) != 0)
		return fail(r, -EINVAL);
	while (*pp != NULL && (*pp)->xfer != xfer)
		pp = &(*pp)->next;
	if (*pp == NULL) {
		snprintf(r->err, sizeof(r->err), "no data-plane PUT with xfer %" PRIu64, xfer);
		return fail(r, -ENOENT);
	}
	struct dp_put *p = *pp;

	*pp = p->next;
	rc = ctl_submit(r->srv, r->c, r->id, (cJSON *)r->msg, put_done_job, p);
	if (rc != 0) {
		/* Still armed on the data path: disarm before the storage goes. */
		put_cancel_end(r->srv, r->c->sess->bsess, r->c->sess->cookie, p, rc);
		put_undo(r, p->handle, p->is_new);
		free(p);
		return fail(r, rc);
	}
	return 0;
}

static int get_begin(struct ctl_server *srv, void *bs, const cJSON *msg, uint64_t id,
		     struct ctl_tensor_io *io, cJSON **reply, char *err)
{
	struct dj_tensor_desc desc;
	uint64_t handle, nbytes = 0;
	int rc = ctl_json_handle(msg, "handle", &handle, err);

	if (rc == 0)
		rc = srv->be->describe(srv->bctx, bs, handle, &desc, err);
	if (rc == 0)
		rc = srv->be->read_begin(srv->bctx, bs, handle, io, err);
	if (rc != 0)
		return rc;
	ctl_desc_nbytes(&desc, &nbytes);
	if (io->nbytes != nbytes) {
		srv->be->read_end(srv->bctx, bs, io);
		snprintf(err, CTL_ERRMSG_MAX, "backend storage size differs from the tensor's");
		return -EIO;
	}
	*reply = ctl_reply_device(srv, bs, ctl_handle_reply(id, "GET", handle, &desc), handle);
	if (*reply == NULL) {
		srv->be->read_end(srv->bctx, bs, io);
		snprintf(err, CTL_ERRMSG_MAX, "server out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Frames of the failed send may still read the tensor: its read stays
 * open, and the session holds it until the data path lets go (see
 * ctl_server.h). Without memory for the note the read is never ended:
 * a leak, not a use after free. */
static void get_hold(struct ctl_job *job, uint64_t xfer, const struct ctl_stripe *st,
		     const struct ctl_tensor_io *io)
{
	struct held_read *h = malloc(sizeof(*h));

	if (h == NULL) {
		DJC_LOG(DJ_LOG_ERR, TAG, "transfer %" PRIu64 ": tensor pinned by the data path "
		       "and no memory to track it: leaked", xfer);
		return;
	}
	h->next = NULL;
	h->xfer = xfer;
	h->st = *st;
	h->io = *io;
	job->held = h;
}

static cJSON *get_dp_job(struct ctl_server *srv, struct ctl_job *job)
{
	const struct dj_datapath *dp = server_dp(srv);
	char err[CTL_ERRMSG_MAX] = "";
	struct ctl_tensor_io io = {0};
	struct ctl_session s = {.cookie = job->cookie, .stripes = job->stripes};
	struct ctl_stripe st;
	unsigned int n, stripe;
	cJSON *reply = NULL;
	uint64_t xfer;
	int rc = ctl_json_u64(job->req, "xfer", &xfer, err);

	if (rc == 0)
		rc = ctl_stripe_fields(job->req, &n, &stripe, err);
	if (rc == 0)
		rc = get_begin(srv, job->bsess, job->req, job->id, &io, &reply, err);
	if (rc != 0)
		return ctl_error_new(job->id, rc, err);
	void *addr = io.host != NULL ? io.host : io.dp_addr;

	rc = addr == NULL ? -DJ_ENODPDK : stripe_plan(&s, &st, n, stripe, addr, io.nbytes, err);
	if (rc == 0)
		rc = ctl_stripe_send(dp, &job->peer, &st, xfer, io.mem, srv->cfg.dp_timeout_ms);
	if (rc == -EDEADLK)
		get_hold(job, xfer, &st, &io);
	else
		srv->be->read_end(srv->bctx, job->bsess, &io);
	snprintf(job->note, sizeof(job->note), "xfer %" PRIu64 ", %" PRIu64 " B over dpdk", xfer,
		 io.nbytes);
	if (rc == 0) {
		job->dp_moved = 1;
		job->dp_bytes = io.nbytes;
		job->dp_dir = CTL_DIR_OUT;
		return reply;
	}
	cJSON_Delete(reply);
	/* A plan the request got wrong is its answer, not a data-path failure. */
	if (rc == -EINVAL && err[0] != '\0')
		return ctl_error_new(job->id, rc, err);
	job->dp_failed = 1;
	snprintf(err, sizeof(err), "data-plane transfer %" PRIu64 " failed: %s", xfer, dj_strerror(rc));
	return ctl_error_new(job->id, rc, err);
}

static int on_get(struct request *r)
{
	struct ctl_server *srv = r->srv;
	const cJSON *via = cJSON_GetObjectItemCaseSensitive(r->msg, "via");
	struct ctl_out *o;
	cJSON *reply;
	int rc;

	if (cJSON_IsString(via) && strcmp(via->valuestring, "dpdk") == 0) {
		if (r->c->sess->path != DJ_PATH_DPDK) {
			snprintf(r->err, sizeof(r->err), "this session does not use the DPDK data path");
			return fail(r, -DJ_ENODPDK);
		}
		rc = ctl_submit(srv, r->c, r->id, (cJSON *)r->msg, get_dp_job, NULL);
		return rc != 0 ? fail(r, rc) : 0;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return fail(r, -ENOMEM);
	rc = get_begin(srv, r->c->sess->bsess, r->msg, r->id, &o->rio, &reply, r->err);
	if (rc == 0) {
		o->has_read_io = 1;
		o->payload_len = o->rio.nbytes;
		/* The request ends with its last byte written (ctl_server.c). */
		o->req_t0 = r->c->req_t0;
		djc_strcpy(o->req_trace, r->c->req_trace, sizeof(o->req_trace));
		rc = ctl_frame(reply, o->payload_len, &o->frame, &o->len);
		cJSON_Delete(reply);
	}
	if (rc != 0) {
		if (o->has_read_io)
			srv->be->read_end(srv->bctx, r->c->sess->bsess, &o->rio);
		free(o);
		return fail(r, rc);
	}
	r->c->stage_off = r->c->stage_len = 0;
	r->c->req_deferred = 1;
	ctl_send_out(r->c, o);
	return 0;
}

/* ---- EXECUTE (worker) ------------------------------------------------------ */

/*
 * One EXECUTE's progress. made[] holds every tensor the request made that is
 * still alive (0 once a "free" released it): where an entry fails they are
 * all freed (all or nothing). first[k] is entry k's first output, for "$k".
 * The puts' bytes come from the request's payload (in[], consumed in entry
 * order; unheld: the bytes of it given back to the session's memory limit
 * as the puts' tensors took them over); fetched outputs go to the reply's
 * payload (out[]). The session's
 * handle limit holds at every moment of the batch: held is the most tensors
 * of it alive at once (live), taken from the session as they appear.
 */
struct exec_state {
	uint64_t *made;
	int n_made, cap;
	uint32_t live, held;
	uint64_t *first;
	int *made_at;             /* made[] index of first[k]; -1: not made here */
	uint8_t *freed;           /* entry k's first output was freed */
	const uint8_t *in;
	uint64_t in_len, in_off, unheld;
	uint8_t *out;
	uint64_t out_len, out_cap;
	int n_run;                /* operations run (puts are not) */
	char err[CTL_ERRMSG_MAX];
};

/* "$k" naming entry k < index; -1 where text is no such reference. */
static int exec_ref(const char *text, int index)
{
	char *end;
	long k;

	if (text[0] != '$' || text[1] < '0' || text[1] > '9')
		return -1;
	k = strtol(text + 1, &end, 10);
	return *end == '\0' && k < index ? (int)k : -1;
}

static int exec_inputs(const cJSON *op, int index, const struct exec_state *st, uint64_t *in,
		       int *n_in, char *err)
{
	const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(op, "inputs");
	const cJSON *it;
	int n = 0;

	if (!cJSON_IsArray(inputs)) {
		snprintf(err, CTL_ERRMSG_MAX, "field 'inputs' missing or not an array");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, inputs) {
		if (n == DJ_MAX_OP_ARGS) {
			snprintf(err, CTL_ERRMSG_MAX, "more than %d inputs", DJ_MAX_OP_ARGS);
			return -DJ_ELIMIT;
		}
		if (cJSON_IsString(it) && it->valuestring[0] == '$') {
			/* "$k": the first output of entry k of this batch. */
			int k = exec_ref(it->valuestring, index);

			if (k < 0 || st->first[k] == 0) {
				snprintf(err, CTL_ERRMSG_MAX, "input %d: '%.16s' names no earlier output",
					 n, it->valuestring);
				return -EINVAL;
			}
			if (st->freed[k]) {
				snprintf(err, CTL_ERRMSG_MAX, "input %d: '%.16s' was freed by an earlier entry",
					 n, it->valuestring);
				return -DJ_EHANDLE;
			}
			in[n] = st->first[k];
		} else if (!cJSON_IsString(it) || ctl_handle_parse(it->valuestring, &in[n]) != 0) {
			snprintf(err, CTL_ERRMSG_MAX, "input %d is not a handle", n);
			return -EINVAL;
		}
		n++;
	}
	*n_in = n;
	return 0;
}

/* {"handle": ..., "dtype": ..., "shape": [...], "device"} of one output;
 * NULL where memory ran out: a reply missing a field would be wrong, not
 * short. */
static cJSON *output_json(struct ctl_server *srv, void *bsess, uint64_t handle,
			  const struct dj_tensor_desc *desc)
{
	cJSON *o = cJSON_CreateObject();

	if (o != NULL && handle_to_json(o, handle, desc) != 0) {
		cJSON_Delete(o);
		o = NULL;
	}
	return ctl_reply_device(srv, bsess, o, handle);
}

/* results[k] = {"outputs": [...]} for the outputs of entry k. */
static int results_add(struct ctl_server *srv, void *bsess, cJSON *results, const uint64_t *out,
		       const struct dj_tensor_desc *desc, int n_out, char *err)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *outputs = res != NULL ? cJSON_AddArrayToObject(res, "outputs") : NULL;

	for (int i = 0; i < n_out && outputs != NULL; i++)
		if (!cJSON_AddItemToArray(outputs, output_json(srv, bsess, out[i], &desc[i])))
			outputs = NULL;
	if (outputs == NULL || !cJSON_AddItemToArray(results, res)) {
		cJSON_Delete(res);
		snprintf(err, CTL_ERRMSG_MAX, "server out of memory for the reply");
		return -ENOMEM;
	}
	return 0;
}

/* A "put" entry: a new tensor holding the payload's next bytes. */
static int exec_put(struct ctl_server *srv, struct ctl_job *job, const cJSON *put,
		    struct exec_state *st, uint64_t *handle, struct dj_tensor_desc *desc)
{
	struct ctl_tensor_io io = {0};
	uint64_t nbytes = 0;
	int rc = ctl_desc_from_json(put, desc, st->err);

	if (rc != 0)
		return rc;
	ctl_desc_nbytes(desc, &nbytes);
	if (nbytes > st->in_len - st->in_off) {
		snprintf(st->err, sizeof(st->err), "put of %" PRIu64 " bytes: the payload has %" PRIu64
			 " left", nbytes, st->in_len - st->in_off);
		return -EMSGSIZE;
	}
	/* The bytes move from the payload's hold to the tensor's charge. */
	ctl_payload_unhold(srv, job->bsess, nbytes);
	st->unheld += nbytes;
	rc = alloc_in(srv, job->bsess, put, desc, handle, st->err);
	if (rc != 0)
		return rc;
	st->made[st->n_made++] = *handle;
	st->live++;
	rc = srv->be->write_begin(srv->bctx, job->bsess, *handle, &io, st->err);
	if (rc != 0)
		return rc;
	if (io.nbytes != nbytes) {
		snprintf(st->err, sizeof(st->err), "backend storage size differs from the tensor's");
		rc = -EMSGSIZE;
	} else if (io.host != NULL) {
		memcpy(io.host, st->in + st->in_off, nbytes);
	} else if (nbytes > 0) {
		rc = srv->be->write_chunk(srv->bctx, job->bsess, &io, 0, st->in + st->in_off,
					  nbytes, st->err);
	}
	srv->be->write_end(srv->bctx, job->bsess, &io, rc);
	st->in_off += nbytes;
	return rc;
}

/* "fetch": handle's bytes appended to the reply's payload. */
static int exec_fetch(struct ctl_server *srv, struct ctl_job *job, uint64_t handle,
		      const struct dj_tensor_desc *desc, struct exec_state *st)
{
	struct ctl_tensor_io io = {0};
	uint64_t nbytes = 0;
	int rc;

	ctl_desc_nbytes(desc, &nbytes);
	if (st->out_len + nbytes > st->out_cap) {
		uint64_t cap = st->out_cap * 2 > st->out_len + nbytes ? st->out_cap * 2 :
				 st->out_len + nbytes;
		uint8_t *grown = realloc(st->out, cap);

		if (grown == NULL) {
			snprintf(st->err, sizeof(st->err), "server out of memory for fetched bytes");
			return -ENOMEM;
		}
		st->out = grown;
		st->out_cap = cap;
	}
	rc = srv->be->read_begin(srv->bctx, job->bsess, handle, &io, st->err);
	if (rc != 0)
		return rc;
	if (io.nbytes != nbytes) {
		snprintf(st->err, sizeof(st->err), "backend storage size differs from the tensor's");
		rc = -EIO;
	} else if (io.host != NULL) {
		memcpy(st->out + st->out_len, io.host, nbytes);
	} else if (nbytes > 0) {
		rc = srv->be->read_chunk(srv->bctx, job->bsess, &io, 0, st->out + st->out_len,
					 nbytes, st->err);
	}
	srv->be->read_end(srv->bctx, job->bsess, &io);
	if (rc == 0)
		st->out_len += nbytes;
	return rc;
}

/* "free": ["$k", ...] of entries up to index whose first output this batch
 * made: freed now. A tensor the batch did not make (an in-place op's output
 * is its input) is refused: the batch could not give it back on failure. */
static int exec_free(struct ctl_server *srv, struct ctl_job *job, const cJSON *entry, int index,
		     struct exec_state *st)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(entry, "free");
	const cJSON *it;

	if (list == NULL)
		return 0;
	if (!cJSON_IsArray(list)) {
		snprintf(st->err, sizeof(st->err), "field 'free' is not an array");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, list) {
		int k = cJSON_IsString(it) ? exec_ref(it->valuestring, index + 1) : -1;
		int m = k >= 0 ? st->made_at[k] : -1;

		if (k < 0 || st->first[k] == 0 || st->freed[k] || m < 0) {
			snprintf(st->err, sizeof(st->err), "free: '%.16s' names no live tensor this "
				 "batch made", cJSON_IsString(it) ? it->valuestring : "?");
			return -EINVAL;
		}
		int rc = srv->be->free(srv->bctx, job->bsess, st->first[k], st->err);

		if (rc != 0)
			return rc;
		st->freed[k] = 1;
		st->made[m] = 0;
		st->live--;
	}
	return 0;
}

int ctl_new_outputs(const uint64_t *in, int n_in, const uint64_t *out, int n_out)
{
	int n = 0;

	for (int i = 0; i < n_out; i++) {
		int aliased = 0;

		for (int k = 0; k < n_in; k++)
			aliased |= out[i] == in[k];
		n += !aliased;
	}
	return n;
}

/* Record outputs as made by this batch, except those that are one of the
 * op's inputs (an in-place op returns its destination: not new). */
static void exec_record(struct exec_state *st, const uint64_t *in, int n_in,
			const uint64_t *out, int n_out)
{
	for (int i = 0; i < n_out && st->n_made < st->cap; i++)
		if (ctl_new_outputs(in, n_in, &out[i], 1)) {
			st->made[st->n_made++] = out[i];
			st->live++;
		}
}

/* Handles for the batch's tensors alive now, where more than ever before:
 * a batch cannot take its session past max_handles, as PUTs cannot. */
static int exec_hold(struct ctl_server *srv, struct ctl_job *job, struct exec_state *st)
{
	int rc;

	if (st->live <= st->held)
		return 0;
	rc = ctl_handles_take(srv, job->sess, st->live - st->held, st->err);
	if (rc == 0)
		st->held = st->live;
	return rc;
}

/*
 * An entry's top-level "device" (where its output goes) reaches the backend
 * as attrs' "device": *attrs becomes a copy holding it (*owned, for the
 * caller to delete). Both, differing: -EINVAL.
 */
static int attrs_device(struct ctl_server *srv, const cJSON *entry, const cJSON **attrs,
			cJSON **owned, char *err)
{
	const cJSON *inner = *attrs != NULL ?
			     cJSON_GetObjectItemCaseSensitive(*attrs, "device") : NULL;
	const char *device;
	int rc = device_field(entry, &device, err);

	if (rc != 0 || device == NULL)
		return rc;
	if (srv->be->alloc_on == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "this server keeps tensors on one device: no "
			 "'device' field");
		return -ENOTSUP;
	}
	if (inner != NULL && (!cJSON_IsString(inner) || strcmp(inner->valuestring, device) != 0)) {
		snprintf(err, CTL_ERRMSG_MAX, "'device' and attrs' 'device' differ");
		return -EINVAL;
	}
	*owned = *attrs != NULL ? cJSON_Duplicate(*attrs, 1) : cJSON_CreateObject();
	if (*owned == NULL ||
	    (inner == NULL && cJSON_AddStringToObject(*owned, "device", device) == NULL)) {
		cJSON_Delete(*owned);
		*owned = NULL;
		snprintf(err, CTL_ERRMSG_MAX, "server out of memory");
		return -ENOMEM;
	}
	*attrs = *owned;
	return 0;
}

static int exec_op(struct ctl_server *srv, struct ctl_job *job, const cJSON *op, int index,
		   struct exec_state *st, uint64_t *out, struct dj_tensor_desc *out_desc,
		   int *n_out)
{
	uint64_t in[DJ_MAX_OP_ARGS];
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(op, "attrs");
	cJSON *empty = NULL;
	const char *name;
	int n_in, rc;

	if (ctl_json_str(op, "op", &name, st->err) != 0)
		return -EINVAL;
	rc = exec_inputs(op, index, st, in, &n_in, st->err);
	if (rc != 0)
		return rc;
	if (attrs != NULL && !cJSON_IsObject(attrs)) {
		snprintf(st->err, sizeof(st->err), "field 'attrs' is not an object");
		return -EINVAL;
	}
	rc = attrs_device(srv, op, &attrs, &empty, st->err);
	if (rc != 0)
		return rc;
	if (attrs == NULL && (attrs = empty = cJSON_CreateObject()) == NULL) {
		snprintf(st->err, sizeof(st->err), "server out of memory");
		return -ENOMEM;
	}
	rc = srv->be->execute(srv->bctx, job->bsess, name, in, n_in, attrs, out, out_desc,
			      n_out, st->err);
	cJSON_Delete(empty);
	if (rc != 0)
		return rc;
	*n_out = *n_out < DJ_MAX_OP_ARGS ? *n_out : DJ_MAX_OP_ARGS;
	exec_record(st, in, n_in, out, *n_out);
	return 0;
}

/*
 * One entry: an op or a put, then its fetch and its frees. Every cJSON
 * allocation here is checked: a failure gives a clean -ENOMEM ERROR
 * (exec_job frees the tensors made so far), never a NULL dereference.
 * Outputs are recorded in st->made before their JSON is built, so none is
 * lost when building it fails.
 */
static int exec_one(struct ctl_server *srv, struct ctl_job *job, const cJSON *entry, int index,
		    cJSON *results, struct exec_state *st)
{
	uint64_t out[DJ_MAX_OP_ARGS];
	struct dj_tensor_desc out_desc[DJ_MAX_OP_ARGS];
	const cJSON *put = cJSON_GetObjectItemCaseSensitive(entry, "put");
	const cJSON *fetch = cJSON_GetObjectItemCaseSensitive(entry, "fetch");
	int n_out = 0, n_made = st->n_made, rc;

	if (fetch != NULL && !cJSON_IsBool(fetch)) {
		snprintf(st->err, sizeof(st->err), "field 'fetch' is not a boolean");
		return -EINVAL;
	}
	if (put != NULL && cJSON_GetObjectItemCaseSensitive(entry, "op") != NULL) {
		snprintf(st->err, sizeof(st->err), "an entry is an 'op' or a 'put', not both");
		return -EINVAL;
	}
	if (put != NULL) {
		rc = exec_put(srv, job, put, st, &out[0], &out_desc[0]);
		n_out = 1;
	} else {
		rc = exec_op(srv, job, entry, index, st, out, out_desc, &n_out);
		st->n_run += rc == 0;
	}
	if (rc == 0)
		rc = exec_hold(srv, job, st);
	if (rc != 0)
		return rc;
	st->first[index] = n_out > 0 ? out[0] : 0;
	/* Where a "free" finds it in made[] (an in-place output is not there). */
	st->made_at[index] = n_out > 0 && st->n_made > n_made && st->made[n_made] == out[0] ?
			     n_made : -1;
	rc = results_add(srv, job->bsess, results, out, out_desc, n_out, st->err);
	if (rc == 0 && cJSON_IsTrue(fetch)) {
		if (n_out == 0) {
			snprintf(st->err, sizeof(st->err), "fetch: the entry has no output");
			return -EINVAL;
		}
		rc = exec_fetch(srv, job, out[0], &out_desc[0], st);
	}
	return rc != 0 ? rc : exec_free(srv, job, entry, index, st);
}

static cJSON *exec_fail(struct ctl_server *srv, struct ctl_job *job, struct exec_state *st,
			int rc, int n_ops, int i, cJSON *reply)
{
	char err[CTL_ERRMSG_MAX], ignored[CTL_ERRMSG_MAX];

	/* All or nothing: the client never learns these handles. */
	for (int k = 0; k < st->n_made; k++)
		if (st->made[k] != 0)
			srv->be->free(srv->bctx, job->bsess, st->made[k], ignored);
	ctl_handles_give(job->sess, st->held);
	if (n_ops > 1 && i >= 0)
		snprintf(err, sizeof(err), "batch op %d: %.200s", i, st->err);
	else
		snprintf(err, sizeof(err), "%s", st->err);
	cJSON_Delete(reply);
	return ctl_error_new(job->id, rc, err);
}

static cJSON *exec_job(struct ctl_server *srv, struct ctl_job *job)
{
	const cJSON *batch = cJSON_GetObjectItemCaseSensitive(job->req, "batch");
	int n_ops = cJSON_IsArray(batch) ? cJSON_GetArraySize(batch) : 1;
	struct exec_state st = {.cap = n_ops * DJ_MAX_OP_ARGS, .in = job->in_payload,
				.in_len = job->in_len};
	cJSON *reply = ctl_reply_new(job->id, "EXECUTE");
	cJSON *results = reply != NULL ? cJSON_AddArrayToObject(reply, "results") : NULL;
	const cJSON *entry;
	int rc = 0, i;

	st.made = calloc((size_t)st.cap, sizeof(*st.made));
	st.first = calloc((size_t)n_ops, sizeof(*st.first));
	st.made_at = calloc((size_t)n_ops, sizeof(*st.made_at));
	st.freed = calloc((size_t)n_ops, 1);
	if (st.made == NULL || st.first == NULL || st.made_at == NULL || st.freed == NULL ||
	    results == NULL) {
		cJSON_Delete(reply);
		reply = ctl_error_new(job->id, -ENOMEM, NULL);
		goto out;
	}
	if (srv->be->batch_begin != NULL)
		srv->be->batch_begin(srv->bctx, job->bsess);
	/* Entries by their links: cJSON_GetArrayItem() walks from the head. */
	entry = cJSON_IsArray(batch) ? batch->child : job->req;
	for (i = 0; i < n_ops && rc == 0; i++, entry = entry != NULL ? entry->next : NULL)
		rc = exec_one(srv, job, entry, i, results, &st);
	if (srv->be->batch_end != NULL) {
		char err[CTL_ERRMSG_MAX] = "";
		int end = srv->be->batch_end(srv->bctx, job->bsess, err);

		/* Late: the entry is unknown, the batch fails as a whole. */
		if (end != 0 && rc == 0) {
			snprintf(st.err, sizeof(st.err), "%s", err);
			rc = end;
			i = 0;
		}
	}
	if (rc == 0 && st.in_off != st.in_len) {
		snprintf(st.err, sizeof(st.err), "payload of %" PRIu64 " bytes, the puts took %"
			 PRIu64, st.in_len, st.in_off);
		rc = -EMSGSIZE;
		i = 0;
	}
	if (rc != 0) {
		reply = exec_fail(srv, job, &st, rc, n_ops, i - 1, reply);
		goto out;
	}
	/* The session keeps a handle for each tensor still alive. */
	ctl_handles_give(job->sess, st.held - st.live);
	/* The load a fleet member reports: operations run (puts are none). */
	srv->st.ops += (uint64_t)st.n_run;
	job->out_payload = st.out;
	job->out_len = st.out_len;
	st.out = NULL;
out:
	ctl_payload_unhold(srv, job->bsess, st.in_len - st.unheld);
	free(st.made);
	free(st.first);
	free(st.made_at);
	free(st.freed);
	free(st.out);
	return reply;
}

/* One op (no batch, no payload) that the backend says is quick on its
 * inputs: run on the connection thread. Anything unusual (a bad field, a
 * handle it does not know) goes to a worker, whose reply names it. */
static int exec_quick(struct request *r)
{
	const struct ctl_backend *be = r->srv->be;
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(r->msg, "op");
	struct exec_state none = {.cap = 0};
	uint64_t in[DJ_MAX_OP_ARGS];
	int n_in;

	if (be->execute_inline == NULL || !cJSON_IsString(op) ||
	    cJSON_GetObjectItemCaseSensitive(r->msg, "batch") != NULL ||
	    exec_inputs(r->msg, 0, &none, in, &n_in, none.err) != 0)
		return 0;
	return be->execute_inline(r->srv->bctx, r->c->sess->bsess, op->valuestring, in, n_in) == 1;
}

static int on_execute(struct request *r)
{
	struct ctl_conn *c = r->c;
	int rc;

	if (!handles_left(r))
		return fail(r, -DJ_ELIMIT);
	if (r->payload_len == 0 && exec_quick(r)) {
		ctl_run_inline(r->srv, c, r->id, r->msg, exec_job);
		return 0;
	}
	if (r->payload_len == 0) {
		rc = ctl_submit(r->srv, c, r->id, (cJSON *)r->msg, exec_job, NULL);
		return rc != 0 ? fail(r, rc) : 0;
	}
	/* The puts' bytes follow: held until the last one is in (the reader
	 * discards them where this fails). */
	if (r->payload_len > CTL_EXEC_PAYLOAD_MAX) {
		snprintf(r->err, sizeof(r->err), "EXECUTE payload of %" PRIu64 " bytes: at most %llu "
			 "(send larger tensors with PUT)", r->payload_len, CTL_EXEC_PAYLOAD_MAX);
		return fail(r, -DJ_ELIMIT);
	}
	/* Held in server memory until the batch runs: charged to the session
	 * from now, as a PUT's tensor is before its bytes come. */
	if (r->srv->be->hold != NULL) {
		rc = r->srv->be->hold(r->srv->bctx, c->sess->bsess, (int64_t)r->payload_len, r->err);
		if (rc != 0)
			return fail(r, rc);
	}
	c->exec_buf = malloc(r->payload_len);
	c->exec_msg = c->exec_buf != NULL ? ctl_take_request(c, r->msg) : NULL;
	if (c->exec_msg == NULL) {
		free(c->exec_buf);
		c->exec_buf = NULL;
		ctl_payload_unhold(r->srv, c->sess->bsess, r->payload_len);
		return fail(r, -ENOMEM);
	}
	c->exec_id = r->id;
	/* The request ends when its job does (or its payload fails to come:
	 * ctl_exec_payload_done, ctl_server.c). */
	c->req_deferred = 1;
	return 0;
}

void ctl_exec_payload_done(struct ctl_conn *c)
{
	cJSON *msg = c->exec_msg;
	uint8_t *buf = c->exec_buf;
	int rc;

	c->exec_msg = NULL;
	c->exec_buf = NULL;
	/* Still the EXECUTE's request: nothing was read since its JSON. */
	djc_log_req_set(c->req_trace);
	c->req_msg = msg; /* the job takes it over */
	rc = ctl_submit_payload(c->srv, c, c->exec_id, msg, exec_job, buf, c->h.payload_len);
	cJSON_Delete(c->req_msg);
	c->req_msg = NULL;
	if (rc != 0) {
		ctl_payload_unhold(c->srv, c->sess->bsess, c->h.payload_len);
		ctl_send_error(c, c->exec_id, rc, "server out of memory");
		ctl_request_done(c->srv, CTL_REQ_EXECUTE, c->req_trace, c->req_t0, rc, NULL);
	}
	djc_log_req_set(NULL);
}

/* ---- the rest -------------------------------------------------------------- */

static int on_stats(struct request *r)
{
	struct ctl_server_stats st;
	struct ctl_session *s = r->c->sess;
	cJSON *reply = ctl_reply_new(r->id, "STATS");
	cJSON *so = cJSON_AddObjectToObject(reply, "server");
	cJSON *ss = cJSON_AddObjectToObject(reply, "session");

	ctl_server_get_stats(r->srv, &st);
	cJSON_AddNumberToObject(so, "connections_open", (double)st.connections_open);
	cJSON_AddNumberToObject(so, "connections_accepted", (double)st.connections_accepted);
	cJSON_AddNumberToObject(so, "sessions_opened", (double)st.sessions_opened);
	cJSON_AddNumberToObject(so, "auth_failures", (double)st.auth_failures);
	cJSON_AddNumberToObject(so, "connections_unauth", (double)st.connections_unauth);
	cJSON_AddNumberToObject(so, "unauth_evicted", (double)st.unauth_evicted);
	cJSON_AddNumberToObject(so, "auth_delayed", (double)st.auth_delayed);
	cJSON_AddNumberToObject(so, "requests", (double)st.requests);
	cJSON_AddNumberToObject(so, "errors_sent", (double)st.errors_sent);
	cJSON_AddNumberToObject(so, "protocol_errors", (double)st.protocol_errors);
	cJSON_AddNumberToObject(so, "bytes_in", (double)st.bytes_in);
	cJSON_AddNumberToObject(so, "bytes_out", (double)st.bytes_out);
	cJSON_AddNumberToObject(so, "sessions_dpdk", (double)st.sessions_dpdk);
	cJSON_AddNumberToObject(so, "sessions_tcp", (double)st.sessions_tcp);
	cJSON_AddBoolToObject(so, "dpdk", r->srv->caps.dpdk);
	ctl_stats_json(r->srv, so);
	cJSON_AddNumberToObject(ss, "id", (double)s->id);
	cJSON_AddStringToObject(ss, "path", dj_path_name(s->path));
	cJSON_AddStringToObject(ss, "path_reason", s->path_reason);
	cJSON_AddNumberToObject(ss, "requests", (double)s->requests);
	cJSON_AddNumberToObject(ss, "bytes_in", (double)s->bytes_in);
	cJSON_AddNumberToObject(ss, "bytes_out", (double)s->bytes_out);
	cJSON_AddNumberToObject(ss, "handles", s->n_handles);
	cJSON_AddNumberToObject(ss, "dp_failures", (double)s->dp_failures);
	cJSON_AddNumberToObject(ss, "stripes", s->stripes);
	cJSON_AddNumberToObject(ss, "inflight", r->c->inflight);
	/* The backend is handed an object, never NULL. */
	cJSON *bo = r->srv->be->stats != NULL ? cJSON_AddObjectToObject(reply, "backend") : NULL;

	if (bo != NULL)
		r->srv->be->stats(r->srv->bctx, s->bsess, bo);
	ctl_fleet_stats(r->srv, reply);
	ctl_send(r->c, reply);
	return 0;
}

static int on_ping(struct request *r)
{
	ctl_send(r->c, ctl_reply_new(r->id, "PING"));
	return 0;
}

/* HELLO and AUTH come once, first; a second one is a client's mistake,
 * named as such, and the connection goes on serving. */
static int on_handshake_again(struct request *r)
{
	snprintf(r->err, sizeof(r->err), "this connection is past its handshake: HELLO (and "
		 "AUTH) come once, first on a connection");
	return fail(r, -EALREADY);
}

static int on_bye(struct request *r)
{
	/* No lingering: a client that says goodbye means it. The session ends
	 * once the connection's last job is done (see ctl_session_detach). */
	if (r->c->sess != NULL)
		r->c->sess->bye = 1;
	ctl_send(r->c, ctl_reply_new(r->id, "BYE"));
	ctl_close_after_flush(r->c);
	return 0;
}

struct handler {
	const char *type;
	int (*fn)(struct request *r); /* 0, or the code of the ERROR sent */
	int needs_session;
};

static const struct handler handlers[] = {
	{"HELLO", on_handshake_again, 0},
	{"AUTH", on_handshake_again, 0},
	{"SESSION", on_session, 0},
	{"PING", on_ping, 0},
	{"BYE", on_bye, 0},
	{"PATH", on_path, 1},
	{"STATS", on_stats, 1},
	{"ALLOC", on_alloc, 1},
	{"PUT", on_put, 1},
	{"PUT_DONE", on_put_done, 1},
	{"GET", on_get, 1},
	{"DESCRIBE", on_describe, 1},
	{"FREE", on_free, 1},
	{"EXECUTE", on_execute, 1},
};

/* The request's id: the client's "trace" (checked: it goes into log
 * lines), else "s<session>-<id>". 0, or -EINVAL with r->err filled. */
static int request_trace(struct request *r)
{
	const cJSON *trace = cJSON_GetObjectItemCaseSensitive(r->msg, "trace");
	struct ctl_conn *c = r->c;

	if (trace == NULL) {
		snprintf(c->req_trace, sizeof(c->req_trace), "s%" PRIu64 "-%" PRIu64,
			 c->sess != NULL ? c->sess->id : 0, r->id);
		return 0;
	}
	if (!cJSON_IsString(trace) || !djc_req_id_valid(trace->valuestring)) {
		c->req_trace[0] = '\0';
		snprintf(r->err, sizeof(r->err), "field 'trace' must be a string of 1 to %d "
			 "characters of A-Z a-z 0-9 . _ : -", DJC_REQ_ID_MAX - 1);
		return -EINVAL;
	}
	djc_strcpy(c->req_trace, trace->valuestring, sizeof(c->req_trace));
	return 0;
}

static int dispatch_one(struct request *r, const char *type)
{
	struct ctl_conn *c = r->c;
	const struct handler *h = NULL;

	if (c->state == CS_HELLO || c->state == CS_AUTH) {
		if (strcmp(type, c->state == CS_HELLO ? "HELLO" : "AUTH") != 0 || r->payload_len > 0)
			return auth_refuse(r, -DJ_EAUTH, c->state == CS_HELLO ?
					   "HELLO expected first" : "AUTH expected");
		return c->state == CS_HELLO ? on_hello(r) : on_auth(r);
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(type, handlers[i].type) == 0)
			h = &handlers[i];
	if (h == NULL && strncmp(type, "FLEET_", 6) == 0)
		return ctl_fleet_dispatch(c, type, r->msg, r->id, r->payload_len);
	if (h == NULL || (r->payload_len > 0 && strcmp(type, "PUT") != 0 &&
			  strcmp(type, "EXECUTE") != 0)) {
		if (h == NULL)
			snprintf(r->err, sizeof(r->err), "unknown message type '%.32s'", type);
		else
			snprintf(r->err, sizeof(r->err), "%.16s carries no payload", type);
		c->srv->st.protocol_errors++;
		return fail(r, h == NULL ? -EBADMSG : -EPROTO);
	}
	if (h->needs_session && c->sess == NULL) {
		snprintf(r->err, sizeof(r->err), "%s needs a SESSION first", h->type);
		return fail(r, -EPROTO);
	}
	return h->fn(r);
}

void ctl_dispatch(struct ctl_conn *c, cJSON *msg, uint64_t payload_len)
{
	struct request r = {.c = c, .srv = c->srv, .msg = msg, .payload_len = payload_len};
	const char *type;
	int rc;

	c->req_type = CTL_REQ_OTHER;
	c->req_deferred = 0;
	if (ctl_json_u64(msg, "id", &r.id, r.err) != 0 || ctl_json_str(msg, "type", &type, r.err) != 0) {
		c->srv->st.protocol_errors++;
		c->req_trace[0] = '\0';
		rc = fail(&r, -EINVAL);
	} else {
		c->req_type = ctl_req_type_parse(type);
		rc = request_trace(&r);
		/* Every line logged for this request names it. */
		djc_log_req_set(c->req_trace);
		rc = rc != 0 ? fail(&r, rc) : dispatch_one(&r, type);
		djc_log_req_set(NULL);
	}
	if (!c->req_deferred)
		ctl_request_done(c->srv, c->req_type, c->req_trace, c->req_t0, rc, NULL);
}
