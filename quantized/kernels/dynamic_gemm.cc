#include "quantized/kernels/dynamic_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <type_traits>

#include "core/cpu.h"
#include "core/error.h"
#include "quantized/kernels/requantize_simd.h"
#include "quantized/kernels/threads.h"

namespace qconform::kernels {
namespace {

constexpr int64_t kBlock = 16;  // output channels per packed block: two ymm of int32
constexpr int64_t kRows = 6;    // rows per register tile: 6 x 2 int32 accumulators

// ---- avx2-int16 ---------------------------------------------------------------------

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
__attribute__((target("avx2"))) void int16_tile(const int16_t* x, const int16_t* block, int64_t k_pairs,
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

// tile[r][j] -= x_zp * centered_sums[j] for a whole block (centered_sums is zero-padded to
// whole blocks, so the padding lanes stay zero).
__attribute__((target("avx2"))) void subtract_centered_terms(int64_t rows, int32_t x_zero_point,
                                                             const int32_t* centered_sums, int32_t* tile) {
  const __m256i zp = _mm256_set1_epi32(x_zero_point);
  const __m256i term0 = _mm256_mullo_epi32(zp, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(centered_sums)));
  const __m256i term1 = _mm256_mullo_epi32(zp, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(centered_sums + 8)));
  for (int64_t r = 0; r < rows; ++r) {
    __m256i* t = reinterpret_cast<__m256i*>(tile + r * kBlock);
    _mm256_storeu_si256(t, _mm256_sub_epi32(_mm256_loadu_si256(t), term0));
    _mm256_storeu_si256(t + 1, _mm256_sub_epi32(_mm256_loadu_si256(t + 1), term1));
  }
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

// Step (1) or (1') for every (row, output channel) pair: the specification.
void portable_accumulators(const DynamicLinearActivation& x, const DynamicLinearWeights& w, int32_t* acc) {
  for (int64_t row = 0; row < x.rows; ++row)
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel)
      acc[row * w.out_features + out_channel] =
          accumulate_as(x, x.values + row * w.in_features, w.values.data() + out_channel * w.in_features,
                        w.zero_points[out_channel], w.in_features);
}

}  // namespace

namespace {

// ---- u8 activations: avx2-int8 and the VNNI paths ------------------------------------

struct Int8Activations {
  const uint8_t* values = nullptr;  // rows x k_quads * 4, zero-padded
  const int32_t* row_terms = nullptr;  // per row: sum_k xq[k] - K x_zp
  // Or, instead of values, each row's K as segments read where they lie (U8Rows).
  const uint8_t* const* segments = nullptr;
  int64_t segment_count = 1, segment_quads = 0;
};

// Where a tile's rows are: row r's K quads s * quads .. (s + 1) * quads - 1 start at
// at[r * count + s]. A dense row is one segment of all k_quads; the convolution's rows are
// its kernel's runs read in the input itself (an indirection table, as XNNPACK's).
struct TileRows {
  const uint8_t* const* at;
  int64_t count;
  int64_t quads;
};

// The first multiple of 32 of a row of int32 activations to u8, 32 at a time; returns how
// many it converted. Sets a bit of *outside if any of them lies outside 0..max_value (127 or
// 255) and adds them to *sum. Packing with unsigned saturation is exact for values in 0..255,
// and only then is the row used.
__attribute__((target("avx2"))) int64_t int8_row_prefix(const int32_t* in, int64_t k, int32_t max_value, uint8_t* out,
                                                        uint32_t* outside, int32_t* sum) {
  // The lambda needs the target too: it does not inherit the function's (an AVX2-less build).
  const auto load = [&](int64_t i) __attribute__((target("avx2"))) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
  };
  const __m256i high_bits = _mm256_set1_epi32(~max_value);
  __m256i any_high = _mm256_setzero_si256(), sums = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m256i a = load(i), b = load(i + 8), c = load(i + 16), d = load(i + 24);
    any_high = _mm256_or_si256(any_high, _mm256_and_si256(_mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)),
                                                          high_bits));
    sums = _mm256_add_epi32(sums, _mm256_add_epi32(_mm256_add_epi32(a, b), _mm256_add_epi32(c, d)));
    // packus works within 128-bit lanes: a0 b0 c0 d0 a1 b1 c1 d1 (4 values each); the
    // permutation restores a b c d.
    const __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
  for (int32_t lane : lanes) *sum += lane;
  *outside |= _mm256_movemask_epi8(_mm256_cmpeq_epi32(any_high, _mm256_setzero_si256())) != -1 ? 1u << 31 : 0u;
  return i;
}

// The activations as u8, K padded to a multiple of 4 with zeros, and each row's
// sum_k xq[k] - K x_zp; nullopt if a value lies outside 0..max_value (127 where vpmaddubsw
// must not saturate, 255 for the VNNI paths and the saturating emulation). Scratch that only
// grows, as for int16.
std::optional<Int8Activations> int8_activations(const DynamicLinearActivation& x, int64_t k, int64_t k_quads,
                                                int32_t max_value) {
  thread_local std::vector<uint8_t> scratch;
  thread_local std::vector<int32_t> row_terms;
  const size_t needed = static_cast<size_t>(x.rows * k_quads * 4);
  if (scratch.size() < needed) scratch.resize(needed);
  if (row_terms.size() < static_cast<size_t>(x.rows)) row_terms.resize(x.rows);
  const uint32_t high_bits = ~static_cast<uint32_t>(max_value);
  uint8_t* const bytes = scratch.data();
  int32_t* const terms = row_terms.data();
  // One row; false if a value lies outside 0..max_value (what was written is then unused).
  const auto convert = [&](int64_t row) {
    uint8_t* out = bytes + row * k_quads * 4;
    const int32_t* in = x.values + row * k;
    int32_t sum = 0;  // |.| <= 255 K: int32 (K <= kMaxDynamicLinearK)
    uint32_t outside = 0;  // any bit above max_value's: a value outside 0..max_value
    int64_t i = int8_row_prefix(in, k, max_value, out, &outside, &sum);
    for (; i < k; ++i) {
      outside |= static_cast<uint32_t>(in[i]) & high_bits;
      out[i] = static_cast<uint8_t>(in[i]);
      sum += in[i];
    }
    for (int64_t j = k; j < k_quads * 4; ++j) out[j] = 0;
    terms[row] = sum - static_cast<int32_t>(k) * x.zero_point;
    return outside == 0;
  };
  // 8-bit activations usually show in the first row: stop there rather than convert all.
  if (x.rows > 0 && !convert(0)) return std::nullopt;
  // The other rows in parts of at least 2^13 values across the kernel threads (an LSTM's input
  // projection, its hidden projection at miniBatch 64, where they come as int32: onednn's rule
  // on an AVX2 host; two threads' LSTM 1.68-1.71x -> 1.70-1.83x with 2^13 instead of 2^14, when
  // every host took this path); each row's bytes and term are its own, whoever converts it.
  const int64_t parts = std::min<int64_t>(kernel_threads(), (x.rows - 1) * k >> 13);
  if (parts <= 1) {
    for (int64_t row = 1; row < x.rows; ++row)
      if (!convert(row)) return std::nullopt;
  } else {
    std::vector<char> inside(parts, 1);
    parallel_for(parts, [&](int64_t part) {
      for (int64_t row = 1 + (x.rows - 1) * part / parts; row < 1 + (x.rows - 1) * (part + 1) / parts; ++row)
        if (!convert(row)) {
          inside[part] = 0;
          return;
        }
    });
    if (std::find(inside.begin(), inside.end(), 0) != inside.end()) return std::nullopt;
  }
  return Int8Activations{bytes, terms};
}

