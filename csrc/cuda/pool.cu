// Pooling on the GPU: max_pool2d (with argmax indices), avg_pool2d, adaptive_avg_pool2d;
// forward and backward, with the contract and checks of cpu/pool.cpp (conv_pool_checks.h).
//
//   x (N,C,H,W)   out, indices, grad_out (N,C,P,Q)   grad_x (N,C,H,W)
//
// Forward: one thread per output, the window summed (or scanned) in row-major order as on
// the CPU; a global average (1x1 output) takes one warp per plane instead.
// Backward: avg and adaptive avg gather, one thread per grad_x element over the windows
// that cover it, in the CPU's (p, q) order, so every element is written once. Max backward
// only has the indices, so it scatters: grad_x is zeroed, then each grad_out element is
// atomically added at its argmax (windows can overlap). A bad index raises a device flag
// that the host reads after the kernel: the one synchronization in this file.
#include <cmath>
#include "../conv_pool_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

// The geometry in device-friendly form; every size of one plane fits in int64.
struct PoolDims {
  int64_t H, W, P, Q, HW, PQ;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

PoolDims pool_dims(int64_t H, int64_t W, int64_t P, int64_t Q, const PoolGeometry& g) {
  return PoolDims{H, W, P, Q, H * W, P * Q, g.kernel_h, g.kernel_w, g.stride_h, g.stride_w,
                  g.pad_h, g.pad_w, g.dil_h, g.dil_w};
}

// Taps i < k of a window starting at `start` (spacing dil) that land in [0, n): [lo, hi).
__device__ __forceinline__ void tap_range(int64_t start, int64_t k, int64_t dil, int64_t n, int64_t& lo, int64_t& hi) {
  lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
  hi = start + (k - 1) * dil < n ? k : (n - 1 - start) / dil + 1;
}

// x (N,C,H,W) -> out, indices (N,C,P,Q). The first maximum in row-major order wins ties;
// NaN wins over numbers (the last NaN of the window), as torch and the CPU kernel.
template <class T>
__global__ void max_pool_forward(const T* __restrict__ x, T* __restrict__ out, int64_t* __restrict__ indices,
                                 int64_t total, PoolDims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.PQ, pq = i - plane * d.PQ, p = pq / d.Q, q = pq - p * d.Q;
    const T* xp = x + plane * d.HW;
    const int64_t h0 = p * d.stride_h - d.pad_h, w0 = q * d.stride_w - d.pad_w;
    int64_t i0, i1, j0, j1;
    tap_range(h0, d.kernel_h, d.dil_h, d.H, i0, i1);
    tap_range(w0, d.kernel_w, d.dil_w, d.W, j0, j1);
    T best = -INFINITY;
    int64_t best_at = (h0 + i0 * d.dil_h) * d.W + w0 + j0 * d.dil_w;
    for (int64_t a = i0; a < i1; ++a)
      for (int64_t b = j0; b < j1; ++b) {
        const int64_t at = (h0 + a * d.dil_h) * d.W + w0 + b * d.dil_w;
        const T v = xp[at];
        if (v > best || v != v) {
          best = v;
          best_at = at;
        }
      }
    out[i] = best;
    if (indices) indices[i] = best_at;
  }
}

// A bad index: flag (0 or 1) and the first bad value seen, read back by the host.
struct BadIndex {
  unsigned long long flag;
  long long value;
};

// grad_out, indices (N,C,P,Q) -> grad_x (N,C,H,W), zeroed before: grad_x[argmax] += grad_out.
template <class T>
__global__ void max_pool_backward(const T* __restrict__ dy, const int64_t* __restrict__ indices, T* __restrict__ dx,
                                  int64_t total, int64_t PQ, int64_t HW, BadIndex* bad) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = indices[i];
    if (j < 0 || j >= HW) {
      if (atomicCAS(&bad->flag, 0ull, 1ull) == 0ull) bad->value = j;
      continue;
    }
    atomicAdd(dx + (i / PQ) * HW + j, dy[i]);
  }
}

