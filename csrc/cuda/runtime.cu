// Device queries. Every CUDA call is checked; a failure throws std::runtime_error with
// the call and the runtime's message, which pybind11 raises as RuntimeError.
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>
#include "runtime.h"

#define EMBER_CUDA_CHECK(call)                                                                 \
  do {                                                                                         \
    cudaError_t err_ = (call);                                                                 \
    if (err_ != cudaSuccess)                                                                   \
      throw std::runtime_error(std::string(#call) + " failed: " + cudaGetErrorString(err_));   \
  } while (0)

namespace ember::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error; no driver or no device means zero devices
    return 0;
  }
  return n;
}

std::string device_count_error() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err == cudaSuccess) return n > 0 ? "" : "no CUDA device found";
  cudaGetLastError();
  return cudaGetErrorString(err);
}

std::string device_name(int device) {
  int n = device_count();
  if (device < 0 || device >= n)
    throw std::out_of_range("get_device_name: device " + std::to_string(device) + " out of range (" +
                            std::to_string(n) + " devices)");
  cudaDeviceProp prop;
  EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

void synchronize() { EMBER_CUDA_CHECK(cudaDeviceSynchronize()); }

int runtime_version() {
  int v = 0;
  EMBER_CUDA_CHECK(cudaRuntimeGetVersion(&v));
  return v;
}

}  // namespace ember::cuda
