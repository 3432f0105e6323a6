// Batch normalization on the GPU, forward next to backward: the contract of cpu/norm.cpp.
// x (N,C,S) contiguous, S = product of the spatial dims; channel c is N rows of S
// contiguous elements, row n starting at (n*C + c)*S.
//
// Forward (training): one pass over x accumulates per channel, in double, the shifted
// sums sum(x - K) and sum((x - K)^2) with K = the channel's first element; then a C-thread
// kernel turns them into mean = K + s1/M and var = s2/M - (s1/M)^2. We chose shifted
// sums over Welford and over two passes: x is read once (two-pass reads it twice more
// before normalizing), there is no division per element (Welford's count update), and
// partials merge by plain addition in a fixed order, so results are deterministic. The
// shift removes the cancellation of the textbook E[x^2] - E[x]^2 (K is within a few
// standard deviations of the mean), and double keeps float32 data exact enough
// (tests/test_norm.py's large-mean case). float64 data accumulates in double as well.
// Then the normalize kernel y = x * scale[c] + shift[c].
// Backward: the same pass computes g1 = sum(dy), g2 = sum(dy * (x - mean)), then
//   dbias = g1, dweight = g2 * invstd,
//   training: dx = k1*dy - k2*(x - mean) - k0, k1 = w*invstd, k2 = w*invstd^3*g2/M, k0 = w*invstd*g1/M
//   eval:     dx = k1*dy
//
// Two schedules for the per-channel pass, as on the CPU:
//   planes (S >= 32): grid (splits, C), a block reduces rows [n0, n1) of channel c, its
//     threads striding along each row (coalesced), shuffles + shared memory at the end;
//   columns (S < 32, e.g. (N, C) input): x seen as (N, C*S); a warp takes 32 adjacent
//     columns and its lanes walk down rows, so each warp load is one contiguous run.
// Both write double2 partials to the workspace; the finish kernel adds them in order.
#include <algorithm>
#include <cmath>
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

constexpr int kColumnWarps = 8;  // warps per block in the column schedule

__device__ __forceinline__ double2 add2(double2 a, double2 b) { return make_double2(a.x + b.x, a.y + b.y); }

// Forward terms of element i of channel c: (x - K, (x - K)^2).
template <class T>
struct StatTerms {
  const T* x;
  int64_t S;
  __device__ double2 operator()(int64_t i, int64_t c) const {
    const double d = static_cast<double>(x[i]) - static_cast<double>(x[c * S]);
    return make_double2(d, d * d);
  }
};

// Backward terms: (dy, dy * (x - mean[c])), in T as the CPU rows, summed in double.
template <class T>
struct GradTerms {
  const T* dy;
  const T* x;
  const T* mean;
  __device__ double2 operator()(int64_t i, int64_t c) const {
    const T g = dy[i];
    return make_double2(static_cast<double>(g), static_cast<double>(g * (x[i] - mean[c])));
  }
};

__device__ __forceinline__ double2 warp_sum2(double2 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v.x += __shfl_xor_sync(0xffffffffu, v.x, o);
    v.y += __shfl_xor_sync(0xffffffffu, v.y, o);
  }
  return v;
}

// Planes: block (split, c) sums f over rows [n0, n1) of channel c -> partial[split * C + c].
template <class F>
__global__ void channel_sums_planes(F f, int64_t N, int64_t C, int64_t S, int64_t rows_per_split, double2* partial) {
  __shared__ double2 warp_vals[kThreads / 32];
  const int64_t c = blockIdx.y, split = blockIdx.x;
  const int64_t n0 = split * rows_per_split, n1 = min(N, n0 + rows_per_split);
  double2 acc = make_double2(0.0, 0.0);
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t base = (n * C + c) * S;
    for (int64_t s = threadIdx.x; s < S; s += blockDim.x) acc = add2(acc, f(base + s, c));
  }
  acc = warp_sum2(acc);
  if ((threadIdx.x & 31) == 0) warp_vals[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double2 total = warp_vals[0];
    for (int w = 1; w < kThreads / 32; ++w) total = add2(total, warp_vals[w]);
    partial[split * C + c] = total;
  }
}

