// Batch normalization on the GPU, forward next to backward: the contract of cpu/norm.cpp.
// x (N,C,S) contiguous, S = product of the spatial dims; channel c is N rows of S
// contiguous elements, row n starting at (n*C + c)*S; M = N*S values per channel.
//
// Launches per call (one more, bn_merge, where a channel is split over several blocks):
//   training forward:  bn_sums (statistics, finalized by the block that owns the channel:
//                      mean, invstd, running stats, the affine map) + bn_elementwise (y)
//   eval forward:      bn_elementwise alone (the affine map from the running stats per pack)
//   training backward: bn_sums (sum dy, sum dy*(x - mean) -> dbias, dweight, the dx
//                      coefficients) + bn_elementwise (dx)
//   eval backward:     bn_elementwise (dx = w*invstd*dy), plus bn_sums for dweight / dbias
//
// Statistics: one pass over x accumulates, in double, the shifted sums sum(x - K) and
// sum((x - K)^2), K = the channel's first element; then mean = K + s1/M and
// var = s2/M - (s1/M)^2. The shift removes the cancellation of the textbook
// E[x^2] - E[x]^2 (K is within a few standard deviations of the mean; the large-mean case
// in tests/test_norm.py), double keeps float32 data exact enough, and partials merge by
// plain addition in a fixed order (deterministic, no division per element or per merge
// as Welford/Chan would need).
// Backward, with g1 = sum(dy), g2 = sum(dy * (x - mean)):
//   dbias = g1, dweight = g2 * invstd,
//   training: dx = k1*dy - k2*(x - mean) - k0, k1 = w*invstd, k2 = w*invstd^3*g2/M, k0 = w*invstd*g1/M
//   eval:     dx = k1*dy
//
// Two schedules for the per-channel sums (bn_sums):
//   planes (S >= 32): a team of threads (a whole block, or 32..128 threads when a channel
//     has few values) walks a channel's values in (n, s) order, consecutive threads on
//     consecutive packs of V elements (coalesced); shuffles + shared memory at the end;
//   columns (S < 32, e.g. (N, C) input): x seen as (N, C*S); a block owns 32 / S whole
//     channels, lane = column, so each warp load is one contiguous run; warps walk rows.
// A channel with many values (large N*S, few channels) is split over several blocks: each
// writes its partial sums to the workspace and bn_merge adds them per channel and
// finalizes. We chose the second tiny kernel over a last-block-done merge (atomic counter
// per channel): the counters would have to be zero at every launch, and the shared
// workspace slots are overwritten by other ops between calls, so each call would need a
// cudaMemsetAsync first (a stream operation costing about what bn_merge costs), plus a
// fence and a serial merge tail in the last block; bn_merge adds all channels in parallel
// and only runs when the pass over x is long anyway.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "workspace.h"

namespace ember::cuda {
namespace {

constexpr int kColumnWarps = 8;             // warps per block in the column schedule
constexpr int kUnroll = 4;                  // loads in flight per thread in the sums
constexpr int64_t kTargetBlocks = 132 * 8;  // enough blocks to fill an H100/H200
constexpr int64_t kMinPerBlock = 4096;      // values per block below which a channel is not split

// V elements moved as one load / store (16 bytes when V > 1).
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
template <class T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) { return *reinterpret_cast<const Pack<T, V>*>(p); }
template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& a) { *reinterpret_cast<Pack<T, V>*>(p) = a; }

__device__ __forceinline__ double2 add2(double2 a, double2 b) { return make_double2(a.x + b.x, a.y + b.y); }

__device__ __forceinline__ double2 warp_sum2(double2 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v.x += __shfl_xor_sync(0xffffffffu, v.x, o);
    v.y += __shfl_xor_sync(0xffffffffu, v.y, o);
  }
  return v;
}

// Forward terms of channel c: (x - K, (x - K)^2), K = x[c*S], the channel's first element.
template <class T, int V>
struct StatTerms {
  const T* x;
  int64_t S;
  struct Channel {
    using Item = Pack<T, V>;
    const T* x;
    double k;
    __device__ Item load(int64_t i) const { return load_pack<T, V>(x + i); }
    __device__ void add(double2& acc, const Item& a) const {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const double d = static_cast<double>(a.v[v]) - k;
        acc.x += d;
        acc.y = fma(d, d, acc.y);
      }
    }
  };
  __device__ Channel channel(int64_t c) const { return {x, static_cast<double>(x[c * S])}; }
};

