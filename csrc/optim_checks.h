// Argument checks of the multi-tensor optimizer steps (sgd_step_multi, adam_step_multi),
// shared by both backends. Every failure names the list and the index it found:
//   "adam_step_multi: exp_avg_sq[3] has shape (4,), params[3] has shape (5,)".
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include "check.h"
#include "nn_checks.h"

namespace ember {

// One list of a multi-tensor step: its name and its views (empty when the list is absent).
struct OptimList {
  const char* name;
  const std::vector<TensorView>* views;
  bool written;  // updated in place (params and state), or only read (grads)
};

// params: (*shape_i) float32 or float64, all one dtype, contiguous. Each other list has
// one entry per param with that param's shape and dtype, contiguous.
inline void check_optim_lists(const char* op, const std::vector<TensorView>& params,
                              const std::vector<OptimList>& lists) {
  for (size_t i = 0; i < params.size(); ++i) {
    const TensorView& p = params[i];
    EMBER_CHECK(present(p), op, ": params[", i, "] is missing (None)");
    EMBER_CHECK_TYPE(p.dtype == DType::f32 || p.dtype == DType::f64, op, ": params[", i,
                     "] must be float32 or float64, got ", dtype_name(p.dtype));
    EMBER_CHECK_TYPE(p.dtype == params[0].dtype, op, ": params[", i, "] is ", dtype_name(p.dtype),
                     " but params[0] is ", dtype_name(params[0].dtype), " (one call takes one dtype)");
    EMBER_CHECK(p.is_contiguous(), op, ": params[", i, "] must be contiguous (call .contiguous())");
  }
  for (const OptimList& l : lists) {
    EMBER_CHECK(!l.views->empty() || params.empty(), op, ": ", l.name, " is required (one per param), got None");
    EMBER_CHECK(l.views->size() == params.size(), op, ": ", l.name, " has ", l.views->size(), " entries, params has ",
                params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const TensorView& p = params[i];
      const TensorView& t = (*l.views)[i];
      EMBER_CHECK(present(t), op, ": ", l.name, "[", i, "] is missing (None)");
      bool same = t.ndim == p.ndim;
      for (int d = 0; same && d < p.ndim; ++d) same = t.shape[d] == p.shape[d];
      EMBER_CHECK(same, op, ": ", l.name, "[", i, "] has shape ", t.shape_str(), ", params[", i, "] has shape ",
                  p.shape_str());
      EMBER_CHECK_TYPE(t.dtype == p.dtype, op, ": ", l.name, "[", i, "] is ", dtype_name(t.dtype), ", params[", i,
                       "] is ", dtype_name(p.dtype));
      EMBER_CHECK(t.is_contiguous(), op, ": ", l.name, "[", i, "] must be contiguous (call .contiguous())");
    }
  }
}

// No tensor that the step writes may share memory with any other tensor of the call
// (param with its own state, two params, a grad with a param...): the update would read
// values it has already overwritten, in an order that depends on the threads.
inline void check_optim_no_overlap(const char* op, const std::vector<TensorView>& params,
                                   const std::vector<OptimList>& lists) {
  struct Range {
    uintptr_t begin, end;
    const char* name;
    size_t index;
    bool written;
  };
  std::vector<Range> ranges;
  auto add = [&](const std::vector<TensorView>& views, const char* name, bool written) {
    for (size_t i = 0; i < views.size(); ++i) {
      const int64_t bytes = views[i].numel() * dtype_size(views[i].dtype);
      if (bytes == 0) continue;
      const auto b = reinterpret_cast<uintptr_t>(views[i].data);
      ranges.push_back({b, b + static_cast<uintptr_t>(bytes), name, i, written});
    }
  };
  add(params, "params", true);
  for (const OptimList& l : lists) add(*l.views, l.name, l.written);
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  // Sweep in address order, keeping the range reaching furthest among all earlier ones
  // and among the earlier written ones: an overlap with any earlier range shows there.
  const Range* far_any = nullptr;
  const Range* far_written = nullptr;
  for (const Range& r : ranges) {
    const Range* hit = r.written ? far_any : far_written;
    EMBER_CHECK(!hit || hit->end <= r.begin, op, ": ", r.name, "[", r.index, "] overlaps ", hit->name, "[",
                hit->index, "] in memory (each parameter and state tensor needs its own storage)");
    if (!far_any || r.end > far_any->end) far_any = &r;
    if (r.written && (!far_written || r.end > far_written->end)) far_written = &r;
  }
}

inline void check_optim_scalar(const char* op, const char* name, double v, bool ok, const char* what) {
  EMBER_CHECK(std::isfinite(v), op, ": ", name, " must be finite, got ", v);
  EMBER_CHECK(ok, op, ": invalid ", what, ": ", v);
}

// momentum_bufs: ignored when momentum == 0, else one per param.
inline void check_sgd_multi_args(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                                 const std::vector<TensorView>& momentum_bufs, double lr, double momentum,
                                 double dampening, bool nesterov, double weight_decay,
                                 const std::vector<bool>& first_steps) {
  const char* op = "sgd_step_multi";
  check_optim_scalar(op, "lr", lr, lr >= 0, "learning rate");
  check_optim_scalar(op, "momentum", momentum, momentum >= 0, "momentum value");
  check_optim_scalar(op, "dampening", dampening, true, "dampening value");
  check_optim_scalar(op, "weight_decay", weight_decay, weight_decay >= 0, "weight_decay value");
  EMBER_CHECK(!nesterov || (momentum > 0 && dampening == 0), op,
              ": Nesterov momentum requires a momentum and zero dampening");
  EMBER_CHECK(first_steps.size() == params.size(), op, ": first_steps has ", first_steps.size(),
              " entries, params has ", params.size());
  std::vector<OptimList> lists{{"grads", &grads, false}};
  if (momentum != 0) lists.push_back({"momentum_bufs", &momentum_bufs, true});
  check_optim_lists(op, params, lists);
  check_optim_no_overlap(op, params, lists);
}

// max_exp_avg_sqs: ignored unless amsgrad. steps[i] counts this update of params[i] (>= 1).
// Returns the op's name: "adamw_step_multi" with decoupled weight decay, else "adam_step_multi".
inline const char* check_adam_multi_args(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                                         const std::vector<TensorView>& exp_avgs,
                                         const std::vector<TensorView>& exp_avg_sqs,
                                         const std::vector<TensorView>& max_exp_avg_sqs,
                                         const std::vector<int64_t>& steps, double lr, double beta1, double beta2,
                                         double eps, double weight_decay, bool amsgrad, bool decoupled_weight_decay) {
  const char* op = decoupled_weight_decay ? "adamw_step_multi" : "adam_step_multi";
  check_optim_scalar(op, "lr", lr, lr >= 0, "learning rate");
  check_optim_scalar(op, "eps", eps, eps >= 0, "epsilon value");
  check_optim_scalar(op, "beta1", beta1, beta1 >= 0 && beta1 < 1, "beta parameter at index 0");
  check_optim_scalar(op, "beta2", beta2, beta2 >= 0 && beta2 < 1, "beta parameter at index 1");
  check_optim_scalar(op, "weight_decay", weight_decay, weight_decay >= 0, "weight_decay value");
  EMBER_CHECK(steps.size() == params.size(), op, ": steps has ", steps.size(), " entries, params has ",
              params.size());
  for (size_t i = 0; i < steps.size(); ++i)
    EMBER_CHECK(steps[i] >= 1, op, ": steps[", i, "] must be >= 1 (the count including this update), got ",
                steps[i]);
  std::vector<OptimList> lists{{"grads", &grads, false}, {"exp_avgs", &exp_avgs, true},
                               {"exp_avg_sqs", &exp_avg_sqs, true}};
  if (amsgrad) lists.push_back({"max_exp_avg_sqs", &max_exp_avg_sqs, true});
  check_optim_lists(op, params, lists);
  check_optim_no_overlap(op, params, lists);
  return op;
}

}  // namespace ember
