// Winograd F(4x4, 3x3) convolution (conv2d_winograd.cpp): the algorithm conv2d.cpp picks
// for 3x3, stride-1, undilated, ungrouped float32 convolutions with enough channels.
#pragma once
#include <cstdint>
#include "../ops.h"

namespace ember::cpu {

// x (N,C,H,W), weight (K,C,3,3), out (N,K,P,Q); pad_top/pad_left place the image.
struct WinogradShape {
  int64_t N, C, H, W, K, P, Q, pad_top, pad_left;
};

// Whether Winograd is the faster algorithm for this float32 conv (measured: bench/RESULTS.md).
bool winograd_applies(int64_t C, int64_t K, int64_t R, int64_t S, const ConvGeometry& g);

// The transforms add and subtract across a whole 6x6 tile, so one inf input can become NaN
// (inf - inf) in outputs a direct sum leaves finite or inf. Forward and backward data
// return false when a value they formed was inf or NaN; the caller then recomputes with a
// direct algorithm, which gives the IEEE result (and costs only for non-finite data). The
// weight gradient is small: the caller checks it (conv2d.cpp, backward_weight_exact).
bool winograd_forward(const float* x, const float* w, const float* bias, float* y, const WinogradShape& s);
bool winograd_backward_data(const float* dy, const float* w, float* dx, const WinogradShape& s);
void winograd_backward_weight(const float* x, const float* dy, float* dw, const WinogradShape& s);

}  // namespace ember::cpu
