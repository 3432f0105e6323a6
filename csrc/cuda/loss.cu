// Losses on the GPU, forward next to backward: the contract of cpu/loss.cpp. Fused
// softmax cross-entropy (weights, ignore_index, label smoothing), nll_loss, mse_loss,
// binary_cross_entropy_with_logits.
//
// Class-indexed losses see input as (N, C, K) (PyTorch's (N, C, d1, ...), K = 1 for
// (N, C)) with any strides and targets as (N, K); they write the per-sample loss (N, K)
// (0 where ignored) and weight_sum (), the 'mean' divisor, on the device.
// Targets are checked first (scan_targets): every one must be ignore_index or a class in
// [0, C), else the op raises the CPU's IndexError. That answer has to reach the host, so
// these ops synchronize the stream once, before any kernel indexes by a target.
// Cross-entropy rows are reduced by a team (team.cuh): a warp or block per row when the
// classes are contiguous (K == 1), a thread per row when they are strided (K > 1, where
// neighbouring rows are neighbouring positions in memory).
#include <cstdint>
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "elementwise.cuh"
#include "team.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

// ---- target check and weight totals

constexpr unsigned long long kNoBadTarget = ~0ull;

// Block b: partial[b] = sum of w[target] over its non-ignored targets (in double);
// *first_bad = the smallest flat index (n*K + k) of an invalid target.
template <class T>
__global__ void target_scan(ClassLayout R, const int64_t* __restrict__ tgt, const T* __restrict__ w, int64_t sw,
                            int64_t ignore_index, double* partial, unsigned long long* first_bad) {
  __shared__ double warp_vals[kThreads / 32];
  double acc = 0;
  unsigned long long bad = kNoBadTarget;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < R.N * R.K; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = tgt[(i / R.K) * R.tn + (i % R.K) * R.tk];
    if (t == ignore_index) continue;
    if (t < 0 || t >= R.C) bad = min(bad, static_cast<unsigned long long>(i));
    else acc += w ? static_cast<double>(w[t * sw]) : 1.0;
  }
  if (bad != kNoBadTarget) atomicMin(first_bad, bad);
  acc = warp_all_reduce(acc, SumOp{});
  if ((threadIdx.x & 31) == 0) warp_vals[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int j = 0; j < kThreads / 32; ++j) total += warp_vals[j];
    partial[blockIdx.x] = total;
  }
}

// One block: weight_sum (when given) = the partials added in order; *class_total = sum
// of all class weights (C without weights), label smoothing's W.
template <class T>
__global__ void target_scan_finish(const double* partial, int nparts, const T* __restrict__ w, int64_t sw, int64_t C,
                                   T* weight_sum, T* class_total) {
  __shared__ double warp_vals[kThreads / 32];
  double acc = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) acc += w ? static_cast<double>(w[c * sw]) : 1.0;
  acc = warp_all_reduce(acc, SumOp{});
  if ((threadIdx.x & 31) == 0) warp_vals[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int j = 0; j < kThreads / 32; ++j) total += warp_vals[j];
    *class_total = static_cast<T>(total);
    if (weight_sum) {
      double s = 0;
      for (int b = 0; b < nparts; ++b) s += partial[b];
      *weight_sum = static_cast<T>(s);
    }
  }
}