// The divisor of avg-pool window (p, q), and its clipped extent [hs, he) x [ws, we), as the CPU.
struct AvgWindow {
  int64_t hs, he, ws, we, divisor;
};

__device__ __forceinline__ AvgWindow avg_window(int64_t p, int64_t q, const PoolDims& d, bool count_include_pad,
                                                int64_t divisor_override) {
  const int64_t h0 = p * d.stride_h - d.pad_h, h1 = min(h0 + d.kernel_h, d.H + d.pad_h);
  const int64_t w0 = q * d.stride_w - d.pad_w, w1 = min(w0 + d.kernel_w, d.W + d.pad_w);
  AvgWindow win;
  win.hs = max(h0, int64_t(0)), win.he = min(h1, d.H);
  win.ws = max(w0, int64_t(0)), win.we = min(w1, d.W);
  win.divisor = divisor_override ? divisor_override
                                 : count_include_pad ? (h1 - h0) * (w1 - w0) : (win.he - win.hs) * (win.we - win.ws);
  return win;
}

// x (N,C,H,W) -> out (N,C,P,Q)
template <class T>
__global__ void avg_pool_forward(const T* __restrict__ x, T* __restrict__ out, int64_t total, PoolDims d,
                                 bool count_include_pad, int64_t divisor_override) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.PQ, pq = i - plane * d.PQ, p = pq / d.Q, q = pq - p * d.Q;
    const T* xp = x + plane * d.HW;
    const AvgWindow win = avg_window(p, q, d, count_include_pad, divisor_override);
    T sum = T(0);
    for (int64_t h = win.hs; h < win.he; ++h)
      for (int64_t w = win.ws; w < win.we; ++w) sum += xp[h * d.W + w];
    out[i] = win.divisor > 0 ? sum / static_cast<T>(win.divisor) : T(0);
  }
}

// grad_out (N,C,P,Q) -> grad_x (N,C,H,W). Windows p with p*stride - pad <= h < p*stride - pad
// + kernel may cover row h; each candidate is checked against the forward's clipped window.
template <class T>
__global__ void avg_pool_backward(const T* __restrict__ dy, T* __restrict__ dx, int64_t total, PoolDims d,
                                  bool count_include_pad, int64_t divisor_override) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.HW, hw = i - plane * d.HW, h = hw / d.W, w = hw - h * d.W;
    const T* dyp = dy + plane * d.PQ;
    const int64_t th = h + d.pad_h - d.kernel_h, tw = w + d.pad_w - d.kernel_w;
    const int64_t p0 = th < 0 ? 0 : th / d.stride_h + 1, p1 = min((h + d.pad_h) / d.stride_h, d.P - 1);
    const int64_t q0 = tw < 0 ? 0 : tw / d.stride_w + 1, q1 = min((w + d.pad_w) / d.stride_w, d.Q - 1);
    T sum = T(0);
    for (int64_t p = p0; p <= p1; ++p)
      for (int64_t q = q0; q <= q1; ++q) {
        const AvgWindow win = avg_window(p, q, d, count_include_pad, divisor_override);
        if (win.divisor > 0 && h >= win.hs && h < win.he && w >= win.ws && w < win.we)
          sum += dyp[p * d.Q + q] / static_cast<T>(win.divisor);
      }
    dx[i] = sum;
  }
}

// Adaptive window i of n outputs over `in` inputs: [floor(i*in/n), ceil((i+1)*in/n)).
__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t n) { return i * in / n; }
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t n) { return ((i + 1) * in + n - 1) / n; }

// x (N,C,H,W) -> out (N,C,P,Q)
template <class T>
__global__ void adaptive_avg_forward(const T* __restrict__ x, T* __restrict__ out, int64_t total, PoolDims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.PQ, pq = i - plane * d.PQ, p = pq / d.Q, q = pq - p * d.Q;
    const T* xp = x + plane * d.HW;
    const int64_t hs = adaptive_start(p, d.H, d.P), he = adaptive_end(p, d.H, d.P);
    const int64_t ws = adaptive_start(q, d.W, d.Q), we = adaptive_end(q, d.W, d.Q);
    T sum = T(0);
    for (int64_t h = hs; h < he; ++h)
      for (int64_t w = ws; w < we; ++w) sum += xp[h * d.W + w];
    out[i] = sum / static_cast<T>((he - hs) * (we - ws));
  }
}

