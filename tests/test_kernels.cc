// The integer kernels' paths (quantized/kernels/dynamic_gemm.h): every SIMD path this CPU has
// (avx2-int16, avx2-int8, avx-vnni, avx512-vnni, and the saturating avx2-int8 for (1')) must
// give the portable path's accumulators and outputs bit for bit, at any shape and at the
// extremes of the integer ranges, on one kernel thread or two. And the recurrent cells' vectorised sigmoid and tanh
// (core/float/rnn_gates.cc) stay within the tolerance table's ulps of the exact functions
// (2; 2.45 for the integer implementation's faster forms).
// rapidcheck prints the shrunk case and RC_PARAMS to rerun it.
#define BOOST_TEST_MODULE test_kernels
#include <rapidcheck/boost_test.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/cpu.h"
#include "core/error.h"
#include "quantized/kernels/threads.h"
#include "core/float/rnn_runner.h"
#include "core/observers.h"
#include "core/quantize.h"
#include "oracles/tolerance.h"
#include "quantized/dynamic/linear.h"
#include "quantized/kernels/channels_last.h"
#include "quantized/kernels/dynamic_gemm.h"
#include "quantized/kernels/static_gemm.h"

using namespace qconform::kernels;
using qconform::cpu_has_avx2;
using qconform::cpu_has_avx512_vnni;
using qconform::cpu_has_avx_vnni;
using qconform::Requantization;

namespace {

struct GemmCase {
  DynamicLinearWeights w;
  std::vector<int32_t> x;
  int64_t rows = 0;
  int32_t x_zero_point = 0;
};

// Weights qint8 with per-channel zero points anywhere in qint8 (asymmetric, as qnnpack
// allows), activations quint8 (7-bit ones when `seven_bit`, as reduce_range makes them);
// `extreme` puts every value at the ends of its range.
GemmCase gemm_case(int64_t rows, int64_t k, int64_t n, bool extreme, bool seven_bit) {
  GemmCase c;
  c.rows = rows;
  c.w.in_features = k;
  c.w.out_features = n;
  const int32_t x_max = seven_bit ? 127 : 255;
  const auto weight = extreme ? rc::gen::element<int32_t>(-128, 127) : rc::gen::inRange<int32_t>(-128, 128);
  const auto activation = extreme ? rc::gen::element<int32_t>(0, x_max) : rc::gen::inRange<int32_t>(0, x_max + 1);
  c.w.values = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(n * k), weight);
  // Symmetric weights (zero point 0, the dynamic qconfigs' default) half of the time.
  if (*rc::gen::arbitrary<bool>())
    c.w.zero_points = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(n), weight);
  else
    c.w.zero_points.assign(n, 0);
  c.w.scales.assign(n, 0.0123f);
  c.x = *rc::gen::container<std::vector<int32_t>>(static_cast<size_t>(rows * k), activation);
  c.x_zero_point = *activation;
  pack_weights(c.w);
  return c;
}

void check_paths_agree(const GemmCase& c, bool seven_bit) {
  if (!cpu_has_avx2()) RC_DISCARD("no AVX2 on this CPU");
  const DynamicLinearActivation x{c.x.data(), c.rows, 0.05f, c.x_zero_point};
  const auto portable = dynamic_linear_accumulators(x, c.w, KernelPath::Portable);
  RC_ASSERT(portable == dynamic_linear_accumulators(x, c.w, KernelPath::Avx2Int16));
  if (seven_bit) RC_ASSERT(portable == dynamic_linear_accumulators(x, c.w, KernelPath::Avx2Int8));
  // VNNI sums u8 x s8 quads in int32 directly: 8-bit activations too.
  if (cpu_has_avx_vnni()) RC_ASSERT(portable == dynamic_linear_accumulators(x, c.w, KernelPath::AvxVnni));
  if (cpu_has_avx512_vnni()) RC_ASSERT(portable == dynamic_linear_accumulators(x, c.w, KernelPath::Avx512Vnni));
  // The whole kernel: dynamic_linear takes the fastest path here with packed weights, the
  // portable one without; the floats must be the same bits.
  DynamicLinearWeights unpacked = c.w;
  unpacked.packed = {};
  const bool with_bias = *rc::gen::arbitrary<bool>(), relu = *rc::gen::arbitrary<bool>();
  std::vector<float> bias(c.w.out_features, -0.25f), fast(c.rows * c.w.out_features), slow(fast.size());
  dynamic_linear(x, c.w, with_bias ? bias.data() : nullptr, relu, fast.data());
  dynamic_linear(x, unpacked, with_bias ? bias.data() : nullptr, relu, slow.data());
  // No rows: nothing to compare (and an empty vector's data() may be null, which memcmp may not
  // be given). Outside RC_ASSERT, whose expression capture would evaluate both sides of ||.
  const bool same_bits = fast.empty() || std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)) == 0;
  RC_ASSERT(same_bits);
}

}  // namespace

RC_BOOST_PROP(avx2_equals_portable_at_any_shape, ()) {
  // N past 64: the avx512-vnni tile's columns of four blocks, whole and partial.
  const int64_t rows = *rc::gen::inRange<int64_t>(0, 20), k = *rc::gen::inRange<int64_t>(1, 80),
                n = *rc::gen::inRange<int64_t>(1, 90);
  const bool seven_bit = *rc::gen::arbitrary<bool>();
  RC_TAG(k % 4 ? "K not a multiple of 4" : "K a multiple of 4", seven_bit ? "7-bit activations" : "8-bit activations");
  check_paths_agree(gemm_case(rows, k, n, /*extreme=*/false, seven_bit), seven_bit);
}

