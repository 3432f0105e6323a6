// BLIS-style GEMM, compiled once per SIMD path: gemm.cpp includes this file inside
// each ISA region (in its own namespace) with EMBER_ISA_LEVEL = 0 (scalar), 1 (AVX2) or
// 2 (AVX-512). Everything below -- vector traits, micro-kernels, packing and the
// blocked, threaded driver -- is compiled for that ISA.
//
// Row-major C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C.
//
// Roles (row-major view of BLIS's column-major design):
//   B is the vector side: a micro-panel is KC x NR, NR = NV vectors wide.
//   A is the broadcast side: a micro-tile is MR x KC; each A element is broadcast and
//   multiplied into NV vectors of B, accumulating an MR x NR tile in registers.
// Loops, outer to inner:
//   m0 (MC3 rows of A, packed, lives in L3)
//   k0 (KC deep; block sizes equalized so no block is a short remainder)
//   n0 (NCB columns of B, packed by each thread for itself, lives in its L2)
//   ir over MR tiles of A (one A micro-tile, MR x KC, stays in L1)
//   jr over NR panels of B (streamed from L2) -> micro-kernel
// Threads (OpenMP) split either the columns or the rows (see gemm_plan); each packs
// what it reads into its own buffers, so there is no barrier inside the region.
// Either operand may be read in place instead of packed when packing costs more than
// it saves (see gemm_plan); partial tiles use micro-kernels instantiated for every
// row count 1..MR and vector count 1..NV, so there is no padding work in the FMAs.

// (Standard headers and <immintrin.h> are included by gemm.cpp, outside the namespaces.)

// ---------------------------------------------------------------- vector traits
// Vec<T>: V (register), W (lanes), zero/load/bcast/fma/mul/set1/store, plus a lane mask
// type Mask for partial stores and loads (the C edge).
#if EMBER_ISA_LEVEL == 2
template <class T> struct Vec;
template <> struct Vec<float> {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static Mask mask(int n) { return static_cast<Mask>(n >= 16 ? 0xFFFF : (1u << n) - 1); }
  static V loadm(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void storem(float* p, V v, Mask m) { _mm512_mask_storeu_ps(p, m, v); }
};
template <> struct Vec<double> {
  using V = __m512d;
  using Mask = __mmask8;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V bcast(const double* p) { return _mm512_set1_pd(*p); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static Mask mask(int n) { return static_cast<Mask>(n >= 8 ? 0xFF : (1u << n) - 1); }
  static V loadm(const double* p, Mask m) { return _mm512_maskz_loadu_pd(m, p); }
  static void storem(double* p, V v, Mask m) { _mm512_mask_storeu_pd(p, m, v); }
};
// 14 x 32 fp32 tile: 28 zmm accumulators + 2 B vectors + 1 broadcast = 31 of 32.
template <class T> struct Cfg;
template <> struct Cfg<float> { static constexpr int MR = 14, NV = 2, KC = 384, NCB = 768, MC3 = 4088; };
template <> struct Cfg<double> { static constexpr int MR = 14, NV = 2, KC = 192, NCB = 768, MC3 = 4088; };

#elif EMBER_ISA_LEVEL == 1
template <class T> struct Vec;
// AVX2 has no mask registers: masks are lane vectors built from a sliding window.
alignas(32) static const int32_t kMaskWindow[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
template <> struct Vec<float> {
  using V = __m256;
  using Mask = __m256i;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static Mask mask(int n) {
    n = std::min(std::max(n, 0), 8);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskWindow + 8 - n));
  }
  static V loadm(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void storem(float* p, V v, Mask m) { _mm256_maskstore_ps(p, m, v); }
};
template <> struct Vec<double> {
  using V = __m256d;
  using Mask = __m256i;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static Mask mask(int n) {
    // two 32-bit lanes per double lane
    n = std::min(std::max(n, 0), 4);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskWindow + 8 - 2 * n));
  }
  static V loadm(const double* p, Mask m) { return _mm256_maskload_pd(p, m); }
  static void storem(double* p, V v, Mask m) { _mm256_maskstore_pd(p, m, v); }
};
// 6 x 16 fp32 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16.
template <class T> struct Cfg;
template <> struct Cfg<float> { static constexpr int MR = 6, NV = 2, KC = 384, NCB = 768, MC3 = 4092; };
template <> struct Cfg<double> { static constexpr int MR = 6, NV = 2, KC = 256, NCB = 384, MC3 = 2046; };