// Columns: x (N, W = C*S); block (column group, split) of 32 x kColumnWarps threads; lane
// = column, warps stride rows [n0, n1) -> partial[split * W + column].
template <class F>
__global__ void channel_sums_columns(F f, int64_t N, int64_t W, int64_t S, int64_t rows_per_split, double2* partial) {
  __shared__ double2 vals[kColumnWarps][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t j = blockIdx.x * int64_t(32) + lane, split = blockIdx.y;
  const int64_t n0 = split * rows_per_split, n1 = min(N, n0 + rows_per_split);
  double2 acc = make_double2(0.0, 0.0);
  if (j < W)
    for (int64_t n = n0 + warp; n < n1; n += kColumnWarps) acc = add2(acc, f(n * W + j, j / S));
  vals[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && j < W) {
    double2 total = vals[0][lane];
    for (int w = 1; w < kColumnWarps; ++w) total = add2(total, vals[w][lane]);
    partial[split * W + j] = total;
  }
}

// Launches one of the two schedules; returns how to read the partials back:
// channel c's are partial[split * width + c * group + g], split < splits, g < group.
struct PartialLayout {
  int64_t splits, width, group;
};

template <class F>
PartialLayout channel_sums(F f, int64_t N, int64_t C, int64_t S, double2** partial, const char* op) {
  cudaStream_t s = current_stream();
  const int64_t target_blocks = 132 * 8;  // enough blocks to fill an H100/H200
  if (S >= 32) {
    const int64_t splits = std::max<int64_t>(1, std::min<int64_t>(N, (target_blocks + C - 1) / C));
    const int64_t rows = (N + splits - 1) / splits;
    const int64_t used = (N + rows - 1) / rows;
    EMBER_CHECK(C <= 65535, op, ": more than 65535 channels with spatial size >= 32 is not supported on CUDA");
    *partial = static_cast<double2*>(workspace(0, sizeof(double2) * used * C));
    channel_sums_planes<<<dim3(static_cast<unsigned>(used), static_cast<unsigned>(C)), kThreads, 0, s>>>(
        f, N, C, S, rows, *partial);
    EMBER_CUDA_LAUNCH_CHECK(op);
    return {used, C, 1};
  }
  const int64_t W = C * S, groups = (W + 31) / 32;
  const int64_t splits = std::max<int64_t>(1, std::min<int64_t>((N + 63) / 64, (target_blocks + groups - 1) / groups));
  const int64_t rows = (N + splits - 1) / splits;
  const int64_t used = (N + rows - 1) / rows;
  EMBER_CHECK(used <= 65535, op, ": too many row splits");
  *partial = static_cast<double2*>(workspace(0, sizeof(double2) * used * W));
  channel_sums_columns<<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(used)), 32 * kColumnWarps, 0, s>>>(
      f, N, W, S, rows, *partial);
  EMBER_CUDA_LAUNCH_CHECK(op);
  return {used, W, S};
}

__device__ __forceinline__ double2 gather(const double2* partial, PartialLayout P, int64_t c) {
  double2 t = make_double2(0.0, 0.0);
  for (int64_t sp = 0; sp < P.splits; ++sp)
    for (int64_t g = 0; g < P.group; ++g) t = add2(t, partial[sp * P.width + c * P.group + g]);
  return t;
}

// Per channel (C threads): mean, invstd, the affine map (scale, shift) and, when training
// with running stats, their momentum update. With partial == nullptr (eval) the stats
// are the running ones.
template <class T>
__global__ void bn_forward_finish(const double2* partial, PartialLayout P, const T* x, int64_t S, double M,
                                  const T* w, const T* b, T* rm, T* rv, T* save_mean, T* save_invstd, T* scale,
                                  T* shift, int64_t C, bool training, double momentum, double eps) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    double mean, var;
    if (partial) {
      const double2 t = gather(partial, P, c);
      const double d1 = t.x / M;
      mean = static_cast<double>(x[c * S]) + d1;
      var = fmax(0.0, t.y / M - d1 * d1);
    } else {
      mean = static_cast<double>(rm[c]);
      var = static_cast<double>(rv[c]);
    }
    const double invstd = 1.0 / ::sqrt(var + eps);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    const double bc = b ? static_cast<double>(b[c]) : 0.0;
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    scale[c] = static_cast<T>(wc * invstd);
    shift[c] = static_cast<T>(bc - mean * wc * invstd);
    if (training && rm) {
      rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * mean);
      rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var * M / (M - 1.0));
    }
  }
}

