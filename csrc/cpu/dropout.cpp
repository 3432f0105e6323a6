// Dropout with a counter-based generator: element i's decision depends only on
// (seed, offset, i) through Philox4x32-10 (csrc/philox.h documents the mapping), so the
// CPU and CUDA kernels draw the same mask and any thread can generate any range.
//   x, out (*shape) T; mask (*shape) bool (kept for backward) or absent.
// Backward multiplies by the stored mask: a 1-byte read per element instead of
// regenerating Philox (10 rounds per 4 elements), and it needs no generator state.
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include "../nn_checks.h"
#include "../ops.h"
#include "../philox.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "dropout_loops.h"
#include "isa_instantiate.h"

void dropout_forward(const TensorView& x, double p, uint64_t seed, uint64_t offset, const TensorView& out,
                     const TensorView& mask) {
  const char* op = "dropout";
  check_dropout_forward_args(x, p, offset, out, mask);
  const uint32_t threshold = philox::dropout_threshold(p);
  bool* m = present(mask) ? mask.ptr<bool>() : nullptr;
  EMBER_DISPATCH_FLOAT(x.dtype, op, {
    const T scale = static_cast<T>(dropout_keep_scale(p));
    switch (isa()) {
      case Isa::avx512: isa_avx512::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale); break;
      case Isa::avx2: isa_avx2::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale); break;
      default: isa_scalar::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale);
    }
  });
}

void dropout_backward(const TensorView& grad, const TensorView& mask, double p, const TensorView& grad_input) {
  const char* op = "dropout_backward";
  check_dropout_backward_args(grad, mask, p, grad_input);
  EMBER_DISPATCH_FLOAT(grad.dtype, op, {
    const T scale = static_cast<T>(dropout_keep_scale(p));
    switch (isa()) {
      case Isa::avx512: isa_avx512::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale); break;
      case Isa::avx2: isa_avx2::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale); break;
      default: isa_scalar::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale);
    }
  });
}

}  // namespace ember::cpu
