// Dropout on the GPU, forward next to backward: the contract of cpu/dropout.cpp, and the
// same mask bit for bit. Element i is kept iff word (offset + i) of the Philox stream of
// `seed` passes p (csrc/philox.h, __host__ __device__ under nvcc): offset is a multiple
// of 4, so elements 4q..4q+3 take the four words of stream block offset/4 + q.
//   x, out (*shape) T contiguous; mask (*shape) bool contiguous, or absent.
// Forward: one thread per Philox block (4 elements), grid-stride; when x and out are
// 16-byte aligned (and the mask 4-byte aligned) the four elements move as 128-bit
// (float4, or two double2) accesses and the mask as one 32-bit store.
// Backward multiplies by the stored mask, as the CPU (no Philox regeneration).
#include <cstdint>
#include "../nn_checks.h"
#include "../ops.h"
#include "../philox.h"
#include "common.cuh"
#include "elementwise.cuh"

namespace ember::cuda {
namespace {

// x (n), out (n), mask (n) or null; q indexes Philox blocks: elements [4q, 4q + 4) ∩ [0, n).
template <bool Aligned, class T>
__global__ void dropout_forward_kernel(const T* __restrict__ x, T* __restrict__ out, bool* __restrict__ mask,
                                       int64_t n, uint64_t seed, uint64_t block0, uint32_t threshold, T scale) {
  const int64_t quads = (n + 3) / 4;
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads; q += int64_t(gridDim.x) * blockDim.x) {
    const philox::Block w = philox::stream_block(seed, block0 + static_cast<uint64_t>(q));
    bool keep[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) keep[k] = (w.v[k] >> 8) >= threshold;
    const int64_t i0 = 4 * q;
    // Multiply by (keep ? scale : 0), as torch multiplies by its scaled mask: NaN and inf
    // in dropped elements propagate.
    if (Aligned && i0 + 4 <= n) {
      Pack<T, 4> v = *reinterpret_cast<const Pack<T, 4>*>(x + i0);
#pragma unroll
      for (int k = 0; k < 4; ++k) v.v[k] *= keep[k] ? scale : T(0);
      *reinterpret_cast<Pack<T, 4>*>(out + i0) = v;
      if (mask) {
        uchar4 m = make_uchar4(keep[0], keep[1], keep[2], keep[3]);
        *reinterpret_cast<uchar4*>(mask + i0) = m;
      }
    } else {
      for (int k = 0; k < 4 && i0 + k < n; ++k) {
        out[i0 + k] = x[i0 + k] * (keep[k] ? scale : T(0));
        if (mask) mask[i0 + k] = keep[k];
      }
    }
  }
}

// grad, grad_input (n), mask (n): grad_input = grad * (mask ? scale : 0)
template <class T>
struct MaskScale {
  T scale;
  __device__ T operator()(T g, bool m) const { return g * (m ? scale : T(0)); }
};

template <class T>
__global__ void dropout_backward_kernel(const T* __restrict__ g, const bool* __restrict__ mask, T* __restrict__ gi,
                                        int64_t n, T scale) {
  const MaskScale<T> f{scale};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    gi[i] = f(g[i], mask[i]);
}

// The backward with 128-bit accesses: V elements of grad and grad_input, V mask bytes.
template <class T>
__global__ void dropout_backward_packed(const T* __restrict__ g, const bool* __restrict__ mask, T* __restrict__ gi,
                                        int64_t n, T scale) {
  constexpr int V = kVec<T>;
  const MaskScale<T> f{scale};
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t packs = n / V;
  for (int64_t p = tid; p < packs; p += stride) {
    Pack<T, V> v = reinterpret_cast<const Pack<T, V>*>(g)[p];
    const Pack<bool, V> m = reinterpret_cast<const Pack<bool, V>*>(mask)[p];
#pragma unroll
    for (int k = 0; k < V; ++k) v.v[k] = f(v.v[k], m.v[k]);
    reinterpret_cast<Pack<T, V>*>(gi)[p] = v;
  }
  for (int64_t i = packs * V + tid; i < n; i += stride) gi[i] = f(g[i], mask[i]);
}

}  // namespace

void dropout_forward(const TensorView& x, double p, uint64_t seed, uint64_t offset, const TensorView& out,
                     const TensorView& mask) {
  const char* op = "dropout";
  check_dropout_forward_args(x, p, offset, out, mask);
  const int64_t n = x.numel();
  if (n == 0) return;
  const uint32_t threshold = philox::dropout_threshold(p);
  bool* m = present(mask) ? mask.ptr<bool>() : nullptr;
  EMBER_DISPATCH_FLOAT(x.dtype, op, {
    const T scale = static_cast<T>(dropout_keep_scale(p));
    const bool aligned = aligned_to(x.data, sizeof(T) * 4) && aligned_to(out.data, sizeof(T) * 4) &&
                         (!m || aligned_to(m, 4));
    const unsigned blocks = blocks_for((n + 3) / 4);
    if (aligned)
      dropout_forward_kernel<true, T><<<blocks, kThreads, 0, current_stream()>>>(x.ptr<T>(), out.ptr<T>(), m, n, seed,
                                                                                 offset / 4, threshold, scale);
    else
      dropout_forward_kernel<false, T><<<blocks, kThreads, 0, current_stream()>>>(x.ptr<T>(), out.ptr<T>(), m, n, seed,
                                                                                  offset / 4, threshold, scale);
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

void dropout_backward(const TensorView& grad, const TensorView& mask, double p, const TensorView& grad_input) {
  const char* op = "dropout_backward";
  check_dropout_backward_args(grad, mask, p, grad_input);
  const int64_t n = grad.numel();
  if (n == 0) return;
  EMBER_DISPATCH_FLOAT(grad.dtype, op, {
    const T scale = static_cast<T>(dropout_keep_scale(p));
    constexpr int V = kVec<T>;
    if (aligned_to(grad.data, sizeof(T) * V) && aligned_to(grad_input.data, sizeof(T) * V) && aligned_to(mask.data, V))
      dropout_backward_packed<T><<<blocks_for(n / V + 1), kThreads, 0, current_stream()>>>(
          grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), n, scale);
    else
      dropout_backward_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(grad.ptr<T>(), mask.ptr<bool>(),
                                                                                  grad_input.ptr<T>(), n, scale);
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace ember::cuda
