/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The server's side of binary frames (docs/CONTROL.md, "Binary frames"):
 * PING, FREE and single-op EXECUTE, parsed in place (in the connection's
 * input buffer) and answered by writing the reply straight into the
 * connection's output chunk: no cJSON tree and no allocation per request on
 * the epoll thread. An EXECUTE the backend calls quick runs here; the
 * others go to a worker as a job carrying the decoded request (the one
 * allocation of that path), whose result is encoded here when it is back.
 *
 * Rule for malformed frames: a bad header (ctl_server.c) gets an ERROR and
 * the connection closes once it is written, since its length cannot be
 * trusted; a sound header with a bad body gets an ERROR for its id and the
 * connection serves on.
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

/* A decoded EXECUTE that outlives its frame (a worker's job), and what
 * running it gave. */
struct ctl_bin_job {
	char op[DP_OP_NAME_MAX];
	uint64_t in[DJ_MAX_OP_ARGS];
	int n_in;
	char device[CTL_DEVICE_MAX];
	const char *attrs;        /* points past this struct, attrs_len bytes */
	uint32_t attrs_len;
	/* The result. */
	int rc;
	int n_out, n_new;
	uint64_t out[DJ_MAX_OP_ARGS];
	struct dj_tensor_desc desc[DJ_MAX_OP_ARGS];
	char out_dev[DJ_MAX_OP_ARGS][CTL_DEVICE_MAX];
	char err[CTL_ERRMSG_MAX];
};

/* ---- replies ----------------------------------------------------------------- */

/* Room for a frame of body_len bytes; its header written. NULL: the
 * connection is dead (reply dropped) or closed for want of memory. */
static uint8_t *reply_begin(struct ctl_conn *c, uint8_t type, uint64_t id, size_t body_len)
{
	uint8_t *p;

	if (c->dead)
		return NULL;
	p = ctl_out_reserve(c, CTL_HDR_LEN + body_len);
	if (p == NULL) {
		ctl_send(c, NULL); /* closes: the client learns of it */
		return NULL;
	}
	ctl_bin_hdr_encode(p, type, 0, (uint32_t)body_len, id);
	return p + CTL_HDR_LEN;
}

static void reply_empty(struct ctl_conn *c, uint8_t type, uint64_t id)
{
	if (reply_begin(c, CTL_BIN_REPLY | type, id, 0) != NULL)
		ctl_out_commit(c, CTL_HDR_LEN);
}

void ctl_bin_send_error(struct ctl_conn *c, uint64_t id, int code, const char *msg)
{
	size_t n = ctl_bin_error_size(msg);
	uint8_t *p;

	c->srv->st.errors++;
	DJC_LOG(DJ_LOG_INFO, TAG, "%s: request %llu: ERROR %d %s", c->peer,
		(unsigned long long)id, code, msg != NULL ? msg : "");
	p = reply_begin(c, CTL_BIN_ERROR, id, n);
	if (p == NULL)
		return;
	ctl_bin_error_encode(p, code, msg);
	ctl_out_commit(c, CTL_HDR_LEN + n);
}

/* EXECUTE's reply from a result: its outputs, or its ERROR. Returns rc. */
static int reply_exec(struct ctl_conn *c, uint64_t id, const struct ctl_bin_job *b)
{
	size_t n = CTL_BIN_EXEC_REPLY_FIXED, dev_len[DJ_MAX_OP_ARGS];
	uint8_t *p;

	if (b->rc != 0) {
		ctl_bin_send_error(c, id, b->rc, b->err);
		return b->rc;
	}
	for (int i = 0; i < b->n_out; i++) {
		dev_len[i] = strlen(b->out_dev[i]);
		n += ctl_bin_output_size(&b->desc[i], dev_len[i]);
	}
	p = reply_begin(c, CTL_BIN_REPLY | CTL_BIN_EXECUTE, id, n);
	if (p == NULL)
		return 0;
	ctl_bin_exec_reply_head(p, b->n_out);
	p += CTL_BIN_EXEC_REPLY_FIXED;
	for (int i = 0; i < b->n_out; i++)
		p = ctl_bin_output_encode(p, b->out[i], &b->desc[i], b->out_dev[i], dev_len[i]);
	ctl_out_commit(c, CTL_HDR_LEN + n);
	return 0;
}

/* ---- running an EXECUTE ---------------------------------------------------------- */

