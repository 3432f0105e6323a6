// Optimizer update kernels: one in-place pass over each parameter and its state.
//   param, grad, momentum_buf / exp_avg / exp_avg_sq / max_exp_avg_sq: (*shape) T, contiguous
// The formulas are torch.optim's single-tensor (non-foreach, non-fused) ones, so a
// model trained with ember's SGD/Adam/AdamW follows PyTorch's trajectory.
#include <cmath>
#include <type_traits>
#include "../check.h"
#include "../ops.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "optim_loops.h"
#include "isa_instantiate.h"

namespace {

bool present(const TensorView& t) { return t.data != nullptr || t.ndim > 0; }

void check_state(const TensorView& param, const TensorView& t, const char* op, const char* name) {
  check_same_shape(param, t, op);
  EMBER_CHECK_TYPE(t.dtype == param.dtype, op, ": ", name, " must have the parameter's dtype ",
                   dtype_name(param.dtype), ", got ", dtype_name(t.dtype));
  check_contiguous(t, op, name);
}

void check_finite(double v, const char* op, const char* name) {
  EMBER_CHECK(std::isfinite(v), op, ": ", name, " must be finite, got ", v);
}

template <class T, bool WD, bool MOM, bool NEST, bool FIRST>
void sgd_isa(T* p, const T* g, T* b, int64_t n, T lr, T mom, T damp1, T wd) {
  switch (isa()) {
    case Isa::avx512: isa_avx512::sgd_loop<T, WD, MOM, NEST, FIRST>(p, g, b, n, lr, mom, damp1, wd); break;
    case Isa::avx2: isa_avx2::sgd_loop<T, WD, MOM, NEST, FIRST>(p, g, b, n, lr, mom, damp1, wd); break;
    default: isa_scalar::sgd_loop<T, WD, MOM, NEST, FIRST>(p, g, b, n, lr, mom, damp1, wd);
  }
}

// Booleans -> template arguments, one at a time.
template <class T, bool... Flags>
void sgd_pick(T* p, const T* g, T* b, int64_t n, T lr, T mom, T damp1, T wd, const bool* flags) {
  if constexpr (sizeof...(Flags) == 4) {
    sgd_isa<T, Flags...>(p, g, b, n, lr, mom, damp1, wd);
  } else {
    if (flags[sizeof...(Flags)]) sgd_pick<T, Flags..., true>(p, g, b, n, lr, mom, damp1, wd, flags);
    else sgd_pick<T, Flags..., false>(p, g, b, n, lr, mom, damp1, wd, flags);
  }
}

}  // namespace

void sgd_step(const TensorView& param, const TensorView& grad, const TensorView& momentum_buf, double lr,
              double momentum, double dampening, bool nesterov, double weight_decay, bool first_step) {
  const char* op = "sgd_step";
  check_float(param, op, "param");
  check_contiguous(param, op, "param");
  check_state(param, grad, op, "grad");
  check_finite(lr, op, "lr");
  check_finite(momentum, op, "momentum");
  check_finite(dampening, op, "dampening");
  check_finite(weight_decay, op, "weight_decay");
  EMBER_CHECK(lr >= 0, op, ": invalid learning rate: ", lr);
  EMBER_CHECK(momentum >= 0, op, ": invalid momentum value: ", momentum);
  EMBER_CHECK(weight_decay >= 0, op, ": invalid weight_decay value: ", weight_decay);
  EMBER_CHECK(!nesterov || (momentum > 0 && dampening == 0), op,
              ": Nesterov momentum requires a momentum and zero dampening");
  const bool mom = momentum != 0;
  if (mom) {
    EMBER_CHECK(present(momentum_buf), op, ": momentum_buf is required when momentum != 0");
    check_state(param, momentum_buf, op, "momentum_buf");
  }
  const bool flags[4] = {weight_decay != 0, mom, nesterov, first_step};
  EMBER_DISPATCH_FLOAT(param.dtype, op, {
    T* b = mom ? momentum_buf.ptr<T>() : nullptr;
    sgd_pick<T>(param.ptr<T>(), grad.ptr<T>(), b, param.numel(), static_cast<T>(lr), static_cast<T>(momentum),
                static_cast<T>(1.0 - dampening), static_cast<T>(weight_decay), flags);
  });
}

void adam_step(const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
               const TensorView& exp_avg_sq, const TensorView& max_exp_avg_sq, int64_t step, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
               bool decoupled_weight_decay) {
  const char* op = decoupled_weight_decay ? "adamw_step" : "adam_step";
  check_float(param, op, "param");
  check_contiguous(param, op, "param");
  check_state(param, grad, op, "grad");
  check_state(param, exp_avg, op, "exp_avg");
  check_state(param, exp_avg_sq, op, "exp_avg_sq");
  if (amsgrad) {
    EMBER_CHECK(present(max_exp_avg_sq), op, ": max_exp_avg_sq is required when amsgrad=True");
    check_state(param, max_exp_avg_sq, op, "max_exp_avg_sq");
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
  // Scalars as torch computes them: in double on the host, then applied in T.
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  const double decay = decoupled_weight_decay ? 1.0 - lr * weight_decay : 1.0;
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  EMBER_DISPATCH_FLOAT(param.dtype, op, {
    T* vmax = amsgrad ? max_exp_avg_sq.ptr<T>() : nullptr;
    auto run = [&](auto ams) {
      constexpr bool A = decltype(ams)::value;
      const int64_t n = param.numel();
      T* p = param.ptr<T>();
      const T* g = grad.ptr<T>();
      T* m = exp_avg.ptr<T>();
      T* v = exp_avg_sq.ptr<T>();
      const T args[8] = {static_cast<T>(decay), static_cast<T>(l2), static_cast<T>(1.0 - beta1),
                         static_cast<T>(beta2), static_cast<T>(1.0 - beta2), static_cast<T>(bc2_sqrt),
                         static_cast<T>(eps), static_cast<T>(step_size)};
      switch (isa()) {
        case Isa::avx512: isa_avx512::adam_loop<T, A>(p, g, m, v, vmax, n, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]); break;
        case Isa::avx2: isa_avx2::adam_loop<T, A>(p, g, m, v, vmax, n, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]); break;
        default: isa_scalar::adam_loop<T, A>(p, g, m, v, vmax, n, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]);
      }
    };
    if (amsgrad) run(std::true_type{});
    else run(std::false_type{});
  });
}

}  // namespace ember::cpu
