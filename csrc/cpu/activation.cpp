// Activations (relu, leaky_relu, sigmoid, tanh, gelu) and softmax / log_softmax over any
// dim, each forward next to its backward.
//
// Elementwise ones run over StridedLoop (any strides) in activation_loops.h with the
// accurate, vectorizable float math of vmath_act.h; float64 uses libm. Softmax views
// the tensor as (outer, C, inner) around `dim` without copying (see DimLayout); short
// contiguous rows (C <= 16) are walked as columns so they vectorize too.
#include <cmath>
#include <limits>
#include "../check.h"
#include "../ops.h"
#include "dispatch.h"
#include "strided.h"
#include "vmath_global.h"
#include "vmath_act.h"

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
  EMBER_INLINE double operator()(double x) const { return dmath::gelu_erf(x); }
};
struct GeluErfBackward {
  EMBER_INLINE float operator()(float g, float x) const { return g * vmath::gelu_erf_grad(x); }
  EMBER_INLINE double operator()(double g, double x) const { return g * dmath::gelu_erf_grad(x); }
};
struct GeluTanh {
  EMBER_INLINE float operator()(float x) const { return vmath::gelu_tanh(x); }
  EMBER_INLINE double operator()(double x) const { return dmath::gelu_tanh(x); }
};
struct GeluTanhBackward {
  EMBER_INLINE float operator()(float g, float x) const { return g * vmath::gelu_tanh_grad(x); }
  EMBER_INLINE double operator()(double g, double x) const { return g * dmath::gelu_tanh_grad(x); }
};

// Inner positions a softmax column block covers (the width its loops vectorize over).
constexpr int64_t kColumnBlock = 64;
// Rows up to this long are softmaxed as columns (see DimLayout).
constexpr int64_t kShortRow = 16;
// Elements per thread below which softmax stays on one thread.
constexpr int64_t kSoftmaxGrain = 1 << 14;

// N same-shape operands seen as (outer..., C, inner) around `dim`: C = shape[dim] with
// per-operand stride cstride; inner = the dims after `dim` merged into one run where
// every operand steps evenly across them (any that cannot merge join the outer dims);
// the outer dims are walked by multi-index, so any strides work without a copy.
template <int N>
struct DimLayout {
  int64_t C = 1, inner = 1;
  int64_t cstride[N] = {}, istride[N] = {};
  int nouter = 0;
  int64_t oshape[kMaxDims] = {};
  int64_t ostride[N][kMaxDims] = {};
  int64_t nout = 1;

  DimLayout(const std::array<const TensorView*, N>& v, int dim) {
    const TensorView& r = *v[0];
    C = r.shape[dim];
    for (int k = 0; k < N; ++k) cstride[k] = v[k]->strides[dim];
    // Inner run: the last size>1 dim after `dim`, grown leftwards while strides allow.
    int d = r.ndim - 1;
    while (d > dim && r.shape[d] == 1) --d;
    if (d > dim) {
      inner = r.shape[d];
      for (int k = 0; k < N; ++k) istride[k] = v[k]->strides[d];
      for (--d; d > dim; --d) {
        if (r.shape[d] == 1) continue;
        bool merge = true;
        for (int k = 0; k < N; ++k) merge &= v[k]->strides[d] == istride[k] * inner;
        if (!merge) break;
        inner *= r.shape[d];
      }
    }
    // Outer dims: everything before `dim`, plus after-dims left over, merged where even.
    for (int e = 0; e <= d; ++e) {
      if (e == dim || r.shape[e] == 1) continue;
      if (nouter > 0) {
        bool merge = true;
        for (int k = 0; k < N; ++k) merge &= ostride[k][nouter - 1] == v[k]->strides[e] * r.shape[e];
        if (merge) {
          oshape[nouter - 1] *= r.shape[e];
          for (int k = 0; k < N; ++k) ostride[k][nouter - 1] = v[k]->strides[e];
          continue;
        }
      }
      oshape[nouter] = r.shape[e];
      for (int k = 0; k < N; ++k) ostride[k][nouter] = v[k]->strides[e];
      ++nouter;
    }
    for (int e = 0; e < nouter; ++e) nout *= oshape[e];
    // Short contiguous rows, (R, C) with C <= kShortRow: vectorizing along a row would leave
    // only scalar remainders, so walk it as C steps over R "columns" of stride C instead
    // (the column kernel, 64 rows at a time).
    bool short_rows = inner == 1 && nouter == 1 && C <= kShortRow;
    for (int k = 0; k < N; ++k) short_rows &= cstride[k] == 1 && ostride[k][0] == C;
    if (short_rows) {
      inner = oshape[0];
      for (int k = 0; k < N; ++k) istride[k] = C;
      nouter = 0;
      nout = 1;
    }
  }

