/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Reductions (sum, mean, argmax), softmax, layer and RMS normalisation.
 * Every one views its input as [outer, len, inner] and reduces the middle
 * axis:
 *  - inner == 1 (the reduced elements are contiguous): a block per row,
 *    threads striding along the row, then a block-wide combine;
 *  - inner > 1: a thread per output element, threads adjacent in inner so
 *    that each step of the loop over len reads coalesced memory.
 * Sum and mean also split long rows across blocks (partials in a caller's
 * workspace, then one warp per output adds them up) so that a whole-tensor
 * reduction fills the GPU; the result is deterministic run to run.
 */
#include <cmath>

#include "dtype.cuh"

namespace djk {

/* Enough blocks (rows case) or threads (columns case) to fill any current GPU. */
constexpr int64_t rows_blocks_wanted = 1024;
constexpr int64_t cols_threads_wanted = 262144;
constexpr int64_t max_splits = 65535; /* gridDim.y */
/* Shorter rows go a thread per row: a block per row would idle most lanes. */
constexpr int64_t min_row_for_block = 64;

static bool rows_mode(int64_t len, int64_t inner)
{
	return inner == 1 && len >= min_row_for_block;
}

struct ReducePlan {
	int64_t splits, chunk;
};

static int64_t div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static ReducePlan plan_reduce(int64_t outer, int64_t len, int64_t inner)
{
	int64_t outputs = outer * inner, splits;

	if (len == 0 || outputs == 0)
		return {1, len};
	if (rows_mode(len, inner))
		splits = std::min(div_up(rows_blocks_wanted, outputs), div_up(len, 4096));
	else
		splits = std::min(div_up(cols_threads_wanted, outputs), div_up(len, 32));
	splits = std::max<int64_t>(1, std::min(splits, max_splits));
	int64_t chunk = div_up(len, splits);
	return {div_up(len, chunk), chunk};
}

/* A split's partial into the workspace, or the finished output. */
template <class A, class Tout>
__device__ inline void reduce_put(A acc, A *partial, Tout *y, int64_t out_index, int mean,
				  int64_t len)
{
	if (partial)
		partial[out_index * gridDim.y + blockIdx.y] = acc;
	else
		y[out_index] = acc_store<Tout>(acc, mean, len);
}

template <class T, class Tout>
__global__ void reduce_rows(const T *__restrict__ x, Tout *__restrict__ y,
			    typename Acc<T>::A *__restrict__ partial, int64_t outer, int64_t len,
			    int64_t chunk, int mean)
{
	using A = typename Acc<T>::A;
	__shared__ A scratch[32];
	int64_t begin = blockIdx.y * chunk, end = min(len, begin + chunk);

	for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
		const T *r = x + row * len;
		A acc = 0;

#pragma unroll 8
		for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
			acc += Acc<T>::load(r[i]);
		acc = block_sum(acc, scratch);
		if (threadIdx.x == 0)
			reduce_put(acc, partial, y, row, mean, len);
	}
}

template <class T, class Tout>
__global__ void reduce_cols(const T *__restrict__ x, Tout *__restrict__ y,
			    typename Acc<T>::A *__restrict__ partial, int64_t outer, int64_t len,
			    int64_t inner, int64_t chunk, int mean)
{
	using A = typename Acc<T>::A;
	int64_t begin = blockIdx.y * chunk, end = min(len, begin + chunk);

	for (int64_t t = global_thread<int64_t>(); t < outer * inner;
	     t += global_stride<int64_t>()) {
		const T *p = x + (t / inner) * len * inner + t % inner;
		A acc = 0;

#pragma unroll 8
		for (int64_t r = begin; r < end; r++)
			acc += Acc<T>::load(p[r * inner]);
		reduce_put(acc, partial, y, t, mean, len);
	}
}

/* One warp per output adds its splits' partials in a fixed order. */
template <class A, class Tout>
__global__ void reduce_finish(const A *__restrict__ partial, Tout *__restrict__ y,
			      int64_t outputs, int64_t splits, int64_t len, int mean)
{
	int lane = threadIdx.x & 31;
	int64_t warp = global_thread<int64_t>() >> 5, warps = global_stride<int64_t>() >> 5;

	for (int64_t t = warp; t < outputs; t += warps) {
		A acc = 0;

		for (int64_t s = lane; s < splits; s += 32)
			acc += partial[t * splits + s];
		for (int off = 16; off > 0; off >>= 1)
			acc += __shfl_down_sync(0xffffffffu, acc, off);
		if (lane == 0)
			y[t] = acc_store<Tout>(acc, mean, len);
	}
}

