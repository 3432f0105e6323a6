// Pooling: max_pool2d (with argmax indices), avg_pool2d, adaptive_avg_pool2d; forward and
// backward. NCHW, float32/float64, contiguous; every (n, c) plane is independent, so the
// kernels run in parallel over N*C planes and each plane's loop is compiled per ISA.
//
//   x (N,C,H,W)   out, indices, grad_out (N,C,P,Q)   grad_x (N,C,H,W)
#include <algorithm>
#include <cstring>
#include <limits>
#include "../check.h"
#include "../ops.h"
#include "dispatch.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "pool_loops.h"
#include "isa_instantiate.h"


namespace {


int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t dil, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  // in ceil mode the last window must start inside the input or the left padding (torch)
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

void check_pool_geometry(const TensorView& x, const PoolGeometry& g, const char* op) {
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

// Checks x (N,C,H,W) and y (N,C,P,Q) with P, Q from the geometry (y_name names y).
void check_pool(const TensorView& x, const TensorView& y, const PoolGeometry& g, const char* op, const char* x_name,
                const char* y_name) {
  check_float(x, op, x_name);
  check_same_dtype(x, y, op);
  check_ndim(x, 4, op, x_name);
  check_ndim(y, 4, op, y_name);
  check_contiguous(x, op, x_name);
  check_contiguous(y, op, y_name);
  check_pool_geometry(x, g, op);
  const int64_t P = pool_out_size(x.shape[2], g.kernel_h, g.stride_h, g.pad_h, g.dil_h, g.ceil_mode);
  const int64_t Q = pool_out_size(x.shape[3], g.kernel_w, g.stride_w, g.pad_w, g.dil_w, g.ceil_mode);
  EMBER_CHECK(y.shape[0] == x.shape[0] && y.shape[1] == x.shape[1] && y.shape[2] == P && y.shape[3] == Q, op, ": ",
              y_name, " shape ", y.shape_str(), ", expected (", x.shape[0], ", ", x.shape[1], ", ", P, ", ", Q, ")");
}

void check_avg_args(const PoolGeometry& g, int64_t divisor_override, const char* op) {
  EMBER_CHECK(g.dil_h == 1 && g.dil_w == 1, op, ": average pooling takes no dilation, got (", g.dil_h, ", ", g.dil_w,
              ")");
  EMBER_CHECK(divisor_override >= 0, op, ": divisor_override must be positive (0 for none), got ", divisor_override);
}

// Planes per thread below which a pooling loop stays on one thread.
int64_t plane_grain(int64_t plane_elems) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(plane_elems, 1)); }

template <class T>
void max_forward_impl(const TensorView& xv, const TensorView& yv, const TensorView* iv, const PoolGeometry& g) {
  const int64_t NC = xv.shape[0] * xv.shape[1], H = xv.shape[2], W = xv.shape[3], P = yv.shape[2], Q = yv.shape[3];
  const T* x = xv.ptr<T>();
  T* y = yv.ptr<T>();
  int64_t* idx = iv ? iv->ptr<int64_t>() : nullptr;
  const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
                          g.pad_w == 0 && g.dil_h == 1 && g.dil_w == 1 && 2 * P <= H && 2 * Q <= W;
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      int64_t* ic = idx ? idx + c * P * Q : nullptr;
      if (two_by_two) EMBER_ISA_CALL(max_pool_2x2_plane<T>, x + c * H * W, W, P, Q, y + c * P * Q, ic);
      else EMBER_ISA_CALL(max_pool_plane<T>, x + c * H * W, H, W, g, P, Q, y + c * P * Q, ic);
    }
  });
}

