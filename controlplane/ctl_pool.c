/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Client side of connecting: TCP connect with retries (exponential backoff,
 * jitter), TLS, HELLO / AUTH / SESSION, path negotiation, and the pool of
 * idle sessions.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_client.h"
#include "ctl_stripe.h"

#define TAG "ctl-client"

void dj_client_options_init(struct dj_client_options *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = DJ_DEFAULT_PORT;
	o->path = DJ_PATH_AUTO;
	o->probe_timeout_ms = 500;
	o->dp_timeout_ms = 10000;
	o->dp_max_failures = 2;
	o->connect_timeout_ms = 2000;
	o->request_timeout_ms = 30000;
	o->max_retries = 5;
	o->backoff_base_ms = 50;
	o->backoff_max_ms = 2000;
	o->pool_max_idle = 8;
	o->pool_idle_timeout_ms = 60000;
	o->pool_check_after_ms = 5000;
	o->wait_spin_us = 50;
	o->dp_stripe_min = DJ_STRIPE_MIN_DEFAULT;
	o->cork_flow_us = CL_CORK_FLOW_US;
}

uint32_t ctl_client_backoff_ms(const struct dj_client *cl, int attempt)
{
	uint64_t d = (uint64_t)cl->o.backoff_base_ms << (attempt < 16 ? attempt : 16);
	uint32_t r;

	if (d > cl->o.backoff_max_ms)
		d = cl->o.backoff_max_ms;
	/* "Equal jitter": half fixed, half random, so retries of many clients
	 * after a server restart do not arrive in lockstep. */
	if (ctl_auth_random(&r, sizeof(r)) != 0)
		r = (uint32_t)djc_time_ns();
	return (uint32_t)(d / 2 + (d / 2 + 1 > 0 ? r % (d / 2 + 1) : 0));
}

static int tcp_connect_once(struct dj_client *cl, int *fdp)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	char port[8];
	struct pollfd pfd;
	int fd, rc, err = 0, one = 1;
	socklen_t el = sizeof(err);

	snprintf(port, sizeof(port), "%u", cl->o.port);
	rc = getaddrinfo(cl->host, port, &hints, &ai);
	if (rc != 0)
		return -EHOSTUNREACH;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc != 0 && errno == EINPROGRESS) {
		pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
		rc = poll(&pfd, 1, (int)cl->o.connect_timeout_ms);
		if (rc == 0)
			err = ETIMEDOUT;
		else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
			err = errno;
	} else if (rc != 0) {
		err = errno;
	}
	if (err != 0) {
		close(fd);
		return -err;
	}
	/* Blocking from here on: the reader thread and writers block. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fdp = fd;
	return 0;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Connection refused / reset / timed out are worth a retry: a server that
 * restarts comes back. Anything else (bad address) is not. */
static int retryable(int rc)
{
	return rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -ETIMEDOUT ||
	       rc == -EHOSTUNREACH || rc == -ENETUNREACH || rc == -EPIPE || rc == -EAGAIN;
}

static int tcp_connect(struct dj_client *cl, int *fd)
{
	int rc = -ECONNREFUSED;

	for (int attempt = 0; attempt <= cl->o.max_retries; attempt++) {
		if (attempt > 0) {
			cl->st.retries++;
			sleep_ms(ctl_client_backoff_ms(cl, attempt - 1));
		}
		rc = tcp_connect_once(cl, fd);
		if (rc == 0 || !retryable(rc))
			break;
		DJC_LOG(DJ_LOG_INFO, TAG, "connect to %s:%u: %s (attempt %d)", cl->host,
		       cl->o.port, dj_strerror(rc), attempt + 1);
	}
	return rc;
}

