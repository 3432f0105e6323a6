// Reductions: sum, amax, amin over any set of axes; argmax, argmin over one axis.
//
// The input is made contiguous (a copy in scratch if it is not) and reduced in the
// passes x (A, R, B) -> (A, B) of reduce_plan.h:
//   B == 1: each output reduces a contiguous row of R (SIMD across the row);
//   B  > 1: each output column b accumulates x[a, :, b] (SIMD across b).
//
// float32 sums: 64 float partial sums per 4096-element block, blocks added in double:
// error ~ (64 + R/4096) ulp instead of R ulp. max/min propagate NaN as NumPy and torch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>
#include "../check.h"
#include "../op_checks.h"
#include "../ops.h"
#include "../reduce_plan.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {
namespace {

enum class Kind { sum, max, min };

template <class T> struct Accum { using type = T; };
template <> struct Accum<float> { using type = double; };

template <Kind K, class T>
constexpr T identity() {
  if constexpr (K == Kind::sum) return T(0);
  else if constexpr (K == Kind::max) return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
  else return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
}

}  // namespace

// ---- loops compiled per ISA ----
#define EMBER_REDUCE_LOOPS                                                                       \
  template <Kind K, class T>                                                                     \
  inline T combine(T a, T b) {                                                                   \
    if constexpr (K == Kind::sum) return a + b;                                                  \
    else if constexpr (K == Kind::max) return (b > a || b != b) ? b : a;                         \
    else return (b < a || b != b) ? b : a;                                                       \
  }                                                                                              \
  /* Reduce one contiguous run x[0:n]; returns the partial in the accumulator type. */           \
  template <Kind K, class T>                                                                     \
  typename Accum<T>::type reduce_row(const T* x, int64_t n) {                                    \
    using A = typename Accum<T>::type;                                                           \
    constexpr int W = 64 / sizeof(T) * 4; /* four 512-bit registers of lanes */                  \
    constexpr int64_t kBlock = 4096;                                                             \
    A total = identity<K, A>();                                                                  \
    for (int64_t b0 = 0; b0 < n; b0 += kBlock) {                                                 \
      const int64_t bn = std::min(kBlock, n - b0);                                               \
      const T* p = x + b0;                                                                       \
      T acc[W];                                                                                  \
      for (int j = 0; j < W; ++j) acc[j] = identity<K, T>();                                     \
      int64_t i = 0;                                                                             \
      for (; i + W <= bn; i += W)                                                                \
        for (int j = 0; j < W; ++j) {                                                            \
          /* max/min: a NaN lane sticks, since nothing compares greater than NaN */            \
          if constexpr (K == Kind::sum) acc[j] += p[i + j];                                      \
          else if constexpr (K == Kind::max)                                                     \
            acc[j] = (p[i + j] > acc[j] || p[i + j] != p[i + j]) ? p[i + j] : acc[j];            \
          else                                                                                   \
            acc[j] = (p[i + j] < acc[j] || p[i + j] != p[i + j]) ? p[i + j] : acc[j];            \
        }                                                                                        \
      for (; i < bn; ++i) acc[i % W] = combine<K>(acc[i % W], p[i]);                             \
      T block = acc[0];                                                                          \
      for (int j = 1; j < W; ++j) block = combine<K>(block, acc[j]);                             \
      total = combine<K>(total, static_cast<A>(block));                                          \
    }                                                                                            \
    return total;                                                                                \
  }                                                                                              \
  /* acc[0:nb] (op)= x[r, 0:nb] for r < R, row stride ld. */                                     \
  template <Kind K, class T>                                                                     \
  void reduce_cols(const T* x, int64_t R, int64_t ld, int64_t nb, typename Accum<T>::type* acc) { \
    for (int64_t r = 0; r < R; ++r) {                                                            \
      const T* p = x + r * ld;                                                                   \
      for (int64_t b = 0; b < nb; ++b) acc[b] = combine<K>(acc[b], static_cast<typename Accum<T>::type>(p[b])); \
    }                                                                                            \
  }

namespace isa_scalar { EMBER_REDUCE_LOOPS }
namespace isa_avx2 {
EMBER_AVX2_BEGIN
EMBER_REDUCE_LOOPS
EMBER_ISA_END
}
namespace isa_avx512 {
EMBER_AVX512_BEGIN
EMBER_REDUCE_LOOPS
EMBER_ISA_END
}
#undef EMBER_REDUCE_LOOPS

