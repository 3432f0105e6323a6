// Inner loops of Winograd F(4x4, 3x3) (conv2d_winograd.cpp), compiled once per ISA
// region (no include guard on purpose). Every transform works on 16 channels at once,
// held in a v16 (GCC vector of 16 floats: one AVX-512 register, two AVX2 ones).
//
// Channel-last ("HWC") buffers hold the tiles: element (row, col, channel) of a buffer
// with Wt columns and Cp channels (Cp a multiple of 16) is at (row * Wt + col) * Cp + c.
// Transformed tiles are stored as 36 matrices, one per point xi of the 6x6 transform
// domain: V[xi][t][c] (t = tile within the block, row stride Cp, matrix stride xs >= tiles*Cp).
//
// The transform matrices (Lavin & Gray 2016, interpolation points 0, +-1, +-2, inf):
//   input   V = B^T d B     B^T = [4  0 -5  0 1 0; 0 -4 -4  1 1 0; 0  4 -4 -1 1 0;
//                                  0 -2 -1  2 1 0; 0  2 -1 -2 1 0; 0  4  0 -5 0 1]
//   weight  U = G g G^T     G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
//                                  1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   output  Y = A^T M A     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// and for the weight gradient, dW = G^T (sum over tiles of V . (A dY A^T)) G.

namespace wino {

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // for unaligned access
inline v16 load(const float* p) { return *reinterpret_cast<const v16u*>(p); }
inline void store(float* p, v16 v) { *reinterpret_cast<v16u*>(p) = v; }

// out[0..5] = B^T in[0..5]
inline void input_1d(const v16* in, v16* out) {
  const v16 a = in[4] - 4.0f * in[2], b = in[3] - 4.0f * in[1], c = in[4] - in[2], d = 2.0f * (in[3] - in[1]);
  out[0] = 4.0f * in[0] - 5.0f * in[2] + in[4];
  out[1] = a + b;
  out[2] = a - b;
  out[3] = c + d;
  out[4] = c - d;
  out[5] = 4.0f * in[1] - 5.0f * in[3] + in[5];
}

// out[0..3] = A^T m[0..5]
inline void output_1d(const v16* m, v16* out) {
  const v16 s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  out[0] = m[0] + s12 + s34;
  out[1] = d12 + 2.0f * d34;
  out[2] = s12 + 4.0f * s34;
  out[3] = d12 + 8.0f * d34 + m[5];
}

// out[0..5] = A d[0..3] (the weight gradient's transform of a 4x4 grad_out tile)
inline void grad_1d(const v16* d, v16* out) {
  const v16 e = d[0] + d[2], o = d[1] + d[3], e4 = d[0] + 4.0f * d[2], o8 = 2.0f * d[1] + 8.0f * d[3];
  out[0] = d[0];
  out[1] = e + o;
  out[2] = e - o;
  out[3] = e4 + o8;
  out[4] = e4 - o8;
  out[5] = d[3];
}

// out[0..5] = G g[0..2]
inline void weight_1d(const v16* g, v16* out) {
  out[0] = 0.25f * g[0];
  out[1] = (g[0] + g[1] + g[2]) * (-1.0f / 6);
  out[2] = (g[0] - g[1] + g[2]) * (-1.0f / 6);
  out[3] = g[0] * (1.0f / 24) + g[1] * (1.0f / 12) + g[2] * (1.0f / 6);
  out[4] = g[0] * (1.0f / 24) - g[1] * (1.0f / 12) + g[2] * (1.0f / 6);
  out[5] = g[2];
}

// out[0..2] = G^T w[0..5]
inline void weight_grad_1d(const v16* w, v16* out) {
  const v16 s12 = w[1] + w[2], d12 = w[2] - w[1], s34 = w[3] + w[4], d34 = w[3] - w[4];
  out[0] = 0.25f * w[0] - s12 * (1.0f / 6) + s34 * (1.0f / 24);
  out[1] = d12 * (1.0f / 6) + d34 * (1.0f / 12);
  out[2] = (s34 - s12) * (1.0f / 6) + w[5];
}

}  // namespace wino

