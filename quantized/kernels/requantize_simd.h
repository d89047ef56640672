#pragma once
// The SIMD forms of static_gemm.h's requantize(): (4)-(6) on 8 (AVX2) or 16 (AVX-512)
// accumulators of consecutive output channels. Each step is the scalar form's single rounding
// (int32 add wrapping as the scalar cast does; cvtdq2ps; mulps; addps; rounding to even once),
// and the clamps are merged or moved only where their integer bounds make that exact (said at
// each), so the same integers; test_kernels and test_static hold them to it.
// Included by the kernels' .cc files only (it brings <immintrin.h>).
#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "quantized/kernels/static_gemm.h"

namespace qconform::kernels {

// A Requantizer's arrays from one tile's first channel on, as the tiles read them.
struct RequantizeLanes {
  Requantization rule;
  const int32_t* qbias;       // Fp32Multiplier
  const float* bias;          // FloatEpilogue's bias in accumulator units, or null
  const float* multiplier;
  int32_t zero_point, lowest;
};

inline RequantizeLanes lanes_from(const Requantizer& r, int64_t first_channel) {
  return {r.rule, r.qbias.data() + first_channel,
          r.has_bias ? r.bias_in_accumulator.data() + first_channel : nullptr, r.multiplier.data() + first_channel,
          r.zero_point, r.lowest};
}

// Channels j .. j + 7 (Fp32Multiplier: cvtps2dq gives INT32_MIN out of range or for NaN, as
// the scalar form; FloatEpilogue only where Requantizer::simd_exact).
__attribute__((target("avx2"))) inline __m256i requantize8(const RequantizeLanes& r, __m256i acc, int64_t j) {
  if (r.rule == Requantization::Fp32Multiplier) {
    const __m256i sum = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.qbias + j)));
    const __m256i rounded = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_loadu_ps(r.multiplier + j)));
    // (4a)'s int16 clamp, + y_zp, then (6)'s [lowest, 255], as one clamp to [lowest - y_zp,
    // 255 - y_zp] (inside int16: y_zp and lowest are in 0..255) and the addition.
    const __m256i clamped = _mm256_min_epi32(_mm256_max_epi32(rounded, _mm256_set1_epi32(r.lowest - r.zero_point)),
                                             _mm256_set1_epi32(255 - r.zero_point));
    return _mm256_add_epi32(clamped, _mm256_set1_epi32(r.zero_point));
  }
  __m256 v = _mm256_cvtepi32_ps(acc);
  if (r.bias) v = _mm256_add_ps(v, _mm256_loadu_ps(r.bias + j));                                        // (4b)
  const __m256 shifted = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(r.multiplier + j)),
                                       _mm256_set1_ps(static_cast<float>(r.zero_point)));               // (5b)
  // (6) before the rounding: its bounds are integers, which rounding keeps, and rounding is
  // monotonic, so clamping first gives the same integer (and spares the +-1e9 guard).
  const __m256 clamped = _mm256_min_ps(_mm256_max_ps(shifted, _mm256_set1_ps(static_cast<float>(r.lowest))),
                                       _mm256_set1_ps(255.0f));
  return _mm256_cvtps_epi32(_mm256_round_ps(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// The same on 16 channels. (GCC 12 warns that _mm512_cvtepi32_ps and _mm512_max_ps read an
// uninitialised vector: their headers pass _mm512_undefined_ps() as the unused merge source.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f,avx512bw"))) inline __m512i requantize16(const RequantizeLanes& r, __m512i acc, int64_t j) {
  if (r.rule == Requantization::Fp32Multiplier) {  // as requantize8
    const __m512i sum = _mm512_add_epi32(acc, _mm512_loadu_si512(r.qbias + j));
    const __m512i rounded = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(sum), _mm512_loadu_ps(r.multiplier + j)));
    const __m512i clamped = _mm512_min_epi32(_mm512_max_epi32(rounded, _mm512_set1_epi32(r.lowest - r.zero_point)),
                                             _mm512_set1_epi32(255 - r.zero_point));
    return _mm512_add_epi32(clamped, _mm512_set1_epi32(r.zero_point));
  }
  __m512 v = _mm512_cvtepi32_ps(acc);
  if (r.bias) v = _mm512_add_ps(v, _mm512_loadu_ps(r.bias + j));                                        // (4b)
  const __m512 shifted = _mm512_add_ps(_mm512_mul_ps(v, _mm512_loadu_ps(r.multiplier + j)),
                                       _mm512_set1_ps(static_cast<float>(r.zero_point)));               // (5b)
  const __m512 clamped = _mm512_min_ps(_mm512_max_ps(shifted, _mm512_set1_ps(static_cast<float>(r.lowest))),
                                       _mm512_set1_ps(255.0f));                                         // (6), as requantize8
  return _mm512_cvt_roundps_epi32(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);  // to even, this once
}
#pragma GCC diagnostic pop

}  // namespace qconform::kernels
