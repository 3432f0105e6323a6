// conv2d: forward, backward-data, backward-weight and backward-bias, NCHW, float32/float64.
//
//   x (N,C,H,W)  weight (K,C/G,R,S)  bias (K)  out (N,K,P,Q)   G = groups
//
// Six algorithms, chosen per shape (see choose_algo; measurements in bench/RESULTS.md):
//   winograd   float32 3x3, stride 1, undilated, ungrouped, >= 16 channels each way:
//              F(4x4, 3x3) in conv2d_winograd.cpp, 3-4x fewer multiplies than a GEMM.
//   pointwise  1x1, stride 1, no padding: out[n] = W @ x[n] is already a GEMM, (K,C) @ (C,H*W).
//   im2col     strided convs: col[n] (C*R*S, P*Q) = patches of x[n], then out[n] = W @ col[n],
//              one GEMM (K/G, C/G*R*S) @ (C/G*R*S, P*Q) per group, written straight into NCHW.
//   wide       stride 1: im2col in the padded image's row layout (rows Wp = W + padding long),
//              where each col row is one long contiguous copy; the GEMM computes P*Wp
//              columns and the Wp - Q junk ones per row are dropped. Cheaper than im2col's
//              short rows on small images (14x14: one copy of 224 instead of 14 of 14).
//              With C/G >= 16 all three passes skip col altogether: one GEMM per tap (r, s),
//              W_rs (K/G, C/G) @ the padded image shifted by that tap (a strided view), and
//              the transposed products for the data and weight gradients.
//   direct     stride 1, groups 1, C*R*S tiny (first layers, C = 1): a FIR filter over the
//              padded image (conv2d_loops.h), since a GEMM with inner dimension 9 is all packing.
//   depthwise  groups == C == K > 1: one R x S filter per channel, direct kernels in
//              conv2d_depthwise.cpp (a per-group GEMM would be (1, R*S) @ (R*S, P*Q)).
// Backward data is W^T @ dy[n] (into a col buffer, then col2im), backward weight accumulates
// dy[n] @ col[n]^T over the batch (per tap for the shifted-GEMM path). All GEMMs go to ember::cpu::sgemm/dgemm, so a faster GEMM
// speeds conv up unchanged.
//
// Threads: with at least as many images as threads, each thread takes whole images with its
// own workspace and calls the GEMM from inside the parallel region, where it runs on one
// thread (no synchronization inside an image; the col buffer stays in its core's cache). With fewer images (inference, N=1) the images go
// one by one and the GEMM and im2col use all threads inside.
//
// Workspace: per-thread buffers that grow to the largest size seen and are never freed, so
// steady-state training allocates nothing here.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include "../conv_pool_checks.h"
#include "../ops.h"
#include "conv2d_depthwise.h"
#include "dispatch.h"
#include "conv2d_winograd.h"
#include "gemm.h"
#include "workspace.h"

