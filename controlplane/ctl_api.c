/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The public client calls (djinn.h): tensors, EXECUTE, STATS, PING, over the
 * TCP fallback or the DPDK data path, with idempotent retries and the
 * mid-session move from DPDK to TCP.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "ctl_client.h"
#include "ctl_stripe.h"

#define TAG "ctl-client"

/* What dj_conn_path, dj_conn_device and dj_conn_last_error hand out: this
 * thread's copies, taken under the connection's lock, so that a move to
 * TCP, a reconnect or another thread's error never rewrites a string its
 * caller is reading. */
static _Thread_local char path_reason_copy[sizeof(((struct dj_conn *)0)->path_reason)];
static _Thread_local char device_copy[CTL_DEVICE_MAX];
static _Thread_local char last_error_copy[CTL_ERRMSG_MAX];

/* src (n bytes of conn's state) into this thread's copy dst, under conn's
 * lock; the lock is not part of what const promises: the state is. */
static const char *copy_locked(const struct dj_conn *conn, char *dst, const char *src, size_t n)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&conn->lock;

	pthread_mutex_lock(lock);
	memcpy(dst, src, n);
	pthread_mutex_unlock(lock);
	return dst;
}

enum dj_path dj_conn_path(const struct dj_conn *conn, const char **reason)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&conn->lock;
	enum dj_path path;

	/* The path and its reason change together (under lock): read both. */
	pthread_mutex_lock(lock);
	path = conn->path;
	if (reason != NULL)
		memcpy(path_reason_copy, conn->path_reason, sizeof(path_reason_copy));
	pthread_mutex_unlock(lock);
	if (reason != NULL)
		*reason = path_reason_copy;
	return path;
}

uint64_t dj_conn_session_id(const struct dj_conn *conn)
{
	return conn->session_id;
}

const char *dj_conn_device(const struct dj_conn *conn)
{
	return copy_locked(conn, device_copy, conn->device, sizeof(device_copy));
}

const char *dj_conn_last_error(const struct dj_conn *conn)
{
	return copy_locked(conn, last_error_copy, conn->last_error, sizeof(last_error_copy));
}

static cJSON *desc_msg(const char *type, const struct dj_tensor_desc *desc)
{
	cJSON *m = ctl_client_msg(type);

	ctl_desc_to_json(m, desc);
	return m;
}

static cJSON *handle_msg(const char *type, uint64_t handle)
{
	cJSON *m = ctl_client_msg(type);

	ctl_json_add_handle(m, "handle", handle);
	return m;
}

/* Failures of the data path itself (worth redoing over TCP), as opposed to
 * answers about the request (bad handle, bad shape...). */
static int dp_failure(int rc)
{
	return rc != 0 && rc != -DJ_EHANDLE && rc != -EINVAL && rc != -EMSGSIZE &&
	       rc != -DJ_ESHAPE && rc != -DJ_EDTYPE && rc != -DJ_ELIMIT && rc != -ENOMEM &&
	       rc != -ECONNRESET;
}

/* After a local send that returned -EDEADLK: give the data path up to
 * timeout_ms to let go of the source. 0 once it did, -EDEADLK while frames
 * may still read it (or the data path cannot say). Where it holds on, the
 * caller's tensor is not redone over TCP and the caller hears -EDEADLK: it
 * must keep the tensor valid (a wedged data path, not a failed transfer). */
static int source_settle(const struct dj_datapath *dp, const struct ctl_stripe *st,
			 uint64_t xfer, uint32_t timeout_ms)
{
	struct timespec ms = {.tv_nsec = 1000000L};

	for (uint32_t waited = 0; dp->ops->send_pinned != NULL; waited++) {
		if (ctl_stripe_pinned(dp, st, xfer) == 0)
			return 0;
		if (waited >= timeout_ms)
			break;
		nanosleep(&ms, NULL);
	}
	return -EDEADLK;
}

/* How a transfer of nbytes at base goes over conn's stripes: in parts
 * where each gets at least dp_stripe_min bytes, else whole on the stripes
 * in turn, each direction (get: 1) counting its own (by transfer id, a PUT
 * and GET in a row would take every other id: all PUTs one stripe), so that concurrent small transfers spread over
 * the queues. The request msg says which. */
static void stripe_plan(struct dj_conn *conn, int get, void *base, uint64_t nbytes,
			struct ctl_stripe *st, cJSON *msg)
{
	unsigned int n, stripe;
	unsigned int open = atomic_load(&conn->dp_stripes);

