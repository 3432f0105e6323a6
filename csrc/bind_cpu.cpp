// ember._C: the CPU backend. Every function takes NumPy arrays (outputs included,
// allocated by Python), checks them, releases the GIL and runs a kernel from csrc/cpu/.
// bind_cuda.cpp exposes the same names over CuPy arrays.
#include <omp.h>
#include <cstdlib>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <vector>
#include "cpu/dispatch.h"
#include "ops.h"
#include "bind_common.h"
#include "bind_nn.h"
#include "philox.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

namespace {

cpu::Isa parse_isa(const std::string& s) {
  if (s == "scalar") return cpu::Isa::scalar;
  if (s == "avx2") return cpu::Isa::avx2;
  if (s == "avx512") return cpu::Isa::avx512;
  throw std::invalid_argument("unknown CPU path '" + s + "' (expected 'scalar', 'avx2' or 'avx512')");
}

// Training allocates and frees the same large activations every step. glibc serves
// blocks above its mmap threshold with fresh mmaps, so each step page-faults (and the
// kernel zeroes) every activation again: ~5,000 faults per LeNet step at batch 256.
// Keeping large blocks in the heap makes steady-state steps fault-free; freed memory
// then stays with the process. EMBER_KEEP_MALLOC=1 leaves glibc's defaults alone.
void tune_malloc() {
#ifdef __GLIBC__
  const char* keep = std::getenv("EMBER_KEEP_MALLOC");
  if (keep && *keep && *keep != '0') return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ember CPU kernels";
  register_exceptions(m);
  tune_malloc();

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

  // ---- neural-network op families (shared with ember._cuda, see bind_nn.h) ----
  EMBER_DEF_CONV_OPS(CpuViews, m, cpu);
  EMBER_DEF_POOL_OPS(CpuViews, m, cpu);
  EMBER_DEF_NORM_OPS(CpuViews, m, cpu);
  EMBER_DEF_DROPOUT_OPS(CpuViews, m, cpu);
  EMBER_DEF_ACTIVATION_OPS(CpuViews, m, cpu);
  EMBER_DEF_LOSS_OPS(CpuViews, m, cpu);
  EMBER_DEF_OPTIM_OPS(CpuViews, m, cpu);

  m.def("philox4x32_10", [](std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
    auto b = philox::philox4x32_10(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
    return std::array<uint32_t, 4>{b.v[0], b.v[1], b.v[2], b.v[3]};
  }, py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (csrc/philox.h), for known-answer tests.");
}
