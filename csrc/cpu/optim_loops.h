// Optimizer update loops, compiled once per ISA region by optim.cpp (no include guard on
// purpose). Each is one streaming pass; the options are template parameters so every
// combination gets its own branch-free SIMD loop.

// SGD (torch.optim.SGD, single tensor):
//   g = grad + wd * p
//   momentum: buf = first ? g : momentum * buf + (1 - dampening) * g
//             g   = nesterov ? g + momentum * buf : buf
//   p -= lr * g
template <class T, bool WD, bool MOM, bool NESTEROV, bool FIRST>
void sgd_loop(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T damp1, T wd) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      T d = g[i];
      if constexpr (WD) d = d + wd * p[i];
      if constexpr (MOM) {
        T m;
        if constexpr (FIRST) m = d;
        else m = buf[i] * momentum + damp1 * d;
        buf[i] = m;
        d = NESTEROV ? d + momentum * m : m;
      }
      p[i] = p[i] - lr * d;
    }
  });
}

// Adam / AdamW (torch.optim.Adam, single tensor, not capturable):
//   AdamW: p *= 1 - lr*wd;  Adam: g += wd * p
//   m += (1 - beta1) * (g - m)            (torch's lerp)
//   v  = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), used in place of v below
//   p -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps),  step_size = lr / bias_correction1
template <class T, bool AMSGRAD>
void adam_loop(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, T decay, T l2, T one_minus_b1, T beta2,
               T one_minus_b2, T bc2_sqrt, T eps, T step_size) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) {
      const T pi = p[i];
      const T gi = g[i] + l2 * pi;
      const T mi = m[i] + one_minus_b1 * (gi - m[i]);
      const T vi = v[i] * beta2 + one_minus_b2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      T vv = vi;
      if constexpr (AMSGRAD) {
        vv = vmax[i] > vi ? vmax[i] : vi;
        vmax[i] = vv;
      }
      const T denom = std::sqrt(vv) / bc2_sqrt + eps;
      p[i] = pi * decay - step_size * (mi / denom);
    }
  });
}