namespace ember::cpu {

// ---- loops compiled per ISA ----
#define EMBER_ISA_LOOPS "conv2d_loops.h"
#include "isa_instantiate.h"


namespace {


thread_local Workspace tl_col;      // im2col / padded image, one image at a time
thread_local Workspace tl_pad;      // padded image and wide rows of the wide algorithm
thread_local Workspace tl_wrep;     // repacked weight (calling thread)
thread_local Workspace tl_partial;  // per-thread weight-gradient partial sums (calling thread)

inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

enum class Algo { pointwise, im2col, wide, direct, depthwise };

// The largest C*R*S for which the direct kernel beats im2col + GEMM (measured on the
// LeNet/MNIST first layer, C=1 3x3 and 5x5; bench/bench_conv.py).
constexpr int64_t kDirectMaxCRS = 27;

// Input channels per group from which the stride-1 forward uses shifted GEMMs (one per tap,
// inner dimension C/G) instead of the wide im2col (one GEMM, inner dimension C/G*R*S):
// it skips writing and re-reading col, which measured 5-25% faster at C = 32 and 64 (with
// an OpenBLAS sgemm standing in for ours); with few channels the short GEMMs lose.
constexpr int64_t kTapMinChannels = 16;

using Shape = ConvShape;

Algo choose_algo(const Shape& s, const ConvGeometry& g) {
  if (s.G > 1 && s.G == s.C && s.G == s.K) return Algo::depthwise;
  const bool stride1 = g.stride_h == 1 && g.stride_w == 1;
  if (s.R == 1 && s.S == 1 && stride1 && g.pad_top == 0 && g.pad_bottom == 0 && g.pad_left == 0 &&
      g.pad_right == 0)
    return Algo::pointwise;
  if (stride1 && s.G == 1 && s.CRSg <= kDirectMaxCRS) return Algo::direct;
  return stride1 ? Algo::wide : Algo::im2col;
}

// Multiply-adds below which a conv stays on one thread: waking threads costs more.
constexpr int64_t kParallelMinMacs = 1 << 18;

// Images go to threads whole when there are enough of them (see the header comment).
int batch_threads(const Shape& s) {
  if (omp_in_parallel()) return 1;
  if (s.N * s.K * s.CRSg * s.P * s.Q < kParallelMinMacs) return 1;
  int64_t t = omp_get_max_threads();
  return s.N >= t ? static_cast<int>(t) : 1;
}

// The padded image for the direct kernel: planes of Hp*Wp plus a tail for the last taps.
// Full 64-wide blocks of the forward kernel and the 16-wide dots of the weight gradient may
// read up to 64 elements past the last real output; the tail is zeros.
struct PadLayout {
  int64_t Hp, Wp, plane, n_wide;
};
PadLayout pad_layout(const Shape& s, const ConvGeometry& g) {
  PadLayout L;
  L.Hp = s.H + g.pad_top + g.pad_bottom;
  L.Wp = s.W + g.pad_left + g.pad_right;
  L.n_wide = (s.P * L.Wp + 15) / 16 * 16;
  L.plane = (L.Hp * L.Wp + (s.S - 1) * g.dil_w + 64 + 15) / 16 * 16;
  return L;
}

// col (C*R*S, P*Q) = im2col of one image, split over threads when inner_parallel.
template <class T>
void make_col(const T* xn, const Shape& s, const ConvGeometry& g, T* col, bool inner_parallel) {
  const int64_t CRS = s.C * s.R * s.S, PQ = s.P * s.Q;
  auto rows = [&](int64_t r0, int64_t r1) {
    EMBER_ISA_CALL(im2col<T>, xn, s.H, s.W, g, s.R, s.S, s.P, s.Q, r0, r1, col);
  };
  if (inner_parallel) parallel_for(CRS, std::max<int64_t>(1, 16384 / std::max<int64_t>(PQ, 1)), rows);
  else rows(0, CRS);
}

// xpad = the padded image.
template <class T>
void make_pad(const T* xn, const Shape& s, const ConvGeometry& g, const PadLayout& L, T* xpad, bool inner_parallel) {
  auto chans = [&](int64_t c0, int64_t c1) {
    EMBER_ISA_CALL(pad_image<T>, xn + c0 * s.H * s.W, c1 - c0, s.H, s.W, g.pad_top, g.pad_left, L.Hp, L.Wp, L.plane,
                  xpad + c0 * L.plane);
  };
  if (inner_parallel) parallel_for(s.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(L.plane, 1)), chans);
  else chans(0, s.C);
}

// col (C*R*S, jn) = wide im2col columns [j0, j0 + jn).
template <class T>
void make_wide_col(const T* xpad, const Shape& s, const ConvGeometry& g, const PadLayout& L, int64_t j0, int64_t jn,
                   T* col, bool inner_parallel) {
  const int64_t CRS = s.C * s.R * s.S;
  auto rows = [&](int64_t r0, int64_t r1) {
    EMBER_ISA_CALL(wide_im2col<T>, xpad, L.plane, L.Wp, s.R, s.S, g.dil_h, g.dil_w, j0, jn, r0, r1, col);
  };
  if (inner_parallel) parallel_for(CRS, std::max<int64_t>(1, 16384 / std::max<int64_t>(jn, 1)), rows);
  else rows(0, CRS);
}

// Columns per chunk of the wide algorithm: the col chunk (C*R*S, chunk) stays around
// 512 KiB, so it is still in L2 when the GEMM packs it right after im2col wrote it.
int64_t wide_chunk(int64_t CRS, int64_t n, size_t elem) {
  int64_t c = static_cast<int64_t>((512 * 1024) / elem) / std::max<int64_t>(CRS, 1);
  c = std::max<int64_t>(64, c / 16 * 16);
  if (c >= n) return n;
  const int64_t pieces = (n + c - 1) / c;  // even pieces, rounded up to 16
  return std::min(n, ((n + pieces - 1) / pieces + 15) / 16 * 16);
}

// The shifted-GEMM passes (Cg >= kTapMinChannels) want the weight as R*S matrices
// (K, C/G): wr[t][k][c] = w[k][c][t]. Repacked once per call, shared read-only by threads.
template <class T>
T* repack_taps(const T* w, const Shape& s) {
  const int64_t RS = s.R * s.S;
  T* wr = tl_wrep.get<T>(RS * s.K * s.Cg);
  for (int64_t k = 0; k < s.K; ++k)
    for (int64_t c = 0; c < s.Cg; ++c)
      for (int64_t t = 0; t < RS; ++t) wr[(t * s.K + k) * s.Cg + c] = w[(k * s.Cg + c) * RS + t];
  return wr;
}

// Offset of tap t = (r, s) in the padded image's wide layout.
inline int64_t tap_shift(const Shape& s, const ConvGeometry& g, int64_t Wp, int64_t t) {
  return (t / s.S) * g.dil_h * Wp + (t % s.S) * g.dil_w;
}

// image(n) for every image n < N, the images split into contiguous runs over nt threads
// (each thread keeps its own thread_local buffers warm across its run).
template <class F>
void for_each_image(int64_t N, int nt, F&& image) {
  if (nt > 1) {
    parallel_region(nt, [&](int64_t t, int64_t T) {
      for (int64_t n = N * t / T; n < N * (t + 1) / T; ++n) image(n);
    });
  } else {
    for (int64_t n = 0; n < N; ++n) image(n);
  }
}

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView* bv, const TensorView& yv,
                  const Shape& s, const ConvGeometry& g) {
  const T* x = xv.ptr<T>();
  const T* w = wv.ptr<T>();
  const T* bias = bv ? bv->ptr<T>() : nullptr;
  T* y = yv.ptr<T>();
  const int64_t PQ = s.P * s.Q, HW = s.H * s.W, CRS = s.C * s.R * s.S;
  if (s.N == 0 || s.K == 0 || PQ == 0) return;
  const Algo algo = choose_algo(s, g);
  const int nt = batch_threads(s);
  const bool inner_parallel = nt == 1;
  // The shifted-GEMM forward (see forward_by_taps) wants the weight as R*S matrices (K, C/G):
  // repacked once per call, shared read-only by the threads.
  const bool taps = algo == Algo::wide && s.Cg >= kTapMinChannels;
  const T* wr = taps ? repack_taps(w, s) : nullptr;

  auto image = [&](int64_t n) {
    const T* xn = x + n * s.C * HW;
    T* yn = y + n * s.K * PQ;
    if (taps) {
      // Shifted GEMMs, no im2col at all: in the wide layout, tap (r, s) of every channel is
      // the padded image shifted by r*dh*Wp + s*dw, i.e. a (C/G, P*Wp) matrix view of xpad
      // with row stride = plane. wide (K, P*Wp) = sum over taps of W_rs (K, C/G) @ that view.
      const PadLayout L = pad_layout(s, g);
      const int64_t nw = s.P * L.Wp, RS = s.R * s.S;
      T* xpad = tl_pad.get<T>(s.C * L.plane + s.K * nw);
      T* wide = xpad + s.C * L.plane;
      make_pad(xn, s, g, L, xpad, inner_parallel);
      for (int64_t grp = 0; grp < s.G; ++grp)
        for (int64_t t = 0; t < RS; ++t)
          gemm(false, false, s.Kg, nw, s.Cg, T(1), wr + (t * s.K + grp * s.Kg) * s.Cg, s.Cg,
               xpad + grp * s.Cg * L.plane + tap_shift(s, g, L.Wp, t), L.plane, t ? T(1) : T(0),
               wide + grp * s.Kg * nw, nw);
      EMBER_ISA_CALL(unwiden_rows<T>, wide, bias, 0, s.K, s.P, s.Q, L.Wp, yn);
      return;
    }
    if (algo == Algo::direct) {
      const PadLayout L = pad_layout(s, g);
      T* xpad = tl_col.get<T>(s.C * L.plane);
      EMBER_ISA_CALL(pad_image<T>, xn, s.C, s.H, s.W, g.pad_top, g.pad_left, L.Hp, L.Wp, L.plane, xpad);
      EMBER_ISA_CALL(direct_forward_image<T>, xpad, s.C, L.Hp, L.Wp, L.plane, w, bias, s.K, s.R, s.S, g.dil_h,
                    g.dil_w, s.P, s.Q, yn);
      return;
    }
    if (algo == Algo::wide) {
      const PadLayout L = pad_layout(s, g);
      const int64_t n = s.P * L.Wp;
      const int64_t jt = wide_chunk(CRS, n, sizeof(T));
      T* xpad = tl_pad.get<T>(s.C * L.plane + s.K * n);
      T* wide = xpad + s.C * L.plane;
      T* col = tl_col.get<T>(CRS * jt);
      make_pad(xn, s, g, L, xpad, inner_parallel);
      for (int64_t j0 = 0; j0 < n; j0 += jt) {
        const int64_t jn = std::min(jt, n - j0);
        make_wide_col(xpad, s, g, L, j0, jn, col, inner_parallel);
        for (int64_t grp = 0; grp < s.G; ++grp)
          gemm(false, false, s.Kg, jn, s.CRSg, T(1), w + grp * s.Kg * s.CRSg, s.CRSg, col + grp * s.CRSg * jn, jn,
               T(0), wide + grp * s.Kg * n + j0, n);
      }
      EMBER_ISA_CALL(unwiden_rows<T>, wide, bias, 0, s.K, s.P, s.Q, L.Wp, yn);
      return;
    }
    const T* B = xn;
    if (algo == Algo::im2col) {
      T* col = tl_col.get<T>(CRS * PQ);
      make_col(xn, s, g, col, inner_parallel);
      B = col;
    }
    if (bias) EMBER_ISA_CALL(fill_rows<T>, yn, bias, s.K, PQ);
    for (int64_t grp = 0; grp < s.G; ++grp) {
      T* yg = yn + grp * s.Kg * PQ;
      if (s.CRSg == 0) {  // no input channels: out = bias
        if (!bias) std::memset(yg, 0, sizeof(T) * s.Kg * PQ);
        continue;
      }
      gemm(false, false, s.Kg, PQ, s.CRSg, T(1), w + grp * s.Kg * s.CRSg, s.CRSg, B + grp * s.CRSg * PQ, PQ,
           bias ? T(1) : T(0), yg, PQ);
    }
  };

  for_each_image(s.N, nt, image);
}

