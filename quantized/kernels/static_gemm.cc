#include "quantized/kernels/static_gemm.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>

#include "core/quantize.h"

namespace qconform::kernels {

void static_linear(const DynamicLinearActivation& x, double x_scale, const StaticLinearWeights& w,
                   const float* bias, const StaticOutput& out, Requantization rule, int32_t* y,
                   BiasOverflow bias_overflow) {
  static_requantize(dynamic_linear_accumulators(x, w.integers), x.rows, x_scale, w, bias, out, rule, y,  // (1), (1')
                    bias_overflow);
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
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < n_out; ++n) {
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
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < n_out; ++n) {
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
