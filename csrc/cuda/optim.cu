// Optimizer updates on the GPU: the contract of cpu/optim.cpp. One in-place grid-stride
// pass per parameter over param, grad and the state buffers ((*shape) T, contiguous), in
// the order and precision of torch.optim's single-tensor formulas (scalars computed in
// double on the host, applied in T). Option flags are kernel arguments: they are uniform
// across the grid, so the branches cost nothing next to the memory traffic.
// There is no multi-tensor (one launch for all parameters) variant: each parameter is
// one launch, as the Python optimizers call it.
#include <cstdint>
#include "../nn_checks.h"
#include "../ops.h"
#include "common.cuh"

namespace ember::cuda {
namespace {

// SGD (torch.optim.SGD, single tensor):
//   g = grad + wd * p
//   momentum: buf = first ? g : momentum * buf + (1 - dampening) * g
//             g   = nesterov ? g + momentum * buf : buf
//   p -= lr * g
template <class T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr,
                           T momentum, T damp1, T wd, bool nesterov, bool first) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T d = g[i];
    if (wd != T(0)) d = d + wd * p[i];
    if (buf) {
      const T m = first ? d : buf[i] * momentum + damp1 * d;
      buf[i] = m;
      d = nesterov ? d + momentum * m : m;
    }
    p[i] = p[i] - lr * d;
  }
}

// Adam / AdamW (torch.optim.Adam, single tensor, not capturable):
//   AdamW: p *= 1 - lr*wd;  Adam: g += wd * p
//   m += (1 - beta1) * (g - m)            (torch's lerp)
//   v  = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), used in place of v below
//   p -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps),  step_size = lr / bias_correction1
template <class T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            T* __restrict__ vmax, int64_t n, T decay, T l2, T one_minus_b1, T beta2, T one_minus_b2,
                            T bc2_sqrt, T eps, T step_size) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const T pi = p[i];
    const T gi = g[i] + l2 * pi;
    const T mi = m[i] + one_minus_b1 * (gi - m[i]);
    const T vi = v[i] * beta2 + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    T vv = vi;
    if (vmax) {
      vv = vmax[i] > vi ? vmax[i] : vi;
      vmax[i] = vv;
    }
    const T denom = ::sqrt(vv) / bc2_sqrt + eps;
    p[i] = pi * decay - step_size * (mi / denom);
  }
}

}  // namespace

void sgd_step(const TensorView& param, const TensorView& grad, const TensorView& momentum_buf, double lr,
              double momentum, double dampening, bool nesterov, double weight_decay, bool first_step) {
  const char* op = "sgd_step";
  check_sgd_args(param, grad, momentum_buf, lr, momentum, dampening, nesterov, weight_decay);
  const int64_t n = param.numel();
  if (n == 0) return;
  EMBER_DISPATCH_FLOAT(param.dtype, op, {
    T* buf = momentum != 0 ? momentum_buf.ptr<T>() : nullptr;
    sgd_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        param.ptr<T>(), grad.ptr<T>(), buf, n, static_cast<T>(lr), static_cast<T>(momentum),
        static_cast<T>(1.0 - dampening), static_cast<T>(weight_decay), nesterov, first_step);
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

void adam_step(const TensorView& param, const TensorView& grad, const TensorView& exp_avg,
               const TensorView& exp_avg_sq, const TensorView& max_exp_avg_sq, int64_t step, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
               bool decoupled_weight_decay) {
  const char* op = check_adam_args(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                                   weight_decay, amsgrad, decoupled_weight_decay);
  const AdamScalars k = adam_scalars(step, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
  const int64_t n = param.numel();
  if (n == 0) return;
  EMBER_DISPATCH_FLOAT(param.dtype, op, {
    adam_kernel<T><<<blocks_for(n), kThreads, 0, current_stream()>>>(
        param.ptr<T>(), grad.ptr<T>(), exp_avg.ptr<T>(), exp_avg_sq.ptr<T>(),
        amsgrad ? max_exp_avg_sq.ptr<T>() : nullptr, n, static_cast<T>(k.decay), static_cast<T>(k.l2),
        static_cast<T>(k.one_minus_beta1), static_cast<T>(k.beta2), static_cast<T>(k.one_minus_beta2),
        static_cast<T>(k.bias_correction2_sqrt), static_cast<T>(k.eps), static_cast<T>(k.step_size));
  });
  EMBER_CUDA_LAUNCH_CHECK(op);
}

}  // namespace ember::cuda
