// Losses, forward next to backward: fused softmax cross-entropy (weights, ignore_index,
// label smoothing; class indices or probability targets), nll_loss, mse_loss, binary_cross_entropy_with_logits.
//
// The class-indexed losses see their input as (N, C, K): PyTorch's (N, C, d1, ...) with
// the trailing dims flattened into K (K = 1 for (N, C)), and targets as (N, K). They
// write the per-sample loss (N, K) (0 where ignored) and the reduction's weight total
// (sum of w[target] over non-ignored samples, a 0-d tensor), so 'sum' and 'mean' are a
// sum and a division in Python without a device-to-host copy.
#include <cmath>
#include <limits>
#include "../nn_checks.h"
#include "../ops.h"
#include "dispatch.h"
#include "strided.h"
#include "vmath_global.h"
#include "vmath_act.h"

#define EMBER_INLINE __attribute__((always_inline)) inline
// On the loop bodies: inline every call (vmath::exp included) so the loops vectorize.
#define EMBER_FLATTEN __attribute__((flatten))

namespace ember::cpu {
namespace {

EMBER_INLINE float exp_t(float x) { return vmath::exp(x); }
EMBER_INLINE double exp_t(double x) { return std::exp(x); }
EMBER_INLINE float log_t(float x) { return vmath::log(x); }
EMBER_INLINE double log_t(double x) { return std::log(x); }
// softplus(-x) = log(1 + e^-x) = log1p(e^-|x|) + max(-x, 0), without overflow
EMBER_INLINE float softplus_neg(float x) {
  return vmath::log1p_unit(vmath::exp(-__builtin_fabsf(x))) + (x < 0.0f ? -x : 0.0f);
}
EMBER_INLINE double softplus_neg(double x) { return std::log1p(std::exp(-std::fabs(x))) + (x < 0 ? -x : 0.0); }
EMBER_INLINE float sigmoid_t(float x) { return vmath::sigmoid(x); }
EMBER_INLINE double sigmoid_t(double x) {
  double e = std::exp(-std::fabs(x));
  return (x < 0 ? e : 1.0) / (1.0 + e);
}

// Rows of logits x (N, C, K): row (n, k) starts at n*xn + k*xk, steps xc; targets (N, K).
struct Rows3 : ClassLayout {
  template <class F>
  void run(F f) const {
    int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(C, 1));
    parallel_for(N * K, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) f(r / K, r % K);
    });
  }
};

}  // namespace

namespace loss_scalar {
#include "loss_loops.h"
}
namespace loss_avx2 {
EMBER_AVX2_BEGIN
#include "loss_loops.h"
EMBER_ISA_END
}
namespace loss_avx512 {
EMBER_AVX512_BEGIN
#include "loss_loops.h"
EMBER_ISA_END
}

#define EMBER_LOSS_ISA(call)                      \
  do {                                            \
    switch (isa()) {                              \
      case Isa::avx512: loss_avx512::call; break; \
      case Isa::avx2: loss_avx2::call; break;     \
      default: loss_scalar::call;                 \
    }                                             \
  } while (0)

namespace {

// Serial pass over the targets: every one is ignore_index or a class in [0, C) (checked
// here, not in the parallel loop, so the error can be thrown); returns sum of w[target].
template <class T>
T check_targets(const Rows3& R, const int64_t* tgt, const T* w, int64_t sw, int64_t ignore_index, const char* op) {
  double total = 0;
  for (int64_t n = 0; n < R.N; ++n)
    for (int64_t k = 0; k < R.K; ++k) {
      int64_t t = tgt[n * R.tn + k * R.tk];
      if (t == ignore_index) continue;
      if (t < 0 || t >= R.C) throw_target_out_of_bounds(R, t, n, k, ignore_index, op);
      total += w ? static_cast<double>(w[t * sw]) : 1.0;
    }
  return static_cast<T>(total);
}

template <class T>
T weight_total(const T* w, int64_t sw, int64_t C) {
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += w ? static_cast<double>(w[c * sw]) : 1.0;
  return static_cast<T>(s);
}

}  // namespace

