// CPUID-based choice of the SIMD path, once at load; see dispatch.h.
#include "dispatch.h"
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ember::cpu {

Isa best_isa() {
  static const Isa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
    return Isa::scalar;
  }();
  return best;
}

static Isa parse_env() {
  Isa best = best_isa();
  const char* env = std::getenv("EMBER_CPU_ISA");
  if (!env || !*env) return best;
  Isa want = best;
  if (!std::strcmp(env, "scalar")) want = Isa::scalar;
  else if (!std::strcmp(env, "avx2")) want = Isa::avx2;
  else if (!std::strcmp(env, "avx512")) want = Isa::avx512;
  // An unknown value or a path above what the CPU has falls back to the best one;
  // ember.cpu_isa() reports what is in use.
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

static Isa g_isa = parse_env();

Isa isa() { return g_isa; }

void set_isa(Isa want) {
  if (static_cast<int>(want) > static_cast<int>(best_isa()))
    throw std::invalid_argument(std::string("set_cpu_isa: this CPU does not support ") + isa_name(want) +
                                " (best available: " + isa_name(best_isa()) + ")");
  g_isa = want;
}

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

}  // namespace ember::cpu
