// Elementwise loops of the activations, included once per ISA region by activation.cpp
// (no include guard on purpose). Like elementwise_loops.h, but the functor is copied
// into a local first: read through the closure, a parameter such as leaky_relu's slope
// may alias the output, which keeps GCC from vectorizing (and from if-converting the
// select, so random signs cost a branch miss each). EMBER_FLATTEN inlines every call in
// the loop body (vmath::exp included) so no out-of-line, baseline-ISA call is left in it.

template <class Op, class T>
void act_unary_loop(const StridedLoop<2>& L, const T* a, T* o, Op op) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) EMBER_FLATTEN {
    const Op f = op;
    const T* pa = a + off[0];
    T* po = o + off[1];
    if (st[0] == 1 && st[1] == 1) {
#ifdef EMBER_ACT_AVX512  // defined around the AVX-512 copy of this file
      if constexpr (std::is_same_v<T, float> && HasAvx512<Op>::value) {
        const int64_t i = n - n % 16;
        for_chunks_prefetching(i, [&](int64_t i0, int64_t i1) {
          for (int64_t j = i0; j < i1; j += 16) _mm512_storeu_ps(po + j, f.avx512(_mm512_loadu_ps(pa + j)));
        }, pa + kPrefetchChunk);
        if (i < n) {
          const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
          _mm512_mask_storeu_ps(po + i, m, f.avx512(_mm512_maskz_loadu_ps(m, pa + i)));
        }
        return;
      }
#endif
      for_chunks_prefetching(n, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) po[i] = f(pa[i]);
      }, pa + kPrefetchChunk);
    } else {
      const int64_t sa = st[0], so = st[1];
#ifdef EMBER_ACT_AVX512
      if constexpr (std::is_same_v<T, float> && HasAvx512<Op>::value) {  // the same results as contiguous
        for (int64_t i = 0; i < n; i += 16) {
          const int64_t m = std::min<int64_t>(16, n - i);
          alignas(64) float buf[16] = {};
          for (int64_t k = 0; k < m; ++k) buf[k] = pa[(i + k) * sa];
          _mm512_store_ps(buf, f.avx512(_mm512_load_ps(buf)));
          for (int64_t k = 0; k < m; ++k) po[(i + k) * so] = buf[k];
        }
        return;
      }
#endif
      for (int64_t i = 0; i < n; ++i) po[i * so] = f(pa[i * sa]);
    }
  });
}

// o = op(g, s): a backward from grad g and the saved input or output s.
template <class Op, class T>
void act_binary_loop(const StridedLoop<3>& L, const T* g, const T* s, T* o, Op op) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st, int64_t n) EMBER_FLATTEN {
    const Op f = op;
    const T* pg = g + off[0];
    const T* ps = s + off[1];
    T* po = o + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for_chunks_prefetching(n, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) po[i] = f(pg[i], ps[i]);
      }, pg + kPrefetchChunk, ps + kPrefetchChunk);
    } else {
      const int64_t sg = st[0], ss = st[1], so = st[2];
      for (int64_t i = 0; i < n; ++i) po[i * so] = f(pg[i * sg], ps[i * ss]);
    }
  });
}