static int handshake_auth(struct dj_conn *conn, const uint8_t nonce_c[CTL_NONCE_LEN],
			  cJSON *challenge, cJSON **hello)
{
	struct dj_client *cl = conn->cl;
	uint8_t nonce_s[CTL_NONCE_LEN], mac[CTL_MAC_LEN];
	char hex[2 * CTL_MAC_LEN + 1], why[128];
	/* A member proves the fleet's token, under labels of its own: a
	 * client's MAC is never taken for a member's, or the reverse. */
	const char *label_c = cl->member_id != NULL ? CTL_FLEET_LABEL_MEMBER : CTL_AUTH_LABEL_CLIENT;
	const char *label_s = cl->member_id != NULL ? CTL_FLEET_LABEL_SERVER : CTL_AUTH_LABEL_SERVER;
	const char *text;
	cJSON *auth;
	int rc;

	if (cl->token == NULL) {
		ctl_client_error_set(conn,
			 "server requires a token: set DJINN_TOKEN or DJINN_TOKEN_FILE");
		return -DJ_EAUTH;
	}
	if (ctl_json_str(challenge, "nonce", &text, why) != 0 ||
	    ctl_hex_decode(text, nonce_s, CTL_NONCE_LEN) != 0)
		return -EPROTO;
	rc = ctl_auth_mac(cl->token, label_c, nonce_s, nonce_c, mac);
	if (rc != 0)
		return rc;
	ctl_hex_encode(mac, CTL_MAC_LEN, hex);
	auth = ctl_client_msg("AUTH");
	cJSON_AddStringToObject(auth, "mac", hex);
	rc = ctl_client_sync_call(conn, auth, hello);
	if (rc != 0)
		return rc;
	/* The server proves it knows the token too. */
	rc = ctl_auth_mac(cl->token, label_s, nonce_c, nonce_s, mac);
	if (rc == 0 && (ctl_json_str(*hello, "proof", &text, why) != 0 ||
			ctl_hex_decode(text, nonce_s, CTL_MAC_LEN) != 0 ||
			!ctl_auth_equal(nonce_s, mac, CTL_MAC_LEN))) {
		ctl_client_error_set(conn, "server failed to prove the token");
		rc = -DJ_EAUTH;
	}
	return rc;
}

/* Request ids: a random prefix per process and a counter, "c1a2f0-000042";
 * the prefix keeps two clients' ids apart in a server's log. */
static pthread_once_t trace_once = PTHREAD_ONCE_INIT;
static char trace_prefix[8]; /* "c" and 5 hex digits and "-" */
static atomic_uint_fast64_t trace_count;

static void trace_init(void)
{
	unsigned int prefix;

	if (ctl_auth_random(&prefix, sizeof(prefix)) != 0)
		prefix = (unsigned int)getpid() ^ (unsigned int)djc_time_ns();
	snprintf(trace_prefix, sizeof(trace_prefix), "c%05x-", prefix & 0xfffff);
}

/* "c1a2f0-000042": the counter in at least 6 digits. Built by hand: one
 * per request, where snprintf cost more than the rest of the id. */
static void trace_new(char id[DJC_REQ_ID_MAX])
{
	char digits[24], *d = digits + sizeof(digits);
	uint64_t n = (uint64_t)atomic_fetch_add(&trace_count, 1) + 1;
	size_t len;

	pthread_once(&trace_once, trace_init);
	do
		*--d = (char)('0' + n % 10);
	while ((n /= 10) != 0 || digits + sizeof(digits) - d < 6);
	len = (size_t)(digits + sizeof(digits) - d);
	memcpy(id, trace_prefix, 7);
	memcpy(id + 7, d, len);
	id[7 + len] = '\0';
}

void ctl_client_trace_begin(char saved[DJC_REQ_ID_MAX])
{
	char id[DJC_REQ_ID_MAX];

	djc_strcpy(saved, djc_log_req_get(), DJC_REQ_ID_MAX);
	if (saved[0] != '\0')
		return; /* an outer call's id */
	trace_new(id);
	djc_log_req_set(id);
}

void ctl_client_trace_end(const char saved[DJC_REQ_ID_MAX])
{
	djc_log_req_set(saved);
}

size_t ctl_client_trace(char id[DJC_REQ_ID_MAX])
{
	const char *trace = djc_log_req_get();

	if (trace[0] == '\0') {
		trace_new(id);
	} else {
		djc_strcpy(id, trace, DJC_REQ_ID_MAX);
	}
	return strlen(id);
}

