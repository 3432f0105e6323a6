// ember._C: the CPU backend. Every function takes NumPy arrays (outputs included,
// allocated by Python), checks them, releases the GIL and runs a kernel from csrc/cpu/.
// bind_cuda.cpp exposes the same names over CuPy arrays.
#include <omp.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "cpu/dispatch.h"
#include "ops.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

namespace {

TensorView in(py::handle h, const char* name) { return view_cpu(h, name, false); }
TensorView out(py::handle h, const char* name) { return view_cpu(h, name, true); }

using BinaryFn = void (*)(const TensorView&, const TensorView&, const TensorView&);
using UnaryFn = void (*)(const TensorView&, const TensorView&);
using ReduceFn = void (*)(const TensorView&, const int64_t*, int, const TensorView&);
using ArgReduceFn = void (*)(const TensorView&, int64_t, const TensorView&);

void def_binary(py::module_& m, const char* name, BinaryFn fn) {
  m.def(name, [fn](py::handle a, py::handle b, py::handle o) {
    auto va = in(a, "a"), vb = in(b, "b"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    fn(va, vb, vo);
  }, py::arg("a"), py::arg("b"), py::arg("out"));
}
void def_unary(py::module_& m, const char* name, UnaryFn fn) {
  m.def(name, [fn](py::handle a, py::handle o) {
    auto va = in(a, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    fn(va, vo);
  }, py::arg("x"), py::arg("out"));
}
void def_reduce(py::module_& m, const char* name, ReduceFn fn) {
  m.def(name, [fn](py::handle x, std::vector<int64_t> axes, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    fn(vx, axes.data(), static_cast<int>(axes.size()), vo);
  }, py::arg("x"), py::arg("axes"), py::arg("out"));
}
void def_arg_reduce(py::module_& m, const char* name, ArgReduceFn fn) {
  m.def(name, [fn](py::handle x, int64_t axis, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    fn(vx, axis, vo);
  }, py::arg("x"), py::arg("axis"), py::arg("out"));
}

cpu::Isa parse_isa(const std::string& s) {
  if (s == "scalar") return cpu::Isa::scalar;
  if (s == "avx2") return cpu::Isa::avx2;
  if (s == "avx512") return cpu::Isa::avx512;
  throw std::invalid_argument("unknown CPU path '" + s + "' (expected 'scalar', 'avx2' or 'avx512')");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ember CPU kernels";
  register_exceptions(m);

  // ---- runtime ----
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: expected a positive thread count, got " + std::to_string(n));
    omp_set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", [] { return omp_get_max_threads(); });
  m.def("cpu_isa", [] { return std::string(cpu::isa_name(cpu::isa())); }, "The SIMD path kernels use now.");
  m.def("best_cpu_isa", [] { return std::string(cpu::isa_name(cpu::best_isa())); });
  m.def("set_cpu_isa", [](const std::string& s) { cpu::set_isa(parse_isa(s)); }, py::arg("isa"),
        "Force a SIMD path ('scalar', 'avx2', 'avx512'); refuses one the CPU lacks.");

  // ---- elementwise ----
  def_binary(m, "add", cpu::add);
  def_binary(m, "sub", cpu::sub);
  def_binary(m, "mul", cpu::mul);
  def_binary(m, "div", cpu::div);
  def_binary(m, "maximum", cpu::maximum);
  def_binary(m, "minimum", cpu::minimum);
  def_binary(m, "pow", cpu::pow);
  def_binary(m, "eq", cpu::eq);
  def_binary(m, "ne", cpu::ne);
  def_binary(m, "lt", cpu::lt);
  def_binary(m, "le", cpu::le);
  def_binary(m, "gt", cpu::gt);
  def_binary(m, "ge", cpu::ge);
  def_unary(m, "neg", cpu::neg);
  def_unary(m, "abs", cpu::abs);
  def_unary(m, "exp", cpu::exp);
  def_unary(m, "log", cpu::log);
  def_unary(m, "sqrt", cpu::sqrt);
  def_unary(m, "copy", cpu::copy);
  m.def("pow_scalar", [](py::handle x, double p, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::pow_scalar(vx, p, vo);
  }, py::arg("x"), py::arg("p"), py::arg("out"));
  m.def("where", [](py::handle c, py::handle a, py::handle b, py::handle o) {
    auto vc = in(c, "condition"), va = in(a, "a"), vb = in(b, "b"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::where(vc, va, vb, vo);
  }, py::arg("condition"), py::arg("a"), py::arg("b"), py::arg("out"));

  // ---- reductions ----
  def_reduce(m, "sum", cpu::sum);
  def_reduce(m, "amax", cpu::amax);
  def_reduce(m, "amin", cpu::amin);
  def_arg_reduce(m, "argmax", cpu::argmax);
  def_arg_reduce(m, "argmin", cpu::argmin);

  // ---- gemm ----
  m.def("matmul", [](py::handle a, py::handle b, py::handle o, bool trans_a, bool trans_b, double alpha, double beta) {
    auto va = in(a, "a"), vb = in(b, "b"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::matmul(va, vb, vo, trans_a, trans_b, alpha, beta);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false, py::arg("trans_b") = false,
     py::arg("alpha") = 1.0, py::arg("beta") = 0.0);

  // ---- conv2d ----

  // ---- pooling ----

  // ---- batch norm ----

  // ---- dropout ----

  // ---- activations and softmax ----
  def_unary(m, "relu", cpu::relu);
  def_unary(m, "sigmoid", cpu::sigmoid);
  def_unary(m, "tanh", cpu::tanh);
  for (auto [name, fn] : {std::pair{"relu_backward", cpu::relu_backward},
                          std::pair{"sigmoid_backward", cpu::sigmoid_backward},
                          std::pair{"tanh_backward", cpu::tanh_backward}}) {
    m.def(name, [fn = fn](py::handle g, py::handle y, py::handle gx) {
      auto vg = in(g, "grad"), vy = in(y, "output"), vgx = out(gx, "grad_input");
      py::gil_scoped_release nogil;
      fn(vg, vy, vgx);
    }, py::arg("grad"), py::arg("output"), py::arg("grad_input"));
  }
  m.def("leaky_relu", [](py::handle x, double slope, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::leaky_relu(vx, slope, vo);
  }, py::arg("x"), py::arg("negative_slope"), py::arg("out"));
  m.def("leaky_relu_backward", [](py::handle g, py::handle x, double slope, py::handle gx) {
    auto vg = in(g, "grad"), vx = in(x, "input"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::leaky_relu_backward(vg, vx, slope, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("negative_slope"), py::arg("grad_input"));
  m.def("gelu", [](py::handle x, bool approximate_tanh, py::handle o) {
    auto vx = in(x, "x"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::gelu(vx, approximate_tanh, vo);
  }, py::arg("x"), py::arg("approximate_tanh"), py::arg("out"));
  m.def("gelu_backward", [](py::handle g, py::handle x, bool approximate_tanh, py::handle gx) {
    auto vg = in(g, "grad"), vx = in(x, "input"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::gelu_backward(vg, vx, approximate_tanh, vgx);
  }, py::arg("grad"), py::arg("input"), py::arg("approximate_tanh"), py::arg("grad_input"));
  for (auto [name, fn] : {std::pair{"softmax", cpu::softmax}, std::pair{"log_softmax", cpu::log_softmax}}) {
    m.def(name, [fn = fn](py::handle x, int64_t dim, py::handle o) {
      auto vx = in(x, "x"), vo = out(o, "out");
      py::gil_scoped_release nogil;
      fn(vx, dim, vo);
    }, py::arg("x"), py::arg("dim"), py::arg("out"));
  }
  for (auto [name, fn] : {std::pair{"softmax_backward", cpu::softmax_backward},
                          std::pair{"log_softmax_backward", cpu::log_softmax_backward}}) {
    m.def(name, [fn = fn](py::handle g, py::handle y, int64_t dim, py::handle gx) {
      auto vg = in(g, "grad"), vy = in(y, "output"), vgx = out(gx, "grad_input");
      py::gil_scoped_release nogil;
      fn(vg, vy, dim, vgx);
    }, py::arg("grad"), py::arg("output"), py::arg("dim"), py::arg("grad_input"));
  }

  // ---- losses ----
  // An optional tensor argument: None -> nullptr.
  auto opt_in = [](py::handle h, const char* name, TensorView& v) -> const TensorView* {
    if (h.is_none()) return nullptr;
    v = in(h, name);
    return &v;
  };
  m.def("cross_entropy", [opt_in](py::handle x, py::handle t, py::handle w, int64_t ignore_index,
                                  double label_smoothing, py::handle loss, py::handle stats, py::handle wsum) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vl = out(loss, "loss"), vs = out(stats, "stats"),
         vws = out(wsum, "weight_sum");
    const TensorView* pw = opt_in(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::cross_entropy(vx, vt, pw, ignore_index, label_smoothing, vl, vs, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
     py::arg("loss"), py::arg("stats"), py::arg("weight_sum"));
  m.def("cross_entropy_backward", [opt_in](py::handle x, py::handle t, py::handle w, py::handle stats, py::handle g,
                                           int64_t ignore_index, double label_smoothing, py::handle gx) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vs = in(stats, "stats"), vg = in(g, "grad"),
         vgx = out(gx, "grad_input");
    const TensorView* pw = opt_in(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::cross_entropy_backward(vx, vt, pw, vs, vg, ignore_index, label_smoothing, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("stats"), py::arg("grad"),
     py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("grad_input"));
  m.def("nll_loss", [opt_in](py::handle x, py::handle t, py::handle w, int64_t ignore_index, py::handle loss,
                             py::handle wsum) {
    TensorView vw;
    auto vx = in(x, "input"), vt = in(t, "target"), vl = out(loss, "loss"), vws = out(wsum, "weight_sum");
    const TensorView* pw = opt_in(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::nll_loss(vx, vt, pw, ignore_index, vl, vws);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("ignore_index"), py::arg("loss"),
     py::arg("weight_sum"));
  m.def("nll_loss_backward", [opt_in](py::handle t, py::handle w, py::handle g, int64_t ignore_index, py::handle gx) {
    TensorView vw;
    auto vt = in(t, "target"), vg = in(g, "grad"), vgx = out(gx, "grad_input");
    const TensorView* pw = opt_in(w, "weight", vw);
    py::gil_scoped_release nogil;
    cpu::nll_loss_backward(vt, pw, vg, ignore_index, vgx);
  }, py::arg("target"), py::arg("weight"), py::arg("grad"), py::arg("ignore_index"), py::arg("grad_input"));
  m.def("mse_loss", [](py::handle x, py::handle t, py::handle o) {
    auto vx = in(x, "input"), vt = in(t, "target"), vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::mse_loss(vx, vt, vo);
  }, py::arg("input"), py::arg("target"), py::arg("out"));
  m.def("mse_loss_backward", [](py::handle x, py::handle t, py::handle g, double scale, py::handle gx) {
    auto vx = in(x, "input"), vt = in(t, "target"), vg = in(g, "grad"), vgx = out(gx, "grad_input");
    py::gil_scoped_release nogil;
    cpu::mse_loss_backward(vx, vt, vg, scale, vgx);
  }, py::arg("input"), py::arg("target"), py::arg("grad"), py::arg("scale"), py::arg("grad_input"));
  m.def("binary_cross_entropy_with_logits", [](py::handle x, py::handle t, py::handle w, py::handle pw, py::handle o) {
    auto vx = in(x, "input"), vt = in(t, "target"), vw = in(w, "weight"), vpw = in(pw, "pos_weight"),
         vo = out(o, "out");
    py::gil_scoped_release nogil;
    cpu::binary_cross_entropy_with_logits(vx, vt, vw, vpw, vo);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("out"));
  m.def("binary_cross_entropy_with_logits_backward", [](py::handle x, py::handle t, py::handle w, py::handle pw,
                                                        py::handle g, double scale, py::handle gx, py::handle gt) {
    auto vx = in(x, "input"), vt = in(t, "target"), vw = in(w, "weight"), vpw = in(pw, "pos_weight"),
         vg = in(g, "grad"), vgx = out(gx, "grad_input");
    TensorView vgt;
    const TensorView* pgt = nullptr;
    if (!gt.is_none()) { vgt = out(gt, "grad_target"); pgt = &vgt; }
    py::gil_scoped_release nogil;
    cpu::binary_cross_entropy_with_logits_backward(vx, vt, vw, vpw, vg, scale, vgx, pgt);
  }, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"), py::arg("grad"),
     py::arg("scale"), py::arg("grad_input"), py::arg("grad_target"));

  // ---- optimizer updates ----
}
