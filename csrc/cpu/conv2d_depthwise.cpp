// Depthwise conv2d (groups == C == K, weight (C, 1, R, S)): each channel is filtered by
// its own R x S kernel, too little work per group for the GEMM path (a (1, R*S) @
// (R*S, P*Q) product per group and image). Direct kernels instead, forward next to the
// two backward passes, vectorized over output columns (conv2d_depthwise_loops.h).
// conv2d.cpp checks the arguments and sends depthwise shapes here (choose_algo).
//
// Threads: forward and backward data take (n, c) planes; backward weight takes channels
// (each thread sums its channels over the batch, so no partial sums are merged).
// Scratch: per-thread buffers that grow to the largest plane seen and are kept.
#include <algorithm>
#include <cstring>
#include <vector>
#include "../check.h"
#include "conv2d_depthwise.h"
#include "dispatch.h"

#define EMBER_INLINE __attribute__((always_inline)) inline
#define EMBER_FLATTEN __attribute__((flatten))

namespace ember::cpu {

#define EMBER_ISA_LOOPS "conv2d_depthwise_loops.h"
#include "isa_instantiate.h"

namespace {

// The geometry of one plane in the phase layout (conv2d_depthwise_loops.h).
struct DwPlan {
  int64_t N, C, H, W, R, S, P, Q;
  int64_t sh, sw, Hp, Ws, Qr, RS;
  std::vector<int64_t> toff;  // (R*S) tap offsets into the phase planes
  int64_t plane() const { return sw * Hp * Ws; }
};

DwPlan plan(const TensorView& x, const TensorView& w, const TensorView& y, const ConvGeometry& g, size_t elem) {
  DwPlan d;
  d.N = x.shape[0], d.C = x.shape[1], d.H = x.shape[2], d.W = x.shape[3];
  d.R = w.shape[2], d.S = w.shape[3], d.P = y.shape[2], d.Q = y.shape[3];
  d.sh = g.stride_h, d.sw = g.stride_w, d.RS = d.R * d.S;
  d.Hp = d.H + g.pad_top + g.pad_bottom;
  const int64_t Wp = d.W + g.pad_left + g.pad_right, L = static_cast<int64_t>(64 / elem);
  d.Qr = (d.Q + L - 1) / L * L;
  const int64_t max_shift = (d.S - 1) * g.dil_w / d.sw;
  d.Ws = std::max((Wp + d.sw - 1) / d.sw, d.Qr + max_shift);
  d.toff.resize(d.RS);
  for (int64_t r = 0; r < d.R; ++r)
    for (int64_t s = 0; s < d.S; ++s) {
      const int64_t col = s * g.dil_w;
      d.toff[r * d.S + s] = ((col % d.sw) * d.Hp + r * g.dil_h) * d.Ws + col / d.sw;
    }
  return d;
}

// A per-thread growable buffer (slot 0: a phase-layout plane, 1: padded rows of dy).
template <class T>
T* scratch(int slot, int64_t n) {
  static thread_local std::vector<T> buf[2];
  if (static_cast<int64_t>(buf[slot].size()) < n) buf[slot].resize(n);
  return buf[slot].data();
}

// Planes below this many multiply-adds each stay on one thread when there are few of them.
constexpr int64_t kPlaneGrainMacs = 1 << 16;

int64_t plane_grain(const DwPlan& d) {
  return std::max<int64_t>(1, kPlaneGrainMacs / std::max<int64_t>(1, d.P * d.Q * d.RS));
}

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView* bv, const TensorView& yv,
                  const ConvGeometry& g) {
  const DwPlan d = plan(xv, wv, yv, g, sizeof(T));
  const T* x = xv.ptr<T>();
  const T* w = wv.ptr<T>();
  const T* bias = bv ? bv->ptr<T>() : nullptr;
  T* y = yv.ptr<T>();
  parallel_for(d.N * d.C, plane_grain(d), [&](int64_t i0, int64_t i1) {
    T* xph = scratch<T>(0, d.plane());
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t c = i % d.C;
      EMBER_ISA_CALL(dw_pad_plane<T>, x + i * d.H * d.W, d.H, d.W, g.pad_top, g.pad_left, d.sw, d.Hp, d.Ws, xph);
      EMBER_ISA_CALL(dw_forward_plane<T>, xph, d.Ws, d.sh, d.toff.data(), w + c * d.RS, d.RS,
                     bias ? bias[c] : T(0), d.P, d.Q, y + i * d.P * d.Q);
    }
  });
}

