// StridedLayout: N same-shape strided operands with their shape coalesced (size-1 dims
// dropped, adjacent dims merged where every operand steps evenly across them), so that
// contiguous and broadcast operands become long inner runs. Plain data: the CPU walks it
// with StridedLoop (cpu/strided.h), CUDA kernels take it by value (cuda/elementwise.cu).
#pragma once
#include <array>
#include "tensor_view.h"

namespace ember {

template <int N>
struct StridedLayout {
  int ndim = 0;  // after coalescing; 0 means a single element
  int64_t numel = 1;
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  StridedLayout() = default;
  explicit StridedLayout(const std::array<const TensorView*, N>& views) {
    const TensorView& ref = *views[0];
    for (int d = 0; d < ref.ndim; ++d) numel *= ref.shape[d];
    for (int d = 0; d < ref.ndim; ++d) {
      if (ref.shape[d] == 1) continue;
      shape[ndim] = ref.shape[d];
      for (int k = 0; k < N; ++k) strides[k][ndim] = views[k]->strides[d];
      ++ndim;
    }
    int out = 0;
    for (int d = 0; d < ndim; ++d) {
      if (out > 0) {
        bool merge = true;
        for (int k = 0; k < N; ++k) merge &= strides[k][out - 1] == strides[k][d] * shape[d];
        if (merge) {
          shape[out - 1] *= shape[d];
          for (int k = 0; k < N; ++k) strides[k][out - 1] = strides[k][d];
          continue;
        }
      }
      shape[out] = shape[d];
      for (int k = 0; k < N; ++k) strides[k][out] = strides[k][d];
      ++out;
    }
    ndim = out;
  }

  // True when every operand is one contiguous run (the vectorizable case).
  bool contiguous() const {
    if (ndim > 1) return false;
    for (int k = 0; k < N; ++k)
      if (ndim == 1 && strides[k][0] != 1) return false;
    return true;
  }
};

}  // namespace ember
