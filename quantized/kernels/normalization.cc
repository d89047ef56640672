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

namespace {

constexpr int64_t kNhwcFeatureMapThreshold = 512;  // pixels: quantized_groupnorm_nhwc_kernel's switch

float multiply_add(bool simd, float a, float b, float c) { return simd ? std::fma(a, b, c) : a * b + c; }

// Step 1 from a group's sums: its mean and r, in input quanta.
struct GroupStatistics {
  float mean;  // mean(q) - z_in
  float r;     // s_in / std
};

GroupStatistics statistics(float sum, float squares, int64_t n, double eps, NormalizeQParams qp, bool simd) {
  const float m = sum / static_cast<float>(n);
  const float mean_square = squares / static_cast<float>(n);
  const float variance = std::max(multiply_add(simd, -m, m, mean_square), 0.0f);
  const float r = static_cast<float>(static_cast<double>(qp.input_scale) /
                                     std::sqrt(static_cast<double>(variance * qp.input_scale * qp.input_scale) + eps));
  return {m - static_cast<float>(qp.input_zero_point), r};
}

int32_t quantize_output(float value, float inverse_output_scale, int32_t zero_point) {
  const float rounded = std::nearbyint(value * inverse_output_scale);
  return static_cast<int32_t>(std::clamp<int64_t>(zero_point + static_cast<int64_t>(rounded), 0, 255));
}

// The channels-last kernel: per channel of a group, g' and b' (step 2), then d g' + b'.
void apply_folded(const int32_t* x, int64_t count, const GroupStatistics& st, float gamma, float beta, bool simd,
                  NormalizeQParams qp, float inverse_output_scale, int32_t* y) {
  const float scale = st.r * gamma;
  const float bias = multiply_add(simd, -scale, st.mean, beta);
  for (int64_t e = 0; e < count; ++e) {
    const float d = static_cast<float>(x[e] - qp.input_zero_point);
    y[e] = quantize_output(multiply_add(simd, d, scale, bias), inverse_output_scale, qp.output_zero_point);
  }
}

}  // namespace

NormalizeKernel normalize_kernel_for(const NormalizationGroups& groups, const std::vector<int64_t>& shape) {
  const bool four_d = shape.size() == 4;
  return groups.per_channel && four_d && (shape[1] == 1 || shape[2] * shape[3] == 1) ? NormalizeKernel::ChannelsLast
                                                                                      : NormalizeKernel::Contiguous;
}

int64_t nhwc_unwritten_samples(const NormalizationGroups& groups, const std::vector<int64_t>& shape) {
  if (normalize_kernel_for(groups, shape) != NormalizeKernel::ChannelsLast || groups.count == 0) return 0;
  const int64_t pixels = shape[2] * shape[3];
  if (pixels >= kNhwcFeatureMapThreshold) return 0;
  return std::max<int64_t>(0, shape[0] - groups.size);
}

bool normalize_sums_in_float(const NormalizationGroups& groups, const std::vector<int64_t>& shape) {
  return normalize_kernel_for(groups, shape) == NormalizeKernel::ChannelsLast &&
         shape[2] * shape[3] >= kNhwcFeatureMapThreshold;
}