// x (N*C planes of HW) -> out (N*C): the global average, one warp per plane, lanes striding it.
template <class T>
__global__ void global_avg_forward(const T* __restrict__ x, T* __restrict__ out, int64_t planes, int64_t HW) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t plane = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; plane < planes; plane += warps) {
    const T* xp = x + plane * HW;
    T sum = T(0);
    for (int64_t k = lane; k < HW; k += 32) sum += xp[k];
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
    if (lane == 0) out[plane] = sum / static_cast<T>(HW);
  }
}

// grad_out (N,C,P,Q) -> grad_x (N,C,H,W): row h lies in windows p of
// [floor(h*P/H), ceil((h+1)*P/H)); one more on each side, checked, guards the rounding.
template <class T>
__global__ void adaptive_avg_backward(const T* __restrict__ dy, T* __restrict__ dx, int64_t total, PoolDims d) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t plane = i / d.HW, hw = i - plane * d.HW, h = hw / d.W, w = hw - h * d.W;
    const T* dyp = dy + plane * d.PQ;
    const int64_t p0 = max(h * d.P / d.H - 1, int64_t(0)), p1 = min(((h + 1) * d.P + d.H - 1) / d.H, d.P - 1);
    const int64_t q0 = max(w * d.Q / d.W - 1, int64_t(0)), q1 = min(((w + 1) * d.Q + d.W - 1) / d.W, d.Q - 1);
    T sum = T(0);
    for (int64_t p = p0; p <= p1; ++p) {
      const int64_t hs = adaptive_start(p, d.H, d.P), he = adaptive_end(p, d.H, d.P);
      if (h < hs || h >= he) continue;
      for (int64_t q = q0; q <= q1; ++q) {
        const int64_t ws = adaptive_start(q, d.W, d.Q), we = adaptive_end(q, d.W, d.Q);
        if (w >= ws && w < we) sum += dyp[p * d.Q + q] / static_cast<T>((he - hs) * (we - ws));
      }
    }
    dx[i] = sum;
  }
}

template <class T>
void max_forward_impl(const TensorView& xv, const TensorView& yv, const TensorView* iv, const PoolGeometry& g,
                      const char* op) {
  const int64_t total = yv.numel();
  if (total == 0) return;
  const PoolDims d = pool_dims(xv.shape[2], xv.shape[3], yv.shape[2], yv.shape[3], g);
  max_pool_forward<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(
      xv.ptr<T>(), yv.ptr<T>(), iv ? iv->ptr<int64_t>() : nullptr, total, d);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <class T>
void max_backward_impl(const TensorView& dyv, const TensorView& iv, const TensorView& dxv, const char* op) {
  const int64_t HW = dxv.shape[2] * dxv.shape[3], PQ = dyv.shape[2] * dyv.shape[3];
  cudaStream_t stream = current_stream();
  if (dxv.numel() > 0) EMBER_CUDA_CHECK(cudaMemsetAsync(dxv.data, 0, sizeof(T) * dxv.numel(), stream));
  const int64_t total = dyv.numel();
  if (total == 0) return;
  BadIndex* bad = static_cast<BadIndex*>(workspace(3, sizeof(BadIndex)));
  EMBER_CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof(BadIndex), stream));
  max_pool_backward<T><<<blocks_for(total), kThreads, 0, stream>>>(dyv.ptr<T>(), iv.ptr<int64_t>(), dxv.ptr<T>(),
                                                                    total, PQ, HW, bad);
  EMBER_CUDA_LAUNCH_CHECK(op);
  BadIndex seen;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&seen, bad, sizeof(BadIndex), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  EMBER_CHECK_INDEX(!seen.flag, "max_pool2d_backward: index ", seen.value, " is out of range for planes of ", HW,
                    " elements");
}

