// The CUDA stream ember's kernels run on: CuPy's current stream, captured by the
// bindings with the GIL held before each call (thread-local, like CuPy's).
#pragma once
#include <cuda_runtime.h>

namespace ember::cuda {

cudaStream_t current_stream();
void set_current_stream(cudaStream_t s);

}  // namespace ember::cuda