	open = open > 0 ? open : 1;
	n = ctl_stripe_parts(nbytes, open, conn->cl->o.dp_stripe_min);
	stripe = n == 1 ? atomic_fetch_add(&conn->whole_xfers[get], 1) % open : 0;

	/* Cannot fail: n and stripe are in range, and n parts of at least
	 * dp_stripe_min (>= 64) bytes each leave none empty. */
	if (ctl_stripe_plan(st, conn->cookie, open, n, stripe, base, nbytes) != 0) {
		n = 1;
		stripe = 0;
		ctl_stripe_plan(st, conn->cookie, open, 1, 0, base, nbytes);
	}
	ctl_stripe_add_fields(msg, n, stripe);
}

/* " in N parts" for a striped transfer's log line, "" for a whole one
 * (whose line stays as it was: docs/OBSERVABILITY.md). */
static const char *parts_note(const struct ctl_stripe *st, char *buf, size_t len)
{
	if (st->n < 2)
		return "";
	snprintf(buf, len, " in %u parts", st->n);
	return buf;
}

static void dp_failed(struct dj_conn *conn, const char *what, int rc)
{
	struct dj_client *cl = conn->cl;
	char reason[160];

	int failures = atomic_fetch_add(&conn->dp_failures, 1) + 1;

	DJC_LOG(DJ_LOG_WARN, TAG, "session %" PRIu64 ": data-plane %s failed (%s), redone over TCP",
	       (uint64_t)conn->session_id, what, dj_strerror(rc));
	if (failures < cl->o.dp_max_failures || conn->path != DJ_PATH_DPDK)
		return;
	/* One move at a time, and only from DPDK: of transfers on several
	 * threads failing at once, one moves the session (the others see
	 * TCP); where a reconnect or a re-probe holds the lock, the next
	 * failure tries again. */
	if (pthread_mutex_trylock(&conn->reopen_lock) != 0)
		return;
	snprintf(reason, sizeof(reason), "moved from dpdk after %d failed transfers (last: %s)",
		 failures, dj_strerror(rc));
	if (conn->path == DJ_PATH_DPDK && ctl_client_send_path(conn, DJ_PATH_TCP, reason) == 0)
		cl->st.dp_fallbacks++;
	pthread_mutex_unlock(&conn->reopen_lock);
}

/* After a data-path attempt: 0 when it completed (callback run), the error
 * when it is the request's own answer, 1 when TCP must redo it. */
static int dp_settle(struct dj_conn *conn, const char *what, int rc, struct dj_future *f,
		     dj_future_cb cb, void *arg)
{
	if (rc == 0) {
		conn->dp_failures = 0; /* "in a row" */
		if (cb != NULL)
			cb(f, arg);
		return 0;
	}
	if (!dp_failure(rc))
		return rc;
	dp_failed(conn, what, rc);
	return 1;
}

static int tensor_nbytes(const struct dj_tensor *t, uint64_t *n)
{
	if (t == NULL || (t->mem != DJ_MEM_HOST && t->mem != DJ_MEM_GPU))
		return -EINVAL;
	if (ctl_desc_nbytes(&t->desc, n) != 0)
		return -DJ_ESHAPE;
	return t->data == NULL && *n > 0 ? -EINVAL : 0;
}

/* ---- PUT -------------------------------------------------------------------- */

