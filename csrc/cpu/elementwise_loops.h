// Inner loops of the elementwise kernels. Included once per ISA region by
// elementwise.cpp (no include guard on purpose), so each loop is compiled for
// scalar, AVX2 and AVX-512 and picked at run time.
//
#include "vmath.h"

// Transcendental functors live here so each ISA gets its own inlined copy of vmath.
struct Exp {
  float operator()(float a) const { return vmath::exp(a); }
  double operator()(double a) const { return std::exp(a); }
};
struct Log {
  float operator()(float a) const { return vmath::log(a); }
  double operator()(double a) const { return std::log(a); }
};

// The common cases get their own loop so they vectorize: every operand contiguous,
// or one side a broadcast scalar (stride 0). Anything else takes the strided loop.

template <class Op, class T, class R>
void binary_loop(const StridedLoop<3>& L, const T* a, const T* b, R* o, Op op) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st, int64_t n) {
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    R* po = o + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for_chunks_prefetching(n, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) po[i] = op(pa[i], pb[i]);
      }, pa + kPrefetchChunk, pb + kPrefetchChunk);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T vb = *pb;
      for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], vb);
    } else if (st[0] == 0 && st[1] == 1 && st[2] == 1) {
      const T va = *pa;
      for (int64_t i = 0; i < n; ++i) po[i] = op(va, pb[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[2]] = op(pa[i * st[0]], pb[i * st[1]]);
    }
  });
}

template <class Op, class T, class R>
void unary_loop(const StridedLoop<2>& L, const T* a, R* o, Op op) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 2>& off, const std::array<int64_t, 2>& st, int64_t n) {
    const T* pa = a + off[0];
    R* po = o + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for_chunks_prefetching(n, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) po[i] = op(pa[i]);
      }, pa + kPrefetchChunk);
    } else if (st[0] == 0 && st[1] == 1) {
      const R v = op(*pa);
      for (int64_t i = 0; i < n; ++i) po[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[1]] = op(pa[i * st[0]]);
    }
  });
}

template <class T>
void where_loop(const StridedLoop<4>& L, const bool* c, const T* a, const T* b, T* o) {
  L.run(kElementwiseGrain, [&](const std::array<int64_t, 4>& off, const std::array<int64_t, 4>& st, int64_t n) {
    const bool* pc = c + off[0];
    const T* pa = a + off[1];
    const T* pb = b + off[2];
    T* po = o + off[3];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1 && st[3] == 1) {
      // both sides loaded, the condition as bytes: a select the compiler vectorizes
      // (through bool it kept a branch, mispredicted on half of random conditions)
      const uint8_t* cb = reinterpret_cast<const uint8_t*>(pc);
      for (int64_t i = 0; i < n; ++i) {
        const T va = pa[i], vb = pb[i];
        po[i] = cb[i] != 0 ? va : vb;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[3]] = pc[i * st[0]] ? pa[i * st[1]] : pb[i * st[2]];
    }
  });
}

// Entry points for the ops whose functor is defined per ISA (above).
template <class T>
void exp_loop(const StridedLoop<2>& L, const T* a, T* o) { unary_loop(L, a, o, Exp{}); }
template <class T>
void log_loop(const StridedLoop<2>& L, const T* a, T* o) { unary_loop(L, a, o, Log{}); }
