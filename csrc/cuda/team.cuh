// Row reductions for softmax-like kernels (activation.cu, loss.cu): a "team" of threads
// owns one row at a time and all-reduces over it.
//   ThreadTeam: one thread per row (rows along a strided dim: neighbours read neighbours);
//   WarpTeam:   one warp per row, warp-shuffle reductions (rows up to kWarpRowMax);
//   BlockTeam:  one block per row, shuffles within warps, then across warps in shared memory.
// Every thread of a team loops over the same rows, so shuffles and __syncthreads are
// reached by the whole warp / block.
#pragma once
#include <cmath>
#include <cstdint>
#include "common.cuh"

namespace ember::cuda {

constexpr int64_t kWarpRowMax = 1024;

// max that never picks a NaN (as the CPU's x > m ? x : m); a NaN row still ends NaN
// through exp(NaN - max) in the sum.
template <class T>
__device__ __forceinline__ T max_keep(T m, T x) { return x > m ? x : m; }
struct MaxOp { template <class T> __device__ T operator()(T a, T b) const { return max_keep(a, b); } };
struct SumOp { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };

__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return ::exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return ::log(x); }

template <class T, class Op>
__device__ __forceinline__ T warp_all_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

struct ThreadTeam {
  __device__ int64_t first_row() const { return blockIdx.x * int64_t(blockDim.x) + threadIdx.x; }
  __device__ int64_t row_step() const { return int64_t(gridDim.x) * blockDim.x; }
  __device__ int lane() const { return 0; }
  __device__ int size() const { return 1; }
  template <class T, class Op> __device__ T all_reduce(T v, Op) const { return v; }
};

// Blocks of kThreads: kThreads / 32 warps each.
struct WarpTeam {
  __device__ int64_t first_row() const { return (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; }
  __device__ int64_t row_step() const { return (int64_t(gridDim.x) * blockDim.x) >> 5; }
  __device__ int lane() const { return threadIdx.x & 31; }
  __device__ int size() const { return 32; }
  template <class T, class Op> __device__ T all_reduce(T v, Op op) const { return warp_all_reduce(v, op); }
};

struct BlockTeam {
  __device__ int64_t first_row() const { return blockIdx.x; }
  __device__ int64_t row_step() const { return gridDim.x; }
  __device__ int lane() const { return threadIdx.x; }
  __device__ int size() const { return blockDim.x; }
  // blockDim.x a multiple of 32, at most 1024. The trailing barrier lets the next call
  // reuse the shared slots.
  template <class T, class Op> __device__ T all_reduce(T v, Op op) const {
    __shared__ T partial[32];
    v = warp_all_reduce(v, op);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = partial[0];
    for (int w = 1; w < nwarps; ++w) v = op(v, partial[w]);
    __syncthreads();
    return v;
  }
};

// Calls launch(team, blocks) with the team for `rows` rows of C elements: ThreadTeam
// when `strided_rows` (a row's elements are far apart, neighbouring rows adjacent), else
// WarpTeam, or BlockTeam for rows longer than kWarpRowMax. Blocks have kThreads threads.
template <class Launch>
void launch_teams(int64_t rows, int64_t C, bool strided_rows, Launch launch) {
  if (strided_rows) launch(ThreadTeam{}, blocks_for(rows));
  else if (C <= kWarpRowMax) launch(WarpTeam{}, blocks_for(rows * 32));
  else launch(BlockTeam{}, blocks_for(rows * kThreads));
}

}  // namespace ember::cuda