static int put_over_dp(struct dj_conn *conn, const struct dj_tensor *t, uint64_t nbytes,
		       uint64_t into, struct dj_future **future, int *pinned)
{
	const struct dj_datapath *dp = conn->cl->o.datapath;
	uint64_t xfer = atomic_fetch_add(&conn->next_xfer, 1) + 1;
	cJSON *m = desc_msg("PUT", &t->desc), *done, *reply = NULL;
	struct dp_endpoint peer;
	struct ctl_stripe st;
	char note[24];
	int rc, send_rc;

	cJSON_AddStringToObject(m, "via", "dpdk");
	cJSON_AddNumberToObject(m, "xfer", (double)xfer);
	stripe_plan(conn, 0, t->data, nbytes, &st, m);
	if (into != 0)
		ctl_json_add_handle(m, "handle", into);
	rc = ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	cJSON_Delete(reply);
	if (rc != 0)
		return rc;
	DJC_LOG(DJ_LOG_DEBUG, TAG, "session %" PRIu64 ": PUT over dpdk, xfer %" PRIu64 ", %" PRIu64
		" B%s", conn->session_id, xfer, nbytes, parts_note(&st, note, sizeof(note)));
	ctl_client_hello(conn, NULL, &peer, NULL, NULL);
	send_rc = ctl_stripe_send(dp, &peer, &st, xfer, t->mem, conn->cl->o.dp_timeout_ms);
	/* Let go of in time, the tensor is the caller's again: a plain data-path
	 * failure, redone over TCP. */
	if (send_rc == -EDEADLK)
		*pinned = source_settle(dp, &st, xfer, conn->cl->o.dp_timeout_ms) != 0;
	done = ctl_client_msg("PUT_DONE");
	cJSON_AddNumberToObject(done, "xfer", (double)xfer);
	if (send_rc != 0)
		cJSON_AddTrueToObject(done, "abort");
	rc = ctl_client_request(conn, done, NULL, 0, NULL, 0, NULL, NULL, future);
	if (rc != 0)
		return rc;
	rc = dj_future_wait(*future, -1);
	if (rc != 0 || send_rc != 0) {
		dj_future_release(*future);
		*future = NULL;
	}
	return send_rc != 0 ? send_rc : rc;
}

/* *used (may be NULL) receives the path that carries the bytes. */
static int put_async_traced(struct dj_conn *conn, const struct dj_tensor *t, uint64_t into,
			    dj_future_cb cb, void *arg, struct dj_future **future,
			    enum dj_path *used)
{
	enum dj_path ignored;
	uint64_t nbytes;
	cJSON *m;
	int rc = tensor_nbytes(t, &nbytes);

	if (rc != 0 || future == NULL)
		return rc != 0 ? rc : -EINVAL;
	*future = NULL;
	ctl_client_path_retry(conn);
	used = used != NULL ? used : &ignored;
	*used = DJ_PATH_DPDK;
	if (conn->path == DJ_PATH_DPDK) {
		int pinned = 0;

		rc = put_over_dp(conn, t, nbytes, into, future, &pinned);
		rc = pinned ? -EDEADLK : dp_settle(conn, "PUT", rc, *future, cb, arg);
		if (rc != 1)
			return rc;
	}
	*used = DJ_PATH_TCP;
	if (t->mem != DJ_MEM_HOST)
		return -ENOTSUP; /* the TCP fallback reads the bytes with the CPU */
	m = desc_msg("PUT", &t->desc);
	if (into != 0)
		ctl_json_add_handle(m, "handle", into);
	return ctl_client_request(conn, m, t->data, nbytes, NULL, 0, cb, arg, future);
}

/* One request id over the data-plane attempt and its TCP redo. */
static int put_async(struct dj_conn *conn, const struct dj_tensor *t, uint64_t into,
		     dj_future_cb cb, void *arg, struct dj_future **future, enum dj_path *used)
{
	int rc;

	CTL_CLIENT_TRACED(rc, put_async_traced(conn, t, into, cb, arg, future, used));
	return rc;
}

int dj_put_async(struct dj_conn *conn, const struct dj_tensor *t,
		 dj_future_cb cb, void *arg, struct dj_future **future)
{
	return put_async(conn, t, 0, cb, arg, future, NULL);
}

static int wait_handle(struct dj_future *f, uint64_t *handle, struct dj_tensor_desc *desc)
{
	int rc = dj_future_wait(f, -1);

	if (rc == -ETIMEDOUT)
		dj_future_abandon(f);
	if (rc == 0)
		rc = dj_future_handle(f, handle, desc);
	dj_future_release(f);
	return rc;
}

int ctl_client_put(struct dj_conn *conn, const struct dj_tensor *t, enum dj_path *used,
		   uint64_t *handle)
{
	struct dj_future *f;
	int rc = put_async(conn, t, 0, NULL, NULL, &f, used);

	return rc != 0 ? rc : wait_handle(f, handle, NULL);
}

int dj_put(struct dj_conn *conn, const struct dj_tensor *t, uint64_t *handle)
{
	return ctl_client_put(conn, t, NULL, handle);
}

int dj_put_into(struct dj_conn *conn, uint64_t handle, const struct dj_tensor *t)
{
	struct dj_future *f;
	int rc = handle != 0 ? put_async(conn, t, handle, NULL, NULL, &f, NULL) : -EINVAL;

	return rc != 0 ? rc : wait_handle(f, NULL, NULL);
}