template <class T>
void avg_forward_impl(const TensorView& xv, const TensorView& yv, const PoolGeometry& g, bool cip, int64_t divisor,
                      const char* op) {
  const int64_t total = yv.numel();
  if (total == 0) return;
  const PoolDims d = pool_dims(xv.shape[2], xv.shape[3], yv.shape[2], yv.shape[3], g);
  avg_pool_forward<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(xv.ptr<T>(), yv.ptr<T>(), total, d, cip,
                                                                             divisor);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <class T>
void avg_backward_impl(const TensorView& dyv, const TensorView& dxv, const PoolGeometry& g, bool cip, int64_t divisor,
                       const char* op) {
  const int64_t total = dxv.numel();
  if (total == 0) return;
  const PoolDims d = pool_dims(dxv.shape[2], dxv.shape[3], dyv.shape[2], dyv.shape[3], g);
  avg_pool_backward<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(dyv.ptr<T>(), dxv.ptr<T>(), total, d,
                                                                              cip, divisor);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <class T>
void adaptive_forward_impl(const TensorView& xv, const TensorView& yv, const char* op) {
  const int64_t total = yv.numel();
  if (total == 0) return;
  const PoolDims d = pool_dims(xv.shape[2], xv.shape[3], yv.shape[2], yv.shape[3], PoolGeometry{});
  if (d.PQ == 1)
    global_avg_forward<T><<<blocks_for(total * 32), kThreads, 0, current_stream()>>>(xv.ptr<T>(), yv.ptr<T>(), total,
                                                                                     d.HW);
  else
    adaptive_avg_forward<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(xv.ptr<T>(), yv.ptr<T>(), total, d);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <class T>
void adaptive_backward_impl(const TensorView& dyv, const TensorView& dxv, const char* op) {
  const int64_t total = dxv.numel();
  if (total == 0) return;
  const PoolDims d = pool_dims(dxv.shape[2], dxv.shape[3], dyv.shape[2], dyv.shape[3], PoolGeometry{});
  adaptive_avg_backward<T><<<blocks_for(total), kThreads, 0, current_stream()>>>(dyv.ptr<T>(), dxv.ptr<T>(), total, d);
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void max_pool2d_forward(const TensorView& x, const TensorView& out, const TensorView* indices, const PoolGeometry& g) {
  const char* op = "max_pool2d";
  check_pool(x, out, g, op, "x", "out");
  if (indices) check_max_pool_indices(out, *indices, op);
  EMBER_DISPATCH_FLOAT(x.dtype, op, max_forward_impl<T>(x, out, indices, g, op));
}

void max_pool2d_backward(const TensorView& grad_out, const TensorView& indices, const TensorView& grad_x) {
  const char* op = "max_pool2d_backward";
  check_max_pool_backward(grad_out, indices, grad_x, op);
  EMBER_DISPATCH_FLOAT(grad_out.dtype, op, max_backward_impl<T>(grad_out, indices, grad_x, op));
}

void avg_pool2d_forward(const TensorView& x, const TensorView& out, const PoolGeometry& g, bool count_include_pad,
                        int64_t divisor_override) {
  const char* op = "avg_pool2d";
  check_pool(x, out, g, op, "x", "out");
  check_avg_args(g, divisor_override, op);
  EMBER_DISPATCH_FLOAT(x.dtype, op, avg_forward_impl<T>(x, out, g, count_include_pad, divisor_override, op));
}

void avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x, const PoolGeometry& g,
                         bool count_include_pad, int64_t divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_pool(grad_x, grad_out, g, op, "grad_x", "grad_out");
  check_avg_args(g, divisor_override, op);
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op,
                       avg_backward_impl<T>(grad_out, grad_x, g, count_include_pad, divisor_override, op));
}

void adaptive_avg_pool2d_forward(const TensorView& x, const TensorView& out) {
  const char* op = "adaptive_avg_pool2d";
  check_adaptive(x, out, op, "x", "out");
  EMBER_DISPATCH_FLOAT(x.dtype, op, adaptive_forward_impl<T>(x, out, op));
}

void adaptive_avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_adaptive(grad_x, grad_out, op, "grad_x", "grad_out");
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op, adaptive_backward_impl<T>(grad_out, grad_x, op));
}

}  // namespace ember::cuda
