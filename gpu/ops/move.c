/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Moves between two CUDA devices of one server: device to device on one
 * GPU, cudaMemcpyPeerAsync where the GPUs reach each other (NVLink, PCIe
 * peer-to-peer), else staged through pinned host memory with the shared
 * pipeline of stage.c: copies out on the source's stream, copies in on the
 * destination's stream, an event per slot in each direction so that
 * neither stream waits for the host.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "djinn/common.h"
#include "common/djc.h"
#include "gpu_ops_internal.h"

int djg_ops_device(const struct djg_ops *ops)
{
	return ops != NULL ? ops->device : -1;
}

int djg_ops_device_pci(int device, char *pci, size_t len)
{
	char id[32];

	if (pci == NULL || len < 16)
		return -EINVAL;
	if (device < 0 || device >= djg_ops_device_count())
		return -DJ_ENOGPU;
	if (cudaDeviceGetPCIBusId(id, sizeof(id), device) != cudaSuccess) {
		cudaGetLastError();
		return -DJ_ENOGPU;
	}
	/* CUDA writes "00000000:17:00.0" in upper case; sysfs "0000:17:00.0". */
	const char *p = strlen(id) > 12 ? id + strlen(id) - 12 : id;

	snprintf(pci, len, "%s", p);
	for (char *c = pci; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	return 0;
}

int djg_ops_peer_access(int from, int to)
{
	int n = djg_ops_device_count(), can = 0;

	if (from < 0 || to < 0 || from >= n || to >= n)
		return -DJ_ENOGPU;
	if (from == to)
		return 1;
	if (cudaDeviceCanAccessPeer(&can, from, to) != cudaSuccess) {
		cudaGetLastError();
		return 0;
	}
	return can != 0;
}

int djg_ops_host_register(void *ptr, size_t bytes)
{
	if (ptr == NULL || bytes == 0)
		return -EINVAL;
	if (djg_ops_device_count() == 0)
		return -DJ_ENOGPU;
	return djg_ops_cuda_rc(cudaHostRegister(ptr, bytes, cudaHostRegisterPortable),
			       "cudaHostRegister(staging ring)");
}

void djg_ops_host_unregister(void *ptr)
{
	if (ptr != NULL && cudaHostUnregister(ptr) != cudaSuccess)
		cudaGetLastError();
}

/* Peer access both ways, once per pair of devices; "already enabled" is
 * success. Under a lock of its own: contexts of many threads ask. */
static int peer_enable(int a, int b)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static unsigned char enabled[64][64];
	int pair[2][2] = {{a, b}, {b, a}}, rc = 0;

	if (a >= 64 || b >= 64)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < 2 && rc == 0; i++) {
		int from = pair[i][0], to = pair[i][1];
		cudaError_t e;

		if (enabled[from][to])
			continue;
		rc = djg_ops_cuda_rc(cudaSetDevice(from), "cudaSetDevice");
		e = rc == 0 ? cudaDeviceEnablePeerAccess(to, 0) : cudaSuccess;
		if (e == cudaErrorPeerAccessAlreadyEnabled) {
			cudaGetLastError();
			e = cudaSuccess;
		}
		if (rc == 0)
			rc = djg_ops_cuda_rc(e, "cudaDeviceEnablePeerAccess");
		enabled[from][to] = rc == 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

int djg_ops_pool_share(struct djg_ops *ops, int peer)
{
	struct cudaMemAccessDesc desc = {
		.location = {.type = cudaMemLocationTypeDevice, .id = peer},
		.flags = cudaMemAccessFlagsProtReadWrite,
	};
	int rc;

	if (ops == NULL)
		return -EINVAL;
	if (peer == ops->device)
		return 0;
	if (djg_ops_peer_access(peer, ops->device) != 1)
		return -ENOTSUP;
	rc = peer_enable(peer, ops->device);
	return rc != 0 ? rc : djg_ops_cuda_rc(cudaMemPoolSetAccess(ops->pool, &desc, 1),
					       "cudaMemPoolSetAccess");
}

/* The events of a context's staged moves, on its device, made once. */
static int move_events(struct djg_ops *ops)
{
	int rc = 0;

	if (ops->move_events)
		return 0;
	rc = djg_ops_cuda_rc(cudaSetDevice(ops->device), "cudaSetDevice");
	for (int i = 0; rc == 0 && i < DJG_STAGE_MAX_SLOTS; i++) {
		rc = djg_ops_cuda_rc(cudaEventCreateWithFlags(&ops->move_out[i],
							      cudaEventDisableTiming),
				     "cudaEventCreate");
		if (rc == 0)
			rc = djg_ops_cuda_rc(cudaEventCreateWithFlags(&ops->move_in[i],
								      cudaEventDisableTiming),
					     "cudaEventCreate");
	}
	ops->move_events = rc == 0;
	return rc;
}

void djg_ops_move_fini(struct djg_ops *ops)
{
	for (int i = 0; i < DJG_STAGE_MAX_SLOTS; i++) {
		if (ops->move_out[i] != NULL)
			cudaEventDestroy(ops->move_out[i]);
		if (ops->move_in[i] != NULL)
			cudaEventDestroy(ops->move_in[i]);
	}
}

struct staged {
	struct djg_ops *from, *to;
};

static int staged_out(void *ctx, unsigned int slot, void *host, const void *src, size_t n)
{
	struct staged *m = ctx;
	int rc = djg_ops_cuda_rc(cudaSetDevice(m->from->device), "cudaSetDevice");

	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaMemcpyAsync(host, src, n, cudaMemcpyDeviceToHost,
						     m->from->stream), "cudaMemcpyAsync(out)");
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaEventRecord(m->from->move_out[slot], m->from->stream),
				     "cudaEventRecord");
	return rc;
}

