// Inner loops of the losses, included once per ISA region by loss.cpp (no include guard
// on purpose); needs the helpers at the top of loss.cpp (exp_t, log_t, softplus_neg,
// sigmoid_t, Rows3, parallel grains).

// ---- fused softmax cross-entropy, one (n, k) row of C logits at stride sc.
// stats = {max, log(sum exp(x - max))}: log-softmax is (x - max) - stats[1] without
// rounding lse = max + log s (at |x| ~ 1e4 that rounding alone would cost 1e-3).
template <class T>
EMBER_FLATTEN inline void ce_row_forward(const T* x, int64_t sc, int64_t C, int64_t t, bool ignored, const T* w, int64_t sw,
                           T wt, T wsum, T eps, T* loss, T* stats) {
  T m = -std::numeric_limits<T>::infinity(), s = 0, sm = 0;  // sm = sum_c w_c (m - x_c)
  if (sc == 1) {
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
    if (eps != T(0) && w) {
#pragma omp simd reduction(+ : s, sm)
      for (int64_t c = 0; c < C; ++c) {
        s += exp_t(x[c] - m);
        sm += w[c * sw] * (m - x[c]);
      }
    } else if (eps != T(0)) {
#pragma omp simd reduction(+ : s, sm)
      for (int64_t c = 0; c < C; ++c) {
        s += exp_t(x[c] - m);
        sm += m - x[c];
      }
    } else {  // the common call; asks for the next packed row (x + C) as softmax_row does
      for (int64_t c0 = 0; c0 < C; c0 += kPrefetchChunk) {
        prefetch_chunk(x + C + c0);
        const int64_t c1 = std::min(C, c0 + kPrefetchChunk);
#pragma omp simd reduction(+ : s)
        for (int64_t c = c0; c < c1; ++c) s += exp_t(x[c] - m);
      }
    }
  } else {
    for (int64_t c = 0; c < C; ++c) m = x[c * sc] > m ? x[c * sc] : m;
    for (int64_t c = 0; c < C; ++c) {
      s += exp_t(x[c * sc] - m);
      if (eps != T(0)) sm += (w ? w[c * sw] : T(1)) * (m - x[c * sc]);
    }
  }
  const T ls = log_t(s);
  stats[0] = m;
  stats[1] = ls;
  if (ignored) {
    *loss = 0;
    return;
  }
  // nll = lse - x_t = (m - x_t) + log s; smooth = sum_c w_c (lse - x_c) = sm + W log s
  T nll = (m - x[t * sc]) + ls;
  T l = (T(1) - eps) * wt * nll;
  if (eps != T(0)) l += eps / T(C) * (sm + wsum * ls);
  *loss = l;
}

// grad_c = scale [(1-eps) w_t (p_c - [c == t]) + eps/C (W p_c - w_c)], p = softmax(x)
//        = A p_c - B w_c, minus D at c == t.
template <class T>
EMBER_FLATTEN inline void ce_row_backward(const T* x, int64_t sc, int64_t C, int64_t t, bool ignored, const T* w, int64_t sw,
                            T wt, T wsum, T eps, const T* stats, T scale, T* gx, int64_t sgx) {
  if (ignored) {
    for (int64_t c = 0; c < C; ++c) gx[c * sgx] = 0;
    return;
  }
  const T m = stats[0], ls = stats[1];
  const T A = scale * ((T(1) - eps) * wt + eps / T(C) * wsum);
  const T B = scale * eps / T(C);
  const T D = scale * (T(1) - eps) * wt;
  if (sc == 1 && sgx == 1) {
    if (w && eps != T(0)) {
      for (int64_t c = 0; c < C; ++c) gx[c] = A * exp_t((x[c] - m) - ls) - B * w[c * sw];
    } else {
      for_chunks_prefetching(C, [&](int64_t c0, int64_t c1) {  // on into the next packed row
        for (int64_t c = c0; c < c1; ++c) gx[c] = A * exp_t((x[c] - m) - ls) - B;
      }, x + kPrefetchChunk);
    }
  } else {
    for (int64_t c = 0; c < C; ++c)
      gx[c * sgx] = A * exp_t((x[c * sc] - m) - ls) - B * (w ? w[c * sw] : T(1));
  }
  gx[t * sgx] -= D;
}

template <class T>
void cross_entropy_run(const Rows3& R, const T* x, const int64_t* tgt, const T* w, int64_t sw, T wsum,
                       int64_t ignore_index, T eps, T* loss, T* stats) {
  R.run([&](int64_t n, int64_t k) {
    int64_t t = tgt[n * R.tn + k * R.tk];
    bool ignored = t == ignore_index;
    T wt = ignored ? T(0) : (w ? w[t * sw] : T(1));
    ce_row_forward<T>(x + n * R.xn + k * R.xk, R.xc, R.C, t, ignored, w, sw, wt, wsum, eps,
                      loss + n * R.K + k, stats + 2 * (n * R.K + k));
  });
}