RC_BOOST_PROP(avx2_equals_portable_at_the_range_ends, ()) {
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 8), k = *rc::gen::inRange<int64_t>(1, 300),
                n = *rc::gen::inRange<int64_t>(1, 20);
  const bool seven_bit = *rc::gen::arbitrary<bool>();
  check_paths_agree(gemm_case(rows, k, n, /*extreme=*/true, seven_bit), seven_bit);
}

// (1'), the engines' saturating int16 pair sums: avx2-int8 run on 8-bit activations is that
// accumulation (vpmaddubsw saturates as theirs does), for symmetric weights.
RC_BOOST_PROP(saturating_avx2_int8_equals_portable_saturating_sums, ()) {
  if (!cpu_has_avx2()) RC_DISCARD("no AVX2 on this CPU");
  const int64_t rows = *rc::gen::inRange<int64_t>(0, 14), k = *rc::gen::inRange<int64_t>(1, 70),
                n = *rc::gen::inRange<int64_t>(1, 40);
  const bool extreme = *rc::gen::arbitrary<bool>();
  GemmCase c = gemm_case(rows, k, n, extreme, /*seven_bit=*/false);
  c.w.zero_points.assign(n, 0);
  pack_weights(c.w);
  const DynamicLinearActivation x{c.x.data(), c.rows, 0.05f, c.x_zero_point, Accumulation::PairwiseInt16Saturation};
  RC_TAG(extreme ? "range ends (pairs saturate)" : "anywhere");
  RC_ASSERT(dynamic_linear_accumulators(x, c.w, KernelPath::Portable) ==
            dynamic_linear_accumulators(x, c.w, KernelPath::Avx2Int8));
  // Exact-only paths refuse (1') rather than compute the exact sum.
  RC_ASSERT_THROWS_AS(dynamic_linear_accumulators(x, c.w, KernelPath::Avx2Int16), std::logic_error);
  std::vector<float> fast(c.rows * n), slow(fast.size());
  DynamicLinearWeights unpacked = c.w;
  unpacked.packed = {};
  dynamic_linear(x, c.w, nullptr, false, fast.data());
  dynamic_linear(x, unpacked, nullptr, false, slow.data());
  const bool same_bits = fast.empty() || std::memcmp(fast.data(), slow.data(), fast.size() * sizeof(float)) == 0;
  RC_ASSERT(same_bits);
}

// Two kernel threads split a GEMM by output tiles: the same bits as one thread (the shapes
// are large enough to pass the parallel threshold, 2^20 multiply-accumulates).
RC_BOOST_PROP(two_threads_give_one_threads_bits, ()) {
  const int64_t rows = *rc::gen::inRange<int64_t>(40, 130), k = *rc::gen::inRange<int64_t>(200, 400),
                n = *rc::gen::inRange<int64_t>(60, 140);
  const bool seven_bit = *rc::gen::arbitrary<bool>();
  const GemmCase c = gemm_case(rows, k, n, /*extreme=*/false, seven_bit);
  const DynamicLinearActivation x{c.x.data(), c.rows, 0.05f, c.x_zero_point};
  std::vector<int32_t> one(rows * n), two(one.size());
  std::vector<float> one_y(rows * n), two_y(one_y.size());
  set_kernel_threads(1);
  fast_accumulators(x, c.w, one.data());
  dynamic_linear(x, c.w, nullptr, true, one_y.data());
  set_kernel_threads(2);
  fast_accumulators(x, c.w, two.data());
  dynamic_linear(x, c.w, nullptr, true, two_y.data());
  set_kernel_threads(1);
  RC_ASSERT(one == two);
  RC_ASSERT(std::memcmp(one_y.data(), two_y.data(), one_y.size() * sizeof(float)) == 0);
  RC_ASSERT(one == dynamic_linear_accumulators(x, c.w, KernelPath::Portable));
}

// The bench's int8 ceiling is measured on the instructions the kernels' path may use, so that
// under QCONFORM_KERNEL_ISA (test_kernels.avx2 runs with =avx2) a share of it is a share of
// what that path could reach, not of the host's best step. A kernel path with VNNI may be
// measured on zmm or ymm, whichever is faster on this CPU.
BOOST_AUTO_TEST_CASE(the_ceiling_is_measured_on_the_kernels_path) {
  const Int8Ceiling ceiling = measure_int8_mac_ceiling(0.01);
  const KernelPath path = exact_kernel_path();
  BOOST_TEST_MESSAGE("kernel path " << to_string(path) << ", ceiling " << ceiling.gmacs << " GMAC/s on " << ceiling.isa);
  switch (path) {
    case KernelPath::Portable:
      BOOST_TEST(ceiling.gmacs == 0);
      BOOST_TEST(ceiling.isa.empty());
      return;
    case KernelPath::Avx2Int16:
    case KernelPath::Avx2Int8: BOOST_TEST(ceiling.isa == "avx2 (vpmaddubsw ymm)"); break;
    case KernelPath::AvxVnni: BOOST_TEST(ceiling.isa == "avx_vnni (vpdpbusd ymm)"); break;
    case KernelPath::Avx512Vnni:
      BOOST_TEST((ceiling.isa == "avx512_vnni (vpdpbusd zmm)" || ceiling.isa == "avx_vnni (vpdpbusd ymm)"));
      break;
  }
  BOOST_TEST(ceiling.gmacs > 0);
}

