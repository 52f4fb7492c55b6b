/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * scaled_dot_product_attention fused into one kernel (flash attention's
 * online softmax, on CUDA cores in float): no L x S matrix ever reaches
 * memory.
 *
 * A block owns BM = W * R query rows of one batch entry (W warps of R rows
 * each) and walks the keys 32 at a time. For each chunk it stages K (32 keys
 * x 32 dims at a time) and the rows' Q in shared memory, each lane computes
 * the logits of its own key for the warp's R rows, the warp updates each
 * row's running max, sum and output (rescaled when the max grows), and the
 * chunk's V (32 keys x 32*TV value dims) is staged to add p . v. Lanes own
 * value dims lane + 32 t, so an output row lives in one warp's registers.
 * Value dims beyond 32*TV go to further blocks (grid z), which recompute
 * the logits: nothing is limited by the head size.
 *
 * Few query rows (decode: L = 1) cannot fill the GPU with blocks of rows,
 * so the keys are split across blocks (grid y, flash-decoding); each split
 * writes its max, sum and unnormalised output to a workspace and a second
 * kernel merges the splits of every row in a fixed order (deterministic).
 *
 * The causal mask is torch's top-left aligned tril(ones(L, S)): query i
 * sees keys 0..i. Key chunks past a block's last row are skipped.
 */
#include <cmath>

#include "dtype.cuh"