// Checks the targets (throws the CPU's message for the first bad one) and leaves
// weight_sum and the class-weight total on the device; returns the latter's address
// (workspace slot 1, valid until the op's kernels ran).
template <class T>
const T* scan_targets(const ClassLayout& R, const int64_t* tgt, const T* w, int64_t sw, int64_t ignore_index,
                      T* weight_sum, const char* op) {
  cudaStream_t s = current_stream();
  const unsigned blocks = blocks_for(R.N * R.K);
  auto* first_bad = static_cast<unsigned long long*>(workspace(0, sizeof(unsigned long long) + sizeof(double) * blocks));
  double* partial = reinterpret_cast<double*>(first_bad + 1);
  T* class_total = static_cast<T*>(workspace(1, sizeof(T)));
  EMBER_CUDA_CHECK(cudaMemsetAsync(first_bad, 0xff, sizeof(unsigned long long), s));
  target_scan<T><<<blocks, kThreads, 0, s>>>(R, tgt, w, sw, ignore_index, partial, first_bad);
  EMBER_CUDA_LAUNCH_CHECK(op);
  target_scan_finish<T><<<1, kThreads, 0, s>>>(partial, static_cast<int>(blocks), w, sw, R.C, weight_sum, class_total);
  EMBER_CUDA_LAUNCH_CHECK(op);
  unsigned long long bad = kNoBadTarget;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&bad, first_bad, sizeof(bad), cudaMemcpyDeviceToHost, s));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(s));
  if (bad != kNoBadTarget) {
    const int64_t n = static_cast<int64_t>(bad) / R.K, k = static_cast<int64_t>(bad) % R.K;
    int64_t t = 0;
    EMBER_CUDA_CHECK(cudaMemcpy(&t, tgt + n * R.tn + k * R.tk, sizeof(t), cudaMemcpyDeviceToHost));
    throw_target_out_of_bounds(R, t, n, k, ignore_index, op);
  }
  return class_total;
}

// ---- cross_entropy: logits (N, C, K), target (N, K), weight (C) or null
//   -> loss (N, K), stats (N, K, 2) = {row max, log sum exp(x - max)}, contiguous.
// loss = (1 - eps) w_t (lse - x_t) + eps / C * sum_c w_c (lse - x_c), written as
//   nll = (m - x_t) + log s, smooth = sum_c w_c (m - x_c) + W log s   (no rounded lse).
template <class Team, class T>
__global__ void cross_entropy_rows(ClassLayout R, const T* __restrict__ x, const int64_t* __restrict__ tgt,
                                   const T* __restrict__ w, int64_t sw, const T* __restrict__ class_total,
                                   int64_t ignore_index, T eps, T* __restrict__ loss, T* __restrict__ stats) {
  const Team team;
  const int64_t C = R.C;
  for (int64_t r = team.first_row(); r < R.N * R.K; r += team.row_step()) {
    const int64_t n = r / R.K, k = r % R.K;
    const T* xr = x + n * R.xn + k * R.xk;
    T m = -INFINITY;
    for (int64_t c = team.lane(); c < C; c += team.size()) m = max_keep(m, xr[c * R.xc]);
    m = team.all_reduce(m, MaxOp{});
    T s = 0, sm = 0;
    for (int64_t c = team.lane(); c < C; c += team.size()) {
      const T v = xr[c * R.xc];
      s += exp_t(v - m);
      if (eps != T(0)) sm += (w ? w[c * sw] : T(1)) * (m - v);
    }
    s = team.all_reduce(s, SumOp{});
    if (eps != T(0)) sm = team.all_reduce(sm, SumOp{});
    if (team.lane() == 0) {
      const T ls = log_t(s);
      stats[2 * r] = m;
      stats[2 * r + 1] = ls;
      const int64_t t = tgt[n * R.tn + k * R.tk];
      if (t == ignore_index) {
        loss[r] = 0;
      } else {
        const T wt = w ? w[t * sw] : T(1);
        T l = (T(1) - eps) * wt * ((m - xr[t * R.xc]) + ls);
        if (eps != T(0)) l += eps / T(C) * (sm + *class_total * ls);
        loss[r] = l;
      }
    }
  }
}

