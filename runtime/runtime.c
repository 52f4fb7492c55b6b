/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's backend: resident tensors in a tn_store with one
 * backend per device (GPU memory through each GPU's contexts, or host
 * memory), sessions with a default device, operations run on their inputs'
 * device (CUDA or the CPU reference), and to_device, the move between two
 * devices of this server.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu/ops/gpu_ops.h"
#include "tensor/ops.h"
#include "rt_internal.h"

struct rt_session {
	uint64_t store_session;
	_Atomic int device;             /* the default device's index */
};

/* The control plane's error buffer (CTL_ERRMSG_MAX bytes), filled by
 * common's formatter. */
#define set_err(err, ...) djc_errf(0, (err), CTL_ERRMSG_MAX, NULL, __VA_ARGS__)

/* The operation that moves a tensor to another device (not in the CPU
 * reference's table: it is a copy between memories, not a computation). */
#define OP_TO_DEVICE "to_device"

int rt_create(const struct rt_config *config, struct rt_runtime **out)
{
	struct rt_runtime *rt = calloc(1, sizeof(*rt));
	const struct tn_store_backend *backends[RT_MAX_DEVICES];
	int rc;

	if (rt == NULL)
		return -ENOMEM;
	rt->stats_extra = config->stats_extra;
	rt->stats_arg = config->stats_arg;
	rc = rt_devices_create(rt, config);
	if (rc != 0)
		goto fail;
	for (int i = 0; i < rt->n_devices; i++)
		backends[i] = &rt->devices[i].backend;

	struct tn_store_config store_cfg = {
		.backends = backends,
		.n_backends = rt->n_devices,
		.total_limit = config->total_limit,
		.session_limit = config->session_limit,
	};
	rc = tn_store_create(&store_cfg, &rt->store);
	if (rc != 0)
		goto fail;
	*out = rt;
	return 0;
fail:
	rt_destroy(rt);
	return rc;
}

void rt_destroy(struct rt_runtime *rt)
{
	if (rt == NULL)
		return;
	tn_store_destroy(rt->store);
	rt_devices_destroy(rt);
	free(rt);
}

const char *rt_description(const struct rt_runtime *rt)
{
	return rt->description;
}

int rt_gpu_device(const struct rt_runtime *rt)
{
	for (int i = 0; i < rt->n_devices; i++)
		if (rt->devices[i].kind == RT_DEVICE_CUDA)
			return rt->devices[i].ordinal;
	return -1;
}

int rt_devices(const struct rt_runtime *rt, struct rt_device_info *out, int max)
{
	for (int i = 0; i < rt->n_devices && i < max; i++) {
		const struct rt_device *d = &rt->devices[i];

		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].name, sizeof(out[i].name), "%s", d->name);
		out[i].kind = d->kind;
		out[i].ordinal = d->ordinal;
		out[i].numa_node = d->numa_node;
	}
	return rt->n_devices;
}

int rt_device_find(const struct rt_runtime *rt, const char *name)
{
	for (int i = 0; name != NULL && i < rt->n_devices; i++)
		if (strcmp(rt->devices[i].name, name) == 0)
			return i;
	return -ENODEV;
}

const struct tp_topology *rt_topology(const struct rt_runtime *rt)
{
	return &rt->topo;
}

int rt_memory(struct rt_runtime *rt, struct rt_memory *out, int max)
{
	int n = 0;

	for (int i = 0; i < rt->n_devices && n < max; i++, n++) {
		struct rt_device *d = &rt->devices[i];
		struct rt_memory *m = &out[n];
		struct tn_store_usage u;

		memset(m, 0, sizeof(*m));
		tn_store_device_usage(rt->store, i, &u);
		snprintf(m->device, sizeof(m->device), "%s", d->name);
		m->kind = d->kind;
		m->numa_node = d->numa_node;
		m->used = u.bytes;
		m->peak = u.peak_bytes;
		m->limit = u.limit;
		m->tensors = u.tensors;
		m->refused = u.refused;
		rt_device_mem(d, &m->free, &m->total);
		m->sessions = atomic_load(&d->sessions);
		m->ops = atomic_load(&d->ops);
		m->ops_failed = atomic_load(&d->ops_failed);
		m->running = atomic_load(&d->running);
		m->waiting = atomic_load(&d->waiting);
		m->moves_in = atomic_load(&d->moves_in);
		m->moves_out = atomic_load(&d->moves_out);
		m->move_bytes_in = atomic_load(&d->move_bytes_in);
		m->move_bytes_out = atomic_load(&d->move_bytes_out);
	}
	return n;
}

