/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The runtime's devices: the device list parsed from --gpu, each device's
 * memory (a store backend per device: CUDA's stream-ordered pool, host
 * memory, or host memory pretending to be a GPU of a given size), its pool
 * of execution contexts (one CUDA stream each), its load counters, and the
 * moves between two devices (device to device, peer, or staged through a
 * pinned ring on the destination's NUMA node).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/common.h"
#include "common/cli.h"
#include "common/djc.h"
#include "rt_internal.h"

#define DEFAULT_SIM_CAPACITY (UINT64_C(1) << 30)
#define DEFAULT_SLOT_BYTES ((size_t)4 << 20)
#define DEFAULT_SLOTS 4
#define SIM_HEADER 64

/* ---- the device list ------------------------------------------------------ */

static int parse_sim(const char *spec, struct rt_device_spec *out, char *err, size_t len)
{
	const char *p = spec + 4;
	char *end;
	long n = strtol(p, &end, 10);

	if (end == p || n < 1 || n > RT_MAX_DEVICES || (*end != '\0' && *end != ':'))
		return djc_errf(-EINVAL, err, len, NULL, "'%s': sim:N[:SIZE] takes N from 1 to %d",
				 spec, RT_MAX_DEVICES);
	out->kind = RT_DEVICE_SIM;
	out->n = (int)n;
	out->sim_capacity = DEFAULT_SIM_CAPACITY;
	if (*end == ':' && djc_parse_size(end + 1, 4096, UINT64_C(1) << 40, &out->sim_capacity) != 0)
		return djc_errf(-EINVAL, err, len, NULL, "'%s': SIZE must be 4K to 1T (K/M/G/T suffix)", spec);
	return 0;
}

static int parse_list(const char *spec, int n_gpus, struct rt_device_spec *out, char *err,
		      size_t len)
{
	const char *p = spec;

	out->kind = RT_DEVICE_CUDA;
	while (1) {
		char *end;
		long index = strtol(p, &end, 10);

		if (end == p || *p == '-' || *p == '+' || index < 0 || (*end != ',' && *end != '\0'))
			return djc_errf(-EINVAL, err, len, NULL, "'%s' is not auto, all, none, a GPU index "
					 "or a list of them (0,2,3), nor sim:N", spec);
		if (out->n == RT_MAX_DEVICES)
			return djc_errf(-EINVAL, err, len, NULL, "'%s': more than %d devices", spec,
					 RT_MAX_DEVICES);
		if (index >= n_gpus)
			return djc_errf(-DJ_ENOGPU, err, len, NULL, "'%s': no such CUDA device (this "
					 "machine has %d)", spec, n_gpus);
		out->ordinals[out->n++] = (int)index;
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

int rt_device_spec_parse(const char *spec, int n_gpus, struct rt_device_spec *out, char *err,
			 size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (spec == NULL || spec[0] == '\0' || strcmp(spec, "auto") == 0 ||
	    strcmp(spec, "all") == 0) {
		if (n_gpus <= 0 && spec != NULL && strcmp(spec, "all") == 0)
			return djc_errf(-DJ_ENOGPU, err, errlen, NULL, "'%s': this machine has no CUDA "
					 "device", spec);
		if (n_gpus <= 0) {
			out->kind = RT_DEVICE_HOST;
			out->n = 1;
			return 0;
		}
		out->kind = RT_DEVICE_CUDA;
		out->n = n_gpus < RT_MAX_DEVICES ? n_gpus : RT_MAX_DEVICES;
		for (int i = 0; i < out->n; i++)
			out->ordinals[i] = i;
		return 0;
	}
	if (strcmp(spec, "none") == 0 || strcmp(spec, "host") == 0) {
		out->kind = RT_DEVICE_HOST;
		out->n = 1;
		return 0;
	}
	if (strncmp(spec, "sim:", 4) == 0)
		return parse_sim(spec, out, err, errlen);
	return parse_list(spec, n_gpus, out, err, errlen);
}

const char *rt_device_kind_name(enum rt_device_kind kind)
{
	switch (kind) {
	case RT_DEVICE_HOST: return "host";
	case RT_DEVICE_CUDA: return "gpu";
	case RT_DEVICE_SIM: return "sim";
	}
	return "?";
}

/* "cuda:N" for the first use of GPU N, "cuda:N.k" for its k-th alias. */
void rt_device_spec_name(const struct rt_device_spec *spec, int i, char *name, size_t len)
{
	char text[32];
	int k = 0;

	if (spec->kind != RT_DEVICE_CUDA) {
		if (spec->kind == RT_DEVICE_SIM)
			snprintf(text, sizeof(text), "sim:%d", i);
		else
			snprintf(text, sizeof(text), "host");
		snprintf(name, len, "%s", text);
		return;
	}
	for (int j = 0; j < i; j++)
		k += spec->ordinals[j] == spec->ordinals[i];
	if (k == 0)
		snprintf(text, sizeof(text), "cuda:%d", spec->ordinals[i]);
	else
		snprintf(text, sizeof(text), "cuda:%d.%d", spec->ordinals[i], k);
	/* Ordinals and aliases stay below RT_MAX_DEVICES: it always fits. */
	snprintf(name, len, "%.15s", text);
}

/* ---- memory of each kind ---------------------------------------------------- */

/* The pool hands back memory other sessions freed: zeros where asked, on
 * the allocation's own stream, so they land before the sync below makes
 * the memory usable anywhere. */
static int cuda_alloc(void *ctx, size_t bytes, int zero, void **ptr)
{
	struct rt_device *d = ctx;
	struct rt_ctx *held = rt_batch_ctx(d);
	int rc;

	/* In a batch: on its stream, from the shared pool; its flush makes
	 * the memory usable elsewhere (nobody else knows it before). */
	if (held != NULL) {
		rc = djg_ops_alloc_from(held->ops, d->mem_ctx, bytes, ptr);
		if (rc == 0 && zero)
			rc = djg_ops_zero(held->ops, *ptr, bytes);
		if (rc != 0 && *ptr != NULL)
			djg_ops_free(held->ops, *ptr);
		return rc;
	}
	pthread_mutex_lock(&d->mem_lock);
	rc = djg_ops_alloc(d->mem_ctx, bytes, ptr);
	if (rc == 0 && zero)
		rc = djg_ops_zero(d->mem_ctx, *ptr, bytes);
	/* Other contexts' streams use it next: make it usable everywhere. */
	if (rc == 0)
		rc = djg_ops_sync(d->mem_ctx);
	pthread_mutex_unlock(&d->mem_lock);
	return rc;
}

static void cuda_free(void *ctx, void *ptr)
{
	struct rt_device *d = ctx;
	struct rt_ctx *held = rt_batch_ctx(d);

	/* In a batch: after the batch's work queued so far, on its stream. */
	if (held != NULL) {
		djg_ops_free(held->ops, ptr);
		return;
	}
	pthread_mutex_lock(&d->mem_lock);
	djg_ops_free(d->mem_ctx, ptr);
	pthread_mutex_unlock(&d->mem_lock);
}

static int cuda_upload(void *ctx, void *dst, const void *src, size_t bytes)
{
	struct rt_device *d = ctx;
	struct rt_ctx *held = rt_batch_ctx(d);
	int rc;

	/* In a batch: after its work on the tensor (copy_in waits for it). */
	if (held != NULL)
		return djg_ops_copy_in(held->ops, dst, src, bytes);
	pthread_mutex_lock(&d->mem_lock);
	rc = djg_ops_copy_in(d->mem_ctx, dst, src, bytes);
	pthread_mutex_unlock(&d->mem_lock);
	return rc;
}

static int cuda_download(void *ctx, void *dst, const void *src, size_t bytes)
{
	struct rt_device *d = ctx;
	struct rt_ctx *held = rt_batch_ctx(d);
	int rc;

	/* In a batch: once the kernels queued before it have written it. */
	if (held != NULL)
		return djg_ops_copy_out(held->ops, dst, src, bytes);
	pthread_mutex_lock(&d->mem_lock);
	rc = djg_ops_copy_out(d->mem_ctx, dst, src, bytes);
	pthread_mutex_unlock(&d->mem_lock);
	return rc;
}

/* A simulated device: host memory (the host backend's, zeroed the same
 * way), refused with -ENOMEM past its capacity as a full GPU refuses. The
 * size sits in a header in front, for the accounting at free. */
static int sim_alloc(void *ctx, size_t bytes, int zero, void **ptr)
{
	struct rt_device *d = ctx;
	const struct tn_store_backend *host = tn_store_host_backend();
	uint64_t used = atomic_fetch_add(&d->sim_used, bytes) + bytes;
	void *raw;
	int rc;

	if (used > d->capacity || bytes > SIZE_MAX - SIM_HEADER) {
		atomic_fetch_sub(&d->sim_used, bytes);
		return -ENOMEM;
	}
	rc = host->alloc(host->ctx, bytes + SIM_HEADER, zero, &raw);
	if (rc != 0) {
		atomic_fetch_sub(&d->sim_used, bytes);
		return rc;
	}
	*(size_t *)raw = bytes;
	*ptr = (char *)raw + SIM_HEADER;
	return 0;
}

static void sim_free(void *ctx, void *ptr)
{
	struct rt_device *d = ctx;
	const struct tn_store_backend *host = tn_store_host_backend();
	void *raw = (char *)ptr - SIM_HEADER;

	atomic_fetch_sub(&d->sim_used, *(size_t *)raw);
	host->free(host->ctx, raw);
}

static int host_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
	memcpy(dst, src, bytes);
	return 0;
}

int rt_device_upload(struct rt_device *d, void *dst, const void *src, size_t bytes)
{
	return d->backend.upload(d->backend.ctx, dst, src, bytes);
}

int rt_device_download(struct rt_device *d, void *dst, const void *src, size_t bytes)
{
	return d->backend.download(d->backend.ctx, dst, src, bytes);
}

/* ---- contexts ------------------------------------------------------------- */

/* A free context of d, waiting for one where wait is set; NULL: none. */
static struct rt_ctx *checkout(struct rt_device *d, int wait)
{
	struct rt_ctx_pool *pool = &d->pool;
	struct rt_ctx *ctx = NULL;

	atomic_fetch_add(&d->waiting, 1);
	pthread_mutex_lock(&pool->lock);
	while (wait && pool->n_free == 0)
		pthread_cond_wait(&pool->available, &pool->lock);
	if (pool->n_free > 0)
		ctx = pool->free_list[--pool->n_free];
	pthread_mutex_unlock(&pool->lock);
	atomic_fetch_sub(&d->waiting, 1);
	if (ctx != NULL)
		atomic_fetch_add(&d->running, 1);
	return ctx;
}

struct rt_ctx *rt_ctx_checkout(struct rt_device *d)
{
	return checkout(d, 1);
}

struct rt_ctx *rt_ctx_try_checkout(struct rt_device *d)
{
	return checkout(d, 0);
}

void rt_ctx_checkin(struct rt_device *d, struct rt_ctx *ctx)
{
	struct rt_ctx_pool *pool = &d->pool;

	atomic_fetch_sub(&d->running, 1);
	pthread_mutex_lock(&pool->lock);
	pool->free_list[pool->n_free++] = ctx;
	pthread_cond_signal(&pool->available);
	pthread_mutex_unlock(&pool->lock);
}

static int pool_create(struct rt_device *d, int n_contexts)
{
	struct rt_ctx_pool *pool = &d->pool;
	int rc = 0;

	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->available, NULL);
	for (int i = 0; i < n_contexts && rc == 0; i++) {
		struct rt_ctx *c = &pool->all[i];

		if (d->kind == RT_DEVICE_CUDA)
			rc = djg_ops_create(d->ordinal, &c->ops);
		if (rc == 0) {
			pool->free_list[pool->n_free++] = c;
			pool->n_all++;
		}
	}
	return rc;
}

static void ring_free(struct rt_ctx *c)
{
	if (c->ring_registered)
		djg_ops_host_unregister(c->ring.host);
	tp_free(c->ring.host, c->ring_bytes);
	memset(&c->ring, 0, sizeof(c->ring));
	c->ring_registered = 0;
}

static void pool_destroy(struct rt_device *d)
{
	for (int i = 0; i < d->pool.n_all; i++) {
		ring_free(&d->pool.all[i]);
		djg_ops_destroy(d->pool.all[i].ops);
	}
	d->pool.n_all = d->pool.n_free = 0;
}

/* ---- devices ---------------------------------------------------------------- */

static int cuda_setup(struct rt_device *d)
{
	int rc = djg_ops_create(d->ordinal, &d->mem_ctx);

	d->backend = (struct tn_store_backend){
		.name = d->name, .mem = DJ_MEM_GPU, .ctx = d,
		.alloc = cuda_alloc, .free = cuda_free,
		.upload = cuda_upload, .download = cuda_download,
	};
	return rc;
}

static void sim_setup(struct rt_device *d, uint64_t capacity)
{
	d->capacity = capacity;
	d->backend = (struct tn_store_backend){
		.name = d->name, .mem = DJ_MEM_HOST, .ctx = d,
		.alloc = sim_alloc, .free = sim_free, .upload = host_copy, .download = host_copy,
	};
}

/* The machine's nodes, the GPUs served (node from sysfs by PCI address),
 * then DJINN_TOPOLOGY over them. */
static void topology_read(struct rt_runtime *rt, const struct rt_device_spec *spec)
{
	char err[160];
	int rc;

	tp_topology_init(&rt->topo);
	tp_read_nodes(&rt->topo);
	for (int i = 0; spec->kind == RT_DEVICE_CUDA && i < rt->n_devices; i++) {
		struct rt_device *d = &rt->devices[i];
		char pci[32] = "";

		if (strchr(d->name, '.') != NULL)
			continue; /* an alias: the GPU is listed once */
		djg_ops_device_pci(d->ordinal, pci, sizeof(pci));
		tp_add_gpu(&rt->topo, d->name, pci, -1);
	}
	rc = tp_from_env(&rt->topo, err, sizeof(err));
	if (rc < 0)
		DJC_LOG(DJ_LOG_WARN, "runtime", "DJINN_TOPOLOGY ignored: %s", err);
	for (int i = 0; i < rt->n_devices; i++) {
		const struct tp_gpu *g = tp_gpu_find(&rt->topo, rt->devices[i].name);

		rt->devices[i].numa_node = g != NULL ? g->node : -1;
	}
}

static void describe(struct rt_runtime *rt)
{
	size_t off = 0;

	for (int i = 0; i < rt->n_devices && off < sizeof(rt->description); i++)
		off += (size_t)snprintf(rt->description + off, sizeof(rt->description) - off,
					"%s%s", i > 0 ? ", " : "", rt->devices[i].name);
	if (off < sizeof(rt->description))
		snprintf(rt->description + off, sizeof(rt->description) - off, " (%s)",
			 rt->devices[0].kind == RT_DEVICE_CUDA ? "GPU memory, CUDA operations" :
			 rt->devices[0].kind == RT_DEVICE_SIM ?
			 "simulated GPUs: host memory, CPU operations" :
			 "host memory, CPU operations");
}

/* Tensors live in each GPU's store pool; GPUs that reach each other may
 * read and write one another's, so that moves between them are peer
 * copies on their link. A pair that cannot stays staged (logged). */
static void peers_share(struct rt_runtime *rt)
{
	for (int i = 0; i < rt->n_devices; i++)
		for (int j = 0; j < rt->n_devices; j++) {
			struct rt_device *d = &rt->devices[i], *peer = &rt->devices[j];
			int rc;

			if (d->kind != RT_DEVICE_CUDA || peer->kind != RT_DEVICE_CUDA ||
			    d->ordinal == peer->ordinal ||
			    djg_ops_peer_access(peer->ordinal, d->ordinal) != 1)
				continue;
			rc = djg_ops_pool_share(d->mem_ctx, peer->ordinal);
			if (rc != 0)
				DJC_LOG(DJ_LOG_WARN, "runtime", "%s cannot open its memory to %s: %s",
					d->name, peer->name, dj_strerror(rc));
		}
}

int rt_devices_create(struct rt_runtime *rt, const struct rt_config *config)
{
	int n_contexts = config->n_contexts > 0 ? config->n_contexts : 4;
	struct rt_device_spec spec;
	char err[160];
	int rc;

	rc = rt_device_spec_parse(config->gpu, djg_ops_device_count(), &spec, err, sizeof(err));
	if (rc != 0) {
		DJC_LOG(DJ_LOG_ERR, "runtime", "devices %s", err);
		return rc;
	}
	if (n_contexts > RT_MAX_CONTEXTS)
		n_contexts = RT_MAX_CONTEXTS;
	rt->move_mode = config->move_mode;
	rt->stage_slot_bytes = config->stage_slot_bytes > 0 ? config->stage_slot_bytes
							     : DEFAULT_SLOT_BYTES;
	rt->stage_slots = config->stage_slots >= 2 && config->stage_slots <= DJG_STAGE_MAX_SLOTS ?
			  config->stage_slots : DEFAULT_SLOTS;
	rt->n_devices = spec.n;
	for (int i = 0; i < spec.n && rc == 0; i++) {
		struct rt_device *d = &rt->devices[i];

		d->rt = rt;
		d->index = i;
		d->kind = spec.kind;
		d->ordinal = spec.kind == RT_DEVICE_CUDA ? spec.ordinals[i] : -1;
		d->numa_node = -1;
		pthread_mutex_init(&d->mem_lock, NULL);
		rt_device_spec_name(&spec, i, d->name, sizeof(d->name));
		if (spec.kind == RT_DEVICE_CUDA)
			rc = cuda_setup(d);
		else if (spec.kind == RT_DEVICE_SIM)
			sim_setup(d, spec.sim_capacity);
		else
			d->backend = *tn_store_host_backend();
		if (rc == 0)
			rc = pool_create(d, n_contexts);
	}
	if (rc != 0)
		return rc;
	peers_share(rt);
	topology_read(rt, &spec);
	describe(rt);
	return 0;
}

void rt_devices_destroy(struct rt_runtime *rt)
{
	for (int i = 0; i < rt->n_devices; i++) {
		struct rt_device *d = &rt->devices[i];

		pool_destroy(d);
		djg_ops_destroy(d->mem_ctx);
		d->mem_ctx = NULL;
	}
}

/* Free and total bytes of a device now: CUDA's reading for a GPU (aliases
 * share it), the capacity for a simulated one, MemAvailable for the host. */
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

void rt_device_mem(struct rt_device *d, uint64_t *free_bytes, uint64_t *total_bytes)
{
	uint64_t used;

	switch (d->kind) {
	case RT_DEVICE_CUDA:
		djg_ops_mem_info(d->ordinal, free_bytes, total_bytes);
		return;
	case RT_DEVICE_SIM:
		used = atomic_load(&d->sim_used);
		*total_bytes = d->capacity;
		*free_bytes = used < d->capacity ? d->capacity - used : 0;
		return;
	case RT_DEVICE_HOST:
		host_memory(free_bytes, total_bytes);
		return;
	}
}

/* ---- moves ------------------------------------------------------------------ */

enum djg_move_path rt_move_path(const struct rt_runtime *rt, const struct rt_device *s,
				const struct rt_device *d)
{
	if (s == d)
		return DJG_MOVE_D2D;
	if (rt->move_mode == RT_MOVE_STAGED || s->kind != RT_DEVICE_CUDA ||
	    d->kind != RT_DEVICE_CUDA)
		return DJG_MOVE_STAGED;
	if (s->ordinal == d->ordinal)
		return DJG_MOVE_D2D;
	return djg_ops_peer_access(s->ordinal, d->ordinal) == 1 ? DJG_MOVE_PEER
							     : DJG_MOVE_STAGED;
}

/* The destination context's ring, made on the first staged move: on the
 * node the topology gives for the pair, pinned for a GPU. */
static int ring_get(struct rt_runtime *rt, const struct rt_device *s, const struct rt_device *d,
		    struct rt_ctx *c)
{
	size_t bytes = rt->stage_slot_bytes * rt->stage_slots;
	int rc;

	if (c->ring.host != NULL)
		return 0;
	c->ring.host = tp_alloc_onnode(bytes, tp_stage_node(&rt->topo, s->name, d->name));
	if (c->ring.host == NULL)
		return -ENOMEM;
	c->ring_bytes = bytes;
	c->ring.slot_bytes = rt->stage_slot_bytes;
	c->ring.slots = rt->stage_slots;
	if (d->kind != RT_DEVICE_CUDA && s->kind != RT_DEVICE_CUDA)
		return 0;
	rc = djg_ops_host_register(c->ring.host, bytes);
	c->ring_registered = rc == 0;
	if (rc != 0)
		ring_free(c);
	return rc;
}

static int sim_out(void *ctx, unsigned int slot, void *host, const void *src, size_t n)
{
	memcpy(host, src, n);
	return 0;
}

static int sim_in(void *ctx, unsigned int slot, void *dst, const void *host, size_t n)
{
	memcpy(dst, host, n);
	return 0;
}

static int sim_done(void *ctx)
{
	return 0;
}

static int sim_wait(void *ctx, unsigned int slot)
{
	return 0;
}

/* Simulated (and host) devices run the very pipeline CUDA runs, with
 * memcpy for each copy. */
static const struct djg_stage_ops sim_stage_ops = {
	.out = sim_out, .in = sim_in, .wait = sim_wait, .finish = sim_done,
};

static int move_run(struct rt_runtime *rt, struct rt_device *s, struct rt_device *d,
		    struct rt_ctx *cs, struct rt_ctx *cd, void *dst, const void *src, size_t bytes,
		    enum djg_move_path path)
{
	int rc = 0;

	if (path == DJG_MOVE_STAGED)
		rc = ring_get(rt, s, d, cd);
	if (rc != 0)
		return rc;
	if (s->kind == RT_DEVICE_CUDA && d->kind == RT_DEVICE_CUDA)
		return djg_ops_move(cs->ops, cd->ops, dst, src, bytes, path, &cd->ring, NULL);
	if (s->kind == RT_DEVICE_CUDA || d->kind == RT_DEVICE_CUDA)
		return -ENOTSUP; /* a runtime serves GPUs or host memory, not both */
	if (path != DJG_MOVE_STAGED) {
		memcpy(dst, src, bytes);
		return 0;
	}
	return djg_stage_run(&sim_stage_ops, NULL, &cd->ring, dst, src, bytes, NULL);
}

int rt_device_move(struct rt_runtime *rt, struct rt_device *s, struct rt_device *d, void *dst,
		   const void *src, size_t bytes, enum djg_move_path *path_out)
{
	enum djg_move_path path = rt_move_path(rt, s, d);
	/* Two pools, taken in device order: two moves in opposite directions
	 * never each hold the context the other waits for. */
	struct rt_device *first = s->index <= d->index ? s : d;
	struct rt_device *second = first == s ? d : s;
	/* A batch's work so far first: the source may be its output, and
	 * the contexts it holds go back to the pools this move takes from. */
	int rc = rt_batch_flush();
	struct rt_ctx *c1, *c2;

	if (rc != 0)
		return rc;
	c1 = rt_ctx_checkout(first);
	c2 = second != first ? rt_ctx_checkout(second) : c1;
	rc = move_run(rt, s, d, first == s ? c1 : c2, first == d ? c1 : c2, dst, src, bytes, path);
	if (c2 != c1)
		rt_ctx_checkin(second, c2);
	rt_ctx_checkin(first, c1);
	if (rc == 0) {
		atomic_fetch_add(&s->moves_out, 1);
		atomic_fetch_add(&d->moves_in, 1);
		atomic_fetch_add(&s->move_bytes_out, bytes);
		atomic_fetch_add(&d->move_bytes_in, bytes);
	}
	if (path_out != NULL)
		*path_out = path;
	return rc;
}