template <class T>
void backward_data_impl(const TensorView& dyv, const TensorView& wv, const TensorView& dxv, const Shape& s,
                        const ConvGeometry& g, Algo algo) {
  const T* dy = dyv.ptr<T>();
  const T* w = wv.ptr<T>();
  T* dx = dxv.ptr<T>();
  const int64_t PQ = s.P * s.Q, HW = s.H * s.W, CRS = s.C * s.R * s.S;
  if (s.N == 0 || s.C * HW == 0) return;
  if (s.K == 0 || PQ == 0) {  // nothing flows back
    std::memset(dx, 0, sizeof(T) * s.N * s.C * HW);
    return;
  }
  const bool pointwise = algo == Algo::pointwise;
  const bool taps = algo == Algo::wide && s.Cg >= kTapMinChannels;
  const T* wr = taps ? repack_taps(w, s) : nullptr;
  const int nt = batch_threads(s);
  const bool inner_parallel = nt == 1;

  auto image = [&](int64_t n) {
    const T* dyn = dy + n * s.K * PQ;
    T* dxn = dx + n * s.C * HW;
    if (taps) {
      // the adjoint of the shifted-GEMM forward: every tap adds W_rs^T @ dy_wide into the
      // padded dx shifted by that tap (a strided view, row stride = plane); no col buffer
      const PadLayout L = pad_layout(s, g);
      const int64_t nw = s.P * L.Wp, RS = s.R * s.S;
      T* dxpad = tl_pad.get<T>(s.C * L.plane + s.K * nw);
      T* dyw = dxpad + s.C * L.plane;
      EMBER_ISA_CALL(widen_rows<T>, dyn, s.K, s.P, s.Q, L.Wp, nw, dyw);
      std::memset(dxpad, 0, sizeof(T) * s.C * L.plane);
      for (int64_t grp = 0; grp < s.G; ++grp)
        for (int64_t t = 0; t < RS; ++t)
          gemm(true, false, s.Cg, nw, s.Kg, T(1), wr + (t * s.K + grp * s.Kg) * s.Cg, s.Cg, dyw + grp * s.Kg * nw, nw,
               T(1), dxpad + grp * s.Cg * L.plane + tap_shift(s, g, L.Wp, t), L.plane);
      auto crop = [&](int64_t c0, int64_t c1) {
        EMBER_ISA_CALL(crop_image<T>, dxpad, c0, c1, s.H, s.W, g.pad_top, g.pad_left, L.Wp, L.plane, dxn);
      };
      if (inner_parallel) parallel_for(s.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(HW, 1)), crop);
      else crop(0, s.C);
      return;
    }
    if (algo == Algo::wide) {
      // dcol_wide = W^T @ dy_wide (junk columns come out 0 for finite W), folded by long adds into a
      // padded dx whose interior is dx[n]
      const PadLayout L = pad_layout(s, g);
      const int64_t nw = s.P * L.Wp;
      const int64_t jt = wide_chunk(CRS, nw, sizeof(T));
      T* dxpad = tl_pad.get<T>(s.C * L.plane + s.K * nw);
      T* dyw = dxpad + s.C * L.plane;
      T* dcol = tl_col.get<T>(CRS * jt);
      EMBER_ISA_CALL(widen_rows<T>, dyn, s.K, s.P, s.Q, L.Wp, nw, dyw);
      std::memset(dxpad, 0, sizeof(T) * s.C * L.plane);
      for (int64_t j0 = 0; j0 < nw; j0 += jt) {
        const int64_t jn = std::min(jt, nw - j0);
        for (int64_t grp = 0; grp < s.G; ++grp)
          gemm(true, false, s.CRSg, jn, s.Kg, T(1), w + grp * s.Kg * s.CRSg, s.CRSg, dyw + grp * s.Kg * nw + j0, nw,
               T(0), dcol + grp * s.CRSg * jn, jn);
        auto fold = [&](int64_t c0, int64_t c1) {
          EMBER_ISA_CALL(wide_col2im<T>, dcol, L.plane, L.Wp, s.R, s.S, g.dil_h, g.dil_w, j0, jn, c0, c1, dxpad);
        };
        if (inner_parallel) parallel_for(s.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(s.R * s.S * jn, 1)), fold);
        else fold(0, s.C);
      }
      auto crop = [&](int64_t c0, int64_t c1) {
        EMBER_ISA_CALL(crop_image<T>, dxpad, c0, c1, s.H, s.W, g.pad_top, g.pad_left, L.Wp, L.plane, dxn);
      };
      if (inner_parallel) parallel_for(s.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(HW, 1)), crop);
      else crop(0, s.C);
      return;
    }
    // dcol (C*R*S, P*Q) = W^T @ dy[n], per group; pointwise writes dx directly
    T* dcol = pointwise ? dxn : tl_col.get<T>(CRS * PQ);
    for (int64_t grp = 0; grp < s.G; ++grp)
      gemm(true, false, s.CRSg, PQ, s.Kg, T(1), w + grp * s.Kg * s.CRSg, s.CRSg, dyn + grp * s.Kg * PQ, PQ, T(0),
           dcol + grp * s.CRSg * PQ, PQ);
    if (pointwise) return;
    auto fold = [&](int64_t c0, int64_t c1) {
      std::memset(dxn + c0 * HW, 0, sizeof(T) * (c1 - c0) * HW);
      EMBER_ISA_CALL(col2im<T>, dcol, s.H, s.W, g, s.R, s.S, s.P, s.Q, c0, c1, dxn);
    };
    if (inner_parallel) parallel_for(s.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(s.R * s.S * PQ, 1)), fold);
    else fold(0, s.C);
  };

  for_each_image(s.N, nt, image);
}