namespace {

template <Kind K, class T>
typename Accum<T>::type reduce_row(const T* x, int64_t n) {
  switch (isa()) {
    case Isa::avx512: return isa_avx512::reduce_row<K>(x, n);
    case Isa::avx2: return isa_avx2::reduce_row<K>(x, n);
    default: return isa_scalar::reduce_row<K>(x, n);
  }
}
template <Kind K, class T>
void reduce_cols(const T* x, int64_t R, int64_t ld, int64_t nb, typename Accum<T>::type* acc) {
  EMBER_ISA_CALL(reduce_cols<K>, x, R, ld, nb, acc);
}

template <Kind K, class T>
T combine_acc(T a, T b) { return isa_scalar::combine<K>(a, b); }

// One pass: x (A, R, B) contiguous -> out (A, B).
template <Kind K, class T>
void reduce_pass(const T* x, int64_t A, int64_t R, int64_t B, T* out) {
  using Acc = typename Accum<T>::type;
  const int64_t nthreads = omp_get_max_threads();
  const int64_t total = A * R * B;
  if (B == 1) {
    if (A >= nthreads || total < 2 * kElementwiseGrain) {
      parallel_for(A, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t a0, int64_t a1) {
        for (int64_t a = a0; a < a1; ++a) out[a] = static_cast<T>(reduce_row<K>(x + a * R, R));
      });
    } else {  // few long rows: split each row across threads
      for (int64_t a = 0; a < A; ++a) {
        std::vector<Acc> part(nthreads, identity<K, Acc>());
        parallel_for(R, kElementwiseGrain, [&](int64_t r0, int64_t r1) {
          part[omp_get_thread_num()] = reduce_row<K>(x + a * R + r0, r1 - r0);
        });
        Acc t = identity<K, Acc>();
        for (Acc p : part) t = combine_acc<K>(t, p);
        out[a] = static_cast<T>(t);
      }
    }
    return;
  }
  // B > 1: columns. Chunks of kCols outputs each, accumulated in a small local array.
  constexpr int64_t kCols = 512;
  const int64_t chunks_per_a = (B + kCols - 1) / kCols;
  const int64_t tasks = A * chunks_per_a;
  if (tasks >= nthreads || total < 2 * kElementwiseGrain) {
    parallel_for(tasks, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R * kCols, 1)), [&](int64_t t0, int64_t t1) {
      Acc acc[kCols];
      for (int64_t t = t0; t < t1; ++t) {
        int64_t a = t / chunks_per_a, b0 = (t % chunks_per_a) * kCols, nb = std::min(kCols, B - b0);
        std::fill(acc, acc + nb, identity<K, Acc>());
        reduce_cols<K>(x + a * R * B + b0, R, B, nb, acc);
        for (int64_t b = 0; b < nb; ++b) out[a * B + b0 + b] = static_cast<T>(acc[b]);
      }
    });
  } else {  // few outputs, long reduction: split R across threads, then combine partials
    std::vector<Acc> part(nthreads * B, identity<K, Acc>());
    for (int64_t a = 0; a < A; ++a) {
      std::fill(part.begin(), part.end(), identity<K, Acc>());
      parallel_for(R, std::max<int64_t>(1, kElementwiseGrain / B), [&](int64_t r0, int64_t r1) {
        reduce_cols<K>(x + (a * R + r0) * B, r1 - r0, B, B, part.data() + omp_get_thread_num() * B);
      });
      for (int64_t b = 0; b < B; ++b) {
        Acc t = identity<K, Acc>();
        for (int64_t th = 0; th < nthreads; ++th) t = combine_acc<K>(t, part[th * B + b]);
        out[a * B + b] = static_cast<T>(t);
      }
    }
  }
}

// Makes x contiguous in `scratch` if it is not; returns the data pointer to use.
template <class T>
const T* contiguous_data(const TensorView& x, std::vector<T>& scratch) {
  if (x.is_contiguous()) return x.ptr<T>();
  scratch.resize(static_cast<size_t>(x.numel()));
  TensorView dst = x;
  dst.data = scratch.data();
  int64_t s = 1;
  for (int d = x.ndim - 1; d >= 0; --d) { dst.strides[d] = s; s *= x.shape[d]; }
  copy(x, dst);
  return scratch.data();
}

template <Kind K, class T>
void reduce_axes(const TensorView& x, const std::vector<bool>& red, const TensorView& out) {
  if (out.numel() == 0) return;
  T* po = out.ptr<T>();
  if (x.numel() == 0) {  // sum over an empty axis
    std::fill(po, po + out.numel(), T(0));
    return;
  }
  std::vector<T> scratch;
  const T* px = contiguous_data(x, scratch);
  const auto passes = plan_reduction(x, red);
  if (passes.empty()) {  // only size-1 axes reduced: a plain copy
    std::copy(px, px + out.numel(), po);
    return;
  }
  std::vector<T> buf[2];
  const T* src = px;
  for (size_t i = 0; i < passes.size(); ++i) {
    const ReducePass& p = passes[i];
    T* dst = po;
    if (i + 1 < passes.size()) {
      buf[i % 2].resize(static_cast<size_t>(p.A * p.B));
      dst = buf[i % 2].data();
    }
    reduce_pass<K, T>(src, p.A, p.R, p.B, dst);
    src = dst;
  }
}

