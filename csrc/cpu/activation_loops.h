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
      for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
    } else {
      const int64_t sa = st[0], so = st[1];
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
      for (int64_t i = 0; i < n; ++i) po[i] = f(pg[i], ps[i]);
    } else {
      const int64_t sg = st[0], ss = st[1], so = st[2];
      for (int64_t i = 0; i < n; ++i) po[i * so] = f(pg[i * sg], ps[i * ss]);
    }
  });
}
