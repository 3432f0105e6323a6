// ember._C: the CPU backend. Every function takes NumPy arrays (outputs included,
// allocated by Python), checks them, releases the GIL and runs a kernel from csrc/cpu/.
// bind_cuda.cpp exposes the same names over CuPy arrays.
#include <omp.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "cpu/dispatch.h"
#include "ops.h"
#include "bind_common.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

namespace {

TensorView in(py::handle h, const char* name) { return view_cpu(h, name, false); }
TensorView out(py::handle h, const char* name) { return view_cpu(h, name, true); }
void def_binary(py::module_& m, const char* name, BinaryFn fn) { ember::def_binary<CpuViews>(m, name, fn); }
void def_unary(py::module_& m, const char* name, UnaryFn fn) { ember::def_unary<CpuViews>(m, name, fn); }

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
  m.attr("cuda_build") = EMBER_CUDA_BUILD;  // "built", "disabled" (EMBER_CUDA=OFF) or "no-nvcc"
  m.def("set_cpu_isa", [](const std::string& s) { cpu::set_isa(parse_isa(s)); }, py::arg("isa"),
        "Force a SIMD path ('scalar', 'avx2', 'avx512'); refuses one the CPU lacks.");

  // ---- elementwise, reductions, gemm (shared with ember._cuda, see bind_common.h) ----
  EMBER_DEF_CORE_OPS(CpuViews, m, cpu);

  // ---- conv2d ----

  // ---- pooling ----

  // ---- batch norm ----

  // ---- dropout ----

  // ---- activations and softmax ----

  // ---- losses ----

  // ---- optimizer updates ----
}