// The static kernels' u8 rows read where they lie (U8Rows: runs padded to whole quads, the
// bytes past a run not zero, as the convolution reads its input) give the exact sums (1)
// computed here in int64; and the requantizing epilogue (u8_requantized: static_gemm.h's
// (4)-(6) in the tile's registers) gives the scalar requantize() of those sums, byte for byte,
// with either rule, per-channel scales and zero points, bias or none, ReLU, into strided rows
// whose gaps it leaves alone. A requantization whose SIMD form could meet a NaN is declined.
RC_BOOST_PROP(u8_rows_and_requantized_bytes_equal_the_definition, ()) {
  const bool seven_bit = !u8_rows_supported(false);  // a host without VNNI: 7-bit rows only
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 30), n = *rc::gen::inRange<int64_t>(1, 90);
  const int64_t count = *rc::gen::inRange<int64_t>(1, 5), bytes = *rc::gen::inRange<int64_t>(1, 41);
  const int64_t quads = (bytes + 3) / 4, k = count * bytes;
  RC_TAG(bytes % 4 ? "runs padded to whole quads" : "runs of whole quads");
  const int32_t x_max = seven_bit ? 127 : 255;
  const auto x_value = rc::gen::inRange<int32_t>(0, x_max + 1);
  // Weights: the sums' K in run order, then padded with zeros to count x quads x 4.
  StaticLinearWeights w;
  w.integers.out_features = n;
  w.integers.in_features = count * quads * 4;
  w.integers.values.assign(n * w.integers.in_features, 0);
  const auto weights = *rc::gen::container<std::vector<int32_t>>(n * k, rc::gen::inRange(-128, 128));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < k; ++i)
      w.integers.values[j * w.integers.in_features + i / bytes * quads * 4 + i % bytes] = weights[j * k + i];
  w.integers.zero_points = *rc::gen::arbitrary<bool>()
                               ? *rc::gen::container<std::vector<int32_t>>(n, rc::gen::inRange(-128, 128))
                               : std::vector<int32_t>(n, 0);
  w.integers.scales.assign(n, 1.0f);
  for (int64_t j = 0; j < n; ++j) w.scales.push_back(0.0005 * *rc::gen::inRange(1, 40));
  pack_weights(w.integers);
  // Each row's runs anywhere in one buffer (overlapping, as a convolution's do), the buffer
  // holding whatever a run's padding quads read after it.
  const auto input = *rc::gen::container<std::vector<uint8_t>>(
      200, rc::gen::map(x_value, [](int32_t v) { return static_cast<uint8_t>(v); }));
  std::vector<const uint8_t*> at(rows * count);
  for (const uint8_t*& run : at) run = input.data() + *rc::gen::inRange<int64_t>(0, 200 - quads * 4 + 1);
  const int32_t x_zero_point = *x_value;
  std::vector<int64_t> sums(rows * n, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i)
        sums[r * n + j] += (int64_t{at[r * count + i / bytes][i % bytes]} - x_zero_point) *
                           (weights[j * k + i] - w.integers.zero_points[j]);
  const U8Rows x{at.data(), rows, count, quads, bytes, x_zero_point, seven_bit};
  std::vector<int32_t> acc(rows * n);
  if (!u8_rows_supported(seven_bit)) {  // no exact u8 path here (QCONFORM_KERNEL_ISA=portable): declined
    RC_ASSERT(!u8_accumulators(x, w.integers, acc.data()));
    return;
  }
  RC_ASSERT(u8_accumulators(x, w.integers, acc.data()));
  for (int64_t i = 0; i < rows * n; ++i) RC_ASSERT(int64_t{acc[i]} == sums[i]);

  const Requantization rule = *rc::gen::element(Requantization::Fp32Multiplier, Requantization::FloatEpilogue);
  std::vector<float> bias(n);
  for (float& b : bias) b = 0.01f * static_cast<float>(*rc::gen::inRange(-3000, 3000));
  const bool with_bias = *rc::gen::arbitrary<bool>();
  const bool infinite = *rc::gen::weightedElement<bool>({{1, true}, {9, false}});  // 1 / out_scale overflows float
  const StaticOutput out{infinite ? 1e-40 : 0.001 * *rc::gen::inRange(1, 200), *rc::gen::inRange(0, 256),
                         *rc::gen::arbitrary<bool>()};
  const Requantizer requantizer = make_requantizer(0.02, w, with_bias ? bias.data() : nullptr, out, rule);
  const int64_t stride = n + *rc::gen::inRange<int64_t>(0, 5);
  std::vector<uint8_t> y(rows * stride, 0xa5);
  const bool taken = u8_requantized(x, w, requantizer, y.data(), stride);
  RC_TAG(taken ? "requantized in the tiles" : "declined (a lane could be NaN)");
  RC_ASSERT(taken == requantizer.simd_exact);
  if (rule == Requantization::FloatEpilogue && infinite) RC_ASSERT(!taken);
  if (!taken) return;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < stride; ++j)
      RC_ASSERT(int32_t{y[r * stride + j]} == (j < n ? requantize(requantizer, acc[r * n + j], j) : 0xa5));
}

