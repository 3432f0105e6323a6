// Inner loops of softmax / log_softmax, forward and backward. Included once per ISA
// region by activation.cpp (no include guard on purpose) so each loop is compiled for
// scalar, AVX2 and AVX-512 and picked at run time; needs DimLayout and the math helpers
// (exp_t, log_t) from activation.cpp.
//
// Two shapes of work, both over a (outer, C, inner) view of the tensor:
//   rows:    inner == 1, a row of C elements (stride 1 in the fast path);
//   columns: inner > 1, a block of up to kColumnBlock inner positions, walked over C
//            with the max / sum kept per inner position, so the loop over the block
//            vectorizes (stride 1 in the fast path) and no transposing copy is needed;
//            also (R, C) with short rows, as R columns of stride C (through a transposing
//            scratch); columns whose C rows span more than kCachedSpan bytes go by bands
//            of rows (softmax_online_run).

// ---- forward: x (outer, C, inner) -> y, same layout (any strides)

// A sum of exp(x - from) as a sum of exp(x - to), to >= from: how the online and split
// passes merge their parts. Equal maxima (both -inf included, where exp would give NaN)
// keep s.
template <class T>
EMBER_INLINE T rescaled_sum(T s, T from, T to) {
  return from == to ? s : s * exp_t(from - to);
}

template <class T, bool Log>
EMBER_FLATTEN void softmax_row(const T* x, int64_t sx, T* y, int64_t sy, int64_t C) {
  T m = -std::numeric_limits<T>::infinity();
  T s = 0;
  if (sx == 1 && sy == 1) {
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < C; ++i) m = x[i] > m ? x[i] : m;  // a NaN is caught below
    // the exp pass (from L1) asks for the next row, x + C when rows are packed, a chunk
    // at a time: the next max pass then reads from cache (a wasted prefetch otherwise)
    for (int64_t i0 = 0; i0 < C; i0 += kPrefetchChunk) {
      prefetch_chunk(x + C + i0);
      const int64_t i1 = std::min(C, i0 + kPrefetchChunk);
      if (Log) {
#pragma omp simd reduction(+ : s)
        for (int64_t i = i0; i < i1; ++i) s += exp_t(x[i] - m);
      } else {
#pragma omp simd reduction(+ : s)
        for (int64_t i = i0; i < i1; ++i) {
          T e = exp_t(x[i] - m);
          y[i] = e;
          s += e;
        }
      }
    }
    if (Log) {
      const T ls = log_t(s);
      for (int64_t i = 0; i < C; ++i) y[i] = (x[i] - m) - ls;
    } else {
      const T r = T(1) / s;
      for (int64_t i = 0; i < C; ++i) y[i] *= r;
    }
    return;
  }
  for (int64_t i = 0; i < C; ++i) m = x[i * sx] > m ? x[i * sx] : m;
  if (Log) {
    for (int64_t i = 0; i < C; ++i) s += exp_t(x[i * sx] - m);
    const T ls = log_t(s);
    for (int64_t i = 0; i < C; ++i) y[i * sy] = (x[i * sx] - m) - ls;
  } else {
    for (int64_t i = 0; i < C; ++i) {
      T e = exp_t(x[i * sx] - m);
      y[i * sy] = e;
      s += e;
    }
    const T r = T(1) / s;
    for (int64_t i = 0; i < C; ++i) y[i * sy] *= r;
  }
}

