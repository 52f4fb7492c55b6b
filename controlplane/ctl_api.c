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

#define TAG "ctl-client"

enum dj_path dj_conn_path(const struct dj_conn *conn, const char **reason)
{
	if (reason != NULL)
		*reason = conn->path_reason;
	return conn->path;
}

uint64_t dj_conn_session_id(const struct dj_conn *conn)
{
	return conn->session_id;
}

const char *dj_conn_last_error(const struct dj_conn *conn)
{
	return conn->last_error;
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
static int source_settle(const struct dj_datapath *dp, uint64_t cookie, uint64_t xfer,
			 uint32_t timeout_ms)
{
	struct timespec ms = {.tv_nsec = 1000000L};

	for (uint32_t waited = 0; dp->ops->send_pinned != NULL; waited++) {
		if (dp->ops->send_pinned(dp->ctx, cookie, xfer) == 0)
			return 0;
		if (waited >= timeout_ms)
			break;
		nanosleep(&ms, NULL);
	}
	return -EDEADLK;
}

static void dp_failed(struct dj_conn *conn, const char *what, int rc)
{
	struct dj_client *cl = conn->cl;
	char reason[160];

	conn->dp_failures++;
	DJC_LOG(DJ_LOG_WARN, TAG, "session %" PRIu64 ": data-plane %s failed (%s), redone over TCP",
	       conn->session_id, what, dj_strerror(rc));
	if (conn->dp_failures < cl->o.dp_max_failures || conn->path != DJ_PATH_DPDK)
		return;
	snprintf(reason, sizeof(reason), "moved from dpdk after %d failed transfers (last: %s)",
		 conn->dp_failures, dj_strerror(rc));
	if (ctl_client_send_path(conn, DJ_PATH_TCP, reason) == 0)
		cl->st.dp_fallbacks++;
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
	uint64_t xfer = ++conn->next_xfer;
	cJSON *m = desc_msg("PUT", &t->desc), *done, *reply = NULL;
	int rc, send_rc;

	cJSON_AddStringToObject(m, "via", "dpdk");
	cJSON_AddNumberToObject(m, "xfer", (double)xfer);
	if (into != 0)
		ctl_json_add_handle(m, "handle", into);
	rc = ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	cJSON_Delete(reply);
	if (rc != 0)
		return rc;
	send_rc = dp->ops->send(dp->ctx, &conn->server_caps.endpoint, conn->cookie, xfer,
				t->data, nbytes, t->mem, conn->cl->o.dp_timeout_ms);
	/* Let go of in time, the tensor is the caller's again: a plain data-path
	 * failure, redone over TCP. */
	if (send_rc == -EDEADLK)
		*pinned = source_settle(dp, conn->cookie, xfer, conn->cl->o.dp_timeout_ms) != 0;
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

static int put_async(struct dj_conn *conn, const struct dj_tensor *t, uint64_t into,
		     dj_future_cb cb, void *arg, struct dj_future **future)
{
	uint64_t nbytes;
	cJSON *m;
	int rc = tensor_nbytes(t, &nbytes);

	if (rc != 0 || future == NULL)
		return rc != 0 ? rc : -EINVAL;
	*future = NULL;
	ctl_client_path_retry(conn);
	if (conn->path == DJ_PATH_DPDK) {
		int pinned = 0;

		rc = put_over_dp(conn, t, nbytes, into, future, &pinned);
		rc = pinned ? -EDEADLK : dp_settle(conn, "PUT", rc, *future, cb, arg);
		if (rc != 1)
			return rc;
	}
	if (t->mem != DJ_MEM_HOST)
		return -ENOTSUP; /* the TCP fallback reads the bytes with the CPU */
	m = desc_msg("PUT", &t->desc);
	if (into != 0)
		ctl_json_add_handle(m, "handle", into);
	return ctl_client_request(conn, m, t->data, nbytes, NULL, 0, cb, arg, future);
}

int dj_put_async(struct dj_conn *conn, const struct dj_tensor *t,
		 dj_future_cb cb, void *arg, struct dj_future **future)
{
	return put_async(conn, t, 0, cb, arg, future);
}

static int wait_handle(struct dj_future *f, uint64_t *handle, struct dj_tensor_desc *desc)
{
	int rc = dj_future_wait(f, -1);

	if (rc == -ETIMEDOUT && !dj_future_done(f))
		ctl_client_conn_poison(f->conn, rc);
	if (rc == 0)
		rc = dj_future_handle(f, handle, desc);
	dj_future_release(f);
	return rc;
}

int dj_put(struct dj_conn *conn, const struct dj_tensor *t, uint64_t *handle)
{
	struct dj_future *f;
	int rc = put_async(conn, t, 0, NULL, NULL, &f);

	return rc != 0 ? rc : wait_handle(f, handle, NULL);
}

int dj_put_into(struct dj_conn *conn, uint64_t handle, const struct dj_tensor *t)
{
	struct dj_future *f;
	int rc = handle != 0 ? put_async(conn, t, handle, NULL, NULL, &f) : -EINVAL;

	return rc != 0 ? rc : wait_handle(f, NULL, NULL);
}

/* ---- requests that may be retried ----------------------------------------- */

static int connection_lost(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -ENOTCONN || rc == -ESHUTDOWN ||
	       rc == -ETIMEDOUT;
}

/*
 * An idempotent request: where the connection is lost, reconnect (resuming
 * the session) with backoff and send it again. Takes msg.
 */
static int call_idempotent(struct dj_conn *conn, cJSON *msg, void *dst, uint64_t dst_len,
			   cJSON **reply)
{
	int rc = -ECONNRESET;
	uint64_t gen = conn->generation;

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
		rc = ctl_client_call(conn, cJSON_Duplicate(msg, 1), NULL, 0, dst, dst_len, reply);
		if (!connection_lost(rc))
			break;
	}
	cJSON_Delete(msg);
	return rc;
}

int dj_ping(struct dj_conn *conn, uint64_t *rtt_ns)
{
	uint64_t t0 = djc_time_ns();
	cJSON *reply = NULL;
	int rc = call_idempotent(conn, ctl_client_msg("PING"), NULL, 0, &reply);

	cJSON_Delete(reply);
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

int dj_free_async(struct dj_conn *conn, uint64_t handle,
		  dj_future_cb cb, void *arg, struct dj_future **future)
{
	return ctl_client_request(conn, handle_msg("FREE", handle), NULL, 0, NULL, 0, cb, arg, future);
}

int dj_free(struct dj_conn *conn, uint64_t handle)
{
	cJSON *reply = NULL;
	int rc = ctl_client_call(conn, handle_msg("FREE", handle), NULL, 0, NULL, 0, &reply);

	cJSON_Delete(reply);
	return rc;
}

/* ---- GET -------------------------------------------------------------------- */

static int get_over_dp(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
		       uint64_t nbytes, struct dj_future **future, int *pinned)
{
	const struct dj_datapath *dp = conn->cl->o.datapath;
	uint64_t xfer = ++conn->next_xfer;
	cJSON *m = handle_msg("GET", handle);
	int rc = dp->ops->expect(dp->ctx, conn->cookie, xfer, t->data, nbytes, t->mem);

	cJSON_AddStringToObject(m, "via", "dpdk");
	cJSON_AddNumberToObject(m, "xfer", (double)xfer);
	if (rc != 0) {
		cJSON_Delete(m);
		return rc;
	}
	rc = ctl_client_request(conn, m, NULL, 0, NULL, 0, NULL, NULL, future);
	if (rc == 0)
		rc = dj_future_wait(*future, -1);
	/* The server sent every byte and had them acknowledged: they are
	 * placed, or about to be. */
	if (rc == 0)
		rc = dp->ops->wait(dp->ctx, conn->cookie, xfer, conn->cl->o.dp_timeout_ms);
	/* A destination the data path may still write is not redone over TCP
	 * (-EDEADLK): the caller must keep it valid. */
	if (rc != 0)
		*pinned = dp->ops->cancel(dp->ctx, conn->cookie, xfer) == -EDEADLK;
	if (rc != 0) {
		if (*future != NULL)
			dj_future_release(*future);
		*future = NULL;
	}
	return rc;
}

static int get_async(struct dj_conn *conn, uint64_t handle, struct dj_tensor *t,
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

int dj_execute_async(struct dj_conn *conn, const char *op, const uint64_t *inputs,
		     int n_in, const char *attrs_json,
		     dj_future_cb cb, void *arg, struct dj_future **future)
{
	cJSON *m = ctl_client_msg("EXECUTE"), *in = cJSON_CreateArray();
	char text[20];
	int rc;

	if (n_in < 0 || n_in > DJ_MAX_OP_ARGS || (n_in > 0 && inputs == NULL)) {
		cJSON_Delete(m);
		cJSON_Delete(in);
		return -EINVAL;
	}
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

static int batch_msg(const struct dj_batch_op *ops, int n_ops, cJSON **msg)
{
	cJSON *m = ctl_client_msg("EXECUTE"), *batch = cJSON_AddArrayToObject(m, "batch");

	for (int i = 0; i < n_ops; i++) {
		cJSON *op = cJSON_CreateObject(), *in = cJSON_CreateArray();
		int rc;

		cJSON_AddItemToArray(batch, op);
		for (int k = 0; k < ops[i].n_in && k < DJ_MAX_OP_ARGS; k++)
			cJSON_AddItemToArray(in, cJSON_CreateString(ops[i].inputs[k] != NULL ?
								     ops[i].inputs[k] : ""));
		rc = add_op(op, ops[i].op, in, ops[i].attrs_json);
		if (rc != 0) {
			cJSON_Delete(m);
			return rc;
		}
	}
	*msg = m;
	return 0;
}

int dj_execute_batch(struct dj_conn *conn, const struct dj_batch_op *ops, int n_ops,
		     uint64_t *outputs)
{
	cJSON *m, *reply = NULL, *res, *results;
	char why[128];
	int rc, i = 0;

	if (ops == NULL || n_ops <= 0)
		return -EINVAL;
	rc = batch_msg(ops, n_ops, &m);
	if (rc == 0)
		rc = ctl_client_call(conn, m, NULL, 0, NULL, 0, &reply);
	results = rc == 0 ? cJSON_GetObjectItemCaseSensitive(reply, "results") : NULL;
	cJSON_ArrayForEach(res, results) {
		const cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "outputs"), 0);

		if (i < n_ops && (o == NULL || ctl_json_handle(o, "handle", &outputs[i++], why) != 0))
			rc = -EBADMSG;
	}
	if (rc == 0 && i != n_ops)
		rc = -EBADMSG;
	cJSON_Delete(reply);
	return rc;
}
