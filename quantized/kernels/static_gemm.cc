#include "quantized/kernels/static_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "core/cpu.h"
#include "core/quantize.h"
#include "quantized/kernels/requantize_simd.h"

namespace qconform::kernels {
namespace {

// A row's channels eight at a time through requantize8; returns where the lanes end.
__attribute__((target("avx2"))) int64_t requantize_row_avx2(const RequantizeLanes& lanes, const int32_t* acc, int64_t n_out,
                                                            int32_t* y) {
  int64_t n = 0;
  for (; n + 8 <= n_out; n += 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + n),
                        requantize8(lanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + n)), n));
  return n;
}

}  // namespace

void static_linear(const DynamicLinearActivation& x, double x_scale, const StaticLinearWeights& w,
                   const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                   BiasOverflow bias_overflow) {
  thread_local std::vector<int32_t> acc;  // scratch that only grows
  acc.resize(x.rows * w.integers.out_features);
  fast_accumulators(x, w.integers, acc.data());  // (1), (1')
  static_requantize(acc, x.rows, make_requantizer(x_scale, w, bias, out, rule, bias_overflow), w.integers.out_features,
                    y);
}

Requantizer make_requantizer(double x_scale, const StaticLinearWeights& w, const float* bias, const StaticOutput& out,
                             Requantization rule, BiasOverflow bias_overflow) {
  if (rule != Requantization::Fp32Multiplier && rule != Requantization::FloatEpilogue)
    throw std::logic_error("static_linear: the engine's requantization is not modelled");
  const int64_t n_out = w.integers.out_features, padded = (n_out + 15) / 16 * 16;
  Requantizer r;
  r.rule = rule;
  r.has_bias = bias != nullptr;
  r.zero_point = out.zero_point;
  r.lowest = out.relu ? out.zero_point : 0;  // (6)
  r.multiplier.assign(padded, 0.0f);
  r.qbias.assign(padded, 0);
  r.bias_in_accumulator.assign(padded, 0.0f);
  if (rule == Requantization::Fp32Multiplier) {
    const float inverse_out = 1.0f / static_cast<float>(out.scale);
    for (int64_t n = 0; n < n_out; ++n) {
      if (bias) {  // (2a): at::quantize_per_tensor(bias, x_scale * w_scale[n], 0, kQInt32)
        const double bias_scale = x_scale * w.scales[n];
        int64_t qbias = quantize_value(bias[n], 1.0f / static_cast<float>(bias_scale), 0, INT32_MIN, INT32_MAX);
        const bool overflowed = qbias == INT32_MIN || qbias == INT32_MAX;
        if (overflowed && bias_overflow == BiasOverflow::IntegerIndefinite) qbias = INT32_MIN;
        r.qbias[n] = static_cast<int32_t>(static_cast<uint32_t>(qbias));
      }
      r.multiplier[n] = (static_cast<float>(w.scales[n]) * static_cast<float>(x_scale)) * inverse_out;  // (3a)
    }
    return r;
  }
  // ideep's scales are reciprocals (PyTorch passes 1.0 / scale, kept as float), and its
  // output and bias scales are formed from them in float: (2b), (3b).
  const float inverse_x = static_cast<float>(1.0 / x_scale), inverse_y = static_cast<float>(1.0 / out.scale);
  for (int64_t n = 0; n < n_out; ++n) {
    const float inverse_xw = inverse_x * static_cast<float>(1.0 / w.scales[n]);  // (2b)
    if (bias) r.bias_in_accumulator[n] = bias[n] * inverse_xw;
    r.multiplier[n] = inverse_y / inverse_xw;                                    // (3b)
    r.simd_exact = r.simd_exact && std::isfinite(r.multiplier[n]) && r.multiplier[n] > 0.0f &&
                   std::isfinite(r.bias_in_accumulator[n]);
  }
  return r;
}

int32_t requantize(const Requantizer& r, int32_t acc, int64_t n) {
  const auto clamp_u8 = [&](int64_t q) { return static_cast<int32_t>(std::clamp<int64_t>(q, r.lowest, 255)); };  // (6)
  if (r.rule == Requantization::Fp32Multiplier) {
    const int32_t sum = static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(r.qbias[n]));
    const float scaled = static_cast<float>(sum) * r.multiplier[n];
    // cvtps2dq: round to even; out of range (or NaN) gives INT32_MIN. Then packs to int16.
    const float nearest = std::nearbyint(scaled);
    const int64_t as_int32 = (nearest >= -2147483648.0f && nearest < 2147483648.0f) ? static_cast<int64_t>(nearest)
                                                                                       : int64_t{INT32_MIN};
    return clamp_u8(std::clamp<int64_t>(as_int32, INT16_MIN, INT16_MAX) + r.zero_point);  // (4a)
  }
  float v = static_cast<float>(acc);
  if (r.has_bias) v = v + r.bias_in_accumulator[n];                                   // (4b)
  const float shifted = v * r.multiplier[n] + static_cast<float>(r.zero_point);       // (5b)
  return clamp_u8(static_cast<int64_t>(std::nearbyint(std::clamp(shifted, -1e9f, 1e9f))));
}

void static_requantize(const std::vector<int32_t>& acc, int64_t rows, const Requantizer& r, int64_t n_out,
                       int32_t* y) {
  if (static_cast<int64_t>(acc.size()) != rows * n_out)
    throw std::logic_error("static_requantize: accumulators do not match rows x out_features");
  const bool simd = cpu_has_avx2() && r.simd_exact;
  const RequantizeLanes lanes = lanes_from(r, 0);
  for (int64_t row = 0; row < rows; ++row) {
    const int32_t* a = acc.data() + row * n_out;
    int32_t* out = y + row * n_out;
    int64_t n = simd ? requantize_row_avx2(lanes, a, n_out, out) : 0;
    for (; n < n_out; ++n) out[n] = requantize(r, a[n], n);
  }
}

}  // namespace qconform::kernels