  void outer_offsets(int64_t o, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int e = nouter - 1; e >= 0; --e) {
      int64_t i = o % oshape[e];
      o /= oshape[e];
      for (int k = 0; k < N; ++k) off[k] += i * ostride[k][e];
    }
  }

  // f(off[N]) for every outer index (inner == 1: one row each), in parallel.
  template <class F>
  void for_rows(int64_t C_, F f) const {
    int64_t grain = std::max<int64_t>(1, kSoftmaxGrain / std::max<int64_t>(C_, 1));
    parallel_for(nout, grain, [&](int64_t b, int64_t e) {
      int64_t off[N];
      for (int64_t o = b; o < e; ++o) {
        outer_offsets(o, off);
        f(off);
      }
    });
  }

  // f(off[N], width) for every (outer index, block of <= kColumnBlock inner positions).
  template <class F>
  void for_column_blocks(int64_t C_, F f) const {
    const int64_t nblk = (inner + kColumnBlock - 1) / kColumnBlock;
    int64_t grain = std::max<int64_t>(1, kSoftmaxGrain / std::max<int64_t>(C_ * std::min(inner, kColumnBlock), 1));
    parallel_for(nout * nblk, grain, [&](int64_t b, int64_t e) {
      int64_t off[N];
      for (int64_t u = b; u < e; ++u) {
        int64_t o = u / nblk, j0 = (u % nblk) * kColumnBlock;
        outer_offsets(o, off);
        for (int k = 0; k < N; ++k) off[k] += j0 * istride[k];
        f(off, std::min(kColumnBlock, inner - j0));
      }
    });
  }
};

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
namespace act_avx512 {
EMBER_AVX512_BEGIN
#include "activation_loops.h"
#include "softmax_loops.h"
EMBER_ISA_END
}

namespace {

void check_unary(const TensorView& x, const TensorView& out, const char* op) {
  check_float(x, op, "input");
  check_same_dtype(x, out, op);
  check_same_shape(x, out, op);
}
void check_backward(const TensorView& g, const TensorView& saved, const TensorView& gx, const char* op,
                    const char* saved_name) {
  check_float(g, op, "grad_output");
  EMBER_CHECK_TYPE(saved.dtype == g.dtype && gx.dtype == g.dtype, op, ": grad_output, ", saved_name,
                   " and grad_input must share one dtype, got ", dtype_name(g.dtype), ", ", dtype_name(saved.dtype),
                   ", ", dtype_name(gx.dtype));
  check_same_shape(g, saved, op);
  check_same_shape(g, gx, op);
}

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
  check_unary(x, out, name);
  EMBER_DISPATCH_FLOAT(x.dtype, name, run_unary<T>(x, out, Op{}));
}
template <class Op>
void backward(const TensorView& g, const TensorView& saved, const TensorView& gx, const char* name,
              const char* saved_name) {
  check_backward(g, saved, gx, name, saved_name);
  EMBER_DISPATCH_FLOAT(g.dtype, name, run_binary<T>(g, saved, gx, Op{}));
}

int check_dim(const TensorView& x, int64_t dim, const char* op) {
  int nd = x.ndim == 0 ? 1 : x.ndim;
  EMBER_CHECK_INDEX(dim >= -nd && dim < nd, op, ": dim ", dim, " is out of range for a ", x.ndim,
                    "-D tensor (expected in [", -nd, ", ", nd - 1, "])");
  return static_cast<int>(dim < 0 ? dim + nd : dim);
}

// A 0-d tensor is softmaxed as one element over a dim of size 1.
TensorView as_1d(const TensorView& t) {
  if (t.ndim > 0) return t;
  TensorView v = t;
  v.ndim = 1;
  v.shape[0] = 1;
  v.strides[0] = 1;
  return v;
}

template <bool Log>
void softmax_forward(const TensorView& x0, int64_t dim, const TensorView& out0, const char* name) {
  check_unary(x0, out0, name);
  TensorView x = as_1d(x0), out = as_1d(out0);
  int d = check_dim(x0, dim, name);
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
  check_backward(g0, y0, gx0, name, "output");
  TensorView g = as_1d(g0), y = as_1d(y0), gx = as_1d(gx0);
  int d = check_dim(g0, dim, name);
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
  check_unary(x, out, "leaky_relu");
  EMBER_DISPATCH_FLOAT(x.dtype, "leaky_relu", run_unary<T>(x, out, LeakyRelu<T>{static_cast<T>(negative_slope)}));
}
// saved: the input x
void leaky_relu_backward(const TensorView& g, const TensorView& x, double negative_slope, const TensorView& gx) {
  check_backward(g, x, gx, "leaky_relu_backward", "input");
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