/* ---- backend table ---- */

static struct rt_session *sess_of(void *session)
{
	return session;
}

static uint64_t session_of(void *session)
{
	return sess_of(session)->store_session;
}

static int rt_caps(void *ctx, struct dp_caps *caps)
{
	struct rt_runtime *rt = ctx;

	caps->dtypes = (1u << DJ_DTYPE_COUNT) - 1;
	caps->n_ops = 0;
	for (int i = 0; i < tn_op_count() && caps->n_ops < DP_MAX_OPS; i++)
		snprintf(caps->ops[caps->n_ops++], DP_OP_NAME_MAX, "%s",
			 tn_op_get((enum tn_op_id)i)->name);
	if (caps->n_ops < DP_MAX_OPS)
		snprintf(caps->ops[caps->n_ops++], DP_OP_NAME_MAX, "%s", OP_TO_DEVICE);
	for (int i = 0; i < rt->n_devices && caps->n_gpus < DP_MAX_GPUS; i++) {
		if (rt->devices[i].kind == RT_DEVICE_HOST)
			continue;
		snprintf(caps->gpus[caps->n_gpus++].name, DP_GPU_NAME_MAX, "%s",
			 rt->devices[i].name);
	}
	return 0;
}

/* A new session's default device: the one fewest sessions default to,
 * then the one with the most free memory, then the lowest index. */
static int default_device(struct rt_runtime *rt)
{
	uint64_t best_sessions = UINT64_MAX, best_free = 0;
	int best = 0;

	for (int i = 0; i < rt->n_devices; i++) {
		uint64_t sessions = atomic_load(&rt->devices[i].sessions), free_bytes, total;

		if (sessions > best_sessions)
			continue;
		rt_device_mem(&rt->devices[i], &free_bytes, &total);
		if (sessions < best_sessions || free_bytes > best_free) {
			best = i;
			best_sessions = sessions;
			best_free = free_bytes;
		}
	}
	return best;
}

static int rt_session_open(void *ctx, uint64_t session_id, void **session, char *err)
{
	struct rt_runtime *rt = ctx;
	struct rt_session *s = calloc(1, sizeof(*s));
	int rc, dev;

	if (s == NULL)
		return -ENOMEM;
	rc = tn_store_session_open(rt->store, 0, &s->store_session);
	if (rc != 0) {
		set_err(err, "cannot open a tensor session: %s", dj_strerror(rc));
		free(s);
		return rc;
	}
	dev = default_device(rt);
	atomic_store(&s->device, dev);
	atomic_fetch_add(&rt->devices[dev].sessions, 1);
	DJC_LOG(DJ_LOG_DEBUG, "runtime", "session %" PRIu64 " opened on %s", session_id,
		rt->devices[dev].name);
	*session = s;
	return 0;
}

static void rt_session_close(void *ctx, void *session)
{
	struct rt_runtime *rt = ctx;
	struct rt_session *s = sess_of(session);

	atomic_fetch_sub(&rt->devices[atomic_load(&s->device)].sessions, 1);
	tn_store_session_close(rt->store, s->store_session);
	free(s);
}

/* "cuda:0, cuda:1" into buf: the devices a request may name. */
static const char *device_names(const struct rt_runtime *rt, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < rt->n_devices && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "",
					rt->devices[i].name);
	return buf;
}

/* The device a request names, or the session's default for NULL. */
static int device_lookup(struct rt_runtime *rt, void *session, const char *name, char *err)
{
	char names[128];
	int dev;

	if (name == NULL)
		return atomic_load(&sess_of(session)->device);
	dev = rt_device_find(rt, name);
	if (dev < 0)
		set_err(err, "no device '%.32s' on this server (it has %s)", name,
			device_names(rt, names, sizeof(names)));
	return dev;
}

static int rt_session_device(void *ctx, void *session, const char *want, char *device, char *err)
{
	struct rt_runtime *rt = ctx;
	struct rt_session *s = sess_of(session);
	int dev = device_lookup(rt, session, want, err);

	if (dev < 0)
		return dev;
	if (want != NULL) {
		int old = atomic_exchange(&s->device, dev);

		atomic_fetch_sub(&rt->devices[old].sessions, 1);
		atomic_fetch_add(&rt->devices[dev].sessions, 1);
	}
	snprintf(device, CTL_DEVICE_MAX, "%s", rt->devices[dev].name);
	return 0;
}