/* The attrs the backend gets: the request's JSON object (parsed: the one
 * tree of this path, only where attrs were sent) with the device added, or
 * an object built on the stack (no allocation) where there is only a
 * device or nothing at all. */
struct bin_attrs {
	cJSON obj, dev;
	cJSON *tree;
};

static int attrs_build(struct ctl_server *srv, const struct ctl_bin_job *b, struct bin_attrs *a,
		       const cJSON **attrs, char *err)
{
	const cJSON *inner;

	memset(a, 0, sizeof(*a));
	a->obj.type = cJSON_Object;
	a->dev.type = cJSON_String | cJSON_StringIsConst;
	a->dev.string = (char *)"device";
	a->dev.valuestring = (char *)b->device;
	*attrs = &a->obj;
	if (b->device[0] != '\0' && srv->be->alloc_on == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "this server keeps tensors on one device: no "
			 "'device' field");
		return -ENOTSUP;
	}
	if (b->attrs_len == 0) {
		if (b->device[0] != '\0')
			a->obj.child = &a->dev;
		return 0;
	}
	if ((uint32_t)ctl_json_depth(b->attrs, b->attrs_len) > srv->cfg.limits.max_json_depth ||
	    (a->tree = cJSON_ParseWithLength(b->attrs, b->attrs_len)) == NULL ||
	    !cJSON_IsObject(a->tree)) {
		snprintf(err, CTL_ERRMSG_MAX, "attrs: not a JSON object (or nested too deeply)");
		return -EINVAL;
	}
	*attrs = a->tree;
	if (b->device[0] == '\0')
		return 0;
	inner = cJSON_GetObjectItemCaseSensitive(a->tree, "device");
	if (inner != NULL && (!cJSON_IsString(inner) || strcmp(inner->valuestring, b->device) != 0)) {
		snprintf(err, CTL_ERRMSG_MAX, "'device' and attrs' 'device' differ");
		return -EINVAL;
	}
	if (inner == NULL && cJSON_AddStringToObject(a->tree, "device", b->device) == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "server out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Run b's op as exec_job runs one (batch bounds included, so a GPU backend
 * has finished it when this returns; its new outputs taken from the
 * session's handles); its result into b. Any thread. */
static void bin_run(struct ctl_server *srv, struct ctl_session *s, struct ctl_bin_job *b)
{
	const struct ctl_backend *be = srv->be;
	void *bsess = s->bsess;
	struct bin_attrs a;
	const cJSON *attrs;
	char ignored[CTL_ERRMSG_MAX];

	b->n_out = 0;
	b->err[0] = '\0';
	b->rc = attrs_build(srv, b, &a, &attrs, b->err);
	if (b->rc == 0) {
		if (be->batch_begin != NULL)
			be->batch_begin(srv->bctx, bsess);
		b->rc = be->execute(srv->bctx, bsess, b->op, b->in, b->n_in, attrs, b->out, b->desc,
				    &b->n_out, b->err);
		if (b->rc != 0)
			b->n_out = 0;
		b->n_out = b->n_out < DJ_MAX_OP_ARGS ? b->n_out : DJ_MAX_OP_ARGS;
		if (be->batch_end != NULL) {
			char err[CTL_ERRMSG_MAX] = "";
			int end = be->batch_end(srv->bctx, bsess, err);

			if (end != 0 && b->rc == 0) {
				snprintf(b->err, sizeof(b->err), "%s", err);
				b->rc = end;
			}
		}
	}
	cJSON_Delete(a.tree);
	b->n_new = b->rc == 0 ? ctl_new_outputs(b->in, b->n_in, b->out, b->n_out) : 0;
	if (b->n_new > 0)
		b->rc = ctl_handles_take(srv, s, (uint32_t)b->n_new, b->err);
	if (b->rc != 0) {
		b->n_new = 0;
		/* All or nothing, as a JSON EXECUTE: a late failure frees what
		 * the op made, which the client never learns of. */
		for (int i = 0; i < b->n_out; i++)
			if (ctl_new_outputs(b->in, b->n_in, &b->out[i], 1))
				be->free(srv->bctx, bsess, b->out[i], ignored);
		b->n_out = 0;
		return;
	}
	for (int i = 0; i < b->n_out; i++)
		if (be->device_of == NULL || be->device_of(srv->bctx, bsess, b->out[i],
							   b->out_dev[i]) != 0)
			b->out_dev[i][0] = '\0';
}

static cJSON *bin_exec_job(struct ctl_server *srv, struct ctl_job *job)
{
	bin_run(srv, job->sess, job->bin);
	return NULL;
}

/* A finished run's effect on the server's counters (its handles were
 * taken as it ran). */
static void bin_effects(struct ctl_conn *c, const struct ctl_bin_job *b)
{
	if (b->rc == 0)
		c->srv->st.ops++;
}

int ctl_bin_job_reply(struct ctl_conn *c, struct ctl_job *job)
{
	bin_effects(c, job->bin);
	if (c->dead)
		return job->bin->rc;
	return reply_exec(c, job->id, job->bin);
}

/* The op's name: the request's text, or caps.ops[op_id]. */
static int op_name(struct ctl_server *srv, const struct ctl_bin_exec *e, char *op, char *err)
{
	if (e->op_id == CTL_BIN_OP_NAMED) {
		memcpy(op, e->op, e->op_len);
		op[e->op_len] = '\0';
		return 0;
	}
	if (e->op_id >= srv->caps.n_ops || e->op_id >= DP_MAX_OPS) {
		snprintf(err, CTL_ERRMSG_MAX, "op id %u: this server announced %d ops in HELLO",
			 e->op_id, srv->caps.n_ops);
		return -DJ_EUNKNOWN_OP;
	}
	djc_strcpy(op, srv->caps.ops[e->op_id], DP_OP_NAME_MAX);
	return 0;
}

/* The decoded request into b, op resolved (attrs: the caller places them). */
static void exec_fill(const struct ctl_bin_exec *e, const char *op, struct ctl_bin_job *b)
{
	djc_strcpy(b->op, op, sizeof(b->op));
	b->n_in = e->n_in;
	memcpy(b->in, e->in, sizeof(e->in[0]) * (size_t)e->n_in);
	memcpy(b->device, e->device, e->dev_len);
	b->device[e->dev_len] = '\0';
	b->err[0] = '\0';
}

/* Run on the connection thread where the backend calls the op quick (1);
 * else 0: it goes to a worker. */
static int exec_here(struct ctl_conn *c, uint64_t id, const struct ctl_bin_exec *e,
		     const char *op)
{
	struct ctl_server *srv = c->srv;
	struct ctl_bin_job b;
	int rc;

	if (srv->be->execute_inline == NULL ||
	    srv->be->execute_inline(srv->bctx, c->sess->bsess, op, e->in, e->n_in) != 1)
		return 0;
	/* Only what the run reads is filled: b is large. */
	exec_fill(e, op, &b);
	b.attrs = e->attrs;
	b.attrs_len = e->attrs_len;
	bin_run(srv, c->sess, &b);
	bin_effects(c, &b);
	rc = reply_exec(c, id, &b);
	ctl_request_done(srv, CTL_REQ_EXECUTE, c->req_trace, c->req_t0, rc, NULL);
	return 1;
}

/* To a worker: the request copied into a job (with its attrs text). */
static int exec_submit(struct ctl_conn *c, uint64_t id, const struct ctl_bin_exec *e,
		       const char *op, char *err)
{
	struct ctl_job *job = calloc(1, sizeof(*job) + sizeof(struct ctl_bin_job) + e->attrs_len);
	struct ctl_bin_job *b;

	if (job == NULL) {
		snprintf(err, CTL_ERRMSG_MAX, "server out of memory");
		return -ENOMEM;
	}
	b = (struct ctl_bin_job *)(job + 1);
	job->bin = b;
	job->id = id;
	job->fn = bin_exec_job;
	exec_fill(e, op, b);
	b->attrs = (const char *)(b + 1);
	b->attrs_len = e->attrs_len;
	if (e->attrs_len > 0)
		memcpy(b + 1, e->attrs, e->attrs_len);
	return ctl_submit_job(c->srv, c, job);
}

static int on_execute(struct ctl_conn *c, uint64_t id, const uint8_t *p, size_t len, char *err)
{
	struct ctl_bin_exec e;
	char op[DP_OP_NAME_MAX];
	int rc = ctl_bin_exec_decode(p, len, &e, err);

	if (rc == 0)
		rc = op_name(c->srv, &e, op, err);
	if (rc != 0)
		return rc;
	if (!ctl_handles_left(c, err))
		return -DJ_ELIMIT;
	if (exec_here(c, id, &e, op))
		return 0;
	return exec_submit(c, id, &e, op, err);
}

static int on_free(struct ctl_conn *c, uint64_t id, const uint8_t *p, size_t len, char *err)
{
	struct ctl_server *srv = c->srv;
	uint64_t handle;
	int rc = ctl_bin_free_decode(p, len, &handle, err);

	if (rc == 0)
		rc = srv->be->free(srv->bctx, c->sess->bsess, handle, err);
	if (rc != 0)
		return rc;
	c->sess->n_handles--;
	reply_empty(c, CTL_BIN_FREE, id);
	return 0;
}

/* ---- dispatch ----------------------------------------------------------------- */

/* The request's trace (validated) or "s<session>-<id>", as for JSON. */
static int trace_set(struct ctl_conn *c, const uint8_t *body, char *err)
{
	char digits[48], *d = digits + sizeof(digits);
	uint64_t v;

	if (c->bh.trace_len > 0) {
		memcpy(c->req_trace, body, c->bh.trace_len);
		c->req_trace[c->bh.trace_len] = '\0';
		if (djc_req_id_valid(c->req_trace) && strlen(c->req_trace) == c->bh.trace_len)
			return 0;
		c->req_trace[0] = '\0';
		snprintf(err, CTL_ERRMSG_MAX, "trace must be 1 to %d characters of A-Z a-z 0-9 . "
			 "_ : -", CTL_BIN_TRACE_MAX);
		return -EINVAL;
	}
	/* By hand: snprintf costs more than the rest of a PING. */
	v = c->bh.id;
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	*--d = '-';
	v = c->sess != NULL ? c->sess->id : 0;
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	*--d = 's';
	memcpy(c->req_trace, d, (size_t)(digits + sizeof(digits) - d));
	c->req_trace[digits + sizeof(digits) - d] = '\0';
	return 0;
}

static const enum ctl_req_type req_types[] = {
	[CTL_BIN_PING] = CTL_REQ_PING, [CTL_BIN_FREE] = CTL_REQ_FREE,
	[CTL_BIN_EXECUTE] = CTL_REQ_EXECUTE,
};

void ctl_bin_request(struct ctl_conn *c, const uint8_t *body)
{
	const uint8_t *p = body + c->bh.trace_len;
	size_t len = c->bh.body_len - c->bh.trace_len;
	uint64_t id = c->bh.id;
	char err[CTL_ERRMSG_MAX];
	int rc;

	c->req_type = req_types[c->bh.type];
	c->req_deferred = 0;
	rc = trace_set(c, body, err);
	djc_log_req_set(c->req_trace);
	if (rc == 0 && c->bh.type != CTL_BIN_PING && c->sess == NULL) {
		snprintf(err, sizeof(err), "%s needs a SESSION first",
			 ctl_req_type_name(c->req_type));
		rc = -EPROTO;
	} else if (rc == 0 && c->bh.type == CTL_BIN_PING && len != 0) {
		snprintf(err, sizeof(err), "binary PING: %zu bytes after the trace, must be 0", len);
		rc = -EBADMSG;
	} else if (rc == 0 && c->bh.type == CTL_BIN_PING) {
		reply_empty(c, CTL_BIN_PING, id);
	} else if (rc == 0 && c->bh.type == CTL_BIN_FREE) {
		rc = on_free(c, id, p, len, err);
	} else if (rc == 0) {
		rc = on_execute(c, id, p, len, err);
		/* Answered (inline) or a job's now; a failure is answered below. */
		if (rc == 0)
			c->req_deferred = 1;
	}
	if (rc != 0)
		ctl_bin_send_error(c, id, rc, err);
	djc_log_req_set(NULL);
	if (!c->req_deferred)
		ctl_request_done(c->srv, c->req_type, c->req_trace, c->req_t0, rc, NULL);
}

/* ---- negotiation ------------------------------------------------------------------ */

void ctl_bin_hello(struct ctl_conn *c, const cJSON *hello)
{
	const cJSON *offer = cJSON_GetObjectItemCaseSensitive(hello, "binary");

	/* The offer is the highest version the client speaks; we speak 1. */
	c->bin_offered = cJSON_IsNumber(offer) && offer->valuedouble >= CTL_BIN_VERSION;
}

void ctl_bin_hello_reply(struct ctl_conn *c, cJSON *reply)
{
	if (!c->bin_offered || reply == NULL)
		return;
	if (cJSON_AddNumberToObject(reply, "binary", CTL_BIN_VERSION) != NULL)
		c->binary = 1;
}
