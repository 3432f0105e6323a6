// The FP32 GEMM kernel: C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, batched.
// Shared-memory tiles of 128x128x8, 128-bit loads, double buffering and warp tiling:
// variant 7 of bench/cuda_sgemm (which includes this file, so the harness times exactly
// what ember runs). Depends on nothing but the CUDA runtime so the harness builds alone.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

namespace ember::cuda::sgemm {

constexpr int kBM = 128, kBN = 128, kBK = 8;  // block tile
constexpr int kThreads = 256;                 // 8 warps, 2 (M) x 4 (N), each 64x32
constexpr int kPad = 4;  // smem row padding: keeps float4 alignment, spreads transposed stores over banks

// One thread's share of a kBK x 128 tile of op(X), read from global memory with one
// 128-bit load when the four elements are in bounds and aligned, else element by element
// (zeros past the edges, so edge tiles need no other special case).
// Stored in shared memory as S[k][mn] (mn fastest): what the inner product reads.
// KContig: X[mn*ld + k] (A, or B transposed): the thread reads 4 k's of one row and
//   scatters them down a column of S; 2 threads per row, 128 rows.
// otherwise: X[k*ld + mn] (A transposed, or B): the thread reads 4 mn's of one k and
//   stores them as one float4; 32 threads per k, 8 k's.
template <bool KContig>
struct TileLoader {
  // Only what changes per thread lives here: ld and vec come from the kernel's parameters
  // (constant memory) at each use, which keeps the NN kernel within 128 registers.
  const float* p;  // this thread's first element in the current k-tile
  int mn_left;     // elements left in the mn direction from this thread's mn, capped at 4
  int k, mn;       // this thread's place in the tile

  __device__ __forceinline__ TileLoader(const float* X, int64_t ld, int64_t mn0, int64_t MN, int tid) {
    k = KContig ? (tid % 2) * 4 : tid / 32;
    mn = KContig ? tid / 2 : (tid % 32) * 4;
    const int64_t left = MN - (mn0 + mn);
    mn_left = static_cast<int>(left < 4 ? left : 4);
    p = KContig ? X + (mn0 + mn) * ld + k : X + k * ld + mn0 + mn;
  }

  // k_end: K minus the tile's first k. vec: X and ld allow aligned 128-bit loads.
  __device__ __forceinline__ float4 load(int k_end, bool vec) const {
    const int k_left = k_end - k;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (KContig) {  // 4 k's of row mn
      if (mn_left <= 0) return v;
      if (vec && k_left >= 4) return *reinterpret_cast<const float4*>(p);
      if (k_left > 0) v.x = p[0];
      if (k_left > 1) v.y = p[1];
      if (k_left > 2) v.z = p[2];
      if (k_left > 3) v.w = p[3];
    } else {  // 4 mn's of row k
      if (k_left <= 0) return v;
      if (vec && mn_left >= 4) return *reinterpret_cast<const float4*>(p);
      if (mn_left > 0) v.x = p[0];
      if (mn_left > 1) v.y = p[1];
      if (mn_left > 2) v.z = p[2];
      if (mn_left > 3) v.w = p[3];
    }
    return v;
  }

  template <int Ld>
  __device__ __forceinline__ void store(float (*S)[Ld], float4 v) const {
    if (KContig) {
      S[k][mn] = v.x;
      S[k + 1][mn] = v.y;
      S[k + 2][mn] = v.z;
      S[k + 3][mn] = v.w;
    } else {
      *reinterpret_cast<float4*>(&S[k][mn]) = v;
    }
  }