/* Why an allocation failed, with the figures where a limit refused it:
 * the bytes asked, those held, the limit (the store's usage is read after
 * the refusal: a concurrent free may make the figures fit). */
static void alloc_error(struct rt_runtime *rt, uint64_t sid, uint64_t asked, int rc,
			const char *what, char *err)
{
	struct tn_store_usage sess, all;

	if (rc != -DJ_ELIMIT || tn_store_session_usage(rt->store, sid, &sess) != 0) {
		set_err(err, "%s: %s", what, dj_strerror(rc));
		return;
	}
	tn_store_usage(rt->store, &all);
	if (sess.limit > 0 && sess.bytes + asked > sess.limit)
		set_err(err, "%s of %" PRIu64 " bytes: limit exceeded: the session holds %" PRIu64
			" bytes of its limit of %" PRIu64, what, asked, sess.bytes, sess.limit);
	else if (all.limit > 0 && all.bytes + asked > all.limit)
		set_err(err, "%s of %" PRIu64 " bytes: limit exceeded: the server holds %" PRIu64
			" bytes of its limit of %" PRIu64 " for all sessions", what, asked, all.bytes,
			all.limit);
	else
		set_err(err, "%s: limit exceeded: the session holds %" PRIu64 " tensors, the most "
			"it may", what, sess.tensors);
}

/* A new tensor on device dev; err names the device where it is full. */
static int alloc_dev(struct rt_runtime *rt, uint64_t sid, const struct dj_tensor_desc *desc,
		     int dev, int zero, uint64_t *handle, const char *what, char *err)
{
	int rc = tn_store_alloc_on(rt->store, sid, desc, dev, zero, handle);

	if (rc == -ENOMEM && rt->n_devices > 1)
		set_err(err, "%s on %s: %s", what, rt->devices[dev].name, dj_strerror(rc));
	else if (rc != 0)
		alloc_error(rt, sid, dj_tensor_desc_check(desc) == 0 ? dj_tensor_nbytes(desc) : 0, rc,
			    what, err);
	return rc;
}

static int rt_alloc_on(void *ctx, void *session, const struct dj_tensor_desc *desc,
		       const char *device, uint64_t *handle, char *err)
{
	struct rt_runtime *rt = ctx;
	int dev = device_lookup(rt, session, device, err);

	if (dev < 0)
		return dev;
	return alloc_dev(rt, session_of(session), desc, dev, 1, handle, "alloc", err);
}

static int rt_alloc(void *ctx, void *session, const struct dj_tensor_desc *desc,
		    uint64_t *handle, char *err)
{
	return rt_alloc_on(ctx, session, desc, NULL, handle, err);
}

/* An EXECUTE's payload, held until its puts are tensors, is charged as
 * they will be. */
static int rt_hold(void *ctx, void *session, int64_t bytes, char *err)
{
	struct rt_runtime *rt = ctx;
	uint64_t sid = session_of(session);
	int rc;

	if (bytes < 0) {
		tn_store_unhold(rt->store, sid, (uint64_t)-bytes);
		return 0;
	}
	rc = tn_store_hold(rt->store, sid, (uint64_t)bytes);
	if (rc != 0)
		alloc_error(rt, sid, (uint64_t)bytes, rc, "EXECUTE payload", err);
	return rc;
}

static int rt_device_of(void *ctx, void *session, uint64_t handle, char *device)
{
	struct rt_runtime *rt = ctx;
	int dev, rc = tn_store_device_of(rt->store, session_of(session), handle, &dev);

	if (rc == 0)
		snprintf(device, CTL_DEVICE_MAX, "%s", rt->devices[dev].name);
	return rc;
}

static int rt_describe(void *ctx, void *session, uint64_t handle, struct dj_tensor_desc *desc,
		       char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = tn_store_describe(rt->store, session_of(session), handle, desc);

	if (rc != 0)
		set_err(err, "tensor 0x%" PRIx64 ": %s", handle, dj_strerror(rc));
	return rc;
}

static int rt_free(void *ctx, void *session, uint64_t handle, char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = tn_store_free(rt->store, session_of(session), handle);

	if (rc != 0)
		set_err(err, "free 0x%" PRIx64 ": %s", handle, dj_strerror(rc));
	return rc;
}