namespace djk {

constexpr int att_keys = 32;   /* keys per chunk: one per lane */
constexpr int att_dims = 32;   /* q/k dims staged per step */
constexpr int att_kpad = 36;   /* K row pitch: 16-byte reads without bank conflicts */
constexpr int att_max_splits = 256;

/* The launch shape: rows per warp, warps per block, value dims per lane. */
struct AttnShape {
	int R, W, TV;
	int64_t tiles, splits, split_len, zchunks;
};

struct AttnArgs {
	int64_t L, S, E, Ev;
	int64_t tiles_per_batch, tiles;
	int64_t splits, split_len;
	int batch_ndim;
	int64_t batch_shape[DJ_MAX_DIMS];
	int64_t q_stride[DJ_MAX_DIMS], k_stride[DJ_MAX_DIMS], v_stride[DJ_MAX_DIMS];
	float scale;
	int causal;
};

__device__ inline float warp_max(float v)
{
	for (int off = 16; off > 0; off >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
	return v;
}

__device__ inline float warp_sum(float v)
{
	for (int off = 16; off > 0; off >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, off);
	return v;
}

/* Element offsets of batch entry b in q, k and v. */
__device__ inline void batch_offsets(const AttnArgs &a, int64_t b, int64_t &qo, int64_t &ko,
				     int64_t &vo)
{
	qo = ko = vo = 0;
	for (int d = a.batch_ndim - 1; d >= 0; d--) {
		int64_t c = b % a.batch_shape[d];

		b /= a.batch_shape[d];
		qo += c * a.q_stride[d];
		ko += c * a.k_stride[d];
		vo += c * a.v_stride[d];
	}
}

template <class T, int R, int W, int TV>
__global__ void __launch_bounds__(32 * W, 1)
attention(const T *__restrict__ q, const T *__restrict__ k, const T *__restrict__ v,
	  T *__restrict__ y, float *__restrict__ part_m, float *__restrict__ part_l,
	  float *__restrict__ part_acc, AttnArgs a)
{
	constexpr int BM = R * W, VD = 32 * TV;
	__shared__ __align__(16) float sk[att_keys][att_kpad];
	__shared__ __align__(16) float sq[BM][att_dims];
	__shared__ __align__(16) float sv[att_keys][VD];
	__shared__ __align__(16) float sp[W][R][att_keys];
	const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
	const int64_t split = blockIdx.y, v0 = (int64_t)blockIdx.z * VD;

	for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
		int64_t b = tile / a.tiles_per_batch;
		int64_t i0 = (tile % a.tiles_per_batch) * BM;
		int64_t qo, ko, vo;
		int64_t s_begin = split * a.split_len;
		int64_t s_end = min(a.S, s_begin + a.split_len);
		float m[R], l[R], acc[R][TV];

		batch_offsets(a, b, qo, ko, vo);
		if (a.causal) /* no row of this block sees a key past its last row */
			s_end = min(s_end, i0 + BM);
#pragma unroll
		for (int r = 0; r < R; r++) {
			m[r] = -INFINITY;
			l[r] = 0.0f;
#pragma unroll
			for (int t = 0; t < TV; t++)
				acc[r][t] = 0.0f;
		}
		for (int64_t c0 = s_begin; c0 < s_end; c0 += att_keys) {
			int nk = (int)min((int64_t)att_keys, s_end - c0);
			float s[R];

#pragma unroll
			for (int r = 0; r < R; r++)
				s[r] = 0.0f;
			/* logits: lane = key, 32 dims of q and k at a time */
			for (int64_t d0 = 0; d0 < a.E; d0 += att_dims) {
				__syncthreads(); /* the previous step's readers are done */
				for (int idx = threadIdx.x; idx < att_keys * att_dims; idx += 32 * W) {
					int kk = idx / att_dims, dd = idx % att_dims;
					int64_t d = d0 + dd;

					sk[kk][dd] = kk < nk && d < a.E
							     ? Num<T>::load(k[ko + (c0 + kk) * a.E + d])
							     : 0.0f;
				}
				for (int idx = threadIdx.x; idx < BM * att_dims; idx += 32 * W) {
					int rr = idx / att_dims, dd = idx % att_dims;
					int64_t i = i0 + rr, d = d0 + dd;

					sq[rr][dd] = i < a.L && d < a.E
							     ? Num<T>::load(q[qo + i * a.E + d])
							     : 0.0f;
				}
				__syncthreads();
#pragma unroll
				for (int dd = 0; dd < att_dims; dd += 4) {
					float4 kv = *reinterpret_cast<const float4 *>(&sk[lane][dd]);
#pragma unroll
					for (int r = 0; r < R; r++) {
						float4 qv = *reinterpret_cast<const float4 *>(
							&sq[w * R + r][dd]);

						s[r] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z +
							qv.w * kv.w;
					}
				}
			}
			/* this chunk's values (E may be 0: then nothing synchronised above) */
			__syncthreads();
			for (int idx = threadIdx.x; idx < att_keys * VD; idx += 32 * W) {
				int j = idx / VD, c = idx % VD;
				int64_t col = v0 + c;

				sv[j][c] = j < nk && col < a.Ev
						   ? Num<T>::load(v[vo + (c0 + j) * a.Ev + col])
						   : 0.0f;
			}
			__syncthreads();
			/* online softmax: rescale what is there when the max grows */
#pragma unroll
			for (int r = 0; r < R; r++) {
				int64_t i = i0 + w * R + r, key = c0 + lane;
				bool seen = lane < nk && !(a.causal && key > i);
				float x = seen ? s[r] * a.scale : -INFINITY;
				float m_new = fmaxf(m[r], warp_max(x));
				float p = seen ? expf(x - m_new) : 0.0f;
				float alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - m_new);

				l[r] = l[r] * alpha + warp_sum(p);
#pragma unroll
				for (int t = 0; t < TV; t++)
					acc[r][t] *= alpha;
				m[r] = m_new;
				sp[w][r][lane] = p;
			}
			__syncwarp();
#pragma unroll 2
			for (int j = 0; j < att_keys; j += 4) {
				float vv[4][TV];

#pragma unroll
				for (int jj = 0; jj < 4; jj++)
#pragma unroll
					for (int t = 0; t < TV; t++)
						vv[jj][t] = sv[j + jj][lane + 32 * t];
#pragma unroll
				for (int r = 0; r < R; r++) {
					float4 p = *reinterpret_cast<const float4 *>(&sp[w][r][j]);
#pragma unroll
					for (int t = 0; t < TV; t++)
						acc[r][t] += p.x * vv[0][t] + p.y * vv[1][t] +
							     p.z * vv[2][t] + p.w * vv[3][t];
				}
			}
			__syncwarp(); /* sp is rewritten by the next chunk */
		}
		/* a row's result, or this split's share of it */
#pragma unroll
		for (int r = 0; r < R; r++) {
			int64_t i = i0 + w * R + r;

			if (i >= a.L)
				continue;
			int64_t row = b * a.L + i;

			if (a.splits == 1) {
				/* no key at all (S = 0): zeros, as torch */
				float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
				for (int t = 0; t < TV; t++) {
					int64_t col = v0 + lane + 32 * t;

					if (col < a.Ev)
						y[row * a.Ev + col] = Num<T>::store(acc[r][t] * inv);
				}
				continue;
			}
			int64_t part = row * a.splits + split;

			if (blockIdx.z == 0 && lane == 0) {
				part_m[part] = m[r];
				part_l[part] = l[r];
			}
#pragma unroll
			for (int t = 0; t < TV; t++) {
				int64_t col = v0 + lane + 32 * t;

				if (col < a.Ev)
					part_acc[part * a.Ev + col] = acc[r][t];
			}
		}
		__syncthreads(); /* shared memory is reused by the next tile */
	}
}