template <class T, class Tout>
static cudaError_t launch_reduce(int mean, const T *x, Tout *y, int64_t outer, int64_t len,
				 int64_t inner, void *workspace, cudaStream_t s)
{
	using A = typename Acc<T>::A;
	ReducePlan p = plan_reduce(outer, len, inner);
	int64_t outputs = outer * inner;
	A *partial = p.splits > 1 ? (A *)workspace : nullptr;

	if (outputs == 0)
		return cudaSuccess;
	if (rows_mode(len, inner)) {
		dim3 grid((unsigned)std::min(outer, (int64_t)INT32_MAX), (unsigned)p.splits);
		reduce_rows<<<grid, threads_for_row(p.chunk), 0, s>>>(x, y, partial, outer, len,
									p.chunk, mean);
	} else {
		dim3 grid(grid_for(outputs), (unsigned)p.splits);
		reduce_cols<<<grid, block_threads, 0, s>>>(x, y, partial, outer, len, inner,
							   p.chunk, mean);
	}
	if (partial) {
		cudaError_t rc = cudaGetLastError();

		if (rc != cudaSuccess)
			return rc;
		reduce_finish<<<grid_for(outputs * 32), block_threads, 0, s>>>(
			partial, y, outputs, p.splits, len, mean);
	}
	return cudaGetLastError();
}

/* Running maximum and sum of exp(v - max), merged without overflow. */
struct MaxSum {
	float m, s;
};

__device__ inline MaxSum ms_add(MaxSum a, float v)
{
	if (v > a.m)
		return {v, a.s * expf(a.m - v) + 1.0f};
	/* exp(-inf - -inf) would be NaN: an element of -inf adds nothing. */
	return {a.m, a.s + (v == -INFINITY ? 0.0f : expf(v - a.m))};
}

