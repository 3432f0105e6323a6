// Dropout loops, compiled once per ISA region by dropout.cpp (no include guard on
// purpose). Philox runs on kLanes counters at once in structure-of-arrays form so each
// round is a handful of SIMD multiplies (vpmuludq); the words are then laid out in
// element order and the keep/scale loop is a plain SIMD select.

constexpr int kLanes = 64;  // Philox blocks per group: 256 elements

// Ten Philox rounds on kLanes counters (c0..c3, structure of arrays) in place.
// EMBER_ISA_LEVEL (2 = AVX-512, 1 = AVX2, 0 = portable) is set by isa_instantiate.h: GCC's
// target pragma does not define __AVX512F__ / __AVX2__ in C++.
#if EMBER_ISA_LEVEL == 2
// 32x32->64 multiplies with vpmuludq on the even lanes and on the odd lanes shifted
// down; blends put the 32-bit halves back in lane order (GCC's own vectorization uses
// the much slower 64-bit vpmullq).
inline void mulhilo(__m512i a, __m512i mul, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(a, mul);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mul);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}
// kLanes/16 independent vectors per round keep the multiply latency hidden.
inline void philox_lanes(uint32_t* c0, uint32_t* c1, uint32_t* c2, uint32_t* c3, uint32_t key0, uint32_t key1) {
  static_assert(kLanes % 16 == 0, "whole 512-bit vectors");
  constexpr int V = kLanes / 16;
  __m512i a0[V], a1[V], a2[V], a3[V];
  for (int v = 0; v < V; ++v) {
    a0[v] = _mm512_load_si512(c0 + 16 * v);
    a1[v] = _mm512_load_si512(c1 + 16 * v);
    a2[v] = _mm512_load_si512(c2 + 16 * v);
    a3[v] = _mm512_load_si512(c3 + 16 * v);
  }
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(ember::philox::kMul0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(ember::philox::kMul1));
  uint32_t k0 = key0, k1 = key1;
  for (int r = 0; r < ember::philox::kRounds; ++r) {
    const __m512i kv0 = _mm512_set1_epi32(static_cast<int>(k0)), kv1 = _mm512_set1_epi32(static_cast<int>(k1));
    for (int v = 0; v < V; ++v) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo(a0[v], m0, hi0, lo0);
      mulhilo(a2[v], m1, hi1, lo1);
      a0[v] = _mm512_xor_si512(_mm512_xor_si512(hi1, a1[v]), kv0);
      a2[v] = _mm512_xor_si512(_mm512_xor_si512(hi0, a3[v]), kv1);
      a1[v] = lo1;
      a3[v] = lo0;
    }
    k0 += ember::philox::kWeyl0;
    k1 += ember::philox::kWeyl1;
  }
  for (int v = 0; v < V; ++v) {
    _mm512_store_si512(c0 + 16 * v, a0[v]);
    _mm512_store_si512(c1 + 16 * v, a1[v]);
    _mm512_store_si512(c2 + 16 * v, a2[v]);
    _mm512_store_si512(c3 + 16 * v, a3[v]);
  }
}

