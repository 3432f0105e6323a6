// GEMM on the GPU: out (B,M,N) = alpha * op(a) @ op(b) + beta * out, the same contract
// as cpu/gemm.cpp. Transposes are handled by how tiles are loaded, never materialized.
// float32 runs the warp-tiled kernel of sgemm.cuh (variant 7 of bench/cuda_sgemm, where
// the steps that lead to it are timed against cuBLAS); float64 runs the plain tiled
// kernel below: 64x64 tiles, a 4x4 register block per thread, 256 threads.
#include <algorithm>
#include <climits>
#include <cstdint>
#include "../op_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "sgemm.cuh"

namespace ember::cuda {
namespace {

constexpr int kTile = 64, kK = 16, kReg = 4;

// The float64 kernel: As[k][m] = op(A)[m0+m][k0+k], Bs[k][n] = op(B)[k0+k][n0+n].
template <class T>
__global__ void gemm_tiled(const T* __restrict__ A, const T* __restrict__ Bm, T* __restrict__ C, int64_t M, int64_t N,
                           int64_t K, int64_t lda, int64_t ldb, int64_t ldc, int64_t sa, int64_t sb, int64_t sc,
                           bool ta, bool tb, T alpha, T beta) {
  __shared__ T As[kK][kTile + 1];
  __shared__ T Bs[kK][kTile + 1];
  const int64_t batch = blockIdx.z;
  A += batch * sa;
  Bm += batch * sb;
  C += batch * sc;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  T acc[kReg][kReg] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kK) {
    // Each thread loads 4 elements of each tile: As[k][m] = op(A)[m0+m][k0+k], Bs[k][n] = op(B)[k0+k][n0+n].
    for (int i = threadIdx.x; i < kK * kTile; i += blockDim.x) {
      const int k = i / kTile, mn = i % kTile;
      const int64_t gm = m0 + mn, gk = k0 + k, gn = n0 + mn;
      As[k][mn] = (gm < M && gk < K) ? (ta ? A[gk * lda + gm] : A[gm * lda + gk]) : T(0);
      Bs[k][mn] = (gn < N && gk < K) ? (tb ? Bm[gn * ldb + gk] : Bm[gk * ldb + gn]) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kK; ++k) {
      T a[kReg], b[kReg];
#pragma unroll
      for (int r = 0; r < kReg; ++r) {
        a[r] = As[k][ty * kReg + r];
        b[r] = Bs[k][tx * kReg + r];
      }
#pragma unroll
      for (int i = 0; i < kReg; ++i)
#pragma unroll
        for (int j = 0; j < kReg; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < kReg; ++i)
    for (int j = 0; j < kReg; ++j) {
      const int64_t m = m0 + ty * kReg + i, n = n0 + tx * kReg + j;
      if (m < M && n < N) {
        T* c = C + m * ldc + n;
        *c = alpha * acc[i][j] + (beta == T(0) ? T(0) : beta * *c);
      }
    }
}

}  // namespace

void matmul(const TensorView& a, const TensorView& b, const TensorView& out, bool trans_a, bool trans_b, double alpha,
            double beta) {
  const char* op = "matmul";
  const MatmulDims d = check_matmul_args(a, b, out, trans_a, trans_b);  // the CPU twin's checks
  const int64_t M = d.M, N = d.N, K = d.K, batch = d.batch;
  EMBER_CHECK(batch <= 65535, op, ": at most 65535 batches on CUDA (the grid's z dimension)");
  if (batch == 0 || M == 0 || N == 0) return;
  const int64_t sa = d.batch_stride(a), sb = d.batch_stride(b), sc = d.batch_stride(out);
  const int64_t Kr = alpha == 0 ? 0 : K;  // alpha 0 leaves A and B unread (an inf there must not give NaN)
  if (a.dtype == DType::f32) {
    EMBER_CHECK(K <= INT_MAX - sgemm::kBK, op, ": K = ", K, " is too large for the CUDA kernel");
    EMBER_CHECK((M + sgemm::kBM - 1) / sgemm::kBM <= 65535, op, ": M = ", M, " is too large for the CUDA kernel");
    sgemm::Params P;
    P.a = a.ptr<float>(), P.b = b.ptr<float>(), P.c = out.ptr<float>();
    P.M = M, P.N = N, P.K = Kr, P.lda = d.ld(a), P.ldb = d.ld(b), P.ldc = d.ld(out);
    P.batch_a = sa, P.batch_b = sb, P.batch_c = sc;
    P.alpha = static_cast<float>(alpha), P.beta = static_cast<float>(beta);
    // 128-bit loads and stores need every row of every batch on a 16-byte boundary
    auto aligned = [](const void* p, int64_t ld, int64_t batch_stride) {
      return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0 && batch_stride % 4 == 0;
    };
    P.vec_a = aligned(P.a, P.lda, sa), P.vec_b = aligned(P.b, P.ldb, sb), P.vec_c = aligned(P.c, P.ldc, P.batch_c);
    const dim3 grid(static_cast<unsigned>((N + sgemm::kBN - 1) / sgemm::kBN),
                    static_cast<unsigned>((M + sgemm::kBM - 1) / sgemm::kBM), static_cast<unsigned>(batch));
    cudaStream_t s = current_stream();
    if (!trans_a && !trans_b) sgemm::sgemm_warp_tiled<false, false><<<grid, sgemm::kThreads, 0, s>>>(P);
    else if (!trans_a) sgemm::sgemm_warp_tiled<false, true><<<grid, sgemm::kThreads, 0, s>>>(P);
    else if (!trans_b) sgemm::sgemm_warp_tiled<true, false><<<grid, sgemm::kThreads, 0, s>>>(P);
    else sgemm::sgemm_warp_tiled<true, true><<<grid, sgemm::kThreads, 0, s>>>(P);
    EMBER_CUDA_LAUNCH_CHECK(op);
    return;
  }
  EMBER_CHECK((M + kTile - 1) / kTile <= 65535, op, ": M = ", M, " is too large for the CUDA kernel");
  dim3 grid(static_cast<unsigned>((N + kTile - 1) / kTile), static_cast<unsigned>((M + kTile - 1) / kTile),
            static_cast<unsigned>(batch));
  gemm_tiled<double><<<grid, 256, 0, current_stream()>>>(a.ptr<double>(), b.ptr<double>(), out.ptr<double>(), M, N,
                                                         Kr, d.ld(a), d.ld(b), d.ld(out), sa, sb, sc, trans_a,
                                                         trans_b, alpha, beta);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace ember::cuda