// Backward terms of channel c: (dy, dy * (x - mean[c])).
template <class T, int V>
struct GradTerms {
  const T* dy;
  const T* x;
  const T* mean;
  struct Channel {
    struct Item {
      Pack<T, V> g, x;
    };
    const T* dy;
    const T* x;
    double m;
    __device__ Item load(int64_t i) const { return {load_pack<T, V>(dy + i), load_pack<T, V>(x + i)}; }
    __device__ void add(double2& acc, const Item& a) const {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        const double g = static_cast<double>(a.g.v[v]);
        acc.x += g;
        acc.y = fma(g, static_cast<double>(a.x.v[v]) - m, acc.y);
      }
    }
  };
  __device__ Channel channel(int64_t c) const { return {dy, x, static_cast<double>(mean[c])}; }
};

// Training forward, channel c from its shifted sums t = (s1, s2): mean and invstd (saved for
// backward), the affine map y = x*scale + shift, and (when given) the running stats'
// momentum update with the unbiased variance, as cpu/norm.cpp.
template <class T>
struct StatFinish {
  const T* x;
  int64_t S, C;
  double M, momentum, eps;
  const T* w;  // optional
  const T* b;  // optional
  T* rm;       // optional, with rv
  T* rv;
  T* save_mean;
  T* save_invstd;
  T* table;  // (2, C) workspace: scale, shift
  __device__ void operator()(int64_t c, double2 t) const {
    const double d1 = t.x / M;
    const double mean = static_cast<double>(x[c * S]) + d1;
    const double var = fmax(0.0, t.y / M - d1 * d1);
    const double invstd = 1.0 / ::sqrt(var + eps);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    const double bc = b ? static_cast<double>(b[c]) : 0.0;
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    table[c] = static_cast<T>(wc * invstd);
    table[C + c] = static_cast<T>(bc - mean * wc * invstd);
    if (rm) {
      rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * mean);
      rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var * M / (M - 1.0));
    }
  }
};

// Backward, channel c from g = (g1, g2): dbias, dweight and, in training, the dx coefficients.
template <class T>
struct GradFinish {
  const T* invstd;
  const T* w;  // optional
  T* db;       // optional
  T* dw;       // optional
  T* k;        // (3, C) workspace: k1, k2, k0; null when no training dx is wanted
  int64_t C;
  double M;
  __device__ void operator()(int64_t c, double2 g) const {
    const double inv = static_cast<double>(invstd[c]);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    if (db) db[c] = static_cast<T>(g.x);
    if (dw) dw[c] = static_cast<T>(g.y * inv);
    if (k) {
      k[c] = static_cast<T>(wc * inv);
      k[C + c] = static_cast<T>(wc * inv * inv * inv * g.y / M);
      k[2 * C + c] = static_cast<T>(wc * inv * g.x / M);
    }
  }
};

// Value e = n*S + s of channel c sits at offset n*C*S + c*S + s; next() returns that offset
// and moves e on by a fixed step (dn rows and ds more values) without division.
struct PlaneWalk {
  int64_t n, s, dn, ds, S, CS, cS;
  __device__ int64_t next() {
    const int64_t off = n * CS + cS + s;
    n += dn;
    s += ds;
    if (s >= S) {
      s -= S;
      ++n;
    }
    return off;
  }
};

