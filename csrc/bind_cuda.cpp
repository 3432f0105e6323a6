// ember._cuda: the CUDA backend. Same function names and arguments as ember._C, over
// CuPy arrays (anything with __cuda_array_interface__). Built only where nvcc exists.
#include <pybind11/pybind11.h>
#include "cuda/runtime.h"
#include "pyview.h"

namespace py = pybind11;
using namespace ember;

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
}
