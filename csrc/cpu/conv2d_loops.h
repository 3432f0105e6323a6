// Inner loops of the conv2d kernels (data movement and the small direct kernels).
// Included once per ISA region by conv2d.cpp (no include guard on purpose), so each
// loop is compiled for scalar, AVX2 and AVX-512 and picked at run time. The heavy
// arithmetic of the im2col path is the GEMM's; these loops feed it.
//
// Shapes (one image, one group's channels): x (C,H,W), col (C*R*S, P*Q).

// The q range [lo, hi) of one output row whose input column q*sw - pad_left + s*dw
// lies inside [0, W).
inline void valid_cols(const ConvGeometry& g, int64_t W, int64_t Q, int64_t s, int64_t* lo, int64_t* hi) {
  const int64_t off = s * g.dil_w - g.pad_left;  // input column of q = 0
  // smallest q with q*sw + off >= 0, and smallest q with q*sw + off >= W
  int64_t a = off >= 0 ? 0 : (-off + g.stride_w - 1) / g.stride_w;
  int64_t b = W - off <= 0 ? 0 : (W - off + g.stride_w - 1) / g.stride_w;
  *lo = std::min(a, Q);
  *hi = std::max(*lo, std::min(b, Q));
}

// col rows [row0, row1) from x: col[(c*R + r)*S + s][p*Q + q] = x[c][ih][iw] or 0 in the padding.
template <class T>
void im2col(const T* x, int64_t H, int64_t W, const ConvGeometry& g, int64_t R, int64_t S, int64_t P, int64_t Q,
            int64_t row0, int64_t row1, T* col) {
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t c = row / (R * S), r = (row / S) % R, s = row % S;
    int64_t lo, hi;
    valid_cols(g, W, Q, s, &lo, &hi);
    const int64_t col_off = s * g.dil_w - g.pad_left;
    T* dst = col + row * P * Q;
    for (int64_t p = 0; p < P; ++p, dst += Q) {
      const int64_t ih = p * g.stride_h - g.pad_top + r * g.dil_h;
      if (ih < 0 || ih >= H) {
        for (int64_t q = 0; q < Q; ++q) dst[q] = T(0);
        continue;
      }
      const T* src = x + (c * H + ih) * W + col_off;
      for (int64_t q = 0; q < lo; ++q) dst[q] = T(0);
      if (g.stride_w == 1) {
        for (int64_t q = lo; q < hi; ++q) dst[q] = src[q];
      } else {
        const int64_t sw = g.stride_w;
        for (int64_t q = lo; q < hi; ++q) dst[q] = src[q * sw];
      }
      for (int64_t q = hi; q < Q; ++q) dst[q] = T(0);
    }
  }
}

// x[c] += the col rows of channels [c0, c1) folded back (the adjoint of im2col).
template <class T>
void col2im(const T* col, int64_t H, int64_t W, const ConvGeometry& g, int64_t R, int64_t S, int64_t P, int64_t Q,
            int64_t c0, int64_t c1, T* x) {
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t s = 0; s < S; ++s) {
        int64_t lo, hi;
        valid_cols(g, W, Q, s, &lo, &hi);
        const int64_t col_off = s * g.dil_w - g.pad_left;
        const T* src = col + ((c * R + r) * S + s) * P * Q;
        for (int64_t p = 0; p < P; ++p, src += Q) {
          const int64_t ih = p * g.stride_h - g.pad_top + r * g.dil_h;
          if (ih < 0 || ih >= H) continue;
          T* dst = x + (c * H + ih) * W + col_off;
          if (g.stride_w == 1) {
            for (int64_t q = lo; q < hi; ++q) dst[q] += src[q];
          } else {
            const int64_t sw = g.stride_w;
            for (int64_t q = lo; q < hi; ++q) dst[q * sw] += src[q];
          }
        }
      }
    }
  }
}

// out[k][:] = bias[k] for rows k of length n (the GEMM then accumulates with beta = 1).
template <class T>
void fill_rows(T* out, const T* bias, int64_t K, int64_t n) {
  for (int64_t k = 0; k < K; ++k) {
    const T b = bias ? bias[k] : T(0);
    T* o = out + k * n;
    for (int64_t i = 0; i < n; ++i) o[i] = b;
  }
}

