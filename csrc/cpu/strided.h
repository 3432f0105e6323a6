// Walking N same-shape strided operands element by element, in parallel, over their
// coalesced layout (strided_layout.h): a contiguous or broadcast operand is one long
// inner run that the kernel's inner loop can vectorize. The kernel sees runs:
//   f(offset[N], inner_stride[N], count)   // offsets and strides in elements
#pragma once
#include <algorithm>
#include <array>
#include "../strided_layout.h"
#include "../tensor_view.h"
#include "dispatch.h"

namespace ember::cpu {

template <int N>
struct StridedLoop : StridedLayout<N> {
  using StridedLayout<N>::StridedLayout;
  using StridedLayout<N>::ndim;
  using StridedLayout<N>::numel;
  using StridedLayout<N>::shape;
  using StridedLayout<N>::strides;

  int64_t inner() const { return ndim ? shape[ndim - 1] : 1; }

  // Runs f over the elements [begin, end) in linear (C) order.
  template <class F>
  void run_range(int64_t begin, int64_t end, F& f) const {
    std::array<int64_t, N> inner_stride{};
    for (int k = 0; k < N; ++k) inner_stride[k] = ndim ? strides[k][ndim - 1] : 0;
    const int64_t len = inner();
    int64_t idx[kMaxDims] = {};
    int64_t rest = begin / len;
    for (int d = ndim - 2; d >= 0; --d) { idx[d] = rest % shape[d]; rest /= shape[d]; }
    int64_t i_inner = begin % len;
    int64_t pos = begin;
    while (pos < end) {
      std::array<int64_t, N> off{};
      for (int k = 0; k < N; ++k) {
        int64_t o = i_inner * inner_stride[k];
        for (int d = 0; d + 1 < ndim; ++d) o += idx[d] * strides[k][d];
        off[k] = o;
      }
      int64_t count = std::min(len - i_inner, end - pos);
      f(off, inner_stride, count);
      pos += count;
      i_inner = 0;
      for (int d = ndim - 2; d >= 0; --d) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  }

  template <class F>
  void run(int64_t grain, F f) const {
    if (numel == 0) return;
    parallel_for(numel, grain, [&](int64_t b, int64_t e) { run_range(b, e, f); });
  }
};

// Elements per thread below which a memory-bound loop stays on one thread.
constexpr int64_t kElementwiseGrain = 1 << 15;

}  // namespace ember::cpu