#else
// Portable path: one lane per "vector"; a 4 x 8 tile of scalar accumulators that the
// compiler may still vectorize with the baseline ISA.
template <class T> struct Vec {
  using V = T;
  using Mask = int;
  static constexpr int W = 1;
  static V zero() { return T(0); }
  static V load(const T* p) { return *p; }
  static V bcast(const T* p) { return *p; }
  static V set1(T x) { return x; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static void store(T* p, V v) { *p = v; }
  static Mask mask(int n) { return n > 0; }
  static V loadm(const T* p, Mask m) { return m ? *p : T(0); }
  static void storem(T* p, V v, Mask m) { if (m) *p = v; }
};
template <class T> struct Cfg { static constexpr int MR = 4, NV = 8, KC = 256, NCB = 512, MC3 = 1024; };
#endif

// ---------------------------------------------------------------- micro-kernel
// c (MRK rows, n <= NV*W cols, row stride ldc) = alpha * a_tile @ b_panel + beta * c
//   b_panel: kc rows of NV*W values, row stride b_step (packed: NR; in place: ldb).
//   a_tile, A_RS1:  element (i, k) at a[i + k * a_step]   (packed: a_step = MR; A^T in place: lda)
//           !A_RS1: element (i, k) at a[i * a_step + k]   (A in place: a_step = lda)
// beta == 0 never reads c (it may hold NaN).
template <class T, int MRK, int NVK, bool A_RS1>
void ukernel(int64_t kc, const T* __restrict a, int64_t a_step, const T* __restrict b, int64_t b_step,
             T* __restrict c, int64_t ldc, int n, T alpha, T beta) {
  using VT = Vec<T>;
  using V = typename VT::V;
  constexpr int W = VT::W;
  V acc[MRK][NVK];
#pragma GCC unroll 16
  for (int i = 0; i < MRK; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NVK; ++v) acc[i][v] = VT::zero();
  // C is touched once per tile: start its lines on the way while the FMAs run.
#pragma GCC unroll 16
  for (int i = 0; i < MRK; ++i) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NVK * W - 1, 1, 3);
  }

  if constexpr (A_RS1) {
    for (int64_t k = 0; k < kc; ++k) {
      V bv[NVK];
#pragma GCC unroll 8
      for (int v = 0; v < NVK; ++v) bv[v] = VT::load(b + v * W);
#pragma GCC unroll 16
      for (int i = 0; i < MRK; ++i) {
        V ai = VT::bcast(a + i);
#pragma GCC unroll 8
        for (int v = 0; v < NVK; ++v) acc[i][v] = VT::fma(ai, bv[v], acc[i][v]);
      }
      a += a_step;
      b += b_step;
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      V bv[NVK];
#pragma GCC unroll 8
      for (int v = 0; v < NVK; ++v) bv[v] = VT::load(b + v * W);
#pragma GCC unroll 16
      for (int i = 0; i < MRK; ++i) {
        V ai = VT::bcast(a + i * a_step + k);
#pragma GCC unroll 8
        for (int v = 0; v < NVK; ++v) acc[i][v] = VT::fma(ai, bv[v], acc[i][v]);
      }
      b += b_step;
    }
  }

  const V va = VT::set1(alpha), vb = VT::set1(beta);
  const bool scale = alpha != T(1);
  if (n >= NVK * W) {
#pragma GCC unroll 16
    for (int i = 0; i < MRK; ++i) {
      T* cr = c + i * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NVK; ++v) {
        V r = scale ? VT::mul(acc[i][v], va) : acc[i][v];
        if (beta != T(0)) r = VT::fma(vb, VT::load(cr + v * W), r);
        VT::store(cr + v * W, r);
      }
    }
  } else {
    typename VT::Mask m[NVK];
    for (int v = 0; v < NVK; ++v) m[v] = VT::mask(n - v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MRK; ++i) {
      T* cr = c + i * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NVK; ++v) {
        if (n <= v * W) break;
        V r = scale ? VT::mul(acc[i][v], va) : acc[i][v];
        if (beta != T(0)) r = VT::fma(vb, VT::loadm(cr + v * W, m[v]), r);
        VT::storem(cr + v * W, r, m[v]);
      }
    }
  }
}

template <class T>
using KernelFn = void (*)(int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t, int, T, T);

