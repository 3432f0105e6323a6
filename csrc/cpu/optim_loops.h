// Optimizer update loops, compiled once per ISA region by optim.cpp (no include guard on
// purpose). Each is one streaming pass; the options are template parameters so every
// combination gets its own branch-free SIMD loop (maximize included: a select in the loop
// costs the compute-bound Adam loop ~7%). The *_range functions hold the
// per-element math; the single-tensor loops and the multi-tensor loops both call them,
// so a parameter gets the same bits either way.

// SGD (torch.optim.SGD, single tensor), elements [b, e):
//   g = (maximize ? -grad : grad) + wd * p
//   momentum: buf = first ? g : momentum * buf + (1 - dampening) * g
//             g   = nesterov ? g + momentum * buf : buf
//   p -= lr * g
template <class T, bool WD, bool MOM, bool NESTEROV, bool FIRST, bool MAXIMIZE>
inline void sgd_range(T* p, const T* g, T* buf, int64_t b, int64_t e, T lr, T momentum, T damp1, T wd) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    T d = g[i];
    if constexpr (MAXIMIZE) d = -d;
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
}

template <class T, bool WD, bool MOM, bool NESTEROV, bool FIRST>
void sgd_loop(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T damp1, T wd) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    sgd_range<T, WD, MOM, NESTEROV, FIRST, false>(p, g, buf, b, e, lr, momentum, damp1, wd);
  });
}

// Calls f(t, lo, hi) for each piece [lo, hi) of tensor t that the flat range [b, e)
// covers; offsets[t] is the flat index of tensor t's first element (offsets[count] = total).
template <class F>
inline void for_each_piece(const int64_t* offsets, int64_t count, int64_t b, int64_t e, F&& f) {
  int64_t t = std::upper_bound(offsets, offsets + count + 1, b) - offsets - 1;
  for (; t < count && offsets[t] < e; ++t)
    f(t, std::max(b, offsets[t]) - offsets[t], std::min(e, offsets[t + 1]) - offsets[t]);
}

// All tensors of one SGD step in one parallel region over their concatenated elements.
template <class T, bool WD, bool MOM, bool NESTEROV, bool MAXIMIZE>
void sgd_multi_loop(const SgdSlot<T>* slots, const int64_t* offsets, int64_t count, T lr, T momentum, T damp1, T wd) {
  parallel_for(offsets[count], kElementwiseGrain, [&](int64_t b, int64_t e) {
    for_each_piece(offsets, count, b, e, [&](int64_t t, int64_t lo, int64_t hi) {
      const SgdSlot<T>& s = slots[t];
      if (s.first) sgd_range<T, WD, MOM, NESTEROV, true, MAXIMIZE>(s.p, s.g, s.buf, lo, hi, lr, momentum, damp1, wd);
      else sgd_range<T, WD, MOM, NESTEROV, false, MAXIMIZE>(s.p, s.g, s.buf, lo, hi, lr, momentum, damp1, wd);
    });
  });
}

// Adam / AdamW (torch.optim.Adam, single tensor, not capturable), elements [b, e):
//   g = maximize ? -grad : grad
//   AdamW: p *= 1 - lr*wd;  Adam: g += wd * p
//   m += (1 - beta1) * (g - m)            (torch's lerp)
//   v  = beta2 * v + (1 - beta2) * g * g
//   amsgrad: vmax = max(vmax, v), used in place of v below
//   p -= step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps),  step_size = lr / bias_correction1
template <class T, bool AMSGRAD, bool MAXIMIZE>
inline void adam_range(T* p, const T* g, T* m, T* v, T* vmax, int64_t b, int64_t e, T decay, T l2, T one_minus_b1,
                       T beta2, T one_minus_b2, T bc2_sqrt, T eps, T step_size) {
#pragma omp simd
  for (int64_t i = b; i < e; ++i) {
    const T pi = p[i];
    const T gi = (MAXIMIZE ? -g[i] : g[i]) + l2 * pi;
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
}

template <class T, bool AMSGRAD>
void adam_loop(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, T decay, T l2, T one_minus_b1, T beta2,
               T one_minus_b2, T bc2_sqrt, T eps, T step_size) {
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
    adam_range<T, AMSGRAD, false>(p, g, m, v, vmax, b, e, decay, l2, one_minus_b1, beta2, one_minus_b2, bc2_sqrt,
                                  eps, step_size);
  });
}

// All tensors of one Adam step in one parallel region; bias corrections per tensor (slots).
template <class T, bool AMSGRAD, bool MAXIMIZE>
void adam_multi_loop(const AdamSlot<T>* slots, const int64_t* offsets, int64_t count, T decay, T l2, T one_minus_b1,
                     T beta2, T one_minus_b2, T eps) {
  parallel_for(offsets[count], kElementwiseGrain, [&](int64_t b, int64_t e) {
    for_each_piece(offsets, count, b, e, [&](int64_t t, int64_t lo, int64_t hi) {
      const AdamSlot<T>& s = slots[t];
      adam_range<T, AMSGRAD, MAXIMIZE>(s.p, s.g, s.m, s.v, s.vmax, lo, hi, decay, l2, one_minus_b1, beta2,
                                       one_minus_b2, s.bc2_sqrt, eps, s.step_size);
    });
  });
}
