#include "quantized/kernels/dynamic_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>

namespace qconform::kernels {
namespace {

constexpr int64_t kBlock = 16;  // output channels per packed block: two ymm of int32
constexpr int64_t kRows = 6;    // rows per register tile: 6 x 2 int32 accumulators

// Activations widened to int16, K padded to even with zeros, reused between calls: a
// scratch buffer that only grows, so the time loops of the recurrent modules allocate
// nothing here after their first step.
const int16_t* widened_activations(const DynamicLinearActivation& x, int64_t k, int64_t k_pairs) {
  thread_local std::vector<int16_t> scratch;
  const size_t needed = static_cast<size_t>(x.rows * k_pairs * 2);
  if (scratch.size() < needed) scratch.resize(needed);
  for (int64_t row = 0; row < x.rows; ++row) {
    int16_t* out = scratch.data() + row * k_pairs * 2;
    const int32_t* in = x.values + row * k;
    for (int64_t i = 0; i < k; ++i) out[i] = static_cast<int16_t>(in[i]);
    if (k % 2) out[k] = 0;
  }
  return scratch.data();
}

// Raw sums sum_k xq[k] (wq[n][k] - w_zp[n]) for Rows rows and one block of 16 channels; `x`
// rows are k_pairs * 2 int16 apart. Rows is a template parameter so that the 2 x Rows
// accumulators stay in registers (6 rows: 12 of the 16 ymm registers).
template <int Rows>
__attribute__((target("avx2"))) void avx2_tile(const int16_t* x, const int16_t* block, int64_t k_pairs,
                                               int32_t* out /* Rows x 16 */) {
  // Fully unrolled (GCC keeps a loop's array in memory otherwise: a load and store per add).
  __m256i acc[Rows][2];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const int64_t stride = k_pairs * 2;
  for (int64_t p = 0; p < k_pairs; ++p) {
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32 + 16));
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      int32_t pair;  // x[r][2p], x[r][2p+1]
      std::memcpy(&pair, x + r * stride + 2 * p, sizeof pair);
      const __m256i xr = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(xr, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(xr, w1));
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * kBlock), acc[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * kBlock + 8), acc[r][1]);
  }
}

void avx2_tile_rows(int64_t rows, const int16_t* x, const int16_t* block, int64_t k_pairs, int32_t* out) {
  switch (rows) {
    case 1: return avx2_tile<1>(x, block, k_pairs, out);
    case 2: return avx2_tile<2>(x, block, k_pairs, out);
    case 3: return avx2_tile<3>(x, block, k_pairs, out);
    case 4: return avx2_tile<4>(x, block, k_pairs, out);
    case 5: return avx2_tile<5>(x, block, k_pairs, out);
    default: return avx2_tile<kRows>(x, block, k_pairs, out);
  }
}

// Step (1) on the AVX2 path for every row and channel, handing each tile's accumulators to
// `emit(row, first_channel, channels, acc)`.
template <typename Emit>
void avx2_accumulate(const DynamicLinearActivation& x, const DynamicLinearWeights& w, Emit&& emit) {
  const PackedDynamicWeights& packed = w.packed;
  const int16_t* xs = widened_activations(x, w.in_features, packed.k_pairs);
  int32_t tile[kRows * kBlock];
  // Rows in chunks whose widened activations stay in L2 (about 128 KB), then blocks: one
  // block's weights (K x 16 int16, 16 KB at K = 512) stay in L1 while the chunk's rows pass.
  const int64_t chunk = std::max<int64_t>(kRows, (65536 / std::max<int64_t>(1, packed.k_pairs * 2)) / kRows * kRows);
  for (int64_t chunk_start = 0; chunk_start < x.rows; chunk_start += chunk)
  for (int64_t b = 0; b < packed.blocks; ++b) {
    for (int64_t row = chunk_start; row < std::min(x.rows, chunk_start + chunk); row += kRows) {
      const int64_t rows = std::min(kRows, std::min(x.rows, chunk_start + chunk) - row);
      avx2_tile_rows(rows, xs + row * packed.k_pairs * 2, packed.values.data() + b * packed.k_pairs * kBlock * 2,
                     packed.k_pairs, tile);
      const int64_t first = b * kBlock, channels = std::min(kBlock, w.out_features - first);
      for (int64_t r = 0; r < rows; ++r) {
        int32_t* t = tile + r * kBlock;
        for (int64_t j = 0; j < channels; ++j) t[j] -= x.zero_point * packed.centered_sums[first + j];
        emit(row + r, first, channels, t);
      }
    }
  }
}