// U8Rows with (1'): the avx2-int8 tile on 8-bit rows read where they lie sums each pair of
// bytes (2p, 2p + 1 of a run) in int16 with saturation, as the engines that sum int16 pairs
// do, then subtracts x_zp times every weight: that sum computed here in int64, with weights
// at the extremes and bytes of 128 or more half the time (two -128 weights then saturate). Weight zero points, which
// the tile's (1') has no term for, are declined, as is a host without AVX2 (or capped to
// portable).
RC_BOOST_PROP(u8_pair_rows_sum_saturated_pairs, ()) {
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 20), n = *rc::gen::inRange<int64_t>(1, 40);
  const int64_t count = *rc::gen::inRange<int64_t>(1, 5), bytes = *rc::gen::inRange<int64_t>(1, 30);
  const int64_t quads = (bytes + 3) / 4, padded = quads * 4;
  const bool extreme = *rc::gen::arbitrary<bool>();
  RC_TAG(extreme ? "weights at the extremes" : "weights anywhere");
  const auto weight_value = extreme ? rc::gen::element(-128, 127) : rc::gen::inRange(-128, 128);
  StaticLinearWeights w;
  w.integers.out_features = n;
  w.integers.in_features = count * padded;
  w.integers.values.assign(n * w.integers.in_features, 0);  // zero past each run's bytes
  for (int64_t j = 0; j < n; ++j)
    for (int64_t s = 0; s < count; ++s)
      for (int64_t b = 0; b < bytes; ++b) w.integers.values[j * w.integers.in_features + s * padded + b] = *weight_value;
  w.integers.zero_points.assign(n, 0);
  w.integers.scales.assign(n, 1.0f);
  pack_weights(w.integers);
  // (inRange, not arbitrary: rapidcheck's arbitrary bytes are small in its first cases)
  const auto input = *rc::gen::container<std::vector<uint8_t>>(
      200, rc::gen::map(rc::gen::inRange(extreme ? 128 : 0, 256), [](int v) { return static_cast<uint8_t>(v); }));
  std::vector<const uint8_t*> at(rows * count);
  for (const uint8_t*& run : at) run = input.data() + *rc::gen::inRange<int64_t>(0, 200 - padded + 1);
  const int32_t x_zero_point = *rc::gen::inRange(0, 256);
  const U8Rows x{at.data(), rows, count, quads, bytes, x_zero_point, false, Accumulation::PairwiseInt16Saturation};
  std::vector<int32_t> acc(rows * n);
  if (!u8_pair_rows_supported()) {
    RC_ASSERT(!u8_accumulators(x, w.integers, acc.data()));
    return;
  }
  RC_ASSERT(u8_accumulators(x, w.integers, acc.data()));
  bool saturated = false;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      const int32_t* weights = w.integers.values.data() + j * w.integers.in_features;
      int64_t sum = 0;
      for (int64_t s = 0; s < count; ++s)
        for (int64_t b = 0; b < padded; b += 2) {
          const uint8_t* run = at[r * count + s];
          const int64_t pair = int64_t{run[b]} * weights[s * padded + b] + int64_t{run[b + 1]} * weights[s * padded + b + 1];
          saturated = saturated || pair < -32768 || pair > 32767;
          sum += std::clamp<int64_t>(pair, -32768, 32767) - x_zero_point * (weights[s * padded + b] + weights[s * padded + b + 1]);
        }
      RC_ASSERT(int64_t{acc[r * n + j]} == sum);
    }
  RC_CLASSIFY(saturated, "a pair saturates");
  // Weight zero points: declined, not summed without their term.
  StaticLinearWeights asymmetric = w;
  asymmetric.integers.zero_points.assign(n, 3);
  pack_weights(asymmetric.integers);
  RC_ASSERT(!u8_accumulators(x, asymmetric.integers, acc.data()));
}

// The convolution's layout changes (channels_last.h) move values without changing them: what
// the plain index formulas give, at shapes with and without whole 16 x 16 (8 x 8) blocks and
// with fewer than 16 channels, and the range seen is the values' own (values outside u8
// included).
RC_BOOST_PROP(layout_changes_move_values_as_the_index_formulas_say, ()) {
  const int64_t channels = *rc::gen::inRange<int64_t>(1, 50), plane = *rc::gen::inRange<int64_t>(1, 80);
  const auto planes = *rc::gen::container<std::vector<int32_t>>(channels * plane, rc::gen::inRange(-300, 600));
  std::vector<uint8_t> nhwc(channels * plane + 16, 0xa5);  // 16 guard bytes: nothing is written past the image
  const ValueRange range = to_u8_channels_last(planes.data(), channels, plane, nhwc.data());
  for (int64_t i = channels * plane; i < channels * plane + 16; ++i) RC_ASSERT(nhwc[i] == 0xa5);
  RC_ASSERT(range.smallest == std::min(0, *std::min_element(planes.begin(), planes.end())));
  RC_ASSERT(range.largest == std::max(0, *std::max_element(planes.begin(), planes.end())));
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < plane; ++i) {
      const int32_t v = planes[c * plane + i];
      if (v >= 0 && v <= 255) RC_ASSERT(nhwc[i * channels + c] == static_cast<uint8_t>(v));
    }
  std::vector<int32_t> back(channels * plane, -1);
  from_u8_channels_last(nhwc.data(), channels, plane, back.data());
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < plane; ++i) RC_ASSERT(back[c * plane + i] == nhwc[i * channels + c]);
  const int64_t stride = plane + *rc::gen::inRange<int64_t>(0, 5);
  std::vector<int32_t> out(channels * stride, -1);
  transpose_int32(planes.data(), plane, channels, out.data(), stride);  // planes read as (plane x channels) rows
  for (int64_t j = 0; j < channels; ++j)
    for (int64_t r = 0; r < stride; ++r) RC_ASSERT(out[j * stride + r] == (r < plane ? planes[r * channels + j] : -1));
}

// avx2-int8 refuses 8-bit activations rather than let vpmaddubsw saturate, and
// dynamic_linear then takes avx2-int16 (the property above compares its floats).
BOOST_AUTO_TEST_CASE(the_int8_path_refuses_activations_beyond_7_bits) {
  if (!cpu_has_avx2()) return;
  DynamicLinearWeights w{3, 4, std::vector<int32_t>(12, -128), std::vector<float>(3, 1.0f), std::vector<int32_t>(3, 0), {}};
  pack_weights(w);
  const std::vector<int32_t> x{127, 127, 128, 0};
  const DynamicLinearActivation eight_bit{x.data(), 1, 1.0f, 0};
  BOOST_CHECK_THROW(dynamic_linear_accumulators(eight_bit, w, KernelPath::Avx2Int8), std::logic_error);
  BOOST_TEST(dynamic_linear_accumulators(eight_bit, w, KernelPath::Avx2Int16) ==
             dynamic_linear_accumulators(eight_bit, w, KernelPath::Portable));
}