// Planes: x (N,C,S), S >= 32. Block (g, split) of kThreads holds kThreads / team teams;
// team t sums channel c = g * (kThreads / team) + t over its values e in
// [split*chunk, min(M, (split+1)*chunk)). Thread r of a team takes the packs at
// e = split*chunk + r*V, then every team*V values (PlaneWalk). S and chunk are multiples of
// V, so a pack stays in one row.
// Without partial (one split) the team's first thread finalizes the channel.
template <int V, class Terms, class Finish>
__global__ void __launch_bounds__(kThreads) bn_sums_planes(Terms terms, Finish fin, int64_t C, int64_t S, int64_t M,
                                                           int team, int64_t chunk, double2* partial) {
  __shared__ double2 warp_vals[kThreads / 32];
  const int rank = threadIdx.x % team;
  const int64_t c = blockIdx.x * int64_t(kThreads / team) + threadIdx.x / team, split = blockIdx.y;
  double2 acc = make_double2(0.0, 0.0);
  if (c < C) {
    const typename Terms::Channel ch = terms.channel(c);
    const int64_t step = int64_t(team) * V, end = min(M, (split + 1) * chunk);
    int64_t e = split * chunk + int64_t(rank) * V;
    PlaneWalk walk{e / S, e % S, step / S, step % S, S, C * S, c * S};
    for (; e + (kUnroll - 1) * step < end; e += kUnroll * step) {
      typename Terms::Channel::Item items[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) items[u] = ch.load(walk.next());
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) ch.add(acc, items[u]);
    }
    for (; e < end; e += step) ch.add(acc, ch.load(walk.next()));
  }
  acc = warp_sum2(acc);
  if ((threadIdx.x & 31) == 0) warp_vals[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (rank == 0 && c < C) {
    const int warp = threadIdx.x >> 5;
    for (int w = 1; w < team / 32; ++w) acc = add2(acc, warp_vals[warp + w]);
    if (partial) partial[split * C + c] = acc;
    else fin(c, acc);
  }
}

// Columns: x (N, C*S), S < 32. Block (g, split) of 32 x kColumnWarps threads owns the
// channels [g*cpg, g*cpg + cpg), cpg = 32 / S (fewer in the last group): lane l < cpg*S
// reads column g*cpg*S + l, whole channels side by side, so a warp load is one contiguous
// run; warps walk rows [split*rows, (split+1)*rows). The column sums are added over warps,
// then over the S columns of each channel.
template <class Terms, class Finish>
__global__ void __launch_bounds__(32 * kColumnWarps) bn_sums_columns(Terms terms, Finish fin, int64_t N, int64_t C,
                                                                     int64_t S, int64_t cpg, int64_t rows,
                                                                     double2* partial) {
  __shared__ double2 vals[kColumnWarps][32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t c0 = blockIdx.x * cpg, channels = min(cpg, C - c0), W = C * S, split = blockIdx.y;
  double2 acc = make_double2(0.0, 0.0);
  if (lane < channels * S) {
    const typename Terms::Channel ch = terms.channel(c0 + lane / S);
    const int64_t j = c0 * S + lane, end = min(N, (split + 1) * rows);
    int64_t n = split * rows + warp;
    for (; n + (kUnroll - 1) * kColumnWarps < end; n += kUnroll * kColumnWarps) {
      typename Terms::Channel::Item items[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) items[u] = ch.load((n + u * kColumnWarps) * W + j);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) ch.add(acc, items[u]);
    }
    for (; n < end; n += kColumnWarps) ch.add(acc, ch.load(n * W + j));
  }
  vals[warp][lane] = acc;
  __syncthreads();
  if (warp == 0) {
    for (int w = 1; w < kColumnWarps; ++w) acc = add2(acc, vals[w][lane]);
    vals[0][lane] = acc;
    __syncwarp();
    if (lane < channels) {
      double2 total = vals[0][lane * S];
      for (int64_t s = 1; s < S; ++s) total = add2(total, vals[0][lane * S + s]);
      if (partial) partial[split * C + c0 + lane] = total;
      else fin(c0 + lane, total);
    }
  }
}