/* ---- requests that may be retried ----------------------------------------- */

static int connection_lost(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ENOTCONN || rc == -ESHUTDOWN ||
	       rc == -ETIMEDOUT;
}

/* One attempt of an idempotent request. */
typedef int (*attempt_fn)(struct dj_conn *conn, void *arg);

/*
 * An idempotent request: where the connection is lost, reconnect (resuming
 * the session) with backoff and try again. trace: the request's id (NULL:
 * this thread's, or a fresh one), which every attempt and log line names.
 */
static int retry_idempotent(struct dj_conn *conn, const char *trace, attempt_fn once,
			    void *arg)
{
	int rc = -ECONNRESET;
	uint64_t gen = conn->generation;
	char saved[DJC_REQ_ID_MAX], id[DJC_REQ_ID_MAX];

	/* Retries are the same request: log lines name its id. */
	djc_strcpy(saved, djc_log_req_get(), sizeof(saved));
	if (trace == NULL) {
		ctl_client_trace(id);
		trace = id;
	}
	djc_log_req_set(trace);

	for (int attempt = 0; attempt <= conn->cl->o.max_retries; attempt++) {
		if (attempt > 0) {
			struct timespec ts;
			uint32_t ms = ctl_client_backoff_ms(conn->cl, attempt - 1);

			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (long)(ms % 1000) * 1000000L;
			nanosleep(&ts, NULL);
			if (ctl_client_conn_reopen(conn, gen) != 0)
				continue;
		}
		gen = conn->generation;
		rc = once(conn, arg);
		if (!connection_lost(rc))
			break;
	}
	djc_log_req_set(saved);
	return rc;
}

struct json_call {
	const cJSON *msg;
	void *dst;
	uint64_t dst_len;
	cJSON **reply;
};

static int json_attempt(struct dj_conn *conn, void *arg)
{
	struct json_call *c = arg;

	return ctl_client_call(conn, cJSON_Duplicate(c->msg, 1), NULL, 0, c->dst, c->dst_len,
			       c->reply);
}

/* An idempotent JSON request (retried as retry_idempotent says). Takes msg. */
static int call_idempotent(struct dj_conn *conn, cJSON *msg, void *dst, uint64_t dst_len,
			   cJSON **reply)
{
	struct json_call c = {.msg = msg, .dst = dst, .dst_len = dst_len, .reply = reply};
	const cJSON *trace = cJSON_GetObjectItem(msg, "trace");
	int rc = retry_idempotent(conn, cJSON_IsString(trace) ? trace->valuestring : NULL,
				  json_attempt, &c);

	cJSON_Delete(msg);
	return rc;
}

/* Wait for a binary request's future (sent: rc 0) and release it. */
static int bin_wait(int rc, struct dj_future **fp)
{
	struct dj_future *f = *fp;

	if (rc != 0)
		return rc;
	rc = dj_future_wait(f, -1);
	if (rc == -ETIMEDOUT)
		dj_future_abandon(f);
	dj_future_release(f);
	return rc;
}

/* A PING, binary where the connection speaks it (as of this attempt: a
 * reconnect may reach a server that does not). */
static int ping_attempt(struct dj_conn *conn, void *arg)
{
	uint8_t frame[CTL_CLIENT_BIN_ROOM];
	struct dj_future *f = NULL;
	cJSON *reply = NULL;
	int binary, rc;
	uint64_t gen = ctl_client_hello(conn, &binary, NULL, NULL, NULL);

	(void)arg;
	if (binary) {
		rc = ctl_client_bin_request(conn, gen, CTL_BIN_PING, frame, 0, NULL, NULL, &f);
		return bin_wait(rc, &f);
	}
	rc = ctl_client_call(conn, ctl_client_msg("PING"), NULL, 0, NULL, 0, &reply);
	cJSON_Delete(reply);
	return rc;
}

int dj_ping(struct dj_conn *conn, uint64_t *rtt_ns)
{
	uint64_t t0 = djc_time_ns();
	int rc = retry_idempotent(conn, NULL, ping_attempt, NULL);

	if (rc == 0 && rtt_ns != NULL)
		*rtt_ns = djc_time_ns() - t0;
	return rc;
}

