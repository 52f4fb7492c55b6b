/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control plane's backend: resident tensors in a tn_store whose memory is
 * GPU memory (through the CUDA operations' contexts) or host memory, and
 * operations dispatched to CUDA or to the CPU reference.
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
#include "runtime/runtime.h"
#include "tensor/store.h"

#define RT_MAX_CONTEXTS 16

/* GPU contexts are single-threaded: executes check one out. */
struct gpu_context_pool {
	pthread_mutex_t lock;
	pthread_cond_t available;
	struct djg_ops *free_list[RT_MAX_CONTEXTS];
	int n_free;
	struct djg_ops *all[RT_MAX_CONTEXTS];
	int n_all;
};

struct rt_runtime {
	struct tn_store *store;
	int gpu_device;                 /* -1: host memory, CPU operations */
	struct tn_store_backend gpu_backend;
	/* Store allocations and copies share one context, serialised. */
	pthread_mutex_t mem_lock;
	struct djg_ops *mem_ctx;
	struct gpu_context_pool contexts;
	char description[64];
	void (*stats_extra)(void *arg, cJSON *obj);
	void *stats_arg;
};

struct rt_session {
	uint64_t store_session;
};

/* The control plane's error buffer (CTL_ERRMSG_MAX bytes), filled by
 * common's formatter. */
#define set_err(err, ...) djc_errf(0, (err), CTL_ERRMSG_MAX, NULL, __VA_ARGS__)

/* ---- GPU memory for the store ---- */

/* The pool hands back memory other sessions freed: zeros where asked, on
 * the allocation's own stream, so they land before the sync below makes
 * the memory usable anywhere. */
static int gpu_mem_alloc(void *ctx, size_t bytes, int zero, void **ptr)
{
	struct rt_runtime *rt = ctx;
	int rc;

	pthread_mutex_lock(&rt->mem_lock);
	rc = djg_ops_alloc(rt->mem_ctx, bytes, ptr);
	if (rc == 0 && zero)
		rc = djg_ops_zero(rt->mem_ctx, *ptr, bytes);
	/* Other contexts' streams use it next: make it usable everywhere. */
	if (rc == 0)
		rc = djg_ops_sync(rt->mem_ctx);
	pthread_mutex_unlock(&rt->mem_lock);
	return rc;
}

static void gpu_mem_free(void *ctx, void *ptr)
{
	struct rt_runtime *rt = ctx;

	pthread_mutex_lock(&rt->mem_lock);
	djg_ops_free(rt->mem_ctx, ptr);
	pthread_mutex_unlock(&rt->mem_lock);
}

static int gpu_mem_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
	struct rt_runtime *rt = ctx;
	int rc;

	pthread_mutex_lock(&rt->mem_lock);
	rc = djg_ops_copy_in(rt->mem_ctx, dst, src, bytes);
	pthread_mutex_unlock(&rt->mem_lock);
	return rc;
}

static int gpu_mem_download(void *ctx, void *dst, const void *src, size_t bytes)
{
	struct rt_runtime *rt = ctx;
	int rc;

	pthread_mutex_lock(&rt->mem_lock);
	rc = djg_ops_copy_out(rt->mem_ctx, dst, src, bytes);
	pthread_mutex_unlock(&rt->mem_lock);
	return rc;
}

static struct djg_ops *context_checkout(struct gpu_context_pool *pool)
{
	struct djg_ops *ctx;

	pthread_mutex_lock(&pool->lock);
	while (pool->n_free == 0)
		pthread_cond_wait(&pool->available, &pool->lock);
	ctx = pool->free_list[--pool->n_free];
	pthread_mutex_unlock(&pool->lock);
	return ctx;
}

static void context_checkin(struct gpu_context_pool *pool, struct djg_ops *ctx)
{
	pthread_mutex_lock(&pool->lock);
	pool->free_list[pool->n_free++] = ctx;
	pthread_cond_signal(&pool->available);
	pthread_mutex_unlock(&pool->lock);
}

static int choose_gpu(const char *spec, int *device)
{
	int count = djg_ops_device_count();
	char *end;

	if (spec == NULL || strcmp(spec, "auto") == 0) {
		*device = count > 0 ? 0 : -1;
		return 0;
	}
	if (strcmp(spec, "none") == 0) {
		*device = -1;
		return 0;
	}
	long index = strtol(spec, &end, 10);
	if (*spec == '\0' || *end != '\0' || index < 0)
		return -EINVAL;
	if (index >= count)
		return -DJ_ENOGPU;
	*device = (int)index;
	return 0;
}

