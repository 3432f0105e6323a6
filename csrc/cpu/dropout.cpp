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
#include "../check.h"
#include "../ops.h"
#include "../philox.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "dropout_loops.h"
#include "isa_instantiate.h"

namespace {

void check_p(double p, const char* op) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, op, ": dropout probability has to be between 0 and 1, but got ", p);
}

// 1/(1-p), and 0 for p == 1 (nothing is kept). out = x * (keep ? scale : 0), as torch's
// x * mask / (1-p): NaN and inf in dropped elements propagate.
double keep_scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }

bool present(const TensorView& t) { return t.data != nullptr || t.ndim > 0; }

}  // namespace

void dropout_forward(const TensorView& x, double p, uint64_t seed, uint64_t offset, const TensorView& out,
                     const TensorView& mask) {
  const char* op = "dropout";
  check_p(p, op);
  check_float(x, op, "input");
  check_same_shape(x, out, op);
  check_same_dtype(x, out, op);
  check_contiguous(x, op, "input");
  check_contiguous(out, op, "out");
  EMBER_CHECK(offset % 4 == 0, op, ": generator offset must be a multiple of 4, got ", offset);
  if (present(mask)) {
    check_same_shape(x, mask, op);
    check_dtype(mask, DType::b8, op, "mask");
    check_contiguous(mask, op, "mask");
  }
  const uint32_t threshold = philox::dropout_threshold(p);
  bool* m = present(mask) ? mask.ptr<bool>() : nullptr;
  EMBER_DISPATCH_FLOAT(x.dtype, op, {
    const T scale = static_cast<T>(keep_scale(p));
    switch (isa()) {
      case Isa::avx512: isa_avx512::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale); break;
      case Isa::avx2: isa_avx2::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale); break;
      default: isa_scalar::dropout_forward_loop(x.ptr<T>(), out.ptr<T>(), m, x.numel(), seed, offset, threshold, scale);
    }
  });
}

void dropout_backward(const TensorView& grad, const TensorView& mask, double p, const TensorView& grad_input) {
  const char* op = "dropout_backward";
  check_p(p, op);
  check_float(grad, op, "grad");
  check_same_shape(grad, mask, op);
  check_same_shape(grad, grad_input, op);
  check_dtype(mask, DType::b8, op, "mask");
  check_same_dtype(grad, grad_input, op);
  check_contiguous(grad, op, "grad");
  check_contiguous(mask, op, "mask");
  check_contiguous(grad_input, op, "grad_input");
  EMBER_DISPATCH_FLOAT(grad.dtype, op, {
    const T scale = static_cast<T>(keep_scale(p));
    switch (isa()) {
      case Isa::avx512: isa_avx512::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale); break;
      case Isa::avx2: isa_avx2::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale); break;
      default: isa_scalar::dropout_backward_loop(grad.ptr<T>(), mask.ptr<bool>(), grad_input.ptr<T>(), grad.numel(), scale);
    }
  });
}

}  // namespace ember::cpu
