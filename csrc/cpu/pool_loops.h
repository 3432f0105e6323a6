// Inner loops of the pooling kernels, one (H,W) plane at a time. Included once per ISA
// region by pool.cpp (no include guard on purpose).
//   x (H,W)  out, idx (P,Q)

// taps i with 0 <= start + i*dil < n, for a window starting at `start`
inline void pool_tap_range(int64_t start, int64_t k, int64_t dil, int64_t n, int64_t* lo, int64_t* hi) {
  *lo = start >= 0 ? 0 : (-start + dil - 1) / dil;
  *hi = start + (k - 1) * dil < n ? k : (n - 1 - start) / dil + 1;
}

// One output of a max pool window: rows i0..i1 and columns j0..j1 of the taps that fall
// inside the input (padding never wins). Ties keep the first position in row-major
// order; NaN wins (the last NaN in the window), as torch.
template <class T>
inline void max_pool_window(const T* x, int64_t W, const PoolGeometry& g, int64_t h0, int64_t i0, int64_t i1,
                            int64_t w0, int64_t j0, int64_t j1, T* out, int64_t* idx) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t bi = (h0 + i0 * g.dil_h) * W + w0 + j0 * g.dil_w;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t at = (h0 + i * g.dil_h) * W + w0 + j * g.dil_w;
      const T v = x[at];
      if (v > best || v != v) {
        best = v;
        bi = at;
      }
    }
  *out = best;
  if (idx) *idx = bi;
}

// Max pool, any geometry (dilation, any stride): one window at a time.
template <class T>
void max_pool_plane(const T* x, int64_t H, int64_t W, const PoolGeometry& g, int64_t P, int64_t Q, T* out,
                    int64_t* idx) {
  for (int64_t p = 0; p < P; ++p) {
    const int64_t h0 = p * g.stride_h - g.pad_h;
    int64_t i0, i1;
    pool_tap_range(h0, g.kernel_h, g.dil_h, H, &i0, &i1);
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t w0 = q * g.stride_w - g.pad_w;
      int64_t j0, j1;
      pool_tap_range(w0, g.kernel_w, g.dil_w, W, &j0, &j1);
      max_pool_window(x, W, g, h0, i0, i1, w0, j0, j1, out + p * Q + q, idx ? idx + p * Q + q : nullptr);
    }
  }
}

// B consecutive outputs q0..q0+B-1 of one output row whose windows lie inside the
// input's columns (rows hs..he already clipped): the taps go in row-major order, each
// one a B-lane select over the row's columns S*q + j - pad. GCC vector types keep the
// running max and its tap in registers across taps (arrays went through the stack,
// a store-to-load stall per tap). S = 2 loads two vectors and keeps the even lanes; the
// second load starts one element early so no read passes the last window's last tap.
// c holds the winning tap's plane offset minus S*q (the caller checks H*W < 2^31).
template <class T, int S, int B, bool kIdx>
inline void max_pool_block(const T* x, int64_t W, int64_t hs, int64_t he, int64_t kw, int64_t pad, int64_t q0,
                           T* o, int64_t* ip) {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // lanes as wide as T
  typedef T V __attribute__((vector_size(B * sizeof(T))));
  typedef I VI __attribute__((vector_size(B * sizeof(T))));
  auto load = [](const T* r) {
    V v;
    std::memcpy(&v, r, sizeof(V));
    if (S == 1) return v;
    V hi;
    std::memcpy(&hi, r + B - 1, sizeof(V));
    VI even;  // lane l <- element 2l: from v below B, else from hi (shifted by one)
    for (int l = 0; l < B; ++l) even[l] = 2 * l < B ? 2 * l : B + 2 * l - (B - 1);
    return __builtin_shuffle(v, hi, even);
  };
  const T* base = x + S * q0 - pad;
  V best = load(base + hs * W);
  VI c = VI{} + static_cast<I>(hs * W - pad);
  for (int64_t h = hs; h < he; ++h)
    for (int64_t j = h == hs ? 1 : 0; j < kw; ++j) {
      const V v = load(base + h * W + j);
      const VI t = (v > best) | (v != v);
      best = t ? v : best;
      if (kIdx) c = t ? VI{} + static_cast<I>(h * W - pad + j) : c;
    }
  std::memcpy(o, &best, sizeof(V));
  if (kIdx)
    for (int l = 0; l < B; ++l) ip[l] = static_cast<int64_t>(c[l]) + S * (q0 + l);
}

