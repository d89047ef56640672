#include "quantized/kernels/dynamic_gemm.h"

#include <algorithm>
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

// Step (1') for one (row, output channel) pair: vpmaddubsw's saturating pair sums.
inline int32_t accumulate_pairwise_saturating(const int32_t* xq, int32_t x_zero_point, const int32_t* wq,
                                              int64_t k_size) {
  int32_t acc = 0, weight_sum = 0;
  for (int64_t k = 0; k < k_size; k += 2) {
    int32_t pair = xq[k] * wq[k];
    weight_sum += wq[k];
    if (k + 1 < k_size) {  // an odd K is padded with a zero product
      pair += xq[k + 1] * wq[k + 1];
      weight_sum += wq[k + 1];
    }
    acc += std::min<int32_t>(32767, std::max<int32_t>(-32768, pair));
  }
  return acc - x_zero_point * weight_sum;
}

// (1) or (1') as the activation asks.
inline int32_t accumulate_as(const DynamicLinearActivation& x, const int32_t* x_row, const int32_t* w_row,
                             int32_t w_zero_point, int64_t k_size) {
  if (x.accumulation == Accumulation::PairwiseInt16Saturation)
    return accumulate_pairwise_saturating(x_row, x.zero_point, w_row, k_size);
  return accumulate(x_row, x.zero_point, w_row, w_zero_point, k_size);
}

}  // namespace

std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w) {
  assert(w.in_features <= kMaxDynamicLinearK);
  std::vector<int32_t> acc(x.rows * w.out_features);
  for (int64_t row = 0; row < x.rows; ++row)
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel)
      acc[row * w.out_features + out_channel] =
          accumulate_as(x, x.values + row * w.in_features, w.values.data() + out_channel * w.in_features,
                        w.zero_points[out_channel], w.in_features);
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
      const int32_t acc = accumulate_as(x, x_row, w.values.data() + out_channel * w.in_features,
                                        w.zero_points[out_channel], w.in_features);  // (1) or (1')
      const float scaled = static_cast<float>(acc) * multiplier[out_channel];    // (3)
      float value = bias ? scaled + bias[out_channel] : scaled;
      if (relu && value < 0.0f) value = 0.0f;                                     // (4)
      y_row[out_channel] = value;
    }
  }
}

}  // namespace qconform::kernels