// grad (N, K) any strides -> grad_input (N, C, K) any strides:
// grad_c = g [(1-eps) w_t (p_c - [c == t]) + eps/C (W p_c - w_c)] = A p_c - B w_c - D [c == t]
template <class Team, class T>
__global__ void cross_entropy_backward_rows(ClassLayout R, const T* __restrict__ x, const int64_t* __restrict__ tgt,
                                            const T* __restrict__ w, int64_t sw, const T* __restrict__ class_total,
                                            int64_t ignore_index, T eps, const T* __restrict__ stats,
                                            const T* __restrict__ g, int64_t gn, int64_t gk, T* __restrict__ gx,
                                            int64_t gxn, int64_t gxc, int64_t gxk) {
  const Team team;
  const int64_t C = R.C;
  for (int64_t r = team.first_row(); r < R.N * R.K; r += team.row_step()) {
    const int64_t n = r / R.K, k = r % R.K;
    const T* xr = x + n * R.xn + k * R.xk;
    T* out = gx + n * gxn + k * gxk;
    const int64_t t = tgt[n * R.tn + k * R.tk];
    if (t == ignore_index) {
      for (int64_t c = team.lane(); c < C; c += team.size()) out[c * gxc] = 0;
      continue;
    }
    const T m = stats[2 * r], ls = stats[2 * r + 1], scale = g[n * gn + k * gk];
    const T wt = w ? w[t * sw] : T(1);
    const T A = scale * ((T(1) - eps) * wt + eps / T(C) * *class_total);
    const T B = scale * eps / T(C);
    const T D = scale * (T(1) - eps) * wt;
    for (int64_t c = team.lane(); c < C; c += team.size()) {
      T v = A * exp_t((xr[c * R.xc] - m) - ls) - B * (w ? w[c * sw] : T(1));
      if (c == t) v -= D;
      out[c * gxc] = v;
    }
  }
}

// ---- nll_loss: log_probs (N, C, K), target (N, K) -> loss (N, K) = -w_t x[n, t, k]
template <class T>
__global__ void nll_loss_kernel(ClassLayout R, const T* __restrict__ x, const int64_t* __restrict__ tgt,
                                const T* __restrict__ w, int64_t sw, int64_t ignore_index, T* __restrict__ loss) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < R.N * R.K; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = r / R.K, k = r % R.K, t = tgt[n * R.tn + k * R.tk];
    loss[r] = t == ignore_index ? T(0) : -(w ? w[t * sw] : T(1)) * x[n * R.xn + t * R.xc + k * R.xk];
  }
}

// grad (N, K) any strides -> grad_input (N, C, K) (R's strides): -w_t grad at the target, 0 elsewhere.
template <class T>
__global__ void nll_loss_backward_kernel(ClassLayout R, const int64_t* __restrict__ tgt, const T* __restrict__ w,
                                         int64_t sw, const T* __restrict__ g, int64_t gn, int64_t gk,
                                         int64_t ignore_index, T* __restrict__ gx) {
  const int64_t total = R.N * R.C * R.K;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / (R.C * R.K), c = (i / R.K) % R.C, k = i % R.K;
    const int64_t t = tgt[n * R.tn + k * R.tk];
    gx[n * R.xn + c * R.xc + k * R.xk] =
        (t != ignore_index && c == t) ? -(w ? w[t * sw] : T(1)) * g[n * gn + k * gk] : T(0);
  }
}

// ---- elementwise losses (any strides, operands broadcast by the caller)

__device__ __forceinline__ float log1p_t(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_t(double x) { return ::log1p(x); }
// softplus(-x) = log(1 + e^-x) = log1p(e^-|x|) + max(-x, 0), without overflow
template <class T>
__device__ __forceinline__ T softplus_neg(T x) { return log1p_t(exp_t(-fabs(x))) + (x < T(0) ? -x : T(0)); }
template <class T>
__device__ __forceinline__ T sigmoid_t(T x) {
  const T e = exp_t(-fabs(x));
  return (x < T(0) ? e : T(1)) / (T(1) + e);
}

// mse: out = (x - t)^2
struct SquaredDiff {
  template <class T> __device__ T operator()(T x, T t) const {
    const T d = x - t;
    return d * d;
  }
};

// operands x, t, g, grad_input: grad_input = 2 scale g (x - t)
template <class T>
struct MseBackward {
  const T *x, *t, *g;
  T* o;
  T scale2;
  __device__ void operator()(const int64_t* off) const { o[off[3]] = scale2 * g[off[2]] * (x[off[0]] - t[off[1]]); }
};

// operands x, t, w, pos_weight, out: out = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)]
template <class T>
struct Bce {
  const T *x, *t, *w, *pw;
  T* o;
  __device__ void operator()(const int64_t* off) const {
    const T xi = x[off[0]], ti = t[off[1]];
    const T lw = T(1) + (pw[off[3]] - T(1)) * ti;
    o[off[4]] = w[off[2]] * ((T(1) - ti) * xi + lw * softplus_neg(xi));
  }
};

// operands x, t, w, pos_weight, g, grad_input, grad_target (or grad_input's layout again):
//   grad_input  = scale w g ((1 - t) - (1 + (pw - 1) t) sigmoid(-x))
//   grad_target = scale w g (-x + (pw - 1) softplus(-x))
template <class T>
struct BceBackward {
  const T *x, *t, *w, *pw, *g;
  T *gx, *gt;
  T scale;
  __device__ void operator()(const int64_t* off) const {
    const T xi = x[off[0]], ti = t[off[1]], pwi = pw[off[3]];
    const T c = scale * w[off[2]] * g[off[4]];
    gx[off[5]] = c * ((T(1) - ti) - (T(1) + (pwi - T(1)) * ti) * sigmoid_t(-xi));
    if (gt) gt[off[6]] = c * (-xi + (pwi - T(1)) * softplus_neg(xi));
  }
};

template <class T>
const T* opt_data(const TensorView* t) { return t ? t->ptr<T>() : nullptr; }

}  // namespace

