// Inner loops of the depthwise conv2d (groups == C == K: one R x S filter per channel),
// included once per ISA region by conv2d_depthwise.cpp (no include guard on purpose).
//
// Each (n, c) plane is padded into `sw` phase planes (sw = stride_w): phase f holds the
// padded columns f, f + sw, f + 2 sw, ... so that tap (r, s) of output q reads column
// q + (s*dw) / sw of phase (s*dw) % sw: contiguous in q for every stride. Rows are Ws
// long (>= Q rounded up to whole vectors plus the largest tap shift, zero-filled), so full
// vector loads never leave the buffer; outputs q >= Q are computed and dropped.
//   xph (sw, Hp, Ws); tap t = r*S + s at toff[t] = (f*Hp + r*dh)*Ws + (s*dw)/sw.
// Accumulators are 64-byte GCC vectors (lowered to what the ISA region has): a block of
// RB output rows x NB vectors stays in registers across all taps.

// Padded column j = jj*sw + f of phase f is input column j - pad_left: the jj range whose
// input column lies in [0, W).
inline void dw_phase_cols(int64_t f, int64_t sw, int64_t W, int64_t pad_left, int64_t* lo, int64_t* hi) {
  const int64_t a = pad_left - f, b = W + pad_left - f;  // need a <= jj*sw < b
  *lo = a <= 0 ? 0 : (a + sw - 1) / sw;
  *hi = b <= 0 ? 0 : (b + sw - 1) / sw;
}

// xph (sw, Hp, Ws) = x (H, W) padded (pad_top, pad_left; zeros elsewhere) and split by column phase.
template <class T>
void dw_pad_plane(const T* x, int64_t H, int64_t W, int64_t pad_top, int64_t pad_left, int64_t sw, int64_t Hp,
                  int64_t Ws, T* xph) {
  std::memset(xph, 0, sizeof(T) * sw * Hp * Ws);
  for (int64_t f = 0; f < sw; ++f) {
    int64_t lo, hi;
    dw_phase_cols(f, sw, W, pad_left, &lo, &hi);
    const int64_t shift = f - pad_left;
    for (int64_t h = 0; h < H; ++h) {
      const T* src = x + h * W + shift;
      T* dst = xph + (f * Hp + h + pad_top) * Ws;
      for (int64_t jj = lo; jj < hi; ++jj) dst[jj] = src[jj * sw];
    }
  }
}

// dx (H, W) = the interior of dxph (sw, Hp, Ws), the phase layout above (its adjoint crop).
template <class T>
void dw_crop_plane(const T* dxph, int64_t H, int64_t W, int64_t pad_top, int64_t pad_left, int64_t sw, int64_t Hp,
                   int64_t Ws, T* dx) {
  for (int64_t f = 0; f < sw; ++f) {
    int64_t lo, hi;
    dw_phase_cols(f, sw, W, pad_left, &lo, &hi);
    const int64_t shift = f - pad_left;
    for (int64_t h = 0; h < H; ++h) {
      const T* src = dxph + (f * Hp + h + pad_top) * Ws;
      T* dst = dx + h * W + shift;
      for (int64_t jj = lo; jj < hi; ++jj) dst[jj * sw] = src[jj];
    }
  }
}

// dyp (P, Qr) = dy (P, Q) with each row zero-padded to Qr (whole vectors).
template <class T>
void dw_pad_rows(const T* dy, int64_t P, int64_t Q, int64_t Qr, T* dyp) {
  for (int64_t p = 0; p < P; ++p) {
    std::memcpy(dyp + p * Qr, dy + p * Q, sizeof(T) * Q);
    std::memset(dyp + p * Qr + Q, 0, sizeof(T) * (Qr - Q));
  }
}

// Output rows [p, p + RB), vectors [q0, q0 + NB*L) of one plane: y = b + sum_t w[t] xph[.. + toff[t]].
// rstep = stride_h * Ws (next output row); y (P, Q).
template <class T, int RB, int NB>
EMBER_INLINE void dw_forward_block(const T* base, int64_t rstep, const int64_t* toff, const T* w, int64_t RS, T b,
                                   T* y, int64_t Q, int64_t q0) {
  typedef T V __attribute__((vector_size(64)));
  constexpr int L = 64 / sizeof(T);
  V acc[RB][NB];
#pragma GCC unroll 16
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 16
    for (int v = 0; v < NB; ++v) acc[i][v] = V{} + b;
  for (int64_t t = 0; t < RS; ++t) {
    const T wt = w[t];
    const T* src = base + toff[t];
#pragma GCC unroll 16
    for (int i = 0; i < RB; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NB; ++v) {
        V xv;
        std::memcpy(&xv, src + i * rstep + v * L, sizeof(V));
        acc[i][v] += wt * xv;
      }
  }
  for (int i = 0; i < RB; ++i)
    for (int v = 0; v < NB; ++v) {
      const int64_t q = q0 + v * L, keep = std::min<int64_t>(L, Q - q);
      if (keep == L) std::memcpy(y + i * Q + q, &acc[i][v], sizeof(V));
      else if (keep > 0) std::memcpy(y + i * Q + q, &acc[i][v], sizeof(T) * keep);
    }
}