// Max pool without dilation, column stride S (1 or 2), any kernel, padding, row stride
// and ceil mode. Border columns (windows that reach into the padding) go one window at
// a time; the interior of each output row goes in blocks of 16 or 8 outputs, the last
// block shifted left to end at the interior's end (it recomputes a few outputs, the same
// values), so no read leaves the row's windows. Interiors under 8 outputs go one window
// at a time too.
template <class T, int S, bool kIdx>
void max_pool_rows_strided(const T* x, int64_t H, int64_t W, const PoolGeometry& g, int64_t P, int64_t Q, T* out,
                           int64_t* idx) {
  const int64_t kw = g.kernel_w, pad = g.pad_w;
  const int64_t q_lo = std::min(Q, (pad + S - 1) / S);  // first window with w0 >= 0
  const int64_t q_hi = W - kw + pad < 0 ? q_lo : std::max(q_lo, std::min(Q, (W - kw + pad) / S + 1));
  const int64_t m = q_hi - q_lo;
  const int64_t B = m >= 16 ? 16 : m >= 8 ? 8 : 0;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t h0 = p * g.stride_h - g.pad_h;
    int64_t i0, i1;
    pool_tap_range(h0, g.kernel_h, 1, H, &i0, &i1);
    T* o = out + p * Q;
    int64_t* ip = kIdx ? idx + p * Q : nullptr;
    auto one = [&](int64_t q) {
      const int64_t w0 = q * S - pad;
      int64_t j0, j1;
      pool_tap_range(w0, kw, 1, W, &j0, &j1);
      max_pool_window(x, W, g, h0, i0, i1, w0, j0, j1, o + q, kIdx ? ip + q : nullptr);
    };
    for (int64_t q = 0; q < q_lo; ++q) one(q);
    for (int64_t q = q_hi; q < Q; ++q) one(q);
    if (B == 0 || i0 >= i1) {
      for (int64_t q = q_lo; q < q_hi; ++q) one(q);
      continue;
    }
    const int64_t hs = h0 + i0, he = h0 + i1;
    for (int64_t q0 = q_lo; q0 < q_hi; q0 += B) {
      const int64_t qb = std::min(q0, q_hi - B);
      if (B == 16) max_pool_block<T, S, 16, kIdx>(x, W, hs, he, kw, pad, qb, o + qb, kIdx ? ip + qb : nullptr);
      else max_pool_block<T, S, 8, kIdx>(x, W, hs, he, kw, pad, qb, o + qb, kIdx ? ip + qb : nullptr);
    }
  }
}

// Entry points per column stride (one template argument each, for EMBER_ISA_CALL).
template <class T>
void max_pool_plane_s1(const T* x, int64_t H, int64_t W, const PoolGeometry& g, int64_t P, int64_t Q, T* out,
                       int64_t* idx) {
  if (idx) max_pool_rows_strided<T, 1, true>(x, H, W, g, P, Q, out, idx);
  else max_pool_rows_strided<T, 1, false>(x, H, W, g, P, Q, out, nullptr);
}
template <class T>
void max_pool_plane_s2(const T* x, int64_t H, int64_t W, const PoolGeometry& g, int64_t P, int64_t Q, T* out,
                       int64_t* idx) {
  if (idx) max_pool_rows_strided<T, 2, true>(x, H, W, g, P, Q, out, idx);
  else max_pool_rows_strided<T, 2, false>(x, H, W, g, P, Q, out, nullptr);
}

// Max pool 3x3, stride 2, padding 1, P = ceil(H/2), Q = ceil(W/2) (the ResNet stem pool),
// separable: each input row is reduced once to its B-lane row maximum over columns
// 2q-1, 2q, 2q+1 (even/odd lanes by two-vector shuffles), and output row p is the
// maximum of the row maxima of rows 2p-1, 2p, 2p+1. Row maxima first, then rows in order,
// each with `v > best || v != v`, gives the first maximum in row-major order or the
// last NaN, as max_pool_window. A padding tap (column -1, column W for odd W, row -1, row
// H for odd H) is replaced by its in-input neighbour: a repeated tap changes neither the
// maximum nor that index. Indices stay plane offsets in lanes as wide as T (the caller
// checks H*W < 2^31) until widened on the store.
template <class T, int B>
struct MaxRow3x3 {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T V __attribute__((vector_size(B * sizeof(T))));
  typedef I VI __attribute__((vector_size(B * sizeof(T))));
  V v;
  VI i;
};

