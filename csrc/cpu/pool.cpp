// Pooling: max_pool2d (with argmax indices), avg_pool2d, adaptive_avg_pool2d; forward and
// backward. NCHW, float32/float64, contiguous; every (n, c) plane is independent, so the
// kernels run in parallel over N*C planes and each plane's loop is compiled per ISA.
//
//   x (N,C,H,W)   out, indices, grad_out (N,C,P,Q)   grad_x (N,C,H,W)
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <limits>
#include "../conv_pool_checks.h"
#include "../ops.h"
#include "dispatch.h"

namespace ember::cpu {

#define EMBER_ISA_LOOPS "pool_loops.h"
#include "isa_instantiate.h"


namespace {


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
  // no dilation, column stride 1 or 2, plane offsets in int32: the vectorized rows
  const int strided = g.dil_h == 1 && g.dil_w == 1 && (g.stride_w == 1 || g.stride_w == 2) && H * W < (int64_t(1) << 31)
                          ? static_cast<int>(g.stride_w) : 0;
  // 3x3, stride 2, padding 1 without ceil mode's extra window: the separable run
  const bool three_by_three = g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 2 && g.stride_w == 2 &&
                              g.pad_h == 1 && g.pad_w == 1 && g.dil_h == 1 && g.dil_w == 1 && P == (H + 1) / 2 &&
                              Q == (W + 1) / 2 && H * W < (int64_t(1) << 31);
  parallel_for(NC, plane_grain(H * W), [&](int64_t c0, int64_t c1) {
    if (three_by_three) {
      EMBER_ISA_CALL(max_pool_3x3s2_planes<T>, x + c0 * H * W, c1 - c0, H, W, P, Q, y + c0 * P * Q,
                     idx ? idx + c0 * P * Q : nullptr);
      return;
    }
    if (two_by_two && H == 2 * P) {  // the planes' row pairs are evenly spaced: one run of rows
      EMBER_ISA_CALL(max_pool_2x2_rows<T>, x + c0 * H * W, W, (c1 - c0) * P, P, Q, y + c0 * P * Q,
                     idx ? idx + c0 * P * Q : nullptr);
      return;
    }
    for (int64_t c = c0; c < c1; ++c) {
      int64_t* ic = idx ? idx + c * P * Q : nullptr;
      if (two_by_two) EMBER_ISA_CALL(max_pool_2x2_rows<T>, x + c * H * W, W, P, P, Q, y + c * P * Q, ic);
      else if (strided == 1) EMBER_ISA_CALL(max_pool_plane_s1<T>, x + c * H * W, H, W, g, P, Q, y + c * P * Q, ic);
      else if (strided == 2) EMBER_ISA_CALL(max_pool_plane_s2<T>, x + c * H * W, H, W, g, P, Q, y + c * P * Q, ic);
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

}  // namespace

void max_pool2d_forward(const TensorView& x, const TensorView& out, const TensorView* indices, const PoolGeometry& g) {
  const char* op = "max_pool2d";
  check_pool(x, out, g, op, "x", "out");
  if (indices) check_max_pool_indices(out, *indices, op);
  EMBER_DISPATCH_FLOAT(x.dtype, op, max_forward_impl<T>(x, out, indices, g));
}

void max_pool2d_backward(const TensorView& grad_out, const TensorView& indices, const TensorView& grad_x) {
  const char* op = "max_pool2d_backward";
  check_max_pool_backward(grad_out, indices, grad_x, op);
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