/* One block per row: weights exp(m_s - M) of the splits, then the sum. */
template <class T>
__global__ void attention_merge(const float *__restrict__ part_m,
				const float *__restrict__ part_l,
				const float *__restrict__ part_acc, T *__restrict__ y, int64_t rows,
				int64_t splits, int64_t Ev)
{
	__shared__ float wt[att_max_splits];
	__shared__ float total_inv;

	for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
		const float *pm = part_m + row * splits, *pl = part_l + row * splits;
		float M = -INFINITY;

		for (int64_t s = 0; s < splits; s++)
			M = fmaxf(M, pm[s]);
		for (int64_t s = threadIdx.x; s < splits; s += blockDim.x)
			wt[s] = pm[s] == -INFINITY ? 0.0f : expf(pm[s] - M);
		__syncthreads();
		if (threadIdx.x == 0) {
			float total = 0.0f;

			for (int64_t s = 0; s < splits; s++)
				total += wt[s] * pl[s];
			total_inv = total > 0.0f ? 1.0f / total : 0.0f;
		}
		__syncthreads();
		for (int64_t c = threadIdx.x; c < Ev; c += blockDim.x) {
			float sum = 0.0f;

			for (int64_t s = 0; s < splits; s++)
				sum += wt[s] * part_acc[(row * splits + s) * Ev + c];
			y[row * Ev + c] = Num<T>::store(sum * total_inv);
		}
		__syncthreads(); /* wt and total_inv are reused by the next row */
	}
}

static int64_t div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

/*
 * Rows per warp and warps per block by the query length (decode: one warp
 * per row), value dims per lane by Ev, and the key splits: enough blocks
 * to fill the GPU, each split a whole number of 32-key chunks.
 */
static AttnShape plan(const struct djg_k_attention *g)
{
	AttnShape sh;
	int64_t want_blocks, chunks = div_up(g->S, att_keys), max_splits;

	if (g->L >= 32)
		sh.R = 8, sh.W = 4;
	else if (g->L >= 4)
		sh.R = 1, sh.W = 4;
	else
		sh.R = 1, sh.W = 1;
	sh.TV = g->Ev <= 32 ? 1 : g->Ev <= 64 ? 2 : 4;
	sh.tiles = g->batch * div_up(g->L, (int64_t)sh.R * sh.W);
	sh.zchunks = div_up(g->Ev, 32 * sh.TV);
	want_blocks = sh.W == 1 ? 2048 : 512;
	max_splits = std::min<int64_t>(att_max_splits, std::max<int64_t>(1, chunks));
	sh.splits = std::min(max_splits,
			     std::max<int64_t>(1, div_up(want_blocks,
							 std::max<int64_t>(1, sh.tiles * sh.zchunks))));
	sh.split_len = std::max<int64_t>(1, div_up(chunks, sh.splits)) * att_keys; /* S may be 0 */
	sh.splits = std::max<int64_t>(1, div_up(g->S, sh.split_len));
	return sh;
}

