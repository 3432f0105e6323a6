// Optimizer update kernels: one in-place pass over each parameter and its state.
//   param, grad, momentum_buf / exp_avg / exp_avg_sq / max_exp_avg_sq: (*shape) T, contiguous
// The formulas are torch.optim's single-tensor (non-foreach, non-fused) ones, so a
// model trained with ember's SGD/Adam/AdamW follows PyTorch's trajectory.
// The *_multi ops run the same loops over a list of parameters in one parallel region
// over all their elements: a model's many small tensors (biases, norms) share one
// fork/join instead of paying one each.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include "../nn_checks.h"
#include "../ops.h"
#include "../optim_checks.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {

// One non-empty tensor of a multi-tensor step, with what differs between tensors.
template <class T>
struct SgdSlot {
  T* p;
  const T* g;
  T* buf;  // nullptr without momentum
  bool first;
};
template <class T>
struct AdamSlot {
  T* p;
  const T* g;
  T* m;
  T* v;
  T* vmax;  // nullptr without amsgrad
  T bc2_sqrt, step_size;
};

#define EMBER_ISA_LOOPS "optim_loops.h"
#include "isa_instantiate.h"

namespace {

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

template <class T, bool WD, bool MOM, bool NEST, bool MAX>
void sgd_multi_isa(const SgdSlot<T>* s, const int64_t* off, int64_t count, T lr, T mom, T damp1, T wd) {
  switch (isa()) {
    case Isa::avx512: isa_avx512::sgd_multi_loop<T, WD, MOM, NEST, MAX>(s, off, count, lr, mom, damp1, wd); break;
    case Isa::avx2: isa_avx2::sgd_multi_loop<T, WD, MOM, NEST, MAX>(s, off, count, lr, mom, damp1, wd); break;
    default: isa_scalar::sgd_multi_loop<T, WD, MOM, NEST, MAX>(s, off, count, lr, mom, damp1, wd);
  }
}

// flags: weight_decay != 0, momentum != 0, nesterov, maximize.
template <class T, bool... Flags>
void sgd_multi_pick(const SgdSlot<T>* s, const int64_t* off, int64_t count, T lr, T mom, T damp1, T wd,
                    const bool* flags) {
  if constexpr (sizeof...(Flags) == 4) {
    sgd_multi_isa<T, Flags...>(s, off, count, lr, mom, damp1, wd);
  } else {
    if (flags[sizeof...(Flags)]) sgd_multi_pick<T, Flags..., true>(s, off, count, lr, mom, damp1, wd, flags);
    else sgd_multi_pick<T, Flags..., false>(s, off, count, lr, mom, damp1, wd, flags);
  }
}

}  // namespace

