/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Elementwise kernels: unary functions and broadcasting binary arithmetic.
 * Contiguous operands take a flat path with 16-byte vector loads; broadcast
 * operands walk the output shape with per-input strides (32-bit index
 * arithmetic whenever the tensor allows, because 64-bit division is slow).
 */
#include "dtype.cuh"

namespace djk {

__device__ inline float gelu(float x)
{
	return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

template <class T> struct UnaryFn {
	enum djg_k_unary_op op;

	__device__ T operator()(T in) const
	{
		using N = Num<T>;
		auto x = N::load(in);

		if constexpr (is_int<T>) {
			return x > 0 ? x : T(0); /* only relu accepts integers */
		} else {
			switch (op) {
			case DJG_K_RELU: return N::store(x > 0.0f ? x : (x == x ? 0.0f : x));
			case DJG_K_SIGMOID: return N::store(1.0f / (1.0f + expf(-x)));
			case DJG_K_TANH: return N::store(tanhf(x));
			case DJG_K_EXP: return N::store(expf(x));
			case DJG_K_LOG: return N::store(logf(x));
			case DJG_K_SQRT: return N::store(sqrtf(x));
			case DJG_K_GELU: return N::store(gelu(x));
			case DJG_K_SILU: return N::store(x / (1.0f + expf(-x)));
			}
			return N::store(x);
		}
	}
};

/* Integer arithmetic wraps (through unsigned) and never traps: x/0 gives 0. */
template <class T> __device__ T int_binary(enum djg_k_binary_op op, T a, T b)
{
	using U = typename std::make_unsigned<T>::type;

	switch (op) {
	case DJG_K_ADD: return (T)((U)a + (U)b);
	case DJG_K_SUB: return (T)((U)a - (U)b);
	case DJG_K_MUL: return (T)((U)a * (U)b);
	case DJG_K_DIV:
		if (b == 0)
			return 0;
		if (b == -1)
			return (T)(U(0) - (U)a); /* MIN / -1 wraps to MIN */
		return a / b;
	}
	return 0;
}

template <class T, class Tout> struct BinaryFn {
	enum djg_k_binary_op op;

	__device__ Tout operator()(T a, T b) const
	{
		if constexpr (is_int<T> && is_int<Tout>) {
			return int_binary(op, a, b);
		} else if constexpr (is_int<T>) {
			/* True division of integers, as torch.div: exact in double. */
			return Num<Tout>::from_double((double)a / (double)b);
		} else {
			float x = Num<T>::load(a), y = Num<T>::load(b), r = 0.0f;

			switch (op) {
			case DJG_K_ADD: r = x + y; break;
			case DJG_K_SUB: r = x - y; break;
			case DJG_K_MUL: r = x * y; break;
			case DJG_K_DIV: r = x / y; break;
			}
			return Num<Tout>::store(r);
		}
	}
};

template <int P, class T, class F>
__global__ void unary_flat(const T *__restrict__ x, T *__restrict__ y, int64_t n, F f)
{
	int64_t packs = n / P;
	const Pack<T, P> *xv = reinterpret_cast<const Pack<T, P> *>(x);
	Pack<T, P> *yv = reinterpret_cast<Pack<T, P> *>(y);

	for (int64_t p = global_thread<int64_t>(); p < packs; p += global_stride<int64_t>()) {
		Pack<T, P> v = xv[p];
#pragma unroll
		for (int i = 0; i < P; i++)
			v.v[i] = f(v.v[i]);
		yv[p] = v;
	}
	int64_t tail = packs * P + global_thread<int64_t>();
	if (tail < n)
		y[tail] = f(x[tail]);
}

template <int P, class T, class Tout, class F>
__global__ void binary_flat(const T *__restrict__ a, const T *__restrict__ b,
			    Tout *__restrict__ y, int64_t n, F f)
{
	int64_t packs = n / P;
	const Pack<T, P> *av = reinterpret_cast<const Pack<T, P> *>(a);
	const Pack<T, P> *bv = reinterpret_cast<const Pack<T, P> *>(b);
	Pack<Tout, P> *yv = reinterpret_cast<Pack<Tout, P> *>(y);

	for (int64_t p = global_thread<int64_t>(); p < packs; p += global_stride<int64_t>()) {
		Pack<T, P> va = av[p], vb = bv[p];
		Pack<Tout, P> out;
#pragma unroll
		for (int i = 0; i < P; i++)
			out.v[i] = f(va.v[i], vb.v[i]);
		yv[p] = out;
	}
	int64_t tail = packs * P + global_thread<int64_t>();
	if (tail < n)
		y[tail] = f(a[tail], b[tail]);
}

/* Broadcast walk with index type I (uint32_t when every offset fits). */
template <class I> struct Walk {
	int ndim;
	I shape[DJ_MAX_DIMS];
	I stride[2][DJ_MAX_DIMS];
};

template <class I> static Walk<I> walk_as(const struct djg_k_walk *w)
{
	Walk<I> out = {};

	out.ndim = w->ndim;
	for (int d = 0; d < w->ndim; d++) {
		out.shape[d] = (I)w->shape[d];
		out.stride[0][d] = (I)w->stride[0][d];
		out.stride[1][d] = (I)w->stride[1][d];
	}
	return out;
}

/* Offsets of output element t in a and b. */
template <class I> __device__ inline void walk_offsets(const Walk<I> &w, I t, I &oa, I &ob)
{
	I rest = t;

	oa = 0;
	ob = 0;
#pragma unroll
	for (int d = DJ_MAX_DIMS - 1; d >= 0; d--) {
		if (d >= w.ndim)
			continue;
		I c = rest % w.shape[d];
		rest /= w.shape[d];
		oa += c * w.stride[0][d];
		ob += c * w.stride[1][d];
	}
}

template <class I, class T, class Tout, class F>
__global__ void binary_walk(const T *a, const T *b, Tout *y, I n, Walk<I> w, F f)
{
	for (I t = global_thread<I>(); t < n; t += global_stride<I>()) {
		I oa, ob;

		walk_offsets(w, t, oa, ob);
		y[t] = f(a[oa], b[ob]);
	}
}

/* P elements along the last dimension from one input: a vector when the
 * input runs along it, one value repeated when it is broadcast there. */
template <int P, class T> __device__ inline Pack<T, P> load_run(const T *p, bool runs)
{
	Pack<T, P> v;

	if (runs)
		return *reinterpret_cast<const Pack<T, P> *>(p);
#pragma unroll
	for (int i = 0; i < P; i++)
		v.v[i] = *p;
	return v;
}

/* The broadcast walk P outputs at a time (the last dimension a multiple of
 * P): one index decomposition and 16-byte accesses per P elements. The
 * common bias add ([M, N] + [N]) takes this path. */
template <int P, class I, class T, class Tout, class F>
__global__ void binary_walk_vec(const T *a, const T *b, Tout *y, I packs, Walk<I> w, F f)
{
	bool a_runs = w.stride[0][w.ndim - 1] == 1, b_runs = w.stride[1][w.ndim - 1] == 1;

	for (I p = global_thread<I>(); p < packs; p += global_stride<I>()) {
		I oa, ob;

		walk_offsets(w, p * P, oa, ob);
		Pack<T, P> va = load_run<P>(a + oa, a_runs), vb = load_run<P>(b + ob, b_runs);
		Pack<Tout, P> out;
#pragma unroll
		for (int i = 0; i < P; i++)
			out.v[i] = f(va.v[i], vb.v[i]);
		reinterpret_cast<Pack<Tout, P> *>(y)[p] = out;
	}
}

/*
 * The vector walk needs: the last dimension a multiple of P; each input
 * either running along it (stride 1, every other stride a multiple of P, so
 * each run starts 16-byte aligned) or broadcast along it (stride 0).
 */
template <int P>
static bool walk_vectorizable(const struct djg_k_walk *w, const void *a, const void *b,
			      const void *y)
{
	int last = w->ndim - 1;

	if (w->ndim == 0 || w->shape[last] % P != 0 || !aligned16(a) || !aligned16(b) ||
	    !aligned16(y))
		return false;
	for (int k = 0; k < 2; k++) {
		if (w->stride[k][last] > 1)
			return false;
		for (int d = 0; d < last && w->stride[k][last] == 1; d++)
			if (w->stride[k][d] % P != 0)
				return false;
	}
	return true;
}

template <class I, class T, class Tout, class F>
static void launch_walk(const T *a, const T *b, Tout *y, int64_t n, const struct djg_k_walk *w,
			F f, cudaStream_t s)
{
	constexpr int P = pack_of<T> < pack_of<Tout> ? pack_of<T> : pack_of<Tout>;

	if (walk_vectorizable<P>(w, a, b, y))
		binary_walk_vec<P><<<grid_for(n / P), block_threads, 0, s>>>(
			a, b, y, (I)(n / P), walk_as<I>(w), f);
	else
		binary_walk<<<grid_for(n), block_threads, 0, s>>>(a, b, y, (I)n, walk_as<I>(w), f);
}

static int64_t walk_numel(const struct djg_k_walk *w)
{
	int64_t n = 1;

	for (int d = 0; d < w->ndim; d++)
		n *= w->shape[d];
	return n;
}

static bool walk_is_flat(const struct djg_k_walk *w)
{
	return w->ndim <= 1 && (w->ndim == 0 || (w->stride[0][0] == 1 && w->stride[1][0] == 1));
}

template <class T, class Tout, class F>
static cudaError_t launch_binary(const T *a, const T *b, Tout *y,
				 const struct djg_k_walk *w, F f, cudaStream_t s)
{
	int64_t n = walk_numel(w);
	constexpr int P = pack_of<T> < pack_of<Tout> ? pack_of<T> : pack_of<Tout>;

	if (n == 0)
		return cudaSuccess;
	if (walk_is_flat(w)) {
		if (aligned16(a) && aligned16(b) && aligned16(y))
			binary_flat<P><<<grid_for(n / P + 1), block_threads, 0, s>>>(a, b, y, n, f);
		else
			binary_flat<1><<<grid_for(n), block_threads, 0, s>>>(a, b, y, n, f);
	} else if (n < INT32_MAX) {
		/* A broadcast input's offsets never exceed the output's count. */
		launch_walk<uint32_t>(a, b, y, n, w, f, s);
	} else {
		launch_walk<uint64_t>(a, b, y, n, w, f, s);
	}
	return cudaGetLastError();
}

} /* namespace djk */

using namespace djk;

extern "C" int djg_k_unary(enum djg_k_unary_op op, enum dj_dtype dtype, const void *x,
			   void *y, int64_t n, djg_k_stream_t stream)
{
	return dispatch(dtype, [&](auto tag) {
		using T = decltype(tag);
		constexpr int P = pack_of<T>;
		const T *xt = (const T *)x;
		T *yt = (T *)y;

		if (n == 0)
			return cudaSuccess;
		if (aligned16(x) && aligned16(y))
			unary_flat<P><<<grid_for(n / P + 1), block_threads, 0, stream>>>(
				xt, yt, n, UnaryFn<T>{op});
		else
			unary_flat<1><<<grid_for(n), block_threads, 0, stream>>>(
				xt, yt, n, UnaryFn<T>{op});
		return cudaGetLastError();
	});
}

extern "C" int djg_k_binary(enum djg_k_binary_op op, enum dj_dtype in_dtype,
			    enum dj_dtype out_dtype, const void *a, const void *b, void *y,
			    const struct djg_k_walk *walk, djg_k_stream_t stream)
{
	if (in_dtype != out_dtype) {
		/* Only integer division produces another type (float32). */
		if (out_dtype != DJ_DTYPE_FLOAT32 || op != DJG_K_DIV)
			return cudaErrorInvalidValue;
		if (in_dtype == DJ_DTYPE_INT32)
			return launch_binary((const int32_t *)a, (const int32_t *)b, (float *)y,
					     walk, BinaryFn<int32_t, float>{op}, stream);
		if (in_dtype == DJ_DTYPE_INT64)
			return launch_binary((const int64_t *)a, (const int64_t *)b, (float *)y,
					     walk, BinaryFn<int64_t, float>{op}, stream);
		return cudaErrorInvalidValue;
	}
	return dispatch(in_dtype, [&](auto tag) {
		using T = decltype(tag);
		return launch_binary((const T *)a, (const T *)b, (T *)y, walk,
				     BinaryFn<T, T>{op}, stream);
	});
}
