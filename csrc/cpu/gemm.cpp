// GEMM: C (M,N) = alpha * op(A) @ op(B) + beta * C, row-major, float32 and float64.
//
// The BLIS-style kernel (packing, cache blocking, register-blocked micro-kernels,
// OpenMP) lives in gemm_kernels.h and is compiled here once per SIMD path; `isa()`
// picks the path at each call. matmul (the op) loops over a batch, in parallel across
// matrices when each is too small to split.
#include "gemm.h"
#include <immintrin.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include "../check.h"
#include "../op_checks.h"
#include "../ops.h"
#include "dispatch.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "gemm_kernels.h"
#include "isa_instantiate.h"

namespace {

template <class T>
void gemm_any(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
              int64_t ldb, T beta, T* C, int64_t ldc, int threads) {
  switch (isa()) {
    case Isa::avx512: isa_avx512::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads); break;
    case Isa::avx2: isa_avx2::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads); break;
    default: isa_scalar::gemm<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads);
  }
}

int default_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_any(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default_threads());
}
void dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
           const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_any(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, default_threads());
}

// a (B,M,K) or (B,K,M) when trans_a; b (B,K,N) or (B,N,K) when trans_b; out (B,M,N).
// 2-D operands are a batch of one; a batch stride of 0 broadcasts that operand.
void matmul(const TensorView& a, const TensorView& b, const TensorView& out, bool trans_a, bool trans_b,
            double alpha, double beta) {
  const char* op = "matmul";
  const MatmulDims d = check_matmul_args(a, b, out, trans_a, trans_b);
  const int64_t M = d.M, N = d.N, K = d.K, batch = d.batch;
  if (batch == 0 || M == 0 || N == 0) return;
  EMBER_DISPATCH_FLOAT(a.dtype, op, {
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    T* pc = out.ptr<T>();
    const int64_t sa = d.batch_stride(a), sb = d.batch_stride(b), so = d.batch_stride(out);
    const int64_t lda = d.ld(a), ldb = d.ld(b), ldc = d.ld(out);
    const T al = static_cast<T>(alpha), be = static_cast<T>(beta);
    const int threads = default_threads();
    // Small matrices: one thread per matrix, matrices in parallel.
    const double flops = 2.0 * M * N * K;
    if (batch > 1 && threads > 1 && flops < 4e6) {
      parallel_for(batch, std::max<int64_t>(1, static_cast<int64_t>(2e5 / std::max(flops, 1.0))),
                   [&](int64_t b0, int64_t b1) {
                     for (int64_t i = b0; i < b1; ++i)
                       gemm_any<T>(trans_a, trans_b, M, N, K, al, pa + i * sa, lda, pb + i * sb, ldb, be,
                                   pc + i * so, ldc, 1);
                   });
    } else {
      for (int64_t i = 0; i < batch; ++i)
        gemm_any<T>(trans_a, trans_b, M, N, K, al, pa + i * sa, lda, pb + i * sb, ldb, be, pc + i * so, ldc,
                    threads);
    }
  });
}

}  // namespace ember::cpu
