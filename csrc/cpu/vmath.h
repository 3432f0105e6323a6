// Branch-free float32 exp and log written so GCC vectorizes the loops that call them
// (no libm calls, selects instead of branches). Accurate to ~1-2 ulp over the whole
// range, with IEEE handling of inf, NaN, 0 and denormals. Cephes-style: range
// reduction by ln2 and a minimax polynomial. float64 uses libm (gradient checks only).
//
// No include guard on purpose: include this inside each ISA namespace and
// EMBER_*_BEGIN region (see elementwise.cpp), so every copy is compiled, and inlined,
// for that ISA. A copy compiled for the default target and called from AVX code would
// neither vectorize nor inline. Needs <cmath> and <cstdint> included first.

namespace vmath {

static inline float bits_to_float(int32_t i) { return __builtin_bit_cast(float, i); }
static inline int32_t float_to_bits(float f) { return __builtin_bit_cast(int32_t, f); }

// exp(r) = 1 + r + r^2 p(r) for the reduced argument |r| <= ln2/2: p's coefficients,
// highest power first (Cephes).
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
static inline float exp_reduced(float r) {
  float p = kExpPoly[0];
  p = p * r + kExpPoly[1];
  p = p * r + kExpPoly[2];
  p = p * r + kExpPoly[3];
  p = p * r + kExpPoly[4];
  p = p * r + kExpPoly[5];
  return p * (r * r) + r + 1.0f;
}

// y 2^n, applied in two halves so a result in the denormal range is rounded once (and
// 2^n itself need not be a normal float).
static inline float times_pow2(float y, int32_t n) {
  int32_t n1 = n >> 1, n2 = n - n1;
  y = y * bits_to_float((n1 + 127) << 23);
  return y * bits_to_float((n2 + 127) << 23);
}

// exp(x): x = n ln2 + r, |r| <= ln2/2; exp(r) by exp_reduced; 2^n by times_pow2 so
// results in the denormal range (x < -87.3) are still right.
static inline float exp(float x) {
  const float hi = 89.0f, lo = -104.0f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;                 // NaN passes through both selects
  // n = round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;        // ln2 split in two for exact n*ln2
  r = r - n * -2.12194440e-4f;
  return times_pow2(exp_reduced(r), static_cast<int32_t>(n));
}

// log(x): x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) by a degree-9 polynomial.
static inline float log(float x) {
  const bool denorm = x < 1.17549435e-38f;  // also true for 0, negatives
  float xs = denorm ? x * 8388608.0f : x;   // scale denormals by 2^23
  int32_t bits = float_to_bits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 126;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  e = denorm ? e - 23 : e;
  const bool small = m < 0.707106781186547524f;
  float fe = static_cast<float>(small ? e - 1 : e);
  m = small ? m + m - 1.0f : m - 1.0f;
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = p * m + -1.1514610310e-1f;
  p = p * m + 1.1676998740e-1f;
  p = p * m + -1.2420140846e-1f;
  p = p * m + 1.4249322787e-1f;
  p = p * m + -1.6668057665e-1f;
  p = p * m + 2.0000714765e-1f;
  p = p * m + -2.4999993993e-1f;
  p = p * m + 3.3333331174e-1f;
  float y = p * m * z;
  y += fe * -2.12194440e-4f;
  y += -0.5f * z;
  float r = m + y + fe * 0.693359375f;
  const float inf = __builtin_inff(), nan = __builtin_nanf("");
  r = x == 0.0f ? -inf : r;
  r = x < 0.0f ? nan : r;
  r = x == inf ? inf : r;
  return x != x ? x : r;
}

}  // namespace vmath