int dj_stats(struct dj_conn *conn, char **json)
{
	cJSON *reply = NULL;
	int rc = call_idempotent(conn, ctl_client_msg("STATS"), NULL, 0, &reply);

	if (rc == 0) {
		cJSON_DeleteItemFromObject(reply, "id");
		*json = cJSON_Print(reply);
		rc = *json != NULL ? 0 : -ENOMEM;
	}
	cJSON_Delete(reply);
	return rc;
}

int dj_describe(struct dj_conn *conn, uint64_t handle, struct dj_tensor_desc *desc)
{
	cJSON *reply = NULL;
	char why[128];
	int rc = call_idempotent(conn, handle_msg("DESCRIBE", handle), NULL, 0, &reply);

	if (rc == 0 && ctl_desc_from_json(reply, desc, why) != 0)
		rc = -EBADMSG;
	cJSON_Delete(reply);
	return rc;
}

int dj_alloc(struct dj_conn *conn, const struct dj_tensor_desc *desc, uint64_t *handle)
{
	cJSON *reply = NULL;
	char why[128];
	int rc = ctl_client_call(conn, desc_msg("ALLOC", desc), NULL, 0, NULL, 0, &reply);

	if (rc == 0 && ctl_json_handle(reply, "handle", handle, why) != 0)
		rc = -EBADMSG;
	cJSON_Delete(reply);
	return rc;
}

/* FREE as a binary frame, built from what HELLO said at gen. */
static int free_bin(struct dj_conn *conn, uint64_t gen, uint64_t handle, dj_future_cb cb,
		    void *arg, struct dj_future **future)
{
	uint8_t frame[CTL_CLIENT_BIN_ROOM + 8];

	for (int i = 0; i < 8; i++)
		frame[CTL_CLIENT_BIN_ROOM + i] = (uint8_t)(handle >> (8 * i));
	return ctl_client_bin_request(conn, gen, CTL_BIN_FREE, frame, 8, cb, arg, future);
}

int dj_free_async(struct dj_conn *conn, uint64_t handle,
		  dj_future_cb cb, void *arg, struct dj_future **future)
{
	int binary;
	uint64_t gen = ctl_client_hello(conn, &binary, NULL, NULL, NULL);

	if (!binary)
		return ctl_client_request(conn, handle_msg("FREE", handle), NULL, 0, NULL, 0, cb,
					  arg, future);
	return free_bin(conn, gen, handle, cb, arg, future);
}

int dj_free(struct dj_conn *conn, uint64_t handle)
{
	struct dj_future *f = NULL;
	cJSON *reply = NULL;
	int binary, rc;
	uint64_t gen = ctl_client_hello(conn, &binary, NULL, NULL, NULL);

	if (binary) {
		rc = free_bin(conn, gen, handle, NULL, NULL, &f);
		return bin_wait(rc, &f);
	}
	rc = ctl_client_call(conn, handle_msg("FREE", handle), NULL, 0, NULL, 0, &reply);
	cJSON_Delete(reply);
	return rc;
}

/* ---- GET -------------------------------------------------------------------- */

static int get_over_dp(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
		       uint64_t nbytes, struct dj_future **future, int *pinned)
{
	const struct dj_datapath *dp = conn->cl->o.datapath;
	uint64_t xfer = atomic_fetch_add(&conn->next_xfer, 1) + 1;
	cJSON *m = handle_msg("GET", handle);
	struct ctl_stripe st;
	char note[24];
	int rc;

	cJSON_AddStringToObject(m, "via", "dpdk");
	cJSON_AddNumberToObject(m, "xfer", (double)xfer);
	stripe_plan(conn, 1, t->data, nbytes, &st, m);
	rc = ctl_stripe_expect(dp, &st, xfer, t->mem);
	if (rc != 0) {
		cJSON_Delete(m);
		return rc;
	}
	DJC_LOG(DJ_LOG_DEBUG, TAG, "session %" PRIu64 ": GET over dpdk, xfer %" PRIu64 ", %" PRIu64
		" B%s", conn->session_id, xfer, nbytes, parts_note(&st, note, sizeof(note)));
	rc = ctl_client_request(conn, m, NULL, 0, NULL, 0, NULL, NULL, future);
	if (rc == 0)
		rc = dj_future_wait(*future, -1);
	/* The server sent every byte and had them acknowledged: they are
	 * placed, or about to be. */
	if (rc == 0)
		rc = ctl_stripe_wait(dp, &st, xfer, conn->cl->o.dp_timeout_ms);
	/* A destination the data path may still write is not redone over TCP
	 * (-EDEADLK): the caller must keep it valid. */
	if (rc != 0)
		*pinned = ctl_stripe_cancel(dp, &st, xfer) == -EDEADLK;
	if (rc != 0) {
		if (*future != NULL)
			dj_future_release(*future);
		*future = NULL;
	}
	return rc;
}

