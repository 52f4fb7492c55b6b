/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The GPU operations API in a build without CUDA (-Dcuda=disabled): callers
 * link and run the same code and learn at run time that there is no GPU.
 */
#include <errno.h>
#include <stdio.h>

#include "djinn/common.h"
#include "gpu/ops/gpu_ops.h"

int djg_ops_device_count(void)
{
	return 0;
}

int djg_ops_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes)
{
	*free_bytes = *total_bytes = 0;
	return -DJ_ENOGPU;
}

int djg_ops_create(int device, struct djg_ops **ops)
{
	if (ops == NULL)
		return -EINVAL;
	*ops = NULL;
	return -DJ_ENOGPU;
}

void djg_ops_destroy(struct djg_ops *ops)
{
}

static int no_gpu(const struct tn_op *op, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: built without CUDA support", op ? op->name : "?");
	return -DJ_ENOGPU;
}

int djg_ops_run(struct djg_ops *ops, const struct tn_op *op, const struct dj_tensor *in,
		   int n_in, const struct tn_op_attrs *attrs, struct dj_tensor *out, char *err,
		   size_t errlen)
{
	return no_gpu(op, err, errlen);
}

int djg_ops_execute(struct djg_ops *ops, const struct tn_op *op,
		       const struct dj_tensor *in, int n_in, const struct tn_op_attrs *attrs,
		       struct dj_tensor *out, char *err, size_t errlen)
{
	return no_gpu(op, err, errlen);
}

int djg_ops_alloc(struct djg_ops *ops, size_t bytes, void **ptr)
{
	if (ptr)
		*ptr = NULL;
	return -DJ_ENOGPU;
}

int djg_ops_alloc_from(struct djg_ops *ops, struct djg_ops *owner, size_t bytes, void **ptr)
{
	return djg_ops_alloc(ops, bytes, ptr);
}

int djg_ops_zero(struct djg_ops *ops, void *ptr, size_t bytes)
{
	return -DJ_ENOGPU;
}

void djg_ops_free(struct djg_ops *ops, void *ptr)
{
}

int djg_ops_copy_in(struct djg_ops *ops, void *dst_gpu, const void *src_host,
		       size_t bytes)
{
	return -DJ_ENOGPU;
}

int djg_ops_copy_out(struct djg_ops *ops, void *dst_host, const void *src_gpu,
			size_t bytes)
{
	return -DJ_ENOGPU;
}

int djg_ops_sync(struct djg_ops *ops)
{
	return -DJ_ENOGPU;
}

void *djg_ops_stream(struct djg_ops *ops)
{
	return NULL;
}

int djg_ops_device(const struct djg_ops *ops)
{
	return -1;
}

int djg_ops_device_pci(int device, char *pci, size_t len)
{
	return -DJ_ENOGPU;
}

int djg_ops_peer_access(int from, int to)
{
	return -DJ_ENOGPU;
}

int djg_ops_host_register(void *ptr, size_t bytes)
{
	return -DJ_ENOGPU;
}

void djg_ops_host_unregister(void *ptr)
{
}

int djg_ops_move(struct djg_ops *from, struct djg_ops *to, void *dst, const void *src,
		 size_t bytes, enum djg_move_path path, const struct djg_stage_ring *ring,
		 uint64_t *chunks)
{
	return -DJ_ENOGPU;
}

int djg_ops_pool_share(struct djg_ops *ops, int peer)
{
	return -DJ_ENOGPU;
}