// Row h's maxima for outputs q0..q0+B-1, from the 2B elements at s (x + h*W + 2*q0, or
// a copy of the row's rest where those would pass the run's end). Always inlined: a call
// would pass the two vectors back through memory.
template <class T, int B>
__attribute__((always_inline)) inline MaxRow3x3<T, B> max_3x3s2_row(const T* s, const T* x, int64_t h, int64_t W,
                                                                  int64_t Q, int64_t q0) {
  using R = MaxRow3x3<T, B>;
  using V = typename R::V;
  using VI = typename R::VI;
  using I = typename R::I;
  const T* xr = x + h * W;
  V lo, hi;
  std::memcpy(&lo, s, sizeof(V));
  std::memcpy(&hi, s + B, sizeof(V));
  const V left = {xr[q0 > 0 ? 2 * q0 - 1 : 0]};  // column 2*q0-1 in lane 0
  VI even, odd, lane, prev_idx;  // prev_idx: lane 0 <- left's lane 0, lane l <- odd lane l-1
  for (int l = 0; l < B; ++l) {
    even[l] = 2 * l;
    odd[l] = 2 * l + 1;
    lane[l] = l;
    prev_idx[l] = l == 0 ? B : l - 1;
  }
  const V e = __builtin_shuffle(lo, hi, even);  // column 2q
  V o = __builtin_shuffle(lo, hi, odd);         // column 2q+1
  const V m = __builtin_shuffle(o, left, prev_idx);  // column 2q-1
  const VI ce = static_cast<I>(h * W + 2 * q0) + 2 * lane;
  VI co = ce + 1, cm = ce - 1;
  if (q0 == 0) cm[0] = ce[0];
  if ((W & 1) && q0 + B >= Q) {  // column W of output Q-1 is padding
    const VI last = lane == static_cast<I>(Q - 1 - q0);
    o = last ? e : o;
    co = last ? ce : co;
  }
  R r{m, cm};
  VI t = (e > r.v) | (e != e);
  r.v = t ? e : r.v;
  r.i = t ? ce : r.i;
  t = (o > r.v) | (o != o);
  r.v = t ? o : r.v;
  r.i = t ? co : r.i;
  return r;
}

// x (n_planes,H,W) -> out, idx (n_planes,P,Q), blocks of B outputs per row: column blocks of
// rows of Q >= B outputs end with one shifted left to end at Q (it recomputes a few
// outputs, the same values); rows of Q < B outputs go B wide and spill into the next
// row, which overwrites them, except the run's last row (exactly Q wide).
template <class T, int B, bool kIdx>
void max_pool_3x3s2_run(const T* x, int64_t n_planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* out,
                        int64_t* idx) {
  using R = MaxRow3x3<T, B>;
  typedef int64_t VL __attribute__((vector_size(B * sizeof(int64_t))));
  const int64_t in_end = n_planes * H * W, out_end = n_planes * P * Q;
  for (int64_t c = 0; c < n_planes; ++c) {
    const T* xp = x + c * H * W;
    for (int64_t q0 = 0; q0 < Q; q0 += B) {
      const int64_t qb = Q < B ? 0 : std::min(q0, Q - B);
      auto row = [&](int64_t h) __attribute__((always_inline)) {
        const T* s = xp + h * W + 2 * qb;
        if (c * H * W + h * W + 2 * qb + 2 * B <= in_end) return max_3x3s2_row<T, B>(s, xp, h, W, Q, qb);
        T rest[2 * B] = {};
        std::memcpy(rest, s, sizeof(T) * std::min<int64_t>(2 * B, W - 2 * qb));
        return max_3x3s2_row<T, B>(rest, xp, h, W, Q, qb);
      };
      R a = row(0);
      for (int64_t p = 0; p < P; ++p) {
        const R b = p == 0 ? a : row(2 * p);
        const R d = 2 * p + 1 < H ? row(2 * p + 1) : b;
        R r = a;
        auto t = (b.v > r.v) | (b.v != b.v);
        r.v = t ? b.v : r.v;
        if (kIdx) r.i = t ? b.i : r.i;
        t = (d.v > r.v) | (d.v != d.v);
        r.v = t ? d.v : r.v;
        if (kIdx) r.i = t ? d.i : r.i;
        const int64_t at = (c * P + p) * Q + qb;
        const VL wide = kIdx ? __builtin_convertvector(r.i, VL) : VL{};
        if (at + B <= out_end) {  // a fixed size, so the copies are vector stores
          std::memcpy(out + at, &r.v, sizeof(r.v));
          if (kIdx) std::memcpy(idx + at, &wide, sizeof(wide));
        } else {
          std::memcpy(out + at, &r.v, sizeof(T) * (out_end - at));
          if (kIdx) std::memcpy(idx + at, &wide, sizeof(int64_t) * (out_end - at));
        }
        a = d;
      }
    }
  }
}