static int get_async_traced(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
			    dj_future_cb cb, void *arg, struct dj_future **future)
{
	uint64_t nbytes;
	int rc = tensor_nbytes(t, &nbytes);

	*future = NULL;
	if (rc != 0)
		return rc;
	ctl_client_path_retry(conn);
	if (conn->path == DJ_PATH_DPDK) {
		int pinned = 0;

		rc = get_over_dp(conn, handle, t, nbytes, future, &pinned);
		rc = pinned ? -EDEADLK : dp_settle(conn, "GET", rc, *future, cb, arg);
		if (rc != 1)
			return rc;
	}
	if (t->mem != DJ_MEM_HOST)
		return -ENOTSUP;
	return ctl_client_request(conn, handle_msg("GET", handle), NULL, 0, t->data, nbytes, cb, arg,
			  future);
}

/* One request id over the data-plane attempt and its TCP redo. */
static int get_async(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
		     dj_future_cb cb, void *arg, struct dj_future **future)
{
	int rc;

	CTL_CLIENT_TRACED(rc, get_async_traced(conn, handle, t, cb, arg, future));
	return rc;
}

int dj_get_async(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
		 dj_future_cb cb, void *arg, struct dj_future **future)
{
	return get_async(conn, handle, t, cb, arg, future);
}

int dj_get(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t)
{
	struct dj_future *f;
	uint64_t nbytes;
	cJSON *reply = NULL;
	char why[128];
	int rc;

	ctl_client_path_retry(conn);
	if (conn->path == DJ_PATH_DPDK) {
		rc = get_async(conn, handle, t, NULL, NULL, &f);
		return rc != 0 ? rc : wait_handle(f, NULL, &t->desc);
	}
	rc = tensor_nbytes(t, &nbytes);
	if (rc != 0)
		return rc;
	/* Over TCP a GET is idempotent: retried across a lost connection. */
	rc = call_idempotent(conn, handle_msg("GET", handle), t->data, nbytes, &reply);
	if (rc == 0 && ctl_desc_from_json(reply, &t->desc, why) != 0)
		rc = -EBADMSG;
	cJSON_Delete(reply);
	return rc;
}

/* ---- EXECUTE ------------------------------------------------------------ */

static int add_op(cJSON *obj, const char *op, cJSON *inputs, const char *attrs_json)
{
	cJSON *attrs = NULL;

	if (op == NULL) {
		cJSON_Delete(inputs);
		return -EINVAL;
	}
	if (attrs_json != NULL) {
		attrs = cJSON_Parse(attrs_json);
		if (!cJSON_IsObject(attrs)) {
			cJSON_Delete(attrs);
			cJSON_Delete(inputs);
			return -EINVAL;
		}
	}
	cJSON_AddStringToObject(obj, "op", op);
	cJSON_AddItemToObject(obj, "inputs", inputs);
	if (attrs != NULL)
		cJSON_AddItemToObject(obj, "attrs", attrs);
	return 0;
}

/* dj_execute_async as a binary frame: the op by its id where the server
 * announced it, attrs as their JSON text, checked here as the JSON form
 * checks them (parsed), so both refuse the same calls. */