/* Reads and writes pin the tensor for their whole duration. */
static int io_begin(struct rt_runtime *rt, void *session, uint64_t handle,
		    struct ctl_tensor_io *io, char *err)
{
	struct tn_store_ref *ref;
	struct dj_tensor view;
	int rc = tn_store_acquire(rt->store, session_of(session), handle, &ref, &view);

	if (rc != 0) {
		set_err(err, "tensor 0x%" PRIx64 ": %s", handle, dj_strerror(rc));
		return rc;
	}
	memset(io, 0, sizeof(*io));
	io->mem = view.mem;
	io->host = view.mem == DJ_MEM_HOST ? view.data : NULL;
	io->dp_addr = view.data;
	io->nbytes = dj_tensor_nbytes(&view.desc);
	io->token = ref;
	return 0;
}

static void io_end(struct rt_runtime *rt, struct ctl_tensor_io *io)
{
	tn_store_release(rt->store, io->token);
	io->token = NULL;
}

static struct rt_device *io_device(struct rt_runtime *rt, const struct ctl_tensor_io *io)
{
	return &rt->devices[tn_store_ref_device(io->token)];
}

static int io_check_range(const struct ctl_tensor_io *io, uint64_t offset, size_t len, char *err)
{
	if (offset > io->nbytes || len > io->nbytes - offset) {
		set_err(err, "bytes [%" PRIu64 ", +%zu) outside a %" PRIu64 "-byte tensor", offset,
			len, io->nbytes);
		return -ERANGE;
	}
	return 0;
}

static int rt_write_begin(void *ctx, void *session, uint64_t handle, struct ctl_tensor_io *io,
			  char *err)
{
	return io_begin(ctx, session, handle, io, err);
}

static int rt_write_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t offset,
			  const void *buf, size_t len, char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = io_check_range(io, offset, len, err);

	if (rc == 0 && io->host != NULL)
		memcpy((char *)io->host + offset, buf, len);
	else if (rc == 0)
		rc = rt_device_upload(io_device(rt, io), (char *)io->dp_addr + offset, buf, len);
	if (rc != 0 && err != NULL && err[0] == '\0')
		set_err(err, "write: %s", dj_strerror(rc));
	return rc;
}

static void rt_write_end(void *ctx, void *session, struct ctl_tensor_io *io, int status)
{
	io_end(ctx, io);
}

static int rt_read_begin(void *ctx, void *session, uint64_t handle, struct ctl_tensor_io *io,
			 char *err)
{
	return io_begin(ctx, session, handle, io, err);
}

static int rt_read_chunk(void *ctx, void *session, struct ctl_tensor_io *io, uint64_t offset,
			 void *buf, size_t len, char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = io_check_range(io, offset, len, err);

	if (rc == 0 && io->host != NULL)
		memcpy(buf, (const char *)io->host + offset, len);
	else if (rc == 0)
		rc = rt_device_download(io_device(rt, io), buf, (const char *)io->dp_addr + offset,
					len);
	if (rc != 0 && err != NULL && err[0] == '\0')
		set_err(err, "read: %s", dj_strerror(rc));
	return rc;
}

static void rt_read_end(void *ctx, void *session, struct ctl_tensor_io *io)
{
	io_end(ctx, io);
}

struct exec_args {
	struct tn_store_ref *refs[DJ_MAX_OP_ARGS];
	struct dj_tensor in[DJ_MAX_OP_ARGS];
	int n_acquired;
	int dev;                        /* the inputs' device; -1: no input */
};

/* Pin the inputs; they must all live on one device, where the operation
 * runs (no implicit move: a move costs, and the client chooses it). */
static int acquire_inputs(struct rt_runtime *rt, uint64_t session, const char *op_name,
			  const uint64_t *inputs, int n_in, struct exec_args *args, char *err)
{
	args->dev = -1;
	for (int i = 0; i < n_in; i++) {
		int rc = tn_store_acquire(rt->store, session, inputs[i], &args->refs[i],
					  &args->in[i]);
		if (rc != 0) {
			set_err(err, "%s: input %d (tensor 0x%" PRIx64 "): %s", op_name, i,
				inputs[i], dj_strerror(rc));
			return rc;
		}
		args->n_acquired++;
		int dev = tn_store_ref_device(args->refs[i]);

		if (args->dev >= 0 && dev != args->dev) {
			set_err(err, "%s: input 0 (tensor 0x%" PRIx64 ") is on %s, input %d (tensor "
				"0x%" PRIx64 ") on %s: move one with " OP_TO_DEVICE " first",
				op_name, inputs[0], rt->devices[args->dev].name, i, inputs[i],
				rt->devices[dev].name);
			return -EXDEV;
		}
		args->dev = dev;
	}
	return 0;
}

