// Argument checks of conv2d and pooling, shared by the CPU and CUDA implementations so
// both reject the same mistakes with the same messages and agree on the output sizes.
#pragma once
#include "check.h"
#include "ops.h"

namespace ember {

// ---- conv2d ----
//   x (N,C,H,W)  weight (K,Cg,R,S)  out (N,K,P,Q)   G = groups, Cg = C/G, Kg = K/G, CRSg = Cg*R*S
struct ConvShape {
  int64_t N, C, H, W, K, Cg, R, S, P, Q, G, Kg, CRSg;
};

// Checks x, weight and y (out or grad_out, named y_name) against the geometry; returns the sizes.
inline ConvShape check_conv(const TensorView& x, const TensorView& w, const TensorView& y, const ConvGeometry& g,
                            const char* op, const char* y_name) {
  check_float(x, op, "x");
  check_same_dtype(x, w, op);
  check_same_dtype(x, y, op);
  check_ndim(x, 4, op, "x");
  check_ndim(w, 4, op, "weight");
  check_ndim(y, 4, op, y_name);
  check_contiguous(x, op, "x");
  check_contiguous(w, op, "weight");
  check_contiguous(y, op, y_name);
  EMBER_CHECK(g.stride_h >= 1 && g.stride_w >= 1, op, ": stride must be >= 1, got (", g.stride_h, ", ", g.stride_w, ")");
  EMBER_CHECK(g.dil_h >= 1 && g.dil_w >= 1, op, ": dilation must be >= 1, got (", g.dil_h, ", ", g.dil_w, ")");
  EMBER_CHECK(g.pad_top >= 0 && g.pad_bottom >= 0 && g.pad_left >= 0 && g.pad_right >= 0, op,
              ": padding must be >= 0, got (", g.pad_top, ", ", g.pad_bottom, ", ", g.pad_left, ", ", g.pad_right, ")");
  EMBER_CHECK(g.groups >= 1, op, ": groups must be >= 1, got ", g.groups);
  ConvShape s;
  s.N = x.shape[0], s.C = x.shape[1], s.H = x.shape[2], s.W = x.shape[3];
  s.K = w.shape[0], s.Cg = w.shape[1], s.R = w.shape[2], s.S = w.shape[3];
  s.G = g.groups;
  EMBER_CHECK(s.C % s.G == 0 && s.K % s.G == 0, op, ": groups=", s.G, " must divide both in_channels (", s.C,
              ") and out_channels (", s.K, ")");
  EMBER_CHECK(s.Cg * s.G == s.C, op, ": weight ", w.shape_str(), " expects ", s.Cg * s.G,
              " input channels (weight.shape[1] * groups), x ", x.shape_str(), " has ", s.C);
  const int64_t eff_h = g.dil_h * (s.R - 1) + 1, eff_w = g.dil_w * (s.S - 1) + 1;
  const int64_t Hp = s.H + g.pad_top + g.pad_bottom, Wp = s.W + g.pad_left + g.pad_right;
  EMBER_CHECK(s.R >= 1 && s.S >= 1 && eff_h <= Hp && eff_w <= Wp, op, ": kernel (", s.R, ", ", s.S,
              ") with dilation (", g.dil_h, ", ", g.dil_w, ") is larger than the padded input (", Hp, ", ", Wp, ")");
  s.P = (Hp - eff_h) / g.stride_h + 1;
  s.Q = (Wp - eff_w) / g.stride_w + 1;
  EMBER_CHECK(y.shape[0] == s.N && y.shape[1] == s.K && y.shape[2] == s.P && y.shape[3] == s.Q, op, ": ", y_name,
              " shape ", y.shape_str(), ", expected (", s.N, ", ", s.K, ", ", s.P, ", ", s.Q, ")");
  s.Kg = s.K / s.G;
  s.CRSg = s.Cg * s.R * s.S;
  return s;
}

inline void check_conv_bias(const TensorView& x, const TensorView& bias, int64_t K, const char* op) {
  check_same_dtype(x, bias, op);
  check_contiguous(bias, op, "bias");
  EMBER_CHECK(bias.ndim == 1 && bias.shape[0] == K, op, ": bias shape ", bias.shape_str(), ", expected (", K, ",)");
}

inline void check_conv_backward_bias(const TensorView& grad_out, const TensorView& grad_bias, const char* op) {
  check_float(grad_out, op, "grad_out");
  check_same_dtype(grad_out, grad_bias, op);
  check_ndim(grad_out, 4, op, "grad_out");
  check_contiguous(grad_out, op, "grad_out");
  check_contiguous(grad_bias, op, "grad_bias");
  EMBER_CHECK(grad_bias.ndim == 1 && grad_bias.shape[0] == grad_out.shape[1], op, ": grad_bias shape ",
              grad_bias.shape_str(), ", expected (", grad_out.shape[1], ",)");
}

// ---- pooling ----
//   x (N,C,H,W)   out, indices, grad_out (N,C,P,Q)   grad_x (N,C,H,W)
inline int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t dil, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // in ceil mode the last window must start inside the input or the left padding (torch)
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

inline void check_pool_geometry(const TensorView& x, const PoolGeometry& g, const char* op) {
  EMBER_CHECK(g.kernel_h >= 1 && g.kernel_w >= 1, op, ": kernel_size must be >= 1, got (", g.kernel_h, ", ",
              g.kernel_w, ")");
  EMBER_CHECK(g.stride_h >= 1 && g.stride_w >= 1, op, ": stride must be >= 1, got (", g.stride_h, ", ", g.stride_w,
              ")");
  EMBER_CHECK(g.pad_h >= 0 && g.pad_w >= 0 && 2 * g.pad_h <= g.kernel_h && 2 * g.pad_w <= g.kernel_w, op,
              ": padding must be >= 0 and at most half the kernel size, got padding (", g.pad_h, ", ", g.pad_w,
              ") for kernel (", g.kernel_h, ", ", g.kernel_w, ")");
  EMBER_CHECK(g.dil_h >= 1 && g.dil_w >= 1, op, ": dilation must be >= 1, got (", g.dil_h, ", ", g.dil_w, ")");
  const int64_t eh = g.dil_h * (g.kernel_h - 1) + 1, ew = g.dil_w * (g.kernel_w - 1) + 1;
  EMBER_CHECK(eh <= x.shape[2] + 2 * g.pad_h && ew <= x.shape[3] + 2 * g.pad_w, op, ": kernel (", g.kernel_h, ", ",
              g.kernel_w, ") with dilation (", g.dil_h, ", ", g.dil_w, ") spans (", eh, ", ", ew,
              "), larger than the padded input (", x.shape[2] + 2 * g.pad_h, ", ", x.shape[3] + 2 * g.pad_w, ")");
}

// x and y: float, one dtype, 4-D, contiguous (a pooling's input and output).
inline void check_nchw_pair(const TensorView& x, const TensorView& y, const char* op, const char* x_name,
                            const char* y_name) {
  check_float(x, op, x_name);
  check_same_dtype(x, y, op);
  check_ndim(x, 4, op, x_name);
  check_ndim(y, 4, op, y_name);
  check_contiguous(x, op, x_name);
  check_contiguous(y, op, y_name);
}

// Checks x (N,C,H,W) and y (N,C,P,Q) with P, Q from the geometry (y_name names y).
inline void check_pool(const TensorView& x, const TensorView& y, const PoolGeometry& g, const char* op,
                       const char* x_name, const char* y_name) {
  check_nchw_pair(x, y, op, x_name, y_name);
  check_pool_geometry(x, g, op);
  const int64_t P = pool_out_size(x.shape[2], g.kernel_h, g.stride_h, g.pad_h, g.dil_h, g.ceil_mode);
  const int64_t Q = pool_out_size(x.shape[3], g.kernel_w, g.stride_w, g.pad_w, g.dil_w, g.ceil_mode);
  EMBER_CHECK(y.shape[0] == x.shape[0] && y.shape[1] == x.shape[1] && y.shape[2] == P && y.shape[3] == Q, op, ": ",
              y_name, " shape ", y.shape_str(), ", expected (", x.shape[0], ", ", x.shape[1], ", ", P, ", ", Q, ")");
}

inline void check_max_pool_indices(const TensorView& out, const TensorView& indices, const char* op) {
  check_dtype(indices, DType::i64, op, "indices");
  check_same_shape(indices, out, op);
  check_contiguous(indices, op, "indices");
}

inline void check_max_pool_backward(const TensorView& grad_out, const TensorView& indices, const TensorView& grad_x,
                                    const char* op) {
  check_float(grad_out, op, "grad_out");
  check_same_dtype(grad_out, grad_x, op);
  check_dtype(indices, DType::i64, op, "indices");
  check_ndim(grad_out, 4, op, "grad_out");
  check_ndim(grad_x, 4, op, "grad_x");
  check_same_shape(grad_out, indices, op);
  for (const TensorView* t : {&grad_out, &indices, &grad_x}) check_contiguous(*t, op, "every operand");
  EMBER_CHECK(grad_out.shape[0] == grad_x.shape[0] && grad_out.shape[1] == grad_x.shape[1], op, ": grad_out ",
              grad_out.shape_str(), " and grad_x ", grad_x.shape_str(), " differ in (N, C)");
}

inline void check_avg_args(const PoolGeometry& g, int64_t divisor_override, const char* op) {
  EMBER_CHECK(g.dil_h == 1 && g.dil_w == 1, op, ": average pooling takes no dilation, got (", g.dil_h, ", ", g.dil_w,
              ")");
  EMBER_CHECK(divisor_override >= 0, op, ": divisor_override must be positive (0 for none), got ", divisor_override);
}

inline void check_adaptive(const TensorView& x, const TensorView& y, const char* op, const char* x_name,
                           const char* y_name) {
  check_nchw_pair(x, y, op, x_name, y_name);
  EMBER_CHECK(y.shape[0] == x.shape[0] && y.shape[1] == x.shape[1], op, ": ", y_name, " shape ", y.shape_str(),
              " does not match ", x_name, " ", x.shape_str(), " in (N, C)");
  EMBER_CHECK(y.shape[2] >= 1 && y.shape[3] >= 1, op, ": output size must be >= 1, got (", y.shape[2], ", ",
              y.shape[3], ")");
  EMBER_CHECK((x.shape[2] >= 1 && x.shape[3] >= 1) || x.shape[0] * x.shape[1] == 0, op, ": input spatial size (",
              x.shape[2], ", ", x.shape[3], ") must be non-empty");
}

}  // namespace ember