template <class T>
void backward_weight_impl(const TensorView& xv, const TensorView& dyv, const TensorView& dwv, const Shape& s,
                          const ConvGeometry& g, Algo algo) {
  const T* x = xv.ptr<T>();
  const T* dy = dyv.ptr<T>();
  T* dw = dwv.ptr<T>();
  const int64_t PQ = s.P * s.Q, HW = s.H * s.W, CRS = s.C * s.R * s.S, WN = s.K * s.CRSg;
  if (WN == 0) return;
  if (s.N == 0 || PQ == 0) {
    std::memset(dw, 0, sizeof(T) * WN);
    return;
  }
  const int nt = batch_threads(s);
  const bool inner_parallel = nt == 1;
  // Thread 0 accumulates into dw itself, thread t > 0 into partial[t-1]; summed at the end.
  // The shifted-GEMM path accumulates in the tap-major layout (R*S, K, C/G) instead, every
  // thread into its own partial, transposed into dw by the final sum.
  const bool taps = algo == Algo::wide && s.Cg >= kTapMinChannels;
  T* partial = (nt > 1 || taps) ? tl_partial.get<T>((taps ? nt : nt - 1) * WN) : nullptr;

  auto images = [&](int64_t n0, int64_t n1, T* acc) {
    if (algo == Algo::direct) std::memset(acc, 0, sizeof(T) * WN);
    for (int64_t n = n0; n < n1; ++n) {
      const T* xn = x + n * s.C * HW;
      const T* dyn = dy + n * s.K * PQ;
      if (algo == Algo::direct) {
        const PadLayout L = pad_layout(s, g);
        T* xpad = tl_col.get<T>(s.C * L.plane + s.K * L.n_wide);
        T* dyw = xpad + s.C * L.plane;
        EMBER_ISA_CALL(pad_image<T>, xn, s.C, s.H, s.W, g.pad_top, g.pad_left, L.Hp, L.Wp, L.plane, xpad);
        EMBER_ISA_CALL(widen_rows<T>, dyn, s.K, s.P, s.Q, L.Wp, L.n_wide, dyw);
        EMBER_ISA_CALL(direct_backward_weight_image<T>, xpad, s.C, L.Wp, L.plane, dyw, L.n_wide, s.K, s.R, s.S,
                      g.dil_h, g.dil_w, acc);
        continue;
      }
      if (taps) {
        // acc[t] (K/G, C/G) += dy_wide (K/G, P*Wp) @ (padded x shifted by tap t)^T
        const PadLayout L = pad_layout(s, g);
        const int64_t nw = s.P * L.Wp, RS = s.R * s.S;
        T* xpad = tl_pad.get<T>(s.C * L.plane + s.K * nw);
        T* dyw = xpad + s.C * L.plane;
        make_pad(xn, s, g, L, xpad, inner_parallel);
        EMBER_ISA_CALL(widen_rows<T>, dyn, s.K, s.P, s.Q, L.Wp, nw, dyw);
        for (int64_t grp = 0; grp < s.G; ++grp)
          for (int64_t t = 0; t < RS; ++t)
            gemm(false, true, s.Kg, s.Cg, nw, T(1), dyw + grp * s.Kg * nw, nw,
                 xpad + grp * s.Cg * L.plane + tap_shift(s, g, L.Wp, t), L.plane, n == n0 ? T(0) : T(1),
                 acc + (t * s.K + grp * s.Kg) * s.Cg, s.Cg);
        continue;
      }
      if (algo == Algo::wide) {
        // acc += dy_wide @ col_wide^T: dy_wide's zero junk columns cancel col's junk ones
        // (when finite: see backward_weight_exact)
        const PadLayout L = pad_layout(s, g);
        const int64_t nw = s.P * L.Wp;
        const int64_t jt = wide_chunk(CRS, nw, sizeof(T));
        T* xpad = tl_pad.get<T>(s.C * L.plane + s.K * nw);
        T* dyw = xpad + s.C * L.plane;
        T* col = tl_col.get<T>(CRS * jt);
        make_pad(xn, s, g, L, xpad, inner_parallel);
        EMBER_ISA_CALL(widen_rows<T>, dyn, s.K, s.P, s.Q, L.Wp, nw, dyw);
        for (int64_t j0 = 0; j0 < nw; j0 += jt) {
          const int64_t jn = std::min(jt, nw - j0);
          make_wide_col(xpad, s, g, L, j0, jn, col, inner_parallel);
          for (int64_t grp = 0; grp < s.G; ++grp)
            gemm(false, true, s.Kg, s.CRSg, jn, T(1), dyw + grp * s.Kg * nw + j0, nw, col + grp * s.CRSg * jn, jn,
                 n == n0 && j0 == 0 ? T(0) : T(1), acc + grp * s.Kg * s.CRSg, s.CRSg);
        }
        continue;
      }
      const T* B = xn;
      if (algo == Algo::im2col) {
        T* col = tl_col.get<T>(CRS * PQ);
        make_col(xn, s, g, col, inner_parallel);
        B = col;
      }
      // acc (K/G, C/G*R*S) += dy[n] (K/G, P*Q) @ col^T, per group
      for (int64_t grp = 0; grp < s.G; ++grp)
        gemm(false, true, s.Kg, s.CRSg, PQ, T(1), dyn + grp * s.Kg * PQ, PQ, B + grp * s.CRSg * PQ, PQ,
             n == n0 ? T(0) : T(1), acc + grp * s.Kg * s.CRSg, s.CRSg);
    }
  };

  if (taps) {
    int64_t used = 1;
    if (nt > 1) {
      parallel_region(nt, [&](int64_t t, int64_t T_) {
        if (t == 0) used = T_;
        const int64_t n0 = s.N * t / T_, n1 = s.N * (t + 1) / T_;
        if (n0 < n1) images(n0, n1, partial + t * WN);
        else std::memset(partial + t * WN, 0, sizeof(T) * WN);
      });
    } else {
      images(0, s.N, partial);
    }
    // dw[k][c][t] = sum over threads of partial[thread][t][k][c]
    const int64_t RS = s.R * s.S;
    parallel_for(s.K, std::max<int64_t>(1, 16384 / std::max<int64_t>(s.CRSg * nt, 1)), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t c = 0; c < s.Cg; ++c)
          for (int64_t t = 0; t < RS; ++t) {
            T sum = T(0);
            for (int64_t p = 0; p < used; ++p) sum += partial[p * WN + (t * s.K + k) * s.Cg + c];
            dw[(k * s.Cg + c) * RS + t] = sum;
          }
    });
    return;
  }
  if (nt > 1) {
    int64_t used = nt;
    parallel_region(nt, [&](int64_t t, int64_t T_) {
      if (t == 0) used = T_;
      const int64_t n0 = s.N * t / T_, n1 = s.N * (t + 1) / T_;
      T* acc = t == 0 ? dw : partial + (t - 1) * WN;
      if (n0 < n1) images(n0, n1, acc);
      else std::memset(acc, 0, sizeof(T) * WN);
    });
    // dw += partials, split over the threads by element range (a second region, not a
    // barrier: a thread that threw above would never reach one)
    parallel_region(nt, [&](int64_t t, int64_t T_) {
      const int64_t e0 = WN * t / T_, e1 = WN * (t + 1) / T_;
      for (int64_t p = 0; p + 1 < used; ++p) EMBER_ISA_CALL(add_into<T>, dw + e0, partial + p * WN + e0, e1 - e0);
    });
  } else {
    images(0, s.N, dw);
  }
}

