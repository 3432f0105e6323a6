// Depthwise conv2d kernels (conv2d_depthwise.cpp), called by conv2d.cpp after its
// argument checks when choose_algo picks them: groups == C == K > 1, weight (C, 1, R, S),
// any stride, padding and dilation. Shapes as the conv2d ops in ops.h.
#pragma once
#include "../ops.h"

namespace ember::cpu {

void conv2d_depthwise_forward(const TensorView& x, const TensorView& weight, const TensorView* bias,
                              const TensorView& out, const ConvGeometry& g);
void conv2d_depthwise_backward_data(const TensorView& grad_out, const TensorView& weight, const TensorView& grad_x,
                                    const ConvGeometry& g);
void conv2d_depthwise_backward_weight(const TensorView& x, const TensorView& grad_out, const TensorView& grad_weight,
                                      const ConvGeometry& g);

}  // namespace ember::cpu