template <class T>
void cross_entropy_backward_run(const Rows3& R, const T* x, const int64_t* tgt, const T* w, int64_t sw, T wsum,
                                int64_t ignore_index, T eps, const T* stats, const T* g, int64_t gn, int64_t gk,
                                T* gx, int64_t gxn, int64_t gxc, int64_t gxk) {
  R.run([&](int64_t n, int64_t k) {
    int64_t t = tgt[n * R.tn + k * R.tk];
    bool ignored = t == ignore_index;
    T wt = ignored ? T(0) : (w ? w[t * sw] : T(1));
    ce_row_backward<T>(x + n * R.xn + k * R.xk, R.xc, R.C, t, ignored, w, sw, wt, wsum, eps,
                       stats + 2 * (n * R.K + k), g[n * gn + k * gk], gx + n * gxn + k * gxk, gxc);
  });
}

// ---- cross-entropy with probability targets, one (n, k) row: logits x and targets t
// (C values at strides sc, st), weights w (C at stride sw; null for all ones).
// t'_c = (1 - eps) t_c + eps / C; loss = sum_c w_c t'_c (lse - x_c)
//      = sum_c w_c t'_c (m - x_c) + log s * sum_c w_c t'_c, with s = sum_c exp(x_c - m).
template <class T>
EMBER_FLATTEN inline void ce_probs_row_forward(const T* x, int64_t sc, const T* t, int64_t st, int64_t C, const T* w,
                                               int64_t sw, T eps, T* loss, T* stats) {
  const T keep = T(1) - eps, uniform = C > 0 ? eps / T(C) : T(0);
  T m = -std::numeric_limits<T>::infinity(), s = 0, a = 0, b = 0;  // a = sum w t' (m - x), b = sum w t'
  if (sc == 1 && st == 1 && (!w || sw == 1)) {
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < C; ++c) m = x[c] > m ? x[c] : m;
    if (w) {
#pragma omp simd reduction(+ : s, a, b)
      for (int64_t c = 0; c < C; ++c) {
        const T wt = w[c] * (keep * t[c] + uniform);
        s += exp_t(x[c] - m);
        a += wt * (m - x[c]);
        b += wt;
      }
    } else {
#pragma omp simd reduction(+ : s, a, b)
      for (int64_t c = 0; c < C; ++c) {
        const T tc = keep * t[c] + uniform;
        s += exp_t(x[c] - m);
        a += tc * (m - x[c]);
        b += tc;
      }
    }
  } else {
    for (int64_t c = 0; c < C; ++c) m = x[c * sc] > m ? x[c * sc] : m;
    for (int64_t c = 0; c < C; ++c) {
      const T wt = (w ? w[c * sw] : T(1)) * (keep * t[c * st] + uniform);
      s += exp_t(x[c * sc] - m);
      a += wt * (m - x[c * sc]);
      b += wt;
    }
  }
  const T ls = log_t(s);
  stats[0] = m;
  stats[1] = ls;
  *loss = a + b * ls;
}

// grad_input_c = g (p_c B - w_c t'_c), B = sum_j w_j t'_j, p = softmax(x);
// grad_target_c = -g (1 - eps) w_c log p_c (gt null: not wanted).
template <class T>
EMBER_FLATTEN inline void ce_probs_row_backward(const T* x, int64_t sc, const T* t, int64_t st, int64_t C, const T* w,
                                                int64_t sw, T eps, const T* stats, T g, T* gx, int64_t sgx, T* gt,
                                                int64_t sgt) {
  const T keep = T(1) - eps, uniform = C > 0 ? eps / T(C) : T(0);
  const T m = stats[0], ls = stats[1];
  T b = 0;
  if (sc == 1 && st == 1 && sgx == 1 && (!w || sw == 1)) {
    if (w) {
#pragma omp simd reduction(+ : b)
      for (int64_t c = 0; c < C; ++c) b += w[c] * (keep * t[c] + uniform);
      const T gb = g * b;
      for (int64_t c = 0; c < C; ++c) gx[c] = gb * exp_t((x[c] - m) - ls) - g * w[c] * (keep * t[c] + uniform);
    } else {
#pragma omp simd reduction(+ : b)
      for (int64_t c = 0; c < C; ++c) b += keep * t[c] + uniform;
      const T gb = g * b;
      for (int64_t c = 0; c < C; ++c) gx[c] = gb * exp_t((x[c] - m) - ls) - g * (keep * t[c] + uniform);
    }
  } else {
    for (int64_t c = 0; c < C; ++c) b += (w ? w[c * sw] : T(1)) * (keep * t[c * st] + uniform);
    const T gb = g * b;
    for (int64_t c = 0; c < C; ++c)
      gx[c * sgx] = gb * exp_t((x[c * sc] - m) - ls) - g * (w ? w[c * sw] : T(1)) * (keep * t[c * st] + uniform);
  }
  if (gt) {
    const T gk = -g * keep;
    for (int64_t c = 0; c < C; ++c) gt[c * sgt] = gk * (w ? w[c * sw] : T(1)) * ((x[c * sc] - m) - ls);
  }
}