/* Drop a pin, or leave it to the batch: its kernels may still use the
 * tensor until the batch's streams are waited for. */
static void unpin(struct rt_runtime *rt, struct tn_store_ref *ref)
{
	if (ref != NULL && rt_batch_keep(ref) != 0)
		tn_store_release(rt->store, ref);
}

static void release_inputs(struct rt_runtime *rt, struct exec_args *args)
{
	for (int i = 0; i < args->n_acquired; i++)
		unpin(rt, args->refs[i]);
	args->n_acquired = 0;
}

static int compute(struct rt_device *d, const struct tn_op *op, struct exec_args *args,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err)
{
	/* In a batch, its context, not waited for here: the batch's end (or
	 * the copy of a fetched result) waits for its stream. */
	struct rt_ctx *held = rt_batch_hold(d);
	struct rt_ctx *ctx = held != NULL ? held : rt_ctx_checkout(d);
	int rc;

	if (ctx->ops == NULL) {
		rc = tn_op_cpu(op, args->in, n_in, attrs, out, err, CTL_ERRMSG_MAX);
	} else {
		rc = djg_ops_run(ctx->ops, op, args->in, n_in, attrs, out, err, CTL_ERRMSG_MAX);
		/* The reply says the result exists: it must have been computed. */
		if (rc == 0 && held == NULL)
			rc = djg_ops_sync(ctx->ops);
	}
	if (held == NULL)
		rt_ctx_checkin(d, ctx);
	atomic_fetch_add(rc == 0 ? &d->ops : &d->ops_failed, 1);
	return rc;
}

/*
 * The output's device from the request: attrs' "device" (where the control
 * plane put a request's top-level "device"), else -1. *clean is attrs
 * without it (the operations know no such attribute): attrs itself where
 * it has none, else a copy the caller deletes.
 */
static int target_device(struct rt_runtime *rt, void *session, const char *op_name,
			 const cJSON *attrs, const cJSON **clean, cJSON **copy, char *err)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(attrs, "device");
	int dev;

	*clean = attrs;
	*copy = NULL;
	if (item == NULL)
		return -1;
	if (!cJSON_IsString(item)) {
		set_err(err, "%s: 'device' must be a device name such as \"cuda:0\"", op_name);
		return -EINVAL;
	}
	dev = device_lookup(rt, session, item->valuestring, err);
	if (dev < 0)
		return dev;
	*copy = cJSON_Duplicate(attrs, 1);
	if (*copy == NULL) {
		set_err(err, "%s: out of memory", op_name);
		return -ENOMEM;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(*copy, "device");
	*clean = *copy;
	return dev;
}

/* A new tensor on device dst holding src's bytes (src pinned in args). */
static int move_into(struct rt_runtime *rt, uint64_t sid, const char *op_name,
		     const struct dj_tensor *src, int src_dev, int dst_dev, uint64_t *handle,
		     char *err)
{
	struct tn_store_ref *ref = NULL;
	struct dj_tensor dst;
	char what[64];
	int rc;

	snprintf(what, sizeof(what), "%s: output", op_name);
	/* Not zeroed: the move writes every byte, or the tensor is freed. */
	rc = alloc_dev(rt, sid, &src->desc, dst_dev, 0, handle, what, err);
	if (rc == 0)
		rc = tn_store_acquire(rt->store, sid, *handle, &ref, &dst);
	if (rc == 0)
		rc = rt_device_move(rt, &rt->devices[src_dev], &rt->devices[dst_dev], dst.data,
				    src->data, dj_tensor_nbytes(&src->desc), NULL);
	if (rc != 0 && err[0] == '\0')
		set_err(err, "%s: move from %s to %s: %s", op_name, rt->devices[src_dev].name,
			rt->devices[dst_dev].name, dj_strerror(rc));
	tn_store_release(rt->store, ref);
	if (rc != 0 && *handle != 0)
		tn_store_free(rt->store, sid, *handle);
	return rc;
}