// w (<= kColumnBlock) inner positions at x, x + ix, ...; C steps of cx apart. Three
// passes over C (max, exp and sum, scale), cheap while the block stays in L2.
template <class T, bool Log, bool Unit>
EMBER_FLATTEN void softmax_columns(const T* x, int64_t cx, int64_t ix, T* y, int64_t cy, int64_t iy, int64_t C, int64_t w) {
  if (Unit) ix = iy = 1;
  T m[kColumnBlock], s[kColumnBlock];
  for (int64_t j = 0; j < w; ++j) { m[j] = -std::numeric_limits<T>::infinity(); s[j] = 0; }
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * cx;
    for (int64_t j = 0; j < w; ++j) m[j] = xc[j * ix] > m[j] ? xc[j * ix] : m[j];
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * cx;
    T* yc = y + c * cy;
    if (Log) {
      for (int64_t j = 0; j < w; ++j) s[j] += exp_t(xc[j * ix] - m[j]);
    } else {
      for (int64_t j = 0; j < w; ++j) {
        T e = exp_t(xc[j * ix] - m[j]);
        yc[j * iy] = e;
        s[j] += e;
      }
    }
  }
  for (int64_t j = 0; j < w; ++j) s[j] = Log ? log_t(s[j]) : T(1) / s[j];
  for (int64_t c = 0; c < C; ++c) {
    const T* xc = x + c * cx;
    T* yc = y + c * cy;
    if (Log) {
      for (int64_t j = 0; j < w; ++j) yc[j * iy] = (xc[j * ix] - m[j]) - s[j];
    } else {
      for (int64_t j = 0; j < w; ++j) yc[j * iy] *= s[j];
    }
  }
}

// Short contiguous rows (R, C), C <= kShortRow (dim_layout.h walks them as R columns of
// stride C): loads and stores C apart would be gathers and scatters in every pass, so
// blocks of kShortBlock rows are transposed once into a (C, kShortBlock) scratch that
// stays in L1 (rows past the end padded with 0: a constant width lets the column loops
// unroll), run through the unit-stride column loops in place, and transposed back.
constexpr int64_t kShortBlock = 64;

// The (w <= kShortBlock, C) rows at x -> the (C, kShortBlock) scratch t, rows past w
// zero, and back. On AVX-512 each step is one gather of 16 lanes (16 rows of a column
// in; one row's C columns out, stored contiguously), not 16 scalar moves.
#ifdef EMBER_ACT_AVX512
// The gather offsets 0, stride, ..., 15 stride (in elements).
EMBER_AVX512_FN __m512i lane_offsets(int64_t stride) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32(static_cast<int>(stride)));
}
#endif

template <class T>
EMBER_FLATTEN void short_rows_in(const T* x, int64_t C, int64_t w, T* t) {
#ifdef EMBER_ACT_AVX512
  if constexpr (std::is_same_v<T, float>) {
    const __m512i idx = lane_offsets(C);
    for (int64_t r0 = 0; r0 < kShortBlock; r0 += 16) {
      const int64_t left = std::clamp<int64_t>(w - r0, 0, 16);
      const __mmask16 m = static_cast<__mmask16>((1u << left) - 1);
      for (int64_t c = 0; c < C; ++c)
        _mm512_storeu_ps(t + c * kShortBlock + r0,
                         _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x + r0 * C + c, 4));
    }
    return;
  }
#endif
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < kShortBlock; ++r) t[c * kShortBlock + r] = r < w ? x[r * C + c] : T(0);
}

template <class T>
EMBER_FLATTEN void short_rows_out(const T* t, int64_t C, int64_t w, T* y) {
#ifdef EMBER_ACT_AVX512
  if constexpr (std::is_same_v<T, float>) {
    const __m512i idx = lane_offsets(kShortBlock);
    const __mmask16 m = static_cast<__mmask16>((1u << C) - 1);
    for (int64_t r = 0; r < w; ++r)
      _mm512_mask_storeu_ps(y + r * C, m, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, t + r, 4));
    return;
  }
#endif
  for (int64_t r = 0; r < w; ++r)
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = t[c * kShortBlock + r];
}

template <class T, bool Log>
EMBER_FLATTEN void softmax_short_rows(const T* x, T* y, int64_t C, int64_t R) {
  T t[kShortRow * kShortBlock];
  for (int64_t r0 = 0; r0 < R; r0 += kShortBlock) {
    const int64_t w = std::min(kShortBlock, R - r0);
    short_rows_in(x + r0 * C, C, w, t);
    softmax_columns<T, Log, true>(t, kShortBlock, 1, t, kShortBlock, 1, C, kShortBlock);
    short_rows_out(t, C, w, y + r0 * C);
  }
}