// The saturation boundary. vpmaddubsw sums u8 x s8 pairs in int16: at 7 bits the largest
// pair, 2 x 127 x -128 = -32512, still fits, and avx2-int8 must be exact there; at 8 bits
// (x = 255, w = -128: -65280) it would saturate, so 8-bit activations take avx2-int16,
// which multiplies int16 (w - w_zp) into int32 lanes and stays exact even at |x| = 255,
// |w - w_zp| = 255: equal to the exact sum computed in int64, and different from the
// saturated one.
BOOST_AUTO_TEST_CASE(the_avx2_paths_do_not_saturate_where_vpmaddubsw_would) {
  if (!cpu_has_avx2()) return;
  for (const auto& [w_value, w_zero_point] : {std::pair{-128, 127}, std::pair{127, -128}, std::pair{-128, 0}}) {
    const int64_t k = 33, n = 17;
    DynamicLinearWeights w{n, k, std::vector<int32_t>(n * k, w_value), std::vector<float>(n, 1.0f),
                           std::vector<int32_t>(n, w_zero_point), {}};
    pack_weights(w);
    for (const int32_t x_value : {127, 255}) {
      const std::vector<int32_t> x(3 * k, x_value);
      const DynamicLinearActivation exact{x.data(), 3, 1.0f, 0};
      const int64_t expected = int64_t{x_value} * (w_value - w_zero_point) * k;
      std::vector<KernelPath> paths{x_value == 127 ? KernelPath::Avx2Int8 : KernelPath::Avx2Int16};
      if (cpu_has_avx_vnni()) paths.push_back(KernelPath::AvxVnni);
      if (cpu_has_avx512_vnni()) paths.push_back(KernelPath::Avx512Vnni);
      for (const KernelPath path : paths)
        for (int32_t acc : dynamic_linear_accumulators(exact, w, path))
          BOOST_TEST(acc == expected, to_string(path) << " x=" << x_value << " w=" << w_value << " w_zp=" << w_zero_point);
      if (w_zero_point == 0 && x_value == 255) {  // the engine-emulating saturating accumulation differs there
        const DynamicLinearActivation saturating{x.data(), 3, 1.0f, 0, Accumulation::PairwiseInt16Saturation};
        const auto saturated = dynamic_linear_accumulators(saturating, w, KernelPath::Portable);
        BOOST_TEST(saturated[0] == -32768 * (k / 2) + 255 * -128);
        BOOST_TEST(saturated[0] != expected);
      }
    }
  }
}

// The recurrent bound model (oracles/recurrent_bounds.h) allows each side's sigmoid and tanh
// `ulps` ulp, as ulps eps |f(z)| plus one smallest normal (below the normal range an ulp is
// no longer relative: sigmoid(-100) is 3.7e-44, ATen's and ours give 0). The allowance is
// read from the tolerance table: ATen's forms as in reference-vs-libtorch (both sides ATen's),
// CellGates::Fast as in integer-vs-libtorch (the rows with an integer side). The exact value
// is computed in double with the C library's double functions.
namespace {

using qconform::CellGates;

double sigmoid_exact(float z) { return 1.0 / (1.0 + std::exp(-static_cast<double>(z))); }
double tanh_exact(float z) { return std::tanh(static_cast<double>(z)); }
double gate_ulps(CellGates form) {
  const std::string id = form == CellGates::Fast ? "dynamic.recurrent.integer-vs-libtorch"
                                                 : "dynamic.recurrent.reference-vs-libtorch";
  for (const auto& row : qconform::tolerance_table())
    if (row.id == id) return row.roundings;
  throw std::logic_error("tolerance table has no row " + id);
}

// The first z whose gate value is off by more than the allowance, or "" if none.
std::string gate_violation(const std::vector<float>& z, CellGates form) {
  constexpr double kEps = std::numeric_limits<float>::epsilon(), kTiny = std::numeric_limits<float>::min();
  std::vector<float> sig(z.size()), th(z.size());
  qconform::rnn_sigmoid_n(z.data(), static_cast<int64_t>(z.size()), sig.data(), form);
  qconform::rnn_tanh_n(z.data(), static_cast<int64_t>(z.size()), th.data(), form);
  const double ulps = gate_ulps(form);
  for (size_t i = 0; i < z.size(); ++i)
    for (const auto& [name, got, exact] : {std::tuple{"sigmoid", sig[i], sigmoid_exact(z[i])},
                                           std::tuple{"tanh", th[i], tanh_exact(z[i])}})
      if (!(std::abs(got - exact) <= ulps * kEps * std::abs(exact) + kTiny)) {
        char line[240];
        std::snprintf(line, sizeof line,
                      "%s%s(%.9g) = %.9g, exact %.17g: off by %.3g eps |f|, allowed %.2f (element %zu of %zu)", name,
                      form == CellGates::Fast ? " (fast form)" : "", z[i], got, exact,
                      std::abs(got - exact) / (kEps * std::abs(exact)), ulps, i, z.size());
        return line;
      }
  return "";
}

}  // namespace