// Split channels: thread c adds its splits' partials (split order) and finalizes.
template <class Finish>
__global__ void bn_merge(const double2* partial, int64_t splits, int64_t C, Finish fin) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x) {
    double2 t = partial[c];
    for (int64_t sp = 1; sp < splits; ++sp) t = add2(t, partial[sp * C + c]);
    fin(c, t);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// 16-byte packs when every row holds whole packs and the pointers are 16-byte aligned.
template <class T>
bool packs_fit(int64_t S, std::initializer_list<const void*> ptrs) {
  if (S % (16 / sizeof(T)) != 0) return false;
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// f(std::integral_constant<int, V>): V = 16 / sizeof(T) when packed, else 1.
template <class T, class F>
void with_pack_width(bool packed, F f) {
  if (packed) f(std::integral_constant<int, 16 / sizeof(T)>{});
  else f(std::integral_constant<int, 1>{});
}

// Per-channel sums of terms(V) over x (N,C,S), finish(c, sums) once per channel (M > 0):
// one bn_sums launch, plus bn_merge when channels are split. `packed`: packs_fit for every
// array the terms read.
template <class T, class MakeTerms, class Finish>
void channel_sums(MakeTerms make_terms, Finish fin, int64_t N, int64_t C, int64_t S, bool packed, const char* op) {
  cudaStream_t stream = current_stream();
  const int64_t M = N * S;
  int64_t splits = 1;
  double2* partial = nullptr;
  if (S >= 32) {
    with_pack_width<T>(packed, [&](auto width) {
      constexpr int V = decltype(width)::value;
      // Team: a whole block, or fewer threads when each would get under one unrolled turn.
      int team = 32;
      while (team < kThreads && int64_t(team) * V * kUnroll < M) team *= 2;
      const int64_t per_block = kThreads / team;
      const int64_t groups = ceil_div(C, per_block);
      if (team == kThreads)
        splits = std::max<int64_t>(1, std::min(ceil_div(kTargetBlocks, C), M / kMinPerBlock));
      const int64_t chunk = ceil_div(ceil_div(M, splits), V) * V;
      splits = ceil_div(M, chunk);
      EMBER_CHECK(groups <= INT32_MAX, op, ": too many channels");
      if (splits > 1) partial = static_cast<double2*>(workspace(0, sizeof(double2) * splits * C));
      bn_sums_planes<V><<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(splits)), kThreads, 0, stream>>>(
          make_terms(width), fin, C, S, M, team, chunk, partial);
      EMBER_CUDA_LAUNCH_CHECK(op);
    });
  } else {
    const int64_t cpg = 32 / S, groups = ceil_div(C, cpg);
    const int64_t min_rows = ceil_div(kMinPerBlock, cpg * S);
    splits = std::max<int64_t>(1, std::min(ceil_div(kTargetBlocks, groups), N / min_rows));
    const int64_t rows = ceil_div(N, splits);
    splits = ceil_div(N, rows);
    EMBER_CHECK(groups <= INT32_MAX, op, ": too many channels");
    if (splits > 1) partial = static_cast<double2*>(workspace(0, sizeof(double2) * splits * C));
    bn_sums_columns<<<dim3(static_cast<unsigned>(groups), static_cast<unsigned>(splits)), 32 * kColumnWarps, 0,
                      stream>>>(make_terms(std::integral_constant<int, 1>{}), fin, N, C, S, cpg, rows, partial);
    EMBER_CUDA_LAUNCH_CHECK(op);
  }
  if (partial) {
    bn_merge<<<blocks_for(C), kThreads, 0, stream>>>(partial, splits, C, fin);
    EMBER_CUDA_LAUNCH_CHECK(op);
  }
}

// ---- elementwise passes: op(i, c) handles the pack at element offset i, channel c

// Training forward: y = x * scale[c] + shift[c], the table StatFinish wrote.
template <class T, int V>
struct AffineTable {
  const T* x;
  T* y;
  const T* table;  // (2, C): scale, shift
  int64_t C;
  __device__ void channel(int64_t) const {}
  __device__ void operator()(int64_t i, int64_t c) const {
    Pack<T, V> a = load_pack<T, V>(x + i);
    const T k = table[c], h = table[C + c];
#pragma unroll
    for (int v = 0; v < V; ++v) a.v[v] = a.v[v] * k + h;
    store_pack<T, V>(y + i, a);
  }
};

// Eval forward: the same map from the running stats, worked out per pack (no table, so no
// second launch); channel(c) saves mean and invstd for backward.
template <class T, int V>
struct AffineRunning {
  const T* x;
  T* y;
  const T* rm;
  const T* rv;
  const T* w;  // optional
  const T* b;  // optional
  T* save_mean;
  T* save_invstd;
  double eps;
  __device__ void channel(int64_t c) const {
    save_mean[c] = rm[c];
    save_invstd[c] = static_cast<T>(1.0 / ::sqrt(static_cast<double>(rv[c]) + eps));
  }
  __device__ void operator()(int64_t i, int64_t c) const {
    const double invstd = rsqrt(static_cast<double>(rv[c]) + eps);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    const double bc = b ? static_cast<double>(b[c]) : 0.0;
    const T k = static_cast<T>(wc * invstd), h = static_cast<T>(bc - static_cast<double>(rm[c]) * wc * invstd);
    Pack<T, V> a = load_pack<T, V>(x + i);
#pragma unroll
    for (int v = 0; v < V; ++v) a.v[v] = a.v[v] * k + h;
    store_pack<T, V>(y + i, a);
  }
};

// Training backward: dx = k1[c]*dy - k2[c]*(x - mean[c]) - k0[c], the coefficients GradFinish wrote.
template <class T, int V>
struct DxTable {
  const T* dy;
  const T* x;
  T* dx;
  const T* mean;
  const T* k;  // (3, C): k1, k2, k0
  int64_t C;
  __device__ void channel(int64_t) const {}
  __device__ void operator()(int64_t i, int64_t c) const {
    const Pack<T, V> g = load_pack<T, V>(dy + i), a = load_pack<T, V>(x + i);
    const T m = mean[c], k1 = k[c], k2 = k[C + c], k0 = k[2 * C + c];
    Pack<T, V> o;
#pragma unroll
    for (int v = 0; v < V; ++v) o.v[v] = k1 * g.v[v] - k2 * (a.v[v] - m) - k0;
    store_pack<T, V>(dx + i, o);
  }
};

// Eval backward: dx = w[c]*invstd[c]*dy.
template <class T, int V>
struct DxEval {
  const T* dy;
  T* dx;
  const T* w;  // optional
  const T* invstd;
  __device__ void channel(int64_t) const {}
  __device__ void operator()(int64_t i, int64_t c) const {
    const T k1 = static_cast<T>((w ? static_cast<double>(w[c]) : 1.0) * static_cast<double>(invstd[c]));
    Pack<T, V> g = load_pack<T, V>(dy + i);
#pragma unroll
    for (int v = 0; v < V; ++v) g.v[v] *= k1;
    store_pack<T, V>(dx + i, g);
  }
};

// Every pack of x (N,C,S) once (total = N*C*S elements), grid-stride: pack at element
// offset i is in channel (i / S) % C; a thread's (s, c) advances by the grid stride without
// division. S is a multiple of V, so a pack stays in one channel. Threads c < C (grid
// stride) also run op.channel(c).
template <int V, class Op>
__global__ void __launch_bounds__(kThreads) bn_elementwise(Op op, int64_t total, int64_t C, int64_t S) {
  const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, threads = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = tid; c < C; c += threads) op.channel(c);
  int64_t i = tid * V;
  if (i >= total) return;
  const int64_t step = threads * V, ds = step % S, dc = (step / S) % C;
  int64_t s = i % S, c = (i / S) % C;
  for (; i < total; i += step) {
    op(i, c);
    s += ds;
    c += dc;
    if (s >= S) {
      s -= S;
      ++c;
    }
    if (c >= C) c -= C;
  }
}