// U[xi][a][b] (36, Ap, Bp) = G g G^T for every pair (a < A, b < B), where the 3x3 filter
// g of a pair is w[(b * A + a) * 9 + tap] (forward: a = input channel, b = output
// channel, w (B,A,3,3)), or, when `flip`, w[(a * B + b) * 9 + 8 - tap] (backward data:
// the filter rotated by 180 degrees with the channel roles swapped, w (A,B,3,3)).
// Padding rows and columns (a >= A or b >= B) are zero.
inline void winograd_weight_transform(const float* w, int64_t A, int64_t B, bool flip, int64_t Ap, int64_t Bp,
                                      float* U) {
  using wino::v16;
  for (int64_t a = 0; a < Ap; ++a)
    for (int64_t b0 = 0; b0 < Bp; b0 += 16) {
      float g[9][16];
      for (int l = 0; l < 16; ++l) {
        const int64_t b = b0 + l;
        for (int tap = 0; tap < 9; ++tap)
          g[tap][l] = a >= A || b >= B ? 0.0f : flip ? w[(a * B + b) * 9 + 8 - tap] : w[(b * A + a) * 9 + tap];
      }
      v16 gg[6][3];  // gg[.][s] = G g[.][s]
      for (int s = 0; s < 3; ++s) {
        const v16 col[3] = {wino::load(g[s]), wino::load(g[3 + s]), wino::load(g[6 + s])};
        v16 out[6];
        wino::weight_1d(col, out);
        for (int i = 0; i < 6; ++i) gg[i][s] = out[i];
      }
      for (int i = 0; i < 6; ++i) {  // u[i] = G gg[i]
        v16 u[6];
        wino::weight_1d(gg[i], u);
        for (int j = 0; j < 6; ++j) wino::store(U + ((i * 6 + j) * Ap + a) * Bp + b0, u[j]);
      }
    }
}

#if EMBER_ISA_LEVEL == 2
// r[i][j] <- r[j][i] for a 16 x 16 block of floats, one row per register. (GCC 12's
// shuffle intrinsics pass an undefined vector as the unused merge source, which its
// -Wmaybe-uninitialized then reports; every lane here is written.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // 2x2 blocks of single floats
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // 4x4 blocks, within each 128-bit lane
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; ++j) {  // then the 128-bit lanes themselves, in two rounds
    const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), b = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 c = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 d = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
}
#pragma GCC diagnostic pop
#endif

// xt (rows, Wt, Cp) = the input rows [row0, row0 + rows) and columns [-col0, Wt - col0)
// of `in` (C, H, W) in channel-last order, zero outside the image and for channels >= C.
// The transposition goes 16 channels x 16 columns at a time.
inline void winograd_pack_input(const float* in, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                                int64_t col0, int64_t Wt, int64_t Cp, float* xt) {
  const int64_t i0 = std::clamp<int64_t>(-row0, 0, rows), i1 = std::clamp<int64_t>(H - row0, i0, rows);
  const int64_t j0 = std::min(col0, Wt), j1 = std::clamp<int64_t>(W + col0, j0, Wt);
  std::memset(xt, 0, sizeof(float) * i0 * Wt * Cp);
  std::memset(xt + i1 * Wt * Cp, 0, sizeof(float) * (rows - i1) * Wt * Cp);
  for (int64_t i = i0; i < i1; ++i) {
    float* row = xt + i * Wt * Cp;
    std::memset(row, 0, sizeof(float) * j0 * Cp);
    std::memset(row + j1 * Cp, 0, sizeof(float) * (Wt - j1) * Cp);
  }
  for (int64_t c0 = 0; c0 < Cp; c0 += 16)
    for (int64_t i = i0; i < i1; ++i) {
      const float* src = in + (c0 * H + row0 + i) * W - col0;  // channel c0's row; + l*H*W for channel c0 + l
      float* dst = xt + i * Wt * Cp + c0;
      for (int64_t j = j0; j < j1; j += 16) {
        const int n = static_cast<int>(std::min<int64_t>(16, j1 - j));
#if EMBER_ISA_LEVEL == 2
        const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
        __m512 r[16];
        for (int l = 0; l < 16; ++l)
          r[l] = c0 + l < C ? _mm512_maskz_loadu_ps(mask, src + l * H * W + j) : _mm512_setzero_ps();
        transpose16(r);
        for (int m = 0; m < n; ++m) _mm512_storeu_ps(dst + (j + m) * Cp, r[m]);
#else
        for (int m = 0; m < n; ++m)
          for (int l = 0; l < 16; ++l) dst[(j + m) * Cp + l] = c0 + l < C ? src[l * H * W + j + m] : 0.0f;
#endif
      }
    }
}

