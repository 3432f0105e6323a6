// Argument checks of the neural-network ops (batch norm, dropout, activations, losses,
// optimizer updates), shared by csrc/cpu and csrc/cuda so both backends reject the same
// mistakes with the same messages. Value checks that need the data (target classes) are
// per backend; their messages are built here.
#pragma once
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include "check.h"

namespace ember {

// An absent optional operand is an empty TensorView (bind_nn.h turns None into one).
inline bool present(const TensorView& t) { return t.data != nullptr || t.ndim > 0; }

// ---- batch norm: x (N, C, S) contiguous, per-channel vectors (C,) contiguous

inline void check_bn_channel_vec(const TensorView& t, const TensorView& x, const char* op, const char* name) {
  EMBER_CHECK(t.ndim == 1 && t.shape[0] == x.shape[1], op, ": ", name, " must have shape (", x.shape[1],
              ",) (one value per channel), got ", t.shape_str());
  check_same_dtype(x, t, op);
  check_contiguous(t, op, name);
}

inline void check_bn_x3(const TensorView& x, const char* op, const char* name) {
  EMBER_CHECK(x.ndim == 3, op, ": ", name, " must be viewed as (N, C, S), got shape ", x.shape_str());
  check_float(x, op, name);
  check_contiguous(x, op, name);
}

inline void check_batch_norm_forward_args(const TensorView& x, const TensorView& weight, const TensorView& bias,
                                          const TensorView& running_mean, const TensorView& running_var,
                                          const TensorView& out, const TensorView& save_mean,
                                          const TensorView& save_invstd, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_bn_x3(x, op, "input");
  check_bn_x3(out, op, "out");
  check_same_shape(x, out, op);
  check_same_dtype(x, out, op);
  if (present(weight)) check_bn_channel_vec(weight, x, op, "weight");
  if (present(bias)) check_bn_channel_vec(bias, x, op, "bias");
  EMBER_CHECK(present(running_mean) == present(running_var), op,
              ": running_mean and running_var must both be given or both be None");
  if (present(running_mean)) {
    check_bn_channel_vec(running_mean, x, op, "running_mean");
    check_bn_channel_vec(running_var, x, op, "running_var");
  }
  check_bn_channel_vec(save_mean, x, op, "save_mean");
  check_bn_channel_vec(save_invstd, x, op, "save_invstd");
  EMBER_CHECK(training || present(running_mean), op, ": running_mean and running_var are required when training=False");
  EMBER_CHECK(!(eps < 0) && std::isfinite(eps), op, ": eps must be a finite non-negative number, got ", eps);
  EMBER_CHECK(std::isfinite(momentum), op, ": momentum must be finite, got ", momentum);
  EMBER_CHECK(!training || x.shape[0] * x.shape[2] != 1, op,
              ": Expected more than 1 value per channel when training, got input of shape (N, C, S) = ", x.shape_str());
}

inline void check_batch_norm_backward_args(const TensorView& grad_out, const TensorView& x,
                                           const TensorView& save_mean, const TensorView& save_invstd,
                                           const TensorView& weight, const TensorView& grad_input,
                                           const TensorView& grad_weight, const TensorView& grad_bias) {
  const char* op = "batch_norm_backward";
  check_bn_x3(x, op, "input");
  check_bn_x3(grad_out, op, "grad_output");
  check_same_shape(x, grad_out, op);
  check_same_dtype(x, grad_out, op);
  check_bn_channel_vec(save_mean, x, op, "save_mean");
  check_bn_channel_vec(save_invstd, x, op, "save_invstd");
  if (present(weight)) check_bn_channel_vec(weight, x, op, "weight");
  if (present(grad_input)) {
    check_bn_x3(grad_input, op, "grad_input");
    check_same_shape(x, grad_input, op);
    check_same_dtype(x, grad_input, op);
  }
  if (present(grad_weight)) check_bn_channel_vec(grad_weight, x, op, "grad_weight");
  if (present(grad_bias)) check_bn_channel_vec(grad_bias, x, op, "grad_bias");
}

// ---- dropout: x, out (*) contiguous, mask (*) contiguous bool or absent

inline void check_dropout_p(double p, const char* op) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, op, ": dropout probability has to be between 0 and 1, but got ", p);
}