template <int V, class Op>
void elementwise(Op op, int64_t total, int64_t C, int64_t S, const char* name) {
  bn_elementwise<V><<<blocks_for(std::max(total / V, C)), kThreads, 0, current_stream()>>>(op, total, C, S);
  EMBER_CUDA_LAUNCH_CHECK(name);
}

template <class T>
T* opt_ptr(const TensorView& t) { return present(t) ? t.ptr<T>() : nullptr; }

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView& bv, const TensorView& rmv,
                  const TensorView& rvv, const TensorView& outv, const TensorView& smv, const TensorView& siv,
                  bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2], total = N * C * S;
  if (C == 0) return;
  const T* x = xv.ptr<T>();
  T* y = outv.ptr<T>();
  const T* w = opt_ptr<T>(wv);
  const T* b = opt_ptr<T>(bv);
  T* rm = opt_ptr<T>(rmv);
  T* rv = opt_ptr<T>(rvv);
  T* save_mean = smv.ptr<T>();
  T* save_invstd = siv.ptr<T>();
  const bool packed = packs_fit<T>(S, {x, y});
  if (!training) {  // also with N*S == 0: the kernel still saves mean and invstd
    with_pack_width<T>(packed, [&](auto width) {
      constexpr int V = decltype(width)::value;
      elementwise<V>(AffineRunning<T, V>{x, y, rm, rv, w, b, save_mean, save_invstd, eps}, total, C, S, op);
    });
    return;
  }
  if (N * S == 0) {  // empty batch: nothing to normalize; running stats stay as they are (as torch)
    cudaStream_t stream = current_stream();
    EMBER_CUDA_CHECK(cudaMemsetAsync(save_mean, 0, sizeof(T) * C, stream));
    EMBER_CUDA_CHECK(cudaMemsetAsync(save_invstd, 0, sizeof(T) * C, stream));
    return;
  }
  T* table = static_cast<T*>(workspace(3, sizeof(T) * 2 * C));
  const StatFinish<T> fin{x, S, C, static_cast<double>(N) * static_cast<double>(S), momentum, eps, w, b, rm, rv,
                          save_mean, save_invstd, table};
  channel_sums<T>([&](auto width) { return StatTerms<T, decltype(width)::value>{x, S}; }, fin, N, C, S,
                  packs_fit<T>(S, {x}), op);
  with_pack_width<T>(packed, [&](auto width) {
    constexpr int V = decltype(width)::value;
    elementwise<V>(AffineTable<T, V>{x, y, table, C}, total, C, S, op);
  });
}