// Columns whose C rows span more than kCachedSpan bytes (1000x1024, dim=0: rows 4 KB
// apart), where no pass stays in cache for the next (rows a power of two apart also share
// cache sets): two passes, not three, and each thread takes a band of rows across the
// whole width (up to kOnlineWidth positions = 4 KB of a row), so it streams through
// memory in address order the prefetchers follow instead of walking down columns.
// Pass 1 (softmax_online_stats): the max and the sum of exp of rows [c0, c1), taken
// kOnlineRows rows at a time (the chunk's max, then its exps from L1), the running
// sum rescaled by exp(old max - new max) once per chunk; the bands' (max, sum) are then
// merged the same way. Pass 2 (softmax_online_normalize): log_softmax needs no exp;
// softmax keeps pass 1's exp(x - running max) in y and the running max per chunk in sh,
// and rescales y by one factor per chunk and position (the exp per element costs about
// as much as the memory traffic, so it is not taken twice).

// m, s (w) <- max and sum of exp(x - max) over rows [c0, c1); m = -inf, s = 0 if none.
// Softmax (!Log) also: y <- exp(x - running max), sh (chunks of [c0, c1), w; rows ssh
// apart) <- that max.
template <class T, bool Log, bool Unit>
EMBER_FLATTEN void softmax_online_stats(const T* x, int64_t cx, int64_t ix, T* y, int64_t cy, int64_t iy, int64_t c0,
                                        int64_t c1, int64_t w, T* m, T* s, T* sh, int64_t ssh) {
  if (Unit) ix = iy = 1;
  const T ninf = -std::numeric_limits<T>::infinity();
  // nm: the running max with the next chunk, taken while this chunk's exps run, so its
  // loads from memory overlap that arithmetic rather than wait for it.
  T cm[kOnlineWidth<T>], nm[kOnlineWidth<T>];
  for (int64_t j = 0; j < w; ++j) { m[j] = nm[j] = ninf; s[j] = 0; }
  for (int64_t c = c0; c < std::min(c1, c0 + kOnlineRows); ++c) {
    const T* xc = x + c * cx;
    for (int64_t j = 0; j < w; ++j) nm[j] = xc[j * ix] > nm[j] ? xc[j * ix] : nm[j];  // a NaN is caught by exp
  }
  for (int64_t r0 = c0; r0 < c1; r0 += kOnlineRows, sh += Log ? 0 : ssh) {
    const int64_t r1 = std::min(c1, r0 + kOnlineRows);
    for (int64_t j = 0; j < w; ++j) {
      s[j] *= nm[j] == m[j] ? T(1) : exp_t(m[j] - nm[j]);  // rescaled_sum's rule; its form measured 9% slower here
      m[j] = nm[j];
      if (!Log) sh[j] = m[j];
      cm[j] = m[j] == ninf ? T(0) : m[j];  // exp shift: a column all -inf so far adds exp(-inf) = 0
    }
    for (int64_t c = r0; c < r1; ++c) {
      const T* xc = x + c * cx;
      T* yc = y + c * cy;
      if (c + kOnlineRows < c1) {
        const T* xn = xc + kOnlineRows * cx;
        for (int64_t j = 0; j < w; ++j) {
          T e = exp_t(xc[j * ix] - cm[j]);
          if (!Log) yc[j * iy] = e;
          s[j] += e;
          nm[j] = xn[j * ix] > nm[j] ? xn[j * ix] : nm[j];
        }
      } else {
        for (int64_t j = 0; j < w; ++j) {
          T e = exp_t(xc[j * ix] - cm[j]);
          if (!Log) yc[j * iy] = e;
          s[j] += e;
        }
      }
    }
  }
}