// The zero-point terms of (1) expanded, for one block of 16 channels (two adjacent blocks for
// the zmm tile: the arrays are whole blocks long):
//   column[j] = -x_zp sum_k wq[j][k]   and, when weights have zero points, -w_zp[j] row_term[r].
// A tile's accumulators start from them, so that its registers hold the corrected sum when
// its multiply loop ends (wrapping int32: the order of the additions does not change the
// result, see the header).
struct Int8Corrections {
  const int32_t* column;          // 16 values per block
  const int32_t* weight_zero_points;  // 16 values per block, or null for symmetric weights
  const int32_t* row_terms;       // one per tile row: sum_k xq[k] - K x_zp
};

// Where a tile's corrected accumulators go: `channels` of the tile's lanes of row r to
// row_start + r * stride, as int32 (dynamic_linear_accumulators, the static kernels'
// accumulators), through steps (3)-(4) as floats (dynamic_linear), or requantized to bytes
// (static_gemm.h's (4)-(6): u8_requantized). Exactly one of accumulators, y and bytes is set.
struct TileOutput {
  int32_t* accumulators = nullptr;
  float* y = nullptr;
  uint8_t* bytes = nullptr;
  int64_t stride = 0;
  int64_t channels = 16;
  const float* multiplier = nullptr;  // one per channel, zero-padded to whole blocks (floats only)
  const float* bias = nullptr;        // the same; null for none
  bool relu = false;
  RequantizeLanes requantize{};       // bytes only: from the tile's first channel
};

// A row's 16 requantized channels (int32 in 0..255) as bytes, the first `channels` stored.
inline void store_bytes(uint8_t* out, __m128i bytes, int64_t channels) {
  if (channels >= 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
  else {
    alignas(16) uint8_t lanes[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), bytes);
    std::memcpy(out, lanes, channels);
  }
}

// Stores the first `channels` of a row's 16 lanes (all of them with two stores when the
// block is whole; the last block of an N that is not a multiple of 16 goes through a copy).
template <typename Element, typename Vector>
__attribute__((target("avx2"))) inline void store_lanes(Element* out, Vector low, Vector high, int64_t channels) {
  static_assert(sizeof(Vector) == 32 && sizeof(Element) == 4, "8 lanes of 4 bytes");
  alignas(32) Element lanes[kBlock];
  Element* target = channels == kBlock ? out : lanes;
  std::memcpy(target, &low, 32);
  std::memcpy(target + 8, &high, 32);
  if (target == lanes) std::memcpy(out, lanes, channels * sizeof(Element));
}

// Steps (3) and (4) for 8 channels at once: the same operations as the scalar epilogue,
// each rounded once (int32 -> float conversion, product, sum), so the same floats. ReLU as
// max(0, y), which keeps NaN and -0 as the scalar `y < 0 ? 0 : y` does.
__attribute__((target("avx2"))) inline __m256 epilogue8(__m256i acc, const float* multiplier, const float* bias,
                                                        bool relu) {
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(multiplier));
  if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
  if (relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);
  return v;
}

// One row of a 16-channel block's accumulators to the tile's output (the int16 path's
// tiles, which leave their sums in memory).
__attribute__((target("avx2"))) void emit_block_row(const int32_t* acc, const TileOutput& output, int64_t r) {
  const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
  const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 8));
  if (output.accumulators) {
    store_lanes(output.accumulators + r * output.stride, low, high, output.channels);
  } else {
    const float* bias1 = output.bias ? output.bias + 8 : nullptr;
    store_lanes(output.y + r * output.stride, epilogue8(low, output.multiplier, output.bias, output.relu),
                epilogue8(high, output.multiplier + 8, bias1, output.relu), output.channels);
  }
}

// A tile's starting accumulators for one block of 16 channels and row r, as two ymm.
template <typename Load>
__attribute__((target("avx2"))) inline void int8_start(const Int8Corrections& c, int r, int64_t block, Load load,
                                                        __m256i* low, __m256i* high) {
  *low = load(c.column + block * kBlock);
  *high = load(c.column + block * kBlock + 8);
  if (c.weight_zero_points) {
    const __m256i row_term = _mm256_set1_epi32(c.row_terms[r]);
    *low = _mm256_sub_epi32(*low, _mm256_mullo_epi32(load(c.weight_zero_points + block * kBlock), row_term));
    *high = _mm256_sub_epi32(*high, _mm256_mullo_epi32(load(c.weight_zero_points + block * kBlock + 8), row_term));
  }
}

// A ymm tile's Rows x 16 corrected accumulators to its output (int32, or floats through (3)-(4)).
template <int Rows>
__attribute__((target("avx2"))) inline void store_tile(const __m256i (&acc)[Rows][2], const TileOutput& output) {
  const float* bias1 = output.bias ? output.bias + 8 : nullptr;
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) {
    if (output.bytes) {  // int32 in 0..255 -> int16 -> u8, order kept (128-bit packs)
      const __m256i q0 = requantize8(output.requantize, acc[r][0], 0), q1 = requantize8(output.requantize, acc[r][1], 8);
      const __m128i low = _mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1));
      const __m128i high = _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1));
      store_bytes(output.bytes + r * output.stride, _mm_packus_epi16(low, high), output.channels);
    } else if (output.accumulators) {
      store_lanes(output.accumulators + r * output.stride, acc[r][0], acc[r][1], output.channels);
    } else {
      store_lanes(output.y + r * output.stride, epilogue8(acc[r][0], output.multiplier, output.bias, output.relu),
                  epilogue8(acc[r][1], output.multiplier + 8, bias1, output.relu), output.channels);
    }
  }
}

