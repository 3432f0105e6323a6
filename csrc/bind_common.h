// Binding helpers shared by ember._C (bind_cpu.cpp) and ember._cuda (bind_cuda.cpp).
// `Views` turns Python arrays into TensorViews: CpuViews for NumPy, CudaViews for CuPy.
// Every binding builds its views with the GIL held, then releases it for the kernel.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "pyview.h"

namespace ember {
namespace py = pybind11;

// `prepare()` runs with the GIL held just before a kernel: CUDA picks up CuPy's current
// stream there (cuda/stream.h), so ember kernels queue behind the user's CuPy work.
struct CpuViews {
  static TensorView in(py::handle h, const char* name) { return view_cpu(h, name, false); }
  static TensorView out(py::handle h, const char* name) { return view_cpu(h, name, true); }
  static void prepare() {}
};
void set_current_stream_from_cupy();  // defined in bind_cuda.cpp
struct CudaViews {
  static TensorView in(py::handle h, const char* name) { return view_cuda(h, name, false); }
  static TensorView out(py::handle h, const char* name) { return view_cuda(h, name, true); }
  static void prepare() { set_current_stream_from_cupy(); }
};

using BinaryFn = void (*)(const TensorView&, const TensorView&, const TensorView&);
using UnaryFn = void (*)(const TensorView&, const TensorView&);
using ReduceFn = void (*)(const TensorView&, const int64_t*, int, const TensorView&);
using ArgReduceFn = void (*)(const TensorView&, int64_t, const TensorView&);
using PowScalarFn = void (*)(const TensorView&, double, const TensorView&);
using WhereFn = void (*)(const TensorView&, const TensorView&, const TensorView&, const TensorView&);
using MatmulFn = void (*)(const TensorView&, const TensorView&, const TensorView&, bool, bool, double, double);

template <class V>
void def_binary(py::module_& m, const char* name, BinaryFn fn) {
  m.def(name, [fn](py::handle a, py::handle b, py::handle o) {
    auto va = V::in(a, "a"), vb = V::in(b, "b"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    fn(va, vb, vo);
  }, py::arg("a"), py::arg("b"), py::arg("out"));
}

template <class V>
void def_unary(py::module_& m, const char* name, UnaryFn fn) {
  m.def(name, [fn](py::handle a, py::handle o) {
    auto va = V::in(a, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    fn(va, vo);
  }, py::arg("x"), py::arg("out"));
}

template <class V>
void def_reduce(py::module_& m, const char* name, ReduceFn fn) {
  m.def(name, [fn](py::handle x, std::vector<int64_t> axes, py::handle o) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    fn(vx, axes.data(), static_cast<int>(axes.size()), vo);
  }, py::arg("x"), py::arg("axes"), py::arg("out"));
}

template <class V>
void def_arg_reduce(py::module_& m, const char* name, ArgReduceFn fn) {
  m.def(name, [fn](py::handle x, int64_t axis, py::handle o) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    fn(vx, axis, vo);
  }, py::arg("x"), py::arg("axis"), py::arg("out"));
}

// The elementwise, reduction and matmul ops, bound under the same names in both modules.
template <class V>
void def_core_ops(py::module_& m, BinaryFn add, BinaryFn sub, BinaryFn mul, BinaryFn div, BinaryFn maximum,
                  BinaryFn minimum, BinaryFn pow, BinaryFn eq, BinaryFn ne, BinaryFn lt, BinaryFn le, BinaryFn gt,
                  BinaryFn ge, UnaryFn neg, UnaryFn abs, UnaryFn exp, UnaryFn log, UnaryFn sqrt, UnaryFn copy,
                  PowScalarFn pow_scalar, WhereFn where, ReduceFn sum, ReduceFn amax, ReduceFn amin,
                  ArgReduceFn argmax, ArgReduceFn argmin, MatmulFn matmul) {
  def_binary<V>(m, "add", add);
  def_binary<V>(m, "sub", sub);
  def_binary<V>(m, "mul", mul);
  def_binary<V>(m, "div", div);
  def_binary<V>(m, "maximum", maximum);
  def_binary<V>(m, "minimum", minimum);
  def_binary<V>(m, "pow", pow);
  def_binary<V>(m, "eq", eq);
  def_binary<V>(m, "ne", ne);
  def_binary<V>(m, "lt", lt);
  def_binary<V>(m, "le", le);
  def_binary<V>(m, "gt", gt);
  def_binary<V>(m, "ge", ge);
  def_unary<V>(m, "neg", neg);
  def_unary<V>(m, "abs", abs);
  def_unary<V>(m, "exp", exp);
  def_unary<V>(m, "log", log);
  def_unary<V>(m, "sqrt", sqrt);
  def_unary<V>(m, "copy", copy);
  m.def("pow_scalar", [pow_scalar](py::handle x, double p, py::handle o) {
    auto vx = V::in(x, "x"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    pow_scalar(vx, p, vo);
  }, py::arg("x"), py::arg("p"), py::arg("out"));
  m.def("where", [where](py::handle c, py::handle a, py::handle b, py::handle o) {
    auto vc = V::in(c, "condition"), va = V::in(a, "a"), vb = V::in(b, "b"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    where(vc, va, vb, vo);
  }, py::arg("condition"), py::arg("a"), py::arg("b"), py::arg("out"));
  def_reduce<V>(m, "sum", sum);
  def_reduce<V>(m, "amax", amax);
  def_reduce<V>(m, "amin", amin);
  def_arg_reduce<V>(m, "argmax", argmax);
  def_arg_reduce<V>(m, "argmin", argmin);
  m.def("matmul", [matmul](py::handle a, py::handle b, py::handle o, bool trans_a, bool trans_b, double alpha,
                           double beta) {
    auto va = V::in(a, "a"), vb = V::in(b, "b"), vo = V::out(o, "out");
    V::prepare();
    py::gil_scoped_release nogil;
    matmul(va, vb, vo, trans_a, trans_b, alpha, beta);
  }, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false, py::arg("trans_b") = false,
     py::arg("alpha") = 1.0, py::arg("beta") = 0.0);
}

// def_core_ops with every op taken from one backend namespace (cpu or cuda).
#define EMBER_DEF_CORE_OPS(V, m, ns)                                                               \
  ::ember::def_core_ops<V>(m, ns::add, ns::sub, ns::mul, ns::div, ns::maximum, ns::minimum, ns::pow, \
                           ns::eq, ns::ne, ns::lt, ns::le, ns::gt, ns::ge, ns::neg, ns::abs, ns::exp, \
                           ns::log, ns::sqrt, ns::copy, ns::pow_scalar, ns::where, ns::sum, ns::amax, \
                           ns::amin, ns::argmax, ns::argmin, ns::matmul)

}  // namespace ember