// Rows [c0, c1) of y <- softmax (log: log_softmax) from the merged m and s = 1 / sum
// (log: log(sum)), and for softmax pass 1's y and sh. A column all -inf: m = -inf, so
// x - m is NaN (softmax: y = 0 times s = inf), as in PyTorch.
template <class T, bool Log, bool Unit>
EMBER_FLATTEN void softmax_online_normalize(const T* x, int64_t cx, int64_t ix, T* y, int64_t cy, int64_t iy,
                                            int64_t c0, int64_t c1, int64_t w, const T* m, const T* s, const T* sh,
                                            int64_t ssh) {
  if (Unit) ix = iy = 1;
  T f[kOnlineWidth<T>];
  for (int64_t r0 = c0; r0 < c1; r0 += kOnlineRows, sh += Log ? 0 : ssh) {
    const int64_t r1 = std::min(c1, r0 + kOnlineRows);
    // sh = -inf (the chunk and all before it -inf): exp(-inf) = 0, unless m is -inf too.
    if (!Log)
      for (int64_t j = 0; j < w; ++j) f[j] = (sh[j] == m[j] ? T(1) : exp_t(sh[j] - m[j])) * s[j];
    for (int64_t c = r0; c < r1; ++c) {
      const T* xc = x + c * cx;
      T* yc = y + c * cy;
      if (Log) {
        for (int64_t j = 0; j < w; ++j) yc[j * iy] = (xc[j * ix] - m[j]) - s[j];
      } else {
        for (int64_t j = 0; j < w; ++j) yc[j * iy] *= f[j];
      }
    }
  }
}

// Every (outer index, block of <= kOnlineWidth inner positions) in turn, its C rows
// split into one band per thread; threads meet once per block, when every band's stats
// are ready (two sets of slots, by block parity: a thread may start the next block's
// stats while another still merges this one's).
template <class T, bool Log, bool Unit>
void softmax_online_run(const DimLayout<2>& L, const T* x, T* y) {
  constexpr int64_t kW = kOnlineWidth<T>;
  const int64_t C = L.C, nblk = (L.inner + kW - 1) / kW;
  const int64_t nt = omp_in_parallel() ? 1
                     : std::clamp<int64_t>(L.nout * C * L.inner / kSoftmaxGrain, 1,
                                           std::min<int64_t>(omp_get_max_threads(), C / kOnlineRows + 1));
  // part [parity][thread]: the band's max (kW), then sum (kW). Softmax's shift: the running
  // max per chunk of kOnlineRows rows and position (1/8 of a block), rows of the widest
  // block's width, so bands of consecutive blocks never overlap. Both in one reused
  // per-thread workspace (the calling thread's), so repeated calls allocate nothing.
  const int64_t nchunk = (C + kOnlineRows - 1) / kOnlineRows, ssh = std::min(kW, L.inner);
  const int64_t npart = 2 * 2 * kW * nt;
  static thread_local Workspace ws;
  T* const part = ws.get<T>(npart + (Log ? 0 : nchunk * ssh));
  T* const shift = part + npart;
#pragma omp parallel num_threads(static_cast<int>(nt))
  {
    const int64_t t = omp_get_thread_num(), nth = omp_get_num_threads();
    const int64_t k0 = nchunk * t / nth, c0 = k0 * kOnlineRows;  // bands of whole chunks
    const int64_t c1 = std::min(C, nchunk * (t + 1) / nth * kOnlineRows);
    T m[kW], s[kW];
    int64_t off[2];
    for (int64_t u = 0; u < L.nout * nblk; ++u) {
      const int64_t j0 = (u % nblk) * kW, w = std::min(kW, L.inner - j0);
      L.outer_offsets(u / nblk, off);
      const T* xb = x + off[0] + j0 * L.istride[0];
      T* yb = y + off[1] + j0 * L.istride[1];
      T* slots = part + (u % 2) * 2 * kW * nt;
      T* sh = Log ? nullptr : shift + k0 * ssh;
      softmax_online_stats<T, Log, Unit>(xb, L.cstride[0], L.istride[0], yb, L.cstride[1], L.istride[1], c0, c1, w,
                                         slots + 2 * kW * t, slots + 2 * kW * t + kW, sh, ssh);
#pragma omp barrier
      for (int64_t j = 0; j < w; ++j) { m[j] = -std::numeric_limits<T>::infinity(); s[j] = 0; }
      for (int64_t b = 0; b < nth; ++b) {
        const T* pm = slots + 2 * kW * b;
        for (int64_t j = 0; j < w; ++j) m[j] = pm[j] > m[j] ? pm[j] : m[j];
      }
      for (int64_t b = 0; b < nth; ++b) {  // the same rescale as between chunks
        const T *pm = slots + 2 * kW * b, *ps = pm + kW;
        for (int64_t j = 0; j < w; ++j) s[j] += rescaled_sum(ps[j], pm[j], m[j]);
      }
      for (int64_t j = 0; j < w; ++j) s[j] = Log ? log_t(s[j]) : T(1) / s[j];
      softmax_online_normalize<T, Log, Unit>(xb, L.cstride[0], L.istride[0], yb, L.cstride[1], L.istride[1], c0, c1,
                                             w, m, s, sh, ssh);
    }
  }
}