__device__ inline MaxSum ms_merge(MaxSum a, MaxSum b)
{
	float m = fmaxf(a.m, b.m);

	if (m == -INFINITY)
		return {m, a.s + b.s};
	return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ MaxSum block_maxsum(MaxSum v, float *sm, float *ss)
{
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int warps = (blockDim.x + 31) >> 5;

	for (int off = 16; off > 0; off >>= 1)
		v = ms_merge(v, {__shfl_down_sync(0xffffffffu, v.m, off),
				 __shfl_down_sync(0xffffffffu, v.s, off)});
	__syncthreads();
	if (lane == 0) {
		sm[warp] = v.m;
		ss[warp] = v.s;
	}
	__syncthreads();
	if (warp == 0) {
		v = lane < warps ? MaxSum{sm[lane], ss[lane]} : MaxSum{-INFINITY, 0.0f};
		for (int off = 16; off > 0; off >>= 1)
			v = ms_merge(v, {__shfl_down_sync(0xffffffffu, v.m, off),
					 __shfl_down_sync(0xffffffffu, v.s, off)});
		if (lane == 0) {
			sm[0] = v.m;
			ss[0] = v.s;
		}
	}
	__syncthreads();
	return {sm[0], ss[0]};
}

/*
 * One row of a row kernel. Cached: load() reads the row from memory once
 * (16-byte accesses when vec) into shared memory as float, and every later
 * pass reads shared memory. Direct (rows too long to cache): each pass
 * re-reads memory, which the L2 serves in part.
 */
template <class T, bool Cached> struct Row {
	static constexpr int P = pack_of<T>; /* 4 or 8: whole float4s of cache */
	const T *__restrict__ x;
	T *__restrict__ y;
	float *cache;
	int64_t len;
	bool vec;

	__device__ void load() const
	{
		if (!Cached)
			return;
		if (vec) {
			for (int64_t pk = threadIdx.x; pk < len / P; pk += blockDim.x) {
				Pack<T, P> v = reinterpret_cast<const Pack<T, P> *>(x)[pk];
				float4 *c = reinterpret_cast<float4 *>(cache + pk * P);
#pragma unroll
				for (int j = 0; j < P; j += 4)
					c[j / 4] = make_float4(Num<T>::load(v.v[j]), Num<T>::load(v.v[j + 1]),
							       Num<T>::load(v.v[j + 2]),
							       Num<T>::load(v.v[j + 3]));
			}
		} else {
#pragma unroll 4
			for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
				cache[i] = Num<T>::load(x[i]);
		}
		__syncthreads();
	}

	__device__ float get(int64_t i) const
	{
		return Cached ? cache[i] : Num<T>::load(x[i]);
	}

	/* y[i] = f(row[i], i) over the row. */
	template <class F> __device__ void store(F f) const
	{
		if (Cached && vec) {
			for (int64_t pk = threadIdx.x; pk < len / P; pk += blockDim.x) {
				const float4 *c = reinterpret_cast<const float4 *>(cache + pk * P);
				int64_t i = pk * P;
				Pack<T, P> o;
#pragma unroll
				for (int j = 0; j < P; j += 4) {
					float4 v = c[j / 4];

					o.v[j] = Num<T>::store(f(v.x, i + j));
					o.v[j + 1] = Num<T>::store(f(v.y, i + j + 1));
					o.v[j + 2] = Num<T>::store(f(v.z, i + j + 2));
					o.v[j + 3] = Num<T>::store(f(v.w, i + j + 3));
				}
				reinterpret_cast<Pack<T, P> *>(y)[pk] = o;
			}
		} else {
#pragma unroll 4
			for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
				y[i] = Num<T>::store(f(get(i), i));
		}
		if (Cached)
			__syncthreads(); /* the next row overwrites the cache */
	}
};

/* Rows up to this many elements are cached (48 KiB: no opt-in needed). */
constexpr int64_t max_cached_row = 12288;

template <class T, bool Cached>
__global__ void softmax_rows(const T *x, T *y, int64_t outer, int64_t len, bool vec)
{
	extern __shared__ float row_cache[];
	__shared__ float sm[32], ss[32];

	for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
		Row<T, Cached> row = {x + r * len, y + r * len, row_cache, len, vec};

		row.load();
		if constexpr (Cached) {
			/* max, then exp once per element, kept in the cache */
			float max = -INFINITY, sum = 0.0f;

			for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
				max = fmaxf(max, row.get(i));
			max = block_max(max, sm);
			for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
				float e = expf(row.get(i) - max);

				row_cache[i] = e;
				sum += e;
			}
			float inv = 1.0f / block_sum(sum, ss); /* its barriers publish the cache */
			row.store([=](float e, int64_t) { return e * inv; });
		} else {
			/* one pass for max and sum: each pass re-reads memory */
			MaxSum acc = {-INFINITY, 0.0f};

#pragma unroll 4
			for (int64_t i = threadIdx.x; i < len; i += blockDim.x)
				acc = ms_add(acc, row.get(i));
			acc = block_maxsum(acc, sm, ss);
			float max = acc.m, inv = 1.0f / acc.s;
			row.store([=](float v, int64_t) { return expf(v - max) * inv; });
		}
	}
}

template <class T>
__global__ void softmax_cols(const T *__restrict__ x, T *__restrict__ y, int64_t outer,
			     int64_t len, int64_t inner)
{
	using N = Num<T>;

	for (int64_t t = global_thread<int64_t>(); t < outer * inner;
	     t += global_stride<int64_t>()) {
		int64_t base = (t / inner) * len * inner + t % inner;
		MaxSum acc = {-INFINITY, 0.0f};

		for (int64_t r = 0; r < len; r++)
			acc = ms_add(acc, N::load(x[base + r * inner]));
		float inv = 1.0f / acc.s;
		for (int64_t r = 0; r < len; r++)
			y[base + r * inner] = N::store(expf(N::load(x[base + r * inner]) - acc.m) * inv);
	}
}

/* Two passes over the row (mean, then centred variance) for stability;
 * rms_norm (Rms) skips the mean: its "variance" is the mean square. */