// ---- cross_entropy: logits (N, C, K), target (N, K) int64, weight (C) or null
//   -> loss (N, K) (0 where ignored), stats (N, K, 2) = {row max, log sum exp(x - max)}
//      for the backward, weight_sum () = sum of w[target] over non-ignored targets.
// loss = (1 - eps) w_t (lse - x_t) + eps / C * sum_c w_c (lse - x_c)   (PyTorch's
// label smoothing, weights included), one pass for max and one for the sums per row.
void cross_entropy(const TensorView& logits, const TensorView& target, const TensorView* weight,
                   int64_t ignore_index, double label_smoothing, const TensorView& loss, const TensorView& stats,
                   const TensorView& weight_sum) {
  const char* op = "cross_entropy";
  Rows3 R{check_cross_entropy_args(logits, target, weight, label_smoothing, loss, stats, weight_sum)};
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    const T* w = weight ? weight->ptr<T>() : nullptr;
    const int64_t sw = weight ? weight->strides[0] : 0;
    const int64_t* tgt = target.ptr<int64_t>();
    *weight_sum.ptr<T>() = check_targets<T>(R, tgt, w, sw, ignore_index, op);
    check_has_classes(R, op);
    const T wsum = weight_total<T>(w, sw, R.C);
    EMBER_LOSS_ISA(cross_entropy_run<T>(R, logits.ptr<T>(), tgt, w, sw, wsum, ignore_index,
                                        static_cast<T>(label_smoothing), loss.ptr<T>(), stats.ptr<T>()));
  });
}

// grad (N, K) any strides (stride 0 for a reduced loss; mean's 1/weight_sum folded in)
//   -> grad_input (N, C, K): grad * [(1-eps) w_t (softmax - onehot_t) + eps/C (W softmax - w)]
void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                            const TensorView& stats, const TensorView& grad, int64_t ignore_index,
                            double label_smoothing, const TensorView& grad_input) {
  const char* op = "cross_entropy_backward";
  Rows3 R{check_cross_entropy_backward_args(logits, target, weight, stats, grad, grad_input)};
  EMBER_DISPATCH_FLOAT(logits.dtype, op, {
    const T* w = weight ? weight->ptr<T>() : nullptr;
    const int64_t sw = weight ? weight->strides[0] : 0;
    const int64_t* tgt = target.ptr<int64_t>();
    check_targets<T>(R, tgt, w, sw, ignore_index, op);
    const T wsum = weight_total<T>(w, sw, R.C);
    EMBER_LOSS_ISA(cross_entropy_backward_run<T>(R, logits.ptr<T>(), tgt, w, sw, wsum, ignore_index,
                                                 static_cast<T>(label_smoothing), stats.ptr<T>(), grad.ptr<T>(),
                                                 grad.strides[0], grad.strides[1], grad_input.ptr<T>(),
                                                 grad_input.strides[0], grad_input.strides[1], grad_input.strides[2]));
  });
}

// ---- cross_entropy_probs: logits (N, C, K), target (N, C, K) probabilities, weight (C)
// or null -> loss (N, K), stats (N, K, 2) = {row max, log sum exp(x - max)}.
void cross_entropy_probs(const TensorView& logits, const TensorView& target, const TensorView* weight,
                         double label_smoothing, const TensorView& loss, const TensorView& stats) {
  const char* op = "cross_entropy_probs";
  check_cross_entropy_probs(logits, target, weight, stats, label_smoothing, op);
  const TensorView& x = logits;
  check_probs_out(loss, x, x.shape[0], x.shape[2], 2, op, "loss");
  Rows3 R{x.shape[0], x.shape[1], x.shape[2], x.strides[0], x.strides[1], x.strides[2], 0, 0};
  EMBER_DISPATCH_FLOAT(x.dtype, op, {
    EMBER_LOSS_ISA(cross_entropy_probs_run<T>(R, x.ptr<T>(), target.ptr<T>(), target.strides[0], target.strides[1],
                                              target.strides[2], weight ? weight->ptr<T>() : nullptr,
                                              weight ? weight->strides[0] : 0, static_cast<T>(label_smoothing),
                                              loss.ptr<T>(), stats.ptr<T>()));
  });
}