// 1/(1-p), and 0 for p == 1 (nothing is kept). out = x * (keep ? scale : 0), as torch's
// x * mask / (1-p): NaN and inf in dropped elements propagate.
inline double dropout_keep_scale(double p) { return p < 1.0 ? 1.0 / (1.0 - p) : 0.0; }

inline void check_dropout_forward_args(const TensorView& x, double p, uint64_t offset, const TensorView& out,
                                       const TensorView& mask) {
  const char* op = "dropout";
  check_dropout_p(p, op);
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
}

inline void check_dropout_backward_args(const TensorView& grad, const TensorView& mask, double p,
                                        const TensorView& grad_input) {
  const char* op = "dropout_backward";
  check_dropout_p(p, op);
  check_float(grad, op, "grad");
  check_same_shape(grad, mask, op);
  check_same_shape(grad, grad_input, op);
  check_dtype(mask, DType::b8, op, "mask");
  check_same_dtype(grad, grad_input, op);
  check_contiguous(grad, op, "grad");
  check_contiguous(mask, op, "mask");
  check_contiguous(grad_input, op, "grad_input");
}

// ---- activations and softmax: any strides

inline void check_activation_args(const TensorView& x, const TensorView& out, const char* op) {
  check_float(x, op, "input");
  check_same_dtype(x, out, op);
  check_same_shape(x, out, op);
}

inline void check_activation_backward_args(const TensorView& g, const TensorView& saved, const TensorView& gx,
                                           const char* op, const char* saved_name) {
  check_float(g, op, "grad_output");
  EMBER_CHECK_TYPE(saved.dtype == g.dtype && gx.dtype == g.dtype, op, ": grad_output, ", saved_name,
                   " and grad_input must share one dtype, got ", dtype_name(g.dtype), ", ", dtype_name(saved.dtype),
                   ", ", dtype_name(gx.dtype));
  check_same_shape(g, saved, op);
  check_same_shape(g, gx, op);
}

// The softmax dim, negative counting from the end, as an index in [0, ndim) (0 for 0-d).
inline int softmax_dim(const TensorView& x, int64_t dim, const char* op) {
  int nd = x.ndim == 0 ? 1 : x.ndim;
  EMBER_CHECK_INDEX(dim >= -nd && dim < nd, op, ": dim ", dim, " is out of range for a ", x.ndim,
                    "-D tensor (expected in [", -nd, ", ", nd - 1, "])");
  return static_cast<int>(dim < 0 ? dim + nd : dim);
}

// A 0-d tensor is softmaxed as one element over a dim of size 1.
inline TensorView as_1d(const TensorView& t) {
  if (t.ndim > 0) return t;
  TensorView v = t;
  v.ndim = 1;
  v.shape[0] = 1;
  v.strides[0] = 1;
  return v;
}

// ---- losses

// Class-indexed losses: x (N, C, K) any strides, targets (N, K) int64.
struct ClassLayout {
  int64_t N, C, K, xn, xc, xk, tn, tk;
};

// Checks shared by cross_entropy and nll_loss; returns the (N, C, K) layout of x.
inline ClassLayout class_layout(const TensorView& x, const TensorView& target, const TensorView* weight,
                                const char* op, const char* xname) {
  check_float(x, op, xname);
  check_ndim(x, 3, op, xname);
  check_dtype(target, DType::i64, op, "target");
  check_ndim(target, 2, op, "target");
  EMBER_CHECK(target.shape[0] == x.shape[0] && target.shape[1] == x.shape[2], op, ": target shape ",
              target.shape_str(), " does not match ", xname, " shape ", x.shape_str(), " (expected (",
              x.shape[0], ", ", x.shape[2], "))");
  if (weight) {
    check_same_dtype(x, *weight, op);
    EMBER_CHECK(weight->ndim == 1 && weight->shape[0] == x.shape[1], op, ": weight must have shape (",
                x.shape[1], ",), one per class, got ", weight->shape_str());
  }
  return ClassLayout{x.shape[0], x.shape[1], x.shape[2], x.strides[0], x.strides[1], x.strides[2],
                     target.strides[0], target.strides[1]};
}

