/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The GPU operations API in a build without CUDA (-Dcuda=disabled): callers
 * link and run the same code and learn at run time that there is no GPU.
 */
#include <errno.h>
#include <stdio.h>

#include "djinn/common.h"
#include "djinn/gpu_ops.h"

int dj_gpu_ops_device_count(void)
{
	return 0;
}

int dj_gpu_ops_create(int device, struct dj_gpu_ops **ops)
{
	if (ops == NULL)
		return -EINVAL;
	*ops = NULL;
	return -DJ_ENOGPU;
}

void dj_gpu_ops_destroy(struct dj_gpu_ops *ops)
{
}

static int no_gpu(const struct dj_op *op, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: built without CUDA support", op ? op->name : "?");
	return -DJ_ENOGPU;
}

int dj_gpu_ops_run(struct dj_gpu_ops *ops, const struct dj_op *op, const struct dj_tensor *in,
		   int n_in, const struct dj_op_attrs *attrs, struct dj_tensor *out, char *err,
		   size_t errlen)
{
	return no_gpu(op, err, errlen);
}

int dj_gpu_ops_execute(struct dj_gpu_ops *ops, const struct dj_op *op,
		       const struct dj_tensor *in, int n_in, const struct dj_op_attrs *attrs,
		       struct dj_tensor *out, char *err, size_t errlen)
{
	return no_gpu(op, err, errlen);
}

int dj_gpu_ops_alloc(struct dj_gpu_ops *ops, size_t bytes, void **ptr)
{
	if (ptr)
		*ptr = NULL;
	return -DJ_ENOGPU;
}

void dj_gpu_ops_free(struct dj_gpu_ops *ops, void *ptr)
{
}

int dj_gpu_ops_copy_in(struct dj_gpu_ops *ops, void *dst_gpu, const void *src_host,
		       size_t bytes)
{
	return -DJ_ENOGPU;
}

int dj_gpu_ops_copy_out(struct dj_gpu_ops *ops, void *dst_host, const void *src_gpu,
			size_t bytes)
{
	return -DJ_ENOGPU;
}

int dj_gpu_ops_sync(struct dj_gpu_ops *ops)
{
	return -DJ_ENOGPU;
}

void *dj_gpu_ops_stream(struct dj_gpu_ops *ops)
{
	return NULL;
}