// dst[i] += src[i]
template <class T>
void add_into(T* dst, const T* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// Sum of a contiguous row, in 16 partial sums so it vectorizes (accumulated in double
// for float, in the caller's type for double).
template <class T>
double row_sum(const T* x, int64_t n) {
  constexpr int L = 16;
  T acc[L] = {};
  int64_t i = 0;
  double total = 0;
  while (i < n) {
    const int64_t end = std::min(n, i + 4096);  // flush float partials every 4096 elements
    for (; i + L <= end; i += L)
      for (int j = 0; j < L; ++j) acc[j] += x[i + j];
    for (; i < end; ++i) acc[0] += x[i];
    for (int j = 0; j < L; ++j) { total += acc[j]; acc[j] = T(0); }
  }
  return total;
}

// ---- direct convolution for stride-1 layers with few input channels (C*R*S small, e.g.
// the C=1 first layer): the GEMM's inner dimension would be C*R*S (9), too short for it
// to pay for packing. Instead the padded image is laid out with row stride Wp = W +
// pad_left + pad_right, so that every tap (c, r, s) is one shift of a flat vector:
//   wide[k][p*Wp + q] = sum_{c,r,s} w[k,c,r,s] * xpad[c][(p + r*dh)*Wp + q + s*dw]
// which is a 1-D FIR filter over P*Wp contiguous outputs (columns q >= Q are computed and
// dropped). xpad needs a few spare zero elements at the end for the last taps.
//   xpad (C, Hp*Wp + tail), w (K, C*R*S), wide (K, P*Wp)

constexpr int kDirectK = 8;    // output channels per block (accumulators share each x load)
constexpr int kDirectJ = 48;   // outputs per block

template <class T>
void direct_forward_image(const T* xpad, int64_t C, int64_t Hp, int64_t Wp, int64_t xplane, const T* w,
                          const T* bias, int64_t K, int64_t R, int64_t S, int64_t dh, int64_t dw, int64_t P,
                          int64_t Q, T* out) {
  // Accumulators as explicit 64-byte vectors (GCC vector extension; lowered to whatever
  // the ISA region has) so that the kDirectK x kDirectJ block stays in registers.
  typedef T V __attribute__((vector_size(64)));
  constexpr int L = 64 / sizeof(T), NV = kDirectJ / L;
  static_assert(kDirectJ % L == 0, "block must be whole vectors");
  const int64_t CRS = C * R * S, n = P * Wp;
  for (int64_t k0 = 0; k0 < K; k0 += kDirectK) {
    const int64_t kb = std::min<int64_t>(kDirectK, K - k0);
    for (int64_t j0 = 0; j0 < n; j0 += kDirectJ) {
      const int64_t jn = std::min<int64_t>(kDirectJ, n - j0);
      V acc[kDirectK][NV];
#pragma GCC unroll 16
      for (int kk = 0; kk < kDirectK; ++kk) {
        const T b = (bias && kk < kb) ? bias[k0 + kk] : T(0);
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[kk][v] = V{} + b;
      }
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t s = 0; s < S; ++s) {
            const int64_t t = (c * R + r) * S + s;
            // full blocks read kDirectJ elements: the plane has a tail of zeros for that
            const T* xs = xpad + c * xplane + r * dh * Wp + s * dw + j0;
            V xv[NV];
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) std::memcpy(&xv[v], xs + v * L, sizeof(V));
#pragma GCC unroll 16
            for (int kk = 0; kk < kDirectK; ++kk) {
              const T wt = kk < kb ? w[(k0 + kk) * CRS + t] : T(0);
#pragma GCC unroll 16
              for (int v = 0; v < NV; ++v) acc[kk][v] += wt * xv[v];
            }
          }
      // copy the wide rows into out (K, P, Q) row segment by row segment, dropping q >= Q
      T accs[kDirectK][kDirectJ];
      std::memcpy(accs, acc, sizeof(accs));
      int64_t p = j0 / Wp, q = j0 % Wp, j = 0;
      while (j < jn) {
        const int64_t seg = std::min(jn - j, Wp - q);
        const int64_t keep = std::max<int64_t>(0, std::min(seg, Q - q));
        for (int64_t kk = 0; kk < kb; ++kk) {
          T* o = out + ((k0 + kk) * P + p) * Q + q;
          const T* a = accs[kk] + j;
          for (int64_t i = 0; i < keep; ++i) o[i] = a[i];
        }
        j += seg;
        q = 0;
        ++p;
      }
    }
  }
}

// dw[k][t] += sum_j dyw[k][j] * xpad[c][j + r*dh*Wp + s*dw], t = (c, r, s): the weight
// gradient of the direct layer as dot products over the wide layout. dyw is dy (K,P,Q)
// spread to rows of Wp with zeros in the dropped columns, n (= P*Wp rounded up to a
// multiple of 16) long, so the dots are long contiguous runs.
//   dyw (K, n), xpad as above, dw (K, C*R*S)
template <class T>
void direct_backward_weight_image(const T* xpad, int64_t C, int64_t Wp, int64_t xplane, const T* dyw, int64_t n,
                                  int64_t K, int64_t R, int64_t S, int64_t dh, int64_t dwl, T* dw) {
  const int64_t CRS = C * R * S;
  constexpr int L = 16;
  for (int64_t k0 = 0; k0 < K; k0 += kDirectK) {
    const int64_t kb = std::min<int64_t>(kDirectK, K - k0);
    for (int64_t t = 0; t < CRS; ++t) {
      const int64_t c = t / (R * S), r = (t / S) % R, s = t % S;
      const T* xs = xpad + c * xplane + r * dh * Wp + s * dwl;
      T acc[kDirectK][L] = {};
      if (kb == kDirectK) {
        for (int64_t j = 0; j < n; j += L)
          for (int kk = 0; kk < kDirectK; ++kk)
            for (int l = 0; l < L; ++l) acc[kk][l] += dyw[(k0 + kk) * n + j + l] * xs[j + l];
      } else {
        for (int64_t kk = 0; kk < kb; ++kk)
          for (int64_t j = 0; j < n; j += L)
            for (int l = 0; l < L; ++l) acc[kk][l] += dyw[(k0 + kk) * n + j + l] * xs[j + l];
      }
      for (int64_t kk = 0; kk < kb; ++kk) {
        T sum = T(0);
        for (int l = 0; l < L; ++l) sum += acc[kk][l];
        dw[(k0 + kk) * CRS + t] += sum;
      }
    }
  }
}

