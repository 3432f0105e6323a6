// Device queries. Every CUDA call is checked; a failure throws std::runtime_error with
// the call and the runtime's message, which pybind11 raises as RuntimeError.
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>
#include "common.cuh"
#include "runtime.h"
#include "workspace.h"

namespace ember::cuda {

static thread_local cudaStream_t g_stream = nullptr;
cudaStream_t current_stream() { return g_stream; }
void set_current_stream(cudaStream_t s) { g_stream = s; }

void* workspace(int slot, size_t bytes) {
  struct Buffer {
    void* ptr = nullptr;
    size_t size = 0;
  };
  static Buffer buffers[4];
  EMBER_CHECK(slot >= 0 && slot < 4, "workspace: bad slot ", slot);
  Buffer& b = buffers[slot];
  if (b.size < bytes) {
    // The old buffer may still be read by queued kernels: wait for them before freeing.
    if (b.ptr) {
      EMBER_CUDA_CHECK(cudaStreamSynchronize(g_stream));
      EMBER_CUDA_CHECK(cudaFree(b.ptr));
      b.ptr = nullptr;
      b.size = 0;
    }
    EMBER_CUDA_CHECK(cudaMalloc(&b.ptr, bytes));
    b.size = bytes;
  }
  return b.ptr;
}

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