template <class T>
void max_backward_impl(const TensorView& dyv, const TensorView& iv, const TensorView& dxv) {
  const int64_t NC = dxv.shape[0] * dxv.shape[1], HW = dxv.shape[2] * dxv.shape[3];
  const int64_t PQ = dyv.shape[2] * dyv.shape[3];
  const T* dy = dyv.ptr<T>();
  const int64_t* idx = iv.ptr<int64_t>();
  T* dx = dxv.ptr<T>();
  // Indices are checked while scattering; a bad one is reported after the parallel loop.
  bool any_bad = false;
  int64_t bad = 0;
  parallel_for(NC, plane_grain(HW), [&](int64_t c0, int64_t c1) {
    std::memset(dx + c0 * HW, 0, sizeof(T) * (c1 - c0) * HW);
    for (int64_t c = c0; c < c1; ++c) {
      const T* g = dy + c * PQ;
      const int64_t* ic = idx + c * PQ;
      T* d = dx + c * HW;
      for (int64_t i = 0; i < PQ; ++i) {
        const int64_t j = ic[i];
        if (j < 0 || j >= HW) {
#pragma omp critical(ember_max_pool_bad_index)
          {
            any_bad = true;
            bad = j;
          }
          continue;
        }
        d[j] += g[i];
      }
    }
  });
  EMBER_CHECK_INDEX(!any_bad, "max_pool2d_backward: index ", bad, " is out of range for planes of ", HW,
                    " elements");
}

template <class T>
void avg_forward_impl(const TensorView& xv, const TensorView& yv, const PoolGeometry& g, bool cip, int64_t divisor) {
  const int64_t NC = xv.shape[0] * xv.shape[1], H = xv.shape[2], W = xv.shape[3], P = yv.shape[2], Q = yv.shape[3];
  const T* x = xv.ptr<T>();
  T* y = yv.ptr<T>();
  const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
                          g.pad_w == 0 && divisor == 0 && 2 * P <= H && 2 * Q <= W;
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      if (two_by_two) EMBER_ISA_CALL(avg_pool_2x2_plane<T>, x + c * H * W, W, P, Q, y + c * P * Q);
      else EMBER_ISA_CALL(avg_pool_plane<T>, x + c * H * W, H, W, g, cip, divisor, P, Q, y + c * P * Q);
    }
  });
}

template <class T>
void avg_backward_impl(const TensorView& dyv, const TensorView& dxv, const PoolGeometry& g, bool cip, int64_t divisor) {
  const int64_t NC = dxv.shape[0] * dxv.shape[1], H = dxv.shape[2], W = dxv.shape[3];
  const int64_t P = dyv.shape[2], Q = dyv.shape[3];
  const T* dy = dyv.ptr<T>();
  T* dx = dxv.ptr<T>();
  const bool two_by_two = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
                          g.pad_w == 0 && divisor == 0 && 2 * P <= H && 2 * Q <= W;
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    std::memset(dx + c0 * H * W, 0, sizeof(T) * (c1 - c0) * H * W);
    for (int64_t c = c0; c < c1; ++c) {
      if (two_by_two) EMBER_ISA_CALL(avg_pool_2x2_backward_plane<T>, dy + c * P * Q, W, P, Q, dx + c * H * W);
      else EMBER_ISA_CALL(avg_pool_backward_plane<T>, dy + c * P * Q, H, W, g, cip, divisor, P, Q, dx + c * H * W);
    }
  });
}

template <class T>
void adaptive_forward_impl(const TensorView& xv, const TensorView& yv) {
  const int64_t NC = xv.shape[0] * xv.shape[1], H = xv.shape[2], W = xv.shape[3], P = yv.shape[2], Q = yv.shape[3];
  const T* x = xv.ptr<T>();
  T* y = yv.ptr<T>();
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) EMBER_ISA_CALL(adaptive_avg_plane<T>, x + c * H * W, H, W, P, Q, y + c * P * Q);
  });
}

template <class T>
void adaptive_backward_impl(const TensorView& dyv, const TensorView& dxv) {
  const int64_t NC = dxv.shape[0] * dxv.shape[1], H = dxv.shape[2], W = dxv.shape[3];
  const int64_t P = dyv.shape[2], Q = dyv.shape[3];
  const T* dy = dyv.ptr<T>();
  T* dx = dxv.ptr<T>();
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    std::memset(dx + c0 * H * W, 0, sizeof(T) * (c1 - c0) * H * W);
    for (int64_t c = c0; c < c1; ++c)
      EMBER_ISA_CALL(adaptive_avg_backward_plane<T>, dy + c * P * Q, H, W, P, Q, dx + c * H * W);
  });
}

