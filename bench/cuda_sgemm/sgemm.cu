// SGEMM harness: checks each numbered variant (kernels.cuh) against cuBLAS, then times
// it against cuBLAS on square sizes. See README.md.
//   nvcc -O3 -std=c++17 -arch=sm_90 -o sgemm bench/cuda_sgemm/sgemm.cu -lcublas
//   ./sgemm [-n 1024,2048,4096,8192] [-r REPEATS] [VARIANT ...]
// Exit status 1 if any variant disagrees with cuBLAS; timings never fail the run.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernels.cuh"

#define CUDA_CHECK(call)                                                                                   \
  do {                                                                                                     \
    cudaError_t e_ = (call);                                                                               \
    if (e_ != cudaSuccess) {                                                                               \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));          \
      std::exit(2);                                                                                        \
    }                                                                                                      \
  } while (0)
#define CUBLAS_CHECK(call)                                                                                 \
  do {                                                                                                     \
    cublasStatus_t s_ = (call);                                                                            \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                     \
      std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #call, static_cast<int>(s_)); \
      std::exit(2);                                                                                        \
    }                                                                                                      \
  } while (0)

using namespace sgemm_bench;

namespace {

constexpr int kVariants = 7;
const char* kNames[kVariants + 1] = {"cuBLAS",         "1 naive",          "2 smem tiling",
                                     "3 1-D blocking", "4 2-D blocking",   "5 128-bit loads",
                                     "6 double buffer", "7 warp tiling"};

// One problem: op(A) (M,K) @ op(B) (K,N) into C (M,N), row-major, densely stored.
struct Problem {
  int M, N, K;
  bool ta, tb;  // A stored (K,M), B stored (N,K)
  float alpha, beta;
  const float* A;
  const float* B;
  float* C;
};

cublasHandle_t g_cublas;

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void run_cublas(const Problem& p) {
  CUBLAS_CHECK(cublasSgemm(g_cublas, p.tb ? CUBLAS_OP_T : CUBLAS_OP_N, p.ta ? CUBLAS_OP_T : CUBLAS_OP_N, p.N, p.M,
                           p.K, &p.alpha, p.B, p.tb ? p.K : p.N, p.A, p.ta ? p.M : p.K, &p.beta, p.C, p.N));
}

ember::cuda::sgemm::Params params(const Problem& p) {
  ember::cuda::sgemm::Params P{};
  P.a = p.A, P.b = p.B, P.c = p.C;
  P.M = p.M, P.N = p.N, P.K = p.K;
  P.lda = p.ta ? p.M : p.K, P.ldb = p.tb ? p.K : p.N, P.ldc = p.N;
  P.alpha = p.alpha, P.beta = p.beta;
  // cudaMalloc is 256-byte aligned, so rows are 16-byte aligned when ld is a multiple of 4
  P.vec_a = P.lda % 4 == 0, P.vec_b = P.ldb % 4 == 0, P.vec_c = P.ldc % 4 == 0;
  return P;
}

unsigned cdiv(int a, int b) { return static_cast<unsigned>((a + b - 1) / b); }

// Variants 1-6 take A (M,K) @ B (K,N) only; 7 takes every transpose.
void run_variant(int v, const Problem& p) {
  const dim3 tiles(cdiv(p.N, kBN), cdiv(p.M, kBM));
  switch (v) {
    case 0: run_cublas(p); return;
    case 1: sgemm_naive<<<dim3(cdiv(p.N, 32), cdiv(p.M, 8)), dim3(32, 8)>>>(p.M, p.N, p.K, p.alpha, p.A, p.B, p.beta, p.C); break;
    case 2: sgemm_smem<<<dim3(cdiv(p.N, 32), cdiv(p.M, 32)), dim3(32, 32)>>>(p.M, p.N, p.K, p.alpha, p.A, p.B, p.beta, p.C); break;
    case 3: sgemm_1d_blocking<<<dim3(cdiv(p.N, 64), cdiv(p.M, 64)), 512>>>(p.M, p.N, p.K, p.alpha, p.A, p.B, p.beta, p.C); break;
    case 4: sgemm_2d_blocking<<<tiles, 256>>>(p.M, p.N, p.K, p.alpha, p.A, p.B, p.beta, p.C); break;
    case 5: sgemm_vectorized<<<tiles, 256>>>(params(p)); break;
    case 6: sgemm_double_buffered<<<tiles, 256>>>(params(p)); break;
    case 7:
      if (!p.ta && !p.tb) sgemm_warp_tiled<false, false><<<tiles, 256>>>(params(p));
      else if (!p.ta) sgemm_warp_tiled<false, true><<<tiles, 256>>>(params(p));
      else if (!p.tb) sgemm_warp_tiled<true, false><<<tiles, 256>>>(params(p));
      else sgemm_warp_tiled<true, true><<<tiles, 256>>>(params(p));
      break;
  }
  CUDA_CHECK(cudaGetLastError());
}

// Uniform in [-1, 1) from a hash of the index: no host-side generation for 8192^2.
__global__ void fill_uniform(float* x, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 0x9E3779B1u ^ seed;
    h ^= h >> 16, h *= 0x85EBCA6Bu, h ^= h >> 13, h *= 0xC2B2AE35u, h ^= h >> 16;
    x[i] = (h >> 8) * (2.f / 16777216.f) - 1.f;
  }
}