// Channel of element i: (i / S) % C. Planes index rows directly instead (no division per
// element): block row r = n*C + c, threads along S.
// x, y (N,C,S): y = x * scale[c] + shift[c]
template <class T>
__global__ void bn_affine(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t C, int64_t S,
                          const T* __restrict__ scale, const T* __restrict__ shift) {
  if (S >= 32) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
      const int64_t c = r % C;
      const T k = scale[c], h = shift[c];
      for (int64_t s = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; s < S; s += int64_t(gridDim.x) * blockDim.x)
        y[r * S + s] = x[r * S + s] * k + h;
    }
  } else {
    const int64_t n = rows * S;
    for (int64_t i = (blockIdx.y * int64_t(gridDim.x) + blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * gridDim.y * blockDim.x) {
      const int64_t c = (i / S) % C;
      y[i] = x[i] * scale[c] + shift[c];
    }
  }
}

// dx (N,C,S) = k1[c]*dy - k2[c]*(x - mean[c]) - k0[c]
template <class T>
__global__ void bn_dx(const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, int64_t rows, int64_t C,
                      int64_t S, const T* __restrict__ mean, const T* __restrict__ k1, const T* __restrict__ k2,
                      const T* __restrict__ k0) {
  if (S >= 32) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
      const int64_t c = r % C;
      const T m = mean[c], a = k1[c], b = k2[c], z = k0[c];
      for (int64_t s = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; s < S; s += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = r * S + s;
        dx[i] = a * dy[i] - b * (x[i] - m) - z;
      }
    }
  } else {
    const int64_t n = rows * S;
    for (int64_t i = (blockIdx.y * int64_t(gridDim.x) + blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * gridDim.y * blockDim.x) {
      const int64_t c = (i / S) % C;
      dx[i] = k1[c] * dy[i] - k2[c] * (x[i] - mean[c]) - k0[c];
    }
  }
}

// Grid for bn_affine / bn_dx: planes take (blocks along S, rows), capped; else flat.
dim3 per_channel_grid(int64_t rows, int64_t S) {
  if (S >= 32) {
    const int64_t along = std::min<int64_t>((S + kThreads - 1) / kThreads, 32);
    return dim3(static_cast<unsigned>(along), static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  }
  return dim3(blocks_for(rows * S));
}

// Per channel (C threads): dbias, dweight and the dx coefficients.
template <class T>
__global__ void bn_backward_finish(const double2* partial, PartialLayout P, const T* invstd, const T* w, T* db, T* dw,
                                   T* k1, T* k2, T* k0, int64_t C, bool training, double M) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    const double2 g = partial ? gather(partial, P, c) : make_double2(0.0, 0.0);
    const double inv = static_cast<double>(invstd[c]);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    if (db) db[c] = static_cast<T>(g.x);
    if (dw) dw[c] = static_cast<T>(g.y * inv);
    k1[c] = static_cast<T>(wc * inv);
    k2[c] = training && M > 0 ? static_cast<T>(wc * inv * inv * inv * g.y / M) : T(0);
    k0[c] = training && M > 0 ? static_cast<T>(wc * inv * g.x / M) : T(0);
  }
}

