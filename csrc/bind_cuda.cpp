// ember._cuda: the CUDA backend. Same function names and arguments as ember._C, over
// CuPy arrays (anything with __cuda_array_interface__). Built only where nvcc exists.
#include <pybind11/pybind11.h>
#include "bind_common.h"
#include "bind_nn.h"
#include "cuda/runtime.h"
#include "cuda/stream.h"
#include "ops.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

namespace ember {
// Kernels queue on CuPy's current stream (thread-local in CuPy, and here).
void set_current_stream_from_cupy() {
  // Leaked on purpose: a static py::object would be destroyed after the interpreter.
  static py::object* get_stream = new py::object(py::module_::import("cupy.cuda").attr("get_current_stream"));
  cuda::set_current_stream(reinterpret_cast<cudaStream_t>(py::cast<uintptr_t>((*get_stream)().attr("ptr"))));
}
}  // namespace ember

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "ember CUDA kernels";
  register_exceptions(m);

  // ---- runtime: device queries never raise for a missing driver or device ----
  m.def("device_count", &cuda::device_count, "Number of usable CUDA devices (0 without a driver or device).");
  m.def("device_count_error", &cuda::device_count_error,
        "Why device_count() is 0: the CUDA runtime's message, or '' when devices exist.");
  m.def("get_device_name", &cuda::device_name, py::arg("device") = 0);
  m.def("synchronize", &cuda::synchronize);
  m.def("runtime_version", &cuda::runtime_version);

  // ---- elementwise, reductions, gemm (the same names as ember._C) ----
  EMBER_DEF_CORE_OPS(CudaViews, m, cuda);

  // ---- neural-network op families (shared with ember._C, see bind_nn.h) ----
  EMBER_DEF_NORM_OPS(CudaViews, m, cuda);
  EMBER_DEF_DROPOUT_OPS(CudaViews, m, cuda);
  EMBER_DEF_ACTIVATION_OPS(CudaViews, m, cuda);
  EMBER_DEF_LOSS_OPS(CudaViews, m, cuda);
  EMBER_DEF_OPTIM_OPS(CudaViews, m, cuda);
}