// table[a_rs1][rows - 1][vectors - 1]: the micro-kernel for a tile of that size.
template <class T>
struct KernelTable {
  static constexpr int MR = Cfg<T>::MR, NV = Cfg<T>::NV;
  KernelFn<T> fn[2][MR][NV];
  template <int I, int V>
  void fill() {
    if constexpr (I <= MR) {
      if constexpr (V <= NV) {
        fn[0][I - 1][V - 1] = &ukernel<T, I, V, false>;
        fn[1][I - 1][V - 1] = &ukernel<T, I, V, true>;
        fill<I, V + 1>();
      } else {
        fill<I + 1, 1>();
      }
    }
  }
  KernelTable() { fill<1, 1>(); }
};

template <class T>
const KernelTable<T>& kernels() {
  static const KernelTable<T> table;
  return table;
}

// ---------------------------------------------------------------- packing
// pack_rows_transposed: R source rows (row r at src + r * ld, contiguous along k) into
// dst[k * P + r], k < kc, rows R..P-1 zero. This is the transposing copy both packers
// need: A's rows into an MR-wide tile, and B^T's rows into an NR-wide panel.
#if EMBER_ISA_LEVEL >= 1
// 8 x 8 float and 4 x 4 double register transposes (AVX), used on both SIMD paths.
inline void transpose8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}
inline void transpose4(__m256d r[4]) {
  __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
alignas(32) static const int32_t kPackMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// The B x B register transpose for each type (B = 8 floats or 4 doubles per ymm).
template <class T> struct Tr;
template <> struct Tr<float> {
  using V = __m256;
  static constexpr int B = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V zero() { return _mm256_setzero_ps(); }
  static void transpose(V* r) { transpose8(r); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, V v, __m256i m) { _mm256_maskstore_ps(p, m, v); }
};
template <> struct Tr<double> {
  using V = __m256d;
  static constexpr int B = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V zero() { return _mm256_setzero_pd(); }
  static void transpose(V* r) { transpose4(r); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(double* p, V v, __m256i m) { _mm256_maskstore_pd(p, m, v); }
};

// One B x B block per step: load B rows of B k-values, transpose, store B k-rows of B
// values (masked where the block sticks out past P).
template <class T>
void pack_rows_transposed(const T* src, int64_t ld, int R, int P, int64_t kc, T* dst) {
  using X = Tr<T>;
  constexpr int B = X::B;
  const int64_t kfull = kc / B * B;
  for (int r0 = 0; r0 < P; r0 += B) {
    const int w = std::min(B, P - r0);                  // lanes stored
    const int live = std::max(0, std::min(B, R - r0));  // rows read
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kPackMask + 8 - w * (8 / B)));
    for (int64_t k0 = 0; k0 < kfull; k0 += B) {
      typename X::V v[B];
      for (int q = 0; q < B; ++q) v[q] = q < live ? X::load(src + (r0 + q) * ld + k0) : X::zero();
      X::transpose(v);
      T* d = dst + k0 * P + r0;
      if (w == B) {
        for (int q = 0; q < B; ++q) X::store(d + q * P, v[q]);
      } else {
        for (int q = 0; q < B; ++q) X::store(d + q * P, v[q], m);
      }
    }
    for (int64_t k = kfull; k < kc; ++k)
      for (int q = 0; q < w; ++q) dst[k * P + r0 + q] = q < live ? src[(r0 + q) * ld + k] : T(0);
  }
}
#else
template <class T>
void pack_rows_transposed(const T* src, int64_t ld, int R, int P, int64_t kc, T* dst) {
  for (int64_t k0 = 0; k0 < kc; k0 += 8) {
    const int64_t k1 = std::min<int64_t>(k0 + 8, kc);
    for (int r = 0; r < P; ++r)
      for (int64_t k = k0; k < k1; ++k) dst[k * P + r] = r < R ? src[r * ld + k] : T(0);
  }
}
#endif

// A block rows [0, rows) x depth [0, kc) of op(A) (a points at its first element) into
// one MR-row tile: kc columns of MR values, rows past `rows` zero.
//   trans: element (i, k) at a[k * lda + i]; else a[i * lda + k].
template <class T>
void pack_a_tile(bool trans, const T* a, int64_t lda, int rows, int64_t kc, T* dst) {
  constexpr int MR = Cfg<T>::MR;
  if (!trans) {
    pack_rows_transposed(a, lda, rows, MR, kc, dst);
    return;
  }
  if (rows == MR) {  // a fixed-size copy per k compiles to a few vector moves
    for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * MR, a + k * lda, sizeof(T) * MR);
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const T* src = a + k * lda;
    T* d = dst + k * MR;
    int i = 0;
    for (; i < rows; ++i) d[i] = src[i];
    for (; i < MR; ++i) d[i] = T(0);
  }
}