template <class T>
T* opt_ptr(const TensorView& t) { return present(t) ? t.ptr<T>() : nullptr; }

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView& bv, const TensorView& rmv,
                  const TensorView& rvv, const TensorView& outv, const TensorView& smv, const TensorView& siv,
                  bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2];
  const double M = static_cast<double>(N) * static_cast<double>(S);
  cudaStream_t s = current_stream();
  if (C == 0) return;
  if (training && M == 0) {  // empty batch: nothing to normalize; running stats stay as they are (as torch)
    EMBER_CUDA_CHECK(cudaMemsetAsync(smv.data, 0, sizeof(T) * C, s));
    EMBER_CUDA_CHECK(cudaMemsetAsync(siv.data, 0, sizeof(T) * C, s));
    return;
  }
  const T* x = xv.ptr<T>();
  double2* partial = nullptr;
  PartialLayout P{0, 0, 0};
  if (training) P = channel_sums(StatTerms<T>{x, S}, N, C, S, &partial, op);
  T* affine = static_cast<T*>(workspace(3, sizeof(T) * 2 * C));  // scale (C), shift (C)
  bn_forward_finish<T><<<blocks_for(C), kThreads, 0, s>>>(partial, P, x, S, M, opt_ptr<T>(wv), opt_ptr<T>(bv),
                                                          opt_ptr<T>(rmv), opt_ptr<T>(rvv), smv.ptr<T>(),
                                                          siv.ptr<T>(), affine, affine + C, C, training, momentum, eps);
  EMBER_CUDA_LAUNCH_CHECK(op);
  if (M == 0) return;
  bn_affine<T><<<per_channel_grid(N * C, S), kThreads, 0, s>>>(x, outv.ptr<T>(), N * C, C, S, affine, affine + C);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <class T>
void backward_impl(const TensorView& dyv, const TensorView& xv, const TensorView& mv, const TensorView& iv,
                   const TensorView& wv, bool training, const TensorView& dxv, const TensorView& dwv,
                   const TensorView& dbv) {
  const char* op = "batch_norm_backward";
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2];
  const double M = static_cast<double>(N) * static_cast<double>(S);
  cudaStream_t s = current_stream();
  if (C == 0) return;
  T* dx = opt_ptr<T>(dxv);
  T* dw = opt_ptr<T>(dwv);
  T* db = opt_ptr<T>(dbv);
  double2* partial = nullptr;
  PartialLayout P{0, 0, 0};
  // The sums feed dweight, dbias and the training dx; eval dx needs none of them.
  if (M > 0 && (dw || db || (dx && training)))
    P = channel_sums(GradTerms<T>{dyv.ptr<T>(), xv.ptr<T>(), mv.ptr<T>()}, N, C, S, &partial, op);
  T* k = static_cast<T*>(workspace(3, sizeof(T) * 3 * C));  // k1, k2, k0 (C each)
  bn_backward_finish<T><<<blocks_for(C), kThreads, 0, s>>>(partial, P, iv.ptr<T>(), opt_ptr<T>(wv), db, dw, k, k + C,
                                                           k + 2 * C, C, training, M);
  EMBER_CUDA_LAUNCH_CHECK(op);
  if (!dx || M == 0) return;
  bn_dx<T><<<per_channel_grid(N * C, S), kThreads, 0, s>>>(dyv.ptr<T>(), xv.ptr<T>(), dx, N * C, C, S, mv.ptr<T>(), k,
                                                          k + C, k + 2 * C);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void batch_norm_forward(const TensorView& x, const TensorView& weight, const TensorView& bias,
                        const TensorView& running_mean, const TensorView& running_var, const TensorView& out,
                        const TensorView& save_mean, const TensorView& save_invstd, bool training, double momentum,
                        double eps) {
  check_batch_norm_forward_args(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd, training,
                                momentum, eps);
  EMBER_DISPATCH_FLOAT(x.dtype, "batch_norm",
                       forward_impl<T>(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd,
                                       training, momentum, eps));
}

void batch_norm_backward(const TensorView& grad_out, const TensorView& x, const TensorView& save_mean,
                         const TensorView& save_invstd, const TensorView& weight, bool training,
                         const TensorView& grad_input, const TensorView& grad_weight, const TensorView& grad_bias) {
  check_batch_norm_backward_args(grad_out, x, save_mean, save_invstd, weight, grad_input, grad_weight, grad_bias);
  EMBER_DISPATCH_FLOAT(x.dtype, "batch_norm_backward",
                       backward_impl<T>(grad_out, x, save_mean, save_invstd, weight, training, grad_input,
                                        grad_weight, grad_bias));
}

}  // namespace ember::cuda