inline void check_loss_out(const TensorView& o, const TensorView& x, std::initializer_list<int64_t> shape,
                           const char* op, const char* name) {
  check_same_dtype(x, o, op);
  if (o.numel() > 0) check_contiguous(o, op, name);  // TensorView calls some empty arrays non-contiguous
  bool ok = o.ndim == static_cast<int>(shape.size());
  int i = 0;
  for (int64_t s : shape) ok = ok && o.shape[i++] == s;
  EMBER_CHECK(ok, op, ": ", name, " has shape ", o.shape_str(), ", expected ", shape.size(), "-D of the sizes given");
}

// Target t at (n, k) is neither ignore_index nor a class in [0, C).
[[noreturn]] inline void throw_target_out_of_bounds(const ClassLayout& R, int64_t t, int64_t n, int64_t k,
                                                    int64_t ignore_index, const char* op) {
  throw std::out_of_range(str(op, ": target ", t, " is out of bounds for ", R.C, " classes (expected in [0, ",
                              R.C - 1, "] or ignore_index=", ignore_index, "; at sample ", n,
                              R.K > 1 ? str(", position ", k) : std::string(), ")"));
}

// After the targets are checked: a 0-class input is only valid when there are no rows.
inline void check_has_classes(const ClassLayout& R, const char* op) {
  if (R.C == 0) EMBER_CHECK(R.N * R.K == 0, op, ": input has 0 classes");
}

inline ClassLayout check_cross_entropy_args(const TensorView& logits, const TensorView& target,
                                            const TensorView* weight, double label_smoothing, const TensorView& loss,
                                            const TensorView& stats, const TensorView& weight_sum) {
  const char* op = "cross_entropy";
  ClassLayout R = class_layout(logits, target, weight, op, "input");
  EMBER_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, op, ": label_smoothing must be in [0, 1], got ",
              label_smoothing);
  check_loss_out(loss, logits, {R.N, R.K}, op, "loss");
  check_loss_out(stats, logits, {R.N, R.K, 2}, op, "stats");
  check_loss_out(weight_sum, logits, {}, op, "weight_sum");
  return R;
}

inline ClassLayout check_cross_entropy_backward_args(const TensorView& logits, const TensorView& target,
                                                     const TensorView* weight, const TensorView& stats,
                                                     const TensorView& grad, const TensorView& grad_input) {
  const char* op = "cross_entropy_backward";
  ClassLayout R = class_layout(logits, target, weight, op, "input");
  check_loss_out(stats, logits, {R.N, R.K, 2}, op, "stats");
  check_same_dtype(logits, grad, op);
  check_same_dtype(logits, grad_input, op);
  EMBER_CHECK(grad.ndim == 2 && grad.shape[0] == R.N && grad.shape[1] == R.K, op, ": grad has shape ",
              grad.shape_str(), ", expected (", R.N, ", ", R.K, ")");
  check_same_shape(logits, grad_input, op);
  return R;
}

inline ClassLayout check_nll_loss_args(const TensorView& log_probs, const TensorView& target,
                                       const TensorView* weight, const TensorView& loss,
                                       const TensorView& weight_sum) {
  const char* op = "nll_loss";
  ClassLayout R = class_layout(log_probs, target, weight, op, "input");
  check_loss_out(loss, log_probs, {R.N, R.K}, op, "loss");
  check_loss_out(weight_sum, log_probs, {}, op, "weight_sum");
  return R;
}

inline ClassLayout check_nll_loss_backward_args(const TensorView& target, const TensorView* weight,
                                                const TensorView& grad, const TensorView& grad_input) {
  const char* op = "nll_loss_backward";
  ClassLayout R = class_layout(grad_input, target, weight, op, "grad_input");
  check_same_dtype(grad_input, grad, op);
  EMBER_CHECK(grad.ndim == 2 && grad.shape[0] == R.N && grad.shape[1] == R.K, op, ": grad has shape ",
              grad.shape_str(), ", expected (", R.N, ", ", R.K, ")");
  return R;
}

// Elementwise losses: every operand has input's shape and dtype.
inline void check_elementwise_loss_args(const char* op, const TensorView& input,
                                        std::initializer_list<const TensorView*> others) {
  check_float(input, op, "input");
  for (const TensorView* t : others) {
    check_same_dtype(input, *t, op);
    check_same_shape(input, *t, op);
  }
}