// ---- backward: g, y (outer, C, inner) -> gx
//   softmax:     gx = y * (g - sum_C(g * y))
//   log_softmax: gx = g - exp(y) * sum_C(g)

template <class T, bool Log>
EMBER_FLATTEN void softmax_backward_row(const T* g, int64_t sg, const T* y, int64_t sy, T* gx, int64_t sgx, int64_t C) {
  T s = 0;
  if (sg == 1 && sy == 1 && sgx == 1) {
    if (Log) {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < C; ++i) s += g[i];
      for (int64_t i = 0; i < C; ++i) gx[i] = g[i] - exp_t(y[i]) * s;
    } else {
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < C; ++i) s += g[i] * y[i];
      for (int64_t i = 0; i < C; ++i) gx[i] = y[i] * (g[i] - s);
    }
    return;
  }
  if (Log) {
    for (int64_t i = 0; i < C; ++i) s += g[i * sg];
    for (int64_t i = 0; i < C; ++i) gx[i * sgx] = g[i * sg] - exp_t(y[i * sy]) * s;
  } else {
    for (int64_t i = 0; i < C; ++i) s += g[i * sg] * y[i * sy];
    for (int64_t i = 0; i < C; ++i) gx[i * sgx] = y[i * sy] * (g[i * sg] - s);
  }
}

template <class T, bool Log, bool Unit>
EMBER_FLATTEN void softmax_backward_columns(const T* g, int64_t cg, int64_t ig, const T* y, int64_t cy, int64_t iy, T* gx,
                              int64_t cgx, int64_t igx, int64_t C, int64_t w) {
  if (Unit) ig = iy = igx = 1;
  T s[kColumnBlock];
  for (int64_t j = 0; j < w; ++j) s[j] = 0;
  for (int64_t c = 0; c < C; ++c) {
    const T* gc = g + c * cg;
    const T* yc = y + c * cy;
    if (Log) {
      for (int64_t j = 0; j < w; ++j) s[j] += gc[j * ig];
    } else {
      for (int64_t j = 0; j < w; ++j) s[j] += gc[j * ig] * yc[j * iy];
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    const T* gc = g + c * cg;
    const T* yc = y + c * cy;
    T* oc = gx + c * cgx;
    if (Log) {
      for (int64_t j = 0; j < w; ++j) oc[j * igx] = gc[j * ig] - exp_t(yc[j * iy]) * s[j];
    } else {
      for (int64_t j = 0; j < w; ++j) oc[j * igx] = yc[j * iy] * (gc[j * ig] - s[j]);
    }
  }
}

// Backward of short rows, as softmax_short_rows: g and y transposed into the scratch,
// gx formed in g's place and transposed back.
template <class T, bool Log>
EMBER_FLATTEN void softmax_backward_short_rows(const T* g, const T* y, T* gx, int64_t C, int64_t R) {
  T tg[kShortRow * kShortBlock], ty[kShortRow * kShortBlock];
  for (int64_t r0 = 0; r0 < R; r0 += kShortBlock) {
    const int64_t w = std::min(kShortBlock, R - r0);
    short_rows_in(g + r0 * C, C, w, tg);
    short_rows_in(y + r0 * C, C, w, ty);
    softmax_backward_columns<T, Log, true>(tg, kShortBlock, 1, ty, kShortBlock, 1, tg, kShortBlock, 1, C,
                                           kShortBlock);
    short_rows_out(tg, C, w, gx + r0 * C);
  }
}

// One long contiguous row split across threads (a 1-D softmax, or fewer rows than
// threads): each of nk chunks takes its own max m_k and sum s_k of exp(x - m_k) (softmax
// keeps those exps in y), the chunks merge to the row's M and S = sum s_k exp(m_k - M),
// and a second pass scales y by exp(m_k - M) / S (log_softmax: x - M - log S). A chunk
// whose m_k is -inf (all -inf) takes exp(x - M) / S directly: 0, or NaN as the one-thread
// row gives when the whole row is -inf.
template <class T, bool Log>
EMBER_FLATTEN void long_row_stats(const T* x, T* y, int64_t n, T* m_out, T* s_out) {
  T m = -std::numeric_limits<T>::infinity(), s = 0;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;  // a NaN is caught by the sum
  if (m == -std::numeric_limits<T>::infinity()) {  // all -inf (adds 0) or NaN (adds NaN)
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += x[i] == x[i] ? T(0) : x[i];
    *m_out = m;
    *s_out = s;
    return;
  }
  if (Log) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += exp_t(x[i] - m);
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) {
      T e = exp_t(x[i] - m);
      y[i] = e;
      s += e;
    }
  }
  *m_out = m;
  *s_out = s;
}

