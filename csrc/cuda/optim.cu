// Optimizer updates on the GPU: the contract of cpu/optim.cpp. In-place grid-stride passes
// over param, grad and the state buffers ((*shape) T, contiguous), in the order and
// precision of torch.optim's single-tensor formulas (scalars computed in double on the
// host, applied in T). Option flags are kernel arguments: they are uniform across the
// grid, so the branches cost nothing next to the memory traffic.
//   sgd_step / adam_step: one launch for one parameter.
//   *_step_multi: one launch for up to kSgdTensors / kAdamTensors parameters (more
//   launches only past that), their pointers and sizes in a table passed as the kernel's
//   argument (like PyTorch's multi_tensor_apply): nothing to copy to the device, nothing
//   to keep alive after the launch. Each block takes chunks of kChunk elements of one
//   tensor, 128-bit loads and stores where that tensor's buffers are 16-byte aligned.
#include <cstdint>
#include "../nn_checks.h"
#include "../ops.h"
#include "../optim_checks.h"
#include "common.cuh"

namespace ember::cuda {
namespace {

// SGD (torch.optim.SGD, single tensor), one element in registers:
//   g = (maximize ? -grad : grad) + wd * p
//   momentum: buf = first ? g : momentum * buf + (1 - dampening) * g
//             g   = nesterov ? g + momentum * buf : buf
//   p -= lr * g
template <class T>
__device__ __forceinline__ void sgd_element(T& p, T g, T& buf, bool has_buf, T lr, T momentum, T damp1, T wd,
                                            bool nesterov, bool first, bool maximize) {
  T d = maximize ? -g : g;
  if (wd != T(0)) d = d + wd * p;
  if (has_buf) {
    const T m = first ? d : buf * momentum + damp1 * d;
    buf = m;
    d = nesterov ? d + momentum * m : m;
  }
  p = p - lr * d;
}

// Adam / AdamW (torch.optim.Adam, single tensor, not capturable), one element in registers:
//   g = maximize ? -grad : grad
//   AdamW: p *= 1 - lr*wd;  Adam: g += wd * p
//   m += (1 - beta1) * (g - m)            (torch's lerp)
//   v  = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), used in place of v below
//   p -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps),  step_size = lr / bias_correction1
template <class T>
__device__ __forceinline__ void adam_element(T& p, T g, T& m, T& v, T& vmax, bool amsgrad, T decay, T l2,
                                             T one_minus_b1, T beta2, T one_minus_b2, T bc2_sqrt, T eps, T step_size,
                                             bool maximize) {
  const T pi = p;
  const T gi = (maximize ? -g : g) + l2 * pi;
  const T mi = m + one_minus_b1 * (gi - m);
  const T vi = v * beta2 + one_minus_b2 * gi * gi;
  m = mi;
  v = vi;
  T vv = vi;
  if (amsgrad) {
    vv = vmax > vi ? vmax : vi;
    vmax = vv;
  }
  const T denom = ::sqrt(vv) / bc2_sqrt + eps;
  p = pi * decay - step_size * (mi / denom);
}

// param, grad, buf: (n,) T
template <class T>
__global__ void sgd_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T lr,
                           T momentum, T damp1, T wd, bool nesterov, bool first) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T pi = p[i], bi = buf && !first ? buf[i] : T(0);
    sgd_element(pi, g[i], bi, buf != nullptr, lr, momentum, damp1, wd, nesterov, first, false);
    p[i] = pi;
    if (buf) buf[i] = bi;
  }
}

// param, grad, m, v, vmax: (n,) T
template <class T>
__global__ void adam_kernel(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m, T* __restrict__ v,
                            T* __restrict__ vmax, int64_t n, T decay, T l2, T one_minus_b1, T beta2, T one_minus_b2,
                            T bc2_sqrt, T eps, T step_size) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T pi = p[i], mi = m[i], vi = v[i], vmi = vmax ? vmax[i] : T(0);
    adam_element(pi, g[i], mi, vi, vmi, vmax != nullptr, decay, l2, one_minus_b1, beta2, one_minus_b2, bc2_sqrt, eps,
                 step_size, false);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (vmax) vmax[i] = vmi;
  }
}