template <Kind K>
void reduce_op(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out, const char* op) {
  const auto red = check_reduce_args(x, axes, naxes, out, op, K != Kind::sum);
  EMBER_DISPATCH_ALL(x.dtype, op, reduce_axes<K, T>(x, red, out));
}

// argmax/argmin of one contiguous run p[0:n]: (value, index). Blocked: each block's
// extreme with SIMD, then the first index of it inside the best block. The first index
// wins ties; a NaN wins over numbers (as NumPy and torch).
template <bool Max, class T>
std::pair<T, int64_t> arg_row(const T* p, int64_t n) {
  constexpr int64_t kBlock = 2048;
  T best = p[0];
  int64_t best_block = 0;
  bool found_nan = false;
  for (int64_t b0 = 0; b0 < n && !found_nan; b0 += kBlock) {
    const int64_t bn = std::min(kBlock, n - b0);
    T m = static_cast<T>(Max ? reduce_row<Kind::max, T>(p + b0, bn) : reduce_row<Kind::min, T>(p + b0, bn));
    if (m != m) { best = m; best_block = b0; found_nan = true; }
    else if (b0 == 0 || (Max ? m > best : m < best)) { best = m; best_block = b0; }
  }
  const int64_t bn = std::min(kBlock, n - best_block);
  for (int64_t r = 0; r < bn; ++r) {
    T v = p[best_block + r];
    if (found_nan ? v != v : v == best) return {v, best_block + r};
  }
  return {best, best_block};
}

template <bool Max, class T>
void arg_reduce(const TensorView& x, int64_t axis, const TensorView& out) {
  std::vector<T> scratch;
  const T* px = contiguous_data(x, scratch);
  int64_t A = 1, B = 1, R = x.shape[axis];
  for (int d = 0; d < axis; ++d) A *= x.shape[d];
  for (int d = axis + 1; d < x.ndim; ++d) B *= x.shape[d];
  int64_t* po = out.ptr<int64_t>();
  const int64_t nthreads = omp_get_max_threads();
  if (B == 1 && A < nthreads && R >= 2 * kElementwiseGrain) {
    // Few long rows: each thread takes a range of the row; ranges combine in order.
    std::vector<std::pair<T, int64_t>> part(nthreads, {T(0), -1});
    for (int64_t a = 0; a < A; ++a) {
      std::fill(part.begin(), part.end(), std::pair<T, int64_t>{T(0), -1});
      parallel_for(R, kElementwiseGrain, [&](int64_t r0, int64_t r1) {
        auto [v, i] = arg_row<Max>(px + a * R + r0, r1 - r0);
        part[omp_get_thread_num()] = {v, r0 + i};
      });
      std::pair<T, int64_t> best{T(0), -1};
      for (auto& q : part) {
        if (q.second < 0) continue;
        if (best.second < 0 || (best.first == best.first &&
                                (q.first != q.first || (Max ? q.first > best.first : q.first < best.first))))
          best = q;
      }
      po[a] = best.second;
    }
    return;
  }
  parallel_for(A * B, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(R, 1)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t / B, b = t % B;
      const T* p = px + a * R * B + b;
      if (B == 1) {
        po[t] = arg_row<Max>(p, R).second;
        continue;
      }
      T best = p[0];
      int64_t idx = 0;
      for (int64_t r = 1; r < R && best == best; ++r) {
        T v = p[r * B];
        if ((Max ? v > best : v < best) || v != v) { best = v; idx = r; }
      }
      po[t] = idx;
    }
  });
}

template <bool Max>
void arg_op(const TensorView& x, int64_t axis, const TensorView& out, const char* op) {
  check_arg_reduce_args(x, axis, out, op);
  if (out.numel() == 0) return;
  EMBER_DISPATCH_ALL(x.dtype, op, arg_reduce<Max, T>(x, axis, out));
}

}  // namespace

void sum(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::sum>(x, axes, naxes, out, "sum"); }
void amax(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::max>(x, axes, naxes, out, "max"); }
void amin(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out) { reduce_op<Kind::min>(x, axes, naxes, out, "min"); }
void argmax(const TensorView& x, int64_t axis, const TensorView& out) { arg_op<true>(x, axis, out, "argmax"); }
void argmin(const TensorView& x, int64_t axis, const TensorView& out) { arg_op<false>(x, axis, out, "argmin"); }

}  // namespace ember::cpu