cJSON *ctl_client_msg(const char *type)
{
	cJSON *m = cJSON_CreateObject();
	const char *trace = djc_log_req_get();
	char fresh[DJC_REQ_ID_MAX];

	if (trace[0] == '\0') {
		trace_new(fresh);
		trace = fresh;
	}
	if (m != NULL && (cJSON_AddStringToObject(m, "type", type) == NULL ||
			  cJSON_AddStringToObject(m, "trace", trace) == NULL)) {
		cJSON_Delete(m);
		m = NULL;
	}
	return m;
}

/* What HELLO's reply says, for the connection's callers (struct dj_conn:
 * under lock, the next hello_gen). */
static void hello_publish(struct dj_conn *conn, const cJSON *reply)
{
	const cJSON *bin = cJSON_GetObjectItemCaseSensitive(reply, "binary");
	struct dp_caps caps;

	ctl_caps_from_json(cJSON_GetObjectItemCaseSensitive(reply, "caps"), &caps);
	pthread_mutex_lock(&conn->lock);
	conn->server_caps = caps;
	/* The server answers with the version it accepts (ours) or not at all. */
	conn->binary = !conn->cl->o.json_only && cJSON_IsNumber(bin) &&
		       bin->valuedouble == CTL_BIN_VERSION;
	conn->hello_gen++;
	pthread_mutex_unlock(&conn->lock);
}

static int handshake_hello(struct dj_conn *conn)
{
	uint8_t nonce_c[CTL_NONCE_LEN];
	char hex[2 * CTL_NONCE_LEN + 1];
	const cJSON *type;
	cJSON *m = ctl_client_msg("HELLO"), *reply = NULL, *hello = NULL;
	int rc = ctl_auth_random(nonce_c, sizeof(nonce_c));

	ctl_hex_encode(nonce_c, CTL_NONCE_LEN, hex);
	cJSON_AddNumberToObject(m, "version", CTL_PROTO_VERSION);
	cJSON_AddStringToObject(m, "nonce", hex);
	cJSON_AddItemToObject(m, "caps", ctl_caps_to_json(&conn->cl->caps));
	if (conn->cl->member_id != NULL)
		cJSON_AddStringToObject(m, "member", conn->cl->member_id);
	if (!conn->cl->o.json_only)
		cJSON_AddNumberToObject(m, "binary", CTL_BIN_VERSION);
	if (rc == 0)
		rc = ctl_client_sync_call(conn, m, &reply);
	else
		cJSON_Delete(m);
	if (rc != 0)
		return rc;
	type = cJSON_GetObjectItemCaseSensitive(reply, "type");
	if (cJSON_IsString(type) && strcmp(type->valuestring, "CHALLENGE") == 0) {
		rc = handshake_auth(conn, nonce_c, reply, &hello);
		cJSON_Delete(reply);
		reply = hello;
	} else if (conn->cl->member_id != NULL) {
		/* Tensors go only to a server that proves the fleet token. */
		ctl_client_error_set(conn,
			 "server did not authenticate as a fleet member");
		rc = -DJ_EAUTH;
	} else if (conn->cl->token != NULL) {
		/* We hold a token but the server asked for none: it cannot prove
		 * itself. Allowed (token is for the server's sake), but logged. */
		DJC_LOG(DJ_LOG_WARN, TAG, "server does not authenticate clients");
	}
	if (rc == 0)
		hello_publish(conn, reply);
	cJSON_Delete(reply);
	return rc;
}

/* Stripes to ask for: one per queue pair both sides have (the server's
 * from its HELLO), at most dp_stripes; 1 without a DPDK path. */
