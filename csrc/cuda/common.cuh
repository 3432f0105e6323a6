// Shared by the CUDA kernels: error checks after every runtime call and launch, the
// stream kernels run on (CuPy's current stream, set by the bindings), launch sizes.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <stdexcept>
#include <string>
#include "../check.h"
#include "stream.h"

#define EMBER_CUDA_CHECK(call)                                                                   \
  do {                                                                                           \
    cudaError_t err_ = (call);                                                                   \
    if (err_ != cudaSuccess)                                                                     \
      throw std::runtime_error(std::string(#call) + " failed: " + cudaGetErrorString(err_));     \
  } while (0)

// After a launch: a bad configuration shows up in cudaGetLastError.
#define EMBER_CUDA_LAUNCH_CHECK(op)                                                              \
  do {                                                                                           \
    cudaError_t err_ = cudaGetLastError();                                                       \
    if (err_ != cudaSuccess)                                                                     \
      throw std::runtime_error(std::string(op) + ": kernel launch failed: " + cudaGetErrorString(err_)); \
  } while (0)

namespace ember::cuda {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU, no more.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  const int64_t cap = 132 * 32;  // ~32 blocks per SM on an H100/H200 (132 SMs)
  return static_cast<unsigned>(b < 1 ? 1 : (b > cap ? cap : b));
}

}  // namespace ember::cuda
