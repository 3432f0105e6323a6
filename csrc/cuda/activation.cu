// Activations (relu, leaky_relu, sigmoid, tanh, gelu) and softmax / log_softmax over any
// dim on the GPU, each forward next to its backward: the contract of cpu/activation.cpp.
//
// Elementwise ones go through elementwise.cuh: 128-bit loads and stores with a grid-stride
// loop when the views are contiguous and aligned, the strided index path otherwise.
// Device math is the accurate kind (expf, tanhf, erfc; nvcc without --use_fast_math keeps
// IEEE division and denormals, so sigmoid(-100) is the denormal 3.7e-44). GELU runs in
// double even for float32: its tails (gelu(-10) = -7.6e-23) need the argument of erfc/exp
// to more bits than float has, as the CPU's vmath does with its double argument.
//
// Softmax views the tensor as (outer, C, inner) around `dim` (dim_layout.h) and reduces
// along C with one team per row: a warp (rows up to 1024) or a block (longer rows),
// max and sum by warp shuffles; when inner > 1 (the reduced dim is strided) one thread
// per (outer, inner) position walks C, so neighbouring threads read neighbouring memory.
#include <cmath>
#include "../dim_layout.h"
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"
#include "elementwise.cuh"
#include "team.cuh"

namespace ember::cuda {
namespace {

// ---- double-precision forms, used for float64 and (via a cast) float32 gelu
__device__ __forceinline__ double sigmoid_d(double x) {
  const double e = ::exp(-::fabs(x));
  return (x < 0 ? e : 1.0) / (1.0 + e);
}
__device__ __forceinline__ double gelu_erf_d(double x) {  // x Phi(x), the tail of Phi from erfc
  const double hc = 0.5 * ::erfc(::fabs(x) * 0.70710678118654752440);
  return x < 0 ? x * hc : x * (1.0 - hc);
}
__device__ __forceinline__ double gelu_erf_grad_d(double x) {  // Phi(x) + x phi(x)
  const double hc = 0.5 * ::erfc(::fabs(x) * 0.70710678118654752440);
  const double cdf = x < 0 ? hc : 1.0 - hc;
  return cdf + x * 0.39894228040143267794 * ::exp(-0.5 * x * x);
}
__device__ __forceinline__ double gelu_tanh_arg_d(double x) { return 1.5957691216057307117 * (x + 0.044715 * x * x * x); }
__device__ __forceinline__ double gelu_tanh_d(double x) { return x * sigmoid_d(gelu_tanh_arg_d(x)); }
__device__ __forceinline__ double gelu_tanh_grad_d(double x) {
  const double a = gelu_tanh_arg_d(x);
  const double s = sigmoid_d(a), oms = sigmoid_d(-a);
  return s + x * (s * oms) * 1.5957691216057307117 * (1.0 + 0.134145 * x * x);
}

// ---- forward functors op(x), backward functors op(grad, saved) -> grad_input.
// NaN propagates as in PyTorch: relu(NaN) = NaN, and relu's backward passes the
// gradient where the output is not <= 0 (NaN included), like threshold_backward.
struct Relu { template <class T> __device__ T operator()(T x) const { return x <= T(0) ? T(0) : x; } };
struct ReluBackward { template <class T> __device__ T operator()(T g, T y) const { return y <= T(0) ? T(0) : g; } };
template <class T> struct LeakyRelu {
  T slope;
  __device__ T operator()(T x) const { return x > T(0) ? x : x * slope; }
};
template <class T> struct LeakyReluBackward {
  T slope;
  __device__ T operator()(T g, T x) const { return x > T(0) ? g : g * slope; }
};
// e = exp(-|x|) so nothing overflows; e / (1 + e) keeps the negative tail's relative accuracy.
struct Sigmoid {
  __device__ float operator()(float x) const {
    const float e = expf(-fabsf(x));
    return (x < 0.0f ? e : 1.0f) / (1.0f + e);
  }
  __device__ double operator()(double x) const { return sigmoid_d(x); }
};
struct SigmoidBackward { template <class T> __device__ T operator()(T g, T y) const { return g * (y * (T(1) - y)); } };
struct Tanh {
  __device__ float operator()(float x) const { return tanhf(x); }
  __device__ double operator()(double x) const { return ::tanh(x); }
};
struct TanhBackward { template <class T> __device__ T operator()(T g, T y) const { return g * (T(1) - y * y); } };
struct GeluErf { template <class T> __device__ T operator()(T x) const { return static_cast<T>(gelu_erf_d(x)); } };
struct GeluErfBackward {
  template <class T> __device__ T operator()(T g, T x) const { return g * static_cast<T>(gelu_erf_grad_d(x)); }
};
struct GeluTanh { template <class T> __device__ T operator()(T x) const { return static_cast<T>(gelu_tanh_d(x)); } };
struct GeluTanhBackward {
  template <class T> __device__ T operator()(T g, T x) const { return g * static_cast<T>(gelu_tanh_grad_d(x)); }
};

template <class Op>
void unary(const TensorView& x, const TensorView& out, const char* name, Op op = {}) {
  check_activation_args(x, out, name);
  EMBER_DISPATCH_FLOAT(x.dtype, name, run_unary<Op, T, T>(x, out, op, name));
}
template <class Op>
void backward(const TensorView& g, const TensorView& saved, const TensorView& gx, const char* name,
              const char* saved_name) {
  check_activation_backward_args(g, saved, gx, name, saved_name);
  EMBER_DISPATCH_FLOAT(g.dtype, name, run_binary<Op, T, T>(g, saved, gx, Op{}, name));
}

// ---- softmax. Row r of the (outer, C, inner) view: outer index r / inner, inner
// position r % inner; its elements are C steps of cstride from the returned offsets.
template <int N>
__device__ __forceinline__ void row_offsets(const DimLayout<N>& L, int64_t r, int64_t* off) {
  L.outer_offsets(r / L.inner, off);
  const int64_t j = r % L.inner;
  for (int k = 0; k < N; ++k) off[k] += j * L.istride[k];
}

// x, y (outer, C, inner) any strides; one Team per row (team.cuh).
//   softmax:     y = exp(x - max) / sum exp(x - max)
//   log_softmax: y = (x - max) - log sum exp(x - max)
// A NaN never wins the max, but exp(NaN - max) makes the sum (so the row) NaN, as the CPU.
template <class Team, class T, bool Log>
__global__ void softmax_rows(DimLayout<2> L, const T* __restrict__ x, T* __restrict__ y) {
  const Team team;
  const int64_t rows = L.nout * L.inner, C = L.C, sx = L.cstride[0], sy = L.cstride[1];
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    int64_t off[2];
    row_offsets(L, r, off);
    const T* xr = x + off[0];
    T* yr = y + off[1];
    T m = -INFINITY;
    for (int64_t c = team.lane(); c < C; c += team.size()) m = max_keep(m, xr[c * sx]);
    m = team.all_reduce(m, MaxOp{});
    T s = 0;
    for (int64_t c = team.lane(); c < C; c += team.size()) s += exp_t(xr[c * sx] - m);
    s = team.all_reduce(s, SumOp{});
    if (Log) {
      const T ls = log_t(s);
      for (int64_t c = team.lane(); c < C; c += team.size()) yr[c * sy] = (xr[c * sx] - m) - ls;
    } else {
      const T inv = T(1) / s;
      for (int64_t c = team.lane(); c < C; c += team.size()) yr[c * sy] = exp_t(xr[c * sx] - m) * inv;
    }
  }
}

// g, y, gx (outer, C, inner):
//   softmax:     gx = y * (g - sum_C(g * y))
//   log_softmax: gx = g - exp(y) * sum_C(g)
template <class Team, class T, bool Log>
__global__ void softmax_backward_rows(DimLayout<3> L, const T* __restrict__ g, const T* __restrict__ y,
                                      T* __restrict__ gx) {
  const Team team;
  const int64_t rows = L.nout * L.inner, C = L.C, sg = L.cstride[0], sy = L.cstride[1], so = L.cstride[2];
  for (int64_t r = team.first_row(); r < rows; r += team.row_step()) {
    int64_t off[3];
    row_offsets(L, r, off);
    const T* gr = g + off[0];
    const T* yr = y + off[1];
    T* outr = gx + off[2];
    T s = 0;
    for (int64_t c = team.lane(); c < C; c += team.size()) s += Log ? gr[c * sg] : gr[c * sg] * yr[c * sy];
    s = team.all_reduce(s, SumOp{});
    for (int64_t c = team.lane(); c < C; c += team.size()) {
      if (Log) outr[c * so] = gr[c * sg] - exp_t(yr[c * sy]) * s;
      else outr[c * so] = yr[c * sy] * (gr[c * sg] - s);
    }
  }
}

template <bool Log>
void softmax_forward(const TensorView& x0, int64_t dim, const TensorView& out0, const char* name) {
  check_activation_args(x0, out0, name);
  const TensorView x = as_1d(x0), out = as_1d(out0);
  const int d = softmax_dim(x0, dim, name);
  if (x.numel() == 0) return;
  const DimLayout<2> L({&x, &out}, d);
  EMBER_DISPATCH_FLOAT(x.dtype, name, {
    launch_teams(L.nout * L.inner, L.C, L.inner > 1, [&](auto team, unsigned blocks) {
      softmax_rows<decltype(team), T, Log><<<blocks, kThreads, 0, current_stream()>>>(L, x.ptr<T>(), out.ptr<T>());
    });
  });
  EMBER_CUDA_LAUNCH_CHECK(name);
}

template <bool Log>
void softmax_backward_impl(const TensorView& g0, const TensorView& y0, int64_t dim, const TensorView& gx0,
                           const char* name) {
  check_activation_backward_args(g0, y0, gx0, name, "output");
  const TensorView g = as_1d(g0), y = as_1d(y0), gx = as_1d(gx0);
  const int d = softmax_dim(g0, dim, name);
  if (g.numel() == 0) return;
  const DimLayout<3> L({&g, &y, &gx}, d);
  EMBER_DISPATCH_FLOAT(g.dtype, name, {
    launch_teams(L.nout * L.inner, L.C, L.inner > 1, [&](auto team, unsigned blocks) {
      softmax_backward_rows<decltype(team), T, Log>
          <<<blocks, kThreads, 0, current_stream()>>>(L, g.ptr<T>(), y.ptr<T>(), gx.ptr<T>());
    });
  });
  EMBER_CUDA_LAUNCH_CHECK(name);
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
  EMBER_DISPATCH_FLOAT(x.dtype, "leaky_relu",
                       run_unary<LeakyRelu<T>, T, T>(x, out, LeakyRelu<T>{static_cast<T>(negative_slope)}, "leaky_relu"));
}
// saved: the input x
void leaky_relu_backward(const TensorView& g, const TensorView& x, double negative_slope, const TensorView& gx) {
  check_activation_backward_args(g, x, gx, "leaky_relu_backward", "input");
  EMBER_DISPATCH_FLOAT(g.dtype, "leaky_relu_backward",
                       run_binary<LeakyReluBackward<T>, T, T>(g, x, gx, LeakyReluBackward<T>{static_cast<T>(negative_slope)},
                                                              "leaky_relu_backward"));
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

}  // namespace ember::cuda