static unsigned int stripes_wanted(const struct dj_conn *conn)
{
	const struct dj_client *cl = conn->cl;
	unsigned int n = cl->caps.endpoint.n_queues;

	if (!cl->caps.dpdk || !conn->server_caps.dpdk || cl->o.path == DJ_PATH_TCP)
		return 1;
	n = n < conn->server_caps.endpoint.n_queues ? n : conn->server_caps.endpoint.n_queues;
	n = n < CTL_STRIPES_MAX ? n : CTL_STRIPES_MAX;
	if (cl->o.dp_stripes != 0 && cl->o.dp_stripes < n)
		n = cl->o.dp_stripes;
	return n > 1 ? n : 1;
}

/* SESSION's "dp_open": false where the server has a data path and took
 * ours, but opened no data-plane session for this one (docs/CONTROL.md,
 * "Sessions"): conn->dp_refused and its reason; absent (an old server, or
 * one that opened it): 0, as before. */
static void session_dp_refused(struct dj_conn *conn, const cJSON *reply)
{
	const cJSON *open = cJSON_GetObjectItemCaseSensitive(reply, "dp_open");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(reply, "dp_error");
	const cJSON *why = cJSON_GetObjectItemCaseSensitive(reply, "dp_reason");

	conn->dp_refused = 0;
	conn->dp_refused_why[0] = '\0';
	if (!cJSON_IsFalse(open))
		return;
	/* Any code the server names, else "no data path": never 0. */
	conn->dp_refused = cJSON_IsNumber(err) && err->valuedouble < 0 &&
			   err->valuedouble >= INT32_MIN ? (int)err->valuedouble : -DJ_ENODPDK;
	if (cJSON_IsString(why) && why->valuestring[0] != '\0')
		djc_escape(conn->dp_refused_why, sizeof(conn->dp_refused_why), why->valuestring,
			   strlen(why->valuestring));
	else
		snprintf(conn->dp_refused_why, sizeof(conn->dp_refused_why),
			 "the server opened no data-plane session for it: %s",
			 dj_strerror(conn->dp_refused));
}

static int handshake_session(struct dj_conn *conn, uint64_t resume_id, uint64_t resume_cookie)
{
	cJSON *m = ctl_client_msg("SESSION"), *reply = NULL;
	unsigned int want = stripes_wanted(conn), got = 1;
	uint64_t id, cookie;
	char why[CTL_ERRMSG_MAX];
	int rc;

	if (resume_id != 0) {
		cJSON *r = cJSON_AddObjectToObject(m, "resume");

		cJSON_AddNumberToObject(r, "session", (double)resume_id);
		ctl_json_add_handle(r, "cookie", resume_cookie);
	} else if (conn->cl->device != NULL) {
		cJSON_AddStringToObject(m, "device", conn->cl->device);
	}
	/* An old server ignores the field and answers none: one stripe. */
	if (want > 1)
		cJSON_AddNumberToObject(m, "stripes", want);
	rc = ctl_client_sync_call(conn, m, &reply);
	if (rc == -ENOENT && resume_id != 0) {
		DJC_LOG(DJ_LOG_NOTICE, TAG, "session %" PRIu64 " is gone (server restarted?): "
		       "opening a new one; its handles are lost", resume_id);
		return handshake_session(conn, 0, 0);
	}
	if (rc == 0 && (ctl_json_u64(reply, "session", &id, why) != 0 ||
			ctl_json_handle(reply, "cookie", &cookie, why) != 0 ||
			ctl_stripe_session_field(reply, &got, why) != 0))
		rc = -EPROTO;
	if (rc == 0) {
		const cJSON *dev = cJSON_GetObjectItemCaseSensitive(reply, "device");

		conn->session_id = id;
		conn->cookie = cookie;
		pthread_mutex_lock(&conn->lock);
		snprintf(conn->device, sizeof(conn->device), "%s",
			 cJSON_IsString(dev) ? dev->valuestring : "");
		pthread_mutex_unlock(&conn->lock);
		conn->stripes = got != 0 ? got : 1;
		session_dp_refused(conn, reply);
	}
	cJSON_Delete(reply);
	return rc;
}

