// Elementwise launch helpers shared by the CUDA kernels (elementwise.cu, activation.cu,
// loss.cu, dropout.cu): same-shape operands, their layout coalesced on the host
// (strided_layout.h). All-contiguous operands take a flat grid-stride loop with 128-bit
// loads and stores (float4 / double2) when every pointer is aligned, and a scalar tail;
// anything else maps each linear index to per-operand offsets.
#pragma once
#include <cstdint>
#include "../strided_layout.h"
#include "common.cuh"

namespace ember::cuda {

// Linear index i -> element offset of operand k.
template <int N>
__device__ __forceinline__ int64_t offset_of(const StridedLayout<N>& L, int k, int64_t i) {
  int64_t off = 0;
  for (int d = L.ndim - 1; d >= 0; --d) {
    const int64_t s = L.shape[d];
    off += (i % s) * L.strides[k][d];
    i /= s;
  }
  return off;
}

// Linear index i -> the offsets of all N operands, one pass over the dims.
template <int N>
__device__ __forceinline__ void offsets_of(const StridedLayout<N>& L, int64_t i, int64_t* off) {
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = L.ndim - 1; d >= 0; --d) {
    const int64_t s = L.shape[d], j = i % s;
    i /= s;
    for (int k = 0; k < N; ++k) off[k] += j * L.strides[k][d];
  }
}

// V elements of T moved as one aligned load or store.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
// Elements per 128-bit access.
template <class T>
constexpr int kVec = sizeof(T) >= 16 ? 1 : 16 / static_cast<int>(sizeof(T));

inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// o[i] = op(a[i]), contiguous: packs of V, then the n % V tail one element per thread.
template <int V, class Op, class T, class R>
__global__ void unary_contiguous(const T* __restrict__ a, R* __restrict__ o, int64_t n, Op op) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t packs = n / V;
  for (int64_t p = tid; p < packs; p += stride) {
    const Pack<T, V> x = reinterpret_cast<const Pack<T, V>*>(a)[p];
    Pack<R, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = op(x.v[k]);
    reinterpret_cast<Pack<R, V>*>(o)[p] = y;
  }
  for (int64_t i = packs * V + tid; i < n; i += stride) o[i] = op(a[i]);
}

template <int V, class Op, class T, class R>
__global__ void binary_contiguous(const T* __restrict__ a, const T* __restrict__ b, R* __restrict__ o, int64_t n,
                                  Op op) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t packs = n / V;
  for (int64_t p = tid; p < packs; p += stride) {
    const Pack<T, V> x = reinterpret_cast<const Pack<T, V>*>(a)[p];
    const Pack<T, V> y = reinterpret_cast<const Pack<T, V>*>(b)[p];
    Pack<R, V> z;
#pragma unroll
    for (int k = 0; k < V; ++k) z.v[k] = op(x.v[k], y.v[k]);
    reinterpret_cast<Pack<R, V>*>(o)[p] = z;
  }
  for (int64_t i = packs * V + tid; i < n; i += stride) o[i] = op(a[i], b[i]);
}

template <class Op, class T, class R>
__global__ void unary_strided(StridedLayout<2> L, const T* a, R* o, Op op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < L.numel; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    offsets_of(L, i, off);
    o[off[1]] = op(a[off[0]]);
  }
}

template <class Op, class T, class R>
__global__ void binary_strided(StridedLayout<3> L, const T* a, const T* b, R* o, Op op) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < L.numel; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    offsets_of(L, i, off);
    o[off[2]] = op(a[off[0]], b[off[1]]);
  }
}

// f(off) for every element, off[k] the element offset of operand k: ops with more
// operands than unary/binary (losses), which pass pointers inside f.
template <int N, class F>
__global__ void for_each_strided(StridedLayout<N> L, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < L.numel; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    offsets_of(L, i, off);
    f(off);
  }
}

template <class Op, class T, class R>
void run_unary(const TensorView& a, const TensorView& out, Op op, const char* name) {
  StridedLayout<2> L({&a, &out});
  if (L.numel == 0) return;
  cudaStream_t s = current_stream();
  const T* pa = a.ptr<T>();
  R* po = out.ptr<R>();
  constexpr int V = kVec<T>;
  if (!L.contiguous())
    unary_strided<<<blocks_for(L.numel), kThreads, 0, s>>>(L, pa, po, op);
  else if (aligned_to(pa, sizeof(T) * V) && aligned_to(po, sizeof(R) * V))
    unary_contiguous<V><<<blocks_for(L.numel / V + 1), kThreads, 0, s>>>(pa, po, L.numel, op);
  else
    unary_contiguous<1><<<blocks_for(L.numel), kThreads, 0, s>>>(pa, po, L.numel, op);
  EMBER_CUDA_LAUNCH_CHECK(name);
}

template <class Op, class T, class R>
void run_binary(const TensorView& a, const TensorView& b, const TensorView& out, Op op, const char* name) {
  StridedLayout<3> L({&a, &b, &out});
  if (L.numel == 0) return;
  cudaStream_t s = current_stream();
  const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
  R* po = out.ptr<R>();
  constexpr int V = kVec<T>;
  if (!L.contiguous())
    binary_strided<<<blocks_for(L.numel), kThreads, 0, s>>>(L, pa, pb, po, op);
  else if (aligned_to(pa, sizeof(T) * V) && aligned_to(pb, sizeof(T) * V) && aligned_to(po, sizeof(R) * V))
    binary_contiguous<V><<<blocks_for(L.numel / V + 1), kThreads, 0, s>>>(pa, pb, po, L.numel, op);
  else
    binary_contiguous<1><<<blocks_for(L.numel), kThreads, 0, s>>>(pa, pb, po, L.numel, op);
  EMBER_CUDA_LAUNCH_CHECK(name);
}

template <int N, class F>
void run_strided(const StridedLayout<N>& L, F f, const char* name) {
  if (L.numel == 0) return;
  for_each_strided<<<blocks_for(L.numel), kThreads, 0, current_stream()>>>(L, f);
  EMBER_CUDA_LAUNCH_CHECK(name);
}

}  // namespace ember::cuda