template <class T, bool Cached, bool Rms>
__global__ void layer_norm_rows(const T *x, const T *__restrict__ w, const T *__restrict__ b,
				T *y, int64_t rows, int64_t cols, float eps, bool vec)
{
	extern __shared__ float row_cache[];
	__shared__ float scratch[32];

	for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
		Row<T, Cached> row = {x + r * cols, y + r * cols, row_cache, cols, vec};
		float mean = 0.0f, q = 0.0f;

		row.load();
		if constexpr (!Rms) {
			float s = 0.0f;

#pragma unroll 4
			for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
				s += row.get(i);
			mean = block_sum(s, scratch) / (float)cols;
		}
#pragma unroll 4
		for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
			float d = row.get(i) - mean;
			q += d * d;
		}
		float rstd = 1.0f / sqrtf(block_sum(q, scratch) / (float)cols + eps);
		row.store([=](float v, int64_t i) {
			float o = (v - mean) * rstd;

			if (w)
				o *= Num<T>::load(w[i]);
			if (b)
				o += Num<T>::load(b[i]);
			return o;
		});
	}
}

/*
 * argmax: the value compared (float for the float types, exact for
 * integers) and which of two (value, index) pairs wins: NaN above all, then
 * the larger value, then the lower index; index -1 is "nothing yet".
 */
template <class T> struct ArgMax {
	using V = typename std::conditional<is_int<T>, T, float>::type;

	static __device__ V load(T x)
	{
		if constexpr (is_int<T>)
			return x;
		else
			return Num<T>::load(x);
	}

	static __device__ bool better(V va, int64_t ia, V vb, int64_t ib)
	{
		if (ia < 0 || ib < 0)
			return ib < 0 && ia >= 0;
		if constexpr (!is_int<T>) {
			bool a_nan = va != va, b_nan = vb != vb;

			if (a_nan || b_nan)
				return a_nan && (!b_nan || ia < ib);
		}
		return va > vb || (va == vb && ia < ib);
	}

	/* Over the warp; every lane ends with the warp's best. */
	static __device__ void warp_best(V &v, int64_t &i)
	{
		for (int off = 16; off > 0; off >>= 1) {
			V ov = __shfl_xor_sync(0xffffffffu, v, off);
			int64_t oi = __shfl_xor_sync(0xffffffffu, i, off);

			if (better(ov, oi, v, i)) {
				v = ov;
				i = oi;
			}
		}
	}
};

template <class T>
__global__ void argmax_rows(const T *__restrict__ x, int64_t *__restrict__ y, int64_t outer,
			    int64_t len)
{
	using A = ArgMax<T>;
	using V = typename A::V;
	__shared__ V best_v[32];
	__shared__ int64_t best_i[32];
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;

	for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
		const T *r = x + row * len;
		V v = V(0);
		int64_t i = -1;

		for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
			V c = A::load(r[j]);

			if (A::better(c, j, v, i)) {
				v = c;
				i = j;
			}
		}
		A::warp_best(v, i);
		__syncthreads(); /* the previous row's readers are done */
		if (lane == 0) {
			best_v[warp] = v;
			best_i[warp] = i;
		}
		__syncthreads();
		if (warp == 0) {
			v = lane < warps ? best_v[lane] : V(0);
			i = lane < warps ? best_i[lane] : -1;
			A::warp_best(v, i);
			if (lane == 0)
				y[row] = i;
		}
	}
}

/* A thread per output, walking len in order: the first best stays. */
template <class T>
__global__ void argmax_cols(const T *__restrict__ x, int64_t *__restrict__ y, int64_t outer,
			    int64_t len, int64_t inner)
{
	using A = ArgMax<T>;

	for (int64_t t = global_thread<int64_t>(); t < outer * inner;
	     t += global_stride<int64_t>()) {
		const T *p = x + (t / inner) * len * inner + t % inner;
		typename A::V v = A::load(p[0]);
		int64_t best = 0;

		for (int64_t j = 1; j < len; j++) {
			typename A::V c = A::load(p[j * inner]);

			if (A::better(c, j, v, best)) {
				v = c;
				best = j;
			}
		}
		y[t] = best;
	}
}

/* 16-byte row accesses need aligned rows: aligned bases, len a multiple. */
template <class T> static bool rows_vectorizable(const void *x, const void *y, int64_t len)
{
	return aligned16(x) && aligned16(y) && len % pack_of<T> == 0;
}

