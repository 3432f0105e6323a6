// Every ember op, declared once. Each is implemented twice under the same name and
// argument order: in csrc/cpu/ (namespace ember::cpu) and csrc/cuda/ (ember::cuda).
// Outputs are passed in, allocated by Python; kernels check shapes and dtypes and throw.
//
// The list below is read twice (this file includes itself), once per namespace.
#ifndef EMBER_OPS_LIST
#ifndef EMBER_OPS_H
#define EMBER_OPS_H
#include <cstdint>
#include <vector>
#include "tensor_view.h"

namespace ember {
// conv2d: out (N,K,P,Q) with P = (H + pad_top + pad_bottom - dil_h*(R-1) - 1) / stride_h + 1
// (Q likewise). Padding may be asymmetric (padding="same" with an even kernel).
struct ConvGeometry {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
};
// pooling: out (N,C,P,Q) with P = (H + 2*pad_h - dil_h*(kernel_h-1) - 1) / stride_h + 1,
// rounded up instead when ceil_mode (as torch).
struct PoolGeometry {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int64_t dil_h = 1, dil_w = 1;  // max pooling only; avg pooling takes 1
  bool ceil_mode = false;
};
}  // namespace ember
#define EMBER_OPS_LIST
namespace ember::cpu {
#include "ops.h"
}
namespace ember::cuda {
#include "ops.h"
}
#undef EMBER_OPS_LIST
#endif
#else  // ---------------- the op list ----------------

// ---- elementwise (elementwise.cpp): same-shape operands, any strides ----
void add(const TensorView& a, const TensorView& b, const TensorView& out);
void sub(const TensorView& a, const TensorView& b, const TensorView& out);
void mul(const TensorView& a, const TensorView& b, const TensorView& out);
void div(const TensorView& a, const TensorView& b, const TensorView& out);
void maximum(const TensorView& a, const TensorView& b, const TensorView& out);
void minimum(const TensorView& a, const TensorView& b, const TensorView& out);
void pow(const TensorView& a, const TensorView& b, const TensorView& out);
void eq(const TensorView& a, const TensorView& b, const TensorView& out);  // out: bool
void ne(const TensorView& a, const TensorView& b, const TensorView& out);
void lt(const TensorView& a, const TensorView& b, const TensorView& out);
void le(const TensorView& a, const TensorView& b, const TensorView& out);
void gt(const TensorView& a, const TensorView& b, const TensorView& out);
void ge(const TensorView& a, const TensorView& b, const TensorView& out);
void neg(const TensorView& a, const TensorView& out);
void abs(const TensorView& a, const TensorView& out);
void exp(const TensorView& a, const TensorView& out);
void log(const TensorView& a, const TensorView& out);
void sqrt(const TensorView& a, const TensorView& out);
void pow_scalar(const TensorView& a, double p, const TensorView& out);
void where(const TensorView& cond, const TensorView& a, const TensorView& b, const TensorView& out);
void copy(const TensorView& src, const TensorView& dst);  // strided copy, casting dtype

// ---- reductions (reduce.cpp) ----
// x any strides; axes sorted and unique; out contiguous, x's shape with the reduced
// axes set to 1 (the keepdims layout).
void sum(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out);
void amax(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out);
void amin(const TensorView& x, const int64_t* axes, int naxes, const TensorView& out);
void argmax(const TensorView& x, int64_t axis, const TensorView& out);  // out int64
void argmin(const TensorView& x, int64_t axis, const TensorView& out);

// ---- gemm (gemm.cpp) ----
// out (B,M,N) = alpha * op(a) @ op(b) + beta * out, op = optional transpose of the
// last two dims. a (B,M,K) or (B,K,M) when trans_a; b (B,K,N) or (B,N,K) when trans_b.
// 2-D views are a batch of one; a batch stride of 0 broadcasts. Inner dims contiguous.
void matmul(const TensorView& a, const TensorView& b, const TensorView& out, bool trans_a,
            bool trans_b, double alpha, double beta);

// ---- conv2d (conv2d.cpp) ----
// NCHW. x (N,C,H,W), weight (K,C/groups,R,S), bias (K) or null, out (N,K,P,Q); geometry
// (ConvGeometry, above). All arrays contiguous.
void conv2d_forward(const TensorView& x, const TensorView& weight, const TensorView* bias, const TensorView& out,
                    const ConvGeometry& g);
// grad_x (N,C,H,W) = the adjoint of forward in x, from grad_out (N,K,P,Q)
void conv2d_backward_data(const TensorView& grad_out, const TensorView& weight, const TensorView& grad_x,
                          const ConvGeometry& g);
// grad_weight (K,C/groups,R,S) = sum over the batch of grad_out (x) patches of x
void conv2d_backward_weight(const TensorView& x, const TensorView& grad_out, const TensorView& grad_weight,
                            const ConvGeometry& g);
