// Reductions on the GPU: sum, amax, amin over any axes; argmax, argmin over one axis.
// Same plan as the CPU (reduce_plan.h): passes x (A, R, B) -> (A, B).
//   B == 1: one block per row, threads stride the row, then warp-shuffle + shared-memory
//           tree; rows too long for one block are split over several, partials combined.
//   B  > 1: one thread per output column, reading x[a, :, b] coalesced across the warp.
// float32 sums accumulate in double; max/min propagate NaN, as the CPU kernels.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <vector>
#include "../op_checks.h"
#include "../ops.h"
#include "../reduce_plan.h"
#include "common.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

enum class Kind { sum, max, min };

template <class T> struct Accum { using type = T; };
template <> struct Accum<float> { using type = double; };

template <Kind K, class A>
__device__ __forceinline__ A identity() {
  if constexpr (K == Kind::sum) return A(0);
  else if constexpr (K == Kind::max) { if constexpr (std::is_floating_point_v<A>) return -INFINITY; else return INT64_MIN; }
  else { if constexpr (std::is_floating_point_v<A>) return INFINITY; else return INT64_MAX; }
}

template <Kind K, class A>
__device__ __forceinline__ A combine(A a, A b) {
  if constexpr (K == Kind::sum) return a + b;
  else if constexpr (K == Kind::max) return (b > a || b != b) ? b : a;
  else return (b < a || b != b) ? b : a;
}

template <Kind K, class A>
__device__ A block_reduce(A v) {
  __shared__ A warp_vals[32];
  for (int o = 16; o > 0; o >>= 1) v = combine<K>(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  const int nwarps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < nwarps ? warp_vals[threadIdx.x] : identity<K, A>();
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) v = combine<K>(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}

// Rows (A, R) -> partial (A, chunks): block (chunk, y) reduces x[a, chunk range] for the
// rows a = y, y + gridDim.y, ... (grid y is at most 65535).
template <Kind K, class T, class A>
__global__ void reduce_rows(const T* x, int64_t rows, int64_t R, int64_t chunk, A* partial, int chunks) {
  const int64_t r0 = blockIdx.x * chunk, r1 = min(R, r0 + chunk);
  for (int64_t a = blockIdx.y; a < rows; a += gridDim.y) {  // the same trip count in the whole block
    A v = identity<K, A>();
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) v = combine<K>(v, static_cast<A>(x[a * R + r]));
    v = block_reduce<K>(v);
    if (threadIdx.x == 0) partial[a * chunks + blockIdx.x] = v;
    __syncthreads();  // block_reduce's shared slots are reused by the next row
  }
}

template <Kind K, class T, class A>
__global__ void finish_rows(const A* partial, int chunks, int64_t rows, T* out) {
  for (int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; a < rows; a += int64_t(gridDim.x) * blockDim.x) {
    A v = identity<K, A>();
    for (int c = 0; c < chunks; ++c) v = combine<K>(v, partial[a * chunks + c]);
    out[a] = static_cast<T>(v);
  }
}

template <Kind K, class T, class A>
__global__ void reduce_cols(const T* x, int64_t Aout, int64_t R, int64_t B, T* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < Aout * B; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t a = t / B, b = t % B;
    const T* p = x + a * R * B + b;
    A v = identity<K, A>();
    for (int64_t r = 0; r < R; ++r) v = combine<K>(v, static_cast<A>(p[r * B]));
    out[t] = static_cast<T>(v);
  }
}

