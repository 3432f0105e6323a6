// Bindings of the neural-network op families, shared by ember._C and ember._cuda: each
// def_*_ops<V> takes one backend's kernels (EMBER_DEF_*_OPS(V, m, cpu) passes the
// ember::cpu ones), so both modules expose the same names and arguments.
// Optional operands: None becomes an empty TensorView (the kernels' "absent") or nullptr.
#pragma once
#include <array>
#include <string>
#include <vector>
#include "bind_common.h"
#include "ops.h"

namespace ember {

template <class V>
TensorView opt_in(py::handle h, const char* name) { return h.is_none() ? TensorView{} : V::in(h, name); }
template <class V>
TensorView opt_out(py::handle h, const char* name) { return h.is_none() ? TensorView{} : V::out(h, name); }
// None -> nullptr, else a pointer to `v`, filled in.
template <class V>
const TensorView* opt_ptr(py::handle h, const char* name, TensorView& v) {
  if (h.is_none()) return nullptr;
  v = V::in(h, name);
  return &v;
}

// ---- conv2d ----
// geometry: (stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w, groups)
inline ConvGeometry conv_geometry(const std::vector<int64_t>& v) {
  if (v.size() != 9) throw std::invalid_argument("conv2d: geometry must have 9 entries, got " + std::to_string(v.size()));
  ConvGeometry g;
  g.stride_h = v[0], g.stride_w = v[1], g.pad_top = v[2], g.pad_bottom = v[3], g.pad_left = v[4];
  g.pad_right = v[5], g.dil_h = v[6], g.dil_w = v[7], g.groups = v[8];
  return g;
}
using ConvForwardFn = void (*)(const TensorView&, const TensorView&, const TensorView*, const TensorView&,
                               const ConvGeometry&);
using ConvBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const ConvGeometry&);
using ConvBackwardBiasFn = void (*)(const TensorView&, const TensorView&);

template <class V>
void def_conv_ops(py::module_& m, ConvForwardFn forward, ConvBackwardFn backward_data, ConvBackwardFn backward_weight,
                  ConvBackwardBiasFn backward_bias) {
  m.def("conv2d_forward", [forward](py::handle x, py::handle w, py::handle b, py::handle o, std::vector<int64_t> geo) {
    TensorView vb;
    auto vx = V::in(x, "x"), vw = V::in(w, "weight"), vo = V::out(o, "out");
    const TensorView* pb = opt_ptr<V>(b, "bias", vb);
    auto g = conv_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    forward(vx, vw, pb, vo, g);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("geometry"));
  m.def("conv2d_backward_data", [backward_data](py::handle dy, py::handle w, py::handle dx, std::vector<int64_t> geo) {
    auto vdy = V::in(dy, "grad_out"), vw = V::in(w, "weight"), vdx = V::out(dx, "grad_x");
    auto g = conv_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    backward_data(vdy, vw, vdx, g);
  }, py::arg("grad_out"), py::arg("weight"), py::arg("grad_x"), py::arg("geometry"));
  m.def("conv2d_backward_weight", [backward_weight](py::handle x, py::handle dy, py::handle dw,
                                                    std::vector<int64_t> geo) {
    auto vx = V::in(x, "x"), vdy = V::in(dy, "grad_out"), vdw = V::out(dw, "grad_weight");
    auto g = conv_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    backward_weight(vx, vdy, vdw, g);
  }, py::arg("x"), py::arg("grad_out"), py::arg("grad_weight"), py::arg("geometry"));
  m.def("conv2d_backward_bias", [backward_bias](py::handle dy, py::handle db) {
    auto vdy = V::in(dy, "grad_out"), vdb = V::out(db, "grad_bias");
    V::prepare();
    py::gil_scoped_release nogil;
    backward_bias(vdy, vdb);
  }, py::arg("grad_out"), py::arg("grad_bias"));
}
#define EMBER_DEF_CONV_OPS(V, m, ns)                                                                     \
  ::ember::def_conv_ops<V>(m, ns::conv2d_forward, ns::conv2d_backward_data, ns::conv2d_backward_weight, \
                           ns::conv2d_backward_bias)

// ---- pooling ----
// geometry: (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, ceil_mode)
inline PoolGeometry pool_geometry(const std::vector<int64_t>& v) {
  if (v.size() != 9) throw std::invalid_argument("pool2d: geometry must have 9 entries, got " + std::to_string(v.size()));
  PoolGeometry g;
  g.kernel_h = v[0], g.kernel_w = v[1], g.stride_h = v[2], g.stride_w = v[3], g.pad_h = v[4], g.pad_w = v[5];
  g.dil_h = v[6], g.dil_w = v[7], g.ceil_mode = v[8] != 0;
  return g;
}
using MaxPoolForwardFn = void (*)(const TensorView&, const TensorView&, const TensorView*, const PoolGeometry&);
using MaxPoolBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&);
using AvgPoolFn = void (*)(const TensorView&, const TensorView&, const PoolGeometry&, bool, int64_t);