// grad (N, K) any strides (stride 0 for a reduced loss; mean's 1/(N*K) folded in)
//   -> grad_input (N, C, K), and grad_target (N, C, K) when not null (ops.h: formulas).
void cross_entropy_probs_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                                  const TensorView& stats, const TensorView& grad, double label_smoothing,
                                  const TensorView& grad_input, const TensorView* grad_target) {
  const char* op = "cross_entropy_probs_backward";
  check_cross_entropy_probs(logits, target, weight, stats, label_smoothing, op);
  check_cross_entropy_probs_backward(logits, grad, grad_input, grad_target, op);
  const TensorView& x = logits;
  Rows3 R{x.shape[0], x.shape[1], x.shape[2], x.strides[0], x.strides[1], x.strides[2], 0, 0};
  const int64_t* gts = grad_target ? grad_target->strides : grad_input.strides;  // unused when null
  EMBER_DISPATCH_FLOAT(x.dtype, op, {
    EMBER_LOSS_ISA(cross_entropy_probs_backward_run<T>(
        R, x.ptr<T>(), target.ptr<T>(), target.strides[0], target.strides[1], target.strides[2],
        weight ? weight->ptr<T>() : nullptr, weight ? weight->strides[0] : 0, static_cast<T>(label_smoothing),
        stats.ptr<T>(), grad.ptr<T>(), grad.strides[0], grad.strides[1], grad_input.ptr<T>(), grad_input.strides,
        grad_target ? grad_target->ptr<T>() : nullptr, gts));
  });
}

// ---- nll_loss: log_probs (N, C, K), target (N, K), weight (C) or null
//   -> loss (N, K) = -w_t log_probs[n, t, k] (0 where ignored), weight_sum ()
void nll_loss(const TensorView& log_probs, const TensorView& target, const TensorView* weight, int64_t ignore_index,
              const TensorView& loss, const TensorView& weight_sum) {
  const char* op = "nll_loss";
  Rows3 R{check_nll_loss_args(log_probs, target, weight, loss, weight_sum)};
  EMBER_DISPATCH_FLOAT(log_probs.dtype, op, {
    const T* w = weight ? weight->ptr<T>() : nullptr;
    const int64_t sw = weight ? weight->strides[0] : 0;
    const int64_t* tgt = target.ptr<int64_t>();
    *weight_sum.ptr<T>() = check_targets<T>(R, tgt, w, sw, ignore_index, op);
    const T* x = log_probs.ptr<T>();
    T* out = loss.ptr<T>();
    // One gather per sample: too little work to vectorize or thread.
    for (int64_t n = 0; n < R.N; ++n)
      for (int64_t k = 0; k < R.K; ++k) {
        int64_t t = tgt[n * R.tn + k * R.tk];
        out[n * R.K + k] = t == ignore_index ? T(0) : -(w ? w[t * sw] : T(1)) * x[n * R.xn + t * R.xc + k * R.xk];
      }
  });
}

// grad (N, K) any strides -> grad_input (N, C, K): -w_t grad at the target, 0 elsewhere.
void nll_loss_backward(const TensorView& target, const TensorView* weight, const TensorView& grad,
                       int64_t ignore_index, const TensorView& grad_input) {
  const char* op = "nll_loss_backward";
  Rows3 R{check_nll_loss_backward_args(target, weight, grad, grad_input)};
  EMBER_DISPATCH_FLOAT(grad_input.dtype, op, {
    const T* w = weight ? weight->ptr<T>() : nullptr;
    const int64_t sw = weight ? weight->strides[0] : 0;
    const int64_t* tgt = target.ptr<int64_t>();
    check_targets<T>(R, tgt, w, sw, ignore_index, op);
    const T* g = grad.ptr<T>();
    T* gx = grad_input.ptr<T>();
    R.run([&](int64_t n, int64_t k) {
      T* row = gx + n * R.xn + k * R.xk;
      for (int64_t c = 0; c < R.C; ++c) row[c * R.xc] = 0;
      int64_t t = tgt[n * R.tn + k * R.tk];
      if (t != ignore_index) row[t * R.xc] = -(w ? w[t * sw] : T(1)) * g[n * grad.strides[0] + k * grad.strides[1]];
    });
  });
}

