// Branch-free float32 sigmoid, tanh, GELU (erf and tanh forms) and their derivatives,
// written so GCC vectorizes the loops that call them (selects, no libm calls), accurate
// to a few ulp of the float64 result over the whole range, tails included:
// sigmoid(-100) = 3.7e-44 (a denormal), gelu(-10) = -7.6e-23, not 0.
//
// The tails need care: where a result is exp(-a) for a large a, an absolute error in a
// becomes the same relative error in the result, so arguments like x^2/2 or
// sqrt(2/pi)(x + 0.044715 x^3) are formed in double (exact or nearly) and exp is taken
// of the double as exp(hi) * (1 + lo) with hi = float(a), lo = float(a - hi).
//
// Include inside an EMBER_*_BEGIN region, after vmath.h, so it compiles for that ISA.
#pragma once
#include "vmath_global.h"

namespace vmath {

// exp(s) for a double s <= 0 with float accuracy even for s ~ -100 (where rounding s
// to float first would cost |s| * 2^-24 of relative error).
[[gnu::always_inline]] inline float exp_of_double(double s) {
  s = s < -200.0 ? -200.0 : s;  // keeps hi finite; exp(-200) is 0 in float anyway
  float hi = static_cast<float>(s);
  float lo = static_cast<float>(s - static_cast<double>(hi));
  return vmath::exp(hi) * (1.0f + lo);
}

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

// erfc(z) for z = |x| / sqrt(2), x >= 0 given as its double square x2 = x^2 (exact for a
// float x). erfc(z) = t exp(-z^2 + q(t)), t = 2 / (2 + z) (as in Numerical Recipes'
// erfcc), with q a degree-10 polynomial fit to log(erfcx(z) / t) on z in [0, 10.5]
// (max error 8e-9). q is evaluated in double: float Horner would cost 2-4 ulp here.
// Beyond z = 10.5, erfc(z) < 1e-49, i.e. 0 in float.
[[gnu::always_inline]] inline float erfc_of_half_square(float ax, double x2, double log_scale = 0.0) {
  double z = static_cast<double>(ax) * 0.70710678118654752440;
  double zc = z > 10.5 ? 10.5 : z;
  double t = 2.0 / (2.0 + zc);
  double q = -1.40617332344899149e-01;
  q = q * t + 9.64371682903833127e-01;
  q = q * t + -2.76850020158150922e+00;
  q = q * t + 4.21076819877949582e+00;
  q = q * t + -3.52917056361615655e+00;
  q = q * t + 1.65558928152188223e+00;
  q = q * t + -7.08129187600381460e-01;
  q = q * t + 2.24958940514880440e-01;
  q = q * t + 3.54627459199821859e-01;
  q = q * t + 1.00167345045146639e+00;
  q = q * t + -1.26557172524825834e+00;
  float r = static_cast<float>(t) * exp_of_double(q - 0.5 * x2 + log_scale);
  return z > 10.5 ? 0.0f : r;  // NaN: comparison false, r is NaN
}

// 2^64 and its log: a tail result that is a denormal in float is formed scaled by 2^64
// and scaled back by one final multiply, so it is rounded once, not at every step.
constexpr double kLogTwo64 = 44.361419555836499802;
constexpr float kTwoMinus64 = 5.42101086242752217e-20f;

// gelu(x) = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2. For x < 0 that is the erfc tail
// (no cancellation in 1 + erf); for x >= 0, x (1 - erfc(x / sqrt 2) / 2).
[[gnu::always_inline]] inline float gelu_erf(float x) {
  float ax = __builtin_fabsf(x);
  double x2 = static_cast<double>(x) * static_cast<double>(x);
  bool neg = x < 0.0f;
  float hc = 0.5f * erfc_of_half_square(ax, x2, neg ? kLogTwo64 : 0.0);
  return neg ? (x * hc) * kTwoMinus64 : x * (1.0f - hc);
}

// d gelu / dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
[[gnu::always_inline]] inline float gelu_erf_grad(float x) {
  float ax = __builtin_fabsf(x);
  double x2 = static_cast<double>(x) * static_cast<double>(x);
  float hc = 0.5f * erfc_of_half_square(ax, x2);
  float cdf = x < 0.0f ? hc : 1.0f - hc;
  float pdf = 0.39894228040143267794f * exp_of_double(-0.5 * x2);
  return cdf + x * pdf;
}

// The tanh form: gelu(x) ~ x (1 + tanh(u)) / 2 = x sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3).
// a = 2u in double; e = exp(-|a|); sigmoid(a) = 1/(1+e) for a >= 0, e/(1+e) below.
struct SigmoidPair {
  float s, one_minus_s;  // sigmoid(a) and 1 - sigmoid(a), each to full relative accuracy
};
[[gnu::always_inline]] inline double gelu_tanh_arg(float x) {  // a = 2 sqrt(2/pi) (x + 0.044715 x^3), in double
  double xd = static_cast<double>(x);
  return 1.5957691216057307117 * (xd + 0.044715 * xd * xd * xd);
}
[[gnu::always_inline]] inline SigmoidPair gelu_tanh_sigmoid(float x) {
  double a = gelu_tanh_arg(x);
  float e = exp_of_double(a < 0.0 ? a : -a);
  float r = 1.0f / (1.0f + e);
  float er = e * r;
  bool pos = a >= 0.0;
  return {pos ? r : er, pos ? er : r};  // NaN: e, r and er are NaN
}

// x < 0: x e / (1 + e) with e formed scaled by 2^64 (see kTwoMinus64), so a denormal
// result is rounded once.
[[gnu::always_inline]] inline float gelu_tanh(float x) {
  double a = gelu_tanh_arg(x);
  bool neg = a < 0.0;
  float es = exp_of_double((neg ? a : -a) + kLogTwo64);  // e * 2^64
  float r = (neg ? x * es : x) / (1.0f + es * kTwoMinus64);
  return neg ? r * kTwoMinus64 : r;  // NaN: every term is NaN
}

// d/dx [x s(a)] = s + x s (1 - s) a'(x), a' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2).
[[gnu::always_inline]] inline float gelu_tanh_grad(float x) {
  SigmoidPair p = gelu_tanh_sigmoid(x);
  float da = 1.5957691216057307117f * (1.0f + 0.134145f * x * x);
  return p.s + x * (p.s * p.one_minus_s) * da;
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