static int staged_in(void *ctx, unsigned int slot, void *dst, const void *host, size_t n)
{
	struct staged *m = ctx;
	int rc = djg_ops_cuda_rc(cudaSetDevice(m->to->device), "cudaSetDevice");

	/* The destination's stream waits on the GPU, not the host, for the
	 * chunk to be out. */
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaStreamWaitEvent(m->to->stream, m->from->move_out[slot], 0),
				     "cudaStreamWaitEvent");
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaMemcpyAsync(dst, host, n, cudaMemcpyHostToDevice,
						     m->to->stream), "cudaMemcpyAsync(in)");
	if (rc == 0)
		rc = djg_ops_cuda_rc(cudaEventRecord(m->to->move_in[slot], m->to->stream),
				     "cudaEventRecord");
	return rc;
}

static int staged_wait(void *ctx, unsigned int slot)
{
	struct staged *m = ctx;

	return djg_ops_cuda_rc(cudaEventSynchronize(m->to->move_in[slot]), "cudaEventSynchronize");
}

static int staged_finish(void *ctx)
{
	struct staged *m = ctx;
	int a = djg_ops_sync(m->from), b = djg_ops_sync(m->to);

	return a != 0 ? a : b;
}

static const struct djg_stage_ops staged_ops = {
	.out = staged_out, .in = staged_in, .wait = staged_wait, .finish = staged_finish,
};

int djg_ops_move(struct djg_ops *from, struct djg_ops *to, void *dst, const void *src,
		 size_t bytes, enum djg_move_path path, const struct djg_stage_ring *ring,
		 uint64_t *chunks)
{
	struct staged m = {.from = from, .to = to};
	int rc;

	if (chunks != NULL)
		*chunks = 0;
	if (from == NULL || to == NULL || (bytes > 0 && (dst == NULL || src == NULL)))
		return -EINVAL;
	if (bytes == 0)
		return 0;
	switch (path) {
	case DJG_MOVE_D2D:
		if (from->device != to->device)
			return -ENOTSUP;
		rc = djg_ops_cuda_rc(cudaSetDevice(to->device), "cudaSetDevice");
		if (rc == 0)
			rc = djg_ops_cuda_rc(cudaMemcpyAsync(dst, src, bytes,
							     cudaMemcpyDeviceToDevice, to->stream),
					     "cudaMemcpyAsync(d2d)");
		return rc != 0 ? rc : djg_ops_sync(to);
	case DJG_MOVE_PEER:
		if (djg_ops_peer_access(from->device, to->device) != 1)
			return -ENOTSUP;
		rc = from->device == to->device ? 0 : peer_enable(from->device, to->device);
		if (rc == 0)
			rc = djg_ops_cuda_rc(cudaSetDevice(to->device), "cudaSetDevice");
		if (rc == 0)
			rc = djg_ops_cuda_rc(cudaMemcpyPeerAsync(dst, to->device, src, from->device,
								 bytes, to->stream),
					     "cudaMemcpyPeerAsync");
		return rc != 0 ? rc : djg_ops_sync(to);
	case DJG_MOVE_STAGED:
		rc = move_events(from);
		if (rc == 0)
			rc = move_events(to);
		return rc != 0 ? rc : djg_stage_run(&staged_ops, &m, ring, dst, src, bytes, chunks);
	}
	return -EINVAL;
}