static int execute_bin(struct dj_conn *conn, uint64_t gen, uint16_t op_id, const char *op,
		       const uint64_t *inputs, int n_in, const char *attrs_json, dj_future_cb cb,
		       void *arg, struct dj_future **future)
{
	struct ctl_bin_exec e = {.op_id = op_id, .n_in = n_in};
	uint8_t stack[CTL_CLIENT_BIN_ROOM + CTL_BIN_EXEC_FIXED + 8 * DJ_MAX_OP_ARGS +
		      CTL_BIN_OP_MAX + 256];
	uint8_t *frame = stack;
	size_t len;
	int rc;

	if (e.op_id == CTL_BIN_OP_NAMED) {
		e.op = op;
		e.op_len = (uint8_t)(strlen(op) <= CTL_BIN_OP_MAX ? strlen(op) : 0);
		if (e.op_len == 0)
			return -EINVAL;
	}
	if (attrs_json != NULL) {
		cJSON *attrs = cJSON_Parse(attrs_json);
		int ok = cJSON_IsObject(attrs);

		cJSON_Delete(attrs);
		if (!ok)
			return -EINVAL;
		e.attrs = attrs_json;
		e.attrs_len = (uint32_t)strlen(attrs_json);
	}
	if (n_in > 0)
		memcpy(e.in, inputs, sizeof(*inputs) * (size_t)n_in);
	len = ctl_bin_exec_size(&e);
	if (CTL_CLIENT_BIN_ROOM + len > CTL_BIN_BODY_MAX)
		return -DJ_ELIMIT;
	if (CTL_CLIENT_BIN_ROOM + len > sizeof(stack) &&
	    (frame = malloc(CTL_CLIENT_BIN_ROOM + len)) == NULL)
		return -ENOMEM;
	ctl_bin_exec_encode(frame + CTL_CLIENT_BIN_ROOM, &e);
	rc = ctl_client_bin_request(conn, gen, CTL_BIN_EXECUTE, frame, len, cb, arg, future);
	if (frame != stack)
		free(frame);
	return rc;
}

int dj_execute_async(struct dj_conn *conn, const char *op, const uint64_t *inputs,
		     int n_in, const char *attrs_json,
		     dj_future_cb cb, void *arg, struct dj_future **future)
{
	cJSON *m, *in;
	char text[20];
	uint16_t op_id;
	uint64_t gen;
	int binary, rc;

	if (n_in < 0 || n_in > DJ_MAX_OP_ARGS || (n_in > 0 && inputs == NULL) || op == NULL)
		return -EINVAL;
	gen = ctl_client_hello(conn, &binary, NULL, op, &op_id);
	if (binary)
		return execute_bin(conn, gen, op_id, op, inputs, n_in, attrs_json, cb, arg,
				   future);
	m = ctl_client_msg("EXECUTE");
	in = cJSON_CreateArray();
	for (int i = 0; i < n_in; i++) {
		ctl_handle_format(inputs[i], text);
		cJSON_AddItemToArray(in, cJSON_CreateString(text));
	}
	rc = add_op(m, op, in, attrs_json);
	if (rc != 0) {
		cJSON_Delete(m);
		return rc;
	}
	return ctl_client_request(conn, m, NULL, 0, NULL, 0, cb, arg, future);
}

int dj_execute(struct dj_conn *conn, const char *op, const uint64_t *inputs, int n_in,
	       const char *attrs_json, uint64_t *out, struct dj_tensor_desc *out_desc)
{
	struct dj_future *f;
	int rc = dj_execute_async(conn, op, inputs, n_in, attrs_json, NULL, NULL, &f);

	return rc != 0 ? rc : wait_handle(f, out, out_desc);
}

/* One batch entry's JSON: an op or a put, with its fetch and its frees. */
static int batch_entry(const struct dj_batch_op *e, int index, cJSON *obj, uint64_t *put_bytes)
{
	uint64_t nbytes = 0;
	cJSON *in;

	if ((e->put != NULL) == (e->op != NULL) || e->n_free < 0 ||
	    (e->n_free > 0 && e->free == NULL))
		return -EINVAL;
	for (int k = 0; k < e->n_free; k++)
		if (e->free[k] < 0 || e->free[k] > index)
			return -EINVAL;
	if (e->put != NULL) {
		int rc = tensor_nbytes(e->put, &nbytes);

		if (rc != 0 || e->put->mem != DJ_MEM_HOST)
			return rc != 0 ? rc : -ENOTSUP; /* the request carries the bytes */
		cJSON *put = cJSON_AddObjectToObject(obj, "put");

		ctl_desc_to_json(put, &e->put->desc);
		if (e->device != NULL)
			cJSON_AddStringToObject(put, "device", e->device);
		*put_bytes += nbytes;
	} else {
		in = cJSON_CreateArray();
		for (int k = 0; k < e->n_in && k < DJ_MAX_OP_ARGS; k++)
			cJSON_AddItemToArray(in, cJSON_CreateString(e->inputs[k] != NULL ?
								    e->inputs[k] : ""));
		int rc = add_op(obj, e->op, in, e->attrs_json);

		if (rc != 0)
			return rc;
		if (e->device != NULL)
			cJSON_AddStringToObject(obj, "device", e->device);
	}
	if (e->fetch)
		cJSON_AddTrueToObject(obj, "fetch");
	if (e->n_free > 0) {
		cJSON *list = cJSON_AddArrayToObject(obj, "free");
		char ref[16];

		for (int k = 0; k < e->n_free; k++) {
			snprintf(ref, sizeof(ref), "$%d", e->free[k]);
			cJSON_AddItemToArray(list, cJSON_CreateString(ref));
		}
	}
	return 0;
}