template <Kind K, class T>
void reduce_pass(const T* src, const ReducePass& p, T* dst, const char* op) {
  using A = typename Accum<T>::type;
  cudaStream_t s = current_stream();
  if (p.B == 1) {
    // Enough blocks to fill the GPU even for one long row; each block takes >= 4K items.
    int64_t chunks = std::max<int64_t>(1, std::min<int64_t>((p.R + 4095) / 4096, 1024 / std::max<int64_t>(p.A, 1)));
    int64_t chunk = (p.R + chunks - 1) / chunks;
    A* partial = static_cast<A*>(workspace(0, sizeof(A) * p.A * chunks));
    dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(std::min<int64_t>(p.A, 65535)));
    reduce_rows<K, T, A><<<grid, kThreads, 0, s>>>(src, p.A, p.R, chunk, partial, static_cast<int>(chunks));
    EMBER_CUDA_LAUNCH_CHECK(op);
    finish_rows<K, T, A><<<blocks_for(p.A), kThreads, 0, s>>>(partial, static_cast<int>(chunks), p.A, dst);
  } else {
    reduce_cols<K, T, A><<<blocks_for(p.A * p.B), kThreads, 0, s>>>(src, p.A, p.R, p.B, dst);
  }
  EMBER_CUDA_LAUNCH_CHECK(op);
}

template <Kind K, class T>
void reduce_axes(const TensorView& x, const std::vector<bool>& red, const TensorView& out, const char* op) {
  T* po = out.ptr<T>();
  const auto passes = plan_reduction(x, red);
  if (passes.empty()) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(po, x.data, sizeof(T) * out.numel(), cudaMemcpyDeviceToDevice, current_stream()));
    return;
  }
  const T* src = x.ptr<T>();
  for (size_t i = 0; i < passes.size(); ++i) {
    const ReducePass& p = passes[i];
    T* dst = i + 1 < passes.size() ? static_cast<T*>(workspace(1 + i % 2, sizeof(T) * p.A * p.B)) : po;
    reduce_pass<K, T>(src, p, dst, op);
    src = dst;
  }
}

template <Kind K>
void reduce_op(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out, const char* op) {
  const auto red = check_reduce_args(x, axes, naxes, out, op, K != Kind::sum);
  EMBER_CHECK(x.is_contiguous(), op, ": CUDA reductions take a contiguous input (call .contiguous())");
  if (out.numel() == 0) return;
  if (x.numel() == 0) {
    EMBER_CUDA_CHECK(cudaMemsetAsync(out.data, 0, dtype_size(out.dtype) * out.numel(), current_stream()));
    return;
  }
  EMBER_DISPATCH_ALL(x.dtype, op, reduce_axes<K, T>(x, red, out, op));
}

// argmax/argmin over R of x (A, R, B): one thread per output; first index wins ties,
// NaN wins over numbers.
template <bool Max, class T>
__global__ void arg_kernel(const T* x, int64_t A, int64_t R, int64_t B, int64_t* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < A * B; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t a = t / B, b = t % B;
    const T* p = x + a * R * B + b;
    T best = p[0];
    int64_t idx = 0;
    for (int64_t r = 1; r < R && best == best; ++r) {
      T v = p[r * B];
      if ((Max ? v > best : v < best) || v != v) { best = v; idx = r; }
    }
    out[t] = idx;
  }
}

template <bool Max>
void arg_op(const TensorView& x, int64_t axis, const TensorView& out, const char* op) {
  check_arg_reduce_args(x, axis, out, op);
  EMBER_CHECK(x.is_contiguous(), op, ": CUDA ", op, " takes a contiguous input");
  if (out.numel() == 0) return;
  int64_t A = 1, B = 1, R = x.shape[axis];
  for (int d = 0; d < axis; ++d) A *= x.shape[d];
  for (int d = axis + 1; d < x.ndim; ++d) B *= x.shape[d];
  EMBER_DISPATCH_ALL(x.dtype, op, {
    arg_kernel<Max, T><<<blocks_for(A * B), kThreads, 0, current_stream()>>>(x.ptr<T>(), A, R, B, out.ptr<int64_t>());
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void sum(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::sum>(x, axes, naxes, out, "sum"); }
void amax(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::max>(x, axes, naxes, out, "max"); }
void amin(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::min>(x, axes, naxes, out, "min"); }
void argmax(const TensorView& x, int64_t axis, const TensorView& out) { arg_op<true>(x, axis, out, "argmax"); }
void argmin(const TensorView& x, int64_t axis, const TensorView& out) { arg_op<false>(x, axis, out, "argmin"); }

}  // namespace ember::cuda