static int gpu_setup(struct rt_runtime *rt, int n_contexts)
{
	int rc = djg_ops_create(rt->gpu_device, &rt->mem_ctx);

	if (rc != 0)
		return rc;
	pthread_mutex_init(&rt->contexts.lock, NULL);
	pthread_cond_init(&rt->contexts.available, NULL);
	for (int i = 0; i < n_contexts; i++) {
		rc = djg_ops_create(rt->gpu_device, &rt->contexts.all[i]);
		if (rc != 0)
			return rc;
		rt->contexts.free_list[rt->contexts.n_free++] = rt->contexts.all[i];
		rt->contexts.n_all++;
	}
	rt->gpu_backend = (struct tn_store_backend){
		.name = "cuda",
		.mem = DJ_MEM_GPU,
		.ctx = rt,
		.alloc = gpu_mem_alloc,
		.free = gpu_mem_free,
		.upload = gpu_mem_upload,
		.download = gpu_mem_download,
	};
	return 0;
}

int rt_create(const struct rt_config *config, struct rt_runtime **out)
{
	struct rt_runtime *rt = calloc(1, sizeof(*rt));
	int n_contexts = config->n_contexts > 0 ? config->n_contexts : 4;
	int rc;

	if (rt == NULL)
		return -ENOMEM;
	if (n_contexts > RT_MAX_CONTEXTS)
		n_contexts = RT_MAX_CONTEXTS;
	pthread_mutex_init(&rt->mem_lock, NULL);
	rt->stats_extra = config->stats_extra;
	rt->stats_arg = config->stats_arg;
	rc = choose_gpu(config->gpu, &rt->gpu_device);
	if (rc == 0 && rt->gpu_device >= 0)
		rc = gpu_setup(rt, n_contexts);
	if (rc != 0)
		goto fail;

	struct tn_store_config store_cfg = {
		.backend = rt->gpu_device >= 0 ? &rt->gpu_backend : NULL,
		.total_limit = config->total_limit,
		.session_limit = config->session_limit,
	};
	rc = tn_store_create(&store_cfg, &rt->store);
	if (rc != 0)
		goto fail;
	if (rt->gpu_device >= 0)
		snprintf(rt->description, sizeof(rt->description),
			 "cuda:%d (GPU memory, CUDA operations)", rt->gpu_device);
	else
		snprintf(rt->description, sizeof(rt->description),
			 "host (host memory, CPU operations)");
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
	for (int i = 0; i < rt->contexts.n_all; i++)
		djg_ops_destroy(rt->contexts.all[i]);
	if (rt->mem_ctx != NULL)
		djg_ops_destroy(rt->mem_ctx);
	free(rt);
}

const char *rt_description(const struct rt_runtime *rt)
{
	return rt->description;
}

int rt_gpu_device(const struct rt_runtime *rt)
{
	return rt->gpu_device;
}

/* MemAvailable and MemTotal of /proc/meminfo, in bytes (0 where unknown). */
static void host_memory(uint64_t *available, uint64_t *total)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long kb;

	*available = *total = 0;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			*available = (uint64_t)kb << 10;
		else if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			*total = (uint64_t)kb << 10;
	}
	fclose(f);
}

int rt_memory(struct rt_runtime *rt, struct rt_memory *out, int max)
{
	struct tn_store_usage u;

	if (max < 1)
		return 0;
	tn_store_usage(rt->store, &u);
	memset(out, 0, sizeof(*out));
	out->used = u.bytes;
	out->peak = u.peak_bytes;
	out->limit = u.limit;
	out->tensors = u.tensors;
	out->refused = u.refused;
	if (rt->gpu_device >= 0) {
		snprintf(out->device, sizeof(out->device), "cuda:%d", rt->gpu_device);
		djg_ops_mem_info(rt->gpu_device, &out->free, &out->total);
	} else {
		snprintf(out->device, sizeof(out->device), "host");
		host_memory(&out->free, &out->total);
	}
	return 1;
}

/* ---- backend table ---- */

static uint64_t session_of(void *session)
{
	return ((struct rt_session *)session)->store_session;
}

