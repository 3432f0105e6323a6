// Branch-free float32 sigmoid, tanh, GELU (erf and tanh forms) and their derivatives,
// written so GCC vectorizes the loops that call them (selects, no libm calls), accurate
// to a few ulp of the float64 result over the whole range, tails included:
// sigmoid(-100) = 3.7e-44 (a denormal), gelu(-10) = -7.6e-23, not 0.
//
// The tails need care: where a result is exp(-a) for a large a, an absolute error in a
// becomes the same relative error in the result, so x^2/2 and 2 sqrt(2/pi)(x + 0.044715
// x^3) are kept as pairs of floats, neither rounded to one float before exp is taken
// (see the gelu functions).
//
// Include inside an EMBER_*_BEGIN region, after vmath.h, so it compiles for that ISA.
#pragma once
#include <immintrin.h>
#include "vmath_global.h"

namespace vmath {

// sigmoid(x) = 1 / (1 + e^-x), from e = exp(-|x|) so nothing overflows and the
// negative tail keeps full relative accuracy: x < 0 -> e / (1 + e).
[[gnu::always_inline]] inline float sigmoid(float x) {
  float ax = __builtin_fabsf(x);
  float e = vmath::exp(-ax);
  return (x < 0.0f ? e : 1.0f) / (1.0f + e);  // NaN: e is NaN, so is the quotient
}

// tanh(x): an odd polynomial below 0.625 (fit to tanh(x)/x - 1 in x^2; < 1 ulp), above
// it t / (t + 2) with t = expm1(2|x|) (< 1.5 ulp). Both are evaluated for every lane, so
// each is kept short: expm1 = 2^n (e^r - 1) + (2^n - 1) needs no general exp (no
// denormal scaling, no overflow: |x| is clamped to 10, where tanh rounds to 1), and
// e^r - 1 = r + r^2 q(r) with q of degree 4 (minimax on |r| <= ln2/2, 0.3 ulp) suffices
// because t / (t + 2) halves t's relative error for |x| >= 0.625 (t >= 2.4).
[[gnu::always_inline]] inline float tanh(float x) {
  float ax = __builtin_fabsf(x);
  float s = x * x;
  float p = -6.1049303040e-03f;
  p = p * s + 2.1003626287e-02f;
  p = p * s + -5.3852494806e-02f;
  p = p * s + 1.3332782686e-01f;
  p = p * s + -3.3333328366e-01f;
  float small = x + x * s * p;
  float a = 2.0f * (ax > 10.0f ? 10.0f : ax);  // NaN passes the clamp
  // n = round(a / ln2) by the 1.5 * 2^23 trick; r = a - n ln2 with ln2 split in two
  float n = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = a - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float q = 1.3882371957e-03f;
  q = q * r + 8.3666676042e-03f;
  q = q * r + 4.1667206048e-02f;
  q = q * r + 1.6666542545e-01f;
  q = q * r + 4.9999998127e-01f;
  float em = q * (r * r) + r;
  float scale = bits_to_float((static_cast<int32_t>(n) + 127) << 23);  // 2^n, n <= 29
  float t = scale * em + (scale - 1.0f);
  float big = __builtin_copysignf(t / (t + 2.0f), x);
  return ax < 0.625f ? small : big;  // NaN: comparison false, big is NaN
}

// x^2 = hi + lo exactly, without FMA (so every SIMD path agrees): xh keeps the top 12
// significand bits of x, so xh*xh, xh*xl and xl*xl are exact; |lo| < 2^-10 x^2, so its
// own rounding costs 2^-34 x^2.
struct SplitSquare {
  float hi, lo;
};
[[gnu::always_inline]] inline SplitSquare split_square(float x) {
  float xh = bits_to_float(float_to_bits(x) & static_cast<int32_t>(0xfffff000u));
  float xl = x - xh;
  return {xh * xh, (xh + xh) * xl + xl * xl};
}

// exp(-(hi + lo) / 2) * 2^scale for the split square of x: -hi/2 is exact and its
// Cody-Waite reduction by n ln2 is exact too, so -lo/2 is added to the reduced argument
// and x^2/2 is never rounded (rounding it would cost x^2/2 * 2^-24 of relative error in
// the tail, ~40 ulp at |x| = 13). Results below 2^-150 are 0; NaN propagates.
[[gnu::always_inline]] inline float exp_neg_half_square(SplitSquare s, int32_t scale) {
  float a = -0.5f * s.hi, b = -0.5f * s.lo;
  bool under = a < -150.0f;  // also |x| = inf, where lo is NaN (inf - inf)
  a = under ? -150.0f : a;   // a <= 0; keeps n and the two halves of 2^n in range
  b = under ? 0.0f : b;
  float n = ((a + b) * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = a - n * 0.693359375f;  // exact
  r = (r - n * -2.12194440e-4f) + b;
  return times_pow2(exp_reduced(r), static_cast<int32_t>(n) + scale);
}

// erfcx(a / sqrt 2) = exp(a^2 / 2) erfc(a / sqrt 2) for a = |x|: a degree 4/5 rational
// in a, fit to minimize the relative error on [0, 15] (6.3e-9; beyond 15 the exp factor
// is 0). Evaluated in double: float Horner here accumulates up to 5 ulp for a ~ 11, as
// every step's rounding is carried whole when a is large; the quotient is taken in float
// (rounding p and q costs < 1 ulp each, usually far less).
[[gnu::always_inline]] inline float erfcx_half(float ax) {
  double a = static_cast<double>(ax < 15.0f ? ax : 15.0f);  // inf -> 15; NaN stays NaN
  double p = 8.30648227820128017e-03;
  p = p * a + 8.17623977506170690e-02;
  p = p * a + 3.67938680867605339e-01;
  p = p * a + 8.78567376796413502e-01;
  p = p * a + 1.00000000629995278e+00;
  double q = 1.04105200066056738e-02;
  q = q * a + 1.02480085478311916e-01;
  q = q * a + 4.71409233212261025e-01;
  q = q * a + 1.20554909599169857e+00;
  q = q * a + 1.67645238382939055e+00;
  q = q * a + 1.0;
  return static_cast<float>(p) / static_cast<float>(q);
}

// 2^64: a tail result that is a denormal in float is formed scaled by 2^64 and scaled
// back by one final multiply, so it is rounded once, not at every step.
constexpr int32_t kTailScale = 64;
constexpr float kTwoMinus64 = 5.42101086242752217e-20f;

// gelu(x) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2. With hc = erfc(|x| / sqrt 2) / 2 =
// exp(-x^2/2) erfcx(|x| / sqrt 2) / 2: x hc for x < 0 (the tail, no cancellation in
// 1 + erf) and x (1 - hc) for x >= 0 (hc <= 1/2). gelu(-inf) = -inf * 0 = NaN, as PyTorch.
[[gnu::always_inline]] inline float gelu_erf(float x) {
  bool neg = x < 0.0f;
  float e = exp_neg_half_square(split_square(x), neg ? kTailScale : 0);
  float hc = 0.5f * e * erfcx_half(__builtin_fabsf(x));
  return neg ? (x * hc) * kTwoMinus64 : x * (1.0f - hc);
}

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi): one exp for both.
[[gnu::always_inline]] inline float gelu_erf_grad(float x) {
  float e = exp_neg_half_square(split_square(x), 0);
  float hc = 0.5f * e * erfcx_half(__builtin_fabsf(x));
  float cdf = x < 0.0f ? hc : 1.0f - hc;
  return cdf + x * (0.39894228040143267794f * e);
}

// The tanh form: gelu(x) ~ x (1 + tanh(u)) / 2 = x sigmoid(a), a = 2u = 2 sqrt(2/pi)(x +
// 0.044715 x^3). a is formed as an unevaluated pair of floats hi + lo (a float a would
// carry |a| 2^-24 of absolute error, i.e. of relative error in e^a: ~90 ulp at |a| ~ 90),
// and lo is added after the Cody-Waite reduction of hi by n ln2; only the reduced r is
// rounded. e = exp(-|a|); sigmoid(a) = 1/(1+e) for a >= 0, e/(1+e) below. The pair costs
// a few fma on 16 lanes where a double a cost conversions and two 8-lane halves (the
// non-FMA scalar path calls fmaf: exact, slower). A division beats Newton steps here.
struct FloatPair {
  float hi, lo;
};
// c x (1 + k x^2) with c = 2 sqrt(2/pi), k = 0.044715, to ~2^-44 relative: exact
// products by fma, k and c as float pairs, 1 + k x^2 by a branch-free two-sum.
[[gnu::always_inline]] inline FloatPair gelu_tanh_arg(float x) {
  constexpr float kh = 0.044715f, kl = static_cast<float>(0.044715 - static_cast<double>(kh));
  constexpr float ch = 1.5957691216057307117f, cl = static_cast<float>(1.5957691216057307117 - static_cast<double>(ch));
  float s = x * x, sl = __builtin_fmaf(x, x, -s);  // x^2 = s + sl
  float p = kh * s, pl = __builtin_fmaf(kh, s, -p) + __builtin_fmaf(kh, sl, kl * s);  // k x^2
  float t = 1.0f + p, v = t - 1.0f;
  float tl = ((1.0f - (t - v)) + (p - v)) + pl;  // 1 + k x^2 = t + tl
  float u = x * t, ul = __builtin_fmaf(x, t, -u) + x * tl;
  return {ch * u, __builtin_fmaf(ch, u, -(ch * u)) + __builtin_fmaf(ch, ul, cl * u)};
}

// exp(-|a|) * 2^scale for a = hi + lo; 0 below 2^-150; NaN propagates.
[[gnu::always_inline]] inline float exp_neg_abs(FloatPair a, int32_t scale) {
  bool pos = a.hi > 0.0f;
  float b = pos ? -a.hi : a.hi, bl = pos ? -a.lo : a.lo;
  bool under = b < -150.0f;
  b = under ? -150.0f : b;
  bl = under ? 0.0f : bl;
  float n = (b * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(b / ln2)
  float r = b - n * 0.693359375f;                                     // exact
  r = __builtin_fmaf(-n, -2.12194440e-4f, r) + bl;
  return times_pow2(exp_reduced(r), static_cast<int32_t>(n) + scale);
}

// a < -80 (e < 2^-115): x e / (1 + e) with e formed scaled by 2^64 (see kTwoMinus64), so
// a denormal result is rounded once; 1 + e rounds to 1 there, scaled or not.
[[gnu::always_inline]] inline float gelu_tanh(float x) {
  FloatPair a = gelu_tanh_arg(x);
  bool neg = a.hi < 0.0f, far = a.hi < -80.0f;
  float es = exp_neg_abs(a, far ? kTailScale : 0);
  float r = (neg ? x * es : x) / (1.0f + es);
  return far ? r * kTwoMinus64 : r;  // NaN: every term is NaN
}

// d/dx [x s(a)] = s + x s (1 - s) a'(x), a' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2), with
// s (1 - s) = e / (1 + e)^2 whatever the sign of a.
[[gnu::always_inline]] inline float gelu_tanh_grad(float x) {
  FloatPair a = gelu_tanh_arg(x);
  float e = exp_neg_abs(a, 0);
  float r = 1.0f / (1.0f + e);
  float er = e * r;
  float s = a.hi >= 0.0f ? r : er;  // NaN: e, r and er are NaN
  float da = 1.5957691216057307117f * (1.0f + 0.134145f * x * x);
  return s + x * (r * er) * da;
}

// 16-float forms of the gelu functions, the AVX-512 path's loop bodies (activation_loops.h):
// the same algorithms with FMA-exact products, scalef for 2^n (one rounding into
// denormals, so no 2^64 tail scaling) and rcp14 plus a Newton step for 1/(1+e): fewer
// instructions than the vectorized scalar forms, which are compute-bound.
#define EMBER_AVX512_FN __attribute__((target("avx512f,avx512dq,fma"), always_inline)) inline

// exp(r) = 1 + r + r^2 q(r) for the reduced |r| <= ln2/2 + a little: q of degree 4, one
// lower than exp_reduced's (minimax for the error relative to e^r on |r| <= 0.354:
// 3.5e-9; evaluated in float, 0.87 ulp against exp_reduced's 0.83), one fma fewer.
EMBER_AVX512_FN __m512 exp_reduced16(__m512 r) {
  constexpr float kQ[5] = {1.381164533086121e-3f, 8.370140567421913e-3f, 4.166853055357933e-2f,
                           1.6666509211063385e-1f, 4.999999403953552e-1f};
  __m512 q = _mm512_set1_ps(kQ[0]);
  for (int i = 1; i < 5; ++i) q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(kQ[i]));
  return _mm512_add_ps(_mm512_fmadd_ps(q, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
}

// gelu_tanh (<= 3.6 ulp), the algorithm of gelu_tanh above with the pair formed as
// -|a| = (-|x|)(c + d x^2), d = c k, in fewer steps: x^2 = s + sl and d x^2 = p + pl by
// fma, c + p by a two-sum, the product by fma. -|x| is clamped to -13 first (|a| > 170:
// e = 0 and every lane finite, scalef takes 2^n to 0), so no lane needs a tail mask.
EMBER_AVX512_FN __m512 gelu_tanh16(__m512 x) {
  constexpr double c = 1.5957691216057307117, d = c * 0.044715;
  const float ch = static_cast<float>(c), cl = static_cast<float>(c - static_cast<double>(ch));
  const float dh = static_cast<float>(d), dl = static_cast<float>(d - static_cast<double>(dh));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 xn = _mm512_max_ps(_mm512_or_ps(x, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(-13.0f));  // NaN -> -13
  const __m512 s = _mm512_mul_ps(xn, xn), sl = _mm512_fmsub_ps(xn, xn, s);
  const __m512 dh_ = _mm512_set1_ps(dh), ch_ = _mm512_set1_ps(ch);
  const __m512 p = _mm512_mul_ps(dh_, s);
  const __m512 pl = _mm512_fmadd_ps(_mm512_set1_ps(dl), s, _mm512_fmadd_ps(dh_, sl, _mm512_fmsub_ps(dh_, s, p)));
  const __m512 w = _mm512_add_ps(ch_, p);
  const __m512 wl = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(_mm512_max_ps(p, ch_), w), _mm512_min_ps(p, ch_)),
                                  _mm512_add_ps(pl, _mm512_set1_ps(cl)));
  const __m512 ah = _mm512_mul_ps(xn, w), al = _mm512_fmadd_ps(xn, wl, _mm512_fmsub_ps(xn, w, ah));
  // e = exp(-|a|) = y 2^n
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(ah, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), ah);  // exact: |n| <= 257
  r = _mm512_add_ps(_mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r), al);
  const __m512 y = exp_reduced16(r);
  const __m512 e = _mm512_scalef_ps(y, n);
  // x >= 0: x / (1 + e); x < 0: (x y / (1 + e)) 2^n, scaled last (one rounding), with
  // the clamped x (= x down to -13; below it the result is -0, and x y could overflow)
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 num = _mm512_mask_mul_ps(x, neg, xn, y);
  const __m512 dn = _mm512_add_ps(one, e);
  __m512 rc = _mm512_rcp14_ps(dn);
  rc = _mm512_fmadd_ps(rc, _mm512_fnmadd_ps(dn, rc, one), rc);
  const __m512 res = _mm512_mul_ps(num, rc);
  // -inf sigmoid(-inf) = -inf * 0: NaN, as PyTorch (scalef would keep -inf): the fixup
  // table's entry for the -inf class (token 4) = 3, the default NaN; other classes keep res.
  return _mm512_fixupimm_ps(_mm512_mask_scalef_ps(res, neg, res, n), x, _mm512_set1_epi32(3 << 16), 0);
}