// ---- cross_entropy with probability targets

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

// ---- optimizer updates: param, grad and state share one shape and dtype, contiguous

inline void check_optim_state(const TensorView& param, const TensorView& t, const char* op, const char* name) {
  check_same_shape(param, t, op);
  EMBER_CHECK_TYPE(t.dtype == param.dtype, op, ": ", name, " must have the parameter's dtype ",
                   dtype_name(param.dtype), ", got ", dtype_name(t.dtype));
  check_contiguous(t, op, name);
}

inline void check_finite(double v, const char* op, const char* name) {
  EMBER_CHECK(std::isfinite(v), op, ": ", name, " must be finite, got ", v);
}

inline void check_sgd_args(const TensorView& param, const TensorView& grad, const TensorView& momentum_buf,
                           double lr, double momentum, double dampening, bool nesterov, double weight_decay) {
  const char* op = "sgd_step";
  check_float(param, op, "param");
  check_contiguous(param, op, "param");
  check_optim_state(param, grad, op, "grad");
  check_finite(lr, op, "lr");
  check_finite(momentum, op, "momentum");
  check_finite(dampening, op, "dampening");
  check_finite(weight_decay, op, "weight_decay");
  EMBER_CHECK(lr >= 0, op, ": invalid learning rate: ", lr);
  EMBER_CHECK(momentum >= 0, op, ": invalid momentum value: ", momentum);
  EMBER_CHECK(weight_decay >= 0, op, ": invalid weight_decay value: ", weight_decay);
  EMBER_CHECK(!nesterov || (momentum > 0 && dampening == 0), op,
              ": Nesterov momentum requires a momentum and zero dampening");
  if (momentum != 0) {
    EMBER_CHECK(present(momentum_buf), op, ": momentum_buf is required when momentum != 0");
    check_optim_state(param, momentum_buf, op, "momentum_buf");
  }
}

// Returns the op's name: "adamw_step" with decoupled weight decay, else "adam_step".
inline const char* check_adam_args(const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
                                   const TensorView& exp_avg_sq, const TensorView& max_exp_avg_sq, int64_t step,
                                   double lr, double beta1, double beta2, double eps, double weight_decay,
                                   bool amsgrad, bool decoupled_weight_decay) {
  const char* op = decoupled_weight_decay ? "adamw_step" : "adam_step";
  check_float(param, op, "param");
  check_contiguous(param, op, "param");
  check_optim_state(param, grad, op, "grad");
  check_optim_state(param, exp_avg, op, "exp_avg");
  check_optim_state(param, exp_avg_sq, op, "exp_avg_sq");
  if (amsgrad) {
    EMBER_CHECK(present(max_exp_avg_sq), op, ": max_exp_avg_sq is required when amsgrad=True");
    check_optim_state(param, max_exp_avg_sq, op, "max_exp_avg_sq");
  }
  EMBER_CHECK(step >= 1, op, ": step must be >= 1 (the count including this update), got ", step);
  check_finite(lr, op, "lr");
  check_finite(eps, op, "eps");
  check_finite(weight_decay, op, "weight_decay");
  EMBER_CHECK(lr >= 0, op, ": invalid learning rate: ", lr);
  EMBER_CHECK(eps >= 0, op, ": invalid epsilon value: ", eps);
  EMBER_CHECK(beta1 >= 0 && beta1 < 1, op, ": invalid beta parameter at index 0: ", beta1);
  EMBER_CHECK(beta2 >= 0 && beta2 < 1, op, ": invalid beta parameter at index 1: ", beta2);
  EMBER_CHECK(weight_decay >= 0, op, ": invalid weight_decay value: ", weight_decay);
  return op;
}

// Adam's per-step scalars, as torch computes them: in double on the host, applied in T.
struct AdamScalars {
  double decay, l2, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size;
};
inline AdamScalars adam_scalars(int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay,
                                bool decoupled_weight_decay) {
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  return AdamScalars{decoupled_weight_decay ? 1.0 - lr * weight_decay : 1.0,
                     decoupled_weight_decay ? 0.0 : weight_decay,
                     1.0 - beta1,
                     beta2,
                     1.0 - beta2,
                     std::sqrt(bc2),
                     eps,
                     lr / bc1};
}

}  // namespace ember
