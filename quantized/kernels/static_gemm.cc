#include "quantized/kernels/static_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

#include "core/cpu.h"
#include "core/quantize.h"

namespace qconform::kernels {
namespace {

// Eight channels of one row through (4a) and (6): the scalar loop's operations, each the
// same single rounding (int32 add wrapping as the cast of the int64 sum does; cvtdq2ps;
// mulps; cvtps2dq, which rounds to even and gives INT32_MIN out of range or for NaN exactly as
// the scalar model; clamps), so the same integers. Returns the lanes' end.
__attribute__((target("avx2"))) int64_t fp32_multiplier_avx2(const int32_t* acc, const int32_t* qbias,
                                                             const float* multiplier, int64_t n_out, int32_t zero_point,
                                                             int32_t lowest, int32_t* y) {
  int64_t n = 0;
  const __m256i zp = _mm256_set1_epi32(zero_point), low = _mm256_set1_epi32(lowest), high = _mm256_set1_epi32(255);
  const __m256i int16_min = _mm256_set1_epi32(INT16_MIN), int16_max = _mm256_set1_epi32(INT16_MAX);
  for (; n + 8 <= n_out; n += 8) {
    const __m256i sum = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + n)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qbias + n)));
    const __m256i rounded = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_loadu_ps(multiplier + n)));
    const __m256i narrowed = _mm256_min_epi32(_mm256_max_epi32(rounded, int16_min), int16_max);
    const __m256i q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(narrowed, zp), low), high);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + n), q);
  }
  return n;
}

// The same for (4b)-(5b) and (6); lanes whose value is NaN (an infinite scale's 0 x inf) stop
// it there, and the scalar loop takes over from that group of eight, which the caller does.
__attribute__((target("avx2"))) int64_t float_epilogue_avx2(const int32_t* acc, const float* bias_in_accumulator,
                                                            const float* multiplier, int64_t n_out, float zero_point,
                                                            int32_t lowest, int32_t* y) {
  int64_t n = 0;
  const __m256 zp = _mm256_set1_ps(zero_point), lo = _mm256_set1_ps(-1e9f), hi = _mm256_set1_ps(1e9f);
  const __m256i low = _mm256_set1_epi32(lowest), high = _mm256_set1_epi32(255);
  for (; n + 8 <= n_out; n += 8) {
    __m256 v = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + n)));
    if (bias_in_accumulator) v = _mm256_add_ps(v, _mm256_loadu_ps(bias_in_accumulator + n));
    const __m256 shifted = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(multiplier + n)), zp);
    if (_mm256_movemask_ps(_mm256_cmp_ps(shifted, shifted, _CMP_UNORD_Q)) != 0) break;
    const __m256 nearest = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(shifted, lo), hi),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i q = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(nearest), low), high);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + n), q);
  }
  return n;
}

}  // namespace

void static_linear(const DynamicLinearActivation& x, double x_scale, const StaticLinearWeights& w,
                   const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                   BiasOverflow bias_overflow) {
  thread_local std::vector<int32_t> acc;  // scratch that only grows
  acc.resize(x.rows * w.integers.out_features);
  fast_accumulators(x, w.integers, acc.data());  // (1), (1')
  static_requantize(acc, x.rows, x_scale, w, bias, out, rule, y, bias_overflow);
}