static int probe(struct dj_conn *conn)
{
	const struct dj_datapath *dp = conn->cl->o.datapath;
	uint64_t rtt = 0;
	int rc = 0;

	/* Every stripe the server opened; where only the first few open here,
	 * transfers use those (the server takes any stripe it has). */
	if (!conn->dp_session)
		conn->dp_stripes = ctl_stripe_open(dp, conn->session_id, conn->cookie,
						   conn->stripes, &conn->server_caps.endpoint,
						   &rc);
	if (conn->dp_stripes < conn->stripes && conn->dp_stripes > 0) {
		DJC_LOG(DJ_LOG_WARN, TAG, "session %" PRIu64 ": %u of %u stripes opened (%s)",
			conn->session_id, conn->dp_stripes, conn->stripes, dj_strerror(rc));
		rc = 0;
	}
	conn->dp_session = conn->dp_stripes > 0;
	if (rc == 0)
		rc = dp->ops->probe(dp->ctx, &conn->server_caps.endpoint, conn->cookie,
				    conn->cl->o.probe_timeout_ms, &rtt);
	if (rc == 0)
		DJC_LOG(DJ_LOG_INFO, TAG, "data-plane probe: rtt %" PRIu64 " ns", rtt);
	return rc;
}

/* PATH: by the handshake (sync, before the reader runs) or on a running
 * connection; the path and its reason change together, under lock. A
 * caller on another thread never sends synchronously: during a reconnect
 * its request fails (the connection is broken) rather than cut into the
 * handshake's exchange. */
static int path_send(struct dj_conn *conn, enum dj_path path, const char *reason, int sync)
{
	cJSON *m = ctl_client_msg("PATH"), *reply = NULL;
	int rc;

	cJSON_AddStringToObject(m, "path", dj_path_name(path));
	cJSON_AddStringToObject(m, "reason", reason);
	rc = sync ? ctl_client_sync_call(conn, m, &reply) :
		    ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	cJSON_Delete(reply);
	if (rc == 0) {
		pthread_mutex_lock(&conn->lock);
		conn->path = path;
		snprintf(conn->path_reason, sizeof(conn->path_reason), "%s", reason);
		pthread_mutex_unlock(&conn->lock);
		DJC_LOG(DJ_LOG_NOTICE, TAG, "session %" PRIu64 ": data path %s (%s)",
		       (uint64_t)conn->session_id, dj_path_name(path), reason);
	}
	return rc;
}

int ctl_client_send_path(struct dj_conn *conn, enum dj_path path, const char *reason)
{
	return path_send(conn, path, reason, 0);
}

static int negotiate(struct dj_conn *conn)
{
	struct dj_client *cl = conn->cl;
	int local = cl->caps.dpdk, peer = conn->server_caps.dpdk;
	int probe_rc = -EHOSTUNREACH;
	enum dj_path path;
	char reason[160];
	int rc;

	/* A session the server opened no data-plane session for is never
	 * probed: nothing would answer but its timeout. */
	if (cl->o.path != DJ_PATH_TCP && local && peer)
		probe_rc = conn->dp_refused != 0 ? conn->dp_refused : probe(conn);
	rc = ctl_path_decide(cl->o.path, local, peer, probe_rc,
			     conn->dp_refused != 0 ? conn->dp_refused_why : NULL, &path, reason,
			     sizeof(reason));
	/* Worth another try later: both sides have DPDK, only the probe
	 * failed (a restarted server's memif link may not be up yet). Not
	 * where the server opened none: it never opens one later for this
	 * session (a new session, a new connection, may get one). */
	conn->probe_failed = rc == 0 && path == DJ_PATH_TCP && cl->o.path == DJ_PATH_AUTO &&
			     local && peer && conn->dp_refused == 0;
	conn->probe_retry_ms = CL_PROBE_RETRY_MS;
	conn->next_probe_ns = djc_time_ns() + conn->probe_retry_ms * 1000000ull;
	if (rc != 0) {
		ctl_client_error_set(conn, "dpdk forced but %s", reason);
		return rc;
	}
	return path_send(conn, path, reason, 1);
}