template <class T>
void backward_bias_impl(const TensorView& dyv, const TensorView& dbv) {
  const T* dy = dyv.ptr<T>();
  T* db = dbv.ptr<T>();
  const int64_t N = dyv.shape[0], K = dyv.shape[1], PQ = dyv.shape[2] * dyv.shape[3];
  parallel_for(K, std::max<int64_t>(1, 32768 / std::max<int64_t>(N * PQ, 1)), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) {
        double part = 0;
        const T* row = dy + (n * K + k) * PQ;
        switch (isa()) {
          case Isa::avx512: part = isa_avx512::row_sum<T>(row, PQ); break;
          case Isa::avx2: part = isa_avx2::row_sum<T>(row, PQ); break;
          default: part = isa_scalar::row_sum<T>(row, PQ);
        }
        acc += part;
      }
      db[k] = static_cast<T>(acc);
    }
  });
}

WinogradShape winograd_shape(const Shape& s, const ConvGeometry& g) {
  return {s.N, s.C, s.H, s.W, s.K, s.P, s.Q, g.pad_top, g.pad_left};
}

// The backward passes with an IEEE-exact treatment of inf and NaN. The fast algorithms
// can turn an inf into NaN where the gradient's sum has one inf term: the wide layouts'
// zero junk columns of dy meet the image's wrapped-around values (dw) or the weights (dx)
// as 0 * inf, and Winograd's transforms add and subtract across tiles. So when a
// non-finite value is there (dw: in the result, which is small; dx: in the weights), the
// pass is done by im2col, which multiplies exactly the pairs of the gradient's sum
// (non-finite data only pays for it).
template <class T>
bool all_finite(const T* p, int64_t n) {
  T acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += p[i] * T(0);
  return acc == T(0);
}