// Step (1) (or (1')) for Rows rows and one block of 16 channels, 4 K per step, then the
// output. Rows x 2 accumulators, 2 weight vectors, the broadcast and the ones: 6 rows would
// need 17 registers, so 5. The loop is the kernel's hot path (vpbroadcastd, then per weight
// vector vpmaddubsw, vpmaddwd, vpaddd); everything else runs once per tile.
constexpr int kInt8Rows = 5;
template <int Rows>
__attribute__((target("avx2"))) void int8_tile(const TileRows& x, const int8_t* block, const Int8Corrections& corrections,
                                               const TileOutput& output) {
  const auto load = [](const int32_t* p) __attribute__((target("avx2"))) {  // (as in int8_row_prefix)
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  __m256i acc[Rows][2];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) int8_start(corrections, r, 0, load, &acc[r][0], &acc[r][1]);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t s = 0; s < x.count; ++s, block += x.quads * 64) {
    const uint8_t* row[Rows];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) row[r] = x.at[r * x.count + s];
    // Two K-steps per iteration: 2-5 % faster over whole GEMMs (paired runs against the loop
    // taken one step at a time, 64 and 6400 rows x 512 -> 2048); four gained nothing more.
#pragma GCC unroll 2
    for (int64_t q = 0; q < x.quads; ++q) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q * 64));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q * 64 + 32));
#pragma GCC unroll 8
      for (int r = 0; r < Rows; ++r) {
        int32_t quad;  // x[r][4q .. 4q+3] of this segment
        std::memcpy(&quad, row[r] + 4 * q, sizeof quad);
        const __m256i xr = _mm256_set1_epi32(quad);
        // u8 x s8 pairs into int16 (saturating only where (1') asks it), then pairs of those into int32.
        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(xr, w0), ones));
        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(xr, w1), ones));
      }
    }
  }
  store_tile<Rows>(acc, output);
}

// avx-vnni: int8_tile's shape with one vpdpbusd (VEX) per weight vector instead of the three
// instructions; 6 rows (12 accumulators, 2 weight vectors, the broadcast: 15 registers).
constexpr int kAvxVnniRows = 6;
template <int Rows>
__attribute__((target("avx2,avxvnni"))) void avx_vnni_tile(const TileRows& x, const int8_t* block,
                                                          const Int8Corrections& corrections,
                                                          const TileOutput& output) {
  const auto load = [](const int32_t* p) __attribute__((target("avx2"))) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  __m256i acc[Rows][2];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r) int8_start(corrections, r, 0, load, &acc[r][0], &acc[r][1]);
  for (int64_t s = 0; s < x.count; ++s, block += x.quads * 64) {
    const uint8_t* row[Rows];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) row[r] = x.at[r * x.count + s];
#pragma GCC unroll 2
    for (int64_t q = 0; q < x.quads; ++q) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q * 64));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q * 64 + 32));
#pragma GCC unroll 8
      for (int r = 0; r < Rows; ++r) {
        int32_t quad;  // x[r][4q .. 4q+3] of this segment
        std::memcpy(&quad, row[r] + 4 * q, sizeof quad);
        const __m256i xr = _mm256_set1_epi32(quad);
        acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], xr, w0);  // four u8 x s8 products, exact
        acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], xr, w1);
      }
    }
  }
  store_tile<Rows>(acc, output);
}

// avx512-vnni: Rows rows x Blocks blocks of 16 channels, one zmm accumulator each (6 x 4:
// 24 accumulators, 4 weight vectors, the broadcast, of 32 registers). Per K quad: Blocks
// weight loads and Rows broadcasts for Rows x Blocks vpdpbusd. A partial last block is
// written with a lane mask.
constexpr int kVnni512Rows = 6, kVnni512Blocks = 4;
// GCC 12 warns that _mm512_cvtepi32_ps and _mm512_max_ps read an uninitialised vector: their
// headers pass _mm512_undefined_ps() as the unused merge source (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int Rows, int Blocks>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void avx512_vnni_tile(const TileRows& x, const int8_t* block,
                                                                             int64_t k_quads,
                                                                             const Int8Corrections& c,
                                                                             const TileOutput& output) {
  __m512i acc[Rows][Blocks];
#pragma GCC unroll 8
  for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
    for (int b = 0; b < Blocks; ++b) {
      acc[r][b] = _mm512_loadu_si512(c.column + b * kBlock);
      if (c.weight_zero_points)
        acc[r][b] = _mm512_sub_epi32(acc[r][b], _mm512_mullo_epi32(_mm512_loadu_si512(c.weight_zero_points + b * kBlock),
                                                                   _mm512_set1_epi32(c.row_terms[r])));
    }
  const int64_t block_bytes = k_quads * 64;
  for (int64_t s = 0; s < x.count; ++s, block += x.quads * 64) {
    const uint8_t* row[Rows];
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) row[r] = x.at[r * x.count + s];
#pragma GCC unroll 2
    for (int64_t q = 0; q < x.quads; ++q) {
      __m512i w[Blocks];
#pragma GCC unroll 4
      for (int b = 0; b < Blocks; ++b) w[b] = _mm512_loadu_si512(block + b * block_bytes + q * 64);
#pragma GCC unroll 8
      for (int r = 0; r < Rows; ++r) {
        int32_t quad;  // x[r][4q .. 4q+3] of this segment
        std::memcpy(&quad, row[r] + 4 * q, sizeof quad);
        const __m512i xr = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
        for (int b = 0; b < Blocks; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xr, w[b]);  // exact
      }
    }
  }
#pragma GCC unroll 4
  for (int b = 0; b < Blocks; ++b) {
    const int64_t channels = std::min<int64_t>(kBlock, output.channels - b * kBlock);
    if (channels <= 0) break;
    const __mmask16 lanes = static_cast<__mmask16>((1u << channels) - 1);
    const __m512 multiplier = output.y ? _mm512_loadu_ps(output.multiplier + b * kBlock) : _mm512_setzero_ps();
    const __m512 bias = output.bias ? _mm512_loadu_ps(output.bias + b * kBlock) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < Rows; ++r) {
      if (output.bytes) {  // (4)-(6), then each int32 lane (0..255) to its byte
        store_bytes(output.bytes + r * output.stride + b * kBlock,
                    _mm512_cvtepi32_epi8(requantize16(output.requantize, acc[r][b], b * kBlock)), channels);
      } else if (output.accumulators) {
        _mm512_mask_storeu_epi32(output.accumulators + r * output.stride + b * kBlock, lanes, acc[r][b]);
      } else {  // (3), (4): as epilogue8, 16 lanes
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][b]), multiplier);
        if (output.bias) v = _mm512_add_ps(v, bias);
        if (output.relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
        _mm512_mask_storeu_ps(output.y + r * output.stride + b * kBlock, lanes, v);
      }
    }
  }
}

