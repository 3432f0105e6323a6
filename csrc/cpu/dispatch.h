// CPU run-time dispatch and threading helpers.
//
// SIMD kernels are compiled three times from one source with GCC target pragmas
// (see EMBER_ISA_BEGIN below) and the best path this CPU supports is chosen once at
// load from CPUID. EMBER_CPU_ISA=avx2|scalar (environment) or ember._C.set_cpu_isa()
// forces a lower path, so the tests can run every path on one machine.
#pragma once
#include <omp.h>
#include <algorithm>
#include <cstdint>
#include <exception>

namespace ember::cpu {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

Isa isa();                      // the path kernels use now
Isa best_isa();                 // the best path this CPU supports
void set_isa(Isa isa);          // throws if the CPU lacks it
const char* isa_name(Isa isa);

// body(t, T) on each thread t of an OpenMP region of nt threads (T: the number it got).
// An exception thrown inside (std::bad_alloc from a large per-thread workspace, say)
// would otherwise end the process (std::terminate); the first one is rethrown here,
// on the caller's thread, after the region. body must not hold a barrier: a thread
// that throws never reaches it, and the others would wait forever.
template <class F>
inline void parallel_region(int nt, F&& body) {
  std::exception_ptr error;
#pragma omp parallel num_threads(nt)
  {
    try {
      body(int64_t(omp_get_thread_num()), int64_t(omp_get_num_threads()));
    } catch (...) {
#pragma omp critical(ember_parallel_region_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// Parallel-for over [0, n) in contiguous chunks, one per thread, when the work is
// big enough to pay for waking threads (`grain` = minimum items per thread).
template <class F>
inline void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t max_threads = omp_get_max_threads();
  int64_t nt = grain > 0 ? n / grain : max_threads;
  if (nt > max_threads) nt = max_threads;
  if (nt <= 1 || omp_in_parallel()) {
    f(int64_t(0), n);
    return;
  }
  parallel_region(static_cast<int>(nt), [&](int64_t t, int64_t T) {
    int64_t begin = n * t / T, end = n * (t + 1) / T;
    if (begin < end) f(begin, end);
  });
}

// Streaming loops that do real arithmetic per element go in chunks of kPrefetchChunk
// elements and ask for the next chunk's input lines at the start of each (software
// prefetch): on this machine the hardware prefetchers fall behind such a stream, more or
// less by where output and input sit mod 4 KiB (gelu over 16M floats: 8 to 23 ms by the
// output's offset alone; 6 ms at every offset with the prefetch). Prefetching past the
// end of an array is harmless: a prefetch never faults.
constexpr int64_t kPrefetchChunk = 256;

template <class T>
inline void prefetch_chunk(const T* p) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < kPrefetchChunk * int64_t(sizeof(T)); b += 64) __builtin_prefetch(c + b, 0, 3);
}

// f(i0, i1) over [0, n) in chunks of kPrefetchChunk, each chunk first asking for the chunk
// at the same offset from every pointer in `next`: p + kPrefetchChunk for a stream p (its
// next chunk), or the next row's start for a pass over one row. For map loops: the row
// passes that carry a sum across chunks (softmax_row, ce_row_forward) write the chunk loop
// out, as a reduction through a lambda measured 13% slower there.
template <class F, class... P>
[[gnu::always_inline]] inline void for_chunks_prefetching(int64_t n, F&& f, const P*... next) {
  for (int64_t i0 = 0; i0 < n; i0 += kPrefetchChunk) {
    (prefetch_chunk(next + i0), ...);
    f(i0, std::min(n, i0 + kPrefetchChunk));
  }
}

}  // namespace ember::cpu

// Wrap ISA-specific code: everything between BEGIN and END is compiled for that ISA.
// Include the same implementation header inside each, in its own namespace.
#define EMBER_PRAGMA(x) _Pragma(#x)
#define EMBER_AVX512_BEGIN EMBER_PRAGMA(GCC push_options) \
  EMBER_PRAGMA(GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,bmi2,prefer-vector-width=512"))
#define EMBER_AVX2_BEGIN EMBER_PRAGMA(GCC push_options) EMBER_PRAGMA(GCC target("avx2,fma,bmi2"))
#define EMBER_ISA_END EMBER_PRAGMA(GCC pop_options)

// Call `fn` from the copy compiled for the current ISA: the namespaces isa_avx512,
// isa_avx2 and isa_scalar that a kernel file fills by including its loop header.
#define EMBER_ISA_CALL(fn, ...)                                         \
  do {                                                                  \
    switch (::ember::cpu::isa()) {                                      \
      case ::ember::cpu::Isa::avx512: isa_avx512::fn(__VA_ARGS__); break; \
      case ::ember::cpu::Isa::avx2: isa_avx2::fn(__VA_ARGS__); break;     \
      default: isa_scalar::fn(__VA_ARGS__);                             \
    }                                                                   \
  } while (0)

// The same as an expression, for a kernel that returns a value.
#define EMBER_ISA_VALUE(fn, ...)                                                    \
  (::ember::cpu::isa() == ::ember::cpu::Isa::avx512 ? isa_avx512::fn(__VA_ARGS__) \
   : ::ember::cpu::isa() == ::ember::cpu::Isa::avx2 ? isa_avx2::fn(__VA_ARGS__)   \
                                                     : isa_scalar::fn(__VA_ARGS__))
