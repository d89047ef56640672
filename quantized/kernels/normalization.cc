#include "quantized/kernels/normalization.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qconform::kernels {

BatchNormAffine batch_norm_affine(const std::vector<float>& weight, const std::vector<float>& bias,
                                  const std::vector<float>& mean, const std::vector<float>& var, double eps,
                                  double input_scale, double output_scale) {
  const size_t channels = mean.size();
  BatchNormAffine a{std::vector<float>(channels), std::vector<float>(channels)};
  for (size_t c = 0; c < channels; ++c) {
    const float inv_sigma = static_cast<float>(1.0 / std::sqrt(var[c] + static_cast<float>(eps)));
    const float scaled = inv_sigma * weight[c];
    a.alpha[c] = static_cast<float>(static_cast<double>(scaled) * (input_scale / output_scale));
    const float shift = bias[c] - mean[c] * inv_sigma * weight[c];
    a.beta[c] = static_cast<float>(static_cast<double>(shift) / output_scale);
  }
  return a;
}

namespace {

// The channels of one pixel that ATen's kernel computes in vector lanes.
int64_t vector_channels(int64_t channels, AtenCapability capability) {
  if (capability == AtenCapability::Avx512) return channels / 64 * 64;
  const int64_t whole = channels / 32 * 32;
  const int64_t rest = channels - whole;
  return whole + (rest >= 8 ? rest / 8 * 8 : 0);
}

constexpr double kInt32Limit = 2147483648.0;  // 2^31
constexpr double kInt64Limit = 9223372036854775808.0;  // 2^63

}  // namespace

void static_batch_norm(const int32_t* xq, int64_t batch, int64_t channels, int64_t plane, int32_t input_zero_point,
                       int32_t output_zero_point, const BatchNormAffine& affine, bool relu,
                       AtenCapability capability, int32_t* y) {
  const bool simd = capability != AtenCapability::Default;  // FMA, and int32 vector lanes
  const int64_t vector_end = vector_channels(channels, capability);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float alpha = affine.alpha[c], beta = affine.beta[c];
      // int32 lanes overflow at 2^31 (vector lanes of SIMD builds), int64 ones at 2^63.
      const double limit = simd && c < vector_end ? kInt32Limit : kInt64Limit;
      const int64_t base = (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        const float x = static_cast<float>(xq[base + i] - input_zero_point);
        const float value = simd ? std::fma(alpha, x, beta) : alpha * x + beta;
        const float rounded = std::nearbyint(value);
        // Out of range or NaN: the conversion's "integer indefinite" (the most negative
        // integer), which the clamp takes to level 0 and the ReLU's max to the zero point.
        int64_t level = std::abs(static_cast<double>(rounded)) < limit
                            ? output_zero_point + static_cast<int64_t>(rounded)
                            : std::numeric_limits<int32_t>::min();
        if (relu) level = std::max<int64_t>(level, output_zero_point);
        y[base + i] = static_cast<int32_t>(std::clamp<int64_t>(level, 0, 255));
      }
    }
}

}  // namespace qconform::kernels