template <class T, bool Log>
EMBER_FLATTEN void long_row_normalize(const T* x, T* y, int64_t n, T mk, T M, T S) {
  if (Log) {
    const T ls = log_t(S);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - M) - ls;
    return;
  }
  const T r = T(1) / S;
  if (mk == -std::numeric_limits<T>::infinity()) {
    for (int64_t i = 0; i < n; ++i) y[i] = exp_t(x[i] - M) * r;
    return;
  }
  const T f = exp_t(mk - M) * r;
  for (int64_t i = 0; i < n; ++i) y[i] *= f;
}

template <class T, bool Log>
void softmax_long_row(const T* x, T* y, int64_t C, int64_t nk) {
  T m[kMaxLongRowChunks], s[kMaxLongRowChunks];
  auto bounds = [&](int64_t k) { return chunk_begin(C, k, nk); };
  parallel_for(nk, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      long_row_stats<T, Log>(x + bounds(k), y + bounds(k), bounds(k + 1) - bounds(k), m + k, s + k);
  });
  T M = -std::numeric_limits<T>::infinity(), S = 0;
  for (int64_t k = 0; k < nk; ++k) M = m[k] > M ? m[k] : M;
  for (int64_t k = 0; k < nk; ++k) S += rescaled_sum(s[k], m[k], M);  // all -inf: S = 0, and x - M is NaN
  parallel_for(nk, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      long_row_normalize<T, Log>(x + bounds(k), y + bounds(k), bounds(k + 1) - bounds(k), m[k], M, S);
  });
}

// Backward of one long contiguous row: the row's sum (of g y, or of g for log_softmax)
// from per-chunk partial sums, then the elementwise pass, both split across threads.
template <class T, bool Log>
EMBER_FLATTEN T long_row_partial_sum(const T* g, const T* y, int64_t n) {
  T s = 0;
  if (Log) {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += g[i];
  } else {
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += g[i] * y[i];
  }
  return s;
}

template <class T, bool Log>
EMBER_FLATTEN void long_row_backward_apply(const T* g, const T* y, T* gx, int64_t n, T s) {
  if (Log) {
    for (int64_t i = 0; i < n; ++i) gx[i] = g[i] - exp_t(y[i]) * s;
  } else {
    for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (g[i] - s);
  }
}