static int rt_caps(void *ctx, struct dp_caps *caps)
{
	struct rt_runtime *rt = ctx;

	caps->dtypes = (1u << DJ_DTYPE_COUNT) - 1;
	caps->n_ops = 0;
	for (int i = 0; i < tn_op_count() && i < DP_MAX_OPS; i++) {
		snprintf(caps->ops[i], DP_OP_NAME_MAX, "%s", tn_op_get((enum tn_op_id)i)->name);
		caps->n_ops++;
	}
	if (rt->gpu_device >= 0 && caps->n_gpus < DP_MAX_GPUS) {
		struct dp_gpu *g = &caps->gpus[caps->n_gpus++];
		snprintf(g->name, sizeof(g->name), "cuda:%d", rt->gpu_device);
	}
	return 0;
}

static int rt_session_open(void *ctx, uint64_t session_id, void **session, char *err)
{
	struct rt_runtime *rt = ctx;
	struct rt_session *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	rc = tn_store_session_open(rt->store, 0, &s->store_session);
	if (rc != 0) {
		set_err(err, "cannot open a tensor session: %s", dj_strerror(rc));
		free(s);
		return rc;
	}
	DJC_LOG(DJ_LOG_DEBUG, "runtime", "session %" PRIu64 " opened", session_id);
	*session = s;
	return 0;
}

static void rt_session_close(void *ctx, void *session)
{
	struct rt_runtime *rt = ctx;

	tn_store_session_close(rt->store, session_of(session));
	free(session);
}

/* Why an allocation failed, with the figures where a limit refused it:
 * the bytes asked, those held, the limit (the store's usage is read after
 * the refusal: a concurrent free may make the figures fit). */