// B block depth [0, kc) x cols [0, cols) of op(B) into one panel of width P (NR, or the
// whole vectors covering `cols` for the last panel): kc rows of P values, zero past cols.
//   trans: element (k, j) at b[j * ldb + k]; else b[k * ldb + j].
template <class T>
void pack_b_panel(bool trans, const T* b, int64_t ldb, int64_t kc, int cols, int P, T* dst) {
  if (trans) {
    pack_rows_transposed(b, ldb, cols, P, kc, dst);
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const T* src = b + k * ldb;
    T* d = dst + k * P;
    std::memcpy(d, src, sizeof(T) * cols);
    for (int j = cols; j < P; ++j) d[j] = T(0);
  }
}

inline int panel_width(int cols, int W) { return (cols + W - 1) / W * W; }

// ---------------------------------------------------------------- workspace
// Packing buffers, reused across calls: one growing, 64-byte-aligned block per thread.
struct Workspace {
  void* p = nullptr;
  size_t cap = 0;
  ~Workspace() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      cap = std::max(bytes, cap + cap / 2);
      cap = (cap + 63) & ~size_t(63);
      p = std::aligned_alloc(64, cap);
      if (!p) {
        cap = 0;
        throw std::bad_alloc();
      }
    }
    return p;
  }
};
inline Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

// ---------------------------------------------------------------- driver
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Split n into the fewest blocks of at most `cap` (a multiple of `unit`), all about the
// same size (a multiple of `unit`); returns the block size.
inline int64_t even_block(int64_t n, int64_t cap, int64_t unit) {
  if (n <= 0) return cap;
  const int64_t nblocks = ceil_div(n, cap);
  return std::min(cap, ceil_div(ceil_div(n, nblocks), unit) * unit);
}

// The choices for one call, made once from the shape.
struct Plan {
  bool pack_a, pack_b;
  int nt;        // threads
  bool split_n;  // threads split the columns (A shared) or the rows (each packs all of B)
  int64_t mc3;   // rows of A per outer block
};

template <class T>
Plan gemm_plan(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int max_threads) {
  constexpr int MR = Cfg<T>::MR, NR = Cfg<T>::NV * Vec<T>::W;
  Plan p;
  const int64_t tiles_m = ceil_div(M, MR), panels_n = ceil_div(N, NR);
  // Packing B pays when each panel is reused by many A tiles; few rows read B in place
  // (B^T must be packed: its rows would need a gather).
  p.pack_b = tb || tiles_m > 4;
  // A^T is packed (in place each k step would touch a new line) unless a single B panel
  // uses each tile once, when packing is a whole extra pass; A itself is read in place
  // when there are few B panels to reuse a packed tile over.
  p.pack_a = (ta && panels_n > 1) || panels_n > 4;
  p.mc3 = p.pack_a ? Cfg<T>::MC3 : M;
  // Threads: about 1.5 MFLOP each before waking another pays.
  const double flops = 2.0 * M * N * K;
  int64_t nt = static_cast<int64_t>(flops / 1.5e6);
  nt = std::max<int64_t>(1, std::min<int64_t>(nt, max_threads));
  p.nt = static_cast<int>(nt);
  // Split rows or columns across threads. Each thread packs (or reads) all of the
  // operand it shares: splitting rows repeats B's packing, about 8 FMAs' worth per
  // element against the M / nt uses each element gets; splitting columns repeats A's,
  // against N / nt uses. Weigh that with how evenly tiles or panels divide.
  const int64_t tm = ceil_div(std::min(M, p.mc3), MR);
  const double imb_n = double(ceil_div(panels_n, nt) * nt) / panels_n;
  const double imb_m = double(ceil_div(tm, nt) * nt) / tm;
  const double cost_m = imb_m * (1 + 8.0 * nt / M), cost_n = imb_n * (1 + 8.0 * nt / N);
  p.split_n = cost_n < cost_m;
  return p;
}