// Elements are multiplied by (keep ? scale : 0), as torch multiplies by its scaled mask,
// so NaN and inf propagate from dropped elements too.
// A full group: transpose the words (structure of arrays) into element order in
// registers (4x4 transposes of 32-bit words, then of 128-bit blocks) and write the
// scaled elements and the mask. Element 4*l + k takes word k of lane l.
template <class T>
inline void emit_full(const uint32_t* c0, const uint32_t* c1, const uint32_t* c2, const uint32_t* c3, const T* x,
                      T* out, bool* mask, uint32_t threshold, T scale) {
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m128i one = _mm_set1_epi8(1);
  for (int v = 0; v < kLanes / 16; ++v) {
    const __m512i w0 = _mm512_load_si512(c0 + 16 * v), w1 = _mm512_load_si512(c1 + 16 * v);
    const __m512i w2 = _mm512_load_si512(c2 + 16 * v), w3 = _mm512_load_si512(c3 + 16 * v);
    const __m512i a = _mm512_unpacklo_epi32(w0, w1), b = _mm512_unpackhi_epi32(w0, w1);
    const __m512i c = _mm512_unpacklo_epi32(w2, w3), d = _mm512_unpackhi_epi32(w2, w3);
    const __m512i r0 = _mm512_unpacklo_epi64(a, c), r1 = _mm512_unpackhi_epi64(a, c);
    const __m512i r2 = _mm512_unpacklo_epi64(b, d), r3 = _mm512_unpackhi_epi64(b, d);
    const __m512i s0 = _mm512_shuffle_i32x4(r0, r1, 0x44), s1 = _mm512_shuffle_i32x4(r2, r3, 0x44);
    const __m512i s2 = _mm512_shuffle_i32x4(r0, r1, 0xEE), s3 = _mm512_shuffle_i32x4(r2, r3, 0xEE);
    const __m512i e[4] = {_mm512_shuffle_i32x4(s0, s1, 0x88), _mm512_shuffle_i32x4(s0, s1, 0xDD),
                          _mm512_shuffle_i32x4(s2, s3, 0x88), _mm512_shuffle_i32x4(s2, s3, 0xDD)};
    for (int j = 0; j < 4; ++j) {
      const int64_t o = 64 * v + 16 * j;
      const __mmask16 keep = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(e[j], 8), thr);
      if constexpr (std::is_same_v<T, float>) {
        _mm512_storeu_ps(out + o, _mm512_mul_ps(_mm512_loadu_ps(x + o), _mm512_maskz_mov_ps(keep, _mm512_set1_ps(scale))));
      } else {
        const __m512d sc = _mm512_set1_pd(scale);
        const __m512d s0 = _mm512_maskz_mov_pd(static_cast<__mmask8>(keep), sc);
        const __m512d s1 = _mm512_maskz_mov_pd(static_cast<__mmask8>(keep >> 8), sc);
        _mm512_storeu_pd(out + o, _mm512_mul_pd(_mm512_loadu_pd(x + o), s0));
        _mm512_storeu_pd(out + o + 8, _mm512_mul_pd(_mm512_loadu_pd(x + o + 8), s1));
      }
      if (mask) _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + o), _mm_maskz_mov_epi8(keep, one));
    }
  }
}
#elif EMBER_ISA_LEVEL == 1
inline void mulhilo(__m256i a, __m256i mul, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, mul);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mul);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
inline void philox_lanes(uint32_t* c0, uint32_t* c1, uint32_t* c2, uint32_t* c3, uint32_t key0, uint32_t key1) {
  static_assert(kLanes % 8 == 0, "whole 256-bit vectors");
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(ember::philox::kMul0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(ember::philox::kMul1));
  constexpr int V = 4;  // independent vectors per round hide the multiply latency (16 ymm registers)
  static_assert(kLanes % (8 * V) == 0, "whole groups of vectors");
  for (int h = 0; h < kLanes; h += 8 * V) {
    __m256i a0[V], a1[V], a2[V], a3[V];
    for (int v = 0; v < V; ++v) {
      a0[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(c0 + h + 8 * v));
      a1[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(c1 + h + 8 * v));
      a2[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(c2 + h + 8 * v));
      a3[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(c3 + h + 8 * v));
    }
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < ember::philox::kRounds; ++r) {
      const __m256i kv0 = _mm256_set1_epi32(static_cast<int>(k0)), kv1 = _mm256_set1_epi32(static_cast<int>(k1));
      for (int v = 0; v < V; ++v) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo(a0[v], m0, hi0, lo0);
        mulhilo(a2[v], m1, hi1, lo1);
        a0[v] = _mm256_xor_si256(_mm256_xor_si256(hi1, a1[v]), kv0);
        a2[v] = _mm256_xor_si256(_mm256_xor_si256(hi0, a3[v]), kv1);
        a1[v] = lo1;
        a3[v] = lo0;
      }
      k0 += ember::philox::kWeyl0;
      k1 += ember::philox::kWeyl1;
    }
    for (int v = 0; v < V; ++v) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(c0 + h + 8 * v), a0[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(c1 + h + 8 * v), a1[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(c2 + h + 8 * v), a2[v]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(c3 + h + 8 * v), a3[v]);
    }
  }
}

// A full group, AVX2: the same transposition on 8-lane vectors; the mask bytes come from
// the compare's sign bits through pdep. (w >> 8) < 2^24, so a signed compare against
// threshold - 1 is exact (threshold 0 gives -1: everything kept).
template <class T>
inline void emit_full(const uint32_t* c0, const uint32_t* c1, const uint32_t* c2, const uint32_t* c3, const T* x,
                      T* out, bool* mask, uint32_t threshold, T scale) {
  const __m256i thr = _mm256_set1_epi32(static_cast<int32_t>(threshold) - 1);
  for (int v = 0; v < kLanes / 8; ++v) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c0 + 8 * v));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c1 + 8 * v));
    const __m256i w2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c2 + 8 * v));
    const __m256i w3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c3 + 8 * v));
    const __m256i a = _mm256_unpacklo_epi32(w0, w1), b = _mm256_unpackhi_epi32(w0, w1);
    const __m256i c = _mm256_unpacklo_epi32(w2, w3), d = _mm256_unpackhi_epi32(w2, w3);
    const __m256i r0 = _mm256_unpacklo_epi64(a, c), r1 = _mm256_unpackhi_epi64(a, c);
    const __m256i r2 = _mm256_unpacklo_epi64(b, d), r3 = _mm256_unpackhi_epi64(b, d);
    const __m256i e[4] = {_mm256_permute2x128_si256(r0, r1, 0x20), _mm256_permute2x128_si256(r2, r3, 0x20),
                          _mm256_permute2x128_si256(r0, r1, 0x31), _mm256_permute2x128_si256(r2, r3, 0x31)};
    for (int j = 0; j < 4; ++j) {
      const int64_t o = 32 * v + 8 * j;
      const __m256i keep = _mm256_cmpgt_epi32(_mm256_srli_epi32(e[j], 8), thr);  // all ones where kept
      if constexpr (std::is_same_v<T, float>) {
        const __m256 sc = _mm256_and_ps(_mm256_castsi256_ps(keep), _mm256_set1_ps(scale));
        _mm256_storeu_ps(out + o, _mm256_mul_ps(_mm256_loadu_ps(x + o), sc));
      } else {
        const __m256d s = _mm256_set1_pd(scale);
        const __m256i k0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep));
        const __m256i k1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep, 1));
        _mm256_storeu_pd(out + o, _mm256_mul_pd(_mm256_loadu_pd(x + o), _mm256_and_pd(_mm256_castsi256_pd(k0), s)));
        _mm256_storeu_pd(out + o + 4,
                         _mm256_mul_pd(_mm256_loadu_pd(x + o + 4), _mm256_and_pd(_mm256_castsi256_pd(k1), s)));
      }
      if (mask) {
        const uint64_t bits = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(keep)));
        const uint64_t bytes = _pdep_u64(bits, 0x0101010101010101ull);
        __builtin_memcpy(mask + o, &bytes, 8);
      }
    }
  }
}
#else
// Portable: the rounds of csrc/philox.h, lane by lane.
inline void philox_lanes(uint32_t* c0, uint32_t* c1, uint32_t* c2, uint32_t* c3, uint32_t key0, uint32_t key1) {
  for (int l = 0; l < kLanes; ++l) {
    const ember::philox::Block b = ember::philox::philox4x32_10(c0[l], c1[l], c2[l], c3[l], key0, key1);
    c0[l] = b.v[0];
    c1[l] = b.v[1];
    c2[l] = b.v[2];
    c3[l] = b.v[3];
  }
}
#endif