#pragma GCC diagnostic pop

// ---- every SIMD path ----------------------------------------------------------------

// Every (row, column) tile, a column being `block_bytes` of weights (one block, or the zmm
// tile's two): rows in chunks, then columns, so that one column's weights stay in L1 while
// the chunk's rows pass. Calls `tile(first_row, rows, column)`. A chunk's activations and
// one column's weights fill L1 (32 KB) where the column leaves room for two tiles' rows
// there; otherwise the activations stay in L2 (128 KB). Measured in paired runs (6400 rows
// x 512 -> 2048, the LSTM's input projection): 24 KB chunks for int8 and 16 KB for int16
// took 0.95-0.96 and 0.95-0.97 of the time that 128 KB chunks took; at 64 rows (a hidden
// projection) no difference (0.98-1.03 with chunks of 16 to 24 KB).
//
// The (chunk, column) pairs are the units the kernel threads share (threads.h); one thread
// takes them in the order a single thread would. The static schedule hands each thread a
// contiguous range of units, so chunks must cost alike: the rows are cut into as many chunks
// as the cache budget needs, of equal size (within a row), not into budget-sized chunks and
// a remainder. (With the remainder, an LSTM step's 64 rows on the avx2-int8 tile were chunks
// of 45 and 19 rows, one per thread: the LSTM on two threads 1.35-1.42x one thread's speed,
// 1.79-1.81x with equal chunks, alternating runs on the Intel Xeon of 2026-12-07 held to the
// avx2 path. Splitting such few rows by columns instead, so that each thread reads half the
// weights, measured no different.)
// Below kMinParallelMacs a call stays on the calling thread: waking the pool costs more than
// it saves (an LSTM step at miniBatch 1).
constexpr int64_t kMinParallelMacs = int64_t{1} << 20;
template <typename Tile>
void for_each_tile(int64_t rows, int64_t row_bytes, int64_t block_bytes, int64_t tile_rows, int64_t columns,
                   int64_t macs, Tile&& tile) {
  constexpr int64_t kL1Bytes = 32768, kL2ChunkBytes = 131072;
  row_bytes = std::max<int64_t>(1, row_bytes);
  const int64_t l1_rows = (kL1Bytes - block_bytes) / row_bytes / tile_rows * tile_rows;
  const int64_t budget = l1_rows >= 2 * tile_rows ? l1_rows
                                                  : std::max<int64_t>(tile_rows, kL2ChunkBytes / row_bytes / tile_rows * tile_rows);
  const int64_t chunks = (rows + budget - 1) / budget;
  const auto unit = [&](int64_t u) {
    const int64_t c = u / columns, column = u % columns;
    const int64_t chunk_start = rows * c / chunks, chunk_end = rows * (c + 1) / chunks;
    for (int64_t row = chunk_start; row < chunk_end; row += tile_rows)
      tile(row, std::min(tile_rows, chunk_end - row), column);
  };
  if (macs < kMinParallelMacs) {
    for (int64_t u = 0; u < chunks * columns; ++u) unit(u);
  } else {
    parallel_for(chunks * columns, unit);
  }
}

// avx2-int16's corrected accumulators, tile by tile, to `output` (row 0 at its pointers).
void avx2_int16(const DynamicLinearActivation& x, const DynamicLinearWeights& w, const TileOutput& output) {
  const PackedDynamicWeights& packed = w.packed;
  const int16_t* xs = widened_activations(x, w.in_features, packed.k_pairs);
  const int64_t row_elements = packed.k_pairs * 2;
  const int64_t block_bytes = packed.k_pairs * kBlock * 2 * sizeof(int16_t);
  const int64_t macs = x.rows * w.in_features * w.out_features;
  for_each_tile(x.rows, row_elements * 2, block_bytes, kRows, packed.blocks, macs, [&](int64_t row, int64_t n, int64_t b) {
    alignas(32) int32_t out[kRows * kBlock];
    const int16_t* block = packed.values.data() + b * packed.k_pairs * kBlock * 2;
    const int16_t* rows = xs + row * row_elements;
    switch (n) {
      case 1: int16_tile<1>(rows, block, packed.k_pairs, out); break;
      case 2: int16_tile<2>(rows, block, packed.k_pairs, out); break;
      case 3: int16_tile<3>(rows, block, packed.k_pairs, out); break;
      case 4: int16_tile<4>(rows, block, packed.k_pairs, out); break;
      case 5: int16_tile<5>(rows, block, packed.k_pairs, out); break;
      default: int16_tile<kRows>(rows, block, packed.k_pairs, out); break;
    }
    subtract_centered_terms(n, x.zero_point, packed.centered_sums.data() + b * kBlock, out);
    const int64_t first = b * kBlock, offset = row * output.stride + first;
    TileOutput tile = output;
    tile.channels = std::min(kBlock, w.out_features - first);
    if (tile.accumulators) tile.accumulators += offset;
    if (tile.y) tile.y += offset;
    if (tile.multiplier) tile.multiplier += first;
    if (tile.bias) tile.bias += first;
    for (int64_t r = 0; r < n; ++r) emit_block_row(out + r * kBlock, tile, r);
  });
}

// Calls tile<rows>() for the n in 1..Max rows a tile has (a template argument each, so that
// the accumulators stay in registers).
template <int Max, typename Call>
void with_rows(int64_t n, Call&& call) {
  if constexpr (Max > 1) {
    if (n < Max) return with_rows<Max - 1>(n, call);
  }
  call(std::integral_constant<int, Max>{});
}