void static_requantize(const std::vector<int32_t>& acc, int64_t rows, double x_scale, const StaticLinearWeights& w,
                       const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                       BiasOverflow bias_overflow) {
  const int64_t n_out = w.integers.out_features;
  if (static_cast<int64_t>(acc.size()) != rows * n_out)
    throw std::logic_error("static_requantize: accumulators do not match rows x out_features");
  const int32_t lowest = out.relu ? out.zero_point : 0;                         // (6)
  const auto clamp_u8 = [&](int64_t q) { return static_cast<int32_t>(std::clamp<int64_t>(q, lowest, 255)); };

  if (rule == Requantization::Fp32Multiplier) {
    std::vector<int64_t> qbias(n_out, 0);
    std::vector<float> multiplier(n_out);
    for (int64_t n = 0; n < n_out; ++n) {
      const double bias_scale = x_scale * w.scales[n];
      if (bias) {  // (2a): at::quantize_per_tensor(bias, bias_scale, 0, kQInt32)
        qbias[n] = quantize_value(bias[n], 1.0f / static_cast<float>(bias_scale), 0, INT32_MIN, INT32_MAX);
        const bool overflowed = qbias[n] == INT32_MIN || qbias[n] == INT32_MAX;
        if (overflowed && bias_overflow == BiasOverflow::IntegerIndefinite) qbias[n] = INT32_MIN;
      }
      const float inverse_out = 1.0f / static_cast<float>(out.scale);
      multiplier[n] = (static_cast<float>(w.scales[n]) * static_cast<float>(x_scale)) * inverse_out;  // (3a)
    }
    std::vector<int32_t> qbias32(n_out);
    for (int64_t n = 0; n < n_out; ++n) qbias32[n] = static_cast<int32_t>(static_cast<uint32_t>(qbias[n]));
    const bool avx2 = cpu_has_avx2();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = avx2 ? fp32_multiplier_avx2(acc.data() + r * n_out, qbias32.data(), multiplier.data(), n_out,
                                                    out.zero_point, lowest, y + r * n_out)
                            : 0;
           n < n_out; ++n) {
        const int64_t sum = acc[r * n_out + n] + qbias[n];
        const float scaled = static_cast<float>(static_cast<int32_t>(sum)) * multiplier[n];
        // cvtps2dq: round to even; out of range (or NaN) gives INT32_MIN. Then packs to int16.
        const float nearest = std::nearbyint(scaled);
        const int64_t as_int32 = (nearest >= -2147483648.0f && nearest < 2147483648.0f) ? static_cast<int64_t>(nearest)
                                                                                           : int64_t{INT32_MIN};
        const int64_t rounded = std::clamp<int64_t>(as_int32, INT16_MIN, INT16_MAX);
        y[r * n_out + n] = clamp_u8(rounded + out.zero_point);  // (4a), (6)
      }
    return;
  }
  if (rule == Requantization::FloatEpilogue) {
    // ideep's scales are reciprocals (PyTorch passes 1.0 / scale, kept as float), and its
    // output and bias scales are formed from them in float: (2b), (3b).
    const float inverse_x = static_cast<float>(1.0 / x_scale), inverse_y = static_cast<float>(1.0 / out.scale);
    const float zero_point = static_cast<float>(out.zero_point);
    std::vector<float> bias_in_accumulator(n_out, 0.0f), multiplier(n_out);
    for (int64_t n = 0; n < n_out; ++n) {
      const float inverse_xw = inverse_x * static_cast<float>(1.0 / w.scales[n]);    // (2b)
      if (bias) bias_in_accumulator[n] = bias[n] * inverse_xw;
      multiplier[n] = inverse_y / inverse_xw;                                       // (3b)
    }
    const bool avx2 = cpu_has_avx2();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = avx2 ? float_epilogue_avx2(acc.data() + r * n_out, bias ? bias_in_accumulator.data() : nullptr,
                                                   multiplier.data(), n_out, zero_point, lowest, y + r * n_out)
                            : 0;
           n < n_out; ++n) {
        float v = static_cast<float>(acc[r * n_out + n]);
        if (bias) v = v + bias_in_accumulator[n];                                   // (4b)
        const float shifted = v * multiplier[n] + zero_point;                       // (5b)
        y[r * n_out + n] = clamp_u8(static_cast<int64_t>(std::nearbyint(std::clamp(shifted, -1e9f, 1e9f))));
      }
    return;
  }
  throw std::logic_error("static_linear: the engine's requantization is not modelled");
}

}  // namespace qconform::kernels