template <class T>
void max_pool_3x3s2_planes(const T* x, int64_t n_planes, int64_t H, int64_t W, int64_t P, int64_t Q, T* out,
                           int64_t* idx) {
  constexpr int B = (EMBER_ISA_LEVEL == 2 ? 64 : EMBER_ISA_LEVEL == 1 ? 32 : 16) / sizeof(T);  // a register of T
  if (Q <= B / 2) {
    if (idx) max_pool_3x3s2_run<T, B / 2, true>(x, n_planes, H, W, P, Q, out, idx);
    else max_pool_3x3s2_run<T, B / 2, false>(x, n_planes, H, W, P, Q, out, nullptr);
  } else {
    if (idx) max_pool_3x3s2_run<T, B, true>(x, n_planes, H, W, P, Q, out, idx);
    else max_pool_3x3s2_run<T, B, false>(x, n_planes, H, W, P, Q, out, nullptr);
  }
}

// Max pool 2x2, stride 2, no padding (the LeNet/VGG case): branch-free selects over the
// four taps so the q loop vectorizes. Same tie and NaN rules as max_pool_plane (row 0's
// pair first, then row 1's: the first maximum in row-major order, or the last NaN).
// Rows of 8..15 outputs (MNIST's 14) are too short for a 16-lane loop, so all but the last
// row are done 16 outputs at a time: the extra outputs spill into the next row's slots,
// which that row then overwrites, and the extra reads stay inside the plane.
template <class T, bool kIdx>
inline void max_2x2_row(const T* r0, int64_t W, int64_t n, int64_t base, T* o, int64_t* ip) {
  // GCC would fully unroll an 8-trip loop into scalar branches; ask for SIMD explicitly
#pragma omp simd
  for (int64_t q = 0; q < n; ++q) {
    const T a = r0[2 * q], b = r0[2 * q + 1], c = r0[W + 2 * q], d = r0[W + 2 * q + 1];
    T best = a;
    int32_t k = 0;
    bool t = b > best || b != b;
    best = t ? b : best;
    k = t ? 1 : k;
    t = c > best || c != c;
    best = t ? c : best;
    k = t ? 2 : k;
    t = d > best || d != d;
    best = t ? d : best;
    k = t ? 3 : k;
    o[q] = best;
    if (kIdx) ip[q] = base + 2 * q + (k & 1) + (k >> 1) * W;
  }
}