// ---- mse_loss: input, target (*) any strides -> out (*) = (input - target)^2
void mse_loss(const TensorView& input, const TensorView& target, const TensorView& out) {
  const char* op = "mse_loss";
  check_elementwise_loss_args(op, input, {&target, &out});
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    StridedLoop<3> L({&input, &target, &out});
    EMBER_LOSS_ISA(mse_run<T>(L, input.ptr<T>(), target.ptr<T>(), out.ptr<T>()));
  });
}

// grad (*) any strides (stride 0 for a reduced loss), scale (1/numel for 'mean')
//   -> grad_input (*) = 2 scale grad (input - target); grad_target is its negative.
void mse_loss_backward(const TensorView& input, const TensorView& target, const TensorView& grad, double scale,
                       const TensorView& grad_input) {
  const char* op = "mse_loss_backward";
  check_elementwise_loss_args(op, input, {&target, &grad, &grad_input});
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    StridedLoop<4> L({&input, &target, &grad, &grad_input});
    EMBER_LOSS_ISA(mse_backward_run<T>(L, input.ptr<T>(), target.ptr<T>(), grad.ptr<T>(), static_cast<T>(2 * scale),
                                       grad_input.ptr<T>()));
  });
}

// ---- binary_cross_entropy_with_logits: input, target, weight, pos_weight (*) (the last
// two broadcast by the caller, stride 0), any strides -> out (*):
//   w [(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)]   (stable for any x)
void binary_cross_entropy_with_logits(const TensorView& input, const TensorView& target, const TensorView& weight,
                                      const TensorView& pos_weight, const TensorView& out) {
  const char* op = "binary_cross_entropy_with_logits";
  check_elementwise_loss_args(op, input, {&target, &weight, &pos_weight, &out});
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    StridedLoop<5> L({&input, &target, &weight, &pos_weight, &out});
    EMBER_LOSS_ISA(bce_run<T>(L, input.ptr<T>(), target.ptr<T>(), weight.ptr<T>(), pos_weight.ptr<T>(), out.ptr<T>()));
  });
}

// grad (*) any strides, scale (1/numel for 'mean') -> grad_input (*), and grad_target (*)
// when not null: see loss_loops.h for the formulas.
void binary_cross_entropy_with_logits_backward(const TensorView& input, const TensorView& target,
                                               const TensorView& weight, const TensorView& pos_weight,
                                               const TensorView& grad, double scale, const TensorView& grad_input,
                                               const TensorView* grad_target) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  check_elementwise_loss_args(op, input, {&target, &weight, &pos_weight, &grad, &grad_input});
  if (grad_target) check_elementwise_loss_args(op, input, {grad_target});
  const TensorView& gt = grad_target ? *grad_target : grad_input;  // a placeholder layout when absent
  EMBER_DISPATCH_FLOAT(input.dtype, op, {
    StridedLoop<7> L({&input, &target, &weight, &pos_weight, &grad, &grad_input, &gt});
    EMBER_LOSS_ISA(bce_backward_run<T>(L, input.ptr<T>(), target.ptr<T>(), weight.ptr<T>(), pos_weight.ptr<T>(),
                                       grad.ptr<T>(), static_cast<T>(scale), grad_input.ptr<T>(),
                                       grad_target ? grad_target->ptr<T>() : nullptr));
  });
}

}  // namespace ember::cpu