void cross_entropy(const TensorView& logits, const TensorView& target, const TensorView* weight,
                   int64_t ignore_index, double label_smoothing, const TensorView& loss, const TensorView& stats,
                   const TensorView& weight_sum) {
  const char* op = "cross_entropy";
  const ClassLayout R = check_cross_entropy_args(logits, target, weight, label_smoothing, loss, stats, weight_sum);
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    const T* w = opt_data<T>(weight);
    const int64_t sw = weight ? weight->strides[0] : 0;
    const T* class_total = scan_targets<T>(R, target.ptr<int64_t>(), w, sw, ignore_index, weight_sum.ptr<T>(), op);
    check_has_classes(R, op);
    if (R.N * R.K > 0) {
      launch_teams(R.N * R.K, R.C, R.xc != 1, [&](auto team, unsigned blocks) {
        cross_entropy_rows<decltype(team), T><<<blocks, kThreads, 0, current_stream()>>>(
            R, logits.ptr<T>(), target.ptr<int64_t>(), w, sw, class_total, ignore_index,
            static_cast<T>(label_smoothing), loss.ptr<T>(), stats.ptr<T>());
      });
      EMBER_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                            const TensorView& stats, const TensorView& grad, int64_t ignore_index,
                            double label_smoothing, const TensorView& grad_input) {
  const char* op = "cross_entropy_backward";
  const ClassLayout R = check_cross_entropy_backward_args(logits, target, weight, stats, grad, grad_input);
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    const T* w = opt_data<T>(weight);
    const int64_t sw = weight ? weight->strides[0] : 0;
    const T* class_total = scan_targets<T>(R, target.ptr<int64_t>(), w, sw, ignore_index, nullptr, op);
    if (R.N * R.K > 0 && R.C > 0) {
      launch_teams(R.N * R.K, R.C, R.xc != 1 || grad_input.strides[1] != 1, [&](auto team, unsigned blocks) {
        cross_entropy_backward_rows<decltype(team), T><<<blocks, kThreads, 0, current_stream()>>>(
            R, logits.ptr<T>(), target.ptr<int64_t>(), w, sw, class_total, ignore_index,
            static_cast<T>(label_smoothing), stats.ptr<T>(), grad.ptr<T>(), grad.strides[0], grad.strides[1],
            grad_input.ptr<T>(), grad_input.strides[0], grad_input.strides[1], grad_input.strides[2]);
      });
      EMBER_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void nll_loss(const TensorView& log_probs, const TensorView& target, const TensorView* weight, int64_t ignore_index,
              const TensorView& loss, const TensorView& weight_sum) {
  const char* op = "nll_loss";
  const ClassLayout R = check_nll_loss_args(log_probs, target, weight, loss, weight_sum);
  EMBER_DISPATCH_FLOAT(log_probs.dtype, op, {
    const T* w = opt_data<T>(weight);
    const int64_t sw = weight ? weight->strides[0] : 0;
    scan_targets<T>(R, target.ptr<int64_t>(), w, sw, ignore_index, weight_sum.ptr<T>(), op);
    if (R.N * R.K > 0) {
      nll_loss_kernel<T><<<blocks_for(R.N * R.K), kThreads, 0, current_stream()>>>(
          R, log_probs.ptr<T>(), target.ptr<int64_t>(), w, sw, ignore_index, loss.ptr<T>());
      EMBER_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void nll_loss_backward(const TensorView& target, const TensorView* weight, const TensorView& grad,
                       int64_t ignore_index, const TensorView& grad_input) {
  const char* op = "nll_loss_backward";
  const ClassLayout R = check_nll_loss_backward_args(target, weight, grad, grad_input);
  EMBER_DISPATCH_FLOAT(grad_input.dtype, op, {
    const T* w = opt_data<T>(weight);
    const int64_t sw = weight ? weight->strides[0] : 0;
    scan_targets<T>(R, target.ptr<int64_t>(), w, sw, ignore_index, nullptr, op);
    if (R.N * R.C * R.K > 0) {
      nll_loss_backward_kernel<T><<<blocks_for(R.N * R.C * R.K), kThreads, 0, current_stream()>>>(
          R, target.ptr<int64_t>(), w, sw, grad.ptr<T>(), grad.strides[0], grad.strides[1], ignore_index,
          grad_input.ptr<T>());
      EMBER_CUDA_LAUNCH_CHECK(op);
    }
  });
}

// input, target (*) any strides -> out (*) = (input - target)^2
void mse_loss(const TensorView& input, const TensorView& target, const TensorView& out) {
  const char* op = "mse_loss";
  check_elementwise_loss_args(op, input, {&target, &out});
  EMBER_DISPATCH_FLOAT(input.dtype, op, run_binary<SquaredDiff, T, T>(input, target, out, SquaredDiff{}, op));
}

// grad (*) any strides (stride 0 for a reduced loss), scale (1/numel for 'mean')
//   -> grad_input (*) = 2 scale grad (input - target)
void mse_loss_backward(const TensorView& input, const TensorView& target, const TensorView& grad, double scale,
                       const TensorView& grad_input) {
  const char* op = "mse_loss_backward";
  check_elementwise_loss_args(op, input, {&target, &grad, &grad_input});
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    const StridedLayout<4> L({&input, &target, &grad, &grad_input});
    run_strided(L, MseBackward<T>{input.ptr<T>(), target.ptr<T>(), grad.ptr<T>(), grad_input.ptr<T>(),
                                  static_cast<T>(2 * scale)}, op);
  });
}

// input, target, weight, pos_weight (*) any strides -> out (*)
void binary_cross_entropy_with_logits(const TensorView& input, const TensorView& target, const TensorView& weight,
                                      const TensorView& pos_weight, const TensorView& out) {
  const char* op = "binary_cross_entropy_with_logits";
  check_elementwise_loss_args(op, input, {&target, &weight, &pos_weight, &out});
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    const StridedLayout<5> L({&input, &target, &weight, &pos_weight, &out});
    run_strided(L, Bce<T>{input.ptr<T>(), target.ptr<T>(), weight.ptr<T>(), pos_weight.ptr<T>(), out.ptr<T>()}, op);
  });
}

// grad (*) any strides, scale (1/numel for 'mean') -> grad_input (*), grad_target (*) when not null
void binary_cross_entropy_with_logits_backward(const TensorView& input, const TensorView& target,
                                               const TensorView& weight, const TensorView& pos_weight,
                                               const TensorView& grad, double scale, const TensorView& grad_input,
                                               const TensorView* grad_target) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  check_elementwise_loss_args(op, input, {&target, &weight, &pos_weight, &grad, &grad_input});
  if (grad_target) check_elementwise_loss_args(op, input, {grad_target});
  const TensorView& gt = grad_target ? *grad_target : grad_input;  // a placeholder layout when absent
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    const StridedLayout<7> L({&input, &target, &weight, &pos_weight, &grad, &grad_input, &gt});
    run_strided(L, BceBackward<T>{input.ptr<T>(), target.ptr<T>(), weight.ptr<T>(), pos_weight.ptr<T>(),
                                  grad.ptr<T>(), grad_input.ptr<T>(), grad_target ? grad_target->ptr<T>() : nullptr,
                                  static_cast<T>(scale)}, op);
  });
}

}  // namespace ember::cuda
