/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Data movement (permutations, transposes, the embedding's row gather) and
 * the integer matrix product, the one product cuBLAS does not offer for
 * int32/int64.
 */
#include "dtype.cuh"

namespace djk {

/* Elements move as raw bits of their size: a permutation never converts. */
template <size_t S> struct Bits;
template <> struct Bits<1> { using T = uint8_t; };
template <> struct Bits<2> { using T = uint16_t; };
template <> struct Bits<4> { using T = uint32_t; };
template <> struct Bits<8> { using T = uint64_t; };
template <> struct Bits<16> { using T = uint4; };

template <class F> cudaError_t dispatch_size(size_t size, F f)
{
	switch (size) {
	case 1: return f(Bits<1>::T{});
	case 2: return f(Bits<2>::T{});
	case 4: return f(Bits<4>::T{});
	case 8: return f(Bits<8>::T{});
	case 16: return f(Bits<16>::T{});
	default: return cudaErrorInvalidValue;
	}
}

struct Gather {
	int ndim;
	int64_t shape[DJ_MAX_DIMS];
	int64_t stride[DJ_MAX_DIMS];
};

template <class T>
__global__ void gather(const T *__restrict__ x, T *__restrict__ y, int64_t n, Gather g)
{
	for (int64_t t = global_thread<int64_t>(); t < n; t += global_stride<int64_t>()) {
		int64_t rest = t, off = 0;

#pragma unroll
		for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
			if (d >= g.ndim)
				continue;
			off += (rest % g.shape[d]) * g.stride[d];
			rest /= g.shape[d];
		}
		y[t] = x[off];
	}
}

/*
 * y[b][c][r] = x[b][r][c] through a shared-memory tile so that both the
 * reads and the writes are coalesced; the +1 column avoids bank conflicts.
 */
constexpr int tile = 32, tile_rows = 8;

template <class T>
__global__ void transpose_tiled(const T *__restrict__ x, T *__restrict__ y, int64_t batch,
				int64_t rows, int64_t cols)
{
	__shared__ T t[tile][tile + 1];
	int64_t c0 = (int64_t)blockIdx.x * tile, r0 = (int64_t)blockIdx.y * tile;

	for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
		const T *xb = x + b * rows * cols;
		T *yb = y + b * rows * cols;

		/* Fixed trip counts: the loads (and stores) are unrolled and in
		 * flight together. */
#pragma unroll
		for (int j = 0; j < tile; j += tile_rows) {
			int i = threadIdx.y + j;
			int64_t r = r0 + i, c = c0 + threadIdx.x;
			if (r < rows && c < cols)
				t[i][threadIdx.x] = xb[r * cols + c];
		}
		__syncthreads();
#pragma unroll
		for (int j = 0; j < tile; j += tile_rows) {
			int i = threadIdx.y + j;
			int64_t c = c0 + i, r = r0 + threadIdx.x;
			if (r < rows && c < cols)
				yb[c * rows + r] = t[threadIdx.x][i];
		}
		__syncthreads();
	}
}

/*
 * The walk is a batched 2-D transpose when, after the host collapsed it, it
 * reads [batch, rows, cols] row-major input column by column.
 */
static bool as_transpose(const struct djg_k_walk *w, int64_t *batch, int64_t *rows,
			 int64_t *cols)
{
	int d = w->ndim - 2;

	if (w->ndim < 2 || w->ndim > 3)
		return false;
	*cols = w->shape[d];
	*rows = w->shape[d + 1];
	*batch = w->ndim == 3 ? w->shape[0] : 1;
	return w->stride[0][d] == 1 && w->stride[0][d + 1] == *cols &&
	       (w->ndim == 2 || w->stride[0][0] == *rows * *cols);
}

/*
 * y[r] = w[idx[r]], a row of cols elements of E each (raw bits, 16 bytes at
 * a time where the rows allow). Rows go to blockDim.y threads per block,
 * columns to blockDim.x. An index outside [0, rows) is never dereferenced:
 * its row is zeroed and the lowest bad position kept in *bad.
 */
template <class E, class I>
__global__ void embedding(const I *__restrict__ idx, const E *__restrict__ w,
			  E *__restrict__ y, int64_t n, int64_t rows, int64_t cols,
			  unsigned long long *bad)
{
	for (int64_t r = (int64_t)blockIdx.x * blockDim.y + threadIdx.y; r < n;
	     r += (int64_t)gridDim.x * blockDim.y) {
		int64_t v = (int64_t)idx[r];
		E *dst = y + r * cols;

		if (v < 0 || v >= rows) {
			if (threadIdx.x == 0)
				atomicMin(bad, (unsigned long long)r);
			for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
				dst[c] = E{};
			continue;
		}
		const E *src = w + v * cols;

		for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
			dst[c] = src[c];
	}
}

constexpr int gemm_tile = 16;

/* Batches and row tiles beyond the grid's y/z limits are looped over. */
template <class T>
__global__ void int_gemm(const T *__restrict__ a, const T *__restrict__ b, T *__restrict__ c,
			 struct djg_k_int_gemm g)
{
	__shared__ T ta[gemm_tile][gemm_tile], tb[gemm_tile][gemm_tile];
	int64_t n = (int64_t)blockIdx.x * gemm_tile + threadIdx.x;
	int64_t row_tiles = (g.M + gemm_tile - 1) / gemm_tile;