// One block of C: A tiles [t0, t1) x B panels [p0, p1) at depth kc.
//   A operand: packed (a, a_tile_stride) or in place (a, lda, ta).
template <class T>
struct BlockArgs {
  const T* a;  // packed block, or op(A)'s element (m0, k0) in place
  int64_t a_tile_stride;  // packed: elements between tiles
  bool a_packed, ta;
  int64_t lda;
  const T* b;  // packed block (panel stride kc*NR), or op(B)'s element (k0, n0) in place
  bool b_packed;
  int64_t ldb;
  const T* b_edge;  // packed copy of the last, partial panel when B is in place
  int64_t kc, mrows, ncols;
  T* c;  // element (m0, n0)
  int64_t ldc;
  T alpha, beta;
};

template <class T>
void compute_block(const BlockArgs<T>& g, int64_t t0, int64_t t1, int64_t p0, int64_t p1) {
  constexpr int MR = Cfg<T>::MR, NR = Cfg<T>::NV * Vec<T>::W, W = Vec<T>::W;
  const KernelTable<T>& kt = kernels<T>();
  for (int64_t t = t0; t < t1; ++t) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, g.mrows - t * MR));
    const T* at;
    int64_t a_step;
    bool rs1;
    if (g.a_packed) {
      at = g.a + t * g.a_tile_stride;
      a_step = MR;
      rs1 = true;
    } else if (g.ta) {
      at = g.a + t * MR;
      a_step = g.lda;
      rs1 = true;
    } else {
      at = g.a + t * MR * g.lda;
      a_step = g.lda;
      rs1 = false;
    }
    for (int64_t p = p0; p < p1; ++p) {
      const int cols = static_cast<int>(std::min<int64_t>(NR, g.ncols - p * NR));
      const T* bp;
      int64_t b_step;
      if (g.b_packed) {
        bp = g.b + p * g.kc * NR;
        b_step = panel_width(cols, W);
      } else if (cols < NR) {
        bp = g.b_edge;
        b_step = panel_width(cols, W);
      } else {
        bp = g.b + p * NR;
        b_step = g.ldb;
      }
      const int nv = (cols + W - 1) / W;
      kt.fn[rs1][rows - 1][nv - 1](g.kc, at, a_step, bp, b_step, g.c + t * MR * g.ldc + p * NR, g.ldc, cols,
                                   g.alpha, g.beta);
    }
  }
}

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, int max_threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  constexpr int MR = Cfg<T>::MR, W = Vec<T>::W, NR = Cfg<T>::NV * W, KC = Cfg<T>::KC, NCB = Cfg<T>::NCB;
  const Plan plan = gemm_plan<T>(ta, tb, M, N, K, max_threads);
  const int nt = plan.nt;
  // Depth blocks of equal size (a multiple of 8, at most KC): a short last block would
  // cost a full pass over C for little work.
  const int64_t mc3 = plan.pack_a ? even_block(M, plan.mc3, MR) : plan.mc3;
  const int64_t kc_max = std::min<int64_t>(KC, (ceil_div(K, ceil_div(K, KC)) + 7) / 8 * 8);
  const int64_t ncb = std::min<int64_t>(ceil_div(N, NR) * NR, NCB);
  // Workspace (the calling thread's), per thread: an A block, a B block, an edge panel.
  const size_t a_elems = plan.pack_a ? size_t(ceil_div(std::min(M, mc3), MR) * MR * kc_max) : 0;
  const size_t b_elems = plan.pack_b ? size_t(ncb * kc_max) : 0;
  const size_t e_elems = size_t(NR * kc_max);
  auto round64 = [](size_t n) { return (n * sizeof(T) + 63) / 64 * 64 / sizeof(T); };
  const size_t per_thread = round64(a_elems) + round64(b_elems) + round64(e_elems);
  T* ws = static_cast<T*>(workspace().get(sizeof(T) * per_thread * nt));
  auto a_buf = [&](int t) { return ws + per_thread * t; };
  auto b_buf = [&](int t) { return a_buf(t) + round64(a_elems); };
  auto e_buf = [&](int t) { return b_buf(t) + round64(b_elems); };

  // Each thread packs what it reads into its own buffers, so the threads never wait on
  // each other until the region ends: with a busy machine, a barrier can cost a time slice.
  auto body = [&](int tid, int nthr) {
    const int64_t panels = ceil_div(N, NR);
    const int64_t nb = plan.split_n ? std::min(N, panels * tid / nthr * NR) : 0;
    const int64_t ne = plan.split_n ? std::min(N, panels * (tid + 1) / nthr * NR) : N;
    if (nb >= ne) return;
    for (int64_t m0 = 0; m0 < M; m0 += mc3) {
      const int64_t mc = std::min(mc3, M - m0);
      const int64_t tiles = ceil_div(mc, MR);
      for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
        const int64_t kc = std::min<int64_t>(kc_max, K - k0);
        BlockArgs<T> g;
        g.ta = ta;
        g.lda = lda;
        g.a_packed = plan.pack_a;
        g.b_packed = plan.pack_b;
        g.ldb = ldb;
        g.kc = kc;
        g.mrows = mc;
        g.ldc = ldc;
        g.alpha = alpha;
        g.beta = k0 == 0 ? beta : T(1);
        const T* a_src = ta ? A + k0 * lda + m0 : A + m0 * lda + k0;
        // This thread's A tiles: all of them when it owns columns, its share when it owns rows.
        const int64_t t0 = plan.split_n ? 0 : tiles * tid / nthr;
        const int64_t t1 = plan.split_n ? tiles : tiles * (tid + 1) / nthr;
        if (t0 == t1) continue;
        if (plan.pack_a) {
          for (int64_t t = t0; t < t1; ++t) {
            const int rows = static_cast<int>(std::min<int64_t>(MR, mc - t * MR));
            pack_a_tile(ta, ta ? a_src + t * MR : a_src + t * MR * lda, lda, rows, kc, a_buf(tid) + t * kc * MR);
          }
          g.a = a_buf(tid);
          g.a_tile_stride = kc * MR;
        } else {
          g.a = a_src;
        }
        // op(B) element (k0, n) in place
        auto b_src = [&](int64_t n) { return tb ? B + n * ldb + k0 : B + k0 * ldb + n; };
        auto prepare_b = [&](int64_t n0, int64_t nc, int64_t q0, int64_t q1, T* bb, T* eb) {
          // packs panels [q0, q1) of the block at column n0 (or just the edge panel)
          if (plan.pack_b) {
            for (int64_t q = q0; q < q1; ++q) {
              const int cols = static_cast<int>(std::min<int64_t>(NR, nc - q * NR));
              pack_b_panel(tb, b_src(n0 + q * NR), ldb, kc, cols, panel_width(cols, W), bb + q * kc * NR);
            }
          } else if (nc % NR && q1 == ceil_div(nc, NR) && q0 < q1) {
            const int64_t q = q1 - 1;
            const int cols = static_cast<int>(nc - q * NR);
            pack_b_panel(tb, b_src(n0 + q * NR), ldb, kc, cols, panel_width(cols, W), eb);
          }
        };
        if (plan.split_n) {
          // this thread's columns [nb, ne), whole panels
          const int64_t nstep = even_block(ne - nb, ncb, NR);
          for (int64_t n0 = nb; n0 < ne; n0 += nstep) {
            const int64_t nc = std::min(nstep, ne - n0);
            const int64_t np = ceil_div(nc, NR);
            prepare_b(n0, nc, 0, np, b_buf(tid), e_buf(tid));
            g.b = plan.pack_b ? b_buf(tid) : b_src(n0);
            g.b_edge = e_buf(tid);
            g.ncols = nc;
            g.c = C + m0 * ldc + n0;
            compute_block(g, 0, tiles, 0, np);
          }
        } else {
          // Rows split: each thread packs every B panel for itself (B's packing is repeated
          // per thread; gemm_plan weighs that against the columns split's repeated A).
          const int64_t nstep = even_block(N, ncb, NR);
          for (int64_t n0 = 0; n0 < N; n0 += nstep) {
            const int64_t nc = std::min(nstep, N - n0);
            const int64_t np = ceil_div(nc, NR);
            prepare_b(n0, nc, 0, np, b_buf(tid), e_buf(tid));
            g.b = plan.pack_b ? b_buf(tid) : b_src(n0);
            g.b_edge = e_buf(tid);
            g.ncols = nc;
            g.c = C + m0 * ldc + n0;
            compute_block(g, t0, t1, 0, np);
          }
        }
      }
    }
  };

  if (nt <= 1) {
    body(0, 1);
  } else {
    parallel_region(nt, body);
  }
}