template <class T, int R, int W, int TV>
static void launch(const T *q, const T *k, const T *v, T *y, float *pm, float *pl, float *pa,
		   const AttnArgs &a, const AttnShape &sh, cudaStream_t s)
{
	dim3 grid((unsigned)std::min<int64_t>(sh.tiles, INT32_MAX), (unsigned)sh.splits,
		  (unsigned)sh.zchunks);

	attention<T, R, W, TV><<<grid, 32 * W, 0, s>>>(q, k, v, y, pm, pl, pa, a);
}

template <class T, int R, int W>
static void launch_tv(const T *q, const T *k, const T *v, T *y, float *pm, float *pl, float *pa,
		      const AttnArgs &a, const AttnShape &sh, cudaStream_t s)
{
	if (sh.TV == 1)
		launch<T, R, W, 1>(q, k, v, y, pm, pl, pa, a, sh, s);
	else if (sh.TV == 2)
		launch<T, R, W, 2>(q, k, v, y, pm, pl, pa, a, sh, s);
	else
		launch<T, R, W, 4>(q, k, v, y, pm, pl, pa, a, sh, s);
}

} /* namespace djk */

using namespace djk;

extern "C" size_t djg_k_attention_workspace(const struct djg_k_attention *g)
{
	AttnShape sh = plan(g);

	if (sh.splits == 1)
		return 0;
	return (size_t)(g->batch * g->L * sh.splits) * (size_t)(g->Ev + 2) * sizeof(float);
}

extern "C" int djg_k_attention(enum dj_dtype dtype, const void *q, const void *k, const void *v,
			       void *y, const struct djg_k_attention *g, void *workspace,
			       djg_k_stream_t stream)
{
	return dispatch_float(dtype, [&](auto tag) {
		using T = decltype(tag);
		AttnShape sh = plan(g);
		AttnArgs a = {};
		int64_t rows = g->batch * g->L;
		float *pm = nullptr, *pl = nullptr, *pa = nullptr;

		if (rows == 0 || g->Ev == 0)
			return cudaSuccess;
		if (sh.zchunks > 65535)
			return cudaErrorInvalidValue;
		a.L = g->L;
		a.S = g->S;
		a.E = g->E;
		a.Ev = g->Ev;
		a.tiles_per_batch = div_up(g->L, (int64_t)sh.R * sh.W);
		a.tiles = sh.tiles;
		a.splits = sh.splits;
		a.split_len = sh.split_len;
		a.batch_ndim = g->batch_ndim;
		for (int d = 0; d < g->batch_ndim; d++) {
			a.batch_shape[d] = g->batch_shape[d];
			a.q_stride[d] = g->q_stride[d];
			a.k_stride[d] = g->k_stride[d];
			a.v_stride[d] = g->v_stride[d];
		}
		a.scale = g->scale;
		a.causal = g->causal;
		if (sh.splits > 1) {
			pm = (float *)workspace;
			pl = pm + rows * sh.splits;
			pa = pl + rows * sh.splits;
		}
		const T *tq = (const T *)q, *tk = (const T *)k, *tv = (const T *)v;
		T *ty = (T *)y;

		if (sh.W == 1)
			launch_tv<T, 1, 1>(tq, tk, tv, ty, pm, pl, pa, a, sh, stream);
		else if (sh.R == 1)
			launch_tv<T, 1, 4>(tq, tk, tv, ty, pm, pl, pa, a, sh, stream);
		else
			launch_tv<T, 8, 4>(tq, tk, tv, ty, pm, pl, pa, a, sh, stream);
		cudaError_t rc = cudaGetLastError();

		if (rc != cudaSuccess || sh.splits == 1)
			return rc;
		attention_merge<<<(unsigned)std::min<int64_t>(rows, 65535), 128, 0, stream>>>(
			pm, pl, pa, ty, rows, sh.splits, g->Ev);
		return cudaGetLastError();
	});
}
