// ember._C: the CPU backend. Every function takes NumPy arrays (outputs included,
// allocated by Python), checks them, releases the GIL and runs a kernel from csrc/cpu/.
// bind_cuda.cpp exposes the same names over CuPy arrays.
#include <omp.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "cpu/dispatch.h"
#include "ops.h"
#include "philox.h"
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
  // None for an optional operand becomes an empty view (the kernels' "absent").
  auto opt_in = [](py::handle h, const char* name) { return h.is_none() ? TensorView{} : in(h, name); };
  auto opt_out = [](py::handle h, const char* name) { return h.is_none() ? TensorView{} : out(h, name); };
  m.def("batch_norm_forward", [opt_in, opt_out](py::handle x, py::handle weight, py::handle bias, py::handle running_mean,
                                                py::handle running_var, py::handle o, py::handle save_mean,
                                                py::handle save_invstd, bool training, double momentum, double eps) {
    auto vx = in(x, "input"), vw = opt_in(weight, "weight"), vb = opt_in(bias, "bias");
    auto vrm = opt_out(running_mean, "running_mean"), vrv = opt_out(running_var, "running_var");
    auto vo = out(o, "out"), vsm = out(save_mean, "save_mean"), vsi = out(save_invstd, "save_invstd");
    py::gil_scoped_release nogil;
    cpu::batch_norm_forward(vx, vw, vb, vrm, vrv, vo, vsm, vsi, training, momentum, eps);
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
     py::arg("out"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"), py::arg("momentum"),
     py::arg("eps"));
  m.def("batch_norm_backward", [opt_in, opt_out](py::handle grad_out, py::handle x, py::handle save_mean,
                                                 py::handle save_invstd, py::handle weight, bool training,
                                                 py::handle grad_input, py::handle grad_weight, py::handle grad_bias) {
    auto vg = in(grad_out, "grad_output"), vx = in(x, "input"), vsm = in(save_mean, "save_mean");
    auto vsi = in(save_invstd, "save_invstd"), vw = opt_in(weight, "weight");
    auto vgi = opt_out(grad_input, "grad_input"), vgw = opt_out(grad_weight, "grad_weight");
    auto vgb = opt_out(grad_bias, "grad_bias");
    py::gil_scoped_release nogil;
    cpu::batch_norm_backward(vg, vx, vsm, vsi, vw, training, vgi, vgw, vgb);
  }, py::arg("grad_output"), py::arg("x"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("weight"),
     py::arg("training"), py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"));

  // ---- dropout ----
  m.def("dropout_forward", [opt_out](py::handle x, double p, uint64_t seed, uint64_t offset, py::handle o,
                                     py::handle mask) {
    auto vx = in(x, "input"), vo = out(o, "out"), vm = opt_out(mask, "mask");
    py::gil_scoped_release nogil;
    cpu::dropout_forward(vx, p, seed, offset, vo, vm);
  }, py::arg("x"), py::arg("p"), py::arg("seed"), py::arg("offset"), py::arg("out"), py::arg("mask"));
  m.def("dropout_backward", [](py::handle g, py::handle mask, double p, py::handle gi) {
    auto vg = in(g, "grad"), vm = in(mask, "mask"), vgi = out(gi, "grad_input");
    py::gil_scoped_release nogil;
    cpu::dropout_backward(vg, vm, p, vgi);
  }, py::arg("grad"), py::arg("mask"), py::arg("p"), py::arg("grad_input"));
  m.def("philox4x32_10", [](std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
    auto b = philox::philox4x32_10(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
    return std::array<uint32_t, 4>{b.v[0], b.v[1], b.v[2], b.v[3]};
  }, py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (csrc/philox.h), for known-answer tests.");

  // ---- activations and softmax ----

  // ---- losses ----

  // ---- optimizer updates ----
  m.def("sgd_step", [opt_out](py::handle param, py::handle grad, py::handle buf, double lr, double momentum,
                              double dampening, bool nesterov, double weight_decay, bool first_step) {
    auto vp = out(param, "param"), vg = in(grad, "grad"), vb = opt_out(buf, "momentum_buf");
    py::gil_scoped_release nogil;
    cpu::sgd_step(vp, vg, vb, lr, momentum, dampening, nesterov, weight_decay, first_step);
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("lr"), py::arg("momentum"),
     py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"));
  m.def("adam_step", [opt_out](py::handle param, py::handle grad, py::handle exp_avg, py::handle exp_avg_sq,
                               py::handle max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2,
                               double eps, double weight_decay, bool amsgrad, bool decoupled_weight_decay) {
    auto vp = out(param, "param"), vg = in(grad, "grad"), vm = out(exp_avg, "exp_avg");
    auto vv = out(exp_avg_sq, "exp_avg_sq"), vmax = opt_out(max_exp_avg_sq, "max_exp_avg_sq");
    py::gil_scoped_release nogil;
    cpu::adam_step(vp, vg, vm, vv, vmax, step, lr, beta1, beta2, eps, weight_decay, amsgrad, decoupled_weight_decay);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("max_exp_avg_sq"),
     py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
     py::arg("amsgrad"), py::arg("decoupled_weight_decay"));
}
