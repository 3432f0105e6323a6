// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11;
// Random123), the counter-based generator behind ember's dropout. Usable from C++ and
// CUDA: under nvcc every function is __host__ __device__.
//
// The stream ember draws from, for a generator state (seed, offset):
//
//   key     = (k0, k1) = (seed & 0xffffffff, seed >> 32)          seed: uint64
//   random number j (j = 0, 1, 2, ...) of the stream is 32-bit word (j % 4) of
//   block   = philox4x32_10(counter = (lo32(j/4), hi32(j/4), 0, 0), key)
//
// A kernel that consumes n randoms for its n elements reads the words
// j = offset + i, i in [0, n); `offset` is always a multiple of 4 (the generator
// advances it by n rounded up to a multiple of 4 after every call), so element i takes
// word (i % 4) of block offset/4 + i/4. Element i's uniform float and dropout decision:
//
//   u24(i)  = word(offset + i) >> 8                   (the top 24 bits, 0 .. 2^24-1)
//   u(i)    = u24(i) * 2^-24                          (exact in float32, in [0, 1))
//   keep(i) = u(i) >= p  <=>  u24(i) >= ceil(p * 2^24)   (integer compare; p*2^24 is exact
//                                                    in double, so both sides agree bit-for-bit)
//
// so P(keep) = 1 - ceil(p * 2^24) / 2^24: exactly 1 for p = 0 and exactly 0 for p = 1.
// Random123's known-answer vectors are checked in tests/test_dropout.py.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define EMBER_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define EMBER_HOST_DEVICE inline
#endif

namespace ember::philox {

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;    // round multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule (golden ratio, sqrt(3)-1)
constexpr int kRounds = 10;

struct Block { uint32_t v[4]; };

// One Philox round: two 32x32->64 multiplies, their halves mixed with the key.
EMBER_HOST_DEVICE void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
  const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  c0 = hi1 ^ c1 ^ k0;
  c1 = lo1;
  c2 = hi0 ^ c3 ^ k1;
  c3 = lo0;
}

// philox4x32-10(counter, key): ten rounds, the key bumped by the Weyl constants between them.
EMBER_HOST_DEVICE Block philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
#ifdef __CUDA_ARCH__  // device pass only: host compilers warn on an unknown pragma
#pragma unroll
#endif
  for (int r = 0; r < kRounds; ++r) {
    philox_round(c0, c1, c2, c3, k0, k1);
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Block{{c0, c1, c2, c3}};
}

// The four words of stream block b (= j / 4) for a 64-bit seed.
EMBER_HOST_DEVICE Block stream_block(uint64_t seed, uint64_t b) {
  return philox4x32_10(static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// ceil(p * 2^24) for p in [0, 1]: element kept iff (word >> 8) >= this.
EMBER_HOST_DEVICE uint32_t dropout_threshold(double p) {
  const double t = p * 16777216.0;
  uint32_t i = static_cast<uint32_t>(t);
  return static_cast<double>(i) < t ? i + 1u : i;
}

// Randoms a call over n elements consumes: the generator's offset advances by this.
EMBER_HOST_DEVICE uint64_t randoms_consumed(uint64_t n) { return (n + 3u) & ~uint64_t(3); }

}  // namespace ember::philox

#undef EMBER_HOST_DEVICE