// Lengths around the 16-wide vector blocks, so both the vector and the scalar remainder
// path run; values from tiny to beyond the saturation of either function.
RC_BOOST_PROP(gate_functions_within_their_ulps, ()) {
  const auto magnitude = rc::gen::map(rc::gen::pair(rc::gen::inRange(-30, 8), rc::gen::inRange(0, 1 << 20)),
                                      [](std::pair<int, int> p) {
                                        return std::ldexp(1.0f + p.second / float(1 << 20), p.first);
                                      });
  const auto value = rc::gen::map(rc::gen::pair(magnitude, rc::gen::arbitrary<bool>()),
                                  [](std::pair<float, bool> p) { return p.second ? -p.first : p.first; });
  const auto z = *rc::gen::container<std::vector<float>>(*rc::gen::inRange<size_t>(0, 50), value);
  for (CellGates form : {CellGates::Aten, CellGates::Fast}) {
    const std::string violation = gate_violation(z, form);
    RC_LOG() << violation;
    RC_ASSERT(violation.empty());
  }
  // The fast form takes the vector form for every element, the padded last n % 8 too: each
  // value is the one it gets alone.
  const int64_t n = static_cast<int64_t>(z.size());
  std::vector<float> sig(z.size()), th(z.size());
  qconform::rnn_sigmoid_n(z.data(), n, sig.data(), CellGates::Fast);
  qconform::rnn_tanh_n(z.data(), n, th.data(), CellGates::Fast);
  for (int64_t i = 0; i < n; ++i) {
    float alone_sig, alone_th;
    qconform::rnn_sigmoid_n(&z[i], 1, &alone_sig, CellGates::Fast);
    qconform::rnn_tanh_n(&z[i], 1, &alone_th, CellGates::Fast);
    RC_ASSERT(sig[i] == alone_sig);
    RC_ASSERT(th[i] == alone_th);
  }
}

// Every 4099th float (a prime stride: every exponent, scattered mantissas), both signs,
// including the infinities' neighbourhood; NaN in gives NaN out. First the floats where an
// exhaustive search over every float found the fast forms furthest off: Eigen's tanh at
// +-5.12603903 (2.448 eps |tanh|) and libmvec's sigmoid at -16.9824104 (2.265 eps), the
// reasons the rows with an integer side allow 2.45 (Eigen 3.4.0, glibc 2.36).
BOOST_AUTO_TEST_CASE(gate_functions_within_their_ulps_across_the_float_range) {
  std::vector<float> z;
  for (float worst : {5.12603903f, 16.9824104f}) {
    z.push_back(worst);
    z.push_back(-worst);
  }
  for (uint64_t bits = 0; bits < 0x7f800000u; bits += 4099) {
    float v;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&v, &b, sizeof v);
    z.push_back(v);
    z.push_back(-v);
  }
  z.push_back(std::numeric_limits<float>::infinity());
  z.push_back(-std::numeric_limits<float>::infinity());
  for (CellGates form : {CellGates::Aten, CellGates::Fast}) {
    const std::string violation = gate_violation(z, form);
    BOOST_TEST(violation.empty(), violation);
    const std::vector<float> nan(17, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> out(nan.size());
    qconform::rnn_sigmoid_n(nan.data(), 17, out.data(), form);
    for (float v : out) BOOST_TEST(std::isnan(v));
    qconform::rnn_tanh_n(nan.data(), 17, out.data(), form);
    for (float v : out) BOOST_TEST(std::isnan(v));
  }
}