/* to_device: a copy of input 0 on the device attrs name. */
static int to_device(struct rt_runtime *rt, uint64_t sid, const uint64_t *inputs, int n_in,
		     int target, uint64_t *handle, struct dj_tensor_desc *desc, char *err)
{
	struct exec_args args = {.n_acquired = 0};
	int rc;

	*handle = 0;
	if (n_in != 1) {
		set_err(err, OP_TO_DEVICE ": takes 1 input, not %d", n_in);
		return -EINVAL;
	}
	if (target < 0) {
		set_err(err, OP_TO_DEVICE ": the device is required (\"device\": \"cuda:1\", in "
			"the request or its attrs)");
		return -EINVAL;
	}
	rc = acquire_inputs(rt, sid, OP_TO_DEVICE, inputs, n_in, &args, err);
	if (rc == 0)
		rc = move_into(rt, sid, OP_TO_DEVICE, &args.in[0], args.dev, target, handle, err);
	if (rc == 0)
		*desc = args.in[0].desc;
	release_inputs(rt, &args);
	return rc;
}

/* Run op on the inputs' device into a new tensor there (or into input 0
 * for an in-place op); *handle 0 for in-place. */
static int run_op(struct rt_runtime *rt, uint64_t sid, const struct tn_op *op,
		  struct exec_args *args, int n_in, const struct tn_op_attrs *attrs,
		  struct dj_tensor_desc *out_desc, uint64_t *handle, char *err)
{
	struct tn_store_ref *out_ref = NULL;
	struct dj_tensor out;
	int rc = 0;

	*handle = 0;
	if (op->inplace) {
		out = args->in[0];
	} else {
		char what[64];

		snprintf(what, sizeof(what), "%s: output", op->name);
		/* Not zeroed: every operation writes its whole output (the
		 * poisoned-output test of test_remote_ops), and a failed
		 * one is freed below before anyone learns the handle. */
		rc = alloc_dev(rt, sid, out_desc, args->dev, 0, handle, what, err);
		if (rc == 0)
			rc = tn_store_acquire(rt->store, sid, *handle, &out_ref, &out);
	}
	if (rc == 0)
		rc = compute(&rt->devices[args->dev], op, args, n_in, attrs, &out, err);
	unpin(rt, out_ref);
	if (rc != 0 && *handle != 0) {
		tn_store_free(rt->store, sid, *handle);
		*handle = 0;
	}
	if (*handle != 0)
		rt_batch_made(dj_tensor_nbytes(out_desc));
	return rc;
}

/* The output of an operation that ran on one device, moved to another
 * (the request's "device"); the first one is freed either way. */
static int move_output(struct rt_runtime *rt, uint64_t sid, const char *op_name, uint64_t *handle,
		       int from, int to, char *err)
{
	struct tn_store_ref *ref;
	struct dj_tensor view;
	uint64_t moved = 0;
	int rc = tn_store_acquire(rt->store, sid, *handle, &ref, &view);

	if (rc == 0) {
		rc = move_into(rt, sid, op_name, &view, from, to, &moved, err);
		tn_store_release(rt->store, ref);
	}
	tn_store_free(rt->store, sid, *handle);
	*handle = rc == 0 ? moved : 0;
	return rc;
}

static int execute_op(struct rt_runtime *rt, uint64_t sid, const struct tn_op *op,
		      const uint64_t *inputs, int n_in, const cJSON *json_attrs, int target,
		      uint64_t *handle, struct dj_tensor_desc *out_desc, char *err)
{
	struct exec_args args = {.n_acquired = 0};
	struct dj_tensor_desc in_desc[DJ_MAX_OP_ARGS];
	struct tn_op_attrs attrs;
	int rc = tn_op_attrs_from_json(op, json_attrs, &attrs, err, CTL_ERRMSG_MAX);

	if (rc == 0)
		rc = acquire_inputs(rt, sid, op->name, inputs, n_in, &args, err);
	if (rc == 0 && args.dev < 0)
		args.dev = target >= 0 ? target : 0;
	if (rc == 0 && op->inplace && target >= 0 && target != args.dev) {
		set_err(err, "%s: writes input 0 in place on %s: it cannot put its output on %s",
			op->name, rt->devices[args.dev].name, rt->devices[target].name);
		rc = -EXDEV;
	}
	for (int i = 0; rc == 0 && i < n_in; i++)
		in_desc[i] = args.in[i].desc;
	if (rc == 0)
		rc = tn_op_infer(op, in_desc, n_in, &attrs, out_desc, err, CTL_ERRMSG_MAX);
	if (rc == 0)
		rc = run_op(rt, sid, op, &args, n_in, &attrs, out_desc, handle, err);
	release_inputs(rt, &args);
	if (rc == 0 && !op->inplace && target >= 0 && target != args.dev)
		rc = move_output(rt, sid, op->name, handle, args.dev, target, err);
	return rc;
}