void static_normalize(const int32_t* xq, const NormalizationGroups& groups, const std::vector<int64_t>& shape,
                      const float* gamma, const float* beta, double eps, NormalizeQParams qp,
                      AtenCapability capability, int32_t* y) {
  const bool simd = capability != AtenCapability::Default;  // the compiler's FMA contractions
  const float inverse_output_scale = 1.0f / qp.output_scale;
  const int64_t n = groups.size;
  const float gamma_one = 1.0f, beta_zero = 0.0f;
  const auto gamma_at = [&](int64_t i) { return gamma ? gamma[i] : gamma_one; };
  const auto beta_at = [&](int64_t i) { return beta ? beta[i] : beta_zero; };

  if (normalize_kernel_for(groups, shape) == NormalizeKernel::ChannelsLast) {
    // Memory order is NCHW's here: one channel, or one pixel.
    const int64_t batch = shape[0], channels = shape[1], pixels = shape[2] * shape[3];
    const int64_t per_group = groups.channels_per_group, group_count = channels / per_group;
    std::vector<GroupStatistics> stats(groups.count);
    if (pixels < kNhwcFeatureMapThreshold) {
      for (int64_t i = 0; i < groups.count; ++i) {  // exact integer sums
        int64_t sum = 0, squares = 0;
        for (int64_t e = 0; e < n; ++e) {
          sum += xq[i * n + e];
          squares += static_cast<int64_t>(xq[i * n + e]) * xq[i * n + e];
        }
        stats[i] = statistics(static_cast<float>(sum), static_cast<float>(squares), n, eps, qp, simd);
      }
    } else {
      // Float sums per thread's chunk of the (sample, pixel) range, then over the threads.
      const int64_t threads = std::max(1, aten_intra_op_threads());
      const int64_t range = batch * pixels;
      const int64_t used = std::min<int64_t>(threads, range);
      const int64_t chunk = (range + used - 1) / used;
      std::vector<float> sums(threads * batch * 2 * channels, 0.0f);
      for (int64_t t = 0; t < used; ++t)
        for (int64_t index = t * chunk; index < std::min(range, (t + 1) * chunk); ++index) {
          const int64_t sample = index / pixels, pixel = index % pixels;
          float* buffer = sums.data() + (t * batch + sample) * 2 * channels;
          for (int64_t c = 0; c < channels; ++c) {
            const int32_t v = xq[(sample * channels + c) * pixels + pixel];
            buffer[c] += static_cast<float>(v);
            buffer[channels + c] += static_cast<float>(v * v);
          }
        }
      for (int64_t sample = 0; sample < batch; ++sample)
        for (int64_t g = 0; g < group_count; ++g) {
          float sum = 0.0f, squares = 0.0f;
          for (int64_t t = 0; t < threads; ++t)
            for (int64_t d = 0; d < per_group; ++d) {
              const float* buffer = sums.data() + (t * batch + sample) * 2 * channels;
              sum += buffer[g * per_group + d];
              squares += buffer[channels + g * per_group + d];
            }
          stats[sample * group_count + g] = statistics(sum, squares, n, eps, qp, simd);
        }
    }
    for (int64_t i = 0; i < groups.count; ++i) {
      const int64_t sample = i / group_count, g = i % group_count;
      for (int64_t d = 0; d < per_group; ++d) {
        const int64_t c = g * per_group + d;
        const int64_t offset = (sample * channels + c) * pixels;
        apply_folded(xq + offset, pixels, stats[i], gamma_at(c), beta_at(c), simd, qp, inverse_output_scale,
                     y + offset);
      }
    }
    return;
  }

  const int64_t plane = groups.per_channel ? n / groups.channels_per_group : n;
  for (int64_t i = 0; i < groups.count; ++i) {
    const int32_t* x = xq + i * n;
    int32_t* out = y + i * n;
    // 1. The group's statistics in input quanta, from exact integer sums.
    int64_t sum = 0, squares = 0;
    for (int64_t e = 0; e < n; ++e) {
      sum += x[e];
      squares += static_cast<int64_t>(x[e]) * x[e];
    }
    const GroupStatistics st = statistics(static_cast<float>(sum), static_cast<float>(squares), n, eps, qp, simd);
    // 2. and 3. Each element.
    for (int64_t e = 0; e < n; ++e) {
      const float t = static_cast<float>(x[e] - qp.input_zero_point) - st.mean;
      float value;
      if (groups.per_channel) {
        const int64_t c = (i * groups.channels_per_group + e / plane) % groups.channels;
        value = multiply_add(simd, t, st.r * gamma_at(c), beta_at(c));
      } else {
        value = multiply_add(simd, t * st.r, gamma_at(e), beta_at(e));
      }
      out[e] = quantize_output(value, inverse_output_scale, qp.output_zero_point);
    }
  }
}

}  // namespace qconform::kernels