template <class T>
void backward_impl(const TensorView& dyv, const TensorView& xv, const TensorView& mv, const TensorView& iv,
                   const TensorView& wv, bool training, const TensorView& dxv, const TensorView& dwv,
                   const TensorView& dbv) {
  const char* op = "batch_norm_backward";
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2], total = N * C * S;
  if (C == 0) return;
  T* dx = opt_ptr<T>(dxv);
  T* dw = opt_ptr<T>(dwv);
  T* db = opt_ptr<T>(dbv);
  if (N * S == 0) {  // empty batch: zero sums, no dx to write
    cudaStream_t stream = current_stream();
    if (dw) EMBER_CUDA_CHECK(cudaMemsetAsync(dw, 0, sizeof(T) * C, stream));
    if (db) EMBER_CUDA_CHECK(cudaMemsetAsync(db, 0, sizeof(T) * C, stream));
    return;
  }
  const T* dy = dyv.ptr<T>();
  const T* x = xv.ptr<T>();
  const T* mean = mv.ptr<T>();
  const T* invstd = iv.ptr<T>();
  const T* w = opt_ptr<T>(wv);
  const bool training_dx = dx && training;
  // The sums feed dweight, dbias and the training dx; eval dx needs none of them.
  T* k = training_dx ? static_cast<T*>(workspace(3, sizeof(T) * 3 * C)) : nullptr;
  if (dw || db || training_dx) {
    const GradFinish<T> fin{invstd, w, db, dw, k, C, static_cast<double>(N) * static_cast<double>(S)};
    channel_sums<T>([&](auto width) { return GradTerms<T, decltype(width)::value>{dy, x, mean}; }, fin, N, C, S,
                    packs_fit<T>(S, {dy, x}), op);
  }
  if (!dx) return;
  with_pack_width<T>(packs_fit<T>(S, {dy, x, dx}), [&](auto width) {
    constexpr int V = decltype(width)::value;
    if (training) elementwise<V>(DxTable<T, V>{dy, x, dx, mean, k, C}, total, C, S, op);
    else elementwise<V>(DxEval<T, V>{dy, dx, w, invstd}, total, C, S, op);
  });
}

}  // namespace

void batch_norm_forward(const TensorView& x, const TensorView& weight, const TensorView& bias,
                        const TensorView& running_mean, const TensorView& running_var, const TensorView& out,
                        const TensorView& save_mean, const TensorView& save_invstd, bool training, double momentum,
                        double eps) {
  check_batch_norm_forward_args(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd, training,
                                momentum, eps);
  EMBER_DISPATCH_FLOAT(x.dtype, "batch_norm",
                       forward_impl<T>(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd,
                                       training, momentum, eps));
}

void batch_norm_backward(const TensorView& grad_out, const TensorView& x, const TensorView& save_mean,
                         const TensorView& save_invstd, const TensorView& weight, bool training,
                         const TensorView& grad_input, const TensorView& grad_weight, const TensorView& grad_bias) {
  check_batch_norm_backward_args(grad_out, x, save_mean, save_invstd, weight, grad_input, grad_weight, grad_bias);
  EMBER_DISPATCH_FLOAT(x.dtype, "batch_norm_backward",
                       backward_impl<T>(grad_out, x, save_mean, save_invstd, weight, training, grad_input,
                                        grad_weight, grad_bias));
}

}  // namespace ember::cuda
