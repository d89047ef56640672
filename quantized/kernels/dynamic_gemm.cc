#include "quantized/kernels/dynamic_gemm.h"

#include <cassert>

namespace qconform::kernels {
namespace {

// Step (1) for one (row, output channel) pair.
inline int32_t accumulate(const int32_t* xq, int32_t x_zero_point, const int32_t* wq,
                          int32_t w_zero_point, int64_t k_size) {
  int32_t acc = 0;
  for (int64_t k = 0; k < k_size; ++k) {
#ifdef QCONFORM_MUTATION_DROP_ZERO_POINT
    // Deliberate defect for the oracles' mutation check: the activation zero point is dropped.
    acc += xq[k] * (wq[k] - w_zero_point);
    (void)x_zero_point;
#else
    acc += (xq[k] - x_zero_point) * (wq[k] - w_zero_point);
#endif
  }
  return acc;
}

}  // namespace

std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w) {
  assert(w.in_features <= kMaxDynamicLinearK);
  std::vector<int32_t> acc(x.rows * w.out_features);
  for (int64_t row = 0; row < x.rows; ++row)
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel)
      acc[row * w.out_features + out_channel] =
          accumulate(x.values + row * w.in_features, x.zero_point,
                     w.values.data() + out_channel * w.in_features, w.zero_points[out_channel],
                     w.in_features);
  return acc;
}

void dynamic_linear(const DynamicLinearActivation& x, const DynamicLinearWeights& w,
                    const float* bias, bool relu, float* y) {
  assert(w.in_features <= kMaxDynamicLinearK);
  // (2) once per output channel: the multiplier does not depend on the row.
  std::vector<float> multiplier(w.out_features);
  for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel)
    multiplier[out_channel] = w.scales[out_channel] * x.scale;

  for (int64_t row = 0; row < x.rows; ++row) {
    const int32_t* x_row = x.values + row * w.in_features;
    float* y_row = y + row * w.out_features;
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel) {
      const int32_t acc = accumulate(x_row, x.zero_point,
                                     w.values.data() + out_channel * w.in_features,
                                     w.zero_points[out_channel], w.in_features);  // (1)
      const float scaled = static_cast<float>(acc) * multiplier[out_channel];    // (3)
      float value = bias ? scaled + bias[out_channel] : scaled;
      if (relu && value < 0.0f) value = 0.0f;                                     // (4)
      y_row[out_channel] = value;
    }
  }
}

}  // namespace qconform::kernels