// ---- multi-tensor ----

constexpr int64_t kChunk = 4096;  // elements per block task: 4 passes of 256 threads x 128 bits (float)
constexpr int kSgdTensors = 80;   // table sizes: each argument struct stays under the 4 KB
constexpr int kAdamTensors = 48;  // of kernel parameters every GPU and driver accepts

// 16 bytes of T, loaded and stored as one 128-bit access.
template <class T>
struct alignas(16) Pack {
  static constexpr int kLanes = 16 / sizeof(T);
  T v[kLanes];
};
template <class T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) { return *reinterpret_cast<const Pack<T>*>(p); }
template <class T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& x) { *reinterpret_cast<Pack<T>*>(p) = x; }

__device__ __forceinline__ bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The tensor t with chunk_begin[t] <= c < chunk_begin[t + 1] (every tensor has >= 1 chunk).
__device__ __forceinline__ int tensor_of_chunk(const int64_t* chunk_begin, int count, int64_t c) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (chunk_begin[mid] <= c) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The launch's table: tensor t is p[t], g[t], ... with n[t] elements, its chunks numbered
// from chunk_begin[t]; chunk_begin[count] is the launch's chunk count.
template <class T>
struct SgdMultiArgs {
  T* p[kSgdTensors];
  const T* g[kSgdTensors];
  T* buf[kSgdTensors];  // nullptr without momentum
  int64_t n[kSgdTensors];
  int64_t chunk_begin[kSgdTensors + 1];
  bool first[kSgdTensors];
  int count;
  T lr, momentum, damp1, wd;
  bool nesterov, maximize;
};
template <class T>
struct AdamMultiArgs {
  T* p[kAdamTensors];
  const T* g[kAdamTensors];
  T* m[kAdamTensors];
  T* v[kAdamTensors];
  T* vmax[kAdamTensors];  // nullptr without amsgrad
  int64_t n[kAdamTensors];
  int64_t chunk_begin[kAdamTensors + 1];
  T bc2_sqrt[kAdamTensors], step_size[kAdamTensors];  // bias corrections: each tensor has its own step
  int count;
  T decay, l2, one_minus_b1, beta2, one_minus_b2, eps;
  bool maximize;
};
static_assert(sizeof(SgdMultiArgs<double>) <= 4096 && sizeof(AdamMultiArgs<double>) <= 4096,
              "a multi-tensor table must fit the 4 KB kernel parameter limit");

