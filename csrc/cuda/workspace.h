// A reusable device scratch buffer per purpose: grows, never shrinks, freed at exit.
// Kernels use it for intermediate results Python never sees (reduction partials).
#pragma once
#include <cstddef>

namespace ember::cuda {

// Returns at least `bytes` of device memory for `slot` (0..3); valid until the next
// call with the same slot. Not thread-safe: kernels run from one host thread at a time.
void* workspace(int slot, size_t bytes);

}  // namespace ember::cuda