static void alloc_error(struct rt_runtime *rt, uint64_t sid, const struct dj_tensor_desc *desc,
			int rc, const char *what, char *err)
{
	uint64_t asked = dj_tensor_desc_check(desc) == 0 ? dj_tensor_nbytes(desc) : 0;
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

static int rt_alloc(void *ctx, void *session, const struct dj_tensor_desc *desc,
		    uint64_t *handle, char *err)
{
	struct rt_runtime *rt = ctx;
	int rc = tn_store_alloc(rt->store, session_of(session), desc, handle);

	if (rc != 0)
		alloc_error(rt, session_of(session), desc, rc, "alloc", err);
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
		rc = gpu_mem_upload(rt, (char *)io->dp_addr + offset, buf, len);
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
		rc = gpu_mem_download(rt, buf, (const char *)io->dp_addr + offset, len);
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
};

static int acquire_inputs(struct rt_runtime *rt, uint64_t session, const char *op_name,
			  const uint64_t *inputs, int n_in, struct exec_args *args, char *err)
{
	for (int i = 0; i < n_in; i++) {
		int rc = tn_store_acquire(rt->store, session, inputs[i], &args->refs[i],
					  &args->in[i]);
		if (rc != 0) {
			set_err(err, "%s: input %d (tensor 0x%" PRIx64 "): %s", op_name, i,
				inputs[i], dj_strerror(rc));
			return rc;
		}
		args->n_acquired++;
	}
	return 0;
}

static void release_inputs(struct rt_runtime *rt, struct exec_args *args)
{
	for (int i = 0; i < args->n_acquired; i++)
		tn_store_release(rt->store, args->refs[i]);
	args->n_acquired = 0;
}

static int compute(struct rt_runtime *rt, const struct tn_op *op, struct exec_args *args,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err)
{
	if (rt->gpu_device < 0)
		return tn_op_cpu(op, args->in, n_in, attrs, out, err, CTL_ERRMSG_MAX);

	struct djg_ops *ctx = context_checkout(&rt->contexts);
	int rc = djg_ops_run(ctx, op, args->in, n_in, attrs, out, err, CTL_ERRMSG_MAX);
	/* The reply says the result exists: it must have been computed. */
	if (rc == 0)
		rc = djg_ops_sync(ctx);
	context_checkin(&rt->contexts, ctx);
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
	uint64_t sid = session_of(session);
	const struct tn_op *op = tn_op_find(op_name);
	struct exec_args args = {.n_acquired = 0};
	struct dj_tensor_desc in_desc[DJ_MAX_OP_ARGS];
	struct tn_op_attrs attrs;
	struct tn_store_ref *out_ref = NULL;
	struct dj_tensor out;
	uint64_t handle = 0;
	int rc;

	*n_out = 0;
	if (op == NULL) {
		set_err(err, "unknown operation '%s'", op_name);
		return -DJ_EUNKNOWN_OP;
	}
	if (n_in < 0 || n_in > DJ_MAX_OP_ARGS) {
		set_err(err, "%s: %d inputs (at most %d)", op_name, n_in, DJ_MAX_OP_ARGS);
		return -EINVAL;
	}
	rc = tn_op_attrs_from_json(op, json_attrs, &attrs, err, CTL_ERRMSG_MAX);
	if (rc == 0)
		rc = acquire_inputs(rt, sid, op_name, inputs, n_in, &args, err);
	for (int i = 0; rc == 0 && i < n_in; i++)
		in_desc[i] = args.in[i].desc;
	if (rc == 0)
		rc = tn_op_infer(op, in_desc, n_in, &attrs, &out_desc[0], err, CTL_ERRMSG_MAX);
	if (rc == 0 && op->inplace) {
		out = args.in[0];
	} else if (rc == 0) {
		/* Not zeroed: every operation writes its whole output (the
		 * poisoned-output test of test_remote_ops), and a failed
		 * one is freed below before anyone learns the handle. */
		rc = tn_store_alloc_output(rt->store, sid, &out_desc[0], &handle);
		if (rc != 0) {
			char what[64];

			snprintf(what, sizeof(what), "%s: output", op_name);
			alloc_error(rt, sid, &out_desc[0], rc, what, err);
		}
		if (rc == 0)
			rc = tn_store_acquire(rt->store, sid, handle, &out_ref, &out);
	}
	if (rc == 0)
		rc = compute(rt, op, &args, n_in, &attrs, &out, err);
	tn_store_release(rt->store, out_ref);
	release_inputs(rt, &args);
	if (rc != 0) {
		if (handle != 0)
			tn_store_free(rt->store, sid, handle);
		return rc;
	}
	outputs[0] = op->inplace ? inputs[0] : handle;
	*n_out = 1;
	return 0;
}

/* "memory": [{device, used, peak, limit, free, total, tensors}] */
static void stats_memory(struct rt_runtime *rt, cJSON *obj)
{
	struct rt_memory m[4];
	int n = rt_memory(rt, m, 4);
	cJSON *list = cJSON_AddArrayToObject(obj, "memory");

	for (int i = 0; i < n && list != NULL; i++) {
		cJSON *d = cJSON_CreateObject();

		cJSON_AddStringToObject(d, "device", m[i].device);
		cJSON_AddNumberToObject(d, "used", (double)m[i].used);
		cJSON_AddNumberToObject(d, "peak", (double)m[i].peak);
		cJSON_AddNumberToObject(d, "limit", (double)m[i].limit);
		cJSON_AddNumberToObject(d, "free", (double)m[i].free);
		cJSON_AddNumberToObject(d, "total", (double)m[i].total);
		cJSON_AddNumberToObject(d, "tensors", (double)m[i].tensors);
		cJSON_AddItemToArray(list, d);
	}
}

static void rt_stats(void *ctx, void *session, cJSON *obj)
{
	struct rt_runtime *rt = ctx;
	struct tn_store_usage usage;

	cJSON_AddStringToObject(obj, "compute", rt->description);
	if (session != NULL && tn_store_session_usage(rt->store, session_of(session), &usage) == 0) {
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
 * the device's memory capped by the store's own limit where one is set. */
static int rt_mem_info(void *ctx, struct ctl_mem_info *info)
{
	struct rt_runtime *rt = ctx;
	struct rt_memory m[DP_MAX_GPUS];
	int n = rt_memory(rt, m, DP_MAX_GPUS);

	memset(info, 0, sizeof(*info));
	info->n_devices = n;
	for (int i = 0; i < n; i++) {
		uint64_t total = m[i].total, avail = m[i].free;

		snprintf(info->devices[i].name, sizeof(info->devices[i].name), "%.*s",
			 (int)sizeof(m[i].device), m[i].device);
		info->devices[i].mem = rt->gpu_device >= 0 ? DJ_MEM_GPU : DJ_MEM_HOST;
		if (m[i].limit != 0) {
			total = total < m[i].limit ? total : m[i].limit;
			avail = m[i].used < m[i].limit && avail > m[i].limit - m[i].used ?
				m[i].limit - m[i].used : avail;
		}
		info->devices[i].total = total;
		info->devices[i].free = avail < total ? avail : total;
		info->store_bytes += m[i].used;
		info->store_limit = m[i].limit;
	}
	return 0;
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
};

const struct ctl_backend *rt_backend(void)
{
	return &runtime_backend;
}