void sgd_step(const TensorView& param, const TensorView& grad, const TensorView& momentum_buf, double lr,
              double momentum, double dampening, bool nesterov, double weight_decay, bool first_step) {
  const char* op = "sgd_step";
  check_sgd_args(param, grad, momentum_buf, lr, momentum, dampening, nesterov, weight_decay);
  const bool mom = momentum != 0;
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
  const char* op = check_adam_args(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                                   weight_decay, amsgrad, decoupled_weight_decay);
  const AdamScalars k = adam_scalars(step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
  EMBER_DISPATCH_FLOAT(param.dtype, op, {
    T* vmax = amsgrad ? max_exp_avg_sq.ptr<T>() : nullptr;
    auto run = [&](auto ams) {
      constexpr bool A = decltype(ams)::value;
      const int64_t n = param.numel();
      T* p = param.ptr<T>();
      const T* g = grad.ptr<T>();
      T* m = exp_avg.ptr<T>();
      T* v = exp_avg_sq.ptr<T>();
      const T args[8] = {static_cast<T>(k.decay), static_cast<T>(k.l2), static_cast<T>(k.one_minus_beta1),
                         static_cast<T>(k.beta2), static_cast<T>(k.one_minus_beta2),
                         static_cast<T>(k.bias_correction2_sqrt), static_cast<T>(k.eps), static_cast<T>(k.step_size)};
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

void sgd_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                    const std::vector<TensorView>& momentum_bufs, double lr, double momentum, double dampening,
                    bool nesterov, double weight_decay, const std::vector<bool>& first_steps, bool maximize) {
  const char* op = "sgd_step_multi";
  check_sgd_multi_args(params, grads, momentum_bufs, lr, momentum, dampening, nesterov, weight_decay, first_steps);
  if (params.empty()) return;
  const bool mom = momentum != 0;
  const bool flags[4] = {weight_decay != 0, mom, nesterov, maximize};
  EMBER_DISPATCH_FLOAT(params[0].dtype, op, {
    std::vector<SgdSlot<T>> slots;
    std::vector<int64_t> offsets{0};  // offsets[t]: flat index of slot t's first element
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t n = params[i].numel();
      if (n == 0) continue;
      slots.push_back({params[i].ptr<T>(), grads[i].ptr<T>(), mom ? momentum_bufs[i].ptr<T>() : nullptr,
                       bool(first_steps[i])});
      offsets.push_back(offsets.back() + n);
    }
    sgd_multi_pick<T>(slots.data(), offsets.data(), static_cast<int64_t>(slots.size()), static_cast<T>(lr),
                      static_cast<T>(momentum), static_cast<T>(1.0 - dampening), static_cast<T>(weight_decay),
                      flags);
  });
}

void adam_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                     const std::vector<TensorView>& exp_avgs, const std::vector<TensorView>& exp_avg_sqs,
                     const std::vector<TensorView>& max_exp_avg_sqs, const std::vector<int64_t>& steps, double lr,
                     double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                     bool decoupled_weight_decay, bool maximize) {
  const char* op = check_adam_multi_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1,
                                         beta2, eps, weight_decay, amsgrad, decoupled_weight_decay);
  if (params.empty()) return;
  EMBER_DISPATCH_FLOAT(params[0].dtype, op, {
    std::vector<AdamSlot<T>> slots;
    std::vector<int64_t> offsets{0};
    for (size_t i = 0; i < params.size(); ++i) {
      const int64_t n = params[i].numel();
      if (n == 0) continue;
      const AdamScalars k = adam_scalars(steps[i], lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
      slots.push_back({params[i].ptr<T>(), grads[i].ptr<T>(), exp_avgs[i].ptr<T>(), exp_avg_sqs[i].ptr<T>(),
                       amsgrad ? max_exp_avg_sqs[i].ptr<T>() : nullptr, static_cast<T>(k.bias_correction2_sqrt),
                       static_cast<T>(k.step_size)});
      offsets.push_back(offsets.back() + n);
    }
    // The step-independent scalars, the same for every tensor.
    const AdamScalars k = adam_scalars(1, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
    const auto count = static_cast<int64_t>(slots.size());
    auto run = [&](auto ams, auto max) {
      constexpr bool A = decltype(ams)::value, X = decltype(max)::value;
      const T args[6] = {static_cast<T>(k.decay), static_cast<T>(k.l2), static_cast<T>(k.one_minus_beta1),
                         static_cast<T>(k.beta2), static_cast<T>(k.one_minus_beta2), static_cast<T>(k.eps)};
      switch (isa()) {
        case Isa::avx512: isa_avx512::adam_multi_loop<T, A, X>(slots.data(), offsets.data(), count, args[0], args[1], args[2], args[3], args[4], args[5]); break;
        case Isa::avx2: isa_avx2::adam_multi_loop<T, A, X>(slots.data(), offsets.data(), count, args[0], args[1], args[2], args[3], args[4], args[5]); break;
        default: isa_scalar::adam_multi_loop<T, A, X>(slots.data(), offsets.data(), count, args[0], args[1], args[2], args[3], args[4], args[5]);
      }
    };
    auto with_max = [&](auto ams) {
      if (maximize) run(ams, std::true_type{});
      else run(ams, std::false_type{});
    };
    if (amsgrad) with_max(std::true_type{});
    else with_max(std::false_type{});
  });
}

}  // namespace ember::cpu