// Where the kernels read u8 rows, the dynamic modules quantize their activations straight to
// bytes (QuantizedActivations' byte form: quantized/dynamic/linear.cc). The bytes must be the
// engine's rule applied to each value, the row padding zero, and the product from any first
// row the floats dynamic_linear gives for the same integers as int32 (which reach the tiles
// another way: converted, range-checked and summed by int8_activations). Every engine
// profile, reduce_range either way, symmetric and affine, per-tensor and per-channel weights.
RC_BOOST_PROP(dynamic_activations_as_bytes_multiply_as_their_integers, ()) {
  using qconform::DynamicQuantizedLinear;
  const int64_t in = *rc::gen::inRange<int64_t>(1, 70), out = *rc::gen::inRange<int64_t>(1, 90);
  const int64_t rows = *rc::gen::inRange<int64_t>(1, 20);
  const auto profiles = qconform::engine_profiles(*rc::gen::elementOf(qconform::all_engines()));
  const qconform::EngineProfile profile = *rc::gen::elementOf(profiles);
  const bool per_channel = *rc::gen::arbitrary<bool>(), affine = *rc::gen::arbitrary<bool>();
  const bool reduce_range = *rc::gen::arbitrary<bool>(), relu = *rc::gen::arbitrary<bool>();
  qconform::QTensor weight{{out, in}, *rc::gen::container<std::vector<int32_t>>(out * in, rc::gen::inRange(-128, 128)), {}};
  const auto zero_point = [&] { return affine ? *rc::gen::inRange<int64_t>(-20, 21) : int64_t{0}; };
  if (per_channel) {
    std::vector<double> scales;
    std::vector<int64_t> zero_points;
    for (int64_t n = 0; n < out; ++n) scales.push_back(0.001 * *rc::gen::inRange(1, 50)), zero_points.push_back(zero_point());
    weight.qparams = qconform::QuantParams::per_channel(qconform::DType::QInt8, scales, zero_points, 0);
  } else {
    weight.qparams = qconform::QuantParams::per_tensor(qconform::DType::QInt8, 0.02, zero_point());
  }
  std::optional<qconform::Tensor> bias;
  if (*rc::gen::arbitrary<bool>())
    bias = qconform::Tensor({out}, *rc::gen::container<std::vector<float>>(out, rc::gen::map(rc::gen::inRange(-500, 500), [](int k) { return k / 100.0f; })));
  std::unique_ptr<DynamicQuantizedLinear> linear;
  try {
    linear = std::make_unique<DynamicQuantizedLinear>(weight, bias, profile);
  } catch (const qconform::Error&) {
    RC_DISCARD("the engine refuses these weights");
  }
  const auto x = *rc::gen::container<std::vector<float>>(
      rows * in, rc::gen::map(rc::gen::inRange(-30000, 30000), [](int k) { return k / 1000.0f; }));
  DynamicQuantizedLinear::QuantizedActivations q;
  linear->quantize_dynamic(x.data(), rows, reduce_range, q);
  RC_LOG() << profile.label() << ", in_bytes " << q.in_bytes << ", seven_bit " << q.seven_bit;
  const bool byte_form_expected = q.accumulation == Accumulation::Exact && u8_rows_supported(q.seven_bit);
  RC_ASSERT(q.in_bytes == byte_form_expected);
  RC_TAG(byte_form_expected ? "byte form" : "int32 form");
  if (!byte_form_expected) return;
  RC_ASSERT(q.row_bytes == (in + 3) / 4 * 4);
  // The integers, by the scalar rules (core/quantize.h) and the engine's choice of them.
  const bool shift_then_round =
      qconform::engine_rule(profile.engine, qconform::EngineOp::DynamicLinear).activation_quantization ==
      qconform::ActivationQuantization::ShiftThenRound;
  std::vector<int32_t> values(rows * in);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < q.row_bytes; ++k) {
      const uint8_t byte = q.bytes[r * q.row_bytes + k];
      if (k >= in) {
        RC_ASSERT(byte == 0);
        continue;
      }
      const float v = x[r * in + k];
      const int64_t expected =
          shift_then_round
              ? qconform::quantize_value_shift_then_round(v, static_cast<float>(1.0 / (double{q.scale})), q.zero_point, 0, 255)
              : qconform::quantize_value(v, 1.0f / q.scale, q.zero_point, 0, q.seven_bit ? 127 : 255);
      RC_ASSERT(byte == expected);
      values[r * in + k] = byte;
    }
  const int64_t first = *rc::gen::inRange<int64_t>(0, rows), count = *rc::gen::inRange<int64_t>(1, rows - first + 1);
  std::vector<float> from_bytes(count * out), from_integers(count * out);
  linear->apply_quantized(q, first, count, from_bytes.data(), relu);
  DynamicLinearWeights w;
  w.out_features = out;
  w.in_features = in;
  w.values = weight.values;
  for (int64_t n = 0; n < out; ++n) {
    w.scales.push_back(static_cast<float>(weight.qparams.scale(n)));
    w.zero_points.push_back(static_cast<int32_t>(weight.qparams.zero_point(n)));
  }
  pack_weights(w);
  dynamic_linear({values.data() + first * in, count, q.scale, q.zero_point}, w, bias ? bias->data.data() : nullptr,
                 relu, from_integers.data());
  RC_ASSERT(std::memcmp(from_bytes.data(), from_integers.data(), from_bytes.size() * sizeof(float)) == 0);
}

// The integer LSTM's cell (CellGates::Fast) takes each row in one pass, eight hidden units at
// a time (core/float/rnn_gates.cc): it must give the floats of rnn_runner.h's operations in
// their order with the fast form's sigmoid and tanh applied to whole runs of the row, at any
// hidden size (a last partial eight goes under a lane mask) and for any values, NaN and the
// infinities included.
//
// Same floats: the same bits, except which NaN. Where both operands of an addition or a
// product are NaN, x86 returns the first one's sign and payload, and GCC may swap the
// operands of commutative operations: gi's NaN + the hardware's negative NaN of -inf + inf
// came out +NaN on one side and -NaN on the other (a seed of 2026-12-07).
bool same_float(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)); }

RC_BOOST_PROP(fast_lstm_cell_is_its_operations_in_order, ()) {
  qconform::RnnOptions o;
  o.mode = qconform::RnnMode::LSTM;
  o.hidden_size = *rc::gen::inRange<int64_t>(1, 41);
  const int64_t H = o.hidden_size, G = o.gate_size(), rows = *rc::gen::inRange<int64_t>(1, 4);
  const auto value = rc::gen::weightedOneOf<float>(
      {{20, rc::gen::map(rc::gen::inRange(-20000, 20000), [](int k) { return k / 1000.0f; })},
       {1, rc::gen::element(NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 88.5f, -104.0f)}});
  const auto gi = *rc::gen::container<std::vector<float>>(rows * G, value);
  const auto gh = *rc::gen::container<std::vector<float>>(rows * G, value);
  const auto h0 = *rc::gen::container<std::vector<float>>(rows * H, value);
  const auto c0 = *rc::gen::container<std::vector<float>>(rows * H, value);
  std::vector<float> h = h0, c = c0;
  qconform::rnn_cell_step(o, rows, gi.data(), gh.data(), h.data(), c.data(), CellGates::Fast);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> z(G), gates(G), tanh_c(H);
    for (int64_t k = 0; k < G; ++k) z[k] = gh[r * G + k] + gi[r * G + k];
    qconform::rnn_sigmoid_n(z.data(), 2 * H, gates.data(), CellGates::Fast);  // i, f
    qconform::rnn_tanh_n(z.data() + 2 * H, H, gates.data() + 2 * H, CellGates::Fast);  // g
    qconform::rnn_sigmoid_n(z.data() + 3 * H, H, gates.data() + 3 * H, CellGates::Fast);  // o
    std::vector<float> cell(H);
    for (int64_t j = 0; j < H; ++j) {
      const float forget_part = gates[H + j] * c0[r * H + j], input_part = gates[j] * gates[2 * H + j];
      cell[j] = forget_part + input_part;
    }
    qconform::rnn_tanh_n(cell.data(), H, tanh_c.data(), CellGates::Fast);
    for (int64_t j = 0; j < H; ++j) {
      const float expected_h = gates[3 * H + j] * tanh_c[j];
      RC_LOG() << "row " << r << ", unit " << j << " of " << H;
      RC_ASSERT(same_float(c[r * H + j], cell[j]));
      RC_ASSERT(same_float(h[r * H + j], expected_h));
    }
  }
}