template <class V>
void def_pool_ops(py::module_& m, MaxPoolForwardFn max_forward, MaxPoolBackwardFn max_backward, AvgPoolFn avg_forward,
                  AvgPoolFn avg_backward, UnaryFn adaptive_forward, UnaryFn adaptive_backward) {
  m.def("max_pool2d_forward", [max_forward](py::handle x, py::handle o, py::handle idx, std::vector<int64_t> geo) {
    TensorView vi;
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    if (!idx.is_none()) vi = V::out(idx, "indices");
    auto g = pool_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    max_forward(vx, vo, idx.is_none() ? nullptr : &vi, g);
  }, py::arg("x"), py::arg("out"), py::arg("indices"), py::arg("geometry"));
  m.def("max_pool2d_backward", [max_backward](py::handle dy, py::handle idx, py::handle dx) {
    auto vdy = V::in(dy, "grad_out"), vi = V::in(idx, "indices"), vdx = V::out(dx, "grad_x");
    V::prepare();
    py::gil_scoped_release nogil;
    max_backward(vdy, vi, vdx);
  }, py::arg("grad_out"), py::arg("indices"), py::arg("grad_x"));
  m.def("avg_pool2d_forward", [avg_forward](py::handle x, py::handle o, std::vector<int64_t> geo, bool cip,
                                            int64_t divisor_override) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    auto g = pool_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    avg_forward(vx, vo, g, cip, divisor_override);
  }, py::arg("x"), py::arg("out"), py::arg("geometry"), py::arg("count_include_pad"), py::arg("divisor_override") = 0);
  m.def("avg_pool2d_backward", [avg_backward](py::handle dy, py::handle dx, std::vector<int64_t> geo, bool cip,
                                              int64_t divisor_override) {
    auto vdy = V::in(dy, "grad_out"), vdx = V::out(dx, "grad_x");
    auto g = pool_geometry(geo);
    V::prepare();
    py::gil_scoped_release nogil;
    avg_backward(vdy, vdx, g, cip, divisor_override);
  }, py::arg("grad_out"), py::arg("grad_x"), py::arg("geometry"), py::arg("count_include_pad"),
     py::arg("divisor_override") = 0);
  def_unary<V>(m, "adaptive_avg_pool2d_forward", adaptive_forward);
  m.def("adaptive_avg_pool2d_backward", [adaptive_backward](py::handle dy, py::handle dx) {
    auto vdy = V::in(dy, "grad_out"), vdx = V::out(dx, "grad_x");
    V::prepare();
    py::gil_scoped_release nogil;
    adaptive_backward(vdy, vdx);
  }, py::arg("grad_out"), py::arg("grad_x"));
}
#define EMBER_DEF_POOL_OPS(V, m, ns)                                                                          \
  ::ember::def_pool_ops<V>(m, ns::max_pool2d_forward, ns::max_pool2d_backward, ns::avg_pool2d_forward,      \
                           ns::avg_pool2d_backward, ns::adaptive_avg_pool2d_forward,                        \
                           ns::adaptive_avg_pool2d_backward)

// ---- batch norm ----
using BatchNormForwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                                    const TensorView&, const TensorView&, const TensorView&, const TensorView&, bool,
                                    double, double);
using BatchNormBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                                     const TensorView&, bool, const TensorView&, const TensorView&,
                                     const TensorView&);