// Elements [e0, e1) of the stream block range starting at element e0 (e0 % 4 == 0).
template <class T>
void dropout_range(const T* x, T* out, bool* mask, int64_t e0, int64_t e1, uint64_t seed, uint64_t offset,
                   uint32_t threshold, T scale) {
  const uint32_t key0 = static_cast<uint32_t>(seed), key1 = static_cast<uint32_t>(seed >> 32);
  alignas(64) uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  alignas(64) uint32_t words[4 * kLanes];
  for (int64_t base = e0; base < e1; base += 4 * kLanes) {
    const uint64_t block0 = (offset + static_cast<uint64_t>(base)) / 4;
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t b = block0 + static_cast<uint64_t>(l);
      c0[l] = static_cast<uint32_t>(b);
      c1[l] = static_cast<uint32_t>(b >> 32);
      c2[l] = 0;
      c3[l] = 0;
    }
    philox_lanes(c0, c1, c2, c3, key0, key1);
#if EMBER_ISA_LEVEL >= 1
    if (e1 - base >= 4 * kLanes) {
      emit_full(c0, c1, c2, c3, x + base, out + base, mask ? mask + base : nullptr, threshold, scale);
      continue;
    }
#endif
    for (int l = 0; l < kLanes; ++l) {
      words[4 * l + 0] = c0[l];
      words[4 * l + 1] = c1[l];
      words[4 * l + 2] = c2[l];
      words[4 * l + 3] = c3[l];
    }
    const int64_t cnt = std::min<int64_t>(4 * kLanes, e1 - base);
    const T* xs = x + base;
    T* os = out + base;
    if (mask) {
      uint8_t* ms = reinterpret_cast<uint8_t*>(mask + base);  // bytes: GCC does not vectorize bool stores well
#pragma omp simd
      for (int64_t i = 0; i < cnt; ++i) {
        const uint32_t keep = (words[i] >> 8) >= threshold ? 1u : 0u;  // 0/1 arithmetic, no branch
        os[i] = xs[i] * (static_cast<T>(static_cast<int32_t>(keep)) * scale);
        ms[i] = static_cast<uint8_t>(keep);
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < cnt; ++i) {
        const uint32_t keep = (words[i] >> 8) >= threshold ? 1u : 0u;
        os[i] = xs[i] * (static_cast<T>(static_cast<int32_t>(keep)) * scale);
      }
    }
  }
}

template <class T>
void dropout_forward_loop(const T* x, T* out, bool* mask, int64_t n, uint64_t seed, uint64_t offset,
                          uint32_t threshold, T scale) {
  // Threads split whole groups of blocks, so each generates its own counter range.
  const int64_t groups = (n + 4 * kLanes - 1) / (4 * kLanes);
  parallel_for(groups, kElementwiseGrain / (4 * kLanes), [&](int64_t g0, int64_t g1) {
    dropout_range(x, out, mask, g0 * 4 * kLanes, std::min(n, g1 * 4 * kLanes), seed, offset, threshold, scale);
  });
}

template <class T>
void dropout_backward_loop(const T* g, const bool* mask_bool, T* gi, int64_t n, T scale) {
  // The mask read as bytes (GCC does not vectorize loads of bool).
  const uint8_t* mask = reinterpret_cast<const uint8_t*>(mask_bool);
  parallel_for(n, kElementwiseGrain, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t i = b; i < e; ++i) gi[i] = g[i] * (static_cast<T>(mask[i]) * scale);  // mask is 0 or 1
  });
}