// V[xi][t0 + t][c] for the tiles of a band: tile (ti, tj) reads xt rows 4ti..4ti+5,
// columns 4tj..4tj+5 (xt from winograd_pack_input); t = ti * TW + tj.
inline void winograd_input_transform(const float* xt, int64_t Wt, int64_t Cp, int64_t TH, int64_t TW, float* V,
                                     int64_t xs, int64_t t0) {
  using wino::v16;
  for (int64_t ti = 0; ti < TH; ++ti)
    for (int64_t tj = 0; tj < TW; ++tj) {
      const int64_t t = t0 + ti * TW + tj;
      for (int64_t c0 = 0; c0 < Cp; c0 += 16) {
        const float* d = xt + (4 * ti * Wt + 4 * tj) * Cp + c0;
        v16 rows[6][6];  // rows[i] = d[i] B
        for (int i = 0; i < 6; ++i) {
          v16 in[6];
          for (int j = 0; j < 6; ++j) in[j] = wino::load(d + (i * Wt + j) * Cp);
          wino::input_1d(in, rows[i]);
        }
        for (int j = 0; j < 6; ++j) {  // V[.][j] = B^T rows[.][j]
          const v16 col[6] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j], rows[4][j], rows[5][j]};
          v16 v[6];
          wino::input_1d(col, v);
          for (int i = 0; i < 6; ++i) wino::store(V + (i * 6 + j) * xs + t * Cp + c0, v[i]);
        }
      }
    }
}

// out (K, P, Q), rows [row0, row0 + 4TH) = A^T M A (+ bias) for the tiles t0.. of a band
// (M laid out like V), cropped to P x Q. The 4x4 x 16-channel result of a tile is
// transposed in registers so each channel's tile rows are stored straight into NCHW.
// Returns whether every value it formed was finite (see winograd_forward).
inline bool winograd_output_transform(const float* M, int64_t Kp, int64_t TH, int64_t TW, int64_t xs, int64_t t0,
                                      int64_t K, int64_t P, int64_t Q, int64_t row0, const float* bias, float* out) {
  using wino::v16;
  v16 nonfinite = {};  // + y * 0 for every y: NaN once any y is inf or NaN
  for (int64_t ti = 0; ti < TH; ++ti)
    for (int64_t tj = 0; tj < TW; ++tj) {
      const int64_t t = t0 + ti * TW + tj, r0 = row0 + 4 * ti, c0 = 4 * tj;
      const int nr = static_cast<int>(std::min<int64_t>(4, P - r0)), nc = static_cast<int>(std::min<int64_t>(4, Q - c0));
      for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int nk = static_cast<int>(std::min<int64_t>(16, K - k0));
        v16 cols[4][6];  // cols[.][j] = A^T m[.][j]
        for (int j = 0; j < 6; ++j) {
          v16 m[6], o[4];
          for (int i = 0; i < 6; ++i) m[i] = wino::load(M + (i * 6 + j) * xs + t * Kp + k0);
          wino::output_1d(m, o);
          for (int i = 0; i < 4; ++i) cols[i][j] = o[i];
        }
        v16 y[4][4];
        for (int i = 0; i < 4; ++i) {
          wino::output_1d(cols[i], y[i]);
          for (int j = 0; j < 4; ++j) nonfinite += y[i][j] * 0.0f;
        }
        float* dst = out + (k0 * P + r0) * Q + c0;  // channel k0's tile corner; + l*P*Q for k0 + l
#if EMBER_ISA_LEVEL == 2
        __m512 r[16];
        for (int p = 0; p < 16; ++p) r[p] = y[p / 4][p % 4];
        transpose16(r);  // r[l]: channel k0 + l, lane 4i + j = tile element (i, j)
        const __mmask8 cmask = static_cast<__mmask8>((1u << nc) - 1);
        for (int l = 0; l < nk; ++l) {
          const __m512 v = _mm512_add_ps(r[l], _mm512_set1_ps(bias ? bias[k0 + l] : 0.0f));
          float* d = dst + l * P * Q;
          _mm_mask_storeu_ps(d, cmask, _mm512_castps512_ps128(v));
          if (nr > 1) _mm_mask_storeu_ps(d + Q, cmask, _mm512_extractf32x4_ps(v, 1));
          if (nr > 2) _mm_mask_storeu_ps(d + 2 * Q, cmask, _mm512_extractf32x4_ps(v, 2));
          if (nr > 3) _mm_mask_storeu_ps(d + 3 * Q, cmask, _mm512_extractf32x4_ps(v, 3));
        }
#else
        for (int l = 0; l < nk; ++l) {
          const float b = bias ? bias[k0 + l] : 0.0f;
          for (int i = 0; i < nr; ++i)
            for (int j = 0; j < nc; ++j) dst[l * P * Q + i * Q + j] = y[i][j][l] + b;
        }
#endif
      }
    }
  float sum = 0.0f;
  for (int l = 0; l < 16; ++l) sum += nonfinite[l];
  return sum == 0.0f;
}