// The dynamic modules' activations, and quantize()'s per-tensor and per-channel integer
// schemes, are quantized 8 at a time (core/quantize.h, quantize_values); each integer must be
// the scalar rule's, for any float: ties (half-way values, where the two rounding orders
// part), NaN, infinities, beyond int32 (qint32's range) and beyond int64.
RC_BOOST_PROP(quantize_values_equals_the_scalar_rules, ()) {
  const float scale = *rc::gen::element(0.01f, 0.1f, 1.0f / 3.0f, 6.1035156e-05f, 2.0f);
  const int64_t zero_point = *rc::gen::inRange<int64_t>(0, 256);
  const auto [quant_min, quant_max] = *rc::gen::element(std::pair<int64_t, int64_t>{0, 255},
                                                        std::pair<int64_t, int64_t>{0, 127},
                                                        std::pair<int64_t, int64_t>{-128, 127},
                                                        std::pair<int64_t, int64_t>{-2147483648LL, 2147483647LL});
  const auto tie = rc::gen::map(rc::gen::inRange(-300, 300), [&](int k) { return (k + 0.5f) * scale; });
  const auto any_bits = rc::gen::map(rc::gen::arbitrary<uint32_t>(), [](uint32_t b) {
    float v;
    std::memcpy(&v, &b, sizeof v);
    return v;
  });
  const auto nearby = rc::gen::map(rc::gen::inRange(-40000, 40000), [&](int k) { return k * scale / 100.0f; });
  // Around int32's and int64's ends once scaled, where truncation and the clamp decide.
  const auto large = rc::gen::map(rc::gen::element(2147483520.0f, 2147483648.0f, 3e9f, 9.2233715e18f, 9.2233720e18f,
                                                   -2147483648.0f, -3e9f, -9.2233720e18f, -1e19f),
                                  [&](float v) { return v * scale; });
  // Up to 100 values: the byte form's SIMD blocks are 32 long.
  const auto x = *rc::gen::container<std::vector<float>>(*rc::gen::inRange<size_t>(0, 100),
                                                         rc::gen::oneOf(tie, any_bits, nearby, large));
  const float inverse_scale = 1.0f / scale;
  const bool byte_range = quant_min >= 0 && quant_max <= 255;  // also through quantize_values_u8
  std::vector<int32_t> out(x.size());
  std::vector<uint8_t> bytes(x.size());
  for (const auto rounding : {qconform::RoundingStep::BeforeZeroPoint, qconform::RoundingStep::AfterZeroPoint}) {
    qconform::quantize_values(x.data(), static_cast<int64_t>(x.size()), inverse_scale, zero_point, quant_min,
                              quant_max, rounding, out.data());
    if (byte_range)
      qconform::quantize_values_u8(x.data(), static_cast<int64_t>(x.size()), inverse_scale, zero_point, quant_min,
                                   quant_max, rounding, bytes.data());
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t expected =
          rounding == qconform::RoundingStep::BeforeZeroPoint
              ? qconform::quantize_value(x[i], inverse_scale, zero_point, quant_min, quant_max)
              : qconform::quantize_value_shift_then_round(x[i], inverse_scale, zero_point, quant_min, quant_max);
      RC_ASSERT(out[i] == expected);
      if (byte_range) RC_ASSERT(bytes[i] == expected);
    }
  }
}

// The dynamic modules' extremes (core/observers.h, values_min_max, four vectors at a time from
// 40 values on): torch.min / torch.max's floats, which a fold from the first value in order
// gives: a NaN anywhere makes both NaN, and of equal values (+0 and -0) the first is kept.
RC_BOOST_PROP(values_min_max_is_the_ordered_fold, ()) {
  const auto value = rc::gen::weightedOneOf<float>(
      {{30, rc::gen::map(rc::gen::inRange(-100000, 100000), [](int k) { return k / 7.0f; })},
       {1, rc::gen::element(NAN, INFINITY, -INFINITY, 0.0f, -0.0f)}});
  const auto x = *rc::gen::container<std::vector<float>>(*rc::gen::inRange<size_t>(0, 150), value);
  float lo = 0.0f, hi = 0.0f;
  qconform::values_min_max(x.data(), static_cast<int64_t>(x.size()), &lo, &hi);
  float expected_lo = x.empty() ? 0.0f : x[0], expected_hi = expected_lo;
  for (float v : x) {
    if (std::isnan(v) || std::isnan(expected_lo)) {
      expected_lo = expected_hi = NAN;
      continue;
    }
    if (v < expected_lo) expected_lo = v;
    if (v > expected_hi) expected_hi = v;
  }
  RC_ASSERT(same_float(lo, expected_lo));
  RC_ASSERT(same_float(hi, expected_hi));
}

BOOST_AUTO_TEST_CASE(quantize_values_u8_refuses_ranges_beyond_a_byte) {
  const float x[1] = {1.0f};
  uint8_t out[1];
  for (const auto& [quant_min, quant_max] : {std::pair<int64_t, int64_t>{-128, 127}, {0, 256}, {200, 100}}) {
    try {
      qconform::quantize_values_u8(x, 1, 1.0f, 0, quant_min, quant_max, qconform::RoundingStep::BeforeZeroPoint, out);
      BOOST_ERROR("quantize_values_u8 accepted [" << quant_min << ", " << quant_max << "]");
    } catch (const qconform::Error& e) {
      BOOST_TEST(std::string(e.what()).find("must lie in 0..255") != std::string::npos, e.what());
    }
  }
}
