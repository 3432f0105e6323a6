// Compiles one loop header three times, once per SIMD path, each copy in its own
// namespace (isa_scalar, isa_avx2, isa_avx512) under that path's target pragma; call
// into the right copy with EMBER_ISA_CALL (dispatch.h). Inside the loop header,
// EMBER_ISA_LEVEL is 0, 1 or 2 for code written with intrinsics. Use:
//   #define EMBER_ISA_LOOPS "conv2d_loops.h"
//   #include "isa_instantiate.h"
// No include guard: every kernel file includes it for its own loops.
#ifndef EMBER_ISA_LOOPS
#error "define EMBER_ISA_LOOPS as the loop header to compile per ISA"
#endif
namespace isa_scalar {
#define EMBER_ISA_LEVEL 0
#include EMBER_ISA_LOOPS
#undef EMBER_ISA_LEVEL
}  // namespace isa_scalar
namespace isa_avx2 {
EMBER_AVX2_BEGIN
#define EMBER_ISA_LEVEL 1
#include EMBER_ISA_LOOPS
#undef EMBER_ISA_LEVEL
EMBER_ISA_END
}  // namespace isa_avx2
namespace isa_avx512 {
EMBER_AVX512_BEGIN
#define EMBER_ISA_LEVEL 2
#include EMBER_ISA_LOOPS
#undef EMBER_ISA_LEVEL
EMBER_ISA_END
}  // namespace isa_avx512
#undef EMBER_ISA_LOOPS
