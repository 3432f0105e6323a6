// Internal GEMM entry points for other CPU kernels (conv2d, linear) to call directly.
// Row-major: C (M,N) = alpha * op(A) @ op(B) + beta * C, where op(A) is (M,K): A is
// (M,K) with row stride lda, or (K,M) when trans_a. Likewise B (K,N) or (N,K).
#pragma once
#include <cstdint>

namespace ember::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
           int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace ember::cpu