// avx2-int8, avx-vnni or avx512-vnni over every tile of the rows x N output whose row 0
// starts at `output.y` or `output.accumulators`; `output` says what each tile writes (its
// pointers are offset per tile).
void int8_gemm(KernelPath path, const DynamicLinearActivation& x, const Int8Activations& xs,
               const DynamicLinearWeights& w, const TileOutput& output) {
  const PackedDynamicWeights& packed = w.packed;
  // -x_zp sum_k wq[n][k] per channel, once per call (zero past N, as sums is).
  thread_local std::vector<int32_t> column;
  column.resize(packed.sums.size());
  for (size_t n = 0; n < column.size(); ++n)
    column[n] = static_cast<int32_t>(0u - static_cast<uint32_t>(x.zero_point) * static_cast<uint32_t>(packed.sums[n]));
  const int64_t row_bytes = packed.k_quads * 4;
  const int64_t block_bytes = packed.k_quads * kBlock * 4;
  const int64_t blocks_per_column = path == KernelPath::Avx512Vnni ? kVnni512Blocks : 1;
  const int64_t columns = (packed.blocks + blocks_per_column - 1) / blocks_per_column;
  const int64_t tile_rows = path == KernelPath::Avx512Vnni ? kVnni512Rows
                            : path == KernelPath::AvxVnni  ? kAvxVnniRows
                                                           : kInt8Rows;
  const int64_t macs = x.rows * w.in_features * w.out_features;
  const int32_t* columns_data = column.data();
  for_each_tile(x.rows, row_bytes, block_bytes * blocks_per_column, tile_rows, columns, macs,
                [&](int64_t row, int64_t n, int64_t c) {
    const int64_t b = c * blocks_per_column, first = b * kBlock;
    const int8_t* block = packed.int8_values.data() + b * packed.k_quads * kBlock * 4;
    const uint8_t* dense[std::max({kInt8Rows, kAvxVnniRows, kVnni512Rows})];  // the most rows of any tile
    TileRows rows{dense, 1, packed.k_quads};
    if (xs.segments) {
      rows = {xs.segments + row * xs.segment_count, xs.segment_count, xs.segment_quads};
    } else {
      for (int64_t r = 0; r < n; ++r) dense[r] = xs.values + (row + r) * row_bytes;
    }
    const Int8Corrections corrections{columns_data + first,
                                      packed.has_weight_zero_points ? packed.zero_points.data() + first : nullptr,
                                      xs.row_terms + row};
    const int64_t offset = row * output.stride + first;
    TileOutput tile = output;
    tile.channels = std::min(kBlock * blocks_per_column, w.out_features - first);
    if (tile.accumulators) tile.accumulators += offset;
    if (tile.y) tile.y += offset;
    if (tile.multiplier) tile.multiplier += first;
    if (tile.bias) tile.bias += first;
    if (tile.bytes) {
      tile.bytes += offset;
      tile.requantize.qbias += first;
      tile.requantize.multiplier += first;
      if (tile.requantize.bias) tile.requantize.bias += first;
    }
    if (path == KernelPath::Avx512Vnni) {
      const int64_t present = std::min<int64_t>(kVnni512Blocks, packed.blocks - b);  // the last column's may be fewer
      with_rows<kVnni512Rows>(n, [&](auto rows_n) {
        constexpr int R = decltype(rows_n)::value;
        switch (present) {
          case 1: avx512_vnni_tile<R, 1>(rows, block, packed.k_quads, corrections, tile); break;
          case 2: avx512_vnni_tile<R, 2>(rows, block, packed.k_quads, corrections, tile); break;
          case 3: avx512_vnni_tile<R, 3>(rows, block, packed.k_quads, corrections, tile); break;
          default: avx512_vnni_tile<R, kVnni512Blocks>(rows, block, packed.k_quads, corrections, tile); break;
        }
      });
    } else if (path == KernelPath::AvxVnni) {
      with_rows<kAvxVnniRows>(n, [&](auto rows_n) { avx_vnni_tile<decltype(rows_n)::value>(rows, block, corrections, tile); });
    } else {
      with_rows<kInt8Rows>(n, [&](auto rows_n) { int8_tile<decltype(rows_n)::value>(rows, block, corrections, tile); });
    }
  });
}

// Whether this CPU has `path`'s instructions (whatever QCONFORM_KERNEL_ISA says).
bool cpu_has_path(KernelPath path) {
  switch (path) {
    case KernelPath::Portable: return true;
    case KernelPath::Avx2Int16:
    case KernelPath::Avx2Int8: return cpu_has_avx2();
    case KernelPath::AvxVnni: return cpu_has_avx2() && cpu_has_avx_vnni();
    case KernelPath::Avx512Vnni: return cpu_has_avx512_vnni();
  }
  return false;
}

// Step (1) or (1') on `path` (Portable: the best one that applies) into `output`; false
// when no SIMD path applies, or, for an explicit path, throws std::logic_error saying why.
bool simd_sums(const DynamicLinearActivation& x, const DynamicLinearWeights& w, const TileOutput& output,
               std::optional<KernelPath> explicit_path) {
  const auto refuse = [&](const std::string& why) {
    if (explicit_path) throw std::logic_error("dynamic_linear_accumulators: " + to_string(*explicit_path) + " " + why);
    return false;
  };
  if (w.packed.values.empty()) return refuse("needs packed weights (pack_weights)");
  const bool saturating = x.accumulation == Accumulation::PairwiseInt16Saturation;
  KernelPath path = explicit_path.value_or(exact_kernel_path());
  if (explicit_path && !cpu_has_path(*explicit_path)) return refuse("needs instructions this CPU does not have");
  if (path == KernelPath::Portable) return false;
  if (saturating) {
    // (1'): vpmaddubsw's own saturation, for symmetric weights (the engines' int16 pairs).
    if (path != KernelPath::Avx2Int8 && explicit_path) return refuse("does not compute (1')");
    if (w.packed.has_weight_zero_points) return refuse("computes (1') for symmetric weights only");
    const auto xs = int8_activations(x, w.in_features, w.packed.k_quads, 255);
    if (!xs) return refuse("needs activations in 0..255");
    int8_gemm(KernelPath::Avx2Int8, x, *xs, w, output);
    return true;
  }
  if (path == KernelPath::Avx2Int16 && !explicit_path) {  // 7-bit activations take avx2-int8
    if (const auto xs = int8_activations(x, w.in_features, w.packed.k_quads, 127)) {
      int8_gemm(KernelPath::Avx2Int8, x, *xs, w, output);
      return true;
    }
  }
  if (path == KernelPath::Avx2Int16) {
    avx2_int16(x, w, output);
    return true;
  }
  const int32_t max_value = path == KernelPath::Avx2Int8 ? 127 : 255;
  if (const auto xs = int8_activations(x, w.in_features, w.packed.k_quads, max_value)) {
    int8_gemm(path, x, *xs, w, output);
    return true;
  }
  // Values no u8 tensor holds (none of the modules passes them): the portable loops.
  return refuse("needs activations in 0.." + std::to_string(max_value));
}

}  // namespace