// Z[xi][t0 + t][k] = A dY A^T for the 4x4 grad_out tiles of a band; dyt (4TH, 4TW, Kp)
// from winograd_pack_input (zero past the output's edge, so padding tiles add nothing).
inline void winograd_grad_transform(const float* dyt, int64_t Kp, int64_t TH, int64_t TW, float* Z, int64_t xs,
                                    int64_t t0) {
  using wino::v16;
  const int64_t Wt = 4 * TW;
  for (int64_t ti = 0; ti < TH; ++ti)
    for (int64_t tj = 0; tj < TW; ++tj) {
      const int64_t t = t0 + ti * TW + tj;
      for (int64_t k0 = 0; k0 < Kp; k0 += 16) {
        const float* d = dyt + (4 * ti * Wt + 4 * tj) * Kp + k0;
        v16 rows[4][6];  // rows[i] = A dy[i][.]
        for (int i = 0; i < 4; ++i) {
          v16 in[4];
          for (int j = 0; j < 4; ++j) in[j] = wino::load(d + (i * Wt + j) * Kp);
          wino::grad_1d(in, rows[i]);
        }
        for (int j = 0; j < 6; ++j) {
          const v16 col[4] = {rows[0][j], rows[1][j], rows[2][j], rows[3][j]};
          v16 z[6];
          wino::grad_1d(col, z);
          for (int i = 0; i < 6; ++i) wino::store(Z + (i * 6 + j) * xs + t * Kp + k0, z[i]);
        }
      }
    }
}

// dw (K, C, 3, 3) = G^T Omega[.][k][c] G, Omega the summed products: 36 matrices of
// Kp*Cp elements, element (k, c) at k * sk + c * sc.
inline void winograd_weight_grad_finish(const float* Omega, int64_t K, int64_t C, int64_t Kp, int64_t Cp, int64_t sk,
                                        int64_t sc, float* dw) {
  using wino::v16;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      v16 half[3][6];  // half[.][j] = G^T om[.][j]
      for (int j = 0; j < 6; ++j) {
        v16 om[6], o[3];
        for (int i = 0; i < 6; ++i) {
          const float* src = Omega + (i * 6 + j) * Kp * Cp + k * sk + c0 * sc;
          for (int l = 0; l < 16; ++l) om[i][l] = c0 + l < C ? src[l * sc] : 0.0f;
        }
        wino::weight_grad_1d(om, o);
        for (int r = 0; r < 3; ++r) half[r][j] = o[r];
      }
      const int64_t n = std::min<int64_t>(16, C - c0);
      for (int r = 0; r < 3; ++r) {
        v16 g[3];
        wino::weight_grad_1d(half[r], g);
        for (int64_t l = 0; l < n; ++l)
          for (int s = 0; s < 3; ++s) dw[(k * C + c0 + l) * 9 + r * 3 + s] = g[s][l];
      }
    }
}