// R output rows of Q values: row r reads input rows x + 2rW and x + 2rW + W and writes
// out + rQ; its argmax is counted from the start of its plane (rows of P per plane).
// With H == 2P the row pairs of consecutive planes are evenly spaced, so the caller hands
// a whole run of planes over as one list of rows. Rows of 8..15 outputs (MNIST's 14 -> 7
// ... 28 -> 14) go 16 at a time and rows of 4..7 go 8 at a time, a fixed trip count being
// what lets the q loop vectorize: the extra outputs spill into the next row's slots, which
// that row then overwrites. Only rows whose spill would leave the run go exactly Q wide.
template <class T>
void max_pool_2x2_rows(const T* x, int64_t W, int64_t R, int64_t P, int64_t Q, T* out, int64_t* idx) {
  const int64_t V = Q >= 8 ? 16 : 8;
  const bool spill = Q < V && Q >= V / 2;
  for (int64_t r = 0; r < R; ++r) {
    const T* r0 = x + 2 * r * W;
    const bool wide = spill && r * Q + V <= R * Q && 2 * r * W + W + 2 * V <= 2 * R * W;
    const int64_t n = wide ? V : Q;
    int64_t* ip = idx ? idx + r * Q : nullptr;
    const int64_t base = (r % P) * 2 * W;
    if (idx) {
      if (n == 16) max_2x2_row<T, true>(r0, W, 16, base, out + r * Q, ip);
      else if (n == 8) max_2x2_row<T, true>(r0, W, 8, base, out + r * Q, ip);
      else max_2x2_row<T, true>(r0, W, n, base, out + r * Q, ip);
    } else {
      if (n == 16) max_2x2_row<T, false>(r0, W, 16, 0, out + r * Q, nullptr);
      else if (n == 8) max_2x2_row<T, false>(r0, W, 8, 0, out + r * Q, nullptr);
      else max_2x2_row<T, false>(r0, W, n, 0, out + r * Q, nullptr);
    }
  }
}

// Average pool 2x2, stride 2, no padding: the divisor is always 4; same 16-wide rows as
// max_pool_2x2_rows, one plane at a time. Sums in the general loop's order, so results match it bit for bit.
template <class T>
inline void avg_2x2_row(const T* r0, int64_t W, int64_t n, T* o) {
#pragma omp simd  // as max_2x2_row
  for (int64_t q = 0; q < n; ++q) o[q] = (((r0[2 * q] + r0[2 * q + 1]) + r0[W + 2 * q]) + r0[W + 2 * q + 1]) / T(4);
}

template <class T>
void avg_pool_2x2_plane(const T* x, int64_t W, int64_t P, int64_t Q, T* out) {
  const int64_t V = Q >= 8 ? 16 : 8;  // as max_pool_2x2_rows
  const bool spill = Q < V && Q >= V / 2 && W >= V;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t n = (spill && p + 1 < P) ? V : Q;
    if (n == 16) avg_2x2_row<T>(x + 2 * p * W, W, 16, out + p * Q);
    else if (n == 8) avg_2x2_row<T>(x + 2 * p * W, W, 8, out + p * Q);
    else avg_2x2_row<T>(x + 2 * p * W, W, n, out + p * Q);
  }
}

// Its adjoint: each dy/4 goes to the four taps of its window (windows do not overlap; an
// odd last row/column stays as the caller zeroed it). 16-wide rows only when 2Q == W, so a
// spilled value lands on a position the next store overwrites, never on an uncovered one.
template <class T>
inline void avg_2x2_backward_row(const T* dy, int64_t W, int64_t n, T* r0) {
  // row 0 first, then row 1: a 16-wide row 0 spills into row 1, which then overwrites it
  for (int64_t q = 0; q < n; ++q) {
    const T v = dy[q] / T(4);
    r0[2 * q] = v;
    r0[2 * q + 1] = v;
  }
  for (int64_t q = 0; q < n; ++q) {
    const T v = dy[q] / T(4);
    r0[W + 2 * q] = v;
    r0[W + 2 * q + 1] = v;
  }
}

template <class T>
void avg_pool_2x2_backward_plane(const T* dy, int64_t W, int64_t P, int64_t Q, T* dx) {
  constexpr int64_t V = 16;
  const bool spill = Q < V && Q >= V / 2 && 2 * Q == W;
  for (int64_t p = 0; p < P; ++p) {
    if (spill && p + 1 < P) avg_2x2_backward_row<T>(dy + p * Q, W, V, dx + 2 * p * W);
    else avg_2x2_backward_row<T>(dy + p * Q, W, Q, dx + 2 * p * W);
  }
}