template <class T>
__global__ void __launch_bounds__(kThreads) sgd_multi_kernel(const __grid_constant__ SgdMultiArgs<T> a) {
  constexpr int L = Pack<T>::kLanes;
  for (int64_t c = blockIdx.x; c < a.chunk_begin[a.count]; c += gridDim.x) {
    const int t = tensor_of_chunk(a.chunk_begin, a.count, c);
    T* __restrict__ p = a.p[t];
    const T* __restrict__ g = a.g[t];
    T* __restrict__ buf = a.buf[t];
    const bool has_buf = buf != nullptr, first = a.first[t];
    const int64_t lo = (c - a.chunk_begin[t]) * kChunk, hi = lo + kChunk < a.n[t] ? lo + kChunk : a.n[t];
    int64_t tail = lo;  // lo is a multiple of kChunk, so p + lo is aligned when p is
    if (aligned16(p) && aligned16(g) && aligned16(buf)) {
      tail = lo + (hi - lo) / L * L;
      for (int64_t i = lo + int64_t(threadIdx.x) * L; i < tail; i += int64_t(blockDim.x) * L) {
        Pack<T> pp = load_pack(p + i), gg = load_pack(g + i), bb{};
        if (has_buf && !first) bb = load_pack(buf + i);
#pragma unroll
        for (int k = 0; k < L; ++k)
          sgd_element(pp.v[k], gg.v[k], bb.v[k], has_buf, a.lr, a.momentum, a.damp1, a.wd, a.nesterov, first,
                      a.maximize);
        store_pack(p + i, pp);
        if (has_buf) store_pack(buf + i, bb);
      }
    }
    for (int64_t i = tail + threadIdx.x; i < hi; i += blockDim.x) {
      T pi = p[i], bi = has_buf && !first ? buf[i] : T(0);
      sgd_element(pi, g[i], bi, has_buf, a.lr, a.momentum, a.damp1, a.wd, a.nesterov, first, a.maximize);
      p[i] = pi;
      if (has_buf) buf[i] = bi;
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) adam_multi_kernel(const __grid_constant__ AdamMultiArgs<T> a) {
  constexpr int L = Pack<T>::kLanes;
  for (int64_t c = blockIdx.x; c < a.chunk_begin[a.count]; c += gridDim.x) {
    const int t = tensor_of_chunk(a.chunk_begin, a.count, c);
    T* __restrict__ p = a.p[t];
    const T* __restrict__ g = a.g[t];
    T* __restrict__ m = a.m[t];
    T* __restrict__ v = a.v[t];
    T* __restrict__ vmax = a.vmax[t];
    const bool ams = vmax != nullptr;
    const T bc2_sqrt = a.bc2_sqrt[t], step_size = a.step_size[t];
    const int64_t lo = (c - a.chunk_begin[t]) * kChunk, hi = lo + kChunk < a.n[t] ? lo + kChunk : a.n[t];
    int64_t tail = lo;
    if (aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v) && aligned16(vmax)) {
      tail = lo + (hi - lo) / L * L;
      for (int64_t i = lo + int64_t(threadIdx.x) * L; i < tail; i += int64_t(blockDim.x) * L) {
        Pack<T> pp = load_pack(p + i), gg = load_pack(g + i), mm = load_pack(m + i), vv = load_pack(v + i), xx{};
        if (ams) xx = load_pack(vmax + i);
#pragma unroll
        for (int k = 0; k < L; ++k)
          adam_element(pp.v[k], gg.v[k], mm.v[k], vv.v[k], xx.v[k], ams, a.decay, a.l2, a.one_minus_b1, a.beta2,
                       a.one_minus_b2, bc2_sqrt, a.eps, step_size, a.maximize);
        store_pack(p + i, pp);
        store_pack(m + i, mm);
        store_pack(v + i, vv);
        if (ams) store_pack(vmax + i, xx);
      }
    }
    for (int64_t i = tail + threadIdx.x; i < hi; i += blockDim.x) {
      T pi = p[i], mi = m[i], vi = v[i], xi = ams ? vmax[i] : T(0);
      adam_element(pi, g[i], mi, vi, xi, ams, a.decay, a.l2, a.one_minus_b1, a.beta2, a.one_minus_b2, bc2_sqrt,
                   a.eps, step_size, a.maximize);
      p[i] = pi;
      m[i] = mi;
      v[i] = vi;
      if (ams) vmax[i] = xi;
    }
  }
}

// Fills the table `a` (count, n, chunk_begin here; the pointers and per-tensor scalars of
// entry t from params[i] by add(t, i)) with the non-empty tensors in order, launching it
// when full and once at the end. The table is a kernel argument, copied at launch:
// refilling it for the next launch is safe.
template <int Capacity, class Args, class Add, class Launch>
void run_tables(const std::vector<TensorView>& params, Args& a, const char* op, Add add, Launch launch) {
  a.count = 0;
  a.chunk_begin[0] = 0;
  auto flush = [&] {
    if (a.count == 0) return;
    const int64_t chunks = a.chunk_begin[a.count];
    launch(blocks_for(chunks, 1));  // a block per chunk, grid-stride past the cap
    EMBER_CUDA_LAUNCH_CHECK(op);
    a.count = 0;
  };
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].numel();
    if (n == 0) continue;
    const int t = a.count++;
    a.n[t] = n;
    a.chunk_begin[t + 1] = a.chunk_begin[t] + (n + kChunk - 1) / kChunk;
    add(t, i);
    if (a.count == Capacity) flush();
  }
  flush();
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