/*
 * An in-place op (slice_write) writes input 0, which stays pinned as an
 * input for the whole call: nothing is allocated and the output handle is
 * input 0's own (the control plane then counts no new handle).
 */
static int rt_execute(void *ctx, void *session, const char *op_name, const uint64_t *inputs,
		      int n_in, const cJSON *json_attrs, uint64_t *outputs,
		      struct dj_tensor_desc *out_desc, int *n_out, char *err)
{
	struct rt_runtime *rt = ctx;
	uint64_t sid = session_of(session), handle = 0;
	const struct tn_op *op = tn_op_find(op_name);
	const cJSON *attrs;
	cJSON *copy;
	int target, rc;

	*n_out = 0;
	if (n_in < 0 || n_in > DJ_MAX_OP_ARGS) {
		set_err(err, "%s: %d inputs (at most %d)", op_name, n_in, DJ_MAX_OP_ARGS);
		return -EINVAL;
	}
	if (op == NULL && strcmp(op_name, OP_TO_DEVICE) != 0) {
		set_err(err, "unknown operation '%s'", op_name);
		return -DJ_EUNKNOWN_OP;
	}
	target = target_device(rt, session, op_name, json_attrs, &attrs, &copy, err);
	if (target < -1)
		return target;
	if (op == NULL)
		rc = to_device(rt, sid, inputs, n_in, target, &handle, &out_desc[0], err);
	else
		rc = execute_op(rt, sid, op, inputs, n_in, attrs, target, &handle, &out_desc[0],
				err);
	cJSON_Delete(copy);
	if (rc != 0)
		return rc;
	outputs[0] = op != NULL && op->inplace ? inputs[0] : handle;
	*n_out = 1;
	return 0;
}

/* "memory": [{device, kind, numa_node, used, peak, limit, free, total,
 * tensors, refused, sessions, ops, ops_failed, running, waiting, moves_in,
 * moves_out, move_bytes_in, move_bytes_out}] */
static void stats_memory(struct rt_runtime *rt, cJSON *obj)
{
	struct rt_memory m[RT_MAX_DEVICES];
	int n = rt_memory(rt, m, RT_MAX_DEVICES);
	cJSON *list = cJSON_AddArrayToObject(obj, "memory");

	for (int i = 0; i < n && list != NULL; i++) {
		cJSON *d = cJSON_CreateObject();
		const struct { const char *key; uint64_t v; } fields[] = {
			{"used", m[i].used}, {"peak", m[i].peak}, {"limit", m[i].limit},
			{"free", m[i].free}, {"total", m[i].total}, {"tensors", m[i].tensors},
			{"refused", m[i].refused}, {"sessions", m[i].sessions}, {"ops", m[i].ops},
			{"ops_failed", m[i].ops_failed}, {"running", m[i].running},
			{"waiting", m[i].waiting}, {"moves_in", m[i].moves_in},
			{"moves_out", m[i].moves_out}, {"move_bytes_in", m[i].move_bytes_in},
			{"move_bytes_out", m[i].move_bytes_out},
		};

		cJSON_AddStringToObject(d, "device", m[i].device);
		cJSON_AddStringToObject(d, "kind", rt_device_kind_name(m[i].kind));
		cJSON_AddNumberToObject(d, "numa_node", m[i].numa_node);
		for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			cJSON_AddNumberToObject(d, fields[k].key, (double)fields[k].v);
		cJSON_AddItemToArray(list, d);
	}
}