void pack_weights(DynamicLinearWeights& w) {
  PackedDynamicWeights& p = w.packed;
  p.blocks = (w.out_features + kBlock - 1) / kBlock;
  p.k_pairs = (w.in_features + 1) / 2;
  p.k_quads = (w.in_features + 3) / 4;
  p.values.assign(p.blocks * p.k_pairs * kBlock * 2, 0);
  p.int8_values.assign(p.blocks * p.k_quads * kBlock * 4, 0);
  p.centered_sums.assign(p.blocks * kBlock, 0);  // zero-padded to whole blocks
  p.sums.assign(p.blocks * kBlock, 0);
  p.zero_points.assign(p.blocks * kBlock, 0);
  p.has_weight_zero_points = false;
  for (int64_t n = 0; n < w.out_features; ++n) {
    const int64_t block = n / kBlock, lane = n % kBlock;
    p.zero_points[n] = w.zero_points[n];
    p.has_weight_zero_points |= w.zero_points[n] != 0;
    for (int64_t k = 0; k < w.in_features; ++k) {
      const int32_t value = w.values[n * w.in_features + k];  // qint8: -128..127
      const int32_t centered = value - w.zero_points[n];       // |.| <= 255
      p.values[((block * p.k_pairs + k / 2) * kBlock + lane) * 2 + k % 2] = static_cast<int16_t>(centered);
      p.int8_values[((block * p.k_quads + k / 4) * kBlock + lane) * 4 + k % 4] = static_cast<int8_t>(value);
      p.centered_sums[n] += centered;
      p.sums[n] += value;
    }
  }
}

std::string to_string(KernelPath path) {
  switch (path) {
    case KernelPath::Portable: return "portable";
    case KernelPath::Avx2Int16: return "avx2-int16";
    case KernelPath::Avx2Int8: return "avx2-int8";
    case KernelPath::AvxVnni: return "avx-vnni";
    case KernelPath::Avx512Vnni: return "avx512-vnni";
  }
  return "?";
}

KernelPath exact_kernel_path() {
  static const KernelPath path = [] {
#if defined(QCONFORM_MUTATION_DROP_ZERO_POINT) || defined(QCONFORM_MUTATION_ROUND_HALF_AWAY)
    return KernelPath::Portable;
#endif
    KernelPath best = KernelPath::Portable;
    for (KernelPath better : {KernelPath::Avx2Int16, KernelPath::AvxVnni, KernelPath::Avx512Vnni})
      if (cpu_has_path(better)) best = better;
    const std::optional<std::string> cap = kernel_isa_cap();  // validated there
    if (!cap) return best;
    const KernelPath wanted = *cap == "portable"   ? KernelPath::Portable
                              : *cap == "avx2"     ? KernelPath::Avx2Int16
                              : *cap == "avx_vnni" ? KernelPath::AvxVnni
                                                   : KernelPath::Avx512Vnni;
    if (!cpu_has_path(wanted)) throw Error("QCONFORM_KERNEL_ISA=" + *cap + ": this CPU does not have it");
    return wanted;
  }();
  return path;
}

std::vector<int32_t> dynamic_linear_accumulators(const DynamicLinearActivation& x,
                                                 const DynamicLinearWeights& w, KernelPath path) {
  assert(w.in_features <= kMaxDynamicLinearK);
  std::vector<int32_t> acc(x.rows * w.out_features);
  if (path != KernelPath::Portable) {
    // An explicit path, whatever exact_kernel_path says: the tests exercise every path the
    // CPU has, in mutation builds too.
    TileOutput output;
    output.accumulators = acc.data();
    output.stride = w.out_features;
    simd_sums(x, w, output, path);
    return acc;
  }
  portable_accumulators(x, w, acc.data());
  return acc;
}

void fast_accumulators(const DynamicLinearActivation& x, const DynamicLinearWeights& w, int32_t* acc) {
  assert(w.in_features <= kMaxDynamicLinearK);
  TileOutput output;
  output.accumulators = acc;
  output.stride = w.out_features;
  if (!simd_sums(x, w, output, std::nullopt)) portable_accumulators(x, w, acc);
}

bool u8_rows_supported(bool seven_bit) {
  const KernelPath best = exact_kernel_path();
  return best == KernelPath::Avx512Vnni || best == KernelPath::AvxVnni || (best == KernelPath::Avx2Int16 && seven_bit);
}

bool u8_pair_rows_supported() { return exact_kernel_path() != KernelPath::Portable; }

namespace {

// u8_accumulators and u8_requantized: (1) on the best exact u8 path, or (1') on avx2-int8,
// tile by tile into `output`.
bool u8_gemm(const U8Rows& x, const DynamicLinearWeights& w, TileOutput output) {
  const bool pairs = x.accumulation == Accumulation::PairwiseInt16Saturation;
  if (pairs ? !u8_pair_rows_supported() || w.packed.has_weight_zero_points : !u8_rows_supported(x.seven_bit)) return false;
  if (w.packed.int8_values.empty()) return false;
  if (x.segment_count * x.segment_quads != w.packed.k_quads || x.segment_bytes > x.segment_quads * 4)
    throw std::logic_error("u8 rows: segments of " + std::to_string(x.segment_count) + " x " +
                           std::to_string(x.segment_quads) + " quads do not match the weights' " +
                           std::to_string(w.packed.k_quads));
  // (1'): vpmaddubsw's saturation is the accumulation itself (the header), so avx2-int8 even
  // where VNNI's exact tiles exist. (1): the best path (avx2-int8 on 7-bit rows without VNNI).
  const KernelPath best = exact_kernel_path();
  const KernelPath path = pairs || best == KernelPath::Avx2Int16 ? KernelPath::Avx2Int8 : best;
  // sum_k xq[k] - K x_zp per row, needed only against weight zero points (Int8Corrections).
  thread_local std::vector<int32_t> row_terms;
  row_terms.assign(x.rows, 0);
  if (w.packed.has_weight_zero_points)
    for (int64_t r = 0; r < x.rows; ++r) {
      int32_t sum = 0;
      for (int64_t s = 0; s < x.segment_count; ++s) {
        const uint8_t* run = x.segments[r * x.segment_count + s];
        for (int64_t k = 0; k < x.segment_bytes; ++k) sum += run[k];
      }
      row_terms[r] = sum - static_cast<int32_t>(x.segment_count * x.segment_bytes) * x.zero_point;
    }
  const DynamicLinearActivation activation{nullptr, x.rows, 1.0f, x.zero_point};
  Int8Activations xs;
  xs.row_terms = row_terms.data();
  xs.segments = x.segments;
  xs.segment_count = x.segment_count;
  xs.segment_quads = x.segment_quads;
  int8_gemm(path, activation, xs, w, output);
  return true;
}

}  // namespace