void ctl_client_path_retry(struct dj_conn *conn)
{
	uint64_t now = djc_time_ns();

	if (!conn->probe_failed || conn->path != DJ_PATH_TCP || now < conn->next_probe_ns ||
	    pthread_mutex_trylock(&conn->reopen_lock) != 0)
		return;
	if (conn->probe_failed && probe(conn) == 0 &&
	    ctl_client_send_path(conn, DJ_PATH_DPDK, "the data-plane probe succeeded again") == 0) {
		conn->probe_failed = 0;
	} else {
		conn->probe_retry_ms = conn->probe_retry_ms * 2 < CL_PROBE_RETRY_MAX_MS ?
				       conn->probe_retry_ms * 2 : CL_PROBE_RETRY_MAX_MS;
		conn->next_probe_ns = djc_time_ns() + conn->probe_retry_ms * 1000000ull;
	}
	pthread_mutex_unlock(&conn->reopen_lock);
}

/* The handshake reads synchronously: bound each read by the request timeout
 * so that a server that accepts but never answers cannot hang us. */
static void recv_timeout(int fd, uint32_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int conn_handshake(struct dj_conn *conn, uint64_t resume_id, uint64_t resume_cookie)
{
	struct dj_client *cl = conn->cl;
	char saved[DJC_REQ_ID_MAX];
	int fd = -1, rc = tcp_connect(cl, &fd);

	if (rc != 0)
		return rc;
	conn->io = (struct ctl_stream){.fd = fd};
	conn->roff = conn->rlen = 0;
	recv_timeout(fd, cl->o.request_timeout_ms > 0 ? cl->o.request_timeout_ms : 30000);
	if (cl->tls_ctx != NULL && (rc = ctl_tls_attach(cl->tls_ctx, fd, 0, &conn->io)) != 0) {
		close(fd);
		conn->io.fd = -1;
		return rc;
	}
	/* One request id over the handshake: HELLO to PATH. */
	ctl_client_trace_begin(saved);
	rc = handshake_hello(conn);
	if (rc == 0)
		rc = handshake_session(conn, resume_id, resume_cookie);
	if (rc == 0)
		rc = negotiate(conn);
	ctl_client_trace_end(saved);
	if (rc == -EAGAIN)
		rc = -ETIMEDOUT;
	if (rc == 0) {
		recv_timeout(fd, 0);
		/* Requests may flow again once the reader runs. */
		rc = ctl_client_conn_start(conn);
	}
	if (rc != 0) {
		const char *why = dj_conn_last_error(conn);

		DJC_LOG(DJ_LOG_NOTICE, TAG, "handshake with %s:%u failed: %s%s%s", cl->host,
		       cl->o.port, dj_strerror(rc), why[0] ? ": " : "", why);
		ctl_stream_close(&conn->io);
	}
	return rc;
}

/* Futures wait against CLOCK_MONOTONIC deadlines. */
static void cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

int ctl_client_conn_open(struct dj_client *cl, uint64_t resume_id, uint64_t resume_cookie,
		 struct dj_conn **connp)
{
	struct dj_conn *conn = calloc(1, sizeof(*conn));
	int rc;

	if (conn == NULL)
		return -ENOMEM;
	conn->cl = cl;
	conn->io.fd = -1;
	pthread_mutex_init(&conn->wlock, NULL);
	pthread_mutex_init(&conn->lock, NULL);
	pthread_mutex_init(&conn->reopen_lock, NULL);
	cond_init_monotonic(&conn->cond);
	rc = conn_handshake(conn, resume_id, resume_cookie);
	if (rc != 0) {
		ctl_client_conn_free(conn);
		return rc;
	}
	cl->st.connects++;
	*connp = conn;
	return 0;
}

/* The client's data path forgets the session (opened by probe()). */
static void dp_session_end(struct dj_conn *conn)
{
	const struct dj_datapath *dp = conn->cl->o.datapath;

	if (conn->dp_session)
		ctl_stripe_close(dp, conn->cookie, conn->dp_stripes);
	conn->dp_session = 0;
	conn->dp_stripes = 0;
}

int ctl_client_conn_reopen(struct dj_conn *conn, uint64_t gen)
{
	int rc = 0;

	pthread_mutex_lock(&conn->reopen_lock);
	if (conn->generation == gen) {
		/* Stopping the reader fails every pending request: no slot is
		 * left to a reply of the old connection. */
		ctl_client_set_broken(conn, 1);
		ctl_client_conn_stop(conn);
		dp_session_end(conn); /* the handshake opens it again */
		conn->cl->st.retries++;
		rc = conn_handshake(conn, conn->session_id, conn->cookie);
		if (rc == 0) {
			conn->cl->st.connects++;
			conn->generation++;
		}
	}
	pthread_mutex_unlock(&conn->reopen_lock);
	return rc;
}

void ctl_client_conn_free(struct dj_conn *conn)
{
	ctl_client_conn_stop(conn);
	dp_session_end(conn);
	pthread_mutex_destroy(&conn->wlock);
	pthread_mutex_destroy(&conn->lock);
	pthread_mutex_destroy(&conn->reopen_lock);
	pthread_cond_destroy(&conn->cond);
	free(conn->bbuf);
	free(conn);
}

/* ---- the client and its pool ------------------------------------------- */

static int client_caps(struct dj_client *cl)
{
	const struct dj_datapath *dp = cl->o.datapath;
	int rc;

	if (dp == NULL || dp->ops->local_caps == NULL)
		return 0;
	rc = dp->ops->local_caps(dp->ctx, &cl->caps);
	if (rc != 0) {
		DJC_LOG(DJ_LOG_WARN, TAG, "client data path unavailable (%s): TCP only",
		       dj_strerror(rc));
		memset(&cl->caps, 0, sizeof(cl->caps));
	}
	return 0;
}

/* A token file the caller named (the option, or DJINN_TOKEN_FILE where
 * DJINN_TOKEN is unset): one that cannot be read fails the client, where it
 * used to pass for "no token" and fail later as a wrong one. */
static int token_file_named(const struct dj_client_options *opts)
{
	const char *token = getenv("DJINN_TOKEN"), *file = getenv("DJINN_TOKEN_FILE");

	return opts->token_file != NULL ||
	       ((token == NULL || token[0] == '\0') && file != NULL && file[0] != '\0');
}

int dj_client_create(const struct dj_client_options *opts, struct dj_client **clientp)
{
	struct dj_client *cl;
	int rc = 0;

	if (opts == NULL || clientp == NULL || (opts->path == DJ_PATH_DPDK && opts->datapath == NULL))
		return opts != NULL && opts->path == DJ_PATH_DPDK ? -DJ_ENODPDK : -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -ENOMEM;
	cl->o = *opts;
	pthread_mutex_init(&cl->lock, NULL);
	cl->host = strdup(opts->host != NULL ? opts->host : "127.0.0.1");
	cl->device = opts->device != NULL ? strdup(opts->device) : NULL;
	cl->o.device = cl->device;
	if (opts->token != NULL)
		cl->token = strdup(opts->token);
	else if ((rc = dj_token_load(opts->token_file, &cl->token)) == -ENOENT &&
		 !token_file_named(opts))
		rc = 0; /* no token: fine where the server asks for none */
	if (rc == 0 && opts->tls)
		rc = ctl_tls_client_ctx(opts->tls_ca, &cl->tls_ctx);
	if (rc == 0 && (cl->host == NULL || (opts->token != NULL && cl->token == NULL) ||
			(opts->device != NULL && cl->device == NULL)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = client_caps(cl);
	if (rc != 0) {
		dj_client_destroy(cl);
		return rc;
	}
	*clientp = cl;
	return 0;
}

int ctl_client_create_member(const struct dj_client_options *opts, const char *member_id,
			     struct dj_client **client)
{
	int rc = member_id != NULL ? dj_client_create(opts, client) : -EINVAL;

	if (rc == 0 && ((*client)->member_id = strdup(member_id)) == NULL) {
		dj_client_destroy(*client);
		rc = -ENOMEM;
	}
	return rc;
}

void dj_client_destroy(struct dj_client *cl)
{
	if (cl == NULL)
		return;
	while (cl->idle != NULL) {
		struct dj_conn *c = cl->idle;

		cl->idle = c->next_idle;
		dj_conn_close(c);
	}
	if (cl->tls_ctx != NULL)
		ctl_tls_ctx_free(cl->tls_ctx);
	pthread_mutex_destroy(&cl->lock);
	free(cl->host);
	free(cl->device);
	free(cl->token);
	free(cl->member_id);
	free(cl);
}

static struct dj_conn *pool_take(struct dj_client *cl)
{
	struct dj_conn *c;

	pthread_mutex_lock(&cl->lock);
	c = cl->idle;
	if (c != NULL) {
		cl->idle = c->next_idle;
		cl->n_idle--;
	}
	pthread_mutex_unlock(&cl->lock);
	return c;
}

/* An idle connection fit for reuse: not broken, not too old, and answering a
 * PING where it has been idle for a while. */
static int pool_usable(struct dj_client *cl, struct dj_conn *c)
{
	uint64_t idle_ms = (djc_time_ns() - c->idle_since_ns) / 1000000ull;

	if (atomic_load(&c->broken) || idle_ms > cl->o.pool_idle_timeout_ms) {
		cl->st.idle_closed++;
		return 0;
	}
	if (idle_ms > cl->o.pool_check_after_ms) {
		cl->st.health_checks++;
		if (dj_ping(c, NULL) != 0) {
			cl->st.health_failures++;
			return 0;
		}
	}
	return 1;
}

int dj_connect(struct dj_client *cl, struct dj_conn **conn)
{
	struct dj_conn *c;

	while ((c = pool_take(cl)) != NULL) {
		if (pool_usable(cl, c)) {
			cl->st.reuses++;
			c->next_idle = NULL;
			*conn = c;
			return 0;
		}
		dj_conn_close(c);
	}
	return ctl_client_conn_open(cl, 0, 0, conn);
}

void dj_disconnect(struct dj_conn *conn)
{
	struct dj_client *cl;
	int keep;

	if (conn == NULL)
		return;
	cl = conn->cl;
	pthread_mutex_lock(&cl->lock);
	keep = !atomic_load(&conn->broken) && cl->n_idle < cl->o.pool_max_idle;
	if (keep) {
		conn->idle_since_ns = djc_time_ns();
		conn->next_idle = cl->idle;
		cl->idle = conn;
		cl->n_idle++;
	}
	pthread_mutex_unlock(&cl->lock);
	if (!keep)
		dj_conn_close(conn);
}

void dj_conn_close(struct dj_conn *conn)
{
	struct dj_future *f;

	if (conn == NULL)
		return;
	/* A short goodbye: the server frees the session at once. */
	if (!atomic_load(&conn->broken) && ctl_client_request(conn, ctl_client_msg("BYE"), NULL, 0, NULL, 0, NULL, NULL, &f) == 0) {
		dj_future_wait(f, 1000);
		dj_future_release(f);
	}
	ctl_client_conn_free(conn);
}

void dj_client_get_stats(struct dj_client *cl, struct dj_client_stats *s)
{
	s->connects = cl->st.connects;
	s->reuses = cl->st.reuses;
	s->health_checks = cl->st.health_checks;
	s->health_failures = cl->st.health_failures;
	s->idle_closed = cl->st.idle_closed;
	s->retries = cl->st.retries;
	s->dp_fallbacks = cl->st.dp_fallbacks;
	s->corked = cl->st.corked;
	s->request_writes = cl->st.writes;
	s->flushes_reader = cl->st.flushes_reader;
	s->flushes_caller = cl->st.flushes_caller;
	s->flushes_wait = cl->st.flushes_wait;
	s->reuse_rate = s->connects + s->reuses > 0 ?
			(double)s->reuses / (double)(s->connects + s->reuses) : 0.0;
}