template <class T>
void backward_data_exact(const TensorView& dy, const TensorView& w, const TensorView& dx, const Shape& s,
                         const ConvGeometry& g) {
  Algo algo = choose_algo(s, g);
  if (std::is_same_v<T, float> && winograd_applies(s.C, s.K, s.R, s.S, g)) {
    if (winograd_backward_data(dy.ptr<float>(), w.ptr<float>(), dx.ptr<float>(), winograd_shape(s, g))) return;
    algo = Algo::im2col;  // Winograd met a non-finite value
  } else if ((algo == Algo::wide || algo == Algo::direct) && !all_finite(w.ptr<T>(), s.K * s.CRSg)) {
    algo = Algo::im2col;
  }
  backward_data_impl<T>(dy, w, dx, s, g, algo);
}

template <class T>
void backward_weight_exact(const TensorView& x, const TensorView& dy, const TensorView& dw, const Shape& s,
                           const ConvGeometry& g) {
  const Algo algo = choose_algo(s, g);
  bool exact = false;  // whether the algorithm that ran multiplies only the gradient's pairs
  if (std::is_same_v<T, float> && winograd_applies(s.C, s.K, s.R, s.S, g)) {
    winograd_backward_weight(x.ptr<float>(), dy.ptr<float>(), dw.ptr<float>(), winograd_shape(s, g));
  } else {
    backward_weight_impl<T>(x, dy, dw, s, g, algo);
    exact = algo != Algo::wide && algo != Algo::direct;
  }
  if (!exact && !all_finite(dw.ptr<T>(), s.K * s.CRSg)) backward_weight_impl<T>(x, dy, dw, s, g, Algo::im2col);
}

}  // namespace