void fill(float* x, int64_t n, uint32_t seed) {
  fill_uniform<<<1024, 256>>>(x, n, seed);
  CUDA_CHECK(cudaGetLastError());
}

// Max |C - cuBLAS| on op(A) @ op(B) with alpha, beta != 1, 0 (so the epilogue is checked
// too) against a tolerance that grows with K; inputs are uniform in [-1, 1).
bool check(int v, int M, int N, int K, bool ta, bool tb, float* A, float* B, float* C, float* Cref) {
  const int64_t mn = int64_t(M) * N;
  fill(A, int64_t(M) * K, 1);
  fill(B, int64_t(K) * N, 2);
  fill(Cref, mn, 3);
  fill(C, mn, 3);
  run_cublas({M, N, K, ta, tb, 1.25f, -0.5f, A, B, Cref});
  run_variant(v, {M, N, K, ta, tb, 1.25f, -0.5f, A, B, C});
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> got(mn), want(mn);
  CUDA_CHECK(cudaMemcpy(got.data(), C, mn * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(want.data(), Cref, mn * sizeof(float), cudaMemcpyDeviceToHost));
  double err = 0;
  for (int64_t i = 0; i < mn; ++i) err = std::max(err, double(std::fabs(got[i] - want[i])) + (std::isnan(got[i]) ? 1e30 : 0));
  const double tol = 1e-4 + 1e-5 * K;
  const bool ok = err <= tol;
  std::printf("  check %-16s %c%c %5dx%5dx%5d  max err %.2e (tol %.1e)  %s\n", kNames[v], ta ? 'T' : 'N', tb ? 'T' : 'N',
              M, N, K, err, tol, ok ? "ok" : "FAIL");
  return ok;
}

// Median seconds of `reps` event-timed runs after one warm-up.
double time_median(const std::function<void()>& fn, int reps) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(start));
    fn();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    t.push_back(ms * 1e-3);
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {1024, 2048, 4096, 8192}, variants;
  int reps = 0;  // 0: by size
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-n") && i + 1 < argc) {
      sizes.clear();
      for (char* s = std::strtok(argv[++i], ","); s; s = std::strtok(nullptr, ",")) sizes.push_back(std::atoi(s));
    } else if (!std::strcmp(argv[i], "-r") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (std::atoi(argv[i]) >= 1 && std::atoi(argv[i]) <= kVariants) {
      variants.push_back(std::atoi(argv[i]));
    } else {
      std::fprintf(stderr, "usage: %s [-n 1024,2048,...] [-r repeats] [variant 1..%d ...]\n", argv[0], kVariants);
      return 2;
    }
  }
  if (variants.empty())
    for (int v = 1; v <= kVariants; ++v) variants.push_back(v);

  int dev;
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  CUBLAS_CHECK(cublasCreate(&g_cublas));
  // Plain FP32 on the CUDA cores: the default math mode never uses TF32 tensor cores for Sgemm.
  CUBLAS_CHECK(cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH));
  std::printf("%s, sm_%d%d, %d SMs\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);

  const int nmax = std::max(2048, *std::max_element(sizes.begin(), sizes.end()));
  float *A, *B, *C, *Cref;
  const size_t bytes = size_t(nmax) * nmax * sizeof(float);
  CUDA_CHECK(cudaMalloc(&A, bytes));
  CUDA_CHECK(cudaMalloc(&B, bytes));
  CUDA_CHECK(cudaMalloc(&C, bytes));
  CUDA_CHECK(cudaMalloc(&Cref, bytes));

  // Checks: an odd shape (every edge partial, K not a multiple of 4: the scalar load
  // path) and a large one; variant 7 on all four transposes, as ember calls it.
  std::printf("checks against cuBLAS (alpha 1.25, beta -0.5)\n");
  bool all_ok = true;
  std::vector<bool> ok(kVariants + 1, true);
  for (int v : variants) {
    const int ntrans = v == 7 ? 4 : 1;
    for (int t = 0; t < ntrans; ++t) {
      const bool ta = t & 2, tb = t & 1;
      ok[v] = check(v, 317, 259, 131, ta, tb, A, B, C, Cref) && ok[v];
      ok[v] = check(v, 260, 388, 516, ta, tb, A, B, C, Cref) && ok[v];  // ld % 4 == 0: 128-bit path, partial tiles
      ok[v] = check(v, 2048, 2048, 2048, ta, tb, A, B, C, Cref) && ok[v];
    }
    all_ok = all_ok && ok[v];
  }

  std::printf("\n%-16s %-3s %6s %9s %9s %9s\n", "variant", "op", "n", "ms", "GFLOP/s", "/cuBLAS");
  std::vector<double> ratio7;
  for (int n : sizes) {
    fill(A, int64_t(n) * n, 1);
    fill(B, int64_t(n) * n, 2);
    const double flops = 2.0 * n * n * n;
    const int r = reps ? reps : (n >= 8192 ? 5 : n >= 4096 ? 10 : 20);
    // NN is the forward; NT and TN are the backward's grad_input and grad_weight.
    for (int t : {0, 1, 2}) {
      const bool ta = t == 2, tb = t == 1;
      const char* op = t == 0 ? "NN" : t == 1 ? "NT" : "TN";
      const Problem p{n, n, n, ta, tb, 1.f, 0.f, A, B, C};
      const double base = time_median([&] { run_cublas(p); }, r);
      std::printf("%-16s %-3s %6d %9.3f %9.0f %9.2f\n", kNames[0], op, n, base * 1e3, flops / base * 1e-9, 1.0);
      for (int v : variants) {
        if (!ok[v] || (t != 0 && v != 7) || (v == 1 && n > 4096)) continue;  // naive: minutes at 8192
        const double s = time_median([&] { run_variant(v, p); }, r);
        std::printf("%-16s %-3s %6d %9.3f %9.0f %9.2f\n", kNames[v], op, n, s * 1e3, flops / s * 1e-9, base / s);
        if (v == 7) ratio7.push_back(base / s);
      }
      std::fflush(stdout);
    }
  }
  if (!ratio7.empty()) {
    std::printf("\nvariant 7 / cuBLAS:");
    for (double x : ratio7) std::printf(" %.2f", x);
    std::printf("  (goal: >= 0.8 at 1024 and 2048, >= 0.9 at 4096 and 8192)\n");
  }
  CUDA_CHECK(cudaFree(A));
  CUDA_CHECK(cudaFree(B));
  CUDA_CHECK(cudaFree(C));
  CUDA_CHECK(cudaFree(Cref));
  CUBLAS_CHECK(cublasDestroy(g_cublas));
  if (!all_ok) std::printf("\nFAILED: a variant disagrees with cuBLAS (not timed)\n");
  return all_ok ? 0 : 1;
}
