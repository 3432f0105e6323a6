// Batch normalization, forward and backward, over x viewed as (N,C,S): S is the
// product of the spatial dims (1 for (N,C) input). Python reshapes and makes x contiguous.
//
// Training forward: per channel mean and biased variance (two-pass, in cache), then
//   y = x * scale + shift,  scale = w * invstd,  shift = b - mean * scale,
//   invstd = 1/sqrt(var + eps); mean and invstd are saved for backward and the running
//   stats (when given) move by momentum, running_var with the unbiased variance.
// Eval forward: the same affine map from the running stats.
// Backward (xhat = (x - mean) * invstd, M = N*S):
//   dbias = sum(dy), dweight = sum(dy * xhat),
//   training: dx = w*invstd * (dy - dbias/M - xhat * dweight/M)
//   eval:     dx = w*invstd * dy
// The loops (both schedules) are in norm_loops.h, compiled per ISA.
#include <algorithm>
#include <cmath>
#include <vector>
#include "../nn_checks.h"
#include "../ops.h"
#include "dispatch.h"
#include "strided.h"

namespace ember::cpu {
namespace {

// Like parallel_for, but tells f its chunk number t (< the returned chunk count: the
// threads the region got) so callers can keep per-chunk partial sums in a workspace.
template <class F>
int parallel_chunks(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return 0;
  int64_t nt = std::min<int64_t>(omp_get_max_threads(), grain > 0 ? n / grain : n);
  if (nt <= 1 || omp_in_parallel()) {
    f(0, int64_t(0), n);
    return 1;
  }
  int64_t chunks = nt;
  parallel_region(static_cast<int>(nt), [&](int64_t t, int64_t T) {
    if (t == 0) chunks = T;
    const int64_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(static_cast<int>(t), b, e);
  });
  return static_cast<int>(chunks);
}

// Scratch that lives across calls (no per-call heap traffic in steady state).
template <class T>
T* workspace(int64_t n, int slot) {
  static thread_local std::vector<T> buf[4];
  if (static_cast<int64_t>(buf[slot].size()) < n) buf[slot].resize(n);
  return buf[slot].data();
}

}  // namespace

#define EMBER_ISA_LOOPS "norm_loops.h"
#include "isa_instantiate.h"

namespace {

#define EMBER_BN_DISPATCH(fn, ...)                                      \
  switch (isa()) {                                                      \
    case Isa::avx512: return isa_avx512::fn(__VA_ARGS__);               \
    case Isa::avx2: return isa_avx2::fn(__VA_ARGS__);                   \
    default: return isa_scalar::fn(__VA_ARGS__);                        \
  }

template <class T>
void forward_impl(const TensorView& xv, const TensorView& wv, const TensorView& bv, const TensorView& rmv,
                  const TensorView& rvv, const TensorView& outv, const TensorView& smv, const TensorView& siv,
                  bool training, double momentum, double eps) {
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2];
  const T* x = xv.ptr<T>();
  T* y = outv.ptr<T>();
  const T* w = present(wv) ? wv.ptr<T>() : nullptr;
  const T* b = present(bv) ? bv.ptr<T>() : nullptr;
  T* rm = present(rmv) ? rmv.ptr<T>() : nullptr;
  T* rv = present(rvv) ? rvv.ptr<T>() : nullptr;
  T* save_mean = smv.ptr<T>();
  T* save_invstd = siv.ptr<T>();
  const double M = static_cast<double>(N) * static_cast<double>(S);
  T* scale = workspace<T>(2 * C, 0);
  T* shift = scale + C;

  // Per channel: invstd, what backward needs, the affine map, the running-stat update.
  auto fin = [&](int64_t c, double mean, double var) {
    const double invstd = 1.0 / std::sqrt(var + eps);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    const double bc = b ? static_cast<double>(b[c]) : 0.0;
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    scale[c] = static_cast<T>(wc * invstd);
    shift[c] = static_cast<T>(bc - mean * wc * invstd);
    if (training && rm) {
      rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * mean);
      rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var * M / (M - 1.0));
    }
  };

  if (!training) {
    for (int64_t c = 0; c < C; ++c) fin(c, static_cast<double>(rm[c]), static_cast<double>(rv[c]));
    EMBER_BN_DISPATCH(bn_affine_all<T>, x, y, N, C, S, scale, shift);
  }
  if (M == 0) {  // empty batch: nothing to normalize; running stats stay as they are (as torch)
    for (int64_t c = 0; c < C; ++c) save_mean[c] = save_invstd[c] = T(0);
    return;
  }
  double* work = workspace<double>(static_cast<int64_t>(omp_get_max_threads()) * 2 * C + C, 1);
  auto after = [&](int64_t c) {
    EMBER_BN_DISPATCH(bn_affine_channel<T>, x, y, N, C, S, c, scale[c], shift[c]);
  };
  bool done;
  switch (isa()) {
    case Isa::avx512: done = isa_avx512::bn_stats<T>(x, N, C, S, work, fin, after); break;
    case Isa::avx2: done = isa_avx2::bn_stats<T>(x, N, C, S, work, fin, after); break;
    default: done = isa_scalar::bn_stats<T>(x, N, C, S, work, fin, after);
  }
  if (!done) EMBER_BN_DISPATCH(bn_affine_all<T>, x, y, N, C, S, scale, shift);
}