bool avx2_applies(const DynamicLinearActivation& x, const DynamicLinearWeights& w) {
  return x.accumulation == Accumulation::Exact && !w.packed.values.empty() &&
         fastest_kernel_path() == KernelPath::Avx2;
}

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

void pack_weights(DynamicLinearWeights& w) {
  PackedDynamicWeights& p = w.packed;
  p.k_pairs = (w.in_features + 1) / 2;
  p.blocks = (w.out_features + kBlock - 1) / kBlock;
  p.values.assign(p.blocks * p.k_pairs * kBlock * 2, 0);
  p.centered_sums.assign(w.out_features, 0);
  for (int64_t n = 0; n < w.out_features; ++n) {
    const int64_t block = n / kBlock, lane = n % kBlock;
    for (int64_t k = 0; k < w.in_features; ++k) {
      const int32_t centered = w.values[n * w.in_features + k] - w.zero_points[n];  // |.| <= 255
      p.values[((block * p.k_pairs + k / 2) * kBlock + lane) * 2 + k % 2] = static_cast<int16_t>(centered);
      p.centered_sums[n] += centered;
    }
  }
}

KernelPath fastest_kernel_path() {
#if defined(QCONFORM_MUTATION_DROP_ZERO_POINT) || defined(QCONFORM_MUTATION_ROUND_HALF_AWAY)
  return KernelPath::Portable;
#else
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? KernelPath::Avx2 : KernelPath::Portable;
#endif
}

std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w, KernelPath path) {
  assert(w.in_features <= kMaxDynamicLinearK);
  std::vector<int32_t> acc(x.rows * w.out_features);
  if (path == KernelPath::Avx2) {
    if (w.packed.values.empty() || x.accumulation != Accumulation::Exact || !__builtin_cpu_supports("avx2"))
      throw std::logic_error("dynamic_linear_accumulators: the AVX2 path needs packed weights, exact "
                             "accumulation and an AVX2 CPU");
    avx2_accumulate(x, w, [&](int64_t row, int64_t first, int64_t channels, const int32_t* t) {
      std::copy(t, t + channels, acc.begin() + row * w.out_features + first);
    });
    return acc;
  }
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
  // (2) once per output channel: the multiplier does not depend on the row. (Scratch that
  // only grows: nothing is allocated per call once the largest layer has run.)
  thread_local std::vector<float> multiplier;
  multiplier.resize(w.out_features);
  for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel)
    multiplier[out_channel] = w.scales[out_channel] * x.scale;
  // (3) and (4) on one accumulator.
  const auto epilogue = [&](int32_t acc, int64_t out_channel) {
    const float scaled = static_cast<float>(acc) * multiplier[out_channel];
    const float value = bias ? scaled + bias[out_channel] : scaled;
    return relu && value < 0.0f ? 0.0f : value;
  };
  if (avx2_applies(x, w)) {
    avx2_accumulate(x, w, [&](int64_t row, int64_t first, int64_t channels, const int32_t* t) {
      float* y_row = y + row * w.out_features;
      for (int64_t j = 0; j < channels; ++j) y_row[first + j] = epilogue(t[j], first + j);
    });
    return;
  }

  for (int64_t row = 0; row < x.rows; ++row) {
    const int32_t* x_row = x.values + row * w.in_features;
    float* y_row = y + row * w.out_features;
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel) {
      const int32_t acc = accumulate_as(x, x_row, w.values.data() + out_channel * w.in_features,
                                        w.zero_points[out_channel], w.in_features);  // (1) or (1')
      y_row[out_channel] = epilogue(acc, out_channel);                            // (3), (4)
    }
  }
}

}  // namespace qconform::kernels