	for (int64_t bt = blockIdx.z; bt < g.batch; bt += gridDim.z) {
		const T *ab = a + bt * g.batch_a, *bb = b + bt * g.batch_b;

		for (int64_t mt = blockIdx.y; mt < row_tiles; mt += gridDim.y) {
			int64_t m = mt * gemm_tile + threadIdx.y;
			unsigned long long acc = 0;

			for (int64_t k0 = 0; k0 < g.K; k0 += gemm_tile) {
				int64_t ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;

				ta[threadIdx.y][threadIdx.x] =
					m < g.M && ka < g.K ? ab[m * g.sak + ka] : T(0);
				tb[threadIdx.y][threadIdx.x] =
					n < g.N && kb < g.K ? bb[kb * g.sbk + n * g.sbn] : T(0);
				__syncthreads();
#pragma unroll
				for (int k = 0; k < gemm_tile; k++)
					acc += (unsigned long long)(long long)ta[threadIdx.y][k] *
					       (unsigned long long)(long long)tb[k][threadIdx.x];
				__syncthreads();
			}
			if (m < g.M && n < g.N)
				c[bt * g.M * g.N + m * g.N + n] = (T)(long long)acc;
		}
	}
}

static unsigned tiles(int64_t n, int per)
{
	return (unsigned)((n + per - 1) / per);
}

/* A grid y or z extent: at most 65535, the kernels loop over the rest. */
static unsigned grid_extent(int64_t count)
{
	return (unsigned)std::max<int64_t>(1, std::min<int64_t>(count, 65535));
}

} /* namespace djk */

using namespace djk;

extern "C" int djg_k_permute(size_t elem_size, const void *x, void *y,
			     const struct djg_k_walk *walk, djg_k_stream_t stream)
{
	return dispatch_size(elem_size, [&](auto tag) {
		using T = decltype(tag);
		int64_t n = 1, batch, rows, cols;
		Gather g = {};

		for (int d = 0; d < walk->ndim; d++)
			n *= walk->shape[d];
		if (n == 0)
			return cudaSuccess;
		/* Tile rows/cols must fit gridDim.y (65535 tiles of 32). */
		if (as_transpose(walk, &batch, &rows, &cols) && rows / tile < 65535) {
			dim3 grid(tiles(cols, tile), tiles(rows, tile), grid_extent(batch));
			transpose_tiled<<<grid, dim3(tile, tile_rows), 0, stream>>>(
				(const T *)x, (T *)y, batch, rows, cols);
			return cudaGetLastError();
		}
		g.ndim = walk->ndim;
		for (int d = 0; d < walk->ndim; d++) {
			g.shape[d] = walk->shape[d];
			g.stride[d] = walk->stride[0][d];
		}
		gather<<<grid_for(n), block_threads, 0, stream>>>((const T *)x, (T *)y, n, g);
		return cudaGetLastError();
	});
}

/* The widest access (16, 8, 4, 2, 1 bytes) that divides a row and suits
 * both base addresses. */
static size_t row_access(const void *a, const void *b, size_t row_bytes)
{
	size_t size = 16;

	while (size > 1 && (row_bytes % size || ((uintptr_t)a | (uintptr_t)b) % size))
		size /= 2;
	return size;
}

extern "C" int djg_k_embedding(enum dj_dtype index_dtype, const void *idx, const void *weight,
			       void *y, int64_t n, int64_t rows, size_t row_bytes,
			       unsigned long long *bad, djg_k_stream_t stream)
{
	size_t access = row_access(weight, y, row_bytes);
	int64_t cols = (int64_t)(row_bytes / access);
	unsigned bx = cols >= 128 ? 128 : cols >= 64 ? 64 : 32;
	dim3 block(bx, block_threads / bx);

	if (n == 0)
		return cudaSuccess;
	return dispatch_size(access, [&](auto tag) {
		using E = decltype(tag);
		unsigned grid = grid_for(n, (int)block.y);

		if (index_dtype == DJ_DTYPE_INT32)
			embedding<<<grid, block, 0, stream>>>((const int32_t *)idx, (const E *)weight,
							      (E *)y, n, rows, cols, bad);
		else if (index_dtype == DJ_DTYPE_INT64)
			embedding<<<grid, block, 0, stream>>>((const int64_t *)idx, (const E *)weight,
							      (E *)y, n, rows, cols, bad);
		else
			return cudaErrorInvalidValue;
		return cudaGetLastError();
	});
}

extern "C" int djg_k_int_gemm(enum dj_dtype dtype, const void *a, const void *b, void *c,
			      const struct djg_k_int_gemm *g, djg_k_stream_t stream)
{
	dim3 grid(tiles(g->N, gemm_tile), grid_extent((g->M + gemm_tile - 1) / gemm_tile),
		  grid_extent(g->batch));
	dim3 block(gemm_tile, gemm_tile);

	if (g->batch == 0 || g->M == 0 || g->N == 0)
		return cudaSuccess;
	if (dtype == DJ_DTYPE_INT32)
		int_gemm<<<grid, block, 0, stream>>>((const int32_t *)a, (const int32_t *)b,
						     (int32_t *)c, *g);
	else if (dtype == DJ_DTYPE_INT64)
		int_gemm<<<grid, block, 0, stream>>>((const int64_t *)a, (const int64_t *)b,
						     (int64_t *)c, *g);
	else
		return cudaErrorInvalidValue;
	return cudaGetLastError();
}
