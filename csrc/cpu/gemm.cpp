// GEMM: C (M,N) = alpha * op(A) @ op(B) + beta * C.
// (A straightforward cache-friendly loop; the packed BLIS-style kernel replaces it.)
#include "gemm.h"
#include <vector>
#include "../check.h"
#include "../ops.h"
#include "dispatch.h"

namespace ember::cpu {
namespace {

template <class T>
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(N * K, 1)), [&](int64_t m0, int64_t m1) {
    std::vector<T> row(static_cast<size_t>(N));
    for (int64_t m = m0; m < m1; ++m) {
      std::fill(row.begin(), row.end(), T(0));
      for (int64_t k = 0; k < K; ++k) {
        T a = ta ? A[k * lda + m] : A[m * lda + k];
        if (!tb) {
          const T* b = B + k * ldb;
          for (int64_t n = 0; n < N; ++n) row[n] += a * b[n];
        } else {
          for (int64_t n = 0; n < N; ++n) row[n] += a * B[n * ldb + k];
        }
      }
      T* c = C + m * ldc;
      for (int64_t n = 0; n < N; ++n) c[n] = alpha * row[n] + (beta == T(0) ? T(0) : beta * c[n]);
    }
  });
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void dgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
           const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void matmul(const TensorView& a, const TensorView& b, const TensorView& out, bool trans_a, bool trans_b,
            double alpha, double beta) {
  const char* op = "matmul";
  check_same_dtype(a, b, op);
  check_same_dtype(a, out, op);
  check_float(a, op, "a");
  EMBER_CHECK(a.ndim == b.ndim && a.ndim == out.ndim && (a.ndim == 2 || a.ndim == 3), op,
              ": a, b and out must all be 2-D or all 3-D, got ", a.shape_str(), ", ", b.shape_str(), ", ",
              out.shape_str());
  const int o = a.ndim - 2;
  const int64_t M = trans_a ? a.shape[o + 1] : a.shape[o], K = trans_a ? a.shape[o] : a.shape[o + 1];
  const int64_t Kb = trans_b ? b.shape[o + 1] : b.shape[o], N = trans_b ? b.shape[o] : b.shape[o + 1];
  EMBER_CHECK(K == Kb, op, ": inner dimensions differ, ", a.shape_str(), " @ ", b.shape_str());
  EMBER_CHECK(out.shape[o] == M && out.shape[o + 1] == N, op, ": out shape ", out.shape_str(), " expected (", M,
              ", ", N, ")");
  for (const TensorView* t : {&a, &b, &out})
    EMBER_CHECK(t->strides[o + 1] == 1 || t->shape[o + 1] <= 1, op, ": the last dim of every operand must be contiguous");
  const int64_t batch = o ? out.shape[0] : 1;
  if (o) {
    EMBER_CHECK((a.shape[0] == batch || a.strides[0] == 0) && (b.shape[0] == batch || b.strides[0] == 0), op,
                ": batch sizes differ");
  }
  auto ld = [o](const TensorView& t) { return t.shape[o + 1] <= 1 ? std::max<int64_t>(t.strides[o], t.shape[o + 1]) : t.strides[o]; };
  for (int64_t i = 0; i < batch; ++i) {
    EMBER_DISPATCH_FLOAT(a.dtype, op, {
      const T* pa = a.ptr<T>() + (o ? i * a.strides[0] : 0);
      const T* pb = b.ptr<T>() + (o ? i * b.strides[0] : 0);
      T* pc = out.ptr<T>() + (o ? i * out.strides[0] : 0);
      gemm_ref<T>(trans_a, trans_b, M, N, K, static_cast<T>(alpha), pa, ld(a), pb, ld(b), static_cast<T>(beta), pc, ld(out));
    });
  }
}

}  // namespace ember::cpu