// dyw[k] = dy[k] (P,Q) spread to rows of Wp, zeros elsewhere, n long.
template <class T>
void widen_rows(const T* dy, int64_t K, int64_t P, int64_t Q, int64_t Wp, int64_t n, T* dyw) {
  for (int64_t k = 0; k < K; ++k) {
    T* d = dyw + k * n;
    for (int64_t i = 0; i < n; ++i) d[i] = T(0);
    for (int64_t p = 0; p < P; ++p) {
      const T* s = dy + (k * P + p) * Q;
      for (int64_t q = 0; q < Q; ++q) d[p * Wp + q] = s[q];
    }
  }
}

// xpad[c] = x[c] placed at (pad_top, pad_left) in a zeroed (Hp, Wp) plane of stride xplane.
template <class T>
void pad_image(const T* x, int64_t C, int64_t H, int64_t W, int64_t pad_top, int64_t pad_left, int64_t Hp,
               int64_t Wp, int64_t xplane, T* xpad) {
  for (int64_t c = 0; c < C; ++c) {
    T* d = xpad + c * xplane;
    for (int64_t i = 0; i < xplane; ++i) d[i] = T(0);
    for (int64_t h = 0; h < H; ++h) {
      const T* s = x + (c * H + h) * W;
      T* dr = d + (h + pad_top) * Wp + pad_left;
      for (int64_t w = 0; w < W; ++w) dr[w] = s[w];
    }
  }
}

// ---- the "wide" layout for stride-1 layers: with the padded image's rows Wp long, the
// im2col row of tap (c, r, s) is one contiguous run of xpad, P*Wp long, starting at
// r*dh*Wp + s*dw (its columns q >= Q are junk and dropped later). So im2col is a few long
// copies instead of P*C*R*S short ones, and col2im a few long vector adds.
//   xpad (C, plane)   col (C*R*S, n = P*Wp)

// col (C*R*S, jn) = columns [j0, j0 + jn) of the wide im2col, rows [row0, row1).
template <class T>
void wide_im2col(const T* xpad, int64_t xplane, int64_t Wp, int64_t R, int64_t S, int64_t dh, int64_t dw,
                 int64_t j0, int64_t jn, int64_t row0, int64_t row1, T* col) {
  for (int64_t row = row0; row < row1; ++row) {
    const int64_t c = row / (R * S), r = (row / S) % R, s = row % S;
    const T* src = xpad + c * xplane + r * dh * Wp + s * dw + j0;
    T* dst = col + row * jn;
    for (int64_t j = 0; j < jn; ++j) dst[j] = src[j];
  }
}

// xpad += columns [j0, j0 + jn) of the wide col of channels [c0, c1), col (C*R*S, jn).
template <class T>
void wide_col2im(const T* col, int64_t xplane, int64_t Wp, int64_t R, int64_t S, int64_t dh, int64_t dw, int64_t j0,
                 int64_t jn, int64_t c0, int64_t c1, T* xpad) {
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t s = 0; s < S; ++s) {
        const T* src = col + ((c * R + r) * S + s) * jn;
        T* dst = xpad + c * xplane + r * dh * Wp + s * dw + j0;
        for (int64_t j = 0; j < jn; ++j) dst[j] += src[j];
      }
}

// out[k][p][:] = wide[k][p*Wp : p*Wp + Q] (+ bias[k]) for k in [k0, k1)
template <class T>
void unwiden_rows(const T* wide, const T* bias, int64_t k0, int64_t k1, int64_t P, int64_t Q, int64_t Wp, T* out) {
  for (int64_t k = k0; k < k1; ++k) {
    const T b = bias ? bias[k] : T(0);
    for (int64_t p = 0; p < P; ++p) {
      const T* s = wide + (k * P + p) * Wp;
      T* d = out + (k * P + p) * Q;
      for (int64_t q = 0; q < Q; ++q) d[q] = s[q] + b;
    }
  }
}

// x[c] = the interior (pad_top, pad_left) of xpad[c], for c in [c0, c1)
template <class T>
void crop_image(const T* xpad, int64_t c0, int64_t c1, int64_t H, int64_t W, int64_t pad_top, int64_t pad_left,
                int64_t Wp, int64_t xplane, T* x) {
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t h = 0; h < H; ++h) {
      const T* s = xpad + c * xplane + (h + pad_top) * Wp + pad_left;
      T* d = x + (c * H + h) * W;
      for (int64_t w = 0; w < W; ++w) d[w] = s[w];
    }
}
