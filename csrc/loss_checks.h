// Argument checks of cross_entropy with probability targets, shared by the CPU and CUDA
// implementations so both reject the same mistakes with the same messages.
#pragma once
#include "check.h"

namespace ember {

// Output written by the kernel: the logits' dtype, contiguous, shape (d0, d1[, 2]).
inline void check_probs_out(const TensorView& o, const TensorView& x, int64_t d0, int64_t d1, int nd, const char* op,
                            const char* name) {
  check_same_dtype(x, o, op);
  check_contiguous(o, op, name);
  bool ok = o.ndim == nd && o.shape[0] == d0 && o.shape[1] == d1 && (nd == 2 || o.shape[2] == 2);
  EMBER_CHECK(ok, op, ": ", name, " has shape ", o.shape_str(), ", expected (", d0, ", ", d1, nd == 3 ? ", 2)" : ")");
}

// logits (N, C, K) float, target the same shape and dtype, weight (C,) or null,
// stats (N, K, 2); label_smoothing in [0, 1].
inline void check_cross_entropy_probs(const TensorView& x, const TensorView& target, const TensorView* weight,
                                      const TensorView& stats, double label_smoothing, const char* op) {
  check_float(x, op, "input");
  check_ndim(x, 3, op, "input");
  EMBER_CHECK_TYPE(target.dtype == x.dtype, op, ": probability target must have the input's dtype ",
                   dtype_name(x.dtype), ", got ", dtype_name(target.dtype));
  EMBER_CHECK(target.ndim == 3 && target.shape[0] == x.shape[0] && target.shape[1] == x.shape[1] &&
                  target.shape[2] == x.shape[2],
              op, ": probability target shape ", target.shape_str(), " must equal the input shape ", x.shape_str());
  if (weight) {
    check_same_dtype(x, *weight, op);
    EMBER_CHECK(weight->ndim == 1 && weight->shape[0] == x.shape[1], op, ": weight must have shape (", x.shape[1],
                ",), one per class, got ", weight->shape_str());
  }
  EMBER_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
              label_smoothing);
  EMBER_CHECK(x.shape[1] > 0 || x.shape[0] * x.shape[2] == 0, op, ": input has 0 classes");
  check_probs_out(stats, x, x.shape[0], x.shape[2], 3, op, "stats");
}

// The backward's grad (N, K) (any strides), grad_input and grad_target (N, C, K) (any strides).
inline void check_cross_entropy_probs_backward(const TensorView& x, const TensorView& grad,
                                               const TensorView& grad_input, const TensorView* grad_target,
                                               const char* op) {
  check_same_dtype(x, grad, op);
  EMBER_CHECK(grad.ndim == 2 && grad.shape[0] == x.shape[0] && grad.shape[1] == x.shape[2], op, ": grad has shape ",
              grad.shape_str(), ", expected (", x.shape[0], ", ", x.shape[2], ")");
  check_same_dtype(x, grad_input, op);
  check_same_shape(x, grad_input, op);
  if (grad_target) {
    check_same_dtype(x, *grad_target, op);
    check_same_shape(x, *grad_target, op);
  }
}

}  // namespace ember