// grad_bias (K) = grad_out (N,K,P,Q) summed over N, P, Q
void conv2d_backward_bias(const TensorView& grad_out, const TensorView& grad_bias);

// ---- pooling (pool.cpp) ----
// NCHW, float32/float64, contiguous. x (N,C,H,W), out (N,C,P,Q); geometry (PoolGeometry, above).
// indices (N,C,P,Q) int64: argmax as h*W + w within its plane (torch's convention); may be null
void max_pool2d_forward(const TensorView& x, const TensorView& out, const TensorView* indices, const PoolGeometry& g);
// grad_x (N,C,H,W) = grad_out scattered (added) to the argmax positions
void max_pool2d_backward(const TensorView& grad_out, const TensorView& indices, const TensorView& grad_x);
// divisor_override 0: divide by the window's count (count_include_pad decides which); else by it
void avg_pool2d_forward(const TensorView& x, const TensorView& out, const PoolGeometry& g, bool count_include_pad,
                        int64_t divisor_override);
void avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x, const PoolGeometry& g,
                         bool count_include_pad, int64_t divisor_override);
// out (N,C,P,Q): window i covers rows [floor(i*H/P), ceil((i+1)*H/P)), columns likewise
void adaptive_avg_pool2d_forward(const TensorView& x, const TensorView& out);
void adaptive_avg_pool2d_backward(const TensorView& grad_out, const TensorView& grad_x);

// ---- batch norm (norm.cpp) ----
// x, out, grad_out, grad_input (N,C,S) contiguous: S = product of the spatial dims (1 for
// (N,C) input). weight, bias, running_mean, running_var, save_mean, save_invstd,
// grad_weight, grad_bias (C,) contiguous, x's dtype. An absent optional operand is an
// empty TensorView (data == nullptr): weight/bias (1 and 0), running stats (not updated
// in training; required in eval), grad_* (not computed).
// Forward writes save_mean and save_invstd = 1/sqrt(var + eps): the batch's (training)
// or the running stats' (eval); training also moves the running stats by momentum
// (running_var with the unbiased variance). Backward takes them back.
void batch_norm_forward(const TensorView& x, const TensorView& weight, const TensorView& bias,
                        const TensorView& running_mean, const TensorView& running_var, const TensorView& out,
                        const TensorView& save_mean, const TensorView& save_invstd, bool training, double momentum,
                        double eps);
void batch_norm_backward(const TensorView& grad_out, const TensorView& x, const TensorView& save_mean,
                         const TensorView& save_invstd, const TensorView& weight, bool training,
                         const TensorView& grad_input, const TensorView& grad_weight, const TensorView& grad_bias);

// ---- dropout (dropout.cpp) ----
// x, out (*shape) contiguous T; mask (*shape) contiguous bool, or empty (not stored).
// Element i is kept iff Philox word (offset + i) of `seed` passes p (csrc/philox.h gives
// the exact mapping); out = x * (keep ? 1/(1-p) : 0), as torch (NaN propagates).
// offset must be a multiple of 4.
void dropout_forward(const TensorView& x, double p, uint64_t seed, uint64_t offset, const TensorView& out,
                     const TensorView& mask);
// grad_input = grad * (mask ? 1/(1-p) : 0), with the mask forward stored.
void dropout_backward(const TensorView& grad, const TensorView& mask, double p, const TensorView& grad_input);

// ---- activations and softmax (activation.cpp) ----
// Elementwise, any strides, out same shape and dtype (float32/float64). Each backward
// takes grad_output, the tensor it needs (named), and writes grad_input.
void relu(const TensorView& x, const TensorView& out);
void relu_backward(const TensorView& grad, const TensorView& output, const TensorView& grad_input);
void leaky_relu(const TensorView& x, double negative_slope, const TensorView& out);
void leaky_relu_backward(const TensorView& grad, const TensorView& input, double negative_slope,
                         const TensorView& grad_input);
void sigmoid(const TensorView& x, const TensorView& out);
void sigmoid_backward(const TensorView& grad, const TensorView& output, const TensorView& grad_input);
void tanh(const TensorView& x, const TensorView& out);
void tanh_backward(const TensorView& grad, const TensorView& output, const TensorView& grad_input);
void gelu(const TensorView& x, bool approximate_tanh, const TensorView& out);
void gelu_backward(const TensorView& grad, const TensorView& input, bool approximate_tanh,
                   const TensorView& grad_input);
// Over one dim (negative counts from the end) of any-strided x; out same shape.
void softmax(const TensorView& x, int64_t dim, const TensorView& out);
void log_softmax(const TensorView& x, int64_t dim, const TensorView& out);
void softmax_backward(const TensorView& grad, const TensorView& output, int64_t dim, const TensorView& grad_input);
void log_softmax_backward(const TensorView& grad, const TensorView& output, int64_t dim,
                          const TensorView& grad_input);