/* The EXECUTE message of a batch; *put_bytes receives its puts' total size. */
static int batch_msg(const struct dj_batch_op *ops, int n_ops, cJSON **msg, uint64_t *put_bytes)
{
	cJSON *m = ctl_client_msg("EXECUTE"), *batch = cJSON_AddArrayToObject(m, "batch");

	*put_bytes = 0;
	for (int i = 0; i < n_ops; i++) {
		cJSON *op = cJSON_CreateObject();
		int rc;

		cJSON_AddItemToArray(batch, op);
		rc = batch_entry(&ops[i], i, op, put_bytes);
		if (rc != 0) {
			cJSON_Delete(m);
			return rc;
		}
	}
	*msg = m;
	return 0;
}

static uint64_t put_nbytes(const struct dj_batch_op *e)
{
	uint64_t n = 0;

	if (e->put != NULL)
		ctl_desc_nbytes(&e->put->desc, &n); /* checked by batch_entry */
	return n;
}

/* The puts' bytes back to back: the single put's own memory where there is
 * one, else a copy (*owned, freed by the caller once the request is sent). */
static const void *batch_payload(const struct dj_batch_op *ops, int n_ops, uint64_t total,
				 void **owned)
{
	const struct dj_batch_op *only = NULL;
	uint64_t off = 0;
	int n_puts = 0;
	char *buf;

	*owned = NULL;
	for (int i = 0; i < n_ops; i++)
		if (put_nbytes(&ops[i]) > 0) {
			only = &ops[i];
			n_puts++;
		}
	if (n_puts <= 1)
		return only != NULL ? only->put->data : NULL;
	buf = malloc(total);
	if (buf == NULL)
		return NULL;
	for (int i = 0; i < n_ops; i++) {
		uint64_t n = put_nbytes(&ops[i]);

		if (n > 0)
			memcpy(buf + off, ops[i].put->data, n);
		off += n;
	}
	*owned = buf;
	return buf;
}

int dj_execute_batch_async(struct dj_conn *conn, const struct dj_batch_op *ops, int n_ops,
			   void *fetch_buf, uint64_t fetch_len,
			   dj_future_cb cb, void *arg, struct dj_future **future)
{
	uint64_t put_bytes;
	const void *payload;
	void *owned;
	cJSON *m;
	int rc;

	if (ops == NULL || n_ops <= 0 || future == NULL || (fetch_len > 0 && fetch_buf == NULL))
		return -EINVAL;
	for (int i = 0; i < n_ops; i++)
		if (ops[i].fetch && fetch_buf == NULL)
			return -EINVAL;
	rc = batch_msg(ops, n_ops, &m, &put_bytes);
	if (rc != 0)
		return rc;
	payload = batch_payload(ops, n_ops, put_bytes, &owned);
	if (payload == NULL && put_bytes > 0) {
		cJSON_Delete(m);
		return -ENOMEM;
	}
	rc = ctl_client_request(conn, m, payload, put_bytes, fetch_buf, fetch_len, cb, arg, future);
	free(owned);
	return rc;
}

int dj_execute_batch(struct dj_conn *conn, const struct dj_batch_op *ops, int n_ops,
		     uint64_t *outputs)
{
	struct dj_future *f;
	int rc = dj_execute_batch_async(conn, ops, n_ops, NULL, 0, NULL, NULL, &f);

	if (rc != 0)
		return rc;
	rc = dj_future_wait(f, -1);
	if (rc == -ETIMEDOUT)
		dj_future_abandon(f);
	if (rc == 0) {
		rc = dj_future_batch_handles(f, outputs, n_ops);
		rc = rc == n_ops ? 0 : rc < 0 ? rc : -EBADMSG;
	}
	dj_future_release(f);
	return rc;
}