static void rt_stats(void *ctx, void *session, cJSON *obj)
{
	struct rt_runtime *rt = ctx;
	struct tn_store_usage usage;

	cJSON_AddStringToObject(obj, "compute", rt->description);
	cJSON_AddStringToObject(obj, "moves", rt->move_mode == RT_MOVE_STAGED ? "staged" : "auto");
	if (session != NULL && tn_store_session_usage(rt->store, session_of(session), &usage) == 0) {
		cJSON_AddStringToObject(obj, "session_device",
					rt->devices[atomic_load(&sess_of(session)->device)].name);
		cJSON_AddNumberToObject(obj, "session_bytes", (double)usage.bytes);
		cJSON_AddNumberToObject(obj, "session_peak_bytes", (double)usage.peak_bytes);
		cJSON_AddNumberToObject(obj, "session_limit", (double)usage.limit);
		cJSON_AddNumberToObject(obj, "session_tensors", (double)usage.tensors);
	}
	tn_store_usage(rt->store, &usage);
	cJSON_AddNumberToObject(obj, "store_bytes", (double)usage.bytes);
	cJSON_AddNumberToObject(obj, "store_sessions", (double)usage.sessions);
	stats_memory(rt, obj);
	if (rt->stats_extra != NULL)
		rt->stats_extra(rt->stats_arg, obj);
}

static int rt_adopt(void *ctx, void *from, uint64_t handle, void *to, uint64_t *new_handle,
		    char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = tn_store_adopt(rt->store, session_of(from), handle, session_of(to), new_handle);

	if (rc != 0)
		set_err(err, "tensor %" PRIx64 " cannot be handed over: %s", handle, dj_strerror(rc));
	return rc;
}

/* The load a fleet member reports (ctl_mem_info): rt_memory()'s figures,
 * each device's memory capped by the store's own limit where one is set. */
static int rt_mem_info(void *ctx, struct ctl_mem_info *info)
{
	struct rt_runtime *rt = ctx;
	struct rt_memory m[DP_MAX_GPUS];
	int n = rt_memory(rt, m, DP_MAX_GPUS);
	uint64_t store_used = 0;

	memset(info, 0, sizeof(*info));
	info->n_devices = n;
	for (int i = 0; i < n; i++)
		store_used += m[i].used;
	for (int i = 0; i < n; i++) {
		uint64_t total = m[i].total, avail = m[i].free;

		snprintf(info->devices[i].name, sizeof(info->devices[i].name), "%.*s",
			 (int)sizeof(m[i].device), m[i].device);
		info->devices[i].mem = m[i].kind == RT_DEVICE_CUDA ? DJ_MEM_GPU : DJ_MEM_HOST;
		/* The limit is the store's, over every device: what is left of
		 * it caps what any one device may still take. */
		if (m[i].limit != 0) {
			uint64_t left = store_used < m[i].limit ? m[i].limit - store_used : 0;

			total = total < m[i].limit ? total : m[i].limit;
			avail = avail < left ? avail : left;
		}
		info->devices[i].total = total;
		info->devices[i].free = avail < total ? avail : total;
		info->devices[i].used = m[i].used;
		info->devices[i].tensors = m[i].tensors;
		info->devices[i].ops = m[i].ops;
		info->devices[i].running = m[i].running;
		info->devices[i].queued = m[i].waiting;
		info->devices[i].sessions = m[i].sessions;
		info->devices[i].numa_node = m[i].numa_node;
		info->store_limit = m[i].limit;
	}
	info->store_bytes = store_used;
	return 0;
}

static void rt_batch_open(void *ctx, void *session)
{
	rt_batch_begin(ctx);
}

static int rt_batch_close(void *ctx, void *session, char *err)
{
	int rc = rt_batch_end();

	if (rc != 0)
		set_err(err, "the batch's GPU work failed: %s", dj_strerror(rc));
	return rc;
}

static const struct ctl_backend runtime_backend = {
	.caps = rt_caps,
	.session_open = rt_session_open,
	.session_close = rt_session_close,
	.alloc = rt_alloc,
	.describe = rt_describe,
	.free = rt_free,
	.write_begin = rt_write_begin,
	.write_chunk = rt_write_chunk,
	.write_end = rt_write_end,
	.read_begin = rt_read_begin,
	.read_chunk = rt_read_chunk,
	.read_end = rt_read_end,
	.execute = rt_execute,
	.stats = rt_stats,
	.mem_info = rt_mem_info,
	.adopt = rt_adopt,
	.hold = rt_hold,
	.alloc_on = rt_alloc_on,
	.device_of = rt_device_of,
	.session_device = rt_session_device,
	.batch_begin = rt_batch_open,
	.batch_end = rt_batch_close,
};

const struct ctl_backend *rt_backend(void)
{
	return &runtime_backend;
}