template <class T, bool Log>
void softmax_backward_long_row(const T* g, const T* y, T* gx, int64_t C, int64_t nk) {
  T part[kMaxLongRowChunks];
  auto bounds = [&](int64_t k) { return chunk_begin(C, k, nk); };
  parallel_for(nk, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      part[k] = long_row_partial_sum<T, Log>(g + bounds(k), y + bounds(k), bounds(k + 1) - bounds(k));
  });
  T s = 0;
  for (int64_t k = 0; k < nk; ++k) s += part[k];
  parallel_for(nk, 1, [&](int64_t b, int64_t e) {
    long_row_backward_apply<T, Log>(g + bounds(b), y + bounds(b), gx + bounds(b), bounds(e) - bounds(b), s);
  });
}

// ---- drivers: split (outer x inner blocks) across threads

template <class T, bool Log>
void softmax_forward_run(const DimLayout<2>& L, const T* x, T* y) {
  const int64_t C = L.C;
  if (L.inner == 1) {
    if (const int64_t nk = long_row_chunks(L, C)) {
      int64_t off[2];
      for (int64_t o = 0; o < L.nout; ++o) {
        L.outer_offsets(o, off);
        softmax_long_row<T, Log>(x + off[0], y + off[1], C, nk);
      }
      return;
    }
    for_rows(L, C, [&](const int64_t* off) {
      softmax_row<T, Log>(x + off[0], L.cstride[0], y + off[1], L.cstride[1], C);
    });
    return;
  }
  if (L.short_rows) {
    for_column_blocks(L, C, [&](const int64_t* off, int64_t w) { softmax_short_rows<T, Log>(x + off[0], y + off[1], C, w); });
    return;
  }
  const bool unit = L.istride[0] == 1 && L.istride[1] == 1;
  if (C * std::max(std::abs(L.cstride[0]), std::abs(L.cstride[1])) * int64_t(sizeof(T)) > kCachedSpan) {
    if (unit) softmax_online_run<T, Log, true>(L, x, y);
    else softmax_online_run<T, Log, false>(L, x, y);
    return;
  }
  for_column_blocks(L, C, [&](const int64_t* off, int64_t w) {
    if (unit)
      softmax_columns<T, Log, true>(x + off[0], L.cstride[0], 1, y + off[1], L.cstride[1], 1, C, w);
    else
      softmax_columns<T, Log, false>(x + off[0], L.cstride[0], L.istride[0], y + off[1], L.cstride[1],
                                     L.istride[1], C, w);
  });
}

template <class T, bool Log>
void softmax_backward_run(const DimLayout<3>& L, const T* g, const T* y, T* gx) {
  const int64_t C = L.C;
  if (L.inner == 1) {
    if (const int64_t nk = long_row_chunks(L, C)) {
      int64_t off[3];
      for (int64_t o = 0; o < L.nout; ++o) {
        L.outer_offsets(o, off);
        softmax_backward_long_row<T, Log>(g + off[0], y + off[1], gx + off[2], C, nk);
      }
      return;
    }
    for_rows(L, C, [&](const int64_t* off) {
      softmax_backward_row<T, Log>(g + off[0], L.cstride[0], y + off[1], L.cstride[1], gx + off[2], L.cstride[2], C);
    });
    return;
  }
  if (L.short_rows) {
    for_column_blocks(L, C, [&](const int64_t* off, int64_t w) {
      softmax_backward_short_rows<T, Log>(g + off[0], y + off[1], gx + off[2], C, w);
    });
    return;
  }
  const bool unit = L.istride[0] == 1 && L.istride[1] == 1 && L.istride[2] == 1;
  for_column_blocks(L, C, [&](const int64_t* off, int64_t w) {
    if (unit)
      softmax_backward_columns<T, Log, true>(g + off[0], L.cstride[0], 1, y + off[1], L.cstride[1], 1, gx + off[2],
                                             L.cstride[2], 1, C, w);
    else
      softmax_backward_columns<T, Log, false>(g + off[0], L.cstride[0], L.istride[0], y + off[1], L.cstride[1],
                                              L.istride[1], gx + off[2], L.cstride[2], L.istride[2], C, w);
  });
}