void check_adaptive(const TensorView& x, const TensorView& y, const char* op, const char* x_name, const char* y_name) {
  check_float(x, op, x_name);
  check_same_dtype(x, y, op);
  check_ndim(x, 4, op, x_name);
  check_ndim(y, 4, op, y_name);
  check_contiguous(x, op, x_name);
  check_contiguous(y, op, y_name);
  EMBER_CHECK(y.shape[0] == x.shape[0] && y.shape[1] == x.shape[1], op, ": ", y_name, " shape ", y.shape_str(),
              " does not match ", x_name, " ", x.shape_str(), " in (N, C)");
  EMBER_CHECK(y.shape[2] >= 1 && y.shape[3] >= 1, op, ": output size must be >= 1, got (", y.shape[2], ", ",
              y.shape[3], ")");
  EMBER_CHECK((x.shape[2] >= 1 && x.shape[3] >= 1) || x.shape[0] * x.shape[1] == 0, op, ": input spatial size (",
              x.shape[2], ", ", x.shape[3], ") must be non-empty");
}

}  // namespace

void max_pool2d_forward(const TensorView& x, const TensorView& out, const TensorView* indices, const PoolGeometry& g) {
  const char* op = "max_pool2d";
  check_pool(x, out, g, op, "x", "out");
  if (indices) {
    check_dtype(*indices, DType::i64, op, "indices");
    check_same_shape(*indices, out, op);
    check_contiguous(*indices, op, "indices");
  }
  EMBER_DISPATCH_FLOAT(x.dtype, op, max_forward_impl<T>(x, out, indices, g));
}

void max_pool2d_backward(const TensorView& grad_out, const TensorView& indices, const TensorView& grad_x) {
  const char* op = "max_pool2d_backward";
  check_float(grad_out, op, "grad_out");
  check_same_dtype(grad_out, grad_x, op);
  check_dtype(indices, DType::i64, op, "indices");
  check_ndim(grad_out, 4, op, "grad_out");
  check_ndim(grad_x, 4, op, "grad_x");
  check_same_shape(grad_out, indices, op);
  for (const TensorView* t : {&grad_out, &indices, &grad_x}) check_contiguous(*t, op, "every operand");
  EMBER_CHECK(grad_out.shape[0] == grad_x.shape[0] && grad_out.shape[1] == grad_x.shape[1], op, ": grad_out ",
              grad_out.shape_str(), " and grad_x ", grad_x.shape_str(), " differ in (N, C)");
  EMBER_DISPATCH_FLOAT(grad_out.dtype, op, max_backward_impl<T>(grad_out, indices, grad_x));
}

void avg_pool2d_forward(const TensorView& x, const TensorView& out, const PoolGeometry& g, bool count_include_pad,
                        int64_t divisor_override) {
  const char* op = "avg_pool2d";
  check_pool(x, out, g, op, "x", "out");
  check_avg_args(g, divisor_override, op);
  EMBER_DISPATCH_FLOAT(x.dtype, op, avg_forward_impl<T>(x, out, g, count_include_pad, divisor_override));
}

void avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x, const PoolGeometry& g,
                         bool count_include_pad, int64_t divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_pool(grad_x, grad_out, g, op, "grad_x", "grad_out");
  check_avg_args(g, divisor_override, op);
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op, avg_backward_impl<T>(grad_out, grad_x, g, count_include_pad, divisor_override));
}

void adaptive_avg_pool2d_forward(const TensorView& x, const TensorView& out) {
  const char* op = "adaptive_avg_pool2d";
  check_adaptive(x, out, op, "x", "out");
  EMBER_DISPATCH_FLOAT(x.dtype, op, adaptive_forward_impl<T>(x, out));
}

void adaptive_avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_adaptive(grad_x, grad_out, op, "grad_x", "grad_out");
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op, adaptive_backward_impl<T>(grad_out, grad_x));
}

}  // namespace ember::cpu