template <class T>
void backward_data_impl(const TensorView& dyv, const TensorView& wv, const TensorView& dxv, const ConvGeometry& g) {
  const DwPlan d = plan(dxv, wv, dyv, g, sizeof(T));
  const T* dy = dyv.ptr<T>();
  const T* w = wv.ptr<T>();
  T* dx = dxv.ptr<T>();
  parallel_for(d.N * d.C, plane_grain(d), [&](int64_t i0, int64_t i1) {
    T* dxph = scratch<T>(0, d.plane());
    T* dyp = scratch<T>(1, d.P * d.Qr);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t c = i % d.C;
      std::memset(dxph, 0, sizeof(T) * d.plane());
      EMBER_ISA_CALL(dw_pad_rows<T>, dy + i * d.P * d.Q, d.P, d.Q, d.Qr, dyp);
      EMBER_ISA_CALL(dw_backward_data_plane<T>, dyp, d.Qr, d.Ws, d.sh, d.toff.data(), w + c * d.RS, d.RS, d.P, dxph);
      EMBER_ISA_CALL(dw_crop_plane<T>, dxph, d.H, d.W, g.pad_top, g.pad_left, d.sw, d.Hp, d.Ws, dx + i * d.H * d.W);
    }
  });
}

template <class T>
void backward_weight_impl(const TensorView& xv, const TensorView& dyv, const TensorView& dwv, const ConvGeometry& g) {
  const DwPlan d = plan(xv, dwv, dyv, g, sizeof(T));
  const T* x = xv.ptr<T>();
  const T* dy = dyv.ptr<T>();
  T* dw = dwv.ptr<T>();
  parallel_for(d.C, std::max<int64_t>(1, plane_grain(d) / std::max<int64_t>(1, d.N)), [&](int64_t c0, int64_t c1) {
    T* xph = scratch<T>(0, d.plane());
    T* dyp = scratch<T>(1, d.P * d.Qr);
    std::vector<double> acc(d.RS);
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t i = n * d.C + c;
        EMBER_ISA_CALL(dw_pad_plane<T>, x + i * d.H * d.W, d.H, d.W, g.pad_top, g.pad_left, d.sw, d.Hp, d.Ws, xph);
        EMBER_ISA_CALL(dw_pad_rows<T>, dy + i * d.P * d.Q, d.P, d.Q, d.Qr, dyp);
        EMBER_ISA_CALL(dw_backward_weight_plane<T>, xph, dyp, d.Qr, d.Ws, d.sh, d.toff.data(), d.RS, d.P,
                       acc.data());
      }
      for (int64_t t = 0; t < d.RS; ++t) dw[c * d.RS + t] = static_cast<T>(acc[t]);
    }
  });
}

}  // namespace

void conv2d_depthwise_forward(const TensorView& x, const TensorView& weight, const TensorView* bias,
                              const TensorView& out, const ConvGeometry& g) {
  EMBER_DISPATCH_FLOAT(x.dtype, "conv2d", forward_impl<T>(x, weight, bias, out, g));
}

void conv2d_depthwise_backward_data(const TensorView& grad_out, const TensorView& weight, const TensorView& grad_x,
                                    const ConvGeometry& g) {
  EMBER_DISPATCH_FLOAT(grad_x.dtype, "conv2d_backward_data", backward_data_impl<T>(grad_out, weight, grad_x, g));
}

void conv2d_depthwise_backward_weight(const TensorView& x, const TensorView& grad_out, const TensorView& grad_weight,
                                      const ConvGeometry& g) {
  EMBER_DISPATCH_FLOAT(x.dtype, "conv2d_backward_weight", backward_weight_impl<T>(x, grad_out, grad_weight, g));
}

}  // namespace ember::cpu