// Average pool window (p, q), clipped to the input: rows [hs, he), columns [ws, we), and
// its divisor: divisor_override when nonzero, else the window's size counting the padding
// inside it when count_include_pad (window clipped to the padded input), else only real
// elements.
struct AvgWindow {
  int64_t hs, he, ws, we, div;
};
inline AvgWindow avg_window(int64_t p, int64_t q, int64_t H, int64_t W, const PoolGeometry& g,
                            bool count_include_pad, int64_t divisor_override) {
  const int64_t h0 = p * g.stride_h - g.pad_h, h1 = std::min(h0 + g.kernel_h, H + g.pad_h);
  const int64_t w0 = q * g.stride_w - g.pad_w, w1 = std::min(w0 + g.kernel_w, W + g.pad_w);
  AvgWindow win{std::max<int64_t>(h0, 0), std::min(h1, H), std::max<int64_t>(w0, 0), std::min(w1, W), 0};
  win.div = divisor_override ? divisor_override
            : count_include_pad ? (h1 - h0) * (w1 - w0)
                                : (win.he - win.hs) * (win.we - win.ws);
  return win;
}

// Average pool, any geometry.
template <class T>
void avg_pool_plane(const T* x, int64_t H, int64_t W, const PoolGeometry& g, bool count_include_pad,
                    int64_t divisor_override, int64_t P, int64_t Q, T* out) {
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = 0; q < Q; ++q) {
      const AvgWindow win = avg_window(p, q, H, W, g, count_include_pad, divisor_override);
      T sum = T(0);
      for (int64_t h = win.hs; h < win.he; ++h)
        for (int64_t w = win.ws; w < win.we; ++w) sum += x[h * W + w];
      out[p * Q + q] = win.div > 0 ? sum / static_cast<T>(win.div) : T(0);
    }
}

// The adjoint of avg_pool_plane: dx (zeroed by the caller) += dy / divisor over each window.
template <class T>
void avg_pool_backward_plane(const T* dy, int64_t H, int64_t W, const PoolGeometry& g, bool count_include_pad,
                             int64_t divisor_override, int64_t P, int64_t Q, T* dx) {
  for (int64_t p = 0; p < P; ++p)
    for (int64_t q = 0; q < Q; ++q) {
      const AvgWindow win = avg_window(p, q, H, W, g, count_include_pad, divisor_override);
      if (win.div <= 0) continue;
      const T v = dy[p * Q + q] / static_cast<T>(win.div);
      for (int64_t h = win.hs; h < win.he; ++h)
        for (int64_t w = win.ws; w < win.we; ++w) dx[h * W + w] += v;
    }
}

// Adaptive average pool: window i covers [floor(i*H/P), ceil((i+1)*H/P)).
template <class T>
void adaptive_avg_plane(const T* x, int64_t H, int64_t W, int64_t P, int64_t Q, T* out) {
  if (P == 1 && Q == 1) {  // global average: one long vectorized sum
    constexpr int L = 16;
    T acc[L] = {};
    const int64_t n = H * W;
    int64_t i = 0;
    for (; i + L <= n; i += L)
      for (int j = 0; j < L; ++j) acc[j] += x[i + j];
    T sum = T(0);
    for (; i < n; ++i) sum += x[i];
    for (int j = 0; j < L; ++j) sum += acc[j];
    out[0] = sum / static_cast<T>(n);
    return;
  }
  for (int64_t p = 0; p < P; ++p) {
    const int64_t hs = p * H / P, he = ((p + 1) * H + P - 1) / P;
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t ws = q * W / Q, we = ((q + 1) * W + Q - 1) / Q;
      T sum = T(0);
      for (int64_t h = hs; h < he; ++h)
        for (int64_t w = ws; w < we; ++w) sum += x[h * W + w];
      out[p * Q + q] = sum / static_cast<T>((he - hs) * (we - ws));
    }
  }
}

// dx (zeroed by the caller) += dy / window area over each window (windows may overlap).
template <class T>
void adaptive_avg_backward_plane(const T* dy, int64_t H, int64_t W, int64_t P, int64_t Q, T* dx) {
  for (int64_t p = 0; p < P; ++p) {
    const int64_t hs = p * H / P, he = ((p + 1) * H + P - 1) / P;
    for (int64_t q = 0; q < Q; ++q) {
      const int64_t ws = q * W / Q, we = ((q + 1) * W + Q - 1) / Q;
      const T v = dy[p * Q + q] / static_cast<T>((he - hs) * (we - ws));
      for (int64_t h = hs; h < he; ++h)
        for (int64_t w = ws; w < we; ++w) dx[h * W + w] += v;
    }
  }
}