bool u8_accumulators(const U8Rows& x, const DynamicLinearWeights& w, int32_t* acc) {
  TileOutput output;
  output.accumulators = acc;
  output.stride = w.out_features;
  return u8_gemm(x, w, output);
}

bool u8_requantized(const U8Rows& x, const StaticLinearWeights& w, const Requantizer& r, uint8_t* y, int64_t stride) {
  if (!r.simd_exact) return false;
  TileOutput output;
  output.bytes = y;
  output.stride = stride;
  output.requantize = lanes_from(r, 0);
  return u8_gemm(x, w.integers, output);
}

namespace {

// The tiles' float output, steps (3)-(4) on their registers: y, rows of out_features, and
// (2) once per output channel, since the multiplier does not depend on the row. Multiplier
// and bias zero-padded to whole blocks, as the tiles read 16 channels at a time (scratch
// that only grows: nothing is allocated per call once the largest layer has run; valid
// until the thread's next call).
TileOutput float_output(float x_scale, const DynamicLinearWeights& w, const float* bias, bool relu, float* y) {
  const int64_t n_out = w.out_features;
  thread_local std::vector<float> multiplier;
  multiplier.assign(std::max(n_out, w.packed.blocks * kBlock), 0.0f);
  for (int64_t out_channel = 0; out_channel < n_out; ++out_channel)
    multiplier[out_channel] = w.scales[out_channel] * x_scale;
  thread_local std::vector<float> padded_bias;
  if (bias) {
    padded_bias.assign(multiplier.size(), 0.0f);
    std::copy(bias, bias + n_out, padded_bias.begin());
  }
  TileOutput output;
  output.y = y;
  output.stride = n_out;
  output.multiplier = multiplier.data();
  output.bias = bias ? padded_bias.data() : nullptr;
  output.relu = relu;
  return output;
}

}  // namespace

bool dynamic_linear_u8(const U8Rows& x, float x_scale, const DynamicLinearWeights& w, const float* bias, bool relu,
                       float* y) {
  assert(w.in_features <= kMaxDynamicLinearK);
  if (!u8_rows_supported(x.seven_bit) || w.packed.int8_values.empty()) return false;
  return u8_gemm(x, w, float_output(x_scale, w, bias, relu, y));
}

void dynamic_linear(const DynamicLinearActivation& x, const DynamicLinearWeights& w,
                    const float* bias, bool relu, float* y) {
  assert(w.in_features <= kMaxDynamicLinearK);
  const TileOutput output = float_output(x.scale, w, bias, relu, y);
  if (simd_sums(x, w, output, std::nullopt)) return;

  for (int64_t row = 0; row < x.rows; ++row) {
    const int32_t* x_row = x.values + row * w.in_features;
    float* y_row = y + row * w.out_features;
    for (int64_t out_channel = 0; out_channel < w.out_features; ++out_channel) {
      const int32_t acc = accumulate_as(x, x_row, w.values.data() + out_channel * w.in_features,
                                        w.zero_points[out_channel], w.in_features);  // (1) or (1')
      const float scaled = static_cast<float>(acc) * output.multiplier[out_channel];  // (3)
      const float value = bias ? scaled + bias[out_channel] : scaled;
      y_row[out_channel] = relu && value < 0.0f ? 0.0f : value;                   // (4)
    }
  }
}

namespace {

// `iterations` x 6 chains x 32 MACs; returns the chains' sum so nothing is dead code. Each
// chain has its own weights: 6 x (vpmaddubsw, vpmaddwd, vpaddd) per round, 16 registers.
__attribute__((target("avx2"), noinline)) int32_t int8_mac_chains(int64_t iterations) {
  __m256i x = _mm256_set1_epi8(3), w0 = _mm256_set1_epi8(-5), w1 = _mm256_set1_epi8(-6),
          w2 = _mm256_set1_epi8(-7), w3 = _mm256_set1_epi8(-8), w4 = _mm256_set1_epi8(-9),
          w5 = _mm256_set1_epi8(-10);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  // In assembly: with intrinsics GCC spills accumulators to the stack at this register
  // pressure, and the stores would measure memory, not the multipliers.
  for (int64_t i = 0; i < iterations; ++i)
    asm volatile(
#define QCONFORM_MAC_CHAIN(w, a, t)                  \
  "vpmaddubsw %[" #w "], %[x], %%" #t "\n\t"        \
  "vpmaddwd %[ones], %%" #t ", %%" #t "\n\t"         \
  "vpaddd %%" #t ", %[" #a "], %[" #a "]\n\t"
        QCONFORM_MAC_CHAIN(w0, a0, ymm14) QCONFORM_MAC_CHAIN(w1, a1, ymm15)
        QCONFORM_MAC_CHAIN(w2, a2, ymm14) QCONFORM_MAC_CHAIN(w3, a3, ymm15)
        QCONFORM_MAC_CHAIN(w4, a4, ymm14) QCONFORM_MAC_CHAIN(w5, a5, ymm15)
#undef QCONFORM_MAC_CHAIN
        : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5)
        : [x] "x"(x), [w0] "x"(w0), [w1] "x"(w1), [w2] "x"(w2), [w3] "x"(w3), [w4] "x"(w4), [w5] "x"(w5),
          [ones] "x"(ones)
        : "xmm14", "xmm15");
  const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                       _mm256_add_epi32(a4, a5));
  return _mm256_extract_epi32(sum, 0);
}