// ---- losses (loss.cpp) ----
// Class-indexed losses take input (N, C, K) (PyTorch's (N, C, d1, ...) flattened) and
// target (N, K) int64; weight (C,) or nullptr; per-sample loss (N, K) and weight_sum ()
// (sum of w[target] over non-ignored targets, the 'mean' divisor) are written.
void cross_entropy(const TensorView& logits, const TensorView& target, const TensorView* weight,
                   int64_t ignore_index, double label_smoothing, const TensorView& loss, const TensorView& stats,
                   const TensorView& weight_sum);  // stats (N, K, 2), kept for the backward
void cross_entropy_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                            const TensorView& stats, const TensorView& grad, int64_t ignore_index,
                            double label_smoothing, const TensorView& grad_input);  // grad (N, K) any strides
// Probability targets: target (N, C, K) of the input's dtype, any strides, each (n, :, k)
// a distribution over the C classes (not checked, as torch). Label smoothing mixes it
// with the uniform one, t' = (1 - eps) t + eps / C. loss (N, K) = -sum_c w_c t'_c
// log_softmax(x)_c; stats (N, K, 2) = {row max, log sum exp(x - max)}, kept for the
// backward. 'mean' divides by N*K (not by the weights), in Python.
void cross_entropy_probs(const TensorView& logits, const TensorView& target, const TensorView* weight,
                         double label_smoothing, const TensorView& loss, const TensorView& stats);
// grad (N, K) any strides -> grad_input (N, C, K) = grad (softmax_c sum_j w_j t'_j - w_c t'_c);
// grad_target (N, C, K) = -grad (1 - eps) w_c log_softmax(x)_c, when not null.
void cross_entropy_probs_backward(const TensorView& logits, const TensorView& target, const TensorView* weight,
                                  const TensorView& stats, const TensorView& grad, double label_smoothing,
                                  const TensorView& grad_input, const TensorView* grad_target);
void nll_loss(const TensorView& log_probs, const TensorView& target, const TensorView* weight, int64_t ignore_index,
              const TensorView& loss, const TensorView& weight_sum);
void nll_loss_backward(const TensorView& target, const TensorView* weight, const TensorView& grad,
                       int64_t ignore_index, const TensorView& grad_input);
// Elementwise losses: same-shape operands (broadcast by the caller), out (*) unreduced.
void mse_loss(const TensorView& input, const TensorView& target, const TensorView& out);
void mse_loss_backward(const TensorView& input, const TensorView& target, const TensorView& grad, double scale,
                       const TensorView& grad_input);
void binary_cross_entropy_with_logits(const TensorView& input, const TensorView& target, const TensorView& weight,
                                      const TensorView& pos_weight, const TensorView& out);
void binary_cross_entropy_with_logits_backward(const TensorView& input, const TensorView& target,
                                               const TensorView& weight, const TensorView& pos_weight,
                                               const TensorView& grad, double scale, const TensorView& grad_input,
                                               const TensorView* grad_target);

// ---- optimizer updates (optim.cpp) ----
// One in-place pass over a parameter: param, grad and the state buffers share one shape,
// one float dtype, and are contiguous. Formulas are torch.optim's single-tensor ones.
// momentum_buf is empty when momentum == 0; max_exp_avg_sq is empty unless amsgrad.
void sgd_step(const TensorView& param, const TensorView& grad, const TensorView& momentum_buf, double lr,
              double momentum, double dampening, bool nesterov, double weight_decay, bool first_step);
void adam_step(const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
               const TensorView& exp_avg_sq, const TensorView& max_exp_avg_sq, int64_t step, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
               bool decoupled_weight_decay);
// The same updates over lists of parameters in one call (one parallel region on the CPU,
// one kernel launch per table of tensors on the GPU), bitwise equal to calling the single
// op per parameter. Options are shared; first_steps[i] / steps[i] are per parameter.
// maximize negates every gradient. momentum_bufs is ignored when momentum == 0,
// max_exp_avg_sqs unless amsgrad (either may then be empty).
void sgd_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                    const std::vector<TensorView>& momentum_bufs, double lr, double momentum, double dampening,
                    bool nesterov, double weight_decay, const std::vector<bool>& first_steps, bool maximize);
void adam_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                     const std::vector<TensorView>& exp_avgs, const std::vector<TensorView>& exp_avg_sqs,
                     const std::vector<TensorView>& max_exp_avg_sqs, const std::vector<int64_t>& steps, double lr,
                     double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                     bool decoupled_weight_decay, bool maximize);

#endif
