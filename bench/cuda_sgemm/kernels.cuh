// The SGEMM progression, one kernel per step: C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C,
// row-major, contiguous (lda = K, ldb = ldc = N). Every variant takes any M, N, K (edges
// are bounds-checked) so each is checked on an odd shape before it is timed.
// Variant 7, the one ember runs, lives in csrc/cuda/sgemm.cuh; 5 and 6 share its loader.
#pragma once
#include "../../csrc/cuda/sgemm.cuh"

namespace sgemm_bench {
using ember::cuda::sgemm::kBK;
using ember::cuda::sgemm::kBM;
using ember::cuda::sgemm::kBN;
using ember::cuda::sgemm::kPad;
using ember::cuda::sgemm::Params;
using ember::cuda::sgemm::store_row4;
using ember::cuda::sgemm::TileLoader;

__device__ __forceinline__ void store1(float* c, float alpha, float acc, float beta) {
  *c = alpha * acc + (beta == 0.f ? 0.f : beta * *c);  // beta == 0 never reads C
}

// 1. Naive: one thread per output, a K-long dot product straight from global memory.
// Consecutive threads take consecutive n, so B and C accesses coalesce and A broadcasts.
// block (32, 8), grid (ceil(N/32), ceil(M/8)).
__global__ void sgemm_naive(int M, int N, int K, float alpha, const float* A, const float* B, float beta, float* C) {
  const int n = blockIdx.x * 32 + threadIdx.x, m = blockIdx.y * 8 + threadIdx.y;
  if (m >= M || n >= N) return;
  float acc = 0.f;
  for (int k = 0; k < K; ++k) acc += A[m * K + k] * B[k * N + n];
  store1(&C[m * N + n], alpha, acc, beta);
}

// 2. Shared-memory tiling: a block stages 32x32 tiles of A and B in shared memory, so
// each global element is read once per block instead of once per output (32x less
// traffic). Still one output per thread: two shared loads per FMA bound it now.
// block (32, 32), grid (ceil(N/32), ceil(M/32)).
__global__ void sgemm_smem(int M, int N, int K, float alpha, const float* A, const float* B, float beta, float* C) {
  __shared__ float As[32][32], Bs[32][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int n = blockIdx.x * 32 + tx, m = blockIdx.y * 32 + ty;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += 32) {
    As[ty][tx] = (m < M && k0 + tx < K) ? A[m * K + k0 + tx] : 0.f;
    Bs[ty][tx] = (k0 + ty < K && n < N) ? B[(k0 + ty) * N + n] : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 32; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (m < M && n < N) store1(&C[m * N + n], alpha, acc, beta);
}

// 3. 1-D register blocking: each thread computes a column of 8 outputs, so one shared
// load of B feeds 8 FMAs. Block tile 64x64x8, 512 threads: thread (row group g, column c)
// owns rows 8g..8g+7 of column c. Each thread loads one element of each tile.
// block 512, grid (ceil(N/64), ceil(M/64)).
__global__ void sgemm_1d_blocking(int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                                  float* C) {
  constexpr int BM = 64, BN = 64, BK = 8, TM = 8;
  __shared__ float As[BM][BK], Bs[BK][BN];
  const int tid = threadIdx.x, c = tid % BN, g = tid / BN;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int am = tid / BK, ak = tid % BK;  // this thread's element of the A tile
  const int bk = tid / BN, bn = tid % BN;  // and of the B tile
  float acc[TM] = {};
  for (int k0 = 0; k0 < K; k0 += BK) {
    As[am][ak] = (m0 + am < M && k0 + ak < K) ? A[(m0 + am) * K + k0 + ak] : 0.f;
    Bs[bk][bn] = (k0 + bk < K && n0 + bn < N) ? B[(k0 + bk) * N + n0 + bn] : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      const float b = Bs[k][c];
#pragma unroll
      for (int i = 0; i < TM; ++i) acc[i] += As[g * TM + i][k] * b;
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + g * TM + i, n = n0 + c;
    if (m < M && n < N) store1(&C[m * N + n], alpha, acc[i], beta);
  }
}

// 4. 2-D register blocking: each thread computes an 8x8 block of outputs from 8 values
// of A and 8 of B per k (16 shared loads for 64 FMAs). Block tile 128x128x8, 256 threads
// as 16x16; each loads 4 elements of each tile with scalar loads.
// block 256, grid (ceil(N/128), ceil(M/128)).
__global__ void sgemm_2d_blocking(int M, int N, int K, float alpha, const float* A, const float* B, float beta,
                                  float* C) {
  __shared__ float As[kBM][kBK], Bs[kBK][kBN];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  float acc[8][8] = {};
  for (int k0 = 0; k0 < K; k0 += kBK) {
#pragma unroll
    for (int i = tid; i < kBM * kBK; i += 256) {
      const int am = i / kBK, ak = i % kBK, bk = i / kBN, bn = i % kBN;
      As[am][ak] = (m0 + am < M && k0 + ak < K) ? A[(m0 + am) * K + k0 + ak] : 0.f;
      Bs[bk][bn] = (k0 + bk < K && n0 + bn < N) ? B[(k0 + bk) * N + n0 + bn] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      float a[8], b[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        a[i] = As[ty * 8 + i][k];
        b[i] = Bs[k][tx * 8 + i];
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int m = m0 + ty * 8 + i, n = n0 + tx * 8 + j;
      if (m < M && n < N) store1(&C[m * N + n], alpha, acc[i][j], beta);
    }
}

// 5. 128-bit loads and a transposed A tile: global tiles move as float4 (one load per
// thread per operand, a quarter of the instructions), and A is stored k-major, As[k][m],
// so a thread's 8 values of A for one k are two float4 shared loads, like B's.
// The stores and the 8x8 layout of variant 4 are kept. block 256, grid as 4.
__global__ void __launch_bounds__(256, 2) sgemm_vectorized(Params P) {
  __shared__ __align__(16) float As[kBK][kBM + kPad], Bs[kBK][kBN + kPad];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  TileLoader<true> la(P.a, P.lda, m0, P.M, tid);
  TileLoader<false> lb(P.b, P.ldb, n0, P.N, tid);
  float acc[8][8] = {};
  for (int64_t k0 = 0; k0 < P.K; k0 += kBK) {
    la.store(As, la.load(static_cast<int>(P.K - k0), P.vec_a));
    lb.store(Bs, lb.load(static_cast<int>(P.K - k0), P.vec_b));
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[k][ty * 8]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[k][ty * 8 + 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[k][tx * 8]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[k][tx * 8 + 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
    la.advance(P.lda);
    lb.advance(P.ldb);
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    store_row4(P, P.c, m0 + ty * 8 + i, n0 + tx * 8, &acc[i][0]);
    store_row4(P, P.c, m0 + ty * 8 + i, n0 + tx * 8 + 4, &acc[i][4]);
  }
}

// 6. Double buffering: two shared buffers; the next tile's global loads are issued into
// registers before the current tile is multiplied and stored to the other buffer after,
// so memory latency hides behind the FMAs and one barrier per tile suffices (not two).
// Otherwise variant 5. block 256, grid as 4.
__global__ void __launch_bounds__(256, 2) sgemm_double_buffered(Params P) {
  __shared__ __align__(16) float As[2][kBK][kBM + kPad], Bs[2][kBK][kBN + kPad];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  TileLoader<true> la(P.a, P.lda, m0, P.M, tid);
  TileLoader<false> lb(P.b, P.ldb, n0, P.N, tid);
  float4 ra = la.load(P.K, P.vec_a), rb = lb.load(P.K, P.vec_b);
  la.store(As[0], ra);
  lb.store(Bs[0], rb);
  __syncthreads();
  float acc[8][8] = {};
  const int64_t ktiles = (P.K + kBK - 1) / kBK;
  for (int64_t t = 0; t < ktiles; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < ktiles;
    if (more) {
      la.advance(P.lda);
      lb.advance(P.ldb);
      const int k_end = static_cast<int>(P.K - (t + 1) * kBK);
      ra = la.load(k_end, P.vec_a);
      rb = lb.load(k_end, P.vec_b);
    }
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][ty * 8]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][ty * 8 + 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][k][tx * 8]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][k][tx * 8 + 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
    }
    if (more) {
      la.store(As[cur ^ 1], ra);
      lb.store(Bs[cur ^ 1], rb);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    store_row4(P, P.c, m0 + ty * 8 + i, n0 + tx * 8, &acc[i][0]);
    store_row4(P, P.c, m0 + ty * 8 + i, n0 + tx * 8 + 4, &acc[i][4]);
  }
}

// 7. Warp tiling (csrc/cuda/sgemm.cuh): the same tiles and pipeline, but each warp owns a
// compact 64x32 region and each lane four 4x4 sub-tiles 32 rows / 16 columns apart. In
// variant 6 a warp's B reads are 16 float4s 32 bytes apart (two-way bank conflicts) and
// its C stores scatter; here a warp's reads are 8 (A) and 4 (B) adjacent float4s, and
// all four transposes run through the same kernel, as ember's backward needs.
using ember::cuda::sgemm::sgemm_warp_tiled;

}  // namespace sgemm_bench