// The same with VNNI: one vpdpbusd sums four u8 x s8 products into each int32 lane exactly,
// 64 MACs on zmm (AVX512_VNNI), 32 on ymm (AVX-VNNI, VEX-encoded). The chains share two
// weight vectors (independence needs only separate accumulators): twelve on zmm and on ymm (the
// VEX encoding reaches 16 registers; an asm statement takes 30 operands). A core must hold latency x
// throughput chains in flight for the multipliers, not a chain, to set the pace: eight were
// enough on AMD's Zen 4, but Intel's cores issue two zmm vpdpbusd per cycle at a latency of
// five, so ten in flight, and eight chains measured 252 GMAC/s there.
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int32_t int8_mac_chains_avx512_vnni(int64_t iterations) {
  const __m512i x = _mm512_set1_epi8(3), w0 = _mm512_set1_epi8(-5), w1 = _mm512_set1_epi8(-6);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0, a10 = a0, a11 = a0;
  for (int64_t i = 0; i < iterations; ++i)
    asm volatile(
#define QCONFORM_VNNI_CHAIN(w, a) "vpdpbusd %[" #w "], %[x], %[" #a "]\n\t"
        QCONFORM_VNNI_CHAIN(w0, a0) QCONFORM_VNNI_CHAIN(w1, a1) QCONFORM_VNNI_CHAIN(w0, a2) QCONFORM_VNNI_CHAIN(w1, a3)
        QCONFORM_VNNI_CHAIN(w0, a4) QCONFORM_VNNI_CHAIN(w1, a5) QCONFORM_VNNI_CHAIN(w0, a6) QCONFORM_VNNI_CHAIN(w1, a7)
        QCONFORM_VNNI_CHAIN(w0, a8) QCONFORM_VNNI_CHAIN(w1, a9) QCONFORM_VNNI_CHAIN(w0, a10) QCONFORM_VNNI_CHAIN(w1, a11)
#undef QCONFORM_VNNI_CHAIN
        : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3), [a4] "+v"(a4), [a5] "+v"(a5), [a6] "+v"(a6),
          [a7] "+v"(a7), [a8] "+v"(a8), [a9] "+v"(a9), [a10] "+v"(a10), [a11] "+v"(a11)
        : [x] "v"(x), [w0] "v"(w0), [w1] "v"(w1));
  const __m512i sum = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                       _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))),
      _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, sum);
  return lanes[0];
}

__attribute__((target("avx2,avxvnni"), noinline)) int32_t int8_mac_chains_avx_vnni(int64_t iterations) {
  const __m256i x = _mm256_set1_epi8(3), w0 = _mm256_set1_epi8(-5), w1 = _mm256_set1_epi8(-6);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
          a9 = a0, a10 = a0, a11 = a0;
  for (int64_t i = 0; i < iterations; ++i)
    asm volatile(
#define QCONFORM_VNNI_CHAIN(w, a) "%{vex%} vpdpbusd %[" #w "], %[x], %[" #a "]\n\t"
        QCONFORM_VNNI_CHAIN(w0, a0) QCONFORM_VNNI_CHAIN(w1, a1) QCONFORM_VNNI_CHAIN(w0, a2) QCONFORM_VNNI_CHAIN(w1, a3)
        QCONFORM_VNNI_CHAIN(w0, a4) QCONFORM_VNNI_CHAIN(w1, a5) QCONFORM_VNNI_CHAIN(w0, a6) QCONFORM_VNNI_CHAIN(w1, a7)
        QCONFORM_VNNI_CHAIN(w0, a8) QCONFORM_VNNI_CHAIN(w1, a9) QCONFORM_VNNI_CHAIN(w0, a10) QCONFORM_VNNI_CHAIN(w1, a11)
#undef QCONFORM_VNNI_CHAIN
        : [a0] "+x"(a0), [a1] "+x"(a1), [a2] "+x"(a2), [a3] "+x"(a3), [a4] "+x"(a4), [a5] "+x"(a5), [a6] "+x"(a6),
          [a7] "+x"(a7), [a8] "+x"(a8), [a9] "+x"(a9), [a10] "+x"(a10), [a11] "+x"(a11)
        : [x] "x"(x), [w0] "x"(w0), [w1] "x"(w1));
  const __m256i sum = _mm256_add_epi32(
      _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                       _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7))),
      _mm256_add_epi32(_mm256_add_epi32(a8, a9), _mm256_add_epi32(a10, a11)));
  return _mm256_extract_epi32(sum, 0);
}

// GMAC/s of `chains` (MACs per call per iteration) for about `seconds`: grow until one run
// lasts a tenth of the budget, then keep the best of a few more. With threads > 1 every run
// is that many kernel threads running the chains at once (one each), timed from before the
// first starts to after the last ends, so that a thread the host holds back slows the rate.
double best_rate(int32_t (*chains)(int64_t), double macs_per_iteration, double seconds, int threads) {
  const auto timed = [&](int64_t iterations, double* elapsed) {
    std::atomic<int32_t> sink{0};
    const auto start = std::chrono::steady_clock::now();
    if (threads == 1) {
      sink += chains(iterations);
    } else {
      parallel_for(threads, [&](int64_t) { sink += chains(iterations); });
    }
    *elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return threads * iterations * macs_per_iteration / *elapsed / 1e9;
  };
  int64_t iterations = 1 << 16;
  double elapsed = 0, best = timed(iterations, &elapsed);
  while (elapsed < seconds / 10) best = std::max(best, timed(iterations *= 2, &elapsed));
  for (int r = 0; r < 5; ++r) best = std::max(best, timed(iterations, &elapsed));
  return best;
}

}  // namespace

Int8Ceiling measure_int8_mac_ceiling(double seconds, int threads) {
  if (threads < 1) throw std::invalid_argument("measure_int8_mac_ceiling: at least one thread, got " + std::to_string(threads));
  // (Without OpenMP, in the clang builds, the threads' runs follow one another on this
  // thread, and the sum is one thread's rate, as their kernels have.)
  const int previous_threads = kernel_threads();
  set_kernel_threads(threads);
  // The best exact int8 step of the kernels' path: VNNI where the path has it (zmm and ymm
  // both measured where both exist: cores that split zmm into two halves run them at one
  // rate), else AVX2. The path is the CPU's best unless QCONFORM_KERNEL_ISA caps it, and the
  // cap holds the ceiling too: a kernel held to AVX2 is measured against what AVX2 can do
  // here, as on a host without VNNI, not against instructions it may not use.
  const KernelPath path = exact_kernel_path();
  Int8Ceiling best;
  if (path == KernelPath::Avx512Vnni) {
    const double rate = best_rate(int8_mac_chains_avx512_vnni, 12.0 * 64.0, seconds, threads);
    if (rate > best.gmacs) best = {rate, "avx512_vnni (vpdpbusd zmm)"};
  }
  if ((path == KernelPath::Avx512Vnni || path == KernelPath::AvxVnni) && cpu_has_avx_vnni()) {
    const double rate = best_rate(int8_mac_chains_avx_vnni, 12.0 * 32.0, seconds, threads);
    if (rate > best.gmacs) best = {rate, "avx_vnni (vpdpbusd ymm)"};
  }
  if (best.gmacs == 0 && path != KernelPath::Portable)
    best = {best_rate(int8_mac_chains, 6.0 * 32.0, seconds, threads), "avx2 (vpmaddubsw ymm)"};
  set_kernel_threads(previous_threads);
  return best;
}

}  // namespace qconform::kernels