  __device__ __forceinline__ void advance(int64_t ld) {
    p += KContig ? kBK : kBK * ld;
  }
};

struct Params {
  const float* a;  // op(a) (M,K): a is (M,K), or (K,M) when transposed; rows ld apart
  const float* b;  // op(b) (K,N): b is (K,N), or (N,K) when transposed
  float* c;        // (M,N)
  int64_t M, N, K, lda, ldb, ldc;
  int64_t batch_a, batch_b, batch_c;  // element strides between batches (0 broadcasts)
  float alpha, beta;                  // beta == 0 never reads c (it may hold NaN)
  bool vec_a, vec_b, vec_c;           // 16-byte aligned rows: pointer, ld and batch stride
};

// alpha * acc + beta * c for the four outputs at (m, n..n+3), bounds-checked.
__device__ __forceinline__ void store_row4(const Params& P, float* C, int64_t m, int64_t n, const float* acc) {
  if (m >= P.M) return;
  float* c = C + m * P.ldc + n;
  if (P.vec_c && n + 3 < P.N) {
    float4 old = P.beta == 0.f ? make_float4(0.f, 0.f, 0.f, 0.f) : *reinterpret_cast<const float4*>(c);
    *reinterpret_cast<float4*>(c) = make_float4(P.alpha * acc[0] + P.beta * old.x, P.alpha * acc[1] + P.beta * old.y,
                                                P.alpha * acc[2] + P.beta * old.z, P.alpha * acc[3] + P.beta * old.w);
    return;
  }
#pragma unroll  // constant indices keep acc in registers
  for (int j = 0; j < 4; ++j)
    if (n + j < P.N) c[j] = P.alpha * acc[j] + (P.beta == 0.f ? 0.f : P.beta * c[j]);
}

// grid (ceil(N/128), ceil(M/128), batch), 256 threads. Warp w covers rows 64*(w/4) and
// columns 32*(w%4) of the block tile; lane l owns a 2x2 grid of 4x4 sub-tiles at rows
// 4*(l/4) + {0, 32} and columns 4*(l%4) + {0, 16}, so each smem read of a warp touches
// 8 (A) or 4 (B) consecutive float4s: broadcast, no bank conflicts.
template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, 2) sgemm_warp_tiled(Params P) {
  __shared__ __align__(16) float As[2][kBK][kBM + kPad];  // As[k][m] = op(A)[m0+m][k0+k]
  __shared__ __align__(16) float Bs[2][kBK][kBN + kPad];  // Bs[k][n] = op(B)[k0+k][n0+n]
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  const float* A = P.a + blockIdx.z * P.batch_a;
  const float* B = P.b + blockIdx.z * P.batch_b;

  TileLoader<!TA> la(A, P.lda, m0, P.M, tid);
  TileLoader<TB> lb(B, P.ldb, n0, P.N, tid);
  float4 ra = la.load(P.K, P.vec_a), rb = lb.load(P.K, P.vec_b);
  la.store(As[0], ra);
  lb.store(Bs[0], rb);
  __syncthreads();

  const int warp = tid / 32, lane = tid % 32;
  const int wm = (warp / 4) * 64 + (lane / 4) * 4;  // first row of this thread's sub-tiles
  const int wn = (warp % 4) * 32 + (lane % 4) * 4;  // first column
  float acc[8][8] = {};                             // rows wm + {0..3, 32..35}, cols wn + {0..3, 16..19}

  const int64_t ktiles = (P.K + kBK - 1) / kBK;
  for (int64_t t = 0; t < ktiles; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < ktiles;
    // Issue the next tile's global loads now; they land while this tile is multiplied.
    if (more) {
      la.advance(P.lda);
      lb.advance(P.ldb);
      const int k_end = static_cast<int>(P.K - (t + 1) * kBK);
      ra = la.load(k_end, P.vec_a);
      rb = lb.load(k_end, P.vec_b);
    }
#pragma unroll
    for (int k = 0; k < kBK; ++k) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][wm]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][wm + 32]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][k][wn]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][k][wn + 16]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
    }
    // The other buffer was last read before the previous barrier, so one barrier per
    // k-tile suffices: it publishes these stores and retires this tile's reads.
    if (more) {
      la.store(As[cur ^ 1], ra);
      lb.store(Bs[cur ^ 1], rb);
    }
    __syncthreads();
  }

  float* C = P.c + blockIdx.z * P.batch_c;  // formed only now: registers are scarce in the loop
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t m = m0 + wm + (i / 4) * 32 + i % 4;
    store_row4(P, C, m, n0 + wn, &acc[i][0]);
    store_row4(P, C, m, n0 + wn + 16, &acc[i][4]);
  }
}

}  // namespace ember::cuda::sgemm