// Target (N, C, K) at strides (tn, tc, tk); the rows of x as in R.
template <class T>
void cross_entropy_probs_run(const Rows3& R, const T* x, const T* t, int64_t tn, int64_t tc, int64_t tk, const T* w,
                             int64_t sw, T eps, T* loss, T* stats) {
  R.run([&](int64_t n, int64_t k) {
    ce_probs_row_forward<T>(x + n * R.xn + k * R.xk, R.xc, t + n * tn + k * tk, tc, R.C, w, sw, eps,
                            loss + n * R.K + k, stats + 2 * (n * R.K + k));
  });
}

// g (N, K) at strides (gn, gk); gx and gt (N, C, K) at strides gxs and gts (gt may be null).
template <class T>
void cross_entropy_probs_backward_run(const Rows3& R, const T* x, const T* t, int64_t tn, int64_t tc, int64_t tk,
                                      const T* w, int64_t sw, T eps, const T* stats, const T* g, int64_t gn,
                                      int64_t gk, T* gx, const int64_t* gxs, T* gt, const int64_t* gts) {
  R.run([&](int64_t n, int64_t k) {
    ce_probs_row_backward<T>(x + n * R.xn + k * R.xk, R.xc, t + n * tn + k * tk, tc, R.C, w, sw, eps,
                             stats + 2 * (n * R.K + k), g[n * gn + k * gk], gx + n * gxs[0] + k * gxs[2], gxs[1],
                             gt ? gt + n * gts[0] + k * gts[2] : nullptr, gts[1]);
  });
}

// ---- elementwise losses over same-shape (broadcast) operands, any strides

// mse: out = (x - t)^2
template <class T>
void mse_run(const StridedLoop<3>& L, const T* x, const T* t, T* o) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st, int64_t n) EMBER_FLATTEN {
    const T* px = x + off[0];
    const T* pt = t + off[1];
    T* po = o + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) { T d = px[i] - pt[i]; po[i] = d * d; }
    } else {
      for (int64_t i = 0; i < n; ++i) { T d = px[i * st[0]] - pt[i * st[1]]; po[i * st[2]] = d * d; }
    }
  });
}

// grad_input = 2 scale g (x - t)
template <class T>
void mse_backward_run(const StridedLoop<4>& L, const T* x, const T* t, const T* g, T scale2, T* o) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st, int64_t n) EMBER_FLATTEN {
    const T* px = x + off[0];
    const T* pt = t + off[1];
    const T* pg = g + off[2];
    T* po = o + off[3];
    if (st[0] == 1 && st[1] == 1 && st[2] == 0 && st[3] == 1) {  // reduced loss: g is one value
      const T c = scale2 * *pg;
      for (int64_t i = 0; i < n; ++i) po[i] = c * (px[i] - pt[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[3]] = scale2 * pg[i * st[2]] * (px[i * st[0]] - pt[i * st[1]]);
    }
  });
}

// bce with logits: loss = w [(1 - t) x + (1 + (pw - 1) t) softplus(-x)]
template <class T>
void bce_run(const StridedLoop<5>& L, const T* x, const T* t, const T* w, const T* pw, T* o) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 5>& off, const std::array<int64_t, 5>& st, int64_t n) EMBER_FLATTEN {
    const T *px = x + off[0], *pt = t + off[1], *pww = w + off[2], *ppw = pw + off[3];
    T* po = o + off[4];
    for (int64_t i = 0; i < n; ++i) {
      T xi = px[i * st[0]], ti = pt[i * st[1]];
      T lw = T(1) + (ppw[i * st[3]] - T(1)) * ti;
      po[i * st[4]] = pww[i * st[2]] * ((T(1) - ti) * xi + lw * softplus_neg(xi));
    }
  });
}

// grad_input  = w g ((1 - t) - (1 + (pw - 1) t) sigmoid(-x))
// grad_target = w g (-x + (pw - 1) softplus(-x))        (when gt is given)
template <class T>
void bce_backward_run(const StridedLoop<7>& L, const T* x, const T* t, const T* w, const T* pw, const T* g, T scale,
                      T* gx, T* gt) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 7>& off, const std::array<int64_t, 7>& st, int64_t n) EMBER_FLATTEN {
    const T *px = x + off[0], *pt = t + off[1], *pww = w + off[2], *ppw = pw + off[3], *pg = g + off[4];
    T* pgx = gx + off[5];
    T* pgt = gt ? gt + off[6] : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      T xi = px[i * st[0]], ti = pt[i * st[1]], pwi = ppw[i * st[3]];
      T c = scale * pww[i * st[2]] * pg[i * st[4]];
      pgx[i * st[5]] = c * ((T(1) - ti) - (T(1) + (pwi - T(1)) * ti) * sigmoid_t(-xi));
    }
    if (pgt) {
      for (int64_t i = 0; i < n; ++i) {
        T xi = px[i * st[0]], pwi = ppw[i * st[3]];
        T c = scale * pww[i * st[2]] * pg[i * st[4]];
        pgt[i * st[6]] = c * (-xi + (pwi - T(1)) * softplus_neg(xi));
      }
    }
  });
}