template <class T, int RB>
EMBER_INLINE void dw_forward_rows(const T* base, int64_t rstep, const int64_t* toff, const T* w, int64_t RS, T b,
                                  T* y, int64_t Q, int64_t nvec) {
  constexpr int L = 64 / sizeof(T);
  int64_t v0 = 0;
  for (; v0 + 4 <= nvec; v0 += 4) dw_forward_block<T, RB, 4>(base + v0 * L, rstep, toff, w, RS, b, y, Q, v0 * L);
  switch (nvec - v0) {
    case 3: dw_forward_block<T, RB, 3>(base + v0 * L, rstep, toff, w, RS, b, y, Q, v0 * L); break;
    case 2: dw_forward_block<T, RB, 2>(base + v0 * L, rstep, toff, w, RS, b, y, Q, v0 * L); break;
    case 1: dw_forward_block<T, RB, 1>(base + v0 * L, rstep, toff, w, RS, b, y, Q, v0 * L); break;
    default: break;
  }
}

// y (P, Q) of one plane from xph (phase layout above), filter w (R*S), bias b.
template <class T>
EMBER_FLATTEN void dw_forward_plane(const T* xph, int64_t Ws, int64_t sh, const int64_t* toff, const T* w,
                                    int64_t RS, T b, int64_t P, int64_t Q, T* y) {
  constexpr int L = 64 / sizeof(T);
  const int64_t nvec = (Q + L - 1) / L, rstep = sh * Ws;
  // Two rows per block when a row has few vectors (8 accumulators hide the FMA latency).
  const bool two_rows = nvec <= 2;
  int64_t p = 0;
  if (two_rows)
    for (; p + 2 <= P; p += 2) dw_forward_rows<T, 2>(xph + p * rstep, rstep, toff, w, RS, b, y + p * Q, Q, nvec);
  for (; p < P; ++p) dw_forward_rows<T, 1>(xph + p * rstep, rstep, toff, w, RS, b, y + p * Q, Q, nvec);
}

// dxph += the adjoint of dw_forward_plane: for each output row p and tap t,
// dxph[.. + toff[t] + p*rstep + q] += w[t] dyp[p][q]. dyp (P, Qr) zero-padded (dw_pad_rows),
// dxph (sw, Hp, Ws) zeroed by the caller.
template <class T>
EMBER_FLATTEN void dw_backward_data_plane(const T* dyp, int64_t Qr, int64_t Ws, int64_t sh, const int64_t* toff,
                                          const T* w, int64_t RS, int64_t P, T* dxph) {
  typedef T V __attribute__((vector_size(64)));
  constexpr int L = 64 / sizeof(T);
  const int64_t rstep = sh * Ws;
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t q0 = 0; q0 < Qr; q0 += 4 * L) {
      const int nb = static_cast<int>(std::min<int64_t>(4, (Qr - q0) / L));
      V g[4];
      for (int v = 0; v < nb; ++v) std::memcpy(&g[v], dyp + p * Qr + q0 + v * L, sizeof(V));
      T* base = dxph + p * rstep + q0;
      for (int64_t t = 0; t < RS; ++t) {
        const T wt = w[t];
        T* dst = base + toff[t];
        for (int v = 0; v < nb; ++v) {
          V d;
          std::memcpy(&d, dst + v * L, sizeof(V));
          d += wt * g[v];
          std::memcpy(dst + v * L, &d, sizeof(V));
        }
      }
    }
  }
}

// dw[t] += sum_{p, q} dyp[p][q] xph[.. + toff[t] + p*rstep + q] for every tap t, the
// products summed in vectors per plane and added to dw (double) at the end.
template <class T>
EMBER_FLATTEN void dw_backward_weight_plane(const T* xph, const T* dyp, int64_t Qr, int64_t Ws, int64_t sh,
                                            const int64_t* toff, int64_t RS, int64_t P, double* dw) {
  typedef T V __attribute__((vector_size(64)));
  constexpr int L = 64 / sizeof(T);
  const int64_t rstep = sh * Ws;
  for (int64_t t = 0; t < RS; ++t) {
    V acc[4] = {};
    for (int64_t p = 0; p < P; ++p) {
      const T* g = dyp + p * Qr;
      const T* xs = xph + toff[t] + p * rstep;
      int64_t q = 0;
      for (; q + 4 * L <= Qr; q += 4 * L)
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) {
          V a, b;
          std::memcpy(&a, g + q + v * L, sizeof(V));
          std::memcpy(&b, xs + q + v * L, sizeof(V));
          acc[v] += a * b;
        }
      for (int v = 0; q < Qr; q += L, ++v) {
        V a, b;
        std::memcpy(&a, g + q, sizeof(V));
        std::memcpy(&b, xs + q, sizeof(V));
        acc[v] += a * b;
      }
    }
    const V sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    double s = 0;
    for (int l = 0; l < L; ++l) s += sum[l];
    dw[t] += s;
  }
}
