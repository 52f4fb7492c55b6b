/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_GPU_OPS_DTYPE_CUH
#define DJINN_GPU_OPS_DTYPE_CUH

/*
 * Device-side dtype plumbing shared by the kernels: how each storage type
 * loads into its compute type and stores back, the accumulator of
 * reductions, and a switch from enum dj_dtype to a C++ type.
 */

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels.h"

namespace djk {

/* 16-bit floats compute in float, like PyTorch; integers compute natively. */
template <class T> struct Num {
	using C = T;
	static __device__ C load(T v) { return v; }
	static __device__ T store(C c) { return c; }
	static __device__ T from_double(double d) { return (T)d; }
};
template <> struct Num<__half> {
	using C = float;
	static __device__ float load(__half v) { return __half2float(v); }
	static __device__ __half store(float c) { return __float2half_rn(c); }
	/* Rounded once from double: no double rounding through float. */
	static __device__ __half from_double(double d) { return __double2half(d); }
};
template <> struct Num<__nv_bfloat16> {
	using C = float;
	static __device__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
	static __device__ __nv_bfloat16 store(float c) { return __float2bfloat16_rn(c); }
	static __device__ __nv_bfloat16 from_double(double d) { return __double2bfloat16(d); }
};

template <class T> constexpr bool is_int = std::is_integral<T>::value;

/* Reductions accumulate floats in double and integers in 64 bits; unsigned so
 * that overflow wraps instead of being undefined. */
template <class T> struct Acc {
	using A = typename std::conditional<is_int<T>, unsigned long long, double>::type;
	static __device__ A load(T v)
	{
		if constexpr (is_int<T>)
			return (unsigned long long)(long long)v;
		else
			return (double)Num<T>::load(v);
	}
};

/* Store a finished accumulator into any output type. */
template <class Tout, class A> __device__ Tout acc_store(A acc, int mean, int64_t len)
{
	double v;

	if constexpr (std::is_same<A, unsigned long long>::value) {
		if (!mean && is_int<Tout>)
			return (Tout)(long long)acc; /* wraps into int32 */
		v = (double)(long long)acc;
	} else {
		v = acc;
	}
	if (mean)
		v /= (double)len;
	if constexpr (is_int<Tout>)
		return (Tout)(long long)v;
	else
		return Num<Tout>::from_double(v);
}

/* Call f(T{}) with the C++ type of dtype; cudaErrorInvalidValue if unknown. */
template <class F> cudaError_t dispatch(enum dj_dtype dtype, F f)
{
	switch (dtype) {
	case DJ_DTYPE_FLOAT32: return f(float{});
	case DJ_DTYPE_FLOAT16: return f(__half{});
	case DJ_DTYPE_BFLOAT16: return f(__nv_bfloat16{});
	case DJ_DTYPE_INT32: return f(int32_t{});
	case DJ_DTYPE_INT64: return f(int64_t{});
	default: return cudaErrorInvalidValue;
	}
}

template <class F> cudaError_t dispatch_float(enum dj_dtype dtype, F f)
{
	switch (dtype) {
	case DJ_DTYPE_FLOAT32: return f(float{});
	case DJ_DTYPE_FLOAT16: return f(__half{});
	case DJ_DTYPE_BFLOAT16: return f(__nv_bfloat16{});
	default: return cudaErrorInvalidValue;
	}
}

/* P elements moved as one 16-byte access. */
template <class T, int P> struct alignas(sizeof(T) * P) Pack {
	T v[P];
};

/* Elements per 16-byte vector of T. */
template <class T> constexpr int pack_of = 16 / sizeof(T) > 0 ? 16 / sizeof(T) : 1;

static inline bool aligned16(const void *p)
{
	return ((uintptr_t)p & 15) == 0;
}

constexpr int block_threads = 256;
/* Grid-stride kernels need no more blocks than this to fill any current GPU. */
constexpr int64_t max_blocks = 4096;

static inline unsigned grid_for(int64_t work, int per_block = block_threads)
{
	int64_t blocks = (work + per_block - 1) / per_block;

	if (blocks < 1)
		blocks = 1;
	return (unsigned)(blocks < max_blocks ? blocks : max_blocks);
}

/* Threads in a block for a row of len elements: whole warps, at most 256. */
static inline unsigned threads_for_row(int64_t len)
{
	int64_t t = (len + 31) / 32 * 32;

	if (t < 32)
		t = 32;
	return (unsigned)(t < block_threads ? t : block_threads);
}

template <class I> __device__ inline I global_thread()
{
	return (I)blockIdx.x * blockDim.x + threadIdx.x;
}

template <class I> __device__ inline I global_stride()
{
	return (I)gridDim.x * blockDim.x;
}

/* op(v) over the block, valid in every thread; @p scratch: 32 entries.
 * Block sizes are whole warps. */
template <class A, class Op> __device__ A block_reduce(A v, A *scratch, Op op, A identity)
{
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	int warps = (blockDim.x + 31) >> 5;

	for (int off = 16; off > 0; off >>= 1)
		v = op(v, __shfl_down_sync(0xffffffffu, v, off));
	__syncthreads(); /* scratch may still be read from a previous call */
	if (lane == 0)
		scratch[warp] = v;
	__syncthreads();
	if (warp == 0) {
		v = lane < warps ? scratch[lane] : identity;
		for (int off = 16; off > 0; off >>= 1)
			v = op(v, __shfl_down_sync(0xffffffffu, v, off));
		if (lane == 0)
			scratch[0] = v;
	}
	__syncthreads();
	return scratch[0];
}

template <class A> __device__ A block_sum(A v, A *scratch)
{
	return block_reduce(v, scratch, [](A x, A y) { return x + y; }, A(0));
}

__device__ inline float block_max(float v, float *scratch)
{
	return block_reduce(v, scratch, [](float x, float y) { return fmaxf(x, y); }, -INFINITY);
}

} /* namespace djk */

#endif /* DJINN_GPU_OPS_DTYPE_CUH */
