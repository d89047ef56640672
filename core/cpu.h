#pragma once
// What the CPU running the harness offers, asked once. The vectorised paths (activation
// quantization, min/max, the dynamic GEMM) are compiled with target attributes and take
// their AVX2 form only where this says so, whatever the build's own flags.
namespace qconform {

inline bool cpu_has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

}  // namespace qconform