void conv2d_forward(const TensorView& x, const TensorView& weight, const TensorView* bias, const TensorView& out,
                    const ConvGeometry& g) {
  const char* op = "conv2d";
  Shape s = check_conv(x, weight, out, g, op, "out");
  if (bias) check_conv_bias(x, *bias, s.K, op);
  if (choose_algo(s, g) == Algo::depthwise) return conv2d_depthwise_forward(x, weight, bias, out, g);
  if (x.dtype == DType::f32 && winograd_applies(s.C, s.K, s.R, s.S, g) &&
      winograd_forward(x.ptr<float>(), weight.ptr<float>(), bias ? bias->ptr<float>() : nullptr, out.ptr<float>(),
                       winograd_shape(s, g)))
    return;  // else non-finite values: recomputed below
  EMBER_DISPATCH_FLOAT(x.dtype, op, forward_impl<T>(x, weight, bias, out, s, g));
}

void conv2d_backward_data(const TensorView& grad_out, const TensorView& weight, const TensorView& grad_x,
                          const ConvGeometry& g) {
  const char* op = "conv2d_backward_data";
  Shape s = check_conv(grad_x, weight, grad_out, g, op, "grad_out");
  if (choose_algo(s, g) == Algo::depthwise) return conv2d_depthwise_backward_data(grad_out, weight, grad_x, g);
  EMBER_DISPATCH_FLOAT(grad_x.dtype, op, backward_data_exact<T>(grad_out, weight, grad_x, s, g));
}

void conv2d_backward_weight(const TensorView& x, const TensorView& grad_out, const TensorView& grad_weight,
                            const ConvGeometry& g) {
  const char* op = "conv2d_backward_weight";
  Shape s = check_conv(x, grad_weight, grad_out, g, op, "grad_out");
  if (choose_algo(s, g) == Algo::depthwise) return conv2d_depthwise_backward_weight(x, grad_out, grad_weight, g);
  EMBER_DISPATCH_FLOAT(x.dtype, op, backward_weight_exact<T>(x, grad_out, grad_weight, s, g));
}

void conv2d_backward_bias(const TensorView& grad_out, const TensorView& grad_bias) {
  const char* op = "conv2d_backward_bias";
  check_conv_backward_bias(grad_out, grad_bias, op);
  EMBER_DISPATCH_FLOAT(grad_out.dtype, op, backward_bias_impl<T>(grad_out, grad_bias));
}

}  // namespace ember::cpu