template <class T>
void backward_impl(const TensorView& dyv, const TensorView& xv, const TensorView& mv, const TensorView& iv,
                   const TensorView& wv, bool training, const TensorView& dxv, const TensorView& dwv,
                   const TensorView& dbv) {
  const int64_t N = xv.shape[0], C = xv.shape[1], S = xv.shape[2];
  const T* dy = dyv.ptr<T>();
  const T* x = xv.ptr<T>();
  const T* mean = mv.ptr<T>();
  const T* invstd = iv.ptr<T>();
  const T* w = present(wv) ? wv.ptr<T>() : nullptr;
  T* dx = present(dxv) ? dxv.ptr<T>() : nullptr;
  T* dw = present(dwv) ? dwv.ptr<T>() : nullptr;
  T* db = present(dbv) ? dbv.ptr<T>() : nullptr;
  const double M = static_cast<double>(N) * static_cast<double>(S);
  T* k = workspace<T>(3 * C, 0);
  T *k1 = k, *k2 = k + C, *k0 = k + 2 * C;

  auto fin = [&](int64_t c, double g1, double g2) {
    const double inv = static_cast<double>(invstd[c]);
    const double wc = w ? static_cast<double>(w[c]) : 1.0;
    if (db) db[c] = static_cast<T>(g1);
    if (dw) dw[c] = static_cast<T>(g2 * inv);
    k1[c] = static_cast<T>(wc * inv);
    k2[c] = training && M > 0 ? static_cast<T>(wc * inv * inv * inv * g2 / M) : T(0);
    k0[c] = training && M > 0 ? static_cast<T>(wc * inv * g1 / M) : T(0);
  };
  auto after = [&](int64_t c) {
    if (dx) EMBER_BN_DISPATCH(bn_dx_channel<T>, dy, x, dx, N, C, S, c, mean[c], k1[c], k2[c], k0[c]);
  };
  double* work = workspace<double>(static_cast<int64_t>(omp_get_max_threads()) * 2 * C, 1);
  bool done;
  switch (isa()) {
    case Isa::avx512: done = isa_avx512::bn_grad_sums<T>(dy, x, mean, N, C, S, work, fin, after); break;
    case Isa::avx2: done = isa_avx2::bn_grad_sums<T>(dy, x, mean, N, C, S, work, fin, after); break;
    default: done = isa_scalar::bn_grad_sums<T>(dy, x, mean, N, C, S, work, fin, after);
  }
  if (!done && dx) EMBER_BN_DISPATCH(bn_dx_all<T>, dy, x, dx, N, C, S, mean, k1, k2, k0);
}

}  // namespace

void batch_norm_forward(const TensorView& x, const TensorView& weight, const TensorView& bias,
                        const TensorView& running_mean, const TensorView& running_var, const TensorView& out,
                        const TensorView& save_mean, const TensorView& save_invstd, bool training, double momentum,
                        double eps) {
  const char* op = "batch_norm";
  check_batch_norm_forward_args(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd, training,
                                momentum, eps);
  EMBER_DISPATCH_FLOAT(x.dtype, op,
                       forward_impl<T>(x, weight, bias, running_mean, running_var, out, save_mean, save_invstd,
                                       training, momentum, eps));
}

void batch_norm_backward(const TensorView& grad_out, const TensorView& x, const TensorView& save_mean,
                         const TensorView& save_invstd, const TensorView& weight, bool training,
                         const TensorView& grad_input, const TensorView& grad_weight, const TensorView& grad_bias) {
  const char* op = "batch_norm_backward";
  check_batch_norm_backward_args(grad_out, x, save_mean, save_invstd, weight, grad_input, grad_weight, grad_bias);
  EMBER_DISPATCH_FLOAT(x.dtype, op,
                       backward_impl<T>(grad_out, x, save_mean, save_invstd, weight, training, grad_input,
                                        grad_weight, grad_bias));
}

}  // namespace ember::cpu
