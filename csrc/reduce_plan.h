// How a reduction over a set of axes runs as a few simple passes, on CPU and CUDA alike.
// The input (contiguous) has its dims coalesced into alternating runs of kept and
// reduced axes (size-1 dims vanish); each reduced run is one pass over a 3-D view
//   x (A, R, B) -> (A, B)
// taken from the innermost run outwards, so the last pass writes out in keepdims order.
#pragma once
#include <cstdint>
#include <vector>
#include "tensor_view.h"

namespace ember {

struct ReducePass {
  int64_t A, R, B;
};

// `reduced[d]` marks the axes to reduce. No passes means nothing is reduced (a copy).
inline std::vector<ReducePass> plan_reduction(const TensorView& x, const std::vector<bool>& reduced) {
  std::vector<int64_t> dims;
  std::vector<bool> flag;
  for (int d = 0; d < x.ndim; ++d) {
    if (x.shape[d] == 1) continue;
    if (!dims.empty() && flag.back() == reduced[d]) dims.back() *= x.shape[d];
    else { dims.push_back(x.shape[d]); flag.push_back(reduced[d]); }
  }
  std::vector<ReducePass> passes;
  for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
    if (!flag[i]) continue;
    int64_t A = 1, B = 1;
    for (int j = 0; j < i; ++j) A *= dims[j];
    for (int j = i + 1; j < static_cast<int>(dims.size()); ++j) B *= dims[j];
    passes.push_back({A, dims[i], B});
    dims[i] = 1;
  }
  return passes;
}

}  // namespace ember
