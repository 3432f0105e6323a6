// DimLayout: N same-shape strided operands seen as (outer..., C, inner) around one dim,
// for softmax and its backward on CPU and CUDA alike (no copy for any strides).
// C = shape[dim] with per-operand stride cstride; inner = the dims after `dim` merged
// into one run where every operand steps evenly across them (any that cannot merge join
// the outer dims); the outer dims are walked by multi-index (outer_offsets).
// Plain data: the CPU walks it in cpu/activation.cpp, CUDA kernels take it by value.
#pragma once
#include <array>
#include <cstdint>
#include "tensor_view.h"

#ifdef __CUDACC__
#define EMBER_DIM_HD __host__ __device__
#else
#define EMBER_DIM_HD
#endif

namespace ember {

// Rows up to this long are walked as columns (see the constructor).
constexpr int64_t kShortRow = 16;

template <int N>
struct DimLayout {
  int64_t C = 1, inner = 1;
  int64_t cstride[N] = {}, istride[N] = {};
  int nouter = 0;
  int64_t oshape[kMaxDims] = {};
  int64_t ostride[N][kMaxDims] = {};
  int64_t nout = 1;
  bool short_rows = false;  // (R, C) contiguous rows walked as columns (see the constructor)

  DimLayout(const std::array<const TensorView*, N>& v, int dim) {
    const TensorView& r = *v[0];
    C = r.shape[dim];
    for (int k = 0; k < N; ++k) cstride[k] = v[k]->strides[dim];
    // Inner run: the last size>1 dim after `dim`, grown leftwards while strides allow.
    int d = r.ndim - 1;
    while (d > dim && r.shape[d] == 1) --d;
    if (d > dim) {
      inner = r.shape[d];
      for (int k = 0; k < N; ++k) istride[k] = v[k]->strides[d];
      for (--d; d > dim; --d) {
        if (r.shape[d] == 1) continue;
        bool merge = true;
        for (int k = 0; k < N; ++k) merge &= v[k]->strides[d] == istride[k] * inner;
        if (!merge) break;
        inner *= r.shape[d];
      }
    }
    // Outer dims: everything before `dim`, plus after-dims left over, merged where even.
    for (int e = 0; e <= d; ++e) {
      if (e == dim || r.shape[e] == 1) continue;
      if (nouter > 0) {
        bool merge = true;
        for (int k = 0; k < N; ++k) merge &= ostride[k][nouter - 1] == v[k]->strides[e] * r.shape[e];
        if (merge) {
          oshape[nouter - 1] *= r.shape[e];
          for (int k = 0; k < N; ++k) ostride[k][nouter - 1] = v[k]->strides[e];
          continue;
        }
      }
      oshape[nouter] = r.shape[e];
      for (int k = 0; k < N; ++k) ostride[k][nouter] = v[k]->strides[e];
      ++nouter;
    }
    for (int e = 0; e < nouter; ++e) nout *= oshape[e];
    // Short contiguous rows, (R, C) with C <= kShortRow: along a row there is too little
    // to vectorize (CPU) or to share among a warp (CUDA), so walk it as C steps over R
    // "columns" of stride C instead.
    short_rows = inner == 1 && nouter == 1 && C <= kShortRow;
    for (int k = 0; k < N; ++k) short_rows &= cstride[k] == 1 && ostride[k][0] == C;
    if (short_rows) {
      inner = oshape[0];
      for (int k = 0; k < N; ++k) istride[k] = C;
      nouter = 0;
      nout = 1;
    }
  }

  // Element offsets (one per operand) of outer index o, position 0 of C and inner.
  EMBER_DIM_HD void outer_offsets(int64_t o, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int e = nouter - 1; e >= 0; --e) {
      int64_t i = o % oshape[e];
      o /= oshape[e];
      for (int k = 0; k < N; ++k) off[k] += i * ostride[k][e];
    }
  }
};

}  // namespace ember

#undef EMBER_DIM_HD