// gelu_erf (<= 4.6 ulp, as the scalar form): hc = exp(-x^2/2) erfcx(|x|/sqrt 2) / 2 as gelu_erf above, with
// x^2 = s + sl exact by fma, |x| clamped to 20 first (past it hc is below 2^-288, so
// every lane stays finite and scalef takes 2^n to 0), and erfcx_half's double rational.
// x < 0: scalef(x m, n), m = y erfcx / 2 unscaled, rounded once; x >= 0: x (1 - m 2^n).
EMBER_AVX512_FN __m512 gelu_erf16(__m512 x) {
  const __m512 ax = _mm512_min_ps(_mm512_andnot_ps(_mm512_set1_ps(-0.0f), x), _mm512_set1_ps(20.0f));
  const __m512 s = _mm512_mul_ps(ax, ax), sl = _mm512_fmsub_ps(ax, ax, s);
  const __m512 a = _mm512_mul_ps(s, _mm512_set1_ps(-0.5f)), b = _mm512_mul_ps(sl, _mm512_set1_ps(-0.5f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(a, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), a);  // exact: |n| <= 289
  r = _mm512_add_ps(_mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r), b);
  const __m512 y = exp_reduced16(r);
  // erfcx_half(ax) in double, two 8-lane halves; the quotient in float
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(ax));
  const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ax), 1)));
  constexpr double kP[5] = {0.5 * 8.30648227820128017e-03, 0.5 * 8.17623977506170690e-02,  // halved: p / q = hc / e
                            0.5 * 3.67938680867605339e-01, 0.5 * 8.78567376796413502e-01, 0.5 * 1.00000000629995278e+00};
  constexpr double kQ[6] = {1.04105200066056738e-02, 1.02480085478311916e-01, 4.71409233212261025e-01,
                            1.20554909599169857e+00, 1.67645238382939055e+00, 1.0};
  __m512d pl = _mm512_set1_pd(kP[0]), ph = pl, ql = _mm512_set1_pd(kQ[0]), qh = ql;
  for (int i = 1; i < 5; ++i) {
    pl = _mm512_fmadd_pd(pl, lo, _mm512_set1_pd(kP[i]));
    ph = _mm512_fmadd_pd(ph, hi, _mm512_set1_pd(kP[i]));
  }
  for (int i = 1; i < 6; ++i) {
    ql = _mm512_fmadd_pd(ql, lo, _mm512_set1_pd(kQ[i]));
    qh = _mm512_fmadd_pd(qh, hi, _mm512_set1_pd(kQ[i]));
  }
  const __m512 p = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(pl)), _mm512_cvtpd_ps(ph), 1);
  const __m512 q = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(ql)), _mm512_cvtpd_ps(qh), 1);
  const __m512 m = _mm512_mul_ps(y, _mm512_div_ps(p, q));
  const __m512 hc = _mm512_scalef_ps(m, n);
  const __m512 pos = _mm512_mul_ps(x, _mm512_sub_ps(_mm512_set1_ps(1.0f), hc));  // NaN stays NaN
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 res = _mm512_mask_scalef_ps(pos, neg, _mm512_mul_ps(x, m), n);
  // -inf * Phi(-inf) = -inf * 0: NaN, as PyTorch (scalef would keep -inf); table entry for
  // the -inf class (token 4) = 3, the default NaN; every other class keeps res.
  return _mm512_fixupimm_ps(res, x, _mm512_set1_epi32(3 << 16), 0);
}

// log1p(u) for u in [0, 1] (softplus tails): log(1 + u) corrected for the rounding of
// 1 + u (Goldberg's trick); u itself where 1 + u rounds to 1.
[[gnu::always_inline]] inline float log1p_unit(float u) {
  float w = 1.0f + u;
  float d = w - 1.0f;
  float l = vmath::log(w);
  return d == 0.0f ? u : l * (u / d);
}

}  // namespace vmath
