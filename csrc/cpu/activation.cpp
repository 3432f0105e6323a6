// Activations (relu, leaky_relu, sigmoid, tanh, gelu) and softmax / log_softmax over any
// dim, each forward next to its backward.
//
// Elementwise ones run over StridedLoop (any strides) in activation_loops.h with the
// accurate, vectorizable float math of vmath_act.h; float64 uses libm. Softmax views
// the tensor as (outer, C, inner) around `dim` without copying (dim_layout.h); short
// contiguous rows (C <= 16) are walked as columns so they vectorize too.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include "../dim_layout.h"
#include "../nn_checks.h"
#include "../ops.h"
#include "dispatch.h"
#include "strided.h"
#include "vmath_global.h"
#include "vmath_act.h"
#include "workspace.h"

// Inlined into the per-ISA loops even when large (gelu), so those loops vectorize.
#define EMBER_INLINE __attribute__((always_inline)) inline
#define EMBER_FLATTEN __attribute__((flatten))

namespace ember::cpu {
namespace {

// ---- float64 versions of the vmath_act functions (libm; the same formulas)
namespace dmath {
inline double sigmoid(double x) {
  double e = std::exp(-std::fabs(x));
  return (x < 0 ? e : 1.0) / (1.0 + e);
}
inline double gelu_erf(double x) {
  double hc = 0.5 * std::erfc(std::fabs(x) * 0.70710678118654752440);
  return x < 0 ? x * hc : x * (1.0 - hc);
}
inline double gelu_erf_grad(double x) {
  double hc = 0.5 * std::erfc(std::fabs(x) * 0.70710678118654752440);
  double cdf = x < 0 ? hc : 1.0 - hc;
  return cdf + x * 0.39894228040143267794 * std::exp(-0.5 * x * x);
}
inline double gelu_tanh_arg(double x) { return 1.5957691216057307117 * (x + 0.044715 * x * x * x); }
inline double gelu_tanh(double x) { return x * sigmoid(gelu_tanh_arg(x)); }
inline double gelu_tanh_grad(double x) {
  double a = gelu_tanh_arg(x);
  double s = sigmoid(a), oms = sigmoid(-a);
  return s + x * (s * oms) * 1.5957691216057307117 * (1.0 + 0.134145 * x * x);
}
}  // namespace dmath

EMBER_INLINE float exp_t(float x) { return vmath::exp(x); }
EMBER_INLINE double exp_t(double x) { return std::exp(x); }
EMBER_INLINE float log_t(float x) { return vmath::log(x); }
EMBER_INLINE double log_t(double x) { return std::log(x); }

// ---- forward functors op(x), backward functors op(grad, saved) -> grad_input.
// NaN propagates as in PyTorch: relu(NaN) = NaN, and relu's backward passes the
// gradient where the output is not <= 0 (NaN included), like threshold_backward.
struct Relu { template <class T> EMBER_INLINE T operator()(T x) const { return x <= T(0) ? T(0) : x; } };
struct ReluBackward { template <class T> EMBER_INLINE T operator()(T g, T y) const { return y <= T(0) ? T(0) : g; } };
template <class T> struct LeakyRelu {
  T slope;
  EMBER_INLINE T operator()(T x) const { return x > T(0) ? x : x * slope; }
};
template <class T> struct LeakyReluBackward {
  T slope;
  EMBER_INLINE T operator()(T g, T x) const { return x > T(0) ? g : g * slope; }
};
struct Sigmoid {
  EMBER_INLINE float operator()(float x) const { return vmath::sigmoid(x); }
  EMBER_INLINE double operator()(double x) const { return dmath::sigmoid(x); }
};
struct SigmoidBackward { template <class T> EMBER_INLINE T operator()(T g, T y) const { return g * (y * (T(1) - y)); } };
struct Tanh {
  EMBER_INLINE float operator()(float x) const { return vmath::tanh(x); }
  EMBER_INLINE double operator()(double x) const { return std::tanh(x); }
};
struct TanhBackward { template <class T> EMBER_INLINE T operator()(T g, T y) const { return g * (T(1) - y * y); } };
struct GeluErf {
  EMBER_INLINE float operator()(float x) const { return vmath::gelu_erf(x); }
  EMBER_AVX512_FN __m512 avx512(__m512 x) const { return vmath::gelu_erf16(x); }
  EMBER_INLINE double operator()(double x) const { return dmath::gelu_erf(x); }
};
struct GeluErfBackward {
  EMBER_INLINE float operator()(float g, float x) const { return g * vmath::gelu_erf_grad(x); }
  EMBER_INLINE double operator()(double g, double x) const { return g * dmath::gelu_erf_grad(x); }
};
struct GeluTanh {
  EMBER_INLINE float operator()(float x) const { return vmath::gelu_tanh(x); }
  EMBER_AVX512_FN __m512 avx512(__m512 x) const { return vmath::gelu_tanh16(x); }
  EMBER_INLINE double operator()(double x) const { return dmath::gelu_tanh(x); }
};
struct GeluTanhBackward {
  EMBER_INLINE float operator()(float g, float x) const { return g * vmath::gelu_tanh_grad(x); }
  EMBER_INLINE double operator()(double g, double x) const { return g * dmath::gelu_tanh_grad(x); }
};

// Inner positions a softmax column block covers (the width its loops vectorize over;
// 256 floats = 1 KB per row, enough contiguous bytes for the prefetchers when rows are far
// apart). Past kCachedSpan: blocks of 4 KB of a row (the stats of 1024 floats stay in L1)
// and rows per chunk of the online max + sum (8 such 4 KB rows stay in L1 even when they
// share cache sets).
constexpr int64_t kColumnBlock = 256;
template <class T> constexpr int64_t kOnlineWidth = 4096 / sizeof(T);
constexpr int64_t kOnlineRows = 8;
// Bytes the C rows of a column block span beyond which softmax takes two passes, not
// three (a 2 MB L2 per core, shared with the output).
constexpr int64_t kCachedSpan = 1 << 20;
// Elements per thread below which softmax stays on one thread.
constexpr int64_t kSoftmaxGrain = 1 << 14;
constexpr int64_t kMaxLongRowChunks = 64;

// Chunks to split each contiguous row into (softmax_long_row: the rows one after
// another, each across the threads) when that keeps more threads busy than one row per
// thread would, else 0: the rows are the parallel work.
template <int N>
int64_t long_row_chunks(const DimLayout<N>& L, int64_t C) {
  for (int k = 0; k < N; ++k)
    if (L.cstride[k] != 1) return 0;
  if (omp_in_parallel()) return 0;
  const int64_t nk = std::min<int64_t>({omp_get_max_threads(), kMaxLongRowChunks, C / kSoftmaxGrain});
  return nk >= 2 && nk > L.nout ? nk : 0;
}

// Start of chunk k of nk over [0, C).
inline int64_t chunk_begin(int64_t C, int64_t k, int64_t nk) { return C * k / nk; }

// f(off[N]) for every outer index of L (inner == 1: one row each), in parallel.
template <int N, class F>
void for_rows(const DimLayout<N>& L, int64_t C, F f) {
  int64_t grain = std::max<int64_t>(1, kSoftmaxGrain / std::max<int64_t>(C, 1));
  parallel_for(L.nout, grain, [&](int64_t b, int64_t e) {
    int64_t off[N];
    for (int64_t o = b; o < e; ++o) {
      L.outer_offsets(o, off);
      f(off);
    }
  });
}

// f(off[N], width) for every (outer index, block of <= kColumnBlock inner positions).
template <int N, class F>
void for_column_blocks(const DimLayout<N>& L, int64_t C, F f) {
  const int64_t nblk = (L.inner + kColumnBlock - 1) / kColumnBlock;
  int64_t grain = std::max<int64_t>(1, kSoftmaxGrain / std::max<int64_t>(C * std::min(L.inner, kColumnBlock), 1));
  parallel_for(L.nout * nblk, grain, [&](int64_t b, int64_t e) {
    int64_t off[N];
    for (int64_t u = b; u < e; ++u) {
      int64_t o = u / nblk, j0 = (u % nblk) * kColumnBlock;
      L.outer_offsets(o, off);
      for (int k = 0; k < N; ++k) off[k] += j0 * L.istride[k];
      f(off, std::min(kColumnBlock, L.inner - j0));
    }
  });
}

}  // namespace

// ---- the loops, compiled once per ISA
namespace act_scalar {
#include "activation_loops.h"
#include "softmax_loops.h"
}
namespace act_avx2 {
EMBER_AVX2_BEGIN
#include "activation_loops.h"
#include "softmax_loops.h"
EMBER_ISA_END
}
// Functors with an avx512(__m512) method: the AVX-512 loop calls it 16 floats at a time.
template <class Op, class = void>
struct HasAvx512 : std::false_type {};
template <class Op>
struct HasAvx512<Op, std::void_t<decltype(&Op::avx512)>> : std::true_type {};

namespace act_avx512 {
EMBER_AVX512_BEGIN
#define EMBER_ACT_AVX512
#include "activation_loops.h"
#include "softmax_loops.h"
#undef EMBER_ACT_AVX512
EMBER_ISA_END
}

namespace {

template <class T, class Op>
void run_unary(const TensorView& x, const TensorView& out, Op op) {
  StridedLoop<2> L({&x, &out});
  switch (isa()) {
    case Isa::avx512: act_avx512::act_unary_loop(L, x.ptr<T>(), out.ptr<T>(), op); break;
    case Isa::avx2: act_avx2::act_unary_loop(L, x.ptr<T>(), out.ptr<T>(), op); break;
    default: act_scalar::act_unary_loop(L, x.ptr<T>(), out.ptr<T>(), op);
  }
}

template <class T, class Op>
void run_binary(const TensorView& a, const TensorView& b, const TensorView& out, Op op) {
  StridedLoop<3> L({&a, &b, &out});
  switch (isa()) {
    case Isa::avx512: act_avx512::act_binary_loop(L, a.ptr<T>(), b.ptr<T>(), out.ptr<T>(), op); break;
    case Isa::avx2: act_avx2::act_binary_loop(L, a.ptr<T>(), b.ptr<T>(), out.ptr<T>(), op); break;
    default: act_scalar::act_binary_loop(L, a.ptr<T>(), b.ptr<T>(), out.ptr<T>(), op);
  }
}

template <class Op>
void unary(const TensorView& x, const TensorView& out, const char* name) {
  check_activation_args(x, out, name);
  EMBER_DISPATCH_FLOAT(x.dtype, name, run_unary<T>(x, out, Op{}));
}
template <class Op>
void backward(const TensorView& g, const TensorView& saved, const TensorView& gx, const char* name,
              const char* saved_name) {
  check_activation_backward_args(g, saved, gx, name, saved_name);
  EMBER_DISPATCH_FLOAT(g.dtype, name, run_binary<T>(g, saved, gx, Op{}));
}

template <bool Log>
void softmax_forward(const TensorView& x0, int64_t dim, const TensorView& out0, const char* name) {
  check_activation_args(x0, out0, name);
  TensorView x = as_1d(x0), out = as_1d(out0);
  int d = softmax_dim(x0, dim, name);
  if (x.numel() == 0) return;
  DimLayout<2> L({&x, &out}, d);
  EMBER_DISPATCH_FLOAT(x.dtype, name, {
    switch (isa()) {
      case Isa::avx512: act_avx512::softmax_forward_run<T, Log>(L, x.ptr<T>(), out.ptr<T>()); break;
      case Isa::avx2: act_avx2::softmax_forward_run<T, Log>(L, x.ptr<T>(), out.ptr<T>()); break;
      default: act_scalar::softmax_forward_run<T, Log>(L, x.ptr<T>(), out.ptr<T>());
    }
  });
}

template <bool Log>
void softmax_backward_impl(const TensorView& g0, const TensorView& y0, int64_t dim, const TensorView& gx0,
                           const char* name) {
  check_activation_backward_args(g0, y0, gx0, name, "output");
  TensorView g = as_1d(g0), y = as_1d(y0), gx = as_1d(gx0);
  int d = softmax_dim(g0, dim, name);
  if (g.numel() == 0) return;
  DimLayout<3> L({&g, &y, &gx}, d);
  EMBER_DISPATCH_FLOAT(g.dtype, name, {
    switch (isa()) {
      case Isa::avx512: act_avx512::softmax_backward_run<T, Log>(L, g.ptr<T>(), y.ptr<T>(), gx.ptr<T>()); break;
      case Isa::avx2: act_avx2::softmax_backward_run<T, Log>(L, g.ptr<T>(), y.ptr<T>(), gx.ptr<T>()); break;
      default: act_scalar::softmax_backward_run<T, Log>(L, g.ptr<T>(), y.ptr<T>(), gx.ptr<T>());
    }
  });
}

}  // namespace

// x (*) -> out (*), elementwise, any strides. Backward: grad_output (*), the saved
// tensor named in the comment (*), grad_input (*).
void relu(const TensorView& x, const TensorView& out) { unary<Relu>(x, out, "relu"); }
// saved: the output y (the mask is y > 0)
void relu_backward(const TensorView& g, const TensorView& y, const TensorView& gx) {
  backward<ReluBackward>(g, y, gx, "relu_backward", "output");
}

void leaky_relu(const TensorView& x, double negative_slope, const TensorView& out) {
  check_activation_args(x, out, "leaky_relu");
  EMBER_DISPATCH_FLOAT(x.dtype, "leaky_relu", run_unary<T>(x, out, LeakyRelu<T>{static_cast<T>(negative_slope)}));
}
// saved: the input x
void leaky_relu_backward(const TensorView& g, const TensorView& x, double negative_slope, const TensorView& gx) {
  check_activation_backward_args(g, x, gx, "leaky_relu_backward", "input");
  EMBER_DISPATCH_FLOAT(g.dtype, "leaky_relu_backward",
                       run_binary<T>(g, x, gx, LeakyReluBackward<T>{static_cast<T>(negative_slope)}));
}

void sigmoid(const TensorView& x, const TensorView& out) { unary<Sigmoid>(x, out, "sigmoid"); }
// saved: the output y; d/dx = y (1 - y)
void sigmoid_backward(const TensorView& g, const TensorView& y, const TensorView& gx) {
  backward<SigmoidBackward>(g, y, gx, "sigmoid_backward", "output");
}

void tanh(const TensorView& x, const TensorView& out) { unary<Tanh>(x, out, "tanh"); }
// saved: the output y; d/dx = 1 - y^2
void tanh_backward(const TensorView& g, const TensorView& y, const TensorView& gx) {
  backward<TanhBackward>(g, y, gx, "tanh_backward", "output");
}

// approximate_tanh: PyTorch's approximate='tanh'; otherwise the exact erf form.
void gelu(const TensorView& x, bool approximate_tanh, const TensorView& out) {
  if (approximate_tanh) unary<GeluTanh>(x, out, "gelu");
  else unary<GeluErf>(x, out, "gelu");
}
// saved: the input x
void gelu_backward(const TensorView& g, const TensorView& x, bool approximate_tanh, const TensorView& gx) {
  if (approximate_tanh) backward<GeluTanhBackward>(g, x, gx, "gelu_backward", "input");
  else backward<GeluErfBackward>(g, x, gx, "gelu_backward", "input");
}

// x (*) -> out (*), normalized over `dim` (negative counts from the end); any strides.
void softmax(const TensorView& x, int64_t dim, const TensorView& out) { softmax_forward<false>(x, dim, out, "softmax"); }
void log_softmax(const TensorView& x, int64_t dim, const TensorView& out) {
  softmax_forward<true>(x, dim, out, "log_softmax");
}
// grad_output (*), y = softmax output (*) -> grad_input (*): y * (g - sum_dim(g * y))
void softmax_backward(const TensorView& g, const TensorView& y, int64_t dim, const TensorView& gx) {
  softmax_backward_impl<false>(g, y, dim, gx, "softmax_backward");
}
// y = log_softmax output: g - exp(y) * sum_dim(g)
void log_softmax_backward(const TensorView& g, const TensorView& y, int64_t dim, const TensorView& gx) {
  softmax_backward_impl<true>(g, y, dim, gx, "log_softmax_backward");
}

}  // namespace ember::cpu