template <class V>
void def_norm_ops(py::module_& m, BatchNormForwardFn forward, BatchNormBackwardFn backward) {
  m.def("batch_norm_forward", [forward](py::handle x, py::handle weight, py::handle bias, py::handle running_mean,
                                        py::handle running_var, py::handle o, py::handle save_mean,
                                        py::handle save_invstd, bool training, double momentum, double eps) {
    auto vx = V::in(x, "input"), vw = opt_in<V>(weight, "weight"), vb = opt_in<V>(bias, "bias");
    auto vrm = opt_out<V>(running_mean, "running_mean"), vrv = opt_out<V>(running_var, "running_var");
    auto vo = V::out(o, "out"), vsm = V::out(save_mean, "save_mean"), vsi = V::out(save_invstd, "save_invstd");
    V::prepare();
    py::gil_scoped_release nogil;
    forward(vx, vw, vb, vrm, vrv, vo, vsm, vsi, training, momentum, eps);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
     py::arg("out"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"), py::arg("momentum"),
     py::arg("eps"));
  m.def("batch_norm_backward", [backward](py::handle grad_out, py::handle x, py::handle save_mean,
                                          py::handle save_invstd, py::handle weight, bool training,
                                          py::handle grad_input, py::handle grad_weight, py::handle grad_bias) {
    auto vg = V::in(grad_out, "grad_output"), vx = V::in(x, "input"), vsm = V::in(save_mean, "save_mean");
    auto vsi = V::in(save_invstd, "save_invstd"), vw = opt_in<V>(weight, "weight");
    auto vgi = opt_out<V>(grad_input, "grad_input"), vgw = opt_out<V>(grad_weight, "grad_weight");
    auto vgb = opt_out<V>(grad_bias, "grad_bias");
    V::prepare();
    py::gil_scoped_release nogil;
    backward(vg, vx, vsm, vsi, vw, training, vgi, vgw, vgb);
  }, py::arg("grad_output"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("weight"),
     py::arg("training"), py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"));
}
#define EMBER_DEF_NORM_OPS(V, m, ns) ::ember::def_norm_ops<V>(m, ns::batch_norm_forward, ns::batch_norm_backward)

// ---- dropout ----
using DropoutForwardFn = void (*)(const TensorView&, double, uint64_t, uint64_t, const TensorView&,
                                  const TensorView&);
using DropoutBackwardFn = void (*)(const TensorView&, const TensorView&, double, const TensorView&);

template <class V>
void def_dropout_ops(py::module_& m, DropoutForwardFn forward, DropoutBackwardFn backward) {
  m.def("dropout_forward", [forward](py::handle x, double p, uint64_t seed, uint64_t offset, py::handle o,
                                     py::handle mask) {
    auto vx = V::in(x, "input"), vo = V::out(o, "out"), vm = opt_out<V>(mask, "mask");
    V::prepare();
    py::gil_scoped_release nogil;
    forward(vx, p, seed, offset, vo, vm);
  }, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("offset"), py::arg("out"), py::arg("mask"));
  m.def("dropout_backward", [backward](py::handle g, py::handle mask, double p, py::handle gi) {
    auto vg = V::in(g, "grad"), vm = V::in(mask, "mask"), vgi = V::out(gi, "grad_input");
    V::prepare();
    py::gil_scoped_release nogil;
    backward(vg, vm, p, vgi);
  }, py::arg("grad"), py::arg("mask"), py::arg("p"), py::arg("grad_input"));
}
#define EMBER_DEF_DROPOUT_OPS(V, m, ns) ::ember::def_dropout_ops<V>(m, ns::dropout_forward, ns::dropout_backward)

// ---- activations and softmax ----
using ScalarUnaryFn = void (*)(const TensorView&, double, const TensorView&);
using ScalarBackwardFn = void (*)(const TensorView&, const TensorView&, double, const TensorView&);
using GeluFn = void (*)(const TensorView&, bool, const TensorView&);
using GeluBackwardFn = void (*)(const TensorView&, const TensorView&, bool, const TensorView&);
using DimFn = void (*)(const TensorView&, int64_t, const TensorView&);
using DimBackwardFn = void (*)(const TensorView&, const TensorView&, int64_t, const TensorView&);

// name(grad, saved, grad_input): `saved` is the tensor the backward needs ("output" or "input")
template <class V>
void def_activation_backward(py::module_& m, const char* name, BinaryFn fn, const char* saved) {
  m.def(name, [fn, saved](py::handle g, py::handle y, py::handle gx) {
    auto vg = V::in(g, "grad"), vy = V::in(y, saved), vgx = V::out(gx, "grad_input");
    V::prepare();
    py::gil_scoped_release nogil;
    fn(vg, vy, vgx);
  }, py::arg("grad"), py::arg(saved), py::arg("grad_input"));
}

template <class V>
void def_activation_ops(py::module_& m, UnaryFn relu, BinaryFn relu_backward, ScalarUnaryFn leaky_relu,
                        ScalarBackwardFn leaky_relu_backward, UnaryFn sigmoid, BinaryFn sigmoid_backward, UnaryFn tanh,
                        BinaryFn tanh_backward, GeluFn gelu, GeluBackwardFn gelu_backward, DimFn softmax,
                        DimFn log_softmax, DimBackwardFn softmax_backward, DimBackwardFn log_softmax_backward) {
  def_unary<V>(m, "relu", relu);
  def_unary<V>(m, "sigmoid", sigmoid);
  def_unary<V>(m, "tanh", tanh);
  def_activation_backward<V>(m, "relu_backward", relu_backward, "output");
  def_activation_backward<V>(m, "sigmoid_backward", sigmoid_backward, "output");
  def_activation_backward<V>(m, "tanh_backward", tanh_backward, "output");
  m.def("leaky_relu", [leaky_relu](py::handle x, double slope, py::handle o) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    leaky_relu(vx, slope, vo);
  }, py::arg("x"), py::arg("negative_slope"), py::arg("out"));
  m.def("leaky_relu_backward", [leaky_relu_backward](py::handle g, py::handle x, double slope, py::handle gx) {
    auto vg = V::in(g, "grad"), vx = V::in(x, "input"), vgx = V::out(gx, "grad_input");
    V::prepare();
    py::gil_scoped_release nogil;
    leaky_relu_backward(vg, vx, slope, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("negative_slope"), py::arg("grad_input"));
  m.def("gelu", [gelu](py::handle x, bool approximate_tanh, py::handle o) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    gelu(vx, approximate_tanh, vo);
  }, py::arg("x"), py::arg("approximate_tanh"), py::arg("out"));
  m.def("gelu_backward", [gelu_backward](py::handle g, py::handle x, bool approximate_tanh, py::handle gx) {
    auto vg = V::in(g, "grad"), vx = V::in(x, "input"), vgx = V::out(gx, "grad_input");
    V::prepare();
    py::gil_scoped_release nogil;
    gelu_backward(vg, vx, approximate_tanh, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("approximate_tanh"), py::arg("grad_input"));
  for (auto [name, fn] : {std::pair{"softmax", softmax}, std::pair{"log_softmax", log_softmax}}) {
    m.def(name, [fn = fn](py::handle x, int64_t dim, py::handle o) {
      auto vx = V::in(x, "x"), vo = V::out(o, "out");
      V::prepare();
      py::gil_scoped_release nogil;
      fn(vx, dim, vo);
    }, py::arg("x"), py::arg("dim"), py::arg("out"));
  }
  for (auto [name, fn] : {std::pair{"softmax_backward", softmax_backward},
                          std::pair{"log_softmax_backward", log_softmax_backward}}) {
    m.def(name, [fn = fn](py::handle g, py::handle y, int64_t dim, py::handle gx) {
      auto vg = V::in(g, "grad"), vy = V::in(y, "output"), vgx = V::out(gx, "grad_input");
      V::prepare();
      py::gil_scoped_release nogil;
      fn(vg, vy, dim, vgx);
    }, py::arg("grad"), py::arg("output"), py::arg("dim"), py::arg("grad_input"));
  }
}
#define EMBER_DEF_ACTIVATION_OPS(V, m, ns)                                                                    \
  ::ember::def_activation_ops<V>(m, ns::relu, ns::relu_backward, ns::leaky_relu, ns::leaky_relu_backward,  \
                                 ns::sigmoid, ns::sigmoid_backward, ns::tanh, ns::tanh_backward, ns::gelu, \
                                 ns::gelu_backward, ns::softmax, ns::log_softmax, ns::softmax_backward,    \
                                 ns::log_softmax_backward)

// ---- losses ----
using CrossEntropyFn = void (*)(const TensorView&, const TensorView&, const TensorView*, int64_t, double,
                                const TensorView&, const TensorView&, const TensorView&);
using CrossEntropyBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView*, const TensorView&,
                                        const TensorView&, int64_t, double, const TensorView&);
using CrossEntropyProbsFn = void (*)(const TensorView&, const TensorView&, const TensorView*, double,
                                     const TensorView&, const TensorView&);
using CrossEntropyProbsBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView*,
                                             const TensorView&, const TensorView&, double, const TensorView&,
                                             const TensorView*);
using NllLossFn = void (*)(const TensorView&, const TensorView&, const TensorView*, int64_t, const TensorView&,
                           const TensorView&);
using NllLossBackwardFn = void (*)(const TensorView&, const TensorView*, const TensorView&, int64_t,
                                   const TensorView&);
using MseBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&, double, const TensorView&);
using BceFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&, const TensorView&);
using BceBackwardFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                               const TensorView&, double, const TensorView&, const TensorView*);

template <class V>
void def_loss_ops(py::module_& m, CrossEntropyFn cross_entropy, CrossEntropyBackwardFn cross_entropy_backward,
                  CrossEntropyProbsFn cross_entropy_probs, CrossEntropyProbsBackwardFn cross_entropy_probs_backward,
                  NllLossFn nll_loss, NllLossBackwardFn nll_loss_backward, BinaryFn mse_loss,
                  MseBackwardFn mse_loss_backward, BceFn bce, BceBackwardFn bce_backward) {
  m.def("cross_entropy", [cross_entropy](py::handle x, py::handle t, py::handle w, int64_t ignore_index,
                                         double label_smoothing, py::handle loss, py::handle stats, py::handle wsum) {
    TensorView vw;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vl = V::out(loss, "loss"), vs = V::out(stats, "stats"),
         vws = V::out(wsum, "weight_sum");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    V::prepare();
    py::gil_scoped_release nogil;
    cross_entropy(vx, vt, pw, ignore_index, label_smoothing, vl, vs, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
     py::arg("loss"), py::arg("stats"), py::arg("weight_sum"));
  m.def("cross_entropy_backward", [cross_entropy_backward](py::handle x, py::handle t, py::handle w, py::handle stats,
                                                           py::handle g, int64_t ignore_index, double label_smoothing,
                                                           py::handle gx) {
    TensorView vw;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vs = V::in(stats, "stats"), vg = V::in(g, "grad"),
         vgx = V::out(gx, "grad_input");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    V::prepare();
    py::gil_scoped_release nogil;
    cross_entropy_backward(vx, vt, pw, vs, vg, ignore_index, label_smoothing, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("stats"), py::arg("grad"),
     py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("grad_input"));
  m.def("cross_entropy_probs", [cross_entropy_probs](py::handle x, py::handle t, py::handle w,
                                                     double label_smoothing, py::handle loss, py::handle stats) {
    TensorView vw;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vl = V::out(loss, "loss"), vs = V::out(stats, "stats");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    V::prepare();
    py::gil_scoped_release nogil;
    cross_entropy_probs(vx, vt, pw, label_smoothing, vl, vs);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("label_smoothing"), py::arg("loss"),
     py::arg("stats"));
  m.def("cross_entropy_probs_backward", [cross_entropy_probs_backward](py::handle x, py::handle t, py::handle w,
                                                                       py::handle stats, py::handle g,
                                                                       double label_smoothing, py::handle gx,
                                                                       py::handle gt) {
    TensorView vw, vgt;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vs = V::in(stats, "stats"), vg = V::in(g, "grad"),
         vgx = V::out(gx, "grad_input");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    if (!gt.is_none()) vgt = V::out(gt, "grad_target");
    V::prepare();
    py::gil_scoped_release nogil;
    cross_entropy_probs_backward(vx, vt, pw, vs, vg, label_smoothing, vgx, gt.is_none() ? nullptr : &vgt);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("stats"), py::arg("grad"),
     py::arg("label_smoothing"), py::arg("grad_input"), py::arg("grad_target"));
  m.def("nll_loss", [nll_loss](py::handle x, py::handle t, py::handle w, int64_t ignore_index, py::handle loss,
                               py::handle wsum) {
    TensorView vw;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vl = V::out(loss, "loss"), vws = V::out(wsum, "weight_sum");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    V::prepare();
    py::gil_scoped_release nogil;
    nll_loss(vx, vt, pw, ignore_index, vl, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("loss"),
     py::arg("weight_sum"));
  m.def("nll_loss_backward", [nll_loss_backward](py::handle t, py::handle w, py::handle g, int64_t ignore_index,
                                                 py::handle gx) {
    TensorView vw;
    auto vt = V::in(t, "target"), vg = V::in(g, "grad"), vgx = V::out(gx, "grad_input");
    const TensorView* pw = opt_ptr<V>(w, "weight", vw);
    V::prepare();
    py::gil_scoped_release nogil;
    nll_loss_backward(vt, pw, vg, ignore_index, vgx);
  }, py::arg("target"), py::arg("weight"), py::arg("grad"), py::arg("ignore_index"), py::arg("grad_input"));
  m.def("mse_loss", [mse_loss](py::handle x, py::handle t, py::handle o) {
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    mse_loss(vx, vt, vo);
  }, py::arg("input"), py::arg("target"), py::arg("out"));
  m.def("mse_loss_backward", [mse_loss_backward](py::handle x, py::handle t, py::handle g, double scale,
                                                 py::handle gx) {
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vg = V::in(g, "grad"), vgx = V::out(gx, "grad_input");
    V::prepare();
    py::gil_scoped_release nogil;
    mse_loss_backward(vx, vt, vg, scale, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("grad"), py::arg("scale"), py::arg("grad_input"));
  m.def("binary_cross_entropy_with_logits", [bce](py::handle x, py::handle t, py::handle w, py::handle pw,
                                                  py::handle o) {
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vw = V::in(w, "weight"), vpw = V::in(pw, "pos_weight"),
         vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    bce(vx, vt, vw, vpw, vo);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("out"));
  m.def("binary_cross_entropy_with_logits_backward", [bce_backward](py::handle x, py::handle t, py::handle w,
                                                                    py::handle pw, py::handle g, double scale,
                                                                    py::handle gx, py::handle gt) {
    TensorView vgt;
    auto vx = V::in(x, "input"), vt = V::in(t, "target"), vw = V::in(w, "weight"), vpw = V::in(pw, "pos_weight"),
         vg = V::in(g, "grad"), vgx = V::out(gx, "grad_input");
    if (!gt.is_none()) vgt = V::out(gt, "grad_target");
    V::prepare();
    py::gil_scoped_release nogil;
    bce_backward(vx, vt, vw, vpw, vg, scale, vgx, gt.is_none() ? nullptr : &vgt);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("grad"),
     py::arg("scale"), py::arg("grad_input"), py::arg("grad_target"));
}
#define EMBER_DEF_LOSS_OPS(V, m, ns)                                                                         \
  ::ember::def_loss_ops<V>(m, ns::cross_entropy, ns::cross_entropy_backward, ns::cross_entropy_probs,      \
                           ns::cross_entropy_probs_backward, ns::nll_loss,                                 \
                           ns::nll_loss_backward, ns::mse_loss, ns::mse_loss_backward,                     \
                           ns::binary_cross_entropy_with_logits,                                           \
                           ns::binary_cross_entropy_with_logits_backward)

// ---- optimizer updates ----
using SgdStepFn = void (*)(const TensorView&, const TensorView&, const TensorView&, double, double, double, bool,
                           double, bool);
using AdamStepFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                            const TensorView&, int64_t, double, double, double, double, double, bool, bool);
using ViewList = std::vector<TensorView>;
using SgdStepMultiFn = void (*)(const ViewList&, const ViewList&, const ViewList&, double, double, double, bool, double,
                                const std::vector<bool>&, bool);
using AdamStepMultiFn = void (*)(const ViewList&, const ViewList&, const ViewList&, const ViewList&, const ViewList&,
                                 const std::vector<int64_t>&, double, double, double, double, double, bool, bool,
                                 bool);

// A list or tuple of arrays -> views named "name[i]" in errors. An entry None -> an empty
// view, and so is the whole list when `optional`: the kernels' checks say where a tensor
// is required.
template <class V>
ViewList view_list(py::handle seq, const char* name, bool writable, bool optional = false) {
  ViewList out;
  if (optional && seq.is_none()) return out;
  EMBER_CHECK_TYPE(py::isinstance<py::list>(seq) || py::isinstance<py::tuple>(seq), name,
                   ": expected a list of arrays, got ", std::string(py::str(py::type::of(seq))));
  auto items = py::reinterpret_borrow<py::sequence>(seq);
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item = str(name, "[", i, "]");
    py::object h = items[i];
    out.push_back(h.is_none() ? TensorView{} : writable ? V::out(h, item.c_str()) : V::in(h, item.c_str()));
  }
  return out;
}

template <class V>
void def_optim_ops(py::module_& m, SgdStepFn sgd_step, AdamStepFn adam_step, SgdStepMultiFn sgd_step_multi,
                   AdamStepMultiFn adam_step_multi) {
  m.def("sgd_step", [sgd_step](py::handle param, py::handle grad, py::handle buf, double lr, double momentum,
                               double dampening, bool nesterov, double weight_decay, bool first_step) {
    auto vp = V::out(param, "param"), vg = V::in(grad, "grad"), vb = opt_out<V>(buf, "momentum_buf");
    V::prepare();
    py::gil_scoped_release nogil;
    sgd_step(vp, vg, vb, lr, momentum, dampening, nesterov, weight_decay, first_step);
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("lr"), py::arg("momentum"),
     py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"));
  m.def("adam_step", [adam_step](py::handle param, py::handle grad, py::handle exp_avg, py::handle exp_avg_sq,
                                 py::handle max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2,
                                 double eps, double weight_decay, bool amsgrad, bool decoupled_weight_decay) {
    auto vp = V::out(param, "param"), vg = V::in(grad, "grad"), vm = V::out(exp_avg, "exp_avg");
    auto vv = V::out(exp_avg_sq, "exp_avg_sq"), vmax = opt_out<V>(max_exp_avg_sq, "max_exp_avg_sq");
    V::prepare();
    py::gil_scoped_release nogil;
    adam_step(vp, vg, vm, vv, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
     py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("decoupled_weight_decay"));
  m.def("sgd_step_multi", [sgd_step_multi](py::handle params, py::handle grads, py::handle bufs, double lr,
                                           double momentum, double dampening, bool nesterov, double weight_decay,
                                           std::vector<bool> first_steps, bool maximize) {
    auto vp = view_list<V>(params, "params", true), vg = view_list<V>(grads, "grads", false);
    auto vb = view_list<V>(bufs, "momentum_bufs", true, true);
    V::prepare();
    py::gil_scoped_release nogil;
    sgd_step_multi(vp, vg, vb, lr, momentum, dampening, nesterov, weight_decay, first_steps, maximize);
  }, py::arg("params"), py::arg("grads"), py::arg("momentum_bufs"), py::arg("lr"), py::arg("momentum"),
     py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_steps"), py::arg("maximize"));
  m.def("adam_step_multi", [adam_step_multi](py::handle params, py::handle grads, py::handle exp_avgs,
                                             py::handle exp_avg_sqs, py::handle max_exp_avg_sqs,
                                             std::vector<int64_t> steps, double lr, double beta1, double beta2,
                                             double eps, double weight_decay, bool amsgrad,
                                             bool decoupled_weight_decay, bool maximize) {
    auto vp = view_list<V>(params, "params", true), vg = view_list<V>(grads, "grads", false);
    auto vm = view_list<V>(exp_avgs, "exp_avgs", true), vv = view_list<V>(exp_avg_sqs, "exp_avg_sqs", true);
    auto vmax = view_list<V>(max_exp_avg_sqs, "max_exp_avg_sqs", true, true);
    V::prepare();
    py::gil_scoped_release nogil;
    adam_step_multi(vp, vg, vm, vv, vmax, steps, lr, beta1, beta2, eps, weight_decay, amsgrad,
                    decoupled_weight_decay, maximize);
  }, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"), py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"),
     py::arg("steps"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("decoupled_weight_decay"), py::arg("maximize"));
}
#define EMBER_DEF_OPTIM_OPS(V, m, ns) \
  ::ember::def_optim_ops<V>(m, ns::sgd_step, ns::adam_step, ns::sgd_step_multi, ns::adam_step_multi)

}  // namespace ember
