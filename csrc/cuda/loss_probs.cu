// cross_entropy with probability targets on the GPU: the same op, names and checks as
// cross_entropy_probs in cpu/loss.cpp, forward next to backward. One block per (n, k)
// row of C logits: threads stride the classes, block reductions (warp shuffles, then
// shared memory) give the row's max and sums. Rows are strided (class stride K for
// (N, C, d...) inputs), so reads coalesce across rows only for K > 1; simple, not tuned.
#include <cmath>
#include <cstdint>
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"

namespace ember::cuda {
namespace {

constexpr int kRowThreads = 128;

struct Max { template <class T> __device__ T operator()(T a, T b) const { return b > a ? b : a; } };  // NaN never wins, as the CPU
struct Add { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };

// Every thread of the block gets op over all threads' v. smem: 32 slots.
template <class T, class Op>
__device__ T block_all_reduce(T v, Op op, T* smem) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  __syncthreads();  // the previous call's readers are done with smem
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = smem[0];
  for (int i = 1; i < nwarps; ++i) v = op(v, smem[i]);
  return v;
}

// Row (n, k) of x (N, C, K) at strides xs, target at strides ts.
struct RowLayout {
  int64_t N, C, K;
  int64_t xs[3], ts[3];
};

template <class T>
__device__ T smoothed(const T* t, int64_t st, const T* w, int64_t sw, int64_t c, T keep, T uniform) {
  return (w ? w[c * sw] : T(1)) * (keep * t[c * st] + uniform);
}

// loss (N, K) = sum_c w_c t'_c (m - x_c) + log s * sum_c w_c t'_c; stats (N, K, 2) = {m, log s}
template <class T>
__global__ void ce_probs_forward(RowLayout L, const T* x, const T* t, const T* w, int64_t sw, T eps, T* loss,
                                 T* stats) {
  __shared__ T smem[32];
  const T keep = T(1) - eps, uniform = eps / T(L.C);
  for (int64_t r = blockIdx.x; r < L.N * L.K; r += gridDim.x) {
    const int64_t n = r / L.K, k = r % L.K;
    const T* xr = x + n * L.xs[0] + k * L.xs[2];
    const T* tr = t + n * L.ts[0] + k * L.ts[2];
    T m = -INFINITY;
    for (int64_t c = threadIdx.x; c < L.C; c += blockDim.x) m = Max()(m, xr[c * L.xs[1]]);
    m = block_all_reduce(m, Max(), smem);
    T s = 0, a = 0, b = 0;
    for (int64_t c = threadIdx.x; c < L.C; c += blockDim.x) {
      const T xc = xr[c * L.xs[1]], wt = smoothed(tr, L.ts[1], w, sw, c, keep, uniform);
      s += ::exp(xc - m);
      a += wt * (m - xc);
      b += wt;
    }
    s = block_all_reduce(s, Add(), smem);
    a = block_all_reduce(a, Add(), smem);
    b = block_all_reduce(b, Add(), smem);
    if (threadIdx.x == 0) {
      const T ls = ::log(s);
      stats[2 * r] = m;
      stats[2 * r + 1] = ls;
      loss[r] = a + b * ls;
    }
  }
}

// grad_input_c = g (softmax_c B - w_c t'_c), B = sum_j w_j t'_j; grad_target_c = -g (1 - eps) w_c log p_c
template <class T>
__global__ void ce_probs_backward(RowLayout L, const T* x, const T* t, const T* w, int64_t sw, T eps, const T* stats,
                                  const T* g, int64_t gn, int64_t gk, T* gx, RowLayout O, T* gt) {
  __shared__ T smem[32];
  const T keep = T(1) - eps, uniform = eps / T(L.C);
  for (int64_t r = blockIdx.x; r < L.N * L.K; r += gridDim.x) {
    const int64_t n = r / L.K, k = r % L.K;
    const T* xr = x + n * L.xs[0] + k * L.xs[2];
    const T* tr = t + n * L.ts[0] + k * L.ts[2];
    T b = 0;
    for (int64_t c = threadIdx.x; c < L.C; c += blockDim.x) b += smoothed(tr, L.ts[1], w, sw, c, keep, uniform);
    b = block_all_reduce(b, Add(), smem);
    const T m = stats[2 * r], ls = stats[2 * r + 1], gr = g[n * gn + k * gk];
    T* gxr = gx + n * O.xs[0] + k * O.xs[2];
    T* gtr = gt ? gt + n * O.ts[0] + k * O.ts[2] : nullptr;
    for (int64_t c = threadIdx.x; c < L.C; c += blockDim.x) {
      const T z = (xr[c * L.xs[1]] - m) - ls;  // log softmax
      gxr[c * O.xs[1]] = gr * (b * ::exp(z) - smoothed(tr, L.ts[1], w, sw, c, keep, uniform));
      if (gtr) gtr[c * O.ts[1]] = -gr * keep * (w ? w[c * sw] : T(1)) * z;
    }
  }
}

RowLayout row_layout(const TensorView& x, const TensorView& t) {
  RowLayout L{x.shape[0], x.shape[1], x.shape[2], {}, {}};
  for (int d = 0; d < 3; ++d) L.xs[d] = x.strides[d], L.ts[d] = t.strides[d];
  return L;
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>(rows < 65536 ? rows : 65536); }

}  // namespace

void cross_entropy_probs(const TensorView& logits, const TensorView& target, const TensorView* weight,
                         double label_smoothing, const TensorView& loss, const TensorView& stats) {
  const char* op = "cross_entropy_probs";
  check_cross_entropy_probs(logits, target, weight, stats, label_smoothing, op);
  check_probs_out(loss, logits, logits.shape[0], logits.shape[2], 2, op, "loss");
  RowLayout L = row_layout(logits, target);
  if (L.N * L.K == 0) return;
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    ce_probs_forward<T><<<row_blocks(L.N * L.K), kRowThreads, 0, current_stream()>>>(
        L, logits.ptr<T>(), target.ptr<T>(), weight ? weight->ptr<T>() : nullptr, weight ? weight->strides[0] : 0,
        static_cast<T>(label_smoothing), loss.ptr<T>(), stats.ptr<T>());
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

void cross_entropy_probs_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                                  const TensorView& stats, const TensorView& grad, double label_smoothing,
                                  const TensorView& grad_input, const TensorView* grad_target) {
  const char* op = "cross_entropy_probs_backward";
  check_cross_entropy_probs(logits, target, weight, stats, label_smoothing, op);
  check_cross_entropy_probs_backward(logits, grad, grad_input, grad_target, op);
  RowLayout L = row_layout(logits, target);
  RowLayout O = row_layout(grad_input, grad_target ? *grad_target : grad_input);  // ts unused without grad_target
  if (L.N * L.K == 0) return;
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    ce_probs_backward<T><<<row_blocks(L.N * L.K), kRowThreads, 0, current_stream()>>>(
        L, logits.ptr<T>(), target.ptr<T>(), weight ? weight->ptr<T>() : nullptr, weight ? weight->strides[0] : 0,
        static_cast<T>(label_smoothing), stats.ptr<T>(), grad.ptr<T>(), grad.strides[0], grad.strides[1],
        grad_input.ptr<T>(), O, grad_target ? grad_target->ptr<T>() : nullptr);
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace ember::cuda