static unsigned row_grid(int64_t rows)
{
	return (unsigned)std::max<int64_t>(1, std::min(rows, (int64_t)INT32_MAX));
}

} /* namespace djk */

using namespace djk;

extern "C" size_t djg_k_reduce_workspace(int64_t outer, int64_t len, int64_t inner)
{
	ReducePlan p = plan_reduce(outer, len, inner);

	return p.splits > 1 ? (size_t)(outer * inner * p.splits) * 8 : 0;
}

extern "C" int djg_k_reduce(int mean, enum dj_dtype in_dtype, enum dj_dtype out_dtype,
			    const void *x, void *y, int64_t outer, int64_t len, int64_t inner,
			    void *workspace, djg_k_stream_t stream)
{
	return dispatch(in_dtype, [&](auto in_tag) {
		using T = decltype(in_tag);
		return dispatch(out_dtype, [&](auto out_tag) {
			using Tout = decltype(out_tag);
			return launch_reduce(mean, (const T *)x, (Tout *)y, outer, len, inner,
					     workspace, stream);
		});
	});
}

extern "C" int djg_k_softmax(enum dj_dtype dtype, const void *x, void *y, int64_t outer,
			     int64_t len, int64_t inner, djg_k_stream_t stream)
{
	return dispatch_float(dtype, [&](auto tag) {
		using T = decltype(tag);

		if (outer * inner == 0 || len == 0)
			return cudaSuccess;
		bool vec = rows_vectorizable<T>(x, y, len);

		if (rows_mode(len, inner) && len <= max_cached_row)
			softmax_rows<T, true><<<row_grid(outer), threads_for_row(len),
						len * sizeof(float), stream>>>(
				(const T *)x, (T *)y, outer, len, vec);
		else if (rows_mode(len, inner))
			softmax_rows<T, false><<<row_grid(outer), threads_for_row(len), 0, stream>>>(
				(const T *)x, (T *)y, outer, len, vec);
		else
			softmax_cols<<<grid_for(outer * inner), block_threads, 0, stream>>>(
				(const T *)x, (T *)y, outer, len, inner);
		return cudaGetLastError();
	});
}

template <class T, bool Rms>
static cudaError_t launch_norm(const T *x, const T *w, const T *b, T *y, int64_t rows,
			       int64_t cols, double eps, cudaStream_t s)
{
	bool vec = rows_vectorizable<T>(x, y, cols);

	if (cols <= max_cached_row)
		layer_norm_rows<T, true, Rms><<<row_grid(rows), threads_for_row(cols),
						cols * sizeof(float), s>>>(x, w, b, y, rows, cols,
									   (float)eps, vec);
	else
		layer_norm_rows<T, false, Rms><<<row_grid(rows), threads_for_row(cols), 0, s>>>(
			x, w, b, y, rows, cols, (float)eps, vec);
	return cudaGetLastError();
}

extern "C" int djg_k_layer_norm(int rms, enum dj_dtype dtype, const void *x, const void *weight,
				const void *bias, void *y, int64_t rows, int64_t cols,
				double eps, djg_k_stream_t stream)
{
	return dispatch_float(dtype, [&](auto tag) {
		using T = decltype(tag);

		if (rows == 0 || cols == 0)
			return cudaSuccess;
		if (rms)
			return launch_norm<T, true>((const T *)x, (const T *)weight, nullptr, (T *)y,
						    rows, cols, eps, stream);
		return launch_norm<T, false>((const T *)x, (const T *)weight, (const T *)bias,
					     (T *)y, rows, cols, eps, stream);
	});
}

extern "C" int djg_k_argmax(enum dj_dtype dtype, const void *x, int64_t *y, int64_t outer,
			    int64_t len, int64_t inner, djg_k_stream_t stream)
{
	return dispatch(dtype, [&](auto tag) {
		using T = decltype(tag);

		if (outer * inner == 0 || len == 0)
			return cudaSuccess;
		if (rows_mode(len, inner))
			argmax_rows<<<row_grid(outer), threads_for_row(len), 0, stream>>>(
				(const T *)x, y, outer, len);
		else
			argmax_cols<<<grid_for(outer * inner), block_threads, 0, stream>>>(
				(const T *)x, y, outer, len, inner);
		return cudaGetLastError();
	});
}