void sgd_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                    const std::vector<TensorView>& momentum_bufs, double lr, double momentum, double dampening,
                    bool nesterov, double weight_decay, const std::vector<bool>& first_steps, bool maximize) {
  const char* op = "sgd_step_multi";
  check_sgd_multi_args(params, grads, momentum_bufs, lr, momentum, dampening, nesterov, weight_decay, first_steps);
  if (params.empty()) return;
  const bool mom = momentum != 0;
  EMBER_DISPATCH_FLOAT(params[0].dtype, op, {
    SgdMultiArgs<T> a{};
    a.lr = static_cast<T>(lr);
    a.momentum = static_cast<T>(momentum);
    a.damp1 = static_cast<T>(1.0 - dampening);
    a.wd = static_cast<T>(weight_decay);
    a.nesterov = nesterov;
    a.maximize = maximize;
    run_tables<kSgdTensors>(params, a, op, [&](int t, size_t i) {
      a.p[t] = params[i].ptr<T>();
      a.g[t] = grads[i].ptr<T>();
      a.buf[t] = mom ? momentum_bufs[i].ptr<T>() : nullptr;
      a.first[t] = first_steps[i];
    }, [&](unsigned blocks) { sgd_multi_kernel<T><<<blocks, kThreads, 0, current_stream()>>>(a); });
  });
}

void adam_step_multi(const std::vector<TensorView>& params, const std::vector<TensorView>& grads,
                     const std::vector<TensorView>& exp_avgs, const std::vector<TensorView>& exp_avg_sqs,
                     const std::vector<TensorView>& max_exp_avg_sqs, const std::vector<int64_t>& steps, double lr,
                     double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                     bool decoupled_weight_decay, bool maximize) {
  const char* op = check_adam_multi_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1,
                                         beta2, eps, weight_decay, amsgrad, decoupled_weight_decay);
  if (params.empty()) return;
  // The step-independent scalars, the same for every tensor.
  const AdamScalars k = adam_scalars(1, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
  EMBER_DISPATCH_FLOAT(params[0].dtype, op, {
    AdamMultiArgs<T> a{};
    a.decay = static_cast<T>(k.decay);
    a.l2 = static_cast<T>(k.l2);
    a.one_minus_b1 = static_cast<T>(k.one_minus_beta1);
    a.beta2 = static_cast<T>(k.beta2);
    a.one_minus_b2 = static_cast<T>(k.one_minus_beta2);
    a.eps = static_cast<T>(k.eps);
    a.maximize = maximize;
    run_tables<kAdamTensors>(params, a, op, [&](int t, size_t i) {
      const AdamScalars ki = adam_scalars(steps[i], lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay);
      a.p[t] = params[i].ptr<T>();
      a.g[t] = grads[i].ptr<T>();
      a.m[t] = exp_avgs[i].ptr<T>();
      a.v[t] = exp_avg_sqs[i].ptr<T>();
      a.vmax[t] = amsgrad ? max_exp_avg_sqs[i].ptr<T>() : nullptr;
      a.bc2_sqrt[t] = static_cast<T>(ki.bias_correction2_sqrt);
      a.step_size[t] = static_cast<T>(ki.step_size);
    }, [&](unsigned blocks) { adam_multi_kernel<T><<<blocks, kThreads, 0, current_stream()>>>(a); });
  });
}

}  // namespace ember::cuda
